/*
 * test_view_parity.c - one sequence of backend reports and requests through the
 * simulator's router view (qs_sim_view, what every simulated decision and so every
 * training step is built with, and the simulator's router), qsteer-dp's core
 * (qs_dp_process on built frames, one per burst) and, with root and BPF, the XDP
 * program (BPF_PROG_TEST_RUN, test clock): the masks, the feature rows of every
 * candidate and the decisions must be equal byte for byte (issue 19).
 *
 * The sequence has every mask rule in it: requests before any report, a backend
 * whose agent stops (stale after report_interval x report_stale_intervals), one
 * reporting its KV cache full, one reporting it drains, one drained by the
 * operator, and a stretch where every report is stale (the fallback decides over
 * the stale backends heard from lately, not over the one silent for 100 ms). Cascade
 * floors mask backends per request by SLO class and difficulty, which the request
 * carries or the dataplanes derive from its prompt length (quality.h). The router the
 * simulator models keeps what the dataplane keeps: the last report, when it came, and what it sent
 * since.
 *
 * usage: test-view-parity POLICY.q8. Exit 0 equal, 1 a difference, 2 setup.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qs_test_dp.h"
#include "qsteer/dp_core.h"
#include "qsteer/prefix.h"
#include "qsteer/router_view.h"
#include "qsteer/sim.h"
#ifdef QS_PARITY_XDP
#include "qsteer/xdp_loader.h"
#endif

#define NB     6
#define MS     1000000ull
#define END_MS 170

static int bad;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			if (bad++ < 20) {                                                          \
				printf("t=%.3f ms: ", (double)now / 1e6);                          \
				printf(__VA_ARGS__);                                               \
				printf("\n");                                                      \
			}                                                                          \
		}                                                                                  \
	} while (0)

static uint64_t rng = 0x5eedf00dull;

static uint32_t
rnd(uint32_t n)
{
	/* splitmix64: any fixed sequence will do, it only has to be the same each run */
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (uint32_t)((z ^ (z >> 31)) % n);
}

static const double quality[3][QS_DIFFICULTIES] = {
    {1, 1, 1, 1}, {0.99, 0.95, 0.8, 0.6}, {0.97, 0.9, 0.6, 0.4}};
static const double floors[QS_QUALITY_SLO] = {0, 0.98, 0.9, 0.5};
static const uint32_t prompt_thr[3] = {1000, 3000, 6000};

static void
make_cfg(struct qs_dp_config *c)
{
	uint32_t i;

	qs_test_dp_config(c, NB); /* report_max_age_ns: 5 ms x 2 */
	/* the fallback: the dataplane's default, QS_BASELINE_FALLBACK, as the
	 * simulator's router's (sim/router.c) */
	for (i = 0; i < NB; i++) {
		struct qs_dp_backend_cfg *b = &c->be[i];

		b->capacity = 1 + i % 3;
		/* cascade: 0 and 1 the reference (never masked, so no request is ever
		 * dropped where the simulator would route it), 2-3 and 4-5 two variants */
		b->has_quality = true;
		memcpy(b->quality, quality[i / 2], sizeof(b->quality));
	}
	memcpy(c->quality_floor, floors, sizeof(floors));
	memcpy(c->difficulty_prompt_tokens, prompt_thr, sizeof(prompt_thr));
	qs_dp_config_quality(c);
}

static void
flow(const struct qs_dp_config *c, struct qs_dp_flow *f, const uint8_t *src, uint16_t dport)
{
	memset(f, 0, sizeof(*f));
	f->src_mac[0] = 2;
	f->src_mac[5] = 0xcc;
	f->dst_mac[0] = 2;
	f->dst_mac[5] = 0x01;
	memcpy(f->src_ip, src, 4);
	memcpy(f->dst_ip, c->svc.ip4, 4);
	f->sport = 40000;
	f->dport = dport;
}

/* Does backend i report at ms t, and with what (the scripted agents)? */
static bool
reports_at(uint32_t i, uint32_t t)
{
	if (t % 5 != i % 5)
		return false;
	/* agent 2 stops: stale from ~45 ms, silent (no report for 100 ms) from ~135,
	 * back at 160 */
	if (i == 2 && t >= 35 && t < 160)
		return false;
	/* every agent late: all stale, the fallback decides, over the agents heard
	 * from lately (not agent 2) */
	if (t >= 140 && t < 158)
		return false;
	return true;
}

int
main(int argc, char **argv)
{
	static struct qs_dp_config cfg;
	static struct qs_sim_decision d;
	static struct qs_prefix_table prefix;
	struct qs_dp_shared *sh;
	struct qs_dp_worker *wk;
	struct qs_dp_policy_set set;
	struct qs_policy *pol = NULL;
	struct qs_policy_load_opts lo = {QS_SCHEMA_ROUTER_V1, QS_Q8_KIND_SCORER, NULL};
	struct qs_sim_router router;
	struct qs_sim_view_backend vb[NB];
	uint64_t seq[NB] = {0}, now = 0, req_id = 1, n_req = 0, n_fallback = 0, n_masked = 0,
		 n_floor = 0, ok[QS_QUALITY_SLO][QS_DIFFICULTIES];
	double qtab[NB][QS_DIFFICULTIES], best[QS_DIFFICULTIES];
	uint32_t capacity[NB], t, i, k;
	char msg[512], spec[1024];
#ifdef QS_PARITY_XDP
	struct qs_xdp *x = NULL;
	struct qs_xdp_opts xo = {0};
	cpu_set_t cpus;
#endif
	bool xdp = false;

	if (argc != 2) {
		fprintf(stderr, "usage: test-view-parity POLICY.q8\n");
		return 2;
	}
	make_cfg(&cfg);
	if (cfg.report_max_age_ns !=
	    QS_QRP_REPORT_INTERVAL_MS * QS_DP_REPORT_STALE_INTERVALS * MS) {
		fprintf(stderr, "the dataplane's default report age changed: update this test\n");
		return 2;
	}
	{
		/* the simulator's defaults are the dataplane's: what the trainer trains with */
		static struct qs_sim_config sc;

		qs_sim_config_default(&sc);
		if (sc.report_interval_ns * sc.report_stale_intervals != cfg.report_max_age_ns ||
		    sc.report_max_age_ns != 0 || !sc.mask_kv_full || sc.fallback != cfg.fallback) {
			printf("simulator defaults: %llu ns x %u intervals (age %llu), KV-full %d, "
			       "fallback %s; the dataplane masks after %llu ns and when KV-full, "
			       "fallback %s\n",
			       (unsigned long long)sc.report_interval_ns, sc.report_stale_intervals,
			       (unsigned long long)sc.report_max_age_ns, sc.mask_kv_full,
			       qs_baseline_name(sc.fallback),
			       (unsigned long long)cfg.report_max_age_ns,
			       qs_baseline_name(cfg.fallback));
			bad++;
		}
	}
	if (qs_policy_load_file(argv[1], &lo, &pol, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "%s\n", msg);
		return 2;
	}
	snprintf(spec, sizeof(spec), "q8:%s", argv[1]);
	if (qs_sim_router_parse(spec, 1, &router, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "%s\n", msg);
		return 2;
	}
	sh = aligned_alloc(64, (sizeof(*sh) + 63) & ~(size_t)63);
	wk = aligned_alloc(64, (sizeof(*wk) + 63) & ~(size_t)63);
	if (!sh || !wk)
		return 2;
	qs_dp_shared_init(sh, &cfg);
	qs_dp_worker_init(wk, sh, QS_KERNEL_SCALAR, 0);
	memset(&set, 0, sizeof(set));
	set.active = pol;
	memset(vb, 0, sizeof(vb));
	for (i = 0; i < NB; i++) {
		vb[i].capacity_class = cfg.be[i].capacity_class;
		capacity[i] = cfg.be[i].capacity;
	}
	qs_prefix_init(&prefix);
	/* the simulator's admissible sets, as qs_sim_create computes them */
	for (i = 0; i < NB; i++)
		memcpy(qtab[i], quality[i / 2], sizeof(qtab[i]));
	qs_quality_admissible((const double(*)[QS_DIFFICULTIES])qtab, NB, floors, 0, best, ok);
#ifdef QS_PARITY_XDP
	/* one CPU: the program's per-CPU worker 0 is the one every run uses */
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	xo.test_clock = true;
	if (sched_setaffinity(0, sizeof(cpus), &cpus) != 0 ||
	    qs_xdp_open(&cfg, &xo, &x, msg, sizeof(msg)) != QS_OK) {
		printf("XDP program: skipped (%s)\n", x ? "" : msg);
	} else if (qs_xdp_load_policy_file(x, argv[1], msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "%s\n", msg);
		return 2;
	} else {
		xdp = true;
	}
#else
	printf("XDP program: not built\n");
#endif

	for (t = 0; t < END_MS; t++) {
		uint64_t drain = t >= 100 && t < 120 ? 1ull << 5 : 0; /* operator drains 5 */

		__atomic_store_n(&sh->admin_drain, drain, __ATOMIC_RELEASE);
#ifdef QS_PARITY_XDP
		if (xdp)
			qs_xdp_set_drain(x, drain);
#endif
		/* reports first (at t ms + 0.1 * i), then three requests */
		for (i = 0; i < NB; i++) {
			struct qs_qrp_report r;
			struct qs_qrp_hdr h = {QS_QRP_T_REPORT, 0, 0, 0, 0, 0, 0, 0, 0, 32};
			struct qs_dp_flow f;
			uint8_t fr[2048], *fp = fr;
			uint32_t len;

			if (!reports_at(i, t))
				continue;
			now = t * MS + i * 100000ull;
			memset(&r, 0, sizeof(r));
			r.backend_id = cfg.be[i].id;
			r.waiting = rnd(40);
			r.running = rnd(64);
			r.kv_total = 4096;
			r.kv_used = rnd(4096);
			if (i == 3 && t >= 60 && t < 90) /* 3's KV cache is full */
				r.kv_used = r.kv_total;
			if (i == 4 && t >= 90 && t < 130) /* 4 drains */
				r.flags = QS_QRP_RF_DRAINING;
			r.decode_tps = rnd(20000);
			r.ttft_p99_us = rnd(3000000);
			r.prefill_pending = rnd(50000);
			r.received = ++seq[i];
			h.request_id = seq[i];
			flow(&cfg, &f, cfg.be[i].ip4, cfg.svc.report_port);
			len = qs_dp_build_report(fr, sizeof(fr), &f, &h, &r, NULL);
			qs_dp_process(wk, sh, &set, &fp, &len, 1, now);
			CHECK(wk->b.verdict[0] == QS_DP_V_CONSUMED,
			      "dp did not take the report of %u", i);
			/* the simulated router: the report, and nothing sent since */
			vb[i].rep = r;
			vb[i].last_ns = now;
			vb[i].valid = true;
			vb[i].sent_reqs = 0;
			vb[i].sent_tokens = 0;
#ifdef QS_PARITY_XDP
			if (xdp) {
				uint8_t out[2048];
				uint32_t verdict, olen;

				if (qs_xdp_run(x, fr, len, now, &verdict, out, sizeof(out), &olen,
					       msg, sizeof(msg)) != QS_OK) {
					fprintf(stderr, "%s\n", msg);
					return 2;
				}
				CHECK(verdict == QS_XDP_DROP,
				      "XDP did not consume the report of %u", i);
			}
#endif
		}
		for (k = 0; k < 3; k++) {
			struct qs_qrp_hdr h = {QS_QRP_T_REQUEST,
					       QS_QRP_F_LAST,
					       1,
					       req_id++,
					       1 + rnd(8000),
					       1 + rnd(1000),
					       rnd(4) ? 0 : 1 + rnd(6),
					       (uint8_t)rnd(4),
					       (uint8_t)rnd(4),
					       32};
			struct qs_dp_flow f;
			uint8_t fr[2048], in[2048], *fp = fr, cli[4] = {192, 168, 0, 7};
			uint32_t len, cnd, hit, diff;
			uint64_t adm;
			uint16_t dpb;
			int sb;

			/* half carry a difficulty; the others' is their prompt's class */
			if (rnd(2)) {
				diff = rnd(4);
				h.flags |= qs_qrp_difficulty_flags(diff);
			} else {
				diff = (h.prompt_tokens >= prompt_thr[0]) +
				       (h.prompt_tokens >= prompt_thr[1]) +
				       (h.prompt_tokens >= prompt_thr[2]);
			}
			/* what the simulator's engine hides from its router (build_view) */
			adm = ok[h.slo_class][diff];
			n_floor += adm != (1ull << NB) - 1;
			for (i = 0; i < NB; i++)
				vb[i].drained = (drain >> i & 1) || !(adm >> i & 1);
			now = t * MS + 700000ull + k * 100000ull;
			flow(&cfg, &f, cli, cfg.svc.port);
			len = qs_dp_build_qrp(fr, sizeof(fr), &f, &h, NULL, 40);
			memcpy(in, fr, len); /* the dataplane rewrites fr in place */
			n_req++;

			/* the simulator's view and decision */
			hit = qs_prefix_lookup(&prefix, h.prefix_hash, now, cfg.prefix_max_age_ns);
			d.freq.prompt_tokens = h.prompt_tokens;
			d.freq.max_new_tokens = h.max_new_tokens;
			d.freq.priority = h.priority;
			d.freq.slo_class = h.slo_class;
			d.capacity = capacity;
			d.admissible = adm;
			qs_sim_view(vb, NB, now, cfg.report_max_age_ns, true, hit, true, &d);
			sb = qs_sim_router_choose(&router, &d);
			n_masked += d.eligible != ((1ull << NB) - 1);
			n_fallback += d.eligible == 0;

			/* the dataplane's */
			qs_dp_process(wk, sh, &set, &fp, &len, 1, now);
			CHECK(wk->b.req_adm[0] == (~cfg.quality_masked[h.slo_class][diff]),
			      "admissible: dp %#llx, sim %#llx",
			      (unsigned long long)(wk->b.req_adm[0] & ((1ull << NB) - 1)),
			      (unsigned long long)adm);
			CHECK((wk->b.cand_mask & wk->b.req_adm[0]) == d.eligible,
			      "candidates: dp %#llx, sim %#llx",
			      (unsigned long long)(wk->b.cand_mask & wk->b.req_adm[0]),
			      (unsigned long long)d.eligible);
			if ((wk->b.cand_mask & wk->b.req_adm[0]) == 0) {
				uint64_t fb =
				    qs_rview_fallback_set(wk->b.heard_mask & wk->b.req_adm[0],
							  wk->b.fallback_mask & wk->b.req_adm[0]);

				CHECK(fb == d.fallback, "fallback: dp %#llx, sim %#llx",
				      (unsigned long long)fb, (unsigned long long)d.fallback);
				/* the silent agent is not the fallback's while others are heard */
				if (now >= 140 * MS && now < 158 * MS)
					CHECK(d.fallback && !(d.fallback >> 2 & 1) && sb != 2,
					      "fallback over the silent agent 2: mask %#llx, chose "
					      "%d",
					      (unsigned long long)d.fallback, (int)sb);
			}
			for (cnd = 0; cnd < wk->b.n_cand &&
				      (wk->b.cand_mask & wk->b.req_adm[0]) == d.eligible;
			     cnd++) {
				const uint8_t *a = &wk->b.x[(size_t)cnd * QS_FR_COUNT];
				const uint8_t *s = d.features[wk->b.cand_be[cnd]];

				if (memcmp(a, s, QS_FR_COUNT) != 0) {
					uint32_t j;

					for (j = 0; j < QS_FR_COUNT && a[j] == s[j]; j++)
						;
					CHECK(0,
					      "request %llu, backend %u: feature %u is %u in dp, "
					      "%u in sim",
					      (unsigned long long)h.request_id, wk->b.cand_be[cnd],
					      j, a[j], s[j]);
				}
			}
			dpb = wk->b.verdict[0] == QS_DP_V_TX ? wk->b.backend[0] : 0xffff;
			CHECK(sb >= 0 && dpb == (uint16_t)sb,
			      "request %llu: dp sent it to %d, sim to %d",
			      (unsigned long long)h.request_id, dpb == 0xffff ? -1 : dpb, sb);
#ifdef QS_PARITY_XDP
			if (xdp) {
				uint8_t out[2048];
				uint32_t verdict, olen;

				if (qs_xdp_run(x, in, len, now, &verdict, out, sizeof(out), &olen,
					       msg, sizeof(msg)) != QS_OK) {
					fprintf(stderr, "%s\n", msg);
					return 2;
				}
				/* the destination MAC names the backend (make_cfg) */
				CHECK(verdict == QS_XDP_TX && olen >= 14 && out[5] == dpb &&
					  memcmp(out, fp, olen) == 0,
				      "request %llu: XDP verdict %u to backend %d, dp to %d",
				      (unsigned long long)h.request_id, verdict,
				      verdict == QS_XDP_TX ? out[5] : -1, dpb);
			}
#endif
			/* what the simulator's engine does after qs_sim_route */
			if (sb >= 0 && sb < NB) {
				vb[sb].sent_reqs++;
				vb[sb].sent_tokens += h.prompt_tokens;
				qs_prefix_update(&prefix, h.prefix_hash, (uint32_t)sb, now);
			}
		}
	}
	/*
	 * The floor's drop: every backend a hard request's floor admits drained by the
	 * operator, the others up: dropped as quality-floor, not no-backend, by both
	 * dataplanes; with every backend drained, no-backend.
	 */
	for (k = 0; k < 2; k++) {
		struct qs_qrp_hdr h = {QS_QRP_T_REQUEST,
				       QS_QRP_F_LAST | qs_qrp_difficulty_flags(3),
				       1,
				       req_id++,
				       100,
				       10,
				       0,
				       0,
				       3,
				       32};
		const uint64_t drain = k ? ~0ull : ok[3][3];
		const enum qs_dp_drop want = k ? QS_DP_D_NO_BACKEND : QS_DP_D_QUALITY_FLOOR;
		struct qs_dp_flow f;
		uint8_t fr[2048], in[2048], *fp = fr, cli[4] = {192, 168, 0, 7};
		uint32_t len;

		CHECK(ok[3][3] != (1ull << NB) - 1, "the hardest class masks no backend");
		__atomic_store_n(&sh->admin_drain, drain, __ATOMIC_RELEASE);
		now = END_MS * MS;
		flow(&cfg, &f, cli, cfg.svc.port);
		len = qs_dp_build_qrp(fr, sizeof(fr), &f, &h, NULL, 40);
		memcpy(in, fr, len);
		qs_dp_process(wk, sh, &set, &fp, &len, 1, now);
		CHECK(wk->b.verdict[0] == QS_DP_V_DROP && wk->b.pkt[0].drop == want,
		      "dp: drained %#llx, drop %s, want %s", (unsigned long long)drain,
		      qs_dp_drop_name(wk->b.pkt[0].drop), qs_dp_drop_name(want));
#ifdef QS_PARITY_XDP
		if (xdp) {
			struct qs_dp_counters c0, c1;
			uint8_t out[2048];
			uint32_t verdict, olen;

			qs_xdp_set_drain(x, drain);
			if (qs_xdp_counters(x, &c0) != QS_OK ||
			    qs_xdp_run(x, in, len, now, &verdict, out, sizeof(out), &olen, msg,
				       sizeof(msg)) != QS_OK ||
			    qs_xdp_counters(x, &c1) != QS_OK) {
				fprintf(stderr, "XDP: %s\n", msg);
				return 2;
			}
			CHECK(verdict == QS_XDP_DROP && c1.drop[want] == c0.drop[want] + 1,
			      "XDP: drained %#llx, verdict %u, %s %llu -> %llu",
			      (unsigned long long)drain, verdict, qs_dp_drop_name(want),
			      (unsigned long long)c0.drop[want], (unsigned long long)c1.drop[want]);
		}
#endif
	}
	/* the sequence must have exercised what it claims to */
	CHECK(n_masked > 100 && n_fallback > 20 && n_floor > 100 && n_floor < n_req - 100,
	      "only %llu masked, %llu all-masked and %llu floor-masked decisions",
	      (unsigned long long)n_masked, (unsigned long long)n_fallback,
	      (unsigned long long)n_floor);
	printf("%llu requests (%llu with a backend masked, %llu below a quality floor, %llu "
	       "with all), dp%s and the simulator's view: %s\n",
	       (unsigned long long)n_req, (unsigned long long)n_masked, (unsigned long long)n_floor,
	       (unsigned long long)n_fallback, xdp ? ", XDP" : "", bad ? "DIFFER" : "equal");
#ifdef QS_PARITY_XDP
	if (x)
		qs_xdp_close(x);
#endif
	qs_sim_router_free(&router);
	qs_policy_free(pol);
	free(sh);
	free(wk);
	return bad ? 1 : 0;
}
