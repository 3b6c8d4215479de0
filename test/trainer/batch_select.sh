#!/bin/sh
# qsteer-train batch train --select-every: every candidate's validation score is
# printed, and the run ends on the best of them (the untrained net included), which
# the "selected:" line names. The scores are parsed back and the kept one checked
# to be their maximum (compared as printed, so a tie in the last digit passes).
exe=$1
out=${TMPDIR:-/tmp}/qs-batch-select.$$
trap 'rm -f "$out".q8 "$out".err "$out".out "$out".sel' EXIT INT TERM
if ! "$exe" batch train --out "$out".q8 --iters 3 --episodes 2 --requests 60 --seeds 1 \
	--scenario static,adversarial --select-every 1 --select-seeds 1 \
	>"$out".out 2>"$out".err; then
	echo "FAIL: train failed" >&2
	cat "$out".err "$out".out >&2
	exit 1
fi
tr '\r' '\n' <"$out".err | grep "^batch: select:" >"$out".sel
sel=$(grep "^selected:" "$out".out)
echo "$sel"
cat "$out".sel
n=$(wc -l <"$out".sel)
# candidates 0 (untrained), 1, 2, 3
if [ "$n" -ne 4 ]; then
	echo "FAIL: $n candidates scored, want 4" >&2
	exit 1
fi
best=$(awk '{ v = $8; sub(/%/, "", v); v += 0; if (NR == 1 || v > b) b = v }
	END { printf "%+.2f", b }' "$out".sel)
kept_it=$(echo "$sel" | sed -n 's/^selected: the candidate of iteration \([0-9]*\) .*/\1/p')
kept=$(echo "$sel" | sed -n 's/.*validation streams \([-+][0-9.]*\)%.*/\1/p')
printed=$(awk -v it="$kept_it" '$4 == it { v = $8; sub(/%/, "", v); print v }' "$out".sel)
if [ -z "$kept_it" ] || [ "$kept" != "$best" ] || [ "$printed" != "$best" ]; then
	echo "FAIL: kept iteration '$kept_it' scored '$kept' ('$printed' when offered), best $best" >&2
	exit 1
fi
echo "kept the best: iteration $kept_it, $kept%"
[ -s "$out".q8 ] || {
	echo "FAIL: no policy written" >&2
	exit 1
}
