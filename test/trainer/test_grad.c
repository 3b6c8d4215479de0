/*
 * test_grad.c - finite-difference checks of every backward pass: the MLP (weights,
 * biases and inputs), the masked softmax's log-probability and entropy gradients,
 * and the full PPO / REINFORCE loss (policy surrogate, entropy bonus, value loss).
 *
 * The numeric gradients come from an independent double-precision implementation
 * (tutil.h and the reference loss below) with central differences, h = 1e-5: the
 * truncation error is O(h^2) ~ 1e-10 and the rounding error ~1e-16 / 1e-5 ~ 1e-11, so
 * the numeric side is exact to ~1e-9. The analytic side is float: each gradient is a
 * sum of a few dozen products of float values with relative error ~6e-8 each, so
 * its relative error stays below ~1e-5. A tolerance of 1e-3 (relative, with a 1e-4
 * absolute floor for gradients that are ~0) catches any real mistake -- a missing
 * term or a wrong sign is an O(1) error -- with margin against float noise. Points
 * where a perturbation flips a ReLU or the PPO clip are skipped (the function is
 * not differentiable there); the tests assert that few are.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "qs_test.h"

#include "dqn.h"
#include "ppo.h"
#include "tutil.h"

#define H     1e-5
#define TOL   1e-3
#define FLOOR 1e-4

enum { MLP_ROWS = 4 };

/* sum_r sum_k c[r][k] out[r][k] over the rows of 5 inputs, 3 outputs. */
struct mlp_loss {
	const struct qs_mlp *m;
	const double *p;
	const double *x;
	const float *c;
};

static double
mlp_loss_at(void *ctx, uint64_t *key)
{
	const struct mlp_loss *a = ctx;
	double out[3], l = 0;

	*key = 1469598103934665603ull;
	for (int r = 0; r < MLP_ROWS; r++) {
		*key = (*key ^ ref_forward_layers(a->m, a->p, a->x + r * 5, NULL, out)) *
		       1099511628211ull;
		for (int j = 0; j < 3; j++)
			l += a->c[r * 3 + j] * out[j];
	}
	return l;
}

static void
test_mlp_backward(void **state)
{
	uint32_t dim[4] = {5, 7, 6, 3};
	enum { N = MLP_ROWS };
	struct qs_mlp m;
	struct qs_mlp_ws ws;
	struct qs_rng rng;
	float x[N * 5], c[N * 3], dx[N * 5];
	double xd[N * 5], *pd, out[3];
	float *grad;
	struct ref_grad_tally t = {0};
	struct mlp_loss ml;
	uint64_t key0;

	(void)state;
	assert_int_equal(qs_mlp_init(&m, 3, dim, NULL, 0), QS_OK);
	assert_int_equal(qs_mlp_ws_init(&ws, &m, N, NULL, 0), QS_OK);
	qs_rng_seed(&rng, 7, 0);
	qs_mlp_init_params(&m, &rng, 1.0f);
	for (size_t i = 0; i < m.n_params; i++) /* nonzero biases too */
		if (i >= m.b_off[0] && i < m.b_off[0] + 7)
			m.p[i] = 0.2f * qs_rng_normal(&rng);
	for (int i = 0; i < N * 5; i++)
		xd[i] = x[i] = qs_rng_uniform(&rng);
	for (int i = 0; i < N * 3; i++)
		c[i] = qs_rng_normal(&rng);
	grad = calloc(m.n_params, sizeof(float));
	qs_mlp_forward(&m, &ws, x, N, NULL);
	qs_mlp_backward(&m, &ws, N, c, NULL, grad, dx);
	pd = params_to_double(&m);

	/* L = sum_r sum_k c[r][k] out[r][k] */
	ml = (struct mlp_loss){&m, pd, xd, c};
	mlp_loss_at(&ml, &key0);
	ref_grad_check("mlp", mlp_loss_at, &ml, pd, grad, m.n_params, key0, H, TOL, FLOOR, &t);
	assert_true(t.skipped * 20 < t.checked);
	/* Inputs. */
	for (int i = 0; i < N * 5; i++) {
		int r = i / 5;
		double keep = xd[i], lp = 0, lm = 0;

		xd[i] = keep + H;
		ref_forward(&m, pd, xd + r * 5, out);
		for (int j = 0; j < 3; j++)
			lp += c[r * 3 + j] * out[j];
		xd[i] = keep - H;
		ref_forward(&m, pd, xd + r * 5, out);
		for (int j = 0; j < 3; j++)
			lm += c[r * 3 + j] * out[j];
		xd[i] = keep;
		if (rel_err(dx[i], (lp - lm) / (2 * H), FLOOR) > TOL)
			fail_msg("input %d: analytic %g numeric %g", i, (double)dx[i],
				 (lp - lm) / (2 * H));
	}
	free(pd);
	free(grad);
	qs_mlp_ws_free(&ws);
	qs_mlp_free(&m);
}

/* Double references of log p[a] and entropy under a mask. */
static double
ref_lse(const double *s, uint32_t k, uint64_t mask)
{
	double mx = -INFINITY, sum = 0;

	for (uint32_t c = 0; c < k; c++)
		if ((mask >> c & 1) && s[c] > mx)
			mx = s[c];
	for (uint32_t c = 0; c < k; c++)
		if (mask >> c & 1)
			sum += exp(s[c] - mx);
	return mx + log(sum);
}

static double
ref_entropy(const double *s, uint32_t k, uint64_t mask)
{
	double lse = ref_lse(s, k, mask), h = 0;

	for (uint32_t c = 0; c < k; c++)
		if (mask >> c & 1)
			h -= exp(s[c] - lse) * (s[c] - lse);
	return h;
}

static void
test_softmax_grads(void **state)
{
	struct qs_rng rng;

	(void)state;
	qs_rng_seed(&rng, 11, 0);
	for (int trial = 0; trial < 50; trial++) {
		uint32_t k = 1 + qs_rng_below(&rng, 9), a;
		uint64_t mask;
		float s[10], p[10], g1[10] = {0}, g2[10] = {0}, lse, h;
		double sd[10];

		do
			mask = qs_rng_next(&rng) & ((1ull << k) - 1);
		while (!mask);
		do
			a = qs_rng_below(&rng, k);
		while (!(mask >> a & 1));
		for (uint32_t c = 0; c < k; c++)
			sd[c] = s[c] = 2.0f * qs_rng_normal(&rng);
		lse = qs_mlp_softmax_masked(s, k, mask, p);
		h = qs_mlp_entropy(s, p, k, mask, lse);
		assert_true(fabs(h - ref_entropy(sd, k, mask)) < 1e-5);
		for (uint32_t c = 0; c < k; c++)
			if (!(mask >> c & 1))
				assert_true(p[c] == 0.0f);
		qs_mlp_logp_grad(p, k, mask, a, 1.0f, g1);
		qs_mlp_entropy_grad(s, p, k, mask, lse, h, 1.0f, g2);
		for (uint32_t c = 0; c < k; c++) {
			double keep = sd[c], lp, lm, hp, hm;

			sd[c] = keep + H;
			lp = sd[a] - ref_lse(sd, k, mask);
			hp = ref_entropy(sd, k, mask);
			sd[c] = keep - H;
			lm = sd[a] - ref_lse(sd, k, mask);
			hm = ref_entropy(sd, k, mask);
			sd[c] = keep;
			if (!(mask >> c & 1)) {
				assert_true(g1[c] == 0 && g2[c] == 0);
				continue;
			}
			if (rel_err(g1[c], (lp - lm) / (2 * H), FLOOR) > TOL)
				fail_msg("dlogp/ds[%u]: %g vs %g", c, (double)g1[c],
					 (lp - lm) / (2 * H));
			if (rel_err(g2[c], (hp - hm) / (2 * H), FLOOR) > TOL)
				fail_msg("dH/ds[%u]: %g vs %g", c, (double)g2[c],
					 (hp - hm) / (2 * H));
		}
	}
}

/* ---- the PPO / REINFORCE loss ----------------------------------------------------- */

struct loss_ctx {
	const struct qs_ppo_agent *ag;
	const struct qs_ppo_buf *b;
	const uint32_t *idx;
	uint32_t n;
};

/* The loss of qs_ppo_loss_grad, written again in double. clipped: per decision, is
 * the clipped branch active (for kink detection). */
static double
ref_loss(const struct loss_ctx *c, const double *ppi, const double *pvf, uint8_t *clipped,
	 uint64_t *pattern)
{
	const struct qs_ppo_cfg *cfg = &c->ag->cfg;
	uint32_t nf = cfg->n_feat;
	double total = 0;

	*pattern = 1469598103934665603ull;
	for (uint32_t k = 0; k < c->n; k++) {
		uint32_t i = c->idx[k], r0 = c->b->row_off[i], nc = c->b->row_off[i + 1] - r0;
		uint64_t mask = c->b->mask[i];
		double s[QS_MAX_CANDIDATES] = {0}, x[128], lse, lp, h, v, A = c->b->adv[i];
		float summ[128];

		for (uint32_t cc = 0; cc < nc; cc++) {
			for (uint32_t f = 0; f < nf; f++)
				x[f] = c->b->rows[(size_t)(r0 + cc) * nf + f] / 127.0;
			ref_forward(&c->ag->pi, ppi, x, &s[cc]);
			*pattern = (*pattern ^ ref_pattern(&c->ag->pi, ppi, x)) * 1099511628211ull;
		}
		lse = ref_lse(s, nc, mask);
		lp = s[c->b->action[i]] - lse;
		h = ref_entropy(s, nc, mask);
		if (cfg->algo == QS_ALGO_REINFORCE || cfg->algo == QS_ALGO_A2C) {
			total += -A * lp;
			clipped[k] = 0;
		} else {
			double ratio = exp(lp - c->b->logp[i]), lo = 1 - cfg->clip,
			       hi = 1 + cfg->clip;
			double rc = ratio < lo ? lo : ratio > hi ? hi : ratio;
			double s1 = ratio * A, s2 = rc * A;

			total += -(s1 < s2 ? s1 : s2);
			clipped[k] = s2 < s1;
		}
		total -= cfg->ent_coef * h;
		qs_ppo_summary(c->b->rows + (size_t)r0 * nf, nc, mask, nf, summ);
		for (uint32_t f = 0; f < 2 * nf; f++)
			x[f] = summ[f];
		ref_forward(&c->ag->vf, pvf, x, &v);
		*pattern = (*pattern ^ ref_pattern(&c->ag->vf, pvf, x)) * 1099511628211ull;
		total += cfg->vf_coef * 0.5 * (v - c->b->ret[i]) * (v - c->b->ret[i]);
	}
	return total / c->n;
}

/* ref_loss at (ppi, pvf); its key also changes with any decision's clip branch. */
struct ppo_loss {
	const struct loss_ctx *c;
	const double *ppi, *pvf;
};

static double
ppo_loss_at(void *ctx, uint64_t *key)
{
	const struct ppo_loss *a = ctx;
	uint8_t clip[12];
	double l = ref_loss(a->c, a->ppi, a->pvf, clip, key);

	for (int i = 0; i < 12; i++)
		*key = (*key ^ clip[i]) * 1099511628211ull;
	return l;
}

/* A 4 -> 6 -> 5 -> 1 scorer with value hidden 5: small enough for finite
 * differences over every parameter. */
static void
tiny_cfg(struct qs_ppo_cfg *cfg, enum qs_algo algo)
{
	qs_ppo_defaults(cfg);
	cfg->algo = algo;
	cfg->n_feat = 4;
	cfg->h1 = 6;
	cfg->h2 = 5;
	cfg->vh = 5;
}

/* Weights at gain 1 (scores that differ by O(1)) and biases bias + 0.1 N(0, 1). */
static void
random_net(struct qs_mlp *m, struct qs_rng *rng, float bias)
{
	qs_mlp_init_params(m, rng, 1.0f);
	for (uint32_t l = 0; l < m->n_layers; l++)
		for (uint32_t j = 0; j < m->dim[l + 1]; j++)
			m->p[m->b_off[l] + j] = bias + 0.1f * qs_rng_normal(rng);
}

static void
check_loss(enum qs_algo algo)
{
	struct qs_ppo_cfg cfg;
	struct qs_ppo_agent ag;
	struct qs_ppo_buf b;
	struct qs_rng rng;
	uint32_t idx[12];
	uint8_t rows[8 * 4];
	double *ppi, *pvf, loss_ref, loss;
	struct ref_grad_tally t = {0};
	uint64_t key0;
	struct loss_ctx lc;
	struct ppo_loss pl;
	char what[64];
	struct qs_ppo_actor act;

	tiny_cfg(&cfg, algo);
	cfg.minibatch = 12;
	cfg.ent_coef = 0.05f;
	assert_int_equal(qs_ppo_agent_init(&ag, &cfg, 3, NULL, 0), QS_OK);
	qs_rng_seed(&rng, 5, 0);
	qs_mlp_init_params(&ag.pi, &rng, 1.0f); /* scores that differ by O(1) */
	qs_mlp_init_params(&ag.vf, &rng, 1.0f);
	for (uint32_t l = 0; l < 3; l++) {
		for (uint32_t j = 0; j < ag.pi.dim[l + 1]; j++)
			ag.pi.p[ag.pi.b_off[l] + j] = 0.1f * qs_rng_normal(&rng);
		for (uint32_t j = 0; j < ag.vf.dim[l + 1]; j++)
			ag.vf.p[ag.vf.b_off[l] + j] = 0.1f * qs_rng_normal(&rng);
	}
	assert_int_equal(qs_ppo_buf_init(&b, 2, 12, 12 * 8, 4, NULL, 0), QS_OK);
	assert_int_equal(qs_ppo_actor_init(&act, &ag, NULL, 0), QS_OK);
	for (uint32_t i = 0; i < 12; i++) {
		uint32_t nc = 2 + qs_rng_below(&rng, 6), a;
		uint64_t mask;
		float lp, v;

		for (uint32_t k = 0; k < nc * 4; k++)
			rows[k] = (uint8_t)qs_rng_below(&rng, 128);
		do
			mask = qs_rng_next(&rng) & ((1ull << nc) - 1);
		while (!mask);
		assert_int_equal(qs_ppo_act(&ag, &act, rows, nc, mask, &rng, 0, &a, &lp, &v),
				 QS_OK);
		/* old log-probs off by up to +-0.5 so that some ratios are clipped */
		assert_int_equal(qs_ppo_buf_push(&b, i & 1, rows, nc, mask, a,
						 lp + qs_rng_uniform(&rng) - 0.5f, v, NULL),
				 QS_OK);
		b.adv[i] = qs_rng_normal(&rng);
		b.ret[i] = v + qs_rng_normal(&rng);
		idx[i] = 11 - i;
	}
	lc = (struct loss_ctx){&ag, &b, idx, 12};
	loss = qs_ppo_loss_grad(&ag, &b, idx, 12, NULL);
	ppi = params_to_double(&ag.pi);
	pvf = params_to_double(&ag.vf);
	pl = (struct ppo_loss){&lc, ppi, pvf};
	loss_ref = ppo_loss_at(&pl, &key0);
	assert_true(fabs(loss - loss_ref) < 1e-4 * (1 + fabs(loss_ref)));
	snprintf(what, sizeof(what), "%s scorer", qs_algo_name(algo));
	ref_grad_check(what, ppo_loss_at, &pl, ppi, ag.g_pi, ag.pi.n_params, key0, H, TOL, FLOOR,
		       &t);
	snprintf(what, sizeof(what), "%s value", qs_algo_name(algo));
	ref_grad_check(what, ppo_loss_at, &pl, pvf, ag.g_vf, ag.vf.n_params, key0, H, TOL, FLOOR,
		       &t);
	assert_true(t.skipped * 10 < t.checked);
	free(ppi);
	free(pvf);
	qs_ppo_actor_free(&act);
	qs_ppo_buf_free(&b);
	qs_ppo_agent_free(&ag);
}

static void
test_ppo_loss(void **state)
{
	(void)state;
	check_loss(QS_ALGO_PPO);
}

static void
test_reinforce_loss(void **state)
{
	(void)state;
	check_loss(QS_ALGO_REINFORCE);
}

static void
test_a2c_loss(void **state)
{
	(void)state;
	check_loss(QS_ALGO_A2C);
}

/* ---- the DQN loss ------------------------------------------------------------------ */

/* Q of one row under params p (double), x bytes / 127. */
static double
ref_q(const struct qs_mlp *m, const double *p, const uint8_t *row, uint32_t nf, uint64_t *pat)
{
	double x[16], q;

	for (uint32_t f = 0; f < nf; f++)
		x[f] = row[f] / 127.0;
	ref_forward(m, p, x, &q);
	if (pat)
		*pat = (*pat ^ ref_pattern(m, p, x)) * 1099511628211ull;
	return q;
}

/* The double-DQN Huber loss of qs_dqn_loss_grad, written again in double; pat
 * collects every ReLU pattern, the argmax choices and the Huber branches. */
static double
ref_dqn_loss(const struct qs_dqn *d, const struct qs_ppo_agent *ag, const double *ppi,
	     const double *ptg, uint32_t n, uint64_t *pat)
{
	uint32_t nf = ag->cfg.n_feat;
	double total = 0;

	*pat = 1469598103934665603ull;
	for (uint32_t j = 0; j < n; j++) {
		const struct qs_ppo_buf *b = d->pick_b[j];
		uint32_t i = d->pick_i[j], r0 = b->row_off[i];
		double y = b->reward[i], q, e;

		if (d->pick_next[j] != QS_DQN_TERMINAL) {
			uint32_t m = d->pick_next[j], m0 = b->row_off[m],
				 nc = b->row_off[m + 1] - m0;
			uint32_t best = nc;
			double bq = 0;

			for (uint32_t c = 0; c < nc; c++) {
				double qo =
				    ref_q(&ag->pi, ppi, b->rows + (size_t)(m0 + c) * nf, nf, pat);

				if (b->mask[m] >> c & 1 && (best == nc || qo > bq))
					best = c, bq = qo;
			}
			*pat = (*pat ^ best) * 1099511628211ull;
			y += d->cfg.gamma *
			     ref_q(&d->target, ptg, b->rows + (size_t)(m0 + best) * nf, nf, NULL);
		}
		q = ref_q(&ag->pi, ppi, b->rows + (size_t)(r0 + b->action[i]) * nf, nf, pat);
		e = fabs(q - y);
		*pat = (*pat ^ (e > d->cfg.huber)) * 1099511628211ull;
		total += e <= d->cfg.huber ? 0.5 * e * e : d->cfg.huber * (e - 0.5 * d->cfg.huber);
	}
	return total / n;
}

struct dqn_loss {
	const struct qs_dqn *d;
	const struct qs_ppo_agent *ag;
	const double *ppi, *ptg;
	uint32_t n;
};

static double
dqn_loss_at(void *ctx, uint64_t *key)
{
	const struct dqn_loss *a = ctx;

	return ref_dqn_loss(a->d, a->ag, a->ppi, a->ptg, a->n, key);
}

/*
 * qs_dqn_loss_grad against finite differences of the double reference, over the
 * transitions a stored rollout yields (terminal ones included), with the target
 * network apart from the online one and TD errors on both sides of the Huber knee.
 * Also the replay's transition structure: successors within an environment, none
 * across environments or after a rollout's last decision, terminal at an episode end.
 */
static void
test_dqn_loss(void **state)
{
	struct qs_ppo_cfg cfg;
	struct qs_ppo_agent ag;
	struct qs_dqn_cfg dc;
	struct qs_dqn d;
	struct qs_ppo_buf b;
	struct qs_rng rng;
	uint8_t rows[8 * 4];
	uint32_t n = 0, terminal = 0;
	double *ppi, *ptg, loss_ref, loss;
	struct ref_grad_tally t = {0};
	struct dqn_loss dl;
	uint64_t key0;

	(void)state;
	tiny_cfg(&cfg, QS_ALGO_DQN);
	assert_int_equal(qs_ppo_agent_init(&ag, &cfg, 3, NULL, 0), QS_OK);
	qs_rng_seed(&rng, 11, 0);
	random_net(&ag.pi, &rng, 0);
	qs_dqn_defaults(&dc);
	dc.batch = 16;
	dc.replay = 2;
	dc.gamma = 0.9f;
	dc.huber = 0.5f;
	assert_int_equal(qs_dqn_init(&d, &dc, &ag, 2, 16, 16 * 8, 5, NULL, 0), QS_OK);
	/* a target apart from the online net, so double DQN's two roles differ */
	for (size_t k = 0; k < d.target.n_params; k++)
		d.target.p[k] += 0.3f * qs_rng_normal(&rng);
	assert_int_equal(qs_ppo_buf_init(&b, 2, 16, 16 * 8, 4, NULL, 0), QS_OK);
	for (uint32_t i = 0; i < 16; i++) {
		uint32_t nc = 2 + qs_rng_below(&rng, 6), idx;
		uint64_t mask;

		for (uint32_t k = 0; k < nc * 4; k++)
			rows[k] = (uint8_t)qs_rng_below(&rng, 128);
		do
			mask = qs_rng_next(&rng) & ((1ull << nc) - 1);
		while (!mask);
		/* env 0 for decisions 0..9, env 1 for 10..15 */
		assert_int_equal(qs_ppo_buf_push(&b, i >= 10, rows, nc, mask,
						 (uint32_t)__builtin_ctzll(mask), 0, 0, &idx),
				 QS_OK);
		assert_int_equal(qs_ppo_buf_credit(&b, idx, 2.0f * qs_rng_normal(&rng)), QS_OK);
	}
	assert_int_equal(qs_ppo_buf_end_episode(&b, 4), QS_OK);
	assert_int_equal(qs_dqn_store(&d, &b, NULL, 0), QS_OK);
	/* 9 -> none (env 0's last), 15 -> none (the rollout's last), 4 -> terminal */
	assert_int_equal(d.succ[0][3], 4);
	assert_int_equal(d.succ[0][4], QS_DQN_TERMINAL);
	assert_int_equal(d.succ[0][9], QS_DQN_NONE);
	assert_int_equal(d.succ[0][10], 11);
	assert_int_equal(d.succ[0][15], QS_DQN_NONE);
	assert_int_equal(d.n_trans[0], 14);
	assert_int_equal(qs_dqn_transitions(&d), 14);
	for (uint32_t k = 0; k < d.n_trans[0]; k++, n++) {
		d.pick_b[n] = &d.slot[0];
		d.pick_i[n] = d.trans[0][k];
		d.pick_next[n] = d.succ[0][d.pick_i[n]];
		terminal += d.pick_next[n] == QS_DQN_TERMINAL;
	}
	assert_int_equal(terminal, 1);
	loss = qs_dqn_loss_grad(&d, &ag, n, NULL);
	ppi = params_to_double(&ag.pi);
	ptg = params_to_double(&d.target);
	dl = (struct dqn_loss){&d, &ag, ppi, ptg, n};
	loss_ref = dqn_loss_at(&dl, &key0);
	assert_true(fabs(loss - loss_ref) < 1e-4 * (1 + fabs(loss_ref)));
	ref_grad_check("dqn", dqn_loss_at, &dl, ppi, ag.g_pi, ag.pi.n_params, key0, H, TOL, FLOOR,
		       &t);
	assert_true(t.skipped * 10 < t.checked);
	/* The update refuses an agent that is not DQN's. */
	ag.cfg.algo = QS_ALGO_PPO;
	assert_int_not_equal(qs_dqn_update(&d, &ag, NULL, NULL, 0), QS_OK);
	free(ppi);
	free(ptg);
	qs_ppo_buf_free(&b);
	qs_dqn_free(&d);
	qs_ppo_agent_free(&ag);
}

/* ---- the shared-variance penalty (share_coef) ------------------------------------ */

/* The penalty as documented in ppo.c, in double: per shard (the fixed split of
 * qs_ppo_loss_grad), coef * (shard decisions / n) / 3 times the sum over the two
 * hidden layers and the score of the channel mean of B / (B + W). */
static double
ref_share(const struct loss_ctx *c, const double *ppi, uint64_t *pattern)
{
	const struct qs_mlp *m = &c->ag->pi;
	uint32_t nf = c->ag->cfg.n_feat, per = (c->n + 1) / 2, off = 0;
	double total = 0;

	*pattern = 1469598103934665603ull;
	for (int sh = 0; sh < 2; sh++) {
		uint32_t n = c->n - off < per ? c->n - off : per, nr = 0;
		static double h[256][3][QS_MLP_MAX_DIM];
		uint32_t dec[256];
		double sum = 0;

		for (uint32_t k = 0; k < n; k++) {
			uint32_t i = c->idx[off + k], r0 = c->b->row_off[i];
			uint32_t nc = c->b->row_off[i + 1] - r0;

			for (uint32_t cc = 0; cc < nc; cc++, nr++) {
				double x[64];

				for (uint32_t f = 0; f < nf; f++)
					x[f] = c->b->rows[(size_t)(r0 + cc) * nf + f] / 127.0;
				dec[nr] = k;
				*pattern = (*pattern ^ ref_forward_layers(m, ppi, x, h[nr], NULL)) *
					   1099511628211ull;
			}
		}
		for (uint32_t l = 0; l < 3; l++) {
			uint32_t no = m->dim[l + 1];
			double lsum = 0;

			for (uint32_t j = 0; j < no; j++) {
				double M = 0, B = 0, W = 0, mk[256] = {0};
				uint32_t cnt[256] = {0};

				for (uint32_t r = 0; r < nr; r++) {
					M += h[r][l][j];
					mk[dec[r]] += h[r][l][j];
					cnt[dec[r]]++;
				}
				M /= nr;
				for (uint32_t k = 0; k < n; k++)
					mk[k] /= cnt[k];
				for (uint32_t r = 0; r < nr; r++) {
					B += (mk[dec[r]] - M) * (mk[dec[r]] - M);
					W += (h[r][l][j] - mk[dec[r]]) * (h[r][l][j] - mk[dec[r]]);
				}
				if (B + W > 1e-12 * nr)
					lsum += B / (B + W);
			}
			sum += lsum / no;
		}
		total += c->ag->cfg.share_coef * ((double)n / c->n) / 3.0 * sum;
		off += n;
	}
	return total;
}

struct share_loss {
	const struct loss_ctx *c;
	const double *ppi;
};

static double
share_loss_at(void *ctx, uint64_t *key)
{
	const struct share_loss *a = ctx;

	return ref_share(a->c, a->ppi, key);
}

/* qs_ppo_loss_grad with share_coef minus without, against finite differences of the
 * double penalty. */
static void
test_share_penalty(void **state)
{
	struct qs_ppo_cfg cfg;
	struct qs_ppo_agent ag;
	struct qs_ppo_buf b;
	struct qs_rng rng;
	uint32_t idx[12];
	uint8_t rows[8 * 4];
	double *ppi, pen;
	float l_on, l_off, *g_on;
	struct ref_grad_tally t = {0};
	struct share_loss sl;
	uint64_t key0;
	struct loss_ctx lc;
	struct qs_ppo_actor act;

	(void)state;
	tiny_cfg(&cfg, QS_ALGO_PPO);
	cfg.minibatch = 12;
	cfg.share_coef = 0.7f;
	assert_int_equal(qs_ppo_agent_init(&ag, &cfg, 3, NULL, 0), QS_OK);
	qs_rng_seed(&rng, 9, 0);
	random_net(&ag.pi, &rng, 0.3f);
	assert_int_equal(qs_ppo_buf_init(&b, 2, 12, 12 * 8, 4, NULL, 0), QS_OK);
	assert_int_equal(qs_ppo_actor_init(&act, &ag, NULL, 0), QS_OK);
	for (uint32_t i = 0; i < 12; i++) {
		uint32_t nc = 2 + qs_rng_below(&rng, 6), a;
		float lp, v;

		for (uint32_t k = 0; k < nc * 4; k++)
			rows[k] = (uint8_t)qs_rng_below(&rng, 128);
		assert_int_equal(
		    qs_ppo_act(&ag, &act, rows, nc, (1ull << nc) - 1, &rng, 0, &a, &lp, &v), QS_OK);
		assert_int_equal(
		    qs_ppo_buf_push(&b, i & 1, rows, nc, (1ull << nc) - 1, a, lp, v, NULL), QS_OK);
		b.adv[i] = qs_rng_normal(&rng);
		b.ret[i] = v;
		idx[i] = 11 - i;
	}
	lc = (struct loss_ctx){&ag, &b, idx, 12};
	l_on = qs_ppo_loss_grad(&ag, &b, idx, 12, NULL);
	g_on = malloc(ag.pi.n_params * sizeof(float));
	memcpy(g_on, ag.g_pi, ag.pi.n_params * sizeof(float));
	ag.cfg.share_coef = 0;
	l_off = qs_ppo_loss_grad(&ag, &b, idx, 12, NULL);
	ag.cfg.share_coef = cfg.share_coef;
	ppi = params_to_double(&ag.pi);
	sl = (struct share_loss){&lc, ppi};
	pen = share_loss_at(&sl, &key0);
	assert_true(pen > 0.01);
	assert_true(fabs((l_on - l_off) - pen) < 1e-4 * (1 + pen));
	/* the penalty's gradient: with it minus without */
	for (size_t k = 0; k < ag.pi.n_params; k++)
		g_on[k] -= ag.g_pi[k];
	ref_grad_check("share penalty", share_loss_at, &sl, ppi, g_on, ag.pi.n_params, key0, H,
		       1e-2, FLOOR, &t);
	assert_true(t.checked > 50 && t.skipped * 10 < t.checked);
	free(g_on);
	free(ppi);
	qs_ppo_actor_free(&act);
	qs_ppo_buf_free(&b);
	qs_ppo_agent_free(&ag);
}

/* GAE against a hand computation on two interleaved envs, one with an episode end. */
static void
test_gae(void **state)
{
	struct qs_ppo_buf b;
	uint8_t row[4] = {1, 2, 3, 4};
	float g = 0.9f, l = 0.8f;
	/* env 0: decisions 0, 2, 4 (episode ends after 2); env 1: 1, 3 (bootstrap 0.5) */
	float r[5] = {1, 0, 2, 1, -1}, v[5] = {0.5f, 0.2f, 0.1f, 0.3f, 0.4f};
	double d, a4, a2, a0, a3, a1;

	(void)state;
	assert_int_equal(qs_ppo_buf_init(&b, 2, 8, 8, 4, NULL, 0), QS_OK);
	for (uint32_t i = 0; i < 5; i++) {
		uint32_t idx;

		assert_int_equal(qs_ppo_buf_push(&b, i & 1, row, 1, 1, 0, 0, v[i], &idx), QS_OK);
	}
	/* rewards arrive late and out of order */
	for (int i = 4; i >= 0; i--)
		assert_int_equal(qs_ppo_buf_credit(&b, (uint32_t)i, r[i]), QS_OK);
	assert_int_equal(qs_ppo_buf_credit(&b, 9, 1), QS_E_ARG);
	qs_ppo_buf_end_episode(&b, 2);
	qs_ppo_buf_bootstrap(&b, 0, 0.7f);
	qs_ppo_buf_bootstrap(&b, 1, 0.5f);
	qs_ppo_buf_finish(&b, g, l);
	a4 = r[4] + g * 0.7 - v[4];
	d = r[2] - v[2]; /* episode ended: no bootstrap through it */
	a2 = d;
	a0 = r[0] + g * v[2] - v[0] + g * l * a2;
	a3 = r[3] + g * 0.5 - v[3];
	a1 = r[1] + g * v[3] - v[1] + g * l * a3;
	assert_true(fabs(b.adv[4] - a4) < 1e-6);
	assert_true(fabs(b.adv[2] - a2) < 1e-6);
	assert_true(fabs(b.adv[0] - a0) < 1e-6);
	assert_true(fabs(b.adv[3] - a3) < 1e-6);
	assert_true(fabs(b.adv[1] - a1) < 1e-6);
	assert_true(fabs(b.ret[0] - (a0 + v[0])) < 1e-6);
	qs_ppo_buf_free(&b);
}

QS_TEST_MAIN(cmocka_unit_test(test_mlp_backward), cmocka_unit_test(test_softmax_grads),
	     cmocka_unit_test(test_ppo_loss), cmocka_unit_test(test_reinforce_loss),
	     cmocka_unit_test(test_a2c_loss), cmocka_unit_test(test_dqn_loss),
	     cmocka_unit_test(test_share_penalty), cmocka_unit_test(test_gae))
