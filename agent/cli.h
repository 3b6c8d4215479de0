/*
 * cli.h - qsteer-agent's command line and configuration file, shared by the two
 * programs that read them: qsteer-agent (serving, --profile) and qsteer-agent-bench
 * (batching strategies compared on the simulator's scenarios). Two programs because
 * the bench runs the simulator and the serving daemon on a GPU host should not link
 * it; one option table so that `qsteer-agent bench ARGS` (which runs
 * qsteer-agent-bench ARGS) and serving read -c, -b, --pubkey and the rest alike.
 *
 * Not a library: cli.c is compiled into each program, because the struct's executor
 * parts depend on what the program was built with (QSTEER_AGENT_HAVE_CUDA, _HTTP).
 */
#ifndef QSTEER_AGENT_CLI_H
#define QSTEER_AGENT_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "qsteer/agent.h"
#include "qsteer/policy.h"
#include "qsteer/agent_bench.h" /* the scenarios' names, inline: nothing of the simulator
				  * is linked */
#ifdef QSTEER_AGENT_HAVE_CUDA
#include "qsteer/agent_cuda.h"
#endif
#ifdef QSTEER_AGENT_HAVE_HTTP
#include "qsteer/agent_http.h"
#endif

#define QS_AGENT_CLI_MAX_STRATS	    16
#define QS_AGENT_CLI_REQUESTS_UNSET UINT32_MAX

struct qs_agent_cli {
	const char *prog;   /* for messages: qsteer-agent or qsteer-agent-bench */
	char executor[256]; /* model, cuda or http://HOST:PORT */
	char batching[QS_AGENT_CLI_MAX_STRATS][1100];
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
	uint32_t requests; /* QS_AGENT_CLI_REQUESTS_UNSET, or --requests (0: the file's) */
	double load;
	uint64_t seed;
	char scenario_dir[QS_SIM_PATH_LEN];
	const char *bench_only; /* a bench option given: refused unless benching */
	/* the command line's values of fields the config file also sets, and whether
	 * given (opt.h's seen) */
	uint32_t backend_id;
	uint64_t report_interval_ms;
	const char *backend_id_given, *report_interval_given;
	int admission; /* index in the admission names: fcfs, priority */
	uint64_t starve_ms;
	const char *admission_given, *starve_given;
	/* where the admission and starvation bound in effect were set, for refusals:
	 * the option as given, or the config file's key */
	char admission_src[64], starve_src[64];
	int pass; /* qs_agent_cli_parse: 1 reads the config files, 2 adds the repeatable
		   * options */
#ifdef QSTEER_AGENT_HAVE_CUDA
	struct qs_agent_cuda_model cuda;
#endif
#ifdef QSTEER_AGENT_HAVE_HTTP
	struct qs_agent_http_cfg http; /* the engine executor ([engine], --engine-*) */
#endif
	char err[512];
};

/* Defaults for prog; bench: the options are the bench's (qsteer-agent-bench). */
void qs_agent_cli_init(struct qs_agent_cli *o, const char *prog, bool bench);
/*
 * The command line from argv[first] (config files first, the command line over
 * them). 0: run; 1: --help was printed; -1: refused, said why on stderr.
 */
int qs_agent_cli_parse(struct qs_agent_cli *o, int argc, char **argv, int first);
/* The profile -p / profile names, if any, into o->agent (the defaults' otherwise). */
int qs_agent_cli_load_profile(struct qs_agent_cli *o, char *msg, size_t msglen);
/* Adds a -b value ("heuristics": every built-in strategy); -1 with o->err. */
int qs_agent_cli_add_batching(struct qs_agent_cli *o, const char *v);
/* The executor o names, for the profile o holds. */
int qs_agent_cli_make_exec(struct qs_agent_cli *o, struct qs_agent_exec *e, char *msg,
			   size_t msglen);
/* The usage of both programs (one text: bench's options are the agent's). */
void qs_agent_cli_usage(FILE *f);

#endif /* QSTEER_AGENT_CLI_H */
