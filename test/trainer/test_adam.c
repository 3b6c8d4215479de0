/*
 * test_adam.c - Adam against a step computed by hand (in double), gradient-norm
 * clipping, and the learning-rate schedules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "qs_test.h"
#include <math.h>
#include <string.h>

#include "adam.h"

static void
test_two_steps(void **state)
{
	struct qs_adam_cfg c;
	struct qs_adam a;
	float p[3] = {1, -2, 0.5f}, g1[3] = {0.1f, -0.2f, 0.3f}, g2[3] = {0.2f, 0.1f, -0.1f};
	double e[3], m[3], v[3];

	(void)state;
	qs_adam_defaults(&c);
	c.lr = 0.01f;
	c.max_grad_norm = 0;
	c.sched = QS_ADAM_CONSTANT;
	assert_int_equal(qs_adam_init(&a, &c, 3, NULL, 0), QS_OK);
	for (int i = 0; i < 3; i++) {
		double g = g1[i];

		m[i] = 0.1 * g;
		v[i] = 0.001 * g * g;
		/* step 1: m^ = g, v^ = g^2, so the step is lr * sign(g) (up to eps) */
		e[i] = p[i] - 0.01 * (m[i] / 0.1) / (sqrt(v[i] / 0.001) + 1e-8);
	}
	qs_adam_step(&a, p, g1);
	for (int i = 0; i < 3; i++)
		assert_true(fabs(p[i] - e[i]) < 1e-6);
	assert_true(fabs(p[0] - (1 - 0.01)) < 1e-6); /* the sign step, spelled out */
	for (int i = 0; i < 3; i++) {
		double g = g2[i];

		m[i] = 0.9 * m[i] + 0.1 * g;
		v[i] = 0.999 * v[i] + 0.001 * g * g;
		e[i] = e[i] - 0.01 * (m[i] / (1 - 0.81)) / (sqrt(v[i] / (1 - 0.998001)) + 1e-8);
	}
	qs_adam_step(&a, p, g2);
	for (int i = 0; i < 3; i++)
		assert_true(fabs(p[i] - e[i]) < 1e-6);
	assert_int_equal(a.t, 2);
	qs_adam_free(&a);
}

static void
test_clip(void **state)
{
	struct qs_adam_cfg c;
	struct qs_adam a;
	float p[2] = {0, 0}, g[2] = {3, 4};

	(void)state;
	qs_adam_defaults(&c);
	c.max_grad_norm = 1.0f;
	assert_int_equal(qs_adam_init(&a, &c, 2, NULL, 0), QS_OK);
	assert_true(fabsf(qs_adam_step(&a, p, g) - 5.0f) < 1e-6f); /* norm before clipping */
	assert_true(fabsf(g[0] - 0.6f) < 1e-6f && fabsf(g[1] - 0.8f) < 1e-6f);
	assert_true(fabsf(a.m[0] - 0.06f) < 1e-7f); /* the moments saw the clipped gradient */
	qs_adam_free(&a);
}

static void
test_schedule(void **state)
{
	struct qs_adam_cfg c;

	(void)state;
	qs_adam_defaults(&c);
	c.lr = 1.0f;
	c.total_steps = 100;
	c.sched = QS_ADAM_LINEAR;
	c.min_frac = 0.1f;
	assert_true(fabsf(qs_adam_lr(&c, 0) - 1.0f) < 1e-6f);
	assert_true(fabsf(qs_adam_lr(&c, 50) - 0.5f) < 1e-6f);
	assert_true(fabsf(qs_adam_lr(&c, 95) - 0.1f) < 1e-6f);
	assert_true(fabsf(qs_adam_lr(&c, 1000) - 0.1f) < 1e-6f);
	c.sched = QS_ADAM_COSINE;
	c.min_frac = 0;
	assert_true(fabsf(qs_adam_lr(&c, 0) - 1.0f) < 1e-6f);
	assert_true(fabsf(qs_adam_lr(&c, 50) - 0.5f) < 1e-6f);
	assert_true(fabsf(qs_adam_lr(&c, 100)) < 1e-6f);
	c.sched = QS_ADAM_CONSTANT;
	assert_true(qs_adam_lr(&c, 77) == 1.0f);
}

static void
test_bad_config(void **state)
{
	struct qs_adam_cfg c;
	struct qs_adam a;
	char msg[128];

	(void)state;
	qs_adam_defaults(&c);
	c.beta2 = 1.0f;
	assert_int_equal(qs_adam_init(&a, &c, 2, msg, sizeof(msg)), QS_E_ARG);
	assert_non_null(strstr(msg, "beta2"));
}

QS_TEST_MAIN(cmocka_unit_test(test_two_steps), cmocka_unit_test(test_clip),
	     cmocka_unit_test(test_schedule), cmocka_unit_test(test_bad_config))
