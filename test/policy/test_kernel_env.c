/*
 * test_kernel_env.c - $QSTEER_KERNEL, which the library reads once at first use, in
 * a fresh process: `test-kernel-env EXPECT` where EXPECT is a level name or "best"
 * (the highest level this CPU runs, i.e. the variable must have been ignored).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qsteer/policy.h"

int
main(int argc, char **argv)
{
	enum qs_kernel got = qs_kernel_resolve(QS_KERNEL_AUTO), want = QS_KERNEL_SCALAR;
	const char *env = getenv("QSTEER_KERNEL");

	if (argc != 2) {
		fprintf(stderr, "usage: test-kernel-env LEVEL|best\n");
		return 2;
	}
	if (strcmp(argv[1], "best") == 0) {
		for (int k = QS_KERNEL_SCALAR; k < QS_KERNEL__COUNT; k++)
			if (qs_kernel_supported((enum qs_kernel)k))
				want = (enum qs_kernel)k;
	} else if (qs_kernel_parse(argv[1], &want) != QS_OK) {
		fprintf(stderr, "unknown level %s\n", argv[1]);
		return 2;
	} else if (!qs_kernel_supported(want)) {
		printf("level %s does not run here\n", argv[1]);
		return 77;
	}
	printf("QSTEER_KERNEL=%s: auto resolves to %s (want %s)\n", env ? env : "(unset)",
	       qs_kernel_name(got), qs_kernel_name(want));
	return got == want ? 0 : 1;
}
