#include "history.h"
#include "archive.h"
#include "category.h"
#include "job.h"
#include "meta.h"
#include "util.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUCKETS 256

static unsigned bucket_of(const char *symbol)
{
	return (unsigned)(hash64(symbol, strlen(symbol)) & (BUCKETS - 1));
}

/* The metrics of an item's last result, compact, or NULL. */
static char *item_metrics(const struct item *it)
{
	const struct attempt *a = meta_last_result(it);
	cJSON *doc = a ? cJSON_Parse(a->result) : NULL;
	cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, "metrics");
	char *text = cJSON_IsObject(m) ? cJSON_PrintUnformatted(m) : NULL;
	cJSON_Delete(doc);
	if (text && strlen(text) > HISTORY_METRICS_MAX) {
		free(text);
		text = NULL;
	}
	return text;
}

int history_add_batch(int state_fd, const struct batch *b)
{
	if (ensure_dir(state_fd, "history", 0755) < 0)
		return -1;
	int dfd = open_dir_at(state_fd, "history");
	if (dfd < 0)
		return -1;
	struct sb *lines = xcalloc(BUCKETS, sizeof(*lines));
	for (size_t i = 0; i < b->nitems; i++) {
		const struct item *it = &b->items[i];
		if (!state_final(it->state))
			continue;
		const struct attempt *last = meta_last_done(it);
		int64_t d = meta_attempt_duration(last);
		char *m = item_metrics(it);
		struct sb *l = &lines[bucket_of(it->symbol)];
		sb_addf(l, "%s\t%s\t%lld\t%lld\t%s\t%s\t", it->symbol, b->c.id,
			(long long)b->c.created_ms, (long long)it->completed_ms,
			state_name(it->state),
			it->state == ST_FAILED && last
				? category_name(last->category) : "-");
		if (d >= 0)
			sb_addf(l, "%lld", (long long)d);
		else
			sb_adds(l, "-");
		sb_addf(l, "\t%u\t%s\n", it->nattempts, m ? m : "-");
		free(m);
	}
	int rc = 0, saved = 0;
	for (unsigned k = 0; k < BUCKETS; k++) {
		if (!lines[k].len)
			continue;
		char name[8];
		snprintf(name, sizeof(name), "%02x", k);
		int fd = openat(dfd, name,
				O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW |
					O_CLOEXEC,
				0644);
		/* A line a power cut tore stays alone on its line: the next
		 * append starts on a new one.  Synced, so that a batch final
		 * in its journal is in the index too (up to the instant
		 * between the two). */
		struct stat st;
		char last = '\n';
		if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0 &&
		    pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n' &&
		    write_all(fd, "\n", 1) < 0)
			last = 0;
		if (fd < 0 || !last ||
		    write_all(fd, lines[k].buf, lines[k].len) < 0 ||
		    fdatasync(fd) < 0) {
			saved = errno;
			rc = -1;
		}
		if (fd >= 0)
			close(fd);
		sb_release(&lines[k]);
	}
	free(lines);
	/* and the names of buckets made now */
	if (fsync_dir(dfd) < 0 && !rc) {
		saved = errno;
		rc = -1;
	}
	/* Lines that may not be there (a full disk, a failed sync: retrying
	 * it would not make them safe): the index no longer says it holds
	 * every batch, and the next lookup builds it again from the
	 * journals. */
	if (rc < 0 && unlinkat(dfd, ".complete", 0) == 0)
		fsync_dir(dfd);
	close(dfd);
	errno = saved;
	return rc;
}

/* ---- building the index of a home from before it ---- */

struct build {
	struct home *h;
	size_t batches;
};

static void build_batch(void *arg, const char *id, int bfd)
{
	struct build *bd = arg;
	struct batch b;
	(void)id;
	if (batch_replay_dir(bfd, &b) == 0 && b.final &&
	    history_add_batch(bd->h->state, &b) == 0)
		bd->batches++;
	batch_release(&b);
}

static int build_archived(void *arg, const struct archive_info *ai)
{
	struct build *bd = arg;
	struct batch b;
	if (archive_load_batch(bd->h, ai->s.id, &b) == 0 && b.final &&
	    history_add_batch(bd->h->state, &b) == 0)
		bd->batches++;
	batch_release(&b);
	return 0;
}

static int ensure_index(struct home *h)
{
	struct stat st;
	if (fstatat(h->state, "history/.complete", &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	info("building the history index of this home (once)");
	struct build bd = { h, 0 };
	if (home_each_batch(h, build_batch, &bd) < 0)
		return -1;
	archive_list(h, build_archived, &bd);
	if (ensure_dir(h->state, "history", 0755) < 0)
		return -1;
	int fd = openat(h->state, "history/.complete",
			O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* ---- lookup ---- */

static int cmp_rows(const void *pa, const void *pb)
{
	const struct hist_row *a = pa, *b = pb;
	if (a->created_ms != b->created_ms)
		return a->created_ms < b->created_ms ? 1 : -1;
	return strcmp(b->batch, a->batch);
}

static bool parse_line(char *line, const char *symbol, struct hist_row *r,
		       const char **batch)
{
	char *f[9];
	int n = 0;
	for (char *p = line; n < 9;) {
		f[n++] = p;
		char *tab = strchr(p, '\t');
		if (!tab)
			break;
		*tab = '\0';
		p = tab + 1;
	}
	/* A line no runner wrote (a batch id, state or category no job or
	 * runner gives, control bytes in its metrics) is skipped, and so are
	 * two lines a power cut ran together (more than nine fields). */
	if (n != 9 || strcmp(f[0], symbol) || strchr(f[8], '\t') ||
	    !valid_batch_id(f[1]) ||
	    (strcmp(f[4], "succeeded") && strcmp(f[4], "failed") &&
	     strcmp(f[4], "cancelled")) ||
	    (strcmp(f[5], "-") && category_parse(f[5]) == CAT_NONE) ||
	    has_control(f[8], false))
		return false;
	memset(r, 0, sizeof(*r));
	*batch = f[1];
	snprintf(r->batch, sizeof(r->batch), "%s", f[1]);
	r->created_ms = strtoll(f[2], NULL, 10);
	r->completed_ms = strtoll(f[3], NULL, 10);
	snprintf(r->state, sizeof(r->state), "%s", f[4]);
	snprintf(r->category, sizeof(r->category), "%s",
		 strcmp(f[5], "-") ? f[5] : "");
	r->duration_ms = strcmp(f[6], "-") ? strtoll(f[6], NULL, 10) : -1;
	r->attempts = strtol(f[7], NULL, 10);
	r->metrics = strcmp(f[8], "-") ? xstrdup(f[8]) : NULL;
	return true;
}

int history_lookup(struct home *h, const char *symbol, struct hist_row **rows,
		   size_t *n)
{
	*rows = NULL;
	*n = 0;
	if (ensure_index(h) < 0)
		return -1;
	char name[32];
	snprintf(name, sizeof(name), "history/%02x", bucket_of(symbol));
	int fd = openat(h->state, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	struct sb buf = SB_INIT;
	int rc = read_fd_bounded(fd, (size_t)1 << 30, &buf);
	close(fd);
	if (rc < 0) {
		sb_release(&buf);
		return -1;
	}
	size_t cap = 0;
	struct strmap seen = STRMAP_INIT;	/* batch -> its row */
	for (char *p = buf.buf; p && p < buf.buf + buf.len;) {
		char *nl = memchr(p, '\n', (size_t)(buf.buf + buf.len - p));
		if (!nl)
			break; /* a line being written */
		*nl = '\0';
		struct hist_row r;
		const char *batch;
		if (parse_line(p, symbol, &r, &batch)) {
			/* The last line of a batch wins. */
			struct strmap_entry *e = strmap_put(&seen, batch, *n);
			if (e) {
				free((*rows)[e->value].metrics);
				(*rows)[e->value] = r;
			} else {
				GROW(*rows, cap, *n + 1);
				(*rows)[(*n)++] = r;
			}
		}
		p = nl + 1;
	}
	strmap_release(&seen);
	sb_release(&buf);
	if (*n)
		qsort(*rows, *n, sizeof(**rows), cmp_rows);
	return 0;
}

void history_free(struct hist_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(rows[i].metrics);
	free(rows);
}
