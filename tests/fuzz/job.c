/*
 * Fuzz the job file parser: the input is a job file's bytes, parsed as
 * `runner check` and the spool do (job_parse), against a configuration
 * with agent "fake" and a home whose symbols files it may name:
 * symbols.txt and lists/more.txt (a relative path that stays inside),
 * and a symlink out.txt that leads outside (refused by RESOLVE_BENEATH).
 */
#include "conf.h"
#include "fuzz.h"
#include "home.h"
#include "inifile.h"
#include "job.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char conf_text[] =
	"[runner]\nmax_children = 4\n"
	"[retry]\nmax_attempts = 3\ndelays = 0.1 0.2\njitter = 0\n"
	"[agent fake]\ncommand = /bin/sh -c true {symbol}\n"
	"max_concurrent = 4\ntimeout = 30s\nsource = vendor\n";

static struct conf *conf;
static int home_fd = -1;

static void put(int dirfd, const char *name, const char *text)
{
	if (home_replace(dirfd, name, text, strlen(text)) < 0)
		die(EX_CANTCREAT_, "fuzz: %s: %s", name, strerror(errno));
}

static void setup(void)
{
	char path[512];
	home_fd = fuzz_scratch();
	put(home_fd, "runner.ini", conf_text);
	snprintf(path, sizeof(path), "%s/runner.ini", fuzz_scratch_path());
	conf = conf_load(path);
	if (!conf)
		die(EX_CONFIG_, "fuzz: the harness's configuration is refused");
	put(home_fd, "symbols.txt", "AAPL\nMSFT # a comment\n\nOK-1 OK-2\n");
	if (mkdirat(home_fd, "lists", 0755) < 0)
		die(EX_CANTCREAT_, "fuzz: lists: %s", strerror(errno));
	int lists = openat(home_fd, "lists", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lists < 0)
		die(EX_CANTCREAT_, "fuzz: lists: %s", strerror(errno));
	put(lists, "more.txt", "X-1\nX-2\nX-1\n");
	close(lists);
	if (symlinkat("/etc/hostname", home_fd, "out.txt") < 0)
		die(EX_CANTCREAT_, "fuzz: out.txt: %s", strerror(errno));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct job j = JOB_INIT;
	struct diag d = DIAG_INIT("fuzz.job");
	char digest[65];

	if (!conf)
		setup();
	if (size > JOB_MAX_BYTES)
		return 0;
	int rc = job_parse(&j, &d, (const char *)data, size, conf, home_fd);
	if (rc < 0 && d.errors == 0)
		BUG("job_parse refused a job without saying why");
	if (rc == 0) {
		/* What a claim reads of a valid job. */
		sha256_hex(data, size, digest);
		for (size_t i = 0; i < j.nsymbols; i++)
			if (!valid_symbol(j.symbols[i]))
				BUG("job_parse kept an invalid symbol");
		if (j.id && !valid_batch_id(j.id))
			BUG("job_parse kept an invalid id");
	}
	job_release(&j);
	diag_release(&d);
	return 0;
}
