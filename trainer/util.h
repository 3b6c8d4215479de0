/* util.h - the trainer's small shared helpers: error messages, option values, float bits
 * (little-endian bytes: qsteer/le.h). */
#ifndef QSTEER_TRAINER_UTIL_H
#define QSTEER_TRAINER_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qsteer/le.h"
#include "qsteer/status.h"

/* Messages: status.h's qs_fail (fill msg, may be NULL, and return the status). */

/* A decimal unsigned option value, the whole string (no sign, no trailing text):
 * 0, or -1 if it is not one. */
int qs_train_parse_u64(const char *s, uint64_t *v);

/* Monotonic seconds, for progress lines and timings. */
double qs_train_now_s(void);

static inline uint32_t
qs_train_f2u(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	return u;
}

static inline float
qs_train_u2f(uint32_t u)
{
	float f;

	memcpy(&f, &u, 4);
	return f;
}

#endif /* QSTEER_TRAINER_UTIL_H */
