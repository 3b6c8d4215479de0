/*
 * batch_features.h - batching schema v1 (QS_SCHEMA_BATCH_V1, QS_FB_COUNT inputs):
 * what the agent's int8 batching classifier sees each iteration, in restricted C so
 * the agent, the simulator's batching environment and the trainer build exactly the
 * same integers from the same counters. docs/agent.md describes every feature.
 *
 * Everything is a counter the agent keeps anyway; the quantizers are features.h's,
 * so a feature never depends on floating point or on a variable divisor.
 */
#ifndef QSTEER_BATCH_FEATURES_H
#define QSTEER_BATCH_FEATURES_H

#include "features.h"

enum qs_feat_batch {
	QS_FB_WAITING_LOG = 0, /* log2q(waiting sequences, 3) */
	QS_FB_RUNNING_LOG,     /* log2q(running sequences, 3) */
	QS_FB_KV_UTIL,	       /* ratio_q7(KV blocks used, total) */
	QS_FB_WAIT_TOKENS_LOG, /* log2q(prompt tokens waiting, 2) */
	QS_FB_HEAD_PROMPT_LOG, /* log2q(prompt tokens of the oldest waiting request, 3) */
	QS_FB_MAX_PROMPT_LOG,  /* log2q(longest waiting prompt, 3) */
	QS_FB_OLDEST_WAIT_LOG, /* log2q(age of the oldest waiting request in ms, 3) */
	QS_FB_ITER_US_LOG,     /* log2q(last iteration time in us, 2) */
	QS_FB_RUN_CTX_LOG,     /* log2q(context tokens held by running sequences, 2) */
	QS_FB_ARRIVALS_LOG,    /* log2q(requests received in the last window, 3) */
	QS_FB_PREEMPT_LOG,     /* log2q(preemptions in the last window, 3) */
	QS_FB_TIGHT_LOG,       /* log2q(waiting requests with SLO class >= 2, 3) */
	QS_FB_TIGHT_SHARE,     /* ratio_q7(tight waiting, waiting) */
	QS_FB_PREFILL_SHARE,   /* ratio_q7(running sequences still in prefill, running) */
	QS_FB_PREV_CAP_LOG,    /* log2q(sequence cap applied last iteration, 3) */
	QS_FB_TTFT_MAX_LOG,    /* log2q(largest TTFT in ms seen in the last window, 3) */
	QS_FB__END
};

/* The agent's counters at the start of an iteration (all plain integers). */
struct qs_batch_state {
	qs_u32 waiting;
	qs_u32 running;
	qs_u32 kv_used;
	qs_u32 kv_total;
	qs_u32 wait_tokens;
	qs_u32 head_prompt;
	qs_u32 max_prompt;
	qs_u32 oldest_wait_ms;
	qs_u32 iter_us;
	qs_u32 run_ctx_tokens;
	qs_u32 arrivals;
	qs_u32 preemptions;
	qs_u32 tight_waiting;
	qs_u32 running_prefill;
	qs_u32 prev_cap;
	qs_u32 ttft_max_ms;
};

QS_RC_FN void
qs_batch_features_v1(const struct qs_batch_state *s, qs_u8 out[QS_FB_COUNT])
{
	out[QS_FB_WAITING_LOG] = qs_feat_log2q(s->waiting, 3);
	out[QS_FB_RUNNING_LOG] = qs_feat_log2q(s->running, 3);
	out[QS_FB_KV_UTIL] = qs_feat_ratio_q7(s->kv_used, s->kv_total);
	out[QS_FB_WAIT_TOKENS_LOG] = qs_feat_log2q(s->wait_tokens, 2);
	out[QS_FB_HEAD_PROMPT_LOG] = qs_feat_log2q(s->head_prompt, 3);
	out[QS_FB_MAX_PROMPT_LOG] = qs_feat_log2q(s->max_prompt, 3);
	out[QS_FB_OLDEST_WAIT_LOG] = qs_feat_log2q(s->oldest_wait_ms, 3);
	out[QS_FB_ITER_US_LOG] = qs_feat_log2q(s->iter_us, 2);
	out[QS_FB_RUN_CTX_LOG] = qs_feat_log2q(s->run_ctx_tokens, 2);
	out[QS_FB_ARRIVALS_LOG] = qs_feat_log2q(s->arrivals, 3);
	out[QS_FB_PREEMPT_LOG] = qs_feat_log2q(s->preemptions, 3);
	out[QS_FB_TIGHT_LOG] = qs_feat_log2q(s->tight_waiting, 3);
	out[QS_FB_TIGHT_SHARE] = qs_feat_ratio_q7(s->tight_waiting, s->waiting);
	out[QS_FB_PREFILL_SHARE] = qs_feat_ratio_q7(s->running_prefill, s->running);
	out[QS_FB_PREV_CAP_LOG] = qs_feat_log2q(s->prev_cap, 3);
	out[QS_FB_TTFT_MAX_LOG] = qs_feat_log2q(s->ttft_max_ms, 3);
}

#endif /* QSTEER_BATCH_FEATURES_H */
