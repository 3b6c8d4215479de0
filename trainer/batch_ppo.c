/*
 * batch_ppo.c - PPO over the batching classifier (batch_ppo.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batch_ppo.h"
#include "util.h"

void
qs_bppo_defaults(struct qs_bppo_cfg *c, uint32_t n_actions)
{
	memset(c, 0, sizeof(*c));
	c->n_actions = n_actions;
	c->h1 = 32;
	c->h2 = 32;
	c->vh = 64;
	/* An iteration is tens of ms and a request settles seconds after the iteration
	 * that admitted it: the horizon has to span a few hundred iterations. */
	c->gamma = 0.995f;
	c->lambda = 0.95f;
	c->clip = 0.2f;
	c->vf_coef = 0.5f;
	c->ent_coef = 0.01f;
	c->epochs = 4;
	c->minibatch = 1024;
	qs_adam_defaults(&c->adam_pi);
	qs_adam_defaults(&c->adam_vf);
	c->adam_pi.lr = 1e-3f;
	c->adam_vf.lr = 1e-3f;
}

static uint64_t
all_actions(uint32_t n)
{
	return n >= 64 ? ~0ull : (1ull << n) - 1;
}

/* ---- buffer ------------------------------------------------------------------------ */

int
qs_bppo_buf_init(struct qs_bppo_buf *b, uint32_t cap, char *msg, size_t msglen)
{
	memset(b, 0, sizeof(*b));
	b->cap = cap;
	b->x = malloc((size_t)cap * QS_FB_COUNT);
	b->action = malloc((size_t)cap * sizeof(*b->action));
	b->done = malloc(cap);
	b->logp = malloc((size_t)cap * sizeof(float));
	b->value = malloc((size_t)cap * sizeof(float));
	b->reward = malloc((size_t)cap * sizeof(float));
	b->adv = malloc((size_t)cap * sizeof(float));
	b->ret = malloc((size_t)cap * sizeof(float));
	if (!b->x || !b->action || !b->done || !b->logp || !b->value || !b->reward || !b->adv ||
	    !b->ret) {
		qs_bppo_buf_free(b);
		return qs_train_fail(QS_E_NOMEM, msg, msglen,
				     "batch: no memory for a buffer of %u decisions", cap);
	}
	return QS_OK;
}

void
qs_bppo_buf_free(struct qs_bppo_buf *b)
{
	free(b->x);
	free(b->action);
	free(b->done);
	free(b->logp);
	free(b->value);
	free(b->reward);
	free(b->adv);
	free(b->ret);
	memset(b, 0, sizeof(*b));
}

int
qs_bppo_buf_append(struct qs_bppo_buf *d, const struct qs_bppo_buf *s)
{
	uint32_t o = d->n;

	if (s->n > d->cap - d->n)
		return QS_E_SIZE;
	memcpy(d->x + (size_t)o * QS_FB_COUNT, s->x, (size_t)s->n * QS_FB_COUNT);
	memcpy(d->action + o, s->action, s->n * sizeof(*s->action));
	memcpy(d->done + o, s->done, s->n);
	memcpy(d->logp + o, s->logp, s->n * sizeof(float));
	memcpy(d->value + o, s->value, s->n * sizeof(float));
	memcpy(d->reward + o, s->reward, s->n * sizeof(float));
	d->n += s->n;
	return QS_OK;
}

void
qs_bppo_buf_finish(struct qs_bppo_buf *b, float gamma, float lambda)
{
	float gae = 0, next_v = 0;

	for (uint32_t i = b->n; i-- > 0;) {
		float delta;

		if (b->done[i]) {
			gae = 0;
			next_v = 0;
		}
		delta = b->reward[i] + gamma * next_v - b->value[i];
		gae = delta + gamma * lambda * gae;
		b->adv[i] = gae;
		b->ret[i] = gae + b->value[i];
		next_v = b->value[i];
	}
}

/* ---- learner --------------------------------------------------------------------------- */

int
qs_bppo_init(struct qs_bppo *ag, const struct qs_bppo_cfg *c, uint64_t seed, char *msg,
	     size_t msglen)
{
	uint32_t dp[4] = { QS_FB_COUNT, c->h1, c->h2, c->n_actions };
	uint32_t dv[4] = { QS_FB_COUNT, c->vh, c->vh, 1 };
	struct qs_rng r;
	int rc;

	memset(ag, 0, sizeof(*ag));
	if (c->n_actions < 2 || c->n_actions > QS_BPPO_MAX_ACTIONS || !c->minibatch)
		return qs_train_fail(QS_E_ARG, msg, msglen,
				     "batch: %u actions (needs 2..%d), minibatch %u", c->n_actions,
				     QS_BPPO_MAX_ACTIONS, c->minibatch);
	ag->cfg = *c;
	rc = qs_mlp_init(&ag->pi, 3, dp, msg, msglen);
	if (rc == QS_OK)
		rc = qs_mlp_init(&ag->vf, 3, dv, msg, msglen);
	if (rc == QS_OK)
		rc = qs_adam_init(&ag->opt_pi, &c->adam_pi, ag->pi.n_params, msg, msglen);
	if (rc == QS_OK)
		rc = qs_adam_init(&ag->opt_vf, &c->adam_vf, ag->vf.n_params, msg, msglen);
	if (rc == QS_OK)
		rc = qs_mlp_ws_init(&ag->ws_pi, &ag->pi, c->minibatch, msg, msglen);
	if (rc == QS_OK)
		rc = qs_mlp_ws_init(&ag->ws_vf, &ag->vf, c->minibatch, msg, msglen);
	if (rc != QS_OK) {
		qs_bppo_free(ag);
		return rc;
	}
	ag->g_pi = calloc(ag->pi.n_params, sizeof(float));
	ag->g_vf = calloc(ag->vf.n_params, sizeof(float));
	ag->xb = malloc((size_t)c->minibatch * QS_FB_COUNT * sizeof(float));
	ag->dlogit = malloc((size_t)c->minibatch * c->n_actions * sizeof(float));
	ag->dval = malloc((size_t)c->minibatch * sizeof(float));
	if (!ag->g_pi || !ag->g_vf || !ag->xb || !ag->dlogit || !ag->dval) {
		qs_bppo_free(ag);
		return qs_train_fail(QS_E_NOMEM, msg, msglen, "batch: no memory for the learner");
	}
	qs_rng_seed(&r, seed, 1);
	/* A small output gain starts the policy near uniform over the actions. */
	qs_mlp_init_params(&ag->pi, &r, 0.01f);
	qs_mlp_init_params(&ag->vf, &r, 1.0f);
	qs_rng_seed(&ag->rng, seed, 2);
	return QS_OK;
}

void
qs_bppo_free(struct qs_bppo *ag)
{
	qs_mlp_ws_free(&ag->ws_pi);
	qs_mlp_ws_free(&ag->ws_vf);
	qs_mlp_free(&ag->pi);
	qs_mlp_free(&ag->vf);
	qs_adam_free(&ag->opt_pi);
	qs_adam_free(&ag->opt_vf);
	free(ag->g_pi);
	free(ag->g_vf);
	free(ag->xb);
	free(ag->dlogit);
	free(ag->dval);
	free(ag->perm);
	memset(ag, 0, sizeof(*ag));
}

int
qs_bppo_actor_init(struct qs_bppo_actor *a, const struct qs_bppo *ag, char *msg, size_t msglen)
{
	int rc;

	memset(a, 0, sizeof(*a));
	rc = qs_mlp_ws_init(&a->ws_pi, &ag->pi, 1, msg, msglen);
	if (rc == QS_OK)
		rc = qs_mlp_ws_init(&a->ws_vf, &ag->vf, 1, msg, msglen);
	if (rc != QS_OK)
		qs_bppo_actor_free(a);
	return rc;
}

void
qs_bppo_actor_free(struct qs_bppo_actor *a)
{
	qs_mlp_ws_free(&a->ws_pi);
	qs_mlp_ws_free(&a->ws_vf);
}

void
qs_bppo_actor_pin(struct qs_bppo_actor *a, const struct qs_bppo *ag)
{
	qs_mlp_ws_pin(&a->ws_pi, &ag->pi);
	qs_mlp_ws_pin(&a->ws_vf, &ag->vf);
}

void
qs_bppo_actor_unpin(struct qs_bppo_actor *a)
{
	qs_mlp_ws_unpin(&a->ws_pi);
	qs_mlp_ws_unpin(&a->ws_vf);
}

uint32_t
qs_bppo_act(const struct qs_bppo *ag, struct qs_bppo_actor *a, const uint8_t x[QS_FB_COUNT],
	    struct qs_rng *rng, int greedy, float *logp, float *value)
{
	uint32_t n = ag->cfg.n_actions, act;
	uint64_t mask = all_actions(n);
	const float *s;
	float lse;

	for (uint32_t i = 0; i < QS_FB_COUNT; i++)
		a->x[i] = (float)x[i] / 127.0f;
	s = qs_mlp_forward(&ag->pi, &a->ws_pi, a->x, 1, NULL);
	lse = qs_mlp_softmax_masked(s, n, mask, a->p);
	act = greedy ? qs_mlp_argmax_masked(s, n, mask)
		     : qs_mlp_sample_masked(a->p, n, mask, qs_rng_uniform(rng));
	if (logp)
		*logp = s[act] - lse;
	if (value)
		*value = qs_mlp_forward(&ag->vf, &a->ws_vf, a->x, 1, NULL)[0];
	return act;
}

float
qs_bppo_loss_grad(struct qs_bppo *ag, const struct qs_bppo_buf *b, const uint32_t *idx,
		  uint32_t n, struct qs_bppo_stats *st)
{
	const struct qs_bppo_cfg *c = &ag->cfg;
	uint32_t A = c->n_actions;
	uint64_t mask = all_actions(A);
	const float *logit, *val;
	float p[QS_BPPO_MAX_ACTIONS];
	double lpi = 0, lv = 0, ent = 0, kl = 0, clipped = 0;
	float inv = 1.0f / (float)n;

	memset(ag->g_pi, 0, ag->pi.n_params * sizeof(float));
	memset(ag->g_vf, 0, ag->vf.n_params * sizeof(float));
	for (uint32_t k = 0; k < n; k++)
		for (uint32_t i = 0; i < QS_FB_COUNT; i++)
			ag->xb[(size_t)k * QS_FB_COUNT + i] =
				(float)b->x[(size_t)idx[k] * QS_FB_COUNT + i] / 127.0f;
	logit = qs_mlp_forward(&ag->pi, &ag->ws_pi, ag->xb, n, NULL);
	memset(ag->dlogit, 0, (size_t)n * A * sizeof(float));
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = idx[k], a = b->action[i];
		const float *s = logit + (size_t)k * A;
		float *ds = ag->dlogit + (size_t)k * A;
		float lse = qs_mlp_softmax_masked(s, A, mask, p);
		float lp = s[a] - lse, ratio = expf(lp - b->logp[i]), adv = b->adv[i];
		float h = qs_mlp_entropy(s, p, A, mask, lse);
		float s1 = ratio * adv;
		float s2 = fminf(fmaxf(ratio, 1 - c->clip), 1 + c->clip) * adv;

		if (s1 <= s2) {
			/* The unclipped term is the minimum: d(-ratio adv)/dlogp = -ratio adv. */
			lpi -= s1;
			qs_mlp_logp_grad(p, A, mask, a, -s1 * inv, ds);
		} else {
			lpi -= s2; /* clipped: no gradient */
			clipped += 1;
		}
		ent += h;
		kl += b->logp[i] - lp;
		qs_mlp_entropy_grad(s, p, A, mask, lse, h, -c->ent_coef * inv, ds);
	}
	qs_mlp_backward(&ag->pi, &ag->ws_pi, n, ag->dlogit, NULL, ag->g_pi, NULL);
	val = qs_mlp_forward(&ag->vf, &ag->ws_vf, ag->xb, n, NULL);
	for (uint32_t k = 0; k < n; k++) {
		float e = val[k] - b->ret[idx[k]];

		lv += 0.5 * e * e;
		ag->dval[k] = c->vf_coef * e * inv;
	}
	qs_mlp_backward(&ag->vf, &ag->ws_vf, n, ag->dval, NULL, ag->g_vf, NULL);
	if (st) {
		st->pi_loss = (float)(lpi / n);
		st->v_loss = (float)(lv / n);
		st->entropy = (float)(ent / n);
		st->approx_kl = (float)(kl / n);
		st->clip_frac = (float)(clipped / n);
	}
	return (float)(lpi / n + c->vf_coef * lv / n - c->ent_coef * ent / n);
}

int
qs_bppo_update(struct qs_bppo *ag, struct qs_bppo_buf *b, struct qs_bppo_stats *st, char *msg,
	       size_t msglen)
{
	const struct qs_bppo_cfg *c = &ag->cfg;
	double mean = 0, var = 0;
	uint32_t steps = 0;
	struct qs_bppo_stats acc, one;

	if (b->n == 0 || c->epochs == 0 || !(c->clip > 0))
		return qs_train_fail(QS_E_ARG, msg, msglen,
				     "batch: update of %u decisions, %u epochs, clip %g (needs "
				     "decisions, epochs >= 1, clip > 0)",
				     b->n, c->epochs, (double)c->clip);
	if (ag->perm_cap < b->n) {
		uint32_t *p = realloc(ag->perm, (size_t)b->n * sizeof(*p));

		if (!p)
			return qs_train_fail(QS_E_NOMEM, msg, msglen, "batch: no memory to shuffle");
		ag->perm = p;
		ag->perm_cap = b->n;
	}
	for (uint32_t i = 0; i < b->n; i++)
		mean += b->adv[i];
	mean /= b->n;
	for (uint32_t i = 0; i < b->n; i++)
		var += (b->adv[i] - mean) * (b->adv[i] - mean);
	var /= b->n;
	for (uint32_t i = 0; i < b->n; i++)
		b->adv[i] = (float)((b->adv[i] - mean) / (sqrt(var) + 1e-8));
	memset(&acc, 0, sizeof(acc));
	for (uint32_t e = 0; e < c->epochs; e++) {
		for (uint32_t i = 0; i < b->n; i++)
			ag->perm[i] = i;
		qs_rng_shuffle(&ag->rng, ag->perm, b->n);
		for (uint32_t o = 0; o < b->n; o += c->minibatch) {
			uint32_t n = b->n - o < c->minibatch ? b->n - o : c->minibatch;

			qs_bppo_loss_grad(ag, b, ag->perm + o, n, &one);
			one.grad_norm_pi = qs_adam_step(&ag->opt_pi, ag->pi.p, ag->g_pi);
			qs_adam_step(&ag->opt_vf, ag->vf.p, ag->g_vf);
			acc.pi_loss += one.pi_loss;
			acc.v_loss += one.v_loss;
			acc.entropy += one.entropy;
			acc.approx_kl += one.approx_kl;
			acc.clip_frac += one.clip_frac;
			acc.grad_norm_pi += one.grad_norm_pi;
			steps++;
		}
	}
	if (st) {
		st->pi_loss = acc.pi_loss / steps;
		st->v_loss = acc.v_loss / steps;
		st->entropy = acc.entropy / steps;
		st->approx_kl = acc.approx_kl / steps;
		st->clip_frac = acc.clip_frac / steps;
		st->grad_norm_pi = acc.grad_norm_pi / steps;
	}
	return QS_OK;
}
