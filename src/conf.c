#include "conf.h"
#include "category.h"
#include "inifile.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONF_MAX_BYTES (16u << 20)

static bool name_chars(const char *s, size_t max, const char *extra)
{
	size_t n = strlen(s);
	if (!n || n > max)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
			return false;
	return true;
}

int valid_agent_name(const char *s)
{
	return name_chars(s, AGENT_NAME_MAX, "_.-");
}

int valid_source_name(const char *s)
{
	return name_chars(s, 64, "_.-");
}

struct loader {
	struct ini_doc doc;
	struct diag d;
	struct conf *c;
};

static struct ini_entry *get(struct loader *l, const char *sec, const char *key)
{
	return inidoc_get(&l->doc, sec, key);
}

static void get_int(struct loader *l, const char *sec, const char *key,
		    long long lo, long long hi, int *out)
{
	char why[WHY_BUF];
	long long v;
	struct ini_entry *e = get(l, sec, key);
	if (!e)
		return;
	if (parse_int(e->value.buf, lo, hi, &v, why) < 0)
		diag_error(&l->d, e->line, "%s: %s", key, why);
	else
		*out = (int)v;
}

/* Every duration and size has a largest value (runner.conf(5) lists
 * them): what the engine adds to a clock or hands to the kernel stays
 * far from overflowing. */
#define DAY_MS 86400000LL
#define GRACE_MAX_MS (3600 * 1000LL)		/* kill_grace */
#define SHUTDOWN_MAX_MS DAY_MS			/* shutdown_grace */
#define WINDOW_MAX_MS (30 * DAY_MS)	/* dedup, correlation, open_for, delays */
#define TIMEOUT_MAX_MS (365 * DAY_MS)		/* timeout, cpu_limit */
#define RETENTION_MAX_MS DURATION_MAX_MS	/* 36500d */
#define OUTPUT_MAX_BYTES (1ull << 40)		/* max_output, output_limit */
#define MEMORY_MAX_BYTES (1ull << 46)		/* memory_limit: 64T */

static void get_dur(struct loader *l, const char *sec, const char *key,
		    bool allow_zero, int64_t max_ms, int64_t *out)
{
	char why[WHY_BUF];
	int64_t v;
	struct ini_entry *e = get(l, sec, key);
	if (!e)
		return;
	if (parse_duration_max(e->value.buf, max_ms, &v, why) < 0)
		diag_error(&l->d, e->line, "%s: %s", key, why);
	else if (!allow_zero && v == 0)
		diag_error(&l->d, e->line, "%s: must be greater than 0", key);
	else
		*out = v;
}

static void get_size(struct loader *l, const char *sec, const char *key,
		     uint64_t min, uint64_t max, uint64_t *out)
{
	char why[WHY_BUF];
	uint64_t v;
	struct ini_entry *e = get(l, sec, key);
	if (!e)
		return;
	if (parse_size_max(e->value.buf, max, &v, why) < 0)
		diag_error(&l->d, e->line, "%s: %s", key, why);
	else if (v < min)
		diag_error(&l->d, e->line, "%s: at least %llu bytes", key,
			   (unsigned long long)min);
	else
		*out = v;
}

static void get_words(struct loader *l, const char *sec, const char *key,
		      int required_at, char ***out, size_t *n)
{
	char why[WHY_BUF];
	struct ini_entry *e = get(l, sec, key);
	if (!e) {
		if (required_at)
			diag_error(&l->d, required_at, "[%s] has no '%s'", sec,
				   key);
		return;
	}
	if (has_control(e->value.buf, true)) {
		diag_error(&l->d, e->line, "%s: control character in value",
			   key);
		return;
	}
	words_free(*out);
	*out = NULL;
	*n = 0;
	if (split_words(e->value.buf, out, n, why) < 0)
		diag_error(&l->d, e->line, "%s: %s", key, why);
	else if (required_at && !*n)
		diag_error(&l->d, e->line, "%s: empty", key);
}

/*
 * remote_wrapper = yes | no | PATH: with a launcher, the runner that goes
 * between it and the command (remote.h); yes (the default) is this
 * program, as the kernel names it, which the hosts the launcher reaches
 * must have at the same path.
 */
static void get_wrapper(struct loader *l, const char *sec,
			struct agent_conf *a)
{
	struct ini_entry *e = get(l, sec, "remote_wrapper");
	const char *v = e ? e->value.buf : "yes";
	if (e && strcmp(v, "yes") && strcmp(v, "no") && v[0] != '/') {
		diag_error(&l->d, e->line,
			   "remote_wrapper: '%s' is not yes, no or an "
			   "absolute path", v);
		return;
	}
	if (!a->nlauncher || !strcmp(v, "no"))
		return;
	if (v[0] == '/') {
		a->wrapper = xstrdup(v);
		return;
	}
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		diag_error(&l->d, e ? e->line : 0,
			   "remote_wrapper: cannot name this program "
			   "(/proc/self/exe); give its path");
		return;
	}
	self[n] = '\0';
	a->wrapper = xstrdup(self);
}

static char *find_on_path(const char *word)
{
	const char *path = getenv("PATH");
	if (strchr(word, '/') || !path)
		return xstrdup(word);
	while (*path) {
		const char *colon = strchr(path, ':');
		size_t n = colon ? (size_t)(colon - path) : strlen(path);
		char *cand = xasprintf("%.*s/%s", (int)n, n ? path : ".", word);
		struct stat st;
		if (!stat(cand, &st) && S_ISREG(st.st_mode) &&
		    !access(cand, X_OK))
			return cand;
		free(cand);
		path += n + (colon ? 1 : 0);
	}
	return xstrdup(word);
}

/*
 * pass_env and env_file: variables an agent receives besides its env,
 * as "NAME=VALUE" words in *v (NULL-terminated, *n of them); a name given
 * again replaces the entry before.  Values never reach a message: a
 * vendor key must not end up in a log.
 */
#define ENV_FILE_MAX_BYTES (1u << 20)

static bool env_name_ok(const char *s, size_t n)
{
	if (!n || isdigit((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

static void env_put(char ***v, size_t *n, char *entry)
{
	size_t klen = strcspn(entry, "=") + 1, cap = *v ? *n + 1 : 0;
	for (size_t i = 0; i < *n; i++)
		if (!strncmp((*v)[i], entry, klen)) {
			free((*v)[i]);
			(*v)[i] = entry;
			return;
		}
	GROW(*v, cap, *n + 2);
	(*v)[(*n)++] = entry;
	(*v)[*n] = NULL;
}

/* One line of an env file ("NAME=VALUE", "export NAME=VALUE", a value in
 * '...' or "..." taken as it is within): 0 with the entry, or -1 with
 * why. */
static int env_line(char *line, char **entry, const char **why)
{
	while (*line == ' ' || *line == '\t')
		line++;
	if (!strncmp(line, "export ", 7))
		line += 7;
	char *eq = strchr(line, '=');
	if (!eq) {
		*why = "expected NAME=VALUE";
		return -1;
	}
	if (!env_name_ok(line, (size_t)(eq - line)) ||
	    !strncmp(line, "RUNNER_", 7)) {
		*why = "the name must match [A-Za-z_][A-Za-z0-9_]* and not "
		       "start with RUNNER_";
		return -1;
	}
	char *val = eq + 1;
	size_t vn = strlen(val);
	if (vn >= 2 && (val[0] == '"' || val[0] == '\'') &&
	    val[vn - 1] == val[0]) {
		val++;
		vn -= 2;
	}
	*entry = xasprintf("%.*s=%.*s", (int)(eq - line), line, (int)vn, val);
	return 0;
}

static void get_env_file(struct loader *l, const char *sec, char ***v,
			 size_t *n)
{
	struct ini_entry *e = get(l, sec, "env_file");
	struct sb text = SB_INIT;
	struct stat st;
	if (!e || !*e->value.buf)
		return;
	char *path = e->value.buf[0] == '/' ? xstrdup(e->value.buf) : NULL;
	if (!path) {
		const char *slash = strrchr(l->c->path, '/');
		path = slash ? xasprintf("%.*s/%s", (int)(slash - l->c->path),
					 l->c->path, e->value.buf)
			     : xstrdup(e->value.buf);
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	const char *why = NULL;
	if (fd < 0 || fstat(fd, &st) < 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (read_fd_bounded(fd, ENV_FILE_MAX_BYTES, &text) < 0)
		why = errno == EFBIG ? "larger than 1 MiB" : strerror(errno);
	if (why) {
		diag_error(&l->d, e->line, "env_file: %s: %s", path, why);
		goto out;
	}
	if (text.len && memchr(text.buf, '\0', text.len)) {
		diag_error(&l->d, e->line, "env_file: %s: NUL byte", path);
		goto out;
	}
	int lineno = 0;
	for (char *p = text.buf ? text.buf : "", *nl; *p; p = nl) {
		nl = strchr(p, '\n');
		nl = nl ? (*nl = '\0', nl + 1) : p + strlen(p);
		lineno++;
		size_t len = strlen(p);
		if (len && p[len - 1] == '\r')
			p[--len] = '\0';
		const char *t = p + strspn(p, " \t"), *bad = NULL;
		char *entry;
		if (!*t || *t == '#' || *t == ';')
			continue;
		if (has_control(p, true))
			bad = "control character";
		else if (env_line(p, &entry, &bad) == 0)
			env_put(v, n, entry);
		if (bad)
			diag_error(&l->d, e->line, "env_file: %s:%d: %s", path,
				   lineno, bad);
	}
out:
	if (fd >= 0)
		close(fd);
	sb_release(&text);
	free(path);
}

static void get_pass_env(struct loader *l, const char *sec, char ***v,
			 size_t *n)
{
	char **names = NULL;
	size_t nn = 0;
	struct ini_entry *e = get(l, sec, "pass_env");
	get_words(l, sec, "pass_env", 0, &names, &nn);
	for (size_t i = 0; i < nn; i++) {
		if (!env_name_ok(names[i], strlen(names[i])) ||
		    !strncmp(names[i], "RUNNER_", 7)) {
			diag_error(&l->d, e->line,
				   "pass_env: '%s' must match "
				   "[A-Za-z_][A-Za-z0-9_]* and not start with "
				   "RUNNER_",
				   names[i]);
			continue;
		}
		/* Not set in the runner's environment: nothing to pass (a
		 * shell that only submits need not hold the vendor's key). */
		const char *val = getenv(names[i]);
		if (val)
			env_put(v, n, xasprintf("%s=%s", names[i], val));
	}
	words_free(names);
}

static void load_agents(struct loader *l)
{
	char **home_env = NULL;
	size_t nhome_env = 0;
	get_env_file(l, "runner", &home_env, &nhome_env);
	get_pass_env(l, "runner", &home_env, &nhome_env);
	struct conf *c = l->c;
	size_t cap = 0;
	/* By section header, so that an agent without keys is seen too. */
	for (size_t i = 0; i < l->doc.nsections; i++) {
		const struct ini_section *sec = &l->doc.sections[i];
		if (strncmp(sec->name, "agent ", 6))
			continue;
		const char *name = sec->name + 6;
		bool seen = false;
		for (size_t k = 0; k < i; k++)
			seen |= !strcmp(l->doc.sections[k].name, sec->name);
		if (seen)
			continue;
		if (!valid_agent_name(name)) {
			diag_error(&l->d, sec->line,
				   "agent name '%s' must match "
				   "[A-Za-z0-9_.-]{1,%d}",
				   name, AGENT_NAME_MAX);
			/* mark the section's keys used: one error is enough */
			for (size_t j = 0; j < l->doc.n; j++)
				if (!strcmp(l->doc.e[j].section, sec->name))
					l->doc.e[j].used = true;
			continue;
		}
		GROW(c->agents, cap, c->nagents + 1);
		struct agent_conf *a = &c->agents[c->nagents++];
		memset(a, 0, sizeof(*a));
		a->name = xstrdup(name);
		a->classify = (struct classify_rules)CLASSIFY_RULES_INIT;
		a->max_concurrent = c->max_children;
		a->timeout_ms = 3600000;
		const char *s = sec->name;
		get_words(l, s, "command", sec->line, &a->command, &a->ncommand);
		get_words(l, s, "launcher", 0, &a->launcher, &a->nlauncher);
		get_words(l, s, "env", 0, &a->env, &a->nenv);
		get_int(l, s, "max_concurrent", 1, 65535, &a->max_concurrent);
		get_dur(l, s, "timeout", true, TIMEOUT_MAX_MS,
			&a->timeout_ms); /* 0: none */
		get_size(l, s, "memory_limit", 1 << 20, MEMORY_MAX_BYTES,
			 &a->memory_limit);
		get_dur(l, s, "cpu_limit", false, TIMEOUT_MAX_MS,
			&a->cpu_limit_ms);
		get_size(l, s, "output_limit", 4096, OUTPUT_MAX_BYTES,
			 &a->output_limit);
		a->max_output = c->max_output;
		get_size(l, s, "max_output", 4096, OUTPUT_MAX_BYTES,
			 &a->max_output);
		struct ini_entry *pm = get(l, s, "primary_metric");
		if (pm) {
			if (!valid_source_name(pm->value.buf))
				diag_error(&l->d, pm->line,
					   "primary_metric must match "
					   "[A-Za-z0-9_.-]{1,64}");
			else
				a->primary_metric = xstrdup(pm->value.buf);
		}
		struct ini_entry *src = get(l, s, "source");
		if (src) {
			if (!valid_source_name(src->value.buf))
				diag_error(&l->d, src->line,
					   "source must match "
					   "[A-Za-z0-9_.-]{1,64}");
			else
				a->source = xstrdup(src->value.buf);
		}
		for (size_t k = 0; k < a->nenv; k++) {
			const char *eq = strchr(a->env[k], '=');
			if (!eq || eq == a->env[k])
				diag_error(&l->d, get(l, s, "env")->line,
					   "env: '%s' is not KEY=VALUE",
					   a->env[k]);
		}
		get_wrapper(l, s, a);
		/* The home's, then the agent's file and names, then its env:
		 * the most particular wins. */
		char **env = NULL;
		size_t nenv = 0;
		for (size_t k = 0; k < nhome_env; k++)
			env_put(&env, &nenv, xstrdup(home_env[k]));
		get_env_file(l, s, &env, &nenv);
		get_pass_env(l, s, &env, &nenv);
		for (size_t k = 0; k < a->nenv; k++)
			if (strchr(a->env[k], '=') != a->env[k])
				env_put(&env, &nenv, xstrdup(a->env[k]));
		words_free(a->env);
		a->env = env;
		a->nenv = nenv;
		const char *argv0 = a->nlauncher ? a->launcher[0]
			: a->ncommand ? a->command[0] : NULL;
		if (argv0)
			a->exec_path = find_on_path(argv0);
	}
	words_free(home_env);
}

/*
 * The patterns of one [classify] or [classify NAME] section into rs, in the
 * order the file gives them; *builtin set when the section says.
 */
static void get_rules(struct loader *l, const char *sec,
		      struct classify_rules *rs, int *builtin)
{
	char why[WHY_BUF];
	for (size_t i = 0; i < l->doc.n; i++) {
		struct ini_entry *e = &l->doc.e[i];
		if (strcmp(e->section, sec))
			continue;
		if (!strcmp(e->key, "builtin")) {
			e->used = true;
			if (!strcmp(e->value.buf, "yes"))
				*builtin = 1;
			else if (!strcmp(e->value.buf, "no"))
				*builtin = 0;
			else
				diag_error(&l->d, e->line,
					   "builtin: expected yes or no");
			continue;
		}
		int cat = category_parse(e->key);
		if (cat == CAT_NONE)
			continue; /* an unknown key, reported with the others */
		e->used = true;
		char **w = NULL;
		size_t n = 0;
		if (split_words(e->value.buf, &w, &n, why) < 0) {
			diag_error(&l->d, e->line, "%s: %s", e->key, why);
			n = 0;
		} else if (!n) {
			diag_error(&l->d, e->line, "%s: no pattern", e->key);
		}
		for (size_t k = 0; k < n; k++) {
			if (classify_pattern_check(w[k], why) < 0)
				diag_error(&l->d, e->line, "%s: '%s': %s",
					   e->key, w[k], why);
			else if (rs->n >= CLASSIFY_RULES_MAX)
				diag_error(&l->d, e->line,
					   "%s: more than %d patterns in [%s]",
					   e->key, CLASSIFY_RULES_MAX, sec);
			else
				classify_rules_add(rs, w[k], cat);
		}
		words_free(w);
	}
}

/* [classify] for every agent, [classify NAME] for agent NAME first. */
static void load_classify(struct loader *l)
{
	struct conf *c = l->c;
	int home_builtin = -1;
	get_rules(l, "classify", &c->classify, &home_builtin);
	c->classify.builtin = home_builtin != 0;
	for (size_t k = 0; k < c->nagents; k++)
		c->agents[k].classify.builtin = c->classify.builtin;
	for (size_t i = 0; i < l->doc.nsections; i++) {
		const struct ini_section *sec = &l->doc.sections[i];
		if (strncmp(sec->name, "classify ", 9))
			continue;
		bool seen = false;
		for (size_t k = 0; k < i; k++)
			seen |= !strcmp(l->doc.sections[k].name, sec->name);
		if (seen)
			continue;
		struct agent_conf *a = NULL;
		for (size_t k = 0; k < c->nagents && !a; k++)
			if (!strcmp(c->agents[k].name, sec->name + 9))
				a = &c->agents[k];
		if (!a) {
			diag_error(&l->d, sec->line,
				   "[%s]: no agent '%s' is defined", sec->name,
				   sec->name + 9);
			for (size_t j = 0; j < l->doc.n; j++)
				if (!strcmp(l->doc.e[j].section, sec->name))
					l->doc.e[j].used = true;
			continue;
		}
		int builtin = -1;
		get_rules(l, sec->name, &a->classify, &builtin);
		if (builtin >= 0)
			a->classify.builtin = builtin;
	}
	for (size_t k = 0; k < c->nagents; k++) {
		struct agent_conf *a = &c->agents[k];
		for (size_t i = 0; i < c->classify.n; i++)
			classify_rules_add(&a->classify,
					   c->classify.v[i].pattern,
					   c->classify.v[i].category);
	}
}

struct conf *conf_default(void)
{
	struct conf *c = xcalloc(1, sizeof(*c));
	c->path = xstrdup("(defaults)");
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	c->max_children = ncpu > 0 ? (int)ncpu : 1;
	c->dedup_window_ms = 5 * 60000;
	c->kill_grace_ms = 5000;
	c->shutdown_grace_ms = 30000;
	c->max_output = 64ull << 20;
	c->max_attempts = 3;
	static const int64_t default_delays[] = { 1000, 2000, 4000,
						  8000, 16000, 30000 };
	c->ndelays = sizeof(default_delays) / sizeof(default_delays[0]);
	c->delays_ms = xmalloc(sizeof(default_delays));
	memcpy(c->delays_ms, default_delays, sizeof(default_delays));
	c->jitter = 0.2;
	c->retry_on = CAT_BIT(CAT_TIMEOUT) | CAT_BIT(CAT_ENGINE) |
		      CAT_BIT(CAT_UNKNOWN) | CAT_BIT(CAT_MEMORY);
	c->breaker_threshold = 3;
	c->breaker_open_ms = 30000;
	c->corr_window_ms = 5 * 60000;
	c->min_group = 2;
	c->archive_after_ms = 7 * 86400000LL;
	c->delete_archives_after_ms = 90 * 86400000LL;
	c->compression = COMPRESS_GZIP;
	c->classify = (struct classify_rules)CLASSIFY_RULES_INIT;
	return c;
}

struct conf *conf_load(const char *path)
{
	struct loader l = { INI_DOC_INIT, DIAG_INIT(path), NULL };
	struct sb text = SB_INIT;
	char why[WHY_BUF];
	struct conf *c;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) {
		error("%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		error("%s: not a regular file", path);
		close(fd);
		return NULL;
	}
	if (read_fd_bounded(fd, CONF_MAX_BYTES, &text) < 0) {
		error("%s: %s", path, strerror(errno));
		close(fd);
		sb_release(&text);
		return NULL;
	}
	close(fd);

	c = conf_default();
	l.c = c;
	free(c->path);
	c->path = xstrdup(path);

	inidoc_parse(&l.doc, &l.d, text.buf ? text.buf : "", text.len);
	sb_release(&text);

	get_int(&l, "runner", "max_children", 1, 65535, &c->max_children);
	get_words(&l, "runner", "notify", 0, &c->notify, &c->nnotify);
	if (c->nnotify)
		c->notify_path = find_on_path(c->notify[0]);
	get_dur(&l, "runner", "dedup_window", true, WINDOW_MAX_MS,
		&c->dedup_window_ms);
	get_dur(&l, "runner", "kill_grace", true, GRACE_MAX_MS,
		&c->kill_grace_ms);
	get_dur(&l, "runner", "shutdown_grace", true, SHUTDOWN_MAX_MS,
		&c->shutdown_grace_ms);
	get_size(&l, "runner", "max_output", 4096, OUTPUT_MAX_BYTES,
		 &c->max_output);

	get_int(&l, "retry", "max_attempts", 1, 1000, &c->max_attempts);
	struct ini_entry *e = get(&l, "retry", "delays");
	if (e) {
		char **w = NULL;
		size_t n = 0;
		int rc = split_words(e->value.buf, &w, &n, why);
		if (rc < 0 || !n) {
			diag_error(&l.d, e->line, "delays: %s",
				   rc < 0 ? why : "empty list");
		} else {
			free(c->delays_ms);
			c->delays_ms = xcalloc(n, sizeof(int64_t));
			c->ndelays = n;
			for (size_t i = 0; i < n; i++)
				if (parse_duration_max(w[i], WINDOW_MAX_MS,
						       &c->delays_ms[i],
						       why) < 0)
					diag_error(&l.d, e->line,
						   "delays: %s", why);
		}
		words_free(w);
	}
	e = get(&l, "retry", "jitter");
	if (e && parse_double(e->value.buf, 0, 1, &c->jitter, why) < 0)
		diag_error(&l.d, e->line, "jitter: %s", why);
	e = get(&l, "retry", "retry_on");
	if (e) {
		char **w = NULL;
		size_t n = 0;
		c->retry_on = 0;
		for (char *p = e->value.buf; p && *p; p++)
			if (*p == ',')
				*p = ' ';
		if (split_words(e->value.buf, &w, &n, why) < 0)
			diag_error(&l.d, e->line, "retry_on: %s", why);
		for (size_t i = 0; i < n; i++) {
			int cat = category_parse(w[i]);
			if (cat == CAT_NONE)
				diag_error(&l.d, e->line,
					   "retry_on: unknown category '%s'",
					   w[i]);
			c->retry_on |= CAT_BIT(cat);
		}
		c->retry_on &= ~CAT_BIT(CAT_NONE);
		words_free(w);
	}

	get_int(&l, "breaker", "threshold", 1, 1000000, &c->breaker_threshold);
	get_dur(&l, "breaker", "open_for", false, WINDOW_MAX_MS,
		&c->breaker_open_ms);
	get_dur(&l, "correlation", "window", false, WINDOW_MAX_MS,
		&c->corr_window_ms);
	get_int(&l, "correlation", "min_group", 1, 1000000, &c->min_group);
	get_dur(&l, "retention", "archive_after", true, RETENTION_MAX_MS,
		&c->archive_after_ms);
	get_dur(&l, "retention", "delete_archives_after", true,
		RETENTION_MAX_MS, &c->delete_archives_after_ms);
	e = get(&l, "retention", "compression");
	if (e) {
		if (!strcmp(e->value.buf, "gzip"))
			c->compression = COMPRESS_GZIP;
		else if (!strcmp(e->value.buf, "zstd"))
			c->compression = COMPRESS_ZSTD;
		else if (!strcmp(e->value.buf, "none"))
			c->compression = COMPRESS_NONE;
		else
			diag_error(&l.d, e->line,
				   "compression: expected gzip, zstd or none");
	}

	e = get(&l, "metrics", "textfile");
	if (e) {
		const char *p = e->value.buf;
		size_t n = strlen(p);
		if (has_control(p, true))
			diag_error(&l.d, e->line, "textfile: control character");
		else if (n >= 4096 || (n && p[n - 1] == '/'))
			diag_error(&l.d, e->line,
				   "textfile: not a file name (too long, or "
				   "ends in /)");
		else
			c->metrics_textfile = xstrdup(p);
	}

	load_agents(&l);
	load_classify(&l);

	static const char *const sections[] = {
		"runner", "retry", "breaker", "correlation", "retention",
		"classify", "metrics",
	};
	const char *last_unknown = NULL;
	for (size_t i = 0; i < l.doc.nsections; i++) {
		/* Sections without keys are seen only here. */
		const char *name = l.doc.sections[i].name;
		bool known = !strncmp(name, "agent ", 6) ||
			     !strncmp(name, "classify ", 9);
		for (size_t k = 0; k < sizeof(sections) / sizeof(*sections); k++)
			known |= !strcmp(name, sections[k]);
		bool has_keys = false;
		for (size_t k = 0; k < l.doc.n && !has_keys; k++)
			has_keys = !strcmp(l.doc.e[k].section, name);
		if (!known && !has_keys)
			diag_error(&l.d, l.doc.sections[i].line,
				   "unknown section [%s]", name);
	}
	for (size_t i = 0; i < l.doc.n; i++) {
		struct ini_entry *ent = &l.doc.e[i];
		if (ent->used)
			continue;
		bool known = !strncmp(ent->section, "agent ", 6) ||
			     !strncmp(ent->section, "classify ", 9);
		for (size_t k = 0; k < sizeof(sections) / sizeof(*sections); k++)
			known |= !strcmp(ent->section, sections[k]);
		if (!*ent->section) {
			diag_error(&l.d, ent->line,
				   "'%s' outside any [section]", ent->key);
		} else if (!known) {
			if (!last_unknown || strcmp(last_unknown, ent->section))
				diag_error(&l.d, ent->line,
					   "unknown section [%s]",
					   ent->section);
			last_unknown = ent->section;
		}
		else if (inidoc_near(&l.doc, ent->section, ent->key))
			diag_error(&l.d, ent->line, "unknown key '%s' in [%s] "
				   "(did you mean '%s'?)", ent->key, ent->section,
				   inidoc_near(&l.doc, ent->section, ent->key));
		else
			diag_error(&l.d, ent->line, "unknown key '%s' in [%s]",
				   ent->key, ent->section);
	}

	inidoc_release(&l.doc);
	if (l.d.errors) {
		diag_print(&l.d);
		diag_release(&l.d);
		conf_free(c);
		return NULL;
	}
	diag_release(&l.d);
	return c;
}

const struct agent_conf *conf_agent(const struct conf *c, const char *name)
{
	for (size_t i = 0; i < c->nagents; i++)
		if (!strcmp(c->agents[i].name, name))
			return &c->agents[i];
	return NULL;
}

void conf_free(struct conf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nagents; i++) {
		struct agent_conf *a = &c->agents[i];
		free(a->name);
		words_free(a->command);
		words_free(a->launcher);
		free(a->wrapper);
		words_free(a->env);
		free(a->exec_path);
		free(a->source);
		free(a->primary_metric);
		classify_rules_release(&a->classify);
	}
	classify_rules_release(&c->classify);
	free(c->agents);
	words_free(c->notify);
	free(c->notify_path);
	free(c->delays_ms);
	free(c->metrics_textfile);
	free(c->path);
	free(c);
}
