/*
 * batch.c - the batching strategies: each looks at the agent's counters at the
 * start of an iteration and decides the sequence cap, the token budget, the KV
 * reserve and the admission order. The scheduler (agent.c) enforces whatever is
 * decided, so a strategy can never break the KV or slot invariants.
 */
#include <stdlib.h>
#include <string.h>

#include "qsteer/agent.h"
#include "qsteer/policy.h"

_Static_assert(QS_Q8_ACT_SPEC_MAX == QS_SPEC_DEPTH_MAX,
	       "the action table's depth field and the profile's limit are one limit");

const char *const qs_batch_builtin[] = {
    "fixed", "fixed:32", "adaptive", "coalesce", "latency", "throughput", NULL,
};

const char *const qs_batch_builtin_spec[] = {
    "spec:1", "spec:2", "spec:4", "spec:8", "spec-rule", NULL,
};

static int
parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *v)
{
	char *end;
	unsigned long x = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || x < lo || x > hi)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

int
qs_batch_from_policy(struct qs_policy *p, const char *name, struct qs_batch_strategy *s, char *msg,
		     size_t msglen)
{
	if (p->kind != QS_Q8_KIND_CLASSIFIER || p->schema != QS_SCHEMA_BATCH_V1 ||
	    p->n_in != QS_FB_COUNT || p->n_actions == 0 || !p->action) {
		snprintf(msg, msglen,
			 "%s: a batching policy must be a classifier for schema %u with %u "
			 "inputs and an action table",
			 name, QS_SCHEMA_BATCH_V1, QS_FB_COUNT);
		return QS_E_KIND;
	}
	memset(s, 0, sizeof(*s));
	s->kind = QS_BATCH_K_LEARNED;
	snprintf(s->name, sizeof(s->name), "q8:%s", p->name[0] ? p->name : name);
	s->policy = p;
	return QS_OK;
}

int
qs_batch_parse(const char *spec, struct qs_batch_strategy *s, char *msg, size_t msglen)
{
	return qs_batch_parse_signed(spec, NULL, s, msg, msglen);
}

int
qs_batch_parse_signed(const char *spec, const struct qs_q8_keyset *keys,
		      struct qs_batch_strategy *s, char *msg, size_t msglen)
{
	const char *arg = strchr(spec, ':');
	size_t klen = arg ? (size_t)(arg - spec) : strlen(spec);
	uint32_t v;

	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", spec);
	if (arg)
		arg++;
	if (klen == 2 && !strncmp(spec, "q8", 2)) {
		struct qs_policy_load_opts o = {QS_SCHEMA_BATCH_V1, QS_Q8_KIND_CLASSIFIER, NULL,
						keys};
		struct qs_policy *p;
		int rc;

		if (!arg || !*arg) {
			snprintf(msg, msglen, "batching: q8: needs a file, e.g. q8:batch.q8");
			return QS_E_ARG;
		}
		rc = qs_policy_load_file(arg, &o, &p, msg, msglen);
		if (rc != QS_OK)
			return rc;
		rc = qs_batch_from_policy(p, arg, s, msg, msglen);
		if (rc != QS_OK)
			qs_policy_free(p);
		return rc;
	}
	if (klen == 5 && !strncmp(spec, "fixed", 5)) {
		s->kind = QS_BATCH_K_FIXED;
		if (arg && parse_u32(arg, 1, 1u << 20, &s->fixed_seqs)) {
			snprintf(msg, msglen, "batching: fixed:N needs N in 1..2^20, not '%s'",
				 arg);
			return QS_E_ARG;
		}
		return QS_OK;
	}
	if (klen == 8 && !strncmp(spec, "adaptive", 8)) {
		s->kind = QS_BATCH_K_ADAPTIVE;
		s->target_iter_ns = 50000000ull;
		if (arg) {
			if (parse_u32(arg, 1, 100000, &v)) {
				snprintf(msg, msglen,
					 "batching: adaptive:MS needs a target of 1..100000 ms, "
					 "not '%s'",
					 arg);
				return QS_E_ARG;
			}
			s->target_iter_ns = (uint64_t)v * 1000000ull;
		}
		return QS_OK;
	}
	if (!arg && !strcmp(spec, "coalesce")) {
		s->kind = QS_BATCH_K_COALESCE;
		return QS_OK;
	}
	if (!arg && !strcmp(spec, "latency")) {
		s->kind = QS_BATCH_K_LATENCY;
		return QS_OK;
	}
	if (!arg && !strcmp(spec, "throughput")) {
		s->kind = QS_BATCH_K_THROUGHPUT;
		return QS_OK;
	}
	if (klen == 4 && !strncmp(spec, "spec", 4)) {
		s->kind = QS_BATCH_K_FIXED;
		if (!arg || parse_u32(arg, 1, QS_SPEC_DEPTH_MAX, &s->spec_depth)) {
			snprintf(msg, msglen, "batching: spec:K needs a depth K in 1..%u, not '%s'",
				 QS_SPEC_DEPTH_MAX, arg ? arg : "");
			return QS_E_ARG;
		}
		return QS_OK;
	}
	if (!arg && !strcmp(spec, "spec-rule")) {
		s->kind = QS_BATCH_K_SPEC_RULE;
		return QS_OK;
	}
	snprintf(msg, msglen,
		 "batching: unknown strategy '%s' (fixed[:N], adaptive[:MS], coalesce, latency, "
		 "throughput, spec:K, spec-rule, q8:FILE)",
		 spec);
	return QS_E_ARG;
}

void
qs_batch_free(struct qs_batch_strategy *s)
{
	if (s->policy)
		qs_policy_free(s->policy);
	s->policy = NULL;
}

/*
 * Adaptive: additive increase while the queue has work and iterations stay under
 * the target, multiplicative decrease as soon as one goes over it (AIMD, as TCP,
 * for the same reason: it finds the largest batch that keeps the latency bound
 * without knowing the hardware's cost curve). The token budget follows the cap.
 */
static void
adaptive(struct qs_batch_strategy *s, const struct qs_batch_view *v, struct qs_batch_decision *d)
{
	uint32_t hw = v->hw.max_seqs, step;

	if (s->adaptive_cap == 0) {
		s->adaptive_cap = QS_RC_MAX(1u, hw / 4);
		s->adaptive_tokens = QS_RC_MAX(1u, v->hw.max_tokens / 4);
	}
	if (v->last_iter_ns > s->target_iter_ns) {
		s->adaptive_cap = QS_RC_MAX(1u, s->adaptive_cap * 3 / 4);
		s->adaptive_tokens = QS_RC_MAX(64u, s->adaptive_tokens * 3 / 4);
	} else if (v->st.waiting > 0) {
		step = QS_RC_MAX(1u, QS_RC_MIN(v->st.waiting, hw) / 4);
		s->adaptive_cap = QS_RC_MIN(hw, s->adaptive_cap + step);
		s->adaptive_tokens =
		    QS_RC_MIN(v->hw.max_tokens, s->adaptive_tokens + v->hw.max_tokens / 16 + 1);
	}
	d->lim.max_seqs = s->adaptive_cap;
	d->lim.max_tokens = s->adaptive_tokens;
}

static void
learned(struct qs_batch_strategy *s, const struct qs_batch_view *v, struct qs_batch_decision *d)
{
	uint8_t x[QS_FB_COUNT];
	uint16_t act = 0;
	const struct qs_q8_action *a;

	qs_batch_features_v1(&v->st, x);
	if (qs_policy_classify(s->policy, QS_KERNEL_AUTO, x, QS_FB_COUNT, 1, &act) != QS_OK ||
	    act >= s->policy->n_actions)
		act = 0;
	a = &s->policy->action[act];
	s->action_count[act & 63]++;
	qs_batch_apply_action(a, d);
	d->action = act;
}

void
qs_batch_apply_action(const struct qs_q8_action *a, struct qs_batch_decision *d)
{
	static const enum qs_batch_order order[] = {QS_BATCH_FCFS, QS_BATCH_SHORTEST,
						    QS_BATCH_PRIORITY, QS_BATCH_FCFS};

	d->lim.max_seqs = a->max_seqs;
	d->lim.max_tokens = a->max_tokens;
	d->lim.kv_reserve_pct = a->kv_reserve_pct;
	/* The loader refuses order 3 and depths past QS_SPEC_DEPTH_MAX; an action built in
	 * memory gets FCFS for the one, and the scheduler clamps the other. */
	d->order = order[a->flags & QS_Q8_ACT_ORDER_MASK];
	d->coalesce = (a->flags & QS_Q8_ACT_COALESCE) != 0;
	d->lim.spec_depth = (a->flags & QS_Q8_ACT_SPEC_MASK) >> QS_Q8_ACT_SPEC_SHIFT;
}

/*
 * The speculation rule: deep drafts while few sequences decode and their contexts
 * are short, none at large batches. A decode iteration of a small batch is bound by
 * reading the weights, so verifying k more positions is nearly free and every
 * accepted token is a saved iteration; at large batches verification competes for
 * compute with the sequences themselves (SmartSpec, Liu et al. 2024), and long
 * contexts make each draft step read more KV.
 */
static uint32_t
spec_rule(const struct qs_batch_view *v)
{
	static const struct {
		uint32_t max_running, depth;
	} t[] = {{4, 4}, {16, 3}, {32, 2}, {64, 1}};
	uint32_t run = v->st.running, depth = 0, i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (run <= t[i].max_running) {
			depth = t[i].depth;
			break;
		}
	if (depth && run && v->st.run_ctx_tokens / run > 2048)
		depth--;
	return depth;
}

void
qs_batch_decide(struct qs_batch_strategy *s, const struct qs_batch_view *v,
		struct qs_batch_decision *d)
{
	memset(d, 0, sizeof(*d));
	d->lim = v->hw;
	d->lim.spec_depth = 0; /* no strategy speculates unless it says so */
	d->order = QS_BATCH_FCFS;
	switch (s->kind) {
	case QS_BATCH_K_FIXED:
		if (s->fixed_seqs)
			d->lim.max_seqs = s->fixed_seqs;
		d->lim.spec_depth = s->spec_depth;
		break;
	case QS_BATCH_K_SPEC_RULE:
		d->lim.spec_depth = spec_rule(v);
		break;
	case QS_BATCH_K_ADAPTIVE:
		adaptive(s, v, d);
		break;
	case QS_BATCH_K_COALESCE:
		d->coalesce = true;
		break;
	case QS_BATCH_K_LATENCY:
		/* Short iterations (small prefill chunks) keep decodes flowing; tight SLO
		 * classes first; a KV reserve so admissions rarely force preemptions. */
		d->lim.max_tokens = QS_RC_MIN(v->hw.max_tokens, 1024u);
		d->lim.kv_reserve_pct = 10;
		d->order = QS_BATCH_PRIORITY;
		break;
	case QS_BATCH_K_THROUGHPUT:
		/* Full budget, no reserve, shortest prompts first so the most sequences
		 * join the decode batch per prefill token spent. */
		d->order = QS_BATCH_SHORTEST;
		break;
	case QS_BATCH_K_LEARNED:
		learned(s, v, d);
		break;
	case QS_BATCH_K_EXTERNAL:
		if (s->ext)
			s->ext(s->ext_ctx, v, d);
		break;
	default:
		break;
	}
}
