/*
 * kernel_neon.c - the aarch64 kernel level: NEON with SDOT (ARMv8.2-A dotprod,
 * vdotq_s32), compiled with -march=armv8.2-a+dotprod and called only after the
 * dispatcher saw HWCAP_ASIMDDP, so this file may use SDOT anywhere.
 *
 * Why signed SDOT is exact on the u8 activations without an offset trick: the
 * contract (include/qsteer/int8.h, docs/int8.md) bounds activations and features to
 * 0..127, and those bytes read as int8 are the same numbers. So SDOT's signed x signed
 * products are the scalar kernel's u8 x s8 products, and its int32 accumulation is the
 * scalar int32 sum term for term (no saturation anywhere in SDOT, and the sum is
 * bounded far below 2^31 by the contract). No weight-sum correction and no i8mm
 * (USDOT) is needed. Bytes above 127 break the contract for every SIMD level (debug
 * builds refuse them in kernel.c); the only bytes above 127 this kernel can see are
 * reads past n_in into the next row, and those meet zero weight padding.
 *
 * Layout ("rows in lanes", as the AVX-512 kernel): a tile is up to 16 rows in four
 * quads of four; act[g][q] is an int8x16 whose 32-bit lane r holds row 4q+r's inputs
 * 4g..4g+3, the operand SDOT multiplies by one 4-byte weight group. One SDOT is then
 * 16 useful MACs for any layer shape, and requantization is per output, where M and
 * S are uniform across the vector.
 *
 * The row driver (tiles, the zero-padded tail) is kernel_rows.h, shared with the x86
 * levels. Their tile driver (kernel_tile.h) is not: a tile here is up to four quads
 * sized to the rows it holds, outputs go in blocks of four with each weight row's
 * 16-byte chunks loaded once for four SDOTs by element, and requantization is exact
 * in int64 (SMULL, SRSHL) with no clamp bound.
 */
#include <arm_neon.h>
#include <string.h>

#include "kernel_impl.h"

#define KT_ROWS	 16 /* rows per tile; kernel_rows.h drives the tiles */
#define KT_ENTRY qs_kern_neon

enum {
	TILE = KT_ROWS,			  /* rows per tile */
	QUADS = TILE / 4,		  /* int32x4 row quads per tile */
	MAX_GROUPS = QS_INT8_MAX_DIM / 4, /* 4-byte groups per row */
};

/*
 * qs_int8_requant on four rows of one output, exactly: SMULL gives acc * M in int64
 * (|acc * M| < 2^62), and SRSHL by -S is the rounding shift (v + 2^(S-1)) >> S, its
 * rounding term added at full precision and the shift arithmetic, as the contract
 * says. The saturating narrow to int32 cannot change the clamp's result (any value
 * it saturates lies outside [0, 127] on the same side), so clamping after it is exact.
 */
static inline int32x4_t
requant(int32x4_t acc, int32_t m, unsigned s)
{
	const int32x4_t mv = vdupq_n_s32(m);
	const int64x2_t sh = vdupq_n_s64(-(int64_t)s);
	int64x2_t lo = vrshlq_s64(vmull_s32(vget_low_s32(acc), vget_low_s32(mv)), sh);
	int64x2_t hi = vrshlq_s64(vmull_high_s32(acc, mv), sh);
	int32x4_t v = vqmovn_high_s64(vqmovn_s64(lo), hi);

	return vminq_s32(vmaxq_s32(v, vdupq_n_s32(0)), vdupq_n_s32(QS_INT8_ACT_MAX));
}

/*
 * Four outputs' activations (each int32x4: lane = row of a quad, values 0..127) to
 * that quad's group vector: the two UZP1s keep each dword's low byte, giving outputs
 * in order [y0 rows 0..3, y1 rows 0..3, ...], and one TBL transposes that 4x4 so each
 * row's dword holds its outputs 0..3 in order.
 */
static inline int8x16_t
pack4(int32x4_t y0, int32x4_t y1, int32x4_t y2, int32x4_t y3)
{
	static const uint8_t tr[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};
	int16x8_t a = vuzp1q_s16(vreinterpretq_s16_s32(y0), vreinterpretq_s16_s32(y1));
	int16x8_t b = vuzp1q_s16(vreinterpretq_s16_s32(y2), vreinterpretq_s16_s32(y3));
	int8x16_t c = vuzp1q_s8(vreinterpretq_s8_s16(a), vreinterpretq_s8_s16(b));

	return vqtbl1q_s8(c, vld1q_u8(tr));
}

/*
 * One quad's bytes [16c, 16c + 16) into groups 4c..4c+3: four row loads and a 4x4
 * transpose of 32-bit lanes (TRN1/TRN2 on dwords, then ZIP1/ZIP2 on qwords).
 */
static inline void
load_chunk(const uint8_t *x, size_t stride, unsigned c, unsigned q, int8x16_t (*g)[QUADS])
{
	const uint8_t *p = x + (size_t)4 * q * stride + 16 * c;
	uint32x4_t r0 = vreinterpretq_u32_u8(vld1q_u8(p));
	uint32x4_t r1 = vreinterpretq_u32_u8(vld1q_u8(p + stride));
	uint32x4_t r2 = vreinterpretq_u32_u8(vld1q_u8(p + 2 * stride));
	uint32x4_t r3 = vreinterpretq_u32_u8(vld1q_u8(p + 3 * stride));
	uint64x2_t t0 = vreinterpretq_u64_u32(vtrn1q_u32(r0, r1));
	uint64x2_t t1 = vreinterpretq_u64_u32(vtrn2q_u32(r0, r1));
	uint64x2_t t2 = vreinterpretq_u64_u32(vtrn1q_u32(r2, r3));
	uint64x2_t t3 = vreinterpretq_u64_u32(vtrn2q_u32(r2, r3));

	g[4 * c][q] = vreinterpretq_s8_u64(vzip1q_u64(t0, t2));
	g[4 * c + 1][q] = vreinterpretq_s8_u64(vzip1q_u64(t1, t3));
	g[4 * c + 2][q] = vreinterpretq_s8_u64(vzip2q_u64(t0, t2));
	g[4 * c + 3][q] = vreinterpretq_s8_u64(vzip2q_u64(t1, t3));
}

/*
 * nj (1..4) outputs from w (rows ws apart) over ng groups for nq quads. Whole 16-byte
 * chunks of a weight row are loaded once and SDOT-by-element picks each 4-byte group
 * from the register (the row's bytes [4g, 4g + 16) lie within w_stride, since 4g + 16
 * <= 4 ng <= w_stride); a tail of under four groups broadcasts each group instead,
 * so no load passes the row. Up to 16 independent accumulators hide SDOT's latency.
 * Always inlined so that constant nj / nq / ng unroll fully.
 */
static inline __attribute__((always_inline)) void
mac(const int8_t *w, size_t ws, const int32_t *bias, unsigned nj, const int8x16_t (*in)[QUADS],
    unsigned ng, unsigned nq, int32x4_t acc[4][QUADS])
{
	unsigned g = 0;

	for (unsigned j = 0; j < nj; j++)
		for (unsigned q = 0; q < nq; q++)
			acc[j][q] = vdupq_n_s32(bias[j]);
#pragma GCC unroll 16
	for (; g + 4 <= ng; g += 4) {
		int8x16_t wv[4];

		for (unsigned j = 0; j < nj; j++)
			wv[j] = vld1q_s8(w + (size_t)j * ws + 4 * g);
		for (unsigned q = 0; q < nq; q++)
			for (unsigned j = 0; j < nj; j++) {
				acc[j][q] = vdotq_laneq_s32(acc[j][q], in[g][q], wv[j], 0);
				acc[j][q] = vdotq_laneq_s32(acc[j][q], in[g + 1][q], wv[j], 1);
				acc[j][q] = vdotq_laneq_s32(acc[j][q], in[g + 2][q], wv[j], 2);
				acc[j][q] = vdotq_laneq_s32(acc[j][q], in[g + 3][q], wv[j], 3);
			}
	}
	for (; g < ng; g++)
		for (unsigned j = 0; j < nj; j++) {
			int32_t d;

			memcpy(&d, w + (size_t)j * ws + 4 * g, 4); /* rows are only 4-byte padded */
			for (unsigned q = 0; q < nq; q++)
				acc[j][q] = vdotq_s32(acc[j][q], in[g][q],
						      vreinterpretq_s8_s32(vdupq_n_s32(d)));
		}
}

/* Hidden layer: all outputs in blocks of four, requantized into groups o[j0/4]. */
static inline __attribute__((always_inline)) void
hidden(const struct qs_policy_layer *L, const int8x16_t (*in)[QUADS], unsigned ng, unsigned nq,
       int8x16_t (*o)[QUADS])
{
	for (unsigned j0 = 0; j0 < L->n_out; j0 += 4) {
		unsigned nj = L->n_out - j0 < 4 ? L->n_out - j0 : 4;
		const int8_t *w = L->w + (size_t)j0 * L->w_stride;
		int32x4_t acc[4][QUADS], y[4][QUADS];

		if (nj == 4)
			mac(w, L->w_stride, L->bias + j0, 4, in, ng, nq, acc);
		else
			mac(w, L->w_stride, L->bias + j0, nj, in, ng, nq, acc);
		/* Outputs past n_out become 0, so the next layer's padding groups hold
		 * zeros (its weights there are zero too). */
		for (unsigned j = 0; j < 4; j++)
			for (unsigned q = 0; q < nq; q++)
				y[j][q] = j < nj ? requant(acc[j][q], L->m[j0 + j], L->s[j0 + j])
						 : vdupq_n_s32(0);
		for (unsigned q = 0; q < nq; q++)
			o[j0 / 4][q] = pack4(y[0][q], y[1][q], y[2][q], y[3][q]);
	}
}

/*
 * One tile of nrows <= 4 nq rows whose inputs are readable as whole 16-byte chunks.
 * Always inlined into callers with a constant nq, so the quad loops unroll.
 */
static inline __attribute__((always_inline)) void
tile(const struct qs_policy *p, const uint8_t *x, size_t stride, unsigned nrows, unsigned nq,
     int32_t *out)
{
	int8x16_t act[2][MAX_GROUPS][QUADS];
	unsigned ng = (p->n_in + 3u) / 4, cur = 0;

	for (unsigned c = 0; c < (p->n_in + 15u) / 16; c++)
		for (unsigned q = 0; q < nq; q++)
			load_chunk(x, stride, c, q, act[0]);

	for (unsigned l = 0; l + 1 < p->n_layers; l++) {
		const struct qs_policy_layer *L = &p->layer[l];

		hidden(L, (const int8x16_t(*)[QUADS])act[cur], ng, nq, act[cur ^ 1]);
		ng = (L->n_out + 3u) / 4;
		cur ^= 1;
	}

	const struct qs_policy_layer *L = &p->layer[p->n_layers - 1];

	for (unsigned j0 = 0; j0 < L->n_out; j0 += 4) {
		unsigned nj = L->n_out - j0 < 4 ? L->n_out - j0 : 4;
		int32x4_t acc[4][QUADS];
		int32_t tmp[4][TILE];

		if (nj == 1)
			mac(L->w + (size_t)j0 * L->w_stride, L->w_stride, L->bias + j0, 1,
			    (const int8x16_t(*)[QUADS])act[cur], ng, nq, acc);
		else
			mac(L->w + (size_t)j0 * L->w_stride, L->w_stride, L->bias + j0, nj,
			    (const int8x16_t(*)[QUADS])act[cur], ng, nq, acc);
		if (L->n_out == 1 && nrows == 4 * nq) {
			/* A scorer's outputs are contiguous rows: store the quads directly. */
			for (unsigned q = 0; q < nq; q++)
				vst1q_s32(out + 4 * q, acc[0][q]);
			return;
		}
		for (unsigned j = 0; j < nj; j++)
			for (unsigned q = 0; q < nq; q++)
				vst1q_s32(tmp[j] + 4 * q, acc[j][q]);
		for (unsigned r = 0; r < nrows; r++)
			for (unsigned j = 0; j < nj; j++)
				out[(size_t)r * L->n_out + j0 + j] = tmp[j][r];
	}
}

/* kernel_rows.h's tiles: in place, always four quads; through the padded copy, the
 * fewest quads that hold nrows, so a burst of 8 candidates (the dataplane's common
 * case) runs as two quads, not a half-empty tile. */
static inline __attribute__((always_inline)) void
kt_tile(const struct qs_policy *p, const uint8_t *x, size_t stride, unsigned nrows, int32_t *out)
{
	tile(p, x, stride, nrows, QUADS, out);
}

static void
tile_n(const struct qs_policy *p, const uint8_t *x, size_t stride, unsigned nrows, int32_t *out)
{
	switch ((nrows + 3) / 4) {
	case 1:
		tile(p, x, stride, nrows, 1, out);
		break;
	case 2:
		tile(p, x, stride, nrows, 2, out);
		break;
	default:
		tile(p, x, stride, nrows, 4, out);
		break;
	}
}
#define kt_tile_tail tile_n

#include "kernel_rows.h"
