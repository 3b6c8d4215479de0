/*
 * csum.h - the Internet checksum's arithmetic (RFC 1071, RFC 1624) in restricted C
 * (rc.h), once for the frame parser (pkt_parse.h), qsteer-dp's checksums and
 * rewrite (dp/packet.c, dp/packet_fast.h) and the XDP program's rewrite.
 */
#ifndef QSTEER_CSUM_H
#define QSTEER_CSUM_H

#include "rc.h"

/* A 32-bit ones' complement sum folded to 16 bits: two end-around carries take any
 * 32-bit value there (the first leaves at most 0x1fffe). */
QS_RC_FN qs_u32
qs_csum_fold(qs_u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	return (sum & 0xffff) + (sum >> 16);
}

/* RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'): the checksum csum after the len bytes
 * (even, at most 16) at old are replaced by those at new_, big-endian words. */
QS_RC_FN qs_u16
qs_csum_replace(qs_u16 csum, const qs_u8 *old, const qs_u8 *new_, qs_u32 len)
{
	qs_u32 sum = (qs_u16)~csum, i;

	QS_RC_UNROLL
	for (i = 0; i < 16; i += 2) {
		if (i >= len)
			break;
		sum += (qs_u16) ~((qs_u32)old[i] << 8 | old[i + 1]);
		sum += (qs_u32)new_[i] << 8 | new_[i + 1];
	}
	return (qs_u16)~qs_csum_fold(sum);
}

#endif /* QSTEER_CSUM_H */
