#!/bin/sh
# hostile.t: the job-file corpus (tests/corpus/jobs) against `runner check`
# and `runner run`, plus hostile inputs made at test time: 10 MB lines, a
# 64 MiB + 1 byte file, symlinks, FIFOs and directories in spool/.
#
# Corpus: NN-name.job with NN-name.expect holding one line, `valid` or an
# extended regex that `runner check` stderr must match (exit 65).  An
# optional NN-name.todo holds the description of a known bug: that file's
# test lines are TAP TODO, and it is left out of the `run` phase.
. "${RUNNER_SRC:-$(pwd)}/tests/lib.sh"

CORPUS=$SRC/tests/corpus/jobs

# tok STATUS DESC BUG: a TODO line; a failure does not fail the test.
tok() {
	_n=$((_n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $_n - $2 # TODO bug: $3"
	else
		echo "not ok $_n - $2 # TODO bug: $3"
	fi
}
# t STATUS DESC: ok, or tok when $todo is set.
t() {
	if [ -n "$todo" ]; then tok "$1" "$2" "$todo"; else ok "$1" "$2"; fi
}
# clean_lines FILE: every line starts "runner: " and holds no control byte.
clean_lines() {
	[ ! -s "$1" ] && return 0
	! grep -qv '^runner: ' "$1" || return 1
	! LC_ALL=C grep -q "$(printf '[\001-\011\013-\037\177]')" "$1"
}
# run_spool SECONDS: `runner run` on the spool, bounded in time (valgrind
# gets ten times as long).
run_spool() {
	_secs=$1
	[ -n "${RUNNER_VALGRIND:-}" ] && _secs=$((_secs * 10))
	timeout "$_secs" $RUNNER_CMD -C "$H" run --no-progress >"$T/out" 2>"$T/err"
	rc=$?
}
# is_regular PATH: a regular file, not a symlink.
is_regular() { [ -f "$1" ] && [ ! -L "$1" ]; }
# failed_in_time: $rc is a failure, not a timeout (124) nor a signal.
failed_in_time() { [ "$rc" != 124 ] && [ "$rc" != 0 ] && [ "$rc" -lt 128 ]; }
# no_batches: batches/ holds no batch and no claim directory.
no_batches() {
	[ -z "$(ls -A "$H/batches" 2>/dev/null | grep -v '^archive$')" ]
}

mkhome

# ---- 1. runner check on every corpus file ----

ninvalid=0
for f in "$CORPUS"/*.job; do
	name=${f##*/}
	name=${name%.job}
	expect=$(cat "$CORPUS/$name.expect")
	todo=
	[ -f "$CORPUS/$name.todo" ] && todo=$(cat "$CORPUS/$name.todo")
	r check "$f"
	if [ "$expect" = valid ]; then
		if [ "$rc" = 0 ]; then t 0 "$name: check exits 0"; else
			t 1 "$name: check exits 0"
			diag "exit $rc: $(head -3 "$T/err")"
		fi
		if grep -q ": ok: " "$T/out" && ! grep -v ': warning: ' "$T/err" |
			grep -q .; then
			t 0 "$name: reported ok, no error"
		else
			t 1 "$name: reported ok, no error"
		fi
	else
		ninvalid=$((ninvalid + 1))
		if [ "$rc" = 65 ]; then t 0 "$name: check exits 65"; else
			t 1 "$name: check exits 65"
			diag "exit $rc: $(head -3 "$T/out")"
		fi
		if grep -Eq -- "$expect" "$T/err"; then
			t 0 "$name: stderr matches /$expect/"
		else
			t 1 "$name: stderr matches /$expect/"
			diag "stderr: $(head -3 "$T/err")"
		fi
	fi
	if clean_lines "$T/err"; then
		t 0 "$name: stderr is 'runner: ' lines without control bytes"
	else
		t 1 "$name: stderr is 'runner: ' lines without control bytes"
		diag "stderr: $(head -3 "$T/err" | od -c | head -5)"
	fi
done
todo=
check "the corpus holds at least 30 invalid files ($ninvalid)" [ "$ninvalid" -ge 30 ]

# Every file at once (but those of known bugs, which may crash the check).
set --
for f in "$CORPUS"/*.job; do
	[ -f "${f%.job}.todo" ] || set -- "$@" "$f"
done
r check "$@"
is "$rc" 65 "check of $# corpus files at once exits 65"
n=$(grep -c '^runner: .*\.job:[0-9]*: ' "$T/err")
check "  and reports problems of many files ($n lines)" [ "$n" -ge 30 ]

# ---- 2. hostile files made at test time ----

G=$T/gen
mkdir -p "$G"
perl -e 'print "[job]\nagent = fake\nsymbols = OK-1\nname = ", "n" x 10485760, "\n"' >"$G/huge-name.job"
perl -e 'print "[job]\nagent = fake\nsymbols = OK-1\n", "garbage " x 1310720, "\n"' >"$G/huge-garbage.job"
perl -e 'print "[job]\nagent = fake\nsymbols =", map({ " S$_" } 1..1200000), "\n"' >"$G/huge-symbols.job"
printf '%s\n' ':4: name: longer than 256 bytes' >"$G/huge-name.expect"
printf '%s\n' ':4: expected KEY = VALUE' >"$G/huge-garbage.expect"
printf '%s\n' ':3: more than 1000000 symbols' >"$G/huge-symbols.expect"
for f in "$G"/*.job; do
	name=${f##*/}
	name=${name%.job}
	expect=$(cat "$G/$name.expect")
	r check "$f"
	is "$rc" 65 "$name ($(wc -c <"$f") bytes): check exits 65"
	like "$(cat "$T/err")" "$expect" "$name: stderr matches /$expect/"
done

perl -e 'my $h = "[job]\nagent = fake\nsymbols = OK-1\n; ";
	print $h, "x" x (64 * 1048576 - length $h), "\n"' >"$G/big.job"
is "$(wc -c <"$G/big.job")" 67108865 "made a job file of 64 MiB + 1 byte"
r check "$G/big.job"
is "$rc" 65 "64 MiB + 1 byte: check exits 65"
like "$(cat "$T/err")" 'larger than 64 MiB' "  because it is larger than 64 MiB"

if [ -z "${RUNNER_VALGRIND:-}" ]; then
	truncate -s -1 "$G/big.job" && printf '\n' | dd of="$G/big.job" bs=1 \
		seek=67108863 conv=notrunc 2>/dev/null
	is "$(wc -c <"$G/big.job")" 67108864 "made a job file of exactly 64 MiB"
	r check "$G/big.job"
	is "$rc" 0 "exactly 64 MiB: check exits 0"
	perl -e 'print "[job]\nagent = fake\nsymbols =", map({ " S$_" } 1..1000000), "\n"' >"$G/million.job"
	r check "$G/million.job"
	is "$rc" 0 "1,000,000 symbols on one $(wc -c <"$G/million.job")-byte line: exit 0"
	like "$(cat "$T/out")" 'ok: 1000000 symbols' "  all 1,000,000 counted"
	rm -f "$G/million.job"
else
	ok 0 "# SKIP exactly 64 MiB under valgrind"
	ok 0 "# SKIP exactly 64 MiB under valgrind"
	ok 0 "# SKIP 1,000,000 symbols under valgrind"
	ok 0 "# SKIP 1,000,000 symbols under valgrind"
fi
printf "\n" >>"$G/big.job"

# An agent that the configuration does not define.
printf '[job]\nagent = ghost\nsymbols = OK-1\n' >"$G/ghost.job"
r check "$G/ghost.job"
is "$rc" 65 "check of a job naming an agent not in the config exits 65"
like "$(cat "$T/err")" ":2: agent 'ghost' is not defined in " "  and says so at line 2"

# symbols_file through a symlink inside the home that points outside.
mkdir -p "$H/u"
echo SECRET-1 >"$T/secret.txt"
ln -s "$T/secret.txt" "$H/u/out.txt"
printf '[job]\nagent = fake\nsymbols_file = u/out.txt\n' >"$G/symlink-out.job"
r check "$G/symlink-out.job"
is "$rc" 65 "symbols_file: a symlink pointing outside the home: exit 65"
like "$(cat "$T/err")" ':3: symbols_file u/out.txt leads outside the home' "  refused at line 3"

# ---- 3. every invalid file dropped into spool/ at once, then run ----

mkhome
names=
for f in "$CORPUS"/*.job; do
	name=${f##*/}
	name=${name%.job}
	[ "$(cat "$CORPUS/$name.expect")" = valid ] && continue
	[ -f "$CORPUS/$name.todo" ] && continue
	cp "$f" "$H/spool/.$name.tmp"
	names="$names $name"
done
for name in huge-name huge-garbage huge-symbols big; do
	mv "$G/$name.job" "$H/spool/.$name.tmp"
	names="$names $name"
done
for name in $names; do
	mv "$H/spool/.$name.tmp" "$H/spool/$name.job"
done
run_spool 20
check "run over $(echo $names | wc -w) invalid files returns in time (exit $rc)" \
	[ "$rc" != 124 ]
check "  and does not crash" [ "$rc" -lt 128 ]
check "  no batch directory was made" no_batches
for name in $names; do
	src=$CORPUS/$name.job
	[ -f "$src" ] || src=
	reason=$H/spool/rejected/$name.job.reason
	st=0
	why=
	if [ -e "$H/spool/$name.job" ]; then
		st=1 why="still in spool/"
	elif [ ! -f "$H/spool/rejected/$name.job" ]; then
		st=1 why="not in spool/rejected/"
	elif [ -n "$src" ] && ! cmp -s "$src" "$H/spool/rejected/$name.job"; then
		st=1 why="rejected copy differs"
	elif [ ! -f "$reason" ]; then
		st=1 why="no $name.job.reason"
	elif [ "$(wc -l <"$reason")" != 1 ] || [ ! -s "$reason" ]; then
		st=1 why="reason is not one line: $(head -c 200 "$reason")"
	fi
	ok $st "$name: moved to spool/rejected/ with a one-line reason"
	[ -n "$why" ] && diag "$why"
done
# The reason is the first problem found, with the file and its line.
for name in $names; do
	if [ "$name" = big ]; then
		want="^spool/big.job: larger than 64 MiB\$"
	else
		want="^spool/$name.job:[0-9]+: [^ ]"
	fi
	like "$(cat "$H/spool/rejected/$name.job.reason" 2>/dev/null)" \
		"$want" "$name: the reason is /$want/"
done
rm -f "$H/spool/rejected/big.job" "$H/spool/rejected/huge-"*.job

# ---- 4. entries that are not regular files ----

mkhome
mkdir -p "$T/elsewhere"
printf '[job]\nagent = fake\nsymbols = OK-1\nid = from-symlink\n' >"$T/elsewhere/valid.job"
cp "$T/elsewhere/valid.job" "$T/valid.orig"
ln -s "$T/elsewhere/valid.job" "$H/spool/link.job"
ln -s "$T/elsewhere/nonexistent.job" "$H/spool/dangling.job"
mkfifo "$H/spool/fifo.job"
mkdir "$H/spool/dir.job"
cp "$T/valid.orig" "$H/spool/dir.job/inner.job"
printf '[job]\nagent = fake\nsymbols = OK-1\nid = from-hidden\n' >"$H/spool/.hidden.job"
cp "$H/spool/.hidden.job" "$T/hidden.orig"
run_spool 10
check "run with a symlink, a FIFO and a directory returns in time (exit $rc)" \
	[ "$rc" != 124 ]
check "  and does not crash" [ "$rc" -lt 128 ]
check "  no batch directory was made" no_batches
check "symlink moved to spool/rejected/ as a symlink" \
	[ -L "$H/spool/rejected/link.job" ]
like "$(cat "$H/spool/rejected/link.job.reason" 2>/dev/null)" 'symlink' \
	"  its reason mentions the symlink"
check "  its target is still in place, a regular file" \
	is_regular "$T/elsewhere/valid.job"
check "  its target is untouched" cmp -s "$T/elsewhere/valid.job" "$T/valid.orig"
check "dangling symlink moved to spool/rejected/" [ -L "$H/spool/rejected/dangling.job" ]
check "FIFO moved to spool/rejected/ as a FIFO" [ -p "$H/spool/rejected/fifo.job" ]
like "$(cat "$H/spool/rejected/fifo.job.reason" 2>/dev/null)" 'FIFO' \
	"  its reason mentions the FIFO"
check "directory moved to spool/rejected/" [ -d "$H/spool/rejected/dir.job" ]
like "$(cat "$H/spool/rejected/dir.job.reason" 2>/dev/null)" 'directory' \
	"  its reason mentions the directory"
check "  the directory's content was not claimed" \
	cmp -s "$H/spool/rejected/dir.job/inner.job" "$T/valid.orig"
for f in link fifo dir dangling; do
	n=$(wc -l <"$H/spool/rejected/$f.job.reason" 2>/dev/null)
	is "$n" 1 "$f.job.reason is one line"
done
check "dot-file spool/.hidden.job is ignored and stays" \
	cmp -s "$H/spool/.hidden.job" "$T/hidden.orig"
check "  and is not moved to rejected/" [ ! -e "$H/spool/rejected/.hidden.job" ]
is "$(ls -A "$H/spool" | sort | tr '\n' ' ')" ".hidden.job rejected " \
	"spool/ holds only the dot-file and rejected/"

# `runner check` on such entries must not hang either.
mkfifo "$H/fifo2.job"
timeout 10 $RUNNER_CMD -C "$H" check "$H/fifo2.job" >"$T/out" 2>"$T/err"
rc=$?
check "check of a FIFO returns in time and fails (exit $rc)" failed_in_time
timeout 10 $RUNNER_CMD -C "$H" check "$H/spool" >"$T/out" 2>"$T/err"
rc=$?
check "check of a directory fails (exit $rc)" failed_in_time

# ---- 5. hostile file names in spool/ ----

mkhome
bad_job='[job]\nagent = fake\nsymbols = $X\n'
nl_name=$(printf 'nl\nforged.job:1: all fine')
long_name=$(printf '%0250d' 0 | tr 0 L)
# shellcheck disable=SC2059
printf "$bad_job" >"$H/spool/$nl_name.job"
printf "$bad_job" >"$H/spool/-rf *.job"
printf "$bad_job" >"$H/spool/$long_name.job"
printf "$bad_job" >"$H/spool/$(printf 'caf\303\251 \342\202\254').job"
printf "$bad_job" >"$H/spool/$(printf 'bad\377utf8').job"
run_spool 10
check "run over hostile file names returns in time (exit $rc)" [ "$rc" != 124 ]
check "  no batch directory was made" no_batches
is "$(ls -A "$H/spool" | grep -c '\.job$')" 0 "  no job left in spool/"
check "'-rf *.job' rejected with its reason" \
	[ -f "$H/spool/rejected/-rf *.job.reason" ]
check "a UTF-8 name rejected with its reason" \
	[ -f "$H/spool/rejected/$(printf 'caf\303\251 \342\202\254').job.reason" ]
check "a name with a byte 0xFF rejected with its reason" \
	[ -f "$H/spool/rejected/$(printf 'bad\377utf8').job.reason" ]
if grep -q '^runner: forged' "$T/err"; then st=1; else st=0; fi
ok $st "a newline in a spool file name cannot forge a stderr line"
if grep -q 'invalid symbol' "$H/spool/rejected/$nl_name.job.reason" 2>/dev/null
then st=0; else st=1; fi
ok $st "  the reason of that file names the problem"
# NAME and NAME.reason must both fit in 255 bytes: the name is shortened in
# the middle, keeping its .job.
short=$(ls "$H/spool/rejected" | grep '^LLL.*~\.job$' | head -1)
if [ -n "$short" ] && [ -f "$H/spool/rejected/$short.reason" ]; then st=0; else st=1; fi
ok $st "a 254-byte name is rejected as a shortened NAME~.job with its .reason"
[ "$st" = 0 ] || diag "rejected/: $(ls "$H/spool/rejected" | grep '^LLL' | cut -c1-20,200- | tr '\n' ' ')"
r check "$H/spool/rejected/$nl_name.job"
if grep -q '^runner: forged' "$T/err"; then st=1; else st=0; fi
ok $st "check: a newline in a file name cannot forge a stderr line"

done_testing
