/*
 * quantize.c - post-training quantization, quantization-aware fine-tuning and the
 * float-vs-int8 agreement check (scales and formulas: quantize.h, docs/trainer.md).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adam.h"
#include "qsteer/features.h"
#include "quantize.h"
#include "rng.h"
#include "util.h"

/*
 * A plan's arrays are carved out of one zeroed block, so that one free releases
 * them. The carving is run twice: first with no block, to count the bytes, then on
 * the block. Every array of 4-byte elements is carved before any of bytes, which
 * keeps them aligned.
 */
struct carve {
	char *base; /* NULL: only count */
	size_t off;
};

static void *
take(struct carve *c, size_t bytes)
{
	void *p = c->base ? c->base + c->off : NULL;

	c->off += bytes;
	return p;
}

/* Runs lay(q, c) on a counting carve, allocates the bytes it took (and 16 spare) and
 * runs it again on them; *block gets them. */
static int
carve_block(struct qs_quant_plan *q, void (*lay)(struct qs_quant_plan *, struct carve *),
	    void **block)
{
	struct carve c = {NULL, 0};

	lay(q, &c);
	*block = calloc(1, c.off + 16);
	if (!*block)
		return QS_E_NOMEM;
	c.base = *block;
	c.off = 0;
	lay(q, &c);
	return QS_OK;
}

static void
lay_plan(struct qs_quant_plan *q, struct carve *c)
{
	for (uint32_t l = 0; l < q->n_layers; l++) {
		q->in_scale[l] = take(c, q->dim[l] * 4);
		q->w_scale[l] = take(c, q->dim[l + 1] * 4);
		q->bq[l] = take(c, q->dim[l + 1] * 4);
		q->m[l] = take(c, q->dim[l + 1] * 4);
	}
	for (uint32_t l = 0; l < q->n_layers; l++) {
		q->wq[l] = take(c, (size_t)q->dim[l] * q->dim[l + 1]);
		q->s[l] = take(c, q->dim[l + 1]);
	}
}

int
qs_quant_plan_init(struct qs_quant_plan *q, const struct qs_mlp *m, char *msg, size_t msglen)
{
	memset(q, 0, sizeof(*q));
	q->n_layers = m->n_layers;
	memcpy(q->dim, m->dim, sizeof(q->dim));
	/* Any output count: a scorer has 1 (qs_q8_write checks it against the kind),
	 * the batching classifier one per action (batch_export.c). */
	if (carve_block(q, lay_plan, &q->block) != QS_OK)
		return qs_fail(msg, msglen, QS_E_NOMEM, "quantize: plan");
	for (uint32_t l = 0; l < m->n_layers; l++) {
		if (l + 1 < m->n_layers)
			q->act_scale[l] = q->in_scale[l + 1];
		else
			q->m[l] = NULL, q->s[l] = NULL;
	}
	for (uint32_t i = 0; i < m->dim[0]; i++)
		q->in_scale[0][i] = 1.0f / 127.0f;
	for (uint32_t l = 0; l + 1 < m->n_layers; l++)
		for (uint32_t j = 0; j < m->dim[l + 1]; j++)
			q->act_scale[l][j] = 1.0f / 127.0f;
	return QS_OK;
}

void
qs_quant_plan_free(struct qs_quant_plan *q)
{
	if (!q)
		return;
	free(q->block);
	free(q->xblock);
	memset(q, 0, sizeof(*q));
}

static void
lay_split(struct qs_quant_plan *q, struct carve *c)
{
	for (uint32_t l = 0; l < q->n_layers; l++) {
		q->xbq[l] = take(c, q->xdim[l + 1] * 4);
		q->xm[l] = take(c, q->xdim[l + 1] * 4);
		q->xbase[l] = take(c, q->xdim[l + 1] * 4);
		q->xn[l] = take(c, (size_t)q->dim[l + 1] * q->dim[l] * 4);
		q->xoff[l] = take(c, q->xdim[l + 1] * 4);
		q->xws[l] = take(c, q->dim[l + 1] * 4);
	}
	for (uint32_t l = 0; l < q->n_layers; l++) {
		q->xwq[l] = take(c, (size_t)q->xdim[l] * q->xdim[l + 1]);
		q->xs[l] = take(c, q->xdim[l + 1]);
		/* every layer's, so that the hidden layers' stay where they were */
		q->split[l] = take(c, q->dim[l + 1]);
	}
}

int
qs_quant_plan_split(struct qs_quant_plan *q, const uint8_t *const *split, char *msg, size_t msglen)
{
	free(q->xblock);
	q->xblock = NULL;
	memset(q->split, 0, sizeof(q->split));
	q->xdim[0] = q->dim[0];
	for (uint32_t l = 0; l < q->n_layers; l++) {
		uint32_t w = 0;

		for (uint32_t j = 0; j < q->dim[l + 1]; j++) {
			uint32_t k = l + 1 < q->n_layers && split[l] ? split[l][j] : 1;

			if (k < 1 || k > 8)
				return qs_fail(msg, msglen, QS_E_ARG,
					       "quantize: split %u for hidden layer %u channel %u "
					       "(1..8)",
					       k, l + 1, j);
			w += k;
		}
		if (w > QS_INT8_MAX_DIM)
			return qs_fail(msg, msglen, QS_E_ARG,
				       "quantize: hidden layer %u split to %u units, above the "
				       "contract's %u",
				       l + 1, w, QS_INT8_MAX_DIM);
		q->xdim[l + 1] = w;
	}
	if (carve_block(q, lay_split, &q->xblock) != QS_OK) {
		memset(q->split, 0, sizeof(q->split));
		return qs_fail(msg, msglen, QS_E_NOMEM, "quantize: split plan");
	}
	/* The output layer has no split (its array is carved but unused). */
	q->split[q->n_layers - 1] = NULL;
	for (uint32_t l = 0; l + 1 < q->n_layers; l++)
		for (uint32_t j = 0; j < q->dim[l + 1]; j++)
			q->split[l][j] = split[l] ? split[l][j] : 1;
	return QS_OK;
}

/*
 * The widened network of a split plan. Layer l's input channel i arrives as k_i
 * copies whose integers sum to round(k_i x_i / in_scale_i): one int8 weight w read
 * over all of them contributes w k_i per step of x_i, so the row scale is
 * max_i |W'_ji| / (127 k_i) (W' = W in_scale) and w = round(W'_ji / (ws k_i)) --
 * each weight as precise as unsplit, each activation k_i times finer, and the
 * fake-quantized model (weights N ws / in_scale with N = w k_i, bias base ws,
 * copies' exact offsets) equal to the file. Giving the copies different roundings
 * of a finer weight (sum k times as precise) measured no better and is not exact.
 */
static void
build_split(struct qs_quant_plan *q, const struct qs_mlp *m)
{
	for (uint32_t l = 0; l < q->n_layers; l++) {
		uint32_t ni = q->dim[l], no = q->dim[l + 1], xni = q->xdim[l], xj = 0;
		const uint8_t *kin = l ? q->split[l - 1] : NULL, *kout = q->split[l];
		int hidden = l + 1 < q->n_layers;
		const float *w = m->p + m->w_off[l], *b = m->p + m->b_off[l];

		for (uint32_t j = 0; j < no; j++) {
			uint32_t k = hidden ? kout[j] : 1, xi = 0;
			double mx = 0, ws, base;
			int8_t *row = q->xwq[l] + (size_t)xj * xni;

			for (uint32_t i = 0; i < ni; i++) {
				double v = fabs((double)w[(size_t)j * ni + i] * q->in_scale[l][i]) /
					   (kin ? kin[i] : 1);

				mx = v > mx ? v : mx;
			}
			ws = mx / QS_INT8_W_MAX;
			if (!(ws > 0))
				ws = fabs((double)b[j]) > 0 ? fabs((double)b[j]) / (1 << 20) : 1.0;
			q->xws[l][j] = (float)ws;
			for (uint32_t i = 0; i < ni; i++) {
				uint32_t ki = kin ? kin[i] : 1;
				long r = lround((double)w[(size_t)j * ni + i] * q->in_scale[l][i] /
						(ws * ki));

				r = r > QS_INT8_W_MAX	 ? QS_INT8_W_MAX
				    : r < -QS_INT8_W_MAX ? -QS_INT8_W_MAX
							 : r;
				q->xn[l][(size_t)j * ni + i] = (int32_t)(r * (long)ki);
				for (uint32_t c = 0; c < ki; c++)
					row[xi++] = (int8_t)r;
			}
			base = floor((double)b[j] / ws + 0.5);
			if (base > QS_INT8_MAX_ABS_BIAS || base < -QS_INT8_MAX_ABS_BIAS) {
				base = base > 0 ? QS_INT8_MAX_ABS_BIAS : -QS_INT8_MAX_ABS_BIAS;
				q->bias_clamped++;
			}
			q->xbase[l][j] = (int32_t)base;
			for (uint32_t c = 0; c < k; c++, xj++) {
				double step = hidden ? (double)q->act_scale[l][j] / ws : 0;
				double d = floor(((double)c - 0.5 * (k - 1)) / k * step + 0.5), bq;

				if (c)
					memcpy(q->xwq[l] + (size_t)xj * xni, row, xni);
				bq = base + d;
				if (bq > QS_INT8_MAX_ABS_BIAS || bq < -QS_INT8_MAX_ABS_BIAS) {
					bq = bq > 0 ? QS_INT8_MAX_ABS_BIAS : -QS_INT8_MAX_ABS_BIAS;
					q->bias_clamped++;
				}
				q->xbq[l][xj] = (int32_t)bq;
				if (hidden) {
					q->xoff[l][xj] = (float)((bq - base) / step);
					qs_quant_multiplier(ws / q->act_scale[l][j], &q->xm[l][xj],
							    &q->xs[l][xj]);
				}
			}
		}
	}
}

/* Decisions [d0, d1) of st as float rows x / 127, and the row offset of each. */
static uint32_t
rows_of(const struct qs_quant_states *st, uint32_t d0, uint32_t d1, float *x)
{
	uint32_t r0 = st->row_off[d0], nr = st->row_off[d1] - r0;

	for (size_t k = 0; k < (size_t)nr * st->n_feat; k++)
		x[k] = (float)st->rows[(size_t)r0 * st->n_feat + k] / 127.0f;
	return nr;
}

/*
 * Decision i of st on its own: its eligibility mask over its nc candidates (0 when
 * it has no candidate, more than QS_MAX_CANDIDATES or none eligible: skip it) and,
 * when there is one, its rows as floats in x.
 */
static uint64_t
one_decision(const struct qs_quant_states *st, uint32_t i, float *x, uint32_t *nc)
{
	uint64_t mask = st->mask[i];

	*nc = st->row_off[i + 1] - st->row_off[i];
	if (!*nc || *nc > QS_MAX_CANDIDATES)
		return 0;
	if (*nc < 64)
		mask &= (1ull << *nc) - 1;
	if (mask)
		rows_of(st, i, i + 1, x);
	return mask;
}

#define ALLOC_CHUNK 512 /* decisions per forward */

/*
 * The masked argmax of every decision of st under fake quantization fq (NULL: the
 * float net): into ref when flips is NULL, else the count of decisions whose
 * argmax differs from ref. x and ws hold ALLOC_CHUNK decisions' rows.
 */
static void
argmax_pass(const struct qs_mlp *m, struct qs_mlp_ws *ws, const struct qs_quant_states *st,
	    const struct qs_mlp_fq *fq, float *x, uint32_t *ref, uint64_t *flips)
{
	for (uint32_t d = 0; d < st->n; d += ALLOC_CHUNK) {
		uint32_t e = d + ALLOC_CHUNK < st->n ? d + ALLOC_CHUNK : st->n;
		const float *sc = qs_mlp_forward(m, ws, x, rows_of(st, d, e, x), fq);

		for (uint32_t i = d; i < e; i++) {
			uint32_t r0 = st->row_off[i] - st->row_off[d];
			uint32_t nc = st->row_off[i + 1] - st->row_off[i];
			uint64_t mask = st->mask[i];
			uint32_t a;

			if (nc < 64)
				mask &= (1ull << nc) - 1;
			a = mask ? qs_mlp_argmax_masked(sc + r0, nc, mask) : 0;
			if (flips)
				*flips += a != ref[i];
			else
				ref[i] = a;
		}
	}
}

int
qs_quant_split_alloc(struct qs_quant_plan *q, const struct qs_mlp *m,
		     const struct qs_quant_states *st, const uint32_t *budget, char *msg,
		     size_t msglen)
{
	uint8_t *k[QS_MLP_MAX_LAYERS] = {0};
	uint32_t *ref = NULL, cap = 0;
	double *cost = NULL;
	float *x = NULL, *one = NULL;
	struct qs_mlp_ws ws = {0};
	int rc = QS_OK;

	if (st->n_feat != m->dim[0] || !st->n)
		return qs_fail(msg, msglen, QS_E_ARG,
			       "split: %u decisions of %u features for a %u-input net", st->n,
			       st->n_feat, m->dim[0]);
	for (uint32_t l = 0; l + 1 < m->n_layers; l++)
		if (budget[l] && (budget[l] < m->dim[l + 1] || budget[l] > QS_INT8_MAX_DIM))
			return qs_fail(msg, msglen, QS_E_ARG,
				       "split: hidden layer %u has %u channels, budget %u "
				       "(%u..%u)",
				       l + 1, m->dim[l + 1], budget[l], m->dim[l + 1],
				       QS_INT8_MAX_DIM);
	for (uint32_t d = 0; d < st->n; d += ALLOC_CHUNK) {
		uint32_t e = d + ALLOC_CHUNK < st->n ? d + ALLOC_CHUNK : st->n;
		uint32_t nr = st->row_off[e] - st->row_off[d];

		cap = nr > cap ? nr : cap;
	}
	ref = malloc((size_t)st->n * sizeof(uint32_t));
	cost = malloc(QS_MLP_MAX_DIM * sizeof(double));
	x = malloc((size_t)cap * st->n_feat * sizeof(float));
	one = calloc(QS_MLP_MAX_DIM, sizeof(float));
	if (!ref || !cost || !x || !one) {
		rc = qs_fail(msg, msglen, QS_E_NOMEM, "split: %u decisions", st->n);
		goto out;
	}
	rc = qs_mlp_ws_init(&ws, m, cap, msg, msglen);
	if (rc == QS_OK)
		argmax_pass(m, &ws, st, NULL, x, ref, NULL);
	for (uint32_t l = 0; rc == QS_OK && l + 1 < m->n_layers; l++) {
		uint32_t no = m->dim[l + 1], used = no;
		struct qs_mlp_fq fq;

		if (!budget[l])
			continue;
		/* Each channel's cost: the flips when it alone is rounded to its step (its
		 * act_scale set, every other one 0 = unrounded). */
		memset(&fq, 0, sizeof(fq));
		fq.act_scale[l] = one;
		for (uint32_t j = 0; j < no; j++) {
			uint64_t flips = 0;

			one[j] = q->act_scale[l][j];
			argmax_pass(m, &ws, st, &fq, x, ref, &flips);
			one[j] = 0;
			cost[j] = (double)flips;
		}
		k[l] = malloc(no);
		if (!k[l]) {
			rc = qs_fail(msg, msglen, QS_E_NOMEM, "split");
			break;
		}
		memset(k[l], 1, no);
		/* Greedy on cost / k, the flips if they fall as the step does. */
		while (used < budget[l]) {
			uint32_t best = no;
			double gain = 0;

			for (uint32_t j = 0; j < no; j++) {
				double g = cost[j] / ((double)k[l][j] * (k[l][j] + 1));

				if (k[l][j] < 8 && g > gain) {
					gain = g;
					best = j;
				}
			}
			if (best == no)
				break; /* every remaining channel costs nothing */
			k[l][best]++;
			used++;
		}
	}
	if (rc == QS_OK)
		rc = qs_quant_plan_split(q, (const uint8_t *const *)k, msg, msglen);
out:
	for (uint32_t l = 0; l < QS_MLP_MAX_LAYERS; l++)
		free(k[l]);
	qs_mlp_ws_free(&ws);
	free(ref);
	free(cost);
	free(x);
	free(one);
	return rc;
}

static int
cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

int
qs_quant_calibrate(struct qs_quant_plan *q, const struct qs_mlp *m,
		   const struct qs_quant_states *st, float pct, uint32_t max_rows, char *msg,
		   size_t msglen)
{
	uint32_t total = st->row_off[st->n], n, stride, md = 0;
	struct qs_mlp_ws ws;
	float *x = NULL, *vals = NULL;
	int rc;

	if (!total || !max_rows || st->n_feat != m->dim[0] || !(pct > 0 && pct <= 1))
		return qs_fail(msg, msglen, QS_E_ARG,
			       "calibrate: %u rows of %u features for a %u-input net, pct %g",
			       total, st->n_feat, m->dim[0], (double)pct);
	stride = (total + max_rows - 1) / max_rows;
	n = (total + stride - 1) / stride;
	rc = qs_mlp_ws_init(&ws, m, n, msg, msglen);
	if (rc != QS_OK)
		return rc;
	for (uint32_t l = 1; l < m->n_layers; l++)
		md = m->dim[l] > md ? m->dim[l] : md;
	x = malloc((size_t)n * m->dim[0] * sizeof(float));
	vals = malloc((size_t)n * sizeof(float));
	if (!x || !vals) {
		rc = qs_fail(msg, msglen, QS_E_NOMEM, "calibrate: %u rows", n);
		goto out;
	}
	for (uint32_t r = 0; r < n; r++)
		for (uint32_t f = 0; f < m->dim[0]; f++)
			x[(size_t)r * m->dim[0] + f] =
			    (float)st->rows[(size_t)r * stride * st->n_feat + f] / 127.0f;
	qs_mlp_forward(m, &ws, x, n, NULL);
	for (uint32_t l = 0; l + 1 < m->n_layers; l++) {
		uint32_t no = m->dim[l + 1];

		for (uint32_t j = 0; j < no; j++) {
			float range;

			for (uint32_t r = 0; r < n; r++)
				vals[r] = ws.h[l][(size_t)r * no + j];
			if (pct >= 1.0f) {
				range = 0;
				for (uint32_t r = 0; r < n; r++)
					range = vals[r] > range ? vals[r] : range;
			} else {
				uint32_t k = (uint32_t)floor((double)pct * (n - 1) + 0.5);

				qsort(vals, n, sizeof(float), cmp_float);
				range = vals[k];
			}
			/* A channel never active on the states keeps a nominal range; its
			 * value barely matters, but it must be positive and finite. */
			q->act_scale[l][j] = range > 1e-6f ? range / 127.0f : 1.0f / 127.0f;
		}
	}
	rc = QS_OK;
out:
	free(x);
	free(vals);
	qs_mlp_ws_free(&ws);
	return rc;
}

void
qs_quant_multiplier(double mult, int32_t *M, uint8_t *S)
{
	int s = QS_INT8_S_MAX;
	double v;

	if (!(mult > 0)) {
		*M = 1;
		*S = QS_INT8_S_MAX;
		return;
	}
	while (s > QS_INT8_S_MIN && mult * ldexp(1.0, s) >= 2147483647.5)
		s--;
	v = floor(mult * ldexp(1.0, s) + 0.5);
	if (v > QS_INT8_M_MAX)
		v = QS_INT8_M_MAX; /* mult >= 2^30: saturates the output anyway */
	if (v < 1)
		v = 1; /* mult < 2^-63: the channel is effectively off */
	*M = (int32_t)v;
	*S = (uint8_t)s;
}

void
qs_quant_build(struct qs_quant_plan *q, const struct qs_mlp *m)
{
	q->bias_clamped = 0;
	for (uint32_t l = 0; l < q->n_layers; l++) {
		uint32_t ni = q->dim[l], no = q->dim[l + 1];
		const float *w = m->p + m->w_off[l], *b = m->p + m->b_off[l];
		double row_ws[QS_MLP_MAX_DIM], shared = 0;

		for (uint32_t j = 0; j < no; j++) {
			double mx = 0, ws;

			for (uint32_t i = 0; i < ni; i++) {
				double v = fabs((double)w[(size_t)j * ni + i] * q->in_scale[l][i]);

				mx = v > mx ? v : mx;
			}
			ws = mx / QS_INT8_W_MAX;
			if (!(ws > 0)) /* all-zero row: the bias alone sets the scale */
				ws = fabs((double)b[j]) > 0 ? fabs((double)b[j]) / (1 << 20) : 1.0;
			row_ws[j] = ws;
			q->w_scale[l][j] = (float)ws;
			shared = q->w_scale[l][j] > shared ? q->w_scale[l][j] : shared;
		}
		for (uint32_t j = 0; j < no; j++) {
			double ws = row_ws[j], bq;

			if (q->shared_out_scale && l + 1 == q->n_layers) {
				/* The largest row's scale (as stored): no weight saturates. */
				ws = shared;
				q->w_scale[l][j] = (float)ws;
			}
			for (uint32_t i = 0; i < ni; i++) {
				double v = (double)w[(size_t)j * ni + i] * q->in_scale[l][i] / ws;
				long r = lround(v);

				r = r > QS_INT8_W_MAX ? QS_INT8_W_MAX : r;
				r = r < -QS_INT8_W_MAX ? -QS_INT8_W_MAX : r;
				q->wq[l][(size_t)j * ni + i] = (int8_t)r;
			}
			bq = floor((double)b[j] / ws + 0.5);
			if (bq > QS_INT8_MAX_ABS_BIAS || bq < -QS_INT8_MAX_ABS_BIAS) {
				bq = bq > 0 ? QS_INT8_MAX_ABS_BIAS : -QS_INT8_MAX_ABS_BIAS;
				q->bias_clamped++;
			}
			q->bq[l][j] = (int32_t)bq;
			if (l + 1 < q->n_layers)
				qs_quant_multiplier(ws / q->act_scale[l][j], &q->m[l][j],
						    &q->s[l][j]);
		}
	}
	if (q->xblock)
		build_split(q, m);
}

void
qs_quant_fake_params(const struct qs_quant_plan *q, float *p)
{
	size_t off = 0;

	for (uint32_t l = 0; l < q->n_layers; l++) {
		uint32_t ni = q->dim[l], no = q->dim[l + 1];

		for (uint32_t j = 0; j < no; j++) {
			double ws = q->xblock ? q->xws[l][j] : q->w_scale[l][j];

			for (uint32_t i = 0; i < ni; i++) {
				size_t k = (size_t)j * ni + i;
				double w = q->xblock ? q->xn[l][k] : q->wq[l][k];

				p[off + k] = (float)(w * ws / q->in_scale[l][i]);
			}
		}
		off += (size_t)ni * no;
		for (uint32_t j = 0; j < no; j++)
			p[off + j] = q->xblock ? (float)((double)q->xbase[l][j] * q->xws[l][j])
					       : (float)((double)q->bq[l][j] * q->w_scale[l][j]);
		off += no;
	}
}

void
qs_quant_fq(const struct qs_quant_plan *q, struct qs_mlp_fq *fq)
{
	memset(fq, 0, sizeof(*fq));
	for (uint32_t l = 0; l + 1 < q->n_layers; l++) {
		fq->act_scale[l] = q->act_scale[l];
		if (q->xblock) {
			fq->split[l] = q->split[l];
			fq->off[l] = q->xoff[l];
		}
	}
}

void
qs_quant_desc(const struct qs_quant_plan *q, const char *name, uint64_t created,
	      struct qs_q8_desc *d)
{
	memset(d, 0, sizeof(*d));
	d->kind = QS_Q8_KIND_SCORER;
	d->schema = q->dim[0] == QS_FR_COUNT ? QS_SCHEMA_ROUTER_V1 : QS_SCHEMA_RAW;
	d->name = name;
	d->created = created;
	d->n_layers = (uint16_t)q->n_layers;
	/* A split plan's file is its widened network. */
	for (uint32_t l = 0; l < q->n_layers; l++) {
		int x = q->xblock != NULL, hidden = l + 1 < q->n_layers;
		const uint32_t *dim = x ? q->xdim : q->dim;

		d->layer[l].n_in = (uint16_t)dim[l];
		d->layer[l].n_out = (uint16_t)dim[l + 1];
		d->layer[l].w = x ? q->xwq[l] : q->wq[l];
		d->layer[l].bias = x ? q->xbq[l] : q->bq[l];
		d->layer[l].m = hidden ? (x ? q->xm[l] : q->m[l]) : NULL;
		d->layer[l].s = hidden ? (x ? q->xs[l] : q->s[l]) : NULL;
	}
}

int
qs_quant_agreement_groups(const struct qs_mlp *m, const struct qs_policy *p,
			  const struct qs_quant_states *st, const uint16_t *group,
			  uint32_t n_groups, double *agree, double *overall, char *msg,
			  size_t msglen)
{
	uint64_t all_same = 0, all_counted = 0;
	struct qs_mlp_ws ws;
	float x[QS_MAX_CANDIDATES * 64];
	uint64_t *same, *counted;
	int rc;

	if (st->n_feat != m->dim[0] || st->n_feat != p->n_in || st->n_feat > 64 || !n_groups)
		return qs_fail(msg, msglen, QS_E_SHAPE,
			       "agreement: states have %u features, float net %u, int8 %u",
			       st->n_feat, m->dim[0], p->n_in);
	same = calloc(2 * (size_t)n_groups, sizeof(uint64_t));
	if (!same)
		return qs_fail(msg, msglen, QS_E_NOMEM, "agreement: %u groups", n_groups);
	counted = same + n_groups;
	rc = qs_mlp_ws_init(&ws, m, QS_MAX_CANDIDATES, msg, msglen);
	if (rc != QS_OK) {
		free(same);
		return rc;
	}
	for (uint32_t i = 0; i < st->n; i++) {
		uint32_t nc, fa, gi = group ? group[i] : 0;
		const uint8_t *rows = st->rows + (size_t)st->row_off[i] * st->n_feat;
		uint64_t mask;
		uint16_t choice;
		const float *s;

		if (gi >= n_groups || !(mask = one_decision(st, i, x, &nc)))
			continue;
		s = qs_mlp_forward(m, &ws, x, nc, NULL);
		fa = qs_mlp_argmax_masked(s, nc, mask);
		rc = qs_policy_choose(p, QS_KERNEL_SCALAR, rows, 1, nc, &mask, NULL, &choice);
		if (rc != QS_OK) {
			qs_mlp_ws_free(&ws);
			free(same);
			return qs_fail(msg, msglen, rc, "agreement: int8 policy failed (%s)",
				       qs_status_name(rc));
		}
		counted[gi]++;
		same[gi] += choice == fa;
	}
	qs_mlp_ws_free(&ws);
	for (uint32_t g = 0; g < n_groups; g++) {
		agree[g] = counted[g] ? (double)same[g] / (double)counted[g] : 1.0;
		all_same += same[g];
		all_counted += counted[g];
	}
	if (overall)
		*overall = all_counted ? (double)all_same / (double)all_counted : 1.0;
	free(same);
	return QS_OK;
}

int
qs_quant_agreement(const struct qs_mlp *m, const struct qs_policy *p,
		   const struct qs_quant_states *st, double *agree, char *msg, size_t msglen)
{
	return qs_quant_agreement_groups(m, p, st, NULL, 1, agree, NULL, msg, msglen);
}

void
qs_quant_qat_defaults(struct qs_quant_qat_cfg *c)
{
	c->steps = 400;
	c->minibatch = 128;
	c->lr = 3e-4f;
	c->temp = 0.5f;
	c->seed = 1;
	c->consist = 0;
	c->anchor = 0;
	c->focus_gap = 0;
	c->focus_frac = 0;
}

/*
 * Indices of the decisions at risk (quantize.h, focus_gap): float gap below gap, or
 * the fake-quantized argmax (shadow, fq) already different. Returns the count.
 */
static uint32_t
at_risk(const struct qs_mlp *m, const struct qs_mlp *shadow, const struct qs_mlp_fq *fq,
	const struct qs_quant_states *st, float gap, struct qs_mlp_ws *wa, struct qs_mlp_ws *wb,
	uint32_t *out)
{
	float x[QS_MAX_CANDIDATES * 64];
	uint32_t n = 0, nf = st->n_feat;

	for (uint32_t i = 0; i < st->n && nf <= 64; i++) {
		uint32_t nc, a, aq;
		uint64_t mask;
		const float *sf, *sq;
		float g = INFINITY;

		if (!(mask = one_decision(st, i, x, &nc)))
			continue;
		sf = qs_mlp_forward(m, wa, x, nc, NULL);
		sq = qs_mlp_forward(shadow, wb, x, nc, fq);
		a = qs_mlp_argmax_masked(sf, nc, mask);
		aq = qs_mlp_argmax_masked(sq, nc, mask);
		for (uint32_t cc = 0; cc < nc; cc++)
			if ((mask >> cc & 1) && cc != a && sf[a] - sf[cc] < g)
				g = sf[a] - sf[cc];
		if (g < gap || a != aq)
			out[n++] = i;
	}
	return n;
}

int
qs_quant_qat(struct qs_mlp *m, const struct qs_mlp *teacher, struct qs_quant_plan *q,
	     const struct qs_quant_states *st, const struct qs_quant_qat_cfg *c, char *msg,
	     size_t msglen)
{
	struct qs_mlp shadow = {0};
	struct qs_mlp_ws ws = {0}, wt = {0}, wf = {0};
	struct qs_adam opt = {0};
	struct qs_adam_cfg ac;
	struct qs_mlp_fq fq;
	struct qs_rng rng;
	uint32_t nf = st->n_feat, cap = c->minibatch * QS_MAX_CANDIDATES;
	float *x = NULL, *g = NULL, *ds = NULL, *pt = NULL, *ps = NULL;
	uint32_t *pick = NULL, *risk = NULL, n_risk = 0;
	int rc;

	if (!st->n || !c->minibatch || !c->steps || !qs_mlp_same_shape(m, teacher) ||
	    nf != m->dim[0])
		return qs_fail(msg, msglen, QS_E_ARG,
			       "qat: %u states, minibatch %u, %u steps, or shapes differ", st->n,
			       c->minibatch, c->steps);
	qs_adam_defaults(&ac);
	ac.lr = c->lr;
	ac.max_grad_norm = 1.0f;
	ac.sched = QS_ADAM_CONSTANT;
	rc = qs_mlp_init(&shadow, m->n_layers, m->dim, msg, msglen);
	if (rc == QS_OK)
		rc = qs_mlp_ws_init(&ws, m, cap, msg, msglen);
	if (rc == QS_OK)
		rc = qs_mlp_ws_init(&wt, m, cap, msg, msglen);
	if (rc == QS_OK && c->consist > 0)
		rc = qs_mlp_ws_init(&wf, m, cap, msg, msglen);
	if (rc == QS_OK)
		rc = qs_adam_init(&opt, &ac, m->n_params, msg, msglen);
	if (rc != QS_OK)
		goto out;
	x = malloc((size_t)cap * nf * sizeof(float));
	g = malloc(m->n_params * sizeof(float));
	ds = malloc((size_t)cap * 2 * sizeof(float));
	pt = malloc((size_t)cap * sizeof(float));
	ps = malloc((size_t)cap * sizeof(float));
	pick = malloc((size_t)c->minibatch * sizeof(uint32_t));
	risk = c->focus_frac > 0 ? malloc((size_t)st->n * sizeof(uint32_t)) : NULL;
	if (!x || !g || !ds || !pt || !ps || !pick || (c->focus_frac > 0 && !risk)) {
		rc = qs_fail(msg, msglen, QS_E_NOMEM, "qat: scratch");
		goto out;
	}
	qs_rng_seed(&rng, c->seed, 0x9a7);
	qs_quant_fq(q, &fq);
	if (c->focus_frac > 0) {
		qs_quant_build(q, m);
		qs_quant_fake_params(q, shadow.p);
		n_risk = at_risk(m, &shadow, &fq, st, c->focus_gap, &ws, &wt, risk);
	}
	for (uint32_t step = 0; step < c->steps; step++) {
		uint32_t nr = 0;
		const float *ss, *tsrc;

		for (uint32_t k = 0; k < c->minibatch; k++) {
			uint32_t i = n_risk && qs_rng_uniform(&rng) < c->focus_frac
					 ? risk[qs_rng_below(&rng, n_risk)]
					 : qs_rng_below(&rng, st->n);
			uint32_t r0 = st->row_off[i], nc = st->row_off[i + 1] - r0;

			pick[k] = i;
			for (size_t e = 0; e < (size_t)nc * nf; e++)
				x[(size_t)nr * nf + e] =
				    (float)st->rows[(size_t)r0 * nf + e] / 127.0f;
			nr += nc;
		}
		/* Teacher distribution (sharpened), then the fake-quantized student. */
		tsrc = qs_mlp_forward(teacher, &wt, x, nr, NULL);
		qs_quant_build(q, m);
		qs_quant_fake_params(q, shadow.p);
		ss = qs_mlp_forward(&shadow, &ws, x, nr, &fq);
		nr = 0;
		for (uint32_t k = 0; k < c->minibatch; k++) {
			uint32_t i = pick[k], nc = st->row_off[i + 1] - st->row_off[i];
			uint64_t mask = st->mask[i];
			float tt[QS_MAX_CANDIDATES];

			if (nc < 64)
				mask &= (1ull << nc) - 1;
			for (uint32_t cc = 0; cc < nc; cc++)
				tt[cc] = tsrc[nr + cc] / c->temp;
			qs_mlp_softmax_masked(tt, nc, mask, pt + nr);
			qs_mlp_softmax_masked(ss + nr, nc, mask, ps + nr);
			/* d/ds of cross-entropy(teacher, student) = p_student - p_teacher. */
			for (uint32_t cc = 0; cc < nc; cc++)
				ds[nr + cc] = (ps[nr + cc] - pt[nr + cc]) / (float)c->minibatch;
			nr += nc;
		}
		memset(g, 0, m->n_params * sizeof(float));
		if (c->consist > 0) {
			/* Replace the distillation gradient by the consistency loss. */
			const float *sf = qs_mlp_forward(m, &wf, x, nr, NULL);
			float *df = ds + cap, inv = 1.0f / (float)c->minibatch;

			nr = 0;
			for (uint32_t k = 0; k < c->minibatch; k++) {
				uint32_t i = pick[k], nc = st->row_off[i + 1] - st->row_off[i];
				uint64_t mask = st->mask[i];
				float tq[QS_MAX_CANDIDATES], tf[QS_MAX_CANDIDATES];
				float pq[QS_MAX_CANDIDATES], pf[QS_MAX_CANDIDATES];
				uint32_t af, aq, at;

				if (nc < 64)
					mask &= (1ull << nc) - 1;
				af = qs_mlp_argmax_masked(sf + nr, nc, mask);
				aq = qs_mlp_argmax_masked(ss + nr, nc, mask);
				for (uint32_t cc = 0; cc < nc; cc++) {
					tq[cc] = ss[nr + cc] / c->temp;
					tf[cc] = sf[nr + cc] / c->temp;
				}
				qs_mlp_softmax_masked(tq, nc, mask, pq);
				qs_mlp_softmax_masked(tf, nc, mask, pf);
				at = qs_mlp_argmax_masked(tsrc + nr, nc, mask);
				for (uint32_t cc = 0; cc < nc; cc++) {
					int in = (int)(mask >> cc & 1);

					ds[nr + cc] =
					    in ? (pq[cc] - (cc == af)) / c->temp * inv : 0.0f;
					df[nr + cc] = in ? (c->consist * (pf[cc] - (cc == aq)) +
							    c->anchor * (pf[cc] - (cc == at))) /
							       c->temp * inv
							 : 0.0f;
				}
				nr += nc;
			}
			memset(g, 0, m->n_params * sizeof(float));
			qs_mlp_backward(&shadow, &ws, nr, ds, &fq, g, NULL);
			qs_mlp_backward(m, &wf, nr, df, NULL, g, NULL);
			qs_adam_step(&opt, m->p, g);
			continue;
		}
		qs_mlp_backward(&shadow, &ws, nr, ds, &fq, g, NULL);
		/* Straight-through: the gradient at the quantized weights updates the float
		 * master weights. */
		qs_adam_step(&opt, m->p, g);
	}
	qs_quant_build(q, m);
	rc = QS_OK;
out:
	free(x);
	free(g);
	free(ds);
	free(pt);
	free(ps);
	free(pick);
	free(risk);
	qs_adam_free(&opt);
	qs_mlp_ws_free(&ws);
	qs_mlp_ws_free(&wt);
	qs_mlp_ws_free(&wf);
	qs_mlp_free(&shadow);
	return rc;
}
