/*
 * intake.c - QRP datagrams to complete requests. A request fits one packet or
 * continues in type-2 packets with the same id; the open ones wait in a bounded
 * table and expire after max_age_ns, so a lost last packet cannot pin memory.
 * Every refused datagram is counted by reason (DESIGN.md 3.4): nothing malformed
 * reaches the scheduler.
 *
 * The table is scanned linearly: it holds at most a few hundred open requests and
 * a continuation is rare next to single-packet requests; a hash would pay off only
 * at table sizes the agent does not use.
 */
#include <stdlib.h>
#include <string.h>

#include "qsteer/agent.h"

struct slot {
	bool used;
	uint64_t first_ns;
	struct qs_agent_req req;
};

struct qs_agent_intake {
	struct qs_agent_intake_cfg cfg;
	uint32_t open;
	struct slot *tab;
	struct qs_agent_intake_stats st;
};

static const char *const drop_names[QS_AGENT_DROP__COUNT] = {
    "ok",	 "short",      "magic",	  "version",  "type",	    "hdr_len", "field",	   "orphan",
    "duplicate", "table_full", "expired", "too_many", "unexpected", "invalid", "mismatch",
};

const char *
qs_agent_drop_name(int reason)
{
	if (reason < 0 || reason >= QS_AGENT_DROP__COUNT)
		return "unknown";
	return drop_names[reason];
}

void
qs_agent_intake_cfg_default(struct qs_agent_intake_cfg *c)
{
	c->table_size = 256;
	c->max_age_ns = 1000000000ull;
	c->max_packets = 64;
	c->max_prompt_tokens = 1u << 20;
	c->max_new_tokens = 1u << 16;
}

int
qs_agent_intake_create(const struct qs_agent_intake_cfg *c, struct qs_agent_intake **out, char *msg,
		       size_t msglen)
{
	struct qs_agent_intake *in;

	if (c->table_size == 0 || c->table_size > 65536 || c->max_packets == 0) {
		snprintf(msg, msglen, "intake: table size must be 1..65536 and max packets >= 1");
		return QS_E_ARG;
	}
	in = calloc(1, sizeof(*in));
	if (in)
		in->tab = calloc(c->table_size, sizeof(*in->tab));
	if (!in || !in->tab) {
		free(in);
		snprintf(msg, msglen, "intake: out of memory");
		return QS_E_NOMEM;
	}
	in->cfg = *c;
	*out = in;
	return QS_OK;
}

void
qs_agent_intake_destroy(struct qs_agent_intake *in)
{
	if (!in)
		return;
	free(in->tab);
	free(in);
}

static enum qs_agent_in
drop(struct qs_agent_intake *in, int reason, int *out_reason)
{
	in->st.drops[reason]++;
	in->st.dropped++;
	if (out_reason)
		*out_reason = reason;
	return QS_AGENT_IN_DROP;
}

static struct slot *
find(struct qs_agent_intake *in, uint64_t id)
{
	uint32_t i;

	if (in->open == 0)
		return NULL;
	for (i = 0; i < in->cfg.table_size; i++)
		if (in->tab[i].used && in->tab[i].req.id == id)
			return &in->tab[i];
	return NULL;
}

static void
fill_req(struct qs_agent_req *r, const struct qs_qrp_hdr *h, uint32_t payload,
	 const struct qs_agent_addr *from, uint64_t now_ns)
{
	memset(r, 0, sizeof(*r));
	r->id = h->request_id;
	r->prompt_tokens = h->prompt_tokens;
	r->max_new_tokens = h->max_new_tokens;
	r->prefix_hash = h->prefix_hash;
	r->tenant = h->tenant;
	r->priority = h->priority;
	r->slo_class = h->slo_class;
	r->packets = 1;
	r->bytes = payload;
	r->recv_ns = now_ns;
	if (from)
		r->client = *from;
}

enum qs_agent_in
qs_agent_intake_feed(struct qs_agent_intake *in, const uint8_t *buf, uint32_t len,
		     const struct qs_agent_addr *from, uint64_t now_ns, struct qs_agent_req *req,
		     int *reason)
{
	struct qs_qrp_hdr h;
	enum qs_qrp_err e;
	struct slot *s;
	uint32_t i;

	if (reason)
		*reason = 0;
	in->st.packets++;
	e = qs_qrp_parse_hdr(buf, len, &h);
	if (e != QS_QRP_OK)
		return drop(in, (int)e, reason);
	switch (h.type) {
	case QS_QRP_T_REPORT:
		return drop(in, QS_AGENT_DROP_UNEXPECTED, reason);
	case QS_QRP_T_CANCEL:
		s = find(in, h.request_id);
		if (s) {
			s->used = false;
			in->open--;
		}
		memset(req, 0, sizeof(*req));
		req->id = h.request_id;
		req->tenant = h.tenant;
		req->recv_ns = now_ns;
		if (from) /* where the answer to the cancel goes */
			req->client = *from;
		in->st.cancels++;
		return QS_AGENT_IN_CANCEL;
	case QS_QRP_T_REQUEST:
		if (h.prompt_tokens == 0 || h.max_new_tokens == 0 ||
		    h.prompt_tokens > in->cfg.max_prompt_tokens ||
		    h.max_new_tokens > in->cfg.max_new_tokens)
			return drop(in, QS_AGENT_DROP_INVALID, reason);
		if (find(in, h.request_id))
			return drop(in, QS_AGENT_DROP_DUPLICATE, reason);
		if (h.flags & QS_QRP_F_LAST) {
			fill_req(req, &h, len - h.hdr_len, from, now_ns);
			in->st.requests++;
			return QS_AGENT_IN_REQUEST;
		}
		if (in->open >= in->cfg.table_size)
			return drop(in, QS_AGENT_DROP_TABLE_FULL, reason);
		for (i = 0; i < in->cfg.table_size; i++)
			if (!in->tab[i].used)
				break;
		s = &in->tab[i];
		s->used = true;
		s->first_ns = now_ns;
		fill_req(&s->req, &h, len - h.hdr_len, from, now_ns);
		in->open++;
		return QS_AGENT_IN_NONE;
	default: /* continuation */
		s = find(in, h.request_id);
		if (!s)
			return drop(in, QS_AGENT_DROP_ORPHAN, reason);
		if (h.tenant != s->req.tenant) {
			/* Not this request's packet: the open request stays as it was. */
			return drop(in, QS_AGENT_DROP_MISMATCH, reason);
		}
		if (s->req.packets >= in->cfg.max_packets) {
			/* The whole request goes: a truncated prompt is no prompt. */
			s->used = false;
			in->open--;
			return drop(in, QS_AGENT_DROP_TOO_MANY, reason);
		}
		s->req.packets++;
		s->req.bytes += len - h.hdr_len;
		s->req.recv_ns = now_ns;
		if (!(h.flags & QS_QRP_F_LAST))
			return QS_AGENT_IN_NONE;
		*req = s->req;
		s->used = false;
		in->open--;
		in->st.requests++;
		return QS_AGENT_IN_REQUEST;
	}
}

uint32_t
qs_agent_intake_age(struct qs_agent_intake *in, uint64_t now_ns)
{
	uint32_t i, n = 0;

	if (in->open == 0)
		return 0;
	for (i = 0; i < in->cfg.table_size; i++) {
		struct slot *s = &in->tab[i];

		if (s->used && now_ns >= s->first_ns && now_ns - s->first_ns > in->cfg.max_age_ns) {
			s->used = false;
			in->open--;
			in->st.drops[QS_AGENT_DROP_EXPIRED]++;
			in->st.dropped++;
			n++;
		}
	}
	return n;
}

uint32_t
qs_agent_intake_open(const struct qs_agent_intake *in)
{
	return in->open;
}

const struct qs_agent_intake_stats *
qs_agent_intake_stats(const struct qs_agent_intake *in)
{
	return &in->st;
}
