/*
 * policy_bench.c - `qsteer-policy bench`: ns per routing decision for each kernel
 * level on a deterministic random policy of the test shape (16 -> 32 -> 16 -> 1),
 * or on a policy file (--policy: the shipped 16 -> 64 -> 64 -> 1 router), MACs per
 * cycle, and the speedup over the scalar reference measured in the same run. Before timing anything
 * it checks that every level gives the scalar reference's integers on the benchmark inputs, and
 * fails if one does not.
 *
 * Method. One decision is one request scored over C candidates (C rows) through
 * qs_policy_choose, the entry point the dataplane calls; a call handles B requests.
 * Each (C, B, kernel) cell is sampled REPS times, interleaved round-robin across
 * kernels and cells so that a noisy neighbour hurts all levels alike; a sample
 * loops the call for about --seconds / REPS and the cell reports the median
 * sample (the minimum is printed too, in the table and as ns_per_decision_min).
 *
 * Clock. macs_per_cycle needs the core clock: it is measured by timing a chain of
 * dependent 64-bit adds (one cycle each on every x86 core we know), before and
 * after the runs, taking the mean. perf cycle counters are not available in the VMs
 * we run on. Peak for reference, AMD Zen 4 (EPYC 9xx4): vpdpbusd zmm issues 1 per
 * cycle (latency 4) = 64 MACs/cycle. Measured on the dev VM (Zen 4, family 25
 * model 17) with 12 independent vpdpbusd chains in a scratch loop: 1.00 zmm/cycle
 * (64 MACs/cycle) and 2.00 ymm/cycle, latency 4.0, at 3.65 GHz. The AVX2 sequence
 * (vpmaddubsw + vpmaddwd + vpaddd per 32 MACs) is estimated, not measured, at 32
 * MACs/cycle: two multiply-capable pipes, two multiplies per 32 MACs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy_bench.h"
#include "qsteer/clock.h"
#include "qsteer/opt.h"
#include "qsteer/policy.h"

enum {
	N_IN = 16,
	H1 = 32,
	H2 = 16,
	REPS = 7,
	MAX_ROWS = QS_MAX_CANDIDATES * 32,
	MAX_IN = 64, /* inputs per row a --policy file may have */
};

static const unsigned cands[] = {4, 8, 16, 64};
static const unsigned batches[] = {1, 32};
#define N_CELLS (sizeof(cands) / sizeof(cands[0]) * sizeof(batches) / sizeof(batches[0]))

struct cell {
	unsigned c, b;
	double ns[QS_KERNEL__COUNT][REPS];
};

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint32_t
rng(void)
{
	/* xorshift64*: deterministic, so every run benchmarks the same policy. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* Cycles per second from a chain of dependent adds (see the comment at the top). */
static double
clock_hz(void)
{
	double best = 0;

	for (int rep = 0; rep < 3; rep++) {
		uint64_t iters = 20000000, acc = 0, i = iters;
		double t0 = (double)qs_mono_ns(), dt;

#if defined(__x86_64__)
		__asm__ volatile("1:\n\t"
				 "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
				 "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
				 "dec %1\n\tjnz 1b"
				 : "+r"(acc), "+r"(i));
#elif defined(__aarch64__)
		/* The same chain: one dependent add per cycle on every Arm core we know. */
		__asm__ volatile("1:\n\t"
				 "add %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\t"
				 "add %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\t"
				 "add %0, %0, #1\n\tadd %0, %0, #1\n\t"
				 "subs %1, %1, #1\n\tb.ne 1b"
				 : "+r"(acc), "+r"(i)
				 :
				 : "cc");
#else
		(void)acc;
		(void)i;
		return 0;
#endif
		dt = (double)qs_mono_ns() - t0;
		if (dt > 0 && (double)iters * 8 / dt * 1e9 > best)
			best = (double)iters * 8 / dt * 1e9;
	}
	return best;
}

static void
cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) != 0 || !colon)
			continue;
		colon++;
		while (*colon == ' ' || *colon == '\t')
			colon++;
		colon[strcspn(colon, "\n")] = 0;
		snprintf(buf, len, "%s", colon);
		/* printed inside a JSON string: keep it free of quotes, backslashes and
		 * control characters rather than escaping a display name */
		for (char *c = buf; *c; c++)
			if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
				*c = ' ';
		break;
	}
	fclose(f);
}

/* The router shape with weights and requant scales that keep activations mid-range. */
static int
make_policy(struct qs_policy **out)
{
	static int8_t w1[H1 * N_IN], w2[H2 * H1], w3[H2];
	static uint8_t file[4096];
	int32_t b1[H1], b2[H2], b3[1], m1[H1], m2[H2];
	uint8_t s1[H1], s2[H2];
	struct qs_q8_desc d;
	char msg[256];
	size_t len;

	for (size_t i = 0; i < sizeof(w1); i++)
		w1[i] = (int8_t)((int)(rng() % 255) - 127);
	for (size_t i = 0; i < sizeof(w2); i++)
		w2[i] = (int8_t)((int)(rng() % 255) - 127);
	for (size_t i = 0; i < sizeof(w3); i++)
		w3[i] = (int8_t)((int)(rng() % 255) - 127);
	/* Accumulators spread over roughly +-2^16: M / 2^S ~ 2^-9 maps that to 0..127. */
	for (int j = 0; j < H1; j++) {
		b1[j] = (int32_t)(rng() % 20001) - 10000;
		m1[j] = (int32_t)(1u << 30 | (rng() & 0x3fffffff));
		s1[j] = 40;
	}
	for (int j = 0; j < H2; j++) {
		b2[j] = (int32_t)(rng() % 20001) - 10000;
		m2[j] = (int32_t)(1u << 30 | (rng() & 0x3fffffff));
		s2[j] = 40;
	}
	b3[0] = 12345;
	memset(&d, 0, sizeof(d));
	d.kind = QS_Q8_KIND_SCORER;
	d.schema = QS_SCHEMA_ROUTER_V1;
	d.name = "bench-router-16-32-16-1";
	d.n_layers = 3;
	d.layer[0] = (struct qs_q8_layer_desc){N_IN, H1, w1, b1, m1, s1};
	d.layer[1] = (struct qs_q8_layer_desc){H1, H2, w2, b2, m2, s2};
	d.layer[2] = (struct qs_q8_layer_desc){H2, 1, w3, b3, NULL, NULL};
	if (qs_q8_write(&d, file, sizeof(file), &len, msg, sizeof(msg)) != QS_OK ||
	    qs_policy_load(file, len, "bench", NULL, out, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-policy bench: building the policy: %s\n", msg);
		return -1;
	}
	return 0;
}

/* One sample: loop the call for about budget_ns, return ns per decision. */
static double
sample(const struct qs_policy *p, enum qs_kernel k, const uint8_t *x, unsigned c, unsigned b,
       uint16_t *choice, double budget_ns, unsigned *iters)
{
	double t0, dt;
	unsigned n = *iters;

	for (;;) {
		t0 = (double)qs_mono_ns();
		for (unsigned i = 0; i < n; i++)
			qs_policy_choose(p, k, x, b, c, NULL, NULL, choice);
		dt = (double)qs_mono_ns() - t0;
		/* Calibrate the count on the first sample of a cell; keep it after. */
		if (dt >= budget_ns * 0.5 || n >= (1u << 30))
			break;
		n = dt > 0 ? (unsigned)((double)n * budget_ns / dt) + 1 : n * 16;
	}
	*iters = n;
	return dt / ((double)n * b);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(const double *v, double *min)
{
	double s[REPS];

	memcpy(s, v, sizeof(s));
	qsort(s, REPS, sizeof(s[0]), cmp_double);
	*min = s[0];
	return s[REPS / 2];
}

/* Every level must give scalar's integers on the benchmark inputs, batch-wide. */
static int
verify(const struct qs_policy *p, const bool *want, const uint8_t *x)
{
	static int32_t ref[MAX_ROWS], got[MAX_ROWS];
	int bad = 0;

	qs_policy_run(p, QS_KERNEL_SCALAR, x, p->n_in, MAX_ROWS, ref);
	for (int k = QS_KERNEL_SCALAR + 1; k < QS_KERNEL__COUNT; k++) {
		if (!want[k])
			continue;
		/* Odd counts exercise the tail path too. */
		for (uint32_t n = MAX_ROWS; n > 0; n = n > 37 ? n - 37 : (n > 1 ? 1 : 0)) {
			memset(got, 0x5a, sizeof(got));
			if (qs_policy_run(p, (enum qs_kernel)k, x, p->n_in, n, got) != QS_OK ||
			    memcmp(ref, got, n * sizeof(ref[0])) != 0) {
				fprintf(stderr,
					"qsteer-policy bench: kernel %s disagrees with scalar on "
					"%u rows\n",
					qs_kernel_name((enum qs_kernel)k), n);
				bad = 1;
				break;
			}
		}
	}
	return bad;
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: qsteer-policy bench [--json] [--seconds S] [--kernel K] [--policy FILE]\n"
		"  --seconds S    time per measurement cell and kernel (default 0.2)\n"
		"  --kernel K     scalar, avx2, avx512vnni, neon (default: every supported level)\n"
		"  --policy FILE  a router .q8 (e.g. the shipped policies/default-router.q8)\n"
		"                 instead of the generated 16-32-16-1 test shape\n");
}

/* Multiply-accumulates per candidate row, and the shape as text. */
static unsigned
shape_of(const struct qs_policy *p, char *txt, size_t cap)
{
	unsigned macs = 0;
	size_t off;

	off = (size_t)snprintf(txt, cap, "%u", p->layer[0].n_in);
	for (unsigned l = 0; l < p->n_layers; l++) {
		macs += (unsigned)p->layer[l].n_in * p->layer[l].n_out;
		if (off < cap)
			off += (size_t)snprintf(txt + off, cap - off, "-%u", p->layer[l].n_out);
	}
	return macs;
}

/* A policy name (printable ASCII) as the inside of a JSON string. */
static const char *
json_safe(const char *v, char *buf, size_t cap)
{
	size_t o = 0;

	for (; *v && o + 3 < cap; v++) {
		if (*v == '"' || *v == '\\')
			buf[o++] = '\\';
		buf[o++] = *v;
	}
	buf[o] = 0;
	return buf;
}

/* --policy FILE: a scorer whose rows fit the benchmark's input buffer. */
static int
load_file(const char *path, struct qs_policy **out)
{
	struct qs_policy_load_opts o = {.expect_schema = QS_SCHEMA_ANY,
					.expect_kind = QS_Q8_KIND_SCORER};
	char msg[512];

	if (qs_policy_load_file(path, &o, out, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-policy bench: --policy %s\n", msg);
		return -1;
	}
	if ((*out)->n_in > MAX_IN || (*out)->n_out != 1) {
		fprintf(stderr,
			"qsteer-policy bench: --policy %s: %u inputs, %u outputs; the benchmark "
			"scores rows of at most %d inputs with one output\n",
			path, (*out)->n_in, (*out)->n_out, MAX_IN);
		qs_policy_free(*out);
		return -1;
	}
	return 0;
}

/* --kernel K: one level, not auto (the default already benchmarks every level). */
static int
opt_kernel(const struct qs_opt *opt, const char *v, void *ctx)
{
	(void)ctx;
	if (qs_kernel_parse(v, opt->dst) == QS_OK && *(enum qs_kernel *)opt->dst != QS_KERNEL_AUTO)
		return 0;
	fprintf(stderr,
		"qsteer-policy bench: %s %s: unknown kernel (scalar, avx2, avx512vnni or neon)\n",
		opt->name, v);
	return -1;
}

int
qs_policy_bench_cmd(int argc, char **argv)
{
	static uint8_t x[MAX_ROWS * MAX_IN];
	static uint16_t choice[32];
	static struct cell cells[N_CELLS];
	int json = 0;
	bool want[QS_KERNEL__COUNT] = {false}, show[QS_KERNEL__COUNT] = {false};
	double seconds = 0.2, hz0, hz1, hz;
	enum qs_kernel only = QS_KERNEL_AUTO;
	unsigned iters[N_CELLS][QS_KERNEL__COUNT];
	struct qs_policy *p;
	const char *policy_path = NULL;
	char cpu[256], shape[64], name[2 * QS_Q8_NAME_LEN + 1];
	unsigned macs_per_row;
	size_t nc = 0;
	const char *none[1];
	unsigned n_none = 0;
	/* an ARGS row with room for none, so a stray word is named as one */
	const struct qs_opt opts[] = {
	    QS_OPT_HELP_FLAG("--help"),
	    QS_OPT_HELP_FLAG("-h"),
	    QS_OPT_FLAG("--json", &json, 1),
	    /* the row's range is closed; 0 itself is refused below */
	    QS_OPT_DOUBLE("--seconds", &seconds, 0, 3600, "needs 0 < S <= 3600"),
	    QS_OPT_FN("--kernel", opt_kernel, .dst = &only),
	    QS_OPT_STR("--policy", &policy_path),
	    QS_OPT_ARGS(none, &n_none, 0, 0),
	    QS_OPT_END,
	};
	int rc = qs_opt_parse_or_usage("qsteer-policy bench", opts, argc, argv, 1, NULL, usage);

	if (rc >= 0)
		return rc;
	if (!(seconds > 0)) {
		fprintf(stderr, "qsteer-policy bench: --seconds %g: needs 0 < S <= 3600\n",
			seconds);
		return 2;
	}
	/* An unsupported level is the machine's limit, not a usage error: status 1. */
	if (only != QS_KERNEL_AUTO && !qs_kernel_supported(only)) {
		fprintf(stderr, "qsteer-policy bench: --kernel %s: not supported on this machine\n",
			qs_kernel_name(only));
		return 1;
	}
	/* Scalar always runs: the speedups are against it, measured in the same run. */
	for (int k = QS_KERNEL_SCALAR; k < QS_KERNEL__COUNT; k++) {
		want[k] = qs_kernel_supported((enum qs_kernel)k) &&
			  (only == QS_KERNEL_AUTO || k == (int)only || k == QS_KERNEL_SCALAR);
		show[k] = want[k] && (only == QS_KERNEL_AUTO || k == (int)only);
	}

	if (policy_path ? load_file(policy_path, &p) : make_policy(&p))
		return 1;
	macs_per_row = shape_of(p, shape, sizeof(shape));
	for (size_t i = 0; i < sizeof(x); i++)
		x[i] = (uint8_t)(rng() & 127);
	if (verify(p, want, x)) {
		qs_policy_free(p);
		return 1;
	}

	for (size_t bi = 0; bi < sizeof(batches) / sizeof(batches[0]); bi++)
		for (size_t ci = 0; ci < sizeof(cands) / sizeof(cands[0]); ci++) {
			cells[nc].c = cands[ci];
			cells[nc].b = batches[bi];
			nc++;
		}
	for (size_t i = 0; i < nc; i++)
		for (int k = 0; k < QS_KERNEL__COUNT; k++)
			iters[i][k] = 1;

	hz0 = clock_hz();
	for (int rep = 0; rep < REPS; rep++)
		for (size_t i = 0; i < nc; i++)
			for (int k = QS_KERNEL_SCALAR; k < QS_KERNEL__COUNT; k++)
				if (want[k])
					cells[i].ns[k][rep] =
					    sample(p, (enum qs_kernel)k, x, cells[i].c, cells[i].b,
						   choice, seconds * 1e9 / REPS, &iters[i][k]);
	hz1 = clock_hz();
	hz = (hz0 + hz1) / 2;

	cpu_model(cpu, sizeof(cpu));
	if (json)
		printf("{\"cpu\": \"%s\", \"shape\": \"%s\", \"policy\": \"%s\", "
		       "\"clock_ghz\": %.3f, \"results\": [",
		       cpu, shape,
		       json_safe(policy_path ? p->name : "generated", name, sizeof(name)),
		       hz / 1e9);
	else
		printf("cpu: %s\nshape: %s (%u MACs per row; %s)\n"
		       "clock: %.3f GHz (dependent-add loop; %.3f before, %.3f after)\n"
		       "median of %d samples, %.2f s per cell and kernel\n\n"
		       "%-11s %5s %5s %12s %12s %10s %9s\n",
		       cpu, shape, macs_per_row, policy_path ? policy_path : "generated", hz / 1e9,
		       hz0 / 1e9, hz1 / 1e9, REPS, seconds, "kernel", "cands", "batch",
		       "ns/decision", "(min)", "MACs/cyc", "vs scalar");
	int first = 1;

	for (size_t i = 0; i < nc; i++) {
		double smin, sc = median(cells[i].ns[QS_KERNEL_SCALAR], &smin);

		for (int k = QS_KERNEL_SCALAR; k < QS_KERNEL__COUNT; k++) {
			double mn, med, mpc;

			if (!show[k])
				continue;
			med = median(cells[i].ns[k], &mn);
			mpc = hz > 0 ? (double)cells[i].c * macs_per_row / (med * 1e-9 * hz) : 0;
			if (json) {
				printf(
				    "%s\n  {\"kernel\": \"%s\", \"candidates\": %u, \"batch\": %u, "
				    "\"ns_per_decision\": %.2f, \"ns_per_decision_min\": %.2f, ",
				    first ? "" : ",", qs_kernel_name((enum qs_kernel)k), cells[i].c,
				    cells[i].b, med, mn);
				if (hz > 0)
					printf("\"macs_per_cycle\": %.2f, ", mpc);
				else
					printf("\"macs_per_cycle\": null, ");
				printf("\"speedup_vs_scalar\": %.2f}", sc / med);
			} else {
				printf("%-11s %5u %5u %12.1f %12.1f %10.2f %8.2fx\n",
				       qs_kernel_name((enum qs_kernel)k), cells[i].c, cells[i].b,
				       med, mn, mpc, sc / med);
			}
			first = 0;
		}
	}
	if (json)
		printf("\n]}\n");
	qs_policy_free(p);
	return 0;
}
