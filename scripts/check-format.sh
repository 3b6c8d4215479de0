#!/usr/bin/env bash
# check-format.sh - fails when a C source or header differs from what clang-format
# makes of it with the repository's .clang-format, and names each file. The CUDA
# sources (*.cu) are left out: no machine that runs this check can compile them, so
# a formatter change there could not be proven harmless. To fix: scripts/check-format.sh --fix
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
cf=${CLANG_FORMAT:-clang-format}
command -v "$cf" > /dev/null || { echo "check-format.sh: $cf not found (scripts/deps.sh installs it)" >&2; exit 2; }
if [ -d .git ] && command -v git > /dev/null; then
	mapfile -t files < <(git ls-files '*.c' '*.h')
else
	mapfile -t files < <(find . -path ./build\* -prune -o \( -name '*.c' -o -name '*.h' \) -print | sort)
fi
[ "${#files[@]}" -gt 0 ] || { echo "check-format.sh: no C files found" >&2; exit 2; }
if [ "${1:-}" = --fix ]; then
	exec "$cf" -i "${files[@]}"
fi
bad=0
for f in "${files[@]}"; do
	if ! "$cf" --dry-run -Werror "$f" > /dev/null 2>&1; then
		echo "not formatted: $f"
		bad=$((bad + 1))
	fi
done
echo "check-format.sh: ${#files[@]} files, $bad not formatted"
[ $bad = 0 ]
