/*
 * tap.h: the little of TAP our C unit tests need (after git's test-lib):
 *
 *   plan(n) or done_testing() at the end; ok(cond, fmt...);
 *   is_int(got, want, fmt...); is_str(got, want, fmt...); diag(fmt...);
 *
 * A failing check prints the file:line and both values as diagnostics.
 * exit_status() is what main returns: 0 when every check passed.
 */
#ifndef RUNNER_TAP_H
#define RUNNER_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count, tap_failed, tap_planned = -1;

static void __attribute__((format(printf, 1, 0)))
tap_vdiag(const char *fmt, va_list ap)
{
	char buf[4096];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		printf("# %s\n", line);
	fflush(stdout);
}

static inline void __attribute__((format(printf, 1, 2))) diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tap_vdiag(fmt, ap);
	va_end(ap);
}

static inline void plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
}

static inline int __attribute__((format(printf, 4, 0)))
tap_ok(int cond, const char *file, int line, const char *fmt, va_list ap)
{
	char name[1024];
	vsnprintf(name, sizeof(name), fmt, ap);
	tap_count++;
	printf("%sok %d - %s\n", cond ? "" : "not ", tap_count, name);
	if (!cond) {
		tap_failed++;
		printf("#   Failed test at %s line %d.\n", file, line);
	}
	fflush(stdout);
	return cond;
}

static inline int __attribute__((format(printf, 4, 5)))
tap_ok_at(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = tap_ok(cond, file, line, fmt, ap);
	va_end(ap);
	return r;
}

static inline int __attribute__((format(printf, 5, 6)))
tap_is_int(long long got, long long want, const char *file, int line,
	   const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = tap_ok(got == want, file, line, fmt, ap);
	va_end(ap);
	if (!r)
		printf("#          got: %lld\n#     expected: %lld\n", got, want);
	return r;
}

static inline int __attribute__((format(printf, 5, 6)))
tap_is_str(const char *got, const char *want, const char *file, int line,
	   const char *fmt, ...)
{
	va_list ap;
	int same = (!got && !want) || (got && want && !strcmp(got, want));
	va_start(ap, fmt);
	int r = tap_ok(same, file, line, fmt, ap);
	va_end(ap);
	if (!r)
		printf("#          got: '%s'\n#     expected: '%s'\n",
		       got ? got : "(null)", want ? want : "(null)");
	return r;
}

#define ok(cond, ...) tap_ok_at(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...) \
	tap_is_int((long long)(got), (long long)(want), __FILE__, __LINE__, __VA_ARGS__)
#define is_str(got, want, ...) \
	tap_is_str((got), (want), __FILE__, __LINE__, __VA_ARGS__)

static inline void done_testing(void)
{
	if (tap_planned < 0)
		printf("1..%d\n", tap_count);
	fflush(stdout);
}

static inline int exit_status(void)
{
	if (tap_planned >= 0 && tap_planned != tap_count)
		return 255;
	return tap_failed ? 1 : 0;
}

#endif
