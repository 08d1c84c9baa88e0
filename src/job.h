/*
 * job: a job file (SPEC 4) to a validated struct.
 *
 *   struct job j = JOB_INIT;
 *   struct diag d = DIAG_INIT(display_name);
 *   if (job_parse(&j, &d, buf, len, conf, home_fd) < 0) { diag_print(&d); }
 *   ...
 *   job_release(&j); diag_release(&d);
 *
 * A job is valid only as a whole: job_parse() reports every problem it
 * finds into the diag (file:line each) and returns -1 if there was any.
 * Warnings (a symbol listed twice) do not make a job invalid.
 *
 * buf is the whole file (the caller bounds it at JOB_MAX_BYTES).  conf may
 * be NULL, in which case the agent's existence is not checked.  home_fd is
 * the directory symbols_file is resolved beneath (openat2 RESOLVE_BENEATH:
 * no absolute path, no "..", no symlink leads outside the home).
 *
 * Symbols are kept in one pool: j.symbols[i] points into it, in file order
 * with duplicates removed.  job_sha256() is the digest of the file's bytes,
 * used for dedup and recorded in batch.json.
 */
#ifndef RUNNER_JOB_H
#define RUNNER_JOB_H

#include "inifile.h"

struct conf;

#define JOB_MAX_BYTES (64u << 20)
#define JOB_MAX_SYMBOLS 1000000
#define ID_MAX 64
#define SYMBOL_MAX 32

struct job_param {
	char *key;
	char *value;
};

struct job {
	char *id;		/* NULL when the file gives none */
	char *name, *origin, *agent, *source;
	char *timeframe, *start, *end;
	int priority;
	int concurrency;	/* 0: no batch-level cap */
	int64_t timeout_ms;	/* 0: the agent's */
	int64_t batch_timeout_ms; /* 0: none */
	int max_attempts;	/* 0: [retry] max_attempts */
	struct job_param *params;
	size_t nparams;
	char **symbols;
	size_t nsymbols;
	struct sb pool;		/* storage of the symbols */
};
#define JOB_INIT { 0 }

int job_parse(struct job *j, struct diag *d, const char *buf, size_t len,
	      const struct conf *conf, int home_fd);
void job_release(struct job *j);

/* Read a job file named by the user: a regular file (followed if a
 * symlink: the user named it), at most JOB_MAX_BYTES; errors printed. */
int job_read_path(const char *path, struct sb *out);

int valid_batch_id(const char *s);
int valid_symbol(const char *s);

/* SHA-256 of buf as 64 lowercase hex digits. */
void sha256_hex(const void *buf, size_t len, char out[65]);

#endif
