/*
 * test_q8.c - the .q8 loader and writer (include/qsteer/q8.h, policy.h).
 *
 * Why: DESIGN.md 3.5 says a truncated, oversized, corrupted or mismatched file is an
 * error message, never a crash and never a policy. These tests write -> load round
 * trips field by field, then feed the loader every truncation and every single-bit
 * flip of valid files (each copy in an exact-size buffer, so ASan sees any read past
 * the end), and hand-crafted files where one field is wrong -- with the CRC and the
 * content id recomputed so that the intended check is the one that fires, and the
 * specific status asserted. Signatures are checked when libsodium is built in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qs_test.h"

#ifdef TEST_HAVE_SODIUM
#include <sodium.h>
#endif

#include "qsteer/policy.h"
#include "qsteer/status.h"
#include "testutil.h"

/* A 16 -> 24 -> 6 classifier and a 16 -> 32 -> 16 -> 1 router, from fixed seeds. */
struct sample {
	struct qs_q8_desc d;
	int8_t w[3][32 * 32];
	int32_t bias[3][32], m[3][32];
	uint8_t s[3][32];
	struct qs_q8_action act[6];
	uint8_t file[8192];
	size_t len;
};

static void
make_sample(struct sample *S, int classifier)
{
	static const uint16_t cls[] = {16, 24, 6}, rtr[] = {16, 32, 16, 1};
	const uint16_t *dims = classifier ? cls : rtr;
	struct tu_rng r = {classifier ? 11u : 22u};
	char msg[256];

	memset(S, 0, sizeof(*S));
	S->d.kind = classifier ? QS_Q8_KIND_CLASSIFIER : QS_Q8_KIND_SCORER;
	S->d.schema = classifier ? QS_SCHEMA_BATCH_V1 : QS_SCHEMA_ROUTER_V1;
	S->d.name = classifier ? "batch.q8" : "router.q8";
	S->d.created = 1712345678901ull;
	S->d.n_layers = classifier ? 2 : 3;
	for (uint32_t l = 0; l < S->d.n_layers; l++) {
		uint32_t n_in = dims[l], n_out = dims[l + 1];

		for (uint32_t i = 0; i < n_in * n_out; i++)
			S->w[l][i] = (int8_t)tu_range(&r, -127, 127);
		for (uint32_t j = 0; j < n_out; j++) {
			S->bias[l][j] =
			    (int32_t)tu_range(&r, -QS_INT8_MAX_ABS_BIAS, QS_INT8_MAX_ABS_BIAS);
			S->m[l][j] = (int32_t)tu_range(&r, 1, QS_INT8_M_MAX);
			S->s[l][j] = (uint8_t)tu_range(&r, 1, 62);
		}
		S->d.layer[l] = (struct qs_q8_layer_desc){(uint16_t)n_in,
							  (uint16_t)n_out,
							  S->w[l],
							  S->bias[l],
							  l + 1 < S->d.n_layers ? S->m[l] : NULL,
							  l + 1 < S->d.n_layers ? S->s[l] : NULL};
	}
	if (classifier) {
		for (uint32_t a = 0; a < 6; a++)
			S->act[a] = (struct qs_q8_action){a + 1, 256 * (a + 1), 10 * a, 0};
		S->d.n_actions = 6;
		S->d.action = S->act;
	}
	if (qs_q8_write(&S->d, S->file, sizeof(S->file), &S->len, msg, sizeof(msg)) != QS_OK)
		fail_msg("writer: %s", msg);
}

/* Load a copy of buf in an exact-size allocation; returns the status, message in msg. */
static int
load_copy(const uint8_t *buf, size_t len, const struct qs_policy_load_opts *opts, char *msg,
	  size_t msglen)
{
	uint8_t *c = malloc(len ? len : 1);
	struct qs_policy *p = NULL, *const sentinel = (struct qs_policy *)&p;
	int rc;

	memcpy(c, buf, len);
	p = sentinel;
	msg[0] = 0;
	rc = qs_policy_load(c, len, "t.q8", opts, &p, msg, msglen);
	if (rc == QS_OK) {
		assert_ptr_not_equal(p, sentinel);
		qs_policy_free(p);
	} else {
		assert_ptr_equal(p, sentinel); /* *out untouched on failure */
		assert_true(msg[0] != 0);      /* and a message says why */
	}
	free(c);
	return rc;
}

static int
load_status(const uint8_t *buf, size_t len, const struct qs_policy_load_opts *opts)
{
	char msg[512];

	return load_copy(buf, len, opts, msg, sizeof(msg));
}

/* Expect status want; print the message so the log shows what users would see. */
static void
expect(const uint8_t *buf, size_t len, const struct qs_policy_load_opts *opts, int want,
       const char *what)
{
	char msg[512];
	int rc = load_copy(buf, len, opts, msg, sizeof(msg));

	if (rc != want)
		fail_msg("%s: status %s, expected %s (%s)", what, qs_status_name(rc),
			 qs_status_name(want), msg);
	printf("  %-34s -> %-9s %s\n", what, qs_status_name(rc), msg);
}

static void
check_roundtrip(const struct sample *S, const struct qs_policy *p)
{
	const struct qs_q8_desc *d = &S->d;

	assert_int_equal(p->version, QS_Q8_VERSION);
	assert_int_equal(p->kind, d->kind);
	assert_int_equal(p->schema, d->schema);
	assert_true(p->created == d->created);
	assert_true(p->content_id == qs_q8_content_id(S->file, S->len));
	assert_int_equal(p->crc, qs_le_rd32(S->file + S->len - 4));
	assert_int_equal(p->crc, qs_crc32c(0, S->file, S->len - 4));
	assert_int_equal(p->file_size, S->len);
	assert_int_equal(p->file_size, qs_q8_size(d));
	assert_false(p->is_signed);
	assert_string_equal(p->name, d->name);
	assert_int_equal(p->n_layers, d->n_layers);
	assert_int_equal(p->n_actions, d->n_actions);
	assert_int_equal(p->n_in, d->layer[0].n_in);
	assert_int_equal(p->n_out, d->layer[d->n_layers - 1].n_out);
	for (uint32_t l = 0, max = 0; l < d->n_layers; l++) {
		const struct qs_policy_layer *L = &p->layer[l];
		const struct qs_q8_layer_desc *D = &d->layer[l];

		assert_int_equal(L->n_in, D->n_in);
		assert_int_equal(L->n_out, D->n_out);
		assert_int_equal(L->w_stride % 4, 0);
		assert_true(L->w_stride >= L->n_in && L->w_stride < L->n_in + 4);
		for (uint32_t j = 0; j < L->n_out; j++) {
			assert_memory_equal(L->w + (size_t)j * L->w_stride,
					    D->w + (size_t)j * D->n_in, D->n_in);
			for (uint32_t i = D->n_in; i < L->w_stride; i++)
				assert_int_equal(L->w[(size_t)j * L->w_stride + i], 0);
		}
		assert_memory_equal(L->bias, D->bias, 4 * (size_t)D->n_out);
		if (l + 1 < d->n_layers) {
			assert_non_null(L->m);
			assert_non_null(L->s);
			assert_memory_equal(L->m, D->m, 4 * (size_t)D->n_out);
			assert_memory_equal(L->s, D->s, D->n_out);
		} else {
			assert_null(L->m);
			assert_null(L->s);
		}
		max = L->n_in > max ? L->n_in : max;
		max = L->n_out > max ? L->n_out : max;
		if (l + 1 == d->n_layers)
			assert_int_equal(p->max_dim, max);
	}
	if (d->n_actions) {
		assert_non_null(p->action);
		assert_memory_equal(p->action, d->action, d->n_actions * sizeof(*d->action));
	} else {
		assert_null(p->action);
	}
}

static void
test_roundtrip(void **state)
{
	static struct sample S;
	char dir[] = "/tmp/qsteer-q8-XXXXXX", path[256], msg[256];

	(void)state;
	assert_non_null(mkdtemp(dir));
	for (int cls = 0; cls < 2; cls++) {
		struct qs_policy *p = NULL;
		size_t flen;
		uint8_t *f;

		make_sample(&S, cls);
		assert_int_equal(qs_policy_load(S.file, S.len, "x", NULL, &p, msg, sizeof(msg)),
				 QS_OK);
		check_roundtrip(&S, p);
		qs_policy_free(p);
		/* Through the file system: write_file, load_file, and the same bytes. */
		snprintf(path, sizeof(path), "%s/%s", dir, S.d.name);
		assert_int_equal(qs_q8_write_file(&S.d, path, msg, sizeof(msg)), QS_OK);
		f = tu_read_file(path, &flen);
		assert_non_null(f);
		assert_int_equal(flen, S.len);
		assert_memory_equal(f, S.file, S.len);
		free(f);
		assert_int_equal(qs_policy_load_file(path, NULL, &p, msg, sizeof(msg)), QS_OK);
		check_roundtrip(&S, p);
		qs_policy_free(p);
		/* expect_kind / expect_schema that match. */
		{
			struct qs_policy_load_opts o = {.expect_schema = S.d.schema,
							.expect_kind = S.d.kind};

			assert_int_equal(qs_policy_load(S.file, S.len, "x", &o, &p, NULL, 0),
					 QS_OK);
			qs_policy_free(p);
		}
		unlink(path);
	}
	rmdir(dir);
	/* The content id ignores name and time; the CRC does not. */
	{
		static struct sample T;

		make_sample(&S, 1);
		make_sample(&T, 1);
		T.d.name = "other";
		T.d.created = 5;
		assert_int_equal(qs_q8_write(&T.d, T.file, sizeof(T.file), &T.len, NULL, 0), QS_OK);
		assert_true(qs_q8_content_id(S.file, S.len) == qs_q8_content_id(T.file, T.len));
		assert_int_not_equal(qs_le_rd32(S.file + S.len - 4),
				     qs_le_rd32(T.file + T.len - 4));
		T.w[0][5] ^= 1;
		assert_int_equal(qs_q8_write(&T.d, T.file, sizeof(T.file), &T.len, NULL, 0), QS_OK);
		assert_true(qs_q8_content_id(S.file, S.len) != qs_q8_content_id(T.file, T.len));
	}
}

/* The writer refuses what the loader would refuse. */
static void
test_writer_refuses(void **state)
{
	static struct sample S;
	uint8_t buf[8192];
	size_t len;
	char msg[256];

	(void)state;
	make_sample(&S, 1);
	S.w[0][3] = -128;
	assert_int_equal(qs_q8_write(&S.d, buf, sizeof(buf), &len, msg, sizeof(msg)), QS_E_VALUE);
	make_sample(&S, 1);
	S.m[0][2] = 0;
	assert_int_equal(qs_q8_write(&S.d, buf, sizeof(buf), &len, msg, sizeof(msg)), QS_E_VALUE);
	make_sample(&S, 1);
	S.s[0][0] = 63;
	assert_int_equal(qs_q8_write(&S.d, buf, sizeof(buf), &len, msg, sizeof(msg)), QS_E_VALUE);
	make_sample(&S, 1);
	S.d.name = "a name that is longer than 31 chars";
	assert_int_equal(qs_q8_write(&S.d, buf, sizeof(buf), &len, msg, sizeof(msg)), QS_E_VALUE);
	make_sample(&S, 1);
	assert_int_equal(qs_q8_write(&S.d, buf, S.len - 1, &len, msg, sizeof(msg)), QS_E_ARG);
	S.d.layer[1].n_in = 23;
	assert_int_equal(qs_q8_write(&S.d, buf, sizeof(buf), &len, msg, sizeof(msg)), QS_E_SHAPE);
	make_sample(&S, 1);
	S.d.n_layers = 0;
	assert_int_equal(qs_q8_size(&S.d), 0);
	assert_int_equal(qs_q8_write(&S.d, buf, sizeof(buf), &len, msg, sizeof(msg)), QS_E_SHAPE);
	make_sample(&S, 0);
	S.d.layer[0].n_in = 15; /* router-v1 needs 16 inputs */
	S.d.layer[0].n_out = 32;
	assert_int_equal(qs_q8_write(&S.d, buf, sizeof(buf), &len, msg, sizeof(msg)), QS_E_SCHEMA);
}

/* The example from policy.h, built by hand (the writer refuses it). */
static void
test_shape_message(void **state)
{
	static const uint16_t n_in[] = {16, 32, 16}, n_out[] = {16, 16, 1};
	char msg[256], dir[] = "/tmp/qsteer-q8-XXXXXX", path[300];
	struct qs_policy *p = NULL;
	size_t len;
	uint8_t *b =
	    tu_craft(QS_Q8_KIND_SCORER, QS_SCHEMA_ROUTER_V1, 3, n_in, n_out, 0, "router", &len);

	(void)state;
	assert_int_equal(qs_le_rd32(b + len - 4), qs_crc32c(0, b, len - 4));
	assert_int_equal(qs_policy_load(b, len, "router.q8", NULL, &p, msg, sizeof(msg)),
			 QS_E_SHAPE);
	assert_string_equal(msg, "router.q8: layer 2 has 32 inputs but layer 1 has 16 outputs");
	assert_null(p);
	/* From a file, the label is the path. */
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/router.q8", dir);
	assert_int_equal(tu_write_file(path, b, len), 0);
	assert_int_equal(qs_policy_load_file(path, NULL, &p, msg, sizeof(msg)), QS_E_SHAPE);
	assert_true(strncmp(msg, path, strlen(path)) == 0);
	assert_non_null(strstr(msg, ": layer 2 has 32 inputs but layer 1 has 16 outputs"));
	/* A tiny message buffer is still NUL-terminated, a NULL one is fine. */
	memset(msg, 'x', sizeof(msg));
	assert_int_equal(qs_policy_load(b, len, "router.q8", NULL, &p, msg, 8), QS_E_SHAPE);
	assert_true(strlen(msg) < 8);
	assert_int_equal(qs_policy_load(b, len, "router.q8", NULL, &p, NULL, 0), QS_E_SHAPE);
	unlink(path);
	rmdir(dir);
	free(b);
}

/* Every prefix of valid files: always TRUNCATED (each check that can see a short
 * input says so), never OK, never a read past the end. */
static void
test_truncation(void **state)
{
	static struct sample S;

	(void)state;
	for (int cls = 0; cls < 2; cls++) {
		make_sample(&S, cls);
		for (size_t n = 0; n < S.len; n++) {
			int rc = load_status(S.file, n, NULL);

			if (rc != QS_E_TRUNCATED)
				fail_msg("%s truncated to %zu of %zu bytes: %s", S.d.name, n, S.len,
					 qs_status_name(rc));
		}
		/* Longer: 1..71 extra bytes is no signature trailer. */
		for (size_t extra = 1; extra < QS_Q8_SIG_SIZE; extra++) {
			memset(S.file + S.len, 0, extra);
			assert_int_equal(load_status(S.file, S.len + extra, NULL), QS_E_SIZE);
		}
	}
	assert_int_equal(qs_policy_load(NULL, 0, "t", NULL, &(struct qs_policy *){NULL}, NULL, 0),
			 QS_E_ARG);
	assert_int_equal(qs_policy_load(S.file, S.len, "t", NULL, NULL, NULL, 0), QS_E_ARG);
}

/* Every single-bit flip is refused; where the first failing check is certain, with
 * its status. */
static void
test_bitflips(void **state)
{
	static struct sample S;
	uint64_t n = 0;

	(void)state;
	for (int cls = 0; cls < 2; cls++) {
		size_t payload;

		make_sample(&S, cls);
		payload = QS_Q8_HDR_SIZE + (size_t)S.d.n_layers * QS_Q8_LAYER_ENTRY_SIZE;
		for (size_t i = 0; i < S.len; i++)
			for (int bit = 0; bit < 8; bit++) {
				int rc, want = -1;

				S.file[i] ^= (uint8_t)(1u << bit);
				rc = load_status(S.file, S.len, NULL);
				S.file[i] ^= (uint8_t)(1u << bit);
				if (i < 4)
					want = QS_E_MAGIC;
				else if (i < 6)
					want = QS_E_VERSION;
				else if (i < 8)
					want = QS_E_KIND;
				else if (i >= QS_Q8_HDR_CREATED && i < QS_Q8_HDR_NAME)
					want = QS_E_CRC; /* created and content id: only the CRC */
				else if (i >= payload)
					want = QS_E_CRC; /* weights .. CRC: the CRC comes first */
				if (rc == QS_OK || (want >= 0 && rc != want))
					fail_msg("%s: flipping bit %d of byte %zu gives %s",
						 S.d.name, bit, i, qs_status_name(rc));
				n++;
			}
	}
	printf("  %llu single-bit flips refused\n", (unsigned long long)n);
}

/* Make a sample, let fn damage it, fix CRC and content id, expect a status. */
static void
crafted(int cls, void (*fn)(uint8_t *b, size_t *len), int fix, int want, const char *what,
	const struct qs_policy_load_opts *opts)
{
	static struct sample S;

	make_sample(&S, cls);
	fn(S.file, &S.len);
	if (fix)
		tu_refix(S.file, S.len);
	expect(S.file, S.len, opts, want, what);
}

/* Offsets in the classifier sample (16 -> 24 -> 6). */
#define CLS_W0	(QS_Q8_HDR_SIZE + 2 * QS_Q8_LAYER_ENTRY_SIZE)
#define CLS_B0	(CLS_W0 + 16 * 24)
#define CLS_M0	(CLS_B0 + 4 * 24)
#define CLS_S0	(CLS_M0 + 4 * 24)
#define CLS_W1	(CLS_S0 + 24)
#define CLS_B1	(CLS_W1 + 24 * 6)
#define CLS_ACT (CLS_B1 + 4 * 6)

static void
magic(uint8_t *b, size_t *l)
{
	(void)l;
	b[1] = 'X';
}

static void
version0(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_VERSION, 0);
}

static void
version2(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_VERSION, 2);
}

static void
kind0(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_KIND, 0);
}

static void
kind3(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_KIND, 3);
}

static void
schema_unknown(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr32(b + QS_Q8_HDR_SCHEMA, 77);
}

static void
schema_router(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr32(b + QS_Q8_HDR_SCHEMA, 1);
}

static void
hdr_size(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_HDR_SIZE, 128);
}

static void
flags(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_FLAGS, 1);
}

static void
reserved(uint8_t *b, size_t *l)
{
	(void)l;
	b[QS_Q8_HDR_RESERVED + 23] = 1;
}

static void
name_ctl(uint8_t *b, size_t *l)
{
	(void)l;
	b[QS_Q8_HDR_NAME + 2] = '\n';
}

static void
name_nonul(uint8_t *b, size_t *l)
{
	(void)l;
	memset(b + QS_Q8_HDR_NAME, 'a', 32);
}

static void
name_pad(uint8_t *b, size_t *l)
{
	(void)l;
	b[QS_Q8_HDR_NAME + 30] = 'z';
}

static void
layers0(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_LAYERS, 0);
}

static void
layers9(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_LAYERS, 9);
}

static void
layers_max(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_LAYERS, 65535);
}

static void
layers_3(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_LAYERS, 3);
}

static void
in0(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_SIZE + 8, 0);
}

static void
in257(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_SIZE + 8, 257);
}

static void
in_max(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_SIZE + 8, 65535);
}

static void
out0(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_SIZE + 2, 0);
}

static void
out257(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_SIZE + 10, 257);
}

static void
out_max(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_SIZE + 2, 65535);
}

static void
in_schema(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_SIZE, 17);
}

static void
entry_rsv(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr32(b + QS_Q8_HDR_SIZE + 12, 1);
}

static void
size_huge(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr32(b + QS_Q8_HDR_FILE_SIZE, 0xffffffffu);
}

static void
size_max1(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr32(b + QS_Q8_HDR_FILE_SIZE, QS_Q8_MAX_FILE_SIZE + 1);
}

static void
size_minus4(uint8_t *b, size_t *l)
{
	qs_le_wr32(b + QS_Q8_HDR_FILE_SIZE, (uint32_t)*l - 4);
}

static void
size_plus4(uint8_t *b, size_t *l)
{
	qs_le_wr32(b + QS_Q8_HDR_FILE_SIZE, (uint32_t)*l + 4);
}

static void
weight_m128(uint8_t *b, size_t *l)
{
	(void)l;
	b[CLS_W1 + 17] = 0x80;
}

static void
bias_big(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr32(b + CLS_B0 + 8, QS_INT8_MAX_ABS_BIAS + 1);
}

static void
bias_neg(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr32(b + CLS_B1, (uint32_t)-QS_INT8_MAX_ABS_BIAS - 1);
}

static void
bias_edge(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr32(b + CLS_B1, (uint32_t)-QS_INT8_MAX_ABS_BIAS);
}

static void
m0(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr32(b + CLS_M0 + 4 * 23, 0);
}

static void
mneg(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr32(b + CLS_M0, 0x80000000u);
}

static void
m_edge(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr32(b + CLS_M0, 0x7fffffffu);
}

static void
s0(uint8_t *b, size_t *l)
{
	(void)l;
	b[CLS_S0 + 5] = 0;
}

static void
s63(uint8_t *b, size_t *l)
{
	(void)l;
	b[CLS_S0] = 63;
}

static void
s255(uint8_t *b, size_t *l)
{
	(void)l;
	b[CLS_S0 + 23] = 255;
}

static void
act_seqs0(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr32(b + CLS_ACT + 16 * 5, 0);
}

static void
act_toks0(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr32(b + CLS_ACT + 4, 0);
}

static void
act_pct(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr32(b + CLS_ACT + 8, 101);
}

static void
act_flags(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr32(b + CLS_ACT + 12, 0x80); /* a reserved bit (past the depth field) */
}

static void
act_spec9(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr32(b + CLS_ACT + 12, 9u << QS_Q8_ACT_SPEC_SHIFT); /* depth 9 > 8 */
}

static void
act_spec8(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr32(b + CLS_ACT + 12, 8u << QS_Q8_ACT_SPEC_SHIFT | QS_Q8_ACT_ORDER_SHORTEST);
}

static void
act_flags_ok(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr32(b + CLS_ACT + 12, QS_Q8_ACT_ORDER_PRIORITY | QS_Q8_ACT_COALESCE);
}

static void
act_order(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr32(b + CLS_ACT + 12, 3); /* order 3 is not defined */
}

static void
actions5(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_ACTIONS, 5);
}

static void
actions0(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_ACTIONS, 0);
}

static void
actions65(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_ACTIONS, 65);
}

static void
trailing1(uint8_t *b, size_t *l)
{
	b[(*l)++] = 0;
}

static void
trailing72(uint8_t *b, size_t *l)
{
	memset(b + *l, 0xee, 72);
	*l += 72;
}

static void
crc_bad(uint8_t *b, size_t *l)
{
	b[*l - 1] ^= 0x40;
}

static void
cid_bad(uint8_t *b, size_t *l)
{
	b[QS_Q8_HDR_CONTENT_ID] ^= 1;
	qs_le_wr32(b + *l - 4, qs_crc32c(0, b, *l - 4));
}

static void
nothing(uint8_t *b, size_t *l)
{
	(void)b;
	(void)l;
}

/* Router sample (16 -> 32 -> 16 -> 1) damage. */
static void
scorer_actions(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_ACTIONS, 1);
}

static void
scorer_as_cls(uint8_t *b, size_t *l)
{
	(void)l;
	qs_le_wr16(b + QS_Q8_HDR_KIND, 2);
	qs_le_wr16(b + QS_Q8_HDR_ACTIONS, 1);
}

static void
test_crafted(void **state)
{
	struct qs_policy_load_opts want_router = {.expect_schema = QS_SCHEMA_ROUTER_V1};
	struct qs_policy_load_opts want_raw = {.expect_schema = QS_SCHEMA_RAW};
	struct qs_policy_load_opts want_scorer = {.expect_kind = QS_Q8_KIND_SCORER};

	(void)state;
	crafted(1, nothing, 1, QS_OK, "sample as written", NULL);
	crafted(1, magic, 1, QS_E_MAGIC, "magic", NULL);
	crafted(1, version0, 1, QS_E_VERSION, "version 0", NULL);
	crafted(1, version2, 1, QS_E_VERSION, "version 2", NULL);
	crafted(1, kind0, 1, QS_E_KIND, "kind 0", NULL);
	crafted(1, kind3, 1, QS_E_KIND, "kind 3", NULL);
	crafted(1, nothing, 1, QS_E_KIND, "classifier, scorer wanted", &want_scorer);
	crafted(1, nothing, 1, QS_E_SCHEMA, "batch-v1, router-v1 wanted", &want_router);
	crafted(1, nothing, 1, QS_E_SCHEMA, "batch-v1, raw wanted", &want_raw);
	crafted(1, schema_unknown, 1, QS_E_SCHEMA, "unknown schema", NULL);
	/* sample 1 is a classifier: router-v1 is for scorers */
	crafted(1, schema_router, 1, QS_E_SCHEMA, "router-v1 classifier", &want_router);
	crafted(1, schema_router, 1, QS_E_SCHEMA, "router-v1 classifier", NULL);
	crafted(1, in_schema, 1, QS_E_SCHEMA, "17 inputs, schema has 16", NULL);
	crafted(1, hdr_size, 1, QS_E_VALUE, "header size", NULL);
	crafted(1, flags, 1, QS_E_VALUE, "flags", NULL);
	crafted(1, reserved, 1, QS_E_VALUE, "reserved header byte", NULL);
	crafted(1, name_ctl, 1, QS_E_VALUE, "name with a newline", NULL);
	crafted(1, name_nonul, 1, QS_E_VALUE, "name without NUL", NULL);
	crafted(1, name_pad, 1, QS_E_VALUE, "name padding", NULL);
	crafted(1, layers0, 1, QS_E_SHAPE, "0 layers", NULL);
	crafted(1, layers9, 1, QS_E_SHAPE, "9 layers", NULL);
	crafted(1, layers_max, 1, QS_E_SHAPE, "65535 layers", NULL);
	crafted(1, layers_3, 1, QS_E_SHAPE, "3 layers (table shifts)", NULL);
	crafted(1, in0, 1, QS_E_SHAPE, "layer 2: 0 inputs", NULL);
	crafted(1, in257, 1, QS_E_SHAPE, "layer 2: 257 inputs", NULL);
	crafted(1, in_max, 1, QS_E_SHAPE, "layer 2: 65535 inputs", NULL);
	crafted(1, out0, 1, QS_E_SHAPE, "layer 1: 0 outputs", NULL);
	crafted(1, out257, 1, QS_E_SHAPE, "layer 2: 257 outputs", NULL);
	crafted(1, out_max, 1, QS_E_SHAPE, "layer 1: 65535 outputs", NULL);
	crafted(1, entry_rsv, 1, QS_E_VALUE, "layer table reserved word", NULL);
	crafted(1, size_huge, 1, QS_E_SIZE, "file_size 2^32-1", NULL);
	crafted(1, size_max1, 1, QS_E_SIZE, "file_size max + 1", NULL);
	crafted(1, size_minus4, 1, QS_E_SIZE, "file_size - 4", NULL);
	crafted(1, size_plus4, 1, QS_E_SIZE, "file_size + 4", NULL);
	crafted(1, weight_m128, 1, QS_E_VALUE, "weight -128", NULL);
	crafted(1, bias_big, 1, QS_E_VALUE, "bias 2^28 + 1", NULL);
	crafted(1, bias_neg, 1, QS_E_VALUE, "bias -2^28 - 1", NULL);
	crafted(1, bias_edge, 1, QS_OK, "bias -2^28 (allowed)", NULL);
	crafted(1, m0, 1, QS_E_VALUE, "M = 0", NULL);
	crafted(1, mneg, 1, QS_E_VALUE, "M = -2^31", NULL);
	crafted(1, m_edge, 1, QS_OK, "M = 2^31 - 1 (allowed)", NULL);
	crafted(1, s0, 1, QS_E_VALUE, "S = 0", NULL);
	crafted(1, s63, 1, QS_E_VALUE, "S = 63", NULL);
	crafted(1, s255, 1, QS_E_VALUE, "S = 255", NULL);
	crafted(1, act_seqs0, 1, QS_E_VALUE, "action max_seqs 0", NULL);
	crafted(1, act_toks0, 1, QS_E_VALUE, "action max_tokens 0", NULL);
	crafted(1, act_pct, 1, QS_E_VALUE, "action kv_reserve_pct 101", NULL);
	crafted(1, act_flags, 1, QS_E_VALUE, "action flags", NULL);
	crafted(1, act_order, 1, QS_E_VALUE, "action order", NULL);
	crafted(1, act_flags_ok, 1, QS_OK, "action priority + coalesce", NULL);
	crafted(1, act_spec9, 1, QS_E_VALUE, "action speculation depth 9", NULL);
	crafted(1, act_spec8, 1, QS_OK, "action speculation depth 8", NULL);
	crafted(1, actions5, 1, QS_E_SHAPE, "5 actions, 6 outputs", NULL);
	crafted(1, actions0, 1, QS_E_VALUE, "classifier without actions", NULL);
	crafted(1, actions65, 1, QS_E_VALUE, "65 actions", NULL);
	crafted(1, trailing1, 1, QS_E_SIZE, "1 trailing byte", NULL);
	crafted(1, trailing72, 0, QS_E_SIGNATURE, "72 trailing bytes, not QSIG", NULL);
	crafted(1, crc_bad, 0, QS_E_CRC, "CRC", NULL);
	crafted(1, cid_bad, 0, QS_E_VALUE, "content id (CRC fixed)", NULL);
	crafted(0, scorer_actions, 1, QS_E_VALUE, "scorer with an action", NULL);
	/* router-v1 fixes the kind: the schema check fires before the action-table size */
	crafted(0, scorer_as_cls, 1, QS_E_SCHEMA, "router-v1 file marked classifier", NULL);
	/* Padding bytes must be 0 (a hand-built 3 -> 3 -> 1 scorer: 9 weights). */
	{
		static const uint16_t ni[] = {3, 3}, no[] = {3, 1};
		size_t len;
		uint8_t *b = tu_craft(QS_Q8_KIND_SCORER, QS_SCHEMA_RAW, 2, ni, no, 0, "pad", &len);
		size_t w0 = QS_Q8_HDR_SIZE + 2 * QS_Q8_LAYER_ENTRY_SIZE;

		expect(b, len, NULL, QS_OK, "hand-built 3 -> 3 -> 1");
		b[w0 + 9] = 1;
		tu_refix(b, len);
		expect(b, len, NULL, QS_E_VALUE, "weight padding byte");
		b[w0 + 9] = 0;
		b[w0 + 12 + 12 + 12 + 3] = 1; /* S padding after 3 shifts */
		tu_refix(b, len);
		expect(b, len, NULL, QS_E_VALUE, "shift padding byte");
		free(b);
	}
	/* A scorer whose last layer has 2 outputs. */
	{
		static const uint16_t ni[] = {4}, no[] = {2};
		size_t len;
		uint8_t *b = tu_craft(QS_Q8_KIND_SCORER, QS_SCHEMA_RAW, 1, ni, no, 0, "s2", &len);

		expect(b, len, NULL, QS_E_SHAPE, "scorer with 2 outputs");
		free(b);
	}
	/* The largest valid shape loads: 8 layers of 256 x 256, 64 actions at the end. */
	{
		uint16_t ni[8], no[8];
		size_t len;
		uint8_t *b;

		for (int l = 0; l < 8; l++)
			ni[l] = no[l] = 256;
		no[7] = 64;
		b = tu_craft(QS_Q8_KIND_CLASSIFIER, QS_SCHEMA_RAW, 8, ni, no, 64, "max", &len);
		assert_true(len <= QS_Q8_MAX_FILE_SIZE);
		expect(b, len, NULL, QS_OK, "8 x 256 x 256 classifier");
		free(b);
	}
}

static void
test_files(void **state)
{
	char dir[] = "/tmp/qsteer-q8-XXXXXX", path[300], msg[512];
	struct qs_policy *p = NULL;
	size_t big = QS_Q8_MAX_FILE_SIZE + QS_Q8_SIG_SIZE + 1;
	uint8_t *b;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/missing.q8", dir);
	assert_int_equal(qs_policy_load_file(path, NULL, &p, msg, sizeof(msg)), QS_E_IO);
	assert_non_null(strstr(msg, path));
	assert_null(p);
	/* One byte over the largest possible (signed) file: refused by size. */
	b = calloc(1, big);
	memcpy(b, QS_Q8_MAGIC, 4);
	snprintf(path, sizeof(path), "%s/big.q8", dir);
	assert_int_equal(tu_write_file(path, b, big), 0);
	assert_int_equal(qs_policy_load_file(path, NULL, &p, msg, sizeof(msg)), QS_E_SIZE);
	assert_non_null(strstr(msg, path));
	unlink(path);
	/* Exactly the largest signed size is read, then refused for its content. */
	assert_int_equal(tu_write_file(path, b, big - 1), 0);
	assert_int_not_equal(qs_policy_load_file(path, NULL, &p, msg, sizeof(msg)), QS_OK);
	unlink(path);
	/* A directory is an I/O error, not a crash. */
	assert_int_equal(qs_policy_load_file(dir, NULL, &p, msg, sizeof(msg)), QS_E_IO);
	/* write_file into a missing directory. */
	{
		static struct sample S;

		make_sample(&S, 1);
		snprintf(path, sizeof(path), "%s/no/such/dir.q8", dir);
		assert_int_equal(qs_q8_write_file(&S.d, path, msg, sizeof(msg)), QS_E_IO);
	}
	free(b);
	rmdir(dir);
}

static void
test_signatures(void **state)
{
#ifdef TEST_HAVE_SODIUM
	static struct sample S;
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	uint8_t pk2[crypto_sign_PUBLICKEYBYTES], sk2[crypto_sign_SECRETKEYBYTES];
	struct qs_policy_load_opts o = {.ed25519_pubkey = pk}, o2 = {.ed25519_pubkey = pk2};
	uint8_t signed_file[8192];
	struct qs_policy *p = NULL;
	size_t slen, unsigned_len;
	char msg[256];
	uint64_t flips = 0;

	(void)state;
	if (!qs_q8_have_signatures()) {
		printf("  libsodium linked but the library was built without it: skipped\n");
		skip();
	}
	assert_int_equal(sodium_init() < 0, 0);
	crypto_sign_keypair(pk, sk);
	crypto_sign_keypair(pk2, sk2);
	make_sample(&S, 1);
	unsigned_len = S.len;
	memcpy(signed_file, S.file, S.len);
	assert_int_equal(qs_q8_sign(signed_file, S.len, S.len + 71, sk, &slen, msg, sizeof(msg)),
			 QS_E_ARG);
	assert_int_equal(
	    qs_q8_sign(signed_file, S.len, sizeof(signed_file), sk, &slen, msg, sizeof(msg)),
	    QS_OK);
	assert_int_equal(slen, S.len + QS_Q8_SIG_SIZE);
	assert_memory_equal(signed_file + S.len, QS_Q8_SIG_MAGIC, 4);
	/* Signing twice is refused. */
	assert_int_equal(
	    qs_q8_sign(signed_file, slen, sizeof(signed_file), sk, &slen, msg, sizeof(msg)),
	    QS_E_SIGNATURE);
	assert_int_equal(qs_policy_load(signed_file, slen, "s", &o, &p, msg, sizeof(msg)), QS_OK);
	assert_true(p->is_signed);
	assert_int_equal(p->file_size, unsigned_len);
	qs_policy_free(p);
	/* Without a key the trailer is checked for shape but not verified. */
	assert_int_equal(qs_policy_load(signed_file, slen, "s", NULL, &p, msg, sizeof(msg)), QS_OK);
	assert_false(p->is_signed);
	qs_policy_free(p);
	expect(S.file, unsigned_len, &o, QS_E_SIGNATURE, "unsigned, key given");
	expect(signed_file, slen, &o2, QS_E_SIGNATURE, "signed, wrong key");
	/* Every single-bit flip of the signed file is refused when a key is given. */
	for (size_t i = 0; i < slen; i++)
		for (int bit = 0; bit < 8; bit++) {
			int rc;

			signed_file[i] ^= (uint8_t)(1u << bit);
			rc = load_status(signed_file, slen, &o);
			signed_file[i] ^= (uint8_t)(1u << bit);
			if (rc == QS_OK || (i >= unsigned_len && rc != QS_E_SIGNATURE) ||
			    (i >= QS_Q8_HDR_SIZE + 16 && i < unsigned_len && rc != QS_E_CRC))
				fail_msg("signed file, bit %d of byte %zu: %s", bit, i,
					 qs_status_name(rc));
			flips++;
		}
	printf("  %llu single-bit flips of a signed file refused\n", (unsigned long long)flips);
	/* Tampered content with the CRC recomputed: only the signature catches it. */
	signed_file[CLS_B0] ^= 4;
	tu_refix(signed_file, unsigned_len);
	expect(signed_file, slen, &o, QS_E_SIGNATURE, "tampered, CRC and id recomputed");
	expect(signed_file, slen, NULL, QS_OK, "same file, no key");
#else
	(void)state;
	printf("  built without libsodium: signatures not tested\n");
	assert_false(qs_q8_have_signatures());
	skip();
#endif
}

/* A key set (rotation): keys from files, any of them verifies, the rest refuse. */
static void
test_keyset(void **state)
{
	struct qs_q8_keyset ks;
	char dir[] = "/tmp/qsteer-keyset-XXXXXX", pub[3][128], sec[3][128], bad[128];
	char msg[512];

	(void)state;
	memset(&ks, 0, sizeof(ks));
	assert_non_null(mkdtemp(dir));
	snprintf(bad, sizeof(bad), "%s/bad.pub", dir);
	for (int i = 0; i < 3; i++) {
		snprintf(pub[i], sizeof(pub[i]), "%s/k%d.pub", dir, i);
		snprintf(sec[i], sizeof(sec[i]), "%s/k%d.sec", dir, i);
	}
	if (!qs_q8_have_signatures()) {
		FILE *f = fopen(pub[0], "w");

		/* a key that could not be enforced is refused, never ignored */
		assert_non_null(f);
		fprintf(f, "%064d\n", 0);
		fclose(f);
		assert_int_equal(qs_q8_keyset_add_file(&ks, pub[0], msg, sizeof(msg)),
				 QS_E_UNSUPPORTED);
		assert_non_null(strstr(msg, "no libsodium"));
		unlink(pub[0]);
		rmdir(dir);
		return;
	}
#ifdef TEST_HAVE_SODIUM
	{
		static struct sample S;
		struct qs_policy_load_opts o = {0};
		uint8_t file[3][8192];
		size_t len[3];
		struct qs_policy *p = NULL;
		char list[512];
		FILE *f;

		for (int i = 0; i < 3; i++) {
			uint8_t sk[QS_Q8_SECKEY_LEN];

			assert_int_equal(qs_q8_keygen(pub[i], sec[i], msg, sizeof(msg)), QS_OK);
			assert_int_equal(qs_q8_read_key(sec[i], sk, sizeof(sk), msg, sizeof(msg)),
					 QS_OK);
			make_sample(&S, 1);
			memcpy(file[i], S.file, S.len);
			assert_int_equal(qs_q8_sign(file[i], S.len, sizeof(file[i]), sk, &len[i],
						    msg, sizeof(msg)),
					 QS_OK);
		}
		/* k0 and k1 through a list, k0 again through a file: two keys */
		snprintf(list, sizeof(list), " %s ,%s", pub[0], pub[1]);
		assert_int_equal(qs_q8_keyset_add_list(&ks, list, msg, sizeof(msg)), QS_OK);
		assert_int_equal(qs_q8_keyset_add_file(&ks, pub[0], msg, sizeof(msg)), QS_OK);
		assert_int_equal(ks.n, 2);
		o.keys = &ks;
		for (int i = 0; i < 2; i++) {
			assert_int_equal(
			    qs_policy_load(file[i], len[i], "s", &o, &p, msg, sizeof(msg)), QS_OK);
			assert_true(p->is_signed);
			qs_policy_free(p);
		}
		assert_int_equal(qs_policy_load(file[2], len[2], "k2.q8", &o, &p, msg, sizeof(msg)),
				 QS_E_SIGNATURE);
		assert_non_null(strstr(msg, "k2.q8: Ed25519 signature does not verify with any of "
					    "the 2 configured public keys"));
		assert_int_equal(qs_policy_load(S.file, S.len, "u.q8", &o, &p, msg, sizeof(msg)),
				 QS_E_SIGNATURE);
		assert_non_null(strstr(msg, "u.q8: unsigned, and signed policies are required here "
					    "(2 public keys configured)"));
		file[0][len[0] - QS_Q8_SIG_SIZE - 8] ^= 1; /* the action table */
		assert_int_equal(qs_policy_load(file[0], len[0], "t.q8", &o, &p, msg, sizeof(msg)),
				 QS_E_CRC);
		assert_non_null(strstr(msg, "corrupted, or tampered after signing"));
		/* an empty set requires nothing */
		ks.n = 0;
		assert_int_equal(qs_policy_load(S.file, S.len, "u", &o, &p, msg, sizeof(msg)),
				 QS_OK);
		assert_false(p->is_signed);
		qs_policy_free(p);
		/* bad files and lists */
		assert_int_equal(qs_q8_keyset_add_file(&ks, bad, msg, sizeof(msg)), QS_E_IO);
		f = fopen(bad, "w");
		assert_non_null(f);
		fprintf(f, "zz%062d\n", 0);
		fclose(f);
		assert_int_equal(qs_q8_keyset_add_file(&ks, bad, msg, sizeof(msg)), QS_E_VALUE);
		assert_int_equal(qs_q8_keyset_add_file(&ks, sec[0], msg, sizeof(msg)), QS_E_VALUE);
		assert_non_null(strstr(msg, "expected 64 hex digits (a public key)"));
		snprintf(list, sizeof(list), "%s,,%s", pub[0], pub[1]);
		assert_int_equal(qs_q8_keyset_add_list(&ks, list, msg, sizeof(msg)), QS_E_ARG);
		assert_int_equal(ks.n, 1);
		for (int i = 0; i < 3; i++) {
			unlink(pub[i]);
			unlink(sec[i]);
		}
		unlink(bad);
		rmdir(dir);
	}
#endif
}

QS_TEST_MAIN(cmocka_unit_test(test_roundtrip), cmocka_unit_test(test_writer_refuses),
	     cmocka_unit_test(test_shape_message), cmocka_unit_test(test_truncation),
	     cmocka_unit_test(test_bitflips), cmocka_unit_test(test_crafted),
	     cmocka_unit_test(test_files), cmocka_unit_test(test_signatures),
	     cmocka_unit_test(test_keyset))
