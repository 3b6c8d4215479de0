/*
 * bench_core.c - qsteer-dp's benchmark workload without DPDK, for instruction
 * counts: the same frames as `qsteer-dp --bench` (dp/main.c run_bench) through
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

#include "qsteer/dp_core.h"

enum { NPKT = 4096 };
static uint8_t frames[NPKT][256];
static uint32_t lens[NPKT];

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

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
	struct qs_dp_flow f;
	struct qs_qrp_hdr h;
	struct qs_qrp_report r;
	enum qs_kernel k = QS_KERNEL_AUTO;
	uint8_t tmp[256], *bufs[1];
	uint32_t i, b, tl, burst = QS_DP_BURST;
	uint64_t npk, n, t0, t1, now = 1000000000ull;
	char msg[512];
	bool cont;

	if (argc < 5) {
		fprintf(stderr, "usage: %s CONFIG POLICY.q8 requests|continuations N [KERNEL] [BURST]\n",
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

	/* as run_bench: accept any destination, frames keep the service port */
	s.cfg.has_ip4 = s.cfg.has_ip6 = false;
	for (b = 0; b < s.cfg.n_backends; b++)
		s.cfg.be[b].port = s.cfg.port;
	memset(&f, 0, sizeof(f));
	f.src_ip[0] = 192;
	f.dst_ip[0] = 10;
	for (b = 0; b < s.cfg.n_backends; b++) {
		memset(&h, 0, sizeof(h));
		h.type = QS_QRP_T_REPORT;
		h.request_id = 1;
		memset(&r, 0, sizeof(r));
		r.backend_id = s.cfg.be[b].id;
		r.waiting = b * 3;
		r.running = 8 + b;
		r.kv_used = 100 * b;
		r.kv_total = 4096;
		r.decode_tps = 1000 + b;
		r.ttft_p99_us = 50000;
		f.dport = s.cfg.report_port;
		tl = qs_dp_build_qrp(tmp, sizeof(tmp), &f, &h, &r, 0);
		bufs[0] = tmp;
		qs_dp_process(&w, &s, &set, bufs, &tl, 1, now);
	}
	f.dport = s.cfg.port;
	for (i = 0; i < NPKT; i++) {
		memset(&h, 0, sizeof(h));
		h.type = QS_QRP_T_REQUEST;
		h.request_id = i + 1;
		h.prompt_tokens = 100 + i * 7 % 4000;
		h.max_new_tokens = 10 + i % 300;
		h.prefix_hash = i % 5 ? 0 : i % 37 + 1;
		h.priority = (uint8_t)(i % 4);
		h.slo_class = (uint8_t)(i % 3);
		f.sport = (uint16_t)(1000 + i % 64);
		h.flags = cont ? 0 : QS_QRP_F_LAST;
		lens[i] = qs_dp_build_qrp(frames[i], sizeof(frames[i]), &f, &h, NULL, 64);
		if (cont) {
			bufs[0] = frames[i];
			qs_dp_process(&w, &s, &set, bufs, &lens[i], 1, now);
			h.type = QS_QRP_T_CONTINUATION;
			lens[i] = qs_dp_build_qrp(frames[i], sizeof(frames[i]), &f, &h, NULL, 64);
		}
	}
	memset(&w.ctr, 0, sizeof(w.ctr));
	t0 = now_ns();
	n = bench_loop(&w, &s, &set, npk, burst, now);
	t1 = now_ns();
	printf("{\"bench\":\"%s\",\"packets\":%" PRIu64 ",\"mpps\":%.3f,\"tx\":%" PRIu64
	       ",\"kernel\":\"%s\",\"burst\":%u,\"requests\":%" PRIu64 ",\"continuations\":%" PRIu64
	       "}\n",
	       argv[3], n, (double)n / ((double)(t1 - t0) / 1e9) / 1e6, w.ctr.tx, qs_kernel_name(k),
	       burst, w.ctr.requests, w.ctr.continuations);
	qs_policy_free((struct qs_policy *)set.active);
	return w.ctr.tx == n ? 0 : 1;
}
