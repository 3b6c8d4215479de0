/*
 * report.c - encoding what the agent sends: QRP type-3 backend reports to the
 * dataplanes (wire.h does the bytes) and response datagrams to clients
 * (agent_wire.h does the bytes).
 */
#include <string.h>

#include "qsteer/agent.h"
#include "qsteer/agent_wire.h"

uint32_t
qs_agent_report_encode(const struct qs_qrp_report *r, uint64_t seq, const struct qs_report_key *k,
		       uint8_t *buf)
{
	struct qs_qrp_hdr h;
	bool sign = k && k->has_key;

	memset(&h, 0, sizeof(h));
	h.type = QS_QRP_T_REPORT;
	h.flags = (uint16_t)(QS_QRP_F_LAST | (sign ? QS_QRP_F_AUTH : 0));
	h.request_id = seq;
	h.hdr_len = QS_QRP_HDR_LEN;
	qs_qrp_write_hdr(buf, &h);
	qs_qrp_write_report(buf + QS_QRP_HDR_LEN, r);
	if (!sign)
		return QS_QRP_AUTH_MSG_LEN;
	qs_report_sign(k->key, buf);
	return QS_QRP_AUTH_MSG_LEN + QS_QRP_REPORT_TAG_LEN;
}

uint32_t
qs_agent_event_encode(const struct qs_agent_event *e, uint16_t backend_id, uint8_t *buf)
{
	struct qs_qra_resp r;

	memset(&r, 0, sizeof(r));
	r.kind = e->kind;
	r.backend_id = backend_id;
	r.request_id = e->request_id;
	r.tokens = e->tokens;
	r.preemptions = e->preemptions;
	r.recv_ns = e->arrival_ns;
	r.first_ns = e->first_ns;
	r.event_ns = e->event_ns;
	qs_qra_write(buf, &r);
	return QS_QRA_LEN;
}
