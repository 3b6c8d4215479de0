/*
 * batch_ppo.h - PPO for the batching agent's classifier policy (issue 7).
 *
 * The router learner (ppo.h) scores candidates with a shared per-row network; the
 * batching policy is a plain classifier: one state row of QS_FB_COUNT features
 * (batch_features.h) in, one logit per action of the action table out, softmax over
 * all actions. The value network reads the same row. Both are qs_mlp's, trained with
 * Adam (adam.h): clipped surrogate, GAE(lambda) over each episode's sequence of
 * iterations, value loss, entropy bonus, minibatch epochs, gradient-norm clipping
 * and the learning-rate schedule. The exported int8 classifier is exactly the
 * policy network trained here (batch_export.h).
 *
 * Unlike routing, every decision is followed by the next one on the same agent, so a
 * trajectory is the ordered list of an episode's decisions and rewards arrive on the
 * decision whose iteration settled them (batch_env.h says what they are).
 */
#ifndef QSTEER_TRAINER_BATCH_PPO_H
#define QSTEER_TRAINER_BATCH_PPO_H

#include <stddef.h>
#include <stdint.h>

#include "adam.h"
#include "mlp.h"
#include "qsteer/batch_features.h"
#include "rng.h"

#define QS_BPPO_MAX_ACTIONS 64

struct qs_bppo_cfg {
	uint32_t n_actions;
	uint32_t h1, h2;	 /* policy hidden sizes */
	uint32_t vh;		 /* value hidden size (two layers) */
	float gamma, lambda;	 /* per-iteration discount, GAE lambda */
	float clip;		 /* ratio clip epsilon */
	float vf_coef, ent_coef; /* loss weights */
	uint32_t epochs, minibatch;
	struct qs_adam_cfg adam_pi, adam_vf;
};

/* Defaults: 16 -> 32 -> 32 -> A, value 16 -> 64 -> 64 -> 1, gamma 0.995, lambda 0.95. */
void qs_bppo_defaults(struct qs_bppo_cfg *c, uint32_t n_actions);

/* One trajectory segment per episode, appended in episode order. */
struct qs_bppo_buf {
	uint32_t cap, n;
	uint8_t *x;	 /* [cap][QS_FB_COUNT] */
	uint16_t *action;
	uint8_t *done;	 /* the episode ended after this decision */
	float *logp, *value, *reward;
	float *adv, *ret;
};

int qs_bppo_buf_init(struct qs_bppo_buf *b, uint32_t cap, char *msg, size_t msglen);
void qs_bppo_buf_free(struct qs_bppo_buf *b);
/* Append src's decisions (an episode's) to dst; QS_E_SIZE when they do not fit. */
int qs_bppo_buf_append(struct qs_bppo_buf *dst, const struct qs_bppo_buf *src);
/* GAE(lambda) advantages and returns; every episode must end with done set. */
void qs_bppo_buf_finish(struct qs_bppo_buf *b, float gamma, float lambda);

struct qs_bppo {
	struct qs_bppo_cfg cfg;
	struct qs_mlp pi, vf;
	struct qs_adam opt_pi, opt_vf;
	struct qs_mlp_ws ws_pi, ws_vf; /* update workspaces, cfg.minibatch rows */
	float *g_pi, *g_vf;
	float *xb, *dlogit, *dval;
	uint32_t *perm;
	uint32_t perm_cap;
	struct qs_rng rng; /* minibatch shuffles */
};

struct qs_bppo_stats {
	float pi_loss, v_loss, entropy, approx_kl, clip_frac, grad_norm_pi;
};

int qs_bppo_init(struct qs_bppo *ag, const struct qs_bppo_cfg *c, uint64_t seed, char *msg,
		 size_t msglen);
void qs_bppo_free(struct qs_bppo *ag);

/* Per-thread acting scratch (reads the learner's parameters only). */
struct qs_bppo_actor {
	struct qs_mlp_ws ws_pi, ws_vf;
	float x[QS_FB_COUNT];
	float p[QS_BPPO_MAX_ACTIONS];
};
int qs_bppo_actor_init(struct qs_bppo_actor *a, const struct qs_bppo *ag, char *msg,
		       size_t msglen);
void qs_bppo_actor_free(struct qs_bppo_actor *a);
/* While ag's parameters stay fixed (a collection, an evaluation), act on one transpose
 * of them instead of one per decision; unpin before the next update. */
void qs_bppo_actor_pin(struct qs_bppo_actor *a, const struct qs_bppo *ag);
void qs_bppo_actor_unpin(struct qs_bppo_actor *a);
/* Sample an action (or the argmax when greedy) for one state; logp and value may be NULL. */
uint32_t qs_bppo_act(const struct qs_bppo *ag, struct qs_bppo_actor *a,
		     const uint8_t x[QS_FB_COUNT], struct qs_rng *rng, int greedy, float *logp,
		     float *value);

/*
 * Loss and gradients (into ag->g_pi, ag->g_vf, zeroed first) over decisions idx[0..n)
 * of a finished buffer, n <= cfg.minibatch; advantages as stored. Returns the loss.
 * Exposed for the finite-difference tests.
 */
float qs_bppo_loss_grad(struct qs_bppo *ag, const struct qs_bppo_buf *b, const uint32_t *idx,
			uint32_t n, struct qs_bppo_stats *st);
/* Normalize advantages, then cfg.epochs passes of shuffled minibatches. */
int qs_bppo_update(struct qs_bppo *ag, struct qs_bppo_buf *b, struct qs_bppo_stats *st,
		   char *msg, size_t msglen);

#endif /* QSTEER_TRAINER_BATCH_PPO_H */
