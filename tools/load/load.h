/*
 * load.h - libqsteer-load, the open-loop load generator behind qsteer-load
 * (docs/load.md): a request schedule built from the simulator's own workloads
 * (a scenario's synthetic arrivals or an Azure-format trace, read by sim's
 * reader), time-scaled; QRP encoding of each request (wire.h, continuations for
 * large ones); per-request bookkeeping of the agents' direct responses
 * (agent_wire.h), every datagram validated before use and refusals counted by
 * reason; and the outcome table computed by the simulator's own accounting
 * (qs_sim_tally, qs_sim_slo_met).
 *
 * Open loop: a request is sent at its scheduled time whatever the backends do,
 * and its latencies are measured from that scheduled time, so a sender that
 * falls behind cannot hide queueing (no coordinated omission). All times are
 * integer nanoseconds from the run's start on CLOCK_MONOTONIC.
 *
 * Library code: returns enum qs_status and fills a caller-owned message; only the
 * program prints.
 */
#ifndef QSTEER_TOOLS_LOAD_H
#define QSTEER_TOOLS_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qsteer/sim.h"
#include "qsteer/status.h"

#define QS_LOAD_MAX_REQUESTS (1u << 22) /* a schedule's upper bound (memory) */
#define QS_LOAD_MAX_CLIENTS  1024	/* client sockets */
#define QS_LOAD_MAX_PACKETS  64		/* per request: the agent's reassembly limit */
#define QS_LOAD_MAX_DGRAM    65507	/* largest UDP payload over IPv4 */
#define QS_LOAD_MAX_BACKENDS 256	/* backend ids counted one by one; others lumped */

/* What became of a request. */
enum qs_load_state {
	QS_LOAD_S_UNSENT = 0, /* scheduled, never sent (the run was stopped) */
	QS_LOAD_S_SENT,	      /* sent, no final answer (yet): timed out at the end */
	QS_LOAD_S_DONE,	      /* completion received: answered */
	QS_LOAD_S_REJECTED,   /* the agent refused it (REJECTED response) */
	QS_LOAD_S_SEND_FAILED,
	QS_LOAD_S__COUNT
};

/* Why a received datagram was not used. The first five are the wire reasons. */
enum qs_load_bad {
	QS_LOAD_BAD_SHORT = 0,
	QS_LOAD_BAD_MAGIC,
	QS_LOAD_BAD_VERSION,
	QS_LOAD_BAD_KIND,
	QS_LOAD_BAD_FIELD,
	QS_LOAD_BAD_UNKNOWN_ID, /* not one of this run's ids, or not sent yet */
	QS_LOAD_BAD_WRONG_PORT, /* arrived on another client socket than the request left */
	QS_LOAD_BAD_DUPLICATE,	/* a second first-token / completion / rejection */
	QS_LOAD_BAD_BACKEND,	/* first token and completion name different backends */
	QS_LOAD_BAD_TOKENS,	/* completion with 0 tokens or more than max new tokens */
	QS_LOAD_BAD__COUNT
};

#define QS_LOAD_RF_FIRST_SEEN 0x01 /* a first-token datagram arrived */
#define QS_LOAD_RF_FIRST_EST  0x02 /* first_ns estimated from the completion */

/* One request: what to send, then what happened (times from the run's start). */
struct qs_load_req {
	uint64_t sched_ns; /* intended send time: latencies count from here */
	uint32_t prompt_tokens;
	uint32_t max_new_tokens;
	uint32_t prefix_hash;
	uint16_t tenant;
	uint8_t priority;
	uint8_t slo_class;
	/* a cascade scenario's: the difficulty class its header carries (without, as
	 * in other scenarios, the dataplane derives one: router_view.h) */
	bool has_difficulty;
	uint8_t difficulty;
	uint8_t class_index;
	uint8_t state; /* enum qs_load_state */
	uint8_t flags; /* QS_LOAD_RF_* */
	uint16_t backend;
	uint32_t sock; /* client socket it left from */
	uint32_t tokens;
	uint32_t preemptions;
	uint64_t send_ns;  /* actual send time of its first packet (0: not sent) */
	uint64_t first_ns; /* first token received (0: none) */
	uint64_t done_ns;  /* completion or rejection received (0: none) */
	/* The agent's receipt (its recv_ns) minus our send, both CLOCK_MONOTONIC: the
	 * one-way time to the agent, through the dataplane when it is the target. Only
	 * meaningful with client and agent on one host (the live cluster); 0: unknown
	 * (no answer yet, or a clock that puts the receipt before the send). */
	uint64_t reach_ns;
};

/* The schedule and everything the run learns about it. */
struct qs_load_book {
	struct qs_load_req *req;
	uint32_t n;
	uint64_t id_base;   /* request i travels as id_base + i */
	uint64_t mono_base; /* CLOCK_MONOTONIC at the run's time 0 (0: reach unknown) */
	uint64_t datagrams;
	uint64_t responses; /* valid ones */
	uint64_t settled;   /* requests answered, rejected or failed to send */
	uint64_t bad[QS_LOAD_BAD__COUNT];
};

const char *qs_load_bad_name(int reason);
const char *qs_load_state_name(int state);
void qs_load_book_free(struct qs_load_book *b);

/* ---- arrivals ------------------------------------------------------------------ */

struct qs_load_src_cfg {
	const char *scenario;	  /* name or path (qs_sim_scenario_load_named); may be NULL */
	const char *scenario_dir; /* NULL: the simulator's lookup */
	const char *trace;	  /* Azure-format CSV; NULL: the scenario's own arrivals */
	double load;		  /* > 0: the scenario's load (fraction of its cluster) */
	double rate;		  /* > 0: the scenario's mean rate, requests/s */
	uint64_t seed;
	uint32_t requests;	/* > 0: at most this many */
	uint64_t duration_ns;	/* > 0: only arrivals scheduled before this (after speedup) */
	uint32_t speedup_milli; /* inter-arrival gaps divided by speedup_milli / 1000; 0: 1000 */
};

/* What the source says about itself. */
struct qs_load_src_info {
	char name[QS_SIM_NAME_LEN];		   /* the scenario's name, else the trace's file */
	char primary_metric[32];		   /* the scenario's, else "ttft_p99" */
	struct qs_sim_slo slo[QS_SIM_SLO_CLASSES]; /* per SLO class; all 0: no limits */
};

/*
 * Build b's schedule. With a scenario (and no trace): the simulator generates the
 * scenario's stream (arrival process, classes, tenants, SLO classes, prefixes)
 * exactly as qsteer-sim would, load/rate overriding the file's. With a trace: its
 * rows in order, prompt = context tokens, max new tokens = generated tokens (each at
 * least 1), class 0; a scenario given beside it only supplies the SLOs and names.
 * Times start at 0 at the first arrival, then qs_load_scale applies the speedup and
 * the caps.
 */
int qs_load_arrivals(const struct qs_load_src_cfg *c, struct qs_load_book *b,
		     struct qs_load_src_info *info, char *msg, size_t msglen);
/*
 * Rebase the schedule at its first arrival, divide its times by speedup_milli/1000
 * (integers, no rounding drift: t * 1000 / speedup_milli), and keep only the first
 * `requests` (> 0) arrivals scheduled before duration_ns (> 0). QS_E_VALUE if
 * nothing is left.
 */
int qs_load_scale(struct qs_load_book *b, uint32_t speedup_milli, uint32_t requests,
		  uint64_t duration_ns, char *msg, size_t msglen);

/* ---- the wire -------------------------------------------------------------------- */

/* Datagrams request r takes: payload bytes beyond the 32-byte headers, spread over
 * datagrams of at most max_dgram bytes (>= 64). 0 if it would take more than
 * QS_LOAD_MAX_PACKETS. */
uint32_t qs_load_packets(uint32_t payload, uint32_t max_dgram);
/* Packet k of request i (type 1, then type-2 continuations; LAST on the last): its
 * length, written to buf (max_dgram bytes). */
uint32_t qs_load_packet(const struct qs_load_book *b, uint32_t i, uint32_t payload,
			uint32_t max_dgram, uint32_t k, uint8_t *buf);

/*
 * A datagram received on client socket sock at now_ns: validated (length, magic,
 * version, kind, flags, request id known and sent, socket, no duplicate) and
 * applied. Returns -1 when used, else the enum qs_load_bad reason it was counted
 * under.
 */
int qs_load_on_datagram(struct qs_load_book *b, uint32_t sock, const uint8_t *p, uint32_t len,
			uint64_t now_ns);

/* ---- results ----------------------------------------------------------------------- */

struct qs_load_backend_count {
	uint16_t id;
	uint64_t answered;
	uint64_t rejected;
};

struct qs_load_summary {
	uint64_t scheduled;
	uint64_t state[QS_LOAD_S__COUNT];
	uint64_t first_estimated; /* answered without a first-token datagram */
	uint64_t bad_total;
	uint64_t lag_p99_ns; /* send_ns - sched_ns over sent requests */
	uint64_t lag_max_ns;
	uint64_t n_reach; /* requests with a known reach_ns */
	uint64_t reach_p50_ns, reach_p99_ns;
	uint32_t n_backends;
	struct qs_load_backend_count be[QS_LOAD_MAX_BACKENDS];
	uint64_t be_other;	 /* answers from ids past the table */
	struct qs_sim_metrics m; /* the simulator's accounting of the run */
};

/* Request i's outcome in the simulator's terms; false unless it was answered. */
bool qs_load_outcome(const struct qs_load_book *b, uint32_t i,
		     const struct qs_sim_slo slo[QS_SIM_SLO_CLASSES], struct qs_sim_outcome *o);
/*
 * Summarize the run that ended at end_ns: counts by state, send lag, answers per
 * backend, and the simulator's metrics over every sent request (answered ones in
 * the latencies; rejected, timed out and failed sends as SLO misses). tally_out,
 * when given, receives the tally (for CDFs; the caller destroys it).
 */
int qs_load_summarize(const struct qs_load_book *b, const struct qs_sim_slo slo[QS_SIM_SLO_CLASSES],
		      uint64_t end_ns, struct qs_load_summary *s, struct qs_sim_tally **tally_out,
		      char *msg, size_t msglen);

/* ---- the run ------------------------------------------------------------------------- */

struct qs_load_net_cfg {
	const char *target;	  /* HOST:PORT (port 7788 if left out) */
	const char *bind;	  /* local address for the client sockets; NULL: any */
	uint32_t clients;	  /* sockets, 1..QS_LOAD_MAX_CLIENTS */
	uint32_t bytes_per_token; /* request payload per prompt token (0: headers only) */
	uint32_t max_dgram;	  /* largest datagram sent (default 1472) */
	uint64_t drain_ns;	  /* wait for stragglers after the last send */
	uint64_t max_run_ns;	  /* hard end of the run (0: none beyond the drain) */
	const volatile int *stop; /* set (by a signal) to end the run now */
};

struct qs_load_run_stats {
	uint64_t end_ns; /* run length */
	uint64_t packets_sent;
	uint64_t send_errors;
	uint64_t recv_errors;
	bool stopped;	  /* ended by *stop */
	bool hit_max_run; /* ended by max_run_ns */
};

/* Send b's schedule to the target and collect the responses, open loop. */
int qs_load_run(struct qs_load_book *b, const struct qs_load_net_cfg *c,
		struct qs_load_run_stats *st, char *msg, size_t msglen);

#endif /* QSTEER_TOOLS_LOAD_H */
