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
 */
#ifndef QSTEER_ADMIT_H
#define QSTEER_ADMIT_H

#include "rc.h"

#define QS_ADMIT_STARVED_EVERY 4u

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
