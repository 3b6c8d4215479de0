/*
 * wire.h - QRP v1, the request/report protocol (DESIGN.md 3.4), in restricted C so
 * the DPDK dataplane, the XDP program, the agent and the pcap tools parse it with
 * the same code. docs/wire.md is the prose version; change both together.
 *
 * A QRP message is the payload of one UDP datagram: a 32-byte header in network
 * byte order, then for reports (type 3) a 56-byte report body.
 *
 *   off size field
 *     0   2  magic 0x5153 ("QS")
 *     2   1  version 1
 *     3   1  type: 1 request, 2 continuation, 3 backend report, 4 cancel
 *     4   2  flags: bit 0 last packet of the request; bit 1 (reports only) a
 *                16-byte tag follows the body (report_auth.h); bit 2 (requests
 *                only) the request carries its difficulty class 0..3 in bits 3-4
 *     6   2  tenant
 *     8   8  request id (reports: the agent's report sequence number)
 *    16   4  prompt tokens
 *    20   4  max new tokens
 *    24   4  prefix hash (0 if none)
 *    28   1  priority 0..3
 *    29   1  SLO class 0..3
 *    30   2  header length (32 in v1; a receiver skips to this offset)
 *
 * Report body (offsets from the end of the header):
 *     0   2  backend id
 *     2   2  flags: bit 0 draining
 *     4   4  waiting sequences
 *     8   4  running sequences
 *    12   4  KV blocks used
 *    16   4  KV blocks total
 *    20   4  recent decode tokens/s
 *    24   4  p99 TTFT over the last interval, microseconds
 *    28   4  pending prefill tokens
 *    32   8  requests received, cumulative since the agent started
 *    40   8  requests completed, cumulative
 *    48   8  agent clock at sending, nanoseconds
 */
#ifndef QSTEER_WIRE_H
#define QSTEER_WIRE_H

#include "rc.h"

#define QS_QRP_MAGIC	   0x5153
#define QS_QRP_VERSION	   1
#define QS_QRP_HDR_LEN	   32
#define QS_QRP_REPORT_LEN  56
#define QS_QRP_PORT	   7788
#define QS_QRP_REPORT_PORT 7789
/* The agents' default report interval; the dataplanes' default stale mask is a
 * multiple of it (docs/dataplane.md, report_stale_intervals). */
#define QS_QRP_REPORT_INTERVAL_MS 5

#define QS_QRP_T_REQUEST      1
#define QS_QRP_T_CONTINUATION 2
#define QS_QRP_T_REPORT	      3
#define QS_QRP_T_CANCEL	      4

#define QS_QRP_F_LAST 0x0001
/* Reports only: the header length is 32 and a tag of QS_QRP_REPORT_TAG_LEN bytes
 * over the header and body follows the body. A v1 peer that predates it refuses
 * the report (unknown flag: field), as DESIGN.md 7 asks of wire additions. */
#define QS_QRP_F_AUTH	      0x0002
#define QS_QRP_REPORT_TAG_LEN 16
/* Requests only: the client says how hard the request is, difficulty class 0
 * (easiest)..3 in bits 3-4, for cascade routing across model variants (quality.h,
 * docs/wire.md). Difficulty bits without bit 2 are refused; a request without it
 * gets the dataplane's estimate from its prompt length (router_view.h). A v1 peer
 * that predates it refuses such a request (unknown flag: field). */
#define QS_QRP_F_DIFFICULTY 0x0004
#define QS_QRP_F_DIFF_SHIFT 3
#define QS_QRP_F_DIFF_MASK  0x0018
#define QS_QRP_RF_DRAINING  0x0001

/* Host-order view of a QRP header. */
struct qs_qrp_hdr {
	qs_u8 type;
	qs_u16 flags;
	qs_u16 tenant;
	qs_u64 request_id;
	qs_u32 prompt_tokens;
	qs_u32 max_new_tokens;
	qs_u32 prefix_hash;
	qs_u8 priority;
	qs_u8 slo_class;
	qs_u16 hdr_len;
};

/* Host-order view of a backend report body. */
struct qs_qrp_report {
	qs_u16 backend_id;
	qs_u16 flags;
	qs_u32 waiting;
	qs_u32 running;
	qs_u32 kv_used;
	qs_u32 kv_total;
	qs_u32 decode_tps;
	qs_u32 ttft_p99_us;
	qs_u32 prefill_pending;
	qs_u64 received;
	qs_u64 completed;
	qs_u64 sent_ns;
};

/* Why a QRP message is refused; every dataplane counts drops by these. */
enum qs_qrp_err {
	QS_QRP_OK = 0,
	QS_QRP_E_SHORT, /* fewer bytes than a header (or a report body) */
	QS_QRP_E_MAGIC,
	QS_QRP_E_VERSION,
	QS_QRP_E_TYPE,
	QS_QRP_E_HDR_LEN, /* header length < 32, or beyond the payload */
	QS_QRP_E_FIELD,	  /* priority or SLO class > 3, unknown flags */
	QS_QRP_E__COUNT
};

QS_RC_FN qs_u16
qs_qrp_rd16(const qs_u8 *p)
{
	return (qs_u16)((qs_u16)p[0] << 8 | p[1]);
}

QS_RC_FN qs_u32
qs_qrp_rd32(const qs_u8 *p)
{
	return (qs_u32)p[0] << 24 | (qs_u32)p[1] << 16 | (qs_u32)p[2] << 8 | p[3];
}

QS_RC_FN qs_u64
qs_qrp_rd64(const qs_u8 *p)
{
	return (qs_u64)qs_qrp_rd32(p) << 32 | qs_qrp_rd32(p + 4);
}

QS_RC_FN void
qs_qrp_wr16(qs_u8 *p, qs_u16 v)
{
	p[0] = (qs_u8)(v >> 8);
	p[1] = (qs_u8)v;
}

QS_RC_FN void
qs_qrp_wr32(qs_u8 *p, qs_u32 v)
{
	qs_qrp_wr16(p, (qs_u16)(v >> 16));
	qs_qrp_wr16(p + 2, (qs_u16)v);
}

QS_RC_FN void
qs_qrp_wr64(qs_u8 *p, qs_u64 v)
{
	qs_qrp_wr32(p, (qs_u32)(v >> 32));
	qs_qrp_wr32(p + 4, (qs_u32)v);
}

/* Parse and validate a header from len payload bytes at p. */
QS_RC_FN enum qs_qrp_err
qs_qrp_parse_hdr(const qs_u8 *p, qs_u32 len, struct qs_qrp_hdr *h)
{
	if (len < QS_QRP_HDR_LEN)
		return QS_QRP_E_SHORT;
	if (qs_qrp_rd16(p) != QS_QRP_MAGIC)
		return QS_QRP_E_MAGIC;
	if (p[2] != QS_QRP_VERSION)
		return QS_QRP_E_VERSION;
	h->type = p[3];
	if (h->type < QS_QRP_T_REQUEST || h->type > QS_QRP_T_CANCEL)
		return QS_QRP_E_TYPE;
	h->flags = qs_qrp_rd16(p + 4);
	h->tenant = qs_qrp_rd16(p + 6);
	h->request_id = qs_qrp_rd64(p + 8);
	h->prompt_tokens = qs_qrp_rd32(p + 16);
	h->max_new_tokens = qs_qrp_rd32(p + 20);
	h->prefix_hash = qs_qrp_rd32(p + 24);
	h->priority = p[28];
	h->slo_class = p[29];
	h->hdr_len = qs_qrp_rd16(p + 30);
	if (h->hdr_len < QS_QRP_HDR_LEN || h->hdr_len > len)
		return QS_QRP_E_HDR_LEN;
	if (h->priority > 3 || h->slo_class > 3)
		return QS_QRP_E_FIELD;
	if (h->flags &
	    ~(QS_QRP_F_LAST | (h->type == QS_QRP_T_REPORT ? QS_QRP_F_AUTH : 0) |
	      (h->type == QS_QRP_T_REQUEST ? QS_QRP_F_DIFFICULTY | QS_QRP_F_DIFF_MASK : 0)))
		return QS_QRP_E_FIELD;
	if ((h->flags & QS_QRP_F_DIFF_MASK) && !(h->flags & QS_QRP_F_DIFFICULTY))
		return QS_QRP_E_FIELD;
	if ((h->flags & QS_QRP_F_AUTH) && h->hdr_len != QS_QRP_HDR_LEN)
		return QS_QRP_E_FIELD;
	return QS_QRP_OK;
}

/* Parse a report body; p points at the end of the header (hdr_len), len bytes remain.
 * The caller checks that an authenticated report also holds its tag
 * (qs_qrp_report_len). */
QS_RC_FN enum qs_qrp_err
qs_qrp_parse_report(const qs_u8 *p, qs_u32 len, struct qs_qrp_report *r)
{
	if (len < QS_QRP_REPORT_LEN)
		return QS_QRP_E_SHORT;
	r->backend_id = qs_qrp_rd16(p);
	r->flags = qs_qrp_rd16(p + 2);
	r->waiting = qs_qrp_rd32(p + 4);
	r->running = qs_qrp_rd32(p + 8);
	r->kv_used = qs_qrp_rd32(p + 12);
	r->kv_total = qs_qrp_rd32(p + 16);
	r->decode_tps = qs_qrp_rd32(p + 20);
	r->ttft_p99_us = qs_qrp_rd32(p + 24);
	r->prefill_pending = qs_qrp_rd32(p + 28);
	r->received = qs_qrp_rd64(p + 32);
	r->completed = qs_qrp_rd64(p + 40);
	r->sent_ns = qs_qrp_rd64(p + 48);
	if (r->flags & ~QS_QRP_RF_DRAINING)
		return QS_QRP_E_FIELD;
	return QS_QRP_OK;
}

/* A request's flags carrying difficulty class d (0..3). */
QS_RC_FN qs_u16
qs_qrp_difficulty_flags(qs_u32 d)
{
	return (qs_u16)(QS_QRP_F_DIFFICULTY | (d & 3) << QS_QRP_F_DIFF_SHIFT);
}

/* Bytes a report with these header flags needs after its header. */
QS_RC_FN qs_u32
qs_qrp_report_len(qs_u16 hdr_flags)
{
	return QS_QRP_REPORT_LEN + ((hdr_flags & QS_QRP_F_AUTH) ? QS_QRP_REPORT_TAG_LEN : 0);
}

/* Encode a header into 32 bytes at p (hdr_len is written as 32). */
QS_RC_FN void
qs_qrp_write_hdr(qs_u8 *p, const struct qs_qrp_hdr *h)
{
	qs_qrp_wr16(p, QS_QRP_MAGIC);
	p[2] = QS_QRP_VERSION;
	p[3] = h->type;
	qs_qrp_wr16(p + 4, h->flags);
	qs_qrp_wr16(p + 6, h->tenant);
	qs_qrp_wr64(p + 8, h->request_id);
	qs_qrp_wr32(p + 16, h->prompt_tokens);
	qs_qrp_wr32(p + 20, h->max_new_tokens);
	qs_qrp_wr32(p + 24, h->prefix_hash);
	p[28] = h->priority;
	p[29] = h->slo_class;
	qs_qrp_wr16(p + 30, QS_QRP_HDR_LEN);
}

/* Encode a report body into 56 bytes at p. */
QS_RC_FN void
qs_qrp_write_report(qs_u8 *p, const struct qs_qrp_report *r)
{
	qs_qrp_wr16(p, r->backend_id);
	qs_qrp_wr16(p + 2, r->flags);
	qs_qrp_wr32(p + 4, r->waiting);
	qs_qrp_wr32(p + 8, r->running);
	qs_qrp_wr32(p + 12, r->kv_used);
	qs_qrp_wr32(p + 16, r->kv_total);
	qs_qrp_wr32(p + 20, r->decode_tps);
	qs_qrp_wr32(p + 24, r->ttft_p99_us);
	qs_qrp_wr32(p + 28, r->prefill_pending);
	qs_qrp_wr64(p + 32, r->received);
	qs_qrp_wr64(p + 40, r->completed);
	qs_qrp_wr64(p + 48, r->sent_ns);
}

#endif /* QSTEER_WIRE_H */
