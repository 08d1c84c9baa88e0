#!/bin/sh
# Caps: job concurrency, agent max_concurrent and max_children, held across
# every runner process of the home; priorities across batches.
. "${RUNNER_SRC:-.}/tests/lib.sh"

CAPDIR=$T/cap
maxseen() { sort -n "$CAPDIR/seen" | tail -1; }
syms() { n=1; s=""; while [ $n -le "$2" ]; do s="$s CONC-$1-$n$3"; n=$((n + 1)); done; echo "$s"; }

# Two runner processes, two batches, one agent capped at 2.
mkhome "max_concurrent = 2
env = CAPDIR=$CAPDIR"
mkdir -p "$CAPDIR"
cat >"$T/a.job" <<JOB
[job]
agent = fake
symbols = $(syms 0.3 6 a)
JOB
cat >"$T/b.job" <<JOB
[job]
agent = fake
symbols = $(syms 0.3 6 b)
JOB
$RUNNER -C "$H" run "$T/a.job" >"$T/out.a" 2>&1 &
pa=$!
$RUNNER -C "$H" run "$T/b.job" >"$T/out.b" 2>&1 &
pb=$!
wait $pa; ra=$?
wait $pb; rb=$?
is "$ra.$rb" "0.0" "both runs succeed" ||
	{ diag "a: $(cat "$T/out.a")"; diag "b: $(cat "$T/out.b")"; } >&2
is "$(wc -l <"$CAPDIR/seen")" 24 "every item ran"
is "$(maxseen)" 2 "max_concurrent 2 held across two runner processes"

# max_children is global: two agents of cap 3 each, max_children 2.
rm -rf "$CAPDIR"; mkdir -p "$CAPDIR"
mkhome "max_concurrent = 3
env = CAPDIR=$CAPDIR
[agent fake2]
command = $SRC/tests/agents/fake
max_concurrent = 3
env = CAPDIR=$CAPDIR"
sed -i 's/^max_children = 4/max_children = 2/' "$H/conf/runner.ini"
printf '[job]\nagent = fake\nsymbols = %s\n' "$(syms 0.3 5 c)" >"$T/c.job"
printf '[job]\nagent = fake2\nsymbols = %s\n' "$(syms 0.3 5 d)" >"$T/d.job"
$RUNNER -C "$H" run "$T/c.job" >"$T/out.c" 2>&1 &
pa=$!
$RUNNER -C "$H" run "$T/d.job" >"$T/out.d" 2>&1 &
pb=$!
wait $pa; ra=$?
wait $pb; rb=$?
is "$ra.$rb" "0.0" "both runs succeed"
is "$(wc -l <"$CAPDIR/seen")" 20 "every item ran"
[ "$(wc -l <"$CAPDIR/seen")" = 20 ] || { diag "$(cat "$T/out.c" "$T/out.d")"; diag "$(cat "$H"/logs/*.log)"; }
is "$(maxseen)" 2 "max_children 2 held across processes and agents"

# Job concurrency = 1: one at a time, in file order.
rm -rf "$CAPDIR"; mkdir -p "$CAPDIR"
mkhome "env = CAPDIR=$CAPDIR"
job seq <<JOB
[job]
agent = fake
symbols = CONC-0.1-S1 CONC-0.1-S2 CONC-0.1-S3 CONC-0.1-S4 CONC-0.1-S5
concurrency = 1
JOB
r run
is "$(maxseen)" 1 "concurrency = 1 runs one at a time"
order=$(for f in "$CAPDIR"/order.*; do echo "$(cat "$f") ${f##*-}"; done | sort -n | awk '{print $2}' | tr '\n' ' ')
is "$order" "S1 S2 S3 S4 S5 " "in file order"
is "$(jq "$(bjson)" '$d->{configuration}{concurrency}')" 1 "configuration.concurrency"

# Priorities: with one slot, the higher-priority batch runs first.
rm -rf "$CAPDIR"; mkdir -p "$CAPDIR"
mkhome "env = CAPDIR=$CAPDIR
max_concurrent = 1"
job low <<JOB
[job]
agent = fake
symbols = CONC-0.05-L1 CONC-0.05-L2 CONC-0.05-L3
priority = -5
JOB
sleep 0.05
job high <<JOB
[job]
agent = fake
symbols = CONC-0.05-H1 CONC-0.05-H2 CONC-0.05-H3
priority = 50
JOB
r run
order=$(for f in "$CAPDIR"/order.*; do echo "$(cat "$f") ${f##*-}"; done | sort -n | awk '{print $2}' | tr '\n' ' ')
is "$order" "H1 H2 H3 L1 L2 L3 " "higher priority dispatched first"
done_testing
