/*
 * baseline_cost.h - what each heuristic router ranks backends by, written once for
 * sim/baselines.c (the simulator, the trainer's teachers, qsteer-dp's builtins and
 * fallback) and the XDP program's builtins, which scan the candidates their own way
 * (a loop; bpf_loop callbacks). The scan, the ties (lowest index) and the
 * eligibility mask are the callers'.
 *
 * Restricted C (rc.h) but for one rule: the KV-aware score divides by the
 * candidates' queue span, a variable. Both callers divide there already (BPF has
 * 64-bit division), so this header is not in test/rc's no-division check.
 */
#ifndef QSTEER_BASELINE_COST_H
#define QSTEER_BASELINE_COST_H

#include "features.h"

/* The KV-aware score's weights, llm-d's default profile: queue, free KV, prefix hit. */
#define QS_BL_KV_W_QUEUE  2
#define QS_BL_KV_W_KV	  2
#define QS_BL_KV_W_PREFIX 3

/* lor's, p2c's and sed's load: requests waiting, running and sent since the report. */
QS_RC_FN qs_u64
qs_bl_outstanding(const struct qs_feat_backend *b)
{
	return (qs_u64)b->waiting + b->running + b->sent_reqs;
}

/* lot's load: prompt tokens pending and sent since the report, plus the KV blocks
 * in use at 16 tokens each. */
QS_RC_FN qs_u64
qs_bl_token_load(const struct qs_feat_backend *b)
{
	return (qs_u64)b->prefill_pending + b->sent_tokens + (qs_u64)b->kv_used * 16;
}

/* jsq's: the queue the backend reported. */
QS_RC_FN qs_u64
qs_bl_jsq(const struct qs_feat_backend *b)
{
	return (qs_u64)b->waiting + b->running;
}

/* The KV-aware score's queue term, before min-max normalisation over the candidates. */
QS_RC_FN qs_u64
qs_bl_kv_queue(const struct qs_feat_backend *b)
{
	return (qs_u64)b->waiting + b->sent_reqs;
}

/*
 * The KV-aware score, larger is better (a gateway-style weighted sum of terms in
 * [0, 1000]): the queue min-max normalised over the candidates (qmin, qmax of
 * qs_bl_kv_queue; fewer is better), the free KV fraction, and 1000 on a prefix hit.
 */
QS_RC_FN qs_u64
qs_bl_kv_score(const struct qs_feat_backend *b, qs_u64 qmin, qs_u64 qmax, qs_u64 wq, qs_u64 wkv,
	       qs_u64 wp)
{
	qs_u64 q = qs_bl_kv_queue(b), sq, skv, sp;

	sq = qmax > qmin ? (qmax - q) * 1000 / (qmax - qmin) : 1000;
	if (!b->kv_total)
		skv = 1000;
	else
		skv = 1000 -
		      (b->kv_used >= b->kv_total ? 1000 : (qs_u64)b->kv_used * 1000 / b->kv_total);
	sp = b->prefix_hit ? 1000 : 0;
	return wq * sq + wkv * skv + wp * sp;
}

/* sed: does a backend with load o_i (qs_bl_outstanding) and capacity c_i beat the
 * best so far (o_b, c_b)? (o_i + 1) / c_i < (o_b + 1) / c_b, cross-multiplied. */
QS_RC_FN int
qs_bl_sed_better(qs_u64 o_i, qs_u64 c_i, qs_u64 o_b, qs_u64 c_b)
{
	return (o_i + 1) * c_b < (o_b + 1) * c_i;
}

#endif /* QSTEER_BASELINE_COST_H */
