#!/bin/sh
# no_sim.sh QSTEER_AGENT LIBQSTEER_SIM_A - the serving agent does not link the
# simulator (issue 19): no function libqsteer-sim defines is defined in qsteer-agent,
# while qsteer-agent-bench, beside it, has them; and `qsteer-agent bench` where
# qsteer-agent-bench is missing says where it looked and exits 127.
set -eu
AG=$1 SIMLIB=$2
fail() { echo "FAIL: $*"; exit 1; }
command -v nm > /dev/null || { echo "SKIP: nm (binutils) is not installed"; exit 77; }
T=$(mktemp -d /tmp/qsteer-nosim.XXXXXX)
trap 'rm -rf "$T"' EXIT

nm --defined-only "$SIMLIB" 2> /dev/null | awk '$2 == "T" { print $3 }' | sort -u > "$T/sim"
[ -s "$T/sim" ] || fail "no functions read from $SIMLIB"
nm --defined-only "$AG" | awk '$2 == "T" { print $3 }' | sort -u > "$T/agent"
nm --defined-only "$(dirname "$AG")/qsteer-agent-bench" | awk '$2 == "T" { print $3 }' |
	sort -u > "$T/bench"
both=$(comm -12 "$T/sim" "$T/agent")
[ -z "$both" ] || fail "qsteer-agent links the simulator: $(echo "$both" | head -5 | tr '\n' ' ')"
# the check can fail: the bench program does carry the simulator
[ -n "$(comm -12 "$T/sim" "$T/bench")" ] || fail "qsteer-agent-bench has none of $SIMLIB's functions"
echo "qsteer-agent: 0 of $(wc -l < "$T/sim") simulator functions; qsteer-agent-bench:" \
	"$(comm -12 "$T/sim" "$T/bench" | wc -l)"

cp "$AG" "$T/qsteer-agent"
rc=0
"$T/qsteer-agent" bench --scenario static > "$T/out" 2>&1 || rc=$?
[ "$rc" = 127 ] || fail "bench without qsteer-agent-bench: exit $rc, not 127: $(cat "$T/out")"
grep -q "$T/qsteer-agent-bench: No such file or directory" "$T/out" ||
	fail "bench without qsteer-agent-bench: $(cat "$T/out")"
echo "PASS: qsteer-agent bench without qsteer-agent-bench: $(cat "$T/out")"
