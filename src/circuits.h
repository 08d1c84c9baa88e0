/*
 * circuits: this process's batches and the home's failure groups and
 * symbol circuits (shared.h).  circ_react() brings the batches in line
 * with the groups (pause for an open one, pause its failed members,
 * resume for a resumed one, tell a group of members that ended);
 * circ_try_trials() gives a due group its half-open trial; trials are
 * leases (circ_check_trials renews them, gives back withdrawn ones);
 * circ_settle() settles members whose batches nobody runs.  Alerts of
 * groups and members are raised here: a group's when it forms, grows,
 * opens again and resolves; one per failing member.
 */
#ifndef RUNNER_CIRCUITS_H
#define RUNNER_CIRCUITS_H

#include "engine_int.h"

struct trial *circ_find_trial(struct engine *e, const struct ebatch *eb,
			      uint32_t idx, bool group);
void circ_add_trial(struct engine *e, const char *group, struct ebatch *eb,
		    uint32_t idx);
void circ_drop_trial(struct engine *e, struct trial *t);
void circ_release_trial(struct engine *e, struct trial *t);
void circ_check_trials(struct engine *e);
void circ_alert(struct engine *e, const char *event,
		const struct ebatch *eb, const struct item *it,
		const struct sh_group *g, const char *message);
void circ_group_alert(struct engine *e, const struct sh_group *g,
		      const char *what);
void circ_member_alert(struct engine *e, const struct sh_group *g,
		       const char *batch, const char *symbol);
void circ_pause_items(struct engine *e, struct ebatch *eb,
		      const uint32_t *idx, uint32_t n, const char *group,
		      const char *reason);
uint32_t *circ_pausable(const struct ebatch *eb, uint32_t *n);
void circ_resume_items(struct engine *e, struct ebatch *eb,
		       const char *group, uint32_t *idx, uint32_t n,
		       const char *order, const char *why);
void circ_note_final(struct engine *e, struct ebatch *eb, uint32_t idx);
void circ_react(struct engine *e);
void circ_settle(struct engine *e);
void circ_try_trials(struct engine *e);
bool circ_take_symbol_trial(struct engine *e, const char *symbol);
void circ_force_symbol_trial(struct engine *e, const char *symbol);
int64_t circ_next_ms(struct engine *e);;
/* Around an attempt's end (runs_finish): the trials it held, before its
 * record; the shared state, trials and alerts after it. */
void circ_before_record(struct engine *e, struct ebatch *eb, uint32_t idx,
			const struct rec *r);
void circ_after_attempt(struct engine *e, struct ebatch *eb, uint32_t idx,
			const struct rec *r, const struct sh_failure_result *fr,
			const char *message);

#endif
