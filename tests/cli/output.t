#!/bin/sh
# Output lanes: no file per item; `runner output` gives every attempt's
# bytes back; max_output; a grandchild that outlives its item writes into
# no other item's output; --follow; --failed; a batch written before lanes
# stays readable by show, output, report, archive and restore.
. "${RUNNER_SRC:-.}/tests/lib.sh"

out() { "$RUNNER" -C "$H" output "$@"; }

# ---- many items: a few files, every byte back ----
mkhome "max_concurrent = 2"
syms=""
for k in $(seq 1 150); do syms="$syms OK-$k"; done
job many <<JOB
[job]
agent = fake
id = many
symbols = $syms PRINT-64-A EXIT-3-A FLAKY-2-A WIDE-A
max_attempts = 2
JOB
r run
is "$rc" 1 "a batch of 154 items runs (one fails)"
n=$(find "$H/batches/many" | wc -l)
check "a few files and directories in the batch, not one per item ($n)" test "$n" -lt 25
check "no items/ directory" test ! -e "$H/batches/many/items"
bad=0
for k in $(seq 1 150); do
	[ "$(out many OK-$k)" = "ok OK-$k" ] || bad=$((bad + 1))
done
is "$bad" 0 "runner output gives each item's stdout back (150 items)"
is "$(out many PRINT-64-A | wc -c)" 65536 "64 KiB of stdout, byte for byte"
is "$(out many PRINT-64-A | tr -d o | wc -c)" 0 "nothing else in it"
is "$(out many PRINT-64-A --stderr | wc -c)" 6553 "its stderr apart"
is "$(out many EXIT-3-A --stderr)" "failing with 3" "stderr of the last attempt"
is "$(out many EXIT-3-A --stderr --attempt 1)" "failing with 3" "--attempt 1"
is "$(out many FLAKY-2-A --stderr --attempt 1)" "flaky attempt 1" "a retried item: its first attempt's stderr"
is "$(out many FLAKY-2-A --stderr)" "" "and its second attempt printed nothing"
out many FLAKY-2-A --attempt 3 >/dev/null 2>"$T/err3"
is "$?" 66 "an attempt that never was: exit 66"
like "$(cat "$T/err3")" "has had 2 attempts" "and says how many there were"
out many NOPE >/dev/null 2>&1
is "$?" 66 "a symbol the batch does not hold: exit 66"
out nosuch OK-1 >/dev/null 2>&1
is "$?" 66 "a batch that does not exist: exit 66"
is "$(out many --failed)" "EXIT-3-A attempt 2: failing with 3" "--failed: the failed items' last stderr lines, tagged"
is "$(jq "$H/batches/many/batch.json" '$d->{items}[150]{attempt_log}[0]{stdout_bytes}')" 65536 "batch.json: stdout_bytes"
is "$(jq "$H/batches/many/batch.json" '$d->{items}[150]{attempt_log}[0]{stderr_bytes}')" 6553 "batch.json: stderr_bytes"
is "$(jq "$H/batches/many/batch.json" '$d->{items}[0]{attempt_log}[0]{result}{metrics}{sharpe}')" 1.5 "batch.json: the result JSON kept"
is "$(ls "$H/batches/many/tmp" | wc -l)" 0 "no result file left behind"
w=$(jq "$H/batches/many/batch.json" '(grep { $_->{symbol} eq "WIDE-A" } @{$d->{items}})[0]')
like "$w" '"warning":"result JSON of 102[0-9]+ bytes not kept \(over 65536\)"' "a result JSON over 64 KiB: not kept, and the attempt says so"
like "$w" '"result":null' "its result is null"
like "$w" '"matches":2' "what classification reads of it still counts"
like "$("$RUNNER" -C "$H" show many --items)" "output +runner output many SYMBOL" "show --items points to runner output"
"$RUNNER" -C "$H" report many -o "$T/r.html"
check "the report points to runner output" grep -q "runner output many" "$T/r.html"

# A lane file cut short (a damaged disk, a careless hand): said, not hidden.
cp "$H/batches/many/output/1-0.out" "$T/lane.bak"
: >"$H/batches/many/output/1-0.out"
bad=0
for k in $(seq 1 150); do
	out many OK-$k >/dev/null 2>"$T/short"
	[ $? = 74 ] && bad=$((bad + 1))
done
check "an attempt whose lane file is shorter than its range: exit 74" test "$bad" -gt 0
like "$(cat "$T/short" | head -1)$(for k in $(seq 1 150); do out many OK-$k 2>&1 >/dev/null; done | head -1)" "ends before the range the journal records" "and says so"
cp "$T/lane.bak" "$H/batches/many/output/1-0.out"

# ---- max_output: a bounded attempt, and a note ----
mkhome "max_output = 8192"
job big <<JOB
[job]
agent = fake
id = big
symbols = BIG-2-A OK-B
JOB
r run
is "$rc" 0 "an agent printing past max_output still succeeds"
is "$(out big BIG-2-A | head -c 8192 | tr -d x | wc -c)" 0 "the first max_output bytes kept"
like "$(out big BIG-2-A | tail -c 200)" "runner: output past max_output \(8192 bytes" "then the runner's note"
check "and no more (of 2 MiB)" test "$(out big BIG-2-A | wc -c)" -lt 8500
like "$(jq "$H/batches/big/batch.json" '$d->{items}[0]{attempt_log}[0]{warning}')" "output past max_output \(8192 bytes\): 2088960 bytes dropped" "the attempt's warning says how much was dropped"
is "$(out big OK-B)" "ok OK-B" "the next item is whole"
check "the batch holds about max_output, not 2 MiB" test "$(du -sk "$H/batches/big" | cut -f1)" -lt 200

# ---- a grandchild that outlives its item ----
mkhome "max_concurrent = 1"
job esc <<JOB
[job]
agent = fake
id = esc
symbols = ESCAPE-A GATE-B OK-C
JOB
mkdir -p "$H/gates"
$RUNNER -C "$H" run >"$T/esc.out" 2>&1 &
rpid=$!
wait_for test -e "$H/gates/started.GATE-B"
# The escaped grandchild has had time to write (it starts after 0.2 s);
# its writes must fail, not reach GATE-B's output.
sleep 0.5
: >"$H/gates/open.GATE-B"
wait $rpid
is "$?" 0 "the batch completes"
is "$(out esc ESCAPE-A)" "left ESCAPE-A" "the item's own output"
is "$(out esc GATE-B)" "$(printf 'before GATE-B\nafter GATE-B')" "the next item's stdout holds nothing of the grandchild"
is "$(out esc GATE-B --stderr)" "" "nor its stderr"
is "$(out esc OK-C)" "ok OK-C" "nor the one after"
check "no lane holds the grandchild's words" sh -c "! grep -rq escaped '$H/batches/esc/output'"
gone() { ! grep -lq "RUNNER_SYMBOL=ESCAPE-A" /proc/[0-9]*/environ 2>/dev/null; }
check "the grandchild died of its closed pipe" wait_for gone

# ---- --follow on a running item ----
mkhome
job fol <<JOB
[job]
agent = fake
id = fol
symbols = GATE-F
JOB
mkdir -p "$H/gates"
$RUNNER -C "$H" run >"$T/fol.out" 2>&1 &
rpid=$!
wait_for test -e "$H/gates/started.GATE-F"
# The runner copies what a child prints as it comes, an instant after the
# child wrote it: wait for the copy, never race it.
fol_before() { [ "$(out fol GATE-F)" = "before GATE-F" ]; }
check "a running attempt: its output so far" wait_for fol_before
out fol GATE-F --follow >"$T/follow" 2>&1 &
fpid=$!
has_before() { grep -qs before "$T/follow"; }
check "--follow prints what was printed" wait_for has_before
check "and waits while the item runs" kill -0 $fpid
: >"$H/gates/open.GATE-F"
wait $fpid
is "$?" 0 "--follow ends with the attempt"
is "$(cat "$T/follow")" "$(printf 'before GATE-F\nafter GATE-F')" "with every byte, once"
wait $rpid

# ---- kill -9: an interrupted attempt's output stays readable ----
mkhome
job kil <<JOB
[job]
agent = fake
id = kil
symbols = GATE-K
JOB
mkdir -p "$H/gates"
$RUNNER -C "$H" run >"$T/kil.out" 2>&1 &
rpid=$!
wait_for test -e "$H/gates/started.GATE-K"
wait_for started kil GATE-K
# What it printed is in its lane before the kill (copied an instant after
# it was written): the test is of what stays, not of that instant.
kil_before() { [ "$(out kil GATE-K)" = "before GATE-K" ]; }
wait_for kil_before
kill -9 $rpid
wait $rpid 2>/dev/null
: >"$H/gates/open.GATE-K"
r run
is "$rc" 0 "after kill -9 the batch is adopted and completes"
is "$(jq "$H/batches/kil/batch.json" '$d->{items}[0]{attempt_log}[0]{outcome}')" interrupted "the first attempt was interrupted"
is "$(out kil GATE-K --attempt 1)" "before GATE-K" "its output is still there"
is "$(out kil GATE-K)" "$(printf 'before GATE-K\nafter GATE-K')" "the second attempt's, in the adopter's lane"
check "the adopter wrote a session of its own" test -e "$H/batches/kil/output/2.spawned"

# ---- a batch written before output lanes ----
mkhome "[retry]
delays = 0.1"
mkdir -p "$H/batches" "$H/logs"
tar xzf "$SRC/tests/corpus/legacy-batch.tar.gz" -C "$H"
r show legacy-1
is "$rc" 0 "show of a legacy batch"
like "$(cat "$T/out")" "status +partial" "its status"
is "$(out legacy-1 OK-A)" "ok OK-A" "output of a legacy attempt (items/)"
is "$(out legacy-1 EXIT-3-A --stderr --attempt 1)" "failing with 3" "--stderr --attempt of a legacy attempt"
is "$(out legacy-1 --failed)" "EXIT-3-A attempt 2: failing with 3" "--failed of a legacy batch"
r report legacy-1 -o "$T/legacy.html"
is "$rc" 0 "report of a legacy batch"
r retry-failed legacy-1
is "$(out legacy-1 EXIT-3-A --stderr --attempt 3)" "failing with 3" "retried: the new attempt is in output/"
is "$(out legacy-1 EXIT-3-A --stderr --attempt 1)" "failing with 3" "the old ones still in items/"
check "its lanes beside items/" test -d "$H/batches/legacy-1/output" -a -d "$H/batches/legacy-1/items"
r archive --older-than 0s
is "$rc" 0 "archive of a batch with both layouts"
check "archived" test ! -e "$H/batches/legacy-1"
is "$(out legacy-1 EXIT-3-A --stderr --attempt 1)" "failing with 3" "output of an archived legacy attempt"
is "$(out legacy-1 EXIT-3-A --stderr --attempt 3)" "failing with 3" "output of an archived lane attempt"
r restore legacy-1
is "$rc" 0 "restore"
is "$(out legacy-1 OK-A)" "ok OK-A" "output after restore"
is "$(out legacy-1 EXIT-3-A --stderr --attempt 4)" "failing with 3" "every attempt after restore"

# ---- with the other mechanisms: timeout, cancel, a daemon's batch ----
mkhome "max_concurrent = 2"
job tc <<JOB
[job]
agent = fake
id = tc
symbols = GATE-T HANG-U
timeout = 2s
max_attempts = 1
JOB
mkdir -p "$H/gates"
$RUNNER -C "$H" run >"$T/tc.out" 2>&1 &
rpid=$!
wait_for started tc HANG-U
wait_for test -e "$H/gates/started.GATE-T"
out tc GATE-T --follow >"$T/tc.follow" 2>&1 &
fpid=$!
r cancel tc --symbol GATE-T
is "$rc" 0 "cancel of a running item followed by output --follow"
wait $fpid
is "$?" 0 "--follow ends when the attempt is cancelled"
is "$(cat "$T/tc.follow")" "before GATE-T" "with what it printed"
wait $rpid
is "$(jq "$H/batches/tc/batch.json" '$d->{items}[1]{error_category}')" timeout "HANG-U timed out"
is "$(jq "$H/batches/tc/batch.json" '$d->{items}[1]{attempt_log}[0]{stdout_bytes}')" 0 "a timed-out attempt's output has an end (0 bytes)"
is "$(out tc HANG-U --follow; echo "rc=$?")" "rc=0" "--follow of an attempt that timed out returns at once"

mkhome
"$RUNNER" -C "$H" daemon >"$T/daemon.out" 2>&1 &
dpid=$!
job dm <<JOB
[job]
agent = fake
id = dm
symbols = GATE-D
JOB
mkdir -p "$H/gates"
wait_for test -e "$H/gates/started.GATE-D"
out dm GATE-D --follow >"$T/dm.follow" 2>&1 &
fpid=$!
has_d() { grep -qs before "$T/dm.follow"; }
check "--follow of a batch the daemon runs" wait_for has_d
: >"$H/gates/open.GATE-D"
wait $fpid
is "$(cat "$T/dm.follow")" "$(printf 'before GATE-D\nafter GATE-D')" "all of it, once"
kill -TERM $dpid
wait $dpid

# ---- usage ----
out many >/dev/null 2>&1
is "$?" 64 "output without a symbol: usage error"
out many OK-1 --failed >/dev/null 2>&1
is "$?" 64 "--failed with a symbol: usage error"
out many OK-1 --attempt x >/dev/null 2>&1
is "$?" 64 "--attempt x: usage error"

done_testing
