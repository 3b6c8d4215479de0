/*
 * mlp.h - float32 multilayer perceptrons with hand-written forward and backward
 * passes over batches, and the masked softmax that turns per-candidate scores into
 * a routing distribution.
 *
 * The router's scorer (DESIGN.md 3.2) is one of these applied to every candidate
 * row (16 -> H1 -> H2 -> 1, ReLU hidden, linear output); the value network is
 * another one applied to a pooled summary of the decision (see ppo.h). Parameters
 * live in one flat float array per network ([W0 b0 W1 b1 ...], W row-major
 * [n_out][n_in]) so that Adam, checkpoints and gradient clipping treat a network as
 * a vector.
 *
 * Nothing here allocates after qs_mlp_init / qs_mlp_ws_init: a workspace holds
 * every activation of up to `cap` rows, and the caller owns it (one per thread).
 */
#ifndef QSTEER_TRAINER_MLP_H
#define QSTEER_TRAINER_MLP_H

#include <stddef.h>
#include <stdint.h>

#include "qsteer/status.h"
#include "rng.h"

#define QS_MLP_MAX_LAYERS 4   /* weight layers */
#define QS_MLP_MAX_DIM	  256 /* matches QS_INT8_MAX_DIM so every net can be exported */

struct qs_mlp {
	uint32_t n_layers;		     /* weight layers, 1..QS_MLP_MAX_LAYERS */
	uint32_t dim[QS_MLP_MAX_LAYERS + 1]; /* dim[0] inputs ... dim[n_layers] outputs */
	size_t w_off[QS_MLP_MAX_LAYERS];     /* offsets into p */
	size_t b_off[QS_MLP_MAX_LAYERS];
	size_t n_params;
	float *p; /* owned, n_params */
};

/*
 * Activations of up to cap rows. z[l] holds layer l's pre-activations, h[l] its
 * outputs (after ReLU and, in fake-quantized runs, rounding); h[0] points at the
 * caller's input for the last forward pass.
 */
struct qs_mlp_ws {
	uint32_t cap;
	uint32_t max_dim;
	const float *x;
	float *z[QS_MLP_MAX_LAYERS];
	float *h[QS_MLP_MAX_LAYERS];
	float *d0, *d1; /* backward deltas, cap * max_dim each */
	float *wt;	/* transposed weights ([n_in][n_out] per layer), n_params floats */
	int pinned;	/* wt holds a fixed model's transpose (qs_mlp_ws_pin) */
	float *block;
};

/*
 * Optional fake quantization of hidden activations (quantization-aware training):
 * act_scale[l][j] is the float value of one integer step of hidden layer l's output
 * channel j; outputs become clamp(round(h / s), 0, 127) * s, and the backward pass
 * uses the straight-through estimator (gradient passes where 0 < z < 127 s).
 */
struct qs_mlp_fq {
	const float *act_scale[QS_MLP_MAX_LAYERS];
	/*
	 * Split channels (quantize.h), NULL: none. Channel j of hidden layer l has k =
	 * split[l][j] copies, copy c offset by off[l][...] steps (copies numbered in
	 * channel order); its value is sum_c clamp(floor(h / s + 1/2 + off), 0, 127) *
	 * s / k. An act_scale of 0 leaves that channel unrounded.
	 */
	const uint8_t *split[QS_MLP_MAX_LAYERS];
	const float *off[QS_MLP_MAX_LAYERS];
};

int qs_mlp_init(struct qs_mlp *m, uint32_t n_layers, const uint32_t *dim, char *msg, size_t msglen);
void qs_mlp_free(struct qs_mlp *m);
/* He-uniform hidden layers, output layer scaled by out_gain, zero biases. */
void qs_mlp_init_params(struct qs_mlp *m, struct qs_rng *rng, float out_gain);
/* Same shapes? (for copying parameters, checkpoints) */
int qs_mlp_same_shape(const struct qs_mlp *a, const struct qs_mlp *b);

int qs_mlp_ws_init(struct qs_mlp_ws *ws, const struct qs_mlp *m, uint32_t cap, char *msg,
		   size_t msglen);
void qs_mlp_ws_free(struct qs_mlp_ws *ws);

/*
 * Pin m's current weights into ws: later forwards through ws reuse the transposed
 * copy instead of rebuilding it (the rollout actors pin once per collection, while
 * the parameters are fixed). Unpinned workspaces transpose on every forward, so a
 * caller that edits m->p in place always sees its edits.
 */
void qs_mlp_ws_pin(struct qs_mlp_ws *ws, const struct qs_mlp *m);
void qs_mlp_ws_unpin(struct qs_mlp_ws *ws);

/*
 * Forward n <= ws->cap rows of x (row-major [n][dim[0]]). Returns the outputs,
 * [n][dim[n_layers]], which live in ws until the next forward. fq may be NULL.
 */
const float *qs_mlp_forward(const struct qs_mlp *m, struct qs_mlp_ws *ws, const float *x,
			    uint32_t n, const struct qs_mlp_fq *fq);

/*
 * Backward of the last forward (same n, same fq): dout is dLoss/dOutput [n][dim_out].
 * Adds dLoss/dParams into grad (n_params floats, caller zeroes it). When dx is not
 * NULL, writes dLoss/dInput [n][dim[0]].
 */
void qs_mlp_backward(const struct qs_mlp *m, struct qs_mlp_ws *ws, uint32_t n, const float *dout,
		     const struct qs_mlp_fq *fq, float *grad, float *dx);

/*
 * The same, with extra gradients on hidden outputs: dh[l] (NULL, or an entry NULL
 * to skip) is dLoss/dh[l] [n][dim[l+1]] from a term that reads hidden layer l's
 * output (after ReLU) directly; it is added before the backward pass goes through
 * that layer's ReLU. dh may be NULL (= qs_mlp_backward).
 */
void qs_mlp_backward_h(const struct qs_mlp *m, struct qs_mlp_ws *ws, uint32_t n, const float *dout,
		       float *const *dh, const struct qs_mlp_fq *fq, float *grad, float *dx);

/* ---- masked softmax over one decision's candidates ----------------------------- */

/*
 * Probabilities p[0..k) of a softmax over the candidates whose bit is set in mask
 * (others get exactly 0). Returns the log-sum-exp over the eligible scores, so that
 * log p[c] = s[c] - lse. mask must have at least one bit below k.
 */
float qs_mlp_softmax_masked(const float *s, uint32_t k, uint64_t mask, float *p);
/* Entropy of p given the lse the softmax returned: lse - sum p s. */
float qs_mlp_entropy(const float *s, const float *p, uint32_t k, uint64_t mask, float lse);
/* ds[c] += coef * dlog p[a]/ds[c] = coef * ([c == a] - p[c]) over eligible c. */
void qs_mlp_logp_grad(const float *p, uint32_t k, uint64_t mask, uint32_t a, float coef, float *ds);
/* ds[c] += coef * dH/ds[c] = coef * -p[c] (log p[c] + H) over eligible c. */
void qs_mlp_entropy_grad(const float *s, const float *p, uint32_t k, uint64_t mask, float lse,
			 float h, float coef, float *ds);

/* The eligible candidate whose cumulative probability first exceeds u (uniform in
 * [0, 1)); the last eligible one absorbs the rounding of the sum. k if none. */
uint32_t qs_mlp_sample_masked(const float *p, uint32_t k, uint64_t mask, float u);

/* Index of the highest score among eligible candidates (lowest on ties); k if none. */
uint32_t qs_mlp_argmax_masked(const float *s, uint32_t k, uint64_t mask);

#endif /* QSTEER_TRAINER_MLP_H */
