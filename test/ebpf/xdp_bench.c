/*
 * xdp_bench.c - ns per request packet through the XDP program with
 * BPF_PROG_TEST_RUN (repeat), for 4, 8 and 16 backends, against the trivial QS_XDP_TX
 * program (qsteer_xdp_tx, same object) measured in the same run.
 *
 * Every backend has reported (and stays fresh: report age limit 1 h), so every
 * request scores all of them with the router policy (default shape 16-32-16-1 from
 * qsteer-test-mkpolicy). The frame is reused by the repeats and rewritten each time,
 * so the configuration accepts any destination and the backends listen on the
 * service port, as the dataplane's benchmark does. Each run counts a send, so the
 * features move as in real traffic.
 *
 * usage: xdp-bench MKPOLICY [REPEAT [BACKENDS...]]   (root; 77 without)
 *        BACKENDS: the backend counts to measure, 4 8 16 unless given (1..64)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qsteer/xdp_loader.h"

static void
bench_config(struct qs_dp_config *c, uint32_t nb)
{
	uint32_t i;

	qs_dp_config_defaults(c);
	c->report_max_age_ns = 3600ull * 1000000000ull;
	c->n_backends = nb;
	for (i = 0; i < nb; i++) {
		struct qs_dp_backend_cfg *b = &c->be[i];

		b->id = (uint16_t)(10 + i);
		b->mac[0] = 0x02;
		b->mac[5] = (uint8_t)i;
		b->has_ip4 = true;
		b->ip4[0] = 10;
		b->ip4[1] = 0;
		b->ip4[2] = 1;
		b->ip4[3] = (uint8_t)(10 + i);
		b->port = QS_QRP_PORT;
		b->capacity_class = (uint8_t)(i % 8);
		b->capacity = 1;
		snprintf(b->name, sizeof(b->name), "gpu%u", i);
	}
}

static void
flow(struct qs_dp_flow *f, uint16_t dport)
{
	memset(f, 0, sizeof(*f));
	f->src_mac[0] = 0x02;
	f->dst_mac[0] = 0x02;
	f->dst_mac[5] = 1;
	f->src_ip[0] = 192;
	f->src_ip[1] = 168;
	f->src_ip[3] = 2;
	f->dst_ip[0] = 10;
	f->dst_ip[3] = 1;
	f->sport = 40000;
	f->dport = dport;
}

int
main(int argc, char **argv)
{
	uint32_t sizes[64] = {4, 8, 16}, n_sizes = 3;
	uint32_t repeat = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : 200000, k;
	char cmd[512], msg[512], pol[] = "/tmp/qsteer-xdp-bench-XXXXXX";
	int fd;

	if (argc < 2) {
		fprintf(stderr, "usage: xdp-bench MKPOLICY [REPEAT [BACKENDS...]]\n");
		return 2;
	}
	if (argc > 3) {
		for (n_sizes = 0; (int)n_sizes + 3 < argc && n_sizes < 64; n_sizes++) {
			sizes[n_sizes] = (uint32_t)strtoul(argv[n_sizes + 3], NULL, 0);
			if (sizes[n_sizes] < 1 || sizes[n_sizes] > QS_XDP_MAX_BACKENDS) {
				fprintf(stderr, "backend counts are 1..%d\n", QS_XDP_MAX_BACKENDS);
				return 2;
			}
		}
	}
	if (geteuid() != 0) {
		printf("SKIP: BPF_PROG_TEST_RUN needs root\n");
		return 77;
	}
	fd = mkstemp(pol);
	if (fd < 0)
		return 2;
	close(fd);
	snprintf(cmd, sizeof(cmd), "'%s' 1 '%s' bench >/dev/null", argv[1], pol);
	if (system(cmd) != 0) {
		fprintf(stderr, "%s failed\n", cmd);
		unlink(pol);
		return 2;
	}
	printf("%-9s %12s %12s %12s %10s\n", "backends", "steer ns", "QS_XDP_TX ns", "difference",
	       "verdict");
	for (k = 0; k < n_sizes; k++) {
		struct qs_dp_config c;
		struct qs_xdp *x = NULL;
		struct qs_xdp_opts xo = {0};
		struct qs_dp_flow f;
		struct qs_qrp_hdr h;
		struct qs_qrp_report r;
		uint8_t pkt[256], out[256];
		uint32_t len, i, v, olen, ns_s = 0, ns_t = 0, v_t = 0;
		struct qs_dp_counters ctr;

		bench_config(&c, sizes[k]);
		xo.log = stderr;
		if (qs_xdp_open(&c, &xo, &x, msg, sizeof(msg)) != QS_OK ||
		    qs_xdp_load_policy_file(x, pol, msg, sizeof(msg)) != QS_OK) {
			fprintf(stderr, "%s\n", msg);
			qs_xdp_close(x);
			unlink(pol);
			return 1;
		}
		/* every backend reports once */
		flow(&f, QS_QRP_REPORT_PORT);
		for (i = 0; i < sizes[k]; i++) {
			memset(&h, 0, sizeof(h));
			memset(&r, 0, sizeof(r));
			h.type = QS_QRP_T_REPORT;
			h.request_id = 1;
			h.hdr_len = QS_QRP_HDR_LEN;
			r.backend_id = (uint16_t)(10 + i);
			r.waiting = i * 3;
			r.running = 4 + i;
			r.kv_used = 100 * i;
			r.kv_total = 4000;
			r.decode_tps = 3000 + 100 * i;
			r.ttft_p99_us = 200000;
			r.prefill_pending = 1000 * i;
			len = qs_dp_build_qrp(pkt, sizeof(pkt), &f, &h, &r, 0);
			qs_xdp_run(x, pkt, len, 0, &v, out, sizeof(out), &olen, msg, sizeof(msg));
		}
		flow(&f, QS_QRP_PORT);
		memset(&h, 0, sizeof(h));
		h.type = QS_QRP_T_REQUEST;
		h.flags = QS_QRP_F_LAST;
		h.request_id = 42;
		h.prompt_tokens = 1500;
		h.max_new_tokens = 200;
		h.prefix_hash = 0x1234;
		h.priority = 1;
		h.slo_class = 2;
		h.hdr_len = QS_QRP_HDR_LEN;
		len = qs_dp_build_qrp(pkt, sizeof(pkt), &f, &h, NULL, 64);
		if (qs_xdp_bench(x, false, pkt, len, repeat, &ns_s, &v, msg, sizeof(msg)) != QS_OK ||
		    qs_xdp_bench(x, true, pkt, len, repeat, &ns_t, &v_t, msg, sizeof(msg)) != QS_OK) {
			fprintf(stderr, "%s\n", msg);
			qs_xdp_close(x);
			unlink(pol);
			return 1;
		}
		qs_xdp_counters(x, &ctr);
		printf("%-9u %12u %12u %12d %10s  (policy decisions %" PRIu64 ", fallback %" PRIu64
		       ")\n",
		       sizes[k], ns_s, ns_t, (int)ns_s - (int)ns_t, v == QS_XDP_TX ? "QS_XDP_TX" : "?",
		       ctr.decided_policy, ctr.fallback);
		qs_xdp_close(x);
	}
	unlink(pol);
	return 0;
}
