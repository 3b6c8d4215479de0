/*
 * run.c - qsteer-load's open loop: one thread, N non-blocking UDP client sockets
 * and ppoll as the timer. Each turn sends every request that is due (at most a
 * burst, so receiving is never starved), then sleeps until the next scheduled
 * send or the end of the drain, waking for responses. A request goes out at its
 * scheduled time whatever came back; a sender that falls behind sends late but
 * its latencies still count from the schedule, and the lag is reported.
 *
 * Bounded: each turn sends at most SEND_BURST requests and reads at most
 * RECV_BURST datagrams per socket; the run ends when every request is settled,
 * drain_ns after the last send, at max_run_ns, or when *stop is set -- each turn
 * checks all four against CLOCK_MONOTONIC, and sleeps no later than the nearest.
 * Client sockets are not connected: responses come by direct server return from
 * the agents, not from the address requests were sent to.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "load.h"
#include "qsteer/clock.h"

#define SEND_BURST 256
#define RECV_BURST 256
#define RCVBUF	   (4 << 20)

/* "HOST:PORT", "[V6]:PORT", "HOST" (port dflt) -> addrinfo. */
static int
resolve(const char *spec, const char *dflt, bool passive, struct addrinfo **out, char *msg,
	size_t msglen)
{
	char host[256], port[16];
	const char *colon, *h = spec;
	size_t hl;
	struct addrinfo hints;
	int e;

	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');

		if (!end) {
			snprintf(msg, msglen, "bad address '%s'", spec);
			return QS_E_ARG;
		}
		h = spec + 1;
		hl = (size_t)(end - h);
		colon = end[1] == ':' ? end + 1 : NULL;
	} else {
		colon = strrchr(spec, ':');
		hl = colon ? (size_t)(colon - spec) : strlen(spec);
	}
	if (hl >= sizeof(host) || (colon && strlen(colon + 1) >= sizeof(port))) {
		snprintf(msg, msglen, "address too long: '%s'", spec);
		return QS_E_ARG;
	}
	memcpy(host, h, hl);
	host[hl] = 0;
	snprintf(port, sizeof(port), "%s", colon ? colon + 1 : dflt);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	e = getaddrinfo(host[0] ? host : NULL, port, &hints, out);
	if (e) {
		snprintf(msg, msglen, "%s: %s", spec, gai_strerror(e));
		return QS_E_ARG;
	}
	return QS_OK;
}

static int
open_clients(const struct qs_load_net_cfg *c, const struct addrinfo *dst, int *fd, char *msg,
	     size_t msglen)
{
	struct addrinfo *src = NULL;
	uint32_t i;
	int rc = QS_OK, one = RCVBUF;

	if (c->bind) {
		rc = resolve(c->bind, "0", true, &src, msg, msglen);
		if (rc != QS_OK)
			return rc;
		if (src->ai_family != dst->ai_family) {
			snprintf(msg, msglen, "--bind %s and the target are of different families",
				 c->bind);
			freeaddrinfo(src);
			return QS_E_ARG;
		}
	}
	for (i = 0; i < c->clients; i++) {
		fd[i] = socket(dst->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd[i] < 0) {
			snprintf(msg, msglen, "socket %u: %s", i, strerror(errno));
			rc = QS_E_IO;
			break;
		}
		(void)setsockopt(fd[i], SOL_SOCKET, SO_RCVBUF, &one, sizeof(one));
		if (src && bind(fd[i], src->ai_addr, src->ai_addrlen) < 0) {
			snprintf(msg, msglen, "bind %s: %s", c->bind, strerror(errno));
			rc = QS_E_IO;
			i++;
			break;
		}
	}
	if (src)
		freeaddrinfo(src);
	return rc;
}

/* Send request i from its client socket; false when a packet could not go. */
static bool
send_one(struct qs_load_book *b, uint32_t i, const struct qs_load_net_cfg *c, int fd,
	 const struct addrinfo *dst, uint8_t *buf, uint64_t *packets)
{
	const struct qs_load_req *r = &b->req[i];
	uint64_t payload = (uint64_t)r->prompt_tokens * c->bytes_per_token;
	uint32_t n, k, len;

	if (payload > (uint64_t)QS_LOAD_MAX_PACKETS * QS_LOAD_MAX_DGRAM)
		return false;
	n = qs_load_packets((uint32_t)payload, c->max_dgram);
	if (n == 0)
		return false;
	for (k = 0; k < n; k++) {
		len = qs_load_packet(b, i, (uint32_t)payload, c->max_dgram, k, buf);
		if (sendto(fd, buf, len, 0, dst->ai_addr, dst->ai_addrlen) != (ssize_t)len)
			return false;
		(*packets)++;
	}
	return true;
}

int
qs_load_run(struct qs_load_book *b, const struct qs_load_net_cfg *cin, struct qs_load_run_stats *st,
	    char *msg, size_t msglen)
{
	struct qs_load_net_cfg c = *cin;
	struct addrinfo *dst = NULL;
	struct pollfd *pfd = NULL;
	uint8_t *sbuf = NULL, rbuf[2048];
	uint64_t t0, now, end_at = UINT64_MAX;
	uint32_t next = 0, i;
	int *fd = NULL, rc;

	memset(st, 0, sizeof(*st));
	if (c.max_dgram == 0)
		c.max_dgram = 1472;
	if (c.clients == 0 || c.clients > QS_LOAD_MAX_CLIENTS || b->n == 0 || c.max_dgram < 64 ||
	    c.max_dgram > QS_LOAD_MAX_DGRAM || !c.target) {
		snprintf(msg, msglen,
			 "run: clients must be 1..%u, max datagram 64..%u, and the "
			 "schedule and target non-empty",
			 QS_LOAD_MAX_CLIENTS, QS_LOAD_MAX_DGRAM);
		return QS_E_ARG;
	}
	rc = resolve(c.target, "7788", false, &dst, msg, msglen);
	if (rc != QS_OK)
		return rc;
	fd = malloc(c.clients * sizeof(*fd));
	pfd = calloc(c.clients, sizeof(*pfd));
	sbuf = malloc(c.max_dgram);
	if (!fd || !pfd || !sbuf) {
		snprintf(msg, msglen, "out of memory");
		rc = QS_E_NOMEM;
		goto out;
	}
	for (i = 0; i < c.clients; i++)
		fd[i] = -1;
	rc = open_clients(&c, dst, fd, msg, msglen);
	if (rc != QS_OK)
		goto out;
	for (i = 0; i < c.clients; i++) {
		pfd[i].fd = fd[i];
		pfd[i].events = POLLIN;
	}
	t0 = qs_mono_ns();
	b->mono_base = t0;
	now = 0;
	for (;;) {
		uint64_t wake;
		uint32_t sent = 0;
		struct timespec ts;

		now = qs_mono_ns() - t0;
		if (c.stop && *c.stop) {
			st->stopped = true;
			break;
		}
		if (c.max_run_ns && now >= c.max_run_ns) {
			st->hit_max_run = true;
			break;
		}
		if ((next == b->n && b->settled == b->n) || now >= end_at)
			break;
		/* open loop: everything due goes now, late or not */
		while (next < b->n && b->req[next].sched_ns <= now && sent < SEND_BURST) {
			struct qs_load_req *r = &b->req[next];

			r->sock = next % c.clients;
			r->send_ns = qs_mono_ns() - t0;
			if (r->send_ns == 0)
				r->send_ns = 1; /* 0 means "not sent" */
			if (send_one(b, next, &c, fd[r->sock], dst, sbuf, &st->packets_sent)) {
				r->state = QS_LOAD_S_SENT;
			} else {
				r->state = QS_LOAD_S_SEND_FAILED;
				st->send_errors++;
				b->settled++;
			}
			next++;
			sent++;
		}
		now = qs_mono_ns() - t0;
		if (next == b->n && end_at == UINT64_MAX)
			end_at = now + c.drain_ns;
		wake = next < b->n ? b->req[next].sched_ns : end_at;
		if (c.max_run_ns && wake > c.max_run_ns)
			wake = c.max_run_ns;
		if (sent == SEND_BURST || wake <= now)
			wake = now;
		if (wake - now > 100000000ull)
			wake = now + 100000000ull; /* look at *stop at least every 100 ms */
		ts.tv_sec = (time_t)((wake - now) / 1000000000ull);
		ts.tv_nsec = (long)((wake - now) % 1000000000ull);
		if (ppoll(pfd, c.clients, &ts, NULL) <= 0)
			continue;
		for (i = 0; i < c.clients; i++) {
			uint32_t k;

			if (!(pfd[i].revents & POLLIN))
				continue;
			for (k = 0; k < RECV_BURST; k++) {
				ssize_t got = recv(fd[i], rbuf, sizeof(rbuf), MSG_DONTWAIT);

				if (got < 0) {
					if (errno != EAGAIN && errno != EWOULDBLOCK &&
					    errno != EINTR)
						st->recv_errors++;
					break;
				}
				(void)qs_load_on_datagram(b, i, rbuf, (uint32_t)got,
							  qs_mono_ns() - t0);
			}
		}
	}
	st->end_ns = now;
	rc = QS_OK;
out:
	for (i = 0; fd && i < c.clients; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	free(fd);
	free(pfd);
	free(sbuf);
	freeaddrinfo(dst);
	return rc;
}
