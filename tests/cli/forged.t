#!/bin/sh
# Hostile neighbours: journals, archives and claim directories forged by
# someone with write access to the home.  A symbol or id read back is
# checked exactly as a job file's: a batch whose journal names what no job
# may is refused, and nothing is run or made for it.
. "${RUNNER_SRC:-.}/tests/lib.sh"

# forge FILE FROM TO: every record of journal FILE with the bytes FROM
# replaced by TO (as long: the encoding keeps its lengths), its checksum
# made again; the journal's own format (see src/journal.h).
forge() {
	perl -MCompress::Zlib -e '
		my ($f, $from, $to) = @ARGV;
		length($from) == length($to) or die "forge: lengths differ\n";
		open my $h, "<:raw", $f or die "$f: $!"; local $/; my $j = <$h>; close $h;
		my $salt = unpack "V", substr($j, 12, 4);
		my ($off, $n) = (24, 0);
		while ($off + 16 <= length $j) {
			my ($len, $crc, $lo, $hi) = unpack "V V V V", substr($j, $off, 16);
			my $pl = substr($j, $off + 16, $len);
			$n += ($pl =~ s/\Q$from\E/$to/g);
			my $c = crc32(pack("V V V V", $salt, $lo, $hi, $len) . $pl);
			substr($j, $off + 4, 4) = pack "V", $c;
			substr($j, $off + 16, $len) = $pl;
			$off += 16 + $len;
		}
		$n or die "forge: $from not in $f\n";
		open $h, ">:raw", "$f.new" or die "$f.new: $!"; print $h $j; close $h;
		rename "$f.new", $f or die "$f: $!";
	' "$@"
}

# Agent "rec": logs its arguments, writes its result file and checkpoint
# (where the runner says), and fails; while $T/hold exists it waits.
cat >"$T/rec" <<EOF
#!/bin/sh
printf '%s\n' "\$@" >>"$T/argv"
if [ -e "$T/hold" ]; then
	: >"$T/started"
	while [ -e "$T/hold" ]; do sleep 0.05; done
	exit 0
fi
echo '{}' >"\$RUNNER_RESULT"
: >"\$RUNNER_CHECKPOINT"
exit 1
EOF
chmod +x "$T/rec"
mkhome "[agent rec]
command = $T/rec
timeout = 30s
[retry]
max_attempts = 1"

# 1. A batch left unfinished (its runner killed), its symbol then made a
# path that climbs out of the home: `runner run` refuses it.
job a <<EOF
[job]
agent = rec
id = unfinished
symbols = SYMBOL-aaaaaaaa
EOF
: >"$T/hold"
$RUNNER -C "$H" run >"$T/out1" 2>&1 &
pid=$!
check "the first attempt started" wait_for test -e "$T/started"
kill -9 $pid
wait $pid 2>/dev/null
rm -f "$T/hold" "$T/argv"
forge "$H/batches/unfinished/journal" SYMBOL-aaaaaaaa ../../../../ESC
r run
like "$(cat "$T/err")" "^runner: batch unfinished: journal: symbol '\.\./\.\./\.\./\.\./ESC' is not valid; the batch is refused" \
	"run: the batch is refused, the symbol named"
check "run: the agent never saw the forged symbol" test ! -e "$T/argv"
check "run: no file outside the home" test ! -e "$T/ESC" -a ! -e "$T/ESC.1.json"
is "$rc" 1 "run: exit 1 (an unfinished batch could not be taken)"

# 2. A final batch with a failed item whose symbol is made a terminal
# escape: retry-failed and show refuse it, the escape made visible.
job b <<EOF
[job]
agent = rec
id = escapes
symbols = FAILbbbbbbbb
EOF
r run
is "$rc" 1 "a batch with a failed item"
esc=$(printf '\033[31mRED\033[0m')
forge "$H/batches/escapes/journal" FAILbbbbbbbb "$esc"
rm -f "$T/argv"
r retry-failed escapes
like "$(cat "$T/err")" "^runner: batch escapes: journal: symbol '\\\\x1b\[31mRED\\\\x1b\[0m' is not valid; the batch is refused" \
	"retry-failed: refused, the escape shown as \\x1b"
check "retry-failed: exit status not 0 ($rc)" test "$rc" != 0
check "retry-failed: the agent never ran" test ! -e "$T/argv"
r show escapes --items
is "$rc" 65 "show --items: exit 65"
like "$(cat "$T/err")" "^runner: batch escapes: journal: symbol '\\\\x1b\[31mRED" \
	"show --items: refused, the symbol named"
check "show --items: no raw escape printed" sh -c "! grep -q \"\$(printf '\\033')\" '$T/out' '$T/err'"

# 3. A symbol that would reach the agent as an option.  A job may not give
# one (a symbol begins with a letter, a digit or '^'), nor may a journal.
job c <<EOF
[job]
agent = rec
id = options
symbols = FAILcccccccc
EOF
r run
forge "$H/batches/options/journal" FAILcccccccc "--output=/x/"
rm -f "$T/argv"
r retry-failed options
like "$(cat "$T/err")" "symbol '--output=/x/' is not valid; the batch is refused" \
	"retry-failed: a symbol that looks like an option is refused"
check "retry-failed: the agent never ran" test ! -e "$T/argv"
printf '[job]\nagent = rec\nsymbols = OK -rf\n' >"$T/dash.job"
r check "$T/dash.job"
like "$(cat "$T/err")" "invalid symbol '-rf'" "a job file may not give '-rf' either"

# 4. A half-done claim (batches/.claim-*) whose journal names an id that
# climbs out of batches/: the sweep does not rename it there; its job
# goes back to the spool and is claimed as a new job.
job d <<EOF
[job]
agent = rec
id = claimed-aaaa
symbols = FAILdddddddd
EOF
r run
mv "$H/batches/claimed-aaaa" "$H/batches/.claim-forged"
printf 'back.job' >"$H/batches/.claim-forged/spool_name"
forge "$H/batches/.claim-forged/journal" claimed-aaaa ../ESCAPED00
r run
check "sweep: nothing renamed out of batches/" test ! -e "$H/ESCAPED00"
check "sweep: the claim directory is gone" test ! -e "$H/batches/.claim-forged"
like "$(cat "$T/err")" "^runner: warning: batches/\.claim-forged: journal: batch id '\.\./ESCAPED00' is not valid" \
	"sweep: says why the claim was not finished"
check "sweep: its job was claimed again as a new batch" \
	test -e "$H/batches/claimed-aaaa/journal"

# 5. restore: a batch archived with a forged journal is refused before it
# is placed; the archive is kept.
job e <<EOF
[job]
agent = rec
id = archived
symbols = FAILeeeeeeeeeeee
EOF
r run
forge "$H/batches/archived/journal" FAILeeeeeeeeeeee ../../../../ESC2
r archive --older-than 0
is "$rc" 0 "the forged batch is archived (as files, unread)"
r restore archived
is "$rc" 65 "restore: exit 65"
like "$(cat "$T/err")" "^runner: batch archived: journal: symbol '\.\./\.\./\.\./\.\./ESC2' is not valid; not restored" \
	"restore: refused, the symbol named"
check "restore: nothing placed" test ! -e "$H/batches/archived"
check "restore: the archive is kept" test -e "$H/batches/archive/archived.tar.gz"
check "restore: no scratch directory left" sh -c "! ls -a '$H/batches' | grep -q restore"
r run
check "run after it: no file outside the home" test ! -e "$T/ESC2" -a ! -e "$T/ESC2.1.json"

# 6. restore writes no more than the index says the batch held: a member
# of 4 MiB of zeros (a few KiB compressed) added to an archive, with its
# manifest line, is refused before it is written.
job f <<EOF
[job]
agent = rec
id = bomb
symbols = FAILffff
EOF
r run
r archive --older-than 0
held=$(perl -MJSON::PP -ne '$d = decode_json($_); print $d->{unpacked_bytes} if $d->{batch_id} eq "bomb"' "$H/batches/archive/index.jsonl")
check "the index says what the batch's files hold (${held:-none})" test "${held:-0}" -gt 0
mkdir "$T/x"
tar -C "$T/x" -xzf "$H/batches/archive/bomb.tar.gz"
tar -tzf "$H/batches/archive/bomb.tar.gz" | grep -v '/\.manifest$' >"$T/x.list"
head -c 4194304 /dev/zero >"$T/x/bomb/zeros"
perl -MCompress::Zlib -e '
	open my $f, "<:raw", $ARGV[0] or die; local $/; my $z = <$f>;
	printf "%08x %d zeros\n", crc32($z), length $z' "$T/x/bomb/zeros" >>"$T/x/bomb/.manifest"
printf 'bomb/zeros\nbomb/.manifest\n' >>"$T/x.list"
tar -C "$T/x" --no-recursion -czf "$T/bomb.tar.gz" -T "$T/x.list"
cp "$T/bomb.tar.gz" "$H/batches/archive/bomb.tar.gz"
r restore bomb
is "$rc" 65 "restore: exit 65"
like "$(cat "$T/err")" "^runner: batches/archive/bomb\.tar\.gz: bomb/zeros: 4194304 bytes, past the $held the archive index says the batch holds; not restored" \
	"restore: the member is named, with the index's bound"
check "restore: nothing placed" test ! -e "$H/batches/bomb"
check "restore: no scratch directory left" sh -c "! ls -a '$H/batches' | grep -q restore"
check "restore: the archive is kept" test -e "$H/batches/archive/bomb.tar.gz"

# 7. state/events: a failure group whose id is a terminal escape, and a
# member whose batch id climbs out of batches/, are not folded in.
# ev FIELDS...: one line of the log, with its CRC-32 (src/shared.h).
ev() {
	perl -MCompress::Zlib -e '
		my $l = join "\t", @ARGV; printf "%s\t%08x\n", $l, crc32($l)' "$@" \
		>>"$H/state/events"
}
ms=$(($(date +%s) * 1000))
e=$(printf '\033')
ev G "$ms" "grp-$e[2J-1" sig1 rec vendor data_error E norm cause
ev G "$ms" grp-20260101-000000-1 sig2 rec vendor data_error E norm cause
ev M "$ms" grp-20260101-000000-1 ../../x AAPL
ev M "$ms" grp-20260101-000000-1 escapes "$e[31mRED"
ev M "$ms" grp-20260101-000000-1 escapes AAPL
r groups
check "groups: the forged group id is not folded in (no raw escape)" sh -c "! grep -q \"\$(printf '\\033')\" '$T/out' '$T/err'"
like "$(cat "$T/out")" 'grp-20260101-000000-1' "groups: the valid group is"
r groups --json
check "groups: the forged members are not" sh -c "! grep -q '\\.\\./\\.\\./x' '$T/out'"
is "$(jq "$T/out" 'join " ", scalar(@$d), map { "$_->{batch_id}/$_->{symbol}" } @{$d->[0]{members}}')" \
	"1 escapes/AAPL" "groups: one group, its one valid member"

# 8. state/recent-jobs: an entry whose batch id no job could give does not
# make a job a duplicate (of a terminal escape).
printf '[job]\nagent = rec\nsymbols = FAILgggg\n' >"$T/g.job"
sha=$(sha256sum "$T/g.job" | cut -d' ' -f1)
printf '%s %s %s\n' "$(($(date +%s) * 1000))" "$sha" "$(printf '\033[2Jx')" >>"$H/state/recent-jobs"
cp "$T/g.job" "$H/spool/g.job"
r run
check "recent-jobs: the job is claimed, not a duplicate of the forged entry" \
	sh -c "! grep -q duplicate '$T/err' && test ! -e '$H/spool/rejected/g.job'"
check "recent-jobs: no raw escape printed" sh -c "! grep -q \"\$(printf '\\033')\" '$T/out' '$T/err'"

# 9. state/history: a line naming a batch id no job could give is skipped.
f=$(grep -l '^FAILffff	' "$H"/state/history/* | head -1)
check "history: the symbol's bucket" test -n "$f"
grep '^FAILffff	' "$f" | head -1 | awk -F'\t' -v OFS='\t' -v b="$(printf '\033[2Jy')" '{ $2 = b; print }' >>"$f"
r history FAILffff
is "$rc" 0 "history: exit 0"
check "history: no raw escape printed" sh -c "! grep -q \"\$(printf '\\033')\" '$T/out' '$T/err'"
like "$(cat "$T/out")" '^bomb ' "history: the real row is shown"

# 10. state/symbols: a line whose symbol no job could give is not shown.
printf '%s\t%s\t1\t10\t1\t0\n' "$(printf '\033[2Jz')" "$(($(date +%s) * 1000))" >>"$H/state/symbols"
r status
check "status: no raw escape printed" sh -c "! grep -q \"\$(printf '\\033')\" '$T/out' '$T/err'"

# 11. summary.json: a batch id or name no job could give is not believed
# (list reads the journal instead).
job h <<EOF
[job]
agent = rec
id = listed
symbols = FAILhhhh
EOF
r run
perl -MJSON::PP -i -0pe '$d = decode_json($_); $d->{batch_id} = "\e[2Jq"; $d->{name} = "\e]0;title\a"; $_ = encode_json($d)' \
	"$H/batches/listed/summary.json"
r list
check "list: no raw escape printed" sh -c "! grep -q \"\$(printf '\\033')\" '$T/out' '$T/err'"
like "$(cat "$T/out")" '^listed ' "list: the batch is shown by its journal's id"

done_testing
