/*
 * stop.h - a program's stop flag: SIGINT and SIGTERM set it, and the program's
 * loop (or the library it hands the flag to: qs_agent_serve's and qs_load_run's
 * `stop`) ends when it is set. qsteer-agent, qsteer-load and qsteer-xdp use it.
 *
 * Header-only, for programs: each program that includes it has its own flag (one
 * translation unit per program should include it).
 */
#ifndef QSTEER_STOP_H
#define QSTEER_STOP_H

#include <signal.h>

static volatile sig_atomic_t qs_stop_flag;

static inline void
qs_stop_handler(int sig)
{
	(void)sig;
	qs_stop_flag = 1;
}

/* Stop on SIGINT and SIGTERM from now on; the flag (nonzero: stop). */
static inline volatile sig_atomic_t *
qs_stop_on_signals(void)
{
	signal(SIGINT, qs_stop_handler);
	signal(SIGTERM, qs_stop_handler);
	return &qs_stop_flag;
}

#endif /* QSTEER_STOP_H */
