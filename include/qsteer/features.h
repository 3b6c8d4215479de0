/*
 * features.h - the feature schema (DESIGN.md 3.3) and its integer quantizers, in
 * restricted C: the simulator, the trainer, the DPDK dataplane, the XDP program and
 * the CUDA agent all build features with exactly these functions, so a policy sees
 * the same integers wherever it runs.
 *
 * A policy file names the schema it was trained for (q8.h, header field schema);
 * loaders refuse a mismatch. docs/features.md describes every feature.
 */
#ifndef QSTEER_FEATURES_H
#define QSTEER_FEATURES_H

#include "int8.h"

/* Schema ids. */
#define QS_SCHEMA_ANY	    0		/* for loaders: accept any known schema */
#define QS_SCHEMA_ROUTER_V1 1		/* per-candidate router scorer, QS_FR_COUNT inputs */
#define QS_SCHEMA_BATCH_V1  2		/* batching classifier, QS_FB_COUNT inputs */
#define QS_SCHEMA_RAW	    0x7e570000u /* tests and benchmarks: any shape, no meaning */

/* Most candidates one decision scores (a u64 eligibility mask per request). */
#define QS_MAX_CANDIDATES 64

/* Router schema v1: one row per (request, candidate backend). */
enum qs_feat_router {
	QS_FR_PROMPT_LOG = 0,  /* log2q(prompt tokens, 3) */
	QS_FR_GEN_LOG,	       /* log2q(max new tokens, 3) */
	QS_FR_PRIORITY,	       /* class table, priority 0..3 */
	QS_FR_SLO,	       /* class table, SLO class 0..3 */
	QS_FR_PREFIX_HIT,      /* 127 if this backend recently received the prefix hash */
	QS_FR_WAITING_LOG,     /* log2q(reported waiting sequences, 3) */
	QS_FR_RUNNING_LOG,     /* log2q(reported running sequences, 3) */
	QS_FR_KV_UTIL,	       /* ratio_q7(reported KV blocks used, total) */
	QS_FR_PREFILL_LOG,     /* log2q(reported pending prefill tokens, 2) */
	QS_FR_DECODE_TPS_LOG,  /* log2q(reported recent decode tokens/s, 2) */
	QS_FR_TTFT_P99_LOG,    /* log2q(reported p99 TTFT in ms, 3) */
	QS_FR_SENT_REQS_LOG,   /* log2q(requests this router sent since that report, 3) */
	QS_FR_SENT_TOKENS_LOG, /* log2q(prompt tokens this router sent since that report, 2) */
	QS_FR_CAPACITY,	       /* configured capacity class 0..7, times 18 */
	QS_FR_GLOBAL_LOAD_LOG, /* log2q(sum over eligible backends of waiting + running + sent, 2)
				*/
	QS_FR_ELIGIBLE_LOG,    /* log2q(eligible candidates, 4) */
	QS_FR_COUNT
};

/* What the router knows of one request (from the QRP header). */
struct qs_feat_request {
	qs_u32 prompt_tokens;
	qs_u32 max_new_tokens;
	qs_u8 priority;	 /* 0..3, larger is more important */
	qs_u8 slo_class; /* 0..3, larger is tighter */
};

/*
 * What the router knows of one backend: its last report (stale by up to the report
 * interval) plus the router's own count of what it sent since. Never ground truth.
 */
struct qs_feat_backend {
	qs_u32 waiting;
	qs_u32 running;
	qs_u32 kv_used;
	qs_u32 kv_total;
	qs_u32 prefill_pending;
	qs_u32 decode_tps;
	qs_u32 ttft_p99_ms;
	qs_u32 sent_reqs;
	qs_u32 sent_tokens;
	qs_u8 capacity_class; /* 0..7, from configuration */
	qs_u8 prefix_hit;     /* 0 or 1 */
};

/* What the router knows across the eligible backends of this decision. */
struct qs_feat_global {
	qs_u32 outstanding; /* sum over eligible backends of waiting + running + sent_reqs */
	qs_u32 eligible;
};

/* ---- quantizers ------------------------------------------------------------ */

/*
 * The quantizers are branch-free: BPF has no conditional move, so every test becomes
 * a jump, and on varied requests (and after every report) those jumps mispredict.
 * Each test below is arithmetic instead: a 0/1 from a carry out of a sum, or an
 * all-ones mask from the sign of a 64-bit difference. test/policy/test_feat_bitexact.c
 * checks every function against the branchy versions they replaced (kept there as
 * the reference), exhaustively over every u32 where one argument decides.
 *
 * QS_FEAT_OPAQUE hides a mask from clang when compiling for BPF, where it would
 * otherwise recognise the select and turn it back into a jump; elsewhere (x86,
 * CUDA) the compiler's conditional moves are as good, so it is nothing.
 */
#if defined(__bpf__)
#define QS_FEAT_OPAQUE(x) asm("" : "+r"(x))
#else
#define QS_FEAT_OPAQUE(x) ((void)0)
#endif

/* 1 if v != 0, else 0: the carry out of v + (2^32 - 1). */
QS_RC_FN qs_u64
qs_feat_nz(qs_u32 v)
{
	return ((qs_u64)v + 0xffffffffu) >> 32;
}

/* Saturate to the 7-bit activation range. */
QS_RC_FN qs_u8
qs_feat_clamp7(qs_u32 v)
{
	/* d < 0 (v < 127): m is all ones and 127 + d = v; else 127 */
	qs_s64 d = (qs_s64)v - QS_INT8_ACT_MAX, m = d >> 63;

	QS_FEAT_OPAQUE(m);
	return (qs_u8)(QS_INT8_ACT_MAX + (d & m));
}

/*
 * Index of the leading one bit of v (0 for v = 0 and 1): a binary search whose five
 * steps are arithmetic. At each step v < 2^(2k) and (v >> k) + (2^k - 1) carries into
 * bit k exactly when v >= 2^k, so t is that test as 0 or 1.
 */
QS_RC_FN qs_u32
qs_feat_msb(qs_u32 v)
{
	qs_u32 n, t;

	t = ((v >> 16) + 0xffffu) >> 16;
	QS_FEAT_OPAQUE(t);
	n = t << 4;
	v >>= n;
	t = ((v >> 8) + 0xffu) >> 8;
	QS_FEAT_OPAQUE(t);
	t <<= 3;
	v >>= t;
	n += t;
	t = ((v >> 4) + 0xfu) >> 4;
	QS_FEAT_OPAQUE(t);
	t <<= 2;
	v >>= t;
	n += t;
	t = ((v >> 2) + 3u) >> 2;
	QS_FEAT_OPAQUE(t);
	t <<= 1;
	v >>= t;
	n += t;
	return n + (v >> 1);
}

/*
 * (log2(v) + 1) in fixed point with frac_bits fractional bits taken from the bits
 * below the leading one (a piecewise-linear log), saturated to 7 bits; 0 maps to 0.
 * frac_bits is 0..4. Examples with 3 bits: 1 -> 8, 2 -> 16, 3 -> 20, 1000 -> 87.
 */
QS_RC_FN qs_u8
qs_feat_log2q(qs_u32 v, qs_u32 frac_bits)
{
	qs_u32 n = qs_feat_msb(v), r;
	qs_u64 frac;

	/* the frac_bits bits below the leading one, zero-filled when there are fewer:
	 * (v << frac_bits) >> n is v >> (n - frac_bits) or v << (frac_bits - n), exactly
	 * (64 bits: nothing is shifted out) */
	frac = (((qs_u64)v << frac_bits) >> n) & ((1u << frac_bits) - 1);
	r = qs_feat_clamp7(((n + 1) << frac_bits) | (qs_u32)frac);
	/* 0 maps to 0 */
	return (qs_u8)(r & (qs_u32)-qs_feat_nz(v));
}

/*
 * floor(128 * num / den) for num < den, 127 for num >= den, 0 for den == 0: seven
 * steps of restoring division, so no division instruction and no variable divisor.
 * Each step subtracts den under a mask (r < 2^40 throughout, so r - den is exact as
 * a signed 64-bit value). num >= den needs no test: then r >= den stays true at every
 * step (2r - den >= r), every quotient bit is 1, and q is 127.
 */
QS_RC_FN qs_u8
qs_feat_ratio_q7(qs_u32 num, qs_u32 den)
{
	qs_u64 r = num;
	qs_u32 q = 0, i;
	qs_s64 m;

	QS_RC_UNROLL
	for (i = 0; i < 7; i++) {
		r <<= 1;
		/* all ones when r >= den */
		m = ~((qs_s64)(r - den) >> 63);
		QS_FEAT_OPAQUE(m);
		r -= den & (qs_u64)m;
		q = (q << 1) | (qs_u32)(m & 1);
	}
	/* den == 0 maps to 0 */
	return (qs_u8)(q & (qs_u32)-qs_feat_nz(den));
}

/* Four ordered classes spread over the 7-bit range; out-of-range classes saturate. */
QS_RC_FN qs_u8
qs_feat_class4(qs_u32 c)
{
	/* c < 3: m is all ones */
	qs_s64 m = ((qs_s64)c - 3) >> 63;

	QS_FEAT_OPAQUE(m);
	return (qs_u8)(((qs_s64)c * 42 & m) | (127 & ~m));
}

/* ---- router schema v1 -------------------------------------------------------- */

QS_RC_FN void
qs_feat_router_v1(const struct qs_feat_request *rq, const struct qs_feat_backend *be,
		  const struct qs_feat_global *gl, qs_u8 out[QS_FR_COUNT])
{
	out[QS_FR_PROMPT_LOG] = qs_feat_log2q(rq->prompt_tokens, 3);
	out[QS_FR_GEN_LOG] = qs_feat_log2q(rq->max_new_tokens, 3);
	out[QS_FR_PRIORITY] = qs_feat_class4(rq->priority);
	out[QS_FR_SLO] = qs_feat_class4(rq->slo_class);
	out[QS_FR_PREFIX_HIT] = be->prefix_hit ? 127 : 0;
	out[QS_FR_WAITING_LOG] = qs_feat_log2q(be->waiting, 3);
	out[QS_FR_RUNNING_LOG] = qs_feat_log2q(be->running, 3);
	out[QS_FR_KV_UTIL] = qs_feat_ratio_q7(be->kv_used, be->kv_total);
	out[QS_FR_PREFILL_LOG] = qs_feat_log2q(be->prefill_pending, 2);
	out[QS_FR_DECODE_TPS_LOG] = qs_feat_log2q(be->decode_tps, 2);
	out[QS_FR_TTFT_P99_LOG] = qs_feat_log2q(be->ttft_p99_ms, 3);
	out[QS_FR_SENT_REQS_LOG] = qs_feat_log2q(be->sent_reqs, 3);
	out[QS_FR_SENT_TOKENS_LOG] = qs_feat_log2q(be->sent_tokens, 2);
	out[QS_FR_CAPACITY] = (qs_u8)(QS_RC_MIN(be->capacity_class, 7u) * 18u);
	out[QS_FR_GLOBAL_LOAD_LOG] = qs_feat_log2q(gl->outstanding, 2);
	out[QS_FR_ELIGIBLE_LOG] = qs_feat_log2q(gl->eligible, 4);
}

/* Batching schema v1 (agent classifier): the input count is fixed here so loaders
 * can check it; the agent issue defines the features themselves. */
#define QS_FB_COUNT 16

/* Inputs a schema's first layer must take; 0 means "any" (raw), -1 unknown schema. */
QS_RC_FN int
qs_feat_schema_inputs(qs_u32 schema)
{
	switch (schema) {
	case QS_SCHEMA_ROUTER_V1:
		return QS_FR_COUNT;
	case QS_SCHEMA_BATCH_V1:
		return QS_FB_COUNT;
	case QS_SCHEMA_RAW:
		return 0;
	default:
		return -1;
	}
}

#endif /* QSTEER_FEATURES_H */
