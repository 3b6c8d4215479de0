/*
 * kernel_tile.h - the tile driver of the x86 kernel levels (kernel_avx2.c,
 * kernel_avx512vnni.c), written once and included by both; not installed.
 *
 * "Rows in lanes": a tile is KT_ROWS rows, one per 32-bit lane of a vector. Between
 * layers act[g] is a vector whose lane r holds row r's inputs 4g..4g+3 (the group
 * layout vpdpbusd and vpmaddubsw consume), so one multiply-add per (output, 4-input
 * group) with the weight dword broadcast does KT_ROWS x 4 useful MACs whatever the
 * layer shape, and requantization is per output, where M and S are uniform across
 * the vector. This file holds the loop structure -- layers, blocks of eight outputs
 * with eight independent accumulator chains, the zero-padded last block, the
 * requantization pipeline and the output layer's stores -- and the levels supply the
 * ISA's operations below.
 *
 * The includer defines, before including this file:
 *   kt_vec    the vector type (KT_ROWS 32-bit lanes);
 *   KT_ROWS   rows per tile, and KT_ENTRY for kernel_rows.h;
 *   KT_HIDDEN_ATTR (optional, default inline) how kt_hidden8, the eight-output
 *             block, is inlined into the tile: AVX2 always, AVX-512 never (its
 *             unrolled copies are larger). Those are the choices GCC made when each
 *             level had its own copy of these loops; pinning them keeps the machine
 *             code what it was (same vector instructions, docs/int8.md);
 * and after it the static inline kt_* operations whose prototypes follow (they are
 * the contract), then includes kernel_rows.h for the entry point.
 */
#ifndef QSTEER_KERNEL_TILE_H
#define QSTEER_KERNEL_TILE_H

#include <stdint.h>

#include "kernel_impl.h"

#if !defined(KT_ROWS)
#error "kernel_tile.h: define kt_vec and KT_ROWS before including it"
#endif

#ifndef KT_HIDDEN_ATTR
#define KT_HIDDEN_ATTR inline
#endif

enum {
	KT_MAX_GROUPS = QS_INT8_MAX_DIM / 4, /* dword groups per row */
};

/* Every lane v. */
static inline kt_vec kt_set1(int32_t v);
static inline kt_vec kt_zero(void);
static inline kt_vec kt_add(kt_vec a, kt_vec b);
/* acc + per lane the dot product of x's four u8 with the four s8 at w (exact, no
 * saturation: inputs are 0..127 and |w| <= 127). */
static inline kt_vec kt_dot4(kt_vec acc, kt_vec x, const int8_t *w);
/* One output's accumulators to t = (clamp(acc, 0, A) * M) >> (S-1) per lane, A the
 * output's clamp bound (below). */
static inline kt_vec kt_requant(kt_vec acc, const int32_t *m, const uint8_t *s,
				const int32_t *clamp);
/* Four outputs' t values (lane = row) to one group vector: each lane's four bytes
 * (t + 1) >> 1 clamped to [0, 127], outputs 0..3 in order. */
static inline kt_vec kt_pack4(kt_vec y0, kt_vec y1, kt_vec y2, kt_vec y3);
/* The tile's bytes [16c, 16c + 16) of each row (rows stride apart) into groups
 * g[0..3] = 4c..4c+3. */
static inline void kt_load_chunk(const uint8_t *x, size_t stride, unsigned c, kt_vec *g);
/* Every lane to out[0..KT_ROWS); lanes 0..nrows-1 only to out[0..nrows). */
static inline void kt_store(int32_t *out, kt_vec v);
static inline void kt_store_rows(int32_t *out, kt_vec v, unsigned nrows);

/*
 * Requantization, exactly as qs_int8_requant, in two steps. The accumulator is first
 * clamped to [0, A], which changes no result and keeps every intermediate small:
 *  - acc <= 0 gives (acc*M + 2^(S-1)) >> S <= 0 (M > 0), i.e. y = 0 as for acc = 0;
 *  - with mb = bit length of M and e = 30 + S - mb, A = 2^e puts A*M in
 *    [2^(29+S), 2^(30+S)): every acc >= A gives y >= 2^29 (127 after the clamp),
 *    and t = (a*M) >> (S-1) stays below 2^31, so it fits a dword. If e >= 31 no
 *    int32 acc reaches that bound and A = INT32_MAX.
 * Then floor((v + 2^(S-1)) / 2^S) = (floor(v / 2^(S-1)) + 1) >> 1, so kt_requant()
 * returns t and kt_pack4() finishes with a rounding average once the packs have
 * saturated t to [0, 255]: (255 + 1) >> 1 = 128 still clamps to 127.
 * All values are non-negative, so unsigned multiplies and logical shifts are exact
 * (AVX2 has no 64-bit arithmetic shift). A depends only on M and S: the loader
 * stores it per output (struct qs_policy_layer's clamp, qs_kern_clamp_bound).
 */

/*
 * Eight outputs from their block of w_blk (group g's eight weight dwords at
 * wb + 32 g, struct qs_policy_layer) over ng groups: eight independent chains hide
 * the multiply-add's latency, and each input group is loaded once for all eight.
 * Every weight is one pointer plus a constant: with the eight row pointers of the
 * row-major layout GCC ran out of general registers and reloaded spilled ones inside
 * the loop (1.25-1.33x slower, docs/bench.md). Always inlined so that callers
 * passing a constant ng get it fully unrolled.
 */
static inline __attribute__((always_inline)) void
kt_mac8(const int8_t *wb, const int32_t *bias, const kt_vec *in, unsigned ng, kt_vec *acc)
{
	kt_vec a0 = kt_set1(bias[0]), a1 = kt_set1(bias[1]), a2 = kt_set1(bias[2]);
	kt_vec a3 = kt_set1(bias[3]), a4 = kt_set1(bias[4]), a5 = kt_set1(bias[5]);
	kt_vec a6 = kt_set1(bias[6]), a7 = kt_set1(bias[7]);

#pragma GCC unroll 8
	for (unsigned g = 0; g < ng; g++) {
		kt_vec x = in[g];
		const int8_t *p = wb + 32 * g;

		a0 = kt_dot4(a0, x, p);
		a1 = kt_dot4(a1, x, p + 4);
		a2 = kt_dot4(a2, x, p + 8);
		a3 = kt_dot4(a3, x, p + 12);
		a4 = kt_dot4(a4, x, p + 16);
		a5 = kt_dot4(a5, x, p + 20);
		a6 = kt_dot4(a6, x, p + 24);
		a7 = kt_dot4(a7, x, p + 28);
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
static inline __attribute__((always_inline)) kt_vec
kt_mac1(const int8_t *w, int32_t bias, const kt_vec *in, unsigned ng)
{
	kt_vec a0 = kt_set1(bias), a1 = kt_zero();
	unsigned g = 0;

#pragma GCC unroll 8
	for (; g + 2 <= ng; g += 2) {
		a0 = kt_dot4(a0, in[g], w + 4 * g);
		a1 = kt_dot4(a1, in[g + 1], w + 4 * g + 4);
	}
	if (g < ng)
		a0 = kt_dot4(a0, in[g], w + 4 * g);
	return kt_add(a0, a1);
}

/* Hidden layer: outputs j0.. in blocks of eight, requantized into groups o[j0/4..].
 * The router's widths (4 and 8 input groups) get unrolled copies. */
static KT_HIDDEN_ATTR void
kt_hidden8(const struct qs_policy_layer *L, const kt_vec *in, unsigned ng, unsigned j0, kt_vec *o)
{
	const int8_t *wb = L->w_blk + (size_t)j0 * L->w_stride;
	kt_vec acc[8], y[8];

	switch (ng) {
	case 4:
		kt_mac8(wb, L->bias + j0, in, 4, acc);
		break;
	case 8:
		kt_mac8(wb, L->bias + j0, in, 8, acc);
		break;
	default:
		kt_mac8(wb, L->bias + j0, in, ng, acc);
		break;
	}
	for (unsigned q = 0; q < 8; q++)
		y[q] = kt_requant(acc[q], L->m + j0 + q, L->s + j0 + q, L->clamp + j0 + q);
	o[j0 / 4] = kt_pack4(y[0], y[1], y[2], y[3]);
	o[j0 / 4 + 1] = kt_pack4(y[4], y[5], y[6], y[7]);
}

/* Output layer: output j's accumulators. */
static inline kt_vec
kt_last1(const struct qs_policy_layer *L, const kt_vec *in, unsigned ng, unsigned j)
{
	const int8_t *w = L->w + (size_t)j * L->w_stride;

	switch (ng) {
	case 4:
		return kt_mac1(w, L->bias[j], in, 4);
	case 8:
		return kt_mac1(w, L->bias[j], in, 8);
	default:
		return kt_mac1(w, L->bias[j], in, ng);
	}
}

/* One tile of up to KT_ROWS rows whose inputs are readable as whole 16-byte chunks
 * (kernel_rows.h's kt_tile). */
static void
kt_tile(const struct qs_policy *p, const uint8_t *x, size_t stride, unsigned nrows, int32_t *out)
{
	kt_vec act[2][KT_MAX_GROUPS];
	unsigned ng = (p->n_in + 3) / 4, cur = 0;

	for (unsigned c = 0; c < (p->n_in + 15u) / 16; c++)
		kt_load_chunk(x, stride, c, &act[0][4 * c]);

	for (unsigned l = 0; l + 1 < p->n_layers; l++) {
		const struct qs_policy_layer *L = &p->layer[l];
		kt_vec *in = act[cur], *o = act[cur ^ 1];
		unsigned j0 = 0;

		for (; j0 + 8 <= L->n_out; j0 += 8)
			kt_hidden8(L, in, ng, j0, o);
		/* The last up to 7 outputs, zero-padded to whole groups (the next layer's
		 * weights there are zero too). */
		for (; j0 < L->n_out; j0 += 4) {
			kt_vec y[4];

			for (unsigned q = 0; q < 4; q++)
				y[q] = j0 + q < L->n_out
					   ? kt_requant(
						 kt_mac1(L->w + (size_t)(j0 + q) * L->w_stride,
							 L->bias[j0 + q], in, ng),
						 L->m + j0 + q, L->s + j0 + q, L->clamp + j0 + q)
					   : kt_zero();
			o[j0 / 4] = kt_pack4(y[0], y[1], y[2], y[3]);
		}
		ng = (L->n_out + 3u) / 4;
		cur ^= 1;
	}

	const struct qs_policy_layer *L = &p->layer[p->n_layers - 1];

	if (L->n_out == 1) {
		/* A scorer's outputs are contiguous rows: store the lanes directly. */
		kt_store_rows(out, kt_last1(L, act[cur], ng, 0), nrows);
		return;
	}
	for (unsigned j0 = 0; j0 < L->n_out; j0 += 4) {
		unsigned nq = L->n_out - j0 < 4 ? L->n_out - j0 : 4;
		int32_t tmp[4][KT_ROWS];

		for (unsigned q = 0; q < nq; q++)
			kt_store(tmp[q], kt_last1(L, act[cur], ng, j0 + q));
		for (unsigned r = 0; r < nrows; r++)
			for (unsigned q = 0; q < nq; q++)
				out[(size_t)r * L->n_out + j0 + q] = tmp[q][r];
	}
}

#endif /* QSTEER_KERNEL_TILE_H */
