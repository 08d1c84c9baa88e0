/*
 * Fuzz the configuration parser: the input is conf/runner.ini's bytes,
 * written to the scratch directory and loaded as the runner loads it
 * (conf_load: every key checked, agents' commands resolved on PATH,
 * classify patterns compiled).
 */
#include "conf.h"
#include "fuzz.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[512];
	int dirfd = fuzz_scratch();
	if (!*path)
		snprintf(path, sizeof(path), "%s/runner.ini",
			 fuzz_scratch_path());
	/* A new file each time: truncating one in place makes ext4 flush
	 * it on close (auto_da_alloc), a hundred times slower. */
	unlinkat(dirfd, "runner.ini", 0);
	int fd = openat(dirfd, "runner.ini",
			O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, data, size) < 0)
		die(EX_IOERR_, "fuzz: %s: %s", path, strerror(errno));
	close(fd);
	struct conf *c = conf_load(path);
	if (c) {
		for (size_t i = 0; i < c->nagents; i++)
			if (conf_agent(c, c->agents[i].name) != &c->agents[i])
				BUG("agent %s is not found by its name",
				    c->agents[i].name);
		conf_free(c);
	}
	return 0;
}
