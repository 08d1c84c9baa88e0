#!/bin/sh
# tests/fuzz/mkseeds.sh: the seeds of the fuzz corpora, from real files.
#   job/seed-*      the job files of tests/corpus/jobs and conf/
#   conf/seed-*     conf/runner.ini and the configurations of tests/lib.sh
#   journal/seed-*  the journals of small real batches (retries, results
#                   and metrics, a failure group paused then resumed, a
#                   user's pause, a cancel, a retry-failed), each twice: as
#                   the file (journal-*.raw) and as its record payloads
#                   separated as tests/fuzz/journal.c reads them
# Run from the source tree after `make everything`:
#   RUNNER=$PWD/runner tests/fuzz/mkseeds.sh
# It replaces the seed-* files only; the minimised inputs stay.
. "${RUNNER_SRC:-.}/tests/lib.sh"
C=$SRC/tests/fuzz/corpus
mkdir -p "$C/job" "$C/conf" "$C/journal"
rm -f "$C"/job/seed-* "$C"/conf/seed-* "$C"/journal/seed-*

for f in "$SRC"/tests/corpus/jobs/*.job "$SRC"/conf/*.job; do
	cp "$f" "$C/job/seed-$(basename "$f" .job)"
done
cp "$SRC/conf/runner.ini" "$C/conf/seed-runner.ini"

# The journal's records, without the framing: payloads separated by
# 0xff 'R' 'J' 0xff (tests/fuzz/journal.c).
unframe() {
	perl -e '
		local $/; binmode STDIN; binmode STDOUT;
		my $j = <STDIN>; my $o = 24; my @p;
		while ($o + 16 <= length $j) {
			my $n = unpack "V", substr($j, $o, 4);
			push @p, substr($j, $o + 16, $n); $o += 16 + $n;
		}
		print join("\xffRJ\xff", @p);
	'
}
keep() { # BATCH NAME
	cp "$H/batches/$1/journal" "$C/journal/seed-$2.raw"
	unframe <"$H/batches/$1/journal" >"$C/journal/seed-$2"
}

CAPDIR=$T/cap
mkdir -p "$CAPDIR"
mkhome "env = CAPDIR=$CAPDIR
[correlation]
window = 5m
min_group = 2
[retry]
max_attempts = 3"
cp "$H/conf/runner.ini" "$C/conf/seed-tests.ini"

job r <<JOB
[job]
agent = fake
id = retries
symbols = FLAKY-3-A FLAKY-9-B EXIT-65-C RETRYABLE-D OK-E SEGV-F STDERR-G
max_attempts = 3
[params]
fast = 10
JOB
r run
keep retries retries

job m <<JOB
[job]
agent = fake
id = metrics
symbols = METRIC-1.5-A METRIC-0.2-B METRIC--3-C TRUNC-D TRUNCFAIL-E RESULT-data_error-F PYERR-KeyError-G
JOB
r run
keep metrics metrics
r --retry-failed metrics
keep metrics retry-failed

touch "$CAPDIR/down"
job o <<JOB
[job]
agent = fake
id = outage
source = koyfin
symbols = $(syms VENDOR 6)
JOB
r run
keep outage group-paused
rm -f "$CAPDIR/down"
G=$(jq "$H/batches/outage/batch.json" '$d->{failure_groups}[0]{group_id}')
r resume "$G"
keep outage group-resumed

job p <<JOB
[job]
agent = fake
id = paused
symbols = OK-A OK-B OK-C
JOB
r pause paused --reason "maintenance"
r resume paused
r run
keep paused user-pause

job c <<JOB
[job]
agent = fake
id = c1
symbols = HANG-A HANG-B OK-C HANG-D HANG-E HANG-F
concurrency = 3
JOB
$RUNNER -C "$H" run >"$T/run.out" 2>&1 &
pid=$!
running() { [ -f "$H/batches/c1/batch.json" ] &&
	[ "$(jq "$H/batches/c1/batch.json" '$d->{running_items}')" -ge 2 ]; }
wait_for running
r cancel c1 --symbol HANG-A
r cancel c1
wait $pid
keep c1 cancel

for f in "$C"/journal/seed-*; do [ -s "$f" ]; ok $? "$(basename "$f")"; done
done_testing
