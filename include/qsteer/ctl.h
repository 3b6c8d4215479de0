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
 * supplies a table of callbacks (struct qs_ctl_ops) that fill the response object
 * or refuse with a qs_status and a reason. It needs no DPDK: link `ctl_dep`
 * (meson, declared in dp/meson.build; pulls jansson and the qs_status names).
 *
 * Single-threaded: call qs_ctl_poll from one control thread only. Callbacks run on
 * that thread, inside qs_ctl_poll.
 *
 * Minimal daemon:
 *
 *	static int my_stats(void *ctx, json_t *resp, char *msg, size_t msglen)
 *	{
 *		json_t *c = json_object();
 *		json_object_set_new(c, "rx", json_integer(...));
 *		json_object_set_new(resp, "counters", c);
 *		return QS_OK;
 *	}
 *	static const struct qs_ctl_ops ops = { .stats = my_stats, ... };
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

#include "status.h"

/* Longest request line accepted; a longer one drops the client. */
#define QS_CTL_MAX_LINE 8192
/* Connections served at once (control and Prometheus together). */
#define QS_CTL_MAX_CLIENTS 64

enum qs_ctl_mode {
	QS_CTL_MODE_ACTIVE = 0, /* replace the active policy (previous kept for rollback) */
	QS_CTL_MODE_SHADOW,	/* both score, the active one steers */
	QS_CTL_MODE_CANARY,	/* canary_pct % of request ids go to the new policy */
};

/*
 * The daemon's callbacks. Each gets the daemon's ctx and resp, a JSON object that
 * already holds "ok": true; it adds its fields to resp (docs/control.md lists the
 * expected ones) and returns QS_OK, or returns a qs_status error with a reason in
 * msg (then resp is discarded and the client gets
 * {"ok":false,"status":"<qs_status_name>","error":msg}). On QS_OK a non-empty msg
 * is sent as "message". msg is empty on entry.
 *
 * A NULL callback answers {"ok":false,"status":"unsupported","error":"CMD is not
 * supported by this daemon"}. Arguments are validated before a callback runs:
 * policy_load gets a non-empty path, a mode, and for canary 0 <= canary_pct <= 100;
 * drain/undrain get 0 <= backend_id <= 65535.
 */
struct qs_ctl_ops {
	int (*status)(void *ctx, json_t *resp, char *msg, size_t msglen);
	/* must add "counters": an object of integers, plus objects of integers
	 * ("drops": {reason: n}, "to_backend": {name: n}); /metrics is rendered from it */
	int (*stats)(void *ctx, json_t *resp, char *msg, size_t msglen);
	int (*backends)(void *ctx, json_t *resp, char *msg, size_t msglen);
	int (*policy_show)(void *ctx, json_t *resp, char *msg, size_t msglen);
	int (*policy_load)(void *ctx, enum qs_ctl_mode mode, const char *path,
			   uint32_t canary_pct, json_t *resp, char *msg, size_t msglen);
	int (*rollback)(void *ctx, json_t *resp, char *msg, size_t msglen);
	int (*drain)(void *ctx, uint16_t backend_id, json_t *resp, char *msg, size_t msglen);
	int (*undrain)(void *ctx, uint16_t backend_id, json_t *resp, char *msg, size_t msglen);
	/* the server answers first, then calls this; the daemon then leaves its loop */
	int (*shutdown)(void *ctx, json_t *resp, char *msg, size_t msglen);
	/* Any other "cmd" (daemon-specific); NULL: unknown command. req is the request
	 * object. Return QS_E_ARG with a message for a command it does not know. */
	int (*other)(void *ctx, const char *cmd, json_t *req, json_t *resp, char *msg,
		     size_t msglen);
	/* "policy.shadow" (docs/control.md): must add "total", the shadow report since
	 * the daemon started, and "window", the report since the running shadow policy
	 * was loaded (null when none runs), both qs_dp_shadow_json objects with their
	 * disagreement lists cut to top entries (0: all; the server checks 0..4096,
	 * default 10). /metrics renders the shadow metrics from one call with top 0. */
	int (*shadow)(void *ctx, uint32_t top, json_t *resp, char *msg, size_t msglen);
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
 * qs_ctl_prometheus_port). Metrics are rendered from the stats callback's
 * "counters": integer c -> `qsteer_c_total`, object o of integers ->
 * `qsteer_o_total{key="k"}` (drops: {reason=...}, to_backend: {backend=...}),
 * with `# TYPE ... counter` lines, and `qsteer_up 1`; with a shadow callback, the
 * shadow metrics (docs/control.md "Prometheus"). prefix replaces "qsteer"
 * when not NULL (e.g. "qsteer_xdp"). QS_OK or QS_E_IO/QS_E_ARG with msg.
 */
int qs_ctl_prometheus_open(struct qs_ctl_server *s, const char *addr, const char *prefix,
			   char *msg, size_t msglen);
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

/*
 * One request line in, one response line out (no newline; caller frees): what the
 * socket does per line. For tests and for daemons with another transport.
 */
char *qs_ctl_handle_line(struct qs_ctl_server *s, const char *line);
/* The /metrics body (caller frees). NULL if the stats callback failed. */
char *qs_ctl_prometheus_text(struct qs_ctl_server *s);

/* Names of enum qs_ctl_mode: "active", "shadow", "canary". */
const char *qs_ctl_mode_name(enum qs_ctl_mode m);

#endif /* QSTEER_CTL_H */
