/*
 * router_view.h - the router's view of its backends, in restricted C (rc.h): from a
 * backend's last accepted report, whether it is fresh, draining or KV-full, the
 * report half of its qs_feat_backend, and the global features over the backends a
 * decision may choose. The DPDK core (dp/core.c), the XDP program
 * (ebpf/qsteer.bpf.c) and the simulator's router (sim/engine.c, so the trainer)
 * all build their masks and feature rows with these functions: the policy is
 * trained on exactly the inputs it sees in production (issue 19: the simulator
 * once summed the global load over every backend, masked ones included).
 * test/sim/test_view_parity.c drives one sequence through all three.
 */
#ifndef QSTEER_ROUTER_VIEW_H
#define QSTEER_ROUTER_VIEW_H

#include "features.h"
#include "wire.h"

/* A backend's state for one decision (qs_rview_backend's result). */
#define QS_RVIEW_FRESH	  1u /* a report no older than the maximum age */
#define QS_RVIEW_DRAINING 2u /* its fresh report says it drains */
#define QS_RVIEW_KV_FULL  4u /* its fresh report shows every KV block used */

/* A report that arrived at last_ns (valid: one has arrived at all) is fresh at now
 * while no older than max_age. A clock behind last_ns (another worker's newer
 * stamp) counts as fresh rather than as an underflowed age. */
QS_RC_FN qs_u32
qs_rview_fresh(qs_u32 valid, qs_u64 last_ns, qs_u64 now, qs_u64 max_age)
{
	return valid && (now < last_ns || now - last_ns <= max_age);
}

/*
 * A backend is heard from while its last report is no older than
 * QS_RVIEW_HEARD_AGES maximum ages (100 ms at the default 5 ms reports): stale past
 * that, it is silent, not just late. When every backend is masked the fallback
 * heuristic prefers the ones heard from: on a busy host every agent's report can be
 * late by more than the stale age at once, and the fallback must not then send to
 * an agent that died long ago (a killed agent got a request 622 ms after its mask
 * in a loaded cluster run that way). max_age 0 (masking off): heard once reported.
 */
#define QS_RVIEW_HEARD_AGES 10u

QS_RC_FN qs_u32
qs_rview_heard(qs_u32 valid, qs_u64 last_ns, qs_u64 now, qs_u64 max_age)
{
	qs_u64 age =
	    max_age > ~(qs_u64)0 / QS_RVIEW_HEARD_AGES ? ~(qs_u64)0 : max_age * QS_RVIEW_HEARD_AGES;

	return valid && (max_age == 0 || now < last_ns || now - last_ns <= age);
}

/*
 * x / 1000 without a division, exact for every u32: BPF has no high multiply, so
 * clang keeps a division by a constant there and the x86 JIT emits a div (the
 * constant is xdp.h's qs_xdp_div1000, which test-xdp-feat checks over every u32).
 */
QS_RC_FN qs_u32
qs_rview_div1000(qs_u32 x)
{
	return (qs_u32)(((qs_u64)x * 274877907u) >> 38);
}

/*
 * The report half of a backend's features from its last report: the reported
 * fields when fresh, zeros when not (a stale report says nothing about now). The
 * router's own fields (sent counts, capacity class, prefix hit) are the caller's.
 * Returns QS_RVIEW_* flags; draining and KV-full are only believed from a fresh
 * report.
 */
QS_RC_FN qs_u32
qs_rview_backend(const struct qs_qrp_report *rep, qs_u32 fresh, struct qs_feat_backend *f)
{
	qs_u32 fl = 0;

	f->waiting = fresh ? rep->waiting : 0;
	f->running = fresh ? rep->running : 0;
	f->kv_used = fresh ? rep->kv_used : 0;
	f->kv_total = fresh ? rep->kv_total : 0;
	f->prefill_pending = fresh ? rep->prefill_pending : 0;
	f->decode_tps = fresh ? rep->decode_tps : 0;
	f->ttft_p99_ms = fresh ? qs_rview_div1000(rep->ttft_p99_us) : 0;
	if (fresh)
		fl |= QS_RVIEW_FRESH;
	if (fresh && (rep->flags & QS_QRP_RF_DRAINING))
		fl |= QS_RVIEW_DRAINING;
	if (fresh && rep->kv_total != 0 && rep->kv_used >= rep->kv_total)
		fl |= QS_RVIEW_KV_FULL;
	return fl;
}

/* DESIGN 3.1: the policy may pick a backend only while it is fresh, not draining
 * and not KV-full. */
QS_RC_FN qs_u32
qs_rview_candidate(qs_u32 fl)
{
	return fl == QS_RVIEW_FRESH;
}

/* With no candidate, the fallback heuristic may use any backend not draining
 * (stale and full ones included: something must take the request)... */
QS_RC_FN qs_u32
qs_rview_fallback(qs_u32 fl)
{
	return !(fl & QS_RVIEW_DRAINING);
}

/* ...preferring, of those (any), the ones heard from lately (heard: masks over the
 * same backends, qs_rview_heard); all of them when none has been. */
QS_RC_FN qs_u64
qs_rview_fallback_set(qs_u64 heard, qs_u64 any)
{
	return (heard & any) ? (heard & any) : any;
}

/*
 * Whether a request that found no backend was left none by its quality floor
 * (cascade routing, quality.h): a backend of its address family that the fallback
 * could have taken exists, but none of them is admissible. The fallback takes any
 * backend not draining, stale or silent ones too (qs_rview_fallback_set), so a
 * request finds none only when every admissible backend drains (the operator's
 * drain or the agent's own); the dataplanes then drop it as quality-floor rather
 * than no-backend (drop.h), so an operator sees that the strong variants are
 * drained, not the whole fleet.
 */
QS_RC_FN qs_u32
qs_rview_floor_left_none(qs_u64 fallback, qs_u64 family, qs_u64 admissible)
{
	return (fallback & family) != 0 && (fallback & family & admissible) == 0;
}

/*
 * A request's difficulty class (cascade routing, quality.h): the client's when its
 * header carries one (wire.h QS_QRP_F_DIFFICULTY), else how many of the dataplane's
 * prompt-length thresholds t0, t1, t2 the prompt reaches (a threshold 0 is unused).
 * Prompt length is what a dataplane can measure of difficulty; with no threshold
 * set it measures nothing, and a request that says nothing counts as the hardest,
 * class 3: a quality floor then keeps it on the best variants rather than letting an
 * unlabelled client (an HTTP gateway without the header, say) reach the weakest.
 * (By value: the XDP program's are volatile read-only data.)
 */
QS_RC_FN qs_u32
qs_rview_difficulty(qs_u16 flags, qs_u32 prompt_tokens, qs_u32 t0, qs_u32 t1, qs_u32 t2)
{
	if (flags & QS_QRP_F_DIFFICULTY)
		return (flags & QS_QRP_F_DIFF_MASK) >> QS_QRP_F_DIFF_SHIFT;
	if (t0 == 0)
		return 3;
	return (qs_u32)(t0 != 0 && prompt_tokens >= t0) + (qs_u32)(t1 != 0 && prompt_tokens >= t1) +
	       (qs_u32)(t2 != 0 && prompt_tokens >= t2);
}

/*
 * The global features (docs/features.md rows 14 and 15) over the backends in mask
 * among fb[0..n): the eligible ones of this decision, never the masked ones. The
 * sum is taken modulo 2^32 as the dataplanes have always added it, and without a
 * branch per backend (the XDP program's form: the bit multiplies).
 */
QS_RC_FN void
qs_rview_global(const struct qs_feat_backend *fb, qs_u32 n, qs_u64 mask, struct qs_feat_global *gl)
{
	qs_u32 i, out = 0, cnt = 0;

	for (i = 0; i < QS_MAX_CANDIDATES; i++) {
		qs_u32 bit;

		if (i >= n)
			break;
		bit = (qs_u32)(mask >> i) & 1;
		out += bit * (fb[i].waiting + fb[i].running + fb[i].sent_reqs);
		cnt += bit;
	}
	gl->outstanding = out;
	gl->eligible = cnt;
}

#endif /* QSTEER_ROUTER_VIEW_H */
