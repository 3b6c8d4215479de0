/*
 * packet.c - the general parser and the checksums of qsteer-dp's packets, on plain
 * byte buffers.
 *
 * The parser is the dataplane's trust boundary (it is the libFuzzer target): every
 * read is preceded by a length check against the frame, the IP header's lengths
 * are checked against the frame and the UDP length against the IP payload, and the
 * QRP header and report body are parsed only by wire.h. Trailing Ethernet padding
 * beyond the IP total length is allowed and ignored.
 *
 * This is the general parser, behind the fast path (packet_fast.h): its header is
 * packet_general.h, and it never includes the fast path.
 */
#include <string.h>

#include "qsteer/dp_core.h"
#include "packet_general.h"

#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88a8

static void
drop(struct qs_dp_pkt *out, enum qs_dp_drop why)
{
	out->cls = QS_DP_C_DROP;
	out->drop = (uint8_t)why;
}

static void
non_qrp(struct qs_dp_pkt *out)
{
	out->cls = QS_DP_C_NON_QRP;
	out->drop = QS_DP_D_NON_QRP;
}

uint32_t
qs_dp_csum_add(uint32_t sum, const uint8_t *p, uint32_t len)
{
	uint32_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	/* keep headroom so callers can chain several ranges */
	sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

static inline uint16_t
fold16(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

uint16_t
qs_dp_csum_fold(uint32_t sum)
{
	return fold16(sum);
}

uint16_t
qs_dp_ip4_csum(const uint8_t *ip, uint32_t ihl_bytes)
{
	uint32_t sum = qs_dp_csum_add(0, ip, 10);

	sum = qs_dp_csum_add(sum, ip + 12, ihl_bytes - 12);
	return (uint16_t)~qs_dp_csum_fold(sum);
}

uint16_t
qs_dp_udp_csum(const uint8_t *buf, const struct qs_dp_pkt *p)
{
	const uint8_t *ip = buf + p->l3_off, *udp = buf + p->l4_off;
	uint32_t ulen = qs_qrp_rd16(udp + 4), sum;
	uint16_t c;

	if (p->ipv6) {
		sum = qs_dp_csum_add(0, ip + 8, 32);
		sum += ulen;
	} else {
		sum = qs_dp_csum_add(0, ip + 12, 8);
		sum += ulen;
	}
	sum += IPPROTO_UDP_;
	sum = qs_dp_csum_add(sum, udp, 6);
	sum = qs_dp_csum_add(sum, udp + 8, ulen - 8);
	c = (uint16_t)~qs_dp_csum_fold(sum);
	return c == 0 ? 0xffff : c;
}

/* Everything else: VLAN tags, IPv6, options, reports, and every drop. */
void
qs_dp__parse_general(const struct qs_dp_config *c, const uint8_t *buf, uint32_t len,
		     struct qs_dp_pkt *out)
{
	uint32_t off = 12, tags = 0, l4, ip_end, ulen, dport;
	uint16_t et;
	const uint8_t *ip, *udp;
	enum qs_qrp_err e;

	out->cls = QS_DP_C_DROP;
	out->drop = QS_DP_D_NONE;
	out->ipv6 = 0;
	if (len < ETH_HLEN) {
		drop(out, QS_DP_D_ETH_SHORT);
		return;
	}
	et = qs_qrp_rd16(buf + off);
	while (et == ETHERTYPE_VLAN || et == ETHERTYPE_QINQ) {
		if (++tags > 2) {
			drop(out, QS_DP_D_VLAN_DEPTH);
			return;
		}
		off += 4;
		if (off + 2 > len) {
			drop(out, QS_DP_D_ETH_SHORT);
			return;
		}
		et = qs_qrp_rd16(buf + off);
	}
	off += 2;
	out->l3_off = (uint16_t)off;
	ip = buf + off;
	if (et == ETHERTYPE_IPV4) {
		uint32_t ihl, tot;

		if (off + 20 > len || (ip[0] >> 4) != 4) {
			drop(out, QS_DP_D_IP_HDR);
			return;
		}
		ihl = (uint32_t)(ip[0] & 15) * 4;
		tot = qs_qrp_rd16(ip + 2);
		if (ihl < 20 || tot < ihl || off + tot > len) {
			drop(out, QS_DP_D_IP_HDR);
			return;
		}
		if (!ip4_csum_ok(ip, ihl)) {
			drop(out, QS_DP_D_IP_CSUM);
			return;
		}
		if (ip[9] != IPPROTO_UDP_) {
			non_qrp(out);
			return;
		}
		if (qs_qrp_rd16(ip + 6) & 0x3fff) {
			drop(out, QS_DP_D_IP_FRAG);
			return;
		}
		if (c->has_ip4 && memcmp(ip + 16, c->ip4, 4) != 0) {
			non_qrp(out);
			return;
		}
		l4 = off + ihl;
		ip_end = off + tot;
	} else if (et == ETHERTYPE_IPV6) {
		uint32_t plen;
		uint8_t nh;

		if (off + 40 > len || (ip[0] >> 4) != 6) {
			drop(out, QS_DP_D_IP_HDR);
			return;
		}
		plen = qs_qrp_rd16(ip + 4);
		if (off + 40 + plen > len) {
			drop(out, QS_DP_D_IP_HDR);
			return;
		}
		nh = ip[6];
		if (nh == 44) {
			drop(out, QS_DP_D_IP_FRAG);
			return;
		}
		if (nh == 0 || nh == 43 || nh == 60) {
			drop(out, QS_DP_D_IP6_EXT);
			return;
		}
		if (nh != IPPROTO_UDP_) {
			non_qrp(out);
			return;
		}
		if (c->has_ip6 && memcmp(ip + 24, c->ip6, 16) != 0) {
			non_qrp(out);
			return;
		}
		out->ipv6 = 1;
		l4 = off + 40;
		ip_end = l4 + plen;
	} else {
		non_qrp(out);
		return;
	}
	out->l4_off = (uint16_t)l4;
	if (l4 + UDP_HLEN > ip_end) {
		drop(out, QS_DP_D_UDP_HDR);
		return;
	}
	udp = buf + l4;
	ulen = qs_qrp_rd16(udp + 4);
	if (ulen < UDP_HLEN || l4 + ulen > ip_end || (out->ipv6 && qs_qrp_rd16(udp + 6) == 0)) {
		drop(out, QS_DP_D_UDP_HDR);
		return;
	}
	dport = qs_qrp_rd16(udp + 2);
	if (dport != c->port && dport != c->report_port) {
		non_qrp(out);
		return;
	}
	out->pay_off = (uint16_t)(l4 + UDP_HLEN);
	out->pay_len = (uint16_t)(ulen - UDP_HLEN);
	e = qs_qrp_parse_hdr(buf + out->pay_off, out->pay_len, &out->h);
	if (e != QS_QRP_OK) {
		drop(out, (enum qs_dp_drop)(QS_DP_D_QRP_SHORT + (e - QS_QRP_E_SHORT)));
		return;
	}
	if ((out->h.type == QS_QRP_T_REPORT) != (dport == c->report_port)) {
		/* the two ports are one when configured so: then any type is fine */
		if (c->port != c->report_port) {
			drop(out, QS_DP_D_WRONG_PORT);
			return;
		}
	}
	if (out->h.type == QS_QRP_T_REPORT) {
		e = (uint32_t)out->pay_len - out->h.hdr_len < qs_qrp_report_len(out->h.flags)
			? QS_QRP_E_SHORT
			: qs_qrp_parse_report(buf + out->pay_off + out->h.hdr_len,
					      (uint32_t)out->pay_len - out->h.hdr_len, &out->rep);
		if (e != QS_QRP_OK) {
			drop(out, (enum qs_dp_drop)(QS_DP_D_QRP_SHORT + (e - QS_QRP_E_SHORT)));
			return;
		}
	}
	out->cls = QS_DP_C_QRP;
}
