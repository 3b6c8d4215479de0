/*
 * test_ctl_typed.c - the control server's callbacks (include/qsteer/ctl.h): a daemon
 * fills structs, the server writes the answers and /metrics. Exact answers (also
 * what docs/control.md shows), the actions (load, rollback, drain, shutdown) with
 * their messages and the new "policy", refusals passed through, qs_ctl_command, and
 * "unsupported" without a callback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qs_test.h"

#include "qsteer/ctl.h"

#define NB 3

/* What the fake daemon holds. */
struct fake {
	struct qs_dp_config cfg;
	struct qs_dp_counters sum, worker[2];
	struct qs_dp_shadow total, window;
	bool shadow_running;
	struct qs_ctl_policy pol;
	struct qs_ctl_backend be[NB];
	int loads, rollbacks, stops, drains, undrains;
	uint16_t last_id;
};

static void
fake_init(struct fake *f)
{
	uint32_t i, k;

	memset(f, 0, sizeof(*f));
	qs_dp_config_defaults(&f->cfg);
	f->cfg.n_backends = NB;
	for (i = 0; i < NB; i++) {
		snprintf(f->cfg.be[i].name, sizeof(f->cfg.be[i].name), "gpu%u", i);
		f->cfg.be[i].id = (uint16_t)(10 + i);
	}
	for (k = 0; k < 2; k++) {
		struct qs_dp_counters *c = &f->worker[k];

		c->rx = 100 + k;
		c->tx = 90 + k;
		c->requests = 50 + k;
		c->bursts = 7 + k;
		c->drop[QS_DP_D_IP_CSUM] = 3 + k;
		for (i = 0; i < NB; i++)
			c->to_backend[i] = 10 * i + k;
		qs_dp_counters_add(&f->sum, c);
	}
	f->total.scored = 40;
	f->total.disagree = 6;
	for (i = 0; i < NB; i++) {
		f->total.row[i].active = 10 + i;
		f->total.row[i].would = 12 - i;
	}
	f->total.row[0].pair[1] = 4;
	f->total.row[2].pair[0] = 2;
	f->window = f->total;
	f->window.scored = 10;
	f->window.disagree = 1;
	f->shadow_running = true;

	f->pol.mode = QS_CTL_MODE_CANARY;
	f->pol.version = 4;
	f->pol.swaps = 3;
	f->pol.kernel = "avx2";
	f->pol.canary_pct = 30;
	f->pol.active = (struct qs_ctl_slot){.used = true,
					     .source = "/p/a.q8",
					     .name = "a",
					     .content_id = 0xc9e830b1b6dd629cull,
					     .layers = 3,
					     .inputs = 16};
	f->pol.second = (struct qs_ctl_slot){.used = true,
					     .source = "/p/b.q8",
					     .name = "b",
					     .content_id = 0x197d50dfc7e85b34ull,
					     .layers = 2,
					     .inputs = 16};
	f->pol.previous = (struct qs_ctl_slot){
	    .used = true, .builtin = true, .source = "builtin:lor", .name = "lor"};
	for (i = 0; i < NB; i++) {
		struct qs_ctl_backend *b = &f->be[i];

		snprintf(b->name, sizeof(b->name), "gpu%u", i);
		b->id = (uint16_t)(10 + i);
		snprintf(b->ip, sizeof(b->ip), "10.0.1.%u", 10 + i);
		b->port = 8000;
		b->capacity_class = (uint8_t)i;
		b->reported = i != 2;
		b->fresh = i == 0;
		b->has_report_age = i != 2;
		b->report_age_ms = 4 + 100 * i;
		b->draining = i == 1;
		b->drained = i == 0;
		b->waiting = 3 + i;
		b->running = 0xffffffffu; /* as big as the field */
		b->kv_used = 100;
		b->kv_total = 4096;
		b->report_seq = 26 + i;
		b->sent = f->sum.to_backend[i];
	}
}

/* ---- the typed daemon ---------------------------------------------------------- */

static int
t_status(void *ctx, struct qs_ctl_status *out, char *msg, size_t msglen)
{
	struct fake *f = ctx;

	(void)msg;
	(void)msglen;
	out->daemon = "qsteer-dp";
	out->workers = 2;
	out->burst = 32;
	out->uptime_s = 12;
	out->clock = "packet";
	out->backends = NB;
	out->backends_fresh = 1;
	out->rx = f->sum.rx;
	out->tx = f->sum.tx;
	return QS_OK;
}

static int
t_counters(void *ctx, struct qs_ctl_counters *out, char *msg, size_t msglen)
{
	struct fake *f = ctx;
	uint32_t k;

	(void)msg;
	(void)msglen;
	out->cfg = &f->cfg;
	out->sum = f->sum;
	out->n_workers = 2;
	for (k = 0; k < 2; k++) {
		out->worker[k].lcore = 1 + k;
		out->worker[k].queue = k;
		out->worker[k].c = f->worker[k];
	}
	return QS_OK;
}

static int
t_backends(void *ctx, struct qs_ctl_backends *out, char *msg, size_t msglen)
{
	struct fake *f = ctx;

	(void)msg;
	(void)msglen;
	out->n = NB;
	memcpy(out->be, f->be, sizeof(f->be));
	return QS_OK;
}

static int
t_policy(void *ctx, struct qs_ctl_policy *out, char *msg, size_t msglen)
{
	struct fake *f = ctx;

	(void)msg;
	(void)msglen;
	*out = f->pol;
	return QS_OK;
}

static int
t_shadow(void *ctx, struct qs_ctl_shadow *out, char *msg, size_t msglen)
{
	struct fake *f = ctx;

	(void)msg;
	(void)msglen;
	out->cfg = &f->cfg;
	out->total = f->total;
	out->running = f->shadow_running;
	if (f->shadow_running)
		out->window = f->window;
	return QS_OK;
}

static int
t_load(void *ctx, enum qs_ctl_mode mode, const char *path, uint32_t pct, char *msg, size_t msglen)
{
	struct fake *f = ctx;

	if (strstr(path, "oom")) {
		snprintf(msg, msglen,
			 "out of memory publishing a policy set; the running one stays");
		return QS_E_NOMEM;
	}
	f->loads++;
	f->pol.mode = mode;
	f->pol.canary_pct = pct;
	f->pol.version++;
	snprintf(f->pol.second.source, sizeof(f->pol.second.source), "%s", path);
	snprintf(msg, msglen, "%s loaded as %s", path, qs_ctl_mode_name(mode));
	return QS_OK;
}

static int
t_rollback(void *ctx, char *msg, size_t msglen)
{
	struct fake *f = ctx;

	f->rollbacks++;
	f->pol.mode = QS_CTL_MODE_ACTIVE;
	f->pol.second.used = false;
	snprintf(msg, msglen, "b dropped; a alone is active");
	return QS_OK;
}

static int
t_drain(void *ctx, uint16_t id, bool drain, char *msg, size_t msglen)
{
	struct fake *f = ctx;

	if (id == 99) {
		snprintf(msg, msglen, "no backend with id 99");
		return QS_E_ARG;
	}
	f->last_id = id;
	if (drain)
		f->drains++;
	else
		f->undrains++;
	snprintf(msg, msglen, "backend (id %u) %s", id, drain ? "drained" : "undrained");
	return QS_OK;
}

static int
t_stop(void *ctx, char *msg, size_t msglen)
{
	struct fake *f = ctx;

	f->stops++;
	snprintf(msg, msglen, "shutting down");
	return QS_OK;
}

static const struct qs_ctl_ops typed_ops = {
    .get_status = t_status,
    .get_counters = t_counters,
    .get_backends = t_backends,
    .get_policy = t_policy,
    .get_shadow = t_shadow,
    .load_policy = t_load,
    .roll_back = t_rollback,
    .set_drain = t_drain,
    .stop = t_stop,
};

/* ---- tests ------------------------------------------------------------------------ */

static char *
ask(struct qs_ctl_server *s, const char *line)
{
	char *out = qs_ctl_handle_line(s, line);

	assert_non_null(out);
	return out;
}

/* Exact answers: the rendering itself (also what docs/control.md shows). */
static void
test_rendering(void **state)
{
	struct fake f;
	char msg[256];
	struct qs_ctl_server *s;
	char *r, *t;

	(void)state;
	fake_init(&f);
	s = qs_ctl_open(NULL, &typed_ops, &f, msg, sizeof(msg));
	r = ask(s, "{\"cmd\":\"policy.show\"}");
	assert_string_equal(
	    r, "{\"ok\":true,\"policy\":{\"mode\":\"canary\",\"version\":4,\"swaps\":3,"
	       "\"kernel\":\"avx2\",\"active\":{\"source\":\"/p/a.q8\",\"name\":\"a\","
	       "\"content_id\":\"c9e830b1b6dd629c\",\"layers\":3,\"inputs\":16},"
	       "\"canary\":{\"source\":\"/p/b.q8\",\"name\":\"b\",\"content_id\":"
	       "\"197d50dfc7e85b34\",\"layers\":2,\"inputs\":16},\"canary_pct\":30,"
	       "\"previous\":{\"source\":\"builtin:lor\",\"name\":\"lor\",\"builtin\":true}}}");
	free(r);
	r = ask(s, "{\"cmd\":\"status\"}");
	assert_non_null(strstr(r,
			       "{\"ok\":true,\"daemon\":\"qsteer-dp\",\"workers\":2,"
			       "\"burst\":32,\"uptime_s\":12,\"clock\":\"packet\",\"backends\":3,"
			       "\"backends_fresh\":1,\"rx\":201,\"tx\":181,\"policy\":{"));
	free(r);
	r = ask(s, "{\"cmd\":\"backends\"}");
	assert_non_null(strstr(r, "{\"name\":\"gpu2\",\"id\":12,\"ip\":\"10.0.1.12\",\"port\":8000,"
				  "\"capacity_class\":2,\"reported\":false,\"fresh\":false,"
				  "\"report_age_ms\":null,\"draining\":false,\"drained\":false,"
				  "\"waiting\":5,\"running\":4294967295,\"kv_used\":100,"
				  "\"kv_total\":4096,\"report_seq\":28,\"sent\":41,"
				  "\"variant\":null,\"below_floor\":[[],[],[],[]]}"));
	free(r);
	r = ask(s, "{\"cmd\":\"stats\"}");
	assert_non_null(strstr(r, "\"per_worker\":[{\"worker\":0,\"lcore\":1,\"queue\":0,"
				  "\"counters\":{\"rx\":100,"));
	free(r);
	/* qsteer-xdp's extras, when a daemon gives them */
	f.pol.active.has_slot_version = true;
	f.pol.active.slot_version = 9;
	r = ask(s, "{\"cmd\":\"policy.show\"}");
	assert_non_null(strstr(r, "\"inputs\":16,\"slot_version\":9},"));
	free(r);
	t = qs_ctl_prometheus_text(s);
	assert_non_null(strstr(t, "qsteer_rx_total 201\n"));
	assert_non_null(strstr(t, "qsteer_to_backend_total{backend=\"gpu2\"} 41\n"));
	assert_non_null(strstr(t, "qsteer_backend_masked{backend=\"gpu0\"} 1\n")); /* drained */
	assert_non_null(strstr(t, "qsteer_backend_masked{backend=\"gpu1\"} 1\n")); /* stale */
	assert_non_null(strstr(t, "qsteer_backend_report_age_seconds{backend=\"gpu1\"} 0.104\n"));
	assert_null(strstr(t, "qsteer_backend_report_age_seconds{backend=\"gpu2\"}"));
	assert_non_null(strstr(t, "qsteer_shadow_agreement_ratio 0.900000\n"));
	assert_non_null(strstr(t, "qsteer_shadow_disagreements_total{active=\"gpu0\","
				  "shadow=\"gpu1\"} 4\n"));
	free(t);
	/* --stats-out's line is the stats answer */
	r = qs_ctl_command(s, "stats");
	t = ask(s, "{\"cmd\":\"stats\"}");
	assert_string_equal(r, t);
	free(r);
	free(t);
	/* no shadow running: "window" is null, "total" stays */
	f.shadow_running = false;
	r = ask(s, "{\"cmd\":\"policy.shadow\",\"top\":1}");
	assert_non_null(strstr(r, "\"window\":null,\"total\":{"));
	free(r);
	qs_ctl_close(s);
}

static void
test_actions(void **state)
{
	struct fake f;
	char msg[256];
	struct qs_ctl_server *s;
	char *r;

	(void)state;
	fake_init(&f);
	s = qs_ctl_open(NULL, &typed_ops, &f, msg, sizeof(msg));
	r = ask(s, "{\"cmd\":\"policy.load\",\"path\":\"/p/c.q8\",\"mode\":\"shadow\"}");
	assert_int_equal(f.loads, 1);
	assert_non_null(strstr(r, "{\"ok\":true,\"policy\":{\"mode\":\"shadow\",\"version\":5,"));
	assert_non_null(strstr(r, "\"shadow\":{\"source\":\"/p/c.q8\","));
	assert_non_null(strstr(r, "},\"message\":\"/p/c.q8 loaded as shadow\"}"));
	free(r);
	/* an allocation failure in the daemon: an error for the client, nothing else */
	r = ask(s, "{\"cmd\":\"policy.load\",\"path\":\"/p/oom.q8\"}");
	assert_string_equal(r, "{\"ok\":false,\"status\":\"out-of-memory\",\"error\":\"out of "
			       "memory publishing a policy set; the running one stays\"}");
	free(r);
	assert_int_equal(f.loads, 1);
	/* validation stays the server's */
	r = ask(s, "{\"cmd\":\"policy.load\",\"path\":\"/p/c.q8\",\"mode\":\"canary\"}");
	assert_non_null(strstr(r, "needs \\\"pct\\\""));
	free(r);
	assert_int_equal(f.loads, 1);
	r = ask(s, "{\"cmd\":\"policy.rollback\"}");
	assert_non_null(strstr(r, "\"mode\":\"active\""));
	assert_non_null(strstr(r, "\"shadow\":null"));
	assert_non_null(strstr(r, "\"message\":\"b dropped; a alone is active\"}"));
	free(r);
	r = ask(s, "{\"cmd\":\"backend.drain\",\"id\":11}");
	assert_string_equal(r, "{\"ok\":true,\"message\":\"backend (id 11) drained\"}");
	free(r);
	r = ask(s, "{\"cmd\":\"backend.undrain\",\"id\":11}");
	assert_string_equal(r, "{\"ok\":true,\"message\":\"backend (id 11) undrained\"}");
	free(r);
	r = ask(s, "{\"cmd\":\"backend.drain\",\"id\":99}");
	assert_string_equal(r, "{\"ok\":false,\"status\":\"bad-argument\",\"error\":\"no backend "
			       "with id 99\"}");
	free(r);
	assert_int_equal(f.drains, 1);
	assert_int_equal(f.undrains, 1);
	assert_false(qs_ctl_shutdown_requested(s));
	r = ask(s, "{\"cmd\":\"shutdown\"}");
	assert_string_equal(r, "{\"ok\":true,\"message\":\"shutting down\"}");
	free(r);
	assert_true(qs_ctl_shutdown_requested(s));
	assert_int_equal(f.stops, 1);
	qs_ctl_close(s);
}

/* A daemon without callbacks: every command unsupported, no /metrics. */
static void
test_unsupported(void **state)
{
	static const struct qs_ctl_ops none = {0};
	char msg[256];
	struct qs_ctl_server *s;
	char *r;

	(void)state;
	s = qs_ctl_open(NULL, &none, NULL, msg, sizeof(msg));
	r = ask(s, "{\"cmd\":\"policy.shadow\"}");
	assert_string_equal(r, "{\"ok\":false,\"status\":\"unsupported\",\"error\":"
			       "\"policy.shadow is not supported by this daemon\"}");
	free(r);
	r = ask(s, "{\"cmd\":\"backend.undrain\",\"id\":1}");
	assert_non_null(strstr(r, "\"unsupported\""));
	free(r);
	r = ask(s, "{\"cmd\":\"status\"}");
	assert_non_null(strstr(r, "\"unsupported\""));
	free(r);
	assert_null(qs_ctl_prometheus_text(s));
	qs_ctl_close(s);
}

QS_TEST_MAIN(cmocka_unit_test(test_rendering), cmocka_unit_test(test_actions),
	     cmocka_unit_test(test_unsupported))
