/*
 * jobs.h - the one job pool: run n independent jobs on up to `threads` threads.
 *
 *	qs_jobs_run(n, threads, fn, ctx);	// fn(ctx, job, worker) for job 0..n-1
 *
 * The split is static: worker w runs jobs w, w + threads, w + 2 * threads, ... in
 * that order, the calling thread is worker 0, and a worker whose thread would not
 * start is run by the caller once the others are joined. So which jobs share a
 * worker (and its scratch, indexed by `worker`) never depends on the machine or on
 * how many threads started, and results that depend on job and worker alone are
 * the same bytes on any machine. Rollouts, the PPO shards, the batching trainer's
 * episodes and every compare (qsteer-sim compare, qsteer-train eval) run on it.
 *
 * Header-only (static inline): the simulator and the trainer both use it and
 * neither library should link the other's for twenty lines.
 */
#ifndef QSTEER_JOBS_H
#define QSTEER_JOBS_H

#include <pthread.h>
#include <stdint.h>

#define QS_JOBS_MAX_THREADS 256

typedef void (*qs_job_fn)(void *ctx, uint32_t job, uint32_t worker);

struct qs_jobs_worker {
	pthread_t tid;
	qs_job_fn fn;
	void *ctx;
	uint32_t n, stride, w;
};

static inline void
qs_jobs_worker_run(const struct qs_jobs_worker *w)
{
	for (uint32_t k = w->w; k < w->n; k += w->stride)
		w->fn(w->ctx, k, w->w);
}

static inline void *
qs_jobs_thread_main(void *arg)
{
	qs_jobs_worker_run(arg);
	return NULL;
}

/* The number of workers qs_jobs_run uses for n jobs asked to run on threads
 * (1..QS_JOBS_MAX_THREADS, never more than n): size per-worker scratch with it. */
static inline uint32_t
qs_jobs_workers(uint32_t n, uint32_t threads)
{
	if (threads > QS_JOBS_MAX_THREADS)
		threads = QS_JOBS_MAX_THREADS;
	if (threads > n)
		threads = n;
	return threads ? threads : 1;
}

static inline void
qs_jobs_run(uint32_t n, uint32_t threads, qs_job_fn fn, void *ctx)
{
	struct qs_jobs_worker w[QS_JOBS_MAX_THREADS];
	uint32_t nw = qs_jobs_workers(n, threads), started = 1;

	for (uint32_t t = 0; t < nw; t++)
		w[t] = (struct qs_jobs_worker){.fn = fn, .ctx = ctx, .n = n, .stride = nw, .w = t};
	for (; started < nw; started++)
		if (pthread_create(&w[started].tid, NULL, qs_jobs_thread_main, &w[started]) != 0)
			break;
	qs_jobs_worker_run(&w[0]);
	for (uint32_t t = 1; t < started; t++)
		pthread_join(w[t].tid, NULL);
	for (uint32_t t = started; t < nw; t++)
		qs_jobs_worker_run(&w[t]);
}

#endif /* QSTEER_JOBS_H */
