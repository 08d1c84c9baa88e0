#!/bin/sh
# report: `runner report BATCH [-o FILE]` (SPEC 3), one self-contained HTML
# page: no script, no URL, every hostile string escaped, retries visible on
# the timeline, failure groups with their root cause, a bounded size for a
# 10,000-item batch, and a page that headless Chromium renders (its text,
# and a screenshot that is not blank).  Chromium is installed with apt-get
# when missing and we are root; without it the browser checks are skipped.
. "${RUNNER_SRC:-.}/tests/lib.sh"

size() { wc -c <"$1" | tr -d ' '; }
count() { grep -o -- "$1" "$2" | wc -l | tr -d ' '; }
has() { grep -Fq -- "$1" "$2"; }
sections="Summary Timeline Error.categories Failure.groups Slowest.items Failed.items"

# An agent whose XSS-* items fail with markup, quotes and an ampersand in
# their message; every other symbol goes to the fake agent.
sed "s|@FAKE@|$SRC/tests/agents/fake|" >"$T/hostile" <<'AGENT'
#!/bin/sh
sym=$(eval echo \${$#})
case $sym in
XSS-*)
	echo "bad <script>alert(1)</script> \"double\" & 'single' <img src=x onerror=alert(2)>" >&2
	exit 3 ;;
esac
exec "@FAKE@" "$@"
AGENT
chmod +x "$T/hostile"

# --- a batch of every outcome, with retries ----------------------------------
mkhome "[agent hostile]
command = $T/hostile
max_concurrent = 4
timeout = 30s
source = vendor
[correlation]
min_group = 1000"
job mixed <<'JOB'
[job]
agent = hostile
id = rep-mixed
name = report <b>"test"</b> & co
symbols = OK-A OK-B OK-C FLAKY-2-A FLAKY-3-B EXIT-65-A EXIT-70-A
          SLEEP-0.3-A SLEEP-0.2-B XSS-A
[params]
label = <i>'x'</i> & "y"
JOB
r run
is "$rc" 1 "the mixed batch ran (some items failed)"
B=$H/batches/rep-mixed/batch.json
attempts=$(jq "$B" 'my $n = 0; $n += $_->{attempts} for @{$d->{items}}; $n')
R=$T/r.html
r report rep-mixed -o "$R"
is "$rc" 0 "report exits 0"
check "report written" test -s "$R"
is "$(head -c 15 "$R")" "<!doctype html>" "starts with <!doctype html>"
is "$(count '<script' "$R")" 0 "no <script anywhere"
is "$(grep -Eic 'https?:' "$R")" 0 "no http: or https: anywhere"
is "$(grep -Eic '<(link|img|iframe|object|embed|base)[ >]|@import|url\(' "$R")" 0 "no external resource of any kind"
is "$(grep -Eic '<[a-z][^>]* on[a-z]+=' "$R")" 0 "no event handler attribute"
has "rep-mixed" "$R"; ok $? "names the batch"
has "report &lt;b&gt;&quot;test&quot;&lt;/b&gt; &amp; co" "$R"; ok $? "name escaped"
has "&lt;i&gt;&#39;x&#39;&lt;/i&gt; &amp; &quot;y&quot;" "$R"; ok $? "param escaped"
has "XSS-A" "$R"; ok $? "the failed symbol is listed"
has "bad &lt;script&gt;alert(1)&lt;/script&gt; &quot;double&quot; &amp; &#39;single&#39; &lt;img src=x onerror=alert(2)&gt;" "$R"
ok $? "its message, escaped"
has "failing with 65" "$R"; ok $? "another failure's message"
for s in $sections; do
	grep -q "<h2>$s</h2>" "$R"; ok $? "section $s"
done
check "has an inline <svg>" grep -q '<svg viewBox' "$R"
is "$(count ': attempt [0-9]* of [0-9]*' "$R")" "$attempts" "every attempt on the timeline ($attempts)"
check "a retried item's success is marked (outlined)" grep -q 'class="k-s r"><title>FLAKY-3-B: attempt 3 of 3, succeeded' "$R"
check "a retried item's failure is marked" grep -q 'class="k-f r"><title>EXIT-70-A: attempt 2 of 3, failed (engine_error)' "$R"
check "a single attempt is not" grep -q 'class="k-s"><title>OK-A: attempt 1 of 1, succeeded' "$R"
check "error categories as bars" grep -q '<rect x="160"[^>]*><title>data_error: 1 failed item,' "$R"
check "throughput and latency in the summary" grep -q 'items/s.*' "$R"
grep -q 'p50 [0-9.]*m\{0,1\}s, p95' "$R"; ok $? "latency p50/p95"
check "next steps: retry the failed items" grep -q '<pre><code>runner retry-failed rep-mixed</code></pre>' "$R"
check "and the most common category alone" grep -q '<pre><code>runner retry-failed rep-mixed --category [a-z_]*</code></pre>' "$R"
is "$(count '<pre><code>runner resume' "$R")" 0 "nothing paused: no resume"
check "failed messages grouped with a count" grep -q '<td class="n">1</td><td>data_error</td><td>[^<]*</td><td class="msg">[^<]*failing with NUM' "$R"
is "$(grep -Ec '[0-9]\.[0-9]{3}s' "$R")" 0 "no duration written 1.000s"
sz=$(size "$R")
check "size between 8 kB and 200 kB ($sz bytes)" test "$sz" -gt 8000 -a "$sz" -lt 200000
r report rep-mixed
like "$(head -c 15 "$T/out")" '^<!doctype html>$' "without -o: the page on stdout"
r report no-such-batch -o "$T/none.html"
is "$rc" 66 "no such batch: exit 66"

# --- a batch waiting on a failure group --------------------------------------
cp "$R" "$T/mixed.html"
CAPDIR=$T/cap
mkdir -p "$CAPDIR"
: >"$CAPDIR/down"
mkhome "max_concurrent = 3
source = koyfin
env = CAPDIR=$CAPDIR
[retry]
max_attempts = 5
[correlation]
window = 5m
min_group = 2"
job outage <<'JOB'
[job]
agent = fake
id = rep-outage
symbols = VENDOR-1 VENDOR-2 VENDOR-3 VENDOR-4 VENDOR-5 VENDOR-6
JOB
r run
G=$(jq "$H/batches/rep-outage/batch.json" '$d->{failure_groups}[0]{group_id}')
like "$G" '^grp-' "the outage formed a group ($G)"
r report rep-outage -o "$T/g.html"
is "$rc" 0 "report of a paused batch"
has ">$G</h3>" "$T/g.html"; ok $? "the group is shown"
has "koyfin API rate limit exceeded" "$T/g.html"; ok $? "with its root cause"
grep -q '<tr><th>status</th><td>open' "$T/g.html"; ok $? "and its status"
grep -q 'class="st st-paused">paused<' "$T/g.html"; ok $? "batch status paused"
grep -q '<li><span class="sym">VENDOR-[0-9]</span> paused</li>' "$T/g.html"; ok $? "members listed with their state now"
has "<pre><code>runner resume $G</code></pre>" "$T/g.html"; ok $? "next steps: resume the group"
has "<pre><code>runner cancel $G</code></pre>" "$T/g.html"; ok $? "or cancel it"
has "<pre><code>runner resume rep-outage</code></pre>" "$T/g.html"; ok $? "or resume the batch's paused items"
is "$(count 'runner retry-failed' "$T/g.html")" 0 "nothing failed: no retry-failed"
grep -q 'class="k-p"' "$T/g.html"; ok $? "paused items in the state bar"
is "$(count '<script' "$T/g.html")" 0 "no script"

# --- 10,000 items -------------------------------------------------------------
# expr exits 0 when the symbol starts with OK and 1 otherwise: one exec per
# attempt, no shell.  The 20 E-* items fail and are retried twice.
mkhome "[runner]
max_children = 8
[agent quick]
command = /usr/bin/expr {symbol} : OK
max_concurrent = 8
timeout = 30s
[retry]
delays = 0.01
[correlation]
min_group = 100000"
awk 'BEGIN { for (i = 1; i <= 9980; i++) printf "OK-%05d\n", i;
	     for (i = 1; i <= 20; i++) printf "E-%02d\n", i }' >"$H/big.txt"
job big <<'JOB'
[job]
agent = quick
id = rep-big
symbols_file = big.txt
JOB
t0=$(date +%s)
r run
t1=$(date +%s)
diag "10,000 items ran in $((t1 - t0))s"
is "$(jq "$H/batches/rep-big/batch.json" '$d->{succeeded_items}')" 9980 "9,980 succeeded"
is "$(jq "$H/batches/rep-big/batch.json" '$d->{failed_items}')" 20 "20 failed"
BIG=$T/big.html
t0=$(date +%s)
r report rep-big -o "$BIG"
t1=$(date +%s)
is "$rc" 0 "report of 10,000 items exits 0"
sz=$(size "$BIG")
diag "10,000-item report: $sz bytes in $((t1 - t0))s"
check "under 5 MB ($sz bytes)" test "$sz" -lt 5000000
check "in fact under 1.5 MB" test "$sz" -lt 1500000
is "$(count ': attempt [0-9]* of [0-9]*' "$BIG")" 0 "no bar per attempt (a barcode at 10,000)"
check "a heat strip instead" grep -q '<svg [^>]*class="heat"' "$BIG"
check "it says why" grep -q '10,040 attempts on [0-9,]* slots\{0,1\}: too many for a bar each' "$BIG"
check "the failures marked on top" grep -q 'class="k-f hf"><title>slot' "$BIG"
check "the 20 failed messages as one row" grep -q '<td class="n">20</td><td>[a-z_]*</td>' "$BIG"
check "counts with a thousands separator" grep -q '10,000 total: 9,980 succeeded, 20 failed' "$BIG"
check "the failed items listed" grep -q '<td class="sym">E-20</td>' "$BIG"
is "$(count '<script' "$BIG")" 0 "no script"

# --- in a browser ---------------------------------------------------------------
CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROME" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	diag "installing chromium with apt-get"
	DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q chromium \
		>"$T/apt.log" 2>&1 ||
		{ DEBIAN_FRONTEND=noninteractive timeout 120 apt-get update -q \
			>>"$T/apt.log" 2>&1 &&
		  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q \
			chromium >>"$T/apt.log" 2>&1; }
	CHROME=$(command -v chromium || true)
	[ -z "$CHROME" ] && diag "apt-get could not install chromium: $(tail -1 "$T/apt.log")"
fi
if [ -z "$CHROME" ]; then
	diag "SKIP browser checks: no chromium"
else
	chrome() {
		timeout 60 "$CHROME" --headless --no-sandbox --disable-gpu \
			--disable-quic --no-first-run --disable-background-networking \
			--disable-component-update --disable-sync \
			--disable-dev-shm-usage --user-data-dir="$T/chrome" "$@" \
			2>>"$T/chrome.err"
	}
	chrome --dump-dom "file://$T/mixed.html" >"$T/dom.html"
	check "chromium loads the page" test -s "$T/dom.html"
	has "rep-mixed" "$T/dom.html"; ok $? "the DOM holds the batch id"
	for s in $sections; do
		grep -q "<h2>$s</h2>" "$T/dom.html"; ok $? "the DOM holds section $s"
	done
	has "bad &lt;script&gt;alert(1)&lt;/script&gt;" "$T/dom.html"
	ok $? "the hostile message is text in the DOM"
	is "$(count '<script' "$T/dom.html")" 0 "no script element in the DOM"
	is "$(count '<rect' "$T/dom.html")" "$(count '<rect' "$T/mixed.html")" "every SVG rect parsed"

	# A screenshot is not blank when its pixels take several colours.
	pixels() {
		perl -MCompress::Zlib -e '
			local $/; open my $f, "<:raw", $ARGV[0] or die "$ARGV[0]: $!";
			my $p = <$f>;
			substr($p, 0, 8) eq "\x89PNG\r\n\x1a\n" or die "not a PNG\n";
			my ($pos, $idat, $w, $h, $depth, $ctype) = (8, "");
			while ($pos < length $p) {
				my ($len, $type) = unpack "Na4", substr($p, $pos, 8);
				my $data = substr($p, $pos + 8, $len);
				($w, $h, $depth, $ctype) = unpack "NNCC", $data if $type eq "IHDR";
				$idat .= $data if $type eq "IDAT";
				$pos += 12 + $len;
			}
			$depth == 8 or die "bit depth $depth\n";
			my $bpp = { 0 => 1, 2 => 3, 4 => 2, 6 => 4 }->{$ctype} or die "colour type $ctype\n";
			my $raw = uncompress($idat) // die "bad zlib data\n";
			my ($stride, %seen, @prev) = ($w * $bpp);
			for my $y (0 .. $h - 1) {
				my $ft = ord substr($raw, $y * ($stride + 1), 1);
				my @c = unpack "C*", substr($raw, $y * ($stride + 1) + 1, $stride);
				for my $i (0 .. $#c) {
					my $a = $i >= $bpp ? $c[$i - $bpp] : 0;
					my $b = @prev ? $prev[$i] : 0;
					my $cc = @prev && $i >= $bpp ? $prev[$i - $bpp] : 0;
					if ($ft == 1) { $c[$i] += $a }
					elsif ($ft == 2) { $c[$i] += $b }
					elsif ($ft == 3) { $c[$i] += ($a + $b) >> 1 }
					elsif ($ft == 4) {
						my $pp = $a + $b - $cc;
						my ($pa, $pb, $pc) = (abs($pp - $a), abs($pp - $b), abs($pp - $cc));
						$c[$i] += $pa <= $pb && $pa <= $pc ? $a : $pb <= $pc ? $b : $cc;
					}
					$c[$i] &= 255;
				}
				if ($y % 4 == 0) {
					for (my $i = 0; $i < $stride; $i += $bpp * 2) {
						$seen{join ",", @c[$i .. $i + $bpp - 1]} = 1;
					}
				}
				@prev = @c;
			}
			printf "%dx%d %d\n", $w, $h, scalar keys %seen;
		' "$1"
	}
	chrome --screenshot="$T/shot.png" --window-size=1280,2000 \
		--hide-scrollbars "file://$T/mixed.html" >/dev/null
	check "a screenshot was taken" test -s "$T/shot.png"
	px=$(pixels "$T/shot.png" 2>&1)
	diag "screenshot: $px (size, distinct colours)"
	like "$px" '^1280x2000 ' "screenshot 1280x2000"
	check "the screenshot is not blank (${px#* } colours)" test "${px#* }" -ge 8
	chrome --screenshot="$T/big.png" --window-size=1280,2000 \
		--hide-scrollbars "file://$BIG" >/dev/null
	px=$(pixels "$T/big.png" 2>&1)
	check "the 10,000-item page renders too (${px#* } colours)" test "${px#* }" -ge 8
fi

done_testing
