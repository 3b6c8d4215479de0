#!/bin/sh
# The shipped batching policy, as int8, beats fixed-size batching on the bursty and
# adversarial scenarios on held-out arrival seeds (training never uses them): the
# goodput gain's paired 95% interval, as `qsteer-train batch eval` prints it
# ("int8 policy vs fixed on S: +X% goodput (paired 95% CI +- Y%)"), lies above 0.
# Bursty at its load leaves every sensible strategy within ~1% of fixed (per-seed
# spread ~2.4%), so it takes 200 seeds to resolve; adversarial 20.
set -e
exe=$1
policy=$2
for run in "bursty 200" "adversarial 20"; do
	set -- $run
	s=$1
	out=$("$exe" batch eval "$policy" --scenario "$s" --seeds "$2")
	echo "$out"
	line=$(echo "$out" | grep "^int8 policy vs fixed on $s: ") || {
		echo "no result for $s" >&2
		exit 1
	}
	gain=$(echo "$line" | sed -n 's/.*: \([-+][0-9.]*\)% goodput (paired 95% CI +- \([0-9.]*\)%)$/\1/p')
	ci=$(echo "$line" | sed -n 's/.*: \([-+][0-9.]*\)% goodput (paired 95% CI +- \([0-9.]*\)%)$/\2/p')
	[ -n "$gain" ] && [ -n "$ci" ] || {
		echo "cannot read the gain and interval for $s from: $line" >&2
		exit 1
	}
	awk -v g="$gain" -v c="$ci" 'BEGIN { exit !(g - c > 0) }' || {
		echo "FAIL: on $s the gain over fixed, $gain% +- $ci%, is not above 0" >&2
		exit 1
	}
done
echo "learned batching beats fixed on bursty and adversarial (paired 95% intervals above 0)"
