/*
 * packet_general.h - private to dp/: the general packet parser (packet.c) and what
 * it shares with the fast path (packet_fast.h, which includes this file): the IPv4
 * header checksum check (the wire constants are pkt_parse.h's). The fast path hands
 * every frame it does not take to qs_dp__parse_general; nothing here depends on the
 * fast path.
 */
#ifndef QSTEER_DP_PACKET_GENERAL_H
#define QSTEER_DP_PACKET_GENERAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "qsteer/dp_core.h"

static inline uint32_t
ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/*
 * Is the IPv4 header's ones' complement sum 0xffff (the checksum verifies)? Summed
 * in native-order 32-bit words: a ones' complement sum in another byte order is
 * the byte swap of the big-endian one (RFC 1071 2(B)), and 0xffff is its own swap,
 * so this is exactly fold(qs_dp_csum_add(0, ip, ihl)) == 0xffff. ihl is a multiple
 * of 4 (20..60).
 */
static inline bool
ip4_csum_ok(const uint8_t *ip, uint32_t ihl)
{
	uint64_t s =
	    (uint64_t)ld32(ip) + ld32(ip + 4) + ld32(ip + 8) + ld32(ip + 12) + ld32(ip + 16);
	uint32_t i;

	for (i = 20; i < ihl; i += 4)
		s += ld32(ip + i);
	s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return s == 0xffff;
}

/* Everything the fast path leaves: VLAN tags, IPv6, IP options, reports, every
 * drop. Same contract as qs_dp_parse (dp_core.h). */
void qs_dp__parse_general(const struct qs_dp_config *c, const uint8_t *buf, uint32_t len,
			  struct qs_dp_pkt *out);

#endif /* QSTEER_DP_PACKET_GENERAL_H */
