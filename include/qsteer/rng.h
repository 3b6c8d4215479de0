/*
 * rng.h - the one pseudo-random generator of qsteer: splitmix64 (Steele, Lea and
 * Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014), and its
 * output mix as a 64-bit hash. The simulator's streams, the baselines' random
 * choices (in the dataplane and in the XDP program alike), the trainer, the pcap
 * generator and the tests all draw from this function, so a seed means the same
 * sequence everywhere. Restricted C (rc.h): host, BPF and CUDA.
 */
#ifndef QSTEER_RNG_H
#define QSTEER_RNG_H

#include "rc.h"

/* splitmix64's finaliser: a bijective 64-bit mix. */
QS_RC_FN qs_u64
qs_mix64(qs_u64 z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The next value of the stream whose state is *s. */
QS_RC_FN qs_u64
qs_splitmix64(qs_u64 *s)
{
	return qs_mix64(*s += 0x9e3779b97f4a7c15ull);
}

#endif /* QSTEER_RNG_H */
