/*
 * main: the command line (SPEC 3).  Global options may stand anywhere;
 * the first other word is the command.  Each command parses its own
 * options, does its work through the modules below it, and returns an exit
 * status from the SPEC's table.
 */
#include "archive.h"
#include "batch.h"
#include "conf.h"
#include "control.h"
#include "daemon.h"
#include "engine.h"
#include "home.h"
#include "inifile.h"
#include "job.h"
#include "meta.h"
#include "progress.h"
#include "report.h"
#include "runlog.h"
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
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define VERSION "0.1.0"

struct opts {
	const char *home;
	const char *config;
	bool json;
	bool no_progress;
	bool help;
	char **args;	/* the command's own arguments */
	size_t nargs;
};

static struct opts g;

static const char usage_text[] =
	"usage: runner [GLOBAL OPTIONS] COMMAND [ARGS]\n"
	"\n"
	"commands:\n"
	"  run [JOB...]            claim job files (or all of spool/) and run them;\n"
	"                          also adopts unfinished batches whose runner died\n"
	"  daemon [--once]         watch spool/ and run what arrives, until SIGTERM\n"
	"  submit JOB... [--wait]  validate, give an id, place in spool/ atomically\n"
	"  check JOB...            validate job files; print every problem\n"
	"  show BATCH [--items] [--failed]\n"
	"                          one batch (--json: the batch.json document)\n"
	"  list [--status S] [--since T] [--until T] [--agent A] [--limit N]\n"
	"       [--archived]       batch history, newest first\n"
	"  retry-failed BATCH [--category C]... [--symbol S]... [--no-wait]\n"
	"                          run the batch's failed items again\n"
	"  cancel TARGET [--symbol S]...\n"
	"                          cancel a batch's (or a failure group's) items\n"
	"                          that are not final\n"
	"  pause TARGET [--symbol S]... [--reason TEXT]\n"
	"                          pause a batch's or a failure group's items\n"
	"  resume TARGET [--order progress|oldest|priority] [--no-wait]\n"
	"                          resume them, under the caps, in that order\n"
	"  groups                  failure groups and their resume progress\n"
	"  status [SYMBOL...]      daemon, agents, symbols and circuits now\n"
	"  stats [--since T]       aggregates across batches: statuses, success,\n"
	"                          errors, throughput, most-failing symbols\n"
	"  report BATCH [-o FILE]  one self-contained HTML page about a batch\n"
	"  archive [--older-than DUR] [--dry-run]\n"
	"                          archive final batches older than DUR\n"
	"  restore BATCH           bring an archived batch back into batches/\n"
	"\n"
	"global options:\n"
	"  -C, --home DIR          the home (default $RUNNER_HOME, else .)\n"
	"  -c, --config FILE       configuration (default HOME/conf/runner.ini)\n"
	"      --json              machine-readable output\n"
	"  -q, --quiet             only errors\n"
	"  -v, --verbose           more detail\n"
	"      --no-progress       no progress line\n"
	"  -h, --help              this text; COMMAND --help for a command\n"
	"  -V, --version           the version\n"
	"\n"
	"See runner(1), runner.conf(5) and runner-job(5).\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	error("%s (runner --help)", buf);
	return EX_USAGE_;
}

/* ---- shared pieces ---- */

static struct home home_ = HOME_INIT;
static struct conf *conf_;

static const char *home_path(void)
{
	if (g.home)
		return g.home;
	const char *env = getenv("RUNNER_HOME");
	return env && *env ? env : ".";
}

static int open_home(void)
{
	if (home_open(&home_, home_path()) < 0)
		return EX_CANTCREAT_;
	return 0;
}

static int load_conf(void)
{
	char *path = g.config ? xstrdup(g.config)
			      : xasprintf("%s/conf/runner.ini", home_path());
	conf_ = conf_load(path);
	free(path);
	return conf_ ? 0 : EX_CONFIG_;
}

/* Options of a command: flags and repeated "--name VALUE" lists. */
struct cmdopt {
	const char *name;
	bool takes_value;
	bool seen;
	char **values;
	size_t nvalues, cap;
};

static void free_cmd(struct cmdopt *opts, size_t n, char **pos);

#define CMD_HELP (-1) /* parse_cmd printed the usage: exit 0 */

/*
 * The command's options and positional arguments.  With --help (an option
 * of every command, or `runner --help CMD`) it prints usage, frees what it
 * parsed and returns CMD_HELP; a bad option is a usage error (64).
 */
static int parse_cmd(struct cmdopt *opts, size_t nopts, char ***pos,
		     size_t *npos, const char *cmd, const char *usage)
{
	size_t n = 0, cap = 0;
	char **p = NULL;
	bool dashdash = false;
	for (size_t i = 0; i < g.nargs; i++) {
		char *a = g.args[i];
		if (dashdash || a[0] != '-' || !a[1]) {
			GROW(p, cap, n + 2);
			p[n++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			dashdash = true;
			continue;
		}
		struct cmdopt *o = NULL;
		const char *val = NULL;
		for (size_t k = 0; k < nopts && !o; k++) {
			size_t len = strlen(opts[k].name);
			if (!strcmp(a, opts[k].name))
				o = &opts[k];
			else if (opts[k].takes_value &&
				 !strncmp(a, opts[k].name, len) && a[len] == '=') {
				o = &opts[k];
				val = a + len + 1;
			}
		}
		if (!o) {
			free(p);
			return usage_error("%s: unknown option %s", cmd, a);
		}
		o->seen = true;
		if (o->takes_value) {
			if (!val) {
				if (i + 1 >= g.nargs) {
					free(p);
					return usage_error("%s: %s needs a value",
							   cmd, a);
				}
				val = g.args[++i];
			}
			GROW(o->values, o->cap, o->nvalues + 2);
			o->values[o->nvalues++] = (char *)val;
			o->values[o->nvalues] = NULL;
		}
	}
	if (p)
		p[n] = NULL;
	*pos = p;
	*npos = n;
	bool help = g.help;
	for (size_t k = 0; k < nopts; k++)
		if (!strcmp(opts[k].name, "--help") && opts[k].seen)
			help = true;
	if (help) {
		puts(usage);
		free_cmd(opts, nopts, p);
		return CMD_HELP;
	}
	return 0;
}

static void free_cmd(struct cmdopt *opts, size_t n, char **pos)
{
	for (size_t i = 0; i < n; i++)
		free(opts[i].values);
	free(pos);
}

#define NOPTS(a) (sizeof(a) / sizeof((a)[0]))

static const char *last_value(const struct cmdopt *o)
{
	return o->nvalues ? o->values[o->nvalues - 1] : NULL;
}

/* The home's shared state (groups, circuits), folded for a view. */
static struct shared view_sh;
static bool view_sh_open;

static struct shared *view_shared(void)
{
	if (view_sh_open)
		return &view_sh;
	struct conf *d = conf_ ? NULL : conf_default();
	if (shared_open(&view_sh, home_.state, conf_ ? conf_ : d) == 0)
		view_sh_open = true;
	conf_free(d);
	return view_sh_open ? &view_sh : NULL;
}

static void view_shared_close(void)
{
	if (view_sh_open)
		shared_close(&view_sh);
	view_sh_open = false;
}

static int open_batch_dir(const char *id)
{
	if (!valid_batch_id(id)) {
		error("%s: not a batch id", id);
		return -EX_NO_SUCH;
	}
	int fd = open_dir_at(home_.batches, id);
	if (fd < 0) {
		error("no such batch: %s", id);
		return -EX_NO_SUCH;
	}
	return fd;
}

static bool is_group_id(const char *s)
{
	return !strncmp(s, "grp-", 4);
}

static struct sh_group *find_group(const char *id)
{
	struct shared *sh = view_shared();
	struct sh_group *grp = sh ? shared_group(sh, id) : NULL;
	if (!grp)
		error("no such failure group: %s", id);
	return grp;
}

/* ---- check ---- */

static int cmd_check(void)
{
	struct cmdopt o[] = { { "--help" } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "check",
			   "usage: runner check JOB...\n\nValidate job files against "
			   "runner-job(5) and the configuration;\nprint every problem "
			   "as FILE:LINE: message.  Exit 65 if any file is invalid.");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	if (!npos) {
		free_cmd(o, NOPTS(o), pos);
		return usage_error("check: name at least one job file");
	}
	if ((rc = load_conf()) || (rc = open_home())) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	int status = 0;
	for (size_t i = 0; i < npos; i++) {
		struct sb text = SB_INIT;
		struct job j = JOB_INIT;
		struct diag d = DIAG_INIT(pos[i]);
		if (job_read_path(pos[i], &text) < 0) {
			if (status != EX_INVALID_JOB)
				status = errno == ENOENT ? EX_NO_SUCH
							 : EX_INVALID_JOB;
			sb_release(&text);
			continue;
		}
		if (job_parse(&j, &d, text.buf ? text.buf : "", text.len,
			      conf_, home_.fd) < 0)
			status = EX_INVALID_JOB;
		else if (verbosity >= 0)
			printf("%s: ok: %zu %s, agent %s%s%s\n", pos[i],
			       j.nsymbols,
			       plural(j.nsymbols, "symbol", "symbols"),
			       j.agent, j.id ? ", id " : "",
			       j.id ? j.id : "");
		diag_print(&d);
		diag_release(&d);
		job_release(&j);
		sb_release(&text);
	}
	free_cmd(o, NOPTS(o), pos);
	return status;
}

/* ---- run ---- */

static struct engine_opts engine_opts(void)
{
	struct engine_opts eo = {
		.json = g.json,
		.progress = !g.no_progress,
		.summary = true,
	};
	return eo;
}

static int cmd_run(void)
{
	struct cmdopt o[] = { { "--help" } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "run",
			   "usage: runner run [JOB...]\n\n"
			   "Claim the named job files (a copy, for files outside spool/),\n"
			   "or every job file in spool/ and every unfinished batch whose\n"
			   "runner died, and run their items in this process until every\n"
			   "batch is final or waits only on paused items.\n"
			   "Exit 0 when every item succeeded, 1 when some failed or were\n"
			   "cancelled, 65 when a named job file is invalid.");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	if ((rc = load_conf()) || (rc = open_home())) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	struct engine_opts eo = engine_opts();
	struct engine *e = engine_new(&home_, conf_, &eo);
	int status = 0;
	spool_sweep(&home_, conf_);
	if (npos) {
		for (size_t i = 0; i < npos; i++) {
			int st = engine_claim(e, pos[i], true);
			if (st > status)
				status = st;
		}
	} else {
		status = engine_claim_spool(e);
		if (engine_take_orphans(e) < 0 && !status)
			status = EX_SOME_FAILED;
	}
	int run_status = engine_run(e);
	engine_free(e);
	free_cmd(o, NOPTS(o), pos);
	if (run_status == EX_IOERR_ || run_status == EX_TEMPFAIL_)
		return run_status;
	return status ? status : run_status;
}

/* ---- show ---- */

static int replay_readonly(int dirfd, struct batch *b)
{
	struct journal j;
	batch_init(b);
	if (journal_open(&j, dirfd, "journal", false, batch_replay, b) < 0)
		return -1;
	journal_close(&j);
	if (!b->claimed) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

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

static int cat_file(int dirfd, const char *name)
{
	char buf[65536];
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			break;
	close(fd);
	return n < 0 ? -1 : 0;
}

static bool batch_dir_exists(const char *id)
{
	struct stat st;
	return fstatat(home_.batches, id, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Replay batch id for reading, from batches/ID or else from its archive:
 * 0 with b filled and *dirfd the batch directory (-1: archived), or an
 * exit status, the error printed.  The caller releases b either way. */
static int load_batch(const char *id, struct batch *b, int *dirfd)
{
	*dirfd = -1;
	if (valid_batch_id(id) && !batch_dir_exists(id) &&
	    archive_exists(&home_, id)) {
		if (archive_load_batch(&home_, id, b) == 0)
			return 0;
		error("batches/archive: %s: %s", id, strerror(errno));
		return errno == ENOENT ? EX_NO_SUCH : EX_IOERR_;
	}
	batch_init(b);
	int fd = open_batch_dir(id);
	if (fd < 0)
		return -fd;
	batch_release(b);
	if (replay_readonly(fd, b) < 0) {
		error("batches/%s/journal: %s", id, strerror(errno));
		close(fd);
		return EX_NO_SUCH;
	}
	*dirfd = fd;
	return 0;
}

/* show of a batch that lives in batches/archive/: read, never extracted. */
static int show_archived(const char *id, int flags)
{
	if (g.json) {
		if (archive_copy_member(&home_, id, "batch.json",
					STDOUT_FILENO) < 0) {
			error("batches/archive: %s: %s", id, strerror(errno));
			return errno == ENOENT ? EX_NO_SUCH : EX_IOERR_;
		}
		return 0;
	}
	struct batch b;
	struct archive_info ai;
	int rc, dirfd;
	if ((rc = load_batch(id, &b, &dirfd))) {
		batch_release(&b);
		return rc;
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
	batch_release(&b);
	return fflush(stdout) == 0 ? 0 : EX_IOERR_;
}

static int cmd_show(void)
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
		if (!batch_json_current(dirfd, &b) || cat_file(dirfd, "batch.json") < 0)
			meta_write_json(stdout, &b, now_ms(), view_shared());
	} else {
		int flags = SHOW_PATHS | (o[1].seen ? SHOW_ITEMS : 0) |
			    (o[2].seen ? SHOW_FAILED : 0);
		meta_print_summary(stdout, &b, now_ms(), flags, home_.path,
				   view_shared());
	}
	batch_release(&b);
	close(dirfd);
	free_cmd(o, NOPTS(o), pos);
	return fflush(stdout) == 0 ? 0 : EX_IOERR_;
}

/* ---- report ---- */

static int cmd_report(void)
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
	const char *out = last_value(&o[2]) ? last_value(&o[2])
					    : last_value(&o[1]);
	if (npos != 1) {
		free_cmd(o, NOPTS(o), pos);
		return usage_error("report: name one batch");
	}
	if ((rc = open_home())) {
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
	if (!rc && report_write(fp, &b, view_shared(), now_ms()) < 0) {
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
	batch_release(&b);
	free_cmd(o, NOPTS(o), pos);
	return rc;
}

/* ---- list ---- */

/* A row of `list`: a batch, or an archived one (file set). */
struct listed {
	struct summary s;
	char *file;
	int64_t archived_ms;
	uint64_t bytes;
};

struct archived_list {
	int status;
	int64_t since, until;
	const char *agent;
	struct listed *v;
	size_t n, cap;
};

static int collect_archived(void *arg, const struct archive_info *ai)
{
	struct archived_list *al = arg;
	const struct summary *s = &ai->s;
	if ((al->status >= 0 && s->status != al->status) ||
	    s->created_ms < al->since || s->created_ms > al->until ||
	    (al->agent && strcmp(al->agent, s->agent)))
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

static int summary_from_journal(int dirfd, struct summary *s)
{
	struct batch b;
	if (replay_readonly(dirfd, &b) < 0) {
		batch_release(&b);
		return -1;
	}
	memset(s, 0, sizeof(*s));
	snprintf(s->id, sizeof(s->id), "%s", b.c.id);
	snprintf(s->name, sizeof(s->name), "%s", b.c.name ? b.c.name : "");
	snprintf(s->origin, sizeof(s->origin), "%s",
		 b.c.origin ? b.c.origin : "");
	snprintf(s->agent, sizeof(s->agent), "%s", b.c.agent);
	s->status = batch_status(&b);
	s->created_ms = b.c.created_ms;
	s->started_ms = b.started_ms;
	s->completed_ms = b.final ? b.completed_ms : 0;
	s->total = (long long)b.nitems;
	s->succeeded = (long long)b.count[ST_SUCCEEDED];
	s->failed = (long long)b.count[ST_FAILED];
	s->cancelled = (long long)b.count[ST_CANCELLED];
	s->running = (long long)b.count[ST_RUNNING];
	s->paused = (long long)b.count[ST_PAUSED];
	s->pending = (long long)(b.nitems) - s->succeeded - s->failed -
		     s->cancelled - s->running - s->paused;
	batch_release(&b);
	return 0;
}

static int print_list(struct listed *v, size_t n, long long limit,
		      bool archived)
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
			}
			cJSON_AddItemToArray(arr, o);
		}
		char *s = cJSON_Print(arr);
		puts(s ? s : "[]");
		cJSON_free(s);
		cJSON_Delete(arr);
	} else {
		if (n)
			printf("%-28s %-10s %-18s %8s %8s %8s  %s%s\n", "BATCH",
			       "STATUS", "AGENT", "ITEMS", "OK", "FAILED",
			       "CREATED", archived ? "                  ARCHIVE" : "");
		for (size_t i = 0; i < n; i++) {
			char t[TIME_BUF];
			const struct summary *s = &v[i].s;
			printf("%-28s %-10s %-18s %8lld %8lld %8lld  %s",
			       s->id, batch_status_name(s->status), s->agent,
			       s->total, s->succeeded, s->failed,
			       fmt_time(s->created_ms, t));
			if (archived)
				printf("  batches/archive/%s", v[i].file);
			putchar('\n');
		}
	}
	return fflush(stdout) == 0 ? 0 : EX_IOERR_;
}

static int cmd_list(void)
{
	struct cmdopt o[] = { { "--help" },	    { "--status", true },
			      { "--since", true },  { "--until", true },
			      { "--agent", true },  { "--limit", true },
			      { "--archived" } };
	char **pos;
	size_t npos;
	char why[WHY_BUF];
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "list",
			   "usage: runner list [--status S] [--since T] [--until T] "
			   "[--agent A] [--limit N] [--archived] [--json]\n\n"
			   "Batch history, newest first.  T is RFC 3339 or YYYY-MM-DD; "
			   "S one of\npending, running, paused, completed, partial, "
			   "failed, cancelled.\n--archived lists the batches in "
			   "batches/archive/ instead (from its index).");
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
		 parse_time_arg(last_value(&o[2]), &since, why) < 0)
		rc = usage_error("list: --since: %s", why);
	else if (last_value(&o[3]) &&
		 parse_time_arg(last_value(&o[3]), &until, why) < 0)
		rc = usage_error("list: --until: %s", why);
	else if (last_value(&o[5]) &&
		 parse_int(last_value(&o[5]), 0, LLONG_MAX, &limit, why) < 0)
		rc = usage_error("list: --limit: %s", why);
	if (rc || (rc = open_home())) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	const char *agent = last_value(&o[4]);

	struct summary *v = NULL;
	size_t n = 0, cap = 0;
	if (o[6].seen) {
		struct archived_list al = { status, since, until, agent, NULL,
					    0, 0 };
		archive_list(&home_, collect_archived, &al);
		rc = print_list(al.v, al.n, limit, true);
		for (size_t i = 0; i < al.n; i++)
			free(al.v[i].file);
		free(al.v);
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	int fd = dup(home_.batches);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		free_cmd(o, NOPTS(o), pos);
		return error("batches: %s", strerror(errno)), EX_IOERR_;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !valid_batch_id(de->d_name) ||
		    !strcmp(de->d_name, "archive"))
			continue;
		int bfd = open_dir_at(home_.batches, de->d_name);
		if (bfd < 0)
			continue;
		GROW(v, cap, n + 1);
		if (meta_read_summary(bfd, &v[n]) == 0 ||
		    summary_from_journal(bfd, &v[n]) == 0) {
			struct summary *s = &v[n];
			if ((status < 0 || s->status == status) &&
			    s->created_ms >= since && s->created_ms <= until &&
			    (!agent || !strcmp(agent, s->agent)))
				n++;
		}
		close(bfd);
	}
	closedir(d);
	struct listed *lv = xcalloc(n + 1, sizeof(*lv));
	for (size_t i = 0; i < n; i++)
		lv[i].s = v[i];
	free(v);
	rc = print_list(lv, n, limit, false);
	free(lv);
	free_cmd(o, NOPTS(o), pos);
	return rc;
}

/* ---- stats ---- */

/* A batch's summary document: summary.json, else rebuilt from the journal. */
static cJSON *load_summary_doc(int bfd)
{
	cJSON *o = meta_read_summary_json(bfd);
	if (o)
		return o;
	struct batch b;
	if (replay_readonly(bfd, &b) == 0)
		o = meta_summary_doc(&b, now_ms());
	batch_release(&b);
	return o;
}

static void stats_archived(void *arg, const cJSON *doc)
{
	stats_add(arg, doc, true);
}

static int cmd_stats(void)
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
			   "RFC 3339 or YYYY-MM-DD.");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	int64_t since = INT64_MIN;
	if (npos)
		rc = usage_error("stats: unexpected argument %s", pos[0]);
	else if (last_value(&o[1]) &&
		 parse_time_arg(last_value(&o[1]), &since, why) < 0)
		rc = usage_error("stats: --since: %s", why);
	if (rc || (rc = open_home())) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	int fd = dup(home_.batches);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		free_cmd(o, NOPTS(o), pos);
		return error("batches: %s", strerror(errno)), EX_IOERR_;
	}
	struct stats st;
	stats_init(&st, since);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !valid_batch_id(de->d_name) ||
		    !strcmp(de->d_name, "archive"))
			continue;
		int bfd = open_dir_at(home_.batches, de->d_name);
		if (bfd < 0)
			continue;
		cJSON *doc = load_summary_doc(bfd);
		close(bfd);
		if (doc)
			stats_add(&st, doc, false);
		cJSON_Delete(doc);
	}
	closedir(d);
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

/* ---- archive and restore ---- */

static void archive_print(void *arg, const struct archive_event *ev)
{
	(void)arg;
	if (g.json) {
		cJSON *o = archive_event_json(ev);
		char *text = cJSON_PrintUnformatted(o);
		if (text)
			puts(text);
		cJSON_free(text);
		cJSON_Delete(o);
		fflush(stdout);
		return;
	}
	if (verbosity < 0 && ev->action != ARCH_FAILED)
		return;
	char age[32] = "";
	if (ev->age_ms >= 0)
		fmt_duration(ev->age_ms, age, sizeof(age));
	switch (ev->action) {
	case ARCH_ARCHIVED:
		if (ev->dry_run)
			printf("would archive %s (final %s ago) as "
			       "batches/archive/%s\n",
			       ev->id, age, ev->file ? ev->file : "?");
		else
			printf("archived %s as batches/archive/%s (%llu %s)\n",
			       ev->id, ev->file ? ev->file : "?",
			       (unsigned long long)ev->bytes,
			       plural(ev->bytes, "byte",
				      "bytes"));
		break;
	case ARCH_DELETED:
		printf("%s batches/archive/%s (%s, final %s ago)\n",
		       ev->dry_run ? "would delete" : "deleted",
		       ev->file ? ev->file : "?", ev->id, age);
		break;
	default:
		printf("%s %s%s%s\n", archive_action_name(ev->action), ev->id,
		       ev->why ? ": " : "", ev->why ? ev->why : "");
	}
	fflush(stdout);
}

static int cmd_archive(void)
{
	struct cmdopt o[] = { { "--help" }, { "--older-than", true },
			      { "--dry-run" } };
	char **pos;
	size_t npos;
	char why[WHY_BUF];
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "archive",
			   "usage: runner archive [--older-than DUR] [--dry-run] "
			   "[--json]\n\n"
			   "Archive every final batch completed at least DUR ago "
			   "(default: [retention]\narchive_after) into "
			   "batches/archive/<id>.tar.gz, verified before the batch "
			   "is\nremoved, and delete archives older than "
			   "delete_archives_after.  --dry-run\nlists what would "
			   "happen; --json prints one object per action.");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	int64_t older = -1;
	if (npos)
		rc = usage_error("archive: unexpected argument %s", pos[0]);
	else if (last_value(&o[1]) &&
		 parse_duration_ms(last_value(&o[1]), &older, why) < 0)
		rc = usage_error("archive: --older-than: %s", why);
	if (rc || (rc = open_home()) || (rc = load_conf())) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	struct archive_opts ao;
	archive_opts_from_conf(&ao, conf_);
	if (older >= 0)
		ao.older_than_ms = older;
	ao.dry_run = o[2].seen;
	if (archive_run(&home_, &ao, archive_print, NULL) < 0) {
		int err = errno;
		rc = err == EWOULDBLOCK ? EX_TEMPFAIL_
		     : err == ENOSPC || err == EDQUOT || err == EIO ||
				       err == EROFS
			     ? EX_IOERR_
								    : EX_SOME_FAILED;
	}
	free_cmd(o, NOPTS(o), pos);
	if (fflush(stdout) != 0 && !rc)
		rc = EX_IOERR_;
	return rc;
}

static int cmd_restore(void)
{
	struct cmdopt o[] = { { "--help" } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "restore",
			   "usage: runner restore BATCH\n\n"
			   "Bring an archived batch back into batches/ (and its log "
			   "into logs/), checked\nagainst the archive's manifest; the "
			   "archive is then removed.  An archive that\nwould write "
			   "outside the batch directory is refused (exit 65).");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	if (npos != 1)
		rc = usage_error("restore: name one batch");
	else if (!valid_batch_id(pos[0]))
		rc = (error("%s: not a batch id", pos[0]), EX_NO_SUCH);
	if (rc || (rc = open_home())) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	rc = archive_restore(&home_, pos[0]);
	if (rc == 0 && verbosity >= 0)
		printf("restored %s into batches/%s\n", pos[0], pos[0]);
	free_cmd(o, NOPTS(o), pos);
	return rc;
}

/* ---- retry-failed and cancel ---- */

static char *request_json(const char *op, char **cats, size_t ncats,
			  char **syms, size_t nsyms)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "op", op);
	cJSON *c = cJSON_AddArrayToObject(o, "categories");
	for (size_t i = 0; i < ncats; i++)
		cJSON_AddItemToArray(c, cJSON_CreateString(cats[i]));
	cJSON *s = cJSON_AddArrayToObject(o, "symbols");
	for (size_t i = 0; i < nsyms; i++)
		cJSON_AddItemToArray(s, cJSON_CreateString(syms[i]));
	char *text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return text;
}

/*
 * Hand a request to the runner process that owns the batch, or to the
 * daemon if one runs (it takes any batch nobody holds).  0: answered;
 * 1: nobody will, do it here; negative: -status, printed.
 */
static int ask_owner(const char *id, const char *json, struct sb *reply)
{
	struct daemon_info info;
	int dirfd = open_batch_dir(id);
	if (dirfd < 0)
		return dirfd;
	for (int tries = 0; tries < 3; tries++) {
		bool daemon = daemon_running(&home_, &info);
		int lock = batch_lock(dirfd);
		if (lock >= 0) {
			close(lock);
			if (!daemon) {
				close(dirfd);
				return 1;
			}
		} else if (errno != EWOULDBLOCK) {
			close(dirfd);
			return error("batches/%s/lock: %s", id, strerror(errno));
		}
		if (control_send(&home_, id, json, 3000, reply) == 0) {
			close(dirfd);
			return 0;
		}
	}
	close(dirfd);
	error("batch %s: its runner holds it but does not answer; try again",
	      id);
	return -EX_TEMPFAIL_;
}

static long reply_count(const struct sb *reply, const char *key)
{
	cJSON *o = cJSON_Parse(reply->buf ? reply->buf : "");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	long n = cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
	cJSON_Delete(o);
	return n;
}

static int cmd_retry_failed(void)
{
	struct cmdopt o[] = { { "--help" },
			      { "--category", true },
			      { "--symbol", true },
			      { "--no-wait" } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "retry-failed",
			   "usage: runner retry-failed BATCH [--category C]... "
			   "[--symbol S]... [--no-wait]\n\n"
			   "Run the batch's failed items again, as new attempts of "
			   "the same batch.\nWithout --no-wait the items run in the "
			   "foreground until they are final\n(or, if a runner owns the "
			   "batch, that runner takes the request).");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	unsigned mask = 0;
	for (size_t i = 0; i < o[1].nvalues; i++) {
		int c = category_parse(o[1].values[i]);
		if (c == CAT_NONE) {
			rc = usage_error("retry-failed: unknown category %s",
					 o[1].values[i]);
			free_cmd(o, NOPTS(o), pos);
			return rc;
		}
		mask |= CAT_BIT(c);
	}
	if (npos != 1) {
		free_cmd(o, NOPTS(o), pos);
		return usage_error("retry-failed: name one batch");
	}
	if ((rc = load_conf()) || (rc = open_home())) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	const char *id = pos[0];
	char *json = request_json("retry-failed", o[1].values, o[1].nvalues,
				  o[2].values, o[2].nvalues);
	struct sb reply = SB_INIT;
	int owner = ask_owner(id, json, &reply);
	free(json);
	if (owner <= 0) {
		if (owner == 0 && verbosity >= 0) {
			long k = reply_count(&reply, "requeued");
			printf("batch %s: %ld failed %s queued again by the "
			       "runner that holds it\n",
			       id, k, plural(k, "item", "items"));
		}
		sb_release(&reply);
		free_cmd(o, NOPTS(o), pos);
		return owner == 0 ? 0 : -owner;
	}
	struct engine_opts eo = engine_opts();
	if (o[3].seen)
		eo.summary = false;
	struct engine *e = engine_new(&home_, conf_, &eo);
	int status, took = engine_take(e, id, -1, TAKE_FINAL);
	if (took != 0) {
		status = took < 0 ? EX_IOERR_ : EX_TEMPFAIL_;
		if (took > 0)
			error("batch %s: another runner holds it; try again",
			      id);
	} else {
		int n = engine_retry_failed(e, id, mask, o[2].values,
					    o[2].nvalues, &reply);
		if (n == 0 && verbosity >= 0)
			printf("batch %s: no failed items match; nothing to "
			       "retry\n",
			       id);
		else if (n > 0)
			info("batch %s: %d failed %s queued again", id, n,
			     plural(n, "item", "items"));
		if (o[3].seen || n <= 0)
			engine_settle(e);
		status = engine_run(e);
		if (n == 0 || (o[3].seen && n > 0 && status <= EX_SOME_FAILED))
			status = 0;
		if (o[3].seen && n > 0 && verbosity >= 0)
			printf("batch %s: %d failed %s queued again; the next "
			       "`runner run` or the daemon runs them\n",
			       id, n, plural(n, "item", "items"));
	}
	engine_free(e);
	sb_release(&reply);
	free_cmd(o, NOPTS(o), pos);
	return status;
}

/* Cancel items of one batch (all, or those symbols): through the runner
 * that holds it, or here.  *n gets the count; the exit status. */
static int cancel_batch(const char *id, char **syms, size_t nsyms, long *n)
{
	char *json = request_json("cancel", NULL, 0, syms, nsyms);
	struct sb reply = SB_INIT;
	int owner = ask_owner(id, json, &reply);
	int status = 0;
	free(json);
	*n = -1;
	if (owner == 0) {
		*n = reply_count(&reply, "cancelled");
	} else if (owner < 0) {
		status = -owner;
	} else {
		struct engine_opts eo = { .json = false, .progress = false,
					  .summary = false };
		struct engine *e = engine_new(&home_, conf_, &eo);
		int took = engine_take(e, id, -1, TAKE_FINAL);
		if (took != 0) {
			status = took < 0 ? EX_IOERR_ : EX_TEMPFAIL_;
			if (took > 0)
				error("batch %s: another runner holds it; try "
				      "again",
				      id);
		} else {
			*n = engine_cancel(e, id, syms, nsyms, &reply);
			engine_settle(e);
			engine_run(e);
		}
		engine_free(e);
	}
	sb_release(&reply);
	return status;
}

/* runner cancel GROUP: every member not final, in every batch. */
static int cancel_group(const char *id)
{
	struct sh_group *gr = find_group(id);
	if (!gr)
		return EX_NO_SUCH;
	/* The members by batch, copied: cancelling changes the group. */
	char **batches = NULL, ***syms = NULL;
	size_t *nsyms = NULL, nb = 0, cap = 0;
	for (size_t i = 0; i < gr->nm; i++) {
		const struct sh_member *m = &gr->m[i];
		if (m->final)
			continue;
		size_t k = 0;
		while (k < nb && strcmp(batches[k], m->batch))
			k++;
		if (k == nb) {
			size_t old = cap;
			GROW(batches, cap, nb + 1);
			syms = xrealloc(syms, cap * sizeof(*syms));
			nsyms = xrealloc(nsyms, cap * sizeof(*nsyms));
			for (size_t j = old; j < cap; j++) {
				syms[j] = NULL;
				nsyms[j] = 0;
			}
			batches[nb++] = xstrdup(m->batch);
		}
		syms[k] = xrealloc(syms[k], (nsyms[k] + 2) * sizeof(char *));
		syms[k][nsyms[k]++] = xstrdup(m->symbol);
		syms[k][nsyms[k]] = NULL;
	}
	int status = 0;
	long total = 0;
	for (size_t k = 0; k < nb; k++) {
		long n;
		int st = batch_dir_exists(batches[k])
				 ? cancel_batch(batches[k], syms[k], nsyms[k], &n)
				 : (n = 0, 0); /* archived: final already */
		if (st > status)
			status = st;
		if (n > 0)
			total += n;
		if (n > 0 && verbosity >= 0)
			printf("batch %s: %ld item%s of group %s cancelled\n",
			       batches[k], n, n == 1 ? "" : "s", id);
		words_free(syms[k]);
		free(batches[k]);
	}
	if (verbosity >= 0)
		printf("group %s: %ld item%s cancelled in %zu batch%s\n", id,
		       total, total == 1 ? "" : "s", nb, nb == 1 ? "" : "es");
	free(batches);
	free(syms);
	free(nsyms);
	return status;
}

static int cmd_cancel(void)
{
	struct cmdopt o[] = { { "--help" }, { "--symbol", true } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "cancel",
			   "usage: runner cancel TARGET [--symbol S]...\n\n"
			   "Cancel the batch's items that are not final (only the "
			   "named symbols,\nwith --symbol), or every member of a "
			   "failure group that is not final,\nin every batch.  "
			   "Running children get SIGTERM, then SIGKILL.");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	if (npos != 1) {
		free_cmd(o, NOPTS(o), pos);
		return usage_error("cancel: name one batch or group");
	}
	if ((rc = load_conf()) || (rc = open_home())) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	const char *id = pos[0];
	int status;
	if (is_group_id(id)) {
		if (o[1].nvalues)
			status = usage_error("cancel: --symbol is for a batch, "
					     "not a group");
		else
			status = cancel_group(id);
		free_cmd(o, NOPTS(o), pos);
		return status;
	}
	long n;
	status = cancel_batch(id, o[1].values, o[1].nvalues, &n);
	if (n >= 0 && verbosity >= 0)
		printf("batch %s: %ld item%s cancelled\n", id, n,
		       n == 1 ? "" : "s");
	free_cmd(o, NOPTS(o), pos);
	return status;
}

/* ---- daemon ---- */

static int cmd_daemon(void)
{
	struct cmdopt o[] = { { "--help" }, { "--once" } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "daemon",
			   "usage: runner daemon [--once]\n\n"
			   "Watch spool/ and run what arrives, adopt batches whose "
			   "runner died,\nuntil SIGTERM or SIGINT (then drain: running "
			   "attempts get shutdown_grace\nto finish; a second signal "
			   "stops at once).  SIGHUP reloads the\nconfiguration and "
			   "reopens logs/runner.log.  --once: exit when spool/ is\n"
			   "empty and nothing runs.  One daemon per home (exit 75 if "
			   "one runs).");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	if (npos) {
		rc = usage_error("daemon: unexpected argument %s", pos[0]);
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	if ((rc = load_conf()) || (rc = open_home())) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	int lock = daemon_lock(&home_);
	if (lock < 0) {
		struct daemon_info info;
		int saved = errno;
		free_cmd(o, NOPTS(o), pos);
		if (saved == EWOULDBLOCK && daemon_running(&home_, &info)) {
			error("a daemon already runs for %s (pid %d); not starting "
			      "another",
			      home_.path, (int)info.pid);
			return EX_TEMPFAIL_;
		}
		error("state/daemon.lock: %s", strerror(saved));
		return saved == EWOULDBLOCK ? EX_TEMPFAIL_ : EX_CANTCREAT_;
	}
	struct runlog *log = runlog_open(home_.logs);
	char *conf_path = g.config ? xstrdup(g.config)
				   : xasprintf("%s/conf/runner.ini", home_path());
	runlog_printf(log, "daemon started for %s (config %s)%s", home_.path,
		      conf_path, o[1].seen ? ", --once" : "");
	struct engine_opts eo = {
		.daemon = true,
		.once = o[1].seen,
		.conf_path = conf_path,
		.runlog = log,
	};
	struct engine *e = engine_new(&home_, conf_, &eo);
	spool_sweep(&home_, conf_);
	engine_take_orphans(e);
	int status = engine_run(e);
	runlog_printf(log, "daemon stopped (exit %d)", status);
	engine_free(e); /* and the configurations it loaded on reloads */
	runlog_close(log);
	daemon_unlock(&home_, lock);
	free(conf_path);
	free_cmd(o, NOPTS(o), pos);
	return status;
}

/* ---- submit ---- */

/* What became of a submitted job that has no batch (yet). */
static bool rejected_reason(const char *id, char *why, size_t n)
{
	char name[ID_MAX + 16];
	struct sb text = SB_INIT;
	snprintf(name, sizeof(name), "%s.job.reason", id);
	int dfd = open_dir_at(home_.spool, "rejected");
	int fd = dfd >= 0 ? openat(dfd, name, O_RDONLY | O_NOFOLLOW |
						     O_NONBLOCK | O_CLOEXEC)
			  : -1;
	bool found = fd >= 0 && read_fd_bounded(fd, 4096, &text) == 0;
	if (found) {
		const char *t = text.buf ? text.buf : "";
		size_t len = strcspn(t, "\n");
		snprintf(why, n, "%.*s", (int)len, t);
	}
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	sb_release(&text);
	return found;
}

/* The batch waits on nobody: no daemon, and no runner holds it. */
static bool orphaned(const char *id)
{
	struct daemon_info info;
	if (daemon_running(&home_, &info))
		return false;
	int bfd = open_dir_at(home_.batches, id);
	if (bfd < 0)
		return true;
	int lock = batch_lock(bfd);
	close(bfd);
	if (lock < 0)
		return false;
	close(lock);
	return true;
}

/*
 * Follow a submitted batch until it is final, or waits only on paused
 * items, from its summary.json; 0/1 like run.  Every wait has an end: a
 * job the daemon rejected is reported (65), and a job or batch nobody will
 * run any more (the daemon stopped) is run here (FOLLOW_RUN_HERE).
 */
#define FOLLOW_RUN_HERE (-1)
static int follow_batch(const char *id)
{
	struct progress prog;
	struct summary s;
	int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC), wd = -1;
	char path[PATH_MAX], why[512];
	int status = EX_SOME_FAILED;
	bool counted = false, printed = true;

	progress_init(&prog, !g.no_progress && !g.json && verbosity >= 0);
	for (;;) {
		int bfd = open_dir_at(home_.batches, id);
		if (bfd >= 0) {
			if (wd < 0 && in >= 0) {
				snprintf(path, sizeof(path), "%s/batches/%s",
					 home_.path, id);
				wd = inotify_add_watch(in, path, IN_MOVED_TO);
			}
			if (meta_read_summary(bfd, &s) == 0) {
				if (!counted) {
					progress_add(&prog, (size_t)s.total, 0, 0);
					counted = true;
				}
				prog.ok = (size_t)s.succeeded;
				prog.failed = (size_t)(s.failed + s.cancelled);
				progress_draw(&prog, (size_t)s.running,
					      (size_t)s.paused, false);
				if (status_final(s.status) ||
				    s.status == BS_PAUSED) {
					close(bfd);
					status = s.status == BS_COMPLETED ? 0 : 1;
					break;
				}
			}
			close(bfd);
		} else if (rejected_reason(id, why, sizeof(why))) {
			error("%s: rejected: %s", id, why);
			status = EX_INVALID_JOB;
			printed = false;
			break;
		} else if (wd < 0 && in >= 0) {
			snprintf(path, sizeof(path), "%s/batches", home_.path);
			inotify_add_watch(in, path, IN_MOVED_TO | IN_CREATE);
		}
		if (orphaned(id)) {
			status = FOLLOW_RUN_HERE;
			printed = false;
			break;
		}
		/* Woken by the batch's rewrites; a second at most between looks. */
		struct pollfd pfd = { .fd = in, .events = POLLIN };
		if (poll(&pfd, in >= 0 ? 1 : 0, 1000) > 0) {
			char buf[4096];
			while (read(in, buf, sizeof(buf)) > 0)
				;
		}
	}
	progress_clear(&prog);
	if (in >= 0)
		close(in);
	int dirfd = printed ? open_batch_dir(id) : -1;
	if (dirfd >= 0 && !g.json && verbosity >= 0) {
		struct batch b;
		if (replay_readonly(dirfd, &b) == 0)
			meta_print_summary(stdout, &b, now_ms(), SHOW_PATHS,
					   home_.path, view_shared());
		batch_release(&b);
	}
	if (dirfd >= 0)
		close(dirfd);
	return status;
}

static int cmd_submit(void)
{
	struct cmdopt o[] = { { "--help" }, { "--wait" } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "submit",
			   "usage: runner submit JOB... [--wait]\n\n"
			   "Validate the job files (exit 65 with every problem, and "
			   "nothing placed),\ngive each an id if it has none, place it "
			   "in spool/ atomically and print\nthe batch id (\"duplicate "
			   "of BATCH\" for a duplicate).  --wait follows the\nbatch to "
			   "its final state (running it here when no daemon runs) and "
			   "exits\nlike run.");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	if (!npos) {
		free_cmd(o, NOPTS(o), pos);
		return usage_error("submit: name at least one job file");
	}
	if ((rc = load_conf()) || (rc = open_home())) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	/* Every file valid, or nothing is placed. */
	struct sb *texts = xcalloc(npos, sizeof(struct sb));
	int status = 0;
	for (size_t i = 0; i < npos; i++) {
		struct job j = JOB_INIT;
		struct diag d = DIAG_INIT(pos[i]);
		if (job_read_path(pos[i], &texts[i]) < 0)
			status = errno == ENOENT && status != EX_INVALID_JOB
					 ? EX_NO_SUCH
					 : EX_INVALID_JOB;
		else if (job_parse(&j, &d, texts[i].buf ? texts[i].buf : "",
				   texts[i].len, conf_, home_.fd) < 0)
			status = EX_INVALID_JOB;
		if (d.errors)
			diag_print(&d);
		diag_release(&d);
		job_release(&j);
	}
	char **ids = xcalloc(npos + 1, sizeof(char *));
	size_t nids = 0;
	for (size_t i = 0; !status && i < npos; i++) {
		struct claim_result res;
		int saved_v = verbosity;
		verbosity = -1; /* warnings were printed by the first pass */
		int r = spool_submit(&home_, conf_, pos[i],
				     texts[i].buf ? texts[i].buf : "",
				     texts[i].len, &res);
		verbosity = saved_v;
		if (r < 0) {
			status = EX_IOERR_;
		} else if (res.status == CLAIM_DUPLICATE) {
			printf("duplicate of %s\n", res.dup_of);
		} else if (res.status == CLAIM_OK) {
			printf("%s\n", res.id);
			ids[nids++] = xstrdup(res.id);
		} else {
			status = EX_INVALID_JOB;
		}
	}
	fflush(stdout);
	if (!status && o[1].seen) {
		struct daemon_info info;
		bool *here = xcalloc(nids + 1, sizeof(bool));
		size_t nhere = 0;
		for (size_t i = 0; i < nids; i++) {
			/* The daemon runs it, unless there is none (or it
			 * stops while we follow): then it runs here. */
			int st = daemon_running(&home_, &info)
					 ? follow_batch(ids[i])
					 : FOLLOW_RUN_HERE;
			if (st == FOLLOW_RUN_HERE) {
				here[i] = true;
				nhere++;
			} else if (st > status) {
				status = st;
			}
		}
		if (nhere) {
			struct engine_opts eo = engine_opts();
			struct engine *e = engine_new(&home_, conf_, &eo);
			spool_sweep(&home_, conf_);
			for (size_t i = 0; i < nids; i++) {
				if (!here[i])
					continue;
				int st;
				if (batch_dir_exists(ids[i])) {
					st = engine_take(e, ids[i], -1, 0) < 0
						     ? EX_IOERR_ : 0;
				} else {
					char *path = xasprintf("%s/spool/%s.job",
							       home_.path, ids[i]);
					st = engine_claim(e, path, true);
					free(path);
				}
				if (st > status)
					status = st;
			}
			int rs = engine_run(e);
			engine_free(e);
			if (rs > status)
				status = rs;
		}
		free(here);
	}
	for (size_t i = 0; i < npos; i++)
		sb_release(&texts[i]);
	free(texts);
	for (size_t i = 0; i < nids; i++)
		free(ids[i]);
	free(ids);
	free_cmd(o, NOPTS(o), pos);
	return status;
}


/* ---- pause, resume, groups, status ---- */

static int cmd_pause(void)
{
	struct cmdopt o[] = { { "--help" }, { "--symbol", true },
			      { "--reason", true } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "pause",
			   "usage: runner pause TARGET [--symbol S]... [--reason TEXT]\n\n"
			   "Pause the pending and retrying items of a batch (only those "
			   "symbols,\nwith --symbol), or of a failure group (all its "
			   "members, with no half-open\ntrial until a resume).  Running "
			   "attempts finish.  Go on with runner resume.");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	if (npos != 1) {
		free_cmd(o, NOPTS(o), pos);
		return usage_error("pause: name one batch or group");
	}
	if ((rc = load_conf()) || (rc = open_home())) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	const char *id = pos[0], *reason = last_value(&o[2]);
	int status = 0;
	if (is_group_id(id)) {
		struct sh_group *gr = find_group(id);
		if (!gr)
			status = EX_NO_SUCH;
		else if (shared_pause_group(view_shared(), id, now_ms()) < 0) {
			error("state/events: %s", strerror(errno));
			status = EX_IOERR_;
		}
		else if (verbosity >= 0)
			printf("group %s paused (%zu %s); go on with: "
			       "runner resume %s\n",
			       id, gr->nm, plural(gr->nm, "member", "members"),
			       id);
		free_cmd(o, NOPTS(o), pos);
		return status;
	}
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "op", "pause");
	cJSON *sy = cJSON_AddArrayToObject(req, "symbols");
	for (size_t i = 0; i < o[1].nvalues; i++)
		cJSON_AddItemToArray(sy, cJSON_CreateString(o[1].values[i]));
	if (reason)
		cJSON_AddStringToObject(req, "reason", reason);
	char *json = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	struct sb reply = SB_INIT;
	int owner = ask_owner(id, json, &reply);
	cJSON_free(json);
	long n = -1;
	if (owner == 0) {
		n = reply_count(&reply, "paused");
	} else if (owner < 0) {
		status = -owner;
	} else {
		struct engine_opts eo = { .summary = false };
		struct engine *e = engine_new(&home_, conf_, &eo);
		int took = engine_take(e, id, -1, TAKE_FINAL);
		if (took != 0) {
			status = took < 0 ? EX_IOERR_ : EX_TEMPFAIL_;
		} else {
			n = engine_pause(e, id, o[1].values, o[1].nvalues,
					 reason, &reply);
			engine_settle(e);
			engine_run(e);
		}
		engine_free(e);
	}
	if (n >= 0 && verbosity >= 0) {
		printf("batch %s: %ld item%s paused; go on with: runner resume "
		       "%s\n",
		       id, n, n == 1 ? "" : "s", id);
		cJSON *ro = cJSON_Parse(reply.buf ? reply.buf : "");
		const cJSON *x;
		cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(ro,
								    "not_paused"))
		{
			const cJSON *ns = cJSON_GetObjectItemCaseSensitive(x, "symbol");
			const cJSON *wh = cJSON_GetObjectItemCaseSensitive(x, "why");
			if (cJSON_IsString(ns) && cJSON_IsString(wh))
				printf("batch %s: %s not paused: %s\n", id,
				       ns->valuestring, wh->valuestring);
		}
		cJSON_Delete(ro);
	}
	sb_release(&reply);
	free_cmd(o, NOPTS(o), pos);
	return status;
}

static bool valid_order(const char *s)
{
	return !strcmp(s, "progress") || !strcmp(s, "oldest") ||
	       !strcmp(s, "priority");
}

static int cmd_resume(void)
{
	struct cmdopt o[] = { { "--help" }, { "--order", true },
			      { "--no-wait" } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "resume",
			   "usage: runner resume TARGET [--order progress|oldest|priority] "
			   "[--no-wait]\n\n"
			   "Resume the paused items of a batch or of a failure group, "
			   "in that order\n(progress: the highest progress reported "
			   "first, the default; oldest:\nfirst paused first; priority: "
			   "batch priority), never above the caps.\nWith a daemon "
			   "running it carries the request out; otherwise the items\n"
			   "run here until they are final (--no-wait: only record it).");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	const char *order = last_value(&o[1]) ? last_value(&o[1]) : "progress";
	if (!valid_order(order)) {
		rc = usage_error("resume: --order is progress, oldest or priority");
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	if (npos != 1) {
		free_cmd(o, NOPTS(o), pos);
		return usage_error("resume: name one batch or group");
	}
	if ((rc = load_conf()) || (rc = open_home())) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	const char *id = pos[0];
	struct daemon_info info;
	bool daemon = daemon_running(&home_, &info);
	int status = 0;
	if (is_group_id(id)) {
		struct sh_group *gr = find_group(id);
		if (!gr) {
			free_cmd(o, NOPTS(o), pos);
			return EX_NO_SUCH;
		}
		if (gr->status == GROUP_RESOLVED) {
			if (verbosity >= 0)
				printf("group %s is resolved: nothing to "
				       "resume\n",
				       id);
			free_cmd(o, NOPTS(o), pos);
			return 0;
		}
		if (shared_resume(view_shared(), id, order, now_ms()) < 0) {
			free_cmd(o, NOPTS(o), pos);
			return error("state/events: %s", strerror(errno)),
			       EX_IOERR_;
		}
		if (daemon || o[2].seen) {
			if (verbosity >= 0)
				printf("group %s: resume (%s order) recorded%s\n",
				       id, order,
				       daemon ? "; the daemon runs its members"
					      : "; the next runner run or daemon "
						"runs its members");
			free_cmd(o, NOPTS(o), pos);
			return 0;
		}
		/* No daemon: run the members here, from every batch that no
		 * other runner holds (a live one resumes its own). */
		char **batches = NULL;
		size_t nb = 0, cap = 0;
		for (size_t i = 0; i < gr->nm; i++) {
			bool dup = false;
			for (size_t k = 0; k < nb && !dup; k++)
				dup = !strcmp(batches[k], gr->m[i].batch);
			if (!dup && !gr->m[i].final) {
				GROW(batches, cap, nb + 1);
				batches[nb++] = xstrdup(gr->m[i].batch);
			}
		}
		struct engine_opts eo = engine_opts();
		struct engine *e = engine_new(&home_, conf_, &eo);
		for (size_t i = 0; i < nb; i++) {
			engine_take(e, batches[i], -1, 0);
			free(batches[i]);
		}
		free(batches);
		status = engine_run(e);
		engine_free(e);
		free_cmd(o, NOPTS(o), pos);
		return status;
	}
	char *json = xasprintf("{\"op\":\"resume\",\"order\":\"%s\"}", order);
	struct sb reply = SB_INIT;
	int owner = ask_owner(id, json, &reply);
	free(json);
	if (owner == 0) {
		if (verbosity >= 0) {
			long k = reply_count(&reply, "resumed");
			printf("batch %s: %ld %s resumed by the runner that "
			       "holds it\n",
			       id, k, plural(k, "item", "items"));
		}
	} else if (owner < 0) {
		status = -owner;
	} else {
		struct engine_opts eo = engine_opts();
		if (o[2].seen)
			eo.summary = false;
		struct engine *e = engine_new(&home_, conf_, &eo);
		int took = engine_take(e, id, -1, 0);
		if (took != 0) {
			status = took < 0 ? EX_IOERR_ : 0;
			if (took > 0 && verbosity >= 0)
				printf("batch %s is final: nothing to resume\n",
				       id);
		} else {
			int n = engine_resume(e, id, order, &reply);
			if (verbosity >= 0 && o[2].seen)
				printf("batch %s: %d %s resumed; the next "
				       "runner run or daemon runs them\n",
				       id, n,
				       plural(n, "item", "items"));
			if (o[2].seen)
				engine_settle(e);
			status = engine_run(e);
			if (o[2].seen && status <= EX_SOME_FAILED)
				status = 0;
		}
		engine_free(e);
	}
	sb_release(&reply);
	free_cmd(o, NOPTS(o), pos);
	return status;
}

static int cmp_group_new(const void *a, const void *b)
{
	const struct sh_group *x = *(struct sh_group *const *)a;
	const struct sh_group *y = *(struct sh_group *const *)b;
	if (x->detected_ms != y->detected_ms)
		return x->detected_ms > y->detected_ms ? -1 : 1;
	return strcmp(y->id, x->id);
}

static int cmd_groups(void)
{
	struct cmdopt o[] = { { "--help" } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "groups",
			   "usage: runner groups [--json]\n\n"
			   "Failure groups, newest first: status, root cause, "
			   "members\nand progress (\"2/5 resumed, 3 queued\", how the "
			   "members ended).");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	if (npos)
		rc = usage_error("groups: unexpected argument %s", pos[0]);
	free_cmd(o, NOPTS(o), pos);
	if (rc || (rc = open_home()))
		return rc;
	struct shared *sh = view_shared();
	if (!sh)
		return error("state/events: %s", strerror(errno)), EX_IOERR_;
	struct sh_group **v = xmalloc((sh->ngroups + 1) * sizeof(*v));
	if (sh->ngroups) { /* sh->groups is NULL when there are none */
		memcpy(v, sh->groups, sh->ngroups * sizeof(*v));
		qsort(v, sh->ngroups, sizeof(*v), cmp_group_new);
	}
	if (g.json) {
		cJSON *arr = cJSON_CreateArray();
		for (size_t i = 0; i < sh->ngroups; i++)
			cJSON_AddItemToArray(arr, meta_group_json(sh, v[i]->id));
		char *text = cJSON_Print(arr);
		puts(text ? text : "[]");
		cJSON_free(text);
		cJSON_Delete(arr);
	} else {
		if (!sh->ngroups && verbosity >= 0)
			printf("no failure groups\n");
		else if (sh->ngroups)
			printf("%-24s %-9s %7s  %-24s %s\n", "GROUP", "STATUS",
			       "MEMBERS", "PROGRESS", "ROOT CAUSE");
		else
			puts("no failure groups");
		for (size_t i = 0; i < sh->ngroups; i++) {
			struct sb prog = SB_INIT;
			shared_group_progress_text(v[i], &prog);
			printf("%-24s %-9s %7zu  %-24s %s\n", v[i]->id,
			       group_status_name(v[i]->status), v[i]->nm,
			       prog.buf, v[i]->root_cause ? v[i]->root_cause : "");
			sb_release(&prog);
		}
	}
	free(v);
	return fflush(stdout) == 0 ? 0 : EX_IOERR_;
}

struct status_sym {
	char *symbol;
	int64_t last_ms, busy_until;
	uint64_t count, lat_sum, lat_max;
	int64_t lat_min;	/* -1: unknown */
	double p50, p95;	/* -1: unknown */
	bool last_ok, known;
	/* Derived in cmd_status: */
	const char *state;
	int circuit;
	int streak;
};

struct status_ctx {
	struct status_sym *v;
	size_t n, cap;
	struct strmap idx;
	int64_t since;
	const struct strmap *only;	/* the symbols named, or NULL: all */
};

static struct status_sym *status_sym(struct status_ctx *c, const char *sym)
{
	struct strmap_entry *e = strmap_get(&c->idx, sym);
	if (e)
		return &c->v[e->value];
	GROW(c->v, c->cap, c->n + 1);
	struct status_sym *s = &c->v[c->n];
	memset(s, 0, sizeof(*s));
	s->symbol = xstrdup(sym);
	strmap_put(&c->idx, s->symbol, c->n);
	c->n++;
	return s;
}

static void status_row(void *arg, const struct symstat_row *r)
{
	struct status_ctx *c = arg;
	if (c->only) {
		if (!strmap_get(c->only, r->symbol))
			return; /* named ones only, however old */
	} else if (r->last_ms < c->since && r->busy_until < c->since) {
		return; /* not seen recently */
	}
	struct status_sym *s = status_sym(c, r->symbol);
	s->last_ms = r->last_ms;
	s->busy_until = r->busy_until;
	s->count = r->count;
	s->lat_sum = r->lat_sum;
	s->lat_max = r->lat_max;
	s->lat_min = r->lat_min;
	s->p50 = symstats_percentile(r, 0.50);
	s->p95 = symstats_percentile(r, 0.95);
	s->last_ok = r->last_ok;
	s->known = true;
}

static int cmp_status_sym(const void *a, const void *b)
{
	return strcmp(((const struct status_sym *)a)->symbol,
		      ((const struct status_sym *)b)->symbol);
}

/*
 * Keys of the per-symbol objects are literals: cJSON need not copy them.
 * Their numbers are formatted here, as raw JSON: cJSON prints every number
 * with "%1.15g" and reads it back to check it, most of the time `status
 * --json` took on 10,000 symbols.  Latencies are kept to 0.1 ms.
 */
static void put_num(cJSON *o, const char *key, double v)
{
	char buf[32];
	if (v == floor(v) && fabs(v) < 1e15)
		snprintf(buf, sizeof(buf), "%lld", (long long)v);
	else
		snprintf(buf, sizeof(buf), "%.1f", v);
	cJSON_AddItemToObjectCS(o, key, cJSON_CreateRaw(buf));
}

static void put_str(cJSON *o, const char *key, const char *v)
{
	cJSON_AddItemToObjectCS(o, key, cJSON_CreateString(v));
}

static void put_null(cJSON *o, const char *key)
{
	cJSON_AddItemToObjectCS(o, key, cJSON_CreateNull());
}

static void put_ms(cJSON *o, const char *key, double v, bool known)
{
	if (known && isfinite(v))
		put_num(o, key, round(v * 10) / 10);
	else
		put_null(o, key);
}

/* One symbol of `status --json` (SPEC 8, and its latency distribution). */
static cJSON *status_sym_json(const struct status_sym *s)
{
	cJSON *so = cJSON_CreateObject();
	char t[TIME_BUF];
	put_str(so, "symbol", s->symbol);
	put_str(so, "state", s->state);
	if (s->last_ms)
		put_str(so, "last_processed", fmt_time(s->last_ms, t));
	else
		put_null(so, "last_processed");
	put_num(so, "consecutive_failures", s->streak);
	put_str(so, "circuit_state", circuit_name(s->circuit));
	double avg = s->count ? (double)s->lat_sum / (double)s->count : 0;
	put_ms(so, "avg_latency_ms", avg, s->count);
	/* Beyond SPEC 8: the distribution (p50/p95 within 10%, and within
	 * [min, max]). */
	cJSON *lat = cJSON_CreateObject();
	cJSON_AddItemToObjectCS(so, "latency_ms", lat);
	put_ms(lat, "min", (double)s->lat_min, s->count && s->lat_min >= 0);
	put_ms(lat, "avg", avg, s->count);
	put_ms(lat, "p50", round(s->p50), s->count && s->p50 >= 0);
	put_ms(lat, "p95", round(s->p95), s->count && s->p95 >= 0);
	put_ms(lat, "max", (double)s->lat_max, s->count && s->lat_max);
	return so;
}

/*
 * The symbols array, one object a line.  Each is built, printed and freed
 * in turn rather than held in one tree: with 10,000 symbols that tree is
 * 140,000 allocations, most of the command's time.
 */
static char *status_symbols_json(const struct status_ctx *c)
{
	struct sb out = SB_INIT;
	sb_addf(&out, "[");
	for (size_t i = 0; i < c->n; i++) {
		cJSON *so = status_sym_json(&c->v[i]);
		char *text = cJSON_PrintUnformatted(so);
		cJSON_Delete(so);
		if (!text)
			die(EX_INTERNAL, "out of memory printing status");
		sb_adds(&out, i ? ",\n    " : "\n    ");
		sb_adds(&out, text);
		cJSON_free(text);
	}
	sb_adds(&out, c->n ? "\n  ]" : "]");
	return out.buf;
}

/* The symbols of a batch's paused items, NUL-separated into out. */
static void paused_symbols(int bfd, struct sb *out)
{
	struct batch b;
	if (replay_readonly(bfd, &b) == 0)
		for (size_t i = 0; i < b.nitems; i++)
			if (b.items[i].state == ST_PAUSED) {
				sb_adds(out, b.items[i].symbol);
				sb_addc(out, '\0');
			}
	batch_release(&b);
}

/*
 * `status SYMBOL...`: those symbols only, in the order named: a table, or
 * with --json an array of their objects.  A symbol this home has no record
 * of is a one-line error; the others are still shown.  0, or 66.
 */
static int status_named(struct status_ctx *c, char **names, size_t n)
{
	int rc = 0;
	size_t shown = 0;
	if (g.json)
		fputs("[", stdout);
	for (size_t i = 0; i < n; i++) {
		/* c->v is sorted by now: c->idx no longer points into it. */
		struct status_sym key = { .symbol = names[i] };
		const struct status_sym *s =
			c->n ? bsearch(&key, c->v, c->n, sizeof(*c->v),
				       cmp_status_sym)
			     : NULL;
		if (!s) {
			error("status: %s: no such symbol (not seen by this home)",
			      names[i]);
			rc = EX_NO_SUCH;
			continue;
		}
		if (g.json) {
			cJSON *so = status_sym_json(s);
			char *text = cJSON_PrintUnformatted(so);
			cJSON_Delete(so);
			if (!text)
				die(EX_INTERNAL, "out of memory printing status");
			printf("%s\n  %s", shown++ ? "," : "", text);
			cJSON_free(text);
			continue;
		}
		char t[TIME_BUF], avg[32];
		if (!shown++)
			printf("%-12s %-10s %-9s %8s  %-24s %s\n", "SYMBOL",
			       "STATE", "CIRCUIT", "FAILURES", "LAST PROCESSED",
			       "AVG LATENCY");
		if (s->count)
			fmt_duration((int64_t)(s->lat_sum / s->count), avg,
				     sizeof(avg));
		printf("%-12s %-10s %-9s %8d  %-24s %s\n", s->symbol, s->state,
		       circuit_name(s->circuit), s->streak,
		       s->last_ms ? fmt_time(s->last_ms, t) : "-",
		       s->count ? avg : "-");
	}
	if (g.json)
		puts(shown ? "\n]" : "]");
	return rc;
}

static int cmd_status(void)
{
	struct cmdopt o[] = { { "--help" } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "status",
			   "usage: runner status [SYMBOL...] [--json]\n\n"
			   "The home now: the daemon, each agent's running/max/queued, "
			   "every symbol\nseen in the last 24 hours (state, circuit, "
			   "consecutive failures, average\nlatency), open circuits and "
			   "the overall status.\n"
			   "With SYMBOLs: those symbols only, however long ago they ran "
			   "(--json: an\narray of their objects); a symbol the home has "
			   "never seen is an error (66).");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	if ((rc = load_conf()) || (rc = open_home())) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	struct strmap named = STRMAP_INIT;
	for (size_t i = 0; i < npos; i++)
		strmap_put(&named, pos[i], i);
	int64_t now = now_ms();
	struct shared *sh = view_shared();
	struct daemon_info info;
	bool daemon = daemon_running(&home_, &info);
	struct sb paused_store = SB_INIT; /* NUL-separated paused symbols */

	/* Active batches, and what waits per agent, from summary.json. */
	size_t nagents = conf_->nagents;
	long long *queued = xcalloc(nagents + 1, sizeof(long long));
	char **active = NULL;
	size_t nactive = 0, capactive = 0;
	int fd = dup(home_.batches);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		struct summary su;
		if (de->d_name[0] == '.' || !valid_batch_id(de->d_name) ||
		    !strcmp(de->d_name, "archive"))
			continue;
		int bfd = open_dir_at(home_.batches, de->d_name);
		if (bfd < 0)
			continue;
		if (meta_read_summary(bfd, &su) == 0 && !status_final(su.status)) {
			GROW(active, capactive, nactive + 1);
			active[nactive++] = xstrdup(su.id);
			for (size_t i = 0; i < nagents; i++)
				if (!strcmp(conf_->agents[i].name, su.agent))
					queued[i] += su.pending;
			if (su.paused > 0)
				paused_symbols(bfd, &paused_store);
		}
		close(bfd);
	}
	if (d)
		closedir(d);

	struct status_ctx c = { .since = now - 24 * 3600 * 1000LL,
				.only = npos ? &named : NULL };
	symstats_read(home_.state, status_row, &c);
	/* A symbol is paused while an item of it is (in any open batch). */
	struct strmap paused = STRMAP_INIT;
	for (size_t off = 0; off < paused_store.len;) {
		const char *sym = paused_store.buf + off;
		off += strlen(sym) + 1;
		if (c.only && !strmap_get(c.only, sym))
			continue;
		status_sym(&c, sym);
		strmap_put(&paused, sym, 1);
	}
	size_t groups_open = 0;
	for (size_t i = 0; sh && i < sh->ngroups; i++)
		if (sh->groups[i]->status == GROUP_OPEN)
			groups_open++;
	for (size_t i = 0; sh && i < sh->nsymbols; i++) {
		struct sh_symbol *ss = sh->symbols[i];
		if ((ss->brk.streak || ss->brk.state != CIRCUIT_CLOSED) &&
		    (!c.only || strmap_get(c.only, ss->symbol)))
			status_sym(&c, ss->symbol);
	}
	if (c.n)
		qsort(c.v, c.n, sizeof(*c.v), cmp_status_sym);

	size_t healthy = 0, npaused = 0, open = groups_open;
	for (size_t i = 0; i < c.n; i++) {
		struct status_sym *s = &c.v[i];
		struct sh_symbol *ss = sh ? shared_symbol(sh, s->symbol) : NULL;
		int circuit = ss ? ss->brk.state : CIRCUIT_CLOSED;
		if (circuit == CIRCUIT_OPEN && ss && now >= ss->brk.until)
			circuit = CIRCUIT_HALF_OPEN;
		s->circuit = circuit;
		s->streak = ss ? ss->brk.streak : 0;
		s->state = s->busy_until > now ? "processing"
			: strmap_get(&paused, s->symbol) ? "paused"
			: (s->known && !s->last_ok) || s->streak ||
				  circuit != CIRCUIT_CLOSED
				? "failed"
				: "idle";
		if (circuit != CIRCUIT_CLOSED)
			open++;
		if (!strcmp(s->state, "paused"))
			npaused++;
		if ((!strcmp(s->state, "idle") ||
		     !strcmp(s->state, "processing")) &&
		    circuit == CIRCUIT_CLOSED)
			healthy++;
	}
	cJSON *root = cJSON_CreateObject();
	const char *overall = open > 3 ? "unhealthy"
			      : c.n && healthy * 5 < c.n * 4 ? "degraded"
							     : "healthy";
	cJSON_AddStringToObject(root, "overall_status", overall);
	cJSON *dj = cJSON_AddObjectToObject(root, "daemon");
	cJSON_AddBoolToObject(dj, "running", daemon);
	char t[TIME_BUF];
	if (daemon && info.pid)
		cJSON_AddNumberToObject(dj, "pid", info.pid);
	else
		cJSON_AddNullToObject(dj, "pid");
	if (daemon && info.started_ms)
		cJSON_AddStringToObject(dj, "started_at",
					fmt_time(info.started_ms, t));
	else
		cJSON_AddNullToObject(dj, "started_at");
	cJSON *ja = cJSON_AddArrayToObject(root, "agents");
	for (size_t i = 0; i < nagents; i++) {
		const struct agent_conf *a = &conf_->agents[i];
		cJSON *ao = cJSON_CreateObject();
		int running = slot_count_held(home_.state, a->name,
					      a->max_concurrent);
		cJSON_AddStringToObject(ao, "agent", a->name);
		cJSON_AddNumberToObject(ao, "running", running < 0 ? 0 : running);
		cJSON_AddNumberToObject(ao, "max_concurrent", a->max_concurrent);
		cJSON_AddNumberToObject(ao, "queued", (double)queued[i]);
		cJSON_AddItemToArray(ja, ao);
	}
	if (g.json) {
		char *symbols = status_symbols_json(&c);
		cJSON_AddRawToObject(root, "symbols", symbols);
		free(symbols);
	}
	cJSON_AddNumberToObject(root, "total_symbols", (double)c.n);
	cJSON_AddNumberToObject(root, "healthy_symbols", (double)healthy);
	cJSON_AddNumberToObject(root, "paused_symbols", (double)npaused);
	cJSON_AddNumberToObject(root, "circuit_breakers_open", (double)open);
	cJSON *jb = cJSON_AddArrayToObject(root, "active_batches");
	for (size_t i = 0; i < nactive; i++)
		cJSON_AddItemToArray(jb, cJSON_CreateString(active[i]));

	if (npos) {
		rc = status_named(&c, pos, npos);
	} else if (g.json) {
		char *text = cJSON_Print(root);
		puts(text ? text : "{}");
		cJSON_free(text);
	} else {
		printf("overall      %s\n", overall);
		if (daemon)
			printf("daemon       running, pid %d, since %s\n",
			       (int)info.pid, fmt_time(info.started_ms, t));
		else
			printf("daemon       not running\n");
		for (size_t i = 0; i < nagents; i++) {
			int running = slot_count_held(
				home_.state, conf_->agents[i].name,
				conf_->agents[i].max_concurrent);
			printf("agent        %s: %d/%d running, %lld queued\n",
			       conf_->agents[i].name, running < 0 ? 0 : running,
			       conf_->agents[i].max_concurrent, queued[i]);
		}
		printf("symbols      %zu seen in 24 h: %zu healthy, %zu paused, "
		       "%zu %s open\n",
		       c.n, healthy, npaused, open,
		       plural(open, "circuit", "circuits"));
		printf("batches      %zu active\n", nactive);
		size_t shown = 0;
		for (size_t i = 0; i < c.n; i++) {
			const struct status_sym *s = &c.v[i];
			if (!strcmp(s->state, "failed") ||
			    !strcmp(s->state, "paused") ||
			    s->circuit != CIRCUIT_CLOSED) {
				if (!shown++)
					printf("%-12s %-10s %-9s %s\n", "SYMBOL",
					       "STATE", "CIRCUIT", "FAILURES");
				printf("%-12s %-10s %-9s %d\n", s->symbol,
				       s->state, circuit_name(s->circuit),
				       s->streak);
			}
		}
	}
	cJSON_Delete(root);
	for (size_t i = 0; i < c.n; i++)
		free(c.v[i].symbol);
	free(c.v);
	strmap_release(&c.idx);
	strmap_release(&paused);
	sb_release(&paused_store);
	strmap_release(&named);
	free_cmd(o, NOPTS(o), pos);
	for (size_t i = 0; i < nactive; i++)
		free(active[i]);
	free(active);
	free(queued);
	return fflush(stdout) == 0 ? rc : EX_IOERR_;
}

/* ---- dispatch ---- */

struct command {
	const char *name;
	int (*fn)(void);
};

static const struct command commands[] = {
	{ "run", cmd_run },
	{ "daemon", cmd_daemon },
	{ "submit", cmd_submit },
	{ "check", cmd_check },
	{ "show", cmd_show },
	{ "list", cmd_list },
	{ "retry-failed", cmd_retry_failed },
	{ "cancel", cmd_cancel },
	{ "pause", cmd_pause },
	{ "resume", cmd_resume },
	{ "groups", cmd_groups },
	{ "status", cmd_status },
	{ "stats", cmd_stats },
	{ "report", cmd_report },
	{ "archive", cmd_archive },
	{ "restore", cmd_restore },
};

/* Descriptors 0-2 must exist, or a file we open could become "stdout". */
static void sane_stdio(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0) {
			int n = open("/dev/null", O_RDWR);
			if (n != fd && n >= 0)
				close(n);
		}
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* "-X VALUE", "--long VALUE" or "--long=VALUE"; *val NULL when missing. */
static bool optval(char **argv, int argc, int *i, const char *shortopt,
		   const char *longopt, const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(longopt);
	if ((shortopt && !strcmp(a, shortopt)) || !strcmp(a, longopt)) {
		*val = *i + 1 < argc ? argv[++*i] : NULL;
		return true;
	}
	if (!strncmp(a, longopt, n) && a[n] == '=') {
		*val = a + n + 1;
		return true;
	}
	return false;
}

int main(int argc, char **argv)
{
	const char *cmd = NULL;
	char **rest = xcalloc((size_t)argc + 1, sizeof(char *));
	size_t nrest = 0;
	bool version = false;

	sane_stdio();
	raise_nofile();
	inifile_setup(JOB_MAX_BYTES + 16);
	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		const char *val = NULL;
		if (!strcmp(a, "--")) {
			for (i++; i < argc; i++)
				rest[nrest++] = argv[i];
			break;
		} else if (optval(argv, argc, &i, "-C", "--home", &val)) {
			if (!val)
				return usage_error("--home needs a directory");
			g.home = val;
		} else if (optval(argv, argc, &i, "-c", "--config", &val)) {
			if (!val)
				return usage_error("--config needs a file");
			g.config = val;
		} else if (optval(argv, argc, &i, NULL, "--retry-failed", &val)) {
			if (!val)
				return usage_error("--retry-failed needs a batch");
			cmd = "retry-failed";
			rest[nrest++] = (char *)val;
		} else if (!strcmp(a, "--json")) {
			g.json = true;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			verbosity = -1;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			verbosity = 1;
		} else if (!strcmp(a, "--no-progress")) {
			g.no_progress = true;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			g.help = true;
		} else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			version = true;
		} else if (!cmd && a[0] != '-') {
			cmd = a;
		} else {
			rest[nrest++] = a;
		}
	}
	g.args = rest;
	g.nargs = nrest;
	if (version) {
		printf("runner %s\n", VERSION);
		return 0;
	}
	if (!cmd) {
		if (g.help) {
			fputs(usage_text, stdout);
			return 0;
		}
		fputs(usage_text, stderr);
		return EX_USAGE_;
	}
	for (size_t i = 0; i < NOPTS(commands); i++) {
		if (strcmp(cmd, commands[i].name))
			continue;
		int status = commands[i].fn();
		view_shared_close();
		conf_free(conf_);
		home_release(&home_);
		free(rest);
		if (fflush(stdout) != 0 && !status)
			status = EX_IOERR_;
		return status;
	}
	free(rest);
	return usage_error("unknown command '%s'", cmd);
}
