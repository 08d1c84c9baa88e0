#!/bin/sh
# hostile-child.t: a child (same uid) or a bad item must not stop or
# starve the runner: signals a child sends its runner, a child that kills
# its runner again and again, an item that cannot start, a home whose
# state/slots cannot be used.
. "${RUNNER_SRC:-$(pwd)}/tests/lib.sh"

# run_bounded: `runner run`, bounded in time (a runner stopped by SIGTSTP
# or stalled for ever is a failure, 124 or 137, not a hung test).
run_bounded() {
	_secs=60
	[ -n "${RUNNER_VALGRIND:-}" ] && _secs=600
	timeout -k 5 "$_secs" $RUNNER_CMD -C "$H" run --no-progress >"$T/out" 2>"$T/err"
	rc=$?
}
item() { item_in "$1" "$2" "$3"; }
states() { jq "$H/batches/$1/batch.json" 'join(",", map { "$_->{symbol}=$_->{state}/$_->{attempts}" } @{$d->{items}})'; }

# ---- 1. signals a child sends its runner: ignored, the batch completes ----

mkhome
sigs="USR1 USR2 ALRM XCPU XFSZ VTALRM PROF TSTP TTIN TTOU IO PWR 16 RTMIN RTMAX SEGV BUS FPE ILL TRAP SYS ABRT HUP"
syms=""
want=""
for s in $sigs; do
	syms="$syms PARENT-$s-A"
	want="$want,PARENT-$s-A=succeeded/1"
done
job sig <<JOB
[job]
agent = fake
id = sig
symbols = $syms OK-B
JOB
run_bounded
is "$rc" 0 "signals from a child: the runner goes on, exit 0"
is "$(states sig)" "${want#,}"",OK-B=succeeded/1" "every item succeeded on its one attempt"
is "$(jq "$H/batches/sig/summary.json" '$d->{status}')" completed "batch completed"

# ---- 2. QUIT from a child stops the runner as TERM does; it counts ----

mkhome
job quit <<JOB
[job]
agent = fake
id = quit
symbols = PARENT-QUIT-A OK-B
JOB
run_bounded
is "$rc" 75 "SIGQUIT from a child: stopped as on SIGTERM, exit 75"
like "$(cat "$T/err")" '^runner: warning: quit: stopping' "said: quit, stopping"
a1=$(jq "$H/batches/quit/batch.json" '$d->{items}[0]{attempt_log}[0]{outcome} . " " . $d->{items}[0]{attempt_log}[0]{error_category} . ": " . $d->{items}[0]{attempt_log}[0]{error_message}')
is "$a1" "interrupted engine_error: interrupted: the runner stopped at a signal from this attempt" \
	"the sender's attempt: interrupted, and it counts (engine_error)"
run_bounded
is "$rc" 0 "the next run completes the batch"
is "$(states quit)" "PARENT-QUIT-A=succeeded/2,OK-B=succeeded/2" "both succeeded on attempt 2"

# A process the attempt left in a session of its own is still its own.
mkhome
job esc <<JOB
[job]
agent = fake
id = esc
symbols = ESCAPESIG-TERM-A
JOB
run_bounded
is "$rc" 75 "SIGTERM from an attempt's escaped process: stopped, exit 75"
is "$(jq "$H/batches/esc/batch.json" '$d->{items}[0]{attempt_log}[0]{error_category}')" engine_error \
	"and the interruption counts"
run_bounded
is "$(states esc)" "ESCAPESIG-TERM-A=succeeded/2" "the next run completes it"

# ---- 3. a child that SIGKILLs its runner: failed after 3 interruptions ----

mkhome
job kill <<JOB
[job]
agent = fake
id = kill
symbols = KILLPARENT-A OK-B OK-C
JOB
runs=0
rc=137
while [ "$rc" = 137 ] && [ $runs -lt 8 ]; do
	run_bounded
	runs=$((runs + 1))
done
is "$rc" 1 "the runs end: exit 1 (an item failed)"
is "$runs" 4 "three runs killed, the fourth finishes the batch"
is "$(item kill KILLPARENT-A state)" failed "the killer failed"
is "$(item kill KILLPARENT-A attempts)" 3 "after 3 attempts"
is "$(item kill KILLPARENT-A error_category)" engine_error "engine_error"
is "$(item kill KILLPARENT-A error_message)" \
	"interrupted 3 times: its attempts keep ending with the runner" "the reason"
is "$(item kill OK-B state)/$(item kill OK-C state)" succeeded/succeeded \
	"the other items of the batch succeeded"
is "$(jq "$H/batches/kill/summary.json" '$d->{error_summary}{engine_error}')" 1 \
	"summary: one engine_error"
like "$(cat "$H/logs/kill.log")" 'KILLPARENT-A failed \(attempt 3 interrupted\): engine_error: interrupted 3 times' \
	"the batch log says why it failed"

# ---- 4. the retry count shown after an interrupted attempt ----

mkhome
job count <<JOB
[job]
agent = fake
id = count
symbols = PARENTFAIL-TERM-A
max_attempts = 2
JOB
run_bounded
is "$rc" 75 "attempt 1 stopped its runner"
run_bounded
is "$rc" 1 "then failed twice"
is "$(item count PARENTFAIL-TERM-A attempts)" 3 "three attempts, two that count"
like "$(cat "$H/logs/count.log")" 'retry \(attempt 3 in all, 2 of 2 that count\)' \
	"log: attempt 3 in all, 2 of 2 that count"
check "log: no 'queued again' without a retry-failed" \
	sh -c "! grep -q 'since it was queued again' '$H/logs/count.log'"

# ---- 5. an item that cannot start fails; the rest go on ----

mkhome
job one <<JOB
[job]
agent = fake
id = one
symbols = OK-A EXIT-65-B
JOB
run_bounded
is "$rc" 1 "batch one: one item failed"
r retry-failed one --no-wait
# A sibling made the batch's output directory a regular file.
rm -rf "$H/batches/one/output"
: >"$H/batches/one/output"
job two <<JOB
[job]
agent = fake
id = two
symbols = OK-C OK-D
JOB
run_bounded
is "$rc" 1 "the run ends (exit 1), it does not stall"
is "$(item one EXIT-65-B state)" failed "the item that cannot start failed"
is "$(item one EXIT-65-B error_category)" engine_error "engine_error"
is "$(item one EXIT-65-B error_message)" \
	"cannot start: batches/one/output: Not a directory" "with the reason"
is "$(states two)" "OK-C=succeeded/1,OK-D=succeeded/1" "the other batch completed"
check "no stall said" sh -c "! grep -q 'dispatching stops' '$T/err'"

# ---- 6. state/slots a symlink: said, and the runner exits ----

mkhome
mkdir -p "$H/state"
ln -s "$T/elsewhere" "$H/state/slots"
job slots <<JOB
[job]
agent = fake
id = slots
symbols = OK-A
JOB
run_bounded
is "$rc" 73 "state/slots unusable: exit 73"
like "$(cat "$T/err")" '^runner: state/slots: .*; no attempt can start: stopping$' \
	"one line says why"
check "the symlink's target was not made" test ! -e "$T/elsewhere"
is "$(item slots OK-A state)" pending "the item waits for a home that works"

# ---- 7. children get default dispositions, whatever the runner got ----

mkhome
job masks <<JOB
[job]
agent = fake
id = masks
symbols = SIGS-A
JOB
# As a background job of a script, or under nohup: signals ignored.
(trap '' INT QUIT HUP USR1 TSTP; run_bounded; echo "$rc" >"$T/rc")
is "$(cat "$T/rc")" 0 "run with signals ignored by its parent"
r output masks SIGS-A
is "$(tr -s '\t' ' ' <"$T/out")" "SigBlk: 0000000000000000
SigIgn: 0000000000000000" "the child has no signal blocked or ignored"

# Even the real-time signals the C library keeps for itself, ignored by
# whatever started the runner (seen under make check's prove).
job masks2 <<JOB
[job]
agent = fake
id = masks2
symbols = SIGS-B
JOB
"$BUILD/agents/ignrt" "$RUNNER" -C "$H" run >/dev/null 2>&1
r output masks2 SIGS-B
like "$(cat "$T/out")" 'SigIgn:[[:space:]]+0000000000000000' \
	"signals 32 and 33 ignored by the runner's parent are not the child's"

done_testing
