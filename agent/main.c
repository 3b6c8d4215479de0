/*
 * main.c - qsteer-agent: the GPU-host companion program. Reads a config, builds
 * the intake, the strategy and the executor, and runs the UDP loop; `--profile`
 * measures the GPU and writes a simulator profile; `bench` runs qsteer-agent-bench
 * (trainer/agent_bench_main.c), which links the simulator this program does not. Everything it
 * does is in libqsteer-agent; the options are cli.c's, and this file prints.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "qsteer/stop.h"

static int
run_profile(struct qs_agent_cli *o, char *msg, size_t msglen)
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
serve_http(struct qs_agent_cli *o, char *msg, size_t msglen)
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

/* With more than one tenant, a line each (the first QS_AGENT_TENANTS seen, then the
 * rest together). */
static void
print_tenants(const struct qs_agent_stats *s)
{
	uint32_t i;

	for (i = 0; s->n_tenants > 1 && i < s->n_tenants; i++) {
		const struct qs_agent_tenant_stats *t = &s->tenant[i];
		char name[32];

		if (t->others)
			snprintf(name, sizeof(name), "others");
		else
			snprintf(name, sizeof(name), "%u", t->tenant);
		fprintf(stderr,
			"qsteer-agent: tenant %s: %llu requests (%llu rejected), %llu completed, "
			"%llu cancelled, longest TTFT %.1f ms\n",
			name, (unsigned long long)t->received, (unsigned long long)t->rejected,
			(unsigned long long)t->completed, (unsigned long long)t->cancelled,
			(double)t->ttft_max_ns / 1e6);
	}
}

/*
 * `qsteer-agent bench ARGS` runs qsteer-agent-bench ARGS, installed (and built)
 * beside this program: the bench runs the simulator, which the serving daemon does
 * not link (git's way with its subcommands). Returns only when it cannot run it.
 */
static int
exec_bench(char **argv)
{
	char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	char *slash;

	if (n <= 0) {
		fprintf(stderr, "qsteer-agent: bench: /proc/self/exe: %s\n", strerror(errno));
		return 127;
	}
	path[n] = '\0';
	slash = strrchr(path, '/');
	if (!slash || (size_t)(slash + 1 - path) + sizeof("qsteer-agent-bench") > sizeof(path)) {
		fprintf(stderr, "qsteer-agent: bench: cannot place qsteer-agent-bench beside %s\n",
			path);
		return 127;
	}
	memcpy(slash + 1, "qsteer-agent-bench", sizeof("qsteer-agent-bench"));
	argv[0] = path;
	execv(path, argv);
	fprintf(stderr,
		"qsteer-agent: bench: %s: %s (qsteer-agent-bench is built and installed "
		"beside qsteer-agent; docs/agent.md)\n",
		path, strerror(errno));
	return 127;
}

int
main(int argc, char **argv)
{
	static struct qs_agent_cli o;
	char msg[1024] = "";
	struct qs_batch_strategy st;
	struct qs_agent_exec ex;
	struct qs_agent *a = NULL;
	struct qs_agent_intake *in = NULL;
	struct qs_agent_serve_stats ss;
	char late[20480];  /* the lateness histogram, at most 1,000 "US:COUNT " entries */
	char adm[96] = ""; /* the admission rule, said at start when not the default */
	int rc;

	if (argc > 1 && !strcmp(argv[1], "bench"))
		return exec_bench(argv + 1);
	qs_agent_cli_init(&o, "qsteer-agent", false);
	rc = qs_agent_cli_parse(&o, argc, argv, 1);
	if (rc)
		return rc > 0 ? 0 : 2;
	rc = qs_agent_cli_load_profile(&o, msg, sizeof(msg));
	if (rc != QS_OK)
		goto fail;
	if (o.profile_out[0]) {
		rc = run_profile(&o, msg, sizeof(msg));
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
	rc = qs_agent_cli_make_exec(&o, &ex, msg, sizeof(msg));
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
			snprintf(adm, sizeof(adm), ", %s admission (starvation bound %llu ms)",
				 o.agent.admit_fair ? "fair-share priority" : "priority",
				 (unsigned long long)(o.agent.starve_ns / 1000000ull));
		else if (o.agent.admit_priority)
			snprintf(adm, sizeof(adm), ", %s admission (no starvation bound)",
				 o.agent.admit_fair ? "fair-share priority" : "priority");
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
		qs_agent_serve_late_format(&ss, late, sizeof(late));
		fprintf(stderr, "qsteer-agent: report lateness us: %s\n", late);
		print_tenants(s);
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
