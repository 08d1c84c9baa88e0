#!/bin/sh
# What people and scripts see: counts in words ("1 error", "2 errors").
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
like "$(cat "$T/out")" '1 seen in 24 h: 0 healthy, 1 paused, 1 circuit open$' "status: 1 circuit open"
r retry-failed one --no-wait
like "$(cat "$T/out")" '^batch one: 1 failed item queued again;' "retry-failed: 1 failed item"
like "$(cat "$H/logs/one.log")" 'retry-failed: 1 failed item queued again$' "log: 1 failed item"
grep -Eq '[^0-9]1 (items|errors|symbols|circuits|attempts|members|matches|times|failed items)\b' \
	"$H/logs/one.log" "$T/out" "$T/err"
is "$?" 1 "no '1 items' anywhere in what was shown"

done_testing
