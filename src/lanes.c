#include "lanes.h"
#include "home.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PIPE_CHUNK (1u << 20)
static const char *const ext[2] = { "out", "err" };

/* The session number a name of output/ belongs to, 0: none. */
static unsigned long name_session(const char *name)
{
	char *end;
	if (name[0] < '1' || name[0] > '9')
		return 0;
	unsigned long s = strtoul(name, &end, 10);
	return (*end == '-' || *end == '.') && s <= UINT16_MAX ? s : 0;
}

/* output/ open, the session chosen (one past the highest there), and its
 * S.spawned created. */
static int lanes_begin(struct lanes *l, int batch_dirfd)
{
	if (l->dirfd < 0) {
		if (ensure_dir(batch_dirfd, "output", 0755) < 0 ||
		    (l->dirfd = open_dir_at(batch_dirfd, "output")) < 0)
			return -1;
	}
	if (l->session)
		return 0;
	char **names = home_names(l->dirfd, NULL);
	if (!names)
		return -1;
	unsigned long top = 0;
	for (size_t i = 0; names[i]; i++) {
		unsigned long s = name_session(names[i]);
		if (s > top)
			top = s;
	}
	words_free(names);
	if (top >= UINT16_MAX) {
		errno = EMLINK;
		return -1;
	}
	char name[32];
	snprintf(name, sizeof(name), "%lu.spawned", top + 1);
	l->spawned_fd = openat(l->dirfd, name,
			       O_WRONLY | O_CREAT | O_EXCL | O_APPEND |
				       O_NOFOLLOW | O_CLOEXEC,
			       0644);
	if (l->spawned_fd < 0)
		return -1;
	l->session = (uint16_t)(top + 1);
	return 0;
}

static int lane_open(struct lanes *l, struct lane *ln, size_t k)
{
	for (int s = 0; s < 2; s++) {
		char name[48];
		snprintf(name, sizeof(name), "%u-%zu.%s", l->session, k, ext[s]);
		ln->fd[s] = openat(l->dirfd, name,
				   O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
					   O_CLOEXEC,
				   0644);
		if (ln->fd[s] < 0) {
			int saved = errno;
			if (s) { /* the next try makes both again */
				close(ln->fd[0]);
				snprintf(name, sizeof(name), "%u-%zu.%s",
					 l->session, k, ext[0]);
				unlinkat(l->dirfd, name, 0);
			}
			ln->fd[0] = ln->fd[1] = -1;
			errno = saved;
			return -1;
		}
		ln->end[s] = 0;
	}
	return 0;
}

int lanes_take(struct lanes *l, int batch_dirfd, uint16_t *lane)
{
	if (lanes_begin(l, batch_dirfd) < 0)
		return -1;
	for (size_t k = 0; k < l->n; k++)
		if (!l->v[k].busy) {
			l->v[k].busy = true;
			*lane = (uint16_t)k;
			return 0;
		}
	if (l->n >= UINT16_MAX) {
		errno = EMLINK;
		return -1;
	}
	GROW(l->v, l->cap, l->n + 1);
	struct lane *ln = &l->v[l->n];
	memset(ln, 0, sizeof(*ln));
	if (lane_open(l, ln, l->n) < 0)
		return -1;
	ln->busy = true;
	*lane = (uint16_t)l->n++;
	return 0;
}

int lanes_note_spawn(struct lanes *l, uint16_t lane, uint32_t item,
		     uint32_t attempt)
{
	unsigned char e[8];
	uint32_t a = (attempt & 0xffffu) | (uint32_t)lane << 16;
	for (int i = 0; i < 4; i++) {
		e[i] = (unsigned char)(item >> (8 * i));
		e[4 + i] = (unsigned char)(a >> (8 * i));
	}
	return write_all(l->spawned_fd, e, sizeof(e));
}

void lanes_give(struct lanes *l, uint16_t lane, uint64_t out_end,
		uint64_t err_end)
{
	if (lane >= l->n)
		return;
	struct lane *ln = &l->v[lane];
	ln->busy = false;
	ln->used = true;
	ln->end[0] = out_end;
	ln->end[1] = err_end;
}

void lanes_close(struct lanes *l)
{
	for (size_t k = 0; k < l->n; k++)
		for (int s = 0; s < 2; s++)
			if (l->v[k].fd[s] >= 0)
				close(l->v[k].fd[s]);
	free(l->v);
	if (l->spawned_fd >= 0)
		close(l->spawned_fd);
	if (l->dirfd >= 0)
		close(l->dirfd);
	*l = (struct lanes)LANES_INIT;
}

/* ---- capture ---- */

static char drop_buf[65536];

/* Read and forget what the pipe holds: 1 at end of file, 0 for now. */
static int drain_drop(struct capture *c, int rounds)
{
	for (int i = 0; i < rounds * 16; i++) {
		ssize_t n = read(c->rd, drop_buf, sizeof(drop_buf));
		if (n > 0) {
			c->dropped += (uint64_t)n;
			continue;
		}
		if (n == 0)
			return 1;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN ? 0 : 1;
	}
	return 0;
}

/* splice, or read and pwrite where splice cannot (some file systems). */
static ssize_t move_bytes(struct capture *c, size_t max)
{
	loff_t pos = (loff_t)(c->off + c->len);
	ssize_t n = splice(c->rd, NULL, c->fd, &pos, max, SPLICE_F_NONBLOCK);
	if (n >= 0 || errno != EINVAL)
		return n;
	size_t want = max < sizeof(drop_buf) ? max : sizeof(drop_buf);
	n = read(c->rd, drop_buf, want);
	if (n <= 0)
		return n;
	if (pwrite_all(c->fd, drop_buf, (size_t)n, (off_t)(c->off + c->len)) < 0) {
		c->dropped += (uint64_t)n; /* read, not kept */
		return -2;
	}
	return n;
}

int capture_pump(struct capture *c, uint64_t *budget, uint64_t limit,
		 int rounds)
{
	if (c->rd < 0)
		return 1;
	for (int i = 0; i < rounds; i++) {
		if (c->lost || (c->cut))
			return drain_drop(c, rounds - i);
		if (*budget == 0) {
			char note[160];
			int k = snprintf(note, sizeof(note),
					 "\n[runner: output past max_output "
					 "(%" PRIu64 " bytes for stdout and "
					 "stderr together) dropped]\n",
					 limit);
			if (pwrite_all(c->fd, note, (size_t)k,
				       (off_t)(c->off + c->len)) == 0)
				c->len += (uint64_t)k;
			c->cut = true;
			continue;
		}
		size_t max = *budget < PIPE_CHUNK ? (size_t)*budget : PIPE_CHUNK;
		ssize_t n = move_bytes(c, max);
		if (n > 0) {
			c->len += (uint64_t)n;
			*budget -= (uint64_t)n;
			continue;
		}
		if (n == 0)
			return 1;
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return 0;
		/* The lane file cannot take it (disk full, I/O error): what
		 * follows is read and dropped, and the attempt says so. */
		c->lost = true;
		c->lost_errno = n == -2 ? errno : errno ? errno : EIO;
	}
	return 0;
}

void capture_close(struct capture *c)
{
	if (c->rd >= 0)
		close(c->rd);
	c->rd = -1;
}

/* ---- recovery and readers ---- */

int lanes_each_spawned(int batch_dirfd,
		       void (*fn)(void *arg, uint32_t item, uint32_t attempt),
		       void *arg)
{
	int dfd = open_dir_at(batch_dirfd, "output");
	if (dfd < 0)
		return errno == ENOENT ? 0 : -1;
	char **names = home_names(dfd, NULL);
	if (!names) {
		close(dfd);
		return -1;
	}
	for (size_t i = 0; names[i]; i++) {
		size_t len = strlen(names[i]);
		if (!name_session(names[i]) || len < 8 ||
		    strcmp(names[i] + len - 8, ".spawned"))
			continue;
		int fd = openat(dfd, names[i],
				O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		unsigned char buf[8192];
		size_t have = 0;
		for (;;) {
			ssize_t n = read(fd, buf + have, sizeof(buf) - have);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			have += (size_t)n;
			size_t k = 0;
			for (; k + 8 <= have; k += 8) {
				uint32_t item = 0, a = 0;
				for (int b = 0; b < 4; b++) {
					item |= (uint32_t)buf[k + b] << (8 * b);
					a |= (uint32_t)buf[k + 4 + b] << (8 * b);
				}
				fn(arg, item, a & 0xffffu);
			}
			memmove(buf, buf + k, have - k);
			have -= k;
		}
		close(fd);
	}
	words_free(names);
	close(dfd);
	return 0;
}

int lanes_stream_where(const char *symbol, uint32_t attempt,
		       const struct attempt *a, int stream, char *path,
		       size_t n, uint64_t *off, uint64_t *len)
{
	if (a->session) {
		snprintf(path, n, "output/%u-%u.%s", a->session, a->lane,
			 ext[stream]);
		*off = stream == STREAM_OUT ? a->out_off : a->err_off;
		*len = !(a->out_flags & OUTF_ENDED) ? UINT64_MAX
		       : stream == STREAM_OUT	    ? a->out_len
						    : a->err_len;
		return 0;
	}
	snprintf(path, n, "items/%s/attempt-%u.%s", symbol, attempt,
		 ext[stream]);
	*off = 0;
	*len = UINT64_MAX;
	if (!a->started_ms) {
		errno = ENOENT;
		return -1;
	}
	return 0;
}

int lanes_open_stream(int batch_dirfd, const char *symbol, uint32_t attempt,
		      const struct attempt *a, int stream, uint64_t *off,
		      uint64_t *len)
{
	char path[256];
	if (lanes_stream_where(symbol, attempt, a, stream, path, sizeof(path),
			       off, len) < 0)
		return -1;
	int fd = openat(batch_dirfd, path,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	if (fd >= 0 && !a->session && (a->completed_ms || a->outcome))
		*len = (uint64_t)st.st_size; /* whole file, it ended */
	return fd;
}
