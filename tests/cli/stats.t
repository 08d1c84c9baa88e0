#!/bin/sh
# History and looking (issue: history, reports and retention): summary.json,
# `runner stats`, resource use in show, the progress line on a terminal,
# and the daemon's logs/runner.prom.
. "${RUNNER_SRC:-.}/tests/lib.sh"


mkhome "[agent other]
command = $SRC/tests/agents/fake
max_concurrent = 2
source = elsewhere"
job a <<JOB
[job]
agent = fake
id = batch-stats-a
symbols = OK-A OK-B EXIT-65-BAD SEGV-C
max_attempts = 1
JOB
r run
is "$rc" 1 "batch a: some items failed"
job b <<JOB
[job]
agent = other
id = batch-stats-b
symbols = OK-D EXIT-65-BAD OK-E
JOB
r run
is "$rc" 1 "batch b: one item failed"

# summary.json carries what stats aggregates.
S=$H/batches/batch-stats-a/summary.json
is "$(jq "$S" '$d->{error_summary}{data_error}')" 1 "summary.json: error_summary"
is "$(jq "$S" 'scalar @{$d->{failed}}')" 2 "summary.json: the failed items listed"
is "$(jq "$S" 'join ",", sort map { $_->{symbol} } @{$d->{failed}}')" "EXIT-65-BAD,SEGV-C" "with their symbols"
like "$(jq "$S" '$d->{failed}[0]{error_message}')" "." "and their last error"
like "$(jq "$S" '$d->{duration_seconds}')" '^[0-9.e-]+$' "summary.json: duration_seconds"
like "$(jq "$S" '$d->{latency_ms}{p95}')" '^[0-9.]+$' "summary.json: latency p95"

r stats --json
is "$rc" 0 "stats --json"
cp "$T/out" "$T/stats.json"
st() { jq "$T/stats.json" "$1"; }
is "$(st '$d->{batches}')" 2 "two batches"
is "$(st '$d->{batches_by_status}{partial}')" 2 "both partial"
is "$(st '$d->{items}{total}')" 7 "seven items"
is "$(st '$d->{items}{succeeded}')" 4 "four succeeded"
is "$(st '$d->{items}{failed}')" 3 "three failed"
is "$(st 'sprintf "%.3f", $d->{success_rate}')" 0.571 "success rate 4/7"
is "$(st '$d->{error_categories}{data_error}')" 2 "two data errors"
is "$(st '$d->{error_categories}{engine_error}')" 1 "one engine error (the crash)"
is "$(st '$d->{top_failing_symbols}[0]{symbol}')" EXIT-65-BAD "the most failing symbol first"
is "$(st '$d->{top_failing_symbols}[0]{failures}')" 2 "failed in two batches"
is "$(st '$d->{top_failing_symbols}[0]{last_batch_id}')" batch-stats-b "its last failure is the newest"
like "$(st '$d->{top_failing_symbols}[0]{last_error}')" "." "with its last error"
is "$(st 'scalar @{$d->{agents}}')" 2 "per agent"
is "$(st 'join ",", map { "$_->{agent}=$_->{items}{total}" } sort { $a->{agent} cmp $b->{agent} } @{$d->{agents}}')" "fake=4,other=3" "items per agent"
like "$(st '$d->{throughput}{items_per_second}')" '^[0-9.e+]+$' "throughput"
like "$(st '$d->{batch_duration_seconds}{p95}')" '^[0-9.e-]+$' "duration percentiles"

r stats
is "$rc" 0 "stats for people"
like "$(cat "$T/out")" "EXIT-65-BAD +2" "names the most failing symbol"
like "$(cat "$T/out")" "success +57\.1%" "and the success rate"

r stats --since 2999-01-01 --json
is "$(jq "$T/out" '$d->{batches}')" 0 "--since in the future: nothing"
r stats --since yesterday-ish
is "$rc" 64 "a bad --since is a usage error"

# Archived batches count too, with their error categories and symbols.
r archive --older-than 0
is "$rc" 0 "archive both batches"
r stats --json
is "$(jq "$T/out" '$d->{batches}')" 2 "stats counts archived batches"
is "$(jq "$T/out" '$d->{archived_batches}')" 2 "and says how many were archived"
is "$(jq "$T/out" '$d->{error_categories}{data_error}')" 2 "their error categories from the archive index"
is "$(jq "$T/out" '$d->{top_failing_symbols}[0]{symbol}')" EXIT-65-BAD "and their failing symbols"
r restore batch-stats-a
r restore batch-stats-b
is "$(ls "$H/batches" | grep -c stats)" 2 "restored"

# Without summary.json the journal answers.
rm "$H/batches/batch-stats-b/summary.json"
r stats --json
is "$(jq "$T/out" '$d->{items}{total}')" 7 "a batch without summary.json is counted from its journal"

# A hostile summary.json is skipped, not trusted.
printf '{"status":"completed","created_at":"2020-01-01",' >"$H/batches/batch-stats-a/summary.json"
r stats --json
is "$rc" 0 "a torn summary.json does not break stats"
is "$(jq "$T/out" '$d->{batches}')" 2 "and the batch is still counted"

# Resource use in show.
r show batch-stats-a
like "$(cat "$T/out")" "resources +cpu [0-9.]+m?s user, [0-9.]+m?s system; max rss [0-9.]+ [KMG]iB" "show: cpu and max rss"
r show batch-stats-a --items
like "$(cat "$T/out")" "CPU +MAX RSS" "show --items: per-item cpu and rss"
is "$(jq "$H/batches/batch-stats-a/batch.json" '$d->{items}[0]{attempt_log}[0]{max_rss_kb} > 0 ? 1 : 0')" 1 "attempt max_rss_kb from wait4"

# 10,000 batches: stats under a second (summary.json only, as list reads).
mkdir -p "$T/many"
python3 - "$H/batches" <<'PY' 2>/dev/null || perl -e '
	my $dir = shift;
	for my $i (1 .. 10000) {
		my $id = sprintf "batch-many-%05d", $i;
		mkdir "$dir/$id";
		open my $f, ">", "$dir/$id/summary.json" or die;
		printf $f "{\"batch_id\":\"%s\",\"agent\":\"fake\",\"status\":\"partial\",\"created_at\":\"2026-01-01T00:00:00.000Z\",\"total_items\":10,\"succeeded_items\":9,\"failed_items\":1,\"cancelled_items\":0,\"pending_items\":0,\"running_items\":0,\"paused_items\":0,\"attempts\":11,\"error_summary\":{\"data_error\":1},\"duration_seconds\":%d,\"items_per_second\":1,\"latency_ms\":{\"avg\":1,\"p50\":1,\"p95\":1,\"max\":1},\"failed\":[{\"symbol\":\"S%d\",\"category\":\"data_error\",\"error_message\":\"no data\",\"completed_at\":\"2026-01-01T00:00:01.000Z\"}]}\n", $id, $i % 60, $i % 50;
	}' "$H/batches"
import sys
raise SystemExit(1)
PY
t0=$(date +%s%N)
r stats --json
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
is "$(jq "$T/out" '$d->{batches}')" 10002 "stats over 10,002 batches"
check "in under a second (${ms} ms)" test "$ms" -lt 1000
diag "stats over 10,002 batches: ${ms} ms"
rm -rf "$H"/batches/batch-many-*

# The progress line: on a terminal only, at most 10 redraws a second.
mkhome
job p <<JOB
[job]
agent = fake
id = batch-progress
symbols = SLEEP-1-A SLEEP-1-B OK-C
JOB
script -qfec "$RUNNER -C $H run" "$T/tty" >/dev/null 2>&1
like "$(tr '\r' '\n' <"$T/tty" | grep -a 'ETA' | tail -1)" '^(\[[# ]+\] )?[0-9]+% [0-9]/3 ok [0-9] failed 0 running [0-9] ETA' "progress line: bar, percentage, done/total, ok, failed, running, ETA"
r status --json
lat() { jq "$T/out" "(grep { \$_->{symbol} eq 'SLEEP-1-A' } @{\$d->{symbols}})[0]{latency_ms}{$1}"; }
p50=$(lat p50); mx=$(lat max)
check "status: per-symbol latency p50 (${p50} ms, within 10% of 1 s)" test "${p50:-0}" -ge 900 -a "${p50:-0}" -le 1300
# The attempt's clock starts when the runner is back from the spawn: on a
# busy machine the agent's 1 s sleep may have begun some ms before.
check "status: per-symbol latency max (${mx} ms)" test "${mx:-0}" -ge 900 -a "${mx:-0}" -le 2000
like "$(cat "$T/out")" '"avg_latency_ms"' "avg_latency_ms as SPEC 8 has it"
draws=$(tr '\r' '\n' <"$T/tty" | grep -ac 'ETA')
check "redrawn at most 10 times a second ($draws draws in ~1 s)" test "$draws" -le 14
mkhome
job p <<JOB
[job]
agent = fake
symbols = SLEEP-1-A OK-C
JOB
r run
check "no progress line when stdout is not a terminal" sh -c "! grep -q \"\$(printf '\\r')\" '$T/out'"

# logs/runner.prom from the daemon.
mkhome
$RUNNER_CMD -C "$H" daemon >"$T/daemon.out" 2>&1 &
dpid=$!
check "the daemon writes logs/runner.prom at start" wait_for test -s "$H/logs/runner.prom"
job m <<JOB
[job]
agent = fake
id = batch-metrics
symbols = GATE-A EXIT-65-B OK-C
max_attempts = 1
JOB
running() { grep -q '^runner_items{home="[^"]*",state="running"} 1$' "$H/logs/runner.prom"; }
check "items by state while a child runs (within one refresh)" wait_for running
P=$H/logs/runner.prom
HL="home=\"$(cd "$H" && pwd -P)\""
like "$(cat "$P")" "runner_running_children\\{$HL,agent=\"fake\"\\} 1" "running children per agent"
like "$(cat "$P")" "runner_attempts_total\\{$HL,agent=\"fake\",outcome=\"failed\",category=\"data_error\"\\} 1" "attempts by agent and category"
like "$(cat "$P")" "runner_attempts_total\\{$HL,agent=\"fake\",outcome=\"succeeded\",category=\"none\"\\} 1" "successful attempts"
like "$(cat "$P")" "runner_symbol_circuits\\{$HL,state=\"open\"\\} 0" "open symbol circuits"
like "$(cat "$P")" "runner_failure_groups\\{$HL,status=\"open\"\\} 0" "open groups"
is "$(grep -c '^runner_circuits' "$P")" 0 "no series repeating others (runner_circuits_open, source circuits)"
bad=$(grep -Ev '^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+)$' "$P" | head -1)
is "$bad" "" "every line is Prometheus text format"
is "$(ls -a "$H/logs" | grep -c 'runner.prom.')" 0 "no temporary file left beside it"
touch "$H/gates/open.GATE-A"
final() { grep -q '"status":"partial"' "$H/batches/batch-metrics/summary.json"; }
check "the batch ends" wait_for final
# retry-failed through the daemon ends the batch again: counted once
r retry-failed batch-metrics
again() { [ "$(jq "$H/batches/batch-metrics/batch.json" '$d->{items}[1]{attempts}')" = 2 ] && final; }
check "retry-failed through the daemon ends it again" wait_for again
kill -TERM $dpid
wait $dpid
like "$(cat "$P")" "runner_batch_duration_seconds_count\\{$HL\\} 1" "batch durations after the batch ended (once, not again after retry-failed)"
like "$(cat "$P")" "runner_batches_finished_total\\{$HL,status=\"partial\"\\} 1" "finished batches by status (once)"
like "$(cat "$P")" "runner_items_finished_total\\{$HL,agent=\"fake\",state=\"failed\"\\} 2" "items finished by agent and state (each end)"
like "$(cat "$P")" "runner_attempt_duration_seconds_count\\{$HL,agent=\"fake\"\\} 4" "attempt durations by agent"
like "$(cat "$P")" "runner_start_time_seconds\\{$HL,mode=\"daemon\"\\}" "the writer's start, daemon"

# logs/runner.prom from runner run too (cron users have no daemon), its
# counters carried on from the file: a second run adds to the first.
mkhome
for k in 1 2; do
	job "r$k" <<JOB
[job]
agent = fake
symbols = OK-$k EXIT-65-$k SLEEP-0.2-$k
JOB
	r run
	is "$rc" 1 "run $k: exit 1 (one item failed)"
done
P=$H/logs/runner.prom
HL="home=\"$(cd "$H" && pwd -P)\""
check "run writes logs/runner.prom" test -s "$P"
like "$(cat "$P")" "runner_build_info\\{$HL,version=\"[0-9.]+\"\\} 1" "build info with the version"
like "$(cat "$P")" "runner_attempts_total\\{$HL,agent=\"fake\",outcome=\"succeeded\",category=\"none\"\\} 4" "two runs' successful attempts add up"
like "$(cat "$P")" "runner_items_finished_total\\{$HL,agent=\"fake\",state=\"failed\"\\} 2" "two runs' failed items add up"
like "$(cat "$P")" "runner_batches_finished_total\\{$HL,status=\"partial\"\\} 2" "two runs' batches add up"
like "$(cat "$P")" "runner_attempt_duration_seconds_bucket\\{$HL,agent=\"fake\",le=\"0.1\"\\} [0-4]" "attempt duration buckets"
like "$(cat "$P")" "runner_attempt_duration_seconds_bucket\\{$HL,agent=\"fake\",le=\"\\+Inf\"\\} 6" "every attempt in +Inf"
like "$(cat "$P")" "runner_start_time_seconds\\{$HL,mode=\"run\"\\}" "the writer's start, a run"
is "$(grep -v '^#' "$P" | grep -vc "{$HL")" 0 "every series has the home label"
if command -v promtool >/dev/null 2>&1; then
	promtool check metrics <"$P" >"$T/promtool" 2>&1
	is "$?:$(cat "$T/promtool")" "0:" "promtool check metrics: clean"
else
	ok 0 "# SKIP promtool not installed"
fi

# A file someone else wrote: what does not parse as a counter starts again.
{
	printf 'runner_attempts_total{%s,agent="fake",outcome="succeeded",category="none"} -5\n' "$HL"
	printf 'runner_items_finished_total{%s,agent="fake",state="failed"} nan\n' "$HL"
	printf 'runner_batches_finished_total{%s,status="partial"} 1e400\n' "$HL"
	printf 'runner_items_finished_total{%s,agent="fake",state="succeeded"} 40\n' "$HL"
	head -c 5000 /dev/zero | tr '\0' x
} >"$P"
job r3 <<JOB
[job]
agent = fake
symbols = OK-3 EXIT-65-3
JOB
r run
like "$(cat "$P")" "runner_attempts_total\\{$HL,agent=\"fake\",outcome=\"succeeded\",category=\"none\"\\} 1" "a negative counter in the file starts again"
like "$(cat "$P")" "runner_items_finished_total\\{$HL,agent=\"fake\",state=\"failed\"\\} 1" "nan starts again"
like "$(cat "$P")" "runner_batches_finished_total\\{$HL,status=\"partial\"\\} 1" "an infinite one starts again"
like "$(cat "$P")" "runner_items_finished_total\\{$HL,agent=\"fake\",state=\"succeeded\"\\} 41" "a good one goes on"
bad=$(grep -Ev '^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+)$' "$P" | head -1)
is "$bad" "" "and the file is all Prometheus text format again"

# [metrics] textfile: another place, or none.
mkhome "[metrics]
textfile = $T/node/runner.prom"
mkdir -p "$T/node"
job t <<JOB
[job]
agent = fake
symbols = OK-1
JOB
r run
check "[metrics] textfile: written there" test -s "$T/node/runner.prom"
check "[metrics] textfile: not in logs/" test ! -e "$H/logs/runner.prom"
mkhome "[metrics]
textfile ="
job t <<JOB
[job]
agent = fake
symbols = OK-2
JOB
r run
is "$rc" 0 "[metrics] textfile = (empty): runs"
check "[metrics] textfile = (empty): no file" test ! -e "$H/logs/runner.prom"
mkhome "[metrics]
textfile = $T/nodir/runner.prom"
job t <<JOB
[job]
agent = fake
symbols = OK-3
JOB
r run
is "$rc" 0 "a textfile that cannot be written: the run goes on"
like "$(cat "$T/err")" "warning: $T/nodir/runner.prom: No such file" "and says why, once"
is "$(grep -c 'runner.prom' "$T/err")" 1 "once"

done_testing
