/*
 * core.c - qsteer-dp's per-burst state machine: backend table, request-id table,
 * decision and commit (docs/dataplane.md, "Order of work within a burst").
 *
 * A burst is processed in three steps so that a decision is a pure function of
 * what came before it: prepare (parse every packet, apply the burst's reports in
 * packet order, snapshot the backend table, build features), decide (one
 * qs_policy_choose over all requests x candidates; the fallback for requests with
 * no eligible candidate), commit (in packet order: record each request's decision,
 * look up continuations, rewrite). Within a burst every request sees the same
 * snapshot; what a request changes (sent counts, prefix affinity, request-id
 * entries) is visible from the next packet (request-id table) or the next burst
 * (features).
 */
#include <string.h>

#include "qsteer/dp_core.h"
#include "qsteer/report_seq.h"
#include "qsteer/router_view.h"
#include "packet_fast.h"

static const char *const drop_names[QS_DP_D__COUNT] = {
    [QS_DP_D_NONE] = "none",
    [QS_DP_D_ETH_SHORT] = "eth-short",
    [QS_DP_D_VLAN_DEPTH] = "vlan-depth",
    [QS_DP_D_IP_HDR] = "ip-hdr",
    [QS_DP_D_IP_CSUM] = "ip-csum",
    [QS_DP_D_IP_FRAG] = "ip-frag",
    [QS_DP_D_IP6_EXT] = "ip6-ext",
    [QS_DP_D_UDP_HDR] = "udp-hdr",
    [QS_DP_D_NON_QRP] = "non-qrp",
    [QS_DP_D_QRP_SHORT] = "qrp-short",
    [QS_DP_D_QRP_MAGIC] = "qrp-magic",
    [QS_DP_D_QRP_VERSION] = "qrp-version",
    [QS_DP_D_QRP_TYPE] = "qrp-type",
    [QS_DP_D_QRP_HDR_LEN] = "qrp-hdr-len",
    [QS_DP_D_QRP_FIELD] = "qrp-field",
    [QS_DP_D_WRONG_PORT] = "wrong-port",
    [QS_DP_D_REPORT_BACKEND] = "report-backend",
    [QS_DP_D_REPORT_SOURCE] = "report-source",
    [QS_DP_D_REPORT_AUTH] = "report-auth",
    [QS_DP_D_REPORT_REPLAY] = "report-replay",
    [QS_DP_D_UNKNOWN_REQ] = "unknown-request",
    [QS_DP_D_NO_BACKEND] = "no-backend",
    [QS_DP_D_FAMILY] = "family",
    [QS_DP_D_TX] = "tx",
    [QS_DP_D_QUALITY_FLOOR] = "quality-floor",
};

const char *
qs_dp_drop_name(int d)
{
	if (d < 0 || d >= QS_DP_D__COUNT)
		return "?";
	return drop_names[d];
}

const char *
qs_dp_mode_name(enum qs_dp_mode m)
{
	switch (m) {
	case QS_DP_MODE_ACTIVE:
		return "active";
	case QS_DP_MODE_SHADOW:
		return "shadow";
	case QS_DP_MODE_CANARY:
		return "canary";
	}
	return "?";
}

void
qs_dp_report_src_default(struct qs_dp_backend_cfg *b)
{
	struct qs_report_src *r = &b->report_src;

	memset(r, 0, sizeof(*r));
	r->has_ip4 = b->has_ip4;
	r->has_ip6 = b->has_ip6;
	memcpy(r->ip4, b->ip4, 4);
	memcpy(r->ip6, b->ip6, 16);
}

void
qs_dp_config_defaults(struct qs_dp_config *c)
{
	memset(c, 0, sizeof(*c));
	c->svc.port = QS_QRP_PORT;
	c->svc.report_port = QS_QRP_REPORT_PORT;
	c->pass_non_qrp = false;
	c->report_max_age_ns =
	    QS_DP_REPORT_STALE_INTERVALS * QS_QRP_REPORT_INTERVAL_MS * 1000000ull;
	c->request_ttl_ns = 5000ull * 1000 * 1000;
	c->prefix_max_age_ns = 10000ull * 1000 * 1000;
	c->fallback = QS_BASELINE_FALLBACK;
	c->fallback_seed = 1;
	c->clock = QS_DP_CLOCK_TSC;
}

int
qs_dp_backend_index(const struct qs_dp_config *c, uint16_t id)
{
	uint32_t i;

	for (i = 0; i < c->n_backends && i < QS_DP_MAX_BACKENDS; i++)
		if (c->be[i].id == id)
			return (int)i;
	return -1;
}

void
qs_dp_shared_init(struct qs_dp_shared *s, const struct qs_dp_config *c)
{
	memset(s, 0, sizeof(*s));
	s->cfg = *c;
}

_Static_assert(QS_SHADOW_MAX_BACKENDS == QS_DP_MAX_BACKENDS, "shadow table covers every backend");

bool
qs_dp_canary_pick(uint64_t request_id, uint32_t pct)
{
	/* shadow.h: the XDP program runs the same function, so both split alike */
	return qs_canary_pick(request_id, pct) != 0;
}

void
qs_dp_shadow_add(struct qs_dp_shadow *acc, const struct qs_dp_worker *w)
{
	acc->scored += w->ctr.shadow_scored;
	acc->disagree += w->ctr.shadow_disagree;
	for (size_t a = 0; a < QS_DP_MAX_BACKENDS; a++) {
		const uint64_t *src = (const uint64_t *)&w->shadow[a];
		uint64_t *dst = (uint64_t *)&acc->row[a];

		for (size_t k = 0; k < sizeof(w->shadow[a]) / sizeof(uint64_t); k++)
			dst[k] += src[k];
	}
}

void
qs_dp_shadow_sum(struct qs_dp_shadow *acc, const struct qs_dp_shadow *src, bool sub)
{
	const uint64_t *s = (const uint64_t *)src;
	uint64_t *d = (uint64_t *)acc;

	/* struct qs_dp_shadow is u64s only */
	for (size_t k = 0; k < sizeof(*acc) / sizeof(uint64_t); k++)
		d[k] = sub ? d[k] - s[k] : d[k] + s[k];
}

void
qs_dp_counters_add(struct qs_dp_counters *acc, const struct qs_dp_counters *c)
{
	const uint64_t *src = (const uint64_t *)c;
	uint64_t *dst = (uint64_t *)acc;
	size_t i;

	/* the struct is nothing but u64 counters */
	for (i = 0; i < sizeof(*c) / sizeof(uint64_t); i++)
		dst[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

void
qs_dp_worker_init(struct qs_dp_worker *w, const struct qs_dp_shared *s, enum qs_kernel k,
		  uint32_t worker_index)
{
	uint32_t i, j;

	memset(w, 0, sizeof(*w));
	w->kernel = k;
	qs_prefix_init(&w->prefix);
	for (i = 0; i < QS_REQTAB_SETS; i++)
		for (j = 0; j < QS_REQTAB_WAYS; j++)
			w->reqtab.s[i].e[j].backend = QS_REQTAB_EMPTY;
	qs_baseline_init(&w->fallback, s->cfg.fallback, s->cfg.fallback_seed + worker_index);
	w->builtin_kind = QS_BASELINE__COUNT; /* initialised when a set names one */
}

/* ---- request-id table (include/qsteer/reqtab.h) ---------------------------------- */

static struct qs_reqtab_entry *
req_find(struct qs_dp_worker *w, uint32_t si, uint64_t id, uint16_t tenant, uint64_t now,
	 uint64_t ttl)
{
	int v = qs_reqtab_find(&w->reqtab.s[si], id, tenant, now, ttl);

	return v < 0 ? NULL : &w->reqtab.s[si].e[v];
}

static void
req_insert(struct qs_dp_worker *w, uint32_t si, uint64_t id, uint16_t tenant, uint16_t be,
	   uint64_t now, uint64_t ttl, bool done)
{
	enum qs_reqtab_way how;
	int v = qs_reqtab_way(&w->reqtab.s[si], id, tenant, now, ttl, &how);

	if (how == QS_REQTAB_EXPIRED)
		w->ctr.reqtab_expired++;
	else if (how >= QS_REQTAB_EVICT_DONE)
		w->ctr.reqtab_evict++;
	qs_reqtab_put(&w->reqtab.s[si], v, id, tenant, be, now, done);
	w->ctr.reqtab_insert++;
}

/* The per-tenant counter row of tenant t (config `tenants`; QS_DP_TENANTS: other). */
static inline uint32_t
tenant_row(const struct qs_dp_config *c, uint16_t t)
{
	uint32_t i;

	for (i = 0; i < c->n_tenants; i++)
		if (c->tenant[i] == t)
			return i;
	return QS_DP_TENANTS;
}

/* ---- backend table ----------------------------------------------------------- */

/* The packet is dropped for reason, and counted by it. */
static inline void
pkt_drop(struct qs_dp_worker *w, struct qs_dp_pkt *p, uint8_t reason)
{
	p->cls = QS_DP_C_DROP;
	p->drop = reason;
	w->ctr.drop[reason]++;
}

/* A report for backend idx, from its configured source (report_src.h) and, for a
 * keyed backend, with a valid tag. false: a replay (report_seq.h; dropped as
 * report-replay). */
static bool
apply_report(struct qs_dp_worker *w, struct qs_dp_shared *s, int idx, const struct qs_dp_pkt *p,
	     uint64_t now)
{
	struct qs_dp_backend_state *e = &s->be[idx];
	uint32_t seq;

	seq = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
	switch (qs_report_seq_check(e->valid, e->report_seq, p->h.request_id,
				    s->cfg.be[idx].report_key.has_key, e->last_ns, now,
				    s->cfg.report_max_age_ns)) {
	case QS_REPORT_SEQ_REPLAY:
		return false;
	case QS_REPORT_SEQ_OLD:
		w->ctr.reports_ignored++;
		return true;
	default:
		break;
	}
	/* another worker is writing this entry: its report is as new as ours */
	if ((seq & 1) || !__atomic_compare_exchange_n(&e->seq, &seq, seq + 1, false,
						      __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
		w->ctr.reports_ignored++;
		return true;
	}
	e->rep = p->rep;
	e->report_seq = p->h.request_id;
	e->last_ns = now;
	e->generation++;
	e->valid = 1;
	__atomic_store_n(&e->seq, seq + 2, __ATOMIC_RELEASE);
	return true;
}

static void
snapshot(const struct qs_dp_backend_state *e, struct qs_dp_backend_state *out)
{
	uint32_t s1, s2, tries;

	for (tries = 0; tries < 16; tries++) {
		s1 = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
		if (s1 & 1)
			continue;
		memcpy(out, e, sizeof(*out));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);
		if (s1 == s2)
			return;
	}
	/* a writer kept it busy: this burst sees the backend as never reported */
	memset(out, 0, sizeof(*out));
}

bool
qs_dp_backend_fresh(const struct qs_dp_shared *s, uint32_t i, uint64_t now_ns)
{
	struct qs_dp_backend_state st;

	snapshot(&s->be[i], &st);
	return st.valid && (now_ns < st.last_ns || now_ns - st.last_ns <= s->cfg.report_max_age_ns);
}

/* ---- the burst ---------------------------------------------------------------- */

#define PREFETCH_AHEAD 4

void
qs_dp_prepare(struct qs_dp_worker *w, struct qs_dp_shared *s, uint8_t *const *pkts,
	      const uint32_t *lens, uint32_t n, uint64_t now_ns)
{
	qs_dp_prepare_rx(w, s, pkts, lens, n, now_ns);
	qs_dp_prepare_view(w, s, __atomic_load_n(&s->admin_drain, __ATOMIC_ACQUIRE));
}

void
qs_dp_prepare_rx(struct qs_dp_worker *w, struct qs_dp_shared *s, uint8_t *const *pkts,
		 const uint32_t *lens, uint32_t n, uint64_t now_ns)
{
	struct qs_dp_burst *b = &w->b;
	const struct qs_dp_config *c = &s->cfg;
	uint64_t now;
	uint32_t i;

	if (n > QS_DP_BURST)
		n = QS_DP_BURST;
	now = now_ns > w->now_ns ? now_ns : w->now_ns;
	w->now_ns = now;
	b->n = n;
	b->now_ns = now;
	b->n_req = 0;
	w->ctr.rx += n;
	w->ctr.bursts++;

	/* headers (QRP's ends at byte 74 of an untagged IPv4 frame: two lines) a few
	 * packets ahead of the parser */
	for (i = 0; i < n && i < PREFETCH_AHEAD; i++) {
		__builtin_prefetch(pkts[i]);
		__builtin_prefetch(pkts[i] + 64);
	}
	for (i = 0; i < n; i++) {
		struct qs_dp_pkt *p = &b->pkt[i];

		if (i + PREFETCH_AHEAD < n) {
			__builtin_prefetch(pkts[i + PREFETCH_AHEAD]);
			__builtin_prefetch(pkts[i + PREFETCH_AHEAD] + 64);
		}
		qs_dp_parse_inl(c, pkts[i], lens[i], p);
		b->backend[i] = 0xffff;
		b->verdict[i] = QS_DP_V_DROP;
		if (p->cls == QS_DP_C_DROP) {
			w->ctr.drop[p->drop]++;
			continue;
		}
		if (p->cls == QS_DP_C_NON_QRP) {
			if (c->pass_non_qrp) {
				b->verdict[i] = QS_DP_V_PASS;
				p->drop = QS_DP_D_NONE;
			} else {
				w->ctr.drop[QS_DP_D_NON_QRP]++;
			}
			continue;
		}
		switch (p->h.type) {
		case QS_QRP_T_REPORT: {
			int bi = qs_dp_backend_index(c, p->rep.backend_id);
			const uint8_t *ip = pkts[i] + p->l3_off;

			w->ctr.reports++;
			/* who sent it is checked before its sequence number is believed */
			if (bi < 0) {
				p->drop = QS_DP_D_REPORT_BACKEND;
			} else if (!qs_report_src_ok(&c->be[bi].report_src, p->ipv6,
						     ip + (p->ipv6 ? 8 : 12),
						     qs_qrp_rd16(pkts[i] + p->l4_off))) {
				p->drop = QS_DP_D_REPORT_SOURCE;
			} else if (!qs_report_auth_ok(&c->be[bi].report_key, p->h.flags,
						      pkts[i] + p->pay_off)) {
				p->drop = QS_DP_D_REPORT_AUTH;
			} else if (!apply_report(w, s, bi, p, now)) {
				p->drop = QS_DP_D_REPORT_REPLAY;
			} else {
				b->verdict[i] = QS_DP_V_CONSUMED;
				break;
			}
			pkt_drop(w, p, p->drop);
			break;
		}
		case QS_QRP_T_REQUEST:
			b->req_pkt[b->n_req++] = (uint8_t)i;
			/* every request gets an entry at commit (reqtab.h: a cancel may
			 * follow even a one-packet request) */
			b->rset[i] = (uint16_t)qs_reqtab_set_of(p->h.request_id, p->h.tenant);
			__builtin_prefetch(&w->reqtab.s[b->rset[i]], 1);
			break;
		default: /* continuation, cancel: at commit, in packet order */
			b->rset[i] = (uint16_t)qs_reqtab_set_of(p->h.request_id, p->h.tenant);
			__builtin_prefetch(&w->reqtab.s[b->rset[i]], 1);
			break;
		}
	}
}

/* Row = template | request vector: both 16 bytes (QS_FR_COUNT), no overlap. */
_Static_assert(QS_FR_COUNT == 16, "the row builder ORs 16-byte rows");

typedef uint8_t qs_dp_row_v __attribute__((vector_size(QS_FR_COUNT)));

static inline void
row_or(uint8_t *row, const uint8_t *tmpl, qs_dp_row_v rv)
{
	qs_dp_row_v t;

	memcpy(&t, tmpl, sizeof(t));
	t |= rv;
	memcpy(row, &t, sizeof(t));
}

void
qs_dp_prepare_view(struct qs_dp_worker *w, const struct qs_dp_shared *s, uint64_t drain)
{
	struct qs_dp_burst *b = &w->b;
	const struct qs_dp_config *c = &s->cfg;
	uint64_t now = b->now_ns, fam[2] = {0, 0}, *tkey = b->tkey, *telig = b->telig;
	uint32_t i, nb = c->n_backends, r, cnd, nt = 0;
	uint8_t(*tmpl)[QS_DP_MAX_BACKENDS][QS_FR_COUNT] = b->tmpl;

	/*
	 * A burst without a request needs no view: nothing in it reads the masks or the
	 * features, and the sent counts a newer report resets are only ever raised by
	 * a request's commit, so resetting them at the next burst that has requests
	 * (which snapshots first) leaves every decision as it was.
	 */
	if (b->n_req == 0)
		return;

	/* snapshot the backend table and derive this burst's masks */
	b->cand_mask = 0;
	b->fallback_mask = 0;
	b->heard_mask = 0;
	b->n_cand = 0;
	for (i = 0; i < nb; i++) {
		struct qs_dp_backend_state st;
		struct qs_feat_backend *f = &b->fb[i];
		qs_u32 fl;

		snapshot(&s->be[i], &st);
		if (st.generation != w->seen_gen[i]) {
			/* a new report: what we sent before it is in its counts */
			w->seen_gen[i] = st.generation;
			w->sent_reqs[i] = 0;
			w->sent_tokens[i] = 0;
		}
		/* masks and report features: router_view.h, as the XDP program and the
		 * simulator the policy was trained in compute them */
		fl = qs_rview_backend(
		    &st.rep, qs_rview_fresh(st.valid, st.last_ns, now, c->report_max_age_ns), f);
		f->sent_reqs = w->sent_reqs[i];
		f->sent_tokens = w->sent_tokens[i];
		f->capacity_class = c->be[i].capacity_class;
		f->prefix_hit = 0;
		if (drain & (1ull << i))
			continue;
		if (qs_rview_fallback(fl))
			b->fallback_mask |= 1ull << i;
		if (qs_rview_heard(st.valid, st.last_ns, now, c->report_max_age_ns))
			b->heard_mask |= 1ull << i;
		if (qs_rview_candidate(fl)) {
			b->cand_mask |= 1ull << i;
			b->cand_be[b->n_cand++] = (uint8_t)i;
		}
		if (c->be[i].has_ip4)
			fam[0] |= 1ull << i;
		if (c->be[i].has_ip6)
			fam[1] |= 1ull << i;
	}
	/* each request's admissible backends: all but those below its SLO class's
	 * quality floor on its difficulty (quality.h; none masked without a cascade) */
	for (r = 0; r < b->n_req; r++) {
		const struct qs_dp_pkt *p = &b->pkt[b->req_pkt[r]];

		b->req_adm[r] =
		    ~c->quality_masked[p->h.slo_class & (QS_QUALITY_SLO - 1)][qs_rview_difficulty(
			p->h.flags, p->h.prompt_tokens, c->difficulty_prompt_tokens[0],
			c->difficulty_prompt_tokens[1], c->difficulty_prompt_tokens[2])];
	}
	if (b->n_cand == 0) {
		for (r = 0; r < b->n_req; r++)
			b->req_elig[r] = 0;
		return;
	}

	for (r = 0; r < b->n_req; r++) {
		const struct qs_dp_pkt *p = &b->pkt[b->req_pkt[r]];
		struct qs_feat_request rq = {p->h.prompt_tokens, p->h.max_new_tokens, p->h.priority,
					     p->h.slo_class};
		const uint32_t nc = b->n_cand;
		const uint64_t key =
		    b->cand_mask & fam[p->ipv6] & b->req_adm[r]; /* what it may choose */
		uint8_t rv[QS_FR_COUNT] = {0}, *x = &b->x[(size_t)r * nc * QS_FR_COUNT];
		const uint8_t(*t)[QS_FR_COUNT];
		qs_dp_row_v rvv;
		uint32_t hit =
		    qs_prefix_lookup(&w->prefix, p->h.prefix_hash, now, c->prefix_max_age_ns);
		uint32_t k;

		/*
		 * Each candidate's request-free row (request fields 0, prefix hit 0) over
		 * the global features of the backends this request may choose: the
		 * candidates with its address family that its quality floor admits
		 * (router_view.h, as the XDP program and the simulator). Requests that
		 * may choose the same set share one template set: at most one per address
		 * family and distinct quality mask, 2 x 16 = QS_DP_TMPL_SETS, so none is
		 * ever rebuilt within a burst whatever classes and difficulties its
		 * clients mix (a reviewer measured 12x the cost per request with 4
		 * sets evicted in turn).
		 */
		for (k = 0; k < nt && tkey[k] != key; k++)
			;
		if (k == nt) {
			struct qs_feat_request rq0 = {0, 0, 0, 0};
			struct qs_feat_global gl;

			/* the bound holds (above); were it passed, reusing a set is still
			 * right: this request's row is finished before the next lookup */
			k = nt < QS_DP_TMPL_SETS ? nt++ : 0;
			tkey[k] = key;
			telig[k] = 0;
			qs_rview_global(b->fb, nb, key, &gl);
			for (cnd = 0; cnd < nc; cnd++) {
				qs_feat_router_v1(&rq0, &b->fb[b->cand_be[cnd]], &gl, tmpl[k][cnd]);
				telig[k] |= (uint64_t)(key >> b->cand_be[cnd] & 1) << cnd;
			}
		}
		t = (const uint8_t(*)[QS_FR_COUNT])tmpl[k];

		/*
		 * Row = the candidate's template | this request's fields. Every router v1
		 * feature is a function of the request alone or of the backend and global
		 * view alone; the request's four are features.h's own quantizers, as
		 * qs_feat_router_v1 applies them (no quantizer is re-implemented here, and
		 * a unit test checks every row against a full qs_feat_router_v1 call).
		 */
		rv[QS_FR_PROMPT_LOG] = qs_feat_log2q(rq.prompt_tokens, 3);
		rv[QS_FR_GEN_LOG] = qs_feat_log2q(rq.max_new_tokens, 3);
		rv[QS_FR_PRIORITY] = qs_feat_class4(rq.priority);
		rv[QS_FR_SLO] = qs_feat_class4(rq.slo_class);
		memcpy(&rvv, rv, sizeof(rvv));
		for (cnd = 0; cnd < nc; cnd++) /* a byte store may alias b: nc, not b->n_cand */
			row_or(x + (size_t)cnd * QS_FR_COUNT, t[cnd], rvv);
		if (hit < QS_DP_MAX_BACKENDS && (b->cand_mask >> hit & 1)) {
			for (cnd = 0; cnd < nc; cnd++)
				if (b->cand_be[cnd] == hit)
					x[(size_t)cnd * QS_FR_COUNT + QS_FR_PREFIX_HIT] = 127;
		}
		b->req_elig[r] = telig[k];
	}
}

static void
cand_view(const struct qs_dp_worker *w, const struct qs_dp_config *c, uint32_t hit,
	  struct qs_feat_backend *fbc, uint32_t *cap)
{
	const struct qs_dp_burst *b = &w->b;
	uint32_t cnd;

	for (cnd = 0; cnd < b->n_cand; cnd++) {
		fbc[cnd] = b->fb[b->cand_be[cnd]];
		fbc[cnd].prefix_hit = hit == b->cand_be[cnd];
		cap[cnd] = c->be[b->cand_be[cnd]].capacity;
	}
}

void
qs_dp_decide(struct qs_dp_worker *w, const struct qs_dp_config *c,
	     const struct qs_dp_policy_set *set, uint16_t *out)
{
	struct qs_dp_burst *b = &w->b;
	uint32_t r, nb = c->n_backends;
	uint64_t fam[2] = {0, 0};
	uint32_t i, cap[QS_DP_MAX_BACKENDS];
	struct qs_feat_backend fbc[QS_DP_MAX_BACKENDS];

	if (b->n_req == 0)
		return;
	for (r = 0; r < b->n_req; r++) {
		b->choice[r] = QS_NO_CHOICE;
		b->choice2[r] = QS_NO_CHOICE;
		b->disagree[r] = 0;
		b->how[r] = QS_DP_HOW_NONE;
	}
	if (b->n_cand > 0) {
		if (set->active) {
			qs_policy_choose(set->active, w->kernel, b->x, b->n_req, b->n_cand,
					 b->req_elig, NULL, b->choice);
			for (r = 0; r < b->n_req; r++)
				b->how[r] = QS_DP_HOW_POLICY;
			if (set->second && set->mode != QS_DP_MODE_ACTIVE) {
				qs_policy_choose(set->second, w->kernel, b->x, b->n_req, b->n_cand,
						 b->req_elig, NULL, b->choice2);
				for (r = 0; r < b->n_req; r++) {
					const struct qs_dp_pkt *p = &b->pkt[b->req_pkt[r]];

					if (set->mode == QS_DP_MODE_SHADOW) {
						b->disagree[r] =
						    b->choice[r] != b->choice2[r] ? 2 : 1;
					} else if (qs_dp_canary_pick(p->h.request_id,
								     set->canary_pct)) {
						b->choice[r] = b->choice2[r];
						b->how[r] = QS_DP_HOW_CANARY;
					}
				}
			}
		} else {
			if (w->builtin_kind != set->builtin) {
				qs_baseline_init(&w->builtin, set->builtin, c->fallback_seed);
				w->builtin_kind = set->builtin;
			}
			for (r = 0; r < b->n_req; r++) {
				const struct qs_dp_pkt *p = &b->pkt[b->req_pkt[r]];
				struct qs_feat_request rq = {p->h.prompt_tokens,
							     p->h.max_new_tokens, p->h.priority,
							     p->h.slo_class};
				uint32_t hit = qs_prefix_lookup(&w->prefix, p->h.prefix_hash,
								b->now_ns, c->prefix_max_age_ns);
				int k;

				cand_view(w, c, hit, fbc, cap);
				k = qs_baseline_choose(&w->builtin, &rq, fbc, b->n_cand,
						       b->req_elig[r], cap);
				b->choice[r] = k < 0 ? QS_NO_CHOICE : (uint16_t)k;
				b->how[r] = QS_DP_HOW_BUILTIN;
			}
		}
	}
	for (i = 0; i < nb; i++) {
		if (c->be[i].has_ip4)
			fam[0] |= 1ull << i;
		if (c->be[i].has_ip6)
			fam[1] |= 1ull << i;
		cap[i] = c->be[i].capacity;
	}
	for (r = 0; r < b->n_req; r++) {
		const struct qs_dp_pkt *p = &b->pkt[b->req_pkt[r]];
		const uint64_t may = fam[p->ipv6] & b->req_adm[r];
		uint64_t m = qs_rview_fallback_set(b->heard_mask & may, b->fallback_mask & may);
		struct qs_feat_request rq;
		uint32_t hit;
		int k;

		if (b->choice[r] != QS_NO_CHOICE) {
			out[r] = b->cand_be[b->choice[r]];
			continue;
		}
		/* no candidate the policy may pick: the configured heuristic decides */
		out[r] = 0xffff;
		b->how[r] = qs_rview_floor_left_none(b->fallback_mask, fam[p->ipv6], b->req_adm[r])
				? QS_DP_HOW_FLOOR
				: QS_DP_HOW_NONE;
		if (!m)
			continue;
		rq.prompt_tokens = p->h.prompt_tokens;
		rq.max_new_tokens = p->h.max_new_tokens;
		rq.priority = p->h.priority;
		rq.slo_class = p->h.slo_class;
		hit =
		    qs_prefix_lookup(&w->prefix, p->h.prefix_hash, b->now_ns, c->prefix_max_age_ns);
		for (i = 0; i < nb; i++)
			fbc[i] = b->fb[i];
		if (hit < nb)
			fbc[hit].prefix_hit = 1;
		k = qs_baseline_choose(&w->fallback, &rq, fbc, nb, m, cap);
		if (k >= 0) {
			out[r] = (uint16_t)k;
			b->how[r] = QS_DP_HOW_FALLBACK;
		}
	}
}

void
qs_dp_commit(struct qs_dp_worker *w, const struct qs_dp_shared *s, uint8_t *const *pkts,
	     const uint16_t *req_backend)
{
	struct qs_dp_burst *b = &w->b;
	const struct qs_dp_config *c = &s->cfg;
	uint32_t i, r = 0;
	uint64_t now = b->now_ns;

	for (i = 0; i < b->n; i++) {
		struct qs_dp_pkt *p = &b->pkt[i];
		struct qs_reqtab_entry *e;
		uint16_t be;
		int rc;

		if (b->verdict[i] == QS_DP_V_PASS) {
			w->ctr.pass++;
			continue;
		}
		if (b->verdict[i] == QS_DP_V_CONSUMED) {
			w->ctr.consumed++;
			continue;
		}
		if (p->cls != QS_DP_C_QRP)
			continue;
		if (p->h.type == QS_QRP_T_REQUEST) {
			const uint8_t how = b->how[r];

			be = req_backend[r];
			w->ctr.requests++;
			switch (how) {
			case QS_DP_HOW_POLICY:
				w->ctr.decided_policy++;
				break;
			case QS_DP_HOW_CANARY:
				w->ctr.decided_policy++;
				w->ctr.canary++;
				break;
			case QS_DP_HOW_BUILTIN:
				w->ctr.decided_builtin++;
				break;
			case QS_DP_HOW_FALLBACK:
				w->ctr.fallback++;
				break;
			default:
				break;
			}
			if (b->disagree[r])
				w->ctr.shadow_scored++;
			if (b->disagree[r] == 2)
				w->ctr.shadow_disagree++;
			/* where the shadow would have sent it: its choice, or (no candidate
			 * for either) the same fallback backend */
			if (b->disagree[r] && be < c->n_backends) {
				uint16_t sb =
				    b->choice2[r] == QS_NO_CHOICE ? be : b->cand_be[b->choice2[r]];

				qs_shadow_count(&w->shadow[be], &w->shadow[sb], be, sb);
			}
			r++;
			if (be >= c->n_backends) {
				pkt_drop(w, p,
					 how == QS_DP_HOW_FLOOR ? QS_DP_D_QUALITY_FLOOR
								: QS_DP_D_NO_BACKEND);
				continue;
			}
			rc = qs_dp_rewrite_inl(pkts[i], p, &c->be[be]);
			if (rc != QS_DP_D_NONE) {
				pkt_drop(w, p, (uint8_t)rc);
				continue;
			}
			w->sent_reqs[be]++;
			w->sent_tokens[be] += p->h.prompt_tokens;
			qs_prefix_update(&w->prefix, p->h.prefix_hash, be, now);
			req_insert(w, b->rset[i], p->h.request_id, p->h.tenant, be, now,
				   c->request_ttl_ns, (p->h.flags & QS_QRP_F_LAST) != 0);
		} else {
			if (p->h.type == QS_QRP_T_CONTINUATION)
				w->ctr.continuations++;
			else
				w->ctr.cancels++;
			e = req_find(w, b->rset[i], p->h.request_id, p->h.tenant, now,
				     c->request_ttl_ns);
			/* after its last packet a request takes a cancel, not more packets */
			if (!e || (e->done && p->h.type == QS_QRP_T_CONTINUATION)) {
				pkt_drop(w, p, QS_DP_D_UNKNOWN_REQ);
				continue;
			}
			be = e->backend;
			if (p->h.type == QS_QRP_T_CANCEL) {
				e->backend = QS_REQTAB_EMPTY; /* nothing may follow a cancel */
			} else {
				e->last_ns = now;
				e->done = (p->h.flags & QS_QRP_F_LAST) != 0;
			}
			rc = qs_dp_rewrite_inl(pkts[i], p, &c->be[be]);
			if (rc != QS_DP_D_NONE) {
				pkt_drop(w, p, (uint8_t)rc);
				continue;
			}
		}
		b->verdict[i] = QS_DP_V_TX;
		b->backend[i] = be;
		w->ctr.tx++;
		w->ctr.to_backend[be]++;
		if (c->n_tenants) {
			uint32_t t = tenant_row(c, p->h.tenant);

			if (p->h.type == QS_QRP_T_REQUEST)
				w->ctr.tenant_requests[t]++;
			else if (p->h.type == QS_QRP_T_CANCEL)
				w->ctr.tenant_cancels[t]++;
		}
	}
}

void
qs_dp_process(struct qs_dp_worker *w, struct qs_dp_shared *s, const struct qs_dp_policy_set *set,
	      uint8_t *const *pkts, const uint32_t *lens, uint32_t n, uint64_t now_ns)
{
	uint16_t out[QS_DP_BURST];

	qs_dp_prepare(w, s, pkts, lens, n, now_ns);
	qs_dp_decide(w, &s->cfg, set, out);
	qs_dp_commit(w, s, pkts, out);
}
