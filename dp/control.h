/*
 * control.h - qsteer-dp's control thread (control.c): the control socket and
 * Prometheus endpoint (the shared server of include/qsteer/ctl.h with qsteer-dp's
 * callbacks) and the DPDK telemetry commands. Private to dp/; the operator's
 * contract is docs/control.md. Called by main.c only, on the main lcore.
 */
#ifndef QSTEER_DP_CONTROL_H
#define QSTEER_DP_CONTROL_H

#include <stdint.h>

#include "policy_slots.h"

/* The server over ps (the policies the workers run). path and prometheus
 * ("IPV4:PORT") may each be NULL: with neither, nothing listens, but the stats
 * answer (qs_dpc_stats_json) and telemetry still work. -1 with msg on failure. */
int qs_dpc_open(const char *path, const char *prometheus, struct qs_pslots *ps, char *msg,
		size_t msglen);
uint16_t qs_dpc_prometheus_port(void);
/* Serve what is pending, waiting up to timeout_ms for it. */
void qs_dpc_poll(int timeout_ms);
/* The "stats" answer (what --stats-out writes); caller frees. */
char *qs_dpc_stats_json(void);
void qs_dpc_close(void);
/* /qsteer/stats, /qsteer/backends, /qsteer/policy (after qs_dpc_open). */
void qs_dpc_telemetry_register(void);

#endif /* QSTEER_DP_CONTROL_H */
