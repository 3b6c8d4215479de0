#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this):
#   1. release build (gcc), every meson test;
#   2. the same suite built with ASan + UBSan;
#   3. the libFuzzer targets (clang), each for a bounded time from its seed corpus.
# Ends with one line "N passed, N failed, N skipped" summed over the three runs.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
bash scripts/deps.sh || exit 1

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

# Sanitizer findings must fail the test that triggered them, not just print.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}

status=0
logs=()
run_suite() {
	local dir=$1
	shift
	echo "== meson test -C $dir $*"
	meson test -C "$dir" --print-errorlogs "$@" || status=1
	logs+=("$dir/meson-logs/testlog.json")
}

configure build -Dbuildtype=release || exit 1
ninja -C build || exit 1
run_suite build

configure build-asan -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false ||
	exit 1
ninja -C build-asan || exit 1
run_suite build-asan

if command -v clang >/dev/null; then
	if [ ! -f build-fuzz/build.ninja ]; then
		CC=clang meson setup build-fuzz -Dbuildtype=debugoptimized -Dfuzz=true >/dev/null ||
			exit 1
	fi
	ninja -C build-fuzz || exit 1
	run_suite build-fuzz --suite fuzz
fi

/usr/bin/python3 - "${logs[@]}" <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        failed += 1
        print(f"missing test log {path}")
        continue
    for line in lines:
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY
py=$?
[ "$py" -ne 0 ] && status=1
exit "$status"
