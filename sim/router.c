/*
 * router.c - routers for the simulator's run loop: any baseline of baselines.h or
 * an int8 .q8 scorer through libqsteer-policy, and qs_sim_run, the loop that
 * drives a simulation to its end with one of them (the same pull API a trainer
 * uses).
 */
#include <stdlib.h>
#include <string.h>

#include "qsteer/policy.h"
#include "sim_internal.h"

int
qs_sim_router_parse(const char *spec, uint64_t seed, struct qs_sim_router *r, char *msg,
		    size_t msglen)
{
	enum qs_baseline_kind k;

	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", spec);
	if (!strncmp(spec, "q8:", 3)) {
		struct qs_policy_load_opts o = {.expect_schema = QS_SCHEMA_ROUTER_V1,
						.expect_kind = QS_Q8_KIND_SCORER};
		const char *slash = strrchr(spec + 3, '/');
		int rc = qs_policy_load_file(spec + 3, &o, &r->policy, msg, msglen);

		if (rc != QS_OK)
			return rc;
		if (r->policy->n_in != QS_FR_COUNT || r->policy->n_out != 1) {
			qs_policy_free(r->policy);
			r->policy = NULL;
			return qs_fail(msg, msglen, QS_E_SHAPE,
				       "%s: a router scorer takes %d inputs to 1 output", spec + 3,
				       QS_FR_COUNT);
		}
		r->is_policy = true;
		snprintf(r->name, sizeof(r->name), "q8:%s", slash ? slash + 1 : spec + 3);
		r->seed = seed;
		qs_baseline_init(&r->base, QS_BASELINE_FALLBACK, seed);
		return QS_OK;
	}
	{
		static const char *const pre[] = {"small:", "large:", "thresh:"};

		for (int i = 0; i < 3; i++)
			if (!strncmp(spec, pre[i], strlen(pre[i]))) {
				r->variant = QS_SIM_VARIANT_SMALL + i;
				spec += strlen(pre[i]);
				break;
			}
	}
	if (qs_baseline_parse(spec, &k))
		return qs_fail(msg, msglen, QS_E_ARG,
			       "unknown router '%s' (random, rr, lor, lot, jsq, p2c, sed, kv, "
			       "each also as small:H, large:H or thresh:H; q8:FILE)",
			       r->name);
	qs_baseline_init(&r->base, k, qs_sim_stream(seed, QS_STREAM_ROUTER));
	if (r->variant == QS_SIM_VARIANT_ANY)
		snprintf(r->name, sizeof(r->name), "%s", qs_baseline_name(k));
	return QS_OK;
}

void
qs_sim_router_free(struct qs_sim_router *r)
{
	qs_policy_free(r->policy);
	r->policy = NULL;
}

void
qs_sim_router_fallback(struct qs_sim_router *r, enum qs_baseline_kind k)
{
	if (r->is_policy && r->base.kind != k)
		qs_baseline_init(&r->base, k, r->seed);
}

int
qs_sim_router_choose(struct qs_sim_router *r, const struct qs_sim_decision *d)
{
	if (d->eligible == 0 && d->n_backends) {
		/* Every backend masked: the configured fallback heuristic decides among
		 * those not draining, as the dataplane's (DESIGN 3.1), and it is counted;
		 * where the dataplane would drop the request (all draining), among those
		 * its quality floor admits: a floor holds even then. */
		r->fallbacks++;
		return qs_baseline_choose(&r->base, &d->freq, d->backend, d->n_backends,
					  d->fallback ? d->fallback : d->admissible, d->capacity);
	}
	if (r->is_policy) {
		uint16_t choice = QS_NO_CHOICE;

		if (qs_policy_choose(r->policy, QS_KERNEL_AUTO, &d->features[0][0], 1,
				     d->n_backends, &d->eligible, NULL, &choice) == QS_OK &&
		    choice != QS_NO_CHOICE)
			return choice;
		/* DESIGN 3.1: the caller falls back to its heuristic and counts it. */
		r->fallbacks++;
	}
	if (r->variant != QS_SIM_VARIANT_ANY) {
		uint64_t set = r->variant == QS_SIM_VARIANT_SMALL   ? d->variant_small
			       : r->variant == QS_SIM_VARIANT_LARGE ? d->variant_large
			       : d->req.difficulty >= 2		    ? d->variant_large
								    : d->variant_small;

		/* within the candidates; none of the variant's: any candidate */
		if (d->eligible & set)
			return qs_baseline_choose(&r->base, &d->freq, d->backend, d->n_backends,
						  d->eligible & set, d->capacity);
	}
	return qs_baseline_choose(&r->base, &d->freq, d->backend, d->n_backends, d->eligible,
				  d->capacity);
}

int
qs_sim_run(struct qs_sim *s, struct qs_sim_router *r, char *msg, size_t msglen)
{
	struct qs_sim_decision *d = malloc(sizeof(*d));
	int rc;

	if (!d)
		return qs_fail(msg, msglen, QS_E_NOMEM, "out of memory");
	/* Heuristics read the view only; building feature rows is for policies. */
	qs_sim_set_features(s, r->is_policy);
	qs_sim_router_fallback(r, s->cfg.fallback);
	for (;;) {
		int b;

		rc = qs_sim_next_decision(s, d, msg, msglen);
		if (rc != QS_OK || d->done)
			break;
		b = qs_sim_router_choose(r, d);
		if (b < 0) {
			rc =
			    qs_fail(msg, msglen, QS_E_VALUE, "router %s chose no backend", r->name);
			break;
		}
		rc = qs_sim_route(s, (uint32_t)b, msg, msglen);
		if (rc != QS_OK)
			break;
	}
	free(d);
	return rc;
}
