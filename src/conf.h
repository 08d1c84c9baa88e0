/*
 * conf: conf/runner.ini (SPEC 5) to a validated, read-only struct.
 *
 *   struct conf *c = conf_load(path, home_path);   NULL: problems printed
 *   ... c->agents[i] ...
 *   conf_free(c);
 *
 * Every key is checked (type, range, unknown keys, keys given twice) and
 * every problem is printed as "runner: FILE:LINE: message"; the caller
 * exits 78.  A loaded conf is never modified: a reload builds a new one and
 * swaps it in only when it is valid.
 *
 * Keys beyond SPEC 5 (documented in runner.conf(5)): [runner] kill_grace
 * (SIGTERM to SIGKILL), [runner] shutdown_grace (how long a stopping daemon
 * lets running attempts finish), [agent] output_limit (RLIMIT_FSIZE of the
 * child), max_output ([runner] for every agent, [agent] for one: what one
 * attempt keeps of its stdout and stderr together), and the stderr patterns of classification: [classify] for the
 * home, [classify NAME] for agent NAME, one key per category (a list of
 * patterns) and builtin = yes|no.  Each agent's classify rules are its own
 * patterns, then the home's; builtin is the agent section's, else the
 * home's, else yes.
 */
#ifndef RUNNER_CONF_H
#define RUNNER_CONF_H

#include "classify.h"

#include <stddef.h>
#include <stdint.h>

struct agent_conf {
	char *name;
	char **command;		/* argv words, {symbol} not yet substituted */
	size_t ncommand;
	char **launcher;	/* argv prefix, may be empty */
	size_t nlauncher;
	char *wrapper;		/* with a launcher: the runner put between it and
				 * the command (remote.h), NULL: none */
	char **env;		/* "KEY=VALUE" words */
	size_t nenv;
	char *exec_path;	/* argv[0] of the child, resolved on PATH */
	int max_concurrent;
	int64_t timeout_ms;	/* 0 = none */
	uint64_t memory_limit;	/* bytes, 0 = none */
	int64_t cpu_limit_ms;	/* 0 = none */
	uint64_t output_limit;	/* bytes, 0 = none */
	uint64_t max_output;	/* bytes of stdout+stderr kept per attempt */
	char *source;		/* may be NULL */
	char *primary_metric;	/* the result metric its summaries show, or NULL */
	struct classify_rules classify;	/* stderr patterns, in order */
};

enum compression { COMPRESS_GZIP, COMPRESS_ZSTD, COMPRESS_NONE };

struct conf {
	char *path;
	int max_children;
	char **notify;
	size_t nnotify;
	char *notify_path;	/* notify[0] resolved on PATH */
	int64_t dedup_window_ms;
	int64_t kill_grace_ms;
	int64_t shutdown_grace_ms;
	uint64_t max_output;	/* [runner]: the agents' default */

	int max_attempts;
	int64_t *delays_ms;
	size_t ndelays;
	double jitter;
	unsigned retry_on;	/* CAT_BIT() set */
	struct classify_rules classify;	/* [classify]: the home's patterns */

	int breaker_threshold;
	int64_t breaker_open_ms;
	int64_t corr_window_ms;
	int min_group;

	int64_t archive_after_ms;
	int64_t delete_archives_after_ms;
	enum compression compression;
	/* [metrics] textfile: relative to the home, or absolute; NULL:
	 * logs/runner.prom; "": none written */
	char *metrics_textfile;

	struct agent_conf *agents;
	size_t nagents;
};

struct conf *conf_load(const char *path);
/* Every default of SPEC 5 and no agent (for views that need no file). */
struct conf *conf_default(void);
void conf_free(struct conf *c);
const struct agent_conf *conf_agent(const struct conf *c, const char *name);

/* Identifier rules shared with job files. */
#define AGENT_NAME_MAX 40
int valid_agent_name(const char *s);
int valid_source_name(const char *s);

#endif
