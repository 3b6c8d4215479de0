/*
 * kernel_rows.h - the row driver of the tiled kernel levels (AVX2, AVX-512 VNNI, NEON
 * SDOT), written once and included by each level's file; not installed.
 *
 * It cuts n rows into tiles of KT_ROWS and hands each to the level's tile function.
 * A tile reads its rows' inputs as whole 16-byte chunks, which may run past n_in into
 * the next row: harmless, since the weights' padding up to w_stride is zero. Past the
 * caller's buffer it is not, so the tiles that would read past its end -- the last
 * one or few -- go through a zero-padded copy instead, as does a partial last tile.
 *
 * The includer defines, before including this file:
 *   KT_ROWS   rows per tile;
 *   KT_ENTRY  the name of the qs_kern_fn to define (kernel_impl.h);
 *   kt_tile(p, x, stride, nrows, out)  one tile of nrows <= KT_ROWS rows at x (rows
 *             stride apart, readable as whole 16-byte chunks), writing nrows rows of
 *             p->n_out outputs to out; the in-place tiles call it with KT_ROWS;
 *   kt_tile_tail (optional, a macro naming a function like kt_tile) the tiles that
 *             go through the padded copy, where a level may size its work to the
 *             rows (NEON: the fewest quads); kt_tile by default.
 */
#ifndef QSTEER_KERNEL_ROWS_H
#define QSTEER_KERNEL_ROWS_H

#include <string.h>

#include "kernel_impl.h"

#if !defined(KT_ROWS) || !defined(KT_ENTRY)
#error "kernel_rows.h: define KT_ROWS and KT_ENTRY (and kt_tile) before including it"
#endif
#ifndef kt_tile_tail
#define kt_tile_tail kt_tile
#endif

void
KT_ENTRY(const struct qs_policy *p, const uint8_t *x, size_t x_stride, uint32_t n, int32_t *out)
{
	size_t span = (size_t)(p->n_in + 15u) / 16 * 16;
	size_t r0 = 0;

	if (!n)
		return;
	/* Bytes from x that may be read: everything up to the last row's last input. */
	size_t avail = (size_t)(n - 1) * x_stride + p->n_in;

	for (; r0 < n; r0 += KT_ROWS) {
		if (n - r0 < KT_ROWS || (r0 + KT_ROWS - 1) * x_stride + span > avail)
			break;
		kt_tile(p, x + r0 * x_stride, x_stride, KT_ROWS, out + r0 * p->n_out);
	}
	for (; r0 < n; r0 += KT_ROWS) {
		unsigned nrows = n - r0 < KT_ROWS ? n - r0 : KT_ROWS;
		uint8_t buf[KT_ROWS * QS_INT8_MAX_DIM];

		memset(buf, 0, (size_t)KT_ROWS * span);
		for (unsigned r = 0; r < nrows; r++)
			memcpy(buf + r * span, x + (size_t)(r0 + r) * x_stride, p->n_in);
		kt_tile_tail(p, buf, span, nrows, out + r0 * p->n_out);
	}
}

#endif /* QSTEER_KERNEL_ROWS_H */
