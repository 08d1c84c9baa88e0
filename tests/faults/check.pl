#!/usr/bin/perl
# tests/faults/check.pl: the DURABILITY promises over a runner home, for
# tests/cli/faults.t.  Prints one line: "ok", or the problems found,
# space-separated, each TAG:detail (faults.t matches known bugs by TAG).
#
#   check.pl parse HOME
#       every batch.json there parses (true at any instant)
#   check.pl done HOME RUNNER
#       after a run that exited 0 or 1 ("finished"): what it said is
#       durable: a fresh replay (`runner show --json`) finds the batch final
#       with every item final; nothing half-done is left
#   check.pl final HOME JOBFILE RUNNER EVENTS
#       after the faulted run and a clean one: the job is in exactly one
#       place, one final batch, every item in one final state with the
#       outcome its symbol calls for, batch.json parses and agrees with a
#       replay, no claim directory or temp file left, and every item the
#       faulted run acknowledged (its `--json` progress events, in EVENTS)
#       kept that outcome without running again
use strict;
use warnings;
use JSON::PP;
use File::Find;

my @bad;
sub bad { push @bad, join ':', @_ }

sub slurp {
	my ($f) = @_;
	open my $fh, '<', $f or return undef;
	local $/;
	my $s = <$fh>;
	return defined $s ? $s : '';
}

sub batches {
	my ($h) = @_;
	opendir my $d, "$h/batches" or return ();
	return sort grep { !/^\./ && $_ ne 'archive' } readdir $d;
}

sub want_state { $_[0] =~ /^EXIT/ ? 'failed' : 'succeeded' }

# The items of a batch document: as many as the job has symbols (when
# known), final, the expected outcomes, sane attempts.
sub check_items {
	my ($where, $d, $nsym) = @_;
	my @items = @{ $d->{items} || [] };
	bad("$where-items", scalar(@items))
	    unless @items && (!defined $nsym || @items == $nsym);
	my %seen;
	for my $it (@items) {
		my $s = $it->{symbol} // '?';
		bad("$where-dup-item", $s) if $seen{$s}++;
		my $st = $it->{state} // 'null';
		bad("$where-state", "$s=$st") unless $st eq want_state($s);
		my @log = @{ $it->{attempt_log} || [] };
		my $failed = grep { ($_->{outcome} // '') eq 'failed' } @log;
		bad("$where-attempts", "$s:$failed-failed") if $failed > 3;
		bad("$where-no-outcome", $s) if grep { !defined $_->{outcome} } @log;
	}
}

sub show {
	my ($runner, $h, $id) = @_;
	my $out = `'$runner' -C '$h' show '$id' --json 2>/dev/null`;
	return eval { decode_json($out) };
}

sub leftovers {
	my ($h) = @_;
	if (opendir my $bd, "$h/batches") {
		bad('claim-left', $_) for grep { /^\.claim-/ } readdir $bd;
	}
	find({ no_chdir => 1, wanted => sub {
		bad('tmp-left', substr($File::Find::name, length($h) + 1))
		    if /\.tmp$/;
	} }, $h);
}

sub places {
	my ($h) = @_;
	opendir my $sd, "$h/spool" or die "$h/spool: $!";
	for (readdir $sd) {
		next if $_ eq '.' || $_ eq '..' || $_ eq 'rejected';
		bad('spool-left', $_);
	}
	if (opendir my $rd, "$h/spool/rejected") {
		for (readdir $rd) {
			next if $_ eq '.' || $_ eq '..';
			bad('rejected', $_);
		}
	}
	my @ids = batches($h);
	bad('lost', 'no-batch') unless @ids;
	bad('dup-batch', join ',', @ids) if @ids > 1;
	return @ids;
}

my $mode = shift @ARGV // '';
if ($mode eq 'parse') {
	my ($h) = @ARGV;
	for my $id (batches($h)) {
		my $f = "$h/batches/$id/batch.json";
		next unless -e $f;
		bad('json-parse', "$id/batch.json")
		    unless eval { decode_json(slurp($f)); 1 };
	}
} elsif ($mode eq 'done') {
	my ($h, $runner) = @ARGV;
	for my $id (places($h)) {
		my $r = show($runner, $h, $id);
		if (!$r) {
			bad('done-show', $id);
			next;
		}
		bad('done-not-final', "$id:$r->{status}")
		    unless ($r->{status} // '') =~ /^(completed|partial|failed|cancelled)$/;
		check_items('done', $r);
	}
	leftovers($h);
} elsif ($mode eq 'final') {
	my ($h, $jobfile, $runner, $events) = @ARGV;
	my $jobtext = slurp($jobfile);
	my ($syms) = $jobtext =~ /^symbols\s*=\s*(.*)$/m;
	my $nsym = () = ($syms // '') =~ /\S+/g;
	my %doc;
	for my $id (places($h)) {
		my $dir = "$h/batches/$id";
		my $ji = slurp("$dir/job.ini");
		bad('job-ini', $id) unless defined $ji && $ji eq $jobtext;
		my $t = slurp("$dir/batch.json");
		if (!defined $t) {
			bad('no-batch-json', $id);
			next;
		}
		my $d = eval { decode_json($t) };
		if (!$d) {
			bad('json-parse', "$id/batch.json");
			next;
		}
		$doc{$id} = $d;
		bad('not-final', "$id:$d->{status}")
		    unless ($d->{status} // '') =~ /^(completed|partial|failed|cancelled)$/;
		check_items('final', $d, $nsym);
		# A fresh replay says what batch.json says.
		my $r = show($runner, $h, $id);
		if (!$r) {
			bad('show', "$id:unparseable");
			next;
		}
		my $k = sub {
			my ($x) = @_;
			join ',', $x->{status} // '', $x->{succeeded_items} // '',
			    $x->{failed_items} // '', $x->{total_items} // '',
			    map { ($_->{symbol} // '') . '=' . ($_->{state} // '') . '/'
				    . scalar(@{ $_->{attempt_log} || [] }) }
			    @{ $x->{items} || [] };
		};
		bad('show-differs', $id) unless $k->($r) eq $k->($d);
	}
	# Acknowledged outcomes stay: same batch, same state, and the attempt
	# that was reported is the item's last and only one of its kind.
	if (defined $events && open my $ev, '<', $events) {
		while (my $line = <$ev>) {
			my $e = eval { decode_json($line) } or next;
			next unless ($e->{event} // '') eq 'progress';
			my ($id, $s, $st) = @$e{qw(batch_id symbol state)};
			my $d = $doc{$id};
			if (!$d) {
				bad('acked-batch-gone', $id);
				next;
			}
			my ($it) = grep { $_->{symbol} eq $s } @{ $d->{items} || [] };
			if (!$it || $it->{state} ne $st) {
				bad('acked-lost', "$s=$st");
				next;
			}
			my @log = @{ $it->{attempt_log} || [] };
			my $same = grep { ($_->{outcome} // '') eq $st } @log;
			bad('acked-ran-again', "$s") if $same != 1 ||
			    ($log[-1]{outcome} // '') ne $st;
		}
	}
	leftovers($h);
} else {
	die "usage: check.pl parse|done|final ...\n";
}
print @bad ? "@bad\n" : "ok\n";
