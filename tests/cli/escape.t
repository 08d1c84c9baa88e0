#!/bin/sh
# Children that escape: a grandchild that double-forks into a session of its
# own (keeping fd 3, the slot lock, and with or without its environment)
# does not outlive its item, and does not hold the agent's slot; a notify
# hook that hangs or leaves a process in a session of its own leaves nothing
# behind the runner, and alerts it never ran are said to be dropped.
. "${RUNNER_SRC:-.}/tests/lib.sh"

# A process is alive: it exists and is not a zombie waiting for its reaper.
alive() {
	[ -r "/proc/$1/stat" ] &&
		[ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]
}
# None of the pids in the files named pid.* under $1 is alive.
none_alive() {
	for f in "$1"/pid.*; do
		[ -f "$f" ] || continue
		alive "$(cat "$f")" && return 1
	done
	return 0
}
npids() { ls "$1" | grep -c '^pid\.[0-9A-Z]'; }
# A failing run must not leave its sleepers behind either (a hook's have
# no RUNNER_HOME for lib.sh's cleanup to find): each one still alive and
# still "sleep 300" is killed.
escape_cleanup() {
	for f in "$T"/*/pid.* "$H"/gates/pid.*; do
		[ -f "$f" ] || continue
		p=$(cat "$f")
		[ "$({ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null)" = "sleep 300 " ] &&
			kill -9 "$p" 2>/dev/null
	done
	cleanup
}
trap escape_cleanup EXIT

# ---- agents: a grandchild in a session of its own, keeping fd 3 ----
mkhome "max_concurrent = 1"
G=$H/gates
mkdir -p "$G"
job esc <<JOB
[job]
agent = fake
id = esc
symbols = ESCFD-KEEP-A ESCFD-SCRUB-B
JOB
# Before the fix the first grandchild held the only slot: the second item
# never started.  The bound is there to fail, not to pace anything.
timeout 60 $RUNNER -C "$H" run >"$T/esc.out" 2>&1
is "$?" 0 "both items run one after the other on the one slot"
is "$(npids "$G")" 2 "each grandchild wrote its pid"
like "$(cat "$G/fd3.ESCFD-KEEP-A")" "/state/slots$" "the grandchild kept fd 3, the slot lock"
like "$(cat "$G/fd3.ESCFD-SCRUB-B")" "/state/slots$" "and so did the one without the environment"
check "no grandchild outlives its item" wait_for none_alive "$G"
# The next batch of the agent, in another runner process, starts at once.
job next <<JOB
[job]
agent = fake
id = next
symbols = OK-C
JOB
t0=$(date +%s)
timeout 60 $RUNNER -C "$H" run >"$T/next.out" 2>&1
rc=$?
took=$(( $(date +%s) - t0 ))
is "$rc" 0 "the agent's next batch runs"
check "at once (${took} s)" test "$took" -le 20
is "$(item_in next OK-C state)" succeeded "its item succeeded"

# The same while the runner goes on: a daemon-like run of two batches, the
# second claimed while the first's grandchild would still be alive.
mkhome "max_concurrent = 1"
G=$H/gates
mkdir -p "$G"
job one <<JOB
[job]
agent = fake
id = one
symbols = ESCFD-KEEP-D GATE-E
JOB
$RUNNER -C "$H" run >"$T/one.out" 2>&1 &
rpid=$!
check "the item after the escaped one gets the slot" wait_for test -e "$G/started.GATE-E"
check "and the grandchild is gone by then" wait_for none_alive "$G"
: >"$G/open.GATE-E"
wait $rpid
is "$?" 0 "the run ends"

# A runner killed -9 while its item runs: the grandchild holds the slot
# (fd 3) until the next runner adopts the batch, stops what is left of it
# and runs the item again.
mkhome "max_concurrent = 1"
G=$H/gates
mkdir -p "$G"
job dead <<JOB
[job]
agent = fake
id = dead
symbols = ESCFD-WAIT-F
JOB
$RUNNER -C "$H" run >"$T/dead.out" 2>&1 &
rpid=$!
check "the grandchild is up" wait_for test -e "$G/pid.ESCFD-WAIT-F"
kill -9 $rpid
wait $rpid 2>/dev/null
esc=$(cat "$G/pid.ESCFD-WAIT-F")
check "with its runner killed, the grandchild lives on" alive "$esc"
r status --json
is "$(jq "$T/out" '(grep { $_->{agent} eq "fake" } @{$d->{agents}})[0]{running}')" 1 "and its slot stays taken"
rm -f "$G/pid.ESCFD-WAIT-F"
: >"$G/open.ESCFD-WAIT-F"
timeout 60 $RUNNER -C "$H" run >"$T/dead2.out" 2>&1
is "$?" 0 "the next runner adopts the batch and runs the item again"
dead() { ! alive "$1"; }
check "the first grandchild was stopped by the adoption" wait_for dead "$esc"
check "and the second one with its item" wait_for none_alive "$G"
is "$(item_in dead ESCFD-WAIT-F state)" succeeded "the item succeeded"

# ---- the notify hook: hanging, and leaving a process behind ----
mkhome "[runner]
notify = $SRC/tests/agents/hookesc $T/hk hang"
mkdir -p "$T/hk"
job f <<JOB
[job]
agent = fake
id = flood
symbols = $(syms EXIT-3 20)
max_attempts = 1
JOB
r run
is "$rc" 1 "a hanging hook: the batch ends (its items failed)"
is "$(alerts item_failed)" 20 "every alert is in alerts.jsonl"
hooks=$(ls "$T/hk" | grep -c '^hook\.')
check "the hooks ran ($hooks runs)" test "$hooks" -ge 2
dropped=$(sed -n 's/^runner: warning: \([0-9]*\) alerts dropped: hook still running$/\1/p' "$T/err")
like "$dropped" '^[0-9]+$' "stderr says how many alerts were dropped"
is "$((dropped + hooks))" 21 "the dropped ones are those the hook never ran"
check "each hook left its processes ($(npids "$T/hk"))" test "$(npids "$T/hk")" -ge 4
check "none of them outlives the runner" wait_for none_alive "$T/hk"

# The daemon stopping says it in runner.log too.
mkhome "[runner]
notify = $SRC/tests/agents/hookesc $T/hd hang"
mkdir -p "$T/hd"
job f <<JOB
[job]
agent = fake
id = flood
symbols = $(syms EXIT-3 20)
max_attempts = 1
JOB
$RUNNER -C "$H" daemon >"$T/d.out" 2>"$T/d.err" &
dpid=$!
ended() { [ "$(alerts batch_final)" = 1 ]; }
check "the daemon ran the batch" wait_for ended
kill -TERM $dpid
wait $dpid
like "$(cat "$T/d.err")" "^runner: warning: [0-9]+ alerts dropped: hook still running$" "the daemon says on stderr that alerts were dropped"
like "$(cat "$H/logs/runner.log")" "[0-9]+ alerts dropped: hook still running" "and in runner.log"
check "nothing of its hooks outlives the daemon" wait_for none_alive "$T/hd"

mkhome "[runner]
notify = $SRC/tests/agents/hookesc $T/hl leave"
mkdir -p "$T/hl"
job g <<JOB
[job]
agent = fake
id = one-fail
symbols = EXIT-3-A
max_attempts = 1
JOB
$RUNNER -C "$H" daemon >"$T/d.out" 2>&1 &
dpid=$!
# Both alerts (item_failed, batch_final) had their hook run, and it exited.
hooked() { [ "$(ls "$T/hl" | grep -c '^up\.')" -ge 2 ]; }
check "the hook ran for both alerts" wait_for hooked
check "what a hook left in a session of its own dies with the hook" wait_for none_alive "$T/hl"
check "while the runner goes on" kill -0 $dpid
kill -TERM $dpid
wait $dpid
done_testing
