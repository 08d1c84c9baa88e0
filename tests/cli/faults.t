#!/bin/sh
# faults.t: fault injection into the runner process with an LD_PRELOAD shim
# (tests/faults/shim.c, built as $BUILD/faults/shim.so): at the Nth call of
# write, fdatasync, fsync, rename, open(O_CREAT) or mkdirat, the runner
# dies (crash), or the call fails once or from then on (persist), with
# ENOSPC, EIO or EDQUOT.  After each faulted `runner run` a clean one
# follows, then the DURABILITY promises are checked (tests/faults/check.pl):
# the job in exactly one place, one final batch with every item in one final
# state and the outcome its symbol calls for, batch.json parseable and equal
# to a replay, acknowledged outcomes kept, no claim directory, temp file or
# child left.  A failed fdatasync (of a journal; of the history index it
# makes the index rebuild itself) must stop the runner with exit 74 and one
# error line, and is never retried; a full disk stalls the runner or makes
# it exit cleanly, losing nothing.
#
# The calls counted in a clean run choose N: crash at every N of every op
# (up to FAULTS_CRASH_MAX), a failure once at the first and last call of
# each distinct call site, persistent ENOSPC (ended by SIGTERM, or by the
# "disk" freeing up) at a few sites.  Trials run FAULTS_JOBS at a time.
# Known bugs are TAP TODO lines (see known() below).
. "${RUNNER_SRC:-.}/tests/lib.sh"

SHIM=$BUILD/faults/shim.so
CHECK=$SRC/tests/faults/check.pl
JOBS=${FAULTS_JOBS:-3}
CRASH_MAX=${FAULTS_CRASH_MAX:-40}
OPS="write fdatasync fsync rename openat-creat mkdirat"
if [ ! -f "$SHIM" ]; then
	echo "1..0 # SKIP $SHIM is not built (make check builds it)"
	exit 0
fi
# An ASan runner wants its runtime first in the list.
PRELOAD=$SHIM
asan=$(ldd "$RUNNER" 2>/dev/null | awk '/libasan/ { print $3; exit }')
[ -n "$asan" ] && PRELOAD="$asan $SHIM"
# Time a runner gets to stop after `timeout` sends SIGTERM before SIGKILL;
# a sanitizer build on a busy machine is several times slower.
KILL_AFTER=5
[ -n "$asan" ] && KILL_AFTER=15
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
export ASAN_OPTIONS
t0=$(date +%s)

mkhome
cp "$H/conf/runner.ini" "$T/runner.ini"
printf '[job]\nagent = fake\nname = faults\nsymbols = %s\n' \
	"OK-1 EXIT-65-1 FLAKY-2-1 SLEEP-0.1-1 OK-2 EXIT-65-2 FLAKY-2-2 SLEEP-0.1-2" \
	>"$T/job"

# fresh HOME: the configuration, and the job in spool/.
fresh() {
	rm -rf "$1"
	mkdir -p "$1/conf" "$1/spool"
	cp "$T/runner.ini" "$1/conf/runner.ini"
	cp "$T/job" "$1/spool/.f.job.tmp" && mv "$1/spool/.f.job.tmp" "$1/spool/f.job"
}
# procs HOME: how many processes have RUNNER_HOME=HOME (exactly).
procs() {
	grep -lzxF "RUNNER_HOME=$1" /proc/[0-9]*/environ 2>/dev/null | wc -l
}
# procs_settled HOME: the same, giving killed processes a moment to go.
procs_settled() {
	_p=$(procs "$1")
	[ "$_p" = 0 ] || { sleep 0.3; _p=$(procs "$1"); }
	echo "$_p"
}
# tok STATUS DESC BUG: like ok, but a failure is a TODO (a known bug).
tok() {
	_n=$((_n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $_n - $2"
	else
		echo "not ok $_n - $2 # TODO bug: $3"
	fi
}
# countof OP FILE: OP's count in a FAULT_COUNT file.
countof() {
	sed -n "s/.*\(^\| \)$1=\([0-9-]*\).*/\2/p" "$2" 2>/dev/null
}

# ---- the shim itself, on a clean run ----

fresh "$H"
FAULT_N=0 FAULT_COUNT=$T/count0 FAULT_TRACE=$T/trace0 \
	env LD_PRELOAD="$PRELOAD" "$RUNNER" -C "$H" run --json >"$T/out" 2>"$T/err"
is "$?" 1 "a clean run under the shim exits 1 (the EXIT-65 items fail)"
like "$(cat "$T/count0" 2>/dev/null)" '^write=[1-9]' "the shim writes its counts at exit"
for op in $OPS; do
	check "a clean run makes $op calls ($(countof "$op" "$T/count0"))" \
		test "$(countof "$op" "$T/count0")" -gt 0
done
check "stdio writes (logs/, batch.json) go through the write wrapper" \
	grep -q '^write [0-9]* fd=[0-9]* .*/logs/.*\.log$' "$T/trace0"
is "$(perl "$CHECK" final "$H" "$T/job" "$RUNNER" "$T/out")" ok \
	"the checks pass on a clean run"

# The children do not get the shim: their environment is scrubbed.
E=$H-env
rm -rf "$E"
mkdir -p "$E/conf" "$E/spool"
cp "$T/runner.ini" "$E/conf/runner.ini"
printf '[job]\nagent = fake\nid = env\nsymbols = ENV-1\n' >"$E/spool/env.job"
FAULT_N=0 FAULT_COUNT=$T/count-env \
	env LD_PRELOAD="$PRELOAD" "$RUNNER" -C "$E" run >/dev/null 2>&1
envout=$E/env.out
"$RUNNER" -C "$E" output env ENV-1 >"$envout" 2>&1
check "the ENV child printed its environment" grep -q '^RUNNER_HOME=' "$envout"
check "no LD_PRELOAD or FAULT_* reaches a child" \
	sh -c "! grep -Eq '^(LD_PRELOAD|FAULT_)' '$envout'"
rm -rf "$E"

# ---- the trials ----

# Call sites of the clean run: OP N KEY, KEY being the last two components
# of the name, numbers and hex made X, symbols made SYM.
awk '{
	n = split($4, p, "/")
	k = n > 1 ? p[n - 1] "/" p[n] : p[n]
	gsub(/[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]+/, "X", k)
	gsub(/[0-9]+/, "X", k)
	gsub(/(^|\/)[A-Z]+(-[X.]+)+(\/|$)/, "/SYM/", k)
	print $1, $2, k
}' "$T/trace0" >"$T/sites"
# sites OP WHICH: the N of the first (and with WHICH=both, the last) call of
# each distinct site of OP.
sites() {
	awk -v op="$1" -v which="$2" '$1 == op {
		if (!($3 in first)) { first[$3] = $2; order[++k] = $3 }
		last[$3] = $2
	} END {
		for (i = 1; i <= k; i++) {
			print first[order[i]]
			if (which == "both" && last[order[i]] != first[order[i]])
				print last[order[i]]
		}
	}' "$T/sites" | sort -n -u
}

: >"$T/trials"
# add OP MODE N ERRNO EXTRA: one trial (none when N is empty).
add() {
	set -- $*
	[ $# -eq 5 ] && echo "$*" >>"$T/trials"
	return 0
}
# first OP REGEX: the N of OP's first call whose site matches REGEX.
first() {
	awk -v op="$1" -v re="$2" '$1 == op && $3 ~ re { print $2; exit }' "$T/sites"
}
for op in $OPS; do
	max=$(countof "$op" "$T/count0")
	max=${max:-0}
	[ "$max" -gt "$CRASH_MAX" ] && max=$CRASH_MAX
	n=1
	while [ "$n" -le "$max" ]; do
		add "$op crash $n ENOSPC -"
		n=$((n + 1))
	done
	for n in $(sites "$op" both); do
		add "$op once $n ENOSPC -"
	done
done
n=1
while [ "$n" -le "$(countof fdatasync "$T/count0" | grep . || echo 0)" ]; do
	add "fdatasync once $n EIO -"
	n=$((n + 1))
done
for op in fsync write; do
	for n in $(sites "$op" first); do
		add "$op once $n EIO -"
	done
done
for n in $(sites openat-creat first); do
	add "openat-creat once $n EDQUOT -"
done
# Persistent: the disk stays full until SIGTERM ...
for n in $(sites write first); do
	add "write persist $n ENOSPC term"
done
add fdatasync persist "$(first fdatasync '^batch-X/journal$')" ENOSPC term
# ... or frees up after a while.
jw=$(awk '$1 == "write" && $3 ~ /^batch-X\/journal$/ { print $2 }' "$T/sites")
add write persist "$(echo "$jw" | head -1)" ENOSPC while
add write persist "$(echo "$jw" | sed -n 3p)" ENOSPC while
add write persist "$(echo "$jw" | tail -1)" ENOSPC while
add openat-creat persist "$(first openat-creat 'attempt-X.out$')" ENOSPC while
add mkdirat persist "$(first mkdirat SYM)" ENOSPC while

# known TAG OP MODE: the description of a known bug that explains TAG in
# such a trial, or nothing.
known() {
	# No known bug at the moment: every problem a trial finds fails it.
	# (Add "TAG:OP:MODE) echo 'description' ;;" cases here to mark one.)
	case "$1:$2:$3" in
	none) ;;
	esac
}

# trial WORKER OP MODE N ERRNO EXTRA: one faulted run, one clean run, the
# checks; prints STATUS|DESCRIPTION|DETAIL.
trial() {
	w=$1 op=$2 mode=$3 n=$4 err=$5 extra=$6
	hw=$H-w$w
	d=$T/w$w
	rm -rf "$d"
	mkdir -p "$d"
	fresh "$hw"
	wf=
	tmo=10
	case $extra in
	term) tmo=2 ;;
	while)
		wf=$d/while
		: >"$wf"
		(sleep 1.2; rm -f "$wf") &
		;;
	esac
	ts=$(date +%s%N)
	FAULT_OP=$op FAULT_N=$n FAULT_MODE=$mode FAULT_ERRNO=$err \
		FAULT_WHILE=$wf FAULT_COUNT=$d/count FAULT_TRACE=$d/trace \
		timeout --preserve-status -k $KILL_AFTER $tmo \
		env LD_PRELOAD="$PRELOAD" "$RUNNER" -C "$hw" run --json \
		>"$d/out" 2>"$d/err"
	rc=$?
	ms=$((($(date +%s%N) - ts) / 1000000))
	wait # the FAULT_WHILE timer
	site=$(grep -E ' (FAIL|CRASH)$' "$d/trace" 2>/dev/null | head -1 |
		awk '{ n = split($4, p, "/"); k = n > 1 ? p[n - 1] "/" p[n] : p[n]
		       gsub(/[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]+/, "X", k)
		       sub(/^home-w[0-9]+\//, "HOME/", k); print k }')
	fired=$(countof fired "$d/count")
	p=""
	if [ "$mode" = crash ]; then
		if [ "$rc" = 137 ] && [ ! -f "$d/count" ]; then
			fired=1
		elif [ "$rc" -gt 1 ]; then
			p="$p rc:$rc"
		fi
		pre=$(perl "$CHECK" parse "$hw")
	else
		case $rc in
		0 | 1 | 73 | 74) ;;
		75) [ "$extra" = term ] || p="$p rc:75" ;;
		70) p="$p rc70" ;;
		*) p="$p rc:$rc" ;;
		esac
		[ "$extra" != term ] && [ "$ms" -ge $((tmo * 1000 - 100)) ] &&
			p="$p hang:${ms}ms"
		grep -qv '^runner: ' "$d/err" && p="$p stderr-format"
		nerr=$(grep -v '^runner: warning: ' "$d/err" | grep -c .)
		case $rc in 73 | 74) [ "$nerr" = 1 ] || p="$p error-lines:$nerr" ;; esac
		# (The history index is not the journal: a failed sync of
		# it makes the index rebuild itself, and the run goes on.)
		if [ "$op" = fdatasync ] && [ "${fired:-0}" -gt 0 ] &&
		   [ "${site#history/}" = "$site" ]; then
			[ "$rc" = 74 ] || p="$p fdatasync-rc:$rc"
			sa=$(countof same_fd_after "$d/count")
			[ "${sa:-0}" = 0 ] || p="$p fdatasync-retried:$sa"
		fi
		[ "${fired:-0}" -gt 300 ] && p="$p spin:${fired}-failed-calls-in-${ms}ms"
		[ "$(procs_settled "$hw")" = 0 ] || p="$p child-outlived-runner"
		if [ "$rc" -le 1 ]; then
			pre=$(perl "$CHECK" done "$hw" "$RUNNER")
		else
			pre=$(perl "$CHECK" parse "$hw")
		fi
	fi
	[ "$pre" = ok ] || p="$p $pre"
	timeout -k 5 30 "$RUNNER" -C "$hw" run >"$d/out2" 2>"$d/err2"
	rc2=$?
	[ "$rc2" -le 1 ] || p="$p clean-run-rc:$rc2"
	post=$(perl "$CHECK" final "$hw" "$T/job" "$RUNNER" "$d/out")
	[ "$post" = ok ] || p="$p $post"
	[ "$(procs_settled "$hw")" = 0 ] || p="$p child-left"

	x=""
	[ "$extra" = - ] || x=" ($extra)"
	desc="$op $mode N=$n $err$x${site:+ at $site}: exit $rc${fired:+, fired $fired}"
	[ "$mode" = crash ] && [ "${fired:-0}" = 0 ] && desc="$desc (not reached)"
	if [ -z "$p" ]; then
		echo "ok|$desc|"
		return
	fi
	todo=""
	unknown=""
	for tag in $p; do
		k=$(known "${tag%%:*}" "$op" "$mode")
		if [ -z "$k" ]; then
			unknown="$unknown $tag"
		else
			case "$todo" in *"$k"*) ;; *) todo="${todo:+$todo; }$k" ;; esac
		fi
	done
	if [ -z "$unknown" ]; then
		echo "todo|$desc|$todo|$p"
	else
		echo "not|$desc|$p; stderr: $(head -c 300 "$d/err" | tr '\n|' ' /'); clean run: $(head -c 300 "$d/err2" | tr '\n|' ' /')"
	fi
}

ntrials=$(wc -l <"$T/trials")
w=1
while [ "$w" -le "$JOBS" ]; do
	awk -v w="$w" -v j="$JOBS" '(NR - 1) % j == w - 1 { print NR, $0 }' "$T/trials" |
		while read -r idx op mode n err extra; do
			trial "$w" "$op" "$mode" "$n" "$err" "$extra" >"$T/r.$idx"
		done &
	w=$((w + 1))
done
wait

i=1
fired_total=0
while [ "$i" -le "$ntrials" ]; do
	line=$(cat "$T/r.$i" 2>/dev/null)
	status=${line%%|*}
	rest=${line#*|}
	desc=${rest%%|*}
	detail=${rest#*|}
	case $desc in *"fired "[1-9]*) fired_total=$((fired_total + 1)) ;; esac
	case $status in
	ok) ok 0 "$desc" ;;
	todo)
		_n=$((_n + 1))
		echo "not ok $_n - $desc # TODO bug: ${detail%%|*}"
		echo "#   problems:${detail#*|}"
		;;
	not)
		ok 1 "$desc"
		echo "#   problems:$detail" >&2 # shown by prove without -v
		;;
	*)
		ok 1 "trial $i ($(sed -n "${i}p" "$T/trials")) reported nothing"
		;;
	esac
	i=$((i + 1))
done

# The disk fills up while the last item runs and frees up a second later:
# the runner must wait for the space, write what it has, then finish.
# (Timed, not counted: how many journal writes come before that moment
# depends on how the group commits fall.)
F=$H-full
rm -rf "$F"
mkdir -p "$F/conf" "$F/spool"
cp "$T/runner.ini" "$F/conf/runner.ini"
printf '[job]\nagent = fake\nid = full\nsymbols = OK-1 EXIT-65-1 SLEEP-0.6-1\n' >"$T/job-full"
cp "$T/job-full" "$F/spool/full.job"
ts=$(date +%s%N)
(
	FAULT_OP=write FAULT_N=1 FAULT_MODE=persist FAULT_WHILE=$T/full \
		FAULT_COUNT=$T/count-full \
		timeout --preserve-status -k 5 8 \
		env LD_PRELOAD="$PRELOAD" "$RUNNER" -C "$F" run --json \
		>"$T/out-full" 2>"$T/err-full"
	echo $? >"$T/rc-full"
	date +%s%N >"$T/end-full"
) &
sleep 0.3
: >"$T/full"
sleep 1.2
rm -f "$T/full"
wait
rc=$(cat "$T/rc-full")
ms=$((($(cat "$T/end-full") - ts) / 1000000))
ntrials=$((ntrials + 1))
fired=$(countof fired "$T/count-full")
diag "disk full from 0.3 s to 1.5 s: exit $rc after $ms ms, $fired failed writes; $(tr '\n' ' ' <"$T/err-full")"
bug=$(known done-not-final write persist)
tok "$([ "$rc" = 1 ]; echo $?)" \
	"disk full while the last item runs: exit 1 once it is done (got $rc)" "$bug"
res=$(perl "$CHECK" done "$F" "$RUNNER")
tok "$([ "$res" = ok ]; echo $?)" \
	"disk full while the last item runs: when it exits, the journal says every item is final" "$bug"
[ "$res" = ok ] || echo "#   problems: $res"
tok "$([ "$ms" -ge 1400 ] && [ "$ms" -lt 7000 ]; echo $?)" \
	"disk full while the last item runs: it waits for the space, then finishes ($ms ms)" "$bug"
tok "$([ "${fired:-0}" -le 300 ]; echo $?)" \
	"disk full: the stalled runner retries now and then ($fired failed writes)" \
	"$(known spin write persist)"
timeout -k 5 30 "$RUNNER" -C "$F" run >/dev/null 2>&1
is "$(perl "$CHECK" final "$F" "$T/job-full" "$RUNNER" "$T/out-full")" ok \
	"disk full while the last item runs: after a clean run, every promise holds"
is "$(procs_settled "$F")" 0 "disk full: no child left"

diag "(op, N, mode) combinations exercised: $ntrials ($(grep -c ' crash ' "$T/trials") crash, $(grep -c ' once ' "$T/trials") once, $(grep -c ' persist ' "$T/trials") persist, 1 timed disk-full); the fault fired in $fired_total of the counted ones; $(($(date +%s) - t0)) s"
done_testing
