/*
 * agent_wire.h - the agent's response datagram (agent -> client, direct server
 * return), in restricted C like wire.h so clients, pcap tools and tests decode it
 * with the same code. QRP v1 has no response type, so responses use their own
 * magic ("QR") and are never confused with QRP messages (magic "QS").
 * docs/agent.md has the prose version.
 *
 *   off size field
 *     0   2  magic 0x5152 ("QR")
 *     2   1  version 1
 *     3   1  kind: 1 first token, 2 completion, 3 rejected
 *     4   2  backend id
 *     6   2  flags, 0
 *     8   8  request id
 *    16   4  tokens generated so far
 *    20   4  preemptions suffered (recomputed prefills)
 *    24   8  agent clock when the request was complete (ns)
 *    32   8  agent clock at the first token (ns; 0 if none yet)
 *    40   8  agent clock at this event (ns)
 */
#ifndef QSTEER_AGENT_WIRE_H
#define QSTEER_AGENT_WIRE_H

#include "wire.h"

#define QS_QRA_MAGIC   0x5152
#define QS_QRA_VERSION 1
#define QS_QRA_LEN     48

#define QS_QRA_K_FIRST	  1
#define QS_QRA_K_DONE	  2
#define QS_QRA_K_REJECTED 3
/* Answers to a cancel (QRP type 4), sent to the cancel's source: the request was
 * stopped and its KV blocks freed (tokens: generated until then), or the agent holds
 * no such request (it finished, was rejected or never arrived). */
#define QS_QRA_K_CANCELLED	4
#define QS_QRA_K_CANCEL_UNKNOWN 5

struct qs_qra_resp {
	qs_u8 kind;
	qs_u16 backend_id;
	qs_u64 request_id;
	qs_u32 tokens;
	qs_u32 preemptions;
	qs_u64 recv_ns;
	qs_u64 first_ns;
	qs_u64 event_ns;
};

QS_RC_FN void
qs_qra_write(qs_u8 *p, const struct qs_qra_resp *r)
{
	qs_qrp_wr16(p, QS_QRA_MAGIC);
	p[2] = QS_QRA_VERSION;
	p[3] = r->kind;
	qs_qrp_wr16(p + 4, r->backend_id);
	qs_qrp_wr16(p + 6, 0);
	qs_qrp_wr64(p + 8, r->request_id);
	qs_qrp_wr32(p + 16, r->tokens);
	qs_qrp_wr32(p + 20, r->preemptions);
	qs_qrp_wr64(p + 24, r->recv_ns);
	qs_qrp_wr64(p + 32, r->first_ns);
	qs_qrp_wr64(p + 40, r->event_ns);
}

/* 0 on success, else a QS_QRP_E_* reason (the same reasons as QRP). */
QS_RC_FN int
qs_qra_parse(const qs_u8 *p, qs_u32 len, struct qs_qra_resp *r)
{
	if (len < QS_QRA_LEN)
		return QS_QRP_E_SHORT;
	if (qs_qrp_rd16(p) != QS_QRA_MAGIC)
		return QS_QRP_E_MAGIC;
	if (p[2] != QS_QRA_VERSION)
		return QS_QRP_E_VERSION;
	r->kind = p[3];
	if (r->kind < QS_QRA_K_FIRST || r->kind > QS_QRA_K_CANCEL_UNKNOWN)
		return QS_QRP_E_TYPE;
	r->backend_id = qs_qrp_rd16(p + 4);
	if (qs_qrp_rd16(p + 6) != 0)
		return QS_QRP_E_FIELD;
	r->request_id = qs_qrp_rd64(p + 8);
	r->tokens = qs_qrp_rd32(p + 16);
	r->preemptions = qs_qrp_rd32(p + 20);
	r->recv_ns = qs_qrp_rd64(p + 24);
	r->first_ns = qs_qrp_rd64(p + 32);
	r->event_ns = qs_qrp_rd64(p + 40);
	return QS_QRP_OK;
}

#endif /* QSTEER_AGENT_WIRE_H */
