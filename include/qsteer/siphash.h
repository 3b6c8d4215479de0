/*
 * siphash.h - SipHash-2-4 with a 128-bit output (Aumasson & Bernstein, 2012), in
 * restricted C (rc.h) so the dataplane, the XDP program and the agent compute the
 * same tag with the same code.
 *
 * Why SipHash and not HMAC-SHA256: a backend report is 88 bytes and must be checked
 * at line rate inside an XDP program, where a SHA-256 compression per report is
 * far over the instruction budget. SipHash is a PRF built for short inputs, keyed
 * with 128 bits; its 128-bit variant (libsodium's crypto_shorthash_siphashx24,
 * which test/policy checks this against) leaves a forger a 2^-128 chance per try.
 */
#ifndef QSTEER_SIPHASH_H
#define QSTEER_SIPHASH_H

#include "le.h"
#include "rc.h"

#define QS_SIPHASH_KEY_LEN 16
#define QS_SIPHASH_TAG_LEN 16
/* Longest message hashed; loops are bounded by it (rc.h: constant bounds). */
#define QS_SIPHASH_MAX_LEN 256

QS_RC_FN qs_u64
qs_sip_rotl(qs_u64 x, int b)
{
	return (x << b) | (x >> (64 - b));
}

/* One SipRound on the state v[0..3]. */
QS_RC_FN void
qs_sip_round(qs_u64 *v)
{
	v[0] += v[1];
	v[1] = qs_sip_rotl(v[1], 13);
	v[1] ^= v[0];
	v[0] = qs_sip_rotl(v[0], 32);
	v[2] += v[3];
	v[3] = qs_sip_rotl(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = qs_sip_rotl(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = qs_sip_rotl(v[1], 17);
	v[1] ^= v[2];
	v[2] = qs_sip_rotl(v[2], 32);
}

QS_RC_FN void
qs_sip_compress(qs_u64 *v, qs_u64 m)
{
	v[3] ^= m;
	qs_sip_round(v);
	qs_sip_round(v);
	v[0] ^= m;
}

/*
 * The 16-byte tag of len bytes at msg under a 16-byte key. len above
 * QS_SIPHASH_MAX_LEN returns -1 and writes nothing; 0 otherwise.
 */
QS_RC_FN int
qs_siphash128(const qs_u8 *key, const qs_u8 *msg, qs_u32 len, qs_u8 *out)
{
	qs_u64 k0, k1, v[4], b;
	qs_u32 i, nblk, tail;

	if (len > QS_SIPHASH_MAX_LEN)
		return -1;
	k0 = qs_le_rd64(key);
	k1 = qs_le_rd64(key + 8);
	v[0] = k0 ^ 0x736f6d6570736575ull;
	v[1] = k1 ^ 0x646f72616e646f6dull ^ 0xee; /* 0xee: the 128-bit variant */
	v[2] = k0 ^ 0x6c7967656e657261ull;
	v[3] = k1 ^ 0x7465646279746573ull;
	nblk = len >> 3;
	for (i = 0; i < QS_SIPHASH_MAX_LEN / 8; i++) {
		if (i >= nblk)
			break;
		qs_sip_compress(v, qs_le_rd64(msg + 8 * i));
	}
	b = (qs_u64)(len & 0xff) << 56;
	tail = len & 7;
	for (i = 0; i < 7; i++) {
		if (i >= tail)
			break;
		b |= (qs_u64)msg[8 * nblk + i] << (8 * i);
	}
	qs_sip_compress(v, b);
	v[2] ^= 0xee;
	QS_RC_UNROLL
	for (i = 0; i < 4; i++)
		qs_sip_round(v);
	qs_le_wr64(out, v[0] ^ v[1] ^ v[2] ^ v[3]);
	v[1] ^= 0xdd;
	QS_RC_UNROLL
	for (i = 0; i < 4; i++)
		qs_sip_round(v);
	qs_le_wr64(out + 8, v[0] ^ v[1] ^ v[2] ^ v[3]);
	return 0;
}

/* 1 when the tags at a and b are equal; the time taken does not say where they differ. */
QS_RC_FN int
qs_sip_tag_eq(const qs_u8 *a, const qs_u8 *b)
{
	qs_u8 d = 0;
	int i;

	QS_RC_UNROLL
	for (i = 0; i < QS_SIPHASH_TAG_LEN; i++)
		d |= (qs_u8)(a[i] ^ b[i]);
	return d == 0;
}

#endif /* QSTEER_SIPHASH_H */
