#!/bin/sh
# Classification by stderr patterns: the built-in set, [classify] and
# [classify NAME] of the configuration.
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

done_testing
