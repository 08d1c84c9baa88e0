#!/bin/sh
# Slurm mode: batches run through `launcher = srun ...` on a real
# slurmctld + slurmd (a private single-node Slurm that scripts/slurm-test-up
# starts here and scripts/slurm-test-down stops).  Skipped, with the
# reason, where Slurm cannot be started (not root, no packages).
. "${RUNNER_SRC:-.}/tests/lib.sh"

# Outside $T (mode 0700): munged runs as its own user and must reach it.
S=$(mktemp -d "${TMPDIR:-/tmp}/runner-slurm.XXXXXX") && chmod 0755 "$S" || exit 1
trap '"$SRC/scripts/slurm-test-down" "$S"; rm -rf "$S"; cleanup' EXIT
if ! "$SRC/scripts/slurm-test-up" "$S" 2>"$T/slurm-up.err"; then
	echo "1..0 # SKIP Slurm cannot be started here: $(tail -1 "$T/slurm-up.err")"
	exit 0
fi
SLURM_CONF=$S/slurm.conf
export SLURM_CONF

CAP=$T/cap
mkdir -p "$CAP"
LAUNCH="launcher = srun --ntasks=1 --quiet"
# Steps may wait a few seconds to start when many are created at once:
# timeouts leave room for that.
base() {
	mkhome "$LAUNCH
env = CAPDIR=$CAP
$1
[retry]
max_attempts = 1
[correlation]
min_group = 100
${2:-}"
}
# Bounded waits on Slurm's own state (a job's end takes KillWait and a
# few seconds to be noted): at most 60 s.
wait_long() {
	_i=0
	while [ $_i -lt 600 ]; do "$@" && return 0; sleep 0.1; _i=$((_i + 1)); done
	return 1
}
no_jobs() { [ -z "$(squeue -h -o %i 2>/dev/null)" ]; }
steps() { squeue -h -s -o %i 2>/dev/null | grep -c '\.[0-9]'; }
no_local() { [ "$(grep -l "RUNNER_BATCH_ID=$1" /proc/[0-9]*/environ 2>/dev/null | wc -l)" = 0 ]; }
attempt() { item_in "$1" "$2" attempt_log | perl -MJSON::PP -e 'local $/; my $a = decode_json(<>); print $a->[-1]{'"$3"'} // "null"'; }

# ---- success, each failure category, and whose figures -------------------
base "timeout = 60s" "[agent hog]
command = perl -e '\$x = \"x\" x 300_000_000; sleep 30'
launcher = srun --ntasks=1 --quiet --mem=40M
timeout = 60s
[agent big]
command = perl -e '\$x = \"x\" x 50_000_000; exit 0'
launcher = srun --ntasks=1 --quiet
[agent gone]
command = /nonexistent/agent
launcher = srun --ntasks=1 --quiet
[agent nopart]
command = true
launcher = srun --ntasks=1 --quiet --partition=nosuchpart"
job a <<JOB
[job]
agent = fake
id = a1
symbols = OK-1 EXIT-65-A EXIT-64-A EXIT-70-A SEGV-1 STDERR-1 PYERR-KeyError-1
JOB
r run --no-progress
is "$rc" 1 "run: exit 1 (some failed)"
is "$(item_in a1 OK-1 state)" succeeded "OK through srun: succeeded"
is "$(item_in a1 OK-1 matches)" 7 "its result JSON read"
rss=$(attempt a1 OK-1 max_rss_kb)
check "max rss is the agent's ($rss KiB), not srun's (about 7.5 MiB)" test "$rss" -gt 0 -a "$rss" -lt 7000
is "$(item_in a1 EXIT-65-A error_category)" data_error "exit 65: data_error"
is "$(item_in a1 EXIT-65-A error_message)" "failing with 65" "exit 65: the agent's message, not srun's"
is "$(item_in a1 EXIT-64-A error_category)" parameter_error "exit 64: parameter_error"
is "$(item_in a1 EXIT-70-A error_category)" engine_error "exit 70: engine_error"
is "$(item_in a1 EXIT-70-A error_message)" "failing with 70" "exit 70: the agent's message"
is "$(attempt a1 EXIT-70-A exit_code)" 70 "exit 70: the agent's exit code"
is "$(attempt a1 SEGV-1 signal)" SIGSEGV "SIGSEGV: the agent's signal, not srun's exit code"
is "$(item_in a1 STDERR-1 error_category)" data_error "stderr words: data_error"
is "$(item_in a1 STDERR-1 error_message)" "no data available for STDERR-1" "stderr words: the agent's line"
is "$(item_in a1 PYERR-KeyError-1 error_category)" data_error "Python KeyError: data_error"
like "$($RUNNER -C "$H" output a1 EXIT-70-A --stderr)" "srun: error: .*Exited with exit code 70" \
	"srun's own line is kept in the output"

job b <<JOB
[job]
agent = big
id = b1
symbols = BIG-1
JOB
r run --no-progress
is "$(item_in b1 BIG-1 state)" succeeded "a 50 MB agent succeeded"
rss=$(attempt b1 BIG-1 max_rss_kb)
check "its max rss is the remote task's ($rss KiB >= 48 MiB)" test "$rss" -ge 49152

job h <<JOB
[job]
agent = hog
id = h1
symbols = HOG-1
JOB
r run --no-progress
is "$(item_in h1 HOG-1 error_category)" memory_error "a step Slurm kills for memory: memory_error"
like "$(item_in h1 HOG-1 error_message)" "exceeded memory limit" "its message is Slurm's reason"
like "$(attempt h1 HOG-1 warning)" "no end from the node .*figures are the launcher's" \
	"its warning: killed before the wrapper could report"

job g <<JOB
[job]
agent = gone
id = g1
symbols = GONE-1
JOB
r run --no-progress
is "$(item_in g1 GONE-1 error_category)" engine_error "agent missing on the node: engine_error"
like "$(item_in g1 GONE-1 error_message)" "cannot execute /nonexistent/agent" "its message names the agent, not srun"

job p <<JOB
[job]
agent = nopart
id = p1
symbols = P-1
JOB
r run --no-progress
is "$(item_in p1 P-1 error_category)" engine_error "the launcher fails before the agent: engine_error"
like "$(item_in p1 P-1 error_message)" "^srun: error: .*(partition|Partition)" "its message is srun's"
check "no job left after the batches" wait_long no_jobs

# ---- timeout: the remote task gets SIGTERM, then the step is killed ------
base "timeout = 6s"
job t <<JOB
[job]
agent = fake
id = t1
symbols = HANG-1 TERMIGNORE-1
JOB
r run --no-progress
is "$(item_in t1 HANG-1 error_category)" timeout "HANG: timeout"
is "$(attempt t1 HANG-1 signal)" SIGTERM "HANG: the agent itself got the SIGTERM"
is "$(item_in t1 TERMIGNORE-1 error_category)" timeout "TERMIGNORE: timeout"
check "no step or job left after the timeouts" wait_long no_jobs
check "no process of the batch left on the node" wait_long no_local t1

# ---- cancel --------------------------------------------------------------
base "timeout = 60s"
job c <<JOB
[job]
agent = fake
id = c1
symbols = GATE-1 GATE-2
JOB
$RUNNER -C "$H" run --no-progress >"$T/run.out" 2>&1 &
pid=$!
both() { test -f "$CAP/started.GATE-1" -a -f "$CAP/started.GATE-2"; }
check "two steps running" wait_long both
r cancel c1
is "$rc" 0 "cancel: exit 0"
wait $pid
is "$(jq "$H/batches/c1/batch.json" '$d->{status}')" cancelled "batch cancelled"
check "no step or job left after the cancel" wait_long no_jobs
check "no process of the batch left" wait_long no_local c1

# ---- SIGTERM to the runner -------------------------------------------------
rm -f "$CAP"/started.* "$CAP"/open.*
base "timeout = 60s"
job s <<JOB
[job]
agent = fake
id = s1
symbols = GATE-1 GATE-2
JOB
$RUNNER -C "$H" run --no-progress >"$T/run.out" 2>&1 &
pid=$!
check "two steps running" wait_long both
kill -TERM $pid
wait $pid
is "$?" 75 "SIGTERM: the run exits 75"
is "$(attempt s1 GATE-1 outcome)" interrupted "its attempts interrupted"
check "no step or job left after SIGTERM" wait_long no_jobs

# ---- kill -9 of the runner, then adoption ----------------------------------
# Tasks that ignore SIGTERM: a launcher killed with -9 leaves their steps
# (and srun's allocations) behind until someone cancels them.
base "timeout = 6s"
job k <<JOB
[job]
agent = fake
id = k1
symbols = TERMIGNORE-1 TERMIGNORE-2
JOB
$RUNNER -C "$H" run --no-progress >"$T/run.out" 2>&1 &
pid=$!
two_steps() { [ "$(steps)" -ge 2 ]; }
check "two steps running" wait_long two_steps
left=$(squeue -h -o %i | sort | tr '\n' ' ')
kill -9 $pid
wait $pid 2>/dev/null
is "$(steps)" 2 "after kill -9 the steps run on"
r run --no-progress
like "$(cat "$H/logs/k1.log")" "adopted by runner" "the next run adopts the batch"
is "$(item_in k1 TERMIGNORE-1 state)" failed "TERMIGNORE-1 ran again (timeout)"
gone() { for j in $left; do squeue -h -j "$j" -o %i 2>/dev/null | grep -q . && return 1; done; return 0; }
# Slurm may end a step whose srun is gone by itself, in time: that the
# adopter cancelled them is in slurmctld's log.
asked() { for j in $left; do grep -q "REQUEST_KILL_JOB JobId=$j " "$S/slurmctld.log" || return 1; done; }
check "the adopter cancelled the jobs the dead runner left ($left)" wait_long asked
check "they are gone" wait_long gone
check "no job left" wait_long no_jobs
check "no process of the batch left" wait_long no_local k1

# ---- kill -9 while srun still waits for its job ----------------------------
# No task has started, so no file names the job: the adopter cancels it by
# the name the runner gave it (SLURM_JOB_NAME).
base "timeout = 60s
launcher = srun --ntasks=1 --quiet --begin=now+600"
job w <<JOB
[job]
agent = fake
id = w1
symbols = OK-1
JOB
$RUNNER -C "$H" run --no-progress >"$T/run.out" 2>&1 &
pid=$!
pending() { [ -n "$(squeue -h -t PD -o %i)" ]; }
check "srun's job waits (--begin)" wait_long pending
like "$(squeue -h -t PD -o %j)" "^runner\.[0-9a-f]{8}\.w1\.OK-1\.1\$" "the job carries the attempt's name"
left=$(squeue -h -t PD -o %i)
kill -9 $pid
wait $pid 2>/dev/null
is "$(squeue -h -o %i)" "$left" "after kill -9 the job still waits, its srun gone"
sed -i 's/ --begin=now+600//' "$H/conf/runner.ini"
r run --no-progress
is "$(item_in w1 OK-1 state)" succeeded "the next run adopts the batch and runs the item"
check "the adopter cancelled the waiting job ($left) by its name" wait_long asked
check "no job left" wait_long no_jobs

# ---- inside an allocation: steps of the runner's own job -------------------
# A timeout kills the step, never the allocation the runner runs in: the
# items after it (one at a time) still run in it.
base "timeout = 6s
max_concurrent = 1
launcher = srun --ntasks=1 --quiet --exact"
job i <<JOB
[job]
agent = fake
id = i1
symbols = TERMIGNORE-1 OK-1 OK-2 OK-3
JOB
salloc --quiet -n2 "$RUNNER" -C "$H" run --no-progress >"$T/salloc.out" 2>&1
is "$?" 1 "salloc runner run: exit 1 (one timeout)"
is "$(jq "$H/batches/i1/batch.json" '$d->{succeeded_items}')" 3 "the three items after it succeeded as steps"
is "$(item_in i1 TERMIGNORE-1 error_category)" timeout "the step that ignores SIGTERM: timeout"
jobs_i1=$(grep -o 'launch task StepId=[0-9]*' "$S/slurmd.log" | tail -4 | sort -u | wc -l)
is "$jobs_i1" 1 "all four were steps of one job"
check "no job left (the allocation ended with the runner)" wait_long no_jobs

# ---- a failure group through srun, resumed ---------------------------------
base "timeout = 60s
source = koyfin" "[correlation]
min_group = 2
[retry]
max_attempts = 5"
touch "$CAP/down"
job v <<JOB
[job]
agent = fake
id = v1
symbols = VENDOR-1 VENDOR-2 VENDOR-3 VENDOR-4
JOB
r run --no-progress
is "$rc" 1 "the run returns when all wait on the group"
grp=$(jq "$H/batches/v1/batch.json" '$d->{failure_groups}[0]{group_id}')
like "$grp" "^grp-" "the vendor outage made a failure group"
is "$(jq "$H/batches/v1/batch.json" '$d->{paused_items}')" 4 "its members paused"
rm -f "$CAP/down"
r resume "$grp"
is "$rc" 0 "resume: the members run again through srun"
is "$(jq "$H/batches/v1/batch.json" '$d->{succeeded_items}')" 4 "and all succeed"
check "no job left" wait_long no_jobs

done_testing
