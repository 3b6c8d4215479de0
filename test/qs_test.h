/*
 * qs_test.h - the one runner of qsteer's cmocka tests.
 *
 * QS_TEST_MAIN(cmocka_unit_test(a), ...) is a test program's main. Run with an
 * argument, the program runs only the tests whose names match it (cmocka's filter:
 * a name, or a glob with '*' and '?'), e.g. `build/test/sim/test-sim 'test_fallback*'`
 * while working on one; meson runs them with none, so all.
 */
#ifndef QSTEER_TEST_QS_TEST_H
#define QSTEER_TEST_QS_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Runs tests[0..n-1] as one group named after the program, with the group's setup
 * and teardown (NULL for none), filtered by argv[1] when given. */
static inline int
qs_test_run(const struct CMUnitTest *tests, size_t n, int argc, char **argv,
	    CMFixtureFunction setup, CMFixtureFunction teardown)
{
	const char *name = argc > 0 ? argv[0] : "tests";
	const char *slash = strrchr(name, '/');

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return _cmocka_run_group_tests(slash ? slash + 1 : name, tests, n, setup, teardown);
}

/* A new file from path, a mkstemp(3) template the call completes in place, open
 * for writing; the test removes it. */
static inline FILE *
qs_test_tmpfile(char *path)
{
	int fd = mkstemp(path);
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	return f;
}

/* main, with a group setup and teardown (NULL for none) around all the tests. */
#define QS_TEST_MAIN_GROUP(setup, teardown, ...)                                                   \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		const struct CMUnitTest qs_tests_[] = {__VA_ARGS__};                               \
                                                                                                   \
		return qs_test_run(qs_tests_, sizeof(qs_tests_) / sizeof(qs_tests_[0]), argc,      \
				   argv, setup, teardown);                                         \
	}

#define QS_TEST_MAIN(...) QS_TEST_MAIN_GROUP(NULL, NULL, __VA_ARGS__)

#endif
