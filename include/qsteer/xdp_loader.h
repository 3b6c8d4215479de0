/*
 * xdp_loader.h - libqsteer-xdp: load the XDP program (ebpf/qsteer.bpf.c) through its
 * bpftool-generated skeleton, configure it from a qsteer-dp configuration, attach
 * and detach it, pin its maps, publish policies into its two slots with a grace
 * period, read its per-CPU counters, and run single packets through
 * BPF_PROG_TEST_RUN (tests, benchmarks). docs/xdp.md describes the design.
 *
 * Functions return a qs_status and fill the caller's message buffer; the library
 * never prints, except that libbpf's own messages (the verifier log on a refused
 * load) go to the print callback the caller chose (qs_xdp_opts.log).
 */
#ifndef QSTEER_XDP_LOADER_H
#define QSTEER_XDP_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dp_core.h"
#include "policy.h"
#include "xdp.h"

/* XDP actions (enum xdp_action of linux/bpf.h, which clashes with pcap's bpf.h). */
enum qs_xdp_action {
	QS_XDP_ABORTED = 0,
	QS_XDP_DROP,
	QS_XDP_PASS,
	QS_XDP_TX,
	QS_XDP_REDIRECT,
};
const char *qs_xdp_action_name(uint32_t action);

enum qs_xdp_attach_mode {
	QS_XDP_MODE_AUTO = 0, /* native if the driver has it, else generic */
	QS_XDP_MODE_NATIVE,
	QS_XDP_MODE_GENERIC, /* SKB mode: any interface (veth, lo) */
};

struct qs_xdp_opts {
	bool test_clock;	 /* the clock is qs_xdp_run's now_ns (replay tests) */
	uint32_t egress_ifindex; /* 0: XDP_TX; else redirect transmitted packets there */
	FILE *log;		 /* libbpf messages (verifier log) go here; NULL: none */
	bool log_debug;		 /* also libbpf's debug level */
};

struct qs_xdp;

/*
 * Check that a configuration fits the program (backend count, baseline kinds) and
 * open + configure + load the program (the verifier runs here). On failure msg
 * names the step that failed (open, load: with libbpf's reason; the verifier log
 * went to opts->log).
 */
int qs_xdp_open(const struct qs_dp_config *cfg, const struct qs_xdp_opts *opts, struct qs_xdp **out,
		char *msg, size_t msglen);
void qs_xdp_close(struct qs_xdp *x);

int qs_xdp_attach(struct qs_xdp *x, int ifindex, enum qs_xdp_attach_mode mode, char *msg,
		  size_t msglen);
int qs_xdp_detach(struct qs_xdp *x, char *msg, size_t msglen);
/* Pin every map under dir (created if needed; removed again by qs_xdp_close). */
int qs_xdp_pin(struct qs_xdp *x, const char *dir, char *msg, size_t msglen);

/*
 * Convert a loaded, validated policy into the program's packed layout. Refuses
 * (QS_E_KIND / QS_E_SCHEMA / QS_E_SHAPE, msg says which limit) anything but a
 * router-v1 scorer 16 -> H1 [-> H2] -> 1 with H1, H2 <= QS_XDP_MAX_HIDDEN.
 */
int qs_xdp_policy_pack(const struct qs_policy *p, struct qs_xdp_policy *out, char *msg,
		       size_t msglen);

/*
 * Publish: write the new policy (p, or the builtin baseline when p is NULL) into the
 * inactive slot, flip the active-slot word, then wait for a grace period (every
 * program run that could still read the old slot has finished) before returning.
 * label names it in policy_show (a path or "builtin:NAME"). The previous policy
 * stays in the other slot for qs_xdp_rollback.
 */
int qs_xdp_publish(struct qs_xdp *x, const struct qs_policy *p, enum qs_baseline_kind builtin,
		   const char *label, char *msg, size_t msglen);
/* Validate a .q8 file fully (qs_policy_load_file: router v1 scorer; signed with one of
 * the configuration's policy_keys when it has any), pack it, publish. */
int qs_xdp_load_policy_file(struct qs_xdp *x, const char *path, char *msg, size_t msglen);
/* Publish "builtin:NAME" or a .q8 path. */
int qs_xdp_load_policy_spec(struct qs_xdp *x, const char *spec, char *msg, size_t msglen);
/*
 * Shadow and canary (qsteer-dp's modes, docs/xdp.md "Shadow and canary"): publish p
 * as the second policy beside the active one, mode QS_XDP_SET_SHADOW (both score,
 * the active steers, counted per CPU) or QS_XDP_SET_CANARY (pct% of request ids by
 * qs_canary_pick go to p). Refused (QS_E_ARG) unless the active policy is a .q8.
 * A running second policy is replaced; loading a new active policy ends it.
 */
int qs_xdp_publish_second(struct qs_xdp *x, const struct qs_policy *p, uint32_t mode, uint32_t pct,
			  const char *label, char *msg, size_t msglen);
/* Validate a .q8 file as qs_xdp_load_policy_file does (signed with one of the
 * configuration's policy_keys when it has any), then publish it as the second. */
int qs_xdp_load_second_file(struct qs_xdp *x, const char *path, uint32_t mode, uint32_t pct,
			    char *msg, size_t msglen);
/* Drop a running shadow or canary; without one, flip back to the previous active
 * policy (QS_E_ARG if there is none). */
int qs_xdp_rollback(struct qs_xdp *x, char *msg, size_t msglen);

struct qs_xdp_slot_info {
	bool used;
	bool builtin;
	char label[256];
	char name[QS_Q8_NAME_LEN];
	uint64_t content_id;
	uint64_t version;
	uint32_t shape[4]; /* 16, h1, h2 (0), 1 */
};
/* Slot 0: the active one; slot 1: the previous one. swaps: publications so far. */
void qs_xdp_policy_info(const struct qs_xdp *x, struct qs_xdp_slot_info *active,
			struct qs_xdp_slot_info *previous, uint64_t *swaps);

/* The second policy (second->used false when none runs), the mode (QS_XDP_SET_*)
 * and the canary percentage. */
void qs_xdp_policy_second(const struct qs_xdp *x, struct qs_xdp_slot_info *second, uint32_t *mode,
			  uint32_t *pct);
/* The shadow counters summed over CPUs since load (total) and, while a shadow runs
 * (true returned), since it was published (window; may be NULL). */
bool qs_xdp_shadow(struct qs_xdp *x, struct qs_dp_shadow *total, struct qs_dp_shadow *window);

/* Operator drain mask (bit = backend index). */
void qs_xdp_set_drain(struct qs_xdp *x, uint64_t mask);
uint64_t qs_xdp_drain(const struct qs_xdp *x);

/* Sum of the per-CPU counters. */
int qs_xdp_counters(const struct qs_xdp *x, struct qs_dp_counters *sum);
/* Read backend index i's shared state (for status displays). */
int qs_xdp_backend_state(const struct qs_xdp *x, uint32_t i, struct qs_xdp_backend_state *st);

/*
 * One packet through BPF_PROG_TEST_RUN on the calling CPU: with opts.test_clock the
 * program's clock is now_ns. *verdict gets the XDP action, out (cap bytes) the
 * frame as the program left it, *out_len its length.
 */
int qs_xdp_run(struct qs_xdp *x, const uint8_t *pkt, uint32_t len, uint64_t now_ns,
	       uint32_t *verdict, uint8_t *out, uint32_t cap, uint32_t *out_len, char *msg,
	       size_t msglen);
/* Benchmark: repeat runs of one packet through the steering program (tx_only: the
 * trivial XDP_TX reference program); mean ns per run as the kernel measures it. */
int qs_xdp_bench(struct qs_xdp *x, bool tx_only, const uint8_t *pkt, uint32_t len, uint32_t repeat,
		 uint32_t *ns_per_run, uint32_t *verdict, char *msg, size_t msglen);

/* The loaded program's size and what the verifier processed (bpf_prog_info). */
int qs_xdp_prog_stats(const struct qs_xdp *x, uint32_t *xlated_insns, uint32_t *jited_bytes,
		      uint32_t *verified_insns);

const struct qs_dp_config *qs_xdp_config(const struct qs_xdp *x);

#endif /* QSTEER_XDP_LOADER_H */
