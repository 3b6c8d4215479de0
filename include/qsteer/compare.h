/*
 * compare.h - the one compare: routers side by side on the same scenario and seeds,
 * each metric's mean and 95% confidence interval over the seeds. qsteer-sim compare,
 * qsteer-train eval (baselines beside a float and an int8 policy) and qsteer-load's
 * table all compute with it, so their intervals use the same Student t quantiles.
 * Part of libqsteer-sim; it prints nothing (the tables are the programs').
 */
#ifndef QSTEER_COMPARE_H
#define QSTEER_COMPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QS_CMP_COLS	 6
#define QS_CMP_MAX_SEEDS 1000 /* qsteer-train eval --seeds; qsteer-sim compare takes 64 */
#define QS_CDF_POINTS	 2048

/* The columns, in qs_cmp_col_names' order. */
enum qs_cmp_col {
	QS_CMP_TTFT_P50 = 0,
	QS_CMP_TTFT_P99,
	QS_CMP_TPOT_P99,
	QS_CMP_E2E_MEAN,
	QS_CMP_SLO,
	QS_CMP_GOODPUT,
};

extern const char *const qs_cmp_col_names[QS_CMP_COLS];

/* One router's results over K seeds in a compare. */
struct qs_cmp_row {
	char router[QS_SIM_NAME_LEN]; /* the router's own name (q8: the file's base name) */
	double v[QS_CMP_COLS][QS_CMP_MAX_SEEDS]; /* per seed, the columns above */
	double mean[QS_CMP_COLS];
	double ci[QS_CMP_COLS];		 /* 95% half-width */
	uint64_t fallbacks;		 /* the router's fallback decisions, all seeds */
	uint64_t agree, decisions;	 /* a custom router's counts (struct qs_cmp_router) */
	uint32_t cdf_n[QS_SIM_M__COUNT]; /* the first seed's CDFs, with qs_cmp_opts.cdf */
	double cdf_x[QS_SIM_M__COUNT][QS_CDF_POINTS];
	double cdf_p[QS_SIM_M__COUNT][QS_CDF_POINTS];
};

/*
 * Two-sided 95% Student t quantile (the 0.975 quantile) for df degrees of freedom;
 * 0 for df 0. Tabled to 30 (three decimals, as printed tables give them); above,
 * the Cornish-Fisher expansion in 1/df to the fourth order, within 1e-5 there. The
 * normal 1.96 alone would understate a 12-seed interval by 11%.
 */
double qs_cmp_t975(uint32_t df);
/* Mean of x[0..k) and the 95% half-width of that mean (0 for k < 2). */
void qs_cmp_mean_ci(const double *x, uint32_t k, double *mean, double *ci);
/* A run's metrics as the compare's columns. */
void qs_cmp_values(const struct qs_sim_metrics *m, double out[QS_CMP_COLS]);
/* r's mean and ci from its first k seeds. */
void qs_cmp_finish(struct qs_cmp_row *r, uint32_t k);

/*
 * A router of a compare: spec for qs_sim_router_parse ("lor", "q8:FILE"), or a run
 * function for one it cannot make (the trainer's float policy, or its int8 policy
 * scored decision by decision against the float one): run drives s to its end, may
 * count agreements, and returns QS_OK or fills msg. Called from several threads at
 * once, each with its own s.
 */
struct qs_cmp_router {
	const char *spec; /* with run: only the row's name */
	int (*run)(void *ctx, struct qs_sim *s, uint64_t *agree, uint64_t *decisions, char *msg,
		   size_t msglen);
	void *ctx;
};

struct qs_cmp_opts {
	uint32_t seeds;	  /* 1..QS_CMP_MAX_SEEDS */
	uint64_t seed0;	  /* seeds seed0 .. seed0 + seeds - 1 */
	uint32_t threads; /* the job pool's threads (jobs.h) */
	bool cdf;	  /* fill the rows' CDFs (from each router's first seed) */
};

/*
 * Run every router on every seed (one job each, on the job pool) and fill rows[0..n)
 * with their values, means and intervals. On failure, msg is the first failing job's
 * message (routers in order, then seeds) and *bad, when given, that job's router
 * index * seeds + seed index.
 */
int qs_cmp_run(const struct qs_sim_config *cfg, const struct qs_cmp_router *routers, uint32_t n,
	       const struct qs_cmp_opts *o, struct qs_cmp_row *rows, uint32_t *bad, char *msg,
	       size_t msglen);

#ifdef __cplusplus
}
#endif

#endif /* QSTEER_COMPARE_H */
