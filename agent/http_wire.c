/*
 * http_wire.c - the response datagram extension of agent_http.h (the engine
 * executor's body chunks), shared by the executor (agent/exec_http.c) and
 * qsteer-gw, which needs no libcurl.
 */
#include <string.h>

#include "qsteer/agent_http.h"

int
qs_gw_resp_parse(const uint8_t *p, uint32_t len, struct qs_gw_resp *g)
{
	uint8_t tmp[QS_QRA_LEN];
	int rc;

	memset(g, 0, sizeof(*g));
	if (len < QS_QRA_LEN + QS_GW_EXT_LEN)
		return QS_QRP_E_SHORT;
	memcpy(tmp, p, QS_QRA_LEN);
	/* kind 6 is the extension's own; agent_wire.h's parser knows kinds 1..5 */
	if (tmp[3] == QS_GW_K_BODY)
		tmp[3] = QS_QRA_K_FIRST;
	rc = qs_qra_parse(tmp, QS_QRA_LEN, &g->r);
	if (rc != QS_QRP_OK)
		return rc;
	g->r.kind = p[3];
	g->seq = qs_qrp_rd32(p + QS_QRA_LEN);
	g->status = qs_qrp_rd16(p + QS_QRA_LEN + 4);
	g->flags = qs_qrp_rd16(p + QS_QRA_LEN + 6);
	if (g->flags & ~QS_GW_RF_TRUNCATED)
		return QS_QRP_E_FIELD;
	g->data = p + QS_QRA_LEN + QS_GW_EXT_LEN;
	g->len = len - QS_QRA_LEN - QS_GW_EXT_LEN;
	if (g->len > QS_GW_CHUNK_MAX)
		return QS_QRP_E_FIELD;
	return QS_QRP_OK;
}

uint32_t
qs_gw_resp_write(uint8_t *p, const struct qs_gw_resp *g)
{
	uint32_t n = g->len > QS_GW_CHUNK_MAX ? QS_GW_CHUNK_MAX : g->len;

	qs_qra_write(p, &g->r);
	qs_qrp_wr32(p + QS_QRA_LEN, g->seq);
	qs_qrp_wr16(p + QS_QRA_LEN + 4, g->status);
	qs_qrp_wr16(p + QS_QRA_LEN + 6, g->flags);
	if (n)
		memcpy(p + QS_QRA_LEN + QS_GW_EXT_LEN, g->data, n);
	return QS_QRA_LEN + QS_GW_EXT_LEN + n;
}
