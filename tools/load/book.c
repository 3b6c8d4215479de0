/*
 * book.c - qsteer-load's per-request bookkeeping: QRP encoding of each request
 * (wire.h's encoder; type-2 continuations when the payload does not fit one
 * datagram), validation and application of every response datagram (agent_wire.h's
 * parser, then this run's own checks), and the summary, computed by the
 * simulator's accounting (qs_sim_tally) and SLO judgement (qs_sim_slo_met) so a
 * live table means exactly what a simulated one does.
 *
 * Invariants: a request's state only moves SENT -> DONE or SENT -> REJECTED, each
 * once; every datagram that does not move one is counted under one reason.
 */
#include <stdlib.h>
#include <string.h>

#include "qsteer/agent_wire.h"
#include "qsteer/wire.h"

#include "load.h"

uint32_t
qs_load_packets(uint32_t payload, uint32_t max_dgram)
{
	uint32_t room, n;

	if (max_dgram < 64 || max_dgram > QS_LOAD_MAX_DGRAM)
		return 0;
	room = max_dgram - QS_QRP_HDR_LEN;
	n = payload == 0 ? 1 : (payload + room - 1) / room;
	return n > QS_LOAD_MAX_PACKETS ? 0 : n;
}

uint32_t
qs_load_packet(const struct qs_load_book *b, uint32_t i, uint32_t payload, uint32_t max_dgram,
	       uint32_t k, uint8_t *buf)
{
	const struct qs_load_req *r = &b->req[i];
	uint32_t n = qs_load_packets(payload, max_dgram), room, off, len;
	struct qs_qrp_hdr h;

	if (n == 0 || k >= n)
		return 0;
	room = max_dgram - QS_QRP_HDR_LEN;
	memset(&h, 0, sizeof(h));
	h.type = k == 0 ? QS_QRP_T_REQUEST : QS_QRP_T_CONTINUATION;
	h.flags = k + 1 == n ? QS_QRP_F_LAST : 0;
	if (k == 0 && r->has_difficulty)
		h.flags |= qs_qrp_difficulty_flags(r->difficulty);
	h.tenant = r->tenant;
	h.request_id = b->id_base + i;
	h.prompt_tokens = r->prompt_tokens;
	h.max_new_tokens = r->max_new_tokens;
	h.prefix_hash = r->prefix_hash;
	h.priority = r->priority & 3;
	h.slo_class = r->slo_class & 3;
	qs_qrp_write_hdr(buf, &h);
	off = k * room;
	len = payload > off ? payload - off : 0;
	if (len > room)
		len = room;
	memset(buf + QS_QRP_HDR_LEN, 'p', len); /* stands for the prompt's bytes */
	return QS_QRP_HDR_LEN + len;
}

static int
bad(struct qs_load_book *b, enum qs_load_bad why)
{
	b->bad[why]++;
	return (int)why;
}

int
qs_load_on_datagram(struct qs_load_book *b, uint32_t sock, const uint8_t *p, uint32_t len,
		    uint64_t now_ns)
{
	struct qs_qra_resp q;
	struct qs_load_req *r;
	uint64_t idx;
	int e;

	b->datagrams++;
	e = qs_qra_parse(p, len, &q);
	switch (e) {
	case QS_QRP_OK:
		break;
	case QS_QRP_E_SHORT:
		return bad(b, QS_LOAD_BAD_SHORT);
	case QS_QRP_E_MAGIC:
		return bad(b, QS_LOAD_BAD_MAGIC);
	case QS_QRP_E_VERSION:
		return bad(b, QS_LOAD_BAD_VERSION);
	case QS_QRP_E_TYPE:
		return bad(b, QS_LOAD_BAD_KIND);
	default:
		return bad(b, QS_LOAD_BAD_FIELD);
	}
	idx = q.request_id - b->id_base; /* wraps far out of range below the base */
	if (q.request_id < b->id_base || idx >= b->n)
		return bad(b, QS_LOAD_BAD_UNKNOWN_ID);
	r = &b->req[idx];
	if (r->state == QS_LOAD_S_UNSENT || r->state == QS_LOAD_S_SEND_FAILED)
		return bad(b, QS_LOAD_BAD_UNKNOWN_ID);
	if (r->sock != sock)
		return bad(b, QS_LOAD_BAD_WRONG_PORT);
	/* every kind carries the receipt; the first for a sent request says it (a
	 * datagram naming one not yet sent is no receipt of ours) */
	if (!r->reach_ns && r->send_ns && b->mono_base && q.recv_ns > b->mono_base + r->send_ns)
		r->reach_ns = q.recv_ns - (b->mono_base + r->send_ns);
	switch (q.kind) {
	case QS_QRA_K_FIRST:
		if (r->flags & QS_LOAD_RF_FIRST_SEEN || r->state == QS_LOAD_S_REJECTED)
			return bad(b, QS_LOAD_BAD_DUPLICATE);
		if (r->state == QS_LOAD_S_DONE && r->backend != q.backend_id)
			return bad(b, QS_LOAD_BAD_BACKEND);
		r->flags |= QS_LOAD_RF_FIRST_SEEN;
		/* Overtaken by its completion (reordered): the estimate stays. */
		if (r->state == QS_LOAD_S_DONE)
			break;
		r->first_ns = now_ns;
		r->backend = q.backend_id;
		break;
	case QS_QRA_K_DONE:
		if (r->state != QS_LOAD_S_SENT)
			return bad(b, QS_LOAD_BAD_DUPLICATE);
		if ((r->flags & QS_LOAD_RF_FIRST_SEEN) && r->backend != q.backend_id)
			return bad(b, QS_LOAD_BAD_BACKEND);
		if (q.tokens == 0 || q.tokens > r->max_new_tokens)
			return bad(b, QS_LOAD_BAD_TOKENS);
		r->state = QS_LOAD_S_DONE;
		b->settled++;
		r->done_ns = now_ns;
		r->backend = q.backend_id;
		r->tokens = q.tokens;
		r->preemptions = q.preemptions;
		if (!(r->flags & QS_LOAD_RF_FIRST_SEEN)) {
			/* First token lost or late: the agent's own first-token-to-done
			 * time, taken back from the completion's arrival. */
			uint64_t gap =
			    q.first_ns && q.event_ns >= q.first_ns ? q.event_ns - q.first_ns : 0;

			r->first_ns = now_ns - gap;
			if (r->first_ns < r->send_ns)
				r->first_ns = r->send_ns;
			r->flags |= QS_LOAD_RF_FIRST_EST;
		}
		break;
	case QS_QRA_K_CANCELLED:
	case QS_QRA_K_CANCEL_UNKNOWN:
		/* answers to a cancel, and qsteer-load never cancels: not a response
		 * this run asked for */
		return bad(b, QS_LOAD_BAD_KIND);
	default: /* QS_QRA_K_REJECTED; the parser refuses other kinds */
		if (r->state != QS_LOAD_S_SENT || (r->flags & QS_LOAD_RF_FIRST_SEEN))
			return bad(b, QS_LOAD_BAD_DUPLICATE);
		r->state = QS_LOAD_S_REJECTED;
		b->settled++;
		r->done_ns = now_ns;
		r->backend = q.backend_id;
		break;
	}
	b->responses++;
	return -1;
}

bool
qs_load_outcome(const struct qs_load_book *b, uint32_t i,
		const struct qs_sim_slo slo[QS_SIM_SLO_CLASSES], struct qs_sim_outcome *o)
{
	const struct qs_load_req *r = &b->req[i];

	/* what the request was (the rest zero until it is answered) */
	*o = (struct qs_sim_outcome){.request_id = b->id_base + i,
				     .decision_id = i,
				     .backend = r->backend,
				     .prompt_tokens = r->prompt_tokens,
				     .gen_tokens = r->tokens,
				     .tenant = r->tenant,
				     .slo_class = r->slo_class,
				     .class_index = r->class_index,
				     .preemptions = r->preemptions,
				     .arrival_ns = r->sched_ns};
	if (r->state != QS_LOAD_S_DONE)
		return false;
	o->ttft_ns = r->first_ns - r->sched_ns;
	o->e2e_ns = r->done_ns - r->sched_ns;
	o->tpot_ns = r->tokens > 1 ? (o->e2e_ns - o->ttft_ns) / (r->tokens - 1) : 0;
	o->slo_met = qs_sim_slo_met(&slo[r->slo_class & 3], (double)o->ttft_ns * 1e-6,
				    (double)o->tpot_ns * 1e-6, (double)o->e2e_ns * 1e-6);
	return true;
}

/* One accounting event: an arrival (kind 0) or a departure (kind 1) at t. */
struct ev {
	uint64_t t;
	uint32_t i;
	uint32_t kind;
};

static int
cmp_ev(const void *a, const void *b)
{
	const struct ev *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
count_backend(struct qs_load_summary *s, uint16_t id, bool answered)
{
	uint32_t k;

	for (k = 0; k < s->n_backends; k++)
		if (s->be[k].id == id)
			break;
	if (k == s->n_backends) {
		if (k == QS_LOAD_MAX_BACKENDS) {
			s->be_other++;
			return;
		}
		s->be[k].id = id;
		s->n_backends++;
	}
	if (answered)
		s->be[k].answered++;
	else
		s->be[k].rejected++;
}

int
qs_load_summarize(const struct qs_load_book *b, const struct qs_sim_slo slo[QS_SIM_SLO_CLASSES],
		  uint64_t end_ns, struct qs_load_summary *s, struct qs_sim_tally **tally_out,
		  char *msg, size_t msglen)
{
	struct qs_sim_tally *t = NULL;
	struct ev *ev = NULL;
	uint64_t *lag = NULL, *reach = NULL;
	uint32_t i, nev = 0, nlag = 0, nreach = 0;
	int rc;

	memset(s, 0, sizeof(*s));
	if (tally_out)
		*tally_out = NULL;
	s->scheduled = b->n;
	ev = malloc((size_t)b->n * 2 * sizeof(*ev) + 1);
	lag = malloc((size_t)b->n * sizeof(*lag) + 1);
	reach = malloc((size_t)b->n * sizeof(*reach) + 1);
	if (!ev || !lag || !reach || qs_sim_tally_create(&t) != QS_OK) {
		snprintf(msg, msglen, "out of memory summarizing %u requests", b->n);
		rc = QS_E_NOMEM;
		goto out;
	}
	for (i = 0; i < b->n; i++) {
		const struct qs_load_req *r = &b->req[i];
		uint64_t dep;

		s->state[r->state < QS_LOAD_S__COUNT ? r->state : QS_LOAD_S_SENT]++;
		if (r->state == QS_LOAD_S_UNSENT)
			continue; /* never offered: not in the metrics, but counted */
		if (r->state == QS_LOAD_S_DONE && (r->flags & QS_LOAD_RF_FIRST_EST))
			s->first_estimated++;
		if (r->state == QS_LOAD_S_DONE || r->state == QS_LOAD_S_REJECTED)
			count_backend(s, r->backend, r->state == QS_LOAD_S_DONE);
		if (r->send_ns) {
			lag[nlag] = r->send_ns >= r->sched_ns ? r->send_ns - r->sched_ns : 0;
			if (lag[nlag] > s->lag_max_ns)
				s->lag_max_ns = lag[nlag];
			nlag++;
		}
		if (r->reach_ns)
			reach[nreach++] = r->reach_ns;
		dep = r->state == QS_LOAD_S_DONE || r->state == QS_LOAD_S_REJECTED ? r->done_ns
										   : end_ns;
		if (dep < r->sched_ns)
			dep = r->sched_ns;
		ev[nev++] = (struct ev){r->sched_ns, i, 0};
		ev[nev++] = (struct ev){dep, i, 1};
	}
	for (i = 0; i < QS_LOAD_BAD__COUNT; i++)
		s->bad_total += b->bad[i];
	if (nlag) {
		uint64_t rank = ((uint64_t)nlag * 99 + 99) / 100; /* ceil(0.99 n) */

		qsort(lag, nlag, sizeof(*lag), cmp_u64);
		s->lag_p99_ns = lag[(rank ? rank : 1) - 1];
	}
	if (nreach) {
		qsort(reach, nreach, sizeof(*reach), cmp_u64);
		s->n_reach = nreach;
		s->reach_p50_ns = reach[(nreach + 1) / 2 - 1];
		s->reach_p99_ns = reach[((uint64_t)nreach * 99 + 99) / 100 - 1];
	}
	qsort(ev, nev, sizeof(*ev), cmp_ev);
	for (i = 0; i < nev; i++) {
		struct qs_sim_outcome o;

		if (ev[i].kind == 0)
			qs_sim_tally_arrive(t, ev[i].t);
		else if (qs_load_outcome(b, ev[i].i, slo, &o))
			qs_sim_tally_complete(t, &o, ev[i].t);
		else
			qs_sim_tally_lost(t, b->req[ev[i].i].slo_class, ev[i].t);
	}
	qs_sim_tally_metrics(t, &s->m);
	rc = QS_OK;
	if (tally_out) {
		*tally_out = t;
		t = NULL;
	}
out:
	qs_sim_tally_destroy(t);
	free(ev);
	free(lag);
	free(reach);
	return rc;
}
