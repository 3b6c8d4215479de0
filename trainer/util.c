/* util.c - the trainer's error-message helper. */
#include <stdarg.h>
#include <stdio.h>

#include "util.h"

int
qs_train_fail(int status, char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;

	if (msg && msglen) {
		va_start(ap, fmt);
		vsnprintf(msg, msglen, fmt, ap);
		va_end(ap);
	}
	return status;
}
