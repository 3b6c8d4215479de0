/*
 * control.c - qsteer-dp's control thread: the JSON-lines unix socket (docs/control.md)
 * and the DPDK telemetry commands. Runs on the main lcore only; it reads the workers
 * through datapath.h (counter sums, the clock, the rx gate) and changes policies
 * and the drain mask through policy_slots.h. Nothing calls back into it but the
 * server it owns.
 *
 * The socket, framing, validation, the answers' JSON and the Prometheus endpoint
 * are the shared control server (dp/ctl_server.c, include/qsteer/ctl.h, also used by
 * qsteer-xdp); this file supplies qsteer-dp's callbacks, which fill the server's
 * structs (or act) and write no JSON of their own but the daemon-specific "rx".
 * Clients are served concurrently with short idle deadlines, so a stuck client
 * delays only itself, never a worker.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <rte_telemetry.h>

#include "qsteer/ctl.h"
#include "control.h"
#include "datapath.h"
#include "policy_slots.h"

static struct qs_ctl_server *srv;
static struct qs_pslots *slots;

/* ---- the typed callbacks of include/qsteer/ctl.h -------------------------------- */

static void
slot_fill(struct qs_ctl_slot *o, const struct qs_pslot *sl)
{
	if (!sl)
		return;
	o->used = true;
	snprintf(o->source, sizeof(o->source), "%s", sl->source);
	if (sl->p) {
		snprintf(o->name, sizeof(o->name), "%s", sl->p->name);
		o->content_id = sl->p->content_id;
		o->layers = sl->p->n_layers;
		o->inputs = sl->p->n_in;
	} else {
		snprintf(o->name, sizeof(o->name), "%s", qs_baseline_name(sl->builtin));
		o->builtin = true;
	}
}

static enum qs_ctl_mode
ctl_mode(enum qs_dp_mode m)
{
	switch (m) {
	case QS_DP_MODE_SHADOW:
		return QS_CTL_MODE_SHADOW;
	case QS_DP_MODE_CANARY:
		return QS_CTL_MODE_CANARY;
	case QS_DP_MODE_ACTIVE:
		break;
	}
	return QS_CTL_MODE_ACTIVE;
}

static int
get_policy(void *ctx, struct qs_ctl_policy *out, char *msg, size_t msglen)
{
	struct qs_pslots_view v;
	struct qs_dpw_info info;

	(void)ctx;
	(void)msg;
	(void)msglen;
	qs_pslots_view(slots, &v);
	qs_dpw_info(&info);
	out->mode = ctl_mode(v.mode);
	out->version = v.version;
	out->swaps = v.swaps;
	out->kernel = info.kernel;
	out->canary_pct = v.canary_pct;
	slot_fill(&out->active, v.active);
	slot_fill(&out->second, v.second);
	slot_fill(&out->previous, v.previous);
	return QS_OK;
}

static int
get_status(void *ctx, struct qs_ctl_status *out, char *msg, size_t msglen)
{
	const struct qs_dp_shared *sh = qs_dpw_shared();
	struct qs_dpw_info info;
	struct qs_dp_counters sum;
	uint32_t i;

	(void)ctx;
	(void)msg;
	(void)msglen;
	qs_dpw_info(&info);
	qs_dpw_counters(&sum);
	out->daemon = "qsteer-dp";
	out->workers = info.n_workers;
	out->burst = info.burst;
	out->uptime_s = info.uptime_ns / 1000000000u;
	out->clock = sh->cfg.clock == QS_DP_CLOCK_PACKET ? "packet" : "tsc";
	out->backends = sh->cfg.n_backends;
	for (i = 0; i < sh->cfg.n_backends; i++)
		out->backends_fresh += qs_dp_backend_fresh(sh, i, info.now_ns);
	out->rx = sum.rx;
	out->tx = sum.tx;
	return QS_OK;
}

/* The sum is "counters"; each worker's own, "per_worker". */
static int
get_counters(void *ctx, struct qs_ctl_counters *out, char *msg, size_t msglen)
{
	struct qs_dpw_info info;
	uint32_t i;

	(void)ctx;
	(void)msg;
	(void)msglen;
	qs_dpw_info(&info);
	out->cfg = &qs_dpw_shared()->cfg;
	qs_dpw_counters(&out->sum);
	out->n_workers = info.n_workers < QS_CTL_MAX_WORKERS ? info.n_workers : QS_CTL_MAX_WORKERS;
	for (i = 0; i < out->n_workers; i++) {
		unsigned lcore;
		uint16_t queue;

		qs_dpw_worker_counters(i, &out->worker[i].c, &lcore, &queue);
		out->worker[i].lcore = lcore;
		out->worker[i].queue = queue;
	}
	return QS_OK;
}

static int
get_backends(void *ctx, struct qs_ctl_backends *out, char *msg, size_t msglen)
{
	const struct qs_dp_shared *sh = qs_dpw_shared();
	struct qs_dp_counters sum;
	struct qs_dpw_info info;
	uint64_t drain = __atomic_load_n(&sh->admin_drain, __ATOMIC_ACQUIRE);
	uint32_t i;

	(void)ctx;
	(void)msg;
	(void)msglen;
	qs_dpw_counters(&sum);
	qs_dpw_info(&info);
	out->n = sh->cfg.n_backends;
	for (i = 0; i < sh->cfg.n_backends; i++) {
		const struct qs_dp_backend_state *st = &sh->be[i];
		struct qs_ctl_backend *o = &out->be[i];

		qs_ctl_backend_config(&sh->cfg, i, o);
		o->reported = st->valid;
		o->fresh = qs_dp_backend_fresh(sh, i, info.now_ns);
		o->has_report_age = st->valid && info.now_ns >= st->last_ns;
		o->report_age_ms = o->has_report_age ? (info.now_ns - st->last_ns) / 1000000 : 0;
		o->draining = st->rep.flags & QS_QRP_RF_DRAINING;
		o->drained = drain >> i & 1;
		o->waiting = st->rep.waiting;
		o->running = st->rep.running;
		o->kv_used = st->rep.kv_used;
		o->kv_total = st->rep.kv_total;
		o->report_seq = st->report_seq;
		o->sent = sum.to_backend[i];
	}
	return QS_OK;
}

static int
get_shadow(void *ctx, struct qs_ctl_shadow *out, char *msg, size_t msglen)
{
	(void)ctx;
	(void)msg;
	(void)msglen;
	out->cfg = &qs_dpw_shared()->cfg;
	out->running = qs_dpw_shadow(&out->total, &out->window);
	return QS_OK;
}

static enum qs_dp_mode
dp_mode(enum qs_ctl_mode m)
{
	switch (m) {
	case QS_CTL_MODE_SHADOW:
		return QS_DP_MODE_SHADOW;
	case QS_CTL_MODE_CANARY:
		return QS_DP_MODE_CANARY;
	case QS_CTL_MODE_ACTIVE:
		break;
	}
	return QS_DP_MODE_ACTIVE;
}

static int
load_policy(void *ctx, enum qs_ctl_mode mode, const char *path, uint32_t pct, char *msg,
	    size_t msglen)
{
	(void)ctx;
	return qs_pslots_load(slots, path, dp_mode(mode), pct, msg, msglen);
}

static int
roll_back(void *ctx, char *msg, size_t msglen)
{
	(void)ctx;
	return qs_pslots_rollback(slots, msg, msglen);
}

static int
set_drain(void *ctx, uint16_t id, bool drain, char *msg, size_t msglen)
{
	(void)ctx;
	return qs_pslots_drain(slots, id, drain, msg, msglen);
}

static int
stop(void *ctx, char *msg, size_t msglen)
{
	(void)ctx;
	qs_dpw_stop();
	snprintf(msg, msglen, "shutting down");
	return QS_OK;
}

/*
 * "rx": the rx gate. {"cmd":"rx"} shows it; "op" hold | allow (with "bursts" >= 1)
 * | release changes it first. Daemon-specific, so it arrives through ops.other.
 */
static int
cb_other(void *ctx, const char *cmd, json_t *req, json_t *resp, char *msg, size_t msglen)
{
	static const char *const names[] = {"show", "hold", "allow", "release"};
	const char *op = json_string_value(json_object_get(req, "op"));
	json_t *jn = json_object_get(req, "bursts");
	enum qs_dpw_rx_op o = QS_DPW_RX_SHOW;
	struct qs_dpw_rx st;
	uint64_t n = 0;
	unsigned i;

	(void)ctx;
	if (strcmp(cmd, "rx") != 0) {
		snprintf(msg, msglen, "unknown command \"%.64s\"", cmd);
		return QS_E_ARG;
	}
	if (json_object_get(req, "op") && !op) {
		snprintf(msg, msglen, "rx: \"op\" must be a string (show, hold, allow, release)");
		return QS_E_ARG;
	}
	if (op) {
		for (i = 0; i < 4 && strcmp(op, names[i]) != 0; i++)
			;
		if (i == 4) {
			snprintf(msg, msglen,
				 "rx: unknown op \"%.32s\" (show, hold, allow, release)", op);
			return QS_E_ARG;
		}
		o = (enum qs_dpw_rx_op)i;
	}
	if (o == QS_DPW_RX_ALLOW) {
		if (!json_is_integer(jn) || json_integer_value(jn) < 1 ||
		    json_integer_value(jn) > 1000000000) {
			snprintf(msg, msglen,
				 "rx allow needs \"bursts\": an integer 1..1000000000");
			return QS_E_ARG;
		}
		n = (uint64_t)json_integer_value(jn);
	} else if (jn) {
		snprintf(msg, msglen, "rx: \"bursts\" only goes with op allow");
		return QS_E_ARG;
	}
	qs_dpw_rx_gate(o, n, &st);
	json_object_set_new(resp, "gated", json_boolean(st.gated));
	json_object_set_new(resp, "credit", json_integer((json_int_t)st.credit));
	json_object_set_new(resp, "bursts", json_integer((json_int_t)st.bursts));
	return QS_OK;
}

static const struct qs_ctl_ops dp_ops = {
    .get_status = get_status,
    .get_counters = get_counters,
    .get_backends = get_backends,
    .get_policy = get_policy,
    .get_shadow = get_shadow,
    .load_policy = load_policy,
    .roll_back = roll_back,
    .set_drain = set_drain,
    .stop = stop,
    .other = cb_other,
};

int
qs_dpc_open(const char *path, const char *prometheus, struct qs_pslots *ps, char *msg,
	    size_t msglen)
{
	slots = ps;
	srv = qs_ctl_open(path, &dp_ops, NULL, msg, msglen);
	if (!srv)
		return -1;
	if (prometheus && qs_ctl_prometheus_open(srv, prometheus, NULL, msg, msglen) != QS_OK) {
		qs_ctl_close(srv);
		srv = NULL;
		return -1;
	}
	return 0;
}

uint16_t
qs_dpc_prometheus_port(void)
{
	return qs_ctl_prometheus_port(srv);
}

void
qs_dpc_poll(int timeout_ms)
{
	qs_ctl_poll(srv, timeout_ms);
}

char *
qs_dpc_stats_json(void)
{
	return qs_ctl_command(srv, "stats");
}

void
qs_dpc_close(void)
{
	qs_ctl_close(srv);
	srv = NULL;
}

/* ---- telemetry: the same counters under /qsteer/... --------------------------------- */

static int
tel_stats(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct qs_dp_counters c;
	int i;

	(void)cmd;
	(void)params;
	qs_dpw_counters(&c);
	rte_tel_data_start_dict(d);
#define ADD(k) rte_tel_data_add_dict_u64(d, #k, c.k)
	ADD(rx);
	ADD(tx);
	ADD(pass);
	ADD(consumed);
	ADD(requests);
	ADD(continuations);
	ADD(cancels);
	ADD(reports);
	ADD(reports_ignored);
	ADD(decided_policy);
	ADD(decided_builtin);
	ADD(fallback);
	ADD(shadow_scored);
	ADD(shadow_disagree);
	ADD(canary);
	ADD(reqtab_evict);
#undef ADD
	for (i = 1; i < QS_DP_D__COUNT; i++) {
		char k[40];

		snprintf(k, sizeof(k), "drop_%s", qs_dp_drop_name(i));
		rte_tel_data_add_dict_u64(d, k, c.drop[i]);
	}
	return 0;
}

static int
tel_backends(const char *cmd, const char *params, struct rte_tel_data *d)
{
	const struct qs_dp_shared *sh = qs_dpw_shared();
	struct qs_dp_counters c;
	uint32_t i;

	(void)cmd;
	(void)params;
	qs_dpw_counters(&c);
	rte_tel_data_start_dict(d);
	for (i = 0; i < sh->cfg.n_backends; i++)
		rte_tel_data_add_dict_u64(d, sh->cfg.be[i].name, c.to_backend[i]);
	return 0;
}

static int
tel_policy(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct qs_pslots_view v;

	(void)cmd;
	(void)params;
	qs_pslots_view(slots, &v);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "mode", qs_dp_mode_name(v.mode));
	rte_tel_data_add_dict_string(d, "active", v.active ? v.active->source : "");
	rte_tel_data_add_dict_string(d, "second", v.second ? v.second->source : "");
	rte_tel_data_add_dict_u64(d, "version", v.version);
	return 0;
}

void
qs_dpc_telemetry_register(void)
{
	rte_telemetry_register_cmd("/qsteer/stats", tel_stats,
				   "qsteer-dp counters summed over workers. No parameters");
	rte_telemetry_register_cmd("/qsteer/backends", tel_backends,
				   "Requests sent per backend. No parameters");
	rte_telemetry_register_cmd("/qsteer/policy", tel_policy,
				   "Active and shadow/canary policy. No parameters");
}
