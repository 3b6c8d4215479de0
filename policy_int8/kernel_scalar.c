/*
 * kernel_scalar.c - the reference kernel: one row at a time through the restricted-C
 * arithmetic of include/qsteer/int8.h, exactly what BPF and CUDA run. Every other
 * level is tested against this one and against the numpy reference.
 */
#include <string.h>

#include "kernel_impl.h"

void
qs_kern_scalar(const struct qs_policy *p, const uint8_t *x, size_t x_stride, uint32_t n,
	       int32_t *out)
{
	uint8_t act[2][QS_INT8_MAX_DIM];

	for (uint32_t r = 0; r < n; r++) {
		const uint8_t *in = x + (size_t)r * x_stride;
		int32_t *o = out + (size_t)r * p->n_out;
		int cur = 0;

		for (uint32_t l = 0; l < p->n_layers; l++) {
			const struct qs_policy_layer *L = &p->layer[l];
			int hidden = l + 1 < p->n_layers;

			for (uint32_t j = 0; j < L->n_out; j++) {
				int32_t acc = qs_int8_dot(L->w + (size_t)j * L->w_stride, in,
							  L->n_in, L->bias[j]);

				if (hidden)
					act[cur][j] = qs_int8_requant(acc, L->m[j], L->s[j]);
				else
					o[j] = acc;
			}
			in = act[cur];
			cur ^= 1;
		}
	}
}
