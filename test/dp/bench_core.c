/*
 * bench_core.c - qsteer-dp's benchmark workload without DPDK, for instruction
 * counts: the same frames as `qsteer-dp --bench` (qs_dp_bench_workload) through
 * qs_dp_process, N packets in bursts, so that
 *
 *   valgrind --tool=callgrind --toggle-collect=bench_loop \
 *     qsteer-test-dp-bench-core CONFIG POLICY.q8 requests|continuations N [KERNEL]
 *
 * gives instructions per packet (total Ir / N) independent of machine load. Under
 * valgrind there is no AVX-512: pass avx2 or scalar (auto resolves to what the CPU
 * valgrind emulates offers). It also prints wall-clock Mpps when run natively.
 * usage: qsteer-test-dp-bench-core CONFIG POLICY.q8 KIND N [KERNEL] [BURST]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qsteer/clock.h"
#include "qsteer/dp_core.h"

enum { NPKT = 4096 };
static uint8_t frames[NPKT][QS_DP_BENCH_FRAME];
static uint32_t lens[NPKT];

/* the measured loop: callgrind --toggle-collect=bench_loop */
__attribute__((noinline)) uint64_t bench_loop(struct qs_dp_worker *w, struct qs_dp_shared *s,
					      const struct qs_dp_policy_set *set, uint64_t npk,
					      uint32_t burst, uint64_t now);
__attribute__((noinline)) uint64_t
bench_loop(struct qs_dp_worker *w, struct qs_dp_shared *s, const struct qs_dp_policy_set *set,
	   uint64_t npk, uint32_t burst, uint64_t now)
{
	uint8_t *bufs[QS_DP_BURST];
	uint64_t n = 0;
	uint32_t i = 0, k;

	while (n < npk) {
		for (k = 0; k < burst; k++)
			bufs[k] = frames[i + k];
		qs_dp_process(w, s, set, bufs, lens + i, burst, now);
		n += burst;
		i = i + 2u * burst > NPKT ? 0 : i + burst;
	}
	return n;
}

int
main(int argc, char **argv)
{
	static struct qs_dp_shared s;
	static struct qs_dp_worker w;
	struct qs_policy_load_opts lo = {QS_SCHEMA_ROUTER_V1, QS_Q8_KIND_SCORER, NULL};
	struct qs_dp_policy_set set;
	struct qs_dp_config cfg;
	enum qs_kernel k = QS_KERNEL_AUTO;
	uint32_t burst = QS_DP_BURST;
	uint64_t npk, n, t0, t1, now = 1000000000ull;
	char msg[512];
	bool cont;

	if (argc < 5) {
		fprintf(stderr,
			"usage: %s CONFIG POLICY.q8 requests|continuations N [KERNEL] [BURST]\n",
			argv[0]);
		return 2;
	}
	cont = strcmp(argv[3], "continuations") == 0;
	npk = strtoull(argv[4], NULL, 0);
	if (argc > 5 && qs_kernel_parse(argv[5], &k) != QS_OK) {
		fprintf(stderr, "unknown kernel %s\n", argv[5]);
		return 2;
	}
	if (argc > 6)
		burst = (uint32_t)atoi(argv[6]);
	if (burst < 1 || burst > QS_DP_BURST)
		return 2;
	qs_dp_config_defaults(&cfg);
	if (qs_dp_config_load(argv[1], &cfg, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "%s\n", msg);
		return 1;
	}
	memset(&set, 0, sizeof(set));
	if (qs_policy_load_file(argv[2], &lo, (struct qs_policy **)&set.active, msg, sizeof(msg)) !=
	    QS_OK) {
		fprintf(stderr, "%s\n", msg);
		return 1;
	}
	k = qs_kernel_resolve(k);
	qs_dp_shared_init(&s, &cfg);
	qs_dp_worker_init(&w, &s, k, 0);

	qs_dp_bench_workload(&w, &s, &set, frames, lens, NPKT, cont, now);
	memset(&w.ctr, 0, sizeof(w.ctr));
	t0 = qs_mono_ns();
	n = bench_loop(&w, &s, &set, npk, burst, now);
	t1 = qs_mono_ns();
	printf("{\"bench\":\"%s\",\"packets\":%" PRIu64 ",\"mpps\":%.3f,\"tx\":%" PRIu64
	       ",\"kernel\":\"%s\",\"burst\":%u,\"requests\":%" PRIu64 ",\"continuations\":%" PRIu64
	       "}\n",
	       argv[3], n, (double)n / ((double)(t1 - t0) / 1e9) / 1e6, w.ctr.tx, qs_kernel_name(k),
	       burst, w.ctr.requests, w.ctr.continuations);
	qs_policy_free((struct qs_policy *)set.active);
	return w.ctr.tx == n ? 0 : 1;
}
