/*
 * profile.h - libqsteer-profile: a backend's performance profile (the iteration-time
 * model of one GPU serving one model), its defaults, its INI file format
 * (sim/profiles/NAME.ini, section [profile]) and a closed-form capacity estimate.
 *
 * A library of its own because two programs need it and only one of them simulates:
 * the simulator's backends run on profiles, and the agent's model executor times its
 * iterations with one (qsteer-agent --profile writes one measured on the GPU). The
 * agent links this, not libqsteer-sim. The names keep their historical qs_sim_
 * prefix so the simulator's code and the profile files did not change.
 */
#ifndef QSTEER_PROFILE_H
#define QSTEER_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QS_SIM_BLOCK_TOKENS 16 /* KV cache block size, as vLLM */
#define QS_SIM_NAME_LEN	    64
#define QS_SPEC_DEPTH_MAX   8 /* draft tokens per sequence per iteration, at most */

enum qs_sim_model {
	QS_SIM_MODEL_BATCH = 0, /* vLLM-like iteration-level batching with a KV cache */
	QS_SIM_MODEL_TOKRATE,	/* "T tokens/s with concurrency C": C slots of T/C tokens/s */
};

/*
 * A backend's performance profile (sim/profiles/NAME.ini). Batch model: one
 * iteration takes fixed_us + prefill_us_per_token * prefill tokens +
 * decode_us_per_seq * decode sequences + kv_us_per_token * KV tokens the decode
 * sequences read. Tokrate model: a request holds one of `concurrency` slots for
 * (prefill_weight * prompt + gen) / (tokens_per_s / concurrency) seconds, its first
 * token after (prefill_weight * prompt + 1) tokens' worth.
 */
struct qs_sim_profile {
	char name[QS_SIM_NAME_LEN];
	enum qs_sim_model model;
	double fixed_us;
	double prefill_us_per_token;
	double decode_us_per_seq;
	double kv_us_per_token;
	uint32_t max_seqs;	/* sequences per iteration */
	uint32_t max_tokens;	/* token budget per iteration */
	uint32_t kv_blocks;	/* KV cache blocks of QS_SIM_BLOCK_TOKENS */
	uint32_t max_model_len; /* longer requests are truncated (prompt first) */
	bool chunked_prefill;	/* Sarathi-style: decodes first, prefill chunks fill the budget */
	uint32_t prefix_cache;	/* backend prefix-cache entries (0: none) */
	double tokens_per_s;	/* tokrate */
	uint32_t concurrency;	/* tokrate */
	double prefill_weight;	/* tokrate: cost of a prompt token relative to a generated one */
	/*
	 * Speculative decoding (batch model; the agent's scheduler and model executor,
	 * docs/agent.md "Speculative decoding"). A draft model proposes k tokens per
	 * decoding sequence in k steps, each costing draft_fixed_us + draft_cost_ratio *
	 * (decode_us_per_seq * decodes + kv_us_per_token * KV tokens read); the target
	 * verifies the k + 1 positions in one iteration, the k extra ones at
	 * prefill_us_per_token. Each drafted token is accepted with probability
	 * spec_accept (a workload class may set its own), up to the first rejection,
	 * and the target adds one token of its own. spec_max_depth 0: no draft model.
	 */
	uint32_t spec_max_depth; /* 0..QS_SPEC_DEPTH_MAX */
	uint32_t spec_depth;	 /* the simulator's backends' fixed depth (<= max; the agent's
				  * strategies decide their own) */
	double draft_fixed_us;	 /* per draft step */
	double draft_cost_ratio; /* draft per-sequence and per-KV-token cost / target's, 0..1 */
	double spec_accept;	 /* per-token acceptance, 0..0.99 */
};

/* An A100-80GB / Llama-2-7B-like batch profile (tests start from it). */
void qs_sim_profile_default(struct qs_sim_profile *p);

/*
 * Closed-form requests/s of one backend for requests of the given mean lengths
 * (exact for tokrate; a rough first guess for batch, which qs_sim_create replaces
 * by a saturation run of the backend model when a scenario gives `load`).
 */
double qs_sim_profile_capacity_rps(const struct qs_sim_profile *p, double prompt, double gen);

/* A profile file, or the same text from a string (label names it in messages):
 * defaults first, unknown keys and sections are errors naming the key and the file. */
int qs_sim_profile_load(const char *path, struct qs_sim_profile *p, char *msg, size_t msglen);
int qs_sim_profile_parse(const char *text, const char *label, struct qs_sim_profile *p, char *msg,
			 size_t msglen);
/* The speculative-decoding keys in range (the loaders call it; so does whoever sets
 * them otherwise). label names the profile in the message. */
int qs_sim_profile_check_spec(const struct qs_sim_profile *p, const char *label, char *msg,
			      size_t msglen);
/*
 * Expected tokens one decoding sequence gains per iteration at depth k with
 * per-token acceptance a: 1 + a + ... + a^k = (1 - a^(k+1)) / (1 - a)
 * (Leviathan et al., ICML 2023, eq. 1). Documentation and heuristics; the model
 * executor draws the actual count.
 */
double qs_spec_expected_tokens(double accept, uint32_t k);
/*
 * The batch model's iteration time in us, the one formula of the simulator's
 * backends and the agent's model executor: fixed_us + prefill_us_per_token * prefill
 * + decode_us_per_seq * decodes + kv_us_per_token * KV read, and with speculation
 * (spec_depth > 0) + prefill_us_per_token * draft_tokens + spec_depth draft steps.
 */
double qs_sim_profile_iter_us(const struct qs_sim_profile *p, double prefill_tokens,
			      double decode_seqs, double kv_tokens, double draft_tokens,
			      uint32_t spec_depth);

#ifdef __cplusplus
}
#endif

#endif /* QSTEER_PROFILE_H */
