/*
 * test_features.c - the integer feature quantizers of include/qsteer/features.h and
 * the requantization helper of include/qsteer/int8.h.
 *
 * Why: every component builds features with these functions, in restricted C that
 * avoids division and floats; the tests compare them with straightforward
 * references that do divide (ratio, log fraction) or use compiler builtins (msb),
 * over exhaustive small ranges and many random values, plus hand-computed examples
 * (router-v1 row, requant rounding at .5, negative accumulators, S = 62, saturation).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "qs_test.h"

#include "qsteer/features.h"
#include "qsteer/int8.h"
#include "testutil.h"

static uint32_t
ref_msb(uint32_t v)
{
	return 31u - (uint32_t)__builtin_clz(v);
}

/* (log2(v) + 1) << fb plus the fraction (v - 2^n) / 2^n in fb bits, by division. */
static uint32_t
ref_log2q(uint32_t v, uint32_t fb)
{
	uint64_t n, frac, r;

	if (v == 0)
		return 0;
	n = ref_msb(v);
	frac = (((uint64_t)v - ((uint64_t)1 << n)) << fb) / ((uint64_t)1 << n);
	r = ((n + 1) << fb) + frac;
	return r > 127 ? 127 : (uint32_t)r;
}

static uint32_t
ref_ratio(uint32_t num, uint32_t den)
{
	if (den == 0)
		return 0;
	if (num >= den)
		return 127;
	return (uint32_t)((128ull * num) / den);
}

/* Values that stress bit boundaries: 2^k - 1, 2^k, 2^k + 1, and random widths. */
static uint32_t
interesting(struct tu_rng *r)
{
	uint32_t k = (uint32_t)tu_range(r, 0, 31);

	switch (tu_range(r, 0, 3)) {
	case 0:
		return (1u << k) - 1 + (uint32_t)tu_range(r, 0, 2);
	case 1:
		return (uint32_t)tu_next(r);
	default:
		return (uint32_t)(tu_next(r) >> (32 + k));
	}
}

static void
test_msb(void **state)
{
	struct tu_rng r = {1};

	(void)state;
	for (uint32_t v = 1; v < (1u << 20); v++)
		assert_int_equal(qs_feat_msb(v), ref_msb(v));
	for (uint32_t k = 0; k < 32; k++) {
		assert_int_equal(qs_feat_msb(1u << k), k);
		if (k)
			assert_int_equal(qs_feat_msb((1u << k) - 1), k - 1);
	}
	assert_int_equal(qs_feat_msb(0xffffffffu), 31);
	for (int i = 0; i < 1000000; i++) {
		uint32_t v = interesting(&r);

		if (v)
			assert_int_equal(qs_feat_msb(v), ref_msb(v));
	}
}

static void
test_log2q(void **state)
{
	struct tu_rng r = {2};

	(void)state;
	/* The examples in features.h with 3 fractional bits, and 1000 by hand:
	 * msb 9, next three bits 111 -> (10 << 3) | 7 = 87. */
	assert_int_equal(qs_feat_log2q(0, 3), 0);
	assert_int_equal(qs_feat_log2q(1, 3), 8);
	assert_int_equal(qs_feat_log2q(2, 3), 16);
	assert_int_equal(qs_feat_log2q(3, 3), 20);
	assert_int_equal(qs_feat_log2q(1000, 3), 87);
	assert_int_equal(qs_feat_log2q(1 << 14, 3), 120);
	assert_int_equal(qs_feat_log2q(1 << 15, 3), 127); /* 128 saturates */
	assert_int_equal(qs_feat_log2q(0xffffffffu, 0), 32);
	assert_int_equal(qs_feat_log2q(0xffffffffu, 4), 127);
	for (uint32_t fb = 0; fb <= 4; fb++) {
		uint32_t prev = 0;

		for (uint32_t v = 0; v < (1u << 20); v++) {
			uint32_t q = qs_feat_log2q(v, fb);

			if (q != ref_log2q(v, fb))
				fail_msg("log2q(%u, %u) = %u, reference %u", v, fb, q,
					 ref_log2q(v, fb));
			assert_true(q >= prev); /* monotonic */
			prev = q;
		}
		for (int i = 0; i < 300000; i++) {
			uint32_t v = interesting(&r);

			assert_int_equal(qs_feat_log2q(v, fb), ref_log2q(v, fb));
		}
	}
}

static void
test_ratio_q7(void **state)
{
	struct tu_rng r = {3};

	(void)state;
	assert_int_equal(qs_feat_ratio_q7(0, 0), 0);
	assert_int_equal(qs_feat_ratio_q7(5, 0), 0);
	assert_int_equal(qs_feat_ratio_q7(0, 7), 0);
	assert_int_equal(qs_feat_ratio_q7(1, 2), 64);
	assert_int_equal(qs_feat_ratio_q7(299, 300), 127);
	assert_int_equal(qs_feat_ratio_q7(300, 300), 127);
	assert_int_equal(qs_feat_ratio_q7(301, 300), 127);
	assert_int_equal(qs_feat_ratio_q7(0xfffffffeu, 0xffffffffu), 127);
	assert_int_equal(qs_feat_ratio_q7(0x7fffffffu, 0xffffffffu), 63);
	assert_int_equal(qs_feat_ratio_q7(0x80000000u, 0xffffffffu), 64);
	for (uint32_t den = 0; den < 600; den++)
		for (uint32_t num = 0; num < 700; num++)
			assert_int_equal(qs_feat_ratio_q7(num, den), ref_ratio(num, den));
	for (int i = 0; i < 2000000; i++) {
		uint32_t den = interesting(&r), num;

		switch (i % 3) {
		case 0:
			num = interesting(&r);
			break;
		case 1:
			num = den ? (uint32_t)(tu_next(&r) % den) : 0;
			break;
		default:
			num = den - (uint32_t)tu_range(&r, 0, 3);
			break;
		}
		if (qs_feat_ratio_q7(num, den) != ref_ratio(num, den))
			fail_msg("ratio_q7(%u, %u) = %u, reference %u", num, den,
				 qs_feat_ratio_q7(num, den), ref_ratio(num, den));
	}
}

static void
test_class4_clamp(void **state)
{
	(void)state;
	assert_int_equal(qs_feat_class4(0), 0);
	assert_int_equal(qs_feat_class4(1), 42);
	assert_int_equal(qs_feat_class4(2), 84);
	assert_int_equal(qs_feat_class4(3), 127);
	assert_int_equal(qs_feat_class4(4), 127);
	assert_int_equal(qs_feat_class4(0xffffffffu), 127);
	assert_int_equal(qs_feat_clamp7(127), 127);
	assert_int_equal(qs_feat_clamp7(128), 127);
	assert_int_equal(qs_feat_clamp7(0xffffffffu), 127);
	assert_int_equal(qs_feat_schema_inputs(QS_SCHEMA_ROUTER_V1), QS_FR_COUNT);
	assert_int_equal(qs_feat_schema_inputs(QS_SCHEMA_BATCH_V1), QS_FB_COUNT);
	assert_int_equal(qs_feat_schema_inputs(QS_SCHEMA_RAW), 0);
	assert_int_equal(qs_feat_schema_inputs(QS_SCHEMA_ANY), -1);
	assert_int_equal(qs_feat_schema_inputs(3), -1);
}

/* One row worked out by hand (comments give the arithmetic). */
static void
test_router_v1(void **state)
{
	struct qs_feat_request rq = {
	    .prompt_tokens = 1000, .max_new_tokens = 256, .priority = 2, .slo_class = 5};
	struct qs_feat_backend be = {.waiting = 0,
				     .running = 3,
				     .kv_used = 300,
				     .kv_total = 400,
				     .prefill_pending = 100000,
				     .decode_tps = 5,
				     .ttft_p99_ms = 1,
				     .sent_reqs = 7,
				     .sent_tokens = 0,
				     .capacity_class = 9,
				     .prefix_hit = 1};
	struct qs_feat_global gl = {.outstanding = 1000000, .eligible = 64};
	static const uint8_t want[QS_FR_COUNT] = {
	    [QS_FR_PROMPT_LOG] = 87, /* msb 9, frac 111: 80 | 7 */
	    [QS_FR_GEN_LOG] = 72,    /* 2^8: 9 << 3 */
	    [QS_FR_PRIORITY] = 84,   /* class 2 */
	    [QS_FR_SLO] = 127,	     /* class 5 saturates */
	    [QS_FR_PREFIX_HIT] = 127,
	    [QS_FR_WAITING_LOG] = 0,	 /* 0 -> 0 */
	    [QS_FR_RUNNING_LOG] = 20,	 /* msb 1, frac 100: 16 | 4 */
	    [QS_FR_KV_UTIL] = 96,	 /* 128 * 300 / 400 */
	    [QS_FR_PREFILL_LOG] = 70,	 /* msb 16, frac 10: 68 | 2 */
	    [QS_FR_DECODE_TPS_LOG] = 13, /* msb 2, frac 01: 12 | 1 */
	    [QS_FR_TTFT_P99_LOG] = 8,	 /* 1 -> 1 << 3 */
	    [QS_FR_SENT_REQS_LOG] = 30,	 /* msb 2, frac 110: 24 | 6 */
	    [QS_FR_SENT_TOKENS_LOG] = 0,
	    [QS_FR_CAPACITY] = 126,	  /* class 9 -> 7, times 18 */
	    [QS_FR_GLOBAL_LOAD_LOG] = 83, /* msb 19, frac 11: 80 | 3 */
	    [QS_FR_ELIGIBLE_LOG] = 112,	  /* 2^6 with 4 bits: 7 << 4 */
	};
	uint8_t out[QS_FR_COUNT];

	(void)state;
	memset(out, 0xee, sizeof(out));
	qs_feat_router_v1(&rq, &be, &gl, out);
	for (int i = 0; i < QS_FR_COUNT; i++)
		if (out[i] != want[i])
			fail_msg("router-v1 feature %d: %u, by hand %u", i, out[i], want[i]);
	/* Every feature stays 7-bit for any input. */
	{
		struct tu_rng r = {4};

		for (int i = 0; i < 100000; i++) {
			rq = (struct qs_feat_request){interesting(&r), interesting(&r),
						      (uint8_t)tu_next(&r), (uint8_t)tu_next(&r)};
			be = (struct qs_feat_backend){
			    interesting(&r),	  interesting(&r),     interesting(&r),
			    interesting(&r),	  interesting(&r),     interesting(&r),
			    interesting(&r),	  interesting(&r),     interesting(&r),
			    (uint8_t)tu_next(&r), (uint8_t)tu_next(&r)};
			gl = (struct qs_feat_global){interesting(&r), interesting(&r)};
			qs_feat_router_v1(&rq, &be, &gl, out);
			for (int f = 0; f < QS_FR_COUNT; f++)
				assert_true(out[f] <= 127);
		}
	}
}

static void
test_requant(void **state)
{
	const int32_t MX = QS_INT8_M_MAX;

	(void)state;
	/* S = 1, M = 1: y = round-half-up(acc / 2). */
	assert_int_equal(qs_int8_requant(0, 1, 1), 0);
	assert_int_equal(qs_int8_requant(1, 1, 1), 1); /* 0.5 -> 1 */
	assert_int_equal(qs_int8_requant(2, 1, 1), 1);
	assert_int_equal(qs_int8_requant(3, 1, 1), 2);	/* 1.5 -> 2 */
	assert_int_equal(qs_int8_requant(-1, 1, 1), 0); /* -0.5 -> 0 */
	assert_int_equal(qs_int8_requant(-2, 1, 1), 0); /* -1 -> ReLU */
	assert_int_equal(qs_int8_requant(-3, 1, 1), 0);
	assert_int_equal(qs_int8_requant(252, 1, 1), 126);
	assert_int_equal(qs_int8_requant(253, 1, 1), 127);
	assert_int_equal(qs_int8_requant(254, 1, 1), 127);
	assert_int_equal(qs_int8_requant(255, 1, 1), 127); /* 128 saturates */
	/* (5 * 3 + 2) >> 2 = 4 (3.75 rounds up); (9 + 2) >> 2 = 2 (2.25 down). */
	assert_int_equal(qs_int8_requant(5, 3, 2), 4);
	assert_int_equal(qs_int8_requant(3, 3, 2), 2);
	/* (-4 * 3 + 4) >> 3 = -1: floor shift, then ReLU. */
	assert_int_equal(qs_int8_requant(-4, 3, 3), 0);
	/* S = 31 with M = 2^31 - 1 is almost identity. */
	assert_int_equal(qs_int8_requant(100, MX, 31), 100);
	assert_int_equal(qs_int8_requant(127, MX, 31), 127);
	assert_int_equal(qs_int8_requant(128, MX, 31), 127);
	assert_int_equal(qs_int8_requant(-100, MX, 31), 0);
	/* S = 62, M = 2^31 - 1: (acc * M + 2^61) >> 62; the .5 boundary sits at
	 * acc = 2^30: (2^30 (2^31-1) + 2^61) = 2^62 - 2^30 -> 0, one more -> 1. */
	assert_int_equal(qs_int8_requant(1 << 30, MX, 62), 0);
	assert_int_equal(qs_int8_requant((1 << 30) + 1, MX, 62), 1);
	assert_int_equal(qs_int8_requant(INT32_MAX, MX, 62), 1);
	assert_int_equal(qs_int8_requant(INT32_MIN, MX, 62), 0);
	assert_int_equal(qs_int8_requant(QS_INT8_MAX_ABS_BIAS, MX, 62), 0);
	assert_int_equal(qs_int8_requant(INT32_MAX, 1, 62), 0);
	/* Saturation with the largest products. */
	assert_int_equal(qs_int8_requant(INT32_MAX, MX, 1), 127);
	assert_int_equal(qs_int8_requant(INT32_MIN, MX, 1), 0);
	assert_int_equal(qs_int8_requant(1000000, 1 << 20, 1), 127);
	/* Random cases against (acc * M) / 2^S rounded half up, in floating point where
	 * the product is exact (|acc * M| < 2^53). */
	{
		struct tu_rng r = {5};

		for (int i = 0; i < 1000000; i++) {
			int32_t acc = (int32_t)tu_range(&r, -(1 << 21), 1 << 21);
			int32_t m = (int32_t)tu_range(&r, 1, (1 << 30) - 1);
			uint32_t s = (uint32_t)tu_range(&r, 1, 62);
			long double v = (long double)acc * m / (long double)((uint64_t)1 << s);
			long double f = v + 0.5L;
			int64_t want = (int64_t)f - (f < 0 && (long double)(int64_t)f != f);

			want = want < 0 ? 0 : want > 127 ? 127 : want;
			if (qs_int8_requant(acc, m, s) != want)
				fail_msg("requant(%d, %d, %u) = %u, want %lld", acc, m, s,
					 qs_int8_requant(acc, m, s), (long long)want);
		}
	}
}

QS_TEST_MAIN(cmocka_unit_test(test_msb), cmocka_unit_test(test_log2q),
	     cmocka_unit_test(test_ratio_q7), cmocka_unit_test(test_class4_clamp),
	     cmocka_unit_test(test_router_v1), cmocka_unit_test(test_requant))
