#include "daemon.h"
#include "util.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static int open_lock(struct home *h)
{
	return openat(h->state, "daemon.lock",
		      O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
}

static void read_info(struct home *h, struct daemon_info *info)
{
	char buf[512];
	memset(info, 0, sizeof(*info));
	int fd = openat(h->state, "daemon.pid", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read_all(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	cJSON *o = cJSON_Parse(buf);
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "pid");
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "started_at");
	if (cJSON_IsNumber(p))
		info->pid = (pid_t)p->valuedouble;
	if (cJSON_IsString(s) && s->valuestring)
		parse_time_arg(s->valuestring, &info->started_ms, NULL);
	cJSON_Delete(o);
}

/* An open-file-description lock: others can test it (F_OFD_GETLK)
 * without taking it, so a check never stops a daemon from starting. */
static struct flock whole(short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET,
			    .l_start = 0, .l_len = 1, .l_pid = 0 };
	return fl;
}

int daemon_lock(struct home *h)
{
	char t[TIME_BUF], text[128];
	int fd = open_lock(h);
	if (fd < 0)
		return -1;
	struct flock fl = whole(F_WRLCK);
	if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		int saved = errno == EACCES ? EWOULDBLOCK : errno;
		close(fd);
		errno = saved;
		return -1;
	}
	remove_stale_temps(h->state, "daemon.pid", 0);
	snprintf(text, sizeof(text), "{\"pid\":%d,\"started_at\":\"%s\"}\n",
		 (int)getpid(), fmt_time(now_ms(), t));
	if (home_replace(h->state, "daemon.pid", text, strlen(text)) < 0)
		warning("state/daemon.pid: %s", strerror(errno));
	return fd;
}

void daemon_unlock(struct home *h, int fd)
{
	unlinkat(h->state, "daemon.pid", 0);
	close(fd);
}

int daemon_running(struct home *h, struct daemon_info *info)
{
	int fd = open_lock(h);
	memset(info, 0, sizeof(*info));
	if (fd < 0)
		return 0;
	struct flock fl = whole(F_WRLCK);
	int held = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
	close(fd);
	if (held)
		read_info(h, info);
	return held;
}
