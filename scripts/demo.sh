#!/usr/bin/env bash
# The main job: build qsteer, then show the int8 policy runtime at work on this CPU --
# every kernel level benchmarked side by side on the router scorer shape.
# (The simulator's baseline comparison on the bundled Azure trace joins here when
# sim/ lands; see README.md.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
if [ -f build/build.ninja ]; then
	meson configure build -Dbuildtype=release >/dev/null
else
	meson setup build -Dbuildtype=release >/dev/null
fi
ninja -C build >/dev/null
./build/policy_int8/qsteer-policy bench
