/*
 * test_select.c - the RL phase's validation selection (trainer/train_select.h): a
 * candidate's gain is eval's own figure on the validation seeds, a worse candidate
 * is not kept, and restore brings back the kept parameters exactly.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ckpt.h"
#include "train_eval.h"
#include "train_select.h"

#define CKPT QSTEER_SOURCE_DIR "/policies/default-router.ckpt"
#define Q8   QSTEER_SOURCE_DIR "/policies/default-router.q8"

static void
load_shipped(struct qs_ppo_agent *ag)
{
	struct qs_ppo_cfg c;
	struct qs_ckpt_meta meta;
	char msg[512];

	qs_ppo_defaults(&c);
	assert_int_equal(qs_ckpt_peek(CKPT, &c, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_ppo_agent_init(ag, &c, 1, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_ckpt_load(CKPT, ag, &meta, msg, sizeof(msg)), QS_OK);
}

static void
test_select_keeps_best(void **state)
{
	struct qs_train_select sel;
	struct qs_train_eval *e = calloc(1, sizeof(*e));
	struct qs_ppo_agent ag;
	float *orig;
	char msg[512];
	int kept;
	double best, fl, gain;

	(void)state;
	assert_non_null(e);
	load_shipped(&ag);
	orig = malloc(ag.pi.n_params * sizeof(float));
	assert_non_null(orig);
	memcpy(orig, ag.pi.p, ag.pi.n_params * sizeof(float));
	assert_int_equal(qs_train_select_init(&sel, "static", 2, 2, &ag, msg, sizeof(msg)), QS_OK);
	assert_int_equal(sel.n_scen, 1);

	/* the first candidate is always kept, and its gain is eval's on the same seeds */
	assert_int_equal(qs_train_select_offer(&sel, &ag, 10, &kept, msg, sizeof(msg)), QS_OK);
	assert_int_equal(kept, 1);
	e->scenario = "static";
	e->q8 = Q8;
	e->ag = &ag;
	e->seeds = 2;
	e->threads = 2;
	e->seed = QS_SELECT_SEED0;
	assert_int_equal(qs_train_eval_run(e, msg, sizeof(msg)), QS_OK);
	best = e->rows[e->best_i].mean[e->prim];
	fl = e->rows[e->f_i].mean[e->prim];
	gain = 100.0 * (best - fl) / best;
	assert_true(fabs(gain - sel.gain[0]) < 1e-9);
	assert_true(fabs(sel.kept_score - (gain < 0 ? QS_SELECT_LOSS_WEIGHT : 1) * gain) < 1e-9);
	qs_train_eval_free(e);

	/* all scores equal: the argmax is the first eligible backend, a far worse router */
	memset(ag.pi.p, 0, ag.pi.n_params * sizeof(float));
	assert_int_equal(qs_train_select_offer(&sel, &ag, 20, &kept, msg, sizeof(msg)), QS_OK);
	assert_int_equal(kept, 0);
	assert_true(sel.gain[0] < sel.kept_gain[0] - 10.0);
	assert_int_equal(sel.kept_step, 10);
	qs_train_select_restore(&sel, &ag);
	assert_memory_equal(ag.pi.p, orig, ag.pi.n_params * sizeof(float));

	qs_train_select_free(&sel);
	qs_ppo_agent_free(&ag);
	free(orig);
	free(e);
}

static void
test_select_rejects(void **state)
{
	struct qs_train_select sel;
	struct qs_ppo_agent ag;
	char msg[512];

	(void)state;
	load_shipped(&ag);
	assert_int_not_equal(
	    qs_train_select_init(&sel, "static,,bursty", 2, 1, &ag, msg, sizeof(msg)), QS_OK);
	assert_non_null(strstr(msg, "'static,,bursty'"));
	assert_int_not_equal(qs_train_select_init(&sel, "static", 0, 1, &ag, msg, sizeof(msg)),
			     QS_OK);
	assert_non_null(strstr(msg, "--select-seeds 0"));
	assert_int_not_equal(
	    qs_train_select_init(&sel, "no-such-scenario", 2, 1, &ag, msg, sizeof(msg)), QS_OK);
	assert_non_null(strstr(msg, "no-such-scenario"));
	qs_ppo_agent_free(&ag);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_select_keeps_best),
	    cmocka_unit_test(test_select_rejects),
	};

	return cmocka_run_group_tests_name("trainer-select", tests, NULL, NULL);
}
