#!/bin/sh
# hotswap.sh - traffic replayed through qsteer-dp, metered in bursts by the test
# (rx gate, lib.sh), while qsteerctl swaps two policies 120 times with traffic
# between and around every swap; then shadow mode, rollback, a rejected policy. qsteer-pcap check --alt-policy then requires every frame present
# and every burst to carry exactly one of the two policies' decisions (never a mix),
# and all counters equal to the reference's (no packet lost).
# usage: hotswap.sh QSTEER_DP|none QSTEER_PCAP QSTEERCTL MKPOLICY CONFIG TRACE
set -eu
. "$(dirname "$0")/lib.sh"
dp_script_start swap "$@"
"$MKPOL" 1 a.q8 swap-a
"$MKPOL" 2 b.q8 swap-b
head -c 300 a.q8 > bad.q8 # truncated: must be refused
SOCK="$T/dp.sock"
"$PCAP" gen --config "$CFG" --trace "$TRACE" --limit 4000 --speedup 200 --seed 7 \
	--malformed 100 --out in.pcap
NPKT=$(pcap_count in.pcap)
NB=$(((NPKT + 31) / 32))
[ "$NB" -ge 300 ] || fail "in.pcap has $NB bursts; the swaps below need 300"
# Held at start: the test meters traffic in bursts between its actions, so what
# ran under which policy depends on the counters, not on how fast anything is.
# --pace-us keeps a worker inside a burst for a while, so a swap issued while a
# metered burst is in flight waits for it in the RCU grace period.
CTLS="$CTL --socket $SOCK"
start_dp swap "net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap" "$SOCK" \
	--config "$CFG" --policy a.q8 --pace-us 2000 --rx-hold --stats-out stats.json
[ "$(stat -c %a "$SOCK")" = 600 ] || fail "socket mode $(stat -c %a "$SOCK")"
$CTLS rx | grep -q "rx gated, 0 bursts allowed, 0 bursts received" || fail "rx not held: $($CTLS rx)"
$CTLS rx allow 4 > /dev/null
wait_bursts 4
# shadow: scored by both, steered by the active one
$CTLS policy load b.q8 --shadow
$CTLS rx allow 8 > /dev/null
wait_bursts 12
$CTLS --json policy show | grep -q '"mode": "shadow"' || fail "not in shadow mode"
$CTLS --json stats > shadow.json
python3 -c 'import json,sys; c=json.load(open("shadow.json"))["counters"]; sys.exit(0 if c["shadow_scored"] > 0 and c["shadow_disagree"] > 0 else 1)' \
	|| { cat shadow.json; fail "shadow counted nothing"; }
# rollback first drops the shadow
$CTLS policy rollback
$CTLS --json policy show | grep -q '"mode": "active"' || fail "rollback kept the shadow"
# 120 swaps. After each, two bursts are allowed and the next swap waits only for
# the first: that one ran under the new policy, the second is often still in
# flight when the next swap publishes (both outcomes are legal; the check below
# requires each burst to be one policy's, never a mix).
b=$(rx_bursts)
n=0
while [ $n -lt 120 ]; do
	$CTLS policy load b.q8 > /dev/null
	$CTLS rx allow 2 > /dev/null
	wait_bursts $((b + 1))
	$CTLS policy load a.q8 > /dev/null
	$CTLS rx allow 2 > /dev/null
	wait_bursts $((b + 3))
	b=$((b + 4))
	n=$((n + 2))
done
wait_bursts "$b"
echo "$n swaps done, $b bursts of $NB received"
# a refused policy leaves the running one in place
if $CTLS policy load bad.q8 2> err.txt; then fail "truncated policy accepted"; fi
cat err.txt
grep -q "policy rejected" err.txt || fail "refusal: $(cat err.txt)"
$CTLS --json policy show | grep -q '"source": "'"$T"'/a.q8"' || fail "active policy changed"
# rollback returns to the previous active policy
$CTLS policy rollback
$CTLS --json policy show | grep -q '"source": "'"$T"'/b.q8"' || fail "rollback to b"
$CTLS policy rollback
$CTLS status
$CTLS backends
# the swaps happened with traffic before and after them: the rest still flows
swaps=$($CTLS --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["policy"]["swaps"])')
[ "$swaps" -ge 124 ] || fail "only $swaps swaps counted"
[ "$b" -lt "$NB" ] || fail "no traffic left after the swaps"
run_out "$NPKT"
stop_dp
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
