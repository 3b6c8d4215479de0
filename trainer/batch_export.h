/*
 * batch_export.h - the batching classifier to int8 (.q8, kind classifier, schema
 * batch v1) through quantize.h's plan, and its float-vs-int8 agreement.
 *
 * Everything is quantize.h's post-training quantization (per-channel weights,
 * calibrated activation ranges folded into the next layer, the x / 127 feature
 * scaling folded into the first) except the output layer: a classifier's int8
 * answer is the argmax over the raw int32 accumulators of its outputs, so they must
 * share one scale. The output layer is therefore quantized per tensor -- with the
 * largest per-row scale, so no weight saturates -- and every output's accumulator
 * is then the float logit times the same positive factor.
 */
#ifndef QSTEER_TRAINER_BATCH_EXPORT_H
#define QSTEER_TRAINER_BATCH_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "mlp.h"
#include "qsteer/q8.h"

struct qs_bexp_report {
	double agree;	 /* argmax agreement on the states */
	uint32_t states; /* states compared */
	uint32_t bias_clamped;
	size_t bytes; /* file size */
};

/*
 * Quantize pi (QS_FB_COUNT -> ... -> n_actions), calibrated on states x
 * ([n][QS_FB_COUNT], 0..127) at percentile pct, and write path (NULL: only
 * measure). Agreement is measured on the same states with the loaded file.
 */
int qs_bexp_write(const struct qs_mlp *pi, const uint8_t *x, uint32_t n, float pct,
		  const struct qs_q8_action *action, uint32_t n_actions, const char *name,
		  uint64_t created, const char *path, struct qs_bexp_report *rep, char *msg,
		  size_t msglen);

#endif /* QSTEER_TRAINER_BATCH_EXPORT_H */
