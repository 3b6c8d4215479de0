/*
 * batch_cmd.c - `qsteer-train batch`: learn the agent's batching classifier by PPO
 * in the batching environment (batch_env.h: the simulator's scenarios on the
 * agent's scheduler), export it to int8 and compare it, on held-out arrival seeds,
 * with every heuristic strategy of the agent.
 *
 * Determinism: episode g of a run draws its scenario, load and arrival seed from
 * (seed, g) alone and samples actions from its own stream, and episodes are merged
 * in index order, so a run depends on its seed and arguments, not on --threads.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch_cmd.h"
#include "batch_env.h"
#include "batch_export.h"
#include "ppo.h"
#include "qsteer/compare.h"
#include "qsteer/jobs.h"
#include "qsteer/opt.h"
#include "qsteer/policy.h"
#include "util.h"

#define EP_CAP (1u << 16) /* decisions one training episode may record */
/* Training episodes' requests that EP_CAP holds: 200 requests made up to 4,997
 * scheduler decisions (~25 a request) at loads 0.7-1.3. */
#define MAX_TRAIN_REQUESTS 2000
#define MAX_EPISODES	   64
#define MAX_THREADS	   16

struct bopts {
	const char *cmd, *out, *log, *policy;
	uint32_t iters, episodes, requests, threads, seeds, eval_requests;
	uint64_t seed, created;
	double eval_load;
	uint32_t scn_mask;     /* bit s: scenario s (0: train the first three, eval all) */
	int scn_only;	       /* the one scenario of a one-bit mask, else -1 */
	const char *profile;   /* agent profile file (NULL: the default profile) */
	uint32_t select_every; /* iterations between validation candidates (0: none) */
	uint32_t select_seeds;
	const char *train_only; /* the last option given that eval does not take */
	int quiet;
};

static int
busage(FILE *f)
{
	fprintf(
	    f,
	    "usage: qsteer-train batch train --out FILE.q8 [--iters N (400)] [--episodes E (8)]\n"
	    "                          [--requests N] [--scenario S[,S...]|all] [--profile INI]\n"
	    "                          [--seed S] [--threads T] [--log CSV] [--created T]\n"
	    "                          [--seeds K] [--load X] [--quiet]\n"
	    "                          [--select-every N [--select-seeds K (3)]]\n"
	    "       qsteer-train batch eval FILE.q8 [--seeds K] [--requests N] [--load X]\n"
	    "                          [--scenario S[,S...]|all] [--profile INI]\n"
	    "Trains the agent's int8 batching classifier (docs/agent.md) and compares it with\n"
	    "every heuristic on held-out arrival seeds 1..K of the simulator's scenarios\n"
	    "(sim/scenarios: static, bursty, adversarial, long-context) on one backend, each\n"
	    "at its own load unless --load X is given. train uses the first three unless\n"
	    "--scenario says otherwise; eval all four. --profile: the agent's profile (a\n"
	    "profile with a draft model adds speculation depths to the actions and the\n"
	    "speculation heuristics to the table). --select-every N: score the greedy policy\n"
	    "every N iterations (and untrained, and last) on validation streams and end on\n"
	    "the best.\n");
	return 2;
}

/* The directory of path exists and takes new files: checked before hours of training
 * (the policy is written there at the end, through a temporary file). */
static int
out_dir_writable(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash == path ? 1 : slash - path), path);
	if (access(dir, W_OK | X_OK) != 0) {
		fprintf(stderr, "qsteer-train batch train: --out %s: cannot write in %s: %s\n",
			path, dir, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The environment the command runs in: the default profile or --profile's (its
 * action table then follows the profile's limits and draft model), and the training
 * scenarios: a one-scenario mask trains on it alone, as before masks; several
 * train on them with equal weights.
 */
static int
benv_setup(struct qs_benv_cfg *c, struct bopts *o, char *msg, size_t msglen)
{
	int rc;

	qs_benv_defaults(c);
	if (o->profile) {
		rc = qs_sim_profile_load(o->profile, &c->agent.prof, msg, msglen);
		if (rc != QS_OK)
			return rc;
		if (c->agent.prof.model != QS_SIM_MODEL_BATCH)
			return qs_fail(msg, msglen, QS_E_VALUE,
				       "%s: the agent needs a batch-model profile", o->profile);
		c->agent.chunked_prefill = c->agent.prof.chunked_prefill;
		c->n_actions = qs_benv_action_table(&c->agent.prof, c->action, QS_Q8_MAX_ACTIONS);
	}
	if (!o->scn_mask)
		o->scn_mask = !strcmp(o->cmd, "train") ? 0x7u : (1u << QS_AGENT_SCN__COUNT) - 1;
	o->scn_only = -1;
	if ((o->scn_mask & (o->scn_mask - 1)) == 0) {
		for (int s = 0; s < QS_AGENT_SCN__COUNT; s++)
			if (o->scn_mask >> s & 1)
				o->scn_only = s;
		/* calibration reads the weights: the scenario trained on is among them */
		c->scn_weight[o->scn_only] = 1;
	} else {
		for (int s = 0; s < QS_AGENT_SCN__COUNT; s++)
			c->scn_weight[s] = (float)(o->scn_mask >> s & 1);
	}
	return QS_OK;
}

/* ---- rollouts on threads ------------------------------------------------------------- */

struct ep_job {
	const struct qs_benv_cfg *c;
	const struct qs_ppo_agent *ag;
	uint64_t seed;
	uint64_t index; /* global episode index */
	int scn_only;
	struct qs_ppo_buf buf;
	struct qs_agent_bench_result res;
	enum qs_agent_scn scn;
	int rc;
	char msg[256];
};

/* A worker of the job pool (jobs.h): its actor is scratch, pinned for a collection. */
struct worker {
	struct qs_ppo_actor actor;
};

struct collect_ctx {
	struct worker *w;
	struct ep_job *jobs;
};

static void
run_job(struct ep_job *j, struct qs_ppo_actor *actor)
{
	struct qs_rng r;
	struct qs_benv_actor ac;
	double load, wsum = 0, u;
	enum qs_agent_scn scn = QS_AGENT_SCN_STATIC;

	qs_rng_seed(&r, j->seed, 0x100000000ull + j->index);
	if (j->scn_only >= 0) {
		scn = (enum qs_agent_scn)j->scn_only;
	} else {
		for (int s = 0; s < QS_AGENT_SCN__COUNT; s++)
			wsum += j->c->scn_weight[s];
		u = qs_rng_uniform(&r) * wsum;
		for (int s = 0; s < QS_AGENT_SCN__COUNT; s++) {
			scn = (enum qs_agent_scn)s;
			if (u < j->c->scn_weight[s])
				break;
			u -= j->c->scn_weight[s];
		}
	}
	load = j->c->load_lo + (j->c->load_hi - j->c->load_lo) * qs_rng_uniform(&r);
	j->scn = scn;
	qs_ppo_buf_clear(&j->buf);
	ac.ag = j->ag;
	ac.scratch = actor;
	ac.rng = &r;
	ac.greedy = 0;
	ac.out = &j->buf;
	j->rc =
	    qs_benv_episode(j->c, scn, QS_BENV_TRAIN_SEED_BASE + j->seed * 1000003ull + j->index,
			    load, j->c->requests, NULL, &ac, NULL, &j->res, j->msg, sizeof(j->msg));
}

static void
collect_job(void *arg, uint32_t k, uint32_t worker)
{
	struct collect_ctx *c = arg;

	run_job(&c->jobs[k], &c->w[worker].actor);
}

static int
collect(struct worker *w, uint32_t threads, struct ep_job *jobs, uint32_t n, char *msg,
	size_t msglen)
{
	struct collect_ctx c = {w, jobs};

	for (uint32_t t = 0; t < threads; t++)
		qs_ppo_actor_pin(&w[t].actor, jobs[0].ag);
	/* Each episode is a function of its job alone: the episodes and their order do
	 * not depend on how many threads ran them. */
	qs_jobs_run(n, threads, collect_job, &c);
	for (uint32_t t = 0; t < threads; t++)
		qs_ppo_actor_unpin(&w[t].actor);
	for (uint32_t k = 0; k < n; k++)
		if (jobs[k].rc != QS_OK) {
			return qs_fail(msg, msglen, jobs[k].rc, "episode %" PRIu64 ": %s",
				       jobs[k].index, jobs[k].msg);
		}
	return QS_OK;
}

/* ---- evaluation ------------------------------------------------------------------------ */

struct eval_row {
	char name[QS_AGENT_NAME_LEN];
	double goodput, slo, ttft_p99, tpot_p99, preempt;
};

static void
add_result(struct eval_row *row, const struct qs_agent_bench_result *r, uint32_t seeds)
{
	row->goodput += r->goodput_rps / seeds;
	row->slo += r->slo_attainment / seeds;
	row->ttft_p99 += r->ttft_p99_ms / seeds;
	row->tpot_p99 += r->tpot_p99_ms / seeds;
	row->preempt += (double)r->preemptions / seeds;
}

static void
print_row(FILE *f, const char *scn, const struct eval_row *r, double fixed_goodput)
{
	fprintf(f, "%-12s %-26s %9.3f %7.1f%% %10.1f %10.1f %8.1f %+8.2f%%\n", scn, r->name,
		r->goodput, 100 * r->slo, r->ttft_p99, r->tpot_p99, r->preempt,
		fixed_goodput > 0 ? 100 * (r->goodput / fixed_goodput - 1) : 0.0);
}

#define MAX_ROWS 16 /* the heuristics (6, and 5 of speculation), the float and the int8 policy */

/*
 * Every heuristic, the float policy ag (may be NULL) and the int8 policy p, means
 * over seeds 1..K of a scenario, all on one stream per (scenario, seed); then, per
 * scenario, the int8 policy's goodput relative to the fixed strategy's ("int8 policy
 * vs fixed on S: +X% goodput").
 */
static int
eval_table(const struct qs_benv_cfg *c, const struct bopts *o, struct qs_policy *p,
	   const char *pname, const struct qs_ppo_agent *ag, struct qs_ppo_actor *actor, char *msg,
	   size_t msglen)
{
	double gain[QS_AGENT_SCN__COUNT] = {0}, gain_ci[QS_AGENT_SCN__COUNT] = {0};
	struct qs_batch_strategy s[MAX_ROWS];
	struct eval_row row[MAX_ROWS];
	uint32_t nh = 0, fixed = 0, n;
	int rc = QS_OK;

	/* The heuristics' rows, then the float's (ag), then the int8 policy's. */
	for (uint32_t k = 0, set = 0; set < 2 && rc == QS_OK; set++) {
		const char *const *names = set ? qs_batch_builtin_spec : qs_batch_builtin;

		if (set && !c->agent.prof.spec_max_depth)
			break; /* without a draft model they are `fixed` again */
		for (k = 0; names[k] && nh + 2 < MAX_ROWS; k++) {
			rc = qs_batch_parse(names[k], &s[nh], msg, msglen);
			if (rc != QS_OK)
				break;
			if (!strcmp(names[k], "fixed"))
				fixed = nh; /* the hardware cap, oldest first */
			nh++;
		}
	}
	n = nh;
	if (rc == QS_OK && ag)
		n++;
	/* s[n] borrows p (the caller frees it): no qs_batch_free for it */
	if (rc == QS_OK)
		rc = qs_batch_from_policy(p, pname, &s[n++], msg, msglen);
	printf("%-12s %-26s %9s %8s %10s %10s %8s %9s\n", "scenario", "strategy", "goodput/s",
	       "SLO", "TTFT p99", "TPOT p99", "preempt", "vs fixed");
	for (int sc = 0; rc == QS_OK && sc < QS_AGENT_SCN__COUNT; sc++) {
		enum qs_agent_scn scn = (enum qs_agent_scn)sc;

		if (!(o->scn_mask >> sc & 1))
			continue;
		/* the int8 policy's goodput minus fixed's, per seed: sum and sum of squares */
		double dsum = 0, dsq = 0;

		memset(row, 0, sizeof(row));
		for (uint32_t i = 0; i < n; i++)
			snprintf(row[i].name, sizeof(row[i].name), "%.*s",
				 (int)sizeof(row[i].name) - 1,
				 ag && i == nh ? "float (greedy)" : s[i].name);
		for (uint32_t k = 1; rc == QS_OK && k <= o->seeds; k++) {
			struct qs_agent_bench_arrivals arr;
			double g_fixed = 0, g_int8 = 0;

			rc = qs_benv_arrivals(c, scn, k, o->eval_load, o->eval_requests, &arr, msg,
					      msglen);
			for (uint32_t i = 0; rc == QS_OK && i < n; i++) {
				struct qs_agent_bench_result r;
				struct qs_benv_actor ac = {ag, actor, NULL, 1, NULL};
				int fl = ag && i == nh;

				rc = qs_benv_episode(c, scn, k, o->eval_load, o->eval_requests,
						     &arr, fl ? &ac : NULL, fl ? NULL : &s[i], &r,
						     msg, msglen);
				if (rc == QS_OK)
					add_result(&row[i], &r, o->seeds);
				if (i == fixed)
					g_fixed = r.goodput_rps;
				if (i + 1 == n)
					g_int8 = r.goodput_rps;
			}
			qs_agent_bench_arrivals_free(&arr);
			dsum += g_int8 - g_fixed;
			dsq += (g_int8 - g_fixed) * (g_int8 - g_fixed);
		}
		for (uint32_t i = 0; rc == QS_OK && i < n; i++)
			print_row(stdout, qs_agent_scn_name(scn), &row[i], row[fixed].goodput);
		if (rc == QS_OK && row[fixed].goodput > 0) {
			/* Paired over seeds: both runs of a seed see the same arrivals. */
			uint32_t K = o->seeds;
			double dm = dsum / K, var = K > 1 ? (dsq - K * dm * dm) / (K - 1) : 0;

			gain[sc] = row[n - 1].goodput / row[fixed].goodput - 1;
			gain_ci[sc] = (K > 1 ? qs_cmp_t975(K - 1) : 0) *
				      sqrt(var > 0 ? var / K : 0) / row[fixed].goodput;
		}
	}
	for (uint32_t i = 0; i < nh; i++)
		qs_batch_free(&s[i]);
	if (rc != QS_OK)
		return rc;
	for (int sc = 0; sc < QS_AGENT_SCN__COUNT; sc++)
		if (o->scn_mask >> sc & 1)
			printf("int8 policy vs fixed on %s: %+.2f%% goodput (paired 95%% CI +- "
			       "%.2f%%)\n",
			       qs_agent_scn_name((enum qs_agent_scn)sc), 100 * gain[sc],
			       100 * gain_ci[sc]);
	return QS_OK;
}

/* ---- validation selection ------------------------------------------------------------------ */

/*
 * Keep the best policy training passed through (the batching counterpart of
 * train_select.h, for the same reason: a run's greedy policy wanders while its
 * sampled return stays flat). Each candidate -- the untrained net, every
 * --select-every iterations, the last -- runs greedy on validation streams:
 * every training scenario, seeds QS_BSEL_SEED0 + 1..K (never an evaluation seed, a
 * small integer, nor a training one, 2^40 + seed * 1000003 + episode, for any
 * --seed below 4e12), at the
 * scenario's own load and at load 1.0, 1000 requests each. Its score is the mean
 * over those streams of its goodput relative to fixed's on the same stream.
 */
#define QS_BSEL_SEED0	 (1ull << 62 | 0xba7c5e1ull << 8)
#define QS_BSEL_REQUESTS 1000
#define QS_BSEL_MAX	 (QS_AGENT_SCN__COUNT * 2 * 16)

struct bsel {
	uint32_t n;
	struct qs_agent_bench_arrivals arr[QS_BSEL_MAX];
	enum qs_agent_scn scn[QS_BSEL_MAX];
	double load[QS_BSEL_MAX], g_fixed[QS_BSEL_MAX];
	double kept_score;
	uint32_t kept_iter;
	int kept;
	float *pi, *vf;
	size_t n_pi, n_vf;
};

static void
bsel_free(struct bsel *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		qs_agent_bench_arrivals_free(&b->arr[i]);
	free(b->pi);
	free(b->vf);
	memset(b, 0, sizeof(*b));
}

static int
bsel_init(struct bsel *b, const struct qs_benv_cfg *c, const struct bopts *o,
	  const struct qs_ppo_agent *ag, char *msg, size_t msglen)
{
	struct qs_batch_strategy fixed;
	int rc = qs_batch_parse("fixed", &fixed, msg, msglen);

	memset(b, 0, sizeof(*b));
	b->n_pi = ag->pi.n_params;
	b->n_vf = ag->vf.n_params;
	b->pi = malloc(b->n_pi * sizeof(float));
	b->vf = malloc(b->n_vf * sizeof(float));
	if (rc == QS_OK && (!b->pi || !b->vf))
		rc = qs_fail(msg, msglen, QS_E_NOMEM, "batch: no memory for selection");
	for (int sc = 0; rc == QS_OK && sc < QS_AGENT_SCN__COUNT; sc++) {
		if (!(c->scn_weight[sc] > 0))
			continue;
		for (uint32_t k = 1; rc == QS_OK && k <= o->select_seeds; k++)
			for (int l = 0; rc == QS_OK && l < 2; l++) {
				struct qs_agent_bench_result r;
				uint32_t i = b->n;

				b->scn[i] = (enum qs_agent_scn)sc;
				b->load[i] = l ? 1.0 : 0; /* 0: the scenario's own */
				rc = qs_benv_arrivals(c, b->scn[i], QS_BSEL_SEED0 + k, b->load[i],
						      QS_BSEL_REQUESTS, &b->arr[i], msg, msglen);
				if (rc != QS_OK)
					break;
				b->n++;
				rc = qs_benv_episode(c, b->scn[i], QS_BSEL_SEED0 + k, b->load[i],
						     QS_BSEL_REQUESTS, &b->arr[i], NULL, &fixed, &r,
						     msg, msglen);
				b->g_fixed[i] = r.goodput_rps;
				if (rc == QS_OK && !(r.goodput_rps > 0))
					rc = qs_fail(
					    msg, msglen, QS_E_VALUE,
					    "batch: selection stream %u: fixed has no goodput", i);
			}
	}
	qs_batch_free(&fixed);
	b->kept_score = -INFINITY;
	return rc;
}

/* Score ag's greedy policy (actor: scratch); keep its parameters when it is the best. */
static int
bsel_offer(struct bsel *b, const struct qs_benv_cfg *c, const struct qs_ppo_agent *ag,
	   struct qs_ppo_actor *actor, uint32_t iter, int quiet, char *msg, size_t msglen)
{
	double score = 0;
	int rc = QS_OK;

	qs_ppo_actor_pin(actor, ag);
	for (uint32_t i = 0; rc == QS_OK && i < b->n; i++) {
		struct qs_agent_bench_result r;
		struct qs_benv_actor ac = {ag, actor, NULL, 1, NULL};

		rc = qs_benv_episode(c, b->scn[i], 0, b->load[i], QS_BSEL_REQUESTS, &b->arr[i], &ac,
				     NULL, &r, msg, msglen);
		if (rc == QS_OK)
			score += (r.goodput_rps / b->g_fixed[i] - 1) / b->n;
	}
	qs_ppo_actor_unpin(actor);
	if (rc != QS_OK)
		return rc;
	if (score > b->kept_score) {
		b->kept_score = score;
		b->kept_iter = iter;
		b->kept = 1;
		memcpy(b->pi, ag->pi.p, b->n_pi * sizeof(float));
		memcpy(b->vf, ag->vf.p, b->n_vf * sizeof(float));
	}
	if (!quiet)
		fprintf(stderr, "\nbatch: select: iter %u  goodput vs fixed %+.2f%%%s\n", iter,
			100 * score, b->kept_iter == iter ? "  (kept)" : "");
	return QS_OK;
}

/* ---- train ----------------------------------------------------------------------------- */

static int
cmd_train(struct bopts *o)
{
	struct qs_benv_cfg c;
	struct qs_ppo_cfg pc;
	struct qs_ppo_agent ag;
	struct qs_ppo_buf buf, states;
	struct ep_job *jobs = NULL;
	struct worker w[MAX_THREADS];
	struct qs_bexp_report rep;
	struct bsel *sel = NULL;
	struct qs_policy *p = NULL;
	struct qs_policy_load_opts lo = {QS_SCHEMA_BATCH_V1, QS_Q8_KIND_CLASSIFIER, NULL};
	double t0 = qs_train_now_s();
	FILE *log = NULL;
	char msg[512];
	uint32_t t_init = 0;
	uint64_t total = 0;
	int rc;

	memset(w, 0, sizeof(w));
	memset(&buf, 0, sizeof(buf));
	memset(&states, 0, sizeof(states));
	memset(&ag, 0, sizeof(ag));
	rc = benv_setup(&c, o, msg, sizeof(msg));
	if (rc != QS_OK)
		goto fail;
	c.requests = o->requests;
	qs_ppo_classifier_defaults(&pc, QS_FB_COUNT, c.n_actions);
	pc.adam_pi.total_steps = (uint64_t)o->iters * pc.epochs *
				 ((o->episodes * 4000u + pc.minibatch - 1) / pc.minibatch);
	pc.adam_vf.total_steps = pc.adam_pi.total_steps;
	pc.adam_pi.min_frac = pc.adam_vf.min_frac = 0.1f;
	rc = qs_ppo_agent_init(&ag, &pc, o->seed, msg, sizeof(msg));
	if (rc != QS_OK)
		goto fail;
	jobs = calloc(o->episodes, sizeof(*jobs));
	if (!jobs) {
		rc = qs_fail(msg, sizeof(msg), QS_E_NOMEM, "batch: no memory");
		goto fail;
	}
	for (uint32_t k = 0; k < o->episodes && rc == QS_OK; k++)
		rc = qs_ppo_buf_init_head(&jobs[k].buf, &pc, 1, EP_CAP, EP_CAP, msg, sizeof(msg));
	if (rc == QS_OK)
		rc = qs_ppo_buf_init_head(&buf, &pc, 1, o->episodes * EP_CAP, o->episodes * EP_CAP,
					  msg, sizeof(msg));
	if (rc == QS_OK)
		rc = qs_ppo_buf_init_head(&states, &pc, 1, QS_AGENT_SCN__COUNT * EP_CAP,
					  QS_AGENT_SCN__COUNT * EP_CAP, msg, sizeof(msg));
	for (; rc == QS_OK && t_init < o->threads; t_init++)
		rc = qs_ppo_actor_init(&w[t_init].actor, &ag, msg, sizeof(msg));
	if (rc != QS_OK)
		goto fail;
	if (o->log) {
		log = fopen(o->log, "w");
		if (!log) {
			rc = qs_fail(msg, sizeof(msg), QS_E_IO, "%s: %s", o->log, strerror(errno));
			goto fail;
		}
		fprintf(log, "iter,decisions,episode_return,slo_attainment,pi_loss,v_loss,entropy,"
			     "approx_kl,clip_frac,seconds\n");
	}
	if (rc == QS_OK && o->select_every) {
		sel = calloc(1, sizeof(*sel));
		rc = sel ? bsel_init(sel, &c, o, &ag, msg, sizeof(msg))
			 : qs_fail(msg, sizeof(msg), QS_E_NOMEM, "batch: no memory");
		if (rc == QS_OK)
			rc = bsel_offer(sel, &c, &ag, &w[0].actor, 0, o->quiet, msg, sizeof(msg));
		if (rc != QS_OK)
			goto fail;
	}
	for (uint32_t it = 0; it < o->iters; it++) {
		struct qs_ppo_stats st;
		double ret = 0, slo = 0;

		for (uint32_t k = 0; k < o->episodes; k++) {
			jobs[k].c = &c;
			jobs[k].ag = &ag;
			jobs[k].seed = o->seed;
			jobs[k].index = (uint64_t)it * o->episodes + k;
			jobs[k].scn_only = o->scn_only;
		}
		rc = collect(w, o->threads, jobs, o->episodes, msg, sizeof(msg));
		if (rc != QS_OK)
			goto fail;
		qs_ppo_buf_clear(&buf);
		for (uint32_t k = 0; k < o->episodes; k++) {
			for (uint32_t i = 0; i < jobs[k].buf.n; i++)
				ret += jobs[k].buf.reward[i] / o->episodes;
			slo += jobs[k].res.slo_attainment / o->episodes;
			qs_ppo_buf_append(&buf, &jobs[k].buf); /* fits: cap = episodes * EP_CAP */
		}
		qs_ppo_buf_finish(&buf, pc.gamma, pc.lambda);
		total += buf.n;
		rc = qs_ppo_update(&ag, &buf, &st, msg, sizeof(msg));
		if (rc != QS_OK)
			goto fail;
		if (log)
			fprintf(log, "%u,%u,%.4f,%.4f,%.5f,%.5f,%.4f,%.5f,%.4f,%.1f\n", it + 1,
				buf.n, ret, slo, st.pi_loss, st.v_loss, st.entropy, st.approx_kl,
				st.clip_frac, qs_train_now_s() - t0);
		if (!o->quiet) {
			double el = qs_train_now_s() - t0;

			fprintf(stderr,
				"\rbatch: iter %u/%u  %.0f decisions/s  return %.1f  SLO %.1f%%  "
				"entropy %.2f  ETA %.0fs   ",
				it + 1, o->iters, (double)total / el, ret, 100 * slo, st.entropy,
				el / (it + 1) * (o->iters - it - 1));
			if (it + 1 == o->iters)
				fputc('\n', stderr);
		}
		if (sel && ((it + 1) % o->select_every == 0 || it + 1 == o->iters)) {
			rc = bsel_offer(sel, &c, &ag, &w[0].actor, it + 1, o->quiet, msg,
					sizeof(msg));
			if (rc != QS_OK)
				goto fail;
		}
	}
	if (sel && sel->kept) {
		/* the run ends on the best candidate, the untrained net included */
		memcpy(ag.pi.p, sel->pi, sel->n_pi * sizeof(float));
		memcpy(ag.vf.p, sel->vf, sel->n_vf * sizeof(float));
		printf("selected: the candidate of iteration %u (goodput vs fixed on the "
		       "validation streams %+.2f%%)\n",
		       sel->kept_iter, 100 * sel->kept_score);
	}
	if (log && fclose(log) != 0) {
		log = NULL;
		rc = qs_fail(msg, sizeof(msg), QS_E_IO, "%s: write failed", o->log);
		goto fail;
	}
	log = NULL;

	/* Calibration states: greedy episodes of every scenario on training seeds. The
	 * learner is fixed from here on (calibration, export, evaluation). */
	qs_ppo_actor_pin(&w[0].actor, &ag);
	for (int sc = 0; sc < QS_AGENT_SCN__COUNT; sc++) {
		struct qs_agent_bench_result r;
		struct qs_rng rng;
		struct qs_benv_actor ac = {&ag, &w[0].actor, &rng, 1, &states};

		if (!(c.scn_weight[sc] > 0))
			continue; /* a scenario it never saw says nothing of its ranges */
		qs_rng_seed(&rng, o->seed, 7);
		rc = qs_benv_episode(&c, (enum qs_agent_scn)sc,
				     QS_BENV_TRAIN_SEED_BASE - 1 - (uint64_t)sc, 0.9, c.requests,
				     NULL, &ac, NULL, &r, msg, sizeof(msg));
		if (rc != QS_OK)
			goto fail;
	}
	/* Ranges at the 0.999 quantile: the maximum spends the 7 bits on a handful of
	 * outliers (94.96% agreement on the shipped policy's states, 97.17% at 0.999;
	 * 0.99 clips too much, 91.89%). */
	rc = qs_bexp_write(&ag.pi, states.rows, states.n_rows, 0.999f, c.action, c.n_actions,
			   "default-batch", o->created, o->out, &rep, msg, sizeof(msg));
	if (rc != QS_OK)
		goto fail;
	printf("wrote %s: %zu bytes, %u actions; float-vs-int8 agreement %.2f%% on %u "
	       "calibration states (%u biases clamped); %.1f s\n",
	       o->out, rep.bytes, c.n_actions, 100 * rep.agree, rep.states, rep.bias_clamped,
	       qs_train_now_s() - t0);
	rc = qs_policy_load_file(o->out, &lo, &p, msg, sizeof(msg));
	if (rc == QS_OK && o->seeds > 0)
		rc = eval_table(&c, o, p, o->out, &ag, &w[0].actor, msg, sizeof(msg));
fail:
	if (rc != QS_OK)
		fprintf(stderr, "qsteer-train batch: %s\n", msg);
	if (log)
		fclose(log);
	qs_policy_free(p);
	for (uint32_t t = 0; t < t_init; t++)
		qs_ppo_actor_free(&w[t].actor);
	for (uint32_t k = 0; jobs && k < o->episodes; k++)
		qs_ppo_buf_free(&jobs[k].buf);
	free(jobs);
	qs_ppo_buf_free(&buf);
	qs_ppo_buf_free(&states);
	qs_ppo_agent_free(&ag);
	if (sel) {
		bsel_free(sel);
		free(sel);
	}
	return rc == QS_OK ? 0 : 1;
}

static int
cmd_eval(struct bopts *o)
{
	struct qs_benv_cfg c;
	struct qs_policy *p = NULL;
	struct qs_policy_load_opts lo = {QS_SCHEMA_BATCH_V1, QS_Q8_KIND_CLASSIFIER, NULL};
	char msg[512];
	int rc;

	rc = benv_setup(&c, o, msg, sizeof(msg));
	if (rc == QS_OK)
		rc = qs_policy_load_file(o->policy, &lo, &p, msg, sizeof(msg));
	if (rc == QS_OK)
		rc = eval_table(&c, o, p, o->policy, NULL, NULL, msg, sizeof(msg));
	qs_policy_free(p);
	if (rc != QS_OK) {
		fprintf(stderr, "qsteer-train batch eval: %s\n", msg);
		return 1;
	}
	return 0;
}

/* --scenario S[,S...]: some of the agent's scenarios, or all */
static int
opt_scenario(const struct qs_opt *opt, const char *val, void *ctx)
{
	struct bopts *o = ctx;
	const char *p = val;
	uint32_t mask = 0;

	if (!strcmp(val, "all")) {
		o->scn_mask = (1u << QS_AGENT_SCN__COUNT) - 1;
		return 0;
	}
	while (*p) {
		size_t n = strcspn(p, ",");
		int s;

		for (s = 0; s < QS_AGENT_SCN__COUNT; s++) {
			const char *name = qs_agent_scn_name((enum qs_agent_scn)s);

			if (strlen(name) == n && !strncmp(p, name, n))
				break;
		}
		if (s == QS_AGENT_SCN__COUNT) {
			fprintf(stderr,
				"qsteer-train batch: %s %s: '%.*s' is not static, bursty, "
				"adversarial, long-context or all\n",
				opt->name, val, (int)n, p);
			return -1;
		}
		mask |= 1u << s;
		p += n;
		if (*p == ',' && *++p == 0)
			break;
	}
	if (!mask || p[-1] == ',') {
		fprintf(stderr, "qsteer-train batch: %s '%s': a comma list of scenario names\n",
			opt->name, val);
		return -1;
	}
	o->scn_mask = mask;
	return 0;
}

/* --load X: an open lower bound, which a DOUBLE row's closed range cannot say */
static int
opt_load(const struct qs_opt *opt, const char *val, void *ctx)
{
	struct bopts *o = ctx;
	char *end;
	double x = strtod(val, &end);

	if (end == val || *end || !(x > 0.05 && x <= 4)) {
		fprintf(stderr, "qsteer-train batch: %s %s: needs 0.05 < X <= 4\n", opt->name, val);
		return -1;
	}
	o->eval_load = x;
	return 0;
}

#define STR_(x) #x
#define STR(x)	STR_(x)

int
qs_train_batch_main(int argc, char **argv)
{
	struct bopts o;
	uint32_t requests = 0;
	const char *requests_seen = NULL, *select_seeds_seen = NULL, *files[1];
	unsigned n_files = 0;
	/* .seen = &o.train_only: the last option given that eval does not take, so eval
	 * can name it */
	const struct qs_opt opts[] = {
	    QS_OPT_HELP_FLAG("--help"),
	    QS_OPT_HELP_FLAG("-h"),
	    QS_OPT_FLAG("--quiet", &o.quiet, 1),
	    QS_OPT_STR("--out", &o.out, .seen = &o.train_only),
	    QS_OPT_STR("--log", &o.log, .seen = &o.train_only),
	    QS_OPT_FN("--scenario", opt_scenario),
	    QS_OPT_FN("--load", opt_load),
	    QS_OPT_STR("--profile", &o.profile),
	    QS_OPT_U64("--seed", &o.seed, 0, UINT64_MAX, "not a number", .seen = &o.train_only),
	    QS_OPT_U64("--created", &o.created, 0, UINT64_MAX, "not a number",
		       .seen = &o.train_only),
	    QS_OPT_U32("--iters", &o.iters, 1, 100000, "needs 1..100000", .seen = &o.train_only),
	    QS_OPT_U32("--episodes", &o.episodes, 1, MAX_EPISODES, "needs 1.." STR(MAX_EPISODES),
		       .seen = &o.train_only),
	    QS_OPT_U32("--threads", &o.threads, 1, MAX_THREADS, "needs 1.." STR(MAX_THREADS),
		       .seen = &o.train_only),
	    /* per training episode or per eval run, by the command: set after the parse */
	    QS_OPT_U32("--requests", &requests, 1, 100000, "needs 1..100000",
		       .seen = &requests_seen),
	    QS_OPT_U32("--seeds", &o.seeds, 0, 1000, "needs 0..1000"),
	    QS_OPT_U32("--select-every", &o.select_every, 1, 100000, "needs 1..100000 iterations",
		       .seen = &o.train_only),
	    QS_OPT_U32("--select-seeds", &o.select_seeds, 1, 16, "needs 1..16",
		       .seen = &select_seeds_seen),
	    QS_OPT_ARGS(files, &n_files, 0, 1),
	    QS_OPT_END,
	};

	memset(&o, 0, sizeof(o));
	o.iters = 400;
	o.episodes = 8;
	o.requests = 200;
	o.threads = 2;
	o.seeds = 5;
	o.eval_requests = 2000;
	o.eval_load = 0; /* each scenario's own load */
	o.seed = 1;
	o.created = 0;
	o.scn_only = -1;
	o.scn_mask = 0;
	o.select_seeds = 3;
	if (argc < 2)
		return busage(stderr);
	o.cmd = argv[1];
	switch (qs_opt_parse("qsteer-train batch", opts, argc, argv, 2, NULL, &o)) {
	case QS_OPT_OK:
		break;
	case QS_OPT_HELP:
		busage(stdout);
		return 0;
	case QS_OPT_E_UNKNOWN:
		return busage(stderr);
	default:
		return 2;
	}
	o.policy = n_files ? files[0] : NULL;
	if (select_seeds_seen && !o.select_every) {
		fprintf(stderr, "qsteer-train batch: --select-seeds needs --select-every\n");
		return 2;
	}
	if (o.profile) {
		/* refused here, with the usage errors, before any episode runs */
		struct qs_benv_cfg c;
		uint32_t mask_given = o.scn_mask; /* benv_setup fills in the default */
		char msg[512];

		if (benv_setup(&c, &o, msg, sizeof(msg)) != QS_OK) {
			fprintf(stderr, "qsteer-train batch: --profile %s\n", msg);
			return 2;
		}
		o.scn_mask = mask_given;
	}
	if (requests_seen)
		*(!strcmp(o.cmd, "eval") ? &o.eval_requests : &o.requests) = requests;
	if (!strcmp(o.cmd, "train")) {
		if (!o.out || o.policy) {
			fprintf(stderr, "qsteer-train batch train: needs --out FILE.q8 and no file "
					"argument\n");
			return 2;
		}
		if (o.requests > MAX_TRAIN_REQUESTS) {
			fprintf(stderr,
				"qsteer-train batch train: --requests %u: 1..%u (an "
				"episode's decisions must fit the %u-decision buffer)\n",
				o.requests, MAX_TRAIN_REQUESTS, EP_CAP);
			return 2;
		}
		if (out_dir_writable(o.out) != 0)
			return 2;
		return cmd_train(&o);
	}
	if (!strcmp(o.cmd, "eval")) {
		if (!o.policy) {
			fprintf(stderr, "qsteer-train batch eval: needs a policy file\n");
			return 2;
		}
		if (o.train_only) {
			fprintf(stderr, "qsteer-train batch eval: %s applies to train only\n",
				o.train_only);
			return 2;
		}
		if (!o.seeds) {
			fprintf(stderr, "qsteer-train batch eval: --seeds 0: at least 1\n");
			return 2;
		}
		return cmd_eval(&o);
	}
	return busage(stderr);
}
