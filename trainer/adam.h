/*
 * adam.h - Adam with global gradient-norm clipping and a learning-rate schedule.
 *
 * One optimizer per parameter vector (scorer, value network). The state (moments
 * and step count) is plain arrays so checkpoints can save and restore it exactly.
 */
#ifndef QSTEER_TRAINER_ADAM_H
#define QSTEER_TRAINER_ADAM_H

#include <stddef.h>
#include <stdint.h>

#include "qsteer/status.h"

enum qs_adam_sched {
	QS_ADAM_CONSTANT = 0,
	QS_ADAM_LINEAR, /* lr * (1 - t / total), floored at lr * min_frac */
	QS_ADAM_COSINE, /* lr * (min_frac + (1 - min_frac) (1 + cos(pi t / total)) / 2) */
};

struct qs_adam_cfg {
	float lr;
	float beta1, beta2, eps;
	float max_grad_norm; /* <= 0: no clipping */
	enum qs_adam_sched sched;
	uint64_t total_steps; /* schedule horizon in optimizer steps */
	float min_frac;
};

struct qs_adam {
	struct qs_adam_cfg cfg;
	size_t n;
	uint64_t t;   /* optimizer steps taken */
	float *m, *v; /* owned, n each */
};

/* Defaults: lr 3e-4, betas 0.9/0.999, eps 1e-8, clip 0.5, linear to 0. */
void qs_adam_defaults(struct qs_adam_cfg *c);
int qs_adam_init(struct qs_adam *a, const struct qs_adam_cfg *c, size_t n, char *msg,
		 size_t msglen);
void qs_adam_free(struct qs_adam *a);
/* The learning rate step t (0-based) uses. */
float qs_adam_lr(const struct qs_adam_cfg *c, uint64_t t);
/* L2 norm of g, accumulated in double so the order of terms barely matters. */
float qs_adam_grad_norm(const float *g, size_t n);
/*
 * One step: clip g (in place) to max_grad_norm, then update p. Returns the norm of g
 * before clipping, for logs.
 */
float qs_adam_step(struct qs_adam *a, float *p, float *g);

#endif /* QSTEER_TRAINER_ADAM_H */
