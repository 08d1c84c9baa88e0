/*
 * cmd_output: `runner output`, an attempt's stdout or stderr byte for
 * byte, from its lane (lanes.h), from items/ for a batch from before
 * lanes, or from the batch's archive; --follow while it runs; --failed
 * the last stderr lines of every failed item, tagged.
 */
#include "cli.h"
#include "archive.h"
#include "batch.h"
#include "home.h"
#include "journal.h"
#include "lanes.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FOLLOW_POLL_MS 100

/* Where an attempt's stream lives for reading: fd, its range (len
 * UINT64_MAX: to the end of the file), and, for an archived batch, the
 * private copy of the member. */
struct stream {
	int fd;
	uint64_t off, len;
};

/* A member of an archived batch, copied to an unnamed temporary file. */
static int archived_member(const char *id, const char *member)
{
	const char *tmp = getenv("TMPDIR");
	int fd = open(tmp && *tmp ? tmp : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC,
		      0600);
	if (fd < 0)
		return -1;
	if (archive_copy_member(&home_, id, member, fd) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static int open_stream(const char *id, int dirfd, const struct item *it,
		       uint32_t n, int which, struct stream *s)
{
	const struct attempt *a = &it->log[n - 1];
	if (dirfd >= 0)
		return (s->fd = lanes_open_stream(dirfd, it->symbol, n, a, which,
						  &s->off, &s->len)) < 0
			       ? -1 : 0;
	/* Archived: the same member names, inside the archive. */
	char member[256];
	if (lanes_stream_where(it->symbol, n, a, which, member, sizeof(member),
			       &s->off, &s->len) < 0)
		return -1;
	s->fd = archived_member(id, member);
	return s->fd < 0 ? -1 : 0;
}

/* Copy [from, to) of fd to stdout: 0, or -1 (errno; ENODATA: the file
 * ends before to, shorter than the journal says). */
static int copy_range(int fd, uint64_t from, uint64_t to)
{
	static char buf[65536];
	while (from < to) {
		size_t want = to - from < sizeof(buf) ? (size_t)(to - from)
						      : sizeof(buf);
		ssize_t n = pread(fd, buf, want, (off_t)from);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			errno = ENODATA;
		if (n <= 0)
			return -1;
		if (write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
			return -1;
		from += (uint64_t)n;
	}
	return 0;
}

static void short_output(const char *id, const char *symbol, uint32_t n)
{
	if (errno == ENODATA)
		error("batch %s: %s attempt %u: its output file ends before the "
		      "range the journal records (truncated or damaged)",
		      id, symbol, n);
	else if (errno != EPIPE)
		error("batch %s: %s attempt %u: %s", id, symbol, n,
		      strerror(errno));
}

static uint64_t file_size(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && st.st_size > 0 ? (uint64_t)st.st_size : 0;
}

/* The last attempt of an item that started (or was reserved), 0: none. */
static uint32_t last_attempt(const struct item *it)
{
	for (uint32_t n = it->nattempts; n > 0; n--)
		if (it->log[n - 1].started_ms || it->log[n - 1].outcome)
			return n;
	return 0;
}

static bool owner_alive(const struct batch *b)
{
	return b->owner_pid > 0 &&
	       (kill(b->owner_pid, 0) == 0 || errno == EPERM);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/*
 * --follow: what the attempt has printed, then what it prints, until it
 * ends.  A lane goes to the next attempt only once the journal holds this
 * one's end (lanes.h), so while the journal shows it running every byte
 * up to the end of the lane file, measured before the journal was read,
 * is its own.
 */
static int follow(const char *id, int dirfd, const char *symbol,
		  uint32_t want, int which, bool once)
{
	struct journal j;
	struct batch b;
	batch_init(&b);
	if (journal_open(&j, dirfd, "journal", false, batch_replay, &b) < 0) {
		error("batches/%s/journal: %s", id, strerror(errno));
		batch_release(&b);
		return EX_IOERR_;
	}
	int rc = 0;
	struct stream s = { .fd = -1 };
	uint32_t n = 0;
	uint64_t printed = 0;
	for (;;) {
		struct item *it = batch_item(&b, symbol);
		if (!n) {
			uint32_t last = last_attempt(it);
			n = want ? (want <= last ? want : 0) : last;
			if (n && it->log[n - 1].started_ms &&
			    open_stream(id, dirfd, it, n, which, &s) < 0 &&
			    errno != ENOENT) {
				error("batches/%s/output: %s", id,
				      strerror(errno));
				rc = EX_IOERR_;
				break;
			}
			if (n && !it->log[n - 1].started_ms)
				n = 0; /* reserved: wait for its start */
			printed = s.fd >= 0 ? s.off : 0;
		}
		uint64_t size = s.fd >= 0 ? file_size(s.fd) : 0;
		if (journal_follow(&j, batch_replay, &b) < 0) {
			error("batches/%s/journal: damaged", id);
			rc = EX_IOERR_;
			break;
		}
		it = batch_item(&b, symbol);
		const struct attempt *a = n ? &it->log[n - 1] : NULL;
		bool ended = a && (a->out_flags & OUTF_ENDED ||
				   (!a->session && a->completed_ms));
		if (ended && s.fd >= 0) {
			uint64_t len = which == STREAM_ERR ? a->err_len
							   : a->out_len;
			uint64_t end = a->session ? s.off + len : file_size(s.fd);
			if (copy_range(s.fd, printed, end) < 0) {
				short_output(id, symbol, n);
				rc = EX_IOERR_;
			}
			break;
		}
		if (ended || (b.final && !n))
			break; /* ended without output, or never ran */
		if (s.fd >= 0 && size > printed) {
			if (copy_range(s.fd, printed, size) < 0) {
				short_output(id, symbol, n);
				rc = EX_IOERR_;
				break;
			}
			printed = size;
		}
		if (once && n)
			break;
		/* Its child alive, or the runner that owns the batch (a
		 * retry-failed run in another process records no owner). */
		if (!owner_alive(&b) &&
		    !(a && a->pid > 0 && (kill(a->pid, 0) == 0 || errno == EPERM))) {
			warning("batch %s: no runner is running it; attempt %u "
				"of %s has no end yet",
				id, n, symbol);
			break;
		}
		sleep_ms(FOLLOW_POLL_MS);
	}
	if (s.fd >= 0)
		close(s.fd);
	journal_close(&j);
	batch_release(&b);
	return rc;
}

/* The last `lines` lines of [off, off+len) of fd, each tagged. */
static int tail_tagged(int fd, uint64_t off, uint64_t len, long long lines,
		       const char *tag)
{
	uint64_t want = len > 65536 ? 65536 : len;
	char *buf = xmalloc(want + 1);
	ssize_t got = pread(fd, buf, (size_t)want, (off_t)(off + len - want));
	if (got < 0) {
		free(buf);
		return -1;
	}
	size_t n = (size_t)got;
	while (n && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	size_t start = n;
	for (long long k = 0; k < lines && start > 0;) {
		start--;
		if (buf[start] == '\n' && ++k == lines) {
			start++;
			break;
		}
	}
	for (char *p = buf + start; p < buf + n;) {
		char *nl = memchr(p, '\n', (size_t)(buf + n - p));
		size_t k = nl ? (size_t)(nl - p) : (size_t)(buf + n - p);
		printf("%s", tag);
		fwrite(p, 1, k, stdout);
		putchar('\n');
		p += k + 1;
	}
	free(buf);
	return 0;
}

static int print_failed(const char *id, int dirfd, struct batch *b,
			long long lines)
{
	int rc = 0;
	for (size_t i = 0; i < b->nitems; i++) {
		const struct item *it = &b->items[i];
		if (it->state != ST_FAILED)
			continue;
		uint32_t n = last_attempt(it);
		if (!n)
			continue;
		const struct attempt *a = &it->log[n - 1];
		char tag[128];
		snprintf(tag, sizeof(tag), "%s attempt %u: ", it->symbol, n);
		struct stream s = { .fd = -1 };
		if (open_stream(id, dirfd, it, n, STREAM_ERR, &s) < 0) {
			if (errno != ENOENT) {
				error("%s: stderr: %s", it->symbol,
				      strerror(errno));
				rc = EX_IOERR_;
			}
		}
		uint64_t len = s.fd < 0 ? 0 : s.len != UINT64_MAX ? s.len
				   : file_size(s.fd) - s.off;
		if (len)
			tail_tagged(s.fd, s.off, len, lines, tag);
		else
			printf("%s(nothing on stderr) %s\n", tag,
			       a->error_message ? a->error_message : "");
		if (s.fd >= 0)
			close(s.fd);
	}
	return rc;
}

int cmd_output(void)
{
	struct cmdopt o[] = { { "--help" }, { "--attempt", true },
			      { "--stderr" }, { "--follow" }, { "--failed" },
			      { "--lines", true } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(
		o, NOPTS(o), &pos, &npos, "output",
		"usage: runner output BATCH SYMBOL [--attempt N] [--stderr] "
		"[--follow]\n"
		"       runner output BATCH --failed [--lines N]\n\n"
		"An attempt's stdout (--stderr: its stderr) byte for byte: the "
		"last one that\nstarted unless --attempt N.  --follow prints "
		"what a running attempt prints\nuntil it ends.  --failed: the "
		"last lines (10 unless --lines) of the stderr\nof every failed "
		"item's last attempt, each line tagged \"SYMBOL attempt N: \".");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	if (g.json) {
		free_cmd(o, NOPTS(o), pos);
		return usage_error("--json is not supported by output");
	}
	long long attempt = 0, lines = 10;
	bool failed = o[4].seen;
	rc = cmd_number(&o[1], "output", 1, 65535, &attempt);
	if (!rc)
		rc = cmd_number(&o[5], "output", 1, 1000000, &lines);
	if (!rc && failed && (npos != 1 || o[1].seen || o[2].seen ||
			      o[3].seen))
		rc = usage_error("output: --failed takes one batch and no "
				 "symbol, --attempt, --stderr or --follow");
	if (!rc && !failed && npos != 2)
		rc = usage_error("output: name a batch and a symbol (or "
				 "--failed)");
	if (!rc)
		rc = open_home();
	if (rc) {
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	const char *id = pos[0];
	int dirfd;
	struct batch b;
	if ((rc = load_batch(id, &b, &dirfd))) {
		batch_release(&b);
		free_cmd(o, NOPTS(o), pos);
		return rc;
	}
	int which = o[2].seen ? STREAM_ERR : STREAM_OUT;
	if (failed) {
		rc = print_failed(id, dirfd, &b, lines);
		goto done;
	}
	const char *symbol = pos[1];
	struct item *it = batch_item(&b, symbol);
	if (!it) {
		error("batch %s has no symbol %s", id, symbol);
		rc = EX_NO_SUCH;
		goto done;
	}
	uint32_t last = last_attempt(it);
	uint32_t n = attempt ? (uint32_t)attempt : last;
	if (o[3].seen && dirfd >= 0 && !b.final && n <= (uint32_t)last + 1) {
		/* It may not have started yet: wait for it. */
		rc = follow(id, dirfd, symbol, (uint32_t)attempt, which, false);
		goto done;
	}
	if (n && n <= last && dirfd >= 0 &&
	    !(it->log[n - 1].out_flags & OUTF_ENDED) &&
	    it->log[n - 1].session) {
		/* Running: what it printed so far, and not a byte more. */
		rc = follow(id, dirfd, symbol, n, which, true);
		goto done;
	}
	if (!n || n > last) {
		if (!last)
			error("%s of batch %s has not run", symbol, id);
		else
			error("%s of batch %s has had %u %s", symbol, id, last,
			      plural(last, "attempt", "attempts"));
		rc = EX_NO_SUCH;
		goto done;
	}
	struct stream s = { .fd = -1 };
	if (open_stream(id, dirfd, it, n, which, &s) < 0) {
		if (errno != ENOENT || it->log[n - 1].session) {
			error("batch %s: %s attempt %u: %s", id, symbol, n,
			      strerror(errno));
			rc = EX_IOERR_;
		}
		goto done; /* a legacy attempt without files: nothing */
	}
	uint64_t to = s.len == UINT64_MAX ? file_size(s.fd) : s.off + s.len;
	if (copy_range(s.fd, s.off, to) < 0) {
		short_output(id, symbol, n);
		rc = EX_IOERR_;
	}
	close(s.fd);
done:
	batch_release(&b);
	if (dirfd >= 0)
		close(dirfd);
	free_cmd(o, NOPTS(o), pos);
	if (fflush(stdout) != 0 && !rc)
		rc = EX_IOERR_;
	return rc;
}
