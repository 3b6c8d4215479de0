/*
 * train_export.c - qsteer-train's export (train_export.h): PTQ, QAT rounds and the
 * choice of the round whose .q8 is kept, and the held-out evaluation of episodes.
 * Progress goes to the configured log as qsteer-train has always printed it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qsteer/features.h"
#include "quantize.h"
#include "train_export.h"
#include "util.h"

int
qs_train_evaluate(const struct qs_train_env_ops *ops, const char *scenario,
		  const struct qs_policy *p, const struct qs_ppo_agent *ag, uint32_t episodes,
		  uint64_t seed0, double *metric, const char **name, FILE *log)
{
	uint8_t rows[QS_MAX_CANDIDATES * QS_FR_COUNT];
	struct qs_train_credit cr[64];
	struct qs_ppo_actor act;
	char msg[512];
	void *env = NULL;
	double sum = 0;
	int rc = ops->create(&env, scenario, seed0, msg, sizeof(msg));

	if (rc == QS_OK && ag)
		rc = qs_ppo_actor_init(&act, ag, msg, sizeof(msg));
	for (uint32_t e = 0; rc == QS_OK && e < episodes; e++) {
		int done = 0;

		rc = ops->reset(env, seed0 + e, msg, sizeof(msg));
		while (rc == QS_OK) {
			uint32_t nc, a = 0;
			uint64_t mask;

			rc = ops->observe(env, rows, &nc, &mask, &done, msg, sizeof(msg));
			if (rc != QS_OK || done)
				break;
			if (p) {
				uint16_t ch;

				rc = qs_policy_choose(p, QS_KERNEL_AUTO, rows, 1, nc, &mask, NULL,
						      &ch);
				a = ch;
			} else {
				rc = qs_ppo_act(ag, &act, rows, nc, mask, NULL, 1, &a, NULL, NULL);
			}
			if (rc == QS_OK)
				rc = ops->act(env, a, 0, msg, sizeof(msg));
			while (ops->credits(env, cr, 64) == 64)
				;
		}
		if (rc == QS_OK)
			sum += ops->metric(env, name);
	}
	if (ag)
		qs_ppo_actor_free(&act);
	if (env)
		ops->destroy(env);
	if (rc != QS_OK) {
		if (log)
			fprintf(log, "qsteer-train: evaluation: %s\n", msg);
		return rc;
	}
	*metric = sum / (episodes ? episodes : 1);
	return QS_OK;
}

/* Fraction of decisions where two float nets pick the same candidate. */
static double
float_fidelity(const struct qs_mlp *a, const struct qs_mlp *b, const struct qs_quant_states *st)
{
	struct qs_mlp_ws wa, wb;
	float x[QS_MAX_CANDIDATES * 64];
	uint64_t same = 0, counted = 0;
	char msg[128];

	if (qs_mlp_ws_init(&wa, a, QS_MAX_CANDIDATES, msg, sizeof(msg)) != QS_OK)
		return -1;
	if (qs_mlp_ws_init(&wb, b, QS_MAX_CANDIDATES, msg, sizeof(msg)) != QS_OK) {
		qs_mlp_ws_free(&wa);
		return -1;
	}
	for (uint32_t i = 0; i < st->n; i++) {
		uint32_t r0 = st->row_off[i], nc = st->row_off[i + 1] - r0;
		uint64_t mask = st->mask[i];
		const float *sa, *sb;
		uint32_t ia;

		if (!nc || nc > QS_MAX_CANDIDATES || st->n_feat > 64)
			continue;
		if (nc < 64)
			mask &= (1ull << nc) - 1;
		if (!mask)
			continue;
		for (size_t k = 0; k < (size_t)nc * st->n_feat; k++)
			x[k] = (float)st->rows[(size_t)r0 * st->n_feat + k] / 127.0f;
		sa = qs_mlp_forward(a, &wa, x, nc, NULL);
		ia = qs_mlp_argmax_masked(sa, nc, mask);
		sb = qs_mlp_forward(b, &wb, x, nc, NULL);
		same += ia == qs_mlp_argmax_masked(sb, nc, mask);
		counted++;
	}
	qs_mlp_ws_free(&wa);
	qs_mlp_ws_free(&wb);
	return counted ? (double)same / (double)counted : 1.0;
}

#define GUARD_SEED0 (1ull << 63 | 0x6a7d0000ull) /* training-side seeds (bit 63) */

/*
 * The int8 policy's primary metric on every scenario of the comma-separated list,
 * scenario as written, GUARD_SEED0.. (training-side seeds, never evaluation seeds),
 * as a loss (lower is better: p99 TTFT as is, SLO attainment negated).
 */
static int
guard_metrics(const struct qs_train_env_ops *ops, const char *list, const struct qs_policy *p,
	      double *loss, uint32_t *n, FILE *log)
{
	char one[1024];
	const char *s = list;
	int rc = QS_OK;

	*n = 0;
	while (rc == QS_OK && *s && *n < QS_TRAIN_MAX_SCENARIOS) {
		const char *e = strchr(s, ',');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		const char *name = "";
		double m = 0;

		snprintf(one, sizeof(one), "%.*s", (int)len, s);
		rc = qs_train_evaluate(ops, one, p, NULL, 3, GUARD_SEED0, &m, &name, log);
		loss[(*n)++] = strstr(name, "ttft") ? m : -m;
		s = e ? e + 1 : s + len;
	}
	return rc;
}

int
qs_train_export(const struct qs_train_export_cfg *o, const struct qs_train_env_ops *ops,
		struct qs_ppo_agent *ag, struct qs_roll *ev, struct qs_ppo_buf *states,
		struct qs_train_export_result *res)
{
	FILE *log = o->log;
	struct qs_quant_plan q;
	struct qs_quant_states st;
	struct qs_q8_desc d;
	struct qs_mlp teacher;
	struct qs_policy *p = NULL;
	struct qs_policy_load_opts lo = {QS_SCHEMA_ROUTER_V1, QS_Q8_KIND_SCORER, NULL};
	char msg[512];
	double agree = 0, mf, mq;
	const char *mname = "metric";
	const char *first = o->scenario;
	char one[1024];
	int rc;

	/* Calibration and agreement states: greedy decisions on evaluation seeds. */
	rc = qs_roll_collect(ev, ag, states, 1, NULL, msg, sizeof(msg));
	st = (struct qs_quant_states){states->n_feat, states->n, states->rows, states->row_off,
				      states->mask};
	if (rc == QS_OK)
		rc = qs_mlp_init(&teacher, ag->pi.n_layers, ag->pi.dim, msg, sizeof(msg));
	if (rc != QS_OK) {
		fprintf(log, "qsteer-train: %s\n", msg);
		return rc;
	}
	memcpy(teacher.p, ag->pi.p, ag->pi.n_params * sizeof(float));
	rc = qs_quant_plan_init(&q, &ag->pi, msg, sizeof(msg));
	if (rc == QS_OK)
		rc = qs_quant_calibrate(&q, &ag->pi, &st, (float)o->calib_pct, 1u << 18, msg,
					sizeof(msg));
	if (rc == QS_OK && o->split[0]) {
		uint8_t ks[QS_MLP_MAX_LAYERS][QS_MLP_MAX_DIM];
		const uint8_t *kp[QS_MLP_MAX_LAYERS] = {0};

		for (uint32_t l = 0; l + 1 < q.n_layers && o->split[l]; l++) {
			memset(ks[l], (int)o->split[l], sizeof(ks[l]));
			kp[l] = ks[l];
		}
		rc = qs_quant_plan_split(&q, kp, msg, sizeof(msg));
	} else if (rc == QS_OK && o->split_width[0]) {
		rc = qs_quant_split_alloc(&q, &ag->pi, &st, o->split_width, msg, sizeof(msg));
	}
	for (uint32_t l = 0; rc == QS_OK && q.xblock && l + 1 < q.n_layers && !o->quiet; l++) {
		fprintf(log, "qsteer-train: hidden layer %u split to %u units:", l + 1,
			q.xdim[l + 1]);
		for (uint32_t j = 0; j < q.dim[l + 1]; j++)
			fprintf(log, " %u", q.split[l][j]);
		fprintf(log, "\n");
	}
	float *best_p = malloc(ag->pi.n_params * sizeof(float));
	/* Environment i runs scenario i mod n_scen: agreement is judged per scenario. */
	uint32_t n_scen = 1;
	uint16_t *grp = malloc((size_t)states->cap * sizeof(uint16_t));
	double best_agree = -1, fid, worst = 0, per[QS_TRAIN_MAX_SCENARIOS];

	for (const char *t = o->scenario; *t; t++)
		n_scen += *t == ',';
	n_scen = n_scen > QS_TRAIN_MAX_SCENARIOS ? QS_TRAIN_MAX_SCENARIOS : n_scen;
	if (!grp && rc == QS_OK)
		rc = qs_fail(msg, sizeof(msg), QS_E_NOMEM, "%u decisions' scenarios", states->cap);
	float best_s[QS_MLP_MAX_LAYERS * 64];
	int best_round = -1, last_round = -1, ok;
	double guard0[QS_TRAIN_MAX_SCENARIOS] = {0};

	if (!best_p)
		rc = QS_E_NOMEM;
	for (int round = 0; rc == QS_OK && round <= (int)o->qat_rounds; round++) {
		struct qs_quant_qat_cfg qc;

		if (round == 0) {
			qs_quant_build(&q, &ag->pi);
		} else {
			qs_quant_qat_defaults(&qc);
			qc.seed = o->seed + (uint64_t)round;
			/* Near-ties decide agreement: distill towards the float argmax
			 * (low temperature), with larger steps than the defaults. */
			qc.steps = 3000;
			qc.lr = 3e-3f;
			qc.temp = 0.02f;
			if (o->consist > 0) {
				/* Consistency: the float net itself moves so that it and its
				 * int8 version decide alike, anchored to the trained policy. */
				qc.consist = (float)o->consist;
				qc.anchor = (float)o->anchor;
				qc.temp = (float)o->qat_temp;
				qc.lr = 1e-3f;
				qc.focus_gap = (float)o->focus_gap;
				qc.focus_frac = (float)o->focus_frac;
			}
			if (o->qat_steps)
				qc.steps = o->qat_steps;
			fprintf(log, "qsteer-train: agreement %.4f < %.4g, QAT round %d\n", worst,
				o->qat_target, round);
			rc = qs_quant_qat(&ag->pi, &teacher, &q, &st, &qc, msg, sizeof(msg));
			if (rc != QS_OK)
				break;
			if (o->consist > 0) {
				/* Measure (and train the next round) on fresh decisions of the
				 * new float net, not on the states it was just fitted to. */
				rc = qs_roll_collect(ev, ag, states, 1, NULL, msg, sizeof(msg));
				st = (struct qs_quant_states){states->n_feat, states->n,
							      states->rows, states->row_off,
							      states->mask};
				if (rc != QS_OK)
					break;
				if (o->recalib) {
					/* Ranges of the moved net, on its own fresh decisions. */
					rc = qs_quant_calibrate(&q, &ag->pi, &st,
								(float)o->calib_pct, 1u << 18, msg,
								sizeof(msg));
					if (rc != QS_OK)
						break;
					qs_quant_build(&q, &ag->pi);
				}
			}
		}
		qs_quant_desc(&q, "qsteer-router", o->created, &d);
		rc = qs_q8_write_file(&d, o->out, msg, sizeof(msg));
		if (rc == QS_OK) {
			qs_policy_free(p);
			p = NULL;
			rc = qs_policy_load_file(o->out, &lo, &p, msg, sizeof(msg));
		}
		for (uint32_t i = 0; rc == QS_OK && i < st.n; i++)
			grp[i] = (uint16_t)(states->env[i] % n_scen);
		if (rc == QS_OK)
			rc = qs_quant_agreement_groups(o->consist > 0 ? &ag->pi : &teacher, p, &st,
						       grp, n_scen, per, &agree, msg, sizeof(msg));
		worst = 1;
		for (uint32_t k = 0; rc == QS_OK && k < n_scen; k++)
			worst = per[k] < worst ? per[k] : worst;
		fid = rc == QS_OK ? float_fidelity(&ag->pi, &teacher, &st) : 0;
		if (rc == QS_OK && !o->quiet) {
			fprintf(
			    log,
			    "qsteer-train: round %d: float-vs-int8 agreement %.4f (lowest scenario "
			    "%.4f), float vs trained policy %.4f (%u fresh decisions)\n",
			    round, agree, worst, fid, st.n);
			for (uint32_t k = 0; n_scen > 1 && k < n_scen; k++)
				fprintf(log, "%s%.4f%s", k ? " " : "qsteer-train:   per scenario ",
					per[k], k + 1 == n_scen ? "\n" : "");
		}
		ok = round == 0 || fid >= o->min_fid;
		if (rc == QS_OK && o->guard > 0) {
			/* The int8 policy's metric per scenario on training-side seeds must
			 * not fall more than --guard (relative) behind round 0's. */
			double gl[QS_TRAIN_MAX_SCENARIOS];
			uint32_t gn;

			rc = guard_metrics(ops, o->scenario, p, gl, &gn, log);
			for (uint32_t k = 0; rc == QS_OK && k < gn; k++) {
				if (round == 0)
					guard0[k] = gl[k];
				else if (gl[k] - guard0[k] > o->guard * fabs(guard0[k]))
					ok = 0;
				if (!o->quiet)
					fprintf(log, "%s%.4f%s", k ? " " : "qsteer-train:   guard ",
						fabs(gl[k]),
						k + 1 == gn ? (ok ? "\n" : " (rejected)\n") : "");
			}
		}
		/* A round whose float net strays from the trained policy (below
		 * --min-fidelity) or whose int8 metric falls behind (--guard) is not kept,
		 * whatever its agreement. */
		if (rc == QS_OK && worst > best_agree && ok) {
			uint32_t k = 0;

			best_agree = worst;
			best_round = round;
			memcpy(best_p, ag->pi.p, ag->pi.n_params * sizeof(float));
			for (uint32_t l = 1; l < q.n_layers; l++)
				for (uint32_t j = 0; j < q.dim[l]; j++)
					best_s[k++] = q.in_scale[l][j];
		}
		last_round = round;
		if (rc != QS_OK || worst >= o->qat_target)
			break;
	}
	if (rc == QS_OK && best_round != last_round) {
		/* Keep the best round's file (its weights and activation ranges). */
		uint32_t k = 0;

		memcpy(ag->pi.p, best_p, ag->pi.n_params * sizeof(float));
		for (uint32_t l = 1; l < q.n_layers; l++)
			for (uint32_t j = 0; j < q.dim[l]; j++)
				q.in_scale[l][j] = best_s[k++];
		qs_quant_build(&q, &ag->pi);
		qs_quant_desc(&q, "qsteer-router", o->created, &d);
		rc = qs_q8_write_file(&d, o->out, msg, sizeof(msg));
		qs_policy_free(p);
		p = NULL;
		if (rc == QS_OK)
			rc = qs_policy_load_file(o->out, &lo, &p, msg, sizeof(msg));
		if (rc == QS_OK)
			rc = qs_quant_agreement(o->consist > 0 ? &ag->pi : &teacher, p, &st, &agree,
						msg, sizeof(msg));
	}
	free(best_p);
	free(grp);
	if (rc != QS_OK) {
		fprintf(log, "qsteer-train: export: %s\n", msg);
		goto out;
	}
	/* The float reference: the trained net, or in consistency mode the float net the
	 * int8 file was quantized from (it is what the checkpoint then holds). */
	if (o->consist <= 0)
		memcpy(ag->pi.p, teacher.p, ag->pi.n_params * sizeof(float));
	if (strchr(first, ',')) {
		snprintf(one, sizeof(one), "%.*s", (int)(strchr(first, ',') - first), first);
		first = one;
	}
	rc = qs_train_evaluate(ops, first, NULL, ag, 2, QS_TRAIN_HELDOUT_SEED0, &mf, &mname, log);
	if (rc == QS_OK)
		rc = qs_train_evaluate(ops, first, p, NULL, 2, QS_TRAIN_HELDOUT_SEED0, &mq, &mname,
				       log);
	if (rc == QS_OK) {
		res->agree = agree;
		res->decisions = st.n;
		res->metric = mname;
		snprintf(res->first, sizeof(res->first), "%s", first);
		res->float_metric = mf;
		res->int8_metric = mq;
		res->bias_clamped = q.bias_clamped;
	}
out:
	qs_policy_free(p);
	qs_quant_plan_free(&q);
	qs_mlp_free(&teacher);
	return rc;
}
