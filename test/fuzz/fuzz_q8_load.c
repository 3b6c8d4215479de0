/*
 * fuzz_q8_load.c - libFuzzer target for the .q8 loader (DESIGN.md 3.5, 6).
 *
 * Any byte string goes to qs_policy_load, with and without an expected schema and
 * kind; the loader must refuse it with a message or accept it, never crash or read
 * past the input (libFuzzer hands over an exact-size buffer, ASan watches). When a
 * file loads, the scalar kernel runs it on fixed rows, and the scorer/classifier
 * entry points run, so the loaded layout (strides, offsets, array sizes) is
 * exercised too; a loaded policy must also survive a write -> load round trip
 * through the writer with identical bytes. Also built without libFuzzer as the
 * replay test (replay_q8.c).
 *
 * Random bytes almost never carry a valid CRC, so each input is tried twice: as is,
 * and "repaired" -- file size, content id and CRC recomputed over the input -- so
 * the value checks, the allocation and layout code and the kernels behind them are
 * fuzzed too, not only the header checks in front of the CRC.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_q8.h"
#include "qsteer/crc32c.h"
#include "qsteer/le.h"
#include "qsteer/policy.h"

/* Re-describe a loaded policy for the writer (weights repacked without padding). */
static void
rewrite(const struct qs_policy *p, const uint8_t *data)
{
	static int8_t w[QS_INT8_MAX_LAYERS][QS_INT8_MAX_DIM * QS_INT8_MAX_DIM];
	static uint8_t buf[QS_Q8_MAX_FILE_SIZE];
	struct qs_q8_desc d = {.kind = p->kind,
			       .schema = p->schema,
			       .name = p->name,
			       .created = p->created,
			       .n_layers = p->n_layers,
			       .n_actions = p->n_actions,
			       .action = p->action};
	size_t len = 0;

	for (uint32_t l = 0; l < p->n_layers; l++) {
		const struct qs_policy_layer *L = &p->layer[l];

		for (uint32_t j = 0; j < L->n_out; j++)
			memcpy(w[l] + (size_t)j * L->n_in, L->w + (size_t)j * L->w_stride, L->n_in);
		d.layer[l] =
		    (struct qs_q8_layer_desc){L->n_in, L->n_out, w[l], L->bias, L->m, L->s};
	}
	if (qs_q8_write(&d, buf, sizeof(buf), &len, NULL, 0) != QS_OK || len != p->file_size ||
	    memcmp(buf, data, len) != 0) {
		fprintf(stderr, "fuzz_q8_load: a loaded policy does not write back identically\n");
		abort();
	}
}

static void
try_load(const uint8_t *data, size_t size)
{
	static const struct qs_policy_load_opts opts[] = {
	    {.expect_schema = QS_SCHEMA_ANY},
	    {.expect_schema = QS_SCHEMA_ROUTER_V1, .expect_kind = QS_Q8_KIND_SCORER},
	};
	static uint8_t x[4 * QS_INT8_MAX_DIM];
	static int32_t out[4 * QS_INT8_MAX_DIM];
	struct qs_policy *p = NULL;
	char msg[256];

	if (!x[1])
		for (size_t i = 0; i < sizeof(x); i++)
			x[i] = (uint8_t)((i * 37 + 11) % 128);
	for (size_t o = 0; o < sizeof(opts) / sizeof(opts[0]); o++) {
		int rc;

		msg[0] = 0;
		rc = qs_policy_load(data, size, "fuzz", &opts[o], &p, msg, sizeof(msg));

		if (rc != QS_OK) {
			if (!msg[0] || rc <= QS_OK || rc >= QS_E__COUNT) {
				fprintf(stderr, "fuzz_q8_load: status %d without a message\n", rc);
				abort();
			}
			continue;
		}
		if (qs_policy_run(p, QS_KERNEL_SCALAR, x, QS_INT8_MAX_DIM, 4, out) != QS_OK)
			abort();
		if (p->kind == QS_Q8_KIND_SCORER) {
			uint16_t choice[2];
			uint64_t elig[2] = {~0ull, 0};

			if (qs_policy_choose(p, QS_KERNEL_SCALAR, x, 2, 2, elig, NULL, choice) !=
				QS_OK ||
			    choice[0] > 1 || choice[1] != QS_NO_CHOICE)
				abort();
		} else {
			uint16_t act[4];

			if (qs_policy_classify(p, QS_KERNEL_SCALAR, x, QS_INT8_MAX_DIM, 4, act) !=
			    QS_OK)
				abort();
			for (int r = 0; r < 4; r++)
				if (act[r] >= p->n_actions)
					abort();
		}
		if (o == 0)
			rewrite(p, data);
		qs_policy_free(p);
		p = NULL;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t fixed[QS_Q8_MAX_FILE_SIZE];
	uint64_t cid;

	try_load(data, size);
	if (size < QS_Q8_HDR_SIZE + 4 || size > sizeof(fixed))
		return 0;
	memcpy(fixed, data, size);
	qs_le_wr32(fixed + QS_Q8_HDR_FILE_SIZE, (uint32_t)size);
	cid = qs_q8_content_id(fixed, size);
	qs_le_wr64(fixed + QS_Q8_HDR_CONTENT_ID, cid);
	qs_le_wr32(fixed + size - 4, qs_crc32c(0, fixed, size - 4));
	/* Exact-size heap copy, so ASan sees any read past the end. */
	{
		uint8_t *copy = malloc(size);

		if (!copy)
			return 0;
		memcpy(copy, fixed, size);
		try_load(copy, size);
		free(copy);
	}
	return 0;
}
