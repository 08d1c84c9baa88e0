#!/bin/sh
# What people and scripts see: run --json (one event per item end, counts
# strictly increasing, a final event per batch, a batch stopped by a
# failure group included), status SYMBOL, list of a batch that has just
# started, groups with none, counts in words ("1 error", "2 errors").
. "${RUNNER_SRC:-.}/tests/lib.sh"

CAPDIR=$T/cap
mkdir -p "$CAPDIR"
wait_for() { i=0; while [ $i -lt 600 ]; do "$@" && return 0; sleep 0.05; i=$((i + 1)); done; return 1; }
# perl over each line of a file (JSON objects, one a line): $e is the list.
events() {
	perl -MJSON::PP -e '
		open my $f, "<", $ARGV[0] or die "$ARGV[0]: $!";
		my @e = map { JSON::PP->new->decode($_) } grep { /\S/ } <$f>;
		my $v = eval $ARGV[1]; die $@ if $@;
		print defined $v ? $v : "null";
	' "$1" "$2"
}

# --- run --json: one event per item, strictly increasing ---------------------
mkhome
syms=
for k in 1 2 3 4 5 6 7 8; do syms="$syms OK-$k"; done
for k in 1 2 3 4; do syms="$syms EXIT-65-$k FLAKY-2-$k SLEEP-0.1-$k"; done
job mixed <<JOB
[job]
agent = fake
id = mixed
concurrency = 4
symbols = $syms
JOB
r run --json
is "$rc" 1 "run --json: exit 1 (some items failed)"
cp "$T/out" "$T/mixed.json"
is "$(events "$T/mixed.json" 'scalar grep { $_->{event} eq "progress" } @e')" 20 "one progress event per item"
is "$(events "$T/mixed.json" 'join ",", map { $_->{completed} } grep { $_->{event} eq "progress" } @e')" \
	"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20" "completed counts 1..20, strictly increasing"
is "$(events "$T/mixed.json" 'scalar grep { $_->{event} eq "progress" && !(exists $_->{time} && exists $_->{symbol} && exists $_->{attempt} && exists $_->{outcome} && exists $_->{category} && exists $_->{state} && exists $_->{batch_id} && exists $_->{total}) } @e')" 0 \
	"every event has time, symbol, attempt, outcome, category (and the old keys)"
is "$(events "$T/mixed.json" 'scalar grep { $_->{event} eq "progress" && $_->{time} !~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/ } @e')" 0 "time is RFC 3339 with milliseconds"
ev() { events "$T/mixed.json" "my (\$x) = grep { (\$_->{symbol} // '') eq '$1' } @e; join '|', map { \$x->{\$_} // 'null' } qw(state attempt outcome category)"; }
is "$(ev OK-3)" "succeeded|1|succeeded|null" "a success: attempt 1, outcome succeeded, category null"
is "$(ev FLAKY-2-2)" "succeeded|2|succeeded|null" "a retried success: attempt 2"
is "$(ev EXIT-65-4)" "failed|1|failed|data_error" "a failure: its category"
is "$(events "$T/mixed.json" 'scalar grep { $_->{event} eq "batch" } @e')" 1 "one final batch event"
is "$(events "$T/mixed.json" '$e[-1]{event}')" batch "  and it comes last"
is "$(events "$T/mixed.json" 'join "|", map { $e[-1]{$_} // "null" } qw(batch_id status total succeeded failed cancelled paused)')" \
	"mixed|partial|20|16|4|0|0" "  batch_id, status and counts"
like "$(events "$T/mixed.json" '$e[-1]{time}')" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z$' "  and its time"

# --- status SYMBOL ------------------------------------------------------------
r status OK-3
is "$rc" 0 "status SYMBOL: exit 0"
like "$(cat "$T/out")" '^SYMBOL ' "  a header"
is "$(tail -n +2 "$T/out" | awk '{ print $1 }' | tr '\n' ' ')" "OK-3 " "  and that symbol only"
r status --json EXIT-65-1 OK-3
is "$rc" 0 "status --json SYMBOL...: exit 0"
is "$(jq "$T/out" 'join ",", map { "$_->{symbol}:$_->{state}" } @$d')" "EXIT-65-1:failed,OK-3:idle" "  an array of those symbols, in the order named"
r status OK-3 NOSUCH
is "$rc" 66 "status of an unknown symbol: exit 66"
is "$(cat "$T/err")" "runner: status: NOSUCH: no such symbol (not seen by this home)" "  a one-line error"
like "$(cat "$T/out")" 'OK-3' "  the known ones still shown"

# --- groups with none ---------------------------------------------------------
r groups
is "$rc:$(cat "$T/out")" "0:no failure groups" "groups with none says so"
r groups --json
is "$rc:$(cat "$T/out")" "0:[]" "groups --json with none: []"

# --- plurals ------------------------------------------------------------------
mkhome "[breaker]
threshold = 1"
job one <<JOB
[job]
agent = fake
id = one
symbols = EXIT-65-A
JOB
r check "$H/spool/one.job"
like "$(cat "$T/out")" "ok: 1 symbol, agent fake" "check: 1 symbol"
r run
is "$rc" 1 "a batch of one failed item"
like "$(cat "$H/logs/one.log")" 'as batch one: 1 symbol,' "log: claimed ... 1 symbol"
like "$(cat "$H/logs/one.log")" 'started: 1 item$' "log: started: 1 item"
like "$(cat "$H/logs/one.log")" '1 item processed \(0 succeeded, 1 failed, 0 cancelled\), 1 error \(data_error 1\), 0 matches' "log: 1 item processed, 1 error"
like "$(cat "$H/logs/alerts.jsonl")" 'EXIT-65-A processing failed 1 time"' "alert: failed 1 time"
r status
like "$(cat "$T/out")" '1 seen in 24 h: 0 healthy, 0 paused, 1 circuit open$' "status: 1 circuit open"
r retry-failed one --no-wait
like "$(cat "$T/out")" '^batch one: 1 failed item queued again;' "retry-failed: 1 failed item"
like "$(cat "$H/logs/one.log")" 'retry-failed: 1 failed item queued again$' "log: 1 failed item"
grep -Eq '[^0-9]1 (items|errors|symbols|circuits|attempts|members|matches|times|failed items)\b' \
	"$H/logs/one.log" "$T/out" "$T/err"
is "$?" 1 "no '1 items' anywhere in what was shown"

# --- list of a batch that has just started ------------------------------------
mkhome
job started <<JOB
[job]
agent = fake
id = started
concurrency = 1
symbols = SLEEP-0.3-A HANG-B
JOB
$RUNNER -C "$H" run >"$T/started.out" 2>&1 &
rp=$!
# The runner's turn after the first spawn writes the new status; A's end
# is written when the runner reaps A, 0.3 s or more after that spawn.  The
# periodic write would come a second after the claim.
a_done() { grep -q 'SLEEP-0.3-A succeeded' "$H/logs/started.log" 2>/dev/null; }
check "the first item ended" wait_for a_done
r list --json
is "$(jq "$T/out" '$d->[0]{status}')" running "list shows the batch running right after its first spawn"
kill -TERM $rp
wait $rp

# --- a batch stopped by a failure group: a final event ------------------------
mkhome "max_concurrent = 3
source = koyfin
env = CAPDIR=$CAPDIR
[retry]
max_attempts = 5
[correlation]
window = 5m
min_group = 2"
touch "$CAPDIR/down"
job outage <<JOB
[job]
agent = fake
id = outage
symbols = VENDOR-1 VENDOR-2 VENDOR-3 VENDOR-4 VENDOR-5 VENDOR-6
JOB
r run --json
is "$rc" 1 "run --json of a batch stopped by a failure group: exit 1"
cp "$T/out" "$T/outage.json"
G=$(jq "$H/batches/outage/batch.json" '$d->{failure_groups}[0]{group_id}')
like "$G" '^grp-' "a failure group formed"
is "$(events "$T/outage.json" 'scalar grep { $_->{event} eq "batch" } @e')" 1 "a final batch event"
is "$(events "$T/outage.json" 'join "|", map { $e[-1]{$_} // "null" } qw(event batch_id status total paused)')" \
	"batch|outage|paused|6|6" "  status paused, 6 of 6 paused"
is "$(events "$T/outage.json" 'join ",", @{$e[-1]{groups}}')" "$G" "  the group id"
is "$(events "$T/outage.json" 'join ",", @{$e[-1]{resume}}')" "runner resume $G" "  the resume command"

done_testing
