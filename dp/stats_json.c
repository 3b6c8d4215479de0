/*
 * stats_json.c - the dataplane's counters as JSON: one encoder for the control
 * socket's "stats", qsteer-dp --stats-out and qsteer-pcap check, so that the
 * replay test compares like with like. Keys are the counter names of
 * docs/control.md; drops are keyed by reason name, sends by backend name.
 * The shadow report's encoder too, shared by qsteer-dp and qsteer-xdp. Each is an
 * object (stats_json.h: what the control server puts into its answers) and that
 * object as text.
 */
#include <jansson.h>
#include <stdlib.h>

#include "qsteer/dp_core.h"
#include "stats_json.h"

json_t *
qs_dp_counters_obj(const struct qs_dp_counters *c, const struct qs_dp_config *cfg)
{
	json_t *o = json_object(), *d = json_object(), *b = json_object();
	int i;

#define PUT(k) json_object_set_new(o, #k, json_integer((json_int_t)c->k))
	PUT(rx);
	PUT(tx);
	PUT(pass);
	PUT(consumed);
	PUT(requests);
	PUT(continuations);
	PUT(cancels);
	PUT(reports);
	PUT(reports_ignored);
	PUT(decided_policy);
	PUT(decided_builtin);
	PUT(fallback);
	PUT(shadow_scored);
	PUT(shadow_disagree);
	PUT(canary);
	PUT(reqtab_insert);
	PUT(reqtab_evict);
	PUT(reqtab_expired);
	PUT(bursts);
#undef PUT
	for (i = 1; i < QS_DP_D__COUNT; i++)
		json_object_set_new(d, qs_dp_drop_name(i), json_integer((json_int_t)c->drop[i]));
	json_object_set_new(o, "drops", d);
	for (i = 0; i < (int)cfg->n_backends; i++)
		json_object_set_new(b, cfg->be[i].name, json_integer((json_int_t)c->to_backend[i]));
	json_object_set_new(o, "to_backend", b);
	if (cfg->n_tenants) {
		json_t *tr = json_object(), *tc = json_object();
		char name[8];

		for (i = 0; i <= (int)cfg->n_tenants; i++) {
			int row = i < (int)cfg->n_tenants ? i : QS_DP_TENANTS;

			if (row == QS_DP_TENANTS)
				snprintf(name, sizeof(name), "other");
			else
				snprintf(name, sizeof(name), "%u", cfg->tenant[i]);
			json_object_set_new(tr, name,
					    json_integer((json_int_t)c->tenant_requests[row]));
			json_object_set_new(tc, name,
					    json_integer((json_int_t)c->tenant_cancels[row]));
		}
		json_object_set_new(o, "tenant_requests", tr);
		json_object_set_new(o, "tenant_cancels", tc);
	}
	return o;
}

/* The object as compact text: NULL when out of memory. */
static char *
dump(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	json_decref(o);
	return s;
}

char *
qs_dp_counters_json(const struct qs_dp_counters *c, const struct qs_dp_config *cfg)
{
	return dump(qs_dp_counters_obj(c, cfg));
}

struct pair {
	uint64_t n;
	uint32_t a, s;
};

static int
pair_cmp(const void *x, const void *y)
{
	const struct pair *p = x, *q = y;

	if (p->n != q->n)
		return p->n > q->n ? -1 : 1;
	if (p->a != q->a)
		return p->a < q->a ? -1 : 1;
	return p->s < q->s ? -1 : p->s > q->s;
}

json_t *
qs_dp_shadow_obj(const struct qs_dp_shadow *sh, const struct qs_dp_config *cfg, uint32_t top)
{
	json_t *o = json_object(), *pb = json_array(), *dis = json_array();
	uint32_t nb = cfg->n_backends < QS_DP_MAX_BACKENDS ? cfg->n_backends : QS_DP_MAX_BACKENDS;
	struct pair *pairs = malloc(sizeof(*pairs) * QS_DP_MAX_BACKENDS * QS_DP_MAX_BACKENDS);
	uint32_t a, t, np = 0;
	json_t *out = NULL;

	if (!o || !pb || !dis || !pairs)
		goto done;
	json_object_set_new(o, "scored", json_integer((json_int_t)sh->scored));
	json_object_set_new(o, "agreed", json_integer((json_int_t)(sh->scored - sh->disagree)));
	json_object_set_new(o, "disagreed", json_integer((json_int_t)sh->disagree));
	/* parts per million, in integers: the dashboard's ratio is Prometheus' to make */
	json_object_set_new(o, "agreement_ppm",
			    sh->scored ? json_integer((json_int_t)((sh->scored - sh->disagree) *
								   1000000u / sh->scored))
				       : json_null());
	for (a = 0; a < nb; a++) {
		json_t *e = json_object();

		json_object_set_new(e, "backend", json_string(cfg->be[a].name));
		json_object_set_new(e, "active", json_integer((json_int_t)sh->row[a].active));
		json_object_set_new(e, "shadow", json_integer((json_int_t)sh->row[a].would));
		json_array_append_new(pb, e);
		for (t = 0; t < nb; t++)
			if (sh->row[a].pair[t])
				pairs[np++] = (struct pair){sh->row[a].pair[t], a, t};
	}
	qsort(pairs, np, sizeof(*pairs), pair_cmp);
	for (t = 0; t < np && (top == 0 || t < top); t++) {
		json_t *e = json_object();

		json_object_set_new(e, "active", json_string(cfg->be[pairs[t].a].name));
		json_object_set_new(e, "shadow", json_string(cfg->be[pairs[t].s].name));
		json_object_set_new(e, "count", json_integer((json_int_t)pairs[t].n));
		json_array_append_new(dis, e);
	}
	json_object_set_new(o, "per_backend", pb);
	json_object_set_new(o, "disagreements", dis);
	pb = dis = NULL;
	out = o;
	o = NULL;
done:
	json_decref(pb);
	json_decref(dis);
	json_decref(o);
	free(pairs);
	return out;
}

char *
qs_dp_shadow_json(const struct qs_dp_shadow *sh, const struct qs_dp_config *cfg, uint32_t top)
{
	return dump(qs_dp_shadow_obj(sh, cfg, top));
}
