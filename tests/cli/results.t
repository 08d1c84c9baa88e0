#!/bin/sh
# runner results: one row per symbol with its metrics; sort, filter,
# columns; text, CSV (RFC 4180), TSV, JSON lines; archived batches.
. "${RUNNER_SRC:-.}/tests/lib.sh"

mkhome "max_concurrent = 2"
job res <<JOB
[job]
agent = fake
id = res
symbols = METRIC-2.5-A METRIC-0.5-B METRIC-1.75-C EXIT-3-D OK-E
max_attempts = 1
JOB
r run
is "$rc" 1 "the batch runs (one item fails)"
res() { "$RUNNER" -C "$H" results res "$@"; }
is "$(res | head -1 | tr -s ' ')" "symbol state category duration_ms attempts matches sharpe risk.var label ok" \
	"the header: base columns, then every metric as first seen (nested ones dotted, lists left out)"
is "$(res | wc -l)" 6 "one row per symbol"
like "$(res | grep '^EXIT-3-D')" "failed +unknown" "a failed item: its state and category"
is "$(res --sort sharpe --desc --columns symbol | tail -n +2 | tr '\n' ' ')" "METRIC-2.5-A METRIC-1.75-C OK-E METRIC-0.5-B EXIT-3-D " \
	"--sort sharpe --desc: highest first, rows without it last"
is "$(res --sort sharpe --columns symbol | tail -n +2 | tr '\n' ' ')" "METRIC-0.5-B OK-E METRIC-1.75-C METRIC-2.5-A EXIT-3-D " \
	"--sort sharpe: lowest first, rows without it still last"
is "$(res --where 'sharpe>1.5' --columns symbol | tail -n +2 | tr '\n' ' ')" "METRIC-1.75-C METRIC-2.5-A " "--where sharpe>1.5"
is "$(res --where 'sharpe>=1.5 and risk.var=2' --columns symbol | tail -n +2 | tr '\n' ' ')" "METRIC-1.75-C METRIC-2.5-A " \
	"--where with and, on a nested metric (OK-E has no risk.var)"
is "$(res --where 'sharpe<1 or state=failed' --columns symbol | tail -n +2 | tr '\n' ' ')" "EXIT-3-D METRIC-0.5-B " \
	"--where with or, and a text comparison"
is "$(res --where 'sharpe>1 and sharpe<2 or symbol=OK-E' --columns symbol | tail -n +2 | tr '\n' ' ')" "METRIC-1.75-C OK-E " \
	"'and' binds tighter than 'or'"
is "$(res --where "label='x,y'" --columns symbol | tail -n +2 | wc -l)" 3 "a quoted text value"
is "$(res --columns symbol,sharpe --where 'symbol=METRIC-2.5-A' | tail -1 | tr -s ' ')" "METRIC-2.5-A 2.5" "--columns picks and orders"
res --csv --columns symbol,label,sharpe >"$T/csv"
is "$(grep '^METRIC-0.5-B' "$T/csv")" "$(printf 'METRIC-0.5-B,"x,y",0.5\r')" "--csv: RFC 4180 quoting, CRLF"
check "--csv reads back as 4 columns per row with Perl's split on a quoted field" \
	perl -e 'open my $f, "<", $ARGV[0] or die; my $n = 0; while (<$f>) { s/\r?\n$//; my @c = /("(?:[^"]|"")*"|[^,]*)(?:,|$)/g; pop @c if @c > 3; $n++ if @c == 3 } exit($n == 6 ? 0 : 1)' "$T/csv"
is "$(res --tsv --columns symbol,label | grep '^METRIC-0.5-B')" "$(printf 'METRIC-0.5-B\tx,y')" "--tsv"
"$RUNNER" -C "$H" --json results res >"$T/json"
is "$(wc -l <"$T/json")" 5 "--json: one object a line"
check "every line parses" perl -MJSON::PP -ne 'decode_json($_)' "$T/json"
is "$(perl -MJSON::PP -ne '$d = decode_json($_); print ref(\$d->{sharpe}) . "," . (defined $d->{category} ? 1 : 0) . "," . $d->{ok} . "\n" if $d->{symbol} eq "METRIC-2.5-A"' "$T/json")" "SCALAR,0,true" \
	"--json: numbers, nulls and text as such"
is "$(perl -MJSON::PP -ne '$d = decode_json($_); print $d->{sharpe} + 0 if $d->{symbol} eq "METRIC-2.5-A"' "$T/json")" 2.5 "--json: sharpe a number"

res --sort nosuch >/dev/null 2>"$T/err"
is "$?" 64 "--sort on no column: usage error"
like "$(cat "$T/err")" "no column nosuch" "saying which"
res --columns symbol,sharp >/dev/null 2>"$T/err"
is "$?" 64 "--columns naming no column: usage error"
res --where 'sharpe >' >/dev/null 2>&1
is "$?" 64 "--where without a value: usage error"
res --where 'sharpe 1' >/dev/null 2>"$T/err"
is "$?" 64 "--where without an operator: usage error"
res --where 'sharpe>1 nand x<2' >/dev/null 2>&1
is "$?" 64 "--where with a bad join: usage error"
res --csv --tsv >/dev/null 2>&1
is "$?" 64 "--csv and --tsv together: usage error"
"$RUNNER" -C "$H" results nosuch >/dev/null 2>&1
is "$?" 66 "a batch that does not exist: 66"

r archive --older-than 0s
is "$(res --sort sharpe --desc --columns symbol | sed -n 2p)" "METRIC-2.5-A" "results of an archived batch"

# ---- the summary line: matches and the primary metric ----
mkhome "primary_metric = sharpe"
job pm <<JOB
[job]
agent = fake
id = pm
symbols = METRIC-2.5-A METRIC-0.5-B METRIC-1-C EXIT-3-D
max_attempts = 1
JOB
r run
like "$(cat "$T/out")" "results +9 matches, sharpe mean 1.33333 \(min 0.5 METRIC-0.5-B, max 2.5 METRIC-2.5-A; 3 items\); runner results pm" \
	"run's summary: the sum of matches and the primary metric"
like "$(tail -1 "$H/logs/pm.log")" "9 matches, sharpe mean 1.33333 \(min 0.5 METRIC-0.5-B, max 2.5 METRIC-2.5-A; 3 items\), total time" \
	"the log's last line too"

# ---- diff: two nights of the same job, another job between them ----
CAPDIR=$T/cap
mkdir -p "$CAPDIR"
mkhome "env = CAPDIR=$CAPDIR"
echo fail >"$CAPDIR/mode.MODE-S"
echo fail >"$CAPDIR/mode.MODE-K"
job n1 <<JOB
[job]
agent = fake
id = night-1
name = nightly scan
symbols = MODE-F MODE-S MODE-K METRIC-1-A METRIC-2-B OK-G
max_attempts = 1
JOB
r run
job other <<JOB
[job]
agent = fake
id = other-1
name = another scan
symbols = OK-G
JOB
r run
echo fail >"$CAPDIR/mode.MODE-F"
rm "$CAPDIR/mode.MODE-S"
echo 1.5 >"$CAPDIR/sharpe.METRIC-1-A"
echo 0.5 >"$CAPDIR/sharpe.METRIC-2-B"
job n2 <<JOB
[job]
agent = fake
id = night-2
name = nightly scan
symbols = MODE-F MODE-S MODE-K METRIC-1-A METRIC-2-B OK-N
max_attempts = 1
JOB
r run
r diff night-2
is "$rc" 0 "diff against the previous batch of the same name"
like "$(head -1 "$T/out")" "^diff night-2 against night-1 \(the previous batch of the same name\)" "it found night-1, not other-1"
like "$(cat "$T/out")" "newly failed +1  MODE-F" "newly failed"
like "$(cat "$T/out")" "newly succeeded +1  MODE-S" "newly succeeded"
like "$(cat "$T/out")" "still failing +1  MODE-K" "still failing"
like "$(cat "$T/out")" "appeared +1  OK-N" "appeared"
like "$(cat "$T/out")" "disappeared +1  OK-G" "disappeared"
like "$(cat "$T/out")" "sharpe, largest changes \(2 changed\)" "the metric's changes"
like "$(grep -A1 'sharpe, largest' "$T/out" | tail -1)" "METRIC-2-B +2 -> 0.5 +-1.5" "largest change first"
"$RUNNER" -C "$H" --json diff night-2 night-1 >"$T/d.json"
is "$(jq "$T/d.json" 'join(",", map { scalar @{$d->{$_}} } qw(newly_failed newly_succeeded still_failing appeared disappeared))')" "1,1,1,1,1" "--json: the five lists"
is "$(jq "$T/d.json" '$d->{metric_changes}{sharpe}[1]{change}')" 0.5 "--json: each change with before, after and change"
r report night-2 -o "$T/n2.html"
is "$rc" 0 "report of a batch with results"
check "the report has a results section" grep -q '<section id="results">' "$T/n2.html"
check "ranked by the first metric the results report" grep -q 'By sharpe (the first metric the results report)' "$T/n2.html"
check "with a histogram" grep -q 'aria-label="histogram of sharpe"' "$T/n2.html"
check "and what changed since the previous batch" grep -q '<h3>Since night-1 ' "$T/n2.html"
check "its largest changes" grep -q 'The largest changes of sharpe (2 changed)' "$T/n2.html"
r diff night-1
is "$rc" 66 "no previous batch: 66"
like "$(cat "$T/err")" "no batch before night-1 with its name" "saying why"
r diff night-2 nosuch
is "$rc" 66 "an OTHER that does not exist: 66"

# ---- history and list filters ----
r history MODE-F
is "$rc" 0 "history of a symbol"
is "$(tail -n +2 "$T/out" | awk '{print $1, $3}' | tr '\n' ' ')" "night-2 failed night-1 succeeded " "its runs, newest first, with their states"
like "$(sed -n 2p "$T/out")" "failed +engine_error" "and the category of a failure"
r history METRIC-2-B --limit 1
is "$(tail -n +2 "$T/out" | wc -l)" 1 "--limit"
like "$(cat "$T/out")" "sharpe=0.5" "its metrics"
"$RUNNER" -C "$H" --json history METRIC-2-B >"$T/h.json"
is "$(perl -MJSON::PP -ne '$d = decode_json($_); print $d->{batch}, ":", $d->{metrics}{sharpe}, " "' "$T/h.json")" "night-2:0.5 night-1:2 " "--json: one object a line, metrics as an object"
r history NOPE-1
is "$rc" 66 "a symbol never run: 66"
r archive --older-than 0s
r history METRIC-2-B
is "$(tail -n +2 "$T/out" | wc -l)" 2 "archived batches stay in the history"
rm -rf "$H/state/history"
r history METRIC-2-B
is "$(tail -n +2 "$T/out" | wc -l)" 2 "a home without the index builds it from the archives"
check "and marks it complete" test -e "$H/state/history/.complete"
r list --archived --symbol OK-G
is "$(tail -n +2 "$T/out" | awk '{print $1}' | sort | tr '\n' ' ')" "night-1 other-1 " "list --symbol: the batches that held it"
r list --archived --name "nightly scan"
is "$(tail -n +2 "$T/out" | awk '{print $1}' | tr '\n' ' ')" "night-2 night-1 " "list --name"
job n3 <<JOB
[job]
agent = fake
id = night-3
origin = cron
symbols = GATE-Q
JOB
"$RUNNER" -C "$H" run >"$T/n3.out" 2>&1 &
rpid=$!
wait_for started night-3 GATE-Q
r list --symbol GATE-Q
is "$(tail -n +2 "$T/out" | awk '{print $1}')" "night-3" "list --symbol finds a running batch (not yet in the index)"
r list --origin cron
is "$(tail -n +2 "$T/out" | awk '{print $1}')" "night-3" "list --origin"
: >"$CAPDIR/open.GATE-Q"
wait $rpid
r history GATE-Q
is "$(tail -n +2 "$T/out" | awk '{print $1, $3}')" "night-3 succeeded" "a batch enters the history when it ends"

# history over 10,000 batches stays fast: the index is bucketed by symbol.
b=$(ls "$H/state/history" | grep -v complete | head -1)
perl -e 'for my $i (1..10000) { print "HOT-1\tbatch-$i\t", 1700000000000 + $i, "\t", 1700000001000 + $i, "\tsucceeded\t-\t1200\t1\t{\"sharpe\":1.2,\"trades\":14}\n"; print "COLD-$i\tbatch-$i\t1\t2\tsucceeded\t-\t5\t1\t-\n" }' >>"$H/state/history/$(perl -e 'use integer; my $h = -3750763034362895579; for (unpack "C*", "HOT-1") { $h ^= $_; $h *= 1099511628211 } printf "%02x", $h & 255')"
t0=$(date +%s%N)
r history HOT-1 --limit 5
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
is "$(tail -n +2 "$T/out" | head -1 | awk '{print $1}')" "batch-10000" "10,000 runs of a symbol: the newest first"
check "history over 10,000 batches in under 200 ms (took $ms ms)" test "$ms" -lt 200
diag "history HOT-1 over 10,000 batches: $ms ms"

done_testing
