#include "classify.h"
#include "exec.h"
#include "util.h"

#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Escaped (sb_add_escaped) into dst, which it always fits whole. */
static void copy_escaped(char *dst, size_t n, const char *src)
{
	struct sb esc = SB_INIT;
	/* 3 bytes are left for the "..." of a cut string. */
	sb_add_escaped(&esc, src, n - 4);
	memcpy(dst, esc.buf ? esc.buf : "", esc.len);
	dst[esc.len] = '\0';
	sb_release(&esc);
}

static void copy_str(char *dst, size_t n, const cJSON *v)
{
	dst[0] = '\0';
	if (cJSON_IsString(v) && v->valuestring)
		copy_escaped(dst, n, v->valuestring);
}

int result_parse(const char *buf, size_t len, struct result *r)
{
	memset(r, 0, sizeof(*r));
	r->matches = -1;
	r->progress = -1;
	r->retryable = -1;
	r->retry_after_ms = -1;
	if (!buf || !len || len > RESULT_MAX_BYTES)
		return -1;
	cJSON *root = cJSON_ParseWithLength(buf, len);
	if (!root)
		return -1;
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return -1;
	}
	r->present = true;
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "matches");
	if (cJSON_IsNumber(m) && m->valuedouble >= 0 && m->valuedouble < 9e15)
		r->matches = (int64_t)m->valuedouble;
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "progress");
	if (cJSON_IsNumber(p) && isfinite(p->valuedouble)) {
		double v = p->valuedouble;
		v = v < 0 ? 0 : v > 1 ? 1 : v;
		r->progress = (int32_t)lround(v * 1000);
	}
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
	if (cJSON_IsObject(e)) {
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "category");
		if (cJSON_IsString(c) && c->valuestring)
			r->category = category_parse(c->valuestring);
		copy_str(r->type, sizeof(r->type),
			 cJSON_GetObjectItemCaseSensitive(e, "type"));
		copy_str(r->source, sizeof(r->source),
			 cJSON_GetObjectItemCaseSensitive(e, "source"));
		copy_str(r->message, sizeof(r->message),
			 cJSON_GetObjectItemCaseSensitive(e, "message"));
		const cJSON *rt = cJSON_GetObjectItemCaseSensitive(e, "retryable");
		if (cJSON_IsBool(rt))
			r->retryable = cJSON_IsTrue(rt);
		const cJSON *ra =
			cJSON_GetObjectItemCaseSensitive(e, "retry_after");
		if (cJSON_IsNumber(ra) && ra->valuedouble >= 0 &&
		    ra->valuedouble < 1e9)
			r->retry_after_ms = (int64_t)(ra->valuedouble * 1000);
	}
	cJSON_Delete(root);
	return 0;
}

static bool contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++)
		if (!strncasecmp(hay, needle, n))
			return true;
	return false;
}

/* The last few non-empty stderr lines, as one string, and the very last. */
static void stderr_lines(const char *tail, struct sb *recent, char *last,
			 size_t n)
{
	last[0] = '\0';
	if (!tail)
		return;
	const char *end = tail + strlen(tail);
	int lines = 0;
	const char *start = end;
	while (start > tail && lines < 5) {
		const char *e = start;
		while (e > tail && (e[-1] == '\n' || e[-1] == '\r'))
			e--;
		const char *b = e;
		while (b > tail && b[-1] != '\n')
			b--;
		if (e > b) {
			bool blank = true;
			for (const char *q = b; q < e; q++)
				blank &= isspace((unsigned char)*q) != 0;
			if (!blank) {
				if (!lines) {
					char *line = xstrndup(b, (size_t)(e - b));
					copy_escaped(last, n, line);
					free(line);
				}
				lines++;
			}
		}
		start = b;
	}
	sb_add(recent, start, (size_t)(end - start));
}

void classify(const struct outcome_in *in, struct verdict *v)
{
	const struct result *res = in->res;
	struct sb recent = SB_INIT;
	char last[MESSAGE_MAX], sig[32], dur[32];
	int st = in->wait_status;

	memset(v, 0, sizeof(*v));
	v->exit_code = -1;
	if (WIFEXITED(st))
		v->exit_code = WEXITSTATUS(st);
	else if (WIFSIGNALED(st))
		v->signal = WTERMSIG(st);

	if (in->exec_errno) {
		v->category = CAT_ENGINE;
		snprintf(v->message, sizeof(v->message), "cannot execute %s: %s",
			 in->exec_path ? in->exec_path : "agent",
			 strerror(in->exec_errno));
		return;
	}
	if (v->exit_code == 0 && !in->timed_out) {
		v->success = true;
		return;
	}

	stderr_lines(in->stderr_tail, &recent, last, sizeof(last));
	const char *txt = recent.buf ? recent.buf : "";
	int code = v->exit_code, sg = v->signal;
	bool cpu_limit = in->cpu_limit_ms > 0 &&
			 (sg == SIGXCPU || (sg == SIGKILL && !in->runner_killed &&
					    in->cpu_used_ms >= in->cpu_limit_ms));

	if (in->timed_out || cpu_limit)
		v->category = CAT_TIMEOUT;
	else if (res && res->present && res->category != CAT_NONE)
		v->category = res->category;
	else if ((sg == SIGKILL && !in->runner_killed) || code == 137 ||
		 contains_ci(txt, "out of memory") ||
		 contains_ci(txt, "cannot allocate memory") ||
		 contains_ci(txt, "memoryerror") || contains_ci(txt, "bad_alloc"))
		v->category = CAT_MEMORY;
	else if (code == 65 || code == 66)
		v->category = CAT_DATA;
	else if (code == 64)
		v->category = CAT_PARAM;
	else if (code == 70 || sg == SIGSEGV || sg == SIGBUS || sg == SIGABRT ||
		 sg == SIGFPE || sg == SIGILL)
		v->category = CAT_ENGINE;
	else if (contains_ci(txt, "missing") || contains_ci(txt, "no data") ||
		 contains_ci(txt, "not found"))
		v->category = CAT_DATA;
	else if (contains_ci(txt, "invalid") || contains_ci(txt, "parameter"))
		v->category = CAT_PARAM;
	else if (contains_ci(txt, "timed out"))
		v->category = CAT_TIMEOUT;
	else
		v->category = CAT_UNKNOWN;

	if (in->timed_out)
		snprintf(v->message, sizeof(v->message), "timed out after %s",
			 fmt_duration(in->timeout_ms, dur, sizeof(dur)));
	else if (cpu_limit)
		snprintf(v->message, sizeof(v->message),
			 "cpu_limit of %s exceeded (killed by %s)",
			 fmt_duration(in->cpu_limit_ms, dur, sizeof(dur)),
			 exec_signame(sg, sig, sizeof(sig)));
	else if (res && res->present && res->message[0])
		snprintf(v->message, sizeof(v->message), "%s", res->message);
	else if (last[0])
		snprintf(v->message, sizeof(v->message), "%s", last);
	else if (sg)
		snprintf(v->message, sizeof(v->message), "killed by %s",
			 exec_signame(sg, sig, sizeof(sig)));
	else
		snprintf(v->message, sizeof(v->message), "exit %d", code);
	sb_release(&recent);
}
