/*
 * drop.h - why a packet was dropped: one enum for qsteer-dp (dp/core.c), the XDP
 * program (ebpf/qsteer.bpf.c) and the tools. Restricted C (rc.h): an enum and
 * nothing else, so the BPF program counts drops with the very values the dataplane
 * core does and the two cannot drift. Names (qs_dp_drop_name, dp_core.h) are
 * stable: counters, manifests and Prometheus labels use them.
 */
#ifndef QSTEER_DROP_H
#define QSTEER_DROP_H

enum qs_dp_drop {
	QS_DP_D_NONE = 0,
	QS_DP_D_ETH_SHORT,  /* frame shorter than its Ethernet/VLAN headers */
	QS_DP_D_VLAN_DEPTH, /* more than two 802.1Q/802.1ad tags */
	QS_DP_D_IP_HDR,	    /* bad version, IHL, total/payload length */
	QS_DP_D_IP_CSUM,    /* IPv4 header checksum wrong */
	QS_DP_D_IP_FRAG,    /* a UDP fragment: QRP is never fragmented */
	QS_DP_D_IP6_EXT,    /* IPv6 extension headers before UDP (not walked) */
	QS_DP_D_UDP_HDR,    /* UDP length impossible, or zero checksum over IPv6 */
	QS_DP_D_NON_QRP,    /* not for the service and configured non_qrp = drop */
	QS_DP_D_QRP_SHORT,  /* the six QRP parse errors of wire.h, in its order */
	QS_DP_D_QRP_MAGIC,
	QS_DP_D_QRP_VERSION,
	QS_DP_D_QRP_TYPE,
	QS_DP_D_QRP_HDR_LEN,
	QS_DP_D_QRP_FIELD,
	QS_DP_D_WRONG_PORT,	/* a report on the request port or a request on the report port */
	QS_DP_D_REPORT_BACKEND, /* a report from a backend id not in the configuration */
	QS_DP_D_REPORT_SOURCE,	/* a report not from the source configured for its backend id */
	QS_DP_D_REPORT_AUTH,   /* keyed backend: report untagged or its tag wrong (report_auth.h) */
	QS_DP_D_REPORT_REPLAY, /* keyed backend: sequence not above the last one accepted */
	QS_DP_D_UNKNOWN_REQ,   /* continuation or cancel with no live request-id entry */
	QS_DP_D_NO_BACKEND,    /* not even the fallback found a backend */
	QS_DP_D_FAMILY,	       /* chosen backend lacks an address of the packet's family */
	QS_DP_D_TX,	       /* the NIC refused it (DPDK shell only) */
	QS_DP_D_QUALITY_FLOOR, /* every backend the request's quality floor admits drains
				* (operator or agent), one below it does not
				* (router_view.h qs_rview_floor_left_none) */
	QS_DP_D__COUNT
};

#endif /* QSTEER_DROP_H */
