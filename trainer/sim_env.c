/*
 * sim_env.c - the simulator as a training environment (env.h over sim.h's pull
 * API): one decision per arriving request, the router_v1 rows and eligibility mask
 * the simulator presents (the dataplane's stale view, never ground truth), and one
 * reward per request when it completes, credited to the decision that placed it.
 *
 * Reward of a completed request (docs/trainer.md):
 *   r = 1[SLO met] - 0.25 * min(TTFT / TTFT_ref, 4)
 * TTFT_ref is the request's SLO class TTFT target, or 1 s when the class has none.
 * The SLO term is the scenarios' attainment metric; the latency term keeps a
 * gradient when every choice misses (or meets) the SLO and pushes on p99 TTFT.
 */
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "qsteer/sim.h"
#include "util.h"

struct sim_env {
	struct qs_sim_config cfg;
	struct qs_sim *sim;
	struct qs_sim_decision d;
	uint64_t *tags; /* by decision id, this episode */
	uint64_t n_tags;
	struct qs_sim_outcome out[64];
};

static int
sim_env_create(void **env, const char *scenario, uint64_t seed, char *msg, size_t msglen)
{
	struct sim_env *e = calloc(1, sizeof(*e));
	int rc;

	(void)seed;
	if (!e)
		return qs_train_fail(QS_E_NOMEM, msg, msglen, "sim env");
	rc = qs_sim_scenario_load(scenario, ".", "sim/profiles", &e->cfg, msg, msglen);
	if (rc != QS_OK) {
		free(e);
		return rc;
	}
	e->cfg.queue_outcomes = true;
	e->cfg.on_outcome = NULL;
	*env = e;
	return QS_OK;
}

static void
sim_env_destroy(void *env)
{
	struct sim_env *e = env;

	if (e->sim)
		qs_sim_destroy(e->sim);
	free(e->tags);
	free(e);
}

static int
sim_env_reset(void *env, uint64_t seed, char *msg, size_t msglen)
{
	struct sim_env *e = env;

	if (e->sim)
		qs_sim_destroy(e->sim);
	e->sim = NULL;
	e->n_tags = 0;
	return qs_sim_create(&e->cfg, seed, &e->sim, msg, msglen);
}

static int
sim_env_observe(void *env, uint8_t *rows, uint32_t *n_cand, uint64_t *mask, int *done,
		char *msg, size_t msglen)
{
	struct sim_env *e = env;
	int rc = qs_sim_next_decision(e->sim, &e->d, msg, msglen);

	if (rc != QS_OK)
		return rc;
	*done = e->d.done;
	if (e->d.done)
		return QS_OK;
	if (!e->d.eligible) {
		/* Nothing eligible: the dataplane falls back to its heuristic; so do we,
		 * without recording a decision. */
		rc = qs_sim_route(e->sim, 0, msg, msglen);
		return rc != QS_OK ? rc : sim_env_observe(env, rows, n_cand, mask, done, msg, msglen);
	}
	memcpy(rows, e->d.features, (size_t)e->d.n_backends * QS_FR_COUNT);
	*n_cand = e->d.n_backends;
	*mask = e->d.eligible;
	return QS_OK;
}

static int
sim_env_act(void *env, uint32_t action, uint64_t tag, char *msg, size_t msglen)
{
	struct sim_env *e = env;
	uint64_t id = e->d.decision_id;

	if (id >= e->n_tags) {
		uint64_t n = e->n_tags ? e->n_tags * 2 : 4096;
		uint64_t *t;

		while (n <= id)
			n *= 2;
		t = realloc(e->tags, n * sizeof(*t));
		if (!t)
			return qs_train_fail(QS_E_NOMEM, msg, msglen, "sim env: tags");
		for (uint64_t i = e->n_tags; i < n; i++)
			t[i] = UINT64_MAX;
		e->tags = t;
		e->n_tags = n;
	}
	e->tags[id] = tag;
	return qs_sim_route(e->sim, action, msg, msglen);
}

static uint32_t
sim_env_credits(void *env, struct qs_train_credit *out, uint32_t cap)
{
	struct sim_env *e = env;
	uint32_t n = 0;

	while (n < cap) {
		uint32_t want = cap - n < 64 ? cap - n : 64;
		uint32_t got = qs_sim_poll_outcomes(e->sim, e->out, want);

		for (uint32_t i = 0; i < got; i++) {
			const struct qs_sim_outcome *o = &e->out[i];
			double ref = e->cfg.slo[o->slo_class & 3].ttft_ms;
			double ttft = (double)o->ttft_ns / 1e6, x;

			if (!(ref > 0))
				ref = 1000.0;
			x = ttft / ref;
			x = x > 4 ? 4 : x;
			out[n].tag = o->decision_id < e->n_tags ? e->tags[o->decision_id] : UINT64_MAX;
			out[n].reward = (float)((o->slo_met ? 1.0 : 0.0) - 0.25 * x);
			n++;
		}
		if (got < want)
			break;
	}
	return n;
}

static double
sim_env_metric(void *env, const char **name)
{
	struct sim_env *e = env;
	struct qs_sim_metrics m;

	qs_sim_metrics(e->sim, &m);
	if (strcmp(e->cfg.primary_metric, "ttft_p99") == 0) {
		*name = "ttft_p99_ms";
		return m.p99_ms[QS_SIM_M_TTFT];
	}
	*name = "slo_attainment";
	return m.slo_attainment;
}

const struct qs_train_env_ops qs_env_sim = {
	.name = "sim",
	.create = sim_env_create,
	.destroy = sim_env_destroy,
	.reset = sim_env_reset,
	.observe = sim_env_observe,
	.act = sim_env_act,
	.credits = sim_env_credits,
	.metric = sim_env_metric,
};
