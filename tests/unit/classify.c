/*
 * classify: result JSON parsing and the SPEC 6.2 category precedence
 * (src/classify.h).
 */
#include "classify.h"
#include "util.h"
#include "scratch.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


#ifndef W_EXITCODE
#define W_EXITCODE(ret, sig) ((ret) << 8 | (sig))
#endif
#define EXITED(code) W_EXITCODE((code), 0)
#define KILLED(sig) ((sig) & 0x7f)
#define KILLED_CORE(sig) (((sig) & 0x7f) | 0x80)

static int parse(const char *json, struct result *r)
{
	return result_parse(json, strlen(json), r);
}

static bool unset(const struct result *r)
{
	return r->matches == -1 && r->progress == -1 && r->category == CAT_NONE &&
	       r->retryable == -1 && r->retry_after_ms == -1 && !r->type[0] &&
	       !r->source[0] && !r->message[0];
}

static void test_result_parse(void)
{
	struct result r;

	ok(parse("{\"matches\": 12, \"metrics\": {\"total_return\": 0.18, \"sharpe\": 1.3},"
		 " \"progress\": 0.4,"
		 " \"error\": {\"type\": \"RateLimitError\", \"category\": \"data_error\","
		 " \"source\": \"koyfin\", \"message\": \"429 Too Many Requests\","
		 " \"retryable\": true, \"retry_after\": 60}}", &r) == 0,
	   "the SPEC's example parses");
	ok(r.present, "present");
	is_int(r.matches, 12, "matches");
	is_int(r.progress, 400, "progress 0.4 -> 400 permille");
	is_int(r.category, CAT_DATA, "category data_error");
	is_int(r.retryable, 1, "retryable");
	is_int(r.retry_after_ms, 60000, "retry_after 60 s");
	is_str(r.type, "RateLimitError", "type");
	is_str(r.source, "koyfin", "source");
	is_str(r.message, "429 Too Many Requests", "message");

	ok(parse("{}", &r) == 0 && r.present && unset(&r),
	   "{}: present, every field at its default (-1, CAT_NONE, empty)");
	ok(parse("{\"error\": {}}", &r) == 0 && r.present && unset(&r),
	   "an empty error object: defaults");
	ok(parse("{\"error\": \"boom\", \"matches\": \"12\", \"progress\": \"0.5\"}", &r) == 0 &&
		   unset(&r),
	   "fields of the wrong type are ignored");
	ok(parse("{\"matches\": 3}", &r) == 0 && r.matches == 3 && r.progress == -1 &&
		   r.category == CAT_NONE && r.retry_after_ms == -1,
	   "only matches");

	static const char *const cats[] = { "data_error", "parameter_error", "engine_error",
					    "timeout", "memory_error", "unknown" };
	int good = 1;
	for (int c = 0; c < 6; c++) {
		char buf[128];
		snprintf(buf, sizeof(buf), "{\"error\": {\"category\": \"%s\"}}", cats[c]);
		good &= parse(buf, &r) == 0 && r.category == CAT_DATA + c;
	}
	ok(good, "each of the six categories is recognised");
	ok(parse("{\"error\": {\"category\": \"bogus\"}}", &r) == 0 && r.present &&
		   r.category == CAT_NONE,
	   "an unknown category string -> CAT_NONE");
	ok(parse("{\"error\": {\"category\": \"DATA_ERROR\"}}", &r) == 0 &&
		   r.category == CAT_NONE,
	   "category names are case-sensitive");
	ok(parse("{\"error\": {\"category\": 2}}", &r) == 0 && r.category == CAT_NONE,
	   "a numeric category -> CAT_NONE");
	ok(parse("{\"error\": {\"category\": \"\"}}", &r) == 0 && r.category == CAT_NONE,
	   "an empty category -> CAT_NONE");

	/* Not an object, not JSON. */
	static const char *const notobj[] = { "[1,2]", "42", "\"str\"", "null", "true", "[]" };
	for (size_t i = 0; i < sizeof(notobj) / sizeof(notobj[0]); i++)
		ok(parse(notobj[i], &r) == -1 && !r.present && unset(&r),
		   "not an object: %s", notobj[i]);
	static const char *const invalid[] = { "{", "{\"a\":}", "{'a': 1}", "}", "nul",
					       "{\"a\" 1}", "\xff\xfe{}" };
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		ok(parse(invalid[i], &r) == -1 && !r.present,
		   "invalid JSON %zu rejected", i);
	ok(result_parse("", 0, &r) == -1 && !r.present, "empty input");
	ok(result_parse(NULL, 5, &r) == -1 && !r.present, "NULL input");
	/* The length bounds the parse. */
	ok(result_parse("{\"matches\": 12}", 5, &r) == -1,
	   "the length is honoured (a cut object is invalid)");

	/* Size limit. */
	{
		size_t n = RESULT_MAX_BYTES + 1;
		char *big = malloc(n + 1);
		memset(big, ' ', n);
		memcpy(big, "{\"matches\": 7}", 14);
		big[n] = '\0';
		ok(result_parse(big, n, &r) == -1 && !r.present,
		   "a result of RESULT_MAX_BYTES + 1 is rejected");
		ok(result_parse(big, n - 1, &r) == 0 && r.matches == 7,
		   "a result of exactly RESULT_MAX_BYTES is read");
		free(big);
	}

	/* Deep nesting: no crash, rejected (cJSON's nesting limit). */
	{
		enum { DEPTH = 10000 };
		char *deep = malloc(DEPTH * 8 + 64);
		size_t n = 0;
		for (int i = 0; i < DEPTH; i++)
			deep[n++] = '[';
		for (int i = 0; i < DEPTH; i++)
			deep[n++] = ']';
		ok(result_parse(deep, n, &r) == -1, "10000 nested arrays: rejected, no crash");
		n = 0;
		n += (size_t)sprintf(deep, "{\"metrics\":");
		for (int i = 0; i < DEPTH; i++)
			n += (size_t)sprintf(deep + n, "{\"a\":");
		deep[n++] = '1';
		for (int i = 0; i <= DEPTH; i++)
			deep[n++] = '}';
		ok(result_parse(deep, n, &r) == -1, "10000 nested objects: rejected, no crash");
		n = 0;
		for (int i = 0; i < DEPTH; i++)
			deep[n++] = '[';
		ok(result_parse(deep, n, &r) == -1, "10000 unclosed brackets: rejected, no crash");
		n = (size_t)sprintf(deep, "{\"matches\": 5, \"metrics\":");
		for (int i = 0; i < 100; i++)
			deep[n++] = '[';
		for (int i = 0; i < 100; i++)
			deep[n++] = ']';
		deep[n++] = '}';
		ok(result_parse(deep, n, &r) == 0 && r.matches == 5,
		   "100 levels of nesting are fine");
		free(deep);
	}

	/* Control characters are escaped. */
	ok(parse("{\"error\": {\"message\": \"line1\\nline2\\u0001\\u001b[31mred\\ttab\\r\\u007f\","
		 " \"type\": \"T\\u0000ype\", \"source\": \"s\\u0007rc\"}}", &r) == 0,
	   "a message with control characters parses");
	is_str(r.message, "line1\\nline2\\x01\\x1b[31mred\\ttab\\r\\x7f",
	       "control characters in the message are escaped");
	ok(!has_control(r.message, false), "no raw control character is left in the message");
	ok(!has_control(r.type, false) && !has_control(r.source, false),
	   "nor in type or source (%s, %s)", r.type, r.source);
	ok(parse("{\"error\": {\"message\": \"ünïcødé ✓ 株式\"}}", &r) == 0 &&
		   !strcmp(r.message, "ünïcødé ✓ 株式"),
	   "UTF-8 in the message is kept as it is");

	/* Long strings are bounded. */
	{
		size_t n = 20000;
		char *json = malloc(n + 20000);
		int k = sprintf(json, "{\"error\": {\"message\": \"");
		memset(json + k, 'm', n);
		k += (int)n;
		k += sprintf(json + k, "\", \"type\": \"");
		memset(json + k, 't', 500);
		k += 500;
		k += sprintf(json + k, "\"}}");
		int rc = result_parse(json, (size_t)k, &r);
		ok(rc == 0 &&
			   strlen(r.message) < MESSAGE_MAX && strlen(r.type) < sizeof(r.type) &&
			   strlen(r.message) > 900 && str_has_suffix(r.message, "..."),
		   "long message and type are truncated with ... (%zu, %zu bytes)",
		   strlen(r.message), strlen(r.type));
		/* A long run of control characters (4 bytes escaped each). */
		k = sprintf(json, "{\"error\": {\"message\": \"");
		for (int i = 0; i < 2000; i++)
			k += sprintf(json + k, "\\u0001");
		k += sprintf(json + k, "\"}}");
		ok(result_parse(json, (size_t)k, &r) == 0 &&
			   strlen(r.message) < MESSAGE_MAX && !has_control(r.message, false),
		   "2000 escaped control characters fit the buffer");
		/* Multi-byte UTF-8 at the cut. */
		k = sprintf(json, "{\"error\": {\"message\": \"a");
		for (int i = 0; i < 2000; i++)
			k += sprintf(json + k, "é");
		k += sprintf(json + k, "\", \"type\": \"x");
		for (int i = 0; i < 200; i++)
			k += sprintf(json + k, "✓");
		k += sprintf(json + k, "\"}}");
		ok(result_parse(json, (size_t)k, &r) == 0, "long UTF-8 message parses");
		ok(utf8_valid(r.message, strlen(r.message)) &&
				utf8_valid(r.type, strlen(r.type)),
			"a truncated UTF-8 message/type is still valid UTF-8 (message %s, type %s)",
			utf8_valid(r.message, strlen(r.message)) ? "valid" : "invalid",
			utf8_valid(r.type, strlen(r.type)) ? "valid" : "invalid");
		free(json);
	}

	/* progress */
	static const struct { const char *v; int want; } prog[] = {
		{ "0", 0 }, { "1", 1000 }, { "0.4", 400 }, { "0.0005", 1 },
		{ "-0.5", 0 }, { "1.5", 1000 }, { "-1e308", 0 }, { "1e308", 1000 },
		{ "0.9996", 1000 }, { "\"0.5\"", -1 }, { "null", -1 }, { "true", -1 },
	};
	for (size_t i = 0; i < sizeof(prog) / sizeof(prog[0]); i++) {
		char buf[128];
		snprintf(buf, sizeof(buf), "{\"progress\": %s}", prog[i].v);
		ok(parse(buf, &r) == 0 && r.progress == prog[i].want,
		   "progress %s -> %d (got %d)", prog[i].v, prog[i].want, r.progress);
	}

	/* matches */
	static const struct { const char *v; long long want; } mt[] = {
		{ "0", 0 }, { "12", 12 }, { "12.7", 12 }, { "-5", -1 }, { "1e20", -1 },
		{ "\"12\"", -1 }, { "4503599627370496", 4503599627370496LL },
	};
	for (size_t i = 0; i < sizeof(mt) / sizeof(mt[0]); i++) {
		char buf[128];
		snprintf(buf, sizeof(buf), "{\"matches\": %s}", mt[i].v);
		ok(parse(buf, &r) == 0 && r.matches == mt[i].want,
		   "matches %s -> %lld (got %lld)", mt[i].v, mt[i].want, (long long)r.matches);
	}

	/* retry_after, retryable */
	static const struct { const char *v; long long want; } ra[] = {
		{ "60", 60000 }, { "0", 0 }, { "0.5", 500 }, { "-1", -1 },
		{ "1e10", -1 }, { "\"60\"", -1 }, { "86400", 86400000 },
	};
	for (size_t i = 0; i < sizeof(ra) / sizeof(ra[0]); i++) {
		char buf[128];
		snprintf(buf, sizeof(buf), "{\"error\": {\"retry_after\": %s}}", ra[i].v);
		ok(parse(buf, &r) == 0 && r.retry_after_ms == ra[i].want,
		   "retry_after %s -> %lld ms (got %lld)", ra[i].v, ra[i].want,
		   (long long)r.retry_after_ms);
	}
	ok(parse("{\"error\": {\"retryable\": false}}", &r) == 0 && r.retryable == 0,
	   "retryable false -> 0");
	ok(parse("{\"error\": {\"retryable\": \"yes\"}}", &r) == 0 && r.retryable == -1,
	   "retryable \"yes\" -> unset");
	ok(parse("{\"retry_after\": 60, \"category\": \"data_error\"}", &r) == 0 &&
		   r.retry_after_ms == -1 && r.category == CAT_NONE,
	   "error fields outside \"error\" are ignored");
}

/* ---- classify ---- */

static struct verdict V;

static const struct verdict *cl(int status, bool timed_out, bool runner_killed,
				const struct result *res, const char *err)
{
	struct outcome_in in = {
		.wait_status = status,
		.timed_out = timed_out,
		.runner_killed = runner_killed,
		.timeout_ms = 90000,
		.res = res,
		.stderr_tail = err,
	};
	classify(&in, &V);
	return &V;
}

static void cat_at(const struct verdict *v, int c, const char *msg,
		   const char *name, int line)
{
	tap_ok_at(!v->success && v->category == c && (!msg || !strcmp(v->message, msg)),
		  __FILE__, line, "%s -> %s%s%s (got %s, \"%s\")", name,
		  category_name(c), msg ? ", " : "", msg ? msg : "",
		  v->success ? "success" : category_name(v->category), v->message);
}
#define CAT(v, c, msg, name) cat_at((v), (c), (msg), (name), __LINE__)

static void test_classify(void)
{
	struct result res, bogus, nomsg;
	const struct verdict *v;

	result_parse("{\"error\": {\"category\": \"parameter_error\", \"message\": \"bad lookback\"}}",
		     strlen("{\"error\": {\"category\": \"parameter_error\", \"message\": \"bad lookback\"}}"),
		     &res);
	const char *bj = "{\"error\": {\"category\": \"bogus\", \"message\": \"from json\"}}";
	result_parse(bj, strlen(bj), &bogus);
	const char *nj = "{\"matches\": 3, \"error\": {\"category\": \"data_error\"}}";
	result_parse(nj, strlen(nj), &nomsg);

	/* Success. */
	v = cl(EXITED(0), false, false, NULL, "some warning\n");
	ok(v->success && v->category == CAT_NONE && v->exit_code == 0 && v->signal == 0,
	   "exit 0 -> success, no category");
	v = cl(EXITED(0), false, false, &res, "Error: invalid\n");
	ok(v->success && v->category == CAT_NONE,
	   "exit 0 with an error in the result JSON is still a success");

	/* 1. timeout beats everything. */
	CAT(cl(KILLED(SIGKILL), true, true, &res, "out of memory\n"), CAT_TIMEOUT,
	    "timed out after 1m30s", "runner timeout + result category + OOM words");
	CAT(cl(KILLED(SIGTERM), true, true, NULL, NULL), CAT_TIMEOUT,
	    "timed out after 1m30s", "runner timeout by SIGTERM");
	CAT(cl(EXITED(65), true, true, NULL, "missing data\n"), CAT_TIMEOUT, NULL,
	    "timeout beats exit 65 and keywords");
	CAT(cl(EXITED(0), true, true, NULL, NULL), CAT_TIMEOUT, NULL,
	    "exit 0 after the runner's timeout kill");
	{
		struct outcome_in in = { .wait_status = KILLED(SIGKILL), .timed_out = true,
					 .timeout_ms = 1500 };
		classify(&in, &V);
		is_str(V.message, "timed out after 1.5s", "timeout message uses the duration");
	}

	/* 2. result category beats exit codes, signals and stderr. */
	CAT(cl(EXITED(137), false, false, &res, "out of memory\n"), CAT_PARAM,
	    "bad lookback", "result category beats exit 137 and OOM words");
	CAT(cl(EXITED(65), false, false, &res, NULL), CAT_PARAM, "bad lookback",
	    "result category beats exit 65");
	CAT(cl(KILLED(SIGSEGV), false, false, &res, NULL), CAT_PARAM, NULL,
	    "result category beats SIGSEGV");
	CAT(cl(KILLED(SIGKILL), false, false, &res, NULL), CAT_PARAM, NULL,
	    "result category beats an unexplained SIGKILL");
	CAT(cl(EXITED(65), false, false, &bogus, NULL), CAT_DATA, "from json",
	    "an invalid result category falls through to the exit code (message kept)");
	CAT(cl(EXITED(1), false, false, &nomsg, "last words\n"), CAT_DATA, "last words",
	    "result category without a message: stderr's last line");

	/* 3. memory */
	CAT(cl(KILLED(SIGKILL), false, false, NULL, NULL), CAT_MEMORY, "killed by SIGKILL",
	    "SIGKILL the runner did not send");
	v = cl(KILLED(SIGKILL), false, true, NULL, NULL);
	ok(!v->success && v->category != CAT_MEMORY && !strcmp(v->message, "killed by SIGKILL"),
	   "SIGKILL sent by the runner (cancel) is not memory_error (got %s)",
	   category_name(v->category));
	is_int(v->category, CAT_UNKNOWN, "... it is unknown");
	CAT(cl(EXITED(137), false, false, NULL, NULL), CAT_MEMORY, "exit 137", "exit 137");
	CAT(cl(EXITED(1), false, false, NULL, "malloc: Cannot allocate memory\n"), CAT_MEMORY,
	    "malloc: Cannot allocate memory", "stderr Cannot allocate memory");
	CAT(cl(EXITED(1), false, false, NULL, "Traceback...\nMemoryError\n"), CAT_MEMORY,
	    "MemoryError", "stderr MemoryError");
	CAT(cl(KILLED(SIGABRT), false, false, NULL,
	       "terminate called after throwing an instance of 'std::bad_alloc'\n  what():  std::bad_alloc\n"),
	    CAT_MEMORY, "  what():  std::bad_alloc", "stderr std::bad_alloc beats SIGABRT");
	CAT(cl(EXITED(2), false, false, NULL, "fatal: out of memory\n"), CAT_MEMORY, NULL,
	    "stderr out of memory");
	CAT(cl(EXITED(2), false, false, NULL, "FATAL: OUT OF MEMORY\n"), CAT_MEMORY, NULL,
	    "memory words are case-insensitive");
	CAT(cl(EXITED(65), false, false, NULL, "MemoryError\n"), CAT_MEMORY, NULL,
	    "memory words beat exit 65");
	CAT(cl(EXITED(64), false, false, NULL, "out of memory\n"), CAT_MEMORY, NULL,
	    "memory words beat exit 64");
	CAT(cl(KILLED(SIGSEGV), false, false, NULL, "out of memory\n"), CAT_MEMORY, NULL,
	    "memory words beat SIGSEGV");

	/* 4. exit codes and crash signals */
	CAT(cl(EXITED(65), false, false, NULL, NULL), CAT_DATA, "exit 65", "exit 65");
	CAT(cl(EXITED(66), false, false, NULL, NULL), CAT_DATA, "exit 66", "exit 66");
	CAT(cl(EXITED(64), false, false, NULL, NULL), CAT_PARAM, "exit 64", "exit 64");
	CAT(cl(EXITED(70), false, false, NULL, NULL), CAT_ENGINE, "exit 70", "exit 70");
	static const struct { int sig; const char *msg; } crash[] = {
		{ SIGSEGV, "killed by SIGSEGV" }, { SIGBUS, "killed by SIGBUS" },
		{ SIGABRT, "killed by SIGABRT" }, { SIGFPE, "killed by SIGFPE" },
		{ SIGILL, "killed by SIGILL" },
	};
	for (size_t i = 0; i < 5; i++) {
		CAT(cl(KILLED(crash[i].sig), false, false, NULL, NULL), CAT_ENGINE,
		    crash[i].msg, crash[i].msg);
		v = cl(KILLED_CORE(crash[i].sig), false, false, NULL, "");
		ok(!v->success && v->category == CAT_ENGINE && v->signal == crash[i].sig &&
			   v->exit_code == -1,
		   "%s with a core dump -> engine_error, signal %d", crash[i].msg, crash[i].sig);
	}
	CAT(cl(EXITED(64), false, false, NULL, "symbol not found\n"), CAT_PARAM, NULL,
	    "exit 64 beats data keywords");
	CAT(cl(EXITED(65), false, false, NULL, "invalid parameter\n"), CAT_DATA, NULL,
	    "exit 65 beats parameter keywords");
	CAT(cl(EXITED(70), false, false, NULL, "timed out waiting\n"), CAT_ENGINE, NULL,
	    "exit 70 beats timeout keywords");
	CAT(cl(KILLED(SIGSEGV), false, false, NULL, "no data\n"), CAT_ENGINE, NULL,
	    "SIGSEGV beats keywords");

	/* 5. keywords, case-insensitive */
	static const struct { const char *err; int cat; } kw[] = {
		{ "field missing\n", CAT_DATA },
		{ "MISSING column\n", CAT_DATA },
		{ "No Data for XYZ\n", CAT_DATA },
		{ "ticker NOT FOUND\n", CAT_DATA },
		{ "Invalid lookback\n", CAT_PARAM },
		{ "bad Parameter: x\n", CAT_PARAM },
		{ "request Timed Out\n", CAT_TIMEOUT },
		{ "connection TIMED OUT after 30s\n", CAT_TIMEOUT },
		{ "invalid value: not found\n", CAT_DATA },
		{ "parameter timed out\n", CAT_PARAM },
		{ "something else went wrong\n", CAT_UNKNOWN },
		{ "", CAT_UNKNOWN },
		{ NULL, CAT_UNKNOWN },
	};
	for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++) {
		char name[128];
		snprintf(name, sizeof(name), "exit 1, stderr \"%.*s\"",
			 kw[i].err ? (int)strcspn(kw[i].err, "\n") : 4,
			 kw[i].err ? kw[i].err : "NULL");
		CAT(cl(EXITED(1), false, false, NULL, kw[i].err), kw[i].cat, NULL, name);
	}
	CAT(cl(KILLED(SIGTERM), false, false, NULL, "no data\n"), CAT_DATA, "no data",
	    "keywords apply to other signals too");
	CAT(cl(EXITED(3), false, false, NULL,
	       "symbol missing\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n"),
	    CAT_UNKNOWN, "12", "keywords are looked for in the last lines only");
	CAT(cl(EXITED(3), false, false, NULL, "symbol missing\n1\n2\n\n\n3\n"), CAT_DATA,
	    "3", "a keyword a few lines up (blank lines skipped) counts");
	CAT(cl(EXITED(3), false, false, &bogus, "Not Found\n"), CAT_DATA, "from json",
	    "keywords apply when the result category is invalid");

	/* Exec failure. */
	{
		struct outcome_in in = { .wait_status = EXITED(127), .exec_errno = ENOENT,
					 .exec_path = "/opt/agents/strategy_analyst",
					 .res = &res, .stderr_tail = "MemoryError\n" };
		classify(&in, &V);
		ok(!V.success && V.category == CAT_ENGINE &&
			   !strcmp(V.message, "cannot execute /opt/agents/strategy_analyst: No such file or directory"),
		   "exec failure -> engine_error \"cannot execute PATH: reason\" (got %s, \"%s\")",
		   category_name(V.category), V.message);
		in.exec_errno = EACCES;
		in.wait_status = EXITED(0);
		in.exec_path = NULL;
		classify(&in, &V);
		ok(!V.success && V.category == CAT_ENGINE && !strncmp(V.message, "cannot execute ", 15) &&
			   strstr(V.message, strerror(EACCES)),
		   "exec failure is never a success, even with status 0 (\"%s\")", V.message);
	}

	/* Messages. */
	v = cl(EXITED(3), false, false, NULL, "first line\nsecond line\nlast line\n\n  \n\t\n\n");
	is_str(v->message, "last line", "message: the last non-empty stderr line, trailing blank lines ignored");
	v = cl(EXITED(3), false, false, NULL, "first\r\nlast one\r\n\r\n");
	is_str(v->message, "last one", "CRLF line ends are stripped");
	v = cl(EXITED(3), false, false, NULL, "no newline at the end");
	is_str(v->message, "no newline at the end", "a last line without a newline");
	v = cl(EXITED(3), false, false, NULL, "\n\n   \n\t\n");
	is_str(v->message, "exit 3", "only blank stderr: exit 3");
	v = cl(EXITED(3), false, false, NULL, NULL);
	is_str(v->message, "exit 3", "no stderr: exit 3");
	ok(v->exit_code == 3 && v->signal == 0, "exit_code 3, signal 0");
	v = cl(KILLED(SIGSEGV), false, false, NULL, "");
	is_str(v->message, "killed by SIGSEGV", "signal death: killed by SIGSEGV");
	ok(v->exit_code == -1 && v->signal == SIGSEGV, "exit_code -1, signal 11");
	v = cl(EXITED(3), false, false, &res, "stderr line\n");
	is_str(v->message, "bad lookback", "the result message comes first");
	v = cl(EXITED(3), false, false, NULL, "\x1b[31mError\x1b[0m: bad\x01thing\n");
	is_str(v->message, "\\x1b[31mError\\x1b[0m: bad\\x01thing",
	       "control characters in the stderr line are escaped");
	v = cl(EXITED(3), false, false, NULL, "  indented message  \n");
	ok(strstr(v->message, "indented message") != NULL, "an indented line is used (\"%s\")",
	   v->message);
	{
		char *longline = malloc(10000);
		memset(longline, 'x', 9998);
		longline[9998] = '\n';
		longline[9999] = '\0';
		v = cl(EXITED(3), false, false, NULL, longline);
		ok(strlen(v->message) < MESSAGE_MAX && strlen(v->message) > 900 &&
			   str_has_suffix(v->message, "..."),
		   "a 10,000-byte stderr line is truncated with ... (%zu bytes)",
		   strlen(v->message));
		/* A line of multi-byte characters, cut at an odd byte. */
		size_t n = 0;
		longline[n++] = 'a';
		while (n + 3 < 9990) {
			memcpy(longline + n, "é", 2);
			n += 2;
		}
		longline[n] = '\0';
		v = cl(EXITED(3), false, false, NULL, longline);
		ok(utf8_valid(v->message, strlen(v->message)),
			"a truncated UTF-8 stderr line is still valid UTF-8");
		free(longline);
	}
	/* Invalid UTF-8 reaches the message as it is. */
	v = cl(EXITED(3), false, false, NULL, "bad byte \xff\xfe here\n");
	ok(utf8_valid(v->message, strlen(v->message)),
		"invalid UTF-8 in stderr does not reach the message raw");

	/* Never empty for a failure. */
	{
		static const int statuses[] = { EXITED(1), EXITED(2), EXITED(64), EXITED(65),
						EXITED(66), EXITED(70), EXITED(137), EXITED(255),
						KILLED(SIGKILL), KILLED(SIGTERM), KILLED(SIGSEGV),
						KILLED(SIGHUP), KILLED(63), EXITED(0) };
		static const char *const errs[] = { NULL, "", "\n\n", "  \n", "msg\n", "out of memory" };
		const struct result *ress[] = { NULL, &res, &bogus, &nomsg };
		int bad = 0, n = 0;
		for (size_t s = 0; s < sizeof(statuses) / sizeof(statuses[0]); s++)
			for (size_t e = 0; e < sizeof(errs) / sizeof(errs[0]); e++)
				for (size_t r = 0; r < 4; r++)
					for (int flags = 0; flags < 4; flags++) {
						v = cl(statuses[s], flags & 1, flags & 2, ress[r], errs[e]);
						n++;
						bool okv = v->success
								   ? v->category == CAT_NONE
								   : v->category > CAT_NONE &&
									     v->category < CAT_COUNT &&
									     v->message[0];
						if (!okv && bad++ < 5)
							diag("status %#x err %zu res %zu flags %d: success %d cat %d msg \"%s\"",
							     statuses[s], e, r, flags, v->success,
							     v->category, v->message);
					}
		ok(!bad, "over %d combinations: a failure always has a category and a message (%d bad)",
		   n, bad);
	}
	v = cl(KILLED(63), false, false, NULL, NULL);
	ok(v->message[0] && strstr(v->message, "63") != NULL,
	   "an unnamed signal is described (\"%s\")", v->message);
}

/* ---- a result file that exists but cannot be used ---- */

static void unreadable_is(const char *json, size_t len, const char *want,
			  int line)
{
	struct result r;
	int rc = result_parse(json, len, &r);
	char shown[32];
	/* len may claim more than json holds (the size bound is tested so). */
	size_t n = strnlen(json, sizeof(shown) - 1);
	n = len < n ? len : n;
	for (size_t i = 0; i < n; i++)
		shown[i] = json[i] >= ' ' ? json[i] : ' ';
	shown[n] = '\0';
	tap_ok_at(rc == -1 && !r.present && !strcmp(r.unreadable, want),
		  __FILE__, line, "unreadable \"%s\" -> \"%s\" (got %d, \"%s\")",
		  shown, want, rc, r.unreadable);
}
#define UNREADABLE(json, want) unreadable_is((json), strlen(json), (want), __LINE__)

static void test_unreadable(void)
{
	struct result r;
	ok(result_parse(NULL, 0, &r) == -1 && !r.unreadable[0],
	   "NULL input (no file): nothing to complain about");
	ok(parse("{\"matches\": 3}", &r) == 0 && !r.unreadable[0],
	   "a good result: unreadable empty");
	UNREADABLE("{\"matches\": 7, \"metr", "truncated after 20 bytes");
	UNREADABLE("{\"matches\": 7, \"metrics\": {\"sharpe\": 1.5}",
		   "truncated after 41 bytes");
	UNREADABLE("{\"matches\": 7, \"metrics\": {\"sharpe\": 1.5}, \"progress\": 1\n",
		   "truncated after 57 bytes");
	UNREADABLE("{\"a\": \"x\\\"}", "truncated after 11 bytes");
	UNREADABLE("[1, 2", "truncated after 5 bytes");
	UNREADABLE("{\"a\":}", "invalid JSON at byte 6");
	UNREADABLE("nul", "invalid JSON at byte 1");
	ok(parse("{'a': 1}", &r) == -1 && !strncmp(r.unreadable, "invalid JSON at byte ", 21),
	   "single quotes: invalid JSON at a byte (\"%s\")", r.unreadable);
	UNREADABLE("", "empty");
	UNREADABLE("  \n\t", "empty");
	UNREADABLE("[1,2]", "not a JSON object but an array");
	UNREADABLE("42", "not a JSON object but a number");
	UNREADABLE("\"s\"", "not a JSON object but a string");
	UNREADABLE("null", "not a JSON object but null");
	UNREADABLE("true", "not a JSON object but a boolean");
	{
		char *deep = malloc(4000);
		size_t n = 0;
		for (int i = 0; i < 1500; i++)
			deep[n++] = '[';
		for (int i = 0; i < 1500; i++)
			deep[n++] = ']';
		unreadable_is(deep, n, "nested deeper than 1000 levels", __LINE__);
		free(deep);
		char big[64];
		snprintf(big, sizeof(big), "%u bytes, over the 1 MiB limit",
			 RESULT_MAX_BYTES + 1);
		unreadable_is("{}", RESULT_MAX_BYTES + 1, big, __LINE__);
	}
}

static void test_result_load(void)
{
	struct result r;
	scratch_make("classify");
	int dfd = scratch_open();
	int fd;

	result_load(dfd, "absent.json", &r, NULL);
	ok(!r.present && !r.unreadable[0], "load: an absent file is no result, no complaint");

	fd = openat(dfd, "good.json", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ok(write(fd, "{\"matches\": 4}", 14) == 14, "wrote good.json");
	close(fd);
	result_load(dfd, "good.json", &r, NULL);
	ok(r.present && r.matches == 4 && !r.unreadable[0], "load: a good file is read");
	struct result_doc doc = { .max = 64 };
	result_load(dfd, "good.json", &r, &doc);
	is_str(doc.text ? doc.text : "(none)", "{\"matches\":4}",
	       "load: the document kept, compact");
	ok(doc.full == 13, "load: its compact size (%zu)", doc.full);
	free(doc.text);
	doc = (struct result_doc){ .max = 12 };
	result_load(dfd, "good.json", &r, &doc);
	ok(!doc.text && doc.full == 13 && r.matches == 4,
	   "load: a document over the bound is not kept, its fields are read");

	fd = openat(dfd, "cut.json", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ok(write(fd, "{\"matches\": 4, \"met", 19) == 19, "wrote cut.json");
	close(fd);
	result_load(dfd, "cut.json", &r, NULL);
	is_str(r.unreadable, "truncated after 19 bytes", "load: a cut file says so");

	fd = openat(dfd, "empty.json", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	close(fd);
	result_load(dfd, "empty.json", &r, NULL);
	is_str(r.unreadable, "empty", "load: an empty file says so");

	/* One byte over the bound: sparse, then a valid object at its start. */
	fd = openat(dfd, "big.json", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ok(write(fd, "{}", 2) == 2 && ftruncate(fd, RESULT_MAX_BYTES + 1) == 0,
	   "wrote big.json");
	close(fd);
	result_load(dfd, "big.json", &r, NULL);
	char want[80];
	snprintf(want, sizeof(want), "%u bytes, over the 1 MiB limit",
		 RESULT_MAX_BYTES + 1);
	ok(!r.present && !strcmp(r.unreadable, want),
	   "load: a file over the bound is not read, and says so (\"%s\")", r.unreadable);

	ok(symlinkat("good.json", dfd, "link.json") == 0, "made link.json");
	result_load(dfd, "link.json", &r, NULL);
	ok(!r.present && !strncmp(r.unreadable, "cannot open: ", 13),
	   "load: a symlink is not followed (\"%s\")", r.unreadable);

	ok(mkdirat(dfd, "dir.json", 0700) == 0, "made dir.json");
	result_load(dfd, "dir.json", &r, NULL);
	is_str(r.unreadable, "not a regular file", "load: a directory is no result");

	close(dfd);
	scratch_remove();
}

static void test_warning(void)
{
	struct result cut, good;
	const struct verdict *v;
	result_parse("{\"matches\": 7, \"metr", 20, &cut);
	result_parse("{\"matches\": 7}", 14, &good);

	v = cl(EXITED(0), false, false, &cut, NULL);
	ok(v->success, "exit 0 with a truncated result: still a success");
	is_str(v->warning,
	       "result JSON unreadable: truncated after 20 bytes; its figures are lost",
	       "... with a warning that its figures are lost");
	v = cl(EXITED(1), false, false, &cut, "something broke\n");
	ok(!v->success && v->category == CAT_UNKNOWN,
	   "exit 1 with a truncated result: classified without it (%s)",
	   category_name(v->category));
	is_str(v->warning,
	       "result JSON unreadable: truncated after 20 bytes; its error details "
	       "are lost (classified by exit status and stderr)",
	       "... and the warning says the error details are lost");
	v = cl(EXITED(65), false, false, &cut, NULL);
	ok(v->category == CAT_DATA && v->warning[0], "exit 65, truncated: data_error, warned");
	v = cl(KILLED(SIGKILL), true, true, &cut, NULL);
	ok(v->category == CAT_TIMEOUT && !v->warning[0],
	   "killed for its timeout mid-write: no warning");
	v = cl(KILLED(SIGTERM), false, true, &cut, NULL);
	ok(!v->warning[0], "killed by the runner (cancel): no warning");
	v = cl(EXITED(0), false, false, &good, NULL);
	ok(v->success && !v->warning[0], "a good result: no warning");
	v = cl(EXITED(0), false, false, NULL, NULL);
	ok(v->success && !v->warning[0], "no result: no warning");
	{
		struct outcome_in in = { .wait_status = EXITED(127), .exec_errno = ENOENT,
					 .res = &cut };
		classify(&in, &V);
		ok(!V.warning[0], "an exec failure: no warning");
	}
}

/* ---- stderr patterns ---- */

static const struct verdict *cl_rules(const struct classify_rules *rs, int status,
				      const char *err)
{
	struct outcome_in in = { .wait_status = status, .stderr_tail = err,
				 .rules = rs };
	classify(&in, &V);
	return &V;
}

static void test_patterns(void)
{
	/* The built-in set: stderr as agents print it -> category. */
	static const struct { const char *err; int cat; } def[] = {
		{ "Traceback (most recent call last):\n  File \"agent.py\", line 12, in <module>\n"
		  "    df = pd.read_csv(path)\n"
		  "FileNotFoundError: [Errno 2] No such file or directory: 'data/XYZ.csv'\n",
		  CAT_DATA },
		{ "Traceback (most recent call last):\n  File \"agent.py\", line 30, in run\n"
		  "    close = bars['close']\nKeyError: 'close'\n", CAT_DATA },
		{ "    last = series.iloc[-1]\nIndexError: single positional indexer is out-of-bounds\n",
		  CAT_DATA },
		{ "ValueError: cannot convert float NaN to integer\n", CAT_DATA },
		{ "ValueError: invalid literal for int() with base 10: 'x'\n", CAT_DATA },
		{ "pandas.errors.EmptyDataError: No columns to parse from file\n", CAT_DATA },
		{ "1 Failed download:\n['XYZ']: No price data found, symbol may be delisted (period=1y)\n",
		  CAT_DATA },
		{ "- XYZ: possibly delisted; no timezone found\n", CAT_DATA },
		{ "socket.timeout: timed out\n", CAT_TIMEOUT },
		{ "TimeoutError: [Errno 110] Connection timed out\n", CAT_TIMEOUT },
		{ "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='api.x', port=443): "
		  "Read timed out. (read timeout=10)\n", CAT_TIMEOUT },
		{ "requests.exceptions.ConnectTimeout: HTTPSConnectionPool(host='api.x')\n", CAT_TIMEOUT },
		{ "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='api.x', port=443): "
		  "Max retries exceeded\n", CAT_TIMEOUT },
		{ "ConnectionRefusedError: [Errno 111] Connection refused\n", CAT_TIMEOUT },
		{ "curl: (7) Failed to connect to api.x port 443: Connection refused\n", CAT_TIMEOUT },
		{ "socket.gaierror: [Errno -3] Temporary failure in name resolution\n", CAT_TIMEOUT },
		{ "urllib3.exceptions.NameResolutionError: Failed to resolve 'api.x'\n", CAT_TIMEOUT },
		{ "[Errno -2] Name or service not known\n", CAT_TIMEOUT },
		{ "OSError: [Errno 101] Network is unreachable\n", CAT_TIMEOUT },
		{ "http.client.RemoteDisconnected: Remote end closed connection without response\n",
		  CAT_TIMEOUT },
		{ "urllib.error.HTTPError: HTTP Error 429: Too Many Requests\n", CAT_TIMEOUT },
		{ "429 Client Error: Too Many Requests for url: https://api.x/v1\n", CAT_TIMEOUT },
		{ "Rate limit exceeded, retry in 60s\n", CAT_TIMEOUT },
		{ "yfinance.exceptions.YFRateLimitError: Too Many Requests. Rate limited.\n", CAT_TIMEOUT },
		/* a vendor that reports a throttled request as "possibly delisted" */
		{ "XYZ: possibly delisted; YFRateLimitError\n", CAT_TIMEOUT },
		{ "fetched 4290 rows, then gave up\n", CAT_UNKNOWN },
		{ "MyKeyErrorHandler crashed\n", CAT_DATA },
		{ "ZeroDivisionError: division by zero\n", CAT_UNKNOWN },
		/* the last line that says something decides, not the first */
		{ "WARNING: 3 values missing, filled forward\n"
		  "ConnectionResetError: [Errno 104] Connection reset by peer\n", CAT_TIMEOUT },
		{ "requests.exceptions.ReadTimeout: read timed out\n"
		  "During handling of the above exception, another exception occurred:\n"
		  "KeyError: 'close'\n", CAT_DATA },
		{ "KeyError: 'close'\n"
		  "During handling of the above exception, another exception occurred:\n"
		  "ConnectionError: connection aborted\n", CAT_TIMEOUT },
		{ "KeyError: 'x'\nsome closing words\n", CAT_DATA },
	};
	for (size_t i = 0; i < sizeof(def) / sizeof(def[0]); i++) {
		char name[200];
		const char *e = def[i].err;
		const char *last = e + strlen(e) - 1;
		while (last > e && last[-1] != '\n')
			last--;
		snprintf(name, sizeof(name), "built-in: ...\"%.*s\"",
			 (int)strcspn(last, "\n") > 60 ? 60 : (int)strcspn(last, "\n"), last);
		CAT(cl(EXITED(1), false, false, NULL, e), def[i].cat, NULL, name);
	}
	/* The exit code rules still come first. */
	CAT(cl(EXITED(70), false, false, NULL, "KeyError: 'x'\n"), CAT_ENGINE, NULL,
	    "exit 70 beats a KeyError");
	CAT(cl(EXITED(1), false, false, NULL, "MemoryError\nKeyError: 'x'\n"), CAT_MEMORY,
	    NULL, "memory words (rule 3) beat the patterns");

	/* An agent's own patterns. */
	struct classify_rules rs = CLASSIFY_RULES_INIT;
	classify_rules_add(&rs, "invalid session", CAT_TIMEOUT);
	classify_rules_add(&rs, "HTTP*503", CAT_TIMEOUT);
	classify_rules_add(&rs, "ValueError", CAT_PARAM);
	CAT(cl_rules(&rs, EXITED(1), "Error: Invalid Session token, log in again\n"),
	    CAT_TIMEOUT, NULL, "agent: 'invalid session' -> timeout, before the built-in 'invalid'");
	CAT(cl_rules(&rs, EXITED(1), "Error: invalid lookback\n"), CAT_PARAM, NULL,
	    "agent: other 'invalid' lines keep the built-in meaning");
	CAT(cl_rules(&rs, EXITED(1), "vendor said: HTTP/1.1 503 Service Unavailable\n"),
	    CAT_TIMEOUT, NULL, "agent: '*' stands for any run of characters");
	CAT(cl_rules(&rs, EXITED(1), "503 then HTTP\n"), CAT_UNKNOWN, NULL,
	    "agent: '*' keeps the order of the pieces");
	CAT(cl_rules(&rs, EXITED(1), "ValueError: lookback must be > 0\n"), CAT_PARAM, NULL,
	    "agent: ValueError mapped to parameter_error");
	CAT(cl_rules(&rs, EXITED(1), "KeyError: 'close'\n"), CAT_DATA, NULL,
	    "agent: the built-ins still apply after the agent's patterns");
	CAT(cl_rules(&rs, EXITED(1), "invalid session\nKeyError: 'close'\n"), CAT_DATA, NULL,
	    "agent: a built-in on the last line beats an agent pattern a line up");
	rs.builtin = false;
	CAT(cl_rules(&rs, EXITED(1), "KeyError: 'close'\n"), CAT_UNKNOWN, NULL,
	    "builtin = no: only the agent's patterns");
	CAT(cl_rules(&rs, EXITED(1), "no data for XYZ\n"), CAT_UNKNOWN, NULL,
	    "builtin = no: the SPEC keywords are off too");
	CAT(cl_rules(&rs, EXITED(1), "out of memory\n"), CAT_MEMORY, NULL,
	    "builtin = no: the memory words (rule 3) stay");
	classify_rules_release(&rs);
	rs.builtin = true;
	classify_rules_add(&rs, "invalid", CAT_UNKNOWN);
	CAT(cl_rules(&rs, EXITED(1), "invalid lookback\n"), CAT_UNKNOWN, NULL,
	    "agent: 'invalid' mapped back to unknown (retried by default)");
	classify_rules_release(&rs);
	classify_rules_add(&rs, "*", CAT_DATA);
	CAT(cl_rules(&rs, EXITED(1), "anything at all\n"), CAT_DATA, NULL,
	    "agent: '*' alone matches any line");
	CAT(cl_rules(&rs, EXITED(1), "  \n\n"), CAT_UNKNOWN, "exit 1",
	    "agent: '*' does not match blank stderr");
	classify_rules_release(&rs);
	classify_rules_release(&rs);
	ok(rs.n == 0 && !rs.v, "classify_rules_release twice is harmless");

	char why[WHY_BUF];
	ok(classify_pattern_check("", why) < 0 && strstr(why, "empty"), "check: empty");
	ok(classify_pattern_check("a\nb", why) < 0 && strstr(why, "control"),
	   "check: a newline");
	ok(classify_pattern_check("a\tb", why) == 0, "check: a tab is fine");
	ok(classify_pattern_check("No price data found", why) == 0, "check: plain words");
	is_int(classify_line(NULL, "KeyError", 8), CAT_DATA, "classify_line: built-ins");
	is_int(classify_line(NULL, "KeyError", 3), CAT_NONE,
	       "classify_line: the length bounds the line");
}

int main(void)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	test_result_parse();
	test_classify();
	test_unreadable();
	test_result_load();
	test_warning();
	test_patterns();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	diag("classify tests took %.3f s",
	     (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	done_testing();
	return exit_status();
}
