/*
 * build.c - frame builders for qsteer-pcap gen and the tests: well-formed
 * Ethernet/802.1Q/IPv4/IPv6/UDP frames around QRP messages, checksums from the
 * reference functions, and the benchmark workload. Never used on the fast path.
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
qs_dp_build_qrp(uint8_t *buf, uint32_t cap, const struct qs_dp_flow *f, const struct qs_qrp_hdr *h,
		const struct qs_qrp_report *rep, uint32_t body_len)
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

uint32_t
qs_dp_build_report(uint8_t *buf, uint32_t cap, const struct qs_dp_flow *f,
		   const struct qs_qrp_hdr *h, const struct qs_qrp_report *rep,
		   const struct qs_report_key *k)
{
	uint8_t pay[QS_QRP_AUTH_MSG_LEN + QS_QRP_REPORT_TAG_LEN];
	struct qs_qrp_hdr hh = *h;

	if (!k || !k->has_key)
		return qs_dp_build_qrp(buf, cap, f, h, rep, 0);
	hh.flags |= QS_QRP_F_AUTH;
	qs_qrp_write_hdr(pay, &hh);
	qs_qrp_write_report(pay + QS_QRP_HDR_LEN, rep);
	qs_report_sign(k->key, pay);
	return qs_dp_build_udp(buf, cap, f, pay, sizeof(pay));
}

void
qs_dp_bench_workload(struct qs_dp_worker *w, struct qs_dp_shared *s,
		     const struct qs_dp_policy_set *set, uint8_t (*frames)[QS_DP_BENCH_FRAME],
		     uint32_t *lens, uint32_t n, bool continuations, uint64_t now)
{
	uint8_t tmp[QS_DP_BENCH_FRAME], *bufs[1];
	struct qs_dp_flow f;
	struct qs_qrp_hdr h;
	struct qs_qrp_report r;
	uint32_t i, b, tl;

	/* rewritten frames come round again: accept any destination, keep the port */
	s->cfg.svc.has_ip4 = s->cfg.svc.has_ip6 = false;
	for (b = 0; b < s->cfg.n_backends; b++)
		s->cfg.be[b].port = s->cfg.svc.port;
	memset(&f, 0, sizeof(f));
	f.src_ip[0] = 192;
	f.dst_ip[0] = 10;
	f.dport = s->cfg.svc.port;
	/* every backend reports once (fresh for the whole run: the clock is pinned) */
	for (b = 0; b < s->cfg.n_backends; b++) {
		memset(&h, 0, sizeof(h));
		h.type = QS_QRP_T_REPORT;
		h.request_id = 1;
		memset(&r, 0, sizeof(r));
		r.backend_id = s->cfg.be[b].id;
		r.waiting = b * 3;
		r.running = 8 + b;
		r.kv_used = 100 * b;
		r.kv_total = 4096;
		r.decode_tps = 1000 + b;
		r.ttft_p99_us = 50000;
		f.dport = s->cfg.svc.report_port;
		/* from the agent's own address, where the dataplane believes reports */
		if (s->cfg.be[b].report_src.has_ip4)
			memcpy(f.src_ip, s->cfg.be[b].report_src.ip4, 4);
		tl = qs_dp_build_qrp(tmp, sizeof(tmp), &f, &h, &r, 0);
		bufs[0] = tmp;
		qs_dp_process(w, s, set, bufs, &tl, 1, now);
	}
	f.dport = s->cfg.svc.port;
	memset(f.src_ip, 0, sizeof(f.src_ip));
	f.src_ip[0] = 192;
	for (i = 0; i < n; i++) {
		memset(&h, 0, sizeof(h));
		h.type = QS_QRP_T_REQUEST;
		h.request_id = i + 1;
		h.prompt_tokens = 100 + i * 7 % 4000;
		h.max_new_tokens = 10 + i % 300;
		h.prefix_hash = i % 5 ? 0 : i % 37 + 1;
		h.priority = (uint8_t)(i % 4);
		h.slo_class = (uint8_t)(i % 3);
		f.sport = (uint16_t)(1000 + i % 64);
		h.flags = continuations ? 0 : QS_QRP_F_LAST;
		lens[i] = qs_dp_build_qrp(frames[i], sizeof(frames[i]), &f, &h, NULL, 64);
		if (continuations) {
			/* open the request (its first packet decides), then bench its tail */
			bufs[0] = frames[i];
			qs_dp_process(w, s, set, bufs, &lens[i], 1, now);
			h.type = QS_QRP_T_CONTINUATION;
			lens[i] = qs_dp_build_qrp(frames[i], sizeof(frames[i]), &f, &h, NULL, 64);
		}
	}
}
