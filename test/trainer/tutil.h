/*
 * tutil.h - helpers for the trainer tests: an independent double-precision forward
 * pass of qs_mlp networks (the reference the finite differences run on).
 */
#ifndef QSTEER_TEST_TRAINER_TUTIL_H
#define QSTEER_TEST_TRAINER_TUTIL_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mlp.h"

/*
 * Forward one row x through m with parameters p (double, m's layout). Every layer's
 * outputs go to layers[l] when given (rows of QS_MLP_MAX_DIM), the last layer's to
 * out[dim_out] when given; returns the sign pattern of every hidden
 * pre-activation, which tells a finite difference that it crossed a ReLU kink.
 */
static inline uint64_t
ref_forward_layers(const struct qs_mlp *m, const double *p, const double *x,
		   double (*layers)[QS_MLP_MAX_DIM], double *out)
{
	double a[QS_MLP_MAX_DIM], b[QS_MLP_MAX_DIM];
	uint64_t h = 1469598103934665603ull;

	memcpy(a, x, m->dim[0] * sizeof(double));
	for (uint32_t l = 0; l < m->n_layers; l++) {
		uint32_t ni = m->dim[l], no = m->dim[l + 1];
		int hidden = l + 1 < m->n_layers;

		for (uint32_t j = 0; j < no; j++) {
			double z = p[m->b_off[l] + j];

			for (uint32_t i = 0; i < ni; i++)
				z += p[m->w_off[l] + (size_t)j * ni + i] * a[i];
			b[j] = hidden ? (z > 0 ? z : 0) : z;
			if (hidden)
				h = (h ^ (z > 0)) * 1099511628211ull;
		}
		memcpy(a, b, no * sizeof(double));
		if (layers)
			memcpy(layers[l], b, no * sizeof(double));
	}
	if (out)
		memcpy(out, a, m->dim[m->n_layers] * sizeof(double));
	return h;
}

/* The network's outputs for row x: out[dim_out]. */
static inline void
ref_forward(const struct qs_mlp *m, const double *p, const double *x, double *out)
{
	ref_forward_layers(m, p, x, NULL, out);
}

/* The sign pattern of every hidden pre-activation, to skip points on a ReLU kink. */
static inline uint64_t
ref_pattern(const struct qs_mlp *m, const double *p, const double *x)
{
	return ref_forward_layers(m, p, x, NULL, NULL);
}

static inline double *
params_to_double(const struct qs_mlp *m)
{
	double *d = malloc(m->n_params * sizeof(double));

	for (size_t i = 0; i < m->n_params; i++)
		d[i] = m->p[i];
	return d;
}

/* |a - n| / max(|a| + |n|, floor): relative error with an absolute floor. */
static inline double
rel_err(double a, double n, double floor_)
{
	double den = fabs(a) + fabs(n);

	return fabs(a - n) / (den > floor_ ? den : floor_);
}

/* A reference loss at the parameters its context points to; *key changes when the
 * evaluation crosses a kink (a ReLU's sign pattern, a clip branch). */
typedef double (*ref_loss_fn)(void *ctx, uint64_t *key);

struct ref_grad_tally {
	uint32_t checked; /* parameters whose central difference was compared */
	uint32_t skipped; /* left out: a side of the difference crossed a kink */
};

/*
 * Compare the analytic gradient g[0..n-1] with central differences (h apart) of fn
 * in p[0..n-1], the parameters fn reads; key0 is fn's key at p. Fails naming `what`
 * and the parameter where the relative error (floor_) exceeds tol.
 */
static inline void
ref_grad_check(const char *what, ref_loss_fn fn, void *ctx, double *p, const float *g, size_t n,
	       uint64_t key0, double h, double tol, double floor_, struct ref_grad_tally *t)
{
	for (size_t k = 0; k < n; k++) {
		double keep = p[k], lp, lm, num;
		uint64_t kp, km;

		p[k] = keep + h;
		lp = fn(ctx, &kp);
		p[k] = keep - h;
		lm = fn(ctx, &km);
		p[k] = keep;
		if (kp != key0 || km != key0) {
			t->skipped++;
			continue;
		}
		t->checked++;
		num = (lp - lm) / (2 * h);
		if (rel_err(g[k], num, floor_) > tol)
			fail_msg("%s param %zu: analytic %g numeric %g", what, k, (double)g[k],
				 num);
	}
}

#endif
