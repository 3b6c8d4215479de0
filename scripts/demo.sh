#!/usr/bin/env bash
# The main job: build qsteer, then on the bundled Azure LLM code trace (CC-BY 4.0, see
# data/traces/README.md) replayed on an 8-backend A100/H100 cluster at 70% load:
# fine-tune the shipped router policy briefly with PPO, quantize it to int8, and
# evaluate the .q8 file beside every baseline router on held-out seeds. Prints the
# table; writes the policy, the training log and PNG plots to out/demo/.
# Then the live part (docs/cluster.md): the new .q8 and sed, the strongest heuristic
# on this trace, steer the same arrivals through qsteer-dp to four live agents in
# network namespaces, and each live table is printed beside the simulator's
# prediction. It needs root and network namespaces; where it cannot run, it says
# why and the offline result stands.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
if [ -f build/build.ninja ]; then
	meson configure build -Dbuildtype=release >/dev/null
else
	meson setup build -Dbuildtype=release >/dev/null
fi
ninja -C build >/dev/null
./build/trainer/qsteer-train demo --out-dir out/demo

echo
echo "== live: out/demo/policy.q8 and sed through qsteer-dp to 4 live agents"
rc=0
bash scripts/cluster.sh --build build --mode dp --scenario trace --rate 8 --requests 200 \
	--routers "q8 sed" --policy out/demo/policy.q8 --out out/demo/live || rc=$?
case $rc in
0) echo "live results: out/demo/live/ (docs/cluster.md explains the gap to the simulator)" ;;
77) echo "live part skipped: scripts/cluster.sh cannot run here (it needs root, network namespaces and qsteer-dp)" ;;
*) echo "live part failed (exit $rc): see out/demo/live/"; exit "$rc" ;;
esac
