/*
 * sim_main.c - qsteer-sim: run, compare and benchmark routers on scenarios.
 *
 *   qsteer-sim run --scenario FILE|NAME --router R [--seed N] [--trace CSV] [--rate R]
 *                  [--json] [--requests CSV]
 *   qsteer-sim compare --scenario FILE|NAME [--seeds K] [--seed N] [--router q8:FILE]...
 *                  [--json] [--plot DIR]
 *   qsteer-sim bench [--json] [--scenario FILE|NAME] [--router R]
 *   qsteer-sim list
 *
 * A NAME is looked up by qs_sim_scenario_load_named (sim.h): $QSTEER_SCENARIO_DIR/
 * NAME.ini, else <repository root>/sim/scenarios/NAME.ini.
 */
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qsteer/clock.h"
#include "qsteer/opt.h"
#include "sim_report.h"

#define MAX_ROUTERS 16

struct opts {
	const char *cmd;
	const char *scenario;
	const char *router;
	const char *q8[MAX_ROUTERS];
	uint32_t n_q8;
	const char *trace;
	double rate;
	uint64_t seed;
	uint32_t seeds;
	int json;
	const char *requests;
	const char *plot;
	int no_quality_mask;
};

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: qsteer-sim run --scenario FILE|NAME --router R [--seed N] [--trace CSV]\n"
		"                      [--rate R] [--json] [--requests CSV] [--no-quality-mask]\n"
		"       qsteer-sim compare --scenario FILE|NAME [--seeds K] [--seed N]\n"
		"                      [--router q8:FILE]... [--json] [--plot DIR]\n"
		"       qsteer-sim bench [--json] [--scenario FILE|NAME] [--router R]\n"
		"       qsteer-sim list\n"
		"routers: random rr lor lot jsq p2c sed kv q8:FILE; with model variants\n"
		"(cascade) also small:H, large:H, thresh:H for a heuristic H\n"
		"--no-quality-mask: quality floors judged, not enforced\n");
}

static int
load_scenario(const struct opts *o, struct qs_sim_config *cfg)
{
	char msg[1024];
	int rc;

	if (!o->scenario) {
		fprintf(stderr, "qsteer-sim: --scenario is required\n");
		return 2;
	}
	rc = qs_sim_scenario_load_named(o->scenario, NULL, cfg, msg, sizeof(msg));
	if (rc != QS_OK) {
		fprintf(stderr, "qsteer-sim: %s\n", msg);
		return 1;
	}
	/* quality floors judged, not enforced: the baselines that ignore them */
	cfg->quality_unmasked = o->no_quality_mask != 0;
	if (o->trace) {
		cfg->wl.arrival = QS_SIM_ARR_TRACE;
		snprintf(cfg->wl.trace, sizeof(cfg->wl.trace), "%s", o->trace);
		cfg->wl.requests = 0;
		cfg->wl.duration_s = 0;
		cfg->wl.window_start_s = 0;
		cfg->wl.window_s = 0;
		cfg->wl.window_jitter_s = 0;
		cfg->wl.thin = 0;
	}
	if (o->rate > 0) {
		cfg->wl.rate = o->rate;
		cfg->wl.load = 0;
	} else if (o->trace) {
		cfg->wl.rate = 0; /* replay at the trace's own rate unless a load is set */
	}
	return 0;
}

static void
csv_outcome(void *ctx, const struct qs_sim_outcome *o)
{
	qs_report_csv_row(ctx, o);
}

static int
cmd_run(const struct opts *o)
{
	struct qs_sim_config *cfg = calloc(1, sizeof(*cfg));
	struct qs_sim_router r;
	struct qs_sim_metrics m;
	struct qs_sim *s = NULL;
	FILE *csv = NULL;
	char msg[1024];
	int rc = 1;

	if (!cfg)
		return 1;
	if (!o->router) {
		fprintf(stderr, "qsteer-sim: run needs --router\n");
		free(cfg);
		return 2;
	}
	if ((rc = load_scenario(o, cfg)) != 0) {
		free(cfg);
		return rc;
	}
	rc = 1;
	if (qs_sim_router_parse(o->router, o->seed, &r, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-sim: %s\n", msg);
		free(cfg);
		return 1;
	}
	if (o->requests) {
		csv = fopen(o->requests, "w");
		if (!csv) {
			perror(o->requests);
			goto out;
		}
		qs_report_csv_header(csv);
		cfg->on_outcome = csv_outcome;
		cfg->outcome_ctx = csv;
	}
	if (qs_sim_create(cfg, o->seed, &s, msg, sizeof(msg)) != QS_OK ||
	    qs_sim_run(s, &r, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-sim: %s\n", msg);
		goto out;
	}
	qs_sim_metrics(s, &m);
	if (o->json)
		qs_report_run_json(stdout, cfg, r.name, o->seed, &m, r.fallbacks);
	else
		qs_report_run_table(stdout, cfg, r.name, o->seed, &m, r.fallbacks);
	rc = 0;
out:
	if (csv && fclose(csv)) {
		perror(o->requests);
		rc = 1;
	}
	qs_sim_destroy(s);
	qs_sim_router_free(&r);
	free(cfg);
	return rc;
}

/* ---- compare: (router, seed) jobs on the job pool (compare.h) -------------------------- */

static int
cmd_compare(const struct opts *o)
{
	struct qs_sim_config *cfg = calloc(1, sizeof(*cfg));
	struct qs_cmp_router routers[MAX_ROUTERS] = {{0}};
	struct qs_cmp_row *rows = NULL;
	struct qs_cmp_opts co = {.seeds = o->seeds, .seed0 = o->seed, .cdf = true};
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	uint32_t i, n = 0;
	char msg[1024];
	int rc = 1;

	if (!cfg)
		goto out;
	if (o->seeds == 0 || o->seeds > 64) {
		fprintf(stderr, "qsteer-sim: --seeds must be 1..64\n");
		rc = 2;
		goto out;
	}
	if ((rc = load_scenario(o, cfg)) != 0)
		goto out;
	rc = 1;
	for (i = 0; i < QS_BASELINE__COUNT; i++)
		routers[n++].spec = qs_baseline_name((enum qs_baseline_kind)i);
	for (i = 0; i < o->n_q8 && n < MAX_ROUTERS; i++)
		routers[n++].spec = o->q8[i];
	rows = calloc(n, sizeof(*rows));
	if (!rows)
		goto out;
	co.threads = ncpu > 0 ? (uint32_t)ncpu : 1;
	if (co.threads > 16)
		co.threads = 16;
	if (qs_cmp_run(cfg, routers, n, &co, rows, NULL, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-sim: %s\n", msg);
		goto out;
	}
	if (o->json)
		qs_report_cmp_json(stdout, cfg, rows, n, o->seeds, o->seed);
	else
		qs_report_cmp_table(stdout, cfg, rows, n, o->seeds, o->seed);
	rc = 0;
	if (o->plot) {
		char why[512];

		fflush(stdout);
		if (qs_report_plot(o->plot, cfg, rows, n, why, sizeof(why))) {
			fprintf(stderr, "qsteer-sim: plot: %s\n", why);
			rc = 1;
		}
	}
out:
	free(rows);
	free(cfg);
	return rc;
}

/* ---- bench ------------------------------------------------------------------------------- */

/* The fixed reference run: 8 A100/H100-class 7B backends, Poisson, lognormal lengths. */
static void
bench_config(struct qs_sim_config *c)
{
	uint32_t i;

	qs_sim_config_default(c);
	snprintf(c->name, sizeof(c->name), "bench-reference");
	c->n_backends = 8;
	for (i = 0; i < 8; i++) {
		qs_sim_profile_default(&c->backend[i].prof);
		if (i >= 4) {
			/* The H100 7B profile's coefficients
			 * (sim/profiles/h100-80gb-llama2-7b.ini). */
			snprintf(c->backend[i].prof.name, QS_SIM_NAME_LEN, "h100-80gb-llama2-7b");
			c->backend[i].prof.fixed_us = 7366;
			c->backend[i].prof.prefill_us_per_token = 38.9;
			c->backend[i].prof.decode_us_per_seq = 57.4;
			c->backend[i].prof.kv_us_per_token = 0.157;
		}
	}
	c->wl.arrival = QS_SIM_ARR_POISSON;
	c->wl.load = 0.8;
	c->wl.requests = 200000;
	c->wl.n_classes = 1;
	snprintf(c->wl.cls[0].name, sizeof(c->wl.cls[0].name), "chat");
	c->wl.cls[0].weight = 1;
	c->wl.cls[0].prompt = (struct qs_sim_len){QS_SIM_DIST_LOGNORMAL, 512, 1.0, 1, 6000};
	c->wl.cls[0].gen = (struct qs_sim_len){QS_SIM_DIST_LOGNORMAL, 128, 1.0, 1, 2000};
}

static int
cmd_bench(const struct opts *o)
{
	struct qs_sim_config *cfg = calloc(1, sizeof(*cfg));
	struct qs_sim_router r;
	struct qs_sim_metrics m;
	struct qs_sim *s = NULL;
	char msg[1024];
	double tc, t0, t1;
	int rc;

	if (!cfg)
		return 1;
	if (o->scenario) {
		if ((rc = load_scenario(o, cfg)) != 0) {
			free(cfg);
			return rc;
		}
	} else {
		bench_config(cfg);
	}
	if (qs_sim_router_parse(o->router ? o->router : "lor", o->seed, &r, msg, sizeof(msg))) {
		fprintf(stderr, "qsteer-sim: %s\n", msg);
		free(cfg);
		return 1;
	}
	/* Setup (trace pre-pass, saturation estimates) is timed apart from the event loop. */
	tc = (double)qs_mono_ns() * 1e-9;
	rc = qs_sim_create(cfg, o->seed, &s, msg, sizeof(msg));
	t0 = (double)qs_mono_ns() * 1e-9;
	if (rc == QS_OK)
		rc = qs_sim_run(s, &r, msg, sizeof(msg));
	t1 = (double)qs_mono_ns() * 1e-9;
	if (rc != QS_OK) {
		fprintf(stderr, "qsteer-sim: %s\n", msg);
		qs_sim_destroy(s);
		qs_sim_router_free(&r);
		free(cfg);
		return 1;
	}
	qs_sim_metrics(s, &m);
	if (o->json)
		printf("{\"events_per_s\": %.0f, \"requests_per_s\": %.0f}\n",
		       (double)m.events / (t1 - t0), (double)m.completed / (t1 - t0));
	else
		printf("%s with %s: %llu events, %llu requests; setup %.2f ms, event loop %.2f ms "
		       "(%.2f M events/s, %.0f requests/s); total %.2f ms wall\n",
		       cfg->name, r.name, (unsigned long long)m.events,
		       (unsigned long long)m.completed, (t0 - tc) * 1e3, (t1 - t0) * 1e3,
		       (double)m.events / (t1 - t0) * 1e-6, (double)m.completed / (t1 - t0),
		       (t1 - tc) * 1e3);
	qs_sim_destroy(s);
	qs_sim_router_free(&r);
	free(cfg);
	return 0;
}

static int
cmd_list(void)
{
	char dir[QS_SIM_PATH_LEN];
	struct dirent **ents;
	int n, i;

	if (qs_sim_scenario_dir(dir, sizeof(dir)) != 0) {
		fprintf(stderr, "qsteer-sim: the scenario directory's path is too long\n");
		return 1;
	}
	n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0) {
		perror(dir);
		return 1;
	}
	for (i = 0; i < n; i++) {
		size_t l = strlen(ents[i]->d_name);

		if (l > 4 && !strcmp(ents[i]->d_name + l - 4, ".ini"))
			printf("%.*s\n", (int)(l - 4), ents[i]->d_name);
		free(ents[i]);
	}
	free(ents);
	return 0;
}

/* --router: run's router, or for compare one more q8:FILE beside the baselines. */
static int
opt_router(const struct qs_opt *opt, const char *v, void *ctx)
{
	struct opts *o = ctx;

	(void)opt;
	if (strcmp(o->cmd, "compare")) {
		o->router = v;
		return 0;
	}
	if (strncmp(v, "q8:", 3)) {
		fprintf(stderr, "qsteer-sim: compare runs every baseline; "
				"--router adds q8:FILE policies\n");
		return -1;
	}
	if (o->n_q8 == MAX_ROUTERS - QS_BASELINE__COUNT)
		return -1;
	o->q8[o->n_q8++] = v;
	return 0;
}

/* Any refusal prints the usage (main), so the rows name no message of their own. */
static int
parse_args(int argc, char **argv, struct opts *o)
{
	const struct qs_opt table[] = {
	    QS_OPT_FLAG("--json", &o->json, 1),
	    QS_OPT_FLAG("--no-quality-mask", &o->no_quality_mask, 1),
	    QS_OPT_HELP_FLAG("-h"),
	    QS_OPT_HELP_FLAG("--help"),
	    QS_OPT_STR("--scenario", &o->scenario),
	    QS_OPT_FN("--router", opt_router),
	    QS_OPT_U64("--seed", &o->seed, 0, UINT64_MAX, NULL),
	    QS_OPT_U32("--seeds", &o->seeds, 0, UINT32_MAX, NULL),
	    QS_OPT_STR("--trace", &o->trace),
	    QS_OPT_DOUBLE("--rate", &o->rate, DBL_TRUE_MIN, INFINITY, NULL),
	    QS_OPT_STR("--requests", &o->requests),
	    QS_OPT_STR("--plot", &o->plot),
	    QS_OPT_END,
	};

	memset(o, 0, sizeof(*o));
	o->seed = 1;
	o->seeds = 5;
	if (argc < 2)
		return -1;
	o->cmd = argv[1];
	return qs_opt_parse("qsteer-sim", table, argc, argv, 2, NULL, o) == QS_OPT_OK ? 0 : -1;
}

int
main(int argc, char **argv)
{
	struct opts o;

	if (parse_args(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(o.cmd, "run"))
		return cmd_run(&o);
	if (!strcmp(o.cmd, "compare"))
		return cmd_compare(&o);
	if (!strcmp(o.cmd, "bench"))
		return cmd_bench(&o);
	if (!strcmp(o.cmd, "list"))
		return cmd_list();
	usage(stderr);
	return 2;
}
