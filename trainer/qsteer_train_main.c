/*
 * qsteer_train_main.c - qsteer-train: train a router policy (PPO or REINFORCE)
 * against an environment, quantize it (PTQ, QAT when agreement is short), export
 * the .q8, evaluate it, and benchmark training throughput. The learning, the export
 * and its round selection (train_export.c) and the evaluation (train_eval.c, on the
 * simulator's compare) are in the library; this file reads the option table, runs
 * the training loop's logging and checkpoints, and prints (train_report.c).
 */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef QSTEER_HAVE_AGENT
#include "batch_cmd.h"
#endif
#include "ckpt.h"
#include "dist.h"
#include "dqn.h"
#include "env.h"
#include "qsteer/features.h"
#include "qsteer/opt.h"
#include "train_export.h"
#include "train_report.h"
#ifdef QSTEER_HAVE_SIM
#include "train_select.h"
#endif
#include "util.h"

#define N_ENV	      8
#define STEPS_PER_ENV 256
#define CALIB_PER_ENV 1024 /* calibration / QAT / agreement states per env */

struct opts {
	const char *cmd, *scenario, *out, *log, *ckpt, *resume, *plot, *file;
	const char *teacher, *teacher_ties, *init, *fckpt, *out_dir;
	enum qs_algo algo;
	uint64_t steps, seed, bc_steps, created;
	double lr, bc_lr, ent, share, ppo_consist, ppo_temp, center, gamma, eps_end, reward_tpot;
	uint32_t calib_per_env, epochs, dqn_target, dqn_steps, select_seeds;
	uint64_t select_every; /* decisions between validation scores (0: no selection) */
	/* The export's options (--calib-pct, --consist, --qat-*, --split...); the
	 * scenario, output, seed, time and log are filled in when it runs. */
	struct qs_train_export_cfg ex;
	uint32_t threads, seeds;
	int json, randomize, quiet, mpi;
};

static int
usage(void)
{
	fprintf(
	    stderr,
	    "usage: qsteer-train train --scenario S[,S...] [--algo ppo|reinforce|a2c|dqn]\n"
	    "                          [--steps N] --out FILE.q8\n"
	    "                          [--gamma G] [--dqn-target N] [--dqn-steps N] [--eps-end E]\n"
	    "                          [--mpi] (under mpirun: rollouts over the ranks)\n"
	    "                          [--bc-steps N] [--teacher auto|sed|kv|...] [--init CKPT]\n"
	    "                          [--teacher-ties index|load]\n"
	    "                          [--select-every N] [--select-seeds K] [--reward-tpot W]\n"
	    "                          [--lr X] [--bc-lr X] [--ent X] [--epochs N] [--quiet]\n"
	    "                          [--calib-pct P] [--calib-per-env N]\n"
	    "                          [--threads N] [--seed S] [--log CSV] [--checkpoint FILE]\n"
	    "                          [--resume FILE] [--plot DIR] [--no-randomize] [--created "
	    "T]\n"
	    "                          [--ppo-consist X] [--ppo-temp T] [--consist X] [--anchor "
	    "X]\n"
	    "                          [--qat-temp T] [--qat-rounds N] [--qat-steps N] "
	    "[--recalib]\n"
	    "                          [--min-fidelity F] [--guard G] [--share X] [--center X]\n"
	    "                          [--focus-gap G] [--focus-frac F] [--qat-target A]\n"
	    "                          [--split K1,K2 | --split-width W1,W2]\n"
	    "       qsteer-train eval FILE.q8 --scenario S [--seeds K | --episodes K] [--seed S]\n"
	    "                          [--float CKPT] [--json]\n"
	    "                          [--plot DIR]\n"
	    "       qsteer-train bench [--json] [--threads N] [--scenario S]\n"
	    "       qsteer-train demo --out-dir DIR [--scenario S] [--steps N] [--seeds K] [--init "
	    "CKPT]\n"
	    "                          [--split-width W1,W2] (default 64,64)\n"
	    "       qsteer-train batch train|eval ...  (the agent's batching classifier; 'batch' "
	    "alone: help)\n"
	    "S is \"bandit\" (built-in self-test environment) or a scenario name or .ini (needs "
	    "sim/).\n");
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

/* The export (train_export.c) with this run's options; prints what it scored. */
static int
export_policy(const struct opts *o, const struct qs_train_env_ops *ops, struct qs_ppo_agent *ag,
	      struct qs_roll *ev, struct qs_ppo_buf *states)
{
	struct qs_train_export_cfg c = o->ex;
	struct qs_train_export_result r;
	int rc;

	c.scenario = o->scenario;
	c.out = o->out;
	c.seed = o->seed;
	c.created = created_time(o);
	c.log = stderr;
	c.quiet = o->quiet;
	rc = qs_train_export(&c, ops, ag, ev, states, &r);
	if (rc == QS_OK)
		printf("exported %s: float-vs-int8 agreement %.4f on %u decisions; %s on %s "
		       "(held-out seeds %d..%d) float %.4f int8 %.4f (difference %.2f%%; two "
		       "seeds: eval --float gives its interval)%s\n",
		       o->out, r.agree, r.decisions, r.metric, r.first, QS_TRAIN_HELDOUT_SEED0,
		       QS_TRAIN_HELDOUT_SEED0 + 1, r.float_metric, r.int8_metric,
		       r.float_metric != 0
			   ? 100.0 * (r.int8_metric - r.float_metric) / r.float_metric
			   : 0.0,
		       r.bias_clamped ? " [biases clamped]" : "");
	return rc;
}

#ifdef QSTEER_HAVE_SIM
/* Score ag on the validation seeds (train_select.h) and say what was kept. */
static int
select_offer(const struct opts *o, struct qs_train_select *sel, const struct qs_ppo_agent *ag,
	     uint64_t step)
{
	char msg[512];
	int kept, rc = qs_train_select_offer(sel, ag, step, &kept, msg, sizeof(msg));

	if (rc != QS_OK) {
		fprintf(stderr, "\nqsteer-train: --select-every: %s\n", msg);
		return rc;
	}
	if (!o->quiet) {
		double mean = 0;

		fprintf(stderr, "\nqsteer-train: validation at %" PRIu64 " decisions:", step);
		for (uint32_t i = 0; i < sel->n_scen; i++) {
			fprintf(stderr, " %s %+.2f%%", sel->name[i], sel->gain[i]);
			if (sel->cost[i] > 0)
				fprintf(stderr, " (-%.2f)", sel->cost[i]);
			mean += sel->gain[i] / sel->n_scen;
		}
		fprintf(stderr, "; mean %+.2f%%, score %+.2f%s\n", mean, sel->score,
			kept ? " (kept)" : "");
	}
	return QS_OK;
}
#endif

static int
cmd_train(const struct opts *o, int bench)
{
	const struct qs_train_env_ops *ops =
	    bench && !o->scenario ? &qs_env_bandit : env_or_die(o->scenario);
	struct qs_ppo_cfg c;
	struct qs_ppo_agent ag;
	struct qs_dqn_cfg dc;
	struct qs_dqn dq = {0};
	struct qs_dqn_stats dst;
	struct qs_roll r, ev;
	struct qs_ppo_buf b, states;
	struct qs_ckpt_meta meta = {0};
	struct qs_roll_stats rs;
	struct qs_ppo_stats ps;
	const char *scen = bench && !o->scenario ? "bandit" : o->scenario;
	uint64_t per = (uint64_t)N_ENV * STEPS_PER_ENV, updates, step = 0;
	uint32_t rank = 0, ranks = 1;
	struct opts quiet_rank;
	uint64_t total = o->steps + o->bc_steps;
	FILE *log = NULL;
	char msg[512];
	double t0, recent = 0;
	int rc, tty = isatty(2) && !o->quiet;
#ifdef QSTEER_HAVE_SIM
	struct qs_train_select sel = {0};
	int selecting = o->select_every > 0 && !bench;
	uint64_t next_sel = 0;
#else
	if (o->select_every) {
		fprintf(stderr, "qsteer-train: --select-every needs the simulator (sim/)\n");
		return 2;
	}
#endif

	if (!ops)
		return 1;
	if (o->mpi && qs_dist_init(&rank, &ranks, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-train: --mpi: %s\n", msg);
		return 2;
	}
	if (rank) {
		/* Every rank trains the same parameters; rank 0 alone writes and prints. */
		quiet_rank = *o;
		quiet_rank.out = quiet_rank.log = quiet_rank.ckpt = quiet_rank.plot = NULL;
		quiet_rank.quiet = 1;
		quiet_rank.json = 0;
		o = &quiet_rank;
		tty = 0;
		bench = 0;
	}
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
	c.consist_temp = (float)(o->ppo_temp > 0 ? o->ppo_temp : o->ex.qat_temp);
	c.consist_pct = (float)o->ex.calib_pct;
	if (o->gamma >= 0)
		c.gamma = (float)o->gamma;
	if (ops == &qs_env_bandit)
		c.gamma = 0; /* a bandit: each decision earns only its own reward */
	qs_dqn_defaults(&dc);
	dc.gamma = c.gamma;
	if (o->dqn_target)
		dc.target_every = o->dqn_target;
	if (o->dqn_steps)
		dc.steps = o->dqn_steps;
	if (o->eps_end >= 0)
		dc.eps_end = (float)o->eps_end;
	if (o->resume && (rc = qs_ckpt_peek(o->resume, &c, msg, sizeof(msg))) != QS_OK) {
		fprintf(stderr, "qsteer-train: resume: %s\n", msg);
		return 1;
	}
	updates = (total + per - 1) / per;
	c.adam_pi.total_steps = c.adam_vf.total_steps =
	    c.algo == QS_ALGO_DQN ? updates * dc.steps
				  : updates * c.epochs * ((per + c.minibatch - 1) / c.minibatch);
	rc = qs_ppo_agent_init(&ag, &c, o->seed, msg, sizeof(msg));
	if (rc != QS_OK) {
		fprintf(stderr, "qsteer-train: %s\n", msg);
		return 1;
	}
	/* More --split values than the net has hidden layers: refused before training. */
	{
		uint32_t nv = 0;

		while (nv < QS_MLP_MAX_LAYERS && (o->ex.split[nv] || o->ex.split_width[nv]))
			nv++;
		if (nv > ag.pi.n_layers - 1) {
			fprintf(
			    stderr, "qsteer-train: %s: %u values for a net with %u hidden layers\n",
			    o->ex.split[0] ? "--split" : "--split-width", nv, ag.pi.n_layers - 1);
			qs_ppo_agent_free(&ag);
			return 2;
		}
	}
#ifdef QSTEER_HAVE_SIM
	/* Its scenarios are checked (and the baselines scored) before anything else. */
	if (selecting) {
		rc = qs_train_select_init(&sel, o->scenario, o->select_seeds, o->threads, &ag, msg,
					  sizeof(msg));
		if (rc != QS_OK) {
			fprintf(stderr, "qsteer-train: --select-every: %s\n", msg);
			qs_ppo_agent_free(&ag);
			return 2;
		}
	}
#endif
	qs_ppo_set_threads(&ag, o->threads);
	if (o->resume || o->init) {
		rc = qs_ckpt_load(o->resume ? o->resume : o->init, &ag, &meta, msg, sizeof(msg));
		if (rc != QS_OK) {
			fprintf(stderr, "qsteer-train: %s: %s\n", o->resume ? "resume" : "init",
				msg);
#ifdef QSTEER_HAVE_SIM
			qs_train_select_free(&sel);
#endif
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
	rc = qs_roll_init(&r, ops, scen, N_ENV, o->threads, STEPS_PER_ENV, &ag, o->seed + step, msg,
			  sizeof(msg));
	if (rc == QS_OK && o->mpi) {
		qs_dist_attach(&r, rank, ranks);
		if (!o->quiet && rank == 0)
			fprintf(stderr, "qsteer-train: rollouts over %u MPI ranks\n", ranks);
	}
	if (rc == QS_OK && o->randomize)
		rc = qs_roll_set(&r, "randomize", "1", msg, sizeof(msg));
	if (rc == QS_OK && o->reward_tpot > 0) {
		char w[32];

		snprintf(w, sizeof(w), "%.17g", o->reward_tpot);
		rc = qs_roll_set(&r, "tpot_weight", w, msg, sizeof(msg));
	}
	if (rc == QS_OK && o->bc_steps && step < o->bc_steps)
		rc = qs_roll_set(&r, "teacher", o->teacher ? o->teacher : "auto", msg, sizeof(msg));
	if (rc == QS_OK && o->bc_steps && step < o->bc_steps && o->teacher_ties)
		rc = qs_roll_set(&r, "teacher_ties", o->teacher_ties, msg, sizeof(msg));
	if (rc == QS_OK)
		rc = qs_roll_init(&ev, ops, scen, N_ENV, o->threads, o->calib_per_env, &ag,
				  o->seed ^ 0x5eedf00dull, msg, sizeof(msg));
	if (rc == QS_OK)
		rc = qs_ppo_buf_init(&b, N_ENV, (uint32_t)per, (uint32_t)per * QS_MAX_CANDIDATES,
				     c.n_feat, msg, sizeof(msg));
	if (rc == QS_OK)
		rc = qs_ppo_buf_init(&states, N_ENV, N_ENV * o->calib_per_env,
				     N_ENV * o->calib_per_env * 32, c.n_feat, msg, sizeof(msg));
	if (rc == QS_OK && c.algo == QS_ALGO_DQN)
		rc = qs_dqn_init(&dq, &dc, &ag, N_ENV, (uint32_t)per,
				 (uint32_t)per * QS_MAX_CANDIDATES, o->seed, msg, sizeof(msg));
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
			fprintf(
			    log,
			    "update,step,decisions_per_s,reward_per_decision,episode_return,"
			    "pi_loss,v_loss,entropy,approx_kl,clip_frac,phase,elapsed_s,shared\n");
	}
#ifdef QSTEER_HAVE_SIM
	if (selecting)
		next_sel = step > o->bc_steps ? step : o->bc_steps;
#endif
	t0 = qs_train_now_s();
	uint64_t start = step;
	while (step < total) {
		double el, rate;
		int bc = step < o->bc_steps;

#ifdef QSTEER_HAVE_SIM
		/* The RL phase's start (the clone) is the first candidate. */
		if (selecting && !bc && step >= next_sel) {
			rc = select_offer(o, &sel, &ag, step);
			if (rc != QS_OK)
				break;
			next_sel = step + o->select_every;
		}
#endif

		r.bc = bc;
		ag.bc = bc;
		/* Behaviour cloning takes larger steps than the policy gradient. */
		ag.opt_pi.cfg.lr = bc ? (float)o->bc_lr : c.adam_pi.lr;
		if (c.algo == QS_ALGO_DQN)
			ag.explore_eps = qs_dqn_epsilon(&dc, bc ? 0 : step - o->bc_steps, o->steps);
		rc = qs_roll_collect(&r, &ag, &b, 0, &rs, msg, sizeof(msg));
		if (rc == QS_OK && c.algo == QS_ALGO_DQN && !bc) {
			rc = qs_dqn_store(&dq, &b, msg, sizeof(msg));
			if (rc == QS_OK)
				rc = qs_dqn_update(&dq, &ag, &dst, msg, sizeof(msg));
			/* The log's loss columns carry the TD loss and the mean Q. */
			ps = (struct qs_ppo_stats){.pi_loss = dst.td_loss, .v_loss = dst.q_mean};
		} else if (rc == QS_OK) {
			rc = qs_ppo_update(&ag, &b, &ps, msg, sizeof(msg));
		}
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
				"%" PRIu64 ",%" PRIu64
				",%.0f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.4f,%s,"
				"%.3f,%.4f\n",
				ag.updates, step, rate, rs.reward_per_decision, rs.episode_return,
				(double)ps.pi_loss, (double)ps.v_loss, (double)ps.entropy,
				(double)ps.approx_kl, (double)ps.clip_frac, bc ? "bc" : "rl", el,
				(double)ps.shared);
		if (tty && !bench)
			fprintf(stderr,
				"\r[%s] %" PRIu64 "/%" PRIu64
				" decisions  %.0f dec/s  reward/decision "
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
#ifdef QSTEER_HAVE_SIM
	if (selecting && rc == QS_OK) {
		rc = select_offer(o, &sel, &ag, step);
		if (rc == QS_OK) {
			qs_train_select_restore(&sel, &ag);
			if (!o->quiet)
				fprintf(stderr,
					"qsteer-train: keeping the policy of %" PRIu64
					" decisions (validation score %+.2f: the mean %% gain over "
					"the best baseline less the other columns' losses, a net "
					"loss x%.0f)\n",
					sel.kept_step, sel.kept_score, QS_SELECT_LOSS_WEIGHT);
		}
	}
	qs_train_select_free(&sel);
#endif
	if (c.consist_coef > 0 && !bench && !o->quiet)
		fprintf(stderr, "qsteer-train: last update's float-vs-fake-int8 agreement %.4f\n",
			(double)ag.consist_agree);
	if (bench && rc == QS_OK) {
		double el = qs_train_now_s() - t0, dps = (double)(step - start) / el;

		if (o->json)
			printf("{\"decisions_per_s\": %.0f, \"threads\": %u, \"env\": \"%s\"}\n",
			       dps, o->threads, scen);
		else
			printf(
			    "%.0f decisions/s (training including learning, env %s, %u threads)\n",
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
	if (rc == QS_OK && !bench && o->out && o->ckpt && o->ex.consist > 0) {
		/* The checkpoint holds the float net the .q8 was quantized from. */
		if (qs_ckpt_save(o->ckpt, &ag, &meta, msg, sizeof(msg)) != QS_OK)
			fprintf(stderr, "qsteer-train: checkpoint: %s\n", msg);
	}
	if (rc == QS_OK && o->plot)
		qs_train_plot_curve(o->plot, o->log);
	qs_ppo_buf_free(&b);
	qs_ppo_buf_free(&states);
	qs_dqn_free(&dq);
	qs_roll_free(&r);
	qs_roll_free(&ev);
	qs_ppo_agent_free(&ag);
	if (o->mpi)
		qs_dist_finish();
	return rc == QS_OK ? 0 : 1;
}

#ifdef QSTEER_HAVE_SIM
/* The int8 policy (and the float one, when given) beside every baseline on held-out
 * seeds (train_eval.c); prints the table (and JSON) and DIR/compare-NAME.png. */
static int
eval_table(const struct opts *o, const char *q8, const struct qs_ppo_agent *ag)
{
	struct qs_train_eval *e = calloc(1, sizeof(*e)); /* a whole scenario config */
	char msg[1024];
	int rc;

	if (!e)
		return 1;
	e->scenario = o->scenario;
	e->q8 = q8;
	e->ag = ag;
	e->seeds = o->seeds;
	e->threads = o->threads;
	e->seed = o->seed;
	rc = qs_train_eval_run(e, msg, sizeof(msg));
	if (rc != QS_OK)
		fprintf(stderr, "qsteer-train: %s\n", msg);
	else
		qs_train_eval_print(stdout, e, o->json, o->plot);
	qs_train_eval_free(e);
	free(e);
	return rc == QS_OK ? 0 : 1;
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
		rc = eval_table(o, o->file, o->fckpt ? &ag : NULL);
		if (o->fckpt)
			qs_ppo_agent_free(&ag);
		return rc;
	}
#endif
	if (qs_policy_load_file(o->file, &lo, &p, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-train: %s\n", msg);
		return 1;
	}
	if (qs_train_evaluate(ops, o->scenario, p, NULL, o->seeds, o->seed, &m, &name, stderr) !=
	    QS_OK) {
		qs_policy_free(p);
		return 1;
	}
	printf("%s on %s, %u held-out episodes (seed %" PRIu64 "): %s %.4f\n", o->file, o->scenario,
	       o->seeds, o->seed, name, m);
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

	if (qs_train_mkdir_parents(o->out_dir) != 0) {
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
	if (!o->ex.split[0] && !o->ex.split_width[0]) {
		/* The shipped policy's export (policies/README.md): channels split to 64
		 * units per hidden layer by measured cost. */
		o->ex.split_width[0] = 64;
		o->ex.split_width[1] = 64;
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
	rc = eval_table(o, out, &ag);
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

/* ---- the option table ------------------------------------------------------------ */

static int
opt_scenario(const struct qs_opt *opt, const char *val, void *ctx)
{
	struct opts *o = ctx;
	uint32_t n = 1;

	(void)opt;
	for (const char *t = val; *t; t++)
		n += *t == ',';
	if (n > QS_TRAIN_MAX_SCENARIOS) {
		fprintf(stderr, "qsteer-train: --scenario: %u scenarios, at most %d\n", n,
			QS_TRAIN_MAX_SCENARIOS);
		return -1;
	}
	o->scenario = val;
	return 0;
}

/* --split K1,K2 or --split-width W1,W2: one value per hidden layer; either replaces
 * both. */
static int
opt_split(const struct qs_opt *opt, const char *val, void *ctx)
{
	struct opts *o = ctx;
	int w = !strcmp(opt->name, "--split-width");
	uint32_t *dst = w ? o->ex.split_width : o->ex.split, n = 0;
	const char *t = val;
	char *end = NULL;

	memset(o->ex.split, 0, sizeof(o->ex.split));
	memset(o->ex.split_width, 0, sizeof(o->ex.split_width));
	while (n < QS_MLP_MAX_LAYERS - 1) {
		unsigned long k = strtoul(t, &end, 10);

		if (end == t || k < 1 || k > (w ? QS_MLP_MAX_DIM : 8) || (*end && *end != ','))
			break;
		dst[n++] = (uint32_t)k;
		if (!*end)
			break;
		t = end + 1;
	}
	if (!n || *end || val[strlen(val) - 1] == ',') {
		fprintf(stderr,
			"qsteer-train: %s %s: one value per hidden layer, comma-separated (%s)\n",
			opt->name, val,
			w ? "units 1..256 of the widened layer, e.g. 64,64"
			  : "copies 1..8 of every channel, e.g. 2,2");
		return -1;
	}
	return 0;
}

static int
opt_algo(const struct qs_opt *opt, const char *val, void *ctx)
{
	struct opts *o = ctx;

	(void)opt;
	if (qs_algo_parse(val, &o->algo) != QS_OK) {
		fprintf(stderr, "qsteer-train: --algo %s: ppo, reinforce, a2c or dqn\n", val);
		return -1;
	}
	return 0;
}

static int
opt_teacher_ties(const struct qs_opt *opt, const char *val, void *ctx)
{
	struct opts *o = ctx;

	(void)opt;
	if (strcmp(val, "index") && strcmp(val, "load")) {
		fprintf(stderr, "qsteer-train: --teacher-ties %s: index or load\n", val);
		return -1;
	}
	o->teacher_ties = val;
	return 0;
}

#define VALUE "not a valid value"
#define COUNT "not a valid count"

int
main(int argc, char **argv)
{
	struct opts o = {0};
	const struct qs_opt table[] = {
	    QS_OPT_FLAG("--json", &o.json, 1),
	    QS_OPT_FLAG("--no-randomize", &o.randomize, 0),
	    QS_OPT_FLAG("--quiet", &o.quiet, 1),
	    QS_OPT_FLAG("--mpi", &o.mpi, 1),
	    QS_OPT_FLAG("--recalib", &o.ex.recalib, 1),
	    QS_OPT_FN("--scenario", opt_scenario),
	    QS_OPT_STR("--out", &o.out),
	    QS_OPT_STR("--out-dir", &o.out_dir),
	    QS_OPT_STR("--log", &o.log),
	    QS_OPT_STR("--checkpoint", &o.ckpt),
	    QS_OPT_STR("--resume", &o.resume),
	    QS_OPT_STR("--init", &o.init),
	    QS_OPT_STR("--float", &o.fckpt),
	    QS_OPT_STR("--teacher", &o.teacher),
	    QS_OPT_FN("--teacher-ties", opt_teacher_ties),
	    QS_OPT_U64("--select-every", &o.select_every, 0, UINT64_MAX, COUNT),
	    QS_OPT_U32("--select-seeds", &o.select_seeds, 1, 64, "1..64"),
	    QS_OPT_STR("--plot", &o.plot),
	    QS_OPT_DOUBLE("--lr", &o.lr, 0, 1, VALUE),
	    QS_OPT_DOUBLE("--bc-lr", &o.bc_lr, 0, 1, VALUE),
	    QS_OPT_DOUBLE("--reward-tpot", &o.reward_tpot, 0, 16, VALUE),
	    QS_OPT_DOUBLE("--ent", &o.ent, 0, 1, VALUE),
	    QS_OPT_DOUBLE("--calib-pct", &o.ex.calib_pct, 0.5, 1, VALUE),
	    QS_OPT_DOUBLE("--share", &o.share, 0, 1, VALUE),
	    QS_OPT_DOUBLE("--consist", &o.ex.consist, 0, 1, VALUE),
	    QS_OPT_DOUBLE("--anchor", &o.ex.anchor, 0, 1, VALUE),
	    QS_OPT_DOUBLE("--ppo-consist", &o.ppo_consist, 0, 10, VALUE),
	    QS_OPT_DOUBLE("--center", &o.center, 0, 1, VALUE),
	    QS_OPT_DOUBLE("--ppo-temp", &o.ppo_temp, 0, 1, VALUE),
	    QS_OPT_DOUBLE("--min-fidelity", &o.ex.min_fid, 0, 1, VALUE),
	    QS_OPT_DOUBLE("--guard", &o.ex.guard, 0, 1, VALUE),
	    QS_OPT_DOUBLE("--focus-gap", &o.ex.focus_gap, 0, 10, VALUE),
	    QS_OPT_DOUBLE("--focus-frac", &o.ex.focus_frac, 0, 1, VALUE),
	    QS_OPT_DOUBLE("--qat-temp", &o.ex.qat_temp, 0, 1, VALUE), /* 0: the default */
	    QS_OPT_DOUBLE("--qat-target", &o.ex.qat_target, 0, 1, VALUE),
	    QS_OPT_U32("--qat-rounds", &o.ex.qat_rounds, 0, 64, "0..64"),
	    QS_OPT_U32("--calib-per-env", &o.calib_per_env, 64, 65536, "64..65536"),
	    QS_OPT_FN("--split", opt_split),
	    QS_OPT_FN("--split-width", opt_split),
	    QS_OPT_U32("--qat-steps", &o.ex.qat_steps, 1, 1000000, "1..1000000"),
	    QS_OPT_U32("--epochs", &o.epochs, 1, 64, "1..64"),
	    QS_OPT_DOUBLE("--gamma", &o.gamma, 0, 1, VALUE),
	    QS_OPT_DOUBLE("--eps-end", &o.eps_end, 0, 1, VALUE),
	    QS_OPT_U32("--dqn-target", &o.dqn_target, 1, 1000000, "1..1000000"),
	    QS_OPT_U32("--dqn-steps", &o.dqn_steps, 1, 4096, "1..4096"),
	    QS_OPT_FN("--algo", opt_algo),
	    QS_OPT_U64("--steps", &o.steps, 0, UINT64_MAX, COUNT),
	    QS_OPT_U64("--seed", &o.seed, 0, UINT64_MAX, COUNT),
	    QS_OPT_U32("--threads", &o.threads, 1, 256, COUNT),
	    QS_OPT_U32("--episodes", &o.seeds, 1, 1000, COUNT), /* = --seeds */
	    QS_OPT_U32("--seeds", &o.seeds, 1, 1000, COUNT),
	    QS_OPT_U64("--bc-steps", &o.bc_steps, 0, UINT64_MAX, COUNT),
	    QS_OPT_U64("--created", &o.created, 0, UINT64_MAX, COUNT),
	    QS_OPT_END,
	};
	int rc;

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
	o.select_seeds = 4;
	o.randomize = 1;
	o.created = UINT64_MAX;
	o.bc_lr = 3e-3;
	o.ex.qat_rounds = 2;
	o.ex.calib_pct = 0.99;
	o.ex.qat_target = 0.99;
	o.ex.qat_temp = 0.1;
	o.calib_per_env = CALIB_PER_ENV;
	o.ent = -1;
	o.gamma = -1;
	o.eps_end = -1;
	rc = qs_opt_parse("qsteer-train", table, argc, argv, 2, &o.file, &o);
	if (rc == QS_OPT_E_UNKNOWN)
		return usage();
	if (rc != QS_OPT_OK)
		return 2;
	if (!(o.ex.qat_temp > 0))
		o.ex.qat_temp = 0.1;
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
