#!/bin/sh
# The child (SPEC 6.1): argv, environment, fds, cwd, limits, timeouts,
# process groups, output capture.
. "${RUNNER_SRC:-.}/tests/lib.sh"

item() { jq "$(bjson)" "(grep { \$_->{symbol} eq '$1' } @{\$d->{items}})[0]{$2}"; }
out() { "$RUNNER" -C "$H" output "$(batch_id)" "$1" --attempt "${2:-1}"; }

mkhome "env = EXTRA=yes TZ=UTC
memory_limit = 64M"
job e <<JOB
[job]
agent = fake
symbols = ENV-A FDS-A MEM-A
timeframe = 1h
start = 2024-01-02
end = 2024-03-04
source = koyfin
max_attempts = 1
[params]
fast_ma = 5
JOB
export SECRET_TOKEN=leak
r run
unset SECRET_TOKEN
envout=$(out ENV-A)
bid=$(batch_id)
like "$envout" "^RUNNER_BATCH_ID=$bid\$" "RUNNER_BATCH_ID"
like "$envout" "^RUNNER_SYMBOL=ENV-A\$" "RUNNER_SYMBOL"
like "$envout" "^RUNNER_AGENT=fake\$" "RUNNER_AGENT"
like "$envout" "^RUNNER_ATTEMPT=1\$" "RUNNER_ATTEMPT"
like "$envout" "^RUNNER_TIMEFRAME=1h\$" "RUNNER_TIMEFRAME"
like "$envout" "^RUNNER_START=2024-01-02\$" "RUNNER_START"
like "$envout" "^RUNNER_END=2024-03-04\$" "RUNNER_END"
like "$envout" "^RUNNER_SOURCE=koyfin\$" "RUNNER_SOURCE (job overrides agent)"
like "$envout" "^RUNNER_PARAM_FAST_MA=5\$" "RUNNER_PARAM_<KEY> upper-cased"
like "$envout" "^RUNNER_RESULT=/.*/batches/$bid/tmp/ENV-A.1.json\$" "RUNNER_RESULT"
like "$envout" "^RUNNER_CHECKPOINT=/.*/batches/$bid/checkpoints/ENV-A\$" "RUNNER_CHECKPOINT"
like "$envout" "^EXTRA=yes\$" "agent env added"
like "$envout" "^PATH=" "PATH kept"
check "the runner's other environment is scrubbed" sh -c "! printf '%s' \"\$1\" | grep -q SECRET_TOKEN" - "$envout"
like "$envout" "^PWD=$(cd "$H" && pwd -P)\$|^PWD=$H\$" "cwd is the home"
fds=$(out FDS-A | sort -n | tr '\n' ' ')
is "$fds" "0 1 2 3 " "only stdin/stdout/stderr and the slot lock (fd 3) are inherited"
is "$(item MEM-A error_category)" memory_error "memory_limit reached -> memory_error"
like "$(item MEM-A error_message)" "Cannot allocate memory" "with the agent's message"

# Timeouts: SIGTERM to the group, SIGKILL after kill_grace; grandchildren die.
mkhome
job t <<JOB
[job]
agent = fake
symbols = HANG-A TERMIGNORE-A GRANDHANG-A GRAND-A
timeout = 1s
max_attempts = 1
JOB
start=$(date +%s)
r run
took=$(( $(date +%s) - start ))
is "$rc" 1 "timeouts fail the items"
check "finished within timeout + grace (took ${took}s)" test "$took" -le 6
is "$(item HANG-A error_category)" timeout "hang -> timeout"
like "$(item HANG-A error_message)" "timed out after 1" "timeout message"
is "$(item HANG-A signal)" SIGTERM "SIGTERM ended it"
is "$(item TERMIGNORE-A error_category)" timeout "SIGTERM ignored -> still timeout"
is "$(item TERMIGNORE-A signal)" SIGKILL "SIGKILL after the grace period"
is "$(item GRAND-A state)" succeeded "an agent leaving a grandchild succeeds"
sleep 0.2
left=$(grep -l "RUNNER_BATCH_ID=$(batch_id)" /proc/[0-9]*/environ 2>/dev/null | wc -l)
is "$left" 0 "no child or grandchild outlives its item"

# Output of megabytes: all of it kept (the lane file, through a pipe).
mkhome
job big <<JOB
[job]
agent = fake
symbols = BIG-20-A
JOB
r run
is "$rc" 0 "20 MB of stdout"
is "$(out BIG-20-A | wc -c)" 20971520 "all of it kept, and runner output gives it back"

# launcher prefix, {symbol} substitution, argv never through a shell.
mkhome "launcher = /usr/bin/env RUNNER_LAUNCHED=1
[agent subst]
command = $SRC/tests/agents/fake --flag=x '\$(touch $T/pwned)' 'a;b|c' ARGS-{symbol}-y
max_concurrent = 2"
job l <<JOB
[job]
agent = subst
symbols = Z
JOB
r run
a=$(out Z | tr '\n' '|')
is "$a" "--flag=x|\$(touch $T/pwned)|a;b|c|ARGS-Z-y|" "{symbol} substituted, metacharacters passed literally"
check "nothing ran through a shell" test ! -e "$T/pwned"
job l2 <<JOB
[job]
agent = fake
id = launched
symbols = ENV-L
JOB
r run
like "$("$RUNNER" -C "$H" output launched ENV-L)" "^RUNNER_LAUNCHED=1\$" "launcher prefix runs the command"

# A command that cannot be executed: engine_error, not retried.
mkhome "[agent missing]
command = $T/no-such-binary
max_concurrent = 1"
job m <<JOB
[job]
agent = missing
symbols = A
max_attempts = 3
JOB
r run
is "$rc" 1 "missing binary fails"
is "$(item A error_category)" engine_error "exec failure -> engine_error"
like "$(item A error_message)" "cannot execute .*no-such-binary: No such file" "exec failure message"
is "$(item A attempts)" 1 "not retried"

# cpu_limit: RLIMIT_CPU
mkhome "cpu_limit = 1s
[agent spin]
command = /bin/sh -c 'while :; do :; done' spin
cpu_limit = 1s
timeout = 20s"
job c <<JOB
[job]
agent = spin
symbols = A
max_attempts = 1
JOB
r run
like "$(item A signal)" "SIGXCPU|SIGKILL" "cpu_limit stops a spinning child"
done_testing
