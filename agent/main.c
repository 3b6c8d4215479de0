/*
 * main.c - qsteer-agent: the GPU-host companion program. Reads a config, builds
 * the intake, the strategy and the executor, and runs the UDP loop; `bench`
 * compares batching strategies; `--profile` measures the GPU and writes a
 * simulator profile. Everything it does is in libqsteer-agent; this file parses
 * options and prints.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "qsteer/agent_bench.h"
#include "qsteer/policy.h"
#include "qsteer/report_key.h"
#ifdef QSTEER_AGENT_HAVE_CUDA
#include "qsteer/agent_cuda.h"
#endif

#define MAX_STRATS 16

struct opts {
	char executor[16];
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
	bool bench, json;
	int scenario; /* -1: all */
	uint32_t requests;
	bool requests_set; /* --requests 0: the scenario file's own count / duration */
	double load;
	uint64_t seed;
	char scenario_dir[QS_SIM_PATH_LEN];
	const char *bench_only; /* a bench option given: refused unless benching */
#ifdef QSTEER_AGENT_HAVE_CUDA
	struct qs_agent_cuda_model cuda;
#endif
	char err[512];
};

static volatile int g_stop;

static void
on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: qsteer-agent [options]            serve steered requests\n"
		"       qsteer-agent bench [options]      compare batching strategies\n"
		"       qsteer-agent --profile OUT.ini    measure the GPU, write a sim profile\n"
		"options:\n"
		"  -c, --config FILE        INI config ([agent], [model]; docs/agent.md)\n"
		"  -e, --executor E         model (default) or cuda\n"
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
				 "%u already given)", MAX_STRATS, n, o->n_batching);
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
		snprintf(o->err, sizeof(o->err), "%s: %s", list ? "policy_pubkey" : "--pubkey", msg);
		return -1;
	}
	return 0;
}

static int
num_u64(const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long x;

	errno = 0;
	x = strtoull(v, &end, 10);
	if (!*v || *end || errno || x < lo || x > hi)
		return -1;
	*out = x;
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
		else if (!strcmp(key, "backend_id") && !num_u64(v, 0, 65535, &x))
			o->agent.backend_id = (uint16_t)x;
		else if (!strcmp(key, "report_interval_ms") && !num_u64(v, 1, 60000, &x))
			o->serve.report_interval_ns = x * 1000000ull;
		else if (!strcmp(key, "report_key_file"))
			return load_report_key(o, v) == 0;
		else if (!strcmp(key, "max_slots") && !num_u64(v, 1, 1u << 20, &x))
			o->agent.max_slots = (uint32_t)x;
		else if (!strcmp(key, "reassembly_table") && !num_u64(v, 1, 65536, &x))
			o->intake.table_size = (uint32_t)x;
		else if (!strcmp(key, "reassembly_max_age_ms") && !num_u64(v, 1, 600000, &x))
			o->intake.max_age_ns = x * 1000000ull;
		else
			goto bad;
		return 1;
	}
#ifdef QSTEER_AGENT_HAVE_CUDA
	if (!strcmp(sec, "model")) {
		uint32_t *f = !strcmp(key, "layers") ? &o->cuda.layers :
			      !strcmp(key, "hidden") ? &o->cuda.hidden :
			      !strcmp(key, "heads") ? &o->cuda.heads :
			      !strcmp(key, "ffn") ? &o->cuda.ffn :
			      !strcmp(key, "kv_blocks") ? &o->cuda.kv_blocks :
			      !strcmp(key, "max_seqs") ? &o->cuda.max_seqs :
			      !strcmp(key, "max_tokens") ? &o->cuda.max_tokens : NULL;

		if (!f || num_u64(v, 1, 1u << 24, &x))
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

#define BENCH_OPT_FIRST 6 /* --scenario .. --scenario-dir in parse_args' table */
#define BENCH_OPT_LAST 11

static int
parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "executor", required_argument, NULL, 'e' },
		{ "sim-profile", required_argument, NULL, 'p' },
		{ "batching", required_argument, NULL, 'b' },
		{ "listen", required_argument, NULL, 'l' },
		{ "report-to", required_argument, NULL, 'r' },
		{ "backend-id", required_argument, NULL, 1 },
		{ "report-interval-ms", required_argument, NULL, 2 },
		{ "duration", required_argument, NULL, 3 },
		{ "max-requests", required_argument, NULL, 4 },
		{ "profile", required_argument, NULL, 5 },
		/* numbered BENCH_OPT_FIRST..BENCH_OPT_LAST: bench's alone */
		{ "scenario", required_argument, NULL, 6 },
		{ "requests", required_argument, NULL, 7 },
		{ "load", required_argument, NULL, 8 },
		{ "seed", required_argument, NULL, 9 },
		{ "json", no_argument, NULL, 10 },
		{ "scenario-dir", required_argument, NULL, 11 },
		{ "pubkey", required_argument, NULL, 12 },
		{ "report-key-file", required_argument, NULL, 13 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, i, li;
	uint64_t x;
	char *end;

	if (argc > 1 && !strcmp(argv[1], "bench")) {
		o->bench = true;
		argv++;
		argc--;
	}
	/* The config file first, so command-line options override it. */
	for (i = 1; i < argc - 1; i++) {
		if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) {
			int line = ini_parse(argv[i + 1], on_ini, o);

			if (line < 0) {
				snprintf(o->err, sizeof(o->err), "%s: cannot open", argv[i + 1]);
				return -1;
			}
			if (line > 0) {
				/* on_ini already said what; add where. */
				fprintf(stderr, "qsteer-agent: %s:%d:\n", argv[i + 1], line);
				if (!o->err[0])
					snprintf(o->err, sizeof(o->err), "not INI");
				return -1;
			}
		}
	}
	while ((c = getopt_long(argc, argv, "c:e:p:b:l:r:h", lo, &li)) != -1) {
		/* Serving would ignore bench's options: remember one to refuse it. */
		if (c >= BENCH_OPT_FIRST && c <= BENCH_OPT_LAST)
			o->bench_only = lo[li].name;
		switch (c) {
		case 'c':
			break;
		case 'e':
			snprintf(o->executor, sizeof(o->executor), "%s", optarg);
			break;
		case 'p':
			snprintf(o->profile, sizeof(o->profile), "%s", optarg);
			break;
		case 'b':
			if (add_batching(o, optarg))
				return -1;
			break;
		case 'l':
			snprintf(o->serve.listen, sizeof(o->serve.listen), "%s", optarg);
			break;
		case 'r':
			if (add_report_to(o, optarg))
				return -1;
			break;
		case 1:
			if (num_u64(optarg, 0, 65535, &x))
				goto bad;
			o->agent.backend_id = (uint16_t)x;
			break;
		case 2:
			if (num_u64(optarg, 1, 60000, &x))
				goto bad;
			o->serve.report_interval_ns = x * 1000000ull;
			break;
		case 3:
			o->duration_s = strtod(optarg, &end);
			if (*end || o->duration_s <= 0)
				goto bad;
			break;
		case 4:
			if (num_u64(optarg, 1, UINT64_MAX, &o->max_completed))
				goto bad;
			break;
		case 5:
			snprintf(o->profile_out, sizeof(o->profile_out), "%s", optarg);
			break;
		case 6:
			o->scenario = -2;
			for (i = 0; i < QS_AGENT_SCN__COUNT; i++)
				if (!strcmp(optarg, qs_agent_scn_name(i)))
					o->scenario = i;
			if (!strcmp(optarg, "all"))
				o->scenario = -1;
			if (o->scenario == -2)
				goto bad;
			break;
		case 7:
			if (num_u64(optarg, 0, 10000000, &x))
				goto bad;
			o->requests = (uint32_t)x;
			o->requests_set = true;
			break;
		case 8:
			o->load = strtod(optarg, &end);
			if (*end || !(o->load > 0 && o->load < 100))
				goto bad;
			break;
		case 9:
			if (num_u64(optarg, 0, UINT64_MAX, &o->seed))
				goto bad;
			break;
		case 10:
			o->json = true;
			break;
		case 11:
			if (!*optarg || strlen(optarg) >= sizeof(o->scenario_dir))
				goto bad;
			snprintf(o->scenario_dir, sizeof(o->scenario_dir), "%s", optarg);
			break;
		case 13:
			if (load_report_key(o, optarg))
				return -1;
			break;
		case 12:
			if (add_pubkeys(o, optarg, false))
				return -1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		snprintf(o->err, sizeof(o->err), "unexpected argument '%s'", argv[optind]);
		return -1;
	}
	if (o->bench_only && !o->bench) {
		snprintf(o->err, sizeof(o->err), "--%s applies to bench only (qsteer-agent bench "
			 "--%s ...)", o->bench_only, o->bench_only);
		return -1;
	}
	return 0;
bad:
	snprintf(o->err, sizeof(o->err), "bad value '%s' for an option", optarg);
	return -1;
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
		snprintf(msg, msglen, "executor cuda: this qsteer-agent was built without CUDA "
			 "(meson -Dcuda=enabled with nvcc installed)");
		return QS_E_UNSUPPORTED;
#endif
	}
	snprintf(msg, msglen, "unknown executor '%s' (model or cuda)", o->executor);
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
		if (o->requests_set)
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
	int rc;

	snprintf(o.executor, sizeof(o.executor), "model");
	qs_agent_serve_cfg_default(&o.serve);
	qs_agent_cfg_default(&o.agent);
	qs_agent_intake_cfg_default(&o.intake);
	o.scenario = -1;
#ifdef QSTEER_AGENT_HAVE_CUDA
	qs_agent_cuda_model_default(&o.cuda);
#endif
	if (parse_args(argc, argv, &o)) {
		fprintf(stderr, "qsteer-agent: %s\n", o.err);
		return 2;
	}
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
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		o.serve.stop = &g_stop;
		o.serve.max_run_ns = (uint64_t)(o.duration_s * 1e9);
		o.serve.max_completed = o.max_completed;
		fprintf(stderr, "qsteer-agent: %s executor, %s batching, listening on %s, "
			"reporting to %u dataplane(s)\n", ex.name, st.name, o.serve.listen,
			o.serve.n_report_to);
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
