/*
 * test_opt.c - include/qsteer/opt.h: every row kind (flags, help, strings, numbers
 * with their ranges, functions, buffers, choices, repeatable strings, positional
 * words, the stop at a command), "--name=value", `.seen`, each refusal's message
 * and return value, qs_opt_parse_or_usage and qs_opt_dispatch.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include "qs_test.h"

#include <float.h>
#include <unistd.h>

#include "qsteer/opt.h"

/* ---- stderr captured into a buffer ------------------------------------------------- */

static FILE *cap_file;
static int cap_saved = -1;
static char cap_buf[4096];

static void
cap_start(void)
{
	fflush(stderr);
	cap_file = tmpfile();
	assert_non_null(cap_file);
	cap_saved = dup(2);
	assert_true(cap_saved >= 0);
	assert_true(dup2(fileno(cap_file), 2) >= 0);
}

/* What was written to stderr since cap_start. */
static const char *
cap_end(void)
{
	size_t n;

	fflush(stderr);
	assert_true(dup2(cap_saved, 2) >= 0);
	close(cap_saved);
	rewind(cap_file);
	n = fread(cap_buf, 1, sizeof(cap_buf) - 1, cap_file);
	cap_buf[n] = 0;
	fclose(cap_file);
	return cap_buf;
}

/* Parse the words (NULL-ended, after a program name) against t; the outcome. */
static int
parse_words(const struct qs_opt *t, void *ctx, const char **msg, ...)
{
	char *argv[32] = {"prog"};
	int argc = 1, rc;
	va_list ap;
	const char *w;

	va_start(ap, msg);
	while ((w = va_arg(ap, const char *)) != NULL)
		argv[argc++] = (char *)w;
	va_end(ap);
	cap_start();
	rc = qs_opt_parse("prog", t, argc, argv, 1, NULL, ctx);
	*msg = cap_end();
	return rc;
}

/* ---- the typed rows ------------------------------------------------------------------ */

struct o {
	int flag;
	const char *str;
	uint64_t u64;
	uint32_t u32;
	double d;
	char buf[8];
	int choice;
	const char *strs[3];
	unsigned n_strs;
	const char *args[2];
	unsigned n_args;
	const char *seen;
	int fn_calls;
	const char *fn_value;
};

static int
fn_even(const struct qs_opt *opt, const char *v, void *ctx)
{
	struct o *o = ctx;

	o->fn_calls++;
	o->fn_value = v;
	if (strlen(v) % 2) {
		fprintf(stderr, "prog: %s %s: odd\n", opt->name, v);
		return -1;
	}
	return 0;
}

static const char *const colours[] = {"red", "green", "blue", NULL};

#define TABLE(o)                                                                                   \
	const struct qs_opt t[] = {                                                                \
	    QS_OPT_FLAG("--flag", &(o).flag, 7),                                                   \
	    QS_OPT_FLAG("--no-flag", &(o).flag, 0),                                                \
	    QS_OPT_HELP_FLAG("--help"),                                                            \
	    QS_OPT_STR("--str", &(o).str, .seen = &(o).seen),                                      \
	    QS_OPT_U64("--u64", &(o).u64, 3, 1000, "3..1000"),                                     \
	    QS_OPT_U32("--u32", &(o).u32, 0, 9, NULL),                                             \
	    QS_OPT_DOUBLE("--d", &(o).d, DBL_TRUE_MIN, 2.5, "above 0, up to 2.5"),                 \
	    QS_OPT_FN("--even", fn_even),                                                          \
	    QS_OPT_BUF("--buf", (o).buf, "empty or too long"),                                     \
	    QS_OPT_CHOICE("--colour", &(o).choice, colours, "red, green or blue"),                 \
	    QS_OPT_STRS("--key", (o).strs, &(o).n_strs, 3, "at most 3 keys"),                      \
	    QS_OPT_ARGS((o).args, &(o).n_args, 0, 2),                                              \
	    QS_OPT_END,                                                                            \
	}

static void
test_values(void **state)
{
	struct o o = {0};
	const char *m;

	TABLE(o);
	(void)state;
	assert_int_equal(parse_words(t, &o, &m, "--flag", "--str", "s", "--u64", "1000", "--u32",
				     "0", "--d", "2.5", "--even", "ab", "--buf", "1234567",
				     "--colour", "blue", "a0", "--key", "k1", "a1", "--key", "k2",
				     NULL),
			 QS_OPT_OK);
	assert_string_equal(m, "");
	assert_int_equal(o.flag, 7);
	assert_string_equal(o.str, "s");
	assert_string_equal(o.seen, "--str");
	assert_int_equal(o.u64, 1000);
	assert_int_equal(o.u32, 0);
	assert_true(o.d == 2.5);
	assert_int_equal(o.fn_calls, 1);
	assert_string_equal(o.buf, "1234567");
	assert_int_equal(o.choice, 2);
	assert_int_equal(o.n_strs, 2);
	assert_string_equal(o.strs[0], "k1");
	assert_string_equal(o.strs[1], "k2");
	assert_int_equal(o.n_args, 2);
	assert_string_equal(o.args[0], "a0");
	assert_string_equal(o.args[1], "a1");

	/* a later flag row wins; nothing given leaves seen NULL */
	memset(&o, 0, sizeof(o));
	assert_int_equal(parse_words(t, &o, &m, "--flag", "--no-flag", NULL), QS_OPT_OK);
	assert_int_equal(o.flag, 0);
	assert_null(o.seen);
}

static void
test_equals(void **state)
{
	struct o o = {0};
	const char *m;

	TABLE(o);
	(void)state;
	assert_int_equal(parse_words(t, &o, &m, "--u64=7", "--str=a=b", "--buf=", NULL),
			 QS_OPT_E_VALUE);
	assert_int_equal(o.u64, 7);
	assert_string_equal(o.str, "a=b");
	assert_string_equal(m, "prog: --buf : empty or too long\n");
	assert_int_equal(parse_words(t, &o, &m, "--flag=1", NULL), QS_OPT_E_NEEDS);
	assert_string_equal(m, "prog: --flag takes no value\n");
	assert_int_equal(parse_words(t, &o, &m, "--nope=1", NULL), QS_OPT_E_UNKNOWN);
	assert_string_equal(m, "prog: unknown option --nope\n");
}

static void
test_refusals(void **state)
{
	static const struct {
		const char *opt, *value, *msg;
	} bad[] = {
	    {"--u64", "2", "prog: --u64 2: 3..1000\n"},
	    {"--u64", "1001", "prog: --u64 1001: 3..1000\n"},
	    {"--u64", "0x10", "prog: --u64 0x10: 3..1000\n"},
	    {"--u64", "+5", "prog: --u64 +5: 3..1000\n"},
	    {"--u64", "5 ", "prog: --u64 5 : 3..1000\n"},
	    {"--u64", "99999999999999999999", "prog: --u64 99999999999999999999: 3..1000\n"},
	    {"--u32", "10", ""}, /* no message of its own: the program's usage */
	    {"--d", "0", "prog: --d 0: above 0, up to 2.5\n"},
	    {"--d", "nan", "prog: --d nan: above 0, up to 2.5\n"},
	    {"--d", "1x", "prog: --d 1x: above 0, up to 2.5\n"},
	    {"--even", "abc", "prog: --even abc: odd\n"},
	    {"--buf", "12345678", "prog: --buf 12345678: empty or too long\n"},
	    {"--colour", "Red", "prog: --colour Red: red, green or blue\n"},
	};
	const char *m;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct o o = {0};

		TABLE(o);
		o.u64 = 42;
		assert_int_equal(parse_words(t, &o, &m, bad[i].opt, bad[i].value, NULL),
				 QS_OPT_E_VALUE);
		assert_string_equal(m, bad[i].msg);
		assert_int_equal(o.u64, 42); /* a refused value changes nothing */
	}
}

static void
test_words(void **state)
{
	struct o o = {0};
	const char *m;

	TABLE(o);
	(void)state;
	/* the first refusal ends the parse */
	assert_int_equal(parse_words(t, &o, &m, "--nope", "--u64", "1", NULL), QS_OPT_E_UNKNOWN);
	assert_string_equal(m, "prog: unknown option --nope\n");
	/* an unknown last word is unknown, not short of a value */
	assert_int_equal(parse_words(t, &o, &m, "--nope", NULL), QS_OPT_E_UNKNOWN);
	assert_int_equal(parse_words(t, &o, &m, "--u64", NULL), QS_OPT_E_NEEDS);
	assert_string_equal(m, "prog: --u64 needs a value\n");
	/* a value is the next word, whatever it looks like */
	assert_int_equal(parse_words(t, &o, &m, "--str", "--flag", NULL), QS_OPT_OK);
	assert_string_equal(o.str, "--flag");
	assert_int_equal(o.flag, 0);
	/* help stops the parse: later words are not read */
	assert_int_equal(parse_words(t, &o, &m, "--help", "--nope", NULL), QS_OPT_HELP);
	assert_string_equal(m, "");
	/* positional words beyond the row's room */
	memset(&o, 0, sizeof(o));
	assert_int_equal(parse_words(t, &o, &m, "a", "b", "c", NULL), QS_OPT_E_EXTRA);
	assert_string_equal(m, "prog: unexpected argument 'c'\n");
	/* a repeatable option beyond its room */
	assert_int_equal(
	    parse_words(t, &o, &m, "--key", "1", "--key", "2", "--key", "3", "--key", "4", NULL),
	    QS_OPT_E_VALUE);
	assert_string_equal(m, "prog: --key 4: at most 3 keys\n");
	assert_int_equal(o.n_strs, 3);
}

static void
test_positional(void **state)
{
	int flag = 0, at = -1;
	const char *pos = NULL, *m;
	unsigned n = 0;
	const struct qs_opt none[] = {QS_OPT_FLAG("--f", &flag, 1), QS_OPT_ARGS(NULL, &n, 0, 0),
				      QS_OPT_END};
	const struct qs_opt stop[] = {QS_OPT_FLAG("--f", &flag, 1), QS_OPT_STOP(&at), QS_OPT_END};
	const struct qs_opt plain[] = {QS_OPT_FLAG("--f", &flag, 1), QS_OPT_END};
	char *argv[] = {"prog", "--f", "cmd", "--g", "x", NULL};

	(void)state;
	/* ARGS with no room: every positional word is refused */
	assert_int_equal(parse_words(none, NULL, &m, "w", NULL), QS_OPT_E_EXTRA);
	assert_string_equal(m, "prog: unexpected argument 'w'\n");
	/* STOP: the first positional word ends the parse, its index returned */
	assert_int_equal(qs_opt_parse("prog", stop, 5, argv, 1, NULL, NULL), QS_OPT_OK);
	assert_int_equal(flag, 1);
	assert_int_equal(at, 2);
	assert_int_equal(qs_opt_parse("prog", stop, 2, argv, 1, NULL, NULL), QS_OPT_OK);
	assert_int_equal(at, 2); /* none: argc */
	/* the older single positional: the last one wins */
	cap_start();
	assert_int_equal(qs_opt_parse("prog", plain, 3, argv, 1, &pos, NULL), QS_OPT_OK);
	assert_string_equal(pos, "cmd");
	/* without any: a word is looked up as an option */
	assert_int_equal(qs_opt_parse("prog", plain, 3, argv, 1, NULL, NULL), QS_OPT_E_UNKNOWN);
	assert_string_equal(cap_end(), "prog: unknown option cmd\n");
}

/* A flag row with fn: called (value NULL) where it stands among the options. */
static int
fn_order(const struct qs_opt *opt, const char *v, void *ctx)
{
	char *order = ctx;

	strcat(order, v ? v : opt->name);
	return !strcmp(opt->name, "--refuse") ? -1 : 0;
}

static void
test_flag_fn(void **state)
{
	char order[64] = "";
	const struct qs_opt t[] = {
	    QS_OPT_FLAG("--a", NULL, 1, .fn = fn_order),
	    QS_OPT_FN("--v", fn_order),
	    QS_OPT_FLAG("--refuse", NULL, 1, .fn = fn_order),
	    QS_OPT_END,
	};
	const char *m;

	(void)state;
	assert_int_equal(parse_words(t, order, &m, "--v", "x", "--a", "--v", "y", NULL), QS_OPT_OK);
	assert_string_equal(order, "x--ay");
	assert_int_equal(parse_words(t, order, &m, "--refuse", "--a", NULL), QS_OPT_E_VALUE);
	assert_string_equal(order, "x--ay--refuse");
}

static int
or_usage(const struct qs_opt *t, const char *word, const char **msg)
{
	char *argv[] = {"prog", (char *)word, NULL};
	int rc;

	cap_start();
	rc = qs_opt_parse_or_usage("prog", t, word ? 2 : 1, argv, 1, NULL, NULL);
	*msg = cap_end();
	return rc;
}

static void
usage_stub(FILE *f)
{
	fprintf(f, "usage: prog\n");
}

static void
test_or_usage(void **state)
{
	uint64_t v = 0;
	unsigned n = 0;
	const struct qs_opt t[] = {QS_OPT_U64("--v", &v, 0, 5, "0..5"), QS_OPT_HELP_FLAG("-h"),
				   QS_OPT_ARGS(NULL, &n, 0, 0), QS_OPT_END};
	const char *m;
	char *argv[] = {"prog", "--v", "9", NULL};

	(void)state;
	assert_int_equal(or_usage(t, NULL, &m), -1);
	/* help: the usage goes to stdout (not captured here) */
	fflush(stdout);
	cap_start();
	assert_int_equal(qs_opt_parse_or_usage("prog", t, 2, (char *[]){"prog", "-h", NULL}, 1,
					       NULL, usage_stub),
			 0);
	assert_string_equal(cap_end(), "");
	/* a refused value: its message alone, 2 */
	cap_start();
	assert_int_equal(qs_opt_parse_or_usage("prog", t, 3, argv, 1, NULL, usage_stub), 2);
	assert_string_equal(cap_end(), "prog: --v 9: 0..5\n");
	/* an unknown option, a stray word: the message and the usage, 2 */
	cap_start();
	assert_int_equal(qs_opt_parse_or_usage("prog", t, 2, (char *[]){"prog", "--x", NULL}, 1,
					       NULL, usage_stub),
			 2);
	assert_string_equal(cap_end(), "prog: unknown option --x\nusage: prog\n");
	cap_start();
	assert_int_equal(
	    qs_opt_parse_or_usage("prog", t, 2, (char *[]){"prog", "w", NULL}, 1, NULL, usage_stub),
	    2);
	assert_string_equal(cap_end(), "prog: unexpected argument 'w'\nusage: prog\n");
	assert_int_equal(qs_opt_u64_in("12", 12, 12, &v), 0);
	assert_int_equal(v, 12);
	assert_int_equal(qs_opt_u64_in("13", 0, 12, &v), -1);
	assert_int_equal(v, 12);
	assert_int_equal(qs_opt_u64_in("", 0, 12, &v), -1);
}

/* ---- subcommands --------------------------------------------------------------------- */

static int
cmd_one(int argc, char **argv, void *ctx)
{
	*(int *)ctx = 100 + argc;
	return strcmp(argv[0], "one") ? 9 : 3;
}

static void
test_dispatch(void **state)
{
	static const struct qs_opt_cmd cmds[] = {{"one", cmd_one}, {NULL, NULL}};
	int seen = 0;

	(void)state;
	/* the command gets its own name as argv[0] and the words after it */
	assert_int_equal(qs_opt_dispatch("prog", cmds, 4, (char *[]){"prog", "one", "a", "b"}, 1,
					 usage_stub, &seen),
			 3);
	assert_int_equal(seen, 103);
	/* from a later word: a command after global options */
	assert_int_equal(qs_opt_dispatch("prog", cmds, 3, (char *[]){"prog", "--g", "one"}, 2,
					 usage_stub, &seen),
			 3);
	assert_int_equal(seen, 101);
	cap_start();
	assert_int_equal(
	    qs_opt_dispatch("prog", cmds, 2, (char *[]){"prog", "two"}, 1, usage_stub, &seen), 2);
	assert_string_equal(cap_end(), "prog: unknown command 'two'\nusage: prog\n");
	cap_start();
	assert_int_equal(qs_opt_dispatch("prog", cmds, 1, (char *[]){"prog"}, 1, usage_stub, &seen),
			 2);
	assert_string_equal(cap_end(), "usage: prog\n");
	fflush(stdout);
	cap_start();
	assert_int_equal(
	    qs_opt_dispatch("prog", cmds, 2, (char *[]){"prog", "--help"}, 1, usage_stub, &seen),
	    0);
	assert_string_equal(cap_end(), ""); /* the usage went to stdout */
}

QS_TEST_MAIN(cmocka_unit_test(test_values), cmocka_unit_test(test_equals),
	     cmocka_unit_test(test_refusals), cmocka_unit_test(test_words),
	     cmocka_unit_test(test_positional), cmocka_unit_test(test_or_usage),
	     cmocka_unit_test(test_dispatch), cmocka_unit_test(test_flag_fn))
