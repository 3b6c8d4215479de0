/*
 * main.c - qsteer-dp: options, then init in order, the control loop, teardown.
 * Each concern is a module that main calls and that never calls main:
 *
 *	datapath.c	  the workers, the port, RCU, counter sums, the rx gate, the benchmark
 *	policy_slots.c	  the loaded policies, their publication, rollback, the drain mask
 *	control.c	  the control socket's callbacks (ctl_server.c) and telemetry
 *
 * usage: qsteer-dp [EAL args] -- --config FILE [--policy FILE.q8|builtin:NAME]
 *        [--control PATH] [--prometheus IPV4:PORT] [--kernel NAME] [--port N]
 *        [--burst N] [--stats-out FILE] [--idle-exit-ms MS] [--pace-us US] [--rx-hold]
 *        [--pubkey FILE]... [--bench SECONDS --bench-kind KIND]
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>

#include "qsteer/opt.h"
#include "control.h"
#include "datapath.h"
#include "policy_slots.h"

/* qsteer-dp's own options, after the EAL's (docs/dataplane.md "Running"). */
struct dp_opts {
	const char *config, *policy, *control, *stats_out, *bench_kind, *prometheus;
	const char *pubkeys[QS_Q8_MAX_PUBKEYS];
	unsigned n_pubkeys;
	enum qs_kernel kernel;
	uint32_t port, pace_us;
	uint16_t burst;
	int rx_hold;
	uint64_t idle_ms;
	double bench;
};

static void
usage(void)
{
	fprintf(stderr,
		"usage: qsteer-dp [EAL args] -- --config FILE [--policy FILE.q8|builtin:NAME]\n"
		"         [--control PATH] [--prometheus IPV4:PORT]\n"
		"         [--kernel auto|scalar|avx2|avx512vnni] [--port N] [--burst N]\n"
		"         [--stats-out FILE] [--idle-exit-ms MS] [--pace-us US] [--rx-hold]\n"
		"         [--pubkey FILE]... (policies must be signed with one of the keys)\n"
		"         [--bench SECONDS --bench-kind requests|continuations]\n");
}

static int
opt_kernel(const struct qs_opt *opt, const char *v, void *ctx)
{
	struct dp_opts *o = ctx;

	(void)opt;
	if (qs_kernel_parse(v, &o->kernel) != QS_OK)
		rte_exit(EXIT_FAILURE, "unknown kernel %s\n", v);
	return 0;
}

static int
opt_burst(const struct qs_opt *opt, const char *v, void *ctx)
{
	struct dp_opts *o = ctx;
	char *end;
	unsigned long n = strtoul(v, &end, 0);

	(void)opt;
	if (*end || n < 1 || n > QS_DP_BURST)
		rte_exit(EXIT_FAILURE, "--burst %s: want 1..%d\n", v, QS_DP_BURST);
	o->burst = (uint16_t)n;
	return 0;
}

static int
opt_pubkey(const struct qs_opt *opt, const char *v, void *ctx)
{
	struct dp_opts *o = ctx;

	(void)opt;
	if (o->n_pubkeys >= QS_Q8_MAX_PUBKEYS)
		rte_exit(EXIT_FAILURE, "at most %d --pubkey options\n", QS_Q8_MAX_PUBKEYS);
	o->pubkeys[o->n_pubkeys++] = v;
	return 0;
}

/*
 * "--name=value" as the two words "--name" "value" when name takes a value (as
 * getopt_long, which qsteer-dp used before the table, accepted it). The words live
 * until exit.
 */
static char **
split_eq(const struct qs_opt *t, int *argc, char **argv)
{
	static char **out;
	int i, n = 0;

	out = calloc(2 * (size_t)*argc + 1, sizeof(*out));
	if (!out)
		rte_exit(EXIT_FAILURE, "out of memory\n");
	for (i = 0; i < *argc; i++) {
		const char *a = argv[i], *eq = strchr(a, '=');
		char *name;

		if (i == 0 || strncmp(a, "--", 2) != 0 || !eq) {
			out[n++] = argv[i];
			continue;
		}
		name = strndup(a, (size_t)(eq - a));
		if (!name)
			rte_exit(EXIT_FAILURE, "out of memory\n");
		if (!qs_opt_find(t, name, 0)) {
			free(name);
			out[n++] = argv[i];
			continue;
		}
		out[n++] = name;
		out[n++] = (char *)(uintptr_t)(eq + 1);
	}
	*argc = n;
	return out;
}

/* 0: run; else the exit status (the reason, or the usage, already printed). */
static int
parse_options(int argc, char **argv, struct dp_opts *o)
{
	const struct qs_opt table[] = {
	    QS_OPT_HELP_FLAG("--help"),
	    QS_OPT_FLAG("--rx-hold", &o->rx_hold, 1),
	    QS_OPT_STR("--config", &o->config),
	    QS_OPT_STR("--policy", &o->policy),
	    QS_OPT_STR("--control", &o->control),
	    QS_OPT_STR("--prometheus", &o->prometheus),
	    QS_OPT_FN("--kernel", opt_kernel),
	    QS_OPT_U32("--port", &o->port, 0, UINT16_MAX, "not a port id (0..65535)"),
	    QS_OPT_FN("--burst", opt_burst),
	    QS_OPT_STR("--stats-out", &o->stats_out),
	    QS_OPT_U64("--idle-exit-ms", &o->idle_ms, 0, UINT64_MAX,
		       "not a number of milliseconds"),
	    QS_OPT_U32("--pace-us", &o->pace_us, 0, UINT32_MAX, "not a number of microseconds"),
	    QS_OPT_FN("--pubkey", opt_pubkey),
	    QS_OPT_DOUBLE("--bench", &o->bench, 0, 1e6, "not a number of seconds (0..1e6)"),
	    QS_OPT_STR("--bench-kind", &o->bench_kind),
	    QS_OPT_END,
	};
	char **args = split_eq(table, &argc, argv);

	switch (qs_opt_parse("qsteer-dp", table, argc, args, 1, NULL, o)) {
	case QS_OPT_OK:
		break;
	case QS_OPT_HELP:
		usage();
		return -1;
	case QS_OPT_E_VALUE:
		return 1;
	default:
		usage();
		return 2;
	}
	if (!o->config) {
		usage();
		return 2;
	}
	return 0;
}

static void
on_signal(int sig)
{
	(void)sig;
	qs_dpw_stop();
}

/* The control thread's loop on the main lcore, until shutdown, a signal, or idle. */
static void
control_loop(uint64_t idle_ms)
{
	uint64_t last_rx = 0, last_change = rte_rdtsc(), hz = rte_get_tsc_hz();

	while (!qs_dpw_stopping()) {
		struct qs_dp_counters sum;

		qs_dpc_poll(20);
		if (!idle_ms)
			continue;
		qs_dpw_counters(&sum);
		if (sum.rx != last_rx) {
			last_rx = sum.rx;
			last_change = rte_rdtsc();
		} else if (sum.rx > 0 && rte_rdtsc() - last_change > idle_ms * hz / 1000) {
			QS_DP_LOG(INFO,
				  "idle for %" PRIu64 " ms after %" PRIu64 " packets: exiting\n",
				  idle_ms, sum.rx);
			qs_dpw_stop();
		}
	}
}

static void
write_stats(const char *path)
{
	char *js = qs_dpc_stats_json();
	FILE *f = js ? fopen(path, "w") : NULL;

	if (!f || fprintf(f, "%s\n", js) < 0)
		QS_DP_LOG(ERR, "%s: %s\n", path, js ? strerror(errno) : "out of memory");
	if (f)
		fclose(f);
	free(js);
}

int
main(int argc, char **argv)
{
	struct dp_opts o = {.policy = "builtin:lor",
			    .bench_kind = "requests",
			    .kernel = QS_KERNEL_AUTO,
			    .burst = QS_DP_BURST};
	struct qs_dpw_params dp;
	struct qs_dpw_info info;
	struct qs_dp_config cfg;
	char msg[512];
	unsigned i;
	int rc;

	rc = rte_eal_init(argc, argv);
	if (rc < 0)
		rte_exit(EXIT_FAILURE, "EAL init failed: %s\n", rte_strerror(rte_errno));
	rc = parse_options(argc - rc, argv + rc, &o);
	if (rc != 0) {
		rte_eal_cleanup();
		return rc < 0 ? 0 : rc;
	}
	qs_dp_config_defaults(&cfg);
	if (qs_dp_config_load(o.config, &cfg, msg, sizeof(msg)) != QS_OK)
		rte_exit(EXIT_FAILURE, "%s\n", msg);
	/* --pubkey adds to the configuration's policy_pubkey keys */
	for (i = 0; i < o.n_pubkeys; i++) {
		rc = qs_q8_keyset_add_file(&cfg.policy_keys, o.pubkeys[i], msg, sizeof(msg));
		if (rc != QS_OK)
			rte_exit(EXIT_FAILURE, "--pubkey: %s\n", msg);
	}

	dp = (struct qs_dpw_params){
	    .cfg = &cfg,
	    .kernel = qs_kernel_resolve(o.kernel),
	    .port = (uint16_t)o.port,
	    .burst = o.burst,
	    .pace_us = o.pace_us,
	    .rx_hold = o.rx_hold != 0,
	    .bench = o.bench > 0,
	};
	qs_dpw_init(&dp);
	if (cfg.policy_keys.n)
		QS_DP_LOG(INFO, "policies must be signed with one of %u public key%s\n",
			  cfg.policy_keys.n, cfg.policy_keys.n == 1 ? "" : "s");
	if (qs_pslots_load(qs_dpw_policies(), o.policy, QS_DP_MODE_ACTIVE, 0, msg, sizeof(msg)) !=
	    QS_OK)
		rte_exit(EXIT_FAILURE, "policy refused: %s\n", msg);

	if (o.bench > 0) {
		rc = qs_dpw_bench(o.bench, o.bench_kind);
		qs_dpw_fini();
		rte_eal_cleanup();
		return rc;
	}

	qs_dpw_port_init();
	if (qs_dpc_open(o.control, o.prometheus, qs_dpw_policies(), msg, sizeof(msg)) != 0)
		rte_exit(EXIT_FAILURE, "control: %s\n", msg);
	if (o.prometheus)
		QS_DP_LOG(INFO, "prometheus /metrics on port %u\n", qs_dpc_prometheus_port());
	qs_dpc_telemetry_register();
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	qs_dpw_launch();
	qs_dpw_info(&info);
	QS_DP_LOG(INFO, "%u workers, burst %u, kernel %s, %u backends, policy %s\n", info.n_workers,
		  info.burst, info.kernel, cfg.n_backends, o.policy);
	control_loop(o.idle_ms);
	qs_dpw_wait();
	if (o.stats_out)
		write_stats(o.stats_out);
	qs_dpc_close();
	qs_dpw_fini();
	rte_eal_cleanup();
	return 0;
}
