/*
 * kernel_avx2.c - the AVX2 kernel level: 8 rows per ymm ("rows in lanes"), the same
 * structure as kernel_avx512vnni.c without VNNI. A 4-input group costs vpmaddubsw
 * (u8 x s8 -> s16 pairs, which cannot saturate because inputs are 7-bit and
 * |w| <= 127), vpmaddwd by ones (-> s32) and an add.
 *
 * Layout between layers: act[g] is a ymm whose dword lane r holds row r's inputs
 * 4g..4g+3. Must give exactly the integers of kernel_scalar.c.
 */
#include <immintrin.h>
#include <string.h>

#include "kernel_impl.h"

enum {
	TILE = 8,			  /* rows per ymm */
	MAX_GROUPS = QS_INT8_MAX_DIM / 4, /* dword groups per row */
};

/*
 * Requantization, exactly as qs_int8_requant, in two steps. The accumulator is first
 * clamped to [0, A], which changes no result and keeps every intermediate small:
 *  - acc <= 0 gives (acc*M + 2^(S-1)) >> S <= 0 (M > 0), i.e. y = 0 as for acc = 0;
 *  - with mb = bit length of M and e = 30 + S - mb, A = 2^e puts A*M in
 *    [2^(29+S), 2^(30+S)): every acc >= A gives y >= 2^29 (127 after the clamp),
 *    and t = (a*M) >> (S-1) stays below 2^31, so it fits a dword. If e >= 31 no
 *    int32 acc reaches that bound and A = INT32_MAX.
 * Then floor((v + 2^(S-1)) / 2^S) = (floor(v / 2^(S-1)) + 1) >> 1, so requant()
 * returns t and pack4() finishes with a rounding average once the packs have
 * saturated t to [0, 255]: (255 + 1) >> 1 = 128 still clamps to 127.
 * All values are non-negative, so unsigned multiplies and the logical shifts (AVX2
 * has no 64-bit arithmetic shift) are exact.
 */
static inline int32_t
clamp_bound(int32_t m, unsigned s)
{
	int e = 30 + (int)s - (32 - __builtin_clz((unsigned)m));

	return e >= 31 ? INT32_MAX : (int32_t)1 << e;
}

/* One output's accumulators (8 rows) to t = (clamp(acc) * M) >> (S-1) per dword. */
static inline __m256i
requant(__m256i acc, const int32_t *m, const uint8_t *s)
{
	__m256i a = _mm256_min_epi32(_mm256_max_epi32(acc, _mm256_setzero_si256()),
				     _mm256_set1_epi32(clamp_bound(*m, *s)));
	__m256i mv = _mm256_set1_epi32(*m); /* vpmuludq reads the low dword of each qword */
	__m128i sc = _mm_cvtsi32_si128(*s - 1);
	__m256i pe = _mm256_mul_epu32(a, mv);
	__m256i po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), mv);

	pe = _mm256_srl_epi64(pe, sc);
	po = _mm256_srl_epi64(po, sc);
	return _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xaa);
}

/*
 * Four outputs' t values (lane = row) to one group ymm: saturating packs clamp to
 * [0, 255], the rounding average halves, min makes it [0, 127], and a byte shuffle
 * undoes the packs' in-lane interleave so that each row's dword holds its outputs
 * 0..3 in order.
 */
static inline __m256i
pack4(__m256i y0, __m256i y1, __m256i y2, __m256i y3)
{
	const __m256i idx = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
					     0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
	__m256i b = _mm256_packus_epi16(_mm256_packs_epi32(y0, y1), _mm256_packs_epi32(y2, y3));

	b = _mm256_avg_epu8(b, _mm256_setzero_si256());
	b = _mm256_min_epu8(b, _mm256_set1_epi8(QS_INT8_ACT_MAX));
	return _mm256_shuffle_epi8(b, idx);
}

/*
 * 8 rows' bytes [16c, 16c + 16) into groups 4c..4c+3. z[k] takes rows k and k+4 in
 * its 128-bit lanes, so the in-lane 4x4 dword transpose leaves row r in dword lane r.
 */
static inline void
load_chunk(const uint8_t *x, size_t stride, unsigned c, __m256i *g)
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

static inline __m256i
dot4(__m256i acc, __m256i x, const int8_t *w)
{
	int32_t d;

	memcpy(&d, w, 4);
	return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(x, _mm256_set1_epi32(d)),
						       _mm256_set1_epi16(1)));
}

/*
 * Eight outputs from w (rows ws apart) over ng groups: eight independent chains, and
 * each input group is loaded once for all eight. Always inlined so that callers
 * passing a constant ng get it fully unrolled.
 */
static inline __attribute__((always_inline)) void
mac8(const int8_t *w, size_t ws, const int32_t *bias, const __m256i *in, unsigned ng,
     __m256i *acc)
{
	__m256i a[8];

	for (unsigned q = 0; q < 8; q++)
		a[q] = _mm256_set1_epi32(bias[q]);
#pragma GCC unroll 8
	for (unsigned g = 0; g < ng; g++) {
		__m256i x = in[g];

#pragma GCC unroll 8
		for (unsigned q = 0; q < 8; q++)
			a[q] = dot4(a[q], x, w + q * ws + 4 * g);
	}
	for (unsigned q = 0; q < 8; q++)
		acc[q] = a[q];
}

/* One output over ng groups, two chains to halve the latency. */
static inline __attribute__((always_inline)) __m256i
mac1(const int8_t *w, int32_t bias, const __m256i *in, unsigned ng)
{
	__m256i a0 = _mm256_set1_epi32(bias), a1 = _mm256_setzero_si256();
	unsigned g = 0;

#pragma GCC unroll 8
	for (; g + 2 <= ng; g += 2) {
		a0 = dot4(a0, in[g], w + 4 * g);
		a1 = dot4(a1, in[g + 1], w + 4 * g + 4);
	}
	if (g < ng)
		a0 = dot4(a0, in[g], w + 4 * g);
	return _mm256_add_epi32(a0, a1);
}

/* Hidden layer: outputs j0.. in blocks of eight, requantized into groups o[j0/4..]. */
static inline void
hidden8(const struct qs_policy_layer *L, const __m256i *in, unsigned ng, unsigned j0,
	__m256i *o)
{
	const int8_t *w = L->w + (size_t)j0 * L->w_stride;
	__m256i acc[8], y[8];

	switch (ng) {
	case 4:
		mac8(w, L->w_stride, L->bias + j0, in, 4, acc);
		break;
	case 8:
		mac8(w, L->w_stride, L->bias + j0, in, 8, acc);
		break;
	default:
		mac8(w, L->w_stride, L->bias + j0, in, ng, acc);
		break;
	}
	for (unsigned q = 0; q < 8; q++)
		y[q] = requant(acc[q], L->m + j0 + q, L->s + j0 + q);
	o[j0 / 4] = pack4(y[0], y[1], y[2], y[3]);
	o[j0 / 4 + 1] = pack4(y[4], y[5], y[6], y[7]);
}

static inline __m256i
last1(const struct qs_policy_layer *L, const __m256i *in, unsigned ng, unsigned j)
{
	const int8_t *w = L->w + (size_t)j * L->w_stride;

	switch (ng) {
	case 4:
		return mac1(w, L->bias[j], in, 4);
	case 8:
		return mac1(w, L->bias[j], in, 8);
	default:
		return mac1(w, L->bias[j], in, ng);
	}
}

/* One tile of up to 8 rows whose inputs are readable as whole 16-byte chunks. */
static void
tile(const struct qs_policy *p, const uint8_t *x, size_t stride, unsigned nrows, int32_t *out)
{
	__m256i act[2][MAX_GROUPS];
	unsigned ng = (p->n_in + 3) / 4, cur = 0;

	for (unsigned c = 0; c < (p->n_in + 15u) / 16; c++)
		load_chunk(x, stride, c, &act[0][4 * c]);

	for (unsigned l = 0; l + 1 < p->n_layers; l++) {
		const struct qs_policy_layer *L = &p->layer[l];
		__m256i *in = act[cur], *o = act[cur ^ 1];
		unsigned j0 = 0;

		for (; j0 + 8 <= L->n_out; j0 += 8)
			hidden8(L, in, ng, j0, o);
		/* The last up to 7 outputs, zero-padded to whole groups. */
		for (; j0 < L->n_out; j0 += 4) {
			__m256i y[4];

			for (unsigned q = 0; q < 4; q++)
				y[q] = j0 + q < L->n_out
					       ? requant(mac1(L->w + (size_t)(j0 + q) * L->w_stride,
							      L->bias[j0 + q], in, ng),
							 L->m + j0 + q, L->s + j0 + q)
					       : _mm256_setzero_si256();
			o[j0 / 4] = pack4(y[0], y[1], y[2], y[3]);
		}
		ng = (L->n_out + 3u) / 4;
		cur ^= 1;
	}

	const struct qs_policy_layer *L = &p->layer[p->n_layers - 1];

	if (L->n_out == 1) {
		__m256i acc = last1(L, act[cur], ng, 0), live;

		if (nrows == TILE) {
			_mm256_storeu_si256((__m256i *)out, acc);
			return;
		}
		live = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nrows),
					  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
		_mm256_maskstore_epi32((int *)out, live, acc);
		return;
	}
	for (unsigned j0 = 0; j0 < L->n_out; j0 += 4) {
		unsigned nq = L->n_out - j0 < 4 ? L->n_out - j0 : 4;
		int32_t tmp[4][TILE];

		for (unsigned q = 0; q < nq; q++)
			_mm256_storeu_si256((__m256i *)tmp[q], last1(L, act[cur], ng, j0 + q));
		for (unsigned r = 0; r < nrows; r++)
			for (unsigned q = 0; q < nq; q++)
				out[(size_t)r * L->n_out + j0 + q] = tmp[q][r];
	}
}

void
qs_kern_avx2(const struct qs_policy *p, const uint8_t *x, size_t x_stride, uint32_t n,
	     int32_t *out)
{
	size_t span = (size_t)(p->n_in + 15u) / 16 * 16;
	size_t r0 = 0;

	if (!n)
		return;
	/* Bytes from x that may be read: everything up to the last row's last input. */
	size_t avail = (size_t)(n - 1) * x_stride + p->n_in;

	for (; r0 < n; r0 += TILE) {
		/*
		 * Chunks may read past n_in into the next row: harmless, since the
		 * weights' padding up to w_stride is zero. Past the buffer it is not,
		 * so the tail goes through a zero-padded copy.
		 */
		if (n - r0 < TILE || (r0 + TILE - 1) * x_stride + span > avail)
			break;
		tile(p, x + r0 * x_stride, x_stride, TILE, out + r0 * p->n_out);
	}
	for (; r0 < n; r0 += TILE) {
		unsigned nrows = n - r0 < TILE ? n - r0 : TILE;
		uint8_t buf[TILE * QS_INT8_MAX_DIM];

		memset(buf, 0, TILE * span);
		for (unsigned r = 0; r < nrows; r++)
			memcpy(buf + r * span, x + (size_t)(r0 + r) * x_stride, p->n_in);
		tile(p, buf, span, nrows, out + r0 * p->n_out);
	}
}
