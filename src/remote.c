#include "remote.h"
#include "category.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define STATUS_MAX 4096

/* The signals a launcher delivers to its task and we pass on. */
static const int forwarded[] = { SIGTERM, SIGINT,  SIGHUP,  SIGQUIT,
				 SIGUSR1, SIGUSR2, SIGCONT, SIGALRM };

/* s, kept to the characters a host name or a Slurm id may hold (it goes
 * into JSON unescaped). */
static void clean_copy(char *dst, size_t n, const char *s, bool digits_only)
{
	size_t k = 0;
	for (; s && *s && k + 1 < n; s++) {
		char c = *s;
		bool ok = (c >= '0' && c <= '9') ||
			  (!digits_only && ((c >= 'a' && c <= 'z') ||
					    (c >= 'A' && c <= 'Z') || c == '.' ||
					    c == '-' || c == '_'));
		if (!ok)
			break;
		dst[k++] = c;
	}
	dst[k] = '\0';
}

struct wrap {
	const char *path;
	char host[64], job[24], step[24];
};

/* The status file, replaced whole: a temporary name beside it, renamed. */
static int write_status(const struct wrap *w, bool ended, int status,
			int exec_errno, const struct rusage *ru)
{
	char buf[STATUS_MAX];
	int n = snprintf(buf, sizeof(buf),
			 "{\"host\":\"%s\",\"job\":\"%s\",\"step\":\"%s\","
			 "\"pid\":%ld",
			 w->host, w->job, w->step, (long)getpid());
	if (ended) {
		int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
		n += snprintf(buf + n, sizeof(buf) - (size_t)n,
			      ",\"ended\":true,\"exit_code\":%d,\"signal\":%d,"
			      "\"exec_errno\":%d,\"user_us\":%lld,"
			      "\"system_us\":%lld,\"max_rss_kb\":%ld",
			      code, sig, exec_errno,
			      (long long)ru->ru_utime.tv_sec * 1000000 +
				      ru->ru_utime.tv_usec,
			      (long long)ru->ru_stime.tv_sec * 1000000 +
				      ru->ru_stime.tv_usec,
			      ru->ru_maxrss);
	}
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, "}\n");
	char *tmp = xasprintf("%s.%ld.tmp", w->path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		      0644);
	if (fd < 0)
		goto out_fail;
	if (write_all(fd, buf, (size_t)n) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		goto out_unlink;
	}
	if (close(fd) < 0 || rename(tmp, w->path) < 0)
		goto out_unlink;
	free(tmp);
	return 0;
out_unlink:;
	int saved = errno;
	unlink(tmp);
	errno = saved;
out_fail:
	error("%s: %s", w->path, strerror(errno));
	free(tmp);
	return -1;
}

int remote_exec_main(int argc, char **argv)
{
	if (argc < 2) {
		error(REMOTE_COMMAND ": usage: runner " REMOTE_COMMAND
		      " STATUS-FILE COMMAND [ARG...]");
		return 64;
	}
	struct wrap w = { .path = argv[0] };
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	clean_copy(w.host, sizeof(w.host), host, false);
	clean_copy(w.job, sizeof(w.job), getenv("SLURM_JOB_ID"), true);
	clean_copy(w.step, sizeof(w.step), getenv("SLURM_STEP_ID"), true);
	/* Written before the command starts: a runner that must cancel the
	 * step finds its id here even if the task never ends by itself. */
	write_status(&w, false, 0, 0, NULL);

	sigset_t set, old;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(*forwarded); i++)
		sigaddset(&set, forwarded[i]);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &old);
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0)
		die(71, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		die(71, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* Its own group: what it leaves behind is killed with it. */
		setpgid(0, 0);
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(argv[1], argv + 1);
		int err = errno;
		if (write(ep[1], &err, sizeof(err)) < 0)
			_exit(127);
		_exit(127);
	}
	setpgid(pid, pid);
	close(ep[1]);
	int exec_errno = 0;
	ssize_t got;
	do
		got = read(ep[0], &exec_errno, sizeof(exec_errno));
	while (got < 0 && errno == EINTR);
	if (got != sizeof(exec_errno))
		exec_errno = 0;
	close(ep[0]);

	int status = 0;
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(-pid, sig);
			continue;
		}
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			die(71, "waitpid: %s", strerror(errno));
	}
	/* The leader is gone: whatever is left in its group goes with it. */
	kill(-pid, SIGKILL);
	struct rusage ru;
	memset(&ru, 0, sizeof(ru));
	getrusage(RUSAGE_CHILDREN, &ru);
	write_status(&w, true, status, exec_errno, &ru);
	if (exec_errno) {
		error("cannot execute %s: %s", argv[1], strerror(exec_errno));
		return 127;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	/* Die of the same signal, so the launcher says what the command
	 * did. */
	int sig = WTERMSIG(status);
	signal(sig, SIG_DFL);
	sigprocmask(SIG_SETMASK, &old, NULL);
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, sig);
	sigprocmask(SIG_UNBLOCK, &one, NULL);
	raise(sig);
	return 128 + sig;
}

static int64_t num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static void str(const cJSON *o, const char *k, char *dst, size_t n,
		bool digits_only)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	clean_copy(dst, n, cJSON_IsString(v) ? v->valuestring : NULL,
		   digits_only);
}

int remote_status_load(int dirfd, const char *name, bool unlink_it,
		       struct remote_status *rs)
{
	memset(rs, 0, sizeof(*rs));
	if (dirfd < 0)
		return -1;
	int fd = openat(dirfd, name,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char buf[STATUS_MAX + 1];
	struct stat st;
	ssize_t got = -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size <= STATUS_MAX)
		got = read(fd, buf, STATUS_MAX);
	close(fd);
	if (unlink_it)
		unlinkat(dirfd, name, 0);
	if (got <= 0)
		return -1;
	buf[got] = '\0';
	cJSON *o = cJSON_Parse(buf);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return -1;
	}
	rs->started = true;
	str(o, "host", rs->host, sizeof(rs->host), false);
	str(o, "job", rs->job, sizeof(rs->job), true);
	str(o, "step", rs->step, sizeof(rs->step), true);
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "ended"))) {
		int64_t code = num(o, "exit_code"), sig = num(o, "signal");
		rs->ended = true;
		if (sig > 0 && sig < 65)
			rs->wait_status = (int)sig;	/* WIFSIGNALED */
		else
			rs->wait_status = (int)((code & 0xff) << 8);
		int64_t e = num(o, "exec_errno");
		rs->exec_errno = e > 0 && e < 4096 ? (int)e : 0;
		int64_t u = num(o, "user_us"), s = num(o, "system_us");
		int64_t m = num(o, "max_rss_kb");
		rs->ru.ru_utime.tv_sec = u > 0 ? u / 1000000 : 0;
		rs->ru.ru_utime.tv_usec = u > 0 ? u % 1000000 : 0;
		rs->ru.ru_stime.tv_sec = s > 0 ? s / 1000000 : 0;
		rs->ru.ru_stime.tv_usec = s > 0 ? s % 1000000 : 0;
		rs->ru.ru_maxrss = m > 0 && m < INT32_MAX ? (long)m : 0;
	}
	cJSON_Delete(o);
	return 0;
}

void remote_job_name(char *buf, size_t n, const char *home,
		     const char *batch, const char *symbol, uint32_t attempt)
{
	uint32_t h = 2166136261u;	/* FNV-1a */
	for (const char *p = home; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	snprintf(buf, n, "runner.%08x.%s.%s.%u", h, batch, symbol, attempt);
}

/* The scancel processes started and not reaped yet: the runner's own
 * children, which its sweep of escaped descendants must leave alone. */
#define HELPERS_MAX 4096
static pid_t helpers[HELPERS_MAX];
static size_t nhelpers;

bool remote_is_helper(pid_t pid)
{
	for (size_t i = 0; i < nhelpers; i++)
		if (helpers[i] == pid)
			return true;
	return false;
}

void remote_reaped(pid_t pid)
{
	for (size_t i = 0; i < nhelpers; i++)
		if (helpers[i] == pid) {
			helpers[i] = helpers[--nhelpers];
			return;
		}
}

/* scancel ARGS..., started and left to the caller's reaper. */
static int scancel(char *const *argv)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawnattr_t at;
	posix_spawnattr_init(&at);
	sigset_t none;
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
	pid_t pid;
	int err = posix_spawnp(&pid, "scancel", &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (err) {
		warning("scancel %s: %s; the step may run on",
			argv[2] ? argv[2] : "", strerror(err));
		return -1;
	}
	if (nhelpers < HELPERS_MAX)
		helpers[nhelpers++] = pid;
	/* Not waited for: a shutdown signals every step at once, and a
	 * controller slow to answer must not hold the runner's loop.  The
	 * runner's reaper collects it with its other unknown children. */
	return 1;
}

int remote_signal(int dirfd, const char *name, const char *job_name,
		  int sig)
{
	struct remote_status rs;
	if (remote_status_load(dirfd, name, false, &rs) < 0) {
		/* No task yet: srun may hold a job that no file names. */
		if (sig != SIGKILL || !job_name)
			return 0;
		char opt[256];
		snprintf(opt, sizeof(opt), "--name=%s", job_name);
		char *argv[] = { "scancel", "--quiet", opt, NULL };
		return scancel(argv);
	}
	if (!rs.job[0] || !rs.step[0])
		return 0;
	/* A job of its own (srun outside an allocation) is cancelled whole,
	 * even once its task has ended: its srun killed, the allocation
	 * would stay.  In the runner's own allocation, the step alone. */
	const char *mine = getenv("SLURM_JOB_ID");
	bool per_task = !(mine && !strcmp(mine, rs.job));
	if (sig != SIGKILL ? rs.ended : rs.ended && !per_task)
		return 0;
	char id[64];
	if (sig == SIGKILL && per_task)
		snprintf(id, sizeof(id), "%s", rs.job);
	else
		snprintf(id, sizeof(id), "%s.%s", rs.job, rs.step);
	/* SIGKILL: a plain cancel, which frees what the step or job holds
	 * (a signal alone would leave an srun-less job allocated). */
	char *argv[] = { "scancel", "--quiet", NULL, NULL, NULL };
	argv[2] = sig == SIGKILL ? id
		  : sig == SIGINT ? "--signal=INT"
				  : "--signal=TERM";
	argv[3] = sig == SIGKILL ? NULL : id;
	return scancel(argv);
}

/* "srun: ..." or "slurmstepd[-HOST]: ...": a line of the launcher's. */
static bool launcher_line(const char *s, size_t len)
{
	static const char *const prefixes[] = { "srun:", "slurmstepd" };
	for (size_t i = 0; i < 2; i++) {
		size_t n = strlen(prefixes[i]);
		if (len >= n && !strncmp(s, prefixes[i], n)) {
			if (i == 0)
				return true;
			const char *colon = memchr(s, ':', len);
			return colon && !memchr(s, ' ', (size_t)(colon - s));
		}
	}
	return false;
}

static bool has(const char *s, size_t len, const char *word)
{
	size_t n = strlen(word);
	for (size_t i = 0; i + n <= len; i++)
		if (!strncasecmp(s + i, word, n))
			return true;
	return false;
}

int remote_stderr_strip(char *tail, char *line, size_t n)
{
	static const char *const memory[] = {
		"oom-kill", "out of memory", "out-of-memory",
		"exceeded memory limit", "exceeded job memory limit",
		"exceeded step memory limit",
	};
	int cat = CAT_NONE;
	char *w = tail;
	if (n)
		line[0] = '\0';
	for (char *s = tail; *s;) {
		char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		size_t adv = nl ? len + 1 : len;
		if (!launcher_line(s, len)) {
			memmove(w, s, adv);
			w += adv;
			s += adv;
			continue;
		}
		int says = CAT_NONE;
		if (has(s, len, "due to time limit"))
			says = CAT_TIMEOUT;
		for (size_t i = 0; i < sizeof(memory) / sizeof(*memory); i++)
			if (has(s, len, memory[i]))
				says = CAT_MEMORY;
		/* The line that says why Slurm ended it is the message; else
		 * the launcher's last word. */
		if (n && (says != CAT_NONE || cat == CAT_NONE))
			snprintf(line, n, "%.*s", (int)len, s);
		if (says != CAT_NONE)
			cat = says;
		s += adv;
	}
	*w = '\0';
	return cat;
}
