/*
 * dqn.h - deep Q-learning for the router (issue 14): the scorer network of a
 * qs_ppo_agent (ppo.h) read as Q(s, a), one output per candidate row, learned from a
 * replay of transitions against a target network (Mnih et al., Nature 2015), with
 * double DQN's target (van Hasselt et al., AAAI 2016) by default.
 *
 * Why it reuses the PPO core's agent: the exported .q8 is the argmax of the scorer,
 * whatever taught it, so DQN keeps the same network shape, export, quantization and
 * checkpoint; only the learning rule differs. The agent acts epsilon-greedily
 * (qs_ppo_act with explore_eps) and its value network goes unused.
 *
 * Transitions come from finished rollout buffers (rewards credited late, as the
 * simulator delivers them): decision i of an environment is followed by the next
 * decision the same environment recorded, unless its episode ended there (then the
 * target is the reward alone). The last decision of each environment in a rollout
 * has no recorded successor and is not a transition. The replay is a ring of the
 * last cfg.replay rollouts; sampling is uniform over their transitions.
 *
 * Determinism: sampling draws from the agent-independent stream of the seed, and
 * the gradient is one pass in sample order, so a seed trains the same bytes.
 */
#ifndef QSTEER_TRAINER_DQN_H
#define QSTEER_TRAINER_DQN_H

#include <stddef.h>
#include <stdint.h>

#include "mlp.h"
#include "ppo.h"
#include "rng.h"

struct qs_dqn_cfg {
	uint32_t replay;       /* rollouts kept (the ring's slots), 1..256 */
	uint32_t batch;	       /* transitions per gradient step, 1..4096 */
	uint32_t steps;	       /* gradient steps per stored rollout */
	uint32_t target_every; /* gradient steps between target-network syncs, >= 1 */
	uint32_t warmup;       /* stored rollouts before the first gradient step */
	float gamma;	       /* per-decision discount, [0, 1] */
	float huber;	       /* TD errors beyond this are penalized linearly, > 0 */
	int double_q;	       /* 1: the online net picks a', the target net values it */
	/* Exploration: epsilon falls linearly from eps_start to eps_end over the first
	 * eps_frac of the run's decisions, then stays. */
	float eps_start, eps_end, eps_frac;
};

/* replay 16, batch 256, 16 steps, target every 250 steps, warmup 2, gamma 0.99,
 * Huber 1, double DQN, epsilon 0.5 -> 0.02 over the first 30%. */
void qs_dqn_defaults(struct qs_dqn_cfg *c);

/* Epsilon after step of total decisions (the schedule above). */
float qs_dqn_epsilon(const struct qs_dqn_cfg *c, uint64_t step, uint64_t total);

struct qs_dqn_stats {
	float td_loss;	   /* mean Huber loss of the last step's batch */
	float q_mean;	   /* mean Q(s, a) over it */
	float target_mean; /* mean target over it */
	uint32_t steps;	   /* gradient steps taken by this update */
	uint64_t replay;   /* transitions in the replay */
};

struct qs_dqn {
	struct qs_dqn_cfg cfg;
	struct qs_ppo_buf *slot; /* [replay] copies of finished rollouts */
	uint32_t **trans;	 /* [replay][cap]: the slot's transitions (decision indices) */
	uint32_t **succ;	 /* [replay][cap]: each decision's successor, or a sentinel */
	uint32_t *n_trans;	 /* [replay] */
	uint32_t head, filled;
	struct qs_mlp target;
	struct qs_mlp_ws ws_sa, ws_on, ws_tg;
	float *x_sa, *x_next, *ds, *y;
	const struct qs_ppo_buf **pick_b; /* [batch] the sampled transitions */
	uint32_t *pick_i, *pick_next;
	struct qs_rng rng;
	uint64_t grad_steps;
};

/* Terminal: the episode ended after the decision; none: no recorded successor. */
#define QS_DQN_TERMINAL UINT32_MAX
#define QS_DQN_NONE	(UINT32_MAX - 1)

/*
 * A replay of rollouts of up to cap decisions (cap_rows rows) from n_env
 * environments, for ag (a scorer; the target starts as a copy of its network).
 * QS_E_ARG for a classifier agent or a configuration out of range.
 */
int qs_dqn_init(struct qs_dqn *d, const struct qs_dqn_cfg *c, const struct qs_ppo_agent *ag,
		uint32_t n_env, uint32_t cap, uint32_t cap_rows, uint64_t seed, char *msg,
		size_t msglen);
void qs_dqn_free(struct qs_dqn *d);

/* Copy a finished rollout (qs_ppo_buf_finish not needed) into the ring, replacing
 * the oldest once full. */
int qs_dqn_store(struct qs_dqn *d, const struct qs_ppo_buf *b, char *msg, size_t msglen);
/* Transitions in the replay. */
uint64_t qs_dqn_transitions(const struct qs_dqn *d);

/* Copy the online network into the target. */
void qs_dqn_sync(struct qs_dqn *d, const struct qs_ppo_agent *ag);

/*
 * The TD loss over n (<= cfg.batch) transitions -- decision pick_i[k] of buffer
 * pick_b[k], followed by its decision pick_next[k] or QS_DQN_TERMINAL -- with the
 * target network held fixed: zeroes ag->g_pi and fills it with the loss's gradient.
 * Returns the mean Huber loss. Used by qs_dqn_update and the finite-difference test.
 */
float qs_dqn_loss_grad(struct qs_dqn *d, struct qs_ppo_agent *ag, uint32_t n,
		       struct qs_dqn_stats *st);

/* cfg.steps gradient steps on sampled batches (none before warmup), syncing the
 * target every cfg.target_every steps. */
int qs_dqn_update(struct qs_dqn *d, struct qs_ppo_agent *ag, struct qs_dqn_stats *st, char *msg,
		  size_t msglen);

#endif /* QSTEER_TRAINER_DQN_H */
