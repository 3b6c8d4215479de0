/*
 * sim.h - libqsteer-sim: a deterministic discrete-event simulator of a GPU
 * inference cluster (DESIGN.md 3.3 and 4), the ground every routing claim and the
 * trainer stand on.
 *
 * The simulator is driven one routing decision at a time (a pull API), so a
 * trainer, the baseline routers and the int8 policy all use the same loop:
 *
 *	qs_sim_create(cfg, seed, &sim, msg, len);
 *	while (qs_sim_next_decision(sim, &d, msg, len) == QS_OK && !d.done)
 *		qs_sim_route(sim, my_choice(&d), msg, len);
 *	qs_sim_metrics(sim, &m);
 *
 * qs_sim_next_decision advances the event loop until the next request arrives
 * and needs a backend, and shows what a dataplane would see at that moment: each
 * backend's last (possibly lost, always stale) report plus the router's own count
 * of what it sent since, the eligibility mask, the global features and the
 * ready-built router_v1 feature rows. Never ground truth. Outcomes (TTFT, TPOT,
 * end-to-end, SLO met) come back per request through a callback or a queue,
 * tagged with the decision they came from, for reward credit.
 *
 * Instances share nothing: no globals, no static mutable state, so vectorized
 * environments may run one instance per thread. Times are integer nanoseconds.
 * Same config and seed give the same bytes of output.
 */
#ifndef QSTEER_SIM_H
#define QSTEER_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "baselines.h"
#include "features.h"
#include "profile.h"
#include "report_auth.h"
#include "quality.h"
#include "status.h"
#include "wire.h"

#define QS_SIM_MAX_BACKENDS QS_MAX_CANDIDATES
#define QS_SIM_MAX_CLASSES  8
#define QS_SIM_DIFFICULTIES QS_DIFFICULTIES /* request difficulty classes (quality.h) */
#define QS_SIM_SLO_CLASSES  QS_QUALITY_SLO
#define QS_SIM_PATH_LEN	    1024
#define QS_SIM_TENANTS	    8 /* tenants with their own metrics row (more: summed as other) */

/* ---- configuration ------------------------------------------------------------ */

/*
 * How a batch backend without chunked prefill fills an iteration (scenario key
 * `schedule` in [backend.NAME], docs/sim.md). The server's scheduler, not the GPU's
 * cost, so it is the backend's setting rather than the profile's. VLLM_V0 is the
 * default: every shipped scenario, and the policies trained on them, keep their
 * results.
 */
enum qs_sim_schedule {
	QS_SIM_SCHED_VLLM_V0 = 0, /* an iteration prefills admitted prompts or decodes */
	QS_SIM_SCHED_MIXED,	  /* qsteer-agent's: every decode, then whole prompts */
};

/* Which waiting request a batch backend admits next ([backend.NAME] admission). */
enum qs_sim_admission {
	QS_SIM_ADMIT_FCFS = 0, /* the queue's head (preempted ones first, then arrivals) */
	QS_SIM_ADMIT_PRIORITY, /* admit.h: highest priority, starved after starve_ms, and
				* preemption of lower priorities; as qsteer-agent's
				* --admission priority */
	QS_SIM_ADMIT_FAIR,     /* priority, then the tenant with the fewest prefill tokens
				* admitted lately (admit.h); as qsteer-agent's
				* --admission fair */
};

struct qs_sim_backend_cfg {
	struct qs_sim_profile prof;
	uint32_t capacity; /* relative capacity weight (SED, feature class); 0: estimate */
	enum qs_sim_schedule schedule;	 /* batch model without chunked prefill */
	enum qs_sim_admission admission; /* batch model */
	double starve_ms;		 /* priority admission's starvation bound (0: none) */
	/* Agent outage: no reports from down_at_s until up_at_s (both 0: none); the
	 * router masks the backend once its last report is older than
	 * config.report_max_age_ns. The backend itself keeps serving. */
	double down_at_s;
	double up_at_s;
	double drain_at_s; /* > 0: marked draining (masked) from then on */
	/* How the router believes this backend's reports, as qsteer-dp's config says
	 * (docs/sim.md, "Forged reports"): a key (report_key: every report tagged and
	 * checked, sequence numbers from a large base as a keyed agent's), and whether
	 * any source is believed (report_source = any) instead of the backend's own
	 * address. Either one, or a forger, routes reports through the dataplane's
	 * checks (report_src.h, report_auth.h, report_seq.h). */
	struct qs_report_key report_key;
	bool report_source_any;
	/* Cascade (issue 15): the model variant this backend serves and its quality,
	 * the accuracy it reaches on each difficulty class (0..1). Without one
	 * (has_quality false) every class counts 1: the reference. docs/sim.md,
	 * "Model variants". */
	char variant[32];
	bool has_quality;
	double quality[QS_SIM_DIFFICULTIES];
};

/* A backend's quality on difficulty class d (1 without a quality table). */
static inline double
qs_sim_backend_quality(const struct qs_sim_backend_cfg *b, unsigned d)
{
	return b->has_quality ? b->quality[d % QS_SIM_DIFFICULTIES] : 1.0;
}

/*
 * An adversary on the report path ([forger] in a scenario), for the test that the
 * dataplane's report checks hold in the simulator's lossy-report mode as on the
 * wire: every interval_ns from start_s it sends backend `backend` a report of kind:
 */
enum qs_sim_forge {
	QS_SIM_FORGE_NONE = 0,
	QS_SIM_FORGE_SOURCE, /* "idle" (nothing waiting, running or in flight), sequence
			      * 10^9 + n, from an unrelated address; tagged with a key
			      * that is not the backend's when it has one */
	QS_SIM_FORGE_SPOOF,  /* the same from the backend's own address */
	QS_SIM_FORGE_REPLAY, /* the backend's first genuine report, captured and sent
			      * again verbatim (tag included) from its address */
};

struct qs_sim_forger {
	enum qs_sim_forge kind;
	uint32_t backend;
	uint64_t interval_ns; /* default 5 ms */
	double start_s;
};

enum qs_sim_dist {
	QS_SIM_DIST_FIXED = 0,
	QS_SIM_DIST_EXP,       /* exponential with the mean, rounded up */
	QS_SIM_DIST_LOGNORMAL, /* mean and coefficient of variation */
	QS_SIM_DIST_UNIFORM,   /* [min, max] */
};

struct qs_sim_len {
	enum qs_sim_dist dist;
	double mean;
	double cv;
	uint32_t min; /* results are clamped to [min, max] */
	uint32_t max;
};

enum qs_sim_when {
	QS_SIM_WHEN_ALWAYS = 0,
	QS_SIM_WHEN_BURST, /* only drawn in the burst phase (bursty, adversarial) */
	QS_SIM_WHEN_QUIET,
};

/* A request class: how often, how long, whose, how urgent, which shared prefix. */
struct qs_sim_class {
	char name[32];
	double weight;
	struct qs_sim_len prompt; /* ignored for trace replay: lengths come from the trace */
	struct qs_sim_len gen;
	uint8_t slo_class;
	uint8_t priority;
	uint16_t tenant;
	uint32_t prefix_groups; /* distinct shared prefixes (0: none) */
	uint32_t prefix_tokens; /* tokens of the prompt that are the shared prefix */
	enum qs_sim_when when;
	/* Impatient clients: a fraction abandon_frac of this class's requests is
	 * cancelled by its client when no first token has come abandon_ms after its
	 * arrival (0: never). The cancel frees the request's queue place and KV blocks
	 * at once, or, prefilling in a running iteration, when that iteration ends (a
	 * GPU does not stop mid-kernel); a tokrate backend cancels queued requests
	 * only. Decided per request by a hash of (seed, request id). */
	double abandon_ms;
	double abandon_frac;
	/* Speculative decoding: the draft model's per-token acceptance on this class's
	 * text, percent (1..99; 0: the backend profile's spec_accept). The agent's
	 * model executor reads it (the bench, the batching environment); the
	 * simulator's backends advance their decodes by the profile's mean. */
	uint8_t spec_accept_pct;
	uint8_t difficulty; /* 0..3: the column of the backends' quality tables */
};

enum qs_sim_arrival {
	QS_SIM_ARR_POISSON = 0,
	QS_SIM_ARR_GAMMA,   /* renewal process, inter-arrival CV = cv */
	QS_SIM_ARR_BURSTY,  /* Markov-modulated Poisson: quiet and burst phases */
	QS_SIM_ARR_DIURNAL, /* rate * (1 + amplitude * sin(2 pi t / period)) */
	QS_SIM_ARR_TRACE,   /* Azure LLM trace CSV replay */
};

struct qs_sim_workload {
	enum qs_sim_arrival arrival;
	double rate;	     /* mean requests/s; 0 means derive from load */
	double load;	     /* offered load as a fraction of estimated cluster capacity */
	double cv;	     /* gamma */
	double burst_factor; /* bursty: burst rate / quiet rate */
	double burst_mean_s; /* bursty: mean burst phase length */
	double quiet_mean_s; /* bursty: mean quiet phase length */
	double amplitude;    /* diurnal, 0..1 */
	double period_s;     /* diurnal */
	uint64_t requests;   /* stop after this many arrivals (0: no limit) */
	double duration_s;   /* stop arrivals after this simulated time (0: no limit) */
	char trace[QS_SIM_PATH_LEN];
	double window_start_s; /* trace: skip rows before first + window_start_s */
	double window_s;       /* trace: rows within window_s of the start (0: all) */
	/* trace, per seed: the window starts U(0, window_jitter_s) later, and each of its
	 * rows is kept with probability thin (0: 1, every row), so that seeds replay
	 * different arrival sequences of one trace (docs/sim.md) */
	double window_jitter_s;
	double thin;
	uint32_t n_classes;
	struct qs_sim_class cls[QS_SIM_MAX_CLASSES];
};

/* SLO per class; 0 means "no limit on this". A request meets its SLO if it meets all. */
struct qs_sim_slo {
	double ttft_ms;
	double tpot_ms;
	double e2e_ms;
	/* Cascade: the variant a request is served by must reach at least this share
	 * of the best backend's quality on the request's difficulty (0: no floor). The
	 * router never sees the others as candidates: a hard constraint, not a weight. */
	double quality_floor;
};

/* Do these times meet slo (every limit that is set)? The one judgement the simulator
 * and the agent's bench both use; pass 0 for a time not known yet. */
bool qs_sim_slo_met(const struct qs_sim_slo *slo, double ttft_ms, double tpot_ms, double e2e_ms);

struct qs_sim_outcome;
struct qs_sim_iter;

/* Reports a backend may miss before it is masked: the dataplane's
 * QS_DP_REPORT_STALE_INTERVALS (test-view-parity checks that they agree). */
#define QS_SIM_REPORT_STALE_INTERVALS 2
#define QS_SIM_LATE_KNOTS	      16 /* report_late's knots, at most */

struct qs_sim_config {
	char name[QS_SIM_NAME_LEN];
	char primary_metric[32]; /* "ttft_p99" or "slo_attainment" */
	uint32_t n_backends;
	struct qs_sim_backend_cfg backend[QS_SIM_MAX_BACKENDS];
	struct qs_sim_workload wl;
	struct qs_sim_slo slo[QS_SIM_SLO_CLASSES];
	uint64_t report_interval_ns; /* default 5 ms */
	double report_loss;	     /* probability a report is lost, 0..1 */
	/*
	 * Seeds the backends' report phases alone (0: the run's seed does). A live
	 * agent's phase against the arrivals is not known to the simulator, so a
	 * prediction for a live run is a distribution over phases at fixed arrivals
	 * (scripts/cluster.sh); for a synthetic workload only this key varies them.
	 */
	uint64_t report_phase_seed;
	/*
	 * How long after the agent takes a report the router holds it: its way to the
	 * router plus a request's way to the agent (0: at once, the default). The
	 * router restarts its sent counts when the report arrives, so a request sent
	 * inside that window is in neither the report nor the counts, as in a live
	 * dataplane (docs/sim.md, "Report transit"). Below the report interval.
	 */
	uint64_t report_transit_ns;
	/*
	 * How late each agent sends its reports, as a distribution (n = 0: on time,
	 * the default): n knots (q, ns), q rising in (0, 1], ns not falling, linear
	 * between them from (0, 0) and flat past the last. A live agent's wait wakes
	 * late on a busy machine; a report late by an interval masks its backend for
	 * a moment, and the agent's later reports then keep the late one's phase
	 * (agent/serve.c). qsteer-agent measures the distribution (its exit line),
	 * scripts/cluster.sh sets it (docs/sim.md, "Report lateness").
	 */
	struct qs_sim_report_late {
		uint32_t n;
		double q[QS_SIM_LATE_KNOTS];
		uint64_t ns[QS_SIM_LATE_KNOTS];
	} report_late;
	uint64_t prefix_max_age_ns; /* router prefix-affinity ageing (default 10 s) */
	/*
	 * DESIGN 3.1, with the dataplane's defaults (so a policy trains with the masks
	 * it will meet): a backend is masked once its newest report is older than
	 * report_max_age_ns when that is set, else than report_interval_ns x
	 * report_stale_intervals (default QS_SIM_REPORT_STALE_INTERVALS: 10 ms at 5 ms
	 * reports); both 0: never, and a backend is eligible before its first report.
	 */
	uint64_t report_max_age_ns;
	uint32_t report_stale_intervals;
	bool mask_kv_full; /* mask one whose last report shows every KV block used (default) */
	/* cascade: quality floors judged but not enforced (qsteer-sim --no-quality-mask:
	 * the baselines that ignore them, such as always the smallest variant) */
	bool quality_unmasked;
	/* a policy router's heuristic when every backend is masked (QS_BASELINE_FALLBACK,
	 * as the dataplanes' `fallback`) */
	enum qs_baseline_kind fallback;
	struct qs_sim_forger forger;
	/* Per-request outcomes: a callback, and/or a queue drained by qs_sim_poll_outcomes. */
	void (*on_outcome)(void *ctx, const struct qs_sim_outcome *o);
	void *outcome_ctx;
	bool queue_outcomes;
	/* Called at the start of every batch-model iteration (tests, tracing). */
	void (*on_iteration)(void *ctx, const struct qs_sim_iter *it);
	void *iter_ctx;
};

/* report_late's knots in order and in range (QS_OK), or what is wrong with which. */
int qs_sim_report_late_check(const struct qs_sim_report_late *l, char *msg, size_t msglen);
/* Defaults: no backends, Poisson at 1 req/s, 5 ms reports, no loss, no SLOs; stale
 * and KV-full backends masked as the dataplane masks them. */
void qs_sim_config_default(struct qs_sim_config *c);
/*
 * For a caller that routes every request itself and wants the arrival stream alone
 * (qsteer-load's arrivals, the agent's bench): nothing masks a backend (no report
 * ageing, KV-full, loss, outage or drain), so every route is accepted and the
 * stream does not depend on where requests go; no forger, no callbacks.
 */
void qs_sim_config_open_loop(struct qs_sim_config *c);
/* Backend profiles (struct qs_sim_profile, their defaults and files): profile.h. */

/* ---- scenario and profile files (INI) -------------------------------------------- */

/*
 * Load a scenario file into cfg (defaults first). Relative trace and profile paths
 * resolve against repo_root first, then the scenario file's directory; profiles
 * named without a path are looked up in profile_dir. Unknown keys and sections are
 * errors naming the key and the file.
 */
int qs_sim_scenario_load(const char *path, const char *repo_root, const char *profile_dir,
			 struct qs_sim_config *cfg, char *msg, size_t msglen);
/*
 * Scenarios by name, the one lookup every program uses. A scenario containing '/'
 * or ending in ".ini" is a path; a name is NAME.ini in dir when dir is given, else
 * in $QSTEER_SCENARIO_DIR, else in <root>/sim/scenarios. The repository root is
 * $QSTEER_REPO_ROOT, else the source tree libqsteer-sim was built from; profiles a
 * scenario names come from $QSTEER_PROFILE_DIR, else <root>/sim/profiles.
 */
const char *qs_sim_repo_root(void);
/* The directory names are looked up in when no dir is given: 0, or -1 if too long. */
int qs_sim_scenario_dir(char *out, size_t n);
/* The .ini path for scenario: 0, or -1 when it does not fit in n bytes. */
int qs_sim_scenario_path(const char *scenario, const char *dir, char *out, size_t n);
/* qs_sim_scenario_load with that lookup. */
int qs_sim_scenario_load_named(const char *scenario, const char *dir, struct qs_sim_config *cfg,
			       char *msg, size_t msglen);
/* Same from a string; label names it in messages, base_dir stands for its directory. */
int qs_sim_scenario_parse(const char *text, const char *label, const char *repo_root,
			  const char *base_dir, const char *profile_dir, struct qs_sim_config *cfg,
			  char *msg, size_t msglen);

/* ---- trace reader (streamed) ------------------------------------------------------ */

struct qs_sim_trace;
struct qs_sim_trace_row {
	uint64_t t_ns; /* timestamp, ns since an arbitrary epoch */
	uint32_t context_tokens;
	uint32_t generated_tokens;
	uint64_t line;
};
/* Open a CSV with a header naming TIMESTAMP, ContextTokens, GeneratedTokens (any order). */
int qs_sim_trace_open(const char *path, struct qs_sim_trace **out, char *msg, size_t msglen);
/* Read from a stream the caller owns (label names it in messages). */
int qs_sim_trace_open_stream(FILE *f, const char *label, struct qs_sim_trace **out, char *msg,
			     size_t msglen);
/* Next row: QS_OK and *eof false, or QS_OK and *eof true at the end, or an error
 * naming the file, line and column. */
int qs_sim_trace_next(struct qs_sim_trace *t, struct qs_sim_trace_row *row, bool *eof, char *msg,
		      size_t msglen);
int qs_sim_trace_rewind(struct qs_sim_trace *t, char *msg, size_t msglen);
void qs_sim_trace_close(struct qs_sim_trace *t);

/* ---- the pull API ------------------------------------------------------------------ */

struct qs_sim;

/* The request as the router sees it (from its QRP header) plus simulator labels. */
struct qs_sim_request {
	uint64_t id;
	uint64_t arrival_ns;
	uint32_t prompt_tokens;
	uint32_t max_new_tokens; /* the simulator uses it as the exact generated length */
	uint32_t prefix_hash;	 /* 0: no shared prefix */
	uint16_t tenant;
	uint8_t priority;
	uint8_t slo_class;
	uint8_t class_index; /* workload class it was drawn from */
	uint8_t difficulty;  /* its class's (cascade) */
};

struct qs_sim_decision {
	bool done;	      /* no more requests: everything has completed */
	uint64_t decision_id; /* 0, 1, 2, ... in order; outcomes carry it */
	uint64_t now_ns;
	struct qs_sim_request req;
	struct qs_feat_request freq;
	uint32_t n_backends;
	uint64_t eligible; /* bit i: backend i may be chosen */
	/* cascade: the backends of the variant with the lowest and with the highest
	 * mean quality (all of them without quality tables), for the variant
	 * baselines (router.c) */
	uint64_t variant_small, variant_large;
	/* eligible == 0: the backends the fallback heuristic may use (not draining;
	 * stale and KV-full ones included, but only those heard from lately when
	 * any is: router_view.h qs_rview_fallback_set), as the dataplanes' */
	uint64_t fallback;
	/* cascade: the backends whose quality meets the request's floor (all without
	 * floors). Never empty; where the dataplane would drop the request (every one
	 * of them draining) the simulator's router still keeps to these. */
	uint64_t admissible;
	struct qs_feat_backend backend[QS_SIM_MAX_BACKENDS];
	struct qs_feat_global global;
	const uint32_t *capacity; /* n_backends configured capacity weights */
	uint8_t features[QS_SIM_MAX_BACKENDS][QS_FR_COUNT]; /* router_v1 rows */
};

/*
 * The router's view of one decision. qs_sim_next_decision builds every decision
 * with qs_sim_view, whose masks, report features and global features are
 * router_view.h's, the functions qsteer-dp's core and the XDP program call: a
 * policy trained here sees what it will see there (test/sim/test_view_parity.c
 * drives one sequence through all three). What the simulated router holds of
 * backend i:
 */
struct qs_sim_view_backend {
	struct qs_qrp_report rep; /* its last report taken (flags: QS_QRP_RF_DRAINING) */
	uint64_t last_ns;	  /* when that report was taken */
	bool valid;		  /* a report has been taken at all */
	bool drained;		  /* drained by the operator (drain_at_s): never chosen */
	uint64_t sent_reqs;	  /* requests routed there since that report */
	uint64_t sent_tokens;	  /* their prompt tokens */
	uint8_t capacity_class;
};

/*
 * From vb[0..nb) at now: d->n_backends, d->backend (report fields zero unless
 * fresh), d->eligible (fresh, not draining, not drained, and not KV-full when
 * mask_kv_full), d->fallback, d->global over the eligible backends, and with
 * features the rows for d->freq. A report is fresh while no older than
 * report_max_age_ns (0: always, even before the first). prefix_hit: the backend
 * the prefix table names, or any value >= nb. d->freq is the caller's.
 */
void qs_sim_view(const struct qs_sim_view_backend *vb, uint32_t nb, uint64_t now_ns,
		 uint64_t report_max_age_ns, bool mask_kv_full, uint32_t prefix_hit, bool features,
		 struct qs_sim_decision *d);

/* What became of one request, reported when it completes. */
struct qs_sim_outcome {
	uint64_t request_id;
	uint64_t decision_id;
	uint32_t backend;
	uint32_t prompt_tokens;
	uint32_t gen_tokens;
	uint16_t tenant;
	uint8_t slo_class;
	uint8_t class_index;
	uint32_t preemptions;
	bool prefix_cache_hit;
	bool slo_met;
	uint64_t arrival_ns;
	uint64_t ttft_ns;
	uint64_t tpot_ns; /* (e2e - ttft) / (gen - 1); 0 when gen == 1 */
	uint64_t e2e_ns;
	/* cascade: the serving backend's quality on the request's difficulty, the best
	 * backend's, and whether it met its SLO class's quality floor */
	uint8_t difficulty;
	bool quality_known; /* the simulator's outcomes; a live tally's carry none */
	bool quality_ok;
	double quality, quality_best;
};

/* One batch-model iteration as scheduled (on_iteration). */
struct qs_sim_iter {
	uint32_t backend;
	uint64_t start_ns;
	uint64_t duration_ns;
	uint32_t seqs;	 /* sequences in the batch */
	uint32_t tokens; /* prefill + decode tokens */
	uint32_t prefill_tokens;
	uint32_t decode_seqs;
	uint32_t kv_blocks_used; /* after scheduling */
	uint32_t max_seqs;
	uint32_t max_tokens;
	uint32_t kv_blocks;
	uint32_t preempted; /* sequences preempted to schedule it */
};

int qs_sim_create(const struct qs_sim_config *cfg, uint64_t seed, struct qs_sim **out, char *msg,
		  size_t msglen);
void qs_sim_destroy(struct qs_sim *s);
const struct qs_sim_config *qs_sim_config_of(const struct qs_sim *s);

/* Advance to the next decision (d->done once all requests have completed). */
int qs_sim_next_decision(struct qs_sim *s, struct qs_sim_decision *d, char *msg, size_t msglen);
/* Send the pending request to backend b (must be eligible, unless none is: then
 * any backend may take it, as a dataplane's fallback would). */
int qs_sim_route(struct qs_sim *s, uint32_t b, char *msg, size_t msglen);
/* Build the router_v1 feature rows in each decision (default on; off saves time for
 * routers that only read the view). */
void qs_sim_set_features(struct qs_sim *s, bool on);
/* Drain up to cap queued outcomes (config.queue_outcomes); returns how many. */
uint32_t qs_sim_poll_outcomes(struct qs_sim *s, struct qs_sim_outcome *out, uint32_t cap);

/* ---- routers and the run loop ---------------------------------------------------- */

struct qs_policy;
struct qs_sim_router {
	char name[QS_SIM_NAME_LEN];
	bool is_policy;
	uint64_t seed;
	struct qs_baseline base;  /* a heuristic, or a policy's fallback */
	struct qs_policy *policy; /* owned when loaded by qs_sim_router_parse */
	uint64_t fallbacks;	  /* policy chose nothing, or every backend was masked:
				   * the fallback heuristic decided */
	/* cascade baselines: "small:H" / "large:H" keep heuristic H to the lowest- /
	 * highest-quality variant's backends, "thresh:H" sends difficulty >= 2 to the
	 * highest and the rest to the lowest (each within the candidates, so a quality
	 * floor still holds) */
	enum {
		QS_SIM_VARIANT_ANY = 0,
		QS_SIM_VARIANT_SMALL,
		QS_SIM_VARIANT_LARGE,
		QS_SIM_VARIANT_THRESH
	} variant;
};
/* "random", "rr", ..., "small:H", "large:H", "thresh:H" (H a heuristic), or "q8:FILE"
 * (loads and checks the policy). */
int qs_sim_router_parse(const char *spec, uint64_t seed, struct qs_sim_router *r, char *msg,
			size_t msglen);
void qs_sim_router_free(struct qs_sim_router *r);
/* A policy router's fallback heuristic (the config's `fallback`; qs_sim_run sets it
 * from its scenario); a heuristic router keeps its own. */
void qs_sim_router_fallback(struct qs_sim_router *r, enum qs_baseline_kind k);
int qs_sim_router_choose(struct qs_sim_router *r, const struct qs_sim_decision *d);
/* Drive s to the end with router r. */
int qs_sim_run(struct qs_sim *s, struct qs_sim_router *r, char *msg, size_t msglen);

/* ---- metrics ------------------------------------------------------------------------ */

enum qs_sim_metric { QS_SIM_M_TTFT = 0, QS_SIM_M_TPOT, QS_SIM_M_E2E, QS_SIM_M__COUNT };

struct qs_sim_metrics {
	uint64_t arrived;
	uint64_t completed;
	uint64_t slo_met;
	uint64_t preemptions;
	uint64_t truncated; /* requests longer than max_model_len */
	uint64_t prefix_hits;
	uint64_t events;
	uint64_t decisions;
	double makespan_s; /* first arrival to last completion */
	double p50_ms[QS_SIM_M__COUNT];
	double p90_ms[QS_SIM_M__COUNT];
	double p99_ms[QS_SIM_M__COUNT];
	double mean_ms[QS_SIM_M__COUNT];
	double slo_attainment;
	uint64_t class_n[QS_SIM_SLO_CLASSES];
	double class_attainment[QS_SIM_SLO_CLASSES];
	double goodput_rps; /* requests within SLO per second of makespan */
	/* cascade (docs/sim.md, "Model variants"): the mean quality served; the
	 * accuracy loss against the best backend on every request, 1 - served / best;
	 * quality-weighted goodput (the quality of requests within SLO and floor per
	 * second); the share that missed a latency SLO or its quality floor */
	double quality_mean, accuracy_loss, quality_goodput_rps, sla_violation_rate;
	uint64_t quality_violations;
	double throughput_rps;
	double throughput_tps;	/* generated tokens per second */
	double little_l;	/* time-average requests in the system */
	double little_lambda_w; /* arrival rate times mean time in the system */
	uint32_t n_backends;
	double util[QS_SIM_MAX_BACKENDS]; /* busy fraction of makespan */
	uint64_t be_completed[QS_SIM_MAX_BACKENDS];
	uint64_t be_preemptions[QS_SIM_MAX_BACKENDS];
	uint64_t all_masked; /* decisions where every backend was masked (fallback decided) */
	/* Checked reports (a [forger], a report_key or report_source = any; all 0
	 * otherwise): what the router was offered and what it did with them, by the
	 * dataplane's drop reasons. forged_taken: forged reports it believed. */
	bool reports_checked;
	uint64_t reports_offered, reports_taken, reports_old;
	uint64_t report_drop_source, report_drop_auth, report_drop_replay;
	uint64_t forged_sent, forged_taken;
	/* Client cancellations ([class] abandon_ms): requests cancelled before their
	 * first token (judged, SLO missed, in no latency histogram), and the work that
	 * freed: prompt tokens not prefilled plus tokens not generated. */
	uint64_t cancelled, cancel_saved_tokens;
	/* Per tenant: the first QS_SIM_TENANTS tenant ids seen, in that order, then one
	 * row (other) for the rest; requests judged (completed or cancelled), their SLO
	 * attainment and the completed ones' p99 TTFT. */
	uint32_t n_tenants;
	struct qs_sim_tenant_metrics {
		uint16_t tenant;
		bool other;
		uint64_t n;
		double attainment;
		double ttft_p99_ms;
	} tenant[QS_SIM_TENANTS + 1];
};

void qs_sim_metrics(const struct qs_sim *s, struct qs_sim_metrics *m);
/* The arrival rate in use (req/s; resolved from load when the workload gives one). */
double qs_sim_arrival_rate(const struct qs_sim *s);
/* Backend b's capacity estimates in req/s: saturation throughput and SLO-bounded
 * capacity (docs/sim.md, "Load"); 0 where not estimated. */
void qs_sim_capacity_estimates(const struct qs_sim *s, uint32_t b, double *sat_rps,
			       double *slo_rps);
/* Empirical CDF of a metric: up to cap (ms, fraction) points; returns how many. */
uint32_t qs_sim_cdf(const struct qs_sim *s, enum qs_sim_metric which, double *x_ms, double *frac,
		    uint32_t cap);

/*
 * The simulator's per-run accounting (the histograms, SLO attainment per class,
 * goodput and Little's law above) for requests measured outside it, so that a live
 * run's table is computed exactly as the simulator's (qsteer-load). Events must come
 * in time order: arrive at each arrival, then complete (an answered request, its
 * outcome judged with qs_sim_slo_met) or lost (never answered: counts as a request
 * that missed its SLO, and in no latency) once per arrival.
 */
struct qs_sim_tally;
int qs_sim_tally_create(struct qs_sim_tally **out); /* QS_OK or QS_E_NOMEM */
void qs_sim_tally_destroy(struct qs_sim_tally *t);
void qs_sim_tally_arrive(struct qs_sim_tally *t, uint64_t t_ns);
void qs_sim_tally_complete(struct qs_sim_tally *t, const struct qs_sim_outcome *o, uint64_t t_ns);
void qs_sim_tally_lost(struct qs_sim_tally *t, uint8_t slo_class, uint64_t t_ns);
/* Like qs_sim_metrics; the per-backend fields stay 0. */
void qs_sim_tally_metrics(const struct qs_sim_tally *t, struct qs_sim_metrics *m);
uint32_t qs_sim_tally_cdf(const struct qs_sim_tally *t, enum qs_sim_metric which, double *x_ms,
			  double *frac, uint32_t cap);

/*
 * s as the body of a gnuplot single-quoted string (a quote is written twice), for
 * the tools that write gnuplot scripts around user-given paths and names. Truncates
 * to fit out (outlen >= 1); returns out.
 */
const char *qs_sim_gp_quote(const char *s, char *out, size_t outlen);

#endif /* QSTEER_SIM_H */
