/*
 * tests/faults/cookie.h: stdio streams made by fdopen(), written through
 * the including preload library's write() wrapper.  glibc's stdio writes
 * through an internal alias of write, which an LD_PRELOAD cannot see, so
 * fdopen() of a writable mode is replaced by a fopencookie() stream whose
 * write is that wrapper, and fileno() knows those streams.  Shared by the
 * fault shim (tests/faults/shim.c) and the power-loss recorder
 * (tests/powerloss/record.c), which include it after defining write(),
 * real_read, real_fdopen and real_fileno.
 */

#define NCOOKIES 256
static struct cookie {
	FILE *fp;
	int fd;
	int used;
} cookies[NCOOKIES];

static ssize_t ck_read(void *c, char *buf, size_t n)
{
	return real_read(((struct cookie *)c)->fd, buf, n);
}

static ssize_t ck_write(void *c, const char *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(((struct cookie *)c)->fd, buf + done, n - done);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return done ? (ssize_t)done : -1;
		}
		done += (size_t)w;
	}
	return (ssize_t)done;
}

static int ck_seek(void *c, off64_t *off, int whence)
{
	off64_t r = lseek64(((struct cookie *)c)->fd, *off, whence);
	if (r < 0)
		return -1;
	*off = r;
	return 0;
}

static int ck_close(void *c)
{
	struct cookie *k = c;
	int rc = close(k->fd);
	k->used = 0;
	k->fp = NULL;
	return rc;
}

FILE *fdopen(int fd, const char *mode)
{
	if (!strpbrk(mode, "wa+"))
		return real_fdopen(fd, mode);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return NULL; /* EBADF, as fdopen says */
	if (strchr(mode, 'a') && !(fl & O_APPEND))
		fcntl(fd, F_SETFL, fl | O_APPEND);
	struct cookie *k = NULL;
	for (int i = 0; i < NCOOKIES && !k; i++)
		if (!cookies[i].used)
			k = &cookies[i];
	if (!k)
		return real_fdopen(fd, mode);
	k->used = 1;
	k->fd = fd;
	cookie_io_functions_t io = { ck_read, ck_write, ck_seek, ck_close };
	FILE *fp = fopencookie(k, mode, io);
	if (!fp) {
		k->used = 0;
		return NULL;
	}
	k->fp = fp;
	return fp;
}

int fileno(FILE *fp)
{
	for (int i = 0; i < NCOOKIES; i++)
		if (cookies[i].used && cookies[i].fp == fp)
			return cookies[i].fd;
	return real_fileno(fp);
}
