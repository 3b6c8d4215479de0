/*
 * adam.c - Adam (Kingma & Ba 2015, bias-corrected) with gradient-norm clipping and
 * a linear or cosine learning-rate schedule.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adam.h"
#include "qsteer/status.h"
#include "util.h"

void
qs_adam_defaults(struct qs_adam_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->lr = 3e-4f;
	c->beta1 = 0.9f;
	c->beta2 = 0.999f;
	c->eps = 1e-8f;
	c->max_grad_norm = 0.5f;
	c->sched = QS_ADAM_LINEAR;
	c->total_steps = 0;
	c->min_frac = 0.0f;
}

int
qs_adam_init(struct qs_adam *a, const struct qs_adam_cfg *c, size_t n, char *msg, size_t msglen)
{
	memset(a, 0, sizeof(*a));
	if (!(c->lr > 0) || !(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1) ||
	    !(c->eps > 0))
		return qs_fail(msg, msglen, QS_E_ARG,
			       "adam: lr %g, beta1 %g, beta2 %g, eps %g out of range",
			       (double)c->lr, (double)c->beta1, (double)c->beta2, (double)c->eps);
	a->cfg = *c;
	a->n = n;
	a->m = calloc(n ? n : 1, sizeof(float));
	a->v = calloc(n ? n : 1, sizeof(float));
	if (!a->m || !a->v) {
		qs_adam_free(a);
		return qs_fail(msg, msglen, QS_E_NOMEM, "adam: %zu parameters", n);
	}
	return QS_OK;
}

void
qs_adam_free(struct qs_adam *a)
{
	if (!a)
		return;
	free(a->m);
	free(a->v);
	a->m = a->v = NULL;
}

float
qs_adam_lr(const struct qs_adam_cfg *c, uint64_t t)
{
	double frac, f;

	if (c->sched == QS_ADAM_CONSTANT || !c->total_steps)
		return c->lr;
	frac = t >= c->total_steps ? 1.0 : (double)t / (double)c->total_steps;
	if (c->sched == QS_ADAM_LINEAR) {
		f = 1.0 - frac;
		if (f < c->min_frac)
			f = c->min_frac;
	} else {
		f = c->min_frac + (1.0 - c->min_frac) * 0.5 * (1.0 + cos(M_PI * frac));
	}
	return (float)(c->lr * f);
}

float
qs_adam_grad_norm(const float *g, size_t n)
{
	double s = 0;

	for (size_t i = 0; i < n; i++)
		s += (double)g[i] * g[i];
	return (float)sqrt(s);
}

float
qs_adam_step(struct qs_adam *a, float *p, float *g)
{
	const struct qs_adam_cfg *c = &a->cfg;
	float norm = qs_adam_grad_norm(g, a->n), lr = qs_adam_lr(c, a->t);
	float b1 = c->beta1, b2 = c->beta2;
	double bc1, bc2;
	float step, scale;

	if (c->max_grad_norm > 0 && norm > c->max_grad_norm) {
		scale = c->max_grad_norm / norm;
		for (size_t i = 0; i < a->n; i++)
			g[i] *= scale;
	}
	a->t++;
	bc1 = 1.0 - pow(b1, (double)a->t);
	bc2 = 1.0 - pow(b2, (double)a->t);
	/* lr * sqrt(1 - b2^t) / (1 - b1^t) folds both bias corrections into one factor;
	 * eps is added to the corrected second moment as in the paper. */
	step = (float)(lr / bc1);
	scale = (float)(1.0 / sqrt(bc2));
	for (size_t i = 0; i < a->n; i++) {
		a->m[i] = b1 * a->m[i] + (1 - b1) * g[i];
		a->v[i] = b2 * a->v[i] + (1 - b2) * g[i] * g[i];
		p[i] -= step * a->m[i] / (sqrtf(a->v[i]) * scale + c->eps);
	}
	return norm;
}
