#!/bin/sh
# run: from a job file in spool/ to a final batch; outcomes, categories,
# batch.json (SPEC 7), the log, show, list and the exit status.
. "${RUNNER_SRC:-.}/tests/lib.sh"

mkhome
job nightly <<JOB
[job]
agent = fake
id = nightly-1
name = nightly test
origin = nightly
timeframe = 1d
start = 2024-01-01
end = 2024-12-31
symbols = OK-A OK-B, EXIT-65-A EXIT-66-A EXIT-64-A EXIT-70-A EXIT-3-A
          SEGV-A STDERR-X RESULT-parameter_error-A OK-A
max_attempts = 1
[params]
fast = 10
slow = 50
JOB
r run
is "$rc" 1 "run exits 1 when some item failed"
check "job file left spool/" test ! -e "$H/spool/nightly.job"
check "claimed byte for byte into job.ini" test -s "$H/batches/nightly-1/job.ini"
B=$H/batches/nightly-1/batch.json
check "batch.json written" test -s "$B"
is "$(jq "$B" '$d->{status}')" partial "status partial"
is "$(jq "$B" '$d->{total_items}')" 10 "duplicate symbol run once (10 items)"
is "$(jq "$B" '$d->{succeeded_items}')" 2 "2 succeeded"
is "$(jq "$B" '$d->{failed_items}')" 8 "8 failed"
is "$(jq "$B" '$d->{schema_version}')" 1 "schema_version 1"
is "$(jq "$B" '$d->{job_file}')" nightly.job "job_file is the original name"
like "$(jq "$B" '$d->{job_sha256}')" '^[0-9a-f]{64}$' "job_sha256"
like "$(jq "$B" '$d->{created_at}')" '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z$' "created_at RFC 3339 UTC ms"
like "$(jq "$B" '$d->{completed_at}')" 'Z$' "completed_at set when final"
is "$(jq "$B" '$d->{source}')" vendor "source from the agent"
is "$(jq "$B" '$d->{configuration}{params}{fast}')" 10 "params kept"
is "$(jq "$B" '$d->{configuration}{concurrency}')" null "concurrency null when not set"
is "$(jq "$B" '$d->{configuration}{max_attempts}')" 1 "max_attempts from the job"
is "$(jq "$B" 'join(",", @{$d->{configuration}{retry_delays_s}})')" "0.1,0.2" "retry delays"
is "$(jq "$B" '$d->{error_summary}{data_error}')" 3 "error_summary data_error (65, 66, stderr words)"
is "$(jq "$B" '$d->{error_summary}{parameter_error}')" 2 "error_summary parameter_error (64, result JSON)"
is "$(jq "$B" '$d->{error_summary}{engine_error}')" 2 "error_summary engine_error (70, SIGSEGV)"
is "$(jq "$B" '$d->{error_summary}{unknown}')" 1 "error_summary unknown (exit 3)"
cat_of() { jq "$B" "(grep { \$_->{symbol} eq '$1' } @{\$d->{items}})[0]{$2}"; }
is "$(cat_of EXIT-65-A error_category)" data_error "exit 65 -> data_error"
is "$(cat_of EXIT-66-A error_category)" data_error "exit 66 -> data_error"
is "$(cat_of EXIT-64-A error_category)" parameter_error "exit 64 -> parameter_error"
is "$(cat_of EXIT-70-A error_category)" engine_error "exit 70 -> engine_error"
is "$(cat_of SEGV-A error_category)" engine_error "SIGSEGV -> engine_error"
is "$(cat_of SEGV-A signal)" SIGSEGV "signal recorded"
is "$(cat_of SEGV-A exit_code)" null "no exit code for a signal death"
is "$(cat_of STDERR-X error_category)" data_error "stderr 'no data' -> data_error"
is "$(cat_of STDERR-X error_message)" "no data available for STDERR-X" "message: last stderr line"
is "$(cat_of RESULT-parameter_error-A error_category)" parameter_error "result JSON category"
is "$(cat_of RESULT-parameter_error-A error_type)" VendorError "error_type from result"
is "$(cat_of RESULT-parameter_error-A error_message)" "vendor said no" "message from result"
is "$(cat_of RESULT-parameter_error-A source)" acme "source from result"
is "$(cat_of EXIT-3-A error_category)" unknown "exit 3 -> unknown"
is "$(cat_of EXIT-3-A error_message)" "failing with 3" "message never empty"
is "$(cat_of OK-A matches)" 7 "matches from result"
is "$(cat_of OK-A exit_code)" 0 "exit_code 0"
is "$(cat_of OK-A error_message)" null "no error for a success"
is "$(cat_of OK-A next_retry_at)" null "next_retry_at null"
is "$(jq "$B" '$d->{items}[0]{attempt_log}[0]{outcome}')" succeeded "attempt_log outcome"
is "$(jq "$B" 'scalar keys %{$d->{items}[0]}')" 18 "every item field present"
is "$(jq "$B" '$d->{items}[0]{metrics}{sharpe}')" 1.5 "an item's metrics (its last result's), flat"
is "$(jq "$B" 'scalar keys %{$d->{items}[0]{attempt_log}[0]}')" 16 "every attempt field present"
is "$(jq "$B" '$d->{items}[0]{attempt_log}[0]{stdout_bytes}')" 8 "attempt stdout_bytes"
is "$(jq "$B" '$d->{items}[0]{attempt_log}[0]{result}{matches}')" 7 "attempt result: the result JSON kept"
is "$(jq "$B" 'exists $d->{items}[0]{attempt_log}[0]{warning} ? $d->{items}[0]{attempt_log}[0]{warning} // "null" : "absent"')" null "attempt warning: null when none"
is "$(jq "$B" 'join(",", sort keys %$d)')" "agent,batch_id,cancelled_items,completed_at,configuration,created_at,error_summary,failed_items,failure_groups,items,job_file,job_sha256,name,origin,paused_items,pending_items,performance,running_items,schema_version,source,started_at,status,succeeded_items,total_items" "every top-level field present"
is "$(jq "$B" 'join(",", sort keys %{$d->{performance}})')" "busy_seconds,cpu_system_seconds,cpu_user_seconds,duration_seconds,items_per_second,latency_ms,max_rss_kb" "performance fields (busy_seconds beside SPEC 7's)"
check "no file or directory per item" test ! -e "$H/batches/nightly-1/items"
check "no result file left" test -z "$(ls "$H/batches/nightly-1/tmp")"
is "$("$RUNNER" -C "$H" output nightly-1 OK-A)" "ok OK-A" "stdout captured"
is "$("$RUNNER" -C "$H" output nightly-1 EXIT-3-A --stderr)" "failing with 3" "stderr captured"

L=$H/logs/nightly-1.log
like "$(head -1 "$L")" "claimed nightly.job as batch nightly-1: 10 symbols" "log: claimed"
like "$(cat "$L")" "started: 10 items" "log: started"
like "$(cat "$L")" "OK-A succeeded in [0-9.]+m?s \(attempt 1, 7 matches\)" "log: item with outcome and duration"
like "$(cat "$L")" "EXIT-65-A failed in .*data_error: failing with 65" "log: failure with category"
like "$(tail -1 "$L")" "batch partial: 10 items processed .*8 errors.*14 matches, total time" "log: summary"

r show nightly-1
is "$rc" 0 "show exits 0"
like "$(cat "$T/out")" "status +partial" "show: status"
like "$(cat "$T/out")" "10 total: 2 succeeded, 8 failed" "show: counts"
r show nightly-1 --failed
like "$(cat "$T/out")" "EXIT-64-A +failed" "show --failed lists failed items"
r show nightly-1 --json
is "$(jq "$T/out" '$d->{batch_id}')" nightly-1 "show --json is batch.json"
r show no-such-batch
is "$rc" 66 "show of an unknown batch exits 66"
r show ../etc
is "$rc" 66 "show refuses a traversal id"

job second <<JOB
[job]
agent = fake
symbols = OK-C
priority = 5
JOB
r run --json
is "$rc" 0 "all succeeded: exit 0"
sed -n 1p "$T/out" >"$T/ev1"
sed -n 2p "$T/out" >"$T/ev2"
is "$(jq "$T/ev1" '$d->{event}')" progress "--json progress event"
is "$(jq "$T/ev1" '$d->{completed}.",".$d->{total}.",".$d->{symbol}.",".$d->{state}')" "1,1,OK-C,succeeded" "progress event fields"
like "$(jq "$T/ev1" '$d->{batch_id}')" '^batch-[0-9a-f]{8}$' "generated id batch-XXXXXXXX"
is "$(jq "$T/ev2" '$d->{event}.",".$d->{status}')" "batch,completed" "then the batch's final event"
r list
like "$(sed -n 2p "$T/out")" "^batch-[0-9a-f]{8} +completed" "list: newest first"
like "$(sed -n 3p "$T/out")" "^nightly-1 +partial" "list: then the older"
r list --status partial --json
is "$(jq "$T/out" 'scalar @$d')" 1 "list --status filters"
is "$(jq "$T/out" '$d->[0]{batch_id}')" nightly-1 "list --json entries"
r list --limit 1 --json
is "$(jq "$T/out" 'scalar @$d')" 1 "list --limit"
r list --since 2999-01-01 --json
is "$(jq "$T/out" 'scalar @$d')" 0 "list --since in the future"
r list --agent nobody --json
is "$(jq "$T/out" 'scalar @$d')" 0 "list --agent filters"
r list --since yesterday
is "$rc" 64 "list: bad time is a usage error"

# A named job file outside spool/ is claimed from a copy and left in place.
cat >"$T/mine.job" <<JOB
[job]
agent = fake
symbols = OK-D
JOB
r run "$T/mine.job"
is "$rc" 0 "run FILE outside spool"
check "the named file is left alone" test -f "$T/mine.job"
r run "$T/mine.job"
like "$(cat "$T/err")" "duplicate of batch-" "same bytes again: duplicate"
printf '[job]\nagent = fake\nsymbols = bad/sym\n' >"$T/bad.job"
r run "$T/bad.job"
is "$rc" 65 "run of an invalid named job exits 65"
like "$(cat "$T/err")" "bad.job:3: .*invalid symbol" "with file:line"

r nosuchcommand
is "$rc" 64 "unknown command: 64"
r --version
like "$(cat "$T/out")" "^runner [0-9]" "--version"
for c in run check show list retry-failed cancel; do
	r $c --help
	is "$rc" 0 "$c --help"
done
done_testing
