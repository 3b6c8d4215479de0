/*
 * test_cuda.c - the agent's GPU tests: the dp4a kernel bit-exact against the
 * golden vectors (test/policy/golden, plus random policies against the scalar
 * kernel), the cuda executor running prefill and paged-attention decode batches,
 * and --profile's grid written as a profile that the simulator's loader reads.
 * Exits 77 (meson: skipped) where no CUDA device or driver is present.
 *
 * Usage: test-agent-cuda GOLDEN_DIR
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qsteer/agent_cuda.h"
#include "qsteer/policy.h"
#include "../policy/testutil.h"

static const char *golden_dir;
static char msg[512];

static void
dp4a_golden(void **state)
{
	static const char *const names[] = {"router_v1", "batch_cls", "raw_odd", "raw_deep"};
	uint32_t found = 0;

	(void)state;
	for (size_t g = 0; g < sizeof(names) / sizeof(names[0]); g++) {
		char path[4096];
		struct qs_policy *p;
		int64_t *xin = NULL, *want = NULL;
		long rows, n2;
		uint8_t *x;
		int32_t *got;

		snprintf(path, sizeof(path), "%s/%s.q8", golden_dir, names[g]);
		if (qs_policy_load_file(path, NULL, &p, msg, sizeof(msg)) != QS_OK)
			continue;
		snprintf(path, sizeof(path), "%s/%s.in", golden_dir, names[g]);
		rows = tu_read_matrix(path, p->n_in, &xin);
		snprintf(path, sizeof(path), "%s/%s.out", golden_dir, names[g]);
		n2 = tu_read_matrix(path, p->n_out, &want);
		assert_true(rows > 0 && rows == n2);
		x = malloc((size_t)rows * p->n_in);
		got = malloc((size_t)rows * p->n_out * sizeof(int32_t));
		for (long k = 0; k < rows * p->n_in; k++)
			x[k] = (uint8_t)xin[k];
		if (qs_agent_dp4a_run(p, x, p->n_in, (uint32_t)rows, got, msg, sizeof(msg)) !=
		    QS_OK)
			fail_msg("%s", msg);
		for (long k = 0; k < rows * p->n_out; k++)
			if (got[k] != (int32_t)want[k])
				fail_msg("%s: output %ld: dp4a %d, golden %lld", names[g], k,
					 got[k], (long long)want[k]);
		found++;
		free(x);
		free(got);
		free(xin);
		free(want);
		qs_policy_free(p);
	}
	if (found == 0)
		skip();
}

static void
exec_runs(void **state)
{
	struct qs_agent_cuda_model m = {2, 512, 4, 1024, 64, 8, 512};
	struct qs_agent_exec e;
	struct qs_agent_batch_seq s[3];
	uint32_t blocks[64];
	struct qs_agent_batch b;
	uint64_t ns = 0;

	(void)state;
	for (uint32_t i = 0; i < 64; i++)
		blocks[i] = 63 - i;
	if (qs_agent_exec_cuda(&m, &e, msg, sizeof(msg)) != QS_OK)
		fail_msg("%s", msg);
	memset(s, 0, sizeof(s));
	/* A 200-token prefill, then two decodes over 100- and 300-token contexts. */
	s[0] = (struct qs_agent_batch_seq){
	    .slot = 0, .ctx_start = 0, .n_tokens = 200, .blocks = blocks, .n_blocks = 13};
	s[1] = (struct qs_agent_batch_seq){.slot = 1,
					   .ctx_start = 100,
					   .n_tokens = 1,
					   .decode = true,
					   .blocks = blocks + 13,
					   .n_blocks = 7};
	s[2] = (struct qs_agent_batch_seq){.slot = 2,
					   .ctx_start = 300,
					   .n_tokens = 1,
					   .decode = true,
					   .blocks = blocks + 20,
					   .n_blocks = 19};
	b = (struct qs_agent_batch){
	    .n = 3, .prefill_tokens = 200, .decode_seqs = 2, .kv_tokens = 402, .seq = s};
	if (e.run(e.ctx, &b, &ns, msg, sizeof(msg)) != QS_OK)
		fail_msg("%s", msg);
	assert_true(ns > 0);
	printf("# cuda executor: 200 prefill + 2 decodes, small model: %.3f ms\n", ns / 1e6);
	qs_agent_exec_destroy(&e);
}

static void
profile_written_and_loads(void **state)
{
	struct qs_agent_cuda_model m = {2, 512, 4, 1024, 4096, 256, 4096};
	struct qs_sim_profile p, q;
	double rms = 0;
	uint32_t n = 0;
	char path[] = "/tmp/qsteer-cuda-profile-XXXXXX";
	int fd;
	FILE *f;

	(void)state;
	qs_agent_profile_default(&p);
	if (qs_agent_cuda_profile(&m, &p, &rms, &n, msg, sizeof(msg)) != QS_OK)
		fail_msg("%s", msg);
	printf("# profile: %u samples, fixed %.1f us, prefill %.3f us/tok, decode %.3f us/seq, "
	       "kv %.5f us/tok, rms %.1f us\n",
	       n, p.fixed_us, p.prefill_us_per_token, p.decode_us_per_seq, p.kv_us_per_token, rms);
	fd = mkstemp(path);
	f = fdopen(fd, "w");
	assert_int_equal(qs_agent_profile_write(f, &p), QS_OK);
	fclose(f);
	if (qs_agent_profile_load(path, &q, msg, sizeof(msg)) != QS_OK)
		fail_msg("%s", msg);
	remove(path);
	assert_int_equal(q.kv_blocks, 4096);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(dp4a_golden),
	    cmocka_unit_test(exec_runs),
	    cmocka_unit_test(profile_written_and_loads),
	};

	golden_dir = argc > 1 ? argv[1] : "test/policy/golden";
	if (qs_agent_cuda_available(msg, sizeof(msg)) != QS_OK) {
		printf("# skip: %s\n", msg);
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
