#!/bin/sh
# qsteer-train refuses malformed options (export, algorithm, scenario list) with exit
# status 2 and a message naming the option, before any training runs.
exe=$1
fail=0
refuse() {
	want=$1
	shift
	err=$("$exe" "$@" 2>&1 >/dev/null)
	rc=$?
	if [ $rc -ne 2 ] || ! echo "$err" | grep -q -- "$want"; then
		echo "FAIL: qsteer-train $* -> status $rc, message: $err (wanted 2 and '$want')" >&2
		fail=1
	else
		echo "refused: $* -> $err"
	fi
}
refuse "3 values for a net with 2 hidden layers" \
	train --scenario bandit --steps 4096 --out /dev/null --split 2,2,2
refuse "3 values for a net with 2 hidden layers" \
	train --scenario bandit --steps 4096 --out /dev/null --split-width 64,64,64
refuse "--split 2,: one value per hidden layer" \
	train --scenario bandit --out /dev/null --split 2,
refuse "--split 9: one value per hidden layer" \
	train --scenario bandit --out /dev/null --split 9
refuse "--split-width 300: one value per hidden layer" \
	train --scenario bandit --out /dev/null --split-width 300
refuse "--algo dqm: ppo, reinforce, a2c or dqn" train --scenario bandit --out /dev/null --algo dqm
refuse "--eps-end" train --scenario bandit --out /dev/null --algo dqn --eps-end 1.5
refuse "--dqn-steps" train --scenario bandit --out /dev/null --algo dqn --dqn-steps 0
# validation selection runs the scenarios in the simulator: the bandit is not one
refuse "--select-every.*simulator" train --scenario bandit --out /dev/null --select-every 2048
refuse "--select-seeds" train --scenario bandit --out /dev/null --select-every 2048 --select-seeds 0
refuse "--reward-tpot" train --scenario bandit --out /dev/null --reward-tpot 17
refuse "--teacher-ties lowest: index or load" train --scenario bandit --out /dev/null --teacher-ties lowest
s=bandit
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do s="$s,bandit"; done
refuse "17 scenarios, at most 16" train --scenario "$s" --out /dev/null
# the batching trainer: scenario lists and the agent's profile
refuse "'steady' is not static, bursty, adversarial, long-context or all" \
	batch eval /dev/null --scenario static,steady
refuse "a comma list of scenario names" batch eval /dev/null --scenario static,
refuse "--select-every applies to train only" batch eval /dev/null --select-every 5
refuse "--select-seeds needs --select-every" batch train --out /tmp/x.q8 --select-seeds 2
refuse "--select-seeds" batch train --out /tmp/x.q8 --select-every 5 --select-seeds 0
refuse "--profile /nonexistent.ini: No such file" \
	batch train --out /tmp/x.q8 --profile /nonexistent.ini
printf '[profile]\nname = p\nspec_max_depth = 12\n' > "${TMPDIR:-/tmp}/qs-cli-spec.ini"
refuse "spec_max_depth 12 > 8" \
	batch eval /dev/null --profile "${TMPDIR:-/tmp}/qs-cli-spec.ini"
rm -f "${TMPDIR:-/tmp}/qs-cli-spec.ini"
exit $fail
