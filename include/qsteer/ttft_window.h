/*
 * ttft_window.h - what a backend report's ttft_p99_us says (QRP type 3, wire.h): the
 * largest of the backend's last QS_TTFT_WINDOW first-token times, in microseconds,
 * kept across reports (of 32 samples the 99th percentile is the largest). A window
 * of samples, not of time: at the default 5 ms report interval most intervals see
 * no first token, and a per-interval p99 would read 0 in most reports, which is not
 * what the router's feature 10 (docs/features.md) was trained on. The agent
 * (agent.c, and exec_http.c where the engine publishes no TTFT histogram) and the
 * simulator's backends (sim/backend.c, which also keeps the max as first tokens
 * come, so its event loop scans nothing) report the same figure from this window; issue 13 found
 * them apart (the agent took the p99 of the interval alone, 0 without a first token) and the
 * shipped policy's live decisions with them.
 */
#ifndef QSTEER_TTFT_WINDOW_H
#define QSTEER_TTFT_WINDOW_H

#include "rc.h"

#define QS_TTFT_WINDOW 32u

struct qs_ttft_window {
	qs_u32 us[QS_TTFT_WINDOW]; /* 0: no sample yet */
	qs_u32 pos;		   /* next slot, modulo the window */
};

/* One first token, TTFT in ns (saturates at ~71 minutes). */
QS_RC_FN void
qs_ttft_window_push(struct qs_ttft_window *w, qs_u64 ttft_ns)
{
	qs_u64 us = ttft_ns / 1000u;

	w->us[w->pos % QS_TTFT_WINDOW] = us > 0xffffffffu ? 0xffffffffu : (qs_u32)us;
	w->pos = (w->pos + 1u) % QS_TTFT_WINDOW;
}

/* The report's ttft_p99_us: the largest sample in the window (0 before any). */
QS_RC_FN qs_u32
qs_ttft_window_max(const struct qs_ttft_window *w)
{
	qs_u32 i, mx = 0;

	for (i = 0; i < QS_TTFT_WINDOW; i++)
		mx = w->us[i] > mx ? w->us[i] : mx;
	return mx;
}

#endif /* QSTEER_TTFT_WINDOW_H */
