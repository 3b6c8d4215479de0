/*
 * test_e2e.c - the agent end to end on loopback (127.0.0.1 only): qs_agent_serve
 * with the model executor in a thread; this test is client and dataplane at once.
 * It sends single- and multi-packet requests plus malformed datagrams, and checks
 * that every request gets a first-token and a completion response in that order,
 * that reports arrive with the right cumulative counts, and that the agent stops
 * by itself (after N completions, with a hard time limit as a backstop).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "qs_test.h"

#include "qsteer/agent.h"
#include "qsteer/clock.h"

#define N_REQ 24
/* Backstops only a stuck agent reaches: on a busy machine the real-time model runs
 * slower, and nothing here may depend on how much slower. */
#define BACKSTOP_S 60

struct srv {
	struct qs_agent *a;
	struct qs_agent_intake *in;
	struct qs_agent_serve_cfg c;
	struct qs_agent_serve_stats st;
	volatile int ready;
	int rc;
	char msg[256];
};

static void *
serve_thread(void *arg)
{
	struct srv *s = arg;

	s->rc = qs_agent_serve(s->a, s->in, &s->c, &s->st, s->msg, sizeof(s->msg));
	s->ready = 1;
	return NULL;
}

static int
udp_bound(uint16_t *port)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (void *)&sa, sizeof(sa)), 0);
	getsockname(fd, (void *)&sa, &sl);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* The run's batching: a heuristic, or speculation with a draft model in the
 * profile, so the serving loop's responses are checked with drafts too (every
 * completion exactly its max_new_tokens; a cancel mid-run). */
struct e2e_param {
	const char *strategy;
	uint32_t spec_max_depth;
};

static void
e2e(void **state)
{
	const struct e2e_param *par = *state;
	struct srv s;
	struct qs_agent_cfg ac;
	struct qs_batch_strategy st;
	struct qs_agent_exec ex;
	struct qs_agent_intake_cfg ic;
	struct sockaddr_in to;
	pthread_t th;
	uint16_t cport, rport;
	int cfd, rfd, i;
	uint64_t deadline;
	uint8_t buf[256];
	uint32_t firsts = 0, dones = 0, reports = 0;
	uint8_t seen_first[N_REQ] = {0};
	volatile uint64_t last_completed = 0,
			  last_received = 0; /* read after the asserts' longjmp points */
	char msg[256];
	/* cancels: one for an id never sent (answered "not held"), one for a long
	 * request once its first token is in (answered "cancelled", or "not held" if
	 * a stalled machine let it finish first) */
	uint32_t unknown_answers = 0, long_done = 0, long_answer = 0, long_tokens = 0;
	struct qs_qrp_hdr ch;
	volatile int stop = 0;

	memset(&s, 0, sizeof(s));
	qs_agent_cfg_default(&ac);
	/* A fast profile so the run takes tens of milliseconds. */
	ac.prof.fixed_us = 200;
	ac.prof.prefill_us_per_token = 1;
	ac.prof.decode_us_per_seq = 10;
	ac.prof.kv_us_per_token = 0.01;
	ac.prof.spec_max_depth = par->spec_max_depth;
	ac.prof.draft_fixed_us = 20;
	ac.prof.draft_cost_ratio = 0.1;
	ac.prof.spec_accept = 0.7;
	ac.backend_id = 5;
	assert_int_equal(qs_batch_parse(par->strategy, &st, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_agent_exec_model(&ac.prof, &ex, msg, sizeof(msg)), QS_OK);
	assert_int_equal(qs_agent_create(&ac, &st, &ex, &s.a, msg, sizeof(msg)), QS_OK);
	qs_agent_intake_cfg_default(&ic);
	assert_int_equal(qs_agent_intake_create(&ic, &s.in, msg, sizeof(msg)), QS_OK);

	cfd = udp_bound(&cport);
	rfd = udp_bound(&rport);
	qs_agent_serve_cfg_default(&s.c);
	snprintf(s.c.listen, sizeof(s.c.listen), "127.0.0.1:0");
	snprintf(s.c.report_to[0], sizeof(s.c.report_to[0]), "127.0.0.1:%u", rport);
	s.c.n_report_to = 1;
	s.c.report_interval_ns = 2000000;
	s.c.stop = &stop; /* set once every answer is in: the long one never completes */
	s.c.max_run_ns = BACKSTOP_S * 1000000000ull;
	s.c.ready = &s.ready;
	assert_int_equal(pthread_create(&th, NULL, serve_thread, &s), 0);
	deadline = qs_mono_ns() + BACKSTOP_S * 1000000000ull;
	while (!s.ready && qs_mono_ns() < deadline)
		usleep(1000);
	assert_true(s.ready);
	assert_true(s.c.bound_port > 0);

	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	to.sin_port = htons((uint16_t)s.c.bound_port);
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* Malformed first: they must not disturb anything. */
	memset(buf, 0x5a, sizeof(buf));
	sendto(cfd, buf, 7, 0, (void *)&to, sizeof(to));
	sendto(cfd, buf, 64, 0, (void *)&to, sizeof(to));
	memset(&ch, 0, sizeof(ch));
	ch.type = QS_QRP_T_CANCEL;
	ch.request_id = 9999;
	qs_qrp_write_hdr(buf, &ch);
	sendto(cfd, buf, QS_QRP_HDR_LEN, 0, (void *)&to, sizeof(to));
	for (i = 0; i < N_REQ; i++) {
		struct qs_qrp_hdr h;
		bool multi = i % 3 == 0;

		memset(&h, 0, sizeof(h));
		h.type = QS_QRP_T_REQUEST;
		h.flags = multi ? 0 : QS_QRP_F_LAST;
		h.request_id = 1000 + (uint64_t)i;
		h.prompt_tokens = 20 + (uint32_t)i * 7;
		h.max_new_tokens = 1 + (uint32_t)i % 9;
		h.slo_class = (uint8_t)(i % 4);
		qs_qrp_write_hdr(buf, &h);
		sendto(cfd, buf, QS_QRP_HDR_LEN + 16, 0, (void *)&to, sizeof(to));
		if (multi) {
			h.type = QS_QRP_T_CONTINUATION;
			h.flags = QS_QRP_F_LAST;
			qs_qrp_write_hdr(buf, &h);
			sendto(cfd, buf, QS_QRP_HDR_LEN + 16, 0, (void *)&to, sizeof(to));
		}
	}
	{ /* the long one: ~4000 iterations of the model, cancelled at its first token */
		struct qs_qrp_hdr h;

		memset(&h, 0, sizeof(h));
		h.type = QS_QRP_T_REQUEST;
		h.flags = QS_QRP_F_LAST;
		h.request_id = 2000;
		h.prompt_tokens = 8;
		h.max_new_tokens = 4000;
		qs_qrp_write_hdr(buf, &h);
		sendto(cfd, buf, QS_QRP_HDR_LEN + 16, 0, (void *)&to, sizeof(to));
	}
	/* Collect responses and reports until done (or the backstop). */
	deadline = qs_mono_ns() + BACKSTOP_S * 1000000000ull;
	while ((dones < N_REQ || last_completed < N_REQ || !unknown_answers || !long_answer) &&
	       qs_mono_ns() < deadline) {
		struct pollfd p[2] = {{cfd, POLLIN, 0}, {rfd, POLLIN, 0}};
		ssize_t n;

		if (poll(p, 2, 1) <= 0)
			continue;
		if (p[0].revents & POLLIN) {
			struct qs_qra_resp r = {0};

			n = recv(cfd, buf, sizeof(buf), 0);
			assert_int_equal(qs_qra_parse(buf, (uint32_t)n, &r), QS_QRP_OK);
			assert_int_equal(r.backend_id, 5);
			if (r.request_id == 9999) {
				assert_int_equal(r.kind, QS_QRA_K_CANCEL_UNKNOWN);
				unknown_answers++;
				continue;
			}
			if (r.request_id == 2000) {
				if (r.kind == QS_QRA_K_FIRST) {
					ch.request_id = 2000;
					qs_qrp_write_hdr(buf, &ch);
					sendto(cfd, buf, QS_QRP_HDR_LEN, 0, (void *)&to,
					       sizeof(to));
				} else if (r.kind == QS_QRA_K_DONE) {
					long_done++;
				} else {
					assert_true(
					    r.kind == QS_QRA_K_CANCELLED ||
					    (r.kind == QS_QRA_K_CANCEL_UNKNOWN && long_done));
					long_answer = r.kind;
					long_tokens = r.tokens;
				}
				continue;
			}
			assert_true(r.request_id >= 1000 && r.request_id < 1000 + N_REQ);
			if (r.kind == QS_QRA_K_FIRST) {
				firsts++;
				seen_first[r.request_id - 1000] = 1;
				assert_true(r.event_ns >= r.recv_ns);
			} else {
				assert_int_equal(r.kind, QS_QRA_K_DONE);
				assert_true(seen_first[r.request_id - 1000]);
				assert_int_equal(r.tokens, 1 + (r.request_id - 1000) % 9);
				assert_true(r.event_ns >= r.first_ns);
				dones++;
			}
		}
		if (p[1].revents & POLLIN) {
			struct qs_qrp_hdr h = {0};
			struct qs_qrp_report rep = {0};

			n = recv(rfd, buf, sizeof(buf), 0);
			assert_int_equal(qs_qrp_parse_hdr(buf, (uint32_t)n, &h), QS_QRP_OK);
			assert_int_equal(h.type, QS_QRP_T_REPORT);
			assert_int_equal(
			    qs_qrp_parse_report(buf + h.hdr_len, (uint32_t)n - h.hdr_len, &rep),
			    QS_QRP_OK);
			assert_int_equal(rep.backend_id, 5);
			/* Cumulative: never goes down. */
			assert_true(rep.completed >= last_completed);
			assert_true(rep.received >= last_received);
			assert_true(rep.completed <= rep.received);
			last_completed = rep.completed;
			last_received = rep.received;
			reports++;
		}
	}
	stop = 1;
	pthread_join(th, NULL);
	if (s.rc != QS_OK)
		fail_msg("serve: %s", s.msg);
	assert_int_equal(firsts, N_REQ);
	assert_int_equal(dones, N_REQ);
	assert_true(last_received >= N_REQ && last_received <= N_REQ + 1);
	assert_true(last_completed >= N_REQ && last_completed <= N_REQ + long_done);
	assert_true(reports >= 1);
	assert_int_equal(qs_agent_intake_stats(s.in)->dropped, 2);
	assert_int_equal(unknown_answers, 1);
	if (long_answer == QS_QRA_K_CANCELLED) /* stopped before its 4000 tokens */
		assert_true(long_tokens >= 1 && long_tokens < 4000);
	else
		print_message("note: the long request finished before its cancel arrived\n");
	/* 2 per request, the long one's first token (and completion if it got
	 * there), and the two answers to the cancels */
	assert_int_equal(s.st.responses_sent, 2 * N_REQ + 1 + long_done + 2);
	assert_int_equal(qs_agent_check(s.a, msg, sizeof(msg)), QS_OK);
	{
		/* every report but the one at exit has its lateness counted (one whose
		 * send failed too: it counts in send_errors, with the responses'), and
		 * the exit line lists the counts and the largest */
		uint64_t counted = 0;
		char late[20480];
		uint32_t b;

		for (b = 0; b < QS_AGENT_LATE_BUCKETS; b++)
			counted += s.st.report_late[b];
		assert_true(counted + 1 >= s.st.reports_sent);
		assert_true(counted + 1 <= s.st.reports_sent + s.st.send_errors);
		qs_agent_serve_late_format(&s.st, late, sizeof(late));
		assert_non_null(strstr(late, "max "));
		assert_true(s.st.report_late_max_ns < s.st.elapsed_ns);
	}
	if (par->spec_max_depth) /* the drafts ran, and some were accepted */
		assert_true(qs_agent_stats(s.a)->spec_accepted > 0);
	close(cfd);
	close(rfd);
	qs_agent_intake_destroy(s.in);
	qs_agent_destroy(s.a);
	qs_agent_exec_destroy(&ex);
	qs_batch_free(&st);
}

static struct e2e_param heuristic = {"adaptive", 0}, spec = {"spec:4", 4};

QS_TEST_MAIN(cmocka_unit_test_prestate(e2e, &heuristic), cmocka_unit_test_prestate(e2e, &spec))
