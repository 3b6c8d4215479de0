/*
 * dp_app.h - what qsteer-dp's DPDK shell (main.c) and its control thread
 * (control.c) share. Private to dp/: the public contract is docs/control.md.
 */
#ifndef QSTEER_DP_APP_H
#define QSTEER_DP_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qsteer/dp_core.h"

/* A policy the control thread owns: a loaded .q8, or a builtin baseline. */
struct qs_dpa_slot {
	struct qs_policy *p; /* NULL: builtin */
	enum qs_baseline_kind builtin;
	char source[256]; /* path or "builtin:NAME" */
	bool used;
};

/* Control-thread view of the running process. */
struct qs_dpa_info {
	uint32_t n_workers;
	uint32_t burst; /* rx burst size (--burst) */
	uint64_t uptime_ns;
	uint64_t now_ns; /* the dataplane clock (packet clock: the newest burst) */
	uint64_t swaps;
	const char *kernel;
};

/* Implemented in main.c, called from control.c on the control thread. */
const struct qs_dp_shared *qs_dpa_shared(void);
void qs_dpa_info(struct qs_dpa_info *out);
void qs_dpa_counters(struct qs_dp_counters *sum);
/* One worker's counters (i < n_workers), its lcore and queue. */
void qs_dpa_worker_counters(uint32_t i, struct qs_dp_counters *c, unsigned *lcore,
			    uint16_t *queue);
/* The shadow counters summed over workers since start (total) and, when a shadow
 * policy runs (true returned), since it was published (window; may be NULL). */
bool qs_dpa_shadow(struct qs_dp_shadow *total, struct qs_dp_shadow *window);
/* The policy view: active slot, second slot (NULL unless shadow/canary), mode. */
void qs_dpa_policy(const struct qs_dpa_slot **active, const struct qs_dpa_slot **second,
		   const struct qs_dpa_slot **previous, enum qs_dp_mode *mode, uint32_t *pct,
		   uint64_t *version);
/* mode: "active", "shadow", "canary"; msg receives the loader's reason. */
int qs_dpa_policy_load(const char *source, enum qs_dp_mode mode, uint32_t pct, char *msg,
		       size_t msglen);
int qs_dpa_policy_rollback(char *msg, size_t msglen);
int qs_dpa_drain(uint16_t backend_id, bool drain, char *msg, size_t msglen);
void qs_dpa_request_quit(void);

/* The rx gate (docs/control.md "rx"): show it, hold rx, allow N more bursts, or
 * release it (poll freely again). out gets the state after the operation. */
enum qs_dpa_rx_op { QS_DPA_RX_SHOW, QS_DPA_RX_HOLD, QS_DPA_RX_ALLOW, QS_DPA_RX_RELEASE };
struct qs_dpa_rx {
	bool gated;
	int64_t credit;	 /* bursts still allowed while gated */
	uint64_t bursts; /* rx bursts that brought packets, all workers */
};
void qs_dpa_rx_gate(enum qs_dpa_rx_op op, uint64_t bursts, struct qs_dpa_rx *out);

/* control.c: qsteer-dp's callbacks for the shared control server (qsteer/ctl.h).
 * path and prometheus ("IPV4:PORT") may each be NULL. */
int qs_dpc_open(const char *path, const char *prometheus, char *msg, size_t msglen);
uint16_t qs_dpc_prometheus_port(void);
void qs_dpc_poll(int timeout_ms);
void qs_dpc_close(void);
char *qs_dpc_stats_json(void);
void qs_dpc_telemetry_register(void);

#endif /* QSTEER_DP_APP_H */
