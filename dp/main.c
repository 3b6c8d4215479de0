/*
 * main.c - qsteer-dp: the DPDK shell around the dataplane core (dp/core.c).
 *
 * Split as DPDK applications are (STYLE.md): init (EAL, port, queues, mempool),
 * the per-lcore run-to-completion loop (rx burst of 32, process the burst with
 * the core, tx, free what did not go), and the control thread on the main lcore
 * (control socket, telemetry, counter sums, policy publication). The only thing a
 * worker reads that the control thread writes is the policy-set pointer, published
 * with RCU (rte_rcu_qsbr): a worker reports a quiescent state at the top of each
 * loop iteration and reads the pointer once per burst, so every burst runs one
 * set, and an old set (and its policies) is freed only after every worker has
 * passed a quiescent state since it was replaced. The operator's drain mask is a
 * single atomic word. Nothing on the fast path allocates or locks.
 *
 * usage: qsteer-dp [EAL args] -- --config FILE [--policy FILE.q8|builtin:NAME]
 *        [--control PATH] [--prometheus IPV4:PORT] [--kernel NAME] [--port N]
 *        [--burst N] [--stats-out FILE] [--idle-exit-ms MS] [--pace-us US] [--rx-hold]
 *        [--pubkey FILE]... [--bench SECONDS --bench-kind KIND]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>

#include "dp_app.h"

RTE_LOG_REGISTER_DEFAULT(qs_dp_logtype, INFO);
#define RTE_LOGTYPE_QSDP qs_dp_logtype
#define LOG(level, ...) RTE_LOG(level, QSDP, __VA_ARGS__)

#define NB_MBUF 8192
#define RX_DESC 1024
#define TX_DESC 1024
#define MAX_SLOTS 8

struct worker_ctx {
	struct qs_dp_worker *w;
	uint16_t queue;
	uint32_t thread_id; /* RCU reader id */
	unsigned lcore;
	uint64_t idle_polls;
} __rte_cache_aligned;

static struct {
	struct qs_dp_shared *shared;
	struct worker_ctx wk[RTE_MAX_LCORE];
	uint32_t n_workers;
	uint16_t port;
	struct rte_mempool *pool;
	struct rte_rcu_qsbr *qsv;
	struct qs_dp_policy_set *set; /* published; read by workers under RCU */
	struct qs_dpa_slot slots[MAX_SLOTS];
	int active, second, previous; /* slot indexes, -1 none */
	uint64_t version, swaps;
	enum qs_kernel kernel;
	uint64_t start_tsc;
	int ts_off;
	uint64_t ts_flag;
	uint32_t pace_us;
	uint16_t burst; /* rx burst size, 1..QS_DP_BURST (--burst) */
	/*
	 * The rx gate (docs/control.md "rx"): while gated, a worker polls rx only
	 * when it can take one burst of credit, so a test (or an operator holding
	 * traffic) decides exactly how many bursts run between two control actions,
	 * whatever the machine's speed. Ungated, the loop pays one load per poll.
	 * A hold lets a burst already taken finish (at most one per worker).
	 */
	int rx_gated;
	int64_t rx_credit;
	volatile int quit;
	/* the shadow counters when the running shadow policy was published: the
	 * operator's report is what they grew by since (control thread only) */
	struct qs_dp_shadow shadow_base;
} app = {.active = -1, .second = -1, .previous = -1, .ts_off = -1, .burst = QS_DP_BURST};

static uint64_t
tsc_ns(void)
{
	return (uint64_t)((unsigned __int128)rte_rdtsc() * 1000000000u / rte_get_tsc_hz());
}

/* ---- the worker loop -------------------------------------------------------------- */

static int
worker_main(void *arg)
{
	struct worker_ctx *ctx = arg;
	struct qs_dp_worker *w = ctx->w;
	struct qs_dp_shared *s = app.shared;
	const bool pkt_clock = s->cfg.clock == QS_DP_CLOCK_PACKET;
	struct rte_mbuf *mb[QS_DP_BURST], *tx[QS_DP_BURST], *fr[QS_DP_BURST];
	uint8_t *bufs[QS_DP_BURST];
	uint32_t lens[QS_DP_BURST];

	rte_rcu_qsbr_thread_register(app.qsv, ctx->thread_id);
	rte_rcu_qsbr_thread_online(app.qsv, ctx->thread_id);
	while (!app.quit) {
		const struct qs_dp_policy_set *set;
		uint16_t n, i, ntx = 0, nfree = 0, sent;
		uint64_t now = 0;
		int gated;

		/* nothing from the previous burst is held past this point */
		rte_rcu_qsbr_quiescent(app.qsv, ctx->thread_id);
		gated = __atomic_load_n(&app.rx_gated, __ATOMIC_ACQUIRE);
		if (gated && __atomic_sub_fetch(&app.rx_credit, 1, __ATOMIC_ACQ_REL) < 0) {
			__atomic_add_fetch(&app.rx_credit, 1, __ATOMIC_ACQ_REL);
			ctx->idle_polls++;
			rte_pause();
			continue;
		}
		n = rte_eth_rx_burst(app.port, ctx->queue, mb, app.burst);
		if (n == 0) {
			if (gated) /* the credit buys a burst, not a poll */
				__atomic_add_fetch(&app.rx_credit, 1, __ATOMIC_ACQ_REL);
			ctx->idle_polls++;
			continue;
		}
		set = __atomic_load_n(&app.set, __ATOMIC_ACQUIRE);
		for (i = 0; i < n; i++) {
			if (i + 2 < n)
				rte_prefetch0(rte_pktmbuf_mtod(mb[i + 2], void *));
			bufs[i] = rte_pktmbuf_mtod(mb[i], uint8_t *);
			lens[i] = rte_pktmbuf_data_len(mb[i]);
			if (pkt_clock && (mb[i]->ol_flags & app.ts_flag)) {
				uint64_t t = *RTE_MBUF_DYNFIELD(mb[i], app.ts_off, rte_mbuf_timestamp_t *);

				if (t > now)
					now = t;
			}
		}
		if (pkt_clock)
			now *= 1000; /* net_pcap stamps microseconds */
		else
			now = tsc_ns();
		qs_dp_process(w, s, set, bufs, lens, n, now);
		for (i = 0; i < n; i++) {
			if (w->b.verdict[i] == QS_DP_V_TX || w->b.verdict[i] == QS_DP_V_PASS)
				tx[ntx++] = mb[i];
			else
				fr[nfree++] = mb[i]; /* drops and consumed reports */
		}
		if (nfree)
			rte_pktmbuf_free_bulk(fr, nfree);
		sent = 0;
		for (i = 0; i < 8 && sent < ntx; i++)
			sent += rte_eth_tx_burst(app.port, ctx->queue, tx + sent, ntx - sent);
		if (sent < ntx) {
			w->ctr.drop[QS_DP_D_TX] += ntx - sent;
			w->ctr.tx -= ntx - sent;
			rte_pktmbuf_free_bulk(tx + sent, ntx - sent);
		}
		if (app.pace_us)
			rte_delay_us_block(app.pace_us);
	}
	rte_rcu_qsbr_thread_offline(app.qsv, ctx->thread_id);
	rte_rcu_qsbr_thread_unregister(app.qsv, ctx->thread_id);
	return 0;
}

/* ---- what control.c asks --------------------------------------------------------- */

const struct qs_dp_shared *
qs_dpa_shared(void)
{
	return app.shared;
}

void
qs_dpa_counters(struct qs_dp_counters *sum)
{
	uint32_t i;

	memset(sum, 0, sizeof(*sum));
	for (i = 0; i < app.n_workers; i++)
		qs_dp_counters_add(sum, &app.wk[i].w->ctr);
}

bool
qs_dpa_shadow(struct qs_dp_shadow *total, struct qs_dp_shadow *window)
{
	uint32_t i;

	memset(total, 0, sizeof(*total));
	for (i = 0; i < app.n_workers; i++)
		qs_dp_shadow_add(total, app.wk[i].w);
	if (!window || app.set->mode != QS_DP_MODE_SHADOW)
		return false;
	*window = *total;
	qs_dp_shadow_sum(window, &app.shadow_base, true);
	return true;
}

void
qs_dpa_worker_counters(uint32_t i, struct qs_dp_counters *c, unsigned *lcore, uint16_t *queue)
{
	memcpy(c, &app.wk[i].w->ctr, sizeof(*c));
	*lcore = app.wk[i].lcore;
	*queue = app.wk[i].queue;
}

void
qs_dpa_info(struct qs_dpa_info *out)
{
	uint32_t i;

	out->n_workers = app.n_workers;
	out->burst = app.burst;
	out->uptime_ns = (uint64_t)((unsigned __int128)(rte_rdtsc() - app.start_tsc) * 1000000000u /
				    rte_get_tsc_hz());
	out->swaps = app.swaps;
	out->kernel = qs_kernel_name(app.kernel);
	out->now_ns = 0;
	if (app.shared->cfg.clock == QS_DP_CLOCK_TSC) {
		out->now_ns = tsc_ns();
	} else {
		for (i = 0; i < app.n_workers; i++) {
			uint64_t t = __atomic_load_n(&app.wk[i].w->now_ns, __ATOMIC_RELAXED);

			if (t > out->now_ns)
				out->now_ns = t;
		}
	}
}

void
qs_dpa_policy(const struct qs_dpa_slot **active, const struct qs_dpa_slot **second,
	      const struct qs_dpa_slot **previous, enum qs_dp_mode *mode, uint32_t *pct,
	      uint64_t *version)
{
	*active = app.active >= 0 ? &app.slots[app.active] : NULL;
	*second = app.second >= 0 ? &app.slots[app.second] : NULL;
	*previous = app.previous >= 0 ? &app.slots[app.previous] : NULL;
	*mode = app.set->mode;
	*pct = app.set->canary_pct;
	*version = app.set->version;
}

void
qs_dpa_rx_gate(enum qs_dpa_rx_op op, uint64_t bursts, struct qs_dpa_rx *out)
{
	struct qs_dp_counters sum;

	switch (op) {
	case QS_DPA_RX_SHOW: break;
	case QS_DPA_RX_HOLD:
		__atomic_store_n(&app.rx_credit, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&app.rx_gated, 1, __ATOMIC_RELEASE);
		break;
	case QS_DPA_RX_ALLOW:
		__atomic_add_fetch(&app.rx_credit, (int64_t)bursts, __ATOMIC_ACQ_REL);
		__atomic_store_n(&app.rx_gated, 1, __ATOMIC_RELEASE);
		break;
	case QS_DPA_RX_RELEASE:
		__atomic_store_n(&app.rx_gated, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&app.rx_credit, 0, __ATOMIC_RELEASE);
		break;
	}
	out->gated = __atomic_load_n(&app.rx_gated, __ATOMIC_ACQUIRE) != 0;
	out->credit = __atomic_load_n(&app.rx_credit, __ATOMIC_ACQUIRE);
	if (out->credit < 0) /* a worker between its take and its give-back */
		out->credit = 0;
	qs_dpa_counters(&sum);
	out->bursts = sum.bursts;
}

void
qs_dpa_request_quit(void)
{
	app.quit = 1;
}

static int
slot_load(const char *source, char *msg, size_t msglen)
{
	/* with policy keys configured, a file must be signed with one of them: at start
	 * and on every live load (active, shadow, canary), all of which come here */
	struct qs_policy_load_opts lo = {QS_SCHEMA_ROUTER_V1, QS_Q8_KIND_SCORER, NULL,
					 &app.shared->cfg.policy_keys};
	int i, k = -1;

	for (i = 0; i < MAX_SLOTS; i++)
		if (!app.slots[i].used) {
			k = i;
			break;
		}
	if (k < 0) {
		snprintf(msg, msglen, "too many policies held");
		return -QS_E_SIZE;
	}
	memset(&app.slots[k], 0, sizeof(app.slots[k]));
	if (strncmp(source, "builtin:", 8) == 0) {
		if (qs_baseline_parse(source + 8, &app.slots[k].builtin) != 0) {
			snprintf(msg, msglen, "%s: unknown builtin policy", source);
			return -QS_E_ARG;
		}
	} else {
		int rc = qs_policy_load_file(source, &lo, &app.slots[k].p, msg, msglen);

		if (rc != QS_OK)
			return -rc;
	}
	snprintf(app.slots[k].source, sizeof(app.slots[k].source), "%s", source);
	app.slots[k].used = true;
	return k;
}

/*
 * Publish a new set made of the given slots, wait until no worker can still hold
 * the old one, free it and every slot nothing refers to any more.
 */
static void
publish(int active, int second, enum qs_dp_mode mode, uint32_t pct)
{
	struct qs_dp_policy_set *ns = calloc(1, sizeof(*ns)), *old;
	int i;

	if (!ns)
		rte_exit(EXIT_FAILURE, "out of memory publishing a policy\n");
	ns->active = app.slots[active].p;
	ns->builtin = app.slots[active].builtin;
	ns->second = second >= 0 ? app.slots[second].p : NULL;
	ns->mode = second >= 0 ? mode : QS_DP_MODE_ACTIVE;
	ns->canary_pct = pct;
	ns->version = ++app.version;
	old = __atomic_exchange_n(&app.set, ns, __ATOMIC_ACQ_REL);
	if (old) {
		/* every worker has finished the burst that might have read old */
		rte_rcu_qsbr_synchronize(app.qsv, RTE_QSBR_THRID_INVALID);
		free(old);
		app.swaps++;
	}
	/* after the grace period no worker scores with an older shadow: what the
	 * counters gain from here on is this shadow's */
	if (ns->mode == QS_DP_MODE_SHADOW)
		qs_dpa_shadow(&app.shadow_base, NULL);
	app.active = active;
	app.second = second;
	for (i = 0; i < MAX_SLOTS; i++) {
		if (!app.slots[i].used || i == app.active || i == app.second || i == app.previous)
			continue;
		qs_policy_free(app.slots[i].p);
		app.slots[i].p = NULL;
		app.slots[i].used = false;
	}
	LOG(INFO, "policy set %" PRIu64 ": %s %s%s%s\n", ns->version,
	    qs_dp_mode_name(ns->mode), app.slots[active].source, second >= 0 ? " + " : "",
	    second >= 0 ? app.slots[second].source : "");
}

int
qs_dpa_policy_load(const char *source, enum qs_dp_mode mode, uint32_t pct, char *msg,
		   size_t msglen)
{
	int k;

	if (mode == QS_DP_MODE_CANARY && pct > 100) {
		snprintf(msg, msglen, "canary percentage %u is above 100", pct);
		return QS_E_ARG;
	}
	if (mode != QS_DP_MODE_ACTIVE && (app.active < 0 || !app.slots[app.active].p)) {
		snprintf(msg, msglen, "%s needs an active .q8 policy to compare with",
			 qs_dp_mode_name(mode));
		return QS_E_ARG;
	}
	if (mode != QS_DP_MODE_ACTIVE && strncmp(source, "builtin:", 8) == 0) {
		snprintf(msg, msglen, "%s takes a .q8 policy, not a builtin", qs_dp_mode_name(mode));
		return QS_E_ARG;
	}
	/* validated completely before anything changes: a refusal leaves all as it was */
	k = slot_load(source, msg, msglen);
	if (k < 0)
		return -k;
	if (mode == QS_DP_MODE_ACTIVE) {
		app.previous = app.active;
		publish(k, -1, QS_DP_MODE_ACTIVE, 0);
	} else {
		publish(app.active, k, mode, pct);
	}
	snprintf(msg, msglen, "%s loaded as %s", source, qs_dp_mode_name(mode));
	return QS_OK;
}

int
qs_dpa_policy_rollback(char *msg, size_t msglen)
{
	int prev;

	if (app.second >= 0) {
		snprintf(msg, msglen, "%s dropped; %s alone is active", app.slots[app.second].source,
			 app.slots[app.active].source);
		publish(app.active, -1, QS_DP_MODE_ACTIVE, 0);
		return QS_OK;
	}
	if (app.previous < 0) {
		snprintf(msg, msglen, "nothing to roll back to");
		return QS_E_ARG;
	}
	prev = app.previous;
	app.previous = app.active;
	publish(prev, -1, QS_DP_MODE_ACTIVE, 0);
	snprintf(msg, msglen, "rolled back to %s", app.slots[prev].source);
	return QS_OK;
}

int
qs_dpa_drain(uint16_t backend_id, bool drain, char *msg, size_t msglen)
{
	int i = qs_dp_backend_index(&app.shared->cfg, backend_id);
	uint64_t bit;

	if (i < 0) {
		snprintf(msg, msglen, "no backend with id %u", backend_id);
		return QS_E_ARG;
	}
	bit = 1ull << i;
	if (drain)
		__atomic_fetch_or(&app.shared->admin_drain, bit, __ATOMIC_RELEASE);
	else
		__atomic_fetch_and(&app.shared->admin_drain, ~bit, __ATOMIC_RELEASE);
	snprintf(msg, msglen, "backend %s (id %u) %s", app.shared->cfg.be[i].name, backend_id,
		 drain ? "drained" : "undrained");
	return QS_OK;
}

/* ---- init --------------------------------------------------------------------------- */

static void
on_signal(int sig)
{
	(void)sig;
	app.quit = 1;
}

static void
port_init(uint16_t port, uint16_t nq, bool want_ts)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	uint16_t q, nrx = RX_DESC, ntx = TX_DESC;
	int rc;

	memset(&conf, 0, sizeof(conf));
	rc = rte_eth_dev_info_get(port, &info);
	if (rc != 0)
		rte_exit(EXIT_FAILURE, "port %u: no device info: %s\n", port, rte_strerror(-rc));
	if (nq > info.max_rx_queues || nq > info.max_tx_queues)
		rte_exit(EXIT_FAILURE, "port %u has %u rx / %u tx queues; %u workers need as many\n",
			 port, info.max_rx_queues, info.max_tx_queues, nq);
	if (nq > 1) {
		/* requests of one client flow (and their continuations) stay on one worker */
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
			(RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
	}
	if (want_ts) {
		/* net_pcap stamps every packet read from a file without being asked */
		if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_TIMESTAMP)
			conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TIMESTAMP;
	}
	rc = rte_eth_dev_configure(port, nq, nq, &conf);
	if (rc != 0)
		rte_exit(EXIT_FAILURE, "port %u configure: %s\n", port, rte_strerror(-rc));
	rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrx, &ntx);
	for (q = 0; q < nq; q++) {
		rc = rte_eth_rx_queue_setup(port, q, nrx, rte_eth_dev_socket_id(port), NULL, app.pool);
		if (rc != 0)
			rte_exit(EXIT_FAILURE, "rx queue %u: %s\n", q, rte_strerror(-rc));
		rc = rte_eth_tx_queue_setup(port, q, ntx, rte_eth_dev_socket_id(port), NULL);
		if (rc != 0)
			rte_exit(EXIT_FAILURE, "tx queue %u: %s\n", q, rte_strerror(-rc));
	}
	rc = rte_eth_dev_start(port);
	if (rc != 0)
		rte_exit(EXIT_FAILURE, "port %u start: %s\n", port, rte_strerror(-rc));
	rte_eth_promiscuous_enable(port);
	if (want_ts) {
		app.ts_off = rte_mbuf_dynfield_lookup(RTE_MBUF_DYNFIELD_TIMESTAMP_NAME, NULL);
		rc = rte_mbuf_dynflag_lookup(RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME, NULL);
		if (app.ts_off < 0 || rc < 0)
			rte_exit(EXIT_FAILURE, "clock = packet: port %u (%s) gives no rx timestamps\n",
				 port, info.driver_name);
		app.ts_flag = 1ull << rc;
	}
}

/* ---- benchmark: one worker fed from memory ------------------------------------------ */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int
run_bench(double seconds, const char *kind)
{
	struct qs_dp_worker *w = app.wk[0].w;
	struct qs_dp_shared *s = app.shared;
	enum { NPKT = 4096 };
	static uint8_t frames[NPKT][QS_DP_BENCH_FRAME];
	static uint32_t lens[NPKT];
	uint8_t *bufs[QS_DP_BURST];
	bool cont = strcmp(kind, "continuations") == 0;
	uint32_t i;
	uint64_t t0, t1, t, wt, wn = 0, n = 0, hz = rte_get_tsc_hz(), now;
	enum { MAX_WIN = 600 };
	static double win[MAX_WIN];
	unsigned nwin = 0;

	if (!cont && strcmp(kind, "requests") != 0) {
		fprintf(stderr, "qsteer-dp: --bench-kind is requests or continuations\n");
		return 2;
	}
	now = tsc_ns();
	qs_dp_bench_workload(w, s, app.set, frames, lens, NPKT, cont, now);
	memset(&w->ctr, 0, sizeof(w->ctr));
	t0 = rte_rdtsc();
	t1 = t0 + (uint64_t)(seconds * (double)hz);
	wt = t0;
	for (i = 0, t = t0; t < t1; i = i + 2u * app.burst > NPKT ? 0 : i + app.burst) {
		uint32_t k;

		for (k = 0; k < app.burst; k++)
			bufs[k] = frames[i + k];
		qs_dp_process(w, s, app.set, bufs, lens + i, app.burst, now);
		n += app.burst;
		t = rte_rdtsc();
		if (t - wt >= hz) {
			/* one-second windows, as dpdk-testpmd's --stats-period 1 reports */
			if (nwin < MAX_WIN)
				win[nwin++] = (double)(n - wn) / ((double)(t - wt) / (double)hz) / 1e6;
			wt = t;
			wn = n;
		}
	}
	t1 = t;
	qsort(win, nwin, sizeof(win[0]), cmp_double);
	printf("{\"bench\":\"%s\",\"packets\":%" PRIu64 ",\"seconds\":%.3f,\"mpps\":%.3f,"
	       "\"mpps_median_s\":%.3f,\"mpps_best_s\":%.3f,\"windows\":%u,"
	       "\"tx\":%" PRIu64 ",\"dropped\":%" PRIu64 ",\"policy\":\"%s\",\"kernel\":\"%s\","
	       "\"backends\":%u,\"burst\":%u}\n",
	       kind, n, (double)(t1 - t0) / (double)hz,
	       (double)n / ((double)(t1 - t0) / (double)hz) / 1e6,
	       nwin ? (win[(nwin - 1) / 2] + win[nwin / 2]) / 2 : 0.0, nwin ? win[nwin - 1] : 0.0,
	       nwin, w->ctr.tx,
	       n - w->ctr.tx, app.slots[app.active].source, qs_kernel_name(app.kernel),
	       s->cfg.n_backends, app.burst);
	return w->ctr.tx == n ? 0 : 1;
}

static void
usage(void)
{
	fprintf(stderr,
		"usage: qsteer-dp [EAL args] -- --config FILE [--policy FILE.q8|builtin:NAME]\n"
		"         [--control PATH] [--prometheus IPV4:PORT]\n"
		"         [--kernel auto|scalar|avx2|avx512vnni] [--port N] [--burst N]\n"
		"         [--stats-out FILE] [--idle-exit-ms MS] [--pace-us US] [--rx-hold]\n"
		"         [--pubkey FILE]... (policies must be signed with one of the keys)\n"
		"         [--bench SECONDS --bench-kind requests|continuations]\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", 1, 0, 'c'},	  {"policy", 1, 0, 'p'},
					     {"control", 1, 0, 'C'},	  {"kernel", 1, 0, 'k'},
					     {"port", 1, 0, 'P'},	  {"stats-out", 1, 0, 's'},
					     {"idle-exit-ms", 1, 0, 'i'}, {"pace-us", 1, 0, 'u'},
					     {"bench", 1, 0, 'b'},	  {"bench-kind", 1, 0, 'K'},
					     {"burst", 1, 0, 'B'},	  {"prometheus", 1, 0, 'M'},
					     {"rx-hold", 0, 0, 'H'},	  {"pubkey", 1, 0, 'Y'},
					     {"help", 0, 0, 'h'},	  {0, 0, 0, 0}};
	const char *cfgpath = NULL, *policy = "builtin:lor", *control = NULL, *stats_out = NULL;
	const char *bench_kind = "requests", *prometheus = NULL;
	const char *pubkeys[QS_Q8_MAX_PUBKEYS];
	unsigned n_pubkeys = 0;
	double bench = 0;
	uint64_t idle_ms = 0;
	struct qs_dp_config cfg;
	char msg[512];
	unsigned lcore;
	uint32_t i;
	size_t sz;
	int rc, o, k;

	rc = rte_eal_init(argc, argv);
	if (rc < 0)
		rte_exit(EXIT_FAILURE, "EAL init failed: %s\n", rte_strerror(rte_errno));
	argc -= rc;
	argv += rc;
	app.kernel = QS_KERNEL_AUTO;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'c': cfgpath = optarg; break;
		case 'p': policy = optarg; break;
		case 'C': control = optarg; break;
		case 'k':
			if (qs_kernel_parse(optarg, &app.kernel) != QS_OK)
				rte_exit(EXIT_FAILURE, "unknown kernel %s\n", optarg);
			break;
		case 'P': app.port = (uint16_t)atoi(optarg); break;
		case 's': stats_out = optarg; break;
		case 'i': idle_ms = strtoull(optarg, NULL, 0); break;
		case 'u': app.pace_us = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'b': bench = atof(optarg); break;
		case 'K': bench_kind = optarg; break;
		case 'M': prometheus = optarg; break;
		case 'B': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 0);

			if (*end || v < 1 || v > QS_DP_BURST)
				rte_exit(EXIT_FAILURE, "--burst %s: want 1..%d\n", optarg, QS_DP_BURST);
			app.burst = (uint16_t)v;
			break;
		}
		case 'H': app.rx_gated = 1; break;
		case 'Y':
			if (n_pubkeys >= QS_Q8_MAX_PUBKEYS)
				rte_exit(EXIT_FAILURE, "at most %d --pubkey options\n",
					 QS_Q8_MAX_PUBKEYS);
			pubkeys[n_pubkeys++] = optarg;
			break;
		case 'h': usage(); rte_eal_cleanup(); return 0;
		default: usage(); rte_eal_cleanup(); return 2;
		}
	}
	if (!cfgpath) {
		usage();
		rte_eal_cleanup();
		return 2;
	}
	qs_dp_config_defaults(&cfg);
	if (qs_dp_config_load(cfgpath, &cfg, msg, sizeof(msg)) != QS_OK)
		rte_exit(EXIT_FAILURE, "%s\n", msg);
	/* --pubkey adds to the configuration's policy_pubkey keys */
	for (i = 0; i < n_pubkeys; i++)
		if (qs_q8_keyset_add_file(&cfg.policy_keys, pubkeys[i], msg, sizeof(msg)) != QS_OK)
			rte_exit(EXIT_FAILURE, "--pubkey: %s\n", msg);
	app.kernel = qs_kernel_resolve(app.kernel);
	app.start_tsc = rte_rdtsc();

	app.shared = rte_zmalloc("qs_dp_shared", sizeof(*app.shared), RTE_CACHE_LINE_SIZE);
	if (!app.shared)
		rte_exit(EXIT_FAILURE, "no memory for the backend table\n");
	qs_dp_shared_init(app.shared, &cfg);

	/* workers: every lcore but the main one (the benchmark uses one, on main) */
	app.n_workers = 0;
	RTE_LCORE_FOREACH_WORKER(lcore) {
		app.n_workers++;
	}
	if (bench > 0)
		app.n_workers = 1;
	if (app.n_workers == 0)
		rte_exit(EXIT_FAILURE, "no worker lcore: give EAL at least two lcores (-l 0,1)\n");
	sz = RTE_ALIGN_CEIL(rte_rcu_qsbr_get_memsize(app.n_workers), RTE_CACHE_LINE_SIZE);
	app.qsv = rte_zmalloc("qs_dp_rcu", sz, RTE_CACHE_LINE_SIZE);
	if (!app.qsv || rte_rcu_qsbr_init(app.qsv, app.n_workers) != 0)
		rte_exit(EXIT_FAILURE, "RCU init failed\n");
	for (i = 0; i < app.n_workers; i++) {
		app.wk[i].w = rte_zmalloc_socket("qs_dp_worker", sizeof(struct qs_dp_worker),
						 RTE_CACHE_LINE_SIZE, (int)rte_socket_id());
		if (!app.wk[i].w)
			rte_exit(EXIT_FAILURE, "no memory for worker %u\n", i);
		qs_dp_worker_init(app.wk[i].w, app.shared, app.kernel, i);
		app.wk[i].queue = (uint16_t)i;
		app.wk[i].thread_id = i;
	}

	if (cfg.policy_keys.n)
		LOG(INFO, "policies must be signed with one of %u public key%s\n",
		    cfg.policy_keys.n, cfg.policy_keys.n == 1 ? "" : "s");
	k = slot_load(policy, msg, sizeof(msg));
	if (k < 0)
		rte_exit(EXIT_FAILURE, "policy refused: %s\n", msg);
	publish(k, -1, QS_DP_MODE_ACTIVE, 0);

	if (bench > 0) {
		rc = run_bench(bench, bench_kind);
		rte_eal_cleanup();
		return rc;
	}

	if (rte_eth_dev_count_avail() == 0)
		rte_exit(EXIT_FAILURE, "no ports: give a NIC or --vdev (net_pcap, net_ring, ...)\n");
	app.pool = rte_pktmbuf_pool_create("qs_dp_mbufs", NB_MBUF * app.n_workers, 256, 0,
					   RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (!app.pool)
		rte_exit(EXIT_FAILURE, "mbuf pool: %s\n", rte_strerror(rte_errno));
	port_init(app.port, (uint16_t)app.n_workers, cfg.clock == QS_DP_CLOCK_PACKET);

	if ((control || prometheus) && qs_dpc_open(control, prometheus, msg, sizeof(msg)) != 0)
		rte_exit(EXIT_FAILURE, "control: %s\n", msg);
	if (prometheus)
		LOG(INFO, "prometheus /metrics on port %u\n", qs_dpc_prometheus_port());
	qs_dpc_telemetry_register();
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	i = 0;
	RTE_LCORE_FOREACH_WORKER(lcore) {
		app.wk[i].lcore = lcore;
		rte_eal_remote_launch(worker_main, &app.wk[i], lcore);
		i++;
	}
	LOG(INFO, "%u workers, burst %u, kernel %s, %u backends, policy %s\n", app.n_workers,
	    app.burst, qs_kernel_name(app.kernel), cfg.n_backends, policy);

	{
		uint64_t last_rx = 0, last_change = rte_rdtsc(), hz = rte_get_tsc_hz();

		while (!app.quit) {
			struct qs_dp_counters sum;

			qs_dpc_poll(control || prometheus ? 20 : 0);
			if (!control && !prometheus)
				rte_delay_us_sleep(20000);
			if (idle_ms) {
				qs_dpa_counters(&sum);
				if (sum.rx != last_rx) {
					last_rx = sum.rx;
					last_change = rte_rdtsc();
				} else if (sum.rx > 0 &&
					   rte_rdtsc() - last_change > idle_ms * hz / 1000) {
					LOG(INFO, "idle for %" PRIu64 " ms after %" PRIu64
						  " packets: exiting\n", idle_ms, sum.rx);
					app.quit = 1;
				}
			}
		}
	}
	rte_eal_mp_wait_lcore();
	if (stats_out) {
		char *js = qs_dpc_stats_json();
		FILE *f = fopen(stats_out, "w");

		if (!f || fprintf(f, "%s\n", js) < 0)
			LOG(ERR, "%s: %s\n", stats_out, strerror(errno));
		if (f)
			fclose(f);
		free(js);
	}
	qs_dpc_close();
	rte_eth_dev_stop(app.port);
	rte_eth_dev_close(app.port);
	for (k = 0; k < MAX_SLOTS; k++)
		if (app.slots[k].used)
			qs_policy_free(app.slots[k].p);
	free(app.set);
	rte_eal_cleanup();
	return 0;
}
