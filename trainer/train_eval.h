/*
 * train_eval.h - qsteer-train eval on a simulator scenario: every baseline, the
 * int8 policy and (given its checkpoint) the float policy on the same held-out
 * seeds, through the simulator's one compare (include/qsteer/compare.h), plus the
 * paired float-vs-int8 difference. Computes only; qsteer-train prints the table.
 */
#ifndef QSTEER_TRAINER_TRAIN_EVAL_H
#define QSTEER_TRAINER_TRAIN_EVAL_H

#include <stdint.h>

#include "ppo.h"
#include "qsteer/compare.h"
#include "qsteer/policy.h"

/* The paired interval the metric difference must reach before eval calls it measured:
 * half the 1% float-vs-int8 target, so a difference at the target is still told apart. */
#define QS_TRAIN_DIFF_HALF_WIDTH_PCT 0.5

/* Columns of qsteer-train's table: the compare's, without the end-to-end mean. */
#define QS_TRAIN_EVAL_COLS 5
extern const enum qs_cmp_col qs_train_eval_cols[QS_TRAIN_EVAL_COLS];

/*
 * Where the int8 policy's disagreements are, by the float net's margin at the
 * decision (its best eligible score minus the runner-up's: only near-ties can flip
 * under rounding) and at decisions with some feature at 127 (hidden activations
 * beyond the calibrated ranges). Counted over every int8-run decision with two or
 * more eligible candidates; each run counts its own and adds them in at its end
 * (runs end on several threads at once).
 */
#define QS_TRAIN_GAP_BUCKETS 6 /* below 0.1, 0.3, 1, 3, 10 score units, then the rest */
extern const double qs_train_gap_edges[QS_TRAIN_GAP_BUCKETS - 1];
struct qs_train_margins {
	uint64_t n[QS_TRAIN_GAP_BUCKETS], flips[QS_TRAIN_GAP_BUCKETS];
	uint64_t sat_n, sat_flips;
};

struct qs_train_eval {
	/* in */
	const char *scenario;
	const char *q8;		       /* the int8 policy's file */
	const struct qs_ppo_agent *ag; /* the float policy, or NULL */
	uint32_t seeds, threads;
	uint64_t seed; /* seeds seed .. seed + seeds - 1 */
	/* out */
	struct qs_sim_config cfg;
	uint32_t n; /* rows: the baselines, the int8 policy, then the float one (with ag) */
	const char *names[QS_BASELINE__COUNT + 2]; /* NULL: the float policy */
	struct qs_cmp_row *rows;
	int q_i, f_i; /* the int8 and float rows (f_i -1 without ag) */
	int best_i;   /* the best baseline by the primary metric */
	int ttft;     /* primary metric ttft_p99 (lower is better), else SLO attainment */
	enum qs_cmp_col prim;
	uint64_t agree, decisions; /* int8 decisions that match the float policy's (with ag) */
	struct qs_train_margins margins; /* where the others are (with ag) */
	double diff_pct, diff_ci_pct;	 /* paired int8-minus-float difference of the primary
					  * metric, % of the float mean (with ag) */
	char spec[1100];
	struct qs_policy *p;
};

/*
 * compare.h's run hook for a trained policy: the float net's argmax (p NULL), or the
 * int8 file p's choice counted against it decision by decision; decisions with
 * nothing eligible go to the scenario's fallback, as everywhere else.
 */
struct qs_train_policy_run {
	const struct qs_ppo_agent *ag;
	const struct qs_policy *p;
	struct qs_train_margins *margins; /* with p: where the disagreements are, or NULL */
};
int qs_train_policy_run(void *ctx, struct qs_sim *s, uint64_t *agree, uint64_t *decisions,
			char *msg, size_t msglen);

/* Run e's compare; msg says why not (qsteer-train prefixes its name). */
int qs_train_eval_run(struct qs_train_eval *e, char *msg, size_t msglen);
void qs_train_eval_free(struct qs_train_eval *e);

#endif /* QSTEER_TRAINER_TRAIN_EVAL_H */
