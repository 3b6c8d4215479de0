/*
 * train_export.h - a trained router policy to its .q8: post-training quantization,
 * QAT rounds while the lowest scenario's float-vs-int8 agreement is short, the
 * choice of the round to keep (agreement, fidelity to the trained policy, the
 * int8 metric's guard), and the held-out evaluation qsteer-train train reports.
 * The selection logic lives here, not in qsteer-train's main.
 */
#ifndef QSTEER_TRAINER_TRAIN_EXPORT_H
#define QSTEER_TRAINER_TRAIN_EXPORT_H

#include <stdint.h>
#include <stdio.h>

#include "env.h"
#include "mlp.h"
#include "qsteer/policy.h"

#define QS_TRAIN_MAX_SCENARIOS 16 /* in a --scenario list (agreement, guard per scenario) */
#define QS_TRAIN_HELDOUT_SEED0 1  /* evaluation seeds 1..K; training episodes set bit 63 */

struct qs_train_export_cfg {
	const char *scenario; /* the training list, comma-separated */
	const char *out;      /* the .q8 written (and rewritten each round) */
	uint64_t seed;	      /* QAT rounds' seeds: seed + round */
	uint64_t created;     /* the file's creation time */
	double calib_pct;     /* activation range percentile */
	double consist, anchor, qat_temp, focus_gap, focus_frac; /* consistency QAT */
	double min_fid;	   /* a round's float net must agree this much with the trained one */
	double guard;	   /* and its int8 metric not fall more than this (relative) behind */
	double qat_target; /* QAT runs while the lowest scenario's agreement is below it */
	uint32_t qat_steps, qat_rounds;
	/* copies per hidden layer's channels, or the widened layers' units (0: none) */
	uint32_t split[QS_MLP_MAX_LAYERS], split_width[QS_MLP_MAX_LAYERS];
	int recalib; /* recalibrate ranges on the moved net's fresh decisions */
	FILE *log;   /* progress and errors, as qsteer-train prints them */
	int quiet;   /* only the QAT-round and error lines */
};

/* What the exported file scored: agreement, and the first scenario's metric for the
 * float net and the int8 file on two held-out seeds. */
struct qs_train_export_result {
	double agree;
	uint32_t decisions;
	const char *metric;
	char first[1024];
	double float_metric, int8_metric;
	int bias_clamped;
};

/*
 * Episodes of an env (its scenario as written, no randomization) on seeds seed0,
 * seed0 + 1, ... with the int8 policy (p) or the float scorer (ag): *metric gets the
 * mean of the env's primary metric, *name its name. Errors are also written to log.
 */
int qs_train_evaluate(const struct qs_train_env_ops *ops, const char *scenario,
		      const struct qs_policy *p, const struct qs_ppo_agent *ag, uint32_t episodes,
		      uint64_t seed0, double *metric, const char **name, FILE *log);

/*
 * Quantize ag's policy to c->out, collecting calibration and agreement states with
 * ev into states; run QAT rounds as c asks and keep the best round's file. In
 * consistency mode ag's policy is left as the float net the file was quantized
 * from, else as trained.
 */
int qs_train_export(const struct qs_train_export_cfg *c, const struct qs_train_env_ops *ops,
		    struct qs_ppo_agent *ag, struct qs_roll *ev, struct qs_ppo_buf *states,
		    struct qs_train_export_result *res);

#endif /* QSTEER_TRAINER_TRAIN_EXPORT_H */
