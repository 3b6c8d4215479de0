/* status.c - names of qsteer's status codes, and the message a failure leaves. */
#include <stdarg.h>
#include <stdio.h>

#include "qsteer/status.h"

static const char *const status_names[QS_E__COUNT] = {
    [QS_OK] = "ok",
    [QS_E_ARG] = "bad-argument",
    [QS_E_IO] = "io",
    [QS_E_NOMEM] = "out-of-memory",
    [QS_E_TRUNCATED] = "truncated",
    [QS_E_SIZE] = "size",
    [QS_E_MAGIC] = "magic",
    [QS_E_VERSION] = "version",
    [QS_E_KIND] = "kind",
    [QS_E_SCHEMA] = "schema",
    [QS_E_SHAPE] = "shape",
    [QS_E_VALUE] = "value",
    [QS_E_CRC] = "crc",
    [QS_E_SIGNATURE] = "signature",
    [QS_E_UNSUPPORTED] = "unsupported",
};

const char *
qs_status_name(int status)
{
	if (status < 0 || status >= QS_E__COUNT)
		return "unknown";
	return status_names[status];
}

int
qs_fail(char *msg, size_t msglen, int status, const char *fmt, ...)
{
	va_list ap;

	if (msg && msglen) {
		va_start(ap, fmt);
		vsnprintf(msg, msglen, fmt, ap);
		va_end(ap);
	}
	return status;
}
