/*
 * archive: retention (src/archive.h).  Real batches are made by running
 * ./runner (or $RUNNER) on a scratch home; archives are checked with the
 * module's own reader and with tar(1); crash states are made by hand;
 * hostile archives are hand-written ustar (optionally gzipped), so that
 * nothing in them was sanitised by a tar writer.
 *
 * libarchive's <archive.h> is not included here: -Isrc would find ours.
 */
#include "archive.h"
#include "conf.h"
#include "home.h"
#include "spool.h"
#include "scratch.h"
#include "tap.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define DAY 86400000LL

static const char *T;
static char H[300], runner[1024], agent[1024];

static struct home h = HOME_INIT;

/* ---- helpers ---- */

static int __attribute__((format(printf, 1, 2))) sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static bool __attribute__((format(printf, 1, 2))) exists(const char *fmt, ...)
{
	char path[1024];
	struct stat st;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	return lstat(path, &st) == 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	if (!fp) {
		printf("Bail out! %s: %s\n", path, strerror(errno));
		exit(255);
	}
	fputs(text, fp);
	fclose(fp);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	struct sb sb = SB_INIT;
	char buf[4096];
	size_t n;
	if (!fp)
		return NULL;
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		sb_add(&sb, buf, n);
	fclose(fp);
	sb_addc(&sb, '\0');
	*len = sb.len - 1;
	return sb.buf;
}

/* A final batch ID with items OK and EXIT-65 (failed, not retried). */
static bool make_batch(const char *id)
{
	char path[512], text[256];
	snprintf(path, sizeof(path), "%s/spool/%s.job", H, id);
	snprintf(text, sizeof(text),
		 "[job]\nid = %s\nagent = fake\nsymbols = OK-1-%s EXIT-65-%s\n",
		 id, id, id);
	write_file(path, text);
	sh("'%s' -C '%s' run >/dev/null 2>&1", runner, H);
	return exists("%s/batches/%s/summary.json", H, id);
}

/* A copy of batches/ID and logs/ID.log in T/snap/. */
static void snapshot(const char *id)
{
	sh("mkdir -p '%s/snap' && rm -rf '%s/snap/%s' && "
	   "cp -a '%s/batches/%s' '%s/snap/%s' && rm -f '%s/snap/%s/lock' && "
	   "cp -a '%s/logs/%s.log' '%s/snap/%s.log'",
	   T, T, id, H, id, T, id, T, id, H, id, T, id);
}

static int nentries(const char *dir)
{
	return sh("exit $(ls -A '%s' | wc -l)", dir);
}

struct evrec {
	int action;
	bool dry;
	char id[80];
	char why[160];
};
static struct evrec evs[64];
static int nevs;

static void collect(void *arg, const struct archive_event *e)
{
	(void)arg;
	if (nevs >= 64)
		return;
	evs[nevs].action = e->action;
	evs[nevs].dry = e->dry_run;
	snprintf(evs[nevs].id, sizeof(evs[nevs].id), "%s", e->id);
	snprintf(evs[nevs].why, sizeof(evs[nevs].why), "%s",
		 e->why ? e->why : "");
	nevs++;
}

static int count_ev(int action, const char *id, bool dry)
{
	int n = 0;
	for (int i = 0; i < nevs; i++)
		n += evs[i].action == action && evs[i].dry == dry &&
		     (!id || !strcmp(evs[i].id, id));
	return n;
}

static int run(int64_t older, int64_t del, enum compression c, bool dry,
	       int64_t now)
{
	struct archive_opts o = { .older_than_ms = older,
				  .delete_after_ms = del,
				  .compression = c,
				  .dry_run = dry,
				  .now_ms = now };
	nevs = 0;
	return archive_run(&h, &o, collect, NULL);
}

struct listing {
	int n;
	char ids[32][80];
	char files[32][96];
};

static int list_fn(void *arg, const struct archive_info *ai)
{
	struct listing *l = arg;
	if (l->n < 32) {
		snprintf(l->ids[l->n], 80, "%s", ai->s.id);
		snprintf(l->files[l->n], 96, "%s", ai->file);
		l->n++;
	}
	return 0;
}

static bool listed(const char *id)
{
	struct listing l = { 0 };
	archive_list(&h, list_fn, &l);
	for (int i = 0; i < l.n; i++)
		if (!strcmp(l.ids[i], id))
			return true;
	return false;
}

static int nlisted(void)
{
	struct listing l = { 0 };
	archive_list(&h, list_fn, &l);
	return l.n;
}

/* ---- hand-made tar ---- */

struct tw {
	FILE *fp;
	gzFile gz;
};

static void tw_put(struct tw *t, const void *p, size_t n)
{
	if (t->gz)
		gzwrite(t->gz, p, (unsigned)n);
	else
		fwrite(p, 1, n, t->fp);
}

static void tw_open(struct tw *t, const char *path, bool gz)
{
	t->fp = NULL;
	t->gz = NULL;
	if (gz)
		t->gz = gzopen(path, "wb");
	else
		t->fp = fopen(path, "wb");
}

static void octal(unsigned char *field, size_t width, unsigned long v)
{
	/* width-1 digits and a NUL */
	for (size_t i = width - 1; i-- > 0; v >>= 3)
		field[i] = (unsigned char)('0' + (v & 7));
	field[width - 1] = '\0';
}

/* type: '0' file, '5' directory, '2' symlink, '1' hard link, '6' FIFO. */
static void tw_entry(struct tw *t, const char *name, char type,
		     const char *link, const char *data)
{
	unsigned char hd[512];
	size_t len = data ? strlen(data) : 0;
	unsigned sum = 0;
	memset(hd, 0, sizeof(hd));
	memcpy(hd, name, strlen(name) < 100 ? strlen(name) : 99);
	octal(hd + 100, 8, type == '5' ? 0755 : 0644);
	octal(hd + 108, 8, 0);
	octal(hd + 116, 8, 0);
	octal(hd + 124, 12, len);
	octal(hd + 136, 12, (unsigned long)time(NULL));
	memset(hd + 148, ' ', 8);
	hd[156] = (unsigned char)type;
	if (link)
		memcpy(hd + 157, link, strlen(link) < 100 ? strlen(link) : 99);
	memcpy(hd + 257, "ustar", 6);
	memcpy(hd + 263, "00", 2);
	for (size_t i = 0; i < sizeof(hd); i++)
		sum += hd[i];
	octal(hd + 148, 7, sum);
	hd[155] = ' ';
	tw_put(t, hd, sizeof(hd));
	if (len) {
		char pad[512] = { 0 };
		tw_put(t, data, len);
		tw_put(t, pad, (512 - len % 512) % 512);
	}
}

static void tw_close(struct tw *t)
{
	char end[1024] = { 0 };
	tw_put(t, end, sizeof(end));
	if (t->gz)
		gzclose(t->gz);
	else
		fclose(t->fp);
}

/* ---- setup ---- */

static void absolutize(char *path, size_t n)
{
	char cwd[512];
	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return;
	char *abs = xasprintf("%s/%s", cwd, path);
	snprintf(path, n, "%s", abs);
	free(abs);
}

static bool setup(void)
{
	const char *r = getenv("RUNNER"), *src = getenv("RUNNER_SRC");
	snprintf(runner, sizeof(runner), "%s", r && *r ? r : "./runner");
	snprintf(agent, sizeof(agent), "%s/tests/agents/fake",
		 src && *src ? src : ".");
	if (access(runner, X_OK) < 0 || access(agent, X_OK) < 0)
		return false;
	absolutize(runner, sizeof(runner));
	absolutize(agent, sizeof(agent));
	T = scratch_make("archive");
	snprintf(H, sizeof(H), "%s/home", T);
	sh("mkdir -p '%s/conf' '%s/spool' '%s/outside'", H, H, T);
	char conf[2048], path[512];
	snprintf(conf, sizeof(conf),
		 "[runner]\nmax_children = 4\n[retry]\nmax_attempts = 1\n"
		 "[agent fake]\ncommand = %s\nmax_concurrent = 4\n", agent);
	snprintf(path, sizeof(path), "%s/conf/runner.ini", H);
	write_file(path, conf);
	snprintf(path, sizeof(path), "%s/outside/target", T);
	write_file(path, "precious\n");
	return home_open(&h, H) == 0;
}

/* ---- tests ---- */

static void test_archive_formats(void)
{
	static const struct {
		const char *id, *file, *magic;
		size_t off, mlen;
		enum compression c;
	} f[] = {
		{ "g1", "g1.tar.gz", "\x1f\x8b", 0, 2, COMPRESS_GZIP },
		{ "z1", "z1.tar.zst", "\x28\xb5\x2f\xfd", 0, 4, COMPRESS_ZSTD },
		{ "n1", "n1.tar", "ustar", 257, 5, COMPRESS_NONE },
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		const char *id = f[i].id;
		char path[512];
		size_t len, slen;
		if (!ok(make_batch(id), "%s: a final batch", id))
			continue;
		snapshot(id);
		is_int(run(0, -1, f[i].c, false, 0), 0, "%s: archive_run", id);
		is_int(count_ev(ARCH_ARCHIVED, id, false), 1,
		       "%s: one archived event", id);
		snprintf(path, sizeof(path), "%s/batches/archive/%s", H,
			 f[i].file);
		char *a = slurp(path, &len);
		ok(a && len > f[i].off + f[i].mlen &&
			   !memcmp(a + f[i].off, f[i].magic, f[i].mlen),
		   "%s: %s written, with its format's magic", id, f[i].file);
		free(a);
		ok(!exists("%s/batches/%s", H, id), "%s: batch directory gone",
		   id);
		ok(!exists("%s/logs/%s.log", H, id), "%s: log gone", id);
		ok(archive_exists(&h, id), "%s: archive_exists", id);
		struct archive_info ai;
		ok(archive_find(&h, id, &ai) == 0 &&
			   ai.s.status == BS_PARTIAL &&
			   ai.s.total == 2 && !strcmp(ai.file, f[i].file) &&
			   ai.bytes > 0,
		   "%s: archive_find: summary from the index", id);
		ok(listed(id), "%s: archive_list has it", id);

		/* tar(1) agrees with what we stored. */
		is_int(sh("cd '%s' && rm -rf x && mkdir x && tar -xf "
			  "'%s' -C x 2>/dev/null && "
			  "diff -r --exclude=.manifest --exclude=%s.log x/%s "
			  "snap/%s >/dev/null && "
			  "cmp -s x/%s/%s.log snap/%s.log",
			  T, path, id, id, id, id, id, id),
		       0, "%s: tar(1) extracts the batch and its log intact",
		       id);

		struct sb sb = SB_INIT;
		snprintf(path, sizeof(path), "%s/snap/%s/batch.json", T, id);
		char *want = slurp(path, &slen);
		ok(archive_read_member(&h, id, "batch.json", 64 << 20, &sb) ==
				   0 &&
			   want && sb.len == slen &&
			   !memcmp(sb.buf, want, slen),
		   "%s: batch.json streamed out of the archive", id);
		free(want);
		sb_release(&sb);
	}
	is_int(nlisted(), 3, "three archives listed");
	is_int(sh("test $(grep -c . '%s/batches/archive/index.jsonl') = 3", H),
	       0, "index.jsonl: one line each");
}

static void test_members(void)
{
	struct sb sb = SB_INIT;
	char log[32];
	snprintf(log, sizeof(log), "g1.log");
	ok(archive_read_member(&h, "g1", log, 1 << 20, &sb) == 0 &&
		   strstr(sb.buf ? sb.buf : "", "g1"),
	   "the log is member <id>.log");
	sb_reset(&sb);
	errno = 0;
	ok(archive_read_member(&h, "g1", "nope", 1 << 20, &sb) < 0 &&
		   errno == ENOENT,
	   "a missing member: ENOENT");
	errno = 0;
	ok(archive_read_member(&h, "nope", "batch.json", 1 << 20, &sb) < 0 &&
		   errno == ENOENT,
	   "a missing archive: ENOENT");
	ok(archive_read_member(&h, "g1", "batch.json", 10, &sb) < 0 &&
		   errno == EFBIG,
	   "a member larger than max: EFBIG");
	sb_release(&sb);
	ok(!archive_exists(&h, "../g1") && !archive_exists(&h, "nope"),
	   "archive_exists: no for a bad or unknown id");

	struct batch b;
	ok(archive_load_batch(&h, "z1", &b) == 0 && b.c.id &&
		   !strcmp(b.c.id, "z1") && b.final && b.nitems == 2,
	   "archive_load_batch replays the archived journal");
	batch_release(&b);

	struct archive_info ai;
	ok(archive_find(&h, "g1", &ai) == 0, "archive_find g1");
	cJSON *o = archive_info_json(&ai);
	cJSON *arch = cJSON_GetObjectItem(o, "archive");
	ok(cJSON_IsTrue(cJSON_GetObjectItem(o, "archived")) &&
		   cJSON_IsString(arch) &&
		   !strcmp(arch->valuestring, "batches/archive/g1.tar.gz") &&
		   cJSON_IsString(cJSON_GetObjectItem(o, "completed_at")),
	   "archive_info_json");
	cJSON_Delete(o);
}

static void test_locked_and_dry(void)
{
	if (!ok(make_batch("L1"), "L1: a final batch"))
		return;
	int dirfd = open_dir_at(h.batches, "L1");
	int lock = batch_lock(dirfd);
	ok(lock >= 0, "L1 locked (as a live runner would)");
	is_int(run(0, -1, COMPRESS_GZIP, false, 0), 0, "archive_run");
	is_int(count_ev(ARCH_SKIPPED, "L1", false), 1, "L1 skipped");
	ok(exists("%s/batches/L1/journal", H) &&
		   !exists("%s/batches/archive/L1.tar.gz", H),
	   "L1 left alone");
	close(lock);
	close(dirfd);

	sh("cd '%s' && find . -exec stat -c '%%n %%s %%Y' {} + | sort "
	   ">'%s/before'", H, T);
	is_int(run(0, 0, COMPRESS_GZIP, true, 0), 0, "dry run");
	is_int(count_ev(ARCH_ARCHIVED, "L1", true), 1,
	       "dry run: L1 would be archived");
	is_int(count_ev(ARCH_DELETED, NULL, true), 3,
	       "dry run: three archives would be deleted");
	sh("cd '%s' && find . -exec stat -c '%%n %%s %%Y' {} + | sort "
	   ">'%s/after'", H, T);
	is_int(sh("cmp -s '%s/before' '%s/after'", T, T), 0,
	       "dry run changed nothing");
}

static void test_recovery(void)
{
	char path[512];
	/* L1 and S1 archived, then their directories and logs put back and
	 * the index lost: a crash between the archive's rename and the
	 * batch's.  S1 also changed since (a retry after the crash): its
	 * archive is stale. */
	ok(make_batch("S1"), "S1: a final batch");
	snapshot("L1");
	snapshot("S1");
	is_int(run(0, -1, COMPRESS_GZIP, false, 0), 0, "L1 and S1 archived");
	is_int(count_ev(ARCH_ARCHIVED, NULL, false), 2, "two archived");
	sh("cp -a '%s/snap/L1' '%s/batches/L1' && cp -a '%s/snap/L1.log' "
	   "'%s/logs/L1.log' && rm -f '%s/batches/archive/index.jsonl'",
	   T, H, T, H, H);
	sh("cp -a '%s/snap/S1' '%s/batches/S1' && cp -a '%s/snap/S1.log' "
	   "'%s/logs/S1.log' && echo ' ' >>'%s/batches/S1/batch.json'",
	   T, H, T, H, H);

	/* A temp archive, trash, a restore's scratch directory. */
	snprintf(path, sizeof(path),
		 "%s/batches/archive/.X1.tar.gz.0123456789abcdef.tmp", H);
	write_file(path, "half an archive");
	sh("mkdir -p '%s/batches/.trash-X1-0badcafe/items' "
	   "'%s/batches/.restore-X2-0badcafe/X2'", H, H);

	/* g1: a restore that renamed the archive aside and died. */
	sh("mv '%s/batches/archive/g1.tar.gz' "
	   "'%s/batches/archive/.restoring-g1.tar.gz'", H, H);
	/* A log of an archived batch (a crash after the trash rename), and
	 * one of no batch at all (not ours). */
	snprintf(path, sizeof(path), "%s/logs/z1.log", H);
	write_file(path, "stale\n");
	snprintf(path, sizeof(path), "%s/logs/Q9.log", H);
	write_file(path, "someone's\n");

	is_int(run(-1, -1, COMPRESS_GZIP, false, 0), 0, "recovery run");
	is_int(count_ev(ARCH_RECOVERED, "L1", false), 1, "L1 recovered");
	ok(!exists("%s/batches/L1", H) && !exists("%s/logs/L1.log", H) &&
		   exists("%s/batches/archive/L1.tar.gz", H),
	   "L1: the interrupted archive finished (directory and log gone)");
	ok(listed("L1") &&
		   sh("grep -q L1.tar.gz '%s/batches/archive/index.jsonl'",
		      H) == 0,
	   "L1: the rebuilt index has it");
	ok(exists("%s/batches/S1/journal", H) &&
		   !exists("%s/batches/archive/S1.tar.gz", H) && !listed("S1"),
	   "S1: batch kept, its stale archive no longer listed");
	is_int(sh("ls '%s/batches/archive/superseded/' | grep -q "
		  "'^S1\\.tar\\.gz\\.[0-9a-f]\\{8\\}$'", H),
	       0, "S1: the stale archive moved to superseded/");
	is_int(count_ev(ARCH_RECOVERED, "S1", false), 1, "S1 recovered");
	ok(!exists("%s/batches/archive/.X1.tar.gz.0123456789abcdef.tmp", H),
	   "temp archive removed");
	ok(!exists("%s/batches/.trash-X1-0badcafe", H) &&
		   !exists("%s/batches/.restore-X2-0badcafe", H),
	   "trash and restore scratch removed");
	ok(exists("%s/batches/archive/g1.tar.gz", H) &&
		   !exists("%s/batches/archive/.restoring-g1.tar.gz", H) &&
		   !exists("%s/batches/g1", H),
	   "g1: the interrupted restore undone");
	ok(!exists("%s/logs/z1.log", H), "the archived batch's log removed");
	ok(exists("%s/logs/Q9.log", H), "a log of no batch left alone");

	/* z1 restored, but the archive's removal did not happen. */
	sh("cp '%s/batches/archive/z1.tar.zst' '%s/z1.copy'", H, T);
	is_int(archive_restore(&h, "z1"), 0, "z1 restored");
	sh("cp '%s/z1.copy' '%s/batches/archive/.restoring-z1.tar.zst'", T, H);
	is_int(run(-1, -1, COMPRESS_GZIP, false, 0), 0, "recovery run");
	ok(exists("%s/batches/z1/journal", H) &&
		   !exists("%s/batches/archive/.restoring-z1.tar.zst", H) &&
		   !exists("%s/batches/archive/z1.tar.zst", H),
	   "z1: the interrupted restore finished");
	is_int(count_ev(ARCH_RECOVERED, "z1", false), 1, "z1 recovered");
}

static void test_restore(void)
{
	char cwd[512], cwd2[512];
	if (!getcwd(cwd, sizeof(cwd)))
		cwd[0] = '\0';
	is_int(archive_restore(&h, "n1"), 0, "restore n1");
	ok(getcwd(cwd2, sizeof(cwd2)) && !strcmp(cwd, cwd2),
	   "the working directory is as it was");
	is_int(sh("diff -r '%s/snap/n1' '%s/batches/n1' >/dev/null && "
		  "cmp -s '%s/snap/n1.log' '%s/logs/n1.log'", T, H, T, H),
	       0, "n1: byte-identical files and log");
	ok(!exists("%s/batches/archive/n1.tar", H) && !listed("n1") &&
		   sh("grep -q n1.tar '%s/batches/archive/index.jsonl'", H),
	   "n1: archive and index line gone");
	is_int(nentries(H), 5, "no scratch left in the home");
	is_int(sh("ls -A '%s/batches' | grep -q '^\\.' ", H), 1,
	       "no dot-directory left in batches/");
	is_int(sh("'%s' -C '%s' show n1 >/dev/null 2>&1", runner, H), 0,
	       "runner show n1 reads the restored batch");

	is_int(archive_restore(&h, "n1"), 66, "restore again: 66");
	is_int(archive_restore(&h, "nope"), 66, "unknown id: 66");
	is_int(archive_restore(&h, "../g1"), 66, "bad id: 66");
	sh("mkdir '%s/batches/g1'", H);
	is_int(archive_restore(&h, "g1"), 73, "batches/g1 exists: 73");
	ok(exists("%s/batches/archive/g1.tar.gz", H) &&
		   sh("test -z \"$(ls -A '%s/batches/g1')\"", H) == 0,
	   "g1: archive kept, the directory untouched");
	sh("rmdir '%s/batches/g1'", H);

	int adir = open_dir_at(h.batches, "archive");
	int lock = openat(adir, ".lock", O_RDWR | O_CLOEXEC);
	ok(lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) == 0,
	   "archive lock taken (another archive running)");
	is_int(archive_restore(&h, "g1"), 75, "restore with the lock held: 75");
	errno = 0;
	ok(run(0, -1, COMPRESS_GZIP, false, 0) < 0 && errno == EWOULDBLOCK,
	   "archive_run with the lock held: EWOULDBLOCK");
	close(lock);
	close(adir);

	/* Archive the restored n1 again, round trip once more. */
	snapshot("n1");
	is_int(run(0, -1, COMPRESS_ZSTD, false, 0), 0, "archive again");
	ok(exists("%s/batches/archive/n1.tar.zst", H), "n1 archived again");
	is_int(archive_restore(&h, "n1"), 0, "restore n1 again");
	is_int(sh("diff -r '%s/snap/n1' '%s/batches/n1' >/dev/null && "
		  "cmp -s '%s/snap/n1.log' '%s/logs/n1.log'", T, H, T, H),
	       0, "n1: byte-identical again");
}

static void test_delete(void)
{
	int64_t later = now_ms() + 91 * DAY;
	int n = nlisted();
	ok(n >= 2, "%d archives before deletion", n);
	is_int(run(-1, 90 * DAY, COMPRESS_GZIP, false, now_ms()), 0,
	       "delete_after 90d, now");
	is_int(count_ev(ARCH_DELETED, NULL, false), 0, "nothing deleted yet");
	is_int(run(-1, 90 * DAY, COMPRESS_GZIP, true, later), 0,
	       "91 days later, dry run");
	is_int(count_ev(ARCH_DELETED, NULL, true), n, "all would be deleted");
	is_int(nlisted(), n, "still there");
	is_int(run(-1, 90 * DAY, COMPRESS_GZIP, false, later), 0,
	       "91 days later");
	is_int(count_ev(ARCH_DELETED, NULL, false), n, "%d deleted", n);
	is_int(nlisted(), 0, "none listed");
	is_int(sh("ls '%s/batches/archive' | grep -q tar", H), 1,
	       "no archive file left");
	is_int(sh("test -s '%s/batches/archive/index.jsonl'", H), 1,
	       "index empty");

	struct archive_opts o;
	struct conf *c = conf_default();
	archive_opts_from_conf(&o, c);
	ok(o.older_than_ms == 7 * DAY && o.delete_after_ms == 90 * DAY &&
		   o.compression == COMPRESS_GZIP && !o.dry_run,
	   "archive_opts_from_conf: the SPEC defaults");
	c->delete_archives_after_ms = 0;
	archive_opts_from_conf(&o, c);
	is_int(o.delete_after_ms, -1, "delete_archives_after = 0: never");
	conf_free(c);
}

/* A hostile archive ID (hand-made tar, maybe gzipped) is refused with
 * want, nothing lands outside and nothing new stays in batches/. */
static void hostile(const char *id, bool gz, int want, const char *desc,
		    void (*build)(struct tw *t, const char *id))
{
	char path[512];
	struct tw t;
	snprintf(path, sizeof(path), "%s/batches/archive/%s.tar%s", H, id,
		 gz ? ".gz" : "");
	tw_open(&t, path, gz);
	build(&t, id);
	tw_close(&t);
	int nb = sh("exit $(ls -A '%s/batches' | wc -l)", H);
	is_int(archive_restore(&h, id), want, "%s: refused (%d)", desc, want);
	is_int(sh("exit $(ls -A '%s/batches' | wc -l)", H), nb,
	       "%s: no new entry in batches/", desc);
	ok(!exists("%s/batches/%s", H, id), "%s: no batch directory", desc);
	is_int(sh("test \"$(ls -A '%s/outside')\" = target && "
		  "test \"$(cat '%s/outside/target')\" = precious && "
		  "test $(stat -c %%h '%s/outside/target') = 1",
		  T, T, T),
	       0, "%s: nothing written outside", desc);
	ok(exists("%s", path), "%s: the archive is kept", desc);
}

static void b_absolute(struct tw *t, const char *id)
{
	char name[512], dir[128];
	snprintf(dir, sizeof(dir), "%s/", id);
	tw_entry(t, dir, '5', NULL, NULL);
	snprintf(name, sizeof(name), "%s/outside/abs", T);
	tw_entry(t, name, '0', NULL, "evil\n");
	snprintf(name, sizeof(name), "/tmp/runner-archive-evil-%d",
		 (int)getpid());
	tw_entry(t, name, '0', NULL, "evil\n");
}

static void b_dotdot(struct tw *t, const char *id)
{
	char name[512];
	snprintf(name, sizeof(name), "%s/journal", id);
	tw_entry(t, name, '0', NULL, "fine\n");
	snprintf(name, sizeof(name), "%s/../../../../outside/dotdot", id);
	tw_entry(t, name, '0', NULL, "evil\n");
}

static void b_symlink(struct tw *t, const char *id)
{
	char name[512], target[512];
	snprintf(name, sizeof(name), "%s/link", id);
	snprintf(target, sizeof(target), "%s/outside", T);
	tw_entry(t, name, '2', target, NULL);
	snprintf(name, sizeof(name), "%s/link/evil", id);
	tw_entry(t, name, '0', NULL, "evil\n");
}

static void b_relsymlink(struct tw *t, const char *id)
{
	char name[512];
	snprintf(name, sizeof(name), "%s/up", id);
	tw_entry(t, name, '2', "../../../../outside", NULL);
	snprintf(name, sizeof(name), "%s/up/evil", id);
	tw_entry(t, name, '0', NULL, "evil\n");
}

static void b_hardlink(struct tw *t, const char *id)
{
	char name[512], target[512];
	snprintf(name, sizeof(name), "%s/hl", id);
	snprintf(target, sizeof(target), "%s/outside/target", T);
	tw_entry(t, name, '1', target, NULL);
	/* Writing through the link would change the target. */
	tw_entry(t, name, '0', NULL, "evil\n");
}

static void b_elsewhere(struct tw *t, const char *id)
{
	(void)id;
	tw_entry(t, "other/journal", '0', NULL, "evil\n");
}

static void b_fifo(struct tw *t, const char *id)
{
	char name[512];
	snprintf(name, sizeof(name), "%s/fifo", id);
	tw_entry(t, name, '6', NULL, NULL);
}

static void b_no_manifest(struct tw *t, const char *id)
{
	char name[512];
	snprintf(name, sizeof(name), "%s/journal", id);
	tw_entry(t, name, '0', NULL, "not really a journal\n");
}

static void b_bad_manifest(struct tw *t, const char *id)
{
	char name[512];
	snprintf(name, sizeof(name), "%s/journal", id);
	tw_entry(t, name, '0', NULL, "not really a journal\n");
	snprintf(name, sizeof(name), "%s/.manifest", id);
	tw_entry(t, name, '0', NULL, "00000000 21 journal\n");
}

static void b_deep(struct tw *t, const char *id)
{
	char name[100];
	int n = snprintf(name, sizeof(name), "%s", id);
	for (int i = 0; i < 20; i++)
		n += snprintf(name + n, sizeof(name) - (size_t)n, "/d");
	tw_entry(t, name, '0', NULL, "deep\n");
}

/* Well-formed, manifest and all, but its log member is a directory. */
static void b_log_dir(struct tw *t, const char *id)
{
	char name[512], line[128];
	const char *data = "x\n";
	snprintf(name, sizeof(name), "%s/journal", id);
	tw_entry(t, name, '0', NULL, data);
	snprintf(name, sizeof(name), "%s/%s.log/", id, id);
	tw_entry(t, name, '5', NULL, NULL);
	snprintf(line, sizeof(line), "%08lx 2 journal\n",
		 crc32(crc32(0L, Z_NULL, 0), (const Bytef *)data, 2));
	snprintf(name, sizeof(name), "%s/.manifest", id);
	tw_entry(t, name, '0', NULL, line);
}

static void test_hostile(void)
{
	hostile("evil1", false, 65, "absolute paths", b_absolute);
	ok(!exists("/tmp/runner-archive-evil-%d", (int)getpid()),
	   "absolute paths: /tmp/runner-archive-evil-PID does not exist");
	hostile("evil2", false, 65, "../", b_dotdot);
	hostile("evil3", false, 65, "symlink then a file through it",
		b_symlink);
	hostile("evil4", true, 65, "relative symlink (gzip)", b_relsymlink);
	hostile("evil5", false, 65, "hard link to a file outside", b_hardlink);
	hostile("evil6", false, 65, "a member outside <id>/", b_elsewhere);
	hostile("evil7", true, 65, "a FIFO", b_fifo);
	hostile("evil8", false, 74, "no manifest", b_no_manifest);
	hostile("evil9", false, 74, "a manifest that does not match",
		b_bad_manifest);
	hostile("evilA", true, 65, "../ (gzip)", b_dotdot);
	hostile("evilB", false, 74, "nested 21 deep", b_deep);
	hostile("evilC", false, 74, "the log member a directory", b_log_dir);
	ok(!exists("%s/logs/evilC.log", H), "the log member a directory: "
	   "nothing in logs/");

	/* A real archive with one flipped byte in a member's data. */
	char path[512];
	size_t len;
	if (!ok(make_batch("C1"), "C1: a final batch"))
		return;
	run(0, -1, COMPRESS_NONE, false, 0);
	snprintf(path, sizeof(path), "%s/batches/archive/C1.tar", H);
	char *a = slurp(path, &len);
	char *p = a ? memmem(a, len, "agent = fake", 12) : NULL;
	if (p)
		p[0] ^= 0x20;
	FILE *fp = p ? fopen(path, "wb") : NULL;
	if (fp) {
		fwrite(a, 1, len, fp);
		fclose(fp);
	}
	free(a);
	ok(p != NULL, "C1.tar: a byte of job.ini flipped");
	int nb = sh("exit $(ls -A '%s/batches' | wc -l)", H);
	is_int(archive_restore(&h, "C1"), 74, "corrupt member: 74");
	ok(!exists("%s/batches/C1", H) &&
		   sh("exit $(ls -A '%s/batches' | wc -l)", H) == nb &&
		   exists("%s", path),
	   "corrupt member: nothing restored, archive kept");
	/* Truncated: gzip of a real archive cut in half. */
	if (ok(make_batch("C2"), "C2: a final batch")) {
		run(0, -1, COMPRESS_GZIP, false, 0);
		is_int(sh("f='%s/batches/archive/C2.tar.gz'; "
			  "head -c $(($(stat -c %%s \"$f\") / 2)) \"$f\" "
			  ">\"$f.x\" "
			  "&& mv \"$f.x\" \"$f\"", H),
		       0, "C2.tar.gz cut in half");
		is_int(archive_restore(&h, "C2"), 74, "truncated archive: 74");
		ok(!exists("%s/batches/C2", H), "truncated: nothing restored");
	}
}

/* ---- crash and I/O-error sweep ----
 *
 * The test binary runs itself as a child (--child archive|restore HOME
 * [ID]) under tests/faults/shim.so, which kills it at (or fails once) the
 * Nth write, fsync, rename, ... of the run.  Whatever it left, each batch
 * must be whole in batches/ or whole in an archive (check.sh), and after
 * a recovery run exactly one of the two, with its log where it belongs
 * and nothing half-done left (post.sh).
 */
static const char *self;
static char shim[1024];
/* An ASan build of this test runs too: let the shim come first. */
#define FAULT_ENV "ASAN_OPTIONS=verify_asan_link_order=0 "

static int child_main(int argc, char **argv)
{
	struct home hh = HOME_INIT;
	if (argc < 4 || home_open(&hh, argv[3]) < 0)
		return 74;
	if (!strcmp(argv[2], "archive")) {
		struct archive_opts o = { .older_than_ms = 0,
					  .delete_after_ms = -1,
					  .compression = COMPRESS_GZIP };
		return archive_run(&hh, &o, NULL, NULL) < 0 ? 74 : 0;
	}
	return argc > 4 ? archive_restore(&hh, argv[4]) : 64;
}

static const char check_sh[] =
	"# check.sh SNAP HOME: each batch whole in batches/ or in an archive\n"
	"S=$1 W=$2\n"
	"for id in c1 c2; do\n"
	"  if [ -d $W/batches/$id ]; then\n"
	"    diff -r --exclude=lock $S/$id $W/batches/$id >/dev/null ||\n"
	"      { echo \"$id: batch directory not whole\"; exit 1; }\n"
	"  else\n"
	"    f=$(ls $W/batches/archive/$id.tar* \\\n"
	"      $W/batches/archive/.restoring-$id.tar* 2>/dev/null |\n"
	"      head -1)\n"
	"    [ -n \"$f\" ] ||\n"
	"      { echo \"$id: neither batch nor archive\"; exit 1; }\n"
	"    rm -rf $S/x && mkdir $S/x && tar -xf $f -C $S/x 2>/dev/null &&\n"
	"    diff -r --exclude=.manifest --exclude=$id.log $S/$id $S/x/$id \\\n"
	"      >/dev/null && cmp -s $S/$id.log $S/x/$id/$id.log ||\n"
	"      { echo \"$id: archive not whole\"; exit 1; }\n"
	"  fi\n"
	"done\n";

static const char post_sh[] =
	"# post.sh SNAP HOME: after recovery one of the two, nothing left\n"
	"S=$1 W=$2\n"
	"for id in c1 c2; do\n"
	"  n=$(ls $W/batches/archive/ | grep -c \"^$id\\.tar\")\n"
	"  if [ -d $W/batches/$id ]; then\n"
	"    [ $n = 0 ] || { echo \"$id: batch and archive\"; exit 1; }\n"
	"    cmp -s $S/$id.log $W/logs/$id.log ||\n"
	"      { echo \"$id: log\"; exit 1; }\n"
	"  else\n"
	"    [ $n = 1 ] || { echo \"$id: $n archives\"; exit 1; }\n"
	"    [ ! -e $W/logs/$id.log ] || { echo \"$id: log left\"; exit 1; }\n"
	"    grep -q \"\\\"$id\\.tar\" $W/batches/archive/index.jsonl ||\n"
	"      { echo \"$id: not in the index\"; exit 1; }\n"
	"  fi\n"
	"done\n"
	"! ls -A $W/batches | grep -q '^\\.' ||\n"
	"  { echo 'dot entry in batches/'; exit 1; }\n"
	"! ls -A $W/batches/archive | grep -q '^\\.restoring\\|\\.tmp$' ||\n"
	"  { echo 'leftover in batches/archive/'; exit 1; }\n";

static int op_count(const char *base, const char *op, const char *child_args)
{
	char path[512];
	size_t len;
	snprintf(path, sizeof(path), "%s/crash/count", T);
	sh("rm -rf '%s/crash/w' && cp -a '%s' '%s/crash/w' && "
	   FAULT_ENV "FAULT_OP=%s FAULT_N=0 FAULT_COUNT='%s' "
	   "LD_PRELOAD='%s' '%s' "
	   "--child %s >/dev/null 2>&1",
	   T, base, T, op, path, shim, self, child_args);
	char *text = slurp(path, &len), *p;
	char key[32];
	snprintf(key, sizeof(key), "%s=", op);
	int n = text && (p = strstr(text, key)) ? atoi(p + strlen(key)) : -1;
	free(text);
	return n;
}

/* Fault every call of op in turn; 0 when every state passed. */
static void sweep(const char *what, const char *base, const char *op,
		  const char *mode, const char *child_args)
{
	char problem[512] = "";
	int n = op_count(base, op, child_args), bad = 0;
	for (int i = 1; i <= n && !bad; i++) {
		char w[512], out[512];
		size_t len;
		snprintf(w, sizeof(w), "%s/crash/w", T);
		snprintf(out, sizeof(out), "%s/crash/why", T);
		sh("rm -rf '%s' && cp -a '%s' '%s' && " FAULT_ENV
		   "FAULT_OP=%s FAULT_N=%d "
		   "FAULT_MODE=%s FAULT_ERRNO=EIO LD_PRELOAD='%s' '%s' "
		   "--child %s >/dev/null 2>&1",
		   w, base, w, op, i, mode, shim, self, child_args);
		if (sh("sh '%s/crash/check.sh' '%s/crash/snap' '%s' >'%s'", T,
		       T, w, out) == 0) {
			struct home hw = HOME_INIT;
			struct archive_opts o = { .older_than_ms = -1,
						  .delete_after_ms = -1 };
			if (home_open(&hw, w) == 0)
				archive_run(&hw, &o, NULL, NULL);
			home_release(&hw);
			if (sh("sh '%s/crash/post.sh' '%s/crash/snap' '%s' "
			       ">'%s'", T, T, w, out) == 0)
				continue;
		}
		char *why = slurp(out, &len);
		snprintf(problem, sizeof(problem), "%s %s %d: %s", op, mode, i,
			 why ? why : "?");
		free(why);
		bad = 1;
	}
	if (n < 0)
		ok(1, "# SKIP %s: the shim did not load (%s)", what, op);
	else if (n == 0)
		ok(1, "%s: no %s calls to fault", what, op);
	else
		ok(n > 0 && !bad, "%s: %s at each of %d %s calls leaves a "
		   "whole batch or archive%s%s", what, mode, n, op,
		   bad ? " -- " : "", problem);
}

static void test_crashes(void)
{
	static const char *const ops[] = { "write", "fsync", "fdatasync",
					   "rename", "openat-creat",
					   "mkdirat" };
	char base[300], base2[300], args[1024];
	const char *build = getenv("RUNNER_BUILD");
	snprintf(shim, sizeof(shim), "%s/faults/shim.so",
		 build && *build ? build : "build");
	absolutize(shim, sizeof(shim));
	if (access(shim, R_OK) < 0) {
		ok(1, "# SKIP no %s (make check builds it)", shim);
		return;
	}
	snprintf(base, sizeof(base), "%s/crash/base", T);
	snprintf(base2, sizeof(base2), "%s/crash/archived", T);
	sh("mkdir -p '%s/crash/snap' && cp -a '%s' '%s' && "
	   "rm -rf '%s/batches/'* '%s/logs/'*.log '%s/spool/'*",
	   T, H, base, base, base, base);
	char path[512];
	snprintf(path, sizeof(path), "%s/crash/check.sh", T);
	write_file(path, check_sh);
	snprintf(path, sizeof(path), "%s/crash/post.sh", T);
	write_file(path, post_sh);
	/* Two final batches in base; base2: the same, archived.  The
	 * helpers work on h and H: point them there for a while. */
	home_release(&h);
	snprintf(H, sizeof(H), "%s", base);
	bool made = home_open(&h, base) == 0 && make_batch("c1") &&
		    make_batch("c2");
	if (made)
		sh("for id in c1 c2; do "
		   "cp -a '%s/batches/'$id '%s/crash/snap/' "
		   "&& rm -f '%s/crash/snap/'$id/lock && cp '%s/logs/'$id.log "
		   "'%s/crash/snap/'; done && cp -a '%s' '%s'",
		   base, T, T, base, T, base, base2);
	home_release(&h);
	if (ok(made && home_open(&h, base2) == 0, "two final batches to crash "
	       "on")) {
		run(0, -1, COMPRESS_GZIP, false, 0);
		ok(!exists("%s/batches/c1", base2) &&
			   !exists("%s/batches/c2", base2),
		   "and the same, archived");
		snprintf(args, sizeof(args), "archive '%s/crash/w'", T);
		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			sweep("archive", base, ops[i], "crash", args);
		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			sweep("archive", base, ops[i], "once", args);
		snprintf(args, sizeof(args), "restore '%s/crash/w' c1", T);
		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			sweep("restore", base2, ops[i], "crash", args);
		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			sweep("restore", base2, ops[i], "once", args);
	}
	home_release(&h);
	snprintf(H, sizeof(H), "%s/home", T);
	if (home_open(&h, H) < 0)
		BUG("cannot reopen %s", H);
}

/* stderr to T/NAME (the module's messages), or back when name is NULL. */
static void capture_stderr(const char *name)
{
	static int saved = -1;
	char path[512];
	fflush(stderr);
	if (!name) {
		dup2(saved, 2);
		close(saved);
		saved = -1;
		return;
	}
	if (saved < 0)
		saved = dup(2);
	snprintf(path, sizeof(path), "%s/%s", T, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	dup2(fd, 2);
	close(fd);
}

int main(int argc, char **argv)
{
	if (argc > 2 && !strcmp(argv[1], "--child"))
		return child_main(argc, argv);
	self = argv[0];
	if (!setup()) {
		printf("1..0 # SKIP no runner binary or agent (set RUNNER and "
		       "RUNNER_SRC)\n");
		return 0;
	}
	capture_stderr("stderr");
	test_archive_formats();
	test_members();
	test_locked_and_dry();
	test_recovery();
	test_restore();
	test_delete();
	test_crashes();
	capture_stderr("stderr.hostile");
	test_hostile();
	capture_stderr(NULL);
	is_int(sh("grep -q '^runner: batches/archive/evil2.tar: "
		  "evil2/\\.\\./.*would write outside the batch directory' "
		  "'%s/stderr.hostile'", T),
	       0, "the refusal names the archive, the member and why");
	is_int(sh("test $(grep -vc '^runner: ' '%s/stderr.hostile') = 0", T),
	       0, "every message is one line starting 'runner: '");
	is_int(nentries(H), 5, "nothing new in the home");
	home_release(&h);
	if (!tap_failed) {
		scratch_remove();
	} else {
		diag("scratch kept: %s", T);
		sh("sed 's/^/# /' '%s/stderr' '%s/stderr.hostile'", T, T);
	}
	done_testing();
	return exit_status();
}
