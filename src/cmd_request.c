/*
 * cmd_request: what users ask of batches and groups: retry-failed,
 * cancel, pause and resume, each carried out by the runner that holds the
 * batch (through state/control) or here.
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

/* --json of a request: {"target","kind","COUNT_KEY":n,"carried_by"}, to
 * which the caller may add; carried_by says who did it: "owner" (the
 * runner that holds the batch, or the daemon), "here" (this process), or
 * "recorded" (written down for the next runner). */
static cJSON *request_doc(const char *target, bool group, const char *key,
			  long n, const char *by)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "target", target);
	cJSON_AddStringToObject(o, "kind", group ? "group" : "batch");
	cJSON_AddNumberToObject(o, key, (double)(n > 0 ? n : 0));
	cJSON_AddStringToObject(o, "carried_by", by);
	return o;
}

struct retry_arg {
	unsigned categories;
	char **symbols;
	size_t nsymbols;
};

static int retry_here(struct engine *e, const struct request *rq,
		      struct sb *reply)
{
	const struct retry_arg *a = rq->arg;
	int n = engine_retry_failed(e, rq->id, a->categories, a->symbols,
				    a->nsymbols, reply);
	if (n > 0)
		info("batch %s: %d failed %s queued again", rq->id, n,
		     plural(n, "item", "items"));
	return n;
}

int cmd_retry_failed(void)
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
			   "batch, that runner takes the request).  --json: "
			   "{\"target\",\"kind\",\"requeued\",\"carried_by\"},\n"
			   "after the events of what ran here.");
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
	char *json = request_json("retry-failed", o[1].values, o[1].nvalues,
				  o[2].values, o[2].nvalues);
	struct retry_arg ra = { mask, o[2].values, o[2].nvalues };
	struct request rq = { .id = pos[0], .json = json, .count_key = "requeued",
			      .take_flags = TAKE_FINAL, .foreground = !o[3].seen,
			      .eo = engine_opts(), .here = retry_here, .arg = &ra };
	if (o[3].seen)
		rq.eo.summary = false;
	struct sb reply = SB_INIT;
	struct request_out out;
	int status = request_carry(&rq, &reply, &out);
	const char *id = pos[0];
	if (g.json && (out.by_owner || (!status && out.took <= 0)))
		meta_print_line(request_doc(id, false, "requeued", out.n,
					    out.by_owner ? "owner"
					    : o[3].seen  ? "recorded"
							 : "here"));
	if (out.by_owner) {
		if (verbosity >= 0 && !g.json)
			printf("batch %s: %ld failed %s queued again by the "
			       "runner that holds it\n",
			       id, out.n, plural(out.n, "item", "items"));
	} else if (!status && out.took > 0) {
		error("batch %s: another runner holds it; try again", id);
		status = EX_TEMPFAIL_;
	} else if (!status && !out.by_owner) {
		status = out.run_status;
		if (out.n == 0 && verbosity >= 0 && !g.json)
			printf("batch %s: no failed items match; nothing to "
			       "retry\n",
			       id);
		if (out.n == 0 || (o[3].seen && out.n > 0 &&
				   status <= EX_SOME_FAILED))
			status = 0;
		if (o[3].seen && out.n > 0 && verbosity >= 0 && !g.json)
			printf("batch %s: %ld failed %s queued again; the next "
			       "`runner run` or the daemon runs them\n",
			       id, out.n, plural(out.n, "item", "items"));
	}
	free(json);
	sb_release(&reply);
	free_cmd(o, NOPTS(o), pos);
	return status;
}

struct symbols_arg {
	char **symbols;
	size_t n;
	const char *reason;
};

static int cancel_here(struct engine *e, const struct request *rq,
		       struct sb *reply)
{
	const struct symbols_arg *a = rq->arg;
	return engine_cancel(e, rq->id, a->symbols, a->n, reply);
}

/* Cancel items of one batch (all, or those symbols).  *n gets the count;
 * the exit status. */
static int cancel_batch(const char *id, char **syms, size_t nsyms, long *n,
			bool *by_owner)
{
	char *json = request_json("cancel", NULL, 0, syms, nsyms);
	struct symbols_arg sa = { syms, nsyms, NULL };
	struct request rq = { .id = id, .json = json, .count_key = "cancelled",
			      .take_flags = TAKE_FINAL, .here = cancel_here,
			      .arg = &sa };
	struct sb reply = SB_INIT;
	struct request_out out;
	int status = request_carry(&rq, &reply, &out);
	if (!status && out.took > 0) {
		error("batch %s: another runner holds it; try again", id);
		status = EX_TEMPFAIL_;
	}
	*n = out.n;
	if (by_owner)
		*by_owner = out.by_owner;
	free(json);
	sb_release(&reply);
	return status;
}

/* runner cancel GROUP: every member not final, in every batch. */
static int cancel_group(const char *id)
{
	cJSON *jo = NULL, *jb = NULL;
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
	if (g.json) {
		jo = cJSON_CreateObject();
		jb = cJSON_CreateArray();
	}
	for (size_t k = 0; k < nb; k++) {
		long n;
		int st = batch_dir_exists(batches[k])
				 ? cancel_batch(batches[k], syms[k], nsyms[k], &n,
						NULL)
				 : (n = 0, 0); /* archived: final already */
		if (st > status)
			status = st;
		if (n > 0)
			total += n;
		if (jb) {
			cJSON *x = cJSON_CreateObject();
			cJSON_AddStringToObject(x, "batch_id", batches[k]);
			cJSON_AddNumberToObject(x, "cancelled", n > 0 ? (double)n : 0);
			cJSON_AddItemToArray(jb, x);
		} else if (n > 0 && verbosity >= 0)
			printf("batch %s: %ld item%s of group %s cancelled\n",
			       batches[k], n, n == 1 ? "" : "s", id);
		words_free(syms[k]);
		free(batches[k]);
	}
	if (jo) {
		cJSON_Delete(jo);
		jo = request_doc(id, true, "cancelled", total, "here");
		cJSON_AddItemToObject(jo, "batches", jb);
		meta_print_line(jo);
	} else if (verbosity >= 0)
		printf("group %s: %ld item%s cancelled in %zu batch%s\n", id,
		       total, total == 1 ? "" : "s", nb, nb == 1 ? "" : "es");
	free(batches);
	free(syms);
	free(nsyms);
	return status;
}

int cmd_cancel(void)
{
	struct cmdopt o[] = { { "--help" }, { "--symbol", true } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "cancel",
			   "usage: runner cancel TARGET [--symbol S]...\n\n"
			   "Cancel the batch's items that are not final (only the "
			   "named symbols,\nwith --symbol), or every member of a "
			   "failure group that is not final,\nin every batch.  "
			   "Running children get SIGTERM, then SIGKILL.  --json: "
			   "{\"target\",\"kind\",\"cancelled\",\"carried_by\"}.");
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
	bool by_owner = false;
	status = cancel_batch(id, o[1].values, o[1].nvalues, &n, &by_owner);
	if (n >= 0 && g.json)
		meta_print_line(request_doc(id, false, "cancelled", n,
					    by_owner ? "owner" : "here"));
	else if (n >= 0 && verbosity >= 0)
		printf("batch %s: %ld item%s cancelled\n", id, n,
		       n == 1 ? "" : "s");
	free_cmd(o, NOPTS(o), pos);
	return status;
}

static int pause_here(struct engine *e, const struct request *rq,
		      struct sb *reply)
{
	const struct symbols_arg *a = rq->arg;
	return engine_pause(e, rq->id, a->symbols, a->n, a->reason, reply);
}

int cmd_pause(void)
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
			   "attempts finish.  Go on with runner resume.\n--json: "
			   "{\"target\",\"kind\",\"paused\",\"carried_by\","
			   "\"not_paused\"}.");
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
		else if (g.json)
			meta_print_line(request_doc(id, true, "paused",
						    (long)gr->nm, "here"));
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
	struct symbols_arg sa = { o[1].values, o[1].nvalues, reason };
	struct request rq = { .id = id, .json = json, .count_key = "paused",
			      .take_flags = TAKE_FINAL, .here = pause_here,
			      .arg = &sa };
	struct sb reply = SB_INIT;
	struct request_out out;
	status = request_carry(&rq, &reply, &out);
	cJSON_free(json);
	long n = out.n;
	if (!status && out.took > 0) {
		error("batch %s: another runner holds it; try again", id);
		status = EX_TEMPFAIL_;
	}
	if (n >= 0 && g.json) {
		cJSON *jo = request_doc(id, false, "paused", n,
					out.by_owner ? "owner" : "here");
		cJSON *ro = cJSON_Parse(reply.buf ? reply.buf : "");
		cJSON *np = cJSON_DetachItemFromObjectCaseSensitive(ro,
								    "not_paused");
		cJSON_AddItemToObject(jo, "not_paused",
				      cJSON_IsArray(np) ? np : cJSON_CreateArray());
		if (!cJSON_IsArray(np))
			cJSON_Delete(np);
		cJSON_Delete(ro);
		meta_print_line(jo);
	} else if (n >= 0 && verbosity >= 0) {
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

static int resume_here(struct engine *e, const struct request *rq,
		       struct sb *reply)
{
	return engine_resume(e, rq->id, rq->arg, reply);
}

int cmd_resume(void)
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
			   "run here until they are final (--no-wait: only record it).\n"
			   "--json: {\"target\",\"kind\",\"resumed\",\"carried_by\","
			   "\"order\"}, after the events of what ran here.");
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
		long open_members = 0;
		for (size_t i = 0; i < gr->nm; i++)
			open_members += !gr->m[i].final;
		if (gr->status == GROUP_RESOLVED) {
			if (g.json) {
				cJSON *jo = request_doc(id, true, "resumed", 0,
							"here");
				cJSON_AddStringToObject(jo, "order", order);
				cJSON_AddStringToObject(jo, "status", "resolved");
				meta_print_line(jo);
			} else if (verbosity >= 0)
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
			if (g.json) {
				cJSON *jo = request_doc(id, true, "resumed",
							open_members,
							daemon ? "owner"
							       : "recorded");
				cJSON_AddStringToObject(jo, "order", order);
				meta_print_line(jo);
			} else if (verbosity >= 0)
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
		if (g.json) {
			cJSON *jo = request_doc(id, true, "resumed", open_members,
						"here");
			cJSON_AddStringToObject(jo, "order", order);
			meta_print_line(jo);
		}
		free_cmd(o, NOPTS(o), pos);
		return status;
	}
	char *json = xasprintf("{\"op\":\"resume\",\"order\":\"%s\"}", order);
	struct request rq = { .id = id, .json = json, .count_key = "resumed",
			      .take_flags = 0, .foreground = !o[2].seen,
			      .eo = engine_opts(), .here = resume_here,
			      .arg = order };
	if (o[2].seen)
		rq.eo.summary = false;
	struct sb reply = SB_INIT;
	struct request_out out;
	status = request_carry(&rq, &reply, &out);
	free(json);
	if (g.json && (out.by_owner || !status)) {
		cJSON *jo = request_doc(id, false, "resumed",
					out.by_owner || out.took <= 0 ? out.n : 0,
					out.by_owner ? "owner"
					: o[2].seen  ? "recorded"
						     : "here");
		cJSON_AddStringToObject(jo, "order", order);
		if (!out.by_owner && out.took > 0)
			cJSON_AddStringToObject(jo, "status", "final");
		meta_print_line(jo);
	}
	bool text = !g.json && verbosity >= 0;
	if (out.by_owner) {
		if (text)
			printf("batch %s: %ld %s resumed by the runner that "
			       "holds it\n",
			       id, out.n, plural(out.n, "item", "items"));
	} else if (!status && out.took > 0) {
		if (text)
			printf("batch %s is final: nothing to resume\n", id);
	} else if (!status) {
		if (text && o[2].seen)
			printf("batch %s: %ld %s resumed; the next runner run or "
			       "daemon runs them\n",
			       id, out.n, plural(out.n, "item", "items"));
		status = out.run_status;
		if (o[2].seen && status <= EX_SOME_FAILED)
			status = 0;
	}
	sb_release(&reply);
	free_cmd(o, NOPTS(o), pos);
	return status;
}
