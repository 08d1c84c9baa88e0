/*
 * Fuzz journal replay and every view of a replayed batch.  The input is
 * written as the journal of a batch directory in the scratch home, in one
 * of two forms:
 *
 *   - bytes that begin with the journal's magic ("RUNJRNL\0") are the
 *     file as is: the framing, checksums, torn tails and damage of
 *     journal.c;
 *   - any other bytes are record payloads separated by SEP; the harness
 *     frames them as journal_add() would (valid checksums, seq from 1),
 *     so that mutations reach rec_decode() and batch_apply() instead of
 *     dying on a checksum.
 *
 * Then, as `runner show`, `report` and an adoption would: the batch is
 * replayed (batch_replay_dir), its human log rebuilt record by record
 * (blog_line, what blog_rebuild writes), and, if it was claimed,
 * batch.json, summary.json, the text of `show` with every flag, and the
 * HTML report (against itself as the batch before) are written to
 * /dev/null.
 */
#include "batch.h"
#include "blog.h"
#include "fuzz.h"
#include "home.h"
#include "meta.h"
#include "report.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MAGIC "RUNJRNL"		/* and its NUL: 8 bytes */
#define SEP "\xffRJ\xff"
#define SEPLEN 4
#define SALT 0x5eed5eedu
/* A fixed clock: a batch still running is drawn up to it. */
#define NOW 1767225600000LL

static FILE *devnull;
static int batch_fd = -1;

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

/* The journal format of journal.h: header, then per record length, CRC-32
 * over salt, seq, length and payload, seq, payload. */
static void frame(struct sb *out, const uint8_t *data, size_t size)
{
	unsigned char h[24] = { 0 }, f[16], pre[16];
	uint64_t seq = 1;
	memcpy(h, MAGIC, 8);
	put32(h + 8, 1);
	put32(h + 12, SALT);
	put32(h + 16, (uint32_t)crc32(0L, h, 16));
	sb_add(out, h, sizeof(h));
	const uint8_t *p = data, *end = data + size;
	while (p <= end) {
		const uint8_t *q = memmem(p, (size_t)(end - p), SEP, SEPLEN);
		size_t len = (size_t)((q ? q : end) - p);
		put32(pre, SALT);
		put64(pre + 4, seq);
		put32(pre + 12, (uint32_t)len);
		uLong crc = crc32(crc32(0L, Z_NULL, 0), pre, sizeof(pre));
		crc = crc32(crc, p, (uInt)len);
		put32(f, (uint32_t)len);
		put32(f + 4, (uint32_t)crc);
		put64(f + 8, seq++);
		sb_add(out, f, sizeof(f));
		sb_add(out, p, len);
		if (!q)
			break;
		p = q + SEPLEN;
	}
}

static void setup(void)
{
	int home = fuzz_scratch();
	devnull = fopen("/dev/null", "w");
	if (!devnull)
		die(EX_IOERR_, "fuzz: /dev/null: %s", strerror(errno));
	if (mkdirat(home, "fuzz-1", 0755) < 0)
		die(EX_CANTCREAT_, "fuzz: fuzz-1: %s", strerror(errno));
	batch_fd = openat(home, "fuzz-1", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (batch_fd < 0)
		die(EX_CANTCREAT_, "fuzz: fuzz-1: %s", strerror(errno));
}

struct rebuild {
	struct batch b;
	struct sb text;
};

/* blog_rebuild()'s fold, without its fsync'ed file. */
static int rebuild_fn(void *arg, const void *payload, size_t len)
{
	struct rebuild *rb = arg;
	struct rec r;
	if (rec_decode(payload, len, &r) < 0 || batch_apply(&rb->b, &r) < 0)
		return -1;
	blog_line(&rb->text, &rb->b, &r, 0);
	return 0;
}

static void views(struct batch *b, struct batch *prev)
{
	meta_write_json(devnull, b, NOW, NULL);
	cJSON *o = meta_summary_doc(b, NOW);
	char *s = cJSON_PrintUnformatted(o);
	if (!s)
		BUG("summary.json does not print");
	cJSON *back = cJSON_Parse(s);
	if (!back)
		BUG("summary.json does not parse back");
	struct summary sum;
	meta_summary_from_json(back, &sum);
	cJSON_Delete(back);
	free(s);
	cJSON_Delete(o);
	meta_print_summary(devnull, b, NOW, SHOW_PATHS, "/home", NULL);
	meta_print_summary(devnull, b, NOW, SHOW_ITEMS | SHOW_FAILED, "/home",
			   NULL);
	report_write_since(devnull, b, prev, NULL, NOW);
	fflush(devnull);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sb file = SB_INIT;
	struct rebuild rb;
	struct journal j;
	struct batch b, prev;

	if (!devnull)
		setup();
	if (size >= 8 && !memcmp(data, MAGIC, 8))
		sb_add(&file, data, size);
	else
		frame(&file, data, size);
	/* A new file each time: truncating one in place makes ext4 flush
	 * it on close (auto_da_alloc), a hundred times slower. */
	unlinkat(batch_fd, "journal", 0);
	int fd = openat(batch_fd, "journal",
			O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, file.buf, file.len) < 0)
		die(EX_IOERR_, "fuzz: journal: %s", strerror(errno));
	close(fd);
	sb_release(&file);

	batch_init(&rb.b);
	rb.text = (struct sb)SB_INIT;
	if (journal_open(&j, batch_fd, "journal", false, rebuild_fn, &rb) == 0)
		journal_close(&j);
	batch_release(&rb.b);
	sb_release(&rb.text);

	int rc = batch_replay_dir(batch_fd, &b);
	if (rc == 0) {
		if (batch_replay_dir(batch_fd, &prev) == 0)
			views(&b, &prev);
		else
			BUG("a journal replays once, not twice");
		batch_release(&prev);
	}
	batch_release(&b);
	return 0;
}
