# SPDX-License-Identifier: MIT
# Benchmark and real-program workload for perl: build and destroy hashes of small arrays,
# hashes and strings, sort the keys, join strings. Deterministic output (one number).
# Usage: perl hashes.pl [ROUNDS, default 12]   (12 rounds: about 1.8 s on glibc)
use strict;
use warnings;

my $rounds = $ARGV[0] // 12;
my $t = 0;
for my $r (1 .. $rounds) {
    my %h;
    for my $i (1 .. 20000) {
        my $k = "key" . ($i * 7919 % 100003) . "_" . $r;
        $h{$k} = [ $i, "v" x ($i % 40), { n => $i, s => "s$i" } ];
    }
    for my $k (sort keys %h) {
        $t += length($k) + $h{$k}[0] % 7 + length($h{$k}[2]{s});
    }
    my @s = map { join(",", $_, $_ * 2, "x" x ($_ % 13)) } 1 .. 20000;
    $t += scalar(@s) + length($s[-1]);
}
print "$t\n";
