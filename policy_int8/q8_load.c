/*
 * q8_load.c - validate and load .q8 policy files (format: include/qsteer/q8.h).
 *
 * Order of checks, so that each error names the first thing wrong: the header's
 * fixed fields, the layer table (shapes, chaining, schema), the sizes those imply
 * against the header and the input length, the CRC, an optional signature, and
 * only then every value in the payload. Nothing past a checked length is read.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "kernel_impl.h"
#include "q8_internal.h"
#include "qsteer/crc32c.h"

#ifdef QSTEER_HAVE_SODIUM
#include <sodium.h>
#endif

const char *
qs_q8_kind_name(unsigned kind)
{
	return kind == QS_Q8_KIND_SCORER       ? "scorer"
	       : kind == QS_Q8_KIND_CLASSIFIER ? "classifier"
					       : "?";
}

const char *
qs_q8_schema_name(uint32_t schema)
{
	switch (schema) {
	case QS_SCHEMA_ROUTER_V1:
		return "router-v1";
	case QS_SCHEMA_BATCH_V1:
		return "batch-v1";
	case QS_SCHEMA_RAW:
		return "raw";
	default:
		return "?";
	}
}

uint64_t
qs_q8_content_id(const uint8_t *file, size_t file_size)
{
	uint64_t h = 0xcbf29ce484222325ull;

	if (file_size < QS_Q8_HDR_SIZE + 4)
		return 0;
	for (size_t i = QS_Q8_HDR_SIZE; i < file_size - 4; i++) {
		h ^= file[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

bool
qs_q8_have_signatures(void)
{
#ifdef QSTEER_HAVE_SODIUM
	return true;
#else
	return false;
#endif
}

static int
check_header(const uint8_t *b, size_t len, const char *label,
	     const struct qs_policy_load_opts *opts, char *msg, size_t msglen)
{
	uint32_t version, kind, schema, hdr_size, flags;
	const uint8_t *name = b + QS_Q8_HDR_NAME;
	size_t i, nul;

	if (len < 4)
		return q8_fail(QS_E_TRUNCATED, msg, msglen, label,
			       "%zu bytes, too short to hold the magic", len);
	if (memcmp(b + QS_Q8_HDR_MAGIC, QS_Q8_MAGIC, 4) != 0)
		return q8_fail(
		    QS_E_MAGIC, msg, msglen, label,
		    "bad magic %02x %02x %02x %02x at offset 0 (expected \"QSQ8\"): not a .q8 file",
		    b[0], b[1], b[2], b[3]);
	if (len < QS_Q8_HDR_SIZE)
		return q8_fail(QS_E_TRUNCATED, msg, msglen, label,
			       "%zu bytes, shorter than the %d-byte header", len, QS_Q8_HDR_SIZE);
	version = qs_le_rd16(b + QS_Q8_HDR_VERSION);
	if (version != QS_Q8_VERSION)
		return q8_fail(QS_E_VERSION, msg, msglen, label,
			       "format version %u at offset %d; this build reads version %d",
			       version, QS_Q8_HDR_VERSION, QS_Q8_VERSION);
	hdr_size = qs_le_rd16(b + QS_Q8_HDR_HDR_SIZE);
	if (hdr_size != QS_Q8_HDR_SIZE)
		return q8_fail(QS_E_VALUE, msg, msglen, label,
			       "header size %u at offset %d, version 1 has %d", hdr_size,
			       QS_Q8_HDR_HDR_SIZE, QS_Q8_HDR_SIZE);
	kind = qs_le_rd16(b + QS_Q8_HDR_KIND);
	if (kind != QS_Q8_KIND_SCORER && kind != QS_Q8_KIND_CLASSIFIER)
		return q8_fail(QS_E_KIND, msg, msglen, label,
			       "kind %u at offset %d (1 scorer, 2 classifier)", kind,
			       QS_Q8_HDR_KIND);
	if (opts && opts->expect_kind && opts->expect_kind != kind)
		return q8_fail(QS_E_KIND, msg, msglen, label, "is a %s, this program needs a %s",
			       qs_q8_kind_name(kind), qs_q8_kind_name(opts->expect_kind));
	schema = qs_le_rd32(b + QS_Q8_HDR_SCHEMA);
	if (qs_feat_schema_inputs(schema) < 0)
		return q8_fail(QS_E_SCHEMA, msg, msglen, label, "unknown feature schema %#x",
			       schema);
	/* A schema fixes what the outputs mean, so it fixes the kind too; a mismatch would
	 * load and then fail every decision. */
	if ((schema == QS_SCHEMA_ROUTER_V1 && kind != QS_Q8_KIND_SCORER) ||
	    (schema == QS_SCHEMA_BATCH_V1 && kind != QS_Q8_KIND_CLASSIFIER))
		return q8_fail(QS_E_SCHEMA, msg, msglen, label,
			       "feature schema %#x (%s) is for a %s, but the file is a %s", schema,
			       qs_q8_schema_name(schema),
			       qs_q8_kind_name(schema == QS_SCHEMA_ROUTER_V1
						   ? QS_Q8_KIND_SCORER
						   : QS_Q8_KIND_CLASSIFIER),
			       qs_q8_kind_name(kind));
	if (opts && opts->expect_schema != QS_SCHEMA_ANY && opts->expect_schema != schema)
		return q8_fail(
		    QS_E_SCHEMA, msg, msglen, label,
		    "trained for feature schema %#x (%s), this program builds schema %#x (%s)",
		    schema, qs_q8_schema_name(schema), opts->expect_schema,
		    qs_q8_schema_name(opts->expect_schema));
	flags = qs_le_rd16(b + QS_Q8_HDR_FLAGS);
	if (flags)
		return q8_fail(QS_E_VALUE, msg, msglen, label,
			       "flags %#x at offset %d, none are defined", flags, QS_Q8_HDR_FLAGS);
	for (i = 0; i < QS_Q8_HDR_SIZE - QS_Q8_HDR_RESERVED; i++)
		if (b[QS_Q8_HDR_RESERVED + i])
			return q8_fail(QS_E_VALUE, msg, msglen, label,
				       "reserved header byte at offset %zu is %u, must be 0",
				       QS_Q8_HDR_RESERVED + i, b[QS_Q8_HDR_RESERVED + i]);
	for (nul = 0; nul < QS_Q8_NAME_LEN && name[nul]; nul++)
		if (name[nul] < 0x20 || name[nul] > 0x7e)
			return q8_fail(QS_E_VALUE, msg, msglen, label,
				       "name byte %zu (offset %zu) is %#x, not printable ASCII",
				       nul, QS_Q8_HDR_NAME + nul, name[nul]);
	if (nul == QS_Q8_NAME_LEN)
		return q8_fail(QS_E_VALUE, msg, msglen, label,
			       "name at offset %d has no terminating NUL within %d bytes",
			       QS_Q8_HDR_NAME, QS_Q8_NAME_LEN);
	for (i = nul; i < QS_Q8_NAME_LEN; i++)
		if (name[i])
			return q8_fail(QS_E_VALUE, msg, msglen, label,
				       "name padding byte at offset %zu is not 0",
				       QS_Q8_HDR_NAME + i);
	return QS_OK;
}

/* Layer table, shapes and the sizes they imply. *expect_size: the file's size. */
static int
check_layers(const uint8_t *b, size_t len, const char *label, size_t *expect_size, char *msg,
	     size_t msglen)
{
	uint32_t kind = qs_le_rd16(b + QS_Q8_HDR_KIND);
	uint32_t n_layers = qs_le_rd16(b + QS_Q8_HDR_LAYERS);
	uint32_t n_actions = qs_le_rd16(b + QS_Q8_HDR_ACTIONS);
	int schema_in = qs_feat_schema_inputs(qs_le_rd32(b + QS_Q8_HDR_SCHEMA));
	size_t table_end, size;
	uint32_t prev_out = 0, last_out = 0;

	if (n_layers < 1 || n_layers > QS_INT8_MAX_LAYERS)
		return q8_fail(QS_E_SHAPE, msg, msglen, label, "%u layers at offset %d (1..%d)",
			       n_layers, QS_Q8_HDR_LAYERS, QS_INT8_MAX_LAYERS);
	table_end = QS_Q8_HDR_SIZE + (size_t)n_layers * QS_Q8_LAYER_ENTRY_SIZE;
	if (len < table_end)
		return q8_fail(QS_E_TRUNCATED, msg, msglen, label,
			       "%zu bytes, ends inside the layer table (needs %zu)", len,
			       table_end);
	size = table_end;
	for (uint32_t l = 0; l < n_layers; l++) {
		const uint8_t *e = b + QS_Q8_HDR_SIZE + l * QS_Q8_LAYER_ENTRY_SIZE;
		uint32_t n_in = qs_le_rd16(e), n_out = qs_le_rd16(e + 2), rsv = qs_le_rd32(e + 4);

		if (n_in < 1 || n_in > QS_INT8_MAX_DIM)
			return q8_fail(QS_E_SHAPE, msg, msglen, label,
				       "layer %u has %u inputs (1..%d)", l + 1, n_in,
				       QS_INT8_MAX_DIM);
		if (n_out < 1 || n_out > QS_INT8_MAX_DIM)
			return q8_fail(QS_E_SHAPE, msg, msglen, label,
				       "layer %u has %u outputs (1..%d)", l + 1, n_out,
				       QS_INT8_MAX_DIM);
		if (rsv)
			return q8_fail(QS_E_VALUE, msg, msglen, label,
				       "layer %u table entry: reserved word is %#x, must be 0",
				       l + 1, rsv);
		if (l == 0 && schema_in > 0 && n_in != (uint32_t)schema_in)
			return q8_fail(QS_E_SCHEMA, msg, msglen, label,
				       "layer 1 has %u inputs but its feature schema has %d", n_in,
				       schema_in);
		if (l > 0 && n_in != prev_out)
			return q8_fail(QS_E_SHAPE, msg, msglen, label,
				       "layer %u has %u inputs but layer %u has %u outputs", l + 1,
				       n_in, l, prev_out);
		prev_out = last_out = n_out;
		size += qs_q8_layer_bytes(n_in, n_out, l + 1 < n_layers);
	}
	if (kind == QS_Q8_KIND_SCORER) {
		if (last_out != 1)
			return q8_fail(QS_E_SHAPE, msg, msglen, label,
				       "a scorer's last layer has 1 output, layer %u has %u",
				       n_layers, last_out);
		if (n_actions)
			return q8_fail(QS_E_VALUE, msg, msglen, label,
				       "a scorer has no action table, header says %u actions",
				       n_actions);
	} else {
		if (n_actions < 1 || n_actions > QS_Q8_MAX_ACTIONS)
			return q8_fail(QS_E_VALUE, msg, msglen, label,
				       "classifier has %u actions (1..%d)", n_actions,
				       QS_Q8_MAX_ACTIONS);
		if (n_actions != last_out)
			return q8_fail(QS_E_SHAPE, msg, msglen, label,
				       "classifier has %u actions but layer %u has %u outputs",
				       n_actions, n_layers, last_out);
		size += (size_t)n_actions * QS_Q8_ACTION_SIZE;
	}
	*expect_size = size + 4;
	return QS_OK;
}

static int
check_signature(const uint8_t *b, size_t file_size, const char *label,
		const struct qs_policy_load_opts *opts, int present, char *msg, size_t msglen)
{
	const uint8_t *t = b + file_size;
	uint32_t n_keys;

	if (present) {
		if (memcmp(t, QS_Q8_SIG_MAGIC, 4) != 0)
			return q8_fail(QS_E_SIGNATURE, msg, msglen, label,
				       "%d bytes follow the policy but do not start with \"QSIG\" "
				       "(offset %zu)",
				       QS_Q8_SIG_SIZE, file_size);
		if (qs_le_rd32(t + 4) != QS_Q8_SIG_ALG_ED25519)
			return q8_fail(QS_E_SIGNATURE, msg, msglen, label,
				       "signature algorithm %u at offset %zu (1 = Ed25519)",
				       qs_le_rd32(t + 4), file_size + 4);
	}
	n_keys =
	    (opts && opts->ed25519_pubkey ? 1u : 0u) + (opts && opts->keys ? opts->keys->n : 0u);
	if (n_keys == 0)
		return QS_OK;
	if (!present)
		return q8_fail(QS_E_SIGNATURE, msg, msglen, label,
			       "unsigned, and signed policies are required here (%u public key%s "
			       "configured)",
			       n_keys, n_keys == 1 ? "" : "s");
#ifdef QSTEER_HAVE_SODIUM
	if (sodium_init() < 0)
		return q8_fail(QS_E_UNSUPPORTED, msg, msglen, label, "libsodium failed to start");
	/* rotation: any trusted key will do */
	if (opts->ed25519_pubkey &&
	    crypto_sign_verify_detached(t + 8, b, file_size, opts->ed25519_pubkey) == 0)
		return QS_OK;
	for (uint32_t i = 0; opts->keys && i < opts->keys->n && i < QS_Q8_MAX_PUBKEYS; i++)
		if (crypto_sign_verify_detached(t + 8, b, file_size, opts->keys->key[i]) == 0)
			return QS_OK;
	if (n_keys == 1)
		return q8_fail(QS_E_SIGNATURE, msg, msglen, label,
			       "Ed25519 signature does not verify with the given public key "
			       "(signed with another key, or tampered after signing)");
	return q8_fail(QS_E_SIGNATURE, msg, msglen, label,
		       "Ed25519 signature does not verify with any of the %u configured public "
		       "keys (signed with another key, or tampered after signing)",
		       n_keys);
#else
	return q8_fail(QS_E_UNSUPPORTED, msg, msglen, label,
		       "a public key was given but this build has no libsodium");
#endif
}

/* Every value in the payload; the sizes were checked before. */
static int
check_values(const uint8_t *b, const char *label, char *msg, size_t msglen)
{
	uint32_t n_layers = qs_le_rd16(b + QS_Q8_HDR_LAYERS);
	uint32_t n_actions = qs_le_rd16(b + QS_Q8_HDR_ACTIONS);
	size_t off = QS_Q8_HDR_SIZE + (size_t)n_layers * QS_Q8_LAYER_ENTRY_SIZE;

	for (uint32_t l = 0; l < n_layers; l++) {
		const uint8_t *e = b + QS_Q8_HDR_SIZE + l * QS_Q8_LAYER_ENTRY_SIZE;
		uint32_t n_in = qs_le_rd16(e), n_out = qs_le_rd16(e + 2);
		size_t nw = (size_t)n_in * n_out;
		int hidden = l + 1 < n_layers;

		for (size_t i = 0; i < nw; i++)
			if (b[off + i] == 0x80)
				return q8_fail(QS_E_VALUE, msg, msglen, label,
					       "layer %u weight [%zu][%zu] (offset %zu) is -128; "
					       "weights are -127..127",
					       l + 1, i / n_in, i % n_in, off + i);
		for (size_t i = nw; i < QS_Q8_PAD4(nw); i++)
			if (b[off + i])
				return q8_fail(
				    QS_E_VALUE, msg, msglen, label,
				    "layer %u weight padding byte at offset %zu is not 0", l + 1,
				    off + i);
		off += QS_Q8_PAD4(nw);
		for (uint32_t j = 0; j < n_out; j++, off += 4) {
			int32_t bias = (int32_t)qs_le_rd32(b + off);

			if (bias > QS_INT8_MAX_ABS_BIAS || bias < -QS_INT8_MAX_ABS_BIAS)
				return q8_fail(
				    QS_E_VALUE, msg, msglen, label,
				    "layer %u bias [%u] (offset %zu) is %d, beyond +-2^28", l + 1,
				    j, off, bias);
		}
		if (!hidden)
			continue;
		for (uint32_t j = 0; j < n_out; j++, off += 4) {
			int32_t m = (int32_t)qs_le_rd32(b + off);

			if (m <= 0)
				return q8_fail(
				    QS_E_VALUE, msg, msglen, label,
				    "layer %u requant M [%u] (offset %zu) is %d; M is 1..2^31-1",
				    l + 1, j, off, m);
		}
		for (uint32_t j = 0; j < n_out; j++)
			if (b[off + j] < QS_INT8_S_MIN || b[off + j] > QS_INT8_S_MAX)
				return q8_fail(
				    QS_E_VALUE, msg, msglen, label,
				    "layer %u requant S [%u] (offset %zu) is %u; S is %d..%d",
				    l + 1, j, off + j, b[off + j], QS_INT8_S_MIN, QS_INT8_S_MAX);
		for (uint32_t j = n_out; j < QS_Q8_PAD4(n_out); j++)
			if (b[off + j])
				return q8_fail(QS_E_VALUE, msg, msglen, label,
					       "layer %u shift padding byte at offset %zu is not 0",
					       l + 1, off + j);
		off += QS_Q8_PAD4(n_out);
	}
	for (uint32_t a = 0; a < n_actions; a++, off += QS_Q8_ACTION_SIZE) {
		uint32_t seqs = qs_le_rd32(b + off), toks = qs_le_rd32(b + off + 4);
		uint32_t kv = qs_le_rd32(b + off + 8), fl = qs_le_rd32(b + off + 12);

		if (!seqs || !toks || kv > 100 || (fl & ~QS_Q8_ACT_FLAGS_VALID) ||
		    (fl & QS_Q8_ACT_ORDER_MASK) > QS_Q8_ACT_ORDER_PRIORITY ||
		    (fl & QS_Q8_ACT_SPEC_MASK) >> QS_Q8_ACT_SPEC_SHIFT > QS_Q8_ACT_SPEC_MAX)
			return q8_fail(
			    QS_E_VALUE, msg, msglen, label,
			    "action %u (offset %zu): max_seqs %u, max_tokens %u, kv_reserve_pct "
			    "%u, flags %#x; needs seqs >= 1, tokens >= 1, pct <= 100, flags: order "
			    "0..2 in bits 0-1, coalesce bit 2, speculation depth 0..8 in bits 3-6, "
			    "no other bit",
			    a, off, seqs, toks, kv, fl);
	}
	return QS_OK;
}

int
qs_q8__check(const uint8_t *b, size_t len, const char *label,
	     const struct qs_policy_load_opts *opts, int *sig_present, char *msg, size_t msglen)
{
	size_t expect = 0;
	uint32_t file_size, crc, want_crc;
	uint64_t cid;
	int rc;

	if ((rc = check_header(b, len, label, opts, msg, msglen)))
		return rc;
	file_size = qs_le_rd32(b + QS_Q8_HDR_FILE_SIZE);
	if (file_size > QS_Q8_MAX_FILE_SIZE)
		return q8_fail(
		    QS_E_SIZE, msg, msglen, label,
		    "header says %u bytes (offset %d), beyond the largest valid policy (%u)",
		    file_size, QS_Q8_HDR_FILE_SIZE, (unsigned)QS_Q8_MAX_FILE_SIZE);
	if ((rc = check_layers(b, len, label, &expect, msg, msglen)))
		return rc;
	if (file_size != expect)
		return q8_fail(QS_E_SIZE, msg, msglen, label,
			       "header says %u bytes (offset %d) but its layers take %zu",
			       file_size, QS_Q8_HDR_FILE_SIZE, expect);
	if (len < file_size)
		return q8_fail(QS_E_TRUNCATED, msg, msglen, label,
			       "%zu bytes, truncated: the header says %u", len, file_size);
	if (len != file_size && len != (size_t)file_size + QS_Q8_SIG_SIZE)
		return q8_fail(QS_E_SIZE, msg, msglen, label,
			       "%zu bytes follow the %u-byte policy (a signature trailer is %d)",
			       len - file_size, file_size, QS_Q8_SIG_SIZE);
	crc = qs_le_rd32(b + file_size - 4);
	want_crc = qs_crc32c(0, b, file_size - 4);
	if (crc != want_crc)
		return q8_fail(QS_E_CRC, msg, msglen, label,
			       "CRC32C at offset %u is %08x, the content gives %08x: corrupted%s",
			       file_size - 4, crc, want_crc,
			       len != file_size ? ", or tampered after signing" : "");
	*sig_present = len != file_size;
	if ((rc = check_signature(b, file_size, label, opts, *sig_present, msg, msglen)))
		return rc;
	if ((rc = check_values(b, label, msg, msglen)))
		return rc;
	cid = qs_q8_content_id(b, file_size);
	if (cid != qs_le_rd64(b + QS_Q8_HDR_CONTENT_ID))
		return q8_fail(QS_E_VALUE, msg, msglen, label,
			       "content id %016llx at offset %d, the content gives %016llx",
			       (unsigned long long)qs_le_rd64(b + QS_Q8_HDR_CONTENT_ID),
			       QS_Q8_HDR_CONTENT_ID, (unsigned long long)cid);
	return QS_OK;
}

static size_t
align64(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

/* The tile kernels' derived arrays for a hidden layer (struct qs_policy_layer's w_blk
 * and clamp), carved from the load's allocation; the output layer and a hidden
 * layer's last n_out % 8 outputs are read row-major (kernel_tile.h), so they have none. */
static void
blocks_build(struct qs_policy_layer *L, uint8_t *mem, size_t *at)
{
	unsigned ng = L->w_stride / 4u, nb = L->n_out / 8u;
	int8_t *wb = (int8_t *)(mem + *at);
	int32_t *clamp;

	*at += align64((size_t)nb * 8 * L->w_stride);
	for (unsigned b = 0; b < nb; b++)
		for (unsigned g = 0; g < ng; g++)
			for (unsigned q = 0; q < 8; q++)
				memcpy(wb + (((size_t)b * ng + g) * 8 + q) * 4,
				       L->w + (size_t)(8 * b + q) * L->w_stride + 4 * g, 4);
	L->w_blk = wb;
	clamp = (int32_t *)(mem + *at);
	*at += align64(4 * (size_t)L->n_out);
	for (unsigned j = 0; j < L->n_out; j++)
		clamp[j] = qs_kern_clamp_bound(L->m[j], L->s[j]);
	L->clamp = clamp;
}

int
qs_policy_load(const void *buf, size_t len, const char *label,
	       const struct qs_policy_load_opts *opts, struct qs_policy **out, char *msg,
	       size_t msglen)
{
	const uint8_t *b = buf;
	struct qs_policy *p;
	uint32_t n_layers, n_actions;
	size_t need, off, at;
	uint8_t *mem;
	int sig = 0, rc;

	if (!buf || !out)
		return q8_fail(QS_E_ARG, msg, msglen, label, "no input or no output pointer");
	if ((rc = qs_q8__check(b, len, label, opts, &sig, msg, msglen)))
		return rc;
	n_layers = qs_le_rd16(b + QS_Q8_HDR_LAYERS);
	n_actions = qs_le_rd16(b + QS_Q8_HDR_ACTIONS);

	/* One allocation: the struct, then each layer's arrays, each 64-byte aligned. */
	need = align64(sizeof(*p));
	for (uint32_t l = 0; l < n_layers; l++) {
		const uint8_t *e = b + QS_Q8_HDR_SIZE + l * QS_Q8_LAYER_ENTRY_SIZE;
		size_t n_in = qs_le_rd16(e), n_out = qs_le_rd16(e + 2);

		need += align64(n_out * QS_Q8_PAD4(n_in)) + 3 * align64(4 * n_out) + align64(n_out);
		if (l + 1 < n_layers) /* blocks_build */
			need += align64(n_out / 8 * 8 * QS_Q8_PAD4(n_in)) + align64(4 * n_out);
	}
	need += align64((size_t)n_actions * sizeof(struct qs_q8_action));
	mem = aligned_alloc(64, need);
	if (!mem)
		return q8_fail(QS_E_NOMEM, msg, msglen, label, "cannot allocate %zu bytes", need);
	memset(mem, 0, need);
	p = (struct qs_policy *)mem;
	at = align64(sizeof(*p));

	p->version = qs_le_rd16(b + QS_Q8_HDR_VERSION);
	p->kind = qs_le_rd16(b + QS_Q8_HDR_KIND);
	p->schema = qs_le_rd32(b + QS_Q8_HDR_SCHEMA);
	p->created = qs_le_rd64(b + QS_Q8_HDR_CREATED);
	p->content_id = qs_le_rd64(b + QS_Q8_HDR_CONTENT_ID);
	p->file_size = qs_le_rd32(b + QS_Q8_HDR_FILE_SIZE);
	p->crc = qs_le_rd32(b + p->file_size - 4);
	p->has_signature = sig;
	p->is_signed = sig && opts && (opts->ed25519_pubkey || (opts->keys && opts->keys->n));
	memcpy(p->name, b + QS_Q8_HDR_NAME, QS_Q8_NAME_LEN);
	p->n_layers = (uint16_t)n_layers;
	p->n_actions = (uint16_t)n_actions;

	off = QS_Q8_HDR_SIZE + (size_t)n_layers * QS_Q8_LAYER_ENTRY_SIZE;
	for (uint32_t l = 0; l < n_layers; l++) {
		const uint8_t *e = b + QS_Q8_HDR_SIZE + l * QS_Q8_LAYER_ENTRY_SIZE;
		struct qs_policy_layer *L = &p->layer[l];
		uint16_t n_in = qs_le_rd16(e), n_out = qs_le_rd16(e + 2);
		int8_t *w;
		int32_t *bias, *m;
		uint8_t *s;

		L->n_in = n_in;
		L->n_out = n_out;
		L->w_stride = (uint16_t)QS_Q8_PAD4(n_in);
		w = (int8_t *)(mem + at);
		at += align64((size_t)n_out * L->w_stride);
		for (uint32_t j = 0; j < n_out; j++)
			memcpy(w + (size_t)j * L->w_stride, b + off + (size_t)j * n_in, n_in);
		off += QS_Q8_PAD4((size_t)n_in * n_out);
		bias = (int32_t *)(mem + at);
		at += align64(4 * (size_t)n_out);
		for (uint32_t j = 0; j < n_out; j++, off += 4)
			bias[j] = (int32_t)qs_le_rd32(b + off);
		m = (int32_t *)(mem + at);
		at += align64(4 * (size_t)n_out);
		s = mem + at;
		at += align64(4 * (size_t)n_out) + align64(n_out);
		if (l + 1 < n_layers) {
			for (uint32_t j = 0; j < n_out; j++, off += 4)
				m[j] = (int32_t)qs_le_rd32(b + off);
			memcpy(s, b + off, n_out);
			off += QS_Q8_PAD4(n_out);
			L->m = m;
			L->s = s;
		}
		L->w = w;
		L->bias = bias;
		if (L->m)
			blocks_build(L, mem, &at);
		if (n_in > p->max_dim)
			p->max_dim = n_in;
		if (n_out > p->max_dim)
			p->max_dim = n_out;
	}
	if (n_actions) {
		struct qs_q8_action *a = (struct qs_q8_action *)(mem + at);

		for (uint32_t i = 0; i < n_actions; i++, off += QS_Q8_ACTION_SIZE) {
			a[i].max_seqs = qs_le_rd32(b + off);
			a[i].max_tokens = qs_le_rd32(b + off + 4);
			a[i].kv_reserve_pct = qs_le_rd32(b + off + 8);
			a[i].flags = qs_le_rd32(b + off + 12);
		}
		p->action = a;
	}
	p->n_in = p->layer[0].n_in;
	p->n_out = p->layer[n_layers - 1].n_out;
	*out = p;
	return QS_OK;
}

int
qs_q8__read_file(const char *path, uint8_t **out, size_t *out_len, char *msg, size_t msglen)
{
	/* Read at most one byte past the largest valid file: enough to call it too big. */
	enum { CAP = QS_Q8_MAX_FILE_SIZE + QS_Q8_SIG_SIZE + 1 };
	uint8_t *buf;
	size_t len = 0;
	ssize_t r;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return q8_fail(QS_E_IO, msg, msglen, path, "cannot open: %s", strerror(errno));
	buf = malloc(CAP);
	if (!buf) {
		close(fd);
		return q8_fail(QS_E_NOMEM, msg, msglen, path, "cannot allocate a read buffer");
	}
	while (len < CAP && (r = read(fd, buf + len, CAP - len)) != 0) {
		if (r < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			free(buf);
			close(fd);
			return q8_fail(QS_E_IO, msg, msglen, path, "read failed: %s", strerror(e));
		}
		len += (size_t)r;
	}
	close(fd);
	if (len == CAP) {
		free(buf);
		return q8_fail(QS_E_SIZE, msg, msglen, path,
			       "larger than the largest valid policy (%d bytes)",
			       (int)(QS_Q8_MAX_FILE_SIZE + QS_Q8_SIG_SIZE));
	}
	*out = buf;
	*out_len = len;
	return QS_OK;
}

int
qs_policy_load_file(const char *path, const struct qs_policy_load_opts *opts,
		    struct qs_policy **out, char *msg, size_t msglen)
{
	uint8_t *buf;
	size_t len;
	int rc;

	if ((rc = qs_q8__read_file(path, &buf, &len, msg, msglen)))
		return rc;
	rc = qs_policy_load(buf, len, path, opts, out, msg, msglen);
	free(buf);
	return rc;
}

void
qs_policy_free(struct qs_policy *p)
{
	free(p);
}
