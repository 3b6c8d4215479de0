// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * qsteer.bpf.c - qsteer's steering in XDP: the DPDK-free dataplane core
 * (dp/packet.c, dp/core.c) with bursts of one packet, in the kernel.
 *
 * Per packet, in the dataplane's order: parse (Ethernet, two VLAN tags, IPv4 with
 * header checksum, IPv6 without extension headers, UDP, QRP through wire.h); apply
 * a report to the shared backend table; for a request, snapshot the table at the
 * packet's clock, build qs_feat_router_v1 rows for every eligible backend, score
 * them with the int8 policy of the active slot (or a builtin baseline), else the
 * configured fallback baseline; commit (sent counts, prefix table, request-id
 * entry); continuations and cancels follow the request-id table; rewrite with
 * RFC 1624 checksums; XDP_TX, or redirect to the configured egress interface.
 *
 * State: configuration in read-only data (set by the loader before load);
 * backend table shared by all CPUs; worker state, prefix table, request-id table
 * and counters per CPU (the dataplane's per-lcore worker; RSS keeps a flow on one
 * queue, hence one CPU). The policies live in an array map (the active one, the
 * previous, a shadow or canary and its spare); the loader writes an entry no run
 * reads and stores the one word qs_policy_set (docs/xdp.md, "Policy swap"). With a
 * shadow, a request is scored by both policies (the second through one more call of
 * the same global scorer, with its own layer-1 cache) and counted per CPU in
 * qs_shadow; with a canary, qs_canary_pick (shadow.h, qsteer-dp's own function)
 * picks the requests the second policy decides.
 *
 * Verifier notes (6.1 and newer): every loop has a constant bound; the scorer's
 * kernels are global functions (verified once each, for any arguments), each a loop
 * of QS_XDP_KN iterations over straight-line code; the candidate loop's running best
 * and candidate list live in map memory so its states converge, and the baselines'
 * scans run in bpf_loop callbacks (5.17+); atomics need -mcpu=v3 (5.12+); nothing
 * newer is used.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "qsteer/baseline_cost.h"
#include "qsteer/csum.h"
#include "qsteer/int8.h"
#include "qsteer/rng.h"
#include "qsteer/report_seq.h"
#include "qsteer/router_view.h"
#include "qsteer/shadow.h"
#include "qsteer/xdp.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ---- configuration and globals -------------------------------------------------- */

const volatile struct qs_xdp_config qs_cfg = {};

/* Written by the loader through the mmapped .bss: the policy set word (xdp.h
 * QS_XDP_PSET), the operator's drain mask (bit = backend index), and the test clock. */
volatile qs_u32 qs_policy_set;
volatile qs_u64 qs_admin_drain;
volatile qs_u64 qs_test_clock_ns;

/* ---- maps ---------------------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, QS_XDP_POLICY_ENTRIES);
	__type(key, __u32);
	__type(value, struct qs_xdp_policy);
} qs_policy SEC(".maps");

/* Per CPU and backend: the shadow counters (shadow.h), as qsteer-dp's workers keep. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, QS_XDP_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct qs_shadow_row);
} qs_shadow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, QS_XDP_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct qs_xdp_backend_state);
} qs_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct qs_xdp_worker);
} qs_worker SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct qs_xdp_counters);
} qs_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct qs_prefix_table);
} qs_prefix SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, QS_XDP_REQ_BLOCKS);
	__type(key, __u32);
	__type(value, struct qs_xdp_req_block);
} qs_reqtab SEC(".maps");

/* Per-CPU scratch: what does not fit the 512-byte stack. */
struct qs_xdp_scratch {
	struct qs_feat_backend fb[QS_XDP_MAX_BACKENDS];	 /* this packet's view per backend */
	struct qs_feat_backend fbc[QS_XDP_MAX_BACKENDS]; /* a baseline's view */
	qs_u32 cap[QS_XDP_MAX_BACKENDS];
	qs_u8 cand_be[QS_XDP_MAX_BACKENDS];
	qs_u64 gen[QS_XDP_MAX_BACKENDS]; /* report generation per backend (cache key) */
	qs_u64 rq[QS_XDP_GROUPS];	 /* this request's part of layer 1 */
	qs_u64 w1s[QS_XDP_GROUPS];	 /* the kernel's packed layer-1 sums for one backend */
	qs_u64 freshm;			 /* backends with a fresh report */
	struct qs_feat_request rqf;
	struct qs_feat_global glf;
	qs_u8 x[QS_XDP_IN];
	qs_u8 row[QS_XDP_IN];
	qs_u8 rep[QS_QRP_REPORT_LEN];
	qs_u8 hb[QS_QRP_HDR_LEN];
	/* an authenticated report: header, body and tag as on the wire */
	qs_u8 auth[QS_QRP_AUTH_MSG_LEN + QS_QRP_REPORT_TAG_LEN];
	/* this request's masks, kept in map memory so the verifier does not track every
	 * combination of their bits as a separate state */
	qs_u64 cand, fbm, fam;
	qs_u64 fam_any; /* fam before the quality floor (a drop's reason) */
	qs_u64 heardm;	/* backends heard from lately (router_view.h qs_rview_heard) */
	qs_u32 ncand, pad_;
	qs_s32 best, pad2_; /* a baseline's running best */
	qs_u64 bv, qmin, qmax;
	struct qs_qrp_report qrep;
	/* per backend: the key (generation * 2 + fresh + 1, 0: none) fb[i]'s report
	 * fields and fbfl[i] (router_view.h's QS_RVIEW_* flags) were taken for */
	qs_u64 fbkey[QS_XDP_MAX_BACKENDS];
	qs_u8 fbfl[QS_XDP_MAX_BACKENDS];
	struct qs_xdp_backend_state st; /* qs_xdp_be_view's copy */
	qs_u8 kc[QS_XDP_MAX_BACKENDS];	/* the candidates, in index order, for the kernels */
	qs_s32 ks[QS_XDP_MAX_BACKENDS]; /* their scores */
	qs_u32 nk;			/* candidates in kc */
	qs_u64 now;			/* this packet's clock, for qs_xdp_decide */
	qs_u32 how;			/* qs_xdp_decide's HOW_* */
	qs_u32 pset;			/* qs_policy_set as this packet read it, once */
	/* qs_xdp_decide -> qs_xdp_second: the active int8 policy scored a request of a
	 * shadow or canary set (second = 1) with best1 its choice over elig and hit */
	qs_u32 second;
	qs_s32 best1;
	qs_u32 hit;
	qs_u64 elig;
	qs_u32 shadow; /* qs_xdp_second: 0 no shadow scored, 1 it agreed, 2 it disagreed */
	qs_s32 best2;  /* the shadow's choice (backend index, -1: none) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct qs_xdp_scratch);
} qs_scratch SEC(".maps");

/* Per CPU and backend: the backend's part of layer 1 (struct qs_xdp_l1c); entry 0
 * for the active policy, 1 for the second, so scoring both keeps both warm. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct qs_xdp_l1cache);
} qs_l1cache SEC(".maps");

#define HOW_POLICY   0
#define HOW_CANARY   1
#define HOW_BUILTIN  2
#define HOW_FALLBACK 3
#define HOW_NONE     4
#define HOW_FLOOR    5 /* none: every backend the quality floor admits drains */

#define barrier_() asm volatile("" ::: "memory")

static __u32 zero_key;

/* ---- parse (pkt_parse.h, as qs_dp_parse) ------------------------------------------------ */

struct pkt {
	qs_u8 drop; /* enum qs_dp_drop (drop.h), or NONE with cls */
	qs_u8 cls;  /* 0 drop, 1 non-QRP, 2 QRP */
	qs_u8 ipv6;
	qs_u16 l3_off, l4_off, pay_off, pay_len;
	struct qs_qrp_hdr h;
};

/* Global: verified once; the caller sees the offsets as unknown values and checks
 * them again where it uses them. */
__noinline int
qs_xdp_parse(struct xdp_md *ctx, struct pkt *out, struct qs_xdp_scratch *sc)
{
	qs_u8 *data = (qs_u8 *)(long)ctx->data, *end = (qs_u8 *)(long)ctx->data_end;
	const struct qs_pkt_service *svc;
	struct qs_pkt_l4 l = {};
	qs_u8 *udp, *hb;
	int d, e;

	if (!out || !sc)
		return QS_DP_D_ETH_SHORT;
	hb = sc->hb;
	out->cls = 0;
	/* the service's fields are read-only data the loader set (const volatile): read
	 * through a plain pointer clang could see where, it would fold in the zeros
	 * qs_cfg is initialised with; the empty asm hides it (libbpf's barrier_var) */
	svc = (const struct qs_pkt_service *)&qs_cfg.svc;
	asm volatile("" : "+r"(svc));
	d = qs_pkt_parse(data, end, svc, &l);
	out->ipv6 = l.ipv6;
	out->l3_off = l.l3_off;
	out->l4_off = l.l4_off;
	if (d == QS_DP_D_NON_QRP)
		out->cls = 1;
	if (d != QS_DP_D_NONE)
		return d;
	out->pay_off = l.pay_off;
	out->pay_len = l.pay_len;
	if (l.l4_off > QS_PKT_MAX_L4_OFF)
		return QS_DP_D_UDP_HDR; /* unreachable (pkt_parse.h): bounds udp for the verifier */
	udp = data + l.l4_off;
	/* wire.h parses; it sees a copy of the header bytes the frame has */
	__builtin_memset(hb, 0, QS_QRP_HDR_LEN);
	if (out->pay_len >= QS_QRP_HDR_LEN) {
		if (udp + 8 + QS_QRP_HDR_LEN > end)
			return QS_DP_D_UDP_HDR; /* unreachable: ulen <= len */
		__builtin_memcpy(hb, udp + 8, QS_QRP_HDR_LEN);
	}
	e = qs_qrp_parse_hdr(hb, out->pay_len, &out->h);
	if (e != QS_QRP_OK)
		return QS_DP_D_QRP_SHORT + (e - QS_QRP_E_SHORT);
	if ((out->h.type == QS_QRP_T_REPORT) != (l.dport == qs_cfg.svc.report_port)) {
		if (qs_cfg.svc.port != qs_cfg.svc.report_port)
			return QS_DP_D_WRONG_PORT;
	}
	out->cls = 2;
	return QS_DP_D_NONE;
}

/* The report body after the header: wire.h parses a copy. */
static __always_inline int
parse_report(struct xdp_md *ctx, const struct pkt *p, struct qs_xdp_scratch *sc,
	     struct qs_qrp_report *r)
{
	qs_u32 rem = (qs_u32)p->pay_len - p->h.hdr_len, off;
	int e;

	__builtin_memset(sc->rep, 0, sizeof(sc->rep));
	/* a tagged report must hold its tag (dp/packet.c checks the same) */
	if (rem < qs_qrp_report_len(p->h.flags))
		return QS_DP_D_QRP_SHORT;
	if (p->h.flags & QS_QRP_F_AUTH) {
		/* hdr_len is 32 (wire.h): the tag covers the header and the body */
		if (bpf_xdp_load_bytes(ctx, p->pay_off, sc->auth, sizeof(sc->auth)) != 0)
			return QS_DP_D_QRP_SHORT;
		__builtin_memcpy(sc->rep, sc->auth + QS_QRP_HDR_LEN, QS_QRP_REPORT_LEN);
	} else if (rem >= QS_QRP_REPORT_LEN) {
		off = (qs_u32)p->pay_off + p->h.hdr_len;
		if (off > 0xffff)
			return QS_DP_D_QRP_SHORT;
		if (bpf_xdp_load_bytes(ctx, off, sc->rep, QS_QRP_REPORT_LEN) != 0)
			return QS_DP_D_QRP_SHORT;
	}
	e = qs_qrp_parse_report(sc->rep, rem, r);
	if (e != QS_QRP_OK)
		return QS_DP_D_QRP_SHORT + (e - QS_QRP_E_SHORT);
	return QS_DP_D_NONE;
}

/* ---- baselines (baseline_cost.h's costs; the scan over bpf_loop is this program's) --- */

static __always_inline qs_u64
rng_next(qs_u64 *s)
{
	return qs_splitmix64(s);
}

static __always_inline void
baseline_init(struct qs_xdp_baseline *b, qs_u32 kind, qs_u64 seed)
{
	b->rng = seed ^ 0x5bd1e9955bd1e995ull;
	b->rr_next = 0;
	b->kind = kind;
}

static __always_inline qs_u32
popcount64(qs_u64 m)
{
	m = m - ((m >> 1) & 0x5555555555555555ull);
	m = (m & 0x3333333333333333ull) + ((m >> 2) & 0x3333333333333333ull);
	m = (m + (m >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (qs_u32)((m * 0x0101010101010101ull) >> 56);
}

/* Index of the k-th (0-based) set bit of m, -1 if none. */
static __always_inline int
nth_bit(qs_u64 m, qs_u32 k)
{
	qs_u32 j;

	for (j = 0; j < 64; j++) {
		if (j >= k)
			break;
		m &= m - 1;
	}
	if (!m)
		return -1;
	return (int)popcount64((m & -m) - 1);
}

/* qs_baseline_choose over be[0..n) with the eligibility mask and capacities. */
/* bpf_loop bodies of the baselines: verified once each, for any index. */
struct bl_ctx {
	qs_u64 eligible;
	qs_u32 kind;
	qs_u32 phase; /* kv: 1 = min/max pass */
	qs_u32 n;
	qs_u32 rr_next;
	int found;
};

static long
bl_rr(__u32 i, void *arg)
{
	struct bl_ctx *c = arg;
	qs_u32 k;

	if (c->n == 0)
		return 1;
	k = (c->rr_next + i) % c->n;
	if (k < 64 && (c->eligible >> k & 1)) {
		c->found = (int)k;
		return 1;
	}
	return 0;
}

static long
bl_scan(__u32 i, void *arg)
{
	struct bl_ctx *c = arg;
	struct qs_xdp_scratch *sc = bpf_map_lookup_elem(&qs_scratch, &zero_key);
	const struct qs_feat_backend *be;
	qs_u64 v, q;
	qs_s32 best;

	if (!sc || i >= QS_XDP_MAX_BACKENDS)
		return 1;
	if (!(c->eligible >> i & 1))
		return 0;
	be = &sc->fbc[i];
	best = sc->best;
	switch (c->kind) {
	case QS_XDP_B_SED: {
		qs_u64 ci = sc->cap[i] ? sc->cap[i] : 1, cb = 1;

		if (best >= 0 && sc->cap[best & (QS_XDP_MAX_BACKENDS - 1)])
			cb = sc->cap[best & (QS_XDP_MAX_BACKENDS - 1)];
		v = qs_bl_outstanding(be);
		if (best < 0 || qs_bl_sed_better(v, ci, sc->bv, cb)) {
			sc->best = (qs_s32)i;
			sc->bv = v;
		}
		return 0;
	}
	case QS_XDP_B_KV: {
		qs_u64 qmin = sc->qmin, qmax = sc->qmax;

		q = qs_bl_kv_queue(be);
		if (c->phase == 1) {
			if (q < qmin)
				sc->qmin = q;
			if (q > qmax)
				sc->qmax = q;
			return 0;
		}
		v = qs_bl_kv_score(be, qmin, qmax, QS_BL_KV_W_QUEUE, QS_BL_KV_W_KV,
				   QS_BL_KV_W_PREFIX);
		if (best < 0 || v > sc->bv) {
			sc->best = (qs_s32)i;
			sc->bv = v;
		}
		return 0;
	}
	case QS_XDP_B_LOT:
		v = qs_bl_token_load(be);
		break;
	case QS_XDP_B_JSQ:
		v = qs_bl_jsq(be);
		break;
	default: /* lor */
		v = qs_bl_outstanding(be);
		break;
	}
	if (best < 0 || v < sc->bv) {
		sc->best = (qs_s32)i;
		sc->bv = v;
	}
	return 0;
}

/*
 * A global function: the verifier checks it once, for any arguments. The running
 * best (index and value) lives in scratch map memory, whose contents the verifier
 * does not track, so the loops below converge instead of forking one state per
 * possible best index.
 */
__noinline int
qs_xdp_baseline_choose(struct qs_xdp_baseline *r, struct qs_xdp_scratch *sc, qs_u32 n,
		       qs_u64 eligible)
{
	const struct qs_feat_backend *be;
	qs_u32 m, kind;

	if (!r || !sc)
		return -1;
	be = sc->fbc;
	if (n > QS_XDP_MAX_BACKENDS)
		n = QS_XDP_MAX_BACKENDS;
	if (n < 64)
		eligible &= (1ull << n) - 1;
	if (!eligible || n == 0)
		return -1;
	m = popcount64(eligible);
	kind = r->kind;
	sc->best = -1;
	sc->bv = 0;
	if (kind == QS_XDP_B_RANDOM)
		return nth_bit(eligible, (qs_u32)(rng_next(&r->rng) % m));
	if (kind == QS_XDP_B_RR) {
		struct bl_ctx c = {eligible, kind, 0, n, r->rr_next, -1};

		bpf_loop(n, bl_rr, &c, 0);
		if (c.found >= 0)
			r->rr_next = ((qs_u32)c.found + 1) % n;
		return c.found;
	}
	if (kind == QS_XDP_B_P2C) {
		qs_u32 a, b;
		int ia, ib, t;

		if (m == 1)
			return nth_bit(eligible, 0);
		a = (qs_u32)(rng_next(&r->rng) % m);
		b = (qs_u32)(rng_next(&r->rng) % (m - 1));
		if (b >= a)
			b++;
		ia = nth_bit(eligible, a);
		ib = nth_bit(eligible, b);
		if (ib < ia) {
			t = ia;
			ia = ib;
			ib = t;
		}
		if (ia < 0 || ib < 0 || ia >= QS_XDP_MAX_BACKENDS || ib >= QS_XDP_MAX_BACKENDS)
			return -1;
		return qs_bl_outstanding(&be[ib]) < qs_bl_outstanding(&be[ia]) ? ib : ia;
	}
	{
		struct bl_ctx c = {eligible, kind, 0, n, 0, -1};

		if (kind == QS_XDP_B_KV) {
			sc->qmin = ~0ull;
			sc->qmax = 0;
			c.phase = 1;
			bpf_loop(n, bl_scan, &c, 0);
			c.phase = 0;
		}
		bpf_loop(n, bl_scan, &c, 0);
	}
	return sc->best;
}

/* ---- the int8 scorer -------------------------------------------------------------- */

/*
 * Layer 1 is split by what its inputs depend on (integer addition is exact, so the
 * split is bit-exact with qs_int8_dot): acc = rq + part[backend] (+ ph for the one
 * backend with the prefix hit, folded into its part around the kernels: ph_fold),
 * where rq holds the request and global features' products (once per packet,
 * qs_xdp_rq_part) and part the backend features' (per CPU and backend, recomputed
 * only when those features change, qs_xdp_be_refresh).
 * Then, with two hidden layers, each layer-1 unit is tested against its threshold
 * (xdp.h t1) and only a positive one is requantized and multiplied into layer 2 in
 * SWAR (three outputs per multiply, input-major, six accumulators in registers);
 * then the output layer as layer 2's units are requantized. xdp.h explains the
 * packing, docs/xdp.md the measurements behind each choice.
 */

/* qs_int8_requant of field value f (acc = bias + f - 2^20) minus 127, in [-127, 0],
 * with c folding bias, offset and rounding: the same 64-bit value, the same shift,
 * the same clamp. The two-layer kernels accumulate (x - 127) * w_out from the output
 * bias plus 127 * the sum of w_out (xdp.h out_bias_l2), one addition less per layer-2
 * unit, the same integer. */
static __always_inline qs_s64
rq_unit_m127(qs_u64 f, qs_s64 m, qs_s64 c, qs_u32 s)
{
	qs_s64 v = ((qs_s64)f * m + c) >> s, t, n;

	/* the clamp to [0, 127] without a branch: with varied traffic a unit's side of
	 * the clamp is not predictable, and each miss costs more than these five ALU
	 * operations. v >> 63 is all ones for a negative v (arithmetic shift); then
	 * t = v - 127 < 0 keeps v, else 127. No test, so the verifier has no states to
	 * track either. QS_FEAT_OPAQUE: clang would turn the masks back into branches. */
	n = v >> 63;
	QS_FEAT_OPAQUE(n);
	v &= ~n;
	t = v - QS_INT8_ACT_MAX;
	n = t >> 63;
	QS_FEAT_OPAQUE(n);
	return t & n;
}

/* qs_int8_requant of field value f: the one-hidden-layer kernels' activation. */
static __always_inline qs_s64
rq_unit(qs_u64 f, qs_s64 m, qs_s64 c, qs_u32 s)
{
	return QS_INT8_ACT_MAX + rq_unit_m127(f, m, c, s);
}

#define FIELD(W, K)                                                                                \
	((K) == 2 ? (W) >> (2 * QS_XDP_FIELD_BITS)                                                 \
		  : ((W) >> (QS_XDP_FIELD_BITS * (K))) & QS_XDP_FIELD_MASK)

/* Layer 1 for one backend into a1[0..NU1) (the one-hidden-layer kernels). */
#define K_LAYER1(NG1, NU1)                                                                         \
	do {                                                                                       \
		qs_u32 g_, u_;                                                                     \
		_Pragma("unroll") for (g_ = 0; g_ < (NG1); g_++)                                   \
		{                                                                                  \
			qs_u64 w_ = sc->rq[g_] + c->part[g_];                                      \
			_Pragma("unroll") for (u_ = 0; u_ < 3; u_++)                               \
			{                                                                          \
				if (g_ * 3 + u_ < (NU1))                                           \
					a1[g_ * 3 + u_] = (qs_u8)rq_unit(                          \
					    FIELD(w_, u_), pol->m1[g_ * 3 + u_],                   \
					    pol->c1[g_ * 3 + u_], pol->s1[g_ * 3 + u_]);           \
			}                                                                          \
			barrier_();                                                                \
		}                                                                                  \
	} while (0)

/* Six layer-2 groups from G0 (fewer at the end): input I_'s products, when it is not 0,
 * into named accumulators (clang keeps them in registers). */
#define K_L2_ACC(G, A)                                                                             \
	do {                                                                                       \
		if ((G) < (NGB_)) {                                                                \
			A += x_ * pol->w2[I_][(G0_) + (G)];                                        \
			/* in order, one product live at a time: the scheduler would               \
			 * otherwise hoist every load and spill */                                 \
			asm volatile("" : "+r"(A)::"memory");                                      \
		}                                                                                  \
	} while (0)
#define K_L2_ACC6()                                                                                \
	do {                                                                                       \
		K_L2_ACC(0, A0);                                                                   \
		K_L2_ACC(1, A1);                                                                   \
		K_L2_ACC(2, A2);                                                                   \
		K_L2_ACC(3, A3);                                                                   \
		K_L2_ACC(4, A4);                                                                   \
		K_L2_ACC(5, A5);                                                                   \
	} while (0)
#define K_L2_OUT(G, A)                                                                             \
	do {                                                                                       \
		qs_u32 k_, j_;                                                                     \
		if ((G) < (NGB_)) {                                                                \
			_Pragma("unroll") for (k_ = 0; k_ < 3; k_++)                               \
			{                                                                          \
				j_ = ((G0_) + (G)) * 3 + k_;                                       \
				if (j_ < (NU2_)) {                                                 \
					out += rq_unit_m127(FIELD(A, k_), pol->m2[j_],             \
							    pol->c2[j_], pol->s2[j_]) *            \
					       pol->w_out[j_];                                     \
					asm volatile("" : "+r"(out)::"memory");                    \
				}                                                                  \
			}                                                                          \
		}                                                                                  \
	} while (0)
#define K_L2_OUT6()                                                                                \
	do {                                                                                       \
		K_L2_OUT(0, A0);                                                                   \
		K_L2_OUT(1, A1);                                                                   \
		K_L2_OUT(2, A2);                                                                   \
		K_L2_OUT(3, A3);                                                                   \
		K_L2_OUT(4, A4);                                                                   \
		K_L2_OUT(5, A5);                                                                   \
	} while (0)

/* Input I's products into the six accumulators of the first block, written out so
 * that the accumulators stay in the same six registers on both sides of the unit's
 * zero test (compiled from C, the allocator rotated them through copies and a spill
 * at every join). */
#define K_W2_OFF(I, G)                                                                             \
	(__builtin_offsetof(struct qs_xdp_policy, w2) + ((I)*QS_XDP_GROUPS + (G)) * 8)
#define K_L2_ASM6(I)                                                                               \
	do {                                                                                       \
		qs_u64 t_;                                                                         \
		asm volatile("%[t] = *(u64 *)(%[p] + %[o0])\n\t"                                   \
			     "%[t] *= %[x]\n\t"                                                    \
			     "%[a0] += %[t]\n\t"                                                   \
			     "%[t] = *(u64 *)(%[p] + %[o1])\n\t"                                   \
			     "%[t] *= %[x]\n\t"                                                    \
			     "%[a1] += %[t]\n\t"                                                   \
			     "%[t] = *(u64 *)(%[p] + %[o2])\n\t"                                   \
			     "%[t] *= %[x]\n\t"                                                    \
			     "%[a2] += %[t]\n\t"                                                   \
			     "%[t] = *(u64 *)(%[p] + %[o3])\n\t"                                   \
			     "%[t] *= %[x]\n\t"                                                    \
			     "%[a3] += %[t]\n\t"                                                   \
			     "%[t] = *(u64 *)(%[p] + %[o4])\n\t"                                   \
			     "%[t] *= %[x]\n\t"                                                    \
			     "%[a4] += %[t]\n\t"                                                   \
			     "%[t] = *(u64 *)(%[p] + %[o5])\n\t"                                   \
			     "%[t] *= %[x]\n\t"                                                    \
			     "%[a5] += %[t]\n\t"                                                   \
			     : [a0] "+r"(A0), [a1] "+r"(A1), [a2] "+r"(A2), [a3] "+r"(A3),         \
			       [a4] "+r"(A4), [a5] "+r"(A5), [t] "=&r"(t_)                         \
			     : [p] "r"(pol), [x] "r"(x_), [o0] "i"(K_W2_OFF(I, 0)),                \
			       [o1] "i"(K_W2_OFF(I, 1)), [o2] "i"(K_W2_OFF(I, 2)),                 \
			       [o3] "i"(K_W2_OFF(I, 3)), [o4] "i"(K_W2_OFF(I, 4)),                 \
			       [o5] "i"(K_W2_OFF(I, 5)));                                          \
	} while (0)

/*
 * Layer 1 fused with layer 2's first block (groups 0..5). A unit is 0 exactly when
 * its field is below its threshold t1 (xdp.h), which the packed word shifted in
 * place compares against without extracting the field: a zero unit costs a shift, a
 * load and one test, with no multiply. Only a positive unit is requantized, clamped
 * above and multiplied into the block. The one test per unit replaces the lower
 * clamp, the store and reload of the activation and layer 2's zero test; it
 * mispredicts where the zero test did, and skips more. Units for later blocks
 * (H2 > 18) are also kept in a1, which starts zeroed. The two-layer policies' m1, c1,
 * s1 give the requantized value minus 127 (xdp.h), the upper clamp's operand, so
 * the subtraction is not done per unit.
 */
#define K_L1_UNIT(G, K, KEEP)                                                                      \
	do {                                                                                       \
		if (I_ < (NU1_)) {                                                                 \
			qs_u64 w_ = w1p_[G], h_;                                                   \
			h_ = (K) == 0	? w_ << QS_XDP_FIELD_TOP                                   \
			     : (K) == 1 ? w_ << (QS_XDP_FIELD_TOP - QS_XDP_FIELD_BITS)             \
					: w_;                                                      \
			if (h_ >= pol->t1[I_]) {                                                   \
				qs_u64 f_ = (K) == 2 ? h_ >> (2 * QS_XDP_FIELD_BITS)               \
						     : h_ >> QS_XDP_FIELD_TOP;                     \
				qs_s64 t_ = ((qs_s64)f_ * pol->m1[I_] + pol->c1[I_]) >>            \
					    pol->s1[I_],                                           \
				       n_ = t_ >> 63;                                              \
				qs_u64 x_;                                                         \
				QS_FEAT_OPAQUE(n_);                                                \
				x_ = (qs_u64)(QS_INT8_ACT_MAX + (t_ & n_));                        \
				if (KEEP)                                                          \
					a1[I_] = (qs_u8)x_;                                        \
				K_L2_ASM6(I_);                                                     \
			}                                                                          \
		}                                                                                  \
	} while (0)

/* Layer 2's block from G0 over the activations kept in a1 (blocks after the first). */
#define K_L2_BLOCK(G0, NGB, NI, NU2)                                                               \
	do {                                                                                       \
		const qs_u32 G0_ = (G0), NGB_ = (NGB), NU2_ = (NU2);                               \
		qs_u64 A0 = QS_XDP_OFFSET_WORD, A1 = A0, A2 = A0, A3 = A0, A4 = A0, A5 = A0;       \
		qs_u32 I_;                                                                         \
		_Pragma("unroll") for (I_ = 0; I_ < (NI); I_++)                                    \
		{                                                                                  \
			qs_u64 x_ = a1[I_];                                                        \
			if (x_)                                                                    \
				K_L2_ACC6();                                                       \
		}                                                                                  \
		K_L2_OUT6();                                                                       \
	} while (0)

#define K_MIN_(a, b) ((a) < (b) ? (a) : (b))

/*
 * The kernels are global functions, verified once each. Each scores up to
 * QS_XDP_KN candidates per call, sc->kc[j0 ..] into sc->ks[j0 ..], in a loop that is
 * not unrolled: a call and its return cost ~7 ns on a host with return-thunk
 * mitigations (measured: 64 empty calls per packet, +470 ns), while a second copy of
 * the body (two candidates written out) cost more in instruction cache than the call
 * it saved. The verifier walks the loop's QS_XDP_KN iterations; it could not take
 * all 64 (1M instructions).
 */
#define QS_XDP_KN 4

/* The candidate of iteration kn_ (its cache entry c, whose part holds the prefix-hit
 * column too if it has the hit: qs_xdp_score_all), or stop. */
#define K_CAND()                                                                                   \
	qs_u32 kj_ = (j0 + kn_) & (QS_XDP_MAX_BACKENDS - 1);                                       \
	const struct qs_xdp_l1c *c;                                                                \
	if (kn_ >= n)                                                                              \
		break;                                                                             \
	c = &lc->e[sc->kc[kj_] & (QS_XDP_MAX_BACKENDS - 1)]

/* A two-hidden-layer kernel. */
#define K_DEF2(NAME, NG1, NU1, NG2, NU2)                                                           \
	__noinline int NAME(const struct qs_xdp_policy *pol, struct qs_xdp_scratch *sc,            \
			    const struct qs_xdp_l1cache *lc, qs_u32 j0, qs_u32 n)                  \
	{                                                                                          \
		qs_u64 a1q_[(NG2) > 6 ? ((NG1)*3 + 7) / 8 : 1];                                    \
		qs_u64 w1st_[(NG1) <= 11 ? (NG1) : 1], *w1p_;                                      \
		qs_u8 *a1 = (qs_u8 *)a1q_;                                                         \
		qs_s64 out;                                                                        \
		qs_u32 b_, g_, kn_;                                                                \
                                                                                                   \
		if (!pol || !sc || !lc)                                                            \
			return 0;                                                                  \
		_Pragma("clang loop unroll(disable)") for (kn_ = 0; kn_ < QS_XDP_KN; kn_++)        \
		{                                                                                  \
			K_CAND();                                                                  \
			out = pol->out_bias_l2;                                                    \
			/* the packed layer-1 sums first, so the fused loop needs                  \
			 * neither rq nor c: on the stack (addressed from the frame                \
			 * pointer, no register held), in scratch for the widest                   \
			 * kernel (the stack is shared by the whole call chain) */                 \
			w1p_ = (NG1) <= 11 ? w1st_ : sc->w1s;                                      \
			_Pragma("unroll") for (g_ = 0; g_ < (NG1); g_++) w1p_[g_] =                \
			    sc->rq[g_] + c->part[g_];                                              \
			if ((NG1) > 11)                                                            \
				asm volatile("" : "+r"(w1p_) : : "memory");                        \
			if ((NG2) > 6) {                                                           \
				_Pragma("unroll") for (g_ = 0; g_ < ((NG1)*3 + 7) / 8; g_++)       \
				    a1q_[g_] = 0;                                                  \
			}                                                                          \
			asm volatile("" : : "r"(a1q_), "r"(w1st_) : "memory");                     \
			{                                                                          \
				const qs_u32 G0_ = 0, NGB_ = K_MIN_(6, (NG2)), NU2_ = (NU2),       \
					     NU1_ = (NU1);                                         \
				qs_u64 A0 = QS_XDP_OFFSET_WORD, A1 = A0, A2 = A0, A3 = A0,         \
				       A4 = A0, A5 = A0;                                           \
				qs_u32 I_;                                                         \
				_Pragma("unroll") for (g_ = 0; g_ < (NG1); g_++)                   \
				{                                                                  \
					/* the packed word is reloaded per unit: kept              \
					 * in a register it would push an                          \
					 * accumulator onto the stack */                           \
					I_ = g_ * 3;                                               \
					K_L1_UNIT(g_, 0, (NG2) > 6);                               \
					barrier_();                                                \
					I_ = g_ * 3 + 1;                                           \
					K_L1_UNIT(g_, 1, (NG2) > 6);                               \
					barrier_();                                                \
					I_ = g_ * 3 + 2;                                           \
					K_L1_UNIT(g_, 2, (NG2) > 6);                               \
					barrier_();                                                \
				}                                                                  \
				K_L2_OUT6();                                                       \
			}                                                                          \
			barrier_();                                                                \
			_Pragma("unroll") for (b_ = 6; b_ < (NG2); b_ += 6)                        \
			{                                                                          \
				K_L2_BLOCK(b_, K_MIN_(6, (NG2)-b_), NU1, NU2);                     \
				barrier_();                                                        \
			}                                                                          \
			sc->ks[kj_] = (qs_s32)out;                                                 \
		}                                                                                  \
		return 0;                                                                          \
	}

/* A one-hidden-layer kernel. */
#define K_DEF1(NAME, NG1, NU1)                                                                     \
	__noinline int NAME(const struct qs_xdp_policy *pol, struct qs_xdp_scratch *sc,            \
			    const struct qs_xdp_l1cache *lc, qs_u32 j0, qs_u32 n)                  \
	{                                                                                          \
		qs_u8 a1[(NG1)*3];                                                                 \
		qs_s64 out;                                                                        \
		qs_u32 j2_, kn_;                                                                   \
                                                                                                   \
		if (!pol || !sc || !lc)                                                            \
			return 0;                                                                  \
		/* a1 lives in memory: the barriers keep the scheduler from holding                \
		 * every activation in a register (the stack would overflow) */                    \
		asm volatile("" : : "r"(a1) : "memory");                                           \
		_Pragma("clang loop unroll(disable)") for (kn_ = 0; kn_ < QS_XDP_KN; kn_++)        \
		{                                                                                  \
			K_CAND();                                                                  \
			out = pol->out_bias;                                                       \
			K_LAYER1(NG1, NU1);                                                        \
			_Pragma("unroll") for (j2_ = 0; j2_ < (NU1); j2_++)                        \
			{                                                                          \
				out += (qs_s64)a1[j2_] * pol->w_out[j2_];                          \
				asm volatile("" : "+r"(out)::"memory");                            \
			}                                                                          \
			sc->ks[kj_] = (qs_s32)out;                                                 \
		}                                                                                  \
		return 0;                                                                          \
	}

K_DEF2(qs_xdp_k_16_16, 6, 16, 6, 16)
K_DEF2(qs_xdp_k_32_16, 11, 32, 6, 16)
K_DEF2(qs_xdp_k_32_32, 11, 32, 11, 32)
K_DEF2(qs_xdp_k_64_64, 22, 64, 22, 64)
K_DEF1(qs_xdp_k_16, 6, 16)
K_DEF1(qs_xdp_k_32, 11, 32)
K_DEF1(qs_xdp_k_64, 22, 64)

/* The request and global features' part of layer 1 (plus the field offsets), once per
 * packet. row holds qs_feat_router_v1's row for this request. Inlined into
 * qs_xdp_decide: a call and return cost ~7 ns here (see the kernels). */
static __always_inline int
qs_xdp_rq_part(const struct qs_xdp_policy *pol, struct qs_xdp_scratch *sc)
{
	qs_u32 g, i, n;

	if (!pol || !sc)
		return 0;
	n = pol->g1;
	for (g = 0; g < QS_XDP_GROUPS; g++) {
		qs_u64 w = QS_XDP_OFFSET_WORD;

		if (g >= n)
			break;
#pragma unroll
		for (i = 0; i < QS_XDP_IN; i++)
			if (QS_XDP_FEAT_REQ_MASK & (1u << i))
				w += (qs_u64)sc->row[i] * pol->w1[i][g];
		sc->rq[g] = w;
	}
	return 0;
}

#define BE_IDX_(F) ((F)-QS_XDP_FEAT_BE_FIRST)

/* Only this CPU's sent counts for backend i moved (the cache key is otherwise the
 * same): two features, and if they changed, their two columns' difference (exact
 * integer arithmetic). Inlined into the candidate loop it saved one call per packet
 * (~10 ns) but cost the verifier 107k more instructions, so it stays in the refresh. */
static __always_inline void
be_sent(const struct qs_xdp_policy *pol, struct qs_xdp_scratch *sc, struct qs_xdp_l1c *c, qs_u32 i)
{
	qs_u8 *x = sc->x;
	qs_u32 g, n = pol->g1;
	qs_s64 dr, dt;

	i &= QS_XDP_MAX_BACKENDS - 1;
	qs_xdp_feat_sent(&sc->fb[i], x);
	c->sent_reqs = sc->fb[i].sent_reqs;
	c->sent_tokens = sc->fb[i].sent_tokens;
	dr = (qs_s64)x[QS_FR_SENT_REQS_LOG] - c->feat[BE_IDX_(QS_FR_SENT_REQS_LOG)];
	dt = (qs_s64)x[QS_FR_SENT_TOKENS_LOG] - c->feat[BE_IDX_(QS_FR_SENT_TOKENS_LOG)];
	if (!dr && !dt)
		return;
	c->feat[BE_IDX_(QS_FR_SENT_REQS_LOG)] = x[QS_FR_SENT_REQS_LOG];
	c->feat[BE_IDX_(QS_FR_SENT_TOKENS_LOG)] = x[QS_FR_SENT_TOKENS_LOG];
	for (g = 0; g < QS_XDP_GROUPS; g++) {
		if (g >= n)
			break;
		c->part[g] += (qs_u64)dr * pol->w1[QS_FR_SENT_REQS_LOG][g] +
			      (qs_u64)dt * pol->w1[QS_FR_SENT_TOKENS_LOG][g];
	}
}

/* Global: backend i's features and, when they changed, its part of layer 1. */
__noinline int
qs_xdp_be_refresh(const struct qs_xdp_policy *pol, struct qs_xdp_scratch *sc, struct qs_xdp_l1c *c,
		  qs_u32 i)
{
	qs_u32 g, k, n, same, fresh;
	qs_u64 gen;
	qs_u8 *x;

	if (!pol || !sc || !c)
		return 0;
	i &= QS_XDP_MAX_BACKENDS - 1;
	x = sc->x;
	gen = sc->gen[i];
	fresh = (qs_u32)(sc->freshm >> i) & 1;
	n = pol->g1;
	if (c->version == pol->version && c->gen == gen && c->fresh == fresh) {
		be_sent(pol, sc, c, i);
		return 0;
	}
	qs_feat_router_v1(&sc->rqf, &sc->fb[i], &sc->glf, x);
	same = c->version == pol->version;
#pragma unroll
	for (k = 0; k < QS_XDP_FEAT_BE_N; k++)
		same &= c->feat[k] == x[QS_XDP_FEAT_BE_FIRST + k];
	c->gen = gen;
	c->fresh = fresh;
	c->sent_reqs = sc->fb[i].sent_reqs;
	c->sent_tokens = sc->fb[i].sent_tokens;
	if (same)
		return 0;
	c->version = pol->version;
#pragma unroll
	for (k = 0; k < QS_XDP_FEAT_BE_N; k++)
		c->feat[k] = x[QS_XDP_FEAT_BE_FIRST + k];
	for (g = 0; g < QS_XDP_GROUPS; g++) {
		qs_u64 w = 0;

		if (g >= n)
			break;
#pragma unroll
		for (k = QS_XDP_FEAT_BE_FIRST; k <= QS_XDP_FEAT_BE_LAST; k++)
			w += (qs_u64)x[k] * pol->w1[k][g];
		c->part[g] = w;
	}
	return 0;
}

/*
 * The prefix-hit column (pol->ph) added to (out = 0) or taken out of (out = 1) the
 * cached part of the backend with the hit, around the kernels: they then add nothing
 * per candidate for it (three instructions per group), and integer addition makes
 * the round trip exact. The entry is this CPU's, and nothing reads it in between.
 */
static __always_inline void
ph_fold(const struct qs_xdp_policy *pol, struct qs_xdp_l1cache *lc, qs_u32 hit, int out)
{
	struct qs_xdp_l1c *c;
	qs_u32 g, n = pol->g1;

	/* a fresh copy, tested and used: clang would otherwise index with the copy it
	 * kept from the other call, whose bounds the verifier learnt elsewhere */
	asm volatile("" : "+r"(hit));
	if (hit >= QS_XDP_MAX_BACKENDS)
		return;
	c = &lc->e[hit];
	for (g = 0; g < QS_XDP_GROUPS; g++) {
		if (g >= n)
			break;
		if (out)
			c->part[g] -= pol->ph[g];
		else
			c->part[g] += pol->ph[g];
	}
}

/* Global: score every candidate in elig; the best (first of the highest scores) goes
 * to sc->best (-1: none). First each candidate's cache entry is brought up to date and
 * the candidate listed, then the tier's kernel scores the list QS_XDP_KN at a time,
 * then the best is taken in index order. The counts and the running best live in map
 * memory, which the verifier does not track, so the loops' states converge. */
__noinline int
qs_xdp_score_all(const struct qs_xdp_policy *pol, struct qs_xdp_scratch *sc,
		 struct qs_xdp_l1cache *lc, qs_u64 elig, qs_u32 hit)
{
	qs_u32 i, n, tier;

	if (!pol || !sc || !lc)
		return 0;
	sc->best = -1;
	sc->bv = 0;
	sc->nk = 0;
	for (i = 0; i < QS_XDP_MAX_BACKENDS; i++) {
		struct qs_xdp_l1c *c = &lc->e[i];

		if (!(elig >> i))
			break;
		if (!(elig >> i & 1))
			continue;
		if (c->version != pol->version || c->gen != sc->gen[i] ||
		    c->fresh != ((qs_u32)(sc->freshm >> i) & 1) ||
		    c->sent_reqs != sc->fb[i].sent_reqs || c->sent_tokens != sc->fb[i].sent_tokens)
			qs_xdp_be_refresh(pol, sc, c, i);
		n = *(volatile qs_u32 *)&sc->nk;
		sc->kc[n & (QS_XDP_MAX_BACKENDS - 1)] = (qs_u8)i;
		sc->nk = n + 1;
	}
	/* only a candidate's part is read by the kernels: for any other backend the
	 * round trip is two passes over its entry for nothing */
	if (!(elig >> (hit & (QS_XDP_MAX_BACKENDS - 1)) & 1))
		hit = QS_XDP_MAX_BACKENDS;
	ph_fold(pol, lc, hit, 0);
	for (i = 0; i < QS_XDP_MAX_BACKENDS; i += QS_XDP_KN) {
		n = *(volatile qs_u32 *)&sc->nk;
		if (i >= n)
			break;
		n -= i;
		/* read here, not kept from before the loop: a register the verifier
		 * knows per branch would split every later iteration into one state
		 * per tier */
		tier = *(volatile const qs_u32 *)&pol->tier;
		if (tier == QS_XDP_T_H2_32_16)
			qs_xdp_k_32_16(pol, sc, lc, i, n);
		else if (tier == QS_XDP_T_H2_16_16)
			qs_xdp_k_16_16(pol, sc, lc, i, n);
		else if (tier == QS_XDP_T_H2_32_32)
			qs_xdp_k_32_32(pol, sc, lc, i, n);
		else if (tier == QS_XDP_T_H2_64_64)
			qs_xdp_k_64_64(pol, sc, lc, i, n);
		else if (tier == QS_XDP_T_H1_16)
			qs_xdp_k_16(pol, sc, lc, i, n);
		else if (tier == QS_XDP_T_H1_32)
			qs_xdp_k_32(pol, sc, lc, i, n);
		else
			qs_xdp_k_64(pol, sc, lc, i, n);
	}
	ph_fold(pol, lc, hit, 1);
	for (i = 0; i < QS_XDP_MAX_BACKENDS; i++) {
		qs_s32 s;

		if (i >= *(volatile qs_u32 *)&sc->nk)
			break;
		s = sc->ks[i];
		if (sc->best < 0 || s > (qs_s32)sc->bv) {
			sc->best = (qs_s32)sc->kc[i];
			sc->bv = (qs_u64)(qs_u32)s;
		}
	}
	return 0;
}

/* ---- request-id table (dp/core.c req_*) ------------------------------------------------ */

/* Set number set of this CPU's table (xdp.h: blocks of QS_XDP_REQ_BLOCK_SETS). */
static __always_inline struct qs_reqtab_set *
req_lookup(qs_u32 set)
{
	qs_u32 key = set / QS_XDP_REQ_BLOCK_SETS;
	struct qs_xdp_req_block *b = bpf_map_lookup_elem(&qs_reqtab, &key);

	return b ? &b->s[set & (QS_XDP_REQ_BLOCK_SETS - 1)] : NULL;
}

/* reqtab.h's insert, with the dataplane's counters */
static __always_inline void
req_insert(struct qs_reqtab_set *set, struct qs_xdp_counters *ctr, qs_u64 id, qs_u16 tenant,
	   qs_u16 be, qs_u64 now, qs_u64 ttl, int done)
{
	enum qs_reqtab_way how;
	int v = qs_reqtab_way(set, id, tenant, now, ttl, &how);

	if (how == QS_REQTAB_EXPIRED)
		ctr->reqtab_expired++;
	else if (how >= QS_REQTAB_EVICT_DONE)
		ctr->reqtab_evict++;
	qs_reqtab_put(set, v, id, tenant, be, now, done);
	ctr->reqtab_insert++;
}

/* ---- backend table ------------------------------------------------------------------ */

static __always_inline int
backend_index(qs_u16 id)
{
	qs_u32 i;

	for (i = 0; i < QS_XDP_MAX_BACKENDS; i++) {
		if (i >= qs_cfg.n_backends)
			break;
		if (qs_cfg.be[i].id == id)
			return (int)i;
	}
	return -1;
}

/* A report for backend idx, from its configured source (report_src.h) and, when
 * keyed, with a valid tag. 0: a replay (report_seq.h, as dp/core.c). */
static __always_inline int
apply_report(struct qs_xdp_counters *ctr, int idx, const struct pkt *p,
	     const struct qs_qrp_report *rep, qs_u64 now)
{
	struct qs_xdp_backend_state *e;
	qs_u32 key, seq;

	key = (qs_u32)idx;
	e = bpf_map_lookup_elem(&qs_backends, &key);
	if (!e)
		return 1;
	seq = *(volatile qs_u32 *)&e->seq;
	switch (qs_report_seq_check(e->valid, e->report_seq, p->h.request_id,
				    qs_cfg.be[key & (QS_XDP_MAX_BACKENDS - 1)].report_key.has_key,
				    e->last_ns, now, qs_cfg.report_max_age_ns)) {
	case QS_REPORT_SEQ_REPLAY:
		return 0;
	case QS_REPORT_SEQ_OLD:
		ctr->reports_ignored++;
		return 1;
	default:
		break;
	}
	if ((seq & 1) || __sync_val_compare_and_swap(&e->seq, seq, seq + 1) != seq) {
		ctr->reports_ignored++;
		return 1;
	}
	e->rep = *rep;
	e->report_seq = p->h.request_id;
	e->last_ns = now;
	e->generation++;
	e->valid = 1;
	__sync_fetch_and_add(&e->seq, 1);
	return 1;
}

/* Is the report in ctx from backend bi's configured source? */
static __always_inline int
report_from_source(struct xdp_md *ctx, const struct pkt *p, int bi)
{
	qs_u8 src[16], sp[2];

	if (bi < 0 || bi >= QS_XDP_MAX_BACKENDS)
		return 0;
	if (bpf_xdp_load_bytes(ctx, p->l4_off, sp, 2) != 0)
		return 0;
	if (p->ipv6) {
		if (bpf_xdp_load_bytes(ctx, p->l3_off + 8, src, 16) != 0)
			return 0;
	} else if (bpf_xdp_load_bytes(ctx, p->l3_off + 12, src, 4) != 0) {
		return 0;
	}
	return qs_report_src_ok((const struct qs_report_src *)&qs_cfg.be[bi].report_src, p->ipv6,
				src, (qs_u16)((sp[0] << 8) | sp[1]));
}

/* Consistent copy of a backend entry; a writer busy on every try: never reported. */
static __always_inline void
snapshot(const struct qs_xdp_backend_state *e, struct qs_xdp_backend_state *out)
{
	qs_u32 s1, s2, t;

#pragma unroll
	for (t = 0; t < 4; t++) {
		s1 = *(volatile const qs_u32 *)&e->seq;
		barrier_();
		if (s1 & 1)
			continue;
		*out = *e;
		barrier_();
		s2 = *(volatile const qs_u32 *)&e->seq;
		if (s1 == s2)
			return;
	}
	__builtin_memset(out, 0, sizeof(*out));
}

/* Freshness of a report received at last_ns (valid), at now. */
static __always_inline int
report_fresh(qs_u32 valid, qs_u64 last, qs_u64 now)
{
	return (int)qs_rview_fresh(valid, last, now, qs_cfg.report_max_age_ns);
}

/*
 * Global (verified once): backend i's view for this packet from one consistent copy
 * of its entry: its report fields in sc->fb[i] (0 when not fresh), its draining /
 * KV-full bits in sc->fbfl[i], its generation in sc->gen[i] and the key they were
 * taken for in sc->fbkey[i]. Returns freshness.
 */
__noinline int
qs_xdp_be_view(const struct qs_xdp_backend_state *e, struct qs_xdp_scratch *sc, qs_u32 i,
	       qs_u64 now)
{
	struct qs_xdp_backend_state *st;
	int fresh;

	if (!e || !sc)
		return 0;
	i &= QS_XDP_MAX_BACKENDS - 1;
	st = &sc->st;
	snapshot(e, st);
	fresh = report_fresh(st->valid, st->last_ns, now);
	/* the report fields and masks as qsteer-dp and the simulator take them */
	sc->fbfl[i] = (qs_u8)qs_rview_backend(&st->rep, (qs_u32)fresh, &sc->fb[i]);
	sc->gen[i] = st->generation;
	sc->fbkey[i] = st->generation * 2 + (qs_u64)fresh + 1;
	return fresh;
}

/*
 * Backend i's generation (into *genp) and freshness for this packet, and its view in
 * scratch (qs_xdp_be_view). The view depends only on the generation (every accepted
 * report has a new one) and freshness, so it is taken again only when that pair
 * differs from the one it was taken for (sc->fbkey[i]): most packets read the
 * sequence count, three fields and the count again. A writer busy at that moment
 * sends it to qs_xdp_be_view as well, whose copy retries (one path for the verifier:
 * retries written out here would fork its states per backend).
 * Either way sc->gen[i] is the generation returned: qs_xdp_be_view stores both it
 * and the key, and a matching key fixes the generation (a counter from 0 that never
 * reaches 2^63), so callers need not store it again.
 */
static __always_inline int
backend_view(const struct qs_xdp_backend_state *e, struct qs_xdp_scratch *sc, qs_u32 i, qs_u64 now,
	     qs_u64 *genp)
{
	qs_u32 s1, s2, valid;
	qs_u64 last, gen;
	int fresh;

	s1 = *(volatile const qs_u32 *)&e->seq;
	barrier_();
	valid = e->valid;
	last = e->last_ns;
	gen = e->generation;
	barrier_();
	s2 = *(volatile const qs_u32 *)&e->seq;
	fresh = report_fresh(valid, last, now);
	if (qs_rview_heard(valid, last, now, qs_cfg.report_max_age_ns))
		sc->heardm |= 1ull << (i & (QS_XDP_MAX_BACKENDS - 1));
	if (!(s1 & 1) && s1 == s2 &&
	    gen * 2 + (qs_u64)fresh + 1 == sc->fbkey[i & (QS_XDP_MAX_BACKENDS - 1)]) {
		*genp = gen;
		return fresh;
	}
	fresh = qs_xdp_be_view(e, sc, i, now);
	*genp = sc->gen[i & (QS_XDP_MAX_BACKENDS - 1)];
	return fresh;
}

/* ---- rewrite (dp/packet.c qs_dp_rewrite) ------------------------------------------------ */

/* Global: verified once (called for requests and for continuations). */
__noinline int
qs_xdp_rewrite(struct xdp_md *ctx, const struct pkt *p, qs_u32 bi)
{
	qs_u8 *data = (qs_u8 *)(long)ctx->data, *end = (qs_u8 *)(long)ctx->data_end;
	const volatile struct qs_xdp_backend_cfg *b;
	qs_u8 *ip, *udp, na[16], port[2], svc[6];
	qs_u16 uc, c;
	qs_u32 l3, l4, i;

	if (!p || bi >= QS_XDP_MAX_BACKENDS)
		return QS_DP_D_NO_BACKEND;
	l3 = p->l3_off;
	l4 = p->l4_off;
	if (bi >= QS_XDP_MAX_BACKENDS)
		return QS_DP_D_NO_BACKEND;
	b = &qs_cfg.be[bi];
	if (p->ipv6 ? !b->has_ip6 : !b->has_ip4)
		return QS_DP_D_FAMILY;
	if (l3 > 64 || l4 > 128)
		return QS_DP_D_IP_HDR;
	ip = data + l3;
	udp = data + l4;
	if (ip + 40 > end && p->ipv6)
		return QS_DP_D_IP_HDR;
	if (ip + 20 > end || udp + 8 > end || data + 14 > end)
		return QS_DP_D_IP_HDR;
#pragma unroll
	for (i = 0; i < 6; i++)
		svc[i] = data[i];
#pragma unroll
	for (i = 0; i < 6; i++) {
		data[6 + i] = svc[i];
		data[i] = b->mac[i];
	}
	port[0] = (qs_u8)(b->port >> 8);
	port[1] = (qs_u8)b->port;
	uc = qs_qrp_rd16(udp + 6);
	if (p->ipv6) {
		qs_u8 *dst = ip + 24;

		if (ip + 40 > end)
			return QS_DP_D_IP_HDR;
#pragma unroll
		for (i = 0; i < 16; i++)
			na[i] = b->ip6[i];
		if (uc != 0) {
			c = qs_csum_replace(uc, dst, na, 16);
			c = qs_csum_replace(c, udp + 2, port, 2);
			udp[6] = (qs_u8)((c == 0 ? 0xffff : c) >> 8);
			udp[7] = (qs_u8)(c == 0 ? 0xffff : c);
		}
#pragma unroll
		for (i = 0; i < 16; i++)
			dst[i] = na[i];
	} else {
		qs_u8 *dst = ip + 16;

#pragma unroll
		for (i = 0; i < 4; i++)
			na[i] = b->ip4[i];
		c = qs_csum_replace(qs_qrp_rd16(ip + 10), dst, na, 4);
		ip[10] = (qs_u8)(c >> 8);
		ip[11] = (qs_u8)c;
		if (uc != 0) {
			c = qs_csum_replace(uc, dst, na, 4);
			c = qs_csum_replace(c, udp + 2, port, 2);
			udp[6] = (qs_u8)((c == 0 ? 0xffff : c) >> 8);
			udp[7] = (qs_u8)(c == 0 ? 0xffff : c);
		}
#pragma unroll
		for (i = 0; i < 4; i++)
			dst[i] = na[i];
	}
	udp[2] = port[0];
	udp[3] = port[1];
	return QS_DP_D_NONE;
}

static __always_inline int
transmit(void)
{
	if (qs_cfg.egress_ifindex)
		return bpf_redirect(qs_cfg.egress_ifindex, 0);
	return XDP_TX;
}

/* ---- decide a request (prepare's masks + qs_dp_decide for one request) ------------- */

/*
 * Global: the second policy of a shadow or canary set, for a request qs_xdp_decide
 * left with sc->second set (sc->row, glf, elig, hit as it computed them): scored with
 * the same scorer and its own layer-1 cache entry (1), the active one's choice in
 * sc->best1. Either both policies have a candidate or neither (the same elig), so
 * with none this scores nothing, as qsteer-dp's two empty choices. Shadow: the
 * verdict goes to sc->shadow and sc->best2; returns -1. Canary: the second policy's
 * backend for a request id in the slice (qs_canary_pick, qsteer-dp's function), -1
 * for the others.
 */
__noinline int
qs_xdp_second(struct qs_xdp_scratch *sc, qs_u64 request_id)
{
	const struct qs_xdp_policy *pol;
	struct qs_xdp_l1cache *lc;
	qs_u32 key;
	int k2 = -1;

	if (!sc)
		return -1;
	key = QS_XDP_PSET_SECOND(sc->pset);
	pol = bpf_map_lookup_elem(&qs_policy, &key);
	key = 1;
	lc = bpf_map_lookup_elem(&qs_l1cache, &key);
	if (!pol || !lc || pol->kind != QS_XDP_P_INT8)
		return -1;
	if (QS_XDP_PSET_MODE(sc->pset) == QS_XDP_SET_CANARY &&
	    !qs_canary_pick(request_id, QS_XDP_PSET_PCT(sc->pset)))
		return -1;
	if (sc->best1 >= 0) {
		qs_xdp_rq_part(pol, sc);
		qs_xdp_score_all(pol, sc, lc, sc->elig, sc->hit);
		k2 = sc->best;
	}
	if (QS_XDP_PSET_MODE(sc->pset) == QS_XDP_SET_CANARY)
		return k2;
	sc->shadow = k2 == sc->best1 ? 1 : 2;
	sc->best2 = k2;
	return -1;
}

/*
 * Global: verified once. Returns the backend index or QS_XDP_NO_BACKEND; how the
 * decision was taken goes to sc->how. The caller's per-CPU pointers are passed in
 * (and the clock in sc->now): on 6.1 every per-CPU array lookup is a helper call.
 */
__noinline int
qs_xdp_decide(const struct pkt *p, struct qs_xdp_worker *w, struct qs_xdp_scratch *sc,
	      struct qs_prefix_table *pt, struct qs_xdp_l1cache *lc)
{
	qs_u32 nb = qs_cfg.n_backends, i, slot, key, ncand = 0, hit, fam_bit, *how;
	qs_u64 cand, fbm, fam, drain = qs_admin_drain, now;
	const struct qs_xdp_policy *pol;
	int k;

	if (!sc)
		return QS_XDP_NO_BACKEND;
	how = &sc->how;
	*how = HOW_NONE;
	sc->second = 0;
	if (!w || !pt || !p || !lc)
		return QS_XDP_NO_BACKEND;
	now = sc->now;
	fam_bit = p->ipv6;
	sc->freshm = 0;
	sc->cand = 0;
	sc->fbm = 0;
	sc->heardm = 0;
	sc->fam = 0;
	sc->ncand = 0;
	for (i = 0; i < QS_XDP_MAX_BACKENDS; i++) {
		const struct qs_xdp_backend_state *e;
		struct qs_feat_backend *f = &sc->fb[i];
		int fresh;
		qs_u32 fl;
		qs_u64 gen = 0;

		if (i >= nb)
			break;
		key = i;
		e = bpf_map_lookup_elem(&qs_backends, &key);
		if (!e)
			return QS_XDP_NO_BACKEND;
		fresh = backend_view(e, sc, i, now, &gen);
		if (gen != w->seen_gen[i]) {
			w->seen_gen[i] = gen;
			w->sent_reqs[i] = 0;
			w->sent_tokens[i] = 0;
		}
		fl = sc->fbfl[i];
		f->sent_reqs = w->sent_reqs[i];
		f->sent_tokens = w->sent_tokens[i];
		f->capacity_class = qs_cfg.be[i].capacity_class;
		f->prefix_hit = 0;
		sc->cap[i] = qs_cfg.be[i].capacity;
		if (fresh)
			sc->freshm |= 1ull << i;
		if (drain & (1ull << i))
			continue;
		if (fam_bit ? qs_cfg.be[i].has_ip6 : qs_cfg.be[i].has_ip4)
			sc->fam |= 1ull << i;
		if (qs_rview_fallback(fl))
			sc->fbm |= 1ull << i;
		if (qs_rview_candidate(fl)) {
			sc->cand |= 1ull << i;
			sc->cand_be[sc->ncand & (QS_XDP_MAX_BACKENDS - 1)] = (qs_u8)i;
			sc->ncand++;
		}
	}
	/* the backends this request may choose: those with its address family that
	 * its quality floor admits (quality.h; none masked without a cascade), so the
	 * global features, the policy, a builtin and the fallback all keep to them */
	sc->fam_any = sc->fam;
	sc->fam &= ~qs_cfg.quality_masked[p->h.slo_class & 3]
					 [qs_rview_difficulty(p->h.flags, p->h.prompt_tokens,
							      qs_cfg.difficulty_prompt_tokens[0],
							      qs_cfg.difficulty_prompt_tokens[1],
							      qs_cfg.difficulty_prompt_tokens[2]) &
					  3];
	cand = sc->cand;
	fbm = sc->fbm;
	fam = sc->fam;
	ncand = sc->ncand;
	hit = qs_prefix_lookup(pt, p->h.prefix_hash, now, qs_cfg.prefix_max_age_ns);
	sc->rqf.prompt_tokens = p->h.prompt_tokens;
	sc->rqf.max_new_tokens = p->h.max_new_tokens;
	sc->rqf.priority = p->h.priority;
	sc->rqf.slo_class = p->h.slo_class;
	if (ncand > 0) {
		slot = QS_XDP_PSET_ACTIVE(sc->pset);
		pol = bpf_map_lookup_elem(&qs_policy, &slot);
		if (!pol)
			return QS_XDP_NO_BACKEND;
		if (pol->kind == QS_XDP_P_INT8) {
			/* global features over the candidates with the packet's family
			 * (router_view.h, as qsteer-dp and the simulator) */
			qs_rview_global(sc->fb, nb, cand & fam, &sc->glf);
			/* the request's features and its part of layer 1 */
			qs_xdp_feat_request(&sc->rqf, &sc->glf, sc->row);
			qs_xdp_rq_part(pol, sc);
			qs_xdp_score_all(pol, sc, lc, cand & fam, hit);
			k = sc->best;
			*how = HOW_POLICY;
			/* a shadow or canary: qs_xdp_second scores the second policy
			 * from the main program (called from here, its scorer would be
			 * a fifth frame, past the 512-byte combined stack) */
			if (QS_XDP_PSET_MODE(sc->pset) != QS_XDP_SET_ACTIVE) {
				sc->second = 1;
				sc->best1 = k;
				sc->elig = cand & fam;
				sc->hit = hit;
			}
			if (k >= 0 && (qs_u32)k < nb)
				return k;
		} else if (pol->kind == QS_XDP_P_BUILTIN) {
			/* the baseline over the candidates, in candidate-index space */
			qs_u64 el = 0;

			if (w->builtin.kind != pol->builtin)
				baseline_init(&w->builtin, pol->builtin, qs_cfg.fallback_seed);
			for (i = 0; i < QS_XDP_MAX_BACKENDS; i++) {
				qs_u32 b;

				if (i >= ncand)
					break;
				b = sc->cand_be[i] & (QS_XDP_MAX_BACKENDS - 1);
				sc->fbc[i] = sc->fb[b];
				sc->fbc[i].prefix_hit = hit == b;
				sc->cap[i] = qs_cfg.be[b].capacity;
				if (fam >> b & 1)
					el |= 1ull << i;
			}
			k = qs_xdp_baseline_choose(&w->builtin, sc, ncand, el);
			*how = HOW_BUILTIN;
			if (k >= 0 && k < QS_XDP_MAX_BACKENDS)
				return sc->cand_be[k];
			/* restore the per-backend capacities for the fallback */
			for (i = 0; i < QS_XDP_MAX_BACKENDS; i++) {
				if (i >= nb)
					break;
				sc->cap[i] = qs_cfg.be[i].capacity;
			}
		}
	}
	/* no candidate the policy may pick: the configured heuristic decides */
	*how = qs_rview_floor_left_none(fbm, sc->fam_any, fam) ? HOW_FLOOR : HOW_NONE;
	if (!(fbm & fam))
		return QS_XDP_NO_BACKEND;
	for (i = 0; i < QS_XDP_MAX_BACKENDS; i++) {
		if (i >= nb)
			break;
		sc->fbc[i] = sc->fb[i];
	}
	if (hit < nb)
		sc->fbc[hit & (QS_XDP_MAX_BACKENDS - 1)].prefix_hit = 1;
	k = qs_xdp_baseline_choose(&w->fallback, sc, nb,
				   qs_rview_fallback_set(sc->heardm & fam, fbm & fam));
	if (k >= 0 && k < QS_XDP_MAX_BACKENDS) {
		*how = HOW_FALLBACK;
		return (qs_u32)k;
	}
	return QS_XDP_NO_BACKEND;
}

/* ---- the program ----------------------------------------------------------------------- */

SEC("xdp")
int
qsteer_xdp(struct xdp_md *ctx)
{
	struct qs_xdp_worker *w = bpf_map_lookup_elem(&qs_worker, &zero_key);
	struct qs_xdp_counters *ctr = bpf_map_lookup_elem(&qs_counters, &zero_key);
	struct qs_xdp_scratch *sc = bpf_map_lookup_elem(&qs_scratch, &zero_key);
	struct qs_prefix_table *pt = bpf_map_lookup_elem(&qs_prefix, &zero_key);
	struct qs_reqtab_set *set = NULL;
	struct qs_xdp_l1cache *lc;
	struct pkt p;
	qs_u64 now;
	qs_u32 be, how;
	int d, bi;

	if (!w || !ctr || !sc || !pt)
		return XDP_ABORTED;
	now = qs_cfg.test_clock ? qs_test_clock_ns : bpf_ktime_get_ns();
	if (now < w->now_ns)
		now = w->now_ns;
	w->now_ns = now;
	ctr->rx++;
	ctr->bursts++;

	__builtin_memset(&p, 0, sizeof(p));
	d = qs_xdp_parse(ctx, &p, sc);
	if (p.cls == 1) {
		if (qs_cfg.pass_non_qrp) {
			ctr->pass++;
			return XDP_PASS;
		}
		ctr->drop[QS_DP_D_NON_QRP]++;
		return XDP_DROP;
	}
	if (p.cls != 2) {
		ctr->drop[d & 31]++;
		return XDP_DROP;
	}
	if (p.h.type == QS_QRP_T_REPORT) {
		struct qs_qrp_report *rep = &sc->qrep;

		d = parse_report(ctx, &p, sc, rep);
		if (d != QS_DP_D_NONE) {
			ctr->drop[d & 31]++;
			return XDP_DROP;
		}
		ctr->reports++;
		/* who sent it is checked before its sequence number is believed */
		bi = backend_index(rep->backend_id);
		if (bi < 0) {
			ctr->drop[QS_DP_D_REPORT_BACKEND]++;
			return XDP_DROP;
		}
		if (!report_from_source(ctx, &p, bi)) {
			ctr->drop[QS_DP_D_REPORT_SOURCE]++;
			return XDP_DROP;
		}
		/* volatile dropped as for report_src: the loader has set it by now */
		if (!qs_report_auth_ok(
			(const struct qs_report_key *)&qs_cfg.be[bi & (QS_XDP_MAX_BACKENDS - 1)]
			    .report_key,
			p.h.flags, sc->auth)) {
			ctr->drop[QS_DP_D_REPORT_AUTH]++;
			return XDP_DROP;
		}
		if (!apply_report(ctr, bi, &p, rep, now)) {
			ctr->drop[QS_DP_D_REPORT_REPLAY]++;
			return XDP_DROP;
		}
		ctr->consumed++;
		return XDP_DROP;
	}
	if (p.h.type == QS_QRP_T_REQUEST) {
		/* every request gets an entry (reqtab.h: a cancel may follow even a
		 * one-packet request); a new request id picks a random set of a 384 KiB
		 * table: its cache miss is taken here, before the decision, not by the
		 * insert at the end (measured ~10 ns better) */
		set = req_lookup(qs_reqtab_set_of(p.h.request_id, p.h.tenant));
		if (set) {
			qs_u64 t_;

			asm volatile("%0 = *(u64 *)(%1 + 0)" : "=r"(t_) : "r"(set));
		}
		lc = bpf_map_lookup_elem(&qs_l1cache, &zero_key);
		if (!lc)
			return XDP_ABORTED;
		sc->now = now;
		sc->pset = qs_policy_set; /* read once: a packet runs one policy set */
		sc->shadow = 0;
		be = (qs_u32)qs_xdp_decide(&p, w, sc, pt, lc);
		how = sc->how;
		if (sc->second) {
			int k2 = qs_xdp_second(sc, p.h.request_id);

			if (k2 >= 0 && k2 < QS_XDP_MAX_BACKENDS) { /* the canary decides */
				be = (qs_u32)k2;
				how = HOW_CANARY;
			}
		}
		ctr->requests++;
		if (how == HOW_POLICY)
			ctr->decided_policy++;
		else if (how == HOW_CANARY) {
			ctr->decided_policy++;
			ctr->canary++;
		} else if (how == HOW_BUILTIN)
			ctr->decided_builtin++;
		else if (how == HOW_FALLBACK)
			ctr->fallback++;
		if (sc->shadow) {
			ctr->shadow_scored++;
			if (sc->shadow == 2)
				ctr->shadow_disagree++;
		}
		if (be >= qs_cfg.n_backends || be >= QS_XDP_MAX_BACKENDS) {
			ctr->drop[how == HOW_FLOOR ? QS_DP_D_QUALITY_FLOOR : QS_DP_D_NO_BACKEND]++;
			return XDP_DROP;
		}
		if (sc->shadow) {
			/* where the shadow would have sent it: its choice, or (no candidate
			 * for either) the same fallback backend, as qsteer-dp counts */
			qs_u32 ka = be, ks = sc->best2 >= 0 ? (qs_u32)sc->best2 : be;
			struct qs_shadow_row *ra, *rs;

			/* keys of their own: a helper's key slot loses be's bounds */
			ra = bpf_map_lookup_elem(&qs_shadow, &ka);
			rs = bpf_map_lookup_elem(&qs_shadow, &ks);
			if (ra && rs)
				qs_shadow_count(ra, rs, be, ks);
		}
		d = qs_xdp_rewrite(ctx, &p, be);
		if (d != QS_DP_D_NONE) {
			ctr->drop[d & 31]++;
			return XDP_DROP;
		}
		w->sent_reqs[be]++;
		w->sent_tokens[be] += p.h.prompt_tokens;
		qs_prefix_update(pt, p.h.prefix_hash, be, now);
		if (set)
			req_insert(set, ctr, p.h.request_id, p.h.tenant, (qs_u16)be, now,
				   qs_cfg.request_ttl_ns, (p.h.flags & QS_QRP_F_LAST) != 0);
	} else {
		struct qs_reqtab_entry *e = NULL;
		int k = -1;

		if (p.h.type == QS_QRP_T_CONTINUATION)
			ctr->continuations++;
		else
			ctr->cancels++;
		set = req_lookup(qs_reqtab_set_of(p.h.request_id, p.h.tenant));
		if (set) {
			k = qs_reqtab_find(set, p.h.request_id, p.h.tenant, now,
					   qs_cfg.request_ttl_ns);
			if (k >= 0)
				e = &set->e[k & (QS_REQTAB_WAYS - 1)];
		}
		/* after its last packet a request takes a cancel, not more packets */
		if (!e || (e->done && p.h.type == QS_QRP_T_CONTINUATION)) {
			ctr->drop[QS_DP_D_UNKNOWN_REQ]++;
			return XDP_DROP;
		}
		be = e->backend;
		if (p.h.type == QS_QRP_T_CANCEL) {
			e->backend = QS_REQTAB_EMPTY; /* nothing may follow a cancel */
		} else {
			e->last_ns = now;
			e->done = (p.h.flags & QS_QRP_F_LAST) != 0;
		}
		if (be >= QS_XDP_MAX_BACKENDS)
			return XDP_DROP;
		d = qs_xdp_rewrite(ctx, &p, be);
		if (d != QS_DP_D_NONE) {
			ctr->drop[d & 31]++;
			return XDP_DROP;
		}
	}
	ctr->tx++;
	ctr->to_backend[be & (QS_XDP_MAX_BACKENDS - 1)]++;
	if (qs_cfg.n_tenants) {
		/* per configured tenant, as dp/core.c counts them */
		qs_u32 t = QS_XDP_TENANTS, i;

		for (i = 0; i < QS_XDP_TENANTS; i++) {
			if (i >= qs_cfg.n_tenants)
				break;
			if (qs_cfg.tenant[i] == p.h.tenant) {
				t = i;
				break;
			}
		}
		if (t > QS_XDP_TENANTS)
			t = QS_XDP_TENANTS;
		if (p.h.type == QS_QRP_T_REQUEST)
			ctr->tenant_requests[t]++;
		else if (p.h.type == QS_QRP_T_CANCEL)
			ctr->tenant_cancels[t]++;
	}
	return transmit();
}

/* The benchmark's reference: the cheapest program that transmits. */
SEC("xdp")
int
qsteer_xdp_tx(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_TX;
}
