/*
 * remote: an agent started through a launcher (`launcher = srun ...`) that
 * runs it on another host.  The launcher's own exit status, rusage and
 * stderr lines would otherwise stand for the agent's, so the runner puts
 * itself between the launcher and the command:
 *
 *   srun --ntasks=1 --quiet  /path/runner exec-remote STATUS  agent args...
 *
 * On the node, remote_exec_main() (the `exec-remote` command) runs the
 * command as its child in a process group of its own, forwards the
 * signals a launcher delivers (SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1,
 * SIGUSR2, SIGCONT, SIGALRM) to that group, waits, kills what is left of
 * the group, and exits as the command did (its code, or the same signal).
 * Into STATUS (batches/ID/tmp/SYM.N.task, on the shared home) it writes
 * by atomic rename, first at start: the host, the Slurm job and step ids
 * (SLURM_JOB_ID, SLURM_STEP_ID); then at the end, the same plus the
 * command's exit code or signal and its own rusage (user and system CPU,
 * max RSS: RUSAGE_CHILDREN on the node, the command and every descendant
 * it waited for), or the errno of a failed exec.
 *
 * On the runner's side, remote_status_load() reads that file (and removes
 * it); remote_signal() signals the step it names through scancel: the
 * SIGTERM of a timeout, cancel or shutdown goes to the task itself (srun
 * would SIGKILL it at once), and the SIGKILL when the launcher is killed
 * or a dead runner left it;
 * remote_stderr_strip() takes the launcher's own lines ("srun: ...",
 * "slurmstepd: ...") out of a stderr tail, so that classification and the
 * error message see the agent's, and says what those lines mean (a step
 * killed by Slurm for its time limit is a timeout, for memory a
 * memory_error).
 */
#ifndef RUNNER_REMOTE_H
#define RUNNER_REMOTE_H

#include <stdbool.h>
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

#define REMOTE_COMMAND "exec-remote"

/* argv: STATUS COMMAND [ARGS...] (after "exec-remote"); the exit status. */
int remote_exec_main(int argc, char **argv);

struct remote_status {
	bool started;		/* the wrapper ran on a node */
	bool ended;		/* ... and saw its command end */
	char host[64];
	char job[24];		/* Slurm ids, "" when not under Slurm */
	char step[24];
	int wait_status;	/* as wait4 gives it (ended) */
	int exec_errno;		/* the command could not be executed */
	struct rusage ru;	/* utime, stime, maxrss (ended) */
};

/* Read dirfd/name (O_NOFOLLOW, a small regular file): 0 when it exists
 * and parses (rs->started), -1 otherwise (rs cleared).  unlink: remove it. */
int remote_status_load(int dirfd, const char *name, bool unlink_it,
		       struct remote_status *rs);
/* Signal the step dirfd/name names, if it is running: SIGTERM and SIGINT
 * with `scancel --signal=TERM|INT JOB.STEP` (the wrapper passes it on and
 * still writes the end); SIGKILL with a plain `scancel JOB.STEP`, or
 * `scancel JOB` for a job that is not the runner's own ($SLURM_JOB_ID):
 * srun outside an allocation made it for this task alone and, once
 * killed, would leave it allocated, even after its task ended.  scancel
 * is started, not waited for: the caller reaps it (a wait for any child,
 * as the engine's reaper does).  With SIGKILL and no status file,
 * the job named job_name (if not NULL) is cancelled.  1 when scancel was
 * run, 0 when nothing is known to signal (a task not started yet under
 * SIGTERM, ended, or not under Slurm), -1 when scancel could not be
 * started. */
/* A scancel this process started and has not reaped (its sweep of
 * escaped descendants keeps it); remote_reaped() forgets it. */
bool remote_is_helper(pid_t pid);
void remote_reaped(pid_t pid);

int remote_signal(int dirfd, const char *name, const char *job_name,
		  int sig);

/* The Slurm job name of an attempt (set through SLURM_JOB_NAME in the
 * launcher's environment): "runner.HASH.BATCH.SYMBOL.N", HASH naming the
 * home, since batch ids repeat across homes.  A launcher killed before
 * its task started leaves a job no status file names; remote_signal()
 * with SIGKILL cancels it by this name (`scancel --name`). */
void remote_job_name(char *buf, size_t n, const char *home,
		     const char *batch, const char *symbol, uint32_t attempt);

/* Remove the launcher's own lines from a stderr tail (NUL-terminated,
 * edited in place); what they say as a category (CAT_TIMEOUT for a time
 * limit, CAT_MEMORY for an out-of-memory kill, else CAT_NONE), and the
 * last such line into line (size n, "" when none). */
int remote_stderr_strip(char *tail, char *line, size_t n);

#endif
