/*
 * test_worked_example.c - the worked example of docs/int8.md, run through the writer,
 * the loader and every kernel level this CPU supports. If the document and the code
 * ever disagree, this test fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "qs_test.h"

#include "qsteer/policy.h"

static const int8_t w1[] = {3, -2, 1, 5, -7, 4, 0, 2};
static const int32_t m1[] = {0x60000000, 0x40000000};
static const uint8_t s1[] = {35, 31};
static const int8_t w2[] = {2, -3};
static const int32_t b2[] = {7};

static struct qs_policy *
example_policy(int32_t bias1)
{
	int32_t b1[] = {100, bias1};
	struct qs_q8_desc d = {
	    .kind = QS_Q8_KIND_SCORER,
	    .schema = QS_SCHEMA_RAW,
	    .name = "int8.md example",
	    .n_layers = 2,
	    .layer = {{4, 2, w1, b1, m1, s1}, {2, 1, w2, b2, NULL, NULL}},
	};
	uint8_t buf[512];
	size_t len = 0;
	struct qs_policy *p = NULL;
	char msg[256];

	assert_int_equal(qs_q8_write(&d, buf, sizeof(buf), &len, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_policy_load(buf, len, "example", NULL, &p, msg, sizeof(msg)), QS_OK);
	return p;
}

static void
test_hidden_values(void **state)
{
	(void)state;
	/* The layer-1 numbers of the document, straight from the contract's helpers. */
	assert_int_equal(qs_int8_dot(w1, (const uint8_t[]){10, 0, 127, 64}, 4, 100), 577);
	assert_int_equal(qs_int8_dot(w1 + 4, (const uint8_t[]){10, 0, 127, 64}, 4, -50), 8);
	assert_int_equal(qs_int8_requant(577, m1[0], s1[0]), 27);
	assert_int_equal(qs_int8_requant(8, m1[1], s1[1]), 4);
	assert_int_equal(qs_int8_requant(-142, m1[1], s1[1]), 0);
}

static void
test_score_every_kernel(void **state)
{
	const uint8_t x[] = {10, 0, 127, 64};
	struct qs_policy *p = example_policy(-50), *q = example_policy(-200);
	int ran = 0;

	(void)state;
	for (int k = QS_KERNEL_SCALAR; k < QS_KERNEL__COUNT; k++) {
		int32_t out = 0;

		if (!qs_kernel_supported((enum qs_kernel)k))
			continue;
		assert_int_equal(qs_policy_run(p, (enum qs_kernel)k, x, 4, 1, &out), QS_OK);
		assert_int_equal(out, 49);
		/* acc[1] = -142 is cut to 0 by the ReLU: score = 7 + 2*27 = 61. */
		assert_int_equal(qs_policy_run(q, (enum qs_kernel)k, x, 4, 1, &out), QS_OK);
		assert_int_equal(out, 61);
		print_message("kernel %s: ok\n", qs_kernel_name((enum qs_kernel)k));
		ran++;
	}
	assert_true(ran >= 1);
	qs_policy_free(p);
	qs_policy_free(q);
}

QS_TEST_MAIN(cmocka_unit_test(test_hidden_values), cmocka_unit_test(test_score_every_kernel))
