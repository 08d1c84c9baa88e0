#include "slots.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define AGENT_BASE ((off_t)1 << 40)

static off_t agent_base(const char *agent)
{
	/* 2^30 buckets of 65536 slots: distinct agents do not collide in
	 * practice, and the offsets stay far below the limits of off_t. */
	uint64_t h = hash64(agent, strlen(agent)) & ((1u << 30) - 1);
	return AGENT_BASE + (off_t)(h << 16);
}

static int try_lock(int fd, off_t off)
{
	struct flock fl = {
		.l_type = F_WRLCK, .l_whence = SEEK_SET,
		.l_start = off, .l_len = 1, .l_pid = 0,
	};
	return fcntl(fd, F_OFD_SETLK, &fl);
}

static int take_one(int fd, off_t base, int cap)
{
	for (int i = 0; i < cap; i++) {
		if (try_lock(fd, base + i) == 0)
			return 0;
		if (errno != EAGAIN && errno != EACCES)
			return -1;
	}
	errno = EAGAIN;
	return -1;
}

static int open_slots(int state_fd)
{
	return openat(state_fd, "slots",
		      O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
}

int slot_acquire(int state_fd, int global_cap, const char *agent,
		 int agent_cap, int *blocked)
{
	int fd = open_slots(state_fd), saved;
	*blocked = 0;
	if (fd < 0)
		return -1;
	if (take_one(fd, 0, global_cap) < 0) {
		*blocked = SLOT_GLOBAL;
		goto fail;
	}
	if (take_one(fd, agent_base(agent), agent_cap) < 0) {
		*blocked = SLOT_AGENT;
		goto fail;
	}
	return fd;
fail:
	saved = errno;
	close(fd); /* releases the global slot if it was taken */
	errno = saved;
	return -1;
}

void slot_release(int fd)
{
	struct flock fl = {
		.l_type = F_UNLCK, .l_whence = SEEK_SET,
		.l_start = 0, .l_len = 0, .l_pid = 0,
	};
	if (fd < 0)
		return;
	/* Every lock of this open file description, whoever else has it. */
	fcntl(fd, F_OFD_SETLK, &fl);
	close(fd);
}

int slot_count_held(int state_fd, const char *agent, int cap)
{
	int fd = open_slots(state_fd), held = 0;
	if (fd < 0)
		return -1;
	off_t base = agent ? agent_base(agent) : 0;
	for (int i = 0; i < cap; i++) {
		struct flock fl = {
			.l_type = F_WRLCK, .l_whence = SEEK_SET,
			.l_start = base + i, .l_len = 1, .l_pid = 0,
		};
		if (fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
			held++;
	}
	close(fd);
	return held;
}
