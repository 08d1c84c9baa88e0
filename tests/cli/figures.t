#!/bin/sh
# Figures that are true: `stats` gives the same numbers for a batch wherever
# it lives (batches/, archived, restored, the archive index rebuilt); busy
# time and throughput over it after a retry long after the first run
# (show, batch.json, summary.json, stats, report); per-symbol latency
# percentiles of `status` within [min, max]; sums of seconds, and the
# failed items the most-failing symbols do not see.
. "${RUNNER_SRC:-.}/tests/lib.sh"

# sdiff A B: the top-level keys of two JSON documents that differ (but
# archived_batches, which says where batches live), or nothing.
sdiff() {
	perl -MJSON::PP -e '
		my @d = map { local $/; open my $f, "<", $_ or die "$_: $!";
			      JSON::PP->new->decode(<$f>) } @ARGV;
		my $c = JSON::PP->new->canonical;
		delete $_->{archived_batches} for @d;
		for my $k (sort keys %{{ %{$d[0]}, %{$d[1]} }}) {
			my ($x, $y) = map { $c->allow_nonref->encode($_->{$k}) } @d;
			print "$k: $x != $y\n" if $x ne $y;
		}' "$1" "$2"
}

# ---- (a) stats is the same wherever a batch lives ----
mkhome
job f1 <<JOB
[job]
agent = fake
id = fig-1
symbols = OK-A FLAKY-2-B EXIT-65-C SEGV-D
JOB
r run
job f2 <<JOB
[job]
agent = fake
id = fig-2
symbols = OK-E FLAKY-3-F EXIT-65-C
JOB
r run
job f3 <<JOB
[job]
agent = fake
id = fig-3
symbols = OK-G EXIT-64-H
JOB
r run
is "$(ls "$H/batches" | grep -c '^fig-')" 3 "three final batches"
r stats --json
cp "$T/out" "$T/before.json"
is "$(jq "$T/before.json" '$d->{attempts}')" 14 "stats: 14 attempts (7 + 5 + 2)"
is "$(jq "$T/before.json" '$d->{error_categories}{engine_error}')" 1 "stats: one engine error (the crash)"

# Archive fig-1 and fig-2 (fig-3 is kept out of the way), restore fig-1:
# the index is rewritten while fig-2 is still in it.
mv "$H/batches/fig-3" "$T/fig-3"
r archive --older-than 0
is "$rc" 0 "archive fig-1 and fig-2"
mv "$T/fig-3" "$H/batches/fig-3"
r stats --json
cp "$T/out" "$T/archived.json"
is "$(jq "$T/archived.json" '$d->{archived_batches}')" 2 "two batches archived"
is "$(sdiff "$T/before.json" "$T/archived.json")" "" "stats of archived batches: every figure as before"
r restore fig-1
is "$rc" 0 "restore fig-1"
r stats --json
cp "$T/out" "$T/restored.json"
is "$(jq "$T/restored.json" '$d->{archived_batches}')" 1 "one batch still archived"
is "$(sdiff "$T/before.json" "$T/restored.json")" "" "after a restore beside another archive: every figure as before"

# The index rebuilt from the archives: read without it, then rewritten.
rm "$H/batches/archive/index.jsonl"
r stats --json
cp "$T/out" "$T/noindex.json"
is "$(sdiff "$T/before.json" "$T/noindex.json")" "" "without index.jsonl: every figure as before"
r archive --older-than 9999d
is "$rc" 0 "an archive run rebuilds the index"
check "index.jsonl is back" test -s "$H/batches/archive/index.jsonl"
is "$(jq "$H/batches/archive/index.jsonl" '$d->{attempts}')" 5 "the rebuilt line keeps the batch's attempts"
r stats --json
cp "$T/out" "$T/rebuilt.json"
is "$(sdiff "$T/before.json" "$T/rebuilt.json")" "" "with the rebuilt index: every figure as before"
r list --archived --json
is "$(jq "$T/out" '$d->[0]{failed_items}')" 1 "list --archived from the rebuilt index"
# An index an older version rewrote: the summary fields only.  Its
# figures come back from the archive's summary.json.
perl -MJSON::PP -i -ne '
	my $d = decode_json($_);
	my %keep = map { $_ => 1 } qw(batch_id name origin agent status created_at
		started_at completed_at total_items succeeded_items failed_items
		cancelled_items pending_items running_items paused_items archive
		archived_at archive_bytes);
	delete $d->{$_} for grep { !$keep{$_} } keys %$d;
	print encode_json($d), "\n";' "$H/batches/archive/index.jsonl"
is "$(jq "$H/batches/archive/index.jsonl" '$d->{attempts}')" null "an index of the summary fields only"
r stats --json
cp "$T/out" "$T/short.json"
is "$(sdiff "$T/before.json" "$T/short.json")" "" "with such an index: every figure as before"
r archive --older-than 9999d
is "$(jq "$H/batches/archive/index.jsonl" '$d->{attempts}')" 5 "the next archive run writes the line whole"
r restore fig-2
r stats --json
cp "$T/out" "$T/back.json"
is "$(jq "$T/back.json" '$d->{archived_batches}')" 0 "every batch restored"
is "$(sdiff "$T/before.json" "$T/back.json")" "" "every batch restored: every figure as before"

# ---- (b) busy time and throughput after a retry long after ----
mkhome
job b <<JOB
[job]
agent = fake
id = fig-busy
symbols = OK-A OK-B FLAKY-2-C
max_attempts = 1
JOB
r run
is "$rc" 1 "FLAKY-2-C failed its only attempt"
sleep 3
r retry-failed fig-busy
is "$rc" 0 "retry-failed 3 s later: it succeeds"
B=$H/batches/fig-busy/batch.json
S=$H/batches/fig-busy/summary.json
wall=$(jq "$B" '$d->{performance}{duration_seconds}')
busy=$(jq "$B" '$d->{performance}{busy_seconds}')
ips=$(jq "$B" '$d->{performance}{items_per_second}')
check "batch.json: the wall duration spans the gap (${wall} s)" perl -e "exit !($wall >= 3)"
check "batch.json: busy_seconds (${busy} s) is far below it" perl -e "exit !('$busy' =~ /^[0-9.e-]+\$/ && $busy > 0 && $busy < $wall - 2)"
# Both figures are rounded as runner(1) says (busy_seconds to the
# millisecond, a rate to 3 significant digits): the product is 3 within
# what that rounding can move it, not within a fixed 0.01 (which a busy
# time of a few milliseconds, on a loaded machine, broke).
check "batch.json: items_per_second (${ips}) is 3 items over the busy time" \
	perl -e "exit !(abs($ips * $busy - 3) <= 3 * 0.005 + 0.0005 * $ips + 0.001)"
is "$(jq "$S" '$d->{busy_seconds}')" "$busy" "summary.json: the same busy_seconds"
is "$(jq "$S" '$d->{items_per_second}')" "$ips" "summary.json: the same items_per_second"
r show fig-busy
like "$(cat "$T/out")" "duration +[0-9][0-9.hms]* \(busy [0-9][0-9.hms]*\)" "show: both durations"
like "$(grep throughput "$T/out")" "throughput +[0-9.]+ items/s" "show: a throughput"
check "show: the throughput is not 0.0" sh -c "! grep -q 'throughput *0\\.0 ' '$T/out'"
tp=$(sed -n 's/^ *throughput *\([0-9.]*\) items\/s$/\1/p' "$T/out")
check "show: the throughput is 3 items over the busy time ($tp)" perl -e "exit !(abs($tp - $ips) <= 0.05 * $ips)"
r stats --json
is "$(jq "$T/out" '$d->{throughput}{busy_seconds}')" "$busy" "stats: busy seconds are the batch's"
check "stats: items/s over busy time" perl -e "exit !(abs($(jq "$T/out" '$d->{throughput}{items_per_second}') - $ips) < 0.01)"
r report fig-busy
like "$(grep "<th>duration</th>" "$T/out")" "<th>duration</th><td>[^<]*\(busy [^)]*\)" "report: both durations"
check "report: the same throughput as show" grep -q "<th>throughput</th><td>$tp items/s" "$T/out"

# ---- (c) status latency percentiles within [min, max] ----
mkhome
syms=$(i=10; while [ $i -lt 50 ]; do printf 'OK-%d ' $i; i=$((i + 1)); done)
job c <<JOB
[job]
agent = fake
symbols = $syms
JOB
r run
is "$rc" 0 "40 symbols ran"
r status --json
is "$(jq "$T/out" 'scalar @{$d->{symbols}}')" 40 "status: 40 symbols"
bad=$(jq "$T/out" 'join " ", map { my $l = $_->{latency_ms}; "$_->{symbol}($l->{min},$l->{p50},$l->{p95},$l->{avg},$l->{max})" } grep { my $l = $_->{latency_ms}; !defined $l->{min} || grep { !defined $_ || $_ < $l->{min} || $_ > $l->{max} } @$l{qw(p50 p95 avg)} } @{$d->{symbols}}')
is "$bad" "" "status: every p50, p95 and avg within [min, max]"

# ---- (d) sums of seconds, failures not listed ----
# 1,000 batches of 0.1 busy seconds are 100 seconds (a sum of doubles
# drifts to 99.9999999999986), and 150 failed items of which 100 listed.
mkhome
mkdir -p "$H/batches"
perl -e '
	my $dir = shift;
	for my $i (1 .. 1000) {
		my $f = $i == 1 ? 150 : 0;
		my $list = join ",", map { sprintf q({"symbol":"S%03d","category":"data_error","error_message":"no data","completed_at":"2026-01-01T00:00:01.000Z"}), $_ } 1 .. ($f > 100 ? 100 : $f);
		mkdir "$dir/fig-sum-$i" or die;
		open my $o, ">", "$dir/fig-sum-$i/summary.json" or die;
		printf $o q({"batch_id":"fig-sum-%d","agent":"fake","status":"%s","created_at":"2026-01-01T00:00:00.000Z","completed_at":"2026-01-01T00:00:01.000Z","total_items":%d,"succeeded_items":10,"failed_items":%d,"cancelled_items":0,"pending_items":0,"running_items":0,"paused_items":0,"attempts":10,"error_summary":{},"duration_seconds":0.1,"busy_seconds":0.1,"items_per_second":100,"cpu_user_seconds":0.1,"cpu_system_seconds":0,"failed":[%s]}) . "\n",
			$i, $f ? "partial" : "completed", 10 + $f, $f, $list;
	}' "$H/batches"
r stats --json
is "$(jq "$T/out" '$d->{throughput}{busy_seconds}')" 100 "stats: 1,000 x 0.1 busy seconds are 100"
is "$(jq "$T/out" '$d->{cpu_user_seconds}')" 100 "stats: cpu seconds too"
is "$(jq "$T/out" '$d->{unlisted_failed_items}')" 50 "stats: 50 failed items beyond the 100 listed"
r stats
like "$(cat "$T/out")" "not counted: 50 failed items beyond the first 100" "stats: says the ranking does not see them"

done_testing
