/*
 * gen.c - qsteer-pcap gen: a trace CSV (read by the simulator's trace reader,
 * sim/trace.c) or a synthetic workload -> a pcap of requests, multi-packet
 * requests with continuations, cancels, interleaved reports from simulated
 * backends (with an outage and a draining window), and optionally one malformed
 * packet kind after another. Deterministic: same arguments, same bytes. --manifest
 * writes what the file holds.
 */
#include <inttypes.h>
#include <jansson.h>
#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>

#include "qsteer/dp_core.h"
#include "qsteer/rng.h"
#include "qsteer/sim.h"

#include "qsteer_pcap.h"

static uint64_t
rng_next(uint64_t *s)
{
	return qs_splitmix64(s);
}

static uint32_t
rng_below(uint64_t *s, uint32_t n)
{
	return n ? (uint32_t)(rng_next(s) % n) : 0;
}

struct ev {
	uint64_t t_ns;
	uint64_t seq;
	uint32_t len;
	uint8_t *data;
	int8_t malformed; /* expected drop reason, or -1 */
};

struct gen {
	struct ev *ev;
	size_t n, cap;
	uint64_t seq;
	uint64_t rng;
	const struct qs_dp_config *c;
	/* what the file holds */
	uint64_t requests, continuations, cancels, reports, malformed[QS_DP_D__COUNT];
};

static void
push(struct gen *g, uint64_t t, const uint8_t *data, uint32_t len, int malformed)
{
	struct ev *e;

	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 4096;
		g->ev = realloc(g->ev, g->cap * sizeof(*g->ev));
		if (!g->ev)
			qs_pcap_die("out of memory");
	}
	e = &g->ev[g->n++];
	e->t_ns = t;
	e->seq = g->seq++;
	e->len = len;
	e->data = malloc(len ? len : 1);
	if (!e->data)
		qs_pcap_die("out of memory");
	memcpy(e->data, data, len);
	e->malformed = (int8_t)malformed;
	if (malformed >= 0)
		g->malformed[malformed]++;
}

static int
ev_cmp(const void *a, const void *b)
{
	const struct ev *x = a, *y = b;

	if (x->t_ns != y->t_ns)
		return x->t_ns < y->t_ns ? -1 : 1;
	return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static void
client_flow(struct gen *g, struct qs_dp_flow *f, uint32_t client, bool v6, uint16_t dport)
{
	const struct qs_dp_config *c = g->c;

	memset(f, 0, sizeof(*f));
	f->src_mac[0] = 0x02;
	f->src_mac[1] = 0xc1;
	f->src_mac[5] = (uint8_t)client;
	f->dst_mac[0] = 0x02;
	f->dst_mac[1] = 0x5e;
	f->dst_mac[5] = 0x01;
	f->ipv6 = v6;
	if (v6) {
		f->src_ip[0] = 0xfd;
		f->src_ip[1] = 0x01;
		f->src_ip[15] = (uint8_t)(client + 1);
		f->src_ip[14] = (uint8_t)(client >> 8);
		memcpy(f->dst_ip, c->svc.ip6, 16);
	} else {
		f->src_ip[0] = 192;
		f->src_ip[1] = 168;
		f->src_ip[2] = (uint8_t)(client >> 8);
		f->src_ip[3] = (uint8_t)(client + 1);
		if (c->svc.has_ip4) {
			memcpy(f->dst_ip, c->svc.ip4, 4);
		} else {
			f->dst_ip[0] = 10;
			f->dst_ip[3] = 1;
		}
	}
	f->sport = (uint16_t)(40000 + client);
	f->dport = dport;
	f->vlan = (client % 10 == 3) ? 100 : 0; /* some clients sit behind a VLAN */
}

/* Where backend b's agent reports from: its own address, where it is believed. */
static void
backend_flow(struct gen *g, struct qs_dp_flow *f, uint32_t b)
{
	const struct qs_dp_backend_cfg *be = &g->c->be[b];

	client_flow(g, f, 100 + b, !be->has_ip4, g->c->svc.report_port);
	if (be->has_ip4)
		memcpy(f->src_ip, be->ip4, 4);
	else
		memcpy(f->src_ip, be->ip6, 16);
	f->vlan = 0;
}

/* The first backend with a report key, or -1. */
static int
first_keyed(const struct qs_dp_config *c)
{
	uint32_t b;

	for (b = 0; b < c->n_backends; b++)
		if (c->be[b].report_key.has_key)
			return (int)b;
	return -1;
}

/* One malformed frame of the given kind (k indexes the kinds below). */
static int
gen_malformed(struct gen *g, uint32_t k, uint8_t *buf, uint32_t cap, uint32_t *len)
{
	struct qs_dp_flow f;
	struct qs_qrp_hdr h = {QS_QRP_T_REQUEST, QS_QRP_F_LAST, 0, 0, 100, 10, 0, 0, 0, 32};
	uint8_t pay[128];
	uint32_t l;
	uint32_t ip;

	client_flow(g, &f, 7, false, g->c->svc.port);
	h.request_id = 0x7700000000ull + g->seq;
	l = qs_dp_build_qrp(buf, cap, &f, &h, NULL, 16);
	ip = 14;
	switch (k) {
	case 0:
		*len = 10;
		return QS_DP_D_ETH_SHORT;
	case 1: /* three VLAN tags */
		memmove(buf + 24, buf + 12, l - 12);
		qs_qrp_wr16(buf + 12, 0x88a8);
		qs_qrp_wr16(buf + 16, 0x8100);
		qs_qrp_wr16(buf + 20, 0x8100);
		qs_qrp_wr16(buf + 14, 1);
		qs_qrp_wr16(buf + 18, 2);
		qs_qrp_wr16(buf + 22, 3);
		*len = l + 12;
		return QS_DP_D_VLAN_DEPTH;
	case 2: /* IHL 4 */
		buf[ip] = 0x44;
		*len = l;
		return QS_DP_D_IP_HDR;
	case 3:
		buf[ip + 8] ^= 0x10; /* TTL changed, checksum not */
		*len = l;
		return QS_DP_D_IP_CSUM;
	case 4: { /* more fragments, checksum fixed */
		uint16_t c;

		qs_qrp_wr16(buf + ip + 6, 0x2000);
		qs_qrp_wr16(buf + ip + 10, 0);
		c = qs_dp_ip4_csum(buf + ip, 20);
		qs_qrp_wr16(buf + ip + 10, c);
		*len = l;
		return QS_DP_D_IP_FRAG;
	}
	case 5: /* IPv6 hop-by-hop options before UDP */
		client_flow(g, &f, 7, true, g->c->svc.port);
		l = qs_dp_build_qrp(buf, cap, &f, &h, NULL, 16);
		buf[14 + 6] = 0;
		*len = l;
		return QS_DP_D_IP6_EXT;
	case 6: { /* UDP length beyond the IP payload */
		qs_qrp_wr16(buf + ip + 20 + 4, 200);
		*len = l;
		return QS_DP_D_UDP_HDR;
	}
	case 7: /* UDP to another port */
		client_flow(g, &f, 7, false, 53);
		memset(pay, 0x35, 40);
		*len = qs_dp_build_udp(buf, cap, &f, pay, 40);
		return QS_DP_D_NON_QRP;
	case 8: /* ARP */
		memset(buf, 0xff, 6);
		memset(buf + 6, 0x02, 6);
		qs_qrp_wr16(buf + 12, 0x0806);
		memset(buf + 14, 0, 28);
		*len = 60;
		return QS_DP_D_NON_QRP;
	case 9:
		memset(pay, 0, 20);
		qs_qrp_wr16(pay, QS_QRP_MAGIC);
		*len = qs_dp_build_udp(buf, cap, &f, pay, 20);
		return QS_DP_D_QRP_SHORT;
	case 10:
		qs_qrp_write_hdr(pay, &h);
		pay[0] = 0x51;
		pay[1] = 0x00;
		*len = qs_dp_build_udp(buf, cap, &f, pay, 32);
		return QS_DP_D_QRP_MAGIC;
	case 11:
		qs_qrp_write_hdr(pay, &h);
		pay[2] = 2;
		*len = qs_dp_build_udp(buf, cap, &f, pay, 32);
		return QS_DP_D_QRP_VERSION;
	case 12:
		qs_qrp_write_hdr(pay, &h);
		pay[3] = 9;
		*len = qs_dp_build_udp(buf, cap, &f, pay, 32);
		return QS_DP_D_QRP_TYPE;
	case 13:
		qs_qrp_write_hdr(pay, &h);
		qs_qrp_wr16(pay + 30, 64);
		*len = qs_dp_build_udp(buf, cap, &f, pay, 40);
		return QS_DP_D_QRP_HDR_LEN;
	case 14:
		qs_qrp_write_hdr(pay, &h);
		pay[28] = 7; /* priority 7 */
		*len = qs_dp_build_udp(buf, cap, &f, pay, 32);
		return QS_DP_D_QRP_FIELD;
	case 15: { /* a report sent to the request port */
		struct qs_qrp_report r;

		memset(&r, 0, sizeof(r));
		r.backend_id = g->c->be[0].id;
		h.type = QS_QRP_T_REPORT;
		h.flags = 0;
		*len = qs_dp_build_qrp(buf, cap, &f, &h, &r, 0);
		return g->c->svc.port == g->c->svc.report_port ? QS_DP_D_NONE : QS_DP_D_WRONG_PORT;
	}
	case 16: { /* a report from a backend nobody configured */
		struct qs_qrp_report r;

		memset(&r, 0, sizeof(r));
		r.backend_id = 0xfffe;
		h.type = QS_QRP_T_REPORT;
		h.flags = 0;
		client_flow(g, &f, 7, false, g->c->svc.report_port);
		*len = qs_dp_build_qrp(buf, cap, &f, &h, &r, 0);
		return QS_DP_D_REPORT_BACKEND;
	}
	case 18: { /* a forged report: a real backend id from another address, claiming
		    * an empty backend with a sequence number that would lock the real
		    * agent out if it were believed */
		struct qs_qrp_report r;

		memset(&r, 0, sizeof(r));
		r.backend_id = g->c->be[g->seq % g->c->n_backends].id;
		r.kv_total = 4096;
		h.type = QS_QRP_T_REPORT;
		h.flags = 0;
		h.request_id = 1000000000ull + g->seq;
		client_flow(g, &f, 9, false, g->c->svc.report_port);
		*len = qs_dp_build_qrp(buf, cap, &f, &h, &r, 0);
		return g->c->be[g->seq % g->c->n_backends].report_src.any ? QS_DP_D_NONE
									  : QS_DP_D_REPORT_SOURCE;
	}
	case 20:   /* keyed backend: a report from its own address, untagged */
	case 21:   /* keyed backend: tagged with another key */
	case 22: { /* keyed backend: a replay of its first report (sequence 1) */
		struct qs_qrp_report r;
		struct qs_report_key wrong;
		int kb = first_keyed(g->c);

		memset(&r, 0, sizeof(r));
		r.backend_id = g->c->be[kb].id;
		r.kv_total = 4096;
		h.type = QS_QRP_T_REPORT;
		h.flags = 0;
		h.request_id = k == 22 ? 1 : 1000000000ull + g->seq;
		backend_flow(g, &f, (uint32_t)kb);
		wrong = g->c->be[kb].report_key;
		wrong.key[0] ^= 0x80;
		*len = qs_dp_build_report(buf, cap, &f, &h, &r,
					  k == 20   ? NULL
					  : k == 21 ? &wrong
						    : &g->c->be[kb].report_key);
		return k == 22 ? QS_DP_D_REPORT_REPLAY : QS_DP_D_REPORT_AUTH;
	}
	case 17: /* a continuation of a request nobody sent */
		h.type = QS_QRP_T_CONTINUATION;
		h.request_id = 0x7f00000000ull + g->seq;
		*len = qs_dp_build_qrp(buf, cap, &f, &h, NULL, 64);
		return QS_DP_D_UNKNOWN_REQ;
	default: /* a short report body */
		h.type = QS_QRP_T_REPORT;
		h.flags = 0;
		client_flow(g, &f, 7, false, g->c->svc.report_port);
		qs_qrp_write_hdr(pay, &h);
		memset(pay + 32, 0, 20);
		*len = qs_dp_build_udp(buf, cap, &f, pay, 52);
		return QS_DP_D_QRP_SHORT;
	}
}
#define N_MALFORMED_KINDS 20
/* With a keyed backend in the configuration, kinds 20-22 (forged tags, a replay)
 * join the rotation. */
#define N_MALFORMED_KINDS_KEYED 23

struct trace_row {
	uint64_t t_ns;
	uint32_t prompt, gen;
};

/*
 * A trace row's time as the generator has always computed it, so that its pcaps
 * stay byte-identical: the minute from the reader's integer nanoseconds, the
 * seconds within it as a double scaled by 1e9 and truncated (the double of the
 * reader's exact seconds is the one strtod made of the field). It is the exact
 * time, or 1 ns less.
 */
static uint64_t
row_ns(uint64_t t_ns)
{
	uint64_t within = t_ns % 60000000000ull;

	return t_ns - within + (uint64_t)((double)within / 1e9 * 1e9);
}

/* The first limit rows of the trace at path (the simulator's reader: any error
 * names the file, line and column). */
static struct trace_row *
read_trace(const char *path, uint64_t limit, size_t *n)
{
	struct qs_sim_trace *t;
	struct qs_sim_trace_row r;
	struct trace_row *rows = NULL;
	size_t cap = 0, k = 0;
	char msg[512];
	bool eof = false;

	if (qs_sim_trace_open(path, &t, msg, sizeof(msg)) != QS_OK)
		qs_pcap_die("%s", msg);
	while (k < limit) {
		if (qs_sim_trace_next(t, &r, &eof, msg, sizeof(msg)) != QS_OK)
			qs_pcap_die("%s", msg);
		if (eof)
			break;
		if (k == cap) {
			cap = cap ? cap * 2 : 1024;
			rows = realloc(rows, cap * sizeof(*rows));
			if (!rows)
				qs_pcap_die("out of memory");
		}
		rows[k].t_ns = row_ns(r.t_ns);
		rows[k].prompt = r.context_tokens;
		rows[k].gen = r.generated_tokens;
		k++;
	}
	qs_sim_trace_close(t);
	*n = k;
	return rows;
}

static int
write_pcap(const char *path, struct ev *ev, size_t n)
{
	pcap_t *p = pcap_open_dead(DLT_EN10MB, 65535);
	pcap_dumper_t *d;
	size_t i;

	if (!p)
		return -1;
	d = pcap_dump_open(p, path);
	if (!d) {
		fprintf(stderr, "qsteer-pcap: %s: %s\n", path, pcap_geterr(p));
		pcap_close(p);
		return -1;
	}
	for (i = 0; i < n; i++) {
		struct pcap_pkthdr h;

		/* a fixed epoch so files are byte-identical run to run */
		h.ts.tv_sec = (time_t)(1700000000 + ev[i].t_ns / 1000000000ull);
		h.ts.tv_usec = (suseconds_t)((ev[i].t_ns % 1000000000ull) / 1000);
		h.caplen = h.len = ev[i].len;
		pcap_dump((u_char *)d, &h, ev[i].data);
	}
	pcap_dump_close(d);
	pcap_close(p);
	return 0;
}

#define COUNT "not a count (a decimal integer)"

int
qs_pcap_gen(int argc, char **argv, void *ctx)
{
	const char *cfgpath = NULL, *out = NULL, *trace = NULL, *manifest = NULL;
	uint64_t synthetic = 0, limit = UINT64_MAX;
	uint64_t seed = 1, speedup = 100, rep_ms = 10, n_mal = 0, v6pct = 10;
	int outage = 1;
	unsigned n_args = 0;
	const struct qs_opt opts[] = {
	    QS_OPT_STR("--config", &cfgpath),
	    QS_OPT_STR("--out", &out),
	    QS_OPT_STR("--trace", &trace),
	    QS_OPT_U64("--synthetic", &synthetic, 0, UINT64_MAX, COUNT),
	    QS_OPT_U64("--limit", &limit, 0, UINT64_MAX, COUNT),
	    QS_OPT_U64("--seed", &seed, 0, UINT64_MAX, COUNT),
	    QS_OPT_U64("--speedup", &speedup, 1, UINT64_MAX, "a whole factor, 1 or more"),
	    QS_OPT_U64("--report-interval-ms", &rep_ms, 1, 86400000, "milliseconds, 1..86400000"),
	    QS_OPT_U64("--malformed", &n_mal, 0, UINT64_MAX, COUNT),
	    QS_OPT_FLAG("--no-outage", &outage, 0),
	    QS_OPT_U64("--ipv6-pct", &v6pct, 0, 100, "a percentage, 0..100"),
	    QS_OPT_STR("--manifest", &manifest),
	    QS_OPT_HELP_FLAG("--help"),
	    QS_OPT_ARGS(NULL, &n_args, 0, 0),
	    QS_OPT_END,
	};
	size_t n_rows = 0, i;
	struct qs_dp_config c;
	struct trace_row *rows;
	struct gen g;
	char msg[256];
	uint8_t buf[9100];
	uint64_t t0, span, t;
	uint32_t b, len, n_kinds;
	int kb, rc;

	(void)ctx;
	rc = qs_opt_parse_or_usage("qsteer-pcap", opts, argc, argv, 1, NULL, qs_pcap_usage);
	if (rc >= 0)
		return rc;
	if (!cfgpath || !out || (!trace && !synthetic)) {
		qs_pcap_usage(stderr);
		return 2;
	}
	qs_dp_config_defaults(&c);
	if (qs_dp_config_load(cfgpath, &c, msg, sizeof(msg)) != QS_OK)
		qs_pcap_die("%s", msg);
	memset(&g, 0, sizeof(g));
	g.c = &c;
	g.rng = seed;
	if (trace) {
		rows = read_trace(trace, limit, &n_rows);
		if (n_rows == 0)
			qs_pcap_die("%s: %s", trace, "no rows");
		t0 = rows[0].t_ns;
		for (i = 0; i < n_rows; i++)
			rows[i].t_ns = (rows[i].t_ns - t0) / speedup;
	} else {
		n_rows = synthetic;
		rows = calloc(n_rows ? n_rows : 1, sizeof(*rows));
		if (!rows)
			qs_pcap_die("out of memory");
		for (i = 0, t = 0; i < n_rows; i++) {
			t += 20000 + rng_below(&g.rng, 200000);
			rows[i].t_ns = t;
			rows[i].prompt = 16 + rng_below(&g.rng, 8000);
			rows[i].gen = 1 + rng_below(&g.rng, 500);
		}
	}
	span = rows[n_rows - 1].t_ns + 1000000;

	/* requests: 1..4 packets, a few cancelled, prefixes from a small set */
	for (i = 0; i < n_rows; i++) {
		struct qs_dp_flow f;
		struct qs_qrp_hdr h;
		uint32_t client = rng_below(&g.rng, 200), extra, k;
		bool v6 = c.svc.has_ip6 && rng_below(&g.rng, 100) < v6pct;

		client_flow(&g, &f, client, v6, c.svc.port);
		memset(&h, 0, sizeof(h));
		h.type = QS_QRP_T_REQUEST;
		h.tenant = (uint16_t)(client % 4);
		h.request_id = ((uint64_t)seed << 40) + i + 1;
		h.prompt_tokens = rows[i].prompt;
		h.max_new_tokens = rows[i].gen;
		h.prefix_hash = rng_below(&g.rng, 10) < 3 ? 0 : 1 + rng_below(&g.rng, 40);
		h.priority = (uint8_t)rng_below(&g.rng, 4);
		h.slo_class = (uint8_t)rng_below(&g.rng, 4);
		h.hdr_len = 32;
		extra = rows[i].prompt > 2048 ? 1 + rng_below(&g.rng, 3) : 0;
		h.flags = extra ? 0 : QS_QRP_F_LAST;
		len = qs_dp_build_qrp(buf, sizeof(buf), &f, &h, NULL, 64 + rng_below(&g.rng, 900));
		push(&g, rows[i].t_ns, buf, len, -1);
		g.requests++;
		for (k = 0; k < extra; k++) {
			h.type = QS_QRP_T_CONTINUATION;
			h.flags = k + 1 == extra ? QS_QRP_F_LAST : 0;
			if (k + 1 == extra && rng_below(&g.rng, 100) < 5) {
				h.type = QS_QRP_T_CANCEL; /* the client gave up */
				g.cancels++;
			} else {
				g.continuations++;
			}
			len = qs_dp_build_qrp(buf, sizeof(buf), &f, &h, NULL, 1200);
			push(&g, rows[i].t_ns + (k + 1) * 20000, buf, len, -1);
		}
		/* 3% abandon a request they sent whole, 50 ms later, while it generates:
		 * the cancel must reach its backend (reqtab.h). Drawn from the id, not
		 * the stream, so every other packet stays as it was. */
		if (h.type != QS_QRP_T_CANCEL && qs_mix64(h.request_id) % 100 < 3) {
			h.type = QS_QRP_T_CANCEL;
			h.flags = 0;
			len = qs_dp_build_qrp(buf, sizeof(buf), &f, &h, NULL, 0);
			push(&g, rows[i].t_ns + (extra + 1) * 20000 + 50000000ull, buf, len, -1);
			g.cancels++;
		}
	}

	/* reports: every backend every rep_ms, except backend 1 in an outage window */
	for (b = 0; b < c.n_backends; b++) {
		uint64_t seqno = 0, recv = 0, done = 0;
		uint32_t waiting = 4, running = 8, kv = 1000;
		struct qs_dp_flow f;

		/* from the agent's own address, where the dataplane believes it */
		backend_flow(&g, &f, b);
		for (t = (rep_ms * 1000000ull * b) / (c.n_backends + 1); t < span;
		     t += rep_ms * 1000000ull) {
			struct qs_qrp_hdr h;
			struct qs_qrp_report r;

			if (outage && b == 1 && t > span * 3 / 10 && t < span * 45 / 100)
				continue; /* the agent is silent: masked, then back */
			waiting = (uint32_t)QS_RC_MIN(
			    64, QS_RC_MAX(0, (int)waiting + (int)rng_below(&g.rng, 5) - 2));
			running = (uint32_t)QS_RC_MIN(
			    64, QS_RC_MAX(1, (int)running + (int)rng_below(&g.rng, 5) - 2));
			kv = (uint32_t)QS_RC_MIN(
			    4096, QS_RC_MAX(0, (int)kv + (int)rng_below(&g.rng, 401) - 200));
			recv += 1 + rng_below(&g.rng, 5);
			done = recv - QS_RC_MIN(recv, waiting + running);
			memset(&h, 0, sizeof(h));
			h.type = QS_QRP_T_REPORT;
			h.request_id = ++seqno;
			h.hdr_len = 32;
			memset(&r, 0, sizeof(r));
			r.backend_id = c.be[b].id;
			r.flags = (outage && b == 2 && t > span * 6 / 10 && t < span * 7 / 10)
				      ? QS_QRP_RF_DRAINING
				      : 0;
			r.waiting = waiting;
			r.running = running;
			r.kv_used = kv;
			r.kv_total = 4096;
			r.decode_tps = 500 + rng_below(&g.rng, 3000);
			r.ttft_p99_us = 20000 + rng_below(&g.rng, 400000);
			r.prefill_pending = waiting * 300;
			r.received = recv;
			r.completed = done;
			r.sent_ns = t;
			/* signed when the configuration gives this backend a key, as
			 * its agent would */
			len = qs_dp_build_report(buf, sizeof(buf), &f, &h, &r, &c.be[b].report_key);
			push(&g, t, buf, len, -1);
			g.reports++;
		}
	}

	kb = first_keyed(&c);
	n_kinds = kb >= 0 ? N_MALFORMED_KINDS_KEYED : N_MALFORMED_KINDS;
	for (i = 0; i < n_mal; i++) {
		int why = gen_malformed(&g, (uint32_t)(i % n_kinds), buf, sizeof(buf), &len);
		uint64_t tm = rng_next(&g.rng) % span;

		/* a replay is one only once the backend's first report is in */
		if (why == QS_DP_D_REPORT_REPLAY)
			tm = QS_RC_MAX(tm,
				       (rep_ms * 1000000ull * (uint64_t)kb) / (c.n_backends + 1));
		push(&g, tm, buf, len, why == QS_DP_D_NONE ? -1 : why);
	}
	qsort(g.ev, g.n, sizeof(*g.ev), ev_cmp);
	if (write_pcap(out, g.ev, g.n) != 0)
		return 1;
	if (manifest) {
		json_t *mo = json_object(), *m = json_object();
		int d;

		json_object_set_new(mo, "packets", json_integer((json_int_t)g.n));
		json_object_set_new(mo, "requests", json_integer((json_int_t)g.requests));
		json_object_set_new(mo, "continuations", json_integer((json_int_t)g.continuations));
		json_object_set_new(mo, "cancels", json_integer((json_int_t)g.cancels));
		json_object_set_new(mo, "reports", json_integer((json_int_t)g.reports));
		for (d = 1; d < QS_DP_D__COUNT; d++)
			if (g.malformed[d])
				json_object_set_new(m, qs_dp_drop_name(d),
						    json_integer((json_int_t)g.malformed[d]));
		json_object_set_new(mo, "malformed", m);
		if (json_dump_file(mo, manifest, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
			qs_pcap_die("%s: %s", manifest, "cannot write");
		json_decref(mo);
	}
	printf("%zu packets: %" PRIu64 " requests, %" PRIu64 " continuations, %" PRIu64
	       " cancels, %" PRIu64 " reports, %" PRIu64 " malformed -> %s\n",
	       g.n, g.requests, g.continuations, g.cancels, g.reports, n_mal, out);
	for (i = 0; i < g.n; i++)
		free(g.ev[i].data);
	free(g.ev);
	free(rows);
	return 0;
}
