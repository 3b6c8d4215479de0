/*
 * test_feat_bitexact.c - the branch-free quantizers of include/qsteer/features.h
 * against the branchy versions they replaced, kept here verbatim as the reference.
 *
 * Why: every component (sim, trainer, dp, the XDP program, the agent) builds features
 * with these functions, and policies were trained on the old ones' integers, so the
 * rewrite must not change a single output. Where one u32 argument decides the result
 * (msb, clamp7, class4, log2q for each fraction width 0..4) every u32 is checked.
 * ratio_q7 has two: every pair below 2^12, every numerator against denominators at
 * each power of two and its neighbours, every denominator against numerators at its
 * own neighbours and at scaled fractions, and edge-heavy random pairs.
 *
 * Plain C (no cmocka): the exhaustive loops take each of the 2^32 (about 4.3e9)
 * arguments through eight functions, about 3.4e10 cases in all (the count printed at
 * the end), and a failure prints the first mismatching input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "qsteer/features.h"
#include "qsteer/rng.h"

/* ---- the reference: features.h before the branch-free rewrite ----------------- */

static qs_u8
old_clamp7(qs_u32 v)
{
	return v > QS_INT8_ACT_MAX ? QS_INT8_ACT_MAX : (qs_u8)v;
}

static qs_u32
old_msb(qs_u32 v)
{
	qs_u32 n = 0;

	if (v >= (1u << 16)) {
		v >>= 16;
		n += 16;
	}
	if (v >= (1u << 8)) {
		v >>= 8;
		n += 8;
	}
	if (v >= (1u << 4)) {
		v >>= 4;
		n += 4;
	}
	if (v >= (1u << 2)) {
		v >>= 2;
		n += 2;
	}
	if (v >= (1u << 1)) {
		n += 1;
	}
	return n;
}

static qs_u8
old_log2q(qs_u32 v, qs_u32 frac_bits)
{
	qs_u32 n, frac;

	if (v == 0)
		return 0;
	n = old_msb(v);
	if (n >= frac_bits)
		frac = (v >> (n - frac_bits)) & ((1u << frac_bits) - 1);
	else
		frac = (v << (frac_bits - n)) & ((1u << frac_bits) - 1);
	return old_clamp7(((n + 1) << frac_bits) | frac);
}

static qs_u8
old_ratio_q7(qs_u32 num, qs_u32 den)
{
	qs_u64 r = num;
	qs_u32 q = 0, i;

	if (den == 0)
		return 0;
	if (num >= den)
		return QS_INT8_ACT_MAX;
	for (i = 0; i < 7; i++) {
		r <<= 1;
		q <<= 1;
		if (r >= den) {
			r -= den;
			q |= 1;
		}
	}
	return (qs_u8)q;
}

static qs_u8
old_class4(qs_u32 c)
{
	return c >= 3 ? 127 : (qs_u8)(c * 42);
}

/* ---- checks --------------------------------------------------------------------- */

static unsigned long long checked;

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fputc('\n', stderr);                                                               \
		exit(1);                                                                           \
	} while (0)

/* One u32 decides: msb, clamp7, class4, log2q with 0..4 fraction bits, every v. */
static void
check_unary_all(void)
{
	qs_u32 v = 0;

	do {
		qs_u32 fb;

		if (qs_feat_msb(v) != old_msb(v))
			FAIL("msb(%u) = %u, reference %u", v, qs_feat_msb(v), old_msb(v));
		if (qs_feat_clamp7(v) != old_clamp7(v))
			FAIL("clamp7(%u) = %u, reference %u", v, qs_feat_clamp7(v), old_clamp7(v));
		if (qs_feat_class4(v) != old_class4(v))
			FAIL("class4(%u) = %u, reference %u", v, qs_feat_class4(v), old_class4(v));
		for (fb = 0; fb <= 4; fb++)
			if (qs_feat_log2q(v, fb) != old_log2q(v, fb))
				FAIL("log2q(%u, %u) = %u, reference %u", v, fb,
				     qs_feat_log2q(v, fb), old_log2q(v, fb));
		checked += 8;
	} while (++v != 0);
}

static void
check_ratio(qs_u32 num, qs_u32 den)
{
	if (qs_feat_ratio_q7(num, den) != old_ratio_q7(num, den))
		FAIL("ratio_q7(%u, %u) = %u, reference %u", num, den, qs_feat_ratio_q7(num, den),
		     old_ratio_q7(num, den));
	checked++;
}

static uint64_t rng_s = 0x8c5e0a1f3b27d491ull;

static uint64_t
rnd(void)
{
	return qs_splitmix64(&rng_s);
}

/* Edge-heavy: 2^k - 1 + {0, 1, 2}, all ones shifted, uniform, small. */
static qs_u32
edge(void)
{
	qs_u32 k = (qs_u32)(rnd() % 33);
	qs_u64 p = k == 32 ? 0x100000000ull : 1ull << k;

	switch (rnd() % 4) {
	case 0:
		return (qs_u32)(p - 1 + rnd() % 3);
	case 1:
		return (qs_u32)(0xffffffffu >> (k & 31));
	case 2:
		return (qs_u32)rnd();
	default:
		return (qs_u32)(rnd() % (p + 1));
	}
}

static void
check_ratio_all(void)
{
	qs_u32 a, b, k, i;
	qs_s64 d, e;

	/* every pair below 2^12 */
	for (a = 0; a < (1u << 12); a++)
		for (b = 0; b < (1u << 12); b++)
			check_ratio(a, b);
	/* denominators at every 2^k - 2 .. 2^k + 2 (and the largest): each against 2^16
	 * numerators spread over all of u32, 2^16 evenly spaced below it (every quotient
	 * value), and its own neighbours (where the saturation starts) */
	for (k = 0; k <= 32; k++) {
		qs_u64 p = k == 32 ? 0xffffffffull : 1ull << k;

		for (d = -2; d <= 2; d++) {
			qs_s64 den = (qs_s64)p + d;

			if (den < 0 || den > 0xffffffffll)
				continue;
			for (i = 0; i < (1u << 16); i++) {
				check_ratio(i * 65537u + (qs_u32)k, (qs_u32)den);
				check_ratio((qs_u32)((qs_u64)den * i >> 16), (qs_u32)den);
			}
			for (e = -2; e <= 2; e++) {
				qs_s64 n = den + e;

				if (n >= 0 && n <= 0xffffffffll)
					check_ratio((qs_u32)n, (qs_u32)den);
			}
		}
	}
	/* each quotient step: num = ceil(den * j / 128) and its neighbours, for random
	 * and edge denominators */
	for (i = 0; i < 200000; i++) {
		qs_u32 den = (i & 1) ? edge() : (qs_u32)rnd(), j;

		for (j = 0; j <= 128; j++) {
			qs_u64 n = ((qs_u64)den * j + 127) / 128;

			for (d = -1; d <= 1; d++)
				if ((qs_s64)n + d >= 0 && (qs_s64)n + d <= 0xffffffffll)
					check_ratio((qs_u32)((qs_s64)n + d), den);
		}
	}
	for (i = 0; i < 20000000; i++)
		check_ratio(edge(), edge());
}

/* The router-v1 row (every quantizer together, as the components call it). */
static void
check_rows(void)
{
	qs_u32 i;

	for (i = 0; i < 2000000; i++) {
		struct qs_feat_request rq = {edge(), edge(), (qs_u8)(rnd() % 6),
					     (qs_u8)(rnd() % 6)};
		struct qs_feat_backend be = {edge(),
					     edge(),
					     edge(),
					     edge(),
					     edge(),
					     edge(),
					     edge(),
					     edge(),
					     edge(),
					     (qs_u8)(rnd() % 10),
					     (qs_u8)(rnd() % 2)};
		struct qs_feat_global gl = {edge(), edge()};
		qs_u8 row[QS_FR_COUNT], exp[QS_FR_COUNT];
		int k;

		if (rnd() % 4 == 0)
			be.kv_used = be.kv_total - (qs_u32)(rnd() % 3);
		qs_feat_router_v1(&rq, &be, &gl, row);
		exp[QS_FR_PROMPT_LOG] = old_log2q(rq.prompt_tokens, 3);
		exp[QS_FR_GEN_LOG] = old_log2q(rq.max_new_tokens, 3);
		exp[QS_FR_PRIORITY] = old_class4(rq.priority);
		exp[QS_FR_SLO] = old_class4(rq.slo_class);
		exp[QS_FR_PREFIX_HIT] = be.prefix_hit ? 127 : 0;
		exp[QS_FR_WAITING_LOG] = old_log2q(be.waiting, 3);
		exp[QS_FR_RUNNING_LOG] = old_log2q(be.running, 3);
		exp[QS_FR_KV_UTIL] = old_ratio_q7(be.kv_used, be.kv_total);
		exp[QS_FR_PREFILL_LOG] = old_log2q(be.prefill_pending, 2);
		exp[QS_FR_DECODE_TPS_LOG] = old_log2q(be.decode_tps, 2);
		exp[QS_FR_TTFT_P99_LOG] = old_log2q(be.ttft_p99_ms, 3);
		exp[QS_FR_SENT_REQS_LOG] = old_log2q(be.sent_reqs, 3);
		exp[QS_FR_SENT_TOKENS_LOG] = old_log2q(be.sent_tokens, 2);
		exp[QS_FR_CAPACITY] = (qs_u8)((be.capacity_class < 7 ? be.capacity_class : 7) * 18);
		exp[QS_FR_GLOBAL_LOAD_LOG] = old_log2q(gl.outstanding, 2);
		exp[QS_FR_ELIGIBLE_LOG] = old_log2q(gl.eligible, 4);
		for (k = 0; k < QS_FR_COUNT; k++)
			if (row[k] != exp[k])
				FAIL("router_v1 row %u feature %d = %u, reference %u", i, k, row[k],
				     exp[k]);
		checked += QS_FR_COUNT;
	}
}

int
main(int argc, char **argv)
{
	/* a quick run (QSTEER_FEAT_QUICK or an argument) skips the 2^32 sweep */
	int quick = argc > 1 || getenv("QSTEER_FEAT_QUICK") != NULL;

	(void)argv;
	if (!quick)
		check_unary_all();
	check_ratio_all();
	check_rows();
	printf("features: %llu cases identical to the branchy reference%s\n", checked,
	       quick ? " (quick: no full u32 sweep)" : "");
	return 0;
}
