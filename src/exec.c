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
		/* The slot lock: deliberately inherited, so that the slot stays
		 * taken exactly as long as this child (or what it leaves
		 * behind holding fd 3) lives, whoever its parent is by then. */
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

/* The process group of pid from /proc/PID/stat, or -1. */
static pid_t proc_pgid(pid_t pid)
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
	int ppid, pgrp;
	char state;
	if (!p || sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) != 3)
		return -1;
	return pgrp;
}

static bool environ_has(pid_t pid, const char *entry, size_t len)
{
	char path[64];
	struct sb env = SB_INIT;
	bool found = false;
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (read_fd_bounded(fd, 4 << 20, &env) == 0 && env.len) {
		for (size_t i = 0; i < env.len;) {
			size_t n = strnlen(env.buf + i, env.len - i);
			if (n == len && !memcmp(env.buf + i, entry, len)) {
				found = true;
				break;
			}
			i += n + 1;
		}
	}
	close(fd);
	sb_release(&env);
	return found;
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
		bool all = true;
		for (size_t i = 0; i < n && all; i++)
			all = environ_has(pid, entries[i], lens[i]);
		if (!all)
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
