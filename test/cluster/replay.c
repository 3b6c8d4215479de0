/*
 * replay.c - cluster-replay: the live cluster's error taken apart (docs/cluster.md,
 * "Where the error comes from"). For one scenario and seed it runs, on the very
 * same arrivals:
 *
 *   sim    qsteer-sim's backends (the scenario's `schedule`, or --schedule), with
 *          each request sent to the backend the live run sent it to (--live CSV,
 *          qsteer-load's per-request file) or to the one --router picks;
 *   agent  qsteer-agent's own scheduler and model executor (libqsteer-agent, the
 *          code the live agents run, `--batching fixed`) in virtual time, each
 *          backend fed the requests the sim routed to it, at their arrival times.
 *
 * With the live routing replayed, live vs sim is the backend model plus the real
 * time (send lag, the agent's timers on a busy machine, the hop), with no routing
 * difference; sim vs agent is the backend model alone, request for request (0
 * with schedule = mixed: the test asserts it). Run beside the full simulation
 * (qsteer-sim run, its own routing), the rest of the error is the routing: the
 * dataplane's view of the reports.
 *
 * usage: cluster-replay --scenario FILE [--seed N] [--schedule vllm-v0|mixed]
 *                       (--live CSV [--router R --explain] | --router R) [--check]
 *                       [--out CSV] [--view-out CSV]
 * --check: exit 1 unless sim and agent agree on every request's first-token and
 * completion time (to the nanosecond's rounding, 1 us) and neither lost one.
 * --explain (with --live and --router): every decision where R, on the simulator's
 * view of the live run's trajectory, would have chosen another backend than the
 * live dataplane did, with that view (how far the live routing is explained).
 * --out: per request, the backend and the three TTFTs.
 * --view-out CSV: per decision and candidate, the router-v1 feature row of the
 * simulator's view (index, t_ms, candidate id, f0..f15), to compare with what the
 * live dataplane saw (qsteer-pcap decisions on a capture of the run).
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qsteer/agent.h"
#include "qsteer/sim.h"

#define MAX_REQ (1u << 22)

struct req {
	uint64_t arrival_ns;
	uint32_t prompt, gen, backend;
	uint8_t slo_class, priority;
	bool live_ok; /* answered live (with --live) */
	double live_ttft_ms, live_e2e_ms, live_sched_ms;
	int64_t sim_ttft_ns, sim_e2e_ns; /* -1: none */
	int64_t ag_ttft_ns, ag_e2e_ns;
};

struct run {
	struct req *r;
	uint32_t n, cap;
};

static void
on_outcome(void *ctx, const struct qs_sim_outcome *o)
{
	struct run *R = ctx;

	if (o->decision_id < R->n) {
		R->r[o->decision_id].sim_ttft_ns = (int64_t)o->ttft_ns;
		R->r[o->decision_id].sim_e2e_ns = (int64_t)o->e2e_ns;
	}
}

/* qsteer-load's CSV: index, outcome, backend, sched_ms, ttft_ms, e2e_ms by header name. */
static int
read_live(const char *path, struct run *R)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int col[6] = {-1, -1, -1, -1, -1, -1};
	static const char *const want[6] = {"index",   "outcome", "backend",
					    "ttft_ms", "e2e_ms",  "sched_ms"};
	uint32_t rows = 0;

	if (!f) {
		perror(path);
		return -1;
	}
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return -1;
	}
	{
		char *save = NULL, *t = strtok_r(line, ",\r\n", &save);
		int k = 0, j;

		for (; t; t = strtok_r(NULL, ",\r\n", &save), k++)
			for (j = 0; j < 6; j++)
				if (!strcmp(t, want[j]))
					col[j] = k;
		for (j = 0; j < 6; j++)
			if (col[j] < 0) {
				fprintf(stderr, "%s: no column '%s'\n", path, want[j]);
				fclose(f);
				return -1;
			}
	}
	while (fgets(line, sizeof(line), f)) {
		char *cell[64];
		int k = 0;
		char *p = line;
		uint64_t idx;
		struct req *q;

		/* empty cells matter: split by hand, not strtok */
		cell[k++] = p;
		for (; *p && k < 64; p++)
			if (*p == ',') {
				*p = '\0';
				cell[k++] = p + 1;
			} else if (*p == '\n' || *p == '\r') {
				*p = '\0';
			}
		if (k <= col[0] || k <= col[1] || k <= col[2] || k <= col[3] || k <= col[4] ||
		    k <= col[5])
			continue;
		idx = strtoull(cell[col[0]], NULL, 10);
		if (idx >= MAX_REQ)
			continue;
		while (idx >= R->cap) {
			uint32_t nc = R->cap ? R->cap * 2 : 1024;
			struct req *g = realloc(R->r, (size_t)nc * sizeof(*g));

			if (!g) {
				fclose(f);
				return -1;
			}
			memset(g + R->cap, 0, (size_t)(nc - R->cap) * sizeof(*g));
			R->r = g;
			R->cap = nc;
		}
		q = &R->r[idx];
		q->live_ok =
		    !strcmp(cell[col[1]], "answered") && cell[col[2]][0] && cell[col[3]][0];
		q->backend = cell[col[2]][0] ? (uint32_t)strtoul(cell[col[2]], NULL, 10) : 0;
		q->live_ttft_ms = q->live_ok ? strtod(cell[col[3]], NULL) : 0;
		q->live_e2e_ms = q->live_ok && cell[col[4]][0] ? strtod(cell[col[4]], NULL) : 0;
		q->live_sched_ms = strtod(cell[col[5]], NULL);
		if (idx + 1 > rows)
			rows = (uint32_t)idx + 1;
	}
	fclose(f);
	return (int)rows;
}

/* qsteer-agent's scheduler and model executor on backend b's requests, virtual time. */
static int
agent_replay(const struct qs_sim_config *cfg, uint32_t b, struct run *R, uint32_t *rejected)
{
	struct qs_agent_cfg ac;
	struct qs_batch_strategy st;
	struct qs_agent_exec ex;
	struct qs_agent *a = NULL;
	struct qs_agent_iter it;
	char msg[512];
	uint32_t *ix, n = 0, k = 0, i;
	uint64_t now = 0;
	int rc;

	ix = malloc((size_t)(R->n ? R->n : 1) * sizeof(*ix));
	if (!ix)
		return -1;
	for (i = 0; i < R->n; i++)
		if (R->r[i].backend == b)
			ix[n++] = i; /* decision order is arrival order */
	qs_agent_cfg_default(&ac);
	ac.prof = cfg->backend[b].prof;
	ac.chunked_prefill = ac.prof.chunked_prefill;
	ac.backend_id = (uint16_t)(b + 1);
	/* the simulator's admission = priority is the agent's priority admission */
	ac.admit_priority = cfg->backend[b].admission == QS_SIM_ADMIT_PRIORITY;
	ac.starve_ns = (uint64_t)(cfg->backend[b].starve_ms * 1e6 + 0.5);
	if (qs_batch_parse("fixed", &st, msg, sizeof(msg)) != QS_OK ||
	    qs_agent_exec_model(&ac.prof, &ex, msg, sizeof(msg)) != QS_OK ||
	    qs_agent_create(&ac, &st, &ex, &a, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "agent %u: %s\n", b, msg);
		free(ix);
		return -1;
	}
	for (;;) {
		const struct qs_agent_event *ev;
		uint32_t ne;

		if (qs_agent_waiting(a) == 0 && qs_agent_running(a) == 0) {
			if (k == n)
				break;
			if (R->r[ix[k]].arrival_ns > now)
				now = R->r[ix[k]].arrival_ns; /* idle until the next arrival */
		}
		for (; k < n && R->r[ix[k]].arrival_ns <= now; k++) {
			const struct req *q = &R->r[ix[k]];
			struct qs_agent_req ar;

			memset(&ar, 0, sizeof(ar));
			ar.id = ix[k];
			ar.prompt_tokens = q->prompt;
			ar.max_new_tokens = q->gen;
			ar.slo_class = q->slo_class;
			ar.priority = q->priority;
			ar.recv_ns = q->arrival_ns;
			ar.packets = 1;
			(void)qs_agent_submit(a, &ar, q->arrival_ns);
		}
		rc = qs_agent_step(a, now, &it, msg, sizeof(msg));
		if (rc != QS_OK) {
			fprintf(stderr, "agent %u: %s\n", b, msg);
			break;
		}
		ev = qs_agent_events(a, &ne);
		for (i = 0; i < ne; i++) {
			struct req *q = &R->r[ev[i].request_id];

			if (ev[i].kind == QS_AGENT_EV_FIRST)
				q->ag_ttft_ns = (int64_t)(ev[i].event_ns - q->arrival_ns);
			else if (ev[i].kind == QS_AGENT_EV_DONE)
				q->ag_e2e_ns = (int64_t)(ev[i].event_ns - q->arrival_ns);
			else
				(*rejected)++;
		}
		qs_agent_events_clear(a);
		if (it.seqs == 0) {
			/* nothing fits until something arrives (nothing completes meanwhile) */
			if (k == n)
				break;
			now = R->r[ix[k]].arrival_ns;
			continue;
		}
		now += it.ns;
	}
	qs_agent_destroy(a);
	qs_agent_exec_destroy(&ex);
	qs_batch_free(&st);
	free(ix);
	return 0;
}

static int
cmp_d(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

/* Nearest-rank percentile of n values (sorted in place). */
static double
pct(double *v, uint32_t n, double p)
{
	uint32_t k;

	if (n == 0)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_d);
	k = (uint32_t)ceil(p / 100.0 * n);
	return v[k ? k - 1 : 0];
}

enum src { LIVE, SIM, AGENT };

static bool
has(const struct req *q, enum src s)
{
	return s == LIVE ? q->live_ok : s == SIM ? q->sim_ttft_ns >= 0 : q->ag_ttft_ns >= 0;
}

static double
ttft(const struct req *q, enum src s)
{
	return s == LIVE ? q->live_ttft_ms : (s == SIM ? q->sim_ttft_ns : q->ag_ttft_ns) / 1e6;
}

static double
e2e(const struct req *q, enum src s)
{
	return s == LIVE ? q->live_e2e_ms : (s == SIM ? q->sim_e2e_ns : q->ag_e2e_ns) / 1e6;
}

static void
row(const struct run *R, enum src s, const char *name, double *v)
{
	uint32_t i, n = 0;
	double sum = 0, p50, p90, p99;

	for (i = 0; i < R->n; i++)
		if (has(&R->r[i], s)) {
			v[n++] = ttft(&R->r[i], s);
			sum += e2e(&R->r[i], s);
		}
	p50 = pct(v, n, 50);
	p90 = pct(v, n, 90);
	p99 = pct(v, n, 99);
	printf("%-34s %6u %10.2f %10.2f %10.2f %10.2f\n", name, n, p50, p90, p99,
	       n ? sum / n : NAN);
}

/* Per request, b - a in TTFT over requests both have: median, mean, max |.| (ms). */
static void
diff(const struct run *R, enum src a, enum src b, const char *name, double *v)
{
	uint32_t i, n = 0;
	double sum = 0, mx = 0, med;

	for (i = 0; i < R->n; i++)
		if (has(&R->r[i], a) && has(&R->r[i], b)) {
			double d = ttft(&R->r[i], b) - ttft(&R->r[i], a);

			v[n++] = d;
			sum += d;
			mx = fmax(mx, fabs(d));
		}
	med = pct(v, n, 50);
	printf("%-34s %6u %10.3f %10.3f %10.3f\n", name, n, med, n ? sum / n : NAN, mx);
}

int
main(int argc, char **argv)
{
	const char *scen = NULL, *live = NULL, *router = NULL, *sched = NULL, *out = NULL,
		   *view_out = NULL;
	FILE *vf = NULL;
	uint64_t seed = 1;
	bool check = false, explain = false;
	struct qs_sim_config *cfg = calloc(1, sizeof(*cfg));
	struct qs_sim_decision *d = calloc(1, sizeof(*d));
	struct qs_sim_router rt;
	struct qs_sim *sim = NULL;
	struct run R = {0};
	char msg[1024];
	uint32_t i, b, rejected = 0, bad = 0, lost = 0, live_rows = 0;
	uint64_t t0 = 0;
	double *v;
	int rc, k;

	if (!cfg || !d)
		return 1;
	for (k = 1; k < argc; k++) {
		const char *o = argv[k], *val = k + 1 < argc ? argv[k + 1] : NULL;

		if (!strcmp(o, "--check") || !strcmp(o, "--explain")) {
			*(o[2] == 'c' ? &check : &explain) = true;
			continue;
		}
		if (!val)
			goto usage;
		k++;
		if (!strcmp(o, "--scenario"))
			scen = val;
		else if (!strcmp(o, "--seed"))
			seed = strtoull(val, NULL, 10);
		else if (!strcmp(o, "--live"))
			live = val;
		else if (!strcmp(o, "--router"))
			router = val;
		else if (!strcmp(o, "--schedule"))
			sched = val;
		else if (!strcmp(o, "--out"))
			out = val;
		else if (!strcmp(o, "--view-out"))
			view_out = val;
		else
			goto usage;
	}
	if (!scen || (!live && !router) || (explain && !(live && router)))
		goto usage;
	if (qs_sim_scenario_load_named(scen, NULL, cfg, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "cluster-replay: %s\n", msg);
		return 1;
	}
	if (sched) {
		enum qs_sim_schedule sv;

		if (!strcmp(sched, "vllm-v0"))
			sv = QS_SIM_SCHED_VLLM_V0;
		else if (!strcmp(sched, "mixed"))
			sv = QS_SIM_SCHED_MIXED;
		else
			goto usage;
		for (i = 0; i < cfg->n_backends; i++)
			cfg->backend[i].schedule = sv;
	}
	if (live) {
		int n = read_live(live, &R);

		if (n < 0)
			return 1;
		live_rows = (uint32_t)n;
		/* the live run's routing is replayed as it was: the simulator's own masks
		 * (on by default, as the dataplane's) would refuse a backend the live
		 * dataplane, with its own report timing, still saw fresh */
		cfg->report_max_age_ns = 0;
		cfg->report_stale_intervals = 0;
		cfg->mask_kv_full = false;
	}
	memset(&rt, 0, sizeof(rt));
	if (router && qs_sim_router_parse(router, seed, &rt, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "cluster-replay: %s\n", msg);
		return 1;
	}
	cfg->on_outcome = on_outcome;
	cfg->outcome_ctx = &R;
	if (qs_sim_create(cfg, seed, &sim, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "cluster-replay: %s\n", msg);
		return 1;
	}
	qs_sim_set_features(sim, (router && !strncmp(router, "q8:", 3)) || view_out);
	if (view_out) {
		vf = fopen(view_out, "w");
		if (!vf) {
			perror(view_out);
			return 1;
		}
		fprintf(vf, "index,t_ms,candidate");
		for (i = 0; i < QS_FR_COUNT; i++)
			fprintf(vf, ",f%u", i);
		fputc('\n', vf);
	}
	for (;;) {
		struct req *q;

		rc = qs_sim_next_decision(sim, d, msg, sizeof(msg));
		if (rc != QS_OK || d->done)
			break;
		if (d->decision_id >= MAX_REQ) {
			rc = QS_E_SIZE;
			break;
		}
		while (d->decision_id >= R.cap) {
			uint32_t nc = R.cap ? R.cap * 2 : 1024;
			struct req *g = realloc(R.r, (size_t)nc * sizeof(*g));

			if (!g)
				return 1;
			memset(g + R.cap, 0, (size_t)(nc - R.cap) * sizeof(*g));
			R.r = g;
			R.cap = nc;
		}
		if (d->decision_id + 1 > R.n)
			R.n = (uint32_t)d->decision_id + 1;
		q = &R.r[d->decision_id];
		if (d->decision_id == 0)
			t0 = d->req.arrival_ns;
		q->arrival_ns = d->req.arrival_ns;
		q->prompt = d->req.prompt_tokens;
		q->gen = d->req.max_new_tokens;
		q->slo_class = d->req.slo_class;
		q->priority = d->req.priority;
		q->sim_ttft_ns = q->sim_e2e_ns = q->ag_ttft_ns = q->ag_e2e_ns = -1;
		for (i = 0; vf && i < d->n_backends; i++) {
			if (!(d->eligible >> i & 1))
				continue;
			fprintf(vf, "%" PRIu64 ",%.6f,%u", d->decision_id, (d->now_ns - t0) / 1e6,
				i + 1);
			for (k = 0; k < QS_FR_COUNT; k++)
				fprintf(vf, ",%u", d->features[i][k]);
			fputc('\n', vf);
		}
		if (explain) {
			int c = qs_sim_router_choose(&rt, d);

			if (c >= 0 && q->backend >= 1 && (uint32_t)c != q->backend - 1) {
				uint32_t j;

				printf("decision %" PRIu64
				       " t=%.1f ms prompt %u: live %u, %s on the "
				       "sim's view %d:",
				       d->decision_id, (d->now_ns - t0) / 1e6, q->prompt,
				       q->backend - 1, router, c);
				for (j = 0; j < d->n_backends; j++)
					printf(" [%u w%u r%u s%u kv%u pf%u]", j,
					       d->backend[j].waiting, d->backend[j].running,
					       d->backend[j].sent_reqs, d->backend[j].kv_used,
					       d->backend[j].prefill_pending);
				printf("\n");
			}
		}
		if (live) {
			/* The live run's choice; a request it never answered (no backend
			 * known) goes round robin and is left out of every comparison. */
			b = q->backend >= 1 && q->backend <= cfg->n_backends
				? q->backend - 1
				: (uint32_t)(d->decision_id % cfg->n_backends);
			if (fabs(q->live_sched_ms - (q->arrival_ns - t0) / 1e6) > 0.01)
				bad++; /* not the arrivals the live run had */
		} else {
			b = (uint32_t)qs_sim_router_choose(&rt, d);
		}
		q->backend = b;
		rc = qs_sim_route(sim, b, msg, sizeof(msg));
		if (rc != QS_OK)
			break;
	}
	if (vf && fclose(vf) != 0) {
		perror(view_out);
		return 1;
	}
	if (rc != QS_OK) {
		fprintf(stderr, "cluster-replay: %s\n", msg);
		return 1;
	}
	if (live && (live_rows != R.n || bad)) {
		fprintf(stderr,
			"cluster-replay: %s has %u rows, %u of them at other times than the "
			"scenario's %u arrivals (another seed or scenario?)\n",
			live, live_rows, bad, R.n);
		return 1;
	}
	for (b = 0; b < cfg->n_backends; b++)
		if (agent_replay(cfg, b, &R, &rejected))
			return 1;

	v = malloc((size_t)(R.n ? R.n : 1) * sizeof(*v));
	if (!v)
		return 1;
	printf("cluster-replay %s, seed %" PRIu64 ", %u requests, routing: %s; schedule %s\n",
	       cfg->name, seed, R.n, live ? live : router,
	       cfg->backend[0].schedule == QS_SIM_SCHED_MIXED ? "mixed" : "vllm-v0");
	printf("%-34s %6s %10s %10s %10s %10s\n", "TTFT (ms)", "n", "p50", "p90", "p99",
	       "e2e mean");
	if (live)
		row(&R, LIVE, "live", v);
	row(&R, SIM, "sim backends, same routing", v);
	row(&R, AGENT, "agent scheduler, virtual time", v);
	printf("%-34s %6s %10s %10s %10s\n", "per request, TTFT difference (ms)", "n", "median",
	       "mean", "max |d|");
	if (live) {
		diff(&R, SIM, LIVE, "live - sim", v);
		diff(&R, AGENT, LIVE, "live - agent", v);
	}
	diff(&R, AGENT, SIM, "sim - agent", v);
	for (i = 0; i < R.n; i++) {
		const struct req *q = &R.r[i];

		if (!has(q, SIM) || !has(q, AGENT) || q->sim_e2e_ns < 0 || q->ag_e2e_ns < 0) {
			lost++;
			continue;
		}
		if (llabs(q->sim_ttft_ns - q->ag_ttft_ns) > 1000 ||
		    llabs(q->sim_e2e_ns - q->ag_e2e_ns) > 1000)
			bad++;
	}
	printf("sim vs agent: %u of %u requests differ by more than 1 us (first token or "
	       "completion), %u missing, %u rejected by the agent\n",
	       bad, R.n, lost, rejected);
	if (out) {
		FILE *f = fopen(out, "w");

		if (!f) {
			perror(out);
			return 1;
		}
		fprintf(f, "index,backend,arrival_ms,prompt,gen,live_ttft_ms,sim_ttft_ms,"
			   "agent_ttft_ms\n");
		for (i = 0; i < R.n; i++) {
			const struct req *q = &R.r[i];

			fprintf(f, "%u,%u,%.3f,%u,%u,", i, q->backend + 1,
				(q->arrival_ns - t0) / 1e6, q->prompt, q->gen);
			if (has(q, LIVE))
				fprintf(f, "%.3f", q->live_ttft_ms);
			fprintf(f, ",%.3f,%.3f\n", ttft(q, SIM), ttft(q, AGENT));
		}
		fclose(f);
	}
	free(v);
	qs_sim_destroy(sim);
	if (router)
		qs_sim_router_free(&rt);
	free(R.r);
	free(cfg);
	free(d);
	return check && (bad || lost || rejected) ? 1 : 0;
usage:
	fprintf(stderr, "usage: cluster-replay --scenario FILE [--seed N] "
			"[--schedule vllm-v0|mixed] (--live CSV [--router R --explain] | "
			"--router R) [--check] [--out CSV] [--view-out CSV]\n");
	return 2;
}
