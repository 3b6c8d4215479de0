/*
 * ctl.h - the control server shared by qsteer-dp (DPDK) and qsteer-xdp (XDP loader
 * daemon): a unix stream socket (created mode 0600) speaking JSON lines
 * (docs/control.md), plus an optional Prometheus text endpoint (GET /metrics).
 *
 * The server owns everything generic: the socket (one daemon per path, by flock),
 * a non-blocking poll loop that serves clients concurrently with per-client idle
 * deadlines (a stuck client delays only itself), line framing,
 * JSON parsing with jansson, validation of every request's arguments (with a clear
 * error), dispatch to the daemon's callbacks, and the response framing. The daemon
 * supplies a table of callbacks (struct qs_ctl_ops) that fill structs (what it
 * holds: counters, backends, policies) or act, or refuse with a qs_status and a
 * reason; the server writes every answer and /metrics from those structs, so both
 * daemons answer in one format; a daemon never writes JSON itself except for
 * its own commands ("other"). It needs no DPDK: link `ctl_dep`
 * (meson, declared in dp/meson.build; pulls jansson, the qs_status names and the
 * dataplane core's counter and shadow-report encoders).
 *
 * Single-threaded: call qs_ctl_poll from one control thread only. Callbacks run on
 * that thread, inside qs_ctl_poll.
 *
 * Minimal daemon:
 *
 *	static int my_counters(void *ctx, struct qs_ctl_counters *out, char *msg,
 *			       size_t msglen)
 *	{
 *		struct me *me = ctx;
 *		out->cfg = me->cfg;		 // backend names
 *		sum_my_counters(me, &out->sum); // struct qs_dp_counters
 *		return QS_OK;
 *	}
 *	static const struct qs_ctl_ops ops = { .get_counters = my_counters, ... };
 *	char msg[256];
 *	struct qs_ctl_server *srv = qs_ctl_open("/run/qsteer/xdp.sock", &ops, me,
 *						msg, sizeof(msg));
 *	if (!srv) { fprintf(stderr, "%s\n", msg); exit(1); }
 *	while (!quit) qs_ctl_poll(srv, 100);
 *	qs_ctl_close(srv);
 */
#ifndef QSTEER_CTL_H
#define QSTEER_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "dp_core.h"
#include "status.h"

/* Longest request line accepted; a longer one drops the client. */
#define QS_CTL_MAX_LINE 8192
/* Connections served at once (control and Prometheus together). */
#define QS_CTL_MAX_CLIENTS 64
/* Workers reported one by one in "stats" ("per_worker"); more are left out. */
#define QS_CTL_MAX_WORKERS 128

enum qs_ctl_mode {
	QS_CTL_MODE_ACTIVE = 0, /* replace the active policy (previous kept for rollback) */
	QS_CTL_MODE_SHADOW,	/* both score, the active one steers */
	QS_CTL_MODE_CANARY,	/* canary_pct % of request ids go to the new policy */
};

/* ---- what the typed callbacks fill (docs/control.md names every field) ---------- */

/* One policy slot of "policy"; used false: JSON null. */
struct qs_ctl_slot {
	bool used;
	bool builtin;	  /* a builtin baseline: no content_id, layers, inputs */
	char source[256]; /* the path or "builtin:NAME" it was loaded from */
	char name[64];
	uint64_t content_id;
	uint32_t layers, inputs;
	bool has_slot_version; /* qsteer-xdp: the map slot's publication */
	uint64_t slot_version;
};

/* "policy" (status, policy.show, and after a load or rollback). */
struct qs_ctl_policy {
	enum qs_ctl_mode mode;
	uint64_t version, swaps;
	const char *kernel; /* static, or outliving the server */
	uint32_t canary_pct;
	struct qs_ctl_slot active, second, previous; /* second: the shadow or canary */
};

/* "status"; strings static or outliving the server, NULL ones left out. */
struct qs_ctl_status {
	const char *daemon;
	const char *interface, *xdp_mode; /* qsteer-xdp */
	uint32_t workers, burst;
	uint64_t uptime_s;
	const char *clock;
	uint32_t backends, backends_fresh;
	uint64_t rx, tx;
};

/* "stats": the sum ("counters") and, when n_workers > 0, "per_worker". */
struct qs_ctl_worker {
	uint32_t lcore, queue;
	struct qs_dp_counters c;
};
struct qs_ctl_counters {
	const struct qs_dp_config *cfg; /* the backend names of to_backend */
	struct qs_dp_counters sum;
	uint32_t n_workers; /* at most QS_CTL_MAX_WORKERS */
	struct qs_ctl_worker worker[QS_CTL_MAX_WORKERS];
};

/* One entry of "backends": what the daemon believes of the backend. */
struct qs_ctl_backend {
	char name[QS_DP_NAME_LEN];
	uint16_t id, port;
	char ip[48]; /* text */
	uint8_t capacity_class;
	bool reported, fresh;
	bool has_report_age; /* else "report_age_ms": null */
	uint64_t report_age_ms;
	bool draining, drained;
	uint32_t waiting, running, kv_used, kv_total;
	uint64_t report_seq, sent;
	/* cascade routing: the model variant ("" none) and, per SLO class, the
	 * difficulties whose quality floor it fails (bit d; config quality_masked) */
	char variant[QS_DP_NAME_LEN];
	uint8_t below_floor[QS_QUALITY_SLO];
};
struct qs_ctl_backends {
	uint32_t n;
	struct qs_ctl_backend be[QS_DP_MAX_BACKENDS];
};

/* "policy.shadow": the report since start, and since the running shadow policy
 * was published (running false: none runs, "window" is null). */
struct qs_ctl_shadow {
	const struct qs_dp_config *cfg; /* the backend names */
	struct qs_dp_shadow total;
	bool running;
	struct qs_dp_shadow window;
};

/*
 * The daemon's callbacks. Each fills a zeroed struct or acts, and returns QS_OK,
 * or a qs_status error with a reason in msg (then the client gets
 * {"ok":false,"status":"<qs_status_name>","error":msg}); the server writes the
 * answer. On QS_OK a non-empty msg is sent as "message". msg is empty on entry.
 *
 * A command without its callback answers {"ok":false,"status":"unsupported",
 * "error":"CMD is not supported by this daemon"}. Arguments are validated before a
 * callback runs: load_policy gets a non-empty path, a mode, and for canary
 * 0 <= canary_pct <= 100; set_drain gets 0 <= backend_id <= 65535.
 */
struct qs_ctl_ops {
	/* "status" (with "policy" from get_policy) */
	int (*get_status)(void *ctx, struct qs_ctl_status *out, char *msg, size_t msglen);
	/* "stats"; /metrics renders the counters */
	int (*get_counters)(void *ctx, struct qs_ctl_counters *out, char *msg, size_t msglen);
	/* "backends"; /metrics renders the per-backend gauges */
	int (*get_backends)(void *ctx, struct qs_ctl_backends *out, char *msg, size_t msglen);
	/* "policy.show", and "policy" in the answers to status, policy.load,
	 * policy.rollback and policy.shadow */
	int (*get_policy)(void *ctx, struct qs_ctl_policy *out, char *msg, size_t msglen);
	/* "policy.shadow" (disagreement lists cut to the request's top by the server);
	 * /metrics renders the shadow metrics */
	int (*get_shadow)(void *ctx, struct qs_ctl_shadow *out, char *msg, size_t msglen);
	/* "policy.load": on QS_OK the answer holds the new "policy" */
	int (*load_policy)(void *ctx, enum qs_ctl_mode mode, const char *path, uint32_t canary_pct,
			   char *msg, size_t msglen);
	/* "policy.rollback": on QS_OK the answer holds the new "policy" */
	int (*roll_back)(void *ctx, char *msg, size_t msglen);
	/* "backend.drain" (drain true) and "backend.undrain" */
	int (*set_drain)(void *ctx, uint16_t backend_id, bool drain, char *msg, size_t msglen);
	/* "shutdown": the server answers first; the daemon then leaves its loop */
	int (*stop)(void *ctx, char *msg, size_t msglen);
	/* Any other "cmd" (daemon-specific, e.g. qsteer-dp's "rx"); NULL: unknown
	 * command. req is the request object; resp already holds "ok": true and gets
	 * the command's fields. Return QS_E_ARG with a message for a command it does
	 * not know; on an error resp is discarded. */
	int (*other)(void *ctx, const char *cmd, json_t *req, json_t *resp, char *msg,
		     size_t msglen);
};

struct qs_ctl_server;

/*
 * Listen on path, mode 0600. Refuses (NULL, reason in msg) when another live server
 * holds the path (flock on path + ".lock"); otherwise a stale socket there is
 * removed. ops must outlive the server. path NULL: no socket (tests drive it with
 * qs_ctl_handle_line; Prometheus may still be opened).
 */
struct qs_ctl_server *qs_ctl_open(const char *path, const struct qs_ctl_ops *ops, void *ctx,
				  char *msg, size_t msglen);

/*
 * Also serve Prometheus text format (version 0.0.4) on HTTP "GET /metrics" at
 * addr, "IPV4:PORT" (e.g. "127.0.0.1:9464"; port 0 picks one, see
 * qs_ctl_prometheus_port). Metrics are rendered from the get_counters callback's
 * "counters": integer c -> `qsteer_c_total`, object o of integers ->
 * `qsteer_o_total{key="k"}` (drops: {reason=...}, to_backend: {backend=...}),
 * with `# TYPE ... counter` lines, and `qsteer_up 1`; with a get_shadow callback, the
 * shadow metrics (docs/control.md "Prometheus"). prefix replaces "qsteer"
 * when not NULL (e.g. "qsteer_xdp"). QS_OK or QS_E_IO/QS_E_ARG with msg.
 */
int qs_ctl_prometheus_open(struct qs_ctl_server *s, const char *addr, const char *prefix, char *msg,
			   size_t msglen);
/* The TCP port the Prometheus endpoint listens on (0 if none). */
uint16_t qs_ctl_prometheus_port(const struct qs_ctl_server *s);

/*
 * Wait up to timeout_ms for socket activity, then make progress on every client
 * without blocking on any: accept, read, answer each complete request line in
 * order, write what the socket takes. Clients are served concurrently; a client
 * without progress for 1 s, or sending a line longer than QS_CTL_MAX_LINE, is
 * dropped, and a new connection to a full table (QS_CTL_MAX_CLIENTS) evicts the
 * client idle the longest. Returns the number of requests answered.
 */
int qs_ctl_poll(struct qs_ctl_server *s, int timeout_ms);

/* Has a client asked for shutdown (after the shutdown callback said QS_OK)? */
bool qs_ctl_shutdown_requested(const struct qs_ctl_server *s);

/* Close the sockets and remove the socket file. NULL is fine. */
void qs_ctl_close(struct qs_ctl_server *s);

/* The configured part of backend i's entry (name, id, address, port, capacity
 * class, variant, floors), the same in both daemons; the caller adds the state. */
void qs_ctl_backend_config(const struct qs_dp_config *c, uint32_t i, struct qs_ctl_backend *o);

/*
 * One request line in, one response line out (no newline; caller frees): what the
 * socket does per line. For tests and for daemons with another transport.
 */
char *qs_ctl_handle_line(struct qs_ctl_server *s, const char *line);
/* The /metrics body (caller frees). NULL if the get_counters callback failed. */
char *qs_ctl_prometheus_text(struct qs_ctl_server *s);
/* The answer to a command without arguments (e.g. "stats": what qsteer-dp's
 * --stats-out writes), one line without newline; caller frees. */
char *qs_ctl_command(struct qs_ctl_server *s, const char *cmd);

/* Names of enum qs_ctl_mode: "active", "shadow", "canary". */
const char *qs_ctl_mode_name(enum qs_ctl_mode m);

#endif /* QSTEER_CTL_H */
