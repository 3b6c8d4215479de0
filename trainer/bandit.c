/*
 * bandit.c - a contextual bandit environment: each decision offers 2..8 random
 * candidate rows (some masked); routing to the eligible candidate with the smallest
 * feature 5 (QS_FR_WAITING_LOG, "shortest reported queue") earns 1, anything else
 * 0, credited one decision late so the late-credit path is always exercised.
 * Episodes are 64 decisions. It is the trainer's self-test and its benchmark when
 * the simulator is not built.
 */
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "qsteer/features.h"
#include "util.h"

#define BANDIT_EPISODE 64

struct bandit {
	struct qs_rng rng;
	uint32_t t, n_cand;
	uint8_t rows[8 * QS_FR_COUNT];
	uint64_t mask;
	int have_pending;
	struct qs_train_credit pending, ready[2];
	uint32_t n_ready;
	uint64_t right, total;
};

static int
bandit_create(void **env, const char *scenario, uint64_t seed, char *msg, size_t msglen)
{
	struct bandit *b = calloc(1, sizeof(*b));

	(void)scenario;
	if (!b)
		return qs_fail(msg, msglen, QS_E_NOMEM, "bandit");
	qs_rng_seed(&b->rng, seed, 0xba);
	*env = b;
	return QS_OK;
}

static void
bandit_destroy(void *env)
{
	free(env);
}

static int
bandit_reset(void *env, uint64_t seed, char *msg, size_t msglen)
{
	struct bandit *b = env;

	(void)msg;
	(void)msglen;
	qs_rng_seed(&b->rng, seed, 0xba);
	b->t = 0;
	b->have_pending = 0;
	b->n_ready = 0;
	return QS_OK;
}

static int
bandit_observe(void *env, uint8_t *rows, uint32_t *n_cand, uint64_t *mask, int *done, char *msg,
	       size_t msglen)
{
	struct bandit *b = env;

	(void)msg;
	(void)msglen;
	if (b->t >= BANDIT_EPISODE) {
		/* Deliver the last decision's credit before saying the episode is over. */
		if (b->have_pending) {
			b->ready[b->n_ready++] = b->pending;
			b->have_pending = 0;
		}
		*done = 1;
		return QS_OK;
	}
	*done = 0;
	b->n_cand = 2 + qs_rng_below(&b->rng, 7);
	for (uint32_t i = 0; i < b->n_cand * QS_FR_COUNT; i++)
		b->rows[i] = (uint8_t)qs_rng_below(&b->rng, 128);
	do
		b->mask = qs_rng_next(&b->rng) & ((1ull << b->n_cand) - 1);
	while (!b->mask);
	/* Mostly everything is eligible, as in a healthy cluster. */
	if (qs_rng_below(&b->rng, 4))
		b->mask = (1ull << b->n_cand) - 1;
	memcpy(rows, b->rows, b->n_cand * QS_FR_COUNT);
	*n_cand = b->n_cand;
	*mask = b->mask;
	return QS_OK;
}

static int
bandit_act(void *env, uint32_t action, uint64_t tag, char *msg, size_t msglen)
{
	struct bandit *b = env;
	uint32_t best = b->n_cand;

	if (action >= b->n_cand || !(b->mask >> action & 1))
		return qs_fail(msg, msglen, QS_E_ARG, "bandit: action %u not eligible", action);
	for (uint32_t c = 0; c < b->n_cand; c++)
		if ((b->mask >> c & 1) &&
		    (best == b->n_cand ||
		     b->rows[c * QS_FR_COUNT + 5] < b->rows[best * QS_FR_COUNT + 5]))
			best = c;
	if (b->have_pending)
		b->ready[b->n_ready++] = b->pending;
	b->pending.tag = tag;
	b->pending.reward = b->rows[action * QS_FR_COUNT + 5] == b->rows[best * QS_FR_COUNT + 5];
	b->right += b->pending.reward > 0;
	b->total++;
	b->have_pending = 1;
	b->t++;
	return QS_OK;
}

static uint32_t
bandit_credits(void *env, struct qs_train_credit *out, uint32_t cap)
{
	struct bandit *b = env;
	uint32_t n = b->n_ready < cap ? b->n_ready : cap;

	memcpy(out, b->ready, n * sizeof(*out));
	memmove(b->ready, b->ready + n, (b->n_ready - n) * sizeof(*out));
	b->n_ready -= n;
	return n;
}

static double
bandit_metric(void *env, const char **name)
{
	struct bandit *b = env;

	*name = "accuracy";
	return b->total ? (double)b->right / (double)b->total : 0;
}

const struct qs_train_env_ops qs_env_bandit = {
    .name = "bandit",
    .create = bandit_create,
    .destroy = bandit_destroy,
    .reset = bandit_reset,
    .observe = bandit_observe,
    .act = bandit_act,
    .credits = bandit_credits,
    .metric = bandit_metric,
};
