/*
 * rng.h - the trainer's random numbers: xoshiro256** seeded through splitmix64.
 *
 * Every stochastic choice in training (initialization, sampling actions, shuffling
 * minibatches, synthetic environments) draws from one of these, each with its own
 * stream, so a run is reproducible from its seed and its state is a checkpointable
 * 32 bytes.
 */
#ifndef QSTEER_TRAINER_RNG_H
#define QSTEER_TRAINER_RNG_H

#include <math.h>
#include <stdint.h>

#include "qsteer/rng.h"

struct qs_rng {
	uint64_t s[4];
};

static inline uint64_t
qs_rng_splitmix(uint64_t *x)
{
	return qs_splitmix64(x);
}

/* Seed stream `stream` of seed: distinct streams are independent sequences. */
static inline void
qs_rng_seed(struct qs_rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1342543de82ef95ull + 0x632be59bd9b4e019ull);

	for (int i = 0; i < 4; i++)
		r->s[i] = qs_rng_splitmix(&x);
	if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
		r->s[0] = 1; /* the all-zero state is a fixed point */
}

static inline uint64_t
qs_rng_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t
qs_rng_next(struct qs_rng *r)
{
	uint64_t *s = r->s, out = qs_rng_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = qs_rng_rotl(s[3], 45);
	return out;
}

/* Uniform in [0, 1) with 24 bits: exactly representable as a float. */
static inline float
qs_rng_uniform(struct qs_rng *r)
{
	return (float)(qs_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

/* Uniform integer in [0, n), n > 0 (multiply-shift, bias below 2^-32 for small n). */
static inline uint32_t
qs_rng_below(struct qs_rng *r, uint32_t n)
{
	return (uint32_t)(((qs_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Fisher-Yates shuffle of v[0..n) from r's stream: the same stream state gives the
 * same permutation, which keeps minibatch order reproducible. */
static inline void
qs_rng_shuffle(struct qs_rng *r, uint32_t *v, uint32_t n)
{
	for (uint32_t i = n; i > 1; i--) {
		uint32_t j = qs_rng_below(r, i), t = v[i - 1];

		v[i - 1] = v[j];
		v[j] = t;
	}
}

/* Standard normal (Box-Muller; one value per call keeps the stream simple). */
static inline float
qs_rng_normal(struct qs_rng *r)
{
	double u1 = ((double)(qs_rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
	double u2 = (double)(qs_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);

	return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

#endif /* QSTEER_TRAINER_RNG_H */
