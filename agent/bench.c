/*
 * bench.c - batching strategies compared on the same arrivals, in virtual time,
 * with any executor (the model executor makes it a pure CPU run; a real executor
 * makes the clock advance by measured iteration times).
 *
 * The scenario shapes follow DESIGN.md 4 (static, bursty, adversarial multi-tenant:
 * mega-prompts at traffic peaks), generated here from a seed so that every strategy
 * sees byte-identical arrivals. When the simulator's scenario files land, these
 * should be read from sim/scenarios instead (docs/agent.md).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qsteer/agent.h"

struct arr {
	uint64_t t_ns;
	uint32_t prompt, gen;
	uint8_t slo, prio;
	uint16_t tenant;
};

struct rng {
	uint64_t s;
};

static uint64_t
next_u64(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double
unif(struct rng *r)
{
	return ((double)(next_u64(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double
expo(struct rng *r, double mean)
{
	return -mean * log(unif(r));
}

static uint32_t
lognormal(struct rng *r, double mean, double cv, uint32_t lo, uint32_t hi)
{
	double s2 = log(1.0 + cv * cv), mu = log(mean) - s2 / 2;
	double z = sqrt(-2.0 * log(unif(r))) * cos(2.0 * M_PI * unif(r));
	double v = exp(mu + sqrt(s2) * z);

	if (v < lo)
		return lo;
	if (v > hi)
		return hi;
	return (uint32_t)(v + 0.5);
}

const char *
qs_agent_scn_name(enum qs_agent_scn s)
{
	static const char *const n[] = { "static", "bursty", "adversarial" };

	return (unsigned)s < QS_AGENT_SCN__COUNT ? n[s] : "unknown";
}

void
qs_agent_bench_cfg_default(struct qs_agent_bench_cfg *c, enum qs_agent_scn scn)
{
	static const double ttft[4] = { 4000, 2000, 1000, 500 };
	static const double tpot[4] = { 200, 150, 100, 75 };

	memset(c, 0, sizeof(*c));
	c->scn = scn;
	c->seed = 1;
	c->requests = 2000;
	c->load = 0.8;
	memcpy(c->ttft_slo_ms, ttft, sizeof(ttft));
	memcpy(c->tpot_slo_ms, tpot, sizeof(tpot));
}

/* Requests/s one backend sustains for the mean lengths: the simulator's estimate,
 * so the agent's bench loads a backend as the simulator's scenarios do. */
static double
capacity_rps(const struct qs_sim_profile *p, double prompt, double gen)
{
	return qs_sim_profile_capacity_rps(p, prompt, gen);
}

static void
gen_arrivals(const struct qs_agent_bench_cfg *c, const struct qs_sim_profile *p, struct arr *a)
{
	struct rng r = { c->seed * 0x2545f4914f6cdd1dull + (uint64_t)c->scn };
	double mean_prompt = 512, mean_gen = 128, rate, t = 0, phase_end = 0;
	double burst_factor = 4, burst_mean = 0.5, quiet_mean = 2.0, quiet_rate, burst_rate;
	bool burst = false;
	uint32_t i;

	rate = c->load * capacity_rps(p, mean_prompt, mean_gen);
	/* Bursty phases keep the same mean rate: quiet q, burst f*q, weighted by time. */
	quiet_rate = rate * (quiet_mean + burst_mean) / (quiet_mean + burst_factor * burst_mean);
	burst_rate = quiet_rate * burst_factor;
	for (i = 0; i < c->requests; i++) {
		struct arr *x = &a[i];
		double cur = rate;

		if (c->scn != QS_AGENT_SCN_STATIC) {
			while (t >= phase_end) {
				burst = !burst;
				phase_end += expo(&r, burst ? burst_mean : quiet_mean);
			}
			cur = burst ? burst_rate : quiet_rate;
		}
		t += expo(&r, 1.0 / cur);
		x->t_ns = (uint64_t)(t * 1e9);
		x->slo = (uint8_t)(next_u64(&r) % 4);
		x->prio = x->slo;
		x->tenant = 1;
		x->prompt = lognormal(&r, mean_prompt, 1.0, 8, 4096);
		x->gen = lognormal(&r, mean_gen, 1.0, 1, 1024);
		if (c->scn == QS_AGENT_SCN_ADVERSARIAL && burst && unif(&r) < 0.15) {
			/* A second tenant's mega-prompts, at the peaks. */
			x->tenant = 2;
			x->slo = 0;
			x->prio = 0;
			x->prompt = lognormal(&r, 6000, 0.2, 3000, 7000);
			x->gen = lognormal(&r, 32, 0.5, 1, 128);
		}
	}
}

static int
cmp_d(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

static double
pct(double *v, uint32_t n, double q)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(double), cmp_d);
	return v[(uint32_t)QS_RC_MIN((double)n - 1, ceil(q * n) - 1)];
}

int
qs_agent_bench_run(const struct qs_agent_bench_cfg *c, const struct qs_agent_cfg *acfg,
		   struct qs_batch_strategy *s, struct qs_agent_exec *exec,
		   struct qs_agent_bench_result *res, char *msg, size_t msglen)
{
	struct arr *a = calloc(c->requests ? c->requests : 1, sizeof(*a));
	double *ttft = calloc(c->requests ? c->requests : 1, sizeof(double));
	double *tpot = calloc(c->requests ? c->requests : 1, sizeof(double));
	uint64_t *first = calloc(c->requests ? c->requests : 1, sizeof(uint64_t));
	struct qs_agent *ag = NULL;
	uint32_t next = 0, n_ttft = 0, n_tpot = 0, done = 0;
	uint64_t t = 0, last_done = 0, gen_tokens = 0;
	int rc;

	memset(res, 0, sizeof(*res));
	snprintf(res->strategy, sizeof(res->strategy), "%s", s->name);
	if (!a || !ttft || !tpot || !first) {
		snprintf(msg, msglen, "bench: out of memory");
		rc = QS_E_NOMEM;
		goto out;
	}
	rc = qs_agent_create(acfg, s, exec, &ag, msg, msglen);
	if (rc != QS_OK)
		goto out;
	gen_arrivals(c, &acfg->prof, a);
	while (done < c->requests) {
		struct qs_agent_iter it;
		struct qs_agent_bench_step step;
		const struct qs_agent_event *ev;
		uint32_t n, k;

		for (; next < c->requests && a[next].t_ns <= t; next++) {
			struct qs_agent_req q;

			memset(&q, 0, sizeof(q));
			q.id = next;
			q.prompt_tokens = a[next].prompt;
			q.max_new_tokens = a[next].gen;
			q.tenant = a[next].tenant;
			q.priority = a[next].prio;
			q.slo_class = a[next].slo;
			q.recv_ns = a[next].t_ns;
			(void)qs_agent_submit(ag, &q, t);
		}
		rc = qs_agent_step(ag, t, &it, msg, msglen);
		if (rc != QS_OK)
			goto out;
		ev = qs_agent_events(ag, &n);
		memset(&step, 0, sizeof(step));
		for (k = 0; k < n; k++) {
			const struct qs_agent_event *e = &ev[k];
			uint32_t id = (uint32_t)e->request_id;
			const struct arr *x = &a[id];

			if (e->kind == QS_AGENT_EV_FIRST) {
				first[id] = e->event_ns;
				ttft[n_ttft] = (double)(e->event_ns - x->t_ns) / 1e6;
				if (ttft[n_ttft++] <= c->ttft_slo_ms[x->slo & 3])
					step.first_ok++;
				else
					step.first_late++;
				continue;
			}
			done++;
			if (e->kind == QS_AGENT_EV_REJECTED) {
				step.rejected++;
				continue;
			}
			res->completed++;
			gen_tokens += e->tokens;
			last_done = QS_RC_MAX(last_done, e->event_ns);
			{
				double tt = (double)(first[id] - x->t_ns) / 1e6;
				double tp = e->tokens > 1 ? (double)(e->event_ns - first[id]) / 1e6 /
							       (e->tokens - 1) : 0;

				tpot[n_tpot++] = tp;
				if (tt <= c->ttft_slo_ms[x->slo & 3] && tp <= c->tpot_slo_ms[x->slo & 3]) {
					res->slo_met++;
					step.done_met++;
				} else {
					step.done_missed++;
				}
			}
		}
		qs_agent_events_clear(ag);
		if (c->on_iter) {
			step.waiting = qs_agent_waiting(ag);
			c->on_iter(c->on_iter_ctx, &it, &step);
		}
		if (it.seqs > 0)
			t += it.ns;
		else if (next < c->requests)
			t = QS_RC_MAX(t, a[next].t_ns);
		else if (done < c->requests) {
			snprintf(msg, msglen, "bench: stalled with %u of %u requests done", done,
				 c->requests);
			rc = QS_E_VALUE;
			goto out;
		}
	}
	rc = qs_agent_check(ag, msg, msglen);
	if (rc != QS_OK)
		goto out;
	res->preemptions = qs_agent_stats(ag)->preemptions;
	res->iterations = qs_agent_stats(ag)->iterations;
	res->makespan_s = c->requests ? (double)(last_done - a[0].t_ns) / 1e9 : 0;
	if (res->makespan_s > 0) {
		res->goodput_rps = (double)res->slo_met / res->makespan_s;
		res->throughput_tps = (double)gen_tokens / res->makespan_s;
	}
	res->slo_attainment = c->requests ? (double)res->slo_met / c->requests : 0;
	res->ttft_p50_ms = pct(ttft, n_ttft, 0.50);
	res->ttft_p99_ms = pct(ttft, n_ttft, 0.99);
	res->tpot_p50_ms = pct(tpot, n_tpot, 0.50);
	res->tpot_p99_ms = pct(tpot, n_tpot, 0.99);
out:
	qs_agent_destroy(ag);
	free(a);
	free(ttft);
	free(tpot);
	free(first);
	return rc;
}
