/*
 * xdp.h - the structs the XDP program (ebpf/qsteer.bpf.c) and its loader
 * (ebpf/qsteer_xdp.c, ebpf/xdp_lib.c) share: configuration (read-only data), maps'
 * value layouts, counters, and the packed int8 policy the kernel side scores with.
 * Restricted C (rc.h): it compiles for the host and for clang -target bpf.
 *
 * The program mirrors the DPDK-free dataplane core (dp/core.c, dp/packet.c) run
 * with bursts of one packet; docs/xdp.md explains the mapping. Drop reasons are the
 * dataplane's own enum (drop.h, restricted C). The few other values that must equal
 * the dataplane's (counter layout, baseline kinds) are repeated here because
 * dp_core.h is not restricted C; the loader checks every one of them against
 * dp_core.h / baselines.h with _Static_assert, so they cannot drift.
 */
#ifndef QSTEER_XDP_H
#define QSTEER_XDP_H

#include "drop.h"
#include "features.h"
#include "pkt_parse.h"
#include "prefix.h"
#include "report_auth.h"
#include "report_src.h"
#include "reqtab.h"
#include "shadow.h"
#include "wire.h"

/* ---- limits (the loader refuses anything larger, with a message) ------------ */

#define QS_XDP_MAX_BACKENDS	 64	     /* one u64 eligibility mask, as qsteer-dp */
#define QS_XDP_TENANTS		 16	     /* dp_core.h QS_DP_TENANTS */
#define QS_XDP_IN		 QS_FR_COUNT /* router schema v1: 16 inputs */
#define QS_XDP_MAX_HIDDEN	 64	     /* widest hidden layer */
#define QS_XDP_MIN_HIDDEN_LAYERS 1
#define QS_XDP_MAX_HIDDEN_LAYERS 2 /* 16 -> H1 [-> H2] -> 1 */
/* Hidden layers run three outputs per packed u64 (21-bit fields): ceil(64 / 3) = 22
 * groups, 66 activations. */
#define QS_XDP_GROUPS	  22
#define QS_XDP_ACT	  (QS_XDP_GROUPS * 3)
#define QS_XDP_FIELD_BITS 21
#define QS_XDP_FIELD_MASK ((1ull << QS_XDP_FIELD_BITS) - 1)
/* Each field holds its dot product + 2^20: |dot| <= 64 * 127 * 127 < 2^20, so a field
 * stays in [0, 2^21) and never borrows from or carries into its neighbour. */
#define QS_XDP_FIELD_OFF (1ll << 20)
#define QS_XDP_OFFSET_WORD                                                                         \
	((qs_u64)QS_XDP_FIELD_OFF | (qs_u64)QS_XDP_FIELD_OFF << QS_XDP_FIELD_BITS |                \
	 (qs_u64)QS_XDP_FIELD_OFF << (2 * QS_XDP_FIELD_BITS))
/* Field 0 shifted left by this sits in a word's top bits (t1's compare position);
 * field 1 needs QS_XDP_FIELD_BITS less, field 2 is there already. */
#define QS_XDP_FIELD_TOP (64 - QS_XDP_FIELD_BITS)

/* Router-v1 features by what they depend on (qs_feat_router_v1): the request and the
 * decision's globals (once per packet), the prefix hit (one column per request and
 * backend), and the backend's own state (its report, this CPU's sent counts, its
 * configured capacity: cached per CPU and backend, see struct qs_xdp_l1c). */
#define QS_XDP_FEAT_REQ_MASK                                                                       \
	((1u << QS_FR_PROMPT_LOG) | (1u << QS_FR_GEN_LOG) | (1u << QS_FR_PRIORITY) |               \
	 (1u << QS_FR_SLO) | (1u << QS_FR_GLOBAL_LOAD_LOG) | (1u << QS_FR_ELIGIBLE_LOG))
#define QS_XDP_FEAT_BE_FIRST QS_FR_WAITING_LOG
#define QS_XDP_FEAT_BE_LAST  QS_FR_CAPACITY
#define QS_XDP_FEAT_BE_N     (QS_XDP_FEAT_BE_LAST - QS_XDP_FEAT_BE_FIRST + 1)

/* Request-id table: the dataplane's geometry (QS_DP_REQ_SETS x QS_DP_REQ_WAYS). */
#define QS_XDP_REQ_SETS	  QS_REQTAB_SETS
#define QS_XDP_REQ_WAYS	  QS_REQTAB_WAYS
#define QS_XDP_NO_BACKEND 0xffffu

/*
 * Subsets of qs_feat_router_v1's row, with the same quantizers (features.h), for the
 * program's split of layer 1: the request and global features (once per packet) and
 * the two sent-count features (after a send, the only backend features that move).
 * They write only their own entries of out. test-xdp-feat checks both against
 * qs_feat_router_v1 on random and edge inputs, so the split cannot drift from it.
 */
QS_RC_FN void
qs_xdp_feat_request(const struct qs_feat_request *rq, const struct qs_feat_global *gl,
		    qs_u8 out[QS_FR_COUNT])
{
	out[QS_FR_PROMPT_LOG] = qs_feat_log2q(rq->prompt_tokens, 3);
	out[QS_FR_GEN_LOG] = qs_feat_log2q(rq->max_new_tokens, 3);
	out[QS_FR_PRIORITY] = qs_feat_class4(rq->priority);
	out[QS_FR_SLO] = qs_feat_class4(rq->slo_class);
	out[QS_FR_GLOBAL_LOAD_LOG] = qs_feat_log2q(gl->outstanding, 2);
	out[QS_FR_ELIGIBLE_LOG] = qs_feat_log2q(gl->eligible, 4);
}

QS_RC_FN void
qs_xdp_feat_sent(const struct qs_feat_backend *be, qs_u8 out[QS_FR_COUNT])
{
	out[QS_FR_SENT_REQS_LOG] = qs_feat_log2q(be->sent_reqs, 3);
	out[QS_FR_SENT_TOKENS_LOG] = qs_feat_log2q(be->sent_tokens, 2);
}

/*
 * x / 1000 without a division, for every u32 x: clang keeps a division by a constant
 * for BPF (it has no high multiply) and the x86 JIT emits a div. K = 274877907 =
 * ceil(2^38 / 1000) exceeds 2^38 / 1000 by 56 / 1000, so x * K / 2^38 = x / 1000 +
 * x * 56 / (1000 * 2^38), and the floor is exact while x * 56 < 2^38 (x < 4.9e9).
 * test-xdp-feat checks every u32.
 */
QS_RC_FN qs_u32
qs_xdp_div1000(qs_u32 x)
{
	return (qs_u32)(((qs_u64)x * 274877907u) >> 38);
}

/* ---- values shared with dp_core.h / baselines.h (checked by the loader) --------- */

/* enum qs_baseline_kind, same order */
#define QS_XDP_B_RANDOM 0
#define QS_XDP_B_RR	1
#define QS_XDP_B_LOR	2
#define QS_XDP_B_LOT	3
#define QS_XDP_B_JSQ	4
#define QS_XDP_B_P2C	5
#define QS_XDP_B_SED	6
#define QS_XDP_B_KV	7
#define QS_XDP_B_COUNT	8

/* Per-CPU counters: exactly struct qs_dp_counters (the loader asserts size and
 * offsets), so user space sums CPUs into one and prints it with the dataplane's
 * JSON code. */
struct qs_xdp_counters {
	qs_u64 rx, tx, pass, consumed;
	qs_u64 requests, continuations, cancels, reports;
	qs_u64 reports_ignored;
	qs_u64 decided_policy, decided_builtin, fallback;
	qs_u64 shadow_scored, shadow_disagree, canary;
	qs_u64 reqtab_insert, reqtab_evict, reqtab_expired;
	qs_u64 bursts;
	qs_u64 drop[QS_DP_D__COUNT]; /* enum qs_dp_drop (drop.h) */
	qs_u64 to_backend[QS_XDP_MAX_BACKENDS];
	qs_u64 tenant_requests[QS_XDP_TENANTS + 1]; /* dp_core.h's, [QS_XDP_TENANTS]: other */
	qs_u64 tenant_cancels[QS_XDP_TENANTS + 1];
};

/* ---- configuration: the program's read-only data, set between open and load ---- */

struct qs_xdp_backend_cfg {
	qs_u16 id;
	qs_u8 mac[6];
	qs_u8 has_ip4, has_ip6;
	qs_u8 capacity_class;
	qs_u8 pad;
	qs_u16 port;
	qs_u8 ip4[4];
	qs_u32 capacity;
	qs_u8 ip6[16];
	struct qs_report_src report_src; /* where its reports must come from */
	struct qs_report_key report_key; /* with a key: tagged reports only */
};

struct qs_xdp_config {
	struct qs_pkt_service svc; /* the service's addresses and ports (pkt_parse.h) */
	qs_u8 pass_non_qrp;
	qs_u8 test_clock; /* 1: the clock is qs_test_clock_ns (BPF_PROG_TEST_RUN replay) */
	qs_u32 n_backends;
	qs_u32 fallback;       /* QS_XDP_B_* */
	qs_u32 egress_ifindex; /* 0: XDP_TX back out of the receiving interface */
	qs_u64 fallback_seed;
	qs_u64 report_max_age_ns;
	qs_u64 request_ttl_ns;
	qs_u64 prefix_max_age_ns;
	qs_u32 n_tenants; /* per-tenant counters (dp_core.h config `tenants`) */
	qs_u16 tenant[QS_XDP_TENANTS];
	qs_u16 pad_;
	/* cascade (dp_core.h's fields of the same names): per SLO class and difficulty
	 * the backends below the quality floor, and the prompt lengths that give a
	 * difficulty to a request that carries none */
	qs_u32 difficulty_prompt_tokens[3];
	qs_u64 quality_masked[4][4];
	struct qs_xdp_backend_cfg be[QS_XDP_MAX_BACKENDS];
};

/* ---- maps' values ------------------------------------------------------------ */

/* Shared backend table (array map qs_backends): written by the CPU that receives a
 * report, under a sequence count exactly as dp/core.c does. */
struct qs_xdp_backend_state {
	qs_u32 seq; /* odd while a writer updates the entry */
	qs_u32 valid;
	qs_u64 last_ns;
	qs_u64 report_seq;
	qs_u64 generation;
	struct qs_qrp_report rep;
};

/* One baseline router's state (struct qs_baseline's rng and rr_next). */
struct qs_xdp_baseline {
	qs_u64 rng;
	qs_u32 rr_next;
	qs_u32 kind; /* builtin: the kind this state was initialised for, or B_COUNT */
};

/* Per-CPU worker state (percpu array qs_worker): struct qs_dp_worker's fields that
 * outlive a burst. The loader initialises it (fallback seed + CPU number). */
struct qs_xdp_worker {
	qs_u64 now_ns; /* monotonic: max of the packets' clocks so far */
	struct qs_xdp_baseline fallback;
	struct qs_xdp_baseline builtin;
	qs_u64 seen_gen[QS_XDP_MAX_BACKENDS];
	qs_u32 sent_reqs[QS_XDP_MAX_BACKENDS];
	qs_u32 sent_tokens[QS_XDP_MAX_BACKENDS];
};

/*
 * Request-id table: QS_XDP_REQ_SETS sets of QS_XDP_REQ_WAYS ways per CPU, stored as a
 * percpu array of QS_XDP_REQ_BLOCKS blocks of QS_XDP_REQ_BLOCK_SETS sets (24 KiB per
 * CPU and block, under the kernel's 32 KiB per-CPU value limit). One entry per set
 * would cost every new request id two dependent cache misses (the 4096-entry table of
 * per-CPU pointers, then the set); the 16 block pointers stay cached.
 */
#define QS_XDP_REQ_BLOCK_SETS 256
#define QS_XDP_REQ_BLOCKS     (QS_XDP_REQ_SETS / QS_XDP_REQ_BLOCK_SETS)
struct qs_xdp_req_block {
	struct qs_reqtab_set s[QS_XDP_REQ_BLOCK_SETS]; /* reqtab.h: dp's entries and rules */
};

/* ---- the policy set (array map qs_policy, four entries; the .bss word qs_policy_set) */

/*
 * Entries 0 and 1 of qs_policy hold the active policy and the previous one; 2 and 3
 * the second policy (shadow or canary) and its spare. The loader writes an entry no
 * program run reads, stores the word, then waits for a grace period, so a packet
 * that read the word once sees one consistent set: which entry is active, the mode
 * (enum qs_dp_mode: the loader asserts the values), which entry is second, and the
 * canary percentage.
 */
#define QS_XDP_POLICY_ENTRIES 4
#define QS_XDP_SET_ACTIVE     0 /* QS_DP_MODE_ACTIVE: the active policy alone */
#define QS_XDP_SET_SHADOW     1 /* both score, the active one steers, counted in qs_shadow */
#define QS_XDP_SET_CANARY     2 /* pct% of request ids (qs_canary_pick) go to the second */
#define QS_XDP_PSET(active, mode, second, pct)                                                     \
	((qs_u32)(active) | (qs_u32)(mode) << 1 | ((qs_u32)(second)&1u) << 3 | (qs_u32)(pct) << 8)
#define QS_XDP_PSET_ACTIVE(w) ((w)&1u)
#define QS_XDP_PSET_MODE(w)   (((w) >> 1) & 3u)
#define QS_XDP_PSET_SECOND(w) (2u + (((w) >> 3) & 1u)) /* its qs_policy entry */
#define QS_XDP_PSET_PCT(w)    (((w) >> 8) & 0x7fu)     /* 0..100 */

/* Per-CPU shadow counters (percpu array qs_shadow): one struct qs_shadow_row
 * (shadow.h) per backend index, the layout qsteer-dp's workers count in. */

#define QS_XDP_P_EMPTY	 0
#define QS_XDP_P_INT8	 1 /* the int8 scorer below decides */
#define QS_XDP_P_BUILTIN 2 /* baseline `builtin` decides (qsteer-dp's builtin:NAME) */

/*
 * Unrolled kernels: the loader picks the smallest one the shape fits (padding units
 * have zero weights, bias 0, M 1, S 1 and requantize to 0). NU1/NU2: the layers'
 * units as the kernel sees them.
 */
#define QS_XDP_T_H2_16_16 0 /* 16 -> <=16 -> <=16 -> 1 */
#define QS_XDP_T_H2_32_16 1 /* 16 -> <=32 -> <=16 -> 1 (the test and bench policy) */
#define QS_XDP_T_H2_32_32 2
#define QS_XDP_T_H2_64_64 3
#define QS_XDP_T_H1_16	  4 /* 16 -> <=16 -> 1 */
#define QS_XDP_T_H1_32	  5
#define QS_XDP_T_H1_64	  6
#define QS_XDP_T_COUNT	  7

/*
 * A scorer 16 -> h1 [-> h2] -> 1 in the layout the program's SWAR kernels read.
 * Hidden layer l: w[i][g] (input-major) packs the signed weights of rows 3g, 3g+1,
 * 3g+2 for input i as the 64-bit integer W0 + W1 * 2^21 + W2 * 2^42 (two's
 * complement, mod 2^64), so x * w[i][g] summed over i is D0 + D1 * 2^21 + D2 * 2^42
 * with D the exact dot products; the kernels start from QS_XDP_OFFSET_WORD, so field
 * k holds Dk + 2^20. Requantization of field value f (qs_int8_requant with
 * acc = bias + f - 2^20) is (f * m + c) >> s, clamped to [0, 127], with
 * c = (bias - 2^20) * m + 2^(s-1) precomputed: the same 64-bit integer.
 * ph[g] = 127 * w1[QS_FR_PREFIX_HIT][g]: the prefix-hit column, added to the cached
 * part of the backend that has the hit while the kernels run (and taken out after).
 * version changes with every publication (the per-CPU layer-1 cache is keyed by it).
 * out_bias_l2: the two-layer kernels add (x - 127) * w_out[j] per layer-2 unit, so
 * they start from out_bias + 127 * sum of w_out[j] (padding units have w_out 0): the
 * same integer, one instruction less per unit.
 * With two hidden layers, layer 1's m1, c1, s1 are rewritten so that
 * (f * m1 + c1) >> s1 is the unclamped requantized value minus 127, the operand of
 * the fused kernel's upper clamp: c1 - 127 * 2^s1 where that fits in 64 bits; where
 * it does not (s1 >= 57, where f * m < 2^52 moves the value by at most one step over
 * all f), the step at F is rebuilt as m1 = 2^33, s1 = 55,
 * c1 = (v0 - 126) * 2^55 - F * 2^33 (v0: the value at f = 0). The loader checks both
 * forms with the kernel's arithmetic; t1 is computed from the original constants.
 * t1[j]: the smallest field value T with a requantized output > 0 ((T * m + c) >> s
 * >= 1; the output is monotone in the field since m > 0), 0 if every value is
 * positive, 2^21 if none is, shifted to where the kernel compares it without
 * extracting the field: T << 43 for fields 0 and 1 (compared with w << 43 and
 * w << 22, whose lower bits are below 2^43; QS_XDP_FIELD_TOP), T << 42 for field 2
 * (compared with w itself, whose two lower fields are below 2^42); 2^21 becomes ~0,
 * which no shifted field reaches. A unit with field value f is 0 exactly when f < T.
 * Only the two-layer kernels read t1; one-hidden-layer policies leave it 0.
 */
struct qs_xdp_policy {
	qs_u32 kind; /* QS_XDP_P_* */
	qs_u32 builtin;
	qs_u64 version; /* unique per publication: keys the per-CPU layer-1 cache */
	qs_u64 content_id;
	qs_u32 n_hidden; /* 1 or 2 */
	qs_u32 h1, h2;
	qs_u32 tier;   /* QS_XDP_T_* */
	qs_u32 g1;     /* layer-1 groups the tier computes */
	qs_u32 out_in; /* inputs of the output layer: h2, or h1 with one hidden layer */
	qs_s64 out_bias;
	qs_s64 out_bias_l2; /* two hidden layers: out_bias + 127 * sum of w_out (above) */
	qs_u64 w1[QS_XDP_IN][QS_XDP_GROUPS];
	qs_u64 ph[QS_XDP_GROUPS];
	qs_u64 w2[QS_XDP_MAX_HIDDEN][QS_XDP_GROUPS];
	qs_s64 m1[QS_XDP_ACT], c1[QS_XDP_ACT];
	qs_s64 m2[QS_XDP_ACT], c2[QS_XDP_ACT];
	qs_u64 t1[QS_XDP_ACT]; /* layer-1 unit thresholds in field position (above) */
	qs_s64 w_out[QS_XDP_ACT];
	qs_u8 s1[QS_XDP_ACT], s2[QS_XDP_ACT];
	qs_u8 pad[4];
};

/*
 * Per CPU and backend (percpu array qs_l1cache): the backend's part of layer 1,
 * sum over the backend features i of x[i] * w1[i][g], valid for the policy version and
 * the inputs it was computed from (report generation, freshness, this CPU's sent
 * counts). When those change but the quantized features do not, only the key moves.
 */
struct qs_xdp_l1c {
	qs_u64 version; /* 0: empty (publications start at 1) */
	qs_u64 gen;
	qs_u32 sent_reqs, sent_tokens;
	qs_u32 fresh;
	qs_u8 feat[QS_XDP_FEAT_BE_N];
	qs_u8 pad[12 - QS_XDP_FEAT_BE_N];
	qs_u64 part[QS_XDP_GROUPS];
};

struct qs_xdp_l1cache {
	struct qs_xdp_l1c e[QS_XDP_MAX_BACKENDS];
};

#endif /* QSTEER_XDP_H */
