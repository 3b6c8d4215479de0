#!/usr/bin/env bash
# qsteer-policy bench --policy FILE: the shipped router is benchmarked in its own
# shape (not the generated test shape), and a file it cannot score is refused with
# its name. Checks the output's shape, never its speed.
# usage: bench_file.sh QSTEER_POLICY SOURCE_ROOT
set -u
POL=$1 ROOT=$2
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
out=$("$POL" bench --seconds 0.01 --kernel scalar --json \
	--policy "$ROOT/policies/default-router.q8") || fail "bench --policy exited $?"
grep -q '"shape": "16-64-64-1"' <<<"$out" || fail "shipped shape not reported: $out"
grep -q '"policy": "qsteer-router"' <<<"$out" || fail "policy name not reported: $out"
grep -q '"candidates": 8, "batch": 32' <<<"$out" || fail "8x32 cell missing: $out"
out=$("$POL" bench --seconds 0.01 --kernel scalar --json) || fail "bench exited $?"
grep -q '"shape": "16-32-16-1"' <<<"$out" || fail "test shape not reported: $out"
err=$("$POL" bench --seconds 0.01 --policy "$ROOT/policies/default-batch.q8" 2>&1) &&
	fail "a classifier was benchmarked"
grep -q "default-batch.q8.*classifier" <<<"$err" || fail "refusal does not say why: $err"
err=$("$POL" bench --policy /nonexistent.q8 2>&1) && fail "a missing file was accepted"
grep -q "/nonexistent.q8" <<<"$err" || fail "refusal does not name the file: $err"
echo "ok"
