/*
 * prefix.h - the router's bounded prefix-affinity table (DESIGN.md 3.3), in
 * restricted C so the simulator, the DPDK dataplane and the XDP program share it.
 *
 * It remembers which backend most recently received each prefix hash, the way the
 * approximate-prefix scorers of LLM gateways do: a fixed-size 4-way set-associative
 * table (QS_PREFIX_SETS x QS_PREFIX_WAYS entries), never an unbounded index. An
 * entry older than the caller's max age is treated as absent, and the victim on a
 * miss is an empty way or else the least recently used one, so stale affinity ages
 * out on its own. Times are the caller's clock in nanoseconds.
 *
 * Assumes: prefix hash 0 means "no prefix" and is never stored; backend ids are
 * below QS_PREFIX_NONE. The caller zero-initialises the table (qs_prefix_init).
 */
#ifndef QSTEER_PREFIX_H
#define QSTEER_PREFIX_H

#include "rc.h"

#define QS_PREFIX_SETS 256 /* power of two */
#define QS_PREFIX_WAYS 4
#define QS_PREFIX_NONE 0xffffu

struct qs_prefix_entry {
	qs_u32 hash; /* 0: empty */
	qs_u16 backend;
	qs_u16 pad;
	qs_u64 last_ns; /* when the router last sent this prefix to backend */
};

struct qs_prefix_table {
	struct qs_prefix_entry e[QS_PREFIX_SETS][QS_PREFIX_WAYS];
};

QS_RC_FN void
qs_prefix_init(struct qs_prefix_table *t)
{
	qs_u32 s, w;

	for (s = 0; s < QS_PREFIX_SETS; s++) {
		QS_RC_UNROLL
		for (w = 0; w < QS_PREFIX_WAYS; w++) {
			t->e[s][w].hash = 0;
			t->e[s][w].backend = QS_PREFIX_NONE;
			t->e[s][w].pad = 0;
			t->e[s][w].last_ns = 0;
		}
	}
}

/* Clients hash the opening tokens however they like; mix so low bits spread. */
QS_RC_FN qs_u32
qs_prefix_set(qs_u32 hash)
{
	return ((hash * 0x9e3779b1u) >> 24) & (QS_PREFIX_SETS - 1);
}

/* The backend that recently received hash (within max_age_ns), or QS_PREFIX_NONE. */
QS_RC_FN qs_u32
qs_prefix_lookup(const struct qs_prefix_table *t, qs_u32 hash, qs_u64 now_ns, qs_u64 max_age_ns)
{
	const struct qs_prefix_entry *set;
	qs_u32 w;

	if (hash == 0)
		return QS_PREFIX_NONE;
	set = t->e[qs_prefix_set(hash)];
	QS_RC_UNROLL
	for (w = 0; w < QS_PREFIX_WAYS; w++) {
		if (set[w].hash == hash) {
			if (now_ns - set[w].last_ns > max_age_ns || now_ns < set[w].last_ns)
				return QS_PREFIX_NONE;
			return set[w].backend;
		}
	}
	return QS_PREFIX_NONE;
}

/* Record that hash was just sent to backend: refresh its way or evict the LRU one. */
QS_RC_FN void
qs_prefix_update(struct qs_prefix_table *t, qs_u32 hash, qs_u32 backend, qs_u64 now_ns)
{
	struct qs_prefix_entry *set;
	qs_u32 w, victim = 0;
	qs_u64 oldest = ~(qs_u64)0;

	if (hash == 0)
		return;
	set = t->e[qs_prefix_set(hash)];
	QS_RC_UNROLL
	for (w = 0; w < QS_PREFIX_WAYS; w++) {
		if (set[w].hash == hash) {
			victim = w;
			oldest = 0;
			break;
		}
		if (set[w].hash == 0 && oldest != 0) {
			victim = w;
			oldest = 0;
		} else if (set[w].last_ns < oldest) {
			victim = w;
			oldest = set[w].last_ns;
		}
	}
	set[victim].hash = hash;
	set[victim].backend = (qs_u16)backend;
	set[victim].last_ns = now_ns;
}

#endif /* QSTEER_PREFIX_H */
