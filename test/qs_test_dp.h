/*
 * qs_test_dp.h - the dataplane configuration the dp-core tests and the view-parity
 * test start from: service 10.0.0.1, the packet clock, backends 100.. at
 * 10.1.0.10.. port 8000.., MAC 02:00:00:00:00:0i, capacity 1, each in its own
 * capacity class, named b0.., with the report-source defaults qs_dp_config_load
 * gives. Each test then changes what it is about.
 */
#ifndef QSTEER_TEST_QS_TEST_DP_H
#define QSTEER_TEST_QS_TEST_DP_H

#include <stdio.h>
#include <string.h>

#include "qsteer/dp_core.h"

static inline void
qs_test_dp_config(struct qs_dp_config *c, uint32_t n_backends)
{
	qs_dp_config_defaults(c);
	c->svc.has_ip4 = true;
	memcpy(c->svc.ip4, (uint8_t[]){10, 0, 0, 1}, 4);
	c->clock = QS_DP_CLOCK_PACKET;
	c->n_backends = n_backends;
	for (uint32_t i = 0; i < n_backends; i++) {
		struct qs_dp_backend_cfg *b = &c->be[i];

		memset(b, 0, sizeof(*b));
		b->id = (uint16_t)(100 + i);
		b->mac[0] = 2;
		b->mac[5] = (uint8_t)i;
		b->has_ip4 = true;
		memcpy(b->ip4, (uint8_t[]){10, 1, 0, (uint8_t)(10 + i)}, 4);
		b->port = (uint16_t)(8000 + i);
		b->capacity = 1;
		b->capacity_class = (uint8_t)(i % 8);
		snprintf(b->name, sizeof(b->name), "b%u", i);
		qs_dp_report_src_default(b);
	}
}

#endif
