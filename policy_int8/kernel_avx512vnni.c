/*
 * kernel_avx512vnni.c - the AVX-512 VNNI kernel level: 16 rows per zmm ("rows in
 * lanes"), the tile driver of kernel_tile.h (shared with kernel_avx2.c) over AVX-512
 * operations: one vpdpbusd per (output, 4-input group) with the weight dword
 * broadcast from memory, so every instruction does 64 useful MACs whatever the layer
 * shape. Must give exactly the integers of kernel_scalar.c; see kernel_tile.h for
 * the one trick in the requantization.
 */
#include <immintrin.h>
#include <string.h>

typedef __m512i kt_vec;
#define KT_ROWS	       16 /* rows per zmm */
#define KT_ENTRY       qs_kern_avx512vnni
#define KT_HIDDEN_ATTR __attribute__((noinline))

#include "kernel_tile.h"

static inline kt_vec
kt_set1(int32_t v)
{
	return _mm512_set1_epi32(v);
}

static inline kt_vec
kt_zero(void)
{
	return _mm512_setzero_si512();
}

static inline kt_vec
kt_add(kt_vec a, kt_vec b)
{
	return _mm512_add_epi32(a, b);
}

static inline kt_vec
kt_dot4(kt_vec acc, kt_vec x, const int8_t *w)
{
	int32_t d;

	memcpy(&d, w, 4);
	return _mm512_dpbusd_epi32(acc, x, _mm512_set1_epi32(d));
}

/* kernel_tile.h's two-step requantization; vpmuludq reads the low dword of each
 * qword, so the odd lanes are shifted down, multiplied and shuffled back. */
static inline kt_vec
kt_requant(kt_vec acc, const int32_t *m, const uint8_t *s, const int32_t *clamp)
{
	__m512i a = _mm512_min_epi32(_mm512_max_epi32(acc, _mm512_setzero_si512()),
				     _mm512_set1_epi32(*clamp));
	__m512i mv = _mm512_set1_epi32(*m);
	__m128i sc = _mm_cvtsi32_si128(*s - 1);
	__m512i pe = _mm512_mul_epu32(a, mv);
	__m512i po = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), mv);

	pe = _mm512_srl_epi64(pe, sc);
	po = _mm512_srl_epi64(po, sc);
	return _mm512_mask_shuffle_epi32(pe, 0xaaaa, po, _MM_PERM_CDAB);
}

/*
 * Saturating packs clamp to [0, 255], the rounding average halves, min makes it
 * [0, 127], and a byte shuffle undoes the packs' in-lane interleave so that each
 * row's dword holds its outputs 0..3 in order.
 */
static inline kt_vec
kt_pack4(kt_vec y0, kt_vec y1, kt_vec y2, kt_vec y3)
{
	const __m512i idx = _mm512_broadcast_i32x4(
	    _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
	__m512i b = _mm512_packus_epi16(_mm512_packs_epi32(y0, y1), _mm512_packs_epi32(y2, y3));

	b = _mm512_avg_epu8(b, _mm512_setzero_si512());
	b = _mm512_min_epu8(b, _mm512_set1_epi8(QS_INT8_ACT_MAX));
	return _mm512_shuffle_epi8(b, idx);
}

/* z[k] takes rows k, k+4, k+8, k+12 in its 128-bit lanes, so the in-lane 4x4 dword
 * transpose leaves row r in dword lane r. */
static inline void
kt_load_chunk(const uint8_t *x, size_t stride, unsigned c, kt_vec *g)
{
	__m512i z[4], t0, t1, t2, t3;

	for (int k = 0; k < 4; k++) {
		const uint8_t *p = x + (size_t)k * stride + 16 * c;
		__m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p));

		v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 4 * stride)), 1);
		v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 8 * stride)), 2);
		z[k] =
		    _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 12 * stride)), 3);
	}
	t0 = _mm512_unpacklo_epi32(z[0], z[1]);
	t1 = _mm512_unpackhi_epi32(z[0], z[1]);
	t2 = _mm512_unpacklo_epi32(z[2], z[3]);
	t3 = _mm512_unpackhi_epi32(z[2], z[3]);
	g[0] = _mm512_unpacklo_epi64(t0, t2);
	g[1] = _mm512_unpackhi_epi64(t0, t2);
	g[2] = _mm512_unpacklo_epi64(t1, t3);
	g[3] = _mm512_unpackhi_epi64(t1, t3);
}

static inline void
kt_store(int32_t *out, kt_vec v)
{
	_mm512_storeu_si512(out, v);
}

static inline void
kt_store_rows(int32_t *out, kt_vec v, unsigned nrows)
{
	_mm512_mask_storeu_epi32(out, (__mmask16)((1u << nrows) - 1), v);
}

#include "kernel_rows.h"
