#!/bin/sh
# qsteer-dp-bench.sh - the dataplane benchmark (docs/dataplane.md "Benchmark"):
# one worker core, packets fed from memory through the whole core (parse, features,
# int8 policy over 8 backends, rewrite), for new-request packets and for
# continuation packets; then, in the same run, dpdk-testpmd io forwarding on
# net_null as the reference; prints Mpps and the ratios. The policy is the
# generated 16-32-16-1 test shape; POLICY (e.g. the shipped
# policies/default-router.q8) adds a requests run with that file.
# QS_BENCH_JSON=FILE also writes the figures as one JSON object (scripts/bench.sh).
# usage: qsteer-dp-bench.sh QSTEER_DP MKPOLICY CONFIG [SECONDS [POLICY]]
set -eu
DP=$1 MKPOL=$2 CFG=$3 SECS=${4:-3} SHIPPED=${5:-}
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
ship='{}'
if [ -n "$SHIPPED" ]; then
	ship=$("$DP" $EAL --file-prefix "qsb-s-$$" -l $CPU -- --config "$CFG" --policy "$SHIPPED" \
		--bench "$SECS" --bench-kind requests | tail -1)
fi
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
python3 - "$req" "$cont" "$ref" "$ship" "$SHIPPED" "${QS_BENCH_JSON:-}" <<'PY'
import json, statistics, sys
r, c = json.loads(sys.argv[1]), json.loads(sys.argv[2])
s, sname, jout = json.loads(sys.argv[4]), sys.argv[5], sys.argv[6]
# testpmd's first period covers start-up: drop it when there are enough
tp = [float(x) for x in sys.argv[3].split()]
tp = tp[1:] if len(tp) > 2 else tp
print(f"requests      {r['mpps']:7.3f} Mpps  (per-second median {r['mpps_median_s']:.3f}, best {r['mpps_best_s']:.3f}; generated 16-32-16-1)")
print(f"continuations {c['mpps']:7.3f} Mpps  (per-second median {c['mpps_median_s']:.3f}, best {c['mpps_best_s']:.3f})")
if s:
    print(f"requests      {s['mpps']:7.3f} Mpps  (per-second median {s['mpps_median_s']:.3f}, best {s['mpps_best_s']:.3f}; {sname})")
out = {"requests_test_shape": r, "continuations": c}
if s:
    out["requests_policy"] = dict(s, file=sname)
if tp:
    med, best = statistics.median(tp), max(tp)
    print(f"testpmd io    {med:7.3f} Mpps  (per-second median; best {best:.3f}; net_null, one forwarding core)")
    # like with like: the median second of each side, and the best second of each
    print(f"ratios (median second): requests {r['mpps_median_s']/med:.2f}, continuations {c['mpps_median_s']/med:.2f} of testpmd (continuations target: >= 0.9)")
    print(f"ratios (best second):   requests {r['mpps_best_s']/best:.2f}, continuations {c['mpps_best_s']/best:.2f} of testpmd")
    if s:
        print(f"ratio (median second):  requests with {sname} {s['mpps_median_s']/med:.3f} of testpmd (issue 16's target: >= 0.16)")
    out["testpmd_io"] = {"mpps_median_s": med, "mpps_best_s": best}
else:
    print("testpmd io    not measured: dpdk-testpmd missing or it failed (see its log)")
if jout:
    with open(jout, "w") as f:
        json.dump(out, f, indent=1)
PY
