/*
 * packet.c - the general parser and the checksums of qsteer-dp's packets, on plain
 * byte buffers.
 *
 * The parser is the dataplane's trust boundary (it is the libFuzzer target). The
 * frame up to the UDP payload is pkt_parse.h's, the very code the XDP program
 * runs: every read preceded by a check against the frame's end, the IP header's
 * lengths checked against the frame and the UDP length against the IP payload.
 * The QRP header and report body are parsed only by wire.h. Trailing Ethernet
 * padding beyond the IP total length is allowed and ignored.
 *
 * This is the general parser, behind the fast path (packet_fast.h): its header is
 * packet_general.h, and it never includes the fast path.
 */
#include <string.h>

#include "qsteer/dp_core.h"
#include "packet_general.h"

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

uint16_t
qs_dp_csum_fold(uint32_t sum)
{
	return (uint16_t)qs_csum_fold(sum);
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
	sum += QS_PKT_PROTO_UDP;
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
	struct qs_pkt_l4 l = {0};
	enum qs_qrp_err e;
	int d;

	out->cls = QS_DP_C_DROP;
	out->drop = QS_DP_D_NONE;
	d = qs_pkt_parse(buf, buf + len, &c->svc, &l);
	out->ipv6 = l.ipv6;
	out->l3_off = l.l3_off;
	out->l4_off = l.l4_off;
	if (d == QS_DP_D_NON_QRP) {
		non_qrp(out);
		return;
	}
	if (d != QS_DP_D_NONE) {
		drop(out, (enum qs_dp_drop)d);
		return;
	}
	out->pay_off = l.pay_off;
	out->pay_len = l.pay_len;
	e = qs_qrp_parse_hdr(buf + out->pay_off, out->pay_len, &out->h);
	if (e != QS_QRP_OK) {
		drop(out, (enum qs_dp_drop)(QS_DP_D_QRP_SHORT + (e - QS_QRP_E_SHORT)));
		return;
	}
	if ((out->h.type == QS_QRP_T_REPORT) != (l.dport == c->svc.report_port)) {
		/* the two ports are one when configured so: then any type is fine */
		if (c->svc.port != c->svc.report_port) {
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
