/*
 * kernel.c - kernel levels: CPU detection, selection, and the scorer and classifier
 * entry points built on top of whichever level runs.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if defined(QSTEER_KERNEL_NEON) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "kernel_impl.h"

static const char *const kernel_names[QS_KERNEL__COUNT] = {
    [QS_KERNEL_AUTO] = "auto", [QS_KERNEL_SCALAR] = "scalar",
    [QS_KERNEL_AVX2] = "avx2", [QS_KERNEL_AVX512VNNI] = "avx512vnni",
    [QS_KERNEL_NEON] = "neon",
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
	/* The instruction the level is built on, for people who think of it that way. */
	if (s && strcmp(s, "sdot") == 0) {
		*k = QS_KERNEL_NEON;
		return QS_OK;
	}
	return QS_E_ARG;
}

/*
 * What this CPU runs and what AUTO means, decided once: CPUID and $QSTEER_KERNEL are
 * read under pthread_once, so the per-call cost of AUTO is one table load (the hot
 * paths of the simulator, trainer and agent pass AUTO on every decision).
 */
static struct {
	bool supported[QS_KERNEL__COUNT];
	qs_kern_fn *fn[QS_KERNEL__COUNT];
	enum qs_kernel automatic;
} levels;
static pthread_once_t levels_once = PTHREAD_ONCE_INIT;

static void
levels_init(void)
{
	const char *env = getenv("QSTEER_KERNEL");
	enum qs_kernel forced;

	levels.supported[QS_KERNEL_SCALAR] = true;
	levels.fn[QS_KERNEL_SCALAR] = qs_kern_scalar;
#if defined(__x86_64__)
	__builtin_cpu_init(); /* x86 only: aarch64 has no libgcc cpu model */
#endif
	/* libgcc's cpu model checks OSXSAVE and XCR0 before it reports AVX2 or AVX-512,
	 * so "supported" also means the OS saves the registers. */
#ifdef QSTEER_KERNEL_AVX2
	levels.supported[QS_KERNEL_AVX2] = __builtin_cpu_supports("avx2");
	levels.fn[QS_KERNEL_AVX2] = qs_kern_avx2;
#endif
#ifdef QSTEER_KERNEL_AVX512VNNI
	levels.supported[QS_KERNEL_AVX512VNNI] =
	    __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
	levels.fn[QS_KERNEL_AVX512VNNI] = qs_kern_avx512vnni;
#endif
#ifdef QSTEER_KERNEL_NEON
	/* SDOT is optional before ARMv8.4: BlueField-2's Cortex-A72 lacks it, BlueField-3's
	 * A78 and Neoverse cores have it. The kernel's file is compiled for it, so the
	 * kernel's word decides (HWCAP_ASIMDDP, which also says the OS supports it); on
	 * a CPU without it AUTO stays scalar. Without getauxval (non-Linux) the level
	 * stays off rather than risk SIGILL. */
#if defined(__linux__) && defined(HWCAP_ASIMDDP)
	levels.supported[QS_KERNEL_NEON] = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
	levels.fn[QS_KERNEL_NEON] = qs_kern_neon;
#endif
	levels.automatic = QS_KERNEL_SCALAR;
	for (int i = QS_KERNEL__COUNT - 1; i > QS_KERNEL_SCALAR; i--)
		if (levels.supported[i]) {
			levels.automatic = (enum qs_kernel)i;
			break;
		}
	if (env && qs_kernel_parse(env, &forced) == QS_OK && forced != QS_KERNEL_AUTO &&
	    levels.supported[forced])
		levels.automatic = forced;
}

bool
qs_kernel_supported(enum qs_kernel k)
{
	pthread_once(&levels_once, levels_init);
	return (unsigned)k < QS_KERNEL__COUNT && levels.supported[k];
}

enum qs_kernel
qs_kernel_resolve(enum qs_kernel k)
{
	pthread_once(&levels_once, levels_init);
	return k == QS_KERNEL_AUTO ? levels.automatic : k;
}

static qs_kern_fn *
kernel_fn(enum qs_kernel k)
{
	k = qs_kernel_resolve(k);
	return (unsigned)k < QS_KERNEL__COUNT && levels.supported[k] ? levels.fn[k] : NULL;
}

/*
 * Inputs outside 0..127 break the contract (AVX2's vpmaddubsw would saturate), and
 * kernels then disagree; debug builds refuse them instead of answering differently.
 */
static bool
inputs_valid(const uint8_t *x, size_t x_stride, uint32_t n_in, uint64_t n)
{
#ifndef NDEBUG
	for (uint64_t r = 0; r < n; r++)
		for (uint32_t i = 0; i < n_in; i++)
			if (x[r * x_stride + i] > QS_INT8_ACT_MAX)
				return false;
#else
	(void)x;
	(void)x_stride;
	(void)n_in;
	(void)n;
#endif
	return true;
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
	if (!inputs_valid(x, x_stride, p->n_in, n))
		return QS_E_VALUE;
	if (n)
		fn(p, x, x_stride, n, out);
	return QS_OK;
}

int
qs_policy_choose(const struct qs_policy *p, enum qs_kernel k, const uint8_t *x, uint32_t n_req,
		 uint32_t n_cand, const uint64_t *eligible, int32_t *scores, uint16_t *choice)
{
	/* Rows per kernel call: bounded so row counts never overflow and, when the caller
	 * keeps no scores, so they fit this stack buffer. */
	enum { CHUNK_ROWS = 512 };
	int32_t local[CHUNK_ROWS];
	qs_kern_fn *fn = kernel_fn(k);
	uint32_t per_chunk;

	if (!p || !x || !choice || p->kind != QS_Q8_KIND_SCORER || !n_cand ||
	    n_cand > QS_MAX_CANDIDATES)
		return QS_E_ARG;
	if (!fn)
		return QS_E_UNSUPPORTED;
	if (!inputs_valid(x, p->n_in, p->n_in, (uint64_t)n_req * n_cand))
		return QS_E_VALUE;
	per_chunk = CHUNK_ROWS / n_cand;
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
qs_policy_classify(const struct qs_policy *p, enum qs_kernel k, const uint8_t *x, size_t x_stride,
		   uint32_t n, uint16_t *action)
{
	/* Rows per kernel call, so SIMD tiles run full rather than one live row each. */
	enum { CHUNK_OUT = 2048 };
	int32_t out[CHUNK_OUT];
	qs_kern_fn *fn = kernel_fn(k);
	uint32_t per_chunk;

	if (!p || (n && (!x || !action)) || p->kind != QS_Q8_KIND_CLASSIFIER || x_stride < p->n_in)
		return QS_E_ARG;
	if (!fn)
		return QS_E_UNSUPPORTED;
	if (!inputs_valid(x, x_stride, p->n_in, n))
		return QS_E_VALUE;
	per_chunk = CHUNK_OUT / p->n_out; /* n_out <= 256, so at least 8 rows */
	for (uint32_t r0 = 0; r0 < n; r0 += per_chunk) {
		uint32_t nr = n - r0 < per_chunk ? n - r0 : per_chunk;

		fn(p, x + (size_t)r0 * x_stride, x_stride, nr, out);
		for (uint32_t r = 0; r < nr; r++)
			action[r0 + r] =
			    (uint16_t)qs_int8_argmax(out + (size_t)r * p->n_out, p->n_out);
	}
	return QS_OK;
}
