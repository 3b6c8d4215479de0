/*
 * sim_env.c - the simulator as a training environment (env.h over sim.h's pull
 * API): one decision per arriving request, the router_v1 rows and eligibility mask
 * the simulator presents (the dataplane's stale view, never ground truth), and one
 * reward per request when it completes, credited to the decision that placed it.
 *
 * Scenarios: a path to an .ini, or a name, found as every program finds them
 * (qs_sim_scenario_load_named, sim.h), so the trainer works from any directory.
 *
 * Reward (docs/trainer.md), x = the request's worst ratio of achieved latency to
 * its SLO limit (TTFT, TPOT, E2E; TTFT against 1 s when the class has no limit):
 *   slo_attainment scenarios: r = 1[SLO met] - 0.25 min(x, 4)
 *   ttft_p99 scenarios:       r = 1[SLO met] - 0.25 min(y^2, 16), y = TTFT / TTFT_ref
 *                              - 0.25 W min(z^2, 16), z = TPOT / TPOT limit ("tpot_weight"
 *                              W, default 0: the policy otherwise buys TTFT with TPOT)
 * The square makes the tail expensive: p99 TTFT is a tail metric.
 *
 * Domain randomization ("randomize" = 1, training only): every episode draws the
 * offered load (x U[0.75, 1.15] of the scenario's), the backend mix (one backend
 * dropped or one duplicated, each with probability 1/3, never below 2 or above 16),
 * the report interval (log-uniform over [0.5, 4] x the scenario's) and, for trace
 * replay, a random 15-minute window of the trace; synthetic episodes are capped at
 * 4,000 requests (a bounded horizon, more randomized episodes per update).
 * Training episode seeds have bit 63 set; evaluation seeds are small integers, so
 * the two never meet.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "qsteer/baseline_cost.h"
#include "qsteer/baselines.h"
#include "qsteer/sim.h"
#include "rng.h"
#include "util.h"

struct sim_env {
	struct qs_sim_config base, cfg;
	struct qs_sim *sim;
	struct qs_sim_decision d;
	struct qs_baseline teacher;
	enum qs_baseline_kind teacher_kind;
	struct qs_sim_router fallback; /* every backend masked: lor, as qs_sim_run's */
	int randomize;
	int teacher_ties_load; /* the teacher's ties: the least outstanding, not the lowest index */
	int ttft_metric;
	double tpot_weight; /* ttft_p99 scenarios: weight of the TPOT term (0: none) */
	uint64_t *tags;	    /* by decision id, this episode */
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
		return qs_fail(msg, msglen, QS_E_NOMEM, "sim env");
	rc = qs_sim_scenario_load_named(scenario, NULL, &e->base, msg, msglen);
	if (rc != QS_OK) {
		free(e);
		return rc;
	}
	e->base.queue_outcomes = true;
	e->base.on_outcome = NULL;
	e->cfg = e->base;
	e->ttft_metric = strcmp(e->base.primary_metric, "ttft_p99") == 0;
	e->teacher_kind = QS_BASELINE_SED;
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

/* The best baseline on the scenario as written, by its primary metric, on two
 * training seeds (bit 63 set: never an evaluation seed). */
static int
pick_teacher(struct sim_env *e, char *msg, size_t msglen)
{
	double best = 0;
	int have = 0;

	for (int k = 0; k < QS_BASELINE__COUNT; k++) {
		double sum = 0;

		if (k == QS_BASELINE_RANDOM || k == QS_BASELINE_ROUND_ROBIN)
			continue;
		for (uint64_t sd = 1; sd <= 2; sd++) {
			struct qs_sim_router r;
			struct qs_sim_metrics m;
			struct qs_sim *s = NULL;
			uint64_t seed = 1ull << 63 | 0x7eac0000ull | sd;
			int rc = qs_sim_router_parse(qs_baseline_name((enum qs_baseline_kind)k),
						     seed, &r, msg, msglen);

			if (rc == QS_OK)
				rc = qs_sim_create(&e->base, seed, &s, msg, msglen);
			if (rc == QS_OK)
				rc = qs_sim_run(s, &r, msg, msglen);
			if (rc == QS_OK) {
				qs_sim_metrics(s, &m);
				sum += e->ttft_metric ? -m.p99_ms[QS_SIM_M_TTFT] : m.slo_attainment;
			}
			if (s)
				qs_sim_destroy(s);
			qs_sim_router_free(&r);
			if (rc != QS_OK)
				return rc;
		}
		if (!have || sum > best) {
			best = sum;
			have = 1;
			e->teacher_kind = (enum qs_baseline_kind)k;
		}
	}
	return QS_OK;
}

static int
sim_env_set(void *env, const char *key, const char *val, char *msg, size_t msglen)
{
	struct sim_env *e = env;

	if (!strcmp(key, "randomize")) {
		e->randomize = atoi(val);
		return QS_OK;
	}
	if (!strcmp(key, "tpot_weight")) {
		char *end;
		double w = strtod(val, &end);

		if (end == val || *end || !(w >= 0 && w <= 16))
			return qs_fail(msg, msglen, QS_E_ARG, "tpot weight '%s': expected 0..16",
				       val);
		e->tpot_weight = w;
		return QS_OK;
	}
	if (!strcmp(key, "teacher_ties")) {
		if (strcmp(val, "index") && strcmp(val, "load"))
			return qs_fail(msg, msglen, QS_E_ARG, "teacher ties '%s': index or load",
				       val);
		e->teacher_ties_load = !strcmp(val, "load");
		return QS_OK;
	}
	if (!strcmp(key, "teacher")) {
		if (!strcmp(val, "auto"))
			return pick_teacher(e, msg, msglen);
		if (qs_baseline_parse(val, &e->teacher_kind))
			return qs_fail(msg, msglen, QS_E_ARG, "unknown teacher '%s'", val);
		return QS_OK;
	}
	return qs_fail(msg, msglen, QS_E_ARG, "sim env: unknown setting %s", key);
}

/* Draw an episode's configuration from the scenario (domain randomization). */
static void
randomize_cfg(struct sim_env *e, uint64_t seed)
{
	struct qs_sim_config *c = &e->cfg;
	struct qs_rng g;
	double u, scale;
	uint32_t k;

	*c = e->base;
	qs_rng_seed(&g, seed, 0xd0a1);
	scale = 0.75 + 0.40 * qs_rng_uniform(&g);
	if (c->wl.load > 0)
		c->wl.load *= scale;
	else if (c->wl.rate > 0)
		c->wl.rate *= scale;
	u = qs_rng_uniform(&g);
	if (u < 1.0 / 3 && c->n_backends > 2) {
		k = qs_rng_below(&g, c->n_backends);
		memmove(&c->backend[k], &c->backend[k + 1],
			(c->n_backends - k - 1) * sizeof(c->backend[0]));
		c->n_backends--;
	} else if (u < 2.0 / 3 && c->n_backends < 16) {
		k = qs_rng_below(&g, c->n_backends);
		c->backend[c->n_backends++] = c->backend[k];
	}
	c->report_interval_ns =
	    (uint64_t)((double)(c->report_interval_ns ? c->report_interval_ns : 5000000) *
		       exp(log(0.5) + (log(4.0) - log(0.5)) * qs_rng_uniform(&g)));
	if (c->wl.arrival == QS_SIM_ARR_TRACE) {
		/* the episode's own quarter hour replaces the scenario's per-seed window */
		c->wl.window_start_s = 2700.0 * qs_rng_uniform(&g);
		c->wl.window_s = 900;
		c->wl.window_jitter_s = 0;
		c->wl.thin = 0;
	} else if (c->wl.requests == 0 || c->wl.requests > 4000) {
		c->wl.requests = 4000;
	}
}

static int
sim_env_reset(void *env, uint64_t seed, char *msg, size_t msglen)
{
	struct sim_env *e = env;

	if (e->sim)
		qs_sim_destroy(e->sim);
	e->sim = NULL;
	e->n_tags = 0;
	if (e->randomize) {
		seed |= 1ull << 63; /* training seeds: disjoint from evaluation seeds */
		randomize_cfg(e, seed);
	} else {
		e->cfg = e->base;
	}
	qs_baseline_init(&e->teacher, e->teacher_kind, seed ^ 0x7eac);
	qs_baseline_init(&e->fallback.base, e->cfg.fallback, seed ^ 0xfa11);
	return qs_sim_create(&e->cfg, seed, &e->sim, msg, msglen);
}

static int
sim_env_observe(void *env, uint8_t *rows, uint32_t *n_cand, uint64_t *mask, int *done, char *msg,
		size_t msglen)
{
	struct sim_env *e = env;
	int rc;

	for (;;) {
		rc = qs_sim_next_decision(e->sim, &e->d, msg, msglen);
		if (rc != QS_OK)
			return rc;
		*done = e->d.done;
		if (e->d.done)
			return QS_OK;
		if (e->d.eligible)
			break;
		/* Nothing eligible: the dataplane falls back to its heuristic (least
		 * requests by default, over the backends not draining); so do we, without
		 * recording a decision. */
		rc = qs_sim_route(e->sim, (uint32_t)qs_sim_router_choose(&e->fallback, &e->d), msg,
				  msglen);
		if (rc != QS_OK)
			return rc;
	}
	memcpy(rows, e->d.features, (size_t)e->d.n_backends * QS_FR_COUNT);
	*n_cand = e->d.n_backends;
	*mask = e->d.eligible;
	return QS_OK;
}

static int
sim_env_teacher(void *env, uint32_t *action)
{
	struct sim_env *e = env;
	int b = qs_baseline_choose(&e->teacher, &e->d.freq, e->d.backend, e->d.n_backends,
				   e->d.eligible, e->d.capacity);

	if (b < 0 || !(e->d.eligible >> b & 1))
		return QS_E_VALUE;
	if (e->teacher_ties_load) {
		/* among the candidates the heuristic ranks as well as b, the one with the
		 * fewest outstanding requests (features 0, 1 and 7 show it), then the
		 * lowest index: a rule the rows tell, where the lowest index is not */
		uint64_t tied = qs_baseline_tied(&e->teacher, e->d.backend, e->d.n_backends,
						 e->d.eligible, e->d.capacity, (uint32_t)b);

		for (uint32_t i = 0; i < e->d.n_backends; i++)
			if ((tied >> i & 1) && qs_bl_outstanding(&e->d.backend[i]) <
						   qs_bl_outstanding(&e->d.backend[b]))
				b = (int)i;
	}
	*action = (uint32_t)b;
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
			return qs_fail(msg, msglen, QS_E_NOMEM, "sim env: tags");
		for (uint64_t i = e->n_tags; i < n; i++)
			t[i] = UINT64_MAX;
		e->tags = t;
		e->n_tags = n;
	}
	e->tags[id] = tag;
	return qs_sim_route(e->sim, action, msg, msglen);
}

/*
 * Reward: the request's goodput, weighted by the quality it was served at against
 * the best backend's (cascade routing; 1 without model variants, so other scenarios'
 * rewards are as they were), minus a latency penalty. Quality floors are masks
 * (quality.h), not terms here: the policy cannot trade them away.
 */
static float
reward(const struct sim_env *e, const struct qs_sim_outcome *o)
{
	const struct qs_sim_slo *slo = &e->cfg.slo[o->slo_class & 3];
	double ttft = (double)o->ttft_ns / 1e6, ref = slo->ttft_ms > 0 ? slo->ttft_ms : 1000.0;
	double x = ttft / ref;
	const double good =
	    !o->slo_met ? 0.0
	    : o->quality_known && o->quality_best > 0 && o->quality < o->quality_best
		? o->quality / o->quality_best
		: 1.0;

	if (e->ttft_metric) {
		double pen = x * x > 16 ? 16 : x * x;

		if (e->tpot_weight > 0 && slo->tpot_ms > 0 && o->tpot_ns) {
			double t = (double)o->tpot_ns / 1e6 / slo->tpot_ms;

			pen += e->tpot_weight * (t * t > 16 ? 16 : t * t);
		}
		return (float)(good - 0.25 * pen);
	}
	if (slo->e2e_ms > 0 && (double)o->e2e_ns / 1e6 / slo->e2e_ms > x)
		x = (double)o->e2e_ns / 1e6 / slo->e2e_ms;
	if (slo->tpot_ms > 0 && (double)o->tpot_ns / 1e6 / slo->tpot_ms > x)
		x = (double)o->tpot_ns / 1e6 / slo->tpot_ms;
	return (float)(good - 0.25 * (x > 4 ? 4 : x));
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

			out[n].tag =
			    o->decision_id < e->n_tags ? e->tags[o->decision_id] : UINT64_MAX;
			out[n].reward = reward(e, o);
			n++;
		}
		if (got < want)
			break;
	}
	return n;
}

static int
sim_env_describe(void *env, char *out, size_t n)
{
	struct sim_env *e = env;

	return snprintf(out, n, "%s (teacher %s)", e->base.name, qs_baseline_name(e->teacher_kind));
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
    .set = sim_env_set,
    .teacher = sim_env_teacher,
    .describe = sim_env_describe,
};
