/*
 * shadow.h - the second policy of a policy set (shadow and canary modes,
 * docs/operations.md "Shadow and canary"), as qsteer-dp (dp/core.c) and the XDP
 * program (ebpf/qsteer.bpf.c) both run it. Restricted C (rc.h): one definition of
 * the canary slice and of the shadow counters' layout for the host and for BPF, so
 * the two dataplanes cannot split traffic differently or count differently.
 */
#ifndef QSTEER_SHADOW_H
#define QSTEER_SHADOW_H

#include "rc.h"
#include "rng.h"

/* Backends a shadow table covers: the dataplanes' limit (one u64 mask). */
#define QS_SHADOW_MAX_BACKENDS 64

/*
 * Is request id in the canary slice of pct percent (0..100)? A fixed mix of the id
 * (splitmix64's finaliser: ids are often sequential, the slice must not be), so a
 * request and all its packets fall on one side, on every dataplane and worker.
 * The modulo is by a constant (BPF_MOD with an immediate).
 */
QS_RC_FN int
qs_canary_pick(qs_u64 request_id, qs_u32 pct)
{
	return (qs_u32)(qs_mix64(request_id + 0x9e3779b97f4a7c15ull) % 100) < pct;
}

/*
 * Shadow counters of one backend a, per worker (dp) or per CPU (XDP), summed by the
 * control thread. Over the requests the shadow policy scored and that went to a
 * backend: `active` counts those the active policy sent to a, `would` those the
 * shadow would have sent to a, and pair[s] those the active policy sent to a while
 * the shadow chose s != a (the disagreement table, row = active backend).
 * 66 u64 = 528 bytes: 64 rows stay under the kernel's 32 KiB per-CPU value limit
 * one row per map entry.
 */
struct qs_shadow_row {
	qs_u64 active;
	qs_u64 would;
	qs_u64 pair[QS_SHADOW_MAX_BACKENDS];
};

/* Count one scored request: sent to a by the active policy, s by the shadow's choice
 * (s = a where they agree). ra is row a, rs row s (the same row where s == a). */
QS_RC_FN void
qs_shadow_count(struct qs_shadow_row *ra, struct qs_shadow_row *rs, qs_u32 a, qs_u32 s)
{
	ra->active++;
	rs->would++;
	if (s != a)
		ra->pair[s & (QS_SHADOW_MAX_BACKENDS - 1)]++;
}

#endif /* QSTEER_SHADOW_H */
