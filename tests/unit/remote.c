/*
 * remote: the launcher's stderr lines told from the agent's, the status
 * file the wrapper writes and the runner reads, and the wrapper itself
 * (exit code, signal, a forwarded SIGTERM) (src/remote.h).
 */
#include "remote.h"
#include "category.h"
#include "conf.h"
#include "scratch.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int strip(const char *in, char *out, size_t n, char *line)
{
	snprintf(out, n, "%s", in);
	return remote_stderr_strip(out, line, 256);
}

static void test_strip(void)
{
	char buf[1024], line[256];
	int c = strip("loading AAPL\nfailing with 70\n"
		      "srun: error: vm: task 0: Exited with exit code 70\n",
		      buf, sizeof(buf), line);
	is_int(c, CAT_NONE, "srun's exit line says no category");
	is_str(buf, "loading AAPL\nfailing with 70\n",
	       "srun's line taken out, the agent's kept");
	is_str(line, "srun: error: vm: task 0: Exited with exit code 70",
	       "srun's line kept aside");

	/* The order of the task's and srun's last lines is not fixed. */
	c = strip("srun: error: vm: task 0: Exited with exit code 65\n"
		  "no data for XYZ", buf, sizeof(buf), line);
	is_str(buf, "no data for XYZ", "srun's line before the agent's");

	c = strip("working\nslurmstepd: error: *** STEP 12.0 ON vm CANCELLED "
		  "AT 2026-11-29T09:10:12 DUE TO TIME LIMIT ***\n"
		  "srun: error: vm: task 0: Terminated\n",
		  buf, sizeof(buf), line);
	is_int(c, CAT_TIMEOUT, "Slurm's time limit: timeout");
	ok(strstr(line, "DUE TO TIME LIMIT") != NULL,
	   "the message is the time-limit line, not srun's last");
	is_str(buf, "working\n", "only the agent's line left");

	c = strip("slurmstepd-vm: error: StepId=19.0 exceeded memory limit "
		  "(309813248 > 41943040), being killed\n"
		  "slurmstepd-vm: error: *** STEP 19.0 ON vm CANCELLED AT "
		  "2026-11-29T09:10:33 ***\nsrun: error: vm: task 0: Killed\n",
		  buf, sizeof(buf), line);
	is_int(c, CAT_MEMORY, "exceeded memory limit (host-suffixed stepd): "
			      "memory_error");
	ok(strstr(line, "exceeded memory limit") != NULL,
	   "the message is the memory line");
	is_str(buf, "", "nothing of the agent's");

	c = strip("slurmstepd: error: Detected 1 oom-kill event(s) in "
		  "StepId=7.0. Some of your processes may have been killed "
		  "by the cgroup out-of-memory handler.\n",
		  buf, sizeof(buf), line);
	is_int(c, CAT_MEMORY, "cgroup oom-kill: memory_error");

	c = strip("srunner: not srun\nslurmstepd is a word: here\n"
		  "out of memory in my model\n", buf, sizeof(buf), line);
	is_int(c, CAT_NONE, "the agent's own words are not the launcher's");
	is_str(buf, "srunner: not srun\nslurmstepd is a word: here\n"
		    "out of memory in my model\n",
	       "lines that only look alike are kept");
	is_str(line, "", "no launcher line");
}

static void put(int dfd, const char *name, const char *text)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) < 0)
		diag("cannot write %s", name);
	close(fd);
}

static void test_status(int dfd)
{
	struct remote_status rs;
	is_int(remote_status_load(dfd, "none.task", true, &rs), -1,
	       "no file: -1");
	ok(!rs.started, "no file: not started");

	put(dfd, "a.task", "{\"host\":\"n1\",\"job\":\"12\",\"step\":\"0\","
			   "\"pid\":5}\n");
	is_int(remote_status_load(dfd, "a.task", false, &rs), 0, "start: read");
	ok(rs.started && !rs.ended, "start: started, not ended");
	is_str(rs.job, "12", "job id");
	is_str(rs.step, "0", "step id");

	put(dfd, "b.task", "{\"host\":\"n1\",\"job\":\"12\",\"step\":\"3\","
			   "\"ended\":true,\"exit_code\":70,\"signal\":0,"
			   "\"exec_errno\":0,\"user_us\":1500000,"
			   "\"system_us\":250000,\"max_rss_kb\":40960}");
	is_int(remote_status_load(dfd, "b.task", true, &rs), 0, "end: read");
	ok(rs.ended && WIFEXITED(rs.wait_status) &&
		   WEXITSTATUS(rs.wait_status) == 70,
	   "end: exit code 70");
	is_int(rs.ru.ru_utime.tv_sec, 1, "user seconds");
	is_int(rs.ru.ru_utime.tv_usec, 500000, "user microseconds");
	is_int(rs.ru.ru_stime.tv_usec, 250000, "system microseconds");
	is_int(rs.ru.ru_maxrss, 40960, "max rss");
	ok(faccessat(dfd, "b.task", F_OK, 0) < 0, "removed once read");

	put(dfd, "c.task", "{\"job\":\"1; rm -rf /\",\"step\":\"0\","
			   "\"ended\":true,\"exit_code\":-1,\"signal\":15}");
	remote_status_load(dfd, "c.task", true, &rs);
	ok(WIFSIGNALED(rs.wait_status) && WTERMSIG(rs.wait_status) == SIGTERM,
	   "end: killed by SIGTERM");
	is_str(rs.job, "1", "an id is cut at its first odd character");

	put(dfd, "d.task", "{\"job\": \"12\", \"ste");
	is_int(remote_status_load(dfd, "d.task", true, &rs), -1,
	       "truncated JSON: -1");
	symlinkat("a.task", dfd, "e.task");
	is_int(remote_status_load(dfd, "e.task", true, &rs), -1,
	       "a symlink is not followed");
	is_int(remote_signal(dfd, "none.task", "job", SIGTERM), 0,
	       "signal with no status file: nothing to do");
	put(dfd, "f.task", "{\"host\":\"n1\",\"job\":\"\",\"step\":\"\"}");
	is_int(remote_signal(dfd, "f.task", NULL, SIGKILL), 0,
	       "signal outside Slurm: nothing to do");
}

/* The wrapper in a child of ours, as srun would run it. */
static pid_t wrap(const char *status, char **cmd)
{
	pid_t pid = fork();
	if (pid == 0) {
		char *argv[16] = { (char *)status };
		int n = 1;
		for (; cmd[n - 1] && n < 15; n++)
			argv[n] = cmd[n - 1];
		argv[n] = NULL;
		_exit(remote_exec_main(n, argv));
	}
	return pid;
}

static void test_exec(const char *dir, int dfd)
{
	char status[512];
	struct remote_status rs;
	int st;
	snprintf(status, sizeof(status), "%s/x.task", dir);

	char *exit3[] = { "sh", "-c", "echo hi >/dev/null; exit 3", NULL };
	waitpid(wrap(status, exit3), &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 3, "the wrapper exits as its "
						   "command did (3)");
	remote_status_load(dfd, "x.task", true, &rs);
	ok(rs.ended && WEXITSTATUS(rs.wait_status) == 3, "status: exit 3");
	ok(rs.ru.ru_maxrss > 0, "status: the command's max rss (%ld KiB)",
	   rs.ru.ru_maxrss);

	char *segv[] = { "sh", "-c", "kill -SEGV $$", NULL };
	waitpid(wrap(status, segv), &st, 0);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
	   "the wrapper dies of its command's signal");
	remote_status_load(dfd, "x.task", true, &rs);
	ok(WIFSIGNALED(rs.wait_status) && WTERMSIG(rs.wait_status) == SIGSEGV,
	   "status: SIGSEGV");

	char *missing[] = { "/nonexistent/agent", NULL };
	waitpid(wrap(status, missing), &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 127, "exec failure: 127");
	remote_status_load(dfd, "x.task", true, &rs);
	is_int(rs.exec_errno, ENOENT, "status: the exec's errno");

	/* SIGTERM to the wrapper reaches its command, which may end in its
	 * own way: here it says so and exits 0. */
	char *trap[] = { "sh", "-c",
			 "trap 'exit 0' TERM; : >x.ready; "
			 "while :; do sleep 0.05; done",
			 NULL };
	pid_t pid = wrap(status, trap);
	/* Its trap is set once it says so (20 s at most). */
	for (int i = 0; i < 2000 && faccessat(dfd, "x.ready", F_OK, 0); i++)
		usleep(10000);
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	remote_status_load(dfd, "x.task", true, &rs);
	ok(rs.ended && WIFEXITED(rs.wait_status) &&
		   !WEXITSTATUS(rs.wait_status),
	   "a forwarded SIGTERM: the command ended by its own trap");
}

/* remote_wrapper: yes (the default, with a launcher) is this program;
 * no, or no launcher, is none; a path is that path; anything else an
 * error. */
static void test_conf(int dfd)
{
	put(dfd, "runner.ini",
	    "[agent a]\ncommand = true\nlauncher = srun --quiet\n"
	    "[agent b]\ncommand = true\nlauncher = srun\n"
	    "remote_wrapper = no\n"
	    "[agent c]\ncommand = true\n"
	    "[agent d]\ncommand = true\nlauncher = srun\n"
	    "remote_wrapper = /opt/runner/bin/runner\n");
	struct conf *c = conf_load("runner.ini");
	ok(c != NULL, "configuration loads");
	if (!c)
		return;
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	const struct agent_conf *a = conf_agent(c, "a");
	is_str(a && a->wrapper ? a->wrapper : "(none)", self,
	       "a launcher: this program between it and the command");
	a = conf_agent(c, "b");
	ok(a && !a->wrapper, "remote_wrapper = no: none");
	a = conf_agent(c, "c");
	ok(a && !a->wrapper, "no launcher: none");
	a = conf_agent(c, "d");
	is_str(a && a->wrapper ? a->wrapper : "(none)",
	       "/opt/runner/bin/runner", "remote_wrapper = PATH");
	conf_free(c);
	put(dfd, "bad.ini", "[agent a]\ncommand = true\nlauncher = srun\n"
			    "remote_wrapper = maybe\n");
	c = conf_load("bad.ini");
	ok(c == NULL, "remote_wrapper = maybe: refused");
	conf_free(c);
}

int main(void)
{
	const char *dir = scratch_make("remote");
	int dfd = scratch_open();
	if (chdir(dir) < 0)
		return 1;
	test_strip();
	test_status(dfd);
	test_exec(dir, dfd);
	test_conf(dfd);
	close(dfd);
	scratch_remove();
	done_testing();
	return exit_status();
}
