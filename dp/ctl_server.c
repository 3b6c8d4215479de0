/*
 * ctl_server.c - the control server of include/qsteer/ctl.h, shared by qsteer-dp
 * and qsteer-xdp: JSON lines on a 0600 unix stream socket, request validation and
 * dispatch to the daemon's callbacks, and a Prometheus text endpoint rendered from
 * the get_counters callback. No DPDK, no threads: everything runs inside qs_ctl_poll on
 * the daemon's control thread.
 *
 * Clients are served concurrently from one poll loop: every socket is non-blocking,
 * each client has its own input line buffer, output buffer and idle deadline
 * (1 s without progress drops it), and a client that does not read its answers is
 * not read from until it does. A client can therefore delay only itself: idle or
 * slow connections never hold up another client, the Prometheus endpoint, or the
 * daemon's loop (which calls qs_ctl_poll with its own timeout). The table is
 * bounded (QS_CTL_MAX_CLIENTS); a new connection to a full table evicts the client
 * idle the longest. Writes use MSG_NOSIGNAL: a client that hangs up early never
 * kills the daemon with SIGPIPE.
 *
 * One daemon per socket path: qs_ctl_open takes an exclusive flock on PATH.lock for
 * the server's lifetime, and only then replaces a stale socket file, so a second
 * daemon on the same path refuses to start instead of unlinking a live one's socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "qsteer/clock.h"
#include "qsteer/ctl.h"
#include "stats_json.h"

#define CLIENT_IDLE_MS 1000
#define HTTP_MAX_REQ   4096

/* One connection: a control client (JSON lines) or a Prometheus scrape (HTTP). */
struct ctl_client {
	int fd; /* -1: free slot */
	bool http;
	bool closing; /* drop once out is flushed (HTTP answered, line too long, EOF) */
	char *in;     /* QS_CTL_MAX_LINE + 1 bytes */
	size_t have;  /* bytes in in */
	char *out;    /* answers not yet written */
	size_t out_len, out_off;
	uint64_t last_ms; /* last progress either way: the idle deadline counts from it */
	uint64_t touched; /* server tick of that progress: the least recent is evicted */
};

struct qs_ctl_server {
	int lfd;    /* unix listener, -1 none */
	int hfd;    /* Prometheus TCP listener, -1 none */
	int lockfd; /* flock on path + ".lock", -1 none */
	uint16_t hport;
	bool quit;
	const struct qs_ctl_ops *ops;
	void *ctx;
	char path[108];
	char prefix[64];
	uint64_t tick; /* orders client progress (milliseconds tie) */
	struct ctl_client cl[QS_CTL_MAX_CLIENTS];
};

const char *
qs_ctl_mode_name(enum qs_ctl_mode m)
{
	switch (m) {
	case QS_CTL_MODE_ACTIVE:
		return "active";
	case QS_CTL_MODE_SHADOW:
		return "shadow";
	case QS_CTL_MODE_CANARY:
		return "canary";
	}
	return "?";
}

/*
 * Hold an exclusive lock on path + ".lock" for the server's lifetime. The lock file
 * stays after exit (removing it would race with the next daemon); the lock does not.
 */
static int
lock_path(struct qs_ctl_server *s, const char *path, char *msg, size_t msglen)
{
	char lp[sizeof(s->path) + 8];

	snprintf(lp, sizeof(lp), "%s.lock", path);
	s->lockfd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lockfd < 0) {
		snprintf(msg, msglen, "%s: %s", lp, strerror(errno));
		return -1;
	}
	if (flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		if (e == EWOULDBLOCK)
			snprintf(msg, msglen,
				 "%s: another daemon is running on this control socket (it holds "
				 "%s); stop it first or give another --control path",
				 path, lp);
		else
			snprintf(msg, msglen, "%s: flock: %s", lp, strerror(e));
		close(s->lockfd);
		s->lockfd = -1;
		return -1;
	}
	return 0;
}

struct qs_ctl_server *
qs_ctl_open(const char *path, const struct qs_ctl_ops *ops, void *ctx, char *msg, size_t msglen)
{
	struct qs_ctl_server *s;
	struct sockaddr_un sa;
	mode_t old;

	if (!ops) {
		snprintf(msg, msglen, "no callbacks");
		return NULL;
	}
	if (path && strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(msg, msglen, "%s: path too long (at most %zu bytes)", path,
			 sizeof(sa.sun_path) - 1);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(msg, msglen, "out of memory");
		return NULL;
	}
	s->lfd = s->hfd = s->lockfd = -1;
	for (int i = 0; i < QS_CTL_MAX_CLIENTS; i++)
		s->cl[i].fd = -1;
	s->ops = ops;
	s->ctx = ctx;
	snprintf(s->prefix, sizeof(s->prefix), "qsteer");
	if (!path)
		return s;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->lfd < 0) {
		snprintf(msg, msglen, "socket: %s", strerror(errno));
		free(s);
		return NULL;
	}
	if (lock_path(s, path, msg, msglen) != 0) {
		close(s->lfd);
		free(s);
		return NULL;
	}
	unlink(path);	   /* a stale socket of a previous run: no live daemon holds the lock */
	old = umask(0177); /* created 0600: only the owner (or root) may steer traffic */
	/* a backlog as deep as the kernel allows: connections wait in it, not in connect() */
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(s->lfd, SOMAXCONN) != 0) {
		umask(old);
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		close(s->lfd);
		close(s->lockfd);
		free(s);
		return NULL;
	}
	umask(old);
	if (chmod(path, 0600) != 0) {
		snprintf(msg, msglen, "%s: chmod: %s", path, strerror(errno));
		close(s->lfd);
		unlink(path);
		close(s->lockfd);
		free(s);
		return NULL;
	}
	snprintf(s->path, sizeof(s->path), "%s", path);
	return s;
}

static void client_drop(struct ctl_client *c);

void
qs_ctl_close(struct qs_ctl_server *s)
{
	int i;

	if (!s)
		return;
	for (i = 0; i < QS_CTL_MAX_CLIENTS; i++)
		client_drop(&s->cl[i]);
	if (s->lfd >= 0) {
		close(s->lfd);
		unlink(s->path);
	}
	if (s->hfd >= 0)
		close(s->hfd);
	if (s->lockfd >= 0)
		close(s->lockfd); /* releases the lock */
	free(s);
}

uint16_t
qs_ctl_prometheus_port(const struct qs_ctl_server *s)
{
	return s && s->hfd >= 0 ? s->hport : 0;
}

bool
qs_ctl_shutdown_requested(const struct qs_ctl_server *s)
{
	return s && s->quit;
}

/* ---- requests ----------------------------------------------------------------- */

static json_t *
err_obj(int status, const char *msg)
{
	json_t *o = json_object();

	json_object_set_new(o, "ok", json_false());
	json_object_set_new(o, "status", json_string(qs_status_name(status)));
	json_object_set_new(o, "error", json_string(msg));
	return o;
}

/* Finish a callback's answer: resp on QS_OK (with msg as "message"), else an error. */
static json_t *
finish(int rc, json_t *resp, const char *msg)
{
	if (rc != QS_OK) {
		json_decref(resp);
		return err_obj(rc, msg[0] ? msg : "refused");
	}
	if (msg[0])
		json_object_set_new(resp, "message", json_string(msg));
	return resp;
}

static json_t *
unsupported(const char *cmd)
{
	char m[128];

	snprintf(m, sizeof(m), "%s is not supported by this daemon", cmd);
	return err_obj(QS_E_UNSUPPORTED, m);
}

/* ---- the answers, written from what the typed callbacks fill ------------------ */

/* A command the daemon has no callback for (neither form). */
#define UNSUPPORTED (-1)

static json_t *
slot_json(const struct qs_ctl_slot *sl)
{
	json_t *o;
	char id[32];

	if (!sl->used)
		return json_null();
	o = json_object();
	json_object_set_new(o, "source", json_string(sl->source));
	json_object_set_new(o, "name", json_string(sl->name));
	if (sl->builtin) {
		json_object_set_new(o, "builtin", json_true());
	} else {
		snprintf(id, sizeof(id), "%016" PRIx64, sl->content_id);
		json_object_set_new(o, "content_id", json_string(id));
		json_object_set_new(o, "layers", json_integer(sl->layers));
		json_object_set_new(o, "inputs", json_integer(sl->inputs));
	}
	if (sl->has_slot_version)
		json_object_set_new(o, "slot_version", json_integer((json_int_t)sl->slot_version));
	return o;
}

/* Add "policy" (get_policy) to resp. */
static int
add_policy(struct qs_ctl_server *s, json_t *resp, char *msg, size_t msglen)
{
	struct qs_ctl_policy p;
	json_t *o;
	int rc;

	memset(&p, 0, sizeof(p));
	rc = s->ops->get_policy(s->ctx, &p, msg, msglen);
	if (rc != QS_OK)
		return rc;
	o = json_object();
	json_object_set_new(o, "mode", json_string(qs_ctl_mode_name(p.mode)));
	json_object_set_new(o, "version", json_integer((json_int_t)p.version));
	json_object_set_new(o, "swaps", json_integer((json_int_t)p.swaps));
	json_object_set_new(o, "kernel", json_string(p.kernel ? p.kernel : ""));
	json_object_set_new(o, "active", slot_json(&p.active));
	json_object_set_new(o, p.mode == QS_CTL_MODE_CANARY ? "canary" : "shadow",
			    slot_json(&p.second));
	if (p.mode == QS_CTL_MODE_CANARY)
		json_object_set_new(o, "canary_pct", json_integer(p.canary_pct));
	json_object_set_new(o, "previous", slot_json(&p.previous));
	json_object_set_new(resp, "policy", o);
	return QS_OK;
}

static int
cmd_status(struct qs_ctl_server *s, json_t *resp, char *msg, size_t msglen)
{
	struct qs_ctl_status st;
	int rc;

	if (!s->ops->get_status)
		return UNSUPPORTED;
	memset(&st, 0, sizeof(st));
	rc = s->ops->get_status(s->ctx, &st, msg, msglen);
	if (rc != QS_OK)
		return rc;
	json_object_set_new(resp, "daemon", json_string(st.daemon ? st.daemon : ""));
	if (st.interface)
		json_object_set_new(resp, "interface", json_string(st.interface));
	if (st.xdp_mode)
		json_object_set_new(resp, "xdp_mode", json_string(st.xdp_mode));
	json_object_set_new(resp, "workers", json_integer(st.workers));
	json_object_set_new(resp, "burst", json_integer(st.burst));
	json_object_set_new(resp, "uptime_s", json_integer((json_int_t)st.uptime_s));
	json_object_set_new(resp, "clock", json_string(st.clock ? st.clock : ""));
	json_object_set_new(resp, "backends", json_integer(st.backends));
	json_object_set_new(resp, "backends_fresh", json_integer(st.backends_fresh));
	json_object_set_new(resp, "rx", json_integer((json_int_t)st.rx));
	json_object_set_new(resp, "tx", json_integer((json_int_t)st.tx));
	return s->ops->get_policy ? add_policy(s, resp, msg, msglen) : QS_OK;
}

/* "counters" and "per_worker": the stats answer, and what /metrics renders. */
static int
cmd_stats(struct qs_ctl_server *s, json_t *resp, char *msg, size_t msglen)
{
	struct qs_ctl_counters *c;
	json_t *o;
	uint32_t i;
	int rc;

	if (!s->ops->get_counters)
		return UNSUPPORTED;
	c = calloc(1, sizeof(*c)); /* per-worker counters: the heap, not the stack */
	if (!c) {
		snprintf(msg, msglen, "out of memory");
		return QS_E_NOMEM;
	}
	rc = s->ops->get_counters(s->ctx, c, msg, msglen);
	if (rc == QS_OK && !c->cfg) {
		snprintf(msg, msglen, "the daemon gave no configuration");
		rc = QS_E_ARG;
	}
	if (rc != QS_OK) {
		free(c);
		return rc;
	}
	o = qs_dp_counters_obj(&c->sum, c->cfg);
	json_object_set_new(resp, "counters", o ? o : json_null());
	if (c->n_workers) {
		json_t *a = json_array();

		for (i = 0; i < c->n_workers && i < QS_CTL_MAX_WORKERS; i++) {
			json_t *w = json_object();
			json_t *wc = qs_dp_counters_obj(&c->worker[i].c, c->cfg);

			json_object_set_new(w, "worker", json_integer(i));
			json_object_set_new(w, "lcore", json_integer(c->worker[i].lcore));
			json_object_set_new(w, "queue", json_integer(c->worker[i].queue));
			json_object_set_new(w, "counters", wc ? wc : json_null());
			json_array_append_new(a, w);
		}
		json_object_set_new(resp, "per_worker", a);
	}
	free(c);
	return QS_OK;
}

static json_t *
backend_json(const struct qs_ctl_backend *b)
{
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(b->name));
	json_object_set_new(o, "id", json_integer(b->id));
	json_object_set_new(o, "ip", json_string(b->ip));
	json_object_set_new(o, "port", json_integer(b->port));
	json_object_set_new(o, "capacity_class", json_integer(b->capacity_class));
	json_object_set_new(o, "reported", json_boolean(b->reported));
	json_object_set_new(o, "fresh", json_boolean(b->fresh));
	json_object_set_new(o, "report_age_ms",
			    b->has_report_age ? json_integer((json_int_t)b->report_age_ms)
					      : json_null());
	json_object_set_new(o, "draining", json_boolean(b->draining));
	json_object_set_new(o, "drained", json_boolean(b->drained));
	json_object_set_new(o, "waiting", json_integer(b->waiting));
	json_object_set_new(o, "running", json_integer(b->running));
	json_object_set_new(o, "kv_used", json_integer(b->kv_used));
	json_object_set_new(o, "kv_total", json_integer(b->kv_total));
	json_object_set_new(o, "report_seq", json_integer((json_int_t)b->report_seq));
	json_object_set_new(o, "sent", json_integer((json_int_t)b->sent));
	json_object_set_new(o, "variant", b->variant[0] ? json_string(b->variant) : json_null());
	{
		json_t *f = json_array();
		uint32_t c, d;

		for (c = 0; c < QS_QUALITY_SLO; c++) {
			json_t *ds = json_array();

			for (d = 0; d < QS_DIFFICULTIES; d++)
				if (b->below_floor[c] >> d & 1)
					json_array_append_new(ds, json_integer(d));
			json_array_append_new(f, ds);
		}
		json_object_set_new(o, "below_floor", f);
	}
	return o;
}

void
qs_ctl_backend_config(const struct qs_dp_config *c, uint32_t i, struct qs_ctl_backend *o)
{
	const struct qs_dp_backend_cfg *b = &c->be[i];
	uint32_t k, d;

	snprintf(o->name, sizeof(o->name), "%s", b->name);
	o->id = b->id;
	if (b->has_ip4)
		inet_ntop(AF_INET, b->ip4, o->ip, sizeof(o->ip));
	else if (b->has_ip6)
		inet_ntop(AF_INET6, b->ip6, o->ip, sizeof(o->ip));
	o->port = b->port;
	o->capacity_class = b->capacity_class;
	snprintf(o->variant, sizeof(o->variant), "%s", b->variant);
	for (k = 0; k < QS_QUALITY_SLO; k++) {
		o->below_floor[k] = 0;
		for (d = 0; d < QS_DIFFICULTIES; d++)
			o->below_floor[k] |= (uint8_t)((c->quality_masked[k][d] >> i & 1) << d);
	}
}

static int
cmd_backends(struct qs_ctl_server *s, json_t *resp, char *msg, size_t msglen)
{
	struct qs_ctl_backends *b;
	json_t *a;
	uint32_t i;
	int rc;

	if (!s->ops->get_backends)
		return UNSUPPORTED;
	b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(msg, msglen, "out of memory");
		return QS_E_NOMEM;
	}
	rc = s->ops->get_backends(s->ctx, b, msg, msglen);
	if (rc == QS_OK) {
		a = json_array();
		for (i = 0; i < b->n && i < QS_DP_MAX_BACKENDS; i++)
			json_array_append_new(a, backend_json(&b->be[i]));
		json_object_set_new(resp, "backends", a);
	}
	free(b);
	return rc;
}

static int
cmd_policy_show(struct qs_ctl_server *s, json_t *resp, char *msg, size_t msglen)
{
	if (!s->ops->get_policy)
		return UNSUPPORTED;
	return add_policy(s, resp, msg, msglen);
}

/* After a typed action changed the policies: the answer shows them. */
static int
then_policy(struct qs_ctl_server *s, int rc, json_t *resp, char *msg, size_t msglen)
{
	char m[512];

	if (rc != QS_OK || !s->ops->get_policy)
		return rc;
	snprintf(m, sizeof(m), "%s", msg); /* the action's message, not a view's */
	rc = add_policy(s, resp, msg, msglen);
	snprintf(msg, msglen, "%s", m);
	return rc;
}

static int
cmd_rollback(struct qs_ctl_server *s, json_t *resp, char *msg, size_t msglen)
{
	if (!s->ops->roll_back)
		return UNSUPPORTED;
	return then_policy(s, s->ops->roll_back(s->ctx, msg, msglen), resp, msg, msglen);
}

static int
cmd_shutdown(struct qs_ctl_server *s, json_t *resp, char *msg, size_t msglen)
{
	(void)resp;
	if (!s->ops->stop)
		return UNSUPPORTED;
	return s->ops->stop(s->ctx, msg, msglen);
}

static int
cmd_load(struct qs_ctl_server *s, enum qs_ctl_mode m, const char *path, uint32_t pct, json_t *resp,
	 char *msg, size_t msglen)
{
	if (!s->ops->load_policy)
		return UNSUPPORTED;
	return then_policy(s, s->ops->load_policy(s->ctx, m, path, pct, msg, msglen), resp, msg,
			   msglen);
}

/* "policy", "window" and "total": the policy.shadow answer, and what /metrics renders. */
static int
cmd_shadow(struct qs_ctl_server *s, uint32_t top, json_t *resp, char *msg, size_t msglen)
{
	struct qs_ctl_shadow *sh;
	json_t *tot, *win = NULL;
	int rc;

	if (!s->ops->get_shadow)
		return UNSUPPORTED;
	sh = calloc(1, sizeof(*sh)); /* two 34 KiB reports: the heap, not the stack */
	if (!sh) {
		snprintf(msg, msglen, "out of memory");
		return QS_E_NOMEM;
	}
	rc = s->ops->get_shadow(s->ctx, sh, msg, msglen);
	if (rc == QS_OK && !sh->cfg) {
		snprintf(msg, msglen, "the daemon gave no configuration");
		rc = QS_E_ARG;
	}
	if (rc == QS_OK && s->ops->get_policy)
		rc = add_policy(s, resp, msg, msglen);
	if (rc == QS_OK) {
		/* JSON null where a report could not be encoded (out of memory) */
		if (sh->running)
			win = qs_dp_shadow_obj(&sh->window, sh->cfg, top);
		tot = qs_dp_shadow_obj(&sh->total, sh->cfg, top);
		json_object_set_new(resp, "window", win ? win : json_null());
		json_object_set_new(resp, "total", tot ? tot : json_null());
	}
	free(sh);
	return rc;
}

static int
cmd_drain(struct qs_ctl_server *s, bool drain, uint16_t id, json_t *resp, char *msg, size_t msglen)
{
	(void)resp;
	if (!s->ops->set_drain)
		return UNSUPPORTED;
	return s->ops->set_drain(s->ctx, id, drain, msg, msglen);
}

/* ---- requests: validation, then the command ---------------------------------- */

typedef int (*plain_cmd)(struct qs_ctl_server *s, json_t *resp, char *msg, size_t msglen);

/* The answer to cmd: resp on QS_OK (with msg as "message"), else an error. */
static json_t *
answer(const char *cmd, int rc, json_t *resp, const char *msg)
{
	if (rc == UNSUPPORTED) {
		json_decref(resp);
		return unsupported(cmd);
	}
	return finish(rc, resp, msg);
}

static json_t *
dispatch(struct qs_ctl_server *s, const char *cmd, json_t *req)
{
	const struct qs_ctl_ops *ops = s->ops;
	static const struct {
		const char *name;
		plain_cmd run;
	} plain[] = {
	    {"status", cmd_status},
	    {"stats", cmd_stats},
	    {"backends", cmd_backends},
	    {"policy.show", cmd_policy_show},
	    {"policy.rollback", cmd_rollback},
	    {"shutdown", cmd_shutdown},
	};
	char msg[512] = "";
	json_t *resp = json_object();
	size_t i;
	int rc;

	json_object_set_new(resp, "ok", json_true());
	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		if (strcmp(cmd, plain[i].name) != 0)
			continue;
		rc = plain[i].run(s, resp, msg, sizeof(msg));
		if (rc == QS_OK && plain[i].run == cmd_shutdown)
			s->quit = true;
		return answer(cmd, rc, resp, msg);
	}
	if (strcmp(cmd, "policy.load") == 0) {
		json_t *jp = json_object_get(req, "path"), *jm = json_object_get(req, "mode");
		json_t *jpct = json_object_get(req, "pct");
		const char *path = json_string_value(jp), *mode = json_string_value(jm);
		enum qs_ctl_mode m = QS_CTL_MODE_ACTIVE;
		uint32_t pct = 0;

		if (!ops->load_policy) {
			json_decref(resp);
			return unsupported(cmd);
		}
		if (!path || !path[0]) {
			json_decref(resp);
			return err_obj(QS_E_ARG,
				       "policy.load needs \"path\": a .q8 file or builtin:NAME");
		}
		if (jm && !mode) {
			json_decref(resp);
			return err_obj(QS_E_ARG, "policy.load: \"mode\" must be a string");
		}
		if (!mode || strcmp(mode, "active") == 0) {
			m = QS_CTL_MODE_ACTIVE;
		} else if (strcmp(mode, "shadow") == 0) {
			m = QS_CTL_MODE_SHADOW;
		} else if (strcmp(mode, "canary") == 0) {
			m = QS_CTL_MODE_CANARY;
		} else {
			json_decref(resp);
			snprintf(msg, sizeof(msg),
				 "policy.load: unknown mode \"%s\" (active, shadow or canary)",
				 mode);
			return err_obj(QS_E_ARG, msg);
		}
		if (m == QS_CTL_MODE_CANARY) {
			if (!json_is_integer(jpct) || json_integer_value(jpct) < 0 ||
			    json_integer_value(jpct) > 100) {
				json_decref(resp);
				return err_obj(QS_E_ARG,
					       "policy.load mode canary needs \"pct\": an "
					       "integer 0..100");
			}
			pct = (uint32_t)json_integer_value(jpct);
		} else if (jpct) {
			json_decref(resp);
			return err_obj(QS_E_ARG, "policy.load: \"pct\" only goes with mode canary");
		}
		rc = cmd_load(s, m, path, pct, resp, msg, sizeof(msg));
		return answer(cmd, rc, resp, msg);
	}
	if (strcmp(cmd, "policy.shadow") == 0) {
		json_t *jt = json_object_get(req, "top");
		uint32_t top = 10;

		if (!ops->get_shadow) {
			json_decref(resp);
			return unsupported(cmd);
		}
		if (jt) {
			if (!json_is_integer(jt) || json_integer_value(jt) < 0 ||
			    json_integer_value(jt) > 4096) {
				json_decref(resp);
				return err_obj(QS_E_ARG,
					       "policy.shadow: \"top\" must be an integer "
					       "0..4096 (0: every disagreement pair)");
			}
			top = (uint32_t)json_integer_value(jt);
		}
		rc = cmd_shadow(s, top, resp, msg, sizeof(msg));
		return answer(cmd, rc, resp, msg);
	}
	if (strcmp(cmd, "backend.drain") == 0 || strcmp(cmd, "backend.undrain") == 0) {
		bool drain = strcmp(cmd, "backend.drain") == 0;
		json_t *id = json_object_get(req, "id");

		if (!ops->set_drain) {
			json_decref(resp);
			return unsupported(cmd);
		}
		if (!json_is_integer(id) || json_integer_value(id) < 0 ||
		    json_integer_value(id) > 0xffff) {
			json_decref(resp);
			snprintf(msg, sizeof(msg), "%s needs \"id\": a backend id 0..65535", cmd);
			return err_obj(QS_E_ARG, msg);
		}
		rc = cmd_drain(s, drain, (uint16_t)json_integer_value(id), resp, msg, sizeof(msg));
		return answer(cmd, rc, resp, msg);
	}
	if (ops->other) {
		rc = ops->other(s->ctx, cmd, req, resp, msg, sizeof(msg));
		return finish(rc, resp, msg);
	}
	json_decref(resp);
	snprintf(msg, sizeof(msg), "unknown command \"%.64s\"", cmd);
	return err_obj(QS_E_ARG, msg);
}

char *
qs_ctl_command(struct qs_ctl_server *s, const char *cmd)
{
	json_t *req = json_object(), *resp;
	char *out;

	resp = dispatch(s, cmd, req);
	json_decref(req);
	out = json_dumps(resp, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(resp);
	return out;
}

char *
qs_ctl_handle_line(struct qs_ctl_server *s, const char *line)
{
	json_error_t je;
	json_t *req = json_loads(line, 0, &je), *resp;
	const char *cmd;
	char msg[300];
	char *out;

	if (!req || !json_is_object(req)) {
		snprintf(msg, sizeof(msg), "bad request: %s", req ? "not a JSON object" : je.text);
		resp = err_obj(QS_E_ARG, msg);
	} else if (!(cmd = json_string_value(json_object_get(req, "cmd")))) {
		resp = err_obj(QS_E_ARG, "bad request: no \"cmd\" string");
	} else {
		resp = dispatch(s, cmd, req);
	}
	json_decref(req);
	out = json_dumps(resp, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(resp);
	return out;
}

/* ---- Prometheus ------------------------------------------------------------------ */

int
qs_ctl_prometheus_open(struct qs_ctl_server *s, const char *addr, const char *prefix, char *msg,
		       size_t msglen)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	char host[64];
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	char *end;
	long port;
	int one = 1;

	if (!s || !colon || (size_t)(colon - addr) >= sizeof(host)) {
		snprintf(msg, msglen, "prometheus address %s: want IPV4:PORT, e.g. 127.0.0.1:9464",
			 addr ? addr : "(none)");
		return QS_E_ARG;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = 0;
	port = strtol(colon + 1, &end, 10);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	if (*end || port < 0 || port > 65535 || inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
		snprintf(msg, msglen, "prometheus address %s: want IPV4:PORT, e.g. 127.0.0.1:9464",
			 addr);
		return QS_E_ARG;
	}
	if (prefix) {
		size_t i;

		for (i = 0; prefix[i]; i++)
			if (!(prefix[i] == '_' || (prefix[i] >= 'a' && prefix[i] <= 'z') ||
			      (prefix[i] >= 'A' && prefix[i] <= 'Z') ||
			      (i > 0 && prefix[i] >= '0' && prefix[i] <= '9')))
				break;
		if (!prefix[0] || prefix[i] || i >= sizeof(s->prefix)) {
			snprintf(msg, msglen, "prometheus prefix \"%s\" is not a metric name",
				 prefix);
			return QS_E_ARG;
		}
		snprintf(s->prefix, sizeof(s->prefix), "%s", prefix);
	}
	sin.sin_port = htons((uint16_t)port);
	if (s->hfd >= 0)
		close(s->hfd);
	s->hfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->hfd < 0) {
		snprintf(msg, msglen, "socket: %s", strerror(errno));
		return QS_E_IO;
	}
	setsockopt(s->hfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s->hfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(s->hfd, 8) != 0 ||
	    getsockname(s->hfd, (struct sockaddr *)&sin, &sl) != 0) {
		snprintf(msg, msglen, "prometheus %s: %s", addr, strerror(errno));
		close(s->hfd);
		s->hfd = -1;
		return QS_E_IO;
	}
	s->hport = ntohs(sin.sin_port);
	return QS_OK;
}

struct strbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void __attribute__((format(printf, 2, 3))) sb_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t nc = (b->cap + (size_t)n + 1) * 2;
			char *np = realloc(b->p, nc);

			if (!np) {
				b->oom = true;
				return;
			}
			b->p = np;
			b->cap = nc;
		}
	}
}

/* A metric-name fragment: [a-zA-Z0-9_], anything else becomes '_'. */
static void
sanitize(char *dst, size_t cap, const char *src)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < cap; i++) {
		char c = src[i];

		dst[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
			     ? c
			     : '_';
	}
	dst[i] = 0;
}

/* A label value with \ " and newline escaped (exposition format 0.0.4). */
static void
sb_label(struct strbuf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			sb_printf(b, "\\%c", *v);
		else if (*v == '\n')
			sb_printf(b, "\\n");
		else
			sb_printf(b, "%c", *v);
	}
}

static const char *
label_name(const char *obj)
{
	if (strcmp(obj, "drops") == 0)
		return "reason";
	if (strcmp(obj, "to_backend") == 0)
		return "backend";
	if (strcmp(obj, "tenant_requests") == 0 || strcmp(obj, "tenant_cancels") == 0)
		return "tenant";
	return "key";
}

/*
 * Per-backend gauges from the get_backends callback (docs/control.md "Prometheus"):
 * what the dataplane believes of each backend, in base units. A backend never
 * reported has no report age (absent, not 0).
 */
static const char *
jstr(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v ? v : "";
}

/* A metric family's HELP and TYPE lines. */
static void
prom_family(struct strbuf *b, const char *prefix, const char *metric, const char *type,
	    const char *help)
{
	sb_printf(b, "# HELP %s_%s %s\n# TYPE %s_%s %s\n", prefix, metric, help, prefix, metric,
		  type);
}

/* The start of a sample, prefix_metric{label="value" (escaped); the caller ends it. */
static void
prom_sample(struct strbuf *b, const char *prefix, const char *metric, const char *label,
	    const char *value)
{
	sb_printf(b, "%s_%s{%s=\"", prefix, metric, label);
	sb_label(b, value);
	sb_printf(b, "\"");
}

/* A counter family, one sample per element of arr: its backend name, its integer field. */
static void
prom_per_backend(struct strbuf *b, const char *prefix, const char *metric, const char *help,
		 json_t *arr, const char *field)
{
	json_t *o;
	size_t i;

	prom_family(b, prefix, metric, "counter", help);
	json_array_foreach(arr, i, o)
	{
		prom_sample(b, prefix, metric, "backend", jstr(o, "backend"));
		sb_printf(b, "} %" JSON_INTEGER_FORMAT "\n",
			  json_integer_value(json_object_get(o, field)));
	}
}

static void
prometheus_backends(struct qs_ctl_server *s, struct strbuf *b)
{
	static const struct {
		const char *field, *metric, *help;
	} g[] = {
	    {"waiting", "backend_waiting_requests", "Requests waiting, as last reported."},
	    {"running", "backend_running_requests", "Requests running, as last reported."},
	    {"kv_used", "backend_kv_used_blocks", "KV-cache blocks in use, as last reported."},
	    {"kv_total", "backend_kv_total_blocks", "KV-cache blocks in all, as last reported."},
	    {"report_age_ms", "backend_report_age_seconds", "Age of the last report believed."},
	    {"masked", "backend_masked",
	     "1 when no new request may go to it (stale, "
	     "draining or drained)."},
	};
	char msg[512] = "";
	json_t *resp = json_object(), *arr, *o;
	size_t i, k;

	if (cmd_backends(s, resp, msg, sizeof(msg)) != QS_OK ||
	    !json_is_array(arr = json_object_get(resp, "backends"))) {
		json_decref(resp);
		return;
	}
	for (k = 0; k < sizeof(g) / sizeof(g[0]); k++) {
		prom_family(b, s->prefix, g[k].metric, "gauge", g[k].help);
		json_array_foreach(arr, i, o)
		{
			const char *name = json_string_value(json_object_get(o, "name"));
			json_t *v = json_object_get(o, g[k].field);

			if (!name)
				continue;
			if (strcmp(g[k].field, "masked") == 0) {
				bool m = !json_is_true(json_object_get(o, "fresh")) ||
					 json_is_true(json_object_get(o, "draining")) ||
					 json_is_true(json_object_get(o, "drained"));

				prom_sample(b, s->prefix, g[k].metric, "backend", name);
				sb_printf(b, "} %d\n", m ? 1 : 0);
				continue;
			}
			if (!json_is_integer(v))
				continue;
			prom_sample(b, s->prefix, g[k].metric, "backend", name);
			if (strcmp(g[k].field, "report_age_ms") == 0)
				sb_printf(b, "} %.3f\n", (double)json_integer_value(v) / 1000.0);
			else
				sb_printf(b, "} %" JSON_INTEGER_FORMAT "\n", json_integer_value(v));
		}
	}
	json_decref(resp);
}

/*
 * The shadow metrics (docs/control.md "Prometheus"): counters from the report since
 * start ("total"), and the agreement ratio of the running shadow policy since it
 * was loaded ("window"; absent while none runs or before its first scored request).
 */
static void
prometheus_shadow(struct qs_ctl_server *s, struct strbuf *b)
{
	char msg[512] = "";
	json_t *resp = json_object(), *tot, *win, *arr, *o, *ppm;
	size_t i;

	if (cmd_shadow(s, 0, resp, msg, sizeof(msg)) != QS_OK ||
	    !json_is_object(tot = json_object_get(resp, "total"))) {
		json_decref(resp);
		return;
	}
	win = json_object_get(resp, "window");
	prom_family(b, s->prefix, "shadow_agreement_ratio", "gauge",
		    "Share of the requests the shadow policy scored since it was loaded on which "
		    "it chose the active policy's backend.");
	if (json_is_object(win) && json_is_integer(ppm = json_object_get(win, "agreement_ppm")))
		sb_printf(b, "%s_shadow_agreement_ratio %.6f\n", s->prefix,
			  (double)json_integer_value(ppm) / 1e6);
	arr = json_object_get(tot, "per_backend");
	prom_per_backend(b, s->prefix, "backend_shadow_active_send_total",
			 "Shadow-scored requests the active policy sent to the backend.", arr,
			 "active");
	prom_per_backend(b, s->prefix, "backend_shadow_would_send_total",
			 "Shadow-scored requests the shadow policy would have sent to the backend.",
			 arr, "shadow");
	prom_family(b, s->prefix, "shadow_disagreements_total", "counter",
		    "Shadow-scored requests by the active policy's backend and the shadow's other "
		    "choice.");
	json_array_foreach(json_object_get(tot, "disagreements"), i, o)
	{
		prom_sample(b, s->prefix, "shadow_disagreements_total", "active",
			    jstr(o, "active"));
		sb_printf(b, ",shadow=\"");
		sb_label(b, jstr(o, "shadow"));
		sb_printf(b, "\"} %" JSON_INTEGER_FORMAT "\n",
			  json_integer_value(json_object_get(o, "count")));
	}
	json_decref(resp);
}

char *
qs_ctl_prometheus_text(struct qs_ctl_server *s)
{
	struct strbuf b = {NULL, 0, 0, false};
	char msg[512] = "";
	json_t *resp, *c, *v;
	const char *k;

	resp = json_object();
	if (cmd_stats(s, resp, msg, sizeof(msg)) != QS_OK ||
	    !json_is_object(c = json_object_get(resp, "counters"))) {
		json_decref(resp);
		return NULL;
	}
	b.cap = 4096;
	b.p = malloc(b.cap);
	if (!b.p) {
		json_decref(resp);
		return NULL;
	}
	b.p[0] = 0;
	sb_printf(&b, "# HELP %s_up The daemon answers.\n# TYPE %s_up gauge\n%s_up 1\n", s->prefix,
		  s->prefix, s->prefix);
	json_object_foreach(c, k, v)
	{
		char name[96];

		sanitize(name, sizeof(name), k);
		if (json_is_integer(v)) {
			sb_printf(&b,
				  "# TYPE %s_%s_total counter\n%s_%s_total %" JSON_INTEGER_FORMAT
				  "\n",
				  s->prefix, name, s->prefix, name, json_integer_value(v));
		} else if (json_is_object(v)) {
			const char *k2;
			json_t *v2;

			sb_printf(&b, "# TYPE %s_%s_total counter\n", s->prefix, name);
			json_object_foreach(v, k2, v2)
			{
				if (!json_is_integer(v2))
					continue;
				sb_printf(&b, "%s_%s_total{%s=\"", s->prefix, name, label_name(k));
				sb_label(&b, k2);
				sb_printf(&b, "\"} %" JSON_INTEGER_FORMAT "\n",
					  json_integer_value(v2));
			}
		}
	}
	json_decref(resp);
	if (s->ops->get_backends)
		prometheus_backends(s, &b);
	if (s->ops->get_shadow)
		prometheus_shadow(s, &b);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* ---- socket I/O: one poll loop, every client its own buffers and deadline ---- */

static void
client_drop(struct ctl_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Queue bytes for the client; false (and the client closing) if out of memory. */
static bool
client_queue(struct ctl_client *c, const char *p, size_t len)
{
	char *n;

	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	n = realloc(c->out, c->out_len + len);
	if (!n) {
		c->closing = true;
		return false;
	}
	memcpy(n + c->out_len, p, len);
	c->out = n;
	c->out_len += len;
	return true;
}

/* Write what the socket takes now. false: the client is gone. */
static bool
client_flush(struct qs_ctl_server *s, struct ctl_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (w <= 0)
			return false;
		c->out_off += (size_t)w;
		c->last_ms = qs_mono_ms(); /* after the answer was made, however long it took */
		c->touched = ++s->tick;
	}
	return true;
}

/* The Prometheus answer for a complete request head in c->in. */
static void
http_answer(struct qs_ctl_server *s, struct ctl_client *c)
{
	const char *req = c->in;
	char head[256];
	char *body = NULL;
	const char *status = "200 OK";

	if (strncmp(req, "GET /metrics ", 13) == 0 || strncmp(req, "GET /metrics?", 13) == 0 ||
	    strncmp(req, "GET /metrics\r", 13) == 0) {
		body = qs_ctl_prometheus_text(s);
		if (!body)
			status = "503 Service Unavailable";
	} else if (strncmp(req, "GET ", 4) == 0) {
		status = "404 Not Found";
	} else {
		status = "405 Method Not Allowed";
	}
	if (!body) {
		body = malloc(64);
		if (!body) {
			c->closing = true;
			return;
		}
		snprintf(body, 64, "%s\n", status);
	}
	snprintf(head, sizeof(head),
		 "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		 status, strlen(body));
	if (client_queue(c, head, strlen(head)))
		client_queue(c, body, strlen(body));
	free(body);
	c->closing = true; /* one exchange per connection */
}

/* Answer every complete line in c->in. Returns the number answered. */
static int
ctl_answer_lines(struct qs_ctl_server *s, struct ctl_client *c)
{
	char *nl;
	int n = 0;

	while (!c->closing && (nl = memchr(c->in, '\n', c->have)) != NULL) {
		char *out;

		*nl = 0;
		out = qs_ctl_handle_line(s, c->in);
		n++;
		if (!out || !client_queue(c, out, strlen(out)) || !client_queue(c, "\n", 1))
			c->closing = true;
		free(out);
		c->have -= (size_t)(nl + 1 - c->in);
		memmove(c->in, nl + 1, c->have);
	}
	if (!c->closing && c->have == QS_CTL_MAX_LINE) {
		/* a line longer than any request: say so, drop the client */
		static const char e[] = "{\"ok\":false,\"status\":\"size\",\"error\":"
					"\"request line too long\"}\n";

		client_queue(c, e, sizeof(e) - 1);
		c->closing = true;
	}
	return n;
}

/*
 * Read what the client sent and answer it. A client with answers still unwritten
 * is not read from (it is not reading either), so its buffers stay bounded.
 * Returns requests answered; sets closing on EOF or error.
 */
static int
client_read(struct qs_ctl_server *s, struct ctl_client *c, bool *drained)
{
	size_t cap = c->http ? HTTP_MAX_REQ : QS_CTL_MAX_LINE;
	int n = 0;

	while (!c->closing && c->out_off == c->out_len && c->have < cap) {
		ssize_t r = recv(c->fd, c->in + c->have, cap - c->have, MSG_DONTWAIT);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			*drained = true;
			break;
		}
		if (r <= 0) {
			c->closing = true; /* EOF: answer what came, then close */
			break;
		}
		c->have += (size_t)r;
		c->in[c->have] = 0;
		c->last_ms = qs_mono_ms();
		c->touched = ++s->tick;
		if (c->http) {
			if (strstr(c->in, "\r\n\r\n") || strstr(c->in, "\n\n") || c->have == cap) {
				http_answer(s, c);
				n++;
			}
		} else {
			n += ctl_answer_lines(s, c);
		}
	}
	return n;
}

/*
 * Read, answer and write for one client until it would block either way, it is
 * done, or it is gone (then its slot is freed). Returns requests answered.
 */
static int
client_progress(struct qs_ctl_server *s, struct ctl_client *c)
{
	int n = 0, rounds;

	/* each round either drains the socket, fills the answer buffer or ends the
	 * client; the bound only guards against a client that never stops sending */
	for (rounds = 0; rounds < 64; rounds++) {
		bool drained = false;

		n += client_read(s, c, &drained);
		if (!client_flush(s, c)) {
			client_drop(c);
			return n;
		}
		if (c->out_off < c->out_len)
			return n; /* the client reads slower than it asks: wait for POLLOUT */
		if (c->closing) {
			client_drop(c);
			return n;
		}
		if (drained)
			return n;
	}
	return n;
}

/* Take a connection into the table, evicting the client idle the longest if full. */
static void
client_accept(struct qs_ctl_server *s, int fd, bool http, uint64_t now)
{
	struct ctl_client *c = NULL;
	int i;

	for (i = 0; i < QS_CTL_MAX_CLIENTS && !c; i++)
		if (s->cl[i].fd < 0)
			c = &s->cl[i];
	if (!c) {
		c = &s->cl[0];
		for (i = 1; i < QS_CTL_MAX_CLIENTS; i++)
			if (s->cl[i].touched < c->touched)
				c = &s->cl[i];
		client_drop(c);
	}
	c->in = malloc((http ? HTTP_MAX_REQ : QS_CTL_MAX_LINE) + 1);
	if (!c->in) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->http = http;
	c->last_ms = now;
	c->touched = ++s->tick;
}

int
qs_ctl_poll(struct qs_ctl_server *s, int timeout_ms)
{
	struct pollfd p[2 + QS_CTL_MAX_CLIENTS];
	int idx[2 + QS_CTL_MAX_CLIENTS]; /* client slot per pollfd, -1 listener */
	int np = 0, n = 0, fd, i, wait = timeout_ms;
	uint64_t now = qs_mono_ms();

	if (!s)
		return 0;
	if (s->lfd >= 0) {
		idx[np] = -1;
		p[np++] = (struct pollfd){s->lfd, POLLIN, 0};
	}
	if (s->hfd >= 0) {
		idx[np] = -1;
		p[np++] = (struct pollfd){s->hfd, POLLIN, 0};
	}
	for (i = 0; i < QS_CTL_MAX_CLIENTS; i++) {
		struct ctl_client *c = &s->cl[i];
		uint64_t left;

		if (c->fd < 0)
			continue;
		left = c->last_ms + CLIENT_IDLE_MS > now ? c->last_ms + CLIENT_IDLE_MS - now : 0;
		if (wait < 0 || (uint64_t)wait > left)
			wait = (int)left; /* wake for the earliest idle deadline */
		idx[np] = i;
		p[np++] = (struct pollfd){c->fd, c->out_off < c->out_len ? POLLOUT : POLLIN, 0};
	}
	if (np == 0) {
		if (timeout_ms > 0)
			poll(NULL, 0, timeout_ms);
		return 0;
	}
	if (poll(p, (nfds_t)np, wait) < 0)
		return 0;
	now = qs_mono_ms();
	for (i = 0; i < np; i++) {
		if (idx[i] >= 0 || !(p[i].revents & POLLIN))
			continue;
		while ((fd = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
			int k;

			client_accept(s, fd, p[i].fd == s->hfd, now);
			/* serve at once what already arrived: most clients write, then wait */
			for (k = 0; k < QS_CTL_MAX_CLIENTS && s->cl[k].fd != fd; k++)
				;
			if (k == QS_CTL_MAX_CLIENTS)
				continue;
			n += client_progress(s, &s->cl[k]);
		}
	}
	for (i = 0; i < np; i++) {
		struct ctl_client *c;

		if (idx[i] < 0)
			continue;
		c = &s->cl[idx[i]];
		if (c->fd != p[i].fd)
			continue; /* evicted above, slot reused */
		if (p[i].revents)
			n += client_progress(s, c);
		/* a fresh clock: answering others (a policy load waits for an RCU grace
		 * period) must not count against this client's idle allowance */
		if (c->fd >= 0 && qs_mono_ms() - c->last_ms >= CLIENT_IDLE_MS)
			client_drop(c); /* no progress for the idle allowance */
	}
	return n;
}
