/*
 * workload.c - request generators: Poisson, gamma (given CV), bursty (a two-phase
 * Markov-modulated Poisson process), diurnal (sinusoidal rate, by thinning) and
 * trace replay, with request classes that carry lengths, tenant, priority, SLO
 * class and a shared-prefix group. Adversarial multi-tenant load is a bursty
 * process whose mega-prompt class is only drawn in the burst phase.
 *
 * Streams: arrivals, lengths, class choice and phase changes each have their own
 * random stream, and none depends on routing, so every router sees the same
 * arrivals for a seed. A trace is read twice: a first streamed pass measures the
 * window (rows, span, mean lengths) for time scaling, the second replays it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

static double
class_mean(const struct qs_sim_len *l)
{
	switch (l->dist) {
	case QS_SIM_DIST_UNIFORM:
		return 0.5 * ((double)l->min + (double)l->max);
	default:
		return l->mean;
	}
}

/* The lognormal's parameters, computed once per class and length. */
static void
lognormal_params(const struct qs_sim_len *l, double *mu, double *sigma)
{
	double s2 = log1p(l->cv * l->cv);

	*mu = log(l->mean) - 0.5 * s2;
	*sigma = sqrt(s2);
}

static uint32_t
draw_len(uint64_t *rng, const struct qs_sim_len *l, double mu, double sigma)
{
	double v;
	uint32_t lo = l->min ? l->min : 1, hi = l->max ? l->max : 1000000;

	switch (l->dist) {
	case QS_SIM_DIST_EXP:
		v = ceil(qs_sim_rng_exp(rng, l->mean));
		break;
	case QS_SIM_DIST_LOGNORMAL:
		v = round(exp(mu + sigma * qs_sim_rng_normal(rng)));
		break;
	case QS_SIM_DIST_UNIFORM:
		v = (double)lo + (double)(qs_splitmix64(rng) % ((uint64_t)hi - lo + 1));
		break;
	default:
		v = round(l->mean);
		break;
	}
	if (!(v >= lo))
		v = lo;
	if (v > hi)
		v = hi;
	return (uint32_t)v;
}

/* Thinning: one draw per row inside the window, in file order, on both passes. */
static bool
keep_row(struct qs_sim_wl *w)
{
	double p = w->cfg->thin;

	return !(p > 0 && p < 1) || qs_sim_rng_u01(&w->rng_thin) < p;
}

static int
trace_prepass(struct qs_sim_wl *w, char *msg, size_t msglen)
{
	struct qs_sim_trace_row row;
	uint64_t first = 0, lo = 0, hi = 0, last = 0, n = 0;
	double sp = 0, sg = 0, jitter_s = 0;
	bool eof, have_first = false;
	int rc;

	/* The seed's window: its offset first, then the rows it keeps. */
	if (w->cfg->window_jitter_s > 0)
		jitter_s = qs_sim_rng_u01(&w->rng_thin) * w->cfg->window_jitter_s;
	w->rng_thin0 = w->rng_thin;

	/* Bounded: the capacity estimates replay these lengths, not the file. */
	w->len_sample = malloc(QS_SIM_LEN_SAMPLE * sizeof(*w->len_sample));
	w->len_sample_owned = true;
	if (!w->len_sample)
		return qs_fail(msg, msglen, QS_E_NOMEM, "out of memory");
	for (;;) {
		rc = qs_sim_trace_next(w->trace, &row, &eof, msg, msglen);
		if (rc != QS_OK)
			return rc;
		if (eof)
			break;
		if (!have_first) {
			first = row.t_ns;
			have_first = true;
			w->tr_w0 =
			    first + (uint64_t)llround((w->cfg->window_start_s + jitter_s) * 1e9);
			w->tr_end = w->cfg->window_s > 0
					? w->tr_w0 + (uint64_t)llround(w->cfg->window_s * 1e9)
					: UINT64_MAX;
		}
		if (row.t_ns < last)
			row.t_ns = last; /* out-of-order stamps replay in file order */
		last = row.t_ns;
		if (row.t_ns < w->tr_w0 || row.t_ns >= w->tr_end || !keep_row(w))
			continue;
		if (n == 0)
			lo = row.t_ns;
		hi = row.t_ns;
		if (n < QS_SIM_LEN_SAMPLE) {
			struct qs_sim_sample_row *sr = &w->len_sample[n];

			sr->t_ns = row.t_ns;
			sr->prompt = row.context_tokens ? row.context_tokens : 1;
			sr->gen = row.generated_tokens ? row.generated_tokens : 1;
			w->n_len_sample = (uint32_t)n + 1;
		}
		n++;
		sp += row.context_tokens ? row.context_tokens : 1;
		sg += row.generated_tokens ? row.generated_tokens : 1;
	}
	if (n == 0)
		return qs_fail(msg, msglen, QS_E_VALUE, "%s: no rows in the trace window",
			       w->cfg->trace);
	w->tr_rows = n;
	w->tr_mean_prompt = sp / (double)n;
	w->tr_mean_gen = sg / (double)n;
	w->tr_t0 = lo;
	w->rng_thin = w->rng_thin0; /* the run draws the same rows again */
	/* Natural rate over the window; replay at it unless a rate or load is set. */
	w->tr_natural = hi > lo ? (double)(n - 1) / ((double)(hi - lo) * 1e-9) : 1.0;
	w->rate = w->tr_natural;
	w->tr_scale = 1.0;
	return qs_sim_trace_rewind(w->trace, msg, msglen);
}

/* A probe's trace: the parent's sample rows stand for the window. */
static void
sample_prepass(struct qs_sim_wl *w, const struct qs_sim_sample_row *sample, uint32_t n)
{
	double sp = 0, sg = 0;
	uint32_t i;

	w->len_sample = (struct qs_sim_sample_row *)sample;
	w->n_len_sample = n;
	w->len_sample_owned = false;
	for (i = 0; i < n; i++) {
		sp += sample[i].prompt;
		sg += sample[i].gen;
	}
	w->tr_rows = n;
	w->tr_mean_prompt = sp / n;
	w->tr_mean_gen = sg / n;
	w->tr_t0 = sample[0].t_ns;
	w->tr_end = UINT64_MAX;
	w->tr_natural =
	    sample[n - 1].t_ns > sample[0].t_ns
		? (double)(n - 1) / ((double)(sample[n - 1].t_ns - sample[0].t_ns) * 1e-9)
		: 1.0;
	w->rate = w->tr_natural;
	w->tr_scale = 1.0;
}

int
qs_sim_wl_init(struct qs_sim_wl *w, const struct qs_sim_config *cfg, uint64_t seed, char *msg,
	       size_t msglen)
{
	return qs_sim_wl_init_probe(w, cfg, seed, NULL, 0, msg, msglen);
}

int
qs_sim_wl_init_probe(struct qs_sim_wl *w, const struct qs_sim_config *cfg, uint64_t seed,
		     const struct qs_sim_sample_row *sample, uint32_t n_sample, char *msg,
		     size_t msglen)
{
	const struct qs_sim_workload *c = &cfg->wl;
	uint32_t i;
	int rc;

	memset(w, 0, sizeof(*w));
	w->cfg = c;
	w->rng_arr = qs_sim_stream(seed, QS_STREAM_ARRIVALS);
	w->rng_len = qs_sim_stream(seed, QS_STREAM_LENGTHS);
	w->rng_cls = qs_sim_stream(seed, QS_STREAM_CLASSES);
	w->rng_phase = qs_sim_stream(seed, QS_STREAM_PHASES);
	w->rng_thin = qs_sim_stream(seed, QS_STREAM_TRACE);
	if (c->n_classes > QS_SIM_MAX_CLASSES)
		return qs_fail(msg, msglen, QS_E_VALUE, "%s: too many classes", cfg->name);
	for (i = 0; i < c->n_classes; i++) {
		lognormal_params(&c->cls[i].prompt, &w->ln_mu[i][0], &w->ln_sigma[i][0]);
		lognormal_params(&c->cls[i].gen, &w->ln_mu[i][1], &w->ln_sigma[i][1]);
		if (!(c->cls[i].weight >= 0))
			return qs_fail(msg, msglen, QS_E_VALUE, "class %s: weight < 0",
				       c->cls[i].name);
		if (c->arrival != QS_SIM_ARR_TRACE &&
		    ((c->cls[i].prompt.dist == QS_SIM_DIST_LOGNORMAL &&
		      !(c->cls[i].prompt.mean > 0)) ||
		     (c->cls[i].gen.dist == QS_SIM_DIST_LOGNORMAL && !(c->cls[i].gen.mean > 0))))
			return qs_fail(msg, msglen, QS_E_VALUE,
				       "class %s: lognormal lengths need mean > 0", c->cls[i].name);
	}
	if (c->arrival != QS_SIM_ARR_TRACE && c->n_classes == 0)
		return qs_fail(msg, msglen, QS_E_VALUE,
			       "%s: a synthetic workload needs at least one class", cfg->name);
	w->rate = c->rate;
	if (c->arrival == QS_SIM_ARR_TRACE && sample && n_sample) {
		sample_prepass(w, sample, n_sample);
		if (c->rate > 0)
			w->rate = c->rate;
	} else if (c->arrival == QS_SIM_ARR_TRACE) {
		w->rate = 0;
		rc = qs_sim_trace_open(c->trace, &w->trace, msg, msglen);
		if (rc != QS_OK)
			return rc;
		rc = trace_prepass(w, msg, msglen);
		if (rc != QS_OK)
			return rc;
		if (c->rate > 0)
			w->rate = c->rate;
	} else if (c->arrival == QS_SIM_ARR_GAMMA && !(c->cv > 0)) {
		return qs_fail(msg, msglen, QS_E_VALUE, "%s: gamma arrivals need cv > 0",
			       cfg->name);
	} else if (c->arrival == QS_SIM_ARR_BURSTY &&
		   !(c->burst_factor >= 1 && c->burst_mean_s > 0 && c->quiet_mean_s > 0)) {
		return qs_fail(msg, msglen, QS_E_VALUE,
			       "%s: bursty arrivals need burst_factor >= 1 and phase means > 0",
			       cfg->name);
	} else if (c->arrival == QS_SIM_ARR_DIURNAL &&
		   !(c->amplitude >= 0 && c->amplitude <= 1 && c->period_s > 0)) {
		return qs_fail(msg, msglen, QS_E_VALUE,
			       "%s: diurnal arrivals need 0 <= amplitude <= 1, period_s > 0",
			       cfg->name);
	}
	if (c->requests == 0 && !(c->duration_s > 0) && c->arrival != QS_SIM_ARR_TRACE)
		return qs_fail(msg, msglen, QS_E_VALUE,
			       "%s: a synthetic workload needs requests or duration_s", cfg->name);
	if (!(w->rate > 0) && !(c->load > 0))
		return qs_fail(msg, msglen, QS_E_VALUE, "%s: workload needs rate > 0 or load > 0",
			       cfg->name);
	if (w->rate > 0)
		qs_sim_wl_set_rate(w, w->rate);
	return QS_OK;
}

void
qs_sim_wl_free(struct qs_sim_wl *w)
{
	qs_sim_trace_close(w->trace);
	w->trace = NULL;
	if (w->len_sample_owned)
		free(w->len_sample);
	w->len_sample = NULL;
}

void
qs_sim_wl_mean_lengths(const struct qs_sim_wl *w, double *prompt, double *gen)
{
	const struct qs_sim_workload *c = w->cfg;
	double sw = 0, sp = 0, sg = 0;
	uint32_t i;

	if (c->arrival == QS_SIM_ARR_TRACE) {
		*prompt = w->tr_mean_prompt;
		*gen = w->tr_mean_gen;
		return;
	}
	for (i = 0; i < c->n_classes; i++) {
		double wt = c->cls[i].weight;

		/* Burst-only classes arrive a burst share of the time. */
		if (c->arrival == QS_SIM_ARR_BURSTY && c->cls[i].when != QS_SIM_WHEN_ALWAYS) {
			double tb = c->burst_mean_s * c->burst_factor, tq = c->quiet_mean_s;
			double share =
			    c->cls[i].when == QS_SIM_WHEN_BURST ? tb / (tb + tq) : tq / (tb + tq);
			wt *= share;
		}
		sw += wt;
		sp += wt * class_mean(&c->cls[i].prompt);
		sg += wt * class_mean(&c->cls[i].gen);
	}
	*prompt = sw > 0 ? sp / sw : 1;
	*gen = sw > 0 ? sg / sw : 1;
}

void
qs_sim_wl_set_rate(struct qs_sim_wl *w, double rate)
{
	const struct qs_sim_workload *c = w->cfg;

	if (c->arrival == QS_SIM_ARR_TRACE) {
		if (rate > 0) {
			w->tr_scale = w->tr_natural / rate;
			w->rate = rate;
		}
		return;
	}
	w->rate = rate;
	if (c->arrival == QS_SIM_ARR_BURSTY) {
		double tb = c->burst_mean_s, tq = c->quiet_mean_s, f = c->burst_factor;

		w->quiet_rate = rate * (tq + tb) / (tq + f * tb);
		w->burst_rate = f * w->quiet_rate;
	}
}

static double
next_gap(struct qs_sim_wl *w)
{
	const struct qs_sim_workload *c = w->cfg;

	switch (c->arrival) {
	case QS_SIM_ARR_GAMMA: {
		double shape = 1.0 / (c->cv * c->cv);

		return qs_sim_rng_gamma(&w->rng_arr, shape, 1.0 / (w->rate * shape));
	}
	case QS_SIM_ARR_BURSTY: {
		double t = w->t_s;

		if (w->phase_end_s == 0) {
			w->burst = false;
			w->phase_end_s = qs_sim_rng_exp(&w->rng_phase, c->quiet_mean_s);
		}
		for (;;) {
			double r = w->burst ? w->burst_rate : w->quiet_rate;
			double dt = qs_sim_rng_exp(&w->rng_arr, 1.0 / r);

			if (t + dt <= w->phase_end_s)
				return t + dt - w->t_s;
			/* Memoryless: restart the draw at the phase change. */
			t = w->phase_end_s;
			w->burst = !w->burst;
			w->phase_end_s =
			    t + qs_sim_rng_exp(&w->rng_phase,
					       w->burst ? c->burst_mean_s : c->quiet_mean_s);
		}
	}
	case QS_SIM_ARR_DIURNAL: {
		double rmax = w->rate * (1.0 + c->amplitude), t = w->t_s;

		for (;;) {
			double r;

			t += qs_sim_rng_exp(&w->rng_arr, 1.0 / rmax);
			r = w->rate *
			    (1.0 + c->amplitude * sin(6.283185307179586 * t / c->period_s));
			if (qs_sim_rng_u01(&w->rng_arr) * rmax < r)
				return t - w->t_s;
		}
	}
	default:
		return qs_sim_rng_exp(&w->rng_arr, 1.0 / w->rate);
	}
}

static uint32_t
pick_class(struct qs_sim_wl *w)
{
	const struct qs_sim_workload *c = w->cfg;
	double tot = 0, u;
	uint32_t i, last = 0;

	if (c->n_classes <= 1)
		return 0;
	for (i = 0; i < c->n_classes; i++) {
		const struct qs_sim_class *k = &c->cls[i];
		bool ok =
		    k->when == QS_SIM_WHEN_ALWAYS ||
		    (c->arrival == QS_SIM_ARR_BURSTY && (k->when == QS_SIM_WHEN_BURST) == w->burst);

		w->cls_cum[i] = tot += ok ? k->weight : 0;
	}
	u = qs_sim_rng_u01(&w->rng_cls) * tot;
	for (i = 0; i < c->n_classes; i++) {
		if (w->cls_cum[i] > (i ? w->cls_cum[i - 1] : 0))
			last = i;
		if (u < w->cls_cum[i])
			return i;
	}
	return last;
}

int
qs_sim_wl_next(struct qs_sim_wl *w, struct qs_sim_request *r, bool *have, char *msg, size_t msglen)
{
	const struct qs_sim_workload *c = w->cfg;
	const struct qs_sim_class *k = NULL;
	uint32_t ci;
	uint64_t t_ns;

	*have = false;
	if (w->done || (c->requests && w->emitted >= c->requests)) {
		w->done = true;
		return QS_OK;
	}
	memset(r, 0, sizeof(*r));
	if (c->arrival == QS_SIM_ARR_TRACE) {
		struct qs_sim_trace_row row;
		bool eof;
		int rc;

		if (!w->trace) {
			/* A probe replays its parent's sample rows. */
			const struct qs_sim_sample_row *sr;

			if (w->emitted >= w->n_len_sample) {
				w->done = true;
				return QS_OK;
			}
			sr = &w->len_sample[w->emitted];
			row.t_ns = sr->t_ns;
			row.context_tokens = sr->prompt;
			row.generated_tokens = sr->gen;
		}
		while (w->trace) {
			rc = qs_sim_trace_next(w->trace, &row, &eof, msg, msglen);
			if (rc != QS_OK)
				return rc;
			if (eof || row.t_ns >= w->tr_end) {
				w->done = true;
				return QS_OK;
			}
			if (row.t_ns < w->tr_last_ns)
				row.t_ns = w->tr_last_ns;
			w->tr_last_ns = row.t_ns;
			if (row.t_ns >= w->tr_w0 && keep_row(w))
				break;
		}
		t_ns = (uint64_t)llround((double)(row.t_ns - w->tr_t0) * w->tr_scale);
		r->prompt_tokens = row.context_tokens ? row.context_tokens : 1;
		r->max_new_tokens = row.generated_tokens ? row.generated_tokens : 1;
		ci = pick_class(w);
	} else {
		w->t_s += next_gap(w);
		t_ns = (uint64_t)llround(w->t_s * 1e9);
		ci = pick_class(w);
		k = &c->cls[ci];
		if (w->n_len_sample) {
			/* A saturation probe of a trace: its lengths, all at once. */
			const struct qs_sim_sample_row *l =
			    &w->len_sample[w->emitted % w->n_len_sample];

			r->prompt_tokens = l->prompt;
			r->max_new_tokens = l->gen;
		} else {
			r->prompt_tokens =
			    draw_len(&w->rng_len, &k->prompt, w->ln_mu[ci][0], w->ln_sigma[ci][0]);
			r->max_new_tokens =
			    draw_len(&w->rng_len, &k->gen, w->ln_mu[ci][1], w->ln_sigma[ci][1]);
		}
	}
	if (c->duration_s > 0 && (double)t_ns * 1e-9 > c->duration_s) {
		w->done = true;
		return QS_OK;
	}
	if (c->n_classes) {
		k = &c->cls[ci];
		r->class_index = (uint8_t)ci;
		r->difficulty = k->difficulty;
		r->slo_class = k->slo_class;
		r->priority = k->priority;
		r->tenant = k->tenant;
		if (k->prefix_groups) {
			uint64_t g = qs_splitmix64(&w->rng_cls) % k->prefix_groups;

			r->prefix_hash = (uint32_t)qs_mix64(((uint64_t)ci << 32) | g) | 1u;
			if (r->prompt_tokens <= k->prefix_tokens)
				r->prompt_tokens = k->prefix_tokens + 1;
		}
	}
	r->id = w->next_id++;
	r->arrival_ns = t_ns;
	w->emitted++;
	*have = true;
	return QS_OK;
}
