/*
 * test_policy_slots.c - qsteer-dp's policy slots (dp/policy_slots.c) without DPDK:
 * load (active, shadow, canary), rollback and drain with their messages; every
 * refusal leaves the running set, the slots and the rollback target as they were;
 * the old set is freed only after the grace period; and an allocation failure
 * during any live action (the Nth allocation fails, for every N a script makes) is
 * an error for the control client with everything kept, never an exit: qsteer-dp
 * called rte_exit there before the slots became a module.
 *
 * Needs QS_TEST_POLICY_A / QS_TEST_POLICY_B (two .q8 files) and QS_TEST_CONFIG
 * (test/dp/replay.ini: backends gpu0..gpu7 with ids 10..17).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qs_test.h"

#include "policy_slots.h" /* dp/, private to qsteer-dp */

#define MAX_LIVE 16

/* The allocator and grace period the module is given. */
struct fake {
	int allocs;  /* asked for so far */
	int fail_at; /* this allocation (1-based) fails; 0: none */
	int failed;  /* allocations refused */
	void *live[MAX_LIVE];
	int n_live;
	int syncs;
	int published;
	const struct qs_pslots *ps;
};

static void *
f_alloc(void *ctx, size_t size)
{
	struct fake *f = ctx;
	void *p;

	if (++f->allocs == f->fail_at) {
		f->failed++;
		return NULL;
	}
	p = calloc(1, size);
	assert_non_null(p);
	assert_true(f->n_live < MAX_LIVE);
	f->live[f->n_live++] = p;
	return p;
}

static void
f_free(void *ctx, void *p)
{
	struct fake *f = ctx;
	int i;

	for (i = 0; i < f->n_live && f->live[i] != p; i++)
		;
	assert_true(i < f->n_live); /* one of ours, freed once */
	f->live[i] = f->live[--f->n_live];
	free(p);
}

static void
f_synchronize(void *ctx)
{
	struct fake *f = ctx;

	/* the new set is published and the old one not yet freed: a worker still in
	 * its burst reads valid memory */
	assert_int_equal(f->n_live, 2);
	assert_ptr_equal(qs_pslots_current(f->ps), f->ps->set);
	f->syncs++;
}

static void
f_published(void *ctx, const struct qs_pslots *ps)
{
	struct fake *f = ctx;

	assert_ptr_equal(ps, f->ps);
	assert_int_equal(f->n_live, 1); /* the old set is gone */
	f->published++;
}

static const struct qs_pslots_ops fake_ops = {
    .alloc = f_alloc,
    .free = f_free,
    .synchronize = f_synchronize,
    .published = f_published,
};

struct world {
	struct qs_dp_shared *shared;
	struct qs_pslots ps;
	struct fake f;
	const char *a, *b;
};

static const char *
env(const char *k)
{
	const char *v = getenv(k);

	if (!v) {
		fprintf(stderr, "%s not set (run through meson test)\n", k);
		exit(1);
	}
	return v;
}

static void
world_init(struct world *w)
{
	static struct qs_dp_config cfg;
	char msg[256];

	memset(w, 0, sizeof(*w));
	w->shared = calloc(1, sizeof(*w->shared));
	assert_non_null(w->shared);
	qs_dp_config_defaults(&cfg);
	assert_int_equal(qs_dp_config_load(env("QS_TEST_CONFIG"), &cfg, msg, sizeof(msg)), QS_OK);
	qs_dp_shared_init(w->shared, &cfg);
	qs_pslots_init(&w->ps, w->shared, &fake_ops, &w->f);
	w->f.ps = &w->ps;
	w->a = env("QS_TEST_POLICY_A");
	w->b = env("QS_TEST_POLICY_B");
}

static void
world_fini(struct world *w)
{
	qs_pslots_fini(&w->ps);
	assert_int_equal(w->f.n_live, 0);
	free(w->shared);
}

/* Everything an action may change, as the control thread and the workers see it. */
struct snap {
	const struct qs_dp_policy_set *set;
	struct qs_dp_policy_set set_val;
	uint64_t version, swaps, drain;
	int active, second, previous, used;
	struct qs_pslot slot[QS_PSLOTS_MAX];
};

static void
snap(const struct world *w, struct snap *s)
{
	int i;

	memset(s, 0, sizeof(*s));
	s->set = qs_pslots_current(&w->ps);
	if (s->set)
		s->set_val = *s->set;
	s->version = w->ps.version;
	s->swaps = w->ps.swaps;
	s->drain = w->shared->admin_drain;
	s->active = w->ps.active;
	s->second = w->ps.second;
	s->previous = w->ps.previous;
	for (i = 0; i < QS_PSLOTS_MAX; i++) {
		s->used += w->ps.slot[i].used;
		if (w->ps.slot[i].used)
			s->slot[i] = w->ps.slot[i];
	}
}

static void
assert_unchanged(const struct world *w, const struct snap *before)
{
	struct snap now;

	snap(w, &now);
	assert_ptr_equal(now.set, before->set);
	assert_memory_equal(&now.set_val, &before->set_val, sizeof(now.set_val));
	assert_int_equal(now.version, before->version);
	assert_int_equal(now.swaps, before->swaps);
	assert_int_equal(now.drain, before->drain);
	assert_int_equal(now.active, before->active);
	assert_int_equal(now.second, before->second);
	assert_int_equal(now.previous, before->previous);
	assert_int_equal(now.used, before->used);
	assert_memory_equal(now.slot, before->slot, sizeof(now.slot));
}

static const char *
src(const struct qs_pslot *sl)
{
	return sl ? sl->source : "-";
}

/* The view as one line: "MODE pct ACTIVE/SECOND/PREVIOUS vVERSION sSWAPS" */
static void
view_str(const struct world *w, char *buf, size_t len)
{
	struct qs_pslots_view v;

	qs_pslots_view(&w->ps, &v);
	snprintf(buf, len, "%s %u %s/%s/%s v%llu s%llu", qs_dp_mode_name(v.mode), v.canary_pct,
		 src(v.active), src(v.second), src(v.previous), (unsigned long long)v.version,
		 (unsigned long long)v.swaps);
}

static int
used_slots(const struct world *w)
{
	int i, n = 0;

	for (i = 0; i < QS_PSLOTS_MAX; i++)
		n += w->ps.slot[i].used;
	return n;
}

#define EXPECT_VIEW(w, fmt, ...)                                                                   \
	do {                                                                                       \
		char got_[1200], want_[1200];                                                      \
		view_str(w, got_, sizeof(got_));                                                   \
		snprintf(want_, sizeof(want_), fmt, __VA_ARGS__);                                  \
		assert_string_equal(got_, want_);                                                  \
	} while (0)

static void
test_sequence(void **state)
{
	struct world w;
	char msg[512], want[1200];

	(void)state;
	world_init(&w);
	assert_null(qs_pslots_current(&w.ps));
	/* the start-up policy */
	assert_int_equal(
	    qs_pslots_load(&w.ps, "builtin:lor", QS_DP_MODE_ACTIVE, 0, msg, sizeof(msg)), QS_OK);
	assert_string_equal(msg, "builtin:lor loaded as active");
	EXPECT_VIEW(&w, "active 0 %s/-/- v1 s0", "builtin:lor");
	assert_int_equal(w.f.syncs, 0); /* nothing was published before: no grace period */
	assert_null(qs_pslots_current(&w.ps)->active);
	assert_int_equal(qs_pslots_current(&w.ps)->builtin, QS_BASELINE_LEAST_REQUESTS);

	assert_int_equal(qs_pslots_load(&w.ps, w.a, QS_DP_MODE_ACTIVE, 0, msg, sizeof(msg)), QS_OK);
	snprintf(want, sizeof(want), "%s loaded as active", w.a);
	assert_string_equal(msg, want);
	EXPECT_VIEW(&w, "active 0 %s/-/builtin:lor v2 s1", w.a);
	assert_int_equal(w.f.syncs, 1);

	assert_int_equal(qs_pslots_load(&w.ps, w.b, QS_DP_MODE_SHADOW, 0, msg, sizeof(msg)), QS_OK);
	EXPECT_VIEW(&w, "shadow 0 %s/%s/builtin:lor v3 s2", w.a, w.b);
	assert_non_null(qs_pslots_current(&w.ps)->second);
	assert_int_equal(used_slots(&w), 3);

	/* a canary replaces the shadow: the shadow's slot is freed */
	assert_int_equal(qs_pslots_load(&w.ps, w.b, QS_DP_MODE_CANARY, 30, msg, sizeof(msg)),
			 QS_OK);
	snprintf(want, sizeof(want), "%s loaded as canary", w.b);
	assert_string_equal(msg, want);
	EXPECT_VIEW(&w, "canary 30 %s/%s/builtin:lor v4 s3", w.a, w.b);
	assert_int_equal(used_slots(&w), 3);

	assert_int_equal(qs_pslots_rollback(&w.ps, msg, sizeof(msg)), QS_OK);
	snprintf(want, sizeof(want), "%s dropped; %s alone is active", w.b, w.a);
	assert_string_equal(msg, want);
	EXPECT_VIEW(&w, "active 0 %s/-/builtin:lor v5 s4", w.a);
	assert_int_equal(used_slots(&w), 2);

	assert_int_equal(qs_pslots_rollback(&w.ps, msg, sizeof(msg)), QS_OK);
	assert_string_equal(msg, "rolled back to builtin:lor");
	EXPECT_VIEW(&w, "active 0 builtin:lor/-/%s v6 s5", w.a);

	assert_int_equal(qs_pslots_rollback(&w.ps, msg, sizeof(msg)), QS_OK);
	snprintf(want, sizeof(want), "rolled back to %s", w.a);
	assert_string_equal(msg, want);
	EXPECT_VIEW(&w, "active 0 %s/-/builtin:lor v7 s6", w.a);

	/* an active load while a shadow runs drops the shadow */
	assert_int_equal(qs_pslots_load(&w.ps, w.b, QS_DP_MODE_SHADOW, 0, msg, sizeof(msg)), QS_OK);
	assert_int_equal(
	    qs_pslots_load(&w.ps, "builtin:jsq", QS_DP_MODE_ACTIVE, 0, msg, sizeof(msg)), QS_OK);
	EXPECT_VIEW(&w, "active 0 builtin:jsq/-/%s v9 s8", w.a);
	assert_int_equal(used_slots(&w), 2);
	assert_int_equal(w.f.published, 9);
	assert_int_equal(w.f.syncs, 8);
	assert_int_equal(w.f.n_live, 1);

	qs_pslots_describe(&w.ps, msg, sizeof(msg));
	assert_string_equal(msg, "policy set 9: active builtin:jsq");
	world_fini(&w);
}

static void
test_refusals(void **state)
{
	struct world w;
	struct snap before;
	char msg[512];

	(void)state;
	world_init(&w);
	assert_int_equal(qs_pslots_rollback(&w.ps, msg, sizeof(msg)), QS_E_ARG);
	assert_string_equal(msg, "nothing to roll back to");
	assert_int_equal(
	    qs_pslots_load(&w.ps, "builtin:lor", QS_DP_MODE_ACTIVE, 0, msg, sizeof(msg)), QS_OK);
	snap(&w, &before);

	assert_int_equal(qs_pslots_load(&w.ps, w.b, QS_DP_MODE_SHADOW, 0, msg, sizeof(msg)),
			 QS_E_ARG);
	assert_string_equal(msg, "shadow needs an active .q8 policy to compare with");
	assert_unchanged(&w, &before);
	assert_int_equal(
	    qs_pslots_load(&w.ps, "builtin:nope", QS_DP_MODE_ACTIVE, 0, msg, sizeof(msg)),
	    QS_E_ARG);
	assert_string_equal(msg, "builtin:nope: unknown builtin policy");
	assert_unchanged(&w, &before);
	assert_true(qs_pslots_load(&w.ps, "/nonexistent/x.q8", QS_DP_MODE_ACTIVE, 0, msg,
				   sizeof(msg)) != QS_OK);
	assert_non_null(strstr(msg, "/nonexistent/x.q8"));
	assert_unchanged(&w, &before);
	assert_int_equal(qs_pslots_rollback(&w.ps, msg, sizeof(msg)), QS_E_ARG);
	assert_unchanged(&w, &before);

	assert_int_equal(qs_pslots_load(&w.ps, w.a, QS_DP_MODE_ACTIVE, 0, msg, sizeof(msg)), QS_OK);
	snap(&w, &before);
	assert_int_equal(qs_pslots_load(&w.ps, w.b, QS_DP_MODE_CANARY, 101, msg, sizeof(msg)),
			 QS_E_ARG);
	assert_string_equal(msg, "canary percentage 101 is above 100");
	assert_int_equal(
	    qs_pslots_load(&w.ps, "builtin:jsq", QS_DP_MODE_SHADOW, 0, msg, sizeof(msg)), QS_E_ARG);
	assert_string_equal(msg, "shadow takes a .q8 policy, not a builtin");
	assert_unchanged(&w, &before);
	world_fini(&w);
}

static void
test_drain(void **state)
{
	struct world w;
	char msg[256];

	(void)state;
	world_init(&w);
	assert_int_equal(qs_pslots_drain(&w.ps, 13, true, msg, sizeof(msg)), QS_OK);
	assert_string_equal(msg, "backend gpu3 (id 13) drained");
	assert_int_equal(w.shared->admin_drain, 1u << 3);
	assert_int_equal(qs_pslots_drain(&w.ps, 10, true, msg, sizeof(msg)), QS_OK);
	assert_int_equal(w.shared->admin_drain, (1u << 3) | 1u);
	assert_int_equal(qs_pslots_drain(&w.ps, 13, false, msg, sizeof(msg)), QS_OK);
	assert_string_equal(msg, "backend gpu3 (id 13) undrained");
	assert_int_equal(w.shared->admin_drain, 1u);
	assert_int_equal(qs_pslots_drain(&w.ps, 99, true, msg, sizeof(msg)), QS_E_ARG);
	assert_string_equal(msg, "no backend with id 99");
	assert_int_equal(w.shared->admin_drain, 1u);
	world_fini(&w);
}

/* One step of an operator's session. */
enum act { LOAD, ROLLBACK };
struct step {
	enum act act;
	int pol; /* 0: builtin:lor, 1: A, 2: B, 3: builtin:jsq */
	enum qs_dp_mode mode;
	uint32_t pct;
};

static const struct step script[] = {
    {LOAD, 0, QS_DP_MODE_ACTIVE, 0},  /* start-up */
    {LOAD, 1, QS_DP_MODE_ACTIVE, 0},  /* qsteerctl policy load A */
    {LOAD, 2, QS_DP_MODE_SHADOW, 0},  /* ... --shadow B */
    {LOAD, 2, QS_DP_MODE_CANARY, 25}, /* ... --canary 25 B */
    {ROLLBACK, 0, 0, 0},	      /* drops the canary */
    {LOAD, 3, QS_DP_MODE_ACTIVE, 0},  /* a builtin */
    {ROLLBACK, 0, 0, 0},	      /* back to A */
    {LOAD, 2, QS_DP_MODE_ACTIVE, 0},
    {LOAD, 1, QS_DP_MODE_SHADOW, 0},
    {ROLLBACK, 0, 0, 0},
};
#define N_STEPS (sizeof(script) / sizeof(script[0]))

static int
run_step(struct world *w, const struct step *s, char *msg, size_t msglen)
{
	const char *pol[] = {"builtin:lor", w->a, w->b, "builtin:jsq"};

	if (s->act == ROLLBACK)
		return qs_pslots_rollback(&w->ps, msg, msglen);
	return qs_pslots_load(&w->ps, pol[s->pol], s->mode, s->pct, msg, msglen);
}

/*
 * The script once with no failure: the views after each step. Then, for every N up
 * to the number of allocations the script makes, the script again with the Nth
 * allocation failing: the step that asks for it is refused (QS_E_NOMEM, the reason
 * for the client), with no grace period waited for, the published set, slots,
 * rollback target and counters exactly as before; the same step tried again
 * succeeds, and the session ends as the unfailed one did.
 */
static void
test_nth_allocation_fails(void **state)
{
	struct world w;
	char msg[512], views[N_STEPS][1200], v[1200];
	int total, n;
	size_t i;

	(void)state;
	world_init(&w);
	for (i = 0; i < N_STEPS; i++) {
		assert_int_equal(run_step(&w, &script[i], msg, sizeof(msg)), QS_OK);
		view_str(&w, views[i], sizeof(views[i]));
	}
	total = w.f.allocs;
	assert_true(total >= (int)N_STEPS); /* every step publishes a new set */
	world_fini(&w);

	for (n = 1; n <= total; n++) {
		int refused = 0;

		world_init(&w);
		w.f.fail_at = n;
		for (i = 0; i < N_STEPS; i++) {
			struct snap before;
			int syncs = w.f.syncs, published = w.f.published, rc;

			snap(&w, &before);
			rc = run_step(&w, &script[i], msg, sizeof(msg));
			if (w.f.failed > refused) {
				refused++;
				assert_int_equal(rc, QS_E_NOMEM);
				assert_string_equal(msg, "out of memory publishing a policy set; "
							 "the running one stays");
				assert_unchanged(&w, &before);
				assert_int_equal(w.f.syncs, syncs);
				assert_int_equal(w.f.published, published);
				assert_int_equal(w.f.n_live, i == 0 ? 0 : 1);
				rc = run_step(&w, &script[i], msg, sizeof(msg));
			}
			assert_int_equal(rc, QS_OK);
			view_str(&w, v, sizeof(v));
			/* versions count publications, the same ones as unfailed */
			assert_string_equal(v, views[i]);
		}
		assert_int_equal(refused, 1);
		world_fini(&w);
	}
}

QS_TEST_MAIN(cmocka_unit_test(test_sequence), cmocka_unit_test(test_refusals),
	     cmocka_unit_test(test_drain), cmocka_unit_test(test_nth_allocation_fails))
