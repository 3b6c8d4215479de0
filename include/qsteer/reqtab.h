/*
 * reqtab.h - the request-id table: which backend holds a request, so that its
 * continuations and a cancel follow it there. One definition, in restricted C
 * (rc.h), for qsteer-dp's workers (dp/core.c) and the XDP program's CPUs
 * (ebpf/qsteer.bpf.c): the entry, the set hash, the lookup and the choice of the
 * way a new request takes.
 *
 * QS_REQTAB_SETS sets of QS_REQTAB_WAYS ways per worker. Every request gets an
 * entry, also one that fits in one packet, and keeps it after its last packet
 * ("done") until request_ttl_ms after that packet or until a cancel: a client that
 * abandons a request while the backend generates sends a cancel, and only this
 * table knows where to send it. A continuation finds only an entry that is not
 * done. When a set is full, a new request takes, in this order, an entry of the
 * same id, a free one, an expired one, the least recently used done one, and only
 * then the least recently used one: a request still arriving in packets loses its
 * entry last.
 */
#ifndef QSTEER_REQTAB_H
#define QSTEER_REQTAB_H

#include "rc.h"

#define QS_REQTAB_SETS	4096
#define QS_REQTAB_WAYS	4
#define QS_REQTAB_EMPTY 0xffffu /* backend of a free entry */

struct qs_reqtab_entry {
	qs_u64 id;
	qs_u64 last_ns; /* its last packet */
	qs_u16 tenant;
	qs_u16 backend; /* index; QS_REQTAB_EMPTY if free */
	qs_u8 done;	/* its last packet has passed: only a cancel may follow */
	qs_u8 pad[3];
};

struct qs_reqtab_set {
	struct qs_reqtab_entry e[QS_REQTAB_WAYS];
};

/* How qs_reqtab_way found the way it returns. */
enum qs_reqtab_way {
	QS_REQTAB_SAME = 0, /* the same id (a repeated first packet) */
	QS_REQTAB_FREE,
	QS_REQTAB_EXPIRED,
	QS_REQTAB_EVICT_DONE, /* a done request, still cancellable, loses its entry */
	QS_REQTAB_EVICT,      /* a request still arriving loses its entry */
};

/* The set of (id, tenant): a multiplicative hash's top bits. */
QS_RC_FN qs_u32
qs_reqtab_set_of(qs_u64 id, qs_u16 tenant)
{
	qs_u64 z = (id ^ ((qs_u64)tenant << 48)) * 0x9e3779b97f4a7c15ull;

	return (qs_u32)(z >> 52) & (QS_REQTAB_SETS - 1);
}

QS_RC_FN int
qs_reqtab_live(const struct qs_reqtab_entry *e, qs_u64 now, qs_u64 ttl)
{
	return e->backend != QS_REQTAB_EMPTY && !(now > e->last_ns && now - e->last_ns > ttl);
}

/* The way holding live request (id, tenant) in set s, or -1. */
QS_RC_FN int
qs_reqtab_find(const struct qs_reqtab_set *s, qs_u64 id, qs_u16 tenant, qs_u64 now, qs_u64 ttl)
{
	int i;

	QS_RC_UNROLL
	for (i = 0; i < QS_REQTAB_WAYS; i++)
		if (s->e[i].id == id && s->e[i].tenant == tenant &&
		    qs_reqtab_live(&s->e[i], now, ttl))
			return i;
	return -1;
}

/* The way a new request (id, tenant) takes in set s; *how says why (for counters). */
QS_RC_FN int
qs_reqtab_way(const struct qs_reqtab_set *s, qs_u64 id, qs_u16 tenant, qs_u64 now, qs_u64 ttl,
	      enum qs_reqtab_way *how)
{
	int i, v = -1;

	QS_RC_UNROLL
	for (i = 0; i < QS_REQTAB_WAYS; i++)
		if (v < 0 && s->e[i].backend != QS_REQTAB_EMPTY && s->e[i].id == id &&
		    s->e[i].tenant == tenant)
			v = i;
	*how = QS_REQTAB_SAME;
	if (v >= 0)
		return v;
	*how = QS_REQTAB_FREE;
	QS_RC_UNROLL
	for (i = 0; i < QS_REQTAB_WAYS; i++)
		if (v < 0 && s->e[i].backend == QS_REQTAB_EMPTY)
			v = i;
	if (v >= 0)
		return v;
	*how = QS_REQTAB_EXPIRED;
	QS_RC_UNROLL
	for (i = 0; i < QS_REQTAB_WAYS; i++)
		if (v < 0 && !qs_reqtab_live(&s->e[i], now, ttl))
			v = i;
	if (v >= 0)
		return v;
	*how = QS_REQTAB_EVICT_DONE;
	QS_RC_UNROLL
	for (i = 0; i < QS_REQTAB_WAYS; i++)
		if (s->e[i].done && (v < 0 || s->e[i].last_ns < s->e[v & 3].last_ns))
			v = i;
	if (v >= 0)
		return v;
	*how = QS_REQTAB_EVICT;
	v = 0;
	QS_RC_UNROLL
	for (i = 1; i < QS_REQTAB_WAYS; i++)
		if (s->e[i].last_ns < s->e[v & 3].last_ns)
			v = i;
	return v;
}

/* Write request (id, tenant) to way v of set s: at backend be, done if its first
 * packet was also its last. */
QS_RC_FN void
qs_reqtab_put(struct qs_reqtab_set *s, int v, qs_u64 id, qs_u16 tenant, qs_u16 be, qs_u64 now,
	      int done)
{
	struct qs_reqtab_entry *e = &s->e[v & (QS_REQTAB_WAYS - 1)];

	e->id = id;
	e->tenant = tenant;
	e->backend = be;
	e->last_ns = now;
	e->done = (qs_u8)(done != 0);
}

#endif /* QSTEER_REQTAB_H */
