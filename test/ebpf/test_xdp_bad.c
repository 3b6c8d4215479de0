/*
 * test_xdp_bad.c - bad input for the XDP program and its loader, as the dataplane
 * handles it (cmocka; root, else 77):
 *   - policies the program cannot run (too wide, too deep, wrong schema,
 *     truncated) are refused with a message and the running policy stays;
 *   - a configuration without backends is refused;
 *   - every shape the program accepts (1 or 2 hidden layers, widths 1..64) with
 *     extreme weights, biases and requantization (large shifts with nonzero
 *     activations included) scores bit-exactly like the scalar
 *     reference: each packet's verdict and bytes equal the dataplane core's;
 *   - a policy swap and a rollback in the middle of traffic keep every decision
 *     exact (the program's per-CPU layer-1 cache follows the publication);
 *   - malformed packets (every truncation and random byte flips of valid frames)
 *     get the dataplane core's verdicts, bytes and drop counters.
 * usage: test-xdp-bad CONFIG.ini MKPOLICY
 */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "qsteer/int8.h"
#include "qsteer/xdp_loader.h"
#include "qsteer/rng.h"

static const char *cfg_path;
static char tmpdir[] = "/tmp/qsteer-xdp-bad-XXXXXX";

/* Layer-1 units with a shift of 57 or more, as the reference computes them on the rows
 * the core scored: a test that meets only zeros there says nothing of the kernel's
 * rebuilt constants (xdp.h c1). */
static struct {
	const struct qs_policy *p; /* NULL: not watching */
	uint64_t nonzero;	   /* such activations above 0 */
	uint64_t seen[2];	   /* bit j: unit j seen at 0, above 0 */
} big_shift;

static uint64_t
rnd(uint64_t *s)
{
	return qs_splitmix64(s);
}

/* Write a scorer 16 -> dims[0] -> ... -> 1 with random (extreme when asked) values.
 * extreme 2: also every shift 1..62 with M from 1 up, so the kernel's layer-1
 * thresholds (xdp.h t1) meet steps at both ends of the field range.
 * extreme 3: every layer-1 unit has a shift of 57..60, where the loader rebuilds the
 * two-layer kernels' constants (xdp.h c1: m1 = 2^33, s1 = 55). With |bias| <= 2^20 such
 * a unit is always 0, so M is near 2^31 and the bias (up to the format's 2^28) puts
 * the unit's step from value V - 1 to V at a dot product D0 that requests reach;
 * layer 2 is kept sensitive to those small activations. */
static void
write_policy(const char *path, const uint16_t *hidden, int n_hidden, uint16_t kind, uint32_t schema,
	     uint64_t seed, int extreme)
{
	static int8_t w[8][256 * 256];
	static int32_t b[8][256], m[8][256];
	static uint8_t s[8][256];
	struct qs_q8_desc d;
	uint16_t n_in = 16;
	char msg[256];
	int l, i;

	memset(&d, 0, sizeof(d));
	d.kind = kind;
	d.schema = schema;
	d.name = "bad-input";
	d.created = 1;
	d.n_layers = (uint16_t)(n_hidden + 1);
	for (l = 0; l <= n_hidden; l++) {
		uint16_t n_out = l < n_hidden ? hidden[l] : 1;

		for (i = 0; i < n_in * n_out; i++)
			w[l][i] = extreme == 1 || extreme == 2
				      ? (rnd(&seed) & 1 ? 127 : -127)
				      : (int8_t)((int)(rnd(&seed) % 255) - 127);
		for (i = 0; i < n_out; i++) {
			if (extreme == 3 && l == 0) {
				int64_t v = 1 + (int64_t)(rnd(&seed) % 3);
				int64_t d0 = (int64_t)(rnd(&seed) % 8001) - 4000, bb;
				__int128 num;

				s[l][i] = (uint8_t)(57 + rnd(&seed) % 4);
				m[l][i] = (int32_t)(QS_INT8_M_MAX - rnd(&seed) % (1u << 28));
				/* the smallest acc with (acc * M + 2^(S-1)) >> S >= v */
				num = ((__int128)2 * v - 1) << (s[l][i] - 1);
				bb = (int64_t)((num + m[l][i] - 1) / m[l][i]) - d0;
				if (bb > QS_INT8_MAX_ABS_BIAS)
					bb = QS_INT8_MAX_ABS_BIAS;
				b[l][i] = (int32_t)bb;
				continue;
			}
			if (extreme == 3) {
				b[l][i] = (int32_t)(rnd(&seed) % 2001) - 1000;
				m[l][i] = 1 << 20;
				s[l][i] = 22;
				continue;
			}
			b[l][i] = extreme ? (int32_t)(rnd(&seed) % (2u << 20)) - (1 << 20)
					  : (int32_t)(rnd(&seed) % 20001) - 10000;
			if (extreme == 2) {
				/* two draws in sequence: the bound's, then the value's */
				uint32_t mb = (uint32_t)(rnd(&seed) % 31);

				m[l][i] = (int32_t)(rnd(&seed) % (1u << mb)) + 1;
			} else {
				m[l][i] =
				    extreme ? (int32_t)(rnd(&seed) % 0x7ffffffe) + 1 : 1 << 20;
			}
			s[l][i] = extreme == 2 ? (uint8_t)(1 + rnd(&seed) % 62)
				  : extreme    ? (uint8_t)(30 + rnd(&seed) % 20)
					       : 32;
		}
		d.layer[l] = (struct qs_q8_layer_desc){n_in,
						       n_out,
						       w[l],
						       b[l],
						       l < n_hidden ? m[l] : NULL,
						       l < n_hidden ? s[l] : NULL};
		n_in = n_out;
	}
	assert_int_equal(qs_q8_write_file(&d, path, msg, sizeof(msg)), QS_OK);
}

static struct qs_xdp *
open_xdp(struct qs_dp_config *c)
{
	struct qs_xdp_opts o = {0};
	struct qs_xdp *x = NULL;
	char msg[512];

	qs_dp_config_defaults(c);
	assert_int_equal(qs_dp_config_load(cfg_path, c, msg, sizeof(msg)), QS_OK);
	o.test_clock = true;
	o.log = stderr;
	if (qs_xdp_open(c, &o, &x, msg, sizeof(msg)) != QS_OK)
		fail_msg("%s", msg);
	return x;
}

static void
test_refused_policies(void **state)
{
	static const uint16_t wide[] = {65}, deep[] = {8, 8, 8}, ok[] = {32, 16};
	struct qs_dp_config c;
	struct qs_xdp *x = open_xdp(&c);
	struct qs_xdp_slot_info a;
	char p[512], msg[512];

	(void)state;
	snprintf(p, sizeof(p), "%s/ok.q8", tmpdir);
	write_policy(p, ok, 2, QS_Q8_KIND_SCORER, QS_SCHEMA_ROUTER_V1, 1, false);
	assert_int_equal(qs_xdp_load_policy_file(x, p, msg, sizeof(msg)), QS_OK);

	snprintf(p, sizeof(p), "%s/wide.q8", tmpdir);
	write_policy(p, wide, 1, QS_Q8_KIND_SCORER, QS_SCHEMA_ROUTER_V1, 2, false);
	assert_int_equal(qs_xdp_load_policy_file(x, p, msg, sizeof(msg)), QS_E_SHAPE);
	assert_non_null(strstr(msg, "at most 64"));
	printf("refused: %s\n", msg);

	snprintf(p, sizeof(p), "%s/deep.q8", tmpdir);
	write_policy(p, deep, 3, QS_Q8_KIND_SCORER, QS_SCHEMA_ROUTER_V1, 3, false);
	assert_int_equal(qs_xdp_load_policy_file(x, p, msg, sizeof(msg)), QS_E_SHAPE);
	printf("refused: %s\n", msg);

	snprintf(p, sizeof(p), "%s/raw.q8", tmpdir);
	write_policy(p, ok, 2, QS_Q8_KIND_SCORER, QS_SCHEMA_RAW, 5, false);
	assert_int_not_equal(qs_xdp_load_policy_file(x, p, msg, sizeof(msg)), QS_OK);
	printf("refused: %s\n", msg);

	/* truncated: the loader's own validation refuses it */
	snprintf(p, sizeof(p), "%s/ok.q8", tmpdir);
	{
		char q[512], cmd[1200];

		snprintf(q, sizeof(q), "%s/trunc.q8", tmpdir);
		snprintf(cmd, sizeof(cmd), "head -c 300 '%s' > '%s'", p, q);
		assert_int_equal(system(cmd), 0);
		assert_int_not_equal(qs_xdp_load_policy_file(x, q, msg, sizeof(msg)), QS_OK);
		printf("refused: %s\n", msg);
	}
	snprintf(p, sizeof(p), "%s/missing.q8", tmpdir);
	assert_int_not_equal(qs_xdp_load_policy_file(x, p, msg, sizeof(msg)), QS_OK);
	assert_int_not_equal(qs_xdp_load_policy_spec(x, "builtin:nope", msg, sizeof(msg)), QS_OK);

	/* the running policy is still ok.q8 */
	qs_xdp_policy_info(x, &a, NULL, NULL);
	assert_non_null(strstr(a.label, "ok.q8"));
	qs_xdp_close(x);
}

static void
test_refused_config(void **state)
{
	struct qs_dp_config c;
	struct qs_xdp_opts o = {0};
	struct qs_xdp *x = NULL;
	char msg[256];

	(void)state;
	qs_dp_config_defaults(&c);
	assert_int_equal(qs_xdp_open(&c, &o, &x, msg, sizeof(msg)), QS_E_SHAPE);
	assert_null(x);
	printf("refused: %s\n", msg);
}

/* One packet through both; returns 1 on a difference. */
static int
both(struct qs_xdp *x, struct qs_dp_worker *w, struct qs_dp_shared *s,
     const struct qs_dp_policy_set *set, const uint8_t *pkt, uint32_t len, uint64_t now)
{
	uint8_t a[2048], b[2048], out[2048], *bp = b;
	uint32_t v, olen, want;
	char msg[256];

	if (len < 14 || len > sizeof(a))
		return 0; /* runts never reach XDP (xdp_replay.c) */
	memcpy(a, pkt, len);
	memcpy(b, pkt, len);
	if (qs_xdp_run(x, a, len, now, &v, out, sizeof(out), &olen, msg, sizeof(msg)) != QS_OK)
		fail_msg("%s", msg);
	qs_dp_process(w, s, set, &bp, &len, 1, now);
	if (big_shift.p && w->b.n_req == 1) {
		const struct qs_policy_layer *L = &big_shift.p->layer[0];
		uint32_t cnd, j;

		for (cnd = 0; cnd < w->b.n_cand; cnd++)
			for (j = 0; j < L->n_out && j < 64; j++) {
				const uint8_t *row = &w->b.x[(size_t)cnd * QS_FR_COUNT];
				uint8_t y;

				if (L->s[j] < 57)
					continue;
				y = qs_int8_requant(qs_int8_dot(L->w + (size_t)j * L->w_stride, row,
								L->n_in, L->bias[j]),
						    L->m[j], L->s[j]);
				big_shift.nonzero += y > 0;
				big_shift.seen[y > 0] |= 1ull << j;
			}
	}
	want = w->b.verdict[0] == QS_DP_V_TX	 ? QS_XDP_TX
	       : w->b.verdict[0] == QS_DP_V_PASS ? QS_XDP_PASS
						 : QS_XDP_DROP;
	if (v != want)
		return 1;
	if ((want == QS_XDP_TX || want == QS_XDP_PASS) && (olen != len || memcmp(out, b, len)))
		return 1;
	return 0;
}

static void
flow(struct qs_dp_flow *f, const struct qs_dp_config *c, uint16_t dport, bool v6, uint32_t k)
{
	memset(f, 0, sizeof(*f));
	f->src_mac[0] = 2;
	f->src_mac[5] = (uint8_t)k;
	f->dst_mac[0] = 2;
	f->dst_mac[5] = 1;
	f->ipv6 = v6;
	if (v6) {
		f->src_ip[0] = 0xfd;
		f->src_ip[15] = (uint8_t)k;
		memcpy(f->dst_ip, c->svc.ip6, 16);
	} else {
		f->src_ip[0] = 192;
		f->src_ip[3] = (uint8_t)k;
		memcpy(f->dst_ip, c->svc.ip4, 4);
	}
	f->sport = (uint16_t)(40000 + k);
	f->dport = dport;
	f->vlan = k % 5 == 0 ? 7 : 0;
}

/* Traffic: reports for every backend now and then, requests with varied fields. With
 * swap_path, the program publishes that policy (swap_p for the core) a third of the way
 * through and rolls back two thirds of the way: the per-CPU layer-1 cache must follow. */
static uint64_t
traffic_swap(struct qs_xdp *x, const struct qs_dp_config *c, const struct qs_dp_policy_set *set0,
	     uint64_t seed, uint32_t n, bool mangle, const char *swap_path,
	     const struct qs_policy *swap_p)
{
	struct qs_dp_policy_set setv = *set0, *set = &setv;
	char smsg[512];
	struct qs_dp_shared *s = aligned_alloc(64, (sizeof(*s) + 63) & ~(size_t)63);
	struct qs_dp_worker *w = aligned_alloc(64, (sizeof(*w) + 63) & ~(size_t)63);
	uint64_t bad = 0, now = 1000000000ull;
	uint32_t i, j;

	assert_non_null(s);
	assert_non_null(w);
	qs_dp_shared_init(s, c);
	qs_dp_worker_init(w, s, QS_KERNEL_SCALAR, 0);
	for (i = 0; i < n; i++) {
		struct qs_dp_flow f;
		struct qs_qrp_hdr h;
		struct qs_qrp_report r;
		uint8_t pkt[512];
		uint32_t len;

		now += rnd(&seed) % 2000000;
		if (swap_path && i == n / 3) {
			if (qs_xdp_load_policy_file(x, swap_path, smsg, sizeof(smsg)) != QS_OK)
				fail_msg("%s", smsg);
			setv.active = swap_p;
		}
		if (swap_path && i == 2 * n / 3) {
			assert_int_equal(qs_xdp_rollback(x, smsg, sizeof(smsg)), QS_OK);
			setv.active = set0->active;
		}
		memset(&h, 0, sizeof(h));
		h.hdr_len = QS_QRP_HDR_LEN;
		if (i % 16 == 0) {
			for (j = 0; j < c->n_backends; j++) {
				memset(&r, 0, sizeof(r));
				h.type = QS_QRP_T_REPORT;
				h.request_id = i + 1;
				r.backend_id = c->be[j].id;
				r.waiting = (uint32_t)(rnd(&seed) % 300);
				r.running = (uint32_t)(rnd(&seed) % 64);
				r.kv_total = 4096;
				r.kv_used = (uint32_t)(rnd(&seed) % 4200);
				r.decode_tps = (uint32_t)(rnd(&seed) % 100000);
				r.ttft_p99_us = (uint32_t)(rnd(&seed) % 5000000);
				r.prefill_pending = (uint32_t)rnd(&seed);
				r.flags = rnd(&seed) % 9 == 0 ? QS_QRP_RF_DRAINING : 0;
				flow(&f, c, c->svc.report_port, false, 200 + j);
				memcpy(f.src_ip, c->be[j].ip4, 4); /* the agent's address */
				len = qs_dp_build_qrp(pkt, sizeof(pkt), &f, &h, &r, 0);
				bad += (uint64_t)both(x, w, s, set, pkt, len, now);
			}
		}
		h.type = rnd(&seed) % 4 == 0 ? QS_QRP_T_CONTINUATION : QS_QRP_T_REQUEST;
		h.flags = rnd(&seed) % 3 ? QS_QRP_F_LAST : 0;
		h.request_id = 1000 + rnd(&seed) % 64;
		h.tenant = (uint16_t)(rnd(&seed) % 3);
		h.prompt_tokens = (uint32_t)(rnd(&seed) >> (rnd(&seed) % 64));
		h.max_new_tokens = (uint32_t)(rnd(&seed) % 100000);
		h.prefix_hash = (uint32_t)(rnd(&seed) % 8);
		h.priority = (uint8_t)(rnd(&seed) % 4);
		h.slo_class = (uint8_t)(rnd(&seed) % 4);
		flow(&f, c, c->svc.port, rnd(&seed) % 3 == 0, (uint32_t)(rnd(&seed) % 50));
		len = qs_dp_build_qrp(pkt, sizeof(pkt), &f, &h, NULL, (uint32_t)(rnd(&seed) % 100));
		if (mangle) {
			/* a truncation, or a flipped byte (checksums may or may not catch it) */
			if (rnd(&seed) & 1)
				len = (uint32_t)(rnd(&seed) % (len + 1));
			else
				pkt[rnd(&seed) % len] ^= (uint8_t)(1u << (rnd(&seed) % 8));
		}
		bad += (uint64_t)both(x, w, s, set, pkt, len, now);
	}
	{
		struct qs_dp_counters xc;

		assert_int_equal(qs_xdp_counters(x, &xc), QS_OK);
		/* runts are not run; the core counted them */
		xc.rx = w->ctr.rx = 0;
		xc.bursts = w->ctr.bursts = 0;
		xc.drop[QS_DP_D_ETH_SHORT] = w->ctr.drop[QS_DP_D_ETH_SHORT] = 0;
		if (memcmp(&xc, &w->ctr, sizeof(xc)) != 0)
			bad++;
	}
	free(s);
	free(w);
	return bad;
}

static uint64_t
traffic(struct qs_xdp *x, const struct qs_dp_config *c, const struct qs_dp_policy_set *set,
	uint64_t seed, uint32_t n, bool mangle)
{
	return traffic_swap(x, c, set, seed, n, mangle, NULL, NULL);
}

static void
test_shapes(void **state)
{
	static const struct {
		uint16_t h[2];
		int n;
	} shapes[] = {{{1}, 1},
		      {{7}, 1},
		      {{64}, 1},
		      {{32, 16}, 2},
		      {{10, 5}, 2},
		      {{33, 17}, 2},
		      {{64, 64}, 2},
		      {{1, 1}, 2},
		      {{9, 64}, 2},
		      {{64, 2}, 2},
		      /* one shape per unrolled kernel at least (xdp.h QS_XDP_T_*) */
		      {{16}, 1},
		      {{17}, 1},
		      {{32}, 1},
		      {{16, 16}, 2},
		      {{17, 16}, 2},
		      {{24, 30}, 2},
		      {{32, 32}, 2},
		      {{33, 1}, 2},
		      {{3, 33}, 2}};
	uint32_t crossed = 0; /* large-shift units seen on both sides of their step */
	size_t k;

	(void)state;
	for (k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
		int extreme;

		for (extreme = 0; extreme < 4; extreme++) {
			static const char *const mode[] = {"random", "extreme", "any-shift",
							   "large-shift"};
			struct qs_dp_config c;
			struct qs_xdp *x = open_xdp(&c);
			struct qs_policy_load_opts lo = {QS_SCHEMA_ROUTER_V1, QS_Q8_KIND_SCORER,
							 NULL};
			struct qs_dp_policy_set set;
			struct qs_policy *p = NULL;
			char path[512], msg[512];
			uint64_t bad;

			snprintf(path, sizeof(path), "%s/shape.q8", tmpdir);
			write_policy(path, shapes[k].h, shapes[k].n, QS_Q8_KIND_SCORER,
				     QS_SCHEMA_ROUTER_V1, 100 + k, extreme);
			if (qs_xdp_load_policy_file(x, path, msg, sizeof(msg)) != QS_OK)
				fail_msg("%s", msg);
			assert_int_equal(qs_policy_load_file(path, &lo, &p, msg, sizeof(msg)),
					 QS_OK);
			memset(&set, 0, sizeof(set));
			set.active = p;
			memset(&big_shift, 0, sizeof(big_shift));
			big_shift.p = extreme == 3 ? p : NULL;
			bad = traffic(x, &c, &set, 7 + k, 1500, false);
			big_shift.p = NULL;
			if (shapes[k].n == 2)
				printf("shape 16-%u-%u-1 %s: %llu differences", shapes[k].h[0],
				       shapes[k].h[1], mode[extreme], (unsigned long long)bad);
			else
				printf("shape 16-%u-1 %s: %llu differences", shapes[k].h[0],
				       mode[extreme], (unsigned long long)bad);
			if (extreme == 3) {
				uint64_t both_sides = big_shift.seen[0] & big_shift.seen[1];

				printf(", %llu large-shift activations > 0, %d units both sides",
				       (unsigned long long)big_shift.nonzero,
				       __builtin_popcountll(both_sides));
				/* the rebuilt constants run only in the two-layer kernels */
				if (shapes[k].n == 2) {
					assert_true(big_shift.nonzero > 0);
					crossed += (uint32_t)__builtin_popcountll(both_sides);
				}
			}
			printf("\n");
			assert_int_equal(bad, 0);
			qs_policy_free(p);
			qs_xdp_close(x);
		}
	}
	printf("two-layer large-shift units crossing their step: %u\n", crossed);
	assert_true(crossed >= 10);
}

/* Policy swap and rollback in the middle of traffic (different shapes and kernels):
 * the per-CPU layer-1 cache is keyed by the publication, so no stale partial sum
 * survives either flip. */
static void
test_swap_cache(void **state)
{
	static const uint16_t ha[] = {32, 16}, hb[] = {20, 30};
	struct qs_dp_config c;
	struct qs_xdp *x = open_xdp(&c);
	struct qs_policy_load_opts lo = {QS_SCHEMA_ROUTER_V1, QS_Q8_KIND_SCORER, NULL};
	struct qs_dp_policy_set set;
	struct qs_policy *pa = NULL, *pb = NULL, *pc = NULL;
	char a[512], b[512], cc[512], msg[512];
	uint64_t bad;

	(void)state;
	snprintf(a, sizeof(a), "%s/swap-a.q8", tmpdir);
	snprintf(b, sizeof(b), "%s/swap-b.q8", tmpdir);
	snprintf(cc, sizeof(cc), "%s/swap-c.q8", tmpdir);
	write_policy(a, ha, 2, QS_Q8_KIND_SCORER, QS_SCHEMA_ROUTER_V1, 41, false);
	write_policy(b, hb, 2, QS_Q8_KIND_SCORER, QS_SCHEMA_ROUTER_V1, 42, true);
	/* same shape as a, other weights: same kernel, only the cache key differs */
	write_policy(cc, ha, 2, QS_Q8_KIND_SCORER, QS_SCHEMA_ROUTER_V1, 43, false);
	assert_int_equal(qs_xdp_load_policy_file(x, a, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_policy_load_file(a, &lo, &pa, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_policy_load_file(b, &lo, &pb, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_policy_load_file(cc, &lo, &pc, msg, sizeof(msg)), QS_OK);
	memset(&set, 0, sizeof(set));
	set.active = pa;
	bad = traffic_swap(x, &c, &set, 77, 3000, false, b, pb);
	printf("swap to another shape and back: %llu differences\n", (unsigned long long)bad);
	assert_int_equal(bad, 0);
	qs_xdp_close(x);
	x = open_xdp(&c);
	assert_int_equal(qs_xdp_load_policy_file(x, a, msg, sizeof(msg)), QS_OK);
	bad = traffic_swap(x, &c, &set, 78, 3000, false, cc, pc);
	printf("swap to the same shape and back: %llu differences\n", (unsigned long long)bad);
	assert_int_equal(bad, 0);
	qs_policy_free(pa);
	qs_policy_free(pb);
	qs_policy_free(pc);
	qs_xdp_close(x);
}

static void
test_malformed(void **state)
{
	struct qs_dp_config c;
	struct qs_xdp *x = open_xdp(&c);
	struct qs_policy_load_opts lo = {QS_SCHEMA_ROUTER_V1, QS_Q8_KIND_SCORER, NULL};
	struct qs_dp_policy_set set;
	struct qs_policy *p = NULL;
	static const uint16_t h[] = {32, 16};
	char path[512], msg[512];
	uint64_t bad;

	(void)state;
	snprintf(path, sizeof(path), "%s/m.q8", tmpdir);
	write_policy(path, h, 2, QS_Q8_KIND_SCORER, QS_SCHEMA_ROUTER_V1, 9, false);
	assert_int_equal(qs_xdp_load_policy_file(x, path, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_policy_load_file(path, &lo, &p, msg, sizeof(msg)), QS_OK);
	memset(&set, 0, sizeof(set));
	set.active = p;
	bad = traffic(x, &c, &set, 99, 6000, true);
	printf("malformed traffic: %llu differences\n", (unsigned long long)bad);
	assert_int_equal(bad, 0);
	qs_policy_free(p);
	qs_xdp_close(x);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refused_config), cmocka_unit_test(test_refused_policies),
	    cmocka_unit_test(test_shapes),	   cmocka_unit_test(test_swap_cache),
	    cmocka_unit_test(test_malformed),
	};
	char cmd[256];
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: test-xdp-bad CONFIG.ini [MKPOLICY]\n");
		return 2;
	}
	if (geteuid() != 0) {
		printf("SKIP: BPF_PROG_TEST_RUN needs root\n");
		return 77;
	}
	cfg_path = argv[1];
	{
		/* one CPU: the program's per-CPU worker is the core's single worker */
		cpu_set_t cpus;

		CPU_ZERO(&cpus);
		CPU_SET(0, &cpus);
		if (sched_setaffinity(0, sizeof(cpus), &cpus) != 0)
			return 2;
	}
	if (!mkdtemp(tmpdir))
		return 2;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		rc = rc ? rc : 1;
	return rc;
}
