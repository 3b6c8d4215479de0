/*
 * agent_bench.c - libqsteer-agent-bench (agent_bench.h): batching strategies
 * compared on the same arrivals, in virtual time, with any executor (the model
 * executor makes it a pure CPU run; a real executor makes the clock advance by
 * measured iteration times). Beside batch_env.c, which drives the same loop for
 * training; out of libqsteer-agent, which serves and does not link the simulator.
 *
 * The arrivals and SLOs are the simulator's scenarios (DESIGN.md 4: static, bursty
 * and adversarial multi-tenant load, sim/scenarios/NAME.ini), for one backend whose
 * profile is the agent's. The simulator generates the stream itself -- arrival
 * process, class mix, burst-only classes, tenants, priorities, SLO classes and the
 * rate its load resolves to on this backend -- so the bench, the trainer's batching
 * environment and the router experiments share one source of truth. Its streams
 * do not depend on routing (sim/workload.c), so pulling every decision and
 * routing it to the only backend yields exactly the scenario's requests.
 */
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "qsteer/agent_bench.h"

/* A stream without a request count stops at the scenario's requests or duration;
 * this bounds the memory a scenario file can make the bench take. */
#define MAX_STREAM (1u << 24)

void
qs_agent_bench_cfg_default(struct qs_agent_bench_cfg *c, enum qs_agent_scn scn)
{
	memset(c, 0, sizeof(*c));
	c->scn = scn;
	c->seed = 1;
	c->requests = 2000;
}

/* The scenario's name, checked (the lookup itself is the simulator's, sim.h). */
static const char *
scn_file(const struct qs_agent_bench_cfg *c, char *msg, size_t msglen)
{
	if ((unsigned)c->scn >= QS_AGENT_SCN__COUNT) {
		snprintf(msg, msglen, "bench: unknown scenario %d", (int)c->scn);
		return NULL;
	}
	return qs_agent_scn_name(c->scn);
}

/* The scenario file c names, for messages (QS_E_ARG when the path does not fit). */
static int
scenario_path(const struct qs_agent_bench_cfg *c, char *out, size_t n, char *msg, size_t msglen)
{
	const char *name = scn_file(c, msg, msglen);

	if (!name)
		return QS_E_ARG;
	if (qs_sim_scenario_path(name, c->scenario_dir, out, n) != 0) {
		snprintf(msg, msglen, "bench: the path of scenario %s is too long", name);
		return QS_E_ARG;
	}
	return QS_OK;
}

int
qs_agent_bench_scenario_load(const struct qs_agent_bench_cfg *c, struct qs_sim_config *cfg,
			     char *msg, size_t msglen)
{
	const char *name = scn_file(c, msg, msglen);

	return name ? qs_sim_scenario_load_named(name, c->scenario_dir, cfg, msg, msglen)
		    : QS_E_ARG;
}

void
qs_agent_bench_arrivals_free(struct qs_agent_bench_arrivals *a)
{
	free(a->req);
	a->req = NULL;
	a->n = 0;
}

/* A simulator message, prefixed with the scenario file it is about. */
static int
scn_fail(const struct qs_agent_bench_arrivals *a, int rc, char *msg, size_t msglen)
{
	char inner[512];

	snprintf(inner, sizeof(inner), "%s", msg);
	snprintf(msg, msglen, "%s: %s", a->path, inner);
	return rc;
}

int
qs_agent_bench_arrivals(const struct qs_agent_bench_cfg *c, const struct qs_agent_cfg *acfg,
			struct qs_agent_bench_arrivals *a, char *msg, size_t msglen)
{
	struct qs_sim_config *sc = malloc(sizeof(*sc));
	struct qs_sim_decision *d = malloc(sizeof(*d));
	struct qs_sim *sim = NULL;
	uint32_t cap = c->requests ? c->requests : 4096;
	int rc;

	memset(a, 0, sizeof(*a));
	if (!sc || !d) {
		snprintf(msg, msglen, "bench: out of memory");
		rc = QS_E_NOMEM;
		goto out;
	}
	rc = scenario_path(c, a->path, sizeof(a->path), msg, msglen);
	if (rc == QS_OK)
		rc = qs_agent_bench_scenario_load(c, sc, msg, msglen);
	if (rc != QS_OK)
		goto out;
	if (c->load > 0) {
		sc->wl.load = c->load;
		sc->wl.rate = 0;
	} else if (!(sc->wl.load > 0)) {
		/* A rate is a cluster's; only a load scales to one backend. */
		snprintf(msg, msglen,
			 "%s: [workload] gives no load; the bench needs one (a "
			 "fraction of the backend's capacity) or a load override",
			 a->path);
		rc = QS_E_VALUE;
		goto out;
	}
	/* One backend, the agent's: its capacity is what load is relative to. Nothing
	 * masks it (no report ageing, KV-full or drain masks), so every route to it is
	 * accepted -- and qs_sim_route accepts any backend when all are masked. */
	sc->n_backends = 1;
	memset(&sc->backend[0], 0, sizeof(sc->backend[0]));
	sc->backend[0].prof = acfg->prof;
	sc->backend[0].prof.chunked_prefill = acfg->chunked_prefill;
	qs_sim_config_open_loop(sc);
	if (c->requests) {
		/* The scenario's duration bounds a cluster run; here the count does. */
		sc->wl.requests = c->requests;
		sc->wl.duration_s = 0;
	}
	memcpy(a->slo, sc->slo, sizeof(a->slo));
	for (uint32_t i = 0; i < QS_SIM_MAX_CLASSES; i++)
		a->spec_accept_pct[i] = sc->wl.cls[i].spec_accept_pct;
	a->load = sc->wl.load;
	rc = qs_sim_create(sc, c->seed, &sim, msg, msglen);
	if (rc != QS_OK) {
		rc = scn_fail(a, rc, msg, msglen);
		goto out;
	}
	a->rate_rps = qs_sim_arrival_rate(sim);
	qs_sim_set_features(sim, false);
	a->req = malloc((size_t)cap * sizeof(*a->req));
	if (!a->req) {
		snprintf(msg, msglen, "bench: out of memory for %u requests", cap);
		rc = QS_E_NOMEM;
		goto out;
	}
	while (!c->requests || a->n < c->requests) {
		rc = qs_sim_next_decision(sim, d, msg, msglen);
		if (rc != QS_OK) {
			rc = scn_fail(a, rc, msg, msglen);
			goto out;
		}
		if (d->done)
			break;
		if (a->n == cap) {
			struct qs_sim_request *g;

			if (cap >= MAX_STREAM) {
				snprintf(msg, msglen,
					 "%s: more than %u requests; give a request "
					 "count",
					 a->path, MAX_STREAM);
				rc = QS_E_SIZE;
				goto out;
			}
			g = realloc(a->req, (size_t)cap * 2 * sizeof(*a->req));
			if (!g) {
				snprintf(msg, msglen, "bench: out of memory for %u requests",
					 cap * 2);
				rc = QS_E_NOMEM;
				goto out;
			}
			a->req = g;
			cap *= 2;
		}
		a->req[a->n++] = d->req;
		rc = qs_sim_route(sim, 0, msg, msglen);
		if (rc != QS_OK) {
			rc = scn_fail(a, rc, msg, msglen);
			goto out;
		}
	}
	if (a->n == 0) {
		snprintf(msg, msglen, "%s: the scenario gave no requests", a->path);
		rc = QS_E_VALUE;
	}
out:
	qs_sim_destroy(sim);
	free(sc);
	free(d);
	if (rc != QS_OK)
		qs_agent_bench_arrivals_free(a);
	return rc;
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
	struct qs_agent_bench_arrivals own;
	const struct qs_agent_bench_arrivals *a = c->arrivals;
	const struct qs_sim_request *rq;
	double *ttft = NULL, *tpot = NULL;
	uint64_t *first = NULL;
	struct qs_agent *ag = NULL;
	uint32_t n, next = 0, n_ttft = 0, n_tpot = 0, done = 0;
	uint64_t t = 0, last_done = 0, gen_tokens = 0;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&own, 0, sizeof(own));
	snprintf(res->strategy, sizeof(res->strategy), "%s", s->name);
	if (!a) {
		rc = qs_agent_bench_arrivals(c, acfg, &own, msg, msglen);
		if (rc != QS_OK)
			return rc;
		a = &own;
	}
	n = a->n;
	rq = a->req;
	res->requests = n;
	res->load = a->load;
	res->rate_rps = a->rate_rps;
	ttft = calloc(n ? n : 1, sizeof(double));
	tpot = calloc(n ? n : 1, sizeof(double));
	first = calloc(n ? n : 1, sizeof(uint64_t));
	if (!ttft || !tpot || !first) {
		snprintf(msg, msglen, "bench: out of memory");
		rc = QS_E_NOMEM;
		goto out;
	}
	rc = qs_agent_create(acfg, s, exec, &ag, msg, msglen);
	if (rc != QS_OK)
		goto out;
	while (done < n) {
		struct qs_agent_iter it;
		struct qs_agent_bench_step step;
		const struct qs_agent_event *ev;
		uint32_t ne, k;

		for (; next < n && rq[next].arrival_ns <= t; next++) {
			struct qs_agent_req q;

			memset(&q, 0, sizeof(q));
			q.id = next;
			q.prompt_tokens = rq[next].prompt_tokens;
			q.max_new_tokens = rq[next].max_new_tokens;
			q.prefix_hash = rq[next].prefix_hash;
			q.tenant = rq[next].tenant;
			q.priority = rq[next].priority;
			q.slo_class = rq[next].slo_class;
			q.spec_accept_pct =
			    a->spec_accept_pct[rq[next].class_index % QS_SIM_MAX_CLASSES];
			q.recv_ns = rq[next].arrival_ns;
			(void)qs_agent_submit(ag, &q, t);
		}
		rc = qs_agent_step(ag, t, &it, msg, msglen);
		if (rc != QS_OK)
			goto out;
		ev = qs_agent_events(ag, &ne);
		memset(&step, 0, sizeof(step));
		for (k = 0; k < ne; k++) {
			const struct qs_agent_event *e = &ev[k];
			uint32_t id = (uint32_t)e->request_id;
			const struct qs_sim_request *x = &rq[id];
			const struct qs_sim_slo *slo = &a->slo[x->slo_class % QS_SIM_SLO_CLASSES];
			double tt, tp, e2e;

			if (e->kind == QS_AGENT_EV_FIRST) {
				first[id] = e->event_ns;
				ttft[n_ttft] = (double)(e->event_ns - x->arrival_ns) / 1e6;
				if (qs_sim_slo_met(slo, ttft[n_ttft++], 0, 0))
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
			/* As the simulator judges a completion: TPOT over the tokens after
			 * the first, every limit of the request's SLO class. */
			tt = (double)(first[id] - x->arrival_ns) / 1e6;
			tp = e->tokens > 1
				 ? (double)(e->event_ns - first[id]) / 1e6 / (e->tokens - 1)
				 : 0;
			e2e = (double)(e->event_ns - x->arrival_ns) / 1e6;
			tpot[n_tpot++] = tp;
			if (qs_sim_slo_met(slo, tt, tp, e2e)) {
				res->slo_met++;
				step.done_met++;
			} else {
				step.done_missed++;
			}
		}
		qs_agent_events_clear(ag);
		if (c->on_iter) {
			step.waiting = qs_agent_waiting(ag);
			c->on_iter(c->on_iter_ctx, &it, &step);
		}
		if (it.seqs > 0)
			t += it.ns;
		else if (next < n)
			t = QS_RC_MAX(t, rq[next].arrival_ns);
		else if (done < n) {
			snprintf(msg, msglen, "bench: stalled with %u of %u requests done", done,
				 n);
			rc = QS_E_VALUE;
			goto out;
		}
	}
	rc = qs_agent_check(ag, msg, msglen);
	if (rc != QS_OK)
		goto out;
	res->preemptions = qs_agent_stats(ag)->preemptions;
	res->iterations = qs_agent_stats(ag)->iterations;
	res->spec_drafted = qs_agent_stats(ag)->spec_drafted;
	res->spec_accepted = qs_agent_stats(ag)->spec_accepted;
	res->makespan_s =
	    n && last_done > rq[0].arrival_ns ? (double)(last_done - rq[0].arrival_ns) / 1e9 : 0;
	if (res->makespan_s > 0) {
		res->goodput_rps = (double)res->slo_met / res->makespan_s;
		res->throughput_tps = (double)gen_tokens / res->makespan_s;
	}
	res->slo_attainment = n ? (double)res->slo_met / n : 0;
	res->ttft_p50_ms = pct(ttft, n_ttft, 0.50);
	res->ttft_p99_ms = pct(ttft, n_ttft, 0.99);
	res->tpot_p50_ms = pct(tpot, n_tpot, 0.50);
	res->tpot_p99_ms = pct(tpot, n_tpot, 0.99);
out:
	qs_agent_destroy(ag);
	qs_agent_bench_arrivals_free(&own);
	free(ttft);
	free(tpot);
	free(first);
	return rc;
}
