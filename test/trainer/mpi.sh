#!/bin/sh
# qsteer-train --mpi (issue 14, scale): rollouts spread over 3 MPI ranks on this
# machine (8 environments: 3, 3 and 2 per rank) write the very .q8 one process
# writes with the same seed, and log the same updates (every column but the two
# timings), for PPO and for DQN. Registered only when meson found MPI.
exe=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
command -v mpirun > /dev/null || {
	echo "FAIL: built with MPI but mpirun is missing (Debian's openmpi-bin, scripts/deps.sh)" >&2
	exit 1
}
# Root in CI containers; every rank on this machine, so no ssh (Open MPI refuses to
# start without a remote agent unless one is named: /bin/false, never run here);
# shared memory only, no network; Open MPI's own allocations are not ours to
# leak-check under ASan.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_plm_rsh_agent=false
# Three rollouts (DQN: two updates after its warm-up); the export without QAT rounds
# and with the smallest calibration set, which keeps it to seconds under ASan.
args="--steps 6144 --seed 5 --threads 1 --qat-rounds 0 --calib-per-env 64"
fail=0
for algo in ppo dqn; do
	"$exe" train --scenario bandit --algo "$algo" $args \
		--out "$tmp/one-$algo.q8" --log "$tmp/one-$algo.csv" --quiet || {
		echo "FAIL: $algo, one process" >&2
		fail=1
		continue
	}
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 timeout 180 \
		mpirun --oversubscribe --mca btl self,vader -np 3 \
		"$exe" train --scenario bandit --algo "$algo" $args \
		--out "$tmp/mpi-$algo.q8" --log "$tmp/mpi-$algo.csv" --quiet --mpi || {
		echo "FAIL: $algo, mpirun -np 3 exited $?" >&2
		fail=1
		continue
	}
	if cmp "$tmp/one-$algo.q8" "$tmp/mpi-$algo.q8"; then
		echo "$algo: one process and 3 ranks wrote the same .q8 ($(wc -c < "$tmp/one-$algo.q8") bytes)"
	else
		echo "FAIL: $algo: the .q8 differs between one process and 3 ranks" >&2
		fail=1
	fi
	cut -d, -f1,2,4-11,13 "$tmp/one-$algo.csv" > "$tmp/one.cols"
	cut -d, -f1,2,4-11,13 "$tmp/mpi-$algo.csv" > "$tmp/mpi.cols"
	if cmp -s "$tmp/one.cols" "$tmp/mpi.cols" && [ "$(wc -l < "$tmp/one.cols")" -gt 2 ]; then
		echo "$algo: the same $(($(wc -l < "$tmp/one.cols") - 1)) updates logged"
	else
		echo "FAIL: $algo: the logs differ (timings aside)" >&2
		diff "$tmp/one.cols" "$tmp/mpi.cols" | head -5 >&2
		fail=1
	fi
done
exit $fail
