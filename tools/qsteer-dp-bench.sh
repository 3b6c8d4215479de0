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
req=$("$DP" $EAL --file-prefix "qsb-r-$$" -l 0 -- --config "$CFG" --policy "$T/bench.q8" \
	--bench "$SECS" --bench-kind requests | tail -1)
cont=$("$DP" $EAL --file-prefix "qsb-c-$$" -l 0 -- --config "$CFG" --policy "$T/bench.q8" \
	--bench "$SECS" --bench-kind continuations | tail -1)
echo "$req"
echo "$cont"
TP=$(command -v dpdk-testpmd || true)
ref=0
if [ -n "$TP" ]; then
	# io forwarding between two net_null ports on one forwarding core
	# (testpmd's default pool of 155k mbufs does not fit in -m 256: give it 16k)
	timeout -s INT $((SECS + 4)) "$TP" --no-huge -m 512 --no-pci --log-level=lib.eal:error \
		--file-prefix "qsb-t-$$" -l 0,1 \
		--vdev net_null0 --vdev net_null1 -- --forward-mode=io --auto-start \
		--nb-cores=1 --stats-period 1 --total-num-mbufs=16384 \
		< /dev/null > "$T/testpmd.log" 2>&1 || true
	# per second: the sum over both ports of Rx-pps, the best second
	ref=$(awk '/Rx-pps:/ { s += $2; n++; if (n % 2 == 0) { if (s > m) m = s; s = 0 } }
		END { printf "%.3f", m / 1e6 }' "$T/testpmd.log")
fi
python3 - "$req" "$cont" "$ref" <<'PY'
import json, sys
r, c, ref = json.loads(sys.argv[1]), json.loads(sys.argv[2]), float(sys.argv[3])
print(f"requests      {r['mpps']:7.3f} Mpps  (target >= 5)")
print(f"continuations {c['mpps']:7.3f} Mpps")
if ref > 0:
    print(f"testpmd io    {ref:7.3f} Mpps  (net_null, one forwarding core)")
    print(f"ratios: requests {r['mpps']/ref:.2f}, continuations {c['mpps']/ref:.2f} of testpmd (target >= 0.50)")
else:
    print("testpmd io    not measured: dpdk-testpmd missing or it failed (see its log)")
PY
