/*
 * exec: spawning, killing and reaping children.  Knows nothing of batches.
 *
 *   struct spawn s = { .path = ..., .argv = ..., ... };
 *   pid_t pid = exec_spawn(&s, &exec_errno);
 *
 * exec_spawn() starts the child the cheapest safe way: clone(CLONE_VM |
 * CLONE_VFORK), as posix_spawn does, so no page tables are copied; the
 * parent is suspended until the child has exec'd or failed.  In the child
 * only async-signal-safe calls run: chdir to the home, its own process
 * group, PR_SET_PDEATHSIG, rlimits, dup2 of stdin/stdout/stderr, the one
 * inherited slot-lock fd moved to fd 3, every other fd close-on-exec,
 * the signal mask restored, execve.  A failed exec is reported through
 * *exec_errno (memory shared with the child), never guessed from an exit
 * code; the child then exits 127 and must still be reaped.
 *
 * The caller must have every signal it cares about blocked (it reads them
 * from a signalfd) and passes the mask the child should have instead.
 *
 * Descriptors: exec_spawn() closes none of the caller's.  The child gets
 * its own copies of stdin/stdout/stderr and keep_fd; the caller closes its
 * copies of the output files once exec_spawn() returns.  The engine keeps
 * its copy of the slot lock and releases the lock itself when the item
 * ends (slots.h): the child's copy only keeps the slot taken if the runner
 * dies first, until an adopter stops what is left.
 *
 * exec_kill_group() signals a process group; ESRCH is not an error.
 * exec_kill_env() kills every process (and its group) whose environment
 * holds every one of the given "NAME=VALUE" entries: used when adopting a
 * batch whose runner died, to stop what its children left behind without
 * trusting a recorded pid that may have been reused.
 *
 * Descendants that escape: the caller is a child subreaper
 * (PR_SET_CHILD_SUBREAPER), so whatever its children leave behind, in any
 * process group or session, comes back to it as a child of its own when
 * its parent dies.  exec_kill_orphans() lists the caller's children, asks
 * keep() about each (the engine keeps its items, its hooks, and orphans
 * whose environment names an item still running), and kills each of the
 * others with everything below it (stopped first so that it cannot fork
 * away, then SIGKILL, its group too when it leads one).  It returns how
 * many of those were alive; the caller reaps them as they die, and sweeps
 * again on each reap (a fork that was under way comes back then).
 * exec_env_has() says whether pid's environment holds every entry.
 */
#ifndef RUNNER_EXEC_H
#define RUNNER_EXEC_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

struct spawn {
	const char *path;
	char *const *argv;
	char *const *envp;
	int cwd_fd;
	int stdin_fd, stdout_fd, stderr_fd;
	int keep_fd;		/* inherited as fd 3, or -1 */
	uint64_t limit_as;	/* bytes, 0 = unchanged */
	uint64_t limit_fsize;	/* bytes, 0 = unchanged */
	int64_t limit_cpu_ms;	/* 0 = unchanged */
	const sigset_t *child_mask;
};

/* parent: our own pid (getpid() once), to detect a parent that died. */
pid_t exec_spawn(const struct spawn *s, pid_t parent, int *exec_errno);
int exec_kill_group(pid_t pgid, int sig);
/* Returns how many processes were signalled. */
int exec_kill_env(const char *const *entries, size_t n);
/* At most 8 entries. */
bool exec_env_has(pid_t pid, const char *const *entries, size_t n);
int exec_kill_orphans(bool (*keep)(pid_t pid, void *arg), void *arg);
/* "SIGSEGV" for 11, or "signal 99". */
const char *exec_signame(int sig, char *buf, size_t n);

#endif
