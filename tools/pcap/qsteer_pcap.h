/*
 * qsteer_pcap.h - what qsteer-pcap's commands share (tools/pcap/): one file per
 * command (gen.c, check.c, split.c, decisions.c) behind main.c's dispatch, the usage text and the
 * fatal-error exit. Each command's options are an opt.h table.
 */
#ifndef QSTEER_TOOLS_PCAP_H
#define QSTEER_TOOLS_PCAP_H

#include <stdio.h>

#include "qsteer/opt.h"

/* The whole program's usage: --help's text and the man page's SYNOPSIS. */
void qs_pcap_usage(FILE *f);

/* "qsteer-pcap: " + the message, and exit 2. */
void qs_pcap_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

struct qs_dp_policy_set;
struct qs_policy;

/* FILE.q8 (router v1 scorer) or builtin:NAME as the policy set's active policy; *pol
 * is the loaded file (NULL for a builtin), for qs_policy_free. Dies with the reason. */
void qs_pcap_load_policy(const char *spec, struct qs_dp_policy_set *set, struct qs_policy **pol);

/* The commands: argv[0] is the command's name; they return the exit status. */
int qs_pcap_gen(int argc, char **argv, void *ctx);
int qs_pcap_check(int argc, char **argv, void *ctx);
int qs_pcap_split(int argc, char **argv, void *ctx);
int qs_pcap_decisions(int argc, char **argv, void *ctx);

#endif
