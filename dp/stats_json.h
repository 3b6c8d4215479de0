/*
 * stats_json.h - private to dp/: the encoders of stats_json.c as jansson objects,
 * for the control server (ctl_server.c), which puts them into its answers without
 * printing and parsing them again. The text forms (qs_dp_counters_json,
 * qs_dp_shadow_json) are in dp_core.h; each is its object, printed compactly.
 */
#ifndef QSTEER_DP_STATS_JSON_H
#define QSTEER_DP_STATS_JSON_H

#include <jansson.h>

#include "qsteer/dp_core.h"

/* The counters object (docs/control.md "stats"); NULL when out of memory. */
json_t *qs_dp_counters_obj(const struct qs_dp_counters *c, const struct qs_dp_config *cfg);
/* The shadow report object (qs_dp_shadow_json); NULL when out of memory. */
json_t *qs_dp_shadow_obj(const struct qs_dp_shadow *sh, const struct qs_dp_config *cfg,
			 uint32_t top);

#endif /* QSTEER_DP_STATS_JSON_H */
