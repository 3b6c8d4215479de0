/*
 * report_auth.h - authenticated backend reports (docs/wire.md, "Report
 * authentication"), in restricted C (rc.h) for the agent that signs, and the
 * dataplane and the XDP program that check.
 *
 * An agent with a key sets QS_QRP_F_AUTH in the header and appends
 * SipHash-2-4-128(key, header || body) (siphash.h) to the 56-byte body. The tag
 * covers the sequence number (the header's request id), so a receiver that also
 * insists on a rising sequence per backend refuses replays; the agent starts its
 * sequence at its wall clock in ns, so a restarted agent still counts up.
 */
#ifndef QSTEER_REPORT_AUTH_H
#define QSTEER_REPORT_AUTH_H

#include "rc.h"
#include "siphash.h"
#include "wire.h"

/* Bytes the tag covers: the 32-byte header and the 56-byte body. */
#define QS_QRP_AUTH_MSG_LEN (QS_QRP_HDR_LEN + QS_QRP_REPORT_LEN)

/* Per-backend report key as configured (a key of all zeros is refused by the
 * config readers, so has_key says whether one was given). */
struct qs_report_key {
	qs_u8 has_key;
	qs_u8 key[QS_SIPHASH_KEY_LEN];
};

/* Parse a key written as 32 hex digits (surrounding blanks and a final newline
 * allowed, as in a key file). -1 unless exactly 16 bytes, not all zero. */
QS_RC_FN int
qs_report_key_hex(const char *s, struct qs_report_key *k)
{
	qs_u32 i, n = 0, j = 0;
	qs_u8 any = 0;

	k->has_key = 0;
	for (i = 0; i < 128; i++) {
		char ch = s[i];
		int v;

		if (ch == 0)
			break;
		if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
			if (n != 0 && n != 2 * QS_SIPHASH_KEY_LEN)
				return -1; /* blanks only around the digits */
			continue;
		}
		if (ch >= '0' && ch <= '9')
			v = ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			v = ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'F')
			v = ch - 'A' + 10;
		else
			return -1;
		if (n >= 2 * QS_SIPHASH_KEY_LEN)
			return -1;
		j = n >> 1;
		k->key[j] = (qs_u8)((n & 1) ? (k->key[j] | v) : (v << 4));
		any |= (qs_u8)v;
		n++;
	}
	if (i == 128 || n != 2 * QS_SIPHASH_KEY_LEN || !any)
		return -1;
	k->has_key = 1;
	return 0;
}

/* Write the tag of the QS_QRP_AUTH_MSG_LEN bytes at msg (an encoded header with
 * QS_QRP_F_AUTH set, then the body) to msg + QS_QRP_AUTH_MSG_LEN. */
QS_RC_FN void
qs_report_sign(const qs_u8 *key, qs_u8 *msg)
{
	qs_siphash128(key, msg, QS_QRP_AUTH_MSG_LEN, msg + QS_QRP_AUTH_MSG_LEN);
}

/*
 * Is the report payload at msg (QS_QRP_AUTH_MSG_LEN + tag bytes, already checked
 * present by the parser) acceptable under k? A backend without a key is believed
 * on its source alone (report_src.h), tagged or not; one with a key only when the
 * report carries a tag and the tag is right.
 */
QS_RC_FN int
qs_report_auth_ok(const struct qs_report_key *k, qs_u16 hdr_flags, const qs_u8 *msg)
{
	qs_u8 tag[QS_SIPHASH_TAG_LEN];

	if (!k->has_key)
		return 1;
	if (!(hdr_flags & QS_QRP_F_AUTH))
		return 0;
	qs_siphash128(k->key, msg, QS_QRP_AUTH_MSG_LEN, tag);
	return qs_sip_tag_eq(tag, msg + QS_QRP_AUTH_MSG_LEN);
}

#endif /* QSTEER_REPORT_AUTH_H */
