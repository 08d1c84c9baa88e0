#!/bin/sh
# cancel (SPEC 3): of a batch a live runner owns (through state/control),
# of some symbols, of a batch nobody owns; batch_timeout.
. "${RUNNER_SRC:-.}/tests/lib.sh"

item() { item_in "$@"; }
wait_running() { # BATCH N: until N items run (batch.json is rewritten ~1/s)
	i=0
	while [ $i -lt 100 ]; do
		[ -f "$H/batches/$1/batch.json" ] &&
			[ "$(jq "$H/batches/$1/batch.json" '$d->{running_items}')" -ge "$2" ] && return 0
		sleep 0.1; i=$((i + 1))
	done
	return 1
}

mkhome
job c <<JOB
[job]
agent = fake
id = c1
symbols = HANG-A HANG-B TERMIGNORE-C HANG-D HANG-E HANG-F
JOB
$RUNNER -C "$H" run >"$T/run.out" 2>&1 &
pid=$!
check "items running" wait_running c1 4
t0=$(date +%s%N)
r cancel c1
t1=$(date +%s%N)
is "$rc" 0 "cancel exits 0"
like "$(cat "$T/out")" "batch c1: 6 items cancelled" "all open items cancelled"
check "acknowledged within a second ($(( (t1 - t0) / 1000000 )) ms)" test $(( (t1 - t0) / 1000000 )) -lt 1000
wait $pid
is "$?" 1 "the run ends with exit 1"
is "$(jq "$H/batches/c1/batch.json" '$d->{status}')" cancelled "status cancelled"
is "$(jq "$H/batches/c1/batch.json" '$d->{cancelled_items}')" 6 "every item cancelled"
is "$(item c1 HANG-A attempt_log)" "$(item c1 HANG-A attempt_log)" "attempt_log present"
is "$(jq "$H/batches/c1/batch.json" '$d->{items}[0]{attempt_log}[0]{outcome}')" cancelled "running attempt: outcome cancelled"
is "$(jq "$H/batches/c1/batch.json" '$d->{items}[5]{attempts}')" 0 "pending item: cancelled without an attempt"
is "$(grep -l "RUNNER_BATCH_ID=c1" /proc/[0-9]*/environ 2>/dev/null | wc -l)" 0 "no process left (even one ignoring SIGTERM)"
like "$(cat "$H/logs/c1.log")" "cancelled: the whole batch \(by a user\)" "log: cancelled"

# cancel --symbol: only that item; the rest goes on.
mkhome
job c <<JOB
[job]
agent = fake
id = c2
symbols = HANG-A GATE-B GATE-C
JOB
$RUNNER -C "$H" run >"$T/run.out" 2>&1 &
pid=$!
# GATE items say when they run and end when told: no race with a timer.
started() { test -f "$H/gates/started.GATE-B" -a -f "$H/gates/started.GATE-C"; }
check "running" wait_for started
r cancel c2 --symbol HANG-A
like "$(cat "$T/out")" "1 item cancelled" "one item cancelled"
touch "$H/gates/open.GATE-B" "$H/gates/open.GATE-C"
wait $pid
is "$(jq "$H/batches/c2/batch.json" '$d->{status}')" partial "status partial"
is "$(item c2 HANG-A state)" cancelled "HANG-A cancelled"
is "$(item c2 GATE-B state)" succeeded "the others finished"

# A batch nobody owns (its runner was killed): cancel adopts and cancels.
mkhome
job c <<JOB
[job]
agent = fake
id = c3
symbols = HANG-A HANG-B OK-C
concurrency = 2
JOB
$RUNNER -C "$H" run >"$T/run.out" 2>&1 &
pid=$!
check "running" wait_running c3 2
kill -9 $pid; wait $pid 2>/dev/null
sleep 0.2
r cancel c3
is "$rc" 0 "cancel of an orphaned batch"
is "$(jq "$H/batches/c3/batch.json" '$d->{status}')" cancelled "status cancelled"
is "$(item c3 HANG-A attempt_log)" "$(item c3 HANG-A attempt_log)" "log kept"
is "$(jq "$H/batches/c3/batch.json" '$d->{items}[0]{attempt_log}[0]{outcome}')" interrupted "the dead runner's attempt: interrupted"
is "$(grep -l "RUNNER_BATCH_ID=c3" /proc/[0-9]*/environ 2>/dev/null | wc -l)" 0 "its leftover children are gone"
r cancel c3
like "$(cat "$T/out")" "0 items cancelled" "cancel of a final batch: nothing to do"
r cancel nope
is "$rc" 66 "cancel of an unknown batch: 66"

# batch_timeout: items not final by then are cancelled.
mkhome
job bt <<JOB
[job]
agent = fake
id = bt
symbols = OK-A HANG-B HANG-C HANG-D HANG-E HANG-F
concurrency = 2
batch_timeout = 1s
JOB
s=$(date +%s)
r run
is "$rc" 1 "batch timeout: exit 1"
check "within a few seconds" test $(( $(date +%s) - s )) -le 5
is "$(jq "$H/batches/bt/batch.json" '$d->{status}')" partial "partial (one succeeded)"
is "$(jq "$H/batches/bt/batch.json" '$d->{cancelled_items}')" 5 "the others cancelled"
like "$(cat "$H/logs/bt.log")" "batch_timeout reached" "log says why"
done_testing
