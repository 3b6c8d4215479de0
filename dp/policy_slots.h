/*
 * policy_slots.h - qsteer-dp's policies and the operator's steering state: the slots
 * that hold loaded policies (a .q8 file or a builtin baseline), the policy set the
 * workers run (published by pointer, read under RCU), load (active, shadow,
 * canary), rollback, and the backend drain mask. Private to dp/; the operator's
 * contract is docs/control.md.
 *
 * Called by init (the start-up policy) and by the control thread, never by a
 * worker: a worker only reads the published set (qs_pslots_current). No DPDK here:
 * the grace period, the allocator and what happens after a publication come from
 * struct qs_pslots_ops, so that a test can drive every path, allocation failures
 * included (test/dp/test_policy_slots.c).
 *
 * Every action validates and allocates before it changes anything: a refusal, an
 * unloadable file or an allocation failure returns a qs_status with the reason in
 * msg, and the running set, the slots and the rollback target stay as they were.
 */
#ifndef QSTEER_DP_POLICY_SLOTS_H
#define QSTEER_DP_POLICY_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qsteer/dp_core.h"

/* Policies held at once: the active, second (shadow/canary) and previous ones are
 * at most three; a load takes a free slot before the publication frees any. */
#define QS_PSLOTS_MAX 8

/* A policy the control thread owns: a loaded .q8, or a builtin baseline. */
struct qs_pslot {
	struct qs_policy *p; /* NULL: builtin */
	enum qs_baseline_kind builtin;
	char source[256]; /* path or "builtin:NAME" */
	bool used;
};

struct qs_pslots;

struct qs_pslots_ops {
	/* size bytes of zeroed memory, or NULL (the action then fails, nothing changed) */
	void *(*alloc)(void *ctx, size_t size);
	void (*free)(void *ctx, void *p);
	/* Return once no reader can still hold a set published before the call
	 * (qsteer-dp: rte_rcu_qsbr_synchronize over the workers). */
	void (*synchronize)(void *ctx);
	/* After each publication, its grace period passed and the slots nothing refers
	 * to freed (may be NULL): qsteer-dp snapshots the shadow counters and logs. */
	void (*published)(void *ctx, const struct qs_pslots *ps);
};

struct qs_pslots {
	/* the published set: written here (release), read by workers (acquire) */
	struct qs_dp_policy_set *set;
	struct qs_pslot slot[QS_PSLOTS_MAX];
	int active, second, previous; /* slot indexes, -1 none */
	uint64_t version;	      /* of the newest set */
	uint64_t swaps;		      /* sets replaced */
	struct qs_dp_shared *shared;  /* policy keys, backend names, the drain mask */
	const struct qs_pslots_ops *ops;
	void *ctx;
};

/* What the control thread shows (docs/control.md "policy"). Pointers into ps. */
struct qs_pslots_view {
	const struct qs_pslot *active, *second, *previous; /* NULL: none */
	enum qs_dp_mode mode;
	uint32_t canary_pct;
	uint64_t version, swaps;
};

/* Empty: no set until the first load. ops and shared must outlive ps. */
void qs_pslots_init(struct qs_pslots *ps, struct qs_dp_shared *shared,
		    const struct qs_pslots_ops *ops, void *ctx);
/* Free every slot and the set (no reader may run any more). */
void qs_pslots_fini(struct qs_pslots *ps);

/*
 * Load source (a .q8 path or "builtin:NAME") and publish it: active (the running
 * active policy becomes the rollback target), or shadow / canary (pct 0..100) beside
 * the running active .q8. With policy keys configured a file must be signed with
 * one of them. QS_OK with "SOURCE loaded as MODE" in msg, or an error and the reason;
 * then nothing changed. The start-up policy comes here too (mode active).
 */
int qs_pslots_load(struct qs_pslots *ps, const char *source, enum qs_dp_mode mode, uint32_t pct,
		   char *msg, size_t msglen);
/* Drop the shadow/canary policy, else swap back to the previous active one. */
int qs_pslots_rollback(struct qs_pslots *ps, char *msg, size_t msglen);
/* Drain (no new requests) or undrain the backend with this id: one atomic word. */
int qs_pslots_drain(struct qs_pslots *ps, uint16_t backend_id, bool drain, char *msg,
		    size_t msglen);

void qs_pslots_view(const struct qs_pslots *ps, struct qs_pslots_view *v);
/* "policy set N: MODE ACTIVE[ + SECOND]", as qsteer-dp logs each publication. */
void qs_pslots_describe(const struct qs_pslots *ps, char *buf, size_t len);

/* The set a worker runs: read once per burst, between two quiescent states. */
static inline const struct qs_dp_policy_set *
qs_pslots_current(const struct qs_pslots *ps)
{
	return __atomic_load_n(&ps->set, __ATOMIC_ACQUIRE);
}

#endif /* QSTEER_DP_POLICY_SLOTS_H */
