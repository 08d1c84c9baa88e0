/*
 * replay: a harness without libFuzzer.  Every file named, and every file
 * of every directory named (in name order), is read and given to
 * LLVMFuzzerTestOneInput once, so that `make check` replays the corpora
 * with any compiler (and `make asan` under the sanitizers): an input that
 * once crashed a harness goes on being tried.
 *
 *   build/fuzz/job-replay tests/fuzz/corpus/job      replay a corpus
 *   build/fuzz/job-replay crash-1234                 reproduce one input
 *
 * Prints how many inputs it ran; exits 0, or 1 when an input could not be
 * read (an input that breaks the harness aborts it).
 */
#include "fuzz.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Inputs are small; a bigger file is not one of ours. */
#define INPUT_MAX (16u << 20)

static int run_file(int dirfd, const char *name, const char *shown)
{
	struct sb buf = SB_INIT;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || read_fd_bounded(fd, INPUT_MAX, &buf) < 0) {
		error("%s: %s", shown, strerror(errno));
		if (fd >= 0)
			close(fd);
		sb_release(&buf);
		return -1;
	}
	close(fd);
	/* A copy of exactly its size, as libFuzzer gives it: a harness
	 * that reads one byte too far is caught by the sanitizer. */
	uint8_t *data = xmalloc(buf.len ? buf.len : 1);
	if (buf.len)
		memcpy(data, buf.buf, buf.len);
	LLVMFuzzerTestOneInput(data, buf.len);
	free(data);
	sb_release(&buf);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *path, size_t *count)
{
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *e;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return error("%s: %s", path, strerror(errno));
	}
	while ((e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] == '.' ||
		    fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		GROW(names, cap, n + 1);
		names[n++] = xstrdup(e->d_name);
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp);
	for (size_t i = 0; i < n; i++) {
		char *shown = xasprintf("%s/%s", path, names[i]);
		if (run_file(dfd, names[i], shown) < 0)
			rc = -1;
		else
			++*count;
		free(shown);
		free(names[i]);
	}
	free(names);
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	size_t count = 0;
	int rc = 0;
	progname = "replay";
	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
		return EX_USAGE_;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			if (run_dir(argv[i], &count) < 0)
				rc = 1;
		} else if (run_file(AT_FDCWD, argv[i], argv[i]) < 0) {
			rc = 1;
		} else {
			count++;
		}
	}
	printf("%zu %s\n", count, count == 1 ? "input" : "inputs");
	return rc;
}
