/*
 * test_batch.c - the batching classifier's learning code (ppo.h's classifier head):
 * the PPO loss gradient
 * against central differences of an independent double-precision loss (see
 * test_grad.c for the tolerance argument), GAE on a hand-computed case, the int8
 * export (classifier file, shared output scale, agreement), the environment's
 * reward accounting against the bench's own counts (on the simulator's scenario
 * streams), and a run that does not depend
 * on the thread count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "qs_test.h"

#include "batch_cmd.h"
#include "batch_env.h"
#include "batch_export.h"
#include "ppo.h"
#include "qsteer/policy.h"
#include "tutil.h"

#define H     1e-5
#define TOL   1e-3
#define FLOOR 1e-4

static char msg[512];

/* ---- gradient ------------------------------------------------------------------------- */

enum { N = 8, A = 5 };

struct ref_case {
	double x[N][QS_FB_COUNT];
	uint16_t act[N];
	double logp_old[N], adv[N], ret[N];
};

/* The classifier head's PPO loss (ppo.c) in double: policy surrogate, value,
 * entropy. */
static double
ref_loss(const struct qs_ppo_agent *ag, const double *pp, const double *pv,
	 const struct ref_case *c, uint64_t *pattern, uint32_t *branches)
{
	const struct qs_ppo_cfg *cf = &ag->cfg;
	double lpi = 0, lv = 0, ent = 0;

	*pattern = 1469598103934665603ull;
	*branches = 0;
	for (int k = 0; k < N; k++) {
		double s[A], v, mx = -1e300, sum = 0, lse, lp, r, s1, s2, h = 0;

		ref_forward(&ag->pi, pp, c->x[k], s);
		ref_forward(&ag->vf, pv, c->x[k], &v);
		*pattern ^= ref_pattern(&ag->pi, pp, c->x[k]) * (uint64_t)(k + 1);
		*pattern ^= ref_pattern(&ag->vf, pv, c->x[k]) * (uint64_t)(k + 101);
		for (int a = 0; a < A; a++)
			mx = s[a] > mx ? s[a] : mx;
		for (int a = 0; a < A; a++)
			sum += exp(s[a] - mx);
		lse = mx + log(sum);
		for (int a = 0; a < A; a++)
			h -= exp(s[a] - lse) * (s[a] - lse);
		lp = s[c->act[k]] - lse;
		r = exp(lp - c->logp_old[k]);
		s1 = r * c->adv[k];
		s2 = fmin(fmax(r, 1 - cf->clip), 1 + cf->clip) * c->adv[k];
		*branches |= (uint32_t)(s1 <= s2) << k;
		lpi -= fmin(s1, s2);
		lv += 0.5 * (v - c->ret[k]) * (v - c->ret[k]);
		ent += h;
	}
	return lpi / N + cf->vf_coef * lv / N - cf->ent_coef * ent / N;
}

static void
classifier_grad(void **state)
{
	struct qs_ppo_cfg cfg;
	struct qs_ppo_agent ag;
	struct qs_ppo_buf b;
	struct qs_ppo_actor actor;
	struct qs_rng rng;
	struct ref_case c;
	uint32_t idx[N], checked = 0, skipped = 0, br0;
	uint64_t pat0;
	double *pp, *pv;

	(void)state;
	qs_ppo_classifier_defaults(&cfg, QS_FB_COUNT, A);
	cfg.h1 = 8;
	cfg.h2 = 8;
	cfg.vh = 8;
	cfg.minibatch = N;
	cfg.ent_coef = 0.05f; /* large enough that the entropy term is checked too */
	assert_int_equal(qs_ppo_agent_init(&ag, &cfg, 3, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_ppo_buf_init_head(&b, &cfg, 1, N, N, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_ppo_actor_init(&actor, &ag, msg, sizeof(msg)), QS_OK);
	qs_rng_seed(&rng, 11, 0);
	for (size_t i = 0; i < ag.pi.n_params; i++) /* logits far from uniform */
		ag.pi.p[i] += 0.3f * qs_rng_normal(&rng);
	for (int k = 0; k < N; k++) {
		uint8_t x[QS_FB_COUNT];
		uint32_t a, greedy;
		float logp;

		for (int i = 0; i < QS_FB_COUNT; i++) {
			x[i] = (uint8_t)qs_rng_below(&rng, 128);
			c.x[k][i] = x[i] / 127.0;
		}
		a = qs_rng_below(&rng, A);
		/* Acting leaves the state's action probabilities in actor.p. */
		assert_int_equal(
		    qs_ppo_act(&ag, &actor, x, 1, qs_ppo_all(&ag, 1), &rng, 1, &greedy, NULL, NULL),
		    QS_OK);
		/* Old log-probabilities near the current ones (ratio within the clip)
		 * except decision 0, whose ratio is far outside it: a clipped term. */
		logp = logf(actor.p[a]) + 0.08f * (qs_rng_uniform(&rng) - 0.5f);
		assert_int_equal(qs_ppo_buf_push(&b, 0, x, 1, qs_ppo_all(&ag, 1), a, logp, 0, NULL),
				 QS_OK);
		b.adv[k] = qs_rng_normal(&rng);
		b.ret[k] = qs_rng_normal(&rng);
		idx[k] = (uint32_t)k;
	}
	b.logp[0] -= 2.0f;
	b.adv[0] = 1.0f;
	for (int k = 0; k < N; k++) {
		c.act[k] = b.action[k];
		c.logp_old[k] = b.logp[k];
		c.adv[k] = b.adv[k];
		c.ret[k] = b.ret[k];
	}
	{
		struct qs_ppo_stats st;
		float loss = qs_ppo_loss_grad(&ag, &b, idx, N, &st);
		double ref;

		pp = params_to_double(&ag.pi);
		pv = params_to_double(&ag.vf);
		ref = ref_loss(&ag, pp, pv, &c, &pat0, &br0);
		/* the float loss and its reported clip fraction against the double reference */
		assert_true(fabs(loss - ref) <= 1e-4 * (1 + fabs(ref)));
		assert_true(st.clip_frac >= 1.0f / N - 1e-6f);
	}
	assert_int_equal(br0 & 1, 0); /* decision 0 is on the clipped branch */
	for (int net = 0; net < 2; net++) {
		double *p = net ? pv : pp;
		const float *g = net ? ag.g_vf : ag.g_pi;
		size_t np = net ? ag.vf.n_params : ag.pi.n_params;

		for (size_t i = 0; i < np; i++) {
			double keep = p[i], lp_, lm, num;
			uint64_t pa, pb;
			uint32_t ba, bb;

			p[i] = keep + H;
			lp_ = ref_loss(&ag, pp, pv, &c, &pa, &ba);
			p[i] = keep - H;
			lm = ref_loss(&ag, pp, pv, &c, &pb, &bb);
			p[i] = keep;
			if (pa != pat0 || pb != pat0 || ba != br0 || bb != br0) {
				skipped++;
				continue;
			}
			num = (lp_ - lm) / (2 * H);
			if (rel_err(g[i], num, FLOOR) > TOL)
				fail_msg("%s parameter %zu: analytic %.8g, numeric %.8g",
					 net ? "value" : "policy", i, (double)g[i], num);
			checked++;
		}
	}
	assert_true(checked > 20 * skipped);
	free(pp);
	free(pv);
	qs_ppo_actor_free(&actor);
	qs_ppo_buf_free(&b);
	qs_ppo_agent_free(&ag);
}

/* GAE over two episodes of one environment, by hand: gamma 0.5, lambda 0.5. */
static void
classifier_gae(void **state)
{
	struct qs_ppo_cfg cfg;
	struct qs_ppo_buf b;
	static const float r[4] = {1, 0, 2, 4}, v[4] = {0.5f, 1, 1, 2};
	static const uint8_t d[4] = {0, 0, 1, 1}, x[QS_FB_COUNT] = {0};

	(void)state;
	qs_ppo_classifier_defaults(&cfg, QS_FB_COUNT, A);
	assert_int_equal(qs_ppo_buf_init_head(&b, &cfg, 1, 4, 4, msg, sizeof(msg)), QS_OK);
	for (uint32_t i = 0; i < 4; i++) {
		assert_int_equal(qs_ppo_buf_push(&b, 0, x, 1, (1u << A) - 1, 0, 0, v[i], NULL),
				 QS_OK);
		assert_int_equal(qs_ppo_buf_credit(&b, i, r[i]), QS_OK);
		if (d[i])
			assert_int_equal(qs_ppo_buf_end_episode(&b, i), QS_OK);
	}
	qs_ppo_buf_finish(&b, 0.5f, 0.5f);
	/* Episode 2 is decision 3 alone: delta = 4 - 2. */
	assert_float_equal(b.adv[3], 2.0f, 1e-6);
	/* Episode 1: deltas 1 + 0.5*1 - 0.5 = 1, 0 + 0.5*1 - 1 = -0.5, 2 - 1 = 1. */
	assert_float_equal(b.adv[2], 1.0f, 1e-6);
	assert_float_equal(b.adv[1], -0.5f + 0.25f * 1.0f, 1e-6);
	assert_float_equal(b.adv[0], 1.0f + 0.25f * (-0.25f), 1e-6);
	assert_float_equal(b.ret[0], b.adv[0] + 0.5f, 1e-6);
	qs_ppo_buf_free(&b);
}

/* The classifier head refuses what only a scorer has; appended episodes keep their
 * rows, rewards and ends, and a buffer of the wrong head is refused. */
static void
classifier_head_rules(void **state)
{
	struct qs_ppo_cfg cfg, bad;
	struct qs_ppo_agent ag;
	struct qs_ppo_buf e, all, sc;
	uint8_t x[QS_FB_COUNT];

	(void)state;
	qs_ppo_classifier_defaults(&cfg, QS_FB_COUNT, A);
	bad = cfg;
	bad.consist_coef = 1;
	assert_int_equal(qs_ppo_agent_init(&ag, &bad, 1, msg, sizeof(msg)), QS_E_ARG);
	bad = cfg;
	bad.algo = QS_ALGO_REINFORCE;
	assert_int_equal(qs_ppo_agent_init(&ag, &bad, 1, msg, sizeof(msg)), QS_E_ARG);
	bad = cfg;
	bad.n_actions = QS_PPO_MAX_LOGITS + 1;
	assert_int_equal(qs_ppo_agent_init(&ag, &bad, 1, msg, sizeof(msg)), QS_E_ARG);
	assert_int_equal(qs_ppo_agent_init(&ag, &cfg, 1, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_ppo_buf_init_head(&e, &cfg, 1, 3, 3, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_ppo_buf_init_head(&all, &cfg, 1, 5, 5, msg, sizeof(msg)), QS_OK);
	for (uint32_t ep = 0; ep < 2; ep++) {
		qs_ppo_buf_clear(&e);
		for (uint32_t i = 0; i < 2; i++) {
			memset(x, (int)(10 * ep + i), sizeof(x));
			/* an action past the logits, or masked out, is refused */
			assert_int_equal(
			    qs_ppo_buf_push(&e, 0, x, 1, qs_ppo_all(&ag, 1), A, 0, 0, NULL),
			    QS_E_ARG);
			assert_int_equal(qs_ppo_buf_push(&e, 0, x, 1, 1, 1, 0, 0, NULL), QS_E_ARG);
			assert_int_equal(qs_ppo_buf_push(&e, 0, x, 1, qs_ppo_all(&ag, 1), A - 1 - i,
							 -1, (float)i, NULL),
					 QS_OK);
			assert_int_equal(qs_ppo_buf_credit(&e, i, (float)(ep + i)), QS_OK);
		}
		assert_int_equal(qs_ppo_buf_end_episode(&e, 1), QS_OK);
		assert_int_equal(qs_ppo_buf_append(&all, &e), QS_OK);
	}
	assert_int_equal(qs_ppo_buf_append(&all, &e), QS_E_SIZE); /* 6 > 5 */
	assert_int_equal(all.n, 4);
	assert_int_equal(all.n_rows, 4);
	for (uint32_t i = 0; i < 4; i++) {
		assert_int_equal(all.row_off[i + 1], i + 1);
		assert_int_equal(all.rows[(size_t)i * QS_FB_COUNT], 10 * (i / 2) + i % 2);
		assert_int_equal(all.action[i], A - 1 - i % 2);
		assert_int_equal(all.done[i], i % 2);
		assert_float_equal(all.reward[i], (float)(i / 2 + i % 2), 0);
	}
	assert_int_equal(qs_ppo_buf_init(&sc, 1, 4, 4, QS_FB_COUNT, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_ppo_buf_append(&sc, &e), QS_E_SHAPE);
	qs_ppo_buf_finish(&all, 0.9f, 0.9f);
	assert_int_equal(qs_ppo_update(&ag, &sc, NULL, msg, sizeof(msg)), QS_E_ARG); /* empty */
	assert_int_equal(qs_ppo_update(&ag, &all, NULL, msg, sizeof(msg)), QS_OK);
	qs_ppo_buf_free(&sc);
	qs_ppo_buf_free(&e);
	qs_ppo_buf_free(&all);
	qs_ppo_agent_free(&ag);
}

/* ---- export ---------------------------------------------------------------------------- */

static void
export_classifier(void **state)
{
	struct qs_ppo_cfg cfg;
	struct qs_ppo_agent ag;
	struct qs_rng rng;
	struct qs_benv_cfg ec;
	struct qs_bexp_report rep;
	struct qs_policy *p;
	struct qs_policy_load_opts o = {QS_SCHEMA_BATCH_V1, QS_Q8_KIND_CLASSIFIER, NULL};
	enum { S = 4000 };
	static uint8_t x[S * QS_FB_COUNT];
	char path[] = "/tmp/qsteer-test-batch-XXXXXX";
	int fd = mkstemp(path);
	int32_t max_abs = 0, max_abs0 = 0;

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	qs_benv_defaults(&ec);
	qs_ppo_classifier_defaults(&cfg, QS_FB_COUNT, ec.n_actions);
	assert_int_equal(qs_ppo_agent_init(&ag, &cfg, 5, msg, sizeof(msg)), QS_OK);
	qs_rng_seed(&rng, 9, 0);
	/* Outputs of very different magnitudes: a per-row output scale would make the
	 * int8 argmax compare incomparable accumulators. */
	qs_mlp_init_params(&ag.pi, &rng, 1.0f);
	for (uint32_t j = 0; j < ec.n_actions; j++)
		for (uint32_t i = 0; i < cfg.h2; i++)
			ag.pi.p[ag.pi.w_off[2] + j * cfg.h2 + i] *= (float)(1 + j);
	for (uint32_t i = 0; i < S * QS_FB_COUNT; i++)
		x[i] = (uint8_t)qs_rng_below(&rng, 128);
	assert_int_equal(qs_bexp_write(&ag.pi, x, S, 1.0f, ec.action, ec.n_actions, "t", 0, path,
				       &rep, msg, sizeof(msg)),
			 QS_OK);
	printf("  export agreement %.4f on %u states\n", rep.agree, rep.states);
	assert_true(rep.agree >= 0.95);
	assert_int_equal(qs_policy_load_file(path, &o, &p, msg, sizeof(msg)), QS_OK);
	assert_int_equal(p->n_actions, ec.n_actions);
	for (uint32_t a = 0; a < ec.n_actions; a++)
		assert_memory_equal(&p->action[a], &ec.action[a], sizeof(ec.action[a]));
	/* One output scale: the largest-magnitude row uses the full int8 range and the
	 * smallest stays proportionally small (row j's weights were scaled by 1 + j);
	 * per-row scales would take every row to 127. */
	for (uint32_t i = 0; i < cfg.h2; i++) {
		int32_t v = p->layer[2].w[(ec.n_actions - 1) * cfg.h2 + i];
		int32_t v0 = p->layer[2].w[i];

		max_abs = v < 0 ? -v > max_abs ? -v : max_abs : v > max_abs ? v : max_abs;
		max_abs0 = v0 < 0 ? -v0 > max_abs0 ? -v0 : max_abs0 : v0 > max_abs0 ? v0 : max_abs0;
	}
	printf("  output rows' largest |weight|: row 0 %d, row %u %d\n", max_abs0, ec.n_actions - 1,
	       max_abs);
	assert_true(max_abs >= 100);
	assert_true(max_abs0 <= 127 / 4);
	qs_policy_free(p);
	unlink(path);
	qs_ppo_agent_free(&ag);
}

/* ---- environment ----------------------------------------------------------------------- */

static double
episode_return(struct qs_benv_cfg *c, enum qs_agent_scn scn, struct qs_agent_bench_result *r)
{
	struct qs_ppo_cfg cfg;
	struct qs_ppo_agent ag;
	struct qs_ppo_actor actor;
	struct qs_ppo_buf b;
	struct qs_rng rng;
	struct qs_benv_actor ac;
	double sum = 0;

	qs_ppo_classifier_defaults(&cfg, QS_FB_COUNT, c->n_actions);
	assert_int_equal(qs_ppo_agent_init(&ag, &cfg, 1, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_ppo_actor_init(&actor, &ag, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_ppo_buf_init_head(&b, &cfg, 1, 1u << 16, 1u << 16, msg, sizeof(msg)),
			 QS_OK);
	qs_rng_seed(&rng, 4, 0);
	ac.ag = &ag;
	ac.scratch = &actor;
	ac.rng = &rng;
	ac.greedy = 0;
	ac.out = &b;
	if (qs_benv_episode(c, scn, 77, 1.0, 400, NULL, &ac, NULL, r, msg, sizeof(msg)) != QS_OK)
		fail_msg("%s", msg);
	assert_true(b.n > 100);
	assert_int_equal(b.done[b.n - 1], 1);
	for (uint32_t i = 0; i + 1 < b.n; i++)
		assert_int_equal(b.done[i], 0);
	for (uint32_t i = 0; i < b.n; i++)
		sum += b.reward[i];
	qs_ppo_buf_free(&b);
	qs_ppo_actor_free(&actor);
	qs_ppo_agent_free(&ag);
	return sum;
}

/* The rewards of an episode add up to the bench's own SLO and preemption counts. */
static void
env_rewards(void **state)
{
	struct qs_benv_cfg c;
	struct qs_agent_bench_result r;
	double sum;

	(void)state;
	qs_benv_defaults(&c);
	c.r_late = 0;
	c.r_preempt = 0;
	sum = episode_return(&c, QS_AGENT_SCN_BURSTY, &r);
	/* The simulator's bursty scenario, its first 400 requests, at the episode's load. */
	assert_int_equal(r.requests, 400);
	assert_true(r.load == 1.0 && r.rate_rps > 0);
	assert_true(r.slo_met > 0);
	assert_float_equal(sum, (double)r.slo_met, 1e-9);
	c.r_met = 0;
	c.r_preempt = 1;
	/* The scenario's load on a smaller KV cache: its mega-prompts then evict. (The
	 * full cache preempts only a few times in a thousand requests.) */
	c.agent.prof.kv_blocks = 1024;
	sum = episode_return(&c, QS_AGENT_SCN_ADVERSARIAL, &r);
	printf("  adversarial episode: %" PRIu64 " preemptions\n", r.preemptions);
	assert_true(r.preemptions > 0);
	assert_float_equal(sum, -(double)r.preemptions, 1e-9);
}

/* The standard table: 16 actions without a draft model, depth 0 in all; with one,
 * 13 more whose depths stay within the profile's, each a loadable action. */
static void
action_table_spec(void **state)
{
	struct qs_sim_profile p;
	struct qs_q8_action a[QS_Q8_MAX_ACTIONS];
	uint32_t n, seen[QS_SPEC_DEPTH_MAX + 1];

	(void)state;
	qs_sim_profile_default(&p);
	n = qs_benv_action_table(&p, a, QS_Q8_MAX_ACTIONS);
	assert_int_equal(n, 16);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(a[i].flags & QS_Q8_ACT_SPEC_MASK, 0);
	for (uint32_t max = 2; max <= 8; max += 6) {
		p.spec_max_depth = max;
		n = qs_benv_action_table(&p, a, QS_Q8_MAX_ACTIONS);
		memset(seen, 0, sizeof(seen));
		for (uint32_t i = 0; i < n; i++) {
			uint32_t d = (a[i].flags & QS_Q8_ACT_SPEC_MASK) >> QS_Q8_ACT_SPEC_SHIFT;

			assert_true(d <= max);
			assert_int_equal(a[i].flags & ~QS_Q8_ACT_FLAGS_VALID, 0);
			assert_true(a[i].max_seqs >= 1 && a[i].max_tokens >= 1);
			seen[d]++;
		}
		assert_int_equal(seen[0], 16);
		for (uint32_t i = 0; i < 16; i++) /* the table without speculation comes first */
			assert_int_equal(a[i].flags & QS_Q8_ACT_SPEC_MASK, 0);
		assert_int_equal(n, max == 8 ? 29 : 22);
		assert_true(seen[1] > 0 && seen[2] > 0);
	}
	/* the cap is honoured */
	assert_int_equal(qs_benv_action_table(&p, a, 20), 20);
}

/* A training run writes the same bytes with 1 and 2 rollout threads. */
static void
threads_reproducible(void **state)
{
	char p1[] = "/tmp/qsteer-test-bt1-XXXXXX", p2[] = "/tmp/qsteer-test-bt2-XXXXXX";
	char *argv1[] = {"batch",      "train", "--out",      p1,    "--iters", "3",
			 "--episodes", "3",	"--requests", "200", "--seeds", "0",
			 "--threads",  "1",	"--quiet",    NULL};
	char *argv2[] = {"batch",      "train", "--out",      p2,    "--iters", "3",
			 "--episodes", "3",	"--requests", "200", "--seeds", "0",
			 "--threads",  "2",	"--quiet",    NULL};
	uint8_t a[8192], b[8192];
	size_t na, nb;
	FILE *f;
	int fd;

	(void)state;
	fd = mkstemp(p1);
	assert_true(fd >= 0);
	close(fd);
	fd = mkstemp(p2);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(qs_train_batch_main(15, argv1), 0);
	assert_int_equal(qs_train_batch_main(15, argv2), 0);
	f = fopen(p1, "rb");
	assert_non_null(f);
	na = fread(a, 1, sizeof(a), f);
	fclose(f);
	f = fopen(p2, "rb");
	assert_non_null(f);
	nb = fread(b, 1, sizeof(b), f);
	fclose(f);
	assert_true(na > 1000);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na);
	unlink(p1);
	unlink(p2);
}

QS_TEST_MAIN(cmocka_unit_test(classifier_grad), cmocka_unit_test(classifier_gae),
	     cmocka_unit_test(classifier_head_rules), cmocka_unit_test(export_classifier),
	     cmocka_unit_test(env_rewards), cmocka_unit_test(threads_reproducible),
	     cmocka_unit_test(action_table_spec))
