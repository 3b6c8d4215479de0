/*
 * train_select.h - keep the best policy the RL phase passed through, judged the way
 * eval judges it: the float net's argmax routing every training scenario on
 * validation seeds, against the best baseline on the same seeds, on the whole table
 * (the primary metric's gain less the losses on the other columns).
 *
 * Why: the policy gradient here is a noisy estimate (per-decision rewards from a
 * shared queue, median approx KL 4e-5 per update); over a long run the argmax policy
 * random-walks away from the behaviour-cloned start while the sampled reward stays
 * flat (docs/trainer.md, "Selecting the policy"). Early stopping on a validation
 * set is the standard guard: the run ends on the best candidate, the start of RL
 * included, so RL can only replace the clone where it measurably routes better.
 *
 * Validation seeds have bit 63 set (never an evaluation seed, which is a small
 * integer) and a fixed tag in their low bits (training episodes draw theirs at
 * random from 2^63 values).
 */
#ifndef QSTEER_TRAINER_TRAIN_SELECT_H
#define QSTEER_TRAINER_TRAIN_SELECT_H

#include <stdint.h>

#include "ppo.h"
#include "qsteer/compare.h"

#define QS_SELECT_MAX_SCEN 16
#define QS_SELECT_SEED0	   (1ull << 63 | 0x5e1ec7000ull)
/* A candidate's score: the mean over scenarios of its % gain over the best baseline
 * on the primary metric less its % losses on the other columns of the table (TPOT
 * p99, SLO attainment, goodput) beyond their paired 95% intervals, a negative
 * result counted this many times. */
#define QS_SELECT_LOSS_WEIGHT 4.0

struct qs_train_select {
	uint32_t n_scen, seeds, threads;
	struct qs_sim_config *cfg;    /* [n_scen] */
	struct qs_cmp_row *base;      /* [n_scen] the best baseline's (by the primary metric) */
	int ttft[QS_SELECT_MAX_SCEN]; /* primary metric p99 TTFT (lower is better), else SLO */
	char name[QS_SELECT_MAX_SCEN][64];    /* scenario names, for the progress line */
	double gain[QS_SELECT_MAX_SCEN];      /* the last scored candidate's, % (+ better) */
	double cost[QS_SELECT_MAX_SCEN];      /* its losses on the other columns beyond their
					       * paired 95% intervals, % (>= 0) */
	double kept_gain[QS_SELECT_MAX_SCEN]; /* the kept candidate's */
	double score;			      /* the last scored candidate's */
	double kept_score;		      /* its score; -inf before the first */
	uint64_t kept_step;		      /* the decision count it was scored at */
	float *kept_pi, *kept_vf;	      /* its parameters */
	size_t n_pi, n_vf;
};

/* Load the comma-separated scenarios and score every baseline on them (once). */
int qs_train_select_init(struct qs_train_select *s, const char *scenarios, uint32_t seeds,
			 uint32_t threads, const struct qs_ppo_agent *ag, char *msg, size_t msglen);
/* Score ag's float argmax policy; keep it when its score beats the kept one's.
 * *kept is 1 when it did. */
int qs_train_select_offer(struct qs_train_select *s, const struct qs_ppo_agent *ag, uint64_t step,
			  int *kept, char *msg, size_t msglen);
/* Copy the kept parameters into ag (nothing kept: ag unchanged). */
void qs_train_select_restore(const struct qs_train_select *s, struct qs_ppo_agent *ag);
void qs_train_select_free(struct qs_train_select *s);

#endif /* QSTEER_TRAINER_TRAIN_SELECT_H */
