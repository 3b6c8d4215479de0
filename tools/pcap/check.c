/*
 * check.c - qsteer-pcap check: replays IN through the dataplane core (dp/core.c)
 * with the scalar reference kernel, in the bursts qsteer-dp's worker sees on
 * net_pcap (32 consecutive packets), and compares every packet of OUT byte for
 * byte (destination, checksums, payload), validates OUT's checksums with the
 * reference functions, and compares drops by reason (and every counter with
 * --stats). With --alt-policy, each burst must equal the decisions of one of the
 * two policies entirely: the hot-swap test's "never a mix". --canary PCT makes the
 * second variant "A active + B canary at PCT%"; --drained IDS makes it "A with
 * those backends drained by the operator"; --windows N requires the second
 * variant's bursts to form N windows.
 */
#include <inttypes.h>
#include <jansson.h>
#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>

#include "qsteer/dp_core.h"

#include "qsteer_pcap.h"

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
		qs_pcap_die("%s: %s", path, err);
	while (pcap_next_ex(p, &h, &d) == 1) {
		if (k == cap) {
			cap = cap ? cap * 2 : 4096;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				qs_pcap_die("out of memory");
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

/* Independent validation of a transmitted frame's checksums (reference code). */
static const char *
verify_csums(const struct qs_dp_config *c, const uint8_t *d, uint32_t len)
{
	struct qs_dp_pkt p;
	struct qs_dp_config any = *c;

	/* the frame now goes to a backend: accept any destination and port */
	any.svc.has_ip4 = any.svc.has_ip6 = false;
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

	json_object_foreach(want, k, v)
	{
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

int
qs_pcap_check(int argc, char **argv, void *ctx)
{
	const char *inp = NULL, *outp = NULL, *cfgpath = NULL, *pol = NULL, *alt = NULL,
		   *stats = NULL, *manifest = NULL;
	/* variant B: --alt-policy (B active), --canary PCT (A active + B canary), or
	 * --drained IDS (A with the operator drain mask) */
	const char *drained = NULL, *canary_given = NULL, *windows_given = NULL;
	uint32_t burst = QS_DP_BURST, max_print_opt = 20;
	uint64_t canary_opt = 0, windows_opt = 0;
	unsigned n_args = 0;
	const struct qs_opt opts[] = {
	    QS_OPT_STR("--in", &inp),
	    QS_OPT_STR("--out", &outp),
	    QS_OPT_STR("--config", &cfgpath),
	    QS_OPT_STR("--policy", &pol),
	    QS_OPT_STR("--alt-policy", &alt),
	    QS_OPT_STR("--stats", &stats),
	    QS_OPT_STR("--manifest", &manifest),
	    QS_OPT_U32("--burst", &burst, 1, QS_DP_BURST, "a burst size, 1..32"),
	    QS_OPT_U32("--max-print", &max_print_opt, 0, INT32_MAX, "not a count"),
	    QS_OPT_STR("--drained", &drained),
	    QS_OPT_U64("--canary", &canary_opt, 0, 100, "a percentage, 0..100",
		       .seen = &canary_given),
	    QS_OPT_U64("--windows", &windows_opt, 0, INT32_MAX, "not a count",
		       .seen = &windows_given),
	    QS_OPT_HELP_FLAG("--help"),
	    QS_OPT_ARGS(NULL, &n_args, 0, 0),
	    QS_OPT_END,
	};
	int max_print, printed = 0, rc;
	struct qs_dp_config c;
	struct qs_dp_shared *s;
	struct qs_dp_worker *w, *w2 = NULL;
	struct qs_dp_policy_set setA, setB;
	struct qs_policy *pA = NULL, *pB = NULL;
	struct pkt *in, *out;
	size_t n_in, n_out, pos = 0, base;
	uint64_t mism = 0, bursts_a = 0, bursts_b = 0, bursts_both = 0, bursts_mix = 0;
	uint64_t csum_bad = 0, counter_bad = 0;
	long canary, want_windows;
	uint64_t drain_mask = 0, windows = 0, drained_frames = 0, canary_lo = 0, canary_amb = 0;
	uint64_t canary_reqs = 0, canary_picked = 0;
	int phase = 0; /* 0: the dataplane ran A, 1: B (the last burst only one explains) */
	size_t first_b = (size_t)-1, last_b = 0, first_b_out = 0, last_b_out = 0;
	bool variant;
	char msg[256];

	(void)ctx;
	rc = qs_opt_parse_or_usage("qsteer-pcap", opts, argc, argv, 1, NULL, qs_pcap_usage);
	if (rc >= 0)
		return rc;
	max_print = (int)max_print_opt;
	canary = canary_given ? (long)canary_opt : -1;
	want_windows = windows_given ? (long)windows_opt : -1;
	if (canary >= 0 && !alt)
		fprintf(stderr, "qsteer-pcap: check --canary needs --alt-policy\n");
	if (drained && alt)
		fprintf(stderr, "qsteer-pcap: check: --drained or --alt-policy, not both\n");
	if (!inp || !outp || !cfgpath || !pol || (canary >= 0 && !alt) || (drained && alt)) {
		qs_pcap_usage(stderr);
		return 2;
	}
	qs_dp_config_defaults(&c);
	if (qs_dp_config_load(cfgpath, &c, msg, sizeof(msg)) != QS_OK)
		qs_pcap_die("%s", msg);
	if (c.clock != QS_DP_CLOCK_PACKET)
		fprintf(stderr,
			"qsteer-pcap: note: %s uses clock = tsc; the reference uses the "
			"packets' timestamps, so ageing may differ from the run\n",
			cfgpath);
	qs_pcap_load_policy(pol, &setA, &pA);
	if (alt)
		qs_pcap_load_policy(alt, &setB, &pB);
	if (canary >= 0) {
		if (!pA || !pB)
			qs_pcap_die("--canary needs .q8 files for --policy and --alt-policy");
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
				qs_pcap_die("--drained %s: not a configured backend id", drained);
			drain_mask |= 1ull << bi;
			q = *end == ',' ? end + 1 : end;
			if (*end && *end != ',')
				qs_pcap_die("--drained %s: want ID[,ID...]", drained);
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
		qs_pcap_die("out of memory");
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
					printf(
					    "in#%zu..: expected a frame to backend %d, out ended\n",
					    base, e->be[i] == 0xffff ? -1 : e->be[i]);
				continue;
			}
			if (out[pos].len != e->len[i] ||
			    memcmp(out[pos].data, e->data[i], e->len[i]) != 0) {
				mism++;
				if (printed++ < max_print) {
					const uint8_t *d = out[pos].data;

					printf(
					    "out#%zu (burst at in#%zu): differs from the reference "
					    "(backend %s); dst mac %02x:%02x:%02x:%02x:%02x:%02x "
					    "vs %02x:%02x:%02x:%02x:%02x:%02x\n",
					    pos, base,
					    e->be[i] < c.n_backends ? c.be[e->be[i]].name
								    : "(pass)",
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
				canary_picked +=
				    qs_dp_canary_pick(p->h.request_id, (uint32_t)canary);
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
				qs_pcap_die("%s: %s", stats, je.text);
			/* what the dataplane knows and the reference cannot: swaps, tx */
			if (json_is_object(json_object_get(dp, "counters")))
				dp = json_object_get(dp, "counters");
			json_object_del(ref, "bursts");
			if (canary >= 0) {
				/* boundary bursts both variants explain may or may not have
				 * counted canary decisions: the dataplane's count lies between */
				json_int_t dc = json_integer_value(json_object_get(dp, "canary"));

				if (dc < (json_int_t)canary_lo ||
				    dc > (json_int_t)(canary_lo + canary_amb)) {
					counter_bad++;
					if (printed++ < max_print)
						printf("counter canary: dataplane "
						       "%" JSON_INTEGER_FORMAT
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
				qs_pcap_die("%s: %s", manifest, je.text);
				/* the file's content, counted by the generator, vs the reference */
#define MCMP(key, have)                                                                            \
	if (json_integer_value(json_object_get(m, key)) != (json_int_t)(have)) {                   \
		counter_bad++;                                                                     \
		if (printed++ < max_print)                                                         \
			printf("manifest %s: %" JSON_INTEGER_FORMAT ", reference %" PRIu64 "\n",   \
			       key, json_integer_value(json_object_get(m, key)),                   \
			       (uint64_t)(have));                                                  \
	}
			MCMP("packets", w->ctr.rx);
			MCMP("requests", w->ctr.requests);
			MCMP("continuations",
			     w->ctr.continuations -
				 (uint64_t)json_integer_value(json_object_get(
				     json_object_get(m, "malformed"), "unknown-request")));
			MCMP("cancels", w->ctr.cancels);
			mal = json_object_get(m, "malformed");
			json_object_foreach(mal, k, v)
			{
				json_t *d = json_object_get(json_object_get(ref, "drops"), k);

				if (json_integer_value(d) != json_integer_value(v)) {
					counter_bad++;
					if (printed++ < max_print)
						printf(
						    "manifest malformed %s: %" JSON_INTEGER_FORMAT
						    ", reference drops %" JSON_INTEGER_FORMAT "\n",
						    k, json_integer_value(v),
						    json_integer_value(d));
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
		       drained	     ? "drained"
		       : canary >= 0 ? "canary"
				     : alt,
		       bursts_both, bursts_mix);
	if (variant)
		printf("windows of %s: %" PRIu64 "\n",
		       drained	     ? "drained"
		       : canary >= 0 ? "canary"
				     : alt,
		       windows);
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
		any.svc.has_ip4 = any.svc.has_ip6 = false;
		for (k = first_b_out; k < last_b_out && k < n_out; k++) {
			struct qs_dp_pkt pk;

			/* parse as if the backend's port were the service's */
			any.svc.port = c.svc.port;
			qs_dp_parse(&any, out[k].data, out[k].len, &pk);
			if (pk.l4_off && pk.l4_off + 4u <= out[k].len) {
				any.svc.port = qs_qrp_rd16(out[k].data + pk.l4_off + 2);
				qs_dp_parse(&any, out[k].data, out[k].len, &pk);
			}
			if (pk.cls != QS_DP_C_QRP || pk.h.type != QS_QRP_T_REQUEST)
				continue;
			window_reqs++;
			for (bi = 0; bi < c.n_backends; bi++)
				if ((drain_mask >> bi & 1) &&
				    memcmp(out[k].data, c.be[bi].mac, 6) == 0)
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
	printf("mismatched frames %" PRIu64 ", bad checksums %" PRIu64
	       ", counter mismatches %" PRIu64 ": %s\n",
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
