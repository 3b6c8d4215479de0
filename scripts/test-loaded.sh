#!/usr/bin/env bash
# test-loaded.sh [RUNS] - the whole suite (scripts/test.sh) RUNS times in a row
# (default 5) while stress-ng keeps every core busy, as a shared CI machine is: the
# check that no test depends on how fast something else finishes. Prints one line
# per run and ends with "N passed, N failed" over the runs (a run passes when
# scripts/test.sh does). Not part of CI: five full runs take well over an hour.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
runs=${1:-5}
if ! command -v stress-ng > /dev/null; then
	[ "$(id -u)" = 0 ] || { echo "test-loaded.sh: stress-ng missing (run as root)" >&2; exit 2; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stress-ng > /dev/null ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stress-ng > /dev/null; } ||
		{ echo "test-loaded.sh: cannot install stress-ng" >&2; exit 2; }
fi
mkdir -p build-loaded-logs
ok=0 bad=0
for i in $(seq 1 "$runs"); do
	stress-ng --cpu "$(nproc)" --timeout 7200 > /dev/null 2>&1 &
	sp=$!
	t0=$(date +%s)
	bash scripts/test.sh > "build-loaded-logs/run-$i.log" 2>&1
	rc=$?
	kill "$sp" 2> /dev/null
	wait "$sp" 2> /dev/null
	echo "run $i: exit $rc in $(($(date +%s) - t0)) s: $(tail -1 "build-loaded-logs/run-$i.log")"
	if [ $rc = 0 ]; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
done
echo "$ok passed, $bad failed"
[ $bad = 0 ]
