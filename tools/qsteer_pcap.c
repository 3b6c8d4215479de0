/*
 * qsteer_pcap.c - qsteer-pcap: make QRP traffic as pcap files, and check what
 * qsteer-dp made of them.
 *
 *   gen    trace CSV (or a synthetic workload) -> pcap of requests, multi-packet
 *          requests with continuations, cancels, interleaved reports from simulated
 *          backends (with an outage and a draining window), and optionally one
 *          malformed packet kind after another. Deterministic: same arguments,
 *          same bytes. --manifest writes what the file holds.
 *   check  replays IN through the dataplane core (dp/core.c) with the scalar
 *          reference kernel, in the bursts qsteer-dp's worker sees on net_pcap
 *          (32 consecutive packets), and compares every packet of OUT byte for byte
 *          (destination, checksums, payload), validates OUT's checksums with the
 *          reference functions, and compares drops by reason (and every counter
 *          with --stats). With --alt-policy, each burst must equal the decisions of
 *          one of the two policies entirely: the hot-swap test's "never a mix".
 *          --canary PCT makes the second variant "A active + B canary at PCT%";
 *          --drained IDS makes it "A with those backends drained by the operator";
 *          --windows N requires the second variant's bursts to form N windows.
 *   split  software RSS for the multi-worker test: IN to one pcap per queue by a
 *          hash of the UDP 4-tuple.
 *
 * docs/dataplane.md explains why these decisions are reproducible.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <pcap/pcap.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qsteer/dp_core.h"
#include "qsteer/rng.h"

/* ---- small helpers ------------------------------------------------------------- */

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

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "qsteer-pcap: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* ---- gen ----------------------------------------------------------------------- */

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
			die("%s%s", "out of memory", "");
	}
	e = &g->ev[g->n++];
	e->t_ns = t;
	e->seq = g->seq++;
	e->len = len;
	e->data = malloc(len ? len : 1);
	if (!e->data)
		die("%s%s", "out of memory", "");
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
		memcpy(f->dst_ip, c->ip6, 16);
	} else {
		f->src_ip[0] = 192;
		f->src_ip[1] = 168;
		f->src_ip[2] = (uint8_t)(client >> 8);
		f->src_ip[3] = (uint8_t)(client + 1);
		if (c->has_ip4) {
			memcpy(f->dst_ip, c->ip4, 4);
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

	client_flow(g, f, 100 + b, !be->has_ip4, g->c->report_port);
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

	client_flow(g, &f, 7, false, g->c->port);
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
		client_flow(g, &f, 7, true, g->c->port);
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
		return g->c->port == g->c->report_port ? QS_DP_D_NONE : QS_DP_D_WRONG_PORT;
	}
	case 16: { /* a report from a backend nobody configured */
		struct qs_qrp_report r;

		memset(&r, 0, sizeof(r));
		r.backend_id = 0xfffe;
		h.type = QS_QRP_T_REPORT;
		h.flags = 0;
		client_flow(g, &f, 7, false, g->c->report_port);
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
		client_flow(g, &f, 9, false, g->c->report_port);
		*len = qs_dp_build_qrp(buf, cap, &f, &h, &r, 0);
		return g->c->be[g->seq % g->c->n_backends].report_src.any ? QS_DP_D_NONE
									  : QS_DP_D_REPORT_SOURCE;
	}
	case 20: /* keyed backend: a report from its own address, untagged */
	case 21: /* keyed backend: tagged with another key */
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
					  k == 20 ? NULL : k == 21 ? &wrong : &g->c->be[kb].report_key);
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
		client_flow(g, &f, 7, false, g->c->report_port);
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

/* Parse "YYYY-MM-DD HH:MM:SS.fffffff" into ns since the day began (+ days). */
static int
parse_ts(const char *s, uint64_t *ns)
{
	int y, mo, d, h, mi;
	double sec;

	if (sscanf(s, "%d-%d-%d %d:%d:%lf", &y, &mo, &d, &h, &mi, &sec) != 6)
		return -1;
	*ns = ((uint64_t)d * 86400 + (uint64_t)h * 3600 + (uint64_t)mi * 60) * 1000000000ull +
	      (uint64_t)(sec * 1e9);
	return 0;
}

static struct trace_row *
read_trace(const char *path, size_t limit, size_t *n)
{
	FILE *f = fopen(path, "r");
	char line[512];
	struct trace_row *rows = NULL;
	size_t cap = 0, k = 0;

	if (!f)
		die("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) && k < limit) {
		char *c1 = strchr(line, ','), *c2;
		struct trace_row r;

		if (!c1)
			continue;
		*c1 = 0;
		c2 = strchr(c1 + 1, ',');
		if (!c2 || parse_ts(line, &r.t_ns) != 0)
			continue; /* the header, or a blank line */
		r.prompt = (uint32_t)strtoul(c1 + 1, NULL, 10);
		r.gen = (uint32_t)strtoul(c2 + 1, NULL, 10);
		if (k == cap) {
			cap = cap ? cap * 2 : 1024;
			rows = realloc(rows, cap * sizeof(*rows));
			if (!rows)
				die("%s%s", "out of memory", "");
		}
		rows[k++] = r;
	}
	fclose(f);
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

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: qsteer-pcap gen --config FILE --out OUT.pcap [--trace CSV | --synthetic N]\n"
		"                   [--limit N] [--seed S] [--speedup K] [--report-interval-ms MS]\n"
		"                   [--malformed N] [--no-outage] [--ipv6-pct P] [--manifest FILE]\n"
		"       qsteer-pcap check --in IN --out OUT --config FILE --policy FILE.q8|builtin:NAME\n"
		"                   [--alt-policy FILE.q8] [--stats DP.json] [--manifest FILE]\n"
		"                   [--burst N] [--max-print N]\n"
		"                   [--canary PCT (with --alt-policy) | --drained ID[,ID]] [--windows N]\n"
		"       qsteer-pcap split --in IN --queues N --prefix P [--config FILE]\n");
}

static int
cmd_gen(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", 1, 0, 'c'},	 {"out", 1, 0, 'o'},	   {"trace", 1, 0, 't'},
		{"synthetic", 1, 0, 'S'}, {"limit", 1, 0, 'l'},	   {"seed", 1, 0, 's'},
		{"speedup", 1, 0, 'k'},	 {"report-interval-ms", 1, 0, 'r'},
		{"malformed", 1, 0, 'm'}, {"no-outage", 0, 0, 'n'}, {"ipv6-pct", 1, 0, '6'},
		{"manifest", 1, 0, 'M'},	 {"help", 0, 0, 'h'},	   {0, 0, 0, 0}};
	const char *cfgpath = NULL, *out = NULL, *trace = NULL, *manifest = NULL;
	size_t synthetic = 0, limit = (size_t)-1, n_rows = 0, i;
	uint64_t seed = 1, speedup = 100, rep_ms = 10, n_mal = 0, v6pct = 10;
	bool outage = true;
	struct qs_dp_config c;
	struct trace_row *rows;
	struct gen g;
	char msg[256];
	uint8_t buf[9100];
	uint64_t t0, span, t;
	uint32_t b, len, n_kinds;
	int kb;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'c': cfgpath = optarg; break;
		case 'o': out = optarg; break;
		case 't': trace = optarg; break;
		case 'S': synthetic = strtoull(optarg, NULL, 0); break;
		case 'l': limit = strtoull(optarg, NULL, 0); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'k': speedup = strtoull(optarg, NULL, 0); break;
		case 'r': rep_ms = strtoull(optarg, NULL, 0); break;
		case 'm': n_mal = strtoull(optarg, NULL, 0); break;
		case 'n': outage = false; break;
		case '6': v6pct = strtoull(optarg, NULL, 0); break;
		case 'M': manifest = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!cfgpath || !out || (!trace && !synthetic) || speedup == 0 || rep_ms == 0) {
		usage(stderr);
		return 2;
	}
	qs_dp_config_defaults(&c);
	if (qs_dp_config_load(cfgpath, &c, msg, sizeof(msg)) != QS_OK)
		die("%s%s", msg, "");
	memset(&g, 0, sizeof(g));
	g.c = &c;
	g.rng = seed;
	if (trace) {
		rows = read_trace(trace, limit, &n_rows);
		if (n_rows == 0)
			die("%s: %s", trace, "no rows");
		t0 = rows[0].t_ns;
		for (i = 0; i < n_rows; i++)
			rows[i].t_ns = (rows[i].t_ns - t0) / speedup;
	} else {
		n_rows = synthetic;
		rows = calloc(n_rows ? n_rows : 1, sizeof(*rows));
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
		bool v6 = c.has_ip6 && rng_below(&g.rng, 100) < v6pct;

		client_flow(&g, &f, client, v6, c.port);
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
			waiting = (uint32_t)QS_RC_MIN(64, QS_RC_MAX(0, (int)waiting +
							   (int)rng_below(&g.rng, 5) - 2));
			running = (uint32_t)QS_RC_MIN(64, QS_RC_MAX(1, (int)running +
							   (int)rng_below(&g.rng, 5) - 2));
			kv = (uint32_t)QS_RC_MIN(4096, QS_RC_MAX(0, (int)kv +
						      (int)rng_below(&g.rng, 401) - 200));
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
			tm = QS_RC_MAX(tm, (rep_ms * 1000000ull * (uint64_t)kb) / (c.n_backends + 1));
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
			die("%s: %s", manifest, "cannot write");
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

/* ---- check ----------------------------------------------------------------------- */

struct pkt {
	uint64_t t_ns;
	uint32_t len;
	uint8_t *data;
};

static struct pkt *
read_pcap(const char *path, size_t *n)
{
	char err[PCAP_ERRBUF_SIZE];
	pcap_t *p = pcap_open_offline(path, err);
	struct pcap_pkthdr *h;
	const u_char *d;
	struct pkt *v = NULL;
	size_t cap = 0, k = 0;

	if (!p)
		die("%s: %s", path, err);
	while (pcap_next_ex(p, &h, &d) == 1) {
		if (k == cap) {
			cap = cap ? cap * 2 : 4096;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				die("%s%s", "out of memory", "");
		}
		v[k].t_ns = (uint64_t)h->ts.tv_sec * 1000000000ull + (uint64_t)h->ts.tv_usec * 1000;
		v[k].len = h->caplen;
		v[k].data = malloc(h->caplen ? h->caplen : 1);
		memcpy(v[k].data, d, h->caplen);
		k++;
	}
	pcap_close(p);
	*n = k;
	return v;
}

static int
load_set(const char *spec, struct qs_dp_policy_set *set, struct qs_policy **pol)
{
	struct qs_policy_load_opts lo = {QS_SCHEMA_ROUTER_V1, QS_Q8_KIND_SCORER, NULL};
	char msg[512];

	memset(set, 0, sizeof(*set));
	*pol = NULL;
	if (strncmp(spec, "builtin:", 8) == 0) {
		if (qs_baseline_parse(spec + 8, &set->builtin) != 0)
			die("unknown builtin policy %s%s", spec, "");
		return 0;
	}
	if (qs_policy_load_file(spec, &lo, pol, msg, sizeof(msg)) != QS_OK)
		die("%s%s", msg, "");
	set->active = *pol;
	return 0;
}

/* Independent validation of a transmitted frame's checksums (reference code). */
static const char *
verify_csums(const struct qs_dp_config *c, const uint8_t *d, uint32_t len)
{
	struct qs_dp_pkt p;
	struct qs_dp_config any = *c;

	/* the frame now goes to a backend: accept any destination and port */
	any.has_ip4 = any.has_ip6 = false;
	qs_dp_parse(&any, d, len, &p);
	if (p.cls == QS_DP_C_DROP && p.drop == QS_DP_D_IP_CSUM)
		return "ipv4 header checksum";
	if (p.cls == QS_DP_C_DROP)
		return qs_dp_drop_name(p.drop);
	if (p.l4_off == 0)
		return NULL;
	{
		uint16_t have = qs_qrp_rd16(d + p.l4_off + 6);

		if (!(have == 0 && !p.ipv6) && have != qs_dp_udp_csum(d, &p))
			return "udp checksum";
	}
	return NULL;
}

struct expect {
	uint32_t n;
	uint32_t len[QS_DP_BURST];
	uint8_t *data[QS_DP_BURST];
	uint16_t be[QS_DP_BURST];
};

/* Run commit on copies of the burst's packets; collect what would be sent. */
static void
try_commit(struct qs_dp_worker *w, const struct qs_dp_shared *s, struct pkt *in, size_t base,
	   uint32_t n, const uint16_t *dec, struct expect *e)
{
	uint8_t *bufs[QS_DP_BURST] = {0};
	uint32_t i;

	for (i = 0; i < n; i++) {
		bufs[i] = malloc(in[base + i].len ? in[base + i].len : 1);
		memcpy(bufs[i], in[base + i].data, in[base + i].len);
	}
	qs_dp_commit(w, s, bufs, dec);
	e->n = 0;
	for (i = 0; i < n; i++) {
		if (w->b.verdict[i] == QS_DP_V_TX || w->b.verdict[i] == QS_DP_V_PASS) {
			e->len[e->n] = in[base + i].len;
			e->data[e->n] = bufs[i];
			e->be[e->n] = w->b.backend[i];
			e->n++;
		} else {
			free(bufs[i]);
		}
	}
}

static void
free_expect(struct expect *e)
{
	uint32_t i;

	for (i = 0; i < e->n; i++)
		free(e->data[i]);
	e->n = 0;
}

/* How many of e's frames equal the out frames from position pos. */
static uint32_t
match_count(const struct expect *e, const struct pkt *out, size_t n_out, size_t pos)
{
	uint32_t i, k = 0;

	for (i = 0; i < e->n; i++)
		if (pos + i < n_out && out[pos + i].len == e->len[i] &&
		    memcmp(out[pos + i].data, e->data[i], e->len[i]) == 0)
			k++;
	return k;
}

static int
compare_json(json_t *want, json_t *have, const char *prefix, int max_print, int *printed)
{
	const char *k;
	json_t *v;
	int bad = 0;

	json_object_foreach(want, k, v) {
		json_t *h = json_object_get(have, k);

		if (json_is_object(v)) {
			if (json_is_object(h))
				bad += compare_json(v, h, k, max_print, printed);
			continue;
		}
		if (!h || json_integer_value(h) != json_integer_value(v)) {
			bad++;
			if ((*printed)++ < max_print)
				printf("counter %s%s%s: reference %" JSON_INTEGER_FORMAT
				       ", dataplane %" JSON_INTEGER_FORMAT "\n",
				       prefix, prefix[0] ? "." : "", k, json_integer_value(v),
				       h ? json_integer_value(h) : -1);
		}
	}
	return bad;
}

static int
cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{"in", 1, 0, 'i'},	 {"out", 1, 0, 'o'},	  {"config", 1, 0, 'c'},
		{"policy", 1, 0, 'p'},	 {"alt-policy", 1, 0, 'a'}, {"stats", 1, 0, 'S'},
		{"manifest", 1, 0, 'M'}, {"burst", 1, 0, 'b'},	  {"max-print", 1, 0, 'x'},
		{"drained", 1, 0, 'D'},	 {"canary", 1, 0, 'C'},	  {"windows", 1, 0, 'W'},
		{"help", 0, 0, 'h'},	 {0, 0, 0, 0}};
	const char *inp = NULL, *outp = NULL, *cfgpath = NULL, *pol = NULL, *alt = NULL,
		   *stats = NULL, *manifest = NULL;
	uint32_t burst = QS_DP_BURST;
	int max_print = 20, printed = 0, o;
	struct qs_dp_config c;
	struct qs_dp_shared *s;
	struct qs_dp_worker *w, *w2 = NULL;
	struct qs_dp_policy_set setA, setB;
	struct qs_policy *pA = NULL, *pB = NULL;
	struct pkt *in, *out;
	size_t n_in, n_out, pos = 0, base;
	uint64_t mism = 0, bursts_a = 0, bursts_b = 0, bursts_both = 0, bursts_mix = 0;
	uint64_t csum_bad = 0, counter_bad = 0;
	/* variant B: --alt-policy (B active), --canary PCT (A active + B canary), or
	 * --drained IDS (A with the operator drain mask) */
	const char *drained = NULL;
	long canary = -1, want_windows = -1;
	uint64_t drain_mask = 0, windows = 0, drained_frames = 0, canary_lo = 0, canary_amb = 0;
	uint64_t canary_reqs = 0, canary_picked = 0;
	int phase = 0; /* 0: the dataplane ran A, 1: B (the last burst only one explains) */
	size_t first_b = (size_t)-1, last_b = 0, first_b_out = 0, last_b_out = 0;
	bool variant;
	char msg[256];

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'i': inp = optarg; break;
		case 'o': outp = optarg; break;
		case 'c': cfgpath = optarg; break;
		case 'p': pol = optarg; break;
		case 'a': alt = optarg; break;
		case 'S': stats = optarg; break;
		case 'M': manifest = optarg; break;
		case 'b': burst = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'x': max_print = atoi(optarg); break;
		case 'D': drained = optarg; break;
		case 'C': canary = strtol(optarg, NULL, 10); break;
		case 'W': want_windows = strtol(optarg, NULL, 10); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!inp || !outp || !cfgpath || !pol || burst == 0 || burst > QS_DP_BURST ||
	    (canary >= 0 && (!alt || canary > 100)) || (drained && alt)) {
		usage(stderr);
		return 2;
	}
	qs_dp_config_defaults(&c);
	if (qs_dp_config_load(cfgpath, &c, msg, sizeof(msg)) != QS_OK)
		die("%s%s", msg, "");
	if (c.clock != QS_DP_CLOCK_PACKET)
		fprintf(stderr, "qsteer-pcap: note: %s uses clock = tsc; the reference uses the "
				"packets' timestamps, so ageing may differ from the run\n",
			cfgpath);
	load_set(pol, &setA, &pA);
	if (alt)
		load_set(alt, &setB, &pB);
	if (canary >= 0) {
		if (!pA || !pB)
			die("--canary needs .q8 files for --policy and --alt-policy%s", "");
		setB.active = pA;
		setB.second = pB;
		setB.mode = QS_DP_MODE_CANARY;
		setB.canary_pct = (uint32_t)canary;
	}
	if (drained) {
		const char *q = drained;

		while (*q) {
			char *end;
			long id = strtol(q, &end, 0);
			int bi = end == q ? -1 : qs_dp_backend_index(&c, (uint16_t)id);

			if (bi < 0 || id < 0 || id > 0xffff)
				die("--drained %s: not a configured backend id", drained);
			drain_mask |= 1ull << bi;
			q = *end == ',' ? end + 1 : end;
			if (*end && *end != ',')
				die("--drained %s: want ID[,ID...]", drained);
		}
		setB = setA;
	}
	variant = alt || drained;
	in = read_pcap(inp, &n_in);
	out = read_pcap(outp, &n_out);
	s = aligned_alloc(64, (sizeof(*s) + 63) & ~(size_t)63);
	w = aligned_alloc(64, sizeof(*w));
	if (variant)
		w2 = aligned_alloc(64, sizeof(*w2));
	if (!s || !w || (variant && !w2))
		die("%s%s", "out of memory", "");
	qs_dp_shared_init(s, &c);
	qs_dp_worker_init(w, s, QS_KERNEL_SCALAR, 0);

	for (base = 0; base < n_in; base += burst) {
		uint32_t n = (uint32_t)QS_RC_MIN((size_t)burst, n_in - base), i, kA, kB = 0;
		uint8_t *bufs[QS_DP_BURST];
		uint32_t lens[QS_DP_BURST];
		uint16_t dA[QS_DP_BURST], dB[QS_DP_BURST];
		uint64_t now = 0;
		struct expect eA, eB, *e;

		for (i = 0; i < n; i++) {
			bufs[i] = in[base + i].data; /* prepare only reads */
			lens[i] = in[base + i].len;
			if (in[base + i].t_ns > now)
				now = in[base + i].t_ns;
		}
		qs_dp_prepare_rx(w, s, bufs, lens, n, now);
		if (variant)
			memcpy(w2, w, sizeof(*w));
		qs_dp_prepare_view(w, s, 0);
		qs_dp_decide(w, &c, &setA, dA);
		try_commit(w, s, in, base, n, dA, &eA);
		kA = match_count(&eA, out, n_out, pos);
		e = &eA;
		if (variant) {
			uint64_t can0 = w2->ctr.canary;

			qs_dp_prepare_view(w2, s, drain_mask);
			qs_dp_decide(w2, &c, &setB, dB);
			try_commit(w2, s, in, base, n, dB, &eB);
			kB = match_count(&eB, out, n_out, pos);
			if (kA == eA.n && kB == eB.n) {
				/* either explains it: carry on with the phase we are in */
				bursts_both++;
				if (phase == 1) {
					memcpy(w, w2, sizeof(*w));
					e = &eB;
				}
				canary_amb += w2->ctr.canary - can0;
			} else if (kA == eA.n) {
				bursts_a++;
				phase = 0;
			} else if (kB == eB.n) {
				bursts_b++;
				if (phase == 0)
					windows++;
				phase = 1;
				if (first_b == (size_t)-1) {
					first_b = base;
					first_b_out = pos;
				}
				last_b = base;
				last_b_out = pos + eB.n;
				canary_lo += w2->ctr.canary - can0;
				memcpy(w, w2, sizeof(*w));
				e = &eB;
			} else {
				bursts_mix++;
				if (kB > kA) {
					memcpy(w, w2, sizeof(*w));
					e = &eB;
				}
				if (printed++ < max_print)
					printf("burst at in#%zu: matches neither variant entirely "
					       "(%u/%u like %s, %u/%u like %s)\n",
					       base, kA, eA.n, pol, kB, eB.n,
					       alt ? alt : "the drained reference");
			}
		}
		for (i = 0; i < e->n; i++, pos++) {
			const char *why;

			if (pos >= n_out) {
				mism++;
				if (printed++ < max_print)
					printf("in#%zu..: expected a frame to backend %d, out ended\n",
					       base, e->be[i] == 0xffff ? -1 : e->be[i]);
				continue;
			}
			if (out[pos].len != e->len[i] ||
			    memcmp(out[pos].data, e->data[i], e->len[i]) != 0) {
				mism++;
				if (printed++ < max_print) {
					const uint8_t *d = out[pos].data;

					printf("out#%zu (burst at in#%zu): differs from the reference "
					       "(backend %s); dst mac %02x:%02x:%02x:%02x:%02x:%02x "
					       "vs %02x:%02x:%02x:%02x:%02x:%02x\n",
					       pos, base,
					       e->be[i] < c.n_backends ? c.be[e->be[i]].name : "(pass)",
					       d[0], d[1], d[2], d[3], d[4], d[5], e->data[i][0],
					       e->data[i][1], e->data[i][2], e->data[i][3],
					       e->data[i][4], e->data[i][5]);
				}
			}
			why = verify_csums(&c, out[pos].data, out[pos].len);
			if (why && e->be[i] != 0xffff) {
				csum_bad++;
				if (printed++ < max_print)
					printf("out#%zu: bad %s\n", pos, why);
			}
		}
		if (canary >= 0 && e == &eB) {
			/* the split, recomputed from the request ids alone */
			for (i = 0; i < w->b.n_req; i++) {
				const struct qs_dp_pkt *p = &w->b.pkt[w->b.req_pkt[i]];

				canary_reqs++;
				canary_picked += qs_dp_canary_pick(p->h.request_id, (uint32_t)canary);
			}
		}
		free_expect(&eA);
		if (variant)
			free_expect(&eB);
	}
	if (pos < n_out) {
		mism += n_out - pos;
		if (printed++ < max_print)
			printf("out has %zu frames more than the reference sends\n", n_out - pos);
	}

	{
		char *js = qs_dp_counters_json(&w->ctr, &c);
		json_t *ref = json_loads(js, 0, NULL);

		if (stats) {
			json_error_t je;
			json_t *dproot = json_load_file(stats, 0, &je), *dp = dproot;

			if (!dp)
				die("%s: %s", stats, je.text);
			/* what the dataplane knows and the reference cannot: swaps, tx */
			if (json_is_object(json_object_get(dp, "counters")))
				dp = json_object_get(dp, "counters");
			json_object_del(ref, "bursts");
			if (canary >= 0) {
				/* boundary bursts both variants explain may or may not have
				 * counted canary decisions: the dataplane's count lies between */
				json_int_t dc = json_integer_value(json_object_get(dp, "canary"));

				if (dc < (json_int_t)canary_lo || dc > (json_int_t)(canary_lo + canary_amb)) {
					counter_bad++;
					if (printed++ < max_print)
						printf("counter canary: dataplane %" JSON_INTEGER_FORMAT
						       ", reference %" PRIu64 "..%" PRIu64 "\n",
						       dc, canary_lo, canary_lo + canary_amb);
				}
			}
			if (variant) {
				/* the operator's shadow/canary phases are not in the reference */
				json_object_del(ref, "shadow_scored");
				json_object_del(ref, "shadow_disagree");
				json_object_del(ref, "canary");
			}
			counter_bad += (uint64_t)compare_json(ref, dp, "", max_print, &printed);
			json_decref(dproot);
		}
		if (manifest) {
			json_error_t je;
			json_t *m = json_load_file(manifest, 0, &je), *mal;
			const char *k;
			json_t *v;

			if (!m)
				die("%s: %s", manifest, je.text);
			/* the file's content, counted by the generator, vs the reference */
#define MCMP(key, have)                                                                     \
	if (json_integer_value(json_object_get(m, key)) != (json_int_t)(have)) {            \
		counter_bad++;                                                              \
		if (printed++ < max_print)                                                  \
			printf("manifest %s: %" JSON_INTEGER_FORMAT ", reference %" PRIu64 "\n", \
			       key, json_integer_value(json_object_get(m, key)), (uint64_t)(have)); \
	}
			MCMP("packets", w->ctr.rx);
			MCMP("requests", w->ctr.requests);
			MCMP("continuations", w->ctr.continuations -
						      (uint64_t)json_integer_value(json_object_get(
							      json_object_get(m, "malformed"),
							      "unknown-request")));
			MCMP("cancels", w->ctr.cancels);
			mal = json_object_get(m, "malformed");
			json_object_foreach(mal, k, v) {
				json_t *d = json_object_get(json_object_get(ref, "drops"), k);

				if (json_integer_value(d) != json_integer_value(v)) {
					counter_bad++;
					if (printed++ < max_print)
						printf("manifest malformed %s: %" JSON_INTEGER_FORMAT
						       ", reference drops %" JSON_INTEGER_FORMAT "\n",
						       k, json_integer_value(v), json_integer_value(d));
				}
			}
#undef MCMP
			json_decref(m);
		}
		printf("check: %zu in, %zu out; reference: %s\n", n_in, n_out, js);
		json_decref(ref);
		free(js);
	}
	if (variant)
		printf("bursts: %" PRIu64 " like %s only, %" PRIu64 " like %s only, %" PRIu64
		       " like both, %" PRIu64 " like neither\n",
		       bursts_a, pol, bursts_b,
		       drained ? "drained" : canary >= 0 ? "canary" : alt, bursts_both, bursts_mix);
	if (variant)
		printf("windows of %s: %" PRIu64 "\n",
		       drained ? "drained" : canary >= 0 ? "canary" : alt, windows);
	if (want_windows >= 0 && (uint64_t)want_windows != windows) {
		counter_bad++;
		printf("expected %ld window(s), found %" PRIu64 "\n", want_windows, windows);
	}
	if (drained && first_b != (size_t)-1) {
		/* from the first burst only the drain explains to the last: nothing may
		 * reach a drained backend (read from OUT's destination MACs) */
		size_t k;
		uint32_t bi;

		struct qs_dp_config any = c;
		uint64_t window_reqs = 0;

		/* continuations of requests already there still go (they must) */
		any.has_ip4 = any.has_ip6 = false;
		for (k = first_b_out; k < last_b_out && k < n_out; k++) {
			struct qs_dp_pkt pk;

			/* parse as if the backend's port were the service's */
			any.port = c.port;
			qs_dp_parse(&any, out[k].data, out[k].len, &pk);
			if (pk.l4_off && pk.l4_off + 4u <= out[k].len) {
				any.port = qs_qrp_rd16(out[k].data + pk.l4_off + 2);
				qs_dp_parse(&any, out[k].data, out[k].len, &pk);
			}
			if (pk.cls != QS_DP_C_QRP || pk.h.type != QS_QRP_T_REQUEST)
				continue;
			window_reqs++;
			for (bi = 0; bi < c.n_backends; bi++)
				if ((drain_mask >> bi & 1) && memcmp(out[k].data, c.be[bi].mac, 6) == 0)
					drained_frames++;
		}
		printf("drained window in#%zu..in#%zu: %" PRIu64
		       " new requests to a drained backend (of %" PRIu64 " sent in it)\n",
		       first_b, last_b, drained_frames, window_reqs);
		if (drained_frames)
			counter_bad++;
	}
	if (canary >= 0)
		printf("canary split: %" PRIu64 " of %" PRIu64
		       " requests in canary bursts picked by request id at %ld%%\n",
		       canary_picked, canary_reqs, canary);
	printf("mismatched frames %" PRIu64 ", bad checksums %" PRIu64 ", counter mismatches %" PRIu64
	       ": %s\n",
	       mism, csum_bad, counter_bad,
	       mism || csum_bad || counter_bad || bursts_mix ? "FAIL" : "OK");
	qs_policy_free(pA);
	qs_policy_free(pB);
	for (base = 0; base < n_in; base++)
		free(in[base].data);
	for (base = 0; base < n_out; base++)
		free(out[base].data);
	free(in);
	free(out);
	free(s);
	free(w);
	free(w2);
	return mism || csum_bad || counter_bad || bursts_mix ? 1 : 0;
}

/* ---- split: software RSS for tests ------------------------------------------------ */

/*
 * Write IN's packets to PREFIX0.pcap .. PREFIX{N-1}.pcap by a hash of the UDP
 * 4-tuple (addresses and ports), as a NIC's RSS on IP+UDP puts them on queues:
 * one client flow, hence one request with all its continuations when the client
 * sends them from one source port, lands on one queue. Packets the parser refuses
 * before UDP go to queue 0. Timestamps and order within a queue are kept.
 */
static int
cmd_split(int argc, char **argv)
{
	static const struct option opts[] = {{"in", 1, 0, 'i'},	    {"queues", 1, 0, 'q'},
					     {"prefix", 1, 0, 'p'}, {"config", 1, 0, 'c'},
					     {"help", 0, 0, 'h'},   {0, 0, 0, 0}};
	const char *inp = NULL, *prefix = NULL, *cfgpath = NULL;
	uint32_t nq = 2, q;
	char err[PCAP_ERRBUF_SIZE], path[4096];
	pcap_dumper_t *d[16];
	pcap_t *p, *dead;
	struct pcap_pkthdr *h;
	const u_char *data;
	struct qs_dp_config c;
	uint64_t count[16] = {0};
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'i': inp = optarg; break;
		case 'q': nq = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'p': prefix = optarg; break;
		case 'c': cfgpath = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!inp || !prefix || nq < 1 || nq > 16) {
		usage(stderr);
		return 2;
	}
	qs_dp_config_defaults(&c);
	if (cfgpath && qs_dp_config_load(cfgpath, &c, err, sizeof(err)) != QS_OK)
		die("%s%s", err, "");
	c.has_ip4 = c.has_ip6 = false; /* hash every flow, whatever its destination */
	p = pcap_open_offline(inp, err);
	if (!p)
		die("%s: %s", inp, err);
	dead = pcap_open_dead(DLT_EN10MB, 65535);
	for (q = 0; q < nq; q++) {
		snprintf(path, sizeof(path), "%s%u.pcap", prefix, q);
		d[q] = pcap_dump_open(dead, path);
		if (!d[q])
			die("%s: %s", path, pcap_geterr(dead));
	}
	while (pcap_next_ex(p, &h, &data) == 1) {
		struct qs_dp_pkt pk;
		uint64_t x = 0xcbf29ce484222325ull;
		uint32_t i, alen;

		qs_dp_parse(&c, data, h->caplen, &pk);
		q = 0;
		if (pk.l4_off && pk.l3_off && pk.l4_off + 4u <= h->caplen &&
		    pk.l3_off + (pk.ipv6 ? 40u : 20u) <= h->caplen) {
			/* addresses, then both ports: FNV-1a */
			const uint8_t *ip = data + pk.l3_off;
			const uint8_t *src = pk.ipv6 ? ip + 8 : ip + 12;

			alen = pk.ipv6 ? 32 : 8;
			for (i = 0; i < alen; i++)
				x = (x ^ src[i]) * 0x100000001b3ull;
			for (i = 0; i < 4; i++)
				x = (x ^ data[pk.l4_off + i]) * 0x100000001b3ull;
			q = (uint32_t)((x >> 32) % nq);
		}
		pcap_dump((u_char *)d[q], h, data);
		count[q]++;
	}
	for (q = 0; q < nq; q++) {
		pcap_dump_close(d[q]);
		printf("%s%u.pcap: %" PRIu64 " packets\n", prefix, q, count[q]);
	}
	pcap_close(dead);
	pcap_close(p);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "gen") == 0)
		return cmd_gen(argc - 1, argv + 1);
	if (strcmp(argv[1], "check") == 0)
		return cmd_check(argc - 1, argv + 1);
	if (strcmp(argv[1], "split") == 0)
		return cmd_split(argc - 1, argv + 1);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
