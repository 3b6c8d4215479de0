/* util.c - the trainer's small helpers: option numbers, the clock. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "util.h"
#include "qsteer/clock.h"

int
qs_train_parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || end == s || *end || s[0] == '-' ? -1 : 0;
}

double
qs_train_now_s(void)
{
	return (double)qs_mono_ns() * 1e-9;
}
