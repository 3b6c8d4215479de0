/*
 * mlp.c - forward and backward passes of the trainer's float MLPs, and the masked
 * softmax with its log-probability and entropy gradients.
 *
 * Loops are ordered so that the innermost one walks contiguous memory without a
 * reduction, which the compiler vectorizes without -ffast-math: the forward pass
 * accumulates x[i] * Wt[i][:] over the transposed weights (one output row in
 * registers for the router's fixed widths 16 and 32), the backward passes
 * accumulate d[j] * x[:] and d[j] * W[j][:]. Zero inputs (ReLU) and zero deltas are
 * skipped, which changes no result. Results are deterministic: the order of every
 * floating-point sum is fixed. Hot loops get an AVX2 clone on x86-64 (no FMA, so
 * both clones round identically).
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
		return qs_fail(msg, msglen, QS_E_SHAPE, "mlp: %u layers (1..%d)", n_layers,
			       QS_MLP_MAX_LAYERS);
	for (uint32_t l = 0; l <= n_layers; l++) {
		if (dim[l] < 1 || dim[l] > QS_MLP_MAX_DIM)
			return qs_fail(msg, msglen, QS_E_SHAPE, "mlp: dimension %u is %u (1..%d)",
				       l, dim[l], QS_MLP_MAX_DIM);
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
		return qs_fail(msg, msglen, QS_E_NOMEM, "mlp: %zu parameters", off);
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
qs_mlp_ws_init(struct qs_mlp_ws *ws, const struct qs_mlp *m, uint32_t cap, char *msg, size_t msglen)
{
	size_t total = 0, off = 0;
	uint32_t md = 0;

	memset(ws, 0, sizeof(*ws));
	if (!cap)
		return qs_fail(msg, msglen, QS_E_ARG, "mlp workspace: capacity 0");
	for (uint32_t l = 0; l <= m->n_layers; l++)
		md = m->dim[l] > md ? m->dim[l] : md;
	for (uint32_t l = 1; l <= m->n_layers; l++)
		total += 2 * (size_t)cap * m->dim[l];
	total += 2 * (size_t)cap * md;
	total += m->n_params;
	ws->block = malloc(total * sizeof(float));
	if (!ws->block)
		return qs_fail(msg, msglen, QS_E_NOMEM, "mlp workspace: %zu floats", total);
	for (uint32_t l = 1; l <= m->n_layers; l++) {
		ws->z[l - 1] = ws->block + off;
		off += (size_t)cap * m->dim[l];
		ws->h[l - 1] = ws->block + off;
		off += (size_t)cap * m->dim[l];
	}
	ws->d0 = ws->block + off;
	off += (size_t)cap * md;
	ws->d1 = ws->block + off;
	off += (size_t)cap * md;
	ws->wt = ws->block + off;
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

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
    !defined(__SANITIZE_ADDRESS__)
#define HOT __attribute__((target_clones("avx2", "default")))
#else
#define HOT
#endif

static void
transpose(const struct qs_mlp *m, float *wt)
{
	for (uint32_t l = 0; l < m->n_layers; l++) {
		uint32_t ni = m->dim[l], no = m->dim[l + 1];
		const float *w = m->p + m->w_off[l];
		float *t = wt + m->w_off[l];

		for (uint32_t j = 0; j < no; j++)
			for (uint32_t i = 0; i < ni; i++)
				t[(size_t)i * no + j] = w[(size_t)j * ni + i];
	}
}

void
qs_mlp_ws_pin(struct qs_mlp_ws *ws, const struct qs_mlp *m)
{
	transpose(m, ws->wt);
	ws->pinned = 1;
}

void
qs_mlp_ws_unpin(struct qs_mlp_ws *ws)
{
	ws->pinned = 0;
}

/* z[r][:] = b + sum_i x[r][i] Wt[i][:], the output row kept in registers. */
#define FWD_FIXED(NO)                                                                              \
	static void fwd_##NO(const float *restrict x, const float *restrict wt,                    \
			     const float *restrict b, float *restrict z, uint32_t n, uint32_t ni)  \
	{                                                                                          \
		for (uint32_t r = 0; r < n; r++) {                                                 \
			const float *restrict xr = x + (size_t)r * ni;                             \
			float acc[NO];                                                             \
                                                                                                   \
			for (uint32_t j = 0; j < NO; j++)                                          \
				acc[j] = b[j];                                                     \
			for (uint32_t i = 0; i < ni; i++) {                                        \
				const float xi = xr[i];                                            \
				const float *restrict t = wt + (size_t)i * NO;                     \
                                                                                                   \
				if (xi == 0.0f)                                                    \
					continue;                                                  \
				for (uint32_t j = 0; j < NO; j++)                                  \
					acc[j] += xi * t[j];                                       \
			}                                                                          \
			for (uint32_t j = 0; j < NO; j++)                                          \
				z[(size_t)r * NO + j] = acc[j];                                    \
		}                                                                                  \
	}

HOT FWD_FIXED(32) HOT FWD_FIXED(16)

    /* One output: z[r] = b + sum_i x[r][i] w[i] in index order. */
    HOT static void fwd_1(const float *restrict x, const float *restrict w, float b,
			  float *restrict z, uint32_t n, uint32_t ni)
{
	for (uint32_t r = 0; r < n; r++) {
		const float *restrict xr = x + (size_t)r * ni;
		float acc = b;

		for (uint32_t i = 0; i < ni; i++)
			acc += xr[i] * w[i];
		z[r] = acc;
	}
}

HOT static void
fwd_any(const float *restrict x, const float *restrict wt, const float *restrict b,
	float *restrict z, uint32_t n, uint32_t ni, uint32_t no)
{
	for (uint32_t r = 0; r < n; r++) {
		const float *restrict xr = x + (size_t)r * ni;
		float *restrict zr = z + (size_t)r * no;

		for (uint32_t j = 0; j < no; j++)
			zr[j] = b[j];
		for (uint32_t i = 0; i < ni; i++) {
			const float xi = xr[i];
			const float *restrict t = wt + (size_t)i * no;

			if (xi == 0.0f)
				continue;
			for (uint32_t j = 0; j < no; j++)
				zr[j] += xi * t[j];
		}
	}
}

const float *
qs_mlp_forward(const struct qs_mlp *m, struct qs_mlp_ws *ws, const float *x, uint32_t n,
	       const struct qs_mlp_fq *fq)
{
	const float *in = x;

	if (!ws->pinned)
		transpose(m, ws->wt);
	ws->x = x;
	for (uint32_t l = 0; l < m->n_layers; l++) {
		uint32_t ni = m->dim[l], no = m->dim[l + 1];
		const float *wt = ws->wt + m->w_off[l], *b = m->p + m->b_off[l];
		const float *as = fq && l + 1 < m->n_layers ? fq->act_scale[l] : NULL;
		float *z = ws->z[l], *h = ws->h[l];
		size_t nn = (size_t)n * no;

		if (no == 32)
			fwd_32(in, wt, b, z, n, ni);
		else if (no == 16)
			fwd_16(in, wt, b, z, n, ni);
		else if (no == 1)
			fwd_1(in, wt, b[0], z, n, ni);
		else
			fwd_any(in, wt, b, z, n, ni, no);
		if (l + 1 == m->n_layers) {
			memcpy(h, z, nn * sizeof(float));
			break;
		}
		for (size_t k = 0; k < nn; k++)
			h[k] = z[k] > 0 ? z[k] : 0;
		if (as && fq->split[l]) {
			const uint8_t *ks = fq->split[l];
			const float *off = fq->off[l];

			for (uint32_t r = 0; r < n; r++) {
				float *hr = h + (size_t)r * no;
				uint32_t u = 0; /* the first copy of channel j */

				for (uint32_t j = 0; j < no; u += ks[j], j++) {
					float v, sum = 0;

					if (!(as[j] > 0))
						continue;
					v = hr[j] / as[j];
					for (uint32_t c = 0; c < ks[j]; c++) {
						float q = floorf(v + 0.5f + off[u + c]);

						sum += q > 127.0f ? 127.0f : q;
					}
					hr[j] = sum * as[j] / (float)ks[j];
				}
			}
		} else if (as) {
			for (uint32_t r = 0; r < n; r++) {
				float *hr = h + (size_t)r * no;

				for (uint32_t j = 0; j < no; j++) {
					float q;

					if (!(as[j] > 0))
						continue;
					q = floorf(hr[j] / as[j] +
						   0.5f); /* half up, as the requant */
					hr[j] = (q > 127.0f ? 127.0f : q) * as[j];
				}
			}
		}
		in = h;
	}
	return ws->h[m->n_layers - 1];
}

/*
 * gw[j][:] += sum_r d[r][j] x[r][:] for ni of 16 or 32: two output rows at a time
 * accumulate over all n rows in registers, then add into gw once.
 */
#define BWD_W_FIXED(NI)                                                                            \
	static void bwd_w_##NI(const float *restrict delta, const float *restrict in,              \
			       float *restrict gw, float *restrict gb, uint32_t n, uint32_t no)    \
	{                                                                                          \
		uint32_t j = 0;                                                                    \
                                                                                                   \
		for (; j + 2 <= no; j += 2) {                                                      \
			float a0[NI], a1[NI], b0 = 0.0f, b1 = 0.0f;                                \
                                                                                                   \
			for (uint32_t i = 0; i < NI; i++)                                          \
				a0[i] = a1[i] = 0.0f;                                              \
			for (uint32_t r = 0; r < n; r++) {                                         \
				const float d0 = delta[(size_t)r * no + j];                        \
				const float d1 = delta[(size_t)r * no + j + 1];                    \
				const float *restrict xr = in + (size_t)r * NI;                    \
                                                                                                   \
				b0 += d0;                                                          \
				b1 += d1;                                                          \
				for (uint32_t i = 0; i < NI; i++) {                                \
					a0[i] += d0 * xr[i];                                       \
					a1[i] += d1 * xr[i];                                       \
				}                                                                  \
			}                                                                          \
			gb[j] += b0;                                                               \
			gb[j + 1] += b1;                                                           \
			for (uint32_t i = 0; i < NI; i++) {                                        \
				gw[(size_t)j * NI + i] += a0[i];                                   \
				gw[(size_t)(j + 1) * NI + i] += a1[i];                             \
			}                                                                          \
		}                                                                                  \
		for (; j < no; j++) {                                                              \
			float a0[NI], b0 = 0.0f;                                                   \
                                                                                                   \
			for (uint32_t i = 0; i < NI; i++)                                          \
				a0[i] = 0.0f;                                                      \
			for (uint32_t r = 0; r < n; r++) {                                         \
				const float d0 = delta[(size_t)r * no + j];                        \
				const float *restrict xr = in + (size_t)r * NI;                    \
                                                                                                   \
				b0 += d0;                                                          \
				for (uint32_t i = 0; i < NI; i++)                                  \
					a0[i] += d0 * xr[i];                                       \
			}                                                                          \
			gb[j] += b0;                                                               \
			for (uint32_t i = 0; i < NI; i++)                                          \
				gw[(size_t)j * NI + i] += a0[i];                                   \
		}                                                                                  \
	}

HOT BWD_W_FIXED(32) HOT BWD_W_FIXED(16)

    /* gw[j][:] += d[r][j] x[r][:]; gb[j] += d[r][j]. */
    HOT static void bwd_w(const float *restrict delta, const float *restrict in, float *restrict gw,
			  float *restrict gb, uint32_t n, uint32_t ni, uint32_t no)
{
	for (uint32_t r = 0; r < n; r++) {
		const float *restrict dr = delta + (size_t)r * no, *restrict xr =
								       in + (size_t)r * ni;

		for (uint32_t j = 0; j < no; j++) {
			const float d = dr[j];
			float *restrict g = gw + (size_t)j * ni;

			if (d == 0.0f)
				continue;
			gb[j] += d;
			for (uint32_t i = 0; i < ni; i++)
				g[i] += d * xr[i];
		}
	}
}

/* din[r][:] = sum_j d[r][j] W[j][:] (ni of 16 or 32 kept in registers). */
#define BWD_X_FIXED(NI)                                                                            \
	static void bwd_x_##NI(const float *restrict delta, const float *restrict w,               \
			       float *restrict din, uint32_t n, uint32_t no)                       \
	{                                                                                          \
		for (uint32_t r = 0; r < n; r++) {                                                 \
			const float *restrict dr = delta + (size_t)r * no;                         \
			float acc[NI];                                                             \
                                                                                                   \
			for (uint32_t i = 0; i < NI; i++)                                          \
				acc[i] = 0.0f;                                                     \
			for (uint32_t j = 0; j < no; j++) {                                        \
				const float d = dr[j];                                             \
				const float *restrict wr = w + (size_t)j * NI;                     \
                                                                                                   \
				if (d == 0.0f)                                                     \
					continue;                                                  \
				for (uint32_t i = 0; i < NI; i++)                                  \
					acc[i] += d * wr[i];                                       \
			}                                                                          \
			for (uint32_t i = 0; i < NI; i++)                                          \
				din[(size_t)r * NI + i] = acc[i];                                  \
		}                                                                                  \
	}

HOT BWD_X_FIXED(32) HOT BWD_X_FIXED(16)

    HOT static void bwd_x_any(const float *restrict delta, const float *restrict w,
			      float *restrict din, uint32_t n, uint32_t ni, uint32_t no)
{
	memset(din, 0, (size_t)n * ni * sizeof(float));
	for (uint32_t r = 0; r < n; r++) {
		const float *restrict dr = delta + (size_t)r * no;
		float *restrict o = din + (size_t)r * ni;

		for (uint32_t j = 0; j < no; j++) {
			const float d = dr[j];
			const float *restrict wr = w + (size_t)j * ni;

			if (d == 0.0f)
				continue;
			for (uint32_t i = 0; i < ni; i++)
				o[i] += d * wr[i];
		}
	}
}

void
qs_mlp_backward(const struct qs_mlp *m, struct qs_mlp_ws *ws, uint32_t n, const float *dout,
		const struct qs_mlp_fq *fq, float *grad, float *dx)
{
	qs_mlp_backward_h(m, ws, n, dout, NULL, fq, grad, dx);
}

void
qs_mlp_backward_h(const struct qs_mlp *m, struct qs_mlp_ws *ws, uint32_t n, const float *dout,
		  float *const *dh, const struct qs_mlp_fq *fq, float *grad, float *dx)
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

		if (ni == 32)
			bwd_w_32(delta, in, gw, gb, n, no);
		else if (ni == 16)
			bwd_w_16(delta, in, gw, gb, n, no);
		else
			bwd_w(delta, in, gw, gb, n, ni, no);
		if (l == 0 && !dx)
			break;
		din = l == 0 ? dx : bufs[cur];
		cur ^= 1;
		if (ni == 32)
			bwd_x_32(delta, w, din, n, no);
		else if (ni == 16)
			bwd_x_16(delta, w, din, n, no);
		else
			bwd_x_any(delta, w, din, n, ni, no);
		if (l > 0) {
			/* Through layer l-1's activation: ReLU, and under fake quantization the
			 * straight-through estimator, zero where the clamp at 127 steps held. */
			const float *z = ws->z[l - 1];
			const float *as = fq ? fq->act_scale[l - 1] : NULL;
			const float *extra = dh ? dh[l - 1] : NULL;

			if (extra)
				for (size_t k = 0; k < (size_t)n * ni; k++)
					din[k] += extra[k];

			for (uint32_t r = 0; r < n; r++) {
				const float *zr = z + (size_t)r * ni;
				float *o = din + (size_t)r * ni;

				for (uint32_t i = 0; i < ni; i++) {
					int pass = zr[i] > 0;

					if (as && as[i] > 0 && zr[i] >= 127.5f * as[i])
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
qs_mlp_entropy_grad(const float *s, const float *p, uint32_t k, uint64_t mask, float lse, float h,
		    float coef, float *ds)
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

uint32_t
qs_mlp_sample_masked(const float *p, uint32_t k, uint64_t mask, float u)
{
	uint32_t pick = k;
	float acc = 0;

	for (uint32_t c = 0; c < k; c++) {
		if (!(mask >> c & 1))
			continue;
		pick = c;
		acc += p[c];
		if (u < acc)
			break;
	}
	return pick;
}
