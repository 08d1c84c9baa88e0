#!/bin/sh
# The engine under deterministic simulation (tests/sim/sim.c): seeded
# scenarios of outages, broken symbols, users and runners killed -9, with
# every invariant checked after every step.  A failure prints its seed and
# the command that replays it.  `make sim SEEDS=N` runs many more.
. "${RUNNER_SRC:-.}/tests/lib.sh"

SIM=$BUILD/sim/sim
if [ ! -x "$SIM" ]; then
	echo "1..0 # SKIP $SIM is not built"
	exit 0
fi
# A fixed set of seeds, the same every run; fewer under the sanitizers.
chunks=16 per=25 big=6 bigper=10
case $RUNNER in *asan*) chunks=4 per=10 big=2 bigper=3 ;; esac
k=0
while [ $k -lt $chunks ]; do
	seed=$((1 + k * per))
	"$SIM" -n $per -i 20 $seed 2>"$T/sim.err"
	ok $? "$per scenarios of 20 items from seed $seed" || cat "$T/sim.err" >&2
	k=$((k + 1))
done
k=0
while [ $k -lt $big ]; do
	seed=$((100000 + k * bigper))
	"$SIM" -n $bigper -i 100 $seed 2>"$T/sim.err"
	ok $? "$bigper scenarios of 100 items from seed $seed" || cat "$T/sim.err" >&2
	k=$((k + 1))
done
# Seeds that once failed, kept: a retry that fell due during a slow turn
# was neither taken nor waited for (the loop slept for ever).
for seed in 58; do
	"$SIM" -i 10 $seed 2>"$T/sim.err"
	ok $? "10 items, seed $seed (a retry due during a slow turn)" ||
		cat "$T/sim.err" >&2
done
done_testing
