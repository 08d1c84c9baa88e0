/*
 * runner init [DIR]: make DIR (default: the home of -C, RUNNER_HOME or .)
 * a home: conf/runner.ini with every section and its defaults in
 * comments and one example agent, conf/example.job, and the directories
 * (batches/, spool/, logs/, state/).  What exists already is kept, never
 * replaced: init on a home only adds what is missing.
 */
#include "cli.h"
#include "home.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Every key a home may set, at its default, commented out: uncommenting a
 * line changes nothing until its value is edited (tests/cli/setup.t loads
 * the file with every key uncommented). */
static const char conf_text[] =
	"; conf/runner.ini: the configuration of this runner home, written by\n"
	"; `runner init`.  Every key is shown at its default, commented out;\n"
	"; runner.conf(5) describes each one.  After an edit, `runner check\n"
	"; conf/example.job` validates the file, and a running daemon reads it\n"
	"; again on SIGHUP (systemctl reload runner).\n"
	"\n"
	"[runner]\n"
	"; children running at once across the home (default: the CPUs)\n"
	";max_children = 4\n"
	"; a job whose bytes equal one submitted this recently is a duplicate\n"
	";dedup_window = 5m\n"
	"; SIGTERM to SIGKILL for a child that must stop\n"
	";kill_grace = 5s\n"
	"; how long a stopping daemon lets running attempts finish\n"
	";shutdown_grace = 30s\n"
	"; what one attempt keeps of its stdout and stderr together\n"
	";max_output = 64M\n"
	"; a program run with each alert (see runner.conf(5))\n"
	";notify =\n"
	"; variables of the runner's own environment every agent receives\n"
	"; (the rest of it is not passed), e.g. pass_env = VENDOR_API_KEY\n"
	";pass_env =\n"
	"; a file of NAME=VALUE lines every agent receives (relative: to conf/)\n"
	";env_file =\n"
	"\n"
	"[retry]\n"
	";max_attempts = 3\n"
	";delays = 1 2 4 8 16 30\n"
	";jitter = 0.2\n"
	";retry_on = timeout engine_error unknown memory_error\n"
	"\n"
	"[breaker]\n"
	"; failures in a row that open a symbol's circuit, and for how long\n"
	";threshold = 3\n"
	";open_for = 30s\n"
	"\n"
	"[correlation]\n"
	"; failures of one kind within window make a failure group\n"
	";window = 5m\n"
	";min_group = 2\n"
	"\n"
	"[retention]\n"
	";archive_after = 7d\n"
	";delete_archives_after = 90d\n"
	";compression = gzip\n"
	"\n"
	"[classify]\n"
	"; stderr patterns of the home, one key per category; builtin = no\n"
	"; turns the built-in patterns off\n"
	";builtin = yes\n"
	"\n"
	"; One section per agent: the program run once per symbol, with the\n"
	"; symbol as its last argument.  This one only echoes it: replace the\n"
	"; command with your own program.\n"
	"[agent example]\n"
	"command = echo example agent:\n"
	";launcher =\n"
	";env =\n"
	";pass_env =\n"
	";env_file =\n"
	";max_concurrent = 4\n"
	";timeout = 1h\n"
	";memory_limit = 1G\n"
	";cpu_limit = 10m\n"
	";output_limit = 1G\n"
	";max_output = 64M\n"
	";source = example\n"
	";primary_metric = sharpe\n";

static const char job_text[] =
	"; conf/example.job, written by `runner init`: a job of the example\n"
	"; agent (see runner-job(5)).  Run it with `runner run conf/example.job`,\n"
	"; or hand it to the daemon with `runner submit conf/example.job`.\n"
	"[job]\n"
	"agent = example\n"
	"name = example\n"
	"symbols = AAPL MSFT GOOGL\n";

/* dirfd/name with text, unless it exists: 0 written, 1 kept, -1 printed. */
static int write_new(int dirfd, const char *shown, const char *name,
		     const char *text)
{
	char tmp[300];
	int fd = home_open_temp(dirfd, name, tmp, sizeof(tmp)), saved;
	if (fd < 0)
		return error("%s: %s", shown, strerror(errno));
	if (write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0)
		goto out_unlink;
	if (close(fd) < 0) {
		fd = -1;
		goto out_unlink;
	}
	fd = -1;
	if (rename_noreplace(dirfd, tmp, dirfd, name) < 0) {
		saved = errno;
		unlinkat(dirfd, tmp, 0);
		if (saved == EEXIST)
			return 1;
		return error("%s: %s", shown, strerror(saved));
	}
	if (fsync_dir(dirfd) < 0)
		return error("%s: %s", shown, strerror(errno));
	return 0;
out_unlink:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlinkat(dirfd, tmp, 0);
	return error("%s: %s", shown, strerror(saved));
}

int cmd_init(void)
{
	struct cmdopt o[] = { { "--help" } };
	char **pos;
	size_t npos;
	int rc = parse_cmd(o, NOPTS(o), &pos, &npos, "init",
			   "usage: runner init [DIR]\n\n"
			   "Make DIR (default: the home of -C, RUNNER_HOME or .) a "
			   "runner home:\nconf/runner.ini with every key at its "
			   "default and an example agent,\nconf/example.job, "
			   "batches/, spool/, logs/ and state/.  Files that\nexist "
			   "are kept as they are.");
	if (rc)
		return rc == CMD_HELP ? 0 : rc;
	if (npos > 1) {
		rc = usage_error("init: unexpected argument %s", pos[1]);
		goto out;
	}
	const char *dir = npos ? pos[0] : home_path();
	int conf = -1, home = -1;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		rc = EX_CANTCREAT_;
		error("%s: %s", dir, strerror(errno));
		goto out;
	}
	if ((home = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    ensure_dir(home, "conf", 0755) < 0 ||
	    (conf = open_dir_at(home, "conf")) < 0) {
		rc = EX_CANTCREAT_;
		error("%s/conf: %s", dir, strerror(errno));
		goto out_close;
	}
	char *shown = xasprintf("%s/conf/runner.ini", dir);
	int wrote_conf = write_new(conf, shown, "runner.ini", conf_text);
	free(shown);
	shown = xasprintf("%s/conf/example.job", dir);
	int wrote_job = wrote_conf < 0 ? -1
			: write_new(conf, shown, "example.job", job_text);
	free(shown);
	if (wrote_conf < 0 || wrote_job < 0 ||
	    home_open(&home_, dir) < 0) {
		rc = EX_CANTCREAT_;
		goto out_close;
	}
	if (verbosity < 0)
		;
	else if (wrote_conf == 1)
		printf("%s is a home already: its conf/runner.ini is kept\n",
		       dir);
	else
		printf("%s is a runner home now: edit %s/conf/runner.ini, then "
		       "try 'runner -C %s run %s/conf/example.job'\n",
		       dir, dir, dir, dir);
out_close:
	if (conf >= 0)
		close(conf);
	if (home >= 0)
		close(home);
out:
	free_cmd(o, NOPTS(o), pos);
	return rc;
}
