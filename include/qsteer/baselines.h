/*
 * baselines.h - the heuristic routers every learned policy must beat (DESIGN.md 4):
 * random, round robin, least outstanding requests, least outstanding tokens,
 * join-shortest-queue on reports, power of two choices, shortest expected delay,
 * and a KV-aware weighted score in the style of LLM gateways.
 *
 * They see only the router's view: the same struct qs_feat_backend array the
 * feature code reads (last report plus what this router sent since), an
 * eligibility mask, and each backend's configured capacity weight. So the
 * simulator and the DPDK dataplane can run exactly the same code; this module
 * (libqsteer-baselines) has no dependency on the simulator.
 *
 * Determinism: each router's random state lives in its struct qs_baseline;
 * ties go to the lowest index; a masked candidate is never chosen.
 */
#ifndef QSTEER_BASELINES_H
#define QSTEER_BASELINES_H

#include <stdint.h>

#include "features.h"

enum qs_baseline_kind {
	QS_BASELINE_RANDOM = 0,
	QS_BASELINE_ROUND_ROBIN,
	QS_BASELINE_LEAST_REQUESTS, /* waiting + running + sent since report */
	QS_BASELINE_LEAST_TOKENS,   /* pending prefill + prompt tokens sent + KV tokens held */
	QS_BASELINE_JSQ,	    /* waiting + running as reported, ignoring own sends */
	QS_BASELINE_P2C,	    /* two random eligible candidates, fewer requests wins */
	QS_BASELINE_SED,	    /* (outstanding + 1) / capacity weight */
	QS_BASELINE_KV_AWARE,	    /* gateway score: queue + KV utilisation + prefix */
	QS_BASELINE__COUNT
};

/*
 * The fallback heuristic's default: what decides a request when no backend may be
 * chosen by the policy (every one stale, draining or KV-full), in qsteer-dp and
 * qsteer-xdp (config `fallback`) and in the simulator ([scenario] fallback), so in
 * the trainer. sed, the strongest heuristic on the shipped scenarios: with lor, on
 * heterogeneous-servers, where every slot-limited server is full at 65% of the
 * decisions, the shipped policy tied lor (SLO attainment 0.9903, 50 held-out seeds)
 * instead of sed (0.9981); with sed it ties sed (docs/trainer.md).
 */
#define QS_BASELINE_FALLBACK QS_BASELINE_SED

/* Weights of the KV-aware score; the defaults follow llm-d's default profile. */
struct qs_baseline_kv_weights {
	uint32_t queue;
	uint32_t kv;
	uint32_t prefix;
};

struct qs_baseline {
	enum qs_baseline_kind kind;
	uint64_t rng;	  /* splitmix64 state */
	uint32_t rr_next; /* round robin: next index to try */
	struct qs_baseline_kv_weights kvw;
};

/* Stable short name ("random", "rr", "lor", "lot", "jsq", "p2c", "sed", "kv"). */
const char *qs_baseline_name(enum qs_baseline_kind k);
/* Parse a short name (or a long alias); -1 if unknown. */
int qs_baseline_parse(const char *s, enum qs_baseline_kind *k);

void qs_baseline_init(struct qs_baseline *r, enum qs_baseline_kind k, uint64_t seed);

/*
 * Choose among n (<= QS_MAX_CANDIDATES) backends; bit i of eligible says backend i
 * may be chosen. capacity[i] is the configured relative capacity (> 0; NULL means
 * all equal). Returns the index, or -1 if no candidate is eligible.
 */
int qs_baseline_choose(struct qs_baseline *r, const struct qs_feat_request *rq,
		       const struct qs_feat_backend *be, uint32_t n, uint64_t eligible,
		       const uint32_t *capacity);

/*
 * The eligible backends the deterministic heuristics (lor, lot, jsq, sed, kv) rank
 * exactly as well as backend b; for the others, b alone. A behaviour-cloning
 * teacher uses it to break the ties qs_baseline_choose gives to the lowest index,
 * which the candidates' feature rows cannot tell apart.
 */
uint64_t qs_baseline_tied(const struct qs_baseline *r, const struct qs_feat_backend *be, uint32_t n,
			  uint64_t eligible, const uint32_t *capacity, uint32_t b);

#endif /* QSTEER_BASELINES_H */
