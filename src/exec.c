#include "exec.h"
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

struct child_ctx {
	const struct spawn *s;
	pid_t parent;
	volatile int err;
};

/* Runs on its own stack in the parent's memory: async-signal-safe only. */
static int child_main(void *arg)
{
	struct child_ctx *c = arg;
	const struct spawn *s = c->s;
	struct sigaction dfl;
	struct rlimit rl;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGPIPE, &dfl, NULL);
	/* The real-time signals the C library keeps for itself (32 and 33
	 * with glibc): its sigaction refuses them, so an ignore inherited
	 * from whatever started the runner would reach the agent.  The
	 * system call does not refuse; handlers are reset by exec anyway,
	 * so only an ignore needs undoing. */
	for (int sig = 32; sig < SIGRTMIN; sig++) {
		struct { void *handler; unsigned long flags; void *restorer;
			 unsigned long mask; } k = { SIG_DFL, 0, NULL, 0 };
		syscall(SYS_rt_sigaction, sig, &k, NULL, sizeof(k.mask));
	}
	if (s->cwd_fd >= 0 && fchdir(s->cwd_fd) < 0)
		goto fail;
	if (setpgid(0, 0) < 0)
		goto fail;
	/* Die with the runner: a child must not outlive what accounts for it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		goto fail;
	if (getppid() != c->parent) {
		errno = ESRCH;
		goto fail;
	}
	rl.rlim_cur = rl.rlim_max = 0;
	setrlimit(RLIMIT_CORE, &rl);
	if (s->limit_as) {
		rl.rlim_cur = rl.rlim_max = s->limit_as;
		if (setrlimit(RLIMIT_AS, &rl) < 0)
			goto fail;
	}
	if (s->limit_fsize) {
		rl.rlim_cur = rl.rlim_max = s->limit_fsize;
		if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
			goto fail;
	}
	if (s->limit_cpu_ms) {
		/* SIGXCPU at the limit, SIGKILL a little later. */
		rl.rlim_cur = (rlim_t)((s->limit_cpu_ms + 999) / 1000);
		rl.rlim_max = rl.rlim_cur + 2;
		if (setrlimit(RLIMIT_CPU, &rl) < 0)
			goto fail;
	}
	if (dup2(s->stdin_fd, 0) < 0 || dup2(s->stdout_fd, 1) < 0 ||
	    dup2(s->stderr_fd, 2) < 0)
		goto fail;
	if (s->keep_fd >= 0) {
		/* The slot lock: deliberately inherited.  While the runner
		 * lives, it releases the lock through its own copy when the
		 * item ends, whoever still holds fd 3; if the runner dies
		 * first, what is left of the item keeps the slot taken (the
		 * caps still count it) until an adopter stops it. */
		if (s->keep_fd == 3) {
			if (fcntl(3, F_SETFD, 0) < 0)
				goto fail;
		} else if (dup2(s->keep_fd, 3) < 0) {
			goto fail;
		}
	}
	/* Whatever the runner itself inherited stays out of the child. */
	close_range(s->keep_fd >= 0 ? 4 : 3, ~0U, CLOSE_RANGE_CLOEXEC);
	sigprocmask(SIG_SETMASK, s->child_mask, NULL);
	execve(s->path, s->argv, s->envp);
fail:
	c->err = errno ? errno : EINVAL;
	_exit(127);
}

pid_t exec_spawn(const struct spawn *s, pid_t parent, int *exec_errno)
{
	/* One stack for every child: CLONE_VFORK suspends us until the child
	 * has exec'd or exited, so two children never share it at once. */
	static char *stack;
	enum { STACK_SIZE = 256 * 1024 };
	struct child_ctx c = { s, parent, 0 };
	pid_t pid;

	if (!stack)
		stack = xmalloc(STACK_SIZE);
	pid = clone(child_main, stack + STACK_SIZE,
		    CLONE_VM | CLONE_VFORK | SIGCHLD, &c);
	if (pid < 0)
		return -1;
	*exec_errno = c.err;
	return pid;
}

int exec_kill_group(pid_t pgid, int sig)
{
	if (pgid <= 1)
		BUG("refusing to signal process group %d", (int)pgid);
	if (kill(-pgid, sig) < 0 && errno != ESRCH)
		return -1;
	return 0;
}

/* State, parent and process group of pid from /proc/PID/stat: 0, or -1
 * when it is gone. */
static int proc_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read_all(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields start after the last ')' */
	char *p = strrchr(buf, ')');
	int pp, pg;
	if (!p || sscanf(p + 1, " %c %d %d", state, &pp, &pg) != 3)
		return -1;
	*ppid = pp;
	*pgid = pg;
	return 0;
}

/* The process group of pid, or -1. */
static pid_t proc_pgid(pid_t pid)
{
	char state;
	pid_t ppid, pgid;
	return proc_stat(pid, &state, &ppid, &pgid) < 0 ? -1 : pgid;
}

/* Whether pid's environment holds every one of the n entries. */
static bool environ_has_all(pid_t pid, const char *const *entries,
			    const size_t *lens, size_t n)
{
	char path[64];
	struct sb env = SB_INIT;
	size_t found = 0;
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (read_fd_bounded(fd, 4 << 20, &env) == 0 && env.len) {
		for (size_t k = 0; k < n; k++) {
			bool has = false;
			for (size_t i = 0; i < env.len && !has;) {
				size_t m = strnlen(env.buf + i, env.len - i);
				has = m == lens[k] &&
				      !memcmp(env.buf + i, entries[k], m);
				i += m + 1;
			}
			if (!has)
				break;
			found++;
		}
	}
	close(fd);
	sb_release(&env);
	return n && found == n;
}

bool exec_env_has(pid_t pid, const char *const *entries, size_t n)
{
	size_t lens[8];
	if (n > sizeof(lens) / sizeof(*lens))
		BUG("exec_env_has: %zu entries", n);
	for (size_t i = 0; i < n; i++)
		lens[i] = strlen(entries[i]);
	return environ_has_all(pid, entries, lens, n);
}

struct pids {
	pid_t *v;
	size_t n, cap;
};

static void pids_add(struct pids *p, pid_t pid)
{
	GROW(p->v, p->cap, p->n + 1);
	p->v[p->n++] = pid;
}

/* A kernel without /proc/PID/task/TID/children: every process's parent
 * (a look at every process, where the children file is one read). */
static void children_by_scan(pid_t pid, struct pids *out)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	if (!d)
		return;
	while ((de = readdir(d))) {
		char state;
		pid_t p, ppid, pgid;
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		p = (pid_t)atoi(de->d_name);
		if (proc_stat(p, &state, &ppid, &pgid) == 0 && ppid == pid)
			pids_add(out, p);
	}
	closedir(d);
}

/* pid's children, appended to out.  Every thread has its own list: an
 * orphan is reparented to one thread of its subreaper. */
static void children_of(pid_t pid, struct pids *out)
{
	char path[320];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	struct dirent *de;
	bool listed = false;
	if (!d)
		return;
	while ((de = readdir(d))) {
		char buf[64 * 1024];
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/children",
			 (int)pid, de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		listed = true;
		/* Past 64 KiB (some 9,000 children) the rest is not seen
		 * this time: the next sweep sees it. */
		ssize_t n = read_all(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		for (char *p = buf, *end; *p; p = end) {
			long v = strtol(p, &end, 10);
			if (end == p)
				break;
			if (v > 1)
				pids_add(out, (pid_t)v);
		}
	}
	closedir(d);
	if (!listed)
		children_by_scan(pid, out);
}

/*
 * Kills root and everything below it; returns how many of them were alive
 * (not zombies).  Each process is stopped before its children are listed,
 * so that it cannot fork behind our back; a fork already under way may
 * still escape the list, but the child is then reparented to us when its
 * parent dies, and the next sweep (on that reap) finds it.  Pids are not
 * reused under us: a listed process is our child or the child of a
 * stopped one, so nobody reaps it until we have signalled it.
 */
static int kill_tree(pid_t root)
{
	enum { TREE_MAX = 100000 };
	struct pids t = { 0 };
	pid_t self_group = getpgrp();
	int alive = 0;
	pids_add(&t, root);
	for (size_t i = 0; i < t.n && t.n < TREE_MAX; i++) {
		kill(t.v[i], SIGSTOP);
		children_of(t.v[i], &t);
	}
	for (size_t i = 0; i < t.n; i++) {
		char state;
		pid_t ppid, pgid;
		if (proc_stat(t.v[i], &state, &ppid, &pgid) < 0)
			continue;
		/* A group leader's group: whatever it started there too. */
		if (pgid == t.v[i] && pgid > 1 && pgid != self_group)
			kill(-pgid, SIGKILL);
		kill(t.v[i], SIGKILL);
		alive += state != 'Z';
	}
	free(t.v);
	return alive;
}

int exec_kill_orphans(bool (*keep)(pid_t pid, void *arg), void *arg)
{
	struct pids kids = { 0 };
	int alive = 0;
	children_of(getpid(), &kids);
	for (size_t i = 0; i < kids.n; i++)
		if (!keep(kids.v[i], arg))
			alive += kill_tree(kids.v[i]);
	free(kids.v);
	return alive;
}

int exec_kill_env(const char *const *entries, size_t n)
{
	size_t *lens = xmalloc((n + 1) * sizeof(size_t));
	pid_t self = getpid();
	int killed = 0;
	for (size_t i = 0; i < n; i++)
		lens[i] = strlen(entries[i]);
	DIR *d = opendir("/proc");
	if (!d) {
		free(lens);
		return 0;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid_t pid = (pid_t)atoi(de->d_name);
		if (pid <= 1 || pid == self)
			continue;
		if (!environ_has_all(pid, entries, lens, n))
			continue;
		pid_t pgid = proc_pgid(pid);
		if (pgid > 1 && pgid != getpgrp())
			kill(-pgid, SIGKILL);
		kill(pid, SIGKILL);
		killed++;
	}
	closedir(d);
	free(lens);
	return killed;
}

const char *exec_signame(int sig, char *buf, size_t n)
{
	const char *abbrev = sigabbrev_np(sig);
	if (abbrev)
		snprintf(buf, n, "SIG%s", abbrev);
	else
		snprintf(buf, n, "signal %d", sig);
	return buf;
}
