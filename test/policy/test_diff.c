/*
 * test_diff.c - differential test: random policies and inputs through the scalar
 * kernel and every SIMD level this build and CPU run; all must give the same int32
 * outputs. The scalar kernel is also checked against an int64 reference written
 * here from DESIGN.md 3.1 (so the test still means something where no SIMD level
 * runs).
 *
 * Why: golden vectors cover a few shapes; SIMD kernels have tails, blocking and
 * stride handling that only break on particular dims, strides and batch sizes. The
 * cases are random but deterministic (splitmix64): shapes 1..8 layers with dims
 * 1..256 weighted towards small, M and S over their whole range including the
 * extremes, biases up to +-2^28, batches of 1..300 rows, strides >= n_in with
 * garbage in the gaps, misaligned row pointers. Input and output buffers are
 * allocated to the exact byte so a sanitizer build catches any over-read or
 * over-write.
 *
 * Environment: QSTEER_DIFF_CASES (rows to run, default 1000000), QSTEER_DIFF_SEED.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qs_test.h"

#include "qsteer/policy.h"
#include "testutil.h"

struct rpol {
	struct qs_q8_desc d;
	int8_t *w[QS_INT8_MAX_LAYERS];
	int32_t *bias[QS_INT8_MAX_LAYERS];
	int32_t *m[QS_INT8_MAX_LAYERS];
	uint8_t *s[QS_INT8_MAX_LAYERS];
	struct qs_q8_action act[QS_Q8_MAX_ACTIONS];
};

static uint32_t
rand_dim(struct tu_rng *r)
{
	int64_t p = tu_range(r, 0, 99);

	if (p < 50)
		return (uint32_t)tu_range(r, 1, 8);
	if (p < 80)
		return (uint32_t)tu_range(r, 1, 32);
	if (p < 95)
		return (uint32_t)tu_range(r, 1, 64);
	return (uint32_t)tu_range(r, 1, 256);
}

static void
rand_requant(struct tu_rng *r, uint32_t n_in, int32_t *m, uint8_t *s)
{
	static const int32_t mx[] = {1, 2, 3, QS_INT8_M_MAX, QS_INT8_M_MAX - 1, 1 << 30};
	static const uint8_t sx[] = {1, 2, 31, 32, 61, 62};

	if (tu_range(r, 0, 9) < 7) {
		/* Scaled to the accumulators' likely size, so activations spread. */
		uint32_t sh = (uint32_t)tu_range(r, 8, 40);
		uint64_t est = 600 * (uint64_t)(1 + n_in / 4);
		uint64_t mm = ((uint64_t)1 << sh) * (uint64_t)tu_range(r, 16, 400) / est;

		*m = (int32_t)(mm < 1 ? 1 : mm > QS_INT8_M_MAX ? QS_INT8_M_MAX : mm);
		*s = (uint8_t)sh;
		return;
	}
	*m = tu_range(r, 0, 1) ? mx[tu_range(r, 0, 5)] : (int32_t)tu_range(r, 1, QS_INT8_M_MAX);
	*s = tu_range(r, 0, 1) ? sx[tu_range(r, 0, 5)] : (uint8_t)tu_range(r, 1, 62);
}

static int32_t
rand_bias(struct tu_rng *r)
{
	switch (tu_range(r, 0, 9)) {
	case 0:
		return QS_INT8_MAX_ABS_BIAS;
	case 1:
		return -QS_INT8_MAX_ABS_BIAS;
	case 2:
		return (int32_t)tu_range(r, -QS_INT8_MAX_ABS_BIAS, QS_INT8_MAX_ABS_BIAS);
	case 3:
		return 0;
	default:
		return (int32_t)tu_range(r, -30000, 30000);
	}
}

static void
rand_policy(struct tu_rng *r, struct rpol *P)
{
	uint32_t dims[QS_INT8_MAX_LAYERS + 1];
	uint32_t n_layers = (uint32_t)(tu_range(r, 0, 3) ? tu_range(r, 1, 4) : tu_range(r, 1, 8));
	int wmode = (int)tu_range(r, 0, 3);

	memset(P, 0, sizeof(*P));
	for (uint32_t l = 0; l <= n_layers; l++)
		dims[l] = rand_dim(r);
	if (tu_range(r, 0, 2) == 0 || dims[n_layers] > QS_Q8_MAX_ACTIONS)
		dims[n_layers] =
		    tu_range(r, 0, 1) ? 1 : (uint32_t)tu_range(r, 1, QS_Q8_MAX_ACTIONS);
	P->d.schema = QS_SCHEMA_RAW;
	P->d.name = "diff";
	P->d.n_layers = (uint16_t)n_layers;
	for (uint32_t l = 0; l < n_layers; l++) {
		uint32_t n_in = dims[l], n_out = dims[l + 1];
		size_t nw = (size_t)n_in * n_out;

		P->w[l] = malloc(nw ? nw : 1);
		P->bias[l] = malloc(4 * n_out);
		P->m[l] = malloc(4 * n_out);
		P->s[l] = malloc(n_out);
		for (size_t i = 0; i < nw; i++) {
			switch (wmode) {
			case 0:
				P->w[l][i] = (int8_t)tu_range(r, -127, 127);
				break;
			case 1:
				P->w[l][i] = tu_range(r, 0, 1) ? 127 : -127;
				break;
			case 2:
				P->w[l][i] = tu_range(r, 0, 3) ? 0 : (int8_t)tu_range(r, -127, 127);
				break;
			default:
				P->w[l][i] = (int8_t)tu_range(r, -20, 20);
				break;
			}
		}
		for (uint32_t j = 0; j < n_out; j++) {
			P->bias[l][j] = rand_bias(r);
			rand_requant(r, n_in, &P->m[l][j], &P->s[l][j]);
		}
		P->d.layer[l] = (struct qs_q8_layer_desc){
		    .n_in = (uint16_t)n_in,
		    .n_out = (uint16_t)n_out,
		    .w = P->w[l],
		    .bias = P->bias[l],
		    .m = l + 1 < n_layers ? P->m[l] : NULL,
		    .s = l + 1 < n_layers ? P->s[l] : NULL,
		};
	}
	if (dims[n_layers] == 1) {
		P->d.kind = QS_Q8_KIND_SCORER;
	} else {
		P->d.kind = QS_Q8_KIND_CLASSIFIER;
		P->d.n_actions = (uint16_t)dims[n_layers];
		for (uint32_t a = 0; a < dims[n_layers]; a++)
			P->act[a] = (struct qs_q8_action){1, 1, 0, 0};
		P->d.action = P->act;
	}
}

static void
free_policy(struct rpol *P)
{
	for (uint32_t l = 0; l < P->d.n_layers; l++) {
		free(P->w[l]);
		free(P->bias[l]);
		free(P->m[l]);
		free(P->s[l]);
	}
}

/* DESIGN.md 3.1 in int64, straight from the description (not from int8.h). */
static void
ref_row(const struct rpol *P, const uint8_t *x, int32_t *out)
{
	int64_t a[QS_INT8_MAX_DIM], b[QS_INT8_MAX_DIM];

	for (uint32_t i = 0; i < P->d.layer[0].n_in; i++)
		a[i] = x[i];
	for (uint32_t l = 0; l < P->d.n_layers; l++) {
		const struct qs_q8_layer_desc *L = &P->d.layer[l];

		for (uint32_t j = 0; j < L->n_out; j++) {
			int64_t acc = L->bias[j];

			for (uint32_t i = 0; i < L->n_in; i++)
				acc += (int64_t)L->w[(size_t)j * L->n_in + i] * a[i];
			if (l + 1 == P->d.n_layers) {
				out[j] = (int32_t)acc;
			} else {
				int64_t v =
				    (acc * L->m[j] + ((int64_t)1 << (L->s[j] - 1))) >> L->s[j];

				b[j] = v < 0 ? 0 : v > 127 ? 127 : v;
			}
		}
		memcpy(a, b, sizeof(a));
	}
}

static void
fill_inputs(struct tu_rng *r, uint8_t *x, uint32_t rows, size_t stride, uint32_t n_in)
{
	int mode = (int)tu_range(r, 0, 5);

	for (uint32_t row = 0; row < rows; row++) {
		uint8_t *xr = x + (size_t)row * stride;
		size_t len = row + 1 < rows ? stride : n_in;

		for (size_t i = 0; i < len; i++) {
			if (i >= n_in) {
				xr[i] = (uint8_t)tu_next(r); /* garbage between rows */
				continue;
			}
			switch (mode) {
			case 0:
				xr[i] = 127;
				break;
			case 1:
				xr[i] = tu_range(r, 0, 3) ? 0 : (uint8_t)tu_range(r, 0, 127);
				break;
			case 2:
				xr[i] = tu_range(r, 0, 1) ? 127 : 0;
				break;
			default:
				xr[i] = (uint8_t)tu_range(r, 0, 127);
				break;
			}
		}
	}
}

static void
test_differential(void **state)
{
	const char *env_n = getenv("QSTEER_DIFF_CASES"), *env_seed = getenv("QSTEER_DIFF_SEED");
	uint64_t target = env_n ? strtoull(env_n, NULL, 10) : 1000000;
	struct tu_rng r = {env_seed ? strtoull(env_seed, NULL, 0) : 0x51537465657221ull};
	uint64_t rows_done = 0, cases[QS_KERNEL__COUNT] = {0}, policies = 0;
	uint64_t act_zero = 0, act_sat = 0;
	int levels[QS_KERNEL__COUNT], n_levels = 0;
	char msg[256];
	clock_t t0 = clock();

	(void)state;
	for (int k = QS_KERNEL_SCALAR + 1; k < QS_KERNEL__COUNT; k++)
		if (qs_kernel_supported((enum qs_kernel)k))
			levels[n_levels++] = k;
	printf("[ diff ] SIMD levels run here:");
	for (int i = 0; i < n_levels; i++)
		printf(" %s", qs_kernel_name((enum qs_kernel)levels[i]));
	printf("%s\n",
	       n_levels ? "" : " none (scalar-only consistency against the int64 reference)");

	while (rows_done < target) {
		struct rpol P;
		struct qs_policy *p = NULL;
		uint8_t *file, *xbuf, *x;
		int32_t *want, *got, ref[QS_INT8_MAX_DIM];
		size_t flen, cap, stride, xlen, align;
		uint32_t rows, n_in, n_out;

		rand_policy(&r, &P);
		cap = qs_q8_size(&P.d);
		assert_true(cap > 0);
		file = malloc(cap);
		if (qs_q8_write(&P.d, file, cap, &flen, msg, sizeof(msg)) != QS_OK)
			fail_msg("writer refused a valid random policy: %s", msg);
		if (qs_policy_load(file, flen, "diff", NULL, &p, msg, sizeof(msg)) != QS_OK)
			fail_msg("loader refused the writer's file: %s", msg);
		free(file);
		n_in = p->n_in;
		n_out = p->n_out;
		rows = (uint32_t)(tu_range(&r, 0, 1) ? tu_range(&r, 1, 16) : tu_range(&r, 1, 300));
		stride = n_in + (tu_range(&r, 0, 2) ? 0 : (size_t)tu_range(&r, 1, 70));
		align = (size_t)tu_range(&r, 0, 63);
		xlen = (size_t)(rows - 1) * stride + n_in;
		xbuf = malloc(align + xlen);
		x = xbuf + align;
		fill_inputs(&r, x, rows, stride, n_in);
		want = malloc((size_t)rows * n_out * sizeof(int32_t));
		got = malloc((size_t)rows * n_out * sizeof(int32_t));

		assert_int_equal(qs_policy_run(p, QS_KERNEL_SCALAR, x, stride, rows, want), QS_OK);
		cases[QS_KERNEL_SCALAR] += rows;
		for (uint32_t row = 0; row < rows; row++) {
			ref_row(&P, x + (size_t)row * stride, ref);
			if (memcmp(ref, want + (size_t)row * n_out, n_out * sizeof(int32_t)))
				for (uint32_t j = 0; j < n_out; j++)
					if (ref[j] != want[(size_t)row * n_out + j])
						fail_msg("policy %llu (%u layers, %u->...->%u) row "
							 "%u out %u: scalar %d, int64 reference %d",
							 (unsigned long long)policies, p->n_layers,
							 n_in, n_out, row, j,
							 want[(size_t)row * n_out + j], ref[j]);
		}
		if (p->n_layers > 1 && rows) {
			/* How often first-layer activations saturate: reported, so a
			 * generator that only makes 0/127 is visible. */
			const struct qs_policy_layer *L = &p->layer[0];
			int32_t acc = qs_int8_dot(L->w, x, L->n_in, L->bias[0]);
			uint8_t y = qs_int8_requant(acc, L->m[0], L->s[0]);

			act_zero += y == 0;
			act_sat += y == 127;
		}
		for (int i = 0; i < n_levels; i++) {
			enum qs_kernel k = (enum qs_kernel)levels[i];

			memset(got, 0x5a, (size_t)rows * n_out * sizeof(int32_t));
			assert_int_equal(qs_policy_run(p, k, x, stride, rows, got), QS_OK);
			cases[k] += rows;
			if (memcmp(got, want, (size_t)rows * n_out * sizeof(int32_t)) == 0)
				continue;
			for (size_t e = 0; e < (size_t)rows * n_out; e++)
				if (got[e] != want[e])
					fail_msg("policy %llu (%u layers, %u inputs, %u outputs): "
						 "%s differs from scalar at row %zu of %u (stride "
						 "%zu) output %zu: %s %d, scalar %d",
						 (unsigned long long)policies, p->n_layers, n_in,
						 n_out, qs_kernel_name(k), e / n_out, rows, stride,
						 e % n_out, qs_kernel_name(k), got[e], want[e]);
		}
		/* AUTO must be one of the above. */
		assert_int_equal(qs_policy_run(p, QS_KERNEL_AUTO, x, stride, rows, got), QS_OK);
		assert_memory_equal(got, want, (size_t)rows * n_out * sizeof(int32_t));

		rows_done += rows;
		policies++;
		free(want);
		free(got);
		free(xbuf);
		qs_policy_free(p);
		free_policy(&P);
	}
	printf("[ diff ] %llu policies, %llu rows, %.1f s CPU; row cases: scalar %llu",
	       (unsigned long long)policies, (unsigned long long)rows_done,
	       (double)(clock() - t0) / CLOCKS_PER_SEC,
	       (unsigned long long)cases[QS_KERNEL_SCALAR]);
	for (int i = 0; i < n_levels; i++)
		printf(", %s %llu", qs_kernel_name((enum qs_kernel)levels[i]),
		       (unsigned long long)cases[levels[i]]);
	printf("\n[ diff ] first hidden channel, first row: %.1f%% zero, %.1f%% saturated\n",
	       100.0 * (double)act_zero / (double)(policies ? policies : 1),
	       100.0 * (double)act_sat / (double)(policies ? policies : 1));
	assert_true(rows_done >= target);
}

/* Argument checks of qs_policy_run that every level shares. */
static void
test_run_args(void **state)
{
	struct tu_rng r = {7};
	struct rpol P;
	struct qs_policy *p = NULL;
	uint8_t file[4096], x[64] = {0};
	int32_t out[64];
	size_t len;

	(void)state;
	for (;;) {
		rand_policy(&r, &P);
		if (qs_q8_size(&P.d) <= sizeof(file) && P.d.layer[0].n_in >= 2)
			break;
		free_policy(&P);
	}
	assert_int_equal(qs_q8_write(&P.d, file, sizeof(file), &len, NULL, 0), QS_OK);
	assert_int_equal(qs_policy_load(file, len, "args", NULL, &p, NULL, 0), QS_OK);
	for (int k = QS_KERNEL_AUTO; k < QS_KERNEL__COUNT; k++) {
		int want = k == QS_KERNEL_AUTO || qs_kernel_supported((enum qs_kernel)k)
			       ? QS_OK
			       : QS_E_UNSUPPORTED;

		assert_int_equal(qs_policy_run(p, (enum qs_kernel)k, x, p->n_in, 0, NULL), want);
		assert_int_equal(qs_policy_run(p, (enum qs_kernel)k, x, p->n_in - 1, 1, out),
				 QS_E_ARG);
		assert_int_equal(qs_policy_run(NULL, (enum qs_kernel)k, x, p->n_in, 1, out),
				 QS_E_ARG);
	}
	assert_int_equal(qs_kernel_resolve(QS_KERNEL_SCALAR), QS_KERNEL_SCALAR);
	assert_true(qs_kernel_supported(qs_kernel_resolve(QS_KERNEL_AUTO)));
	/* $QSTEER_KERNEL is read once, at first use: test_kernel_env.c checks it in
	 * fresh processes. */
	for (int k = QS_KERNEL_AUTO; k < QS_KERNEL__COUNT; k++) {
		enum qs_kernel back;

		assert_int_equal(qs_kernel_parse(qs_kernel_name((enum qs_kernel)k), &back), QS_OK);
		assert_int_equal(back, k);
	}
	{
		enum qs_kernel back = QS_KERNEL_AVX2;

		assert_int_equal(qs_kernel_parse("sse9", &back), QS_E_ARG);
		assert_int_equal(back, QS_KERNEL_AVX2);
		assert_int_equal(qs_kernel_parse("sdot", &back), QS_OK);
		assert_int_equal(back, QS_KERNEL_NEON);
	}
	qs_policy_free(p);
	free_policy(&P);
}

QS_TEST_MAIN(cmocka_unit_test(test_run_args), cmocka_unit_test(test_differential))
