/*
 * baselines.c - libqsteer-baselines: the heuristic routers of baselines.h.
 *
 * Only the router's view is used (reports plus own sends, capacity weights), so
 * the DPDK dataplane can link this file as it is. Integer arithmetic throughout,
 * so the simulator and the dataplane make identical choices; ties go to the
 * lowest index; a candidate outside the eligibility mask is never chosen.
 */
#include <string.h>

#include "qsteer/baseline_cost.h"
#include "qsteer/baselines.h"
#include "qsteer/rng.h"

static const char *const names[QS_BASELINE__COUNT] = {
    "random", "rr", "lor", "lot", "jsq", "p2c", "sed", "kv",
};
static const char *const aliases[QS_BASELINE__COUNT] = {
    "random",
    "round-robin",
    "least-requests",
    "least-tokens",
    "join-shortest-queue",
    "power-of-two",
    "shortest-expected-delay",
    "kv-aware",
};

const char *
qs_baseline_name(enum qs_baseline_kind k)
{
	return (unsigned)k < QS_BASELINE__COUNT ? names[k] : "?";
}

int
qs_baseline_parse(const char *s, enum qs_baseline_kind *k)
{
	int i;

	for (i = 0; i < QS_BASELINE__COUNT; i++) {
		if (!strcmp(s, names[i]) || !strcmp(s, aliases[i])) {
			*k = (enum qs_baseline_kind)i;
			return 0;
		}
	}
	return -1;
}

static uint64_t
rng_next(uint64_t *s)
{
	return qs_splitmix64(s);
}

void
qs_baseline_init(struct qs_baseline *r, enum qs_baseline_kind k, uint64_t seed)
{
	memset(r, 0, sizeof(*r));
	r->kind = k;
	r->rng = seed ^ 0x5bd1e9955bd1e995ull;
	/* llm-d's default scheduling profile: queue 2, KV utilisation 2, prefix 3. */
	r->kvw.queue = QS_BL_KV_W_QUEUE;
	r->kvw.kv = QS_BL_KV_W_KV;
	r->kvw.prefix = QS_BL_KV_W_PREFIX;
}

/* Index of the k-th (0-based) set bit of m. */
static int
nth_bit(uint64_t m, uint32_t k)
{
	while (k--)
		m &= m - 1;
	return m ? __builtin_ctzll(m) : -1;
}

int
qs_baseline_choose(struct qs_baseline *r, const struct qs_feat_request *rq,
		   const struct qs_feat_backend *be, uint32_t n, uint64_t eligible,
		   const uint32_t *capacity)
{
	uint32_t m, i;
	int best = -1;
	uint64_t bv = 0;

	(void)rq;
	if (n > QS_MAX_CANDIDATES)
		n = QS_MAX_CANDIDATES;
	if (n < 64)
		eligible &= (1ull << n) - 1;
	if (!eligible)
		return -1;
	m = (uint32_t)__builtin_popcountll(eligible);
	switch (r->kind) {
	case QS_BASELINE_RANDOM:
		return nth_bit(eligible, (uint32_t)(rng_next(&r->rng) % m));
	case QS_BASELINE_ROUND_ROBIN:
		for (i = 0; i < n; i++) {
			uint32_t c = (r->rr_next + i) % n;

			if (eligible >> c & 1) {
				r->rr_next = (c + 1) % n;
				return (int)c;
			}
		}
		return -1;
	case QS_BASELINE_P2C: {
		uint32_t a, b;
		int ia, ib;

		if (m == 1)
			return nth_bit(eligible, 0);
		a = (uint32_t)(rng_next(&r->rng) % m);
		b = (uint32_t)(rng_next(&r->rng) % (m - 1));
		if (b >= a)
			b++;
		ia = nth_bit(eligible, a);
		ib = nth_bit(eligible, b);
		if (ib < ia) {
			int t = ia;

			ia = ib;
			ib = t;
		}
		return qs_bl_outstanding(&be[ib]) < qs_bl_outstanding(&be[ia]) ? ib : ia;
	}
	case QS_BASELINE_SED:
		for (i = 0; i < n; i++) {
			uint64_t ci, cb;

			if (!(eligible >> i & 1))
				continue;
			ci = capacity && capacity[i] ? capacity[i] : 1;
			cb = best >= 0 && capacity && capacity[best] ? capacity[best] : 1;
			if (best < 0 || qs_bl_sed_better(qs_bl_outstanding(&be[i]), ci, bv, cb)) {
				best = (int)i;
				bv = qs_bl_outstanding(&be[i]);
			}
		}
		return best;
	case QS_BASELINE_KV_AWARE: {
		uint64_t qmin = UINT64_MAX, qmax = 0, q;

		for (i = 0; i < n; i++) {
			if (!(eligible >> i & 1))
				continue;
			q = qs_bl_kv_queue(&be[i]);
			qmin = q < qmin ? q : qmin;
			qmax = q > qmax ? q : qmax;
		}
		for (i = 0; i < n; i++) {
			uint64_t score;

			if (!(eligible >> i & 1))
				continue;
			score = qs_bl_kv_score(&be[i], qmin, qmax, r->kvw.queue, r->kvw.kv,
					       r->kvw.prefix);
			if (best < 0 || score > bv) {
				best = (int)i;
				bv = score;
			}
		}
		return best;
	}
	default:
		break;
	}
	/* Minimum-load routers. */
	for (i = 0; i < n; i++) {
		uint64_t v;

		if (!(eligible >> i & 1))
			continue;
		switch (r->kind) {
		case QS_BASELINE_LEAST_TOKENS:
			v = qs_bl_token_load(&be[i]);
			break;
		case QS_BASELINE_JSQ:
			v = qs_bl_jsq(&be[i]);
			break;
		default:
			v = qs_bl_outstanding(&be[i]);
			break;
		}
		if (best < 0 || v < bv) {
			best = (int)i;
			bv = v;
		}
	}
	return best;
}

/* What a ranked heuristic compares, for qs_baseline_tied (sed: its load, weighed by
 * capacity there). */
static uint64_t
ranked_cost(const struct qs_baseline *r, const struct qs_feat_backend *b, uint64_t qmin,
	    uint64_t qmax)
{
	switch (r->kind) {
	case QS_BASELINE_KV_AWARE:
		return qs_bl_kv_score(b, qmin, qmax, r->kvw.queue, r->kvw.kv, r->kvw.prefix);
	case QS_BASELINE_LEAST_TOKENS:
		return qs_bl_token_load(b);
	case QS_BASELINE_JSQ:
		return qs_bl_jsq(b);
	default: /* lor, sed */
		return qs_bl_outstanding(b);
	}
}

uint64_t
qs_baseline_tied(const struct qs_baseline *r, const struct qs_feat_backend *be, uint32_t n,
		 uint64_t eligible, const uint32_t *capacity, uint32_t b)
{
	uint64_t tied = 1ull << b, qmin = UINT64_MAX, qmax = 0, cb, vb;
	uint32_t i;

	if (n > QS_MAX_CANDIDATES)
		n = QS_MAX_CANDIDATES;
	if (b >= n)
		return 0;
	if (r->kind == QS_BASELINE_RANDOM || r->kind == QS_BASELINE_ROUND_ROBIN ||
	    r->kind == QS_BASELINE_P2C)
		return tied;
	if (n < 64)
		eligible &= (1ull << n) - 1;
	if (r->kind == QS_BASELINE_KV_AWARE)
		for (i = 0; i < n; i++) {
			uint64_t q;

			if (!(eligible >> i & 1))
				continue;
			q = qs_bl_kv_queue(&be[i]);
			qmin = q < qmin ? q : qmin;
			qmax = q > qmax ? q : qmax;
		}
	cb = capacity && capacity[b] ? capacity[b] : 1;
	vb = ranked_cost(r, &be[b], qmin, qmax);
	for (i = 0; i < n; i++) {
		uint64_t ci = capacity && capacity[i] ? capacity[i] : 1, v;

		if (!(eligible >> i & 1))
			continue;
		v = ranked_cost(r, &be[i], qmin, qmax);
		/* sed: (o_i + 1) / c_i == (o_b + 1) / c_b, cross-multiplied */
		if (r->kind == QS_BASELINE_SED ? (v + 1) * cb == (vb + 1) * ci : v == vb)
			tied |= 1ull << i;
	}
	return tied;
}
