/*
 * xdp_replay.c - the XDP program against the dataplane core, packet by packet.
 *
 * Every frame of a pcap goes through the loaded XDP program with BPF_PROG_TEST_RUN
 * (the test clock set to the frame's pcap timestamp) and through qsteer-dp's
 * DPDK-free core (qs_dp_process with a burst of one, the scalar reference kernel,
 * the same timestamp). For every frame the verdicts must correspond (dp TX <->
 * QS_XDP_TX, PASS <-> QS_XDP_PASS, DROP/CONSUMED <-> QS_XDP_DROP) and the output bytes be
 * identical; at the end every counter must be equal. Frames the program sends
 * (TX, PASS) are written to --out for `qsteer-pcap check --burst 1`, and its
 * counters to --stats-out in qsteer-dp's JSON.
 *
 * With --second B.q8 --mode shadow|canary [--pct N] both run the policy set
 * "--policy active + B as shadow (or canary at N%)": the canary split must give the
 * same frames, and the shadow counters (scored, disagreements, per-backend
 * would-send, disagreement pairs) must be equal; --shadow-out writes the program's
 * shadow report (qs_dp_shadow_json, every pair).
 *
 * usage: xdp-replay --config INI --in IN.pcap --policy FILE.q8|builtin:NAME
 *                   [--second B.q8 --mode shadow|canary [--pct N]]
 *                   [--fallback NAME] [--pass-non-qrp] [--out OUT.pcap]
 *                   [--stats-out FILE] [--shadow-out FILE] [--max-print N]
 * Exit: 0 identical, 1 a difference, 2 usage or setup error, 77 no root / no BPF.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qsteer/xdp_loader.h"

int
main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", 1, 0, 'c'},
					     {"in", 1, 0, 'i'},
					     {"policy", 1, 0, 'p'},
					     {"fallback", 1, 0, 'f'},
					     {"pass-non-qrp", 0, 0, 'P'},
					     {"out", 1, 0, 'o'},
					     {"stats-out", 1, 0, 'S'},
					     {"max-print", 1, 0, 'x'},
					     {"second", 1, 0, '2'},
					     {"mode", 1, 0, 'm'},
					     {"pct", 1, 0, 'C'},
					     {"shadow-out", 1, 0, 'H'},
					     {0, 0, 0, 0}};
	const char *cfgp = NULL, *inp = NULL, *pol = NULL, *fb = NULL, *outp = NULL, *statsp = NULL,
		   *second = NULL, *mode = NULL, *shadowp = NULL;
	long pct = -1;
	struct qs_policy *p2 = NULL;
	struct qs_dp_shadow *xsh = NULL, *dsh = NULL;
	bool pass = false;
	int o, max_print = 10, printed = 0, rc = 2;
	struct qs_dp_config c;
	struct qs_dp_shared *s = NULL;
	struct qs_dp_worker *w = NULL;
	struct qs_dp_policy_set set;
	struct qs_policy *p = NULL;
	struct qs_xdp *x = NULL;
	struct qs_xdp_opts xo = {0};
	char msg[512], err[PCAP_ERRBUF_SIZE];
	pcap_t *pin = NULL, *pd = NULL;
	pcap_dumper_t *dump = NULL;
	struct pcap_pkthdr *h;
	const u_char *d;
	uint64_t n = 0, bad = 0, tx = 0, runts = 0;
	struct qs_dp_counters xc;
	cpu_set_t cpus;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			cfgp = optarg;
			break;
		case 'i':
			inp = optarg;
			break;
		case 'p':
			pol = optarg;
			break;
		case 'f':
			fb = optarg;
			break;
		case 'P':
			pass = true;
			break;
		case 'o':
			outp = optarg;
			break;
		case 'S':
			statsp = optarg;
			break;
		case 'x':
			max_print = atoi(optarg);
			break;
		case '2':
			second = optarg;
			break;
		case 'm':
			mode = optarg;
			break;
		case 'C':
			pct = strtol(optarg, NULL, 10);
			break;
		case 'H':
			shadowp = optarg;
			break;
		default:
			return 2;
		}
	}
	if (second && (!mode || (strcmp(mode, "shadow") != 0 && strcmp(mode, "canary") != 0) ||
		       (strcmp(mode, "canary") == 0) != (pct >= 0) || pct > 100)) {
		fprintf(stderr, "xdp-replay: --second needs --mode shadow, or --mode canary "
				"--pct 0..100\n");
		return 2;
	}
	if (!cfgp || !inp || !pol) {
		fprintf(stderr, "usage: xdp-replay --config INI --in IN.pcap --policy SPEC ...\n");
		return 2;
	}
	if (geteuid() != 0) {
		printf("SKIP: BPF_PROG_TEST_RUN needs root\n");
		return 77;
	}
	/* one CPU: the program's per-CPU worker 0 is the dataplane's worker 0 */
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	if (sched_setaffinity(0, sizeof(cpus), &cpus) != 0) {
		perror("sched_setaffinity");
		return 2;
	}
	qs_dp_config_defaults(&c);
	if (qs_dp_config_load(cfgp, &c, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "%s\n", msg);
		return 2;
	}
	if (fb && qs_baseline_parse(fb, &c.fallback) != 0) {
		fprintf(stderr, "unknown fallback %s\n", fb);
		return 2;
	}
	if (pass)
		c.pass_non_qrp = true;

	xo.test_clock = true;
	xo.log = stderr;
	if (qs_xdp_open(&c, &xo, &x, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-xdp: %s\n", msg);
		if (strstr(msg, "Operation not permitted")) {
			printf("SKIP: BPF not available here\n");
			return 77;
		}
		return 2;
	}
	if (qs_xdp_load_policy_spec(x, pol, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "%s\n", msg);
		goto cleanup;
	}
	memset(&set, 0, sizeof(set));
	if (strncmp(pol, "builtin:", 8) == 0) {
		qs_baseline_parse(pol + 8, &set.builtin);
	} else {
		struct qs_policy_load_opts lo = {QS_SCHEMA_ROUTER_V1, QS_Q8_KIND_SCORER, NULL};

		if (qs_policy_load_file(pol, &lo, &p, msg, sizeof(msg)) != QS_OK) {
			fprintf(stderr, "%s\n", msg);
			goto cleanup;
		}
		set.active = p;
	}
	if (second) {
		struct qs_policy_load_opts lo = {QS_SCHEMA_ROUTER_V1, QS_Q8_KIND_SCORER, NULL};
		bool canary = strcmp(mode, "canary") == 0;

		if (qs_xdp_load_second_file(
			x, second, canary ? QS_XDP_SET_CANARY : QS_XDP_SET_SHADOW,
			canary ? (uint32_t)pct : 0, msg, sizeof(msg)) != QS_OK ||
		    qs_policy_load_file(second, &lo, &p2, msg, sizeof(msg)) != QS_OK) {
			fprintf(stderr, "%s\n", msg);
			goto cleanup;
		}
		set.second = p2;
		set.mode = canary ? QS_DP_MODE_CANARY : QS_DP_MODE_SHADOW;
		set.canary_pct = canary ? (uint32_t)pct : 0;
	}
	s = aligned_alloc(64, (sizeof(*s) + 63) & ~(size_t)63);
	w = aligned_alloc(64, (sizeof(*w) + 63) & ~(size_t)63);
	if (!s || !w)
		goto cleanup;
	qs_dp_shared_init(s, &c);
	qs_dp_worker_init(w, s, QS_KERNEL_SCALAR, 0);

	pin = pcap_open_offline(inp, err);
	if (!pin) {
		fprintf(stderr, "%s: %s\n", inp, err);
		goto cleanup;
	}
	if (outp) {
		pd = pcap_open_dead(DLT_EN10MB, 65535);
		dump = pd ? pcap_dump_open(pd, outp) : NULL;
		if (!dump) {
			fprintf(stderr, "%s: cannot write\n", outp);
			goto cleanup;
		}
	}
	while (pcap_next_ex(pin, &h, &d) == 1) {
		uint8_t a[2048], b[2048], xout[2048];
		uint8_t *bp = b;
		uint32_t len = h->caplen, verdict, olen, want;
		uint64_t now =
		    (uint64_t)h->ts.tv_sec * 1000000000ull + (uint64_t)h->ts.tv_usec * 1000;

		n++;
		if (len > sizeof(a))
			len = sizeof(a);
		memcpy(a, d, len);
		memcpy(b, d, len);
		if (len < 14) {
			/*
			 * A runt: no driver hands a frame shorter than an Ethernet header to
			 * XDP, and BPF_PROG_TEST_RUN refuses one (EINVAL). The dataplane
			 * drops it as eth-short; so do we, on the program's behalf.
			 */
			qs_dp_process(w, s, &set, &bp, &len, 1, now);
			if (w->b.verdict[0] != QS_DP_V_DROP ||
			    w->b.pkt[0].drop != QS_DP_D_ETH_SHORT) {
				bad++;
				printf("in#%" PRIu64
				       ": a runt the dataplane did not drop as eth-short\n",
				       n - 1);
			}
			runts++;
			continue;
		}
		if (qs_xdp_run(x, a, len, now, &verdict, xout, sizeof(xout), &olen, msg,
			       sizeof(msg)) != QS_OK) {
			fprintf(stderr, "%s\n", msg);
			goto cleanup;
		}
		qs_dp_process(w, s, &set, &bp, &len, 1, now);
		switch (w->b.verdict[0]) {
		case QS_DP_V_TX:
			want = QS_XDP_TX;
			break;
		case QS_DP_V_PASS:
			want = QS_XDP_PASS;
			break;
		default:
			want = QS_XDP_DROP;
			break;
		}
		if (verdict != want || ((want == QS_XDP_TX || want == QS_XDP_PASS) &&
					(olen != len || memcmp(xout, b, len) != 0))) {
			bad++;
			if (printed++ < max_print)
				printf("in#%" PRIu64 ": dataplane %s (drop %s, backend %d), XDP %s "
				       "(%u bytes)%s\n",
				       n - 1, qs_xdp_action_name(want),
				       qs_dp_drop_name(w->b.pkt[0].drop),
				       w->b.backend[0] == 0xffff ? -1 : w->b.backend[0],
				       qs_xdp_action_name(verdict), olen,
				       verdict == want ? ": frames differ" : "");
		}
		if (dump && (verdict == QS_XDP_TX || verdict == QS_XDP_PASS)) {
			struct pcap_pkthdr oh = *h;

			oh.caplen = oh.len = olen;
			pcap_dump((u_char *)dump, &oh, xout);
			tx++;
		}
	}
	if (qs_xdp_counters(x, &xc) != QS_OK) {
		fprintf(stderr, "reading counters failed\n");
		goto cleanup;
	}
	xc.rx += runts;
	xc.bursts += runts;
	xc.drop[QS_DP_D_ETH_SHORT] += runts;
	{
		char *jx = qs_dp_counters_json(&xc, &c), *jd = qs_dp_counters_json(&w->ctr, &c);

		if (memcmp(&xc, &w->ctr, sizeof(xc)) != 0) {
			bad++;
			printf("counters differ:\n  xdp:       %s\n  dataplane: %s\n", jx, jd);
		}
		if (statsp) {
			FILE *f = fopen(statsp, "w");

			if (f) {
				fprintf(f, "%s\n", jx);
				fclose(f);
			}
		}
		printf("xdp-replay: %" PRIu64 " packets (%" PRIu64 " runts counted as eth-short "
		       "for the program), %" PRIu64 " sent; %s\n",
		       n, runts, tx, jx);
		free(jx);
		free(jd);
	}
	xsh = calloc(1, sizeof(*xsh));
	dsh = calloc(1, sizeof(*dsh));
	if (!xsh || !dsh)
		goto cleanup;
	qs_xdp_shadow(x, xsh, NULL);
	qs_dp_shadow_add(dsh, w);
	{
		char *jx = qs_dp_shadow_json(xsh, &c, 0), *jd = qs_dp_shadow_json(dsh, &c, 0);

		if (memcmp(xsh, dsh, sizeof(*xsh)) != 0) {
			bad++;
			printf("shadow counters differ:\n  xdp:       %s\n  dataplane: %s\n", jx,
			       jd);
		}
		if (second)
			printf("second policy %s as %s: shadow report %s\n", second, mode, jx);
		if (shadowp) {
			FILE *f = fopen(shadowp, "w");

			if (f) {
				fprintf(f, "%s\n", jx);
				fclose(f);
			}
		}
		free(jx);
		free(jd);
	}
	{
		uint32_t insns = 0, jited = 0, verified = 0;

		qs_xdp_prog_stats(x, &insns, &jited, &verified);
		printf("program: %u instructions (%u bytes JITed); the verifier processed %u\n",
		       insns, jited, verified);
	}
	printf("%" PRIu64 " differences: %s\n", bad, bad ? "FAIL" : "OK");
	rc = bad ? 1 : 0;
cleanup:
	if (dump)
		pcap_dump_close(dump);
	if (pd)
		pcap_close(pd);
	if (pin)
		pcap_close(pin);
	qs_xdp_close(x);
	qs_policy_free(p);
	qs_policy_free(p2);
	free(xsh);
	free(dsh);
	free(s);
	free(w);
	return rc;
}
