#!/bin/sh
# kill -9 of the runner at seeded random instants, then `runner run`:
# every item ends with exactly one final state, no job file is lost or
# claimed twice, batch.json is parseable whenever it is read, and no
# child outlives the runner that accounted for it.
. "${RUNNER_SRC:-.}/tests/lib.sh"

ROUNDS=${CRASH_ROUNDS:-12}
mkhome "max_concurrent = 4"
syms=""
i=1
while [ $i -le 12 ]; do
	syms="$syms SLEEP-0.2-$i OK-$i FLAKY-2-$i EXIT-65-$i"
	i=$((i + 1))
done
for j in 1 2 3; do
	job "crash$j" <<JOB
[job]
agent = fake
id = crash$j
symbols = $syms
JOB
done

# A reader that parses every batch.json it can see, all the time.
(
	bad=0
	while [ ! -f "$T/stop" ]; do
		for f in "$H"/batches/*/batch.json; do
			[ -f "$f" ] || continue
			perl -MJSON::PP -e 'local $/; open my $f, "<", $ARGV[0] or exit 0; decode_json(<$f>)' "$f" 2>/dev/null || bad=$((bad + 1))
		done
	done
	echo $bad >"$T/bad"
) &
reader=$!

seed=1
while [ $seed -le "$ROUNDS" ]; do
	delay=$(awk -v s=$seed 'BEGIN { srand(s); printf "%.3f", 0.05 + rand() * 1.2 }')
	$RUNNER -C "$H" run >/dev/null 2>&1 &
	pid=$!
	sleep "$delay"
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	seed=$((seed + 1))
done
r run
final_rc=$rc
touch "$T/stop"
wait $reader
is "$(cat "$T/bad")" 0 "batch.json parseable at every read"
check "the final run returns 0 or 1 (got $final_rc)" test "$final_rc" -le 1
is "$(ls "$H/spool" | grep -c '\.job$')" 0 "no job file left in spool/"
is "$(ls "$H/spool/rejected" | wc -l)" 0 "nothing rejected"
is "$(ls -a "$H/batches" | grep -c '^\.claim-')" 0 "no half-done claim left"
for j in 1 2 3; do
	B=$H/batches/crash$j/batch.json
	is "$(jq "$B" '$d->{status}')" partial "crash$j: final (partial)"
	is "$(jq "$B" 'scalar grep { $_->{state} =~ /^(succeeded|failed|cancelled)$/ } @{$d->{items}}')" 48 "crash$j: every item has one final state"
	is "$(jq "$B" 'scalar grep { $_->{symbol} =~ /^EXIT/ && $_->{state} eq "failed" } @{$d->{items}}')" 12 "crash$j: the data errors failed"
	# An item whose attempts the kills hit 3 times in a row cannot be told
	# from one that kills its runner: it fails so (runner(1) OUTCOMES).
	is "$(jq "$B" 'scalar grep { $_->{symbol} !~ /^EXIT/ && ($_->{state} eq "succeeded" || ($_->{state} eq "failed" && $_->{error_message} =~ /^interrupted 3 times: /)) } @{$d->{items}}')" 36 "crash$j: everything else succeeded (or was interrupted 3 times in a row)"
	is "$(jq "$B" 'scalar grep { my $f = grep { $_->{outcome} eq "failed" } @{$_->{attempt_log}}; $f > 3 } @{$d->{items}}')" 0 "crash$j: no item failed more than max_attempts"
	is "$(jq "$B" 'scalar grep { my $a = $_; grep { !defined $_->{outcome} } @{$a->{attempt_log}} } @{$d->{items}}')" 0 "crash$j: every attempt has an outcome"
	r show crash$j --json
	is "$(jq "$T/out" '$d->{succeeded_items}')" "$(jq "$B" '$d->{succeeded_items}')" "crash$j: replay agrees with batch.json"
done
inter=0
for j in 1 2 3; do
	n=$(jq "$H/batches/crash$j/batch.json" 'my $n = 0; for my $i (@{$d->{items}}) { $n += grep { $_->{outcome} eq "interrupted" } @{$i->{attempt_log}} } $n')
	inter=$((inter + n))
done
diag "attempts interrupted by the kills: $inter"
check "the kills did interrupt running attempts" test "$inter" -gt 0
adopted=$(cat "$H"/logs/crash*.log | grep -c "adopted by runner")
check "batches were adopted after the kills ($adopted times)" test "$adopted" -gt 0
is "$(grep -l "RUNNER_HOME=$H" /proc/[0-9]*/environ 2>/dev/null | wc -l)" 0 "no child left behind"
done_testing
