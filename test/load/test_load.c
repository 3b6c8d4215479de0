/*
 * test_load.c - libqsteer-load's pieces without a network: the schedule (the
 * simulator's scenario stream, trace replay, integer time scaling and caps), the
 * QRP encoding with continuations, the validation and bookkeeping of response
 * datagrams (every refusal reason), and the summary through the simulator's
 * accounting (lost requests are SLO misses, never dropped from the count).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qs_test.h"

#include "qsteer/agent_wire.h"
#include "qsteer/router_view.h"
#include "qsteer/wire.h"

#include "load.h"

#define SHORT_INI QSTEER_TEST_LOAD_DIR "/short.ini"

static void
book_of(struct qs_load_book *b, uint32_t n)
{
	uint32_t i;

	memset(b, 0, sizeof(*b));
	b->req = calloc(n, sizeof(*b->req));
	assert_non_null(b->req);
	b->n = n;
	b->id_base = 1000;
	for (i = 0; i < n; i++) {
		b->req[i].sched_ns = 1000000ull * i;
		b->req[i].prompt_tokens = 100;
		b->req[i].max_new_tokens = 10;
	}
}

static void
test_scale(void **state)
{
	static const uint64_t t[] = {5000, 5100, 5200, 5300, 6000};
	struct qs_load_book b;
	char msg[256];
	uint32_t i;

	(void)state;
	book_of(&b, 5);
	for (i = 0; i < 5; i++)
		b.req[i].sched_ns = t[i];
	assert_int_equal(qs_load_scale(&b, 2000, 0, 0, msg, sizeof(msg)), QS_OK);
	assert_int_equal(b.n, 5);
	assert_int_equal(b.req[0].sched_ns, 0);
	assert_int_equal(b.req[1].sched_ns, 50);
	assert_int_equal(b.req[4].sched_ns, 500);
	/* slower than real time, and a duration cap: 0, 100, 200, 300 < 1000 <= 2000 */
	assert_int_equal(qs_load_scale(&b, 500, 0, 1000, msg, sizeof(msg)), QS_OK);
	assert_int_equal(b.n, 4);
	assert_int_equal(b.req[3].sched_ns, 300);
	assert_int_equal(qs_load_scale(&b, 1000, 2, 0, msg, sizeof(msg)), QS_OK);
	assert_int_equal(b.n, 2);
	/* the first arrival is always kept; an empty schedule is an error */
	b.req[0].sched_ns = 10;
	b.req[1].sched_ns = 20;
	assert_int_equal(qs_load_scale(&b, 1000, 0, 1, msg, sizeof(msg)), QS_OK);
	assert_int_equal(b.n, 1);
	b.n = 0;
	assert_int_equal(qs_load_scale(&b, 1000, 0, 0, msg, sizeof(msg)), QS_E_VALUE);
	qs_load_book_free(&b);
	/* 1 ns gaps at a huge slow-down do not overflow */
	book_of(&b, 2);
	b.req[1].sched_ns = UINT64_MAX / 2;
	assert_int_equal(qs_load_scale(&b, 1000000, 0, 0, msg, sizeof(msg)), QS_OK);
	assert_int_equal(b.req[1].sched_ns, UINT64_MAX / 2 / 1000);
	qs_load_book_free(&b);
}

static void
test_scenario_arrivals(void **state)
{
	struct qs_load_src_cfg c;
	struct qs_load_src_info info;
	struct qs_load_book a, b;
	char msg[512];
	uint32_t i, seen_class2 = 0;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.scenario = SHORT_INI;
	c.seed = 7;
	c.requests = 100;
	c.rate = 100;
	assert_int_equal(qs_load_arrivals(&c, &a, &info, msg, sizeof(msg)), QS_OK);
	assert_int_equal(a.n, 100);
	assert_string_equal(info.name, "load-short");
	assert_string_equal(info.primary_metric, "ttft_p99");
	assert_true(info.slo[0].ttft_ms == 2000 && info.slo[0].tpot_ms == 200);
	assert_true(info.slo[2].ttft_ms == 3000);
	assert_int_equal(a.req[0].sched_ns, 0);
	for (i = 0; i < a.n; i++) {
		if (i)
			assert_true(a.req[i].sched_ns >= a.req[i - 1].sched_ns);
		assert_true(a.req[i].max_new_tokens >= 1 && a.req[i].max_new_tokens <= 24);
		assert_true(a.req[i].prompt_tokens >= 16 && a.req[i].prompt_tokens <= 512);
		if (a.req[i].slo_class == 2) {
			assert_int_equal(a.req[i].tenant, 7);
			assert_int_equal(a.req[i].priority, 3);
			seen_class2++;
		}
	}
	assert_true(seen_class2 > 5 && seen_class2 < 60);
	/* ~100 req/s: 100 arrivals span about a second */
	assert_true(a.req[99].sched_ns > 300000000ull && a.req[99].sched_ns < 3000000000ull);
	/* same seed, same stream; twice the speed, half the times */
	c.speedup_milli = 2000;
	assert_int_equal(qs_load_arrivals(&c, &b, &info, msg, sizeof(msg)), QS_OK);
	assert_int_equal(b.n, a.n);
	for (i = 0; i < a.n; i++) {
		assert_int_equal(b.req[i].sched_ns, a.req[i].sched_ns / 2);
		assert_int_equal(b.req[i].prompt_tokens, a.req[i].prompt_tokens);
	}
	qs_load_book_free(&b);
	/* a duration cap keeps only the arrivals before it */
	c.speedup_milli = 0;
	c.requests = 0;
	c.duration_ns = a.req[49].sched_ns + 1;
	assert_int_equal(qs_load_arrivals(&c, &b, &info, msg, sizeof(msg)), QS_OK);
	assert_int_equal(b.n, 50);
	qs_load_book_free(&b);
	qs_load_book_free(&a);
	/* refusals name the problem */
	memset(&c, 0, sizeof(c));
	assert_int_equal(qs_load_arrivals(&c, &b, &info, msg, sizeof(msg)), QS_E_ARG);
	c.scenario = QSTEER_TEST_LOAD_DIR "/no-such.ini";
	assert_int_not_equal(qs_load_arrivals(&c, &b, &info, msg, sizeof(msg)), QS_OK);
	assert_non_null(strstr(msg, "no-such"));
}

static void
test_trace_arrivals(void **state)
{
	char path[] = "/tmp/qsteer-load-trace-XXXXXX";
	struct qs_load_src_cfg c;
	struct qs_load_src_info info;
	struct qs_load_book b;
	char msg[512];
	FILE *f;

	(void)state;
	f = qs_test_tmpfile(path);
	/* out of order on purpose; 0 generated tokens becomes 1 */
	fprintf(f, "TIMESTAMP,ContextTokens,GeneratedTokens\n"
		   "2023-11-16 18:15:46.000000,100,10\n"
		   "2023-11-16 18:15:48.000000,300,0\n"
		   "2023-11-16 18:15:47.000000,200,20\n");
	fclose(f);
	memset(&c, 0, sizeof(c));
	c.trace = path;
	c.speedup_milli = 4000;
	assert_int_equal(qs_load_arrivals(&c, &b, &info, msg, sizeof(msg)), QS_OK);
	assert_int_equal(b.n, 3);
	assert_int_equal(b.req[0].sched_ns, 0);
	assert_int_equal(b.req[1].sched_ns, 250000000ull);
	assert_int_equal(b.req[1].prompt_tokens, 200);
	assert_int_equal(b.req[2].sched_ns, 500000000ull);
	assert_int_equal(b.req[2].max_new_tokens, 1);
	assert_int_equal(info.slo[0].ttft_ms, 0);
	qs_load_book_free(&b);
	/* a trace with a scenario: the trace's arrivals, the scenario's SLOs */
	c.scenario = SHORT_INI;
	c.requests = 2;
	assert_int_equal(qs_load_arrivals(&c, &b, &info, msg, sizeof(msg)), QS_OK);
	assert_int_equal(b.n, 2);
	assert_true(info.slo[0].ttft_ms == 2000);
	qs_load_book_free(&b);
	/* load belongs to a scenario's stream */
	c.load = 0.5;
	assert_int_equal(qs_load_arrivals(&c, &b, &info, msg, sizeof(msg)), QS_E_ARG);
	unlink(path);
}

static void
test_packets(void **state)
{
	struct qs_load_book b;
	struct qs_qrp_hdr h;
	uint8_t buf[256];
	uint32_t len, k, total = 0;

	(void)state;
	assert_int_equal(qs_load_packets(0, 1472), 1);
	assert_int_equal(qs_load_packets(1440, 1472), 1);
	assert_int_equal(qs_load_packets(1441, 1472), 2);
	assert_int_equal(qs_load_packets(64 * 1440, 1472), 64);
	assert_int_equal(qs_load_packets(64 * 1440 + 1, 1472), 0); /* the agent's limit */
	assert_int_equal(qs_load_packets(10, 63), 0);
	book_of(&b, 2);
	b.req[1].tenant = 9;
	b.req[1].priority = 2;
	b.req[1].slo_class = 3;
	b.req[1].prefix_hash = 0xabcdef01u;
	len = qs_load_packet(&b, 1, 0, 256, 0, buf);
	assert_int_equal(len, QS_QRP_HDR_LEN);
	assert_int_equal(qs_qrp_parse_hdr(buf, len, &h), QS_QRP_OK);
	assert_int_equal(h.type, QS_QRP_T_REQUEST);
	assert_int_equal(h.flags, QS_QRP_F_LAST);
	assert_int_equal(h.request_id, 1001);
	assert_int_equal(h.tenant, 9);
	assert_int_equal(h.priority, 2);
	assert_int_equal(h.slo_class, 3);
	assert_int_equal(h.prefix_hash, 0xabcdef01u);
	assert_int_equal(h.prompt_tokens, 100);
	assert_int_equal(h.max_new_tokens, 10);
	/* a cascade scenario's request says how hard it is, on its first packet */
	b.req[1].has_difficulty = true;
	b.req[1].difficulty = 2;
	len = qs_load_packet(&b, 1, 0, 256, 0, buf);
	assert_int_equal(qs_qrp_parse_hdr(buf, len, &h), QS_QRP_OK);
	assert_int_equal(h.flags, QS_QRP_F_LAST | QS_QRP_F_DIFFICULTY | 2 << QS_QRP_F_DIFF_SHIFT);
	assert_int_equal(qs_rview_difficulty(h.flags, 100, 1, 2, 3), 2); /* not 3 */
	b.req[1].has_difficulty = false;
	/* 500 payload bytes in 128-byte datagrams: 96 + 96 + 96 + 96 + 116 -> 6 packets */
	assert_int_equal(qs_load_packets(500, 128), 6);
	for (k = 0; k < 6; k++) {
		len = qs_load_packet(&b, 1, 500, 128, k, buf);
		assert_true(len > QS_QRP_HDR_LEN && len <= 128);
		assert_int_equal(qs_qrp_parse_hdr(buf, len, &h), QS_QRP_OK);
		assert_int_equal(h.type, k ? QS_QRP_T_CONTINUATION : QS_QRP_T_REQUEST);
		assert_int_equal(h.flags, k == 5 ? QS_QRP_F_LAST : 0);
		assert_int_equal(h.request_id, 1001);
		total += len - QS_QRP_HDR_LEN;
	}
	assert_int_equal(total, 500);
	assert_int_equal(qs_load_packet(&b, 1, 500, 128, 6, buf), 0);
	qs_load_book_free(&b);
}

static uint32_t
resp(uint8_t *p, uint8_t kind, uint16_t be, uint64_t id, uint32_t tokens, uint64_t first,
     uint64_t ev)
{
	struct qs_qra_resp r;

	memset(&r, 0, sizeof(r));
	r.kind = kind;
	r.backend_id = be;
	r.request_id = id;
	r.tokens = tokens;
	r.first_ns = first;
	r.event_ns = ev;
	qs_qra_write(p, &r);
	return QS_QRA_LEN;
}

static void
test_datagrams(void **state)
{
	struct qs_load_book b;
	uint8_t p[64];
	uint32_t i;

	(void)state;
	book_of(&b, 6);
	for (i = 0; i < 5; i++) { /* request 5 is never sent */
		b.req[i].state = QS_LOAD_S_SENT;
		b.req[i].sock = i % 2;
		b.req[i].send_ns = b.req[i].sched_ns + 1;
	}
	/* wire refusals */
	resp(p, QS_QRA_K_FIRST, 1, 1000, 1, 0, 0);
	assert_int_equal(qs_load_on_datagram(&b, 0, p, 20, 5), QS_LOAD_BAD_SHORT);
	p[0] = 'Q', p[1] = 'S';
	assert_int_equal(qs_load_on_datagram(&b, 0, p, QS_QRA_LEN, 5), QS_LOAD_BAD_MAGIC);
	resp(p, QS_QRA_K_FIRST, 1, 1000, 1, 0, 0);
	p[2] = 2;
	assert_int_equal(qs_load_on_datagram(&b, 0, p, QS_QRA_LEN, 5), QS_LOAD_BAD_VERSION);
	resp(p, 9, 1, 1000, 1, 0, 0);
	assert_int_equal(qs_load_on_datagram(&b, 0, p, QS_QRA_LEN, 5), QS_LOAD_BAD_KIND);
	resp(p, QS_QRA_K_FIRST, 1, 1000, 1, 0, 0);
	p[7] = 1;
	assert_int_equal(qs_load_on_datagram(&b, 0, p, QS_QRA_LEN, 5), QS_LOAD_BAD_FIELD);
	/* this run's checks */
	resp(p, QS_QRA_K_FIRST, 1, 999, 1, 0, 0);
	assert_int_equal(qs_load_on_datagram(&b, 0, p, QS_QRA_LEN, 5), QS_LOAD_BAD_UNKNOWN_ID);
	resp(p, QS_QRA_K_FIRST, 1, 1006, 1, 0, 0);
	assert_int_equal(qs_load_on_datagram(&b, 0, p, QS_QRA_LEN, 5), QS_LOAD_BAD_UNKNOWN_ID);
	resp(p, QS_QRA_K_FIRST, 1, 1005, 1, 0, 0); /* not sent */
	assert_int_equal(qs_load_on_datagram(&b, 1, p, QS_QRA_LEN, 5), QS_LOAD_BAD_UNKNOWN_ID);
	resp(p, QS_QRA_K_FIRST, 1, 1001, 1, 0, 0); /* left from socket 1 */
	assert_int_equal(qs_load_on_datagram(&b, 0, p, QS_QRA_LEN, 5), QS_LOAD_BAD_WRONG_PORT);
	assert_int_equal(b.responses, 0);
	/* request 0: first token then completion, from backend 4 */
	resp(p, QS_QRA_K_FIRST, 4, 1000, 1, 100, 100);
	assert_int_equal(qs_load_on_datagram(&b, 0, p, QS_QRA_LEN, 3000000), -1);
	assert_int_equal(qs_load_on_datagram(&b, 0, p, QS_QRA_LEN, 3000001), QS_LOAD_BAD_DUPLICATE);
	resp(p, QS_QRA_K_DONE, 5, 1000, 10, 100, 900);
	assert_int_equal(qs_load_on_datagram(&b, 0, p, QS_QRA_LEN, 9000000), QS_LOAD_BAD_BACKEND);
	resp(p, QS_QRA_K_DONE, 4, 1000, 11, 100, 900);
	assert_int_equal(qs_load_on_datagram(&b, 0, p, QS_QRA_LEN, 9000000), QS_LOAD_BAD_TOKENS);
	resp(p, QS_QRA_K_DONE, 4, 1000, 10, 100, 900);
	assert_int_equal(qs_load_on_datagram(&b, 0, p, QS_QRA_LEN, 9000000), -1);
	assert_int_equal(qs_load_on_datagram(&b, 0, p, QS_QRA_LEN, 9000001), QS_LOAD_BAD_DUPLICATE);
	assert_int_equal(b.req[0].state, QS_LOAD_S_DONE);
	assert_int_equal(b.req[0].first_ns, 3000000);
	assert_int_equal(b.req[0].done_ns, 9000000);
	assert_int_equal(b.req[0].backend, 4);
	assert_int_equal(b.req[0].tokens, 10);
	/* request 1: the first token is lost; the completion says 2 ms after it */
	resp(p, QS_QRA_K_DONE, 4, 1001, 10, 5000000, 7000000);
	assert_int_equal(qs_load_on_datagram(&b, 1, p, QS_QRA_LEN, 20000000), -1);
	assert_int_equal(b.req[1].first_ns, 18000000);
	assert_true(b.req[1].flags & QS_LOAD_RF_FIRST_EST);
	/* the late first token does not replace the estimate, a second one is refused */
	resp(p, QS_QRA_K_FIRST, 4, 1001, 1, 5000000, 5000000);
	assert_int_equal(qs_load_on_datagram(&b, 1, p, QS_QRA_LEN, 21000000), -1);
	assert_int_equal(b.req[1].first_ns, 18000000);
	assert_int_equal(qs_load_on_datagram(&b, 1, p, QS_QRA_LEN, 21000000),
			 QS_LOAD_BAD_DUPLICATE);
	/* request 2: rejected; nothing after that counts */
	resp(p, QS_QRA_K_REJECTED, 4, 1002, 0, 0, 10);
	assert_int_equal(qs_load_on_datagram(&b, 0, p, QS_QRA_LEN, 2500000), -1);
	assert_int_equal(b.req[2].state, QS_LOAD_S_REJECTED);
	resp(p, QS_QRA_K_DONE, 4, 1002, 10, 0, 10);
	assert_int_equal(qs_load_on_datagram(&b, 0, p, QS_QRA_LEN, 2600000), QS_LOAD_BAD_DUPLICATE);
	assert_int_equal(b.settled, 3);
	assert_int_equal(b.responses, 5);
	assert_int_equal(b.bad[QS_LOAD_BAD_DUPLICATE], 4);
	assert_int_equal(b.bad[QS_LOAD_BAD_UNKNOWN_ID], 3);
	assert_int_equal(b.datagrams, 20);
	assert_string_equal(qs_load_bad_name(QS_LOAD_BAD_WRONG_PORT), "wrong_port");
	assert_string_equal(qs_load_state_name(QS_LOAD_S_SENT), "timed_out");
	qs_load_book_free(&b);
}

/* reach: the agent's receipt (its clock) against our send (ours, from mono_base) */
static void
test_reach(void **state)
{
	struct qs_sim_slo slo[QS_SIM_SLO_CLASSES];
	struct qs_load_summary *s = malloc(sizeof(*s));
	struct qs_qra_resp r;
	struct qs_load_book b;
	uint8_t p[64];
	char msg[256];
	uint32_t i;

	(void)state;
	assert_non_null(s);
	memset(slo, 0, sizeof(slo));
	book_of(&b, 4);
	b.mono_base = 5000000000ull;
	for (i = 0; i < 3; i++) {
		b.req[i].state = QS_LOAD_S_SENT;
		b.req[i].send_ns = b.req[i].sched_ns + 1000;
	}
	memset(&r, 0, sizeof(r));
	r.backend_id = 1;
	r.tokens = 1;
	for (i = 0; i < 3; i++) {
		r.kind = QS_QRA_K_FIRST;
		r.request_id = 1000 + i;
		/* 70, 90 us after the send; the third before it (another host's clock) */
		r.recv_ns =
		    i == 2 ? b.mono_base : b.mono_base + b.req[i].send_ns + 70000 + 20000 * i;
		qs_qra_write(p, &r);
		assert_int_equal(qs_load_on_datagram(&b, 0, p, QS_QRA_LEN, b.req[i].send_ns + 5),
				 -1);
		/* the completion's receipt does not replace the first one's */
		r.kind = QS_QRA_K_DONE;
		r.recv_ns += 1000000;
		qs_qra_write(p, &r);
		assert_int_equal(qs_load_on_datagram(&b, 0, p, QS_QRA_LEN, b.req[i].send_ns + 9),
				 -1);
	}
	assert_int_equal(b.req[0].reach_ns, 70000);
	assert_int_equal(b.req[1].reach_ns, 90000);
	assert_int_equal(b.req[2].reach_ns, 0); /* both receipts before the send */
	/* a datagram naming a request not yet sent is no receipt of ours */
	r.kind = QS_QRA_K_FIRST;
	r.request_id = 1003;
	r.recv_ns = b.mono_base + 70000;
	qs_qra_write(p, &r);
	(void)qs_load_on_datagram(&b, 0, p, QS_QRA_LEN, 10);
	assert_int_equal(b.req[3].reach_ns, 0);
	assert_int_equal(qs_load_summarize(&b, slo, 10000000ull, s, NULL, msg, sizeof(msg)), QS_OK);
	assert_int_equal(s->n_reach, 2);
	assert_int_equal(s->reach_p50_ns, 70000);
	assert_int_equal(s->reach_p99_ns, 90000);
	/* no base (a book not filled by qs_load_run): nothing is claimed */
	b.mono_base = 0;
	b.req[3].state = QS_LOAD_S_SENT;
	b.req[3].send_ns = b.req[3].sched_ns + 1000;
	r.kind = QS_QRA_K_FIRST;
	r.request_id = 1003;
	r.recv_ns = 9000000000ull;
	qs_qra_write(p, &r);
	assert_int_equal(qs_load_on_datagram(&b, 0, p, QS_QRA_LEN, b.req[3].send_ns + 5), -1);
	assert_int_equal(b.req[3].reach_ns, 0);
	qs_load_book_free(&b);
	free(s);
}

static void
test_summary(void **state)
{
	struct qs_sim_slo slo[QS_SIM_SLO_CLASSES];
	struct qs_load_summary *s = malloc(sizeof(*s));
	struct qs_sim_tally *t = NULL;
	struct qs_sim_outcome o;
	struct qs_load_book b;
	char msg[256];
	uint32_t i;

	(void)state;
	assert_non_null(s);
	memset(slo, 0, sizeof(slo));
	slo[0].ttft_ms = 50;
	book_of(&b, 104);
	/* 100 answered with TTFT (i+1) ms and e2e 2*(i+1) ms over 11 tokens, backend
	 * i%2; then one rejected, one timed out, one failed send, one never sent */
	for (i = 0; i < 100; i++) {
		struct qs_load_req *r = &b.req[i];

		r->state = QS_LOAD_S_DONE;
		r->send_ns = r->sched_ns + (i == 7 ? 5000000 : 1000);
		r->first_ns = r->sched_ns + 1000000ull * (i + 1);
		r->done_ns = r->sched_ns + 2000000ull * (i + 1);
		r->tokens = 11;
		r->backend = (uint16_t)(i % 2);
	}
	b.req[100].state = QS_LOAD_S_REJECTED;
	b.req[100].send_ns = b.req[100].sched_ns + 1;
	b.req[100].done_ns = b.req[100].sched_ns + 10;
	b.req[100].backend = 1;
	b.req[101].state = QS_LOAD_S_SENT;
	b.req[101].send_ns = b.req[101].sched_ns + 1;
	b.req[102].state = QS_LOAD_S_SEND_FAILED;
	b.req[102].send_ns = b.req[102].sched_ns + 1;
	assert_true(qs_load_outcome(&b, 9, slo, &o));
	assert_int_equal(o.ttft_ns, 10000000);
	assert_int_equal(o.e2e_ns, 20000000);
	assert_int_equal(o.tpot_ns, 1000000);
	assert_true(o.slo_met);
	assert_true(qs_load_outcome(&b, 50, slo, &o));
	assert_false(o.slo_met); /* 51 ms > 50 */
	assert_false(qs_load_outcome(&b, 100, slo, &o));
	assert_int_equal(qs_load_summarize(&b, slo, 2000000000ull, s, &t, msg, sizeof(msg)), QS_OK);
	assert_non_null(t);
	assert_int_equal(s->scheduled, 104);
	assert_int_equal(s->state[QS_LOAD_S_DONE], 100);
	assert_int_equal(s->state[QS_LOAD_S_REJECTED], 1);
	assert_int_equal(s->state[QS_LOAD_S_SENT], 1);
	assert_int_equal(s->state[QS_LOAD_S_SEND_FAILED], 1);
	assert_int_equal(s->state[QS_LOAD_S_UNSENT], 1);
	/* the simulator's accounting: 103 offered, 100 completed, 50 within SLO; the
	 * three unanswered ones are misses, not left out */
	assert_int_equal(s->m.arrived, 103);
	assert_int_equal(s->m.completed, 100);
	assert_int_equal(s->m.slo_met, 50);
	assert_true(s->m.slo_attainment > 50.0 / 103 - 1e-9 &&
		    s->m.slo_attainment < 50.0 / 103 + 1e-9);
	assert_true(s->m.p50_ms[QS_SIM_M_TTFT] > 49.7 && s->m.p50_ms[QS_SIM_M_TTFT] < 50.3);
	assert_true(s->m.p99_ms[QS_SIM_M_TTFT] > 98.5 && s->m.p99_ms[QS_SIM_M_TTFT] < 99.5);
	assert_true(s->m.p99_ms[QS_SIM_M_TPOT] > 9.8 && s->m.p99_ms[QS_SIM_M_TPOT] < 10.0);
	assert_true(s->m.mean_ms[QS_SIM_M_E2E] > 100.9 && s->m.mean_ms[QS_SIM_M_E2E] < 101.1);
	assert_true(s->m.goodput_rps > 0);
	assert_int_equal(s->n_backends, 2);
	assert_int_equal(s->be[0].id, 0);
	assert_int_equal(s->be[0].answered, 50);
	assert_int_equal(s->be[1].answered, 50);
	assert_int_equal(s->be[1].rejected, 1);
	assert_int_equal(s->lag_max_ns, 5000000);
	assert_int_equal(s->lag_p99_ns, 1000);
	assert_true(qs_sim_tally_cdf(t, QS_SIM_M_TTFT, (double[256]){0}, (double[256]){0}, 256) >
		    0);
	qs_sim_tally_destroy(t);
	qs_load_book_free(&b);
	free(s);
}

QS_TEST_MAIN(cmocka_unit_test(test_scale), cmocka_unit_test(test_scenario_arrivals),
	     cmocka_unit_test(test_trace_arrivals), cmocka_unit_test(test_packets),
	     cmocka_unit_test(test_datagrams), cmocka_unit_test(test_summary),
	     cmocka_unit_test(test_reach))
