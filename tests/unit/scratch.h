/*
 * scratch.h: the one scratch directory a C unit test works in:
 *
 *   const char *dir = scratch_make("journal");   $TMPDIR/journal-test-XXXXXX
 *   int dfd = scratch_open();                    an O_DIRECTORY fd of it
 *   ... the test ...
 *   close(dfd);
 *   scratch_remove();                            the whole tree
 *
 * $TMPDIR unset or empty means /tmp.  The path is at most 255 bytes: it
 * fits, with a name or two below it, in the tests' own small buffers.
 * scratch_make() and scratch_open() print "Bail out!" and exit(255) when
 * they fail: a test without its directory has nothing to say.
 * scratch_remove() only diagnoses.
 */
#ifndef RUNNER_SCRATCH_H
#define RUNNER_SCRATCH_H

#include "home.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char scratch_path[256];

static inline const char *scratch_make(const char *what)
{
	const char *tmp = getenv("TMPDIR");
	int n = snprintf(scratch_path, sizeof(scratch_path),
			 "%s/%s-test-XXXXXX", tmp && *tmp ? tmp : "/tmp", what);
	if (n < 0 || (size_t)n >= sizeof(scratch_path))
		errno = ENAMETOOLONG;
	else if (mkdtemp(scratch_path))
		return scratch_path;
	printf("Bail out! mkdtemp: %s\n", strerror(errno));
	exit(255);
}

static inline int scratch_open(void)
{
	int fd = open(scratch_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		printf("Bail out! open %s: %s\n", scratch_path, strerror(errno));
		exit(255);
	}
	return fd;
}

static inline void scratch_remove(void)
{
	if (remove_tree(AT_FDCWD, scratch_path) < 0)
		diag("remove %s: %s", scratch_path, strerror(errno));
}

#endif
