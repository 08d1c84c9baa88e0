#!/bin/sh
# The daemon applies [retention] by itself: at start (and then hourly), in
# a child process, logging what it did in logs/runner.log.
. "${RUNNER_SRC:-.}/tests/lib.sh"


mkhome "[retention]
archive_after = 1s
delete_archives_after = 0
compression = gzip"
job old <<JOB
[job]
agent = fake
id = batch-old
symbols = OK-A EXIT-65-B
max_attempts = 1
JOB
r run
is "$rc" 1 "a final batch"
sleep 1.2
job new <<JOB
[job]
agent = fake
id = batch-new
symbols = SLEEP-3-A
JOB
$RUNNER_CMD -C "$H" daemon >"$T/daemon.out" 2>&1 &
dpid=$!
check "the daemon archives the old batch at start" wait_for test -f "$H/batches/archive/batch-old.tar.gz"
gone() { ! test -e "$H/batches/batch-old"; }
check "and removes the original once verified" wait_for gone
# (the log is removed just after the batch directory: wait for it too)
logless() { test ! -e "$H/logs/batch-old.log"; }
check "its log goes into the archive" wait_for logless
logged() { grep -q "retention: archived batch-old" "$H/logs/runner.log"; }
check "runner.log says so" wait_for logged
check "the batch it runs is left alone" test -d "$H/batches/batch-new"
r list --archived --json
is "$(jq "$T/out" '$d->[0]{batch_id}')" batch-old "list --archived shows it"
r show batch-old
is "$rc" 0 "show reads the archived batch"
like "$(cat "$T/out")" "archived +.* batches/archive/batch-old.tar.gz" "and says where it is"
r show batch-old --json
is "$(jq "$T/out" '$d->{failed_items}')" 1 "show --json of an archived batch"
# The retention child holds none of the daemon's locks: a daemon killed
# now is replaced at once.
kill -9 $dpid
wait $dpid 2>/dev/null
$RUNNER_CMD -C "$H" daemon --once >"$T/daemon2.out" 2>&1
is "$?" 0 "a new daemon starts after kill -9 and finishes the work"
check "batch-new completed" grep -q '"status":"completed"' "$H/batches/batch-new/summary.json"
# An archived id is taken: a job reusing it is a duplicate.
job again <<JOB
[job]
agent = fake
id = batch-old
symbols = OK-A
JOB
r run
like "$(cat "$H"/spool/rejected/again.job.reason 2>/dev/null)" "duplicate of batch-old" "a job with an archived batch's id is a duplicate"
check "and no new batch-old appears" test ! -e "$H/batches/batch-old"
r submit "$H/spool/rejected/again.job"
like "$(cat "$T/out")" "duplicate of batch-old" "submit says so too"
r restore batch-old
is "$rc" 0 "restore"
check "the batch is back" test -f "$H/batches/batch-old/batch.json"
check "its log too" test -f "$H/logs/batch-old.log"
r show batch-old --json
is "$(jq "$T/out" '$d->{failed_items}')" 1 "show reads it from batches/ again"
done_testing
