/*
 * test_dp_core.c - unit tests of the dataplane core on byte buffers: the parser
 * against every malformed case and every truncation, checksums against a
 * straightforward reference, backend-table ageing, request-id ageing and eviction,
 * the decision against an independent scalar recomputation, shadow, canary,
 * fallback and drain.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "qs_test.h"

#include "qs_test_dp.h"
#include "qsteer/dp_core.h"
#include "qsteer/router_view.h"

#define MS 1000000ull

static struct qs_dp_config cfg;
static struct qs_dp_shared *sh;
static struct qs_dp_worker *wk;
static struct qs_policy *polA, *polB;

static void
make_cfg(void)
{
	uint32_t i;

	qs_test_dp_config(&cfg, 8);
	cfg.svc.has_ip6 = true;
	cfg.svc.ip6[0] = 0xfd;
	cfg.svc.ip6[15] = 1;
	for (i = 0; i < 8; i++) {
		struct qs_dp_backend_cfg *b = &cfg.be[i];

		b->has_ip6 = i != 3;
		b->ip6[0] = 0xfd;
		b->ip6[1] = 1;
		b->ip6[15] = (uint8_t)(10 + i);
		qs_dp_report_src_default(b); /* its addresses changed */
	}
}

static struct qs_policy *
rand_policy(uint64_t seed)
{
	static int8_t w1[32 * 16], w2[16 * 32], w3[16];
	static int32_t b1[32], b2[16], b3[1], m1[32], m2[16];
	static uint8_t s1[32], s2[16];
	struct qs_q8_desc d;
	uint8_t *buf = malloc(1 << 16);
	size_t len;
	char msg[256];
	struct qs_policy *p = NULL;
	struct qs_policy_load_opts lo = {QS_SCHEMA_ROUTER_V1, QS_Q8_KIND_SCORER, NULL};
	int i;

	for (i = 0; i < 512; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		w1[i] = (int8_t)((int)((seed >> 33) % 255) - 127);
		w2[i] = (int8_t)((int)((seed >> 41) % 255) - 127);
	}
	for (i = 0; i < 16; i++)
		w3[i] = (int8_t)((int)((seed >> (i + 3)) % 255) - 127);
	for (i = 0; i < 32; i++) {
		b1[i] = (int32_t)(i * 97 % 2001) - 1000;
		m1[i] = 1 << 20;
		s1[i] = 32;
	}
	for (i = 0; i < 16; i++) {
		b2[i] = 0;
		m2[i] = 1 << 22;
		s2[i] = 30;
	}
	b3[0] = 0;
	memset(&d, 0, sizeof(d));
	d.kind = QS_Q8_KIND_SCORER;
	d.schema = QS_SCHEMA_ROUTER_V1;
	d.name = "t";
	d.n_layers = 3;
	d.layer[0] = (struct qs_q8_layer_desc){16, 32, w1, b1, m1, s1};
	d.layer[1] = (struct qs_q8_layer_desc){32, 16, w2, b2, m2, s2};
	d.layer[2] = (struct qs_q8_layer_desc){16, 1, w3, b3, NULL, NULL};
	assert_int_equal(qs_q8_write(&d, buf, 1 << 16, &len, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_policy_load(buf, len, "t", &lo, &p, msg, sizeof(msg)), QS_OK);
	free(buf);
	return p;
}

static int
setup(void **state)
{
	(void)state;
	make_cfg();
	sh = aligned_alloc(64, (sizeof(*sh) + 63) & ~(size_t)63);
	wk = aligned_alloc(64, sizeof(*wk));
	qs_dp_shared_init(sh, &cfg);
	qs_dp_worker_init(wk, sh, QS_KERNEL_AUTO, 0);
	if (!polA)
		polA = rand_policy(1);
	if (!polB)
		polB = rand_policy(2);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	free(sh);
	free(wk);
	return 0;
}

static void
flow(struct qs_dp_flow *f, bool v6, uint16_t vlan, uint16_t dport)
{
	memset(f, 0, sizeof(*f));
	f->src_mac[0] = 2;
	f->src_mac[5] = 0xcc;
	f->dst_mac[0] = 2;
	f->dst_mac[5] = 0x01;
	f->ipv6 = v6;
	f->vlan = vlan;
	if (v6) {
		f->src_ip[0] = 0xfd;
		f->src_ip[1] = 9;
		f->src_ip[15] = 7;
		memcpy(f->dst_ip, cfg.svc.ip6, 16);
	} else {
		memcpy(f->src_ip, (uint8_t[]){192, 168, 0, 7}, 4);
		memcpy(f->dst_ip, cfg.svc.ip4, 4);
	}
	f->sport = 40000;
	f->dport = dport;
}

static uint32_t
req(uint8_t *buf, uint8_t type, uint64_t id, uint16_t flags, uint32_t prompt, bool v6,
    uint32_t prefix)
{
	struct qs_dp_flow f;
	struct qs_qrp_hdr h = {type, flags, 1, id, prompt, 50, prefix, 1, 2, 32};

	flow(&f, v6, 0, cfg.svc.port);
	return qs_dp_build_qrp(buf, 2048, &f, &h, NULL, 40);
}

/* A report of be_id from src (4 or 16 bytes by v6; NULL: the client's address). */
static uint32_t
report_src(uint8_t *buf, uint16_t be_id, uint64_t seq, uint32_t waiting, uint16_t flags, bool v6,
	   const uint8_t *src, uint16_t sport)
{
	struct qs_dp_flow f;
	struct qs_qrp_hdr h = {QS_QRP_T_REPORT, 0, 0, seq, 0, 0, 0, 0, 0, 32};
	struct qs_qrp_report r = {be_id, flags, waiting, 3, 100, 4096, 900, 30000, 50, seq, seq, 0};

	flow(&f, v6, 0, cfg.svc.report_port);
	if (src)
		memcpy(f.src_ip, src, v6 ? 16 : 4);
	f.sport = sport;
	return qs_dp_build_qrp(buf, 2048, &f, &h, &r, 0);
}

/* A report from the backend's own IPv4 address, as its agent sends it. */
static uint32_t
report(uint8_t *buf, uint16_t be_id, uint64_t seq, uint32_t waiting, uint16_t flags)
{
	int bi = qs_dp_backend_index(&cfg, be_id);

	return report_src(buf, be_id, seq, waiting, flags, false, bi >= 0 ? cfg.be[bi].ip4 : NULL,
			  40000);
}

/* Run one burst of n frames at now (ms). */
static void
burst(uint8_t (*frames)[2048], uint32_t *lens, uint32_t n, uint64_t now_ms,
      const struct qs_dp_policy_set *set)
{
	uint8_t *b[QS_DP_BURST];
	uint32_t i;

	for (i = 0; i < n; i++)
		b[i] = frames[i];
	qs_dp_process(wk, sh, set, b, lens, n, now_ms * MS);
}

static void
report_all(uint64_t now_ms, uint64_t seq)
{
	uint8_t fr[8][2048];
	uint32_t lens[8], i;
	struct qs_dp_policy_set set = {0};

	for (i = 0; i < 8; i++)
		lens[i] = report(fr[i], (uint16_t)(100 + i), seq, 2 * i + 1, 0);
	set.builtin = QS_BASELINE_LEAST_REQUESTS;
	burst(fr, lens, 8, now_ms, &set);
}

/*
 * Reports are believed only from their backend's configured source: a forged one
 * (another address, a huge sequence number, an empty backend) is dropped as
 * report-source and neither changes the view nor locks the real agent out; a
 * configured source port is enforced; a family the backend has no address in is
 * refused; report_source = any believes everyone.
 */
static void
test_report_source(void **state)
{
	static uint8_t fr[4][2048];
	uint32_t lens[4];
	struct qs_dp_policy_set set = {0};
	const uint8_t forger[4] = {192, 168, 0, 66};
	uint8_t v6src[16] = {0xfd, 1};

	(void)state;
	set.builtin = QS_BASELINE_LEAST_REQUESTS;
	lens[0] = report(fr[0], 100, 5, 200, 0);
	burst(fr, lens, 1, 1, &set);
	assert_int_equal(sh->be[0].rep.waiting, 200);
	/* forged: dropped by reason, the held report stays */
	lens[0] = report_src(fr[0], 100, 1000000000ull, 0, 0, false, forger, 40000);
	burst(fr, lens, 1, 2, &set);
	assert_int_equal(wk->b.pkt[0].drop, QS_DP_D_REPORT_SOURCE);
	assert_int_equal(wk->b.verdict[0], QS_DP_V_DROP);
	assert_int_equal(wk->ctr.drop[QS_DP_D_REPORT_SOURCE], 1);
	assert_int_equal(sh->be[0].rep.waiting, 200);
	assert_int_equal(sh->be[0].report_seq, 5);
	assert_string_equal(qs_dp_drop_name(QS_DP_D_REPORT_SOURCE), "report-source");
	/* the real agent is not locked out */
	lens[0] = report(fr[0], 100, 6, 190, 0);
	burst(fr, lens, 1, 3, &set);
	assert_int_equal(sh->be[0].rep.waiting, 190);
	assert_int_equal(wk->ctr.reports_ignored, 0);
	/* a replay of an older report from the right source: ignored, not applied */
	lens[0] = report(fr[0], 100, 5, 1, 0);
	burst(fr, lens, 1, 4, &set);
	assert_int_equal(wk->ctr.reports_ignored, 1);
	assert_int_equal(sh->be[0].rep.waiting, 190);
	/* a configured source port is enforced */
	sh->cfg.be[1].report_src.port = 5555;
	lens[0] = report_src(fr[0], 101, 1, 7, 0, false, cfg.be[1].ip4, 40000);
	lens[1] = report_src(fr[1], 101, 2, 8, 0, false, cfg.be[1].ip4, 5555);
	burst(fr, lens, 2, 5, &set);
	assert_int_equal(wk->b.pkt[0].drop, QS_DP_D_REPORT_SOURCE);
	assert_int_equal(wk->b.verdict[1], QS_DP_V_CONSUMED);
	assert_int_equal(sh->be[1].rep.waiting, 8);
	sh->cfg.be[1].report_src.port = 0;
	/* over IPv6: from its ip6, yes; backend 103 has no ip6, so never */
	memcpy(v6src, cfg.be[2].ip6, 16);
	lens[0] = report_src(fr[0], 102, 1, 9, 0, true, v6src, 40000);
	v6src[15]++;
	lens[1] = report_src(fr[1], 102, 2, 3, 0, true, v6src, 40000);
	lens[2] = report_src(fr[2], 103, 1, 3, 0, true, cfg.be[2].ip6, 40000);
	burst(fr, lens, 3, 6, &set);
	assert_int_equal(wk->b.verdict[0], QS_DP_V_CONSUMED);
	assert_int_equal(wk->b.pkt[1].drop, QS_DP_D_REPORT_SOURCE);
	assert_int_equal(wk->b.pkt[2].drop, QS_DP_D_REPORT_SOURCE);
	assert_int_equal(sh->be[2].rep.waiting, 9);
	/* report_source = any: the forger is believed (and that is the operator's call) */
	sh->cfg.be[0].report_src.any = 1;
	lens[0] = report_src(fr[0], 100, 1000000000ull, 0, 0, false, forger, 40000);
	burst(fr, lens, 1, 7, &set);
	assert_int_equal(wk->b.verdict[0], QS_DP_V_CONSUMED);
	assert_int_equal(sh->be[0].rep.waiting, 0);
	sh->cfg.be[0].report_src.any = 0;
}

/*
 * A backend with a report key believes only tagged reports with the right tag and
 * a rising sequence: untagged, wrongly keyed, replayed (also after the held report
 * aged out) and truncated ones are dropped by reason and change nothing; the tag
 * flag is refused on a request.
 */
static void
test_report_auth(void **state)
{
	static uint8_t fr[4][2048];
	uint32_t lens[4];
	struct qs_dp_policy_set set = {0};
	struct qs_report_key key, wrong;
	struct qs_qrp_hdr h = {QS_QRP_T_REPORT, 0, 0, 0, 0, 0, 0, 0, 0, 32};
	struct qs_qrp_report r = {100, 0, 0, 3, 100, 4096, 900, 30000, 50, 1, 1, 0};
	struct qs_dp_flow f;
	struct qs_dp_pkt p;
	uint8_t pay[QS_QRP_AUTH_MSG_LEN + QS_QRP_REPORT_TAG_LEN];
	uint64_t base = 1700000000ull * 1000000000ull; /* the agent's wall-clock start */

	(void)state;
	set.builtin = QS_BASELINE_LEAST_REQUESTS;
	assert_int_equal(qs_report_key_hex("000102030405060708090a0b0c0d0e0f\n", &key), 0);
	assert_int_equal(qs_report_key_hex("f00102030405060708090a0b0c0d0e0f", &wrong), 0);
	sh->cfg.be[0].report_key = key;
	flow(&f, false, 0, cfg.svc.report_port);
	memcpy(f.src_ip, cfg.be[0].ip4, 4);
	f.sport = 40000;
	/* signed: believed */
	h.request_id = base + 1;
	r.waiting = 200;
	lens[0] = qs_dp_build_report(fr[0], 2048, &f, &h, &r, &key);
	burst(fr, lens, 1, 1, &set);
	assert_int_equal(wk->b.verdict[0], QS_DP_V_CONSUMED);
	assert_int_equal(sh->be[0].rep.waiting, 200);
	/* unsigned (from the right source), wrong key, huge sequence: report-auth */
	h.request_id = base + 1000000000ull;
	r.waiting = 0;
	lens[0] = qs_dp_build_report(fr[0], 2048, &f, &h, &r, NULL);
	lens[1] = qs_dp_build_report(fr[1], 2048, &f, &h, &r, &wrong);
	burst(fr, lens, 2, 2, &set);
	assert_int_equal(wk->b.pkt[0].drop, QS_DP_D_REPORT_AUTH);
	assert_int_equal(wk->b.pkt[1].drop, QS_DP_D_REPORT_AUTH);
	assert_int_equal(wk->ctr.drop[QS_DP_D_REPORT_AUTH], 2);
	assert_int_equal(sh->be[0].rep.waiting, 200);
	assert_string_equal(qs_dp_drop_name(QS_DP_D_REPORT_AUTH), "report-auth");
	/* the agent's next report still goes in */
	h.request_id = base + 2;
	r.waiting = 190;
	lens[0] = qs_dp_build_report(fr[0], 2048, &f, &h, &r, &key);
	burst(fr, lens, 1, 3, &set);
	assert_int_equal(sh->be[0].rep.waiting, 190);
	/* a replay of the first, now and after the held report aged out: report-replay */
	h.request_id = base + 1;
	r.waiting = 200;
	lens[0] = qs_dp_build_report(fr[0], 2048, &f, &h, &r, &key);
	lens[1] = qs_dp_build_report(fr[1], 2048, &f, &h, &r, &key);
	burst(fr, lens, 1, 4, &set);
	burst(fr + 1, lens + 1, 1, 500, &set);
	assert_int_equal(wk->ctr.drop[QS_DP_D_REPORT_REPLAY], 2);
	assert_int_equal(sh->be[0].rep.waiting, 190);
	assert_int_equal(sh->be[0].report_seq, base + 2);
	assert_string_equal(qs_dp_drop_name(QS_DP_D_REPORT_REPLAY), "report-replay");
	/* a tag cut short is a short report, before anything else is looked at */
	h.request_id = base + 3;
	h.flags = QS_QRP_F_AUTH;
	qs_qrp_write_hdr(pay, &h);
	qs_qrp_write_report(pay + QS_QRP_HDR_LEN, &r);
	qs_report_sign(key.key, pay);
	lens[0] = qs_dp_build_udp(fr[0], 2048, &f, pay, sizeof(pay) - 1);
	qs_dp_parse(&cfg, fr[0], lens[0], &p);
	assert_int_equal(p.cls, QS_DP_C_DROP);
	assert_int_equal(p.drop, QS_DP_D_QRP_SHORT);
	lens[0] = qs_dp_build_udp(fr[0], 2048, &f, pay, sizeof(pay));
	qs_dp_parse(&cfg, fr[0], lens[0], &p);
	assert_int_equal(p.cls, QS_DP_C_QRP);
	h.flags = 0;
	/* a backend without a key takes signed reports on their source alone */
	memcpy(f.src_ip, cfg.be[1].ip4, 4);
	r.backend_id = 101;
	r.waiting = 77;
	lens[0] = qs_dp_build_report(fr[0], 2048, &f, &h, &r, &wrong);
	burst(fr, lens, 1, 501, &set);
	assert_int_equal(sh->be[1].rep.waiting, 77);
	/* the tag flag means nothing on a request: refused as a bad field */
	h.type = QS_QRP_T_REQUEST;
	h.flags = QS_QRP_F_LAST | QS_QRP_F_AUTH;
	flow(&f, false, 77, cfg.svc.port);
	lens[0] = qs_dp_build_qrp(fr[0], 2048, &f, &h, NULL, 0);
	qs_dp_parse(&cfg, fr[0], lens[0], &p);
	assert_int_equal(p.cls, QS_DP_C_DROP);
	assert_int_equal(p.drop, QS_DP_D_QRP_FIELD);
	sh->cfg.be[0].report_key.has_key = 0;
}

/* ---- parser ------------------------------------------------------------------------ */

static void
test_parse_good(void **state)
{
	uint8_t buf[2048];
	struct qs_dp_pkt p;
	struct qs_dp_flow f;
	struct qs_qrp_hdr h = {QS_QRP_T_REQUEST, 1, 3, 42, 100, 10, 0, 3, 3, 32};
	uint32_t len;

	(void)state;
	len = req(buf, QS_QRP_T_REQUEST, 42, 1, 100, false, 0);
	qs_dp_parse(&cfg, buf, len, &p);
	assert_int_equal(p.cls, QS_DP_C_QRP);
	assert_int_equal(p.h.request_id, 42);
	assert_int_equal(p.ipv6, 0);
	len = req(buf, QS_QRP_T_REQUEST, 43, 1, 100, true, 0);
	qs_dp_parse(&cfg, buf, len, &p);
	assert_int_equal(p.cls, QS_DP_C_QRP);
	assert_int_equal(p.ipv6, 1);
	flow(&f, false, 77, cfg.svc.port);
	len = qs_dp_build_qrp(buf, sizeof(buf), &f, &h, NULL, 0);
	qs_dp_parse(&cfg, buf, len, &p);
	assert_int_equal(p.cls, QS_DP_C_QRP);
	assert_int_equal(p.l3_off, 18);
	/* Ethernet padding after the IP packet is fine */
	memset(buf + len, 0, 20);
	qs_dp_parse(&cfg, buf, len + 20, &p);
	assert_int_equal(p.cls, QS_DP_C_QRP);
}

static void
test_parse_malformed(void **state)
{
	uint8_t buf[2048], pay[64];
	struct qs_dp_pkt p;
	struct qs_dp_flow f;
	uint32_t len;
	struct qs_qrp_hdr h = {QS_QRP_T_REQUEST, 1, 3, 42, 100, 10, 0, 3, 3, 32};
	struct {
		uint32_t off;
		uint8_t val;
		int why;
	} cases[] = {
	    {14, 0x44, QS_DP_D_IP_HDR},	 /* IHL 4 */
	    {14, 0x55, QS_DP_D_IP_HDR},	 /* version 5 */
	    {22, 0x33, QS_DP_D_IP_CSUM}, /* TTL without checksum */
	    {42, 0x00, QS_DP_D_QRP_MAGIC},   {44, 0x02, QS_DP_D_QRP_VERSION},
	    {45, 0x00, QS_DP_D_QRP_TYPE},    {45, 0x05, QS_DP_D_QRP_TYPE},
	    {46, 0x80, QS_DP_D_QRP_FIELD},   /* unknown flag */
	    {70, 0x04, QS_DP_D_QRP_FIELD},   /* priority 4 */
	    {71, 0x09, QS_DP_D_QRP_FIELD},   /* SLO class 9 */
	    {72, 0x01, QS_DP_D_QRP_HDR_LEN}, /* header length 256+32 */
	    {73, 0x10, QS_DP_D_QRP_HDR_LEN}, /* header length 16 */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = req(buf, QS_QRP_T_REQUEST, 42, 1, 100, false, 0);
		buf[cases[i].off] = cases[i].val;
		qs_dp_parse(&cfg, buf, len, &p);
		assert_int_equal(p.cls, QS_DP_C_DROP);
		assert_int_equal(p.drop, cases[i].why);
	}
	len = req(buf, QS_QRP_T_REQUEST, 42, 1, 100, false, 0);
	qs_qrp_wr16(buf + 38, 500); /* UDP length past the IP payload */
	qs_dp_parse(&cfg, buf, len, &p);
	assert_int_equal(p.drop, QS_DP_D_UDP_HDR);
	len = req(buf, QS_QRP_T_REQUEST, 42, 1, 100, true, 0);
	qs_qrp_wr16(buf + 14 + 40 + 6, 0); /* IPv6 zero checksum */
	qs_dp_parse(&cfg, buf, len, &p);
	assert_int_equal(p.drop, QS_DP_D_UDP_HDR);
	len = req(buf, QS_QRP_T_REQUEST, 42, 1, 100, true, 0);
	buf[14 + 6] = 44;
	qs_dp_parse(&cfg, buf, len, &p);
	assert_int_equal(p.drop, QS_DP_D_IP_FRAG);
	buf[14 + 6] = 43;
	qs_dp_parse(&cfg, buf, len, &p);
	assert_int_equal(p.drop, QS_DP_D_IP6_EXT);
	/* a report on the request port, a request on the report port */
	len = report(buf, 100, 1, 1, 0);
	qs_dp_parse(&cfg, buf, len, &p);
	assert_int_equal(p.cls, QS_DP_C_QRP);
	qs_qrp_wr16(buf + 36, cfg.svc.port);
	qs_dp_parse(&cfg, buf, len, &p);
	assert_int_equal(p.drop, QS_DP_D_WRONG_PORT);
	/* non-QRP: another port, another address, ARP */
	flow(&f, false, 0, 53);
	memset(pay, 1, sizeof(pay));
	len = qs_dp_build_udp(buf, sizeof(buf), &f, pay, 40);
	qs_dp_parse(&cfg, buf, len, &p);
	assert_int_equal(p.cls, QS_DP_C_NON_QRP);
	flow(&f, false, 0, cfg.svc.port);
	f.dst_ip[3] = 99;
	len = qs_dp_build_qrp(buf, sizeof(buf), &f, &h, NULL, 0);
	qs_dp_parse(&cfg, buf, len, &p);
	assert_int_equal(p.cls, QS_DP_C_NON_QRP);
	qs_qrp_wr16(buf + 12, 0x0806);
	qs_dp_parse(&cfg, buf, len, &p);
	assert_int_equal(p.cls, QS_DP_C_NON_QRP);
	/* three VLAN tags */
	memset(buf, 0, 64);
	qs_qrp_wr16(buf + 12, 0x8100);
	qs_qrp_wr16(buf + 16, 0x8100);
	qs_qrp_wr16(buf + 20, 0x8100);
	qs_dp_parse(&cfg, buf, 64, &p);
	assert_int_equal(p.drop, QS_DP_D_VLAN_DEPTH);
}

/* Every truncation of valid frames: never a read past the end (ASan), always a drop. */
static void
test_parse_truncated(void **state)
{
	uint8_t buf[2048];
	struct qs_dp_pkt p;
	uint32_t len, l, k;

	(void)state;
	for (k = 0; k < 3; k++) {
		len = k == 0   ? req(buf, QS_QRP_T_REQUEST, 1, 1, 5, false, 0)
		      : k == 1 ? req(buf, QS_QRP_T_CONTINUATION, 1, 1, 5, true, 0)
			       : report(buf, 100, 1, 1, 0);
		for (l = 0; l < len; l++) {
			uint8_t *copy = malloc(l ? l : 1);

			memcpy(copy, buf, l);
			qs_dp_parse(&cfg, copy, l, &p);
			assert_int_equal(p.cls, QS_DP_C_DROP);
			assert_int_not_equal(p.drop, QS_DP_D_NONE);
			free(copy);
		}
	}
}

/* ---- checksums ------------------------------------------------------------------------- */

/* The textbook Internet checksum, byte by byte: the reference. */
static uint16_t
naive_csum(const uint8_t *a, size_t n)
{
	uint64_t s = 0;
	size_t i;

	for (i = 0; i < n; i++)
		s += (i & 1) ? a[i] : (uint64_t)a[i] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static void
test_checksums(void **state)
{
	uint8_t buf[2048], ph[2048];
	uint32_t len, k, ulen, n;
	struct qs_dp_pkt p;

	(void)state;
	for (k = 0; k < 400; k++) {
		bool v6 = k & 1;
		uint16_t vlan = (k & 2) ? 5 : 0;
		struct qs_dp_flow f;
		struct qs_qrp_hdr h = {QS_QRP_T_REQUEST, 1, 1, k * 7919, k * 13, 10, 0, 1, 1, 32};
		const struct qs_dp_backend_cfg *b = &cfg.be[k % 8];

		if (v6 && !b->has_ip6)
			continue;
		flow(&f, v6, vlan, cfg.svc.port);
		f.sport = (uint16_t)(k * 131);
		len = qs_dp_build_qrp(buf, sizeof(buf), &f, &h, NULL, k % 97);
		qs_dp_parse(&cfg, buf, len, &p);
		assert_int_equal(p.cls, QS_DP_C_QRP);
		assert_int_equal(qs_dp_rewrite(buf, &p, b), QS_DP_D_NONE);
		/* IPv4 header: the naive checksum over the header is 0 */
		if (!v6)
			assert_int_equal(naive_csum(buf + p.l3_off, 20), 0);
		/* UDP: pseudo-header + datagram, naively */
		ulen = qs_qrp_rd16(buf + p.l4_off + 4);
		n = 0;
		if (v6) {
			memcpy(ph, buf + p.l3_off + 8, 32);
			n = 32;
			ph[n++] = 0;
			ph[n++] = 0;
			ph[n++] = (uint8_t)(ulen >> 8);
			ph[n++] = (uint8_t)ulen;
			ph[n++] = 0;
			ph[n++] = 0;
			ph[n++] = 0;
			ph[n++] = 17;
		} else {
			memcpy(ph, buf + p.l3_off + 12, 8);
			n = 8;
			ph[n++] = 0;
			ph[n++] = 17;
			ph[n++] = (uint8_t)(ulen >> 8);
			ph[n++] = (uint8_t)ulen;
		}
		memcpy(ph + n, buf + p.l4_off, ulen);
		n += ulen;
		assert_int_equal(naive_csum(ph, n), 0);
		/* and the library's full recomputation agrees with the incremental update */
		assert_int_equal(qs_dp_udp_csum(buf, &p), qs_qrp_rd16(buf + p.l4_off + 6));
		assert_memory_equal(buf, b->mac, 6);
		assert_int_equal(qs_qrp_rd16(buf + p.l4_off + 2), b->port);
	}
	/* IPv4 UDP checksum 0 ("none") stays 0 */
	len = req(buf, QS_QRP_T_REQUEST, 1, 1, 5, false, 0);
	qs_qrp_wr16(buf + 40, 0);
	qs_dp_parse(&cfg, buf, len, &p);
	assert_int_equal(qs_dp_rewrite(buf, &p, &cfg.be[0]), QS_DP_D_NONE);
	assert_int_equal(qs_qrp_rd16(buf + 40), 0);
	/* an IPv6 request to a backend without IPv6 */
	len = req(buf, QS_QRP_T_REQUEST, 1, 1, 5, true, 0);
	qs_dp_parse(&cfg, buf, len, &p);
	assert_int_equal(qs_dp_rewrite(buf, &p, &cfg.be[3]), QS_DP_D_FAMILY);
}

/* ---- tables ------------------------------------------------------------------------------ */

static void
test_backend_ageing(void **state)
{
	uint8_t fr[1][2048];
	uint32_t lens[1];
	struct qs_dp_policy_set set = {0};

	(void)state;
	set.builtin = QS_BASELINE_LEAST_REQUESTS;
	/* the default mask: two report intervals of 5 ms */
	assert_int_equal(cfg.report_max_age_ns, 10 * MS);
	report_all(0, 1);
	lens[0] = req(fr[0], QS_QRP_T_REQUEST, 1, 1, 10, false, 0);
	burst(fr, lens, 1, 10, &set);
	assert_int_equal(wk->b.cand_mask, 0xff);
	/* all silent past report_max_age: masked, and the fallback decides */
	lens[0] = req(fr[0], QS_QRP_T_REQUEST, 2, 1, 10, false, 0);
	burst(fr, lens, 1, 11, &set);
	assert_int_equal(wk->b.cand_mask, 0);
	assert_int_equal(wk->ctr.fallback, 1);
	assert_int_equal(wk->b.verdict[0], QS_DP_V_TX);
	/* reports resume: back */
	report_all(60, 2);
	lens[0] = req(fr[0], QS_QRP_T_REQUEST, 3, 1, 10, false, 0);
	burst(fr, lens, 1, 61, &set);
	assert_int_equal(wk->b.cand_mask, 0xff);
	/* an older report than held is ignored */
	lens[0] = report(fr[0], 100, 1, 999, 0);
	burst(fr, lens, 1, 62, &set);
	assert_int_equal(wk->ctr.reports_ignored, 1);
	assert_int_equal(sh->be[0].rep.waiting, 1);
	/* a draining report masks it, even from the fallback */
	lens[0] = report(fr[0], 100, 3, 1, QS_QRP_RF_DRAINING);
	burst(fr, lens, 1, 63, &set);
	lens[0] = req(fr[0], QS_QRP_T_REQUEST, 4, 1, 10, false, 0);
	burst(fr, lens, 1, 63, &set);
	assert_int_equal(wk->b.cand_mask, 0xfe);
	assert_int_equal(wk->b.fallback_mask & 1, 0);
	/* the operator's drain (a fresh request: the view is taken for bursts with one) */
	sh->admin_drain = 1ull << 5;
	lens[0] = req(fr[0], QS_QRP_T_REQUEST, 5, 1, 10, false, 0);
	burst(fr, lens, 1, 64, &set);
	assert_int_equal(wk->b.cand_mask, 0xde);
	/* unknown backend id */
	lens[0] = report(fr[0], 7, 9, 1, 0);
	burst(fr, lens, 1, 64, &set);
	assert_int_equal(wk->b.pkt[0].drop, QS_DP_D_REPORT_BACKEND);
}

static void
test_request_table(void **state)
{
	static uint8_t fr[QS_DP_BURST][2048];
	uint32_t lens[QS_DP_BURST], i, k;
	struct qs_dp_policy_set set = {0};
	uint16_t be;

	(void)state;
	set.builtin = QS_BASELINE_ROUND_ROBIN;
	report_all(0, 1);
	/* request and continuation in one burst: the continuation follows it */
	lens[0] = req(fr[0], QS_QRP_T_REQUEST, 500, 0, 10, false, 0);
	lens[1] = req(fr[1], QS_QRP_T_CONTINUATION, 500, 0, 10, false, 0);
	burst(fr, lens, 2, 1, &set);
	be = wk->b.backend[0];
	assert_int_equal(wk->b.verdict[1], QS_DP_V_TX);
	assert_int_equal(wk->b.backend[1], be);
	/* a later continuation, then the last one closes the entry */
	lens[0] = req(fr[0], QS_QRP_T_CONTINUATION, 500, 0, 10, false, 0);
	lens[1] = req(fr[1], QS_QRP_T_CONTINUATION, 500, QS_QRP_F_LAST, 10, false, 0);
	lens[2] = req(fr[2], QS_QRP_T_CONTINUATION, 500, 0, 10, false, 0);
	burst(fr, lens, 3, 2, &set);
	assert_int_equal(wk->b.backend[0], be);
	assert_int_equal(wk->b.backend[1], be);
	assert_int_equal(wk->b.pkt[2].drop, QS_DP_D_UNKNOWN_REQ);
	/* ageing: past the TTL the entry is dead */
	lens[0] = req(fr[0], QS_QRP_T_REQUEST, 501, 0, 10, false, 0);
	burst(fr, lens, 1, 3, &set);
	lens[0] = req(fr[0], QS_QRP_T_CONTINUATION, 501, 0, 10, false, 0);
	burst(fr, lens, 1, 3 + cfg.request_ttl_ns / MS + 1, &set);
	assert_int_equal(wk->b.pkt[0].drop, QS_DP_D_UNKNOWN_REQ);
	/* eviction: more open requests than entries; the table stays bounded */
	for (k = 0; k < (QS_DP_REQ_SETS * QS_DP_REQ_WAYS) / QS_DP_BURST + 64; k++) {
		for (i = 0; i < QS_DP_BURST; i++)
			lens[i] = req(fr[i], QS_QRP_T_REQUEST, 10000 + k * QS_DP_BURST + i, 0, 10,
				      false, 0);
		burst(fr, lens, QS_DP_BURST, 10000, &set);
	}
	assert_true(wk->ctr.reqtab_evict > 0);
	/* the newest are still there */
	lens[0] =
	    req(fr[0], QS_QRP_T_CONTINUATION, 10000 + (k - 1) * QS_DP_BURST + 5, 0, 10, false, 0);
	burst(fr, lens, 1, 10000, &set);
	assert_int_equal(wk->b.verdict[0], QS_DP_V_TX);
}

/*
 * Cancels follow the request to its backend (reqtab.h): a one-packet request's, and
 * a multi-packet request's after its last packet; nothing follows a cancel, no
 * continuation follows a last packet, and past the TTL a cancel is unknown. A full
 * set gives up a done request's entry before one still arriving in packets.
 */
static void
test_cancel(void **state)
{
	static uint8_t fr[4][2048];
	uint32_t lens[4];
	struct qs_dp_policy_set set = {0};
	struct qs_reqtab_set rs;
	enum qs_reqtab_way how;
	uint16_t be;
	int i;

	(void)state;
	set.builtin = QS_BASELINE_ROUND_ROBIN;
	report_all(0, 1);
	lens[0] = req(fr[0], QS_QRP_T_REQUEST, 600, QS_QRP_F_LAST, 10, false, 0);
	burst(fr, lens, 1, 1, &set);
	be = wk->b.backend[0];
	lens[0] = req(fr[0], QS_QRP_T_CANCEL, 600, 0, 0, false, 0);
	lens[1] = req(fr[1], QS_QRP_T_CANCEL, 600, 0, 0, false, 0);
	burst(fr, lens, 2, 2, &set);
	assert_int_equal(wk->b.verdict[0], QS_DP_V_TX);
	assert_int_equal(wk->b.backend[0], be);
	assert_int_equal(wk->b.pkt[1].drop, QS_DP_D_UNKNOWN_REQ);
	/* two packets, then a stray continuation and a cancel: the cancel goes through */
	lens[0] = req(fr[0], QS_QRP_T_REQUEST, 601, 0, 10, false, 0);
	lens[1] = req(fr[1], QS_QRP_T_CONTINUATION, 601, QS_QRP_F_LAST, 10, false, 0);
	lens[2] = req(fr[2], QS_QRP_T_CONTINUATION, 601, 0, 10, false, 0);
	lens[3] = req(fr[3], QS_QRP_T_CANCEL, 601, 0, 0, false, 0);
	burst(fr, lens, 4, 3, &set);
	be = wk->b.backend[0];
	assert_int_equal(wk->b.backend[1], be);
	assert_int_equal(wk->b.pkt[2].drop, QS_DP_D_UNKNOWN_REQ);
	assert_int_equal(wk->b.verdict[3], QS_DP_V_TX);
	assert_int_equal(wk->b.backend[3], be);
	/* the TTL counts from the last packet */
	lens[0] = req(fr[0], QS_QRP_T_REQUEST, 602, QS_QRP_F_LAST, 10, false, 0);
	burst(fr, lens, 1, 4, &set);
	lens[0] = req(fr[0], QS_QRP_T_CANCEL, 602, 0, 0, false, 0);
	burst(fr, lens, 1, 4 + cfg.request_ttl_ns / MS + 1, &set);
	assert_int_equal(wk->b.pkt[0].drop, QS_DP_D_UNKNOWN_REQ);
	/* victims: a done entry before an open one, even a newer done one */
	memset(&rs, 0, sizeof(rs));
	for (i = 0; i < QS_REQTAB_WAYS; i++) {
		rs.e[i].id = 100 + i;
		rs.e[i].backend = 1;
		rs.e[i].last_ns = 1000 + i;
		rs.e[i].done = i >= 2;
	}
	assert_int_equal(qs_reqtab_way(&rs, 7, 0, 2000, 5000, &how), 2);
	assert_int_equal(how, QS_REQTAB_EVICT_DONE);
	rs.e[2].done = rs.e[3].done = 0;
	assert_int_equal(qs_reqtab_way(&rs, 7, 0, 2000, 5000, &how), 0);
	assert_int_equal(how, QS_REQTAB_EVICT);
	assert_int_equal(qs_reqtab_way(&rs, 7, 0, 7000, 5000, &how), 0);
	assert_int_equal(how, QS_REQTAB_EXPIRED);
	assert_int_equal(qs_reqtab_way(&rs, 103, 0, 2000, 5000, &how), 3);
	assert_int_equal(how, QS_REQTAB_SAME);
}

/* QS_TEST_CONFIG with extra lines after [service] and after each [backend ...]
 * header (be[k] for the k-th of the first n_be, be[0] for the rest; NULL: none). */
static void
cfg_with(char *path, const char *svc, const char *const *be, uint32_t n_be)
{
	const char *base = getenv("QS_TEST_CONFIG");
	char line[512];
	uint32_t k = 0;
	FILE *in, *out;

	assert_non_null(base);
	out = qs_test_tmpfile(path);
	in = fopen(base, "r");
	assert_non_null(in);
	while (fgets(line, sizeof(line), in)) {
		fputs(line, out);
		if (strncmp(line, "[service]", 9) == 0 && svc)
			fprintf(out, "%s\n", svc);
		if (strncmp(line, "[backend", 8) == 0 && be) {
			fprintf(out, "%s\n", be[k < n_be ? k : 0]);
			k++;
		}
	}
	fclose(in);
	fclose(out);
}

/*
 * Cascade: backends' quality per difficulty and SLO classes' floors give per class and
 * difficulty the backends below the floor (quality.h); a request's difficulty is
 * the one its header carries, else its prompt's class by the thresholds; a backend
 * below the floor is neither the policy's nor a builtin's nor the fallback's.
 */
static void
test_cascade_floors(void **state)
{
	static const struct {
		const char *svc;
		const char *be[2];
		const char *want;
	} bad[] = {
	    {NULL, {"quality = 1.2", NULL}, "quality = 1.2: want 1 to 4 accuracies in 0..1"},
	    {NULL, {"quality = 0.9,,0.5", NULL}, "quality = 0.9,,0.5: want"},
	    {NULL, {"quality = 1,1,1,1,1", NULL}, "quality = 1,1,1,1,1: want"},
	    {"quality_floor = 2", {NULL, NULL}, "quality_floor = 2: want 1 to 4 shares"},
	    {"difficulty_prompt_tokens = 3000,1000", {NULL, NULL}, "want 1 to 3 ascending"},
	    {"difficulty_prompt_tokens = 0", {NULL, NULL}, "want 1 to 3 ascending"},
	    {"difficulty_prompt_tokens = 1,2,3,4", {NULL, NULL}, "want 1 to 3 ascending"},
	    {"difficulty_prompt_tokens = 1000,", {NULL, NULL}, "want 1 to 3 ascending"},
	    {"difficulty_prompt_tokens = -5", {NULL, NULL}, "want 1 to 3 ascending"},
	    {"difficulty_prompt_tokens = +5", {NULL, NULL}, "want 1 to 3 ascending"},
	    {NULL, {"quality = 0.9", "name = x"}, "lacks a quality table and backend"},
	};
	static uint8_t fr[16][2048];
	uint32_t lens[16], i, k, on[8] = {0};
	struct qs_dp_policy_set set = {0};
	struct qs_dp_config c2;
	char path[] = "/tmp/qsteer-dp-core-XXXXXX", msg[512];
	const char *be[2] = {"quality = 1", "quality = 0.99, 0.5"};

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *b2[2] = {bad[i].be[0], bad[i].be[1] ? bad[i].be[1] : bad[i].be[0]};

		cfg_with(path, bad[i].svc, b2[0] ? b2 : NULL, 2);
		qs_dp_config_defaults(&c2);
		assert_int_not_equal(qs_dp_config_load(path, &c2, msg, sizeof(msg)), QS_OK);
		if (!strstr(msg, bad[i].want))
			fail_msg("case %u: got '%s', want '%s'", i, msg, bad[i].want);
		unlink(path);
		memcpy(path + strlen(path) - 6, "XXXXXX", 6);
	}
	/* backend 1 a variant: 0.99 on easy, 0.5 on harder; the rest the reference */
	cfg_with(path, "quality_floor = 0, 0.98\ndifficulty_prompt_tokens = 1000", be, 2);
	qs_dp_config_defaults(&c2);
	if (qs_dp_config_load(path, &c2, msg, sizeof(msg)) != QS_OK)
		fail_msg("%s", msg);
	unlink(path);
	assert_true(c2.n_backends >= 2);
	assert_true(c2.be[1].has_quality && c2.be[1].quality[3] == 0.5);
	assert_true(c2.quality_floor[3] == 0.98); /* a short list repeats its last */
	for (k = 0; k < QS_DIFFICULTIES; k++) {
		assert_int_equal(c2.quality_masked[0][k], 0);
		assert_int_equal(c2.quality_masked[1][k], k ? 2 : 0);
	}
	assert_int_equal(c2.difficulty_prompt_tokens[0], 1000);
	assert_int_equal(c2.difficulty_prompt_tokens[1], 0);

	/* decisions: rr over the candidates; SLO class 2 (req()'s) has the 0.98 floor */
	memcpy(sh->cfg.quality_masked, c2.quality_masked, sizeof(c2.quality_masked));
	memcpy(sh->cfg.difficulty_prompt_tokens, c2.difficulty_prompt_tokens,
	       sizeof(c2.difficulty_prompt_tokens));
	set.builtin = QS_BASELINE_ROUND_ROBIN;
	report_all(0, 1);
	for (i = 0; i < 16; i++) /* hard: carried (8) or a long prompt (8) */
		lens[i] = req(fr[i], QS_QRP_T_REQUEST, 1100 + i,
			      QS_QRP_F_LAST | (i < 8 ? qs_qrp_difficulty_flags(1 + i % 3) : 0),
			      i < 8 ? 10 : 1000 + i, false, 0);
	burst(fr, lens, 16, 1, &set);
	for (i = 0; i < 16; i++) {
		assert_int_equal(wk->b.verdict[i], QS_DP_V_TX);
		on[wk->b.backend[i]]++;
	}
	assert_int_equal(on[1], 0);
	/* easy: carried 0 on a long prompt, or a short prompt: backend 1 takes its turn */
	for (i = 0; i < 16; i++)
		lens[i] = req(fr[i], QS_QRP_T_REQUEST, 1200 + i,
			      QS_QRP_F_LAST | (i < 8 ? qs_qrp_difficulty_flags(0) : 0),
			      i < 8 ? 5000 : 10, false, 0);
	burst(fr, lens, 16, 2, &set);
	memset(on, 0, sizeof(on));
	for (i = 0; i < 16; i++)
		on[wk->b.backend[i]]++;
	assert_true(on[1] >= 1);
	/* with every candidate masked (reports stale), the fallback keeps the floor */
	for (i = 0; i < 16; i++)
		lens[i] = req(fr[i], QS_QRP_T_REQUEST, 1300 + i,
			      QS_QRP_F_LAST | qs_qrp_difficulty_flags(3), 10, false, 0);
	burst(fr, lens, 16, 500, &set);
	for (i = 0; i < 16; i++) {
		assert_int_equal(wk->b.how[i], QS_DP_HOW_FALLBACK);
		assert_int_not_equal(wk->b.backend[i], 1);
	}
	/* every admissible backend drained, backend 1 up: the floor left it none, and
	 * says so (quality-floor); all drained: no-backend */
	report_all(600, 1);
	sh->admin_drain = ~(uint64_t)2;
	lens[0] = req(fr[0], QS_QRP_T_REQUEST, 1400, QS_QRP_F_LAST | qs_qrp_difficulty_flags(3), 10,
		      false, 0);
	lens[1] = req(fr[1], QS_QRP_T_REQUEST, 1401, QS_QRP_F_LAST | qs_qrp_difficulty_flags(0), 10,
		      false, 0);
	burst(fr, lens, 2, 601, &set);
	assert_int_equal(wk->b.verdict[0], QS_DP_V_DROP);
	assert_int_equal(wk->b.pkt[0].drop, QS_DP_D_QUALITY_FLOOR);
	assert_int_equal(wk->b.verdict[1], QS_DP_V_TX); /* easy: backend 1 admits it */
	assert_int_equal(wk->b.backend[1], 1);
	sh->admin_drain = ~(uint64_t)0;
	burst(fr, lens, 1, 602, &set);
	assert_int_equal(wk->b.pkt[0].drop, QS_DP_D_NO_BACKEND);
	assert_string_equal(qs_dp_drop_name(QS_DP_D_QUALITY_FLOOR), "quality-floor");
	sh->admin_drain = 0;
	memset(sh->cfg.quality_masked, 0, sizeof(sh->cfg.quality_masked));
	memset(sh->cfg.difficulty_prompt_tokens, 0, sizeof(sh->cfg.difficulty_prompt_tokens));
}

/* The difficulty bits belong to requests, and only with their flag (wire.h). */
static void
test_parse_difficulty(void **state)
{
	uint8_t buf[2048];
	struct qs_dp_pkt p;
	uint32_t len;

	(void)state;
	len = req(buf, QS_QRP_T_REQUEST, 42, QS_QRP_F_LAST | qs_qrp_difficulty_flags(3), 100, false,
		  0);
	qs_dp_parse(&cfg, buf, len, &p);
	assert_int_equal(p.cls, QS_DP_C_QRP);
	assert_int_equal(qs_rview_difficulty(p.h.flags, 0, 0, 0, 0), 3);
	assert_int_equal(qs_rview_difficulty(QS_QRP_F_LAST, 2500, 1000, 2000, 3000), 2);
	assert_int_equal(qs_rview_difficulty(QS_QRP_F_LAST, 2500, 1000, 0, 0), 1);
	assert_int_equal(qs_rview_difficulty(QS_QRP_F_LAST, 999, 1000, 0, 0), 0);
	/* nothing said and nothing to measure by: the hardest, kept off weak variants */
	assert_int_equal(qs_rview_difficulty(QS_QRP_F_LAST, 10, 0, 0, 0), 3);
	len =
	    req(buf, QS_QRP_T_REQUEST, 42, QS_QRP_F_LAST | 3 << QS_QRP_F_DIFF_SHIFT, 100, false, 0);
	qs_dp_parse(&cfg, buf, len, &p);
	assert_int_equal(p.drop, QS_DP_D_QRP_FIELD);
	len = req(buf, QS_QRP_T_CONTINUATION, 42, QS_QRP_F_LAST | qs_qrp_difficulty_flags(1), 100,
		  false, 0);
	qs_dp_parse(&cfg, buf, len, &p);
	assert_int_equal(p.drop, QS_DP_D_QRP_FIELD);
	len = req(buf, QS_QRP_T_CANCEL, 42, qs_qrp_difficulty_flags(0), 100, false, 0);
	qs_dp_parse(&cfg, buf, len, &p);
	assert_int_equal(p.drop, QS_DP_D_QRP_FIELD);
}

static void
test_tenant_counters(void **state)
{
	static uint8_t fr[4][2048];
	uint32_t lens[4];
	struct qs_dp_policy_set set = {0};
	struct qs_dp_config c2 = cfg;
	struct qs_dp_flow f;
	uint16_t tenants[4] = {7, 9, 7, 1};
	char msg[256];
	int i;

	(void)state;
	/* config: up to 16 distinct ids, in the replay configuration's [service] */
	{
		static const struct {
			const char *val, *want;
		} cs[] = {{"7,9", NULL},
			  {"7,7", "tenant 7 twice"},
			  {"70000", "want up to 16 tenant ids"},
			  {"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", "want up to 16"}};
		char path[] = "/tmp/qsteer-dp-core-XXXXXX", line[512];
		int k;

		for (k = 0; k < 4; k++) {
			snprintf(line, sizeof(line), "tenants = %s", cs[k].val);
			cfg_with(path, line, NULL, 0);
			if (cs[k].want) {
				assert_int_not_equal(qs_dp_config_load(path, &c2, msg, sizeof(msg)),
						     QS_OK);
				if (!strstr(msg, cs[k].want))
					fail_msg("tenants = %s: got '%s'", cs[k].val, msg);
			} else {
				assert_int_equal(qs_dp_config_load(path, &c2, msg, sizeof(msg)),
						 QS_OK);
				assert_int_equal(c2.n_tenants, 2);
				assert_int_equal(c2.tenant[1], 9);
			}
			unlink(path);
			memcpy(path + strlen(path) - 6, "XXXXXX", 6);
		}
	}
	sh->cfg.n_tenants = 2;
	sh->cfg.tenant[0] = 7;
	sh->cfg.tenant[1] = 9;
	set.builtin = QS_BASELINE_ROUND_ROBIN;
	report_all(0, 1);
	/* requests of tenants 7, 9, 7 and 1 (another: "other"), then a cancel of 9's */
	for (i = 0; i < 4; i++) {
		struct qs_qrp_hdr h = {
		    QS_QRP_T_REQUEST, QS_QRP_F_LAST, tenants[i], 900 + i, 10, 50, 0, 1, 2, 32};

		flow(&f, false, 0, cfg.svc.port);
		lens[i] = qs_dp_build_qrp(fr[i], 2048, &f, &h, NULL, 40);
	}
	burst(fr, lens, 4, 1, &set);
	{
		struct qs_qrp_hdr h = {QS_QRP_T_CANCEL, 0, 9, 901, 0, 0, 0, 0, 0, 32};

		flow(&f, false, 0, cfg.svc.port);
		lens[0] = qs_dp_build_qrp(fr[0], 2048, &f, &h, NULL, 0);
	}
	burst(fr, lens, 1, 2, &set);
	assert_int_equal(wk->ctr.tenant_requests[0], 2);
	assert_int_equal(wk->ctr.tenant_requests[1], 1);
	assert_int_equal(wk->ctr.tenant_requests[QS_DP_TENANTS], 1);
	assert_int_equal(wk->ctr.tenant_cancels[1], 1);
	assert_int_equal(wk->ctr.tenant_cancels[0] + wk->ctr.tenant_cancels[QS_DP_TENANTS], 0);
	sh->cfg.n_tenants = 0;
}

/* ---- decisions ------------------------------------------------------------------------ */

/* Independent recomputation: features from qs_feat_router_v1, scalar kernel, argmax. */
static void
test_decision_reference(void **state)
{
	static uint8_t fr[QS_DP_BURST][2048];
	uint32_t lens[QS_DP_BURST], i, c;
	struct qs_dp_policy_set set = {0};

	(void)state;
	set.active = polA;
	report_all(0, 1);
	for (i = 0; i < QS_DP_BURST; i++)
		lens[i] = req(fr[i], QS_QRP_T_REQUEST, 900 + i, 1, 1 + i * 300, i % 3 == 0,
			      i % 4 ? 0 : 77);
	burst(fr, lens, QS_DP_BURST, 1, &set);
	for (i = 0; i < QS_DP_BURST; i++) {
		struct qs_feat_request rq = {1 + i * 300, 50, 1, 2};
		struct qs_feat_global gl = {0, 0};
		struct qs_feat_backend fb[8];
		uint8_t x[QS_FR_COUNT];
		int32_t best = 0, sc;
		int bi = -1;
		bool v6 = i % 3 == 0;

		for (c = 0; c < 8; c++) {
			memset(&fb[c], 0, sizeof(fb[c]));
			fb[c].waiting = 2 * c + 1;
			fb[c].running = 3;
			fb[c].kv_used = 100;
			fb[c].kv_total = 4096;
			fb[c].prefill_pending = 50;
			fb[c].decode_tps = 900;
			fb[c].ttft_p99_ms = 30;
			fb[c].capacity_class = (uint8_t)(c % 8);
			/* the prefix (77) goes where request 0 went, from the next burst on */
			if (!v6 || cfg.be[c].has_ip6) {
				gl.outstanding += fb[c].waiting + fb[c].running;
				gl.eligible++;
			}
		}
		for (c = 0; c < 8; c++) {
			if (v6 && !cfg.be[c].has_ip6)
				continue;
			qs_feat_router_v1(&rq, &fb[c], &gl, x);
			assert_int_equal(
			    qs_policy_run(polA, QS_KERNEL_SCALAR, x, QS_FR_COUNT, 1, &sc), QS_OK);
			if (bi < 0 || sc > best) {
				best = sc;
				bi = (int)c;
			}
		}
		assert_int_equal(wk->b.verdict[i], QS_DP_V_TX);
		assert_int_equal(wk->b.backend[i], bi);
		assert_memory_equal(fr[i], cfg.be[bi].mac, 6);
	}
	assert_int_equal(wk->ctr.decided_policy, QS_DP_BURST);
}

/*
 * The rows the burst hands the policy, byte for byte: each must equal a full
 * qs_feat_router_v1 call on the burst's backend view (the candidate's snapshot, the
 * request's prefix hit, the global features over the candidates of the request's
 * address family). The burst builds them from per-candidate templates and the
 * request's own fields; this is the check that the two ways agree. Two families
 * with different candidates (backend 3 has no IPv6), an operator-drained backend,
 * sent counts and prefix hits from an earlier burst, and varied request fields.
 */
static void
test_feature_rows(void **state)
{
	static uint8_t fr[QS_DP_BURST][2048];
	uint8_t *bufs[QS_DP_BURST];
	uint32_t lens[QS_DP_BURST], i, r, cnd, hits = 0, v6s = 0;
	struct qs_dp_policy_set set = {0};
	struct qs_dp_burst *b = &wk->b;

	(void)state;
	set.active = polA;
	report_all(0, 1);
	/* an earlier burst: sent counts, prefix affinity for 77 and 78 */
	for (i = 0; i < QS_DP_BURST; i++)
		lens[i] = req(fr[i], QS_QRP_T_REQUEST, 3000 + i, 1, 10 + i * 97, i % 2 == 0,
			      i % 3 ? 77 + i % 2 : 0);
	burst(fr, lens, QS_DP_BURST, 1, &set);
	sh->admin_drain = 1ull << 6;
	for (i = 0; i < QS_DP_BURST; i++) {
		struct qs_dp_flow f;
		struct qs_qrp_hdr h = {QS_QRP_T_REQUEST,
				       QS_QRP_F_LAST,
				       1,
				       4000 + i,
				       i * i * 131,
				       i * 37 % 2000,
				       i % 4 ? 77 + i % 3 : 0,
				       (uint8_t)(i % 4),
				       (uint8_t)(3 - i % 4),
				       32};

		flow(&f, i % 3 == 1, 0, cfg.svc.port);
		lens[i] = qs_dp_build_qrp(fr[i], 2048, &f, &h, NULL, 40);
		bufs[i] = fr[i];
	}
	qs_dp_prepare(wk, sh, bufs, lens, QS_DP_BURST, 2 * MS);
	assert_int_equal(b->n_req, QS_DP_BURST);
	assert_int_equal(b->n_cand, 7);
	for (r = 0; r < b->n_req; r++) {
		const struct qs_dp_pkt *p = &b->pkt[b->req_pkt[r]];
		struct qs_feat_request rq = {p->h.prompt_tokens, p->h.max_new_tokens, p->h.priority,
					     p->h.slo_class};
		struct qs_feat_global gl = {0, 0};
		uint32_t hit = qs_prefix_lookup(&wk->prefix, p->h.prefix_hash, b->now_ns,
						cfg.prefix_max_age_ns);
		uint64_t el = 0;

		for (cnd = 0; cnd < b->n_cand; cnd++) {
			const struct qs_feat_backend *f = &b->fb[b->cand_be[cnd]];

			if (p->ipv6 && !cfg.be[b->cand_be[cnd]].has_ip6)
				continue;
			gl.outstanding += f->waiting + f->running + f->sent_reqs;
			gl.eligible++;
			el |= 1ull << cnd;
		}
		assert_int_equal(b->req_elig[r], el);
		for (cnd = 0; cnd < b->n_cand; cnd++) {
			struct qs_feat_backend fbc = b->fb[b->cand_be[cnd]];
			uint8_t x[QS_FR_COUNT];

			fbc.prefix_hit = hit == b->cand_be[cnd];
			hits += fbc.prefix_hit;
			qs_feat_router_v1(&rq, &fbc, &gl, x);
			assert_memory_equal(x, &b->x[((size_t)r * b->n_cand + cnd) * QS_FR_COUNT],
					    QS_FR_COUNT);
		}
		v6s += p->ipv6;
	}
	/* the case mix this test is for */
	assert_true(hits > 0);
	assert_true(v6s > 0 && v6s < b->n_req);
	assert_true(b->fb[0].sent_reqs + b->fb[1].sent_reqs + b->fb[2].sent_reqs > 0);
}

static void
test_shadow_canary(void **state)
{
	static uint8_t fr[QS_DP_BURST][2048];
	uint32_t lens[QS_DP_BURST], i;
	uint16_t a[QS_DP_BURST], b[QS_DP_BURST];
	struct qs_dp_policy_set set = {0};
	uint32_t k, dis = 0;

	(void)state;
	report_all(0, 1);
	for (k = 0; k < 2; k++) {
		set.active = k ? polB : polA;
		for (i = 0; i < QS_DP_BURST; i++)
			lens[i] = req(fr[i], QS_QRP_T_REQUEST, 2000 + i, 1, 1 + i * 500, false, 0);
		burst(fr, lens, QS_DP_BURST, 1, &set);
		for (i = 0; i < QS_DP_BURST; i++)
			(k ? b : a)[i] = wk->b.backend[i];
		/* same state for the second run */
		teardown(NULL);
		setup(NULL);
		report_all(0, 1);
	}
	for (i = 0; i < QS_DP_BURST; i++)
		dis += a[i] != b[i];
	assert_true(dis > 0);
	/* shadow: steered by the active one, disagreements counted */
	set.active = polA;
	set.second = polB;
	set.mode = QS_DP_MODE_SHADOW;
	for (i = 0; i < QS_DP_BURST; i++)
		lens[i] = req(fr[i], QS_QRP_T_REQUEST, 2000 + i, 1, 1 + i * 500, false, 0);
	burst(fr, lens, QS_DP_BURST, 1, &set);
	for (i = 0; i < QS_DP_BURST; i++)
		assert_int_equal(wk->b.backend[i], a[i]);
	assert_int_equal(wk->ctr.shadow_scored, QS_DP_BURST);
	assert_int_equal(wk->ctr.shadow_disagree, dis);
	/* canary at 0% and 100%, and at 50% by request id */
	for (k = 0; k < 3; k++) {
		teardown(NULL);
		setup(NULL);
		report_all(0, 1);
		set.mode = QS_DP_MODE_CANARY;
		set.canary_pct = k == 0 ? 0 : k == 1 ? 100 : 50;
		for (i = 0; i < QS_DP_BURST; i++)
			lens[i] = req(fr[i], QS_QRP_T_REQUEST, 2000 + i, 1, 1 + i * 500, false, 0);
		burst(fr, lens, QS_DP_BURST, 1, &set);
		for (i = 0; i < QS_DP_BURST; i++) {
			bool pick = qs_dp_canary_pick(2000 + i, set.canary_pct);

			assert_int_equal(wk->b.backend[i], pick ? b[i] : a[i]);
		}
	}
	assert_true(qs_dp_canary_pick(12345, 100));
	assert_false(qs_dp_canary_pick(12345, 0));
}

static void
test_no_backend(void **state)
{
	uint8_t fr[1][2048];
	uint32_t lens[1];
	struct qs_dp_policy_set set = {0};

	(void)state;
	set.active = polA;
	sh->admin_drain = 0xff;
	lens[0] = req(fr[0], QS_QRP_T_REQUEST, 1, 1, 10, false, 0);
	burst(fr, lens, 1, 1, &set);
	assert_int_equal(wk->b.verdict[0], QS_DP_V_DROP);
	assert_int_equal(wk->b.pkt[0].drop, QS_DP_D_NO_BACKEND);
	assert_string_equal(qs_dp_drop_name(QS_DP_D_NO_BACKEND), "no-backend");
}

static int
free_policies(void **state)
{
	(void)state;
	qs_policy_free(polA);
	qs_policy_free(polB);
	return 0;
}

QS_TEST_MAIN_GROUP(NULL, free_policies,
		   cmocka_unit_test_setup_teardown(test_parse_good, setup, teardown),
		   cmocka_unit_test_setup_teardown(test_parse_malformed, setup, teardown),
		   cmocka_unit_test_setup_teardown(test_parse_truncated, setup, teardown),
		   cmocka_unit_test_setup_teardown(test_checksums, setup, teardown),
		   cmocka_unit_test_setup_teardown(test_backend_ageing, setup, teardown),
		   cmocka_unit_test_setup_teardown(test_report_source, setup, teardown),
		   cmocka_unit_test_setup_teardown(test_report_auth, setup, teardown),
		   cmocka_unit_test_setup_teardown(test_request_table, setup, teardown),
		   cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		   cmocka_unit_test_setup_teardown(test_tenant_counters, setup, teardown),
		   cmocka_unit_test_setup_teardown(test_cascade_floors, setup, teardown),
		   cmocka_unit_test_setup_teardown(test_parse_difficulty, setup, teardown),
		   cmocka_unit_test_setup_teardown(test_decision_reference, setup, teardown),
		   cmocka_unit_test_setup_teardown(test_feature_rows, setup, teardown),
		   cmocka_unit_test_setup_teardown(test_shadow_canary, setup, teardown),
		   cmocka_unit_test_setup_teardown(test_no_backend, setup, teardown))
