#!/bin/sh
# man: the three manual pages format without warnings, and document what
# the code has: every command of `runner --help` (and of main.c's command
# table), every option of the help text, every exit status of util.h, every
# configuration key read in conf.c and every [job] key read in job.c.  A key
# or command added to the code without its documentation fails here.
. "${RUNNER_SRC:-.}/tests/lib.sh"

MAN_DIR=$SRC/man
PAGES="runner.1 runner.conf.5 runner-job.5"

if command -v man >/dev/null 2>&1; then
	fmt() { MANWIDTH=80 MANPAGER=cat PAGER=cat man --warnings -E UTF-8 -l "$1"; }
	renders=1
elif command -v groff >/dev/null 2>&1; then
	fmt() { groff -man -ww -z "$1"; }
	renders=0	# -z: checked, not rendered
else
	echo "1..0 # SKIP man not installed"
	exit 0
fi

absent() { ! grep -Eq "$1" "$2"; }
# The roff source as plain words: \- is -, \& and font changes vanish.
plain() {
	sed -e 's/\\-/-/g' -e 's/\\&//g' -e 's/\\f[BIRP]//g' \
	    -e "s/\\\\(aq/'/g" -e 's/\\(dq/"/g' "$MAN_DIR/$1"
}

for p in $PAGES; do
	if [ ! -f "$MAN_DIR/$p" ]; then
		ok 1 "$p exists"
		continue
	fi
	fmt "$MAN_DIR/$p" >"$T/$p.out" 2>"$T/$p.err"
	is "$?" 0 "$p: formats (exit 0)"
	is "$(cat "$T/$p.err")" "" "$p: no warnings"
	[ "$renders" = 0 ] || check "$p: has output" test -s "$T/$p.out"
	plain "$p" >"$T/$p.txt"
	for s in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
		check "$p: section $s" grep -q "^\.SH \"\{0,1\}$s" "$T/$p.txt"
	done
	check "$p: classic man macros only" absent \
		'^\.(Dd|Dt|Os|Nm|Sh|Ss|It|Bl|TQ|EX|EE|SY|YS|UR|UE|MT|ME)( |$)' \
		"$T/$p.txt"
done

# ---- runner.1: commands, options, exit statuses ----
R1=$T/runner.1.txt
cmds=$(sed -n 's/^[[:space:]]*{ "\([a-z-]*\)", cmd_[a-z_]* },.*/\1/p' "$SRC/src/main.c")
if [ -x "$RUNNER" ]; then
	"$RUNNER" --help >"$T/help" 2>&1
	cmds="$cmds $(sed -n '/^commands:/,/^$/s/^  \([a-z][a-z-]*\).*/\1/p' "$T/help")"
	opts=$(grep -o -- '--[a-z][a-z-]*' "$T/help" | sort -u)
else
	diag "no runner binary at $RUNNER: commands from src/main.c only"
	opts=
fi
like "$cmds" 'run' "found the commands (main.c, --help)"
for c in $(printf '%s\n' $cmds | sort -u); do
	check "runner.1: command $c has a subsection" \
		grep -Eq "^\.SS $c( |\$)" "$R1"
done
for o in $opts; do
	check "runner.1: option $o" grep -q -F -e "$o" "$R1"
done
# Each command's own --help against its subsection of runner.1, and the
# SYNOPSIS: they cannot drift apart.
section() {
	awk -v c="$1" '
		/^\.S[SH] / { inside = ($1 == ".SS" && $2 == c) }
		inside { print }' "$R1"
}
synopsis() { sed -n '/^\.SH SYNOPSIS/,/^\.SH /p' "$R1"; }
if [ -x "$RUNNER" ]; then
	for c in $(printf '%s\n' $cmds | sort -u); do
		check "runner.1: SYNOPSIS lists $c" \
			sh -c "sed -n '/^\\.SH SYNOPSIS/,/^\\.SH /p' '$R1' | grep -Eq '^\\.B runner $c( |\$)'"
		"$RUNNER" "$c" --help >"$T/help.$c" 2>&1
		section "$c" >"$T/sec.$c"
		for o in $(grep -o -- '--[a-z][a-z-]*' "$T/help.$c" | sort -u); do
			[ "$o" = --help ] && continue
			check "runner.1: $c's option $o (runner $c --help) in its subsection" \
				grep -q -F -e "$o" "$T/sec.$c"
		done
	done
fi
for o in -C -c -q -v -h -V --retry-failed --no-wait --archived; do
	check "runner.1: option $o" grep -q -F -e "$o" "$R1"
done
exit_doc() {
	sed -n '/^\.SH EXIT STATUS/,/^\.SH /p' "$R1" | grep -q "^\.B $1\$"
}
codes=$(sed -n '/^enum {/,/^};/s/^[[:space:]]*EX_[A-Z_]* = \([0-9]*\),.*/\1/p' \
	"$SRC/src/util.h")
like "$codes" '78' "found the exit statuses (util.h)"
for n in $codes; do
	check "runner.1: exit status $n" exit_doc "$n"
done
for v in RUNNER_HOME RUNNER_BATCH_ID RUNNER_SYMBOL RUNNER_AGENT RUNNER_ATTEMPT \
	RUNNER_TIMEFRAME RUNNER_START RUNNER_END RUNNER_SOURCE RUNNER_PARAM_ \
	RUNNER_RESULT RUNNER_CHECKPOINT RUNNER_TRACE_OVERHEAD; do
	check "runner.1: $v" grep -q -F -e "$v" "$R1"
done
for w in data_error parameter_error engine_error timeout memory_error unknown \
	summary.json state/slots state/control state/recent-jobs RLIMIT_AS \
	RLIMIT_CPU RLIMIT_FSIZE RLIMIT_CORE PR_SET_PDEATHSIG '{symbol}'; do
	check "runner.1: mentions $w" grep -q -F -e "$w" "$R1"
done

# ---- runner.conf.5: every key conf.c reads, each with its own entry ----
C5=$T/runner.conf.5.txt
keys=$(grep -o 'get\(_int\|_dur\|_size\|_words\)\{0,1\}(&\{0,1\}l, [a-z"]*, "[a-z_]*"' \
	"$SRC/src/conf.c" | sed 's/.*"\([a-z_]*\)"$/\1/' | sort -u)
like "$(echo $keys)" 'max_children' "found the configuration keys (conf.c)"
for k in $keys; do
	check "runner.conf.5: key $k has an entry" \
		grep -Eq "^\\.B[IR]? +\"$k = " "$C5"
done
sections=$(sed -n '/sections\[\] = {/,/};/p' "$SRC/src/conf.c" |
	grep -o '"[a-z]*"' | tr -d '"')
like "$(echo $sections)" 'retention' "found the sections (conf.c)"
for s in $sections; do
	check "runner.conf.5: section [$s]" grep -q -F -e "[$s]" "$C5"
done
for w in '[agent NAME]' DURATIONS SIZES 'runner: FILE:LINE: message' 78 \
	'command = a ;b'; do
	check "runner.conf.5: mentions $w" grep -q -F -e "$w" "$C5"
done

# ---- runner-job.5: every [job] key job.c reads ----
J5=$T/runner-job.5.txt
jkeys=$(grep -o 'inidoc_get(&doc, "job", "[a-z_]*"' "$SRC/src/job.c" |
	sed 's/.*"\([a-z_]*\)"$/\1/' | sort -u)
like "$(echo $jkeys)" 'symbols_file' "found the job keys (job.c)"
for k in $jkeys; do
	check "runner-job.5: key $k has an entry" \
		grep -Eq "^\\.B[IR]? +\"$k = " "$J5"
done
for w in '[params]' 'RUNNER_PARAM_' '[A-Za-z0-9_]{1,64}' 64 1,000,000 \
	spool/rejected 'duplicate of BATCH' dedup_window '.NAME.tmp' \
	'runner check' RESOLVE_BENEATH; do
	check "runner-job.5: mentions $w" grep -q -F -e "$w" "$J5"
done

done_testing
