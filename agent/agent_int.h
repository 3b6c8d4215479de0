/*
 * agent_int.h - declarations shared by the agent library's own files, not public.
 */
#ifndef QSTEER_AGENT_INT_H
#define QSTEER_AGENT_INT_H

#include <stdint.h>

/* Monotonic clock in ns (serve.c). */
uint64_t qs_agent_now_ns(void);

#endif /* QSTEER_AGENT_INT_H */
