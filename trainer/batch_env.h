/*
 * batch_env.h - the batching environment (issue 7): the agent's own scheduler
 * (libqsteer-agent: waiting queue, running set, paged KV, preemption) with the model
 * executor, driven in virtual time over the agent bench's arrivals -- the
 * simulator's static, bursty, adversarial multi-tenant and long-context scenarios
 * (sim/scenarios), on one backend with the agent's profile -- where the trainer's
 * float policy takes every iteration's batching decision.
 *
 * One step is one scheduler iteration: the policy sees the iteration's batch
 * features (batch_features.h, the integers the int8 classifier will see) and picks
 * an action of the action table (cap, token budget, KV reserve, admission order,
 * coalescing). Rewards (docs/agent.md) are credited to the decision whose iteration
 * settled them:
 *   +r_met      per request that completes within its scenario SLO class's limits,
 *   -r_late     per first token later than its TTFT SLO (the request is lost; the
 *               penalty says so seconds before its completion would),
 *   -r_preempt  per sequence preempted (its KV blocks recomputed later).
 * Summed over an episode that is SLO attainment with the two penalties.
 */
#ifndef QSTEER_TRAINER_BATCH_ENV_H
#define QSTEER_TRAINER_BATCH_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "ppo.h"
#include "qsteer/agent_bench.h"
#include "qsteer/q8.h"

/* Training seeds start here, so no training episode repeats an evaluation seed. */
#define QS_BENV_TRAIN_SEED_BASE (1ull << 40)

struct qs_benv_cfg {
	struct qs_agent_cfg agent; /* hardware profile and scheduler settings */
	uint32_t requests;	   /* per training episode */
	float load_lo, load_hi;	   /* offered load drawn uniformly per episode */
	float scn_weight[QS_AGENT_SCN__COUNT];
	float r_met, r_late, r_preempt;
	uint32_t n_actions;
	struct qs_q8_action action[QS_Q8_MAX_ACTIONS];
};

/* Defaults: the default profile, 200 requests, load 0.7..1.3, all three scenarios,
 * rewards 1 / 0.5 / 0.05, the standard action table. */
void qs_benv_defaults(struct qs_benv_cfg *c);
/*
 * The standard action table for a profile's limits: action 0 is the fixed strategy
 * (hardware cap and budget, oldest first); the others vary the cap, the budget, the
 * KV reserve, the order and coalescing. Returns the count.
 */
uint32_t qs_benv_action_table(const struct qs_sim_profile *p, struct qs_q8_action *a, uint32_t cap);

/* Who decides in an episode: the float learner (a classifier-head qs_ppo_agent,
 * sampled or greedy), or nothing (then strategy decides: a heuristic or an int8
 * policy). */
struct qs_benv_actor {
	const struct qs_ppo_agent *ag;
	struct qs_ppo_actor *scratch;
	struct qs_rng *rng;
	int greedy;
	struct qs_ppo_buf *out; /* decisions recorded here, env 0 (may be NULL) */
};

/*
 * Run one episode: scenario scn, seed, load (0: the scenario's own), the first
 * `requests` requests of its stream -- or the stream arr (may be NULL) made from the
 * same four by qs_benv_arrivals, which then are not read. With actor->ag set, the
 * float policy decides every iteration and, when actor->out is set, the decisions,
 * log-probabilities, values and rewards are appended to it (the last one marked
 * done); otherwise s decides. res gets the bench's figures.
 */
int qs_benv_episode(const struct qs_benv_cfg *c, enum qs_agent_scn scn, uint64_t seed, double load,
		    uint32_t requests, const struct qs_agent_bench_arrivals *arr,
		    struct qs_benv_actor *actor, struct qs_batch_strategy *s,
		    struct qs_agent_bench_result *res, char *msg, size_t msglen);

/*
 * The stream of an episode, made once: building it runs the simulator (its capacity
 * probes and a backend), which costs many times the episode, so an evaluation of
 * several policies on one (scenario, seed) shares it. Free with
 * qs_agent_bench_arrivals_free.
 */
int qs_benv_arrivals(const struct qs_benv_cfg *c, enum qs_agent_scn scn, uint64_t seed, double load,
		     uint32_t requests, struct qs_agent_bench_arrivals *arr, char *msg,
		     size_t msglen);

#endif /* QSTEER_TRAINER_BATCH_ENV_H */
