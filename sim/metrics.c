/*
 * metrics.c - per-run accounting: latency histograms, SLO attainment per class,
 * goodput, throughput, utilisation, preemptions and the Little's-law check.
 *
 * Latencies go into log-linear histograms (128 sub-buckets per power of two, so a
 * quantile is within 0.4% of the exact sample quantile), which keeps memory fixed
 * however long the run; means are exact sums. The time integral of the number of
 * requests in the system is kept separately from the sum of their sojourn times,
 * so L = lambda * W checks two independent pieces of bookkeeping.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

static uint32_t
bucket_of(uint64_t v)
{
	uint32_t e;

	if (v < (1u << QS_SIM_HIST_SUB))
		return (uint32_t)v;
	e = 63u - (uint32_t)__builtin_clzll(v);
	return ((e - QS_SIM_HIST_SUB + 1) << QS_SIM_HIST_SUB) |
	       (uint32_t)((v >> (e - QS_SIM_HIST_SUB)) & ((1u << QS_SIM_HIST_SUB) - 1));
}

/* Midpoint of a bucket, in the histogram's unit (ns). */
static double
bucket_mid(uint32_t b)
{
	uint32_t hi = b >> QS_SIM_HIST_SUB, lo = b & ((1u << QS_SIM_HIST_SUB) - 1);
	uint32_t e;
	double base, width;

	if (hi == 0)
		return (double)lo;
	e = hi + QS_SIM_HIST_SUB - 1;
	width = ldexp(1.0, (int)(e - QS_SIM_HIST_SUB));
	base = ldexp(1.0, (int)e) + (double)lo * width;
	return base + 0.5 * width;
}

int
qs_sim_acc_init(struct qs_sim_acc *a)
{
	uint32_t i;

	memset(a, 0, sizeof(*a));
	for (i = 0; i < QS_SIM_M__COUNT; i++) {
		a->h[i].count = calloc(QS_SIM_HIST_BUCKETS, sizeof(uint32_t));
		if (!a->h[i].count)
			return QS_E_NOMEM;
	}
	a->first_arrival = UINT64_MAX;
	return QS_OK;
}

void
qs_sim_acc_free(struct qs_sim_acc *a)
{
	uint32_t i;

	for (i = 0; i < QS_SIM_M__COUNT; i++)
		free(a->h[i].count);
	for (i = 0; i <= QS_SIM_TENANTS; i++)
		free(a->ten[i].ttft.count);
}

/* Tenant id's row: its own among the first QS_SIM_TENANTS seen, else the others'. A
 * histogram that cannot be allocated leaves that row without a p99 (0), nothing else. */
static struct qs_sim_tenant_acc *
tenant_row(struct qs_sim_acc *a, uint16_t id)
{
	struct qs_sim_tenant_acc *r;
	uint32_t i;

	for (i = 0; i < a->n_ten; i++)
		if (a->ten[i].id == id)
			return &a->ten[i];
	r = &a->ten[a->n_ten < QS_SIM_TENANTS ? a->n_ten++ : QS_SIM_TENANTS];
	if (!r->ttft.count) {
		r->id = id;
		r->ttft.count = calloc(QS_SIM_HIST_BUCKETS, sizeof(uint32_t));
	}
	return r;
}

static void
area_to(struct qs_sim_acc *a, uint64_t t)
{
	a->area += (double)a->in_system * (double)(t - a->area_t);
	a->area_t = t;
}

void
qs_sim_acc_arrive(struct qs_sim_acc *a, uint64_t t)
{
	if (a->first_arrival == UINT64_MAX) {
		a->first_arrival = t;
		a->area_t = t;
	}
	area_to(a, t);
	a->in_system++;
	a->arrived++;
}

static void
hist_add(struct qs_sim_hist *h, uint64_t v)
{
	h->count[bucket_of(v)]++;
	h->n++;
	h->sum += (double)v;
}

void
qs_sim_acc_complete(struct qs_sim_acc *a, const struct qs_sim_outcome *o, uint64_t t)
{
	area_to(a, t);
	a->in_system--;
	a->completed++;
	a->last_completion = t;
	a->gen_tokens += o->gen_tokens;
	a->sum_e2e_ns += (double)o->e2e_ns;
	hist_add(&a->h[QS_SIM_M_TTFT], o->ttft_ns);
	if (o->gen_tokens > 1)
		hist_add(&a->h[QS_SIM_M_TPOT], o->tpot_ns);
	hist_add(&a->h[QS_SIM_M_E2E], o->e2e_ns);
	a->class_n[o->slo_class & 3]++;
	if (o->slo_met) {
		a->slo_met++;
		a->class_met[o->slo_class & 3]++;
	}
	if (o->quality_known) {
		a->q_n++;
		a->sla_n++;
		a->q_sum += o->quality;
		a->q_best_sum += o->quality_best;
		a->q_viol += !o->quality_ok;
		a->sla_viol += !o->quality_ok || !o->slo_met;
		if (o->quality_ok && o->slo_met)
			a->q_met_sum += o->quality;
	}
	{
		struct qs_sim_tenant_acc *r = tenant_row(a, o->tenant);

		r->n++;
		r->met += o->slo_met;
		if (r->ttft.count)
			hist_add(&r->ttft, o->ttft_ns);
	}
}

void
qs_sim_acc_cancel(struct qs_sim_acc *a, uint8_t slo_class, uint16_t tenant, uint64_t arrival_ns,
		  uint64_t t, uint64_t saved_tokens)
{
	tenant_row(a, tenant)->n++;
	area_to(a, t);
	a->in_system--;
	a->cancelled++;
	a->cancel_saved_tokens += saved_tokens;
	a->sum_cancel_ns += (double)(t - arrival_ns);
	a->class_n[slo_class & 3]++; /* judged: the client gave up, the SLO was missed */
	a->sla_n++;
	a->sla_viol++;
}

double
qs_sim_hist_quantile(const struct qs_sim_hist *h, double q)
{
	uint64_t rank, seen = 0;
	uint32_t b;

	if (h->n == 0)
		return 0;
	rank = (uint64_t)ceil(q * (double)h->n);
	if (rank < 1)
		rank = 1;
	for (b = 0; b < QS_SIM_HIST_BUCKETS; b++) {
		seen += h->count[b];
		if (seen >= rank)
			return bucket_mid(b);
	}
	return bucket_mid(QS_SIM_HIST_BUCKETS - 1);
}

/* The makespan: first arrival to last completion, ns (0 before any completion). */
static uint64_t
acc_span(const struct qs_sim_acc *a)
{
	return a->completed && a->last_completion > a->first_arrival
		   ? a->last_completion - a->first_arrival
		   : 0;
}

/* Everything in m that the accumulator alone determines. */
static void
acc_metrics(const struct qs_sim_acc *a, struct qs_sim_metrics *m)
{
	uint64_t span = acc_span(a), judged = a->completed + a->lost + a->cancelled;
	double span_s;
	uint32_t i;

	m->arrived = a->arrived;
	m->completed = a->completed;
	m->cancelled = a->cancelled;
	m->cancel_saved_tokens = a->cancel_saved_tokens;
	m->slo_met = a->slo_met;
	m->truncated = a->truncated;
	m->prefix_hits = a->prefix_hits;
	span_s = (double)span * 1e-9;
	m->makespan_s = span_s;
	for (i = 0; i < QS_SIM_M__COUNT; i++) {
		const struct qs_sim_hist *h = &a->h[i];

		m->p50_ms[i] = qs_sim_hist_quantile(h, 0.50) * 1e-6;
		m->p90_ms[i] = qs_sim_hist_quantile(h, 0.90) * 1e-6;
		m->p99_ms[i] = qs_sim_hist_quantile(h, 0.99) * 1e-6;
		m->mean_ms[i] = h->n ? h->sum / (double)h->n * 1e-6 : 0;
	}
	/* A lost request (qs_sim_tally_lost; never in the simulator) is judged and
	 * missed its SLO. */
	m->slo_attainment = judged ? (double)a->slo_met / (double)judged : 0;
	for (i = 0; i < QS_SIM_SLO_CLASSES; i++) {
		m->class_n[i] = a->class_n[i];
		m->class_attainment[i] =
		    a->class_n[i] ? (double)a->class_met[i] / (double)a->class_n[i] : 0;
	}
	m->n_tenants = a->n_ten + (a->ten[QS_SIM_TENANTS].n > 0);
	for (i = 0; i < m->n_tenants; i++) {
		const struct qs_sim_tenant_acc *r = &a->ten[i < a->n_ten ? i : QS_SIM_TENANTS];
		struct qs_sim_tenant_metrics *t = &m->tenant[i];

		t->tenant = r->id;
		t->other = i >= a->n_ten;
		t->n = r->n;
		t->attainment = r->n ? (double)r->met / (double)r->n : 0;
		t->ttft_p99_ms = r->ttft.count ? qs_sim_hist_quantile(&r->ttft, 0.99) * 1e-6 : 0;
	}
	if (a->q_n) {
		m->quality_mean = a->q_sum / (double)a->q_n;
		m->accuracy_loss = a->q_best_sum > 0 ? 1 - a->q_sum / a->q_best_sum : 0;
		m->quality_violations = a->q_viol;
	}
	if (a->sla_n)
		m->sla_violation_rate = (double)a->sla_viol / (double)a->sla_n;
	if (span_s > 0) {
		m->quality_goodput_rps = a->q_met_sum / span_s;
		m->goodput_rps = (double)a->slo_met / span_s;
		m->throughput_rps = (double)a->completed / span_s;
		m->throughput_tps = (double)a->gen_tokens / span_s;
		m->little_l = a->area / (double)span;
		/* W over every departure: completions and client cancellations */
		m->little_lambda_w = a->completed + a->cancelled
					 ? ((double)a->arrived / (double)span) *
					       ((a->sum_e2e_ns + a->sum_cancel_ns) /
						(double)(a->completed + a->cancelled))
					 : 0;
	}
}

void
qs_sim_metrics(const struct qs_sim *s, struct qs_sim_metrics *m)
{
	uint64_t span = acc_span(&s->acc);
	uint32_t i;

	memset(m, 0, sizeof(*m));
	acc_metrics(&s->acc, m);
	m->all_masked = s->all_masked;
	m->reports_offered = s->rc_offered;
	m->reports_taken = s->rc_taken;
	m->reports_old = s->rc_old;
	m->report_drop_source = s->rc_source;
	m->report_drop_auth = s->rc_auth;
	m->report_drop_replay = s->rc_replay;
	m->forged_sent = s->forged_sent;
	m->forged_taken = s->forged_taken;
	m->events = s->events;
	m->decisions = s->decisions;
	m->n_backends = s->nb;
	for (i = 0; i < s->nb; i++) {
		const struct qs_sim_backend *be = &s->be[i];
		double busy = (double)be->busy_ns;

		m->preemptions += be->preemptions;
		m->be_preemptions[i] = be->preemptions;
		m->be_completed[i] = be->completed;
		m->reports_checked |= be->rep_checked;
		if (be->prof.model == QS_SIM_MODEL_TOKRATE)
			busy /= be->prof.concurrency;
		m->util[i] = span ? busy / (double)span : 0;
	}
}

static uint32_t
hist_cdf(const struct qs_sim_acc *a, enum qs_sim_metric which, double *x_ms, double *frac,
	 uint32_t cap)
{
	const struct qs_sim_hist *h;
	uint64_t seen = 0;
	uint32_t b, n = 0;

	if ((unsigned)which >= QS_SIM_M__COUNT || cap == 0)
		return 0;
	h = &a->h[which];
	if (h->n == 0)
		return 0;
	for (b = 0; b < QS_SIM_HIST_BUCKETS && n < cap; b++) {
		if (!h->count[b])
			continue;
		seen += h->count[b];
		x_ms[n] = bucket_mid(b) * 1e-6;
		frac[n] = (double)seen / (double)h->n;
		n++;
	}
	return n;
}

uint32_t
qs_sim_cdf(const struct qs_sim *s, enum qs_sim_metric which, double *x_ms, double *frac,
	   uint32_t cap)
{
	return hist_cdf(&s->acc, which, x_ms, frac, cap);
}

/* ---- the same accounting for measured requests (sim.h, qs_sim_tally_*) ------------------ */

struct qs_sim_tally {
	struct qs_sim_acc acc;
};

int
qs_sim_tally_create(struct qs_sim_tally **out)
{
	struct qs_sim_tally *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return QS_E_NOMEM;
	if (qs_sim_acc_init(&t->acc) != QS_OK) {
		qs_sim_acc_free(&t->acc);
		free(t);
		return QS_E_NOMEM;
	}
	*out = t;
	return QS_OK;
}

void
qs_sim_tally_destroy(struct qs_sim_tally *t)
{
	if (!t)
		return;
	qs_sim_acc_free(&t->acc);
	free(t);
}

void
qs_sim_tally_arrive(struct qs_sim_tally *t, uint64_t t_ns)
{
	qs_sim_acc_arrive(&t->acc, t_ns);
}

void
qs_sim_tally_complete(struct qs_sim_tally *t, const struct qs_sim_outcome *o, uint64_t t_ns)
{
	qs_sim_acc_complete(&t->acc, o, t_ns);
}

void
qs_sim_tally_lost(struct qs_sim_tally *t, uint8_t slo_class, uint64_t t_ns)
{
	struct qs_sim_acc *a = &t->acc;

	a->area += (double)a->in_system * (double)(t_ns - a->area_t);
	a->area_t = t_ns;
	a->in_system--;
	a->lost++;
	a->class_n[slo_class & 3]++;
}

void
qs_sim_tally_metrics(const struct qs_sim_tally *t, struct qs_sim_metrics *m)
{
	memset(m, 0, sizeof(*m));
	acc_metrics(&t->acc, m);
}

uint32_t
qs_sim_tally_cdf(const struct qs_sim_tally *t, enum qs_sim_metric which, double *x_ms, double *frac,
		 uint32_t cap)
{
	return hist_cdf(&t->acc, which, x_ms, frac, cap);
}

const char *
qs_sim_gp_quote(const char *s, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *s && o + 2 < outlen; s++) {
		if (*s == '\'')
			out[o++] = '\'';
		out[o++] = *s;
	}
	out[o] = 0;
	return out;
}
