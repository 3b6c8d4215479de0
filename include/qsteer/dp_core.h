/*
 * dp_core.h - the DPDK-independent core of the qsteer dataplane (docs/dataplane.md).
 *
 * Everything qsteer-dp decides is computed here on plain byte buffers: packet
 * parsing (Ethernet, 802.1Q, IPv4, IPv6, UDP, then QRP through wire.h), the backend
 * table fed by reports, the request-id table that makes continuations follow their
 * request, the per-burst decision (features for every request x candidate backend,
 * then one qs_policy_choose call), and the header rewrite with checksums. The DPDK
 * shell (dp/main.c) only moves mbufs in and out; qsteer-pcap check runs this same
 * state machine with the scalar reference kernel, and the libFuzzer target runs the
 * parser. So a decision is a deterministic function of (packet sequence and their
 * timestamps, burst boundaries, configuration, policy set).
 *
 * Burst size 1 (per-packet decisions; what an XDP program does): qsteer-dp
 * --burst 1 and qsteer-pcap check --burst 1 call qs_dp_process once per packet, so
 * with clock = packet the verdict and the output bytes of packet k are a
 * deterministic function of packets 0..k, their order, and their clocks only:
 *
 *	now_k = max(now_{k-1}, t_k)   (now_{-1} = 0; t_k in ns)
 *	t_k   = pcap ts.tv_sec * 1000000000 + ts.tv_usec * 1000
 *
 * (net_pcap stamps microseconds; qsteer-dp multiplies by 1000.) With one packet per
 * burst, "the burst's clock" is the packet's own clock, so report ageing
 * (report_max_age_ns), request-id ageing (request_ttl_ns) and prefix ageing use
 * now_k; a report applies before any later packet is decided; the per-worker
 * sent_reqs / sent_tokens features count the requests sent since that backend's
 * last report, including every earlier packet. An implementation that decides per
 * packet (qsteer-xdp) and takes now_k from a test-clock value set to t_k before
 * packet k (kept monotonic as above) must produce the same frames packet by packet
 * as both qsteer-dp --burst 1 and qsteer-pcap check --burst 1 on the same pcap,
 * configuration and policy (check --burst 1 --out XDP_OUT.pcap is that comparison).
 * With the default burst of 32 the decisions of a burst are taken together (one
 * clock, one backend-table snapshot, sent counts updated at commit), so they differ
 * from burst 1 in general; compare like with like.
 *
 * Threading: one struct qs_dp_shared per process (configuration, the backend table
 * written by whichever worker receives a report, the operator's drain mask); one
 * struct qs_dp_worker per worker lcore, touched only by that lcore. Nothing here
 * allocates after qs_dp_worker_init; nothing takes a lock.
 */
#ifndef QSTEER_DP_CORE_H
#define QSTEER_DP_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baselines.h"
#include "drop.h"
#include "features.h"
#include "pkt_parse.h"
#include "policy.h"
#include "prefix.h"
#include "quality.h"
#include "report_auth.h"
#include "report_src.h"
#include "reqtab.h"
#include "shadow.h"
#include "wire.h"

#define QS_DP_MAX_BACKENDS 64 /* one u64 eligibility mask */
/* Feature template sets a burst may need (dp/core.c prepare_view): one per set of
 * backends a request may choose, address family x cascade admissibility, at most 2 x
 * 16 (the distinct quality masks of 4 SLO classes x 4 difficulties): never evicted. */
#define QS_DP_TMPL_SETS 32
/* Reports missed before a backend is masked, by default (DESIGN.md 7: a dead
 * backend stops receiving requests within two report intervals). */
#define QS_DP_REPORT_STALE_INTERVALS 2
#define QS_DP_BURST		     32		    /* the largest burst (default); --burst 1..32 */
#define QS_DP_REQ_SETS		     QS_REQTAB_SETS /* request-id table (reqtab.h), per worker */
#define QS_DP_REQ_WAYS		     QS_REQTAB_WAYS
#define QS_DP_NAME_LEN		     32

/* What happens to a packet once its burst is processed. */
enum qs_dp_verdict {
	QS_DP_V_DROP = 0,
	QS_DP_V_TX,	  /* rewritten towards a backend */
	QS_DP_V_PASS,	  /* non-QRP, non_qrp = pass: sent back out unchanged */
	QS_DP_V_CONSUMED, /* a backend report: absorbed by the backend table */
};

enum qs_dp_clock {
	QS_DP_CLOCK_TSC = 0, /* live: the worker's clock */
	QS_DP_CLOCK_PACKET,  /* replay: the packets' receive timestamps */
};

struct qs_dp_backend_cfg {
	uint16_t id; /* the id its agent puts in reports */
	uint8_t mac[6];
	bool has_ip4, has_ip6;
	uint8_t ip4[4];
	uint8_t ip6[16];
	uint16_t port;
	uint8_t capacity_class; /* 0..7: the feature */
	uint32_t capacity;	/* relative weight for the baselines, > 0 */
	char name[QS_DP_NAME_LEN];
	/* where its reports must come from (report_src.h): report_from, else ip/ip6 */
	struct qs_report_src report_src;
	/* report_key: with one, its reports must carry a valid tag and a rising
	 * sequence (report_auth.h) */
	struct qs_report_key report_key;
	/* cascade (docs/dataplane.md, "Model variants"): its accuracy per difficulty
	 * class (quality = ...; all 1 without), and the variant's name for displays */
	bool has_quality;
	double quality[QS_DIFFICULTIES];
	char variant[QS_DP_NAME_LEN];
};

/* Tenants counted on their own (config `tenants`; the rest as one "other"). */
#define QS_DP_TENANTS 16

struct qs_dp_config {
	struct qs_pkt_service svc; /* the service's addresses and ports (pkt_parse.h) */
	uint32_t n_tenants;	   /* 0: no per-tenant counters */
	uint16_t tenant[QS_DP_TENANTS];
	bool pass_non_qrp;
	/* a backend silent this long is masked: report_interval_ms x
	 * report_stale_intervals (default 5 ms x 2), or report_max_age_ms */
	uint64_t report_max_age_ns;
	uint64_t request_ttl_ns; /* request-id entries older than this are dead */
	uint64_t prefix_max_age_ns;
	enum qs_baseline_kind fallback;
	uint64_t fallback_seed;
	enum qs_dp_clock clock;
	uint32_t n_backends;
	struct qs_dp_backend_cfg be[QS_DP_MAX_BACKENDS];
	/* Cascade: the prompt lengths from which a request that carries no difficulty
	 * counts as class 1, 2, 3 (0: unused; router_view.h), each SLO class's quality
	 * floor, and from them per SLO class and difficulty the backends below the
	 * floor, never candidates (quality.h; zeros: no cascade, nothing masked) */
	uint32_t difficulty_prompt_tokens[3];
	double quality_floor[QS_QUALITY_SLO];
	uint64_t quality_masked[QS_QUALITY_SLO][QS_DIFFICULTIES];
	/* policy_pubkey (control plane only): with a key, every policy file loaded,
	 * at start or live, must be signed with one of them (docs/dataplane.md) */
	struct qs_q8_keyset policy_keys;
};

/* The report source a backend without report_from gets: its own ip / ip6, any port
 * (agents report from an ephemeral port). For configurations built in code. */
void qs_dp_report_src_default(struct qs_dp_backend_cfg *b);

/* quality_masked from the backends' quality and the floors (quality.h); the loader
 * calls it, a configuration built in code calls it after setting them. */
void qs_dp_config_quality(struct qs_dp_config *c);

/* Defaults, then the INI file (docs/dataplane.md). msg says what and which line. */
void qs_dp_config_defaults(struct qs_dp_config *c);
int qs_dp_config_load(const char *path, struct qs_dp_config *c, char *msg, size_t msglen);

/* ---- parsing ------------------------------------------------------------------ */

enum qs_dp_class {
	QS_DP_C_DROP = 0,
	QS_DP_C_NON_QRP,
	QS_DP_C_QRP,
};

struct qs_dp_pkt {
	uint8_t cls;  /* enum qs_dp_class */
	uint8_t drop; /* enum qs_dp_drop when cls == QS_DP_C_DROP */
	uint8_t ipv6;
	uint8_t pad;
	uint16_t l3_off;
	uint16_t l4_off;
	uint16_t pay_off;
	uint16_t pay_len;
	struct qs_qrp_hdr h;
	struct qs_qrp_report rep; /* type 3 only */
};

/* Classify and parse len bytes at buf. Reads nothing beyond buf + len. */
void qs_dp_parse(const struct qs_dp_config *c, const uint8_t *buf, uint32_t len,
		 struct qs_dp_pkt *out);

/* ---- checksums and rewrite ---------------------------------------------------- */

/* Ones' complement sum helpers (host order 16-bit words of big-endian data). */
uint32_t qs_dp_csum_add(uint32_t sum, const uint8_t *p, uint32_t len);
uint16_t qs_dp_csum_fold(uint32_t sum);
/* Full UDP checksum of the packet's UDP datagram with its pseudo-header (as it
 * should be on the wire, 0 mapped to 0xffff). The reference for tests and check. */
uint16_t qs_dp_udp_csum(const uint8_t *buf, const struct qs_dp_pkt *p);
uint16_t qs_dp_ip4_csum(const uint8_t *ip, uint32_t ihl_bytes);

/*
 * Point the parsed packet at backend b: destination MAC (source MAC becomes the old
 * destination, the service's), destination IP and UDP port, with the IPv4 header
 * and UDP checksums updated incrementally (RFC 1624). QS_DP_D_FAMILY if b has no
 * address of the packet's family, else QS_DP_D_NONE.
 */
int qs_dp_rewrite(uint8_t *buf, const struct qs_dp_pkt *p, const struct qs_dp_backend_cfg *b);

/* ---- shared backend table ------------------------------------------------------ */

struct qs_dp_backend_state {
	uint32_t seq;	  /* seqcount: odd while a writer updates the entry */
	uint32_t valid;	  /* a report has been accepted */
	uint64_t last_ns; /* when the last accepted report arrived (dataplane clock) */
	uint64_t report_seq;
	uint64_t generation; /* bumps with every accepted report */
	struct qs_qrp_report rep;
} __attribute__((aligned(64)));

struct qs_dp_shared {
	struct qs_dp_config cfg;
	struct qs_dp_backend_state be[QS_DP_MAX_BACKENDS];
	uint64_t admin_drain; /* operator's drain mask, written by the control thread */
};

void qs_dp_shared_init(struct qs_dp_shared *s, const struct qs_dp_config *c);
/* Backend index of a report's backend id, or -1. */
int qs_dp_backend_index(const struct qs_dp_config *c, uint16_t id);

/* ---- the policy set a burst runs ----------------------------------------------- */

enum qs_dp_mode {
	QS_DP_MODE_ACTIVE = 0, /* the active policy decides */
	QS_DP_MODE_SHADOW,     /* score both, count disagreements, steer by the active one */
	QS_DP_MODE_CANARY,     /* canary_pct% of request ids go to the canary */
};

/*
 * Immutable once published. active NULL means the builtin baseline decides.
 * Workers read the pointer once per burst (dp: under RCU), so a burst never mixes
 * two sets.
 */
struct qs_dp_policy_set {
	const struct qs_policy *active;
	const struct qs_policy *second; /* shadow or canary policy */
	enum qs_dp_mode mode;
	uint32_t canary_pct;
	enum qs_baseline_kind builtin;
	uint64_t version;
};

/* Is request id in the canary slice of pct percent? qs_canary_pick (shadow.h), the
 * one definition the XDP program runs too. */
bool qs_dp_canary_pick(uint64_t request_id, uint32_t pct);

/* ---- per-worker state ---------------------------------------------------------- */

struct qs_dp_reqtab {
	struct qs_reqtab_set s[QS_REQTAB_SETS];
};

/* Counters one worker keeps; the control thread sums them over workers. */
struct qs_dp_counters {
	uint64_t rx, tx, pass, consumed;
	uint64_t requests, continuations, cancels, reports;
	uint64_t reports_ignored; /* older than the last accepted sequence */
	uint64_t decided_policy, decided_builtin, fallback;
	uint64_t shadow_scored, shadow_disagree, canary;
	uint64_t reqtab_insert, reqtab_evict, reqtab_expired;
	uint64_t bursts;
	uint64_t drop[QS_DP_D__COUNT];
	uint64_t to_backend[QS_DP_MAX_BACKENDS];
	/* per configured tenant ([QS_DP_TENANTS]: every other tenant): requests sent to
	 * a backend, and cancels and continuations that reached one */
	uint64_t tenant_requests[QS_DP_TENANTS + 1];
	uint64_t tenant_cancels[QS_DP_TENANTS + 1];
};

/* One burst's working set: parsed packets, features, scores, choices. */
struct qs_dp_burst {
	uint32_t n;
	uint64_t now_ns;
	struct qs_dp_pkt pkt[QS_DP_BURST];
	uint8_t verdict[QS_DP_BURST];
	uint16_t backend[QS_DP_BURST]; /* chosen backend index per packet, or 0xffff */
	uint16_t rset[QS_DP_BURST];    /* request-id table set of a QRP non-report packet */
	/* requests needing a decision */
	uint32_t n_req;
	uint8_t req_pkt[QS_DP_BURST];
	uint64_t req_elig[QS_DP_BURST]; /* candidate-index space */
	uint64_t req_adm[QS_DP_BURST];	/* backends its quality floor admits */
	/* request-free feature rows per set of backends a request may choose (tkey),
	 * and which candidates that set holds (telig); built as the burst needs them */
	uint64_t tkey[QS_DP_TMPL_SETS], telig[QS_DP_TMPL_SETS];
	uint8_t tmpl[QS_DP_TMPL_SETS][QS_DP_MAX_BACKENDS][QS_FR_COUNT];
	uint32_t n_cand;
	uint8_t cand_be[QS_DP_MAX_BACKENDS]; /* candidate index -> backend index */
	uint64_t cand_mask;		     /* backends eligible for the policy */
	uint64_t fallback_mask;		     /* backends the fallback may use */
	uint64_t heard_mask;		     /* of those, heard from lately (router_view.h) */
	struct qs_feat_backend fb[QS_DP_MAX_BACKENDS]; /* per backend index */
	uint8_t x[QS_DP_BURST * QS_DP_MAX_BACKENDS * QS_FR_COUNT];
	int32_t scores[QS_DP_BURST * QS_DP_MAX_BACKENDS];
	uint16_t choice[QS_DP_BURST];  /* candidate index per request */
	uint16_t choice2[QS_DP_BURST]; /* second policy's choice */
	uint8_t how[QS_DP_BURST];      /* enum qs_dp_how per request */
	uint8_t disagree[QS_DP_BURST]; /* shadow: 0 not scored, 1 agreed, 2 disagreed */
};

/* Who decided a request (counted at commit). */
enum qs_dp_how {
	QS_DP_HOW_POLICY = 0,
	QS_DP_HOW_CANARY,
	QS_DP_HOW_BUILTIN,
	QS_DP_HOW_FALLBACK,
	QS_DP_HOW_NONE,
	QS_DP_HOW_FLOOR, /* none: every backend its quality floor admits drains */
};

struct qs_dp_worker {
	struct qs_dp_counters ctr;
	uint64_t now_ns; /* monotonic: max of the bursts' clocks so far */
	uint64_t seen_gen[QS_DP_MAX_BACKENDS];
	uint32_t sent_reqs[QS_DP_MAX_BACKENDS]; /* since the report of seen_gen */
	uint32_t sent_tokens[QS_DP_MAX_BACKENDS];
	struct qs_baseline fallback;
	struct qs_baseline builtin;
	enum qs_baseline_kind builtin_kind;
	enum qs_kernel kernel;
	struct qs_dp_burst b;
	struct qs_prefix_table prefix;
	struct qs_dp_reqtab reqtab;
	/* shadow mode: per backend, where the scored requests went and would have gone
	 * (shadow.h), counted at commit beside ctr.shadow_scored */
	struct qs_shadow_row shadow[QS_DP_MAX_BACKENDS];
} __attribute__((aligned(64)));

void qs_dp_worker_init(struct qs_dp_worker *w, const struct qs_dp_shared *s, enum qs_kernel k,
		       uint32_t worker_index);

/*
 * Process one burst in place: pkts[i] (lens[i] bytes) are parsed, reports applied
 * to s, requests decided with set, continuations looked up, and packets to forward
 * rewritten. now_ns is the burst's clock (QS_DP_CLOCK_PACKET: the largest receive
 * timestamp in the burst; the worker keeps it monotonic). On return w->b.verdict[i]
 * says what to do with packet i and w->b.pkt[i].drop why it was dropped.
 *
 * The three steps are exposed for qsteer-pcap check, which decides one burst with
 * two policy sets before committing the one the dataplane used.
 */
void qs_dp_process(struct qs_dp_worker *w, struct qs_dp_shared *s,
		   const struct qs_dp_policy_set *set, uint8_t *const *pkts, const uint32_t *lens,
		   uint32_t n, uint64_t now_ns);
void qs_dp_prepare(struct qs_dp_worker *w, struct qs_dp_shared *s, uint8_t *const *pkts,
		   const uint32_t *lens, uint32_t n, uint64_t now_ns);
/* prepare = prepare_rx (parse, apply reports, set the burst clock) then
 * prepare_view (backend snapshot, masks with the given operator drain mask,
 * features; nothing at all for a burst without a request, which reads none of it).
 * check calls them apart to try a burst with and without a drain. */
void qs_dp_prepare_rx(struct qs_dp_worker *w, struct qs_dp_shared *s, uint8_t *const *pkts,
		      const uint32_t *lens, uint32_t n, uint64_t now_ns);
void qs_dp_prepare_view(struct qs_dp_worker *w, const struct qs_dp_shared *s, uint64_t admin_drain);
/* Decide the prepared burst's requests; writes w->b.choice (and choice2). Pure
 * except for a builtin baseline's state. out[r]: backend index or 0xffff. */
void qs_dp_decide(struct qs_dp_worker *w, const struct qs_dp_config *c,
		  const struct qs_dp_policy_set *set, uint16_t *out);
void qs_dp_commit(struct qs_dp_worker *w, const struct qs_dp_shared *s, uint8_t *const *pkts,
		  const uint16_t *req_backend);

/* Names. */
const char *qs_dp_drop_name(int d);
const char *qs_dp_mode_name(enum qs_dp_mode m);

/* Sum a worker's counters into acc (the control thread's view). */
void qs_dp_counters_add(struct qs_dp_counters *acc, const struct qs_dp_counters *c);

/* Is backend index i eligible for the policy at now (state snapshot rules)? For
 * status displays; the burst computes its own masks. */
bool qs_dp_backend_fresh(const struct qs_dp_shared *s, uint32_t i, uint64_t now_ns);

/* ---- for tools and tests (not the fast path) ----------------------------------- */

/* One direction of a UDP flow, as qsteer-pcap gen and the tests build packets. */
struct qs_dp_flow {
	uint8_t src_mac[6], dst_mac[6];
	uint16_t vlan; /* 0: untagged; else one 802.1Q tag with this VID */
	bool ipv6;
	uint8_t src_ip[16], dst_ip[16]; /* IPv4 uses the first 4 bytes */
	uint16_t sport, dport;
};

/*
 * Build an Ethernet/[802.1Q]/IP/UDP frame carrying a QRP header (h; hdr_len 32),
 * the report body rep when not NULL, then body_len filler bytes derived from the
 * request id. Checksums are computed with the reference functions above. Returns
 * the frame length, 0 if it does not fit in cap.
 */
uint32_t qs_dp_build_qrp(uint8_t *buf, uint32_t cap, const struct qs_dp_flow *f,
			 const struct qs_qrp_hdr *h, const struct qs_qrp_report *rep,
			 uint32_t body_len);
/* A report frame as an agent sends it: signed (QS_QRP_F_AUTH set, tag appended,
 * report_auth.h) when k holds a key, else as qs_dp_build_qrp. */
uint32_t qs_dp_build_report(uint8_t *buf, uint32_t cap, const struct qs_dp_flow *f,
			    const struct qs_qrp_hdr *h, const struct qs_qrp_report *rep,
			    const struct qs_report_key *k);
/* Same frame around an arbitrary UDP payload. */
uint32_t qs_dp_build_udp(uint8_t *buf, uint32_t cap, const struct qs_dp_flow *f,
			 const uint8_t *payload, uint32_t len);

/*
 * The benchmark workload, one definition for `qsteer-dp --bench` and the DPDK-free
 * callgrind harness (test/dp/bench_core.c): every backend reports once at `now`, then
 * n request frames (varied lengths, priorities, prefixes, source ports) are built
 * into frames[i] (QS_DP_BENCH_FRAME bytes each). For continuations each request is
 * first opened through w and the frame is rewritten as its continuation. Backends
 * are reconfigured to accept any destination and keep the service port, so
 * rewritten frames can be fed again.
 */
#define QS_DP_BENCH_FRAME 256
void qs_dp_bench_workload(struct qs_dp_worker *w, struct qs_dp_shared *s,
			  const struct qs_dp_policy_set *set, uint8_t (*frames)[QS_DP_BENCH_FRAME],
			  uint32_t *lens, uint32_t n, bool continuations, uint64_t now);

/* Counters as a JSON object text (caller frees), with names from the config. */
char *qs_dp_counters_json(const struct qs_dp_counters *c, const struct qs_dp_config *cfg);

/*
 * The shadow report (docs/operations.md "Shadow and canary"): what the control
 * thread sums over workers (qsteer-dp) or CPUs (qsteer-xdp). scored / disagree are
 * the counters of the same name; row[a] the shadow.h table.
 */
struct qs_dp_shadow {
	uint64_t scored, disagree;
	struct qs_shadow_row row[QS_DP_MAX_BACKENDS];
};

/* acc += one worker's shadow counters. */
void qs_dp_shadow_add(struct qs_dp_shadow *acc, const struct qs_dp_worker *w);
/* acc += src (rows and totals), or acc -= src with sub: the since-load window. */
void qs_dp_shadow_sum(struct qs_dp_shadow *acc, const struct qs_dp_shadow *src, bool sub);
/*
 * The report as a JSON object text (caller frees; NULL when out of memory):
 * scored, agreed, disagreed, agreement_ppm (null before the first scored request),
 * per_backend [{backend, active, shadow}] and disagreements [{active, shadow, count}]
 * sorted by count (ties: active, then shadow backend index), at most top of them
 * (0: all). Names from the config.
 */
char *qs_dp_shadow_json(const struct qs_dp_shadow *sh, const struct qs_dp_config *cfg,
			uint32_t top);

#endif /* QSTEER_DP_CORE_H */
