/*
 * admit.h - priority admission, one rule for the agent (agent/agent.c) and the
 * simulator's batch backends (sim/backend.c): restricted C (rc.h).
 *
 * With priority admission on, the waiting request admitted next is the one of
 * highest QRP priority (0..3), the earliest in the waiting list on a tie
 * (preempted sequences sit at its front, then arrival order). The starvation
 * bound: a request that has waited starve_ns is starved, and while any is, at
 * least one admission in QS_ADMIT_STARVED_EVERY goes to the earliest starved one
 * whatever its priority. So the lowest class keeps a share of the backend under
 * overload instead of none, while the higher classes keep the rest: promoting
 * every starved request above every class was measured first and gave the higher
 * class no protection at all under sustained overload (its p99 TTFT as FCFS's).
 *
 * Before an iteration is scheduled, the request to admit next, when it does not fit
 * (no sequence slot, or fewer free KV blocks than its prompt's first chunk needs),
 * preempts running sequences of a lower priority that are not starved, lowest and
 * newest first, until it fits or none is left (a bounded wait is not undone).
 *
 * Tenant fair share (admission "fair", issue 15): priority admission as above, with
 * one more key between the priority and the queue order: of the waiting requests
 * of the highest priority, the one whose tenant had the fewest prefill tokens
 * admitted on this backend lately goes first (struct qs_admit_share: tokens per
 * tenant, halved every second). A tenant that bursts mega-prompts runs up its
 * count within the burst, so another tenant's requests of the same class stop
 * queueing behind them; a tenant alone on a backend is served exactly as under
 * priority admission. It orders admissions only: preemption follows priority, and
 * the starvation bound still applies. Weighing the KV blocks tenants hold instead
 * was tried first and protected the wrong tenant on the adversarial scenario: the
 * steady chat tenant holds more blocks than the bursting one (docs/sim.md).
 */
#ifndef QSTEER_ADMIT_H
#define QSTEER_ADMIT_H

#include "rc.h"

#define QS_ADMIT_STARVED_EVERY 4u
#define QS_ADMIT_TENANTS       16u

/*
 * Prefill tokens each tenant had admitted on a backend lately: every admission
 * adds its prompt's tokens to its tenant's row, and every row halves each
 * QS_ADMIT_SHARE_HALF_NS. Rows for the first QS_ADMIT_TENANTS tenants seen, one
 * row for the rest.
 */
#define QS_ADMIT_SHARE_HALF_NS 1000000000ull

struct qs_admit_share {
	qs_u32 n;
	qs_u16 tenant[QS_ADMIT_TENANTS];
	qs_u64 tokens[QS_ADMIT_TENANTS];
	qs_u64 others; /* tenants past the first QS_ADMIT_TENANTS */
	qs_u64 epoch;  /* half-lives elapsed when last decayed */
};

QS_RC_FN void
qs_admit_share_clear(struct qs_admit_share *t)
{
	t->n = 0;
	t->others = 0;
	t->epoch = 0;
}

/* Halve every row once per half-life elapsed up to now (64 or more: all 0). */
QS_RC_FN void
qs_admit_share_decay(struct qs_admit_share *t, qs_u64 now)
{
	qs_u64 e = now / QS_ADMIT_SHARE_HALF_NS, k;
	qs_u32 i;

	if (e <= t->epoch)
		return;
	k = e - t->epoch;
	t->epoch = e;
	for (i = 0; i < QS_ADMIT_TENANTS && i < t->n; i++)
		t->tokens[i] = k >= 64 ? 0 : t->tokens[i] >> k;
	t->others = k >= 64 ? 0 : t->others >> k;
}

/* Row of tenant (QS_ADMIT_TENANTS: not among the first QS_ADMIT_TENANTS). */
QS_RC_FN qs_u32
qs_admit_share_row(const struct qs_admit_share *t, qs_u16 tenant)
{
	qs_u32 i;

	for (i = 0; i < QS_ADMIT_TENANTS && i < t->n; i++)
		if (t->tenant[i] == tenant)
			return i;
	return QS_ADMIT_TENANTS;
}

QS_RC_FN void
qs_admit_share_add(struct qs_admit_share *t, qs_u16 tenant, qs_u64 tokens)
{
	qs_u32 i = qs_admit_share_row(t, tenant);

	if (i == QS_ADMIT_TENANTS && t->n < QS_ADMIT_TENANTS) {
		i = t->n++;
		t->tenant[i] = tenant;
		t->tokens[i] = 0;
	}
	if (i == QS_ADMIT_TENANTS)
		t->others += tokens;
	else
		t->tokens[i] += tokens;
}

/* Tenant's recent prefill tokens (a tenant in no row while rows are left: 0). */
QS_RC_FN qs_u64
qs_admit_share_get(const struct qs_admit_share *t, qs_u16 tenant)
{
	qs_u32 i = qs_admit_share_row(t, tenant);

	return i == QS_ADMIT_TENANTS ? (t->n < QS_ADMIT_TENANTS ? 0 : t->others) : t->tokens[i];
}

/*
 * Does a waiting request (priority pa, its tenant's recent prefill tokens ha) go
 * before the best so far (pb, hb), which is earlier in the queue? Higher priority
 * first; with fair share, then the tenant with fewer recent tokens; else the
 * earlier stays.
 */
QS_RC_FN qs_u32
qs_admit_better(qs_u32 pa, qs_u64 ha, qs_u32 pb, qs_u64 hb, qs_u32 fair)
{
	return pa > pb || (pa == pb && fair && ha < hb);
}

/* Has a request that arrived at arrived_ns waited starve_ns (0: no bound)? */
QS_RC_FN qs_u32
qs_admit_starved(qs_u64 arrived_ns, qs_u64 now, qs_u64 starve_ns)
{
	return starve_ns && now >= arrived_ns && now - arrived_ns >= starve_ns;
}

/* Admit the earliest starved request rather than the best, after since admissions
 * without a starved one (have_starved: one waits)? */
QS_RC_FN qs_u32
qs_admit_take_starved(qs_u32 have_starved, qs_u32 since)
{
	return have_starved && since + 1 >= QS_ADMIT_STARVED_EVERY;
}

/* Admissions since a starved one, after admitting (took_starved) with have_starved. */
QS_RC_FN qs_u32
qs_admit_since_next(qs_u32 have_starved, qs_u32 took_starved, qs_u32 since)
{
	return (!have_starved || took_starved) ? 0 : since + 1;
}

/* Is running sequence r (priority rp, admission number radm) a better victim than
 * the best so far (bp, badm)? Lowest priority, then newest. */
QS_RC_FN qs_u32
qs_admit_victim_better(qs_u32 rp, qs_u64 radm, qs_u32 bp, qs_u64 badm)
{
	return rp < bp || (rp == bp && radm > badm);
}

/* Does a request needing need_blocks fit beside n_running sequences? */
QS_RC_FN qs_u32
qs_admit_fits(qs_u32 n_running, qs_u32 max_seqs, qs_u32 need_blocks, qs_u32 free_blocks)
{
	return n_running < max_seqs && need_blocks <= free_blocks;
}

#endif /* QSTEER_ADMIT_H */
