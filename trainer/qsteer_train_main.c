/*
 * qsteer_train_main.c - qsteer-train: train a router policy (PPO or REINFORCE)
 * against an environment, quantize it (PTQ, QAT when agreement is short), export
 * the .q8, evaluate it, and benchmark training throughput. The learning itself is
 * in the library; this file parses arguments, prints and writes files.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <math.h>
#include <pthread.h>
#include <sys/stat.h>

#ifdef QSTEER_HAVE_AGENT
#include "batch_cmd.h"
#endif
#include "ckpt.h"
#include "env.h"
#include "qsteer/features.h"
#include "quantize.h"
#include "util.h"
#ifdef QSTEER_HAVE_SIM
#include "qsteer/sim.h"
#endif

#define N_ENV 8
#define STEPS_PER_ENV 256
#define CALIB_PER_ENV 1024 /* calibration / QAT / agreement states per env */

struct opts {
	const char *cmd, *scenario, *out, *log, *ckpt, *resume, *plot, *file;
	const char *teacher, *init, *fckpt, *out_dir;
	enum qs_algo algo;
	uint64_t steps, seed, bc_steps, created;
	double lr, bc_lr, ent, calib_pct, share, consist, anchor, qat_temp;
	double ppo_consist, ppo_temp, center, min_fid, guard, focus_gap, focus_frac;
	double qat_target; /* QAT runs while the lowest scenario's agreement is below it */
	uint32_t qat_steps, calib_per_env;
	uint32_t epochs, qat_rounds;
	/* --split: copies per hidden layer's channels; --split-width: the widened
	 * layers' units, copies by measured cost (0: none given) */
	uint32_t split[QS_MLP_MAX_LAYERS], split_width[QS_MLP_MAX_LAYERS];
	int recalib;
	uint32_t threads, episodes, seeds;
	int json, randomize, quiet;
};

static int
usage(void)
{
	fprintf(stderr,
		"usage: qsteer-train train --scenario S[,S...] [--algo ppo|reinforce] [--steps N] --out FILE.q8\n"
		"                          [--bc-steps N] [--teacher auto|sed|kv|...] [--init CKPT]\n"
		"                          [--threads N] [--seed S] [--log CSV] [--checkpoint FILE]\n"
		"                          [--resume FILE] [--plot DIR] [--no-randomize] [--created T]\n"
		"                          [--ppo-consist X] [--ppo-temp T] [--consist X] [--anchor X]\n"
		"                          [--qat-temp T] [--qat-rounds N] [--qat-steps N] [--recalib]\n"
		"                          [--min-fidelity F] [--guard G] [--share X] [--center X]\n"
		"                          [--focus-gap G] [--focus-frac F] [--qat-target A]\n"
		"                          [--split K1,K2 | --split-width W1,W2]\n"
		"       qsteer-train eval FILE.q8 --scenario S [--seeds K] [--seed S] [--float CKPT] [--json]\n"
		"                          [--plot DIR]\n"
		"       qsteer-train bench [--json] [--threads N] [--scenario S]\n"
		"       qsteer-train demo --out-dir DIR [--scenario S] [--steps N] [--seeds K] [--init CKPT]\n"
		"                          [--split-width W1,W2] (default 64,64)\n"
		"       qsteer-train batch train|eval ...  (the agent's batching classifier; 'batch' alone: help)\n"
		"S is \"bandit\" (built-in self-test environment) or a scenario name or .ini (needs sim/).\n");
	return 2;
}

static const struct qs_train_env_ops *
env_or_die(const char *scenario)
{
	const struct qs_train_env_ops *ops = qs_env_for_scenario(scenario);

	if (!ops) {
#ifdef QSTEER_HAVE_SIM
		fprintf(stderr, "qsteer-train: no scenario given\n");
#else
		fprintf(stderr,
			"qsteer-train: simulator not built: scenario '%s' needs libqsteer-sim "
			"(sim/); only the built-in 'bandit' environment is available\n",
			scenario ? scenario : "");
#endif
	}
	return ops;
}

/* The paired interval the metric difference must reach before eval calls it measured:
 * half the 1% float-vs-int8 target, so a difference at the target is still told apart. */
#define DIFF_HALF_WIDTH_PCT 0.5
#define HELDOUT_SEED0 1 /* evaluation seeds 1..K; training episodes use bit 63 set */

/* Run episodes of an env (its scenario as written, no randomization) on held-out
 * seeds seed0, seed0 + 1, ... with the int8 policy (p) or the float scorer (ag);
 * return the mean of the env's primary metric. */
static int
evaluate(const struct qs_train_env_ops *ops, const char *scenario, const struct qs_policy *p,
	 const struct qs_ppo_agent *ag, uint32_t episodes, uint64_t seed0, double *metric,
	 const char **name)
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

				rc = qs_policy_choose(p, QS_KERNEL_AUTO, rows, 1, nc, &mask, NULL, &ch);
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
		fprintf(stderr, "qsteer-train: evaluation: %s\n", msg);
		return rc;
	}
	*metric = sum / (episodes ? episodes : 1);
	return QS_OK;
}

static uint64_t
created_time(const struct opts *o)
{
	const char *e = getenv("SOURCE_DATE_EPOCH");
	uint64_t v;

	if (o->created != UINT64_MAX)
		return o->created;
	if (e && *e && sscanf(e, "%" SCNu64, &v) == 1)
		return v;
	return 0; /* deterministic by default: the .q8 is a function of the inputs */
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
#define GUARD_MAX 16 /* scenarios in a --scenario list (agreement and guard per scenario) */

/*
 * The int8 policy's primary metric on every scenario of the comma-separated list,
 * scenario as written, GUARD_SEED0.. (training-side seeds, never evaluation seeds),
 * as a loss (lower is better: p99 TTFT as is, SLO attainment negated).
 */
static int
guard_metrics(const struct qs_train_env_ops *ops, const char *list, const struct qs_policy *p,
	      double *loss, uint32_t *n)
{
	char one[1024];
	const char *s = list;
	int rc = QS_OK;

	*n = 0;
	while (rc == QS_OK && *s && *n < GUARD_MAX) {
		const char *e = strchr(s, ',');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		const char *name = "";
		double m = 0;

		snprintf(one, sizeof(one), "%.*s", (int)len, s);
		rc = evaluate(ops, one, p, NULL, 3, GUARD_SEED0, &m, &name);
		loss[(*n)++] = strstr(name, "ttft") ? m : -m;
		s = e ? e + 1 : s + len;
	}
	return rc;
}

static int
export_policy(const struct opts *o, const struct qs_train_env_ops *ops, struct qs_ppo_agent *ag,
	      struct qs_roll *ev, struct qs_ppo_buf *states)
{
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
		fprintf(stderr, "qsteer-train: %s\n", msg);
		return rc;
	}
	memcpy(teacher.p, ag->pi.p, ag->pi.n_params * sizeof(float));
	rc = qs_quant_plan_init(&q, &ag->pi, msg, sizeof(msg));
	if (rc == QS_OK)
		rc = qs_quant_calibrate(&q, &ag->pi, &st, (float)o->calib_pct, 1u << 18, msg, sizeof(msg));
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
		fprintf(stderr, "qsteer-train: hidden layer %u split to %u units:", l + 1,
			q.xdim[l + 1]);
		for (uint32_t j = 0; j < q.dim[l + 1]; j++)
			fprintf(stderr, " %u", q.split[l][j]);
		fprintf(stderr, "\n");
	}
	float *best_p = malloc(ag->pi.n_params * sizeof(float));
	/* Environment i runs scenario i mod n_scen: agreement is judged per scenario. */
	uint32_t n_scen = 1;
	uint16_t *grp = malloc((size_t)states->cap * sizeof(uint16_t));
	double best_agree = -1, fid, worst = 0, per[GUARD_MAX];

	for (const char *t = o->scenario; *t; t++)
		n_scen += *t == ',';
	n_scen = n_scen > GUARD_MAX ? GUARD_MAX : n_scen;
	if (!grp && rc == QS_OK)
		rc = qs_train_fail(QS_E_NOMEM, msg, sizeof(msg), "%u decisions' scenarios",
				   states->cap);
	float best_s[QS_MLP_MAX_LAYERS * 64];
	int best_round = -1, last_round = -1, ok;
	double guard0[GUARD_MAX] = {0};

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
			fprintf(stderr, "qsteer-train: agreement %.4f < %.4g, QAT round %d\n", worst,
				o->qat_target, round);
			rc = qs_quant_qat(&ag->pi, &teacher, &q, &st, &qc, msg, sizeof(msg));
			if (rc != QS_OK)
				break;
			if (o->consist > 0) {
				/* Measure (and train the next round) on fresh decisions of the
				 * new float net, not on the states it was just fitted to. */
				rc = qs_roll_collect(ev, ag, states, 1, NULL, msg, sizeof(msg));
				st = (struct qs_quant_states){states->n_feat, states->n, states->rows,
							      states->row_off, states->mask};
				if (rc != QS_OK)
					break;
				if (o->recalib) {
					/* Ranges of the moved net, on its own fresh decisions. */
					rc = qs_quant_calibrate(&q, &ag->pi, &st, (float)o->calib_pct,
								1u << 18, msg, sizeof(msg));
					if (rc != QS_OK)
						break;
					qs_quant_build(&q, &ag->pi);
				}
			}
		}
		qs_quant_desc(&q, "qsteer-router", created_time(o), &d);
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
			fprintf(stderr,
				"qsteer-train: round %d: float-vs-int8 agreement %.4f (lowest scenario "
				"%.4f), float vs trained policy %.4f (%u fresh decisions)\n",
				round, agree, worst, fid, st.n);
			for (uint32_t k = 0; n_scen > 1 && k < n_scen; k++)
				fprintf(stderr, "%s%.4f%s", k ? " " : "qsteer-train:   per scenario ",
					per[k], k + 1 == n_scen ? "\n" : "");
		}
		ok = round == 0 || fid >= o->min_fid;
		if (rc == QS_OK && o->guard > 0) {
			/* The int8 policy's metric per scenario on training-side seeds must
			 * not fall more than --guard (relative) behind round 0's. */
			double gl[GUARD_MAX];
			uint32_t gn;

			rc = guard_metrics(ops, o->scenario, p, gl, &gn);
			for (uint32_t k = 0; rc == QS_OK && k < gn; k++) {
				if (round == 0)
					guard0[k] = gl[k];
				else if (gl[k] - guard0[k] > o->guard * fabs(guard0[k]))
					ok = 0;
				if (!o->quiet)
					fprintf(stderr, "%s%.4f%s", k ? " " : "qsteer-train:   guard ",
						fabs(gl[k]), k + 1 == gn ? (ok ? "\n" : " (rejected)\n") : "");
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
		qs_quant_desc(&q, "qsteer-router", created_time(o), &d);
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
		fprintf(stderr, "qsteer-train: export: %s\n", msg);
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
	rc = evaluate(ops, first, NULL, ag, 2, HELDOUT_SEED0, &mf, &mname);
	if (rc == QS_OK)
		rc = evaluate(ops, first, p, NULL, 2, HELDOUT_SEED0, &mq, &mname);
	if (rc == QS_OK)
		printf("exported %s: float-vs-int8 agreement %.4f on %u decisions; %s on %s "
		       "(held-out seeds %d..%d) float %.4f int8 %.4f (difference %.2f%%; two "
		       "seeds: eval --float gives its interval)%s\n",
		       o->out, agree, st.n, mname, first, HELDOUT_SEED0, HELDOUT_SEED0 + 1, mf, mq,
		       mf != 0 ? 100.0 * (mq - mf) / mf : 0.0,
		       q.bias_clamped ? " [biases clamped]" : "");
out:
	qs_policy_free(p);
	qs_quant_plan_free(&q);
	qs_mlp_free(&teacher);
	return rc;
}

/* mkdir -p: create dir and any missing parents; 0 if it exists afterwards. */
static int
mkdir_parents(const char *dir)
{
	char path[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(path, dir, n + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(path, 0777) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(path, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

static void
plot_curve(const char *dir, const char *csv)
{
	char qdir[4096], qcsv[4096];
	FILE *g;

	if (!csv) {
		fprintf(stderr, "qsteer-train: --plot needs --log CSV\n");
		return;
	}
	/* no shell command built from the path: create it here, pipe into gnuplot */
	if (mkdir_parents(dir) != 0) {
		fprintf(stderr, "qsteer-train: %s: %s\n", dir, strerror(errno));
		return;
	}
	g = popen("gnuplot", "w");
	if (!g) {
		fprintf(stderr, "qsteer-train: cannot run gnuplot\n");
		return;
	}
	fprintf(g, "set terminal pngcairo size 900,500 noenhanced\nset output '%s/learning-curve.png'\n"
		   "set datafile separator ','\nset key bottom right\nset xlabel 'decisions'\n"
		   "set ylabel 'reward per decision'\nset y2label 'policy entropy'\n"
		   "set y2tics\nset ytics nomirror\nset grid\n"
		   "set title 'qsteer-train learning curve (%s)'\n"
		   "plot '%s' using 2:4 skip 1 with lines lw 2 title 'reward per decision', "
		   "'' using 2:8 skip 1 axes x1y2 with lines title 'entropy'\n",
		qs_sim_gp_quote(dir, qdir, sizeof(qdir)), qs_sim_gp_quote(csv, qcsv, sizeof(qcsv)),
		qcsv);
	if (pclose(g) != 0)
		fprintf(stderr, "qsteer-train: gnuplot failed (is it installed?)\n");
}

static int
cmd_train(const struct opts *o, int bench)
{
	const struct qs_train_env_ops *ops = bench && !o->scenario ? &qs_env_bandit
								   : env_or_die(o->scenario);
	struct qs_ppo_cfg c;
	struct qs_ppo_agent ag;
	struct qs_roll r, ev;
	struct qs_ppo_buf b, states;
	struct qs_ckpt_meta meta = {0};
	struct qs_roll_stats rs;
	struct qs_ppo_stats ps;
	const char *scen = bench && !o->scenario ? "bandit" : o->scenario;
	uint64_t per = (uint64_t)N_ENV * STEPS_PER_ENV, updates, step = 0;
	uint64_t total = o->steps + o->bc_steps;
	FILE *log = NULL;
	char msg[512];
	double t0, recent = 0;
	int rc, tty = isatty(2) && !o->quiet;

	if (!ops)
		return 1;
	qs_ppo_defaults(&c);
	c.algo = o->algo;
	if (o->lr > 0)
		c.adam_pi.lr = (float)o->lr;
	if (o->epochs)
		c.epochs = o->epochs;
	if (o->ent >= 0)
		c.ent_coef = (float)o->ent;
	c.share_coef = (float)o->share;
	c.consist_coef = (float)o->ppo_consist;
	c.center_coef = (float)o->center;
	c.consist_temp = (float)(o->ppo_temp > 0 ? o->ppo_temp : o->qat_temp);
	c.consist_pct = (float)o->calib_pct;
	if (ops == &qs_env_bandit)
		c.gamma = 0; /* a bandit: each decision earns only its own reward */
	if (o->resume && (rc = qs_ckpt_peek(o->resume, &c, msg, sizeof(msg))) != QS_OK) {
		fprintf(stderr, "qsteer-train: resume: %s\n", msg);
		return 1;
	}
	updates = (total + per - 1) / per;
	c.adam_pi.total_steps = c.adam_vf.total_steps =
		updates * c.epochs * ((per + c.minibatch - 1) / c.minibatch);
	rc = qs_ppo_agent_init(&ag, &c, o->seed, msg, sizeof(msg));
	if (rc != QS_OK) {
		fprintf(stderr, "qsteer-train: %s\n", msg);
		return 1;
	}
	/* More --split values than the net has hidden layers: refused before training. */
	{
		uint32_t nv = 0;

		while (nv < QS_MLP_MAX_LAYERS && (o->split[nv] || o->split_width[nv]))
			nv++;
		if (nv > ag.pi.n_layers - 1) {
			fprintf(stderr, "qsteer-train: %s: %u values for a net with %u hidden layers\n",
				o->split[0] ? "--split" : "--split-width", nv, ag.pi.n_layers - 1);
			qs_ppo_agent_free(&ag);
			return 2;
		}
	}
	qs_ppo_set_threads(&ag, o->threads);
	if (o->resume || o->init) {
		rc = qs_ckpt_load(o->resume ? o->resume : o->init, &ag, &meta, msg, sizeof(msg));
		if (rc != QS_OK) {
			fprintf(stderr, "qsteer-train: %s: %s\n", o->resume ? "resume" : "init", msg);
			qs_ppo_agent_free(&ag);
			return 1;
		}
		if (o->resume) {
			step = meta.step;
		} else {
			/* Weights only: a fresh optimizer and schedule for this run. */
			ag.opt_pi.cfg = c.adam_pi;
			ag.opt_vf.cfg = c.adam_vf;
			ag.opt_pi.t = ag.opt_vf.t = 0;
			memset(ag.opt_pi.m, 0, ag.opt_pi.n * sizeof(float));
			memset(ag.opt_pi.v, 0, ag.opt_pi.n * sizeof(float));
			memset(ag.opt_vf.m, 0, ag.opt_vf.n * sizeof(float));
			memset(ag.opt_vf.v, 0, ag.opt_vf.n * sizeof(float));
			meta = (struct qs_ckpt_meta){0};
		}
	}
	/* Rollout seeds advance with the step so a resumed run continues the stream. */
	rc = qs_roll_init(&r, ops, scen, N_ENV, o->threads, STEPS_PER_ENV, &ag, o->seed + step,
			  msg, sizeof(msg));
	if (rc == QS_OK && o->randomize)
		rc = qs_roll_set(&r, "randomize", "1", msg, sizeof(msg));
	if (rc == QS_OK && o->bc_steps && step < o->bc_steps)
		rc = qs_roll_set(&r, "teacher", o->teacher ? o->teacher : "auto", msg, sizeof(msg));
	if (rc == QS_OK)
		rc = qs_roll_init(&ev, ops, scen, N_ENV, o->threads, o->calib_per_env, &ag,
				  o->seed ^ 0x5eedf00dull, msg, sizeof(msg));
	if (rc == QS_OK)
		rc = qs_ppo_buf_init(&b, N_ENV, (uint32_t)per, (uint32_t)per * QS_MAX_CANDIDATES,
				     c.n_feat, msg, sizeof(msg));
	if (rc == QS_OK)
		rc = qs_ppo_buf_init(&states, N_ENV, N_ENV * o->calib_per_env,
				     N_ENV * o->calib_per_env * 32, c.n_feat, msg,
				     sizeof(msg));
	if (rc != QS_OK) {
		fprintf(stderr, "qsteer-train: %s\n", msg);
		return 1;
	}
	if (!bench && !o->quiet && ops->describe && o->bc_steps && step < o->bc_steps) {
		for (uint32_t i = 0; i < N_ENV && i < 8; i++) {
			qs_roll_describe(&r, i, msg, sizeof(msg));
			fprintf(stderr, "qsteer-train: env %u: %s\n", i, msg);
		}
	}
	if (o->log) {
		log = fopen(o->log, o->resume ? "a" : "w");
		if (!log) {
			fprintf(stderr, "qsteer-train: %s: %s\n", o->log, strerror(errno));
			return 1;
		}
		if (!o->resume)
			fprintf(log, "update,step,decisions_per_s,reward_per_decision,episode_return,"
				     "pi_loss,v_loss,entropy,approx_kl,clip_frac,phase,elapsed_s,shared\n");
	}
	t0 = qs_train_now_s();
	uint64_t start = step;
	while (step < total) {
		double el, rate;
		int bc = step < o->bc_steps;

		r.bc = bc;
		ag.bc = bc;
		/* Behaviour cloning takes larger steps than the policy gradient. */
		ag.opt_pi.cfg.lr = bc ? (float)o->bc_lr : c.adam_pi.lr;
		rc = qs_roll_collect(&r, &ag, &b, 0, &rs, msg, sizeof(msg));
		if (rc == QS_OK)
			rc = qs_ppo_update(&ag, &b, &ps, msg, sizeof(msg));
		if (rc != QS_OK) {
			fprintf(stderr, "\nqsteer-train: %s\n", msg);
			break;
		}
		step += b.n;
		el = qs_train_now_s() - t0;
		rate = (double)(step - start) / (el > 0 ? el : 1e-9);
		recent = recent == 0 ? rs.reward_per_decision
				     : 0.9 * recent + 0.1 * rs.reward_per_decision;
		if (log)
			fprintf(log,
				"%" PRIu64 ",%" PRIu64 ",%.0f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.4f,%s,"
				"%.3f,%.4f\n",
				ag.updates, step, rate, rs.reward_per_decision, rs.episode_return,
				(double)ps.pi_loss, (double)ps.v_loss, (double)ps.entropy,
				(double)ps.approx_kl, (double)ps.clip_frac, bc ? "bc" : "rl", el,
				(double)ps.shared);
		if (tty && !bench)
			fprintf(stderr,
				"\r[%s] %" PRIu64 "/%" PRIu64 " decisions  %.0f dec/s  reward/decision "
				"%.4f  entropy %.3f  ETA %.0f s   ",
				bc ? "bc" : "rl", step, total, rate, recent, (double)ps.entropy,
				(double)(total - (step < total ? step : total)) / rate);
		if (o->ckpt && ag.updates % 10 == 0) {
			meta.seed = o->seed;
			meta.step = step;
			if (qs_ckpt_save(o->ckpt, &ag, &meta, msg, sizeof(msg)) != QS_OK)
				fprintf(stderr, "\nqsteer-train: checkpoint: %s\n", msg);
		}
	}
	ag.bc = 0;
	r.bc = 0;
	if (tty && !bench)
		fprintf(stderr, "\n");
	if (c.consist_coef > 0 && !bench && !o->quiet)
		fprintf(stderr, "qsteer-train: last update's float-vs-fake-int8 agreement %.4f\n",
			(double)ag.consist_agree);
	if (bench && rc == QS_OK) {
		double el = qs_train_now_s() - t0, dps = (double)(step - start) / el;

		if (o->json)
			printf("{\"decisions_per_s\": %.0f, \"threads\": %u, \"env\": \"%s\"}\n", dps,
			       o->threads, scen);
		else
			printf("%.0f decisions/s (training including learning, env %s, %u threads)\n",
			       dps, scen, o->threads);
	}
	if (rc == QS_OK && o->ckpt) {
		meta.seed = o->seed;
		meta.step = step;
		if (qs_ckpt_save(o->ckpt, &ag, &meta, msg, sizeof(msg)) != QS_OK)
			fprintf(stderr, "qsteer-train: checkpoint: %s\n", msg);
	}
	if (log)
		fclose(log);
	if (rc == QS_OK && !bench && o->out)
		rc = export_policy(o, ops, &ag, &ev, &states);
	if (rc == QS_OK && !bench && o->out && o->ckpt && o->consist > 0) {
		/* The checkpoint holds the float net the .q8 was quantized from. */
		if (qs_ckpt_save(o->ckpt, &ag, &meta, msg, sizeof(msg)) != QS_OK)
			fprintf(stderr, "qsteer-train: checkpoint: %s\n", msg);
	}
	if (rc == QS_OK && o->plot)
		plot_curve(o->plot, o->log);
	qs_ppo_buf_free(&b);
	qs_ppo_buf_free(&states);
	qs_roll_free(&r);
	qs_roll_free(&ev);
	qs_ppo_agent_free(&ag);
	return rc == QS_OK ? 0 : 1;
}

#ifdef QSTEER_HAVE_SIM
#define N_COLS 5
static const char *col_name[N_COLS] = {"ttft_p50_ms", "ttft_p99_ms", "tpot_p99_ms",
				       "slo_attainment", "goodput_rps"};

struct eval_job {
	const struct qs_sim_config *cfg;
	const char *router; /* baseline name, "q8:FILE", or NULL: the float policy */
	const struct qs_ppo_agent *ag;
	const struct qs_policy *p; /* with ag and router q8: agreement on the int8 run */
	uint64_t seed;
	double v[N_COLS];
	uint64_t agree, decisions;
	int rc;
	char msg[256];
};

static void
job_metrics(struct qs_sim *s, double *v)
{
	struct qs_sim_metrics m;

	qs_sim_metrics(s, &m);
	v[0] = m.p50_ms[QS_SIM_M_TTFT];
	v[1] = m.p99_ms[QS_SIM_M_TTFT];
	v[2] = m.p99_ms[QS_SIM_M_TPOT];
	v[3] = m.slo_attainment;
	v[4] = m.goodput_rps;
}

static void
run_job(struct eval_job *j)
{
	struct qs_sim *s = NULL;
	struct qs_sim_decision *d = NULL;
	struct qs_ppo_actor act;
	int have_act = 0;

	j->rc = qs_sim_create(j->cfg, j->seed, &s, j->msg, sizeof(j->msg));
	if (j->rc != QS_OK)
		return;
	if (j->router && !j->ag) {
		struct qs_sim_router r;

		j->rc = qs_sim_router_parse(j->router, j->seed, &r, j->msg, sizeof(j->msg));
		if (j->rc == QS_OK)
			j->rc = qs_sim_run(s, &r, j->msg, sizeof(j->msg));
		qs_sim_router_free(&r);
		goto done;
	}
	/* The float policy's own run, or the int8 run scored against the float policy. */
	d = malloc(sizeof(*d));
	j->rc = d ? qs_ppo_actor_init(&act, j->ag, j->msg, sizeof(j->msg)) : QS_E_NOMEM;
	have_act = j->rc == QS_OK;
	while (j->rc == QS_OK) {
		uint32_t fa = 0;
		uint16_t qa = QS_NO_CHOICE;

		j->rc = qs_sim_next_decision(s, d, j->msg, sizeof(j->msg));
		if (j->rc != QS_OK || d->done)
			break;
		if (!d->eligible) {
			j->rc = qs_sim_route(s, 0, j->msg, sizeof(j->msg));
			continue;
		}
		qs_ppo_act(j->ag, &act, &d->features[0][0], d->n_backends, d->eligible, NULL, 1,
			   &fa, NULL, NULL);
		if (j->p) {
			qs_policy_choose(j->p, QS_KERNEL_AUTO, &d->features[0][0], 1, d->n_backends,
					 &d->eligible, NULL, &qa);
			j->decisions++;
			j->agree += qa == fa;
			if (qa == QS_NO_CHOICE)
				qa = (uint16_t)fa;
		}
		j->rc = qs_sim_route(s, j->p ? qa : fa, j->msg, sizeof(j->msg));
	}
done:
	if (j->rc == QS_OK)
		job_metrics(s, j->v);
	if (have_act)
		qs_ppo_actor_free(&act);
	free(d);
	qs_sim_destroy(s);
}

struct job_pool {
	struct eval_job *jobs;
	uint32_t n, next;
	pthread_mutex_t mu;
};

static void *
pool_main(void *arg)
{
	struct job_pool *pl = arg;

	for (;;) {
		uint32_t k;

		pthread_mutex_lock(&pl->mu);
		k = pl->next++;
		pthread_mutex_unlock(&pl->mu);
		if (k >= pl->n)
			return NULL;
		run_job(&pl->jobs[k]);
	}
}


/* The int8 policy (and the float one, when given) beside every baseline on held-out
 * seeds; prints the table (and JSON) and writes DIR/compare.png with --plot. */
static int
eval_table(const struct opts *o, const char *q8, const struct qs_ppo_agent *ag, FILE *out)
{
	struct qs_sim_config cfg;
	struct qs_policy_load_opts lo = {QS_SCHEMA_ROUTER_V1, QS_Q8_KIND_SCORER, NULL};
	struct qs_policy *p = NULL;
	char msg[512], spec[1100];
	const char *names[QS_BASELINE__COUNT + 2];
	uint32_t nr = 0, K = o->seeds, nt = o->threads ? o->threads : 1;
	struct job_pool pl = {0};
	pthread_t tid[64];
	int prim, rc, ttft;
	uint64_t agree = 0, dec = 0;
	double best = 0, mean[QS_BASELINE__COUNT + 2][N_COLS], ci[QS_BASELINE__COUNT + 2][N_COLS];
	int best_i = -1, q_i, f_i = -1;
	double pdiff = 0, pdiff_ci = 0;

	rc = qs_sim_scenario_load_named(o->scenario, NULL, &cfg, msg, sizeof(msg));
	if (rc == QS_OK && q8)
		rc = qs_policy_load_file(q8, &lo, &p, msg, sizeof(msg));
	if (rc != QS_OK) {
		fprintf(stderr, "qsteer-train: %s\n", msg);
		return 1;
	}
	ttft = strcmp(cfg.primary_metric, "ttft_p99") == 0;
	prim = ttft ? 1 : 3;
	for (int k = 0; k < QS_BASELINE__COUNT; k++)
		names[nr++] = qs_baseline_name((enum qs_baseline_kind)k);
	snprintf(spec, sizeof(spec), "q8:%s", q8);
	q_i = (int)nr;
	names[nr++] = spec;
	if (ag) {
		f_i = (int)nr;
		names[nr++] = NULL;
	}
	pl.n = nr * K;
	pl.jobs = calloc(pl.n, sizeof(*pl.jobs));
	if (!pl.jobs) {
		qs_policy_free(p);
		return 1;
	}
	for (uint32_t i = 0; i < nr; i++)
		for (uint32_t k = 0; k < K; k++) {
			struct eval_job *j = &pl.jobs[i * K + k];

			j->cfg = &cfg;
			j->router = names[i];
			j->seed = o->seed + k;
			if ((int)i == q_i && ag) {
				j->ag = ag;
				j->p = p;
			} else if ((int)i == f_i) {
				j->ag = ag;
			}
		}
	pthread_mutex_init(&pl.mu, NULL);
	nt = nt > 64 ? 64 : nt;
	for (uint32_t t = 1; t < nt; t++)
		if (pthread_create(&tid[t], NULL, pool_main, &pl) != 0)
			nt = t;
	pool_main(&pl);
	for (uint32_t t = 1; t < nt; t++)
		pthread_join(tid[t], NULL);
	pthread_mutex_destroy(&pl.mu);
	for (uint32_t i = 0; i < pl.n; i++)
		if (pl.jobs[i].rc != QS_OK) {
			fprintf(stderr, "qsteer-train: eval %s seed %" PRIu64 ": %s\n",
				pl.jobs[i].router ? pl.jobs[i].router : "float", pl.jobs[i].seed,
				pl.jobs[i].msg);
			free(pl.jobs);
			qs_policy_free(p);
			return 1;
		}
	for (uint32_t i = 0; i < nr; i++) {
		for (int c = 0; c < N_COLS; c++) {
			double s = 0, ss = 0;

			for (uint32_t k = 0; k < K; k++)
				s += pl.jobs[i * K + k].v[c];
			mean[i][c] = s / K;
			for (uint32_t k = 0; k < K; k++)
				ss += (pl.jobs[i * K + k].v[c] - mean[i][c]) *
				      (pl.jobs[i * K + k].v[c] - mean[i][c]);
			ci[i][c] = K > 1 ? qs_train_t95(K) * sqrt(ss / (K - 1) / K) : 0;
		}
		if ((int)i == q_i && ag)
			for (uint32_t k = 0; k < K; k++) {
				agree += pl.jobs[i * K + k].agree;
				dec += pl.jobs[i * K + k].decisions;
			}
		if (i < QS_BASELINE__COUNT &&
		    (best_i < 0 || (ttft ? mean[i][prim] < best : mean[i][prim] > best))) {
			best = mean[i][prim];
			best_i = (int)i;
		}
	}
	fprintf(out, "scenario %s: primary metric %s; held-out seeds %" PRIu64 "..%" PRIu64
		     " (training never uses them); mean +- 95%% CI\n",
		cfg.name, cfg.primary_metric, o->seed, o->seed + K - 1);
	fprintf(out, "%-28s", "router");
	for (int c = 0; c < N_COLS; c++)
		fprintf(out, " %22s", col_name[c]);
	fprintf(out, "\n");
	for (uint32_t i = 0; i < nr; i++) {
		const char *nm = names[i] ? names[i] : "float (same net)";

		fprintf(out, "%-26.26s%s", nm, (int)i == best_i ? " *" : "  ");
		for (int c = 0; c < N_COLS; c++)
			fprintf(out, " %12.4f +- %7.4f", mean[i][c], ci[i][c]);
		fprintf(out, "\n");
	}
	{
		double qm = mean[q_i][prim];
		double rel = ttft ? (best - qm) / best : (qm - best) / best;

		fprintf(out,
			"int8 vs best baseline (%s): %s %.4f vs %.4f: %s by %.2f%%\n",
			names[best_i], cfg.primary_metric, qm, best, rel >= 0 ? "better" : "worse",
			100.0 * fabs(rel));
		if (ag) {
			/* Paired over seeds: both runs of a seed see the same arrivals, so the
			 * per-seed difference has far less spread than either mean. */
			double fm = mean[f_i][prim], dm = 0, dss = 0, dci;

			for (uint32_t k = 0; k < K; k++)
				dm += pl.jobs[q_i * K + k].v[prim] - pl.jobs[f_i * K + k].v[prim];
			dm /= K;
			for (uint32_t k = 0; k < K; k++) {
				double d = pl.jobs[q_i * K + k].v[prim] - pl.jobs[f_i * K + k].v[prim] - dm;

				dss += d * d;
			}
			dci = K > 1 ? qs_train_t95(K) * sqrt(dss / (K - 1) / K) : 0;
			pdiff = fm != 0 ? 100.0 * dm / fm : 0.0;
			pdiff_ci = fm != 0 ? 100.0 * dci / fabs(fm) : 0.0;
			fprintf(out,
				"float-vs-int8: action agreement %.4f on %" PRIu64
				" decisions (int8 runs); %s float %.4f int8 %.4f (difference %.2f%%, "
				"paired 95%% CI +- %.2f%%)\n",
				dec ? (double)agree / (double)dec : 0.0, dec, cfg.primary_metric, fm, qm,
				pdiff, pdiff_ci);
			/* A tail metric over a replayed trace is chaotic: one flipped decision
			 * reroutes every later request of that backend, so single seeds differ
			 * by several percent either way. Say when K seeds cannot tell the
			 * difference from the 1% target instead of letting a point estimate
			 * pass for a measurement. */
			if (K > 1 && pdiff_ci > DIFF_HALF_WIDTH_PCT) {
				double sd = pdiff_ci / qs_train_t95(K) * sqrt((double)K);
				double need = ceil(sd * sd * 1.96 * 1.96 /
						   (DIFF_HALF_WIDTH_PCT * DIFF_HALF_WIDTH_PCT));

				fprintf(out,
					"float-vs-int8: the difference is not resolved at %u seeds "
					"(per-seed spread %.2f%%); about %.0f seeds give a +- %.1f%% "
					"interval (--seeds)\n",
					K, sd, need, DIFF_HALF_WIDTH_PCT);
			}
		}
	}
	if (o->json) {
		printf("{\"scenario\": \"%s\", \"primary_metric\": \"%s\", \"seeds\": %u, "
		       "\"seed0\": %" PRIu64 ", \"routers\": [",
		       cfg.name, cfg.primary_metric, K, o->seed);
		for (uint32_t i = 0; i < nr; i++) {
			printf("%s{\"router\": \"%s\"", i ? ", " : "", names[i] ? names[i] : "float");
			for (int c = 0; c < N_COLS; c++)
				printf(", \"%s\": %.6f", col_name[c], mean[i][c]);
			printf("}");
		}
		printf("]");
		if (ag)
			printf(", \"agreement\": %.6f, \"metric_diff_pct\": %.4f, "
			       "\"metric_diff_ci_pct\": %.4f",
			       dec ? (double)agree / (double)dec : 0.0, pdiff, pdiff_ci);
		printf("}\n");
	}
	if (o->plot) {
		char qdir[4096], qname[2 * QS_SIM_NAME_LEN];
		FILE *g = NULL;

		if (mkdir_parents(o->plot) != 0)
			fprintf(stderr, "qsteer-train: %s: %s\n", o->plot, strerror(errno));
		else
			g = popen("gnuplot", "w");
		if (g) {
			fprintf(g,
				"set terminal pngcairo size 900,500 noenhanced\nset output '%s/compare-%s.png'\n"
				"set style data histograms\nset style fill solid 0.7\nset boxwidth 0.8\n"
				/* bars start at zero: a cut axis would exaggerate the differences */
				"set yrange [0:*]\n"
				"set xtics rotate by -30\nset grid ytics\nset key off\n"
				"set title '%s: %s on held-out seeds (mean)'\nset ylabel '%s'\n"
				"plot '-' using 2:xtic(1) lc rgb '#4477aa'\n",
				qs_sim_gp_quote(o->plot, qdir, sizeof(qdir)),
				qs_sim_gp_quote(cfg.name, qname, sizeof(qname)), qname,
				cfg.primary_metric, cfg.primary_metric);
			for (uint32_t i = 0; i < nr; i++)
				fprintf(g, "\"%s\" %.6f\n", names[i] ? (i == (uint32_t)q_i ? "int8" : names[i]) : "float",
					mean[i][prim]);
			fprintf(g, "e\n");
			pclose(g);
		}
	}
	free(pl.jobs);
	qs_policy_free(p);
	return 0;
}
#endif

static int
load_float(const char *path, struct qs_ppo_agent *ag)
{
	struct qs_ppo_cfg c;
	struct qs_ckpt_meta meta;
	char msg[512];

	qs_ppo_defaults(&c);
	if (qs_ckpt_peek(path, &c, msg, sizeof(msg)) != QS_OK ||
	    qs_ppo_agent_init(ag, &c, 1, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-train: %s\n", msg);
		return 1;
	}
	if (qs_ckpt_load(path, ag, &meta, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-train: %s\n", msg);
		qs_ppo_agent_free(ag);
		return 1;
	}
	return 0;
}

static int
cmd_eval(const struct opts *o)
{
	const struct qs_train_env_ops *ops = env_or_die(o->scenario);
	struct qs_policy_load_opts lo = {QS_SCHEMA_ROUTER_V1, QS_Q8_KIND_SCORER, NULL};
	struct qs_policy *p;
	const char *name = "metric";
	double m;
	char msg[512];

	if (!ops)
		return 1;
#ifdef QSTEER_HAVE_SIM
	if (ops == &qs_env_sim) {
		struct qs_ppo_agent ag;
		int rc;

		if (o->fckpt && load_float(o->fckpt, &ag))
			return 1;
		rc = eval_table(o, o->file, o->fckpt ? &ag : NULL, stdout);
		if (o->fckpt)
			qs_ppo_agent_free(&ag);
		return rc;
	}
#endif
	if (qs_policy_load_file(o->file, &lo, &p, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-train: %s\n", msg);
		return 1;
	}
	if (evaluate(ops, o->scenario, p, NULL, o->seeds, o->seed, &m, &name) != QS_OK) {
		qs_policy_free(p);
		return 1;
	}
	printf("%s on %s, %u held-out episodes (seed %" PRIu64 "): %s %.4f\n", o->file,
	       o->scenario, o->seeds, o->seed, name, m);
	qs_policy_free(p);
	return 0;
}

/* Train briefly on the bundled trace (from the shipped policy when present),
 * quantize, evaluate against every baseline, print the table, write plots. */

static int
cmd_demo(struct opts *o)
{
#ifdef QSTEER_HAVE_SIM
	static char out[4096], logp[4096], ckpt[4096], init[4096], fck[4096];
	struct qs_ppo_agent ag;
	double t0 = qs_train_now_s();
	int rc;

	if (mkdir_parents(o->out_dir) != 0) {
		fprintf(stderr, "qsteer-train: %s: %s\n", o->out_dir, strerror(errno));
		return 1;
	}
	if (!o->scenario)
		o->scenario = "azure-code-70";
	snprintf(out, sizeof(out), "%s/policy.q8", o->out_dir);
	snprintf(logp, sizeof(logp), "%s/train.csv", o->out_dir);
	snprintf(fck, sizeof(fck), "%s/policy.ckpt", o->out_dir);
	if (!o->init) {
		snprintf(init, sizeof(init), "%s/policies/default-router.ckpt", qs_sim_repo_root());
		if (access(init, R_OK) == 0)
			o->init = init;
	}
	printf("demo: training on %s from %s for %" PRIu64 " decisions\n", o->scenario,
	       o->init ? o->init : "scratch (behaviour cloning first)", o->steps);
	if (!o->init && !o->bc_steps)
		o->bc_steps = 65536;
	if (!o->split[0] && !o->split_width[0]) {
		/* The shipped policy's export (policies/README.md): channels split to 64
		 * units per hidden layer by measured cost. */
		o->split_width[0] = 64;
		o->split_width[1] = 64;
	}
	o->out = out;
	o->log = logp;
	o->ckpt = fck;
	o->plot = o->out_dir;
	fflush(stdout);
	if (cmd_train(o, 0) != 0)
		return 1;
	(void)ckpt;
	printf("demo: trained and exported in %.1f s; evaluating against every baseline\n",
	       qs_train_now_s() - t0);
	if (load_float(fck, &ag))
		return 1;
	rc = eval_table(o, out, &ag, stdout);
	qs_ppo_agent_free(&ag);
	printf("demo: done in %.1f s; %s/{policy.q8,train.csv,learning-curve.png,compare-*.png}\n",
	       qs_train_now_s() - t0, o->out_dir);
	return rc;
#else
	(void)o;
	fprintf(stderr, "qsteer-train: demo needs the simulator (sim/)\n");
	return 1;
#endif
}

int
main(int argc, char **argv)
{
	struct opts o = {0};
	uint64_t v;

	if (argc < 2)
		return usage();
#ifdef QSTEER_HAVE_AGENT
	if (!strcmp(argv[1], "batch"))
		return qs_train_batch_main(argc - 1, argv + 1);
#endif
	o.cmd = argv[1];
	o.steps = 200000;
	o.seed = 1;
	o.threads = 2;
	o.seeds = 5;
	o.randomize = 1;
	o.created = UINT64_MAX;
	o.bc_lr = 3e-3;
	o.qat_rounds = 2;
	o.calib_pct = 0.99;
	o.qat_target = 0.99;
	o.qat_temp = 0.1;
	o.calib_per_env = CALIB_PER_ENV;
	o.ent = -1;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1;

		if (!strcmp(a, "--json")) {
			o.json = 1;
			takes = 0;
		} else if (!strcmp(a, "--no-randomize")) {
			o.randomize = 0;
			takes = 0;
		} else if (!strcmp(a, "--quiet")) {
			o.quiet = 1;
			takes = 0;
		} else if (!strcmp(a, "--recalib")) {
			o.recalib = 1;
			takes = 0;
		} else if (a[0] != '-') {
			o.file = a;
			takes = 0;
		} else if (!val) {
			fprintf(stderr, "qsteer-train: %s needs a value\n", a);
			return 2;
		} else if (!strcmp(a, "--scenario")) {
			uint32_t n = 1;

			for (const char *t = val; *t; t++)
				n += *t == ',';
			if (n > GUARD_MAX) {
				fprintf(stderr, "qsteer-train: --scenario: %u scenarios, at most %d\n",
					n, GUARD_MAX);
				return 2;
			}
			o.scenario = val;
		} else if (!strcmp(a, "--out")) {
			o.out = val;
		} else if (!strcmp(a, "--out-dir")) {
			o.out_dir = val;
		} else if (!strcmp(a, "--log")) {
			o.log = val;
		} else if (!strcmp(a, "--checkpoint")) {
			o.ckpt = val;
		} else if (!strcmp(a, "--resume")) {
			o.resume = val;
		} else if (!strcmp(a, "--init")) {
			o.init = val;
		} else if (!strcmp(a, "--float")) {
			o.fckpt = val;
		} else if (!strcmp(a, "--teacher")) {
			o.teacher = val;
		} else if (!strcmp(a, "--lr") || !strcmp(a, "--bc-lr") || !strcmp(a, "--ent") ||
			   !strcmp(a, "--calib-pct") || !strcmp(a, "--share") ||
			   !strcmp(a, "--consist") || !strcmp(a, "--anchor") ||
			   !strcmp(a, "--ppo-consist") || !strcmp(a, "--center") ||
			   !strcmp(a, "--ppo-temp") || !strcmp(a, "--min-fidelity") ||
			   !strcmp(a, "--guard") || !strcmp(a, "--focus-gap") ||
			   !strcmp(a, "--focus-frac") || !strcmp(a, "--qat-temp") ||
			   !strcmp(a, "--qat-target")) {
			char *end;
			double x = strtod(val, &end);

			if (*end || !(x >= 0 && x <= (!strcmp(a, "--ppo-consist") || !strcmp(a, "--focus-gap") ? 10 : 1)) ||
			    (!strcmp(a, "--calib-pct") && x < 0.5)) {
				fprintf(stderr, "qsteer-train: %s %s: not a valid value\n", a, val);
				return 2;
			}
			if (!strcmp(a, "--lr"))
				o.lr = x;
			else if (!strcmp(a, "--bc-lr"))
				o.bc_lr = x;
			else if (!strcmp(a, "--calib-pct"))
				o.calib_pct = x;
			else if (!strcmp(a, "--share"))
				o.share = x;
			else if (!strcmp(a, "--consist"))
				o.consist = x;
			else if (!strcmp(a, "--anchor"))
				o.anchor = x;
			else if (!strcmp(a, "--ppo-consist"))
				o.ppo_consist = x;
			else if (!strcmp(a, "--center"))
				o.center = x;
			else if (!strcmp(a, "--ppo-temp"))
				o.ppo_temp = x;
			else if (!strcmp(a, "--min-fidelity"))
				o.min_fid = x;
			else if (!strcmp(a, "--guard"))
				o.guard = x;
			else if (!strcmp(a, "--focus-gap"))
				o.focus_gap = x;
			else if (!strcmp(a, "--focus-frac"))
				o.focus_frac = x;
			else if (!strcmp(a, "--qat-temp"))
				o.qat_temp = x > 0 ? x : 0.1;
			else if (!strcmp(a, "--qat-target"))
				o.qat_target = x;
			else
				o.ent = x;
		} else if (!strcmp(a, "--qat-rounds")) {
			if (qs_train_parse_u64(val, &v) != 0 || v > 64) {
				fprintf(stderr, "qsteer-train: --qat-rounds %s: 0..64\n", val);
				return 2;
			}
			o.qat_rounds = (uint32_t)v;
		} else if (!strcmp(a, "--calib-per-env")) {
			if (qs_train_parse_u64(val, &v) != 0 || v < 64 || v > 65536) {
				fprintf(stderr, "qsteer-train: --calib-per-env %s: 64..65536\n", val);
				return 2;
			}
			o.calib_per_env = (uint32_t)v;
		} else if (!strcmp(a, "--split") || !strcmp(a, "--split-width")) {
			int w = !strcmp(a, "--split-width");
			uint32_t *dst = w ? o.split_width : o.split, n = 0;
			const char *t = val;
			char *end = NULL;

			memset(o.split, 0, sizeof(o.split));
			memset(o.split_width, 0, sizeof(o.split_width));
			while (n < QS_MLP_MAX_LAYERS - 1) {
				unsigned long k = strtoul(t, &end, 10);

				if (end == t || k < 1 || k > (w ? QS_MLP_MAX_DIM : 8) ||
				    (*end && *end != ','))
					break;
				dst[n++] = (uint32_t)k;
				if (!*end)
					break;
				t = end + 1;
			}
			if (!n || *end || val[strlen(val) - 1] == ',') {
				fprintf(stderr,
					"qsteer-train: %s %s: one value per hidden layer, comma-separated "
					"(%s)\n",
					a, val,
					w ? "units 1..256 of the widened layer, e.g. 64,64"
					  : "copies 1..8 of every channel, e.g. 2,2");
				return 2;
			}
		} else if (!strcmp(a, "--qat-steps")) {
			if (qs_train_parse_u64(val, &v) != 0 || v < 1 || v > 1000000) {
				fprintf(stderr, "qsteer-train: --qat-steps %s: 1..1000000\n", val);
				return 2;
			}
			o.qat_steps = (uint32_t)v;
		} else if (!strcmp(a, "--epochs")) {
			if (qs_train_parse_u64(val, &v) != 0 || v < 1 || v > 64) {
				fprintf(stderr, "qsteer-train: --epochs %s: 1..64\n", val);
				return 2;
			}
			o.epochs = (uint32_t)v;
		} else if (!strcmp(a, "--plot")) {
			o.plot = val;
		} else if (!strcmp(a, "--algo")) {
			if (!strcmp(val, "ppo"))
				o.algo = QS_ALGO_PPO;
			else if (!strcmp(val, "reinforce"))
				o.algo = QS_ALGO_REINFORCE;
			else {
				fprintf(stderr, "qsteer-train: --algo %s: ppo or reinforce\n", val);
				return 2;
			}
		} else if (!strcmp(a, "--steps") || !strcmp(a, "--seed") ||
			   !strcmp(a, "--threads") || !strcmp(a, "--episodes") ||
			   !strcmp(a, "--seeds") || !strcmp(a, "--bc-steps") ||
			   !strcmp(a, "--created")) {
			int zero_ok = !strcmp(a, "--seed") || !strcmp(a, "--bc-steps") ||
				      !strcmp(a, "--created") || !strcmp(a, "--steps");

			if (qs_train_parse_u64(val, &v) != 0 || (!zero_ok && (v < 1 || v > (1ull << 40))) ||
			    (!strcmp(a, "--threads") && v > 256) ||
			    ((!strcmp(a, "--seeds") || !strcmp(a, "--episodes")) && v > 1000)) {
				fprintf(stderr, "qsteer-train: %s %s: not a valid count\n", a, val);
				return 2;
			}
			if (!strcmp(a, "--steps"))
				o.steps = v;
			else if (!strcmp(a, "--seed"))
				o.seed = v;
			else if (!strcmp(a, "--threads"))
				o.threads = (uint32_t)v;
			else if (!strcmp(a, "--bc-steps"))
				o.bc_steps = v;
			else if (!strcmp(a, "--created"))
				o.created = v;
			else
				o.seeds = (uint32_t)v;
		} else {
			fprintf(stderr, "qsteer-train: unknown option %s\n", a);
			return usage();
		}
		i += takes;
	}
	if (!strcmp(o.cmd, "train")) {
		if (!o.scenario || !o.out) {
			fprintf(stderr, "qsteer-train train: --scenario and --out are required\n");
			return 2;
		}
		return cmd_train(&o, 0);
	}
	if (!strcmp(o.cmd, "eval")) {
		if (!o.file || !o.scenario) {
			fprintf(stderr, "qsteer-train eval: FILE.q8 and --scenario are required\n");
			return 2;
		}
		return cmd_eval(&o);
	}
	if (!strcmp(o.cmd, "bench")) {
		o.steps = (uint64_t)N_ENV * STEPS_PER_ENV * 24;
		return cmd_train(&o, 1);
	}
	if (!strcmp(o.cmd, "demo")) {
		if (!o.out_dir) {
			fprintf(stderr, "qsteer-train demo: --out-dir DIR is required\n");
			return 2;
		}
		if (o.steps == 200000)
			o.steps = 98304;
		return cmd_demo(&o);
	}
	return usage();
}
