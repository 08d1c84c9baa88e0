/*
 * floor: the least any runner can do for N items on P slots: vfork+exec of
 * the command with the item as its last argument, wait, next.  No journal,
 * no bookkeeping.  Usage: floor [-f DIR] N P COMMAND [ARGS...]
 *
 * With -f DIR it also does the file work the runner's layout before
 * output lanes asked of every item: DIR/<item>/ and attempt-1.out/.err in
 * it as the child's stdout/stderr (the file system's price of a file per
 * item, for comparison).  The gap between the plain floor and runner is
 * the runner's own.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Its own frame, so that vfork cannot clobber the caller's variables. */
static pid_t launch(char **av, int out, int err)
{
	pid_t pid = vfork();
	if (pid == 0) {
		if (out >= 0 && (dup2(out, 1) < 0 || dup2(err, 2) < 0))
			_exit(126);
		execv(av[0], av);
		_exit(127);
	}
	return pid;
}

int main(int argc, char **argv)
{
	int dirfd = -1;
	if (argc > 2 && !strcmp(argv[1], "-f")) {
		mkdir(argv[2], 0755);
		dirfd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dirfd < 0) {
			perror(argv[2]);
			return 1;
		}
		argv += 2;
		argc -= 2;
	}
	if (argc < 4) {
		fprintf(stderr, "usage: floor [-f DIR] N P COMMAND [ARGS...]\n");
		return 64;
	}
	long n = atol(argv[1]), p = atol(argv[2]), started = 0, running = 0;
	int nargs = argc - 3;
	char **av = calloc((size_t)nargs + 2, sizeof(char *));
	char item[32], path[64];
	for (int i = 0; i < nargs; i++)
		av[i] = argv[3 + i];
	av[nargs] = item;
	while (started < n || running > 0) {
		while (running < p && started < n) {
			int out = -1, err = -1;
			snprintf(item, sizeof(item), "S%ld", started + 1);
			if (dirfd >= 0) {
				mkdirat(dirfd, item, 0755);
				snprintf(path, sizeof(path), "%s/attempt-1.out", item);
				out = openat(dirfd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
				snprintf(path, sizeof(path), "%s/attempt-1.err", item);
				err = openat(dirfd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
			}
			pid_t pid = launch(av, out, err);
			if (pid < 0) {
				perror("vfork");
				return 1;
			}
			if (out >= 0) {
				close(out);
				close(err);
			}
			started++;
			running++;
		}
		int status;
		if (wait(&status) > 0)
			running--;
	}
	free(av);
	return 0;
}
