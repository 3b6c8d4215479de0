/*
 * sim_internal.h - the simulator's private structures, shared by the engine, the
 * backend models, the workload generators and the metrics. Nothing here is API.
 *
 * Assumes one thread per struct qs_sim; everything an instance owns hangs off it.
 * Requests live in one pool indexed by u32 (it may move when it grows, so code
 * holds indices, never pointers, across anything that can admit a request).
 */
#ifndef QSTEER_SIM_INTERNAL_H
#define QSTEER_SIM_INTERNAL_H

#include <stdarg.h>
#include <stdint.h>

#include "qsteer/admit.h"
#include "qsteer/prefix.h"
#include "qsteer/report_src.h"
#include "qsteer/rng.h"
#include "qsteer/sim.h"
#include "qsteer/ttft_window.h"

#define QS_NIL		  0xffffffffu
#define QS_SIM_SAT_SAMPLE 2000 /* requests per saturation-throughput estimate */
#define QS_SIM_LEN_SAMPLE 2000 /* trace rows kept for the capacity estimates */
#define QS_SIM_SLO_SAMPLE 2000 /* requests per SLO-attainment probe */
#define QS_SIM_SLO_STEPS  9    /* bisection steps: capacity within 0.2% of saturation */
#define QS_SIM_SLO_GOAL	  0.9  /* capacity: the rate at which 90% of requests meet the SLO */

/* ---- random streams: splitmix64 (qsteer/rng.h), one state per source ---------- */

/* Uniform in [0, 1). */
static inline double
qs_sim_rng_u01(uint64_t *s)
{
	return (double)(qs_splitmix64(s) >> 11) * 0x1.0p-53;
}

/* Seed of an independent stream `id` under the run's seed. */
static inline uint64_t
qs_sim_stream(uint64_t seed, uint64_t id)
{
	return qs_mix64(seed ^ qs_mix64(id * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull));
}

enum qs_sim_stream_id {
	QS_STREAM_ARRIVALS = 1,
	QS_STREAM_LENGTHS,
	QS_STREAM_CLASSES,
	QS_STREAM_PHASES,
	QS_STREAM_REPORT_DROP,
	QS_STREAM_REPORT_PHASE,
	QS_STREAM_ROUTER,
	QS_STREAM_ABANDON,
	QS_STREAM_TRACE, /* a trace window's offset and thinning */
	QS_STREAM_REPORT_LATE,
};

double qs_sim_rng_exp(uint64_t *s, double mean);
double qs_sim_rng_normal(uint64_t *s);
double qs_sim_rng_gamma(uint64_t *s, double shape, double scale);

/* ---- event heap ------------------------------------------------------------------------ */

enum qs_sim_ev {
	QS_EV_ARRIVAL = 1,
	QS_EV_ITER_END, /* a: backend */
	QS_EV_TOK_DONE, /* a: backend, b: request */
	QS_EV_CANCEL,	/* a: request, b: its id's low 32 bits (a stale event finds another) */
};

struct qs_sim_event {
	uint64_t t;
	uint64_t seq; /* push order: equal times pop in the order they were pushed */
	uint32_t type;
	uint32_t a;
	uint32_t b;
	uint32_t pad;
};

/*
 * Binary min-heap on (t, seq). The event being handled stays at the root
 * (top_done) until the next push, which takes its place with one sift, or the
 * next pop, which removes it: an iteration end that schedules the next iteration
 * costs one sift instead of a pop and a push. (t, seq) is a strict total order,
 * so the pop order does not depend on the heap's shape.
 */
struct qs_sim_heap {
	struct qs_sim_event *ev;
	uint32_t n; /* a top_done root included */
	uint32_t cap;
	uint64_t next_seq;
	bool top_done;
};

int qs_sim_heap_push(struct qs_sim_heap *h, uint64_t t, uint32_t type, uint32_t a, uint32_t b);
/* Hand out the earliest event (it stays at the root, done); false when none is left. */
bool qs_sim_heap_next(struct qs_sim_heap *h, struct qs_sim_event *out);

/* ---- requests -------------------------------------------------------------------------- */

struct qs_sim_req {
	struct qs_sim_request r;
	uint64_t decision_id;
	uint64_t first_token_ns; /* 0 until the first token */
	uint32_t next;		 /* waiting-queue link or free-list link */
	uint32_t backend;
	uint32_t prefill_target; /* tokens the (re)prefill must compute */
	uint32_t prefill_done;
	uint32_t generated; /* as of its last preemption or completion */
	uint32_t preemptions;
	bool cache_hit;
	bool first_done;
	bool cancel_pending; /* cancelled while prefilling in the running iteration */
};

struct qs_sim_pool {
	struct qs_sim_req *req;
	uint32_t cap;
	uint32_t free_head;
	uint32_t live;
};

/*
 * A running sequence of a batch backend. Sequences past their prefill
 * ("decoding") do not store their own KV length: every decode iteration
 * advances all of them by one token (by dec_t with speculation), so the backend
 * keeps one shared counter
 * (dec_iter) and each sequence stores kv0 = kv_tokens - dec_iter (mod 2^64) and
 * the counter value at which it completes. A decode-only iteration is then O(1):
 * its KV read is sum(kv0) + n * dec_iter, and the sequences that need a new KV
 * block are those with kv_tokens a multiple of 16, counted per kv0 mod 16.
 * Prefilling sequences keep explicit progress (they are few).
 */
struct qs_sim_slot {
	uint64_t kv0; /* decoding: kv_tokens - dec_iter */
	uint64_t fin; /* decoding: dec_iter at which it has generated everything */
	uint64_t adm; /* admission number: running-set order */
	uint32_t ri;
	uint32_t blocks;    /* prefilling: blocks held (decoding: ceil(kv_tokens / 16)) */
	uint32_t generated; /* prefilling: tokens generated before (re)admission */
	uint32_t gen_total;
	uint32_t sched; /* prefilling: tokens scheduled in the running iteration */
	uint32_t in_prefill;
	uint32_t prev, next; /* admission-order list */
	uint32_t hpos;	     /* decoding: index in the completion heap */
};

/* ---- backends ----------------------------------------------------------------------------- */

/* A report as the router holds it (the wire fields it needs, plus the received
 * prompt tokens, which stand for the dataplane's reset-on-report token counter). */
struct qs_sim_report {
	uint64_t t;
	uint32_t waiting;
	uint32_t running;
	uint32_t kv_used;
	uint32_t kv_total;
	uint32_t decode_tps;
	uint32_t ttft_p99_us;
	uint32_t prefill_pending;
	uint64_t received;
	uint64_t received_tokens;
	uint64_t completed;
};

struct qs_sim_pcache_entry {
	uint32_t hash;
	uint64_t used_ns;
};

struct qs_sim_backend {
	uint32_t id;
	struct qs_sim_profile prof;
	bool mixed; /* batch without chunked prefill, schedule = mixed (backend.c) */
	bool prio;  /* admission = priority or fair (admit.h) */
	bool fair;  /* admission = fair: tenant fair share within a priority */
	struct qs_admit_share share; /* fair: recent prefill tokens per tenant */
	uint64_t starve_ns;
	uint32_t since_starved; /* admissions since a starved one (admit.h) */
	/* queues */
	uint32_t wait_head, wait_tail, n_waiting;
	uint32_t n_running;
	/* batch running set (see struct qs_sim_slot); tokrate: unused */
	struct qs_sim_slot *slot; /* max_seqs slots */
	uint32_t *slot_free;	  /* free slot stack */
	uint32_t n_slot_free;
	uint32_t run_head, run_tail; /* admission order */
	uint32_t *pf;		     /* prefilling slots, admission order */
	uint32_t n_pf;
	uint32_t *fh; /* decoding slots: min-heap on (fin, adm) */
	uint32_t n_dec;
	uint32_t *done;	   /* scratch: slots completing at an iteration end */
	uint64_t dec_iter; /* tokens every decoding slot has gained: 1 per decode
			    * iteration, dec_t with speculation */
	uint32_t dec_t;	   /* tokens the running decode iteration adds to each */
	uint32_t dec_k;	   /* drafts each decode verifies in it (spec_depth, cut to the
			    * budget) */
	double spec_frac;  /* speculation: accepted drafts owed, fraction of a token */
	double spec_extra; /* speculation: expected accepted drafts per decode */
	uint64_t sum_kv0;  /* sum of kv0 over decoding slots (mod 2^64) */
	uint64_t adm_next;
	uint32_t kv_phase[QS_SIM_BLOCK_TOKENS]; /* decoding slots per kv0 mod 16 */
	bool dec_sched;	   /* the running iteration decodes every decoding slot */
	bool ttft_dirty;   /* ttft_max needs a rescan of ttft */
	uint32_t ttft_max; /* qs_ttft_window_max(&ttft) unless ttft_dirty */
	uint32_t kv_free;
	bool busy;
	uint64_t iter_start;
	uint64_t iter_ns;
	uint32_t iter_preempted;
	uint32_t n_cancel_pending; /* prefilling sequences with cancel_pending */
	/* counters */
	uint64_t received, received_tokens, completed, decoded, preemptions;
	uint64_t prefill_pending;
	uint64_t busy_ns;	    /* batch: iteration time; tokrate: slot time / concurrency */
	struct qs_ttft_window ttft; /* the report's TTFT figure, as the agent's */
	double tok_speed;	    /* tokrate: tokens/s per slot */
	/* reports (lazy: see engine.c) */
	uint64_t rep_phase;
	bool rep_lossy; /* reports can be lost (report_loss > 0 or an agent outage) */
	uint64_t rep_next_k;
	uint64_t rep_next_t; /* time of boundary rep_next_k (report_late: when it is sent) */
	/* report_late: boundary rep_next_k's time before its lateness; a report late by
	 * an interval or more moves the later ones (the agent keeps its phase) */
	uint64_t rep_nom_t;
	/* decode tokens per report interval, as the agent counts them: decoded at the
	 * newest boundary crossed, and the tokens of the first interval of the last
	 * crossing (win_k); a later interval of the same crossing had none */
	uint64_t dec_at_bnd;
	uint64_t win_k, win_tokens;
	struct qs_sim_report rep;
	bool rep_valid; /* rep was taken (the router masks a backend never heard from) */
	/* Checked reports (engine.c): the agent's own last report (rep is then what the
	 * router believed), the router's checks and the forger aiming at this backend. */
	bool rep_checked;
	struct qs_sim_report rep_own;
	uint64_t rep_seq_base;
	uint64_t held_seq; /* sequence number of rep */
	/* the router's sent counts when it took rep: the dataplane counts what it sent
	 * since the last report it took (dp/core.c), and so does the simulated router */
	uint64_t sent_at_rep, sent_tokens_at_rep;
	/* report_transit_ns: the report on its way, and when the router takes it
	 * (UINT64_MAX: none on its way) */
	struct qs_sim_report rep_transit;
	uint64_t rep_arrive_t;
	struct qs_report_src rep_src;
	uint64_t forge_next_t; /* UINT64_MAX: no forger here */
	uint64_t forge_n;
	bool forge_captured; /* replay: the first genuine report, as sent */
	uint8_t forge_msg[QS_QRP_AUTH_MSG_LEN + QS_QRP_REPORT_TAG_LEN];
	uint64_t forge_tokens; /* its received tokens (the simulator's side channel) */
	/* prefix cache */
	struct qs_sim_pcache_entry *pcache;
};

/* ---- workload ------------------------------------------------------------------------------ */

struct qs_sim_sample_row {
	uint64_t t_ns; /* in file order, out-of-order stamps clamped */
	uint32_t prompt, gen;
};

struct qs_sim_wl {
	const struct qs_sim_workload *cfg;
	uint64_t rng_arr, rng_len, rng_cls, rng_phase;
	double t_s;	    /* last arrival, seconds */
	double rate;	    /* resolved mean rate */
	bool burst;	    /* bursty: in the burst phase */
	double phase_end_s; /* bursty: when the phase ends */
	double quiet_rate, burst_rate;
	uint64_t emitted;
	uint64_t next_id;
	double cls_cum[QS_SIM_MAX_CLASSES];
	/* lognormal lengths: mu and sigma per class, [0] prompt, [1] gen (set at init) */
	double ln_mu[QS_SIM_MAX_CLASSES][2], ln_sigma[QS_SIM_MAX_CLASSES][2];
	/* trace */
	struct qs_sim_trace *trace;
	uint64_t rng_thin; /* the thinning stream; each pass over the trace restarts it */
	uint64_t rng_thin0;
	uint64_t tr_w0;	       /* the window's start (rows before it are not drawn for) */
	uint64_t tr_t0;	       /* first kept row's time in the window */
	uint64_t tr_end;       /* rows at or after this are outside the window */
	double tr_scale;       /* simulated seconds per trace second */
	double tr_natural;     /* the window's own request rate */
	double tr_mean_prompt; /* over the window */
	double tr_mean_gen;
	uint64_t tr_rows;
	uint64_t tr_last_ns;
	bool done;
	/* The trace window's first rows (owned), or, in a capacity probe, borrowed
	 * from its parent and replayed instead of the file. */
	struct qs_sim_sample_row *len_sample;
	uint32_t n_len_sample;
	bool len_sample_owned;
};

int qs_sim_wl_init(struct qs_sim_wl *w, const struct qs_sim_config *cfg, uint64_t seed, char *msg,
		   size_t msglen);
/* Same, a capacity probe: a trace workload replays the parent's sample, not the file. */
int qs_sim_wl_init_probe(struct qs_sim_wl *w, const struct qs_sim_config *cfg, uint64_t seed,
			 const struct qs_sim_sample_row *sample, uint32_t n_sample, char *msg,
			 size_t msglen);
/* Mean prompt/gen lengths the workload will produce (for load -> rate). */
void qs_sim_wl_mean_lengths(const struct qs_sim_wl *w, double *prompt, double *gen);
void qs_sim_wl_set_rate(struct qs_sim_wl *w, double rate);
/* Next request in arrival order; *have false when the workload is exhausted. */
int qs_sim_wl_next(struct qs_sim_wl *w, struct qs_sim_request *r, bool *have, char *msg,
		   size_t msglen);
void qs_sim_wl_free(struct qs_sim_wl *w);

/* ---- metrics ------------------------------------------------------------------------------- */

#define QS_SIM_HIST_SUB	    7 /* 128 sub-buckets per octave: < 0.4% relative error */
#define QS_SIM_HIST_BUCKETS ((64 - QS_SIM_HIST_SUB + 1) << QS_SIM_HIST_SUB)

struct qs_sim_hist {
	uint32_t *count;
	uint64_t n;
	double sum;
};

struct qs_sim_acc {
	struct qs_sim_hist h[QS_SIM_M__COUNT];
	uint64_t arrived, completed, slo_met, gen_tokens, prefix_hits, truncated;
	uint64_t lost; /* left unanswered (qs_sim_tally_lost; 0 in the simulator) */
	uint64_t cancelled, cancel_saved_tokens; /* by their clients (backend.c) */
	/* per tenant (qs_sim_metrics): [QS_SIM_TENANTS] sums the others */
	struct qs_sim_tenant_acc {
		uint16_t id;
		uint64_t n, met;
		struct qs_sim_hist ttft; /* count allocated at the tenant's first request */
	} ten[QS_SIM_TENANTS + 1];
	uint32_t n_ten;
	double sum_cancel_ns; /* their time in the system */
	uint64_t class_n[QS_SIM_SLO_CLASSES], class_met[QS_SIM_SLO_CLASSES];
	uint64_t first_arrival, last_completion;
	uint64_t in_system;
	uint64_t area_t; /* last time the in-system count changed */
	double area;	 /* integral of in-system count, request-ns */
	double sum_e2e_ns;
	/* cascade: quality served and best, over completions that carry them; quality
	 * of those within SLO and floor; floor misses; latency or floor misses over
	 * sla_n requests judged (those completions and the cancelled: SLO missed) */
	uint64_t q_n, q_viol, sla_viol, sla_n;
	double q_sum, q_best_sum, q_met_sum;
};

int qs_sim_acc_init(struct qs_sim_acc *a);
void qs_sim_acc_free(struct qs_sim_acc *a);
void qs_sim_acc_arrive(struct qs_sim_acc *a, uint64_t t);
void qs_sim_acc_complete(struct qs_sim_acc *a, const struct qs_sim_outcome *o, uint64_t t);
/* A request its client cancelled at t, having arrived at arrival_ns. */
void qs_sim_acc_cancel(struct qs_sim_acc *a, uint8_t slo_class, uint16_t tenant,
		       uint64_t arrival_ns, uint64_t t, uint64_t saved_tokens);
double qs_sim_hist_quantile(const struct qs_sim_hist *h, double q);

/* ---- the instance ------------------------------------------------------------------------- */

struct qs_sim {
	struct qs_sim_config cfg;
	uint64_t seed;
	uint64_t now;
	uint64_t events;
	struct qs_sim_heap heap;
	struct qs_sim_pool pool;
	struct qs_sim_wl wl;
	struct qs_sim_acc acc;
	uint32_t nb;
	struct qs_sim_backend be[QS_SIM_MAX_BACKENDS];
	uint32_t capacity[QS_SIM_MAX_BACKENDS];
	double sat_rps[QS_SIM_MAX_BACKENDS]; /* saturation throughput estimate (0: none) */
	double slo_rps[QS_SIM_MAX_BACKENDS]; /* SLO-bounded capacity (0: none) */
	uint8_t capacity_class[QS_SIM_MAX_BACKENDS];
	/* cascade: the best backend's quality per difficulty, the backends each SLO
	 * class may use on each difficulty (its quality floor), the lowest- and
	 * highest-quality variants' backends */
	double q_best[QS_SIM_DIFFICULTIES];
	uint64_t q_ok[QS_SIM_SLO_CLASSES][QS_SIM_DIFFICULTIES];
	uint64_t pending_admissible; /* q_ok of the pending decision's request */
	uint64_t v_small, v_large;
	/* router side */
	uint64_t rep_drop_seed;
	uint64_t rep_late_seed;
	uint64_t abandon_seed;
	uint64_t sent[QS_SIM_MAX_BACKENDS];
	uint64_t sent_tokens[QS_SIM_MAX_BACKENDS];
	struct qs_prefix_table *prefix;
	/* the request waiting for qs_sim_route */
	bool pending;
	uint32_t pending_req;
	uint64_t decisions;
	bool wl_done;
	bool build_features;
	struct qs_sim_view_backend vb[QS_SIM_MAX_BACKENDS]; /* build_view's input */
	uint64_t pending_eligible;			    /* the pending decision's mask */
	uint64_t all_masked; /* decisions with every backend masked */
	/* checked reports, as struct qs_sim_metrics names them */
	uint64_t rc_offered, rc_taken, rc_old, rc_source, rc_auth, rc_replay;
	uint64_t forged_sent, forged_taken;
	/* outcome queue */
	struct qs_sim_outcome *oq;
	uint32_t oq_head, oq_n, oq_cap;
};

/* backend.c */
int qs_sim_backend_init(struct qs_sim *s, struct qs_sim_backend *be, uint32_t id,
			const struct qs_sim_profile *p);
void qs_sim_backend_free(struct qs_sim_backend *be);
int qs_sim_backend_enqueue(struct qs_sim *s, struct qs_sim_backend *be, uint32_t ri);
int qs_sim_backend_iter_end(struct qs_sim *s, struct qs_sim_backend *be);
int qs_sim_backend_tok_done(struct qs_sim *s, struct qs_sim_backend *be, uint32_t ri);
/* The client of request ri (id's low 32 bits id32) cancels it, if it is still
 * waiting for its first token there. */
int qs_sim_backend_cancel(struct qs_sim *s, struct qs_sim_backend *be, uint32_t ri, uint32_t id32);
static inline uint32_t
qs_sim_backend_kv_used(const struct qs_sim_backend *be)
{
	/* Tokrate servers have no KV model: slots in use stand for it. */
	if (be->prof.model == QS_SIM_MODEL_TOKRATE)
		return be->n_running;
	return be->prof.kv_blocks - be->kv_free;
}

static inline uint32_t
qs_sim_backend_kv_total(const struct qs_sim_backend *be)
{
	return be->prof.model == QS_SIM_MODEL_TOKRATE ? be->prof.concurrency : be->prof.kv_blocks;
}

/* engine.c */
int qs_sim_pool_alloc(struct qs_sim *s, uint32_t *ri);
void qs_sim_complete(struct qs_sim *s, struct qs_sim_backend *be, uint32_t ri);
void qs_sim_pool_free(struct qs_sim *s, uint32_t ri);
/* Take any report the backend emitted up to t (state is unchanged since its last event). */
void qs_sim_reports_take(struct qs_sim *s, struct qs_sim_backend *be, uint64_t t);
static inline void
qs_sim_reports_sync(struct qs_sim *s, struct qs_sim_backend *be, uint64_t t)
{
	/* else no boundary crossed and no forged report due since the last sync */
	if (t >= be->rep_next_t || t >= be->forge_next_t || t >= be->rep_arrive_t)
		qs_sim_reports_take(s, be, t);
}

#endif /* QSTEER_SIM_INTERNAL_H */
