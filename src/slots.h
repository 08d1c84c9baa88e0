/*
 * slots: concurrency caps that hold across every runner process of a home.
 *
 * A cap of N is N slots; a slot is a one-byte open-file-description lock
 * (F_OFD_SETLK) in state/slots.  The global cap (max_children) uses bytes
 * 0..N-1; an agent's cap uses a range derived from a hash of its name, far
 * above.  slot_acquire() opens the file afresh (a new open file
 * description), takes one global and one agent slot on it, and returns the
 * fd.  The caller hands a copy of that fd to the child (exec's keep_fd)
 * and keeps its own until the item ends; then slot_release() unlocks and
 * closes it.  An OFD lock belongs to the open file description, not to a
 * process: unlocking through the runner's copy frees the slot at once,
 * whatever descendant of the item still holds fd 3 (one that escaped its
 * process group must not hold a slot for ever).  If the runner is killed,
 * its copy closes and the child's copies keep the slot taken until what
 * is left of the item dies (the child itself at once, PR_SET_PDEATHSIG;
 * the rest when a runner adopts the batch and stops it).
 *
 *   int fd = slot_acquire(state_fd, max_children, agent, max_concurrent,
 *                         &blocked);
 *   if (fd < 0 && errno == EAGAIN) ...   blocked: SLOT_GLOBAL or SLOT_AGENT
 *   ... spawn with keep_fd = fd, keep fd while the item runs ...
 *   slot_release(fd);                    when the item's child is reaped
 *
 * Nothing notifies a process when another frees a slot: a runner whose own
 * children do not fill a cap, yet finds no free slot, asks again shortly
 * (the scheduler's slot poll).
 */
#ifndef RUNNER_SLOTS_H
#define RUNNER_SLOTS_H

enum { SLOT_GLOBAL = 1, SLOT_AGENT = 2 };

int slot_acquire(int state_fd, int global_cap, const char *agent,
		 int agent_cap, int *blocked);
/* Unlocks both slots of fd and closes it; fd may be -1. */
void slot_release(int fd);
/* Slots of a cap now held by anyone (for status). */
int slot_count_held(int state_fd, const char *agent, int cap);

#endif
