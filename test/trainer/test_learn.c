/*
 * test_learn.c - end to end on the built-in contextual bandit (bandit.c: the right
 * candidate is the eligible one with the smallest feature 5; rewards arrive one
 * decision late): PPO, REINFORCE, A2C and DQN must reach > 95% greedy accuracy within a
 * fixed number of updates from a fixed seed, rollouts must not depend on the thread
 * count, and the trained scorer must survive int8 export with >= 99% agreement.
 * Also the two random pieces acting and updating share: masked sampling and the
 * minibatch shuffle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "qs_test.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dqn.h"
#include "env.h"
#include "quantize.h"
#include "rng.h"

#define N_ENV 8
#define STEPS 128

static float g_consist; /* cfg.consist_coef for train() */

static double
train(enum qs_algo algo, uint32_t max_updates, uint32_t *used, struct qs_ppo_agent *ag,
      struct qs_ppo_buf *keep)
{
	struct qs_ppo_cfg c;
	struct qs_roll r, ev;
	struct qs_ppo_buf b, eb;
	struct qs_roll_stats st;
	struct qs_dqn_cfg dc = {0};
	struct qs_dqn dq = {0};
	char msg[256];
	double acc = 0;

	qs_ppo_defaults(&c);
	c.algo = algo;
	c.adam_pi.lr = algo == QS_ALGO_PPO ? 2e-3f : 3e-3f;
	c.adam_pi.sched = QS_ADAM_CONSTANT;
	c.ent_coef = 0.001f;
	c.gamma = 0; /* a bandit: a decision earns only its own reward */
	c.consist_coef = g_consist;
	assert_int_equal(qs_ppo_agent_init(ag, &c, 1, NULL, 0), QS_OK);
	assert_int_equal(
	    qs_roll_init(&r, &qs_env_bandit, "bandit", N_ENV, 2, STEPS, ag, 1, msg, sizeof(msg)),
	    QS_OK);
	assert_int_equal(
	    qs_roll_init(&ev, &qs_env_bandit, "bandit", N_ENV, 2, STEPS, ag, 999, msg, sizeof(msg)),
	    QS_OK);
	assert_int_equal(qs_ppo_buf_init(&b, N_ENV, N_ENV * STEPS, N_ENV * STEPS * 64, 16, NULL, 0),
			 QS_OK);
	assert_int_equal(
	    qs_ppo_buf_init(&eb, N_ENV, N_ENV * STEPS, N_ENV * STEPS * 64, 16, NULL, 0), QS_OK);
	if (algo == QS_ALGO_DQN) {
		qs_dqn_defaults(&dc);
		dc.gamma = 0;
		dc.eps_frac = 0.25f;
		/* Exploration never quite stops: Q of rows the greedy policy stopped
		 * choosing is only corrected when they are tried (with 0.02 the accuracy
		 * sagged from 0.94 to 0.82 as epsilon fell). */
		dc.eps_end = 0.1f;
		ag->opt_pi.cfg.lr = 1e-3f;
		assert_int_equal(qs_dqn_init(&dq, &dc, ag, N_ENV, N_ENV * STEPS, N_ENV * STEPS * 64,
					     1, msg, sizeof(msg)),
				 QS_OK);
	}
	for (*used = 1; *used <= max_updates; (*used)++) {
		ag->explore_eps = qs_dqn_epsilon(&dc, *used - 1, max_updates);
		if (qs_roll_collect(&r, ag, &b, 0, &st, msg, sizeof(msg)) != QS_OK)
			fail_msg("%s", msg);
		if (algo == QS_ALGO_DQN) {
			assert_int_equal(qs_dqn_store(&dq, &b, msg, sizeof(msg)), QS_OK);
			assert_int_equal(qs_dqn_update(&dq, ag, NULL, msg, sizeof(msg)), QS_OK);
		} else {
			assert_int_equal(qs_ppo_update(ag, &b, NULL, NULL, 0), QS_OK);
		}
		if (*used % 5)
			continue;
		/* greedy evaluation on environments seeded apart from training */
		assert_int_equal(qs_roll_collect(&ev, ag, &eb, 1, &st, msg, sizeof(msg)), QS_OK);
		acc = st.reward_per_decision;
		if (acc > 0.95)
			break;
	}
	if (keep)
		assert_int_equal(qs_roll_collect(&ev, ag, keep, 1, &st, msg, sizeof(msg)), QS_OK);
	qs_dqn_free(&dq);
	qs_ppo_buf_free(&b);
	qs_ppo_buf_free(&eb);
	qs_roll_free(&r);
	qs_roll_free(&ev);
	return acc;
}

static void
test_ppo_learns(void **state)
{
	struct qs_ppo_agent ag;
	struct qs_ppo_buf states;
	struct qs_quant_plan q;
	struct qs_quant_states qs;
	struct qs_q8_desc d;
	struct qs_policy *p;
	uint32_t used;
	uint8_t buf[8192];
	size_t len;
	double acc, agree;
	char msg[256];

	(void)state;
	assert_int_equal(
	    qs_ppo_buf_init(&states, N_ENV, N_ENV * STEPS, N_ENV * STEPS * 64, 16, NULL, 0), QS_OK);
	acc = train(QS_ALGO_PPO, 100, &used, &ag, &states);
	print_message("ppo: greedy accuracy %.4f after %u updates\n", acc, used);
	assert_true(acc > 0.95);
	/* export the trained scorer and compare its choices with the float model's */
	qs = (struct qs_quant_states){16, states.n, states.rows, states.row_off, states.mask};
	assert_int_equal(qs_quant_plan_init(&q, &ag.pi, NULL, 0), QS_OK);
	assert_int_equal(qs_quant_calibrate(&q, &ag.pi, &qs, 1.0f, 1u << 20, NULL, 0), QS_OK);
	qs_quant_build(&q, &ag.pi);
	qs_quant_desc(&q, "bandit", 0, &d);
	assert_int_equal(qs_q8_write(&d, buf, sizeof(buf), &len, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_policy_load(buf, len, "bandit", NULL, &p, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_quant_agreement(&ag.pi, p, &qs, &agree, NULL, 0), QS_OK);
	print_message("trained scorer: float-vs-int8 agreement %.4f\n", agree);
	assert_true(agree >= 0.99);
	qs_policy_free(p);
	qs_quant_plan_free(&q);
	qs_ppo_buf_free(&states);
	qs_ppo_agent_free(&ag);
}

/* algo learns the bandit past want within 150 updates. */
static void
learns(enum qs_algo algo, double want)
{
	struct qs_ppo_agent ag;
	uint32_t used;
	double acc;

	acc = train(algo, 150, &used, &ag, NULL);
	print_message("%s: greedy accuracy %.4f after %u updates\n", qs_algo_name(algo), acc, used);
	assert_true(acc > want);
	qs_ppo_agent_free(&ag);
}

static void
test_reinforce_learns(void **state)
{
	(void)state;
	learns(QS_ALGO_REINFORCE, 0.95);
}

/* A2C is REINFORCE's update with GAE(lambda) advantages; on the bandit (gamma 0)
 * both reduce to the one-step advantage, so this checks the path, not the lambda. */
static void
test_a2c_learns(void **state)
{
	(void)state;
	learns(QS_ALGO_A2C, 0.95);
}

/*
 * DQN: replay, target network, epsilon-greedy rollouts; Q regresses on the reward.
 * Q(row) has to predict the absolute chance that its row is the best one, where the
 * softmax only ranks rows: it plateaus at 0.90-0.94 here (a uniform choice: 0.31).
 */
static void
test_dqn_learns(void **state)
{
	(void)state;
	learns(QS_ALGO_DQN, 0.88);
}

/* The same seed gives bit-identical rollouts with 1 and 3 threads. */
static void
test_threads_deterministic(void **state)
{
	struct qs_ppo_cfg c;
	struct qs_ppo_agent ag;
	struct qs_roll r1, r3;
	struct qs_ppo_buf b1, b3;

	(void)state;
	qs_ppo_defaults(&c);
	assert_int_equal(qs_ppo_agent_init(&ag, &c, 5, NULL, 0), QS_OK);
	assert_int_equal(qs_roll_init(&r1, &qs_env_bandit, "bandit", 5, 1, 100, &ag, 3, NULL, 0),
			 QS_OK);
	assert_int_equal(qs_roll_init(&r3, &qs_env_bandit, "bandit", 5, 3, 100, &ag, 3, NULL, 0),
			 QS_OK);
	assert_int_equal(qs_ppo_buf_init(&b1, 5, 500, 500 * 64, 16, NULL, 0), QS_OK);
	assert_int_equal(qs_ppo_buf_init(&b3, 5, 500, 500 * 64, 16, NULL, 0), QS_OK);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(qs_roll_collect(&r1, &ag, &b1, 0, NULL, NULL, 0), QS_OK);
		assert_int_equal(qs_roll_collect(&r3, &ag, &b3, 0, NULL, NULL, 0), QS_OK);
		assert_int_equal(b1.n, 500);
		assert_int_equal(b1.n, b3.n);
		assert_int_equal(b1.n_rows, b3.n_rows);
		assert_memory_equal(b1.rows, b3.rows, (size_t)b1.n_rows * 16);
		assert_memory_equal(b1.action, b3.action, b1.n * 2);
		assert_memory_equal(b1.reward, b3.reward, b1.n * 4);
		assert_memory_equal(b1.adv, b3.adv, b1.n * 4);
	}
	qs_ppo_buf_free(&b1);
	qs_ppo_buf_free(&b3);
	qs_roll_free(&r1);
	qs_roll_free(&r3);
	qs_ppo_agent_free(&ag);
}

/* An exchange in one process: the environments this "rank" skipped are unpacked
 * from a single-process rollout's packs, as dist.c unpacks another rank's. */
static int
exchange_from(struct qs_roll *r, void *ctx, char *msg, size_t msglen)
{
	const struct qs_roll *src = ctx;
	static uint8_t buf[1 << 20];

	for (uint32_t i = 0; i < r->n_env; i++) {
		size_t n;
		int rc;

		if (i % r->dist.ranks == r->dist.rank)
			continue;
		n = qs_roll_pack(src, i, buf, sizeof(buf));
		if (n > sizeof(buf))
			return QS_E_SIZE;
		rc = qs_roll_unpack(r, i, buf, n, msg, msglen);
		if (rc != QS_OK)
			return rc;
	}
	return QS_OK;
}

/*
 * Rollouts over ranks (env.h, struct qs_roll_dist): rank 0 of 2 steps environments
 * 0, 2, 4, takes 1 and 3 from their packs, and merges the batch one process
 * collects; damaged packs are refused with what is wrong.
 */
static void
test_dist_exchange(void **state)
{
	struct qs_ppo_cfg c;
	struct qs_ppo_agent ag;
	struct qs_roll r1, r2;
	struct qs_ppo_buf b1, b2;
	static uint8_t pk[1 << 20];
	char msg[256];
	size_t n;

	(void)state;
	qs_ppo_defaults(&c);
	assert_int_equal(qs_ppo_agent_init(&ag, &c, 5, NULL, 0), QS_OK);
	assert_int_equal(qs_roll_init(&r1, &qs_env_bandit, "bandit", 5, 1, 100, &ag, 3, NULL, 0),
			 QS_OK);
	assert_int_equal(qs_roll_init(&r2, &qs_env_bandit, "bandit", 5, 2, 100, &ag, 3, NULL, 0),
			 QS_OK);
	r2.dist = (struct qs_roll_dist){0, 2, exchange_from, &r1};
	assert_int_equal(qs_ppo_buf_init(&b1, 5, 500, 500 * 64, 16, NULL, 0), QS_OK);
	assert_int_equal(qs_ppo_buf_init(&b2, 5, 500, 500 * 64, 16, NULL, 0), QS_OK);
	for (int round = 0; round < 3; round++) {
		struct qs_roll_stats s1, s2;

		assert_int_equal(qs_roll_collect(&r1, &ag, &b1, 0, &s1, NULL, 0), QS_OK);
		if (qs_roll_collect(&r2, &ag, &b2, 0, &s2, msg, sizeof(msg)) != QS_OK)
			fail_msg("%s", msg);
		assert_int_equal(b1.n, b2.n);
		assert_int_equal(b1.n_rows, b2.n_rows);
		assert_memory_equal(b1.rows, b2.rows, (size_t)b1.n_rows * 16);
		assert_memory_equal(b1.env, b2.env, b1.n * 2);
		assert_memory_equal(b1.action, b2.action, b1.n * 2);
		assert_memory_equal(b1.done, b2.done, b1.n);
		assert_memory_equal(b1.reward, b2.reward, b1.n * 4);
		assert_memory_equal(b1.adv, b2.adv, b1.n * 4);
		assert_true(s1.decisions == s2.decisions && s1.episodes == s2.episodes);
		assert_true(s1.reward_per_decision == s2.reward_per_decision);
	}
	/* damage: truncated, grown, a decision's action past its rows */
	n = qs_roll_pack(&r1, 1, pk, sizeof(pk));
	assert_true(n > 64 && n <= sizeof(pk));
	assert_int_equal(qs_roll_unpack(&r2, 1, pk, n - 1, msg, sizeof(msg)), QS_E_SIZE);
	assert_non_null(strstr(msg, "environment 1"));
	assert_int_equal(qs_roll_unpack(&r2, 1, pk, 10, msg, sizeof(msg)), QS_E_SIZE);
	assert_int_equal(qs_roll_unpack(&r2, 1, pk, n + 4, msg, sizeof(msg)), QS_E_SIZE);
	{
		/* the arrays end with action (2 bytes), env (2), done (1), logp, value and
		 * reward (4 each) per decision (rollout.c, PACK_ARRAYS) */
		uint32_t nd;
		size_t act;

		memcpy(&nd, pk + 4, 4); /* struct packed: rc, then n */
		act = n - (size_t)nd * (2 + 2 + 1 + 4 + 4 + 4);
		pk[act] = 0xff;
		pk[act + 1] = 0xff;
		assert_int_equal(qs_roll_unpack(&r2, 1, pk, n, msg, sizeof(msg)), QS_E_VALUE);
		assert_non_null(strstr(msg, "decision 0 is malformed"));
	}
	qs_ppo_buf_free(&b1);
	qs_ppo_buf_free(&b2);
	qs_roll_free(&r1);
	qs_roll_free(&r2);
	qs_ppo_agent_free(&ag);
}

/* The update's gradient shards make results independent of the update threads; so
 * does the consistency term (consist_coef), which runs after the shards are summed. */
static void
update_threads_deterministic(float consist)
{
	struct qs_ppo_cfg c;
	struct qs_ppo_agent a1, a2;
	struct qs_roll r;
	struct qs_ppo_buf b;

	qs_ppo_defaults(&c);
	c.consist_coef = consist;
	assert_int_equal(qs_ppo_agent_init(&a1, &c, 9, NULL, 0), QS_OK);
	assert_int_equal(qs_ppo_agent_init(&a2, &c, 9, NULL, 0), QS_OK);
	qs_ppo_set_threads(&a2, 2);
	assert_int_equal(qs_roll_init(&r, &qs_env_bandit, "bandit", 4, 1, 300, &a1, 3, NULL, 0),
			 QS_OK);
	assert_int_equal(qs_ppo_buf_init(&b, 4, 1200, 1200 * 64, 16, NULL, 0), QS_OK);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(qs_roll_collect(&r, &a1, &b, 0, NULL, NULL, 0), QS_OK);
		float *adv = malloc(b.n * sizeof(float));

		memcpy(adv, b.adv, b.n * sizeof(float));
		assert_int_equal(qs_ppo_update(&a1, &b, NULL, NULL, 0), QS_OK);
		memcpy(b.adv, adv, b.n * sizeof(float)); /* the update normalizes in place */
		free(adv);
		assert_int_equal(qs_ppo_update(&a2, &b, NULL, NULL, 0), QS_OK);
		assert_memory_equal(a1.pi.p, a2.pi.p, a1.pi.n_params * sizeof(float));
		assert_memory_equal(a1.vf.p, a2.vf.p, a1.vf.n_params * sizeof(float));
		if (consist > 0) {
			assert_non_null(a1.qc);
			assert_true(a1.consist_agree > 0 && a1.consist_agree <= 1);
		} else {
			assert_null(a1.qc);
		}
	}
	qs_ppo_buf_free(&b);
	qs_roll_free(&r);
	qs_ppo_agent_free(&a1);
	qs_ppo_agent_free(&a2);
}

static void
test_update_threads_deterministic(void **state)
{
	(void)state;
	update_threads_deterministic(0);
	update_threads_deterministic(1);
}

/* With consistency during PPO the bandit is still learned, and the trained scorer's
 * fake-quantized argmax agrees with the float one on the last batch. */
static void
test_ppo_consist_learns(void **state)
{
	struct qs_ppo_agent ag;
	uint32_t used;
	double acc;

	(void)state;
	g_consist = 1.0f;
	acc = train(QS_ALGO_PPO, 200, &used, &ag, NULL);
	g_consist = 0;
	assert_true(acc > 0.95);
	assert_true(ag.consist_agree >= 0.95);
	qs_ppo_agent_free(&ag);
}

/* Sampling picks by cumulative probability over eligible candidates only, and the
 * last eligible one takes the mass that float rounding leaves short of 1. Empirical
 * frequencies over a fixed stream match p to within 5 sigma. */
static void
test_sample_masked(void **state)
{
	const float p[5] = {0.2f, 0.0f, 0.5f, 0.0f, 0.3f};
	const uint64_t mask = 0x15; /* candidates 0, 2, 4 */
	uint32_t cnt[6] = {0};
	struct qs_rng r;
	const uint32_t N = 200000;

	(void)state;
	assert_int_equal(qs_mlp_sample_masked(p, 5, mask, 0.0f), 0);
	assert_int_equal(qs_mlp_sample_masked(p, 5, mask, 0.19f), 0);
	assert_int_equal(qs_mlp_sample_masked(p, 5, mask, 0.21f), 2);
	assert_int_equal(qs_mlp_sample_masked(p, 5, mask, 0.69f), 2);
	assert_int_equal(qs_mlp_sample_masked(p, 5, mask, 0.71f), 4);
	/* u past the rounded sum: the last eligible, never an ineligible or k */
	assert_int_equal(qs_mlp_sample_masked(p, 5, 0x5, 0.99f), 2);
	assert_int_equal(qs_mlp_sample_masked(p, 5, 0, 0.5f), 5);
	qs_rng_seed(&r, 3, 0);
	for (uint32_t i = 0; i < N; i++)
		cnt[qs_mlp_sample_masked(p, 5, mask, qs_rng_uniform(&r))]++;
	assert_int_equal(cnt[1] + cnt[3] + cnt[5], 0);
	for (int c = 0; c < 5; c += 2) {
		double e = p[c] * N, sd = sqrt(e * (1 - p[c]));

		assert_true(fabs(cnt[c] - e) < 5 * sd);
	}
}

/* The shuffle is a permutation, depends only on the stream, and reaches every
 * position: each of 8 elements visits each of 8 slots over 4000 shuffles. */
static void
test_shuffle(void **state)
{
	uint32_t v[8], w[8], seen[8][8] = {{0}};
	struct qs_rng a, b;

	(void)state;
	qs_rng_seed(&a, 9, 1);
	qs_rng_seed(&b, 9, 1);
	for (uint32_t i = 0; i < 8; i++)
		v[i] = w[i] = i;
	for (int t = 0; t < 4000; t++) {
		uint32_t mark = 0;

		qs_rng_shuffle(&a, v, 8);
		qs_rng_shuffle(&b, w, 8);
		assert_memory_equal(v, w, sizeof(v));
		for (uint32_t i = 0; i < 8; i++) {
			mark |= 1u << v[i];
			seen[v[i]][i]++;
		}
		assert_int_equal(mark, 0xff);
	}
	for (int e = 0; e < 8; e++)
		for (int i = 0; i < 8; i++)
			assert_true(seen[e][i] > 350 && seen[e][i] < 650); /* 500 expected */
	qs_rng_shuffle(&a, v, 0); /* empty and single: no draw, no access */
	qs_rng_shuffle(&a, v, 1);
}

QS_TEST_MAIN(cmocka_unit_test(test_sample_masked), cmocka_unit_test(test_shuffle),
	     cmocka_unit_test(test_ppo_learns), cmocka_unit_test(test_reinforce_learns),
	     cmocka_unit_test(test_a2c_learns), cmocka_unit_test(test_dqn_learns),
	     cmocka_unit_test(test_threads_deterministic), cmocka_unit_test(test_dist_exchange),
	     cmocka_unit_test(test_update_threads_deterministic),
	     cmocka_unit_test(test_ppo_consist_learns))
