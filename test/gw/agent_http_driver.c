/*
 * agent_http_driver.c - TEST-ONLY driver: qsteer-agent's serving loop with the
 * engine executor (qs_agent_http_serve, agent/exec_http.c), for test/gw while
 * agent/main.c does not take --executor http:// yet (gw/agent-main.patch adds it).
 * It parses just the options the tests use.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qsteer/agent_http.h"

static volatile int g_stop;

static void
on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"executor", required_argument, NULL, 'e'},
	    {"listen", required_argument, NULL, 'l'},
	    {"report-to", required_argument, NULL, 'r'},
	    {"backend-id", required_argument, NULL, 1},
	    {"port-file", required_argument, NULL, 2},
	    {"max-inflight", required_argument, NULL, 3},
	    {"kv-high-pct", required_argument, NULL, 4},
	    {"scrape-interval-ms", required_argument, NULL, 5},
	    {"report-interval-ms", required_argument, NULL, 6},
	    {NULL, 0, NULL, 0},
	};
	struct qs_agent_http_cfg h;
	struct qs_agent_cfg a;
	struct qs_agent_intake_cfg in;
	struct qs_agent_serve_cfg s;
	struct qs_agent_http_stats st;
	char msg[512] = "";
	int c, rc;

	qs_agent_http_cfg_default(&h);
	qs_agent_cfg_default(&a);
	qs_agent_intake_cfg_default(&in);
	qs_agent_serve_cfg_default(&s);
	while ((c = getopt_long(argc, argv, "e:l:r:", lo, NULL)) != -1) {
		switch (c) {
		case 'e':
			snprintf(h.engine, sizeof(h.engine), "%s", optarg);
			break;
		case 'l':
			snprintf(s.listen, sizeof(s.listen), "%s", optarg);
			break;
		case 'r':
			if (s.n_report_to < QS_AGENT_MAX_REPORT_TO)
				snprintf(s.report_to[s.n_report_to++], 128, "%s", optarg);
			break;
		case 1:
			a.backend_id = (uint16_t)atoi(optarg);
			break;
		case 2:
			snprintf(h.port_file, sizeof(h.port_file), "%s", optarg);
			break;
		case 3:
			h.max_inflight = (uint32_t)atoi(optarg);
			break;
		case 4:
			h.kv_high_pct = (uint32_t)atoi(optarg);
			break;
		case 5:
			h.scrape_interval_ns = (uint64_t)atoll(optarg) * 1000000ull;
			break;
		case 6:
			s.report_interval_ns = (uint64_t)atoll(optarg) * 1000000ull;
			break;
		default:
			fprintf(stderr, "agent-http-driver: see the source for its options\n");
			return 2;
		}
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	s.stop = &g_stop;
	rc = qs_agent_http_serve(&h, &a, &in, &s, &st, msg, sizeof(msg));
	fprintf(stderr,
		"agent-http-driver: %llu datagrams, %llu requests (%llu rejected), %llu "
		"completed, %llu cancelled, %llu engine errors, %llu scrapes (%llu failed), "
		"%llu reports, %llu responses\n",
		(unsigned long long)st.datagrams, (unsigned long long)st.requests,
		(unsigned long long)st.rejected, (unsigned long long)st.completed,
		(unsigned long long)st.cancelled, (unsigned long long)st.engine_errors,
		(unsigned long long)st.scrapes, (unsigned long long)st.scrape_errors,
		(unsigned long long)st.reports_sent, (unsigned long long)st.responses_sent);
	if (rc != QS_OK) {
		fprintf(stderr, "agent-http-driver: %s\n", msg);
		return 1;
	}
	return 0;
}
