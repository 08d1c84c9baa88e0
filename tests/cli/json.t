#!/bin/sh
# --json on every command: check, submit, retry-failed, pause, resume,
# cancel and restore print objects with the documented fields (one a
# line); a command without a JSON form refuses --json as a usage error.
. "${RUNNER_SRC:-.}/tests/lib.sh"

# perl over each line of $T/out (JSON objects, one a line): @e is the list.
lines() {
	perl -MJSON::PP -e '
		open my $f, "<", $ARGV[0] or die "$ARGV[0]: $!";
		my @e = map { JSON::PP->new->decode($_) } grep { /\S/ } <$f>;
		my $v = eval $ARGV[1]; die $@ if $@;
		print defined $v ? $v : "null";
	' "$T/out" "$1"
}
# The last line of $T/out, with its keys sorted: "k1,k2,...".
keys_of_last() {
	lines 'join "", map { "$_\n" } map { keys %$_ } @e' >>"$T/json-keys"
	lines 'join ",", sort keys %{$e[-1]}'
}

mkhome
cat >"$T/good.job" <<'JOB'
[job]
agent = fake
id = js
symbols = OK-1 EXIT-65-1
JOB
printf '[job]\nagent = nosuch\nsymbols = OK-1 bad$sym\nfoo = 1\n' >"$T/bad.job"

# --- check ---------------------------------------------------------------
r check --json "$T/good.job" "$T/bad.job" "$T/none.job"
is "$rc" 65 "check --json: exit 65 with an invalid file"
is "$(lines 'scalar @e')" 3 "check --json: one object per file"
is "$(lines 'join " ", map { $_->{ok} ? "true" : "false" } @e')" "true false false" \
	"check --json: ok per file"
is "$(lines '$e[0]{batch_id} . " " . $e[0]{agent} . " " . $e[0]{total_items} . " " . scalar @{$e[0]{diagnostics}}')" \
	"js fake 2 0" "check --json: a valid file's id, agent, symbols, no diagnostics"
is "$(lines 'join ";", map { "$_->{line}:$_->{key}:$_->{severity}" } @{$e[1]{diagnostics}}')" \
	"2:agent:error;3:symbols:error;4:foo:error" "check --json: each diagnostic's line and key"
like "$(lines '$e[1]{diagnostics}[2]{message}')" "unknown key 'foo'" "check --json: the message"
is "$(lines '$e[1]{diagnostics}[0]{file}')" "$T/bad.job" "check --json: the diagnostic's file"
is "$(lines 'defined $e[2]{diagnostics}[0]{line} ? "set" : "null"')" null \
	"check --json: an unreadable file's diagnostic has no line"
r check "$T/bad.job"
like "$(cat "$T/err")" "bad.job:4: unknown key" "check without --json: FILE:LINE on stderr"

# --- submit --------------------------------------------------------------
r submit --json "$T/good.job" "$T/bad.job"
is "$rc" 65 "submit --json: exit 65, nothing placed"
is "$(lines 'join " ", map { $_->{status} } @e')" "not_placed invalid" \
	"submit --json: status per job file"
is "$(lines 'scalar @{$e[1]{diagnostics}}')" 3 "submit --json: the invalid file's diagnostics"
r submit --json "$T/good.job"
is "$rc" 0 "submit --json: exit 0"
is "$(keys_of_last)" "batch_id,diagnostics,job_file,status,total_items" "submit --json: the fields"
is "$(lines '"$e[0]{batch_id} $e[0]{status} $e[0]{total_items}"')" "js submitted 2" \
	"submit --json: the batch id, status and symbol count"
r run
is "$rc" 1 "the submitted batch ran (one item failed)"

# --- retry-failed, pause, resume, cancel ---------------------------------
r retry-failed js --no-wait --json
is "$rc" 0 "retry-failed --no-wait --json: exit 0"
is "$(keys_of_last)" "carried_by,kind,requeued,target" "retry-failed --json: the fields"
is "$(lines '"$e[-1]{target} $e[-1]{kind} $e[-1]{requeued} $e[-1]{carried_by}"')" \
	"js batch 1 recorded" "retry-failed --json: one item requeued, recorded"
r pause js --json
is "$rc" 0 "pause --json: exit 0"
is "$(lines 'scalar @e')" 1 "pause --json: one object, nothing else on stdout"
is "$(keys_of_last)" "carried_by,kind,not_paused,paused,target" "pause --json: the fields"
is "$(lines '$e[-1]{paused}')" 1 "pause --json: one item paused"
r resume js --no-wait --json
is "$rc" 0 "resume --no-wait --json: exit 0"
is "$(keys_of_last)" "carried_by,kind,order,resumed,target" "resume --json: the fields"
is "$(lines '"$e[-1]{resumed} $e[-1]{order}"')" "1 progress" "resume --json: one item resumed"
r cancel js --json
is "$rc" 0 "cancel --json: exit 0"
is "$(lines 'scalar @e')" 1 "cancel --json: one object"
is "$(keys_of_last)" "cancelled,carried_by,kind,target" "cancel --json: the fields"
is "$(lines '"$e[-1]{target} $e[-1]{cancelled}"')" "js 1" "cancel --json: one item cancelled"
r resume js --json
is "$(lines '"$e[-1]{resumed} $e[-1]{status}"')" "0 final" "resume --json of a final batch: 0, final"

# --- restore -------------------------------------------------------------
r archive --older-than 0
r restore js --json
is "$rc" 0 "restore --json: exit 0"
is "$(keys_of_last)" "batch_id,path,restored_bytes,restored_files" "restore --json: the fields"
is "$(lines '$e[0]{batch_id} . " " . $e[0]{path}')" "js batches/js" "restore --json: the batch and its place"
bytes=$(find "$H/batches/js" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
is "$(lines '$e[0]{restored_bytes}')" "$bytes" "restore --json: restored_bytes is the batch's size"

# --- units in names, rounding ---------------------------------------------
r run --json
cp "$T/out" "$T/run.json"
job u <<JOB
[job]
agent = fake
id = ju
symbols = OK-1 OK-2 OK-3 SLEEP-0.1-4 EXIT-65-5
JOB
r run --json
cat "$T/out" >>"$T/run.json"
cp "$T/run.json" "$T/out"
is "$(lines 'scalar grep { !$_->{time_at} || $_->{time_at} ne $_->{time} } @e')" 0 \
	"run --json: every event's time_at is its time"
r status --json
is "$(perl -MJSON::PP -e 'local $/; my $d = decode_json(<STDIN>); print scalar grep { ($_->{last_processed} // "") ne ($_->{last_processed_at} // "") || !exists $_->{last_processed_at} } @{$d->{symbols}}' <"$T/out")" 0 \
	"status --json: last_processed_at beside last_processed, the same"
r show ju --json
cp "$T/out" "$T/show.json"
like "$(jq "$T/show.json" '$d->{performance}{items_per_second}')" '^([1-9][0-9]{0,2}|[1-9][0-9]{0,2}0+|[0-9]\.[0-9]{1,2}|[1-9][0-9]\.[0-9]|0\.0*[1-9][0-9]{0,2})$' \
	"show --json: items_per_second to 3 significant digits"
like "$(jq "$T/show.json" '$d->{performance}{duration_seconds}')" '^[0-9]+(\.[0-9]{1,3})?$' \
	"show --json: duration_seconds to 3 decimals"
like "$(jq "$T/show.json" '$d->{performance}{latency_ms}{avg}')" '^[0-9]+(\.[0-9])?$' \
	"show --json: latency_ms.avg to 1 decimal"
r stats --json
cp "$T/out" "$T/stats.json"
like "$(jq "$T/stats.json" '$d->{success_rate}')" '^(0|1|0\.[0-9]{1,4})$' "stats --json: success_rate to 4 decimals"
like "$(jq "$T/stats.json" '$d->{throughput}{items_per_second}')" '^[0-9.]+$' "stats --json: a rate"
r archive --older-than 0 --json
is "$(lines 'scalar grep { !defined $_->{archive_bytes} || $_->{archive_bytes} != $_->{bytes} } @e')" 0 \
	"archive --json: archive_bytes beside bytes"

# Every field name of every document above is in runner(1)'s JSON FIELDS.
sed -n '/^\.SH JSON FIELDS/,/^\.SH /p' "$SRC/man/runner.1" | sed 's/\\-/-/g' >"$T/fields.man"
check "runner(1) has a JSON FIELDS section" test -s "$T/fields.man"
for f in "$T/show.json" "$T/stats.json"; do
	perl -MJSON::PP -e 'local $/; print "$_\n" for keys %{ { map { $_ => 1 } walk(decode_json(<STDIN>)) } };
		sub walk { my ($v, $skip) = @_; ref $v eq "ARRAY" ? map { walk($_) } @$v :
			ref $v eq "HASH" ? map { my $k = $_; ($k, $k =~ /^(metrics|result|params|error_summary|error_categories|batches_by_status|items)$/ ? () : walk($v->{$k})) } keys %$v : () }' <"$f"
done >"$T/keys"
cat "$T/json-keys" >>"$T/keys" 2>/dev/null
missing=$(sort -u "$T/keys" | while read -r k; do grep -Eq "(^|[^a-z_])$k([^a-z_]|$)" "$T/fields.man" || echo "$k"; done | tr '\n' ' ')
is "$missing" "" "every field of show, stats (and the commands above) is in JSON FIELDS"

# --- commands without a JSON form ----------------------------------------
for c in "output js OK-1" "report js" "fsck js" "daemon --once"; do
	r $c --json
	is "$rc" 64 "${c%% *} --json: usage error (exit 64)"
	like "$(cat "$T/err")" "--json is not supported by ${c%% *}" "${c%% *} --json: says so"
	is "$(cat "$T/out")" "" "${c%% *} --json: nothing on stdout"
done
r output --help --json
is "$rc" 0 "output --help --json: the help still"

done_testing
