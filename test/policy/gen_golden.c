/*
 * gen_golden.c - writes the golden vectors under test/policy/golden/: a few fixed
 * policies (.q8), input rows (.in) and the scalar kernel's int32 outputs (.out).
 *
 * Built by meson, never run by the tests: the committed files are the contract that
 * every kernel (and ref_numpy.py, which never calls C) is checked against, so they
 * must only change on purpose. Regenerate with
 *
 *   build/test/policy/gen-golden test/policy/golden
 *
 * and review the diff. Everything is derived from a fixed seed, so a rerun on any
 * machine writes identical bytes. Hidden layers are calibrated on the very inputs
 * they will see (bias centred on the median, M/S mapping the largest accumulator
 * to 90..200) so activations spread over [0, 127] instead of collapsing to all 0
 * or all 127; a few channels instead take extreme M/S and biases on purpose. The
 * program prints each hidden layer's activation distribution so a reviewer can see
 * that.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qsteer/features.h"
#include "qsteer/int8.h"
#include "qsteer/policy.h"
#include "testutil.h"

#define MAX_ROWS 128

struct gspec {
	const char *name;
	uint16_t kind;
	uint32_t schema;
	uint16_t n_layers;
	uint16_t dims[QS_INT8_MAX_LAYERS + 1];
	uint32_t rows;
	int extreme; /* give some channels extreme M/S and biases */
};

static const struct gspec specs[] = {
    {"router_v1", QS_Q8_KIND_SCORER, QS_SCHEMA_ROUTER_V1, 3, {16, 32, 16, 1}, 64, 0},
    {"batch_cls", QS_Q8_KIND_CLASSIFIER, QS_SCHEMA_BATCH_V1, 2, {16, 24, 6}, 48, 0},
    {"raw_odd", QS_Q8_KIND_SCORER, QS_SCHEMA_RAW, 3, {37, 29, 3, 1}, 40, 1},
    {"raw_deep", QS_Q8_KIND_CLASSIFIER, QS_SCHEMA_RAW, 8, {256, 17, 1, 40, 5, 33, 3, 64, 4}, 24, 1},
};

/* One policy under construction. */
struct gpol {
	int8_t *w[QS_INT8_MAX_LAYERS];
	int32_t *bias[QS_INT8_MAX_LAYERS];
	int32_t *m[QS_INT8_MAX_LAYERS];
	uint8_t *s[QS_INT8_MAX_LAYERS];
	struct qs_q8_action act[QS_Q8_MAX_ACTIONS];
};

static int
cmp_s64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Router inputs: features of random requests and backends through the schema code. */
static void
router_row(struct tu_rng *r, uint8_t *x)
{
	struct qs_feat_request rq = {
	    .prompt_tokens = (uint32_t)tu_range(r, 0, 1) ? (uint32_t)tu_range(r, 1, 8192) : 0,
	    .max_new_tokens = (uint32_t)tu_range(r, 1, 2048),
	    .priority = (uint8_t)tu_range(r, 0, 4),
	    .slo_class = (uint8_t)tu_range(r, 0, 3),
	};
	uint32_t kv_total = (uint32_t)tu_range(r, 0, 8) ? (uint32_t)tu_range(r, 100, 40000) : 0;
	struct qs_feat_backend be = {
	    .waiting = (uint32_t)tu_range(r, 0, 300),
	    .running = (uint32_t)tu_range(r, 0, 64),
	    .kv_used = (uint32_t)tu_range(r, 0, kv_total + 10),
	    .kv_total = kv_total,
	    .prefill_pending = (uint32_t)tu_range(r, 0, 200000),
	    .decode_tps = (uint32_t)tu_range(r, 0, 9000),
	    .ttft_p99_ms = (uint32_t)tu_range(r, 0, 20000),
	    .sent_reqs = (uint32_t)tu_range(r, 0, 50),
	    .sent_tokens = (uint32_t)tu_range(r, 0, 100000),
	    .capacity_class = (uint8_t)tu_range(r, 0, 9),
	    .prefix_hit = (uint8_t)tu_range(r, 0, 1),
	};
	struct qs_feat_global gl = {.outstanding = (uint32_t)tu_range(r, 0, 5000),
				    .eligible = (uint32_t)tu_range(r, 1, 64)};

	qs_feat_router_v1(&rq, &be, &gl, x);
}

static void
make_inputs(const struct gspec *g, struct tu_rng *r, uint8_t *x)
{
	uint32_t n_in = g->dims[0];

	for (uint32_t row = 0; row < g->rows; row++) {
		uint8_t *xr = x + (size_t)row * n_in;

		if (g->schema == QS_SCHEMA_ROUTER_V1) {
			router_row(r, xr);
			continue;
		}
		for (uint32_t i = 0; i < n_in; i++) {
			switch (row % 4) {
			case 0:
				xr[i] = (uint8_t)tu_range(r, 0, 127);
				break;
			case 1:
				xr[i] = tu_range(r, 0, 3) ? 0 : (uint8_t)tu_range(r, 0, 127);
				break;
			case 2:
				xr[i] = (uint8_t)tu_range(r, 100, 127);
				break;
			default:
				xr[i] = (uint8_t)tu_range(r, 0, 20);
				break;
			}
		}
	}
	memset(x, 0, n_in);	     /* row 0: all zero */
	memset(x + n_in, 127, n_in); /* row 1: all saturated */
	if (g->schema == QS_SCHEMA_ROUTER_V1) {
		/* 8 requests x 8 candidates. Request 6: candidate c + 4 repeats candidate c,
		 * so its best score is always tied (lowest index must win). Request 7: all
		 * candidates identical. */
		for (uint32_t c = 4; c < 8; c++)
			memcpy(x + (6 * 8 + c) * n_in, x + (6 * 8 + c - 4) * n_in, n_in);
		for (uint32_t c = 1; c < 8; c++)
			memcpy(x + (7 * 8 + c) * n_in, x + 7 * 8 * n_in, n_in);
	}
}

/* Forward one layer over all rows, hidden layers through requant. */
static void
layer_fwd(const struct gpol *P, uint32_t l, uint32_t n_in, uint32_t n_out, int hidden,
	  const uint8_t *in, uint32_t rows, uint8_t *act, int32_t *acc)
{
	for (uint32_t r = 0; r < rows; r++)
		for (uint32_t j = 0; j < n_out; j++) {
			int32_t a = qs_int8_dot(P->w[l] + (size_t)j * n_in, in + (size_t)r * n_in,
						n_in, P->bias[l][j]);

			acc[(size_t)r * n_out + j] = a;
			if (hidden)
				act[(size_t)r * n_out + j] =
				    qs_int8_requant(a, P->m[l][j], P->s[l][j]);
		}
}

/* Centre channel j's accumulators on their median, then pick M/S that map the
 * largest to 90..200 (so some channels saturate at the top). */
static void
calibrate(struct gpol *P, uint32_t l, uint32_t n_in, uint32_t n_out, const uint8_t *in,
	  uint32_t rows, struct tu_rng *r)
{
	int64_t v[MAX_ROWS];

	for (uint32_t j = 0; j < n_out; j++) {
		int64_t med, max;
		double m;
		int s, want_bits = (int)tu_range(r, 8, 30);
		double target = (double)tu_range(r, 90, 200); /* > 127: the top saturates */

		for (uint32_t row = 0; row < rows; row++)
			v[row] = qs_int8_dot(P->w[l] + (size_t)j * n_in, in + (size_t)row * n_in,
					     n_in, 0);
		qsort(v, rows, sizeof(v[0]), cmp_s64);
		med = v[rows / 2 - (tu_range(r, 0, 2) ? rows / 6 : 0)]; /* mostly below half */
		P->bias[l][j] = (int32_t)-med + (int32_t)tu_range(r, -20, 20);
		max = v[rows - 1] + P->bias[l][j];
		if (max < 1)
			max = 1;
		for (s = 1;; s++) {
			m = floor(target * ldexp(1.0, s) / (double)max + 0.5);
			if (s == QS_INT8_S_MAX || m >= ldexp(1.0, want_bits))
				break;
		}
		if (m < 1)
			m = 1;
		if (m > QS_INT8_M_MAX)
			m = QS_INT8_M_MAX;
		P->m[l][j] = (int32_t)m;
		P->s[l][j] = (uint8_t)s;
	}
}

/* Overwrite a few channels with the contract's extremes. */
static void
extremes(struct gpol *P, uint32_t l, uint32_t n_out)
{
	static const struct {
		int32_t m;
		uint8_t s;
		int32_t bias_add; /* 0: keep the calibrated bias */
	} ex[] = {
	    {1, 1, 0},				  /* y = round(acc / 2): saturates, .5 rounding */
	    {QS_INT8_M_MAX, 62, 0},		  /* ~acc / 2^31: always rounds to 0 */
	    {1, 62, 0},				  /* always 0 */
	    {QS_INT8_M_MAX, 31, 0},		  /* ~acc itself */
	    {QS_INT8_M_MAX, 1, 0},		  /* saturates unless acc <= 0 */
	    {1 << 24, 30, QS_INT8_MAX_ABS_BIAS},  /* bias +2^28: always 127 */
	    {1 << 20, 20, -QS_INT8_MAX_ABS_BIAS}, /* bias -2^28: always 0 */
	};

	for (uint32_t k = 0; k < sizeof(ex) / sizeof(ex[0]) && k < n_out; k++) {
		P->m[l][k] = ex[k].m;
		P->s[l][k] = ex[k].s;
		if (ex[k].bias_add)
			P->bias[l][k] = ex[k].bias_add;
	}
}

static int
write_matrix(const char *path, const char *what, const char *name, uint32_t rows, uint32_t cols,
	     const uint8_t *u8, const int32_t *s32)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fprintf(f, "# %s: %s, %u rows x %u; written by test/policy/gen_golden.c\n", name, what,
		rows, cols);
	for (uint32_t r = 0; r < rows; r++)
		for (uint32_t c = 0; c < cols; c++)
			fprintf(f, c + 1 < cols ? "%d " : "%d\n",
				u8 ? u8[(size_t)r * cols + c] : s32[(size_t)r * cols + c]);
	return fclose(f);
}

static int
gen_one(const struct gspec *g, const char *dir, uint64_t seed)
{
	struct tu_rng r = {seed};
	struct gpol P;
	struct qs_q8_desc d = {.kind = g->kind,
			       .schema = g->schema,
			       .name = g->name,
			       .created = 1700000000,
			       .n_layers = g->n_layers};
	static uint8_t act[2][MAX_ROWS * QS_INT8_MAX_DIM];
	static int32_t acc[MAX_ROWS * QS_INT8_MAX_DIM];
	static uint8_t x[MAX_ROWS * QS_INT8_MAX_DIM];
	int32_t *outs, *ref;
	const uint8_t *in = x;
	char path[4096], msg[256];
	struct qs_policy *pol = NULL;
	uint32_t n_out_last = g->dims[g->n_layers];
	int rc;

	memset(&P, 0, sizeof(P));
	make_inputs(g, &r, x);
	for (uint32_t l = 0; l < g->n_layers; l++) {
		uint32_t n_in = g->dims[l], n_out = g->dims[l + 1];
		int hidden = l + 1 < g->n_layers;
		uint32_t hist0 = 0, hist127 = 0, distinct = 0;
		uint8_t seen[128] = {0};

		P.w[l] = malloc((size_t)n_in * n_out);
		P.bias[l] = calloc(n_out, sizeof(int32_t));
		P.m[l] = calloc(n_out, sizeof(int32_t));
		P.s[l] = calloc(n_out, 1);
		for (size_t i = 0; i < (size_t)n_in * n_out; i++)
			P.w[l][i] = (int8_t)(tu_range(&r, 0, 9) ? tu_range(&r, -40, 40)
								: tu_range(&r, -127, 127));
		if (g->kind == QS_Q8_KIND_CLASSIFIER && !hidden && n_out >= 5) {
			/* Output 4 copies output 1: they always tie and 1 must win. */
			memcpy(P.w[l] + 4 * n_in, P.w[l] + 1 * n_in, n_in);
		}
		if (hidden) {
			calibrate(&P, l, n_in, n_out, in, g->rows, &r);
			if (g->extreme && l == 0)
				extremes(&P, l, n_out);
		} else {
			for (uint32_t j = 0; j < n_out; j++)
				P.bias[l][j] = (int32_t)tu_range(&r, -5000, 5000);
			if (g->extreme)
				P.bias[l][0] = tu_range(&r, 0, 1) ? QS_INT8_MAX_ABS_BIAS
								  : -QS_INT8_MAX_ABS_BIAS;
			if (g->kind == QS_Q8_KIND_CLASSIFIER && n_out >= 5)
				P.bias[l][4] = P.bias[l][1];
		}
		layer_fwd(&P, l, n_in, n_out, hidden, in, g->rows, act[l & 1], acc);
		if (hidden) {
			for (size_t i = 0; i < (size_t)g->rows * n_out; i++) {
				uint8_t a = act[l & 1][i];

				hist0 += a == 0;
				hist127 += a == 127;
				distinct += !seen[a];
				seen[a] = 1;
			}
			printf("%s layer %u (%u -> %u): %5.1f%% zero, %5.1f%% 127, %u distinct "
			       "values\n",
			       g->name, l + 1, n_in, n_out, 100.0 * hist0 / (g->rows * n_out),
			       100.0 * hist127 / (g->rows * n_out), distinct);
			in = act[l & 1];
		}
		d.layer[l] = (struct qs_q8_layer_desc){.n_in = (uint16_t)n_in,
						       .n_out = (uint16_t)n_out,
						       .w = P.w[l],
						       .bias = P.bias[l],
						       .m = hidden ? P.m[l] : NULL,
						       .s = hidden ? P.s[l] : NULL};
	}
	ref = malloc((size_t)g->rows * n_out_last * sizeof(int32_t));
	memcpy(ref, acc, (size_t)g->rows * n_out_last * sizeof(int32_t));
	if (g->kind == QS_Q8_KIND_CLASSIFIER) {
		d.n_actions = (uint16_t)n_out_last;
		for (uint32_t a = 0; a < n_out_last; a++)
			P.act[a] = (struct qs_q8_action){.max_seqs = 1u << a % 8,
							 .max_tokens = 512u * (a + 1),
							 .kv_reserve_pct = 5 * a % 101};
		d.action = P.act;
	}

	snprintf(path, sizeof(path), "%s/%s.q8", dir, g->name);
	if ((rc = qs_q8_write_file(&d, path, msg, sizeof(msg))) != QS_OK) {
		fprintf(stderr, "gen-golden: %s\n", msg);
		return 1;
	}
	/* The expected outputs come from the loaded file through the scalar kernel, and
	 * must agree with this program's own forward pass. */
	if ((rc = qs_policy_load_file(path, NULL, &pol, msg, sizeof(msg))) != QS_OK) {
		fprintf(stderr, "gen-golden: %s\n", msg);
		return 1;
	}
	outs = malloc((size_t)g->rows * n_out_last * sizeof(int32_t));
	if (qs_policy_run(pol, QS_KERNEL_SCALAR, x, g->dims[0], g->rows, outs) != QS_OK ||
	    memcmp(outs, ref, (size_t)g->rows * n_out_last * sizeof(int32_t)) != 0) {
		fprintf(stderr, "gen-golden: %s: scalar kernel disagrees with the generator\n",
			g->name);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/%s.in", dir, g->name);
	if (write_matrix(path, "inputs", g->name, g->rows, g->dims[0], x, NULL))
		return 1;
	snprintf(path, sizeof(path), "%s/%s.out", dir, g->name);
	if (write_matrix(path, "expected int32 outputs", g->name, g->rows, n_out_last, NULL, outs))
		return 1;
	printf("%s: %u bytes, content id %016llx\n", g->name, pol->file_size,
	       (unsigned long long)pol->content_id);
	qs_policy_free(pol);
	free(outs);
	free(ref);
	for (uint32_t l = 0; l < g->n_layers; l++) {
		free(P.w[l]);
		free(P.bias[l]);
		free(P.m[l]);
		free(P.s[l]);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen-golden OUTDIR   (normally test/policy/golden)\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
		if (gen_one(&specs[i], argv[1], 0x51535138ull * (i + 1)))
			return 1;
	return 0;
}
