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

#include "ckpt.h"
#include "env.h"
#include "qsteer/features.h"
#include "quantize.h"

#define N_ENV 8
#define STEPS_PER_ENV 256

struct opts {
	const char *cmd, *scenario, *out, *log, *ckpt, *resume, *plot, *file;
	enum qs_algo algo;
	uint64_t steps, seed;
	uint32_t threads, episodes;
	int json;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int
usage(void)
{
	fprintf(stderr,
		"usage: qsteer-train train --scenario S [--algo ppo|reinforce] [--steps N] --out FILE.q8\n"
		"                          [--threads N] [--seed S] [--log CSV] [--checkpoint FILE]\n"
		"                          [--resume FILE] [--plot DIR]\n"
		"       qsteer-train eval FILE.q8 --scenario S [--episodes N] [--seed S]\n"
		"       qsteer-train bench [--json] [--threads N]\n"
		"S is \"bandit\" (built-in self-test environment) or a scenario .ini (needs sim/).\n");
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

/* Run episodes of an env with the int8 policy (p) or the float scorer (m); return
 * the mean of the env's primary metric. */
static int
evaluate(const struct qs_train_env_ops *ops, const char *scenario, const struct qs_policy *p,
	 const struct qs_ppo_agent *ag, uint32_t episodes, uint64_t seed, double *metric,
	 const char **name)
{
	uint8_t rows[QS_MAX_CANDIDATES * QS_FR_COUNT];
	struct qs_train_credit cr[64];
	struct qs_ppo_actor act;
	char msg[512];
	void *env = NULL;
	double sum = 0;
	int rc = ops->create(&env, scenario, seed, msg, sizeof(msg));

	if (rc == QS_OK && ag)
		rc = qs_ppo_actor_init(&act, ag, msg, sizeof(msg));
	for (uint32_t e = 0; rc == QS_OK && e < episodes; e++) {
		int done = 0;

		rc = ops->reset(env, seed + 7919 * (e + 1), msg, sizeof(msg));
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
		rc = qs_quant_calibrate(&q, &ag->pi, &st, 1.0f, 1u << 18, msg, sizeof(msg));
	for (int round = 0; rc == QS_OK && round < 4; round++) {
		struct qs_quant_qat_cfg qc;

		if (round == 0) {
			qs_quant_build(&q, &ag->pi);
		} else {
			qs_quant_qat_defaults(&qc);
			qc.seed = o->seed + (uint64_t)round;
			fprintf(stderr, "qsteer-train: agreement %.4f < 0.99, QAT round %d\n", agree,
				round);
			rc = qs_quant_qat(&ag->pi, &teacher, &q, &st, &qc, msg, sizeof(msg));
			if (rc != QS_OK)
				break;
		}
		qs_quant_desc(&q, "qsteer-router", 0, &d);
		rc = qs_q8_write_file(&d, o->out, msg, sizeof(msg));
		if (rc == QS_OK) {
			qs_policy_free(p);
			p = NULL;
			rc = qs_policy_load_file(o->out, &lo, &p, msg, sizeof(msg));
		}
		if (rc == QS_OK)
			rc = qs_quant_agreement(&teacher, p, &st, &agree, msg, sizeof(msg));
		if (rc != QS_OK || agree >= 0.99)
			break;
	}
	if (rc != QS_OK) {
		fprintf(stderr, "qsteer-train: export: %s\n", msg);
		goto out;
	}
	memcpy(ag->pi.p, teacher.p, ag->pi.n_params * sizeof(float)); /* float = the teacher */
	rc = evaluate(ops, o->scenario, NULL, ag, 2, o->seed ^ 0xe7a1, &mf, &mname);
	if (rc == QS_OK)
		rc = evaluate(ops, o->scenario, p, NULL, 2, o->seed ^ 0xe7a1, &mq, &mname);
	if (rc == QS_OK)
		printf("exported %s: float-vs-int8 agreement %.4f on %u decisions; %s float %.4f "
		       "int8 %.4f (difference %.2f%%)%s\n",
		       o->out, agree, st.n, mname, mf, mq,
		       mf != 0 ? 100.0 * (mq - mf) / mf : 0.0,
		       q.bias_clamped ? " [biases clamped]" : "");
out:
	qs_policy_free(p);
	qs_quant_plan_free(&q);
	qs_mlp_free(&teacher);
	return rc;
}

static void
plot(const char *dir, const char *csv)
{
	char cmd[8192];
	FILE *g;

	if (!csv) {
		fprintf(stderr, "qsteer-train: --plot needs --log CSV\n");
		return;
	}
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && gnuplot", dir);
	g = popen(cmd, "w");
	if (!g) {
		fprintf(stderr, "qsteer-train: cannot run gnuplot\n");
		return;
	}
	fprintf(g, "set terminal pngcairo size 900,500\nset output '%s/learning-curve.png'\n"
		   "set datafile separator ','\nset key top left\nset xlabel 'decisions'\n"
		   "set ylabel 'reward per decision'\n"
		   "plot '%s' using 2:4 skip 1 with lines title 'reward per decision'\n",
		dir, csv);
	if (pclose(g) != 0)
		fprintf(stderr, "qsteer-train: gnuplot failed (is it installed?)\n");
}

static int
cmd_train(const struct opts *o, int bench)
{
	const struct qs_train_env_ops *ops = bench ? &qs_env_bandit : env_or_die(o->scenario);
	struct qs_ppo_cfg c;
	struct qs_ppo_agent ag;
	struct qs_roll r, ev;
	struct qs_ppo_buf b, states;
	struct qs_ckpt_meta meta = {0};
	struct qs_roll_stats rs;
	struct qs_ppo_stats ps;
	const char *scen = bench ? "bandit" : o->scenario;
	uint64_t per = (uint64_t)N_ENV * STEPS_PER_ENV, updates, step = 0;
	FILE *log = NULL;
	char msg[512];
	double t0, recent = 0;
	int rc, tty = isatty(2);

	if (!ops)
		return 1;
	qs_ppo_defaults(&c);
	c.algo = o->algo;
	if (ops == &qs_env_bandit)
		c.gamma = 0; /* a bandit: each decision earns only its own reward */
	if (o->resume && (rc = qs_ckpt_peek(o->resume, &c, msg, sizeof(msg))) != QS_OK) {
		fprintf(stderr, "qsteer-train: resume: %s\n", msg);
		return 1;
	}
	updates = (o->steps + per - 1) / per;
	c.adam_pi.total_steps = c.adam_vf.total_steps =
		updates * c.epochs * ((per + c.minibatch - 1) / c.minibatch);
	rc = qs_ppo_agent_init(&ag, &c, o->seed, msg, sizeof(msg));
	if (rc != QS_OK) {
		fprintf(stderr, "qsteer-train: %s\n", msg);
		return 1;
	}
	if (o->resume) {
		rc = qs_ckpt_load(o->resume, &ag, &meta, msg, sizeof(msg));
		if (rc != QS_OK) {
			fprintf(stderr, "qsteer-train: resume: %s\n", msg);
			qs_ppo_agent_free(&ag);
			return 1;
		}
		step = meta.step;
	}
	/* Rollout seeds advance with the step so a resumed run continues the stream. */
	rc = qs_roll_init(&r, ops, scen, N_ENV, o->threads, STEPS_PER_ENV, &ag, o->seed + step,
			  msg, sizeof(msg));
	if (rc == QS_OK)
		rc = qs_roll_init(&ev, ops, scen, N_ENV, o->threads, STEPS_PER_ENV, &ag,
				  o->seed ^ 0x5eedf00dull, msg, sizeof(msg));
	if (rc == QS_OK)
		rc = qs_ppo_buf_init(&b, N_ENV, (uint32_t)per, (uint32_t)per * QS_MAX_CANDIDATES,
				     c.n_feat, msg, sizeof(msg));
	if (rc == QS_OK)
		rc = qs_ppo_buf_init(&states, N_ENV, (uint32_t)per,
				     (uint32_t)per * QS_MAX_CANDIDATES, c.n_feat, msg, sizeof(msg));
	if (rc != QS_OK) {
		fprintf(stderr, "qsteer-train: %s\n", msg);
		return 1;
	}
	if (o->log) {
		log = fopen(o->log, o->resume ? "a" : "w");
		if (!log) {
			fprintf(stderr, "qsteer-train: %s: %s\n", o->log, strerror(errno));
			return 1;
		}
		if (!o->resume)
			fprintf(log, "update,step,decisions_per_s,reward_per_decision,episode_return,"
				     "pi_loss,v_loss,entropy,approx_kl,clip_frac\n");
	}
	t0 = now_s();
	uint64_t start = step;
	while (step < o->steps) {
		double el, rate;

		rc = qs_roll_collect(&r, &ag, &b, 0, &rs, msg, sizeof(msg));
		if (rc == QS_OK)
			rc = qs_ppo_update(&ag, &b, &ps, msg, sizeof(msg));
		if (rc != QS_OK) {
			fprintf(stderr, "\nqsteer-train: %s\n", msg);
			break;
		}
		step += b.n;
		el = now_s() - t0;
		rate = (double)(step - start) / (el > 0 ? el : 1e-9);
		recent = recent == 0 ? rs.reward_per_decision
				     : 0.9 * recent + 0.1 * rs.reward_per_decision;
		if (log)
			fprintf(log, "%" PRIu64 ",%" PRIu64 ",%.0f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.4f\n",
				ag.updates, step, rate, rs.reward_per_decision, rs.episode_return,
				(double)ps.pi_loss, (double)ps.v_loss, (double)ps.entropy,
				(double)ps.approx_kl, (double)ps.clip_frac);
		if (tty && !bench)
			fprintf(stderr,
				"\r%" PRIu64 "/%" PRIu64 " decisions  %.0f dec/s  reward/decision %.4f"
				"  entropy %.3f  ETA %.0f s   ",
				step, o->steps, rate, recent, (double)ps.entropy,
				(double)(o->steps - (step < o->steps ? step : o->steps)) / rate);
		if (o->ckpt && ag.updates % 10 == 0) {
			meta.seed = o->seed;
			meta.step = step;
			if (qs_ckpt_save(o->ckpt, &ag, &meta, msg, sizeof(msg)) != QS_OK)
				fprintf(stderr, "\nqsteer-train: checkpoint: %s\n", msg);
		}
	}
	if (tty && !bench)
		fprintf(stderr, "\n");
	if (bench && rc == QS_OK) {
		double el = now_s() - t0, dps = (double)(step - start) / el;

		if (o->json)
			printf("{\"decisions_per_s\": %.0f, \"threads\": %u, \"env\": \"bandit\"}\n",
			       dps, o->threads);
		else
			printf("%.0f decisions/s (training including learning, bandit env, %u "
			       "threads)\n",
			       dps, o->threads);
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
	if (rc == QS_OK && o->plot)
		plot(o->plot, o->log);
	qs_ppo_buf_free(&b);
	qs_ppo_buf_free(&states);
	qs_roll_free(&r);
	qs_roll_free(&ev);
	qs_ppo_agent_free(&ag);
	return rc == QS_OK ? 0 : 1;
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
	if (qs_policy_load_file(o->file, &lo, &p, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-train: %s\n", msg);
		return 1;
	}
	if (evaluate(ops, o->scenario, p, NULL, o->episodes, o->seed, &m, &name) != QS_OK) {
		qs_policy_free(p);
		return 1;
	}
	printf("%s on %s, %u held-out episodes (seed %" PRIu64 "): %s %.4f\n", o->file,
	       o->scenario, o->episodes, o->seed, name, m);
	qs_policy_free(p);
	return 0;
}

static int
parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || end == s || *end || s[0] == '-' ? -1 : 0;
}

int
main(int argc, char **argv)
{
	struct opts o = {0};
	uint64_t v;

	if (argc < 2)
		return usage();
	o.cmd = argv[1];
	o.steps = 200000;
	o.seed = 1;
	o.threads = 2;
	o.episodes = 5;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1;

		if (!strcmp(a, "--json")) {
			o.json = 1;
			takes = 0;
		} else if (a[0] != '-') {
			o.file = a;
			takes = 0;
		} else if (!val) {
			fprintf(stderr, "qsteer-train: %s needs a value\n", a);
			return 2;
		} else if (!strcmp(a, "--scenario")) {
			o.scenario = val;
		} else if (!strcmp(a, "--out")) {
			o.out = val;
		} else if (!strcmp(a, "--log")) {
			o.log = val;
		} else if (!strcmp(a, "--checkpoint")) {
			o.ckpt = val;
		} else if (!strcmp(a, "--resume")) {
			o.resume = val;
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
			   !strcmp(a, "--threads") || !strcmp(a, "--episodes")) {
			if (parse_u64(val, &v) != 0 ||
			    (strcmp(a, "--seed") && (v < 1 || v > (1ull << 40))) ||
			    (!strcmp(a, "--threads") && v > 256)) {
				fprintf(stderr, "qsteer-train: %s %s: not a valid count\n", a, val);
				return 2;
			}
			if (!strcmp(a, "--steps"))
				o.steps = v;
			else if (!strcmp(a, "--seed"))
				o.seed = v;
			else if (!strcmp(a, "--threads"))
				o.threads = (uint32_t)v;
			else
				o.episodes = (uint32_t)v;
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
	return usage();
}
