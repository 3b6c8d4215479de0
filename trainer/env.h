/*
 * env.h - what the trainer needs from an environment, and the vectorized, threaded
 * rollout collector that drives several of them.
 *
 * An environment is a pull API: observe() returns the next routing decision
 * (candidate feature rows and the eligibility mask), act() routes it with a tag,
 * and rewards come back later as (tag, reward) credits when the request the
 * decision placed completes. The simulator adapter (sim_env.c, when sim/ is built)
 * and the built-in contextual bandit (bandit.c) both implement it.
 *
 * Determinism: environment e has its own RNG stream and its own local buffer;
 * thread t runs environments t, t + T, t + 2T, ...; buffers are merged in
 * environment order. So a rollout depends on the seed only -- not on the thread
 * count or on scheduling.
 */
#ifndef QSTEER_TRAINER_ENV_H
#define QSTEER_TRAINER_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "ppo.h"

struct qs_train_credit {
	uint64_t tag;
	float reward;
};

#define QS_ENV_MAX_CREDITS 256

struct qs_train_env_ops {
	const char *name;
	int (*create)(void **env, const char *scenario, uint64_t seed, char *msg, size_t msglen);
	void (*destroy)(void *env);
	/* Start a new episode (randomized from seed). */
	int (*reset)(void *env, uint64_t seed, char *msg, size_t msglen);
	/*
	 * Advance to the next decision: *done = 1 when the episode is over (every
	 * request completed, every credit delivered), else rows/n_cand/mask are set.
	 */
	int (*observe)(void *env, uint8_t *rows, uint32_t *n_cand, uint64_t *mask, int *done,
		       char *msg, size_t msglen);
	/* Route the pending decision to candidate action; tag names it in credits. */
	int (*act)(void *env, uint32_t action, uint64_t tag, char *msg, size_t msglen);
	/* Move up to cap credits that arrived so far into out; returns how many. */
	uint32_t (*credits)(void *env, struct qs_train_credit *out, uint32_t cap);
	/* The scenario's primary metric for evaluation reports. */
	double (*metric)(void *env, const char **name);
	/* Optional: a setting ("randomize" 0/1, "teacher" baseline name). */
	int (*set)(void *env, const char *key, const char *val, char *msg, size_t msglen);
	/* Optional: the teacher's (a heuristic's) choice for the pending decision. */
	int (*teacher)(void *env, uint32_t *action);
	/* Optional: a one-line description (scenario, teacher). */
	int (*describe)(void *env, char *out, size_t n);
};

extern const struct qs_train_env_ops qs_env_bandit;
/* Present when built with the simulator (QSTEER_HAVE_SIM): scenario = a scenario name
 * or an .ini path (qs_sim_scenario_load_named). */
extern const struct qs_train_env_ops qs_env_sim;

/* Look up an environment by scenario: "bandit" or, with sim/ built, a scenario. */
const struct qs_train_env_ops *qs_env_for_scenario(const char *scenario);

struct qs_roll_stats {
	uint64_t decisions;
	uint32_t episodes;     /* completed in this rollout */
	double episode_return; /* mean over them (0 if none) */
	double reward_per_decision;
};

struct qs_roll_env;
struct qs_roll;

/*
 * Rollouts spread over processes (dist.h): this process steps only the
 * environments i with i % ranks == rank, then exchange() gives every process every
 * environment's collection (qs_roll_pack / qs_roll_unpack), so that all of them
 * merge, and update on, the batch one process would have collected alone: each
 * environment's RNG stream and state are its own, wherever it runs. ranks 0 or 1:
 * everything runs here.
 */
struct qs_roll_dist {
	uint32_t rank, ranks;
	int (*exchange)(struct qs_roll *r, void *ctx, char *msg, size_t msglen);
	void *ctx;
};

struct qs_roll {
	const struct qs_train_env_ops *ops;
	int bc; /* behaviour cloning: act with the env's teacher, record its choice */
	uint32_t n_env, n_threads, steps; /* steps: recorded decisions per env per rollout */
	uint32_t n_feat;
	struct qs_roll_env *e;
	struct qs_roll_dist dist;
};

/* scenario may be a comma-separated list: environment i runs item i mod count. */
int qs_roll_init(struct qs_roll *r, const struct qs_train_env_ops *ops, const char *scenario,
		 uint32_t n_env, uint32_t n_threads, uint32_t steps, const struct qs_ppo_agent *ag,
		 uint64_t seed, char *msg, size_t msglen);
void qs_roll_free(struct qs_roll *r);
/* Describe environment i (its ops->describe, or its name). */
void qs_roll_describe(const struct qs_roll *r, uint32_t i, char *out, size_t n);
/* Apply an env setting to every environment (QS_OK if the env has no settings). */
int qs_roll_set(struct qs_roll *r, const char *key, const char *val, char *msg, size_t msglen);
/*
 * One rollout: every env records `steps` decisions (sampling from the policy), then
 * keeps acting unrecorded until its recorded decisions have all been credited (at
 * most `steps` more), and the merged result goes into out (cleared first), with GAE
 * computed. greedy: argmax actions (evaluation).
 */
int qs_roll_collect(struct qs_roll *r, const struct qs_ppo_agent *ag, struct qs_ppo_buf *out,
		    int greedy, struct qs_roll_stats *st, char *msg, size_t msglen);

/*
 * Environment i's last collection (its decisions, their rewards and episode ends,
 * its bootstrap value, counters and status) as bytes in this machine's layout, for
 * an exchange between processes of one build. pack returns the size and writes only
 * when it fits in cap (out may be NULL to ask). unpack replaces environment i's
 * collection with one packed elsewhere, and refuses bytes that are not one:
 * QS_E_SIZE when the length disagrees with the header, QS_E_SHAPE when the header
 * disagrees with this rollout's rows or capacity, QS_E_VALUE for a malformed
 * decision (row offsets, action, environment id).
 */
size_t qs_roll_pack(const struct qs_roll *r, uint32_t i, uint8_t *out, size_t cap);
int qs_roll_unpack(struct qs_roll *r, uint32_t i, const uint8_t *in, size_t len, char *msg,
		   size_t msglen);

#endif /* QSTEER_TRAINER_ENV_H */
