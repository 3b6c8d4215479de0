/*
 * test_agent.c - the agent's CPU tests: the KV allocator (no leak, no double use),
 * the request intake against malformed, duplicate and out-of-order packets, the
 * batching strategies and the scheduler against hand-computed iterations,
 * preemption by recompute, the learned classifier strategy, backend reports'
 * cumulative counts, profiles (parse and least-squares fit), the bench's streams
 * (the simulator's scenario files, request for request) and a bench smoke run.
 *
 * Why hand-computed: the scheduler's decisions are the contract the simulator's
 * batching environment must reproduce; a number worked out on paper catches a
 * drift that a self-consistency check would not.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qs_test.h"

#include "qsteer/admit.h"
#include "qsteer/agent_bench.h"
#include "qsteer/policy.h"
#include "qsteer/ttft_window.h"
/* white box: the two halves of an iteration, to cancel while one runs */
#include "../../agent/agent_int.h"

static char msg[512];

/* ---- KV allocator ------------------------------------------------------------------ */

static void
kv_basic(void **state)
{
	struct qs_kv kv;
	uint32_t b[9], i;

	(void)state;
	assert_int_equal(qs_kv_init(&kv, 8, msg, sizeof(msg)), QS_OK);
	for (i = 0; i < 8; i++) {
		assert_int_equal(qs_kv_alloc(&kv, i % 3, &b[i]), QS_OK);
		assert_int_equal(b[i], i); /* 0, 1, 2, ... */
	}
	assert_int_equal(qs_kv_alloc(&kv, 0, &b[8]), QS_E_NOMEM);
	assert_int_equal(qs_kv_used(&kv), 8);
	/* Wrong owner, double release, out of range: refused, nothing changes. */
	assert_int_equal(qs_kv_release(&kv, 1, b[0]), QS_E_VALUE);
	assert_int_equal(qs_kv_release(&kv, 0, b[0]), QS_OK);
	assert_int_equal(qs_kv_release(&kv, 0, b[0]), QS_E_VALUE);
	assert_int_equal(qs_kv_release(&kv, 0, 99), QS_E_VALUE);
	assert_int_equal(qs_kv_check(&kv, msg, sizeof(msg)), QS_OK);
	for (i = 1; i < 8; i++)
		assert_int_equal(qs_kv_release(&kv, i % 3, b[i]), QS_OK);
	assert_int_equal(kv.n_free, 8);
	assert_int_equal(qs_kv_check(&kv, msg, sizeof(msg)), QS_OK);
	qs_kv_fini(&kv);
	assert_int_equal(qs_kv_init(&kv, 0, msg, sizeof(msg)), QS_E_ARG);
	qs_kv_init(&kv, 4, msg, sizeof(msg));
	qs_kv_fini(&kv);
}

static void
kv_random(void **state)
{
	struct qs_kv kv;
	uint32_t held[64], owner[64], n = 0, i;
	uint64_t r = 12345;

	(void)state;
	assert_int_equal(qs_kv_init(&kv, 64, msg, sizeof(msg)), QS_OK);
	for (i = 0; i < 20000; i++) {
		r = r * 6364136223846793005ull + 1442695040888963407ull;
		if ((r >> 33) % 2 && n < 64) {
			owner[n] = (uint32_t)(r >> 40) % 7;
			assert_int_equal(qs_kv_alloc(&kv, owner[n], &held[n]), QS_OK);
			n++;
		} else if (n > 0) {
			uint32_t k = (uint32_t)(r >> 45) % n;

			assert_int_equal(qs_kv_release(&kv, owner[k], held[k]), QS_OK);
			held[k] = held[n - 1];
			owner[k] = owner[n - 1];
			n--;
		}
		assert_int_equal(qs_kv_used(&kv), n);
		if (i % 997 == 0)
			assert_int_equal(qs_kv_check(&kv, msg, sizeof(msg)), QS_OK);
	}
	/* No block handed out twice: all held blocks are distinct. */
	for (i = 0; i < n; i++)
		for (uint32_t j = i + 1; j < n; j++)
			assert_int_not_equal(held[i], held[j]);
	qs_kv_fini(&kv);
}

/* ---- intake ------------------------------------------------------------------------- */

static uint32_t
pkt(uint8_t *b, uint8_t type, uint16_t flags, uint64_t id, uint32_t prompt, uint32_t gen,
    uint32_t payload)
{
	struct qs_qrp_hdr h = {0};

	memset(&h, 0, sizeof(h));
	h.type = type;
	h.flags = flags;
	h.tenant = 7;
	h.request_id = id;
	h.prompt_tokens = prompt;
	h.max_new_tokens = gen;
	h.priority = 1;
	h.slo_class = 2;
	qs_qrp_write_hdr(b, &h);
	memset(b + QS_QRP_HDR_LEN, 0xab, payload);
	return QS_QRP_HDR_LEN + payload;
}

static void
intake_cases(void **state)
{
	struct qs_agent_intake_cfg c;
	struct qs_agent_intake *in;
	struct qs_agent_req q;
	uint8_t b[256];
	uint32_t n;
	int why;
	const struct qs_agent_intake_stats *st;

	(void)state;
	qs_agent_intake_cfg_default(&c);
	c.table_size = 2;
	c.max_packets = 3;
	c.max_age_ns = 1000;
	assert_int_equal(qs_agent_intake_create(&c, &in, msg, sizeof(msg)), QS_OK);

	/* One packet, one request. */
	n = pkt(b, 1, QS_QRP_F_LAST, 42, 100, 20, 10);
	assert_int_equal(qs_agent_intake_feed(in, b, n, NULL, 5, &q, &why), QS_AGENT_IN_REQUEST);
	assert_int_equal(q.id, 42);
	assert_int_equal(q.prompt_tokens, 100);
	assert_int_equal(q.max_new_tokens, 20);
	assert_int_equal(q.tenant, 7);
	assert_int_equal(q.slo_class, 2);
	assert_int_equal(q.bytes, 10);
	assert_int_equal(q.recv_ns, 5);

	/* Malformed: each dropped with its reason. */
	assert_int_equal(qs_agent_intake_feed(in, b, 10, NULL, 5, &q, &why), QS_AGENT_IN_DROP);
	assert_int_equal(why, QS_QRP_E_SHORT);
	n = pkt(b, 1, QS_QRP_F_LAST, 1, 100, 20, 0);
	b[0] = 0;
	qs_agent_intake_feed(in, b, n, NULL, 5, &q, &why);
	assert_int_equal(why, QS_QRP_E_MAGIC);
	n = pkt(b, 1, QS_QRP_F_LAST, 1, 100, 20, 0);
	b[2] = 2;
	qs_agent_intake_feed(in, b, n, NULL, 5, &q, &why);
	assert_int_equal(why, QS_QRP_E_VERSION);
	n = pkt(b, 9, QS_QRP_F_LAST, 1, 100, 20, 0);
	qs_agent_intake_feed(in, b, n, NULL, 5, &q, &why);
	assert_int_equal(why, QS_QRP_E_TYPE);
	n = pkt(b, 1, QS_QRP_F_LAST, 1, 100, 20, 0);
	b[31] = 16;
	qs_agent_intake_feed(in, b, n, NULL, 5, &q, &why);
	assert_int_equal(why, QS_QRP_E_HDR_LEN);
	n = pkt(b, 1, QS_QRP_F_LAST | 0x8, 1, 100, 20, 0);
	qs_agent_intake_feed(in, b, n, NULL, 5, &q, &why);
	assert_int_equal(why, QS_QRP_E_FIELD);
	n = pkt(b, 3, QS_QRP_F_LAST, 1, 100, 20, 56);
	qs_agent_intake_feed(in, b, n, NULL, 5, &q, &why);
	assert_int_equal(why, QS_AGENT_DROP_UNEXPECTED);
	n = pkt(b, 1, QS_QRP_F_LAST, 1, 0, 20, 0);
	qs_agent_intake_feed(in, b, n, NULL, 5, &q, &why);
	assert_int_equal(why, QS_AGENT_DROP_INVALID);

	/* Out of order: the continuation before its start is an orphan. */
	n = pkt(b, 2, 0, 50, 0, 0, 4);
	assert_int_equal(qs_agent_intake_feed(in, b, n, NULL, 10, &q, &why), QS_AGENT_IN_DROP);
	assert_int_equal(why, QS_AGENT_DROP_ORPHAN);
	n = pkt(b, 1, 0, 50, 300, 10, 8);
	assert_int_equal(qs_agent_intake_feed(in, b, n, NULL, 11, &q, &why), QS_AGENT_IN_NONE);
	assert_int_equal(qs_agent_intake_open(in), 1);
	/* A second start for the same id is a duplicate. */
	assert_int_equal(qs_agent_intake_feed(in, b, n, NULL, 11, &q, &why), QS_AGENT_IN_DROP);
	assert_int_equal(why, QS_AGENT_DROP_DUPLICATE);
	n = pkt(b, 2, 0, 50, 0, 0, 4);
	assert_int_equal(qs_agent_intake_feed(in, b, n, NULL, 12, &q, &why), QS_AGENT_IN_NONE);
	n = pkt(b, 2, QS_QRP_F_LAST, 50, 0, 0, 2);
	assert_int_equal(qs_agent_intake_feed(in, b, n, NULL, 13, &q, &why), QS_AGENT_IN_REQUEST);
	assert_int_equal(q.id, 50);
	assert_int_equal(q.packets, 3);
	assert_int_equal(q.bytes, 14);
	assert_int_equal(q.prompt_tokens, 300);
	assert_int_equal(q.recv_ns, 13);
	assert_int_equal(qs_agent_intake_open(in), 0);

	/* Table full at 2 open requests. */
	n = pkt(b, 1, 0, 60, 10, 10, 0);
	qs_agent_intake_feed(in, b, n, NULL, 20, &q, &why);
	n = pkt(b, 1, 0, 61, 10, 10, 0);
	qs_agent_intake_feed(in, b, n, NULL, 20, &q, &why);
	n = pkt(b, 1, 0, 62, 10, 10, 0);
	assert_int_equal(qs_agent_intake_feed(in, b, n, NULL, 20, &q, &why), QS_AGENT_IN_DROP);
	assert_int_equal(why, QS_AGENT_DROP_TABLE_FULL);
	/* A continuation from another tenant does not join it. */
	n = pkt(b, 2, 0, 60, 0, 0, 0);
	b[7] = 9;
	qs_agent_intake_feed(in, b, n, NULL, 21, &q, &why);
	assert_int_equal(why, QS_AGENT_DROP_MISMATCH);
	/* Too many packets: 60 has 1, +2 makes 3, the 4th drops the request. */
	n = pkt(b, 2, 0, 60, 0, 0, 0);
	qs_agent_intake_feed(in, b, n, NULL, 21, &q, &why);
	qs_agent_intake_feed(in, b, n, NULL, 21, &q, &why);
	assert_int_equal(qs_agent_intake_feed(in, b, n, NULL, 21, &q, &why), QS_AGENT_IN_DROP);
	assert_int_equal(why, QS_AGENT_DROP_TOO_MANY);
	assert_int_equal(qs_agent_intake_open(in), 1);
	/* Cancel of an open one frees its entry. */
	n = pkt(b, 4, QS_QRP_F_LAST, 61, 0, 0, 0);
	assert_int_equal(qs_agent_intake_feed(in, b, n, NULL, 22, &q, &why), QS_AGENT_IN_CANCEL);
	assert_int_equal(q.id, 61);
	assert_int_equal(qs_agent_intake_open(in), 0);
	/* Ageing: an incomplete request expires; its late continuation is an orphan. */
	n = pkt(b, 1, 0, 70, 10, 10, 0);
	qs_agent_intake_feed(in, b, n, NULL, 100, &q, &why);
	assert_int_equal(qs_agent_intake_age(in, 1000), 0);
	assert_int_equal(qs_agent_intake_age(in, 1101), 1);
	n = pkt(b, 2, QS_QRP_F_LAST, 70, 0, 0, 0);
	qs_agent_intake_feed(in, b, n, NULL, 1102, &q, &why);
	assert_int_equal(why, QS_AGENT_DROP_ORPHAN);

	st = qs_agent_intake_stats(in);
	assert_int_equal(st->requests, 2);
	assert_int_equal(st->cancels, 1);
	assert_int_equal(st->drops[QS_AGENT_DROP_ORPHAN], 2);
	assert_int_equal(st->drops[QS_AGENT_DROP_EXPIRED], 1);
	assert_int_equal(st->drops[QS_AGENT_DROP_TOO_MANY], 1);
	{
		uint64_t sum = 0;

		for (int k = 0; k < QS_AGENT_DROP__COUNT; k++)
			sum += st->drops[k];
		assert_int_equal(sum, st->dropped);
		assert_int_equal(st->dropped, 15);
	}
	assert_string_equal(qs_agent_drop_name(QS_AGENT_DROP_ORPHAN), "orphan");
	qs_agent_intake_destroy(in);
}

/* Random bytes and truncations never crash and are all counted. */
static void
intake_fuzz(void **state)
{
	struct qs_agent_intake_cfg c;
	struct qs_agent_intake *in;
	struct qs_agent_req q;
	uint8_t b[128];
	uint64_t r = 99;
	uint32_t i, k, got = 0;

	(void)state;
	qs_agent_intake_cfg_default(&c);
	c.table_size = 8;
	assert_int_equal(qs_agent_intake_create(&c, &in, msg, sizeof(msg)), QS_OK);
	for (i = 0; i < 20000; i++) {
		uint32_t n = pkt(b, (uint8_t)(1 + i % 4), (uint16_t)(i & 1), i % 13, 1 + i % 50,
				 1 + i % 9, 20);

		for (k = 0; k < 3; k++) {
			r = r * 6364136223846793005ull + 1442695040888963407ull;
			b[(r >> 33) % n] ^= (uint8_t)(1u << ((r >> 50) % 8));
		}
		n = (uint32_t)((r >> 20) % (n + 1));
		if (qs_agent_intake_feed(in, b, n, NULL, i, &q, NULL) != QS_AGENT_IN_DROP)
			got++;
		qs_agent_intake_age(in, i);
	}
	assert_int_equal(got + qs_agent_intake_stats(in)->dropped, 20000);
	qs_agent_intake_destroy(in);
}

/* ---- scheduler + strategies ---------------------------------------------------------- */

/* A profile whose arithmetic is easy to do by hand. */
static void
hand_cfg(struct qs_agent_cfg *c)
{
	qs_agent_cfg_default(c);
	memset(&c->prof, 0, sizeof(c->prof));
	snprintf(c->prof.name, sizeof(c->prof.name), "hand");
	c->prof.model = QS_SIM_MODEL_BATCH;
	c->prof.fixed_us = 1000;
	c->prof.prefill_us_per_token = 10;
	c->prof.decode_us_per_seq = 100;
	c->prof.kv_us_per_token = 1;
	c->prof.max_seqs = 4;
	c->prof.max_tokens = 100;
	c->prof.kv_blocks = 8;
	c->prof.max_model_len = 1024;
	c->chunked_prefill = false;
	c->max_slots = 16;
}

struct rig {
	struct qs_agent_cfg cfg;
	struct qs_batch_strategy st;
	struct qs_agent_exec ex;
	struct qs_agent *a;
};

static void
rig_up(struct rig *r, const char *spec, uint32_t kv_blocks, bool chunked)
{
	hand_cfg(&r->cfg);
	if (kv_blocks)
		r->cfg.prof.kv_blocks = kv_blocks;
	r->cfg.chunked_prefill = chunked;
	assert_int_equal(qs_batch_parse(spec, &r->st, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_agent_exec_model(&r->cfg.prof, &r->ex, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_agent_create(&r->cfg, &r->st, &r->ex, &r->a, msg, sizeof(msg)), QS_OK);
}

static void
rig_down(struct rig *r)
{
	qs_agent_destroy(r->a);
	qs_agent_exec_destroy(&r->ex);
	qs_batch_free(&r->st);
}

static void
submit(struct rig *r, uint64_t id, uint32_t prompt, uint32_t gen, uint8_t slo)
{
	struct qs_agent_req q;

	memset(&q, 0, sizeof(q));
	q.id = id;
	q.prompt_tokens = prompt;
	q.max_new_tokens = gen;
	q.slo_class = slo;
	assert_int_equal(qs_agent_submit(r->a, &q, 0), QS_OK);
}

static void
step_ok(struct rig *r, uint64_t now, struct qs_agent_iter *it)
{
	assert_int_equal(qs_agent_step(r->a, now, it, msg, sizeof(msg)), QS_OK);
	if (qs_agent_check(r->a, msg, sizeof(msg)) != QS_OK)
		fail_msg("%s", msg);
}

static void
sched_fixed2(void **state)
{
	struct rig r;
	struct qs_agent_iter it;
	const struct qs_agent_event *ev;
	uint32_t n;

	(void)state;
	rig_up(&r, "fixed:2", 0, false);
	submit(&r, 0, 16, 2, 0);
	submit(&r, 1, 16, 2, 0);
	submit(&r, 2, 16, 2, 0);
	/* 1: cap 2 admits 0 and 1: 1000 + 10 * 32 = 1320 us; both first tokens. */
	step_ok(&r, 0, &it);
	assert_int_equal(it.seqs, 2);
	assert_int_equal(it.prefill_tokens, 32);
	assert_int_equal(it.ns, 1320000);
	assert_int_equal(it.kv_used, 2);
	ev = qs_agent_events(r.a, &n);
	assert_int_equal(n, 2);
	assert_int_equal(ev[0].kind, QS_AGENT_EV_FIRST);
	assert_int_equal(ev[0].event_ns, 1320000);
	qs_agent_events_clear(r.a);
	/* 2: two decodes at context 17: 1000 + 2 * 100 + 34 = 1234 us; both done. */
	step_ok(&r, 1320000, &it);
	assert_int_equal(it.decode_seqs, 2);
	assert_int_equal(it.prefill_tokens, 0);
	assert_int_equal(it.ns, 1234000);
	ev = qs_agent_events(r.a, &n);
	assert_int_equal(n, 2);
	assert_int_equal(ev[0].kind, QS_AGENT_EV_DONE);
	assert_int_equal(ev[0].tokens, 2);
	assert_int_equal(ev[0].first_ns, 1320000);
	assert_int_equal(ev[0].event_ns, 2554000);
	qs_agent_events_clear(r.a);
	assert_int_equal(qs_kv_used(qs_agent_kv(r.a)), 0);
	/* 3: the third alone: 1160 us. */
	step_ok(&r, 2554000, &it);
	assert_int_equal(it.seqs, 1);
	assert_int_equal(it.ns, 1160000);
	rig_down(&r);
}

static uint32_t
first_prefill(const char *spec, uint32_t *cap)
{
	struct rig r;
	struct qs_agent_iter it;

	rig_up(&r, spec, 0, false);
	submit(&r, 0, 60, 4, 3);
	submit(&r, 1, 30, 4, 0);
	submit(&r, 2, 20, 4, 1);
	step_ok(&r, 0, &it);
	if (cap)
		*cap = it.dec.lim.max_seqs;
	rig_down(&r);
	return it.prefill_tokens;
}

static void
sched_strategies(void **state)
{
	uint32_t cap;

	(void)state;
	/* Budget 100, prompts 60 (SLO 3), 30 (SLO 0), 20 (SLO 1), whole prompts only. */
	assert_int_equal(first_prefill("fixed", NULL), 90);	 /* FCFS: 60 + 30 */
	assert_int_equal(first_prefill("throughput", NULL), 50); /* shortest: 20 + 30 */
	assert_int_equal(first_prefill("latency", NULL), 80);	 /* SLO 3, then SLO 1 */
	assert_int_equal(first_prefill("coalesce", NULL), 60);	 /* 60 alone in [32, 64) */
	/* Adaptive starts at cap 4/4 = 1, budget 25, grows once (queue waiting, no slow
	 * iteration yet): cap 2, budget 32; the 60-token prompt runs alone. */
	assert_int_equal(first_prefill("adaptive", &cap), 60);
	assert_int_equal(cap, 2);
}

static void
sched_adaptive_backoff(void **state)
{
	struct qs_batch_strategy s;
	struct qs_batch_view v;
	struct qs_batch_decision d;

	(void)state;
	assert_int_equal(qs_batch_parse("adaptive:10", &s, msg, sizeof(msg)), QS_OK);
	memset(&v, 0, sizeof(v));
	v.hw.max_seqs = 64;
	v.hw.max_tokens = 1600;
	v.st.waiting = 40;
	qs_batch_decide(&s, &v, &d); /* 16 + 40/4 = 26 */
	assert_int_equal(d.lim.max_seqs, 26);
	assert_int_equal(d.lim.max_tokens, 400 + 101);
	v.last_iter_ns = 20000000; /* over the 10 ms target: * 3/4 */
	qs_batch_decide(&s, &v, &d);
	assert_int_equal(d.lim.max_seqs, 19);
	assert_int_equal(d.lim.max_tokens, 375);
	qs_batch_free(&s);
	assert_int_equal(qs_batch_parse("bogus", &s, msg, sizeof(msg)), QS_E_ARG);
	assert_int_equal(qs_batch_parse("fixed:0", &s, msg, sizeof(msg)), QS_E_ARG);
	assert_int_equal(qs_batch_parse("q8:", &s, msg, sizeof(msg)), QS_E_ARG);
	assert_int_not_equal(qs_batch_parse("q8:/nonexistent.q8", &s, msg, sizeof(msg)), QS_OK);
}

static void
sched_chunked(void **state)
{
	struct rig r;
	struct qs_agent_iter it;
	uint32_t n;

	(void)state;
	rig_up(&r, "fixed", 32, true);
	submit(&r, 0, 250, 1, 0);
	/* 250 tokens over a 100-token budget: 100, 100, 50, then done. */
	step_ok(&r, 0, &it);
	assert_int_equal(it.prefill_tokens, 100);
	qs_agent_events(r.a, &n);
	assert_int_equal(n, 0);
	step_ok(&r, it.ns, &it);
	assert_int_equal(it.prefill_tokens, 100);
	step_ok(&r, it.ns, &it);
	assert_int_equal(it.prefill_tokens, 50);
	qs_agent_events(r.a, &n);
	assert_int_equal(n, 2); /* first token and completion (1 token) */
	assert_int_equal(qs_agent_running(r.a), 0);
	rig_down(&r);
}

static void
sched_preempt(void **state)
{
	struct rig r;
	struct qs_agent_iter it;
	uint64_t t = 0;
	uint32_t steps = 0, done = 0, n, k;
	const struct qs_agent_event *ev;

	(void)state;
	/* 4 blocks (64 tokens) for two sequences that each grow to 56: they cannot both
	 * hold 3 blocks, so the newer is preempted and recomputed. */
	rig_up(&r, "fixed", 4, false);
	submit(&r, 0, 16, 40, 0);
	submit(&r, 1, 16, 40, 0);
	/* Too long for the cache: rejected up front, not preempted forever. */
	{
		struct qs_agent_req q;

		memset(&q, 0, sizeof(q));
		q.id = 9;
		q.prompt_tokens = 60;
		q.max_new_tokens = 10;
		assert_int_equal(qs_agent_submit(r.a, &q, 0), QS_E_SIZE);
		ev = qs_agent_events(r.a, &n);
		assert_int_equal(n, 1);
		assert_int_equal(ev[0].kind, QS_AGENT_EV_REJECTED);
		qs_agent_events_clear(r.a);
	}
	while (done < 2 && steps < 1000) {
		step_ok(&r, t, &it);
		t += it.ns;
		steps++;
		assert_true(it.kv_used <= 4);
		ev = qs_agent_events(r.a, &n);
		for (k = 0; k < n; k++)
			if (ev[k].kind == QS_AGENT_EV_DONE) {
				assert_int_equal(ev[k].tokens, 40);
				done++;
				if (ev[k].request_id == 1)
					assert_true(ev[k].preemptions >= 1);
			}
		qs_agent_events_clear(r.a);
	}
	assert_int_equal(done, 2);
	assert_true(qs_agent_stats(r.a)->preemptions >= 1);
	assert_int_equal(qs_kv_used(qs_agent_kv(r.a)), 0);
	assert_int_equal(qs_agent_stats(r.a)->first_tokens, 2); /* recompute: no second first */
	rig_down(&r);
}

/* Many random requests through a tight cache: invariants after every iteration. */
static void
sched_stress(void **state)
{
	struct rig r;
	struct qs_agent_iter it;
	uint64_t t = 0, x = 7;
	uint32_t i, sub = 0;

	(void)state;
	rig_up(&r, "throughput", 16, true);
	for (i = 0; i < 3000; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		if (sub < 300 && (x >> 60) < 6) {
			struct qs_agent_req q;

			memset(&q, 0, sizeof(q));
			q.id = sub++;
			q.prompt_tokens = 1 + (uint32_t)(x >> 20) % 150;
			q.max_new_tokens = 1 + (uint32_t)(x >> 40) % 60;
			q.slo_class = (uint8_t)((x >> 8) & 3);
			(void)qs_agent_submit(r.a, &q, t);
			if ((x >> 12) % 50 == 0) {
				q.id /= 2;
				(void)qs_agent_cancel(r.a, &q, t);
			}
		}
		step_ok(&r, t, &it);
		t += it.ns ? it.ns : 1000;
		qs_agent_events_clear(r.a);
	}
	assert_int_equal(qs_agent_waiting(r.a) + qs_agent_running(r.a), 0);
	assert_int_equal(qs_agent_stats(r.a)->completed + qs_agent_stats(r.a)->rejected +
			     qs_agent_stats(r.a)->cancelled,
			 sub);
	assert_int_equal(qs_kv_used(qs_agent_kv(r.a)), 0);
	rig_down(&r);
}

/* ---- priority admission (admit.h) ---------------------------------------------------- */

static void
submit_prio(struct rig *r, uint64_t id, uint32_t gen, uint8_t prio, uint64_t t)
{
	struct qs_agent_req q;

	memset(&q, 0, sizeof(q));
	q.id = id;
	q.prompt_tokens = 10;
	q.max_new_tokens = gen;
	q.priority = prio;
	q.recv_ns = t;
	assert_int_equal(qs_agent_submit(r->a, &q, t), QS_OK);
}

/* The request id whose first token the last step gave, or -1. */
static int64_t
first_of_step(struct rig *r)
{
	const struct qs_agent_event *ev;
	uint32_t n, k;
	int64_t id = -1;

	ev = qs_agent_events(r->a, &n);
	for (k = 0; k < n; k++)
		if (ev[k].kind == QS_AGENT_EV_FIRST)
			id = (int64_t)ev[k].request_id;
	qs_agent_events_clear(r->a);
	return id;
}

static void
sched_priority(void **state)
{
	struct rig r;
	struct qs_agent_iter it;
	uint64_t t = 0;
	uint32_t i, k, admitted_low_at = 0;

	(void)state;
	/* Order: one sequence at a time; a low-priority request that came first still
	 * goes after a high one (FCFS would take it first). */
	rig_up(&r, "fixed:1", 0, false);
	qs_agent_destroy(r.a);
	r.cfg.admit_priority = true;
	assert_int_equal(qs_agent_create(&r.cfg, &r.st, &r.ex, &r.a, msg, sizeof(msg)), QS_OK);
	submit_prio(&r, 1, 2, 0, 0);
	submit_prio(&r, 2, 2, 3, 0);
	step_ok(&r, t, &it);
	t += it.ns;
	assert_int_equal(first_of_step(&r), 2);
	rig_down(&r);

	/* Preemption: four low-priority sequences fill the four places; a high one
	 * arrives and takes the place of the newest of them at the next iteration. */
	rig_up(&r, "fixed:4", 0, false);
	qs_agent_destroy(r.a);
	r.cfg.admit_priority = true;
	assert_int_equal(qs_agent_create(&r.cfg, &r.st, &r.ex, &r.a, msg, sizeof(msg)), QS_OK);
	t = 0;
	for (i = 0; i < 4; i++)
		submit_prio(&r, 10 + i, 20, 0, 0);
	step_ok(&r, t, &it);
	t += it.ns;
	assert_int_equal(qs_agent_running(r.a), 4);
	qs_agent_events_clear(r.a);
	submit_prio(&r, 20, 20, 2, t);
	step_ok(&r, t, &it);
	t += it.ns;
	assert_int_equal(it.preempted, 1);
	assert_int_equal(first_of_step(&r), 20);
	assert_int_equal(qs_agent_running(r.a), 4);
	assert_int_equal(qs_agent_waiting(r.a), 1); /* the newest low one, 13 */
	rig_down(&r);

	/* Starvation bound: one place, a stream of high-priority requests, one low one
	 * that has waited starve_ns: within QS_ADMIT_STARVED_EVERY admissions it goes. */
	rig_up(&r, "fixed:1", 0, false);
	qs_agent_destroy(r.a);
	r.cfg.admit_priority = true;
	r.cfg.starve_ns = 1000000; /* 1 ms: a few iterations */
	r.cfg.max_slots = 64;
	assert_int_equal(qs_agent_create(&r.cfg, &r.st, &r.ex, &r.a, msg, sizeof(msg)), QS_OK);
	t = 0;
	submit_prio(&r, 100, 1, 0, 0);
	for (i = 0; i < 8; i++)
		submit_prio(&r, 200 + i, 1, 3, 0);
	for (k = 1; k <= 9 && !admitted_low_at; k++) {
		step_ok(&r, t, &it);
		t += it.ns;
		if (first_of_step(&r) == 100)
			admitted_low_at = k;
	}
	/* without a bound it would be the 9th; with it, once starved (after the first
	 * iteration's 1.1 ms), at most QS_ADMIT_STARVED_EVERY admissions later */
	assert_true(admitted_low_at >= 2 && admitted_low_at <= 1 + QS_ADMIT_STARVED_EVERY);
	rig_down(&r);
}

/* Tenant fair share (admit.h, admission "fair"): the tally and the order. */
static void
sched_fair(void **state)
{
	struct rig r;
	struct qs_agent_iter it;
	struct qs_agent_req q;
	struct qs_admit_share sh;
	uint64_t t = 0;

	(void)state;
	/* The share: rows for the first QS_ADMIT_TENANTS tenants, one row for the rest;
	 * every row halves each QS_ADMIT_SHARE_HALF_NS. */
	qs_admit_share_clear(&sh);
	for (uint32_t k = 0; k < QS_ADMIT_TENANTS + 2; k++)
		qs_admit_share_add(&sh, (uint16_t)(100 + k), 4 * (k + 1));
	qs_admit_share_add(&sh, 100, 20);
	assert_int_equal(qs_admit_share_get(&sh, 100), 24);
	assert_int_equal(qs_admit_share_get(&sh, 100 + QS_ADMIT_TENANTS - 1), 4 * QS_ADMIT_TENANTS);
	assert_int_equal(qs_admit_share_get(&sh, 100 + QS_ADMIT_TENANTS),
			 4 * (QS_ADMIT_TENANTS + 1) + 4 * (QS_ADMIT_TENANTS + 2));
	qs_admit_share_decay(&sh, QS_ADMIT_SHARE_HALF_NS - 1); /* not a half-life yet */
	assert_int_equal(qs_admit_share_get(&sh, 100), 24);
	qs_admit_share_decay(&sh, 2 * QS_ADMIT_SHARE_HALF_NS); /* two */
	assert_int_equal(qs_admit_share_get(&sh, 100), 6);
	qs_admit_share_decay(&sh, 100 * QS_ADMIT_SHARE_HALF_NS);
	assert_int_equal(qs_admit_share_get(&sh, 100), 0);
	qs_admit_share_clear(&sh);
	qs_admit_share_add(&sh, 7, 3);
	assert_int_equal(qs_admit_share_get(&sh, 8), 0); /* nothing admitted */
	/* The order: priority first, then fewer recent tokens, else the earlier. */
	assert_true(qs_admit_better(2, 100, 1, 0, 1));
	assert_true(qs_admit_better(1, 0, 1, 5, 1));
	assert_false(qs_admit_better(1, 0, 1, 5, 0));
	assert_false(qs_admit_better(1, 5, 1, 5, 1));

	/* Two places. Tenant 1 runs a long sequence; then tenant 1 sends another and
	 * tenant 2 one, in that order, same priority. Fair share admits tenant 2's
	 * first (tenant 1 had 60 prefill tokens admitted, tenant 2 none); priority
	 * admission alone, the earlier (tenant 1's). A fair agent without priority admission is
	 * refused. */
	for (int fair = 0; fair < 2; fair++) {
		rig_up(&r, "fixed:2", 0, false);
		qs_agent_destroy(r.a);
		r.cfg.admit_priority = true;
		r.cfg.admit_fair = fair;
		assert_int_equal(qs_agent_create(&r.cfg, &r.st, &r.ex, &r.a, msg, sizeof(msg)),
				 QS_OK);
		t = 0;
		memset(&q, 0, sizeof(q));
		q.id = 1;
		q.prompt_tokens = 60;
		q.max_new_tokens = 20;
		q.tenant = 1;
		assert_int_equal(qs_agent_submit(r.a, &q, t), QS_OK);
		step_ok(&r, t, &it);
		t += it.ns;
		assert_int_equal(first_of_step(&r), 1);
		/* one place left beside it: who takes it? */
		q.id = 2;
		q.prompt_tokens = 10;
		q.max_new_tokens = 2;
		q.recv_ns = t;
		assert_int_equal(qs_agent_submit(r.a, &q, t), QS_OK);
		q.id = 3;
		q.tenant = 2;
		assert_int_equal(qs_agent_submit(r.a, &q, t), QS_OK);
		step_ok(&r, t, &it);
		t += it.ns;
		assert_int_equal(first_of_step(&r), fair ? 3 : 2);
		assert_int_equal(qs_agent_running(r.a), 2);
		rig_down(&r);
	}
	rig_up(&r, "fixed:2", 0, false);
	qs_agent_destroy(r.a);
	r.cfg.admit_priority = false;
	r.cfg.admit_fair = true;
	assert_int_equal(qs_agent_create(&r.cfg, &r.st, &r.ex, &r.a, msg, sizeof(msg)), QS_E_ARG);
	assert_non_null(strstr(msg, "admit_fair needs admit_priority"));
	r.a = NULL;
	rig_down(&r);
}

/* ---- learned strategy ------------------------------------------------------------------ */

static struct qs_policy *
tiny_classifier(void)
{
	/* One layer, 16 -> 2: output 1 = waiting_log - 20, output 0 = 0. */
	static int8_t w[2 * QS_FB_COUNT];
	static int32_t bias[2] = {0, -20};
	static const struct qs_q8_action act[2] = {
	    {1, 100, 0, 0},
	    {4, 100, 25, QS_Q8_ACT_ORDER_SHORTEST | QS_Q8_ACT_COALESCE},
	};
	struct qs_q8_desc d;
	static uint8_t buf[4096];
	size_t len;
	struct qs_policy *p;
	struct qs_policy_load_opts o = {QS_SCHEMA_BATCH_V1, QS_Q8_KIND_CLASSIFIER, NULL};

	memset(w, 0, sizeof(w));
	w[QS_FB_COUNT + QS_FB_WAITING_LOG] = 1;
	memset(&d, 0, sizeof(d));
	d.kind = QS_Q8_KIND_CLASSIFIER;
	d.schema = QS_SCHEMA_BATCH_V1;
	d.name = "tiny-batch";
	d.n_layers = 1;
	d.layer[0].n_in = QS_FB_COUNT;
	d.layer[0].n_out = 2;
	d.layer[0].w = w;
	d.layer[0].bias = bias;
	d.n_actions = 2;
	d.action = act;
	if (qs_q8_write(&d, buf, sizeof(buf), &len, msg, sizeof(msg)) != QS_OK)
		fail_msg("%s", msg);
	if (qs_policy_load(buf, len, "tiny", &o, &p, msg, sizeof(msg)) != QS_OK)
		fail_msg("%s", msg);
	return p;
}

static void
learned_actions(void **state)
{
	struct rig r;
	struct qs_agent_iter it;
	uint32_t i;

	(void)state;
	hand_cfg(&r.cfg);
	assert_int_equal(qs_batch_from_policy(tiny_classifier(), "tiny", &r.st, msg, sizeof(msg)),
			 QS_OK);
	assert_int_equal(qs_agent_exec_model(&r.cfg.prof, &r.ex, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_agent_create(&r.cfg, &r.st, &r.ex, &r.a, msg, sizeof(msg)), QS_OK);
	/* 2 waiting: log2q(2, 3) = 16 < 20 -> action 0, cap 1. */
	submit(&r, 0, 10, 5, 0);
	submit(&r, 1, 10, 5, 0);
	step_ok(&r, 0, &it);
	assert_int_equal(it.dec.action, 0);
	assert_int_equal(it.seqs, 1);
	assert_int_equal(it.dec.order, QS_BATCH_FCFS);
	assert_false(it.dec.coalesce);
	/* 1 + 4 = 5 waiting: log2q(5, 3) = 26 > 20 -> action 1, cap 4, reserve 25%. */
	for (i = 2; i < 6; i++)
		submit(&r, i, 10, 5, 0);
	step_ok(&r, it.ns, &it);
	assert_int_equal(it.dec.action, 1);
	assert_int_equal(it.dec.lim.max_seqs, 4);
	assert_int_equal(it.dec.lim.kv_reserve_pct, 25);
	assert_int_equal(it.dec.order, QS_BATCH_SHORTEST); /* the action's flags */
	assert_true(it.dec.coalesce);
	assert_int_equal(it.seqs, 4); /* equal prompts: one length bucket */
	assert_int_equal(r.st.action_count[0], 1);
	assert_int_equal(r.st.action_count[1], 1);
	rig_down(&r);
}

/* Every order value and the coalescing bit of an action reach the decision. */
static void
action_flags(void **state)
{
	static const enum qs_batch_order want[3] = {QS_BATCH_FCFS, QS_BATCH_SHORTEST,
						    QS_BATCH_PRIORITY};
	struct qs_batch_decision d;

	(void)state;
	for (uint32_t f = 0; f <= QS_Q8_ACT_FLAGS_VALID; f++) {
		struct qs_q8_action a = {7, 300, 12, f};

		if ((f & QS_Q8_ACT_ORDER_MASK) > QS_Q8_ACT_ORDER_PRIORITY ||
		    (f & QS_Q8_ACT_SPEC_MASK) >> QS_Q8_ACT_SPEC_SHIFT > QS_Q8_ACT_SPEC_MAX)
			continue; /* the loader refuses these */
		memset(&d, 0xff, sizeof(d));
		qs_batch_apply_action(&a, &d);
		assert_int_equal(d.lim.max_seqs, 7);
		assert_int_equal(d.lim.max_tokens, 300);
		assert_int_equal(d.lim.kv_reserve_pct, 12);
		assert_int_equal(d.order, want[f & QS_Q8_ACT_ORDER_MASK]);
		assert_int_equal(d.coalesce, (f & QS_Q8_ACT_COALESCE) != 0);
		assert_int_equal(d.lim.spec_depth, f >> QS_Q8_ACT_SPEC_SHIFT);
	}
}

/* The hand profile with a draft model: k draft steps of 50 + 0.1 * (decode + KV). */
static void
spec_rig_up(struct rig *r, const char *spec, uint32_t max_depth, uint32_t kv_blocks,
	    uint32_t max_tokens)
{
	hand_cfg(&r->cfg);
	r->cfg.prof.spec_max_depth = max_depth;
	r->cfg.prof.draft_fixed_us = 50;
	r->cfg.prof.draft_cost_ratio = 0.1;
	r->cfg.prof.spec_accept = 0.7;
	if (kv_blocks)
		r->cfg.prof.kv_blocks = kv_blocks;
	if (max_tokens)
		r->cfg.prof.max_tokens = max_tokens;
	assert_int_equal(qs_batch_parse(spec, &r->st, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_agent_exec_model(&r->cfg.prof, &r->ex, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_agent_create(&r->cfg, &r->st, &r->ex, &r->a, msg, sizeof(msg)), QS_OK);
}

/*
 * Speculation by hand: every decode iteration verifies min(4, tokens left - 1)
 * drafts, costs the formula's time, and gains 1 + the executor's accepted count;
 * the request ends with exactly its tokens, in the iterations the draws predict,
 * and its blocks come back.
 */
static void
spec_by_hand(void **state)
{
	struct rig r;
	struct qs_agent_iter it;
	const struct qs_agent_event *ev;
	uint32_t n, g = 1, comp = 16, iters = 1, drafted = 0, accepted = 0;
	uint64_t now = 0;

	(void)state;
	spec_rig_up(&r, "spec:4", 4, 0, 0);
	submit(&r, 7, 16, 10, 0);
	step_ok(&r, now, &it); /* the prefill: 1000 + 10 * 16 us, first token */
	assert_int_equal(it.ns, 1160000);
	assert_int_equal(it.draft_tokens, 0);
	now += it.ns;
	qs_agent_events_clear(r.a);
	while (g < 10) {
		uint32_t k = QS_RC_MIN(4u, 10 - g - 1);
		uint32_t acc = qs_agent_model_accepted(7, comp, k, 70);
		double us = 1000 + 10.0 * k + 100 + (comp + 1) + k * (50 + 0.1 * (100 + comp + 1));

		step_ok(&r, now, &it);
		assert_int_equal(it.decode_seqs, 1);
		assert_int_equal(it.draft_tokens, k);
		assert_int_equal(it.ns, (uint64_t)llround(us * 1000));
		assert_int_equal(it.dec.lim.spec_depth, 4);
		now += it.ns;
		g += 1 + acc;
		comp += 1 + acc;
		drafted += k;
		accepted += acc;
		iters++;
		assert_int_equal(qs_agent_stats(r.a)->decode_tokens, g - 1);
	}
	assert_int_equal(g, 10); /* never past max_new_tokens */
	ev = qs_agent_events(r.a, &n);
	assert_int_equal(n, 1);
	assert_int_equal(ev[0].kind, QS_AGENT_EV_DONE);
	assert_int_equal(ev[0].tokens, 10);
	assert_int_equal(qs_agent_stats(r.a)->iterations, iters);
	assert_int_equal(qs_agent_stats(r.a)->spec_drafted, drafted);
	assert_int_equal(qs_agent_stats(r.a)->spec_accepted, accepted);
	assert_true(iters < 10); /* at 70% some draft was accepted, or the test says nothing */
	assert_int_equal(qs_agent_kv(r.a)->n_free, r.cfg.prof.kv_blocks);
	rig_down(&r);
}

/* Drafts come out of what the decodes leave: one sequence's drafts never preempt
 * another nor take its decode's place in the budget. */
static void
spec_leftovers_only(void **state)
{
	struct rig r;
	struct qs_agent_iter it;

	(void)state;
	/* 4 blocks: after both decodes take theirs one is left for drafts; the older
	 * sequence's drafts are cut to its own block (1), the newer's fill its (8) */
	spec_rig_up(&r, "spec:8", 8, 4, 0);
	submit(&r, 1, 30, 20, 0);
	submit(&r, 2, 16, 20, 0);
	step_ok(&r, 0, &it);
	assert_int_equal(it.seqs, 2);
	step_ok(&r, it.ns, &it);
	assert_int_equal(it.seqs, 2);
	assert_int_equal(it.decode_seqs, 2);
	assert_int_equal(it.preempted, 0);
	assert_int_equal(it.draft_tokens, 1 + 8);
	rig_down(&r);
	/* a 12-token budget: four decodes first, the 8 tokens left are drafts */
	spec_rig_up(&r, "spec:8", 8, 0, 12);
	for (uint64_t id = 1; id <= 4; id++)
		submit(&r, id, 2, 20, 0);
	step_ok(&r, 0, &it);
	assert_int_equal(it.seqs, 4);
	step_ok(&r, it.ns, &it);
	assert_int_equal(it.decode_seqs, 4);
	assert_int_equal(it.draft_tokens, 8);
	assert_int_equal(it.preempted, 0);
	rig_down(&r);
}

/* Random traffic under speculation, with cancels while iterations run: every
 * invariant of qs_agent_check holds after every step, and the cache drains. */
static void
spec_stress(void **state)
{
	static const char *const strat[] = {"spec:8", "spec:1", "spec-rule"};
	uint64_t x = 0x5eed;

	(void)state;
	for (int v = 0; v < 6; v++) {
		struct rig r;
		struct qs_agent_iter it;
		uint64_t now = 0, id = 1;

		spec_rig_up(&r, strat[v % 3], 8, 24, 0);
		qs_agent_destroy(r.a); /* again, with chunked prefill or without */
		r.cfg.chunked_prefill = v >= 3;
		assert_int_equal(qs_agent_create(&r.cfg, &r.st, &r.ex, &r.a, msg, sizeof(msg)),
				 QS_OK);
		for (int step = 0; step < 1500; step++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			if ((x >> 60) < 6 && step < 1200) {
				struct qs_agent_req q;

				memset(&q, 0, sizeof(q));
				q.id = id++;
				q.prompt_tokens = 1 + (uint32_t)(x >> 20) % 60;
				q.max_new_tokens = 1 + (uint32_t)(x >> 30) % 40;
				q.spec_accept_pct = (uint8_t)((x >> 40) % 100);
				(void)qs_agent_submit(r.a, &q, now); /* too long: rejected */
			}
			assert_int_equal(qs_agent_step_start(r.a, now, &it, msg, sizeof(msg)),
					 QS_OK);
			if ((x >> 56) % 8 == 0 && id > 1) {
				struct qs_agent_req c;

				memset(&c, 0, sizeof(c));
				c.id = 1 + (x >> 8) % (id - 1);
				(void)qs_agent_cancel(r.a, &c, now); /* may be gone already */
			}
			qs_agent_step_finish(r.a, &it);
			qs_agent_events_clear(r.a);
			if (qs_agent_check(r.a, msg, sizeof(msg)) != QS_OK)
				fail_msg("%s, step %d: %s", strat[v % 3], step, msg);
			now += it.ns ? it.ns : 1000000;
		}
		assert_int_equal(qs_agent_running(r.a) + qs_agent_waiting(r.a), 0);
		assert_int_equal(qs_agent_kv(r.a)->n_free, 24);
		assert_true(qs_agent_stats(r.a)->spec_accepted > 0);
		rig_down(&r);
	}
}

/* Without a draft model (the profile's depth 0) spec:K is `fixed`, iteration for
 * iteration; a profile's depth caps the strategy's. */
static void
spec_needs_draft_model(void **state)
{
	struct rig a, b;
	struct qs_agent_iter ia, ib;
	uint64_t now = 0;

	(void)state;
	spec_rig_up(&a, "spec:4", 0, 0, 0);
	rig_up(&b, "fixed", 0, false);
	submit(&a, 1, 40, 30, 0);
	submit(&b, 1, 40, 30, 0);
	for (int i = 0; i < 40; i++) {
		step_ok(&a, now, &ia);
		step_ok(&b, now, &ib);
		assert_int_equal(ia.ns, ib.ns);
		assert_int_equal(ia.draft_tokens, 0);
		assert_int_equal(ia.dec.lim.spec_depth, 0);
		now += ia.ns;
	}
	assert_int_equal(qs_agent_stats(a.a)->completed, 1);
	rig_down(&a);
	rig_down(&b);
	spec_rig_up(&a, "spec:8", 2, 0, 0);
	submit(&a, 1, 40, 30, 0);
	step_ok(&a, 0, &ia);
	step_ok(&a, ia.ns, &ia);
	assert_int_equal(ia.dec.lim.spec_depth, 2);
	assert_int_equal(ia.draft_tokens, 2);
	rig_down(&a);
	/* heuristics other than spec:K and spec-rule never speculate */
	spec_rig_up(&a, "throughput", 4, 0, 0);
	submit(&a, 1, 40, 30, 0);
	step_ok(&a, 0, &ia);
	step_ok(&a, ia.ns, &ia);
	assert_int_equal(ia.draft_tokens, 0);
	rig_down(&a);
}

/* The model executor's draws follow Leviathan et al.'s expectation, stay within the
 * draft, and are a function of (request, position) alone. */
static void
spec_draws(void **state)
{
	static const uint32_t pct[] = {30, 70, 90};
	uint64_t sum;

	(void)state;
	for (size_t p = 0; p < sizeof(pct) / sizeof(pct[0]); p++) {
		sum = 0;
		for (uint32_t i = 0; i < 200000; i++) {
			uint32_t a = qs_agent_model_accepted(i / 50, 100 + i % 50, 4, pct[p]);

			assert_true(a <= 4);
			sum += a;
		}
		double want = qs_spec_expected_tokens(pct[p] / 100.0, 4) - 1, got = sum / 200000.0;

		if (fabs(got - want) > 0.01 * want)
			fail_msg("acceptance %u%%: %.4f accepted per draft of 4, want %.4f", pct[p],
				 got, want);
	}
	assert_int_equal(qs_agent_model_accepted(5, 9, 0, 90), 0);
	for (uint32_t i = 0; i < 1000; i++)
		assert_int_equal(qs_agent_model_accepted(i, 3, 8, 0), 0);
	assert_int_equal(qs_agent_model_accepted(12, 34, 8, 70),
			 qs_agent_model_accepted(12, 34, 8, 70));
	/* percentages past 99 are 99 (a draft model is never always right) */
	assert_int_equal(qs_agent_model_accepted(12, 34, 8, 250),
			 qs_agent_model_accepted(12, 34, 8, 99));
}

/* spec-rule: deep drafts for small batches, none for large ones, one less at long
 * contexts. */
static void
spec_rule_depths(void **state)
{
	static const struct {
		uint32_t running, ctx, depth;
	} t[] = {{1, 100, 4},	{4, 400, 4},   {5, 500, 3},   {16, 1600, 3}, {17, 1700, 2},
		 {32, 3200, 2}, {64, 6400, 1}, {65, 6500, 0}, {2, 8000, 3},  {64, 200000, 0}};
	struct qs_batch_strategy s;
	struct qs_batch_view v;
	struct qs_batch_decision d;

	(void)state;
	assert_int_equal(qs_batch_parse("spec-rule", &s, msg, sizeof(msg)), QS_OK);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&v, 0, sizeof(v));
		v.hw = (struct qs_batch_limits){256, 8192, 0, 8};
		v.st.running = t[i].running;
		v.st.run_ctx_tokens = t[i].ctx;
		qs_batch_decide(&s, &v, &d);
		if (d.lim.spec_depth != t[i].depth)
			fail_msg("%u running, %u context: depth %u, want %u", t[i].running,
				 t[i].ctx, d.lim.spec_depth, t[i].depth);
	}
	assert_int_equal(qs_batch_parse("spec:9", &s, msg, sizeof(msg)), QS_E_ARG);
	assert_non_null(strstr(msg, "1..8"));
	assert_int_equal(qs_batch_parse("spec", &s, msg, sizeof(msg)), QS_E_ARG);
}

static void
batch_features(void **state)
{
	struct qs_batch_state s;
	uint8_t x[QS_FB_COUNT];

	(void)state;
	memset(&s, 0, sizeof(s));
	s.waiting = 5;
	s.kv_used = 1;
	s.kv_total = 4;
	s.head_prompt = 1000;
	s.tight_waiting = 5;
	s.prev_cap = 1;
	qs_batch_features_v1(&s, x);
	assert_int_equal(x[QS_FB_WAITING_LOG], 26);
	assert_int_equal(x[QS_FB_RUNNING_LOG], 0);
	assert_int_equal(x[QS_FB_KV_UTIL], 32);
	assert_int_equal(x[QS_FB_HEAD_PROMPT_LOG], 87); /* msb 9: (10 << 3) | 7 */
	assert_int_equal(x[QS_FB_TIGHT_SHARE], 127);
	assert_int_equal(x[QS_FB_PREFILL_SHARE], 0); /* 0 running: ratio with den 0 is 0 */
	assert_int_equal(x[QS_FB_PREV_CAP_LOG], 8);
	assert_int_equal(QS_FB__END, QS_FB_COUNT);
}

/* ---- reports ------------------------------------------------------------------------------ */

static void
reports_cumulative(void **state)
{
	struct rig r;
	struct qs_agent_iter it;
	struct qs_qrp_report rep, back;
	struct qs_qrp_hdr h = {0};
	uint8_t buf[QS_QRP_HDR_LEN + QS_QRP_REPORT_LEN];
	uint64_t t = 0;
	uint32_t i;

	(void)state;
	rig_up(&r, "fixed:2", 0, false);
	r.cfg.backend_id = 3;
	for (i = 0; i < 5; i++)
		submit(&r, i, 16, 2, 0);
	qs_agent_report(r.a, 0, &rep);
	assert_int_equal(rep.received, 5);
	assert_int_equal(rep.completed, 0);
	assert_int_equal(rep.waiting, 5);
	assert_int_equal(rep.kv_total, 8);
	assert_int_equal(rep.prefill_pending, 80);
	/* Two iterations: requests 0 and 1 done. */
	for (i = 0; i < 2; i++) {
		step_ok(&r, t, &it);
		t += it.ns;
	}
	qs_agent_report(r.a, t, &rep);
	assert_int_equal(rep.received, 5);
	assert_int_equal(rep.completed, 2);
	assert_int_equal(rep.waiting, 3);
	assert_int_equal(rep.ttft_p99_us, 1320);
	assert_int_equal(rep.decode_tps, (uint32_t)(2 * 1000000000ull / t));
	/* A report with no first token since the last still carries the window's
	 * largest TTFT (ttft_window.h), as the simulator's backends report it: a
	 * per-interval p99 read 0 here and the shipped policy's feature 10 with it. */
	qs_agent_report(r.a, t, &back);
	assert_int_equal(back.ttft_p99_us, 1320);
	assert_int_equal(back.decode_tps, 0);
	/* A lost report loses nothing: the next one still carries the totals. */
	for (i = 0; i < 4; i++) {
		step_ok(&r, t, &it);
		t += it.ns;
	}
	qs_agent_report(r.a, t, &rep);
	assert_int_equal(rep.received, 5);
	assert_int_equal(rep.completed, 5);
	assert_int_equal(rep.sent_ns, t);
	/* On the wire: header type 3, the body parses back to the same values. */
	assert_int_equal(qs_agent_report_encode(&rep, 77, NULL, buf), sizeof(buf));
	assert_int_equal(qs_qrp_parse_hdr(buf, sizeof(buf), &h), QS_QRP_OK);
	assert_int_equal(h.type, QS_QRP_T_REPORT);
	assert_int_equal(h.request_id, 77);
	assert_int_equal(qs_qrp_parse_report(buf + h.hdr_len, sizeof(buf) - h.hdr_len, &back),
			 QS_QRP_OK);
	assert_memory_equal(&back.received, &rep.received, sizeof(uint64_t));
	assert_int_equal(back.completed, 5);
	assert_int_equal(back.kv_total, 8);
	/* With a report key: the tag flag, 16 more bytes, and a tag the dataplanes
	 * accept under that key (and under no other) */
	{
		struct qs_report_key k, other;
		uint8_t sb[QS_QRP_AUTH_MSG_LEN + QS_QRP_REPORT_TAG_LEN];

		assert_int_equal(qs_report_key_hex("00112233445566778899aabbccddeeff", &k), 0);
		assert_int_equal(qs_report_key_hex("10112233445566778899aabbccddeeff", &other), 0);
		assert_int_equal(qs_agent_report_encode(&rep, 78, &k, sb), sizeof(sb));
		assert_int_equal(qs_qrp_parse_hdr(sb, sizeof(sb), &h), QS_QRP_OK);
		assert_true(h.flags & QS_QRP_F_AUTH);
		assert_int_equal(qs_qrp_report_len(h.flags), sizeof(sb) - QS_QRP_HDR_LEN);
		assert_true(qs_report_auth_ok(&k, h.flags, sb));
		assert_false(qs_report_auth_ok(&other, h.flags, sb));
		assert_memory_equal(sb + QS_QRP_HDR_LEN, buf + QS_QRP_HDR_LEN, QS_QRP_REPORT_LEN);
	}
	rig_down(&r);
}

/*
 * A cancel stops a running request at once: its KV blocks are free before the next
 * iteration, and the answer (CANCELLED, with the tokens generated) goes to where
 * the cancel came from; a second cancel is answered CANCEL_UNKNOWN; both travel as
 * response datagrams that parse back.
 */
static void
cancel_answers(void **state)
{
	struct rig r;
	struct qs_agent_iter it;
	const struct qs_agent_event *ev;
	struct qs_agent_req c;
	struct qs_qrp_report rep;
	struct qs_qra_resp back;
	uint8_t buf[QS_QRA_LEN];
	uint64_t t = 0;
	uint32_t n, i;

	(void)state;
	rig_up(&r, "fixed:2", 0, false);
	submit(&r, 7, 16, 50, 0);
	for (i = 0; i < 4; i++) {
		step_ok(&r, t, &it);
		t += it.ns ? it.ns : 1000;
	}
	qs_agent_report(r.a, t, &rep);
	assert_true(rep.kv_used > 0);
	qs_agent_events_clear(r.a);
	memset(&c, 0, sizeof(c));
	c.id = 7;
	c.client.len = 4;
	c.client.b[0] = 9;
	assert_int_equal(qs_agent_cancel(r.a, &c, t), QS_OK);
	ev = qs_agent_events(r.a, &n);
	assert_int_equal(n, 1);
	assert_int_equal(ev[0].kind, QS_AGENT_EV_CANCELLED);
	assert_int_equal(ev[0].request_id, 7);
	assert_true(ev[0].tokens > 0 && ev[0].tokens < 50);
	assert_int_equal(ev[0].client.b[0], 9);
	assert_int_equal(qs_agent_event_encode(&ev[0], 3, buf), QS_QRA_LEN);
	assert_int_equal(qs_qra_parse(buf, sizeof(buf), &back), 0);
	assert_int_equal(back.kind, QS_QRA_K_CANCELLED);
	assert_int_equal(back.tokens, ev[0].tokens);
	qs_agent_report(r.a, t, &rep);
	assert_int_equal(rep.kv_used, 0);
	assert_int_equal(qs_agent_running(r.a) + qs_agent_waiting(r.a), 0);
	qs_agent_events_clear(r.a);
	assert_int_equal(qs_agent_cancel(r.a, &c, t), QS_E_ARG);
	ev = qs_agent_events(r.a, &n);
	assert_int_equal(n, 1);
	assert_int_equal(ev[0].kind, QS_AGENT_EV_CANCEL_UNKNOWN);
	assert_int_equal(ev[0].client.b[0], 9);
	assert_int_equal(qs_agent_event_encode(&ev[0], 3, buf), QS_QRA_LEN);
	assert_int_equal(qs_qra_parse(buf, sizeof(buf), &back), 0);
	assert_int_equal(back.kind, QS_QRA_K_CANCEL_UNKNOWN);
	/* the loop goes on with nothing held */
	step_ok(&r, t, &it);
	assert_int_equal(it.seqs, 0);
	rig_down(&r);
}

/* Per-tenant counts (issue 15): a row per tenant in the order first seen, the ninth
 * and later tenants summed in one more row; every request counted once where it
 * ended (completed, cancelled, rejected), and each row's first tokens and longest
 * TTFT its own. */
static void
tenant_stats(void **state)
{
	struct rig r;
	struct qs_agent_iter it;
	struct qs_agent_req q, c;
	const struct qs_agent_stats *st;
	uint64_t t = 0, sum = 0;
	uint32_t i;

	(void)state;
	rig_up(&r, "fixed:2", 0, false);
	/* tenants 5, 3, then 12 more (ids 100..111): 8 rows of their own, 6 summed */
	for (i = 0; i < 14; i++) {
		memset(&q, 0, sizeof(q));
		q.id = 1 + i;
		q.prompt_tokens = 8;
		q.max_new_tokens = 3;
		q.tenant = (uint16_t)(i == 0 ? 5 : i == 1 ? 3 : 100 + i);
		assert_int_equal(qs_agent_submit(r.a, &q, 0), QS_OK);
	}
	memset(&q, 0, sizeof(q));
	q.id = 99;
	q.prompt_tokens = 8; /* no tokens to generate: rejected */
	q.tenant = 3;
	assert_int_equal(qs_agent_submit(r.a, &q, 0), QS_E_SIZE);
	memset(&c, 0, sizeof(c));
	c.id = 14; /* the last one, still waiting */
	assert_int_equal(qs_agent_cancel(r.a, &c, 0), QS_OK);
	for (i = 0; i < 200 && qs_agent_running(r.a) + qs_agent_waiting(r.a) > 0; i++) {
		step_ok(&r, t, &it);
		t += it.ns ? it.ns : 1000;
	}
	st = qs_agent_stats(r.a);
	assert_int_equal(st->n_tenants, QS_AGENT_TENANTS + 1);
	assert_int_equal(st->tenant[0].tenant, 5);
	assert_int_equal(st->tenant[1].tenant, 3);
	assert_int_equal(st->tenant[2].tenant, 102);
	assert_false(st->tenant[QS_AGENT_TENANTS - 1].others);
	assert_true(st->tenant[QS_AGENT_TENANTS].others);
	assert_int_equal(st->tenant[1].received, 2);
	assert_int_equal(st->tenant[1].rejected, 1);
	assert_int_equal(st->tenant[1].completed, 1);
	assert_int_equal(st->tenant[QS_AGENT_TENANTS].received, 6);
	assert_int_equal(st->tenant[QS_AGENT_TENANTS].completed, 5);
	assert_int_equal(st->tenant[QS_AGENT_TENANTS].cancelled, 1);
	for (i = 0; i < st->n_tenants; i++) {
		const struct qs_agent_tenant_stats *ts = &st->tenant[i];

		sum += ts->received;
		assert_int_equal(ts->received, ts->completed + ts->cancelled + ts->rejected);
		assert_int_equal(ts->first_tokens, ts->completed);
		assert_true(ts->completed == 0 || ts->ttft_max_ns > 0);
	}
	assert_int_equal(sum, st->received);
	/* the later tenants waited behind the first two pairs: a longer worst TTFT */
	assert_true(st->tenant[QS_AGENT_TENANTS].ttft_max_ns > st->tenant[0].ttft_max_ns);
	rig_down(&r);
}

static void
response_wire(void **state)
{
	struct qs_agent_event e;
	struct qs_qra_resp r;
	uint8_t b[QS_QRA_LEN];

	(void)state;
	memset(&e, 0, sizeof(e));
	e.kind = QS_AGENT_EV_DONE;
	e.request_id = 0x0102030405060708ull;
	e.tokens = 9;
	e.arrival_ns = 1;
	e.first_ns = 2;
	e.event_ns = 3;
	assert_int_equal(qs_agent_event_encode(&e, 4, b), QS_QRA_LEN);
	assert_int_equal(qs_qra_parse(b, sizeof(b), &r), QS_QRP_OK);
	assert_int_equal(r.kind, QS_QRA_K_DONE);
	assert_int_equal(r.backend_id, 4);
	assert_int_equal(r.request_id, e.request_id);
	assert_int_equal(r.tokens, 9);
	assert_int_equal(r.event_ns, 3);
	assert_int_equal(qs_qra_parse(b, 47, &r), QS_QRP_E_SHORT);
	/* Never mistaken for QRP: wrong magic for the QRP parser. */
	{
		struct qs_qrp_hdr h;
		uint8_t big[64] = {0};

		memcpy(big, b, sizeof(b));
		assert_int_equal(qs_qrp_parse_hdr(big, sizeof(big), &h), QS_QRP_E_MAGIC);
	}
}

/* ---- profiles ------------------------------------------------------------------------------ */

static void
profile_parse_fit(void **state)
{
	struct qs_sim_profile p, q;
	struct qs_agent_iter_sample s[64];
	double rms;
	uint32_t n = 0, a, b, c;
	char path[] = "/tmp/qsteer-agent-profile-XXXXXX";
	FILE *f;

	(void)state;
	assert_int_equal(qs_agent_profile_parse("[profile]\nname = t\nmodel = batch\nfixed_us = 5\n"
						"prefill_us_per_token = 2\ndecode_us_per_seq = 3\n"
						"kv_us_per_token = 0.5\nmax_seqs = 8\n",
						"t.ini", &p, msg, sizeof(msg)),
			 QS_OK);
	assert_true(p.fixed_us == 5 && p.prefill_us_per_token == 2 && p.kv_us_per_token == 0.5);
	assert_int_equal(p.max_seqs, 8);
	assert_int_not_equal(
	    qs_agent_profile_parse("[profile]\nbogus = 1\n", "b.ini", &q, msg, sizeof(msg)), QS_OK);
	assert_int_not_equal(
	    qs_agent_profile_parse("[profile]\nmax_seqs = -1\n", "b.ini", &q, msg, sizeof(msg)),
	    QS_OK);
	/* The fit recovers a profile from exact samples. */
	for (a = 0; a < 4; a++)
		for (b = 0; b < 4; b++)
			for (c = 0; c < 4; c++) {
				s[n].prefill_tokens = a * 128;
				s[n].decode_seqs = b * 8;
				s[n].kv_tokens = b * 8 * (c * 256.0 + 1);
				s[n].us = 5 + 2 * s[n].prefill_tokens + 3 * s[n].decode_seqs +
					  0.5 * s[n].kv_tokens;
				n++;
			}
	q = p;
	q.fixed_us = q.prefill_us_per_token = q.decode_us_per_seq = q.kv_us_per_token = 0;
	assert_int_equal(qs_agent_profile_fit(s, n, &q, &rms, msg, sizeof(msg)), QS_OK);
	assert_true(rms < 1e-6);
	assert_true(q.fixed_us > 4.999 && q.fixed_us < 5.001);
	assert_true(q.prefill_us_per_token > 1.999 && q.prefill_us_per_token < 2.001);
	assert_true(q.decode_us_per_seq > 2.999 && q.decode_us_per_seq < 3.001);
	assert_true(q.kv_us_per_token > 0.4999 && q.kv_us_per_token < 0.5001);
	/* Written, it loads back (through the simulator's loader when it is built). */
	f = qs_test_tmpfile(path);
	assert_int_equal(qs_agent_profile_write(f, &q), QS_OK);
	fclose(f);
	memset(&p, 0, sizeof(p));
	if (qs_agent_profile_load(path, &p, msg, sizeof(msg)) != QS_OK)
		fail_msg("%s", msg);
	remove(path);
	assert_true(p.fixed_us > 4.99 && p.fixed_us < 5.01);
	assert_int_equal(p.max_seqs, 8);
	/* A grid that never varies a term cannot be fitted. */
	for (a = 0; a < n; a++)
		s[a].prefill_tokens = 0;
	assert_int_equal(qs_agent_profile_fit(s, n, &q, &rms, msg, sizeof(msg)), QS_E_VALUE);
}

/* ---- bench streams: the simulator's scenarios ------------------------------------------------ */

/*
 * The long-context scenario on the profile with a draft model: the classes'
 * acceptances reach the stream; spec:4 and fixed run the same arrivals to the same
 * completions, and speculation shortens the time per output token (the decodes
 * read thousands of context tokens each, which k + 1 positions share).
 */
static void
bench_speculation(void **state)
{
	struct qs_agent_bench_cfg bc;
	struct qs_agent_cfg ac;
	struct qs_agent_bench_arrivals a;
	struct qs_agent_bench_result rf, rs;
	struct qs_batch_strategy sf, ss;
	struct qs_agent_exec ex;

	(void)state;
	qs_agent_cfg_default(&ac);
	if (qs_agent_profile_load(QSTEER_TEST_PROFILE_DIR "/a100-80gb-llama2-7b-spec.ini", &ac.prof,
				  msg, sizeof(msg)) != QS_OK)
		fail_msg("%s", msg);
	qs_agent_bench_cfg_default(&bc, QS_AGENT_SCN_LONG_CONTEXT);
	bc.requests = 300;
	if (qs_agent_bench_arrivals(&bc, &ac, &a, msg, sizeof(msg)) != QS_OK)
		fail_msg("%s", msg);
	assert_int_equal(a.spec_accept_pct[0], 70); /* [class.docqa] */
	assert_int_equal(a.spec_accept_pct[1], 77); /* [class.code] */
	bc.arrivals = &a;
	assert_int_equal(qs_batch_parse("fixed", &sf, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_batch_parse("spec:4", &ss, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_agent_exec_model(&ac.prof, &ex, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_agent_bench_run(&bc, &ac, &sf, &ex, &rf, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_agent_bench_run(&bc, &ac, &ss, &ex, &rs, msg, sizeof(msg)), QS_OK);
	print_message("long-context, 300 requests: fixed TPOT p99 %.1f ms, spec:4 %.1f ms; "
		      "iterations %llu / %llu\n",
		      rf.tpot_p99_ms, rs.tpot_p99_ms, (unsigned long long)rf.iterations,
		      (unsigned long long)rs.iterations);
	assert_int_equal(rf.completed, 300);
	assert_int_equal(rs.completed, 300);
	assert_true(rs.tpot_p99_ms < rf.tpot_p99_ms);
	assert_true(rs.iterations < rf.iterations);
	qs_agent_exec_destroy(&ex);
	qs_agent_bench_arrivals_free(&a);
}

/*
 * The bench's stream is the simulator's workload for the scenario file, request for
 * request: the same file on its own six backends, at the rate the bench's one backend
 * resolved, routed round robin, arrives identically (the simulator's streams do not
 * depend on backends or routing). And the SLOs are the file's.
 */
static void
bench_stream_is_the_scenario(void **state)
{
	struct qs_agent_bench_cfg bc;
	struct qs_agent_cfg ac;
	struct qs_agent_bench_arrivals a, b;
	struct qs_sim_config *sc = malloc(sizeof(*sc));
	struct qs_sim_decision *d = malloc(sizeof(*d));
	struct qs_sim *sim;
	uint32_t i, n = 0, mega = 0, chat = 0;

	(void)state;
	assert_non_null(sc);
	assert_non_null(d);
	qs_agent_cfg_default(&ac);
	qs_agent_bench_cfg_default(&bc, QS_AGENT_SCN_ADVERSARIAL);
	bc.requests = 600;
	bc.seed = 5;
	if (qs_agent_bench_arrivals(&bc, &ac, &a, msg, sizeof(msg)) != QS_OK)
		fail_msg("%s", msg);
	assert_int_equal(a.n, 600);
	assert_non_null(strstr(a.path, "sim/scenarios/adversarial.ini"));
	assert_true(a.load > 1.049 && a.load < 1.051); /* the file's load */
	assert_true(a.rate_rps > 0.2 && a.rate_rps < 20);
	/* [slo.0] ttft 10 s; [slo.1] ttft 1.5 s, tpot 150 ms. */
	assert_true(a.slo[0].ttft_ms == 10000 && a.slo[0].tpot_ms == 0 && a.slo[0].e2e_ms == 0);
	assert_true(a.slo[1].ttft_ms == 1500 && a.slo[1].tpot_ms == 150);
	for (i = 0; i < a.n; i++) {
		const struct qs_sim_request *r = &a.req[i];

		assert_true(i == 0 || r->arrival_ns >= a.req[i - 1].arrival_ns);
		if (r->tenant == 1) {
			/* [class.mega]: uniform 6500..7600, 64 new tokens, burst phases only. */
			assert_true(r->prompt_tokens >= 6500 && r->prompt_tokens <= 7600);
			assert_int_equal(r->max_new_tokens, 64);
			assert_int_equal(r->slo_class, 0);
			assert_int_equal(r->priority, 0);
			mega++;
		} else {
			/* [class.chat]: tenant 0, SLO class 1, priority 2, a shared prefix. */
			assert_int_equal(r->tenant, 0);
			assert_int_equal(r->slo_class, 1);
			assert_int_equal(r->priority, 2);
			assert_true(r->prompt_tokens > 1024 && r->prefix_hash != 0);
			chat++;
		}
	}
	assert_true(mega > 5 && chat > 10 * mega);

	/* Request for request what the simulator generates for the file itself. */
	assert_int_equal(qs_agent_bench_scenario_load(&bc, sc, msg, sizeof(msg)), QS_OK);
	assert_int_equal(sc->n_backends, 6);
	sc->wl.load = 0;
	sc->wl.rate = a.rate_rps;
	sc->wl.requests = a.n;
	sc->wl.duration_s = 0;
	if (qs_sim_create(sc, bc.seed, &sim, msg, sizeof(msg)) != QS_OK)
		fail_msg("%s", msg);
	while (qs_sim_next_decision(sim, d, msg, sizeof(msg)) == QS_OK && !d->done) {
		assert_true(n < a.n);
		assert_memory_equal(&d->req, &a.req[n], sizeof(d->req));
		n++;
		assert_int_equal(
		    qs_sim_route(sim, (uint32_t)(d->decision_id % 6), msg, sizeof(msg)), QS_OK);
	}
	assert_int_equal(n, a.n);
	qs_sim_destroy(sim);

	/* Same seed: the same bytes; another seed: another stream. */
	assert_int_equal(qs_agent_bench_arrivals(&bc, &ac, &b, msg, sizeof(msg)), QS_OK);
	assert_int_equal(b.n, a.n);
	assert_memory_equal(a.req, b.req, a.n * sizeof(*a.req));
	qs_agent_bench_arrivals_free(&b);
	bc.seed = 6;
	assert_int_equal(qs_agent_bench_arrivals(&bc, &ac, &b, msg, sizeof(msg)), QS_OK);
	assert_true(memcmp(a.req, b.req, a.n * sizeof(*a.req)) != 0);
	qs_agent_bench_arrivals_free(&b);

	/* A load override scales the rate (the file's load otherwise). */
	bc.seed = 5;
	bc.load = 0.5;
	assert_int_equal(qs_agent_bench_arrivals(&bc, &ac, &b, msg, sizeof(msg)), QS_OK);
	assert_true(b.load == 0.5);
	assert_true(fabs(b.rate_rps / a.rate_rps - 0.5 / 1.05) < 1e-9);
	qs_agent_bench_arrivals_free(&b);

	/* Without a request count the scenario's own duration (600 s) ends the stream. */
	qs_agent_bench_cfg_default(&bc, QS_AGENT_SCN_BURSTY);
	bc.requests = 0;
	assert_int_equal(qs_agent_bench_arrivals(&bc, &ac, &b, msg, sizeof(msg)), QS_OK);
	assert_true(b.n > 100);
	assert_true(b.req[b.n - 1].arrival_ns <= 600000000000ull);
	/* [slo] sets every class; [slo.N] only its own. */
	assert_true(b.slo[0].ttft_ms == 2000 && b.slo[3].tpot_ms == 150);
	assert_true(a.slo[2].ttft_ms == 0 && a.slo[2].tpot_ms == 0);
	qs_agent_bench_arrivals_free(&b);
	qs_agent_bench_arrivals_free(&a);
	free(sc);
	free(d);
}

/* A missing or invalid scenario file is an error that names the file. */
static void
bench_scenario_errors(void **state)
{
	struct qs_agent_bench_cfg bc;
	struct qs_agent_cfg ac;
	struct qs_agent_bench_result r;
	struct qs_batch_strategy s;
	struct qs_agent_exec ex;
	char dir[] = "/tmp/qsteer-test-scn-XXXXXX", path[64];
	FILE *f;

	(void)state;
	qs_agent_cfg_default(&ac);
	assert_int_equal(qs_batch_parse("fixed", &s, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_agent_exec_model(&ac.prof, &ex, msg, sizeof(msg)), QS_OK);
	qs_agent_bench_cfg_default(&bc, QS_AGENT_SCN_BURSTY);
	snprintf(bc.scenario_dir, sizeof(bc.scenario_dir), "/nonexistent/qsteer-scenarios");
	assert_int_not_equal(qs_agent_bench_run(&bc, &ac, &s, &ex, &r, msg, sizeof(msg)), QS_OK);
	assert_non_null(strstr(msg, "/nonexistent/qsteer-scenarios/bursty.ini"));

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/bursty.ini", dir);
	snprintf(bc.scenario_dir, sizeof(bc.scenario_dir), "%s", dir);
	setenv("QSTEER_PROFILE_DIR", QSTEER_TEST_PROFILE_DIR, 1);
	/* An unknown key in an otherwise runnable file, so only the key can fail it. */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("[workload]\nload = 0.5\nrequests = 10\nbogus = 1\n[class.a]\n"
	      "prompt_dist = fixed\nprompt_mean = 10\ngen_dist = fixed\ngen_mean = 5\n"
	      "[backend.x]\nprofile = a100-80gb-llama2-7b\n",
	      f);
	fclose(f);
	assert_int_not_equal(qs_agent_bench_run(&bc, &ac, &s, &ex, &r, msg, sizeof(msg)), QS_OK);
	assert_non_null(strstr(msg, path));
	assert_non_null(strstr(msg, "bogus"));
	/* A rate and no load: a cluster's rate says nothing about one backend. */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("[workload]\nrate = 5\nrequests = 10\n[class.a]\nprompt_dist = fixed\n"
	      "prompt_mean = 10\ngen_dist = fixed\ngen_mean = 5\n[backend.x]\n"
	      "profile = a100-80gb-llama2-7b\n",
	      f);
	fclose(f);
	assert_int_equal(qs_agent_bench_run(&bc, &ac, &s, &ex, &r, msg, sizeof(msg)), QS_E_VALUE);
	assert_non_null(strstr(msg, path));
	assert_non_null(strstr(msg, "load"));
	/* ... which a load override supplies; no request count: the file's 10. */
	bc.load = 0.5;
	bc.requests = 0;
	if (qs_agent_bench_run(&bc, &ac, &s, &ex, &r, msg, sizeof(msg)) != QS_OK)
		fail_msg("%s", msg);
	assert_int_equal(r.requests, 10);
	assert_int_equal(r.completed, 10);
	unsetenv("QSTEER_PROFILE_DIR");
	unlink(path);
	rmdir(dir);
	qs_agent_exec_destroy(&ex);
	qs_batch_free(&s);
}

/* ---- bench smoke --------------------------------------------------------------------------- */

static void
bench_smoke(void **state)
{
	struct qs_agent_bench_cfg bc;
	struct qs_agent_cfg ac;
	struct qs_agent_bench_result r1, r2;
	int scn;

	(void)state;
	qs_agent_cfg_default(&ac);
	for (scn = 0; scn < QS_AGENT_SCN__COUNT; scn++) {
		for (int k = 0; qs_batch_builtin[k]; k++) {
			struct qs_batch_strategy s;
			struct qs_agent_exec ex;

			qs_agent_bench_cfg_default(&bc, scn);
			bc.requests = 150;
			assert_int_equal(qs_batch_parse(qs_batch_builtin[k], &s, msg, sizeof(msg)),
					 QS_OK);
			assert_int_equal(qs_agent_exec_model(&ac.prof, &ex, msg, sizeof(msg)),
					 QS_OK);
			if (qs_agent_bench_run(&bc, &ac, &s, &ex, &r1, msg, sizeof(msg)) != QS_OK)
				fail_msg("%s", msg);
			/* Same arrivals, same strategy: the same numbers. */
			qs_batch_free(&s);
			qs_batch_parse(qs_batch_builtin[k], &s, msg, sizeof(msg));
			assert_int_equal(
			    qs_agent_bench_run(&bc, &ac, &s, &ex, &r2, msg, sizeof(msg)), QS_OK);
			assert_int_equal(r1.requests, 150);
			assert_int_equal(r1.completed, 150);
			assert_true(r1.slo_met > 0);
			assert_true(r1.ttft_p99_ms == r2.ttft_p99_ms && r1.slo_met == r2.slo_met &&
				    r1.makespan_s == r2.makespan_s &&
				    r1.preemptions == r2.preemptions);
			qs_agent_exec_destroy(&ex);
			qs_batch_free(&s);
		}
	}
}

/* The reports' TTFT window: the largest of the last 32 first-token times, in us,
 * saturating; the 33rd sample pushes out the first. */
static void
ttft_window_cases(void **state)
{
	struct qs_ttft_window w = {0};
	uint32_t i;

	(void)state;
	assert_int_equal(qs_ttft_window_max(&w), 0);
	qs_ttft_window_push(&w, 900000); /* 900 ms, the largest */
	for (i = 0; i < QS_TTFT_WINDOW - 1; i++)
		qs_ttft_window_push(&w, 1000 * (i + 1));
	assert_int_equal(qs_ttft_window_max(&w), 900000 / 1000);
	qs_ttft_window_push(&w, 1999); /* evicts the 900 ms; 1.999 us truncates to 1 */
	assert_int_equal(qs_ttft_window_max(&w), QS_TTFT_WINDOW - 1);
	qs_ttft_window_push(&w, UINT64_MAX);
	assert_int_equal(qs_ttft_window_max(&w), UINT32_MAX);
}

QS_TEST_MAIN(cmocka_unit_test(ttft_window_cases), cmocka_unit_test(kv_basic),
	     cmocka_unit_test(kv_random), cmocka_unit_test(intake_cases),
	     cmocka_unit_test(intake_fuzz), cmocka_unit_test(sched_fixed2),
	     cmocka_unit_test(sched_strategies), cmocka_unit_test(sched_adaptive_backoff),
	     cmocka_unit_test(sched_chunked), cmocka_unit_test(sched_preempt),
	     cmocka_unit_test(sched_priority), cmocka_unit_test(sched_fair),
	     cmocka_unit_test(sched_stress), cmocka_unit_test(learned_actions),
	     cmocka_unit_test(action_flags), cmocka_unit_test(spec_by_hand),
	     cmocka_unit_test(spec_leftovers_only), cmocka_unit_test(spec_stress),
	     cmocka_unit_test(spec_needs_draft_model), cmocka_unit_test(spec_draws),
	     cmocka_unit_test(spec_rule_depths), cmocka_unit_test(bench_speculation),
	     cmocka_unit_test(batch_features), cmocka_unit_test(reports_cumulative),
	     cmocka_unit_test(response_wire), cmocka_unit_test(cancel_answers),
	     cmocka_unit_test(tenant_stats), cmocka_unit_test(profile_parse_fit),
	     cmocka_unit_test(bench_stream_is_the_scenario),
	     cmocka_unit_test(bench_scenario_errors), cmocka_unit_test(bench_smoke))
