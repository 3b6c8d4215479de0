/*
 * kernel.c - kernel levels: CPU detection, selection, and the scorer and classifier
 * entry points built on top of whichever level runs.
 */
#include <stdlib.h>
#include <string.h>

#include "kernel_impl.h"

static const char *const kernel_names[QS_KERNEL__COUNT] = {
	[QS_KERNEL_AUTO] = "auto",
	[QS_KERNEL_SCALAR] = "scalar",
	[QS_KERNEL_AVX2] = "avx2",
	[QS_KERNEL_AVX512VNNI] = "avx512vnni",
};

const char *
qs_kernel_name(enum qs_kernel k)
{
	return (unsigned)k < QS_KERNEL__COUNT ? kernel_names[k] : "?";
}

int
qs_kernel_parse(const char *s, enum qs_kernel *k)
{
	for (int i = 0; s && i < QS_KERNEL__COUNT; i++)
		if (strcmp(s, kernel_names[i]) == 0) {
			*k = (enum qs_kernel)i;
			return QS_OK;
		}
	return QS_E_ARG;
}

bool
qs_kernel_supported(enum qs_kernel k)
{
	switch (k) {
	case QS_KERNEL_SCALAR:
		return true;
#ifdef QSTEER_KERNEL_AVX2
	case QS_KERNEL_AVX2:
		/* libgcc's cpu model checks XCR0, so the OS saves the registers too. */
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx2");
#endif
#ifdef QSTEER_KERNEL_AVX512VNNI
	case QS_KERNEL_AVX512VNNI:
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#endif
	default:
		return false;
	}
}

enum qs_kernel
qs_kernel_resolve(enum qs_kernel k)
{
	const char *env;
	enum qs_kernel forced;

	if (k != QS_KERNEL_AUTO)
		return k;
	env = getenv("QSTEER_KERNEL");
	if (env && qs_kernel_parse(env, &forced) == QS_OK && forced != QS_KERNEL_AUTO &&
	    qs_kernel_supported(forced))
		return forced;
	for (int i = QS_KERNEL__COUNT - 1; i > QS_KERNEL_SCALAR; i--)
		if (qs_kernel_supported((enum qs_kernel)i))
			return (enum qs_kernel)i;
	return QS_KERNEL_SCALAR;
}

static qs_kern_fn *
kernel_fn(enum qs_kernel k)
{
	k = qs_kernel_resolve(k);
	if (!qs_kernel_supported(k))
		return NULL;
	switch (k) {
#ifdef QSTEER_KERNEL_AVX2
	case QS_KERNEL_AVX2:
		return qs_kern_avx2;
#endif
#ifdef QSTEER_KERNEL_AVX512VNNI
	case QS_KERNEL_AVX512VNNI:
		return qs_kern_avx512vnni;
#endif
	default:
		return qs_kern_scalar;
	}
}

int
qs_policy_run(const struct qs_policy *p, enum qs_kernel k, const uint8_t *x, size_t x_stride,
	      uint32_t n, int32_t *out)
{
	qs_kern_fn *fn = kernel_fn(k);

	if (!p || (n && (!x || !out)) || x_stride < p->n_in)
		return QS_E_ARG;
	if (!fn)
		return QS_E_UNSUPPORTED;
	if (n)
		fn(p, x, x_stride, n, out);
	return QS_OK;
}

int
qs_policy_choose(const struct qs_policy *p, enum qs_kernel k, const uint8_t *x, uint32_t n_req,
		 uint32_t n_cand, const uint64_t *eligible, int32_t *scores, uint16_t *choice)
{
	/* Scores for up to this many rows at once when the caller keeps none. */
	enum { CHUNK_ROWS = 512 };
	int32_t local[CHUNK_ROWS];
	qs_kern_fn *fn = kernel_fn(k);
	uint32_t per_chunk;

	if (!p || !x || !choice || p->kind != QS_Q8_KIND_SCORER || !n_cand ||
	    n_cand > QS_MAX_CANDIDATES)
		return QS_E_ARG;
	if (!fn)
		return QS_E_UNSUPPORTED;
	per_chunk = scores ? n_req : CHUNK_ROWS / n_cand;
	for (uint32_t r0 = 0; r0 < n_req; r0 += per_chunk) {
		uint32_t nr = n_req - r0 < per_chunk ? n_req - r0 : per_chunk;
		int32_t *sc = scores ? scores + (size_t)r0 * n_cand : local;

		fn(p, x + (size_t)r0 * n_cand * p->n_in, p->n_in, nr * n_cand, sc);
		for (uint32_t r = 0; r < nr; r++) {
			const int32_t *s = sc + (size_t)r * n_cand;
			uint64_t m = eligible ? eligible[r0 + r] : ~0ull;
			uint32_t best = QS_NO_CHOICE;

			for (uint32_t c = 0; c < n_cand; c++)
				if ((m >> c & 1) && (best == QS_NO_CHOICE || s[c] > s[best]))
					best = c;
			choice[r0 + r] = (uint16_t)best;
		}
	}
	return QS_OK;
}

int
qs_policy_classify(const struct qs_policy *p, enum qs_kernel k, const uint8_t *x,
		   size_t x_stride, uint32_t n, uint16_t *action)
{
	int32_t out[QS_INT8_MAX_DIM];
	qs_kern_fn *fn = kernel_fn(k);

	if (!p || (n && (!x || !action)) || p->kind != QS_Q8_KIND_CLASSIFIER ||
	    x_stride < p->n_in)
		return QS_E_ARG;
	if (!fn)
		return QS_E_UNSUPPORTED;
	for (uint32_t r = 0; r < n; r++) {
		fn(p, x + (size_t)r * x_stride, x_stride, 1, out);
		action[r] = (uint16_t)qs_int8_argmax(out, p->n_out);
	}
	return QS_OK;
}
