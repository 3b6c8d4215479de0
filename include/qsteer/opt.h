/*
 * opt.h - a declarative option table for the command-line programs: each option is a
 * row (name, kind, where it goes, its range, what an invalid value's message says),
 * and one loop parses argv against the table.
 *
 *	static const struct qs_opt opts[] = {
 *		QS_OPT_FLAG("--json", &o.json, 1),
 *		QS_OPT_U64("--seed", &o.seed, 0, UINT64_MAX, "not a valid count"),
 *		QS_OPT_END,
 *	};
 *	rc = qs_opt_parse("qsteer-x", opts, argc, argv, 2, &o.file, &o);
 *
 * Messages are "PROG: NAME VALUE: BAD" for a value out of range or malformed
 * (nothing when the row's bad is NULL: the program prints its usage instead),
 * "PROG: NAME needs a value" and "PROG: unknown option NAME"; the return value
 * says which, so each program keeps its own exit status and usage text (--help is
 * the source of the man pages, docs/man/mkman.py, and is written by hand).
 *
 * Argument words are read in order. A word that is a flag's name sets the flag (a
 * help flag ends the parse with QS_OPT_HELP); a
 * word not starting with '-' is the positional argument when the program takes one;
 * any other word takes the next word as its value, and without one it "needs a
 * value" (even when it is no option: both programs always said so); then it is
 * looked up. Numbers are whole words: decimal unsigned integers without sign or
 * blanks, or strtod's doubles, within [min, max].
 *
 * Header-only (static inline) so that any program, whatever libraries it links,
 * can adopt it: qsteer-sim and qsteer-train do.
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
	QS_OPT_K_FLAG,	 /* int *dst = flag */
	QS_OPT_K_HELP,	 /* stops the parse: QS_OPT_HELP */
	QS_OPT_K_STR,	 /* const char **dst = the value */
	QS_OPT_K_U64,	 /* uint64_t *dst */
	QS_OPT_K_U32,	 /* uint32_t *dst (max at most UINT32_MAX) */
	QS_OPT_K_DOUBLE, /* double *dst */
	QS_OPT_K_FN,	 /* fn(opt, value, ctx): 0, or nonzero when refused (fn said why) */
};

struct qs_opt;
typedef int (*qs_opt_fn)(const struct qs_opt *opt, const char *value, void *ctx);

struct qs_opt {
	const char *name;
	enum qs_opt_kind kind;
	void *dst;
	uint64_t umin, umax; /* U64, U32 */
	double dmin, dmax;   /* DOUBLE */
	int flag;	     /* FLAG: the value stored */
	const char *bad;     /* the message after "PROG: NAME VALUE: " (NULL: none) */
	qs_opt_fn fn;
};

#define QS_OPT_FLAG(n, d, v) {.name = (n), .kind = QS_OPT_K_FLAG, .dst = (d), .flag = (v)}
#define QS_OPT_HELP_FLAG(n) {.name = (n), .kind = QS_OPT_K_HELP}
#define QS_OPT_STR(n, d) {.name = (n), .kind = QS_OPT_K_STR, .dst = (d)}
#define QS_OPT_U64(n, d, lo, hi, b)                                                      \
	{.name = (n), .kind = QS_OPT_K_U64, .dst = (d), .umin = (lo), .umax = (hi), .bad = (b)}
#define QS_OPT_U32(n, d, lo, hi, b)                                                      \
	{.name = (n), .kind = QS_OPT_K_U32, .dst = (d), .umin = (lo), .umax = (hi), .bad = (b)}
#define QS_OPT_DOUBLE(n, d, lo, hi, b)                                                   \
	{.name = (n), .kind = QS_OPT_K_DOUBLE, .dst = (d), .dmin = (lo), .dmax = (hi), .bad = (b)}
#define QS_OPT_FN(n, f) {.name = (n), .kind = QS_OPT_K_FN, .fn = (f)}
#define QS_OPT_END {.name = NULL}

enum {
	QS_OPT_OK = 0,
	QS_OPT_HELP = 1,       /* a help word: the rest is not read */
	QS_OPT_E_NEEDS = -1,   /* an option word was last */
	QS_OPT_E_VALUE = -2,   /* a value was refused */
	QS_OPT_E_UNKNOWN = -3, /* no such option */
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

static inline const struct qs_opt *
qs_opt_find(const struct qs_opt *t, const char *name, int flags)
{
	for (; t->name; t++)
		if ((t->kind == QS_OPT_K_FLAG || t->kind == QS_OPT_K_HELP) == flags &&
		    !strcmp(t->name, name))
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
		return QS_OPT_OK;
	case QS_OPT_K_U64:
	case QS_OPT_K_U32:
		if (qs_opt_u64(val, &u) != 0 || u < t->umin || u > t->umax)
			break;
		if (t->kind == QS_OPT_K_U64)
			*(uint64_t *)t->dst = u;
		else
			*(uint32_t *)t->dst = (uint32_t)u;
		return QS_OPT_OK;
	case QS_OPT_K_DOUBLE:
		d = strtod(val, &end);
		if (end == val || *end || !(d >= t->dmin && d <= t->dmax))
			break;
		*(double *)t->dst = d;
		return QS_OPT_OK;
	case QS_OPT_K_FN:
		return t->fn(t, val, ctx) ? QS_OPT_E_VALUE : QS_OPT_OK;
	default:
		break;
	}
	if (t->bad)
		fprintf(stderr, "%s: %s %s: %s\n", prog, t->name, val, t->bad);
	return QS_OPT_E_VALUE;
}

/*
 * Parse argv[first..argc) against table t (ended by QS_OPT_END). positional, when
 * given, receives a word not starting with '-' (the last one wins); without it such
 * a word is parsed as an option. ctx is passed to FN rows. Returns QS_OPT_OK or the
 * first error (its message printed to stderr, prefixed with prog).
 */
static inline int
qs_opt_parse(const char *prog, const struct qs_opt *t, int argc, char **argv, int first,
	     const char **positional, void *ctx)
{
	for (int i = first; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		const struct qs_opt *o = qs_opt_find(t, a, 1);
		int rc;

		if (o && o->kind == QS_OPT_K_HELP)
			return QS_OPT_HELP;
		if (o) {
			*(int *)o->dst = o->flag;
			continue;
		}
		if (positional && a[0] != '-') {
			*positional = a;
			continue;
		}
		if (!val) {
			fprintf(stderr, "%s: %s needs a value\n", prog, a);
			return QS_OPT_E_NEEDS;
		}
		o = qs_opt_find(t, a, 0);
		if (!o) {
			fprintf(stderr, "%s: unknown option %s\n", prog, a);
			return QS_OPT_E_UNKNOWN;
		}
		rc = qs_opt_set(prog, o, val, ctx);
		if (rc != QS_OPT_OK)
			return rc;
		i++;
	}
	return QS_OPT_OK;
}

#endif /* QSTEER_OPT_H */
