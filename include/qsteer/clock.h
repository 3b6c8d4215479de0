/*
 * clock.h - the monotonic clock in nanoseconds, the one every program here reads
 * for intervals and deadlines: the agent stamps its responses and reports with it,
 * and on one host qsteer-load compares those stamps with its own, so the two must
 * be the same clock. Never the realtime clock, which steps.
 */
#ifndef QSTEER_CLOCK_H
#define QSTEER_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t
qs_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t
qs_mono_ms(void)
{
	return qs_mono_ns() / 1000000u;
}

#endif /* QSTEER_CLOCK_H */
