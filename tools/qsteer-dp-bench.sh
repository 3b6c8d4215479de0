#!/bin/sh
# qsteer-dp-bench.sh - the dataplane benchmark (docs/dataplane.md "Benchmark"):
# one worker core, packets fed from memory through the whole core (parse, features,
# int8 policy over 8 backends, rewrite), for new-request packets and for
# continuation packets; then, in the same run, dpdk-testpmd io forwarding on
# net_null as the reference; prints Mpps and the ratios.
# usage: qsteer-dp-bench.sh QSTEER_DP MKPOLICY CONFIG [SECONDS]
set -eu
DP=$1 MKPOL=$2 CFG=$3 SECS=${4:-3}
T=$(mktemp -d /tmp/qsteer-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT
"$MKPOL" 1 "$T/bench.q8" bench
EAL="--no-huge -m 256 --no-pci --log-level=lib.eal:error"
# the same CPU as testpmd's forwarding lcore (-l 0,1 forwards on 1), so that both
# sides meet the same neighbours on a shared machine
CPU=0
[ "$(nproc)" -ge 2 ] && CPU=1
req=$("$DP" $EAL --file-prefix "qsb-r-$$" -l $CPU -- --config "$CFG" --policy "$T/bench.q8" \
	--bench "$SECS" --bench-kind requests | tail -1)
cont=$("$DP" $EAL --file-prefix "qsb-c-$$" -l $CPU -- --config "$CFG" --policy "$T/bench.q8" \
	--bench "$SECS" --bench-kind continuations | tail -1)
echo "$req"
echo "$cont"
TP=$(command -v dpdk-testpmd || true)
ref=
if [ -n "$TP" ]; then
	# io forwarding between two net_null ports on one forwarding core
	# (testpmd's default pool of 155k mbufs does not fit in -m 256: give it 16k)
	timeout -s INT $((SECS + 4)) "$TP" --no-huge -m 512 --no-pci --log-level=lib.eal:error \
		--file-prefix "qsb-t-$$" -l 0,1 \
		--vdev net_null0 --vdev net_null1 -- --forward-mode=io --auto-start \
		--nb-cores=1 --stats-period 1 --total-num-mbufs=16384 \
		< /dev/null > "$T/testpmd.log" 2>&1 || true
	# per second: the sum over both ports of Rx-pps (one line per second)
	awk '/Rx-pps:/ { s += $2; n++; if (n % 2 == 0) { print s / 1e6; s = 0 } }' \
		"$T/testpmd.log" > "$T/testpmd.pps"
	ref=$(tr '\n' ' ' < "$T/testpmd.pps")
fi
python3 - "$req" "$cont" "$ref" <<'PY'
import json, statistics, sys
r, c = json.loads(sys.argv[1]), json.loads(sys.argv[2])
# testpmd's first period covers start-up: drop it when there are enough
tp = [float(x) for x in sys.argv[3].split()]
tp = tp[1:] if len(tp) > 2 else tp
print(f"requests      {r['mpps']:7.3f} Mpps  (per-second median {r['mpps_median_s']:.3f}, best {r['mpps_best_s']:.3f}; target >= 5)")
print(f"continuations {c['mpps']:7.3f} Mpps  (per-second median {c['mpps_median_s']:.3f}, best {c['mpps_best_s']:.3f})")
if tp:
    med, best = statistics.median(tp), max(tp)
    print(f"testpmd io    {med:7.3f} Mpps  (per-second median; best {best:.3f}; net_null, one forwarding core)")
    # like with like: the median second of each side, and the best second of each
    print(f"ratios (median second): requests {r['mpps_median_s']/med:.2f}, continuations {c['mpps_median_s']/med:.2f} of testpmd (target >= 0.50)")
    print(f"ratios (best second):   requests {r['mpps_best_s']/best:.2f}, continuations {c['mpps_best_s']/best:.2f} of testpmd")
else:
    print("testpmd io    not measured: dpdk-testpmd missing or it failed (see its log)")
PY
