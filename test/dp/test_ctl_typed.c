/*
 * test_ctl_typed.c - the control server's typed callbacks (include/qsteer/ctl.h): a
 * daemon fills structs, the server writes the answers and /metrics. Checked against
 * a daemon that writes the same facts as JSON itself, the way qsteer-dp's and
 * qsteer-xdp's callbacks did before they moved to the typed form (the server's other
 * unit tests still use the JSON form): every answer and the /metrics text are the
 * same bytes. Also: the actions (load, rollback, drain, shutdown) with their
 * messages and the new "policy", refusals passed through, the typed form preferred
 * when a daemon has both, qs_ctl_command, and "unsupported" without either.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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

/* ---- the same facts written as JSON by the daemon (the older callbacks) -------- */

static json_t *
j_loads(char *js)
{
	json_t *o = json_loads(js, 0, NULL);

	free(js);
	return o;
}

static json_t *
j_slot(const struct qs_ctl_slot *sl)
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
		return o;
	}
	snprintf(id, sizeof(id), "%016" PRIx64, sl->content_id);
	json_object_set_new(o, "content_id", json_string(id));
	json_object_set_new(o, "layers", json_integer(sl->layers));
	json_object_set_new(o, "inputs", json_integer(sl->inputs));
	return o;
}

static json_t *
j_policy(const struct fake *f)
{
	const struct qs_ctl_policy *p = &f->pol;
	json_t *o = json_object();

	json_object_set_new(o, "mode", json_string(qs_ctl_mode_name(p->mode)));
	json_object_set_new(o, "version", json_integer((json_int_t)p->version));
	json_object_set_new(o, "swaps", json_integer((json_int_t)p->swaps));
	json_object_set_new(o, "kernel", json_string(p->kernel));
	json_object_set_new(o, "active", j_slot(&p->active));
	json_object_set_new(o, p->mode == QS_CTL_MODE_CANARY ? "canary" : "shadow",
			    j_slot(&p->second));
	if (p->mode == QS_CTL_MODE_CANARY)
		json_object_set_new(o, "canary_pct", json_integer(p->canary_pct));
	json_object_set_new(o, "previous", j_slot(&p->previous));
	return o;
}

static int
j_status(void *ctx, json_t *resp, char *msg, size_t msglen)
{
	struct fake *f = ctx;

	(void)msg;
	(void)msglen;
	json_object_set_new(resp, "daemon", json_string("qsteer-dp"));
	json_object_set_new(resp, "workers", json_integer(2));
	json_object_set_new(resp, "burst", json_integer(32));
	json_object_set_new(resp, "uptime_s", json_integer(12));
	json_object_set_new(resp, "clock", json_string("packet"));
	json_object_set_new(resp, "backends", json_integer(NB));
	json_object_set_new(resp, "backends_fresh", json_integer(1));
	json_object_set_new(resp, "rx", json_integer((json_int_t)f->sum.rx));
	json_object_set_new(resp, "tx", json_integer((json_int_t)f->sum.tx));
	json_object_set_new(resp, "policy", j_policy(f));
	return QS_OK;
}

static int
j_stats(void *ctx, json_t *resp, char *msg, size_t msglen)
{
	struct fake *f = ctx;
	json_t *a = json_array();
	uint32_t k;

	(void)msg;
	(void)msglen;
	json_object_set_new(resp, "counters", j_loads(qs_dp_counters_json(&f->sum, &f->cfg)));
	for (k = 0; k < 2; k++) {
		json_t *o = json_object();

		json_object_set_new(o, "worker", json_integer(k));
		json_object_set_new(o, "lcore", json_integer(1 + k));
		json_object_set_new(o, "queue", json_integer(k));
		json_object_set_new(o, "counters",
				    j_loads(qs_dp_counters_json(&f->worker[k], &f->cfg)));
		json_array_append_new(a, o);
	}
	json_object_set_new(resp, "per_worker", a);
	return QS_OK;
}

static int
j_backends(void *ctx, json_t *resp, char *msg, size_t msglen)
{
	struct fake *f = ctx;
	json_t *a = json_array();
	uint32_t i;

	(void)msg;
	(void)msglen;
	for (i = 0; i < NB; i++) {
		const struct qs_ctl_backend *b = &f->be[i];
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
		json_array_append_new(a, o);
	}
	json_object_set_new(resp, "backends", a);
	return QS_OK;
}

static int
j_policy_show(void *ctx, json_t *resp, char *msg, size_t msglen)
{
	(void)msg;
	(void)msglen;
	json_object_set_new(resp, "policy", j_policy(ctx));
	return QS_OK;
}

static int
j_shadow(void *ctx, uint32_t top, json_t *resp, char *msg, size_t msglen)
{
	struct fake *f = ctx;

	(void)msg;
	(void)msglen;
	json_object_set_new(resp, "policy", j_policy(f));
	json_object_set_new(resp, "window",
			    f->shadow_running ? j_loads(qs_dp_shadow_json(&f->window, &f->cfg, top))
					      : json_null());
	json_object_set_new(resp, "total", j_loads(qs_dp_shadow_json(&f->total, &f->cfg, top)));
	return QS_OK;
}

static const struct qs_ctl_ops json_ops = {
    .status = j_status,
    .stats = j_stats,
    .backends = j_backends,
    .policy_show = j_policy_show,
    .shadow = j_shadow,
};

/* ---- tests ------------------------------------------------------------------------ */

static char *
ask(struct qs_ctl_server *s, const char *line)
{
	char *out = qs_ctl_handle_line(s, line);

	assert_non_null(out);
	return out;
}

static void
same_answer(struct qs_ctl_server *a, struct qs_ctl_server *b, const char *line)
{
	char *x = ask(a, line), *y = ask(b, line);

	assert_string_equal(x, y);
	free(x);
	free(y);
}

static void
test_same_as_json(void **state)
{
	static const char *const lines[] = {
	    "{\"cmd\":\"status\"}",
	    "{\"cmd\":\"stats\"}",
	    "{\"cmd\":\"backends\"}",
	    "{\"cmd\":\"policy.show\"}",
	    "{\"cmd\":\"policy.shadow\"}",
	    "{\"cmd\":\"policy.shadow\",\"top\":1}",
	    "{\"cmd\":\"policy.shadow\",\"top\":0}",
	};
	struct fake f;
	char msg[256];
	struct qs_ctl_server *t, *j;
	char *x, *y;
	size_t i;
	int pass;

	(void)state;
	fake_init(&f);
	t = qs_ctl_open(NULL, &typed_ops, &f, msg, sizeof(msg));
	j = qs_ctl_open(NULL, &json_ops, &f, msg, sizeof(msg));
	assert_non_null(t);
	assert_non_null(j);
	for (pass = 0; pass < 3; pass++) {
		if (pass == 1) { /* shadow mode, no previous, a builtin active */
			f.pol.mode = QS_CTL_MODE_SHADOW;
			f.pol.previous.used = false;
			f.pol.active = (struct qs_ctl_slot){
			    .used = true, .builtin = true, .source = "builtin:jsq", .name = "jsq"};
		}
		if (pass == 2) { /* active alone, no shadow running */
			f.pol.mode = QS_CTL_MODE_ACTIVE;
			f.pol.second.used = false;
			f.shadow_running = false;
		}
		for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
			same_answer(t, j, lines[i]);
		x = qs_ctl_prometheus_text(t);
		y = qs_ctl_prometheus_text(j);
		assert_non_null(x);
		assert_non_null(y);
		assert_string_equal(x, y);
		free(x);
		free(y);
	}
	x = qs_ctl_command(t, "stats");
	y = ask(t, "{\"cmd\":\"stats\"}");
	assert_string_equal(x, y);
	free(x);
	free(y);
	qs_ctl_close(t);
	qs_ctl_close(j);
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
				  "\"kv_total\":4096,\"report_seq\":28,\"sent\":41}"));
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

/* Both forms: the typed one answers. Neither: unsupported. */
static void
test_precedence(void **state)
{
	struct qs_ctl_ops both = typed_ops;
	static const struct qs_ctl_ops none = {0};
	struct fake f;
	char msg[256];
	struct qs_ctl_server *s;
	char *r;

	(void)state;
	fake_init(&f);
	both.status = j_status;
	both.stats = j_stats;
	s = qs_ctl_open(NULL, &both, &f, msg, sizeof(msg));
	f.pol.kernel = "typed";
	r = ask(s, "{\"cmd\":\"status\"}");
	assert_non_null(strstr(r, "\"kernel\":\"typed\""));
	free(r);
	qs_ctl_close(s);
	s = qs_ctl_open(NULL, &none, &f, msg, sizeof(msg));
	r = ask(s, "{\"cmd\":\"policy.shadow\"}");
	assert_string_equal(r, "{\"ok\":false,\"status\":\"unsupported\",\"error\":"
			       "\"policy.shadow is not supported by this daemon\"}");
	free(r);
	r = ask(s, "{\"cmd\":\"backend.undrain\",\"id\":1}");
	assert_non_null(strstr(r, "\"unsupported\""));
	free(r);
	assert_null(qs_ctl_prometheus_text(s));
	qs_ctl_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_same_as_json),
	    cmocka_unit_test(test_rendering),
	    cmocka_unit_test(test_actions),
	    cmocka_unit_test(test_precedence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
