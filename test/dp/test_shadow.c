/*
 * test_shadow.c - the shadow report (docs/operations.md "Shadow and canary") without
 * DPDK: the canary slice of shadow.h against the function qsteer-dp ran before it
 * moved there; the dataplane core counting a shadow set (totals, per-backend sends,
 * disagreement pairs) on a burst it decided; qs_dp_shadow_json's ordering, top-N
 * cut and agreement; and the control server's policy.shadow request and Prometheus
 * metrics through a daemon callback built on them.
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
#include "qsteer/dp_core.h"

/* qs_dp_canary_pick as qsteer-dp had it before shadow.h: the split must not move */
static bool
old_canary_pick(uint64_t request_id, uint32_t pct)
{
	uint64_t z = request_id + 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (uint32_t)(z % 100) < pct;
}

static void
test_canary_pick_unchanged(void **state)
{
	uint64_t id, picked = 0;
	uint32_t pct;

	(void)state;
	for (id = 0; id < 20000; id++) {
		uint64_t v = id * 0x100000001b3ull ^ (id << 40); /* sequential and spread */

		for (pct = 0; pct <= 100; pct += 10) {
			assert_int_equal(qs_dp_canary_pick(v, pct), old_canary_pick(v, pct));
			assert_int_equal(qs_canary_pick(v, pct) != 0, old_canary_pick(v, pct));
		}
		picked += qs_canary_pick(id, 30);
	}
	/* the slice is about its percentage even for sequential ids */
	assert_true(picked > 5400 && picked < 6600);
	assert_false(qs_canary_pick(12345, 0));
	assert_true(qs_canary_pick(12345, 100));
}

static void
cfg_names(struct qs_dp_config *c, uint32_t n)
{
	uint32_t i;

	qs_dp_config_defaults(c);
	c->n_backends = n;
	for (i = 0; i < n; i++)
		snprintf(c->be[i].name, sizeof(c->be[i].name), "gpu%u", i);
}

static void
test_json(void **state)
{
	struct qs_dp_config c;
	struct qs_dp_shadow *sh = calloc(1, sizeof(*sh));
	json_t *o, *a;
	char *js;

	(void)state;
	cfg_names(&c, 3);
	js = qs_dp_shadow_json(sh, &c, 10);
	o = json_loads(js, 0, NULL);
	assert_non_null(o);
	assert_true(json_is_null(json_object_get(o, "agreement_ppm"))); /* nothing scored */
	assert_int_equal(json_array_size(json_object_get(o, "per_backend")), 3);
	assert_int_equal(json_array_size(json_object_get(o, "disagreements")), 0);
	json_decref(o);
	free(js);

	sh->scored = 8;
	sh->disagree = 6;
	sh->row[0].active = 5;
	sh->row[0].would = 1;
	sh->row[1].active = 3;
	sh->row[2].would = 7;
	sh->row[0].pair[2] = 4;
	sh->row[1].pair[2] = 1;
	sh->row[1].pair[0] = 1; /* ties: lower active index, then lower shadow index */
	js = qs_dp_shadow_json(sh, &c, 2);
	o = json_loads(js, 0, NULL);
	assert_non_null(o);
	assert_int_equal(json_integer_value(json_object_get(o, "agreed")), 2);
	assert_int_equal(json_integer_value(json_object_get(o, "agreement_ppm")), 250000);
	a = json_object_get(o, "disagreements");
	assert_int_equal(json_array_size(a), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "active")),
			    "gpu0");
	assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "shadow")),
			    "gpu2");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 0), "count")), 4);
	assert_string_equal(json_string_value(json_object_get(json_array_get(a, 1), "shadow")),
			    "gpu0");
	a = json_object_get(o, "per_backend");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 2), "shadow")), 7);
	json_decref(o);
	free(js);
	free(sh);
}

/*
 * The core with a shadow set: the second policy scores every request that has a
 * candidate, and the shadow table says where each went and would have gone. With
 * the same policy as both, every request agrees; with another, the table's sums
 * equal the counters.
 */
static void
test_core_counts(void **state)
{
	struct qs_dp_config c;
	struct qs_dp_shared *s = aligned_alloc(64, (sizeof(*s) + 63) & ~(size_t)63);
	struct qs_dp_worker *w = aligned_alloc(64, (sizeof(*w) + 63) & ~(size_t)63);
	struct qs_dp_shadow *sh = calloc(1, sizeof(*sh));
	struct qs_policy *pa = NULL, *pb = NULL;
	struct qs_dp_policy_set set = {0};
	uint8_t frames[64][QS_DP_BENCH_FRAME];
	uint32_t lens[64], i, j, round;
	uint64_t sum_a = 0, sum_w = 0, sum_p = 0;
	char msg[256];
	struct qs_policy_load_opts lo = {QS_SCHEMA_ROUTER_V1, QS_Q8_KIND_SCORER, NULL, NULL};

	(void)state;
	/* two different policies and a configuration, from meson (test/dp/meson.build) */
	assert_non_null(getenv("QS_TEST_POLICY_A"));
	assert_int_equal(
	    qs_policy_load_file(getenv("QS_TEST_POLICY_A"), &lo, &pa, msg, sizeof(msg)), QS_OK);
	assert_int_equal(
	    qs_policy_load_file(getenv("QS_TEST_POLICY_B"), &lo, &pb, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_dp_config_load(getenv("QS_TEST_CONFIG"), &c, msg, sizeof(msg)), QS_OK);
	set.active = pa;
	for (round = 0; round < 2; round++) {
		set.second = round == 0 ? pa : pb;
		set.mode = QS_DP_MODE_SHADOW;
		qs_dp_shared_init(s, &c);
		qs_dp_worker_init(w, s, QS_KERNEL_SCALAR, 0);
		qs_dp_bench_workload(w, s, &set, frames, lens, 64, false, 1000000);
		for (i = 0; i < 64; i += 8) {
			uint8_t *p[8];

			for (j = 0; j < 8; j++)
				p[j] = frames[i + j];
			qs_dp_process(w, s, &set, p, lens + i, 8, 1000000 + i);
		}
		memset(sh, 0, sizeof(*sh));
		qs_dp_shadow_add(sh, w);
		assert_int_equal(sh->scored, w->ctr.shadow_scored);
		assert_int_equal(sh->disagree, w->ctr.shadow_disagree);
		assert_true(sh->scored >= 64);
		sum_a = sum_w = sum_p = 0;
		for (i = 0; i < QS_DP_MAX_BACKENDS; i++) {
			sum_a += sh->row[i].active;
			sum_w += sh->row[i].would;
			for (j = 0; j < QS_DP_MAX_BACKENDS; j++)
				sum_p += sh->row[i].pair[j];
			assert_int_equal(sh->row[i].pair[i], 0);
		}
		assert_int_equal(sum_a, sh->scored);
		assert_int_equal(sum_w, sh->scored);
		assert_int_equal(sum_p, sh->disagree);
		if (round == 0)
			assert_int_equal(sh->disagree, 0);
		else
			assert_true(sh->disagree > 0);
	}
	qs_policy_free(pa);
	qs_policy_free(pb);
	free(sh);
	free(s);
	free(w);
}

/* ---- the control server with a shadow callback ------------------------------------ */

static struct qs_dp_config shadow_cfg; /* must outlive the callbacks' answers */

static int
f_counters(void *ctx, struct qs_ctl_counters *out, char *msg, size_t msglen)
{
	(void)ctx;
	(void)msg;
	(void)msglen;
	out->cfg = &shadow_cfg;
	return QS_OK;
}

/* one disagreement pair of each weight, so that "top" visibly cuts the list */
static int
f_shadow(void *ctx, struct qs_ctl_shadow *out, char *msg, size_t msglen)
{
	struct qs_dp_shadow *sh = &out->total;

	(void)ctx;
	(void)msg;
	(void)msglen;
	out->cfg = &shadow_cfg;
	sh->scored = 4;
	sh->disagree = 1;
	sh->row[0].active = 3;
	sh->row[0].would = 2;
	sh->row[1].active = 1;
	sh->row[1].would = 2;
	sh->row[0].pair[1] = 1;
	out->running = true;
	out->window = *sh;
	sh->scored = 10;
	sh->disagree = 3;
	sh->row[1].pair[0] = 2;
	return QS_OK;
}

static int
occurrences(const char *s, const char *what)
{
	int n = 0;

	while ((s = strstr(s, what)) != NULL) {
		n++;
		s += strlen(what);
	}
	return n;
}

static const struct qs_ctl_ops ops = {.get_counters = f_counters, .get_shadow = f_shadow};

static void
test_ctl_shadow(void **state)
{
	char msg[128];
	struct qs_ctl_server *s;
	char *r, *t;

	(void)state;
	cfg_names(&shadow_cfg, 2);
	s = qs_ctl_open(NULL, &ops, NULL, msg, sizeof(msg));
	assert_non_null(s);
	r = qs_ctl_handle_line(s, "{\"cmd\":\"policy.shadow\"}");
	assert_non_null(strstr(r, "\"ok\":true"));
	assert_non_null(strstr(r, "\"agreement_ppm\":750000")); /* the window */
	assert_non_null(strstr(r, "\"agreement_ppm\":700000")); /* the total */
	assert_non_null(strstr(r, "\"count\":2"));
	free(r);
	/* the total's heavier pair first; top 1 keeps only it (the window has one) */
	r = qs_ctl_handle_line(s, "{\"cmd\":\"policy.shadow\",\"top\":1}");
	assert_non_null(strstr(r, "\"active\":\"gpu1\",\"shadow\":\"gpu0\",\"count\":2"));
	assert_int_equal(occurrences(r, "\"count\":"), 2);
	free(r);
	r = qs_ctl_handle_line(s, "{\"cmd\":\"policy.shadow\",\"top\":0}");
	assert_int_equal(occurrences(r, "\"count\":"), 3);
	free(r);
	r = qs_ctl_handle_line(s, "{\"cmd\":\"policy.shadow\",\"top\":-1}");
	assert_non_null(strstr(r, "\"top\\\" must be an integer 0..4096"));
	free(r);
	r = qs_ctl_handle_line(s, "{\"cmd\":\"policy.shadow\",\"top\":\"3\"}");
	assert_non_null(strstr(r, "\"status\":\"bad-argument\""));
	free(r);
	t = qs_ctl_prometheus_text(s);
	assert_non_null(t);
	assert_non_null(strstr(t, "# TYPE qsteer_shadow_agreement_ratio gauge\n"
				  "qsteer_shadow_agreement_ratio 0.750000\n"));
	assert_non_null(strstr(t, "qsteer_backend_shadow_active_send_total{backend=\"gpu0\"} 3\n"));
	assert_non_null(strstr(t, "qsteer_backend_shadow_would_send_total{backend=\"gpu1\"} 2\n"));
	assert_non_null(
	    strstr(t, "# TYPE qsteer_shadow_disagreements_total counter\n"
		      "qsteer_shadow_disagreements_total{active=\"gpu1\",shadow=\"gpu0\"} 2\n"
		      "qsteer_shadow_disagreements_total{active=\"gpu0\",shadow=\"gpu1\"} 1\n"));
	free(t);
	qs_ctl_close(s);

	/* a daemon without the callback: unsupported, and no shadow metrics */
	{
		static const struct qs_ctl_ops none = {.get_counters = f_counters};

		s = qs_ctl_open(NULL, &none, NULL, msg, sizeof(msg));
		r = qs_ctl_handle_line(s, "{\"cmd\":\"policy.shadow\"}");
		assert_non_null(strstr(r, "\"status\":\"unsupported\""));
		free(r);
		t = qs_ctl_prometheus_text(s);
		/* the counters' shadow_scored and shadow_disagree stay */
		assert_non_null(strstr(t, "qsteer_shadow_scored_total 0\n"));
		assert_null(strstr(t, "shadow_agreement_ratio"));
		assert_null(strstr(t, "shadow_disagreements_total"));
		assert_null(strstr(t, "backend_shadow_"));
		free(t);
		qs_ctl_close(s);
	}
}

QS_TEST_MAIN(cmocka_unit_test(test_canary_pick_unchanged), cmocka_unit_test(test_json),
	     cmocka_unit_test(test_core_counts), cmocka_unit_test(test_ctl_shadow))
