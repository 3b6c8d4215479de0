/*
 * xdp_bench.c - ns per request packet through the XDP program with
 * BPF_PROG_TEST_RUN, for 4, 8 and 16 backends, against the trivial QS_XDP_TX
 * program (qsteer_xdp_tx, same object) measured in the same run, the same way.
 *
 * BPF_PROG_TEST_RUN's repeat runs one input again and again, so a single-packet
 * figure lets the branch predictor learn that packet's every branch (which
 * layer-1 units are 0, which backend wins, which request-id way is free). The
 * headline figure is therefore taken over varied traffic:
 *
 *   - NPKT distinct request frames (untagged IPv4): prompt 1..32k and generation
 *     1..4k tokens (log-uniform), priority and SLO class 0..3, tenant 0..3, a prefix
 *     hash from a pool of 48 (so prefix hits come and go), 30% without the LAST flag
 *     (they go into the request-id table), a fresh request id every pass;
 *   - backend states that move: before every REPORT_EVERY-th request a random
 *     backend reports new waiting / running / KV / throughput / TTFT / prefill
 *     values (never full, never draining: every request scores every backend),
 *     and every send moves the chosen backend's sent counts;
 *   - round-robin, one BPF_PROG_TEST_RUN (repeat 1) per request frame, the
 *     steering program and QS_XDP_TX alternating pass by pass; mean ns per packet.
 *     The kernel times each run alone (the timer call is in both figures).
 *
 * Secondary column: the old single-frame figure (one request frame, REPEAT runs,
 * every branch learnt: an optimistic bound, labelled as such).
 *
 * The process pins itself to the CPU it starts on (per-CPU state: worker, caches,
 * request-id table). Every backend's report stays fresh (age limit 1 h).
 *
 * usage: xdp-bench MKPOLICY [REPEAT [BACKENDS...]]   (root; 77 without)
 *        REPEAT: the single-frame line's repeat (200000); BACKENDS: 4 8 16 unless given
 *        QS_XDP_BENCH_PASSES (env): round-robin passes over the frames (default 40)
 *        QS_XDP_BENCH_REPORT_EVERY (env): requests per backend report (default 4)
 *        QS_XDP_BENCH_POLICY (env): a .q8 file (e.g. the shipped
 *        policies/default-router.q8) instead of MKPOLICY's 16-32-16-1 test shape
 *        QS_XDP_BENCH_SHADOW=1 (env): the same policy also runs as the shadow, so
 *        every request is scored twice (qsteer-xdp --shadow's cost)
 *
 * The report ratio is the traffic's: backends report every 5 ms (the agent's
 * default), so B backends send 200 B reports/s, and a core steering R requests/s
 * sees one report per R / (200 B) requests -- 4 is a few thousand requests/s over 8
 * backends (the stress case: nearly every request finds a refreshed backend), 625
 * is a core near line rate (1 M requests/s) over 8 backends.
 */
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qsteer/policy.h"
#include "qsteer/xdp_loader.h"
#include "qsteer/rng.h"

#define NPKT	     400
#define REPORT_EVERY 4 /* default; QS_XDP_BENCH_REPORT_EVERY overrides */
#define PREFIXES     48

static uint64_t rng_s = 0x2545f4914f6cdd1dull;
static uint32_t report_every = REPORT_EVERY;
static uint64_t steered; /* requests sent through the steering program so far */

static uint64_t
rnd(void)
{
	return qs_splitmix64(&rng_s);
}

/* log-uniform in [1, 2^bits) */
static uint32_t
rnd_log(unsigned bits)
{
	unsigned b = (unsigned)(rnd() % bits);

	return (uint32_t)((1ull << b) + rnd() % (1ull << b));
}

static void
bench_config(struct qs_dp_config *c, uint32_t nb)
{
	uint32_t i;

	qs_dp_config_defaults(c);
	c->report_max_age_ns = 3600ull * 1000000000ull;
	c->n_backends = nb;
	for (i = 0; i < nb; i++) {
		struct qs_dp_backend_cfg *b = &c->be[i];

		b->id = (uint16_t)(10 + i);
		b->mac[0] = 0x02;
		b->mac[5] = (uint8_t)i;
		b->has_ip4 = true;
		b->ip4[0] = 10;
		b->ip4[1] = 0;
		b->ip4[2] = 1;
		b->ip4[3] = (uint8_t)(10 + i);
		b->port = QS_QRP_PORT;
		b->capacity_class = (uint8_t)(i % 8);
		b->capacity = 1;
		snprintf(b->name, sizeof(b->name), "gpu%u", i);
		qs_dp_report_src_default(b);
	}
}

static void
flow(struct qs_dp_flow *f, uint16_t dport)
{
	memset(f, 0, sizeof(*f));
	f->src_mac[0] = 0x02;
	f->dst_mac[0] = 0x02;
	f->dst_mac[5] = 1;
	f->src_ip[0] = 192;
	f->src_ip[1] = 168;
	f->src_ip[3] = 2;
	f->dst_ip[0] = 10;
	f->dst_ip[3] = 1;
	f->sport = 40000;
	f->dport = dport;
}

struct bench {
	struct qs_xdp *x;
	uint32_t nb;
	uint64_t report_seq;
	uint64_t next_id;
	struct qs_qrp_hdr req[NPKT];
	uint16_t sport[NPKT];
};

static int
send_report(struct bench *b, uint32_t i, char *msg, size_t msglen)
{
	struct qs_dp_flow f;
	struct qs_qrp_hdr h;
	struct qs_qrp_report r;
	uint8_t pkt[256], out[256];
	uint32_t len, v, olen;

	flow(&f, QS_QRP_REPORT_PORT);
	/* from the agent's own address: the program checks it, as in production */
	f.src_ip[0] = 10;
	f.src_ip[1] = 0;
	f.src_ip[2] = 1;
	f.src_ip[3] = (uint8_t)(10 + i);
	memset(&h, 0, sizeof(h));
	memset(&r, 0, sizeof(r));
	h.type = QS_QRP_T_REPORT;
	h.request_id = ++b->report_seq;
	h.hdr_len = QS_QRP_HDR_LEN;
	r.backend_id = (uint16_t)(10 + i);
	r.waiting = (uint32_t)(rnd() % 64);
	r.running = 1 + (uint32_t)(rnd() % 96);
	r.kv_total = 4000 + (uint32_t)(rnd() % 60000);
	r.kv_used = (uint32_t)(rnd() % r.kv_total); /* never full */
	r.decode_tps = 200 + (uint32_t)(rnd() % 8000);
	r.ttft_p99_us = 20000 + (uint32_t)(rnd() % 2000000);
	r.prefill_pending = rnd_log(17);
	len = qs_dp_build_qrp(pkt, sizeof(pkt), &f, &h, &r, 0);
	return qs_xdp_run(b->x, pkt, len, 0, &v, out, sizeof(out), &olen, msg, msglen);
}

static uint32_t
build_req(struct bench *b, uint32_t k, uint8_t *pkt, uint32_t cap)
{
	struct qs_dp_flow f;

	flow(&f, QS_QRP_PORT);
	f.sport = b->sport[k];
	f.src_ip[3] = (uint8_t)(2 + k % 200);
	b->req[k].request_id = ++b->next_id;
	return qs_dp_build_qrp(pkt, cap, &f, &b->req[k], NULL, 64);
}

/* One pass over the frames; tx_only: the reference program. Sums ns and runs. */
static int
pass(struct bench *b, bool tx_only, uint32_t rep, uint64_t *ns, uint64_t *runs, char *msg,
     size_t msglen)
{
	uint8_t pkt[256];
	uint32_t k, len, d, v;

	for (k = 0; k < NPKT; k++) {
		if (!tx_only && steered++ % report_every == 0 &&
		    send_report(b, (uint32_t)(rnd() % b->nb), msg, msglen) != QS_OK)
			return 1;
		len = build_req(b, k, pkt, sizeof(pkt));
		if (qs_xdp_bench(b->x, tx_only, pkt, len, rep, &d, &v, msg, msglen) != QS_OK)
			return 1;
		if (v != QS_XDP_TX) {
			snprintf(msg, msglen, "request %u: verdict %u, not XDP_TX", k, v);
			return 1;
		}
		*ns += (uint64_t)d * rep;
		*runs += rep;
	}
	return 0;
}

/* The layer widths of a policy file, as "16-64-64-1". */
static int
policy_shape(const char *path, char *out, size_t cap)
{
	struct qs_policy *p;
	char msg[512];
	size_t off;

	if (qs_policy_load_file(path, NULL, &p, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "QS_XDP_BENCH_POLICY: %s\n", msg);
		return -1;
	}
	off = (size_t)snprintf(out, cap, "%u", p->n_in);
	for (unsigned l = 0; l < p->n_layers && off < cap; l++)
		off += (size_t)snprintf(out + off, cap - off, "-%u", p->layer[l].n_out);
	qs_policy_free(p);
	return 0;
}

int
main(int argc, char **argv)
{
	uint32_t sizes[64] = {4, 8, 16}, n_sizes = 3;
	uint32_t repeat = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : 200000, k;
	uint32_t passes = 40;
	char cmd[512], msg[512], made[] = "/tmp/qsteer-xdp-bench-XXXXXX";
	const char *env = getenv("QS_XDP_BENCH_PASSES");
	const char *pol = getenv("QS_XDP_BENCH_POLICY");
	const char *shadow_env = getenv("QS_XDP_BENCH_SHADOW");
	bool shadow = shadow_env && strcmp(shadow_env, "1") == 0;
	char shape[64] = "16-32-16-1";
	cpu_set_t cs;
	int fd, cpu;

	if (argc < 2) {
		fprintf(stderr, "usage: xdp-bench MKPOLICY [REPEAT [BACKENDS...]]\n");
		return 2;
	}
	if (env && strtoul(env, NULL, 0) > 0)
		passes = (uint32_t)strtoul(env, NULL, 0);
	env = getenv("QS_XDP_BENCH_REPORT_EVERY");
	if (env && strtoul(env, NULL, 0) > 0)
		report_every = (uint32_t)strtoul(env, NULL, 0);
	if (argc > 3) {
		for (n_sizes = 0; (int)n_sizes + 3 < argc && n_sizes < 64; n_sizes++) {
			sizes[n_sizes] = (uint32_t)strtoul(argv[n_sizes + 3], NULL, 0);
			if (sizes[n_sizes] < 1 || sizes[n_sizes] > QS_XDP_MAX_BACKENDS) {
				fprintf(stderr, "backend counts are 1..%d\n", QS_XDP_MAX_BACKENDS);
				return 2;
			}
		}
	}
	if (geteuid() != 0) {
		printf("SKIP: BPF_PROG_TEST_RUN needs root\n");
		return 77;
	}
	cpu = sched_getcpu();
	if (cpu >= 0) {
		CPU_ZERO(&cs);
		CPU_SET(cpu, &cs);
		sched_setaffinity(0, sizeof(cs), &cs);
	}
	if (pol && pol[0]) {
		if (policy_shape(pol, shape, sizeof(shape)))
			return 2;
		made[0] = 0; /* nothing of ours to remove */
	} else {
		fd = mkstemp(made);
		if (fd < 0)
			return 2;
		close(fd);
		pol = made;
		snprintf(cmd, sizeof(cmd), "'%s' 1 '%s' bench >/dev/null", argv[1], pol);
		if (system(cmd) != 0) {
			fprintf(stderr, "%s failed\n", cmd);
			if (made[0]) /* a file of ours, not QS_XDP_BENCH_POLICY */
				unlink(made);
			return 2;
		}
	}
	printf("policy %s (%s)%s; varied: %u request frames x %u passes, round-robin, repeat 1,\n"
	       "a backend report every %u requests; pinned to CPU %d\n",
	       shape, pol == made ? "generated" : pol, shadow ? ", also as the shadow" : "", NPKT,
	       passes, report_every, cpu);
	printf("%-8s | %9s %9s %9s | %12s %9s | %s\n", "backends", "varied", "XDP_TX", "diff",
	       "single-frame", "XDP_TX", "decisions (policy/fallback)");
	for (k = 0; k < n_sizes; k++) {
		struct qs_dp_config c;
		struct qs_xdp_opts xo = {0};
		struct qs_dp_counters ctr;
		struct qs_dp_flow f;
		struct qs_qrp_hdr h;
		struct bench *b = calloc(1, sizeof(*b));
		uint8_t pkt[256];
		uint64_t ns_s = 0, n_s = 0, ns_t = 0, n_t = 0, ns_r = 0, n_r = 0;
		uint32_t i, len, v, one_s = 0, one_t = 0;
		int err = 0;

		if (!b)
			return 1;
		bench_config(&c, sizes[k]);
		b->nb = sizes[k];
		xo.log = stderr;
		if (qs_xdp_open(&c, &xo, &b->x, msg, sizeof(msg)) != QS_OK ||
		    qs_xdp_load_policy_file(b->x, pol, msg, sizeof(msg)) != QS_OK ||
		    (shadow && qs_xdp_load_second_file(b->x, pol, QS_XDP_SET_SHADOW, 0, msg,
						       sizeof(msg)) != QS_OK)) {
			fprintf(stderr, "%s\n", msg);
			qs_xdp_close(b->x);
			if (made[0]) /* a file of ours, not QS_XDP_BENCH_POLICY */
				unlink(made);
			return 1;
		}
		rng_s = 0x2545f4914f6cdd1dull; /* same traffic for every backend count */
		steered = 0;
		for (i = 0; i < sizes[k] && !err; i++)
			err = send_report(b, i, msg, sizeof(msg));
		for (i = 0; i < NPKT; i++) {
			struct qs_qrp_hdr *q = &b->req[i];

			q->type = QS_QRP_T_REQUEST;
			q->flags = rnd() % 10 < 7 ? QS_QRP_F_LAST : 0;
			q->tenant = (uint16_t)(rnd() % 4);
			q->prompt_tokens = rnd_log(15);
			q->max_new_tokens = rnd_log(12);
			q->prefix_hash = 0x1000 + (uint32_t)(rnd() % PREFIXES);
			q->priority = (uint8_t)(rnd() % 4);
			q->slo_class = (uint8_t)(rnd() % 4);
			q->hdr_len = QS_QRP_HDR_LEN;
			b->sport[i] = (uint16_t)(30000 + rnd() % 30000);
		}
		/* warm-up pass each, then steering and XDP_TX passes alternating */
		if (!err)
			err = pass(b, false, 1, &ns_r, &n_r, msg, sizeof(msg)) ||
			      pass(b, true, 1, &ns_r, &n_r, msg, sizeof(msg));
		for (i = 0; i < passes && !err; i++)
			err = pass(b, false, 1, &ns_s, &n_s, msg, sizeof(msg)) ||
			      pass(b, true, 1, &ns_t, &n_t, msg, sizeof(msg));
		/* the old figure: one frame, repeated */
		flow(&f, QS_QRP_PORT);
		memset(&h, 0, sizeof(h));
		h.type = QS_QRP_T_REQUEST;
		h.flags = QS_QRP_F_LAST;
		h.request_id = 42;
		h.prompt_tokens = 1500;
		h.max_new_tokens = 200;
		h.prefix_hash = 0x1234;
		h.priority = 1;
		h.slo_class = 2;
		h.hdr_len = QS_QRP_HDR_LEN;
		len = qs_dp_build_qrp(pkt, sizeof(pkt), &f, &h, NULL, 64);
		if (!err && (qs_xdp_bench(b->x, false, pkt, len, repeat, &one_s, &v, msg,
					  sizeof(msg)) != QS_OK ||
			     qs_xdp_bench(b->x, true, pkt, len, repeat, &one_t, &v, msg,
					  sizeof(msg)) != QS_OK))
			err = 1;
		if (err) {
			fprintf(stderr, "%s\n", msg);
			qs_xdp_close(b->x);
			free(b);
			if (made[0]) /* a file of ours, not QS_XDP_BENCH_POLICY */
				unlink(made);
			return 1;
		}
		qs_xdp_counters(b->x, &ctr);
		printf("%-8u | %9.0f %9.0f %9.0f | %12u %9u | %" PRIu64 "/%" PRIu64 "\n", sizes[k],
		       (double)ns_s / (double)n_s, (double)ns_t / (double)n_t,
		       (double)ns_s / (double)n_s - (double)ns_t / (double)n_t, one_s, one_t,
		       ctr.decided_policy, ctr.fallback);
		if (ctr.fallback != 0) {
			fprintf(stderr, "the policy did not decide every request\n");
			qs_xdp_close(b->x);
			free(b);
			if (made[0]) /* a file of ours, not QS_XDP_BENCH_POLICY */
				unlink(made);
			return 1;
		}
		qs_xdp_close(b->x);
		free(b);
	}
	if (made[0]) /* a file of ours, not QS_XDP_BENCH_POLICY */
		unlink(made);
	return 0;
}
