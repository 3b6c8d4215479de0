/*
 * main.c - qsteer-pcap: make QRP traffic as pcap files, and check what qsteer-dp
 * made of them. One file per command:
 *
 *   gen    (gen.c) trace CSV, read by the simulator's reader, or a synthetic
 *          workload -> pcap of requests, continuations, cancels, interleaved
 *          reports and malformed packets; deterministic, with a --manifest.
 *   check  (check.c) replays IN through the dataplane core with the scalar
 *          reference kernel in qsteer-dp's bursts and compares OUT with it byte
 *          for byte, checksums and counters too; --alt-policy, --canary and
 *          --drained check a live swap, a canary and an operator's drain.
 *   split  (split.c) software RSS for the multi-worker test.
 *   decisions (decisions.c) every request's decision and the feature rows it was
 *          made on, from a capture replayed through the core.
 *
 * docs/dataplane.md explains why these decisions are reproducible.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "qsteer/dp_core.h"

#include "qsteer_pcap.h"

void
qs_pcap_usage(FILE *f)
{
	fprintf(
	    f, "usage: qsteer-pcap gen --config FILE --out OUT.pcap [--trace CSV | --synthetic N]\n"
	       "                   [--limit N] [--seed S] [--speedup K] [--report-interval-ms MS]\n"
	       "                   [--malformed N] [--no-outage] [--ipv6-pct P] [--manifest FILE]\n"
	       "       qsteer-pcap check --in IN --out OUT --config FILE --policy "
	       "FILE.q8|builtin:NAME\n"
	       "                   [--alt-policy FILE.q8] [--stats DP.json] [--manifest FILE]\n"
	       "                   [--burst N] [--max-print N]\n"
	       "                   [--canary PCT (with --alt-policy) | --drained ID[,ID]] "
	       "[--windows N]\n"
	       "       qsteer-pcap split --in IN --queues N --prefix P [--config FILE]\n"
	       "       qsteer-pcap decisions --in IN --config FILE --policy FILE.q8|builtin:NAME\n"
	       "                   [--out CSV] [--burst N]\n");
}

void
qs_pcap_die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "qsteer-pcap: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

void
qs_pcap_load_policy(const char *spec, struct qs_dp_policy_set *set, struct qs_policy **pol)
{
	struct qs_policy_load_opts lo = {QS_SCHEMA_ROUTER_V1, QS_Q8_KIND_SCORER, NULL};
	char msg[512];

	memset(set, 0, sizeof(*set));
	*pol = NULL;
	if (strncmp(spec, "builtin:", 8) == 0) {
		if (qs_baseline_parse(spec + 8, &set->builtin) != 0)
			qs_pcap_die("--policy %s: unknown builtin", spec);
		return;
	}
	if (qs_policy_load_file(spec, &lo, pol, msg, sizeof(msg)) != QS_OK)
		qs_pcap_die("%s", msg);
	set->active = *pol;
}

int
main(int argc, char **argv)
{
	static const struct qs_opt_cmd cmds[] = {
	    {"gen", qs_pcap_gen},
	    {"check", qs_pcap_check},
	    {"split", qs_pcap_split},
	    {"decisions", qs_pcap_decisions},
	    {NULL, NULL},
	};

	return qs_opt_dispatch("qsteer-pcap", cmds, argc, argv, 1, qs_pcap_usage, NULL);
}
