#!/bin/sh
# Journals and views that lie: a journal cut inside its item list, garbage
# in the middle, an empty or overwritten journal, a batch.json overwritten,
# megabytes of one repeated byte after the records (live and archived),
# and a byte-flip sweep.  Each must be said by every view, with its
# offset, refused by run (the batch left as it is, the others run), and
# repaired only by `runner fsck BATCH --cut`, which keeps a copy.
. "${RUNNER_SRC:-.}/tests/lib.sh"

# Generous: on a loaded machine these take well under a second.
TMO=${DAMAGE_TIMEOUT:-60}
J() { echo "$H/batches/$1/journal"; }
# The offset where record N (1-based) starts, from the documented framing
# (a 24-byte header, then u32 length | u32 crc | u64 seq | payload).
rec_off() {
	perl -e 'local $/; open my $f, "<", $ARGV[0] or die; binmode $f;
		my $d = <$f>; my $o = 24;
		for (2 .. $ARGV[1]) { $o += 16 + unpack("V", substr($d, $o, 4)) }
		print $o' "$1" "$2"
}
size() { wc -c <"$1" | tr -d ' '; }
# A home with batch $1 of 5 items run to its end, then its views made to
# look like those of a batch whose runner died (so run takes it again).
five() {
	job "$1" <<JOB
[job]
agent = fake
id = $1
symbols = OK-1 OK-2 OK-3 OK-4 OK-5
JOB
	r run "$H/spool/$1.job"
	cp "$(J "$1")" "$T/$1.orig"
}
orphan() { rm -f "$H/batches/$1/summary.json" "$H/batches/$1/batch.json"; }

# --- a journal cut inside its ITEMS record ------------------------------------
mkhome
five cut
items=$(rec_off "$(J cut)" 2)
truncate -s $((items + 10)) "$(J cut)"
orphan cut
r run
like "$(cat "$T/err")" "batches/cut/journal: its item list stops after 0 of 5 items at offset $items .*the batch is left as it is \(runner fsck cut\)" \
	"run: a journal cut inside its item list is damaged, not an empty batch"
is "$(size "$(J cut)")" $((items + 10)) "  the torn bytes are not cut: the batch is left as it is"
r show cut
is "$rc" 74 "  show: exit 74"
like "$(cat "$T/err")" "item list stops after 0 of 5 items" "  show says so"
r fsck cut --cut
is "$rc" 74 "  fsck --cut does not make a batch out of it"
like "$(cat "$T/err")" "keeps no whole item list: not cut" "  and says why"

# --- garbage in the middle, while the runner appends ---------------------------
mkhome
five mid
at=$(rec_off "$(J mid)" 4)
{ head -c "$at" "$T/mid.orig"; printf 'GARBAGE-GARBAGE-GARBAGE'; tail -c +$((at + 1)) "$T/mid.orig"; } >"$(J mid)"
cp "$(J mid)" "$T/mid.damaged"
r show mid
is "$rc" 74 "damage in the middle: show exits 74"
like "$(cat "$T/err")" "batches/mid/journal: damaged at offset $at: 23 bytes that do not verify, then record 4 verifies at offset $((at + 23))" \
	"  show says where, and where records verify again"
r --json show mid
is "$rc" 74 "  show --json: exit 74 too"
like "$(cat "$T/err")" "damaged at offset $at" "  and the same line (the two views agree)"
is "$(jq "$T/out" '$d->{status}')" pending "  its document is the journal's state before the damage"
r fsck mid
is "$rc" 74 "fsck: exit 74"
like "$(cat "$T/out")" "$at-$((at + 23))  damaged: 23 bytes that do not verify" "  the damaged span with its offsets"
like "$(cat "$T/out")" "$((at + 23))-$(size "$(J mid)")  records 4-[0-9]+ verify \(after a damage: not replayed\)" \
	"  the records that verify after it"
orphan mid
job other <<JOB
[job]
agent = fake
id = other
symbols = OK-A
JOB
r run
like "$(cat "$T/err")" "batches/mid/journal: damaged at offset $at.*the batch is left as it is \(runner fsck mid\)" \
	"run refuses the damaged batch in one line naming runner fsck"
check "  its journal is left byte for byte" cmp -s "$(J mid)" "$T/mid.damaged"
is "$(jq "$H/batches/other/batch.json" '$d->{status}')" completed "  the other batch runs"
r fsck mid --cut
is "$rc" 0 "fsck --cut: exit 0"
check "  keeps the journal whole beside it" cmp -s "$T/mid.damaged" "$(ls "$H"/batches/mid/journal.damaged-* | head -1)"
is "$(size "$(J mid)")" "$at" "  cuts it at the first damage"
is "$(jq "$H/batches/mid/batch.json" '$d->{batch_id}')" mid "  and rebuilds batch.json"
r fsck mid
is "$rc" 0 "  fsck is clean after it"
r run
is "$(jq "$H/batches/mid/batch.json" '"$d->{status} $d->{succeeded_items}"')" "completed 5" \
	"  run then finishes the batch"

# --- an empty or overwritten journal ------------------------------------------
mkhome
five empty
: >"$(J empty)"
r show empty
is "$rc:$(cat "$T/err")" "74:runner: batches/empty/journal: empty file: not a runner journal; runner fsck says more" \
	"an empty journal: what is wrong, not \"Invalid argument\""
printf 'this is not a journal at all, just text\n' >"$(J empty)"
r show empty
like "$(cat "$T/err")" "batches/empty/journal: not a runner journal \(no RUNJRNL header at offset 0\)" \
	"an overwritten journal: said, with where"
r fsck empty
is "$rc" 74 "  fsck: exit 74"
like "$(cat "$T/err")" "not a runner journal.*submit it again" "  and what to do"

# --- a batch.json overwritten with garbage -------------------------------------
mkhome
five view
cp "$H/batches/view/batch.json" "$T/view.json"
printf 'garbage\n' >"$H/batches/view/batch.json"
touch "$H/batches/view/batch.json"
r --json show view
is "$rc" 0 "a garbage batch.json: show --json exit 0 (the document is rebuilt)"
like "$(cat "$T/err")" "batches/view/batch.json: damaged view \(it does not parse as JSON\); rebuilt from the journal" \
	"  and says so"
is "$(jq "$T/out" '"$d->{batch_id} $d->{status}"')" "view completed" "  printing the journal's document, not the garbage"
cp "$T/view.json" "$H/batches/view/batch.json"
printf 'garbage\n' >"$H/batches/view/summary.json"
r list
like "$(cat "$T/out")" "^view +completed" "list: a garbage summary.json falls back to batch.json"
printf 'garbage\n' >"$H/batches/view/batch.json"
r list
like "$(cat "$T/out")" "^view +damaged" "list: both views garbage: listed as damaged"
like "$(cat "$T/err")" "batches/view: damaged views" "  and said"
r fsck view
like "$(cat "$T/out")" "batch.json +does not parse as JSON" "fsck says the view is damaged"
r fsck view --cut
is "$rc" 0 "fsck --cut rebuilds the views of a sound journal"
is "$(jq "$H/batches/view/batch.json" '$d->{status}')" completed "  from the journal"
check "  and keeps no copy: nothing was cut" test ! -e "$(ls "$H"/batches/view/journal.damaged-* 2>/dev/null | head -1)"

# --- 18 MiB of one repeated byte after 2 records -------------------------------
# (Before: every offset searched, the rest checksummed each time: hours.)
mkhome
five big
two=$(rec_off "$(J big)" 3)
head -c "$two" "$T/big.orig" >"$(J big)"
perl -e 'print "\x01" x (18 << 20)' >>"$(J big)"
for c in "show big" "list" "fsck big"; do
	timeout -k 5 $TMO $RUNNER_CMD -C "$H" $c >"$T/out" 2>"$T/err"
	rc=$?
	ok $([ "$rc" -lt 124 ] && echo 0 || echo 1) "18 MiB of one byte: $c ends (exit $rc)"
done
like "$(cat "$T/out")" "$two-$((two + (18 << 20)))  torn tail" "  fsck: one pass over it"
orphan big
timeout -k 5 $TMO $RUNNER_CMD -C "$H" run >"$T/out" 2>"$T/err"
rc=$?
is "$rc" 0 "  run ends (exit 0)"
ok $([ "$(size "$(J big)")" -lt $((two + 65536)) ] && echo 0 || echo 1) \
	"  having cut the torn tail (nothing after it verifies)"
is "$(jq "$H/batches/big/batch.json" '"$d->{status} $d->{succeeded_items}"')" "completed 5" \
	"  and run the batch again"

# The same journal, archived: show of it reads the archive's journal.
mkhome
five arch
two=$(rec_off "$(J arch)" 3)
head -c "$two" "$T/arch.orig" >"$(J arch)"
perl -e 'print "\x01" x (18 << 20)' >>"$(J arch)"
touch -d '2000-01-01' "$H/batches/arch/journal"
r archive --older-than 0s
is "$rc" 0 "a batch with that journal is archived"
timeout -k 5 $TMO $RUNNER_CMD -C "$H" show arch >"$T/out" 2>"$T/err"
rc=$?
is "$rc" 0 "  show of it ends (exit 0)"
like "$(cat "$T/out")" "archived .* runner restore arch" "  showing the archived batch"
r restore arch
timeout -k 5 $TMO $RUNNER_CMD -C "$H" list >"$T/out" 2>"$T/err"
rc=$?
is "$rc" 0 "  after restore, list ends (exit 0)"

# --- a byte-flip sweep ----------------------------------------------------------
mkhome
five sweep
n=$(size "$T/sweep.orig")
bad=0
o=0
while [ $o -lt "$n" ]; do
	perl -e 'local $/; open my $f, "<", $ARGV[0] or die; binmode $f;
		my $d = <$f>; substr($d, $ARGV[1], 1) ^= "\xa5"; print $d' \
		"$T/sweep.orig" "$o" >"$(J sweep)"
	for c in "show sweep" "fsck sweep"; do
		timeout -k 5 10 $RUNNER_CMD -C "$H" $c >/dev/null 2>&1
		rc=$?
		if [ "$rc" -ge 124 ]; then
			bad=$((bad + 1))
			diag "byte $o flipped: $c: exit $rc"
		fi
	done
	o=$((o + 11))
done
is "$bad" 0 "a byte flipped every 11 bytes of a journal: show and fsck never crash or hang"

done_testing
