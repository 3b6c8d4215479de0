/*
 * dqn.c - replay, target network and the (double) DQN update for the router's
 * scorer (contract: dqn.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dqn.h"
#include "qsteer/features.h"
#include "util.h"

void
qs_dqn_defaults(struct qs_dqn_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->replay = 16;
	c->batch = 256;
	c->steps = 16;
	c->target_every = 250;
	c->warmup = 2;
	c->gamma = 0.99f;
	c->huber = 1.0f;
	c->double_q = 1;
	c->eps_start = 0.5f;
	c->eps_end = 0.02f;
	c->eps_frac = 0.3f;
}

float
qs_dqn_epsilon(const struct qs_dqn_cfg *c, uint64_t step, uint64_t total)
{
	double span = (double)c->eps_frac * (double)total, f;

	if (!(span > 0) || (double)step >= span)
		return c->eps_end;
	f = (double)step / span;
	return (float)((double)c->eps_start + f * ((double)c->eps_end - (double)c->eps_start));
}

void
qs_dqn_free(struct qs_dqn *d)
{
	if (!d)
		return;
	for (uint32_t s = 0; d->slot && s < d->cfg.replay; s++) {
		qs_ppo_buf_free(&d->slot[s]);
		free(d->trans ? d->trans[s] : NULL);
		free(d->succ ? d->succ[s] : NULL);
	}
	free(d->slot);
	free(d->trans);
	free(d->succ);
	free(d->n_trans);
	qs_mlp_free(&d->target);
	qs_mlp_ws_free(&d->ws_sa);
	qs_mlp_ws_free(&d->ws_on);
	qs_mlp_ws_free(&d->ws_tg);
	free(d->x_sa);
	free(d->x_next);
	free(d->ds);
	free(d->y);
	free(d->pick_b);
	free(d->pick_i);
	free(d->pick_next);
	memset(d, 0, sizeof(*d));
}

int
qs_dqn_init(struct qs_dqn *d, const struct qs_dqn_cfg *c, const struct qs_ppo_agent *ag,
	    uint32_t n_env, uint32_t cap, uint32_t cap_rows, uint64_t seed, char *msg,
	    size_t msglen)
{
	uint32_t nf = ag->cfg.n_feat, nb;
	size_t next_rows;
	int rc;

	memset(d, 0, sizeof(*d));
	if (ag->cfg.head != QS_PPO_HEAD_SCORER)
		return qs_fail(msg, msglen, QS_E_ARG, "dqn: learns the router's scorer only");
	if (!c->replay || c->replay > 256 || !c->batch || c->batch > 4096 || !c->target_every ||
	    !(c->gamma >= 0 && c->gamma <= 1) || !(c->huber > 0) ||
	    !(c->eps_start >= 0 && c->eps_start <= 1) || !(c->eps_end >= 0 && c->eps_end <= 1) ||
	    !(c->eps_frac >= 0 && c->eps_frac <= 1) || !cap || !n_env)
		return qs_fail(msg, msglen, QS_E_ARG,
			       "dqn: replay %u (1..256), batch %u (1..4096), target every %u "
			       "(>= 1), gamma %g ([0, 1]), huber %g (> 0), epsilon %g -> %g over "
			       "%g (each in [0, 1]), rollouts of %u decisions",
			       c->replay, c->batch, c->target_every, (double)c->gamma,
			       (double)c->huber, (double)c->eps_start, (double)c->eps_end,
			       (double)c->eps_frac, cap);
	d->cfg = *c;
	nb = c->batch;
	next_rows = (size_t)nb * QS_MAX_CANDIDATES;
	d->slot = calloc(c->replay, sizeof(*d->slot));
	d->trans = calloc(c->replay, sizeof(*d->trans));
	d->succ = calloc(c->replay, sizeof(*d->succ));
	d->n_trans = calloc(c->replay, sizeof(*d->n_trans));
	d->x_sa = malloc((size_t)nb * nf * sizeof(float));
	d->x_next = malloc(next_rows * nf * sizeof(float));
	d->ds = malloc((size_t)nb * sizeof(float));
	d->y = malloc((size_t)nb * sizeof(float));
	d->pick_b = malloc((size_t)nb * sizeof(*d->pick_b));
	d->pick_i = malloc((size_t)nb * sizeof(uint32_t));
	d->pick_next = malloc((size_t)nb * sizeof(uint32_t));
	if (!d->slot || !d->trans || !d->succ || !d->n_trans || !d->x_sa || !d->x_next || !d->ds ||
	    !d->y || !d->pick_b || !d->pick_i || !d->pick_next) {
		qs_dqn_free(d);
		return qs_fail(msg, msglen, QS_E_NOMEM, "dqn: replay of %u rollouts", c->replay);
	}
	for (uint32_t s = 0; s < c->replay; s++) {
		rc = qs_ppo_buf_init(&d->slot[s], n_env, cap, cap_rows, nf, msg, msglen);
		if (rc == QS_OK && (!(d->trans[s] = malloc((size_t)cap * sizeof(uint32_t))) ||
				    !(d->succ[s] = malloc((size_t)cap * sizeof(uint32_t)))))
			rc = qs_fail(msg, msglen, QS_E_NOMEM, "dqn: replay slot %u", s);
		if (rc != QS_OK) {
			d->cfg.replay = s + 1;
			qs_dqn_free(d);
			return rc;
		}
	}
	rc = qs_mlp_init(&d->target, ag->pi.n_layers, ag->pi.dim, msg, msglen);
	if (rc == QS_OK)
		rc = qs_mlp_ws_init(&d->ws_sa, &ag->pi, nb, msg, msglen);
	if (rc == QS_OK)
		rc = qs_mlp_ws_init(&d->ws_on, &ag->pi, (uint32_t)next_rows, msg, msglen);
	if (rc == QS_OK)
		rc = qs_mlp_ws_init(&d->ws_tg, &d->target, (uint32_t)next_rows, msg, msglen);
	if (rc != QS_OK) {
		qs_dqn_free(d);
		return rc;
	}
	qs_dqn_sync(d, ag);
	qs_rng_seed(&d->rng, seed, 0xd9a);
	return QS_OK;
}

void
qs_dqn_sync(struct qs_dqn *d, const struct qs_ppo_agent *ag)
{
	memcpy(d->target.p, ag->pi.p, ag->pi.n_params * sizeof(float));
}

int
qs_dqn_store(struct qs_dqn *d, const struct qs_ppo_buf *b, char *msg, size_t msglen)
{
	uint32_t s = d->head, nt = 0;
	struct qs_ppo_buf *dst = &d->slot[s];
	int rc;

	qs_ppo_buf_clear(dst);
	d->n_trans[s] = 0;
	rc = qs_ppo_buf_append(dst, b);
	if (rc != QS_OK)
		return qs_fail(msg, msglen, rc,
			       "dqn: a rollout of %u decisions (%u rows) does not fit a replay "
			       "slot of %u (%u rows)",
			       b->n, b->n_rows, dst->cap, dst->cap_rows);
	for (uint32_t i = 0; i < dst->n; i++) {
		uint32_t nx = QS_DQN_NONE;

		if (dst->done[i])
			nx = QS_DQN_TERMINAL;
		else if (i + 1 < dst->n && dst->env[i + 1] == dst->env[i])
			nx = i + 1;
		d->succ[s][i] = nx;
		if (nx != QS_DQN_NONE)
			d->trans[s][nt++] = i;
	}
	d->n_trans[s] = nt;
	d->head = (s + 1) % d->cfg.replay;
	if (d->filled < d->cfg.replay)
		d->filled++;
	return QS_OK;
}

uint64_t
qs_dqn_transitions(const struct qs_dqn *d)
{
	uint64_t n = 0;

	for (uint32_t s = 0; s < d->filled; s++)
		n += d->n_trans[s];
	return n;
}

/* Uniform over the replay's transitions: a global index walked through the slots. */
static void
sample(struct qs_dqn *d, uint32_t n, uint64_t total)
{
	for (uint32_t k = 0; k < n; k++) {
		uint64_t g = total <= UINT32_MAX ? qs_rng_below(&d->rng, (uint32_t)total)
						 : qs_rng_next(&d->rng) % total;
		uint32_t s = 0;

		while (g >= d->n_trans[s])
			g -= d->n_trans[s++];
		d->pick_b[k] = &d->slot[s];
		d->pick_i[k] = d->trans[s][g];
		d->pick_next[k] = d->succ[s][d->pick_i[k]];
	}
}

float
qs_dqn_loss_grad(struct qs_dqn *d, struct qs_ppo_agent *ag, uint32_t n, struct qs_dqn_stats *st)
{
	uint32_t nf = ag->cfg.n_feat, nr = 0;
	const float *q_on = NULL, *q_tg = NULL, *q_sa;
	double loss = 0, qm = 0, ym = 0;
	float inv = 1.0f / (float)n, k = d->cfg.huber;

	/* The chosen rows (Q(s, a) is the score of row a alone) and every successor's
	 * rows, in sample order. */
	for (uint32_t j = 0; j < n; j++) {
		const struct qs_ppo_buf *b = d->pick_b[j];
		uint32_t i = d->pick_i[j], r0 = b->row_off[i];

		qs_ppo_rows_in(ag, b->rows + (size_t)(r0 + b->action[i]) * nf, nf,
			       d->x_sa + (size_t)j * nf);
		if (d->pick_next[j] != QS_DQN_TERMINAL) {
			uint32_t m = d->pick_next[j], m0 = b->row_off[m],
				 nc = b->row_off[m + 1] - m0;

			qs_ppo_rows_in(ag, b->rows + (size_t)m0 * nf, (size_t)nc * nf,
				       d->x_next + (size_t)nr * nf);
			nr += nc;
		}
	}
	if (nr) {
		q_tg = qs_mlp_forward(&d->target, &d->ws_tg, d->x_next, nr, NULL);
		if (d->cfg.double_q)
			q_on = qs_mlp_forward(&ag->pi, &d->ws_on, d->x_next, nr, NULL);
	}
	nr = 0;
	for (uint32_t j = 0; j < n; j++) {
		const struct qs_ppo_buf *b = d->pick_b[j];
		float y = b->reward[d->pick_i[j]];

		if (d->pick_next[j] != QS_DQN_TERMINAL) {
			uint32_t m = d->pick_next[j], nc = b->row_off[m + 1] - b->row_off[m];
			uint32_t a =
			    qs_mlp_argmax_masked((q_on ? q_on : q_tg) + nr, nc, b->mask[m]);

			y += d->cfg.gamma * q_tg[nr + a];
			nr += nc;
		}
		d->y[j] = y;
	}
	q_sa = qs_mlp_forward(&ag->pi, &d->ws_sa, d->x_sa, n, NULL);
	for (uint32_t j = 0; j < n; j++) {
		float e = q_sa[j] - d->y[j], a = fabsf(e);

		loss += a <= k ? 0.5 * (double)e * (double)e : (double)k * ((double)a - 0.5 * k);
		d->ds[j] = (a <= k ? e : (e > 0 ? k : -k)) * inv;
		qm += q_sa[j];
		ym += d->y[j];
	}
	memset(ag->g_pi, 0, ag->pi.n_params * sizeof(float));
	qs_mlp_backward(&ag->pi, &d->ws_sa, n, d->ds, NULL, ag->g_pi, NULL);
	if (st) {
		st->td_loss = (float)(loss / n);
		st->q_mean = (float)(qm / n);
		st->target_mean = (float)(ym / n);
	}
	return (float)(loss / n);
}

int
qs_dqn_update(struct qs_dqn *d, struct qs_ppo_agent *ag, struct qs_dqn_stats *st, char *msg,
	      size_t msglen)
{
	uint64_t total = qs_dqn_transitions(d);
	struct qs_dqn_stats one = {0};

	if (st)
		*st = (struct qs_dqn_stats){.replay = total};
	if (ag->cfg.algo != QS_ALGO_DQN || ag->cfg.head != QS_PPO_HEAD_SCORER)
		return qs_fail(msg, msglen, QS_E_ARG, "dqn update: the agent is %s, not DQN",
			       qs_algo_name(ag->cfg.algo));
	if (d->filled < d->cfg.warmup || !total)
		return QS_OK;
	for (uint32_t t = 0; t < d->cfg.steps; t++) {
		sample(d, d->cfg.batch, total);
		qs_dqn_loss_grad(d, ag, d->cfg.batch, &one);
		qs_adam_step(&ag->opt_pi, ag->pi.p, ag->g_pi);
		if (++d->grad_steps % d->cfg.target_every == 0)
			qs_dqn_sync(d, ag);
	}
	if (st) {
		*st = one;
		st->steps = d->cfg.steps;
		st->replay = total;
	}
	ag->updates++;
	return QS_OK;
}
