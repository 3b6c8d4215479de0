#!/bin/sh
# late.sh PYTHON SRC SIM: scripts/cluster/late.py's knots (from qsteer-agent exit
# lines) are what qsteer-sim's report_late_us takes, and they follow the histogram:
# one agent run of 1,000 reports, 3 of them 12 ms late, must give a 0.995 knot below
# 5 ms, a 0.998 knot in the late bucket and the top knot at the largest; a truncated
# line and a malformed one are left out, and said; the open-ended last bucket
# reaches the largest seen.
# No root, no network.
set -eu
PY=$1 SRC=$2 SIM=$3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
{
	echo "qsteer-agent: model executor, fixed batching, listening on x, reporting to 1 dataplane(s)"
	echo "qsteer-agent: report lateness us: 0:900 50:80 100:17 12000:3 max 12040"
	echo "qsteer-agent: report lateness us: 0:500 50:"
	echo "qsteer-agent: report lateness us: 0:500 x:3 max 40"
} > "$T/agent0.log"
echo "qsteer-agent: report lateness us: 0:1000 max 40" > "$T/agent1.log"
# agent1's line is before its mode began (line 1 on): only agent0's first line counts
"$PY" "$SRC/scripts/cluster/late.py" "$T/agent0.log:0" "$T/agent1.log:1" > "$T/out" 2> "$T/err"
knots=$(head -1 "$T/out")
echo "knots: $knots"
echo "summary: $(sed -n 2p "$T/out")"
grep -q "truncated" "$T/err" || fail "the truncated line was not said"
grep -q "malformed" "$T/err" || fail "the malformed line was not said"
sed -n 2p "$T/out" | grep -q "^1000 reports from 1 agent runs" || fail "counts: $(sed -n 2p "$T/out")"
echo "$knots" | tr ',' '\n' > "$T/k"
q995=$(grep '^0.995:' "$T/k" | cut -d: -f2)
q998=$(grep '^0.998:' "$T/k" | cut -d: -f2)
top=$(grep '^1:' "$T/k" | cut -d: -f2)
[ "$q995" -lt 5000 ] || fail "the 0.995 knot is $q995 us (997 of 1,000 reports are on time)"
[ "$q998" -ge 12000 ] || fail "the 0.998 knot is $q998 us (3 of 1,000 are 12 ms late)"
[ "$top" = 12040 ] || fail "the top knot is $top us, not the largest seen (12040)"
# the simulator takes them
sed -e "s/^\[scenario\]\$/[scenario]\nreport_late_us = $knots/" -e "s/^requests = .*/requests = 500/" \
	"$SRC/sim/scenarios/static.ini" > "$T/s.ini"
QSTEER_SCENARIO_DIR=$SRC/sim/scenarios "$SIM" run --scenario "$T/s.ini" --router rr \
	--seed 1 > "$T/sim" 2>&1 || { cat "$T/sim"; fail "qsteer-sim refused the knots"; }
# the agent's last bucket is open-ended: its knots run up to the largest seen
echo "qsteer-agent: report lateness us: 0:10 49950:10 max 80000" > "$T/agent2.log"
"$PY" "$SRC/scripts/cluster/late.py" "$T/agent2.log:0" | head -1 | tr ',' '\n' > "$T/k2"
q9=$(grep '^0.9:' "$T/k2" | cut -d: -f2)
[ "$q9" -gt 50000 ] || fail "the 0.9 knot is $q9 us, inside a bucket that reaches 80000"
# nothing measured: an empty first line, which cluster.sh --ci refuses
"$PY" "$SRC/scripts/cluster/late.py" "$T/agent1.log:1" > "$T/none"
[ -z "$(head -1 "$T/none")" ] || fail "knots from no measurement"
echo "late.py: OK"
