/*
 * build.c - frame builders for qsteer-pcap gen and the tests: well-formed
 * Ethernet/802.1Q/IPv4/IPv6/UDP frames around QRP messages, checksums from the
 * reference functions. Never used on the fast path.
 */
#include <string.h>

#include "qsteer/dp_core.h"

uint32_t
qs_dp_build_udp(uint8_t *buf, uint32_t cap, const struct qs_dp_flow *f, const uint8_t *payload,
		uint32_t len)
{
	uint32_t off = 12, l3, l4, iplen;
	struct qs_dp_pkt p;

	iplen = (f->ipv6 ? 40u : 20u) + 8u + len;
	if (14u + (f->vlan ? 4u : 0u) + iplen > cap || len > 65000)
		return 0;
	memcpy(buf, f->dst_mac, 6);
	memcpy(buf + 6, f->src_mac, 6);
	if (f->vlan) {
		qs_qrp_wr16(buf + off, 0x8100);
		qs_qrp_wr16(buf + off + 2, f->vlan & 0x0fff);
		off += 4;
	}
	qs_qrp_wr16(buf + off, f->ipv6 ? 0x86dd : 0x0800);
	l3 = off + 2;
	if (f->ipv6) {
		uint8_t *ip = buf + l3;

		memset(ip, 0, 40);
		ip[0] = 0x60;
		qs_qrp_wr16(ip + 4, (uint16_t)(8 + len));
		ip[6] = 17;
		ip[7] = 64;
		memcpy(ip + 8, f->src_ip, 16);
		memcpy(ip + 24, f->dst_ip, 16);
		l4 = l3 + 40;
	} else {
		uint8_t *ip = buf + l3;

		memset(ip, 0, 20);
		ip[0] = 0x45;
		qs_qrp_wr16(ip + 2, (uint16_t)iplen);
		qs_qrp_wr16(ip + 6, 0x4000); /* DF */
		ip[8] = 64;
		ip[9] = 17;
		memcpy(ip + 12, f->src_ip, 4);
		memcpy(ip + 16, f->dst_ip, 4);
		qs_qrp_wr16(ip + 10, qs_dp_ip4_csum(ip, 20));
		l4 = l3 + 20;
	}
	qs_qrp_wr16(buf + l4, f->sport);
	qs_qrp_wr16(buf + l4 + 2, f->dport);
	qs_qrp_wr16(buf + l4 + 4, (uint16_t)(8 + len));
	qs_qrp_wr16(buf + l4 + 6, 0);
	memcpy(buf + l4 + 8, payload, len);
	memset(&p, 0, sizeof(p));
	p.ipv6 = f->ipv6;
	p.l3_off = (uint16_t)l3;
	p.l4_off = (uint16_t)l4;
	qs_qrp_wr16(buf + l4 + 6, qs_dp_udp_csum(buf, &p));
	return l4 + 8 + len;
}

uint32_t
qs_dp_build_qrp(uint8_t *buf, uint32_t cap, const struct qs_dp_flow *f,
		const struct qs_qrp_hdr *h, const struct qs_qrp_report *rep, uint32_t body_len)
{
	uint8_t pay[9000];
	uint32_t len = QS_QRP_HDR_LEN, i;

	if (body_len + QS_QRP_HDR_LEN + QS_QRP_REPORT_LEN > sizeof(pay))
		return 0;
	qs_qrp_write_hdr(pay, h);
	if (rep) {
		qs_qrp_write_report(pay + len, rep);
		len += QS_QRP_REPORT_LEN;
	}
	for (i = 0; i < body_len; i++)
		pay[len + i] = (uint8_t)(h->request_id * 31 + i * 7);
	return qs_dp_build_udp(buf, cap, f, pay, len + body_len);
}
