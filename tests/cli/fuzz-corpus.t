#!/bin/sh
# The fuzz corpora (tests/fuzz/corpus) replayed through their harnesses
# without libFuzzer (tests/fuzz/replay.c): every input that once found
# something in the job parser, the configuration parser or journal replay
# and its views goes on being tried, by every make check, and by make asan
# under the sanitizers (a memory error or a leak fails it there).
. "${RUNNER_SRC:-.}/tests/lib.sh"

for n in job conf journal; do
	TMPDIR=$T "$BUILD/fuzz/$n-replay" "$SRC/tests/fuzz/corpus/$n" \
		>"$T/out" 2>"$T/err"
	rc=$?
	is "$rc" 0 "$n: the corpus replays ($(cat "$T/out"))"
	[ "$rc" = 0 ] || tail -20 "$T/err" | sed 's/^/# /'
	count=$(sed -n 's/^\([0-9]*\) inputs$/\1/p' "$T/out")
	check "$n: the corpus has seeds and found inputs" test "${count:-0}" -ge 10
done
is "$(ls -A "$T" | grep -c '^runner-fuzz-')" 0 "the harnesses remove their scratch directories"
done_testing
