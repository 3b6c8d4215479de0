/*
 * icount.c - `policy-icount KERNEL FILE.q8 ITERS`: ITERS calls of qs_policy_choose
 * on a fixed burst (32 requests x 8 candidates, deterministic inputs 0..127), the
 * dataplane's shape, and nothing else worth counting. scripts/arm64-icount.sh runs it
 * under qemu-aarch64 with one instruction per translation block and counts the
 * executed blocks for ITERS = N and ITERS = 0: the difference over N * 32 is the
 * instructions per decision of the kernel and choose's argmax (docs/arm.md). Built
 * everywhere, run by no test: an emulator gives instruction counts, not time.
 */
#include <stdio.h>
#include <stdlib.h>

#include "qsteer/policy.h"

enum { REQ = 32, CAND = 8 };

int
main(int argc, char **argv)
{
	static uint8_t x[REQ * CAND * QS_INT8_MAX_DIM];
	uint16_t choice[REQ];
	struct qs_policy *p = NULL;
	enum qs_kernel k;
	unsigned long iters, sum = 0;
	uint64_t s = 0x9e3779b97f4a7c15ull;
	char msg[256];

	if (argc != 4 || qs_kernel_parse(argv[1], &k) != QS_OK) {
		fprintf(stderr, "usage: policy-icount KERNEL FILE.q8 ITERS\n");
		return 2;
	}
	iters = strtoul(argv[3], NULL, 10);
	if (!qs_kernel_supported(k)) {
		fprintf(stderr, "policy-icount: kernel %s does not run here\n", argv[1]);
		return 77;
	}
	if (qs_policy_load_file(argv[2], NULL, &p, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "policy-icount: %s: %s\n", argv[2], msg);
		return 1;
	}
	for (size_t i = 0; i < (size_t)REQ * CAND * p->n_in; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		x[i] = (uint8_t)(s >> 57); /* 0..127 */
	}
	for (unsigned long it = 0; it < iters; it++) {
		if (qs_policy_choose(p, k, x, REQ, CAND, NULL, NULL, choice) != QS_OK)
			return 1;
		sum += choice[it % REQ];
	}
	printf("%s %u-in %u-layer x %lu: choice sum %lu\n", qs_kernel_name(k), p->n_in, p->n_layers,
	       iters, sum);
	qs_policy_free(p);
	return 0;
}
