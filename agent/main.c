/*
 * main.c - qsteer-agent: the GPU-host companion program. Reads a config, builds
 * the intake, the strategy and the executor, and runs the UDP loop; `bench`
 * compares batching strategies; `--profile` measures the GPU and writes a
 * simulator profile. Everything it does is in libqsteer-agent; this file parses
 * options (one opt.h table, the config file's keys under the command line's) and
 * prints.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "qsteer/agent_bench.h"
#include "qsteer/opt.h"
#include "qsteer/policy.h"
#include "qsteer/report_key.h"
#include "qsteer/stop.h"
#ifdef QSTEER_AGENT_HAVE_CUDA
#include "qsteer/agent_cuda.h"
#endif
#ifdef QSTEER_AGENT_HAVE_HTTP
#include "qsteer/agent_http.h"
#endif

#define MAX_STRATS 16

struct opts {
	char executor[256]; /* model, cuda or http://HOST:PORT */
	char batching[MAX_STRATS][1100];
	uint32_t n_batching;
	char profile[1024];
	char profile_out[1024];
	struct qs_q8_keyset keys; /* policy_pubkey and --pubkey: q8: files must be signed */
	struct qs_agent_serve_cfg serve;
	struct qs_agent_cfg agent;
	struct qs_agent_intake_cfg intake;
	double duration_s;
	uint64_t max_completed;
	/* bench */
	bool bench;
	int json;
	int scenario;	   /* -1: all */
	uint32_t requests; /* REQUESTS_UNSET, or --requests (0: the file's own count) */
	double load;
	uint64_t seed;
	char scenario_dir[QS_SIM_PATH_LEN];
	const char *bench_only; /* a bench option given: refused unless benching */
	/* the command line's values of fields the config file also sets, and whether
	 * given (opt.h's seen) */
	uint32_t backend_id;
	uint64_t report_interval_ms;
	const char *backend_id_given, *report_interval_given;
	int admission; /* index in admission_names */
	uint64_t starve_ms;
	const char *admission_given, *starve_given;
	/* where the admission and starvation bound in effect were set, for refusals:
	 * the option as given, or the config file's key */
	char admission_src[64], starve_src[64];
	int pass; /* parse_args: 1 reads the config files, 2 adds the repeatable options */
#ifdef QSTEER_AGENT_HAVE_CUDA
	struct qs_agent_cuda_model cuda;
#endif
#ifdef QSTEER_AGENT_HAVE_HTTP
	struct qs_agent_http_cfg http; /* the engine executor ([engine], --engine-*) */
#endif
	char err[512];
};

#define REQUESTS_UNSET UINT32_MAX

/* --admission and [agent] admission; the index is admit_priority */
static const char *const admission_names[] = {"fcfs", "priority", NULL};
/* A starvation bound far past any request's life (11.6 days) is a typo. */
#define STARVE_MS_MAX 1000000000ull

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: qsteer-agent [options]            serve steered requests\n"
		"       qsteer-agent bench [options]      compare batching strategies\n"
		"       qsteer-agent --profile OUT.ini    measure the GPU, write a sim profile\n"
		"options:\n"
		"  -c, --config FILE        INI config ([agent], [model]; docs/agent.md)\n"
		"  -e, --executor E         model (default), cuda, or http://HOST:PORT: an\n"
		"                           OpenAI-compatible engine (vLLM, SGLang; the\n"
		"                           [engine] section; docs/deploy.md)\n"
		"      --engine-max-inflight N  requests at the engine at once (default 64)\n"
		"      --engine-kv-high-pct N   admit none while its KV usage is >= N%% (95)\n"
		"      --admission A        fcfs (default: the strategy's order) or priority:\n"
		"                           highest QRP priority first, lower ones preempted\n"
		"                           (config: admission; not with http://)\n"
		"      --starve-ms N        priority admission's starvation bound: while a\n"
		"                           request has waited N ms, one admission in four is\n"
		"                           the earliest such (0, the default: no bound;\n"
		"                           config: starve_ms)\n"
		"  -p, --sim-profile FILE   iteration-time profile for the model executor\n"
		"  -b, --batching S         fixed[:N] | adaptive[:MS] | coalesce | latency |\n"
		"                           throughput | q8:FILE (bench: repeatable;\n"
		"                           'heuristics' = all of the built-in ones)\n"
		"  -l, --listen ADDR        HOST:PORT for requests (default 0.0.0.0:%d)\n"
		"  -r, --report-to ADDR     dataplane HOST:PORT for reports (repeatable)\n"
		"      --backend-id N       id carried in reports\n"
		"      --report-interval-ms N (default 5)\n"
		"      --report-key-file F  sign reports with this key (32 hex digits, mode\n"
		"                           600; config: report_key_file; docs/wire.md)\n"
		"      --duration S         stop after S seconds\n"
		"      --max-requests N     stop after N completions\n"
		"      --pubkey FILE        q8: policies must be signed with this Ed25519 key\n"
		"                           (repeatable, for rotation; config: policy_pubkey)\n"
		"bench: --scenario static|bursty|adversarial|all (the simulator's scenario\n"
		"       files, on one backend with this profile), --scenario-dir DIR (default\n"
		"       $QSTEER_SCENARIO_DIR or the source tree's sim/scenarios), --requests N\n"
		"       (default 2000; 0: the file's own), --load X (overrides the scenario's),\n"
		"       --seed N, --json\n",
		QS_QRP_PORT);
}

static int
add_report_to(struct opts *o, const char *v)
{
	if (o->serve.n_report_to >= QS_AGENT_MAX_REPORT_TO) {
		snprintf(o->err, sizeof(o->err), "at most %d report addresses",
			 QS_AGENT_MAX_REPORT_TO);
		return -1;
	}
	snprintf(o->serve.report_to[o->serve.n_report_to++], 128, "%s", v);
	return 0;
}

static int
add_batching(struct opts *o, const char *v)
{
	uint32_t n = 0;

	/* "heuristics": every built-in strategy, so a learned policy is compared
	 * with all of them in one run (-b heuristics -b q8:FILE). Expanded here so
	 * the limit sees every strategy it stands for. */
	if (!strcmp(v, "heuristics")) {
		while (qs_batch_builtin[n])
			n++;
		if (o->n_batching + n > MAX_STRATS) {
			snprintf(o->err, sizeof(o->err),
				 "at most %d batching strategies ('heuristics' is %u of them, "
				 "%u already given)",
				 MAX_STRATS, n, o->n_batching);
			return -1;
		}
		for (n = 0; qs_batch_builtin[n]; n++)
			snprintf(o->batching[o->n_batching++], sizeof(o->batching[0]), "%s",
				 qs_batch_builtin[n]);
		return 0;
	}
	if (o->n_batching >= MAX_STRATS) {
		snprintf(o->err, sizeof(o->err), "at most %d batching strategies", MAX_STRATS);
		return -1;
	}
	snprintf(o->batching[o->n_batching++], sizeof(o->batching[0]), "%s", v);
	return 0;
}

static int
load_report_key(struct opts *o, const char *path)
{
	char msg[512];

	if (qs_report_key_load(path, &o->serve.report_key, msg, sizeof(msg)) != QS_OK) {
		snprintf(o->err, sizeof(o->err), "%s", msg);
		return -1;
	}
	return 0;
}

/* One key file (--pubkey) or a comma-separated list (policy_pubkey); keys add up. */
static int
add_pubkeys(struct opts *o, const char *v, bool list)
{
	char msg[sizeof(o->err) - 16];
	int rc = list ? qs_q8_keyset_add_list(&o->keys, v, msg, sizeof(msg))
		      : qs_q8_keyset_add_file(&o->keys, v, msg, sizeof(msg));

	if (rc != QS_OK) {
		snprintf(o->err, sizeof(o->err), "%s: %s", list ? "policy_pubkey" : "--pubkey",
			 msg);
		return -1;
	}
	return 0;
}

static int
on_ini(void *user, const char *sec, const char *key, const char *v)
{
	struct opts *o = user;
	uint64_t x;

	if (!strcmp(sec, "agent")) {
		if (!strcmp(key, "listen"))
			snprintf(o->serve.listen, sizeof(o->serve.listen), "%s", v);
		else if (!strcmp(key, "report_to"))
			return add_report_to(o, v) == 0;
		else if (!strcmp(key, "executor"))
			snprintf(o->executor, sizeof(o->executor), "%s", v);
		else if (!strcmp(key, "batching"))
			return add_batching(o, v) == 0;
		else if (!strcmp(key, "profile"))
			snprintf(o->profile, sizeof(o->profile), "%s", v);
		else if (!strcmp(key, "policy_pubkey"))
			return add_pubkeys(o, v, true) == 0;
		else if (!strcmp(key, "backend_id") && !qs_opt_u64_in(v, 0, 65535, &x))
			o->agent.backend_id = (uint16_t)x;
		else if (!strcmp(key, "report_interval_ms") && !qs_opt_u64_in(v, 1, 60000, &x))
			o->serve.report_interval_ns = x * 1000000ull;
		else if (!strcmp(key, "report_key_file"))
			return load_report_key(o, v) == 0;
		else if (!strcmp(key, "max_slots") && !qs_opt_u64_in(v, 1, 1u << 20, &x))
			o->agent.max_slots = (uint32_t)x;
		else if (!strcmp(key, "reassembly_table") && !qs_opt_u64_in(v, 1, 65536, &x))
			o->intake.table_size = (uint32_t)x;
		else if (!strcmp(key, "reassembly_max_age_ms") && !qs_opt_u64_in(v, 1, 600000, &x))
			o->intake.max_age_ns = x * 1000000ull;
		else if (!strcmp(key, "admission") &&
			 (!strcmp(v, admission_names[0]) || !strcmp(v, admission_names[1]))) {
			o->agent.admit_priority = !strcmp(v, admission_names[1]);
			snprintf(o->admission_src, sizeof(o->admission_src),
				 "[agent] admission = %s", v);
		} else if (!strcmp(key, "starve_ms") && !qs_opt_u64_in(v, 0, STARVE_MS_MAX, &x)) {
			o->agent.starve_ns = x * 1000000ull;
			snprintf(o->starve_src, sizeof(o->starve_src), "[agent] starve_ms = %s", v);
		} else
			goto bad;
		return 1;
	}
#ifdef QSTEER_AGENT_HAVE_HTTP
	if (!strcmp(sec, "engine")) {
		if (!strcmp(key, "max_inflight") && !qs_opt_u64_in(v, 1, 1u << 16, &x))
			o->http.max_inflight = (uint32_t)x;
		else if (!strcmp(key, "max_queue") && !qs_opt_u64_in(v, 1, 1u << 20, &x))
			o->http.max_queue = (uint32_t)x;
		else if (!strcmp(key, "kv_high_pct") && !qs_opt_u64_in(v, 1, 100, &x))
			o->http.kv_high_pct = (uint32_t)x;
		else if (!strcmp(key, "kv_total") && !qs_opt_u64_in(v, 1, 1u << 30, &x))
			o->http.kv_total = (uint32_t)x;
		else if (!strcmp(key, "scrape_interval_ms") && !qs_opt_u64_in(v, 0, 60000, &x))
			o->http.scrape_interval_ns = x * 1000000ull;
		else if (!strcmp(key, "timeout_s") && !qs_opt_u64_in(v, 1, 86400, &x))
			o->http.timeout_ns = x * 1000000000ull;
		else
			goto bad;
		return 1;
	}
#endif
#ifdef QSTEER_AGENT_HAVE_CUDA
	if (!strcmp(sec, "model")) {
		uint32_t *f = !strcmp(key, "layers")	   ? &o->cuda.layers
			      : !strcmp(key, "hidden")	   ? &o->cuda.hidden
			      : !strcmp(key, "heads")	   ? &o->cuda.heads
			      : !strcmp(key, "ffn")	   ? &o->cuda.ffn
			      : !strcmp(key, "kv_blocks")  ? &o->cuda.kv_blocks
			      : !strcmp(key, "max_seqs")   ? &o->cuda.max_seqs
			      : !strcmp(key, "max_tokens") ? &o->cuda.max_tokens
							   : NULL;

		if (!f || qs_opt_u64_in(v, 1, 1u << 24, &x))
			goto bad;
		*f = (uint32_t)x;
		return 1;
	}
#else
	if (!strcmp(sec, "model"))
		return 1; /* the cuda executor's section; ignored in a build without it */
#endif
bad:
	snprintf(o->err, sizeof(o->err), "[%s] %s = '%s': unknown key or bad value", sec, key, v);
	return 0;
}

/* ---- the command line ------------------------------------------------------------- */

/* An option's action failed: its message (o->err), refused. */
static int
refused(struct opts *o)
{
	fprintf(stderr, "qsteer-agent: %s\n", o->err);
	return -1;
}

/* -c, --config FILE: read in the first pass, so the command line overrides it */
static int
opt_config(const struct qs_opt *opt, const char *v, void *ctx)
{
	struct opts *o = ctx;
	int line;

	(void)opt;
	if (o->pass != 1)
		return 0;
	line = ini_parse(v, on_ini, o);
	if (line == 0)
		return 0;
	if (line < 0) {
		snprintf(o->err, sizeof(o->err), "%s: cannot open", v);
	} else {
		/* on_ini already said what; add where. */
		fprintf(stderr, "qsteer-agent: %s:%d:\n", v, line);
		if (!o->err[0])
			snprintf(o->err, sizeof(o->err), "not INI");
	}
	return refused(o);
}

/* The repeatable options add to the config file's, in the second pass. */
static int
opt_batching(const struct qs_opt *opt, const char *v, void *ctx)
{
	struct opts *o = ctx;

	(void)opt;
	return o->pass == 2 && add_batching(o, v) ? refused(o) : 0;
}

static int
opt_report_to(const struct qs_opt *opt, const char *v, void *ctx)
{
	struct opts *o = ctx;

	(void)opt;
	return o->pass == 2 && add_report_to(o, v) ? refused(o) : 0;
}

static int
opt_pubkey(const struct qs_opt *opt, const char *v, void *ctx)
{
	struct opts *o = ctx;

	(void)opt;
	return o->pass == 2 && add_pubkeys(o, v, false) ? refused(o) : 0;
}

static int
opt_report_key(const struct qs_opt *opt, const char *v, void *ctx)
{
	struct opts *o = ctx;

	(void)opt;
	return o->pass == 2 && load_report_key(o, v) ? refused(o) : 0;
}

#ifndef QSTEER_AGENT_HAVE_HTTP
static int
opt_no_http(const struct qs_opt *opt, const char *v, void *ctx)
{
	(void)v;
	(void)ctx;
	fprintf(stderr,
		"qsteer-agent: %s: this qsteer-agent was built without the engine "
		"executor (libcurl)\n",
		opt->name);
	return -1;
}
#endif

/*
 * The command line, twice over the one table: the first pass checks every value
 * and reads the config files (-c, in order), the second sets the command line's
 * values over the files' and adds its repeatable options (-b, -r, --pubkey,
 * --report-key-file) to theirs. 0, 1 after --help, -1 refused (said why).
 */
static int
parse_args(int argc, char **argv, struct opts *o)
{
	const char *scn[QS_AGENT_SCN__COUNT + 2];
	unsigned n_args = 0;
	int first = 1, i;
	const struct qs_opt t[] = {
	    QS_OPT_FN("-c", opt_config),
	    QS_OPT_FN("--config", opt_config),
	    QS_OPT_BUF("-e", o->executor, "too long"),
	    QS_OPT_BUF("--executor", o->executor, "too long"),
	    QS_OPT_BUF("-p", o->profile, "too long a path"),
	    QS_OPT_BUF("--sim-profile", o->profile, "too long a path"),
	    QS_OPT_FN("-b", opt_batching),
	    QS_OPT_FN("--batching", opt_batching),
	    QS_OPT_BUF("-l", o->serve.listen, "too long"),
	    QS_OPT_BUF("--listen", o->serve.listen, "too long"),
	    QS_OPT_FN("-r", opt_report_to),
	    QS_OPT_FN("--report-to", opt_report_to),
	    QS_OPT_U32("--backend-id", &o->backend_id, 0, 65535, "an id, 0..65535",
		       .seen = &o->backend_id_given),
	    QS_OPT_U64("--report-interval-ms", &o->report_interval_ms, 1, 60000,
		       "milliseconds, 1..60000", .seen = &o->report_interval_given),
	    QS_OPT_DOUBLE("--duration", &o->duration_s, DBL_TRUE_MIN, 1e9,
			  "seconds, above 0, up to 1e9"),
	    QS_OPT_U64("--max-requests", &o->max_completed, 1, UINT64_MAX, "a count, 1 or more"),
	    QS_OPT_BUF("--profile", o->profile_out, "too long a path"),
	    QS_OPT_FN("--pubkey", opt_pubkey),
	    QS_OPT_FN("--report-key-file", opt_report_key),
#ifdef QSTEER_AGENT_HAVE_HTTP
	    QS_OPT_U32("--engine-max-inflight", &o->http.max_inflight, 1, 1u << 16,
		       "a count, 1..65536"),
	    QS_OPT_U32("--engine-kv-high-pct", &o->http.kv_high_pct, 1, 100,
		       "a percentage, 1..100"),
#else
	    QS_OPT_FN("--engine-max-inflight", opt_no_http),
	    QS_OPT_FN("--engine-kv-high-pct", opt_no_http),
#endif
	    QS_OPT_CHOICE("--admission", &o->admission, admission_names, "fcfs or priority",
			  .seen = &o->admission_given),
	    QS_OPT_U64("--starve-ms", &o->starve_ms, 0, STARVE_MS_MAX,
		       "milliseconds, 0 (no bound)..1000000000", .seen = &o->starve_given),
	    /* bench's alone: serving refuses them (bench_only names the last) */
	    QS_OPT_CHOICE("--scenario", &o->scenario, scn,
			  "not a scenario (static, bursty, adversarial, or all)",
			  .seen = &o->bench_only),
	    QS_OPT_U32("--requests", &o->requests, 0, 10000000, "a count, 0..10000000",
		       .seen = &o->bench_only),
	    QS_OPT_DOUBLE("--load", &o->load, DBL_TRUE_MIN, nextafter(100, 0),
			  "a load, above 0 and below 100", .seen = &o->bench_only),
	    QS_OPT_U64("--seed", &o->seed, 0, UINT64_MAX, "not a count (a decimal integer)",
		       .seen = &o->bench_only),
	    QS_OPT_FLAG("--json", &o->json, 1, .seen = &o->bench_only),
	    QS_OPT_BUF("--scenario-dir", o->scenario_dir, "empty or too long a path",
		       .seen = &o->bench_only),
	    QS_OPT_HELP_FLAG("-h"),
	    QS_OPT_HELP_FLAG("--help"),
	    QS_OPT_ARGS(NULL, &n_args, 0, 0),
	    QS_OPT_END,
	};

	if (argc > 1 && !strcmp(argv[1], "bench")) {
		o->bench = true;
		first = 2;
	}
	for (i = 0; i < QS_AGENT_SCN__COUNT; i++)
		scn[i] = qs_agent_scn_name((enum qs_agent_scn)i);
	scn[i++] = "all";
	scn[i] = NULL;
	for (o->pass = 1; o->pass <= 2; o->pass++) {
		int rc = qs_opt_parse_or_usage("qsteer-agent", t, argc, argv, first, o, usage);

		if (rc >= 0)
			return rc == 0 ? 1 : -1;
	}
	if (o->scenario == QS_AGENT_SCN__COUNT)
		o->scenario = -1; /* all */
	if (o->backend_id_given)
		o->agent.backend_id = (uint16_t)o->backend_id;
	if (o->report_interval_given)
		o->serve.report_interval_ns = o->report_interval_ms * 1000000ull;
	if (o->admission_given) {
		o->agent.admit_priority = o->admission == 1;
		snprintf(o->admission_src, sizeof(o->admission_src), "--admission %s",
			 admission_names[o->admission]);
	}
	if (o->starve_given) {
		o->agent.starve_ns = o->starve_ms * 1000000ull;
		snprintf(o->starve_src, sizeof(o->starve_src), "--starve-ms %llu",
			 (unsigned long long)o->starve_ms);
	}
	/* FCFS never looks at how long a request waited: a bound there would be
	 * silently ignored, so it is more likely a forgotten --admission priority. */
	if (o->agent.starve_ns && !o->agent.admit_priority) {
		fprintf(stderr,
			"qsteer-agent: %s: the starvation bound applies to priority admission "
			"only (--admission priority, or admission = priority in [agent])\n",
			o->starve_src);
		return -1;
	}
	if (o->bench_only && !o->bench) {
		fprintf(stderr,
			"qsteer-agent: %s applies to bench only (qsteer-agent bench %s ...)\n",
			o->bench_only, o->bench_only);
		return -1;
	}
	return 0;
}

static int
make_exec(struct opts *o, struct qs_agent_exec *e, char *msg, size_t msglen)
{
	if (!strcmp(o->executor, "model"))
		return qs_agent_exec_model(&o->agent.prof, e, msg, msglen);
	if (!strcmp(o->executor, "cuda")) {
#ifdef QSTEER_AGENT_HAVE_CUDA
		o->cuda.kv_blocks = o->agent.prof.kv_blocks;
		o->cuda.max_seqs = o->agent.prof.max_seqs;
		o->cuda.max_tokens = o->agent.prof.max_tokens;
		return qs_agent_exec_cuda(&o->cuda, e, msg, msglen);
#else
		snprintf(msg, msglen,
			 "executor cuda: this qsteer-agent was built without CUDA "
			 "(meson -Dcuda=enabled with nvcc installed)");
		return QS_E_UNSUPPORTED;
#endif
	}
	snprintf(msg, msglen, "unknown executor '%.200s' (model, cuda or http://HOST:PORT)",
		 o->executor);
	return QS_E_ARG;
}

static void
print_result(const struct opts *o, const char *scn, const struct qs_agent_bench_result *r,
	     bool first)
{
	if (o->json) {
		printf("%s{\"scenario\":\"%s\",\"executor\":\"%s\",\"strategy\":\"%s\","
		       "\"completed\":%llu,\"slo_met\":%llu,\"slo_attainment\":%.4f,"
		       "\"goodput_rps\":%.3f,\"throughput_tps\":%.1f,\"ttft_p50_ms\":%.2f,"
		       "\"ttft_p99_ms\":%.2f,\"tpot_p50_ms\":%.2f,\"tpot_p99_ms\":%.2f,"
		       "\"preemptions\":%llu,\"iterations\":%llu,\"makespan_s\":%.3f,"
		       "\"requests\":%u,\"load\":%.3f,\"rate_rps\":%.4f}",
		       first ? "" : ",\n", scn, o->executor, r->strategy,
		       (unsigned long long)r->completed, (unsigned long long)r->slo_met,
		       r->slo_attainment, r->goodput_rps, r->throughput_tps, r->ttft_p50_ms,
		       r->ttft_p99_ms, r->tpot_p50_ms, r->tpot_p99_ms,
		       (unsigned long long)r->preemptions, (unsigned long long)r->iterations,
		       r->makespan_s, r->requests, r->load, r->rate_rps);
		return;
	}
	printf("%-12s %-18s %9.3f %7.1f%% %11.1f %11.1f %10.1f %8llu\n", scn, r->strategy,
	       r->goodput_rps, 100 * r->slo_attainment, r->ttft_p50_ms, r->ttft_p99_ms,
	       r->tpot_p99_ms, (unsigned long long)r->preemptions);
}

static int
run_bench(struct opts *o, char *msg, size_t msglen)
{
	int s, lo = o->scenario < 0 ? 0 : o->scenario;
	int hi = o->scenario < 0 ? QS_AGENT_SCN__COUNT - 1 : o->scenario;
	uint32_t k;
	bool first = true;

	if (o->n_batching == 0 && add_batching(o, "heuristics")) {
		snprintf(msg, msglen, "%s", o->err);
		return QS_E_ARG;
	}
	if (o->json)
		printf("[\n");
	else
		printf("%-12s %-18s %9s %8s %11s %11s %10s %8s\n", "scenario", "strategy",
		       "goodput/s", "SLO", "TTFT p50ms", "TTFT p99ms", "TPOT p99ms", "preempt");
	for (s = lo; s <= hi; s++) {
		struct qs_agent_bench_cfg bc;
		struct qs_agent_bench_arrivals arr;
		int rc;

		qs_agent_bench_cfg_default(&bc, s);
		if (o->requests != REQUESTS_UNSET)
			bc.requests = o->requests;
		if (o->load > 0)
			bc.load = o->load;
		bc.seed = o->seed;
		snprintf(bc.scenario_dir, sizeof(bc.scenario_dir), "%s", o->scenario_dir);
		/* One stream per scenario: every strategy sees the same requests, and the
		 * simulator's capacity probes run once. */
		rc = qs_agent_bench_arrivals(&bc, &o->agent, &arr, msg, msglen);
		if (rc != QS_OK)
			return rc;
		bc.arrivals = &arr;
		if (!o->json)
			printf("# %s: %s, %u requests, load %.2f = %.3f req/s on %s\n",
			       qs_agent_scn_name(s), arr.path, arr.n, arr.load, arr.rate_rps,
			       o->agent.prof.name[0] ? o->agent.prof.name : "the profile");
		for (k = 0; k < o->n_batching; k++) {
			struct qs_batch_strategy st;
			struct qs_agent_exec ex;
			struct qs_agent_bench_result r;

			rc = qs_batch_parse_signed(o->batching[k], &o->keys, &st, msg, msglen);
			if (rc != QS_OK)
				break;
			rc = make_exec(o, &ex, msg, msglen);
			if (rc == QS_OK) {
				rc = qs_agent_bench_run(&bc, &o->agent, &st, &ex, &r, msg, msglen);
				qs_agent_exec_destroy(&ex);
			}
			qs_batch_free(&st);
			if (rc != QS_OK)
				break;
			print_result(o, qs_agent_scn_name(s), &r, first);
			first = false;
			fflush(stdout);
		}
		qs_agent_bench_arrivals_free(&arr);
		if (rc != QS_OK)
			return rc;
	}
	if (o->json)
		printf("\n]\n");
	return QS_OK;
}

static int
run_profile(struct opts *o, char *msg, size_t msglen)
{
#ifdef QSTEER_AGENT_HAVE_CUDA
	struct qs_sim_profile p = o->agent.prof;
	double rms = 0;
	uint32_t n = 0;
	FILE *f;
	int rc;

	o->cuda.kv_blocks = p.kv_blocks;
	o->cuda.max_seqs = p.max_seqs;
	o->cuda.max_tokens = p.max_tokens;
	rc = qs_agent_cuda_profile(&o->cuda, &p, &rms, &n, msg, msglen);
	if (rc != QS_OK)
		return rc;
	f = fopen(o->profile_out, "w");
	if (!f) {
		snprintf(msg, msglen, "%.900s: %s", o->profile_out, strerror(errno));
		return QS_E_IO;
	}
	rc = qs_agent_profile_write(f, &p);
	if (fclose(f) || rc != QS_OK) {
		snprintf(msg, msglen, "%.900s: write failed", o->profile_out);
		return QS_E_IO;
	}
	fprintf(stderr, "qsteer-agent: %u samples, rms residual %.1f us, wrote %s\n", n, rms,
		o->profile_out);
	return QS_OK;
#else
	(void)o;
	snprintf(msg, msglen, "--profile: this qsteer-agent was built without CUDA");
	return QS_E_UNSUPPORTED;
#endif
}

/* --executor http://HOST:PORT: the engine batches on its own, so no strategy and
 * no iterations; admission control in front of it instead (agent_http.h). */
static int
serve_http(struct opts *o, char *msg, size_t msglen)
{
#ifdef QSTEER_AGENT_HAVE_HTTP
	struct qs_agent_http_stats hs;
	int rc;

	snprintf(o->http.engine, sizeof(o->http.engine), "%s", o->executor);
	o->serve.stop = qs_stop_on_signals();
	signal(SIGPIPE, SIG_IGN);
	o->serve.max_run_ns = (uint64_t)(o->duration_s * 1e9);
	fprintf(stderr,
		"qsteer-agent: engine executor %s, at most %u in flight, "
		"listening on %s, reporting to %u dataplane(s)\n",
		o->http.engine, o->http.max_inflight, o->serve.listen, o->serve.n_report_to);
	rc = qs_agent_http_serve(&o->http, &o->agent, &o->intake, &o->serve, &hs, msg, msglen);
	fprintf(stderr,
		"qsteer-agent: %llu datagrams, %llu requests (%llu rejected), %llu "
		"completed, %llu cancelled, %llu engine errors, %llu scrapes (%llu "
		"failed), %llu reports, %llu responses\n",
		(unsigned long long)hs.datagrams, (unsigned long long)hs.requests,
		(unsigned long long)hs.rejected, (unsigned long long)hs.completed,
		(unsigned long long)hs.cancelled, (unsigned long long)hs.engine_errors,
		(unsigned long long)hs.scrapes, (unsigned long long)hs.scrape_errors,
		(unsigned long long)hs.reports_sent, (unsigned long long)hs.responses_sent);
	return rc;
#else
	snprintf(msg, msglen,
		 "executor %.200s: this qsteer-agent was built without "
		 "the engine executor (libcurl4-openssl-dev; meson -Dhttp=enabled)",
		 o->executor);
	return QS_E_UNSUPPORTED;
#endif
}

int
main(int argc, char **argv)
{
	static struct opts o;
	char msg[1024] = "";
	struct qs_batch_strategy st;
	struct qs_agent_exec ex;
	struct qs_agent *a = NULL;
	struct qs_agent_intake *in = NULL;
	struct qs_agent_serve_stats ss;
	char adm[96] = ""; /* the admission rule, said at start when not the default */
	int rc;

	snprintf(o.executor, sizeof(o.executor), "model");
	qs_agent_serve_cfg_default(&o.serve);
	qs_agent_cfg_default(&o.agent);
	qs_agent_intake_cfg_default(&o.intake);
	o.scenario = -1;
	o.requests = REQUESTS_UNSET;
#ifdef QSTEER_AGENT_HAVE_CUDA
	qs_agent_cuda_model_default(&o.cuda);
#endif
#ifdef QSTEER_AGENT_HAVE_HTTP
	qs_agent_http_cfg_default(&o.http);
#endif
	rc = parse_args(argc, argv, &o);
	if (rc)
		return rc > 0 ? 0 : 2;
	if (o.profile[0]) {
		rc = qs_agent_profile_load(o.profile, &o.agent.prof, msg, sizeof(msg));
		if (rc != QS_OK)
			goto fail;
		o.agent.chunked_prefill = o.agent.prof.chunked_prefill;
	}
	if (o.profile_out[0]) {
		rc = run_profile(&o, msg, sizeof(msg));
		goto done;
	}
	if (o.bench) {
		rc = run_bench(&o, msg, sizeof(msg));
		goto done;
	}
	if (o.n_batching > 1) {
		fprintf(stderr, "qsteer-agent: one --batching when serving (several, or "
				"'heuristics', are for bench)\n");
		return 2;
	}
	if (!strncmp(o.executor, "http://", 7)) {
		/* The engine schedules what it is given; the agent in front only caps
		 * what is in flight (exec_http.c), so priority admission has no scheduler
		 * to apply to. */
		if (o.agent.admit_priority) {
			fprintf(
			    stderr,
			    "qsteer-agent: %s: priority admission is the agent's own "
			    "scheduler's; with --executor %s the engine schedules (its admission "
			    "already orders by SLO class, then priority; docs/deploy.md)\n",
			    o.admission_src, o.executor);
			return 2;
		}
		rc = serve_http(&o, msg, sizeof(msg));
		goto done;
	}
	rc = qs_batch_parse_signed(o.n_batching ? o.batching[0] : "fixed", &o.keys, &st, msg,
				   sizeof(msg));
	if (rc != QS_OK)
		goto fail;
	rc = make_exec(&o, &ex, msg, sizeof(msg));
	if (rc != QS_OK) {
		qs_batch_free(&st);
		goto fail;
	}
	rc = qs_agent_create(&o.agent, &st, &ex, &a, msg, sizeof(msg));
	if (rc == QS_OK)
		rc = qs_agent_intake_create(&o.intake, &in, msg, sizeof(msg));
	if (rc == QS_OK) {
		o.serve.stop = qs_stop_on_signals();
		o.serve.max_run_ns = (uint64_t)(o.duration_s * 1e9);
		o.serve.max_completed = o.max_completed;
		if (o.agent.admit_priority && o.agent.starve_ns)
			snprintf(adm, sizeof(adm),
				 ", priority admission (starvation bound %llu ms)",
				 (unsigned long long)(o.agent.starve_ns / 1000000ull));
		else if (o.agent.admit_priority)
			snprintf(adm, sizeof(adm), ", priority admission (no starvation bound)");
		fprintf(stderr,
			"qsteer-agent: %s executor, %s batching%s, listening on %s, "
			"reporting to %u dataplane(s)\n",
			ex.name, st.name, adm, o.serve.listen, o.serve.n_report_to);
		rc = qs_agent_serve(a, in, &o.serve, &ss, msg, sizeof(msg));
	}
	if (a && in) {
		const struct qs_agent_stats *s = qs_agent_stats(a);
		const struct qs_agent_intake_stats *is = qs_agent_intake_stats(in);

		fprintf(stderr,
			"qsteer-agent: %llu datagrams, %llu requests (%llu rejected), %llu "
			"completed, %llu preemptions, %llu iterations, %llu dropped, %llu reports, "
			"%llu responses\n",
			(unsigned long long)ss.datagrams, (unsigned long long)s->received,
			(unsigned long long)s->rejected, (unsigned long long)s->completed,
			(unsigned long long)s->preemptions, (unsigned long long)s->iterations,
			(unsigned long long)is->dropped, (unsigned long long)ss.reports_sent,
			(unsigned long long)ss.responses_sent);
	}
	qs_agent_intake_destroy(in);
	qs_agent_destroy(a);
	qs_agent_exec_destroy(&ex);
	qs_batch_free(&st);
done:
	if (rc == QS_OK)
		return 0;
fail:
	fprintf(stderr, "qsteer-agent: %s\n", msg);
	return 1;
}
