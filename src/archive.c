/*
 * archive: retention of final batches.  See archive.h for the format, the
 * order of writes and what a crash leaves.
 *
 * Checking members: the writer keeps no list of what it stored (a batch
 * of a million items has three million files).  It sums a 64-bit hash of
 * (path, size, CRC-32) over every file it writes; the read-back sums the
 * same over what it reads, and the two sums and counts must agree.  A
 * damaged or missing member changes the sum except with probability
 * about 2^-64.  Restore checks the extracted files the same way against
 * the manifest, so its memory does not grow with the batch either.
 *
 * libarchive's header is <archive.h>, like ours: this file is compiled
 * without -Isrc, so "archive.h" is ours and <archive.h> is libarchive's.
 */
#include "archive.h"
#include "home.h"
#include "job.h"
#include "journal.h"

#include <archive.h>
#include <archive_entry.h>
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zlib.h>

#define ARCHIVE_DIR "archive"
#define INDEX_NAME "index.jsonl"
#define LOCK_NAME ".lock"
#define MANIFEST ".manifest"
#define RESTORING ".restoring-"
#define TRASH ".trash-"
#define RESTORE_TMP ".restore-"
#define INDEX_MAX (256u << 20)
#define MANIFEST_LINE_MAX 16384
#define MAX_DEPTH 16
#define PATH_LIMIT 4000
#define BUF_SIZE 65536

static const char *const exts[] = {
	[COMPRESS_GZIP] = ".tar.gz",
	[COMPRESS_ZSTD] = ".tar.zst",
	[COMPRESS_NONE] = ".tar",
};
#define NEXTS (sizeof(exts) / sizeof(exts[0]))

/* ---- names ---- */

/* The batch id of an archive file name ("b1.tar.gz" -> "b1"), or false. */
static bool archive_name_id(const char *name, char id[ID_MAX + 1])
{
	size_t n = strlen(name);
	for (size_t i = 0; i < NEXTS; i++) {
		size_t e = strlen(exts[i]);
		if (n <= e || n - e > ID_MAX || strcmp(name + n - e, exts[i]))
			continue;
		memcpy(id, name, n - e);
		id[n - e] = '\0';
		return valid_batch_id(id);
	}
	return false;
}

static void archive_name(char *buf, size_t n, const char *id,
			 enum compression c)
{
	snprintf(buf, n, "%s%s", id, exts[c]);
}

static int open_archive_dir(struct home *h, bool create)
{
	if (create) {
		struct stat st;
		bool existed = fstatat(h->batches, ARCHIVE_DIR, &st,
				       AT_SYMLINK_NOFOLLOW) == 0;
		if (ensure_dir(h->batches, ARCHIVE_DIR, 0755) < 0 ||
		    (!existed && fsync_dir(h->batches) < 0))
			return -1;
	}
	/* Read or written, it must be the runner's own (home.h). */
	int fd = open_dir_at(h->batches, ARCHIVE_DIR);
	struct stat st;
	char why[160];
	if (fd >= 0 && (fstat(fd, &st) < 0 ||
			home_dir_check(&st, why, sizeof(why)) < 0)) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* batches/archive/.lock: one archive or restore at a time per home. */
static int take_archive_lock(int adir)
{
	return lock_at(adir, LOCK_NAME);
}

/* Whether a live process holds a batch's lock, without creating it. */
static bool batch_locked(int dirfd)
{
	int fd = openat(dirfd, "lock", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool locked = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd);
	return locked;
}

static bool is_dir_at(int dirfd, const char *name)
{
	struct stat st;
	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISDIR(st.st_mode);
}

/* A batch's log is logs/<id>.log, except that logs/runner.log is the
 * daemon's: a batch named "runner" has no log of its own to move. */
static bool has_own_log(const char *id)
{
	return strcmp(id, "runner") != 0;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint64_t member_hash(const char *rel, uint64_t size, uint32_t crc)
{
	return mix64(hash64(rel, strlen(rel)) ^
		     mix64(size * 0x9e3779b97f4a7c15ULL + crc));
}

/* Manifest paths: bytes <= 0x20, 0x7f and '%' as %XX. */
static void add_escaped_path(struct sb *sb, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c == 0x7f || c == '%')
			sb_addf(sb, "%%%02X", c);
		else
			sb_addc(sb, (char)c);
	}
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* ---- libarchive plumbing ---- */

#define WHY_MAX 256

static const char *aerr(struct archive *a);
static int aerrno(struct archive *a);

/* A reader of the archive open as fd, from its start; NULL with errno and
 * why (WHY_MAX bytes) set. */
static struct archive *reader_open(int fd, char *why)
{
	struct archive *a = archive_read_new();
	if (!a)
		die(EX_INTERNAL, "out of memory");
	/* No archive_read_support_filter_all(): some of its filters run an
	 * external program on the data, and we only ever write these. */
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_none(a);
	archive_read_support_format_tar(a);
	if (lseek(fd, 0, SEEK_SET) < 0) {
		int saved = errno;
		snprintf(why, WHY_MAX, "%s", strerror(errno));
		archive_read_free(a);
		errno = saved;
		return NULL;
	}
	if (archive_read_open_fd(a, fd, BUF_SIZE) != ARCHIVE_OK) {
		int saved = aerrno(a);
		snprintf(why, WHY_MAX, "%s", aerr(a));
		archive_read_free(a);
		errno = saved;
		return NULL;
	}
	return a;
}

static const char *aerr(struct archive *a)
{
	const char *s = archive_error_string(a);
	return s ? s : "unknown libarchive error";
}

static int aerrno(struct archive *a)
{
	int e = archive_errno(a);
	return e > 0 ? e : EIO;
}

/* The compression we can write: zstd needs libarchive built with libzstd
 * (or a zstd program); without it, gzip and one warning. */
static enum compression usable_compression(enum compression c)
{
	if (c != COMPRESS_ZSTD)
		return c;
	struct archive *a = archive_write_new();
	if (!a)
		die(EX_INTERNAL, "out of memory");
	int r = archive_write_add_filter_zstd(a);
	if (r != ARCHIVE_OK) {
		warning("zstd compression unavailable (%s): writing gzip",
			aerr(a));
		c = COMPRESS_GZIP;
	}
	archive_write_free(a);
	return c;
}

static struct archive *writer_open(int fd, enum compression c)
{
	struct archive *a = archive_write_new();
	if (!a)
		die(EX_INTERNAL, "out of memory");
	int r = c == COMPRESS_GZIP   ? archive_write_add_filter_gzip(a)
		: c == COMPRESS_ZSTD ? archive_write_add_filter_zstd(a)
				     : archive_write_add_filter_none(a);
	if (r != ARCHIVE_OK ||
	    archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open_fd(a, fd) != ARCHIVE_OK) {
		error("archive writer: %s", aerr(a));
		errno = aerrno(a);
		archive_write_free(a);
		return NULL;
	}
	return a;
}

/* An unnamed scratch file (the manifest being built). */
static int scratch_fd(int dirfd)
{
	int fd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		fd = memfd_create("runner-manifest", MFD_CLOEXEC);
	return fd;
}

/* ---- packing a batch ---- */

struct pack {
	struct archive *a;	/* NULL: checksums only (of a leftover) */
	const char *id;
	size_t idlen;
	int mfd;		/* the manifest, built as files are added */
	struct sb manifest;	/* its unwritten tail */
	struct sb path;		/* "<id>/..." of the entry at hand */
	uint64_t files, dirs, agg;
	uint64_t bytes;		/* of every file packed: the index's bound */
	char *buf;
	bool quiet;		/* no warnings: said when it was made */
};

static void pack_init(struct pack *p, const char *id)
{
	memset(p, 0, sizeof(*p));
	p->id = id;
	p->idlen = strlen(id);
	p->mfd = -1;
	p->buf = xmalloc(BUF_SIZE);
}

static void pack_release(struct pack *p)
{
	if (p->mfd >= 0)
		close(p->mfd);
	sb_release(&p->manifest);
	sb_release(&p->path);
	free(p->buf);
}

static int pack_flush_manifest(struct pack *p)
{
	if (!p->manifest.len)
		return 0;
	if (write_all(p->mfd, p->manifest.buf, p->manifest.len) < 0)
		return error("archive manifest: %s", strerror(errno));
	sb_reset(&p->manifest);
	return 0;
}

static void set_path(struct pack *p, size_t base, const char *name)
{
	p->path.len = base;
	sb_adds(&p->path, name);
}

static const char *rel_of(const struct pack *p)
{
	return p->path.buf + p->idlen + 1;
}

static int write_entry_header(struct pack *p, const struct stat *st,
			      bool dir, int64_t size)
{
	if (!p->a)
		return 0;
	struct archive_entry *e = archive_entry_new();
	if (!e)
		die(EX_INTERNAL, "out of memory");
	archive_entry_set_pathname(e, p->path.buf);
	archive_entry_set_filetype(e, dir ? AE_IFDIR : AE_IFREG);
	archive_entry_set_perm(e, dir ? 0755 : (st->st_mode & 0755) | 0600);
	archive_entry_set_size(e, dir ? 0 : size);
	archive_entry_set_mtime(e, st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
	/* ARCHIVE_WARN: a name that is not text in our locale, stored as
	 * raw bytes (pax hdrcharset=BINARY); the read-back checks it. */
	int r = archive_write_header(p->a, e);
	archive_entry_free(e);
	if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
		errno = aerrno(p->a);
		return error("batches/%s: %s", p->path.buf, aerr(p->a));
	}
	return 0;
}

/* Store (or checksum) the open regular file fd as p->path. */
static int pack_fd(struct pack *p, int fd, const struct stat *st,
		   bool in_manifest)
{
	uint32_t crc = (uint32_t)crc32(0L, Z_NULL, 0);
	uint64_t total = 0;
	if (write_entry_header(p, st, false, st->st_size) < 0)
		return -1;
	for (;;) {
		ssize_t n = read(fd, p->buf, BUF_SIZE);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return error("%s: %s", p->path.buf, strerror(errno));
		}
		if (n == 0)
			break;
		crc = (uint32_t)crc32(crc, (const Bytef *)p->buf, (uInt)n);
		total += (uint64_t)n;
		if (total > (uint64_t)st->st_size)
			break;
		if (p->a && archive_write_data(p->a, p->buf, (size_t)n) != n) {
			errno = aerrno(p->a);
			return error("%s: %s", p->path.buf, aerr(p->a));
		}
	}
	if (total != (uint64_t)st->st_size) {
		errno = EAGAIN;
		return error("%s: changed while it was archived", p->path.buf);
	}
	if (p->a && archive_write_finish_entry(p->a) < ARCHIVE_WARN) {
		errno = aerrno(p->a);
		return error("%s: %s", p->path.buf, aerr(p->a));
	}
	const char *rel = in_manifest ? rel_of(p) : MANIFEST;
	p->agg += member_hash(rel, total, crc);
	p->files++;
	p->bytes += total;
	if (in_manifest) {
		sb_addf(&p->manifest, "%08x %llu ", crc,
			(unsigned long long)total);
		add_escaped_path(&p->manifest, rel);
		sb_addc(&p->manifest, '\n');
		if (p->manifest.len >= BUF_SIZE && pack_flush_manifest(p) < 0)
			return -1;
	}
	return 0;
}

/* Regular file dirfd/name as p->path; anything else is skipped. */
static int pack_file(struct pack *p, int dirfd, const char *name)
{
	struct stat st;
	int fd = openat(dirfd, name,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP) {
			if (!p->quiet)
				warning("batches/%s: a symbolic link, not "
					"archived", p->path.buf);
			return 0;
		}
		return error("batches/%s: %s", p->path.buf, strerror(errno));
	}
	if (fstat(fd, &st) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return error("batches/%s: %s", p->path.buf, strerror(errno));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		if (!p->quiet)
			warning("batches/%s: not a regular file, not archived",
				p->path.buf);
		return 0;
	}
	int rc = pack_fd(p, fd, &st, true);
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

static bool top_skipped(const struct pack *p, const char *name)
{
	static const char *const fixed[] = { "summary.json", "batch.json",
					     "job.ini", "journal", "lock" };
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (!strcmp(name, fixed[i]))
			return true;
	/* Dot-files at the top are our temp files; <id>.log is the log's
	 * member name. */
	return name[0] == '.' ||
	       (!strncmp(name, p->id, p->idlen) && !strcmp(name + p->idlen,
							     ".log"));
}

/* The directory dirfd, whose path p->path holds (ending in '/'). */
static int pack_tree(struct pack *p, int dirfd, int depth)
{
	size_t all;
	char **names = home_names(dirfd, &all);
	if (!names)
		return error("batches/%s: %s", p->path.buf, strerror(errno));
	size_t base = p->path.len;
	int rc = 0;
	for (size_t k = 0; k < all && rc == 0; k++) {
		const char *name = names[k];
		struct stat st;
		if (depth == 0 && top_skipped(p, name))
			continue;
		set_path(p, base, name);
		if (p->path.len > PATH_LIMIT) {
			if (!p->quiet)
				warning("batches/%.200s...: path too long, not "
					"archived", p->path.buf);
			continue;
		}
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT)
				rc = error("batches/%s: %s", p->path.buf,
					   strerror(errno));
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			rc = pack_file(p, dirfd, name);
			continue;
		}
		if (depth + 1 >= MAX_DEPTH) {
			if (!p->quiet)
				warning("batches/%s: nested too deep, not "
					"archived", p->path.buf);
			continue;
		}
		int sub = open_dir_at(dirfd, name);
		if (sub < 0) {
			rc = error("batches/%s: %s", p->path.buf,
				   strerror(errno));
			continue;
		}
		sb_addc(&p->path, '/');
		rc = write_entry_header(p, &st, true, 0);
		p->dirs++;
		if (rc == 0)
			rc = pack_tree(p, sub, depth + 1);
		close(sub);
	}
	int saved = errno;
	words_free(names);
	p->path.len = base;
	p->path.buf[base] = '\0';
	errno = saved;
	return rc;
}

/* The manifest, last: not itself listed in it. */
static int pack_manifest(struct pack *p)
{
	struct stat st;
	if (pack_flush_manifest(p) < 0)
		return -1;
	if (fstat(p->mfd, &st) < 0 || lseek(p->mfd, 0, SEEK_SET) < 0)
		return error("archive manifest: %s", strerror(errno));
	set_path(p, p->idlen + 1, MANIFEST);
	st.st_mode = S_IFREG | 0644;
	return pack_fd(p, p->mfd, &st, false);
}

/*
 * Everything of batch id (batches/<id> open as dirfd, and its log) into
 * p->a, or only its checksums.  scratch_dir: where the manifest's
 * unnamed file goes.
 */
static int pack_batch(struct pack *p, struct home *h, int dirfd,
		      int scratch_dir)
{
	static const char *const first[] = { "summary.json", "batch.json",
					     "job.ini", "journal" };
	struct stat st;
	p->mfd = scratch_fd(scratch_dir);
	if (p->mfd < 0)
		return error("archive manifest: %s", strerror(errno));
	if (fstat(dirfd, &st) < 0)
		return error("batches/%s: %s", p->id, strerror(errno));
	sb_reset(&p->path);
	sb_addf(&p->path, "%s/", p->id);
	if (write_entry_header(p, &st, true, 0) < 0)
		return -1;
	p->dirs++;
	for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++) {
		set_path(p, p->idlen + 1, first[i]);
		if (pack_file(p, dirfd, first[i]) < 0)
			return -1;
	}
	set_path(p, p->idlen + 1, "");
	if (pack_tree(p, dirfd, 0) < 0)
		return -1;
	if (has_own_log(p->id)) {
		char log[ID_MAX + 8];
		snprintf(log, sizeof(log), "%s.log", p->id);
		set_path(p, p->idlen + 1, log);
		if (pack_file(p, h->logs, log) < 0)
			return -1;
	}
	return pack_manifest(p);
}

/* Read archive fd back: same members, sizes and checksums as p saw.
 * quiet: say nothing (a leftover being checked against its batch). */
static int verify_archive(int fd, const char *file, const struct pack *p,
			  bool quiet)
{
	char opened[WHY_MAX];
	struct archive *a = reader_open(fd, opened);
	struct archive_entry *e;
	uint64_t files = 0, dirs = 0, agg = 0;
	char *buf = xmalloc(BUF_SIZE);
	struct sb why = SB_INIT;
	int r, rc = -1;
	if (!a) {
		sb_adds(&why, opened);
		goto out;
	}
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *path = archive_entry_pathname(e);
		if (!path || strncmp(path, p->id, p->idlen) ||
		    path[p->idlen] != '/') {
			errno = EINVAL;
			sb_adds(&why, "unexpected member ");
			sb_add_escaped(&why, path ? path : "(no name)", 200);
			goto out;
		}
		if (archive_entry_filetype(e) == AE_IFDIR) {
			dirs++;
			continue;
		}
		if (archive_entry_filetype(e) != AE_IFREG) {
			errno = EINVAL;
			sb_add_escaped(&why, path, 200);
			sb_adds(&why, ": not a regular file");
			goto out;
		}
		uint32_t crc = (uint32_t)crc32(0L, Z_NULL, 0);
		uint64_t total = 0;
		la_ssize_t n;
		while ((n = archive_read_data(a, buf, BUF_SIZE)) > 0) {
			crc = (uint32_t)crc32(crc, (const Bytef *)buf, (uInt)n);
			total += (uint64_t)n;
		}
		if (n < 0)
			break;
		if (total != (uint64_t)archive_entry_size(e)) {
			errno = EIO;
			sb_add_escaped(&why, path, 200);
			sb_addf(&why, ": %llu %s, the header says %lld",
				(unsigned long long)total,
				plural(total, "byte", "bytes"),
				(long long)archive_entry_size(e));
			goto out;
		}
		agg += member_hash(path + p->idlen + 1, total, crc);
		files++;
	}
	if (r != ARCHIVE_EOF) {
		errno = aerrno(a);
		sb_adds(&why, aerr(a));
		goto out;
	}
	if (files != p->files || dirs != p->dirs || agg != p->agg) {
		errno = EIO;
		sb_addf(&why, "read back %llu %s and %llu %s, "
			"wrote %llu and %llu%s", (unsigned long long)files,
			plural(files, "file", "files"), (unsigned long long)dirs,
			plural(dirs, "directory", "directories"),
			(unsigned long long)p->files,
			(unsigned long long)p->dirs,
			agg != p->agg ? ", checksums differ" : "");
		goto out;
	}
	rc = 0;
out:;
	int saved = errno;
	if (rc < 0 && !quiet)
		error("batches/archive/%s: verification failed: %s", file,
		      why.buf ? why.buf : "?");
	if (a)
		archive_read_free(a);
	free(buf);
	sb_release(&why);
	errno = saved;
	return rc;
}

/* ---- summaries and the index ---- */

/* The fields of summary.json (as meta_summary_json writes them). */
static int summary_parse(const cJSON *o, struct summary *s)
{
	if (!cJSON_IsObject(o))
		return -1;
	meta_summary_from_json(o, s);
	return meta_summary_ok(s) ? 0 : -1;
}

/* o, printed on one line and appended to sb; o is freed. */
static void add_json_line(struct sb *sb, cJSON *o)
{
	char *text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!text)
		die(EX_INTERNAL, "out of memory");
	sb_adds(sb, text);
	sb_addc(sb, '\n');
	cJSON_free(text);
}

static cJSON *index_json(const struct archive_info *ai)
{
	cJSON *o = meta_summary_json(&ai->s);
	cJSON_AddStringToObject(o, "archive", ai->file);
	json_add_time(o, "archived_at", ai->archived_ms);
	cJSON_AddNumberToObject(o, "archive_bytes", (double)ai->bytes);
	if (ai->unpacked)
		cJSON_AddNumberToObject(o, "unpacked_bytes",
					(double)ai->unpacked);
	return o;
}

/* index_json(ai) with every other field of full (may be NULL): the
 * batch's summary.json, or an index line that holds it, so that `stats`
 * sees an archived batch with every figure it has in batches/ (attempts,
 * error categories, busy time, failed symbols); the fields of ai win. */
static cJSON *index_json_full(const struct archive_info *ai, const cJSON *full)
{
	cJSON *o = index_json(ai);
	if (cJSON_IsObject(full)) {
		const cJSON *f;
		cJSON_ArrayForEach(f, full)
		{
			if (f->string &&
			    !cJSON_GetObjectItemCaseSensitive(o, f->string))
				cJSON_AddItemToObject(
					o, f->string,
					cJSON_Duplicate(f, true));
		}
	}
	return o;
}

static void add_index_line_full(struct sb *sb, const struct archive_info *ai,
				const cJSON *full)
{
	add_json_line(sb, index_json_full(ai, full));
}

/*
 * One archive as the index knows it: ai for `list`, and doc, the JSON text
 * of its whole line (or of the archive's summary.json) for `stats`, kept
 * by every rewrite.  full: doc holds a whole summary.json (an index line
 * written by an older version may hold the summary fields only).
 */
struct index_entry {
	struct archive_info ai;
	char *doc;
	bool full;
};

struct index {
	struct index_entry *v;
	size_t n, cap;
};

/* summary.json always has error_summary; an index line without it was
 * rewritten from the summary fields alone. */
static bool doc_full(const cJSON *o)
{
	return cJSON_IsObject(
		cJSON_GetObjectItemCaseSensitive(o, "error_summary"));
}

static int parse_index_line(const char *line, struct index_entry *e)
{
	char id[ID_MAX + 1];
	cJSON *o = cJSON_Parse(line);
	struct archive_info *ai = &e->ai;
	int rc = -1;
	memset(e, 0, sizeof(*e));
	if (summary_parse(o, &ai->s) == 0) {
		json_get_str(o, "archive", ai->file, sizeof(ai->file));
		ai->archived_ms = json_get_time(o, "archived_at");
		ai->bytes = (uint64_t)json_get_count(o, "archive_bytes");
		ai->unpacked = (uint64_t)json_get_count(o, "unpacked_bytes");
		if (archive_name_id(ai->file, id) && !strcmp(id, ai->s.id)) {
			e->doc = xstrdup(line);
			e->full = doc_full(o);
			rc = 0;
		}
	}
	cJSON_Delete(o);
	return rc;
}

static void index_release(struct index *ix)
{
	for (size_t i = 0; i < ix->n; i++)
		free(ix->v[i].doc);
	free(ix->v);
	ix->v = NULL;
	ix->n = ix->cap = 0;
}

/* The entry as one JSON object (the caller deletes it). */
static cJSON *entry_json(const struct index_entry *e)
{
	cJSON *full = e->doc ? cJSON_Parse(e->doc) : NULL;
	cJSON *o = index_json_full(&e->ai, full);
	cJSON_Delete(full);
	return o;
}

struct tagged {
	struct index_entry e;
	size_t pos;
};

/* By file name, and of one name the latest line first. */
static int cmp_tagged(const void *a, const void *b)
{
	const struct tagged *x = a, *y = b;
	int c = strcmp(x->e.ai.file, y->e.ai.file);
	if (c)
		return c;
	return x->pos > y->pos ? -1 : x->pos < y->pos;
}

/* index.jsonl as it is: unparsable (torn) lines are skipped, and of two
 * lines for one archive the later wins.  Sorted by file name. */
static int index_load(int adir, struct index *ix)
{
	struct sb text = SB_INIT;
	struct tagged *t = NULL;
	size_t n = 0, cap = 0;
	struct stat st;
	int fd = openat(adir, INDEX_NAME,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    read_fd_bounded(fd, INDEX_MAX, &text) < 0) {
		int saved = errno ? errno : EINVAL;
		close(fd);
		sb_release(&text);
		errno = saved;
		return -1;
	}
	close(fd);
	sb_addc(&text, '\0');
	for (char *line = text.buf, *nl; line && *line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		GROW(t, cap, n + 1);
		if (parse_index_line(line, &t[n].e) == 0) {
			t[n].pos = n;
			n++;
		}
	}
	sb_release(&text);
	if (n)
		qsort(t, n, sizeof(*t), cmp_tagged);
	for (size_t i = 0; i < n; i++) {
		if (i && !strcmp(t[i - 1].e.ai.file, t[i].e.ai.file)) {
			free(t[i].e.doc);
			continue;
		}
		GROW(ix->v, ix->cap, ix->n + 1);
		ix->v[ix->n++] = t[i].e;
	}
	free(t);
	return 0;
}

static int open_archive_file(int adir, const char *file, struct stat *st)
{
	int fd = openat(adir, file,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		int saved = S_ISREG(st->st_mode) ? errno : EINVAL;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

typedef int (*sink_fn)(void *arg, const void *buf, size_t n);

/*
 * Stream member "<id>/<member>" of the archive open as fd into sink.
 * 1: copied; 0: no such member; -1: error (printed unless quiet).
 */
static int read_member_fd(int fd, const char *file, const char *id,
			  const char *member, sink_fn sink, void *arg,
			  bool quiet)
{
	char opened[WHY_MAX];
	struct archive *a = reader_open(fd, opened);
	struct archive_entry *e;
	char *want = xasprintf("%s/%s", id, member);
	int r, rc = 0;
	if (!a) {
		if (!quiet)
			error("batches/archive/%s: %s", file, opened);
		free(want);
		return -1;
	}
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *path = archive_entry_pathname(e);
		if (archive_entry_filetype(e) != AE_IFREG || !path ||
		    strcmp(path, want))
			continue;
		char *buf = xmalloc(BUF_SIZE);
		la_ssize_t n;
		while ((n = archive_read_data(a, buf, BUF_SIZE)) > 0)
			if (sink(arg, buf, (size_t)n) < 0) {
				int saved = errno;
				if (!quiet)
					error("batches/archive/%s: %s: %s",
					      file, want, strerror(errno));
				errno = saved;
				rc = -1;
				break;
			}
		free(buf);
		if (rc == 0 && n < 0)
			break;
		if (rc == 0)
			rc = 1;
		r = ARCHIVE_EOF;
		break;
	}
	if (rc == 0 && r != ARCHIVE_EOF) {
		errno = aerrno(a);
		if (!quiet)
			error("batches/archive/%s: %s", file, aerr(a));
		rc = -1;
	}
	int saved = errno;
	archive_read_free(a);
	free(want);
	errno = saved;
	return rc;
}

struct sb_sink {
	struct sb *sb;
	size_t max;
};

static int to_sb(void *arg, const void *buf, size_t n)
{
	struct sb_sink *s = arg;
	if (s->sb->len + n > s->max) {
		errno = EFBIG;
		return -1;
	}
	sb_add(s->sb, buf, n);
	return 0;
}

static int to_fd(void *arg, const void *buf, size_t n)
{
	return write_all(*(int *)arg, buf, n);
}

/* An index entry made from the archive itself: e->doc is its summary.json,
 * e->ai.archived_ms the archive's mtime. */
static int entry_from_archive(int adir, const char *file,
			      struct index_entry *e)
{
	char id[ID_MAX + 1];
	struct sb text = SB_INIT;
	struct sb_sink sink = { &text, SUMMARY_MAX_BYTES };
	struct stat st;
	int rc = -1;
	if (!archive_name_id(file, id))
		return -1;
	int fd = open_archive_file(adir, file, &st);
	if (fd < 0)
		return -1;
	if (read_member_fd(fd, file, id, "summary.json", to_sb, &sink,
			   true) == 1) {
		sb_addc(&text, '\0');
		cJSON *o = cJSON_Parse(text.buf);
		struct index_entry got = { 0 };
		if (summary_parse(o, &got.ai.s) == 0 &&
		    !strcmp(got.ai.s.id, id)) {
			snprintf(got.ai.file, sizeof(got.ai.file), "%s", file);
			got.ai.archived_ms =
				(int64_t)st.st_mtim.tv_sec * 1000 +
				st.st_mtim.tv_nsec / 1000000;
			got.ai.bytes = (uint64_t)st.st_size;
			got.doc = xstrdup(text.buf);
			got.full = doc_full(o);
			*e = got;
			rc = 0;
		}
		cJSON_Delete(o);
	}
	close(fd);
	sb_release(&text);
	return rc;
}

static int info_from_archive(int adir, const char *file,
			     struct archive_info *ai)
{
	struct index_entry e;
	if (entry_from_archive(adir, file, &e) < 0)
		return -1;
	*ai = e.ai;
	free(e.doc);
	return 0;
}

/* Every name in a directory but . and .. (NULL-terminated, xstrdup'ed). */
static char **dir_names(int dirfd, size_t *count)
{
	return home_names(dirfd, count);
}

static void names_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Make ix agree with the archive files there are: lines of files that are
 * gone are dropped, files without a line are read (their summary.json),
 * sizes are refreshed, and a line that lost the batch's figures (an older
 * version's rewrite kept the summary fields only) gets them back from the
 * archive's summary.json.  *changed: ix differs from what was loaded.
 */
static int index_reconcile(int adir, struct index *ix, bool *changed)
{
	size_t n = 0, j = 0;
	char **names = dir_names(adir, &n);
	struct index out = { 0 };
	char id[ID_MAX + 1];
	if (!names)
		return -1;
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	*changed = false;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (names[i][0] == '.' || !archive_name_id(names[i], id) ||
		    fstatat(adir, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		while (j < ix->n && strcmp(ix->v[j].ai.file, names[i]) < 0) {
			free(ix->v[j++].doc);
			*changed = true;
		}
		struct index_entry e;
		if (j < ix->n && !strcmp(ix->v[j].ai.file, names[i])) {
			e = ix->v[j++];
			struct index_entry again;
			if (!e.full &&
			    entry_from_archive(adir, names[i], &again) == 0) {
				if (again.full) {
					again.ai.archived_ms = e.ai.archived_ms;
					free(e.doc);
					e = again;
					*changed = true;
				} else {
					free(again.doc);
				}
			}
			if (e.ai.bytes != (uint64_t)st.st_size) {
				e.ai.bytes = (uint64_t)st.st_size;
				*changed = true;
			}
		} else if (entry_from_archive(adir, names[i], &e) == 0) {
			*changed = true;
		} else {
			continue; /* not listable; restore still finds it */
		}
		GROW(out.v, out.cap, out.n + 1);
		out.v[out.n++] = e;
	}
	if (j < ix->n)
		*changed = true;
	while (j < ix->n)
		free(ix->v[j++].doc);
	ix->n = 0;
	names_free(names);
	index_release(ix);
	*ix = out;
	return 0;
}

static int index_rewrite(int adir, const struct index *ix)
{
	struct sb sb = SB_INIT;
	for (size_t i = 0; i < ix->n; i++)
		add_json_line(&sb, entry_json(&ix->v[i]));
	int rc = home_replace(adir, INDEX_NAME, sb.buf ? sb.buf : "", sb.len);
	sb_release(&sb);
	if (rc < 0)
		warning("batches/archive/%s: %s", INDEX_NAME, strerror(errno));
	return rc;
}

/* Load, reconcile and (when it was off) rewrite the index. */
static void index_fix(int adir)
{
	struct index ix = { 0 };
	bool changed = false;
	if (index_load(adir, &ix) < 0)
		changed = true; /* unreadable: rebuilt from the archives */
	if (index_reconcile(adir, &ix, &changed) == 0 && changed)
		index_rewrite(adir, &ix);
	index_release(&ix);
}

/* One whole line, one write: a crash tears at most this line, and a torn
 * line before it is closed off with a newline first. */
static int index_append(int adir, const struct archive_info *ai,
			const cJSON *full)
{
	struct sb sb = SB_INIT;
	struct stat st;
	char last = '\n';
	int fd = openat(adir, INDEX_NAME,
			O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
			0644);
	int rc = -1;
	if (fd < 0)
		goto out;
	if (fstat(fd, &st) < 0)
		goto out;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto out;
	}
	if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)
		goto out;
	if (last != '\n')
		sb_addc(&sb, '\n');
	add_index_line_full(&sb, ai, full);
	if (write_all(fd, sb.buf, sb.len) < 0 || fdatasync(fd) < 0)
		goto out;
	rc = 0;
out:;
	int saved = errno;
	if (fd >= 0)
		close(fd);
	sb_release(&sb);
	if (rc < 0)
		warning("batches/archive/%s: %s (rebuilt at the next archive "
			"run)", INDEX_NAME, strerror(saved));
	errno = saved;
	return rc;
}

/* ---- a run ---- */

struct run {
	struct home *h;
	const struct archive_opts *o;	/* NULL: recovery for a restore */
	int adir;
	int64_t now;
	enum compression comp;
	archive_event_fn fn;
	void *arg;
	int failed;
	int first_err;	/* errno of the first failure */
	int stop;	/* errno that ended the run: full disk, failed fsync */
	bool index_failed; /* an append to the index failed: no more this
			      run (its sync is never tried again; the next
			      run rebuilds the index from the archives) */
};

static void emit(struct run *r, enum archive_action act, const char *id,
		 const char *file, int64_t completed, uint64_t bytes,
		 const char *why)
{
	if (!r->fn)
		return;
	struct archive_event ev = {
		.action = act,
		.dry_run = r->o && r->o->dry_run,
		.id = id,
		.file = file,
		.completed_ms = completed,
		.age_ms = completed > 0 ? r->now - completed : -1,
		.bytes = bytes,
		.why = why,
	};
	r->fn(r->arg, &ev);
}

static bool stops_run(int e)
{
	return e == ENOSPC || e == EDQUOT || e == EIO || e == EROFS;
}

static void failed(struct run *r, int e)
{
	r->failed++;
	if (!r->first_err)
		r->first_err = e ? e : EIO;
	if (stops_run(e) && !r->stop)
		r->stop = e;
}

static bool any_archive(int adir, const char *id, char *file, size_t n)
{
	for (size_t i = 0; i < NEXTS; i++) {
		struct stat st;
		archive_name(file, n, id, (enum compression)i);
		if (fstatat(adir, file, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			return true;
	}
	return false;
}

/*
 * The archive of batch id is durable: rename the batch directory to a
 * trash name (the commit), then remove it and the log.  Closes *dirfd and
 * *lockfd.
 */
static int discard_batch(struct run *r, const char *id, int *dirfd,
			 int *lockfd)
{
	char trash[ID_MAX + 32];
	struct home *h = r->h;
	snprintf(trash, sizeof(trash), TRASH "%s-%08x", id,
		 (unsigned)random_u64());
	if (rename_noreplace(h->batches, id, h->batches, trash) < 0)
		return error("batches/%s: %s", id, strerror(errno));
	if (fsync_dir(h->batches) < 0)
		return error("batches: fsync: %s", strerror(errno));
	close(*lockfd);
	close(*dirfd);
	*lockfd = *dirfd = -1;
	if (remove_tree(h->batches, trash) < 0)
		warning("batches/%s: %s (removed at the next archive run)",
			trash, strerror(errno));
	if (has_own_log(id)) {
		char log[ID_MAX + 8];
		snprintf(log, sizeof(log), "%s.log", id);
		if (unlinkat(h->logs, log, 0) == 0)
			fsync_dir(h->logs);
		else if (errno != ENOENT)
			warning("logs/%s: %s", log, strerror(errno));
	}
	return 0;
}

/* Move an archive that differs from its batch's directory aside, to
 * batches/archive/superseded/: kept for a person to decide, never
 * listed, restored or deleted by retention. */
static int supersede(struct run *r, const char *id, const char *file)
{
	char name[128], why[256];
	int sdir;
	if (ensure_dir(r->adir, "superseded", 0755) < 0 ||
	    (sdir = open_dir_at(r->adir, "superseded")) < 0)
		return error("batches/archive/superseded: %s", strerror(errno));
	snprintf(name, sizeof(name), "%s.%08x", file, (unsigned)random_u64());
	if (renameat(r->adir, file, sdir, name) < 0 || fsync_dir(sdir) < 0 ||
	    fsync_dir(r->adir) < 0) {
		int saved = errno;
		close(sdir);
		errno = saved;
		return error("batches/archive/%s: %s", file, strerror(errno));
	}
	close(sdir);
	warning("batches/%s differs from its archive: kept the batch, moved "
		"the archive to batches/archive/superseded/%s", id, name);
	snprintf(why, sizeof(why),
		 "kept the batch; its differing archive is now "
		 "batches/archive/superseded/%s", name);
	emit(r, ARCH_RECOVERED, id, NULL, 0, 0, why);
	return 0;
}

/*
 * A batch directory and its archive both exist: a crash between the
 * archive's rename and the batch's (they match: finish), or a batch
 * changed or made again under that id since (they differ: keep the
 * batch, move the archive aside).  A directory without a journal is not
 * a batch (someone's mkdir): both are left alone.
 */
static void recover_both(struct run *r, const char *id, const char *file)
{
	struct pack p;
	struct stat st;
	int dirfd = open_dir_at(r->h->batches, id), lockfd = -1, fd = -1;
	pack_init(&p, id);
	p.quiet = true;
	if (dirfd < 0 ||
	    fstatat(dirfd, "journal", &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode))
		goto out;
	if ((lockfd = batch_lock(dirfd)) < 0) {
		if (errno != EWOULDBLOCK)
			error("batches/%s/lock: %s", id, strerror(errno));
		goto out; /* in use: decided when its runner lets go */
	}
	if ((fd = open_archive_file(r->adir, file, &st)) < 0) {
		error("batches/archive/%s: %s", file, strerror(errno));
		goto out;
	}
	if (pack_batch(&p, r->h, dirfd, r->adir) < 0) {
		failed(r, errno);
		goto out;
	}
	if (verify_archive(fd, file, &p, true) == 0) {
		if (discard_batch(r, id, &dirfd, &lockfd) < 0) {
			failed(r, errno);
			goto out;
		}
		emit(r, ARCH_RECOVERED, id, file, 0, (uint64_t)st.st_size,
		     "finished an interrupted archive");
	} else if (supersede(r, id, file) < 0) {
		failed(r, errno);
	}
out:
	if (fd >= 0)
		close(fd);
	if (lockfd >= 0)
		close(lockfd);
	if (dirfd >= 0)
		close(dirfd);
	pack_release(&p);
}

/* .restoring-<file>: a restore got as far as renaming the archive aside. */
static void recover_restoring(struct run *r, const char *name)
{
	const char *file = name + strlen(RESTORING);
	char id[ID_MAX + 1];
	if (!archive_name_id(file, id))
		return;
	if (is_dir_at(r->h->batches, id)) {
		/* The batch is back: only the archive's removal was left. */
		if (unlinkat(r->adir, name, 0) == 0) {
			fsync_dir(r->adir);
			emit(r, ARCH_RECOVERED, id, NULL, 0, 0,
			     "finished an interrupted restore");
		}
	} else if (rename_noreplace(r->adir, name, r->adir, file) == 0) {
		fsync_dir(r->adir);
		emit(r, ARCH_RECOVERED, id, file, 0, 0,
		     "undid an interrupted restore");
	} else {
		warning("batches/archive/%s: %s", name, strerror(errno));
	}
}

/* Sweep what a crash left (see archive.h).  Under the archive lock. */
static void recover(struct run *r)
{
	struct home *h = r->h;
	size_t n;
	char **names;
	char id[ID_MAX + 1];

	remove_stale_temps(r->adir, NULL, 0);
	if ((names = dir_names(h->batches, &n))) {
		bool removed = false;
		for (size_t i = 0; i < n; i++)
			if (!strncmp(names[i], TRASH, strlen(TRASH)) ||
			    !strncmp(names[i], RESTORE_TMP,
				     strlen(RESTORE_TMP))) {
				if (remove_tree(h->batches, names[i]) < 0)
					warning("batches/%s: %s", names[i],
						strerror(errno));
				removed = true;
			}
		if (removed)
			fsync_dir(h->batches);
		names_free(names);
	}
	if ((names = dir_names(r->adir, &n))) {
		for (size_t i = 0; i < n; i++)
			if (!strncmp(names[i], RESTORING, strlen(RESTORING)))
				recover_restoring(r, names[i]);
		for (size_t i = 0; i < n && !r->stop; i++)
			if (names[i][0] != '.' &&
			    archive_name_id(names[i], id) &&
			    is_dir_at(h->batches, id))
				recover_both(r, id, names[i]);
		names_free(names);
	}
	/* A log whose batch is archived (a crash after the batch's trash
	 * rename, or during a restore). */
	if ((names = dir_names(h->logs, &n))) {
		bool removed = false;
		for (size_t i = 0; i < n; i++) {
			size_t len = strlen(names[i]);
			char file[128];
			if (len <= 4 || len - 4 > ID_MAX ||
			    strcmp(names[i] + len - 4, ".log"))
				continue;
			memcpy(id, names[i], len - 4);
			id[len - 4] = '\0';
			if (!valid_batch_id(id) || !has_own_log(id) ||
			    is_dir_at(h->batches, id) ||
			    !any_archive(r->adir, id, file, sizeof(file)))
				continue;
			if (unlinkat(h->logs, names[i], 0) == 0)
				removed = true;
		}
		if (removed)
			fsync_dir(h->logs);
		names_free(names);
	}
	index_fix(r->adir);
}

static int64_t completed_of(int dirfd, const struct summary *s)
{
	struct stat st;
	if (s->completed_ms > 0)
		return s->completed_ms;
	if (fstatat(dirfd, "summary.json", &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

/* Write, check and commit the archive of a locked final batch. */
static void archive_batch(struct run *r, const char *id, int *dirfd,
			  int *lockfd, const struct summary *s,
			  int64_t completed)
{
	char file[96], tmp[160];
	struct pack p;
	struct stat st;
	struct archive *a = NULL;
	bool committed = false;
	int fd;

	archive_name(file, sizeof(file), id, r->comp);
	snprintf(tmp, sizeof(tmp), ".%s.%016llx.tmp", file,
		 (unsigned long long)random_u64());
	pack_init(&p, id);
	fd = openat(r->adir, tmp,
		    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		error("batches/archive/%s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (!(p.a = a = writer_open(fd, r->comp)) ||
	    pack_batch(&p, r->h, *dirfd, r->adir) < 0)
		goto fail;
	if (archive_write_close(a) != ARCHIVE_OK) {
		errno = aerrno(a);
		error("batches/archive/%s: %s", tmp, aerr(a));
		goto fail;
	}
	archive_write_free(a);
	p.a = a = NULL;
	if (fsync(fd) < 0) {
		/* Never retried: whatever the kernel dropped is unknown. */
		error("batches/archive/%s: fsync: %s", tmp, strerror(errno));
		errno = EIO;
		goto fail;
	}
	if (verify_archive(fd, tmp, &p, false) < 0 || fstat(fd, &st) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		error("batches/archive/%s: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename_noreplace(r->adir, tmp, r->adir, file) < 0) {
		error("batches/archive/%s: %s", file, strerror(errno));
		goto fail;
	}
	committed = true;
	if (fsync_dir(r->adir) < 0) {
		/* The archive may not survive a crash: keep the batch; the
		 * next run checks the archive against it. */
		error("batches/archive: fsync: %s", strerror(errno));
		errno = EIO;
		goto fail;
	}
	struct archive_info ai = { .s = *s, .archived_ms = r->now,
				   .bytes = (uint64_t)st.st_size,
				   .unpacked = p.bytes };
	snprintf(ai.file, sizeof(ai.file), "%s", file);
	cJSON *full = meta_read_summary_json(*dirfd);
	if (!r->index_failed && index_append(r->adir, &ai, full) < 0)
		r->index_failed = true;
	cJSON_Delete(full);
	if (discard_batch(r, id, dirfd, lockfd) < 0)
		goto fail;
	emit(r, ARCH_ARCHIVED, id, file, completed, (uint64_t)st.st_size,
	     NULL);
	pack_release(&p);
	return;
fail:;
	int saved = errno;
	if (a)
		archive_write_free(a);
	if (fd >= 0)
		close(fd);
	if (!committed)
		unlinkat(r->adir, tmp, 0);
	pack_release(&p);
	emit(r, ARCH_FAILED, id, NULL, completed, 0, strerror(saved));
	failed(r, saved);
}

/* A journal, and summary.json saying final: a batch to archive. */
static bool eligible(struct run *r, int dirfd, struct summary *s,
		     int64_t *completed)
{
	struct stat st;
	if (meta_read_summary(dirfd, s) < 0 || !status_final(s->status) ||
	    fstatat(dirfd, "journal", &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode))
		return false;
	*completed = completed_of(dirfd, s);
	return r->now - *completed >= r->o->older_than_ms;
}

static void archive_one(struct run *r, const char *id)
{
	struct summary s;
	int64_t completed;
	char file[96];
	int lockfd = -1, dirfd = open_dir_at(r->h->batches, id);
	if (dirfd < 0 || !eligible(r, dirfd, &s, &completed))
		goto out;
	if (r->o->dry_run) {
		archive_name(file, sizeof(file), id, r->comp);
		if (batch_locked(dirfd))
			emit(r, ARCH_SKIPPED, id, NULL, completed, 0,
			     "owned by a running runner");
		else
			emit(r, ARCH_ARCHIVED, id, file, completed, 0, NULL);
		goto out;
	}
	if ((lockfd = batch_lock(dirfd)) < 0) {
		if (errno == EWOULDBLOCK) {
			emit(r, ARCH_SKIPPED, id, NULL, completed, 0,
			     "owned by a running runner");
		} else {
			error("batches/%s/lock: %s", id, strerror(errno));
			failed(r, errno);
		}
		goto out;
	}
	/* Under the lock: what it says now is what gets archived. */
	if (!eligible(r, dirfd, &s, &completed))
		goto out;
	if (any_archive(r->adir, id, file, sizeof(file))) {
		error("batches/%s: batches/archive/%s exists already", id,
		      file);
		emit(r, ARCH_FAILED, id, file, completed, 0,
		     "an archive of it exists");
		failed(r, EEXIST);
		goto out;
	}
	archive_batch(r, id, &dirfd, &lockfd, &s, completed);
out:
	if (lockfd >= 0)
		close(lockfd);
	if (dirfd >= 0)
		close(dirfd);
}

static void archive_pass(struct run *r)
{
	size_t n;
	char **names = dir_names(r->h->batches, &n);
	if (!names) {
		error("batches: %s", strerror(errno));
		failed(r, errno);
		return;
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n && !r->stop; i++)
		if (names[i][0] != '.' && strcmp(names[i], ARCHIVE_DIR) &&
		    valid_batch_id(names[i]))
			archive_one(r, names[i]);
	names_free(names);
}

static void delete_pass(struct run *r)
{
	struct index ix = { 0 };
	bool changed = false, removed = false;
	if (index_load(r->adir, &ix) < 0)
		changed = true;
	if (index_reconcile(r->adir, &ix, &changed) < 0) {
		error("batches/archive: %s", strerror(errno));
		failed(r, errno);
		return;
	}
	size_t kept = 0;
	for (size_t i = 0; i < ix.n; i++) {
		struct archive_info *ai = &ix.v[i].ai;
		int64_t when = ai->s.completed_ms ? ai->s.completed_ms
						  : ai->archived_ms;
		bool keep = true;
		if (!when || r->now - when < r->o->delete_after_ms ||
		    r->stop) {
			/* kept */
		} else if (r->o->dry_run) {
			emit(r, ARCH_DELETED, ai->s.id, ai->file, when,
			     ai->bytes, NULL);
		} else if (unlinkat(r->adir, ai->file, 0) == 0) {
			removed = true;
			keep = false;
			emit(r, ARCH_DELETED, ai->s.id, ai->file, when,
			     ai->bytes, NULL);
		} else {
			error("batches/archive/%s: %s", ai->file,
			      strerror(errno));
			failed(r, errno);
		}
		if (keep)
			ix.v[kept++] = ix.v[i];
		else
			free(ix.v[i].doc);
	}
	ix.n = kept;
	if (removed && fsync_dir(r->adir) < 0) {
		error("batches/archive: fsync: %s", strerror(errno));
		failed(r, EIO);
	}
	if (!r->o->dry_run && (removed || changed))
		index_rewrite(r->adir, &ix);
	index_release(&ix);
}

void archive_opts_from_conf(struct archive_opts *o, const struct conf *c)
{
	memset(o, 0, sizeof(*o));
	o->older_than_ms = c->archive_after_ms;
	o->delete_after_ms =
		c->delete_archives_after_ms > 0 ? c->delete_archives_after_ms
						: -1;
	o->compression = c->compression;
}

int archive_recover(struct home *h)
{
	struct run r = { .h = h, .adir = -1, .now = now_ms() };
	int lockfd;
	if ((r.adir = open_archive_dir(h, false)) < 0)
		return errno == ENOENT ? 0
				       : error("batches/archive: %s",
					       strerror(errno));
	if ((lockfd = take_archive_lock(r.adir)) < 0) {
		int saved = errno;
		close(r.adir);
		if (saved == EWOULDBLOCK)
			return 0; /* its holder sweeps */
		errno = saved;
		return error("batches/archive/%s: %s", LOCK_NAME,
			     strerror(saved));
	}
	recover(&r);
	close(lockfd);
	close(r.adir);
	return 0;
}

int archive_run(struct home *h, const struct archive_opts *o,
		archive_event_fn fn, void *arg)
{
	struct run r = {
		.h = h, .o = o, .adir = -1, .fn = fn, .arg = arg,
		.now = o->now_ms ? o->now_ms : now_ms(),
		.comp = o->compression,
	};
	int lockfd = -1;
	if (o->dry_run) {
		/* Change nothing, not even create batches/archive/. */
		r.adir = open_archive_dir(h, false);
		if (r.adir < 0 && errno != ENOENT)
			return error("batches/archive: %s", strerror(errno));
	} else {
		if ((r.adir = open_archive_dir(h, true)) < 0)
			return error("batches/archive: %s", strerror(errno));
		if ((lockfd = take_archive_lock(r.adir)) < 0) {
			int saved = errno;
			close(r.adir);
			errno = saved;
			if (saved == EWOULDBLOCK)
				return error("batches/archive: another archive "
					     "or restore is running");
			return error("batches/archive/%s: %s", LOCK_NAME,
				     strerror(saved));
		}
		recover(&r);
	}
	r.comp = usable_compression(o->compression);
	if (o->older_than_ms >= 0 && !r.stop)
		archive_pass(&r);
	if (o->delete_after_ms >= 0 && r.adir >= 0 && !r.stop)
		delete_pass(&r);
	if (lockfd >= 0)
		close(lockfd);
	if (r.adir >= 0)
		close(r.adir);
	if (r.stop) {
		errno = r.stop;
		return -1;
	}
	if (r.failed) {
		errno = r.first_err;
		return -1;
	}
	return 0;
}

/* ---- events and views ---- */

const char *archive_action_name(enum archive_action a)
{
	switch (a) {
	case ARCH_ARCHIVED:
		return "archive";
	case ARCH_DELETED:
		return "delete";
	case ARCH_SKIPPED:
		return "skip";
	case ARCH_FAILED:
		return "failed";
	case ARCH_RECOVERED:
		return "recovered";
	}
	return "?";
}

cJSON *archive_event_json(const struct archive_event *ev)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "action", archive_action_name(ev->action));
	cJSON_AddBoolToObject(o, "dry_run", ev->dry_run);
	cJSON_AddStringToObject(o, "batch_id", ev->id);
	if (ev->file) {
		char *path = xasprintf("batches/archive/%s", ev->file);
		cJSON_AddStringToObject(o, "archive", path);
		free(path);
	} else {
		cJSON_AddNullToObject(o, "archive");
	}
	json_add_time(o, "completed_at", ev->completed_ms);
	if (ev->age_ms >= 0)
		cJSON_AddNumberToObject(o, "age_seconds",
					(double)(ev->age_ms / 1000));
	else
		cJSON_AddNullToObject(o, "age_seconds");
	cJSON_AddNumberToObject(o, "bytes", (double)ev->bytes);
	cJSON_AddNumberToObject(o, "archive_bytes", (double)ev->bytes);
	if (ev->why)
		cJSON_AddStringToObject(o, "reason", ev->why);
	else
		cJSON_AddNullToObject(o, "reason");
	return o;
}

cJSON *archive_info_json(const struct archive_info *ai)
{
	cJSON *o = meta_summary_json(&ai->s);
	char *path = xasprintf("batches/archive/%s", ai->file);
	cJSON_AddBoolToObject(o, "archived", true);
	cJSON_AddStringToObject(o, "archive", path);
	json_add_time(o, "archived_at", ai->archived_ms);
	cJSON_AddNumberToObject(o, "archive_bytes", (double)ai->bytes);
	free(path);
	return o;
}

/* The index as the archive files say (nothing written): 0, -1 printed. */
static int index_read(struct home *h, struct index *ix)
{
	bool changed;
	int rc = 0, adir = open_archive_dir(h, false);
	if (adir < 0) {
		if (errno == ENOENT)
			return 0;
		return error("batches/archive: %s", strerror(errno));
	}
	if (index_load(adir, ix) < 0)
		warning("batches/archive/%s: %s (reading the archives)",
			INDEX_NAME, strerror(errno));
	if (index_reconcile(adir, ix, &changed) < 0)
		rc = error("batches/archive: %s", strerror(errno));
	close(adir);
	return rc;
}

int archive_list(struct home *h, archive_list_fn fn, void *arg)
{
	struct index ix = { 0 };
	int rc = index_read(h, &ix);
	for (size_t i = 0; rc == 0 && i < ix.n; i++)
		rc = fn(arg, &ix.v[i].ai);
	index_release(&ix);
	return rc;
}

/* The archive file of id: its directory fd (or -1, ENOENT silent). */
static int locate(struct home *h, const char *id, char *file, size_t n)
{
	int adir;
	if (!valid_batch_id(id)) {
		errno = ENOENT;
		return -1;
	}
	if ((adir = open_archive_dir(h, false)) < 0) {
		if (errno != ENOENT)
			error("batches/archive: %s", strerror(errno));
		return -1;
	}
	if (!any_archive(adir, id, file, n)) {
		close(adir);
		errno = ENOENT;
		return -1;
	}
	return adir;
}

bool archive_exists(struct home *h, const char *id)
{
	char file[96];
	int adir = locate(h, id, file, sizeof(file));
	if (adir < 0)
		return false;
	close(adir);
	return true;
}

int archive_find(struct home *h, const char *id, struct archive_info *ai)
{
	char file[96];
	struct index ix = { 0 };
	struct stat st;
	int rc = -1, adir = locate(h, id, file, sizeof(file));
	if (adir < 0)
		return -1;
	if (fstatat(adir, file, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		error("batches/archive/%s: %s", file, strerror(errno));
		goto out;
	}
	index_load(adir, &ix);
	for (size_t i = 0; i < ix.n; i++)
		if (!strcmp(ix.v[i].ai.file, file)) {
			*ai = ix.v[i].ai;
			ai->bytes = (uint64_t)st.st_size;
			rc = 0;
			goto out;
		}
	if (info_from_archive(adir, file, ai) == 0) {
		rc = 0;
	} else {
		errno = EINVAL;
		error("batches/archive/%s: no readable summary.json", file);
	}
out:;
	int saved = errno;
	index_release(&ix);
	close(adir);
	errno = saved;
	return rc;
}

static int member(struct home *h, const char *id, const char *name,
		  sink_fn sink, void *arg)
{
	char file[96];
	struct stat st;
	int adir = locate(h, id, file, sizeof(file)), fd, rc;
	if (adir < 0)
		return -1;
	fd = open_archive_file(adir, file, &st);
	if (fd < 0) {
		int saved = errno;
		close(adir);
		errno = saved;
		if (errno != ENOENT)
			error("batches/archive/%s: %s", file, strerror(errno));
		return -1;
	}
	rc = read_member_fd(fd, file, id, name, sink, arg, false);
	int saved = errno;
	close(fd);
	close(adir);
	if (rc == 1)
		return 0;
	errno = rc == 0 ? ENOENT : saved;
	return -1;
}

int archive_read_member(struct home *h, const char *id, const char *name,
			size_t max, struct sb *out)
{
	struct sb_sink sink = { out, max };
	return member(h, id, name, to_sb, &sink);
}

int archive_copy_member(struct home *h, const char *id, const char *name,
			int fd)
{
	return member(h, id, name, to_fd, &fd);
}

int archive_load_batch(struct home *h, const char *id, struct batch *b)
{
	const char *tmp = getenv("TMPDIR");
	char dir[PATH_MAX];
	struct journal j;
	int dfd, fd, rc = -1;

	batch_init(b);
	snprintf(dir, sizeof(dir), "%s/runner-show-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return error("%s: %s", dir, strerror(errno));
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		error("%s: %s", dir, strerror(errno));
		goto out_rmdir;
	}
	fd = openat(dfd, "journal",
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		error("%s/journal: %s", dir, strerror(errno));
		goto out_close;
	}
	rc = archive_copy_member(h, id, "journal", fd);
	if (close(fd) < 0 && rc == 0)
		rc = error("%s/journal: %s", dir, strerror(errno));
	if (rc == 0) {
		if (journal_open(&j, dfd, "journal", false, batch_replay, b) <
		    0) {
			rc = error("batches/archive: %s/journal: %s", id,
				   j.why[0] ? j.why : strerror(errno));
		} else {
			journal_close(&j);
			batch_damaged(&j, b);
			if (b->forged[0]) {
				errno = EINVAL;
				rc = error("batch %s: journal: %s; the batch is "
					   "refused", id, b->forged);
			} else if (!b->claimed) {
				errno = EINVAL;
				rc = error("batches/archive: %s/journal: no "
					   "claim record", id);
			} else if (strcmp(b->c.id, id)) {
				errno = EINVAL;
				rc = error("batch %s: journal: it is the journal "
					   "of batch %s; the batch is refused",
					   id, b->c.id);
			}
		}
	}
	unlinkat(dfd, "journal", 0);
out_close:;
	int saved = errno;
	close(dfd);
	errno = saved;
out_rmdir:
	saved = errno;
	rmdir(dir);
	errno = saved;
	return rc;
}

/* ---- restore ---- */

/*
 * Whether an entry may be extracted: "<id>" or "<id>/..." without empty,
 * "." or ".." parts, a regular file or a directory.  0, or the exit
 * status with why filled: 65 (it would write elsewhere: refused), 74
 * (damaged).
 */
static int check_entry(struct archive_entry *e, const char *id, size_t idlen,
		       struct sb *why)
{
	const char *path = archive_entry_pathname(e);
	mode_t type = archive_entry_filetype(e);
	const char *bad = NULL;
	if (!path || !*path) {
		sb_adds(why, "a member without a name");
		return EX_IOERR_;
	}
	sb_add_escaped(why, path, 200);
	if (archive_entry_hardlink(e))
		bad = "a hard link";
	else if (archive_entry_symlink(e) || type == AE_IFLNK)
		bad = "a symbolic link";
	else if (type != AE_IFREG && type != AE_IFDIR)
		bad = "not a regular file or directory";
	else if (path[0] == '/')
		bad = "an absolute path";
	else if (strlen(path) > idlen + 1 + PATH_LIMIT)
		bad = "a path too long";
	else if (strncmp(path, id, idlen) ||
		 (path[idlen] != '/' && path[idlen] != '\0'))
		bad = "not below the batch's directory";
	int depth = 0;
	for (const char *p = path; !bad && *p; depth++) {
		size_t n = strcspn(p, "/");
		if ((n == 0 && p[n]) || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			bad = "a \".\", \"..\" or empty part";
		else if (n > 255)
			bad = "a name too long";
		p += n;
		if (*p)
			p++;
	}
	if (!bad && type == AE_IFREG &&
	    (path[idlen] == '\0' || path[idlen + 1] == '\0'))
		bad = "a file in place of the batch's directory";
	if (bad) {
		sb_addf(why, ": %s: refused, it would write outside the "
			     "batch directory", bad);
		return EX_INVALID_JOB;
	}
	if (archive_entry_sparse_count(e) > 0 || depth > MAX_DEPTH + 1) {
		sb_adds(why, depth > MAX_DEPTH + 1 ? ": nested too deep"
						   : ": a sparse member");
		return EX_IOERR_;
	}
	return 0;
}

struct manifest {
	struct sb line;
	uint64_t files, agg;
	bool seen, bad;
};

static void manifest_line(struct manifest *m, const char *s, size_t n)
{
	struct sb path = SB_INIT;
	char *end;
	if (n < 12 || s[8] != ' ') {
		m->bad = true;
		return;
	}
	for (int i = 0; i < 8; i++)
		if (hexval(s[i]) < 0)
			m->bad = true;
	uint32_t crc = (uint32_t)strtoul(s, NULL, 16);
	errno = 0;
	unsigned long long size = strtoull(s + 9, &end, 10);
	if (m->bad || errno || end == s + 9 || *end != ' ') {
		m->bad = true;
		return;
	}
	for (const char *p = end + 1; p < s + n; p++) {
		if (*p != '%') {
			sb_addc(&path, *p);
			continue;
		}
		if (p + 2 >= s + n || hexval(p[1]) < 0 || hexval(p[2]) < 0 ||
		    (hexval(p[1]) == 0 && hexval(p[2]) == 0)) {
			m->bad = true;
			break;
		}
		sb_addc(&path, (char)(hexval(p[1]) * 16 + hexval(p[2])));
		p += 2;
	}
	if (!path.len)
		m->bad = true;
	if (!m->bad) {
		m->agg += member_hash(path.buf, size, crc);
		m->files++;
	}
	sb_release(&path);
}

static void manifest_feed(struct manifest *m, const char *buf, size_t n)
{
	for (size_t i = 0; i < n && !m->bad; i++) {
		if (buf[i] != '\n') {
			if (m->line.len >= MANIFEST_LINE_MAX)
				m->bad = true;
			sb_addc(&m->line, buf[i]);
			continue;
		}
		manifest_line(m, m->line.buf ? m->line.buf : "", m->line.len);
		sb_reset(&m->line);
	}
}

/*
 * What a restore may write: no more than the index says the batch's files
 * held when it was archived (an archive of 1 MiB may unpack to 1 GiB), and
 * never more than the free space of batches/.
 */
struct restore_bound {
	uint64_t index;		/* 0: the index does not say */
	uint64_t space;		/* free bytes of batches/ at the start */
};

/* One more member of size bytes: 0, or 65 (printed), nothing written. */
static int within_bound(const struct restore_bound *b, const char *file,
			const char *path, la_int64_t size, uint64_t *written)
{
	struct sb name = SB_INIT;
	int status = 0;
	uint64_t want = *written + (size > 0 ? (uint64_t)size : 0);
	if (size < 0 || (b->index && want > b->index) || want > b->space) {
		sb_add_escaped(&name, path, 200);
		if (b->index && want > b->index)
			error("batches/archive/%s: %s: %lld bytes, past the %llu "
			      "the archive index says the batch holds; not "
			      "restored", file, name.buf, (long long)size,
			      (unsigned long long)b->index);
		else
			error("batches/archive/%s: %s: %lld bytes, past the free "
			      "space of batches/ (%llu); not restored", file,
			      name.buf, (long long)size,
			      (unsigned long long)b->space);
		status = EX_INVALID_JOB;
	}
	sb_release(&name);
	*written = want;
	return status;
}

/*
 * Extract archive afd into the directory tfd (private, fresh), checking
 * every entry first and every file against the manifest.  Returns an
 * exit status, printed.  libarchive extracts relative to the working
 * directory, so this fchdir()s into tfd and back: not for threads.
 */
static int extract(int afd, int tfd, const char *id, const char *file,
		   const struct restore_bound *bound)
{
	size_t idlen = strlen(id);
	uint64_t written = 0;
	struct archive *a = NULL, *w = NULL;
	struct archive_entry *e;
	struct manifest m = { SB_INIT, 0, 0, false, false };
	struct sb why = SB_INIT;
	uint64_t files = 0, agg = 0;
	int status = EX_IOERR_, r;
	int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cwd < 0) {
		error("restore: the working directory: %s", strerror(errno));
		return EX_IOERR_;
	}
	if (fchdir(tfd) < 0) {
		error("restore: %s", strerror(errno));
		close(cwd);
		return EX_IOERR_;
	}
	char opened[WHY_MAX];
	if (!(a = reader_open(afd, opened))) {
		error("batches/archive/%s: %s", file, opened);
		goto out;
	}
	w = archive_write_disk_new();
	if (!w)
		die(EX_INTERNAL, "out of memory");
	/* No OWNER, PERM, ACL, XATTR or FFLAGS: plain files of ours. */
	archive_write_disk_set_options(
		w, ARCHIVE_EXTRACT_SECURE_NODOTDOT |
			   ARCHIVE_EXTRACT_SECURE_SYMLINKS |
			   ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS |
			   ARCHIVE_EXTRACT_NO_OVERWRITE | ARCHIVE_EXTRACT_TIME);
	while ((r = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		if (r != ARCHIVE_OK) {
			error("batches/archive/%s: %s", file, aerr(a));
			goto out;
		}
		sb_reset(&why);
		if ((status = check_entry(e, id, idlen, &why)) != 0) {
			error("batches/archive/%s: %s", file, why.buf);
			goto out;
		}
		status = EX_IOERR_;
		if (m.seen) {
			error("batches/archive/%s: members after the manifest",
			      file);
			goto out;
		}
		const char *path = archive_entry_pathname(e);
		const char *rel = path[idlen] ? path + idlen + 1 : "";
		bool reg = archive_entry_filetype(e) == AE_IFREG;
		const void *buf;
		size_t size;
		la_int64_t off, next = 0;
		if (reg && !strcmp(rel, MANIFEST)) {
			while ((r = archive_read_data_block(a, &buf, &size,
							    &off)) ==
			       ARCHIVE_OK)
				manifest_feed(&m, buf, size);
			if (r != ARCHIVE_EOF) {
				error("batches/archive/%s: %s", file, aerr(a));
				goto out;
			}
			m.seen = true;
			continue;
		}
		if (reg && (status = within_bound(bound, file, path,
						  archive_entry_size(e),
						  &written)) != 0)
			goto out;
		status = EX_IOERR_;
		archive_entry_set_perm(e, reg ? 0644 : 0755);
		archive_entry_xattr_clear(e);
		archive_entry_acl_clear(e);
		if (archive_write_header(w, e) != ARCHIVE_OK) {
			error("batches/archive/%s: %s: %s", file, path,
			      aerr(w));
			goto out;
		}
		if (reg) {
			uint32_t crc = (uint32_t)crc32(0L, Z_NULL, 0);
			while ((r = archive_read_data_block(a, &buf, &size,
							    &off)) ==
			       ARCHIVE_OK) {
				if (off != next) {
					error("batches/archive/%s: %s: a "
					      "sparse member", file, path);
					goto out;
				}
				crc = (uint32_t)crc32(crc, buf, (uInt)size);
				next += (la_int64_t)size;
				if (archive_write_data_block(w, buf, size,
							     off) < 0) {
					error("batches/archive/%s: %s: %s",
					      file, path, aerr(w));
					goto out;
				}
			}
			if (r != ARCHIVE_EOF) {
				error("batches/archive/%s: %s", file, aerr(a));
				goto out;
			}
			if (next != archive_entry_size(e)) {
				error("batches/archive/%s: %s: truncated",
				      file, path);
				goto out;
			}
			agg += member_hash(rel, (uint64_t)next, crc);
			files++;
		}
		if (archive_write_finish_entry(w) != ARCHIVE_OK) {
			error("batches/archive/%s: %s: %s", file, path,
			      aerr(w));
			goto out;
		}
	}
	if (archive_write_close(w) != ARCHIVE_OK) {
		error("batches/archive/%s: %s", file, aerr(w));
		goto out;
	}
	if (!m.seen || m.bad || m.line.len) {
		error("batches/archive/%s: %s manifest", file,
		      m.seen ? "a damaged" : "no");
		goto out;
	}
	if (m.files != files) {
		error("batches/archive/%s: %llu %s, the manifest lists %llu",
		      file, (unsigned long long)files,
		      plural(files, "file", "files"),
		      (unsigned long long)m.files);
		goto out;
	}
	if (m.agg != agg) {
		error("batches/archive/%s: damaged: a file's size or checksum "
		      "differs from the manifest", file);
		goto out;
	}
	status = 0;
out:
	if (w)
		archive_write_free(w);
	if (a)
		archive_read_free(a);
	if (fchdir(cwd) < 0)
		die(EX_INTERNAL, "restore: back to the working directory: %s",
		    strerror(errno));
	close(cwd);
	sb_release(&m.line);
	sb_release(&why);
	return status;
}

/* fsync every file and directory below dirfd/name (ours, no symlinks). */
static int fsync_tree(int dirfd, const char *name)
{
	struct stat st;
	int fd = openat(dirfd, name,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC), rc = 0;
	if (fd < 0 || fstat(fd, &st) < 0)
		goto fail;
	if (S_ISDIR(st.st_mode)) {
		size_t n;
		char **names = home_names(fd, &n);
		if (!names)
			goto fail;
		for (size_t k = 0; k < n && rc == 0; k++)
			rc = fsync_tree(fd, names[k]);
		words_free(names);
	}
	if (rc == 0 && fsync(fd) < 0)
		goto fail;
	close(fd);
	return rc;
fail:;
	int saved = errno;
	if (fd >= 0)
		close(fd);
	errno = saved;
	return -1;
}

/* batches/.restore-X/<id>/<id>.log to logs/<id>.log. */
static int put_log_back(struct home *h, int tfd, const char *id)
{
	char from[2 * ID_MAX + 8], log[ID_MAX + 8];
	struct stat st;
	snprintf(from, sizeof(from), "%s/%s.log", id, id);
	snprintf(log, sizeof(log), "%s.log", id);
	if (fstatat(tfd, from, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL; /* a directory of that name: not our archive */
		return -1;
	}
	if (!has_own_log(id))
		return unlinkat(tfd, from, 0);
	if (renameat(tfd, from, h->logs, log) < 0) {
		if (errno != EXDEV)
			return -1;
		/* logs/ on another file system: copy, then drop ours. */
		struct atomic_file af;
		char buf[BUF_SIZE];
		ssize_t n;
		int fd = openat(tfd, from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || atomic_begin(&af, h->logs, log) < 0) {
			int saved = errno;
			if (fd >= 0)
				close(fd);
			errno = saved;
			return -1;
		}
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			if (fwrite(buf, 1, (size_t)n, af.fp) != (size_t)n)
				break;
		close(fd);
		if (n != 0) {
			atomic_abort(&af);
			errno = errno ? errno : EIO;
			return -1;
		}
		if (atomic_commit(&af) < 0 || unlinkat(tfd, from, 0) < 0)
			return -1;
	}
	return fsync_dir(h->logs);
}

/*
 * The journal of a batch about to be restored, checked as a new job is:
 * a symbol, id or agent no job may give (b.forged), or the journal of
 * another batch, refuses it (65) before anything is placed; so does a
 * journal that cannot be replayed (74).  An archive is a file anyone who
 * can write to the home can make.
 */
static int restored_journal_ok(int tfd, const char *id, const char *file)
{
	struct batch b;
	int status = 0;
	int dfd = open_dir_at(tfd, id);
	if (dfd < 0) {
		error("batches/archive/%s: %s: %s", file, id, strerror(errno));
		return EX_IOERR_;
	}
	if (batch_replay_dir(dfd, &b) < 0) {
		if (b.forged[0]) {
			error("batch %s: journal: %s; not restored", id,
			      b.forged);
			status = EX_INVALID_JOB;
		} else {
			error("batches/archive/%s: %s/journal: %s", file, id,
			      b.claimed || errno != EINVAL ? strerror(errno)
							   : "no claim record");
			status = EX_IOERR_;
		}
	} else if (strcmp(b.c.id, id)) {
		error("batch %s: journal: it is the journal of batch %s; not "
		      "restored", id, b.c.id);
		status = EX_INVALID_JOB;
	}
	batch_release(&b);
	close(dfd);
	return status;
}

/* What the index says archive file's batch held, 0: it does not say. */
static uint64_t restore_index_bytes(int adir, const char *file)
{
	struct index ix = { 0 };
	uint64_t n = 0;
	if (index_load(adir, &ix) == 0)
		for (size_t i = 0; i < ix.n; i++)
			if (!strcmp(ix.v[i].ai.file, file))
				n = ix.v[i].ai.unpacked;
	index_release(&ix);
	return n;
}

int archive_restore(struct home *h, const char *id)
{
	char file[96], aside[128], tmp[ID_MAX + 32], jpath[ID_MAX + 16];
	struct stat st;
	int adir, lockfd = -1, afd = -1, tfd = -1, status = EX_IOERR_;
	bool made_tmp = false;

	if (!valid_batch_id(id)) {
		error("%s: not a batch id", id);
		return EX_NO_SUCH;
	}
	if ((adir = open_archive_dir(h, false)) < 0) {
		if (errno == ENOENT) {
			error("no archived batch %s", id);
			return EX_NO_SUCH;
		}
		error("batches/archive: %s", strerror(errno));
		return EX_IOERR_;
	}
	if ((lockfd = take_archive_lock(adir)) < 0) {
		if (errno == EWOULDBLOCK) {
			error("batches/archive: another archive or restore is "
			      "running");
			status = EX_TEMPFAIL_;
		} else {
			error("batches/archive/%s: %s", LOCK_NAME,
			      strerror(errno));
		}
		goto out;
	}
	struct run r = { .h = h, .adir = adir, .now = now_ms() };
	recover(&r);
	if (!any_archive(adir, id, file, sizeof(file))) {
		error("no archived batch %s", id);
		status = EX_NO_SUCH;
		goto out;
	}
	if (fstatat(h->batches, id, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		error("restore %s: batches/%s exists", id, id);
		status = EX_CANTCREAT_;
		goto out;
	}
	if ((afd = open_archive_file(adir, file, &st)) < 0) {
		error("batches/archive/%s: %s", file, strerror(errno));
		goto out;
	}
	snprintf(tmp, sizeof(tmp), RESTORE_TMP "%s-%08x", id,
		 (unsigned)random_u64());
	if (mkdirat(h->batches, tmp, 0700) < 0 ||
	    (made_tmp = true, tfd = open_dir_at(h->batches, tmp)) < 0) {
		error("batches/%s: %s", tmp, strerror(errno));
		status = EX_CANTCREAT_;
		goto out;
	}
	struct restore_bound bound = { restore_index_bytes(adir, file),
				       UINT64_MAX };
	struct statvfs vfs;
	if (fstatvfs(h->batches, &vfs) == 0)
		bound.space = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if ((status = extract(afd, tfd, id, file, &bound)) != 0)
		goto out;
	status = EX_IOERR_;
	snprintf(jpath, sizeof(jpath), "%s/journal", id);
	if (!is_dir_at(tfd, id) ||
	    fstatat(tfd, jpath, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode)) {
		error("batches/archive/%s: holds no batch (no %s)", file,
		      jpath);
		goto out;
	}
	if ((status = restored_journal_ok(tfd, id, file)) != 0)
		goto out;
	status = EX_IOERR_;
	if (put_log_back(h, tfd, id) < 0) {
		if (errno == EINVAL)
			error("batches/archive/%s: %s/%s.log: not a regular "
			      "file", file, id, id);
		else
			error("logs/%s.log: %s", id, strerror(errno));
		goto out;
	}
	if (fsync_tree(tfd, id) < 0 || fsync_dir(tfd) < 0) {
		error("batches/%s: fsync: %s", tmp, strerror(errno));
		goto out;
	}
	/* The commit: the archive aside, then the batch into place.  A crash
	 * between the two is undone by recover_restoring(). */
	snprintf(aside, sizeof(aside), RESTORING "%s", file);
	if (rename_noreplace(adir, file, adir, aside) < 0 ||
	    fsync_dir(adir) < 0) {
		error("batches/archive/%s: %s", file, strerror(errno));
		goto out;
	}
	if (rename_noreplace(tfd, id, h->batches, id) < 0) {
		int saved = errno;
		if (renameat(adir, aside, adir, file) == 0)
			fsync_dir(adir);
		error("batches/%s: %s", id, strerror(saved));
		status = saved == EEXIST ? EX_CANTCREAT_ : EX_IOERR_;
		goto out;
	}
	if (fsync_dir(h->batches) < 0) {
		/* The batch is there but maybe not durably: keep the archive
		 * (aside) for recover_restoring() to decide. */
		error("batches: fsync: %s", strerror(errno));
		goto out;
	}
	if (unlinkat(adir, aside, 0) < 0 || fsync_dir(adir) < 0)
		warning("batches/archive/%s: %s", aside, strerror(errno));
	index_fix(adir);
	status = 0;
out:
	if (tfd >= 0)
		close(tfd);
	if (made_tmp && remove_tree(h->batches, tmp) == 0)
		fsync_dir(h->batches);
	if (afd >= 0)
		close(afd);
	if (lockfd >= 0)
		close(lockfd);
	close(adir);
	return status;
}

/* ---- the index for stats ---- */

int archive_index_docs(struct home *h,
		       void (*fn)(void *arg, const cJSON *doc), void *arg)
{
	struct index ix = { 0 };
	int rc = index_read(h, &ix);
	for (size_t i = 0; rc == 0 && i < ix.n; i++) {
		cJSON *o = entry_json(&ix.v[i]);
		fn(arg, o);
		cJSON_Delete(o);
	}
	index_release(&ix);
	return rc;
}
