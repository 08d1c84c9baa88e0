#include "classify.h"
#include "exec.h"
#include "util.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

/*
 * Why buf, which cJSON refused, is no JSON object.  Text that ends inside
 * a string or an open object or array was cut short, by far the likeliest
 * story of an agent's result (killed mid-write, a full disk, a buffer never
 * flushed); say so, and say where anything else went wrong.
 */
static void why_unparsed(const char *buf, size_t len, const char *err,
			 char *why, size_t n)
{
	int depth = 0, deepest = 0;
	bool str = false, esc = false;
	size_t end = len;
	while (end && isspace((unsigned char)buf[end - 1]))
		end--;
	for (size_t i = 0; i < end; i++) {
		char c = buf[i];
		if (str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				str = false;
		} else if (c == '"') {
			str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > deepest)
				deepest = depth;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	if (!end)
		snprintf(why, n, "empty");
	else if (deepest > CJSON_NESTING_LIMIT)
		snprintf(why, n, "nested deeper than %d levels",
			 CJSON_NESTING_LIMIT);
	else if (str || depth > 0)
		snprintf(why, n, "truncated after %zu bytes", len);
	else if (err && err >= buf && err < buf + len)
		snprintf(why, n, "invalid JSON at byte %zu",
			 (size_t)(err - buf) + 1);
	else
		snprintf(why, n, "invalid JSON");
}

static const char *json_kind(const cJSON *v)
{
	return cJSON_IsArray(v) ? "an array" : cJSON_IsString(v) ? "a string"
	       : cJSON_IsNumber(v) ? "a number" : cJSON_IsNull(v) ? "null"
	       : "a boolean";
}

static int parse_doc(const char *buf, size_t len, struct result *r,
		     struct result_doc *doc);

int result_parse(const char *buf, size_t len, struct result *r)
{
	return parse_doc(buf, len, r, NULL);
}

static int parse_doc(const char *buf, size_t len, struct result *r,
		     struct result_doc *doc)
{
	memset(r, 0, sizeof(*r));
	r->matches = -1;
	r->progress = -1;
	r->retryable = -1;
	r->retry_after_ms = -1;
	if (!buf)
		return -1;
	if (len > RESULT_MAX_BYTES) {
		snprintf(r->unreadable, sizeof(r->unreadable),
			 "%zu bytes, over the %u MiB limit", len,
			 RESULT_MAX_BYTES >> 20);
		return -1;
	}
	const char *err = NULL;
	cJSON *root = len ? cJSON_ParseWithLengthOpts(buf, len, &err, 0) : NULL;
	if (!root) {
		why_unparsed(buf, len, err, r->unreadable,
			     sizeof(r->unreadable));
		return -1;
	}
	if (!cJSON_IsObject(root)) {
		snprintf(r->unreadable, sizeof(r->unreadable),
			 "not a JSON object but %s", json_kind(root));
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
	if (doc) {
		char *text = cJSON_PrintUnformatted(root);
		doc->full = text ? strlen(text) : 0;
		if (text && doc->full <= doc->max)
			doc->text = text;
		else
			free(text);
	}
	cJSON_Delete(root);
	return 0;
}

void result_load(int dirfd, const char *path, struct result *r,
		 struct result_doc *doc)
{
	struct sb buf = SB_INIT;
	struct stat st;
	result_parse(NULL, 0, r);
	int fd = openat(dirfd, path,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			snprintf(r->unreadable, sizeof(r->unreadable),
				 "cannot open: %s", strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0)
		snprintf(r->unreadable, sizeof(r->unreadable),
			 "cannot stat: %s", strerror(errno));
	else if (!S_ISREG(st.st_mode))
		snprintf(r->unreadable, sizeof(r->unreadable),
			 "not a regular file");
	else if (st.st_size > (off_t)RESULT_MAX_BYTES)
		snprintf(r->unreadable, sizeof(r->unreadable),
			 "%lld bytes, over the %u MiB limit",
			 (long long)st.st_size, RESULT_MAX_BYTES >> 20);
	else if (read_fd_bounded(fd, RESULT_MAX_BYTES, &buf) < 0)
		snprintf(r->unreadable, sizeof(r->unreadable),
			 "cannot read: %s",
			 errno == EFBIG ? "it grew past the limit while read"
					: strerror(errno));
	else
		parse_doc(buf.buf ? buf.buf : "", buf.len, r, doc);
	close(fd);
	sb_release(&buf);
}

static bool contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++)
		if (!strncasecmp(hay, needle, n))
			return true;
	return false;
}

/* ---- stderr patterns ---- */

/*
 * The built-in set, tried after an agent's and the home's own patterns.
 * Specific wording comes first, so that a line naming both a rate limit and
 * missing data (some vendors report a throttled request as "possibly
 * delisted") is retried; the SPEC's generic keywords come last, in the
 * SPEC's order.  The six categories are fixed: the failures of the world
 * outside the agent that pass (a rate limit, a refused or reset
 * connection, a name that did not resolve, a socket timeout) are all
 * "timeout", the one category that means "try again later" and is retried
 * by default.  Python's lookup and value errors are "data_error": in an
 * analysis of one symbol's data a KeyError, IndexError or ValueError is
 * almost always a column, date or row that symbol does not have, and
 * whether it is that or a bug, running it again gives the same answer.
 */
static const struct { const char *pattern; int category; } builtin[] = {
	/* rate limits */
	{ "Too Many Requests", CAT_TIMEOUT },
	{ "rate limit", CAT_TIMEOUT },
	{ "ratelimit", CAT_TIMEOUT },
	{ "HTTP Error 429", CAT_TIMEOUT },
	{ "HTTP 429", CAT_TIMEOUT },
	{ "status code 429", CAT_TIMEOUT },
	/* timeouts of a request */
	{ "TimeoutError", CAT_TIMEOUT },
	{ "socket.timeout", CAT_TIMEOUT },
	{ "ReadTimeout", CAT_TIMEOUT },
	{ "ConnectTimeout", CAT_TIMEOUT },
	/* the network */
	{ "ConnectionError", CAT_TIMEOUT },
	{ "ConnectionRefusedError", CAT_TIMEOUT },
	{ "ConnectionResetError", CAT_TIMEOUT },
	{ "ConnectionAbortedError", CAT_TIMEOUT },
	{ "RemoteDisconnected", CAT_TIMEOUT },
	{ "Connection refused", CAT_TIMEOUT },
	{ "Connection reset", CAT_TIMEOUT },
	{ "Connection aborted", CAT_TIMEOUT },
	{ "name resolution", CAT_TIMEOUT },
	{ "NameResolutionError", CAT_TIMEOUT },
	{ "Name or service not known", CAT_TIMEOUT },
	{ "Network is unreachable", CAT_TIMEOUT },
	{ "No route to host", CAT_TIMEOUT },
	/* the data of the symbol */
	{ "No price data found", CAT_DATA },
	{ "delisted", CAT_DATA },
	{ "FileNotFoundError", CAT_DATA },
	{ "KeyError", CAT_DATA },
	{ "IndexError", CAT_DATA },
	{ "ValueError", CAT_DATA },
	{ "EmptyDataError", CAT_DATA },
	/* the SPEC's keywords */
	{ "missing", CAT_DATA },
	{ "no data", CAT_DATA },
	{ "not found", CAT_DATA },
	{ "invalid", CAT_PARAM },
	{ "parameter", CAT_PARAM },
	{ "timed out", CAT_TIMEOUT },
};

int classify_pattern_check(const char *s, char *why)
{
	size_t n = strlen(s);
	if (!n) {
		snprintf(why, WHY_BUF, "empty pattern");
		return -1;
	}
	if (n > CLASSIFY_PATTERN_MAX) {
		snprintf(why, WHY_BUF, "pattern longer than %d bytes",
			 CLASSIFY_PATTERN_MAX);
		return -1;
	}
	/* A stderr line has no newline; a tab it may have. */
	if (has_control(s, true)) {
		snprintf(why, WHY_BUF, "control character in pattern");
		return -1;
	}
	return 0;
}

void classify_rules_add(struct classify_rules *rs, const char *pattern,
			int category)
{
	GROW(rs->v, rs->cap, rs->n + 1);
	rs->v[rs->n].pattern = xstrdup(pattern);
	rs->v[rs->n].category = category;
	rs->n++;
}

void classify_rules_release(struct classify_rules *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->n; i++)
		free(rs->v[i].pattern);
	free(rs->v);
	rs->v = NULL;
	rs->n = rs->cap = 0;
}

static const char *find_ci(const char *h, size_t hn, const char *s, size_t sn)
{
	for (size_t i = 0; i + sn <= hn; i++)
		if (!strncasecmp(h + i, s, sn))
			return h + i;
	return NULL;
}

/* pat somewhere in line[0, len), '*' matching any run of bytes. */
static bool pattern_in(const char *line, size_t len, const char *pat)
{
	const char *p = line, *end = line + len;
	while (*pat) {
		if (*pat == '*') {
			pat++;
			continue;
		}
		size_t n = strcspn(pat, "*");
		const char *hit = find_ci(p, (size_t)(end - p), pat, n);
		if (!hit)
			return false;
		p = hit + n;
		pat += n;
	}
	return true;
}

int classify_line(const struct classify_rules *rs, const char *line,
		  size_t len)
{
	for (size_t i = 0; rs && i < rs->n; i++)
		if (pattern_in(line, len, rs->v[i].pattern))
			return rs->v[i].category;
	if (rs && !rs->builtin)
		return CAT_NONE;
	for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
		if (pattern_in(line, len, builtin[i].pattern))
			return builtin[i].category;
	return CAT_NONE;
}

/* The category of the last line of txt that a pattern matches. */
static int match_lines(const struct classify_rules *rs, const char *txt)
{
	const char *end = txt + strlen(txt);
	while (end > txt) {
		const char *e = end;
		while (e > txt && (e[-1] == '\n' || e[-1] == '\r'))
			e--;
		const char *b = e;
		while (b > txt && b[-1] != '\n')
			b--;
		bool blank = true;
		for (const char *q = b; q < e && blank; q++)
			blank = isspace((unsigned char)*q) != 0;
		int cat = blank ? CAT_NONE
				: classify_line(rs, b, (size_t)(e - b));
		if (cat != CAT_NONE)
			return cat;
		end = b;
	}
	return CAT_NONE;
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

/* An attempt that left a result file nobody can read lost what it said. */
static void result_warning(const struct outcome_in *in, struct verdict *v)
{
	const struct result *res = in->res;
	if (!res || !res->unreadable[0] || in->timed_out || in->runner_killed)
		return;
	snprintf(v->warning, sizeof(v->warning),
		 "result JSON unreadable: %s; %s", res->unreadable,
		 v->success ? "its figures are lost"
			    : "its error details are lost (classified by "
			      "exit status and stderr)");
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
		result_warning(in, v);
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
	else if ((v->category = match_lines(in->rules, txt)) == CAT_NONE)
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
	result_warning(in, v);
	sb_release(&recent);
}
