#!/bin/sh
# Claiming (SPEC 4, DURABILITY "Claiming a job file"): dedup by id and by
# bytes, racing runners, half-done claims, list over thousands of batches,
# the progress line on a terminal.
. "${RUNNER_SRC:-.}/tests/lib.sh"

mkhome
job a <<JOB
[job]
agent = fake
id = same-id
symbols = OK-A
JOB
r run
is "$rc" 0 "first job with id same-id"
job b <<JOB
[job]
agent = fake
id = same-id
symbols = OK-B
JOB
r run
is "$(cat "$H/spool/rejected/b.job.reason")" "duplicate of same-id" "an existing id: rejected as a duplicate"
is "$(ls "$H/batches" | grep -c same-id)" 1 "no second batch"

printf '[job]\nagent = fake\nsymbols = OK-C\n' >"$T/c.job"
cp "$T/c.job" "$H/spool/c1.job"
r run
first=$(ls -t "$H/batches" | grep '^batch-' | head -1)
cp "$T/c.job" "$H/spool/c2.job"
r run
is "$(cat "$H/spool/rejected/c2.job.reason")" "duplicate of $first" "identical bytes within dedup_window: duplicate"
like "$(cat "$T/err")" "^runner: warning: spool/c2.job: duplicate of $first; not run\$" \
	"  the warning names the file as spool/c2.job"
printf '[job]\nagent = nosuch\nsymbols = OK-1\n' >"$H/spool/bad.job"
r daemon --once
like "$(cat "$H/logs/runner.log")" "rejected: spool/bad.job:2: agent 'nosuch'" \
	"runner.log: a rejection names the file once, as spool/NAME"
check "  not twice" sh -c "! grep -q 'bad.job: rejected' '$H/logs/runner.log'"
printf '[job]\nagent = fake\nid = good\nsymbols = OK-1\n' >"$H/spool/good.job"
r daemon --once
like "$(cat "$H/logs/runner.log")" "claimed spool/good.job as batch good" \
	"runner.log: a claim names the file as spool/NAME"
mkhome "[runner]
dedup_window = 0"
cp "$T/c.job" "$H/spool/d1.job"
r run
cp "$T/c.job" "$H/spool/d2.job"
r run
is "$(ls "$H/batches" | grep -c '^batch-')" 2 "dedup_window = 0: identical jobs both run"

# Two runners on one spool of 100 jobs: each job is claimed exactly once.
mkhome "max_concurrent = 8"
i=1
while [ $i -le 100 ]; do
	printf '[job]\nagent = fake\nid = race-%d\nsymbols = OK-%d\n' $i $i >"$H/spool/.r$i.tmp"
	mv "$H/spool/.r$i.tmp" "$H/spool/r$i.job"
	i=$((i + 1))
done
$RUNNER -C "$H" -q run >"$T/o1" 2>&1 &
p1=$!
$RUNNER -C "$H" -q run >"$T/o2" 2>&1 &
p2=$!
wait $p1; wait $p2
is "$(ls "$H/batches" | grep -c '^race-')" 100 "100 batches"
is "$(ls "$H/spool" | grep -c '\.job$')" 0 "spool empty"
is "$(ls "$H/spool/rejected" | wc -l)" 0 "nothing rejected (no job claimed twice)"
is "$(cat "$H"/batches/race-*/summary.json | grep -c '"status":"completed"')" 100 "every batch completed once"

# A claim its runner left half done goes back to spool/ and is claimed.
mkhome
mkdir -p "$H/batches/.claim-0123456789abcdef"
printf '[job]\nagent = fake\nid = swept\nsymbols = OK-S\n' >"$H/batches/.claim-0123456789abcdef/job.ini"
printf 'swept.job' >"$H/batches/.claim-0123456789abcdef/spool_name"
r run
is "$(jq "$H/batches/swept/batch.json" '$d->{status}')" completed "an interrupted claim is claimed again"
is "$(jq "$H/batches/swept/batch.json" '$d->{job_file}')" swept.job "under its original name"
check "no claim directory left" sh -c "! ls -a '$H/batches' | grep -q '^\.claim-'"

# list reads summary.json, not every batch.json: thousands of batches.
mkhome
mkdir -p "$H/batches"
i=1
while [ $i -le 3000 ]; do
	mkdir "$H/batches/b$i"
	printf '{"batch_id":"b%d","name":null,"origin":null,"agent":"fake","status":"completed","created_at":"2026-01-01T00:00:%02d.000Z","started_at":null,"completed_at":null,"total_items":1,"succeeded_items":1,"failed_items":0,"cancelled_items":0,"pending_items":0,"running_items":0,"paused_items":0}\n' $i $((i % 60)) >"$H/batches/b$i/summary.json"
	i=$((i + 1))
done
t0=$(date +%s%N)
r list --json
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
is "$(jq "$T/out" 'scalar @$d')" 3000 "list over 3000 batches"
check "in under a second (${ms} ms)" test "$ms" -lt 1000

# The progress line, on a terminal only.
if command -v script >/dev/null 2>&1; then
	mkhome
	job p <<JOB
[job]
agent = fake
symbols = SLEEP-0.3-A SLEEP-0.3-B OK-C
JOB
	script -qec "$RUNNER -C '$H' run" /dev/null >"$T/tty" 2>&1
	like "$(tr '\r' '\n' <"$T/tty" | grep -a 'ETA' | tail -1)" '^(\[[# ]+\] )?[0-9]+% [0-9]/3 ok [0-9] failed 0 running [0-9]( paused [0-9]+)? ETA' "progress line drawn on a terminal"
	mkhome
	job p <<JOB
[job]
agent = fake
symbols = OK-A
JOB
	r run
	check "no progress line when stderr is not a terminal" sh -c "! grep -q 'ETA' '$T/out' '$T/err'"
else
	ok 0 "# SKIP script(1) not installed"
	ok 0 "# SKIP script(1) not installed"
fi
# A drop directory others can write: submit's temporary file is a new one
# under a name nobody can predict, never one planted in spool/.
mkhome
chmod 1777 "$H/spool"
mkfifo "$H/spool/.sq1.tmp" "$H/spool/.sq1.job.tmp"
: >"$H/spool/.sq2.tmp"
chmod 666 "$H/spool/.sq2.tmp"
printf '[job]\nagent = fake\nid = sq1\nsymbols = OK-A\n' >"$T/sq1.job"
printf '[job]\nagent = fake\nid = sq2\nsymbols = OK-A\nparams_key = 1\n' >"$T/sq2.job"
printf '[job]\nagent = fake\nid = sq2\nsymbols = OK-A\n' >"$T/sq2.job"
timeout 20 "$RUNNER" -C "$H" submit "$T/sq1.job" >"$T/out" 2>"$T/err"
is "$?" 0 "submit beside a FIFO planted at the old temporary names: no hang"
check "the job is placed" test -f "$H/spool/sq1.job"
"$RUNNER" -C "$H" submit "$T/sq2.job" >/dev/null 2>&1
is "$(wc -c <"$H/spool/.sq2.tmp")" 0 "a planted world-writable file receives nothing"
check "no temporary of ours is left" sh -c "! ls -A '$H/spool' | grep -q '\.job\..*\.tmp\$'"
if [ "$(id -u)" = 0 ]; then
	# Another user squats the name the job would take.
	printf 'not a job\n' >"$H/spool/sq3.job"
	chown 65534 "$H/spool/sq3.job"
	printf '[job]\nagent = fake\nid = sq3\nsymbols = OK-A\n' >"$T/sq3.job"
	r submit "$T/sq3.job"
	is "$rc" 0 "submit of a job whose name another user squats: placed anyway"
	like "$(cat "$T/err")" "spool/sq3.job: a file of another user \(uid 65534\) holds the name; this job goes in as spool/sq3\.[0-9a-f]{8}\.job" \
		"and says what happened (not \"duplicate\")"
	is "$(cat "$T/out")" sq3 "it prints the batch id"
	rm -f "$H/spool/.sq1.tmp" "$H/spool/.sq1.job.tmp"
	r run
	is "$(jq "$H/batches/sq3/batch.json" '$d->{status}')" completed "the job runs as batch sq3"
	check "the squatter's file is rejected, not run" test -f "$H/spool/rejected/sq3.job"
else
	for k in 1 2 3 4 5; do ok 0 "# SKIP squatting needs root (chown)"; done
fi
# A reason names its entry, as every reason does, and says what it is.
mkhome
perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $ARGV[0], Listen => 1) or die "$!"' "$H/spool/sock.job"
r run
is "$(cat "$H/spool/rejected/sock.job.reason" 2>/dev/null)" \
	"spool/sock.job: not a regular file (a socket); not opened" \
	"a socket in spool/: the reason names it and says a socket"
like "$(cat "$T/err")" "^runner: warning: spool/sock.job: not a regular file \(a socket\); not opened; moved to spool/rejected/\$" \
	"  and the warning says it once"
if [ "$(id -u)" = 0 ]; then
	mknod "$H/spool/dev.job" c 1 3
	r run
	is "$(cat "$H/spool/rejected/dev.job.reason" 2>/dev/null)" \
		"spool/dev.job: not a regular file (a character device); not opened" \
		"a device in spool/: the reason says a character device"
else
	ok 0 "# SKIP mknod needs root"
fi

# The claim keeps the bytes it validated: a writer that keeps the file
# open and writes after the claim changes nothing of the batch.
mkhome
printf '[job]\nagent = fake\nid = held\nsymbols = OK-1\n' >"$T/held.job"
exec 3>>"$H/spool/held.job"
cat "$T/held.job" >&3
r run
is "$rc" 0 "a job whose writer keeps it open runs"
printf '[params]\nnever = validated\n' >&3
exec 3>&-
check "  batches/held/job.ini is the bytes validated, not what came after" \
	cmp -s "$H/batches/held/job.ini" "$T/held.job"
is "$(sha256sum <"$H/batches/held/job.ini" | cut -d' ' -f1)" \
	"$(jq "$H/batches/held/batch.json" '$d->{job_sha256}')" \
	"  and its SHA-256 is the batch's job_sha256"
done_testing
