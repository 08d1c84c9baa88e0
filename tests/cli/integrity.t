#!/bin/sh
# Where two capabilities meet: a symbol circuit during retries, submit and
# dedup, failure groups with final failures, a second wave after a resume,
# group counts and cancel, alerts, status.  Every runner here runs with
# RUNNER_STRICT (tests/lib.sh): a lost item or a loop that would sleep with
# work to do aborts it, so every run below also checks liveness.
. "${RUNNER_SRC:-.}/tests/lib.sh"

CAPDIR=$T/cap
mkdir -p "$CAPDIR"
item() { item_in "$@"; }
# ms since the epoch of an RFC 3339 time
ms_of() { perl -MTime::Local -e '($y,$m,$d,$H,$M,$S,$ms)=$ARGV[0]=~/(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)\.(\d+)/ or print(0), exit; print timegm($S,$M,$H,$d,$m-1,$y)*1000+$ms' "$1"; }
attempt_at() { jq "$H/batches/$1/batch.json" "(grep { \$_->{symbol} eq '$2' } @{\$d->{items}})[0]{attempt_log}[$3]{$4}"; }
# run with a bound: a hang is a failure, not a stuck suite
rt() { timeout 60 $RUNNER_CMD -C "$H" "$@" >"$T/out" 2>"$T/err"; rc=$?; }

# --- 1. a symbol circuit opens while its item still has attempts ----------
mkhome "[retry]
max_attempts = 5
delays = 0.1
retry_on = engine_error
[breaker]
threshold = 3
open_for = 1s"
job c <<JOB
[job]
agent = fake
id = circ
symbols = EXIT-70-TSLA OK-A
JOB
rt run
is "$rc" 1 "circuit during retries: the run ends (no hang), exit 1"
is "$(item circ EXIT-70-TSLA state)" failed "TSLA ends failed"
is "$(item circ EXIT-70-TSLA attempts)" 5 "  after all 5 attempts"
gap43=$(( $(ms_of "$(attempt_at circ EXIT-70-TSLA 3 started_at)") - $(ms_of "$(attempt_at circ EXIT-70-TSLA 2 completed_at)") ))
gap54=$(( $(ms_of "$(attempt_at circ EXIT-70-TSLA 4 started_at)") - $(ms_of "$(attempt_at circ EXIT-70-TSLA 3 completed_at)") ))
check "attempt 4 is the half-open trial after open_for (${gap43} ms)" test "$gap43" -ge 900 -a "$gap43" -lt 5000
check "the failed trial doubles the wait: attempt 5 after 2 x open_for (${gap54} ms)" test "$gap54" -ge 1900 -a "$gap54" -lt 8000
like "$(cat "$H/logs/circ.log")" "EXIT-70-TSLA failed .*attempt 5" "the log shows attempt 5"

# The second night: the circuit is still open from the first (defaults:
# 3 attempts, threshold 3).
mkhome "[retry]
delays = 0.1
[breaker]
open_for = 1s"
for n in 1 2; do
	job n$n <<JOB
[job]
agent = fake
id = night$n
symbols = EXIT-70-TSLA OK-B
JOB
	rt run
	is "$rc" 1 "night $n: the run ends, exit 1"
	is "$(item night$n EXIT-70-TSLA attempts)" 3 "night $n: TSLA used its 3 attempts"
done

# The same under the daemon.
mkhome "[retry]
max_attempts = 4
delays = 0.1
retry_on = engine_error
[breaker]
threshold = 2
open_for = 1s"
$RUNNER -C "$H" daemon >"$T/d.out" 2>&1 &
dpid=$!
job d <<JOB
[job]
agent = fake
id = dnight
symbols = EXIT-70-TSLA OK-C
JOB
final() { [ "$(jq "$H/batches/$1/summary.json" '$d->{status}' 2>/dev/null)" = partial ]; }
check "under the daemon the batch becomes final" wait_for final dnight
is "$(item dnight EXIT-70-TSLA attempts)" 4 "  TSLA used its 4 attempts"
kill -TERM $dpid; wait $dpid
is "$?" 0 "  the daemon stops cleanly"

# A runner killed while it holds a symbol's half-open trial: the next one
# gets the trial when its lease ends (here 1 s), not never.
mkhome "env = CAPDIR=$CAPDIR
[retry]
max_attempts = 3
delays = 0.1
retry_on = engine_error
[breaker]
threshold = 1
open_for = 1s"
echo fail >"$CAPDIR/mode.MODE-Y"
printf '[job]\nagent = fake\nid = lease1\nsymbols = MODE-Y\nmax_attempts = 1\n' >"$T/l1.job"
rt run "$T/l1.job"
is "$(item lease1 MODE-Y state)" failed "one failure opens Y's circuit (threshold 1)"
echo hang >"$CAPDIR/mode.MODE-Y"
: >"$CAPDIR/calls"
printf '[job]\nagent = fake\nid = lease2\nsymbols = MODE-Y\n' >"$T/l2.job"
RUNNER_TRIAL_LEASE_MS=1000 $RUNNER -C "$H" run "$T/l2.job" >/dev/null 2>&1 &
kp=$!
check "after open_for, Y's half-open trial starts" wait_for grep -q MODE-Y "$CAPDIR/calls"
kill -9 $kp; wait $kp 2>/dev/null
rm -f "$CAPDIR/mode.MODE-Y"
t0=$(date +%s%N)
RUNNER_TRIAL_LEASE_MS=1000 rt run
took=$(( ($(date +%s%N) - t0) / 1000000 ))
is "$rc.$(item lease2 MODE-Y state)" 0.succeeded "killed -9 holding the trial: the next run gets it and the item succeeds"
check "  once the lease is over (${took} ms)" test "$took" -lt 15000

# A due retry held back by the caps is woken by a child's end, not by the
# clock: the runner does not spin (found by the simulator: 1.9 s of CPU
# for this batch before).
mkhome "max_concurrent = 1
[retry]
delays = 0.1"
job sp <<JOB
[job]
agent = fake
id = spin
symbols = EXIT-70-A SLEEP-2-B SLEEP-2-C
JOB
cpu=$(perl -e 'open my $o, ">&", \*STDOUT; open STDOUT, ">", "/dev/null"; system @ARGV; my @t = times; printf $o "%d", ($t[2] + $t[3]) * 1000' $RUNNER_CMD -C "$H" run)
check "a due retry behind a full cap does not spin (${cpu} ms of CPU)" test "$cpu" -lt 500

# --- 2. submit of a job with an id runs ------------------------------------
mkhome
printf '[job]\nagent = fake\nid = night-7\nsymbols = OK-A OK-B\n' >"$T/n7.job"
r submit "$T/n7.job"
is "$rc.$(cat "$T/out")" "0.night-7" "submit of a job with an id prints its id"
rt run
is "$rc" 0 "the submitted job runs"
is "$(jq "$H/batches/night-7/batch.json" '$d->{status}')" completed "  as batch night-7"
ls "$H/spool/rejected" 2>/dev/null | grep -q . && fail=1 || fail=0
is "$fail" 0 "  nothing rejected as a duplicate of itself"
r submit "$T/n7.job"
is "$rc.$(cat "$T/out")" "0.duplicate of night-7" "the same job again: a duplicate"
printf '[job]\nagent = fake\nid = night-8\nsymbols = OK-C\n' >"$T/n8.job"
rt submit "$T/n8.job" --wait
is "$rc" 0 "submit --wait of a job with an id, no daemon: runs it here"
is "$(jq "$H/batches/night-8/batch.json" '$d->{status}')" completed "  completed"
$RUNNER -C "$H" daemon >"$T/d.out" 2>&1 &
dpid=$!
wait_for test -f "$H/state/daemon.pid"
printf '[job]\nagent = fake\nid = night-9\nsymbols = OK-D\n' >"$T/n9.job"
rt submit "$T/n9.job" --wait
is "$rc" 0 "submit --wait of a job with an id, through the daemon"
is "$(jq "$H/batches/night-9/batch.json" '$d->{status}')" completed "  completed"
# A job the daemon rejects when it claims it (its symbols file went away
# meanwhile): --wait says so instead of waiting for ever.
printf 'OK-F\nOK-G\n' >"$H/list.txt"
printf '[job]\nagent = fake\nid = night-10\nsymbols_file = list.txt\n' >"$T/n10.job"
kill -STOP $dpid
$RUNNER -C "$H" submit "$T/n10.job" --wait >"$T/w.out" 2>"$T/w.err" &
wp=$!
wait_for test -f "$H/spool/night-10.job"
rm -f "$H/list.txt"
kill -CONT $dpid
i=0; while kill -0 $wp 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 $wp 2>/dev/null && { kill $wp; wrc=hung; } || { wait $wp; wrc=$?; }
is "$wrc" 65 "submit --wait of a job the daemon rejects: exit 65, not a wait for ever"
like "$(cat "$T/w.err")" "night-10: rejected: " "  with the reason"
kill -TERM $dpid; wait $dpid

# --- 3. resume All: a member whose failure was final is the group's -------
rm -rf "$CAPDIR"; mkdir -p "$CAPDIR"
GROUPCONF="max_concurrent = 3
source = koyfin
env = CAPDIR=$CAPDIR
[runner]
notify = $SRC/tests/agents/hook $T/hook
[retry]
max_attempts = 3
delays = 0.1
[correlation]
window = 5m
min_group = 2
[breaker]
open_for = 1h"
mkhome "$GROUPCONF"
touch "$CAPDIR/down"
job ra <<JOB
[job]
agent = fake
id = all
symbols = $(syms VENDORNR 7)
JOB
rt run
is "$rc" 1 "non-retryable 429s: the run returns on the group, exit 1"
is "$(jq "$H/batches/all/batch.json" '$d->{paused_items}')" 7 "every member paused, those whose failure was final too"
is "$(jq "$H/batches/all/batch.json" '$d->{failed_items}')" 0 "  none left failed"
G=$(jq "$H/batches/all/batch.json" '$d->{failure_groups}[0]{group_id}')
calls=$(wc -l <"$CAPDIR/calls")
# status: a symbol is paused while an item of it is
r status --json
is "$(jq "$T/out" '(grep { $_->{symbol} eq "VENDORNR-6" } @{$d->{symbols}})[0]{state}')" paused "status: a paused member's symbol is paused"
# alerts: one item_failed per failing member, each once; group_size constant
is "$(grep '"event":"item_failed"' "$H/logs/alerts.jsonl" | grep -o '"symbol":"[^"]*"' | sort | uniq -d | wc -l)" 0 "no member has two item_failed alerts"
is "$(alerts item_failed)" "$calls" "  one per failing member ($calls)"
is "$(grep "\"group_id\":\"$G\"" "$H/logs/alerts.jsonl" | grep -o '"group_size":[0-9]*' | sort -u | wc -l)" 1 "group_size is the same in every alert of the group"
formed=$(grep '"event":"failure_group"' "$H/logs/alerts.jsonl" | grep '"status":"formed"')
like "$formed" "VENDORNR-[0-9].*koyfin API rate limit exceeded|koyfin API rate limit exceeded.*VENDORNR-[0-9]" "the group alert names symbols and the root cause"
like "$formed" "runner resume $G.*runner cancel $G" "  and the resume and cancel commands"
hooked() { [ "$(grep -c . "$T/hook" 2>/dev/null)" -ge "$((calls + 1))" ]; }
wait_for hooked
like "$(grep '^item_failed|' "$T/hook" | tail -1)" "failure group $G: koyfin API rate limit exceeded" "the hook's message carries the group and the root cause"
rm -f "$CAPDIR/down"
rt resume "$G"
is "$rc" 0 "resume GROUP reruns all 7"
is "$(jq "$H/batches/all/batch.json" '$d->{status}')" completed "  the batch completes"
r groups --json
is "$(jq "$T/out" '$d->[0]{status}')" resolved "the group is resolved"
is "$(jq "$T/out" 'join(",", @{$d->[0]}{qw(resumed succeeded failed cancelled queued)})')" "7,7,0,0,0" "  7 resumed, 7 succeeded"
r groups
like "$(cat "$T/out")" "$G +resolved +7 +7/7 resumed; 7 succeeded, 0 failed, 0 cancelled" "groups: 7/7 resumed; 7 succeeded"
is "$(grep '"event":"failure_group"' "$H/logs/alerts.jsonl" | grep -c '"status":"resolved"')" 1 "one alert says it resolved"

# --- 4. a resume while the vendor is still down ----------------------------
rm -rf "$CAPDIR"; mkdir -p "$CAPDIR"
mkhome "$(printf '%s\n' "$GROUPCONF" | sed 's/^max_attempts = 3/max_attempts = 5/')"
touch "$CAPDIR/down"
job sw <<JOB
[job]
agent = fake
id = wave
symbols = $(syms VENDOR 10)
JOB
rt run
G=$(jq "$H/batches/wave/batch.json" '$d->{failure_groups}[0]{group_id}')
before=$(alerts item_failed)
: >"$CAPDIR/calls"
rt resume "$G"
is "$rc" 1 "resume while the vendor is down: the run returns, exit 1"
calls=$(wc -l <"$CAPDIR/calls")
check "the second wave costs the cap, not members x attempts ($calls calls)" test "$calls" -le 4
is "$(jq "$H/batches/wave/batch.json" '$d->{paused_items}')" 10 "every member paused again"
r groups --json
is "$(jq "$T/out" '$d->[0]{status}')" open "the group is open again"
is "$(grep '"event":"failure_group"' "$H/logs/alerts.jsonl" | grep -c '"status":"reopened"')" 1 "one alert says it is still failing"
is "$(alerts item_failed)" "$before" "  no second item_failed for members already told of"
is "$(grep '"event":"item_failed"' "$H/logs/alerts.jsonl" | grep -c '"group_id":null')" 0 "  none without the group"
max=$(jq "$H/batches/wave/batch.json" 'my $m = 0; $_->{attempts} > $m and $m = $_->{attempts} for @{$d->{items}}; $m')
check "no member spent its attempts (at most $max of 5)" test "$max" -le 2
like "$(cat "$H/logs/wave.log")" "taken up by runner pid [0-9]+ \(it waited on paused items\)" "resuming a paused batch is a hand-over, not an adoption"
grep -q "adopted by runner" "$H/logs/wave.log" && adopted=1 || adopted=0
is "$adopted" 0 "  no \"previous runner is gone\""
rm -f "$CAPDIR/down"
rt resume "$G"
is "$rc.$(jq "$H/batches/wave/batch.json" '$d->{status}')" 0.completed "resumed once the vendor is back: completed"

# --- 5, 6. counts after cancel; cancel GROUP across batches ----------------
rm -rf "$CAPDIR"; mkdir -p "$CAPDIR"
mkhome "$GROUPCONF"
touch "$CAPDIR/down"
job g1 <<JOB
[job]
agent = fake
id = east
symbols = $(syms VENDOR 4)
JOB
job g2 <<JOB
[job]
agent = fake
id = west
priority = -1
symbols = VENDOR-W1 VENDOR-W2 VENDOR-W3
JOB
rt run
G=$(jq "$H/batches/east/batch.json" '$d->{failure_groups}[0]{group_id}')
is "$(jq "$H/batches/west/batch.json" '$d->{paused_items}')" 3 "the group pauses the other batch too"
rt cancel "$G"
is "$rc" 0 "cancel GROUP"
like "$(cat "$T/out")" "group $G: 7 items cancelled in 2 batches" "  cancels every open member in both batches"
is "$(jq "$H/batches/east/batch.json" '$d->{cancelled_items}').$(jq "$H/batches/west/batch.json" '$d->{cancelled_items}')" 4.3 "  east 4, west 3 cancelled"
is "$(jq "$H/batches/west/batch.json" '$d->{status}')" cancelled "a batch whose every item was cancelled is cancelled, not failed"
r groups --json
is "$(jq "$T/out" '$d->[0]{status}')" resolved "a group whose members are all final is resolved"
is "$(jq "$T/out" 'join(",", @{$d->[0]}{qw(resumed succeeded failed cancelled)})')" "0,0,0,7" "  0 resumed (none was), 7 cancelled"
is "$(jq "$T/out" 'join(",", sort { $a cmp $b } map { $_->{state} } @{$d->[0]{members}})')" "cancelled,cancelled,cancelled,cancelled,cancelled,cancelled,cancelled" "  each member shows its real state"
r cancel grp-20000101-000000-1
is "$rc" 66 "cancel of an unknown group: 66"
# A runner killed between a member's end and its note in state/events
# (made here by taking the X and Z lines out): the group would say
# "resuming" for ever; the next runner settles it from the batches.
grep -v "^[XZ]	" "$H/state/events" >"$T/ev" && cat "$T/ev" >"$H/state/events"
r groups --json
is "$(jq "$T/out" '$d->[0]{status}')" open "members' ends lost: the group looks open"
rt run
r groups --json
is "$(jq "$T/out" '$d->[0]{status}').$(jq "$T/out" '$d->[0]{cancelled}')" resolved.7 "the next run settles it from the batches: resolved, 7 cancelled"

# --- 12. status: a symbol whose item failed is failed, not paused ----------
mkhome "[breaker]
threshold = 1
open_for = 1h"
job s <<JOB
[job]
agent = fake
id = st
symbols = EXIT-70-TSLA OK-A
max_attempts = 1
JOB
rt run
r status --json
is "$(jq "$T/out" '(grep { $_->{symbol} eq "EXIT-70-TSLA" } @{$d->{symbols}})[0]{state}')" failed "status: TSLA failed (its circuit is open, no item of it paused)"
is "$(jq "$T/out" '(grep { $_->{symbol} eq "EXIT-70-TSLA" } @{$d->{symbols}})[0]{circuit_state}')" open "  circuit open"
is "$(jq "$T/out" '$d->{paused_symbols}')" 0 "  no paused symbol"

# --- 15. pause naming a final symbol says so -------------------------------
mkhome
job p <<JOB
[job]
agent = fake
id = named
concurrency = 1
symbols = OK-Z GATE-A OK-B OK-C
JOB
$RUNNER -C "$H" run >"$T/run.out" 2>&1 &
rp=$!
wait_for test -f "$H/gates/started.GATE-A"
r pause named --symbol OK-Z --symbol OK-B --symbol OK-C --symbol NOPE
like "$(cat "$T/out")" "batch named: 2 items paused" "pause of four names: two paused"
like "$(cat "$T/out")" "OK-Z not paused: succeeded" "  says the third is final"
like "$(cat "$T/out")" "NOPE not paused: not in the batch" "  and the fourth unknown"
touch "$H/gates/open.GATE-A"
wait $rp
rt resume named
is "$rc" 0 "resumed: completes"

done_testing
