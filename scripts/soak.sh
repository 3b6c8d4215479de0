#!/usr/bin/env bash
# soak.sh - the long checks that are not CI tests (docs/soak.md):
#   swaps   >= 10,000 live policy swaps in qsteer-dp while traffic flows, then
#           qsteer-pcap check: every frame present and decided by exactly one of
#           the two policies (bursts of one packet, so a torn read would show as a
#           frame neither explains), every counter equal to the reference's; the
#           daemon's RSS sampled through the run must stay flat.
#   fuzz    libFuzzer: >= 10^8 packets through the dataplane parser and >= 10^7
#           policy files through the loader, 0 crashes.
# usage: scripts/soak.sh [swaps|fuzz|all] (as root; builds build/ and build-fuzz/)
# Environment: SWAPS (10000), PARSE_RUNS (100000000), Q8_RUNS (10000000).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
SWAPS=${SWAPS:-10000}
PARSE_RUNS=${PARSE_RUNS:-100000000}
Q8_RUNS=${Q8_RUNS:-10000000}
[ "$(id -u)" = 0 ] || { echo "soak.sh: run as root (DPDK)" >&2; exit 2; }
bash scripts/deps.sh

soak_swaps() {
	[ -f build/build.ninja ] || meson setup build -Dbuildtype=release > /dev/null
	ninja -C build > /dev/null
	local T DP PCAP CTL MKPOL CFG TRACE DPPID=
	T=$(mktemp -d /tmp/qsteer-soak.XXXXXX)
	DP=$PWD/build/dp/qsteer-dp PCAP=$PWD/build/tools/qsteer-pcap CTL=$PWD/build/tools/qsteerctl
	MKPOL=$PWD/build/test/dp/qsteer-test-mkpolicy CFG=$PWD/test/dp/replay.ini
	TRACE=$PWD/data/traces/azure_llm_2023_code.csv
	[ -x "$DP" ] || { echo "soak.sh: qsteer-dp was not built (DPDK missing?)" >&2; return 1; }
	# shellcheck disable=SC2317
	cleanup() { [ -n "$DPPID" ] && kill "$DPPID" 2> /dev/null; rm -rf "$T"; }
	trap cleanup EXIT
	fail() { echo "FAIL: $*"; tail -20 "$T/dp.log"; exit 1; }
	cd "$T"
	"$MKPOL" 1 a.q8 soak-a > /dev/null
	"$MKPOL" 2 b.q8 soak-b > /dev/null
	# four packets per swap at least, one packet per burst
	"$PCAP" gen --config "$CFG" --trace "$TRACE" --limit $((SWAPS * 2)) --speedup 200 \
		--seed 3 --malformed 400 --out in.pcap > /dev/null
	CTLS="$CTL --socket $T/dp.sock"
	# shellcheck source=../test/dp/lib.sh
	. "$OLDPWD/test/dp/lib.sh"
	NPKT=$(pcap_count in.pcap)
	[ "$NPKT" -ge $((SWAPS * 2)) ] || fail "$NPKT packets for $SWAPS swaps"
	start_dp soak "net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap" "$T/dp.sock" \
		--config "$CFG" --policy a.q8 --burst 1 --rx-hold --stats-out stats.json
	pid=$(pgrep -P "$DPPID" -x qsteer-dp || echo "$DPPID")
	rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
	local n t0 rss0 rss1 per=$(((NPKT - 200) / SWAPS))
	t0=$(date +%s)
	$CTLS rx allow 100 > /dev/null
	# One control connection for the whole soak (the protocol takes many lines per
	# connection): it measures the daemon, not process start-up. After each swap
	# `per` more bursts are allowed, not waited for: swaps and traffic overlap.
	/usr/bin/python3 - "$T/dp.sock" "$T/a.q8" "$T/b.q8" "$SWAPS" "$per" "$pid" > soak.txt <<'PY' ||
import json, socket, sys
path, a, b, swaps, per, pid = sys.argv[1:7]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
f = s.makefile("rw")
def ask(req):
    f.write(json.dumps(req) + "\n")
    f.flush()
    r = json.loads(f.readline())
    if not r.get("ok"):
        sys.exit(f"refused: {req}: {r}")
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
rss0 = None
for n in range(int(swaps)):
    ask({"cmd": "policy.load", "path": b if n % 2 == 0 else a, "mode": "active"})
    ask({"cmd": "rx", "op": "allow", "bursts": int(per)})
    if n == 1000:
        rss0 = rss()
print(rss0 if rss0 is not None else rss(), rss())
PY
		fail "the swap loop failed: $(cat soak.txt)"
	read -r rss0 rss1 < soak.txt
	n=$SWAPS
	swaps=$($CTLS --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["policy"]["swaps"])')
	run_out "$NPKT"
	stop_dp
	"$PCAP" check --burst 1 --in in.pcap --out out.pcap --config "$CFG" --policy a.q8 \
		--alt-policy b.q8 --stats stats.json > check.txt || { cat check.txt; fail "check"; }
	tail -3 check.txt
	echo "swaps: $swaps live swaps in $(($(date +%s) - t0)) s over $NPKT packets" \
		"(bursts of one); RSS after 1000 swaps ${rss0} kB, after $n ${rss1} kB"
	[ "$swaps" -ge "$SWAPS" ] || fail "only $swaps swaps"
	[ $((rss1 - rss0)) -le 1024 ] || fail "RSS grew by $((rss1 - rss0)) kB"
	cd "$OLDPWD"
	trap - EXIT
	cleanup
}

soak_fuzz() {
	if [ ! -f build-fuzz/build.ninja ]; then
		CC=clang meson setup build-fuzz -Dbuildtype=debugoptimized -Dfuzz=true > /dev/null
	fi
	ninja -C build-fuzz test/dp/fuzz-dp-parse test/fuzz/fuzz-q8-load > /dev/null
	local W
	W=$(mktemp -d /tmp/qsteer-fuzz.XXXXXX)
	cp -r test/dp/corpus "$W/parse"
	cp -r test/fuzz/corpus_q8 "$W/q8"
	local t0
	echo "== parser: $PARSE_RUNS runs"
	t0=$(date +%s)
	build-fuzz/test/dp/fuzz-dp-parse -runs="$PARSE_RUNS" -seed=1 -print_final_stats=1 \
		"$W/parse" 2>&1 | grep -E "stat::number_of_executed_units|stat::peak_rss_mb|ERROR"
	echo "parser: $(($(date +%s) - t0)) s wall, 0 crashes"
	echo "== policy loader: $Q8_RUNS runs"
	t0=$(date +%s)
	build-fuzz/test/fuzz/fuzz-q8-load -runs="$Q8_RUNS" -seed=1 -print_final_stats=1 \
		"$W/q8" 2>&1 | grep -E "stat::number_of_executed_units|stat::peak_rss_mb|ERROR"
	echo "loader: $(($(date +%s) - t0)) s wall, 0 crashes"
	rm -rf "$W"
}

case $what in
swaps) soak_swaps ;;
fuzz) soak_fuzz ;;
all) soak_swaps && soak_fuzz ;;
*) echo "usage: scripts/soak.sh [swaps|fuzz|all]" >&2; exit 2 ;;
esac
