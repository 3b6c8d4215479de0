/*
 * test_select.c - the RL phase's validation selection (trainer/train_select.h): a
 * candidate's gain is eval's own figure on the validation seeds, a worse candidate
 * is not kept, and restore brings back the kept parameters exactly. And the TPOT
 * term of the simulator environment's reward ("tpot_weight", --reward-tpot).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qs_test.h"

#include "ckpt.h"
#include "env.h"
#include "train_eval.h"
#include "train_select.h"

#define CKPT QSTEER_SOURCE_DIR "/policies/default-router.ckpt"
#define Q8   QSTEER_SOURCE_DIR "/policies/default-router.q8"

static void
load_shipped(struct qs_ppo_agent *ag)
{
	struct qs_ppo_cfg c;
	struct qs_ckpt_meta meta;
	char msg[512];

	qs_ppo_defaults(&c);
	assert_int_equal(qs_ckpt_peek(CKPT, &c, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_ppo_agent_init(ag, &c, 1, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_ckpt_load(CKPT, ag, &meta, msg, sizeof(msg)), QS_OK);
}

static void
test_select_keeps_best(void **state)
{
	struct qs_train_select sel;
	struct qs_train_eval *e = calloc(1, sizeof(*e));
	struct qs_ppo_agent ag;
	float *orig;
	char msg[512];
	int kept;
	double best, fl, gain, cost;

	(void)state;
	assert_non_null(e);
	load_shipped(&ag);
	orig = malloc(ag.pi.n_params * sizeof(float));
	assert_non_null(orig);
	memcpy(orig, ag.pi.p, ag.pi.n_params * sizeof(float));
	assert_int_equal(qs_train_select_init(&sel, "static", 2, 2, &ag, msg, sizeof(msg)), QS_OK);
	assert_int_equal(sel.n_scen, 1);

	/* the first candidate is always kept, and its gain is eval's on the same seeds */
	assert_int_equal(qs_train_select_offer(&sel, &ag, 10, &kept, msg, sizeof(msg)), QS_OK);
	assert_int_equal(kept, 1);
	e->scenario = "static";
	e->q8 = Q8;
	e->ag = &ag;
	e->seeds = 2;
	e->threads = 2;
	e->seed = QS_SELECT_SEED0;
	assert_int_equal(qs_train_eval_run(e, msg, sizeof(msg)), QS_OK);
	best = e->rows[e->best_i].mean[e->prim];
	fl = e->rows[e->f_i].mean[e->prim];
	gain = 100.0 * (best - fl) / best;
	assert_true(fabs(gain - sel.gain[0]) < 1e-9);
	/* eval's margin breakdown accounts for every disagreement: a decision with one
	 * eligible candidate cannot flip, so the buckets' flips are all of them */
	{
		uint64_t n = 0, flips = 0;

		for (int k = 0; k < QS_TRAIN_GAP_BUCKETS; k++) {
			assert_true(e->margins.flips[k] <= e->margins.n[k]);
			n += e->margins.n[k];
			flips += e->margins.flips[k];
		}
		assert_true(n > 0 && n <= e->decisions);
		assert_int_equal(flips, e->decisions - e->agree);
		assert_true(e->margins.sat_flips <= e->margins.sat_n && e->margins.sat_n <= n);
	}
	/* static's primary metric is p99 TTFT: the other columns are TPOT p99 (lower is
	 * better), SLO attainment and goodput (higher is better); a loss counts beyond
	 * its paired 95% interval over the two seeds */
	cost = 0;
	for (int c = 0; c < 3; c++) {
		static const enum qs_cmp_col col[3] = {QS_CMP_TPOT_P99, QS_CMP_SLO, QS_CMP_GOODPUT};
		const struct qs_cmp_row *br = &e->rows[e->best_i], *fr = &e->rows[e->f_i];
		double d[2], m, ci, bm = br->mean[col[c]];

		for (int k = 0; k < 2; k++)
			d[k] = 100.0 *
			       (c == 0 ? br->v[col[c]][k] - fr->v[col[c]][k]
				       : fr->v[col[c]][k] - br->v[col[c]][k]) /
			       bm;
		qs_cmp_mean_ci(d, 2, &m, &ci);
		cost += m + ci < 0 ? -(m + ci) : 0;
	}
	assert_true(fabs(cost - sel.cost[0]) < 1e-9);
	gain -= cost;
	assert_true(fabs(sel.kept_score - (gain < 0 ? QS_SELECT_LOSS_WEIGHT : 1) * gain) < 1e-9);
	qs_train_eval_free(e);

	/* all scores equal: the argmax is the first eligible backend, a far worse router */
	memset(ag.pi.p, 0, ag.pi.n_params * sizeof(float));
	assert_int_equal(qs_train_select_offer(&sel, &ag, 20, &kept, msg, sizeof(msg)), QS_OK);
	assert_int_equal(kept, 0);
	assert_true(sel.gain[0] < sel.kept_gain[0] - 10.0);
	assert_int_equal(sel.kept_step, 10);
	qs_train_select_restore(&sel, &ag);
	assert_memory_equal(ag.pi.p, orig, ag.pi.n_params * sizeof(float));

	qs_train_select_free(&sel);
	qs_ppo_agent_free(&ag);
	free(orig);
	free(e);
}

static void
test_select_rejects(void **state)
{
	struct qs_train_select sel;
	struct qs_ppo_agent ag;
	char msg[512];

	(void)state;
	load_shipped(&ag);
	assert_int_not_equal(
	    qs_train_select_init(&sel, "static,,bursty", 2, 1, &ag, msg, sizeof(msg)), QS_OK);
	assert_non_null(strstr(msg, "'static,,bursty'"));
	assert_int_not_equal(qs_train_select_init(&sel, "static", 0, 1, &ag, msg, sizeof(msg)),
			     QS_OK);
	assert_non_null(strstr(msg, "--select-seeds 0"));
	assert_int_not_equal(
	    qs_train_select_init(&sel, "no-such-scenario", 2, 1, &ag, msg, sizeof(msg)), QS_OK);
	assert_non_null(strstr(msg, "no-such-scenario"));
	qs_ppo_agent_free(&ag);
}

/* One training episode of static (randomized from the seed, at most 4,000 requests),
 * routed round robin: every credit's reward by tag. */
static double
episode(const char *weight, float *out, uint32_t cap)
{
	void *env;
	char msg[512];
	uint8_t rows[64 * 16];
	uint32_t n_cand, i = 0, got = 0;
	uint64_t mask;
	int done = 0;
	double sum = 0;
	struct qs_train_credit cr[64];

	assert_int_equal(qs_env_sim.create(&env, "static", 1, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_env_sim.set(env, "tpot_weight", weight, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_env_sim.set(env, "randomize", "1", msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_env_sim.reset(env, 7, msg, sizeof(msg)), QS_OK);
	for (;;) {
		uint32_t n;

		assert_int_equal(
		    qs_env_sim.observe(env, rows, &n_cand, &mask, &done, msg, sizeof(msg)), QS_OK);
		while ((n = qs_env_sim.credits(env, cr, 64)) > 0)
			for (uint32_t k = 0; k < n; k++, got++) {
				assert_true(cr[k].tag < cap);
				out[cr[k].tag] = cr[k].reward;
				sum += cr[k].reward;
			}
		if (done)
			break;
		assert_int_equal(qs_env_sim.act(env, i % n_cand, i, msg, sizeof(msg)), QS_OK);
		i++;
	}
	assert_int_equal(got, i);
	qs_env_sim.destroy(env);
	return sum;
}

static void
test_reward_tpot(void **state)
{
	enum { CAP = 8192 };
	float *a = calloc(CAP, sizeof(float)), *b = calloc(CAP, sizeof(float));
	void *env;
	char msg[512];
	uint32_t lower = 0;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	/* the same routing, so the same requests complete alike: only the term differs */
	double s0 = episode("0", a, CAP), s1 = episode("2", b, CAP);
	for (uint32_t k = 0; k < CAP; k++) {
		/* the term is a penalty: it never raises a reward, and its size is
		 * 0.25 W z^2 with z = TPOT / 100 ms (static's limit) below 4 */
		assert_true(b[k] <= a[k]);
		assert_true(a[k] - b[k] <= 0.25f * 2 * 16 + 1e-6f);
		lower += b[k] < a[k];
	}
	/* every multi-token request of static pays it (TPOT is tens of ms) */
	assert_true(lower > 1000);
	assert_true(s1 < s0);
	assert_int_equal(qs_env_sim.create(&env, "static", 1, msg, sizeof(msg)), QS_OK);
	assert_int_not_equal(qs_env_sim.set(env, "tpot_weight", "-1", msg, sizeof(msg)), QS_OK);
	assert_non_null(strstr(msg, "tpot weight '-1': expected 0..16"));
	assert_int_not_equal(qs_env_sim.set(env, "tpot_weight", "2x", msg, sizeof(msg)), QS_OK);
	qs_env_sim.destroy(env);
	free(a);
	free(b);
}

QS_TEST_MAIN(cmocka_unit_test(test_select_keeps_best), cmocka_unit_test(test_select_rejects),
	     cmocka_unit_test(test_reward_tpot))
