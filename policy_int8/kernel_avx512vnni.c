/*
 * kernel_avx512vnni.c - the AVX-512 VNNI kernel level: 16 rows per zmm ("rows in
 * lanes"), one vpdpbusd per (output, 4-input group) with the weight dword broadcast
 * from memory, so every instruction does 64 useful MACs whatever the layer shape.
 *
 * Layout between layers: act[g] is a zmm whose dword lane r holds row r's inputs
 * 4g..4g+3 (the "group" layout that vpdpbusd consumes). Requantization works per
 * output, where M and S are uniform across the vector. Must give exactly the
 * integers of kernel_scalar.c; see the comment on clamp_bound for the one trick.
 */
#include <immintrin.h>
#include <string.h>

#include "kernel_impl.h"

enum {
	TILE = 16,				 /* rows per zmm */
	MAX_GROUPS = QS_INT8_MAX_DIM / 4,	 /* dword groups per row */
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
 * All values are non-negative, so unsigned multiplies and logical shifts are exact.
 */
static inline int32_t
clamp_bound(int32_t m, unsigned s)
{
	int e = 30 + (int)s - (32 - __builtin_clz((unsigned)m));

	return e >= 31 ? INT32_MAX : (int32_t)1 << e;
}

/* One output's accumulators (16 rows) to t = (clamp(acc) * M) >> (S-1) per dword. */
static inline __m512i
requant(__m512i acc, const int32_t *m, const uint8_t *s)
{
	__m512i a = _mm512_min_epi32(_mm512_max_epi32(acc, _mm512_setzero_si512()),
				     _mm512_set1_epi32(clamp_bound(*m, *s)));
	__m512i mv = _mm512_set1_epi32(*m); /* vpmuludq reads the low dword of each qword */
	__m128i sc = _mm_cvtsi32_si128(*s - 1);
	__m512i pe = _mm512_mul_epu32(a, mv);
	__m512i po = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), mv);

	pe = _mm512_srl_epi64(pe, sc);
	po = _mm512_srl_epi64(po, sc);
	return _mm512_mask_shuffle_epi32(pe, 0xaaaa, po, _MM_PERM_CDAB);
}

/*
 * Four outputs' t values (lane = row) to one group zmm: saturating packs clamp to
 * [0, 255], the rounding average halves, min makes it [0, 127], and a byte shuffle
 * undoes the packs' in-lane interleave so that each row's dword holds its outputs
 * 0..3 in order.
 */
static inline __m512i
pack4(__m512i y0, __m512i y1, __m512i y2, __m512i y3)
{
	const __m512i idx = _mm512_broadcast_i32x4(
		_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
	__m512i b = _mm512_packus_epi16(_mm512_packs_epi32(y0, y1), _mm512_packs_epi32(y2, y3));

	b = _mm512_avg_epu8(b, _mm512_setzero_si512());
	b = _mm512_min_epu8(b, _mm512_set1_epi8(QS_INT8_ACT_MAX));
	return _mm512_shuffle_epi8(b, idx);
}

/*
 * 16 rows' bytes [16c, 16c + 16) into groups 4c..4c+3. z[k] takes rows k, k+4, k+8,
 * k+12 in its 128-bit lanes, so the in-lane 4x4 dword transpose leaves row r in dword
 * lane r.
 */
static inline void
load_chunk(const uint8_t *x, size_t stride, unsigned c, __m512i *g)
{
	__m512i z[4], t0, t1, t2, t3;

	for (int k = 0; k < 4; k++) {
		const uint8_t *p = x + (size_t)k * stride + 16 * c;
		__m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p));

		v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 4 * stride)), 1);
		v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 8 * stride)), 2);
		z[k] = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 12 * stride)),
					  3);
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

static inline __m512i
wb(const int8_t *w)
{
	int32_t d;

	memcpy(&d, w, 4);
	return _mm512_set1_epi32(d);
}

/*
 * Eight outputs from w (rows ws apart) over ng groups: eight independent vpdpbusd
 * chains hide its latency, and each input group is loaded once for all eight.
 * Always inlined so that callers passing a constant ng get it fully unrolled.
 */
static inline __attribute__((always_inline)) void
mac8(const int8_t *w, size_t ws, const int32_t *bias, const __m512i *in, unsigned ng,
     __m512i *acc)
{
	__m512i a0 = _mm512_set1_epi32(bias[0]), a1 = _mm512_set1_epi32(bias[1]);
	__m512i a2 = _mm512_set1_epi32(bias[2]), a3 = _mm512_set1_epi32(bias[3]);
	__m512i a4 = _mm512_set1_epi32(bias[4]), a5 = _mm512_set1_epi32(bias[5]);
	__m512i a6 = _mm512_set1_epi32(bias[6]), a7 = _mm512_set1_epi32(bias[7]);

#pragma GCC unroll 8
	for (unsigned g = 0; g < ng; g++) {
		__m512i x = in[g];
		const int8_t *p = w + 4 * g;

		a0 = _mm512_dpbusd_epi32(a0, x, wb(p));
		a1 = _mm512_dpbusd_epi32(a1, x, wb(p + ws));
		a2 = _mm512_dpbusd_epi32(a2, x, wb(p + 2 * ws));
		a3 = _mm512_dpbusd_epi32(a3, x, wb(p + 3 * ws));
		a4 = _mm512_dpbusd_epi32(a4, x, wb(p + 4 * ws));
		a5 = _mm512_dpbusd_epi32(a5, x, wb(p + 5 * ws));
		a6 = _mm512_dpbusd_epi32(a6, x, wb(p + 6 * ws));
		a7 = _mm512_dpbusd_epi32(a7, x, wb(p + 7 * ws));
	}
	acc[0] = a0;
	acc[1] = a1;
	acc[2] = a2;
	acc[3] = a3;
	acc[4] = a4;
	acc[5] = a5;
	acc[6] = a6;
	acc[7] = a7;
}

/* One output over ng groups, two chains to halve the latency. */
static inline __attribute__((always_inline)) __m512i
mac1(const int8_t *w, int32_t bias, const __m512i *in, unsigned ng)
{
	__m512i a0 = _mm512_set1_epi32(bias), a1 = _mm512_setzero_si512();
	unsigned g = 0;

#pragma GCC unroll 8
	for (; g + 2 <= ng; g += 2) {
		a0 = _mm512_dpbusd_epi32(a0, in[g], wb(w + 4 * g));
		a1 = _mm512_dpbusd_epi32(a1, in[g + 1], wb(w + 4 * g + 4));
	}
	if (g < ng)
		a0 = _mm512_dpbusd_epi32(a0, in[g], wb(w + 4 * g));
	return _mm512_add_epi32(a0, a1);
}

/* Hidden layer: outputs j0.. in blocks of eight, requantized into groups o[j0/4..]. */
static inline void
hidden8(const struct qs_policy_layer *L, const __m512i *in, unsigned ng, unsigned j0,
	__m512i *o)
{
	const int8_t *w = L->w + (size_t)j0 * L->w_stride;
	__m512i acc[8], y[8];

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

static inline __m512i
last1(const struct qs_policy_layer *L, const __m512i *in, unsigned ng, unsigned j)
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

/* One tile of up to 16 rows whose inputs are readable as whole 16-byte chunks. */
static void
tile(const struct qs_policy *p, const uint8_t *x, size_t stride, unsigned nrows, int32_t *out)
{
	__m512i act[2][MAX_GROUPS];
	unsigned ng = (p->n_in + 3) / 4, cur = 0;

	for (unsigned c = 0; c < (p->n_in + 15u) / 16; c++)
		load_chunk(x, stride, c, &act[0][4 * c]);

	for (unsigned l = 0; l + 1 < p->n_layers; l++) {
		const struct qs_policy_layer *L = &p->layer[l];
		__m512i *in = act[cur], *o = act[cur ^ 1];
		unsigned j0 = 0;

		for (; j0 + 8 <= L->n_out; j0 += 8)
			hidden8(L, in, ng, j0, o);
		/* The last up to 7 outputs, zero-padded to whole groups. */
		for (; j0 < L->n_out; j0 += 4) {
			__m512i y[4];

			for (unsigned q = 0; q < 4; q++)
				y[q] = j0 + q < L->n_out
					       ? requant(mac1(L->w + (size_t)(j0 + q) * L->w_stride,
							      L->bias[j0 + q], in, ng),
							 L->m + j0 + q, L->s + j0 + q)
					       : _mm512_setzero_si512();
			o[j0 / 4] = pack4(y[0], y[1], y[2], y[3]);
		}
		ng = (L->n_out + 3u) / 4;
		cur ^= 1;
	}

	const struct qs_policy_layer *L = &p->layer[p->n_layers - 1];
	__mmask16 live = (__mmask16)((1u << nrows) - 1);

	if (L->n_out == 1) {
		_mm512_mask_storeu_epi32(out, live, last1(L, act[cur], ng, 0));
		return;
	}
	for (unsigned j0 = 0; j0 < L->n_out; j0 += 4) {
		unsigned nq = L->n_out - j0 < 4 ? L->n_out - j0 : 4;
		int32_t tmp[4][TILE];

		for (unsigned q = 0; q < nq; q++)
			_mm512_storeu_si512(tmp[q], last1(L, act[cur], ng, j0 + q));
		for (unsigned r = 0; r < nrows; r++)
			for (unsigned q = 0; q < nq; q++)
				out[(size_t)r * L->n_out + j0 + q] = tmp[q][r];
	}
}

void
qs_kern_avx512vnni(const struct qs_policy *p, const uint8_t *x, size_t x_stride, uint32_t n,
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
