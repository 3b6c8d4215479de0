/*
 * q8_internal.h - shared between the .q8 loader, writer and key code; not installed.
 * Functions named qs_q8__* (double underscore) are library-internal.
 */
#ifndef QSTEER_Q8_INTERNAL_H
#define QSTEER_Q8_INTERNAL_H

#include <stdarg.h>
#include <stdio.h>

#include "qsteer/policy.h"

static inline uint16_t
q8_rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t
q8_rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t
q8_rd64(const uint8_t *p)
{
	return (uint64_t)q8_rd32(p) | (uint64_t)q8_rd32(p + 4) << 32;
}

static inline void
q8_wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void
q8_wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void
q8_wr64(uint8_t *p, uint64_t v)
{
	q8_wr32(p, (uint32_t)v);
	q8_wr32(p + 4, (uint32_t)(v >> 32));
}

/* Bytes one layer takes in a file. */
static inline size_t
q8_layer_bytes(uint32_t n_in, uint32_t n_out, int hidden)
{
	size_t b = QS_Q8_PAD4((size_t)n_in * n_out) + 4 * (size_t)n_out;

	if (hidden)
		b += 4 * (size_t)n_out + QS_Q8_PAD4(n_out);
	return b;
}

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
