/*
 * policy.h - libqsteer-policy: load, validate and write .q8 files, and run int8
 * policies with the scalar reference or a SIMD kernel.
 *
 * Loading allocates once (the struct and every array in one block); running never
 * allocates. A struct qs_policy is immutable after loading, so any number of
 * threads may run it at once.
 */
#ifndef QSTEER_POLICY_H
#define QSTEER_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "features.h"
#include "q8.h"
#include "status.h"

/*
 * One layer as loaded. Weights are stored row-major with each row zero-padded to
 * w_stride (a multiple of 4) bytes: the 4-byte groups every kernel (scalar, AVX2,
 * VNNI, BPF, dp4a) consumes. m and s are NULL for the last layer.
 */
struct qs_policy_layer {
	uint16_t n_in;
	uint16_t n_out;
	uint16_t w_stride;
	const int8_t *w;
	const int32_t *bias;
	const int32_t *m;
	const uint8_t *s;
	/* Derived by the loader for the x86 tile kernels (policy_int8/kernel_tile.h),
	 * hidden layers only (NULL in the output layer): the full blocks of eight
	 * outputs' weights, [n_out / 8][w_stride / 4][8] dwords, so that a block's eight
	 * multiply-adds per input group read one pointer plus a constant; and each
	 * output's requantization clamp bound (qs_kern_clamp_bound). */
	const int8_t *w_blk;
	const int32_t *clamp;
};

struct qs_policy {
	uint16_t version;
	uint16_t kind;	 /* QS_Q8_KIND_* */
	uint32_t schema; /* QS_SCHEMA_* */
	uint64_t created;
	uint64_t content_id;
	uint32_t crc;
	uint32_t file_size;
	bool has_signature; /* an Ed25519 trailer is present (format checked) */
	bool is_signed;	    /* ... and it verified against the caller's public key */
	char name[QS_Q8_NAME_LEN];
	uint16_t n_layers;
	uint16_t n_actions;
	uint16_t n_in;	/* inputs of the first layer */
	uint16_t n_out; /* outputs of the last layer */
	uint16_t max_dim;
	struct qs_policy_layer layer[QS_INT8_MAX_LAYERS];
	const struct qs_q8_action *action; /* n_actions entries, classifier only */
};

struct qs_q8_keyset;

struct qs_policy_load_opts {
	uint32_t expect_schema;	       /* QS_SCHEMA_ANY or the schema the caller runs */
	uint16_t expect_kind;	       /* 0 for any, else QS_Q8_KIND_* */
	const uint8_t *ed25519_pubkey; /* 32 bytes: refuse unsigned or tampered files */
	/* Trusted keys (rotation): with at least one key here or in ed25519_pubkey, a
	 * file must carry a signature that verifies with one of them. NULL or empty: no
	 * signature required (a trailer is still checked for its format). */
	const struct qs_q8_keyset *keys;
};

/*
 * Validate buf (len bytes) completely, then build a policy. label names the input
 * in messages ("router.q8: layer 2 has 32 inputs but layer 1 has 16 outputs").
 * On failure *out is untouched and msg says what was wrong and where.
 */
int qs_policy_load(const void *buf, size_t len, const char *label,
		   const struct qs_policy_load_opts *opts, struct qs_policy **out, char *msg,
		   size_t msglen);
int qs_policy_load_file(const char *path, const struct qs_policy_load_opts *opts,
			struct qs_policy **out, char *msg, size_t msglen);
void qs_policy_free(struct qs_policy *p);

/* ---- writer ------------------------------------------------------------------ */

/* What the writer serializes. Weights are dense row-major [n_out][n_in]. */
struct qs_q8_layer_desc {
	uint16_t n_in;
	uint16_t n_out;
	const int8_t *w;
	const int32_t *bias;
	const int32_t *m; /* hidden layers only */
	const uint8_t *s; /* hidden layers only */
};

struct qs_q8_desc {
	uint16_t kind;
	uint32_t schema;
	const char *name; /* <= 31 printable ASCII characters */
	uint64_t created;
	uint16_t n_layers;
	struct qs_q8_layer_desc layer[QS_INT8_MAX_LAYERS];
	uint16_t n_actions;
	const struct qs_q8_action *action;
};

/* Bytes the file for desc takes (without a signature), 0 if desc is impossible. */
size_t qs_q8_size(const struct qs_q8_desc *d);

/*
 * Serialize into buf (cap bytes), then validate the result with the loader's own
 * checks, so the writer can never emit a file the loader would refuse.
 */
int qs_q8_write(const struct qs_q8_desc *d, uint8_t *buf, size_t cap, size_t *len, char *msg,
		size_t msglen);
int qs_q8_write_file(const struct qs_q8_desc *d, const char *path, char *msg, size_t msglen);

/* "scorer" / "classifier"; "router-v1" / "batch-v1" / "raw" (or "?" if unknown). */
const char *qs_q8_kind_name(unsigned kind);
const char *qs_q8_schema_name(uint32_t schema);

/* FNV-1a 64 of the file's shapes, weights and actions (not its name or time). */
uint64_t qs_q8_content_id(const uint8_t *file, size_t file_size);

/* Is libsodium compiled in (signing and verification available)? */
bool qs_q8_have_signatures(void);
/* Append a signature trailer to a valid file in buf (len bytes; cap >= len + 72). */
int qs_q8_sign(uint8_t *buf, size_t len, size_t cap, const uint8_t sk[64], size_t *out_len,
	       char *msg, size_t msglen);

/*
 * Ed25519 keys for policy signatures, stored as one line of hex in a text file
 * (public: 64 hex digits; secret: 128, written with mode 0600).
 */
#define QS_Q8_PUBKEY_LEN 32
#define QS_Q8_SECKEY_LEN 64
int qs_q8_keygen(const char *pub_path, const char *sec_path, char *msg, size_t msglen);
int qs_q8_read_key(const char *path, uint8_t *key, size_t key_len, char *msg, size_t msglen);
/* Sign the policy at in_path with the secret key file; write the result to out_path. */
int qs_q8_sign_file(const char *in_path, const char *out_path, const char *sec_path, char *msg,
		    size_t msglen);

/*
 * The public keys a program trusts for policies: its --pubkey options and its
 * configuration's policy_pubkey keys together. A policy signed with any of them is
 * accepted, so a key is rotated by adding the new one, re-signing, then removing the
 * old one. Every program that loads policies passes its set to the loader
 * (qs_policy_load_opts.keys); the verification itself is the loader's.
 */
#define QS_Q8_MAX_PUBKEYS 8
struct qs_q8_keyset {
	uint32_t n;
	uint8_t key[QS_Q8_MAX_PUBKEYS][QS_Q8_PUBKEY_LEN];
};
/*
 * Read a public key file (qs_q8_read_key) into ks; a key already there is not added
 * twice. QS_E_UNSUPPORTED in a build without libsodium (a key that could not be
 * enforced is refused, never ignored); QS_E_IO / QS_E_VALUE for a missing or
 * malformed file; QS_E_SIZE beyond QS_Q8_MAX_PUBKEYS keys.
 */
int qs_q8_keyset_add_file(struct qs_q8_keyset *ks, const char *path, char *msg, size_t msglen);
/* Each file of a comma-separated list (spaces around names are ignored). */
int qs_q8_keyset_add_list(struct qs_q8_keyset *ks, const char *list, char *msg, size_t msglen);

/* ---- kernels ------------------------------------------------------------------ */

enum qs_kernel {
	QS_KERNEL_AUTO = 0, /* the best this CPU runs, or $QSTEER_KERNEL if set */
	QS_KERNEL_SCALAR,
	QS_KERNEL_AVX2,
	QS_KERNEL_AVX512VNNI,
	QS_KERNEL_NEON, /* aarch64 NEON with SDOT (dotprod); "sdot" parses as this too */
	QS_KERNEL__COUNT
};

const char *qs_kernel_name(enum qs_kernel k);
/* "scalar", "avx2", "avx512vnni", "neon" (or "sdot") or "auto"; QS_E_ARG otherwise. */
int qs_kernel_parse(const char *s, enum qs_kernel *k);
/* Was it compiled in, and does this CPU (and OS) support it? */
bool qs_kernel_supported(enum qs_kernel k);
/* AUTO resolved: $QSTEER_KERNEL if set and supported, else the best supported. */
enum qs_kernel qs_kernel_resolve(enum qs_kernel k);

/*
 * Run the network over n rows of inputs (row r at x + r * x_stride, n_in bytes each,
 * values 0..127) and write n * n_out int32 outputs, row-major. Any n; any kernel
 * gives the same integers. QS_E_UNSUPPORTED if k cannot run here. Inputs above 127
 * break the contract: debug builds return QS_E_VALUE, release builds do not check.
 */
int qs_policy_run(const struct qs_policy *p, enum qs_kernel k, const uint8_t *x, size_t x_stride,
		  uint32_t n, int32_t *out);

#define QS_NO_CHOICE 0xffffu

/*
 * Scorer over a burst: n_req requests with n_cand (<= QS_MAX_CANDIDATES) candidate
 * rows each, x laid out [n_req][n_cand][n_in] contiguous. eligible[r] bit c says
 * candidate c may win for request r (NULL: all may). Writes scores[n_req * n_cand]
 * when scores is not NULL, and choice[r]: the eligible candidate with the highest
 * score, the lowest index on ties, QS_NO_CHOICE when none is eligible.
 */
int qs_policy_choose(const struct qs_policy *p, enum qs_kernel k, const uint8_t *x, uint32_t n_req,
		     uint32_t n_cand, const uint64_t *eligible, int32_t *scores, uint16_t *choice);

/* Classifier: per row, the argmax output (lowest index on ties). */
int qs_policy_classify(const struct qs_policy *p, enum qs_kernel k, const uint8_t *x,
		       size_t x_stride, uint32_t n, uint16_t *action);

#endif /* QSTEER_POLICY_H */
