#!/usr/bin/env bash
# fair-share.sh [BUILD] [SEEDS] - tenant fair share on the adversarial scenario
# (issue 15; include/qsteer/admit.h; docs/sim.md "Admission"). Runs qsteer-sim on
# adversarial.ini with every backend's admission set to fcfs, priority and fair,
# twice: as shipped (the chat tenant at priority 2, the mega-prompt tenant at 0) and
# with both tenants at priority 0, where only fair share separates them. Prints, per
# admission and router (sed, kv), the mean over seeds 1..SEEDS (default 10) of SLO
# attainment, goodput and each tenant's SLO attainment and p99 TTFT.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
seeds=${2:-10}
sim=$build/sim/qsteer-sim
[ -x "$sim" ] || { echo "fair-share.sh: $sim not built" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for adm in fcfs priority fair; do
	sed "/^profile = /a admission = $adm" sim/scenarios/adversarial.ini > "$tmp/shipped-$adm.ini"
	sed 's/^priority = 2$/priority = 0/' "$tmp/shipped-$adm.ini" > "$tmp/one-priority-$adm.ini"
done
for variant in shipped one-priority; do
	if [ "$variant" = shipped ]; then what="as shipped (chat priority 2, mega-prompts 0)"; else what="both tenants at priority 0"; fi
	echo "adversarial, $what; mean over seeds 1..$seeds"
	printf '%-9s %-6s %8s %8s | %-22s | %-22s\n' admission router SLO goodput \
		"tenant 0 (chat) SLO/p99" "tenant 1 (mega) SLO/p99"
	for adm in fcfs priority fair; do
		for r in sed kv; do
			for seed in $(seq 1 "$seeds"); do
				"$sim" run --scenario "$tmp/$variant-$adm.ini" --router "$r" --seed "$seed"
			done | awk -v a="$adm" -v r="$r" '
				/^SLO/ { slo += $2; n++ }
				/^goodput/ { gp += $2 }
				/^tenant/ { t = $2 == "0:" ? 0 : 1; s[t] += $6; p[t] += $10 }
				END { printf "%-9s %-6s %8.4f %8.3f | %.4f / %7.0f ms     | %.4f / %7.0f ms\n",
					a, r, slo / n, gp / n, s[0] / n, p[0] / n, s[1] / n, p[1] / n }'
		done
	done
	echo
done
