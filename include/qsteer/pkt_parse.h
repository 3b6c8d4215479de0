/*
 * pkt_parse.h - the frame parser in front of QRP, once for qsteer-dp's general
 * parser (dp/packet.c) and the XDP program (ebpf/qsteer.bpf.c): Ethernet with up to
 * two 802.1Q/802.1ad tags, IPv4 (checksum verified, no fragments) or IPv6 (no
 * extension headers), then UDP to the service's address and ports. QRP itself is
 * wire.h's, and each caller hands it the payload its own way.
 *
 * Restricted C (rc.h), in the xdp-tools style: a cursor into [data, end), and every
 * read preceded by a check of its end against `end`, so the BPF verifier accepts
 * the same text the host runs; loops are bounded by constants (the tags, the IPv4
 * header's 30 half-words). The drop reasons are drop.h's, the dataplane core's.
 */
#ifndef QSTEER_PKT_PARSE_H
#define QSTEER_PKT_PARSE_H

#include "csum.h"
#include "drop.h"
#include "rc.h"
#include "wire.h"

#define QS_PKT_ETH_HLEN	  14
#define QS_PKT_ET_IPV4	  0x0800
#define QS_PKT_ET_IPV6	  0x86dd
#define QS_PKT_ET_VLAN	  0x8100
#define QS_PKT_ET_QINQ	  0x88a8
#define QS_PKT_PROTO_UDP  17
#define QS_PKT_UDP_HLEN	  8
#define QS_PKT_MAX_L4_OFF (QS_PKT_ETH_HLEN + 8 + 60) /* two tags, the longest IPv4 header */

/* Which frames are the service's: its addresses (absent: any destination) and ports. */
struct qs_pkt_service {
	qs_u8 has_ip4, has_ip6;
	qs_u8 ip4[4];
	qs_u8 ip6[16];
	qs_u16 port;	    /* requests */
	qs_u16 report_port; /* backend reports */
};

/* Where a frame's layers start, once it is a UDP datagram to the service. */
struct qs_pkt_l4 {
	qs_u16 l3_off, l4_off; /* from the frame's start; l4_off <= QS_PKT_MAX_L4_OFF */
	qs_u16 pay_off, pay_len;
	qs_u16 dport;
	qs_u8 ipv6;
};

/* Does the IPv4 header's ones' complement sum verify (0xffff)? ihl is 20..60 and
 * [ip, ip + ihl) lies in the frame. */
QS_RC_FN int
qs_pkt_ip4_csum_ok(const qs_u8 *ip, const qs_u8 *end, qs_u32 ihl)
{
	qs_u32 sum = 0, i;

	QS_RC_UNROLL
	for (i = 0; i < 30; i++) {
		if (i * 2 >= ihl)
			break;
		if (ip + i * 2 + 2 > end)
			return 0;
		sum += (qs_u32)ip[i * 2] << 8 | ip[i * 2 + 1];
	}
	return qs_csum_fold(sum) == 0xffff;
}

/*
 * Parse the frame [data, end) up to its UDP payload. QS_DP_D_NONE with *out filled
 * when it is a datagram to the service; QS_DP_D_NON_QRP when it is not the
 * service's (not IP, not UDP, another destination or port); else why it is
 * dropped. out->l3_off, l4_off and ipv6 are set as soon as they are known.
 */
QS_RC_FN int
qs_pkt_parse(const qs_u8 *data, const qs_u8 *end, const struct qs_pkt_service *svc,
	     struct qs_pkt_l4 *out)
{
	qs_u32 len, off = 12, l4, ip_end, ulen, i;
	const qs_u8 *ip, *udp;
	qs_u16 et;

	out->ipv6 = 0;
	if (data + QS_PKT_ETH_HLEN > end)
		return QS_DP_D_ETH_SHORT;
	len = (qs_u32)(end - data);
	et = qs_qrp_rd16(data + 12);
	/* at most two tags; a third is vlan-depth */
	QS_RC_UNROLL
	for (i = 0; i < 3; i++) {
		if (et != QS_PKT_ET_VLAN && et != QS_PKT_ET_QINQ)
			break;
		if (i == 2)
			return QS_DP_D_VLAN_DEPTH;
		off += 4;
		if (data + off + 2 > end)
			return QS_DP_D_ETH_SHORT;
		et = qs_qrp_rd16(data + off);
	}
	off += 2;
	out->l3_off = (qs_u16)off;
	ip = data + off;
	if (et == QS_PKT_ET_IPV4) {
		qs_u32 ihl, tot;

		if (ip + 20 > end || (ip[0] >> 4) != 4)
			return QS_DP_D_IP_HDR;
		ihl = (qs_u32)(ip[0] & 15) * 4;
		tot = qs_qrp_rd16(ip + 2);
		if (ihl < 20 || tot < ihl || off + tot > len)
			return QS_DP_D_IP_HDR;
		if (!qs_pkt_ip4_csum_ok(ip, end, ihl))
			return QS_DP_D_IP_CSUM;
		if (ip[9] != QS_PKT_PROTO_UDP)
			return QS_DP_D_NON_QRP;
		if (qs_qrp_rd16(ip + 6) & 0x3fff)
			return QS_DP_D_IP_FRAG;
		if (svc->has_ip4 && (ip[16] != svc->ip4[0] || ip[17] != svc->ip4[1] ||
				     ip[18] != svc->ip4[2] || ip[19] != svc->ip4[3]))
			return QS_DP_D_NON_QRP;
		l4 = off + ihl;
		ip_end = off + tot;
	} else if (et == QS_PKT_ET_IPV6) {
		qs_u32 plen;
		qs_u8 nh;

		if (ip + 40 > end || (ip[0] >> 4) != 6)
			return QS_DP_D_IP_HDR;
		plen = qs_qrp_rd16(ip + 4);
		if (off + 40 + plen > len)
			return QS_DP_D_IP_HDR;
		nh = ip[6];
		if (nh == 44)
			return QS_DP_D_IP_FRAG;
		if (nh == 0 || nh == 43 || nh == 60)
			return QS_DP_D_IP6_EXT;
		if (nh != QS_PKT_PROTO_UDP)
			return QS_DP_D_NON_QRP;
		if (svc->has_ip6) {
			qs_u8 diff = 0;

			QS_RC_UNROLL
			for (i = 0; i < 16; i++)
				diff |= ip[24 + i] ^ svc->ip6[i];
			if (diff)
				return QS_DP_D_NON_QRP;
		}
		out->ipv6 = 1;
		l4 = off + 40;
		ip_end = l4 + plen;
	} else {
		return QS_DP_D_NON_QRP;
	}
	out->l4_off = (qs_u16)l4;
	if (l4 + QS_PKT_UDP_HLEN > ip_end)
		return QS_DP_D_UDP_HDR;
	if (l4 > QS_PKT_MAX_L4_OFF)
		return QS_DP_D_UDP_HDR; /* unreachable: it bounds the offset for the verifier */
	udp = data + l4;
	if (udp + QS_PKT_UDP_HLEN > end)
		return QS_DP_D_UDP_HDR; /* unreachable: ip_end <= len */
	ulen = qs_qrp_rd16(udp + 4);
	if (ulen < QS_PKT_UDP_HLEN || l4 + ulen > ip_end ||
	    (out->ipv6 && qs_qrp_rd16(udp + 6) == 0))
		return QS_DP_D_UDP_HDR;
	out->dport = (qs_u16)qs_qrp_rd16(udp + 2);
	if (out->dport != svc->port && out->dport != svc->report_port)
		return QS_DP_D_NON_QRP;
	out->pay_off = (qs_u16)(l4 + QS_PKT_UDP_HLEN);
	out->pay_len = (qs_u16)(ulen - QS_PKT_UDP_HLEN);
	return QS_DP_D_NONE;
}

#endif /* QSTEER_PKT_PARSE_H */
