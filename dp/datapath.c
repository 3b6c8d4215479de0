/*
 * datapath.c - qsteer-dp's workers around the dataplane core (dp/core.c), split as
 * DPDK applications are (STYLE.md): init (port, queues, mempool, RCU) and the
 * per-lcore run-to-completion loop (rx burst of 32, process the burst with the core,
 * tx, free what did not go). The control thread reads the counters and the clock
 * through datapath.h and never writes a worker's state.
 *
 * The only thing a worker reads that the control thread writes is the policy-set
 * pointer (policy_slots.c), published with RCU (rte_rcu_qsbr): a worker reports a
 * quiescent state at the top of each loop iteration and reads the pointer once per
 * burst, so every burst runs one set, and an old set (and its policies) is freed
 * only after every worker has passed a quiescent state since it was replaced. The
 * operator's drain mask is a single atomic word, the rx gate two. Nothing on the
 * fast path allocates or locks.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>

#include "datapath.h"

RTE_LOG_REGISTER_DEFAULT(qs_dp_logtype, INFO);

#define NB_MBUF 8192
#define RX_DESC 1024
#define TX_DESC 1024

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
	bool port_up;
	struct rte_mempool *pool;
	struct rte_rcu_qsbr *qsv;
	struct qs_pslots slots; /* the published set: read by workers under RCU */
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
} dpw = {.ts_off = -1, .burst = QS_DP_BURST};

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
	struct qs_dp_shared *s = dpw.shared;
	const bool pkt_clock = s->cfg.clock == QS_DP_CLOCK_PACKET;
	struct rte_mbuf *mb[QS_DP_BURST], *tx[QS_DP_BURST], *fr[QS_DP_BURST];
	uint8_t *bufs[QS_DP_BURST];
	uint32_t lens[QS_DP_BURST];

	rte_rcu_qsbr_thread_register(dpw.qsv, ctx->thread_id);
	rte_rcu_qsbr_thread_online(dpw.qsv, ctx->thread_id);
	while (!dpw.quit) {
		const struct qs_dp_policy_set *set;
		uint16_t n, i, ntx = 0, nfree = 0, sent;
		uint64_t now = 0;
		int gated;

		/* nothing from the previous burst is held past this point */
		rte_rcu_qsbr_quiescent(dpw.qsv, ctx->thread_id);
		gated = __atomic_load_n(&dpw.rx_gated, __ATOMIC_ACQUIRE);
		if (gated && __atomic_sub_fetch(&dpw.rx_credit, 1, __ATOMIC_ACQ_REL) < 0) {
			__atomic_add_fetch(&dpw.rx_credit, 1, __ATOMIC_ACQ_REL);
			ctx->idle_polls++;
			rte_pause();
			continue;
		}
		n = rte_eth_rx_burst(dpw.port, ctx->queue, mb, dpw.burst);
		if (n == 0) {
			if (gated) /* the credit buys a burst, not a poll */
				__atomic_add_fetch(&dpw.rx_credit, 1, __ATOMIC_ACQ_REL);
			ctx->idle_polls++;
			continue;
		}
		set = qs_pslots_current(&dpw.slots);
		for (i = 0; i < n; i++) {
			if (i + 2 < n)
				rte_prefetch0(rte_pktmbuf_mtod(mb[i + 2], void *));
			bufs[i] = rte_pktmbuf_mtod(mb[i], uint8_t *);
			lens[i] = rte_pktmbuf_data_len(mb[i]);
			if (pkt_clock && (mb[i]->ol_flags & dpw.ts_flag)) {
				uint64_t t =
				    *RTE_MBUF_DYNFIELD(mb[i], dpw.ts_off, rte_mbuf_timestamp_t *);

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
			sent += rte_eth_tx_burst(dpw.port, ctx->queue, tx + sent, ntx - sent);
		if (sent < ntx) {
			w->ctr.drop[QS_DP_D_TX] += ntx - sent;
			w->ctr.tx -= ntx - sent;
			rte_pktmbuf_free_bulk(tx + sent, ntx - sent);
		}
		if (dpw.pace_us)
			rte_delay_us_block(dpw.pace_us);
	}
	rte_rcu_qsbr_thread_offline(dpw.qsv, ctx->thread_id);
	rte_rcu_qsbr_thread_unregister(dpw.qsv, ctx->thread_id);
	return 0;
}

/* ---- the policy slots' grace period and allocator ---------------------------------- */

static void *
ps_alloc(void *ctx, size_t size)
{
	(void)ctx;
	return calloc(1, size);
}

static void
ps_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

static void
ps_synchronize(void *ctx)
{
	(void)ctx;
	rte_rcu_qsbr_synchronize(dpw.qsv, RTE_QSBR_THRID_INVALID);
}

static void
ps_published(void *ctx, const struct qs_pslots *ps)
{
	char d[600];

	(void)ctx;
	/* after the grace period no worker scores with an older shadow: what the
	 * counters gain from here on is this shadow's */
	if (qs_pslots_current(ps)->mode == QS_DP_MODE_SHADOW)
		qs_dpw_shadow(&dpw.shadow_base, NULL);
	qs_pslots_describe(ps, d, sizeof(d));
	QS_DP_LOG(INFO, "%s\n", d);
}

static const struct qs_pslots_ops ps_ops = {
    .alloc = ps_alloc,
    .free = ps_free,
    .synchronize = ps_synchronize,
    .published = ps_published,
};

/* ---- init ------------------------------------------------------------------------- */

void
qs_dpw_init(const struct qs_dpw_params *p)
{
	unsigned lcore;
	uint32_t i;
	size_t sz;

	dpw.kernel = p->kernel;
	dpw.port = p->port;
	dpw.burst = p->burst;
	dpw.pace_us = p->pace_us;
	dpw.rx_gated = p->rx_hold;
	dpw.start_tsc = rte_rdtsc();

	dpw.shared = rte_zmalloc("qs_dp_shared", sizeof(*dpw.shared), RTE_CACHE_LINE_SIZE);
	if (!dpw.shared)
		rte_exit(EXIT_FAILURE, "no memory for the backend table\n");
	qs_dp_shared_init(dpw.shared, p->cfg);

	/* workers: every lcore but the main one (the benchmark uses one, on main) */
	dpw.n_workers = 0;
	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		dpw.n_workers++;
	}
	if (p->bench)
		dpw.n_workers = 1;
	if (dpw.n_workers == 0)
		rte_exit(EXIT_FAILURE, "no worker lcore: give EAL at least two lcores (-l 0,1)\n");
	sz = RTE_ALIGN_CEIL(rte_rcu_qsbr_get_memsize(dpw.n_workers), RTE_CACHE_LINE_SIZE);
	dpw.qsv = rte_zmalloc("qs_dp_rcu", sz, RTE_CACHE_LINE_SIZE);
	if (!dpw.qsv || rte_rcu_qsbr_init(dpw.qsv, dpw.n_workers) != 0)
		rte_exit(EXIT_FAILURE, "RCU init failed\n");
	for (i = 0; i < dpw.n_workers; i++) {
		dpw.wk[i].w = rte_zmalloc_socket("qs_dp_worker", sizeof(struct qs_dp_worker),
						 RTE_CACHE_LINE_SIZE, (int)rte_socket_id());
		if (!dpw.wk[i].w)
			rte_exit(EXIT_FAILURE, "no memory for worker %u\n", i);
		qs_dp_worker_init(dpw.wk[i].w, dpw.shared, dpw.kernel, i);
		dpw.wk[i].queue = (uint16_t)i;
		dpw.wk[i].thread_id = i;
	}
	qs_pslots_init(&dpw.slots, dpw.shared, &ps_ops, NULL);
}

struct qs_pslots *
qs_dpw_policies(void)
{
	return &dpw.slots;
}

void
qs_dpw_port_init(void)
{
	const bool want_ts = dpw.shared->cfg.clock == QS_DP_CLOCK_PACKET;
	const uint16_t port = dpw.port, nq = (uint16_t)dpw.n_workers;
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	uint16_t q, nrx = RX_DESC, ntx = TX_DESC;
	int rc;

	if (rte_eth_dev_count_avail() == 0)
		rte_exit(EXIT_FAILURE,
			 "no ports: give a NIC or --vdev (net_pcap, net_ring, ...)\n");
	dpw.pool = rte_pktmbuf_pool_create("qs_dp_mbufs", NB_MBUF * dpw.n_workers, 256, 0,
					   RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (!dpw.pool)
		rte_exit(EXIT_FAILURE, "mbuf pool: %s\n", rte_strerror(rte_errno));
	memset(&conf, 0, sizeof(conf));
	rc = rte_eth_dev_info_get(port, &info);
	if (rc != 0)
		rte_exit(EXIT_FAILURE, "port %u: no device info: %s\n", port, rte_strerror(-rc));
	if (nq > info.max_rx_queues || nq > info.max_tx_queues)
		rte_exit(EXIT_FAILURE,
			 "port %u has %u rx / %u tx queues; %u workers need as many\n", port,
			 info.max_rx_queues, info.max_tx_queues, nq);
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
		rc = rte_eth_rx_queue_setup(port, q, nrx, rte_eth_dev_socket_id(port), NULL,
					    dpw.pool);
		if (rc != 0)
			rte_exit(EXIT_FAILURE, "rx queue %u: %s\n", q, rte_strerror(-rc));
		rc = rte_eth_tx_queue_setup(port, q, ntx, rte_eth_dev_socket_id(port), NULL);
		if (rc != 0)
			rte_exit(EXIT_FAILURE, "tx queue %u: %s\n", q, rte_strerror(-rc));
	}
	rc = rte_eth_dev_start(port);
	if (rc != 0)
		rte_exit(EXIT_FAILURE, "port %u start: %s\n", port, rte_strerror(-rc));
	dpw.port_up = true;
	rte_eth_promiscuous_enable(port);
	if (want_ts) {
		dpw.ts_off = rte_mbuf_dynfield_lookup(RTE_MBUF_DYNFIELD_TIMESTAMP_NAME, NULL);
		rc = rte_mbuf_dynflag_lookup(RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME, NULL);
		if (dpw.ts_off < 0 || rc < 0)
			rte_exit(EXIT_FAILURE,
				 "clock = packet: port %u (%s) gives no rx timestamps\n", port,
				 info.driver_name);
		dpw.ts_flag = 1ull << rc;
	}
}

void
qs_dpw_launch(void)
{
	unsigned lcore;
	uint32_t i = 0;

	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		dpw.wk[i].lcore = lcore;
		rte_eal_remote_launch(worker_main, &dpw.wk[i], lcore);
		i++;
	}
}

void
qs_dpw_stop(void)
{
	dpw.quit = 1;
}

bool
qs_dpw_stopping(void)
{
	return dpw.quit != 0;
}

void
qs_dpw_wait(void)
{
	rte_eal_mp_wait_lcore();
}

void
qs_dpw_fini(void)
{
	if (dpw.port_up) {
		rte_eth_dev_stop(dpw.port);
		rte_eth_dev_close(dpw.port);
		dpw.port_up = false;
	}
	qs_pslots_fini(&dpw.slots);
}

/* ---- benchmark: one worker fed from memory ------------------------------------------ */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
qs_dpw_bench(double seconds, const char *kind)
{
	struct qs_dp_worker *w = dpw.wk[0].w;
	struct qs_dp_shared *s = dpw.shared;
	const struct qs_dp_policy_set *set = qs_pslots_current(&dpw.slots);
	enum { NPKT = 4096 };
	static uint8_t frames[NPKT][QS_DP_BENCH_FRAME];
	static uint32_t lens[NPKT];
	uint8_t *bufs[QS_DP_BURST];
	bool cont = strcmp(kind, "continuations") == 0;
	struct qs_pslots_view v;
	uint32_t i;
	uint64_t t0, t1, t, wt, wn = 0, n = 0, hz = rte_get_tsc_hz(), now;
	enum { MAX_WIN = 600 };
	static double win[MAX_WIN];
	unsigned nwin = 0;

	if (!cont && strcmp(kind, "requests") != 0) {
		fprintf(stderr, "qsteer-dp: --bench-kind is requests or continuations\n");
		return 2;
	}
	qs_pslots_view(&dpw.slots, &v);
	now = tsc_ns();
	qs_dp_bench_workload(w, s, set, frames, lens, NPKT, cont, now);
	memset(&w->ctr, 0, sizeof(w->ctr));
	t0 = rte_rdtsc();
	t1 = t0 + (uint64_t)(seconds * (double)hz);
	wt = t0;
	for (i = 0, t = t0; t<t1; i = i + 2u * dpw.burst> NPKT ? 0 : i + dpw.burst) {
		uint32_t k;

		for (k = 0; k < dpw.burst; k++)
			bufs[k] = frames[i + k];
		qs_dp_process(w, s, set, bufs, lens + i, dpw.burst, now);
		n += dpw.burst;
		t = rte_rdtsc();
		if (t - wt >= hz) {
			/* one-second windows, as dpdk-testpmd's --stats-period 1 reports */
			if (nwin < MAX_WIN)
				win[nwin++] =
				    (double)(n - wn) / ((double)(t - wt) / (double)hz) / 1e6;
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
	       nwin, w->ctr.tx, n - w->ctr.tx, v.active->source, qs_kernel_name(dpw.kernel),
	       s->cfg.n_backends, dpw.burst);
	return w->ctr.tx == n ? 0 : 1;
}

/* ---- what the control thread reads ------------------------------------------------ */

const struct qs_dp_shared *
qs_dpw_shared(void)
{
	return dpw.shared;
}

void
qs_dpw_counters(struct qs_dp_counters *sum)
{
	uint32_t i;

	memset(sum, 0, sizeof(*sum));
	for (i = 0; i < dpw.n_workers; i++)
		qs_dp_counters_add(sum, &dpw.wk[i].w->ctr);
}

bool
qs_dpw_shadow(struct qs_dp_shadow *total, struct qs_dp_shadow *window)
{
	uint32_t i;

	memset(total, 0, sizeof(*total));
	for (i = 0; i < dpw.n_workers; i++)
		qs_dp_shadow_add(total, dpw.wk[i].w);
	if (!window || qs_pslots_current(&dpw.slots)->mode != QS_DP_MODE_SHADOW)
		return false;
	*window = *total;
	qs_dp_shadow_sum(window, &dpw.shadow_base, true);
	return true;
}

void
qs_dpw_worker_counters(uint32_t i, struct qs_dp_counters *c, unsigned *lcore, uint16_t *queue)
{
	memcpy(c, &dpw.wk[i].w->ctr, sizeof(*c));
	*lcore = dpw.wk[i].lcore;
	*queue = dpw.wk[i].queue;
}

void
qs_dpw_info(struct qs_dpw_info *out)
{
	uint32_t i;

	out->n_workers = dpw.n_workers;
	out->burst = dpw.burst;
	out->uptime_ns = (uint64_t)((unsigned __int128)(rte_rdtsc() - dpw.start_tsc) * 1000000000u /
				    rte_get_tsc_hz());
	out->kernel = qs_kernel_name(dpw.kernel);
	out->now_ns = 0;
	if (dpw.shared->cfg.clock == QS_DP_CLOCK_TSC) {
		out->now_ns = tsc_ns();
	} else {
		for (i = 0; i < dpw.n_workers; i++) {
			uint64_t t = __atomic_load_n(&dpw.wk[i].w->now_ns, __ATOMIC_RELAXED);

			if (t > out->now_ns)
				out->now_ns = t;
		}
	}
}

void
qs_dpw_rx_gate(enum qs_dpw_rx_op op, uint64_t bursts, struct qs_dpw_rx *out)
{
	struct qs_dp_counters sum;

	switch (op) {
	case QS_DPW_RX_SHOW:
		break;
	case QS_DPW_RX_HOLD:
		__atomic_store_n(&dpw.rx_credit, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&dpw.rx_gated, 1, __ATOMIC_RELEASE);
		break;
	case QS_DPW_RX_ALLOW:
		__atomic_add_fetch(&dpw.rx_credit, (int64_t)bursts, __ATOMIC_ACQ_REL);
		__atomic_store_n(&dpw.rx_gated, 1, __ATOMIC_RELEASE);
		break;
	case QS_DPW_RX_RELEASE:
		__atomic_store_n(&dpw.rx_gated, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&dpw.rx_credit, 0, __ATOMIC_RELEASE);
		break;
	}
	out->gated = __atomic_load_n(&dpw.rx_gated, __ATOMIC_ACQUIRE) != 0;
	out->credit = __atomic_load_n(&dpw.rx_credit, __ATOMIC_ACQUIRE);
	if (out->credit < 0) /* a worker between its take and its give-back */
		out->credit = 0;
	qs_dpw_counters(&sum);
	out->bursts = sum.bursts;
}
