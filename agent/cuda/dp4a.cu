/*
 * dp4a.cu - the int8 policy arithmetic of include/qsteer/int8.h on the GPU with
 * __dp4a: four int8 x int8 products summed into an int32 per instruction. Inputs
 * are 7-bit (<= 127), so reading them as signed bytes is exact, and the weights'
 * 4-byte groups (rows zero-padded to w_stride) are exactly the .q8 layout. The
 * requantization is int8.h's own qs_int8_requant (QS_RC_FN is __host__ __device__
 * under nvcc), never re-derived, so the results are bit-exact with the CPU kernels.
 *
 * One block per input row, one thread per output channel, one launch per layer.
 * Written for correctness checks and batch scoring, not for latency.
 */
#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

#include "qsteer/agent_cuda.h"
#include "qsteer/int8.h"
#include "qsteer/policy.h"

#define ACT_STRIDE QS_INT8_MAX_DIM /* bytes per row of an activation buffer */

__global__ void
dp4a_layer(const int8_t *__restrict__ w, const int32_t *__restrict__ bias,
	   const int32_t *__restrict__ m, const uint8_t *__restrict__ s, int n_in, int n_out,
	   int w_stride, const uint8_t *__restrict__ x, uint8_t *__restrict__ y,
	   int32_t *__restrict__ out)
{
	int row = blockIdx.x, j = threadIdx.x;
	const int *x4 = (const int *)(x + (size_t)row * ACT_STRIDE);
	const int *w4 = (const int *)(w + (size_t)j * w_stride);
	int acc, g;

	if (j >= n_out)
		return;
	acc = bias[j];
	/* Padding bytes of w are zero, so the activations' padding never counts. */
	for (g = 0; g < w_stride / 4; g++)
		acc = __dp4a(w4[g], x4[g], acc);
	(void)n_in;
	if (out)
		out[(size_t)row * n_out + j] = acc;
	else
		y[(size_t)row * ACT_STRIDE + j] = qs_int8_requant(acc, m[j], s[j]);
}

#define CK(call)                                                                       \
	do {                                                                           \
		cudaError_t e_ = (call);                                               \
		if (e_ != cudaSuccess) {                                               \
			snprintf(msg, msglen, "dp4a: %s: %s", #call, cudaGetErrorString(e_)); \
			rc = QS_E_IO;                                                  \
			goto out;                                                      \
		}                                                                      \
	} while (0)

extern "C" int
qs_agent_dp4a_run(const struct qs_policy *p, const uint8_t *x, size_t x_stride, uint32_t n,
		  int32_t *out, char *msg, size_t msglen)
{
	int rc = QS_OK, l, count = 0;
	uint8_t *d_a = NULL, *d_b = NULL, *h_x = NULL;
	int32_t *d_out = NULL;
	int8_t *d_w[QS_INT8_MAX_LAYERS] = { 0 };
	int32_t *d_bias[QS_INT8_MAX_LAYERS] = { 0 }, *d_m[QS_INT8_MAX_LAYERS] = { 0 };
	uint8_t *d_s[QS_INT8_MAX_LAYERS] = { 0 };
	size_t act = (size_t)(n ? n : 1) * ACT_STRIDE;

	if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
		snprintf(msg, msglen, "dp4a: no CUDA device");
		return QS_E_UNSUPPORTED;
	}
	if (n == 0)
		return QS_OK;
	CK(cudaMalloc(&d_a, act));
	CK(cudaMalloc(&d_b, act));
	CK(cudaMalloc(&d_out, (size_t)n * p->n_out * sizeof(int32_t)));
	CK(cudaMemset(d_a, 0, act));
	CK(cudaMemset(d_b, 0, act));
	h_x = (uint8_t *)calloc(act, 1);
	if (!h_x) {
		snprintf(msg, msglen, "dp4a: out of memory");
		rc = QS_E_NOMEM;
		goto out;
	}
	for (uint32_t r = 0; r < n; r++)
		memcpy(h_x + (size_t)r * ACT_STRIDE, x + r * x_stride, p->n_in);
	CK(cudaMemcpy(d_a, h_x, act, cudaMemcpyHostToDevice));
	for (l = 0; l < p->n_layers; l++) {
		const struct qs_policy_layer *L = &p->layer[l];
		bool last = l == p->n_layers - 1;

		CK(cudaMalloc(&d_w[l], (size_t)L->n_out * L->w_stride));
		CK(cudaMemcpy(d_w[l], L->w, (size_t)L->n_out * L->w_stride, cudaMemcpyHostToDevice));
		CK(cudaMalloc(&d_bias[l], L->n_out * sizeof(int32_t)));
		CK(cudaMemcpy(d_bias[l], L->bias, L->n_out * sizeof(int32_t), cudaMemcpyHostToDevice));
		if (!last) {
			CK(cudaMalloc(&d_m[l], L->n_out * sizeof(int32_t)));
			CK(cudaMemcpy(d_m[l], L->m, L->n_out * sizeof(int32_t), cudaMemcpyHostToDevice));
			CK(cudaMalloc(&d_s[l], L->n_out));
			CK(cudaMemcpy(d_s[l], L->s, L->n_out, cudaMemcpyHostToDevice));
		}
		dp4a_layer<<<n, QS_INT8_MAX_DIM>>>(d_w[l], d_bias[l], d_m[l], d_s[l], L->n_in,
						   L->n_out, L->w_stride, d_a, d_b,
						   last ? d_out : NULL);
		CK(cudaGetLastError());
		if (!last) {
			uint8_t *t = d_a;

			d_a = d_b;
			d_b = t;
		}
	}
	CK(cudaMemcpy(out, d_out, (size_t)n * p->n_out * sizeof(int32_t), cudaMemcpyDeviceToHost));
out:
	for (l = 0; l < QS_INT8_MAX_LAYERS; l++) {
		cudaFree(d_w[l]);
		cudaFree(d_bias[l]);
		cudaFree(d_m[l]);
		cudaFree(d_s[l]);
	}
	cudaFree(d_a);
	cudaFree(d_b);
	cudaFree(d_out);
	free(h_x);
	return rc;
}
