/*
 * control.c - qsteer-dp's control thread: the JSON-lines unix socket (docs/control.md)
 * and the DPDK telemetry commands. Runs on the main lcore only; it touches the fast
 * path solely through the functions of dp_app.h (RCU publication, the atomic drain
 * mask, reading per-lcore counters).
 *
 * The socket, framing, validation and the Prometheus endpoint are the shared
 * control server (dp/ctl_server.c, include/qsteer/ctl.h, also used by qsteer-xdp);
 * this file supplies qsteer-dp's callbacks. Clients are served one at a time with
 * short timeouts, so a stuck client delays only the control plane, never a worker.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <rte_telemetry.h>

#include "qsteer/ctl.h"
#include "dp_app.h"

static struct qs_ctl_server *srv;

static json_t *
counters_obj(void)
{
	struct qs_dp_counters sum;
	char *js;
	json_t *o;

	qs_dpa_counters(&sum);
	js = qs_dp_counters_json(&sum, &qs_dpa_shared()->cfg);
	o = json_loads(js, 0, NULL);
	free(js);
	return o;
}

/* Each worker's own counters: the sum over them is "counters". */
static json_t *
per_worker_arr(void)
{
	struct qs_dpa_info info;
	json_t *a = json_array();
	uint32_t i;

	qs_dpa_info(&info);
	for (i = 0; i < info.n_workers; i++) {
		struct qs_dp_counters c;
		unsigned lcore;
		uint16_t queue;
		char *js;
		json_t *o, *cj;

		qs_dpa_worker_counters(i, &c, &lcore, &queue);
		js = qs_dp_counters_json(&c, &qs_dpa_shared()->cfg);
		cj = json_loads(js, 0, NULL);
		free(js);
		o = json_object();
		json_object_set_new(o, "worker", json_integer(i));
		json_object_set_new(o, "lcore", json_integer(lcore));
		json_object_set_new(o, "queue", json_integer(queue));
		json_object_set_new(o, "counters", cj);
		json_array_append_new(a, o);
	}
	return a;
}

char *
qs_dpc_stats_json(void)
{
	json_t *o = json_object();
	char *s;

	json_object_set_new(o, "ok", json_true());
	json_object_set_new(o, "counters", counters_obj());
	json_object_set_new(o, "per_worker", per_worker_arr());
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

static json_t *
slot_obj(const struct qs_dpa_slot *sl)
{
	json_t *o = json_object();

	json_object_set_new(o, "source", json_string(sl->source));
	if (sl->p) {
		char id[32];

		json_object_set_new(o, "name", json_string(sl->p->name));
		snprintf(id, sizeof(id), "%016" PRIx64, sl->p->content_id);
		json_object_set_new(o, "content_id", json_string(id));
		json_object_set_new(o, "layers", json_integer(sl->p->n_layers));
		json_object_set_new(o, "inputs", json_integer(sl->p->n_in));
	} else {
		json_object_set_new(o, "name", json_string(qs_baseline_name(sl->builtin)));
		json_object_set_new(o, "builtin", json_true());
	}
	return o;
}

static json_t *
policy_obj(void)
{
	const struct qs_dpa_slot *a, *s, *p;
	enum qs_dp_mode mode;
	uint32_t pct;
	uint64_t ver;
	json_t *o = json_object();
	struct qs_dpa_info info;

	qs_dpa_policy(&a, &s, &p, &mode, &pct, &ver);
	qs_dpa_info(&info);
	json_object_set_new(o, "mode", json_string(qs_dp_mode_name(mode)));
	json_object_set_new(o, "version", json_integer((json_int_t)ver));
	json_object_set_new(o, "swaps", json_integer((json_int_t)info.swaps));
	json_object_set_new(o, "kernel", json_string(info.kernel));
	json_object_set_new(o, "active", a ? slot_obj(a) : json_null());
	json_object_set_new(o, mode == QS_DP_MODE_CANARY ? "canary" : "shadow",
			    s ? slot_obj(s) : json_null());
	if (mode == QS_DP_MODE_CANARY)
		json_object_set_new(o, "canary_pct", json_integer(pct));
	json_object_set_new(o, "previous", p ? slot_obj(p) : json_null());
	return o;
}

static json_t *
backends_arr(void)
{
	const struct qs_dp_shared *sh = qs_dpa_shared();
	struct qs_dp_counters sum;
	struct qs_dpa_info info;
	json_t *a = json_array();
	uint64_t drain = __atomic_load_n(&sh->admin_drain, __ATOMIC_ACQUIRE);
	uint32_t i;

	qs_dpa_counters(&sum);
	qs_dpa_info(&info);
	for (i = 0; i < sh->cfg.n_backends; i++) {
		const struct qs_dp_backend_cfg *b = &sh->cfg.be[i];
		const struct qs_dp_backend_state *st = &sh->be[i];
		json_t *o = json_object();
		char ip[INET6_ADDRSTRLEN] = "";
		bool fresh = qs_dp_backend_fresh(sh, i, info.now_ns);

		if (b->has_ip4)
			inet_ntop(AF_INET, b->ip4, ip, sizeof(ip));
		else
			inet_ntop(AF_INET6, b->ip6, ip, sizeof(ip));
		json_object_set_new(o, "name", json_string(b->name));
		json_object_set_new(o, "id", json_integer(b->id));
		json_object_set_new(o, "ip", json_string(ip));
		json_object_set_new(o, "port", json_integer(b->port));
		json_object_set_new(o, "capacity_class", json_integer(b->capacity_class));
		json_object_set_new(o, "reported", json_boolean(st->valid));
		json_object_set_new(o, "fresh", json_boolean(fresh));
		json_object_set_new(o, "report_age_ms",
				    st->valid && info.now_ns >= st->last_ns
					    ? json_integer((json_int_t)((info.now_ns - st->last_ns) / 1000000))
					    : json_null());
		json_object_set_new(o, "draining", json_boolean(st->rep.flags & QS_QRP_RF_DRAINING));
		json_object_set_new(o, "drained", json_boolean(drain >> i & 1));
		json_object_set_new(o, "waiting", json_integer(st->rep.waiting));
		json_object_set_new(o, "running", json_integer(st->rep.running));
		json_object_set_new(o, "kv_used", json_integer(st->rep.kv_used));
		json_object_set_new(o, "kv_total", json_integer(st->rep.kv_total));
		json_object_set_new(o, "report_seq", json_integer((json_int_t)st->report_seq));
		json_object_set_new(o, "sent", json_integer((json_int_t)sum.to_backend[i]));
		json_array_append_new(a, o);
	}
	return a;
}

/* ---- the callbacks of include/qsteer/ctl.h ------------------------------------ */

/* A shadow report as an object (JSON null when out of memory). */
static json_t *
shadow_obj(const struct qs_dp_shadow *sh, uint32_t top)
{
	char *js = qs_dp_shadow_json(sh, &qs_dpa_shared()->cfg, top);
	json_t *o = js ? json_loads(js, 0, NULL) : NULL;

	free(js);
	return o ? o : json_null();
}

static int
cb_shadow(void *ctx, uint32_t top, json_t *resp, char *msg, size_t msglen)
{
	/* two 34 KiB reports: the heap, not the control thread's stack */
	struct qs_dp_shadow *tot = malloc(2 * sizeof(*tot)), *win;
	bool running;

	(void)ctx;
	if (!tot) {
		snprintf(msg, msglen, "out of memory");
		return QS_E_NOMEM;
	}
	win = tot + 1;
	running = qs_dpa_shadow(tot, win);
	json_object_set_new(resp, "policy", policy_obj());
	json_object_set_new(resp, "window", running ? shadow_obj(win, top) : json_null());
	json_object_set_new(resp, "total", shadow_obj(tot, top));
	free(tot);
	return QS_OK;
}

static int
cb_status(void *ctx, json_t *resp, char *msg, size_t msglen)
{
	struct qs_dpa_info info;
	struct qs_dp_counters sum;
	const struct qs_dp_shared *sh = qs_dpa_shared();
	uint32_t i, fresh = 0;

	(void)ctx;
	(void)msg;
	(void)msglen;
	qs_dpa_info(&info);
	qs_dpa_counters(&sum);
	for (i = 0; i < sh->cfg.n_backends; i++)
		fresh += qs_dp_backend_fresh(sh, i, info.now_ns);
	json_object_set_new(resp, "daemon", json_string("qsteer-dp"));
	json_object_set_new(resp, "workers", json_integer(info.n_workers));
	json_object_set_new(resp, "burst", json_integer(info.burst));
	json_object_set_new(resp, "uptime_s", json_integer((json_int_t)(info.uptime_ns / 1000000000u)));
	json_object_set_new(resp, "clock",
			    json_string(sh->cfg.clock == QS_DP_CLOCK_PACKET ? "packet" : "tsc"));
	json_object_set_new(resp, "backends", json_integer(sh->cfg.n_backends));
	json_object_set_new(resp, "backends_fresh", json_integer(fresh));
	json_object_set_new(resp, "rx", json_integer((json_int_t)sum.rx));
	json_object_set_new(resp, "tx", json_integer((json_int_t)sum.tx));
	json_object_set_new(resp, "policy", policy_obj());
	return QS_OK;
}

static int
cb_stats(void *ctx, json_t *resp, char *msg, size_t msglen)
{
	(void)ctx;
	(void)msg;
	(void)msglen;
	json_object_set_new(resp, "counters", counters_obj());
	json_object_set_new(resp, "per_worker", per_worker_arr());
	return QS_OK;
}

static int
cb_backends(void *ctx, json_t *resp, char *msg, size_t msglen)
{
	(void)ctx;
	(void)msg;
	(void)msglen;
	json_object_set_new(resp, "backends", backends_arr());
	return QS_OK;
}

static int
cb_policy_show(void *ctx, json_t *resp, char *msg, size_t msglen)
{
	(void)ctx;
	(void)msg;
	(void)msglen;
	json_object_set_new(resp, "policy", policy_obj());
	return QS_OK;
}

static int
cb_policy_load(void *ctx, enum qs_ctl_mode mode, const char *path, uint32_t pct, json_t *resp,
	       char *msg, size_t msglen)
{
	enum qs_dp_mode m = mode == QS_CTL_MODE_SHADOW	 ? QS_DP_MODE_SHADOW
			    : mode == QS_CTL_MODE_CANARY ? QS_DP_MODE_CANARY
							 : QS_DP_MODE_ACTIVE;
	int rc;

	(void)ctx;
	rc = qs_dpa_policy_load(path, m, pct, msg, msglen);
	if (rc == QS_OK)
		json_object_set_new(resp, "policy", policy_obj());
	return rc;
}

static int
cb_rollback(void *ctx, json_t *resp, char *msg, size_t msglen)
{
	int rc;

	(void)ctx;
	rc = qs_dpa_policy_rollback(msg, msglen);
	if (rc == QS_OK)
		json_object_set_new(resp, "policy", policy_obj());
	return rc;
}

static int
cb_drain(void *ctx, uint16_t id, json_t *resp, char *msg, size_t msglen)
{
	(void)ctx;
	(void)resp;
	return qs_dpa_drain(id, true, msg, msglen);
}

static int
cb_undrain(void *ctx, uint16_t id, json_t *resp, char *msg, size_t msglen)
{
	(void)ctx;
	(void)resp;
	return qs_dpa_drain(id, false, msg, msglen);
}

static int
cb_shutdown(void *ctx, json_t *resp, char *msg, size_t msglen)
{
	(void)ctx;
	(void)resp;
	qs_dpa_request_quit();
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
	enum qs_dpa_rx_op o = QS_DPA_RX_SHOW;
	struct qs_dpa_rx st;
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
			snprintf(msg, msglen, "rx: unknown op \"%.32s\" (show, hold, allow, release)",
				 op);
			return QS_E_ARG;
		}
		o = (enum qs_dpa_rx_op)i;
	}
	if (o == QS_DPA_RX_ALLOW) {
		if (!json_is_integer(jn) || json_integer_value(jn) < 1 ||
		    json_integer_value(jn) > 1000000000) {
			snprintf(msg, msglen, "rx allow needs \"bursts\": an integer 1..1000000000");
			return QS_E_ARG;
		}
		n = (uint64_t)json_integer_value(jn);
	} else if (jn) {
		snprintf(msg, msglen, "rx: \"bursts\" only goes with op allow");
		return QS_E_ARG;
	}
	qs_dpa_rx_gate(o, n, &st);
	json_object_set_new(resp, "gated", json_boolean(st.gated));
	json_object_set_new(resp, "credit", json_integer((json_int_t)st.credit));
	json_object_set_new(resp, "bursts", json_integer((json_int_t)st.bursts));
	return QS_OK;
}

static const struct qs_ctl_ops dp_ops = {
	.status = cb_status,
	.stats = cb_stats,
	.backends = cb_backends,
	.policy_show = cb_policy_show,
	.policy_load = cb_policy_load,
	.rollback = cb_rollback,
	.drain = cb_drain,
	.undrain = cb_undrain,
	.shutdown = cb_shutdown,
	.other = cb_other,
	.shadow = cb_shadow,
};

int
qs_dpc_open(const char *path, const char *prometheus, char *msg, size_t msglen)
{
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
	qs_dpa_counters(&c);
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
	const struct qs_dp_shared *sh = qs_dpa_shared();
	struct qs_dp_counters c;
	uint32_t i;

	(void)cmd;
	(void)params;
	qs_dpa_counters(&c);
	rte_tel_data_start_dict(d);
	for (i = 0; i < sh->cfg.n_backends; i++)
		rte_tel_data_add_dict_u64(d, sh->cfg.be[i].name, c.to_backend[i]);
	return 0;
}

static int
tel_policy(const char *cmd, const char *params, struct rte_tel_data *d)
{
	const struct qs_dpa_slot *a, *s, *p;
	enum qs_dp_mode mode;
	uint32_t pct;
	uint64_t ver;

	(void)cmd;
	(void)params;
	qs_dpa_policy(&a, &s, &p, &mode, &pct, &ver);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "mode", qs_dp_mode_name(mode));
	rte_tel_data_add_dict_string(d, "active", a ? a->source : "");
	rte_tel_data_add_dict_string(d, "second", s ? s->source : "");
	rte_tel_data_add_dict_u64(d, "version", ver);
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
