/*
 * udp.c - the agent's UDP ends (udp.h): service socket, receive bursts, reports.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include "qsteer/rc.h"
#include "udp.h"

int
qs_agent_udp_listen(const struct qs_agent_addr *lis, const char *listen, const char *who,
		    int *bound_port, char *msg, size_t msglen)
{
	const struct sockaddr *sa = (const void *)lis->b;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int one = 1;
	int fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (const void *)lis->b, lis->len)) {
		snprintf(msg, msglen, "%s: bind %s: %s", who, listen, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (getsockname(fd, (void *)&ss, &sl) == 0)
		*bound_port =
		    ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						   : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

uint64_t
qs_agent_udp_report_seq0(const struct qs_report_key *k)
{
	struct timespec ts;

	if (!k->has_key)
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void
qs_agent_udp_report(int fd, const struct qs_agent_addr *to, uint32_t n,
		    const struct qs_qrp_report *r, uint64_t seq, const struct qs_report_key *k,
		    uint64_t *sent, uint64_t *errors)
{
	uint8_t buf[QS_QRP_AUTH_MSG_LEN + QS_QRP_REPORT_TAG_LEN];
	uint32_t len = qs_agent_report_encode(r, seq, k, buf);
	uint32_t i;

	for (i = 0; i < n; i++) {
		if (sendto(fd, buf, len, 0, (const void *)to[i].b, to[i].len) < 0)
			(*errors)++;
		else
			(*sent)++;
	}
}

void
qs_agent_rx_init(struct qs_agent_rx *rx)
{
	uint32_t i;

	for (i = 0; i < QS_AGENT_RX_BURST; i++) {
		rx->iov[i].iov_base = rx->buf[i];
		rx->iov[i].iov_len = QS_AGENT_DGRAM_MAX;
	}
}

int
qs_agent_rx_burst(struct qs_agent_rx *rx, int fd, struct qs_agent_intake *in, uint64_t now,
		  qs_agent_rx_fn fn, void *ctx)
{
	int i, n;

	/* recvmmsg writes msg_namelen back: every header fresh each burst */
	for (i = 0; i < QS_AGENT_RX_BURST; i++) {
		memset(&rx->mm[i].msg_hdr, 0, sizeof(rx->mm[i].msg_hdr));
		rx->mm[i].msg_hdr.msg_iov = &rx->iov[i];
		rx->mm[i].msg_hdr.msg_iovlen = 1;
		rx->mm[i].msg_hdr.msg_name = &rx->from[i];
		rx->mm[i].msg_hdr.msg_namelen = sizeof(rx->from[i]);
	}
	n = recvmmsg(fd, rx->mm, QS_AGENT_RX_BURST, MSG_DONTWAIT, NULL);
	for (i = 0; i < n; i++) {
		struct qs_agent_addr src;
		struct qs_agent_req req;
		int why;
		int v;

		memset(&src, 0, sizeof(src));
		src.len = QS_RC_MIN(rx->mm[i].msg_hdr.msg_namelen, (socklen_t)sizeof(src.b));
		memcpy(src.b, &rx->from[i], src.len);
		v = qs_agent_intake_feed(in, rx->buf[i], rx->mm[i].msg_len, &src, now, &req, &why);
		fn(ctx, v, &req, rx->buf[i], rx->mm[i].msg_len);
	}
	return n;
}
