/*
 * control.c - qsteer-dp's control thread: the JSON-lines unix socket (docs/control.md)
 * and the DPDK telemetry commands. Runs on the main lcore only; it touches the fast
 * path solely through the functions of dp_app.h (RCU publication, the atomic drain
 * mask, reading per-lcore counters).
 *
 * One request per line, one response per line: {"cmd":"stats"} ->
 * {"ok":true,...}; errors are {"ok":false,"error":"...","status":"..."}. Clients are
 * served one at a time with short timeouts, so a stuck client delays only the
 * control plane, never a worker.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <rte_telemetry.h>

#include "dp_app.h"

static int lfd = -1;
static char sock_path[108];

int
qs_dpc_open(const char *path, char *msg, size_t msglen)
{
	struct sockaddr_un sa;
	mode_t old;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(msg, msglen, "%s: path too long", path);
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (lfd < 0) {
		snprintf(msg, msglen, "socket: %s", strerror(errno));
		return -1;
	}
	unlink(path); /* a stale socket of a previous run */
	old = umask(0177); /* created 0600: only the owner may steer traffic */
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 8) != 0) {
		umask(old);
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		close(lfd);
		lfd = -1;
		return -1;
	}
	umask(old);
	chmod(path, 0600);
	snprintf(sock_path, sizeof(sock_path), "%s", path);
	return 0;
}

void
qs_dpc_close(void)
{
	if (lfd >= 0) {
		close(lfd);
		unlink(sock_path);
		lfd = -1;
	}
}

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

char *
qs_dpc_stats_json(void)
{
	json_t *o = json_object();
	char *s;

	json_object_set_new(o, "ok", json_true());
	json_object_set_new(o, "counters", counters_obj());
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

static json_t *
err_obj(int status, const char *msg)
{
	json_t *o = json_object();

	json_object_set_new(o, "ok", json_false());
	json_object_set_new(o, "status", json_string(qs_status_name(status)));
	json_object_set_new(o, "error", json_string(msg));
	return o;
}

static json_t *
handle(const char *line)
{
	json_error_t je;
	json_t *req = json_loads(line, 0, &je), *resp;
	const char *cmd;
	char msg[512];
	int rc;

	if (!req || !json_is_object(req)) {
		json_decref(req);
		snprintf(msg, sizeof(msg), "bad request: %s", req ? "not an object" : je.text);
		return err_obj(QS_E_ARG, msg);
	}
	cmd = json_string_value(json_object_get(req, "cmd"));
	if (!cmd) {
		json_decref(req);
		return err_obj(QS_E_ARG, "bad request: no \"cmd\"");
	}
	resp = json_object();
	json_object_set_new(resp, "ok", json_true());
	if (strcmp(cmd, "status") == 0) {
		struct qs_dpa_info info;
		struct qs_dp_counters sum;
		const struct qs_dp_shared *sh = qs_dpa_shared();
		uint32_t i, fresh = 0;

		qs_dpa_info(&info);
		qs_dpa_counters(&sum);
		for (i = 0; i < sh->cfg.n_backends; i++)
			fresh += qs_dp_backend_fresh(sh, i, info.now_ns);
		json_object_set_new(resp, "workers", json_integer(info.n_workers));
		json_object_set_new(resp, "uptime_s", json_integer((json_int_t)(info.uptime_ns / 1000000000u)));
		json_object_set_new(resp, "clock", json_string(sh->cfg.clock == QS_DP_CLOCK_PACKET ? "packet" : "tsc"));
		json_object_set_new(resp, "backends", json_integer(sh->cfg.n_backends));
		json_object_set_new(resp, "backends_fresh", json_integer(fresh));
		json_object_set_new(resp, "rx", json_integer((json_int_t)sum.rx));
		json_object_set_new(resp, "tx", json_integer((json_int_t)sum.tx));
		json_object_set_new(resp, "policy", policy_obj());
	} else if (strcmp(cmd, "stats") == 0) {
		json_object_set_new(resp, "counters", counters_obj());
	} else if (strcmp(cmd, "backends") == 0) {
		json_object_set_new(resp, "backends", backends_arr());
	} else if (strcmp(cmd, "policy.show") == 0) {
		json_object_set_new(resp, "policy", policy_obj());
	} else if (strcmp(cmd, "policy.load") == 0) {
		const char *path = json_string_value(json_object_get(req, "path"));
		const char *mode = json_string_value(json_object_get(req, "mode"));
		json_t *pj = json_object_get(req, "pct");
		enum qs_dp_mode m = QS_DP_MODE_ACTIVE;

		if (mode && strcmp(mode, "shadow") == 0)
			m = QS_DP_MODE_SHADOW;
		else if (mode && strcmp(mode, "canary") == 0)
			m = QS_DP_MODE_CANARY;
		else if (mode && strcmp(mode, "active") != 0)
			m = (enum qs_dp_mode)-1;
		if (!path || (int)m < 0 || (m == QS_DP_MODE_CANARY && !json_is_integer(pj))) {
			json_decref(resp);
			resp = err_obj(QS_E_ARG, "policy.load takes \"path\", \"mode\" (active, shadow, "
						 "canary) and for canary \"pct\"");
		} else {
			rc = qs_dpa_policy_load(path, m, (uint32_t)json_integer_value(pj), msg, sizeof(msg));
			if (rc != QS_OK) {
				json_decref(resp);
				resp = err_obj(rc, msg);
			} else {
				json_object_set_new(resp, "message", json_string(msg));
				json_object_set_new(resp, "policy", policy_obj());
			}
		}
	} else if (strcmp(cmd, "policy.rollback") == 0) {
		rc = qs_dpa_policy_rollback(msg, sizeof(msg));
		if (rc != QS_OK) {
			json_decref(resp);
			resp = err_obj(rc, msg);
		} else {
			json_object_set_new(resp, "message", json_string(msg));
			json_object_set_new(resp, "policy", policy_obj());
		}
	} else if (strcmp(cmd, "backend.drain") == 0 || strcmp(cmd, "backend.undrain") == 0) {
		json_t *id = json_object_get(req, "id");

		if (!json_is_integer(id) || json_integer_value(id) < 0 ||
		    json_integer_value(id) > 0xffff) {
			json_decref(resp);
			resp = err_obj(QS_E_ARG, "backend.drain/undrain take an integer \"id\"");
		} else {
			rc = qs_dpa_drain((uint16_t)json_integer_value(id),
					  strcmp(cmd, "backend.drain") == 0, msg, sizeof(msg));
			if (rc != QS_OK) {
				json_decref(resp);
				resp = err_obj(rc, msg);
			} else {
				json_object_set_new(resp, "message", json_string(msg));
			}
		}
	} else if (strcmp(cmd, "shutdown") == 0) {
		qs_dpa_request_quit();
		json_object_set_new(resp, "message", json_string("shutting down"));
	} else {
		json_decref(resp);
		snprintf(msg, sizeof(msg), "unknown command \"%s\"", cmd);
		resp = err_obj(QS_E_ARG, msg);
	}
	json_decref(req);
	return resp;
}

static void
serve(int fd)
{
	char buf[8192];
	size_t have = 0;

	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		char *nl;
		ssize_t r;

		if (poll(&p, 1, 1000) <= 0)
			return;
		r = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (r <= 0)
			return;
		have += (size_t)r;
		buf[have] = 0;
		while ((nl = memchr(buf, '\n', have)) != NULL) {
			json_t *resp;
			char *out;
			size_t len, off = 0;

			*nl = 0;
			resp = handle(buf);
			out = json_dumps(resp, JSON_COMPACT | JSON_PRESERVE_ORDER);
			json_decref(resp);
			len = strlen(out);
			out[len] = '\n';
			while (off < len + 1) {
				ssize_t w = write(fd, out + off, len + 1 - off);

				if (w <= 0)
					break;
				off += (size_t)w;
			}
			free(out);
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have);
		}
		if (have == sizeof(buf) - 1)
			return; /* a line longer than any request: drop the client */
	}
}

void
qs_dpc_poll(int timeout_ms)
{
	struct pollfd p;
	int fd;

	if (lfd < 0)
		return;
	p.fd = lfd;
	p.events = POLLIN;
	if (poll(&p, 1, timeout_ms) <= 0)
		return;
	while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		serve(fd);
		close(fd);
	}
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
