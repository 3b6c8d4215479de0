#!/usr/bin/env bash
# Instructions per routing decision of the aarch64 kernels, counted under qemu-user
# (docs/arm.md): qemu translates one guest instruction per block (-singlestep) and
# logs every block it executes (-d exec,nochain), so the log's lines are the guest
# instructions executed. policy-icount runs ITERS bursts of 32 requests x 8
# candidates through qs_policy_choose; the count at ITERS minus the count at 0
# (start-up, loading) over ITERS x 32 is instructions per decision: kernel plus
# choose's argmax. These are instruction counts, not time: qemu says nothing about
# cycles, and no wall-time figure here comes from it.
#
#   scripts/arm64-icount.sh [BUILD_DIR] [ITERS]     (build-arm64, 4)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-arm64}
iters=${2:-4}
exe=$dir/test/policy/policy-icount
[ -x "$exe" ] || { echo "arm64-icount.sh: build $dir first (scripts/test-arm64.sh)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
qemu-aarch64 "$dir/test/dp/qsteer-test-mkpolicy" 1 "$tmp/test.q8" icount

count() { # KERNEL FILE ITERS -> executed guest instructions
	qemu-aarch64 -singlestep -d exec,nochain -D /dev/stderr "$exe" "$@" 2>&1 >/dev/null |
		grep -c '^Trace'
}

echo "shape                      kernel   instructions/decision  (qemu-aarch64 $(qemu-aarch64 --version | head -1 | awk '{print $3}'), ITERS=$iters)"
for pol in "test 16-32-16-1:$tmp/test.q8" "shipped 16-64-64-1:policies/default-router.q8"; do
	name=${pol%%:*}
	file=${pol#*:}
	for k in scalar neon; do
		base=$(count "$k" "$file" 0)
		run=$(count "$k" "$file" "$iters")
		printf '%-26s %-8s %d\n' "$name" "$k" $(((run - base) / (iters * 32)))
	done
done
