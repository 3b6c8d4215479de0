/*
 * report_seq.h - is a backend report newer than the one the router holds?
 *
 * The last of the three checks a report passes, after its source (report_src.h)
 * and its tag (report_auth.h), in one definition for dp/core.c, the XDP program and
 * the simulator's checked reports (sim/engine.c), so the three agree on what a
 * replay is. Restricted C (rc.h).
 *
 * Reports are snapshots with cumulative counts, so one not newer than the held one
 * is useless. An agent that restarted counts from 0 again: without a key its
 * reports are taken once the held one has aged out (max_age). Not so for a keyed
 * backend: its agent starts counting at its wall clock, so a sequence not above
 * the held one is a replay of a captured report, whatever its age.
 */
#ifndef QSTEER_REPORT_SEQ_H
#define QSTEER_REPORT_SEQ_H

#include "rc.h"

enum qs_report_seq_verdict {
	QS_REPORT_SEQ_TAKE = 0, /* newer (or nothing held, or the held one aged out) */
	QS_REPORT_SEQ_OLD,	/* unkeyed and not newer than a fresh held one: ignored */
	QS_REPORT_SEQ_REPLAY,	/* keyed and not newer: dropped as report-replay */
};

/* valid: a report is held, with sequence held_seq, taken at last_ns. */
QS_RC_FN int
qs_report_seq_check(qs_u32 valid, qs_u64 held_seq, qs_u64 seq, qs_u32 keyed, qs_u64 last_ns,
		    qs_u64 now, qs_u64 max_age)
{
	if (!valid || seq > held_seq)
		return QS_REPORT_SEQ_TAKE;
	if (keyed)
		return QS_REPORT_SEQ_REPLAY;
	if (now >= last_ns && now - last_ns <= max_age)
		return QS_REPORT_SEQ_OLD;
	return QS_REPORT_SEQ_TAKE;
}

#endif /* QSTEER_REPORT_SEQ_H */
