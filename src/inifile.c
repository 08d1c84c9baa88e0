#include "inifile.h"

#include <ini.h>
#include <stdlib.h>
#include <string.h>

/* Past this many problems only the count grows: a hostile file of a million
 * bad symbols must not print a million lines. */
#define DIAG_MAX_LINES 50

__attribute__((format(printf, 4, 0)))
static void diag_vadd(struct diag *d, const char *kind, int line,
		      const char *fmt, va_list ap)
{
	if (d->errors + d->warnings >= DIAG_MAX_LINES) {
		d->suppressed++;
		return;
	}
	size_t start = d->text.len;
	if (line > 0)
		sb_addf(&d->text, "%s:%d: %s", d->file, line, kind);
	else
		sb_addf(&d->text, "%s: %s", d->file, kind);
	sb_vaddf(&d->text, fmt, ap);
	/* A hostile value, or file name, must not break the one line per
	 * problem rule, nor send terminal controls to whoever reads it. */
	for (size_t i = start; i < d->text.len; i++)
		if ((unsigned char)d->text.buf[i] < 0x20 ||
		    (unsigned char)d->text.buf[i] == 0x7f)
			d->text.buf[i] = '?';
	sb_addc(&d->text, '\n');
}

void diag_error(struct diag *d, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_vadd(d, "", line, fmt, ap);
	va_end(ap);
	d->errors++;
}

void diag_warning(struct diag *d, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_vadd(d, "warning: ", line, fmt, ap);
	va_end(ap);
	d->warnings++;
}

/* A collected problem, for printing in line order. */
struct diag_line {
	const char *p;
	size_t n, seq;
	long line;	/* 0: the file as a whole */
};

static int diag_line_cmp(const void *a, const void *b)
{
	const struct diag_line *x = a, *y = b;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Problems are found key by key, not line by line: printed in line order
 * (those of one line in the order found), a reader fixes them top down. */
void diag_print(const struct diag *d)
{
	const char *p = d->text.buf;
	size_t flen = strlen(d->file), n = 0, cap = 0;
	struct diag_line *v = NULL;
	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		GROW(v, cap, n + 1);
		v[n] = (struct diag_line){ p, len, n, 0 };
		if (len > flen && p[flen] == ':')
			v[n].line = strtol(p + flen + 1, NULL, 10);
		n++;
		p += len + (nl ? 1 : 0);
	}
	if (n)
		qsort(v, n, sizeof(*v), diag_line_cmp);
	for (size_t i = 0; i < n; i++) {
		const char *w = strstr(v[i].p, ": warning: ");
		bool warn = w && (size_t)(w - v[i].p) < v[i].n;
		if (!warn || verbosity >= 0)
			fprintf(stderr, "%s%s: %.*s\n",
				!report_journal ? "" : warn ? "<4>" : "<3>",
				progname, (int)v[i].n, v[i].p);
	}
	free(v);
	if (d->suppressed)
		fprintf(stderr, "%s: %s: ... and %d more %s\n", progname,
			d->file, d->suppressed,
			d->suppressed == 1 ? "problem" : "problems");
}

void diag_release(struct diag *d)
{
	sb_release(&d->text);
	d->errors = d->warnings = d->suppressed = 0;
}

struct reader {
	struct diag *d;
	const char *buf, *end, *pos;
	int line;		/* number of the line being read */
	bool at_line_start;
	const char *raw;	/* the current raw line, and its length */
	size_t raw_len;
	bool cont;		/* the current line continues the previous key */
	bool have_key;		/* a key was seen since the last section */
	char last_key[512];	/* that key, as written */
	inifile_handler handler;
	void *arg;
};

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Look at a whole raw line before inih does, the way inih will see it. */
static void inspect_line(struct reader *r)
{
	const char *s = r->raw, *e = r->raw + r->raw_len;
	if (r->line == 1 && e - s >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3))
		s += 3;
	const char *t = s;
	while (t < e && blank(*t))
		t++;
	while (e > t && (blank(e[-1]) || e[-1] == '\n'))
		e--;
	r->cont = false;
	if (t == e || *t == ';' || *t == '#')
		return;
	if (t > s && r->have_key) {
		r->cont = true;
		return;
	}
	if (*t == '[') {
		const char *close = memchr(t, ']', (size_t)(e - t));
		r->have_key = false;
		if (!close) {
			diag_error(r->d, r->line, "malformed section header");
			return;
		}
		const char *after = close + 1;
		while (after < e && blank(*after))
			after++;
		if (after < e && *after != ';' && *after != '#')
			diag_error(r->d, r->line,
				   "text after the section header");
		if (close - t - 1 > 48) {
			diag_error(r->d, r->line, "section name too long");
			return;
		}
		char name[64];
		memcpy(name, t + 1, (size_t)(close - t - 1));
		name[close - t - 1] = '\0';
		r->handler(r->arg, name, NULL, NULL, r->line, false);
		return;
	}
	/* inih needs '=' or ':' before any inline " ;" comment. */
	for (const char *p = t; p < e; p++) {
		if (*p == '=' || *p == ':') {
			if (p == t)
				diag_error(r->d, r->line, "empty key name");
			return;
		}
		if (*p == ';' && p > t && blank(p[-1]))
			break;
	}
	diag_error(r->d, r->line, "expected KEY = VALUE");
}

/* fgets() over our buffer, counting lines. */
static char *reader_fn(char *str, int num, void *stream)
{
	struct reader *r = stream;
	size_t n, room;
	const char *nl;
	if (r->pos >= r->end || num < 2)
		return NULL;
	if (r->at_line_start) {
		r->line++;
		r->raw = r->pos;
		nl = memchr(r->pos, '\n', (size_t)(r->end - r->pos));
		r->raw_len = nl ? (size_t)(nl - r->pos + 1)
				: (size_t)(r->end - r->pos);
		inspect_line(r);
	}
	room = (size_t)num - 1;
	nl = memchr(r->pos, '\n', (size_t)(r->end - r->pos));
	n = nl ? (size_t)(nl - r->pos + 1) : (size_t)(r->end - r->pos);
	if (n > room)
		n = room;
	memcpy(str, r->pos, n);
	str[n] = '\0';
	r->pos += n;
	r->at_line_start = n && str[n - 1] == '\n';
	if (r->pos >= r->end)
		r->at_line_start = true;
	return str;
}

/* The key as written (inih cuts names at 49 bytes). */
static const char *raw_key(struct reader *r, const char *name, char *buf,
			   size_t n)
{
	const char *s = r->raw, *e = r->raw + r->raw_len;
	if (strlen(name) < 49)
		return name;
	if (r->line == 1 && e - s >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3))
		s += 3;
	while (s < e && blank(*s))
		s++;
	const char *k = s;
	while (s < e && *s != '=' && *s != ':')
		s++;
	while (s > k && blank(s[-1]))
		s--;
	size_t len = (size_t)(s - k);
	if (len >= n)
		len = n - 1;
	memcpy(buf, k, len);
	buf[len] = '\0';
	return buf;
}

static int handler_fn(void *user, const char *section, const char *name,
		      const char *value)
{
	struct reader *r = user;
	if (r->cont) {
		/* inih names the key it continues by its own (cut) copy. */
		r->handler(r->arg, section, r->last_key, value, r->line, true);
		return 1;
	}
	const char *key = raw_key(r, name, r->last_key, sizeof(r->last_key));
	if (key != r->last_key)
		snprintf(r->last_key, sizeof(r->last_key), "%s", key);
	r->have_key = true;
	r->handler(r->arg, section, r->last_key, value, r->line, false);
	return 1;
}

void inifile_setup(size_t max_line)
{
	ini_use_stack = false;
	ini_allow_realloc = true;
	ini_max_line = (int)max_line;
	ini_allow_multiline = true;
	ini_allow_inline_comments = true;
	ini_allow_bom = true;
	ini_stop_on_first_error = false;
	ini_allow_no_value = false;
}

/* Line number (1-based) of byte offset off. */
static int line_of(const char *buf, size_t off)
{
	int line = 1;
	for (size_t i = 0; i < off; i++)
		line += buf[i] == '\n';
	return line;
}

void inifile_parse(struct diag *d, const char *buf, size_t len,
		   inifile_handler handler, void *arg)
{
	const char *nul = memchr(buf, '\0', len);
	if (nul) {
		diag_error(d, line_of(buf, (size_t)(nul - buf)),
			   "NUL byte in file");
		return;
	}
	if (!utf8_valid(buf, len)) {
		/* Find the line: validate line by line. */
		const char *p = buf, *end = buf + len;
		int line = 1;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
			if (!utf8_valid(p, n))
				break;
			p += n + 1;
			line++;
		}
		diag_error(d, line, "invalid UTF-8");
		return;
	}
	struct reader r = {
		.d = d, .buf = buf, .end = buf + len, .pos = buf,
		.at_line_start = true, .handler = handler, .arg = arg,
	};
	int rc = ini_parse_stream(reader_fn, &r, handler_fn, &r);
	if (rc == -2)
		die(EX_INTERNAL, "%s: out of memory while parsing", d->file);
}

struct collect {
	struct ini_doc *doc;
	struct diag *d;
};

static char *composite(const char *section, const char *key)
{
	return xasprintf("%s\x1f%s", section, key);
}

static void collect_fn(void *arg, const char *section, const char *key,
		       const char *value, int line, bool continuation)
{
	struct collect *c = arg;
	struct ini_doc *doc = c->doc;
	if (!key) {
		GROW(doc->sections, doc->capsections, doc->nsections + 1);
		doc->sections[doc->nsections].name = xstrdup(section);
		doc->sections[doc->nsections].line = line;
		doc->nsections++;
		return;
	}
	char *ck = composite(section, key);
	struct strmap_entry *e = strmap_get(&doc->index, ck);

	if (continuation && e) {
		struct ini_entry *ent = &doc->e[e->value];
		if (ent->value.len)
			sb_addc(&ent->value, ' ');
		GROW(ent->segs, ent->capsegs, ent->nsegs + 1);
		ent->segs[ent->nsegs].off = ent->value.len;
		ent->segs[ent->nsegs].line = line;
		ent->nsegs++;
		sb_adds(&ent->value, value);
		free(ck);
		return;
	}
	if (e) {
		diag_error(c->d, line, "'%s' given twice (first at line %d)",
			   key, doc->e[e->value].line);
		free(ck);
		return;
	}
	GROW(doc->e, doc->cap, doc->n + 1);
	struct ini_entry *ent = &doc->e[doc->n];
	ent->section = xstrdup(section);
	ent->key = xstrdup(key);
	ent->value = (struct sb)SB_INIT;
	sb_adds(&ent->value, value);
	ent->line = line;
	ent->used = false;
	ent->segs = NULL;
	ent->nsegs = ent->capsegs = 0;
	GROW(doc->keyv, doc->capkeyv, doc->nkeyv + 1);
	doc->keyv[doc->nkeyv++] = ck;
	strmap_put(&doc->index, ck, doc->n);
	doc->n++;
}

void inidoc_parse(struct ini_doc *doc, struct diag *d, const char *buf,
		  size_t len)
{
	struct collect c = { doc, d };
	inifile_parse(d, buf, len, collect_fn, &c);
}

struct ini_entry *inidoc_get(struct ini_doc *doc, const char *section,
			     const char *key)
{
	char *ck = composite(section, key);
	struct strmap_entry *e = strmap_get(&doc->index, ck);
	GROW(doc->asked, doc->capasked, doc->nasked + 1);
	doc->asked[doc->nasked++] = ck;
	if (!e)
		return NULL;
	doc->e[e->value].used = true;
	return &doc->e[e->value];
}

const char *inidoc_near(const struct ini_doc *doc, const char *section,
			const char *key)
{
	size_t len = strlen(section), n = 0;
	const char **keys = xcalloc(doc->nasked + 1, sizeof(*keys));
	for (size_t i = 0; i < doc->nasked; i++)
		if (!strncmp(doc->asked[i], section, len) &&
		    doc->asked[i][len] == '\x1f')
			keys[n++] = doc->asked[i] + len + 1;
	const char *near = did_you_mean(key, keys, n);
	free(keys);
	return near;
}

void inidoc_release(struct ini_doc *doc)
{
	for (size_t i = 0; i < doc->nasked; i++)
		free(doc->asked[i]);
	free(doc->asked);
	for (size_t i = 0; i < doc->n; i++) {
		free(doc->e[i].section);
		free(doc->e[i].key);
		free(doc->e[i].segs);
		sb_release(&doc->e[i].value);
	}
	for (size_t i = 0; i < doc->nsections; i++)
		free(doc->sections[i].name);
	free(doc->sections);
	free(doc->e);
	for (size_t i = 0; i < doc->nkeyv; i++)
		free(doc->keyv[i]);
	free(doc->keyv);
	strmap_release(&doc->index);
	*doc = (struct ini_doc)INI_DOC_INIT;
}

int inientry_line_at(const struct ini_entry *e, size_t off)
{
	int line = e->line;
	for (size_t i = 0; i < e->nsegs && e->segs[i].off <= off; i++)
		line = e->segs[i].line;
	return line;
}
