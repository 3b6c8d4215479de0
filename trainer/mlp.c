/*
 * mlp.c - forward and backward passes of the trainer's float MLPs, and the masked
 * softmax with its log-probability and entropy gradients.
 *
 * Loops are ordered so that the innermost one walks contiguous memory without a
 * reduction where possible (the backward passes), which the compiler vectorizes
 * without -ffast-math; the forward dot products use four partial sums for the same
 * reason. Results are deterministic: the order of every floating-point sum is fixed.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mlp.h"
#include "util.h"

int
qs_mlp_init(struct qs_mlp *m, uint32_t n_layers, const uint32_t *dim, char *msg, size_t msglen)
{
	size_t off = 0;

	memset(m, 0, sizeof(*m));
	if (n_layers < 1 || n_layers > QS_MLP_MAX_LAYERS)
		return qs_train_fail(QS_E_SHAPE, msg, msglen, "mlp: %u layers (1..%d)", n_layers,
				     QS_MLP_MAX_LAYERS);
	for (uint32_t l = 0; l <= n_layers; l++) {
		if (dim[l] < 1 || dim[l] > QS_MLP_MAX_DIM)
			return qs_train_fail(QS_E_SHAPE, msg, msglen,
					     "mlp: dimension %u is %u (1..%d)", l, dim[l],
					     QS_MLP_MAX_DIM);
		m->dim[l] = dim[l];
	}
	m->n_layers = n_layers;
	for (uint32_t l = 0; l < n_layers; l++) {
		m->w_off[l] = off;
		off += (size_t)dim[l] * dim[l + 1];
		m->b_off[l] = off;
		off += dim[l + 1];
	}
	m->n_params = off;
	m->p = calloc(off, sizeof(float));
	if (!m->p)
		return qs_train_fail(QS_E_NOMEM, msg, msglen, "mlp: %zu parameters", off);
	return QS_OK;
}

void
qs_mlp_free(struct qs_mlp *m)
{
	if (!m)
		return;
	free(m->p);
	m->p = NULL;
}

void
qs_mlp_init_params(struct qs_mlp *m, struct qs_rng *rng, float out_gain)
{
	for (uint32_t l = 0; l < m->n_layers; l++) {
		float *w = m->p + m->w_off[l];
		size_t nw = (size_t)m->dim[l] * m->dim[l + 1];
		/* He-uniform keeps ReLU activations at unit scale layer after layer. */
		float a = sqrtf(6.0f / (float)m->dim[l]);

		if (l + 1 == m->n_layers)
			a *= out_gain;
		for (size_t i = 0; i < nw; i++)
			w[i] = (2.0f * qs_rng_uniform(rng) - 1.0f) * a;
		memset(m->p + m->b_off[l], 0, m->dim[l + 1] * sizeof(float));
	}
}

int
qs_mlp_same_shape(const struct qs_mlp *a, const struct qs_mlp *b)
{
	if (a->n_layers != b->n_layers)
		return 0;
	for (uint32_t l = 0; l <= a->n_layers; l++)
		if (a->dim[l] != b->dim[l])
			return 0;
	return 1;
}

int
qs_mlp_ws_init(struct qs_mlp_ws *ws, const struct qs_mlp *m, uint32_t cap, char *msg,
	       size_t msglen)
{
	size_t total = 0, off = 0;
	uint32_t md = 0;

	memset(ws, 0, sizeof(*ws));
	if (!cap)
		return qs_train_fail(QS_E_ARG, msg, msglen, "mlp workspace: capacity 0");
	for (uint32_t l = 0; l <= m->n_layers; l++)
		md = m->dim[l] > md ? m->dim[l] : md;
	for (uint32_t l = 1; l <= m->n_layers; l++)
		total += 2 * (size_t)cap * m->dim[l];
	total += 2 * (size_t)cap * md;
	ws->block = malloc(total * sizeof(float));
	if (!ws->block)
		return qs_train_fail(QS_E_NOMEM, msg, msglen, "mlp workspace: %zu floats", total);
	for (uint32_t l = 1; l <= m->n_layers; l++) {
		ws->z[l - 1] = ws->block + off;
		off += (size_t)cap * m->dim[l];
		ws->h[l - 1] = ws->block + off;
		off += (size_t)cap * m->dim[l];
	}
	ws->d0 = ws->block + off;
	off += (size_t)cap * md;
	ws->d1 = ws->block + off;
	ws->cap = cap;
	ws->max_dim = md;
	return QS_OK;
}

void
qs_mlp_ws_free(struct qs_mlp_ws *ws)
{
	if (!ws)
		return;
	free(ws->block);
	memset(ws, 0, sizeof(*ws));
}

static inline float
dot(const float *a, const float *b, uint32_t n)
{
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	uint32_t i = 0;

	for (; i + 4 <= n; i += 4) {
		s0 += a[i] * b[i];
		s1 += a[i + 1] * b[i + 1];
		s2 += a[i + 2] * b[i + 2];
		s3 += a[i + 3] * b[i + 3];
	}
	for (; i < n; i++)
		s0 += a[i] * b[i];
	return (s0 + s1) + (s2 + s3);
}

const float *
qs_mlp_forward(const struct qs_mlp *m, struct qs_mlp_ws *ws, const float *x, uint32_t n,
	       const struct qs_mlp_fq *fq)
{
	const float *in = x;

	ws->x = x;
	for (uint32_t l = 0; l < m->n_layers; l++) {
		uint32_t ni = m->dim[l], no = m->dim[l + 1];
		const float *w = m->p + m->w_off[l], *b = m->p + m->b_off[l];
		const float *as = fq && l + 1 < m->n_layers ? fq->act_scale[l] : NULL;
		float *z = ws->z[l], *h = ws->h[l];
		int hidden = l + 1 < m->n_layers;

		for (uint32_t r = 0; r < n; r++) {
			const float *xr = in + (size_t)r * ni;
			float *zr = z + (size_t)r * no, *hr = h + (size_t)r * no;

			for (uint32_t j = 0; j < no; j++)
				zr[j] = b[j] + dot(w + (size_t)j * ni, xr, ni);
			if (!hidden) {
				memcpy(hr, zr, no * sizeof(float));
				continue;
			}
			for (uint32_t j = 0; j < no; j++)
				hr[j] = zr[j] > 0 ? zr[j] : 0;
			if (as) {
				for (uint32_t j = 0; j < no; j++) {
					float q = floorf(hr[j] / as[j] + 0.5f); /* half up, as the requant */

					hr[j] = (q > 127.0f ? 127.0f : q) * as[j];
				}
			}
		}
		in = h;
	}
	return ws->h[m->n_layers - 1];
}

void
qs_mlp_backward(const struct qs_mlp *m, struct qs_mlp_ws *ws, uint32_t n, const float *dout,
		const struct qs_mlp_fq *fq, float *grad, float *dx)
{
	const float *delta = dout;
	float *bufs[2] = {ws->d0, ws->d1};
	int cur = 0;

	for (uint32_t l = m->n_layers; l-- > 0;) {
		uint32_t ni = m->dim[l], no = m->dim[l + 1];
		const float *w = m->p + m->w_off[l];
		const float *in = l ? ws->h[l - 1] : ws->x;
		float *gw = grad + m->w_off[l], *gb = grad + m->b_off[l];
		float *din;

		for (uint32_t r = 0; r < n; r++) {
			const float *dr = delta + (size_t)r * no, *xr = in + (size_t)r * ni;

			for (uint32_t j = 0; j < no; j++) {
				float d = dr[j];
				float *g = gw + (size_t)j * ni;

				if (d == 0.0f)
					continue;
				gb[j] += d;
				for (uint32_t i = 0; i < ni; i++)
					g[i] += d * xr[i];
			}
		}
		if (l == 0 && !dx)
			break;
		din = l == 0 ? dx : bufs[cur];
		cur ^= 1;
		memset(din, 0, (size_t)n * ni * sizeof(float));
		for (uint32_t r = 0; r < n; r++) {
			const float *dr = delta + (size_t)r * no;
			float *o = din + (size_t)r * ni;

			for (uint32_t j = 0; j < no; j++) {
				float d = dr[j];
				const float *wr = w + (size_t)j * ni;

				if (d == 0.0f)
					continue;
				for (uint32_t i = 0; i < ni; i++)
					o[i] += d * wr[i];
			}
		}
		if (l > 0) {
			/* Through layer l-1's activation: ReLU, and under fake quantization the
			 * straight-through estimator, zero where the clamp at 127 steps held. */
			const float *z = ws->z[l - 1];
			const float *as = fq ? fq->act_scale[l - 1] : NULL;

			for (uint32_t r = 0; r < n; r++) {
				const float *zr = z + (size_t)r * ni;
				float *o = din + (size_t)r * ni;

				for (uint32_t i = 0; i < ni; i++) {
					int pass = zr[i] > 0;

					if (as && zr[i] >= 127.5f * as[i])
						pass = 0;
					o[i] = pass ? o[i] : 0.0f;
				}
			}
		}
		delta = din;
	}
}

float
qs_mlp_softmax_masked(const float *s, uint32_t k, uint64_t mask, float *p)
{
	float mx = -INFINITY, sum = 0;

	for (uint32_t c = 0; c < k; c++)
		if ((mask >> c & 1) && s[c] > mx)
			mx = s[c];
	for (uint32_t c = 0; c < k; c++) {
		p[c] = (mask >> c & 1) ? expf(s[c] - mx) : 0.0f;
		sum += p[c];
	}
	for (uint32_t c = 0; c < k; c++)
		p[c] /= sum;
	return mx + logf(sum);
}

float
qs_mlp_entropy(const float *s, const float *p, uint32_t k, uint64_t mask, float lse)
{
	float e = lse;

	for (uint32_t c = 0; c < k; c++)
		if (mask >> c & 1)
			e -= p[c] * s[c];
	return e;
}

void
qs_mlp_logp_grad(const float *p, uint32_t k, uint64_t mask, uint32_t a, float coef, float *ds)
{
	for (uint32_t c = 0; c < k; c++)
		if (mask >> c & 1)
			ds[c] += coef * ((c == a ? 1.0f : 0.0f) - p[c]);
}

void
qs_mlp_entropy_grad(const float *s, const float *p, uint32_t k, uint64_t mask, float lse,
		    float h, float coef, float *ds)
{
	for (uint32_t c = 0; c < k; c++)
		if (mask >> c & 1)
			ds[c] += coef * -p[c] * ((s[c] - lse) + h);
}

uint32_t
qs_mlp_argmax_masked(const float *s, uint32_t k, uint64_t mask)
{
	uint32_t best = k;

	for (uint32_t c = 0; c < k; c++)
		if ((mask >> c & 1) && (best == k || s[c] > s[best]))
			best = c;
	return best;
}
