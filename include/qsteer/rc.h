/*
 * rc.h - the base of qsteer's restricted C.
 *
 * Every header that must compile unchanged for the host, for BPF (clang -target bpf)
 * and for CUDA device code includes this one and nothing else: no libc, no floats,
 * integer types from the compiler's own predefined macros, and one function
 * qualifier that means "inline everywhere" on all three targets.
 *
 * Rules for restricted-C headers (checked by test/rc/ with clang -target bpf):
 *   - integers only, no floating point;
 *   - every loop bounded by a compile-time constant;
 *   - no division or modulo by a variable (BPF has it, but not every JIT does it
 *     cheaply, and the DPDK fast path should not either);
 *   - no libc, no globals, no recursion.
 */
#ifndef QSTEER_RC_H
#define QSTEER_RC_H

typedef __UINT8_TYPE__ qs_u8;
typedef __INT8_TYPE__ qs_s8;
typedef __UINT16_TYPE__ qs_u16;
typedef __INT16_TYPE__ qs_s16;
typedef __UINT32_TYPE__ qs_u32;
typedef __INT32_TYPE__ qs_s32;
typedef __UINT64_TYPE__ qs_u64;
typedef __INT64_TYPE__ qs_s64;

#if defined(__CUDACC__)
#define QS_RC_FN static inline __host__ __device__
#elif defined(__bpf__)
#define QS_RC_FN static inline __attribute__((always_inline))
#else
#define QS_RC_FN static inline
#endif

/* Loop unrolling hints differ per compiler; bounded loops need none to be correct. */
#if defined(__clang__)
#define QS_RC_UNROLL _Pragma("clang loop unroll(full)")
#else
#define QS_RC_UNROLL
#endif

#define QS_RC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define QS_RC_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif /* QSTEER_RC_H */
