/*
 * test_golden.c - the committed golden vectors (golden/NAME.q8, .in, .out) against
 * every kernel level this build and CPU run, and the scorer/classifier decisions
 * built on them.
 *
 * Why: DESIGN.md 3.1 requires bit-exact integers on every implementation. The
 * expected outputs are files, not computed here, so a change to the scalar kernel
 * that shifts any integer fails too (the numpy reference checks the same files
 * without C). Decisions: ties go to the lowest index, masked candidates never win,
 * all masked gives QS_NO_CHOICE.
 *
 * Usage: test-golden GOLDEN_DIR
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qsteer/policy.h"
#include "testutil.h"

static const char *golden_dir;

struct golden {
	const char *name;
	uint16_t kind;
	struct qs_policy *p;
	long rows;
	uint8_t *x;    /* rows x n_in, contiguous */
	int32_t *want; /* rows x n_out */
};

static struct golden G[] = {
    {"router_v1", QS_Q8_KIND_SCORER, NULL, 0, NULL, NULL},
    {"batch_cls", QS_Q8_KIND_CLASSIFIER, NULL, 0, NULL, NULL},
    {"raw_odd", QS_Q8_KIND_SCORER, NULL, 0, NULL, NULL},
    {"raw_deep", QS_Q8_KIND_CLASSIFIER, NULL, 0, NULL, NULL},
};
#define N_GOLDEN (sizeof(G) / sizeof(G[0]))

static int
load_golden(void **state)
{
	char path[4096], msg[256];
	int64_t *v;

	(void)state;
	for (size_t i = 0; i < N_GOLDEN; i++) {
		struct golden *g = &G[i];
		long n;

		snprintf(path, sizeof(path), "%s/%s.q8", golden_dir, g->name);
		if (qs_policy_load_file(path, NULL, &g->p, msg, sizeof(msg)) != QS_OK) {
			fprintf(stderr, "%s\n", msg);
			return -1;
		}
		snprintf(path, sizeof(path), "%s/%s.in", golden_dir, g->name);
		g->rows = tu_read_matrix(path, g->p->n_in, &v);
		if (g->rows < 8) {
			fprintf(stderr, "%s: unreadable or too few rows\n", path);
			return -1;
		}
		g->x = malloc((size_t)g->rows * g->p->n_in);
		for (size_t k = 0; k < (size_t)g->rows * g->p->n_in; k++) {
			if (v[k] < 0 || v[k] > 127) {
				fprintf(stderr, "%s: value %lld out of 0..127\n", path,
					(long long)v[k]);
				return -1;
			}
			g->x[k] = (uint8_t)v[k];
		}
		free(v);
		snprintf(path, sizeof(path), "%s/%s.out", golden_dir, g->name);
		n = tu_read_matrix(path, g->p->n_out, &v);
		if (n != g->rows) {
			fprintf(stderr, "%s: %ld rows, the inputs have %ld\n", path, n, g->rows);
			return -1;
		}
		g->want = malloc((size_t)n * g->p->n_out * sizeof(int32_t));
		for (size_t k = 0; k < (size_t)n * g->p->n_out; k++)
			g->want[k] = (int32_t)v[k];
		free(v);
	}
	return 0;
}

static int
free_golden(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_GOLDEN; i++) {
		qs_policy_free(G[i].p);
		free(G[i].x);
		free(G[i].want);
	}
	return 0;
}

/* The files are what gen_golden.c writes: shapes and kinds as documented. */
static void
test_golden_shapes(void **state)
{
	(void)state;
	assert_int_equal(G[0].p->schema, QS_SCHEMA_ROUTER_V1);
	assert_int_equal(G[0].p->n_layers, 3);
	assert_int_equal(G[0].p->n_in, 16);
	assert_int_equal(G[0].rows, 64);
	assert_int_equal(G[1].p->schema, QS_SCHEMA_BATCH_V1);
	assert_int_equal(G[1].p->n_actions, 6);
	assert_int_equal(G[2].p->schema, QS_SCHEMA_RAW);
	assert_int_equal(G[2].p->n_in, 37);
	assert_int_equal(G[3].p->n_layers, 8);
	assert_int_equal(G[3].p->max_dim, 256);
	for (size_t i = 0; i < N_GOLDEN; i++)
		assert_int_equal(G[i].p->kind, G[i].kind);
}

/* Every level, contiguous rows, then strided rows with garbage in the gaps, then
 * batch sizes 1..rows from every starting row. */
static void
test_golden_all_kernels(void **state)
{
	int ran = 0;

	(void)state;
	for (int k = QS_KERNEL_SCALAR; k < QS_KERNEL__COUNT; k++) {
		if (!qs_kernel_supported((enum qs_kernel)k)) {
			int32_t o[1];

			printf("[ golden ] kernel %-10s not supported here: skipped\n",
			       qs_kernel_name((enum qs_kernel)k));
			assert_int_equal(
			    qs_policy_run(G[0].p, (enum qs_kernel)k, G[0].x, G[0].p->n_in, 1, o),
			    QS_E_UNSUPPORTED);
			continue;
		}
		for (size_t i = 0; i < N_GOLDEN; i++) {
			const struct golden *g = &G[i];
			size_t n_in = g->p->n_in, n_out = g->p->n_out, rows = (size_t)g->rows;
			size_t stride = n_in + 13;
			int32_t *o = malloc(rows * n_out * sizeof(int32_t));
			uint8_t *xs = malloc((rows - 1) * stride + n_in);

			assert_int_equal(
			    qs_policy_run(g->p, (enum qs_kernel)k, g->x, n_in, (uint32_t)rows, o),
			    QS_OK);
			for (size_t e = 0; e < rows * n_out; e++)
				if (o[e] != g->want[e])
					fail_msg("%s kernel %s row %zu output %zu: %d, golden %d",
						 g->name, qs_kernel_name((enum qs_kernel)k),
						 e / n_out, e % n_out, o[e], g->want[e]);
			memset(xs, 0xa5, (rows - 1) * stride + n_in);
			for (size_t r = 0; r < rows; r++)
				memcpy(xs + r * stride, g->x + r * n_in, n_in);
			memset(o, 0, rows * n_out * sizeof(int32_t));
			assert_int_equal(
			    qs_policy_run(g->p, (enum qs_kernel)k, xs, stride, (uint32_t)rows, o),
			    QS_OK);
			assert_memory_equal(o, g->want, rows * n_out * sizeof(int32_t));
			for (size_t r0 = 0; r0 < rows; r0 += 7)
				for (size_t n = 1; r0 + n <= rows; n += 5) {
					assert_int_equal(qs_policy_run(g->p, (enum qs_kernel)k,
								       xs + r0 * stride, stride,
								       (uint32_t)n, o),
							 QS_OK);
					assert_memory_equal(o, g->want + r0 * n_out,
							    n * n_out * sizeof(int32_t));
				}
			free(xs);
			free(o);
		}
		printf("[ golden ] kernel %-10s matches all %zu golden policies\n",
		       qs_kernel_name((enum qs_kernel)k), N_GOLDEN);
		ran++;
	}
	assert_true(qs_kernel_supported(QS_KERNEL_SCALAR));
	assert_true(ran >= 1);
}

/* Expected choice from the golden scores: highest eligible, lowest index on ties. */
static uint16_t
want_choice(const int32_t *s, uint32_t n_cand, uint64_t mask)
{
	uint16_t best = QS_NO_CHOICE;

	for (uint32_t c = 0; c < n_cand; c++)
		if ((mask >> c & 1) && (best == QS_NO_CHOICE || s[c] > s[best]))
			best = (uint16_t)c;
	return best;
}

static void
test_golden_choose(void **state)
{
	const struct golden *g = &G[0];
	const uint32_t n_in = g->p->n_in;
	struct tu_rng rng = {42};
	uint16_t choice[2000];
	int32_t scores[2000 * 7];
	uint64_t elig[2000];

	(void)state;
	/* The generator made request 6 (candidate c + 4 repeats c) and request 7 (all
	 * identical) tie at their best; check the data really does. */
	assert_int_equal(g->want[7 * 8 + 3], g->want[7 * 8 + 0]);
	assert_int_equal(want_choice(g->want + 7 * 8, 8, ~0ull), 0);
	{
		uint16_t c6 = want_choice(g->want + 6 * 8, 8, ~0ull);

		assert_true(c6 < 4);
		assert_int_equal(g->want[6 * 8 + c6], g->want[6 * 8 + c6 + 4]);
	}

	for (int k = QS_KERNEL_SCALAR; k < QS_KERNEL__COUNT; k++) {
		if (!qs_kernel_supported((enum qs_kernel)k))
			continue;
		/* 8 requests x 8 candidates: no mask, random masks, single bits, none. */
		for (int round = 0; round < 200; round++) {
			int32_t sc[64];

			for (int r = 0; r < 8; r++) {
				switch (round % 5) {
				case 0:
					elig[r] = ~0ull;
					break;
				case 1:
					elig[r] = 0;
					break;
				case 2:
					elig[r] = 1ull << tu_range(&rng, 0, 7);
					break;
				case 3:
					elig[r] = ~0ull << tu_range(&rng, 0, 8);
					break;
				default:
					elig[r] = tu_next(&rng);
					break;
				}
			}
			assert_int_equal(qs_policy_choose(g->p, (enum qs_kernel)k, g->x, 8, 8,
							  round % 5 == 0 ? NULL : elig,
							  round & 1 ? sc : NULL, choice),
					 QS_OK);
			for (int r = 0; r < 8; r++) {
				uint16_t w = want_choice(g->want + r * 8, 8, elig[r]);

				assert_int_equal(choice[r], w);
				if ((elig[r] & 0xff) == 0)
					assert_int_equal(choice[r], QS_NO_CHOICE);
				else
					assert_true(elig[r] >> choice[r] & 1);
			}
			if (round & 1)
				assert_memory_equal(sc, g->want, sizeof(sc));
		}
		/* Ties: the all-identical request picks the lowest eligible candidate. */
		for (int c = 0; c < 8; c++) {
			elig[0] = ~0ull << c;
			assert_int_equal(qs_policy_choose(g->p, (enum qs_kernel)k,
							  g->x + 7 * 8 * n_in, 1, 8, elig, NULL,
							  choice),
					 QS_OK);
			assert_int_equal(choice[0], c);
		}
		/* 1 request x 64 candidates, and 64 requests x 1 candidate. */
		elig[0] = 0x5555555555555555ull;
		assert_int_equal(
		    qs_policy_choose(g->p, (enum qs_kernel)k, g->x, 1, 64, elig, NULL, choice),
		    QS_OK);
		assert_int_equal(choice[0], want_choice(g->want, 64, elig[0]));
		assert_int_equal(
		    qs_policy_choose(g->p, (enum qs_kernel)k, g->x, 64, 1, NULL, NULL, choice),
		    QS_OK);
		for (int r = 0; r < 64; r++)
			assert_int_equal(choice[r], 0);
		/* 2000 requests x 7 candidates cycling through the golden rows: more than one
		 * internal chunk when the caller keeps no scores. */
		{
			uint8_t *x = malloc((size_t)2000 * 7 * n_in);
			int32_t *want = malloc((size_t)2000 * 7 * sizeof(int32_t));

			for (size_t i = 0; i < 2000 * 7; i++) {
				size_t src = (i * 11) % (size_t)g->rows;

				memcpy(x + i * n_in, g->x + src * n_in, n_in);
				want[i] = g->want[src];
			}
			for (int r = 0; r < 2000; r++)
				elig[r] = r % 13 == 0 ? 0 : tu_next(&rng);
			for (int keep = 0; keep < 2; keep++) {
				assert_int_equal(qs_policy_choose(g->p, (enum qs_kernel)k, x, 2000,
								  7, elig, keep ? scores : NULL,
								  choice),
						 QS_OK);
				for (int r = 0; r < 2000; r++)
					assert_int_equal(choice[r],
							 want_choice(want + r * 7, 7, elig[r]));
				if (keep)
					assert_memory_equal(scores, want, sizeof(scores));
			}
			free(x);
			free(want);
		}
	}
	/* Misuse. */
	assert_int_equal(qs_policy_choose(g->p, QS_KERNEL_SCALAR, g->x, 1, 0, NULL, NULL, choice),
			 QS_E_ARG);
	assert_int_equal(qs_policy_choose(g->p, QS_KERNEL_SCALAR, g->x, 1, 65, NULL, NULL, choice),
			 QS_E_ARG);
	assert_int_equal(
	    qs_policy_choose(G[1].p, QS_KERNEL_SCALAR, G[1].x, 1, 1, NULL, NULL, choice), QS_E_ARG);
}

static void
test_golden_classify(void **state)
{
	(void)state;
	for (int k = QS_KERNEL_SCALAR; k < QS_KERNEL__COUNT; k++) {
		if (!qs_kernel_supported((enum qs_kernel)k))
			continue;
		for (size_t i = 0; i < N_GOLDEN; i++) {
			const struct golden *g = &G[i];
			size_t n_in = g->p->n_in, n_out = g->p->n_out, stride = n_in + 5;
			uint16_t act[128];
			uint8_t *xs;
			int ties = 0;

			if (g->kind != QS_Q8_KIND_CLASSIFIER) {
				assert_int_equal(
				    qs_policy_classify(g->p, (enum qs_kernel)k, g->x, n_in, 1, act),
				    QS_E_ARG);
				continue;
			}
			xs = malloc((size_t)(g->rows - 1) * stride + n_in);
			memset(xs, 0xff, (size_t)(g->rows - 1) * stride + n_in);
			for (long r = 0; r < g->rows; r++)
				memcpy(xs + (size_t)r * stride, g->x + (size_t)r * n_in, n_in);
			assert_int_equal(qs_policy_classify(g->p, (enum qs_kernel)k, xs, stride,
							    (uint32_t)g->rows, act),
					 QS_OK);
			for (long r = 0; r < g->rows; r++) {
				const int32_t *w = g->want + (size_t)r * n_out;
				uint16_t best = 0;

				for (size_t j = 1; j < n_out; j++)
					if (w[j] > w[best])
						best = (uint16_t)j;
				for (size_t j = best + 1; j < n_out; j++)
					ties += w[j] == w[best];
				assert_int_equal(act[r], best);
				assert_true(act[r] < g->p->n_actions);
			}
			/* batch_cls: output 4 duplicates output 1, so whenever 1 is best
			 * there is a tie and 1 must have won. */
			if (strcmp(g->name, "batch_cls") == 0)
				assert_true(ties > 0);
			free(xs);
		}
	}
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_golden_shapes),
	    cmocka_unit_test(test_golden_all_kernels),
	    cmocka_unit_test(test_golden_choose),
	    cmocka_unit_test(test_golden_classify),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: test-golden GOLDEN_DIR\n");
		return 2;
	}
	golden_dir = argv[1];
	return cmocka_run_group_tests(tests, load_golden, free_golden);
}
