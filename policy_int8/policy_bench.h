/*
 * policy_bench.h - the `qsteer-policy bench` subcommand: times every kernel level on
 * the router scorer shape and checks that they agree with the scalar reference.
 */
#ifndef QSTEER_POLICY_BENCH_H
#define QSTEER_POLICY_BENCH_H

/* argv[0] is "bench". Returns the process exit status. */
int qs_policy_bench_cmd(int argc, char **argv);

#endif
