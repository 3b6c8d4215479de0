#!/bin/sh
# agree.sh SRC BUILD: the simulator's `schedule = mixed` backend is the agent's
# scheduler (docs/sim.md). On the live cluster's own scenarios (scripts/cluster/
# trace.ini and chat.ini with cluster.sh's 2 x A100 + 2 x H100 backends), for each
# router, cluster-replay routes every request as the simulator's router does and runs
# both the simulated backends and libqsteer-agent's scheduler with the model executor
# in virtual time: every request's first token and completion must agree (1 us), none
# lost or rejected. Then the key's refusals. No root, no network, no timing.
set -eu
SRC=$1 BUILD=$2
REPLAY=$BUILD/test/cluster/cluster-replay SIM=$BUILD/sim/qsteer-sim
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export QSTEER_SCENARIO_DIR=$SRC/sim/scenarios
scen() { # NAME RATE REQUESTS: the template as cluster.sh writes it
	sed -e "s|@TRACE@|$SRC/data/traces/azure_llm_2023_code.csv|" -e "s/@RATE@/$2/" \
	    -e "s/@REQUESTS@/$3/" "$SRC/scripts/cluster/$1.ini" > "$T/$1.ini"
	printf '\n[backend.a100]\nprofile = a100-80gb-llama2-7b\ncount = 2\ncapacity = 100\nschedule = mixed\n' >> "$T/$1.ini"
	printf '\n[backend.h100]\nprofile = h100-80gb-llama2-7b\ncount = 2\ncapacity = 200\nschedule = mixed\n' >> "$T/$1.ini"
}
scen trace 8 300
scen chat 50 800
for s in trace chat; do
	for r in sed lor kv rr "q8:$SRC/policies/default-router.q8"; do
		if ! "$REPLAY" --scenario "$T/$s.ini" --router "$r" --check > "$T/out" 2>&1; then
			cat "$T/out"
			echo "FAIL: $s, $r: the simulator's mixed backend and the agent disagree"
			exit 1
		fi
		echo "$s ${r%%:*}: $(tail -1 "$T/out")"
	done
done
# KV pressure: long prompts and outputs on a small cache, so decodes preempt (by
# recompute) and readmissions and oversized prompts beside decodes are exercised
cat > "$T/preempt.ini" <<'INI'
[scenario]
name = cluster-preempt
[workload]
arrival = poisson
rate = 6
requests = 400
[class.long]
prompt_dist = uniform
prompt_min = 200
prompt_max = 7000
gen_dist = uniform
gen_min = 200
gen_max = 1100
[backend.a100]
profile = a100-80gb-llama2-7b
count = 2
capacity = 100
schedule = mixed
kv_blocks = 1200
INI
pre=$("$SIM" run --scenario "$T/preempt.ini" --router lor --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["preemptions"])')
[ "$pre" -gt 0 ] || { echo "FAIL: the KV-pressure scenario preempts nothing"; exit 1; }
for r in lor rr; do
	"$REPLAY" --scenario "$T/preempt.ini" --router $r --check > "$T/out" 2>&1 ||
		{ cat "$T/out"; echo "FAIL: KV pressure, $r: disagreement"; exit 1; }
	echo "KV pressure ($pre preemptions under lor) $r: $(tail -1 "$T/out")"
done
# Priority admission (include/qsteer/admit.h) in both: two priorities under the same
# KV pressure, a starvation bound, so priority preemptions, starved admissions and
# recompute preemptions all happen
{ sed -e 's/^rate = 6/rate = 7/' -e '/^\[class.long\]/a weight = 0.7\npriority = 0' \
	-e 's/^schedule = mixed/schedule = mixed\nadmission = priority\nstarve_ms = 3000/' \
	"$T/preempt.ini"
  printf '[class.urgent]\nweight = 0.3\npriority = 3\nprompt_dist = uniform\nprompt_min = 200\n'
  printf 'prompt_max = 3000\ngen_dist = uniform\ngen_min = 50\ngen_max = 400\n'
} > "$T/prio.ini"
for r in lor rr; do
	"$REPLAY" --scenario "$T/prio.ini" --router $r --check > "$T/out" 2>&1 ||
		{ cat "$T/out"; echo "FAIL: priority admission, $r: disagreement"; exit 1; }
	echo "priority admission $r: $(tail -1 "$T/out")"
done
# v0 is not the agent's schedule: the same check must see the difference
if "$REPLAY" --scenario "$T/trace.ini" --router sed --schedule vllm-v0 --check > /dev/null 2>&1; then
	echo "FAIL: vllm-v0 agrees with the agent request for request (the check checks nothing)"
	exit 1
fi
# refusals: a bad value, mixed with chunked prefill, two schedules in one cluster
bad() { # EXPECTED-MESSAGE-PART: the scenario in $T/bad.ini must be refused so
	if "$SIM" run --scenario "$T/bad.ini" --router rr > "$T/out" 2>&1 || ! grep -q "$1" "$T/out"; then
		cat "$T/out"; echo "FAIL: not refused with '$1'"; exit 1
	fi
}
head -n -12 "$T/chat.ini" > "$T/base.ini"
{ cat "$T/base.ini"; printf '[backend.a]\nprofile = a100-80gb-llama2-7b\nschedule = v1\n'; } > "$T/bad.ini"
bad "bad value 'v1' for key 'schedule'"
{ cat "$T/base.ini"; printf '[backend.a]\nprofile = h100-80gb-llama2-7b-chunked\nschedule = mixed\n'; } > "$T/bad.ini"
bad "schedule = mixed needs the batch model without chunked prefill"
{ cat "$T/base.ini"; printf '[backend.a]\nprofile = a100-80gb-llama2-7b\nschedule = mixed\n[backend.b]\nprofile = h100-80gb-llama2-7b\n'; } > "$T/bad.ini"
bad "schedule differs"
echo "cluster-agree: OK"
