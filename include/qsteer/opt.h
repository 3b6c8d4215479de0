/*
 * opt.h - the command-line programs' one declarative option table: each option is
 * a row (name, kind, where it goes, its range, what an invalid value's message
 * says), and one loop parses argv against the table. Every qsteer program uses it.
 *
 *	static const struct qs_opt opts[] = {
 *		QS_OPT_FLAG("--json", &o.json, 1),
 *		QS_OPT_U64("--seed", &o.seed, 0, UINT64_MAX, "not a valid count"),
 *		QS_OPT_STRS("--pubkey", o.keys, &o.n_keys, 8, "at most 8 keys"),
 *		QS_OPT_ARGS(o.files, &o.n_files, 1, 2),
 *		QS_OPT_END,
 *	};
 *	rc = qs_opt_parse("qsteer-x", opts, argc, argv, 2, NULL, &o);
 *
 * Messages are "PROG: NAME VALUE: BAD" for a value out of range or malformed
 * (nothing when the row's bad is NULL: the program prints its usage instead),
 * "PROG: NAME needs a value", "PROG: NAME takes no value", "PROG: unknown option
 * NAME", "PROG: unexpected argument 'WORD'" and "PROG: too few arguments"; the
 * return value says which, so each program keeps its own exit status and usage
 * text (--help is the source of the man pages, docs/man/mkman.py, and is written
 * by hand). qs_opt_parse_or_usage() is the common choice: 0 after help, 2 after
 * a refusal.
 *
 * Argument words are read in order. A word that is a flag's name sets the flag,
 * and calls the row's fn when it has one, in the order given (a help flag ends
 * the parse with QS_OPT_HELP). A word not starting with '-' is a
 * positional argument: it goes to the ARGS row (or, the older way, to *positional,
 * the last one winning); a STOP row ends the parse at it instead (what follows is
 * a subcommand's); a table with none of the three looks it up as an option name.
 * Any other word names an option whose value is the next word, or the text after
 * '=' in "--name=value"; an unknown name is refused before a missing value is.
 * Numbers are whole words: decimal unsigned integers without sign or blanks, or
 * strtod's doubles, within [min, max].
 *
 * Any row may record that it was given: `.seen = &p` (a trailing designator in the
 * row macro) sets p to the row's name, so a program can tell "not given" from a
 * default and name the option in a later message.
 *
 * Subcommands: a NULL-ended table of struct qs_opt_cmd, and qs_opt_dispatch()
 * runs the one argv[first] names (or prints the usage for none, -h, --help, or an
 * unknown word); a STOP row finds where a command starts after global options.
 *
 * Header-only (static inline) so that any program, whatever libraries it links,
 * can adopt it. test/tools/test_opt.c tests every kind.
 */
#ifndef QSTEER_OPT_H
#define QSTEER_OPT_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum qs_opt_kind {
	QS_OPT_K_END = 0,
	QS_OPT_K_FLAG,	 /* int *dst = flag (when dst), then fn(opt, NULL, ctx) (when fn) */
	QS_OPT_K_HELP,	 /* stops the parse: QS_OPT_HELP */
	QS_OPT_K_STR,	 /* const char **dst = the value */
	QS_OPT_K_U64,	 /* uint64_t *dst */
	QS_OPT_K_U32,	 /* uint32_t *dst (max at most UINT32_MAX) */
	QS_OPT_K_DOUBLE, /* double *dst */
	QS_OPT_K_FN,	 /* fn(opt, value, ctx): 0, or nonzero when refused (fn said why) */
	QS_OPT_K_BUF,	 /* char dst[umax]: a copy of the value; empty or too long: refused */
	QS_OPT_K_CHOICE, /* int *dst = the value's index in choices (NULL-ended) */
	QS_OPT_K_STRS,	 /* repeatable: const char *dst[umax], *count values so far */
	QS_OPT_K_ARGS,	 /* positional words: const char *dst[umax], *count, umin at least */
	QS_OPT_K_STOP,	 /* the first positional word ends the parse: int *dst = its index */
};

struct qs_opt;
typedef int (*qs_opt_fn)(const struct qs_opt *opt, const char *value, void *ctx);

struct qs_opt {
	const char *name;
	enum qs_opt_kind kind;
	void *dst;
	uint64_t umin, umax; /* U64, U32; umax: BUF's size, STRS' and ARGS' capacity */
	double dmin, dmax;   /* DOUBLE */
	int flag;	     /* FLAG: the value stored */
	const char *bad;     /* the message after "PROG: NAME VALUE: " (NULL: none) */
	qs_opt_fn fn;
	const char *const *choices; /* CHOICE */
	unsigned *count;	    /* STRS, ARGS */
	const char **seen;	    /* when given: the row's name (optional, any row) */
};

/* The row macros; trailing designators (`.seen = &p`) are added to the row. */
#define QS_OPT_FLAG(n, d, v, ...)                                                                  \
	{                                                                                          \
		.name = (n), .kind = QS_OPT_K_FLAG, .dst = (d), .flag = (v), __VA_ARGS__           \
	}
#define QS_OPT_HELP_FLAG(n)                                                                        \
	{                                                                                          \
		.name = (n), .kind = QS_OPT_K_HELP                                                 \
	}
#define QS_OPT_STR(n, d, ...)                                                                      \
	{                                                                                          \
		.name = (n), .kind = QS_OPT_K_STR, .dst = (d), __VA_ARGS__                         \
	}
#define QS_OPT_U64(n, d, lo, hi, b, ...)                                                           \
	{                                                                                          \
		.name = (n), .kind = QS_OPT_K_U64, .dst = (d), .umin = (lo), .umax = (hi),         \
		.bad = (b), __VA_ARGS__                                                            \
	}
#define QS_OPT_U32(n, d, lo, hi, b, ...)                                                           \
	{                                                                                          \
		.name = (n), .kind = QS_OPT_K_U32, .dst = (d), .umin = (lo), .umax = (hi),         \
		.bad = (b), __VA_ARGS__                                                            \
	}
#define QS_OPT_DOUBLE(n, d, lo, hi, b, ...)                                                        \
	{                                                                                          \
		.name = (n), .kind = QS_OPT_K_DOUBLE, .dst = (d), .dmin = (lo), .dmax = (hi),      \
		.bad = (b), __VA_ARGS__                                                            \
	}
#define QS_OPT_FN(n, f, ...)                                                                       \
	{                                                                                          \
		.name = (n), .kind = QS_OPT_K_FN, .fn = (f), __VA_ARGS__                           \
	}
#define QS_OPT_BUF(n, d, b, ...)                                                                   \
	{                                                                                          \
		.name = (n), .kind = QS_OPT_K_BUF, .dst = (d), .umax = sizeof(d), .bad = (b),      \
		__VA_ARGS__                                                                        \
	}
#define QS_OPT_CHOICE(n, d, c, b, ...)                                                             \
	{                                                                                          \
		.name = (n), .kind = QS_OPT_K_CHOICE, .dst = (d), .choices = (c), .bad = (b),      \
		__VA_ARGS__                                                                        \
	}
#define QS_OPT_STRS(n, d, cnt, max, b, ...)                                                        \
	{                                                                                          \
		.name = (n), .kind = QS_OPT_K_STRS, .dst = (d), .count = (cnt), .umax = (max),     \
		.bad = (b), __VA_ARGS__                                                            \
	}
#define QS_OPT_ARGS(d, cnt, min, max)                                                              \
	{                                                                                          \
		.name = "", .kind = QS_OPT_K_ARGS, .dst = (d), .count = (cnt), .umin = (min),      \
		.umax = (max)                                                                      \
	}
#define QS_OPT_STOP(d)                                                                             \
	{                                                                                          \
		.name = "", .kind = QS_OPT_K_STOP, .dst = (d)                                      \
	}
#define QS_OPT_END                                                                                 \
	{                                                                                          \
		.name = NULL                                                                       \
	}

enum {
	QS_OPT_OK = 0,
	QS_OPT_HELP = 1,       /* a help word: the rest is not read */
	QS_OPT_E_NEEDS = -1,   /* an option word was last, or a flag was given "=value" */
	QS_OPT_E_VALUE = -2,   /* a value was refused */
	QS_OPT_E_UNKNOWN = -3, /* no such option */
	QS_OPT_E_EXTRA = -4,   /* a positional word the table has no room for */
	QS_OPT_E_FEW = -5,     /* fewer positional words than the ARGS row's minimum */
};

/* A whole-word decimal unsigned integer: 0, or -1. */
static inline int
qs_opt_u64(const char *s, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

/* The same within [lo, hi] (also for values read from config files): 0, or -1
 * with *v untouched. */
static inline int
qs_opt_u64_in(const char *s, uint64_t lo, uint64_t hi, uint64_t *v)
{
	uint64_t x;

	if (qs_opt_u64(s, &x) != 0 || x < lo || x > hi)
		return -1;
	*v = x;
	return 0;
}

/* The row named by the first len bytes of name (flags, or rows with a value). */
static inline const struct qs_opt *
qs_opt_find_n(const struct qs_opt *t, const char *name, size_t len, int flags)
{
	for (; t->name; t++)
		if (t->kind != QS_OPT_K_ARGS && t->kind != QS_OPT_K_STOP &&
		    (t->kind == QS_OPT_K_FLAG || t->kind == QS_OPT_K_HELP) == flags &&
		    strlen(t->name) == len && !strncmp(t->name, name, len))
			return t;
	return NULL;
}

static inline const struct qs_opt *
qs_opt_find(const struct qs_opt *t, const char *name, int flags)
{
	return qs_opt_find_n(t, name, strlen(name), flags);
}

/* The table's row of a kind (ARGS, STOP), or NULL. */
static inline const struct qs_opt *
qs_opt_find_kind(const struct qs_opt *t, enum qs_opt_kind kind)
{
	for (; t->name; t++)
		if (t->kind == kind)
			return t;
	return NULL;
}

/* One option's value into its destination: QS_OPT_OK or QS_OPT_E_VALUE. */
static inline int
qs_opt_set(const char *prog, const struct qs_opt *t, const char *val, void *ctx)
{
	uint64_t u;
	double d;
	char *end;

	switch (t->kind) {
	case QS_OPT_K_STR:
		*(const char **)t->dst = val;
		goto ok;
	case QS_OPT_K_U64:
	case QS_OPT_K_U32:
		if (qs_opt_u64_in(val, t->umin, t->umax, &u) != 0)
			break;
		if (t->kind == QS_OPT_K_U64)
			*(uint64_t *)t->dst = u;
		else
			*(uint32_t *)t->dst = (uint32_t)u;
		goto ok;
	case QS_OPT_K_DOUBLE:
		d = strtod(val, &end);
		if (end == val || *end || !(d >= t->dmin && d <= t->dmax))
			break;
		*(double *)t->dst = d;
		goto ok;
	case QS_OPT_K_FN:
		if (t->fn(t, val, ctx))
			return QS_OPT_E_VALUE;
		goto ok;
	case QS_OPT_K_BUF:
		if (!*val || strlen(val) >= t->umax)
			break;
		memcpy(t->dst, val, strlen(val) + 1);
		goto ok;
	case QS_OPT_K_CHOICE:
		for (int i = 0; t->choices[i]; i++)
			if (!strcmp(t->choices[i], val)) {
				*(int *)t->dst = i;
				goto ok;
			}
		break;
	case QS_OPT_K_STRS:
		if (*t->count >= t->umax)
			break;
		((const char **)t->dst)[(*t->count)++] = val;
		goto ok;
	default:
		break;
	}
	if (t->bad)
		fprintf(stderr, "%s: %s %s: %s\n", prog, t->name, val, t->bad);
	return QS_OPT_E_VALUE;
ok:
	if (t->seen)
		*t->seen = t->name;
	return QS_OPT_OK;
}

/*
 * Parse argv[first..argc) against table t (ended by QS_OPT_END). positional, when
 * given, receives a word not starting with '-' (the last one wins) where the table
 * has no ARGS or STOP row. ctx is passed to FN rows. Returns QS_OPT_OK or
 * QS_OPT_HELP, or the first error (its message printed to stderr, prefixed with
 * prog).
 */
static inline int
qs_opt_parse(const char *prog, const struct qs_opt *t, int argc, char **argv, int first,
	     const char **positional, void *ctx)
{
	const struct qs_opt *args = qs_opt_find_kind(t, QS_OPT_K_ARGS);
	const struct qs_opt *stop = qs_opt_find_kind(t, QS_OPT_K_STOP);

	if (stop)
		*(int *)stop->dst = argc;
	for (int i = first; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		const char *eq = a[0] == '-' && a[1] == '-' ? strchr(a, '=') : NULL;
		size_t len = eq ? (size_t)(eq - a) : strlen(a);
		const struct qs_opt *o = qs_opt_find_n(t, a, len, 1);
		int rc;

		if (o && eq) {
			fprintf(stderr, "%s: %.*s takes no value\n", prog, (int)len, a);
			return QS_OPT_E_NEEDS;
		}
		if (o && o->kind == QS_OPT_K_HELP)
			return QS_OPT_HELP;
		if (o) {
			if (o->dst)
				*(int *)o->dst = o->flag;
			if (o->fn && o->fn(o, NULL, ctx))
				return QS_OPT_E_VALUE;
			if (o->seen)
				*o->seen = o->name;
			continue;
		}
		if (a[0] != '-' && stop) {
			*(int *)stop->dst = i;
			return QS_OPT_OK;
		}
		if (a[0] != '-' && args) {
			if (*args->count >= args->umax) {
				fprintf(stderr, "%s: unexpected argument '%s'\n", prog, a);
				return QS_OPT_E_EXTRA;
			}
			((const char **)args->dst)[(*args->count)++] = a;
			continue;
		}
		if (a[0] != '-' && positional) {
			*positional = a;
			continue;
		}
		o = qs_opt_find_n(t, a, len, 0);
		if (!o) {
			fprintf(stderr, "%s: unknown option %.*s\n", prog, (int)len, a);
			return QS_OPT_E_UNKNOWN;
		}
		if (eq) {
			val = eq + 1;
		} else if (!val) {
			fprintf(stderr, "%s: %s needs a value\n", prog, a);
			return QS_OPT_E_NEEDS;
		} else {
			i++;
		}
		rc = qs_opt_set(prog, o, val, ctx);
		if (rc != QS_OPT_OK)
			return rc;
	}
	if (args && *args->count < args->umin) {
		fprintf(stderr, "%s: too few arguments\n", prog);
		return QS_OPT_E_FEW;
	}
	return QS_OPT_OK;
}

/*
 * qs_opt_parse for a program whose refusals all exit 2: -1 to go on; 0 after a
 * help word (usage on stdout); 2 after a refusal: a refused value's row said why
 * (or fn did), and an unknown option, a missing value, a stray argument or too few
 * is followed by the usage on stderr.
 */
static inline int
qs_opt_parse_or_usage(const char *prog, const struct qs_opt *t, int argc, char **argv, int first,
		      void *ctx, void (*usage)(FILE *f))
{
	switch (qs_opt_parse(prog, t, argc, argv, first, NULL, ctx)) {
	case QS_OPT_OK:
		return -1;
	case QS_OPT_HELP:
		usage(stdout);
		return 0;
	case QS_OPT_E_VALUE:
		return 2;
	default:
		usage(stderr);
		return 2;
	}
}

/* ---- subcommands --------------------------------------------------------------- */

/* One subcommand: run gets argv[0] = the command's name, and returns the exit status. */
struct qs_opt_cmd {
	const char *name;
	int (*run)(int argc, char **argv, void *ctx);
};

/*
 * Run the command argv[first] names (with argc - first, argv + first): its status.
 * No word, or an unknown one: usage to stderr (after "PROG: unknown command
 * 'WORD'"), 2; -h or --help: usage to stdout, 0. A command may dispatch its own
 * subcommands the same way (first 1).
 */
static inline int
qs_opt_dispatch(const char *prog, const struct qs_opt_cmd *cmds, int argc, char **argv, int first,
		void (*usage)(FILE *f), void *ctx)
{
	if (first >= argc) {
		usage(stderr);
		return 2;
	}
	for (; cmds->name; cmds++)
		if (!strcmp(cmds->name, argv[first]))
			return cmds->run(argc - first, argv + first, ctx);
	if (!strcmp(argv[first], "-h") || !strcmp(argv[first], "--help")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[first]);
	usage(stderr);
	return 2;
}

#endif /* QSTEER_OPT_H */
