/*
 * le.h - little-endian integers at any alignment, byte by byte: the byte order of
 * the .q8 policy file, the trainer's checkpoints and SipHash's words. Restricted C
 * (rc.h), so the XDP program's SipHash reads packets with the same loads the host
 * uses; the wire protocol's big-endian fields are wire.h's.
 */
#ifndef QSTEER_LE_H
#define QSTEER_LE_H

#include "qsteer/rc.h"

QS_RC_FN qs_u16
qs_le_rd16(const qs_u8 *p)
{
	return (qs_u16)(p[0] | p[1] << 8);
}

QS_RC_FN qs_u32
qs_le_rd32(const qs_u8 *p)
{
	return (qs_u32)p[0] | (qs_u32)p[1] << 8 | (qs_u32)p[2] << 16 | (qs_u32)p[3] << 24;
}

QS_RC_FN qs_u64
qs_le_rd64(const qs_u8 *p)
{
	return (qs_u64)p[0] | (qs_u64)p[1] << 8 | (qs_u64)p[2] << 16 | (qs_u64)p[3] << 24 |
	       (qs_u64)p[4] << 32 | (qs_u64)p[5] << 40 | (qs_u64)p[6] << 48 | (qs_u64)p[7] << 56;
}

QS_RC_FN void
qs_le_wr16(qs_u8 *p, qs_u16 v)
{
	p[0] = (qs_u8)v;
	p[1] = (qs_u8)(v >> 8);
}

QS_RC_FN void
qs_le_wr32(qs_u8 *p, qs_u32 v)
{
	int i;

	QS_RC_UNROLL
	for (i = 0; i < 4; i++)
		p[i] = (qs_u8)(v >> (8 * i));
}

QS_RC_FN void
qs_le_wr64(qs_u8 *p, qs_u64 v)
{
	qs_le_wr32(p, (qs_u32)v);
	qs_le_wr32(p + 4, (qs_u32)(v >> 32));
}

#endif /* QSTEER_LE_H */
