/*
 * tutil.h - helpers for the trainer tests: an independent double-precision forward
 * pass of qs_mlp networks (the reference the finite differences run on).
 */
#ifndef QSTEER_TEST_TRAINER_TUTIL_H
#define QSTEER_TEST_TRAINER_TUTIL_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mlp.h"

/* Forward one row x through m with parameters p (double, m's layout); out[dim_out]. */
static inline void
ref_forward(const struct qs_mlp *m, const double *p, const double *x, double *out)
{
	double a[QS_MLP_MAX_DIM], b[QS_MLP_MAX_DIM];

	memcpy(a, x, m->dim[0] * sizeof(double));
	for (uint32_t l = 0; l < m->n_layers; l++) {
		uint32_t ni = m->dim[l], no = m->dim[l + 1];

		for (uint32_t j = 0; j < no; j++) {
			double z = p[m->b_off[l] + j];

			for (uint32_t i = 0; i < ni; i++)
				z += p[m->w_off[l] + (size_t)j * ni + i] * a[i];
			b[j] = l + 1 < m->n_layers ? (z > 0 ? z : 0) : z;
		}
		memcpy(a, b, no * sizeof(double));
	}
	memcpy(out, a, m->dim[m->n_layers] * sizeof(double));
}

/* The sign pattern of every hidden pre-activation, to skip points on a ReLU kink. */
static inline uint64_t
ref_pattern(const struct qs_mlp *m, const double *p, const double *x)
{
	double a[QS_MLP_MAX_DIM], b[QS_MLP_MAX_DIM];
	uint64_t h = 1469598103934665603ull;

	memcpy(a, x, m->dim[0] * sizeof(double));
	for (uint32_t l = 0; l + 1 < m->n_layers; l++) {
		uint32_t ni = m->dim[l], no = m->dim[l + 1];

		for (uint32_t j = 0; j < no; j++) {
			double z = p[m->b_off[l] + j];

			for (uint32_t i = 0; i < ni; i++)
				z += p[m->w_off[l] + (size_t)j * ni + i] * a[i];
			b[j] = z > 0 ? z : 0;
			h = (h ^ (z > 0)) * 1099511628211ull;
		}
		memcpy(a, b, no * sizeof(double));
	}
	return h;
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

#endif
