/* The scratch directory of a harness process (fuzz.h). */
#include "fuzz.h"
#include "home.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[256];
static int dirfd_ = -1;

static void remove_scratch(void)
{
	if (dirfd_ >= 0)
		close(dirfd_);
	remove_tree(AT_FDCWD, path);
}

int fuzz_scratch(void)
{
	if (dirfd_ >= 0)
		return dirfd_;
	const char *tmp = getenv("TMPDIR");
	int n = snprintf(path, sizeof(path), "%s/runner-fuzz-XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");
	if (n < 0 || (size_t)n >= sizeof(path))
		die(EX_CANTCREAT_, "fuzz: TMPDIR too long");
	if (!mkdtemp(path))
		die(EX_CANTCREAT_, "fuzz: mkdtemp %s: %s", path, strerror(errno));
	dirfd_ = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd_ < 0)
		die(EX_CANTCREAT_, "fuzz: %s: %s", path, strerror(errno));
	atexit(remove_scratch);
	return dirfd_;
}

const char *fuzz_scratch_path(void)
{
	return path;
}
