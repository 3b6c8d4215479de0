/*
 * agent_cuda.h - the agent's CUDA side (agent/cuda/, built when nvcc is found):
 * the `cuda` executor, the `--profile` measurement, and the dp4a int8 kernel.
 * Every function returns QS_E_UNSUPPORTED, with a message, where no GPU or driver
 * is present, so callers (and tests, which then exit 77) can tell "no GPU" apart
 * from a failure.
 */
#ifndef QSTEER_AGENT_CUDA_H
#define QSTEER_AGENT_CUDA_H

#include "agent.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A decoder-only transformer's shape; weights are random (the work is real). */
struct qs_agent_cuda_model {
	uint32_t layers;
	uint32_t hidden;
	uint32_t heads; /* head dim = hidden / heads */
	uint32_t ffn;
	uint32_t kv_blocks; /* KV blocks of QS_KV_BLOCK_TOKENS allocated on the GPU */
	uint32_t max_seqs;
	uint32_t max_tokens;
};

/* Llama-2-7B's shape (32 layers, 4096 hidden, 32 heads, 11008 FFN). */
void qs_agent_cuda_model_default(struct qs_agent_cuda_model *m);
/* QS_OK if a CUDA device can be used; QS_E_UNSUPPORTED (message says why) if not. */
int qs_agent_cuda_available(char *msg, size_t msglen);
int qs_agent_exec_cuda(const struct qs_agent_cuda_model *m, struct qs_agent_exec *e, char *msg,
		       size_t msglen);
/*
 * Measure iteration times over a grid of batch shapes (prefill tokens x decode
 * sequences x context) and fit the simulator's batch model to them.
 */
int qs_agent_cuda_profile(const struct qs_agent_cuda_model *m, struct qs_sim_profile *out,
			  double *rms_us, uint32_t *n_samples, char *msg, size_t msglen);
/* Run an int8 policy on the GPU (dp4a): same outputs as qs_policy_run. */
int qs_agent_dp4a_run(const struct qs_policy *p, const uint8_t *x, size_t x_stride, uint32_t n,
		      int32_t *out, char *msg, size_t msglen);

#ifdef __cplusplus
}
#endif

#endif /* QSTEER_AGENT_CUDA_H */
