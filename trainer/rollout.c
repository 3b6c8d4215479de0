/*
 * rollout.c - vectorized, threaded rollout collection with late reward credit
 * (contract: env.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "qsteer/jobs.h"
#include "util.h"

#define TAG_NONE UINT64_MAX

struct qs_roll_env {
	void *env;
	struct qs_rng rng;
	struct qs_ppo_buf buf;
	struct qs_ppo_actor actor;
	uint32_t gen;
	uint32_t n_credited;
	uint8_t *credited;
	int need_reset, have_obs;
	uint8_t rows[QS_MAX_CANDIDATES * 64];
	uint32_t n_cand;
	uint64_t mask;
	int64_t ep_last; /* local index of this episode's last recorded decision, -1 none */
	double ep_ret, ep_ret_sum, rew_sum;
	uint32_t episodes;
	uint64_t decisions;
	/* per-collect inputs and result */
	const struct qs_ppo_agent *ag;
	int greedy;
	int rc;
	char msg[256];
};

int
qs_roll_init(struct qs_roll *r, const struct qs_train_env_ops *ops, const char *scenario,
	     uint32_t n_env, uint32_t n_threads, uint32_t steps, const struct qs_ppo_agent *ag,
	     uint64_t seed, char *msg, size_t msglen)
{
	int rc;

	memset(r, 0, sizeof(*r));
	if (!ops || !n_env || n_env > 4096 || !n_threads || n_threads > 256 || !steps ||
	    steps > (1u << 24))
		return qs_fail(msg, msglen, QS_E_ARG,
			       "rollouts: %u envs (1..4096), %u threads (1..256), %u steps", n_env,
			       n_threads, steps);
	r->ops = ops;
	r->n_env = n_env;
	r->n_threads = n_threads > n_env ? n_env : n_threads;
	r->steps = steps;
	r->n_feat = ag->cfg.n_feat;
	r->e = calloc(n_env, sizeof(*r->e));
	if (!r->e)
		return qs_fail(msg, msglen, QS_E_NOMEM, "rollouts: %u envs", n_env);
	for (uint32_t i = 0; i < n_env; i++) {
		struct qs_roll_env *e = &r->e[i];

		qs_rng_seed(&e->rng, seed, 1000 + i);
		e->need_reset = 1;
		e->ep_last = -1;
		char one[1024];
		const char *sc = scenario;

		if (scenario && strchr(scenario, ',')) {
			/* A list: environment i runs item i mod count. */
			uint32_t cnt = 1, want;
			const char *p = scenario, *q;

			for (const char *t = scenario; *t; t++)
				cnt += *t == ',';
			want = i % cnt;
			for (uint32_t k = 0; k < want; k++)
				p = strchr(p, ',') + 1;
			q = strchr(p, ',');
			snprintf(one, sizeof(one), "%.*s", (int)(q ? (size_t)(q - p) : strlen(p)),
				 p);
			sc = one;
		}
		rc = ops->create(&e->env, sc, qs_rng_next(&e->rng), msg, msglen);
		if (rc == QS_OK)
			rc = qs_ppo_buf_init(&e->buf, 1, steps, steps * QS_MAX_CANDIDATES,
					     ag->cfg.n_feat, msg, msglen);
		if (rc == QS_OK)
			rc = qs_ppo_actor_init(&e->actor, ag, msg, msglen);
		if (rc == QS_OK && !(e->credited = calloc(steps, 1)))
			rc = qs_fail(msg, msglen, QS_E_NOMEM, "rollouts");
		if (rc != QS_OK) {
			qs_roll_free(r);
			return rc;
		}
	}
	return QS_OK;
}

void
qs_roll_free(struct qs_roll *r)
{
	if (!r || !r->e)
		return;
	for (uint32_t i = 0; i < r->n_env; i++) {
		struct qs_roll_env *e = &r->e[i];

		if (e->env)
			r->ops->destroy(e->env);
		qs_ppo_buf_free(&e->buf);
		qs_ppo_actor_free(&e->actor);
		free(e->credited);
	}
	free(r->e);
	r->e = NULL;
}

void
qs_roll_describe(const struct qs_roll *r, uint32_t i, char *out, size_t n)
{
	if (i < r->n_env && r->ops->describe)
		r->ops->describe(r->e[i].env, out, n);
	else
		snprintf(out, n, "%s", r->ops->name);
}

int
qs_roll_set(struct qs_roll *r, const char *key, const char *val, char *msg, size_t msglen)
{
	if (!r->ops->set)
		return QS_OK;
	for (uint32_t i = 0; i < r->n_env; i++) {
		int rc = r->ops->set(r->e[i].env, key, val, msg, msglen);

		if (rc != QS_OK)
			return rc;
	}
	return QS_OK;
}

static void
take_credits(const struct qs_roll *r, struct qs_roll_env *e)
{
	struct qs_train_credit c[64];
	uint32_t n;

	while ((n = r->ops->credits(e->env, c, 64)) > 0) {
		for (uint32_t k = 0; k < n; k++) {
			uint32_t gen = (uint32_t)(c[k].tag >> 32), i = (uint32_t)c[k].tag;

			e->ep_ret += c[k].reward;
			e->rew_sum += c[k].reward;
			/* Only this rollout's recorded decisions can still be credited. */
			if (c[k].tag == TAG_NONE || gen != e->gen || i >= e->buf.n)
				continue;
			qs_ppo_buf_credit(&e->buf, i, c[k].reward);
			if (!e->credited[i]) {
				e->credited[i] = 1;
				e->n_credited++;
			}
		}
		if (n < 64)
			break;
	}
}

/* Make sure an observation is pending; returns 1 if so, 0 if the episode ended. */
static int
next_obs(const struct qs_roll *r, struct qs_roll_env *e)
{
	int done = 0;

	for (int tries = 0; tries < 2 && !e->have_obs; tries++) {
		if (e->need_reset) {
			e->rc = r->ops->reset(e->env, qs_rng_next(&e->rng), e->msg, sizeof(e->msg));
			if (e->rc != QS_OK)
				return -1;
			e->need_reset = 0;
			e->ep_ret = 0;
			e->ep_last = -1;
		}
		e->rc = r->ops->observe(e->env, e->rows, &e->n_cand, &e->mask, &done, e->msg,
					sizeof(e->msg));
		if (e->rc != QS_OK)
			return -1;
		if (!done) {
			e->have_obs = 1;
			break;
		}
		take_credits(r, e);
		if (e->ep_last >= 0)
			qs_ppo_buf_end_episode(&e->buf, (uint32_t)e->ep_last);
		e->episodes++;
		e->ep_ret_sum += e->ep_ret;
		e->need_reset = 1;
		return 0;
	}
	return e->have_obs;
}

/* Wait for an observation and score it: 1 with its action (and log-probability and
 * value where asked), 0 if the episode ended instead, -1 on error (e->rc, e->msg). */
static int
next_decision(const struct qs_roll *r, struct qs_roll_env *e, uint32_t *action, float *logp,
	      float *value)
{
	int got = next_obs(r, e);

	if (got <= 0)
		return got;
	e->rc = qs_ppo_act(e->ag, &e->actor, e->rows, e->n_cand, e->mask, &e->rng, e->greedy,
			   action, logp, value);
	if (e->rc != QS_OK) {
		qs_fail(e->msg, sizeof(e->msg), e->rc,
			"env %s: decision with no eligible candidate", r->ops->name);
		return -1;
	}
	return 1;
}

static int
collect_env(const struct qs_roll *r, struct qs_roll_env *e)
{
	uint32_t drained = 0, action, idx;
	float logp, value;
	int got;

	qs_ppo_buf_clear(&e->buf);
	memset(e->credited, 0, r->steps);
	e->n_credited = 0;
	e->gen++;
	e->ep_last = -1;
	while (e->buf.n < r->steps) {
		got = next_decision(r, e, &action, &logp, &value);
		if (got < 0)
			return e->rc;
		if (!got)
			continue;
		if (r->bc && (!r->ops->teacher || r->ops->teacher(e->env, &action) != QS_OK))
			return e->rc = qs_fail(e->msg, sizeof(e->msg), QS_E_VALUE,
					       "env %s: no teacher choice", r->ops->name);
		e->rc = qs_ppo_buf_push(&e->buf, 0, e->rows, e->n_cand, e->mask, action, logp,
					value, &idx);
		if (e->rc != QS_OK)
			return qs_fail(e->msg, sizeof(e->msg), e->rc,
				       "rollout buffer: push failed");
		e->have_obs = 0;
		e->ep_last = idx;
		e->decisions++;
		e->rc = r->ops->act(e->env, action, (uint64_t)e->gen << 32 | idx, e->msg,
				    sizeof(e->msg));
		if (e->rc != QS_OK)
			return e->rc;
		take_credits(r, e);
	}
	/* Bootstrap from the state after the last recorded decision, then act unrecorded
	 * until the recorded decisions' requests have completed (their rewards are late). */
	got = next_decision(r, e, &action, NULL, &value);
	if (got < 0)
		return e->rc;
	if (got)
		qs_ppo_buf_bootstrap(&e->buf, 0, value);
	while (e->n_credited < e->buf.n && drained < r->steps) {
		got = next_decision(r, e, &action, NULL, NULL);
		if (got < 0)
			return e->rc;
		if (!got)
			continue;
		if (r->bc && r->ops->teacher)
			e->rc = r->ops->teacher(e->env, &action);
		if (e->rc == QS_OK)
			e->rc = r->ops->act(e->env, action, TAG_NONE, e->msg, sizeof(e->msg));
		if (e->rc != QS_OK)
			return e->rc;
		e->have_obs = 0;
		drained++;
		take_credits(r, e);
	}
	return QS_OK;
}

/* One environment's collection: a job of the pool (jobs.h). */
static void
collect_job(void *arg, uint32_t i, uint32_t worker)
{
	struct qs_roll *r = arg;

	(void)worker;
	if (r->dist.ranks > 1 && i % r->dist.ranks != r->dist.rank)
		return; /* another process steps it; the exchange brings its collection */
	/* The parameters are fixed during a collection: transpose them once. */
	qs_ppo_actor_pin(&r->e[i].actor, r->e[i].ag);
	r->e[i].rc = collect_env(r, &r->e[i]);
	qs_ppo_actor_unpin(&r->e[i].actor);
}

int
qs_roll_collect(struct qs_roll *r, const struct qs_ppo_agent *ag, struct qs_ppo_buf *out,
		int greedy, struct qs_roll_stats *st, char *msg, size_t msglen)
{
	uint32_t episodes = 0;
	double ep_sum = 0, rew = 0;
	uint64_t decisions = 0;
	/* REINFORCE's returns are Monte Carlo; PPO's and A2C's advantages GAE(lambda). */
	float lambda = ag->cfg.algo == QS_ALGO_REINFORCE ? 1.0f : ag->cfg.lambda;

	if (out->n_env < r->n_env || out->n_feat != r->n_feat)
		return qs_fail(msg, msglen, QS_E_ARG,
			       "rollouts: output buffer has %u envs of %u features, need %u "
			       "of %u",
			       out->n_env, out->n_feat, r->n_env, r->n_feat);
	for (uint32_t i = 0; i < r->n_env; i++) {
		r->e[i].ag = ag;
		r->e[i].greedy = greedy;
		r->e[i].rc = QS_OK;
		r->e[i].episodes = 0;
		r->e[i].ep_ret_sum = 0;
		r->e[i].rew_sum = 0;
		r->e[i].decisions = 0;
	}
	/* Each environment owns its actor, RNG and buffer: the split over threads
	 * cannot change what is collected. */
	qs_jobs_run(r->n_env, r->n_threads, collect_job, r);
	if (r->dist.ranks > 1) {
		int rc = r->dist.exchange(r, r->dist.ctx, msg, msglen);

		if (rc != QS_OK)
			return rc;
	}
	qs_ppo_buf_clear(out);
	for (uint32_t i = 0; i < r->n_env; i++) {
		struct qs_roll_env *e = &r->e[i];
		const struct qs_ppo_buf *b = &e->buf;

		if (e->rc != QS_OK)
			return qs_fail(msg, msglen, e->rc, "env %u: %s", i, e->msg);
		for (uint32_t k = 0; k < b->n; k++) {
			uint32_t idx, r0 = b->row_off[k];
			int rc = qs_ppo_buf_push(out, i, b->rows + (size_t)r0 * b->n_feat,
						 b->row_off[k + 1] - r0, b->mask[k], b->action[k],
						 b->logp[k], b->value[k], &idx);

			if (rc != QS_OK)
				return qs_fail(msg, msglen, rc,
					       "rollouts: merged buffer too small (%u "
					       "decisions)",
					       out->cap);
			out->reward[idx] = b->reward[k];
			out->done[idx] = b->done[k];
		}
		qs_ppo_buf_bootstrap(out, i, b->boot[0]);
		episodes += e->episodes;
		ep_sum += e->ep_ret_sum;
		rew += e->rew_sum;
		decisions += e->decisions;
	}
	qs_ppo_buf_finish(out, ag->cfg.gamma, lambda);
	if (st) {
		st->decisions = decisions;
		st->episodes = episodes;
		st->episode_return = episodes ? ep_sum / episodes : 0;
		st->reward_per_decision = decisions ? rew / (double)decisions : 0;
	}
	return QS_OK;
}

/* The packed header; the buffer's arrays follow it in the order pack writes them. */
struct packed {
	int32_t rc;
	uint32_t n, n_rows, n_feat, episodes, pad;
	uint64_t decisions;
	double ep_ret_sum, rew_sum;
	float boot, pad2;
	char msg[256];
};

/* clang-format off */
#define PACK_ARRAYS(X, b, n, nr)                 \
	X((b)->row_off, (size_t)(n) + 1)        \
	X((b)->rows, (size_t)(nr) * (b)->n_feat) \
	X((b)->mask, n)                          \
	X((b)->action, n)                        \
	X((b)->env, n)                           \
	X((b)->done, n)                          \
	X((b)->logp, n)                          \
	X((b)->value, n)                         \
	X((b)->reward, n)
/* clang-format on */

size_t
qs_roll_pack(const struct qs_roll *r, uint32_t i, uint8_t *out, size_t cap)
{
	const struct qs_roll_env *e = &r->e[i];
	const struct qs_ppo_buf *b = &e->buf;
	struct packed h = {0};
	size_t size = sizeof(h), off;

#define SIZE(a, cnt) size += (cnt) * sizeof(*(a));
	PACK_ARRAYS(SIZE, b, b->n, b->n_rows)
#undef SIZE
	if (!out || cap < size)
		return size;
	h.rc = e->rc;
	h.n = b->n;
	h.n_rows = b->n_rows;
	h.n_feat = b->n_feat;
	h.episodes = e->episodes;
	h.decisions = e->decisions;
	h.ep_ret_sum = e->ep_ret_sum;
	h.rew_sum = e->rew_sum;
	h.boot = b->boot[0];
	memcpy(h.msg, e->msg, sizeof(h.msg));
	memcpy(out, &h, sizeof(h));
	off = sizeof(h);
#define PUT(a, cnt)                                                                                \
	memcpy(out + off, (a), (cnt) * sizeof(*(a)));                                              \
	off += (cnt) * sizeof(*(a));
	PACK_ARRAYS(PUT, b, b->n, b->n_rows)
#undef PUT
	return size;
}

int
qs_roll_unpack(struct qs_roll *r, uint32_t i, const uint8_t *in, size_t len, char *msg,
	       size_t msglen)
{
	struct qs_roll_env *e;
	struct qs_ppo_buf *b;
	struct packed h;
	size_t want = sizeof(h), off = sizeof(h);

	if (i >= r->n_env || len < sizeof(h))
		return qs_fail(msg, msglen, QS_E_SIZE,
			       "rollouts: environment %u's collection: %zu bytes, need at least "
			       "%zu",
			       i, len, sizeof(h));
	e = &r->e[i];
	b = &e->buf;
	memcpy(&h, in, sizeof(h));
	if (h.n > b->cap || h.n_rows > b->cap_rows || h.n_feat != b->n_feat)
		return qs_fail(msg, msglen, QS_E_SHAPE,
			       "rollouts: environment %u's collection has %u decisions, %u rows "
			       "of %u features; this rollout holds %u, %u, %u",
			       i, h.n, h.n_rows, h.n_feat, b->cap, b->cap_rows, b->n_feat);
#define SIZE(a, cnt) want += (cnt) * sizeof(*(a));
	PACK_ARRAYS(SIZE, b, h.n, h.n_rows)
#undef SIZE
	if (len != want)
		return qs_fail(msg, msglen, QS_E_SIZE,
			       "rollouts: environment %u's collection: %zu bytes, its header "
			       "says %zu",
			       i, len, want);
#define GET(a, cnt)                                                                                \
	memcpy((a), in + off, (cnt) * sizeof(*(a)));                                               \
	off += (cnt) * sizeof(*(a));
	PACK_ARRAYS(GET, b, h.n, h.n_rows)
#undef GET
	if (b->row_off[0] != 0 || b->row_off[h.n] != h.n_rows)
		return qs_fail(msg, msglen, QS_E_VALUE,
			       "rollouts: environment %u's collection: row offsets %u..%u for %u "
			       "rows",
			       i, b->row_off[0], b->row_off[h.n], h.n_rows);
	for (uint32_t k = 0; k < h.n; k++)
		if (b->row_off[k + 1] < b->row_off[k] ||
		    b->row_off[k + 1] - b->row_off[k] > QS_MAX_CANDIDATES || b->env[k] != 0 ||
		    b->action[k] >= b->row_off[k + 1] - b->row_off[k])
			return qs_fail(msg, msglen, QS_E_VALUE,
				       "rollouts: environment %u's collection: decision %u is "
				       "malformed",
				       i, k);
	b->n = h.n;
	b->n_rows = h.n_rows;
	b->boot[0] = h.boot;
	e->rc = h.rc;
	e->episodes = h.episodes;
	e->decisions = h.decisions;
	e->ep_ret_sum = h.ep_ret_sum;
	e->rew_sum = h.rew_sum;
	memcpy(e->msg, h.msg, sizeof(e->msg));
	e->msg[sizeof(e->msg) - 1] = 0;
	return QS_OK;
}

const struct qs_train_env_ops *
qs_env_for_scenario(const char *scenario)
{
	if (scenario && strcmp(scenario, "bandit") == 0)
		return &qs_env_bandit;
#ifdef QSTEER_HAVE_SIM
	if (scenario)
		return &qs_env_sim;
#endif
	return NULL;
}
