#!/bin/sh
# archive.t: retention from the command line (SPEC 3 archive/restore,
# list --archived, show of an archived batch; SPEC 5 [retention]): dry
# run, the default threshold, gzip/zstd/none archives, what they hold,
# list/show without extraction, restore round trip, hostile archives
# (absolute path, ../, a symlink and a file through it, a hard link).
# The module's own crash and corruption cases are in tests/unit/archive.c.
. "${RUNNER_SRC:-$(pwd)}/tests/lib.sh"


# tree DIR: every file below DIR with its size and checksum, sorted.
tree() { (cd "$1" && find . -type f ! -name lock -exec cksum {} + | sort -k3); }
# nout: lines of $T/out
nout() { grep -c . "$T/out"; }
# mktar OUT TYPE NAME ARG...: a ustar file by hand (TYPE 0 file with data
# ARG, 5 directory, 2 symlink to ARG, 1 hard link to ARG), so that no tar
# program cleans the names up.
mktar() {
	perl -e '
		my $out = shift;
		open my $f, ">", $out or die "$out: $!";
		while (@ARGV) {
			my ($type, $name, $arg) = splice @ARGV, 0, 3;
			my $data = $type eq "0" ? $arg : "";
			my $link = $type =~ /^[12]$/ ? $arg : "";
			my $h = pack("a100 a8 a8 a8 a12 a12 a8 a1 a100 a6 a2 a247",
				$name, sprintf("%07o", $type eq "5" ? 0755 : 0644),
				sprintf("%07o", 0), sprintf("%07o", 0),
				sprintf("%011o", length $data), sprintf("%011o", time),
				" " x 8, $type, $link, "ustar", "00", "");
			my $sum = unpack("%32C*", $h);
			substr($h, 148, 8) = sprintf("%06o\0 ", $sum);
			print $f $h, $data, "\0" x ((512 - length($data) % 512) % 512);
		}
		print $f "\0" x 1024;
	' "$@"
}

mkhome
job a <<EOF
[job]
id = arch-a
agent = fake
symbols = OK-1-A EXIT-65-B
EOF
job b <<EOF
[job]
id = arch-b
agent = fake
symbols = OK-1-C
EOF
r run
is "$rc" 1 "two final batches (one partial)"
mkdir -p "$T/snap" "$T/outside"
tree "$H/batches/arch-a" >"$T/snap/a.tree"
cp "$H/logs/arch-a.log" "$T/snap/a.log"
cp "$H/batches/arch-a/batch.json" "$T/snap/a.json"

# ---- dry run, default threshold ----
r archive --older-than 0 --dry-run --json
is "$rc" 0 "archive --dry-run: exit 0"
is "$(grep -c '"action":"archive"' "$T/out")" 2 "dry run: two would be archived"
is "$(grep -c '"dry_run":true' "$T/out")" 2 "dry run: marked dry_run"
check "dry run: batches still there" test -d "$H/batches/arch-a" -a -d "$H/batches/arch-b"
check "dry run: no archive written" test ! -e "$H/batches/archive/arch-a.tar.gz"

r archive
is "$rc" 0 "archive with the default threshold (7d): exit 0"
check "a fresh batch is not archived by default" test -d "$H/batches/arch-a"

r archive --older-than 5x
is "$rc" 64 "a bad duration: 64"

# ---- archive (gzip, the default) ----
r archive --older-than 0 --json
is "$rc" 0 "archive --older-than 0: exit 0"
is "$(grep -c '"action":"archive"' "$T/out")" 2 "two archived"
like "$(head -1 "$T/out")" '"archive":"batches/archive/arch-[ab]\.tar\.gz"' "JSON names the archive"
check "arch-a.tar.gz written" test -s "$H/batches/archive/arch-a.tar.gz"
check "arch-a: batch directory removed" test ! -e "$H/batches/arch-a"
check "arch-a: log removed" test ! -e "$H/logs/arch-a.log"
is "$(ls -A "$H/batches" | grep -c '^\.')" 0 "no temp or trash left in batches/"
is "$(ls -A "$H/batches/archive" | grep -c '\.tmp$')" 0 "no temp archive left"
is "$(tar -tzf "$H/batches/archive/arch-a.tar.gz" 2>/dev/null | grep -cE '^arch-a/(batch\.json|journal|job\.ini|summary\.json|arch-a\.log|output/1-0\.out)$')" 6 \
	"the archive holds batch.json, journal, job.ini, summary.json, the log and output/"
mkdir "$T/x"
tar -xzf "$H/batches/archive/arch-a.tar.gz" -C "$T/x" 2>/dev/null
cmp -s "$T/x/arch-a/arch-a.log" "$T/snap/a.log"
ok $? "tar(1) reads the log back intact"
r archive --older-than 0
is "$rc" 0 "archive again: nothing to do, exit 0"

# ---- list --archived, show ----
r list --archived --json
is "$rc" 0 "list --archived --json: exit 0"
is "$(jq "$T/out" 'scalar @$d')" 2 "two archived batches listed"
is "$(jq "$T/out" 'join " ", sort map { $_->{batch_id} } @$d')" "arch-a arch-b" "their ids"
is "$(jq "$T/out" '(grep { $_->{batch_id} eq "arch-a" } @$d)[0]{status}')" partial "arch-a: status from the index"
is "$(jq "$T/out" '$d->[0]{archived} ? "yes" : "no"')" yes "marked archived"
r list --archived
is "$rc" 0 "list --archived: exit 0"
like "$(cat "$T/out")" 'arch-a +partial' "text list shows arch-a"
r list --json
is "$(jq "$T/out" 'scalar grep { $_->{batch_id} eq "arch-a" && !$_->{archived} } @$d')" 0 \
	"plain list does not show arch-a as a live batch"

r show arch-a --json
is "$rc" 0 "show ARCHIVED --json: exit 0"
cmp -s "$T/out" "$T/snap/a.json"
ok $? "show --json prints the archived batch.json byte for byte"
r show arch-a
is "$rc" 0 "show ARCHIVED: exit 0"
like "$(cat "$T/out")" 'partial' "show: the status"
like "$(cat "$T/out")" 'EXIT-65-B|1 failed' "show: the failed item"
check "show extracted nothing" test ! -e "$H/batches/arch-a"
r show nope
is "$rc" 66 "show of an unknown batch: 66"

# ---- restore ----
r restore arch-a
is "$rc" 0 "restore arch-a: exit 0"
tree "$H/batches/arch-a" >"$T/a.tree"
cmp -s "$T/a.tree" "$T/snap/a.tree"
ok $? "restored files are byte-identical"
cmp -s "$H/logs/arch-a.log" "$T/snap/a.log"
ok $? "the log is back in logs/"
check "the archive is gone after restore" test ! -e "$H/batches/archive/arch-a.tar.gz"
r list --archived --json
is "$(jq "$T/out" 'scalar @$d')" 1 "one archived batch left"
r show arch-a --json
is "$(jq "$T/out" '$d->{status}')" partial "show reads the restored batch"
r restore arch-a
is "$rc" 66 "restore of a batch not archived: 66"
r restore nope
is "$rc" 66 "restore of an unknown id: 66"
r run
is "$rc" 0 "run after restore: the restored final batch is left alone"

# ---- zstd and none ----
for comp in zstd none; do
	mkhome "[retention]
compression = $comp"
	job z <<EOF
[job]
id = comp-$comp
agent = fake
symbols = OK-1-A
EOF
	r run
	tree "$H/batches/comp-$comp" >"$T/snap/$comp.tree"
	r archive --older-than 0
	is "$rc" 0 "compression = $comp: archive exit 0"
	case $comp in zstd) f=comp-zstd.tar.zst; magic='28b52ffd' ;; none) f=comp-none.tar; magic='' ;; esac
	check "$comp: $f written" test -s "$H/batches/archive/$f"
	if [ -n "$magic" ]; then
		is "$(od -An -tx1 -N4 "$H/batches/archive/$f" | tr -d ' ')" "$magic" "$comp: zstd magic"
	else
		is "$(dd if="$H/batches/archive/$f" bs=1 skip=257 count=5 2>/dev/null)" ustar "$comp: a plain tar"
	fi
	r restore "comp-$comp"
	is "$rc" 0 "$comp: restore exit 0"
	tree "$H/batches/comp-$comp" >"$T/$comp.tree"
	cmp -s "$T/$comp.tree" "$T/snap/$comp.tree"
	ok $? "$comp: restored byte-identical"
done

# ---- hostile archives ----
mkhome
mkdir -p "$H/batches/archive"
echo precious >"$T/outside/target"
evil() { # NAME DESC WANT: restore NAME; nothing lands outside
	before=$(ls -A "$H/batches" | wc -l)
	r restore "$1"
	is "$rc" "$3" "$2: refused ($3)"
	like "$(cat "$T/err")" '^runner: ' "$2: one error line"
	is "$(ls -A "$T/outside")" target "$2: nothing written outside"
	is "$(cat "$T/outside/target") $(stat -c %h "$T/outside/target")" "precious 1" "$2: target untouched"
	is "$(ls -A "$H/batches" | wc -l)" "$before" "$2: nothing new in batches/"
	check "$2: no batch directory" test ! -e "$H/batches/$1"
}
mktar "$H/batches/archive/ev1.tar" 5 ev1/ '' 0 "$T/outside/abs" evil 0 "/tmp/runner-evil-$$" evil
evil ev1 "absolute paths" 65
check "/tmp/runner-evil-PID does not exist" test ! -e "/tmp/runner-evil-$$"
mktar "$H/batches/archive/ev2.tar" 0 ev2/journal x 0 ev2/../../../../outside/dotdot evil
evil ev2 "../" 65
like "$(cat "$T/err")" 'ev2/\.\./.*outside the batch directory' "../: the message says why"
mktar "$H/batches/archive/ev3.tar" 2 ev3/link "$T/outside" 0 ev3/link/evil evil
evil ev3 "a symlink, then a file through it" 65
mktar "$H/batches/archive/ev4.tar" 1 ev4/hl "$T/outside/target" 0 ev4/hl evil
evil ev4 "a hard link to a file outside" 65
mktar "$H/batches/archive/ev5.tar" 0 ev5/journal x
gzip "$H/batches/archive/ev5.tar"
evil ev5 "no manifest (gzip)" 74

done_testing
