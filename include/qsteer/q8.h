/*
 * q8.h - the .q8 policy file format (DESIGN.md 3.5), byte by byte.
 *
 * docs/policy-format.md is the prose version of this header; change both together.
 * All integers are little-endian. Files are parsed field by field, never by casting
 * a struct over the bytes, so the format does not depend on host alignment or
 * endianness.
 *
 *   [0, 96)                      header (QS_Q8_HDR_*)
 *   [96, 96 + 8 * layers)        layer table: per layer u16 n_in, u16 n_out, u32 0
 *   per layer, in order:         int8  W[n_out][n_in], zero-padded to a multiple of 4 bytes
 *                                int32 bias[n_out]
 *                                hidden layers only (all but the last):
 *                                  int32 M[n_out], u8 S[n_out], zero-padded to 4 bytes
 *   classifier only:             action table, QS_Q8_ACTION_SIZE bytes per action
 *   [file_size - 4, file_size)   CRC32C (Castagnoli) of bytes [0, file_size - 4)
 *   optional trailer:            "QSIG", u32 algorithm (1 = Ed25519), 64-byte signature
 *                                of bytes [0, file_size) -- i.e. including the CRC
 */
#ifndef QSTEER_Q8_H
#define QSTEER_Q8_H

#include "int8.h"

#define QS_Q8_MAGIC   "QSQ8"
#define QS_Q8_VERSION 1

#define QS_Q8_KIND_SCORER     1 /* one int32 score per candidate row; highest wins */
#define QS_Q8_KIND_CLASSIFIER 2 /* argmax over outputs indexes the action table */

/* Header offsets and sizes. */
#define QS_Q8_HDR_MAGIC	       0  /* 4 bytes "QSQ8" */
#define QS_Q8_HDR_VERSION      4  /* u16 */
#define QS_Q8_HDR_KIND	       6  /* u16 */
#define QS_Q8_HDR_SCHEMA       8  /* u32, see features.h */
#define QS_Q8_HDR_FILE_SIZE    12 /* u32, bytes including the CRC, excluding a signature */
#define QS_Q8_HDR_HDR_SIZE     16 /* u16, QS_Q8_HDR_SIZE */
#define QS_Q8_HDR_LAYERS       18 /* u16, 1..QS_INT8_MAX_LAYERS */
#define QS_Q8_HDR_ACTIONS      20 /* u16, classifier: outputs of the last layer; scorer: 0 */
#define QS_Q8_HDR_FLAGS	       22 /* u16, reserved, 0 */
#define QS_Q8_HDR_CREATED      24 /* u64, unix seconds */
#define QS_Q8_HDR_CONTENT_ID   32 /* u64, FNV-1a 64 of bytes [96, file_size - 4) */
#define QS_Q8_HDR_NAME	       40 /* 32 bytes, printable ASCII, NUL-terminated and -padded */
#define QS_Q8_HDR_RESERVED     72 /* 24 bytes, 0 */
#define QS_Q8_HDR_SIZE	       96
#define QS_Q8_NAME_LEN	       32
#define QS_Q8_LAYER_ENTRY_SIZE 8

/* Classifier actions: what the batching agent applies when the action wins. */
#define QS_Q8_ACTION_SIZE 16
#define QS_Q8_MAX_ACTIONS 64
struct qs_q8_action {
	qs_u32 max_seqs;       /* sequences per iteration, >= 1 */
	qs_u32 max_tokens;     /* token budget per iteration, >= 1 */
	qs_u32 kv_reserve_pct; /* KV blocks kept free for running sequences, 0..100 */
	qs_u32 flags;	       /* QS_Q8_ACT_*: admission order, coalescing */
};

/* Action flags. Bits 0-1: the order the waiting queue is admitted in (3 is invalid);
 * bit 2: admit only prompts in the first admitted one's log2 length bucket; bits
 * 3-6: speculation depth, draft tokens per decoding sequence (0..8; 9-15 invalid).
 * The other bits are reserved and must be 0, so a newer agent's flag is refused by
 * an older loader instead of being ignored (a loader from before depths refuses a
 * file that sets one). */
#define QS_Q8_ACT_ORDER_MASK	 0x3u
#define QS_Q8_ACT_ORDER_FCFS	 0u /* oldest first */
#define QS_Q8_ACT_ORDER_SHORTEST 1u /* shortest prompt first */
#define QS_Q8_ACT_ORDER_PRIORITY 2u /* tightest SLO class, then priority, then oldest */
#define QS_Q8_ACT_COALESCE	 0x4u
#define QS_Q8_ACT_SPEC_SHIFT	 3u
#define QS_Q8_ACT_SPEC_MASK	 0x78u
#define QS_Q8_ACT_SPEC_MAX	 8u /* = profile.h's QS_SPEC_DEPTH_MAX (batch.c checks) */
#define QS_Q8_ACT_FLAGS_VALID	 0x7fu

#define QS_Q8_SIG_MAGIC	      "QSIG"
#define QS_Q8_SIG_ALG_ED25519 1
#define QS_Q8_SIG_SIZE	      72 /* magic, u32 algorithm, 64-byte signature */

/* Weights' bytes per layer are padded so that every section starts 4-byte aligned. */
#define QS_Q8_PAD4(n) (((n) + 3u) & ~3u)

/* Bytes one layer takes in a file: its int8 weights (padded), int32 biases and, for a
 * hidden layer, its requantization multipliers and shifts (padded). 64-bit, so any
 * 16-bit shape a file claims sizes without overflow before it is refused. */
QS_RC_FN qs_u64
qs_q8_layer_bytes(qs_u32 n_in, qs_u32 n_out, int hidden)
{
	qs_u64 b = QS_Q8_PAD4((qs_u64)n_in * n_out) + 4 * (qs_u64)n_out;

	if (hidden)
		b += 4 * (qs_u64)n_out + QS_Q8_PAD4((qs_u64)n_out);
	return b;
}

/*
 * The largest valid file: every dimension at its limit. Loaders reject anything
 * bigger before reading it.
 */
#define QS_Q8_MAX_LAYER_BYTES                                                                      \
	(QS_Q8_PAD4(QS_INT8_MAX_DIM * QS_INT8_MAX_DIM) + 4 * QS_INT8_MAX_DIM +                     \
	 4 * QS_INT8_MAX_DIM + QS_Q8_PAD4(QS_INT8_MAX_DIM))
#define QS_Q8_MAX_FILE_SIZE                                                                        \
	(QS_Q8_HDR_SIZE + QS_Q8_LAYER_ENTRY_SIZE * QS_INT8_MAX_LAYERS +                            \
	 QS_INT8_MAX_LAYERS * QS_Q8_MAX_LAYER_BYTES + QS_Q8_MAX_ACTIONS * QS_Q8_ACTION_SIZE + 4)

#endif /* QSTEER_Q8_H */
