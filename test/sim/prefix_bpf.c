/*
 * prefix_bpf.c - compiles include/qsteer/prefix.h for BPF (clang -target bpf) to
 * prove the prefix-affinity table is restricted C the XDP program can share; the
 * host build runs the same code as a smoke test.
 */
#include "qsteer/prefix.h"

#ifdef __bpf__
#define RC_EXPORT __attribute__((section("tc"), used))
#else
#define RC_EXPORT
#endif

RC_EXPORT int prefix_all(struct qs_prefix_table *t, qs_u32 hash, qs_u64 now);

RC_EXPORT int
prefix_all(struct qs_prefix_table *t, qs_u32 hash, qs_u64 now)
{
	qs_prefix_update(t, hash, 3, now);
	return (int)qs_prefix_lookup(t, hash, now + 10, 1000);
}

#ifndef __bpf__
static struct qs_prefix_table table;

int main(void);

int
main(void)
{
	qs_prefix_init(&table);
	return prefix_all(&table, 0x1234u, 5) == 3 ? 0 : 1;
}
#endif
