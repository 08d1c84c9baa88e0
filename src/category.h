/*
 * category: the six error categories of SPEC 6.2, shared by the
 * configuration (retry_on), classification, the batch model and the views.
 * CAT_NONE means "no error" (a succeeded or not yet finished attempt).
 */
#ifndef RUNNER_CATEGORY_H
#define RUNNER_CATEGORY_H

#include <string.h>

enum category {
	CAT_NONE = 0,
	CAT_DATA,
	CAT_PARAM,
	CAT_ENGINE,
	CAT_TIMEOUT,
	CAT_MEMORY,
	CAT_UNKNOWN,
	CAT_COUNT
};

static const char *const category_names[CAT_COUNT] = {
	NULL,	      "data_error", "parameter_error", "engine_error",
	"timeout", "memory_error", "unknown",
};

static inline const char *category_name(int c)
{
	return c > CAT_NONE && c < CAT_COUNT ? category_names[c] : NULL;
}

/* CAT_NONE when s names no category. */
static inline int category_parse(const char *s)
{
	for (int c = CAT_NONE + 1; c < CAT_COUNT; c++)
		if (!strcmp(s, category_names[c]))
			return c;
	return CAT_NONE;
}

#define CAT_BIT(c) (1u << (c))

#endif
