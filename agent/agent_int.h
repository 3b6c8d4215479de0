/*
 * agent_int.h - declarations shared by the agent library's own files, not public.
 */
#ifndef QSTEER_AGENT_INT_H
#define QSTEER_AGENT_INT_H

#include <stdint.h>

#include "qsteer/agent.h"

/* Monotonic clock in ns (serve.c). */
uint64_t qs_agent_now_ns(void);

/* qs_agent_step in two halves (agent.c): schedule and run an iteration, then apply
 * it once its time has passed, so that reports in between show the state during
 * the iteration (serve.c, model executor). it->kv_used is updated by the finish. */
int qs_agent_step_start(struct qs_agent *a, uint64_t now_ns, struct qs_agent_iter *it, char *msg,
			size_t msglen);
void qs_agent_step_finish(struct qs_agent *a, struct qs_agent_iter *it);
/* When the head of the waiting queue (its oldest request) arrived; UINT64_MAX if
 * none waits. */
uint64_t qs_agent_oldest_recv(const struct qs_agent *a);
/* Its executor only models iteration times (the caller lets them pass). */
bool qs_agent_exec_simulated(const struct qs_agent *a);

#endif /* QSTEER_AGENT_INT_H */
