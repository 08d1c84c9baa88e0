#!/bin/sh
# Retries (SPEC 6.2): retry_on, max_attempts, backoff delays, retryable and
# retry_after from the result; retry-failed as new attempts of the batch.
. "${RUNNER_SRC:-.}/tests/lib.sh"

item() { jq "$(bjson)" "(grep { \$_->{symbol} eq '$1' } @{\$d->{items}})[0]{$2}"; }

mkhome
job r <<JOB
[job]
agent = fake
id = retries
symbols = FLAKY-3-A FLAKY-9-B EXIT-65-C RETRYABLE-D
max_attempts = 3
JOB
r run
is "$rc" 1 "some items failed"
is "$(item FLAKY-3-A state)" succeeded "engine_error retried until it succeeds"
is "$(item FLAKY-3-A attempts)" 3 "three attempts"
is "$(jq "$(bjson)" 'join(",", map { $_->{outcome} } @{$d->{items}[0]{attempt_log}})')" "failed,failed,succeeded" "attempt_log keeps every attempt"
is "$(item FLAKY-9-B state)" failed "gives up after max_attempts"
is "$(item FLAKY-9-B attempts)" 3 "max_attempts = 3"
is "$(item EXIT-65-C attempts)" 1 "data_error is not in retry_on: one attempt"
is "$(item RETRYABLE-D attempts)" 3 "error.retryable true retries a parameter_error"
# Backoff: attempts 2 and 3 wait 0.1 s and 0.2 s (jitter 0) after the failure.
gap() { jq "$(bjson)" "my \$l=(grep { \$_->{symbol} eq 'FLAKY-9-B' } @{\$d->{items}})[0]{attempt_log}; use Time::Local; sub t { my (\$y,\$m,\$dd,\$H,\$M,\$S,\$ms)=\$_[0]=~/(\\d+)-(\\d+)-(\\d+)T(\\d+):(\\d+):(\\d+)\\.(\\d+)/; timegm(\$S,\$M,\$H,\$dd,\$m-1,\$y)*1000+\$ms } t(\$l->[$1]{started_at}) - t(\$l->[$1-1]{completed_at})"; }
g1=$(gap 1); g2=$(gap 2)
check "first retry waits the first delay (${g1} ms)" test "$g1" -ge 95 -a "$g1" -lt 1000
check "second retry waits the second delay (${g2} ms)" test "$g2" -ge 195 -a "$g2" -lt 1200

# retry_after in the result is honoured when longer than the delay.
mkhome
job ra <<JOB
[job]
agent = fake
symbols = RATELIMIT-A
max_attempts = 2
JOB
r run
l=$(jq "$(bjson)" '$d->{items}[0]{attempt_log}')
g=$(jq "$(bjson)" 'use Time::Local; sub t { my ($y,$m,$dd,$H,$M,$S,$ms)=$_[0]=~/(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)\.(\d+)/; timegm($S,$M,$H,$dd,$m-1,$y)*1000+$ms } my $l=$d->{items}[0]{attempt_log}; t($l->[1]{started_at}) - t($l->[0]{completed_at})')
check "retry_after 1 s honoured (${g} ms)" test "$g" -ge 990
is "$(item RATELIMIT-A error_type)" RateLimitError "error_type"

# retry-failed: only the failed items, as new attempts of the same batch.
mkhome
job rf <<JOB
[job]
agent = fake
id = rf
symbols = OK-A EXIT-65-B EXIT-64-C
JOB
r run
is "$(item EXIT-65-B state)" failed "B failed"
r retry-failed rf --category parameter_error
is "$rc" 1 "retry-failed exits 1 while items still fail"
is "$(item EXIT-64-C attempts)" 2 "--category: the parameter_error item ran again"
is "$(item EXIT-65-B attempts)" 1 "other categories untouched"
is "$(item OK-A attempts)" 1 "succeeded items untouched"
r --retry-failed rf --symbol EXIT-65-B
is "$(item EXIT-65-B attempts)" 2 "--retry-failed synonym with --symbol"
is "$(item EXIT-64-C attempts)" 2 "other symbols untouched"
is "$(jq "$(bjson)" '$d->{status}')" partial "batch final again"
# Fix the "vendor": EXIT items now succeed when a marker file exists.
cat >"$H/conf/runner.ini" <<CONF
[agent fake]
command = /bin/sh -c 'exit 0' fixed
max_concurrent = 2
CONF
r retry-failed rf
is "$rc" 0 "after the fix every item succeeds: exit 0"
is "$(jq "$(bjson)" '$d->{status}')" completed "completed"
is "$(item EXIT-65-B attempts)" 3 "third attempt of B"
is "$(item EXIT-65-B attempt_log)" "$(item EXIT-65-B attempt_log)" "attempt_log kept"
like "$(cat "$H/logs/rf.log")" "retry-failed: 1 failed item queued again" "log: retry-failed"
r retry-failed rf
is "$rc" 0 "nothing left to retry: exit 0"
like "$(cat "$T/out")" "nothing to retry" "says so"
r retry-failed nope
is "$rc" 66 "unknown batch: 66"
r retry-failed rf --category bogus
is "$rc" 64 "unknown category: 64"
r retry-failed rf --no-wait
is "$rc" 0 "--no-wait"
done_testing
