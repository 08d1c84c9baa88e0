#!/bin/sh
# Figures that are true: `stats` gives the same numbers for a batch wherever
# it lives (batches/, archived, restored, the archive index rebuilt).
. "${RUNNER_SRC:-.}/tests/lib.sh"

# sdiff A B: the top-level keys of two JSON documents that differ (but
# archived_batches, which says where batches live), or nothing.
sdiff() {
	perl -MJSON::PP -e '
		my @d = map { local $/; open my $f, "<", $_ or die "$_: $!";
			      JSON::PP->new->decode(<$f>) } @ARGV;
		my $c = JSON::PP->new->canonical;
		delete $_->{archived_batches} for @d;
		for my $k (sort keys %{{ %{$d[0]}, %{$d[1]} }}) {
			my ($x, $y) = map { $c->allow_nonref->encode($_->{$k}) } @d;
			print "$k: $x != $y\n" if $x ne $y;
		}' "$1" "$2"
}

# ---- (a) stats is the same wherever a batch lives ----
mkhome
job f1 <<JOB
[job]
agent = fake
id = fig-1
symbols = OK-A FLAKY-2-B EXIT-65-C SEGV-D
JOB
r run
job f2 <<JOB
[job]
agent = fake
id = fig-2
symbols = OK-E FLAKY-3-F EXIT-65-C
JOB
r run
job f3 <<JOB
[job]
agent = fake
id = fig-3
symbols = OK-G EXIT-64-H
JOB
r run
is "$(ls "$H/batches" | grep -c '^fig-')" 3 "three final batches"
r stats --json
cp "$T/out" "$T/before.json"
is "$(jq "$T/before.json" '$d->{attempts}')" 14 "stats: 14 attempts (7 + 5 + 2)"
is "$(jq "$T/before.json" '$d->{error_categories}{engine_error}')" 1 "stats: one engine error (the crash)"

# Archive fig-1 and fig-2 (fig-3 is kept out of the way), restore fig-1:
# the index is rewritten while fig-2 is still in it.
mv "$H/batches/fig-3" "$T/fig-3"
r archive --older-than 0
is "$rc" 0 "archive fig-1 and fig-2"
mv "$T/fig-3" "$H/batches/fig-3"
r stats --json
cp "$T/out" "$T/archived.json"
is "$(jq "$T/archived.json" '$d->{archived_batches}')" 2 "two batches archived"
is "$(sdiff "$T/before.json" "$T/archived.json")" "" "stats of archived batches: every figure as before"
r restore fig-1
is "$rc" 0 "restore fig-1"
r stats --json
cp "$T/out" "$T/restored.json"
is "$(jq "$T/restored.json" '$d->{archived_batches}')" 1 "one batch still archived"
is "$(sdiff "$T/before.json" "$T/restored.json")" "" "after a restore beside another archive: every figure as before"

# The index rebuilt from the archives: read without it, then rewritten.
rm "$H/batches/archive/index.jsonl"
r stats --json
cp "$T/out" "$T/noindex.json"
is "$(sdiff "$T/before.json" "$T/noindex.json")" "" "without index.jsonl: every figure as before"
r archive --older-than 9999d
is "$rc" 0 "an archive run rebuilds the index"
check "index.jsonl is back" test -s "$H/batches/archive/index.jsonl"
is "$(jq "$H/batches/archive/index.jsonl" '$d->{attempts}')" 5 "the rebuilt line keeps the batch's attempts"
r stats --json
cp "$T/out" "$T/rebuilt.json"
is "$(sdiff "$T/before.json" "$T/rebuilt.json")" "" "with the rebuilt index: every figure as before"
r list --archived --json
is "$(jq "$T/out" '$d->[0]{failed_items}')" 1 "list --archived from the rebuilt index"
# An index an older version rewrote: the summary fields only.  Its
# figures come back from the archive's summary.json.
perl -MJSON::PP -i -ne '
	my $d = decode_json($_);
	my %keep = map { $_ => 1 } qw(batch_id name origin agent status created_at
		started_at completed_at total_items succeeded_items failed_items
		cancelled_items pending_items running_items paused_items archive
		archived_at archive_bytes);
	delete $d->{$_} for grep { !$keep{$_} } keys %$d;
	print encode_json($d), "\n";' "$H/batches/archive/index.jsonl"
is "$(jq "$H/batches/archive/index.jsonl" '$d->{attempts}')" null "an index of the summary fields only"
r stats --json
cp "$T/out" "$T/short.json"
is "$(sdiff "$T/before.json" "$T/short.json")" "" "with such an index: every figure as before"
r archive --older-than 9999d
is "$(jq "$H/batches/archive/index.jsonl" '$d->{attempts}')" 5 "the next archive run writes the line whole"
r restore fig-2
r stats --json
cp "$T/out" "$T/back.json"
is "$(jq "$T/back.json" '$d->{archived_batches}')" 0 "every batch restored"
is "$(sdiff "$T/before.json" "$T/back.json")" "" "every batch restored: every figure as before"

done_testing
