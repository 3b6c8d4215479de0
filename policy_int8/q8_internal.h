/*
 * q8_internal.h - shared between the .q8 loader, writer and key code; not installed.
 * Functions named qs_q8__* (double underscore) are library-internal.
 */
#ifndef QSTEER_Q8_INTERNAL_H
#define QSTEER_Q8_INTERNAL_H

#include <stdarg.h>
#include <stdio.h>

#include "qsteer/le.h"
#include "qsteer/policy.h"

/* "label: text" into msg; returns status so callers can `return q8_fail(...)`. */
__attribute__((format(printf, 5, 6))) static inline int
q8_fail(int status, char *msg, size_t msglen, const char *label, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!msg || !msglen)
		return status;
	n = snprintf(msg, msglen, "%s: ", label ? label : "policy");
	if (n < 0 || (size_t)n >= msglen)
		return status;
	va_start(ap, fmt);
	vsnprintf(msg + n, msglen - (size_t)n, fmt, ap);
	va_end(ap);
	return status;
}

/*
 * Validate a whole file image. On success fills *sig_present and returns QS_OK; the
 * image may then be trusted field by field.
 */
int qs_q8__check(const uint8_t *b, size_t len, const char *label,
		 const struct qs_policy_load_opts *opts, int *sig_present, char *msg,
		 size_t msglen);

/* Read a whole (bounded) policy file into a fresh malloc'd buffer. */
int qs_q8__read_file(const char *path, uint8_t **buf, size_t *len, char *msg, size_t msglen);
/* Write buf to path atomically (temp file, fsync, rename). */
int qs_q8__write_all(const char *path, const uint8_t *buf, size_t len, char *msg, size_t msglen);

#endif
