/*
 * inifile: our one way of reading INI text (conf/runner.ini and job files),
 * on top of inih, plus the diagnostics list both parsers fill.
 *
 * inih reads the text through a reader function we give it; the reader
 * counts lines and keeps the raw line, which lets us report file:line
 * (inih's handler gets no line number), tell a continuation line from a key
 * given twice (inih hands both over as "the same key again"), recover key
 * names longer than inih's 50-byte name buffer, and report every malformed
 * line instead of only the first.
 *
 *   struct diag d = DIAG_INIT("jobs/x.job");
 *   inifile_parse(&d, buf, len, handler, arg);
 *   if (d.errors) fputs(d.text.buf, stderr);
 *   diag_release(&d);
 *
 * Before parsing, the whole text is checked for NUL bytes and invalid UTF-8
 * (each is an error with its line).  The handler is called once per
 * "key = value" line and once per continuation line (continuation = true,
 * key = the key being continued); it reports problems with diag_error()
 * and its return value is ignored.  A section header calls it with key and
 * value NULL (section = the name as written between the brackets), so that
 * an empty section is seen too.  inifile_setup() sets inih's run-time
 * switches (heap line buffer that grows to max_line bytes) and must be
 * called once before the first parse.
 */
#ifndef RUNNER_INIFILE_H
#define RUNNER_INIFILE_H

#include "util.h"

struct diag {
	const char *file;
	struct sb text; /* "FILE:LINE: message\n" per problem */
	int errors;
	int warnings;
	int suppressed;	/* problems counted but not written out */
};
#define DIAG_INIT(f) { (f), SB_INIT, 0, 0, 0 }

void diag_error(struct diag *d, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void diag_warning(struct diag *d, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Print every collected line to stderr, each prefixed "runner: ". */
void diag_print(const struct diag *d);
void diag_release(struct diag *d);

typedef void (*inifile_handler)(void *arg, const char *section,
				const char *key, const char *value, int line,
				bool continuation);

void inifile_setup(size_t max_line);

/*
 * The common case: collect every entry in file order, joining continuation
 * lines to their key's value with one space, and reporting a key given
 * twice in one section as an error.  Entries live until inidoc_release().
 */
struct ini_seg {
	size_t off;	/* where a continuation line starts in value */
	int line;
};
struct ini_entry {
	char *section;
	char *key;
	struct sb value;
	int line;
	bool used;	/* set by the consumer; unused ones are unknown keys */
	struct ini_seg *segs;	/* continuation lines */
	size_t nsegs, capsegs;
};
struct ini_section {
	char *name;
	int line;
};
struct ini_doc {
	struct ini_entry *e;
	size_t n, cap;
	struct strmap index;	/* "section\x1fkey" -> entry index */
	char **keyv;		/* storage of those composite keys */
	size_t nkeyv, capkeyv;
	struct ini_section *sections;	/* every header, in file order */
	size_t nsections, capsections;
	char **asked;		/* "section\x1fkey" of every inidoc_get */
	size_t nasked, capasked;
};
#define INI_DOC_INIT { NULL, 0, 0, STRMAP_INIT, NULL, 0, 0, NULL, 0, 0, \
		       NULL, 0, 0 }
void inidoc_parse(struct ini_doc *doc, struct diag *d, const char *buf,
		  size_t len);
/* The entry for section/key, marking it used; NULL when absent. */
struct ini_entry *inidoc_get(struct ini_doc *doc, const char *section,
			     const char *key);
/* The key of section that inidoc_get was asked for and that key (an
 * unknown one) is a likely slip of ("agnet": "agent"), for a "did you
 * mean"; NULL: none. */
const char *inidoc_near(const struct ini_doc *doc, const char *section,
			const char *key);
void inidoc_release(struct ini_doc *doc);
/* The line of the byte at off in e->value (continuation lines included). */
int inientry_line_at(const struct ini_entry *e, size_t off);
void inifile_parse(struct diag *d, const char *buf, size_t len,
		   inifile_handler handler, void *arg);

#endif
