/*
 * cmd_run: the commands that run batches or change the home: check, run,
 * daemon, submit (and following a submitted batch), archive, restore.
 */
#include "cli.h"
#include "runlog.h"
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

/* --json: the key that line `line` of text sets ("key = value"), or NULL. */
static cJSON *line_key(const char *text, size_t len, long line)
{
	const char *p = text, *end = text + len;
	for (long n = 1; n < line && p < end; n++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		p = nl ? nl + 1 : end;
	}
	const char *eol = memchr(p, '\n', (size_t)(end - p));
	if (!eol)
		eol = end;
	while (p < eol && (*p == ' ' || *p == '\t'))
		p++;
	const char *eq = memchr(p, '=', (size_t)(eol - p));
	if (!eq || p == eq || *p == '[' || *p == ';' || *p == '#')
		return cJSON_CreateNull();
	const char *k = eq;
	while (k > p && (k[-1] == ' ' || k[-1] == '\t'))
		k--;
	char key[128];
	if (k == p || (size_t)(k - p) >= sizeof(key))
		return cJSON_CreateNull();
	memcpy(key, p, (size_t)(k - p));
	key[k - p] = '\0';
	return utf8_valid(key, strlen(key)) ? cJSON_CreateString(key)
					    : cJSON_CreateNull();
}

/* --json: a job file's problems, [{"file","line","key","message",
 * "severity"}], from the diag's "FILE:LINE: [warning: ]message" lines. */
static cJSON *diag_json(const struct diag *d, const struct sb *text)
{
	cJSON *arr = cJSON_CreateArray();
	const char *p = d->text.buf ? d->text.buf : "";
	size_t flen = strlen(d->file);
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		char *msg = xasprintf("%.*s", (int)n, p);
		const char *m = msg;
		long line = 0;
		if (!strncmp(m, d->file, flen) && m[flen] == ':') {
			char *after;
			m += flen + 1;
			line = strtol(m, &after, 10);
			if (after != m && *after == ':')
				m = after + 1;
			else
				line = 0;
			while (*m == ' ')
				m++;
		}
		bool warn = !strncmp(m, "warning: ", 9);
		if (warn)
			m += 9;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "file", d->file);
		if (line > 0)
			cJSON_AddNumberToObject(o, "line", (double)line);
		else
			cJSON_AddNullToObject(o, "line");
		cJSON_AddItemToObject(o, "key",
				      line > 0 && text->buf
					      ? line_key(text->buf, text->len, line)
					      : cJSON_CreateNull());
		cJSON_AddStringToObject(o, "message", m);
		cJSON_AddStringToObject(o, "severity", warn ? "warning" : "error");
		cJSON_AddItemToArray(arr, o);
		free(msg);
		p += n + (nl ? 1 : 0);
	}
	if (d->suppressed) {
		cJSON *o = cJSON_CreateObject();
		char *m = xasprintf("... and %d more %s", d->suppressed,
				    d->suppressed == 1 ? "problem" : "problems");
		cJSON_AddStringToObject(o, "file", d->file);
		cJSON_AddNullToObject(o, "line");
		cJSON_AddNullToObject(o, "key");
		cJSON_AddStringToObject(o, "message", m);
		cJSON_AddStringToObject(o, "severity", "error");
		cJSON_AddItemToArray(arr, o);
		free(m);
	}
	return arr;
}

/* --json: a problem of a file that could not be read. */
static cJSON *read_error_json(const char *file, int err)
{
	cJSON *arr = cJSON_CreateArray(), *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "file", file);
	cJSON_AddNullToObject(o, "line");
	cJSON_AddNullToObject(o, "key");
	cJSON_AddStringToObject(o, "message",
				err ? strerror(err) : "not a readable job file");
	cJSON_AddStringToObject(o, "severity", "error");
	cJSON_AddItemToArray(arr, o);
	return arr;
}


int cmd_check(void)
{
	struct cmdopt o[] = { { "--help" } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "check",
			   "usage: runner check JOB... [--json]\n\nValidate job files against "
			   "runner-job(5) and the configuration;\nprint every problem "
			   "as FILE:LINE: message.  Exit 65 if any file is invalid.\n"
			   "--json: one object per file, {\"file\",\"ok\",\"diagnostics\"}.");
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
		errno = 0;
		if (job_read_path(pos[i], &text) < 0) {
			int err = errno;
			if (status != EX_INVALID_JOB)
				status = err == ENOENT ? EX_NO_SUCH
						       : EX_INVALID_JOB;
			if (g.json) {
				cJSON *jo = cJSON_CreateObject();
				cJSON_AddStringToObject(jo, "file", pos[i]);
				cJSON_AddFalseToObject(jo, "ok");
				cJSON_AddItemToObject(jo, "diagnostics",
						      read_error_json(pos[i], err));
				meta_print_line(jo);
			}
			sb_release(&text);
			continue;
		}
		bool valid = job_parse(&j, &d, text.buf ? text.buf : "",
				       text.len, conf_, home_.fd) == 0;
		if (!valid)
			status = EX_INVALID_JOB;
		if (g.json) {
			cJSON *jo = cJSON_CreateObject();
			cJSON_AddStringToObject(jo, "file", pos[i]);
			cJSON_AddBoolToObject(jo, "ok", valid);
			if (valid) {
				cJSON_AddStringToObject(jo, "agent", j.agent);
				if (j.id)
					cJSON_AddStringToObject(jo, "batch_id", j.id);
				else
					cJSON_AddNullToObject(jo, "batch_id");
				cJSON_AddNumberToObject(jo, "total_items",
							(double)j.nsymbols);
			}
			cJSON_AddItemToObject(jo, "diagnostics", diag_json(&d, &text));
			meta_print_line(jo);
		} else if (valid && verbosity >= 0) {
			printf("%s: ok: %zu %s, agent %s%s%s\n", pos[i],
			       j.nsymbols,
			       plural(j.nsymbols, "symbol", "symbols"),
			       j.agent, j.id ? ", id " : "",
			       j.id ? j.id : "");
		}
		if (!g.json)
			diag_print(&d);
		diag_release(&d);
		job_release(&j);
		sb_release(&text);
	}
	free_cmd(o, NOPTS(o), pos);
	return status;
}

int cmd_run(void)
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
	archive_recover(&home_);
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

int cmd_daemon(void)
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
	if (g.json || npos) {
		rc = g.json ? usage_error("--json is not supported by daemon")
			    : usage_error("daemon: unexpected argument %s", pos[0]);
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
	runlog_stderr(log); /* for journald, or whoever reads the daemon */
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
	archive_recover(&home_);
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
		if (batch_replay_dir(dirfd, &b) == 0)
			meta_print_summary(stdout, &b, now_ms(), SHOW_PATHS,
					   home_.path, view_shared());
		batch_release(&b);
	}
	if (dirfd >= 0)
		close(dirfd);
	return status;
}

int cmd_submit(void)
{
	struct cmdopt o[] = { { "--help" }, { "--wait" }, { "--id", true } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "submit",
			   "usage: runner submit JOB... [--wait] [--id ID] [--json]\n\n"
			   "Validate the job files (exit 65 with every problem, and "
			   "nothing placed),\ngive each an id if it has none, place it "
			   "in spool/ atomically and print\nthe batch id (\"duplicate "
			   "of BATCH\" for a duplicate).  --wait follows the\nbatch to "
			   "its final state (running it here when no daemon runs) and "
			   "exits\nlike run.  --id: the batch id of the one JOB "
			   "(which names none).  --json: one object per job file,\n"
			   "{\"job_file\",\"batch_id\",\"status\",...}.");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	if (!npos) {
		free_cmd(o, NOPTS(o), pos);
		return usage_error("submit: name at least one job file");
	}
	const char *id = last_value(&o[2]);
	if (id && (npos > 1 || !valid_batch_id(id))) {
		free_cmd(o, NOPTS(o), pos);
		return npos > 1 ? usage_error("submit: --id names one job's id")
				: usage_error("submit: --id '%s' is not a valid "
					      "batch id", id);
	}
	if ((rc = load_conf()) || (rc = open_home())) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	/* Every file valid, or nothing is placed. */
	struct sb *texts = xcalloc(npos, sizeof(struct sb));
	/* --json: each file's problems, and whether it had any. */
	cJSON **diags = xcalloc(npos, sizeof(cJSON *));
	bool *bad = xcalloc(npos, sizeof(bool));
	int status = 0;
	for (size_t i = 0; i < npos; i++) {
		struct job j = JOB_INIT;
		struct diag d = DIAG_INIT(pos[i]);
		errno = 0;
		if (job_read_path(pos[i], &texts[i]) < 0) {
			int err = errno;
			status = err == ENOENT && status != EX_INVALID_JOB
					 ? EX_NO_SUCH
					 : EX_INVALID_JOB;
			bad[i] = true;
			diags[i] = g.json ? read_error_json(pos[i], err) : NULL;
		} else {
			if (id) {
				struct sb with_id = SB_INIT;
				spool_add_id(texts[i].buf ? texts[i].buf : "",
					     texts[i].len, id, &with_id);
				sb_release(&texts[i]);
				texts[i] = with_id;
			}
			if (job_parse(&j, &d, texts[i].buf ? texts[i].buf : "",
				      texts[i].len, conf_, home_.fd) < 0) {
				status = EX_INVALID_JOB;
				bad[i] = true;
			}
			diags[i] = g.json ? diag_json(&d, &texts[i]) : NULL;
		}
		if (d.errors && !g.json)
			diag_print(&d);
		diag_release(&d);
		job_release(&j);
	}
	char **ids = xcalloc(npos + 1, sizeof(char *));
	size_t nids = 0;
	for (size_t i = 0; i < npos; i++) {
		struct claim_result res;
		const char *what = bad[i] ? "invalid" : "not_placed";
		int r = 0;
		memset(&res, 0, sizeof(res));
		if (!status) {
			int saved_v = verbosity;
			verbosity = -1; /* warnings: printed by the first pass */
			r = spool_submit(&home_, conf_, pos[i],
					 texts[i].buf ? texts[i].buf : "",
					 texts[i].len, &res);
			verbosity = saved_v;
			what = r < 0 ? "error"
			       : res.status == CLAIM_DUPLICATE ? "duplicate"
			       : res.status == CLAIM_OK	       ? "submitted"
								: "invalid";
		}
		if (g.json) {
			cJSON *jo = cJSON_CreateObject();
			cJSON_AddStringToObject(jo, "job_file", pos[i]);
			if (!status && res.status == CLAIM_OK)
				cJSON_AddStringToObject(jo, "batch_id", res.id);
			else
				cJSON_AddNullToObject(jo, "batch_id");
			cJSON_AddStringToObject(jo, "status", what);
			if (!status && res.status == CLAIM_DUPLICATE)
				cJSON_AddStringToObject(jo, "duplicate_of",
							res.dup_of);
			if (!status && res.status == CLAIM_OK)
				cJSON_AddNumberToObject(jo, "total_items",
							(double)res.nsymbols);
			cJSON_AddItemToObject(jo, "diagnostics", diags[i]);
			diags[i] = NULL;
			meta_print_line(jo);
		}
		if (status && !r)
			continue;
		if (r < 0) {
			status = EX_IOERR_;
		} else if (res.status == CLAIM_DUPLICATE) {
			if (!g.json)
				printf("duplicate of %s\n", res.dup_of);
		} else if (res.status == CLAIM_OK) {
			if (!g.json)
				printf("%s\n", res.id);
			ids[nids++] = xstrdup(res.id);
		} else {
			status = EX_INVALID_JOB;
		}
	}
	for (size_t i = 0; i < npos; i++)
		cJSON_Delete(diags[i]);
	free(diags);
	free(bad);
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

int cmd_archive(void)
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

/* --json of restore: the bytes and files of the regular files under fd
 * (closed), symlinks not followed, a bounded depth. */
static void tree_size(int fd, int depth, unsigned long long *bytes,
		      unsigned long long *files)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode)) {
			*bytes += (unsigned long long)st.st_size;
			(*files)++;
		} else if (S_ISDIR(st.st_mode) && depth < 8) {
			int sub = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
						 O_CLOEXEC);
			if (sub >= 0)
				tree_size(sub, depth + 1, bytes, files);
		}
	}
	closedir(d);
}

int cmd_restore(void)
{
	struct cmdopt o[] = { { "--help" } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "restore",
			   "usage: runner restore BATCH [--json]\n\n"
			   "Bring an archived batch back into batches/ (and its log "
			   "into logs/), checked\nagainst the archive's manifest; the "
			   "archive is then removed.  An archive that\nwould write "
			   "outside the batch directory is refused (exit 65).\n"
			   "--json: {\"batch_id\",\"path\",\"restored_files\","
			   "\"restored_bytes\"}.");
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
	if (rc == 0 && g.json) {
		int bfd = open_dir_at(home_.batches, pos[0]);
		unsigned long long bytes = 0, files = 0;
		if (bfd >= 0)
			tree_size(bfd, 0, &bytes, &files);
		cJSON *jo = cJSON_CreateObject();
		char *path = xasprintf("batches/%s", pos[0]);
		cJSON_AddStringToObject(jo, "batch_id", pos[0]);
		cJSON_AddStringToObject(jo, "path", path);
		cJSON_AddNumberToObject(jo, "restored_files", (double)files);
		cJSON_AddNumberToObject(jo, "restored_bytes", (double)bytes);
		meta_print_line(jo);
		free(path);
	} else if (rc == 0 && verbosity >= 0) {
		printf("restored %s into batches/%s\n", pos[0], pos[0]);
	}
	free_cmd(o, NOPTS(o), pos);
	return rc;
}
