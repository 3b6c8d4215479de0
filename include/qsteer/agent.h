/*
 * agent.h - libqsteer-agent: the GPU-host companion (DESIGN.md 1, issue 7).
 *
 * Pieces, each usable and tested on its own:
 *   qs_kv_*          paged KV-block allocator (16-token blocks, free list, owners)
 *   qs_agent_intake  QRP datagrams -> complete requests (continuations reassembled
 *                    by request id in a bounded, ageing table; drops by reason)
 *   qs_batch_*       batching strategies behind one interface (fixed, adaptive,
 *                    coalescing, latency, throughput, learned int8 classifier)
 *   qs_agent_exec    executors behind one interface (model: simulator profile;
 *                    cuda: real GPU work, in agent/cuda/)
 *   qs_agent         waiting queue + running set + iteration-level scheduler with
 *                    KV preemption by recompute, response events and QRP reports
 *   qs_agent_serve   the UDP loop (recvmmsg) the program and the loopback test run
 *   qs_agent_bench   strategies compared on the same arrivals in virtual time
 *
 * Memory is allocated at create time only; an iteration never allocates. Libraries
 * return qs_status codes and fill a caller-owned message; only programs print.
 */
#ifndef QSTEER_AGENT_H
#define QSTEER_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "agent_wire.h"
#include "batch_features.h"
#include "profile.h"
#include "report_auth.h"
#include "status.h"
#include "wire.h"

#ifdef __cplusplus
extern "C" { /* the CUDA sources are C++ */
#endif

#define QS_KV_BLOCK_TOKENS 16
#define QS_KV_NO_OWNER	   0xffffffffu
#define QS_AGENT_NAME_LEN  64

/* ---- KV-block allocator ------------------------------------------------------ */

struct qs_kv {
	uint32_t n_blocks;
	uint32_t n_free;
	uint32_t *free_stack; /* n_free valid entries at the bottom */
	uint32_t *owner;      /* per block: owning sequence slot or QS_KV_NO_OWNER */
};

int qs_kv_init(struct qs_kv *kv, uint32_t n_blocks, char *msg, size_t msglen);
void qs_kv_fini(struct qs_kv *kv);
/* Take a free block for owner: QS_OK, or QS_E_NOMEM when none is free. */
int qs_kv_alloc(struct qs_kv *kv, uint32_t owner, uint32_t *block);
/* Give block back: QS_E_VALUE if owner does not hold it (double free, wrong owner). */
int qs_kv_release(struct qs_kv *kv, uint32_t owner, uint32_t block);
static inline uint32_t
qs_kv_used(const struct qs_kv *kv)
{
	return kv->n_blocks - kv->n_free;
}
/* Full invariant check (tests, debug): every block either free once or owned. */
int qs_kv_check(const struct qs_kv *kv, char *msg, size_t msglen);
/* Blocks a context of tokens needs. */
static inline uint32_t
qs_kv_blocks_for(uint32_t tokens)
{
	return (tokens + QS_KV_BLOCK_TOKENS - 1) / QS_KV_BLOCK_TOKENS;
}

/* ---- request intake ------------------------------------------------------------ */

/* A sender's address as recvmmsg gave it (a struct sockaddr_in or _in6). */
struct qs_agent_addr {
	uint8_t b[28];
	uint32_t len;
};

/* One complete request. */
struct qs_agent_req {
	uint64_t id;
	uint32_t prompt_tokens;
	uint32_t max_new_tokens;
	uint32_t prefix_hash;
	uint16_t tenant;
	uint8_t priority;
	uint8_t slo_class;
	/* The model executor's draft acceptance for this request, percent (0: the
	 * profile's spec_accept). The bench sets it from the scenario's workload class;
	 * a real engine measures its own and ignores it. */
	uint8_t spec_accept_pct;
	uint32_t packets;
	uint64_t bytes;	  /* payload bytes after the headers, all packets */
	uint64_t recv_ns; /* when the last packet arrived */
	struct qs_agent_addr client;
};

/* Drop reasons: 1..QS_QRP_E__COUNT-1 are wire.h's; the rest are the agent's. */
enum qs_agent_drop {
	QS_AGENT_DROP_ORPHAN = QS_QRP_E__COUNT, /* continuation with no open request */
	QS_AGENT_DROP_DUPLICATE,		/* a second start for an open request id */
	QS_AGENT_DROP_TABLE_FULL,		/* no room to reassemble another request */
	QS_AGENT_DROP_EXPIRED,			/* incomplete request aged out */
	QS_AGENT_DROP_TOO_MANY,			/* more packets than a request may have */
	QS_AGENT_DROP_UNEXPECTED,		/* a report sent to the agent */
	QS_AGENT_DROP_INVALID,			/* 0 or oversized token counts */
	QS_AGENT_DROP_MISMATCH,			/* continuation disagrees with its start */
	QS_AGENT_DROP__COUNT
};
const char *qs_agent_drop_name(int reason);

struct qs_agent_intake_cfg {
	uint32_t table_size;	    /* open multi-packet requests (default 256) */
	uint64_t max_age_ns;	    /* incomplete requests older than this expire (1 s) */
	uint32_t max_packets;	    /* per request (default 64) */
	uint32_t max_prompt_tokens; /* larger is INVALID (default 1 << 20) */
	uint32_t max_new_tokens;    /* larger is INVALID (default 1 << 16) */
};

struct qs_agent_intake_stats {
	uint64_t packets;
	uint64_t requests; /* completed */
	uint64_t cancels;
	uint64_t drops[QS_AGENT_DROP__COUNT];
	uint64_t dropped; /* sum of drops[] */
};

enum qs_agent_in {
	QS_AGENT_IN_NONE = 0, /* consumed: a request waits for more packets */
	QS_AGENT_IN_REQUEST,  /* *req is a complete request */
	QS_AGENT_IN_CANCEL,   /* req->id should be cancelled */
	QS_AGENT_IN_DROP,     /* dropped and counted; *reason says why */
};

struct qs_agent_intake;
void qs_agent_intake_cfg_default(struct qs_agent_intake_cfg *c);
int qs_agent_intake_create(const struct qs_agent_intake_cfg *c, struct qs_agent_intake **out,
			   char *msg, size_t msglen);
void qs_agent_intake_destroy(struct qs_agent_intake *in);
/* Feed one datagram payload (len bytes). Never fails: bad input is a counted drop. */
enum qs_agent_in qs_agent_intake_feed(struct qs_agent_intake *in, const uint8_t *buf, uint32_t len,
				      const struct qs_agent_addr *from, uint64_t now_ns,
				      struct qs_agent_req *req, int *reason);
/* Expire incomplete requests older than max_age_ns; returns how many. */
uint32_t qs_agent_intake_age(struct qs_agent_intake *in, uint64_t now_ns);
uint32_t qs_agent_intake_open(const struct qs_agent_intake *in);
const struct qs_agent_intake_stats *qs_agent_intake_stats(const struct qs_agent_intake *in);

/* ---- batching strategies --------------------------------------------------------- */

struct qs_batch_limits {
	uint32_t max_seqs;	 /* sequences per iteration */
	uint32_t max_tokens;	 /* prefill + decode tokens per iteration */
	uint32_t kv_reserve_pct; /* admissions leave this share of blocks free */
	uint32_t spec_depth;	 /* draft tokens per decoding sequence (0: no speculation) */
};

enum qs_batch_order {
	QS_BATCH_FCFS = 0, /* oldest first */
	QS_BATCH_SHORTEST, /* shortest prompt first (within a bounded window) */
	QS_BATCH_PRIORITY, /* tightest SLO class, then priority, then oldest */
};

/* What a strategy decides for one iteration. */
struct qs_batch_decision {
	struct qs_batch_limits lim;
	enum qs_batch_order order;
	bool coalesce;	 /* admit only prompts in the first admitted one's log2 bucket */
	uint16_t action; /* learned: action index taken; others 0 */
};

/* What a strategy sees: the feature state plus hardware limits and raw times. */
struct qs_batch_view {
	struct qs_batch_state st;
	struct qs_batch_limits hw; /* the profile's limits: strategies stay within */
	uint64_t last_iter_ns;
	uint64_t now_ns;
};

enum qs_batch_kind {
	QS_BATCH_K_FIXED = 0,
	QS_BATCH_K_ADAPTIVE,
	QS_BATCH_K_COALESCE,
	QS_BATCH_K_LATENCY,
	QS_BATCH_K_THROUGHPUT,
	QS_BATCH_K_LEARNED,
	QS_BATCH_K_EXTERNAL,  /* decided by a caller's function (the trainer's float policy) */
	QS_BATCH_K_SPEC_RULE, /* fixed, with a speculation depth that falls with batch and context
			       */
	QS_BATCH_K__COUNT
};

typedef void (*qs_batch_ext_fn)(void *ctx, const struct qs_batch_view *v,
				struct qs_batch_decision *d);

struct qs_policy;
struct qs_q8_action;
struct qs_batch_strategy {
	char name[QS_AGENT_NAME_LEN];
	enum qs_batch_kind kind;
	uint32_t fixed_seqs;	   /* fixed: cap (0: the hardware cap) */
	uint32_t spec_depth;	   /* fixed (spec:K): draft tokens per decoding sequence */
	uint64_t target_iter_ns;   /* adaptive, latency: iteration time to stay under */
	uint32_t adaptive_cap;	   /* adaptive: current cap (0: not started) */
	uint32_t adaptive_tokens;  /* adaptive: current token budget */
	struct qs_policy *policy;  /* learned, owned */
	uint64_t action_count[64]; /* learned: how often each action won */
	qs_batch_ext_fn ext;	   /* external: called with d preset to the hardware limits */
	void *ext_ctx;
};

/* Apply a classifier action (limits, order, coalescing) to a decision. */
void qs_batch_apply_action(const struct qs_q8_action *a, struct qs_batch_decision *d);

/*
 * spec: "fixed", "fixed:N", "adaptive", "adaptive:TARGET_MS", "coalesce", "latency",
 * "throughput", "spec:K" (fixed with K draft tokens), "spec-rule", or "q8:FILE" (a
 * classifier for QS_SCHEMA_BATCH_V1).
 */
int qs_batch_parse(const char *spec, struct qs_batch_strategy *s, char *msg, size_t msglen);
/*
 * The same, where a q8:FILE policy must be signed with one of keys when keys holds
 * any (policy.h; NULL or empty: no signature required). Built-in strategies are
 * compiled in, not files, and need none.
 */
struct qs_q8_keyset;
int qs_batch_parse_signed(const char *spec, const struct qs_q8_keyset *keys,
			  struct qs_batch_strategy *s, char *msg, size_t msglen);
/* Build the learned strategy from a loaded policy (takes ownership on QS_OK). */
int qs_batch_from_policy(struct qs_policy *p, const char *name, struct qs_batch_strategy *s,
			 char *msg, size_t msglen);
void qs_batch_free(struct qs_batch_strategy *s);
void qs_batch_decide(struct qs_batch_strategy *s, const struct qs_batch_view *v,
		     struct qs_batch_decision *d);
extern const char *const qs_batch_builtin[]; /* NULL-terminated list of heuristic specs */
/* The speculation heuristics (NULL-terminated): the bench adds them for a profile
 * with a draft model (spec_max_depth > 0); elsewhere they equal `fixed`. */
extern const char *const qs_batch_builtin_spec[];

/* ---- executors ------------------------------------------------------------------- */

/* One sequence's share of an iteration. */
struct qs_agent_batch_seq {
	uint32_t slot;
	uint32_t ctx_start; /* tokens already in its KV blocks before this iteration */
	uint32_t n_tokens;  /* positions computed now: a prefill chunk, or 1 + draft */
	uint32_t draft;	    /* decode: draft tokens proposed and verified now (0..8) */
	uint8_t accept_pct; /* decode with draft: qs_agent_req.spec_accept_pct */
	uint64_t req_id;
	bool decode;
	const uint32_t *blocks; /* its block table */
	uint32_t n_blocks;
};

struct qs_agent_batch {
	uint32_t n;
	uint32_t prefill_tokens;
	uint32_t decode_seqs;
	uint64_t kv_tokens;    /* context tokens the decodes read */
	uint32_t draft_tokens; /* sum of the decodes' draft */
	uint32_t spec_depth;   /* the largest draft: sequential draft-model steps */
	struct qs_agent_batch_seq *seq;
	/* Out, n entries: how many of seq[i]'s draft tokens the target accepted
	 * (run() fills it when draft_tokens > 0; 0 for every other sequence). */
	uint32_t *accepted;
};

struct qs_agent_exec {
	char name[QS_AGENT_NAME_LEN];
	void *ctx;
	/* Run one iteration; *ns is how long it took (model: how long it would take). */
	int (*run)(void *ctx, const struct qs_agent_batch *b, uint64_t *ns, char *msg,
		   size_t msglen);
	void (*destroy)(void *ctx);
	bool simulated;		 /* the caller must let *ns pass itself (model executor) */
	uint32_t spec_max_depth; /* draft tokens it can verify per sequence (0: none) */
};

/* The simulator's batch-model iteration time (sim.h), in ns. */
uint64_t qs_agent_model_iter_ns(const struct qs_sim_profile *p, uint64_t prefill_tokens,
				uint64_t decode_seqs, uint64_t kv_tokens);
/* The same with speculation (profile.h): spec_depth draft steps, draft_tokens
 * verified beside the decodes. */
uint64_t qs_agent_model_spec_ns(const struct qs_sim_profile *p, uint64_t prefill_tokens,
				uint64_t decode_seqs, uint64_t kv_tokens, uint64_t draft_tokens,
				uint32_t spec_depth);
/* The model executor's draw: how many of k draft tokens are accepted at per-token
 * acceptance pct percent, from a hash of (request, position), so a run does not
 * depend on the order sequences were batched in. */
uint32_t qs_agent_model_accepted(uint64_t req_id, uint32_t position, uint32_t k, uint32_t pct);
int qs_agent_exec_model(const struct qs_sim_profile *p, struct qs_agent_exec *e, char *msg,
			size_t msglen);
void qs_agent_exec_destroy(struct qs_agent_exec *e);

/* Profiles: the simulator's loader when libqsteer-sim is built, else the agent's own
 * parser of the same keys (docs/agent.md). */
int qs_agent_profile_load(const char *path, struct qs_sim_profile *p, char *msg, size_t msglen);
int qs_agent_profile_parse(const char *text, const char *label, struct qs_sim_profile *p, char *msg,
			   size_t msglen);
void qs_agent_profile_default(struct qs_sim_profile *p);
int qs_agent_profile_write(FILE *f, const struct qs_sim_profile *p);

/* Least-squares fit of fixed + prefill/token + decode/seq + kv/token to samples. */
struct qs_agent_iter_sample {
	double prefill_tokens;
	double decode_seqs;
	double kv_tokens;
	double us;
};
int qs_agent_profile_fit(const struct qs_agent_iter_sample *s, uint32_t n, struct qs_sim_profile *p,
			 double *rms_us, char *msg, size_t msglen);

/* ---- the agent core ---------------------------------------------------------------- */

struct qs_agent_cfg {
	uint16_t backend_id;
	struct qs_sim_profile prof; /* limits (max_seqs, max_tokens, kv_blocks, ...) */
	uint32_t max_slots;	    /* waiting + running sequences held (default 4096) */
	uint64_t window_ns;	    /* feature and report windows (default 100 ms) */
	bool chunked_prefill;	    /* split prompts over iterations to fit the budget */
	/* Priority admission (admit.h, as the simulator's admission = priority): the
	 * highest QRP priority first, whatever the strategy's order; lower priorities
	 * preempted for a higher one that does not fit; starve_ns the starvation bound
	 * (0: none). */
	bool admit_priority;
	/* Tenant fair share on top of it (admit.h; admission "fair", the simulator's
	 * admission = fair): within a priority, the tenant with the fewest prefill
	 * tokens admitted lately first. Needs admit_priority. */
	bool admit_fair;
	uint64_t starve_ns;
};

enum qs_agent_ev_kind {
	QS_AGENT_EV_FIRST = QS_QRA_K_FIRST,
	QS_AGENT_EV_DONE = QS_QRA_K_DONE,
	QS_AGENT_EV_REJECTED = QS_QRA_K_REJECTED,
	QS_AGENT_EV_CANCELLED = QS_QRA_K_CANCELLED,
	QS_AGENT_EV_CANCEL_UNKNOWN = QS_QRA_K_CANCEL_UNKNOWN,
};

struct qs_agent_event {
	uint8_t kind;
	uint8_t slo_class;
	uint16_t tenant;
	uint64_t request_id;
	uint32_t prompt_tokens;
	uint32_t tokens;
	uint32_t preemptions;
	uint64_t arrival_ns; /* when the agent received it */
	uint64_t first_ns;
	uint64_t event_ns;
	struct qs_agent_addr client;
};

/* One iteration as run. */
struct qs_agent_iter {
	uint64_t start_ns;
	uint64_t ns;
	uint32_t seqs;
	uint32_t prefill_tokens;
	uint32_t decode_seqs;
	uint32_t draft_tokens;
	uint32_t preempted;
	uint32_t kv_used;
	struct qs_batch_decision dec;
};

/* Tenants with a row of their own in qs_agent_stats (the first seen); the others
 * are summed in one more row, as the simulator's tenant metrics (sim.h). */
#define QS_AGENT_TENANTS 8

struct qs_agent_tenant_stats {
	uint16_t tenant; /* the id; the others' row: 0 */
	bool others;	 /* the row that sums every tenant past the first QS_AGENT_TENANTS */
	uint64_t received, rejected, completed, cancelled, first_tokens;
	uint64_t ttft_max_ns; /* the longest time to first token */
};

struct qs_agent_stats {
	uint64_t received; /* submitted: accepted + rejected */
	uint64_t rejected; /* queue full or longer than the KV cache */
	uint64_t completed;
	uint64_t cancelled;
	uint64_t first_tokens;
	uint64_t preemptions;
	uint64_t iterations;
	uint64_t busy_ns;
	uint64_t decode_tokens;
	uint64_t prefill_tokens;
	uint64_t spec_drafted;	/* draft tokens verified */
	uint64_t spec_accepted; /* of those, accepted */
	uint64_t events_lost;	/* event buffer full (the caller did not drain it) */
	/* per tenant (issue 15): rows in the order tenants were first seen, the
	 * others' row (if any) last */
	uint32_t n_tenants;
	struct qs_agent_tenant_stats tenant[QS_AGENT_TENANTS + 1];
};

struct qs_agent;
void qs_agent_cfg_default(struct qs_agent_cfg *c);
/* The agent borrows strategy and exec; the caller frees them after the agent. */
int qs_agent_create(const struct qs_agent_cfg *c, struct qs_batch_strategy *strategy,
		    struct qs_agent_exec *exec, struct qs_agent **out, char *msg, size_t msglen);
void qs_agent_destroy(struct qs_agent *a);
/* Queue a request; QS_E_SIZE (and a REJECTED event) if it cannot be held. */
int qs_agent_submit(struct qs_agent *a, const struct qs_agent_req *r, uint64_t now_ns);
/* Cancel the waiting or running request c->id: its KV blocks are freed at once, and
 * a CANCELLED event (to c->client, with the tokens generated) says so: QS_OK. A
 * request the agent does not hold gets a CANCEL_UNKNOWN event: QS_E_ARG. */
int qs_agent_cancel(struct qs_agent *a, const struct qs_agent_req *c, uint64_t now_ns);
/*
 * Schedule and run one iteration starting at now_ns. it->seqs == 0: nothing to run.
 * Events (first tokens, completions, rejections) since the last step are returned
 * by qs_agent_events, timestamped at now_ns + it->ns.
 */
int qs_agent_step(struct qs_agent *a, uint64_t now_ns, struct qs_agent_iter *it, char *msg,
		  size_t msglen);
const struct qs_agent_event *qs_agent_events(struct qs_agent *a, uint32_t *n);
void qs_agent_events_clear(struct qs_agent *a);
uint32_t qs_agent_waiting(const struct qs_agent *a);
uint32_t qs_agent_running(const struct qs_agent *a);
const struct qs_agent_stats *qs_agent_stats(const struct qs_agent *a);
const struct qs_kv *qs_agent_kv(const struct qs_agent *a);
/* Check every invariant (KV ownership against block tables, queue counts). */
int qs_agent_check(const struct qs_agent *a, char *msg, size_t msglen);

/* Fill a backend report (cumulative counts; p99 TTFT and decode tokens/s over the
 * window since the previous report) and start a new window. */
void qs_agent_report(struct qs_agent *a, uint64_t now_ns, struct qs_qrp_report *r);
/* Encode header (type 3, request id = seq) + body: QS_QRP_HDR_LEN + QS_QRP_REPORT_LEN
 * bytes; with a key (k->has_key) also the tag (report_auth.h): QS_QRP_REPORT_TAG_LEN
 * more. Returns the length. */
uint32_t qs_agent_report_encode(const struct qs_qrp_report *r, uint64_t seq,
				const struct qs_report_key *k, uint8_t *buf);
/* Encode a response datagram (QS_QRA_LEN bytes) for an event. */
uint32_t qs_agent_event_encode(const struct qs_agent_event *e, uint16_t backend_id, uint8_t *buf);

/* ---- the UDP loop -------------------------------------------------------------------- */

#define QS_AGENT_MAX_REPORT_TO 16

struct qs_agent_serve_cfg {
	char listen[128];			     /* "HOST:PORT" */
	char report_to[QS_AGENT_MAX_REPORT_TO][128]; /* "HOST:PORT" each */
	uint32_t n_report_to;
	uint64_t report_interval_ns; /* default 5 ms */
	/* report_key_file: sign every report; the sequence then starts at the wall
	 * clock in ns, so it keeps rising across restarts (report_auth.h) */
	struct qs_report_key report_key;
	uint64_t max_run_ns;	/* stop after this long (0: until *stop) */
	uint64_t max_completed; /* stop after this many completions (0: no limit) */
	volatile int *stop;	/* stop when it becomes nonzero (signal handler) */
	int bound_port;		/* out: the port bound (when listen asks for 0) */
	volatile int *ready;	/* set to 1 once the socket is bound (tests) */
};

/* Report lateness buckets: 50 us each up to 50 ms, the last one everything beyond. */
#define QS_AGENT_LATE_BUCKETS	1000
#define QS_AGENT_LATE_BUCKET_NS 50000ull

struct qs_agent_serve_stats {
	uint64_t datagrams;
	uint64_t reports_sent;
	uint64_t responses_sent;
	uint64_t send_errors;
	uint64_t elapsed_ns;
	/* How long after its due time each report went out. The loop's wait wakes late
	 * on a busy machine, and a report two intervals late masks the backend in the
	 * dataplane for a moment; qsteer-sim models the distribution measured here
	 * ([scenario] report_late_us, docs/sim.md). */
	uint32_t report_late[QS_AGENT_LATE_BUCKETS];
	uint64_t report_late_max_ns;
};

/* The lateness histogram as "LOWER_US:COUNT ..." over its nonempty buckets, then
 * "max US" (what scripts/cluster.sh reads from the agent's exit line). */
void qs_agent_serve_late_format(const struct qs_agent_serve_stats *st, char *buf, size_t len);

void qs_agent_serve_cfg_default(struct qs_agent_serve_cfg *c);
/* Parse "HOST:PORT" / "[V6]:PORT" / "PORT" into a sockaddr (struct qs_agent_addr). */
int qs_agent_addr_parse(const char *s, uint16_t default_port, struct qs_agent_addr *a, char *msg,
			size_t msglen);
int qs_agent_serve(struct qs_agent *a, struct qs_agent_intake *in, struct qs_agent_serve_cfg *c,
		   struct qs_agent_serve_stats *st, char *msg, size_t msglen);

/* The bench (strategies compared on the simulator's scenarios) is agent_bench.h:
 * it needs the simulator, this library does not. */

#ifdef __cplusplus
}
#endif

#endif /* QSTEER_AGENT_H */
