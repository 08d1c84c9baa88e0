#!/bin/sh
# Chaos: a writer drops JOBS job files of 1-20 items into spool/ while the
# daemon is killed with -9 KILLS times at seeded random instants (and
# restarted each time).  After a final `daemon --once`: every job became
# exactly one batch, every item has exactly one final state, nothing is
# left in spool/ or half claimed, and no child outlives its runner.
. "${RUNNER_SRC:-.}/tests/lib.sh"

JOBS=${CHAOS_JOBS:-500}
KILLS=${CHAOS_KILLS:-50}
mkhome "max_concurrent = 4"
t_start=$(date +%s)

# The writer: jobs of 1..20 items, the safe way (dot-file, then rename).
(
	i=1
	while [ $i -le "$JOBS" ]; do
		n=$(( (i * 7919) % 20 + 1 ))
		syms=""
		k=1
		while [ $k -le $n ]; do
			case $(( (i + k) % 5 )) in
			0) syms="$syms EXIT-65-$i-$k" ;;
			1) syms="$syms SLEEP-0.05-$i-$k" ;;
			*) syms="$syms OK-$i-$k" ;;
			esac
			k=$((k + 1))
		done
		printf '[job]\nagent = fake\nid = chaos-%d\nsymbols = %s\n' $i "$syms" >"$H/spool/.c$i.tmp"
		mv "$H/spool/.c$i.tmp" "$H/spool/c$i.job"
		[ $((i % 25)) = 0 ] && sleep 0.3
		i=$((i + 1))
	done
	touch "$T/writer-done"
) &
writer=$!

kill_n=0
seed=1
while [ $seed -le "$KILLS" ]; do
	$RUNNER -C "$H" daemon >>"$T/daemon.log" 2>&1 &
	d=$!
	delay=$(awk -v s=$seed 'BEGIN { srand(s); printf "%.3f", 0.05 + rand() * 0.5 }')
	sleep "$delay"
	kill -9 $d 2>/dev/null && kill_n=$((kill_n + 1))
	wait $d 2>/dev/null
	seed=$((seed + 1))
done
wait $writer
r daemon --once
is "$rc" 0 "the final daemon --once exits 0"
diag "$kill_n kills of the daemon; $JOBS jobs; $(( $(date +%s) - t_start )) s"

is "$(ls "$H/batches" | grep -c '^chaos-')" "$JOBS" "every job became a batch"
is "$(ls "$H/spool" | grep -c '\.job$')" 0 "nothing left in spool/"
is "$(ls "$H/spool/rejected" 2>/dev/null | wc -l)" 0 "nothing rejected (no job claimed twice)"
is "$(ls -a "$H/batches" | grep -c '^\.claim-')" 0 "no half-done claim"
perl -MJSON::PP -e '
	my ($dir, $jobs) = @ARGV;
	my ($bad, $items, $final, $wrong, $batches, $inter, $nofinal) = (0) x 7;
	for my $i (1 .. $jobs) {
		my $f = "$dir/chaos-$i/batch.json";
		open my $fh, "<", $f or do { $bad++; next };
		local $/; my $d = eval { decode_json(<$fh>) };
		if (!$d) { $bad++; next }
		$batches++;
		$nofinal++ unless $d->{status} =~ /^(completed|partial|failed|cancelled)$/;
		my $n = ($i * 7919) % 20 + 1;
		$wrong++ if @{$d->{items}} != $n;
		for my $it (@{$d->{items}}) {
			$items++;
			$final++ if $it->{state} =~ /^(succeeded|failed|cancelled)$/;
			my $want = $it->{symbol} =~ /^EXIT/ ? "failed" : "succeeded";
			$wrong++ if $it->{state} ne $want;
			$inter += grep { ($_->{outcome} // "") eq "interrupted" } @{$it->{attempt_log}};
		}
	}
	print "$bad $batches $nofinal $items $final $wrong $inter\n";
' "$H/batches" "$JOBS" >"$T/sum"
read bad batches nofinal items final wrong inter <"$T/sum"
is "$bad" 0 "every batch.json parses"
is "$nofinal" 0 "every batch is final"
is "$final" "$items" "every item ($items) has exactly one final state"
is "$wrong" 0 "each item ended as its kind says (no lost or doubled items)"
diag "$items items; $inter attempts interrupted by the kills"
check "the kills did interrupt attempts" test "$inter" -gt 0
is "$(grep -l "RUNNER_HOME=$H" /proc/[0-9]*/environ 2>/dev/null | wc -l)" 0 "no child left behind"
done_testing
