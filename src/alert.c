#include "alert.h"
#include "conf.h"
#include "exec.h"
#include "util.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct hook_run {
	char *json;
	char *event, *message, *batch, *symbol, *group, *root_cause;
	pid_t pid;
	int64_t deadline_ns;
	bool killed;
};

struct alerts {
	struct home *h;
	const struct conf *c;
	int fd;
	struct hook_run *queue;	/* waiting, oldest first */
	size_t nqueue, capqueue;
	struct hook_run running[ALERT_HOOKS];
	size_t nrunning;
	bool warned_flood;
	int devnull;
};

struct alerts *alerts_open(struct home *h, const struct conf *c)
{
	struct alerts *a = xcalloc(1, sizeof(*a));
	a->h = h;
	a->c = c;
	a->fd = openat(h->logs, "alerts.jsonl",
		       O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
		       0644);
	if (a->fd < 0)
		warning("logs/alerts.jsonl: %s", strerror(errno));
	a->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	return a;
}

void alerts_set_conf(struct alerts *a, const struct conf *c)
{
	if (a)
		a->c = c;
}

static void run_free(struct hook_run *r)
{
	free(r->json);
	free(r->event);
	free(r->message);
	free(r->batch);
	free(r->symbol);
	free(r->group);
	free(r->root_cause);
	memset(r, 0, sizeof(*r));
}

static void add_str(cJSON *o, const char *k, const char *v)
{
	if (v)
		cJSON_AddStringToObject(o, k, v);
	else
		cJSON_AddNullToObject(o, k);
}

void alert_emit(struct alerts *a, const struct alert *al)
{
	char t[TIME_BUF];
	if (!a)
		return;
	cJSON *o = cJSON_CreateObject();
	add_str(o, "time", fmt_time(now_ms(), t));
	add_str(o, "time_at", t); /* the same: every time's name ends _at */
	add_str(o, "event", al->event);
	add_str(o, "batch_id", al->batch_id);
	add_str(o, "symbol", al->symbol);
	add_str(o, "group_id", al->group_id);
	add_str(o, "root_cause", al->root_cause);
	add_str(o, "message", al->message ? al->message : "");
	if (al->category)
		add_str(o, "category", al->category);
	if (al->error_type)
		add_str(o, "error_type", al->error_type);
	if (al->source)
		add_str(o, "source", al->source);
	if (al->status)
		add_str(o, "status", al->status);
	if (al->attempts >= 0)
		cJSON_AddNumberToObject(o, "attempts", (double)al->attempts);
	if (al->group_size >= 0)
		cJSON_AddNumberToObject(o, "group_size", (double)al->group_size);
	if (al->members >= 0)
		cJSON_AddNumberToObject(o, "members", (double)al->members);
	if (al->count >= 0)
		cJSON_AddNumberToObject(o, "count", (double)al->count);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!s)
		return;
	size_t n = strlen(s);
	char *line = xmalloc(n + 2);
	memcpy(line, s, n);
	line[n] = '\n';
	line[n + 1] = '\0';
	/* The line first, whole, in one write: it never depends on a hook. */
	if (a->fd >= 0 && write_all(a->fd, line, n + 1) < 0)
		warning("logs/alerts.jsonl: %s", strerror(errno));
	if (a->c && a->c->nnotify) {
		if (a->nqueue >= ALERT_QUEUE) {
			if (!a->warned_flood)
				warning("notify hook: more than %d alerts "
					"waiting; the oldest runs are dropped "
					"(logs/alerts.jsonl has every alert)",
					ALERT_QUEUE);
			a->warned_flood = true;
			run_free(&a->queue[0]);
			memmove(a->queue, a->queue + 1,
				(a->nqueue - 1) * sizeof(*a->queue));
			a->nqueue--;
		}
		GROW(a->queue, a->capqueue, a->nqueue + 1);
		struct hook_run *r = &a->queue[a->nqueue++];
		memset(r, 0, sizeof(*r));
		r->json = line;
		line = NULL;
		r->event = xstrdup(al->event);
		r->message = xstrdup(al->message ? al->message : "");
		r->batch = xstrdup(al->batch_id ? al->batch_id : "");
		r->symbol = xstrdup(al->symbol ? al->symbol : "");
		r->group = xstrdup(al->group_id ? al->group_id : "");
		r->root_cause = xstrdup(al->root_cause ? al->root_cause : "");
	}
	free(line);
	cJSON_free(s);
}

/* The alert JSON as an unlinked temp file: the hook's stdin. */
static int stdin_file(struct alerts *a, const char *json)
{
	int fd = openat(a->h->state, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (write_all(fd, json, strlen(json)) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void env_push(char ***env, size_t *n, size_t *cap, const char *k,
		     const char *v)
{
	GROW(*env, *cap, *n + 2);
	(*env)[(*n)++] = xasprintf("%s=%s", k, v ? v : "");
	(*env)[*n] = NULL;
}

void alerts_run_hooks(struct alerts *a, pid_t parent, const sigset_t *mask)
{
	if (!a || !a->c || !a->c->nnotify)
		return;
	while (a->nqueue && a->nrunning < ALERT_HOOKS) {
		struct hook_run r = a->queue[0];
		memmove(a->queue, a->queue + 1,
			(a->nqueue - 1) * sizeof(*a->queue));
		a->nqueue--;
		char **env = NULL;
		size_t n = 0, cap = 0;
		const char *keep[] = { "PATH", "HOME", "LANG", "TZ" };
		for (size_t i = 0; i < sizeof(keep) / sizeof(*keep); i++)
			if (getenv(keep[i]))
				env_push(&env, &n, &cap, keep[i], getenv(keep[i]));
		env_push(&env, &n, &cap, "RUNNER_EVENT", r.event);
		env_push(&env, &n, &cap, "RUNNER_MESSAGE", r.message);
		env_push(&env, &n, &cap, "RUNNER_BATCH_ID", r.batch);
		env_push(&env, &n, &cap, "RUNNER_SYMBOL", r.symbol);
		env_push(&env, &n, &cap, "RUNNER_GROUP_ID", r.group);
		env_push(&env, &n, &cap, "RUNNER_ROOT_CAUSE", r.root_cause);
		int in = stdin_file(a, r.json);
		int out = a->devnull;
		struct spawn s = {
			.path = a->c->notify_path,
			.argv = a->c->notify,
			.envp = env,
			.cwd_fd = a->h->fd,
			.stdin_fd = in >= 0 ? in : a->devnull,
			.stdout_fd = out,
			.stderr_fd = out,
			.keep_fd = -1,
			.child_mask = mask,
		};
		int exec_errno = 0;
		pid_t pid = exec_spawn(&s, parent, &exec_errno);
		if (in >= 0)
			close(in);
		words_free(env);
		if (pid < 0 || exec_errno) {
			warning("notify hook %s: %s", a->c->notify_path,
				strerror(pid < 0 ? errno : exec_errno));
			if (pid > 0) { /* it exits 127; reaped as a hook */
				r.deadline_ns = mono_ns();
				r.pid = pid;
				a->running[a->nrunning++] = r;
				continue;
			}
			run_free(&r);
			continue;
		}
		r.pid = pid;
		r.deadline_ns = mono_ns() + ALERT_HOOK_TIMEOUT_MS * 1000000LL;
		a->running[a->nrunning++] = r;
	}
}

bool alerts_reaped(struct alerts *a, pid_t pid)
{
	if (!a)
		return false;
	for (size_t i = 0; i < a->nrunning; i++) {
		if (a->running[i].pid != pid)
			continue;
		/* Whatever the hook left in its group went with it (killed
		 * before it was reaped, while its group id was still its). */
		run_free(&a->running[i]);
		a->running[i] = a->running[--a->nrunning];
		return true;
	}
	return false;
}

bool alerts_owns(const struct alerts *a, pid_t pid)
{
	if (!a)
		return false;
	for (size_t i = 0; i < a->nrunning; i++)
		if (a->running[i].pid == pid)
			return true;
	return false;
}

size_t alerts_abandon(struct alerts *a)
{
	if (!a)
		return 0;
	size_t dropped = a->nqueue;
	for (size_t i = 0; i < a->nqueue; i++)
		run_free(&a->queue[i]);
	a->nqueue = 0;
	/* Each stays among the running until it is reaped (alerts_reaped):
	 * its pid, the group's id, cannot be reused before that. */
	for (size_t i = 0; i < a->nrunning; i++)
		if (!a->running[i].killed) {
			exec_kill_group(a->running[i].pid, SIGKILL);
			a->running[i].killed = true;
		}
	return dropped;
}

void alerts_check(struct alerts *a)
{
	int64_t now = mono_ns();
	if (!a)
		return;
	for (size_t i = 0; i < a->nrunning; i++) {
		struct hook_run *r = &a->running[i];
		if (!r->killed && now >= r->deadline_ns) {
			warning("notify hook pid %d: no exit after %d ms; killed",
				(int)r->pid, ALERT_HOOK_TIMEOUT_MS);
			exec_kill_group(r->pid, SIGKILL);
			r->killed = true;
		}
	}
}

int64_t alerts_next_ns(const struct alerts *a)
{
	int64_t best = 0;
	if (!a)
		return 0;
	for (size_t i = 0; i < a->nrunning; i++)
		if (!a->running[i].killed &&
		    (!best || a->running[i].deadline_ns < best))
			best = a->running[i].deadline_ns;
	return best;
}

size_t alerts_busy(const struct alerts *a)
{
	return a ? a->nqueue + a->nrunning : 0;
}

void alerts_close(struct alerts *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nqueue; i++)
		run_free(&a->queue[i]);
	free(a->queue);
	for (size_t i = 0; i < a->nrunning; i++)
		run_free(&a->running[i]);
	if (a->fd >= 0)
		close(a->fd);
	if (a->devnull >= 0)
		close(a->devnull);
	free(a);
}
