/*
 * test_ctl.c - the shared control server (include/qsteer/ctl.h) without DPDK: request
 * validation and dispatch with a fake daemon's callbacks, the 0600 unix socket end
 * to end (single-threaded: the client writes and half-closes before the server
 * polls), and the Prometheus endpoint's text.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "qs_test.h"

#include "qsteer/ctl.h"
#include "qsteer/dp_core.h"

struct fake {
	struct qs_dp_config cfg; /* the backend names of to_backend */
	int loads, drains, undrains, shutdowns;
	enum qs_ctl_mode mode;
	uint32_t pct;
	uint16_t id;
	char path[256];
};

/* a backend name that needs escaping in a Prometheus label */
static void
fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	qs_dp_config_defaults(&f->cfg);
	f->cfg.n_backends = 2;
	snprintf(f->cfg.be[0].name, sizeof(f->cfg.be[0].name), "gpu\"0");
	snprintf(f->cfg.be[1].name, sizeof(f->cfg.be[1].name), "gpu1");
}

static int
f_counters(void *ctx, struct qs_ctl_counters *out, char *msg, size_t msglen)
{
	struct fake *f = ctx;

	(void)msg;
	(void)msglen;
	out->cfg = &f->cfg;
	out->sum.rx = 42;
	out->sum.tx = 40;
	out->sum.drop[QS_DP_D_IP_CSUM] = 2;
	out->sum.to_backend[0] = 7;
	return QS_OK;
}

static int
f_backends(void *ctx, struct qs_ctl_backends *out, char *msg, size_t msglen)
{
	struct fake *f = ctx;

	(void)msg;
	(void)msglen;
	out->n = 2;
	/* backend 1 a 4-bit variant below SLO class 2's floor on difficulties 2 and 3 */
	snprintf(f->cfg.be[1].variant, sizeof(f->cfg.be[1].variant), "w4");
	f->cfg.quality_masked[2][2] = f->cfg.quality_masked[2][3] = 2;
	qs_ctl_backend_config(&f->cfg, 0, &out->be[0]);
	qs_ctl_backend_config(&f->cfg, 1, &out->be[1]);
	snprintf(out->be[0].name, sizeof(out->be[0].name), "gpu0");
	out->be[0].reported = true;
	out->be[0].fresh = true;
	out->be[0].waiting = 3;
	out->be[0].kv_used = 100;
	out->be[0].has_report_age = true;
	out->be[0].report_age_ms = 4;
	snprintf(out->be[1].name, sizeof(out->be[1].name), "gpu1"); /* never reported */
	return QS_OK;
}

static int
f_load(void *ctx, enum qs_ctl_mode mode, const char *path, uint32_t pct, char *msg, size_t msglen)
{
	struct fake *f = ctx;

	if (strstr(path, "bad")) {
		snprintf(msg, msglen, "%s: truncated", path);
		return QS_E_TRUNCATED;
	}
	f->loads++;
	f->mode = mode;
	f->pct = pct;
	snprintf(f->path, sizeof(f->path), "%s", path);
	snprintf(msg, msglen, "%s loaded as %s", path, qs_ctl_mode_name(mode));
	return QS_OK;
}

static int
f_drain(void *ctx, uint16_t id, bool drain, char *msg, size_t msglen)
{
	struct fake *f = ctx;

	(void)msg;
	(void)msglen;
	if (drain)
		f->drains++;
	else
		f->undrains++;
	f->id = id;
	return QS_OK;
}

static int
f_stop(void *ctx, char *msg, size_t msglen)
{
	struct fake *f = ctx;

	(void)msg;
	(void)msglen;
	f->shutdowns++;
	return QS_OK;
}

static int
f_other(void *ctx, const char *cmd, json_t *req, json_t *resp, char *msg, size_t msglen)
{
	(void)ctx;
	if (strcmp(cmd, "xdp.maps") == 0) {
		json_t *x = json_object_get(req, "x");

		json_object_set(resp, "echo", x ? x : json_null());
		return QS_OK;
	}
	snprintf(msg, msglen, "unknown command \"%s\"", cmd);
	return QS_E_ARG;
}

/* no get_status, get_policy, roll_back, get_shadow: answered "unsupported" */
static const struct qs_ctl_ops fake_ops = {
    .get_counters = f_counters,
    .get_backends = f_backends,
    .load_policy = f_load,
    .set_drain = f_drain,
    .stop = f_stop,
    .other = f_other,
};

static json_t *
ask(struct qs_ctl_server *s, const char *line)
{
	char *out = qs_ctl_handle_line(s, line);
	json_t *j;

	assert_non_null(out);
	assert_null(strchr(out, '\n'));
	j = json_loads(out, 0, NULL);
	assert_non_null(j);
	free(out);
	return j;
}

static void
expect_err(struct qs_ctl_server *s, const char *line, const char *status, const char *words)
{
	json_t *j = ask(s, line);

	assert_true(json_is_false(json_object_get(j, "ok")));
	assert_string_equal(json_string_value(json_object_get(j, "status")), status);
	if (!strstr(json_string_value(json_object_get(j, "error")), words))
		fail_msg("%s -> error \"%s\", expected it to say \"%s\"", line,
			 json_string_value(json_object_get(j, "error")), words);
	json_decref(j);
}

static void
test_validation(void **state)
{
	struct fake f;
	char msg[128];
	struct qs_ctl_server *s;

	(void)state;
	fake_init(&f);
	s = qs_ctl_open(NULL, &fake_ops, &f, msg, sizeof(msg));
	assert_non_null(s);
	expect_err(s, "{", "bad-argument", "bad request");
	expect_err(s, "[1,2]", "bad-argument", "not a JSON object");
	expect_err(s, "{\"x\":1}", "bad-argument", "no \"cmd\"");
	expect_err(s, "{\"cmd\":7}", "bad-argument", "no \"cmd\"");
	expect_err(s, "{\"cmd\":\"frobnicate\"}", "bad-argument", "unknown command \"frobnicate\"");
	expect_err(s, "{\"cmd\":\"status\"}", "unsupported", "status is not supported");
	expect_err(s, "{\"cmd\":\"policy.rollback\"}", "unsupported", "not supported");
	expect_err(s, "{\"cmd\":\"policy.shadow\"}", "unsupported", "not supported");
	expect_err(s, "{\"cmd\":\"policy.load\"}", "bad-argument", "needs \"path\"");
	expect_err(s, "{\"cmd\":\"policy.load\",\"path\":\"\"}", "bad-argument", "needs \"path\"");
	expect_err(s, "{\"cmd\":\"policy.load\",\"path\":\"a\",\"mode\":\"warp\"}", "bad-argument",
		   "unknown mode \"warp\"");
	expect_err(s, "{\"cmd\":\"policy.load\",\"path\":\"a\",\"mode\":3}", "bad-argument",
		   "must be a string");
	expect_err(s, "{\"cmd\":\"policy.load\",\"path\":\"a\",\"mode\":\"canary\"}",
		   "bad-argument", "integer 0..100");
	expect_err(s, "{\"cmd\":\"policy.load\",\"path\":\"a\",\"mode\":\"canary\",\"pct\":101}",
		   "bad-argument", "integer 0..100");
	expect_err(s, "{\"cmd\":\"policy.load\",\"path\":\"a\",\"mode\":\"canary\",\"pct\":\"5\"}",
		   "bad-argument", "integer 0..100");
	expect_err(s, "{\"cmd\":\"policy.load\",\"path\":\"a\",\"pct\":5}", "bad-argument",
		   "only goes with mode canary");
	expect_err(s, "{\"cmd\":\"backend.drain\"}", "bad-argument", "backend id 0..65535");
	expect_err(s, "{\"cmd\":\"backend.drain\",\"id\":65536}", "bad-argument", "0..65535");
	expect_err(s, "{\"cmd\":\"backend.drain\",\"id\":-1}", "bad-argument", "0..65535");
	expect_err(s, "{\"cmd\":\"backend.drain\",\"id\":\"3\"}", "bad-argument", "0..65535");
	assert_int_equal(f.loads, 0);
	assert_int_equal(f.drains, 0);
	/* the daemon's refusal comes back with its status and reason */
	expect_err(s, "{\"cmd\":\"policy.load\",\"path\":\"/x/bad.q8\"}", "truncated",
		   "/x/bad.q8: truncated");
	qs_ctl_close(s);
}

static void
test_dispatch(void **state)
{
	struct fake f;
	char msg[128];
	struct qs_ctl_server *s;
	json_t *j;

	(void)state;
	fake_init(&f);
	s = qs_ctl_open(NULL, &fake_ops, &f, msg, sizeof(msg));
	assert_non_null(s);
	j = ask(s, "{\"cmd\":\"policy.load\",\"path\":\"/p/a.q8\",\"mode\":\"canary\",\"pct\":25}");
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_string_equal(json_string_value(json_object_get(j, "message")),
			    "/p/a.q8 loaded as canary");
	json_decref(j);
	assert_int_equal(f.loads, 1);
	assert_int_equal(f.mode, QS_CTL_MODE_CANARY);
	assert_int_equal(f.pct, 25);
	assert_string_equal(f.path, "/p/a.q8");
	j = ask(s, "{\"cmd\":\"policy.load\",\"path\":\"/p/b.q8\"}"); /* mode defaults to active */
	json_decref(j);
	assert_int_equal(f.mode, QS_CTL_MODE_ACTIVE);
	j = ask(s, "{\"cmd\":\"policy.load\",\"path\":\"/p/b.q8\",\"mode\":\"shadow\"}");
	json_decref(j);
	assert_int_equal(f.mode, QS_CTL_MODE_SHADOW);
	j = ask(s, "{\"cmd\":\"backend.drain\",\"id\":65535}");
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_null(json_object_get(j, "message"));
	json_decref(j);
	assert_int_equal(f.id, 65535);
	j = ask(s, "{\"cmd\":\"stats\"}");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "counters"), "rx")),
			 42);
	json_decref(j);
	j = ask(s, "{\"cmd\":\"backends\"}");
	{
		json_t *b = json_object_get(j, "backends");
		char *f0 = json_dumps(json_object_get(json_array_get(b, 0), "below_floor"), 0);
		char *f1 = json_dumps(json_object_get(json_array_get(b, 1), "below_floor"), 0);

		assert_true(json_is_null(json_object_get(json_array_get(b, 0), "variant")));
		assert_string_equal(
		    json_string_value(json_object_get(json_array_get(b, 1), "variant")), "w4");
		assert_string_equal(f0, "[[], [], [], []]");
		assert_string_equal(f1, "[[], [], [2, 3], []]");
		free(f0);
		free(f1);
	}
	json_decref(j);
	j = ask(s, "{\"cmd\":\"xdp.maps\",\"x\":5}");
	assert_int_equal(json_integer_value(json_object_get(j, "echo")), 5);
	json_decref(j);
	expect_err(s, "{\"cmd\":\"nope\"}", "bad-argument", "unknown command \"nope\"");
	assert_false(qs_ctl_shutdown_requested(s));
	j = ask(s, "{\"cmd\":\"shutdown\"}");
	json_decref(j);
	assert_true(qs_ctl_shutdown_requested(s));
	assert_int_equal(f.shutdowns, 1);
	qs_ctl_close(s);
}

static void
test_prometheus_text(void **state)
{
	struct fake f;
	char msg[128];
	struct qs_ctl_server *s;
	char *t;

	(void)state;
	fake_init(&f);
	s = qs_ctl_open(NULL, &fake_ops, &f, msg, sizeof(msg));
	t = qs_ctl_prometheus_text(s);
	assert_non_null(t);
	assert_non_null(strstr(t, "qsteer_up 1\n"));
	assert_non_null(strstr(t, "# TYPE qsteer_rx_total counter\nqsteer_rx_total 42\n"));
	assert_non_null(strstr(t, "qsteer_drops_total{reason=\"ip-csum\"} 2\n"));
	assert_non_null(strstr(t, "qsteer_to_backend_total{backend=\"gpu\\\"0\"} 7\n"));
	/* per-backend gauges in base units; never-reported ages absent, not 0 */
	assert_non_null(strstr(t, "# TYPE qsteer_backend_waiting_requests gauge\n"
				  "qsteer_backend_waiting_requests{backend=\"gpu0\"} 3\n"));
	assert_non_null(strstr(t, "qsteer_backend_kv_used_blocks{backend=\"gpu0\"} 100\n"));
	assert_non_null(strstr(t, "qsteer_backend_report_age_seconds{backend=\"gpu0\"} 0.004\n"));
	assert_null(strstr(t, "qsteer_backend_report_age_seconds{backend=\"gpu1\"}"));
	assert_non_null(strstr(t, "qsteer_backend_masked{backend=\"gpu0\"} 0\n"));
	assert_non_null(strstr(t, "qsteer_backend_masked{backend=\"gpu1\"} 1\n"));
	free(t);
	assert_int_equal(qs_ctl_prometheus_open(s, "localhost:1", NULL, msg, sizeof(msg)),
			 QS_E_ARG);
	assert_int_equal(qs_ctl_prometheus_open(s, "127.0.0.1", NULL, msg, sizeof(msg)), QS_E_ARG);
	assert_int_equal(qs_ctl_prometheus_open(s, "127.0.0.1:70000", NULL, msg, sizeof(msg)),
			 QS_E_ARG);
	assert_int_equal(qs_ctl_prometheus_open(s, "127.0.0.1:0", "bad-prefix", msg, sizeof(msg)),
			 QS_E_ARG);
	assert_int_equal(qs_ctl_prometheus_open(s, "127.0.0.1:0", "qsteer_xdp", msg, sizeof(msg)),
			 QS_OK);
	t = qs_ctl_prometheus_text(s);
	assert_non_null(strstr(t, "qsteer_xdp_rx_total 42\n"));
	free(t);
	qs_ctl_close(s);
}

/* connect, send, half-close; the server answers when polled; read everything */
static int
client_send(const struct sockaddr *sa, socklen_t len, int family, const char *req)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, sa, len), 0);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	shutdown(fd, SHUT_WR);
	return fd;
}

static char *
client_read(int fd)
{
	static char buf[65536];
	size_t have = 0;
	ssize_t r;

	while ((r = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0)
		have += (size_t)r;
	buf[have] = 0;
	close(fd);
	return buf;
}

static void
test_socket(void **state)
{
	struct fake f;
	char msg[512], path[64], *got;
	struct sockaddr_un sa;
	struct sockaddr_in sin;
	struct stat st;
	struct qs_ctl_server *s;
	int fd, fd2;

	(void)state;
	fake_init(&f);
	snprintf(path, sizeof(path), "/tmp/qsteer-ctl-test.%d.sock", (int)getpid());
	/* a stale file where the socket goes is replaced */
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	close(fd);
	s = qs_ctl_open(path, &fake_ops, &f, msg, sizeof(msg));
	assert_non_null(s);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);

	/* two requests on one connection, answered in order */
	fd = client_send((struct sockaddr *)&sa, sizeof(sa), AF_UNIX,
			 "{\"cmd\":\"stats\"}\n{\"cmd\":\"backend.drain\",\"id\":9}\n");
	assert_int_equal(qs_ctl_poll(s, 1000), 2);
	got = client_read(fd);
	assert_non_null(strstr(got, "\"rx\":42"));
	assert_non_null(strstr(got, "}\n{\"ok\":true}\n"));
	assert_int_equal(f.id, 9);

	/* a client that hangs up without reading must not kill us (SIGPIPE) */
	fd = client_send((struct sockaddr *)&sa, sizeof(sa), AF_UNIX, "{\"cmd\":\"stats\"}\n");
	close(fd);
	qs_ctl_poll(s, 1000);

	/* an endless line: refused, client dropped */
	{
		char *big = malloc(QS_CTL_MAX_LINE + 100);

		memset(big, 'x', QS_CTL_MAX_LINE + 99);
		big[QS_CTL_MAX_LINE + 99] = 0;
		fd = client_send((struct sockaddr *)&sa, sizeof(sa), AF_UNIX, big);
		free(big);
		assert_int_equal(qs_ctl_poll(s, 1000), 0);
		got = client_read(fd);
		assert_non_null(strstr(got, "too long"));
	}

	/* nothing pending: poll times out with 0 */
	assert_int_equal(qs_ctl_poll(s, 10), 0);

	/* Prometheus over loopback TCP */
	assert_int_equal(qs_ctl_prometheus_open(s, "127.0.0.1:0", NULL, msg, sizeof(msg)), QS_OK);
	assert_true(qs_ctl_prometheus_port(s) != 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(qs_ctl_prometheus_port(s));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = client_send((struct sockaddr *)&sin, sizeof(sin), AF_INET,
			 "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	fd2 = client_send((struct sockaddr *)&sa, sizeof(sa), AF_UNIX, "{\"cmd\":\"stats\"}\n");
	qs_ctl_poll(s, 1000);
	qs_ctl_poll(s, 100);
	got = client_read(fd);
	assert_non_null(strstr(got, "HTTP/1.0 200 OK\r\n"));
	assert_non_null(strstr(got, "text/plain; version=0.0.4"));
	assert_non_null(strstr(got, "\r\n\r\n# HELP qsteer_up"));
	assert_non_null(strstr(got, "qsteer_tx_total 40\n"));
	got = client_read(fd2);
	assert_non_null(strstr(got, "\"tx\":40"));
	fd = client_send((struct sockaddr *)&sin, sizeof(sin), AF_INET, "GET / HTTP/1.0\r\n\r\n");
	qs_ctl_poll(s, 1000);
	got = client_read(fd);
	assert_non_null(strstr(got, "404 Not Found"));

	qs_ctl_close(s);
	assert_int_not_equal(stat(path, &st), 0); /* the socket file is gone */
	snprintf(msg, sizeof(msg), "%s.lock", path);
	unlink(msg);
	/* a path that does not fit sun_path */
	assert_null(qs_ctl_open(
	    "/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock",
	    &fake_ops, &f, msg, sizeof(msg)));
	assert_non_null(strstr(msg, "too long"));
	assert_null(qs_ctl_open("/nonexistent-dir/x.sock", &fake_ops, &f, msg, sizeof(msg)));
	assert_non_null(strstr(msg, "/nonexistent-dir/x.sock"));
}

/*
 * 100 connections that send nothing do not delay another client: it is answered
 * within a few polls (counted, not timed), the idle ones are dropped or evicted,
 * and a second server on the same path refuses to start and leaves the live one's
 * socket in place.
 */
static void
test_concurrent(void **state)
{
	struct fake f;
	char msg[512], path[64], *got;
	struct sockaddr_un sa;
	struct qs_ctl_server *s, *s2;
	struct stat st;
	int idle[100], fd, i, polls;

	(void)state;
	fake_init(&f);
	snprintf(path, sizeof(path), "/tmp/qsteer-ctl-conc.%d.sock", (int)getpid());
	s = qs_ctl_open(path, &fake_ops, &f, msg, sizeof(msg));
	assert_non_null(s);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (i = 0; i < 100; i++) {
		idle[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(idle[i] >= 0);
		/* the backlog takes them all: connect never waits for the server */
		assert_int_equal(connect(idle[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
	}
	fd = client_send((struct sockaddr *)&sa, sizeof(sa), AF_UNIX, "{\"cmd\":\"stats\"}\n");
	/* the answer needs one poll; a few more allowed, none of them waiting long */
	for (polls = 0; polls < 5; polls++)
		if (qs_ctl_poll(s, 10) > 0)
			break;
	assert_true(polls < 5);
	got = client_read(fd);
	assert_non_null(strstr(got, "\"rx\":42"));

	/* one idle client that sends half a line keeps its slot but blocks nobody */
	assert_int_equal(send(idle[99], "{\"cmd\":", 8, MSG_NOSIGNAL), 8);
	fd = client_send((struct sockaddr *)&sa, sizeof(sa), AF_UNIX,
			 "{\"cmd\":\"backend.drain\",\"id\":5}\n");
	for (polls = 0; polls < 5; polls++)
		if (qs_ctl_poll(s, 10) > 0)
			break;
	assert_true(polls < 5);
	got = client_read(fd);
	assert_non_null(strstr(got, "{\"ok\":true}"));
	assert_int_equal(f.id, 5);

	/* a second server on the same path refuses and the first keeps its socket */
	s2 = qs_ctl_open(path, &fake_ops, &f, msg, sizeof(msg));
	assert_null(s2);
	assert_non_null(strstr(msg, "another daemon is running"));
	assert_int_equal(stat(path, &st), 0);
	fd = client_send((struct sockaddr *)&sa, sizeof(sa), AF_UNIX, "{\"cmd\":\"stats\"}\n");
	for (polls = 0; polls < 5; polls++)
		if (qs_ctl_poll(s, 10) > 0)
			break;
	got = client_read(fd);
	assert_non_null(strstr(got, "\"rx\":42"));

	for (i = 0; i < 100; i++)
		close(idle[i]);
	qs_ctl_close(s);
	/* once it is gone, the path is free again */
	s2 = qs_ctl_open(path, &fake_ops, &f, msg, sizeof(msg));
	assert_non_null(s2);
	qs_ctl_close(s2);
	snprintf(msg, sizeof(msg), "%s.lock", path);
	unlink(msg);
}

QS_TEST_MAIN(cmocka_unit_test(test_validation), cmocka_unit_test(test_dispatch),
	     cmocka_unit_test(test_prometheus_text), cmocka_unit_test(test_socket),
	     cmocka_unit_test(test_concurrent))
