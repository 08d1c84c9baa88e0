/*
 * main: the command line (SPEC 3).  The global options before the command
 * word are parsed here (parse_globals), those after it with the command's
 * own (parse_cmd: both getopt_long).  Each command does its work through
 * the modules below it and returns an exit status from the SPEC's table.
 */
#include "cli.h"
#include "archive.h"
#include "batch.h"
#include "conf.h"
#include "control.h"
#include "daemon.h"
#include "engine.h"
#include "home.h"
#include "inifile.h"
#include "job.h"
#include "remote.h"
#include "meta.h"
#include "progress.h"
#include "report.h"
#include "runlog.h"
#include "shared.h"
#include "slots.h"
#include "symstats.h"
#include "spool.h"
#include "stats.h"
#include "util.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>



static const char usage_text[] =
	"usage: runner [GLOBAL OPTIONS] COMMAND [ARGS]\n"
	"\n"
	"commands:\n"
	"  init [DIR]              make DIR a home: conf/runner.ini, an example job\n"
	"  run [JOB...]            claim job files (or all of spool/) and run them;\n"
	"                          also adopts unfinished batches whose runner died\n"
	"  daemon [--once]         watch spool/ and run what arrives, until SIGTERM\n"
	"  submit JOB... [--wait]  validate, give an id, place in spool/ atomically\n"
	"  check JOB...            validate job files; print every problem\n"
	"  show BATCH [--items] [--failed]\n"
	"                          one batch (--json: the batch.json document)\n"
	"  output BATCH SYMBOL [--attempt N] [--stderr] [--follow]\n"
	"                          what an attempt printed, byte for byte\n"
	"  output BATCH --failed [--lines N]\n"
	"                          the last stderr lines of every failed item\n"
	"  results BATCH [--sort KEY] [--desc] [--where EXPR] [--columns A,B]\n"
	"        [--csv|--tsv]     one row per symbol: state, duration, metrics\n"
	"  diff BATCH [OTHER] [--limit N]\n"
	"                          what changed since the previous such batch\n"
	"  history SYMBOL [--limit N]\n"
	"                          the symbol's last runs across batches\n"
	"  wait BATCH              until the batch is final; exit with its status\n"
	"  log BATCH [-f]          the batch's log (-f: follow it until final)\n"
	"  list [--status S] [--since T] [--until T] [--agent A] [--limit N]\n"
	"       [--archived] [--format COLS] [--no-header]\n"
	"                          batch history, newest first\n"
	"  retry-failed BATCH [--category C]... [--symbol S]... [--no-wait]\n"
	"                          run the batch's failed items again\n"
	"  cancel TARGET [--symbol S]...\n"
	"                          cancel a batch's (or a failure group's) items\n"
	"                          that are not final\n"
	"  pause TARGET [--symbol S]... [--reason TEXT]\n"
	"                          pause a batch's or a failure group's items\n"
	"  resume TARGET [--order progress|oldest|priority] [--no-wait]\n"
	"                          resume them, under the caps, in that order\n"
	"  groups                  failure groups and their resume progress\n"
	"  status [SYMBOL...]      daemon, agents, symbols and circuits now\n"
	"  stats [--since T]       aggregates across batches: statuses, success,\n"
	"                          errors, throughput, most-failing symbols\n"
	"  report BATCH [-o FILE]  one self-contained HTML page about a batch\n"
	"  archive [--older-than DUR] [--dry-run]\n"
	"                          archive final batches older than DUR\n"
	"  restore BATCH           bring an archived batch back into batches/\n"
	"  help [COMMAND]          this text, or the command's (COMMAND --help)\n"
	"  fsck BATCH [--cut]      check a batch's journal and views; --cut keeps\n"
	"                          a copy and cuts the journal where it is damaged\n"
	"\n"
	"global options:\n"
	"  -C, --home DIR          the home (default $RUNNER_HOME, else .)\n"
	"  -c, --config FILE       configuration (default HOME/conf/runner.ini)\n"
	"      --json              machine-readable output\n"
	"  -q, --quiet             only errors\n"
	"  -v, --verbose           more detail\n"
	"      --no-progress       no progress line\n"
	"  -h, --help              this text; COMMAND --help for a command\n"
	"  -V, --version           the version\n"
	"\n"
	"See runner(1), runner.conf(5) and runner-job(5).\n";


/* ---- dispatch ---- */

struct command {
	const char *name;
	int (*fn)(void);
};

static const struct command commands[] = {
	{ "init", cmd_init },
	{ "run", cmd_run },
	{ "daemon", cmd_daemon },
	{ "submit", cmd_submit },
	{ "check", cmd_check },
	{ "show", cmd_show },
	{ "output", cmd_output },
	{ "results", cmd_results },
	{ "diff", cmd_diff },
	{ "history", cmd_history },
	{ "list", cmd_list },
	{ "retry-failed", cmd_retry_failed },
	{ "cancel", cmd_cancel },
	{ "pause", cmd_pause },
	{ "resume", cmd_resume },
	{ "groups", cmd_groups },
	{ "status", cmd_status },
	{ "stats", cmd_stats },
	{ "report", cmd_report },
	{ "archive", cmd_archive },
	{ "restore", cmd_restore },
	{ "fsck", cmd_fsck },
	{ "wait", cmd_wait },
	{ "log", cmd_log },
};

/* Descriptors 0-2 must exist, or a file we open could become "stdout". */
static void sane_stdio(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0) {
			int n = open("/dev/null", O_RDWR);
			if (n != fd && n >= 0)
				close(n);
		}
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* "--retry-failed BATCH" (or =BATCH), anywhere before "--": the command
 * retry-failed on BATCH, as it has always been written.  Taken out of
 * argv before the options are parsed (the words left are the command's:
 * global options or its own, such as --symbol); NULL when absent. */
static const char *retry_failed_synonym(int *argc, char **argv, bool *bad)
{
	const char *batch = NULL;
	int j = 1;
	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			while (i < *argc)
				argv[j++] = argv[i++];
			break;
		}
		if (!strcmp(a, "--retry-failed")) {
			if (i + 1 >= *argc)
				*bad = true;
			else
				batch = argv[++i];
			continue;
		}
		if (!strncmp(a, "--retry-failed=", 15)) {
			batch = a + 15;
			continue;
		}
		argv[j++] = argv[i];
	}
	argv[j] = NULL;
	*argc = j;
	return batch;
}

int main(int argc, char **argv)
{
	const char *cmd = NULL;
	char **rest = xcalloc((size_t)argc + 2, sizeof(char *));
	size_t nrest = 0;
	bool bad = false;
	int at, rc;

	sane_stdio();
	/* On a node, between a launcher and the agent: its arguments are the
	 * agent's, never runner options. */
	if (argc > 1 && !strcmp(argv[1], REMOTE_COMMAND)) {
		free(rest);
		return remote_exec_main(argc - 2, argv + 2);
	}
	raise_nofile();
	inifile_setup(JOB_MAX_BYTES + 16);
	const char *rf = retry_failed_synonym(&argc, argv, &bad);
	if (bad) {
		free(rest);
		return usage_error("--retry-failed needs a batch");
	}
	if (rf) {
		cmd = "retry-failed";
		rest[nrest++] = (char *)rf;
		at = 1;
	} else if ((rc = parse_globals(argc, argv, &at))) {
		free(rest);
		return rc;
	} else if (at < argc) {
		cmd = argv[at++];
	}
	/* `runner help CMD` is `runner CMD --help`. */
	if (cmd && !strcmp(cmd, "help")) {
		g.help = true;
		cmd = at < argc ? argv[at++] : NULL;
	}
	while (at < argc)
		rest[nrest++] = argv[at++];
	g.args = rest;
	g.nargs = nrest;
	if (g.version) {
		printf("runner %s\n", VERSION);
		return 0;
	}
	if (!cmd) {
		if (g.help) {
			fputs(usage_text, stdout);
			return 0;
		}
		fputs(usage_text, stderr);
		return EX_USAGE_;
	}
	for (size_t i = 0; i < NOPTS(commands); i++) {
		if (strcmp(cmd, commands[i].name))
			continue;
		int status = commands[i].fn();
		view_shared_close();
		conf_free(conf_);
		home_release(&home_);
		free(rest);
		if (fflush(stdout) != 0 && !status)
			status = EX_IOERR_;
		return status;
	}
	free(rest);
	const char *names[NOPTS(commands)];
	for (size_t i = 0; i < NOPTS(commands); i++)
		names[i] = commands[i].name;
	const char *near = did_you_mean(cmd, names, NOPTS(commands));
	if (near)
		error("unknown command '%s' (did you mean '%s'?); see runner "
		      "--help", cmd, near);
	else
		error("unknown command '%s'; see runner --help", cmd);
	return EX_USAGE_;
}
