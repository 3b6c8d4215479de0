/*
 * ctl_server.c - the control server of include/qsteer/ctl.h, shared by qsteer-dp
 * and qsteer-xdp: JSON lines on a 0600 unix stream socket, request validation and
 * dispatch to the daemon's callbacks, and a Prometheus text endpoint rendered from
 * the stats callback. No DPDK, no threads: everything runs inside qs_ctl_poll on
 * the daemon's control thread.
 *
 * Clients are served one at a time with short timeouts (1 s idle per client,
 * 1 s per write), so a stuck client delays only the control plane. Writes use
 * MSG_NOSIGNAL: a client that hangs up early never kills the daemon with SIGPIPE.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "qsteer/ctl.h"

#define CLIENT_IDLE_MS 1000
#define HTTP_MAX_REQ 4096

struct qs_ctl_server {
	int lfd;   /* unix listener, -1 none */
	int hfd;   /* Prometheus TCP listener, -1 none */
	uint16_t hport;
	bool quit;
	const struct qs_ctl_ops *ops;
	void *ctx;
	char path[108];
	char prefix[64];
};

const char *
qs_ctl_mode_name(enum qs_ctl_mode m)
{
	switch (m) {
	case QS_CTL_MODE_ACTIVE: return "active";
	case QS_CTL_MODE_SHADOW: return "shadow";
	case QS_CTL_MODE_CANARY: return "canary";
	}
	return "?";
}

struct qs_ctl_server *
qs_ctl_open(const char *path, const struct qs_ctl_ops *ops, void *ctx, char *msg,
	    size_t msglen)
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
	s->lfd = s->hfd = -1;
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
	unlink(path); /* a stale socket of a previous run */
	old = umask(0177); /* created 0600: only the owner (or root) may steer traffic */
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(s->lfd, 8) != 0) {
		umask(old);
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		close(s->lfd);
		free(s);
		return NULL;
	}
	umask(old);
	if (chmod(path, 0600) != 0) {
		snprintf(msg, msglen, "%s: chmod: %s", path, strerror(errno));
		close(s->lfd);
		unlink(path);
		free(s);
		return NULL;
	}
	snprintf(s->path, sizeof(s->path), "%s", path);
	return s;
}

void
qs_ctl_close(struct qs_ctl_server *s)
{
	if (!s)
		return;
	if (s->lfd >= 0) {
		close(s->lfd);
		unlink(s->path);
	}
	if (s->hfd >= 0)
		close(s->hfd);
	free(s);
}

int
qs_ctl_fd(const struct qs_ctl_server *s)
{
	return s ? s->lfd : -1;
}

int
qs_ctl_prometheus_fd(const struct qs_ctl_server *s)
{
	return s ? s->hfd : -1;
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

typedef int (*plain_cb)(void *ctx, json_t *resp, char *msg, size_t msglen);

static json_t *
dispatch(struct qs_ctl_server *s, const char *cmd, json_t *req)
{
	const struct qs_ctl_ops *ops = s->ops;
	const struct {
		const char *name;
		plain_cb cb;
	} plain[] = {
		{"status", ops->status},	   {"stats", ops->stats},
		{"backends", ops->backends},	   {"policy.show", ops->policy_show},
		{"policy.rollback", ops->rollback}, {"shutdown", ops->shutdown},
	};
	char msg[512] = "";
	json_t *resp = json_object();
	size_t i;
	int rc;

	json_object_set_new(resp, "ok", json_true());
	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		plain_cb cb = plain[i].cb;

		if (strcmp(cmd, plain[i].name) != 0)
			continue;
		if (!cb) {
			json_decref(resp);
			return unsupported(cmd);
		}
		rc = cb(s->ctx, resp, msg, sizeof(msg));
		if (rc == QS_OK && strcmp(cmd, "shutdown") == 0)
			s->quit = true;
		return finish(rc, resp, msg);
	}
	if (strcmp(cmd, "policy.load") == 0) {
		json_t *jp = json_object_get(req, "path"), *jm = json_object_get(req, "mode");
		json_t *jpct = json_object_get(req, "pct");
		const char *path = json_string_value(jp), *mode = json_string_value(jm);
		enum qs_ctl_mode m = QS_CTL_MODE_ACTIVE;
		uint32_t pct = 0;

		if (!ops->policy_load) {
			json_decref(resp);
			return unsupported(cmd);
		}
		if (!path || !path[0]) {
			json_decref(resp);
			return err_obj(QS_E_ARG, "policy.load needs \"path\": a .q8 file or builtin:NAME");
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
				 "policy.load: unknown mode \"%s\" (active, shadow or canary)", mode);
			return err_obj(QS_E_ARG, msg);
		}
		if (m == QS_CTL_MODE_CANARY) {
			if (!json_is_integer(jpct) || json_integer_value(jpct) < 0 ||
			    json_integer_value(jpct) > 100) {
				json_decref(resp);
				return err_obj(QS_E_ARG, "policy.load mode canary needs \"pct\": an "
							 "integer 0..100");
			}
			pct = (uint32_t)json_integer_value(jpct);
		} else if (jpct) {
			json_decref(resp);
			return err_obj(QS_E_ARG, "policy.load: \"pct\" only goes with mode canary");
		}
		rc = ops->policy_load(s->ctx, m, path, pct, resp, msg, sizeof(msg));
		return finish(rc, resp, msg);
	}
	if (strcmp(cmd, "backend.drain") == 0 || strcmp(cmd, "backend.undrain") == 0) {
		bool drain = strcmp(cmd, "backend.drain") == 0;
		json_t *id = json_object_get(req, "id");
		int (*cb)(void *, uint16_t, json_t *, char *, size_t) =
			drain ? ops->drain : ops->undrain;

		if (!cb) {
			json_decref(resp);
			return unsupported(cmd);
		}
		if (!json_is_integer(id) || json_integer_value(id) < 0 ||
		    json_integer_value(id) > 0xffff) {
			json_decref(resp);
			snprintf(msg, sizeof(msg), "%s needs \"id\": a backend id 0..65535", cmd);
			return err_obj(QS_E_ARG, msg);
		}
		rc = cb(s->ctx, (uint16_t)json_integer_value(id), resp, msg, sizeof(msg));
		return finish(rc, resp, msg);
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
qs_ctl_handle_line(struct qs_ctl_server *s, const char *line)
{
	json_error_t je;
	json_t *req = json_loads(line, 0, &je), *resp;
	const char *cmd;
	char msg[300];
	char *out;

	if (!req || !json_is_object(req)) {
		snprintf(msg, sizeof(msg), "bad request: %s",
			 req ? "not a JSON object" : je.text);
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

/* ---- socket I/O ----------------------------------------------------------------- */

static bool
send_all(int fd, const char *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		struct pollfd pf = {fd, POLLOUT, 0};
		ssize_t w;

		if (poll(&pf, 1, CLIENT_IDLE_MS) <= 0)
			return false;
		w = send(fd, p + off, len - off, MSG_NOSIGNAL);
		if (w <= 0)
			return false;
		off += (size_t)w;
	}
	return true;
}

/* Serve one client until it hangs up, idles, or misbehaves. Returns requests answered. */
static int
serve(struct qs_ctl_server *s, int fd)
{
	char *buf = malloc(QS_CTL_MAX_LINE + 1);
	size_t have = 0;
	int n = 0;

	if (!buf)
		return 0;
	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		char *nl;
		ssize_t r;

		if (poll(&p, 1, CLIENT_IDLE_MS) <= 0)
			break;
		r = read(fd, buf + have, QS_CTL_MAX_LINE - have);
		if (r <= 0)
			break;
		have += (size_t)r;
		buf[have] = 0;
		while ((nl = memchr(buf, '\n', have)) != NULL) {
			char *out;
			bool ok;

			*nl = 0;
			out = qs_ctl_handle_line(s, buf);
			n++;
			ok = out && send_all(fd, out, strlen(out)) && send_all(fd, "\n", 1);
			free(out);
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have);
			if (!ok)
				goto done;
		}
		if (have == QS_CTL_MAX_LINE) {
			/* a line longer than any request: say so, drop the client */
			static const char e[] = "{\"ok\":false,\"status\":\"size\",\"error\":"
						"\"request line too long\"}\n";

			send_all(fd, e, sizeof(e) - 1);
			break;
		}
	}
done:
	free(buf);
	return n;
}

/* ---- Prometheus ------------------------------------------------------------------ */

int
qs_ctl_prometheus_open(struct qs_ctl_server *s, const char *addr, const char *prefix,
		       char *msg, size_t msglen)
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
			snprintf(msg, msglen, "prometheus prefix \"%s\" is not a metric name", prefix);
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

static void __attribute__((format(printf, 2, 3)))
sb_printf(struct strbuf *b, const char *fmt, ...)
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
	return "key";
}

char *
qs_ctl_prometheus_text(struct qs_ctl_server *s)
{
	struct strbuf b = {NULL, 0, 0, false};
	char msg[256] = "";
	json_t *resp, *c, *v;
	const char *k;

	if (!s->ops->stats)
		return NULL;
	resp = json_object();
	if (s->ops->stats(s->ctx, resp, msg, sizeof(msg)) != QS_OK ||
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
	json_object_foreach(c, k, v) {
		char name[96];

		sanitize(name, sizeof(name), k);
		if (json_is_integer(v)) {
			sb_printf(&b, "# TYPE %s_%s_total counter\n%s_%s_total %" JSON_INTEGER_FORMAT "\n",
				  s->prefix, name, s->prefix, name, json_integer_value(v));
		} else if (json_is_object(v)) {
			const char *k2;
			json_t *v2;

			sb_printf(&b, "# TYPE %s_%s_total counter\n", s->prefix, name);
			json_object_foreach(v, k2, v2) {
				if (!json_is_integer(v2))
					continue;
				sb_printf(&b, "%s_%s_total{%s=\"", s->prefix, name, label_name(k));
				sb_label(&b, k2);
				sb_printf(&b, "\"} %" JSON_INTEGER_FORMAT "\n", json_integer_value(v2));
			}
		}
	}
	json_decref(resp);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* One HTTP/1.0-style exchange: read the request head, answer, close. */
static void
serve_http(struct qs_ctl_server *s, int fd)
{
	char req[HTTP_MAX_REQ + 1];
	size_t have = 0;
	char head[256];
	char *body = NULL;
	const char *status = "200 OK";

	while (have < HTTP_MAX_REQ) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t r;

		if (poll(&p, 1, CLIENT_IDLE_MS) <= 0)
			return;
		r = read(fd, req + have, HTTP_MAX_REQ - have);
		if (r <= 0)
			return;
		have += (size_t)r;
		req[have] = 0;
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[have] = 0;
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
		if (!body)
			return;
		snprintf(body, 64, "%s\n", status);
	}
	snprintf(head, sizeof(head),
		 "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		 status, strlen(body));
	if (send_all(fd, head, strlen(head)))
		send_all(fd, body, strlen(body));
	free(body);
}

int
qs_ctl_poll(struct qs_ctl_server *s, int timeout_ms)
{
	struct pollfd p[2];
	int np = 0, n = 0, fd, i;

	if (!s)
		return 0;
	if (s->lfd >= 0)
		p[np++] = (struct pollfd){s->lfd, POLLIN, 0};
	if (s->hfd >= 0)
		p[np++] = (struct pollfd){s->hfd, POLLIN, 0};
	if (np == 0) {
		if (timeout_ms > 0)
			poll(NULL, 0, timeout_ms);
		return 0;
	}
	if (poll(p, (nfds_t)np, timeout_ms) <= 0)
		return 0;
	for (i = 0; i < np; i++) {
		if (!(p[i].revents & POLLIN))
			continue;
		while ((fd = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
			if (p[i].fd == s->lfd) {
				n += serve(s, fd);
			} else {
				serve_http(s, fd);
				n++;
			}
			close(fd);
		}
	}
	return n;
}
