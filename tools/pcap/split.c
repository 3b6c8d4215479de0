/*
 * split.c - qsteer-pcap split: software RSS for the multi-worker test.
 *
 * Writes IN's packets to PREFIX0.pcap .. PREFIX{N-1}.pcap by a hash of the UDP
 * 4-tuple (addresses and ports), as a NIC's RSS on IP+UDP puts them on queues:
 * one client flow, hence one request with all its continuations when the client
 * sends them from one source port, lands on one queue. Packets the parser refuses
 * before UDP go to queue 0. Timestamps and order within a queue are kept.
 */
#include <inttypes.h>
#include <pcap/pcap.h>

#include "qsteer/dp_core.h"

#include "qsteer_pcap.h"

#define MAX_QUEUES 16

int
qs_pcap_split(int argc, char **argv, void *ctx)
{
	const char *inp = NULL, *prefix = NULL, *cfgpath = NULL;
	uint32_t nq = 2, q;
	unsigned n_args = 0;
	const struct qs_opt opts[] = {
	    QS_OPT_STR("--in", &inp),
	    QS_OPT_U32("--queues", &nq, 1, MAX_QUEUES, "a count, 1..16"),
	    QS_OPT_STR("--prefix", &prefix),
	    QS_OPT_STR("--config", &cfgpath),
	    QS_OPT_HELP_FLAG("--help"),
	    QS_OPT_ARGS(NULL, &n_args, 0, 0),
	    QS_OPT_END,
	};
	char err[PCAP_ERRBUF_SIZE], path[4096];
	pcap_dumper_t *d[MAX_QUEUES];
	pcap_t *p, *dead;
	struct pcap_pkthdr *h;
	const u_char *data;
	struct qs_dp_config c;
	uint64_t count[MAX_QUEUES] = {0};
	int rc;

	(void)ctx;
	rc = qs_opt_parse_or_usage("qsteer-pcap", opts, argc, argv, 1, NULL, qs_pcap_usage);
	if (rc >= 0)
		return rc;
	if (!inp || !prefix) {
		qs_pcap_usage(stderr);
		return 2;
	}
	qs_dp_config_defaults(&c);
	if (cfgpath && qs_dp_config_load(cfgpath, &c, err, sizeof(err)) != QS_OK)
		qs_pcap_die("%s", err);
	c.svc.has_ip4 = c.svc.has_ip6 = false; /* hash every flow, whatever its destination */
	p = pcap_open_offline(inp, err);
	if (!p)
		qs_pcap_die("%s: %s", inp, err);
	dead = pcap_open_dead(DLT_EN10MB, 65535);
	for (q = 0; q < nq; q++) {
		snprintf(path, sizeof(path), "%s%u.pcap", prefix, q);
		d[q] = pcap_dump_open(dead, path);
		if (!d[q])
			qs_pcap_die("%s: %s", path, pcap_geterr(dead));
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
