/*
 * train_eval.c - qsteer-train eval's compare (train_eval.h): the baselines and the
 * int8 file through qs_sim_router_parse, the float policy and the int8 policy
 * scored decision by decision against it through compare.h's run hook, all on the
 * simulator's one compare and its job pool.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train_eval.h"
#include "util.h"

const enum qs_cmp_col qs_train_eval_cols[QS_TRAIN_EVAL_COLS] = {
    QS_CMP_TTFT_P50, QS_CMP_TTFT_P99, QS_CMP_TPOT_P99, QS_CMP_SLO, QS_CMP_GOODPUT,
};

const double qs_train_gap_edges[QS_TRAIN_GAP_BUCKETS - 1] = {0.1, 0.3, 1, 3, 10};

/* The float scores' margin at an int8 decision, and whether the two choices differ. */
static void
count_margin(struct qs_train_margins *m, const struct qs_sim_decision *d, const float *s,
	     uint32_t fa, int flip)
{
	const uint8_t *x = &d->features[0][0];
	float runner = 0;
	int have = 0, sat = 0, b = 0;

	for (uint32_t i = 0; i < d->n_backends; i++)
		if ((d->eligible >> i & 1) && i != fa && (!have || s[i] > runner)) {
			runner = s[i];
			have = 1;
		}
	if (!have)
		return; /* one eligible candidate: nothing to flip */
	while (b < QS_TRAIN_GAP_BUCKETS - 1 && s[fa] - runner >= qs_train_gap_edges[b])
		b++;
	for (uint32_t i = 0; i < d->n_backends * QS_FR_COUNT && !sat; i++)
		sat = x[i] == 127;
	m->n[b]++;
	m->flips[b] += (uint64_t)flip;
	m->sat_n += (uint64_t)sat;
	m->sat_flips += (uint64_t)(sat && flip);
}

/* Add one run's counts into the shared total (runs end on several threads). */
static void
add_margins(struct qs_train_margins *to, const struct qs_train_margins *from)
{
	for (int b = 0; b < QS_TRAIN_GAP_BUCKETS; b++) {
		__atomic_fetch_add(&to->n[b], from->n[b], __ATOMIC_RELAXED);
		__atomic_fetch_add(&to->flips[b], from->flips[b], __ATOMIC_RELAXED);
	}
	__atomic_fetch_add(&to->sat_n, from->sat_n, __ATOMIC_RELAXED);
	__atomic_fetch_add(&to->sat_flips, from->sat_flips, __ATOMIC_RELAXED);
}

int
qs_train_policy_run(void *ctx, struct qs_sim *s, uint64_t *agree, uint64_t *decisions, char *msg,
		    size_t msglen)
{
	const struct qs_train_policy_run *pr = ctx;
	struct qs_sim_decision *d = malloc(sizeof(*d));
	struct qs_ppo_actor act;
	struct qs_sim_router fb = {0};
	struct qs_train_margins mg = {{0}};
	int rc = d ? qs_ppo_actor_init(&act, pr->ag, msg, msglen) : QS_E_NOMEM;
	int have_act = rc == QS_OK;

	qs_baseline_init(&fb.base, qs_sim_config_of(s)->fallback, 0);
	while (rc == QS_OK) {
		uint32_t fa = 0;
		uint16_t qa = QS_NO_CHOICE;

		rc = qs_sim_next_decision(s, d, msg, msglen);
		if (rc != QS_OK || d->done)
			break;
		if (!d->eligible) {
			/* every backend masked: the fallback heuristic, as qs_sim_run's
			 * (the baselines' runs) and the dataplane's */
			rc = qs_sim_route(s, (uint32_t)qs_sim_router_choose(&fb, d), msg, msglen);
			continue;
		}
		qs_ppo_act(pr->ag, &act, &d->features[0][0], d->n_backends, d->eligible, NULL, 1,
			   &fa, NULL, NULL);
		if (pr->p) {
			qs_policy_choose(pr->p, QS_KERNEL_AUTO, &d->features[0][0], 1,
					 d->n_backends, &d->eligible, NULL, &qa);
			(*decisions)++;
			*agree += qa == fa;
			if (pr->margins)
				count_margin(&mg, d, act.s, fa, qa != fa);
			if (qa == QS_NO_CHOICE)
				qa = (uint16_t)fa;
		}
		rc = qs_sim_route(s, pr->p ? qa : fa, msg, msglen);
	}
	if (pr->margins)
		add_margins(pr->margins, &mg);
	if (have_act)
		qs_ppo_actor_free(&act);
	free(d);
	return rc;
}

int
qs_train_eval_run(struct qs_train_eval *e, char *msg, size_t msglen)
{
	struct qs_policy_load_opts lo = {QS_SCHEMA_ROUTER_V1, QS_Q8_KIND_SCORER, NULL};
	struct qs_cmp_router rt[QS_BASELINE__COUNT + 2] = {{0}};
	struct qs_train_policy_run int8_run, float_run;
	struct qs_cmp_opts co = {.seeds = e->seeds, .seed0 = e->seed};
	uint32_t K = e->seeds, bad = 0;
	double best = 0, diff[QS_CMP_MAX_SEEDS], dm, dci, fm;
	int rc;

	e->n = 0;
	e->f_i = -1;
	e->best_i = -1;
	e->rows = NULL;
	e->p = NULL;
	rc = qs_sim_scenario_load_named(e->scenario, NULL, &e->cfg, msg, msglen);
	if (rc == QS_OK && e->q8)
		rc = qs_policy_load_file(e->q8, &lo, &e->p, msg, msglen);
	if (rc != QS_OK)
		return rc;
	e->ttft = strcmp(e->cfg.primary_metric, "ttft_p99") == 0;
	e->prim = e->ttft ? QS_CMP_TTFT_P99 : QS_CMP_SLO;
	for (int k = 0; k < QS_BASELINE__COUNT; k++, e->n++)
		rt[e->n].spec = e->names[e->n] = qs_baseline_name((enum qs_baseline_kind)k);
	snprintf(e->spec, sizeof(e->spec), "q8:%s", e->q8);
	e->q_i = (int)e->n;
	rt[e->n].spec = e->names[e->n] = e->spec;
	if (e->ag) {
		memset(&e->margins, 0, sizeof(e->margins));
		int8_run = (struct qs_train_policy_run){e->ag, e->p, &e->margins};
		rt[e->n].run = qs_train_policy_run;
		rt[e->n].ctx = &int8_run;
	}
	e->n++;
	if (e->ag) {
		float_run = (struct qs_train_policy_run){e->ag, NULL, NULL};
		e->f_i = (int)e->n;
		e->names[e->n] = NULL;
		rt[e->n] = (struct qs_cmp_router){"float", qs_train_policy_run, &float_run};
		e->n++;
	}
	e->rows = calloc(e->n, sizeof(*e->rows));
	if (!e->rows)
		return qs_fail(msg, msglen, QS_E_NOMEM, "out of memory");
	co.threads = e->threads ? e->threads : 1;
	co.threads = co.threads > 64 ? 64 : co.threads;
	rc = qs_cmp_run(&e->cfg, rt, e->n, &co, e->rows, &bad, msg, msglen);
	if (rc != QS_OK) {
		char inner[512];

		snprintf(inner, sizeof(inner), "%s", msg);
		return qs_fail(msg, msglen, rc, "eval %s seed %" PRIu64 ": %s",
			       e->names[bad / K] ? e->names[bad / K] : "float", e->seed + bad % K,
			       inner);
	}
	for (int i = 0; i < QS_BASELINE__COUNT; i++) {
		double m = e->rows[i].mean[e->prim];

		if (e->best_i < 0 || (e->ttft ? m < best : m > best)) {
			best = m;
			e->best_i = i;
		}
	}
	if (!e->ag)
		return QS_OK;
	/* Paired over seeds: both runs of a seed see the same arrivals, so the per-seed
	 * difference has far less spread than either mean. */
	e->agree = e->rows[e->q_i].agree;
	e->decisions = e->rows[e->q_i].decisions;
	for (uint32_t k = 0; k < K; k++)
		diff[k] = e->rows[e->q_i].v[e->prim][k] - e->rows[e->f_i].v[e->prim][k];
	qs_cmp_mean_ci(diff, K, &dm, &dci);
	fm = e->rows[e->f_i].mean[e->prim];
	e->diff_pct = fm != 0 ? 100.0 * dm / fm : 0.0;
	e->diff_ci_pct = fm != 0 ? 100.0 * dci / fabs(fm) : 0.0;
	return QS_OK;
}

void
qs_train_eval_free(struct qs_train_eval *e)
{
	free(e->rows);
	e->rows = NULL;
	qs_policy_free(e->p);
	e->p = NULL;
}
