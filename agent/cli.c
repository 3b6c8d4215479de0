/*
 * cli.c - qsteer-agent's and qsteer-agent-bench's command line and configuration
 * file (cli.h): one opt.h table read twice, the [agent], [engine] and [model] keys
 * under the command line's, and the executor the options name.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "cli.h"
#include "qsteer/opt.h"
#include "qsteer/report_key.h"

/* --admission and [agent] admission: fcfs, priority, or fair (priority with tenant
 * fair share) */
static const char *const admission_names[] = {"fcfs", "priority", "fair", NULL};

/* Set the admission flags from one of admission_names; 0 when v is none of them. */
static int
set_admission(struct qs_agent_cfg *c, const char *v)
{
	for (int i = 0; admission_names[i]; i++)
		if (!strcmp(v, admission_names[i])) {
			c->admit_priority = i >= 1;
			c->admit_fair = i == 2;
			return 1;
		}
	return 0;
}
/* A starvation bound far past any request's life (11.6 days) is a typo. */
#define STARVE_MS_MAX 1000000000ull

void
qs_agent_cli_init(struct qs_agent_cli *o, const char *prog, bool bench)
{
	memset(o, 0, sizeof(*o));
	o->prog = prog;
	o->bench = bench;
	snprintf(o->executor, sizeof(o->executor), "model");
	qs_agent_serve_cfg_default(&o->serve);
	qs_agent_cfg_default(&o->agent);
	qs_agent_intake_cfg_default(&o->intake);
	o->scenario = -1;
	o->requests = QS_AGENT_CLI_REQUESTS_UNSET;
#ifdef QSTEER_AGENT_HAVE_CUDA
	qs_agent_cuda_model_default(&o->cuda);
#endif
#ifdef QSTEER_AGENT_HAVE_HTTP
	qs_agent_http_cfg_default(&o->http);
#endif
}

int
qs_agent_cli_load_profile(struct qs_agent_cli *o, char *msg, size_t msglen)
{
	int rc;

	if (!o->profile[0])
		return QS_OK;
	rc = qs_agent_profile_load(o->profile, &o->agent.prof, msg, msglen);
	if (rc == QS_OK)
		o->agent.chunked_prefill = o->agent.prof.chunked_prefill;
	return rc;
}

void
qs_agent_cli_usage(FILE *f)
{
	fprintf(f,
		"usage: qsteer-agent [options]            serve steered requests\n"
		"       qsteer-agent bench [options]      compare batching strategies (runs\n"
		"                                         qsteer-agent-bench [options])\n"
		"       qsteer-agent --profile OUT.ini    measure the GPU, write a sim profile\n"
		"options:\n"
		"  -c, --config FILE        INI config ([agent], [model]; docs/agent.md)\n"
		"  -e, --executor E         model (default), cuda, or http://HOST:PORT: an\n"
		"                           OpenAI-compatible engine (vLLM, SGLang; the\n"
		"                           [engine] section; docs/deploy.md)\n"
		"      --engine-max-inflight N  requests at the engine at once (default 64)\n"
		"      --engine-kv-high-pct N   admit none while its KV usage is >= N%% (95)\n"
		"      --admission A        fcfs (default: the strategy's order), priority:\n"
		"                           highest QRP priority first, lower ones preempted,\n"
		"                           or fair: priority, then the tenant with the\n"
		"                           fewest prefill tokens admitted lately (config:\n"
		"                           admission; not with http://)\n"
		"      --starve-ms N        priority admission's starvation bound: while a\n"
		"                           request has waited N ms, one admission in four is\n"
		"                           the earliest such (0, the default: no bound;\n"
		"                           config: starve_ms)\n"
		"  -p, --sim-profile FILE   iteration-time profile for the model executor\n"
		"  -b, --batching S         fixed[:N] | adaptive[:MS] | coalesce | latency |\n"
		"                           throughput | spec:K | spec-rule | q8:FILE (bench:\n"
		"                           repeatable; 'heuristics' = the built-in ones,\n"
		"                           'speculation' = spec:1,2,4,8 and spec-rule, added\n"
		"                           by default when the profile has a draft model)\n"
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
add_report_to(struct qs_agent_cli *o, const char *v)
{
	if (o->serve.n_report_to >= QS_AGENT_MAX_REPORT_TO) {
		snprintf(o->err, sizeof(o->err), "at most %d report addresses",
			 QS_AGENT_MAX_REPORT_TO);
		return -1;
	}
	snprintf(o->serve.report_to[o->serve.n_report_to++], 128, "%s", v);
	return 0;
}

int
qs_agent_cli_add_batching(struct qs_agent_cli *o, const char *v)
{
	uint32_t n = 0;

	/* "heuristics": every built-in strategy, so a learned policy is compared
	 * with all of them in one run (-b heuristics -b q8:FILE); "speculation": the
	 * speculation ones. Expanded here so the limit sees every strategy they stand
	 * for. */
	if (!strcmp(v, "heuristics") || !strcmp(v, "speculation")) {
		const char *const *set = v[0] == 'h' ? qs_batch_builtin : qs_batch_builtin_spec;

		while (set[n])
			n++;
		if (o->n_batching + n > QS_AGENT_CLI_MAX_STRATS) {
			snprintf(o->err, sizeof(o->err),
				 "at most %d batching strategies ('%s' is %u of them, "
				 "%u already given)",
				 QS_AGENT_CLI_MAX_STRATS, v, n, o->n_batching);
			return -1;
		}
		for (n = 0; set[n]; n++)
			snprintf(o->batching[o->n_batching++], sizeof(o->batching[0]), "%s",
				 set[n]);
		return 0;
	}
	if (o->n_batching >= QS_AGENT_CLI_MAX_STRATS) {
		snprintf(o->err, sizeof(o->err), "at most %d batching strategies",
			 QS_AGENT_CLI_MAX_STRATS);
		return -1;
	}
	snprintf(o->batching[o->n_batching++], sizeof(o->batching[0]), "%s", v);
	return 0;
}

static int
load_report_key(struct qs_agent_cli *o, const char *path)
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
add_pubkeys(struct qs_agent_cli *o, const char *v, bool list)
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
	struct qs_agent_cli *o = user;
	uint64_t x;

	if (!strcmp(sec, "agent")) {
		if (!strcmp(key, "listen"))
			snprintf(o->serve.listen, sizeof(o->serve.listen), "%s", v);
		else if (!strcmp(key, "report_to"))
			return add_report_to(o, v) == 0;
		else if (!strcmp(key, "executor"))
			snprintf(o->executor, sizeof(o->executor), "%s", v);
		else if (!strcmp(key, "batching"))
			return qs_agent_cli_add_batching(o, v) == 0;
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
		else if (!strcmp(key, "admission") && set_admission(&o->agent, v)) {
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
refused(struct qs_agent_cli *o)
{
	fprintf(stderr, "%s: %s\n", o->prog, o->err);
	return -1;
}

/* -c, --config FILE: read in the first pass, so the command line overrides it */
static int
opt_config(const struct qs_opt *opt, const char *v, void *ctx)
{
	struct qs_agent_cli *o = ctx;
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
		fprintf(stderr, "%s: %s:%d:\n", o->prog, v, line);
		if (!o->err[0])
			snprintf(o->err, sizeof(o->err), "not INI");
	}
	return refused(o);
}

/* The repeatable options add to the config file's, in the second pass. */
static int
opt_batching(const struct qs_opt *opt, const char *v, void *ctx)
{
	struct qs_agent_cli *o = ctx;

	(void)opt;
	return o->pass == 2 && qs_agent_cli_add_batching(o, v) ? refused(o) : 0;
}

static int
opt_report_to(const struct qs_opt *opt, const char *v, void *ctx)
{
	struct qs_agent_cli *o = ctx;

	(void)opt;
	return o->pass == 2 && add_report_to(o, v) ? refused(o) : 0;
}

static int
opt_pubkey(const struct qs_opt *opt, const char *v, void *ctx)
{
	struct qs_agent_cli *o = ctx;

	(void)opt;
	return o->pass == 2 && add_pubkeys(o, v, false) ? refused(o) : 0;
}

static int
opt_report_key(const struct qs_opt *opt, const char *v, void *ctx)
{
	struct qs_agent_cli *o = ctx;

	(void)opt;
	return o->pass == 2 && load_report_key(o, v) ? refused(o) : 0;
}

#ifndef QSTEER_AGENT_HAVE_HTTP
static int
opt_no_http(const struct qs_opt *opt, const char *v, void *ctx)
{
	const char *prog = ((const struct qs_agent_cli *)ctx)->prog;

	(void)v;
	fprintf(stderr, "%s: %s: this %s was built without the engine executor (libcurl)\n", prog,
		opt->name, prog);
	return -1;
}
#endif

/*
 * The command line, twice over the one table: the first pass checks every value
 * and reads the config files (-c, in order), the second sets the command line's
 * values over the files' and adds its repeatable options (-b, -r, --pubkey,
 * --report-key-file) to theirs. 0, 1 after --help, -1 refused (said why).
 */
int
qs_agent_cli_parse(struct qs_agent_cli *o, int argc, char **argv, int first)
{
	const char *scn[QS_AGENT_SCN__COUNT + 2];
	unsigned n_args = 0;
	int i;
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
	    QS_OPT_CHOICE("--admission", &o->admission, admission_names, "fcfs, priority or fair",
			  .seen = &o->admission_given),
	    QS_OPT_U64("--starve-ms", &o->starve_ms, 0, STARVE_MS_MAX,
		       "milliseconds, 0 (no bound)..1000000000", .seen = &o->starve_given),
	    /* bench's alone: serving refuses them (bench_only names the last) */
	    QS_OPT_CHOICE("--scenario", &o->scenario, scn,
			  "not a scenario (static, bursty, adversarial, long-context, or all)",
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

	for (i = 0; i < QS_AGENT_SCN__COUNT; i++)
		scn[i] = qs_agent_scn_name((enum qs_agent_scn)i);
	scn[i++] = "all";
	scn[i] = NULL;
	for (o->pass = 1; o->pass <= 2; o->pass++) {
		int rc =
		    qs_opt_parse_or_usage(o->prog, t, argc, argv, first, o, qs_agent_cli_usage);

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
		set_admission(&o->agent, admission_names[o->admission]);
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
			"%s: %s: the starvation bound applies to priority admission "
			"only (--admission priority, or admission = priority in [agent])\n",
			o->prog, o->starve_src);
		return -1;
	}
	if (o->bench_only && !o->bench) {
		fprintf(stderr, "%s: %s applies to bench only (qsteer-agent bench %s ...)\n",
			o->prog, o->bench_only, o->bench_only);
		return -1;
	}
	return 0;
}

int
qs_agent_cli_make_exec(struct qs_agent_cli *o, struct qs_agent_exec *e, char *msg, size_t msglen)
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
			 "executor cuda: this %s was built without CUDA "
			 "(meson -Dcuda=enabled with nvcc installed)",
			 o->prog);
		return QS_E_UNSUPPORTED;
#endif
	}
	snprintf(msg, msglen, "unknown executor '%.200s' (model, cuda or http://HOST:PORT)",
		 o->executor);
	return QS_E_ARG;
}
