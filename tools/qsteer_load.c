/*
 * qsteer_load.c - qsteer-load, the open-loop load generator (docs/load.md): replays
 * a scenario's arrivals or an Azure-format trace as QRP requests to a dataplane or
 * an agent from many client ports, collects the agents' direct responses, and
 * prints the same table as `qsteer-sim compare` (sim_report.c, shared with
 * qsteer-sim), plus every request's fate: nothing lost is hidden. Everything it
 * measures is in libqsteer-load (tools/load/); this file parses options and prints.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qsteer/opt.h"
#include "qsteer/stop.h"

#include "load.h"
#include "sim_report.h"

struct opts {
	struct qs_load_src_cfg src;
	struct qs_load_net_cfg net;
	const char *out_csv;
	const char *plot_dir;
	const char *label;
	int json;
	int require_all;
	const char *id_base_given; /* --id-base (opt.h's seen) */
	uint64_t id_base;
	uint64_t drain_ms;
	double duration_s;
	double speedup;
};

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: qsteer-load --target HOST:PORT (--scenario NAME | --trace FILE) [options]\n"
		"source (one of; both: the trace's arrivals, the scenario's SLOs):\n"
		"  -s, --scenario NAME      a simulator scenario's arrivals (name or .ini path)\n"
		"      --scenario-dir DIR   where names are looked up (default: the simulator's)\n"
		"  -T, --trace FILE         an Azure-format trace CSV (TIMESTAMP, ContextTokens,\n"
		"                           GeneratedTokens)\n"
		"time scaling:\n"
		"      --load X             scenario: offered load as a fraction of its cluster's\n"
		"                           estimated capacity (the simulator's definition)\n"
		"      --rate R             scenario: mean arrival rate, requests/s\n"
		"      --speedup X          divide every inter-arrival gap by X (default 1)\n"
		"      --seed N             scenario arrival seed (default 1)\n"
		"bounds:\n"
		"  -n, --requests N         send at most N requests\n"
		"  -d, --duration S         send only arrivals scheduled in the first S seconds\n"
		"      --drain-ms MS        wait for answers after the last send (default 5000)\n"
		"network:\n"
		"  -t, --target HOST:PORT   dataplane or agent (port 7788 if left out)\n"
		"  -c, --clients N          client sockets/ports (default 16, at most %u)\n"
		"      --bind ADDR          local address of the client sockets\n"
		"      --bytes-per-token N  request payload per prompt token (default 0)\n"
		"      --max-datagram N     largest datagram; more goes in continuations\n"
		"                           (default 1472)\n"
		"      --id-base N          first request id (default: from the clock)\n"
		"output:\n"
		"  -o, --out FILE           per-request CSV\n"
		"      --json               one JSON object instead of the table\n"
		"      --plot DIR           TTFT/TPOT/E2E CDFs (gnuplot PNGs)\n"
		"      --label NAME         the table row's name (default live)\n"
		"      --require-all        exit 3 unless every request was answered and no\n"
		"                           response was malformed\n",
		QS_LOAD_MAX_CLIENTS);
}

#define POSITIVE "not a positive number"
#define COUNT	 "not a count (a decimal integer)"

/* Options into o: 0, 1 after --help (usage printed), -1 refused (said why). */
static int
parse_args(int argc, char **argv, struct opts *o)
{
	unsigned n_args = 0;
	const struct qs_opt t[] = {
	    QS_OPT_STR("-s", &o->src.scenario),
	    QS_OPT_STR("--scenario", &o->src.scenario),
	    QS_OPT_STR("--scenario-dir", &o->src.scenario_dir),
	    QS_OPT_STR("-T", &o->src.trace),
	    QS_OPT_STR("--trace", &o->src.trace),
	    QS_OPT_DOUBLE("--load", &o->src.load, DBL_TRUE_MIN, DBL_MAX, POSITIVE),
	    QS_OPT_DOUBLE("--rate", &o->src.rate, DBL_TRUE_MIN, DBL_MAX, POSITIVE),
	    QS_OPT_DOUBLE("--speedup", &o->speedup, 0.001, 1e6, "a factor, 0.001..1e6"),
	    QS_OPT_U64("--seed", &o->src.seed, 0, UINT64_MAX, COUNT),
	    QS_OPT_U32("-n", &o->src.requests, 1, QS_LOAD_MAX_REQUESTS, "a count, 1..4194304"),
	    QS_OPT_U32("--requests", &o->src.requests, 1, QS_LOAD_MAX_REQUESTS,
		       "a count, 1..4194304"),
	    QS_OPT_DOUBLE("-d", &o->duration_s, DBL_TRUE_MIN, 1e7, "seconds, above 0, up to 1e7"),
	    QS_OPT_DOUBLE("--duration", &o->duration_s, DBL_TRUE_MIN, 1e7,
			  "seconds, above 0, up to 1e7"),
	    QS_OPT_U64("--drain-ms", &o->drain_ms, 0, 3600000, "milliseconds, 0..3600000"),
	    QS_OPT_STR("-t", &o->net.target),
	    QS_OPT_STR("--target", &o->net.target),
	    QS_OPT_U32("-c", &o->net.clients, 1, QS_LOAD_MAX_CLIENTS, "a count, 1..1024"),
	    QS_OPT_U32("--clients", &o->net.clients, 1, QS_LOAD_MAX_CLIENTS, "a count, 1..1024"),
	    QS_OPT_STR("--bind", &o->net.bind),
	    QS_OPT_U32("--bytes-per-token", &o->net.bytes_per_token, 0, 65536,
		       "a count of bytes, 0..65536"),
	    QS_OPT_U32("--max-datagram", &o->net.max_dgram, 64, QS_LOAD_MAX_DGRAM,
		       "a size in bytes, 64..65507"),
	    QS_OPT_U64("--id-base", &o->id_base, 0, UINT64_MAX - QS_LOAD_MAX_REQUESTS,
		       "not an id (a decimal integer, leaving room for every request's)",
		       .seen = &o->id_base_given),
	    QS_OPT_STR("-o", &o->out_csv),
	    QS_OPT_STR("--out", &o->out_csv),
	    QS_OPT_FLAG("--json", &o->json, 1),
	    QS_OPT_STR("--plot", &o->plot_dir),
	    QS_OPT_STR("--label", &o->label),
	    QS_OPT_FLAG("--require-all", &o->require_all, 1),
	    QS_OPT_HELP_FLAG("-h"),
	    QS_OPT_HELP_FLAG("--help"),
	    QS_OPT_ARGS(NULL, &n_args, 0, 0),
	    QS_OPT_END,
	};
	const char *missing = NULL;

	switch (qs_opt_parse("qsteer-load", t, argc, argv, 1, NULL, o)) {
	case QS_OPT_OK:
		break;
	case QS_OPT_HELP:
		usage(stdout);
		return 1;
	default:
		return -1;
	}
	o->net.drain_ns = o->drain_ms * 1000000ull;
	if (!o->net.target)
		missing = "--target HOST:PORT is required";
	else if (!o->src.scenario && !o->src.trace)
		missing = "--scenario or --trace is required";
	else if (o->src.load > 0 && o->src.rate > 0)
		missing = "--load and --rate: give one";
	if (missing) {
		fprintf(stderr, "qsteer-load: %s\n", missing);
		return -1;
	}
	return 0;
}

static double
ms(uint64_t ns)
{
	return (double)ns * 1e-6;
}

static void
csv_time(FILE *f, uint64_t ns, bool have)
{
	if (have)
		fprintf(f, ",%.6f", ms(ns));
	else
		fputc(',', f);
}

static int
write_csv(const char *path, const struct qs_load_book *b,
	  const struct qs_sim_slo slo[QS_SIM_SLO_CLASSES], char *msg, size_t msglen)
{
	FILE *f = fopen(path, "w");
	uint32_t i;

	if (!f) {
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		return QS_E_IO;
	}
	fprintf(f, "request_id,index,client,sched_ms,send_ms,first_ms,done_ms,outcome,backend,"
		   "prompt_tokens,max_new_tokens,tokens,tenant,slo_class,class,priority,ttft_ms,"
		   "tpot_ms,e2e_ms,slo_met,preemptions,first_estimated,reach_ms\n");
	for (i = 0; i < b->n; i++) {
		const struct qs_load_req *r = &b->req[i];
		struct qs_sim_outcome o;
		bool ans = qs_load_outcome(b, i, slo, &o);
		bool settled = r->state == QS_LOAD_S_DONE || r->state == QS_LOAD_S_REJECTED;

		fprintf(f, "%llu,%u,%u,%.6f", (unsigned long long)(b->id_base + i), i, r->sock,
			ms(r->sched_ns));
		csv_time(f, r->send_ns, r->send_ns != 0);
		csv_time(f, r->first_ns, r->first_ns != 0);
		csv_time(f, r->done_ns, settled);
		fprintf(f, ",%s,", qs_load_state_name(r->state));
		if (settled)
			fprintf(f, "%u", r->backend);
		fprintf(f, ",%u,%u,%u,%u,%u,%u,%u", r->prompt_tokens, r->max_new_tokens, r->tokens,
			r->tenant, r->slo_class, r->class_index, r->priority);
		if (ans)
			fprintf(f, ",%.6f,%.6f,%.6f,%d", ms(o.ttft_ns), ms(o.tpot_ns), ms(o.e2e_ns),
				o.slo_met);
		else
			fprintf(f, ",,,,0");
		fprintf(f, ",%u,%d", r->preemptions, !!(r->flags & QS_LOAD_RF_FIRST_EST));
		csv_time(f, r->reach_ns, r->reach_ns != 0);
		fputc('\n', f);
	}
	if (fclose(f)) {
		snprintf(msg, msglen, "%s: write failed", path);
		return QS_E_IO;
	}
	return QS_OK;
}

static void
print_json(const struct opts *o, const struct qs_load_src_info *info, const struct qs_load_book *b,
	   const struct qs_load_summary *s, const struct qs_load_run_stats *st,
	   const double cols[QS_CMP_COLS])
{
	static const char *const keys[QS_SIM_M__COUNT] = {"ttft", "tpot", "e2e"};
	uint32_t i;

	printf("{\"source\": ");
	qs_report_json_str(stdout, info->name);
	printf(", \"label\": ");
	qs_report_json_str(stdout, o->label);
	printf(", \"target\": ");
	qs_report_json_str(stdout, o->net.target);
	printf(", \"clients\": %u, \"scheduled\": %llu", o->net.clients,
	       (unsigned long long)s->scheduled);
	for (i = 0; i < QS_LOAD_S__COUNT; i++)
		printf(", \"%s\": %llu", qs_load_state_name((int)i),
		       (unsigned long long)s->state[i]);
	printf(", \"first_estimated\": %llu, \"datagrams\": %llu, \"responses\": %llu, "
	       "\"malformed\": %llu, \"malformed_by_reason\": {",
	       (unsigned long long)s->first_estimated, (unsigned long long)b->datagrams,
	       (unsigned long long)b->responses, (unsigned long long)s->bad_total);
	for (i = 0; i < QS_LOAD_BAD__COUNT; i++)
		printf("%s\"%s\": %llu", i ? ", " : "", qs_load_bad_name((int)i),
		       (unsigned long long)b->bad[i]);
	printf("}, \"packets_sent\": %llu, \"send_errors\": %llu, \"recv_errors\": %llu, "
	       "\"stopped\": %s, \"hit_max_run\": %s, \"run_s\": %.6f, \"send_lag_p99_ms\": %.6f, "
	       "\"send_lag_max_ms\": %.6f, \"reach_n\": %llu, \"reach_p50_ms\": %.6f, "
	       "\"reach_p99_ms\": %.6f, \"makespan_s\": %.6f",
	       (unsigned long long)st->packets_sent, (unsigned long long)st->send_errors,
	       (unsigned long long)st->recv_errors, st->stopped ? "true" : "false",
	       st->hit_max_run ? "true" : "false", (double)st->end_ns * 1e-9, ms(s->lag_p99_ns),
	       ms(s->lag_max_ns), (unsigned long long)s->n_reach, ms(s->reach_p50_ns),
	       ms(s->reach_p99_ns), s->m.makespan_s);
	for (i = 0; i < QS_CMP_COLS; i++)
		printf(", \"%s\": %.6f", qs_cmp_col_names[i], cols[i]);
	for (i = 0; i < QS_SIM_M__COUNT; i++)
		printf(", \"%s_p50_ms\": %.4f, \"%s_p90_ms\": %.4f, \"%s_p99_ms\": %.4f, "
		       "\"%s_mean_ms\": %.4f",
		       keys[i], s->m.p50_ms[i], keys[i], s->m.p90_ms[i], keys[i], s->m.p99_ms[i],
		       keys[i], s->m.mean_ms[i]);
	printf(", \"slo_class\": [");
	for (i = 0; i < QS_SIM_SLO_CLASSES; i++)
		printf("%s{\"n\": %llu, \"attainment\": %.6f}", i ? ", " : "",
		       (unsigned long long)s->m.class_n[i], s->m.class_attainment[i]);
	printf("], \"throughput_rps\": %.6f, \"throughput_tps\": %.3f, \"backends\": [",
	       s->m.throughput_rps, s->m.throughput_tps);
	for (i = 0; i < s->n_backends; i++)
		printf("%s{\"id\": %u, \"answered\": %llu, \"rejected\": %llu}", i ? ", " : "",
		       s->be[i].id, (unsigned long long)s->be[i].answered,
		       (unsigned long long)s->be[i].rejected);
	printf("], \"backends_other\": %llu}\n", (unsigned long long)s->be_other);
}

static void
print_table(const struct opts *o, const struct qs_load_src_info *info, const struct qs_load_book *b,
	    const struct qs_load_summary *s, const struct qs_load_run_stats *st,
	    const struct qs_sim_config *cfg, const struct qs_cmp_row *row)
{
	uint64_t sent = s->scheduled - s->state[QS_LOAD_S_UNSENT];
	uint32_t i;

	printf("qsteer-load %s -> %s: %llu scheduled over %.3f s, %u client ports%s%s\n",
	       info->name, o->net.target, (unsigned long long)s->scheduled,
	       ms(b->req[b->n - 1].sched_ns) * 1e-3, o->net.clients,
	       st->stopped ? " (stopped by a signal)" : "",
	       st->hit_max_run ? " (hit the run's time cap)" : "");
	printf("outcomes    %llu sent: %llu answered, %llu rejected, %llu timed out, %llu send "
	       "failed; %llu not sent; %llu first tokens estimated from completions\n",
	       (unsigned long long)sent, (unsigned long long)s->state[QS_LOAD_S_DONE],
	       (unsigned long long)s->state[QS_LOAD_S_REJECTED],
	       (unsigned long long)s->state[QS_LOAD_S_SENT],
	       (unsigned long long)s->state[QS_LOAD_S_SEND_FAILED],
	       (unsigned long long)s->state[QS_LOAD_S_UNSENT],
	       (unsigned long long)s->first_estimated);
	printf("responses   %llu datagrams: %llu valid, %llu malformed",
	       (unsigned long long)b->datagrams, (unsigned long long)b->responses,
	       (unsigned long long)s->bad_total);
	for (i = 0; i < QS_LOAD_BAD__COUNT; i++)
		if (b->bad[i])
			printf("; %s %llu", qs_load_bad_name((int)i),
			       (unsigned long long)b->bad[i]);
	printf("\n");
	printf("send lag    p99 %.3f ms, max %.3f ms (latencies count from the schedule)\n",
	       ms(s->lag_p99_ns), ms(s->lag_max_ns));
	if (s->n_reach)
		printf(
		    "reach       p50 %.3f ms, p99 %.3f ms over %llu requests (send to the agent's "
		    "receipt, one host's clock)\n",
		    ms(s->reach_p50_ns), ms(s->reach_p99_ns), (unsigned long long)s->n_reach);
	printf("backends   ");
	for (i = 0; i < s->n_backends; i++)
		printf(" %u: %llu answered%s", s->be[i].id, (unsigned long long)s->be[i].answered,
		       i + 1 < s->n_backends ? ";" : "");
	if (s->be_other)
		printf("; other: %llu", (unsigned long long)s->be_other);
	printf("%s\n", s->n_backends ? "" : " none answered");
	printf("(ms)              p50        p90        p99       mean\n");
	for (i = 0; i < QS_SIM_M__COUNT; i++)
		printf("%-10s %10.2f %10.2f %10.2f %10.2f\n",
		       i == 0	? "TTFT"
		       : i == 1 ? "TPOT"
				: "E2E",
		       s->m.p50_ms[i], s->m.p90_ms[i], s->m.p99_ms[i], s->m.mean_ms[i]);
	qs_report_cmp_table(stdout, cfg, row, 1, 1, o->src.seed);
}

int
main(int argc, char **argv)
{
	static struct opts o;
	static struct qs_sim_config cfg;
	struct qs_load_book b;
	struct qs_load_src_info info;
	struct qs_load_run_stats st;
	struct qs_load_summary *s = NULL;
	struct qs_cmp_row *row = NULL;
	struct qs_sim_tally *tally = NULL;
	char msg[1024] = "";
	uint32_t m;
	int rc, ret = 1;

	memset(&b, 0, sizeof(b));
	o.src.seed = 1;
	o.net.clients = 16;
	o.drain_ms = 5000;
	o.label = "live";
	rc = parse_args(argc, argv, &o);
	if (rc)
		return rc > 0 ? 0 : 2;
	o.src.speedup_milli = o.speedup > 0 ? (uint32_t)llround(o.speedup * 1000.0) : 1000;
	if (o.src.speedup_milli == 0)
		o.src.speedup_milli = 1;
	o.src.duration_ns = (uint64_t)(o.duration_s * 1e9);
	rc = qs_load_arrivals(&o.src, &b, &info, msg, sizeof(msg));
	if (rc != QS_OK)
		goto fail;
	if (o.id_base_given) {
		b.id_base = o.id_base;
	} else {
		struct timespec ts;

		/* distinct per run, so a late answer to an earlier run is not ours */
		clock_gettime(CLOCK_REALTIME, &ts);
		b.id_base = ((uint64_t)ts.tv_sec << 24 | (uint64_t)(ts.tv_nsec >> 6)) << 8;
	}
	if (o.duration_s > 0)
		o.net.max_run_ns = o.src.duration_ns + o.net.drain_ns;
	o.net.stop = qs_stop_on_signals();
	fprintf(stderr, "qsteer-load: %u requests from %s over %.3f s to %s from %u client ports\n",
		b.n, info.name, (double)b.req[b.n - 1].sched_ns * 1e-9, o.net.target,
		o.net.clients);
	rc = qs_load_run(&b, &o.net, &st, msg, sizeof(msg));
	if (rc != QS_OK)
		goto fail;
	s = malloc(sizeof(*s));
	row = calloc(1, sizeof(*row));
	if (!s || !row) {
		snprintf(msg, sizeof(msg), "out of memory");
		goto fail;
	}
	rc = qs_load_summarize(&b, info.slo, st.end_ns, s, &tally, msg, sizeof(msg));
	if (rc != QS_OK)
		goto fail;
	if (o.out_csv && write_csv(o.out_csv, &b, info.slo, msg, sizeof(msg)) != QS_OK)
		goto fail;
	/* one row of `qsteer-sim compare`'s table, from the simulator's accounting */
	snprintf(cfg.name, sizeof(cfg.name), "%s", info.name);
	snprintf(cfg.primary_metric, sizeof(cfg.primary_metric), "%s", info.primary_metric);
	snprintf(row->router, sizeof(row->router), "%s", o.label);
	qs_report_cmp_values(&s->m, row->mean);
	for (m = 0; m < QS_CMP_COLS; m++)
		row->v[m][0] = row->mean[m];
	qs_report_cmp_finish(row, 1);
	for (m = 0; m < QS_SIM_M__COUNT; m++)
		row->cdf_n[m] = qs_sim_tally_cdf(tally, (enum qs_sim_metric)m, row->cdf_x[m],
						 row->cdf_p[m], QS_CDF_POINTS);
	if (o.json)
		print_json(&o, &info, &b, s, &st, row->mean);
	else
		print_table(&o, &info, &b, s, &st, &cfg, row);
	fflush(stdout);
	if (o.plot_dir && qs_report_plot(o.plot_dir, &cfg, row, 1, msg, sizeof(msg)) != 0)
		goto fail;
	ret = 0;
	if (o.require_all && (s->state[QS_LOAD_S_DONE] != s->scheduled || s->bad_total)) {
		fprintf(stderr,
			"qsteer-load: --require-all: %llu of %llu answered, %llu malformed\n",
			(unsigned long long)s->state[QS_LOAD_S_DONE],
			(unsigned long long)s->scheduled, (unsigned long long)s->bad_total);
		ret = 3;
	}
	goto out;
fail:
	fprintf(stderr, "qsteer-load: %s\n", msg);
out:
	qs_sim_tally_destroy(tally);
	free(s);
	free(row);
	qs_load_book_free(&b);
	return ret;
}
