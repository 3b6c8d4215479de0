/*
 * packet_fast.h - private to dp/: the common-case parse and the rewrite as inline
 * functions, so that the burst loops in core.c compile them in place (packet_fast.c
 * compiles them once for the exported qs_dp_parse / qs_dp_rewrite). Everything the
 * fast path leaves goes to the general parser (packet_general.h, packet.c), which
 * knows nothing of this file. Not an API: dp_core.h is the contract.
 */
#ifndef QSTEER_DP_PACKET_FAST_H
#define QSTEER_DP_PACKET_FAST_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "qsteer/dp_core.h"
#include "packet_general.h"

/*
 * The common case in one straight pass: untagged Ethernet, IPv4 without options,
 * not a fragment, UDP to the request port, a whole QRP header that is not a report.
 * Returns false as soon as anything differs, before writing any field the general
 * parser would not write identically; that parser then decides (and names the
 * drop). Every check below is one the general parser makes, so a frame accepted
 * here is one it accepts with the same result.
 */
static inline bool
qs_dp_parse_fast4(const struct qs_dp_config *c, const uint8_t *buf, uint32_t len,
		  struct qs_dp_pkt *out)
{
	const uint8_t *ip = buf + QS_PKT_ETH_HLEN, *udp = ip + 20;
	uint32_t tot, ulen;

	if (len < QS_PKT_ETH_HLEN + 20 + QS_PKT_UDP_HLEN + QS_QRP_HDR_LEN ||
	    qs_qrp_rd16(buf + 12) != QS_PKT_ET_IPV4 || ip[0] != 0x45 || ip[9] != QS_PKT_PROTO_UDP)
		return false;
	tot = qs_qrp_rd16(ip + 2);
	ulen = qs_qrp_rd16(udp + 4);
	/* ulen >= 8 + a header and 20 + ulen <= tot imply tot >= ihl and l4 + 8 <= end */
	if (QS_PKT_ETH_HLEN + tot > len || ulen < QS_PKT_UDP_HLEN + QS_QRP_HDR_LEN ||
	    20 + ulen > tot || (qs_qrp_rd16(ip + 6) & 0x3fff) ||
	    qs_qrp_rd16(udp + 2) != c->svc.port || !ip4_csum_ok(ip, 20) ||
	    (c->svc.has_ip4 && ld32(ip + 16) != ld32(c->svc.ip4)) ||
	    udp[QS_PKT_UDP_HLEN + 3] == QS_QRP_T_REPORT)
		return false;
	if (qs_qrp_parse_hdr(udp + QS_PKT_UDP_HLEN, ulen - QS_PKT_UDP_HLEN, &out->h) != QS_QRP_OK)
		return false; /* the general parser parses it again and names the error */
	out->cls = QS_DP_C_QRP;
	out->drop = QS_DP_D_NONE;
	out->ipv6 = 0;
	out->l3_off = QS_PKT_ETH_HLEN;
	out->l4_off = QS_PKT_ETH_HLEN + 20;
	out->pay_off = QS_PKT_ETH_HLEN + 20 + QS_PKT_UDP_HLEN;
	out->pay_len = (uint16_t)(ulen - QS_PKT_UDP_HLEN);
	return true;
}

static inline void
qs_dp_parse_inl(const struct qs_dp_config *c, const uint8_t *buf, uint32_t len,
		struct qs_dp_pkt *out)
{
	if (!qs_dp_parse_fast4(c, buf, len, out))
		qs_dp__parse_general(c, buf, len, out);
}

static inline uint32_t
ld16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static inline void
st16(uint8_t *p, uint32_t v)
{
	uint16_t x = (uint16_t)v;

	memcpy(p, &x, 2);
}

/*
 * The checksums are updated in the machine's byte order (words loaded as they lie,
 * results stored the same way): a ones' complement sum over byte-swapped words is
 * the byte swap of the sum (RFC 1071 2(B)), 0 and 0xffff included, so the bytes
 * written are those of the big-endian computation (RFC 1624 eqn. 3, as
 * csum_replace did): HC' = ~(~HC + ~m + m') per checksum, where delta holds the
 * ~m + m' terms of the destination address; the UDP port is folded in after.
 */
static inline int
qs_dp_rewrite_inl(uint8_t *buf, const struct qs_dp_pkt *p, const struct qs_dp_backend_cfg *b)
{
	uint8_t *ip = buf + p->l3_off, *udp = buf + p->l4_off;
	uint32_t uc = ld16(udp + 6), c, delta, i;
	/* the service's MAC (the old destination) becomes the source; through a copy,
	 * since gcc's -Warray-bounds misjudges an in-place memcpy under sanitizers */
	uint8_t svc_mac[6], port[2];

	if (p->ipv6 ? !b->has_ip6 : !b->has_ip4)
		return QS_DP_D_FAMILY;
	memcpy(svc_mac, buf, 6);
	memcpy(buf + 6, svc_mac, 6);
	memcpy(buf, b->mac, 6);
	qs_qrp_wr16(port, b->port);
	if (p->ipv6) {
		delta = 0;
		for (i = 0; i < 16; i += 2)
			delta += (uint16_t)~ld16(ip + 24 + i) + ld16(b->ip6 + i);
	} else {
		delta = (uint16_t)~ld16(ip + 16) + ld16(b->ip4) + (uint16_t)~ld16(ip + 18) +
			ld16(b->ip4 + 2);
		st16(ip + 10, ~qs_csum_fold((uint16_t)~ld16(ip + 10) + delta));
	}
	/* IPv4 UDP checksum 0 means "none" and stays so */
	if (uc != 0) {
		c = (uint16_t)~qs_csum_fold((uint16_t)~uc + delta);
		c = (uint16_t)~qs_csum_fold((uint16_t)~c + (uint16_t)~ld16(udp + 2) + ld16(port));
		st16(udp + 6, c == 0 ? 0xffff : c);
	}
	if (p->ipv6)
		memcpy(ip + 24, b->ip6, 16);
	else
		memcpy(ip + 16, b->ip4, 4);
	memcpy(udp + 2, port, 2);
	return QS_DP_D_NONE;
}

#endif /* QSTEER_DP_PACKET_FAST_H */
