/*
 * cmd_views: the commands that read batches: show, report, list, stats.
 */
#include "cli.h"
#include "archive.h"
#include "batch.h"
#include "conf.h"
#include "control.h"
#include "daemon.h"
#include "engine.h"
#include "history.h"
#include "home.h"
#include "job.h"
#include "meta.h"
#include "progress.h"
#include "report.h"
#include "shared.h"
#include "slots.h"
#include "symstats.h"
#include "spool.h"
#include "stats.h"
#include "util.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* A row of `list`: a batch, or an archived one (file set). */
struct listed {
	struct summary s;
	char *file;
	int64_t archived_ms;
	uint64_t bytes;
};

struct list_filter;
struct archived_list {
	const struct list_filter *f;
	struct listed *v;
	size_t n, cap;
};

static bool batch_json_current(int dirfd, const struct batch *b)
{
	struct stat js, bs;
	if (!b->final || fstatat(dirfd, "journal", &js, 0) < 0 ||
	    fstatat(dirfd, "batch.json", &bs, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(bs.st_mode))
		return false;
	return bs.st_mtim.tv_sec > js.st_mtim.tv_sec ||
	       (bs.st_mtim.tv_sec == js.st_mtim.tv_sec &&
		bs.st_mtim.tv_nsec >= js.st_mtim.tv_nsec);
}

/* A view read back is at most this big; a bigger one is rebuilt. */
#define VIEW_MAX_BYTES (64u << 20)

/* Read a view file (batch.json) of dirfd into text: 0, or -1 (errno). */
static int read_view(int dirfd, const char *name, struct sb *text)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = read_fd_bounded(fd, VIEW_MAX_BYTES, text);
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/*
 * Does batch.json's text say what the journal says?  It must parse, and
 * its id, status and counts must be the replayed batch's (the journal is
 * the truth; batch.json is derived from it).  NULL, or what is wrong.
 */
static const char *view_disagrees(const struct sb *text, const struct batch *b)
{
	if (!text->len)
		return "empty";
	cJSON *o = cJSON_ParseWithLength(text->buf, text->len);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return "it does not parse as JSON";
	}
	struct summary v, want;
	cJSON *doc = meta_summary_doc(b, now_ms());
	meta_summary_from_json(o, &v);
	meta_summary_from_json(doc, &want);
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(o, "items");
	bool same = !strcmp(v.id, want.id) && v.status == want.status &&
		    v.total == want.total && v.succeeded == want.succeeded &&
		    v.failed == want.failed && v.cancelled == want.cancelled &&
		    v.created_ms == want.created_ms && cJSON_IsArray(items) &&
		    (size_t)cJSON_GetArraySize(items) == b->nitems;
	cJSON_Delete(doc);
	cJSON_Delete(o);
	return same ? NULL : "its id, status or counts are not the journal's";
}

/*
 * show --json: the batch.json document.  A final batch's batch.json newer
 * than its journal is printed as it is (current, the common case) once
 * checked against the journal; any other case, or one that does not
 * check, is rebuilt from the journal (and a damaged one said).
 */
static int print_batch_json(const char *where, const struct sb *text,
			    bool current, const struct batch *b)
{
	const char *bad = current && text ? view_disagrees(text, b) : NULL;
	if (current && text && !bad && !b->damage[0]) {
		fwrite(text->buf, 1, text->len, stdout);
		return 0;
	}
	if (bad)
		error("%s/batch.json: damaged view (%s); rebuilt from the "
		      "journal", where, bad);
	return meta_write_json(stdout, b, now_ms(), view_shared());
}

/* show of a batch that lives in batches/archive/: read, never extracted. */
static int show_archived(const char *id, int flags)
{
	struct batch b;
	struct archive_info ai;
	int rc, dirfd;
	if ((rc = load_batch(id, &b, &dirfd))) {
		batch_release(&b);
		return rc;
	}
	if (g.json) {
		struct sb text = SB_INIT;
		char *where = xasprintf("batches/archive: %s", id);
		bool have = archive_read_member(&home_, id, "batch.json",
						VIEW_MAX_BYTES, &text) == 0;
		print_batch_json(where, have ? &text : NULL, have && b.final,
				 &b);
		free(where);
		sb_release(&text);
		rc = b.damage[0] ? EX_IOERR_ : 0;
		batch_release(&b);
		return fflush(stdout) == 0 ? rc : EX_IOERR_;
	}
	meta_print_summary(stdout, &b, now_ms(), flags, home_.path,
			   view_shared());
	if (archive_find(&home_, id, &ai) == 0) {
		char t[TIME_BUF];
		printf("  archived    %s in batches/archive/%s (%llu %s); "
		       "runner restore %s\n",
		       fmt_time(ai.archived_ms, t), ai.file,
		       (unsigned long long)ai.bytes,
		       plural(ai.bytes, "byte", "bytes"), id);
	}
	rc = b.damage[0] ? EX_IOERR_ : 0;
	batch_release(&b);
	return fflush(stdout) == 0 ? rc : EX_IOERR_;
}

int cmd_show(void)
{
	struct cmdopt o[] = { { "--help" }, { "--items" }, { "--failed" } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "show",
			   "usage: runner show BATCH [--items] [--failed] [--json]\n\n"
			   "One batch: status, counts, errors, throughput, slowest "
			   "items.\n--items lists every item, --failed the failed "
			   "ones; --json prints\nthe batch.json document (runner(1), FILES).");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	if (npos != 1) {
		free_cmd(o, NOPTS(o), pos);
		return usage_error("show: name one batch");
	}
	if ((rc = open_home())) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	if (valid_batch_id(pos[0]) && !batch_dir_exists(pos[0]) &&
	    archive_exists(&home_, pos[0])) {
		int flags = (o[1].seen ? SHOW_ITEMS : 0) |
			    (o[2].seen ? SHOW_FAILED : 0);
		rc = show_archived(pos[0], flags);
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	int dirfd;
	struct batch b;
	if ((rc = load_batch(pos[0], &b, &dirfd))) {
		batch_release(&b);
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	if (g.json) {
		struct sb text = SB_INIT;
		char *where = xasprintf("batches/%s", pos[0]);
		bool current = batch_json_current(dirfd, &b) &&
			       read_view(dirfd, "batch.json", &text) == 0;
		print_batch_json(where, &text, current, &b);
		free(where);
		sb_release(&text);
	} else {
		int flags = SHOW_PATHS | (o[1].seen ? SHOW_ITEMS : 0) |
			    (o[2].seen ? SHOW_FAILED : 0);
		meta_print_summary(stdout, &b, now_ms(), flags, home_.path,
				   view_shared());
	}
	/* A damaged journal was said (load_batch); what was shown is only
	 * the batch before the damage, so not a success. */
	rc = b.damage[0] ? EX_IOERR_ : 0;
	batch_release(&b);
	close(dirfd);
	free_cmd(o, NOPTS(o), pos);
	return fflush(stdout) == 0 ? rc : EX_IOERR_;
}

int cmd_report(void)
{
	struct cmdopt o[] = { { "--help" }, { "-o", true }, { "--output", true } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "report",
			   "usage: runner report BATCH [-o FILE]\n\n"
			   "One self-contained HTML page about the batch (inline CSS "
			   "and SVG, no script,\nno network): summary, a timeline of "
			   "every attempt on its slot, error\ncategories, failure "
			   "groups, the 20 slowest and the failed items.  Written\nto "
			   "standard output, or to FILE (replaced atomically).");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	if (g.json) {
		free_cmd(o, NOPTS(o), pos);
		return usage_error("--json is not supported by report");
	}
	const char *out = last_value(&o[2]) ? last_value(&o[2])
					    : last_value(&o[1]);
	int dirfd;
	struct batch b;
	if ((rc = load_one_batch(pos, npos, "report", &b, &dirfd))) {
		batch_release(&b);
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	if (dirfd >= 0)
		close(dirfd);
	FILE *fp = stdout;
	char *tmp = NULL;
	if (out && strcmp(out, "-")) {
		/* FILE.tmp-PID beside it, renamed over it when complete. */
		tmp = xasprintf("%s.tmp-%ld", out, (long)getpid());
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		fp = fd >= 0 ? fdopen(fd, "w") : NULL;
		if (!fp) {
			rc = EX_CANTCREAT_;
			error("%s: %s", out, strerror(errno));
			if (fd >= 0)
				close(fd), unlink(tmp);
		}
	}
	/* The batch before it, for the results' day-over-day part. */
	struct batch prev;
	bool have_prev = false;
	char prev_id[80];
	int pfd = -1;
	batch_init(&prev);
	if (!rc && previous_batch(&b.c, prev_id, sizeof(prev_id)) == 0) {
		batch_release(&prev);
		have_prev = load_batch(prev_id, &prev, &pfd) == 0;
		if (pfd >= 0)
			close(pfd);
	}
	if (!rc && report_write_since(fp, &b, have_prev ? &prev : NULL,
				      view_shared(), now_ms()) < 0) {
		rc = EX_IOERR_;
		error("%s: %s", out ? out : "stdout", strerror(errno));
	}
	if (tmp && fp) {
		if (fclose(fp) != 0 && !rc) {
			rc = EX_IOERR_;
			error("%s: %s", out, strerror(errno));
		}
		if (!rc && rename(tmp, out) < 0) {
			rc = EX_CANTCREAT_;
			error("%s: %s", out, strerror(errno));
		}
		if (rc)
			unlink(tmp);
	} else if (!rc && fflush(stdout) != 0) {
		rc = EX_IOERR_;
	}
	free(tmp);
	batch_release(&prev);
	batch_release(&b);
	free_cmd(o, NOPTS(o), pos);
	return rc;
}

/* What `list` keeps: its filters, and for --symbol the batches the
 * history index says held it. */
struct list_filter {
	int status;
	int64_t since, until;
	const char *agent, *name, *origin, *symbol;
	struct strmap held;	/* batch id -> 1 (keys in rows) */
	struct hist_row *rows;
	size_t nrows;
};

/* Does the (not final) batch in bfd hold symbol?  Its batch.json says
 * (list never replays a journal: that is show's and fsck's work). */
static bool batch_holds(int bfd, const char *symbol)
{
	struct sb text = SB_INIT;
	bool held = false;
	if (read_view(bfd, "batch.json", &text) == 0) {
		cJSON *o = cJSON_ParseWithLength(text.buf, text.len);
		const cJSON *it, *items =
			cJSON_GetObjectItemCaseSensitive(o, "items");
		cJSON_ArrayForEach(it, items) {
			const cJSON *sym =
				cJSON_GetObjectItemCaseSensitive(it, "symbol");
			if (cJSON_IsString(sym) &&
			    !strcmp(sym->valuestring, symbol)) {
				held = true;
				break;
			}
		}
		cJSON_Delete(o);
	}
	sb_release(&text);
	return held;
}

static bool list_keep(const struct list_filter *f, const struct summary *s,
		      int bfd)
{
	if ((f->status >= 0 && s->status != f->status) ||
	    s->created_ms < f->since || s->created_ms > f->until ||
	    (f->agent && strcmp(f->agent, s->agent)) ||
	    (f->name && strcmp(f->name, s->name)) ||
	    (f->origin && strcmp(f->origin, s->origin)))
		return false;
	if (!f->symbol || strmap_get(&f->held, s->id))
		return true;
	/* A batch still running is not in the index yet. */
	return bfd >= 0 && !status_final(s->status) && batch_holds(bfd, f->symbol);
}

static int collect_archived(void *arg, const struct archive_info *ai)
{
	struct archived_list *al = arg;
	const struct summary *s = &ai->s;
	if (!list_keep(al->f, s, -1))
		return 0;
	GROW(al->v, al->cap, al->n + 1);
	al->v[al->n++] = (struct listed){ *s, xstrdup(ai->file),
					   ai->archived_ms, ai->bytes };
	return 0;
}

static int cmp_summary(const void *a, const void *b)
{
	const struct summary *x = &((const struct listed *)a)->s,
			     *y = &((const struct listed *)b)->s;
	if (x->created_ms != y->created_ms)
		return x->created_ms > y->created_ms ? -1 : 1;
	return strcmp(y->id, x->id);
}

/* A batch's row from its batch.json, when summary.json cannot be read:
 * 0, or -1 (missing, too big, or it does not parse). */
static int summary_from_view(int dirfd, struct summary *s)
{
	struct sb text = SB_INIT;
	int rc = -1;
	if (read_view(dirfd, "batch.json", &text) == 0) {
		cJSON *o = cJSON_ParseWithLength(text.buf, text.len);
		if (cJSON_IsObject(o)) {
			meta_summary_from_json(o, s);
			rc = s->status < 0 ? -1 : 0;
		}
		cJSON_Delete(o);
	}
	sb_release(&text);
	return rc;
}

struct list_ctx {
	const struct list_filter *f;
	struct summary *v;
	size_t n, cap;
};

/* `list` reads each batch's summary.json (else its batch.json), never its
 * journal: a long or damaged journal must not make it slow.  A batch
 * whose views are both unreadable is listed as damaged, and said. */
static void list_batch(void *arg, const char *id, int bfd)
{
	struct list_ctx *lc = arg;
	GROW(lc->v, lc->cap, lc->n + 1);
	struct summary *s = &lc->v[lc->n];
	if (meta_read_summary(bfd, s) < 0 && summary_from_view(bfd, s) < 0) {
		error("batches/%s: damaged views (summary.json and batch.json "
		      "missing or unreadable); runner fsck %s", id, id);
		memset(s, 0, sizeof(*s));
		snprintf(s->id, sizeof(s->id), "%s", id);
		s->status = -1;
		if (lc->f->status < 0 && !lc->f->agent && !lc->f->name &&
		    !lc->f->origin && !lc->f->symbol)
			lc->n++;
		return;
	}
	if (list_keep(lc->f, s, bfd))
		lc->n++;
}

/* The columns of `list`, in the order of the default, each sized to its
 * longest cell: an id or agent of any allowed length lines up. */
enum { LC_ID, LC_STATUS, LC_AGENT, LC_ITEMS, LC_OK, LC_FAILED, LC_CANCELLED,
       LC_CREATED, LC_ARCHIVE, LC_NAME, LC_ORIGIN, LC_DURATION, LC_N };
#define LIST_COLUMNS "id, status, agent, items, ok, failed, cancelled, " \
	"created, archive, name, origin, duration"
static const char *const list_cols[LC_N] = {
	"id", "status", "agent", "items", "ok", "failed", "cancelled",
	"created", "archive", "name", "origin", "duration",
};
static const char *const list_heads[LC_N] = {
	"BATCH", "STATUS", "AGENT", "ITEMS", "OK", "FAILED", "CANCELLED",
	"CREATED", "ARCHIVE", "NAME", "ORIGIN", "DURATION",
};

/* --format COLS into cols: 0, or the usage error's status (printed). */
static int list_format(const char *spec, bool archived, int *cols,
		       size_t *ncols)
{
	*ncols = 0;
	if (!spec) {
		for (int c = LC_ID; c <= LC_CREATED; c++)
			cols[(*ncols)++] = c;
		if (archived)
			cols[(*ncols)++] = LC_ARCHIVE;
		return 0;
	}
	const char *p = spec;
	while (*p) {
		size_t len = strcspn(p, ","), c = 0;
		while (c < LC_N && (strlen(list_cols[c]) != len ||
				    strncmp(list_cols[c], p, len)))
			c++;
		if (c == LC_N || *ncols >= 2 * LC_N) {
			char word[64];
			snprintf(word, sizeof(word), "%.*s",
				 (int)(len < 40 ? len : 40), p);
			const char *near = did_you_mean(word, list_cols, LC_N);
			return usage_error("list: --format: unknown column '%s'"
					   "%s%s%s; columns: %s", word,
					   near ? " (did you mean '" : "",
					   near ? near : "", near ? "'?)" : "",
					   LIST_COLUMNS);
		}
		cols[(*ncols)++] = (int)c;
		p += len + (p[len] == ',');
	}
	if (!*ncols)
		return usage_error("list: --format: name a column (%s)",
				   LIST_COLUMNS);
	return 0;
}

static void list_cell(const struct listed *l, bool archived, int col,
		      char *buf, size_t n)
{
	const struct summary *s = &l->s;
	char t[TIME_BUF];
	switch (col) {
	case LC_ID: snprintf(buf, n, "%s", s->id); break;
	case LC_STATUS:
		snprintf(buf, n, "%s", s->status < 0 ? "damaged"
					  : batch_status_name(s->status));
		break;
	case LC_AGENT: snprintf(buf, n, "%s", s->agent); break;
	case LC_NAME: snprintf(buf, n, "%s", s->name[0] ? s->name : "-"); break;
	case LC_ORIGIN:
		snprintf(buf, n, "%s", s->origin[0] ? s->origin : "-");
		break;
	case LC_ITEMS: snprintf(buf, n, "%lld", s->total); break;
	case LC_OK: snprintf(buf, n, "%lld", s->succeeded); break;
	case LC_FAILED: snprintf(buf, n, "%lld", s->failed); break;
	case LC_CANCELLED: snprintf(buf, n, "%lld", s->cancelled); break;
	case LC_CREATED: snprintf(buf, n, "%s", fmt_time(s->created_ms, t)); break;
	case LC_DURATION:
		if (s->started_ms && s->completed_ms)
			fmt_duration(s->completed_ms - s->started_ms, buf, n);
		else
			snprintf(buf, n, "-");
		break;
	case LC_ARCHIVE:
		snprintf(buf, n, "%s%s", archived ? "batches/archive/" : "-",
			 archived ? l->file : "");
		break;
	}
}

static void print_list_table(const struct listed *v, size_t n,
			     const int *cols, size_t ncols, bool header)
{
	bool archived = false;
	size_t w[2 * LC_N];
	char cell[400];
	for (size_t i = 0; i < n; i++)
		archived |= v[i].file != NULL;
	for (size_t c = 0; c < ncols; c++) {
		w[c] = header ? strlen(list_heads[cols[c]]) : 0;
		for (size_t i = 0; i < n; i++) {
			list_cell(&v[i], archived, cols[c], cell, sizeof(cell));
			if (strlen(cell) > w[c])
				w[c] = strlen(cell);
		}
	}
	for (size_t i = header && n ? 0 : 1; i <= n; i++)
		for (size_t c = 0; c < ncols; c++) {
			int col = cols[c];
			bool num = col >= LC_ITEMS && col <= LC_CANCELLED;
			if (i == 0)
				snprintf(cell, sizeof(cell), "%s",
					 list_heads[col]);
			else
				list_cell(&v[i - 1], archived, col, cell,
					  sizeof(cell));
			if (c + 1 == ncols)
				printf("%s\n", cell);
			else
				printf(num ? "%*s  " : "%-*s  ", (int)w[c], cell);
		}
}

static int print_list(struct listed *v, size_t n, long long limit,
		      bool archived, const int *cols, size_t ncols,
		      bool header)
{
	if (n)
		qsort(v, n, sizeof(*v), cmp_summary);
	if (limit >= 0 && (size_t)limit < n)
		n = (size_t)limit;
	if (g.json) {
		cJSON *arr = cJSON_CreateArray();
		for (size_t i = 0; i < n; i++) {
			cJSON *o;
			if (archived) {
				struct archive_info ai = { .s = v[i].s,
					.archived_ms = v[i].archived_ms,
					.bytes = v[i].bytes };
				snprintf(ai.file, sizeof(ai.file), "%s",
					 v[i].file);
				o = archive_info_json(&ai);
			} else {
				o = meta_summary_json(&v[i].s);
				if (v[i].s.status < 0)
					cJSON_ReplaceItemInObjectCaseSensitive(
						o, "status",
						cJSON_CreateString("damaged"));
			}
			cJSON_AddItemToArray(arr, o);
		}
		char *s = cJSON_Print(arr);
		puts(s ? s : "[]");
		cJSON_free(s);
		cJSON_Delete(arr);
	} else {
		print_list_table(v, n, cols, ncols, header);
	}
	return fflush(stdout) == 0 ? 0 : EX_IOERR_;
}

int cmd_list(void)
{
	struct cmdopt o[] = { { "--help" },	    { "--status", true },
			      { "--since", true },  { "--until", true },
			      { "--agent", true },  { "--limit", true },
			      { "--archived" },	    { "--name", true },
			      { "--origin", true }, { "--symbol", true },
			      { "--format", true }, { "--no-header" } };
	char **pos;
	size_t npos;
	char why[WHY_BUF];
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "list",
			   "usage: runner list [--status S] [--since T] [--until T] "
			   "[--agent A] [--name N]\n"
			   "                   [--origin O] [--symbol SYM] [--limit N] "
			   "[--archived] [--json]\n"
			   "                   [--format COLS] [--no-header]\n\n"
			   "Batch history, newest first.  T is RFC 3339, YYYY-MM-DD or "
			   "a duration ago\n(24h, 7d, 1h30m); "
			   "S one of\npending, running, paused, completed, partial, "
			   "failed, cancelled.  --symbol: the\nbatches that held SYM.  "
			   "--archived lists the batches in batches/archive/\ninstead "
			   "(from its index).  COLS: a comma list of " LIST_COLUMNS
			   ".");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	int status = -1;
	int64_t since = INT64_MIN, until = INT64_MAX;
	long long limit = -1;
	if (npos)
		rc = usage_error("list: unexpected argument %s", pos[0]);
	else if (last_value(&o[1]) &&
		 (status = batch_status_parse(last_value(&o[1]))) < 0)
		rc = usage_error("list: unknown status %s", last_value(&o[1]));
	else if (last_value(&o[2]) &&
		 parse_time_or_ago(last_value(&o[2]), now_ms(), &since,
				   why) < 0)
		rc = usage_error("list: --since: %s", why);
	else if (last_value(&o[3]) &&
		 parse_time_or_ago(last_value(&o[3]), now_ms(), &until,
				   why) < 0)
		rc = usage_error("list: --until: %s", why);
	else if (last_value(&o[5]) &&
		 parse_int(last_value(&o[5]), 0, LLONG_MAX, &limit, why) < 0)
		rc = usage_error("list: --limit: %s", why);
	int cols[2 * LC_N];
	size_t ncols = 0;
	if (!rc)
		rc = list_format(last_value(&o[10]), o[6].seen, cols, &ncols);
	if (rc || (rc = open_home())) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	struct list_filter f = { status, since, until, last_value(&o[4]),
				 last_value(&o[7]), last_value(&o[8]),
				 last_value(&o[9]), STRMAP_INIT, NULL, 0 };
	if (f.symbol) {
		if (history_lookup(&home_, f.symbol, &f.rows, &f.nrows) < 0) {
			free_cmd(o, NOPTS(o), pos);
			return error("state/history: %s", strerror(errno)),
			       EX_IOERR_;
		}
		for (size_t i = 0; i < f.nrows; i++)
			strmap_put(&f.held, f.rows[i].batch, 1);
	}

	struct summary *v = NULL;
	size_t n = 0;
	if (o[6].seen) {
		struct archived_list al = { &f, NULL, 0, 0 };
		archive_list(&home_, collect_archived, &al);
		rc = print_list(al.v, al.n, limit, true, cols, ncols,
				!o[11].seen);
		for (size_t i = 0; i < al.n; i++)
			free(al.v[i].file);
		free(al.v);
		strmap_release(&f.held);
		history_free(f.rows, f.nrows);
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	struct list_ctx lc = { &f, NULL, 0, 0 };
	int each = each_batch(list_batch, &lc);
	strmap_release(&f.held);
	history_free(f.rows, f.nrows);
	if (each < 0) {
		free(lc.v);
		free_cmd(o, NOPTS(o), pos);
		return error("batches: %s", strerror(errno)), EX_IOERR_;
	}
	v = lc.v;
	n = lc.n;
	struct listed *lv = xcalloc(n + 1, sizeof(*lv));
	for (size_t i = 0; i < n; i++)
		lv[i].s = v[i];
	free(v);
	rc = print_list(lv, n, limit, false, cols, ncols, !o[11].seen);
	free(lv);
	free_cmd(o, NOPTS(o), pos);
	return rc;
}

/* A batch's summary document: summary.json, else rebuilt from the journal. */
static cJSON *load_summary_doc(int bfd)
{
	cJSON *o = meta_read_summary_json(bfd);
	if (o)
		return o;
	struct batch b;
	if (batch_replay_dir(bfd, &b) == 0)
		o = meta_summary_doc(&b, now_ms());
	batch_release(&b);
	return o;
}

static void stats_batch(void *arg, const char *id, int bfd)
{
	(void)id;
	cJSON *doc = load_summary_doc(bfd);
	if (doc)
		stats_add(arg, doc, false);
	cJSON_Delete(doc);
}

static void stats_archived(void *arg, const cJSON *doc)
{
	stats_add(arg, doc, true);
}

int cmd_stats(void)
{
	struct cmdopt o[] = { { "--help" }, { "--since", true } };
	char **pos;
	size_t npos;
	char why[WHY_BUF];
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "stats",
			   "usage: runner stats [--since T] [--json]\n\n"
			   "Aggregates over the batches (archived ones included) "
			   "created at or after T:\nbatches by status, items by "
			   "state, success rate, error categories, throughput,\n"
			   "batch duration percentiles, the 10 most-failing symbols "
			   "with their last\nerror, and the same per agent.  T is "
			   "RFC 3339, YYYY-MM-DD, or a duration ago (24h, 7d).");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	int64_t since = INT64_MIN;
	if (npos)
		rc = usage_error("stats: unexpected argument %s", pos[0]);
	else if (last_value(&o[1]) &&
		 parse_time_or_ago(last_value(&o[1]), now_ms(), &since,
				   why) < 0)
		rc = usage_error("stats: --since: %s", why);
	if (rc || (rc = open_home())) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	struct stats st;
	stats_init(&st, since);
	if (each_batch(stats_batch, &st) < 0) {
		stats_release(&st);
		free_cmd(o, NOPTS(o), pos);
		return error("batches: %s", strerror(errno)), EX_IOERR_;
	}
	archive_index_docs(&home_, stats_archived, &st);
	cJSON *out = stats_finish(&st);
	if (g.json) {
		char *text = cJSON_Print(out);
		puts(text ? text : "{}");
		cJSON_free(text);
	} else {
		stats_print(stdout, out);
	}
	cJSON_Delete(out);
	stats_release(&st);
	free_cmd(o, NOPTS(o), pos);
	return fflush(stdout) == 0 ? 0 : EX_IOERR_;
}
