/*
 * status.h - qsteer's error codes. Libraries return one of these and fill a message
 * buffer the caller owns; only programs print.
 */
#ifndef QSTEER_STATUS_H
#define QSTEER_STATUS_H

#include <stddef.h>

enum qs_status {
	QS_OK = 0,
	QS_E_ARG, /* a caller passed something impossible */
	QS_E_IO,  /* open/read/write failed (errno in the message) */
	QS_E_NOMEM,
	QS_E_TRUNCATED, /* input ends before its declared size */
	QS_E_SIZE,	/* declared size disagrees with the input or exceeds a limit */
	QS_E_MAGIC,
	QS_E_VERSION,
	QS_E_KIND,
	QS_E_SCHEMA,
	QS_E_SHAPE, /* dimensions that do not chain or exceed limits */
	QS_E_VALUE, /* a field holds a value outside its range */
	QS_E_CRC,
	QS_E_SIGNATURE,
	QS_E_UNSUPPORTED, /* e.g. a kernel level this CPU lacks */
	QS_E__COUNT
};

/* Stable lower-case name of a status, e.g. "crc". */
const char *qs_status_name(int status);

/* Writes the message into msg (when it is not NULL) and returns status: how every
 * library says what was wrong and where. */
int qs_fail(char *msg, size_t msglen, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif /* QSTEER_STATUS_H */
