/*
 * ckpt.h - float training checkpoints: weights, Adam state, RNG and progress, so a
 * run resumes exactly where it stopped.
 *
 * Format (little-endian, version 1):
 *   [0, 4)     magic "QSTC"
 *   [4, 8)     u32 version
 *   [8, 12)    u32 header size (QS_CKPT_HDR_SIZE)
 *   [12, 16)   u32 file size, including the CRC
 *   [16, 20)   u32 algorithm (enum qs_algo)
 *   [20, 36)   u32 n_feat, h1, h2, vh
 *   [36, 44)   u32 scorer parameters, u32 value parameters
 *   [44, 68)   u64 seed, u64 step (decisions trained), u64 updates
 *   [68, 84)   u64 Adam t (scorer), u64 Adam t (value)
 *   [84, 116)  agent RNG (4 x u64)
 *   [116, 148) caller RNG (4 x u64)
 *   [148, 160) reserved, 0
 *   then f32 arrays: scorer params, value params, scorer Adam m, v, value Adam m, v
 *   [size - 4, size) CRC32C of everything before it
 * Every field is checked before any is used; a bad file is an error that says which
 * field and where, and leaves the agent untouched.
 */
#ifndef QSTEER_TRAINER_CKPT_H
#define QSTEER_TRAINER_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "ppo.h"

#define QS_CKPT_MAGIC	 "QSTC"
#define QS_CKPT_VERSION	 1
#define QS_CKPT_HDR_SIZE 160

struct qs_ckpt_meta {
	uint64_t seed;
	uint64_t step;
	struct qs_rng rng; /* the caller's stream (rollouts) */
};

/* Bytes a checkpoint of ag takes. */
size_t qs_ckpt_size(const struct qs_ppo_agent *ag);
/* Serialize into buf (cap >= qs_ckpt_size). */
int qs_ckpt_encode(const struct qs_ppo_agent *ag, const struct qs_ckpt_meta *meta, uint8_t *buf,
		   size_t cap, size_t *len, char *msg, size_t msglen);
/*
 * Validate buf completely, then restore it into ag, which must have been built
 * with the same algorithm and shapes (QS_E_SHAPE otherwise).
 */
int qs_ckpt_decode(const uint8_t *buf, size_t len, const char *label, struct qs_ppo_agent *ag,
		   struct qs_ckpt_meta *meta, char *msg, size_t msglen);
/* Written to path.tmp, then renamed: a crash never leaves half a checkpoint. */
int qs_ckpt_save(const char *path, const struct qs_ppo_agent *ag, const struct qs_ckpt_meta *meta,
		 char *msg, size_t msglen);
int qs_ckpt_load(const char *path, struct qs_ppo_agent *ag, struct qs_ckpt_meta *meta, char *msg,
		 size_t msglen);
/* Read just the shapes (algo, n_feat, h1, h2, vh) so a resume can build the agent. */
int qs_ckpt_peek(const char *path, struct qs_ppo_cfg *cfg, char *msg, size_t msglen);

#endif /* QSTEER_TRAINER_CKPT_H */
