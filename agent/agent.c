/*
 * agent.c - the agent core: sequence slots, the waiting queue and the running set,
 * and iteration-level batching (vLLM-style) under a sequence cap, a token budget
 * and a KV budget, with preemption by recompute when KV blocks run out.
 *
 * Token accounting (why the arithmetic below looks the way it does): a sequence
 * with prompt P that has generated g tokens needs its KV for P + g tokens before
 * it can produce token g + 1. A prefill (first run, or recompute after preemption)
 * computes those P + g positions and yields one token; a decode computes one
 * position (the last token's) and yields one token. So in the decode phase
 * computed == P + g - 1 and a decode needs blocks for computed + 1 tokens.
 * With speculation a decode computes 1 + k positions (its last token's and k draft
 * tokens) and yields 1 + the accepted ones, so computed == P + g - 1 still holds
 * and the positions of rejected drafts are simply written again; k is at most
 * the tokens it has left to generate - 1, so its blocks never exceed the request's.
 * Drafts are added after every running sequence has its token (add_drafts), from
 * the budget and blocks left: they never preempt or crowd out a decode.
 *
 * Lists are index-linked through the slot array; everything is allocated in
 * qs_agent_create, so an iteration never allocates. Every loop is bounded by the
 * slot count, the iteration's sequence cap or a fixed scan window.
 */
#include <stdlib.h>
#include <string.h>

#include "qsteer/admit.h"
#include "qsteer/agent.h"
#include "qsteer/ttft_window.h"
#include "agent_int.h"

/* A decode's drafts start at most one new block (add_drafts counts on it). */
_Static_assert(QS_SPEC_DEPTH_MAX < QS_KV_BLOCK_TOKENS, "drafts fit one block");

#define NIL	    0xffffffffu
#define SCAN_WINDOW 64	/* waiting entries a non-FCFS order looks at */
#define STAT_SCAN   256 /* waiting entries the features look at */

enum seq_state { S_FREE = 0, S_WAITING, S_RUNNING };

struct seq {
	uint8_t state;
	bool decoding; /* prefill (or recompute) done: one token per iteration from here */
	struct qs_agent_req req;
	uint32_t computed;
	uint32_t generated;
	uint32_t n_blocks;
	uint32_t preemptions;
	uint64_t first_ns;
	uint32_t prev, next;
};

struct list {
	uint32_t head, tail, n;
};

struct qs_agent {
	struct qs_agent_cfg cfg;
	struct qs_batch_strategy *strategy;
	struct qs_agent_exec *exec;
	struct qs_kv kv;
	uint32_t per_seq_blocks;
	uint32_t *block_tab; /* max_slots * per_seq_blocks */
	struct seq *seq;
	uint32_t *free_slots;
	uint32_t n_free_slots;
	struct list waiting, running;
	uint64_t wait_tokens; /* prefill tokens the waiting (not running) sequences need */
	uint32_t tight_waiting;
	struct qs_agent_batch_seq *bseq; /* hw max_seqs entries */
	uint32_t *bslot;		 /* NIL: cancelled while its iteration ran */
	uint32_t *bacc;			 /* the executor's accepted draft tokens per entry */
	/* the iteration qs_agent_step_start ran and qs_agent_step_finish applies */
	struct qs_agent_batch pend;
	uint64_t pend_end, pend_ns;
	bool pending;
	struct qs_agent_event *ev;
	uint32_t n_ev, ev_cap;
	struct qs_agent_stats st;
	uint64_t last_iter_ns;
	uint32_t prev_cap;
	/* feature windows: counts of the current and the previous window */
	uint64_t win_start;
	uint32_t arr_cur, arr_prev, pre_cur, pre_prev;
	uint64_t ttft_max_cur, ttft_max_prev;
	/* report window */
	uint64_t rep_start;
	uint64_t rep_decode_tokens;
	struct qs_ttft_window rep_ttft; /* the reports' ttft_p99_us (ttft_window.h) */
	/* priority admission (admit.h): admissions since a starved one; what the last
	 * pick_priority found */
	uint32_t since_starved;
	uint32_t pick_starved, pick_have;
	struct qs_admit_share share; /* fair share: recent prefill tokens per tenant */
};

void
qs_agent_cfg_default(struct qs_agent_cfg *c)
{
	memset(c, 0, sizeof(*c));
	qs_agent_profile_default(&c->prof);
	c->max_slots = 4096;
	c->window_ns = 100000000ull;
	c->chunked_prefill = c->prof.chunked_prefill;
}

/* ---- lists ---------------------------------------------------------------------- */

static void
list_push_back(struct qs_agent *a, struct list *l, uint32_t i)
{
	a->seq[i].prev = l->tail;
	a->seq[i].next = NIL;
	if (l->tail != NIL)
		a->seq[l->tail].next = i;
	else
		l->head = i;
	l->tail = i;
	l->n++;
}

static void
list_push_front(struct qs_agent *a, struct list *l, uint32_t i)
{
	a->seq[i].next = l->head;
	a->seq[i].prev = NIL;
	if (l->head != NIL)
		a->seq[l->head].prev = i;
	else
		l->tail = i;
	l->head = i;
	l->n++;
}

static void
list_remove(struct qs_agent *a, struct list *l, uint32_t i)
{
	struct seq *s = &a->seq[i];

	if (s->prev != NIL)
		a->seq[s->prev].next = s->next;
	else
		l->head = s->next;
	if (s->next != NIL)
		a->seq[s->next].prev = s->prev;
	else
		l->tail = s->prev;
	s->prev = s->next = NIL;
	l->n--;
}

/* ---- create / destroy -------------------------------------------------------------- */

int
qs_agent_create(const struct qs_agent_cfg *c, struct qs_batch_strategy *strategy,
		struct qs_agent_exec *exec, struct qs_agent **out, char *msg, size_t msglen)
{
	struct qs_agent *a;
	uint32_t i, max_len, hw_seqs;
	int rc;

	if (!strategy || !exec || c->max_slots == 0 || c->max_slots > (1u << 20) ||
	    c->prof.max_seqs == 0 || c->prof.max_tokens == 0 || c->prof.kv_blocks == 0) {
		snprintf(msg, msglen,
			 "agent: need a strategy, an executor, 1..2^20 slots and nonzero "
			 "max_seqs, max_tokens, kv_blocks");
		return QS_E_ARG;
	}
	if (c->admit_fair && !c->admit_priority) {
		snprintf(msg, msglen,
			 "agent: tenant fair share orders within priority "
			 "admission: admit_fair needs admit_priority");
		return QS_E_ARG;
	}
	rc = qs_sim_profile_check_spec(&c->prof, c->prof.name, msg, msglen);
	if (rc != QS_OK)
		return rc;
	a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(msg, msglen, "agent: out of memory");
		return QS_E_NOMEM;
	}
	a->cfg = *c;
	a->strategy = strategy;
	a->exec = exec;
	rc = qs_kv_init(&a->kv, c->prof.kv_blocks, msg, msglen);
	if (rc != QS_OK) {
		free(a);
		return rc;
	}
	max_len = c->prof.max_model_len ? c->prof.max_model_len : 32768;
	a->per_seq_blocks = QS_RC_MIN(qs_kv_blocks_for(max_len), c->prof.kv_blocks);
	hw_seqs = c->prof.max_seqs;
	a->block_tab = malloc((size_t)c->max_slots * a->per_seq_blocks * sizeof(uint32_t));
	a->seq = calloc(c->max_slots, sizeof(*a->seq));
	a->free_slots = malloc(c->max_slots * sizeof(uint32_t));
	a->bseq = calloc(hw_seqs, sizeof(*a->bseq));
	a->bslot = calloc(hw_seqs, sizeof(*a->bslot));
	a->bacc = calloc(hw_seqs, sizeof(*a->bacc));
	a->ev_cap = 2 * c->max_slots + 2 * hw_seqs + 64;
	a->ev = calloc(a->ev_cap, sizeof(*a->ev));
	if (!a->block_tab || !a->seq || !a->free_slots || !a->bseq || !a->bslot || !a->bacc ||
	    !a->ev) {
		qs_agent_destroy(a);
		snprintf(msg, msglen, "agent: out of memory for %u slots", c->max_slots);
		return QS_E_NOMEM;
	}
	for (i = 0; i < c->max_slots; i++)
		a->free_slots[i] = c->max_slots - 1 - i;
	a->n_free_slots = c->max_slots;
	a->waiting.head = a->waiting.tail = NIL;
	a->running.head = a->running.tail = NIL;
	a->prev_cap = hw_seqs;
	*out = a;
	return QS_OK;
}

void
qs_agent_destroy(struct qs_agent *a)
{
	if (!a)
		return;
	qs_kv_fini(&a->kv);
	free(a->block_tab);
	free(a->seq);
	free(a->free_slots);
	free(a->bseq);
	free(a->bslot);
	free(a->bacc);
	free(a->ev);
	free(a);
}

/* ---- events ------------------------------------------------------------------------ */

static struct qs_agent_event *
emit(struct qs_agent *a, uint8_t kind, const struct seq *s, const struct qs_agent_req *r,
     uint64_t t)
{
	struct qs_agent_event *e;

	if (a->n_ev >= a->ev_cap) {
		a->st.events_lost++;
		return NULL;
	}
	e = &a->ev[a->n_ev++];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->request_id = r->id;
	e->slo_class = r->slo_class;
	e->tenant = r->tenant;
	e->prompt_tokens = r->prompt_tokens;
	e->arrival_ns = r->recv_ns;
	e->client = r->client;
	e->event_ns = t;
	if (s) {
		e->tokens = s->generated;
		e->preemptions = s->preemptions;
		e->first_ns = s->first_ns;
	}
	return e;
}

const struct qs_agent_event *
qs_agent_events(struct qs_agent *a, uint32_t *n)
{
	*n = a->n_ev;
	return a->ev;
}

void
qs_agent_events_clear(struct qs_agent *a)
{
	a->n_ev = 0;
}

/* ---- windows ------------------------------------------------------------------------ */

static void
roll_window(struct qs_agent *a, uint64_t now)
{
	if (now - a->win_start < a->cfg.window_ns)
		return;
	/* A gap longer than two windows leaves nothing recent. */
	if (now - a->win_start >= 2 * a->cfg.window_ns) {
		a->arr_prev = a->pre_prev = 0;
		a->ttft_max_prev = 0;
	} else {
		a->arr_prev = a->arr_cur;
		a->pre_prev = a->pre_cur;
		a->ttft_max_prev = a->ttft_max_cur;
	}
	a->arr_cur = a->pre_cur = 0;
	a->ttft_max_cur = 0;
	a->win_start = now;
}

/* ---- submit / cancel ------------------------------------------------------------------ */

/* Positions a prefill still has to compute: the prompt, plus after a preemption
 * every token generated so far (recompute); 0 once decoding. */
static uint32_t
prefill_need(const struct seq *s)
{
	return s->decoding ? 0 : s->req.prompt_tokens + s->generated - s->computed;
}

/* The stats row of tenant t: its own among the first QS_AGENT_TENANTS seen, else the
 * others' (at most nine rows scanned, at submission and at an event). */
static struct qs_agent_tenant_stats *
tenant_row(struct qs_agent *a, uint16_t t)
{
	struct qs_agent_stats *st = &a->st;
	uint32_t i;

	for (i = 0; i < st->n_tenants; i++)
		if (!st->tenant[i].others && st->tenant[i].tenant == t)
			return &st->tenant[i];
	if (st->n_tenants > QS_AGENT_TENANTS)
		return &st->tenant[QS_AGENT_TENANTS];
	i = st->n_tenants++;
	st->tenant[i].tenant = i < QS_AGENT_TENANTS ? t : 0;
	st->tenant[i].others = i == QS_AGENT_TENANTS;
	return &st->tenant[i];
}

int
qs_agent_submit(struct qs_agent *a, const struct qs_agent_req *r, uint64_t now_ns)
{
	uint32_t i;
	struct seq *s;
	uint64_t ctx = (uint64_t)r->prompt_tokens + r->max_new_tokens;

	a->st.received++;
	tenant_row(a, r->tenant)->received++;
	roll_window(a, now_ns);
	a->arr_cur++;
	if (r->max_new_tokens == 0 || r->prompt_tokens == 0 || a->n_free_slots == 0 ||
	    ctx > (uint64_t)a->per_seq_blocks * QS_KV_BLOCK_TOKENS) {
		a->st.rejected++;
		tenant_row(a, r->tenant)->rejected++;
		emit(a, QS_AGENT_EV_REJECTED, NULL, r, now_ns);
		return QS_E_SIZE;
	}
	i = a->free_slots[--a->n_free_slots];
	s = &a->seq[i];
	memset(s, 0, sizeof(*s));
	s->req = *r;
	s->state = S_WAITING;
	list_push_back(a, &a->waiting, i);
	a->wait_tokens += r->prompt_tokens;
	if (r->slo_class >= 2)
		a->tight_waiting++;
	return QS_OK;
}

static void
release_blocks(struct qs_agent *a, uint32_t i)
{
	struct seq *s = &a->seq[i];
	uint32_t *bt = a->block_tab + (size_t)i * a->per_seq_blocks;
	uint32_t k;

	for (k = 0; k < s->n_blocks; k++)
		(void)qs_kv_release(&a->kv, i, bt[k]);
	s->n_blocks = 0;
	s->computed = 0;
}

static void
leave_waiting(struct qs_agent *a, uint32_t i)
{
	struct seq *s = &a->seq[i];

	list_remove(a, &a->waiting, i);
	a->wait_tokens -= prefill_need(s);
	if (s->req.slo_class >= 2)
		a->tight_waiting--;
}

static void
free_slot(struct qs_agent *a, uint32_t i)
{
	release_blocks(a, i);
	a->seq[i].state = S_FREE;
	a->free_slots[a->n_free_slots++] = i;
}

int
qs_agent_cancel(struct qs_agent *a, const struct qs_agent_req *c, uint64_t now_ns)
{
	uint32_t i;

	for (i = 0; i < a->cfg.max_slots; i++) {
		struct seq *s = &a->seq[i];

		if (s->state == S_FREE || s->req.id != c->id)
			continue;
		struct qs_agent_event *e = emit(a, QS_AGENT_EV_CANCELLED, s, &s->req, now_ns);

		if (e) /* answered where the cancel came from, with what was generated */
			e->client = c->client;
		if (s->state == S_WAITING) {
			leave_waiting(a, i);
		} else {
			uint32_t k;

			list_remove(a, &a->running, i);
			/* In the running iteration: its result goes nowhere (the slot may
			 * be reused before the iteration is applied). */
			for (k = 0; a->pending && k < a->pend.n; k++)
				if (a->bslot[k] == i)
					a->bslot[k] = NIL;
		}
		a->st.cancelled++;
		tenant_row(a, s->req.tenant)->cancelled++;
		free_slot(a, i);
		return QS_OK;
	}
	emit(a, QS_AGENT_EV_CANCEL_UNKNOWN, NULL, c, now_ns);
	return QS_E_ARG;
}

/* Preempt running sequence i by recompute: its blocks go, it waits at the front. */
static void
preempt(struct qs_agent *a, uint32_t i)
{
	struct seq *s = &a->seq[i];

	list_remove(a, &a->running, i);
	release_blocks(a, i);
	s->state = S_WAITING;
	s->decoding = false;
	s->preemptions++;
	list_push_front(a, &a->waiting, i);
	a->wait_tokens += prefill_need(s);
	if (s->req.slo_class >= 2)
		a->tight_waiting++;
	a->st.preemptions++;
	a->pre_cur++;
}

/* Grow i's block table to cover tokens; QS_E_NOMEM if the free list runs dry. */
static int
grow(struct qs_agent *a, uint32_t i, uint32_t tokens)
{
	struct seq *s = &a->seq[i];
	uint32_t *bt = a->block_tab + (size_t)i * a->per_seq_blocks;
	uint32_t need = qs_kv_blocks_for(tokens);

	if (need > a->per_seq_blocks)
		return QS_E_SIZE;
	while (s->n_blocks < need) {
		if (qs_kv_alloc(&a->kv, i, &bt[s->n_blocks]) != QS_OK)
			return QS_E_NOMEM;
		s->n_blocks++;
	}
	return QS_OK;
}

/* ---- the view strategies see ------------------------------------------------------- */

static void
build_view(struct qs_agent *a, uint64_t now, struct qs_batch_view *v)
{
	struct qs_batch_state *st = &v->st;
	uint32_t i, k;
	uint64_t ctx = 0;

	memset(v, 0, sizeof(*v));
	st->waiting = a->waiting.n;
	st->running = a->running.n;
	st->kv_used = qs_kv_used(&a->kv);
	st->kv_total = a->kv.n_blocks;
	st->wait_tokens = (uint32_t)QS_RC_MIN(a->wait_tokens, 0xffffffffull);
	if (a->waiting.head != NIL) {
		const struct seq *h = &a->seq[a->waiting.head];

		st->head_prompt = h->req.prompt_tokens;
		st->oldest_wait_ms =
		    now > h->req.recv_ns
			? (uint32_t)QS_RC_MIN((now - h->req.recv_ns) / 1000000u, 0xffffffffull)
			: 0;
	}
	for (i = a->waiting.head, k = 0; i != NIL && k < STAT_SCAN; i = a->seq[i].next, k++)
		st->max_prompt = QS_RC_MAX(st->max_prompt, a->seq[i].req.prompt_tokens);
	for (i = a->running.head; i != NIL; i = a->seq[i].next) {
		const struct seq *s = &a->seq[i];

		ctx += s->computed;
		if (prefill_need(s) > 0)
			st->running_prefill++;
	}
	st->run_ctx_tokens = (uint32_t)QS_RC_MIN(ctx, 0xffffffffull);
	st->iter_us = (uint32_t)QS_RC_MIN(a->last_iter_ns / 1000u, 0xffffffffull);
	st->arrivals = a->arr_cur + a->arr_prev;
	st->preemptions = a->pre_cur + a->pre_prev;
	st->tight_waiting = a->tight_waiting;
	st->prev_cap = a->prev_cap;
	st->ttft_max_ms = (uint32_t)(QS_RC_MAX(a->ttft_max_cur, a->ttft_max_prev) / 1000000u);
	v->hw.max_seqs = a->cfg.prof.max_seqs;
	v->hw.max_tokens = a->cfg.prof.max_tokens;
	v->hw.kv_reserve_pct = 0;
	v->hw.spec_depth = QS_RC_MIN(a->cfg.prof.spec_max_depth, a->exec->spec_max_depth);
	v->last_iter_ns = a->last_iter_ns;
	v->now_ns = now;
}

/* ---- admission order ------------------------------------------------------------------ */

static uint32_t
bucket_of(uint32_t tokens)
{
	return qs_feat_msb(tokens ? tokens : 1);
}

/*
 * The next waiting sequence to try under order d, skipping those already refused
 * for coalescing (other buckets). NIL when none qualifies in the window.
 */
/*
 * Priority admission (admit.h): the highest priority (with fair share, then the
 * tenant with the fewest recent prefill tokens), earliest on a tie, or the earliest starved one
 * when its turn has come; over the whole queue (a priority
 * is not to be missed beyond a scan window), arrived requests only.
 */
static uint32_t
pick_priority(struct qs_agent *a, uint64_t now)
{
	uint32_t i, best = NIL, st = NIL;
	uint64_t held = 0, bheld = 0;

	if (a->cfg.admit_fair)
		qs_admit_share_decay(&a->share, now);
	for (i = a->waiting.head; i != NIL; i = a->seq[i].next) {
		const struct seq *s = &a->seq[i];

		if (s->req.recv_ns > now)
			continue;
		if (a->cfg.admit_fair)
			held = qs_admit_share_get(&a->share, s->req.tenant);
		if (best == NIL || qs_admit_better(s->req.priority, held, a->seq[best].req.priority,
						   bheld, a->cfg.admit_fair)) {
			best = i;
			bheld = held;
		}
		if (st == NIL && qs_admit_starved(s->req.recv_ns, now, a->cfg.starve_ns))
			st = i;
	}
	a->pick_have = st != NIL;
	a->pick_starved = st != NIL && (qs_admit_take_starved(1, a->since_starved) || best == st);
	return a->pick_starved ? st : best;
}

/* The request to admit next preempts lower, unstarved priorities until it fits. */
static void
priority_preempt(struct qs_agent *a, const struct qs_batch_decision *d, uint64_t now,
		 struct qs_agent_iter *it)
{
	uint32_t w = pick_priority(a, now), i, v, vp = 0, pos, vpos = 0, need, chunk;
	const struct seq *ws;

	if (w == NIL)
		return;
	ws = &a->seq[w];
	need = prefill_need(ws);
	chunk = a->cfg.chunked_prefill ? QS_RC_MIN(need, d->lim.max_tokens) : need;
	while (!qs_admit_fits(a->running.n, d->lim.max_seqs, qs_kv_blocks_for(ws->computed + chunk),
			      a->kv.n_free)) {
		v = NIL;
		for (i = a->running.head, pos = 0; i != NIL; i = a->seq[i].next, pos++) {
			const struct seq *s = &a->seq[i];

			if (qs_admit_starved(s->req.recv_ns, now, a->cfg.starve_ns))
				continue;
			if (v == NIL || qs_admit_victim_better(s->req.priority, pos, vp, vpos)) {
				v = i;
				vp = s->req.priority;
				vpos = pos;
			}
		}
		if (v == NIL || vp >= ws->req.priority)
			return;
		preempt(a, v);
		it->preempted++;
	}
}

static uint32_t
pick(struct qs_agent *a, const struct qs_batch_decision *d, bool have_bucket, uint32_t bucket,
     uint64_t now)
{
	uint32_t i, k, best = NIL;

	if (a->cfg.admit_priority)
		return pick_priority(a, now);

	for (i = a->waiting.head, k = 0; i != NIL && k < SCAN_WINDOW; i = a->seq[i].next, k++) {
		const struct seq *s = &a->seq[i];

		if (have_bucket && bucket_of(s->req.prompt_tokens) != bucket)
			continue;
		/* Not yet arrived at this iteration's start (serve.c starts an iteration
		 * when the previous one ended, which the loop may notice late). */
		if (s->req.recv_ns > now)
			continue;
		if (d->order == QS_BATCH_FCFS || s->preemptions > 0) {
			/* Preempted sequences sit at the front and go first under any order:
			 * they already waited once. */
			return i;
		}
		if (best == NIL) {
			best = i;
			continue;
		}
		if (d->order == QS_BATCH_SHORTEST) {
			if (prefill_need(s) < prefill_need(&a->seq[best]))
				best = i;
		} else {
			const struct seq *b = &a->seq[best];

			if (s->req.slo_class > b->req.slo_class ||
			    (s->req.slo_class == b->req.slo_class &&
			     s->req.priority > b->req.priority))
				best = i;
		}
	}
	return best;
}

/* ---- one iteration ---------------------------------------------------------------------- */

static void
clamp_decision(const struct qs_batch_view *v, struct qs_batch_decision *d)
{
	d->lim.max_seqs = QS_RC_MAX(1u, QS_RC_MIN(d->lim.max_seqs, v->hw.max_seqs));
	d->lim.max_tokens = QS_RC_MAX(1u, QS_RC_MIN(d->lim.max_tokens, v->hw.max_tokens));
	d->lim.kv_reserve_pct = QS_RC_MIN(d->lim.kv_reserve_pct, 100u);
	d->lim.spec_depth = QS_RC_MIN(d->lim.spec_depth, v->hw.spec_depth);
}

static void
add_to_batch(struct qs_agent *a, struct qs_agent_batch *b, uint32_t i, uint32_t n_tokens,
	     bool decode)
{
	struct qs_agent_batch_seq *bs = &b->seq[b->n];
	const struct seq *s = &a->seq[i];

	bs->slot = i;
	bs->ctx_start = s->computed;
	bs->n_tokens = n_tokens;
	bs->draft = 0; /* add_drafts gives the decodes theirs */
	bs->accept_pct = s->req.spec_accept_pct;
	bs->req_id = s->req.id;
	bs->decode = decode;
	bs->blocks = a->block_tab + (size_t)i * a->per_seq_blocks;
	bs->n_blocks = s->n_blocks;
	a->bslot[b->n] = i;
	a->bacc[b->n] = 0;
	b->n++;
	if (decode) {
		b->decode_seqs++;
		/* the k + 1 positions attend over one read of the context: that read,
		 * not the positions, is what speculation amortizes */
		b->kv_tokens += s->computed + 1;
	} else {
		b->prefill_tokens += n_tokens;
	}
}

/*
 * Give the batch's decodes up to depth drafts each (never past a request's last
 * token - 1) from budget tokens and the free blocks; returns the tokens taken. The
 * blocks are counted before they are taken, so a grow here cannot fail.
 */
static uint32_t
add_drafts(struct qs_agent *a, struct qs_agent_batch *b, uint32_t depth, uint32_t budget)
{
	uint32_t taken = 0;

	for (uint32_t k = 0; k < b->n && taken < budget; k++) {
		struct qs_agent_batch_seq *bs = &b->seq[k];
		struct seq *s = &a->seq[a->bslot[k]];
		uint32_t d;

		if (!bs->decode)
			continue;
		d = QS_RC_MIN(depth,
			      QS_RC_MIN(s->req.max_new_tokens - s->generated - 1, budget - taken));
		while (d > 0 && qs_kv_blocks_for(s->computed + 1 + d) > s->n_blocks + a->kv.n_free)
			d--;
		if (d == 0 || grow(a, a->bslot[k], s->computed + 1 + d) != QS_OK)
			continue;
		bs->n_tokens = 1 + d;
		bs->draft = d;
		bs->n_blocks = s->n_blocks;
		b->draft_tokens += d;
		b->spec_depth = QS_RC_MAX(b->spec_depth, d);
		taken += d;
	}
	return taken;
}

int
qs_agent_step(struct qs_agent *a, uint64_t now_ns, struct qs_agent_iter *it, char *msg,
	      size_t msglen)
{
	int rc = qs_agent_step_start(a, now_ns, it, msg, msglen);

	if (rc == QS_OK && a->pending)
		qs_agent_step_finish(a, it);
	return rc;
}

/*
 * Schedule and run one iteration; qs_agent_step_finish applies it. Between the two
 * the state is the one a GPU has while the iteration runs: admitted sequences are
 * running and hold their blocks, and nothing the iteration computes has happened
 * yet (no first token, no completion, prefill still pending), which is what a
 * report sent meanwhile must show. serve.c keeps a model-executor iteration open
 * for its modelled time; a real executor's run() has returned after the work.
 */
int
qs_agent_step_start(struct qs_agent *a, uint64_t now_ns, struct qs_agent_iter *it, char *msg,
		    size_t msglen)
{
	struct qs_batch_view v;
	struct qs_batch_decision d;
	struct qs_agent_batch b;
	uint32_t i, next, tokens = 0, reserve, k;
	uint64_t ns = 0;
	bool have_bucket = false;
	uint32_t bucket = 0;
	int rc;

	memset(it, 0, sizeof(*it));
	it->start_ns = now_ns;
	if (a->pending) {
		snprintf(msg, msglen, "agent: an iteration is still running");
		return QS_E_ARG;
	}
	roll_window(a, now_ns);
	if (a->waiting.n == 0 && a->running.n == 0)
		return QS_OK;
	build_view(a, now_ns, &v);
	memset(&d, 0, sizeof(d));
	qs_batch_decide(a->strategy, &v, &d);
	clamp_decision(&v, &d);
	it->dec = d;
	a->prev_cap = d.lim.max_seqs;
	memset(&b, 0, sizeof(b));
	b.seq = a->bseq;
	b.accepted = a->bacc;

	/* 0. Priority admission: room for the request to admit next (admit.h). */
	if (a->cfg.admit_priority && a->waiting.n > 0)
		priority_preempt(a, &d, now_ns, it);

	/* 1. Running sequences, oldest first; blocks short: preempt the newest. */
	for (i = a->running.head; i != NIL && b.n < d.lim.max_seqs && tokens < d.lim.max_tokens;
	     i = next) {
		struct seq *s = &a->seq[i];
		uint32_t need = prefill_need(s), n_tok;
		bool decode = need == 0;

		next = s->next;
		n_tok = decode ? 1 : QS_RC_MIN(need, d.lim.max_tokens - tokens);
		for (;;) {
			rc = grow(a, i, s->computed + n_tok);
			if (rc == QS_OK)
				break;
			/* Victim: the newest running sequence, possibly i itself. It is never
			 * one already in the batch: those are older than i. */
			k = a->running.tail;
			if (k == next)
				next =
				    a->seq[k].next; /* cannot happen (k is the tail), kept safe */
			preempt(a, k);
			it->preempted++;
			if (k == i)
				break;
		}
		if (rc != QS_OK)
			break; /* i itself went back to waiting; everything after it too */
		add_to_batch(a, &b, i, n_tok, decode);
		tokens += n_tok;
	}

	/* 1b. Drafts, once every running sequence has its token: out of what is left of
	 * the budget and of the free blocks, oldest first, each cut to what fits. A
	 * draft never preempts a sequence nor takes the place of another's decode. */
	if (d.lim.spec_depth)
		tokens += add_drafts(a, &b, d.lim.spec_depth, d.lim.max_tokens - tokens);

	/* 2. Admissions from the waiting queue, in the strategy's order. */
	reserve = (uint32_t)((uint64_t)a->kv.n_blocks * d.lim.kv_reserve_pct / 100u);
	while (b.n < d.lim.max_seqs && a->running.n < d.lim.max_seqs && tokens < d.lim.max_tokens &&
	       a->waiting.n > 0) {
		struct seq *s;
		uint32_t need, n_tok, blocks;

		i = pick(a, &d, have_bucket, bucket, now_ns);
		if (i == NIL)
			break;
		s = &a->seq[i];
		need = prefill_need(s);
		if (a->cfg.chunked_prefill) {
			n_tok = QS_RC_MIN(need, d.lim.max_tokens - tokens);
		} else {
			/* Whole prompts only; one that does not fit the budget may still be the
			 * iteration's only prefill (beside the decodes), or it would starve. */
			if (need > d.lim.max_tokens - tokens && b.prefill_tokens > 0)
				break;
			n_tok = need;
		}
		blocks = qs_kv_blocks_for(s->computed + n_tok);
		/* The reserve keeps room for running sequences to grow; a lone sequence is
		 * admitted whenever it fits at all, or nothing would ever run. */
		if (blocks > a->kv.n_free || (a->running.n > 0 && a->kv.n_free - blocks < reserve))
			break;
		leave_waiting(a, i);
		if (a->cfg.admit_priority)
			a->since_starved =
			    qs_admit_since_next(a->pick_have, a->pick_starved, a->since_starved);
		if (a->cfg.admit_fair)
			qs_admit_share_add(&a->share, s->req.tenant, need);
		s->state = S_RUNNING;
		list_push_back(a, &a->running, i);
		rc = grow(a, i, s->computed + n_tok);
		if (rc != QS_OK) { /* checked above; a failure is a bug */
			snprintf(msg, msglen, "agent: KV accounting broke admitting slot %u", i);
			return QS_E_VALUE;
		}
		add_to_batch(a, &b, i, n_tok, false);
		tokens += n_tok;
		if (d.coalesce && !have_bucket) {
			have_bucket = true;
			bucket = bucket_of(s->req.prompt_tokens);
		}
	}
	if (b.n == 0) {
		it->kv_used = qs_kv_used(&a->kv);
		return QS_OK;
	}

	/* 3. Run it. */
	rc = a->exec->run(a->exec->ctx, &b, &ns, msg, msglen);
	if (rc != QS_OK)
		return rc;
	a->pend = b;
	a->pend_ns = ns;
	a->pend_end = now_ns + ns;
	a->pending = true;
	it->ns = ns;
	it->seqs = b.n;
	it->prefill_tokens = b.prefill_tokens;
	it->decode_seqs = b.decode_seqs;
	it->draft_tokens = b.draft_tokens;
	it->kv_used = qs_kv_used(&a->kv);
	return QS_OK;
}

/* 4. Apply the running iteration: tokens computed, first tokens, completions. */
void
qs_agent_step_finish(struct qs_agent *a, struct qs_agent_iter *it)
{
	const struct qs_agent_batch *b = &a->pend;
	uint64_t ns = a->pend_ns, end = a->pend_end;
	uint32_t i, k;

	if (!a->pending)
		return;
	a->pending = false;
	for (k = 0; k < b->n; k++) {
		struct seq *s;

		i = a->bslot[k];
		if (i == NIL)
			continue; /* cancelled meanwhile */
		s = &a->seq[i];
		if (b->seq[k].decode) {
			/* an executor's count past the draft is its bug: cap it, so a
			 * sequence never outgrows its blocks */
			uint32_t acc = QS_RC_MIN(b->accepted[k], b->seq[k].draft);

			s->computed += 1 + acc;
			s->generated += 1 + acc;
			a->st.decode_tokens += 1 + acc;
			a->st.spec_drafted += b->seq[k].draft;
			a->st.spec_accepted += acc;
			a->rep_decode_tokens += 1 + acc;
		} else {
			s->computed += b->seq[k].n_tokens;
			a->st.prefill_tokens += b->seq[k].n_tokens;
			if (prefill_need(s) > 0)
				continue; /* a chunk of the prompt; the rest runs next iteration */
			s->decoding = true;
			s->generated++;
			if (s->generated == 1) {
				uint64_t ttft = end - s->req.recv_ns;
				struct qs_agent_tenant_stats *ts = tenant_row(a, s->req.tenant);

				s->first_ns = end;
				a->st.first_tokens++;
				ts->first_tokens++;
				if (ttft > ts->ttft_max_ns)
					ts->ttft_max_ns = ttft;
				emit(a, QS_AGENT_EV_FIRST, s, &s->req, end);
				qs_ttft_window_push(&a->rep_ttft, ttft);
				if (ttft > a->ttft_max_cur)
					a->ttft_max_cur = ttft;
			}
		}
		if (s->generated >= s->req.max_new_tokens) {
			emit(a, QS_AGENT_EV_DONE, s, &s->req, end);
			list_remove(a, &a->running, i);
			a->st.completed++;
			tenant_row(a, s->req.tenant)->completed++;
			free_slot(a, i);
		}
	}
	a->last_iter_ns = ns;
	a->st.iterations++;
	a->st.busy_ns += ns;
	if (it)
		it->kv_used = qs_kv_used(&a->kv);
}

/* ---- accessors and checks ------------------------------------------------------------------ */

bool
qs_agent_exec_simulated(const struct qs_agent *a)
{
	return a->exec->simulated;
}

uint64_t
qs_agent_oldest_recv(const struct qs_agent *a)
{
	return a->waiting.head == NIL ? UINT64_MAX : a->seq[a->waiting.head].req.recv_ns;
}

uint32_t
qs_agent_waiting(const struct qs_agent *a)
{
	return a->waiting.n;
}

uint32_t
qs_agent_running(const struct qs_agent *a)
{
	return a->running.n;
}

const struct qs_agent_stats *
qs_agent_stats(const struct qs_agent *a)
{
	return &a->st;
}

const struct qs_kv *
qs_agent_kv(const struct qs_agent *a)
{
	return &a->kv;
}

int
qs_agent_check(const struct qs_agent *a, char *msg, size_t msglen)
{
	uint32_t i, k, nw = 0, nr = 0, owned = 0;
	uint64_t wt = 0;
	int rc;

	rc = qs_kv_check(&a->kv, msg, msglen);
	if (rc != QS_OK)
		return rc;
	for (i = 0; i < a->cfg.max_slots; i++) {
		const struct seq *s = &a->seq[i];
		const uint32_t *bt = a->block_tab + (size_t)i * a->per_seq_blocks;

		if (s->state == S_FREE)
			continue;
		if (s->state == S_WAITING) {
			nw++;
			if (s->n_blocks != 0) {
				snprintf(msg, msglen, "agent: waiting slot %u holds blocks", i);
				return QS_E_VALUE;
			}
		} else {
			nr++;
			/* what the token accounting at the top of this file promises, drafts
			 * or not */
			if (s->generated >= s->req.max_new_tokens ||
			    (s->decoding &&
			     s->computed != s->req.prompt_tokens + s->generated - 1)) {
				snprintf(msg, msglen,
					 "agent: running slot %u: %u of %u tokens generated, %u "
					 "computed of a %u-token prompt",
					 i, s->generated, s->req.max_new_tokens, s->computed,
					 s->req.prompt_tokens);
				return QS_E_VALUE;
			}
		}
		if (s->n_blocks >
		    qs_kv_blocks_for(s->req.prompt_tokens + s->req.max_new_tokens - 1)) {
			snprintf(msg, msglen,
				 "agent: slot %u holds %u blocks, more than its request needs", i,
				 s->n_blocks);
			return QS_E_VALUE;
		}
		if (qs_kv_blocks_for(s->computed) > s->n_blocks) {
			snprintf(msg, msglen, "agent: slot %u has %u tokens in %u blocks", i,
				 s->computed, s->n_blocks);
			return QS_E_VALUE;
		}
		if (s->state == S_WAITING)
			wt += prefill_need(s);
		for (k = 0; k < s->n_blocks; k++) {
			if (a->kv.owner[bt[k]] != i) {
				snprintf(msg, msglen, "agent: slot %u's block %u is owned by %u", i,
					 bt[k], a->kv.owner[bt[k]]);
				return QS_E_VALUE;
			}
			owned++;
		}
	}
	if (wt != a->wait_tokens) {
		snprintf(msg, msglen, "agent: %llu waiting tokens counted, %llu held",
			 (unsigned long long)a->wait_tokens, (unsigned long long)wt);
		return QS_E_VALUE;
	}
	if (nw != a->waiting.n || nr != a->running.n) {
		snprintf(msg, msglen, "agent: lists say %u waiting %u running, slots %u and %u",
			 a->waiting.n, a->running.n, nw, nr);
		return QS_E_VALUE;
	}
	if (owned != qs_kv_used(&a->kv)) {
		snprintf(msg, msglen, "agent: %u blocks in tables, %u used", owned,
			 qs_kv_used(&a->kv));
		return QS_E_VALUE;
	}
	if (nw + nr + a->n_free_slots != a->cfg.max_slots) {
		snprintf(msg, msglen, "agent: slots leaked");
		return QS_E_VALUE;
	}
	return QS_OK;
}

/* ---- reports (agent_int.h keeps the window state here, report.c encodes) ------------- */

void
qs_agent_report(struct qs_agent *a, uint64_t now_ns, struct qs_qrp_report *r)
{
	uint64_t win = now_ns > a->rep_start ? now_ns - a->rep_start : 0, pending = a->wait_tokens;
	uint32_t i;

	memset(r, 0, sizeof(*r));
	r->backend_id = a->cfg.backend_id;
	r->waiting = a->waiting.n;
	r->running = a->running.n;
	r->kv_used = qs_kv_used(&a->kv);
	r->kv_total = a->kv.n_blocks;
	for (i = a->running.head; i != NIL; i = a->seq[i].next)
		pending += prefill_need(&a->seq[i]);
	r->prefill_pending = (uint32_t)QS_RC_MIN(pending, 0xffffffffull);
	if (win > 0)
		r->decode_tps =
		    (uint32_t)QS_RC_MIN(a->rep_decode_tokens * 1000000000ull / win, 0xffffffffull);
	r->ttft_p99_us = qs_ttft_window_max(&a->rep_ttft);
	r->received = a->st.received;
	r->completed = a->st.completed;
	r->sent_ns = now_ns;
	a->rep_start = now_ns;
	a->rep_decode_tokens = 0;
}
