/*
 * policy_slots.c - qsteer-dp's policy slots, their publication under RCU, rollback
 * and the drain mask (policy_slots.h). Runs on the control thread (and once at
 * init); workers only read the published pointer.
 *
 * A publication builds a new immutable set, exchanges the pointer, waits for the
 * grace period (ops->synchronize) and only then frees the old set and every slot no
 * set refers to any more. All that can fail (the file, the signature, the slot, the
 * new set's memory) happens before the exchange, so a failure leaves everything as
 * it was.
 */
#include <stdio.h>
#include <string.h>

#include "policy_slots.h"

void
qs_pslots_init(struct qs_pslots *ps, struct qs_dp_shared *shared, const struct qs_pslots_ops *ops,
	       void *ctx)
{
	memset(ps, 0, sizeof(*ps));
	ps->active = ps->second = ps->previous = -1;
	ps->shared = shared;
	ps->ops = ops;
	ps->ctx = ctx;
}

static void
slot_release(struct qs_pslot *sl)
{
	qs_policy_free(sl->p);
	sl->p = NULL;
	sl->used = false;
}

void
qs_pslots_fini(struct qs_pslots *ps)
{
	int i;

	for (i = 0; i < QS_PSLOTS_MAX; i++)
		if (ps->slot[i].used)
			slot_release(&ps->slot[i]);
	if (ps->set)
		ps->ops->free(ps->ctx, ps->set);
	ps->set = NULL;
	ps->active = ps->second = ps->previous = -1;
}

/* Load source into a free slot: its index, or -qs_status with msg. */
static int
slot_load(struct qs_pslots *ps, const char *source, char *msg, size_t msglen)
{
	/* with policy keys configured, a file must be signed with one of them: at start
	 * and on every live load (active, shadow, canary), all of which come here */
	struct qs_policy_load_opts lo = {QS_SCHEMA_ROUTER_V1, QS_Q8_KIND_SCORER, NULL,
					 &ps->shared->cfg.policy_keys};
	struct qs_pslot *sl = NULL;
	int i;

	for (i = 0; i < QS_PSLOTS_MAX && !sl; i++)
		if (!ps->slot[i].used)
			sl = &ps->slot[i];
	if (!sl) {
		snprintf(msg, msglen, "too many policies held");
		return -QS_E_SIZE;
	}
	memset(sl, 0, sizeof(*sl));
	if (strncmp(source, "builtin:", 8) == 0) {
		if (qs_baseline_parse(source + 8, &sl->builtin) != 0) {
			snprintf(msg, msglen, "%s: unknown builtin policy", source);
			return -QS_E_ARG;
		}
	} else {
		int rc = qs_policy_load_file(source, &lo, &sl->p, msg, msglen);

		if (rc != QS_OK)
			return -rc;
	}
	snprintf(sl->source, sizeof(sl->source), "%s", source);
	sl->used = true;
	return (int)(sl - ps->slot);
}

/*
 * Publish a set made of the given slots (second -1: active alone), with previous as
 * the rollback target; wait until no worker can hold the old set, free it and every
 * slot nothing refers to any more. QS_E_NOMEM (nothing changed) when the new set
 * cannot be allocated.
 */
static int
publish(struct qs_pslots *ps, int active, int second, int previous, enum qs_dp_mode mode,
	uint32_t pct, char *msg, size_t msglen)
{
	struct qs_dp_policy_set *ns = ps->ops->alloc(ps->ctx, sizeof(*ns)), *old;
	int i;

	if (!ns) {
		snprintf(msg, msglen,
			 "out of memory publishing a policy set; the running one stays");
		return QS_E_NOMEM;
	}
	ns->active = ps->slot[active].p;
	ns->builtin = ps->slot[active].builtin;
	ns->second = second >= 0 ? ps->slot[second].p : NULL;
	ns->mode = second >= 0 ? mode : QS_DP_MODE_ACTIVE;
	ns->canary_pct = pct;
	ns->version = ++ps->version;
	old = __atomic_exchange_n(&ps->set, ns, __ATOMIC_ACQ_REL);
	if (old) {
		/* every worker has finished the burst that might have read old */
		ps->ops->synchronize(ps->ctx);
		ps->ops->free(ps->ctx, old);
		ps->swaps++;
	}
	ps->active = active;
	ps->second = second;
	ps->previous = previous;
	for (i = 0; i < QS_PSLOTS_MAX; i++)
		if (ps->slot[i].used && i != ps->active && i != ps->second && i != ps->previous)
			slot_release(&ps->slot[i]);
	if (ps->ops->published)
		ps->ops->published(ps->ctx, ps);
	return QS_OK;
}

int
qs_pslots_load(struct qs_pslots *ps, const char *source, enum qs_dp_mode mode, uint32_t pct,
	       char *msg, size_t msglen)
{
	int k, rc;

	if (mode == QS_DP_MODE_CANARY && pct > 100) {
		snprintf(msg, msglen, "canary percentage %u is above 100", pct);
		return QS_E_ARG;
	}
	if (mode != QS_DP_MODE_ACTIVE && (ps->active < 0 || !ps->slot[ps->active].p)) {
		snprintf(msg, msglen, "%s needs an active .q8 policy to compare with",
			 qs_dp_mode_name(mode));
		return QS_E_ARG;
	}
	if (mode != QS_DP_MODE_ACTIVE && strncmp(source, "builtin:", 8) == 0) {
		snprintf(msg, msglen, "%s takes a .q8 policy, not a builtin",
			 qs_dp_mode_name(mode));
		return QS_E_ARG;
	}
	/* validated completely before anything changes: a refusal leaves all as it was */
	k = slot_load(ps, source, msg, msglen);
	if (k < 0)
		return -k;
	if (mode == QS_DP_MODE_ACTIVE)
		rc = publish(ps, k, -1, ps->active, QS_DP_MODE_ACTIVE, 0, msg, msglen);
	else
		rc = publish(ps, ps->active, k, ps->previous, mode, pct, msg, msglen);
	if (rc != QS_OK) {
		slot_release(&ps->slot[k]);
		return rc;
	}
	snprintf(msg, msglen, "%s loaded as %s", source, qs_dp_mode_name(mode));
	return QS_OK;
}

int
qs_pslots_rollback(struct qs_pslots *ps, char *msg, size_t msglen)
{
	int prev, rc;

	if (ps->second >= 0) {
		/* said before the publication frees the dropped slot; replaced on failure */
		snprintf(msg, msglen, "%s dropped; %s alone is active", ps->slot[ps->second].source,
			 ps->slot[ps->active].source);
		return publish(ps, ps->active, -1, ps->previous, QS_DP_MODE_ACTIVE, 0, msg, msglen);
	}
	if (ps->previous < 0) {
		snprintf(msg, msglen, "nothing to roll back to");
		return QS_E_ARG;
	}
	prev = ps->previous;
	rc = publish(ps, prev, -1, ps->active, QS_DP_MODE_ACTIVE, 0, msg, msglen);
	if (rc != QS_OK)
		return rc;
	snprintf(msg, msglen, "rolled back to %s", ps->slot[prev].source);
	return QS_OK;
}

int
qs_pslots_drain(struct qs_pslots *ps, uint16_t backend_id, bool drain, char *msg, size_t msglen)
{
	struct qs_dp_shared *sh = ps->shared;
	int i = qs_dp_backend_index(&sh->cfg, backend_id);
	uint64_t bit;

	if (i < 0) {
		snprintf(msg, msglen, "no backend with id %u", backend_id);
		return QS_E_ARG;
	}
	bit = 1ull << i;
	if (drain)
		__atomic_fetch_or(&sh->admin_drain, bit, __ATOMIC_RELEASE);
	else
		__atomic_fetch_and(&sh->admin_drain, ~bit, __ATOMIC_RELEASE);
	snprintf(msg, msglen, "backend %s (id %u) %s", sh->cfg.be[i].name, backend_id,
		 drain ? "drained" : "undrained");
	return QS_OK;
}

void
qs_pslots_view(const struct qs_pslots *ps, struct qs_pslots_view *v)
{
	const struct qs_dp_policy_set *set = ps->set;

	v->active = ps->active >= 0 ? &ps->slot[ps->active] : NULL;
	v->second = ps->second >= 0 ? &ps->slot[ps->second] : NULL;
	v->previous = ps->previous >= 0 ? &ps->slot[ps->previous] : NULL;
	v->mode = set ? set->mode : QS_DP_MODE_ACTIVE;
	v->canary_pct = set ? set->canary_pct : 0;
	v->version = set ? set->version : 0;
	v->swaps = ps->swaps;
}

void
qs_pslots_describe(const struct qs_pslots *ps, char *buf, size_t len)
{
	struct qs_pslots_view v;

	qs_pslots_view(ps, &v);
	snprintf(buf, len, "policy set %llu: %s %s%s%s", (unsigned long long)v.version,
		 qs_dp_mode_name(v.mode), v.active ? v.active->source : "-", v.second ? " + " : "",
		 v.second ? v.second->source : "");
}
