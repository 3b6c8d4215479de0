/*
 * compare.c - the one compare (compare.h): routers x seeds as jobs on the job pool
 * (jobs.h), each metric's mean and Student-t interval over the seeds. Every job
 * owns its simulator, router and result slot, so the rows are the same bytes
 * whatever the number of threads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qsteer/compare.h"
#include "qsteer/jobs.h"
#include "sim_internal.h"

const char *const qs_cmp_col_names[QS_CMP_COLS] = {
    "ttft_p50_ms", "ttft_p99_ms", "tpot_p99_ms", "e2e_mean_ms", "slo_attainment", "goodput_rps",
};

double
qs_cmp_t975(uint32_t df)
{
	/* Three decimals, as the printed tables give them: every interval of 31 seeds
	 * or fewer keeps the bytes it always had. */
	static const double t[] = {
	    0,	   12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
	    2.201, 2.179,  2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080,
	    2.074, 2.069,  2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
	};
	const double z = 1.959963984540054, z2 = z * z; /* the normal 0.975 quantile */
	double v = df, g1, g2, g3, g4;

	if (df <= 30)
		return t[df];
	/* Cornish-Fisher (Abramowitz and Stegun 26.7.5): above 30 degrees of freedom
	 * the fourth-order terms leave an error below 1e-6. */
	g1 = (z2 + 1) * z / 4;
	g2 = ((5 * z2 + 16) * z2 + 3) * z / 96;
	g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384;
	g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160;
	return z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v);
}

void
qs_cmp_mean_ci(const double *x, uint32_t k, double *mean, double *ci)
{
	double s = 0, ss = 0;

	for (uint32_t i = 0; i < k; i++)
		s += x[i];
	*mean = s / k;
	for (uint32_t i = 0; i < k; i++)
		ss += (x[i] - *mean) * (x[i] - *mean);
	*ci = k > 1 ? qs_cmp_t975(k - 1) * sqrt(ss / (k - 1)) / sqrt((double)k) : 0;
}

void
qs_cmp_values(const struct qs_sim_metrics *m, double out[QS_CMP_COLS])
{
	out[QS_CMP_TTFT_P50] = m->p50_ms[QS_SIM_M_TTFT];
	out[QS_CMP_TTFT_P99] = m->p99_ms[QS_SIM_M_TTFT];
	out[QS_CMP_TPOT_P99] = m->p99_ms[QS_SIM_M_TPOT];
	out[QS_CMP_E2E_MEAN] = m->mean_ms[QS_SIM_M_E2E];
	out[QS_CMP_SLO] = m->slo_attainment;
	out[QS_CMP_GOODPUT] = m->goodput_rps;
}

void
qs_cmp_finish(struct qs_cmp_row *r, uint32_t k)
{
	for (uint32_t c = 0; c < QS_CMP_COLS; c++)
		qs_cmp_mean_ci(r->v[c], k, &r->mean[c], &r->ci[c]);
}

/* One (router, seed) run: what it leaves for the rows, filled in after the pool. */
struct cmp_job {
	int rc;
	uint64_t fallbacks, agree, decisions;
	char msg[512];
};

struct cmp_ctx {
	const struct qs_sim_config *cfg;
	const struct qs_cmp_router *routers;
	const struct qs_cmp_opts *o;
	struct qs_cmp_row *rows;
	struct cmp_job *jobs;
};

static void
cmp_job_run(void *arg, uint32_t j, uint32_t worker)
{
	struct cmp_ctx *c = arg;
	uint32_t ri = j / c->o->seeds, si = j % c->o->seeds;
	const struct qs_cmp_router *rt = &c->routers[ri];
	struct qs_cmp_row *row = &c->rows[ri];
	struct cmp_job *job = &c->jobs[j];
	uint64_t seed = c->o->seed0 + si;
	struct qs_sim_router r = {0};
	struct qs_sim_metrics m;
	struct qs_sim *s = NULL;
	double v[QS_CMP_COLS];

	(void)worker;
	job->rc =
	    rt->run ? QS_OK : qs_sim_router_parse(rt->spec, seed, &r, job->msg, sizeof(job->msg));
	if (job->rc == QS_OK)
		job->rc = qs_sim_create(c->cfg, seed, &s, job->msg, sizeof(job->msg));
	if (job->rc == QS_OK)
		job->rc = rt->run ? rt->run(rt->ctx, s, &job->agree, &job->decisions, job->msg,
					    sizeof(job->msg))
				  : qs_sim_run(s, &r, job->msg, sizeof(job->msg));
	if (job->rc == QS_OK) {
		qs_sim_metrics(s, &m);
		qs_cmp_values(&m, v);
		for (uint32_t mi = 0; mi < QS_CMP_COLS; mi++)
			row->v[mi][si] = v[mi];
		job->fallbacks = r.fallbacks;
		if (si == 0) {
			/* The seed-0 job alone writes the row's name and CDFs. */
			snprintf(row->router, sizeof(row->router), "%s",
				 rt->run ? rt->spec : r.name);
			for (uint32_t mi = 0; c->o->cdf && mi < QS_SIM_M__COUNT; mi++)
				row->cdf_n[mi] =
				    qs_sim_cdf(s, (enum qs_sim_metric)mi, row->cdf_x[mi],
					       row->cdf_p[mi], QS_CDF_POINTS);
		}
	}
	qs_sim_destroy(s);
	qs_sim_router_free(&r);
}

int
qs_cmp_run(const struct qs_sim_config *cfg, const struct qs_cmp_router *routers, uint32_t n,
	   const struct qs_cmp_opts *o, struct qs_cmp_row *rows, uint32_t *bad, char *msg,
	   size_t msglen)
{
	struct cmp_ctx c = {cfg, routers, o, rows, NULL};
	uint32_t nj = n * o->seeds;

	if (o->seeds < 1 || o->seeds > QS_CMP_MAX_SEEDS)
		return qs_fail(msg, msglen, QS_E_ARG, "a compare runs 1..%d seeds, not %u",
			       QS_CMP_MAX_SEEDS, o->seeds);
	c.jobs = calloc(nj ? nj : 1, sizeof(*c.jobs));
	if (!c.jobs)
		return qs_fail(msg, msglen, QS_E_NOMEM, "out of memory");
	qs_jobs_run(nj, o->threads, cmp_job_run, &c);
	for (uint32_t j = 0; j < nj; j++) {
		struct qs_cmp_row *row = &rows[j / o->seeds];

		if (c.jobs[j].rc != QS_OK) {
			int rc = c.jobs[j].rc;

			if (bad)
				*bad = j;
			qs_fail(msg, msglen, rc, "%s", c.jobs[j].msg);
			free(c.jobs);
			return rc;
		}
		row->fallbacks += c.jobs[j].fallbacks;
		row->agree += c.jobs[j].agree;
		row->decisions += c.jobs[j].decisions;
	}
	for (uint32_t i = 0; i < n; i++)
		qs_cmp_finish(&rows[i], o->seeds);
	free(c.jobs);
	return QS_OK;
}
