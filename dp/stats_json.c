/*
 * stats_json.c - the dataplane's counters as JSON: one encoder for the control
 * socket's "stats", qsteer-dp --stats-out and qsteer-pcap check, so that the
 * replay test compares like with like. Keys are the counter names of
 * docs/control.md; drops are keyed by reason name, sends by backend name.
 */
#include <jansson.h>

#include "qsteer/dp_core.h"

char *
qs_dp_counters_json(const struct qs_dp_counters *c, const struct qs_dp_config *cfg)
{
	json_t *o = json_object(), *d = json_object(), *b = json_object();
	char *s;
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
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}
