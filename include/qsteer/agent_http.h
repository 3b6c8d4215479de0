/*
 * agent_http.h - the engine executor (agent/exec_http.c) and the HTTP body
 * extension of QRP requests and agent responses that qsteer-gw and the executor
 * speak (issue 18; docs/deploy.md is the prose version).
 *
 * An OpenAI-compatible engine (vLLM, SGLang, TGI, llama.cpp's server) batches on
 * its own, so this executor does not run iterations: it forwards each steered
 * request to the engine over HTTP (libcurl), relays the engine's response body to
 * the client in response datagrams (direct server return), closes the engine's
 * stream on a cancel, and turns the agent's batching into admission control in
 * front of the engine (in-flight cap, tightest SLO class then highest priority
 * first, hold back while the engine's KV cache is nearly full). Its reports merge
 * the engine's /metrics (vLLM's or SGLang's names) with its own counters.
 *
 * Wire extension (no change to wire.h or agent_wire.h; a peer that predates it
 * sees valid QRP requests with an opaque payload, and refuses kind 6 as an
 * unknown type):
 *
 * Request payload: the bytes after the QRP header of the request (type 1) and of
 * its continuations (type 2, in order, the last one flagged QS_QRP_F_LAST) are
 *     off size
 *       0    1  QS_GW_MAGIC_BODY ('H')
 *       1    1  endpoint: 1 /v1/completions, 2 /v1/chat/completions
 *       2    2  reserved, 0
 *       4    -  the client's JSON body, verbatim
 *
 * Response datagram: the 48-byte QRA response (agent_wire.h), then
 *     off size (from byte 48)
 *       0    4  chunk sequence number (0, 1, ... per request; DONE: the count)
 *       4    2  the engine's HTTP status (502: engine unreachable)
 *       6    2  flags: bit 0 the body ended early (engine failed mid-stream)
 *       8    -  body bytes (at most QS_GW_CHUNK_MAX)
 * kinds: FIRST carries chunk 0 (the first bytes the engine sent), QS_GW_K_BODY
 * each later chunk, DONE the chunk count and no bytes; REJECTED, CANCELLED and
 * CANCEL_UNKNOWN carry the 8-byte extension with no bytes.
 */
#ifndef QSTEER_AGENT_HTTP_H
#define QSTEER_AGENT_HTTP_H

#include <stdint.h>

#include "agent.h"

#define QS_GW_MAGIC_BODY     'H'
#define QS_GW_EP_COMPLETIONS 1
#define QS_GW_EP_CHAT	     2
#define QS_GW_BODY_HDR	     4
#define QS_GW_K_BODY	     6 /* a later chunk of the body */
#define QS_GW_EXT_LEN	     8
#define QS_GW_CHUNK_MAX	     1200 /* body bytes per response datagram */
#define QS_GW_PKT_PAYLOAD    1200 /* request payload bytes per QRP packet */
#define QS_GW_RF_TRUNCATED   0x0001

struct qs_gw_resp {
	struct qs_qra_resp r;
	uint32_t seq;
	uint16_t status;
	uint16_t flags;
	const uint8_t *data;
	uint32_t len;
};

/* Parse a response datagram with the extension: 0, or a QS_QRP_E_* reason. */
int qs_gw_resp_parse(const uint8_t *p, uint32_t len, struct qs_gw_resp *g);
/* Encode one; returns the length (QS_QRA_LEN + QS_GW_EXT_LEN + len). */
uint32_t qs_gw_resp_write(uint8_t *p, const struct qs_gw_resp *g);

struct qs_agent_http_cfg {
	char engine[256];	     /* "http://HOST:PORT" (no path) */
	uint32_t max_inflight;	     /* requests at the engine at once (default 64) */
	uint32_t max_queue;	     /* held back in the agent; more are rejected (4096) */
	uint32_t kv_high_pct;	     /* admit none while engine KV usage >= this (95) */
	uint32_t kv_total;	     /* reports' KV total: usage is kv_used / this (1000) */
	uint64_t scrape_interval_ns; /* /metrics every (default 100 ms; 0: never) */
	uint64_t timeout_ns;	     /* a request's whole time at the engine (600 s) */
	uint64_t connect_timeout_ns; /* (default 2 s) */
	uint32_t max_body;	     /* request body bytes (default 64 packets' worth) */
	char port_file[256];	     /* write the bound UDP port here once listening */
};

struct qs_agent_http_stats {
	uint64_t datagrams, requests, rejected, completed, cancelled, engine_errors;
	uint64_t responses_sent, reports_sent, send_errors, scrapes, scrape_errors;
	uint64_t dropped; /* malformed or incomplete (the intake's counts) */
};

/* The engine's load as scraped from /metrics (docs/deploy.md has the mapping). */
struct qs_engine_metrics {
	bool ok; /* the last scrape succeeded */
	bool have_running, have_waiting, have_kv, have_gen, have_ttft;
	double running, waiting;
	double kv_frac;	   /* 0..1 */
	double gen_tokens; /* cumulative generated tokens (vLLM counter) */
	double gen_tps;	   /* SGLang's gauge */
	/* the TTFT histogram: cumulative counts per upper bound, summed over labels */
	uint32_t n_ttft;
	double ttft_le[32];
	double ttft_count[32];
};

void qs_agent_http_cfg_default(struct qs_agent_http_cfg *c);
/* Parse Prometheus text exposition into m (vLLM's and SGLang's names). */
void qs_engine_metrics_parse(const char *text, size_t len, struct qs_engine_metrics *m);
/* p99 (seconds) of the observations between two histogram snapshots; -1 if none. */
double qs_engine_ttft_p99(const struct qs_engine_metrics *prev,
			  const struct qs_engine_metrics *cur);
/*
 * Serve steered requests with the engine executor until *s->stop (or s->max_run_ns):
 * QRP in on s->listen, responses to each request's source, reports every
 * s->report_interval_ns to s->report_to (a->backend_id; s->report_key signs them).
 * The intake configuration bounds reassembly as for the other executors.
 */
int qs_agent_http_serve(const struct qs_agent_http_cfg *h, const struct qs_agent_cfg *a,
			const struct qs_agent_intake_cfg *in, struct qs_agent_serve_cfg *s,
			struct qs_agent_http_stats *st, char *msg, size_t msglen);

#endif /* QSTEER_AGENT_HTTP_H */
