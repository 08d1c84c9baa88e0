#!/bin/sh
# terminal: the command line for daily use.  Options the GNU way (prefixes,
# -qv, -C/dir, global options after the command, one-line errors naming
# the option, did-you-mean for commands, options, configuration and job
# keys, runner help CMD); check in line order; compound and relative
# durations; list --format/--no-header with a cancelled column; tables
# sized to a 32-character symbol; runner wait and runner log -f; an
# archived batch named to cancel or retry-failed; the progress line on
# stderr, never wider than the terminal.
. "${RUNNER_SRC:-.}/tests/lib.sh"

mkhome
job ok <<JOB
[job]
agent = fake
id = ok1
symbols = OK-A OK-B
JOB
r run --no-progress
is "$rc" 0 "a batch to look at"

# ---- options ----
r list --bogus
is "$rc" 64 "unknown option: 64"
is "$(cat "$T/err")" "runner: unknown option --bogus; see runner list --help" \
	"unknown option: one line, naming it and the command's help"
r list --sinse 1d
like "$(cat "$T/err")" "unknown option --sinse \(did you mean --since\?\)" \
	"an option a slip away: did you mean"
r list --s x
is "$rc" 64 "an ambiguous prefix: 64"
like "$(cat "$T/err")" "option --s is ambiguous \(--status, --since" \
	"  and the options it could be"
r list --no-head --form id
is "$(cat "$T/out")" "ok1" "unambiguous prefixes: --no-head, --form"
r list --since
is "$(wc -l <"$T/err" | tr -d ' ')" 1 "a missing value: one line"
like "$(cat "$T/err")" "^runner: --since needs a value; see runner list --help$" \
	"  that names the option"
r list --json=yes
like "$(cat "$T/err")" "--json takes no value" "a value to a flag: refused"
"$RUNNER" list -qvC"$H" --no-header --format=id >"$T/out" 2>"$T/err"
is "$?:$(cat "$T/out")" "0:ok1" "-qvC/dir clustered, global options after the command"
"$RUNNER" -C "$H" lsit >"$T/out" 2>"$T/err"
is "$?" 64 "unknown command: 64"
like "$(cat "$T/err")" "unknown command 'lsit' \(did you mean 'list'\?\)" \
	"unknown command: did you mean"
"$RUNNER" help list >"$T/help1"
"$RUNNER" list --help >"$T/help2"
check "runner help list is runner list --help" cmp -s "$T/help1" "$T/help2"
like "$(head -1 "$T/help1")" "^usage: runner list" "  its usage"

# ---- check: did you mean, in line order ----
cat >"$T/typo.job" <<JOB
[job]
agnet = fake
symbols = OK-A
timeout = 5x
JOB
r check "$T/typo.job"
is "$rc" 65 "a job with a misspelt key: 65"
like "$(cat "$T/err")" "typo.job:2: unknown key 'agnet' in \[job\] \(did you mean 'agent'\?\)" \
	"a job key: did you mean"
is "$(sed 's/^runner: [^:]*:\([0-9]*\):.*/\1/' "$T/err" | tr '\n' ' ')" "2 2 4 " \
	"problems in line order"
cp "$H/conf/runner.ini" "$T/conf.bak"
printf '[runner]\nmax_childs = 3\n' >>"$H/conf/runner.ini"
r check "$T/typo.job"
like "$(cat "$T/err")" "unknown key 'max_childs' in \[runner\] \(did you mean 'max_children'\?\)" \
	"a configuration key: did you mean"
cp "$T/conf.bak" "$H/conf/runner.ini"

# ---- durations: compound, relative ----
cat >"$T/dur.job" <<JOB
[job]
agent = fake
symbols = OK-A
timeout = 1h30m
batch_timeout = 1d12h
JOB
r check "$T/dur.job"
is "$rc" 0 "compound durations in a job: 1h30m, 1d12h"
r list --since 24h --format id --no-header
is "$(cat "$T/out")" "ok1" "--since 24h: created in the last day"
r list --until 1h --format id --no-header
is "$rc:$(cat "$T/out")" "0:" "--until 1h: none created before an hour ago"
r list --since 1w2d
is "$rc" 0 "--since 1w2d"
r archive --older-than 1d12h --dry-run
is "$rc" 0 "archive --older-than 1d12h"
r list --since yesterday
like "$(cat "$T/err")" "not a time .*a duration ago" "a bad --since says what it takes"

# ---- list: --format, --no-header, cancelled; tables sized to the longest ----
LONG=ABCDEFGHIJKLMNOPQRSTUVWXYZ012	# OK-$LONG: 32 characters, the most a symbol has
job long <<JOB
[job]
agent = fake
id = batch-with-a-rather-long-identifier-0001
symbols = OK-$LONG OK-B
JOB
r run --no-progress
r list
is "$(head -1 "$T/out" | tr -s ' ')" "BATCH STATUS AGENT ITEMS OK FAILED CANCELLED CREATED" \
	"list: the header, with a cancelled column"
# Every row's STATUS starts where the header's does.
col=$(awk 'NR == 1 { print index($0, "STATUS") }' "$T/out")
is "$(awk -v c="$col" 'NR > 1 && substr($0, c, 9) != "completed"' "$T/out")" "" \
	"list: columns line up past a long id"
r list --no-header --format id,cancelled
is "$(cat "$T/out" | tr -s ' ')" "batch-with-a-rather-long-identifier-0001 0
ok1 0" "--format id,cancelled --no-header"
r list --format id,stauts
like "$(cat "$T/err")" "unknown column 'stauts' \(did you mean 'status'\?\)" \
	"--format: an unknown column"
r show batch-with-a-rather-long-identifier-0001 --items
sym=$(awk '/^  SYMBOL / { print index($0, "STATE") }' "$T/out")
st=$(awk '/^  OK-B +succeeded/ { print index($0, "succeeded") }' "$T/out")
st2=$(awk "/^  OK-$LONG +succeeded/ { print index(\$0, \"succeeded\") }" "$T/out")
is "$sym:$st:$st2" "$sym:$sym:$sym" "show --items: the symbol column fits a 32-character symbol"

# ---- wait, log -f ----
r wait ok1
is "$rc" 0 "wait on a completed batch: 0"
job part1 <<JOB
[job]
agent = fake
id = part1
symbols = SLEEP-0.5-A EXIT-65-B
JOB
"$RUNNER" -C "$H" wait part1 >"$T/wait.out" 2>&1 &
wpid=$!
"$RUNNER" -C "$H" log -f part1 >"$T/follow.out" 2>&1 &
lpid=$!
r run --no-progress
wait "$wpid"
is "$?" 1 "wait on a batch still in spool/, run meanwhile: its status (1)"
wait "$lpid"
is "$?" 1 "log -f: ends with the batch, with its status"
like "$(tail -1 "$T/follow.out")" "batch partial: 2 items" "log -f: to the batch's last line"
check "log -f: the lines of the log" cmp -s "$T/follow.out" "$H/logs/part1.log"
r log part1
check "log: the batch's log" cmp -s "$T/out" "$H/logs/part1.log"
r wait nosuch
is "$rc" 66 "wait on no such batch: 66"
job bad1 <<JOB
[job]
agent = fake
id = bad1
symbols = bad/one
JOB
"$RUNNER" -C "$H" wait bad1 >"$T/wait.out" 2>&1 &
wpid=$!
r run --no-progress
wait "$wpid"
is "$?" 65 "wait on a job that run rejects: 65"
like "$(cat "$T/wait.out")" "bad1: rejected \(spool/rejected/bad1.job.reason" "  and where to read why"

# ---- an archived batch ----
r archive --older-than 0
r cancel part1
is "$rc" 66 "cancel of an archived batch: 66"
is "$(cat "$T/err")" "runner: batch part1 is archived; runner restore part1 brings it back" \
	"  says it is archived and how to bring it back"
r retry-failed part1
like "$(cat "$T/err")" "is archived; runner restore part1" "retry-failed too"
r wait part1
is "$rc" 1 "wait on an archived batch: its status"

# ---- the progress line: stderr, within the terminal's width ----
if command -v script >/dev/null 2>&1; then
	job p <<JOB
[job]
agent = fake
symbols = SLEEP-0.4-A SLEEP-0.4-B OK-C OK-D
JOB
	script -qfec "stty cols 50 rows 20; $RUNNER -C '$H' run >/dev/null" "$T/tty" >/dev/null 2>&1
	tr '\r' '\n' <"$T/tty" | sed 's/\x1b\[K//g' | grep -a 'ETA' >"$T/lines"
	like "$(tail -1 "$T/lines")" "^[0-9]+% [0-9]/4 ok [0-9] failed 0 running [0-9] ETA ([0-9]+s|--)$" \
		"progress: percentage, counts, ETA (on stderr: stdout went elsewhere)"
	is "$(awk 'length($0) > 49' "$T/lines")$(test -s "$T/lines" || echo none)" "" \
		"progress: drawn, no line wider than 50 columns less one"
	job p2 <<JOB
[job]
agent = fake
symbols = SLEEP-0.4-A OK-C
JOB
	script -qfec "stty cols 120 rows 20; $RUNNER -C '$H' run 2>/dev/null" "$T/tty" >/dev/null 2>&1
	is "$(grep -ac 'ETA' "$T/tty")" 0 "progress: not on stdout"
	job p3 <<JOB
[job]
agent = fake
symbols = SLEEP-1-A OK-C
JOB
	script -qfec "stty cols 120 rows 20; $RUNNER -C '$H' run >/dev/null" "$T/tty" >/dev/null 2>&1
	like "$(tr '\r' '\n' <"$T/tty" | grep -a ETA | tail -1)" '^\[[# ]{40}\] [0-9]+% [0-9]/2 ok' \
		"progress: a bar where there is room"
else
	diag "no script(1): the progress line is not checked"
fi

done_testing
