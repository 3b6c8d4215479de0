/*
 * quality.h - cascade routing's hard constraint, once for the simulator and the
 * dataplanes (issue 15; docs/sim.md "Model variants", docs/dataplane.md "Model
 * variants"): which backends a request of SLO class c and difficulty d may go to.
 *
 * A backend's quality on difficulty d is its accuracy there (0..1). A backend is
 * admissible for (c, d) when its quality reaches floor[c] times the best quality any
 * backend reaches on d, so the best backend always qualifies and no set is empty
 * while there is a backend. Computed when a configuration is loaded, never per
 * request: per request the DPDK core and the XDP program look up the mask for its
 * SLO class and difficulty (router_view.h qs_rview_difficulty) and fold it into the
 * masks they already keep.
 */
#ifndef QSTEER_QUALITY_H
#define QSTEER_QUALITY_H

#include <stdint.h>

#define QS_DIFFICULTIES 4 /* request difficulty classes, 0 (easiest)..3 */
#define QS_QUALITY_SLO	4 /* SLO classes, as the wire's 0..3 */

/*
 * quality[i][d] for the n backends (n <= 64), floor[c] for each SLO class (0: no
 * floor). Writes best[d] and ok[c][d], a mask over the backends (bit i: backend i).
 * unmasked: every backend admissible (the simulator's --no-quality-mask, which
 * judges floors without enforcing them).
 */
void qs_quality_admissible(const double (*quality)[QS_DIFFICULTIES], uint32_t n,
			   const double floor[QS_QUALITY_SLO], int unmasked,
			   double best[QS_DIFFICULTIES],
			   uint64_t ok[QS_QUALITY_SLO][QS_DIFFICULTIES]);

/*
 * A config value of 1..4 comma-separated shares in 0..1, difficulty (or SLO class)
 * 0 first; a short list repeats its last. Returns 0, or -1 when v is not such a
 * list (out is then unspecified). The simulator's scenarios and the dataplanes'
 * configs read `quality` and `quality_floor` with it.
 */
int qs_quality_parse_list(const char *v, double out[QS_DIFFICULTIES]);

#endif /* QSTEER_QUALITY_H */
