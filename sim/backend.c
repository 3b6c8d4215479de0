/*
 * backend.c - the GPU backend models.
 *
 * Batch model (vLLM-like iteration-level batching): a FCFS waiting queue, a
 * running set in admission order, a cap on sequences and a token budget per
 * iteration, a KV cache of 16-token blocks. Without chunked prefill an iteration
 * either admits and prefills waiting requests (prefill first, as vLLM v0) or
 * decodes every running sequence; with chunked prefill (Sarathi-Serve) decodes go
 * first and prefill chunks fill the rest of the token budget. The backend's
 * `schedule = mixed` (no chunked prefill) is qsteer-agent's scheduler (agent.c):
 * every running sequence decodes, then whole prompts are admitted FCFS into what
 * is left of the token budget, and one prompt larger than that may still be the
 * iteration's only prefill (else it would starve behind the decodes); so a live
 * agent and its simulated backend run the same iterations. When a decode needs
 * a block and none is free, the most recently admitted sequence is preempted and
 * recomputed later (vLLM's recompute preemption): it goes back to the head of the
 * waiting queue and must prefill its prompt and everything it generated.
 * Iteration time = fixed + a * prefill tokens + b * decode sequences + c * KV
 * tokens the decodes read (the profile's four coefficients; profile.h's
 * qs_sim_profile_iter_us, the agent's model executor's formula too).
 *
 * Speculative decoding (a profile with spec_depth k > 0): every decode verifies k
 * drafts (their compute and the k draft steps in the iteration time) and the
 * decoding set advances in lock step by 1 + the expected accepted drafts,
 * E - 1 = a + ... + a^k at the profile's spec_accept a, carried from iteration to
 * iteration as a fraction so that the mean is exact. The aggregates stay O(1); the
 * price is that every sequence gains the same tokens in an iteration (the agent's
 * model executor draws them per sequence and per workload class), and KV is taken
 * for the accepted tokens only.
 *
 * Token accounting: a prefill of n tokens stores n tokens of KV and samples the
 * first output token; each decode stores the previous token's KV and samples one
 * more. So while running, kv_tokens = prompt + generated - 1.
 *
 * Cost: a decode iteration decodes every decoding sequence (the sequence cap is
 * at most the token budget), so the decoding set advances in lock step and is
 * kept as aggregates (struct qs_sim_slot): scheduling and ending a decode-only
 * iteration is O(1) plus O(log n) per completion, not O(n) per iteration. Only
 * when the KV cache runs out does scheduling walk the set in admission order to
 * preempt exactly as the per-sequence rule says.
 *
 * Tokrate model: `concurrency` slots of tokens_per_s / concurrency each, FIFO
 * queue; one event per request (its completion).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qsteer/admit.h"
#include "sim_internal.h"

static inline uint32_t
blocks_for(uint32_t tokens)
{
	return (tokens + QS_SIM_BLOCK_TOKENS - 1) / QS_SIM_BLOCK_TOKENS;
}

int
qs_sim_backend_init(struct qs_sim *s, struct qs_sim_backend *be, uint32_t id,
		    const struct qs_sim_profile *p)
{
	memset(be, 0, sizeof(*be));
	be->id = id;
	be->prof = *p;
	be->mixed = p->model == QS_SIM_MODEL_BATCH && !p->chunked_prefill &&
		    s->cfg.backend[id].schedule == QS_SIM_SCHED_MIXED;
	be->wait_head = be->wait_tail = QS_NIL;
	if (p->model == QS_SIM_MODEL_BATCH) {
		uint32_t i;

		be->slot = calloc(p->max_seqs, sizeof(*be->slot));
		be->slot_free = calloc(p->max_seqs, sizeof(uint32_t));
		be->pf = calloc(p->max_seqs, sizeof(uint32_t));
		be->fh = calloc(p->max_seqs, sizeof(uint32_t));
		be->done = calloc(p->max_seqs, sizeof(uint32_t));
		if (!be->slot || !be->slot_free || !be->pf || !be->fh || !be->done)
			return QS_E_NOMEM;
		/* Pop order 0, 1, 2, ...: slot indices do not affect results anyway. */
		for (i = 0; i < p->max_seqs; i++)
			be->slot_free[i] = p->max_seqs - 1 - i;
		be->n_slot_free = p->max_seqs;
		be->run_head = be->run_tail = QS_NIL;
		be->kv_free = p->kv_blocks;
		be->dec_t = 1;
		if (p->spec_depth)
			be->spec_extra = qs_spec_expected_tokens(p->spec_accept, p->spec_depth) - 1;
		if (p->prefix_cache) {
			be->pcache = calloc(p->prefix_cache, sizeof(*be->pcache));
			if (!be->pcache)
				return QS_E_NOMEM;
		}
	} else {
		be->tok_speed = p->tokens_per_s / p->concurrency;
	}
	be->rep.kv_total = qs_sim_backend_kv_total(be);
	return QS_OK;
}

void
qs_sim_backend_free(struct qs_sim_backend *be)
{
	free(be->slot);
	free(be->slot_free);
	free(be->pf);
	free(be->fh);
	free(be->done);
	free(be->pcache);
	be->slot = NULL;
	be->slot_free = be->pf = be->fh = be->done = NULL;
	be->pcache = NULL;
}

static void
wait_push_back(struct qs_sim *s, struct qs_sim_backend *be, uint32_t ri)
{
	s->pool.req[ri].next = QS_NIL;
	if (be->wait_tail == QS_NIL)
		be->wait_head = ri;
	else
		s->pool.req[be->wait_tail].next = ri;
	be->wait_tail = ri;
	be->n_waiting++;
}

static void
wait_push_front(struct qs_sim *s, struct qs_sim_backend *be, uint32_t ri)
{
	s->pool.req[ri].next = be->wait_head;
	be->wait_head = ri;
	if (be->wait_tail == QS_NIL)
		be->wait_tail = ri;
	be->n_waiting++;
}

static uint32_t
wait_pop(struct qs_sim *s, struct qs_sim_backend *be)
{
	uint32_t ri = be->wait_head;

	be->wait_head = s->pool.req[ri].next;
	if (be->wait_head == QS_NIL)
		be->wait_tail = QS_NIL;
	be->n_waiting--;
	return ri;
}

static void
record_first_token(struct qs_sim *s, struct qs_sim_backend *be, struct qs_sim_req *q, uint64_t t)
{
	uint32_t old, v;

	if (q->first_done)
		return;
	q->first_done = true;
	q->first_token_ns = t;
	old = be->ttft.us[be->ttft.pos % QS_TTFT_WINDOW];
	qs_ttft_window_push(&be->ttft, t - q->r.arrival_ns);
	v = be->ttft.us[(be->ttft.pos + QS_TTFT_WINDOW - 1) % QS_TTFT_WINDOW];
	/* Keep the window's max, which every report reads, so that a first token costs
	 * no scan of the window; rescan (at the next report) only when the max left. */
	if (v >= be->ttft_max)
		be->ttft_max = v;
	else if (old == be->ttft_max)
		be->ttft_dirty = true;
	(void)s;
}

/* A small LRU of prefix hashes whose KV the backend still holds. */
static bool
pcache_hit(struct qs_sim_backend *be, uint32_t hash, uint64_t now)
{
	uint32_t i, victim = 0;
	uint64_t oldest = UINT64_MAX;

	if (!be->pcache || hash == 0)
		return false;
	for (i = 0; i < be->prof.prefix_cache; i++) {
		if (be->pcache[i].hash == hash) {
			be->pcache[i].used_ns = now;
			return true;
		}
		if (be->pcache[i].used_ns < oldest) {
			oldest = be->pcache[i].used_ns;
			victim = i;
		}
	}
	be->pcache[victim].hash = hash;
	be->pcache[victim].used_ns = now;
	return false;
}

static int tok_start(struct qs_sim *s, struct qs_sim_backend *be, uint32_t ri);
static int batch_step(struct qs_sim *s, struct qs_sim_backend *be);

int
qs_sim_backend_enqueue(struct qs_sim *s, struct qs_sim_backend *be, uint32_t ri)
{
	struct qs_sim_req *q = &s->pool.req[ri];

	be->received++;
	be->received_tokens += q->r.prompt_tokens;
	if (be->prof.model == QS_SIM_MODEL_TOKRATE) {
		be->prefill_pending += q->r.prompt_tokens;
		if (be->n_running < be->prof.concurrency)
			return tok_start(s, be, ri);
		wait_push_back(s, be, ri);
		return QS_OK;
	}
	/* Requests longer than the model's context are cut, prompt first. */
	if ((uint64_t)q->r.prompt_tokens + q->r.max_new_tokens > be->prof.max_model_len) {
		uint32_t L = be->prof.max_model_len;

		if (q->r.max_new_tokens >= L)
			q->r.max_new_tokens = L / 2;
		q->r.prompt_tokens = L - q->r.max_new_tokens;
		s->acc.truncated++;
	}
	q->prefill_target = q->r.prompt_tokens;
	if (pcache_hit(be, q->r.prefix_hash, s->now)) {
		/* Cached prefix KV: skip computing it (the last prompt token always runs). */
		uint32_t skip =
		    q->r.prefix_hash ? s->cfg.wl.cls[q->r.class_index].prefix_tokens : 0;

		q->prefill_done = skip < q->prefill_target ? skip : q->prefill_target - 1;
		q->cache_hit = true;
		s->acc.prefix_hits++;
	}
	be->prefill_pending += q->prefill_target - q->prefill_done;
	wait_push_back(s, be, ri);
	if (!be->busy)
		return batch_step(s, be);
	return QS_OK;
}

/* ---- tokrate ----------------------------------------------------------------------- */

static int
tok_start(struct qs_sim *s, struct qs_sim_backend *be, uint32_t ri)
{
	struct qs_sim_req *q = &s->pool.req[ri];
	double pw = be->prof.prefill_weight * q->r.prompt_tokens;
	uint64_t first = (uint64_t)llround((pw + 1.0) / be->tok_speed * 1e9);
	uint64_t svc = (uint64_t)llround((pw + q->r.max_new_tokens) / be->tok_speed * 1e9);

	be->n_running++;
	be->prefill_pending -= q->r.prompt_tokens;
	record_first_token(s, be, q, s->now + first);
	be->busy_ns += svc;
	return qs_sim_heap_push(&s->heap, s->now + svc, QS_EV_TOK_DONE, be->id, ri);
}

int
qs_sim_backend_tok_done(struct qs_sim *s, struct qs_sim_backend *be, uint32_t ri)
{
	qs_sim_reports_sync(s, be, s->now);
	be->n_running--;
	be->decoded += s->pool.req[ri].r.max_new_tokens;
	qs_sim_complete(s, be, ri);
	if (be->n_waiting)
		return tok_start(s, be, wait_pop(s, be));
	return QS_OK;
}

/* ---- batch: the running set ------------------------------------------------------------ */

static inline uint64_t
slot_kv(const struct qs_sim_backend *be, const struct qs_sim_slot *sl)
{
	return sl->kv0 + be->dec_iter;
}

static inline bool
fh_less(const struct qs_sim_backend *be, uint32_t a, uint32_t b)
{
	const struct qs_sim_slot *x = &be->slot[a], *y = &be->slot[b];

	return x->fin < y->fin || (x->fin == y->fin && x->adm < y->adm);
}

static inline void
fh_set(struct qs_sim_backend *be, uint32_t pos, uint32_t si)
{
	be->fh[pos] = si;
	be->slot[si].hpos = pos;
}

static void
fh_up(struct qs_sim_backend *be, uint32_t pos)
{
	uint32_t si = be->fh[pos];

	while (pos > 0) {
		uint32_t p = (pos - 1) / 2;

		if (!fh_less(be, si, be->fh[p]))
			break;
		fh_set(be, pos, be->fh[p]);
		pos = p;
	}
	fh_set(be, pos, si);
}

static void
fh_down(struct qs_sim_backend *be, uint32_t pos)
{
	uint32_t si = be->fh[pos], n = be->n_dec;

	for (;;) {
		uint32_t c = 2 * pos + 1;

		if (c >= n)
			break;
		if (c + 1 < n && fh_less(be, be->fh[c + 1], be->fh[c]))
			c++;
		if (!fh_less(be, be->fh[c], si))
			break;
		fh_set(be, pos, be->fh[c]);
		pos = c;
	}
	fh_set(be, pos, si);
}

/* A sequence whose prefill just finished joins the decoding set. */
static void
dec_join(struct qs_sim_backend *be, uint32_t si, uint32_t kv_tokens)
{
	struct qs_sim_slot *sl = &be->slot[si];

	sl->in_prefill = 0;
	sl->kv0 = (uint64_t)kv_tokens - be->dec_iter;
	sl->fin = be->dec_iter + (sl->gen_total - sl->generated);
	be->sum_kv0 += sl->kv0;
	be->kv_phase[sl->kv0 % QS_SIM_BLOCK_TOKENS]++;
	fh_set(be, be->n_dec++, si);
	fh_up(be, be->n_dec - 1);
}

static void
dec_leave(struct qs_sim_backend *be, uint32_t si)
{
	struct qs_sim_slot *sl = &be->slot[si];
	uint32_t pos = sl->hpos, moved;

	be->sum_kv0 -= sl->kv0;
	be->kv_phase[sl->kv0 % QS_SIM_BLOCK_TOKENS]--;
	if (pos == --be->n_dec)
		return;
	moved = be->fh[be->n_dec];
	fh_set(be, pos, moved);
	fh_up(be, pos);
	fh_down(be, be->slot[moved].hpos);
}

static uint32_t
run_add(struct qs_sim_backend *be)
{
	uint32_t si = be->slot_free[--be->n_slot_free];
	struct qs_sim_slot *sl = &be->slot[si];

	sl->adm = be->adm_next++;
	sl->prev = be->run_tail;
	sl->next = QS_NIL;
	if (be->run_tail == QS_NIL)
		be->run_head = si;
	else
		be->slot[be->run_tail].next = si;
	be->run_tail = si;
	be->n_running++;
	return si;
}

static void
run_remove(struct qs_sim_backend *be, uint32_t si)
{
	struct qs_sim_slot *sl = &be->slot[si];

	if (sl->prev == QS_NIL)
		be->run_head = sl->next;
	else
		be->slot[sl->prev].next = sl->next;
	if (sl->next == QS_NIL)
		be->run_tail = sl->prev;
	else
		be->slot[sl->next].prev = sl->prev;
	be->slot_free[be->n_slot_free++] = si;
	be->n_running--;
}

/* Preempt running sequence si (recompute: back to the front of the queue). */
static void
preempt_slot(struct qs_sim *s, struct qs_sim_backend *be, uint32_t si)
{
	struct qs_sim_slot *sl = &be->slot[si];
	struct qs_sim_req *q = &s->pool.req[sl->ri];
	uint32_t blocks, generated, j;

	if (sl->in_prefill) {
		/* out of the prefilling list, which keeps admission order (the newest
		 * sequence, preempt_last's, is its last) */
		for (j = 0; j < be->n_pf && be->pf[j] != si; j++)
			;
		for (; j + 1 < be->n_pf; j++)
			be->pf[j] = be->pf[j + 1];
		be->n_pf--;
		blocks = sl->blocks;
		generated = sl->generated;
	} else {
		/* Preemption happens while scheduling, before this iteration's blocks. */
		blocks = blocks_for((uint32_t)slot_kv(be, sl));
		generated = sl->gen_total - (uint32_t)(sl->fin - be->dec_iter);
		dec_leave(be, si);
	}
	be->kv_free += blocks;
	/* Recompute: the prompt and every generated token but the last are prefilled again. */
	be->prefill_pending -= q->prefill_target - q->prefill_done;
	q->generated = generated;
	q->prefill_target = q->r.prompt_tokens + q->generated;
	q->prefill_done = 0;
	q->preemptions++;
	be->prefill_pending += q->prefill_target;
	be->preemptions++;
	be->iter_preempted++;
	run_remove(be, si);
	wait_push_front(s, be, sl->ri);
}

/* Preempt the most recently admitted sequence (the tail of the running set). */
static void
preempt_last(struct qs_sim *s, struct qs_sim_backend *be)
{
	preempt_slot(s, be, be->run_tail);
}

/* ---- priority admission and tenant fair share (admit.h, as the agent's) -------------------- */

/*
 * The waiting request to admit next (*prevp: the one before it in the queue) and,
 * in *starvedp, whether it is starved; *havep: whether any waiting one is.
 */
static uint32_t
wait_best(struct qs_sim *s, struct qs_sim_backend *be, uint32_t *prevp, uint32_t *starvedp,
	  uint32_t *havep)
{
	uint32_t i, prev = QS_NIL, best = be->wait_head, bprev = QS_NIL, bp = 0, st = QS_NIL,
		    stprev = QS_NIL;
	uint64_t held = 0, bheld = 0;

	if (be->fair)
		qs_admit_share_decay(&be->share, s->now);
	for (i = be->wait_head; i != QS_NIL; prev = i, i = s->pool.req[i].next) {
		const struct qs_sim_req *q = &s->pool.req[i];

		if (be->fair)
			held = qs_admit_share_get(&be->share, q->r.tenant);
		if (i == be->wait_head ||
		    qs_admit_better(q->r.priority, held, bp, bheld, be->fair)) {
			best = i;
			bprev = prev;
			bp = q->r.priority;
			bheld = held;
		}
		if (st == QS_NIL && qs_admit_starved(q->r.arrival_ns, s->now, be->starve_ns)) {
			st = i;
			stprev = prev;
		}
	}
	*havep = st != QS_NIL;
	if (qs_admit_take_starved(st != QS_NIL, be->since_starved) || best == st) {
		*prevp = stprev;
		*starvedp = st != QS_NIL;
		return st;
	}
	*prevp = bprev;
	*starvedp = 0;
	return best;
}

static void
wait_unlink(struct qs_sim *s, struct qs_sim_backend *be, uint32_t ri, uint32_t prev)
{
	if (prev == QS_NIL)
		be->wait_head = s->pool.req[ri].next;
	else
		s->pool.req[prev].next = s->pool.req[ri].next;
	if (be->wait_tail == ri)
		be->wait_tail = prev;
	be->n_waiting--;
}

/* The request to admit next preempts lower, unstarved priorities until it fits. */
static void
priority_preempt(struct qs_sim *s, struct qs_sim_backend *be)
{
	uint32_t prev, starved, have, w = wait_best(s, be, &prev, &starved, &have), si, v;
	const struct qs_sim_req *q = &s->pool.req[w];
	uint32_t rest = q->prefill_target - q->prefill_done;
	uint32_t chunk =
	    be->prof.chunked_prefill && rest > be->prof.max_tokens ? be->prof.max_tokens : rest;
	uint32_t need = blocks_for(q->prefill_done + chunk), vp = 0;
	uint64_t vadm = 0;

	while (!qs_admit_fits(be->n_running, be->prof.max_seqs, need, be->kv_free)) {
		v = QS_NIL;
		for (si = be->run_head; si != QS_NIL; si = be->slot[si].next) {
			const struct qs_sim_req *r = &s->pool.req[be->slot[si].ri];

			if (qs_admit_starved(r->r.arrival_ns, s->now, be->starve_ns))
				continue;
			if (v == QS_NIL ||
			    qs_admit_victim_better(r->r.priority, be->slot[si].adm, vp, vadm)) {
				v = si;
				vp = r->r.priority;
				vadm = be->slot[si].adm;
			}
		}
		if (v == QS_NIL || vp >= q->r.priority)
			return;
		preempt_slot(s, be, v);
	}
}

/*
 * Decode pass: every decoding sequence gets one token, taking a block when its
 * KV crosses a block boundary (kv_tokens a multiple of 16). When the free blocks
 * cover all of those, that is one subtraction. Otherwise walk the set in
 * admission order as the per-sequence rule does: a sequence that needs a block
 * when none is free preempts from the back (possibly itself). Adds the decodes'
 * KV read to *kv_read and returns how many decodes were scheduled.
 */
static uint32_t
schedule_decodes(struct qs_sim *s, struct qs_sim_backend *be, uint64_t *kv_read, uint32_t budget)
{
	uint32_t need, si;

	if (be->n_dec == 0)
		return 0;
	be->dec_t = 1;
	/* Drafts within the token budget, as the agent cuts them (1 + k positions a
	 * decode); the decodes themselves always fit (n_dec <= max_seqs <= budget). */
	be->dec_k = be->prof.spec_depth;
	if (be->dec_k && (uint64_t)be->n_dec * (1 + be->dec_k) > budget)
		be->dec_k = budget > be->n_dec ? (budget - be->n_dec) / be->n_dec : 0;
	if (be->dec_k) {
		be->spec_frac += be->dec_k == be->prof.spec_depth
				     ? be->spec_extra
				     : qs_spec_expected_tokens(be->prof.spec_accept, be->dec_k) - 1;
		be->dec_t += (uint32_t)be->spec_frac; /* < 9 */
		be->spec_frac -= (uint32_t)be->spec_frac;
	}
	/* A slot takes a block when one of its next dec_t tokens starts one: kv + j a
	 * multiple of 16, that is kv0 = -dec_iter - j (mod 16), for j < dec_t <= 9. */
	need = 0;
	for (uint32_t j = 0; j < be->dec_t; j++)
		need += be->kv_phase[(0 - be->dec_iter - j) % QS_SIM_BLOCK_TOKENS];
	if (need <= be->kv_free) {
		be->kv_free -= need;
	} else {
		for (si = be->run_head; si != QS_NIL;) {
			struct qs_sim_slot *sl = &be->slot[si];
			bool preempted_self = false;

			if (!sl->in_prefill && blocks_for((uint32_t)slot_kv(be, sl) + be->dec_t) >
						   blocks_for((uint32_t)slot_kv(be, sl))) {
				while (be->kv_free == 0) {
					bool self = si == be->run_tail;

					preempt_last(s, be);
					if (self) {
						preempted_self = true;
						break;
					}
				}
				if (preempted_self)
					break; /* nothing after it remains */
				be->kv_free--;
			}
			si = sl->next;
		}
		if (be->n_dec == 0)
			return 0;
	}
	*kv_read += be->sum_kv0 + (uint64_t)be->n_dec * be->dec_iter;
	be->dec_sched = true;
	return be->n_dec;
}

/* The budget the decodes take: 1 + dec_k positions each (schedule_decodes fitted
 * dec_k to the budget; decodes <= max_seqs <= max_tokens, so all of it fits). */
static uint32_t
verify_tokens(const struct qs_sim_backend *be, uint32_t decodes, uint32_t budget)
{
	uint64_t t = (uint64_t)decodes * (1 + be->dec_k);

	return t < budget ? (uint32_t)t : budget;
}

static int
batch_step(struct qs_sim *s, struct qs_sim_backend *be)
{
	const struct qs_sim_profile *p = &be->prof;
	uint32_t budget = p->max_tokens, tokens = 0, prefill = 0, decodes = 0, i;
	uint64_t kv_read = 0;
	double us;

	if (be->busy || (be->n_running == 0 && be->n_waiting == 0))
		return QS_OK;
	be->iter_preempted = 0;
	if (be->prio && be->n_waiting)
		priority_preempt(s, be);
	if (p->chunked_prefill) {
		decodes = schedule_decodes(s, be, &kv_read, budget);
		budget -= verify_tokens(be, decodes, budget);
		/* Continue partial prefills, in admission order. */
		for (i = 0; i < be->n_pf && budget; i++) {
			struct qs_sim_slot *sl = &be->slot[be->pf[i]];
			struct qs_sim_req *q = &s->pool.req[sl->ri];
			uint32_t chunk, need;

			chunk = q->prefill_target - q->prefill_done;
			chunk = chunk < budget ? chunk : budget;
			need = blocks_for(q->prefill_done + chunk);
			if (need > sl->blocks) {
				if (need - sl->blocks > be->kv_free)
					continue;
				be->kv_free -= need - sl->blocks;
				sl->blocks = need;
			}
			sl->sched = chunk;
			prefill += chunk;
			budget -= chunk;
		}
	} else if (be->mixed) {
		decodes = schedule_decodes(s, be, &kv_read, budget);
		/* The agent's executor counts each decode's KV read with the token it
		 * adds (context + 1, agent.c's add_to_batch); v0 counts the context. */
		kv_read += decodes;
		budget -= verify_tokens(be, decodes, budget);
	} else if (be->n_waiting == 0 || be->n_running == p->max_seqs) {
		decodes = schedule_decodes(s, be, &kv_read, budget);
		budget = 0;
	}
	/* Admit from the head of the waiting queue while the head fits (FCFS), or the
	 * highest priority while it fits (admit.h). */
	while (be->n_waiting && be->n_running < p->max_seqs && budget) {
		uint32_t prev = QS_NIL, starved = 0, have = 0, si;
		uint32_t ri = be->prio ? wait_best(s, be, &prev, &starved, &have) : be->wait_head;
		struct qs_sim_req *q = &s->pool.req[ri];
		struct qs_sim_slot *sl;
		uint32_t rest = q->prefill_target - q->prefill_done, chunk = rest, need;

		if (p->chunked_prefill)
			chunk = rest < budget ? rest : budget;
		else if (rest > budget && (!be->mixed || prefill > 0))
			break; /* mixed: an oversized prompt goes alone beside the decodes */
		need = blocks_for(q->prefill_done + chunk);
		if (need > be->kv_free)
			break;
		if (be->prio) {
			wait_unlink(s, be, ri, prev);
			be->since_starved = qs_admit_since_next(have, starved, be->since_starved);
			if (be->fair)
				qs_admit_share_add(&be->share, q->r.tenant, rest);
		} else {
			wait_pop(s, be);
		}
		be->kv_free -= need;
		si = run_add(be);
		sl = &be->slot[si];
		sl->ri = ri;
		sl->blocks = need;
		sl->generated = q->generated;
		sl->gen_total = q->r.max_new_tokens;
		sl->sched = chunk;
		sl->in_prefill = 1;
		be->pf[be->n_pf++] = si;
		prefill += chunk;
		budget = chunk < budget ? budget - chunk : 0;
	}
	if (!p->chunked_prefill && !be->mixed && prefill == 0 && decodes == 0 && be->n_running)
		decodes = schedule_decodes(s, be, &kv_read, p->max_tokens);
	tokens = decodes + prefill;
	if (tokens == 0)
		return QS_OK; /* nothing fits: wait for a completion to free blocks */
	us = qs_sim_profile_iter_us(p, prefill, decodes, (double)kv_read,
				    (double)decodes * be->dec_k, decodes ? be->dec_k : 0);
	be->iter_ns = (uint64_t)(us * 1000.0 + 0.5);
	if (be->iter_ns == 0)
		be->iter_ns = 1;
	be->iter_start = s->now;
	be->busy = true;
	if (s->cfg.on_iteration) {
		struct qs_sim_iter it = {
		    .backend = be->id,
		    .start_ns = s->now,
		    .duration_ns = be->iter_ns,
		    .seqs = decodes,
		    .tokens = tokens,
		    .prefill_tokens = prefill,
		    .decode_seqs = decodes,
		    .kv_blocks_used = p->kv_blocks - be->kv_free,
		    .max_seqs = p->max_seqs,
		    .max_tokens = p->max_tokens,
		    .kv_blocks = p->kv_blocks,
		    .preempted = be->iter_preempted,
		};

		for (i = 0; i < be->n_pf; i++)
			it.seqs += be->slot[be->pf[i]].sched > 0;
		s->cfg.on_iteration(s->cfg.iter_ctx, &it);
	}
	return qs_sim_heap_push(&s->heap, s->now + be->iter_ns, QS_EV_ITER_END, be->id, 0);
}

/* ---- client cancellations ------------------------------------------------------------------ */

static void
cancelled(struct qs_sim *s, uint32_t ri)
{
	const struct qs_sim_req *q = &s->pool.req[ri];

	qs_sim_acc_cancel(&s->acc, q->r.slo_class, q->r.tenant, q->r.arrival_ns, s->now,
			  (uint64_t)(q->prefill_target - q->prefill_done) + q->r.max_new_tokens -
			      q->generated);
	qs_sim_pool_free(s, ri);
}

/* Prefilling sequences whose clients cancelled: blocks back, out of the running set. */
static void
drop_cancelled_prefills(struct qs_sim *s, struct qs_sim_backend *be)
{
	uint32_t i, w = 0;

	for (i = 0; i < be->n_pf; i++) {
		uint32_t si = be->pf[i];
		struct qs_sim_slot *sl = &be->slot[si];
		struct qs_sim_req *q = &s->pool.req[sl->ri];

		if (!q->cancel_pending) {
			be->pf[w++] = si;
			continue;
		}
		/* the iteration's work on it is thrown away with it */
		be->prefill_pending -= q->prefill_target - q->prefill_done;
		be->kv_free += sl->blocks;
		be->n_cancel_pending--;
		run_remove(be, si);
		cancelled(s, sl->ri);
	}
	be->n_pf = w;
}

int
qs_sim_backend_cancel(struct qs_sim *s, struct qs_sim_backend *be, uint32_t ri, uint32_t id32)
{
	struct qs_sim_req *q = &s->pool.req[ri];
	uint32_t i, prev = QS_NIL;

	/* finished (the slot freed or reused), or its first token came in time */
	if ((uint32_t)q->r.id != id32 || q->r.id == UINT64_MAX || q->first_done ||
	    q->cancel_pending)
		return QS_OK;
	qs_sim_reports_sync(s, be, s->now);
	for (i = be->wait_head; i != QS_NIL && i != ri; i = s->pool.req[i].next)
		prev = i;
	if (i == ri) {
		/* queued: out of the queue, nothing was spent on it */
		wait_unlink(s, be, ri, prev);
		be->prefill_pending -= be->prof.model == QS_SIM_MODEL_TOKRATE
					   ? q->r.prompt_tokens
					   : q->prefill_target - q->prefill_done;
		cancelled(s, ri);
		return QS_OK;
	}
	if (be->prof.model == QS_SIM_MODEL_TOKRATE)
		return QS_OK; /* running: its service time is already spent (tok_start) */
	/* prefilling: now if no iteration runs, else at its end */
	q->cancel_pending = true;
	be->n_cancel_pending++;
	if (be->busy)
		return QS_OK;
	drop_cancelled_prefills(s, be);
	return batch_step(s, be);
}

int
qs_sim_backend_iter_end(struct qs_sim *s, struct qs_sim_backend *be)
{
	uint32_t i, j, w = 0, nd = 0;

	qs_sim_reports_sync(s, be, s->now);
	be->busy = false;
	be->busy_ns += be->iter_ns;
	if (be->n_cancel_pending)
		drop_cancelled_prefills(s, be);
	if (be->dec_sched) {
		/* Every decoding sequence got its token: advance them all at once. */
		be->dec_sched = false;
		be->dec_iter += be->dec_t;
		be->decoded += (uint64_t)be->n_dec * be->dec_t;
		while (be->n_dec && be->slot[be->fh[0]].fin <= be->dec_iter) {
			uint32_t si = be->fh[0];

			be->decoded -= be->dec_iter - be->slot[si].fin; /* past its last token */
			be->slot[si].blocks = blocks_for((uint32_t)slot_kv(be, &be->slot[si]));
			dec_leave(be, si);
			be->done[nd++] = si;
		}
	}
	for (i = 0; i < be->n_pf; i++) {
		uint32_t si = be->pf[i];
		struct qs_sim_slot *sl = &be->slot[si];
		struct qs_sim_req *q = &s->pool.req[sl->ri];

		if (sl->sched) {
			q->prefill_done += sl->sched;
			be->prefill_pending -= sl->sched;
			sl->sched = 0;
			if (q->prefill_done == q->prefill_target) {
				sl->generated++;
				record_first_token(s, be, q, s->now);
				if (sl->generated >= sl->gen_total) {
					sl->in_prefill = 0;
					be->done[nd++] = si;
				} else {
					dec_join(be, si, q->prefill_done);
				}
				continue;
			}
		}
		be->pf[w++] = si;
	}
	be->n_pf = w;
	/* Complete in admission order, as a walk over the running set would. */
	for (i = 1; i < nd; i++) {
		uint32_t si = be->done[i];

		for (j = i; j > 0 && be->slot[be->done[j - 1]].adm > be->slot[si].adm; j--)
			be->done[j] = be->done[j - 1];
		be->done[j] = si;
	}
	for (i = 0; i < nd; i++) {
		struct qs_sim_slot *sl = &be->slot[be->done[i]];

		be->kv_free += sl->blocks;
		s->pool.req[sl->ri].generated = sl->gen_total;
		qs_sim_complete(s, be, sl->ri);
		run_remove(be, be->done[i]);
	}
	return batch_step(s, be);
}
