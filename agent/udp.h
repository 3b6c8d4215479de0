/*
 * udp.h - the agent's UDP ends, shared by its two serving loops (serve.c, the
 * agent's own scheduler; exec_http.c, an engine behind it): the service socket,
 * requests in by recvmmsg bursts through the intake, and backend reports out to
 * every dataplane. Not public (agent library only).
 */
#ifndef QSTEER_AGENT_UDP_H
#define QSTEER_AGENT_UDP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "qsteer/agent.h"

#define QS_AGENT_RX_BURST  32
#define QS_AGENT_DGRAM_MAX 2048

/* The service socket bound to lis (non-blocking, SO_REUSEADDR); the port it got in
 * *bound_port (lis may ask for 0). -1 with msg saying what (who: the loop's name,
 * listen: the address as configured). */
int qs_agent_udp_listen(const struct qs_agent_addr *lis, const char *listen, const char *who,
			int *bound_port, char *msg, size_t msglen);

/* The first report sequence number: 0, or with a report key the realtime clock in
 * ns, because a keyed dataplane takes only a rising sequence, also after a restart. */
uint64_t qs_agent_udp_report_seq0(const struct qs_report_key *k);

/* Sends r (sequence seq, signed with k when it has a key) from fd to each of the n
 * dataplanes, counting into *sent and *errors. */
void qs_agent_udp_report(int fd, const struct qs_agent_addr *to, uint32_t n,
			 const struct qs_qrp_report *r, uint64_t seq, const struct qs_report_key *k,
			 uint64_t *sent, uint64_t *errors);

/* One burst of datagrams in. */
struct qs_agent_rx {
	uint8_t buf[QS_AGENT_RX_BURST][QS_AGENT_DGRAM_MAX];
	struct mmsghdr mm[QS_AGENT_RX_BURST];
	struct iovec iov[QS_AGENT_RX_BURST];
	struct sockaddr_storage from[QS_AGENT_RX_BURST];
};

/* What each datagram received became: the intake's verdict (QS_AGENT_IN_*), with
 * the request or cancel it completed (req), and the datagram itself. */
typedef void (*qs_agent_rx_fn)(void *ctx, int verdict, struct qs_agent_req *req,
			       const uint8_t *dgram, uint32_t len);

void qs_agent_rx_init(struct qs_agent_rx *rx);
/* Receives up to a burst from fd without blocking, feeds each datagram to the
 * intake (keyed by its source) at time now and calls fn with the verdict. Returns
 * the datagrams received (0: none waiting; -1: recvmmsg's error in errno). */
int qs_agent_rx_burst(struct qs_agent_rx *rx, int fd, struct qs_agent_intake *in, uint64_t now,
		      qs_agent_rx_fn fn, void *ctx);

#endif /* QSTEER_AGENT_UDP_H */
