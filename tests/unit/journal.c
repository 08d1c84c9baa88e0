/*
 * journal: framing, replay, torn-tail cut, damage detection, retryable
 * writes (src/journal.h).
 */
#include "journal.h"
#include "scratch.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>


#define HDR 24
#define FRM 16

static int dfd = -1;

/* ---- scratch files ---- */

static unsigned char *slurp(const char *name, size_t *len)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	struct stat st;
	unsigned char *buf;
	if (fd < 0 || fstat(fd, &st) < 0) {
		printf("Bail out! slurp %s: %s\n", name, strerror(errno));
		exit(255);
	}
	buf = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = pread(fd, buf + got, (size_t)st.st_size - got,
				  (off_t)got);
		if (r <= 0) {
			printf("Bail out! read %s\n", name);
			exit(255);
		}
		got += (size_t)r;
	}
	close(fd);
	*len = got;
	return buf;
}

static void spew(const char *name, const void *buf, size_t len)
{
	unlinkat(dfd, name, 0);
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			0644);
	if (fd < 0 || (len && write(fd, buf, len) != (ssize_t)len) ||
	    close(fd) < 0) {
		printf("Bail out! spew %s: %s\n", name, strerror(errno));
		exit(255);
	}
}

static off_t fsize(const char *name)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	return st.st_size;
}

static bool same_file(const char *name, const void *buf, size_t len)
{
	size_t n;
	unsigned char *got = slurp(name, &n);
	bool same = n == len && !memcmp(got, buf, len);
	free(got);
	return same;
}

/* ---- payloads ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

struct payload {
	unsigned char *p;
	size_t len;
};

static struct payload mkpayload(size_t len)
{
	struct payload pl = { malloc(len ? len : 1), len };
	for (size_t i = 0; i < len; i++)
		pl.p[i] = (unsigned char)next_rand();
	return pl;
}

/* ---- a replay callback that keeps what it is given ---- */

struct collect {
	struct payload *recs;
	size_t n, cap;
	long fail_at;	/* return -1 on this call (0-based), -1: never */
	size_t calls;
};

static int collect_fn(void *arg, const void *payload, size_t len)
{
	struct collect *c = arg;
	if (c->fail_at >= 0 && c->calls++ == (size_t)c->fail_at)
		return -1;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->recs = realloc(c->recs, c->cap * sizeof(*c->recs));
	}
	c->recs[c->n].p = malloc(len);
	memcpy(c->recs[c->n].p, payload, len);
	c->recs[c->n].len = len;
	c->n++;
	return 0;
}

static void collect_init(struct collect *c)
{
	memset(c, 0, sizeof(*c));
	c->fail_at = -1;
}

static void collect_free(struct collect *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->recs[i].p);
	free(c->recs);
	collect_init(c);
}

/* The first k of want, in order, and nothing else? */
static bool collect_is(const struct collect *c, const struct payload *want,
		       size_t k)
{
	if (c->n != k)
		return false;
	for (size_t i = 0; i < k; i++)
		if (c->recs[i].len != want[i].len ||
		    memcmp(c->recs[i].p, want[i].p, want[i].len))
			return false;
	return true;
}

/* ---- building journals ---- */

static int make_journal(const char *name, const struct payload *pl, size_t n,
			struct journal *out)
{
	struct journal j = JOURNAL_INIT;
	unlinkat(dfd, name, 0);
	if (journal_create(&j, dfd, name) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		journal_add(&j, pl[i].p, pl[i].len);
	if (journal_sync(&j) < 0)
		return -1;
	if (out)
		*out = j;
	else
		journal_close(&j);
	return 0;
}

/* Offsets: off[i] is where record i starts, off[n] the end. */
static void offsets(const struct payload *pl, size_t n, off_t *off)
{
	off[0] = HDR;
	for (size_t i = 0; i < n; i++)
		off[i + 1] = off[i] + FRM + (off_t)pl[i].len;
}

static void put32le(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64le(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32le(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* A frame exactly as the format in journal.h describes it. */
static size_t craft_frame(unsigned char *out, uint32_t salt, uint64_t seq,
			  const void *payload, uint32_t len)
{
	unsigned char pre[16];
	put32le(pre, salt);
	put64le(pre + 4, seq);
	put32le(pre + 12, len);
	uLong crc = crc32(0L, Z_NULL, 0);
	crc = crc32(crc, pre, sizeof(pre));
	crc = crc32(crc, payload, len);
	put32le(out, len);
	put32le(out + 4, (uint32_t)crc);
	put64le(out + 8, seq);
	memcpy(out + FRM, payload, len);
	return FRM + len;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- tests ---- */

static void test_roundtrip(void)
{
	static const size_t sizes[] = {
		1, 2, 3, 15, 16, 17, 100, 255, 256, 4095, 4096, 4097,
		65535, 65536, 65537, 300000, (1u << 20) - 1, 1u << 20,
		7, (2u << 20) + 3, 1,
	};
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	struct payload pl[N + 4];
	struct journal j;
	struct collect c;
	off_t off[N + 5];

	for (size_t i = 0; i < N; i++)
		pl[i] = mkpayload(sizes[i]);
	for (size_t i = N; i < N + 4; i++)
		pl[i] = mkpayload(1 + i * 13);

	ok(make_journal("rt", pl, N, &j) == 0, "create and sync %d records of 1 byte .. 2 MiB", N);
	offsets(pl, N, off);
	is_int(j.size, off[N], "size after sync is the sum of the frames");
	is_int(j.synced, off[N], "synced == size");
	ok(!journal_dirty(&j), "not dirty after sync");
	is_int(j.next_seq, N + 1, "next_seq after %d adds", N);
	journal_close(&j);
	is_int(fsize("rt"), off[N], "file size is header + frames");

	collect_init(&c);
	ok(journal_open(&j, dfd, "rt", true, collect_fn, &c) == 0, "reopen writable");
	ok(collect_is(&c, pl, N), "same payloads in the same order");
	is_int(j.next_seq, N + 1, "next_seq continues at %d", N + 1);
	ok(!j.corrupt, "not corrupt");
	is_int(j.torn_bytes, 0, "nothing torn");
	is_int(j.size, off[N], "size is the file end");
	collect_free(&c);

	journal_add(&j, pl[N].p, pl[N].len);
	ok(journal_dirty(&j), "dirty after add");
	is_int(j.pending_records, 1, "one pending record");
	ok(journal_write(&j) == 0, "journal_write");
	ok(journal_dirty(&j), "written but not synced is still dirty");
	ok(journal_sync(&j) == 0, "journal_sync after reopen");
	journal_add(&j, pl[N + 1].p, pl[N + 1].len);
	journal_add(&j, pl[N + 2].p, pl[N + 2].len);
	ok(journal_sync(&j) == 0, "group commit of two records");
	ok(!journal_dirty(&j), "clean");
	journal_close(&j);

	collect_init(&c);
	ok(journal_open(&j, dfd, "rt", false, collect_fn, &c) == 0,
	   "second reopen (read-only)");
	ok(collect_is(&c, pl, N + 3), "second reopen sees all %d records", N + 3);
	is_int(j.next_seq, N + 4, "next_seq after the appended records");
	journal_close(&j);
	collect_free(&c);

	/* NULL callback: replay without looking. */
	ok(journal_open(&j, dfd, "rt", false, NULL, NULL) == 0 &&
		   j.next_seq == N + 4 && !j.corrupt,
	   "open with a NULL callback counts records");
	journal_close(&j);

	for (size_t i = 0; i < N + 4; i++)
		free(pl[i].p);
	unlinkat(dfd, "rt", 0);

	/* An empty journal. */
	ok(make_journal("empty", NULL, 0, NULL) == 0, "create an empty journal");
	is_int(fsize("empty"), HDR, "empty journal is just the header");
	collect_init(&c);
	ok(journal_open(&j, dfd, "empty", true, collect_fn, &c) == 0 &&
		   c.n == 0 && j.next_seq == 1 && !j.corrupt && !j.torn_bytes,
	   "empty journal reopens with no records, next_seq 1");
	journal_close(&j);
	collect_free(&c);

	ok(journal_create(&j, dfd, "empty") < 0 && errno == EEXIST,
	   "journal_create refuses an existing name (EEXIST)");

	if (symlinkat("empty", dfd, "link") == 0) {
		ok(journal_open(&j, dfd, "link", false, NULL, NULL) < 0 &&
			   errno == ELOOP,
		   "journal_open does not follow a symlink (ELOOP)");
		unlinkat(dfd, "link", 0);
	}
	if (mkdirat(dfd, "adir", 0755) == 0) {
		ok(journal_open(&j, dfd, "adir", false, NULL, NULL) < 0 &&
			   j.fd == -1,
		   "journal_open refuses a directory");
		unlinkat(dfd, "adir", AT_REMOVEDIR);
	}
	ok(journal_open(&j, dfd, "nonexistent", false, NULL, NULL) < 0 &&
		   errno == ENOENT,
	   "journal_open of a missing file fails with ENOENT");
	unlinkat(dfd, "empty", 0);

	/* The largest record the format allows. */
	struct payload big = mkpayload(JOURNAL_MAX_RECORD);
	ok(make_journal("big", &big, 1, NULL) == 0, "a JOURNAL_MAX_RECORD record");
	collect_init(&c);
	ok(journal_open(&j, dfd, "big", false, collect_fn, &c) == 0 &&
		   collect_is(&c, &big, 1),
	   "a JOURNAL_MAX_RECORD record reads back");
	journal_close(&j);
	collect_free(&c);
	free(big.p);
	unlinkat(dfd, "big", 0);
}

/* A small journal, the base for the damage tests. */
enum { SN = 5 };
static struct payload small[SN + 1]; /* the last one is never in "small" */
static off_t soff[SN + 1];
static unsigned char *sbytes;
static size_t slen;

static void small_setup(void)
{
	static const size_t sizes[SN] = { 1, 9, 40, 3, 21 };
	for (int i = 0; i < SN; i++)
		small[i] = mkpayload(sizes[i]);
	small[SN] = mkpayload(13);
	offsets(small, SN, soff);
	if (make_journal("small", small, SN, NULL) < 0) {
		printf("Bail out! small journal: %s\n", strerror(errno));
		exit(255);
	}
	sbytes = slurp("small", &slen);
}

/* Expectations for opening a damaged copy. */
struct expect {
	size_t records;		/* delivered */
	bool corrupt;
	off_t corrupt_at;
	off_t end;		/* where replay stopped (j.size) */
	off_t torn;		/* torn_bytes */
	off_t file_after;	/* file size after a writable open */
};

/*
 * Open buf (written to "t") writable and read-only and check both against
 * e.  Returns NULL when everything holds, else what did not.
 */
static const char *check_open(const unsigned char *buf, size_t len,
			      const struct payload *want,
			      const struct expect *e)
{
	static char why[512];
	struct journal j;
	struct collect c;

	/* Read-only: same verdict, file untouched. */
	spew("t", buf, len);
	collect_init(&c);
	if (journal_open(&j, dfd, "t", false, collect_fn, &c) < 0) {
		snprintf(why, sizeof(why), "read-only open failed: %s",
			 strerror(errno));
		collect_free(&c);
		return why;
	}
	journal_close(&j);
	if (!collect_is(&c, want, e->records)) {
		snprintf(why, sizeof(why), "read-only: %zu records, want %zu",
			 c.n, e->records);
		collect_free(&c);
		return why;
	}
	collect_free(&c);
	if (j.corrupt != e->corrupt) {
		snprintf(why, sizeof(why), "read-only: corrupt=%d, want %d",
			 j.corrupt, e->corrupt);
		return why;
	}
	if (!same_file("t", buf, len))
		return "read-only open changed the file";

	/* Writable. */
	collect_init(&c);
	if (journal_open(&j, dfd, "t", true, collect_fn, &c) < 0) {
		snprintf(why, sizeof(why), "writable open failed: %s",
			 strerror(errno));
		collect_free(&c);
		return why;
	}
	bool recs_ok = collect_is(&c, want, e->records);
	size_t got = c.n;
	collect_free(&c);
	/* The torn tail is cut at the first write, or by journal_cut(). */
	if (!j.corrupt && journal_cut(&j) < 0) {
		snprintf(why, sizeof(why), "journal_cut: %s", strerror(errno));
		journal_close(&j);
		return why;
	}
	journal_close(&j);
	if (!recs_ok) {
		snprintf(why, sizeof(why), "writable: %zu records, want %zu",
			 got, e->records);
		return why;
	}
	if (j.corrupt != e->corrupt) {
		snprintf(why, sizeof(why), "corrupt=%d, want %d", j.corrupt,
			 e->corrupt);
		return why;
	}
	if (e->corrupt && j.corrupt_at != e->corrupt_at) {
		snprintf(why, sizeof(why), "corrupt_at=%lld, want %lld",
			 (long long)j.corrupt_at, (long long)e->corrupt_at);
		return why;
	}
	if (j.size != e->end) {
		snprintf(why, sizeof(why), "j.size=%lld, want %lld",
			 (long long)j.size, (long long)e->end);
		return why;
	}
	if (j.next_seq != e->records + 1) {
		snprintf(why, sizeof(why), "next_seq=%llu, want %zu",
			 (unsigned long long)j.next_seq, e->records + 1);
		return why;
	}
	if (!e->corrupt && j.torn_bytes != e->torn) {
		snprintf(why, sizeof(why), "torn_bytes=%lld, want %lld",
			 (long long)j.torn_bytes, (long long)e->torn);
		return why;
	}
	if (fsize("t") != e->file_after) {
		snprintf(why, sizeof(why), "file is %lld bytes, want %lld",
			 (long long)fsize("t"), (long long)e->file_after);
		return why;
	}
	if (e->corrupt && !same_file("t", buf, len))
		return "a corrupt journal was changed by a writable open";
	if (!e->corrupt && !same_file("t", buf, (size_t)e->file_after))
		return "the kept prefix changed";
	return NULL;
}

static struct expect torn_at(size_t records, off_t cut)
{
	return (struct expect){ .records = records, .end = soff[records],
				.torn = cut - soff[records],
				.file_after = soff[records] };
}

static struct expect corrupt_at(size_t records, size_t len)
{
	return (struct expect){ .records = records, .corrupt = true,
				.corrupt_at = soff[records],
				.end = soff[records],
				.file_after = (off_t)len };
}

static void test_torn_tails(void)
{
	int bad = 0, cuts = 0;
	for (off_t cut = HDR; cut <= (off_t)slen; cut++) {
		size_t k = 0;
		while (k < SN && soff[k + 1] <= cut)
			k++;
		struct expect e = torn_at(k, cut);
		const char *why = check_open(sbytes, (size_t)cut, small, &e);
		cuts++;
		if (why) {
			if (bad++ < 10)
				diag("cut at %lld: %s", (long long)cut, why);
			continue;
		}
		/* The cut journal takes a new record and keeps it. */
		struct payload want[SN + 1];
		struct journal j;
		struct collect c;
		memcpy(want, small, sizeof(want));
		want[k] = small[SN];
		if (journal_open(&j, dfd, "t", true, NULL, NULL) < 0) {
			if (bad++ < 10)
				diag("cut at %lld: reopen failed", (long long)cut);
			continue;
		}
		journal_add(&j, want[k].p, want[k].len);
		int rc = journal_sync(&j);
		journal_close(&j);
		collect_init(&c);
		if (rc < 0 ||
		    journal_open(&j, dfd, "t", false, collect_fn, &c) < 0 ||
		    !collect_is(&c, want, k + 1) || j.corrupt ||
		    j.torn_bytes) {
			if (bad++ < 10)
				diag("cut at %lld: append after the cut did not read back",
				     (long long)cut);
		}
		journal_close(&j);
		collect_free(&c);
	}
	ok(!bad && cuts == (int)slen - HDR + 1,
	   "torn tail cut at each of %d offsets from %d to %zu: prefix records, torn_bytes, truncation, read-only untouched, appending works (%d bad)",
	   cuts, HDR, slen, bad);

	/* Shorter than the header. */
	bad = 0;
	for (size_t cut = 0; cut < HDR; cut++) {
		struct journal j;
		spew("t", sbytes, cut);
		errno = 0;
		int rc = journal_open(&j, dfd, "t", true, NULL, NULL);
		if (rc != -1 || errno != EINVAL || !j.corrupt || j.fd != -1 ||
		    fsize("t") != (off_t)cut) {
			if (bad++ < 5)
				diag("%zu-byte file: rc %d errno %d corrupt %d",
				     cut, rc, errno, j.corrupt);
		}
	}
	ok(!bad, "a file shorter than the header: open fails, EINVAL, corrupt set, file kept");

	unsigned char *copy = malloc(slen);
	struct journal j;
	memcpy(copy, sbytes, slen);
	copy[0] ^= 0x20;
	spew("t", copy, slen);
	errno = 0;
	ok(journal_open(&j, dfd, "t", true, NULL, NULL) == -1 &&
		   errno == EINVAL && j.corrupt && same_file("t", copy, slen),
	   "wrong magic: open fails with EINVAL, corrupt, file kept");
	memcpy(copy, sbytes, slen);
	copy[8] = 2;
	spew("t", copy, slen);
	errno = 0;
	ok(journal_open(&j, dfd, "t", true, NULL, NULL) == -1 &&
		   errno == EINVAL && j.corrupt && same_file("t", copy, slen),
	   "unknown version: open fails with EINVAL, corrupt, file kept");

	/*
	 * A damaged salt makes every record fail its checksum, and then no
	 * valid record "follows" either: the whole journal is taken for a
	 * torn tail and a writable open cuts every acknowledged record.
	 */
	memcpy(copy, sbytes, slen);
	copy[12] ^= 0x01;
	spew("t", copy, slen);
	{
		struct collect c;
		collect_init(&c);
		int rc = journal_open(&j, dfd, "t", true, collect_fn, &c);
		if (rc == 0 && !j.corrupt)
			journal_cut(&j);
		journal_close(&j);
		ok(fsize("t") == (off_t)slen && (rc < 0 || j.corrupt),
		   "a flipped salt bit does not cut every acknowledged record (torn_bytes=%lld, file now %lld bytes)",
		   (long long)j.torn_bytes, (long long)fsize("t"));
		collect_free(&c);
	}
	free(copy);
}

static void test_bit_flips(void)
{
	unsigned char *copy = malloc(slen);
	int bad = 0, n = 0;

	/* Every bit of the last record: a torn tail. */
	for (off_t p = soff[SN - 1]; p < soff[SN]; p++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(copy, sbytes, slen);
			copy[p] ^= (unsigned char)(1u << bit);
			struct expect e = torn_at(SN - 1, (off_t)slen);
			const char *why = check_open(copy, slen, small, &e);
			n++;
			if (why && bad++ < 10)
				diag("last record, byte %lld bit %d: %s",
				     (long long)p, bit, why);
		}
	}
	ok(!bad, "each of %d single-bit flips in the last record is a torn tail (%d bad)",
	   n, bad);

	/* Every byte of the last record inverted. */
	bad = n = 0;
	for (off_t p = soff[SN - 1]; p < soff[SN]; p++) {
		memcpy(copy, sbytes, slen);
		copy[p] ^= 0xff;
		struct expect e = torn_at(SN - 1, (off_t)slen);
		const char *why = check_open(copy, slen, small, &e);
		n++;
		if (why && bad++ < 10)
			diag("last record, byte %lld inverted: %s", (long long)p, why);
	}
	ok(!bad, "each of %d inverted bytes in the last record is a torn tail (%d bad)",
	   n, bad);

	/* Every byte of each middle record: corrupt, file unchanged. */
	for (int r = 1; r < SN - 1; r++) {
		bad = n = 0;
		for (off_t p = soff[r]; p < soff[r + 1]; p++) {
			static const unsigned char masks[] = { 0x01, 0x80, 0xff };
			for (size_t m = 0; m < sizeof(masks); m++) {
				memcpy(copy, sbytes, slen);
				copy[p] ^= masks[m];
				struct expect e = corrupt_at((size_t)r, slen);
				const char *why = check_open(copy, slen, small, &e);
				n++;
				if (why && bad++ < 10)
					diag("record %d, byte %lld ^ 0x%02x: %s", r,
					     (long long)p, masks[m], why);
			}
		}
		ok(!bad, "each of %d flips in middle record %d: corrupt at %lld, %d records before it, file unchanged (%d bad)",
		   n, r + 1, (long long)soff[r], r, bad);
	}

	/* The first record damaged, the others intact. */
	bad = n = 0;
	for (off_t p = soff[0]; p < soff[1]; p++) {
		memcpy(copy, sbytes, slen);
		copy[p] ^= 0x55;
		struct expect e = corrupt_at(0, slen);
		const char *why = check_open(copy, slen, small, &e);
		n++;
		if (why && bad++ < 10)
			diag("first record, byte %lld: %s", (long long)p, why);
	}
	ok(!bad, "each of %d flips in the first record: corrupt at the header end (%d bad)",
	   n, bad);
	free(copy);
}

static void test_splice(void)
{
	struct payload other[SN + 1];
	off_t ooff[SN + 2];
	unsigned char *obytes, *buf;
	size_t olen;

	/* Another journal with one more record, so its record 6 has the
	 * sequence number the small journal expects next. */
	for (int tries = 0;; tries++) {
		for (int i = 0; i <= SN; i++)
			other[i] = mkpayload(small[i < SN ? i : 0].len + 2);
		if (make_journal("other", other, SN + 1, NULL) < 0) {
			printf("Bail out! other journal\n");
			exit(255);
		}
		obytes = slurp("other", &olen);
		if (get32le(obytes + 12) != get32le(sbytes + 12) || tries > 3)
			break;
		free(obytes);
		for (int i = 0; i <= SN; i++)
			free(other[i].p);
	}
	ok(get32le(obytes + 12) != get32le(sbytes + 12),
	   "two journals get different salts");
	offsets(other, SN + 1, ooff);

	/* Appended at the end: the seq fits, the salt does not. */
	size_t flen = (size_t)(ooff[SN + 1] - ooff[SN]);
	buf = malloc(slen + olen);
	memcpy(buf, sbytes, slen);
	memcpy(buf + slen, obytes + ooff[SN], flen);
	struct expect e = torn_at(SN, (off_t)(slen + flen));
	const char *why = check_open(buf, slen + flen, small, &e);
	ok(!why, "a foreign record (right seq, other salt) at the end is cut as a torn tail%s%s",
	   why ? ": " : "", why ? why : "");

	/* Inserted in the middle, before record 3. */
	size_t f3 = (size_t)(ooff[3] - ooff[2]);
	memcpy(buf, sbytes, (size_t)soff[2]);
	memcpy(buf + soff[2], obytes + ooff[2], f3);
	memcpy(buf + soff[2] + f3, sbytes + soff[2], slen - (size_t)soff[2]);
	e = corrupt_at(2, slen + f3);
	why = check_open(buf, slen + f3, small, &e);
	ok(!why, "a foreign record inserted in the middle is corruption at its offset%s%s",
	   why ? ": " : "", why ? why : "");

	/* Replacing record 3 with the other journal's record 3. */
	size_t total = (size_t)soff[2] + f3 + (slen - (size_t)soff[3]);
	memcpy(buf, sbytes, (size_t)soff[2]);
	memcpy(buf + soff[2], obytes + ooff[2], f3);
	memcpy(buf + soff[2] + f3, sbytes + soff[3], slen - (size_t)soff[3]);
	e = corrupt_at(2, total);
	why = check_open(buf, total, small, &e);
	ok(!why, "a record replaced by the other journal's record of the same seq is corruption%s%s",
	   why ? ": " : "", why ? why : "");

	/* The other journal's whole body after our header: nothing verifies. */
	free(buf);
	free(obytes);
	for (int i = 0; i <= SN; i++)
		free(other[i].p);
	unlinkat(dfd, "other", 0);
}

static void test_crafted(void)
{
	uint32_t salt = get32le(sbytes + 12);
	unsigned char *buf = malloc(slen + 4096);
	struct payload extra = mkpayload(11), extra2 = mkpayload(5);
	struct payload want[SN + 2];
	struct expect e;
	const char *why;
	size_t n;

	memcpy(want, small, SN * sizeof(*small));
	want[SN] = extra;
	want[SN + 1] = extra2;

	/* Sanity: a hand-made frame with the next seq is accepted. */
	memcpy(buf, sbytes, slen);
	n = slen + craft_frame(buf + slen, salt, SN + 1, extra.p, (uint32_t)extra.len);
	e = (struct expect){ .records = SN + 1, .end = (off_t)n,
			     .file_after = (off_t)n };
	why = check_open(buf, n, want, &e);
	ok(!why, "a hand-made frame with the next seq is read (the format is as documented)%s%s",
	   why ? ": " : "", why ? why : "");

	/* A sequence gap at the end: stops there, a torn tail. */
	memcpy(buf, sbytes, slen);
	n = slen + craft_frame(buf + slen, salt, SN + 2, extra.p, (uint32_t)extra.len);
	e = torn_at(SN, (off_t)n);
	why = check_open(buf, n, small, &e);
	ok(!why, "a frame with seq+2 at the end: replay stops before it, cut as torn%s%s",
	   why ? ": " : "", why ? why : "");

	/* A gap followed by a valid record: corrupt. */
	memcpy(buf, sbytes, slen);
	n = slen + craft_frame(buf + slen, salt, SN + 2, extra.p, (uint32_t)extra.len);
	n += craft_frame(buf + n, salt, SN + 3, extra2.p, (uint32_t)extra2.len);
	e = corrupt_at(SN, n);
	why = check_open(buf, n, small, &e);
	ok(!why, "a seq gap followed by more records: corrupt at the gap%s%s",
	   why ? ": " : "", why ? why : "");

	/* A repeated seq (a record replayed twice) stops as well. */
	memcpy(buf, sbytes, slen);
	n = slen + craft_frame(buf + slen, salt, SN, extra.p, (uint32_t)extra.len);
	e = torn_at(SN, (off_t)n);
	why = check_open(buf, n, small, &e);
	ok(!why, "a frame repeating the last seq at the end is cut%s%s",
	   why ? ": " : "", why ? why : "");

	/* A zero-length frame at the end: torn. */
	memcpy(buf, sbytes, slen);
	memset(buf + slen, 0, FRM);
	n = slen + FRM;
	e = torn_at(SN, (off_t)n);
	why = check_open(buf, n, small, &e);
	ok(!why, "a zeroed frame at the end is a torn tail%s%s", why ? ": " : "",
	   why ? why : "");

	/* Zeroes of every length up to a few frames (a preallocated tail). */
	int bad = 0;
	for (size_t z = 1; z <= 3 * FRM + 5; z++) {
		memcpy(buf, sbytes, slen);
		memset(buf + slen, 0, z);
		e = torn_at(SN, (off_t)(slen + z));
		why = check_open(buf, slen + z, small, &e);
		if (why && bad++ < 5)
			diag("%zu zero bytes at the end: %s", z, why);
	}
	ok(!bad, "1..%d zero bytes at the end are a torn tail", 3 * FRM + 5);

	/* A zero length frame, properly checksummed, then a valid record. */
	memcpy(buf, sbytes, slen);
	n = slen + craft_frame(buf + slen, salt, SN + 1, "", 0);
	n += craft_frame(buf + n, salt, SN + 2, extra2.p, (uint32_t)extra2.len);
	e = corrupt_at(SN, n);
	why = check_open(buf, n, small, &e);
	ok(!why, "a zero-length frame followed by a valid record: corrupt%s%s",
	   why ? ": " : "", why ? why : "");

	/* A length beyond JOURNAL_MAX_RECORD with a good frame after it. */
	memcpy(buf, sbytes, slen);
	n = slen + craft_frame(buf + slen, salt, SN + 1, extra.p, (uint32_t)extra.len);
	put32le(buf + slen, JOURNAL_MAX_RECORD + 1);
	n += craft_frame(buf + n, salt, SN + 2, extra2.p, (uint32_t)extra2.len);
	e = corrupt_at(SN, n);
	why = check_open(buf, n, small, &e);
	ok(!why, "an oversized length followed by a valid record: corrupt%s%s",
	   why ? ": " : "", why ? why : "");

	free(buf);
	free(extra.p);
	free(extra2.p);
}

/* journal_add on a corrupt journal must refuse (it BUG()s: abort). */
static void test_add_refused(void)
{
	unsigned char *copy = malloc(slen);
	struct journal j;
	memcpy(copy, sbytes, slen);
	copy[soff[2] + FRM] ^= 0xff;	/* damage record 3's payload */
	spew("t", copy, slen);
	if (journal_open(&j, dfd, "t", true, NULL, NULL) < 0 || !j.corrupt) {
		ok(0, "open the damaged journal");
		free(copy);
		return;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		signal(SIGABRT, SIG_DFL);
		journal_add(&j, "x", 1);
		journal_sync(&j);
		_exit(0);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	journal_close(&j);
	ok(pid > 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
	   "journal_add on a corrupt journal aborts (status %#x)", st);
	ok(same_file("t", copy, slen), "and the file is unchanged");
	free(copy);
}

static void test_callback_stop(void)
{
	struct journal j;
	struct collect c;
	for (int at = 0; at < SN; at++) {
		spew("t", sbytes, slen);
		collect_init(&c);
		c.fail_at = at;
		int rc = journal_open(&j, dfd, "t", true, collect_fn, &c);
		journal_close(&j);
		ok(rc == 0 && j.corrupt && j.corrupt_at == soff[at] &&
			   collect_is(&c, small, (size_t)at) &&
			   c.calls == (size_t)at + 1 && j.next_seq == (uint64_t)at + 1 &&
			   same_file("t", sbytes, slen),
		   "callback refusing record %d: corrupt at %lld, %d delivered, file kept",
		   at + 1, (long long)soff[at], at);
		collect_free(&c);
	}
}

/* A reader that follows a journal while its writer goes on. */
static void test_follow(void)
{
	struct journal w, rj;
	struct collect c;
	unlinkat(dfd, "f", 0);
	ok(journal_create(&w, dfd, "f") == 0, "follow: a journal to write");
	journal_add(&w, "one", 3);
	ok(journal_sync(&w) == 0, "follow: one record written");
	collect_init(&c);
	ok(journal_open(&rj, dfd, "f", false, collect_fn, &c) == 0 && c.n == 1,
	   "follow: the reader's open replays it");
	ok(journal_follow(&rj, collect_fn, &c) == 0, "follow: nothing new: 0");
	journal_add(&w, "two", 3);
	journal_add(&w, "three", 5);
	ok(journal_write(&w) == 0, "follow: two more written");
	ok(journal_follow(&rj, collect_fn, &c) == 2 && c.n == 3 &&
		   c.recs[2].len == 5 && !memcmp(c.recs[2].p, "three", 5),
	   "follow: the two new records, in order");
	/* Half a record on disk: a writer caught mid-write. */
	journal_add(&w, "four", 4);
	off_t at = w.size;
	ok(write(w.fd, w.pending.buf, 10) == 10, "follow: half a frame written");
	ok(journal_follow(&rj, collect_fn, &c) == 0 && c.n == 3,
	   "follow: a record being written waits");
	ok(ftruncate(w.fd, at) == 0 && journal_write(&w) == 0,
	   "follow: the record written whole");
	ok(journal_follow(&rj, collect_fn, &c) == 1 && c.n == 4,
	   "follow: then it comes");
	c.fail_at = (long)c.calls;
	journal_add(&w, "five", 4);
	ok(journal_write(&w) == 0, "follow: a fifth written");
	ok(journal_follow(&rj, collect_fn, &c) == -1 && rj.corrupt,
	   "follow: a record the reader refuses: -1, damaged");
	journal_close(&rj);
	journal_close(&w);
	collect_free(&c);
	unlinkat(dfd, "f", 0);
}

static void test_write_failure(void)
{
	struct rlimit old, lim;
	struct payload pl[8];
	struct journal j;
	struct collect c;
	off_t off[9];

	for (int i = 0; i < 8; i++)
		pl[i] = mkpayload(40 + (size_t)i * 30);
	offsets(pl, 8, off);
	if (getrlimit(RLIMIT_FSIZE, &old) < 0 ||
	    make_journal("w", pl, 3, &j) < 0) {
		ok(0, "set up the write-failure test: %s", strerror(errno));
		return;
	}
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = (rlim_t)off[3] + 50; /* part of record 4 fits */
	if (old.rlim_cur != RLIM_INFINITY && old.rlim_cur < lim.rlim_cur)
		lim.rlim_cur = old.rlim_cur;
	if (setrlimit(RLIMIT_FSIZE, &lim) < 0) {
		ok(0, "setrlimit RLIMIT_FSIZE: %s", strerror(errno));
		journal_close(&j);
		return;
	}
	for (int i = 3; i < 8; i++)
		journal_add(&j, pl[i].p, pl[i].len);
	errno = 0;
	int rc = journal_write(&j);
	int err = errno;
	off_t after = fsize("w");
	/* Put the limit back before anything else writes files. */
	setrlimit(RLIMIT_FSIZE, &old);
	ok(rc == -1 && err == EFBIG, "journal_write past RLIMIT_FSIZE fails with EFBIG (rc %d, %s)",
	   rc, strerror(err));
	is_int(after, off[3], "a partial write is cut back to the last record boundary");
	is_int(j.size, off[3], "j.size stays at the boundary");
	is_int(j.failed, 0, "a failed write is not sticky");
	is_int(j.pending_records, 5, "the 5 records stay pending");
	ok(journal_dirty(&j), "still dirty");

	/* A second failure while still limited. */
	setrlimit(RLIMIT_FSIZE, &lim);
	rc = journal_sync(&j);
	err = errno;
	after = fsize("w");
	setrlimit(RLIMIT_FSIZE, &old);
	ok(rc == -1 && err == EFBIG && after == off[3],
	   "journal_sync fails the same way and cuts back again");

	ok(journal_sync(&j) == 0, "with room again, journal_sync succeeds");
	is_int(fsize("w"), off[8], "the file holds all 8 records");
	ok(!journal_dirty(&j), "clean");
	journal_close(&j);
	collect_init(&c);
	ok(journal_open(&j, dfd, "w", false, collect_fn, &c) == 0 &&
		   collect_is(&c, pl, 8) && !j.corrupt && !j.torn_bytes,
	   "reopen sees every record exactly once, in order");
	journal_close(&j);
	collect_free(&c);

	/* A limit at the exact boundary: the first write() already fails. */
	ok(make_journal("w", pl, 3, &j) == 0, "recreate");
	lim.rlim_cur = (rlim_t)off[3];
	setrlimit(RLIMIT_FSIZE, &lim);
	journal_add(&j, pl[3].p, pl[3].len);
	rc = journal_write(&j);
	err = errno;
	setrlimit(RLIMIT_FSIZE, &old);
	ok(rc == -1 && err == EFBIG && fsize("w") == off[3],
	   "a write refused outright leaves the file as it was");
	ok(journal_sync(&j) == 0, "and is retried");
	journal_close(&j);
	collect_init(&c);
	ok(journal_open(&j, dfd, "w", false, collect_fn, &c) == 0 &&
		   collect_is(&c, pl, 4),
	   "reopen sees 4 records");
	journal_close(&j);
	collect_free(&c);
	signal(SIGXFSZ, SIG_DFL);
	for (int i = 0; i < 8; i++)
		free(pl[i].p);
	unlinkat(dfd, "w", 0);
}

int main(void)
{
	int64_t t0 = now_ns();
	scratch_make("journal");
	dfd = scratch_open();
	test_roundtrip();
	small_setup();
	test_torn_tails();
	test_bit_flips();
	test_splice();
	test_crafted();
	test_callback_stop();
	test_add_refused();
	test_follow();
	test_write_failure();
	free(sbytes);
	for (int i = 0; i <= SN; i++)
		free(small[i].p);
	close(dfd);
	scratch_remove();
	diag("journal tests took %.2f s", (double)(now_ns() - t0) / 1e9);
	done_testing();
	return exit_status();
}
