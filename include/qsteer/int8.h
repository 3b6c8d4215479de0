/*
 * int8.h - qsteer's int8 arithmetic contract (DESIGN.md 3.1), in restricted C.
 *
 * This header is the reference: the scalar kernel in policy_int8/, the XDP program
 * and the CUDA agent all call these functions, and every SIMD kernel is tested to
 * give exactly the integers these give. docs/int8.md explains the arithmetic with a
 * worked example.
 *
 *   activations, features: unsigned 7-bit, [0, 127], stored as u8
 *   weights:               int8 in [-127, 127], per output channel
 *   biases:                int32
 *   layer:                 acc[j] = bias[j] + sum_i W[j][i] * x[i]       (int32)
 *   hidden requant + ReLU: y[j] = clamp((acc[j] * (s64)M[j] + (1 << (S[j]-1))) >> S[j], 0, 127)
 *                          0 < M[j] < 2^31, 1 <= S[j] <= 62, >> is arithmetic (floor)
 *   last layer:            the int32 accumulators are the outputs
 *
 * Why the int32 accumulator cannot overflow: |W*x| <= 127*127 = 16129, at most
 * QS_INT8_MAX_DIM = 256 terms give 4,129,024, and the loader bounds |bias| by
 * QS_INT8_MAX_ABS_BIAS so the sum stays far below 2^31.
 * Why acc * M fits in s64: |acc| < 2^31 and M < 2^31, so |acc*M| < 2^62, and the
 * rounding term is at most 2^61.
 */
#ifndef QSTEER_INT8_H
#define QSTEER_INT8_H

#include "rc.h"

#define QS_INT8_ACT_MAX	     127 /* activations and features are 7-bit */
#define QS_INT8_W_MAX	     127 /* weights are symmetric: [-127, 127] */
#define QS_INT8_MAX_DIM	     256 /* inputs or outputs of one layer */
#define QS_INT8_MAX_LAYERS   8
#define QS_INT8_MAX_ABS_BIAS (1 << 28)
#define QS_INT8_M_MAX	     0x7fffffff /* M < 2^31 */
#define QS_INT8_S_MIN	     1
#define QS_INT8_S_MAX	     62

/*
 * Requantize one hidden-layer accumulator with ReLU folded in. The single helper
 * every implementation must match; never re-derive it inline.
 */
QS_RC_FN qs_u8
qs_int8_requant(qs_s32 acc, qs_s32 m, qs_u32 s)
{
	qs_s64 v = (qs_s64)acc * (qs_s64)m + ((qs_s64)1 << (s - 1));

	v >>= s; /* arithmetic on every target we build for (gcc, clang, nvcc, bpf arsh) */
	if (v < 0)
		return 0;
	if (v > QS_INT8_ACT_MAX)
		return QS_INT8_ACT_MAX;
	return (qs_u8)v;
}

/* One output channel's accumulator: bias + dot(W row, x), n_in <= QS_INT8_MAX_DIM. */
QS_RC_FN qs_s32
qs_int8_dot(const qs_s8 *w, const qs_u8 *x, qs_u32 n_in, qs_s32 bias)
{
	qs_u32 n = QS_RC_MIN(n_in, (qs_u32)QS_INT8_MAX_DIM), i;
	qs_s32 acc = bias;

	/* One exit and a trip count bounded by a constant: the BPF verifier sees the bound,
	 * and host compilers can vectorize the reference, so benchmarks compare the SIMD
	 * kernels against an honest baseline. */
	for (i = 0; i < n; i++)
		acc += (qs_s32)w[i] * (qs_s32)x[i];
	return acc;
}

/* Highest output wins; ties go to the lowest index. n >= 1. */
QS_RC_FN qs_u32
qs_int8_argmax(const qs_s32 *v, qs_u32 n)
{
	qs_u32 best = 0, i, m = QS_RC_MIN(n, (qs_u32)QS_INT8_MAX_DIM);

	for (i = 1; i < m; i++)
		if (v[i] > v[best])
			best = i;
	return best;
}

#endif /* QSTEER_INT8_H */
