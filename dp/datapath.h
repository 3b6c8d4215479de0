/*
 * datapath.h - qsteer-dp's DPDK side: the workers (one per worker lcore, run to
 * completion over the dataplane core), the port, RCU, and what the control thread
 * may read of them (counter sums, the dataplane clock, the rx gate). Private to dp/.
 *
 * The workers run the policy set that policy_slots.c publishes; this module gives
 * that module its grace period (rte_rcu_qsbr over the workers) and is told of each
 * publication. Init failures stop the process (rte_exit): nothing runs yet.
 */
#ifndef QSTEER_DP_DATAPATH_H
#define QSTEER_DP_DATAPATH_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_log.h>

#include "qsteer/dp_core.h"
#include "policy_slots.h"

extern int qs_dp_logtype;
#define RTE_LOGTYPE_QSDP      qs_dp_logtype
#define QS_DP_LOG(level, ...) RTE_LOG(level, QSDP, __VA_ARGS__)

struct qs_dpw_params {
	const struct qs_dp_config *cfg;
	enum qs_kernel kernel; /* resolved */
	uint16_t port;
	uint16_t burst;	  /* rx burst size, 1..QS_DP_BURST */
	uint32_t pace_us; /* sleep after each burst */
	bool rx_hold;	  /* start with the rx gate held */
	bool bench;	  /* one worker fed from memory (qs_dpw_bench), no port */
};

/* The shared backend table, the workers, RCU and the (empty) policy slots. */
void qs_dpw_init(const struct qs_dpw_params *p);
/* The policies the workers run: load the first one before qs_dpw_launch. */
struct qs_pslots *qs_dpw_policies(void);
/* The mbuf pool and the port: one rx/tx queue pair per worker, started. */
void qs_dpw_port_init(void);
/* Start a worker on every worker lcore. */
void qs_dpw_launch(void);
/* Ask the workers to leave their loops (async-signal-safe), and has anyone? */
void qs_dpw_stop(void);
bool qs_dpw_stopping(void);
/* Wait until every worker has left its loop (after qs_dpw_stop). */
void qs_dpw_wait(void);
/* Stop and close the port, free the policies (the workers are gone). */
void qs_dpw_fini(void);
/* The benchmark: seconds of kind ("requests", "continuations") through worker 0,
 * one JSON line on stdout. 0 when every packet went out, 1 if not, 2 bad kind. */
int qs_dpw_bench(double seconds, const char *kind);

/* ---- what the control thread reads ------------------------------------------------ */

const struct qs_dp_shared *qs_dpw_shared(void);

struct qs_dpw_info {
	uint32_t n_workers;
	uint32_t burst; /* rx burst size (--burst) */
	uint64_t uptime_ns;
	uint64_t now_ns; /* the dataplane clock (packet clock: the newest burst) */
	const char *kernel;
};
void qs_dpw_info(struct qs_dpw_info *out);
/* The counters summed over workers. */
void qs_dpw_counters(struct qs_dp_counters *sum);
/* One worker's counters (i < n_workers), its lcore and queue. */
void qs_dpw_worker_counters(uint32_t i, struct qs_dp_counters *c, unsigned *lcore, uint16_t *queue);
/* The shadow counters summed over workers since start (total) and, when a shadow
 * policy runs (true returned), since it was published (window; may be NULL). */
bool qs_dpw_shadow(struct qs_dp_shadow *total, struct qs_dp_shadow *window);

/* The rx gate (docs/control.md "rx"): show it, hold rx, allow N more bursts, or
 * release it (poll freely again). out gets the state after the operation. */
enum qs_dpw_rx_op { QS_DPW_RX_SHOW, QS_DPW_RX_HOLD, QS_DPW_RX_ALLOW, QS_DPW_RX_RELEASE };
struct qs_dpw_rx {
	bool gated;
	int64_t credit;	 /* bursts still allowed while gated */
	uint64_t bursts; /* rx bursts that brought packets, all workers */
};
void qs_dpw_rx_gate(enum qs_dpw_rx_op op, uint64_t bursts, struct qs_dpw_rx *out);

#endif /* QSTEER_DP_DATAPATH_H */
