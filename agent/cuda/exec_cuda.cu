/*
 * exec_cuda.cu - the `cuda` executor: real GPU work per iteration for a decoder-
 * only transformer shape with random fp16 weights (the arithmetic and the memory
 * traffic are real, the tokens are not), and the `--profile` grid measurement.
 *
 * Per iteration, for the T tokens of the batch (prefill chunks + one per decode):
 *   per layer: RMSNorm; QKV = X Wqkv^T (cuBLAS); K and V written into the paged KV
 *   cache through each sequence's block table; attention of every token over its
 *   sequence's cached positions (our paged-attention kernel); X += attn Wo^T;
 *   RMSNorm; gate|up = X Wgu^T; SiLU(gate) * up; X += act Wd^T (cuBLAS)
 *   then the LM head for the last token of every sequence.
 * All buffers come from plain cudaMalloc at create time; an iteration copies one
 * small metadata block host-to-device and allocates nothing.
 *
 * KV layout: [layer][k|v][block][16 positions][hidden] in fp16, so one block of one
 * layer is 16 * hidden contiguous halves for K and for V.
 */
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qsteer/agent_cuda.h"

#define VOCAB 32000
#define ATT_WARPS 4

struct cuda_ctx {
	struct qs_agent_cuda_model m;
	cublasHandle_t blas;
	cudaStream_t stream;
	__half *w_qkv, *w_o, *w_gu, *w_d, *w_lm; /* per layer, layers contiguous */
	__half *kv;
	__half *x, *xn, *qkv, *att, *gu, *act, *logits;
	/* per-iteration metadata, host (pinned) and device, one block:
	 * tok_seq[T], tok_pos[T], seq_blk_off[S+1], seq_last_tok[S], blocks[kv_blocks] */
	int *h_meta, *d_meta;
	size_t meta_ints;
	uint32_t max_t;
};

__global__ void
init_rand(__half *p, size_t n, uint32_t seed, float scale)
{
	size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;

	for (; i < n; i += (size_t)gridDim.x * blockDim.x) {
		uint32_t h = (uint32_t)i * 2654435761u ^ seed;

		h ^= h >> 13;
		h *= 0x5bd1e995u;
		h ^= h >> 15;
		p[i] = __float2half(((float)(h & 0xffff) / 65535.0f - 0.5f) * scale);
	}
}

/* Embeddings stand-in: a deterministic function of (token position, dim). */
__global__ void
embed(__half *x, const int *tok_pos, int hidden)
{
	int t = blockIdx.x;

	for (int d = threadIdx.x; d < hidden; d += blockDim.x)
		x[(size_t)t * hidden + d] = __float2half(0.01f * (float)(((tok_pos[t] + 1) * (d + 7)) % 97 - 48) / 48.0f);
}

__global__ void
rmsnorm(const __half *x, __half *y, int hidden)
{
	__shared__ float red[32];
	int t = blockIdx.x;
	float s = 0;

	for (int d = threadIdx.x; d < hidden; d += blockDim.x) {
		float v = __half2float(x[(size_t)t * hidden + d]);
		s += v * v;
	}
	for (int o = 16; o > 0; o >>= 1)
		s += __shfl_xor_sync(0xffffffffu, s, o);
	if ((threadIdx.x & 31) == 0)
		red[threadIdx.x >> 5] = s;
	__syncthreads();
	if (threadIdx.x < 32) {
		s = threadIdx.x < blockDim.x / 32 ? red[threadIdx.x] : 0;
		for (int o = 16; o > 0; o >>= 1)
			s += __shfl_xor_sync(0xffffffffu, s, o);
		if (threadIdx.x == 0)
			red[0] = rsqrtf(s / hidden + 1e-6f);
	}
	__syncthreads();
	for (int d = threadIdx.x; d < hidden; d += blockDim.x)
		y[(size_t)t * hidden + d] = __float2half(__half2float(x[(size_t)t * hidden + d]) * red[0]);
}

/* K and V of each token into its sequence's block at its position. */
__global__ void
kv_write(const __half *qkv, __half *kcache, __half *vcache, const int *tok_seq,
	 const int *tok_pos, const int *seq_blk_off, const int *blocks, int hidden)
{
	int t = blockIdx.x, s = tok_seq[t], p = tok_pos[t];
	int blk = blocks[seq_blk_off[s] + p / QS_KV_BLOCK_TOKENS];
	size_t dst = ((size_t)blk * QS_KV_BLOCK_TOKENS + p % QS_KV_BLOCK_TOKENS) * hidden;
	const __half *src = qkv + (size_t)t * 3 * hidden;

	for (int d = threadIdx.x; d < hidden; d += blockDim.x) {
		kcache[dst + d] = src[hidden + d];
		vcache[dst + d] = src[2 * hidden + d];
	}
}

/*
 * Paged attention: one block per (token, head), ATT_WARPS warps; each warp takes
 * every ATT_WARPS-th cached position (causal: positions 0..p), its 32 lanes split
 * the head dimension, and keeps an online-softmax state (max, sum, weighted V);
 * the warps' states are merged at the end. head_dim <= 256 (8 per lane).
 */
__global__ void
paged_attention(const __half *qkv, const __half *kcache, const __half *vcache, __half *out,
		const int *tok_seq, const int *tok_pos, const int *seq_blk_off, const int *blocks,
		int hidden, int head_dim)
{
	__shared__ float sm_m[ATT_WARPS], sm_l[ATT_WARPS], sm_acc[ATT_WARPS][256];
	int t = blockIdx.x, h = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	int s = tok_seq[t], p = tok_pos[t], per = (head_dim + 31) / 32;
	const __half *q = qkv + (size_t)t * 3 * hidden + h * head_dim;
	float qr[8], acc[8], m = -INFINITY, l = 0, scale = rsqrtf((float)head_dim);

	for (int i = 0; i < per; i++) {
		int d = lane + 32 * i;
		qr[i] = d < head_dim ? __half2float(q[d]) * scale : 0;
		acc[i] = 0;
	}
	for (int j = warp; j <= p; j += ATT_WARPS) {
		int blk = blocks[seq_blk_off[s] + j / QS_KV_BLOCK_TOKENS];
		size_t base = ((size_t)blk * QS_KV_BLOCK_TOKENS + j % QS_KV_BLOCK_TOKENS) * hidden +
			      h * head_dim;
		float dot = 0, mn, c, e;

		for (int i = 0; i < per; i++) {
			int d = lane + 32 * i;
			if (d < head_dim)
				dot += qr[i] * __half2float(kcache[base + d]);
		}
		for (int o = 16; o > 0; o >>= 1)
			dot += __shfl_xor_sync(0xffffffffu, dot, o);
		mn = fmaxf(m, dot);
		c = __expf(m - mn);
		e = __expf(dot - mn);
		l = l * c + e;
		for (int i = 0; i < per; i++) {
			int d = lane + 32 * i;
			acc[i] = acc[i] * c + (d < head_dim ? e * __half2float(vcache[base + d]) : 0);
		}
		m = mn;
	}
	if (lane == 0) {
		sm_m[warp] = m;
		sm_l[warp] = l;
	}
	for (int i = 0; i < per; i++)
		if (lane + 32 * i < head_dim)
			sm_acc[warp][lane + 32 * i] = acc[i];
	__syncthreads();
	if (warp == 0) {
		float gm = -INFINITY, gl = 0;

		for (int w = 0; w < ATT_WARPS; w++)
			gm = fmaxf(gm, sm_m[w]);
		for (int w = 0; w < ATT_WARPS; w++)
			if (sm_l[w] > 0)
				gl += sm_l[w] * __expf(sm_m[w] - gm);
		for (int i = 0; i < per; i++) {
			int d = lane + 32 * i;
			float v = 0;

			if (d >= head_dim)
				continue;
			for (int w = 0; w < ATT_WARPS; w++)
				if (sm_l[w] > 0)
					v += sm_acc[w][d] * __expf(sm_m[w] - gm);
			out[(size_t)t * hidden + h * head_dim + d] = __float2half(gl > 0 ? v / gl : 0);
		}
	}
}

__global__ void
silu_mul(const __half *gu, __half *act, int ffn)
{
	int t = blockIdx.x;

	for (int d = threadIdx.x; d < ffn; d += blockDim.x) {
		float g = __half2float(gu[(size_t)t * 2 * ffn + d]);
		float u = __half2float(gu[(size_t)t * 2 * ffn + ffn + d]);
		act[(size_t)t * ffn + d] = __float2half(g / (1.0f + __expf(-g)) * u);
	}
}

__global__ void
gather_rows(const __half *x, __half *y, const int *rows, int hidden)
{
	int r = blockIdx.x;

	for (int d = threadIdx.x; d < hidden; d += blockDim.x)
		y[(size_t)r * hidden + d] = x[(size_t)rows[r] * hidden + d];
}

/* Y[T x n] (+)= X[T x k] W[n x k]^T, fp16 in and out, fp32 accumulation. */
static cublasStatus_t
gemm(struct cuda_ctx *c, const __half *x, const __half *w, __half *y, int t, int n, int k,
     bool accumulate)
{
	float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;

	/* Column-major view: Y^T (n x t) = W (n x k, stored as k x n col-major ^T) X^T. */
	return cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, n, t, k, &one, w, CUDA_R_16F, k, x,
			    CUDA_R_16F, k, &beta, y, CUDA_R_16F, n, CUBLAS_COMPUTE_32F,
			    CUBLAS_GEMM_DEFAULT);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int
cuda_run(void *vctx, const struct qs_agent_batch *b, uint64_t *ns, char *msg, size_t msglen)
{
	struct cuda_ctx *c = (struct cuda_ctx *)vctx;
	const struct qs_agent_cuda_model *m = &c->m;
	int H = (int)m->hidden, F = (int)m->ffn, hd = H / (int)m->heads;
	uint32_t T = 0, S = b->n, k, i, nb = 0;
	int *tok_seq, *tok_pos, *blk_off, *last, *blocks;
	size_t layer_kv = (size_t)m->kv_blocks * QS_KV_BLOCK_TOKENS * H;
	uint64_t t0 = now_ns();
	cudaError_t ce;

	for (k = 0; k < S; k++) {
		T += b->seq[k].n_tokens;
		nb += b->seq[k].n_blocks;
	}
	if (T == 0) {
		*ns = 0;
		return QS_OK;
	}
	if (T > c->max_t || nb > m->kv_blocks || S > m->max_seqs) {
		snprintf(msg, msglen, "cuda executor: batch of %u tokens / %u blocks / %u seqs "
			 "exceeds the configured %u / %u / %u", T, nb, S, c->max_t, m->kv_blocks,
			 m->max_seqs);
		return QS_E_SIZE;
	}
	tok_seq = c->h_meta;
	tok_pos = tok_seq + c->max_t;
	blk_off = tok_pos + c->max_t;
	last = blk_off + m->max_seqs + 1;
	blocks = last + m->max_seqs;
	T = 0;
	nb = 0;
	for (k = 0; k < S; k++) {
		const struct qs_agent_batch_seq *q = &b->seq[k];

		blk_off[k] = (int)nb;
		for (i = 0; i < q->n_blocks; i++)
			blocks[nb++] = (int)q->blocks[i];
		for (i = 0; i < q->n_tokens; i++) {
			tok_seq[T] = (int)k;
			tok_pos[T] = (int)(q->ctx_start + i);
			T++;
		}
		last[k] = (int)T - 1;
	}
	blk_off[S] = (int)nb;
	/* One copy of the whole metadata block (device pointers mirror the layout). */
	ce = cudaMemcpyAsync(c->d_meta, c->h_meta, c->meta_ints * sizeof(int),
			     cudaMemcpyHostToDevice, c->stream);
	if (ce != cudaSuccess)
		goto cuda_fail;
	{
		int *d_seq = c->d_meta, *d_pos = d_seq + c->max_t, *d_off = d_pos + c->max_t;
		int *d_last = d_off + m->max_seqs + 1, *d_blocks = d_last + m->max_seqs;
		dim3 ag((unsigned)T, m->heads);

		embed<<<T, 256, 0, c->stream>>>(c->x, d_pos, H);
		for (uint32_t l = 0; l < m->layers; l++) {
			__half *kc = c->kv + (size_t)(2 * l) * layer_kv, *vc = kc + layer_kv;

			rmsnorm<<<T, 256, 0, c->stream>>>(c->x, c->xn, H);
			if (gemm(c, c->xn, c->w_qkv + (size_t)l * 3 * H * H, c->qkv, T, 3 * H, H, false))
				goto blas_fail;
			kv_write<<<T, 256, 0, c->stream>>>(c->qkv, kc, vc, d_seq, d_pos, d_off,
							   d_blocks, H);
			paged_attention<<<ag, 32 * ATT_WARPS, 0, c->stream>>>(
				c->qkv, kc, vc, c->att, d_seq, d_pos, d_off, d_blocks, H, hd);
			if (gemm(c, c->att, c->w_o + (size_t)l * H * H, c->x, T, H, H, true))
				goto blas_fail;
			rmsnorm<<<T, 256, 0, c->stream>>>(c->x, c->xn, H);
			if (gemm(c, c->xn, c->w_gu + (size_t)l * 2 * F * H, c->gu, T, 2 * F, H, false))
				goto blas_fail;
			silu_mul<<<T, 256, 0, c->stream>>>(c->gu, c->act, F);
			if (gemm(c, c->act, c->w_d + (size_t)l * H * F, c->x, T, H, F, true))
				goto blas_fail;
		}
		gather_rows<<<S, 256, 0, c->stream>>>(c->x, c->xn, d_last, H);
		if (gemm(c, c->xn, c->w_lm, c->logits, S, VOCAB, H, false))
			goto blas_fail;
	}
	ce = cudaStreamSynchronize(c->stream);
	if (ce != cudaSuccess)
		goto cuda_fail;
	ce = cudaGetLastError();
	if (ce != cudaSuccess)
		goto cuda_fail;
	*ns = now_ns() - t0;
	return QS_OK;
cuda_fail:
	snprintf(msg, msglen, "cuda executor: %s", cudaGetErrorString(ce));
	return QS_E_IO;
blas_fail:
	snprintf(msg, msglen, "cuda executor: cuBLAS GEMM failed");
	return QS_E_IO;
}

static void
cuda_destroy(void *vctx)
{
	struct cuda_ctx *c = (struct cuda_ctx *)vctx;

	if (!c)
		return;
	if (c->blas)
		cublasDestroy(c->blas);
	if (c->stream)
		cudaStreamDestroy(c->stream);
	cudaFree(c->w_qkv);
	cudaFree(c->w_o);
	cudaFree(c->w_gu);
	cudaFree(c->w_d);
	cudaFree(c->w_lm);
	cudaFree(c->kv);
	cudaFree(c->x);
	cudaFree(c->xn);
	cudaFree(c->qkv);
	cudaFree(c->att);
	cudaFree(c->gu);
	cudaFree(c->act);
	cudaFree(c->logits);
	cudaFree(c->d_meta);
	cudaFreeHost(c->h_meta);
	free(c);
}

extern "C" void
qs_agent_cuda_model_default(struct qs_agent_cuda_model *m)
{
	m->layers = 32;
	m->hidden = 4096;
	m->heads = 32;
	m->ffn = 11008;
	m->kv_blocks = 2048;
	m->max_seqs = 256;
	m->max_tokens = 8192;
}

extern "C" int
qs_agent_cuda_available(char *msg, size_t msglen)
{
	int n = 0;
	cudaError_t e = cudaGetDeviceCount(&n);

	if (e != cudaSuccess) {
		snprintf(msg, msglen, "no usable CUDA driver: %s", cudaGetErrorString(e));
		return QS_E_UNSUPPORTED;
	}
	if (n == 0) {
		snprintf(msg, msglen, "no CUDA device");
		return QS_E_UNSUPPORTED;
	}
	return QS_OK;
}

#define ALLOC(p, n)                                                                     \
	do {                                                                            \
		if (cudaMalloc((void **)&(p), (n)) != cudaSuccess) {                    \
			snprintf(msg, msglen, "cuda executor: cudaMalloc of %zu MiB for %s failed " \
				 "(smaller [model] or kv_blocks?)", (size_t)(n) >> 20, #p); \
			cuda_destroy(c);                                                \
			return QS_E_NOMEM;                                              \
		}                                                                       \
	} while (0)

extern "C" int
qs_agent_exec_cuda(const struct qs_agent_cuda_model *m, struct qs_agent_exec *e, char *msg,
		   size_t msglen)
{
	struct cuda_ctx *c;
	size_t H, F, L, T, hsz = sizeof(__half);
	int rc = qs_agent_cuda_available(msg, msglen);

	memset(e, 0, sizeof(*e));
	if (rc != QS_OK)
		return rc;
	if (m->layers == 0 || m->heads == 0 || m->hidden % m->heads || m->hidden / m->heads > 256 ||
	    m->hidden % 8 || m->ffn % 8 || m->kv_blocks == 0 || m->max_seqs == 0 ||
	    m->max_tokens == 0) {
		snprintf(msg, msglen, "cuda executor: model shape needs hidden divisible by heads "
			 "(head dim <= 256), hidden and ffn multiples of 8, nonzero sizes");
		return QS_E_ARG;
	}
	c = (struct cuda_ctx *)calloc(1, sizeof(*c));
	if (!c) {
		snprintf(msg, msglen, "cuda executor: out of memory");
		return QS_E_NOMEM;
	}
	c->m = *m;
	H = m->hidden;
	F = m->ffn;
	L = m->layers;
	/* A chunked-prefill budget plus one token per decode sequence. */
	c->max_t = m->max_tokens + m->max_seqs;
	T = c->max_t;
	ALLOC(c->w_qkv, L * 3 * H * H * hsz);
	ALLOC(c->w_o, L * H * H * hsz);
	ALLOC(c->w_gu, L * 2 * F * H * hsz);
	ALLOC(c->w_d, L * H * F * hsz);
	ALLOC(c->w_lm, (size_t)VOCAB * H * hsz);
	ALLOC(c->kv, L * 2 * (size_t)m->kv_blocks * QS_KV_BLOCK_TOKENS * H * hsz);
	ALLOC(c->x, T * H * hsz);
	ALLOC(c->xn, T * H * hsz);
	ALLOC(c->qkv, T * 3 * H * hsz);
	ALLOC(c->att, T * H * hsz);
	ALLOC(c->gu, T * 2 * F * hsz);
	ALLOC(c->act, T * F * hsz);
	ALLOC(c->logits, (size_t)m->max_seqs * VOCAB * hsz);
	c->meta_ints = 2 * T + 2 * (size_t)m->max_seqs + 1 + m->kv_blocks;
	ALLOC(c->d_meta, c->meta_ints * sizeof(int));
	if (cudaMallocHost((void **)&c->h_meta, c->meta_ints * sizeof(int)) != cudaSuccess ||
	    cudaStreamCreate(&c->stream) != cudaSuccess ||
	    cublasCreate(&c->blas) != CUBLAS_STATUS_SUCCESS ||
	    cublasSetStream(c->blas, c->stream) != CUBLAS_STATUS_SUCCESS) {
		snprintf(msg, msglen, "cuda executor: stream, pinned memory or cuBLAS setup failed");
		cuda_destroy(c);
		return QS_E_IO;
	}
	/* Small random weights keep fp16 activations finite through the stack. */
	init_rand<<<1024, 256>>>(c->w_qkv, L * 3 * H * H, 1, 0.02f);
	init_rand<<<1024, 256>>>(c->w_o, L * H * H, 2, 0.02f);
	init_rand<<<1024, 256>>>(c->w_gu, L * 2 * F * H, 3, 0.02f);
	init_rand<<<1024, 256>>>(c->w_d, L * H * F, 4, 0.02f);
	init_rand<<<1024, 256>>>(c->w_lm, (size_t)VOCAB * H, 5, 0.02f);
	if (cudaMemset(c->kv, 0, L * 2 * (size_t)m->kv_blocks * QS_KV_BLOCK_TOKENS * H * hsz) !=
		    cudaSuccess ||
	    cudaDeviceSynchronize() != cudaSuccess) {
		snprintf(msg, msglen, "cuda executor: weight initialisation failed: %s",
			 cudaGetErrorString(cudaGetLastError()));
		cuda_destroy(c);
		return QS_E_IO;
	}
	snprintf(e->name, sizeof(e->name), "cuda");
	e->ctx = c;
	e->run = cuda_run;
	e->destroy = cuda_destroy;
	e->simulated = false;
	return QS_OK;
}

/* ---- --profile: a grid of batch shapes, timed, then the least-squares fit -------------- */

extern "C" int
qs_agent_cuda_profile(const struct qs_agent_cuda_model *m, struct qs_sim_profile *out,
		      double *rms_us, uint32_t *n_samples, char *msg, size_t msglen)
{
	static const uint32_t prefills[] = { 0, 128, 512, 1024, 2048, 4096 };
	static const uint32_t decodes[] = { 0, 8, 32, 64, 128, 256 };
	static const uint32_t ctxs[] = { 128, 512, 2048 };
	struct qs_agent_exec e;
	struct qs_agent_iter_sample samp[6 * 6 * 3];
	struct qs_agent_batch_seq *bs = NULL;
	uint32_t *blocks = NULL, n = 0;
	int rc = qs_agent_exec_cuda(m, &e, msg, msglen);

	if (rc != QS_OK)
		return rc;
	bs = (struct qs_agent_batch_seq *)calloc(m->max_seqs + 1, sizeof(*bs));
	blocks = (uint32_t *)calloc(m->kv_blocks, sizeof(uint32_t));
	if (!bs || !blocks) {
		rc = QS_E_NOMEM;
		snprintf(msg, msglen, "profile: out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < m->kv_blocks; i++)
		blocks[i] = i;
	for (uint32_t a = 0; a < sizeof(prefills) / sizeof(prefills[0]); a++)
		for (uint32_t d = 0; d < sizeof(decodes) / sizeof(decodes[0]); d++)
			for (uint32_t x = 0; x < sizeof(ctxs) / sizeof(ctxs[0]); x++) {
				uint32_t P = prefills[a], D = decodes[d], C = ctxs[x];
				uint32_t per = qs_kv_blocks_for(C + 1), used = 0, k = 0;
				struct qs_agent_batch b;
				uint64_t t[3], ns;

				if ((P == 0 && D == 0) || P > m->max_tokens || D > m->max_seqs ||
				    (D == 0 && x > 0))
					continue;
				if ((uint64_t)D * per + qs_kv_blocks_for(P) > m->kv_blocks)
					continue;
				memset(&b, 0, sizeof(b));
				b.seq = bs;
				for (k = 0; k < D; k++) {
					bs[k].ctx_start = C;
					bs[k].n_tokens = 1;
					bs[k].decode = true;
					bs[k].blocks = blocks + used;
					bs[k].n_blocks = per;
					used += per;
					b.decode_seqs++;
					b.kv_tokens += C + 1;
				}
				if (P) {
					bs[k].ctx_start = 0;
					bs[k].n_tokens = P;
					bs[k].blocks = blocks + used;
					bs[k].n_blocks = qs_kv_blocks_for(P);
					b.prefill_tokens = P;
					k++;
				}
				b.n = k;
				/* One warm-up, then the median of three. */
				rc = e.run(e.ctx, &b, &ns, msg, msglen);
				for (int r = 0; rc == QS_OK && r < 3; r++)
					rc = e.run(e.ctx, &b, &t[r], msg, msglen);
				if (rc != QS_OK)
					goto out;
				if (t[0] > t[1]) { uint64_t s = t[0]; t[0] = t[1]; t[1] = s; }
				if (t[1] > t[2]) { uint64_t s = t[1]; t[1] = t[2]; t[2] = s; }
				if (t[0] > t[1]) { uint64_t s = t[0]; t[0] = t[1]; t[1] = s; }
				samp[n].prefill_tokens = P;
				samp[n].decode_seqs = D;
				samp[n].kv_tokens = (double)b.kv_tokens;
				samp[n].us = (double)t[1] / 1000.0;
				n++;
			}
	rc = qs_agent_profile_fit(samp, n, out, rms_us, msg, msglen);
	if (n_samples)
		*n_samples = n;
	if (rc == QS_OK) {
		snprintf(out->name, sizeof(out->name), "cuda-l%u-h%u", m->layers, m->hidden);
		out->max_seqs = m->max_seqs;
		out->max_tokens = m->max_tokens;
		out->kv_blocks = m->kv_blocks;
	}
out:
	free(bs);
	free(blocks);
	qs_agent_exec_destroy(&e);
	return rc;
}
