/*
 * rc_all.c - instantiates every restricted-C function of the headers the XDP program
 * and the CUDA agent share, so that compiling this file for BPF proves they really
 * are restricted C: no libc, no floats, nothing the BPF backend cannot lower. The
 * BPF object is then disassembled and refused if it divides by a register
 * (rc_bpf_check.sh); loop bounds are proven by the verifier in the XDP tests. The
 * host build runs the same code and checks values computed by hand.
 */
#include "qsteer/features.h"
#include "qsteer/int8.h"
#include "qsteer/le.h"
#include "qsteer/pkt_parse.h"
#include "qsteer/report_auth.h"
#include "qsteer/report_seq.h"
#include "qsteer/report_src.h"
#include "qsteer/router_view.h"
#include "qsteer/wire.h"

#ifdef __bpf__
#define RC_EXPORT __attribute__((section("tc"), used))
#else
#define RC_EXPORT
#endif

/* Outputs: the feature row, then a few scalars the host checks. */
struct rc_out {
	qs_u8 feat[QS_FR_COUNT];
	qs_s32 dot;
	qs_u8 requant;
	qs_u8 ratio;
	qs_u8 log2q;
	qs_u8 clamp;
	qs_u32 msb;
	qs_u8 class4;
	qs_s32 schema_inputs;
	qs_u32 argmax;
	qs_s32 parse_hdr;
	qs_s32 parse_report;
	qs_u64 report_received;
	qs_u64 le[3];	  /* le.h: 16, 32 and 64-bit loads after stores */
	qs_u32 csum;	  /* csum.h: 0x1234 after a word goes from 0 to 1 */
	qs_s32 pkt[3];	  /* pkt_parse.h: a runt, an ARP frame, IPv4 with a zero checksum */
	qs_s32 src_ok[4]; /* qs_report_src_ok: right v4, wrong v4, right v6, wrong port */
	qs_s32 key_hex;
	qs_s32 auth_ok[3]; /* qs_report_auth_ok: signed, one bit flipped, untagged */
	/* qs_report_seq_check: newer; unkeyed old while fresh, after max_age; keyed old;
	 * nothing held */
	qs_s32 seq_v[5];
	/* router_view.h: flags of a fresh full report, a stale one; the global over
	 * backends 0 and 2 of three; ttft in ms */
	qs_u32 rv_flags[2];
	struct qs_feat_global rv_gl;
	qs_u32 rv_ttft_ms;
};

RC_EXPORT int rc_all(const qs_u8 *x, const qs_s8 *w, struct rc_out *o);

RC_EXPORT int
rc_all(const qs_u8 *x, const qs_s8 *w, struct rc_out *o)
{
	struct qs_feat_request rq = {.prompt_tokens = x[0] * 97u,
				     .max_new_tokens = x[1],
				     .priority = x[2],
				     .slo_class = x[3]};
	struct qs_feat_backend be = {.waiting = x[4],
				     .running = x[5],
				     .kv_used = x[6],
				     .kv_total = x[7],
				     .prefix_hit = x[8] & 1};
	struct qs_feat_global gl = {.outstanding = x[9], .eligible = x[10]};
	struct qs_qrp_hdr h = {.type = QS_QRP_T_REPORT, .tenant = x[0], .request_id = x[1]};
	struct qs_qrp_report rep = {.backend_id = 3, .received = 0x123456789ull};
	qs_u8 pkt[QS_QRP_AUTH_MSG_LEN + QS_QRP_REPORT_TAG_LEN];
	struct qs_report_key key;
	qs_s32 v[4];
	struct qs_report_src rs = {
	    .has_ip4 = 1, .has_ip6 = 1, .ip4 = {10, 0, 1, 10}, .ip6 = {0xfd, 1}};
	qs_u8 a4[4] = {10, 0, 1, 10}, b4[4] = {10, 0, 1, 11}, a6[16] = {0xfd, 1};

	o->src_ok[0] = qs_report_src_ok(&rs, 0, a4, x[0]);
	o->src_ok[1] = qs_report_src_ok(&rs, 0, b4, x[0]);
	o->src_ok[2] = qs_report_src_ok(&rs, 1, a6, x[0]);
	rs.port = 7000;
	o->src_ok[3] = qs_report_src_ok(&rs, 0, a4, x[0]);
	qs_qrp_write_hdr(pkt, &h);
	qs_qrp_write_report(pkt + QS_QRP_HDR_LEN, &rep);
	o->parse_hdr = qs_qrp_parse_hdr(pkt, sizeof(pkt), &h);
	o->parse_report =
	    qs_qrp_parse_report(pkt + h.hdr_len, (qs_u32)sizeof(pkt) - h.hdr_len, &rep);
	o->report_received = rep.received;
	{
		qs_u8 b[8];

		qs_le_wr64(b, 0x0102030405060708ull);
		o->le[0] = qs_le_rd16(b);
		o->le[1] = qs_le_rd32(b + 4);
		qs_le_wr32(b, 0xa1b2c3d4u);
		qs_le_wr16(b + 4, 0xe5f6);
		o->le[2] = qs_le_rd64(b);
	}
	{
		qs_u8 f[42] = {0};
		struct qs_pkt_service svc = {0};
		struct qs_pkt_l4 l;

		svc.port = QS_QRP_PORT;
		o->pkt[0] = qs_pkt_parse(f, f + 10, &svc, &l);
		f[12] = 0x08;
		f[13] = 0x06;
		o->pkt[1] = qs_pkt_parse(f, f + 42, &svc, &l);
		f[13] = 0x00;
		f[14] = 0x45;
		f[17] = 28;
		f[23] = QS_PKT_PROTO_UDP;
		o->pkt[2] = qs_pkt_parse(f, f + 42, &svc, &l);
		f[1] = 1;
		o->csum = qs_csum_replace(0x1234, f + 2, f, 2);
	}
	o->key_hex = qs_report_key_hex("00112233445566778899aabbccddeeff", &key);
	pkt[5] |= QS_QRP_F_AUTH;
	qs_report_sign(key.key, pkt);
	o->auth_ok[0] = qs_report_auth_ok(&key, QS_QRP_F_AUTH, pkt);
	pkt[x[0] & 63] ^= 1;
	o->auth_ok[1] = qs_report_auth_ok(&key, QS_QRP_F_AUTH, pkt);
	o->auth_ok[2] = qs_report_auth_ok(&key, 0, pkt);
	o->seq_v[0] = qs_report_seq_check(1, 7, 8u + x[0], 0, 100, 105, 10);
	o->seq_v[1] = qs_report_seq_check(1, 70, x[0], 0, 100, 110, 10);
	o->seq_v[2] = qs_report_seq_check(1, 70, x[0], 0, 100, 111, 10);
	o->seq_v[3] = qs_report_seq_check(1, 70, 70, 1, 100, 1000000, 10);
	o->seq_v[4] = qs_report_seq_check(0, 70, x[0], 1, 0, 5, 10);
	{
		struct qs_qrp_report rr = {.waiting = x[4],
					   .running = x[5],
					   .kv_used = 8,
					   .kv_total = 8,
					   .ttft_p99_us = 1234567,
					   .flags = QS_QRP_RF_DRAINING};
		/* Zeroed: qs_rview_backend leaves the router's own fields (sent counts) to
		 * the caller, and vb[2] = vb[0] would otherwise sum stack garbage (0 by luck
		 * on x86-64, not under aarch64). */
		struct qs_feat_backend vb[3] = {{0}};

		o->rv_flags[0] = qs_rview_backend(&rr, qs_rview_fresh(1, 100, 110, 10), &vb[0]);
		o->rv_ttft_ms = vb[0].ttft_p99_ms;
		o->rv_flags[1] = qs_rview_backend(&rr, qs_rview_fresh(1, 100, 111, 10), &vb[1]);
		vb[2] = vb[0];
		vb[0].sent_reqs = 2;
		vb[1].waiting = 1000; /* masked: must not count */
		qs_rview_global(vb, 3, 5, &o->rv_gl);
	}
	qs_feat_router_v1(&rq, &be, &gl, o->feat);
	o->dot = qs_int8_dot(w, o->feat, QS_FR_COUNT, 5);
	o->requant = qs_int8_requant(x[11] * 1000, 0x40000000, 31);
	o->ratio = qs_feat_ratio_q7(x[12], x[13]);
	o->log2q = qs_feat_log2q(x[14] * 8u, 3);
	o->clamp = qs_feat_clamp7(x[15] * 2u);
	o->msb = qs_feat_msb(x[14] * 1000u + 1);
	o->class4 = qs_feat_class4(x[2]);
	o->schema_inputs = qs_feat_schema_inputs(x[3] & 3);
	v[0] = o->dot;
	v[1] = o->requant;
	v[2] = o->ratio;
	v[3] = o->log2q;
	o->argmax = qs_int8_argmax(v, 4);
	return 0;
}

#ifndef __bpf__
#include <stdio.h>

int main(void);

#define EXPECT(what, got, want)                                                                    \
	do {                                                                                       \
		if ((long long)(got) != (long long)(want)) {                                       \
			printf("%s: got %lld, want %lld\n", what, (long long)(got),                \
			       (long long)(want));                                                 \
			bad++;                                                                     \
		}                                                                                  \
	} while (0)

int
main(void)
{
	/* x[14] = 125 -> log2q(1000, 3) = 87 (docs/features.md) */
	qs_u8 x[16] = {10, 20, 1, 1, 3, 4, 5, 10, 1, 7, 3, 5, 1, 4, 125, 100};
	qs_s8 w[QS_FR_COUNT] = {1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6, 7, -7, 8, -8};
	struct rc_out o;
	int bad = 0;

	rc_all(x, w, &o);
	EXPECT("parse_hdr", o.parse_hdr, QS_QRP_OK);
	EXPECT("parse_report", o.parse_report, QS_QRP_OK);
	EXPECT("report received", o.report_received, 0x123456789ull);
	EXPECT("le rd16", o.le[0], 0x0708);
	EXPECT("le rd32", o.le[1], 0x01020304);
	EXPECT("le rd64 after wr32, wr16", o.le[2], 0x0102e5f6a1b2c3d4ull);
	EXPECT("csum replace", o.csum, 0x1233);
	EXPECT("pkt runt", o.pkt[0], QS_DP_D_ETH_SHORT);
	EXPECT("pkt arp", o.pkt[1], QS_DP_D_NON_QRP);
	EXPECT("pkt ipv4 checksum", o.pkt[2], QS_DP_D_IP_CSUM);
	EXPECT("report key hex", o.key_hex, 0);
	EXPECT("report signed", o.auth_ok[0], 1);
	EXPECT("report tampered", o.auth_ok[1], 0);
	EXPECT("report untagged", o.auth_ok[2], 0);
	EXPECT("seq newer", o.seq_v[0], QS_REPORT_SEQ_TAKE);
	EXPECT("seq unkeyed old, held fresh", o.seq_v[1], QS_REPORT_SEQ_OLD);
	EXPECT("seq unkeyed old, held aged out", o.seq_v[2], QS_REPORT_SEQ_TAKE);
	EXPECT("seq keyed equal, however old", o.seq_v[3], QS_REPORT_SEQ_REPLAY);
	EXPECT("seq nothing held", o.seq_v[4], QS_REPORT_SEQ_TAKE);
	EXPECT("requant(5000, 0.5)", o.requant, 127); /* 2500 saturates */
	EXPECT("ratio_q7(1, 4)", o.ratio, 32);
	EXPECT("log2q(1000, 3)", o.log2q, 87);
	EXPECT("clamp7(200)", o.clamp, 127);
	EXPECT("msb(125001)", o.msb, 16);
	EXPECT("class4(1)", o.class4, 42);
	EXPECT("schema_inputs(router-v1)", o.schema_inputs, QS_FR_COUNT);
	EXPECT("feature prompt log2q(970, 3)", o.feat[QS_FR_PROMPT_LOG], 87);
	EXPECT("feature kv ratio_q7(5, 10)", o.feat[QS_FR_KV_UTIL], 64);
	EXPECT("feature prefix hit", o.feat[QS_FR_PREFIX_HIT], 127);
	EXPECT("argmax (requant wins)", o.argmax, 1);
	EXPECT("view: fresh, draining, full", o.rv_flags[0],
	       QS_RVIEW_FRESH | QS_RVIEW_DRAINING | QS_RVIEW_KV_FULL);
	EXPECT("view: stale after max age", o.rv_flags[1], 0);
	EXPECT("view: ttft 1234567 us in ms", o.rv_ttft_ms, 1234);
	EXPECT("view: global outstanding over 0 and 2", o.rv_gl.outstanding, 2 * (3 + 4) + 2);
	EXPECT("view: global eligible", o.rv_gl.eligible, 2);
	EXPECT("report source: its address", o.src_ok[0], 1);
	EXPECT("report source: another address", o.src_ok[1], 0);
	EXPECT("report source: its ip6", o.src_ok[2], 1);
	EXPECT("report source: wrong port", o.src_ok[3], 0);
	{
		qs_s32 want = 5;

		for (int i = 0; i < QS_FR_COUNT; i++)
			want += w[i] * o.feat[i];
		EXPECT("dot", o.dot, want);
	}
	if (!bad)
		printf("restricted-C functions give the hand-computed values\n");
	return bad ? 1 : 0;
}
#endif
