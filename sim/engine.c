/*
 * engine.c - the discrete-event core: the event heap, the request pool, the pull
 * API (qs_sim_next_decision / qs_sim_route), the router's view of the backends
 * and request completion.
 *
 * Time is integer nanoseconds. The heap orders events by (time, push sequence),
 * so equal-time events pop in a fixed order and a run is a pure function of the
 * config and the seed.
 *
 * Reports are lazy: a backend's state changes only at its own events, so instead
 * of one event per backend per report interval (millions per hour of trace), a
 * backend takes the reports whose boundaries it crossed just before it changes
 * (qs_sim_reports_sync), and the router does the same for every backend when it
 * decides. A report at boundary T therefore shows the state left by the events
 * before T. Lost reports are decided per (backend, report index) by a hash of the
 * run's seed, so they do not depend on when the snapshot happens to be taken.
 *
 * Checked reports (a backend with a report key or report_source = any, or a
 * [forger] in the scenario): each report is encoded as on the wire, signed with the
 * backend's key, and the router believes it only after the dataplane's three
 * checks (report_src.h, report_auth.h, report_seq.h), counting rejections by the
 * dataplane's reasons. A forger's reports join the same path in time order.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qsteer/report_seq.h"
#include "qsteer/router_view.h"
#include "sim_internal.h"

static void quality_masks(struct qs_sim *s);

double
qs_sim_rng_exp(uint64_t *s, double mean)
{
	return -mean * log1p(-qs_sim_rng_u01(s));
}

double
qs_sim_rng_normal(uint64_t *s)
{
	/* Box-Muller, one value per call: simplicity over the discarded twin. */
	double u1 = 1.0 - qs_sim_rng_u01(s), u2 = qs_sim_rng_u01(s);

	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double
qs_sim_rng_gamma(uint64_t *s, double shape, double scale)
{
	/* Marsaglia-Tsang; shape < 1 boosted by U^(1/shape). */
	double d, c, x, v, u, boost = 1.0;

	if (shape < 1.0) {
		boost = pow(1.0 - qs_sim_rng_u01(s), 1.0 / shape);
		shape += 1.0;
	}
	d = shape - 1.0 / 3.0;
	c = 1.0 / sqrt(9.0 * d);
	for (;;) {
		do {
			x = qs_sim_rng_normal(s);
			v = 1.0 + c * x;
		} while (v <= 0.0);
		v = v * v * v;
		u = qs_sim_rng_u01(s);
		if (u < 1.0 - 0.0331 * x * x * x * x)
			break;
		if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
			break;
	}
	return d * v * scale * boost;
}

/* ---- heap ------------------------------------------------------------------------- */

static inline bool
ev_before(const struct qs_sim_event *a, const struct qs_sim_event *b)
{
	/* (t, seq) as one 128-bit key: a compare and a subtract-with-borrow, no branch. */
	return ((unsigned __int128)a->t << 64 | a->seq) < ((unsigned __int128)b->t << 64 | b->seq);
}

/*
 * Fill the hole at the root with e. Floyd's bottom-up variant: walk the hole
 * down the path of smaller children to a leaf (one compare per level), then sift
 * e up from there. A replacement is usually later than most of the heap (the
 * next iteration end of the backend just handled), so the way back up is short.
 */
static inline void
heap_fill_root(struct qs_sim_heap *h, const struct qs_sim_event *e)
{
	struct qs_sim_event *ev = h->ev;
	uint32_t n = h->n, i = 0, c;

	while ((c = 2 * i + 2) < n) {
		c -= ev_before(&ev[c - 1], &ev[c]);
		ev[i] = ev[c];
		i = c;
	}
	if (c == n) { /* a last, lone left child */
		ev[i] = ev[c - 1];
		i = c - 1;
	}
	while (i > 0) {
		uint32_t p = (i - 1) / 2;

		if (!ev_before(e, &ev[p]))
			break;
		ev[i] = ev[p];
		i = p;
	}
	ev[i] = *e;
}

int
qs_sim_heap_push(struct qs_sim_heap *h, uint64_t t, uint32_t type, uint32_t a, uint32_t b)
{
	struct qs_sim_event e = {.t = t, .seq = h->next_seq++, .type = type, .a = a, .b = b};
	uint32_t i;

	if (h->top_done) {
		/* The handled event's place: one sift instead of a pop and a push. */
		h->top_done = false;
		heap_fill_root(h, &e);
		return QS_OK;
	}
	if (h->n == h->cap) {
		uint32_t cap = h->cap ? h->cap * 2 : 64;
		struct qs_sim_event *ev = realloc(h->ev, (size_t)cap * sizeof(*ev));

		if (!ev)
			return QS_E_NOMEM;
		h->ev = ev;
		h->cap = cap;
	}
	i = h->n++;
	while (i > 0) {
		uint32_t p = (i - 1) / 2;

		if (!ev_before(&e, &h->ev[p]))
			break;
		h->ev[i] = h->ev[p];
		i = p;
	}
	h->ev[i] = e;
	return QS_OK;
}

bool
qs_sim_heap_next(struct qs_sim_heap *h, struct qs_sim_event *out)
{
	if (h->top_done) {
		h->top_done = false;
		if (--h->n)
			heap_fill_root(h, &h->ev[h->n]);
	}
	if (h->n == 0)
		return false;
	*out = h->ev[0];
	h->top_done = true;
	return true;
}

/* ---- request pool ---------------------------------------------------------------------- */

int
qs_sim_pool_alloc(struct qs_sim *s, uint32_t *ri)
{
	struct qs_sim_pool *p = &s->pool;

	if (p->free_head == QS_NIL) {
		uint32_t cap = p->cap ? p->cap * 2 : 256, i;
		struct qs_sim_req *r;

		if (cap > (1u << 30))
			return QS_E_NOMEM;
		r = realloc(p->req, (size_t)cap * sizeof(*r));
		if (!r)
			return QS_E_NOMEM;
		for (i = p->cap; i < cap; i++)
			r[i].next = i + 1 < cap ? i + 1 : QS_NIL;
		p->free_head = p->cap;
		p->req = r;
		p->cap = cap;
	}
	*ri = p->free_head;
	p->free_head = p->req[*ri].next;
	p->live++;
	return QS_OK;
}

void
qs_sim_pool_free(struct qs_sim *s, uint32_t ri)
{
	s->pool.req[ri].r.id = UINT64_MAX; /* a cancel still in the heap finds no match */
	s->pool.req[ri].next = s->pool.free_head;
	s->pool.free_head = ri;
	s->pool.live--;
}

/* ---- configuration ------------------------------------------------------------------------ */

void
qs_sim_config_default(struct qs_sim_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "unnamed");
	snprintf(c->primary_metric, sizeof(c->primary_metric), "ttft_p99");
	c->wl.arrival = QS_SIM_ARR_POISSON;
	c->wl.rate = 1.0;
	c->wl.cv = 1.0;
	c->wl.burst_factor = 4.0;
	c->wl.burst_mean_s = 10.0;
	c->wl.quiet_mean_s = 30.0;
	c->wl.period_s = 3600.0;
	c->report_interval_ns = 5000000;
	c->prefix_max_age_ns = 10000000000ull;
	c->report_stale_intervals = QS_SIM_REPORT_STALE_INTERVALS;
	c->mask_kv_full = true;
	c->fallback = QS_BASELINE_FALLBACK;
	c->forger.interval_ns = 5000000;
}

void
qs_sim_config_open_loop(struct qs_sim_config *c)
{
	uint32_t i;

	c->report_max_age_ns = 0;
	c->report_stale_intervals = 0;
	c->mask_kv_full = false;
	c->quality_unmasked = true;
	c->report_loss = 0;
	c->forger.kind = QS_SIM_FORGE_NONE;
	c->on_outcome = NULL;
	c->outcome_ctx = NULL;
	c->queue_outcomes = false;
	c->on_iteration = NULL;
	c->iter_ctx = NULL;
	for (i = 0; i < QS_SIM_MAX_BACKENDS; i++) {
		c->backend[i].down_at_s = c->backend[i].up_at_s = 0;
		c->backend[i].drain_at_s = 0;
	}
}

/* The report age that masks a backend (0: none), as qsteer-dp derives it
 * (dp/config.c): the explicit age wins over interval x missed reports. */
static uint64_t
report_max_age(const struct qs_sim_config *c)
{
	return c->report_max_age_ns ? c->report_max_age_ns
				    : c->report_interval_ns * c->report_stale_intervals;
}

static void checked_init(struct qs_sim *s, struct qs_sim_backend *be);

/* How late backend b's agent sends its report k (report_late; 0 without). */
static uint64_t
report_late_ns(const struct qs_sim *s, uint32_t b, uint64_t k)
{
	const struct qs_sim_report_late *l = &s->cfg.report_late;
	double u, q0 = 0.0, v0 = 0.0;
	uint32_t i;

	if (l->n == 0)
		return 0;
	u = (double)(qs_mix64(s->rep_late_seed ^ qs_mix64(((uint64_t)b << 48) ^ k)) >> 11) *
	    0x1.0p-53;
	for (i = 0; i < l->n; i++) {
		if (u < l->q[i])
			return (uint64_t)(v0 + ((double)l->ns[i] - v0) * (u - q0) / (l->q[i] - q0));
		q0 = l->q[i];
		v0 = (double)l->ns[i];
	}
	return l->ns[l->n - 1];
}

int
qs_sim_report_late_check(const struct qs_sim_report_late *l, char *msg, size_t msglen)
{
	uint32_t i;

	if (l->n > QS_SIM_LATE_KNOTS)
		return qs_fail(msg, msglen, QS_E_VALUE, "report lateness: %u knots (at most %d)",
			       l->n, QS_SIM_LATE_KNOTS);
	for (i = 0; i < l->n; i++) {
		if (!(l->q[i] > (i ? l->q[i - 1] : 0.0) && l->q[i] <= 1.0))
			return qs_fail(msg, msglen, QS_E_VALUE,
				       "report lateness knot %u: quantile %g must rise, in (0, 1]",
				       i + 1, l->q[i]);
		if (l->ns[i] < (i ? l->ns[i - 1] : 0) || l->ns[i] > 1000000000ull)
			return qs_fail(
			    msg, msglen, QS_E_VALUE,
			    "report lateness knot %u: %.1f us must not fall, at most 1 s", i + 1,
			    (double)l->ns[i] * 1e-3);
	}
	return QS_OK;
}

static int
check_config(const struct qs_sim_config *c, char *msg, size_t msglen)
{
	uint32_t i;
	int rc;

	if (c->n_backends == 0 || c->n_backends > QS_SIM_MAX_BACKENDS)
		return qs_fail(msg, msglen, QS_E_ARG, "%s: %u backends (1..%d)", c->name,
			       c->n_backends, QS_SIM_MAX_BACKENDS);
	if (c->report_interval_ns == 0)
		return qs_fail(msg, msglen, QS_E_VALUE, "%s: report interval 0", c->name);
	if (!(c->report_loss >= 0.0 && c->report_loss < 1.0))
		return qs_fail(msg, msglen, QS_E_VALUE, "%s: report_loss must be in [0, 1)",
			       c->name);
	if (c->report_transit_ns >= c->report_interval_ns)
		return qs_fail(msg, msglen, QS_E_VALUE,
			       "%s: report_transit_us %.1f must be below the report interval "
			       "(%.1f us)",
			       c->name, (double)c->report_transit_ns * 1e-3,
			       (double)c->report_interval_ns * 1e-3);
	rc = qs_sim_report_late_check(&c->report_late, msg, msglen);
	if (rc != QS_OK)
		return rc;
	if ((c->report_transit_ns || c->report_late.n) && c->forger.kind != QS_SIM_FORGE_NONE)
		return qs_fail(msg, msglen, QS_E_VALUE,
			       "%s: report_transit_us and report_late_us are not modelled with a "
			       "[forger]",
			       c->name);
	for (i = 0; c->report_late.n && i < c->n_backends; i++)
		if (c->backend[i].report_key.has_key || c->backend[i].report_source_any)
			return qs_fail(msg, msglen, QS_E_VALUE,
				       "%s: report_late_us is not modelled with a report_key or "
				       "report_source = any (backend %u)",
				       c->name, i);
	for (i = 0; c->report_transit_ns && i < c->n_backends; i++)
		if (c->backend[i].report_key.has_key || c->backend[i].report_source_any)
			return qs_fail(msg, msglen, QS_E_VALUE,
				       "%s: report_transit_us is not modelled with a report_key or "
				       "report_source = any (backend %u)",
				       c->name, i);
	if (c->forger.kind != QS_SIM_FORGE_NONE &&
	    (c->forger.backend >= c->n_backends || c->forger.interval_ns == 0))
		return qs_fail(msg, msglen, QS_E_VALUE,
			       "%s: [forger] backend %u of %u, interval %llu ns (want a "
			       "configured backend and an interval > 0)",
			       c->name, c->forger.backend, c->n_backends,
			       (unsigned long long)c->forger.interval_ns);
	for (i = 0; i < c->wl.n_classes; i++)
		if (!(c->wl.cls[i].abandon_ms >= 0 && c->wl.cls[i].abandon_frac >= 0 &&
		      c->wl.cls[i].abandon_frac <= 1))
			return qs_fail(msg, msglen, QS_E_VALUE,
				       "%s: class %s: abandon_ms must be >= 0 and abandon_frac "
				       "in [0, 1]",
				       c->name, c->wl.cls[i].name);
	for (i = 0; i < c->n_backends; i++) {
		const struct qs_sim_profile *p = &c->backend[i].prof;

		if ((unsigned)c->backend[i].admission > QS_SIM_ADMIT_FAIR)
			return qs_fail(msg, msglen, QS_E_VALUE,
				       "backend %u (%s): admission %d unknown", i, p->name,
				       (int)c->backend[i].admission);
		if (c->backend[i].admission != QS_SIM_ADMIT_FCFS &&
		    (p->model != QS_SIM_MODEL_BATCH ||
		     !(c->backend[i].starve_ms >= 0 && c->backend[i].starve_ms <= 1e9)))
			return qs_fail(
			    msg, msglen, QS_E_VALUE,
			    "backend %u (%s): admission = priority or fair needs the batch "
			    "model and starve_ms in [0, 1e9]",
			    i, p->name);
		if (qs_sim_profile_check_spec(p, p->name, msg, msglen) != QS_OK)
			return QS_E_VALUE;
		if (p->model == QS_SIM_MODEL_TOKRATE) {
			if (!(p->tokens_per_s > 0) || p->concurrency == 0 || p->prefill_weight < 0)
				return qs_fail(msg, msglen, QS_E_VALUE,
					       "backend %u (%s): tokrate needs tokens_per_s > 0 "
					       "and concurrency > 0",
					       i, p->name);
			continue;
		}
		if (p->max_seqs == 0 || p->max_tokens < p->max_seqs || p->kv_blocks == 0 ||
		    p->max_model_len < 2)
			return qs_fail(
			    msg, msglen, QS_E_VALUE,
			    "backend %u (%s): need max_seqs > 0, max_tokens >= max_seqs, "
			    "kv_blocks > 0, max_model_len >= 2",
			    i, p->name);
		if (!p->chunked_prefill && p->max_tokens < p->max_model_len)
			return qs_fail(
			    msg, msglen, QS_E_VALUE,
			    "backend %u (%s): without chunked prefill max_tokens must be "
			    ">= max_model_len (as vLLM requires)",
			    i, p->name);
		if ((uint64_t)p->kv_blocks * QS_SIM_BLOCK_TOKENS < p->max_model_len + 1ull)
			return qs_fail(msg, msglen, QS_E_VALUE,
				       "backend %u (%s): kv_blocks hold fewer than max_model_len "
				       "tokens, a long request could never run",
				       i, p->name);
		/* A decoding set advanced in lock step can run up to spec_depth tokens past a
		 * request's last one (backend.c); the longest request must still fit. */
		if ((uint64_t)p->kv_blocks * QS_SIM_BLOCK_TOKENS <
		    p->max_model_len + 1ull + p->spec_depth)
			return qs_fail(msg, msglen, QS_E_VALUE,
				       "backend %u (%s): kv_blocks hold fewer than max_model_len + "
				       "spec_depth (%u) tokens, the longest request could never "
				       "finish",
				       i, p->name, p->spec_depth);
		if (!(p->fixed_us >= 0 && p->prefill_us_per_token >= 0 &&
		      p->decode_us_per_seq >= 0 && p->kv_us_per_token >= 0) ||
		    p->fixed_us + p->prefill_us_per_token + p->decode_us_per_seq <= 0)
			return qs_fail(msg, msglen, QS_E_VALUE,
				       "backend %u (%s): iteration costs must be >= 0, not all 0",
				       i, p->name);
		if (p->prefix_cache > 4096)
			return qs_fail(msg, msglen, QS_E_VALUE,
				       "backend %u (%s): prefix_cache > 4096", i, p->name);
	}
	return QS_OK;
}

/*
 * Capacity probes: small single-backend simulations of the scenario's own
 * workload. keep_arrival keeps its arrival process (Poisson, gamma, bursty with
 * its phases; a trace replays the time-scaled stamps and lengths of its window's
 * first rows, so no probe re-reads the file); otherwise, and for diurnal (whose
 * period a short probe cannot cover), arrivals are Poisson and classes drawn only
 * in one phase keep their long-run share of the mix.
 */
static void
probe_config(const struct qs_sim_config *cfg, const struct qs_sim_profile *p, bool keep_arrival,
	     struct qs_sim_config *c)
{
	const struct qs_sim_workload *w = &cfg->wl;
	double tb = w->burst_mean_s * w->burst_factor, tq = w->quiet_mean_s;
	uint32_t i;

	*c = *cfg;
	c->n_backends = 1;
	c->backend[0].prof = *p;
	c->backend[0].capacity = 1;
	c->wl.load = 0;
	c->wl.duration_s = 0;
	c->wl.window_start_s = 0;
	c->wl.window_s = 0;
	c->wl.window_jitter_s = 0;
	c->wl.thin = 0;
	c->on_outcome = NULL;
	c->outcome_ctx = NULL;
	c->queue_outcomes = false;
	c->on_iteration = NULL;
	/* the servers' capacity, not the clients' patience; nor the forger's reach */
	for (i = 0; i < c->wl.n_classes; i++)
		c->wl.cls[i].abandon_ms = 0;
	c->forger.kind = QS_SIM_FORGE_NONE;
	c->backend[0].admission = QS_SIM_ADMIT_FCFS; /* capacity under the plain order */
	c->backend[0].report_key.has_key = 0;
	c->backend[0].report_source_any = false;
	if (keep_arrival && w->arrival != QS_SIM_ARR_DIURNAL)
		return;
	c->wl.arrival = QS_SIM_ARR_POISSON;
	for (i = 0; i < c->wl.n_classes; i++) {
		struct qs_sim_class *k = &c->wl.cls[i];

		if (k->when == QS_SIM_WHEN_ALWAYS)
			continue;
		if (w->arrival == QS_SIM_ARR_BURSTY && tb + tq > 0)
			k->weight *= k->when == QS_SIM_WHEN_BURST ? tb / (tb + tq) : tq / (tb + tq);
		else
			k->weight = 0; /* never drawn without phases */
		k->when = QS_SIM_WHEN_ALWAYS;
	}
	if (c->wl.n_classes == 0) {
		c->wl.n_classes = 1;
		snprintf(c->wl.cls[0].name, sizeof(c->wl.cls[0].name), "all");
		c->wl.cls[0].weight = 1;
	}
}

struct probe_acc {
	uint64_t skip; /* request ids below this are warm-up */
	uint64_t n, met;
	uint64_t target;   /* saturation: completions to time */
	uint64_t t_target; /* when the target-th completion happened */
};

static void
probe_outcome(void *ctx, const struct qs_sim_outcome *o)
{
	struct probe_acc *a = ctx;

	if (++a->n == a->target)
		a->t_target = o->arrival_ns + o->e2e_ns;
	if (o->request_id >= a->skip)
		a->met += o->slo_met;
}

static int sim_create(const struct qs_sim_config *cfg, uint64_t seed,
		      const struct qs_sim_sample_row *sample, uint32_t n_sample,
		      struct qs_sim **out, char *msg, size_t msglen);

/* Run probe config c (rate and requests set) on its one backend to the end. */
static int
probe_run(struct qs_sim_config *c, uint64_t seed, const struct qs_sim_wl *parent,
	  struct probe_acc *a, uint64_t *first_arrival)
{
	struct qs_sim *s = NULL;
	struct qs_sim_decision *d = malloc(sizeof(*d));
	char msg[256];
	int rc;

	if (!d)
		return QS_E_NOMEM;
	c->on_outcome = probe_outcome;
	c->outcome_ctx = a;
	rc = sim_create(c, seed, parent->len_sample, parent->n_len_sample, &s, msg, sizeof(msg));
	if (rc == QS_OK) {
		s->build_features = false;
		while ((rc = qs_sim_next_decision(s, d, msg, sizeof(msg))) == QS_OK && !d->done)
			if ((rc = qs_sim_route(s, 0, msg, sizeof(msg))) != QS_OK)
				break;
		*first_arrival = s->acc.first_arrival;
	}
	qs_sim_destroy(s);
	free(d);
	return rc;
}

/*
 * Saturation throughput of one backend on this workload: enqueue a sample of the
 * workload's requests at once and time 90% of them (the tail of a drained queue
 * is not steady state). A closed-form estimate misjudges prefill-first batching
 * and KV pressure from long requests by up to 2x; the backend model itself does
 * not. Tokrate servers have an exact formula.
 */
static double
saturation_rps(const struct qs_sim_config *cfg, const struct qs_sim_wl *wl,
	       const struct qs_sim_profile *p, double mp, double mg, uint64_t seed)
{
	struct qs_sim_config *c;
	struct probe_acc a = {0};
	uint64_t t0 = 0;
	double rps = 0;

	if (p->model == QS_SIM_MODEL_TOKRATE)
		return qs_sim_profile_capacity_rps(p, mp, mg);
	c = malloc(sizeof(*c));
	if (!c)
		return qs_sim_profile_capacity_rps(p, mp, mg);
	probe_config(cfg, p, false, c);
	c->wl.rate = 1e9; /* everything arrives within microseconds */
	c->wl.requests = QS_SIM_SAT_SAMPLE;
	if (wl->n_len_sample && wl->n_len_sample < QS_SIM_SAT_SAMPLE)
		c->wl.requests = wl->n_len_sample;
	a.target = c->wl.requests * 9 / 10;
	a.skip = UINT64_MAX;
	if (probe_run(c, seed ^ 0x5a7u, wl, &a, &t0) == QS_OK && a.t_target > t0)
		rps = (double)a.target / ((double)(a.t_target - t0) * 1e-9);
	free(c);
	return rps > 0 ? rps : qs_sim_profile_capacity_rps(p, mp, mg);
}

static bool
slo_given(const struct qs_sim_config *cfg)
{
	uint32_t i;

	for (i = 0; i < QS_SIM_SLO_CLASSES; i++)
		if (cfg->slo[i].ttft_ms > 0 || cfg->slo[i].tpot_ms > 0 || cfg->slo[i].e2e_ms > 0)
			return true;
	return false;
}

/*
 * SLO-bounded capacity of one backend (DistServe's per-GPU goodput): the largest
 * Poisson rate of the scenario's request mix at which this backend alone serves
 * QS_SIM_SLO_GOAL of the requests within their SLOs. Bisection between 0 and the
 * saturation throughput on probes of QS_SIM_SLO_SAMPLE requests (the first 10%
 * are warm-up); every probe uses the same seed, so the arrivals are the same
 * draws scaled by the rate and attainment is (nearly) monotone in it. Without
 * SLOs, or when even a light load misses the goal, the saturation throughput
 * stands in (the scenario then says nothing about latency, or is hopeless).
 */
static double
slo_capacity_rps(const struct qs_sim_config *cfg, const struct qs_sim_wl *wl,
		 const struct qs_sim_profile *p, double sat, uint64_t seed)
{
	struct qs_sim_config *c;
	double lo = 0, hi = sat;
	uint32_t step;

	if (!slo_given(cfg) || !(sat > 0))
		return sat;
	c = malloc(sizeof(*c));
	if (!c)
		return sat;
	probe_config(cfg, p, true, c);
	c->wl.requests = QS_SIM_SLO_SAMPLE;
	for (step = 0; step < QS_SIM_SLO_STEPS; step++) {
		struct probe_acc a = {.skip = QS_SIM_SLO_SAMPLE / 10, .target = UINT64_MAX};
		double mid = 0.5 * (lo + hi);
		uint64_t t0;

		c->wl.rate = mid;
		if (probe_run(c, seed ^ 0x510u, wl, &a, &t0) != QS_OK)
			break;
		if ((double)a.met >= QS_SIM_SLO_GOAL * (double)(a.n - a.skip))
			lo = mid;
		else
			hi = mid;
	}
	free(c);
	return lo > 0 ? lo : sat;
}

/* Capacity class 0..7: half-octaves above the smallest configured capacity. */
static uint8_t
capacity_class(uint32_t cap, uint32_t min_cap)
{
	double c = 2.0 * log2((double)cap / (double)min_cap);
	long r = lround(c);

	return (uint8_t)(r < 0 ? 0 : r > 7 ? 7 : r);
}

/*
 * The rate a fleet can carry when quality floors confine some requests to some
 * backends (cascade). In the fluid limit, traffic whose admissible set lies within a
 * set U of backends must fit U's capacity, for every U (Hall's condition for the
 * bipartite flow from request kinds to backends); checking the unions of the
 * distinct admissible sets suffices, since any other U confines the same traffic as
 * the largest such union inside it and has no less capacity. Returns the bound on
 * the total rate (infinity when no floor confines anything).
 */
static double
floor_rate_bound(const struct qs_sim *s, const double *cap)
{
	uint64_t set[QS_SIM_SLO_CLASSES * QS_SIM_DIFFICULTIES], all = 0;
	double share[QS_SIM_SLO_CLASSES * QS_SIM_DIFFICULTIES], wsum = 0, bound = INFINITY;
	uint32_t n = 0, c, k, u, i;

	for (i = 0; i < s->nb; i++)
		all |= 1ull << i;
	for (c = 0; c < s->cfg.wl.n_classes; c++)
		wsum += s->cfg.wl.cls[c].weight;
	if (!(wsum > 0))
		return bound;
	for (c = 0; c < s->cfg.wl.n_classes; c++) {
		const struct qs_sim_class *cl = &s->cfg.wl.cls[c];
		uint64_t a = s->q_ok[cl->slo_class % QS_SIM_SLO_CLASSES]
				    [cl->difficulty % QS_SIM_DIFFICULTIES] &
			     all;

		for (k = 0; k < n && set[k] != a; k++)
			;
		if (k == n) {
			set[n] = a;
			share[n++] = 0;
		}
		share[k] += cl->weight / wsum;
	}
	/* n <= 16 distinct sets: at most 2^16 unions */
	for (u = 1; u < (1u << n); u++) {
		uint64_t U = 0;
		double sh = 0, cu = 0;

		for (k = 0; k < n; k++)
			if (u >> k & 1)
				U |= set[k];
		if (U == all)
			continue; /* the whole fleet: the plain sum */
		for (k = 0; k < n; k++)
			if ((set[k] & ~U) == 0)
				sh += share[k];
		for (i = 0; i < s->nb; i++)
			if (U >> i & 1)
				cu += cap[i];
		if (sh > 0)
			bound = fmin(bound, cu / sh);
	}
	return bound;
}

static int
push_next_arrival(struct qs_sim *s, char *msg, size_t msglen)
{
	struct qs_sim_request r;
	bool have;
	uint32_t ri;
	int rc;

	if (s->wl_done)
		return QS_OK;
	rc = qs_sim_wl_next(&s->wl, &r, &have, msg, msglen);
	if (rc != QS_OK)
		return rc;
	if (!have) {
		s->wl_done = true;
		return QS_OK;
	}
	rc = qs_sim_pool_alloc(s, &ri);
	if (rc != QS_OK)
		return qs_fail(msg, msglen, rc, "out of memory for requests");
	memset(&s->pool.req[ri], 0, sizeof(s->pool.req[ri]));
	s->pool.req[ri].r = r;
	s->pool.req[ri].next = QS_NIL;
	rc = qs_sim_heap_push(&s->heap, r.arrival_ns, QS_EV_ARRIVAL, ri, 0);
	if (rc != QS_OK)
		return qs_fail(msg, msglen, rc, "out of memory for events");
	return QS_OK;
}

int
qs_sim_create(const struct qs_sim_config *cfg, uint64_t seed, struct qs_sim **out, char *msg,
	      size_t msglen)
{
	return sim_create(cfg, seed, NULL, 0, out, msg, msglen);
}

/* qs_sim_create; a capacity probe passes its parent's trace length sample. */
static int
sim_create(const struct qs_sim_config *cfg, uint64_t seed, const struct qs_sim_sample_row *sample,
	   uint32_t n_sample, struct qs_sim **out, char *msg, size_t msglen)
{
	struct qs_sim *s;
	uint32_t i, min_cap = UINT32_MAX;
	double mp, mg, *sat, *slo;
	int rc;

	*out = NULL;
	rc = check_config(cfg, msg, msglen);
	if (rc != QS_OK)
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s)
		return qs_fail(msg, msglen, QS_E_NOMEM, "out of memory");
	s->cfg = *cfg;
	s->seed = seed;
	s->pool.free_head = QS_NIL;
	s->nb = cfg->n_backends;
	s->build_features = true;
	s->prefix = calloc(1, sizeof(*s->prefix));
	if (!s->prefix) {
		rc = qs_fail(msg, msglen, QS_E_NOMEM, "out of memory");
		goto fail;
	}
	qs_prefix_init(s->prefix);
	if (qs_sim_acc_init(&s->acc) != QS_OK) {
		rc = qs_fail(msg, msglen, QS_E_NOMEM, "out of memory");
		goto fail;
	}
	rc = qs_sim_wl_init_probe(&s->wl, &s->cfg, seed, sample, n_sample, msg, msglen);
	if (rc != QS_OK)
		goto fail;
	if (sample && n_sample && cfg->wl.arrival != QS_SIM_ARR_TRACE) {
		/* A saturation probe of a trace: Poisson with the trace's lengths. */
		s->wl.len_sample = (struct qs_sim_sample_row *)sample;
		s->wl.n_len_sample = n_sample;
		s->wl.len_sample_owned = false;
	}
	qs_sim_wl_mean_lengths(&s->wl, &mp, &mg);
	sat = s->sat_rps;
	slo = s->slo_rps;
	s->rep_drop_seed = qs_sim_stream(seed, QS_STREAM_REPORT_DROP);
	/* lateness varies with the phases: both are the agents' timing, not the load's */
	s->rep_late_seed = qs_sim_stream(cfg->report_phase_seed ? cfg->report_phase_seed : seed,
					 QS_STREAM_REPORT_LATE);
	s->abandon_seed = qs_sim_stream(seed, QS_STREAM_ABANDON);
	for (i = 0; i < s->nb; i++) {
		uint64_t ph = qs_sim_stream(cfg->report_phase_seed ? cfg->report_phase_seed : seed,
					    QS_STREAM_REPORT_PHASE + 0x100 * (i + 1));
		uint32_t j;

		rc = qs_sim_backend_init(s, &s->be[i], i, &cfg->backend[i].prof);
		if (rc != QS_OK) {
			rc = qs_fail(msg, msglen, rc, "out of memory for backend %u", i);
			goto fail;
		}
		/* Agents are not synchronised: each reports with its own phase. */
		s->be[i].rep_phase = qs_splitmix64(&ph) % cfg->report_interval_ns;
		s->be[i].prio = cfg->backend[i].admission != QS_SIM_ADMIT_FCFS;
		s->be[i].fair = cfg->backend[i].admission == QS_SIM_ADMIT_FAIR;
		s->be[i].starve_ns = (uint64_t)(cfg->backend[i].starve_ms * 1e6 + 0.5);
		s->be[i].rep_nom_t = s->be[i].rep_phase;
		s->be[i].rep_next_t = s->be[i].rep_phase + report_late_ns(s, i, 0);
		s->be[i].rep_transit = s->be[i].rep;
		s->be[i].rep_arrive_t = UINT64_MAX;
		s->be[i].rep_lossy = cfg->report_loss > 0.0 || cfg->backend[i].down_at_s > 0 ||
				     cfg->backend[i].up_at_s > 0;
		checked_init(s, &s->be[i]);
		s->capacity[i] = cfg->backend[i].capacity;
		if (s->capacity[i] && !(cfg->wl.load > 0))
			continue;
		/* Same profile as an earlier backend: same estimate. */
		for (j = 0; j < i; j++)
			if (!memcmp(&cfg->backend[j].prof, &cfg->backend[i].prof,
				    sizeof(cfg->backend[i].prof)))
				break;
		sat[i] = j < i ? sat[j]
			       : saturation_rps(cfg, &s->wl, &cfg->backend[i].prof, mp, mg, seed);
		if (cfg->wl.load > 0)
			slo[i] = j < i ? slo[j]
				       : slo_capacity_rps(cfg, &s->wl, &cfg->backend[i].prof,
							  sat[i], seed);
		if (s->capacity[i] == 0)
			s->capacity[i] = (uint32_t)fmax(1.0, fmin(1e9, sat[i] * 1000.0));
	}
	for (i = 0; i < s->nb; i++)
		min_cap = s->capacity[i] < min_cap ? s->capacity[i] : min_cap;
	for (i = 0; i < s->nb; i++)
		s->capacity_class[i] = capacity_class(s->capacity[i], min_cap);
	quality_masks(s);
	if (cfg->wl.load > 0.0) {
		double total = 0;

		/* load is a fraction of the SLO-bounded capacity (docs/sim.md, "Load"),
		 * of what the quality floors let the fleet carry where they bind */
		for (i = 0; i < s->nb; i++)
			total += slo[i];
		total = fmin(total, floor_rate_bound(s, slo));
		qs_sim_wl_set_rate(&s->wl, cfg->wl.load * total);
	}
	rc = push_next_arrival(s, msg, msglen);
	if (rc != QS_OK)
		goto fail;
	*out = s;
	return QS_OK;
fail:
	qs_sim_destroy(s);
	return rc;
}

void
qs_sim_destroy(struct qs_sim *s)
{
	uint32_t i;

	if (!s)
		return;
	for (i = 0; i < s->nb; i++)
		qs_sim_backend_free(&s->be[i]);
	qs_sim_wl_free(&s->wl);
	qs_sim_acc_free(&s->acc);
	free(s->heap.ev);
	free(s->pool.req);
	free(s->prefix);
	free(s->oq);
	free(s);
}

const struct qs_sim_config *
qs_sim_config_of(const struct qs_sim *s)
{
	return &s->cfg;
}

double
qs_sim_arrival_rate(const struct qs_sim *s)
{
	return s->wl.rate;
}

void
qs_sim_capacity_estimates(const struct qs_sim *s, uint32_t b, double *sat_rps, double *slo_rps)
{
	*sat_rps = b < s->nb ? s->sat_rps[b] : 0;
	*slo_rps = b < s->nb ? s->slo_rps[b] : 0;
}

/* ---- reports -----------------------------------------------------------------------------------
 */

/* Report k of backend b, due at t_ns: lost on its way, or not sent (an outage). */
static bool
report_lost(const struct qs_sim *s, uint32_t b, uint64_t k, uint64_t t_ns)
{
	uint64_t h;

	const struct qs_sim_backend_cfg *bc = &s->cfg.backend[b];

	if (bc->down_at_s > 0 || bc->up_at_s > 0) {
		/* Agent outage: nothing is reported in [down_at_s, up_at_s). */
		double t = (double)t_ns * 1e-9;

		if (t >= bc->down_at_s && (bc->up_at_s <= bc->down_at_s || t < bc->up_at_s))
			return true;
	}
	if (s->cfg.report_loss <= 0.0)
		return false;
	h = qs_mix64(s->rep_drop_seed ^ qs_mix64(((uint64_t)b << 48) ^ k));
	return (double)(h >> 11) * 0x1.0p-53 < s->cfg.report_loss;
}

/*
 * Boundaries up to k_last are crossed at once: the state has been constant since the
 * backend's last event, which came before the first of them (rep_next_k), so every
 * decode token since the boundary before it falls in that first interval and none in
 * a later one. The agent reports the tokens of its own interval (agent.c
 * qs_agent_report), so a report after an idle interval says 0 whatever came before;
 * taking the tokens since the previous *taken* report instead (as this once did)
 * spread them over every interval the lazy sampling skipped, and the live
 * dataplane saw 0 where the simulator showed a rate in 236 of 1,200 candidate rows
 * of a q8 trace run (docs/cluster.md, "Which inputs differ").
 */
static void
cross_boundaries(struct qs_sim_backend *be, uint64_t k_last, uint64_t P)
{
	be->win_k = be->rep_next_k;
	be->win_tokens = be->decoded - be->dec_at_bnd;
	be->dec_at_bnd = be->decoded;
	be->rep_next_k = k_last + 1;
	be->rep_next_t = be->rep_phase + (k_last + 1) * P;
}

/* The agent's report of boundary k, sent at t: straight to the router, or, checked,
 * to rep_own first. */
static void
take_report(struct qs_sim *s, struct qs_sim_backend *be, uint64_t k, uint64_t t)
{
	const uint64_t P = s->cfg.report_interval_ns;
	bool transit = s->cfg.report_transit_ns != 0;
	struct qs_sim_report *r =
	    be->rep_checked ? &be->rep_own : (transit ? &be->rep_transit : &be->rep);

	r->t = t;
	if (transit) {
		/* the router takes it later (report_arrive); the newest one replaces an
		 * older one still on its way */
		be->rep_arrive_t = t + s->cfg.report_transit_ns;
	} else if (!be->rep_checked) {
		/* believed at once: the router's counts restart here */
		be->rep_valid = true;
		be->sent_at_rep = s->sent[be->id];
		be->sent_tokens_at_rep = s->sent_tokens[be->id];
	}
	r->waiting = be->n_waiting;
	r->running = be->n_running;
	r->kv_used = qs_sim_backend_kv_used(be);
	r->kv_total = qs_sim_backend_kv_total(be);
	r->decode_tps = k == be->win_k && be->win_tokens
			    ? (uint32_t)QS_RC_MIN(be->win_tokens * 1000000000ull / P, UINT32_MAX)
			    : 0;
	if (be->ttft_dirty) {
		/* record_first_token keeps the max unless the max itself left the ring. */
		be->ttft_max = qs_ttft_window_max(&be->ttft);
		be->ttft_dirty = false;
	}
	r->ttft_p99_us = be->ttft_max;
	r->prefill_pending =
	    be->prefill_pending > UINT32_MAX ? UINT32_MAX : (uint32_t)be->prefill_pending;
	r->received = be->received;
	r->received_tokens = be->received_tokens;
	r->completed = be->completed;
	(void)s;
}

/* ---- checked reports ----------------------------------------------------------------------- */

/* Forged reports a long quiet stretch may owe, at most: older ones are skipped (with
 * the genuine reports between them), the newest decide what the router holds. */
#define QS_SIM_FORGE_CATCHUP 64
/* Where the simulated reports come from: backend i at 10.0.0.(i + 1), the forger's
 * own host elsewhere. */
static const uint8_t forger_addr[4] = {10, 66, 0, 1};
/* The forger does not hold the backends' keys: it tags with its own. */
static const uint8_t forger_key[QS_SIPHASH_KEY_LEN] = {
    0xf0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77};

static void
checked_init(struct qs_sim *s, struct qs_sim_backend *be)
{
	const struct qs_sim_backend_cfg *bc = &s->cfg.backend[be->id];
	const struct qs_sim_forger *f = &s->cfg.forger;

	be->forge_next_t = UINT64_MAX;
	be->rep_checked =
	    bc->report_key.has_key || bc->report_source_any || f->kind != QS_SIM_FORGE_NONE;
	if (!be->rep_checked)
		return;
	memset(&be->rep_src, 0, sizeof(be->rep_src));
	be->rep_src.any = bc->report_source_any;
	be->rep_src.has_ip4 = 1;
	be->rep_src.ip4[0] = 10;
	be->rep_src.ip4[3] = (uint8_t)(be->id + 1);
	/* a keyed agent starts its sequence at its wall clock (report_auth.h) */
	be->rep_seq_base = bc->report_key.has_key ? 1ull << 60 : 1;
	be->rep_own = be->rep;
	if (f->kind != QS_SIM_FORGE_NONE && f->backend == be->id)
		be->forge_next_t = (uint64_t)(f->start_s * 1e9 + 0.5);
}

static void
encode_report(const struct qs_sim_backend *be, const struct qs_sim_report *r, uint64_t seq,
	      const uint8_t *key, uint8_t *msg)
{
	struct qs_qrp_hdr h;
	struct qs_qrp_report w;

	memset(&h, 0, sizeof(h));
	memset(&w, 0, sizeof(w));
	h.type = QS_QRP_T_REPORT;
	h.flags = key ? QS_QRP_F_AUTH : 0;
	h.request_id = seq;
	w.backend_id = (uint16_t)be->id;
	w.waiting = r->waiting;
	w.running = r->running;
	w.kv_used = r->kv_used;
	w.kv_total = r->kv_total;
	w.decode_tps = r->decode_tps;
	w.ttft_p99_us = r->ttft_p99_us;
	w.prefill_pending = r->prefill_pending;
	w.received = r->received;
	w.completed = r->completed;
	w.sent_ns = r->t;
	qs_qrp_write_hdr(msg, &h);
	qs_qrp_write_report(msg + QS_QRP_HDR_LEN, &w);
	if (key)
		qs_report_sign(key, msg);
}

/*
 * The router's side, as dp/core.c: a report msg from src (port QS_QRP_REPORT_PORT)
 * at now, believed after its source, its tag and its sequence number pass.
 * received_tokens rides beside it (the simulator's stand-in for the dataplane's
 * per-backend token counter, not a wire field).
 */
static void
offer_report(struct qs_sim *s, struct qs_sim_backend *be, const uint8_t *msg, const uint8_t *src,
	     uint64_t received_tokens, uint64_t now, bool forged)
{
	const struct qs_sim_backend_cfg *bc = &s->cfg.backend[be->id];
	struct qs_qrp_hdr h;
	struct qs_qrp_report w;
	struct qs_sim_report *r = &be->rep;
	const uint32_t len = QS_QRP_AUTH_MSG_LEN + QS_QRP_REPORT_TAG_LEN;

	s->rc_offered++;
	s->forged_sent += forged;
	/* encode_report wrote it: both parse (the wire tests cover malformed reports) */
	if (qs_qrp_parse_hdr(msg, len, &h) != QS_QRP_OK ||
	    qs_qrp_parse_report(msg + h.hdr_len, len - h.hdr_len, &w) != QS_QRP_OK)
		return;
	if (!qs_report_src_ok(&be->rep_src, 0, src, QS_QRP_REPORT_PORT)) {
		s->rc_source++;
		return;
	}
	if (!qs_report_auth_ok(&bc->report_key, h.flags, msg)) {
		s->rc_auth++;
		return;
	}
	switch (qs_report_seq_check(be->rep_valid, be->held_seq, h.request_id,
				    bc->report_key.has_key, r->t, now, report_max_age(&s->cfg))) {
	case QS_REPORT_SEQ_REPLAY:
		s->rc_replay++;
		return;
	case QS_REPORT_SEQ_OLD:
		s->rc_old++;
		return;
	default:
		break;
	}
	r->t = now;
	r->waiting = w.waiting;
	r->running = w.running;
	r->kv_used = w.kv_used;
	r->kv_total = w.kv_total;
	r->decode_tps = w.decode_tps;
	r->ttft_p99_us = w.ttft_p99_us;
	r->prefill_pending = w.prefill_pending;
	r->received = w.received;
	r->received_tokens = received_tokens;
	r->completed = w.completed;
	be->held_seq = h.request_id;
	be->rep_valid = true;
	be->sent_at_rep = s->sent[be->id];
	be->sent_tokens_at_rep = s->sent_tokens[be->id];
	s->rc_taken++;
	s->forged_taken += forged;
}

/* The agent's report of boundary k, sent (the forger may capture it). */
static void
send_genuine(struct qs_sim *s, struct qs_sim_backend *be, uint64_t k)
{
	const struct qs_sim_backend_cfg *bc = &s->cfg.backend[be->id];
	uint8_t msg[QS_QRP_AUTH_MSG_LEN + QS_QRP_REPORT_TAG_LEN];
	uint64_t t = be->rep_phase + k * s->cfg.report_interval_ns;

	take_report(s, be, k, t);
	encode_report(be, &be->rep_own, be->rep_seq_base + k,
		      bc->report_key.has_key ? bc->report_key.key : NULL, msg);
	if (be->forge_next_t != UINT64_MAX && !be->forge_captured &&
	    s->cfg.forger.kind == QS_SIM_FORGE_REPLAY) {
		memcpy(be->forge_msg, msg, sizeof(msg));
		be->forge_tokens = be->rep_own.received_tokens;
		be->forge_captured = true;
	}
	offer_report(s, be, msg, be->rep_src.ip4, be->rep_own.received_tokens, t, false);
}

/*
 * The newest boundary in lo..k_last whose report was delivered (*k), looking back at
 * most 64: the state has been constant since the last event, so among the crossed
 * boundaries only the newest delivered report matters. False: all lost.
 */
static bool
newest_delivered(const struct qs_sim *s, const struct qs_sim_backend *be, uint64_t lo,
		 uint64_t k_last, uint64_t *k)
{
	const uint64_t P = s->cfg.report_interval_ns;
	uint32_t tries;

	for (*k = k_last, tries = 0; tries < 64; (*k)--, tries++) {
		if (!be->rep_lossy || !report_lost(s, be->id, *k, be->rep_phase + *k * P))
			return true;
		if (*k == lo)
			return false;
	}
	return false;
}

/* The newest delivered genuine report among the boundaries up to until. */
static void
send_genuine_upto(struct qs_sim *s, struct qs_sim_backend *be, uint64_t until)
{
	uint64_t P = s->cfg.report_interval_ns, k_last, k, lo;

	if (until < be->rep_next_t)
		return;
	k_last = (until - be->rep_phase) / P;
	lo = be->rep_next_k;
	cross_boundaries(be, k_last, P);
	if (newest_delivered(s, be, lo, k_last, &k))
		send_genuine(s, be, k);
}

static void
send_forged(struct qs_sim *s, struct qs_sim_backend *be, uint64_t t)
{
	const struct qs_sim_backend_cfg *bc = &s->cfg.backend[be->id];
	uint8_t msg[QS_QRP_AUTH_MSG_LEN + QS_QRP_REPORT_TAG_LEN];
	struct qs_sim_report r;

	if (s->cfg.forger.kind == QS_SIM_FORGE_REPLAY) {
		if (be->forge_captured) /* nothing to replay before the first report */
			offer_report(s, be, be->forge_msg, be->rep_src.ip4, be->forge_tokens, t,
				     true);
		return;
	}
	/* "idle": nothing waiting, running or in flight (received far above sent) */
	memset(&r, 0, sizeof(r));
	r.t = t;
	r.kv_total = qs_sim_backend_kv_total(be);
	r.received = r.completed = 1ull << 62;
	encode_report(be, &r, 1000000000ull + be->forge_n++,
		      bc->report_key.has_key ? forger_key : NULL, msg);
	offer_report(s, be, msg,
		     s->cfg.forger.kind == QS_SIM_FORGE_SOURCE ? forger_addr : be->rep_src.ip4,
		     r.received, t, true);
}

static void
take_checked(struct qs_sim *s, struct qs_sim_backend *be, uint64_t t)
{
	uint64_t I = s->cfg.forger.interval_ns, owed;
	uint32_t n;

	if (be->forge_next_t <= t) {
		owed = (t - be->forge_next_t) / I;
		if (owed > QS_SIM_FORGE_CATCHUP) {
			be->forge_next_t += (owed - QS_SIM_FORGE_CATCHUP) * I;
			be->forge_n += owed - QS_SIM_FORGE_CATCHUP;
		}
	}
	/* in time order; a genuine report at the same instant goes first */
	for (n = 0; n <= QS_SIM_FORGE_CATCHUP && be->forge_next_t <= t; n++) {
		send_genuine_upto(s, be, be->forge_next_t);
		send_forged(s, be, be->forge_next_t);
		be->forge_next_t += I;
	}
	send_genuine_upto(s, be, t);
}

/* report_transit_ns: the report on its way reaches the router if its time has come,
 * and the router's sent counts restart then (what it sent meanwhile is forgotten). */
static void
report_arrive(struct qs_sim *s, struct qs_sim_backend *be, uint64_t t)
{
	if (t < be->rep_arrive_t)
		return;
	be->rep = be->rep_transit;
	be->rep.t = be->rep_arrive_t; /* its age counts from here, as the dataplane's */
	be->rep_valid = true;
	be->sent_at_rep = s->sent[be->id];
	be->sent_tokens_at_rep = s->sent_tokens[be->id];
	be->rep_arrive_t = UINT64_MAX;
}

static void reports_sample(struct qs_sim *s, struct qs_sim_backend *be, uint64_t t);

void
qs_sim_reports_take(struct qs_sim *s, struct qs_sim_backend *be, uint64_t t)
{
	if (be->rep_checked) {
		take_checked(s, be, t);
		return;
	}
	/* One on its way arrives before the agent's next is taken (transit < interval).
	 * Of the boundaries crossed since the last sync, the newest report sent by
	 * t - transit has arrived by t, and a newer one is on its way. */
	report_arrive(s, be, t);
	if (s->cfg.report_transit_ns && t >= s->cfg.report_transit_ns) {
		reports_sample(s, be, t - s->cfg.report_transit_ns);
		report_arrive(s, be, t);
	}
	reports_sample(s, be, t);
	report_arrive(s, be, t);
}

/* Boundaries a quiet backend's late reports are walked one by one, at most, before
 * the walk skips to the last QS_SIM_LATE_KEEP: their reports say the same, and only
 * the newest one sent reaches the router; skipping to the very last boundary would
 * lose the one before it whenever the last is late, and mask the backend. */
#define QS_SIM_LATE_WALK 64
#define QS_SIM_LATE_KEEP 16 /* boundaries before t walked after a skip (80 ms at 5 ms) */

/*
 * reports_sample with report_late: the agent sends report k at its boundary plus its
 * lateness; one late by an interval or more takes the place of those due
 * meanwhile and the agent's later boundaries follow it (agent/serve.c: the next is
 * due an interval after the late send), so boundaries are walked in order. A late
 * report says the state at its boundary, not at its send: the state is constant
 * between events, and what a late report would add is at most its lateness.
 */
static void
reports_sample_late(struct qs_sim *s, struct qs_sim_backend *be, uint64_t t)
{
	const uint64_t P = s->cfg.report_interval_ns;
	uint64_t k, late, taken_k = 0, taken_t = 0, m;
	bool taken = false, first = true;
	uint32_t n;

	for (n = 0; be->rep_next_t <= t && n < 4 * QS_SIM_LATE_WALK; n++) {
		k = be->rep_next_k;
		if (n == QS_SIM_LATE_WALK && be->rep_nom_t + (QS_SIM_LATE_KEEP + 1) * P < t) {
			/* a long quiet spell: on to the last boundaries before t, enough of
			 * them that the newest on time is among them */
			m = (t - be->rep_nom_t) / P - QS_SIM_LATE_KEEP;
			be->rep_nom_t += m * P;
			be->rep_next_k += m;
			be->rep_next_t = be->rep_nom_t + report_late_ns(s, be->id, be->rep_next_k);
			continue;
		}
		if (first) {
			/* every token since the last boundary falls in the first interval */
			be->win_k = k;
			be->win_tokens = be->decoded - be->dec_at_bnd;
			be->dec_at_bnd = be->decoded;
			first = false;
		}
		if (!be->rep_lossy || !report_lost(s, be->id, k, be->rep_next_t)) {
			taken = true;
			taken_k = k;
			taken_t = be->rep_next_t;
		}
		late = be->rep_next_t - be->rep_nom_t;
		be->rep_nom_t = (late >= P ? be->rep_next_t : be->rep_nom_t) + P;
		be->rep_next_k = k + 1;
		be->rep_next_t = be->rep_nom_t + report_late_ns(s, be->id, k + 1);
	}
	if (taken)
		take_report(s, be, taken_k, taken_t);
}

/* The agent's newest report up to t, taken (lazily: the state has been constant
 * since the backend's last event). */
static void
reports_sample(struct qs_sim *s, struct qs_sim_backend *be, uint64_t t)
{
	uint64_t P = s->cfg.report_interval_ns, k_last, k, lo;

	if (t < be->rep_next_t)
		return;
	if (s->cfg.report_late.n) {
		reports_sample_late(s, be, t);
		return;
	}
	/* One boundary crossed (the usual case) needs no division. */
	k_last = t - be->rep_next_t < P ? be->rep_next_k : (t - be->rep_phase) / P;
	lo = be->rep_next_k;
	cross_boundaries(be, k_last, P);
	if (newest_delivered(s, be, lo, k_last, &k))
		take_report(s, be, k, be->rep_phase + k * P);
}

/* ---- completion ------------------------------------------------------------------------------ */

bool
qs_sim_slo_met(const struct qs_sim_slo *slo, double ttft_ms, double tpot_ms, double e2e_ms)
{
	return (slo->ttft_ms <= 0 || ttft_ms <= slo->ttft_ms) &&
	       (slo->tpot_ms <= 0 || tpot_ms <= slo->tpot_ms) &&
	       (slo->e2e_ms <= 0 || e2e_ms <= slo->e2e_ms);
}

void
qs_sim_complete(struct qs_sim *s, struct qs_sim_backend *be, uint32_t ri)
{
	struct qs_sim_req *q = &s->pool.req[ri];
	const struct qs_sim_slo *slo = &s->cfg.slo[q->r.slo_class & 3];
	struct qs_sim_outcome o;
	double ttft_ms, tpot_ms, e2e_ms;

	memset(&o, 0, sizeof(o));
	o.request_id = q->r.id;
	o.decision_id = q->decision_id;
	o.backend = be->id;
	o.prompt_tokens = q->r.prompt_tokens;
	o.gen_tokens = q->r.max_new_tokens;
	o.tenant = q->r.tenant;
	o.slo_class = q->r.slo_class;
	o.class_index = q->r.class_index;
	o.preemptions = q->preemptions;
	o.prefix_cache_hit = q->cache_hit;
	o.arrival_ns = q->r.arrival_ns;
	o.ttft_ns = q->first_token_ns - q->r.arrival_ns;
	o.e2e_ns = s->now - q->r.arrival_ns;
	o.tpot_ns =
	    q->r.max_new_tokens > 1 ? (o.e2e_ns - o.ttft_ns) / (q->r.max_new_tokens - 1) : 0;
	ttft_ms = (double)o.ttft_ns * 1e-6;
	tpot_ms = (double)o.tpot_ns * 1e-6;
	e2e_ms = (double)o.e2e_ns * 1e-6;
	o.slo_met = qs_sim_slo_met(slo, ttft_ms, tpot_ms, e2e_ms);
	o.difficulty = q->r.difficulty;
	o.quality_known = true;
	o.quality = qs_sim_backend_quality(&s->cfg.backend[be->id], q->r.difficulty);
	o.quality_best = s->q_best[q->r.difficulty % QS_SIM_DIFFICULTIES];
	o.quality_ok = o.quality >= slo->quality_floor * o.quality_best;
	be->completed++;
	qs_sim_acc_complete(&s->acc, &o, s->now);
	if (s->cfg.on_outcome)
		s->cfg.on_outcome(s->cfg.outcome_ctx, &o);
	if (s->cfg.queue_outcomes) {
		if (s->oq_n == s->oq_cap) {
			uint32_t cap = s->oq_cap ? s->oq_cap * 2 : 256, i;
			struct qs_sim_outcome *nq = malloc((size_t)cap * sizeof(*nq));

			if (nq) {
				for (i = 0; i < s->oq_n; i++)
					nq[i] = s->oq[(s->oq_head + i) % s->oq_cap];
				free(s->oq);
				s->oq = nq;
				s->oq_cap = cap;
				s->oq_head = 0;
			}
		}
		if (s->oq_n < s->oq_cap) {
			s->oq[(s->oq_head + s->oq_n) % s->oq_cap] = o;
			s->oq_n++;
		}
	}
	qs_sim_pool_free(s, ri);
}

uint32_t
qs_sim_poll_outcomes(struct qs_sim *s, struct qs_sim_outcome *out, uint32_t cap)
{
	uint32_t n = 0;

	while (n < cap && s->oq_n) {
		out[n++] = s->oq[s->oq_head];
		s->oq_head = (s->oq_head + 1) % s->oq_cap;
		s->oq_n--;
	}
	return n;
}

/* ---- the pull API ---------------------------------------------------------------------------- */

void
qs_sim_view(const struct qs_sim_view_backend *vb, uint32_t nb, uint64_t now_ns,
	    uint64_t report_max_age_ns, bool mask_kv_full, uint32_t prefix_hit, bool features,
	    struct qs_sim_decision *d)
{
	/* 0 turns stale masking off: every report (the zero one before the first
	 * included) is fresh, as the simulator always had it without masks */
	uint64_t max_age = report_max_age_ns ? report_max_age_ns : UINT64_MAX, heard = 0;
	uint32_t i;

	d->n_backends = nb;
	d->eligible = 0;
	d->fallback = 0;
	for (i = 0; i < nb; i++) {
		struct qs_feat_backend *fb = &d->backend[i];
		uint32_t fl = qs_rview_backend(&vb[i].rep,
					       qs_rview_fresh(vb[i].valid || !report_max_age_ns,
							      vb[i].last_ns, now_ns, max_age),
					       fb);

		fb->sent_reqs =
		    vb[i].sent_reqs > UINT32_MAX ? UINT32_MAX : (uint32_t)vb[i].sent_reqs;
		fb->sent_tokens =
		    vb[i].sent_tokens > UINT32_MAX ? UINT32_MAX : (uint32_t)vb[i].sent_tokens;
		fb->capacity_class = vb[i].capacity_class;
		fb->prefix_hit = prefix_hit == i;
		if (!mask_kv_full)
			fl &= ~QS_RVIEW_KV_FULL;
		/* DESIGN 3.1: stale (agent down), draining and full backends never win */
		if (vb[i].drained)
			continue;
		if (qs_rview_fallback(fl))
			d->fallback |= 1ull << i;
		if (qs_rview_heard(vb[i].valid || !report_max_age_ns, vb[i].last_ns, now_ns,
				   report_max_age_ns))
			heard |= 1ull << i;
		if (qs_rview_candidate(fl))
			d->eligible |= 1ull << i;
	}
	d->fallback = qs_rview_fallback_set(heard, d->fallback);
	/* over the eligible backends only, as the dataplane (issue 19) */
	qs_rview_global(d->backend, nb, d->eligible, &d->global);
	if (features)
		for (i = 0; i < nb; i++)
			qs_feat_router_v1(&d->freq, &d->backend[i], &d->global, d->features[i]);
}

/*
 * Cascade (docs/sim.md, "Model variants"): per difficulty the best quality any
 * backend reaches; per (SLO class, difficulty) the backends whose quality is at
 * least the class's floor times that best -- never empty, the best one qualifies;
 * and the backends of the lowest and of the highest mean quality.
 */
static void
quality_masks(struct qs_sim *s)
{
	/* qs_sim_new bounds nb; the clamp tells the compiler so (-Warray-bounds). */
	const uint32_t nb = s->nb < QS_SIM_MAX_BACKENDS ? s->nb : QS_SIM_MAX_BACKENDS;
	double mean[QS_SIM_MAX_BACKENDS], q[QS_SIM_MAX_BACKENDS][QS_DIFFICULTIES],
	    floor[QS_QUALITY_SLO], lo = INFINITY, hi = -INFINITY;
	uint32_t i, c, d;

	for (i = 0; i < nb; i++)
		for (d = 0; d < QS_DIFFICULTIES; d++)
			q[i][d] = qs_sim_backend_quality(&s->cfg.backend[i], d);
	for (c = 0; c < QS_QUALITY_SLO; c++)
		floor[c] = s->cfg.slo[c].quality_floor;
	/* the dataplanes' definition (quality.h), so a floor masks the same backends */
	qs_quality_admissible((const double(*)[QS_DIFFICULTIES])q, nb, floor,
			      s->cfg.quality_unmasked, s->q_best, s->q_ok);
	for (i = 0; i < nb; i++) {
		mean[i] = 0;
		for (d = 0; d < QS_DIFFICULTIES; d++)
			mean[i] += q[i][d];
		lo = fmin(lo, mean[i]);
		hi = fmax(hi, mean[i]);
	}
	s->v_small = s->v_large = 0;
	for (i = 0; i < nb; i++) {
		s->v_small |= (uint64_t)(mean[i] == lo) << i;
		s->v_large |= (uint64_t)(mean[i] == hi) << i;
	}
}

static void
build_view(struct qs_sim *s, struct qs_sim_decision *d)
{
	const struct qs_sim_req *q = &s->pool.req[s->pending_req];
	uint32_t i,
	    hit = qs_prefix_lookup(s->prefix, q->r.prefix_hash, s->now, s->cfg.prefix_max_age_ns);
	double now_s = (double)s->now * 1e-9;
	struct qs_sim_view_backend *vb = s->vb;

	d->done = false;
	d->decision_id = s->decisions;
	d->now_ns = s->now;
	d->req = q->r;
	d->freq.prompt_tokens = q->r.prompt_tokens;
	d->freq.max_new_tokens = q->r.max_new_tokens;
	d->freq.priority = q->r.priority;
	d->freq.slo_class = q->r.slo_class;
	d->capacity = s->capacity;
	for (i = 0; i < s->nb; i++) {
		struct qs_sim_backend *be = &s->be[i];
		const double drain_at = s->cfg.backend[i].drain_at_s;

		qs_sim_reports_sync(s, be, s->now);
		vb[i].rep.waiting = be->rep.waiting;
		vb[i].rep.running = be->rep.running;
		vb[i].rep.kv_used = be->rep.kv_used;
		vb[i].rep.kv_total = be->rep.kv_total;
		vb[i].rep.prefill_pending = be->rep.prefill_pending;
		vb[i].rep.decode_tps = be->rep.decode_tps;
		vb[i].rep.ttft_p99_us = be->rep.ttft_p99_us;
		vb[i].rep.flags = 0; /* simulated agents never drain themselves */
		vb[i].last_ns = be->rep.t;
		vb[i].valid = be->rep_valid;
		/* a backend below the request's quality floor is no candidate, as a
		 * draining one: the router never sees it, the fallback neither */
		vb[i].drained = (drain_at > 0 && now_s >= drain_at) ||
				!(s->q_ok[q->r.slo_class % QS_SIM_SLO_CLASSES]
					 [q->r.difficulty % QS_SIM_DIFFICULTIES] >>
				      i &
				  1);
		/* what was sent since the report was taken, as the dataplane counts it (it
		 * resets its per-worker counts when a backend's report generation changes;
		 * docs/features.md rows 11-12). Sent minus the report's received, counted
		 * here before, is the same while requests arrive the instant they are sent,
		 * but not under a forged report claiming a huge received count. */
		vb[i].sent_reqs = s->sent[i] - be->sent_at_rep;
		vb[i].sent_tokens = s->sent_tokens[i] - be->sent_tokens_at_rep;
		vb[i].capacity_class = s->capacity_class[i];
	}
	qs_sim_view(vb, s->nb, s->now, report_max_age(&s->cfg), s->cfg.mask_kv_full, hit,
		    s->build_features, d);
	d->variant_small = s->v_small;
	d->variant_large = s->v_large;
	d->admissible =
	    s->q_ok[q->r.slo_class % QS_SIM_SLO_CLASSES][q->r.difficulty % QS_SIM_DIFFICULTIES];
	s->pending_admissible = d->admissible;
	if (!d->eligible)
		s->all_masked++;
	s->pending_eligible = d->eligible;
}

void
qs_sim_set_features(struct qs_sim *s, bool on)
{
	s->build_features = on;
}

int
qs_sim_next_decision(struct qs_sim *s, struct qs_sim_decision *d, char *msg, size_t msglen)
{
	struct qs_sim_event ev;
	int rc;

	if (s->pending)
		return qs_fail(msg, msglen, QS_E_ARG,
			       "decision %llu is still waiting for qs_sim_route",
			       (unsigned long long)s->decisions);
	while (qs_sim_heap_next(&s->heap, &ev)) {
		s->now = ev.t;
		s->events++;
		switch (ev.type) {
		case QS_EV_ARRIVAL:
			s->pending = true;
			s->pending_req = ev.a;
			qs_sim_acc_arrive(&s->acc, s->now);
			build_view(s, d);
			return QS_OK;
		case QS_EV_ITER_END:
			rc = qs_sim_backend_iter_end(s, &s->be[ev.a]);
			break;
		case QS_EV_CANCEL:
			rc =
			    qs_sim_backend_cancel(s, &s->be[s->pool.req[ev.a].backend], ev.a, ev.b);
			break;
		default:
			rc = qs_sim_backend_tok_done(s, &s->be[ev.a], ev.b);
			break;
		}
		if (rc != QS_OK)
			return qs_fail(msg, msglen, rc, "out of memory in the event loop");
	}
	memset(d, 0, offsetof(struct qs_sim_decision, backend));
	d->done = true;
	d->now_ns = s->now;
	return QS_OK;
}

/* An impatient client ([class] abandon_ms) will cancel at arrival + abandon_ms unless
 * its first token has come by then (qs_sim_backend_cancel decides). */
static int
maybe_abandon(struct qs_sim *s, uint32_t ri)
{
	const struct qs_sim_req *q = &s->pool.req[ri];
	const struct qs_sim_class *k = &s->cfg.wl.cls[q->r.class_index];
	uint64_t at, h;

	if (!(k->abandon_ms > 0) || q->first_done || s->cfg.wl.n_classes == 0)
		return QS_OK;
	h = qs_mix64(s->abandon_seed ^ qs_mix64(q->r.id));
	if ((double)(h >> 11) * 0x1.0p-53 >= k->abandon_frac)
		return QS_OK;
	at = q->r.arrival_ns + (uint64_t)(k->abandon_ms * 1e6 + 0.5);
	return qs_sim_heap_push(&s->heap, at > s->now ? at : s->now, QS_EV_CANCEL, ri,
				(uint32_t)q->r.id);
}

int
qs_sim_route(struct qs_sim *s, uint32_t b, char *msg, size_t msglen)
{
	struct qs_sim_req *q;
	int rc;

	if (!s->pending)
		return qs_fail(msg, msglen, QS_E_ARG, "no decision is pending");
	if (b >= s->nb)
		return qs_fail(msg, msglen, QS_E_ARG, "backend %u of %u", b, s->nb);
	if (s->pending_eligible && !(s->pending_eligible >> b & 1))
		return qs_fail(msg, msglen, QS_E_ARG, "backend %u is masked in decision %llu", b,
			       (unsigned long long)s->decisions);
	if (!(s->pending_admissible >> b & 1))
		return qs_fail(msg, msglen, QS_E_ARG,
			       "backend %u is below the request's quality floor in decision %llu",
			       b, (unsigned long long)s->decisions);
	q = &s->pool.req[s->pending_req];
	q->decision_id = s->decisions++;
	q->backend = b;
	s->pending = false;
	s->sent[b]++;
	s->sent_tokens[b] += q->r.prompt_tokens;
	qs_prefix_update(s->prefix, q->r.prefix_hash, b, s->now);
	qs_sim_reports_sync(s, &s->be[b], s->now);
	rc = qs_sim_backend_enqueue(s, &s->be[b], s->pending_req);
	if (rc == QS_OK)
		rc = maybe_abandon(s, s->pending_req);
	if (rc != QS_OK)
		return qs_fail(msg, msglen, rc, "out of memory in backend %u", b);
	return push_next_arrival(s, msg, msglen);
}
