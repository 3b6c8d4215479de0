/*
 * report_src.h - whom a backend report is believed from.
 *
 * A report changes routing for every client, so the dataplane believes a report for
 * backend id X only from the source configured for X: by default the backend's own
 * address (its `ip` / `ip6`, any UDP source port, since agents report from an
 * ephemeral port), or what `report_from` says. Anything else is dropped as
 * report-source before its sequence number is looked at, so a forger can neither
 * steer traffic nor lock the real agent out with a huge sequence number.
 *
 * One definition for dp/core.c and the XDP program: restricted C (rc.h).
 */
#ifndef QSTEER_REPORT_SRC_H
#define QSTEER_REPORT_SRC_H

#include "rc.h"

struct qs_report_src {
	qs_u8 any;		/* 1: believe any source (report_source = any) */
	qs_u8 has_ip4, has_ip6; /* 0: no report of that family is believed */
	qs_u8 pad;
	qs_u16 port; /* 0: any UDP source port */
	qs_u8 ip4[4];
	qs_u8 ip6[16];
};

/*
 * Is a report with source address src (4 bytes, or 16 when ipv6) and UDP source
 * port sport (host order) from w? src must point at readable bytes.
 */
QS_RC_FN int
qs_report_src_ok(const struct qs_report_src *w, int ipv6, const qs_u8 *src, qs_u16 sport)
{
	qs_u32 diff = 0, i;

	if (w->any)
		return 1;
	if (w->port && sport != w->port)
		return 0;
	if (ipv6) {
		if (!w->has_ip6)
			return 0;
		QS_RC_UNROLL
		for (i = 0; i < 16; i++)
			diff |= (qs_u32)(src[i] ^ w->ip6[i]);
		return diff == 0;
	}
	if (!w->has_ip4)
		return 0;
	QS_RC_UNROLL
	for (i = 0; i < 4; i++)
		diff |= (qs_u32)(src[i] ^ w->ip4[i]);
	return diff == 0;
}

#endif /* QSTEER_REPORT_SRC_H */
