/*
 * serve.c - the agent's UDP loop: requests in with recvmmsg bursts, one iteration
 * at a time through the scheduler, responses out to each request's client (direct
 * server return, from the service socket), and backend reports to every configured
 * dataplane at a fixed interval.
 *
 * With the model executor an iteration "takes" its modelled time: the loop keeps
 * receiving while it passes and sends the iteration's events only when it has, so
 * a client sees the same TTFT it would see from a GPU with that profile. With a
 * real executor the iteration has taken its time when run() returns.
 *
 * The agent clock is CLOCK_MONOTONIC in ns (reports' sent_ns, responses' times).
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include "qsteer/agent.h"
#include "qsteer/clock.h"
#include "agent_int.h"
#include "udp.h"

uint64_t
qs_agent_now_ns(void)
{
	return qs_mono_ns();
}

void
qs_agent_serve_cfg_default(struct qs_agent_serve_cfg *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->listen, sizeof(c->listen), "0.0.0.0:%d", QS_QRP_PORT);
	c->report_interval_ns = 5000000ull;
}

int
qs_agent_addr_parse(const char *s, uint16_t default_port, struct qs_agent_addr *a, char *msg,
		    size_t msglen)
{
	char host[128], port[16];
	const char *colon;
	struct addrinfo hints, *res = NULL;
	int e;

	memset(a, 0, sizeof(*a));
	snprintf(port, sizeof(port), "%u", default_port);
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || (size_t)(rb - s - 1) >= sizeof(host)) {
			snprintf(msg, msglen, "address '%s': unterminated [v6]", s);
			return QS_E_ARG;
		}
		memcpy(host, s + 1, (size_t)(rb - s - 1));
		host[rb - s - 1] = '\0';
		if (rb[1] == ':')
			snprintf(port, sizeof(port), "%s", rb + 2);
		else if (rb[1]) {
			snprintf(msg, msglen, "address '%s': junk after ]", s);
			return QS_E_ARG;
		}
	} else if ((colon = strrchr(s, ':')) != NULL) {
		if ((size_t)(colon - s) >= sizeof(host)) {
			snprintf(msg, msglen, "address '%s': host too long", s);
			return QS_E_ARG;
		}
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
		snprintf(port, sizeof(port), "%s", colon + 1);
	} else if (s[0] >= '0' && s[0] <= '9' && !strchr(s, '.')) {
		snprintf(host, sizeof(host), "0.0.0.0");
		snprintf(port, sizeof(port), "%s", s);
	} else {
		snprintf(host, sizeof(host), "%s", s);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICSERV;
	e = getaddrinfo(host[0] ? host : "0.0.0.0", port, &hints, &res);
	if (e != 0 || !res) {
		snprintf(msg, msglen, "address '%s': %s", s, e ? gai_strerror(e) : "no result");
		return QS_E_ARG;
	}
	if (res->ai_addrlen > sizeof(a->b)) {
		freeaddrinfo(res);
		snprintf(msg, msglen, "address '%s': unsupported family", s);
		return QS_E_ARG;
	}
	memcpy(a->b, res->ai_addr, res->ai_addrlen);
	a->len = (uint32_t)res->ai_addrlen;
	freeaddrinfo(res);
	return QS_OK;
}

static void
flush_events(struct qs_agent *a, int fd, uint16_t backend_id, struct qs_agent_serve_stats *st)
{
	const struct qs_agent_event *ev;
	uint32_t n, i, len;
	uint8_t buf[QS_QRA_LEN];

	ev = qs_agent_events(a, &n);
	for (i = 0; i < n; i++) {
		if (ev[i].client.len == 0)
			continue;
		len = qs_agent_event_encode(&ev[i], backend_id, buf);
		if (sendto(fd, buf, len, 0, (const void *)ev[i].client.b, ev[i].client.len) < 0)
			st->send_errors++;
		else
			st->responses_sent++;
	}
	qs_agent_events_clear(a);
}

/* Wait for a datagram or until deadline (ns, agent clock), whichever comes first. */
static void
wait_until(int fd, uint64_t deadline)
{
	struct pollfd pfd = {fd, POLLIN, 0};
	struct timespec ts;
	uint64_t now = qs_agent_now_ns(), d;

	if (deadline <= now)
		return;
	d = deadline - now;
	ts.tv_sec = (time_t)(d / 1000000000ull);
	ts.tv_nsec = (long)(d % 1000000000ull);
	(void)ppoll(&pfd, 1, &ts, NULL);
}

/* Requests and cancels in, as the intake completes them. */
struct serve_rx {
	struct qs_agent *a;
	struct qs_agent_serve_stats *st;
	uint64_t now;
};

static void
serve_in(void *ctx, int verdict, struct qs_agent_req *req, const uint8_t *dgram, uint32_t len)
{
	struct serve_rx *sr = ctx;

	(void)dgram;
	(void)len;
	sr->st->datagrams++;
	if (verdict == QS_AGENT_IN_REQUEST)
		(void)qs_agent_submit(sr->a, req, sr->now);
	else if (verdict == QS_AGENT_IN_CANCEL)
		(void)qs_agent_cancel(sr->a, req, sr->now);
}

void
qs_agent_serve_late_format(const struct qs_agent_serve_stats *st, char *buf, size_t len)
{
	size_t o = 0;
	uint32_t i;
	int w;

	if (len == 0)
		return;
	buf[0] = 0;
	for (i = 0; i < QS_AGENT_LATE_BUCKETS; i++) {
		if (!st->report_late[i])
			continue;
		w = snprintf(buf + o, len - o, "%llu:%u ",
			     (unsigned long long)(i * QS_AGENT_LATE_BUCKET_NS / 1000),
			     st->report_late[i]);
		/* truncated: the "max" that ends the line is then missing, and the reader
		 * (scripts/cluster/late.py) leaves the line out */
		if (w < 0 || (size_t)w >= len - o)
			return;
		o += (size_t)w;
	}
	(void)snprintf(buf + o, len - o, "max %llu",
		       (unsigned long long)(st->report_late_max_ns / 1000));
}

int
qs_agent_serve(struct qs_agent *a, struct qs_agent_intake *in, struct qs_agent_serve_cfg *c,
	       struct qs_agent_serve_stats *st, char *msg, size_t msglen)
{
	struct qs_agent_addr lis, rep[QS_AGENT_MAX_REPORT_TO];
	struct qs_agent_rx rx;
	struct serve_rx sr = {a, st, 0};
	int fd = -1, rfd = -1, rc = QS_OK;
	uint64_t start, now, next_report, busy_until = 0, last_end = 0, it_start, rep_seq;
	bool simulated = qs_agent_exec_simulated(a);
	bool pending = false;
	uint16_t backend_id;
	uint32_t i;
	struct qs_agent_iter it;
	struct qs_qrp_report r;

	memset(st, 0, sizeof(*st));
	start = qs_agent_now_ns();
	rep_seq = qs_agent_udp_report_seq0(&c->report_key);
	if (c->n_report_to > QS_AGENT_MAX_REPORT_TO || c->report_interval_ns == 0) {
		snprintf(msg, msglen, "serve: at most %d report addresses and a nonzero interval",
			 QS_AGENT_MAX_REPORT_TO);
		return QS_E_ARG;
	}
	rc = qs_agent_addr_parse(c->listen, QS_QRP_PORT, &lis, msg, msglen);
	for (i = 0; rc == QS_OK && i < c->n_report_to; i++)
		rc = qs_agent_addr_parse(c->report_to[i], QS_QRP_REPORT_PORT, &rep[i], msg, msglen);
	if (rc != QS_OK)
		return rc;
	fd = qs_agent_udp_listen(&lis, c->listen, "serve", &c->bound_port, msg, msglen);
	if (fd < 0) {
		rc = QS_E_IO;
		goto out;
	}
	rfd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (rfd >= 0) {
		int zero = 0; /* dual-stack: one socket reports to v4 and v6 dataplanes */

		(void)setsockopt(rfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	}
	if (rfd < 0)
		rfd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (rfd < 0) {
		snprintf(msg, msglen, "serve: report socket: %s", strerror(errno));
		rc = QS_E_IO;
		goto out;
	}
	if (c->ready)
		*c->ready = 1;
	qs_agent_rx_init(&rx);
	qs_agent_report(a, qs_agent_now_ns(), &r); /* opens the first report window */
	backend_id = r.backend_id;
	next_report = qs_agent_now_ns() + c->report_interval_ns;
	for (;;) {
		int n;

		now = qs_agent_now_ns();
		if (c->stop && *c->stop)
			break;
		if (c->max_run_ns && now - start >= c->max_run_ns)
			break;
		if (c->max_completed && qs_agent_stats(a)->completed >= c->max_completed &&
		    !pending)
			break;
		/* Requests in. */
		sr.now = now;
		n = qs_agent_rx_burst(&rx, fd, in, now, serve_in, &sr);
		qs_agent_intake_age(in, now);
		/* Reports out. */
		if (now >= next_report) {
			uint64_t late = now - next_report;

			st->report_late[QS_RC_MIN(late / QS_AGENT_LATE_BUCKET_NS,
						  QS_AGENT_LATE_BUCKETS - 1)]++;
			st->report_late_max_ns = QS_RC_MAX(st->report_late_max_ns, late);
			qs_agent_report(a, now, &r);
			qs_agent_udp_report(rfd, rep, c->n_report_to, &r, rep_seq, &c->report_key,
					    &st->reports_sent, &st->send_errors);
			rep_seq++;
			next_report += c->report_interval_ns;
			if (next_report <= now) /* fell behind: skip, do not burst */
				next_report = now + c->report_interval_ns;
		}
		/* An iteration. Its results are applied when its time has passed, not when
		 * it starts, so that a report sent meanwhile shows the sequences it
		 * finishes as still running, as a GPU's would (and as the simulator's
		 * backend does). */
		if (pending) {
			if (now < busy_until) {
				wait_until(fd, QS_RC_MIN(busy_until, next_report));
				continue;
			}
			pending = false;
			qs_agent_step_finish(a, &it);
			flush_events(a, fd, backend_id, st);
			continue;
		}
		/*
		 * With the model executor the next iteration starts when the previous one
		 * ended, not when this loop noticed (ppoll wakes late on a busy machine):
		 * the GPU's timeline is the model's, and the loop's lateness must not add
		 * up over a busy period. With nothing running it starts when its oldest
		 * waiting request arrived. Requests that arrived after that start wait for
		 * the next iteration (agent.c admits by arrival), as the simulator's
		 * would; responses still go out only once their time has come. A real
		 * executor's iteration starts now.
		 */
		it_start = now;
		if (simulated && last_end && last_end < now) {
			uint64_t oldest = qs_agent_oldest_recv(a);

			it_start = qs_agent_running(a) > 0 ? last_end : QS_RC_MAX(last_end, oldest);
			it_start = QS_RC_MIN(it_start, now);
		}
		rc = qs_agent_step_start(a, it_start, &it, msg, msglen);
		if (rc != QS_OK)
			goto out;
		if (it.seqs == 0) {
			flush_events(a, fd, backend_id, st); /* rejections */
			if (n <= 0)
				wait_until(fd, QS_RC_MIN(next_report, now + 1000000ull));
			continue;
		}
		/* Real executors return after the work; busy_until is then already past. */
		busy_until = it_start + it.ns;
		last_end = busy_until;
		pending = true;
	}
	if (pending)
		qs_agent_step_finish(a, &it);
	flush_events(a, fd, backend_id, st);
	/* A last report, so the dataplanes see the final cumulative counts. */
	qs_agent_report(a, qs_agent_now_ns(), &r);
	qs_agent_udp_report(rfd, rep, c->n_report_to, &r, rep_seq, &c->report_key,
			    &st->reports_sent, &st->send_errors);
out:
	st->elapsed_ns = qs_agent_now_ns() - start;
	if (fd >= 0)
		close(fd);
	if (rfd >= 0)
		close(rfd);
	return rc;
}
