/*
 * packet_fast.c - the exported parse and rewrite (dp_core.h): packet_fast.h's inline
 * fast path, which falls back to the general parser (packet.c), compiled once for
 * callers outside the burst loop (qsteer-pcap, the tests, the fuzz target).
 */
#include "qsteer/dp_core.h"
#include "packet_fast.h"

void
qs_dp_parse(const struct qs_dp_config *c, const uint8_t *buf, uint32_t len, struct qs_dp_pkt *out)
{
	qs_dp_parse_inl(c, buf, len, out);
}

int
qs_dp_rewrite(uint8_t *buf, const struct qs_dp_pkt *p, const struct qs_dp_backend_cfg *b)
{
	return qs_dp_rewrite_inl(buf, p, b);
}
