#!/bin/bash
# dp.sh QSTEER_GW QSTEER_AGENT FAKE_ENGINE SSE_CLIENT QSTEER_DP QSTEERCTL - the
# whole path of issue 18 with the dataplane in it: curl -> qsteer-gw -> qsteer-dp
# (net_af_packet on a veth) -> qsteer-agent --executor http:// -> fake_engine.py (a
# conformance fixture, not an engine) -> back to the gateway directly (DSR). Four
# network namespaces the test creates (${P}f: a bridge; ${P}c: client and gateway;
# ${P}s: the dataplane; ${P}g: the GPU host, agent and engine on its loopback),
# removed by the EXIT trap with every process, whatever happens.
#
# Checks: the engine's queue and KV state in `qsteerctl backends`, streamed and
# non-streamed completions through the dataplane, a client disconnect reaching the
# engine as a closed stream (the cancel crosses the dataplane), the dataplane's
# count of requests sent to the backend. Every wait is for a condition, bounded by
# QS_WAIT_S (120 s); daemons run under `timeout 3600` (test/dp/lib.sh says why).
# QS_GW_LATENCY=N adds a latency measurement (below).
set -u
. "$(dirname "$0")/lib.sh"
GW=$(abs "$1") AG=$(abs "$2") ENG=$(abs "$3") CLI=$(abs "$4") DP=$(abs "$5") CTL=$(abs "$6")
LOGS="eng.log ag.log gw.log dp.log out"
[ "$DP" != none ] || { echo "SKIP: qsteer-dp not built (no DPDK)"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces, DPDK)"; exit 77; }
P=qgw$$
NSF=${P}f NSC=${P}c NSS=${P}s NSG=${P}g
PFX=qsteer-gw-$$
T=$(mktemp -d /tmp/qsteer-gwdp.XXXXXX)
PIDS=
cleanup() {
	[ -S "$T/ctl.sock" ] && timeout 30 "$CTL" --socket "$T/ctl.sock" shutdown > /dev/null 2>&1
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	for n in $NSC $NSS $NSG $NSF; do ip netns del "$n" 2>/dev/null; done
	rm -rf "/var/run/dpdk/$PFX" "$T"
}
trap cleanup EXIT
trap "exit 143" INT TERM
cd "$T" || exit 1
ip netns add "$NSF" 2>/dev/null || { echo "SKIP: cannot create network namespaces"; exit 77; }

# ---- topology (as scripts/cluster.sh builds it) ----
SVC=10.78.0.1 CLIENT=10.78.0.2 AGENT=10.78.0.10
SVCMAC=02:52:00:00:00:01 AGMAC=02:52:00:00:01:00
nsinit() {
	ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip -n "$1" link set lo up
}
plug() { # NS IF PEER [MAC]: tx checksum offload off (af_packet would pass partial sums)
	ip link add "$2" netns "$1" type veth peer name "$3" netns "$NSF" || fail "veth $2"
	[ -n "${4:-}" ] && ip -n "$1" link set dev "$2" address "$4"
	ip netns exec "$1" ethtool -K "$2" tx off > /dev/null
	ip netns exec "$NSF" ethtool -K "$3" tx off > /dev/null
	ip -n "$NSF" link set "$3" master br0 up
	ip -n "$1" link set "$2" up
}
nsinit "$NSF"
ip -n "$NSF" link add br0 type bridge
ip -n "$NSF" link set br0 up
for n in $NSC $NSS $NSG; do ip netns add "$n"; nsinit "$n"; done
plug "$NSC" c0 pc
ip -n "$NSC" addr add $CLIENT/24 dev c0
ip -n "$NSC" neigh replace $SVC lladdr $SVCMAC dev c0 nud permanent
plug "$NSS" s0 ps $SVCMAC
plug "$NSG" g0 pg $AGMAC
ip -n "$NSG" addr add $AGENT/24 dev g0
ip -n "$NSG" neigh replace $SVC lladdr $SVCMAC dev g0 nud permanent

cat > dp.ini <<EOF2
[service]
ip = $SVC
port = 7788
report_port = 7789
non_qrp = drop
report_interval_ms = 5
report_stale_intervals = 20
request_ttl_ms = 600000
fallback = lor

[backend gpu0]
id = 1
mac = $AGMAC
ip = $AGENT
port = 7788
EOF2

ip netns exec "$NSG" timeout 3600 $PY "$ENG" --host 0.0.0.0 --port-file eng.port --log eng.log \
	--waiting 3 --kv-usage 0.5 --slow-ms 100 &
PIDS="$PIDS $!" WATCH=$PIDS
wait_for "fixture port" test -s eng.port
printf '[engine]\nscrape_interval_ms = 50\n' > agent.ini
ip netns exec "$NSG" timeout 3600 "$AG" -c agent.ini --executor "http://127.0.0.1:$(cat eng.port)" \
	--listen $AGENT:7788 --report-to $SVC:7789 --backend-id 1 2> ag.log &
PIDS="$PIDS $!" WATCH=$PIDS
agent_bound() { ip netns exec "$NSG" ss -Hlun "sport = :7788" | grep -q .; }
wait_for "the agent bound to $AGENT:7788" agent_bound
ip netns exec "$NSS" timeout 3600 "$DP" --no-huge -m 256 --no-pci --file-prefix "$PFX" -l 0,1 \
	--vdev net_af_packet0,iface=s0 -- --config dp.ini --policy builtin:lor \
	--control "$T/ctl.sock" > dp.log 2>&1 &
PIDS="$PIDS $!" WATCH=$PIDS
ctl() { timeout 60 "$CTL" --socket "$T/ctl.sock" "$@"; }
ctl_up() { ctl status > /dev/null 2>&1; }
wait_for "dataplane control socket" ctl_up
ip netns exec "$NSC" timeout 3600 "$GW" --listen 127.0.0.1:0 --service $SVC:7788 \
	--port-file gw.port 2> gw.log &
PIDS="$PIDS $!" WATCH=$PIDS
wait_for "gateway port" test -s gw.port
URL=http://127.0.0.1:$(cat gw.port)
incl() { ip netns exec "$NSC" "$@"; }

echo "1. the engine's queue and KV state in qsteerctl backends"
engine_state() {
	ctl --json backends 2>/dev/null | $PY -c '
import json, sys
b = json.load(sys.stdin)["backends"][0]
sys.exit(0 if b["fresh"] and b["waiting"] >= 3 and b["kv_used"] == 500 and b["kv_total"] == 1000 else 1)'
}
wait_for "backend gpu0 fresh with waiting >= 3 and KV 500/1000" engine_state
ctl backends

echo "2. non-streamed completion through the dataplane"
c=$(incl curl -sS -o out -w '%{http_code}' -m 300 "$URL/v1/completions" \
	--data-binary '{"model":"fake","prompt":"hello","max_tokens":4}')
[ "$c" = 200 ] && grep -q '"text": "t0 t1 t2 t3 "' out || fail "completion: status $c"

echo "3. streamed chat through the dataplane"
c=$(incl curl -sS -N -o out -w '%{http_code}' -m 300 "$URL/v1/chat/completions" \
	--data-binary '{"model":"fake","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"stream":true}')
[ "$c" = 200 ] && [ "$(grep -c '^data: ' out)" = 7 ] && tail -c 14 out | grep -q 'data: \[DONE\]' ||
	fail "stream: status $c"

echo "4. a client disconnect cancels across the dataplane"
incl $PY "$CLI" disconnect 127.0.0.1 "$(cat gw.port)" /v1/completions \
	'{"prompt":"SLOW cut","max_tokens":500,"stream":true}' || fail "disconnect client"
closed() { grep -q '^client-closed ' eng.log; }
wait_for "closed stream at the engine" closed

echo "5. the dataplane steered them"
sent() { [ "$(ctl --json backends | $PY -c 'import json,sys; print(json.load(sys.stdin)["backends"][0]["sent"])')" -ge 3 ]; }
wait_for "3 requests sent to gpu0" sent
ctl stats | head -20

# QS_GW_LATENCY=N: also measure what the gateway and the steering hop add, N
# non-streamed completions each way from the client's namespace, alternating: to the
# engine directly (over the bridge) and through qsteer-gw, qsteer-dp and the agent
# (docs/deploy.md records a run). Nothing is asserted about the times.
if [ -n "${QS_GW_LATENCY:-}" ]; then
	echo "6. latency, $QS_GW_LATENCY requests each way"
	incl $PY "$CLI" latency "$URL" "http://$AGENT:$(cat eng.port)" "$QS_GW_LATENCY" ||
		fail "latency run"
fi
echo "PASS"
