/*
 * rc_all.c - instantiates every restricted-C function so that compiling this file
 * for BPF (clang -target bpf) proves the shared headers really are restricted C: no
 * libc, no floats, nothing the BPF backend cannot lower. The host build of the same
 * file runs it as a smoke test.
 */
#include "qsteer/features.h"
#include "qsteer/int8.h"
#include "qsteer/wire.h"

#ifdef __bpf__
#define RC_EXPORT __attribute__((section("tc"), used))
#else
#define RC_EXPORT
#endif

RC_EXPORT int rc_all(const qs_u8 *x, const qs_s8 *w, qs_u8 *out);

RC_EXPORT int
rc_all(const qs_u8 *x, const qs_s8 *w, qs_u8 *out)
{
	struct qs_feat_request rq = { .prompt_tokens = x[0] * 97u, .max_new_tokens = x[1],
				      .priority = x[2], .slo_class = x[3] };
	struct qs_feat_backend be = { .waiting = x[4], .running = x[5], .kv_used = x[6],
				      .kv_total = x[7], .prefix_hit = x[8] & 1 };
	struct qs_feat_global gl = { .outstanding = x[9], .eligible = x[10] };
	struct qs_qrp_hdr h;
	struct qs_qrp_report rep;
	qs_u8 pkt[QS_QRP_HDR_LEN + QS_QRP_REPORT_LEN];
	qs_s32 acc[4];
	qs_u32 i;

	for (i = 0; i < sizeof(pkt); i++)
		pkt[i] = x[i & 15];
	h.type = QS_QRP_T_REPORT;
	h.flags = 0;
	h.tenant = x[0];
	h.request_id = x[1];
	h.prompt_tokens = h.max_new_tokens = h.prefix_hash = 0;
	h.priority = h.slo_class = 0;
	qs_qrp_write_hdr(pkt, &h);
	if (qs_qrp_parse_hdr(pkt, sizeof(pkt), &h) != QS_QRP_OK)
		return -1;
	if (qs_qrp_parse_report(pkt + h.hdr_len, sizeof(pkt) - h.hdr_len, &rep) == QS_QRP_OK)
		qs_qrp_write_report(pkt + QS_QRP_HDR_LEN, &rep);

	qs_feat_router_v1(&rq, &be, &gl, out);
	acc[0] = qs_int8_dot(w, out, QS_FR_COUNT, 5);
	acc[1] = qs_int8_requant(acc[0], 0x40000000, 31);
	acc[2] = qs_feat_ratio_q7(x[11], x[12]);
	acc[3] = qs_feat_log2q(x[13], 3);
	return (int)qs_int8_argmax(acc, 4);
}

#ifndef __bpf__
int main(void);

int
main(void)
{
	qs_u8 x[16] = { 10, 20, 1, 2, 3, 4, 5, 10, 1, 7, 3, 5, 10, 200, 0, 0 }, out[QS_FR_COUNT];
	qs_s8 w[QS_FR_COUNT] = { 1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6, 7, -7, 8, -8 };

	return rc_all(x, w, out) >= 0 ? 0 : 1;
}
#endif
