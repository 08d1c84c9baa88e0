#!/bin/sh
# Directories the runner owns: spool/rejected/ and what it makes under the
# home (batches/, logs/, state/ and below).  One another user planted or
# was handed is refused with a message naming it, never written in.  Runs
# as root, chown to uid 65534 playing "another user".
. "${RUNNER_SRC:-.}/tests/lib.sh"

if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP needs root (chown to another user)"
	exit 0
fi

badjob() {
	printf '[job]\nagent = nosuch\nsymbols = OK-1\n' >"$H/spool/.bad.tmp" &&
		mv "$H/spool/.bad.tmp" "$H/spool/bad.job"
}

# spool/rejected/ a symlink to another user's directory.
mkhome
r list
mkdir "$T/hers"
chown 65534 "$T/hers"
rm -rf "$H/spool/rejected"
ln -s "$T/hers" "$H/spool/rejected"
badjob
r run
check "spool/rejected a symlink: run fails (exit $rc)" [ "$rc" != 0 ]
like "$(cat "$T/err")" "^runner: $H/spool/rejected: a symlink, not a directory: refused" \
	"  the message names spool/rejected and says a symlink"
is "$(ls -A "$T/hers")" "" "  nothing is moved into the symlink's target"
check "  the job stays in spool/" test -f "$H/spool/bad.job"

# spool/rejected/ a directory of another user: her own, not ours.
rm "$H/spool/rejected"
mkdir "$H/spool/rejected"
chown 65534 "$H/spool/rejected"
r run
check "spool/rejected owned by uid 65534: run fails (exit $rc)" [ "$rc" != 0 ]
like "$(cat "$T/err")" "^runner: $H/spool/rejected: owned by uid 65534, not by the runner's user \(uid 0\) or root: refused" \
	"  the message says whose it is"
is "$(ls -A "$H/spool/rejected")" "" "  root's rejected job is not moved into it"
check "  the job stays in spool/" test -f "$H/spool/bad.job"
chown 0 "$H/spool/rejected"
chmod 0777 "$H/spool/rejected"
r run
like "$(cat "$T/err")" "spool/rejected: writable by others \(mode 0777\): refused" \
	"spool/rejected writable by others: refused"
chmod 0755 "$H/spool/rejected"
r run
check "spool/rejected the runner's again: the job is rejected into it" \
	test -f "$H/spool/rejected/bad.job"

# Every directory home_open makes, each handed to another user in turn.
for d in batches logs state state/control; do
	mkhome
	r list
	chown 65534 "$H/$d"
	r list
	check "$d owned by uid 65534: refused (exit $rc)" [ "$rc" = 73 ]
	like "$(cat "$T/err")" "^runner: $H/$d: owned by uid 65534" \
		"  the message names $d"
done
mkhome
r list
chmod 0775 "$H/logs"
r list
like "$(cat "$T/err")" "^runner: $H/logs: writable by its group \(mode 0775\): refused" \
	"logs/ writable by its group: refused"

# spool/ itself: its mode is the administrator's, its owner must be ours.
mkhome
chmod 1777 "$H/spool"
r list
is "$rc" 0 "a world-writable sticky spool/ is accepted"
chown 65534 "$H/spool"
r list
like "$(cat "$T/err")" "^runner: $H/spool: owned by uid 65534" \
	"spool/ owned by another user: refused"

# Directories made below them later: state/history/, batches/archive/.
mkhome
mkdir -p "$H/state/history"
chown 65534 "$H/state/history"
job h <<JOB
[job]
agent = fake
id = hist-1
symbols = OK-1
JOB
r run
is "$(ls -A "$H/state/history")" "" "state/history/ of another user: no history is written in it"
mkdir -p "$H/batches/archive"
chown 65534 "$H/batches/archive"
r archive --older-than 0
check "batches/archive/ of another user: archive fails (exit $rc)" [ "$rc" != 0 ]
is "$(ls -A "$H/batches/archive")" "" "  and writes nothing in it"
check "  the batch stays" test -d "$H/batches/hist-1"
r list --archived
like "$(cat "$T/err")" "batches/archive: Operation not permitted" \
	"  list --archived does not read it either"

done_testing
