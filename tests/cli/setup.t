#!/bin/sh
# First run and production set-up: runner init, the refusal of a directory
# that is not a home, make install/uninstall, the daemon's notifications to
# systemd (Type=notify) and its log lines on stderr, submit --id, and the
# variables agents receive from the runner's environment (pass_env,
# env_file).
. "${RUNNER_SRC:-.}/tests/lib.sh"

out() { "$RUNNER" -C "$H" output "$1" "$2" --attempt 1; }

# ---- not a home: refused, and nothing is made there ----
mkdir -p "$T/empty"
for c in "list" "show nope" "status" "run" "daemon --once" "groups" \
	 "stats" "archive --dry-run"; do
	$RUNNER_CMD -C "$T/empty" $c >"$T/out" 2>"$T/err"
	rc=$?
	is "$rc" 78 "$c outside a home: exit 78"
	like "$(cat "$T/err")" "^runner: $T/empty is not a runner home \(no conf/runner.ini\): name one with -C DIR or RUNNER_HOME, or make one with 'runner init DIR'\$" \
		"$c: one line naming -C, RUNNER_HOME and runner init"
done
is "$(ls -A "$T/empty")" "" "nothing was created in the directory"
(cd "$T/empty" && RUNNER_HOME= $RUNNER_CMD list >"$T/out" 2>"$T/err")
is "$?" 78 "list in a plain current directory: exit 78"
like "$(cat "$T/err")" "^runner: \. is not a runner home" "  and it says so"
is "$(ls -A "$T/empty")" "" "  and creates nothing there"
RUNNER_HOME=$T/empty $RUNNER_CMD list >"$T/out" 2>"$T/err"
is "$?" 78 "RUNNER_HOME naming a plain directory: exit 78"
$RUNNER_CMD -C "$T/missing" list >"$T/out" 2>"$T/err"
is "$?" 78 "a home that does not exist: exit 78"
check "  and it is not created" test ! -e "$T/missing"
# With -c naming the configuration, a directory with spool/ is a home.
mkhome
mkdir -p "$T/cfg-home/spool"
$RUNNER_CMD -C "$T/cfg-home" -c "$H/conf/runner.ini" list >"$T/out" 2>"$T/err"
is "$?" 0 "-c FILE: a directory with spool/ is a home"

# ---- runner init ----
$RUNNER_CMD init "$T/new" >"$T/out" 2>"$T/err"
is "$?" 0 "init DIR: exit 0"
like "$(cat "$T/out")" "^$T/new is a runner home now" "init says what it did"
for f in conf/runner.ini conf/example.job; do
	check "init wrote $f" test -f "$T/new/$f"
done
for d in batches spool spool/rejected logs state; do
	check "init made $d/" test -d "$T/new/$d"
done
$RUNNER_CMD -C "$T/new" run "$T/new/conf/example.job" >"$T/out" 2>"$T/err"
is "$?" 0 "the example job runs as it is"
like "$(cat "$T/out")" "items +3 total: 3 succeeded" "  all three items succeed"
# Every key written commented out is valid at its default.
sed 's/^;\([a-z_]* =\)/\1/' "$T/new/conf/runner.ini" >"$T/all.ini"
check "init's file: some keys are commented out" grep -q '^;timeout = 1h$' "$T/new/conf/runner.ini"
$RUNNER_CMD -C "$T/new" -c "$T/all.ini" check "$T/new/conf/example.job" >"$T/out" 2>"$T/err"
is "$?" 0 "every commented key, uncommented, is valid"
for s in runner retry breaker correlation retention classify "agent example"; do
	check "init's file has [$s]" grep -qx "\[$s\]" "$T/new/conf/runner.ini"
done
echo "; mine" >>"$T/new/conf/runner.ini"
$RUNNER_CMD init "$T/new" >"$T/out" 2>"$T/err"
is "$?" 0 "init on a home: exit 0"
check "  its conf/runner.ini is kept" grep -qx "; mine" "$T/new/conf/runner.ini"
like "$(cat "$T/out")" "is a home already" "  and it says so"
(cd "$T" && mkdir cwd && cd cwd && $RUNNER_CMD init >/dev/null 2>&1)
check "init without DIR: the current directory" test -f "$T/cwd/conf/runner.ini"

# ---- make install / uninstall ----
# Only of a ./runner already built: the test never compiles the tree.
if ! command -v make >/dev/null 2>&1 || [ ! -f "$SRC/Makefile" ] ||
   ! make -s -q -C "$SRC" BUILD="$BUILD" runner >/dev/null 2>&1; then
	diag "make install not checked: no make, or ./runner not up to date"
else
	make -s -C "$SRC" install DESTDIR="$T/dest" PREFIX=/usr >"$T/mk.out" 2>&1
	is "$?" 0 "make install DESTDIR=... PREFIX=/usr"
	is "$(cd "$T/dest" && find . -type f | sort | tr '\n' ' ')" \
		"./usr/bin/runner ./usr/lib/systemd/system/runner-nightly.service ./usr/lib/systemd/system/runner-nightly.timer ./usr/lib/systemd/system/runner.service ./usr/lib/systemd/system/runner@.service ./usr/share/bash-completion/completions/runner ./usr/share/doc/runner/examples/nightly.job ./usr/share/doc/runner/examples/runner.ini ./usr/share/man/man1/runner.1 ./usr/share/man/man5/runner-job.5 ./usr/share/man/man5/runner.conf.5 " \
		"  installs the binary, man pages, units, examples, completion"
	like "$("$T/dest/usr/bin/runner" --version)" "^runner [0-9]" "  the installed binary runs"
	is "$(grep -h '^ExecStart=' "$T/dest/usr/lib/systemd/system/runner.service")" \
		"ExecStart=/usr/bin/runner daemon" "  the unit names the installed binary"
	check "  no unit runs /usr/local/bin/runner" sh -c "! grep -q /usr/local/bin '$T'/dest/usr/lib/systemd/system/*"
	make -s -C "$SRC" uninstall DESTDIR="$T/dest" PREFIX=/usr >"$T/mk.out" 2>&1
	is "$?" 0 "make uninstall"
	is "$(cd "$T/dest" && find . -type f | wc -l | tr -d ' ')" 0 "  removes every file"
fi

# ---- submit --id ----
mkhome
printf '[job]\nagent = fake\nsymbols = OK-A\n' >"$T/n.job"
r submit --id nightly-2026-11-29 --wait "$T/n.job"
is "$rc" 0 "submit --id --wait: exit 0 (the batch completed)"
is "$(head -1 "$T/out")" nightly-2026-11-29 "  the batch has the given id"
check "  batches/nightly-2026-11-29" test -d "$H/batches/nightly-2026-11-29"
r submit --id nightly-2026-11-29 "$T/n.job"
is "$(cat "$T/out")" "duplicate of nightly-2026-11-29" "the same id again: a duplicate"
r submit --id 'bad id' "$T/n.job"
is "$rc" 64 "submit --id with a bad id: usage error"
r submit --id x1 "$T/n.job" "$T/n.job"
is "$rc" 64 "submit --id with two jobs: usage error"
printf '[job]\nagent = fake\nsymbols = EXIT-1-A\nmax_attempts = 1\n' >"$T/f.job"
r submit --id night-failed --wait "$T/f.job"
is "$rc" 1 "submit --wait of a batch with a failed item: exit 1"

# ---- the daemon: notifications to systemd, log lines on stderr ----
# listen SOCKET FILE: each datagram received on SOCKET ('@': abstract) as
# a line of FILE, its newlines as '|'.
listen() {
	perl -MSocket -e '
		my ($path, $file) = @ARGV;
		my $addr = $path =~ s/^@/\0/r;
		socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or die "socket: $!";
		bind($s, pack_sockaddr_un($addr)) or die "bind: $!";
		open my $o, ">>", $file or die; $o->autoflush(1);
		print $o "listening\n";
		while (defined recv($s, my $m, 4096, 0)) { $m =~ s/\n/|/g; print $o "$m\n"; }
	' "$1" "$2" &
	listener=$!
	wait_for sh -c "grep -q listening '$2' 2>/dev/null"
}
mkhome
mkdir -p "$H/gates"
: >"$T/derr"
js=$(stat -c '%d:%i' "$T/derr")
listen "$T/notify.sock" "$T/notes"
NOTIFY_SOCKET=$T/notify.sock JOURNAL_STREAM=$js $RUNNER -C "$H" daemon \
	>"$T/dout" 2>>"$T/derr" &
dpid=$!
check "the daemon says READY=1" wait_for grep -q 'READY=1' "$T/notes"
like "$(grep READY=1 "$T/notes")" "^READY=1\|STATUS=0 running, 0 queued, 0 paused$" \
	"  with its STATUS= counts"
job s <<JOB
[job]
id = held
agent = fake
symbols = GATE-A
JOB
check "STATUS= counts the running attempt" wait_for grep -q '^STATUS=1 running' "$T/notes"
job bad <<JOB
[job]
agent = nosuch
symbols = A
JOB
check "a rejected job: a warning on stderr" \
	wait_for grep -q '^<4>warning: rejected: ' "$T/derr"
touch "$H/gates/open.GATE-A"
check "STATUS= back to nothing running" wait_for grep -q '^STATUS=0 running' "$T/notes"
kill -TERM $dpid
wait $dpid
is "$?" 0 "the daemon drained and exited 0"
check "the daemon says STOPPING=1" grep -q '^STOPPING=1' "$T/notes"
like "$(head -1 "$T/derr")" "^<6>daemon started for $H " \
	"journald's stream: an info line with <6>"
check "every stderr line has a level prefix" sh -c "! grep -qv '^<[346]>' '$T/derr'"
check "logs/runner.log keeps the events" grep -q 'daemon started for' "$H/logs/runner.log"
check "  the rejected job at its level" grep -q '\] warning: rejected: ' "$H/logs/runner.log"
kill $listener 2>/dev/null
wait $listener 2>/dev/null
# An abstract socket, and stderr that is not journald's: plain lines.
listen "@runner-test-$$" "$T/notes2"
NOTIFY_SOCKET=@runner-test-$$ $RUNNER -C "$H" daemon --once >"$T/dout" 2>"$T/derr2"
is "$?" 0 "daemon --once with an abstract NOTIFY_SOCKET"
check "  READY=1 reached the abstract socket" wait_for grep -q 'READY=1' "$T/notes2"
check "  and STOPPING=1" wait_for grep -q 'STOPPING=1' "$T/notes2"
like "$(head -1 "$T/derr2")" "^runner: daemon started for $H " \
	"stderr not journald's: plain 'runner: ' lines"
kill $listener 2>/dev/null
wait $listener 2>/dev/null

# ---- pass_env and env_file ----
mkhome "pass_env = VENDOR_KEY UNSET_KEY
env_file = agent.env
env = EXPLICIT=env
[runner]
pass_env = HOME_WIDE
env_file = $T/home.env"
echo "FROM_HOME_FILE=1" >"$T/home.env"
cat >"$H/conf/agent.env" <<'ENV'
# the vendor's file, as systemd's EnvironmentFile= reads it
FILE_KEY="a quoted value"
export EXPORTED=yes

SINGLE='x y'
EXPLICIT=from-file
ENV
printf '[job]\nagent = fake\nsymbols = ENV-A\nmax_attempts = 1\n' >"$T/e.job"
VENDOR_KEY=s3cret-value HOME_WIDE=hw SECRET_TOKEN=leak UNSET_KEY= \
	$RUNNER_CMD -C "$H" run "$T/e.job" >"$T/out" 2>"$T/err"
is "$?" 0 "a run with pass_env and env_file"
envout=$(out "$(batch_id)" ENV-A)
like "$envout" "^VENDOR_KEY=s3cret-value\$" "pass_env: the named variable reaches the agent"
like "$envout" "^HOME_WIDE=hw\$" "[runner] pass_env: for every agent"
like "$envout" "^FROM_HOME_FILE=1\$" "[runner] env_file (an absolute path): for every agent"
like "$envout" "^UNSET_KEY=\$" "pass_env: an empty value is passed as empty"
like "$envout" "^FILE_KEY=a quoted value\$" "env_file: a quoted value, unquoted"
like "$envout" "^EXPORTED=yes\$" "env_file: 'export NAME=VALUE'"
like "$envout" "^SINGLE=x y\$" "env_file: single quotes"
like "$envout" "^EXPLICIT=env\$" "env wins over env_file"
check "a variable not named is not passed" sh -c "! printf '%s' \"\$1\" | grep -q SECRET_TOKEN" - "$envout"
check "no value in the logs" sh -c "! grep -rq s3cret-value '$H/logs' '$H/batches'/*/journal* '$T/err'"
# A bad env file: the configuration is refused, naming the line, not the value.
printf 'GOOD=1\nthis is not an assignment-s3cret\n1BAD=2\n' >"$H/conf/agent.env"
r check "$T/e.job"
is "$rc" 78 "a bad env_file line: exit 78"
like "$(cat "$T/err")" "env_file: .*/conf/agent.env:2: expected NAME=VALUE" "  names the file and line"
like "$(cat "$T/err")" "agent.env:3: the name must match" "  a bad name too"
check "  and never the value" sh -c "! grep -q s3cret '$T/err'"
rm "$H/conf/agent.env"
r check "$T/e.job"
like "$(cat "$T/err")" "env_file: .*/conf/agent.env: No such file or directory" \
	"a missing env_file: a configuration error"
mkhome "pass_env = RUNNER_HOME"
r check "$T/e.job"
is "$rc" 78 "pass_env of a RUNNER_ name: refused"

# SIGHUP reads the env file again.
mkhome "env_file = agent.env
max_concurrent = 1"
echo "ROTATED=one" >"$H/conf/agent.env"
$RUNNER -C "$H" daemon >"$T/dout" 2>&1 &
dpid=$!
wait_for test -e "$H/state/daemon.pid"
echo "ROTATED=two" >"$H/conf/agent.env"
kill -HUP $dpid
wait_for grep -q 'configuration reloaded' "$H/logs/runner.log"
job r <<JOB
[job]
id = rot
agent = fake
symbols = ENV-R
JOB
wait_for sh -c "grep -q '\"status\":\"completed\"' '$H/batches/rot/summary.json' 2>/dev/null"
like "$(out rot ENV-R)" "^ROTATED=two\$" "after SIGHUP the agent gets the env file's new value"
kill -TERM $dpid
wait $dpid

done_testing
