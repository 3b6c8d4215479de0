/*
 * test_xdp_feat.c - the XDP program's split of the router-v1 row (xdp.h:
 * qs_xdp_feat_request, qs_xdp_feat_sent, QS_XDP_FEAT_* index sets) against
 * qs_feat_router_v1 itself, on edge values and random inputs:
 *   - the subsets write exactly qs_feat_router_v1's values at their indices and
 *     nothing else;
 *   - the index sets partition the row: request/global, prefix hit, backend;
 *   - the backend features do not depend on the request or the globals, and the
 *     request/global ones do not depend on the backend (what makes the per-CPU
 *     layer-1 cache and the once-per-packet request part exact);
 *   - qs_xdp_div1000 (the program's TTFT us -> ms) equals x / 1000 for every u32.
 * Host only (no BPF, no root).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "qsteer/xdp.h"
#include "qsteer/rng.h"

static uint64_t
rnd(uint64_t *s)
{
	return qs_splitmix64(s);
}

/* edge-heavy u32: 0, 1, powers of two and their neighbours, anything */
static uint32_t
val(uint64_t *s)
{
	uint64_t r = rnd(s);
	uint32_t b = (uint32_t)(r >> 8) % 32;

	switch (r % 5) {
	case 0:
		return (uint32_t)(r >> 3) % 3;
	case 1:
		return (1u << b) - 1;
	case 2:
		return 1u << b;
	case 3:
		return (1u << b) + 1;
	default:
		return (uint32_t)(r >> 32) >> (uint32_t)(r % 32);
	}
}

static void
random_inputs(uint64_t *s, struct qs_feat_request *rq, struct qs_feat_backend *be,
	      struct qs_feat_global *gl)
{
	rq->prompt_tokens = val(s);
	rq->max_new_tokens = val(s);
	rq->priority = (uint8_t)(rnd(s) % 6);
	rq->slo_class = (uint8_t)(rnd(s) % 6);
	be->waiting = val(s);
	be->running = val(s);
	be->kv_used = val(s);
	be->kv_total = val(s);
	be->prefill_pending = val(s);
	be->decode_tps = val(s);
	be->ttft_p99_ms = val(s);
	be->sent_reqs = val(s);
	be->sent_tokens = val(s);
	be->capacity_class = (uint8_t)(rnd(s) % 12);
	be->prefix_hit = (uint8_t)(rnd(s) & 1);
	gl->outstanding = val(s);
	gl->eligible = val(s) % 70;
}

int
main(void)
{
	uint64_t seed = 12345, bad = 0;
	uint32_t n, i, req = 0, be_set = 0;

	for (i = 0; i < QS_FR_COUNT; i++) {
		if (QS_XDP_FEAT_REQ_MASK & (1u << i))
			req++;
		if (i >= QS_XDP_FEAT_BE_FIRST && i <= QS_XDP_FEAT_BE_LAST) {
			be_set++;
			if (QS_XDP_FEAT_REQ_MASK & (1u << i))
				bad++; /* overlap */
		}
	}
	/* request/global + backend + the prefix hit = the whole row, no overlap */
	if (req + be_set + 1 != QS_FR_COUNT || (QS_XDP_FEAT_REQ_MASK & (1u << QS_FR_PREFIX_HIT)) ||
	    (QS_FR_PREFIX_HIT >= QS_XDP_FEAT_BE_FIRST && QS_FR_PREFIX_HIT <= QS_XDP_FEAT_BE_LAST) ||
	    QS_FR_SENT_REQS_LOG < QS_XDP_FEAT_BE_FIRST ||
	    QS_FR_SENT_REQS_LOG > QS_XDP_FEAT_BE_LAST ||
	    QS_FR_SENT_TOKENS_LOG < QS_XDP_FEAT_BE_FIRST ||
	    QS_FR_SENT_TOKENS_LOG > QS_XDP_FEAT_BE_LAST) {
		printf("feature index sets do not partition the row\n");
		return 1;
	}
	for (n = 0; n < 200000; n++) {
		struct qs_feat_request rq, rq2;
		struct qs_feat_backend be, be2;
		struct qs_feat_global gl, gl2;
		uint8_t ref[QS_FR_COUNT], a[QS_FR_COUNT], b[QS_FR_COUNT], r2[QS_FR_COUNT];

		random_inputs(&seed, &rq, &be, &gl);
		random_inputs(&seed, &rq2, &be2, &gl2);
		qs_feat_router_v1(&rq, &be, &gl, ref);
		memset(a, 0xee, sizeof(a));
		qs_xdp_feat_request(&rq, &gl, a);
		memset(b, 0xee, sizeof(b));
		qs_xdp_feat_sent(&be, b);
		for (i = 0; i < QS_FR_COUNT; i++) {
			int in_req = (QS_XDP_FEAT_REQ_MASK >> i) & 1;
			int in_sent = i == QS_FR_SENT_REQS_LOG || i == QS_FR_SENT_TOKENS_LOG;

			bad += in_req ? a[i] != ref[i] : a[i] != 0xee;
			bad += in_sent ? b[i] != ref[i] : b[i] != 0xee;
		}
		/* another request and globals: the backend features stay; another
		 * backend: the request/global features stay */
		qs_feat_router_v1(&rq2, &be, &gl2, r2);
		for (i = QS_XDP_FEAT_BE_FIRST; i <= QS_XDP_FEAT_BE_LAST; i++)
			bad += r2[i] != ref[i];
		qs_feat_router_v1(&rq, &be2, &gl, r2);
		for (i = 0; i < QS_FR_COUNT; i++)
			if ((QS_XDP_FEAT_REQ_MASK >> i) & 1)
				bad += r2[i] != ref[i];
	}
	printf("xdp feature split vs qs_feat_router_v1: %llu differences in %u rows\n",
	       (unsigned long long)bad, n);
	{
		uint32_t x = 0;
		uint64_t bad_div = 0;

		do
			bad_div += qs_xdp_div1000(x) != x / 1000;
		while (++x != 0);
		printf("qs_xdp_div1000 vs / 1000: %llu differences over every u32\n",
		       (unsigned long long)bad_div);
		bad += bad_div;
	}
	return bad ? 1 : 0;
}
