#!/bin/sh
# The shipped batching policy, as int8, beats fixed-size batching on the bursty and
# adversarial scenarios on held-out arrival seeds (1..5; training never uses them):
# `qsteer-train batch eval` prints "int8 policy vs fixed on S: +X% goodput".
set -e
exe=$1
policy=$2
out=$("$exe" batch eval "$policy" --seeds 5)
echo "$out"
for s in bursty adversarial; do
	line=$(echo "$out" | grep "^int8 policy vs fixed on $s: ") || {
		echo "no result for $s" >&2
		exit 1
	}
	gain=$(echo "$line" | sed 's/.*: \([-+][0-9.]*\)% goodput/\1/')
	case "$gain" in
	+0.00 | -*)
		echo "FAIL: the learned policy does not beat fixed on $s ($gain%)" >&2
		exit 1
		;;
	+*) ;;
	*)
		echo "cannot read the gain for $s from: $line" >&2
		exit 1
		;;
	esac
done
echo "learned batching beats fixed on bursty and adversarial"
