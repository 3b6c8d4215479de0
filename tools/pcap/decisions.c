/*
 * decisions.c - qsteer-pcap decisions: what the dataplane decided for every request
 * of a capture, and on what. Replays IN through the dataplane core (dp/core.c,
 * scalar reference kernel) in bursts of --burst packets (default 1: one decision per
 * packet, the closest a replay gets to a lightly loaded worker), with each burst's
 * clock its last packet's timestamp, and writes one CSV row per (request, candidate):
 *
 *   request_id, t_ms, backend, how, candidate, f0..f15
 *
 * t_ms from the capture's first packet; backend the chosen backend's id (empty: the
 * request was dropped); how = policy, canary, builtin, fallback, none or floor
 * (dp_core.h); candidate a backend id the request could choose and f0..f15 its
 * router-v1 feature row (features.h, docs/features.md), the integers the policy
 * scored. A request with no candidate gets one row with those cells empty.
 *
 * Use: capture the steering host's ingress (reports and requests) during a live run
 * (scripts/cluster.sh --capture), then compare these rows with the simulator's view
 * of the same run (cluster-replay --view-out) to see which input differs where the
 * decisions do.
 */
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>

#include "qsteer/dp_core.h"

#include "qsteer_pcap.h"

static const char *const how_names[] = {
    [QS_DP_HOW_POLICY] = "policy",   [QS_DP_HOW_CANARY] = "canary",
    [QS_DP_HOW_BUILTIN] = "builtin", [QS_DP_HOW_FALLBACK] = "fallback",
    [QS_DP_HOW_NONE] = "none",	     [QS_DP_HOW_FLOOR] = "floor",
};

/* The rows of the burst just processed. */
static uint64_t
write_rows(FILE *f, const struct qs_dp_worker *w, const struct qs_dp_config *c, uint64_t t0)
{
	const struct qs_dp_burst *b = &w->b;
	uint32_t r, cnd, j;

	for (r = 0; r < b->n_req; r++) {
		const uint32_t i = b->req_pkt[r], nc = b->n_cand;
		const uint16_t be = b->backend[i];
		const char *how =
		    b->how[r] < sizeof(how_names) / sizeof(how_names[0]) && how_names[b->how[r]]
			? how_names[b->how[r]]
			: "?";
		char head[128];
		bool any = false;

		snprintf(head, sizeof(head), "%" PRIu64 ",%.6f,", b->pkt[i].h.request_id,
			 (double)(b->now_ns - t0) * 1e-6);
		for (cnd = 0; cnd < nc; cnd++) {
			const uint8_t *x = &b->x[((size_t)r * nc + cnd) * QS_FR_COUNT];

			if (!(b->req_elig[r] >> cnd & 1))
				continue;
			any = true;
			fputs(head, f);
			if (be < c->n_backends)
				fprintf(f, "%u", c->be[be].id);
			fprintf(f, ",%s,%u", how, c->be[b->cand_be[cnd]].id);
			for (j = 0; j < QS_FR_COUNT; j++)
				fprintf(f, ",%u", x[j]);
			fputc('\n', f);
		}
		if (!any) {
			fputs(head, f);
			if (be < c->n_backends)
				fprintf(f, "%u", c->be[be].id);
			fprintf(f, ",%s,", how);
			for (j = 0; j < QS_FR_COUNT; j++)
				fputc(',', f);
			fputc('\n', f);
		}
	}
	return b->n_req;
}

int
qs_pcap_decisions(int argc, char **argv, void *ctx)
{
	const char *inp = NULL, *outp = NULL, *cfgpath = NULL, *pol = NULL;
	uint32_t burst = 1;
	unsigned n_args = 0;
	const struct qs_opt opts[] = {
	    QS_OPT_STR("--in", &inp),
	    QS_OPT_STR("--out", &outp),
	    QS_OPT_STR("--config", &cfgpath),
	    QS_OPT_STR("--policy", &pol),
	    QS_OPT_U32("--burst", &burst, 1, QS_DP_BURST, "a burst size, 1..32"),
	    QS_OPT_HELP_FLAG("--help"),
	    QS_OPT_ARGS(NULL, &n_args, 0, 0),
	    QS_OPT_END,
	};
	char err[PCAP_ERRBUF_SIZE], msg[256];
	struct qs_dp_config c;
	struct qs_dp_shared *s;
	struct qs_dp_worker *w;
	struct qs_dp_policy_set set;
	struct qs_policy *p = NULL;
	uint8_t *bufs[QS_DP_BURST], *store;
	uint32_t lens[QS_DP_BURST], n = 0;
	uint64_t t0 = 0, now = 0, requests = 0, packets = 0;
	struct pcap_pkthdr *h;
	const u_char *d;
	pcap_t *pc;
	FILE *f;
	int rc;

	(void)ctx;
	rc = qs_opt_parse_or_usage("qsteer-pcap", opts, argc, argv, 1, NULL, qs_pcap_usage);
	if (rc >= 0)
		return rc;
	if (!inp || !cfgpath || !pol) {
		qs_pcap_usage(stderr);
		return 2;
	}
	qs_dp_config_defaults(&c);
	if (qs_dp_config_load(cfgpath, &c, msg, sizeof(msg)) != QS_OK)
		qs_pcap_die("%s", msg);
	qs_pcap_load_policy(pol, &set, &p);
	pc = pcap_open_offline(inp, err);
	if (!pc)
		qs_pcap_die("%s: %s", inp, err);
	f = outp ? fopen(outp, "w") : stdout;
	if (!f)
		qs_pcap_die("%s: cannot write", outp);
	s = aligned_alloc(64, (sizeof(*s) + 63) & ~(size_t)63);
	w = aligned_alloc(64, sizeof(*w));
	store = malloc((size_t)QS_DP_BURST * 2048);
	if (!s || !w || !store)
		qs_pcap_die("out of memory");
	qs_dp_shared_init(s, &c);
	qs_dp_worker_init(w, s, QS_KERNEL_SCALAR, 0);
	fprintf(f, "request_id,t_ms,backend,how,candidate");
	for (uint32_t j = 0; j < QS_FR_COUNT; j++)
		fprintf(f, ",f%u", j);
	fputc('\n', f);
	for (;;) {
		rc = pcap_next_ex(pc, &h, &d);
		if (rc == 1) {
			uint64_t t =
			    (uint64_t)h->ts.tv_sec * 1000000000ull + (uint64_t)h->ts.tv_usec * 1000;
			uint32_t len = h->caplen < 2048 ? h->caplen : 2048;

			if (packets++ == 0)
				t0 = t;
			if (h->caplen > 2048)
				fprintf(stderr,
					"qsteer-pcap: packet %" PRIu64 ": %u bytes, cut to 2048\n",
					packets, h->caplen);
			bufs[n] = store + (size_t)n * 2048;
			memcpy(bufs[n], d, len);
			lens[n] = len;
			now = t > now ? t : now;
			n++;
		}
		if (n && (n == burst || rc != 1)) {
			qs_dp_process(w, s, &set, bufs, lens, n, now);
			requests += write_rows(f, w, &c, t0);
			n = 0;
		}
		if (rc != 1)
			break;
	}
	if (rc == -1)
		qs_pcap_die("%s: %s", inp, pcap_geterr(pc));
	pcap_close(pc);
	if (ferror(f) || (outp && fclose(f) != 0))
		qs_pcap_die("%s: write failed", outp ? outp : "standard output");
	fprintf(stderr, "qsteer-pcap decisions: %" PRIu64 " packets, %" PRIu64 " requests\n",
		packets, requests);
	qs_policy_free(p);
	free(store);
	free(w);
	free(s);
	return 0;
}
