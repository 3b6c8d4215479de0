/*
 * backend.c - the GPU backend models.
 *
 * Batch model (vLLM-like iteration-level batching): a FCFS waiting queue, a
 * running set in admission order, a cap on sequences and a token budget per
 * iteration, a KV cache of 16-token blocks. Without chunked prefill an iteration
 * either admits and prefills waiting requests (prefill first, as vLLM v0) or
 * decodes every running sequence; with chunked prefill (Sarathi-Serve) decodes go
 * first and prefill chunks fill the rest of the token budget. When a decode needs
 * a block and none is free, the most recently admitted sequence is preempted and
 * recomputed later (vLLM's recompute preemption): it goes back to the head of the
 * waiting queue and must prefill its prompt and everything it generated.
 * Iteration time = fixed + a * prefill tokens + b * decode sequences + c * KV
 * tokens the decodes read (the profile's four coefficients).
 *
 * Token accounting: a prefill of n tokens stores n tokens of KV and samples the
 * first output token; each decode stores the previous token's KV and samples one
 * more. So while running, kv_tokens = prompt + generated - 1.
 *
 * Tokrate model: `concurrency` slots of tokens_per_s / concurrency each, FIFO
 * queue; one event per request (its completion).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
	(void)s;
	memset(be, 0, sizeof(*be));
	be->id = id;
	be->prof = *p;
	be->wait_head = be->wait_tail = QS_NIL;
	if (p->model == QS_SIM_MODEL_BATCH) {
		be->running = calloc(p->max_seqs, sizeof(*be->running));
		if (!be->running)
			return QS_E_NOMEM;
		be->kv_free = p->kv_blocks;
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
	free(be->running);
	free(be->pcache);
	be->running = NULL;
	be->pcache = NULL;
}

uint32_t
qs_sim_backend_kv_used(const struct qs_sim_backend *be)
{
	/* Tokrate servers have no KV model: slots in use stand for it. */
	if (be->prof.model == QS_SIM_MODEL_TOKRATE)
		return be->n_running;
	return be->prof.kv_blocks - be->kv_free;
}

uint32_t
qs_sim_backend_kv_total(const struct qs_sim_backend *be)
{
	return be->prof.model == QS_SIM_MODEL_TOKRATE ? be->prof.concurrency : be->prof.kv_blocks;
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
record_first_token(struct qs_sim *s, struct qs_sim_backend *be, struct qs_sim_req *q,
		   uint64_t t)
{
	uint64_t us;

	if (q->first_done)
		return;
	q->first_done = true;
	q->first_token_ns = t;
	us = (t - q->r.arrival_ns) / 1000;
	be->ttft_ring[be->ttft_pos++ % QS_SIM_TTFT_RING] = us > UINT32_MAX ? UINT32_MAX
									: (uint32_t)us;
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
		uint32_t skip = q->r.prefix_hash ? s->cfg.wl.cls[q->r.class_index].prefix_tokens : 0;

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

/* ---- batch ---------------------------------------------------------------------------- */

static void
preempt_last(struct qs_sim *s, struct qs_sim_backend *be)
{
	struct qs_sim_slot *sl = &be->running[--be->n_running];
	struct qs_sim_req *q = &s->pool.req[sl->ri];

	be->kv_free += sl->blocks;
	/* Recompute: the prompt and every generated token but the last are prefilled again. */
	be->prefill_pending -= q->prefill_target - q->prefill_done;
	q->generated = sl->generated;
	q->prefill_target = q->r.prompt_tokens + q->generated;
	q->prefill_done = 0;
	q->preemptions++;
	be->prefill_pending += q->prefill_target;
	be->preemptions++;
	be->iter_preempted++;
	wait_push_front(s, be, sl->ri);
}

/*
 * Decode pass over the running set: every sequence past its prefill gets one
 * token, taking a block when its KV crosses a block boundary; when none is free,
 * preempt from the back (possibly the sequence itself). Returns decodes scheduled.
 * The running set is a compact array of slots so this loop touches nothing else.
 */
static uint32_t
schedule_decodes(struct qs_sim *s, struct qs_sim_backend *be, uint64_t *kv_read,
		 uint32_t budget)
{
	uint32_t i = 0, n = 0;
	uint64_t kv = 0;

	while (i < be->n_running && n < budget) {
		struct qs_sim_slot *sl = &be->running[i];

		if (sl->in_prefill) {
			i++;
			continue;
		}
		if ((sl->kv_tokens + QS_SIM_BLOCK_TOKENS) / QS_SIM_BLOCK_TOKENS > sl->blocks) {
			/* kv_tokens + 1 needs one more block than it holds */
			while (be->kv_free == 0) {
				bool self = i == be->n_running - 1;

				preempt_last(s, be);
				if (self)
					break;
			}
			if (i >= be->n_running)
				break; /* it was preempted itself: nothing after it remains */
			be->kv_free--;
			sl->blocks++;
		}
		sl->sched = 1;
		kv += sl->kv_tokens;
		n++;
		i++;
	}
	*kv_read += kv;
	return n;
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
	if (p->chunked_prefill) {
		decodes = schedule_decodes(s, be, &kv_read, budget);
		budget -= decodes;
		/* Continue partial prefills, in admission order. */
		for (i = 0; i < be->n_running && budget; i++) {
			struct qs_sim_slot *sl = &be->running[i];
			struct qs_sim_req *q;
			uint32_t chunk, need;

			if (!sl->in_prefill)
				continue;
			q = &s->pool.req[sl->ri];
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
	} else if (be->n_waiting == 0 || be->n_running == p->max_seqs) {
		decodes = schedule_decodes(s, be, &kv_read, budget);
		budget = 0;
	}
	/* Admit from the head of the waiting queue while the head fits (FCFS). */
	while (be->n_waiting && be->n_running < p->max_seqs && budget) {
		uint32_t ri = be->wait_head;
		struct qs_sim_req *q = &s->pool.req[ri];
		struct qs_sim_slot *sl;
		uint32_t rest = q->prefill_target - q->prefill_done, chunk = rest, need;

		if (p->chunked_prefill)
			chunk = rest < budget ? rest : budget;
		else if (rest > budget)
			break;
		need = blocks_for(q->prefill_done + chunk);
		if (need > be->kv_free)
			break;
		wait_pop(s, be);
		be->kv_free -= need;
		sl = &be->running[be->n_running++];
		sl->ri = ri;
		sl->kv_tokens = q->prefill_done;
		sl->blocks = need;
		sl->generated = q->generated;
		sl->gen_total = q->r.max_new_tokens;
		sl->sched = chunk;
		sl->in_prefill = 1;
		prefill += chunk;
		budget -= chunk;
	}
	if (!p->chunked_prefill && prefill == 0 && decodes == 0 && be->n_running)
		decodes = schedule_decodes(s, be, &kv_read, p->max_tokens);
	tokens = decodes + prefill;
	if (tokens == 0)
		return QS_OK; /* nothing fits: wait for a completion to free blocks */
	us = p->fixed_us + p->prefill_us_per_token * prefill + p->decode_us_per_seq * decodes +
	     p->kv_us_per_token * (double)kv_read;
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
			.seqs = 0,
			.tokens = tokens,
			.prefill_tokens = prefill,
			.decode_seqs = decodes,
			.kv_blocks_used = p->kv_blocks - be->kv_free,
			.max_seqs = p->max_seqs,
			.max_tokens = p->max_tokens,
			.kv_blocks = p->kv_blocks,
			.preempted = be->iter_preempted,
		};

		for (i = 0; i < be->n_running; i++)
			it.seqs += be->running[i].sched > 0;
		s->cfg.on_iteration(s->cfg.iter_ctx, &it);
	}
	return qs_sim_heap_push(&s->heap, s->now + be->iter_ns, QS_EV_ITER_END, be->id, 0);
}

int
qs_sim_backend_iter_end(struct qs_sim *s, struct qs_sim_backend *be)
{
	uint32_t i, w = 0, n = be->n_running;

	qs_sim_reports_sync(s, be, s->now);
	be->busy = false;
	be->busy_ns += be->iter_ns;
	for (i = 0; i < n; i++) {
		struct qs_sim_slot *sl = &be->running[i];

		if (sl->sched) {
			if (!sl->in_prefill) {
				sl->kv_tokens++;
				sl->generated++;
				be->decoded++;
			} else {
				struct qs_sim_req *q = &s->pool.req[sl->ri];

				q->prefill_done += sl->sched;
				sl->kv_tokens = q->prefill_done;
				be->prefill_pending -= sl->sched;
				if (q->prefill_done == q->prefill_target) {
					sl->in_prefill = 0;
					sl->generated++;
					record_first_token(s, be, q, s->now);
				}
			}
			sl->sched = 0;
			if (sl->generated >= sl->gen_total && !sl->in_prefill) {
				be->kv_free += sl->blocks;
				s->pool.req[sl->ri].generated = sl->generated;
				qs_sim_complete(s, be, sl->ri);
				continue;
			}
		}
		if (w != i)
			be->running[w] = *sl;
		w++;
	}
	be->n_running = w;
	return batch_step(s, be);
}
