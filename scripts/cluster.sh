#!/usr/bin/env bash
# cluster.sh - the whole system live on one machine (issue 13, docs/cluster.md).
#
# Network namespaces joined by a bridge in a "fabric" namespace:
#   client  c0 10.77.0.2 ----+
#   steer   s0 (no address; owns the service address 10.77.0.1 and its MAC):
#           qsteer-dp on net_af_packet, or qsteer-xdp (generic) ---+-- br0 (fabric)
#   gpuI    g0 10.77.0.(10+I):8000, qsteer-agent --executor model -+
# The client sends QRP requests to 10.77.0.1:7788; the dataplane rewrites MAC/IP/port
# towards an agent and sends the frame back out of s0; the agent answers the client
# directly (DSR) and reports to 10.77.0.1:7789 every 5 ms.
#
# usage: scripts/cluster.sh [options]   (as root; docs/cluster.md)
#   --mode dp|xdp|both     dataplane(s) to run (default dp)
#   --agents N             GPU-host namespaces/agents, 2..8 (default 4)
#   --routers "R ..."      routers for live-vs-sim: q8 (the --policy file),
#                          sed kv lor rr ... (default "q8 sed kv lor rr"; "" = none)
#   --policy FILE.q8       the router "q8" (default policies/default-router.q8)
#   --scenario trace|chat|cascade  arrivals for live-vs-sim (default trace);
#                          cascade: Llama-2-13B agents, the first half fp16, the
#                          rest 4-bit, with quality floors (docs/cluster.md)
#   --rate R --requests N  arrival rate (req/s) and count (default: 8 req/s, 400)
#   --seed N               scenario seed (default 1)
#   --live-runs K          live runs per router, interleaved (default 1); the table
#                          then compares the live median with the simulator's
#                          median over --phasings report phasings (docs/cluster.md)
#   --sim-schedule S       the simulated backends' schedule: mixed (the agent's,
#                          default) or vllm-v0 (the simulator's default backend)
#   --phasings N           report phasings the simulator runs per router, 1..200
#                          (default 40)
#   --sim-transit auto|US  the simulator's report transit ([scenario]
#                          report_transit_us, docs/sim.md): auto (default) is the
#                          median reach the mode's live runs measured; 0 is none
#   --sim-late auto|off    the simulator's report lateness ([scenario]
#                          report_late_us, docs/sim.md): auto (default) is what the
#                          mode's live agents measured; off is none
#   --ops                  operations under load: swaps (active/shadow/canary/rollback)
#                          and an agent killed and restarted
#   --hop                  the steering hop's cost (dataplane vs straight to an agent)
#   --capture              mode dp: record the steering host's ingress (reports and
#                          requests) of every live-vs-sim run as OUT/NAME.pcap, with
#                          OUT/dp-capture.ini and the report keys to replay it
#                          (qsteer-pcap decisions; docs/cluster.md, "Which inputs differ")
#   --ci                   assert (exit 1 on failure): every request answered, 0
#                          malformed, 0 lost in swaps, the killed agent masked
#   --p50-tol PCT          with --ci: each router's live TTFT p50 within PCT % of
#                          the simulator's, unless the load generator's send lag
#                          p99 passed 10 ms (a starved machine: said, not asserted;
#                          docs/cluster.md, "Test")
#   --build DIR            build directory (default $QSTEER_BUILD, build-cl or build)
#   --out DIR              keep results there (default: a temporary directory, removed)
# Exit status: 0 ok, 1 failure, 2 usage, 77 cannot run here (not root, no DPDK/XDP).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODE=dp AGENTS=4 ROUTERS="q8 sed kv lor rr" SCEN=trace RATE=8 REQUESTS=400 SEED=1
OPS=0 HOP=0 CAPTURE=0 CI=0 BUILD=${QSTEER_BUILD:-} OUTDIR= Q8=$ROOT/policies/default-router.q8
OPS_RATE=40 OPS_REQUESTS=1000 HOP_RATE=50 HOP_REQUESTS=400 SCHEDULE=mixed P50_TOL= LAG_STARVED_MS=10
LIVE_RUNS=1 PHASINGS=40 SIM_TRANSIT=auto SIM_LATE=auto
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--mode) MODE=$2; shift ;;
	--agents) AGENTS=$2; shift ;;
	--routers) ROUTERS=$2; shift ;;
	--policy) Q8=$(realpath "$2"); shift ;;
	--scenario) SCEN=$2; shift ;;
	--rate) RATE=$2; shift ;;
	--requests) REQUESTS=$2; shift ;;
	--seed) SEED=$2; shift ;;
	--live-runs) LIVE_RUNS=$2; shift ;;
	--p50-tol) P50_TOL=$2; shift ;;
	--sim-schedule) SCHEDULE=$2; shift ;;
	--sim-transit) SIM_TRANSIT=$2; shift ;;
	--sim-late) SIM_LATE=$2; shift ;;
	--phasings) PHASINGS=$2; shift ;;
	--ops-rate) OPS_RATE=$2; shift ;;
	--ops-requests) OPS_REQUESTS=$2; shift ;;
	--hop-requests) HOP_REQUESTS=$2; shift ;;
	--ops) OPS=1 ;;
	--hop) HOP=1 ;;
	--capture) CAPTURE=1 ;;
	--ci) CI=1 ;;
	--build) BUILD=$2; shift ;;
	--out) OUTDIR=$2; shift ;;
	-h|--help) usage ;;
	*) echo "cluster.sh: unknown option $1" >&2; usage ;;
	esac
	shift
done
case $MODE in dp) MODES=dp ;; xdp) MODES=xdp ;; both) MODES="dp xdp" ;; *) usage ;; esac
case $SCEN in trace|chat|cascade) ;; *) usage ;; esac
case $SCHEDULE in mixed|vllm-v0) ;; *) usage ;; esac
[ "$SIM_TRANSIT" = auto ] || [[ $SIM_TRANSIT =~ ^[0-9]+(\.[0-9]+)?$ ]] ||
	{ echo "cluster.sh: --sim-transit auto or microseconds, not '$SIM_TRANSIT'" >&2; exit 2; }
case $SIM_LATE in auto|off) ;; *) echo "cluster.sh: --sim-late auto or off, not '$SIM_LATE'" >&2; exit 2 ;; esac
[ -f "$Q8" ] || { echo "cluster.sh: --policy $Q8: no such file" >&2; exit 2; }
[ "$AGENTS" -ge 2 ] && [ "$AGENTS" -le 8 ] || { echo "cluster.sh: --agents 2..8" >&2; exit 2; }
[[ $LIVE_RUNS =~ ^[0-9]+$ ]] && [ "$LIVE_RUNS" -ge 1 ] && [ "$LIVE_RUNS" -le 20 ] ||
	{ echo "cluster.sh: --live-runs 1..20" >&2; exit 2; }
[[ $PHASINGS =~ ^[0-9]+$ ]] && [ "$PHASINGS" -ge 1 ] && [ "$PHASINGS" -le 200 ] ||
	{ echo "cluster.sh: --phasings 1..200" >&2; exit 2; }

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, AF_PACKET, XDP)"
for t in ip ethtool python3 timeout; do
	command -v $t > /dev/null 2>&1 || skip "$t not installed (scripts/deps.sh)"
done
if [ -z "$BUILD" ]; then
	for b in "$ROOT/build-cl" "$ROOT/build"; do [ -x "$b/agent/qsteer-agent" ] && { BUILD=$b; break; }; done
fi
[ -n "$BUILD" ] || { echo "cluster.sh: no build directory (--build DIR)" >&2; exit 1; }
BUILD=$(cd "$BUILD" && pwd)
DP=$BUILD/dp/qsteer-dp XDP=$BUILD/ebpf/qsteer-xdp AGENT=$BUILD/agent/qsteer-agent
CTL=$BUILD/tools/qsteerctl LOAD=$BUILD/tools/load/qsteer-load SIM=$BUILD/sim/qsteer-sim
REPLAY=$BUILD/test/cluster/cluster-replay
for p in "$AGENT" "$CTL" "$LOAD" "$SIM"; do [ -x "$p" ] || { echo "cluster.sh: $p not built" >&2; exit 1; }; done
for m in $MODES; do
	case $m in
	dp) [ -x "$DP" ] || skip "qsteer-dp not built (no DPDK)" ;;
	xdp) [ -x "$XDP" ] || skip "qsteer-xdp not built (no libbpf/bpftool)" ;;
	esac
done

# ---- state and teardown -------------------------------------------------------------
ID=$$
P=qcl$ID # namespace prefix: ${P}f fabric, ${P}c client, ${P}s steer, ${P}g0.. GPU hosts
NSF=${P}f NSC=${P}c NSS=${P}s
T=$(mktemp -d /tmp/qsteer-cluster.XXXXXX)
OUT=${OUTDIR:-$T/out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SOCK=$T/ctl.sock
PFX=qsteer-cluster-$ID
DPPID= LOADPID=
declare -a APID
FAILS=0
cleanup() {
	set +e
	trap - EXIT INT TERM
	[ -n "$LOADPID" ] && kill "$LOADPID" 2> /dev/null && wait "$LOADPID" 2> /dev/null
	[ -n "${CAP_PID:-}" ] && kill -INT "$CAP_PID" 2> /dev/null && wait "$CAP_PID" 2> /dev/null
	stop_dataplane
	for i in "${!APID[@]}"; do stop_agent "$i"; done
	for n in $NSC $NSS $NSF $(seq -f "${P}g%g" 0 $((AGENTS - 1))); do
		# anything still inside a namespace (it should be none) is killed first
		for pid in $(ip netns pids "$n" 2> /dev/null); do kill -9 "$pid" 2> /dev/null; done
		ip netns del "$n" 2> /dev/null
	done
	rm -rf "/var/run/dpdk/$PFX" "$T"
}
trap cleanup EXIT
trap 'echo "cluster.sh: interrupted" >&2; exit 130' INT TERM

say() { echo "== $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); [ "$CI" = 1 ] && exit 1; return 0; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
ctl() { timeout 120 "$CTL" --socket "$SOCK" "$@"; }

# ---- topology -----------------------------------------------------------------------
SVC=10.77.0.1 CLIENT=10.77.0.2 SVCMAC=02:51:00:00:00:01
agent_ip() { echo "10.77.0.$((10 + $1))"; }
agent_mac() { printf '02:51:00:00:01:%02x' "$1"; }
# a heterogeneous mix like azure-code-70: the first half A100, the rest H100; for the
# cascade, the first half the full-precision model and the rest its 4-bit variant
# (all A100s), each with its accuracy per difficulty as sim/scenarios/cascade.ini's
NA100=$(((AGENTS + 1) / 2)) NH100=$((AGENTS - (AGENTS + 1) / 2))
agent_profile() {
	if [ "$SCEN" = cascade ]; then
		[ "$1" -lt "$NA100" ] && echo a100-80gb-llama2-13b || echo a100-80gb-llama2-13b-w4
	else
		[ "$1" -lt "$NA100" ] && echo a100-80gb-llama2-7b || echo h100-80gb-llama2-7b
	fi
}
Q_FP16="0.7432, 0.5568, 0.4284" Q_W4="0.7378, 0.5428, 0.3738"

if [ "$SCEN" = cascade ]; then
	say "topology: $AGENTS GPU hosts ($NA100 x A100 fp16, $NH100 x A100 W4, Llama-2-13B), namespaces ${P}*"
else
	say "topology: $AGENTS GPU hosts ($NA100 x A100, $NH100 x H100), namespaces ${P}*"
fi
ip netns add "$NSF" 2> /dev/null || skip "cannot create network namespaces"
nsinit() { # $1 namespace: lo up, no IPv6 (no ND/MLD noise on the wires)
	ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip -n "$1" link set lo up
}
nsinit "$NSF"
ip -n "$NSF" link add br0 type bridge
ip -n "$NSF" link set br0 up
# plug NS IF PEER [MAC]: veth IF in NS <-> PEER on the fabric's bridge, tx checksum
# offload off on both ends (a partial UDP checksum would survive af_packet/XDP_TX and
# the receiver would drop the datagram)
plug() {
	ip link add "$2" netns "$1" type veth peer name "$3" netns "$NSF"
	[ -n "${4:-}" ] && ip -n "$1" link set dev "$2" address "$4"
	ip netns exec "$1" ethtool -K "$2" tx off > /dev/null
	ip netns exec "$NSF" ethtool -K "$3" tx off > /dev/null
	ip -n "$NSF" link set "$3" master br0 up
	ip -n "$1" link set "$2" up
}
ip netns add "$NSC"; nsinit "$NSC"
plug "$NSC" c0 pc
ip -n "$NSC" addr add $CLIENT/24 dev c0
ip -n "$NSC" neigh replace $SVC lladdr $SVCMAC dev c0 nud permanent
ip netns add "$NSS"; nsinit "$NSS"
plug "$NSS" s0 ps $SVCMAC # no address: only the dataplane uses s0
for i in $(seq 0 $((AGENTS - 1))); do
	n=${P}g$i
	ip netns add "$n"; nsinit "$n"
	plug "$n" g0 "pg$i" "$(agent_mac "$i")"
	ip -n "$n" addr add "$(agent_ip "$i")/24" dev g0
	ip -n "$n" neigh replace $SVC lladdr $SVCMAC dev g0 nud permanent
done

# ---- configuration ------------------------------------------------------------------
sed -e "s/@SERVICE_IP@/$SVC/" "$ROOT/scripts/cluster/dp.ini" > "$T/dp.ini"
# the cascade's floors per SLO class (0 first), as the scenario's [slo.N] (2 and 3
# have none there)
if [ "$SCEN" = cascade ]; then
	sed -i 's/^\[service\]$/[service]\nquality_floor = 0.95, 0.98, 0, 0/' "$T/dp.ini"
fi
# the fallback's heard window: ten mask ages (router_view.h QS_RVIEW_HEARD_AGES), the
# mask age being report_interval_ms x report_stale_intervals
HEARD_MS=$(awk -F'[=;]' '/^report_interval_ms/ { i = $2 } /^report_stale_intervals/ { k = $2 }
	END { print i * k * 10 }' "$T/dp.ini")
for i in $(seq 0 $((AGENTS - 1))); do
	if [ "$SCEN" = cascade ]; then
		cap=100 cls=0
		[ "$i" -lt "$NA100" ] && q=$Q_FP16 || q=$Q_W4
	elif [ "$i" -lt "$NA100" ]; then cap=100 cls=0; else cap=200 cls=2; fi
	# each agent signs its reports with its own key, and the dataplane believes a
	# backend's reports only with that key's tag (docs/wire.md, report authentication)
	(umask 077; od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$T/gpu$i.key")
	cat >> "$T/dp.ini" <<-EOF

	[backend gpu$i]
	id = $((i + 1))
	mac = $(agent_mac "$i")
	ip = $(agent_ip "$i")
	port = 8000
	capacity_class = $cls
	capacity = $cap
	report_key_file = $T/gpu$i.key
	EOF
	if [ "$SCEN" = cascade ]; then printf 'quality = %s\n' "$q" >> "$T/dp.ini"; fi
done
# scenario NAME RATE REQUESTS OUTFILE: a template with the cluster's backends (the
# same capacities as the dataplane's, so sed and the capacity feature agree), each
# simulated with the agent's own scheduler (schedule = mixed: every decode and whole
# prompts in one iteration, docs/sim.md) instead of the default vLLM-v0 backend
scenario() {
	sed -e "s|@TRACE@|$ROOT/data/traces/azure_llm_2023_code.csv|" -e "s/@RATE@/$2/" \
	    -e "s/@REQUESTS@/$3/" "$ROOT/scripts/cluster/$1.ini" > "$4"
	if [ "$1" = cascade ]; then
		printf '\n[backend.fp16]\nprofile = a100-80gb-llama2-13b\ncount = %d\ncapacity = 100\nschedule = %s\nvariant = fp16\nquality = %s\n' \
			$NA100 "$SCHEDULE" "$Q_FP16" >> "$4"
		printf '\n[backend.w4]\nprofile = a100-80gb-llama2-13b-w4\ncount = %d\ncapacity = 100\nschedule = %s\nvariant = w4\nquality = %s\n' \
			$NH100 "$SCHEDULE" "$Q_W4" >> "$4"
		return 0
	fi
	printf '\n[backend.a100]\nprofile = a100-80gb-llama2-7b\ncount = %d\ncapacity = 100\nschedule = %s\n' \
		$NA100 "$SCHEDULE" >> "$4"
	[ $NH100 -gt 0 ] && printf '\n[backend.h100]\nprofile = h100-80gb-llama2-7b\ncount = %d\ncapacity = 200\nschedule = %s\n' \
		$NH100 "$SCHEDULE" >> "$4"
	return 0
}
scenario "$SCEN" "$RATE" "$REQUESTS" "$T/main.ini"
scenario chat "$OPS_RATE" "$OPS_REQUESTS" "$T/ops.ini"
scenario hop "$HOP_RATE" "$HOP_REQUESTS" "$T/hop.ini"
cp "$T/dp.ini" "$T/main.ini" "$OUT/"
if [ "$CAPTURE" = 1 ]; then
	command -v dumpcap > /dev/null || skip "--capture needs dumpcap (Debian's wireshark-common)"
	[ -n "$OUTDIR" ] || echo "cluster: --capture without --out: the captures go with the temporary directory" >&2
	# the replay needs the report keys the run's dataplane believed
	cp "$T"/gpu*.key "$OUT/"
	sed "s|$T/|$OUT/|" "$T/dp.ini" > "$OUT/dp-capture.ini"
fi
# capture_start NAME / capture_stop: the steering host's ingress during one run
capture_start() {
	[ "$CAPTURE" = 1 ] && [ "$M" = dp ] || return 0
	ip netns exec "$NSS" dumpcap -q -P -i s0 -f "udp and dst host $SVC" -w "$OUT/$1.pcap" \
		2> "$OUT/$1.capture.err" &
	CAP_PID=$!
	for _ in $(seq 50); do [ -s "$OUT/$1.pcap" ] && break; sleep 0.1; done
	[ -s "$OUT/$1.pcap" ] || echo "cluster: dumpcap did not start: $(cat "$OUT/$1.capture.err")" >&2
}
capture_stop() {
	[ -n "${CAP_PID:-}" ] || return 0
	kill -INT "$CAP_PID" 2> /dev/null || true
	wait "$CAP_PID" 2> /dev/null || true
	CAP_PID=
}
export QSTEER_SCENARIO_DIR=$ROOT/sim/scenarios

# ---- processes ----------------------------------------------------------------------
start_agent() { # $1 index
	local i=$1
	ip netns exec "${P}g$i" "$AGENT" --executor model \
		--sim-profile "$ROOT/sim/profiles/$(agent_profile "$i").ini" --batching fixed \
		--listen "$(agent_ip "$i"):8000" --report-to $SVC:7789 --backend-id $((i + 1)) \
		--report-key-file "$T/gpu$i.key" >> "$OUT/agent$i.log" 2>&1 &
	APID[$i]=$!
}
stop_agent() { # $1 index [signal]
	local pid=${APID[$1]:-}
	[ -n "$pid" ] || return 0
	kill "-${2:-TERM}" "$pid" 2> /dev/null || true
	wait "$pid" 2> /dev/null || true
	APID[$1]=
	return 0
}
start_dataplane() { # $1 dp|xdp, $2 policy
	rm -f "$SOCK"
	if [ "$1" = dp ]; then
		# one worker lcore (1) busy-polls s0 through AF_PACKET; lcore 0 runs control
		ip netns exec "$NSS" "$DP" --no-huge -m 256 --no-pci --file-prefix "$PFX" -l 0,1 \
			--vdev net_af_packet0,iface=s0 -- --config "$T/dp.ini" --policy "$2" \
			--control "$SOCK" --stats-out "$OUT/dp-stats.json" > "$OUT/dp.log" 2>&1 &
	else
		ip netns exec "$NSS" "$XDP" --config "$T/dp.ini" --iface s0 --mode generic \
			--policy "$2" --control "$SOCK" --stats-out "$OUT/xdp-stats.json" \
			> "$OUT/xdp.log" 2>&1 &
	fi
	DPPID=$!
	local k=0
	until ctl status > /dev/null 2>&1; do
		kill -0 "$DPPID" 2> /dev/null || { cat "$OUT/$1.log"; fail "$1 exited at start"; exit 1; }
		k=$((k + 1)); [ $k -le 300 ] || { fail "$1: no control socket after 30 s"; exit 1; }
		sleep 0.1
	done
}
stop_dataplane() {
	[ -n "$DPPID" ] || return 0
	ctl shutdown > /dev/null 2>&1 || kill "$DPPID" 2> /dev/null || true
	local k=0
	while kill -0 "$DPPID" 2> /dev/null && [ $k -lt 100 ]; do sleep 0.1; k=$((k + 1)); done
	kill -9 "$DPPID" 2> /dev/null || true
	wait "$DPPID" 2> /dev/null || true
	DPPID=
	rm -rf "/var/run/dpdk/$PFX"
	return 0
}
# backend_field ID FIELD: one field of one backend from `qsteerctl --json backends`
backends_json() { ctl --json backends 2> /dev/null || echo '{}'; }
backend_field() {
	backends_json | python3 -c 'import json,sys
d=json.load(sys.stdin)
for b in d.get("backends",[]):
    if b["id"]==int(sys.argv[1]): v=b[sys.argv[2]]; print(int(v) if isinstance(v,bool) else v)' "$1" "$2"
}
fresh_count() {
	backends_json | python3 -c 'import json,sys; print(sum(1 for b in json.load(sys.stdin).get("backends",[]) if b["fresh"]))'
}
wait_fresh() { # $1 count: wait until that many backends have a fresh report (30 s)
	local k=0
	until [ "$(fresh_count)" -ge "$1" ]; do
		k=$((k + 1)); [ $k -le 300 ] || { fail "only $(fresh_count) of $1 backends fresh after 30 s"; return 1; }
		sleep 0.1
	done
}
# restart_agents: every agent stopped and started again; returns once every backend
# has a fresh report from its new agent (a report sequence other than the stopped
# agent's last: a report of the old one, up to 10 ms old, is still fresh)
restart_agents() {
	local before k=0
	for i in $(seq 0 $((AGENTS - 1))); do stop_agent "$i"; done
	before=$(backends_json | python3 -c 'import json,sys
print(" ".join("%d:%d" % (b["id"], b["report_seq"]) for b in json.load(sys.stdin).get("backends", [])))')
	for i in $(seq 0 $((AGENTS - 1))); do start_agent "$i"; done
	until backends_json | python3 -c 'import json,sys
old = dict(map(int, x.split(":")) for x in sys.argv[1].split())
b = json.load(sys.stdin).get("backends", [])
sys.exit(0 if b and all(x["fresh"] and x["report_seq"] != old.get(x["id"]) for x in b) else 1)' "$before"; do
		k=$((k + 1)); [ $k -le 300 ] || { fail "agents not reporting 30 s after their restart"; return 1; }
		sleep 0.1
	done
}
# load TARGET SCENARIO LABEL [extra]: one qsteer-load run from the client namespace;
# result in $OUT/LABEL.json and LABEL.csv; a hard time bound from the scenario. The
# run ends as soon as every request is settled; the drain (60 s after the last send
# unless DRAIN says otherwise) only bounds a straggler: on the overloaded trace a
# long generation sent near the end needs tens of seconds (697 tokens at ~0.3 s per
# token took longer than the 10 s this once was, and the request counted as timed
# out while the simulator, which runs every request to the end, counted it)
load() {
	local tgt=$1 sc=$2 label=$3; shift 3
	timeout 600 ip netns exec "$NSC" "$LOAD" --target "$tgt" --scenario "$sc" --seed "$SEED" \
		--clients 16 --bind $CLIENT --drain-ms "${DRAIN:-60000}" --label "$label" \
		--out "$OUT/$label.csv" --json "$@" > "$OUT/$label.json" 2> "$OUT/$label.err" || true
}
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], d))' "$@"; }
check_p50() { # MODE ROUTER: live TTFT p50 within P50_TOL % of the simulator's
	local e
	e=$(python3 -c 'import json,sys
l=json.load(open(sys.argv[1])); s=json.load(open(sys.argv[2]))
print("%.1f" % (100.0 * (l["ttft_p50_ms"] - s["ttft_p50_ms"]) / s["ttft_p50_ms"]))' \
		"$OUT/$1-$2.json" "$OUT/sim-$1-$2.json") || { fail "$1-$2: no TTFT p50 to compare"; return; }
	echo "   $1-$2: TTFT p50 live vs sim $e% (tolerance +-$P50_TOL%)"
	python3 -c "import sys; sys.exit(abs($e) > $P50_TOL)" && return
	# A machine too busy to keep the load generator on its schedule delays the agents
	# as much: the comparison then measures the machine, not the model. Said, not
	# asserted (docs/cluster.md "Test"); a run that kept its schedule must pass.
	local lag
	lag=$(jget "$OUT/$1-$2.json" "round(send_lag_p99_ms, 1)")
	if python3 -c "import sys; sys.exit(not $lag > $LAG_STARVED_MS)"; then
		echo "   $1-$2: NOT ASSERTED: the load generator's send lag p99 was $lag ms" \
			"(> $LAG_STARVED_MS ms): the machine starved this run"
		return
	fi
	fail "$1-$2: TTFT p50 $e% from the simulator's, beyond +-$P50_TOL%" \
		"(send lag p99 $lag ms: the run kept its schedule)"
}
check_all_answered() { # $1 label
	local f=$OUT/$1.json
	[ -s "$f" ] || { cat "$OUT/$1.err"; fail "$1: qsteer-load gave no result"; return; }
	local s a m
	s=$(jget "$f" scheduled); a=$(jget "$f" answered); m=$(jget "$f" malformed)
	echo "   $1: $a of $s answered, $m malformed"
	[ "$a" = "$s" ] || fail "$1: $((s - a)) of $s requests not answered"
	[ "$m" = 0 ] || fail "$1: $m malformed responses"
}

# ---- health -------------------------------------------------------------------------
for i in $(seq 0 $((AGENTS - 1))); do start_agent "$i"; done
health() { # every agent answers a request sent straight to it
	local i k
	for i in $(seq 0 $((AGENTS - 1))); do
		k=0
		until timeout 30 ip netns exec "$NSC" "$LOAD" --target "$(agent_ip "$i"):8000" \
			--scenario "$T/hop.ini" --rate 20 --requests 2 --drain-ms 2000 --require-all \
			> /dev/null 2>&1; do
			k=$((k + 1)); [ $k -le 10 ] || { fail "agent $i does not answer"; exit 1; }
			kill -0 "${APID[$i]}" 2> /dev/null || { cat "$OUT/agent$i.log"; fail "agent $i exited"; exit 1; }
			sleep 0.5
		done
	done
	echo "   every agent answers"
}
say "health"
health

# ---- per mode -----------------------------------------------------------------------
policy_path() { case $1 in q8) echo "$Q8" ;; *) echo "builtin:$1" ;; esac; }
sim_router() { case $1 in q8) echo "q8:$Q8" ;; *) echo "$1" ;; esac; }

for M in $MODES; do
	say "mode $M: $( [ "$M" = dp ] && echo "qsteer-dp, net_af_packet on s0" || echo "qsteer-xdp, generic XDP on s0")"
	start_dataplane "$M" builtin:lor
	wait_fresh "$AGENTS" || exit 1
	echo "   control socket answers; $AGENTS backends fresh ($(ctl policy show | head -1 | tr -s ' ' ))"

	# -- live vs simulated --
	# Live: LIVE_RUNS runs per router on the same arrivals, interleaved across the
	# routers so that a slow spell of the machine does not fall on one router; run
	# 1 is MODE-R, run k MODE-R-runK. A load-sensitive router's trajectory depends
	# on when each agent's reports land against the arrivals, which no run controls
	# and the simulator cannot know: so the prediction is also a distribution, the
	# simulation at the same seed (same arrivals) over PHASINGS report phase seeds
	# ([scenario] report_phase_seed, docs/sim.md), and table.py compares medians.
	# where this mode's lines begin in each agent's log (its lateness, below)
	late_from=()
	for i in $(seq 0 $((AGENTS - 1))); do
		late_from[$i]="$OUT/agent$i.log:$(wc -l < "$OUT/agent$i.log" 2> /dev/null || echo 0)"
	done
	for k in $(seq 1 "$LIVE_RUNS"); do
		for R in $ROUTERS; do
			# fresh agents for every run, as the simulator's: an agent's TTFT figure
			# is the largest of its last 32 first tokens, and those of the previous
			# run (or of the health check) filled the first ~30 reports of the next
			# (docs/cluster.md, "Which inputs differ")
			restart_agents || true
			ctl policy load "$(policy_path "$R")" > /dev/null || { fail "policy load $R"; continue; }
			wait_fresh "$AGENTS" || true
			name=$M-$R; [ "$k" = 1 ] || name=$M-$R-run$k
			capture_start "$name"
			load "$SVC:7788" "$T/main.ini" "$name"
			capture_stop
			[ "$CI" = 1 ] && check_all_answered "$name"
		done
	done
	# The cascade's floors, live: no medium or hard interactive request (classes 1
	# and 2 of scripts/cluster/cascade.ini) may reach a 4-bit agent (backend ids
	# above NA100); the split per class shows the easy ones did.
	if [ "$SCEN" = cascade ]; then
		for f in "$OUT/$M"-*.csv; do
			[ -s "$f" ] || continue
			bad=$(python3 - "$f" "$NA100" "$Q_FP16" "$Q_W4" <<-'PY'
			import csv, sys
			na = int(sys.argv[2])
			qf, qw = ([float(x) for x in a.split(",")] for a in sys.argv[3:5])
			diff = [0, 1, 2, 1]  # the classes' difficulties (cascade.ini)
			n, w4, served, best = [0] * 4, [0] * 4, 0.0, 0.0
			for r in csv.DictReader(open(sys.argv[1])):
			    if not r["backend"]:  # routed: answered or rejected by the agent
			        continue
			    c = int(r["class"])
			    n[c] += 1
			    on_w4 = int(r["backend"]) > na
			    w4[c] += on_w4
			    served += (qw if on_w4 else qf)[diff[c]]
			    best += qf[diff[c]]
			names = ["easy", "medium", "hard", "bulk"]
			print(w4[1] + w4[2], end=" ")
			print(", ".join("%s %d/%d" % (names[c], w4[c], n[c]) for c in range(4)), end="")
			print("; accuracy loss %.2f%%" % (100 * (1 - served / best) if best else 0))
			PY
			)
			echo "   floors in $(basename "$f"): on 4-bit agents $bad"
			[ "${bad%% *}" = 0 ] || fail "$(basename "$f"): ${bad%% *} requests below their quality floor"
		done
	fi
	# The report transit: a live report reaches the dataplane a while after the agent
	# took it, and a request sent meanwhile is in neither the report nor the sent
	# counts (docs/sim.md, "Report transit"). Its length is measured, not fitted: the
	# median over this mode's live runs of the requests' median reach (client to
	# agent through the dataplane); the report's own way, agent to dataplane, crosses
	# the same bridge and dataplane loop as the client's request, so reach stands for
	# both legs. Capped below the report interval (a starved run; said).
	if [ -n "$ROUTERS" ]; then
		transit=$SIM_TRANSIT
		if [ "$transit" = auto ]; then
			transit=$(python3 - "$OUT" "$M" $ROUTERS <<-'PY'
			import json, os, statistics, sys
			out, mode, routers = sys.argv[1], sys.argv[2], sys.argv[3:]
			v = []
			for r in routers:
			    for k in range(1, 21):
			        f = os.path.join(out, "%s-%s%s.json" % (mode, r, "" if k == 1 else "-run%d" % k))
			        try:
			            d = json.load(open(f))
			        except (OSError, ValueError):
			            continue
			        if d.get("reach_n"):
			            v.append(d["reach_p50_ms"] * 1000.0)
			print("%.1f" % min(statistics.median(v), 4900.0) if v else "0")
			PY
			)
			echo "   report transit for the simulator: $transit us (the median reach of the live runs)"
			[ "$transit" != 4900.0 ] || echo "   (capped below the 5 ms report interval: the runs' reach was longer)"
		else
			echo "   report transit for the simulator: $transit us (--sim-transit)"
		fi
		echo "$transit" > "$OUT/$M-transit-us.txt"
		# The report lateness: how late each agent sent its reports, from their
		# exit lines (agent/serve.c); a report an interval late masks its backend
		# for a moment, and rr then skips it (docs/cluster.md). The last run's
		# agents are restarted so that theirs is in.
		late=
		if [ "$SIM_LATE" = auto ]; then
			restart_agents || true
			python3 "$ROOT/scripts/cluster/late.py" "${late_from[@]}" > "$T/late.txt"
			late=$(head -1 "$T/late.txt")
			echo "   report lateness for the simulator: $(sed -n 2p "$T/late.txt")"
			[ "$CI" = 1 ] && [ -z "$late" ] && fail "no agent printed its report lateness at exit"
			cp "$T/late.txt" "$OUT/$M-late.txt"
		fi
		sed "s/^\[scenario\]\$/[scenario]\nreport_transit_us = $transit${late:+\nreport_late_us = $late}/" \
			"$T/main.ini" > "$T/sim-$M.ini"
		cp "$T/sim-$M.ini" "$OUT/sim-$M.ini"
	fi
	for R in $ROUTERS; do
		timeout 600 "$SIM" run --scenario "$T/sim-$M.ini" --router "$(sim_router "$R")" \
			--seed "$SEED" --json > "$OUT/sim-$M-$R.json" 2> "$OUT/sim-$M-$R.err" || true
		for k in $(seq 1 "$PHASINGS"); do
			sed "s/^\[scenario\]\$/[scenario]\nreport_phase_seed = $k/" "$T/sim-$M.ini" > "$T/phase.ini"
			timeout 600 "$SIM" run --scenario "$T/phase.ini" --router "$(sim_router "$R")" \
				--seed "$SEED" --json > "$OUT/sim-$M-$R-phase$k.json" 2> /dev/null || true
		done
		# the same simulation with the live run's routing replayed (docs/cluster.md):
		# what is left of the error without the routers' own divergence
		[ -x "$REPLAY" ] && [ -s "$OUT/$M-$R.csv" ] &&
			timeout 120 "$REPLAY" --scenario "$T/main.ini" --seed "$SEED" \
				--live "$OUT/$M-$R.csv" > "$OUT/$M-$R-replay.txt" 2>&1
		[ "$CI" = 1 ] && [ -n "$P50_TOL" ] && check_p50 "$M" "$R"
	done
	if [ -n "$ROUTERS" ]; then
		echo
		python3 "$ROOT/scripts/cluster/table.py" "$OUT" "$M" $ROUTERS | tee "$OUT/$M-table.txt"
	fi

	# -- the steering hop: every request to agent 0 (the others drained), through
	# the dataplane and straight, alternating twice on the same arrivals --
	if [ "$HOP" = 1 ]; then
		say "$M: steering hop (agent 0 only; $HOP_REQUESTS lone requests at $HOP_RATE req/s, each way twice)"
		ctl policy load builtin:lor > /dev/null
		for i in $(seq 1 $((AGENTS - 1))); do ctl backend drain $((i + 1)) > /dev/null; done
		for k in 1 2; do
			load "$(agent_ip 0):8000" "$T/hop.ini" "$M-hop-direct$k"
			load "$SVC:7788" "$T/hop.ini" "$M-hop-steered$k"
		done
		for i in $(seq 1 $((AGENTS - 1))); do ctl backend undrain $((i + 1)) > /dev/null; done
		python3 "$ROOT/scripts/cluster/hop.py" "$OUT" "$M" | tee "$OUT/$M-hop.txt"
		[ "$CI" = 1 ] && for k in 1 2; do check_all_answered "$M-hop-steered$k"; done
	fi

	# -- operations under load --
	if [ "$OPS" = 1 ]; then
		dur=$(python3 -c "print(round($OPS_REQUESTS / $OPS_RATE, 1))")
		say "$M: policy swaps under load ($OPS_REQUESTS requests at $OPS_RATE req/s, ~$dur s)"
		ctl policy load builtin:lor > /dev/null
		wait_fresh "$AGENTS" || true
		load "$SVC:7788" "$T/ops.ini" "$M-ops-swaps" &
		LOADPID=$!
		step=$(python3 -c "print(max(0.2, $dur / 8))")
		swaps=0
		if [ "$M" = dp ]; then
			cmds=("policy load $Q8" "policy load $Q8 --shadow" "policy rollback"
			      "policy load $Q8 --canary 10" "policy rollback" "policy load builtin:sed"
			      "policy rollback")
		else # qsteer-xdp runs one policy per packet: no shadow, no canary
			cmds=("policy load $Q8" "policy load builtin:sed" "policy rollback"
			      "policy load builtin:kv" "policy rollback" "policy load $Q8" "policy rollback")
		fi
		for cmd in "${cmds[@]}"; do
			sleep "$step"
			if ctl $cmd > /dev/null; then swaps=$((swaps + 1)); echo "   t+$(python3 -c "print(round($step*$swaps,1))")s qsteerctl $cmd" | sed "s|$ROOT/||"
			else fail "qsteerctl $cmd refused"; fi
		done
		wait "$LOADPID" || true; LOADPID=
		f=$OUT/$M-ops-swaps.json
		s=$(jget "$f" scheduled); a=$(jget "$f" answered)
		echo "   $swaps policy changes under load: $a of $s answered, $((s - a)) lost; $(ctl policy show | head -1 | tr -s ' ')"
		check_all_answered "$M-ops-swaps"

		# round robin: it keeps sending to a backend until the mask, which is what
		# is measured here (lor shies away from a silent backend by itself)
		say "$M: agent 2 killed and restarted under load (router rr)"
		ctl policy load builtin:rr > /dev/null
		wait_fresh "$AGENTS" || true
		VB=3 VI=2 # backend id 3, agent index 2
		DRAIN=4000 load "$SVC:7788" "$T/ops.ini" "$M-ops-kill" &
		LOADPID=$!
		sleep "$(python3 -c "print($dur / 4)")"
		kj=$(timeout 30 python3 "$ROOT/scripts/cluster/watch.py" "$SOCK" $VB "${APID[$VI]}" kill "$OUT/$M-kill-timeline.csv" "$HEARD_MS") || true
		stop_agent $VI KILL # reap it (watch.py killed it)
		echo "$kj" > "$OUT/$M-kill.json"
		if [ "$(jget "$OUT/$M-kill.json" "'masked_ms' in globals()" 2> /dev/null)" != True ]; then
			fail "backend $VB never masked after its agent was killed ($kj)"
		else
			echo "   killed agent $VI (backend id $VB) under load; in flight at it (its last report): $(jget "$OUT/$M-kill.json" waiting_at_t0) waiting + $(jget "$OUT/$M-kill.json" running_at_t0) running"
			echo "   masked (not fresh) $(jget "$OUT/$M-kill.json" masked_ms) ms after the kill (masked after 2 report intervals of 5 ms without a report, polled every ~5 ms)"
			echo "   requests steered to it after the kill: $(jget "$OUT/$M-kill.json" sent_after), the last $(jget "$OUT/$M-kill.json" "globals().get('last_sent_ms', 0)") ms after the kill; after the mask: $(jget "$OUT/$M-kill.json" after_mask), by the router $(jget "$OUT/$M-kill.json" router_after_mask), by the fallback past its heard window $(jget "$OUT/$M-kill.json" late_fallback)"
			[ "$(jget "$OUT/$M-kill.json" "masked_ms < 5000")" = True ] ||
				fail "backend $VB masked only after 5 s"
			# After the mask the router never picks it; only the fallback may, while
			# every backend is masked (a loaded host makes every report late at
			# once) and only within its heard window (router_view.h)
			[ "$(jget "$OUT/$M-kill.json" router_after_mask)" = 0 ] ||
				fail "backend $VB still steered to by the router after it was masked"
			[ "$(jget "$OUT/$M-kill.json" late_fallback)" = 0 ] ||
				fail "backend $VB steered to by the fallback after its heard window ($HEARD_MS ms)"
		fi
		rm -rf "$T/rs"; mkdir "$T/rs"
		timeout 40 python3 "$ROOT/scripts/cluster/watch.py" "$SOCK" $VB "$T/rs" restart "$OUT/$M-restart-timeline.csv" > "$T/rs/out" &
		WPID=$!
		k=0; while [ ! -e "$T/rs/ready" ] && [ $k -lt 200 ]; do sleep 0.05; k=$((k + 1)); done
		date +%s%N > "$T/rs/go"
		start_agent $VI
		wait $WPID || true
		rj=$(cat "$T/rs/out")
		echo "$rj" > "$OUT/$M-restart.json"
		if [ "$(jget "$OUT/$M-restart.json" "'steered_ms' in globals()" 2> /dev/null)" = True ]; then
			echo "   restarted: fresh again $(jget "$OUT/$M-restart.json" fresh_ms) ms, steered to again $(jget "$OUT/$M-restart.json" steered_ms) ms after the restart (agent start-up included)"
		else
			echo "   restarted: fresh again $(jget "$OUT/$M-restart.json" "globals().get('fresh_ms', '(never)')") ms after the restart; not steered to before the load ended"
		fi
		wait "$LOADPID" || true; LOADPID=
		f=$OUT/$M-ops-kill.json
		s=$(jget "$f" scheduled); a=$(jget "$f" answered)
		echo "   run: $a of $s answered, $((s - a)) lost (requests in flight at the killed agent or steered to it before the mask)"
		echo "   answers per backend id: $(jget "$f" '" ".join("%d:%d" % (b["id"], b["answered"]) for b in backends)')"
		# recovery: a short run after the restart must reach the restarted agent
		wait_fresh "$AGENTS" || true
		load "$SVC:7788" "$T/hop.ini" "$M-ops-recovery" --requests 100
		rec=$(jget "$OUT/$M-ops-recovery.json" "sum(b['answered'] for b in backends if b['id'] == $VB)")
		echo "   recovery run (100 requests, rr): $rec answered by the restarted agent, $(jget "$OUT/$M-ops-recovery.json" answered) of 100 in all"
		[ "$rec" -gt 0 ] || fail "the restarted agent got nothing in the recovery run"
		check_all_answered "$M-ops-recovery"
		wait_fresh "$AGENTS" || true
	fi
	ctl --json stats > "$OUT/$M-final-stats.json" 2> /dev/null || true
	stop_dataplane
done

[ -n "$OUTDIR" ] && say "results in $OUT"
if [ "$FAILS" -gt 0 ]; then echo "cluster.sh: $FAILS failure(s)"; exit 1; fi
echo "cluster.sh: OK"
