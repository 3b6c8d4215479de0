#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this):
#   1. release build (gcc), every meson test;
#   2. the same suite built with ASan + UBSan;
#   3. the libFuzzer targets (clang), each for a bounded time from its seed corpus;
#   4. the aarch64 cross build under qemu-user (scripts/test-arm64.sh: the NEON SDOT
#      kernel, policy / rc / sim / dp-core suites; about 3 minutes, docs/arm.md).
# Always ends with one line "N passed, N failed, N skipped" summed over the runs that
# happened; a step that breaks before its tests run (packages, configure, build)
# counts as one failure, so a broken build can never look green or print nothing.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

# Sanitizer findings must fail the test that triggered them, not just print.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}

status=0
broken=0
logs=()

summary() {
	if [ ! -x /usr/bin/python3 ]; then
		echo "0 passed, $((broken > 0 ? broken : 1)) failed, 0 skipped"
		return 1
	fi
	/usr/bin/python3 - "$broken" "${logs[@]}" <<'PY'
import json, sys
passed = skipped = 0
failed = int(sys.argv[1])
bad = []
for path in sys.argv[2:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        failed += 1
        print(f"missing test log {path}")
        continue
    for line in lines:
        t = json.loads(line)
        r = t.get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
            bad.append((path.split("/meson-logs")[0], t))
# What failed, again at the end: CI keeps only the output's tail, and the
# error logs printed during the run are far above it.
for build, t in bad:
    out = ((t.get("stdout") or "") + (t.get("stderr") or "")).rstrip().splitlines()
    print(f"== FAILED in {build}: {t.get('name')} ({t.get('result')}, "
          f"{t.get('duration', 0):.1f} s); its last lines:")
    for l in out[-25:]:
        print("   " + l[:300])
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY
}
trap 'summary || status=1; exit $status' EXIT

# step NAME CMD...: run a step that must succeed for the suite to mean anything.
step() {
	local name=$1
	shift
	if ! "$@"; then
		echo "test.sh: $name failed" >&2
		broken=$((broken + 1))
		status=1
		return 1
	fi
}

# configure DIR [meson options...]: set up once, reconfigure later runs in place.
configure() {
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson configure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
}

# A test's timeout guards against a hang; it must not turn a busy machine into a
# failure (a sanitizer build on two shared cores runs the trainer tests several
# times slower), so every timeout is stretched.
TIMEOUT_MULT=${QS_TIMEOUT_MULTIPLIER:-4}

run_suite() {
	local dir=$1
	shift
	echo "== meson test -C $dir --timeout-multiplier $TIMEOUT_MULT $*"
	meson test -C "$dir" --print-errorlogs --timeout-multiplier "$TIMEOUT_MULT" "$@" || status=1
	logs+=("$dir/meson-logs/testlog.json")
}

step "installing packages (scripts/deps.sh)" bash scripts/deps.sh || exit

if step "configuring build/" configure build -Dbuildtype=release &&
	step "building build/" ninja -C build; then
	run_suite build
fi

if step "configuring build-asan/" configure build-asan -Dbuildtype=debugoptimized \
	-Db_sanitize=address,undefined -Db_lundef=false &&
	step "building build-asan/" ninja -C build-asan; then
	run_suite build-asan
fi

if command -v clang >/dev/null; then
	if { [ -f build-fuzz/build.ninja ] ||
		step "configuring build-fuzz/" env CC=clang meson setup build-fuzz \
			-Dbuildtype=debugoptimized -Dfuzz=true >/dev/null; } &&
		step "building build-fuzz/" ninja -C build-fuzz; then
		run_suite build-fuzz --suite fuzz
	fi
fi

# The script installs its cross packages itself; if it cannot (apt, configure, build:
# exit 2) that is one failure, never a silent skip. Exit 1 means its tests ran and
# some failed, which its testlog counts.
bash scripts/test-arm64.sh build-arm64
case $? in
0) logs+=("build-arm64/meson-logs/testlog.json") ;;
1)
	status=1
	logs+=("build-arm64/meson-logs/testlog.json")
	;;
*)
	echo "test.sh: the arm64 cross build (scripts/test-arm64.sh) failed" >&2
	broken=$((broken + 1))
	status=1
	;;
esac
exit "$status"
