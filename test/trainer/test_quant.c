/*
 * test_quant.c - the quantizer against the int8 contract: requant multipliers,
 * dequantized weights within half a step, the exported file's int8 forward (run by
 * libqsteer-policy) within a bound derived from the quantization steps, action
 * agreement on random states, and quantization-aware fine-tuning.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "qs_test.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qsteer/features.h"
#include "quantize.h"
#include "tutil.h"

#define ND 1500 /* decisions */
#define NC 8	/* candidates each */

struct fixture {
	struct qs_mlp m;
	uint8_t *rows;
	uint32_t *off;
	uint64_t *mask;
	struct qs_quant_states st;
};

static void
fixture_make(struct fixture *f, uint64_t seed)
{
	uint32_t dim[4] = {QS_FR_COUNT, 32, 16, 1};
	struct qs_rng rng;

	assert_int_equal(qs_mlp_init(&f->m, 3, dim, NULL, 0), QS_OK);
	qs_rng_seed(&rng, seed, 0);
	qs_mlp_init_params(&f->m, &rng, 1.0f);
	for (uint32_t l = 0; l < 3; l++)
		for (uint32_t j = 0; j < dim[l + 1]; j++)
			f->m.p[f->m.b_off[l] + j] = 0.1f * qs_rng_normal(&rng);
	f->rows = malloc((size_t)ND * NC * QS_FR_COUNT);
	f->off = malloc((ND + 1) * sizeof(uint32_t));
	f->mask = malloc(ND * sizeof(uint64_t));
	for (size_t i = 0; i < (size_t)ND * NC * QS_FR_COUNT; i++)
		f->rows[i] = (uint8_t)qs_rng_below(&rng, 128);
	for (uint32_t i = 0; i <= ND; i++)
		f->off[i] = i * NC;
	for (uint32_t i = 0; i < ND; i++) {
		f->mask[i] = qs_rng_next(&rng) & 0xff;
		if (!f->mask[i])
			f->mask[i] = 1;
	}
	f->st = (struct qs_quant_states){QS_FR_COUNT, ND, f->rows, f->off, f->mask};
}

static void
fixture_free(struct fixture *f)
{
	qs_mlp_free(&f->m);
	free(f->rows);
	free(f->off);
	free(f->mask);
}

static struct qs_policy *
export_load(const struct qs_quant_plan *q)
{
	struct qs_q8_desc d;
	struct qs_policy_load_opts o = {QS_SCHEMA_ROUTER_V1, QS_Q8_KIND_SCORER, NULL};
	struct qs_policy *p = NULL;
	uint8_t *buf;
	size_t len;
	char msg[256];

	qs_quant_desc(q, "test", 0, &d);
	buf = malloc(qs_q8_size(&d));
	if (qs_q8_write(&d, buf, qs_q8_size(&d), &len, msg, sizeof(msg)) != QS_OK)
		fail_msg("write: %s", msg);
	if (qs_policy_load(buf, len, "test", &o, &p, msg, sizeof(msg)) != QS_OK)
		fail_msg("load: %s", msg);
	free(buf);
	return p;
}

static void
test_multiplier(void **state)
{
	struct qs_rng rng;

	(void)state;
	qs_rng_seed(&rng, 3, 0);
	for (int i = 0; i < 10000; i++) {
		double mult = exp(-20 + 27 * (double)qs_rng_uniform(&rng)); /* 2e-9 .. 1.1e3 */
		int32_t M;
		uint8_t S;

		qs_quant_multiplier(mult, &M, &S);
		assert_true(M > 0 && (uint32_t)M <= QS_INT8_M_MAX);
		assert_true(S >= QS_INT8_S_MIN && S <= QS_INT8_S_MAX);
		/* the largest usable S keeps M in [2^30, 2^31): relative error <= 2^-31 */
		assert_true(M >= (1 << 30));
		assert_true(fabs(ldexp(M, -S) - mult) <= mult * ldexp(1, -30));
	}
}

static void
test_round_trip(void **state)
{
	struct fixture f;
	struct qs_quant_plan q;
	struct qs_policy *p;
	struct qs_mlp_ws ws;
	float *fake, x[NC * QS_FR_COUNT];
	int32_t out[NC];
	double worst_ratio = 0, mean_err = 0, mean_bound = 0;

	(void)state;
	fixture_make(&f, 42);
	assert_int_equal(qs_quant_plan_init(&q, &f.m, NULL, 0), QS_OK);
	assert_int_equal(qs_quant_calibrate(&q, &f.m, &f.st, 1.0f, 1u << 20, NULL, 0), QS_OK);
	qs_quant_build(&q, &f.m);
	assert_int_equal(q.bias_clamped, 0);
	/* 1. dequantized weights and biases within half a step of the float ones */
	fake = malloc(f.m.n_params * sizeof(float));
	qs_quant_fake_params(&q, fake);
	for (uint32_t l = 0; l < 3; l++) {
		uint32_t ni = f.m.dim[l], no = f.m.dim[l + 1];

		for (uint32_t j = 0; j < no; j++) {
			for (uint32_t i = 0; i < ni; i++) {
				size_t k = f.m.w_off[l] + (size_t)j * ni + i;
				double step = (double)q.w_scale[l][j] / q.in_scale[l][i];

				assert_true(abs(q.wq[l][(size_t)j * ni + i]) <= 127);
				assert_true(fabs(fake[k] - f.m.p[k]) <= 0.5 * step * (1 + 1e-5));
			}
			assert_true(fabs(fake[f.m.b_off[l] + j] - f.m.p[f.m.b_off[l] + j]) <=
				    0.5 * q.w_scale[l][j] * (1 + 1e-5));
		}
	}
	/* 2. int8 forward of the exported file vs the float forward, per row, within
	 * the bound that propagates each quantization step (see below). */
	p = export_load(&q);
	assert_int_equal(qs_mlp_ws_init(&ws, &f.m, NC, NULL, 0), QS_OK);
	for (uint32_t d = 0; d < ND; d++) {
		const uint8_t *rows = f.rows + (size_t)d * NC * QS_FR_COUNT;
		const float *s;

		for (int i = 0; i < NC * QS_FR_COUNT; i++)
			x[i] = rows[i] / 127.0f;
		s = qs_mlp_forward(&f.m, &ws, x, NC, NULL);
		assert_int_equal(qs_policy_run(p, QS_KERNEL_SCALAR, rows, QS_FR_COUNT, NC, out),
				 QS_OK);
		for (uint32_t r = 0; r < NC; r++) {
			/* e[i]: bound on |h_float - h_int8 * scale| of the current layer's inputs.
			 * z - z_q = (W - Wdq) h + Wdq (h - h_q) + (b - bdq), each term bounded
			 * by the half steps; a hidden output adds half an activation step for
			 * the rounding and the multiplier's relative error (< 2^-30) on |z|.
			 * ReLU and the clamp are 1-Lipschitz and calibration by max keeps h
			 * inside the clamp, so they do not add. */
			double e[QS_MLP_MAX_DIM] = {0}, en[QS_MLP_MAX_DIM], bound, err;
			const float *hin = x + r * QS_FR_COUNT;

			for (uint32_t l = 0; l < 3; l++) {
				uint32_t ni = f.m.dim[l], no = f.m.dim[l + 1];

				for (uint32_t j = 0; j < no; j++) {
					double b = 0.5 * q.w_scale[l][j],
					       z = fabs(ws.z[l][r * no + j]);

					for (uint32_t i = 0; i < ni; i++) {
						size_t k = f.m.w_off[l] + (size_t)j * ni + i;
						double step =
						    (double)q.w_scale[l][j] / q.in_scale[l][i];

						b += 0.5 * step * fabs(hin[i]) +
						     fabs(fake[k]) * e[i];
					}
					en[j] =
					    l < 2 ? b + 0.5 * q.act_scale[l][j] + z * ldexp(1, -29)
						  : b;
				}
				memcpy(e, en, no * sizeof(double));
				hin = ws.h[l] + r * no;
			}
			bound =
			    e[0] + 1e-4 * (1 + fabs(s[r])); /* + float rounding of the reference */
			err = fabs((double)out[r] * q.w_scale[2][0] - s[r]);
			if (err > bound)
				fail_msg("decision %u row %u: |int8 - float| = %g > bound %g", d, r,
					 err, bound);
			worst_ratio = err / bound > worst_ratio ? err / bound : worst_ratio;
			mean_err += err;
			mean_bound += bound;
		}
	}
	print_message(
	    "int8 vs float score: mean error %.4g, mean bound %.4g, worst error/bound %.3f\n",
	    mean_err / (ND * NC), mean_bound / (ND * NC), worst_ratio);
	qs_mlp_ws_free(&ws);
	qs_policy_free(p);
	free(fake);
	qs_quant_plan_free(&q);
	fixture_free(&f);
}

/*
 * Agreement is a matter of margins: int8 cannot order two candidates whose float
 * scores differ by less than its error. Here (7-bit activations, per-channel max
 * calibration, a random 16-32-16-1 net on uniformly random features) the int8 score
 * is off the float one by ~3% of the scores' standard deviation on average -- and
 * exactly equal (to 1e-7) to the fake-quantized float model, so that is
 * quantization noise, not an export error. Random states through a random net have
 * many near-ties, which no 7-bit network can order. A well-conditioned decision has
 * a top-two margin above the noise: the test keeps the decisions whose margin is at
 * least 10% of the score s.d. (about 3x the mean error), requires 99% agreement
 * there, and requires 95% on all decisions.
 */
static void
test_agreement(void **state)
{
	struct fixture f;
	struct qs_quant_plan q;
	struct qs_policy *p;
	struct qs_mlp_ws ws;
	struct qs_quant_states wc;
	uint64_t *wmask = malloc(ND * sizeof(uint64_t));
	double agree, agree_wc, sum = 0, sum2 = 0, sd;
	float *scores = malloc((size_t)ND * NC * sizeof(float)), x[NC * QS_FR_COUNT];
	uint32_t kept = 0;

	(void)state;
	fixture_make(&f, 43);
	assert_int_equal(qs_quant_plan_init(&q, &f.m, NULL, 0), QS_OK);
	assert_int_equal(qs_quant_calibrate(&q, &f.m, &f.st, 1.0f, 1u << 20, NULL, 0), QS_OK);
	qs_quant_build(&q, &f.m);
	p = export_load(&q);
	assert_int_equal(qs_quant_agreement(&f.m, p, &f.st, &agree, NULL, 0), QS_OK);
	assert_int_equal(qs_mlp_ws_init(&ws, &f.m, NC, NULL, 0), QS_OK);
	for (uint32_t d = 0; d < ND; d++) {
		const float *s;

		for (int i = 0; i < NC * QS_FR_COUNT; i++)
			x[i] = f.rows[(size_t)d * NC * QS_FR_COUNT + i] / 127.0f;
		s = qs_mlp_forward(&f.m, &ws, x, NC, NULL);
		memcpy(scores + d * NC, s, NC * sizeof(float));
		for (int c = 0; c < NC; c++) {
			sum += s[c];
			sum2 += (double)s[c] * s[c];
		}
	}
	sd = sqrt(sum2 / (ND * NC) - (sum / (ND * NC)) * (sum / (ND * NC)));
	for (uint32_t d = 0; d < ND; d++) {
		const float *s = scores + d * NC;
		uint32_t best = qs_mlp_argmax_masked(s, NC, f.mask[d]);
		double margin = INFINITY;

		for (uint32_t c = 0; c < NC; c++)
			if ((f.mask[d] >> c & 1) && c != best && s[best] - s[c] < margin)
				margin = s[best] - s[c];
		wmask[d] = margin >= 0.1 * sd ? f.mask[d] : 0; /* 0: skipped by agreement */
		kept += wmask[d] != 0;
	}
	wc = f.st;
	wc.mask = wmask;
	assert_int_equal(qs_quant_agreement(&f.m, p, &wc, &agree_wc, NULL, 0), QS_OK);
	print_message("float-vs-int8 agreement: %.4f on all %d random decisions, %.4f on the %u "
		      "with top-two margin >= 10%% of the score s.d.\n",
		      agree, ND, agree_wc, kept);
	assert_true(kept > ND / 2);
	assert_true(agree_wc >= 0.99);
	assert_true(agree >= 0.95);
	qs_mlp_ws_free(&ws);
	free(scores);
	free(wmask);
	qs_policy_free(p);
	qs_quant_plan_free(&q);
	fixture_free(&f);
}

/* A deliberately bad calibration (ranges at the 60th percentile clip most large
 * activations) loses agreement; fine-tuning with fake quantization wins it back. */
static void
test_qat(void **state)
{
	struct fixture f;
	struct qs_mlp teacher;
	struct qs_quant_plan q;
	struct qs_quant_qat_cfg c;
	struct qs_policy *p;
	double before, after;
	char msg[256];

	(void)state;
	fixture_make(&f, 44);
	assert_int_equal(qs_mlp_init(&teacher, 3, f.m.dim, NULL, 0), QS_OK);
	memcpy(teacher.p, f.m.p, f.m.n_params * sizeof(float));
	assert_int_equal(qs_quant_plan_init(&q, &f.m, NULL, 0), QS_OK);
	assert_int_equal(qs_quant_calibrate(&q, &f.m, &f.st, 0.6f, 1u << 20, NULL, 0), QS_OK);
	qs_quant_build(&q, &f.m);
	p = export_load(&q);
	assert_int_equal(qs_quant_agreement(&teacher, p, &f.st, &before, NULL, 0), QS_OK);
	qs_policy_free(p);
	qs_quant_qat_defaults(&c);
	c.steps = 300;
	c.lr = 1e-3f;
	if (qs_quant_qat(&f.m, &teacher, &q, &f.st, &c, msg, sizeof(msg)) != QS_OK)
		fail_msg("qat: %s", msg);
	p = export_load(&q);
	assert_int_equal(qs_quant_agreement(&teacher, p, &f.st, &after, NULL, 0), QS_OK);
	print_message("agreement with clipped ranges: %.4f before QAT, %.4f after\n", before,
		      after);
	assert_true(after > before);
	qs_policy_free(p);
	qs_quant_plan_free(&q);
	qs_mlp_free(&teacher);
	fixture_free(&f);
}

/* Per-group agreement: every decision in one group gives the overall figure there and
 * 1 for an empty group; three groups average back to the overall figure. */
static void
test_agreement_groups(void **state)
{
	struct fixture f;
	struct qs_quant_plan q;
	struct qs_policy *p;
	double all, one[2], three[3], mn = 1, mx = 0, avg = 0, overall = -1;
	uint16_t *g;
	uint32_t cnt[3] = {0};

	(void)state;
	fixture_make(&f, 45);
	assert_int_equal(qs_quant_plan_init(&q, &f.m, NULL, 0), QS_OK);
	assert_int_equal(qs_quant_calibrate(&q, &f.m, &f.st, 0.6f, 1u << 20, NULL, 0), QS_OK);
	qs_quant_build(&q, &f.m);
	p = export_load(&q);
	g = malloc(f.st.n * sizeof(uint16_t));
	assert_non_null(g);
	assert_int_equal(qs_quant_agreement(&f.m, p, &f.st, &all, NULL, 0), QS_OK);
	assert_true(all < 1.0); /* clipped ranges: some decisions must differ */
	for (uint32_t i = 0; i < f.st.n; i++)
		g[i] = 1;
	assert_int_equal(qs_quant_agreement_groups(&f.m, p, &f.st, g, 2, one, NULL, NULL, 0),
			 QS_OK);
	assert_true(one[0] == 1.0);
	assert_true(fabs(one[1] - all) < 1e-12);
	for (uint32_t i = 0; i < f.st.n; i++) {
		g[i] = (uint16_t)(i % 3);
		cnt[i % 3]++;
	}
	assert_int_equal(qs_quant_agreement_groups(&f.m, p, &f.st, g, 3, three, &overall, NULL, 0),
			 QS_OK);
	for (int k = 0; k < 3; k++) {
		mn = three[k] < mn ? three[k] : mn;
		mx = three[k] > mx ? three[k] : mx;
		avg += three[k] * cnt[k] / (double)f.st.n;
	}
	assert_true(mn <= all && all <= mx);
	assert_true(fabs(avg - all) < 1e-9);
	assert_true(fabs(overall - all) < 1e-12); /* the same pass gives the overall figure */
	free(g);
	qs_policy_free(p);
	qs_quant_plan_free(&q);
	fixture_free(&f);
}

/* Focused sampling (only the decisions at risk in the minibatches) wins back more
 * agreement than uniform minibatches in the same number of steps: most decisions
 * already agree and teach nothing. */
static void
test_qat_focus(void **state)
{
	double after[2];

	(void)state;
	for (int focus = 0; focus < 2; focus++) {
		struct fixture f;
		struct qs_mlp teacher;
		struct qs_quant_plan q;
		struct qs_quant_qat_cfg c;
		struct qs_policy *p;
		char msg[256];

		fixture_make(&f, 44);
		assert_int_equal(qs_mlp_init(&teacher, 3, f.m.dim, NULL, 0), QS_OK);
		memcpy(teacher.p, f.m.p, f.m.n_params * sizeof(float));
		assert_int_equal(qs_quant_plan_init(&q, &f.m, NULL, 0), QS_OK);
		assert_int_equal(qs_quant_calibrate(&q, &f.m, &f.st, 0.6f, 1u << 20, NULL, 0),
				 QS_OK);
		qs_quant_build(&q, &f.m);
		qs_quant_qat_defaults(&c);
		c.steps = 60;
		c.lr = 1e-3f;
		if (focus) {
			c.focus_gap = 0.01f;
			c.focus_frac = 1.0f;
		}
		if (qs_quant_qat(&f.m, &teacher, &q, &f.st, &c, msg, sizeof(msg)) != QS_OK)
			fail_msg("qat: %s", msg);
		p = export_load(&q);
		assert_int_equal(qs_quant_agreement(&teacher, p, &f.st, &after[focus], NULL, 0),
				 QS_OK);
		qs_policy_free(p);
		qs_quant_plan_free(&q);
		qs_mlp_free(&teacher);
		fixture_free(&f);
	}
	print_message("agreement after 60 QAT steps: uniform %.4f, focused %.4f\n", after[0],
		      after[1]);
	assert_true(after[1] > after[0]);
}

/*
 * Channel splitting: hidden channels written k times with staggered biases carry
 * their activations at a k times finer step. The widened file must compute what
 * the fake-quantized model of the same plan computes (the copies' sum is the finer
 * rounding, Hermite's identity), land closer to the float scores than the unsplit
 * file, and a split wider than the contract is refused. Allocation by measured cost
 * fills the width it is given and leaves channels that never change a decision at
 * one copy.
 */
static void
split_run(struct fixture *f, struct qs_quant_plan *q, struct qs_policy *p, double *err_float,
	  double *worst, uint32_t *off_rows)
{
	struct qs_mlp shadow;
	struct qs_mlp_ws ws, wf;
	struct qs_mlp_fq fq;
	float x[NC * QS_FR_COUNT];
	int32_t out[NC];

	assert_int_equal(qs_mlp_init(&shadow, 3, f->m.dim, NULL, 0), QS_OK);
	assert_int_equal(qs_mlp_ws_init(&ws, &f->m, NC, NULL, 0), QS_OK);
	assert_int_equal(qs_mlp_ws_init(&wf, &f->m, NC, NULL, 0), QS_OK);
	qs_quant_fake_params(q, shadow.p);
	qs_quant_fq(q, &fq);
	*err_float = *worst = 0;
	*off_rows = 0;
	for (uint32_t d = 0; d < ND; d++) {
		const uint8_t *rows = f->rows + (size_t)d * NC * QS_FR_COUNT;
		const float *sq, *sf;

		for (int i = 0; i < NC * QS_FR_COUNT; i++)
			x[i] = rows[i] / 127.0f;
		sq = qs_mlp_forward(&shadow, &ws, x, NC, &fq);
		sf = qs_mlp_forward(&f->m, &wf, x, NC, NULL);
		assert_int_equal(qs_policy_run(p, QS_KERNEL_SCALAR, rows, QS_FR_COUNT, NC, out),
				 QS_OK);
		for (uint32_t r = 0; r < NC; r++) {
			double ws8 = q->xblock ? q->xws[2][0] : q->w_scale[2][0];
			double s8 = (double)out[r] * ws8, e = fabs(s8 - sq[r]);

			/* float32 rounding of the fake model only */
			e /= 1e-4 * (fabs(sq[r]) + 1e-2);
			*off_rows += e > 1;
			*worst = e > *worst ? e : *worst;
			*err_float += fabs(s8 - sf[r]);
		}
	}
	*err_float /= ND * NC;
	qs_mlp_ws_free(&ws);
	qs_mlp_ws_free(&wf);
	qs_mlp_free(&shadow);
}

static void
test_split(void **state)
{
	static const uint8_t splits[][2] = {{1, 1}, {2, 4}, {3, 2}};
	struct fixture f;
	double err_float[3], agree[3], worst;
	uint32_t off_rows;
	char msg[256];

	(void)state;
	fixture_make(&f, 45);
	for (int v = 0; v < 3; v++) {
		struct qs_quant_plan q;
		struct qs_policy *p;
		uint8_t k1[32], k2[16];
		const uint8_t *k[2] = {k1, k2};

		memset(k1, splits[v][0], sizeof(k1));
		memset(k2, splits[v][1], sizeof(k2));
		assert_int_equal(qs_quant_plan_init(&q, &f.m, NULL, 0), QS_OK);
		assert_int_equal(qs_quant_calibrate(&q, &f.m, &f.st, 1.0f, 1u << 20, NULL, 0),
				 QS_OK);
		if (v) {
			assert_int_equal(qs_quant_plan_split(&q, k, msg, sizeof(msg)), QS_OK);
			assert_int_equal(q.xdim[1], 32u * splits[v][0]);
			assert_int_equal(q.xdim[2], 16u * splits[v][1]);
		}
		qs_quant_build(&q, &f.m);
		assert_int_equal(q.bias_clamped, 0);
		p = export_load(&q);
		split_run(&f, &q, p, &err_float[v], &worst, &off_rows);
		print_message("split %u,%u: int8 vs fake-quantized worst %.2g (units of 1e-4 "
			      "relative), %u rows off, mean |int8 - float| %.4g\n",
			      splits[v][0], splits[v][1], worst, off_rows, err_float[v]);
		/* Exact but for float32: the fake model computes h / s + 1/2 + offset in
		 * float, so a copy whose value lies within ~1e-6 of a rounding boundary may
		 * round the other way -- one step of one copy, a few rows in 10^4. */
		assert_true(off_rows <= ND * NC / 1000);
		assert_true(worst <= 100);
		assert_int_equal(qs_quant_agreement(&f.m, p, &f.st, &agree[v], NULL, 0), QS_OK);
		qs_policy_free(p);
		qs_quant_plan_free(&q);
	}
	print_message("agreement: unsplit %.4f, split 2,4 %.4f, 3,2 %.4f\n", agree[0], agree[1],
		      agree[2]);
	/* Random nets on uniform random features: weight rounding is a large part of
	 * the error here, which splitting does not touch, so agreement moves by noise;
	 * the score error must fall. */
	assert_true(err_float[1] < 0.8 * err_float[0]);
	assert_true(err_float[2] < 0.8 * err_float[0]);
	{
		struct qs_quant_plan q;
		struct qs_policy *p;
		uint8_t k1[32], bad[32];
		const uint8_t *k[2] = {k1, NULL}, *kb[2] = {bad, NULL};
		uint32_t budget[2] = {64, 0}, too_small[2] = {31, 0}, units = 0;

		assert_int_equal(qs_quant_plan_init(&q, &f.m, NULL, 0), QS_OK);
		assert_int_equal(qs_quant_calibrate(&q, &f.m, &f.st, 1.0f, 1u << 20, NULL, 0),
				 QS_OK);
		memset(bad, 1, sizeof(bad));
		bad[5] = 9;
		assert_int_equal(qs_quant_plan_split(&q, kb, msg, sizeof(msg)), QS_E_ARG);
		assert_non_null(strstr(msg, "channel 5"));
		memset(k1, 8, sizeof(k1)); /* 256 units: the contract's limit */
		assert_int_equal(qs_quant_plan_split(&q, k, msg, sizeof(msg)), QS_OK);
		k1[0] = 1, k1[1] = 1;
		k[1] = k1; /* 16 channels of layer 2 x 8 = 128: fine */
		assert_int_equal(qs_quant_plan_split(&q, k, msg, sizeof(msg)), QS_OK);
		assert_int_equal(qs_quant_split_alloc(&q, &f.m, &f.st, too_small, msg, sizeof(msg)),
				 QS_E_ARG);
		assert_non_null(strstr(msg, "budget 31"));
		assert_int_equal(qs_quant_split_alloc(&q, &f.m, &f.st, budget, msg, sizeof(msg)),
				 QS_OK);
		for (uint32_t j = 0; j < 32; j++)
			units += q.split[0][j];
		assert_int_equal(units, q.xdim[1]);
		assert_true(q.xdim[1] <= 64 && q.xdim[1] > 32);
		assert_int_equal(q.xdim[2], 16);
		qs_quant_build(&q, &f.m);
		p = export_load(&q);
		split_run(&f, &q, p, &err_float[0], &worst, &off_rows);
		assert_true(off_rows <= ND * NC / 1000 && worst <= 100);
		qs_policy_free(p);
		qs_quant_plan_free(&q);
	}
	fixture_free(&f);
}

/* Three hidden layers of 96 channels, each with a budget: 288 channels are costed
 * (more than one layer's QS_MLP_MAX_DIM) and every layer gets its own allocation. */
static void
test_split_three_hidden(void **state)
{
	uint32_t dim[5] = {QS_FR_COUNT, 96, 96, 96, 1}, budget[3] = {100, 104, 96};
	struct fixture f;
	struct qs_mlp m;
	struct qs_quant_plan q;
	struct qs_quant_states st;
	struct qs_rng rng;
	char msg[256];

	(void)state;
	fixture_make(&f, 5);
	st = f.st;
	st.n = 40; /* 240 rows: 289 forward passes stay fast */
	assert_int_equal(qs_mlp_init(&m, 4, dim, NULL, 0), QS_OK);
	qs_rng_seed(&rng, 5, 1);
	qs_mlp_init_params(&m, &rng, 1.0f);
	assert_int_equal(qs_quant_plan_init(&q, &m, NULL, 0), QS_OK);
	assert_int_equal(qs_quant_calibrate(&q, &m, &st, 1.0f, 1u << 20, NULL, 0), QS_OK);
	if (qs_quant_split_alloc(&q, &m, &st, budget, msg, sizeof(msg)) != QS_OK)
		fail_msg("split_alloc: %s", msg);
	for (uint32_t l = 0; l < 3; l++) {
		uint32_t units = 0;

		for (uint32_t j = 0; j < 96; j++)
			units += q.split[l][j];
		assert_int_equal(units, q.xdim[l + 1]);
		assert_true(q.xdim[l + 1] >= 96 && q.xdim[l + 1] <= budget[l]);
	}
	qs_quant_plan_free(&q);
	qs_mlp_free(&m);
	fixture_free(&f);
}

QS_TEST_MAIN(cmocka_unit_test(test_multiplier), cmocka_unit_test(test_round_trip),
	     cmocka_unit_test(test_agreement), cmocka_unit_test(test_qat),
	     cmocka_unit_test(test_split_three_hidden), cmocka_unit_test(test_agreement_groups),
	     cmocka_unit_test(test_qat_focus), cmocka_unit_test(test_split))
