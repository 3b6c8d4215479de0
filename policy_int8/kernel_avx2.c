/*
 * kernel_avx2.c - the AVX2 kernel level: 8 rows per ymm ("rows in lanes"), the tile
 * driver of kernel_tile.h (shared with kernel_avx512vnni.c) over AVX2 operations. A
 * 4-input group costs vpmaddubsw (u8 x s8 -> s16 pairs, which cannot saturate
 * because inputs are 7-bit and |w| <= 127), vpmaddwd by ones (-> s32) and an add.
 * Must give exactly the integers of kernel_scalar.c.
 */
#include <immintrin.h>
#include <string.h>

typedef __m256i kt_vec;
#define KT_ROWS	       8 /* rows per ymm */
#define KT_ENTRY       qs_kern_avx2
#define KT_HIDDEN_ATTR inline __attribute__((always_inline))

#include "kernel_tile.h"

static inline kt_vec
kt_set1(int32_t v)
{
	return _mm256_set1_epi32(v);
}

static inline kt_vec
kt_zero(void)
{
	return _mm256_setzero_si256();
}

static inline kt_vec
kt_add(kt_vec a, kt_vec b)
{
	return _mm256_add_epi32(a, b);
}

static inline kt_vec
kt_dot4(kt_vec acc, kt_vec x, const int8_t *w)
{
	int32_t d;

	memcpy(&d, w, 4);
	return _mm256_add_epi32(
	    acc,
	    _mm256_madd_epi16(_mm256_maddubs_epi16(x, _mm256_set1_epi32(d)), _mm256_set1_epi16(1)));
}

/* kernel_tile.h's two-step requantization; vpmuludq reads the low dword of each
 * qword, so the odd lanes are shifted down, multiplied and blended back. */
static inline kt_vec
kt_requant(kt_vec acc, const int32_t *m, const uint8_t *s, const int32_t *clamp)
{
	__m256i a = _mm256_min_epi32(_mm256_max_epi32(acc, _mm256_setzero_si256()),
				     _mm256_set1_epi32(*clamp));
	__m256i mv = _mm256_set1_epi32(*m);
	__m128i sc = _mm_cvtsi32_si128(*s - 1);
	__m256i pe = _mm256_mul_epu32(a, mv);
	__m256i po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), mv);

	pe = _mm256_srl_epi64(pe, sc);
	po = _mm256_srl_epi64(po, sc);
	return _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xaa);
}

/*
 * Saturating packs clamp to [0, 255], the rounding average halves, min makes it
 * [0, 127], and a byte shuffle undoes the packs' in-lane interleave so that each
 * row's dword holds its outputs 0..3 in order.
 */
static inline kt_vec
kt_pack4(kt_vec y0, kt_vec y1, kt_vec y2, kt_vec y3)
{
	const __m256i idx = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
					     0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
	__m256i b = _mm256_packus_epi16(_mm256_packs_epi32(y0, y1), _mm256_packs_epi32(y2, y3));

	b = _mm256_avg_epu8(b, _mm256_setzero_si256());
	b = _mm256_min_epu8(b, _mm256_set1_epi8(QS_INT8_ACT_MAX));
	return _mm256_shuffle_epi8(b, idx);
}

/* z[k] takes rows k and k+4 in its 128-bit lanes, so the in-lane 4x4 dword transpose
 * leaves row r in dword lane r. */
static inline void
kt_load_chunk(const uint8_t *x, size_t stride, unsigned c, kt_vec *g)
{
	__m256i z[4], t0, t1, t2, t3;

	for (int k = 0; k < 4; k++) {
		const uint8_t *p = x + (size_t)k * stride + 16 * c;

		z[k] = _mm256_inserti128_si256(
		    _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p)),
		    _mm_loadu_si128((const __m128i *)(p + 4 * stride)), 1);
	}
	t0 = _mm256_unpacklo_epi32(z[0], z[1]);
	t1 = _mm256_unpackhi_epi32(z[0], z[1]);
	t2 = _mm256_unpacklo_epi32(z[2], z[3]);
	t3 = _mm256_unpackhi_epi32(z[2], z[3]);
	g[0] = _mm256_unpacklo_epi64(t0, t2);
	g[1] = _mm256_unpackhi_epi64(t0, t2);
	g[2] = _mm256_unpacklo_epi64(t1, t3);
	g[3] = _mm256_unpackhi_epi64(t1, t3);
}

static inline void
kt_store(int32_t *out, kt_vec v)
{
	_mm256_storeu_si256((__m256i *)out, v);
}

static inline void
kt_store_rows(int32_t *out, kt_vec v, unsigned nrows)
{
	if (nrows == KT_ROWS) {
		_mm256_storeu_si256((__m256i *)out, v);
		return;
	}
	_mm256_maskstore_epi32((int *)out,
			       _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nrows),
						  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
			       v);
}

#include "kernel_rows.h"
