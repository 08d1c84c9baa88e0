/*
 * cli: what the commands of the command line share (main.c parses the
 * global options and dispatches; each cmd_*.c holds commands).
 *
 *   g, home_, conf_          the global options, the home, its configuration
 *   parse_globals(argc, argv, &cmd)
 *                            the global options before the command word
 *   parse_cmd(opts, n, &pos, &npos, "name", usage)
 *                            a command's own options and arguments, the
 *                            GNU way (getopt_long: unambiguous prefixes,
 *                            -xy, --name=VALUE, global options after the
 *                            command too); with --help it prints usage
 *                            and returns CMD_HELP; an unknown option is
 *                            one line, "see runner CMD --help", 64
 *   open_home(), load_conf() 0, or the exit status (printed)
 *   view_shared()            the home's groups and circuits, for a view
 *   load_batch(id, &b, &dirfd)   a batch replayed for reading, from
 *                            batches/ or its archive
 *   ask_owner(id, json, &reply)  hand a request to the runner that holds
 *                            a batch (or the daemon): 0 answered, 1
 *                            nobody will (do it here), -status
 *
 * Errors are one line on stderr (util.h); functions return an exit status
 * from the table in util.h, 0 for success.
 */
#ifndef RUNNER_CLI_H
#define RUNNER_CLI_H

#include "batch.h"
#include "conf.h"
#include "engine.h"
#include "home.h"
#include "shared.h"
#include "util.h"

#include <stdbool.h>
#include <stddef.h>

#define VERSION "0.1.0"

struct opts {
	const char *home;
	const char *config;
	bool json;
	bool no_progress;
	bool help;
	bool version;
	char **args;	/* the command's own arguments */
	size_t nargs;
};
extern struct opts g;
extern struct home home_;
extern struct conf *conf_;

/* Options of a command: flags and repeated "--name VALUE" lists.  name
 * is "--long" or "-x"; shortopt, when set, is a one-letter alias of a
 * long one ({ "--follow", .shortopt = 'f' }). */
struct cmdopt {
	const char *name;
	bool takes_value;
	bool seen;
	char **values;
	size_t nvalues, cap;
	char shortopt;
};
#define CMD_HELP (-1) /* parse_cmd printed the usage: exit 0 */
#define NOPTS(a) (sizeof(a) / sizeof((a)[0]))

int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The global options of argv up to the command word: 0 with *cmd its
 * index (argc: none), or the usage error's status (printed). */
int parse_globals(int argc, char **argv, int *cmd);
const char *home_path(void);
int open_home(void);
int load_conf(void);
int parse_cmd(struct cmdopt *opts, size_t nopts, char ***pos, size_t *npos,
	      const char *cmd, const char *usage);
void free_cmd(struct cmdopt *opts, size_t n, char **pos);
const char *last_value(const struct cmdopt *o);
struct shared *view_shared(void);
void view_shared_close(void);
/* A batch directory's fd, or -66 (printed) when there is none. */
int open_batch_dir(const char *id);
bool is_group_id(const char *s);
struct sh_group *find_group(const char *id);
struct engine_opts engine_opts(void);
bool batch_dir_exists(const char *id);
int load_batch(const char *id, struct batch *b, int *dirfd);
/* A command's one batch argument: the home opened and the batch loaded
 * (load_batch); 0, or the exit status (printed).  The caller releases b
 * either way. */
int load_one_batch(char **pos, size_t npos, const char *cmd, struct batch *b,
		   int *dirfd);
/* An option's number in [lo, hi] into *v (left as it is when the option
 * is absent): 0, or the usage error's status (printed). */
int cmd_number(const struct cmdopt *o, const char *cmd, long long lo,
	       long long hi, long long *v);
/* Every batch of batches/ (a directory named a batch id, not archive/):
 * fn(arg, id, fd of the directory, closed after).  0, or -1 with errno
 * when batches/ cannot be read. */
int each_batch(void (*fn)(void *arg, const char *id, int bfd), void *arg);
char *request_json(const char *op, char **cats, size_t ncats, char **syms,
		   size_t nsyms);
int ask_owner(const char *id, const char *json, struct sb *reply);
long reply_count(const struct sb *reply, const char *key);

/*
 * A request on a batch (cancel, pause, resume, retry-failed), carried out
 * the one way: by the runner that holds the batch, or the daemon, through
 * state/control; else here: the batch taken (take_flags: TAKE_FINAL for a
 * final one too), here() does the operation and returns its count of
 * items, and then either what it started runs in the foreground until
 * final (foreground, and the count is not 0) or only what it decided is
 * written down.  Returns 0 or an exit status (printed); out says what
 * happened: by_owner (the owner answered; n from the reply's count_key),
 * took (engine_take's answer here: 1 when another runner holds the batch,
 * or it is final and not TAKE_FINAL), n, run_status (engine_run's).
 */
struct request {
	const char *id;
	const char *json;
	const char *count_key;
	int take_flags;
	bool foreground;
	struct engine_opts eo;
	int (*here)(struct engine *e, const struct request *rq, struct sb *reply);
	const void *arg;
};
struct request_out {
	bool by_owner;
	int took;
	long n;
	int run_status;
};
/* The batch before c's: the newest created earlier with the same name
 * (no name: same origin and agent; neither: same agent), archived ones
 * included.  0 with its id, or -1: none. */
int previous_batch(const struct batch_conf *c, char *id, size_t n);
int request_carry(const struct request *rq, struct sb *reply,
		  struct request_out *out);

/* The commands: each parses g.args and returns an exit status. */
int cmd_init(void);
int cmd_check(void);
int cmd_run(void);
int cmd_daemon(void);
int cmd_submit(void);
int cmd_show(void);
int cmd_report(void);
int cmd_list(void);
int cmd_stats(void);
int cmd_archive(void);
int cmd_restore(void);
int cmd_retry_failed(void);
int cmd_cancel(void);
int cmd_pause(void);
int cmd_resume(void);
int cmd_groups(void);
int cmd_status(void);
int cmd_output(void);
int cmd_results(void);
int cmd_diff(void);
int cmd_history(void);
int cmd_fsck(void);
int cmd_wait(void);
int cmd_log(void);

#endif
