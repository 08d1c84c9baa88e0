#include "control.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REQ_MAX (1u << 20)

int control_send(struct home *h, const char *batch, const char *json,
		 int timeout_ms, struct sb *reply)
{
	char tag[64], req[256], ack[256];
	snprintf(tag, sizeof(tag), "%d-%016llx", (int)getpid(),
		 (unsigned long long)random_u64());
	snprintf(req, sizeof(req), "%s.%s.req", batch, tag);
	snprintf(ack, sizeof(ack), "%s.%s.ack", batch, tag);
	if (home_replace(h->control, req, json, strlen(json)) < 0)
		return -1;
	int64_t deadline = mono_ms() + timeout_ms;
	for (;;) {
		int fd = openat(h->control, ack, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			sb_reset(reply);
			read_fd_bounded(fd, REQ_MAX, reply);
			close(fd);
			unlinkat(h->control, ack, 0);
			return 0;
		}
		if (mono_ms() >= deadline)
			break;
		struct timespec ts = { 0, 5 * 1000000 };
		nanosleep(&ts, NULL);
	}
	/* Nobody answered: withdraw the request, unless it is being handled. */
	if (unlinkat(h->control, req, 0) < 0 && errno == ENOENT) {
		/* Taken just now: give the owner a moment for the ack. */
		for (int i = 0; i < 200; i++) {
			int fd = openat(h->control, ack,
					O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0) {
				sb_reset(reply);
				read_fd_bounded(fd, REQ_MAX, reply);
				close(fd);
				unlinkat(h->control, ack, 0);
				return 0;
			}
			struct timespec ts = { 0, 5 * 1000000 };
			nanosleep(&ts, NULL);
		}
	}
	errno = ETIMEDOUT;
	return -1;
}

/* "<batch>.<tag>.req" -> batch, or false when the name is not a request. */
static bool request_batch(const char *name, char *batch, size_t n)
{
	if (name[0] == '.' || !str_has_suffix(name, ".req"))
		return false;
	size_t len = strlen(name) - 4;
	const char *dot = NULL;
	for (size_t i = len; i-- > 0;)
		if (name[i] == '.') {
			dot = name + i;
			break;
		}
	if (!dot || (size_t)(dot - name) >= n)
		return false;
	memcpy(batch, name, (size_t)(dot - name));
	batch[dot - name] = '\0';
	return true;
}

bool control_request_name(const char *name)
{
	char batch[128];
	return request_batch(name, batch, sizeof(batch));
}

int control_poll(struct home *h, control_owns_fn owns, control_fn fn,
		 void *arg)
{
	size_t all;
	char **names = home_names(h->control, &all);
	if (!names)
		return -1;
	for (size_t k = 0; k < all; k++) {
		const char *name = names[k];
		char batch[128];
		if (!request_batch(name, batch, sizeof(batch)) ||
		    !owns(arg, batch))
			continue;
		int rfd = openat(h->control, name,
				 O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (rfd < 0)
			continue;
		struct sb body = SB_INIT, reply = SB_INIT;
		struct stat st;
		if (fstat(rfd, &st) == 0 && S_ISREG(st.st_mode) &&
		    read_fd_bounded(rfd, REQ_MAX, &body) == 0) {
			fn(arg, batch, body.buf ? body.buf : "", &reply);
		} else {
			sb_adds(&reply, "{\"ok\":false,\"error\":\"unreadable request\"}");
		}
		close(rfd);
		char ack[300];
		snprintf(ack, sizeof(ack), "%.*s.ack",
			 (int)(strlen(name) - 4), name);
		if (home_replace(h->control, ack, reply.buf ? reply.buf : "",
				 reply.len) < 0)
			warning("state/control/%s: %s", ack, strerror(errno));
		unlinkat(h->control, name, 0);
		sb_release(&body);
		sb_release(&reply);
	}
	words_free(names);
	return 0;
}

int control_sweep(struct home *h, int64_t older_than_s)
{
	size_t all;
	int removed = 0;
	char **names = home_names(h->control, &all);
	if (!names)
		return -1;
	time_t now = time(NULL);
	for (size_t k = 0; k < all; k++) {
		const char *name = names[k];
		struct stat st;
		if (!control_request_name(name) &&
		    (name[0] == '.' || !str_has_suffix(name, ".ack")))
			continue;
		if (fstatat(h->control, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    now - st.st_mtime < older_than_s)
			continue;
		if (unlinkat(h->control, name, 0) == 0)
			removed++;
	}
	words_free(names);
	int temps = remove_stale_temps(h->control, NULL, older_than_s);
	return removed + (temps > 0 ? temps : 0);
}
