/*
 * batch_env.c - the batching environment (batch_env.h): the agent bench's episode
 * loop on the simulator's scenarios, with the trainer's policy in the scheduler's
 * decision hook and the rewards taken from the bench's per-iteration judgement
 * against the scenario's SLOs.
 */
#include <string.h>

#include "batch_env.h"
#include "util.h"

void
qs_benv_defaults(struct qs_benv_cfg *c)
{
	memset(c, 0, sizeof(*c));
	qs_agent_cfg_default(&c->agent);
	/* 200 requests of a simulator scenario make 1,200-5,000 scheduler iterations on
	 * one backend (loads 0.7-1.3; the learning-rate schedule assumes 4,000); loads reach
	 * 1.3 because below ~0.9 every sensible action meets nearly every SLO (no
	 * signal), while the eval scenarios run at 0.6, 0.75 and 1.05. */
	c->requests = 200;
	c->load_lo = 0.7f;
	c->load_hi = 1.3f;
	/* long-context is opt-in (--scenario), so the default recipe is what it was */
	for (int i = 0; i < QS_AGENT_SCN__COUNT; i++)
		c->scn_weight[i] = i != QS_AGENT_SCN_LONG_CONTEXT;
	c->r_met = 1.0f;
	c->r_late = 0.5f;
	c->r_preempt = 0.05f;
	c->n_actions = qs_benv_action_table(&c->agent.prof, c->action, QS_Q8_MAX_ACTIONS);
}

uint32_t
qs_benv_action_table(const struct qs_sim_profile *p, struct qs_q8_action *a, uint32_t cap)
{
	/* Shifts of the hardware cap and budget, so the table fits any profile: the
	 * budget decides how much prefill an iteration carries (and so how long the
	 * decodes riding with it wait), the cap how many sequences share it. */
	static const struct {
		uint8_t seq_shift, tok_shift, reserve, flags;
	} t[] = {
	    {0, 0, 0, QS_Q8_ACT_ORDER_FCFS}, /* = the fixed strategy */
	    {0, 0, 0, QS_Q8_ACT_ORDER_SHORTEST},
	    {0, 0, 0, QS_Q8_ACT_ORDER_PRIORITY},
	    {0, 1, 0, QS_Q8_ACT_ORDER_FCFS},
	    {0, 1, 0, QS_Q8_ACT_ORDER_SHORTEST},
	    {0, 1, 0, QS_Q8_ACT_ORDER_PRIORITY},
	    {0, 2, 0, QS_Q8_ACT_ORDER_FCFS},
	    {0, 2, 0, QS_Q8_ACT_ORDER_SHORTEST},
	    {0, 2, 0, QS_Q8_ACT_ORDER_PRIORITY},
	    {0, 3, 10, QS_Q8_ACT_ORDER_PRIORITY},
	    {0, 3, 0, QS_Q8_ACT_ORDER_SHORTEST},
	    {0, 4, 0, QS_Q8_ACT_ORDER_FCFS},
	    {2, 0, 0, QS_Q8_ACT_ORDER_FCFS},
	    {1, 1, 0, QS_Q8_ACT_ORDER_PRIORITY},
	    {0, 0, 0, QS_Q8_ACT_ORDER_FCFS | QS_Q8_ACT_COALESCE},
	    {0, 0, 10, QS_Q8_ACT_ORDER_SHORTEST},
	};

	/* With a draft model: speculation depths on the fixed shape, on the half budget
	 * in priority order, on shortest-first and on the latency heuristic's shape;
	 * the depth worth running falls with the batch and rises with the context the
	 * decodes read, which the features show (running sequences, their context, the
	 * iteration time) -- the policy learns where. */
	static const struct {
		uint8_t tok_shift, reserve, depth, flags;
	} sp[] = {
	    {0, 0, 1, QS_Q8_ACT_ORDER_FCFS},	  {0, 0, 2, QS_Q8_ACT_ORDER_FCFS},
	    {0, 0, 3, QS_Q8_ACT_ORDER_FCFS},	  {0, 0, 4, QS_Q8_ACT_ORDER_FCFS},
	    {0, 0, 6, QS_Q8_ACT_ORDER_FCFS},	  {0, 0, 8, QS_Q8_ACT_ORDER_FCFS},
	    {1, 0, 1, QS_Q8_ACT_ORDER_PRIORITY},  {1, 0, 2, QS_Q8_ACT_ORDER_PRIORITY},
	    {1, 0, 4, QS_Q8_ACT_ORDER_PRIORITY},  {0, 0, 2, QS_Q8_ACT_ORDER_SHORTEST},
	    {0, 0, 4, QS_Q8_ACT_ORDER_SHORTEST},  {3, 10, 2, QS_Q8_ACT_ORDER_PRIORITY},
	    {3, 10, 4, QS_Q8_ACT_ORDER_PRIORITY},
	};
	uint32_t n = 0;

	for (uint32_t i = 0; i < sizeof(t) / sizeof(t[0]) && n < cap; i++, n++) {
		a[n].max_seqs = QS_RC_MAX(1u, p->max_seqs >> t[i].seq_shift);
		a[n].max_tokens = QS_RC_MAX(1u, p->max_tokens >> t[i].tok_shift);
		a[n].kv_reserve_pct = t[i].reserve;
		a[n].flags = t[i].flags;
	}
	for (uint32_t i = 0; i < sizeof(sp) / sizeof(sp[0]) && n < cap; i++) {
		if (sp[i].depth > p->spec_max_depth)
			continue;
		a[n].max_seqs = p->max_seqs;
		a[n].max_tokens = QS_RC_MAX(1u, p->max_tokens >> sp[i].tok_shift);
		a[n].kv_reserve_pct = sp[i].reserve;
		a[n].flags = sp[i].flags | (uint32_t)sp[i].depth << QS_Q8_ACT_SPEC_SHIFT;
		n++;
	}
	return n;
}

struct episode {
	const struct qs_benv_cfg *c;
	struct qs_benv_actor *actor;
	uint32_t start;	   /* first decision of this episode in actor->out */
	uint32_t overflow; /* decisions the buffer had no room for */
};

static void
decide(void *ctx, const struct qs_batch_view *v, struct qs_batch_decision *d)
{
	struct episode *e = ctx;
	struct qs_benv_actor *ac = e->actor;
	struct qs_ppo_buf *b = ac->out;
	uint8_t x[QS_FB_COUNT];
	float logp, value;
	uint32_t a = 0;

	qs_batch_features_v1(&v->st, x);
	qs_ppo_act(ac->ag, ac->scratch, x, 1, qs_ppo_all(ac->ag, 1), ac->rng, ac->greedy, &a,
		   b ? &logp : NULL, b ? &value : NULL);
	if (b && qs_ppo_buf_push(b, 0, x, 1, qs_ppo_all(ac->ag, 1), a, logp, value, NULL) != QS_OK)
		e->overflow++;
	qs_batch_apply_action(&e->c->action[a], d);
	d->action = (uint16_t)a;
}

static void
settle(void *ctx, const struct qs_agent_iter *it, const struct qs_agent_bench_step *st)
{
	struct episode *e = ctx;
	struct qs_ppo_buf *b = e->actor ? e->actor->out : NULL;

	if (!b || b->n == e->start || e->overflow) /* none of this episode's yet */
		return;
	qs_ppo_buf_credit(b, b->n - 1,
			  e->c->r_met * (float)st->done_met - e->c->r_late * (float)st->first_late -
			      e->c->r_preempt * (float)it->preempted);
}

static void
bench_cfg(enum qs_agent_scn scn, uint64_t seed, double load, uint32_t requests,
	  struct qs_agent_bench_cfg *bc)
{
	qs_agent_bench_cfg_default(bc, scn);
	bc->seed = seed;
	bc->load = load;
	bc->requests = requests;
}

int
qs_benv_arrivals(const struct qs_benv_cfg *c, enum qs_agent_scn scn, uint64_t seed, double load,
		 uint32_t requests, struct qs_agent_bench_arrivals *arr, char *msg, size_t msglen)
{
	struct qs_agent_bench_cfg bc;

	bench_cfg(scn, seed, load, requests, &bc);
	return qs_agent_bench_arrivals(&bc, &c->agent, arr, msg, msglen);
}

int
qs_benv_episode(const struct qs_benv_cfg *c, enum qs_agent_scn scn, uint64_t seed, double load,
		uint32_t requests, const struct qs_agent_bench_arrivals *arr,
		struct qs_benv_actor *actor, struct qs_batch_strategy *s,
		struct qs_agent_bench_result *res, char *msg, size_t msglen)
{
	struct qs_agent_bench_cfg bc;
	struct qs_agent_exec ex;
	struct qs_batch_strategy ext;
	struct episode e;
	int rc;

	memset(&e, 0, sizeof(e));
	e.c = c;
	e.actor = actor && actor->ag ? actor : NULL;
	if (e.actor && actor->out)
		e.start = actor->out->n;
	bench_cfg(scn, seed, load, requests, &bc);
	bc.arrivals = arr;
	bc.on_iter = settle;
	bc.on_iter_ctx = &e;
	if (e.actor) {
		memset(&ext, 0, sizeof(ext));
		ext.kind = QS_BATCH_K_EXTERNAL;
		snprintf(ext.name, sizeof(ext.name), "float");
		ext.ext = decide;
		ext.ext_ctx = &e;
		s = &ext;
	} else if (!s) {
		return qs_fail(msg, msglen, QS_E_ARG, "batch: an episode needs a policy");
	}
	rc = qs_agent_exec_model(&c->agent.prof, &ex, msg, msglen);
	if (rc != QS_OK)
		return rc;
	rc = qs_agent_bench_run(&bc, &c->agent, s, &ex, res, msg, msglen);
	qs_agent_exec_destroy(&ex);
	if (rc != QS_OK)
		return rc;
	if (e.overflow)
		return qs_fail(msg, msglen, QS_E_SIZE,
			       "batch: the rollout buffer (%u decisions) filled up; %u "
			       "decisions of a %s episode were not recorded",
			       actor->out->cap, e.overflow, qs_agent_scn_name(scn));
	if (e.actor && actor->out && actor->out->n > e.start)
		qs_ppo_buf_end_episode(actor->out, actor->out->n - 1);
	return QS_OK;
}
