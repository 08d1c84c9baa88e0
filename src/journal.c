#include "journal.h"
#include "home.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MAGIC "RUNJRNL"
#define VERSION 1
#define HEADER 24
#define FRAME 16

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint32_t frame_crc(uint32_t salt, uint64_t seq, uint32_t len,
			  const void *payload)
{
	unsigned char pre[16];
	put32(pre, salt);
	put64(pre + 4, seq);
	put32(pre + 12, len);
	uLong crc = crc32(0L, Z_NULL, 0);
	crc = crc32(crc, pre, sizeof(pre));
	/* zlib takes uInt lengths; records are bounded well below 4 GiB. */
	crc = crc32(crc, payload, (uInt)len);
	return (uint32_t)crc;
}

int journal_create(struct journal *j, int dirfd, const char *name)
{
	unsigned char h[HEADER];
	memset(j, 0, sizeof(*j));
	j->fd = openat(dirfd, name,
		       O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC |
			       O_APPEND,
		       0644);
	if (j->fd < 0)
		return -1;
	random_bytes(&j->salt, sizeof(j->salt));
	memset(h, 0, sizeof(h));
	memcpy(h, MAGIC, 8);
	put32(h + 8, VERSION);
	put32(h + 12, j->salt);
	put32(h + 16, (uint32_t)crc32(0L, h, 16));
	if (write_all(j->fd, h, sizeof(h)) < 0 || fdatasync(j->fd) < 0 ||
	    fsync_dir(dirfd) < 0) {
		int saved = errno;
		close(j->fd);
		unlinkat(dirfd, name, 0);
		j->fd = -1;
		errno = saved;
		return -1;
	}
	j->size = j->synced = HEADER;
	j->next_seq = 1;
	return 0;
}

/* Buffered sequential reader over the journal file. */
struct rd {
	int fd;
	unsigned char *buf;
	size_t cap, start, end;	/* valid bytes are buf[start, end) */
	off_t base;		/* file offset of buf[0] */
	bool eof;
};

/* Make n bytes at file offset off available; returns a pointer or NULL. */
static const unsigned char *rd_at(struct rd *r, off_t off, size_t n)
{
	if (off >= r->base && (size_t)(off - r->base) + n <= r->end)
		return r->buf + (off - r->base);
	/* Slide the window to start at off, growing for large records. */
	size_t want = n > (1u << 20) ? n : (1u << 20);
	if (r->cap < want) {
		r->buf = xrealloc(r->buf, want);
		r->cap = want;
	}
	r->base = off;
	r->end = 0;
	while (r->end < n) {
		ssize_t got = pread(r->fd, r->buf + r->end, r->cap - r->end,
				    off + (off_t)r->end);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (got == 0)
			return NULL;
		r->end += (size_t)got;
	}
	return r->buf;
}

/* Is there a verifiable record of this journal anywhere after off? */
static bool valid_record_after(struct rd *r, off_t off, off_t file_size,
			       uint32_t salt, uint64_t min_seq)
{
	for (off_t p = off + 1; p + FRAME <= file_size; p++) {
		const unsigned char *f = rd_at(r, p, FRAME);
		if (!f)
			return false;
		uint32_t len = get32(f), crc = get32(f + 4);
		uint64_t seq = get64(f + 8);
		if (!len || len > JOURNAL_MAX_RECORD || seq < min_seq ||
		    p + FRAME + (off_t)len > file_size)
			continue;
		const unsigned char *pl = rd_at(r, p + FRAME, len);
		if (pl && frame_crc(salt, seq, len, pl) == crc)
			return true;
	}
	return false;
}

/* Hand fn the whole, verified records from off up to size, in sequence:
 * where they stop (a short, torn or out-of-sequence frame, or one fn
 * refused: j->corrupt); *n counts them. */
static off_t read_records(struct journal *j, struct rd *r, off_t off,
			  off_t size, journal_fn fn, void *arg, int *n)
{
	while (off + FRAME <= size) {
		const unsigned char *f = rd_at(r, off, FRAME);
		if (!f)
			break;
		uint32_t len = get32(f), crc = get32(f + 4);
		uint64_t seq = get64(f + 8);
		if (!len || len > JOURNAL_MAX_RECORD || seq != j->next_seq ||
		    off + FRAME + (off_t)len > size)
			break;
		const unsigned char *pl = rd_at(r, off + FRAME, len);
		if (!pl || frame_crc(j->salt, seq, len, pl) != crc)
			break;
		if (fn && fn(arg, pl, len) < 0) {
			j->corrupt = true;
			j->corrupt_at = off;
			break;
		}
		j->next_seq++;
		off += FRAME + (off_t)len;
		if (n)
			(*n)++;
	}
	return off;
}

int journal_open(struct journal *j, int dirfd, const char *name,
		 bool writable, journal_fn fn, void *arg)
{
	struct rd r = { 0 };
	struct stat st;
	off_t off = HEADER;
	const unsigned char *h;
	int saved;

	memset(j, 0, sizeof(*j));
	j->fd = openat(dirfd, name,
		       (writable ? O_RDWR | O_APPEND : O_RDONLY) | O_NOFOLLOW |
			       O_NONBLOCK | O_CLOEXEC);
	if (j->fd < 0)
		return -1;
	if (fstat(j->fd, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	r.fd = j->fd;
	h = rd_at(&r, 0, HEADER);
	if (!h || memcmp(h, MAGIC, 8) || get32(h + 8) != VERSION ||
	    get32(h + 16) != (uint32_t)crc32(0L, h, 16)) {
		/* A damaged header: no record can be verified, so nothing may
		 * be cut either.  (A header that never reached the disk means
		 * the batch never existed: its claim is redone.) */
		j->corrupt = true;
		j->corrupt_at = 0;
		errno = EINVAL;
		goto fail;
	}
	j->salt = get32(h + 12);
	j->next_seq = 1;

	off = read_records(j, &r, off, st.st_size, fn, arg, NULL);
	if (!j->corrupt && off < st.st_size &&
	    valid_record_after(&r, off, st.st_size, j->salt, j->next_seq)) {
		j->corrupt = true;
		j->corrupt_at = off;
	}
	free(r.buf);
	r.buf = NULL;
	j->size = j->synced = off;
	if (!j->corrupt && off < st.st_size) {
		j->torn_bytes = st.st_size - off;
		if (writable &&
		    (ftruncate(j->fd, off) < 0 || fdatasync(j->fd) < 0))
			goto fail;
	}
	return 0;
fail:
	saved = errno;
	free(r.buf);
	close(j->fd);
	j->fd = -1;
	errno = saved;
	return -1;
}

int journal_follow(struct journal *j, journal_fn fn, void *arg)
{
	struct rd r = { .fd = j->fd };
	struct stat st;
	int n = 0;
	if (j->corrupt) {
		errno = EINVAL;
		return -1;
	}
	if (fstat(j->fd, &st) < 0)
		return -1;
	off_t off = read_records(j, &r, j->size, st.st_size, fn, arg, &n);
	if (j->corrupt) {
		n = -1;
		errno = EINVAL;
	}
	free(r.buf);
	j->size = j->synced = off;
	return n;
}

void journal_add(struct journal *j, const void *payload, size_t len)
{
	unsigned char f[FRAME];
	if (len == 0 || len > JOURNAL_MAX_RECORD)
		BUG("journal record of %zu bytes", len);
	if (j->corrupt)
		BUG("append to a corrupt journal");
	put32(f, (uint32_t)len);
	put32(f + 4, frame_crc(j->salt, j->next_seq, (uint32_t)len, payload));
	put64(f + 8, j->next_seq);
	j->next_seq++;
	sb_add(&j->pending, f, sizeof(f));
	sb_add(&j->pending, payload, len);
	if (!j->pending_records++ && j->size == j->synced)
		j->oldest_unsynced_ns = mono_ns();
}

int journal_write(struct journal *j)
{
	if (j->failed) {
		errno = j->failed;
		return -1;
	}
	if (!j->pending.len)
		return 0;
	if (write_all(j->fd, j->pending.buf, j->pending.len) < 0) {
		int saved = errno;
		/* Undo a partial write so the file ends on a record boundary;
		 * the records stay pending and can be written again later. */
		if (ftruncate(j->fd, j->size) < 0) {
			j->failed = errno;
			return -1;
		}
		errno = saved;
		return -1;
	}
	j->size += (off_t)j->pending.len;
	sb_reset(&j->pending);
	j->pending_records = 0;
	return 0;
}

int journal_sync(struct journal *j)
{
	if (journal_write(j) < 0)
		return -1;
	if (j->synced == j->size)
		return 0;
	if (fdatasync(j->fd) < 0) {
		j->failed = errno ? errno : EIO;
		return -1;
	}
	j->synced = j->size;
	return 0;
}

bool journal_dirty(const struct journal *j)
{
	return j->pending.len || j->synced != j->size;
}

void journal_close(struct journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	sb_release(&j->pending);
}
