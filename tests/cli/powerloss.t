#!/bin/sh
# Power loss: a fixed sample of the sweep `make powerloss` runs in full.
# The workload (tests/powerloss/workload: claims, retries, a failure group
# and its resume, pause and resume, retry-failed, archive and restore, the
# daemon) runs under a recorder of every file-system mutation the runner
# makes (tests/powerloss/record.c); tests/powerloss/crashstates builds the
# states a power cut may leave (what was fsynced, plus any prefix of what
# was not) and checks recovery on each (tests/powerloss/check: run
# succeeds, every item ends exactly once, no submitted job is lost, the
# views parse and agree).  Then I/O errors (EIO, ENOSPC) at a sample of
# the workload's operations (tests/powerloss/iosweep).  Also the defects
# the sweep found, each as a plain test.
. "${RUNNER_SRC:-.}/tests/lib.sh"

PL=$SRC/tests/powerloss
REC=$BUILD/powerloss/record.so
SHIM=$BUILD/faults/shim.so
if [ ! -f "$REC" ] || [ ! -f "$SHIM" ]; then
	echo "1..0 # SKIP $REC or $SHIM is not built"
	exit 0
fi
# An ASan runner wants its runtime first in the list, and is slower.
asan=$(ldd "$RUNNER" 2>/dev/null | awk '/libasan/ { print $3; exit }')
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
export ASAN_OPTIONS RUNNER
POINTS=12 IOS=6
[ -n "$asan" ] && POINTS=4 IOS=3

# ---- the recorder and the workload ----------------------------------------
W=$T/pl
mkdir -p "$W"
RECORDER="${asan:+$asan }$REC" RUNNER_SRC=$SRC "$PL/workload" "$W/h" "$W/log"
like "$(grep -a '^K step' "$W/log" | tr '\n' ' ')" \
	'step submit-run.*step outage.*step pause-resume.*step retry-failed.*step archive.*step daemon.*step end' \
	"the workload ran every step"
HR=$(cd "$W/h" && pwd -P)
"$PL/crashstates" --log "$W/log" --init "$W/h.init" --root "$HR" --dump >"$W/ops"
n=$(grep -c '^[0-9]' "$W/ops")
check "the recorder saw the workload's mutations ($n)" test "$n" -gt 300
like "$(grep -c ' sync ' "$W/ops")" '^[1-9][0-9]+$' "and its fsyncs"
like "$(grep -a '^R .*/spool/nightly-a.job .*/job.ini$' "$W/log")" . \
	"a claim's rename, with both paths"

# ---- crash states -----------------------------------------------------------
# A sample of points (the first and the last among them), and every point
# around the two places the sweep found losses: the first claim, and the
# restore.
claim=$(awk '/mv job.ini/ { print $1; exit }' "$W/ops")
restore=$(awk '/mv .restoring-/ { print $1; exit }' "$W/ops")
"$PL/crashstates" --log "$W/log" --init "$W/h.init" --root "$HR" \
	--work "$W/states" --check "$PL/check" --points "$POINTS" --seed 11 \
	>"$W/sample" 2>&1
ok $? "$(tail -1 "$W/sample")" || sed 's/^/# /' "$W/sample" | tail -30
"$PL/crashstates" --log "$W/log" --init "$W/h.init" --root "$HR" \
	--work "$W/states" --check "$PL/check" --variants synced \
	--points "@$((claim - 2))-$((claim + 4)),$((restore - 1))-$((restore + 3))" \
	>"$W/focus" 2>&1
ok $? "around the claim and the restore: $(tail -1 "$W/focus")" ||
	sed 's/^/# /' "$W/focus" | tail -30

# ---- I/O errors -------------------------------------------------------------
SHIM="${asan:+$asan }$SHIM" RUNNER_SRC=$SRC "$PL/iosweep" "$W/io" "$IOS" 5 \
	>"$W/iosweep" 2>&1
ok $? "EIO and ENOSPC: $(tail -1 "$W/iosweep")" ||
	sed 's/^/# /' "$W/iosweep" | tail -30
left() { ! pgrep -f -- "-C $W/" >/dev/null 2>&1 && ! pgrep -f -- "-C $HR " >/dev/null 2>&1; }
check "no runner left behind by the sweeps (a daemon of a workload cut short)" wait_for left

# ---- what the sweep found, as plain tests ----------------------------------
# retry-failed reopens a final batch: its summary.json goes first, or a run
# after a crash during the retried attempts takes the batch for final and
# leaves them running for ever.
CAPDIR=$T/cap
mkdir -p "$CAPDIR"
mkhome "env = CAPDIR=$CAPDIR"
echo fail >"$CAPDIR/mode.MODE-1"
job rf <<JOB
[job]
agent = fake
id = rf
symbols = OK-1 MODE-1
JOB
r run
is "$(jq "$H/batches/rf/summary.json" '$d->{status}')" partial "retry: first a partial batch"
n=$(item_in rf MODE-1 attempts)
echo hang >"$CAPDIR/mode.MODE-1"
$RUNNER -C "$H" retry-failed rf >/dev/null 2>&1 &
pid=$!
again() { "$RUNNER" -C "$H" output rf MODE-1 --attempt $((n + 1)) >/dev/null 2>&1; }
wait_for again
kill -9 $pid
wait $pid 2>/dev/null
like "$(cat "$H/batches/rf/summary.json" 2>/dev/null)" '^$|"status":"running"' \
	"summary.json no longer says the batch is final"
rm -f "$CAPDIR/mode.MODE-1"
r run
is "$rc" 0 "run after the crash exits 0"
is "$(jq "$H/batches/rf/batch.json" '$d->{status}')" completed "it took the batch and finished the retry"
is "$(item_in rf MODE-1 state)" succeeded "MODE-1 succeeded"

# A restore cut after the archive was renamed aside: run finishes or undoes
# it, so that the batch is archived or back, never neither.
r archive --older-than 0s
check "archived" test -f "$H/batches/archive/rf.tar.gz"
mv "$H/batches/archive/rf.tar.gz" "$H/batches/archive/.restoring-rf.tar.gz"
r run
r show rf
is "$rc" 0 "after run, show finds the batch (the restore undone)"
check "its archive has its name again" test -f "$H/batches/archive/rf.tar.gz"

# The history index after a torn append: the next batch's lines start on
# a line of their own, and the torn one is not a run.
for f in "$H"/state/history/[0-9a-f][0-9a-f]; do printf 'OK-1\tphantom' >>"$f"; done
job rf2 <<JOB
[job]
agent = fake
id = rf2
symbols = OK-1
JOB
r run
r history OK-1
like "$(cat "$T/out")" 'rf2' "history lists the new batch after a torn line"
check "and no phantom run" sh -c "! grep -q phantom '$T/out'"

# A batch has a view from the instant it appears: the claim writes its
# summary.json before the rename that makes it batches/ID, so a runner
# that dies before its first batch.json leaves nothing `list` (which reads
# views only) would call damaged.
mkhome
job cv <<JOB
[job]
agent = fake
id = cv
symbols = OK-1
JOB
cp "$H/spool/cv.job" "$T/cv.job"
PRE="${asan:+$asan }$SHIM"
FAULT_TRACE=$T/cv.trace env LD_PRELOAD="$PRE" "$RUNNER" -C "$H" run >/dev/null 2>&1
n=$(awk '$1 == "rename" { if (seen) { print $2; exit } if ($4 == "cv") seen = 1 }' "$T/cv.trace")
mkhome
cp "$T/cv.job" "$H/spool/cv.job"
FAULT_OP=rename FAULT_N=$n FAULT_MODE=crash env LD_PRELOAD="$PRE" \
	"$RUNNER" -C "$H" run >/dev/null 2>&1
check "killed just after the batch appeared" test -d "$H/batches/cv" -a ! -e "$H/batches/cv/batch.json"
r list
is "$rc" 0 "list of it exits 0"
like "$(cat "$T/out")" '^cv +pending ' "and shows it pending, not damaged"

done_testing
