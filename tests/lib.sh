# tests/lib.sh: sourced by the TAP shell tests in tests/cli/.
#
# Each test gets a fresh temporary home ($H) with a configuration whose
# agent "fake" is tests/agents/fake (behaviour chosen by the symbol name,
# see that file), and these helpers:
#   ok STATUS DESC         one TAP line (STATUS 0 = pass)
#   check DESC CMD...      pass when CMD succeeds
#   is GOT WANT DESC       string equality, both shown on failure
#   like GOT REGEX DESC    extended-regex match
#   r ARGS...              run the runner on $H (stdout/stderr to files)
#   jq FILE EXPR           a Perl expression over the JSON in FILE ($d)
#   job NAME <<EOF         write spool/NAME.job atomically
#   wait_for CMD...        until CMD succeeds, at most 20 s (never a race
#                          with a timer: a bound on waiting for an event)
#   syms PREFIX N          " PREFIX-1 PREFIX-2 ... PREFIX-N"
#   item_in B SYM FIELD    a field of an item of batch B (batch.json)
#   alerts EVENT           how many alerts of that event in alerts.jsonl
#   done_testing           the plan, and the exit status
set -u
# A runner that would lose an item or sleep with work it could do aborts
# (its liveness audit), so that every test also checks that.
RUNNER_STRICT=1
export RUNNER_STRICT
RUNNER=${RUNNER:-$(pwd)/runner}
SRC=${RUNNER_SRC:-$(pwd)}
BUILD=${RUNNER_BUILD:-$SRC/build}
if [ -n "${RUNNER_VALGRIND:-}" ]; then
	RUNNER_CMD="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite $RUNNER"
else
	RUNNER_CMD=$RUNNER
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/runner-test.XXXXXX")
H=$T/home
_n=0
_failed=0
cleanup() {
	# No test may leave a process behind: kill what names our home.
	for p in $(grep -l "RUNNER_HOME=$H" /proc/[0-9]*/environ 2>/dev/null |
		sed 's|/proc/\([0-9]*\)/environ|\1|'); do
		kill -9 "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT

ok() {
	_n=$((_n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $_n - $2"
	else
		echo "not ok $_n - $2"
		# and on stderr, which prove shows: a log says which and why
		echo "# not ok $_n - $2" >&2
		_failed=$((_failed + 1))
		return 1
	fi
}
check() {
	_d=$1
	shift
	if "$@"; then ok 0 "$_d"; else ok 1 "$_d"; fi
}
is() {
	if [ "$1" = "$2" ]; then
		ok 0 "$3"
	else
		ok 1 "$3"
		printf '#          got: %s\n#     expected: %s\n' "$1" "$2" >&2
		return 1
	fi
}
like() {
	if printf '%s\n' "$1" | grep -Eq -- "$2"; then
		ok 0 "$3"
	else
		ok 1 "$3"
		printf '#          got: %s\n#  not matching: %s\n' "$1" "$2" >&2
	fi
}
diag() { printf '# %s\n' "$*"; }
done_testing() {
	echo "1..$_n"
	[ "$_failed" = 0 ]
}

# mkhome [EXTRA]: a fresh home with agent "fake".  EXTRA's lines before its
# first [section] are keys of [agent fake]; after that, its sections are
# merged into the defaults: a key given again replaces the default.
mkhome() {
	rm -rf "$H"
	mkdir -p "$H/conf" "$H/spool"
	{
		printf '[runner]\nmax_children = 4\nkill_grace = 1s\n'
		printf '[retry]\nmax_attempts = 3\ndelays = 0.1 0.2\njitter = 0\n'
		printf '[agent fake]\ncommand = %s\nmax_concurrent = 4\n' "$SRC/tests/agents/fake"
		printf 'timeout = 30s\nsource = vendor\n'
		printf '%s\n' "${1:-}"
	} | awk '
		/^\[/ { sec = $0; if (!(sec in seen)) { seen[sec] = 1; order[++ns] = sec } next }
		/=/ {
			if (sec == "") sec = "[agent fake]"
			k = $0; sub(/[ \t]*=.*/, "", k)
			if (!((sec, k) in val)) keys[sec] = keys[sec] SUBSEP k
			val[sec, k] = $0
			next
		}
		END {
			for (i = 1; i <= ns; i++) {
				print order[i]
				n = split(keys[order[i]], ks, SUBSEP)
				for (j = 2; j <= n; j++) print val[order[i], ks[j]]
			}
		}' >"$H/conf/runner.ini"
}

# r ARGS: run the runner on $H; stdout in $T/out, stderr in $T/err, status in $rc.
r() {
	$RUNNER_CMD -C "$H" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	return 0
}

job() {
	cat >"$H/spool/.$1.tmp" && mv "$H/spool/.$1.tmp" "$H/spool/$1.job"
}

jq() {
	perl -MJSON::PP -e '
		local $/; open my $f, "<", $ARGV[0] or die "$ARGV[0]: $!";
		my $d = JSON::PP->new->allow_nonref->decode(<$f>);
		my $v = eval $ARGV[1]; die $@ if $@;
		print defined $v ? (ref $v ? JSON::PP->new->canonical->encode($v) : $v) : "null";
	' "$1" "$2"
}

wait_for() {
	_i=0
	while [ $_i -lt 400 ]; do "$@" && return 0; sleep 0.05; _i=$((_i + 1)); done
	return 1
}
# An attempt of batch $1's symbol $2 has started (the journal says so).
started() { "$RUNNER" -C "$H" output "$1" "$2" >/dev/null 2>&1; }
syms() { _k=1; _s=""; while [ $_k -le "$2" ]; do _s="$_s $1-$_k"; _k=$((_k + 1)); done; echo "$_s"; }
item_in() { jq "$H/batches/$1/batch.json" "(grep { \$_->{symbol} eq '$2' } @{\$d->{items}})[0]{$3}"; }
alerts() { grep -c "\"event\":\"$1\"" "$H/logs/alerts.jsonl" 2>/dev/null || echo 0; }

# The one batch of the home (tests that run one job).
batch_id() { ls "$H/batches" | grep -v '^archive$' | head -1; }
bjson() { echo "$H/batches/$(batch_id)/batch.json"; }
