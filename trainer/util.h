/* util.h - the trainer's small shared helpers: error messages, little-endian bytes. */
#ifndef QSTEER_TRAINER_UTIL_H
#define QSTEER_TRAINER_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qsteer/status.h"

/* Messages: status.h's qs_fail (fill msg, may be NULL, and return the status). */

/* A decimal unsigned option value, the whole string (no sign, no trailing text):
 * 0, or -1 if it is not one. */
int qs_train_parse_u64(const char *s, uint64_t *v);

/* Monotonic seconds, for progress lines and timings. */
double qs_train_now_s(void);

static inline void
qs_train_wr32(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
	b[2] = (uint8_t)(v >> 16);
	b[3] = (uint8_t)(v >> 24);
}

static inline uint32_t
qs_train_rd32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static inline void
qs_train_wr64(uint8_t *b, uint64_t v)
{
	qs_train_wr32(b, (uint32_t)v);
	qs_train_wr32(b + 4, (uint32_t)(v >> 32));
}

static inline uint64_t
qs_train_rd64(const uint8_t *b)
{
	return (uint64_t)qs_train_rd32(b) | (uint64_t)qs_train_rd32(b + 4) << 32;
}

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
