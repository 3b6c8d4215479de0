#!/usr/bin/env bash
# The main job: build qsteer, then on the bundled Azure LLM code trace (CC-BY 4.0, see
# data/traces/README.md) replayed on an 8-backend A100/H100 cluster at 70% load:
# fine-tune the shipped router policy briefly with PPO, quantize it to int8, and
# evaluate the .q8 file beside every baseline router on held-out seeds. Prints the
# table; writes the policy, the training log and PNG plots to out/demo/.
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
