/*
 * kernel_impl.h - the one signature every kernel level implements; not installed.
 *
 * A kernel runs the whole network over n rows: row r's inputs at x + r * x_stride
 * (n_in bytes, 0..127), outputs at out + r * p->n_out. Kernels never allocate; their
 * scratch lives on the stack, bounded by QS_INT8_MAX_DIM.
 */
#ifndef QSTEER_KERNEL_IMPL_H
#define QSTEER_KERNEL_IMPL_H

#include "qsteer/policy.h"

typedef void qs_kern_fn(const struct qs_policy *p, const uint8_t *x, size_t x_stride, uint32_t n,
			int32_t *out);

qs_kern_fn qs_kern_scalar;
#ifdef QSTEER_KERNEL_AVX2
qs_kern_fn qs_kern_avx2;
#endif
#ifdef QSTEER_KERNEL_AVX512VNNI
qs_kern_fn qs_kern_avx512vnni;
#endif
#ifdef QSTEER_KERNEL_NEON
qs_kern_fn qs_kern_neon;
#endif

/*
 * The bound A that the tile kernels clamp an accumulator to before requantizing
 * (kernel_tile.h explains why the result is unchanged): with mb the bit length of
 * M, A = 2^(30 + S - mb), or INT32_MAX when no int32 reaches it. The loader stores
 * it per output (struct qs_policy_layer's clamp).
 */
static inline int32_t
qs_kern_clamp_bound(int32_t m, unsigned s)
{
	int e = 30 + (int)s - (32 - __builtin_clz((unsigned)m));

	return e >= 31 ? INT32_MAX : (int32_t)1 << e;
}

#endif /* QSTEER_KERNEL_IMPL_H */
