/*
 * agent_bench.h - libqsteer-agent-bench: batching strategies compared on the same
 * arrivals in virtual time, the simulator's scenarios on one backend whose profile
 * is the agent's. Kept out of libqsteer-agent because it runs the simulator to make
 * its streams; its source (trainer/agent_bench.c) stands beside the trainer's
 * batching environment, which drives the same loop. qsteer-agent bench, the trainer
 * and the tests link it.
 */
#ifndef QSTEER_AGENT_BENCH_H
#define QSTEER_AGENT_BENCH_H

#include "agent.h"
#include "sim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- benchmark ------------------------------------------------------------------------- */

/*
 * The bench's scenarios are the simulator's (DESIGN.md 4): sim/scenarios/static.ini,
 * bursty.ini, adversarial.ini and long-context.ini, loaded with qs_sim_scenario_load_named. Their
 * workload (arrival process, classes, tenants, priorities, SLO classes, burst-only classes, load)
 * and [slo.N] thresholds apply to ONE backend whose profile is the agent's, so `load` is relative
 * to this agent's SLO-bounded capacity as the simulator estimates it (docs/sim.md, "Load"). The
 * simulator itself generates the stream.
 */
enum qs_agent_scn {
	QS_AGENT_SCN_STATIC = 0,
	QS_AGENT_SCN_BURSTY,
	QS_AGENT_SCN_ADVERSARIAL,
	QS_AGENT_SCN_LONG_CONTEXT, /* sim/scenarios/long-context.ini */
	QS_AGENT_SCN__COUNT
};
/* Inline: qsteer-agent's option table names them without linking the simulator. */
static inline const char *
qs_agent_scn_name(enum qs_agent_scn s)
{
	static const char *const n[] = {"static", "bursty", "adversarial", "long-context"};

	return (unsigned)s < QS_AGENT_SCN__COUNT ? n[s] : "unknown";
}

struct qs_agent_bench_step;
struct qs_agent_bench_arrivals;
struct qs_agent_bench_cfg {
	enum qs_agent_scn scn;
	/* Directory of the scenario files ("": qs_sim_scenario_load_named's default,
	 * $QSTEER_SCENARIO_DIR, else <repository root>/sim/scenarios; profiles they
	 * name: $QSTEER_PROFILE_DIR, else <repository root>/sim/profiles). */
	char scenario_dir[QS_SIM_PATH_LEN];
	uint64_t seed;	   /* the simulator's seed for the stream */
	uint32_t requests; /* the first N requests of the stream (0: the scenario's own
			    * requests / duration_s, which describe a cluster run) */
	double load;	   /* > 0: overrides the scenario's load */
	/* Optional: a stream made by qs_agent_bench_arrivals, so several strategies
	 * share one (then scn, seed, requests and load are not read). */
	const struct qs_agent_bench_arrivals *arrivals;
	/* Optional (training): called after every iteration with what it settled. */
	void (*on_iter)(void *ctx, const struct qs_agent_iter *it,
			const struct qs_agent_bench_step *st);
	void *on_iter_ctx;
};

/* A scenario's request stream and SLOs on one backend. */
struct qs_agent_bench_arrivals {
	char path[QS_SIM_PATH_LEN]; /* the scenario file */
	uint32_t n;
	struct qs_sim_request *req; /* n, in arrival order */
	struct qs_sim_slo slo[QS_SIM_SLO_CLASSES];
	uint8_t spec_accept_pct[QS_SIM_MAX_CLASSES]; /* per workload class (sim.h) */
	double load;				     /* offered load used */
	double rate_rps; /* the arrival rate the simulator derived from it */
};

/* What one iteration settled, judged against the scenario's SLOs. */
struct qs_agent_bench_step {
	uint32_t first_ok;    /* first tokens within the request's TTFT SLO */
	uint32_t first_late;  /* first tokens after it */
	uint32_t done_met;    /* completions within every SLO of their class */
	uint32_t done_missed; /* completions that missed one */
	uint32_t rejected;
	uint32_t waiting; /* queue after the iteration */
};

struct qs_agent_bench_result {
	char strategy[QS_AGENT_NAME_LEN];
	uint32_t requests; /* in the stream */
	double load, rate_rps;
	uint64_t completed;
	uint64_t slo_met;
	uint64_t preemptions;
	uint64_t iterations;
	uint64_t spec_drafted, spec_accepted; /* draft tokens verified, accepted */
	double makespan_s;
	double goodput_rps;
	double throughput_tps;
	double ttft_p50_ms, ttft_p99_ms;
	double tpot_p50_ms, tpot_p99_ms;
	double slo_attainment;
};

/* Defaults: seed 1, the first 2000 requests, the scenario's load. */
void qs_agent_bench_cfg_default(struct qs_agent_bench_cfg *c, enum qs_agent_scn scn);
/* Load c's scenario file with the simulator's loader (errors name the file). */
int qs_agent_bench_scenario_load(const struct qs_agent_bench_cfg *c, struct qs_sim_config *cfg,
				 char *msg, size_t msglen);
/* Generate c's stream for acfg's profile (same cfg, profile and seed: same bytes). */
int qs_agent_bench_arrivals(const struct qs_agent_bench_cfg *c, const struct qs_agent_cfg *acfg,
			    struct qs_agent_bench_arrivals *a, char *msg, size_t msglen);
void qs_agent_bench_arrivals_free(struct qs_agent_bench_arrivals *a);
/* Run one strategy on the scenario's stream (same cfg and seed: same arrivals). */
int qs_agent_bench_run(const struct qs_agent_bench_cfg *c, const struct qs_agent_cfg *acfg,
		       struct qs_batch_strategy *s, struct qs_agent_exec *exec,
		       struct qs_agent_bench_result *r, char *msg, size_t msglen);

#ifdef __cplusplus
}
#endif

#endif /* QSTEER_AGENT_BENCH_H */
