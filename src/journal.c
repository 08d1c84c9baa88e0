#include "journal.h"
#include "home.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
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

/* A SIGTERM or SIGINT waiting while blocked (a runner reads them from a
 * signalfd only between steps of its loop): a long replay gives up, so
 * the command stays stoppable.  Where they are not blocked, they act. */
static bool stop_pending(void)
{
	sigset_t set;
	return sigpending(&set) == 0 &&
	       (sigismember(&set, SIGTERM) == 1 ||
		sigismember(&set, SIGINT) == 1);
}

#define STOP_EVERY (1 << 20) /* bytes between looks at stop_pending() */

#define MAX_LOST (1ull << 32) /* records a damage could have swallowed */

enum resync { RESYNC_NONE, RESYNC_FOUND, RESYNC_GAVE_UP, RESYNC_ERROR };

/*
 * The first record after from that verifies: a frame whose length
 * fits, whose seq is at least min_seq and not absurdly beyond it (a
 * record cut out leaves no bytes behind, so the bytes in between bound
 * nothing), and whose checksum holds.
 * One pass forward; only plausible frames are checksummed, and the bytes
 * checksummed or read for them are bounded by a multiple of the bytes
 * searched, so hostile contents (a frame of plausible length at every
 * offset) cost linear time: past the bound the search gives up.
 */
static enum resync resync(struct rd *r, off_t from, off_t size,
			  uint32_t salt, uint64_t min_seq, off_t *at,
			  uint64_t *seq_at)
{
	uint64_t budget = 4 * (uint64_t)(size - from) + (1u << 20);
	off_t next_look = from + STOP_EVERY;
	for (off_t p = from + 1; p + FRAME < size; p++) {
		if (p >= next_look) {
			next_look = p + STOP_EVERY;
			if (stop_pending()) {
				errno = EINTR;
				return RESYNC_ERROR;
			}
		}
		const unsigned char *f = rd_at(r, p, FRAME);
		if (!f)
			return RESYNC_ERROR;
		uint32_t len = get32(f), crc = get32(f + 4);
		uint64_t seq = get64(f + 8);
		if (!len || len > JOURNAL_MAX_RECORD ||
		    p + FRAME + (off_t)len > size || seq < min_seq ||
		    seq - min_seq > MAX_LOST)
			continue;
		if (budget < len)
			return RESYNC_GAVE_UP;
		budget -= len;
		const unsigned char *pl = rd_at(r, p + FRAME, len);
		if (!pl)
			return RESYNC_ERROR;
		if (frame_crc(salt, seq, len, pl) == crc) {
			*at = p;
			*seq_at = seq;
			return RESYNC_FOUND;
		}
	}
	return RESYNC_NONE;
}

/* Hand fn the whole, verified records from off up to size, in sequence:
 * where they stop (a short, torn or out-of-sequence frame, or one fn
 * refused: j->corrupt); *n counts them.  A pending SIGTERM or SIGINT
 * stops it too (j->stopped). */
static off_t read_records(struct journal *j, struct rd *r, off_t off,
			  off_t size, journal_fn fn, void *arg, int *n)
{
	off_t next_look = off + STOP_EVERY;
	while (off + FRAME <= size) {
		if (off >= next_look) {
			next_look = off + STOP_EVERY;
			if (stop_pending()) {
				j->stopped = true;
				break;
			}
		}
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
			j->resume_at = off;
			snprintf(j->why, sizeof(j->why),
				 "record %llu at offset %lld verifies but does "
				 "not fit what came before it",
				 (unsigned long long)seq, (long long)off);
			break;
		}
		j->next_seq++;
		off += FRAME + (off_t)len;
		if (n)
			(*n)++;
	}
	return off;
}

/* What is wrong with a header (h: the first bytes, got of them). */
static const char *header_fault(const unsigned char *h, off_t got, char *why,
				size_t n)
{
	if (got == 0)
		snprintf(why, n, "empty file: not a runner journal");
	else if (got < HEADER)
		snprintf(why, n, "%lld bytes, shorter than a journal's %d-byte "
			 "header", (long long)got, HEADER);
	else if (memcmp(h, MAGIC, 8))
		snprintf(why, n, "not a runner journal (no RUNJRNL header at "
			 "offset 0)");
	else if (get32(h + 8) != VERSION)
		snprintf(why, n, "journal version %lu at offset 8 is not %d",
			 (unsigned long)get32(h + 8), VERSION);
	else if (get32(h + 16) != (uint32_t)crc32(0L, h, 16))
		snprintf(why, n, "journal header damaged (its checksum at "
			 "offset 16 does not match)");
	else
		return NULL;
	return why;
}

/* Read the header of r's file (size bytes) into j: 0, or -1 (EINVAL, with
 * j->why) for a header no record could be verified against. */
static int read_header(struct journal *j, struct rd *r, off_t size)
{
	static const unsigned char none[HEADER];
	size_t got = size < HEADER ? (size_t)size : HEADER;
	const unsigned char *h = got ? rd_at(r, 0, got) : none;
	if (!h) {
		if (!errno)
			errno = EIO; /* it shrank under us */
		return -1;
	}
	if (header_fault(h, (off_t)got, j->why, sizeof(j->why))) {
		j->corrupt = true;
		j->corrupt_at = 0;
		j->resume_at = -1;
		errno = EINVAL;
		return -1;
	}
	j->salt = get32(h + 12);
	j->next_seq = 1;
	return 0;
}

/* After the records stop at off (not at the end): damage in the middle,
 * or a torn tail?  Fills j (corrupt, why) for damage.  0, or -1 (errno). */
static int judge_stop(struct journal *j, struct rd *r, off_t off, off_t size)
{
	off_t at;
	uint64_t seq;
	switch (resync(r, off, size, j->salt, j->next_seq, &at, &seq)) {
	case RESYNC_NONE:
		return 0;
	case RESYNC_FOUND:
		j->corrupt = true;
		j->corrupt_at = off;
		j->resume_at = at;
		snprintf(j->why, sizeof(j->why),
			 "damaged at offset %lld: %lld bytes that do not verify, "
			 "then record %llu verifies at offset %lld",
			 (long long)off, (long long)(at - off),
			 (unsigned long long)seq, (long long)at);
		return 0;
	case RESYNC_GAVE_UP:
		j->corrupt = true;
		j->corrupt_at = off;
		j->resume_at = -1;
		snprintf(j->why, sizeof(j->why),
			 "damaged at offset %lld: %lld bytes that do not verify "
			 "(too many false frames to search them all)",
			 (long long)off, (long long)(size - off));
		return 0;
	case RESYNC_ERROR:
		break;
	}
	return -1;
}

int journal_open(struct journal *j, int dirfd, const char *name,
		 bool writable, journal_fn fn, void *arg)
{
	struct rd r = { 0 };
	struct stat st;
	off_t off = HEADER;
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
		snprintf(j->why, sizeof(j->why), "not a regular file");
		errno = EINVAL;
		goto fail;
	}
	r.fd = j->fd;
	/* A damaged header: no record can be verified, so nothing may be
	 * cut either.  (A header that never reached the disk means the
	 * batch never existed: its claim is redone.) */
	if (read_header(j, &r, st.st_size) < 0)
		goto fail;

	off = read_records(j, &r, off, st.st_size, fn, arg, NULL);
	if (j->stopped) {
		errno = EINTR;
		goto fail;
	}
	if (!j->corrupt && off < st.st_size &&
	    judge_stop(j, &r, off, st.st_size) < 0)
		goto fail;
	free(r.buf);
	r.buf = NULL;
	j->size = j->synced = off;
	if (!j->corrupt && off < st.st_size)
		j->torn_bytes = st.st_size - off;
	/* A writable open cuts the torn tail at its first write
	 * (journal_cut), not here: a caller that refuses the batch for what
	 * the records say leaves the file as it found it. */
	(void)writable;
	return 0;
fail:
	saved = errno;
	free(r.buf);
	close(j->fd);
	j->fd = -1;
	errno = saved;
	return -1;
}

int journal_cut(struct journal *j)
{
	if (!j->torn_bytes || j->cut)
		return 0;
	if (ftruncate(j->fd, j->size) < 0 || fdatasync(j->fd) < 0)
		return -1;
	j->cut = true;
	return 0;
}

int journal_check(int dirfd, const char *name, journal_span_fn fn, void *arg,
		  char *why, size_t whylen)
{
	struct journal j;
	struct rd r = { 0 };
	struct stat st;
	int rc = -1, saved;

	memset(&j, 0, sizeof(j));
	why[0] = '\0';
	j.fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
					   O_CLOEXEC);
	if (j.fd < 0)
		return -1;
	if (fstat(j.fd, &st) < 0)
		goto out;
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "not a regular file");
		errno = EINVAL;
		goto out;
	}
	r.fd = j.fd;
	if (read_header(&j, &r, st.st_size) < 0) {
		snprintf(why, whylen, "%s", j.why);
		goto out;
	}
	off_t off = HEADER;
	bool damaged = false;
	while (off < st.st_size) {
		struct journal_span s = { .off = off, .first_seq = j.next_seq };
		off_t end = read_records(&j, &r, off, st.st_size, NULL, NULL,
					 NULL);
		if (j.stopped) {
			errno = EINTR;
			goto out;
		}
		if (end > off) {
			s.kind = JSPAN_RECORDS;
			s.end = end;
			s.last_seq = j.next_seq - 1;
			fn(arg, &s);
			off = end;
			continue;
		}
		off_t at;
		uint64_t seq;
		enum resync rs = resync(&r, off, st.st_size, j.salt,
					j.next_seq, &at, &seq);
		if (rs == RESYNC_ERROR)
			goto out;
		s = (struct journal_span){ .off = off, .end = st.st_size,
					   .kind = damaged ? JSPAN_DAMAGED
							   : JSPAN_TORN };
		if (rs == RESYNC_FOUND) {
			s.kind = JSPAN_DAMAGED;
			s.end = at;
			j.next_seq = seq;
		} else if (rs == RESYNC_GAVE_UP) {
			s.kind = JSPAN_DAMAGED;
			s.gave_up = true;
		}
		damaged = damaged || s.kind == JSPAN_DAMAGED;
		fn(arg, &s);
		off = s.end;
	}
	rc = 0;
out:
	saved = errno;
	free(r.buf);
	close(j.fd);
	errno = saved;
	return rc;
}

int journal_follow(struct journal *j, journal_fn fn, void *arg)
{
	struct rd r = { .fd = j->fd };
	struct stat st;
	int n = 0;
	j->stopped = false;
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
	if (journal_cut(j) < 0)
		return -1;
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
