#!/bin/sh
# hotswap.sh - traffic replayed through qsteer-dp (paced so it lasts a few seconds)
# while qsteerctl swaps two policies >= 100 times; then shadow mode, rollback, a
# rejected policy. qsteer-pcap check --alt-policy then requires every frame present
# and every burst to carry exactly one of the two policies' decisions (never a mix),
# and all counters equal to the reference's (no packet lost).
# usage: hotswap.sh QSTEER_DP|none QSTEER_PCAP QSTEERCTL MKPOLICY CONFIG TRACE
set -eu
DP=$1 PCAP=$2 CTL=$3 MKPOL=$4 CFG=$5 TRACE=$6
# meson passes paths relative to the build directory; we cd elsewhere
abs() { case $1 in /*|none) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
DP=$(abs "$DP")
PCAP=$(abs "$PCAP")
CTL=$(abs "$CTL")
MKPOL=$(abs "$MKPOL")
CFG=$(abs "$CFG")
TRACE=$(abs "$TRACE")
if [ "$DP" = none ]; then echo "SKIP: qsteer-dp not built (no DPDK)"; exit 77; fi
if [ "$(id -u)" != 0 ]; then echo "SKIP: DPDK needs root here"; exit 77; fi
T=$(mktemp -d /tmp/qsteer-swap.XXXXXX)
DPPID=
cleanup() { [ -n "$DPPID" ] && kill "$DPPID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
cd "$T"
"$MKPOL" 1 a.q8 swap-a
"$MKPOL" 2 b.q8 swap-b
head -c 300 a.q8 > bad.q8 # truncated: must be refused
SOCK="$T/dp.sock"
"$PCAP" gen --config "$CFG" --trace "$TRACE" --limit 4000 --speedup 200 --seed 7 \
	--malformed 100 --out in.pcap
# ~390 bursts x 12 ms: the swaps below happen while traffic flows
timeout 90 "$DP" --no-huge -m 256 --no-pci --file-prefix "qsteer-swap-$$" -l 0,1 \
	--vdev "net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap" -- \
	--config "$CFG" --policy a.q8 --control "$SOCK" --pace-us 12000 \
	--idle-exit-ms 800 --stats-out stats.json > dp.log 2>&1 &
DPPID=$!
i=0
while [ ! -S "$SOCK" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -S "$SOCK" ] || { cat dp.log; echo "FAIL: no control socket"; exit 1; }
[ "$(stat -c %a "$SOCK")" = 600 ] || { echo "FAIL: socket mode $(stat -c %a "$SOCK")"; exit 1; }
CTLS="$CTL --socket $SOCK"
# shadow first, while traffic surely flows (slow sanitizer builds make the swaps
# below take most of the traffic): scored by both, steered by the active one
$CTLS policy load b.q8 --shadow
sleep 0.3
$CTLS --json policy show | grep -q '"mode": "shadow"'
$CTLS --json stats > shadow.json
python3 -c 'import json,sys; c=json.load(open("shadow.json"))["counters"]; sys.exit(0 if c["shadow_scored"] > 0 and c["shadow_disagree"] > 0 else 1)' \
	|| { echo "FAIL: shadow counted nothing"; cat shadow.json; exit 1; }
# rollback first drops the shadow
$CTLS policy rollback
$CTLS --json policy show | grep -q '"mode": "active"'
n=0
while [ $n -lt 120 ]; do
	$CTLS policy load b.q8 > /dev/null
	$CTLS policy load a.q8 > /dev/null
	n=$((n + 2))
done
echo "$n swaps done"
# a refused policy leaves the running one in place
if $CTLS policy load bad.q8 2> err.txt; then echo "FAIL: truncated policy accepted"; exit 1; fi
cat err.txt
grep -q "policy rejected" err.txt
$CTLS --json policy show | grep -q '"source": "'"$T"'/a.q8"'
# rollback returns to the previous active policy
$CTLS policy rollback
$CTLS --json policy show | grep -q '"source": "'"$T"'/b.q8"'
$CTLS policy rollback
$CTLS status
$CTLS backends
wait "$DPPID" || { cat dp.log; echo "FAIL: qsteer-dp exited with an error"; exit 1; }
DPPID=
grep -q "idle for" dp.log || { cat dp.log; echo "FAIL: traffic ended before the swaps"; exit 1; }
"$PCAP" check --in in.pcap --out out.pcap --config "$CFG" --policy a.q8 --alt-policy b.q8 \
	--stats stats.json > check.txt || { cat check.txt; echo "FAIL: check"; exit 1; }
cat check.txt
# both policies must really have steered traffic
python3 - <<'PY'
import re, sys
t = open("check.txt").read()
m = re.search(r"bursts: (\d+) like .* only, (\d+) like .* only, (\d+) like both, (\d+) like neither", t)
a, b, both, mix = map(int, m.groups())
print(f"bursts: a {a}, b {b}, both {both}, mixed {mix}")
sys.exit(0 if a > 10 and b > 10 and mix == 0 else 1)
PY
