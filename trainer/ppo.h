/*
 * ppo.h - the trainer's one policy-gradient core: PPO (clipped surrogate, GAE(lambda),
 * value loss, entropy bonus, minibatch epochs), REINFORCE with a learned baseline and
 * A2C, over a rollout buffer of decisions, for both of qsteer's learned policies. What
 * differs between them is the action head (cfg.head):
 *
 *  - QS_PPO_HEAD_SCORER, the router (DESIGN.md 3.2): a decision is one row per
 *    candidate, the policy MLP scores every row (one output), and a softmax over the
 *    eligible candidates is the routing distribution. The value network sees a pooled
 *    summary of the decision -- the mean and the max over eligible candidates of each
 *    feature (2 * n_feat inputs) -- so it is, like the scorer, independent of
 *    candidate order and count.
 *  - QS_PPO_HEAD_CLASSIFIER, the agent's batching policy (issue 7): a decision is one
 *    state row (batch_features.h), the policy MLP gives one logit per action of the
 *    action table (n_actions outputs), softmax over all of them; the value network
 *    reads the same row.
 *
 * In both, a decision's logits are its rows' outputs in order (n_rows x n_out), the
 * action indexes them, and the value network shares no parameters with the policy
 * (so the exported int8 net is exactly what the policy gradient trained). Everything
 * else -- buffer, GAE, acting, the loss and its gradients, the update loop -- is
 * written once here; where the two learners summed or normalized differently before
 * they shared this core, ppo.c keeps each head's arithmetic (its head table), so a
 * fixed seed still trains the same bytes.
 *
 * The buffer is built for late rewards: the environment adapter pushes one decision
 * (rows, mask, action, logp, value) and gets its index back; when the request that
 * decision placed completes, it credits (index, reward). Rewards may arrive in any
 * order until qs_ppo_buf_finish. A decision's env id orders decisions into per-env
 * trajectories for GAE, so many environments can share one buffer.
 */
#ifndef QSTEER_TRAINER_PPO_H
#define QSTEER_TRAINER_PPO_H

#include <stddef.h>
#include <stdint.h>

#include "qsteer/features.h" /* QS_MAX_CANDIDATES: one u64 eligibility mask */

#include "adam.h"
#include "mlp.h"
#include "rng.h"

/*
 * The learners over this core. PPO: clipped surrogate, cfg.epochs passes. REINFORCE:
 * -A log pi with Monte Carlo returns (lambda 1) against the learned baseline, one
 * pass. A2C: the same unclipped -A log pi, one pass, but A is GAE(cfg.lambda) from
 * the critic's bootstrapped values, as in synchronous advantage actor-critic. DQN
 * (dqn.h): the scorer's output is Q(s, a), learned from a replay of transitions
 * against a target network; this core only acts for it (epsilon-greedy) and keeps
 * its network, optimizer and checkpoint.
 */
enum qs_algo { QS_ALGO_PPO = 0, QS_ALGO_REINFORCE, QS_ALGO_A2C, QS_ALGO_DQN, QS_ALGO_COUNT };

/* "ppo", "reinforce", "a2c", "dqn"; "?" out of range. */
const char *qs_algo_name(enum qs_algo a);
/* The algorithm named s; QS_E_VALUE when none is. */
int qs_algo_parse(const char *s, enum qs_algo *out);

enum qs_ppo_head {
	QS_PPO_HEAD_SCORER = 0, /* router: a row per candidate, one score each */
	QS_PPO_HEAD_CLASSIFIER, /* batching: one state row, one logit per action */
};

/* A decision's logits share one u64 eligibility mask. */
#define QS_PPO_MAX_LOGITS 64

struct qs_ppo_cfg {
	enum qs_algo algo;
	enum qs_ppo_head head;
	uint32_t n_actions;	 /* classifier: logits (2..QS_PPO_MAX_LOGITS); scorer: unused */
	uint32_t n_feat;	 /* inputs per row (QS_FR_COUNT; classifier QS_FB_COUNT) */
	uint32_t h1, h2;	 /* policy hidden sizes */
	uint32_t vh;		 /* value network hidden size (two hidden layers) */
	float gamma, lambda;	 /* per-decision discount; GAE lambda (REINFORCE uses 1) */
	float clip;		 /* PPO ratio clip epsilon */
	float vf_coef, ent_coef; /* loss weights */
	uint32_t epochs;	 /* PPO epochs per batch (REINFORCE: 1) */
	uint32_t minibatch;	 /* decisions per minibatch */
	int norm_adv;		 /* normalize advantages over the batch */
	/* The rest are the scorer's; a classifier needs them 0 (and algo PPO). */
	float share_coef; /* shared-variance penalty (quantization friendliness), 0 = off */
	/*
	 * Consistency with the int8 version during RL (0 = off): per minibatch, the
	 * scorer is quantized (ranges: the consist_pct quantile over the update's batch)
	 * and the loss adds consist_coef times the consistency terms of consistency QAT
	 * (quantize.h): cross-entropy of the fake-quantized scores / consist_temp towards
	 * the float argmax (straight-through) plus that of the float scores towards the
	 * fake-quantized argmax. Not applied during behaviour cloning.
	 */
	float consist_coef, consist_temp, consist_pct;
	/* Score centering (0 = off): adds center_coef * mean over decisions of the squared
	 * mean score of the decision's eligible candidates (the softmax ignores it). */
	float center_coef;
	struct qs_adam_cfg adam_pi, adam_vf;
};

/* Scorer defaults: 16 -> 32 -> 16 -> 1, value 32 -> 32 -> 32 -> 1, gamma 0.99,
 * lambda 0.95. */
void qs_ppo_defaults(struct qs_ppo_cfg *c);
/* Classifier defaults: n_feat -> 32 -> 32 -> n_actions, value n_feat -> 64 -> 64 -> 1,
 * gamma 0.995, lambda 0.95, 4 epochs of 1024, learning rates 1e-3. */
void qs_ppo_classifier_defaults(struct qs_ppo_cfg *c, uint32_t n_feat, uint32_t n_actions);

/* ---- rollout buffer ------------------------------------------------------------ */

struct qs_ppo_buf {
	uint32_t n_feat, n_env;
	uint32_t n_out; /* logits per row: 1 (scorer) or the classifier's n_actions */
	uint32_t cap, cap_rows;
	uint32_t n, n_rows;
	uint8_t *rows;	   /* [cap_rows][n_feat], features 0..127 */
	uint32_t *row_off; /* [cap + 1]: decision i's rows are row_off[i] .. row_off[i+1] */
	uint64_t *mask;
	uint16_t *action;
	uint16_t *env;
	uint8_t *done; /* the episode of env[i] ended after decision i */
	float *logp, *value, *reward;
	float *adv, *ret; /* filled by qs_ppo_buf_finish */
	float *boot;	  /* [n_env] value of each env's state after its last decision */
	float *scratch;	  /* [2 n_env] for qs_ppo_buf_finish */
};

/* A buffer of scorer decisions (n_out 1). */
int qs_ppo_buf_init(struct qs_ppo_buf *b, uint32_t n_env, uint32_t cap, uint32_t cap_rows,
		    uint32_t n_feat, char *msg, size_t msglen);
/* A buffer for c's head (n_feat and n_out from c). */
int qs_ppo_buf_init_head(struct qs_ppo_buf *b, const struct qs_ppo_cfg *c, uint32_t n_env,
			 uint32_t cap, uint32_t cap_rows, char *msg, size_t msglen);
void qs_ppo_buf_free(struct qs_ppo_buf *b);
void qs_ppo_buf_clear(struct qs_ppo_buf *b);
/* Record a decision: n_rows rows, mask over its n_rows x n_out logits, the action one
 * of them; QS_E_SIZE when full. */
int qs_ppo_buf_push(struct qs_ppo_buf *b, uint32_t env, const uint8_t *rows, uint32_t n_rows,
		    uint64_t mask, uint32_t action, float logp, float value, uint32_t *index);
/* Append src's decisions (rewards and episode ends included) to dst, env ids kept;
 * QS_E_SIZE when they do not fit, QS_E_SHAPE when the buffers' rows differ. */
int qs_ppo_buf_append(struct qs_ppo_buf *dst, const struct qs_ppo_buf *src);
/* Add reward to the decision that placed a request (late credit). */
int qs_ppo_buf_credit(struct qs_ppo_buf *b, uint32_t index, float reward);
/* The episode ends after decision index (nothing is bootstrapped past it). */
int qs_ppo_buf_end_episode(struct qs_ppo_buf *b, uint32_t index);
/* Bootstrap value for env's unfinished trajectory (0 if never set). */
void qs_ppo_buf_bootstrap(struct qs_ppo_buf *b, uint32_t env, float value);
/* GAE(lambda): adv and ret (= adv + value) for every decision. */
void qs_ppo_buf_finish(struct qs_ppo_buf *b, float gamma, float lambda);

/* ---- acting -------------------------------------------------------------------- */

struct qs_ppo_agent;

/* Per-thread scratch for choosing actions; reads the agent's parameters only. */
struct qs_ppo_actor {
	struct qs_mlp_ws ws_pi, ws_vf;
	float x[QS_MAX_CANDIDATES * 64];
	float summary[128];
	float p[QS_PPO_MAX_LOGITS];
	float s[QS_PPO_MAX_LOGITS];
};

int qs_ppo_actor_init(struct qs_ppo_actor *a, const struct qs_ppo_agent *ag, char *msg,
		      size_t msglen);
void qs_ppo_actor_free(struct qs_ppo_actor *a);
/* Freeze the agent's current parameters into the actor (transposed once) until
 * unpinned; only valid while the parameters do not change (one rollout). */
void qs_ppo_actor_pin(struct qs_ppo_actor *a, const struct qs_ppo_agent *ag);
void qs_ppo_actor_unpin(struct qs_ppo_actor *a);
/* Threads for qs_ppo_update's shards (results do not depend on it). */
void qs_ppo_set_threads(struct qs_ppo_agent *ag, uint32_t n);

/*
 * Run the policy on one decision's rows (a scorer's candidates, a classifier's one
 * state row) and pick one of its logits: sampled from the masked softmax (DQN:
 * epsilon-greedy, explore_eps), or the argmax when greedy. Writes the action, its log-probability
 * and the state value (logp and value may be NULL; value NULL skips the value network). QS_E_ARG
 * when nothing is eligible or the logits exceed QS_PPO_MAX_LOGITS.
 */
int qs_ppo_act(const struct qs_ppo_agent *ag, struct qs_ppo_actor *a, const uint8_t *rows,
	       uint32_t n_rows, uint64_t mask, struct qs_rng *rng, int greedy, uint32_t *action,
	       float *logp, float *value);
/* Every logit of a decision of ag's head with n_rows rows eligible. */
uint64_t qs_ppo_all(const struct qs_ppo_agent *ag, uint32_t n_rows);

/* n feature bytes as the policy net's inputs (x / 127, rounded as ag's head does). */
void qs_ppo_rows_in(const struct qs_ppo_agent *ag, const uint8_t *rows, size_t n, float *x);

/* The value network's input: mean and max of x/127 over eligible rows. */
void qs_ppo_summary(const uint8_t *rows, uint32_t n_cand, uint64_t mask, uint32_t n_feat,
		    float *out);

/* ---- learning ------------------------------------------------------------------ */

struct qs_ppo_stats {
	float pi_loss, v_loss, entropy, approx_kl, clip_frac;
	float grad_norm_pi, grad_norm_vf;
	float shared; /* mean between-decision share of hidden/score variance */
	uint32_t minibatches;
};

/*
 * A scorer's minibatch is split into QS_PPO_SHARDS fixed, contiguous shards whose
 * gradients are computed independently (on threads when the agent has more than
 * one) and summed in shard order: the result depends on the seed only, not on the
 * thread count. A classifier's minibatch is one shard.
 */
#define QS_PPO_SHARDS 2

struct qs_ppo_shard {
	struct qs_mlp_ws ws_pi, ws_vf;
	float *x, *xs, *dscore, *dval, *prob;
	float *dh[2], *dm; /* shared-variance penalty: hidden-output gradients, means */
	float *g_pi, *g_vf;
	/* per decision: policy-loss term, entropy, KL term, value error, clip flags */
	float *t_pi, *t_h, *t_kl, *t_dv;
	uint8_t *t_clip;
	/* one job */
	const struct qs_ppo_buf *b;
	const uint32_t *idx;
	uint32_t n;
	float inv;
	float loss;
	struct qs_ppo_stats st;
	struct qs_ppo_agent *ag;
};

struct qs_ppo_agent {
	struct qs_ppo_cfg cfg;
	struct qs_mlp pi, vf;
	struct qs_adam opt_pi, opt_vf;
	float *g_pi, *g_vf; /* the minibatch gradient (sum of the shards') */
	uint32_t cap_rows;
	uint32_t n_out;	    /* logits per row: 1 (scorer) or n_actions (classifier) */
	uint32_t n_shards;  /* gradient shards per minibatch (QS_PPO_SHARDS or 1) */
	uint32_t shard_cap; /* decisions per shard */
	struct qs_ppo_shard sh[QS_PPO_SHARDS];
	int bc;		    /* behaviour cloning: the policy loss is -log pi(recorded action) */
	uint32_t n_threads; /* threads for the update (1 unless set; results do not depend on it) */
	uint32_t *perm;
	uint32_t perm_cap;
	struct qs_rng rng;   /* minibatch shuffling */
	uint64_t updates;    /* calls to qs_ppo_update */
	void *qc;	     /* consistency scratch (consist_coef > 0), allocated on first use */
	float consist_agree; /* last update: float-vs-fake-quantized argmax agreement */
	/* DQN's exploration: a sampled (not greedy) action is uniform over the eligible
	 * candidates with this probability, else the argmax of Q. The training loop
	 * anneals it; other algorithms sample their softmax and ignore it. */
	float explore_eps;
};

/* Build the networks (initialized from seed) and the optimizers. */
int qs_ppo_agent_init(struct qs_ppo_agent *ag, const struct qs_ppo_cfg *c, uint64_t seed, char *msg,
		      size_t msglen);
void qs_ppo_agent_free(struct qs_ppo_agent *ag);

/*
 * Loss and gradients over decisions idx[0..n) (n <= cfg.minibatch) of a finished
 * buffer, computed as n_shards gradient shards summed in order: zeroes g_pi and
 * g_vf, then fills them. Returns the total loss (policy + vf_coef value - ent_coef
 * entropy, means over the n decisions). Used by qs_ppo_update and by the
 * finite-difference tests.
 */
float qs_ppo_loss_grad(struct qs_ppo_agent *ag, const struct qs_ppo_buf *b, const uint32_t *idx,
		       uint32_t n, struct qs_ppo_stats *st);

/* Normalize advantages (if configured), then the configured epochs of minibatches. */
int qs_ppo_update(struct qs_ppo_agent *ag, struct qs_ppo_buf *b, struct qs_ppo_stats *st, char *msg,
		  size_t msglen);

#endif /* QSTEER_TRAINER_PPO_H */
