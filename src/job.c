#include "job.h"
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <nettle/sha2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int valid_batch_id(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > ID_MAX || !isalnum((unsigned char)s[0]) || strstr(s, ".."))
		return 0;
	/* batches/archive/ and logs/runner.log are the home's own. */
	if (!strcmp(s, "archive") || !strcmp(s, "runner"))
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
			return 0;
	return 1;
}

int valid_symbol(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > SYMBOL_MAX)
		return 0;
	if (!isalnum((unsigned char)s[0]) && s[0] != '^')
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(".^=_-", *s))
			return 0;
	return 1;
}

void sha256_hex(const void *buf, size_t len, char out[65])
{
	struct sha256_ctx ctx;
	uint8_t digest[SHA256_DIGEST_SIZE];
	sha256_init(&ctx);
	sha256_update(&ctx, len, buf);
	sha256_digest(&ctx, sizeof(digest), digest);
	for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
		snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

struct symset {
	struct strmap seen;
	size_t *offs;		/* offsets into the pool */
	size_t n, cap;
	int dups;
	char first_dup[SYMBOL_MAX + 1];
};

/* Add one word as a symbol; where names the place for messages. */
static void add_symbol(struct job *j, struct symset *ss, struct diag *d,
		       int line, const char *where, const char *w, size_t n)
{
	char sym[SYMBOL_MAX + 2];
	if (n > SYMBOL_MAX) {
		diag_error(d, line, "%sinvalid symbol '%.40s...' (longer than %d)",
			   where, w, SYMBOL_MAX);
		return;
	}
	memcpy(sym, w, n);
	sym[n] = '\0';
	if (!valid_symbol(sym)) {
		diag_error(d, line, "%sinvalid symbol '%s'", where, sym);
		return;
	}
	if (ss->n >= JOB_MAX_SYMBOLS) {
		if (ss->n == JOB_MAX_SYMBOLS)
			diag_error(d, line, "more than %d symbols",
				   JOB_MAX_SYMBOLS);
		ss->n++;
		return;
	}
	GROW(ss->offs, ss->cap, ss->n + 1);
	ss->offs[ss->n] = j->pool.len;
	sb_add(&j->pool, sym, n + 1);	/* keep the NUL */
	ss->n++;
}

/* Words of s as symbols; e (if not NULL) gives each word's own line. */
static void split_symbols(struct job *j, struct symset *ss, struct diag *d,
			  int line, const char *where, const char *s,
			  const struct ini_entry *e)
{
	const char *start = s;
	while (*s) {
		while (*s == ' ' || *s == '\t' || *s == ',' || *s == '\r')
			s++;
		const char *w = s;
		while (*s && *s != ' ' && *s != '\t' && *s != ',' && *s != '\r')
			s++;
		if (s > w)
			add_symbol(j, ss, d,
				   e ? inientry_line_at(e, (size_t)(w - start))
				     : line,
				   where, w, (size_t)(s - w));
	}
}

/* path beneath home_fd, never outside it: RESOLVE_BENEATH refuses an
 * absolute path, ".." above the home and a symlink that leads out (one that
 * stays inside is followed). */
static int open_beneath(int home_fd, const char *path)
{
	struct open_how how = {
		.flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, home_fd, path, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS) {
		/* Kernels before 5.6 have no openat2: refuse "..", and a
		 * symlink as the last component; a symlinked directory on the
		 * way is not detected there. */
		if (path[0] == '/' || strstr(path, ".."))
			return errno = EXDEV, -1;
		return openat(home_fd, path,
			      O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	}
	return (int)fd;
}

static void read_symbols_file(struct job *j, struct symset *ss,
			      struct diag *d, int line, const char *path,
			      int home_fd)
{
	struct sb text = SB_INIT;
	struct stat st;
	int fd;
	if (path[0] == '/') {
		diag_error(d, line, "symbols_file must be relative to the home: %s",
			   path);
		return;
	}
	fd = open_beneath(home_fd, path);
	if (fd < 0) {
		if (errno == EXDEV || errno == ELOOP)
			diag_error(d, line,
				   "symbols_file %s leads outside the home "
				   "(or through a symlink)",
				   path);
		else
			diag_error(d, line, "symbols_file %s: %s", path,
				   strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		diag_error(d, line, "symbols_file %s: not a regular file", path);
		goto out;
	}
	if (st.st_size > (off_t)JOB_MAX_BYTES ||
	    read_fd_bounded(fd, JOB_MAX_BYTES, &text) < 0) {
		diag_error(d, line, "symbols_file %s: %s", path,
			   errno == EFBIG || st.st_size > (off_t)JOB_MAX_BYTES
				   ? "larger than 64 MiB"
				   : strerror(errno));
		goto out;
	}
	if (memchr(text.buf ? text.buf : "", '\0', text.len) ||
	    !utf8_valid(text.buf ? text.buf : "", text.len)) {
		diag_error(d, line, "symbols_file %s: NUL byte or invalid UTF-8",
			   path);
		goto out;
	}
	char *p = text.buf;
	for (int fl = 1; p && *p; fl++) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		char *hash = strchr(p, '#');
		if (hash)
			*hash = '\0';
		char where[300];
		snprintf(where, sizeof(where), "symbols_file %.200s:%d: ", path,
			 fl);
		split_symbols(j, ss, d, line, where, p, NULL);
		p = nl ? nl + 1 : NULL;
	}
out:
	sb_release(&text);
	close(fd);
}

static char *take_string(struct diag *d, struct ini_entry *e, size_t max)
{
	if (!e)
		return NULL;
	if (e->value.len > max) {
		diag_error(d, e->line, "%s: longer than %zu bytes", e->key, max);
		return NULL;
	}
	return xstrdup(e->value.buf ? e->value.buf : "");
}

static bool ident_chars(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (!n || n > max)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return false;
	return true;
}

static void job_int(struct diag *d, struct ini_entry *e, long long lo,
		    long long hi, int *out)
{
	char why[WHY_BUF];
	long long v;
	if (!e)
		return;
	if (parse_int(e->value.buf, lo, hi, &v, why) < 0)
		diag_error(d, e->line, "%s: %s", e->key, why);
	else
		*out = (int)v;
}

static void job_dur(struct diag *d, struct ini_entry *e, int64_t *out)
{
	char why[WHY_BUF];
	if (!e)
		return;
	/* As an agent's timeout (runner.conf(5)): at most 365 days. */
	if (parse_duration_max(e->value.buf, 365 * 86400000LL, out, why) < 0)
		diag_error(d, e->line, "%s: %s", e->key, why);
	else if (*out == 0)
		diag_error(d, e->line, "%s: must be greater than 0", e->key);
}

int job_parse(struct job *j, struct diag *d, const char *buf, size_t len,
	      const struct conf *conf, int home_fd)
{
	struct ini_doc doc = INI_DOC_INIT;
	struct symset ss = { STRMAP_INIT, NULL, 0, 0, 0, "" };
	char why[WHY_BUF];
	int first_line = 1;
	int errors_before = d->errors;

	if (len > JOB_MAX_BYTES) {
		diag_error(d, 1, "job file larger than 64 MiB");
		return -1;
	}
	if (len == 0) {
		diag_error(d, 1, "empty job file");
		return -1;
	}
	inidoc_parse(&doc, d, buf, len);

	for (size_t i = 0; i < doc.nsections; i++) {
		const char *name = doc.sections[i].name;
		bool has_keys = false;
		for (size_t k = 0; k < doc.n && !has_keys; k++)
			has_keys = !strcmp(doc.e[k].section, name);
		if (!has_keys && strcmp(name, "job") && strcmp(name, "params"))
			diag_error(d, doc.sections[i].line,
				   "unknown section [%s] (only [job] and "
				   "[params])",
				   name);
	}
	/* Every value of every section: no control characters, bounded. */
	for (size_t i = 0; i < doc.n; i++) {
		struct ini_entry *e = &doc.e[i];
		bool job_sec = !strcmp(e->section, "job");
		if (job_sec && first_line == 1)
			first_line = e->line;
		/* A tab may separate symbols; [params] values take none. */
		if (has_control(e->value.buf ? e->value.buf : "", job_sec))
			diag_error(d, e->line, "%s: control character in value",
				   e->key);
		if (!job_sec && strcmp(e->section, "params")) {
			if (!*e->section)
				diag_error(d, e->line,
					   "'%s' outside [job] and [params]",
					   e->key);
			else
				diag_error(d, e->line,
					   "unknown section [%s] (only [job] "
					   "and [params])",
					   e->section);
			e->used = true;
		}
	}

	struct ini_entry *e;
	if ((e = inidoc_get(&doc, "job", "id"))) {
		if (!strcmp(e->value.buf, "archive") ||
		    !strcmp(e->value.buf, "runner"))
			diag_error(d, e->line,
				   "id '%s' is reserved (batches/archive/, "
				   "logs/runner.log)",
				   e->value.buf);
		else if (!valid_batch_id(e->value.buf))
			diag_error(d, e->line,
				   "id '%.80s' must match "
				   "[A-Za-z0-9][A-Za-z0-9._-]{0,63} without '..'",
				   e->value.buf);
		else
			j->id = xstrdup(e->value.buf);
	}
	j->name = take_string(d, inidoc_get(&doc, "job", "name"), 256);
	j->origin = take_string(d, inidoc_get(&doc, "job", "origin"), 256);
	if ((e = inidoc_get(&doc, "job", "agent"))) {
		if (!valid_agent_name(e->value.buf))
			diag_error(d, e->line, "agent '%.80s' is not a valid name",
				   e->value.buf);
		else if (conf && !conf_agent(conf, e->value.buf))
			diag_error(d, e->line,
				   "agent '%s' is not defined in %s",
				   e->value.buf, conf->path);
		else
			j->agent = xstrdup(e->value.buf);
	} else {
		diag_error(d, first_line, "[job] has no 'agent'");
	}
	if ((e = inidoc_get(&doc, "job", "source"))) {
		if (!valid_source_name(e->value.buf))
			diag_error(d, e->line,
				   "source must match [A-Za-z0-9_.-]{1,64}");
		else
			j->source = xstrdup(e->value.buf);
	}
	if ((e = inidoc_get(&doc, "job", "timeframe"))) {
		if (!ident_chars(e->value.buf, 32))
			diag_error(d, e->line,
				   "timeframe must match [A-Za-z0-9_.-]{1,32}");
		else
			j->timeframe = xstrdup(e->value.buf);
	}
	int64_t start_day = 0, end_day = 0;
	if ((e = inidoc_get(&doc, "job", "start"))) {
		if (parse_date(e->value.buf, &start_day, why) < 0)
			diag_error(d, e->line, "start: %s", why);
		else
			j->start = xstrdup(e->value.buf);
	}
	if ((e = inidoc_get(&doc, "job", "end"))) {
		if (parse_date(e->value.buf, &end_day, why) < 0)
			diag_error(d, e->line, "end: %s", why);
		else
			j->end = xstrdup(e->value.buf);
		if (j->start && j->end && start_day > end_day)
			diag_error(d, e->line, "end %s is before start %s",
				   j->end, j->start);
	}
	job_int(d, inidoc_get(&doc, "job", "priority"), -100, 100, &j->priority);
	job_int(d, inidoc_get(&doc, "job", "concurrency"), 1, 65535,
		&j->concurrency);
	job_int(d, inidoc_get(&doc, "job", "max_attempts"), 1, 1000,
		&j->max_attempts);
	job_dur(d, inidoc_get(&doc, "job", "timeout"), &j->timeout_ms);
	job_dur(d, inidoc_get(&doc, "job", "batch_timeout"),
		&j->batch_timeout_ms);

	struct ini_entry *sym = inidoc_get(&doc, "job", "symbols");
	struct ini_entry *symf = inidoc_get(&doc, "job", "symbols_file");
	int sym_line = sym ? sym->line : first_line;
	if (sym)
		split_symbols(j, &ss, d, sym->line, "", sym->value.buf, sym);
	if (symf) {
		if (symf->value.len > 4096)
			diag_error(d, symf->line, "symbols_file: too long");
		else
			read_symbols_file(j, &ss, d, symf->line,
					  symf->value.buf, home_fd);
	}
	if (!sym && !symf)
		diag_error(d, first_line, "[job] has neither 'symbols' nor "
					  "'symbols_file'");
	else if (ss.n == 0 && d->errors == errors_before)
		diag_error(d, (sym ? sym : symf)->line, "no symbols");

	size_t param_cap = 0;
	struct strmap upper = STRMAP_INIT;	/* RUNNER_PARAM_<KEY> clashes */
	char **uppers = NULL;
	size_t nuppers = 0, capuppers = 0;
	for (size_t i = 0; i < doc.n; i++) {
		e = &doc.e[i];
		if (strcmp(e->section, "params"))
			continue;
		e->used = true;
		if (!ident_chars(e->key, 64) || strpbrk(e->key, ".-")) {
			diag_error(d, e->line,
				   "parameter name '%.80s' must match "
				   "[A-Za-z0-9_]{1,64}",
				   e->key);
			continue;
		}
		if (e->value.len > 4096) {
			diag_error(d, e->line, "%s: longer than 4096 bytes",
				   e->key);
			continue;
		}
		char *up = xstrdup(e->key);
		for (char *q = up; *q; q++)
			if (*q >= 'a' && *q <= 'z')
				*q = (char)(*q - 'a' + 'A');
		GROW(uppers, capuppers, nuppers + 1);
		uppers[nuppers++] = up;
		struct strmap_entry *clash = strmap_put(&upper, up, i);
		if (clash) {
			diag_error(d, e->line,
				   "parameter '%s' and '%s' (line %d) are the "
				   "same RUNNER_PARAM_%s",
				   e->key, doc.e[clash->value].key,
				   doc.e[clash->value].line, up);
			continue;
		}
		GROW(j->params, param_cap, j->nparams + 1);
		j->params[j->nparams].key = xstrdup(e->key);
		j->params[j->nparams].value = xstrdup(e->value.buf);
		j->nparams++;
	}
	strmap_release(&upper);
	for (size_t i = 0; i < nuppers; i++)
		free(uppers[i]);
	free(uppers);

	for (size_t i = 0; i < doc.n; i++) {
		e = &doc.e[i];
		if (e->used)
			continue;
		const char *near = inidoc_near(&doc, "job", e->key);
		if (!strcmp(e->section, "job"))
			diag_error(d, e->line, "unknown key '%s' in [job]%s%s%s",
				   e->key, near ? " (did you mean '" : "",
				   near ? near : "", near ? "'?)" : "");
	}
	for (size_t i = 0; i < doc.n; i++) {
		e = &doc.e[i];
		if (!strcmp(e->section, "job") && e->value.len > 4096 &&
		    strcmp(e->key, "symbols") && strcmp(e->key, "name") &&
		    strcmp(e->key, "origin") && strcmp(e->key, "symbols_file"))
			diag_error(d, e->line, "%s: longer than 4096 bytes",
				   e->key);
	}
	inidoc_release(&doc);

	if (d->errors == errors_before && ss.n <= JOB_MAX_SYMBOLS) {
		j->symbols = xmalloc(ss.n * sizeof(char *));
		struct strmap seen = STRMAP_INIT;
		for (size_t i = 0; i < ss.n; i++) {
			char *s = j->pool.buf + ss.offs[i];
			if (strmap_put(&seen, s, i)) {
				if (!ss.dups++)
					snprintf(ss.first_dup,
						 sizeof(ss.first_dup), "%s", s);
				continue;
			}
			j->symbols[j->nsymbols++] = s;
		}
		strmap_release(&seen);
		if (ss.dups)
			diag_warning(d, sym_line,
				     "%d symbol%s listed twice, run once "
				     "(first: %s)",
				     ss.dups, ss.dups == 1 ? "" : "s",
				     ss.first_dup);
	}
	free(ss.offs);
	strmap_release(&ss.seen);
	return d->errors == errors_before ? 0 : -1;
}

void job_release(struct job *j)
{
	free(j->id);
	free(j->name);
	free(j->origin);
	free(j->agent);
	free(j->source);
	free(j->timeframe);
	free(j->start);
	free(j->end);
	for (size_t i = 0; i < j->nparams; i++) {
		free(j->params[i].key);
		free(j->params[i].value);
	}
	free(j->params);
	free(j->symbols);
	sb_release(&j->pool);
	memset(j, 0, sizeof(*j));
}

int job_read_path(const char *path, struct sb *out)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int saved = errno;
		error("%s: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return error("%s: not a regular file", path);
	}
	if (st.st_size > (off_t)JOB_MAX_BYTES ||
	    read_fd_bounded(fd, JOB_MAX_BYTES, out) < 0) {
		int saved = errno;
		close(fd);
		return error("%s: %s", path,
			     saved == EFBIG || st.st_size > (off_t)JOB_MAX_BYTES
				     ? "job file larger than 64 MiB"
				     : strerror(saved));
	}
	close(fd);
	return 0;
}
