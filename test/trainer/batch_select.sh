#!/bin/sh
# qsteer-train batch train --select-every: every candidate's validation score is
# printed, and the run ends on the best of them (the untrained net included), which
# the "selected:" line names. The scores are parsed back and the maximum checked.
exe=$1
out=${TMPDIR:-/tmp}/qs-batch-select.$$
trap 'rm -f "$out".q8 "$out".err' EXIT INT TERM
"$exe" batch train --out "$out".q8 --iters 3 --episodes 2 --requests 60 --seeds 1 \
	--scenario static,adversarial --select-every 1 --select-seeds 1 \
	>"$out".out 2>"$out".err || {
	echo "FAIL: train exited $?" >&2
	cat "$out".err "$out".out >&2
	rm -f "$out".out
	exit 1
}
tr '\r' '\n' <"$out".err | grep "^batch: select:" >"$out".sel
sel=$(grep "^selected:" "$out".out)
rm -f "$out".out
echo "$sel"
cat "$out".sel
n=$(wc -l <"$out".sel)
# candidates 0 (untrained), 1, 2, 3
if [ "$n" -ne 4 ]; then
	echo "FAIL: $n candidates scored, want 4" >&2
	rm -f "$out".sel
	exit 1
fi
best=$(awk '{ v = $8; sub(/%/, "", v); v += 0;
	if (NR == 1 || v > b) { b = v; it = $4 } } END { print it }' "$out".sel)
rm -f "$out".sel
case "$sel" in
"selected: the candidate of iteration $best "*) echo "kept the best: iteration $best" ;;
*)
	echo "FAIL: best candidate is iteration $best, but: $sel" >&2
	exit 1
	;;
esac
[ -s "$out".q8 ] || {
	echo "FAIL: no policy written" >&2
	exit 1
}
