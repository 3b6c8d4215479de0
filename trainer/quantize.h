/*
 * quantize.h - from the float scorer to the int8 contract (include/qsteer/int8.h):
 * post-training quantization, quantization-aware fine-tuning, .q8 export and the
 * float-vs-int8 agreement check.
 *
 * Scales. Integer activations stand for float values: layer l's input channel i
 * is in_scale[l][i] per integer step. Layer 0's inputs are the features 0..127
 * that the float model sees as x / 127, so in_scale[0][i] = 1/127 -- the feature
 * scaling is folded into the first layer's weights. A hidden layer's output
 * channel j has act_scale = range_j / 127, range_j calibrated on collected states
 * (max, or a percentile, of that channel's float activation); it is the next
 * layer's in_scale, so per-channel activation ranges cost nothing at run time:
 * they are folded into the next layer's weights.
 *
 * Layer l, output channel j: W'[j][i] = W[j][i] * in_scale[i] acts on integers;
 * w_scale[j] = max_i |W'[j][i]| / 127; Wq = round(W' / w_scale) in [-127, 127];
 * the int32 accumulator then stands for z_j / w_scale[j], so bias_q = round(b_j /
 * w_scale[j]); hidden layers requantize by m_j = w_scale[j] / act_scale[j], written
 * as M / 2^S with the largest S (<= 62) that keeps M < 2^31 -- the most precise
 * multiplier the contract allows. The last layer's accumulator is the score times
 * 1 / w_scale: a positive factor, so the argmax is the float model's.
 */
#ifndef QSTEER_TRAINER_QUANTIZE_H
#define QSTEER_TRAINER_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

#include "mlp.h"
#include "qsteer/policy.h"

/* A set of decisions: candidate rows (0..127) grouped per decision, and masks. */
struct qs_quant_states {
	uint32_t n_feat;
	uint32_t n;		 /* decisions */
	const uint8_t *rows;	 /* [row_off[n]][n_feat] */
	const uint32_t *row_off; /* [n + 1] */
	const uint64_t *mask;	 /* [n] */
};

struct qs_quant_plan {
	uint32_t n_layers;
	uint32_t dim[QS_MLP_MAX_LAYERS + 1];
	float *in_scale[QS_MLP_MAX_LAYERS];  /* [dim[l]] */
	float *act_scale[QS_MLP_MAX_LAYERS]; /* hidden layers: [dim[l+1]]; = in_scale[l+1] */
	float *w_scale[QS_MLP_MAX_LAYERS];   /* [dim[l+1]] */
	int8_t *wq[QS_MLP_MAX_LAYERS];	     /* [dim[l+1]][dim[l]] */
	int32_t *bq[QS_MLP_MAX_LAYERS];
	int32_t *m[QS_MLP_MAX_LAYERS]; /* hidden layers */
	uint8_t *s[QS_MLP_MAX_LAYERS];
	uint32_t bias_clamped; /* biases that had to be clamped to +-2^28 */
	/*
	 * Output layer with one scale for all its rows (set before qs_quant_build): a
	 * classifier's argmax compares raw accumulators of different outputs, which
	 * must share a scale; a scorer's single output does not care.
	 */
	int shared_out_scale;
	/*
	 * Channel splitting (qs_quant_plan_split): hidden layer l's output channel j is
	 * written k = split[l][j] times, copy c with its bias moved by (c - (k-1)/2) / k
	 * of an activation step. The copies' integers sum to round(k z / act_scale) --
	 * Hermite's identity, sum_c floor(x + c/k) = floor(k x) -- so channel j is carried
	 * at a k times finer step for k - 1 more units. The next layer reads every copy
	 * with the same int8 weight, its row scale divided by the copies (so each
	 * weight stays as precise as unsplit). x* is the widened network the file holds
	 * (qs_quant_build fills it); xn/xws/xbase describe what it computes in the
	 * unsplit shape, for fake quantization and QAT, which then match the file.
	 */
	uint8_t *split[QS_MLP_MAX_LAYERS]; /* hidden layers: [dim[l+1]], NULL: not split */
	uint32_t xdim[QS_MLP_MAX_LAYERS + 1];
	int8_t *xwq[QS_MLP_MAX_LAYERS];
	int32_t *xbq[QS_MLP_MAX_LAYERS];
	int32_t *xm[QS_MLP_MAX_LAYERS];
	uint8_t *xs[QS_MLP_MAX_LAYERS];
	float *xoff[QS_MLP_MAX_LAYERS]; /* hidden: [xdim[l+1]], copy's offset in act steps */
	int32_t *xn[QS_MLP_MAX_LAYERS]; /* [dim[l+1]][dim[l]]: integer weight summed over copies */
	int32_t *xbase[QS_MLP_MAX_LAYERS]; /* [dim[l+1]]: bias before the copies' offsets */
	float *xws[QS_MLP_MAX_LAYERS];	   /* [dim[l+1]]: row scale of the widened layer */
	void *block, *xblock;
};

int qs_quant_plan_init(struct qs_quant_plan *q, const struct qs_mlp *m, char *msg, size_t msglen);
void qs_quant_plan_free(struct qs_quant_plan *q);

/*
 * Activation ranges: run the float model over the states' rows (at most max_rows of
 * them, evenly strided) and set every hidden channel's act_scale from the pct
 * quantile (1.0: the maximum) of its activations.
 */
int qs_quant_calibrate(struct qs_quant_plan *q, const struct qs_mlp *m,
		       const struct qs_quant_states *st, float pct, uint32_t max_rows, char *msg,
		       size_t msglen);

/* The multiplier m as (M, S) per the contract: 0 < M < 2^31, 1 <= S <= 62. */
void qs_quant_multiplier(double mult, int32_t *M, uint8_t *S);

/*
 * Split the hidden channels: split[l] (one array per hidden layer, NULL entries for
 * layers left alone) gives each channel's copies, 1..8. Refuses a widened layer above
 * QS_INT8_MAX_DIM. Call after qs_quant_plan_init, before qs_quant_build (the
 * copies' offsets take the act_scale of that build).
 */
int qs_quant_plan_split(struct qs_quant_plan *q, const uint8_t *const *split, char *msg,
			size_t msglen);

/*
 * Choose the copies per channel for a width budget[l] per hidden layer (0: leave
 * the layer alone) on calibrated ranges: each channel's cost is the fraction of the
 * states' decisions whose float argmax changes when that channel alone is rounded
 * to its step; copies go one at a time to the channel whose cost falls most
 * (cost / k - cost / (k + 1)), at most 8 each. Then qs_quant_plan_split.
 */
int qs_quant_split_alloc(struct qs_quant_plan *q, const struct qs_mlp *m,
			 const struct qs_quant_states *st, const uint32_t *budget, char *msg,
			 size_t msglen);

/* Integer weights, biases and requant from m's weights and the plan's scales. */
void qs_quant_build(struct qs_quant_plan *q, const struct qs_mlp *m);

/* What the int8 network computes, as float parameters of m's shape (for QAT). */
void qs_quant_fake_params(const struct qs_quant_plan *q, float *p);
/* The matching fake-quantization of hidden activations. */
void qs_quant_fq(const struct qs_quant_plan *q, struct qs_mlp_fq *fq);

/* A writer description (kind scorer, QS_SCHEMA_ROUTER_V1 when n_in matches). */
void qs_quant_desc(const struct qs_quant_plan *q, const char *name, uint64_t created,
		   struct qs_q8_desc *d);

/*
 * Fraction of decisions where the float model's argmax over eligible candidates
 * equals qs_policy_choose's choice on the int8 policy (scalar kernel).
 */
int qs_quant_agreement(const struct qs_mlp *m, const struct qs_policy *p,
		       const struct qs_quant_states *st, double *agree, char *msg, size_t msglen);

/*
 * The same per group: decision i belongs to group[i] (< n_groups; e.g. the scenario
 * its environment ran), agree[g] is that group's fraction (1 when it has none);
 * overall (may be NULL) gets the fraction over all of them, from the same pass.
 * Training on several scenarios, the target is every scenario's agreement, and a
 * mixed average hides the scenario with the most near-ties.
 */
int qs_quant_agreement_groups(const struct qs_mlp *m, const struct qs_policy *p,
			      const struct qs_quant_states *st, const uint16_t *group,
			      uint32_t n_groups, double *agree, double *overall, char *msg,
			      size_t msglen);

struct qs_quant_qat_cfg {
	uint32_t steps;	    /* Adam steps */
	uint32_t minibatch; /* decisions per step */
	float lr;
	float temp; /* teacher temperature: < 1 sharpens towards the float argmax */
	uint64_t seed;
	/*
	 * Consistency mode (consist > 0): m itself is the float model that ships, and the
	 * loss makes m and its int8 version decide alike -- per decision, cross-entropy
	 * of the fake-quantized scores / temp towards m's own float argmax, plus consist
	 * times cross-entropy of m's float scores / temp towards the fake-quantized
	 * argmax (both only bite on near-ties: temp is in score units), plus anchor
	 * times cross-entropy of m's float scores / temp towards the teacher's argmax,
	 * which keeps the policy's decisions where training left them.
	 */
	float consist;
	float anchor;
	/*
	 * Focused sampling (focus_frac > 0): the decisions at risk -- float gap between
	 * the best and the runner-up below focus_gap (score units), or float and int8
	 * argmax already different, both measured once when the call starts -- make up
	 * focus_frac of every minibatch (drawn uniformly among them), the rest is drawn
	 * from all decisions. Only near-ties can flip, and they are a few percent of the
	 * states, so uniform minibatches spend most of the steps on decisions whose loss
	 * is already ~0.
	 */
	float focus_gap, focus_frac;
};

void qs_quant_qat_defaults(struct qs_quant_qat_cfg *c);

/*
 * Quantization-aware fine-tuning by distillation: the fake-quantized model (plan's
 * activation scales fixed, weights re-quantized every step, straight-through
 * gradients) learns to reproduce the teacher's (float model's) candidate
 * distribution on the states. Updates m's parameters and then q (qs_quant_build).
 */
int qs_quant_qat(struct qs_mlp *m, const struct qs_mlp *teacher, struct qs_quant_plan *q,
		 const struct qs_quant_states *st, const struct qs_quant_qat_cfg *c, char *msg,
		 size_t msglen);

#endif /* QSTEER_TRAINER_QUANTIZE_H */
