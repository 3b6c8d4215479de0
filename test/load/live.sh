#!/bin/sh
# live.sh AGENT LOAD SCENARIO - qsteer-load against two live qsteer-agent processes
# (model executor, real time) on loopback only (127.0.0.1): a few hundred requests
# straight at agent 1, then a run with continuations (multi-packet requests) at
# agent 2. Requires every request answered, 0 malformed responses, answers from the
# right backend id and a sane table. No timing is asserted beyond generous bounds:
# the runs end when every answer is in (or the drain runs out, which fails the test).
# Every wait is bounded; the agents stop themselves after 200 s even if this script
# is killed, and the trap stops them and removes the temporary directory.
set -u
AGENT=$1
LOAD=$2
SCN=$3
T=$(mktemp -d /tmp/qsteer-load-live.XXXXXX) || exit 1
PIDS=""

cleanup() {
	for p in $PIDS; do
		kill "$p" 2>/dev/null
	done
	for p in $PIDS; do
		wait "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
	echo "FAIL: $*"
	for f in "$T"/*.log "$T"/*.out; do
		[ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }
	done
	exit 1
}

# A JSON number field from qsteer-load --json output.
field() {
	sed -n "s/.*\"$2\": \([0-9.eE+-]*\).*/\1/p" "$1" | head -n 1
}

# Two agents on ports nobody else uses; reports go to a port nobody listens on.
start_agents() {
	base=$1
	"$AGENT" --executor model --listen "127.0.0.1:$base" --backend-id 1 \
		--report-to "127.0.0.1:$((base + 2))" --report-interval-ms 50 --duration 200 \
		>"$T/agent1.log" 2>&1 &
	A1=$!
	"$AGENT" --executor model --listen "127.0.0.1:$((base + 1))" --backend-id 2 \
		--report-to "127.0.0.1:$((base + 2))" --report-interval-ms 50 --duration 200 \
		>"$T/agent2.log" 2>&1 &
	A2=$!
	PIDS="$PIDS $A1 $A2"
}

# Up to 10 one-request probes per agent: it answers once it has bound its port.
probe() {
	i=0
	while [ $i -lt 10 ]; do
		if "$LOAD" --target "127.0.0.1:$1" --scenario "$SCN" --requests 1 --clients 1 \
			--drain-ms 1000 --require-all --json >"$T/probe.out" 2>&1; then
			return 0
		fi
		i=$((i + 1))
		sleep 0.5
	done
	return 1
}

tries=0
ready=0
while [ $tries -lt 5 ] && [ $ready -eq 0 ]; do
	BASE=$((20000 + ($$ * 7 + tries * 997) % 30000))
	start_agents "$BASE"
	if probe "$BASE" && probe "$((BASE + 1))"; then
		ready=1
	else
		kill "$A1" "$A2" 2>/dev/null
		wait "$A1" "$A2" 2>/dev/null
		PIDS=""
	fi
	tries=$((tries + 1))
done
[ $ready -eq 1 ] || fail "the agents did not answer a probe (ports $BASE, $((BASE + 1)))"
P1=$BASE
P2=$((BASE + 1))

# 1. 300 requests from the scenario at 40 req/s straight at agent 1.
"$LOAD" --target "127.0.0.1:$P1" --scenario "$SCN" --rate 40 --requests 300 --seed 3 \
	--clients 8 --drain-ms 30000 --require-all --json --out "$T/run1.csv" \
	>"$T/run1.out" 2>"$T/run1.log" || fail "run 1: qsteer-load exited $?"
[ "$(field "$T/run1.out" scheduled)" = 300 ] || fail "run 1: not 300 scheduled"
[ "$(field "$T/run1.out" answered)" = 300 ] || fail "run 1: not every request answered"
[ "$(field "$T/run1.out" malformed)" = 0 ] || fail "run 1: malformed responses"
[ "$(field "$T/run1.out" timed_out)" = 0 ] || fail "run 1: timed out requests"
grep -q '"backends": \[{"id": 1, "answered": 300, "rejected": 0}\]' "$T/run1.out" ||
	fail "run 1: answers not all from backend 1"
# a sane table: positive latencies in order, TPOT below E2E, attainment in [0, 1]
awk -v p50="$(field "$T/run1.out" ttft_p50_ms)" -v p99="$(field "$T/run1.out" ttft_p99_ms)" \
	-v e2e="$(field "$T/run1.out" e2e_p99_ms)" -v tpot="$(field "$T/run1.out" tpot_p99_ms)" \
	-v slo="$(field "$T/run1.out" slo_attainment)" -v gp="$(field "$T/run1.out" goodput_rps)" \
	'BEGIN { ok = p50 > 0 && p50 <= p99 && p99 <= e2e && tpot < e2e && slo >= 0 && \
		slo <= 1 && gp > 0 && p99 < 60000; exit !ok }' ||
	fail "run 1: the table is not sane"
[ "$(wc -l <"$T/run1.csv")" -eq 301 ] || fail "run 1: the CSV does not have 300 rows"
[ "$(grep -c ',answered,1,' "$T/run1.csv")" -eq 300 ] || fail "run 1: CSV outcomes"

# 2. 100 requests at agent 2 with payload: up to 512 tokens x 8 bytes in 512-byte
# datagrams, so most requests take several packets (type-2 continuations).
"$LOAD" --target "127.0.0.1:$P2" --scenario "$SCN" --rate 40 --requests 100 --seed 4 \
	--clients 4 --bytes-per-token 8 --max-datagram 512 --drain-ms 30000 --require-all \
	--label agent2 >"$T/run2.out" 2>"$T/run2.log" || fail "run 2: qsteer-load exited $?"
grep -q '^outcomes    100 sent: 100 answered, 0 rejected, 0 timed out, 0 send failed' \
	"$T/run2.out" || fail "run 2: not every request answered"
grep -q '^backends    2: 100 answered$' "$T/run2.out" || fail "run 2: backend ids"
grep -q 'ttft_p50_ms' "$T/run2.out" && grep -q '^agent2' "$T/run2.out" ||
	fail "run 2: no compare table"
cat "$T/run2.out"
echo "PASS: 300 + 100 requests answered by 2 live agents, 0 malformed"
exit 0
