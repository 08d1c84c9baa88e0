#!/bin/sh
# Classification by stderr patterns (the built-in set, [classify] and
# [classify NAME] of the configuration) and the warning of an attempt whose
# result JSON could not be read, in batch.json, show, the log and the report.
. "${RUNNER_SRC:-.}/tests/lib.sh"

item() { jq "$(bjson)" "(grep { \$_->{symbol} eq '$1' } @{\$d->{items}})[0]{$2}"; }
att() { jq "$(bjson)" "(grep { \$_->{symbol} eq '$1' } @{\$d->{items}})[0]{attempt_log}[$2]{$3}"; }

# ---- the built-in patterns; what is not in retry_on runs once ----
mkhome
job c <<JOB
[job]
agent = fake
id = cls
symbols = PYERR-FileNotFoundError-A PYERR-KeyError-B PYERR-ValueError-C
          DELISTED-D SESSION-9-E PYERR-ConnectionRefusedError-F
          PYERR-ZeroDivisionError-G
max_attempts = 3
JOB
r run
is "$rc" 1 "the batch ran (its items failed)"
for s in PYERR-FileNotFoundError-A PYERR-KeyError-B PYERR-ValueError-C DELISTED-D; do
	is "$(item $s error_category)/$(item $s attempts)" data_error/1 \
		"$s: data_error, not retried"
done
is "$(item DELISTED-D error_message)" \
	"['DELISTED-D']: No price data found, symbol may be delisted (period=1y)" \
	"DELISTED-D: the vendor's line is the message"
is "$(item SESSION-9-E error_category)/$(item SESSION-9-E attempts)" \
	parameter_error/1 "'invalid session': parameter_error by default"
is "$(item PYERR-ConnectionRefusedError-F error_category)/$(item PYERR-ConnectionRefusedError-F attempts)" \
	timeout/3 "Connection refused: timeout, retried max_attempts times"
is "$(item PYERR-ZeroDivisionError-G error_category)/$(item PYERR-ZeroDivisionError-G attempts)" \
	unknown/3 "a Python error the set does not name: unknown, retried"

# ---- an agent's own patterns, the home's, builtin = no ----
mkhome '[classify]
data_error = ZeroDivision*Error
[classify fake]
timeout = "invalid session"
'
job o <<JOB
[job]
agent = fake
id = ovr
symbols = SESSION-2-A PYERR-ZeroDivisionError-B PYERR-KeyError-C
max_attempts = 3
JOB
r run
is "$rc" 1 "override: the batch ran (two items failed)"
is "$(item SESSION-2-A state)/$(item SESSION-2-A attempts)" succeeded/2 \
	"[classify fake] timeout = \"invalid session\": retried, then succeeded"
is "$(att SESSION-2-A 0 error_category)" timeout "... its first attempt was a timeout"
is "$(item PYERR-ZeroDivisionError-B error_category)/$(item PYERR-ZeroDivisionError-B attempts)" \
	data_error/1 "[classify] data_error pattern of the home: not retried"
is "$(item PYERR-KeyError-C error_category)" data_error "the built-ins still apply"

mkhome '[classify fake]
builtin = no
'
job n <<JOB
[job]
agent = fake
id = nob
symbols = PYERR-KeyError-A
max_attempts = 2
JOB
r run
is "$(item PYERR-KeyError-A error_category)/$(item PYERR-KeyError-A attempts)" unknown/2 \
	"builtin = no: a KeyError is unknown again, and retried"

# ---- a bad pattern is a configuration error ----
mkhome '[classify]
timeout = "Connection refused" ""
'
r run
is "$rc" 78 "an empty pattern: exit 78"
like "$(cat "$T/err")" "^runner: .*/conf/runner.ini:[0-9]+: timeout: '': empty pattern$" \
	"... with FILE:LINE: message"
mkhome '[classify nosuch]
timeout = x
'
r run
is "$rc" 78 "[classify NAME] of an agent that does not exist: exit 78"
like "$(cat "$T/err")" "runner.ini:[0-9]+: \[classify nosuch\]: no agent 'nosuch' is defined" \
	"... names it"

# ---- an unreadable result JSON: the outcome stands, with a warning ----
mkhome
job w <<JOB
[job]
agent = fake
id = warn
symbols = TRUNC-A TRUNCFAIL-B HUGE-C OK-D
max_attempts = 1
JOB
r run
is "$(item TRUNC-A state)" succeeded "a truncated result after exit 0: succeeded"
is "$(item TRUNC-A matches)" null "... its matches are lost"
is "$(att TRUNC-A 0 warning)" \
	"result JSON unreadable: truncated after 49 bytes; its figures are lost" \
	"... batch.json: the attempt's warning"
is "$(item TRUNCFAIL-B error_category)" data_error \
	"a truncated result of a failure: classified by stderr (KeyError)"
is "$(att TRUNCFAIL-B 0 warning)" \
	"result JSON unreadable: truncated after 52 bytes; its error details are lost (classified by exit status and stderr)" \
	"... and warned"
is "$(item HUGE-C state)" succeeded "a result over 1 MiB: succeeded"
like "$(att HUGE-C 0 warning)" \
	"^result JSON unreadable: 157289[0-9] bytes, over the 1 MiB limit; its figures are lost$" \
	"... warned, not silently ignored"
is "$(att OK-D 0 warning)" null "a good result: no warning"

r show warn
like "$(cat "$T/out")" "warnings    3 attempts with a warning:" "show: how many"
like "$(cat "$T/out")" "TRUNC-A attempt 1: result JSON unreadable: truncated after 49 bytes" \
	"show: which and why"
r show warn --items
like "$(grep '^  TRUNC-A ' "$T/out")" "succeeded.*warning: result JSON unreadable" \
	"show --items: on the item's line"
r show warn --json
perl -MJSON::PP -e 'local $/; JSON::PP->new->decode(<STDIN>)' <"$T/out"
ok $? "show --json: valid JSON"
cp "$T/out" "$T/show.json"
is "$(jq "$T/show.json" '(grep { $_->{symbol} eq "TRUNC-A" } @{$d->{items}})[0]{attempt_log}[0]{warning}')" \
	"result JSON unreadable: truncated after 49 bytes; its figures are lost" \
	"show --json: the attempt's warning"

like "$(grep ' TRUNC-A ' "$H/logs/warn.log")" \
	"TRUNC-A succeeded in .* \(attempt 1\); warning: result JSON unreadable: truncated after 49 bytes; its figures are lost$" \
	"log: the warning on the attempt's line"
like "$(grep ' TRUNCFAIL-B ' "$H/logs/warn.log")" \
	"failed .*: data_error: KeyError: 'close'; warning: result JSON unreadable" \
	"log: on a failure's line too"

r report warn -o "$T/r.html"
is "$rc" 0 "report"
like "$(cat "$T/r.html")" '<th>warnings</th><td>3 attempts with a warning' "report: counted in the summary"
like "$(cat "$T/r.html")" '<section id="warnings">' "report: a Warnings section"
like "$(cat "$T/r.html")" 'truncated after 49 bytes; its figures are lost' "report: the warning's text"
is "$(grep -c '; warning: ' "$H/logs/warn.log")" 3 "log: three warned attempts"

done_testing
