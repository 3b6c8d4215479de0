/*
 * agent_bench_main.c - qsteer-agent-bench (also run as `qsteer-agent bench`): the
 * agent's batching strategies compared on the same arrivals of the simulator's
 * scenarios, in virtual time (agent_bench.h). A program of its own, beside the
 * trainer's batching environment that drives the same loop, so that qsteer-agent
 * does not link the simulator; it reads the agent's options (agent/cli.c) so that a
 * config file and -b, -p, --pubkey mean what they mean when serving.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "qsteer/agent_bench.h"

static void
print_result(const struct qs_agent_cli *o, const char *scn, const struct qs_agent_bench_result *r,
	     bool first)
{
	if (o->json) {
		printf("%s{\"scenario\":\"%s\",\"executor\":\"%s\",\"strategy\":\"%s\","
		       "\"completed\":%llu,\"slo_met\":%llu,\"slo_attainment\":%.4f,"
		       "\"goodput_rps\":%.3f,\"throughput_tps\":%.1f,\"ttft_p50_ms\":%.2f,"
		       "\"ttft_p99_ms\":%.2f,\"tpot_p50_ms\":%.2f,\"tpot_p99_ms\":%.2f,"
		       "\"preemptions\":%llu,\"iterations\":%llu,\"makespan_s\":%.3f,"
		       "\"requests\":%u,\"load\":%.3f,\"rate_rps\":%.4f,"
		       "\"spec_drafted\":%llu,\"spec_accepted\":%llu}",
		       first ? "" : ",\n", scn, o->executor, r->strategy,
		       (unsigned long long)r->completed, (unsigned long long)r->slo_met,
		       r->slo_attainment, r->goodput_rps, r->throughput_tps, r->ttft_p50_ms,
		       r->ttft_p99_ms, r->tpot_p50_ms, r->tpot_p99_ms,
		       (unsigned long long)r->preemptions, (unsigned long long)r->iterations,
		       r->makespan_s, r->requests, r->load, r->rate_rps,
		       (unsigned long long)r->spec_drafted, (unsigned long long)r->spec_accepted);
		return;
	}
	printf("%-12s %-18s %9.3f %7.1f%% %11.1f %11.1f %10.1f %8llu\n", scn, r->strategy,
	       r->goodput_rps, 100 * r->slo_attainment, r->ttft_p50_ms, r->ttft_p99_ms,
	       r->tpot_p99_ms, (unsigned long long)r->preemptions);
}

static int
run_bench(struct qs_agent_cli *o, char *msg, size_t msglen)
{
	int s, lo = o->scenario < 0 ? 0 : o->scenario;
	int hi = o->scenario < 0 ? QS_AGENT_SCN__COUNT - 1 : o->scenario;
	uint32_t k;
	bool first = true;

	/* A profile with a draft model adds the speculation heuristics. */
	if (o->n_batching == 0 &&
	    (qs_agent_cli_add_batching(o, "heuristics") ||
	     (o->agent.prof.spec_max_depth && qs_agent_cli_add_batching(o, "speculation")))) {
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
		if (o->requests != QS_AGENT_CLI_REQUESTS_UNSET)
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
			rc = qs_agent_cli_make_exec(o, &ex, msg, msglen);
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

int
main(int argc, char **argv)
{
	static struct qs_agent_cli o;
	char msg[1024] = "";
	int rc;

	qs_agent_cli_init(&o, "qsteer-agent-bench", true);
	rc = qs_agent_cli_parse(&o, argc, argv, 1);
	if (rc)
		return rc > 0 ? 0 : 2;
	if (o.profile_out[0]) {
		fprintf(stderr, "qsteer-agent-bench: --profile measures the GPU: qsteer-agent "
				"--profile OUT.ini\n");
		return 2;
	}
	rc = qs_agent_cli_load_profile(&o, msg, sizeof(msg));
	if (rc == QS_OK)
		rc = run_bench(&o, msg, sizeof(msg));
	if (rc == QS_OK)
		return 0;
	fprintf(stderr, "qsteer-agent-bench: %s\n", msg);
	return 1;
}
