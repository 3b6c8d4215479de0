#!/usr/bin/env bash
# The main job: build qsteer, then replay the bundled Azure LLM code trace (CC-BY 4.0,
# see data/traces/README.md) on an 8-backend A100/H100 cluster at 70% load and compare
# every baseline router side by side over 5 seeds (mean and 95% interval).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
if [ -f build/build.ninja ]; then
	meson configure build -Dbuildtype=release >/dev/null
else
	meson setup build -Dbuildtype=release >/dev/null
fi
ninja -C build >/dev/null
./build/sim/qsteer-sim compare --scenario azure-code-70 --seeds 5
