/*
 * spool: from a job file to a committed batch directory (DURABILITY.md
 * "Claiming a job file").
 *
 *   spool_sweep(h, c);                  at start: finish or undo claims a
 *                                       dead runner left half-done
 *   spool_scan(h, &names, &n);          *.job names in spool/, oldest first
 *   spool_claim(h, c, name, &res);      claim one of them
 *   spool_claim_bytes(h, c, path, buf, len, &res);
 *                                       a job named on the command line
 *                                       outside spool/: claimed from a copy,
 *                                       the file itself is left alone
 *
 * A claim renames the file into a private batches/.claim-XXXX/ directory
 * (the rename is the lock: a competing runner gets ENOENT), reads it once,
 * replaces it there with a copy of the bytes read (a writer still holding
 * the file open can change nothing the batch keeps), validates them,
 * writes the batch's first journal records, and renames the directory to
 * batches/<id> (the commit; a clash means a duplicate id).  An invalid file
 * goes to spool/rejected/NAME with NAME.reason; so does a duplicate (same
 * id as an existing batch, or the same bytes as a job claimed within
 * dedup_window), with reason "duplicate of BATCH".
 *
 * spool_scan() never opens an entry: names starting with '.' are skipped,
 * and *.job entries that are not regular files (symlinks, FIFOs,
 * directories) are moved to spool/rejected/ without being followed.
 *
 * On success res->lock_fd holds the new batch's lock (flock), which the
 * caller keeps to own the batch without a gap, and res->id names it.
 */
#ifndef RUNNER_SPOOL_H
#define RUNNER_SPOOL_H

#include "conf.h"
#include "home.h"
#include "job.h"

enum claim_status {
	CLAIM_OK,
	CLAIM_GONE,		/* another runner took it first */
	CLAIM_INVALID,		/* rejected: res->reason says why */
	CLAIM_DUPLICATE,	/* rejected: res->dup_of names the batch */
	CLAIM_ERROR,		/* I/O error, printed; the file is where it was */
};

struct claim_result {
	enum claim_status status;
	char id[ID_MAX + 1];
	char dup_of[ID_MAX + 1];
	char reason[512];
	int lock_fd;
	size_t nsymbols;
	bool committed;		/* batches/<id> exists, whatever the status */
	bool fsync_failed;	/* an fsync failed: stop (never retry it) */
};

int spool_sweep(struct home *h, const struct conf *c);
/* Whether spool_scan() looks at an entry of this name (NAME.job, not a
 * dot-file): a watcher of spool/ needs no scan for an event of another. */
bool spool_job_name(const char *name);
int spool_scan(struct home *h, char ***names, size_t *n);
void spool_names_free(char **names, size_t n);
int spool_claim(struct home *h, const struct conf *c, const char *name,
		struct claim_result *res);
int spool_claim_bytes(struct home *h, const struct conf *c,
		      const char *display, const char *buf, size_t len,
		      struct claim_result *res);
/*
 * submit: validate a job, give it an id if it has none (an "id = " line
 * after its [job] header), and place it as spool/<id>.job the safe way
 * (spool/.<id>.tmp, fsync, rename, fsync of spool/).  CLAIM_OK with res->id,
 * CLAIM_INVALID (problems printed), or CLAIM_DUPLICATE (the id exists, or
 * the same bytes were submitted or claimed within dedup_window); -1 only
 * for CLAIM_ERROR.
 */
int spool_submit(struct home *h, const struct conf *c, const char *display,
		 const char *buf, size_t len, struct claim_result *res);
/* The job text buf with an "id = ID" line after its [job] header, into
 * out (a job that names an id already then names it twice: invalid). */
void spool_add_id(const char *buf, size_t len, const char *id, struct sb *out);

#endif
