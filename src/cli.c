/*
 * cli: what the commands share: the global options, a command's own
 * options (parse_cmd), the home and its configuration, the home's shared
 * state as a view, batches read for a view, and the one way a request on
 * a batch is carried out (by the runner that holds it, or here).
 */
#include "cli.h"
#include "archive.h"
#include "batch.h"
#include "conf.h"
#include "control.h"
#include "daemon.h"
#include "engine.h"
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
#include <getopt.h>
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

struct opts g;
struct home home_ = HOME_INIT;
struct conf *conf_;

/* The home's shared state (groups, circuits), folded for a view. */
static struct shared view_sh;
static bool view_sh_open;

int usage_error(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	error("%s (runner --help)", buf);
	return EX_USAGE_;
}

const char *home_path(void)
{
	if (g.home)
		return g.home;
	const char *env = getenv("RUNNER_HOME");
	return env && *env ? env : ".";
}

/*
 * A home is a directory that holds conf/runner.ini (what runner init
 * writes), or, when -c names the configuration, one that holds spool/.
 * Anything else is refused before a directory is made in it: a mistyped
 * -C or a command run in the wrong directory must not leave batches/,
 * logs/, spool/ and state/ behind.
 */
static int require_home(void)
{
	const char *path = home_path();
	struct stat st;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool ok = fd >= 0 &&
		  (fstatat(fd, "conf/runner.ini", &st, 0) == 0 ||
		   (g.config && fstatat(fd, "spool", &st, 0) == 0 &&
		    S_ISDIR(st.st_mode)));
	if (fd >= 0)
		close(fd);
	if (ok)
		return 0;
	error("%s is not a runner home (no conf/runner.ini): name one with -C "
	      "DIR or RUNNER_HOME, or make one with 'runner init DIR'",
	      path);
	return EX_CONFIG_;
}

int open_home(void)
{
	int rc = require_home();
	if (rc)
		return rc;
	if (home_open(&home_, home_path()) < 0)
		return EX_CANTCREAT_;
	return 0;
}

int load_conf(void)
{
	int rc = g.config ? 0 : require_home();
	if (rc)
		return rc;
	char *path = g.config ? xstrdup(g.config)
			      : xasprintf("%s/conf/runner.ini", home_path());
	conf_ = conf_load(path);
	free(path);
	return conf_ ? 0 : EX_CONFIG_;
}

/*
 * Options, the GNU way.  One table of global options, accepted before the
 * command (parse_globals) and after it (every parse_cmd adds them to the
 * command's own); each command's struct cmdopt table is turned into
 * getopt_long's longopts here, so every command gets prefixes, -xy,
 * --name=VALUE and the same one-line errors.
 */
enum {
	G_JSON = 1000, G_NO_PROGRESS, G_VERSION_LONG,
	OPT_BASE = 2000,	/* OPT_BASE + k: the command's opts[k] */
};

static const struct option global_longopts[] = {
	{ "home", required_argument, NULL, 'C' },
	{ "config", required_argument, NULL, 'c' },
	{ "json", no_argument, NULL, G_JSON },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "no-progress", no_argument, NULL, G_NO_PROGRESS },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
};
#define GLOBAL_SHORT "C:c:qvhV"

/* A global option: applied to g (and verbosity). */
static void global_option(int c, const char *arg)
{
	switch (c) {
	case 'C': g.home = arg; break;
	case 'c': g.config = arg; break;
	case 'q': verbosity = -1; break;
	case 'v': verbosity = 1; break;
	case 'h': g.help = true; break;
	case 'V': g.version = true; break;
	case G_JSON: g.json = true; break;
	case G_NO_PROGRESS: g.no_progress = true; break;
	}
}

/* One line for what getopt_long refused (c is '?' or ':'): the word it
 * stumbled on is argv[optind - 1] for a long option, optopt for a short
 * one. */
static int option_error(char **argv, int c, const struct option *lo,
			const char *cmd)
{
	const char *w = optind > 0 ? argv[optind - 1] : "";
	bool islong = w[0] == '-' && w[1] == '-';
	char word[80], hint[160] = "", see[64];
	size_t len = strcspn(w, "=");
	if (islong)
		snprintf(word, sizeof(word), "%.*s", (int)(len > 64 ? 64 : len),
			 w);
	else
		snprintf(word, sizeof(word), "-%c", optopt > 32 && optopt < 127
							   ? optopt : '?');
	snprintf(see, sizeof(see), "see runner %s%s--help", cmd ? cmd : "",
		 cmd ? " " : "");
	if (c == ':')
		return error("%s needs a value; %s", word, see), EX_USAGE_;
	if (islong && optopt)
		return error("%s takes no value; %s", word, see), EX_USAGE_;
	if (islong) {
		/* Several longopts begin with it: ambiguous, say which. */
		size_t n = strlen(word + 2), nmatch = 0, at = 0, nnames = 0;
		const char *names[64];
		for (const struct option *o = lo; o->name; o++) {
			if (nnames < NOPTS(names))
				names[nnames++] = o->name;
			if (n && !strncmp(o->name, word + 2, n) &&
			    at + 40 < sizeof(hint)) {
				at += (size_t)snprintf(hint + at, sizeof(hint) - at,
						       "%s--%s", nmatch ? ", " : "",
						       o->name);
				nmatch++;
			}
		}
		if (nmatch > 1)
			return error("option %s is ambiguous (%s); %s", word,
				     hint, see), EX_USAGE_;
		const char *near = did_you_mean(word + 2, names, nnames);
		if (near)
			return error("unknown option %s (did you mean --%s?); %s",
				     word, near, see), EX_USAGE_;
	}
	return error("unknown option %s; %s", word, see), EX_USAGE_;
}

int parse_globals(int argc, char **argv, int *cmd)
{
	struct option lo[NOPTS(global_longopts) + 1];
	memcpy(lo, global_longopts, sizeof(global_longopts));
	memset(&lo[NOPTS(global_longopts)], 0, sizeof(lo[0]));
	int c;
	opterr = 0;
	optind = 0;	/* glibc: start afresh */
	/* '+': stop at the command word; ':': report a missing value. */
	while ((c = getopt_long(argc, argv, "+:" GLOBAL_SHORT, lo, NULL)) != -1) {
		if (c == '?' || c == ':')
			return option_error(argv, c, lo, NULL);
		global_option(c, optarg);
	}
	*cmd = optind;
	return 0;
}

/*
 * The command's options and positional arguments (g.args).  With --help
 * (an option of every command, or `runner --help CMD`) it prints usage,
 * frees what it parsed and returns CMD_HELP; a bad option is a usage error
 * (64), one line.
 */
int parse_cmd(struct cmdopt *opts, size_t nopts, char ***pos,
		     size_t *npos, const char *cmd, const char *usage)
{
	size_t nlo = 0, ng = NOPTS(global_longopts);
	struct option *lo = xcalloc(nopts + ng + 1, sizeof(*lo));
	char *shorts = xcalloc(2 * nopts + sizeof(GLOBAL_SHORT) + 2, 1);
	size_t ns = 0;
	int rc = 0;
	shorts[ns++] = ':';
	for (size_t k = 0; k < nopts; k++) {
		const char *name = opts[k].name;
		int has = opts[k].takes_value ? required_argument : no_argument;
		char sc = opts[k].shortopt;
		if (name[0] == '-' && name[1] == '-')
			lo[nlo++] = (struct option){ name + 2, has, NULL,
						     OPT_BASE + (int)k };
		else
			sc = name[1];
		if (sc) {
			shorts[ns++] = sc;
			if (opts[k].takes_value)
				shorts[ns++] = ':';
		}
	}
	for (size_t i = 0; i < ng; i++) {
		bool mine = false;
		for (size_t k = 0; k < nlo && !mine; k++)
			mine = !strcmp(lo[k].name, global_longopts[i].name);
		if (!mine)
			lo[nlo++] = global_longopts[i];
	}
	/* The global letters the command does not take for its own. */
	for (const char *s = GLOBAL_SHORT; *s; s++) {
		if (*s == ':' || memchr(shorts + 1, *s, ns - 1))
			continue;
		shorts[ns++] = *s;
		if (s[1] == ':')
			shorts[ns++] = ':';
	}
	shorts[ns] = 0;

	/* getopt_long wants argv[0]; it permutes the rest (options and
	 * arguments mix), "--" ends the options. */
	char **argv = xcalloc(g.nargs + 2, sizeof(char *));
	char argv0[] = "runner";
	argv[0] = argv0;
	memcpy(argv + 1, g.args, g.nargs * sizeof(char *));
	int argc = (int)g.nargs + 1, c;
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
		if (c == '?' || c == ':') {
			rc = option_error(argv, c, lo, cmd);
			goto out;
		}
		struct cmdopt *o = NULL;
		if (c >= OPT_BASE) {
			o = &opts[c - OPT_BASE];
		} else if (c < 256) {
			for (size_t k = 0; k < nopts && !o; k++)
				if (opts[k].shortopt == c ||
				    (opts[k].name[1] == c && !opts[k].name[2]))
					o = &opts[k];
		}
		if (!o) {
			global_option(c, optarg);
			continue;
		}
		o->seen = true;
		if (o->takes_value) {
			GROW(o->values, o->cap, o->nvalues + 2);
			o->values[o->nvalues++] = optarg;
			o->values[o->nvalues] = NULL;
		}
	}
	size_t n = (size_t)(argc - optind);
	char **p = xcalloc(n + 1, sizeof(char *));
	memcpy(p, argv + optind, n * sizeof(char *));
	*pos = p;
	*npos = n;
	bool help = g.help;
	for (size_t k = 0; k < nopts; k++)
		if (!strcmp(opts[k].name, "--help") && opts[k].seen)
			help = true;
	if (help) {
		puts(usage);
		free_cmd(opts, nopts, p);
		*pos = NULL;
		rc = CMD_HELP;
	}
out:
	if (rc && rc != CMD_HELP)
		for (size_t k = 0; k < nopts; k++) {
			free(opts[k].values);
			opts[k].values = NULL;
		}
	free(argv);
	free(shorts);
	free(lo);
	return rc;
}

void free_cmd(struct cmdopt *opts, size_t n, char **pos)
{
	for (size_t i = 0; i < n; i++)
		free(opts[i].values);
	free(pos);
}

const char *last_value(const struct cmdopt *o)
{
	return o->nvalues ? o->values[o->nvalues - 1] : NULL;
}

struct shared *view_shared(void)
{
	if (view_sh_open)
		return &view_sh;
	struct conf *d = conf_ ? NULL : conf_default();
	if (shared_open(&view_sh, home_.state, conf_ ? conf_ : d) == 0)
		view_sh_open = true;
	conf_free(d);
	return view_sh_open ? &view_sh : NULL;
}

void view_shared_close(void)
{
	if (view_sh_open)
		shared_close(&view_sh);
	view_sh_open = false;
}

int open_batch_dir(const char *id)
{
	if (!valid_batch_id(id)) {
		error("%s: not a batch id", id);
		return -EX_NO_SUCH;
	}
	int fd = open_dir_at(home_.batches, id);
	if (fd < 0 && errno == ENOENT && archive_exists(&home_, id)) {
		/* What changes a batch works on batches/, not on an archive. */
		error("batch %s is archived; runner restore %s brings it back",
		      id, id);
		return -EX_NO_SUCH;
	}
	if (fd < 0) {
		error("no such batch: %s", id);
		return -EX_NO_SUCH;
	}
	return fd;
}

bool is_group_id(const char *s)
{
	return !strncmp(s, "grp-", 4);
}

struct sh_group *find_group(const char *id)
{
	struct shared *sh = view_shared();
	struct sh_group *grp = sh ? shared_group(sh, id) : NULL;
	if (!grp)
		error("no such failure group: %s", id);
	return grp;
}

struct engine_opts engine_opts(void)
{
	struct engine_opts eo = {
		.json = g.json,
		.progress = !g.no_progress,
		.summary = true,
	};
	return eo;
}

bool batch_dir_exists(const char *id)
{
	struct stat st;
	return fstatat(home_.batches, id, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Replay batch id for reading, from batches/ID or else from its archive:
 * 0 with b filled and *dirfd the batch directory (-1: archived), or an
 * exit status, the error printed.  The caller releases b either way. */
int load_batch(const char *id, struct batch *b, int *dirfd)
{
	*dirfd = -1;
	if (valid_batch_id(id) && !batch_dir_exists(id) &&
	    archive_exists(&home_, id)) {
		if (archive_load_batch(&home_, id, b) == 0) {
			if (b->damage[0])
				error("batches/archive: %s/journal: %s; what is "
				      "shown is the batch before it", id,
				      b->damage);
			return 0;
		}
		error("batches/archive: %s: %s", id, strerror(errno));
		return errno == ENOENT ? EX_NO_SUCH : EX_IOERR_;
	}
	batch_init(b);
	int fd = open_batch_dir(id);
	if (fd < 0)
		return -fd;
	batch_release(b);
	if (batch_replay_dir(fd, b) < 0) {
		int saved = errno;
		if (b->forged[0]) {
			error("batch %s: journal: %s; the batch is refused", id,
			      b->forged);
			close(fd);
			return EX_INVALID_JOB;
		}
		error("batches/%s/journal: %s%s", id,
		      b->damage[0] ? b->damage : strerror(saved),
		      b->damage[0] ? "; runner fsck says more" : "");
		close(fd);
		return saved == ENOENT ? EX_NO_SUCH : EX_IOERR_;
	}
	if (b->damage[0])
		error("batches/%s/journal: %s; what is shown is the batch before "
		      "it (runner fsck %s)", id, b->damage, id);
	*dirfd = fd;
	return 0;
}

char *request_json(const char *op, char **cats, size_t ncats,
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
int ask_owner(const char *id, const char *json, struct sb *reply)
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

long reply_count(const struct sb *reply, const char *key)
{
	cJSON *o = cJSON_Parse(reply->buf ? reply->buf : "");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	long n = cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
	cJSON_Delete(o);
	return n;
}

int request_carry(const struct request *rq, struct sb *reply,
		  struct request_out *out)
{
	memset(out, 0, sizeof(*out));
	out->n = -1;
	int owner = ask_owner(rq->id, rq->json, reply);
	if (owner < 0)
		return -owner;
	if (owner == 0) {
		out->by_owner = true;
		out->n = reply_count(reply, rq->count_key);
		return 0;
	}
	struct engine *e = engine_new(&home_, conf_, &rq->eo);
	int status = 0;
	out->took = engine_take(e, rq->id, -1, rq->take_flags);
	if (out->took == 0) {
		sb_reset(reply);
		out->n = rq->here(e, rq, reply);
		if (!rq->foreground || out->n <= 0)
			engine_settle(e);
		out->run_status = engine_run(e);
	} else if (out->took < 0) {
		status = EX_IOERR_;
	}
	engine_free(e);
	return status;
}

int each_batch(void (*fn)(void *arg, const char *id, int bfd), void *arg)
{
	return home_each_batch(&home_, fn, arg);
}

int cmd_number(const struct cmdopt *o, const char *cmd, long long lo,
	       long long hi, long long *v)
{
	char why[WHY_BUF];
	if (!o->seen)
		return 0;
	if (parse_int(last_value(o), lo, hi, v, why) < 0)
		return usage_error("%s: %s: %s", cmd, o->name, why);
	return 0;
}

int load_one_batch(char **pos, size_t npos, const char *cmd, struct batch *b,
		   int *dirfd)
{
	int rc;
	batch_init(b);
	*dirfd = -1;
	if (npos != 1)
		return usage_error("%s: name one batch", cmd);
	if ((rc = open_home()))
		return rc;
	batch_release(b);
	return load_batch(pos[0], b, dirfd);
}
