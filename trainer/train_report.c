/*
 * train_report.c - what qsteer-train prints and draws (train_report.h): the eval
 * table and its JSON and bar chart, the learning curve. Program-side only: the
 * trainer library computes and never prints to stdout.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "train_report.h"

/* mkdir -p: create dir and any missing parents; 0 if it exists afterwards. */
int
qs_train_mkdir_parents(const char *dir)
{
	char path[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(path, dir, n + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(path, 0777) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(path, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

void
qs_train_plot_curve(const char *dir, const char *csv)
{
	char qdir[4096], qcsv[4096];
	FILE *g;

	if (!csv) {
		fprintf(stderr, "qsteer-train: --plot needs --log CSV\n");
		return;
	}
	/* no shell command built from the path: create it here, pipe into gnuplot */
	if (qs_train_mkdir_parents(dir) != 0) {
		fprintf(stderr, "qsteer-train: %s: %s\n", dir, strerror(errno));
		return;
	}
	g = popen("gnuplot", "w");
	if (!g) {
		fprintf(stderr, "qsteer-train: cannot run gnuplot\n");
		return;
	}
	fprintf(
	    g,
	    "set terminal pngcairo size 900,500 noenhanced\nset output '%s/learning-curve.png'\n"
	    "set datafile separator ','\nset key bottom right\nset xlabel 'decisions'\n"
	    "set ylabel 'reward per decision'\nset y2label 'policy entropy'\n"
	    "set y2tics\nset ytics nomirror\nset grid\n"
	    "set title 'qsteer-train learning curve (%s)'\n"
	    "plot '%s' using 2:4 skip 1 with lines lw 2 title 'reward per decision', "
	    "'' using 2:8 skip 1 axes x1y2 with lines title 'entropy'\n",
	    qs_sim_gp_quote(dir, qdir, sizeof(qdir)), qs_sim_gp_quote(csv, qcsv, sizeof(qcsv)),
	    qcsv);
	if (pclose(g) != 0)
		fprintf(stderr, "qsteer-train: gnuplot failed (is it installed?)\n");
}

/*
 * The int8 policy against the best baseline on every column, paired over the seeds
 * (the same arrivals on both sides): the mean per-seed difference in % of the
 * baseline's mean, signed so that + is better for the policy, with its 95% interval,
 * and "better", "worse" or "tie" by whether the interval excludes 0. The primary
 * metric alone can hide a loss on the others (issue 14: judge the whole table).
 */
/* Where the int8 file's disagreements are: by the float margin, and at saturated
 * inputs (train_eval.h). A row with no flips is still printed: it is the
 * denominator that says whether a margin is rare or common. */
static void
print_margins(FILE *out, const struct qs_train_margins *m)
{
	fprintf(out, "float-vs-int8: flips / decisions by the float net's margin (score units):");
	for (int b = 0; b < QS_TRAIN_GAP_BUCKETS; b++) {
		if (b < QS_TRAIN_GAP_BUCKETS - 1)
			fprintf(out, " <%g", qs_train_gap_edges[b]);
		else
			fprintf(out, " >=%g", qs_train_gap_edges[b - 1]);
		fprintf(out, " %" PRIu64 "/%" PRIu64, m->flips[b], m->n[b]);
	}
	fprintf(out, "; with a feature at 127 %" PRIu64 "/%" PRIu64 "\n", m->sat_flips, m->sat_n);
}

static void
print_vs_best(FILE *out, const struct qs_train_eval *e)
{
	const struct qs_cmp_row *q = &e->rows[e->q_i], *b = &e->rows[e->best_i];
	uint32_t K = e->seeds;

	fprintf(out, "int8 vs %s, paired over %u seeds (%% of %s's mean, + better):",
		e->names[e->best_i], K, e->names[e->best_i]);
	for (int c = 0; c < QS_TRAIN_EVAL_COLS; c++) {
		enum qs_cmp_col col = qs_train_eval_cols[c];
		int lower_better = col == QS_CMP_TTFT_P50 || col == QS_CMP_TTFT_P99 ||
				   col == QS_CMP_TPOT_P99 || col == QS_CMP_E2E_MEAN;
		double base = b->mean[col], m = 0, ss = 0, ci = 0;

		if (!(base != 0)) {
			fprintf(out, " %s n/a", qs_cmp_col_names[col]);
			continue;
		}
		for (uint32_t k = 0; k < K; k++)
			m += (q->v[col][k] - b->v[col][k]) / base * (lower_better ? -100.0 : 100.0);
		m /= K;
		for (uint32_t k = 0; k < K; k++) {
			double d =
			    (q->v[col][k] - b->v[col][k]) / base * (lower_better ? -100.0 : 100.0) -
			    m;

			ss += d * d;
		}
		if (K > 1)
			ci = qs_cmp_t975(K - 1) * sqrt(ss / (K - 1)) / sqrt((double)K);
		fprintf(out, "%s %s %+.2f%% +- %.2f%% (%s)", c ? "," : "", qs_cmp_col_names[col], m,
			ci,
			K < 2	     ? "one seed"
			: m - ci > 0 ? "better"
			: m + ci < 0 ? "worse"
				     : "tie");
	}
	fprintf(out, "\n");
}

void
qs_train_eval_print(FILE *out, const struct qs_train_eval *e, int json, const char *plot)
{
	const struct qs_sim_config *cfg = &e->cfg;
	const struct qs_cmp_row *r = e->rows;
	uint32_t K = e->seeds;
	double best = r[e->best_i].mean[e->prim];

	fprintf(out,
		"scenario %s: primary metric %s; held-out seeds %" PRIu64 "..%" PRIu64
		" (training never uses them); mean +- 95%% CI\n",
		cfg->name, cfg->primary_metric, e->seed, e->seed + K - 1);
	fprintf(out, "%-28s", "router");
	for (int c = 0; c < QS_TRAIN_EVAL_COLS; c++)
		fprintf(out, " %22s", qs_cmp_col_names[qs_train_eval_cols[c]]);
	fprintf(out, "\n");
	for (uint32_t i = 0; i < e->n; i++) {
		const char *nm = e->names[i] ? e->names[i] : "float (same net)";

		fprintf(out, "%-26.26s%s", nm, (int)i == e->best_i ? " *" : "  ");
		for (int c = 0; c < QS_TRAIN_EVAL_COLS; c++)
			fprintf(out, " %12.4f +- %7.4f", r[i].mean[qs_train_eval_cols[c]],
				r[i].ci[qs_train_eval_cols[c]]);
		fprintf(out, "\n");
	}
	{
		double qm = r[e->q_i].mean[e->prim];
		double rel = e->ttft ? (best - qm) / best : (qm - best) / best;

		fprintf(out, "int8 vs best baseline (%s): %s %.4f vs %.4f: %s by %.2f%%\n",
			e->names[e->best_i], cfg->primary_metric, qm, best,
			rel >= 0 ? "better" : "worse", 100.0 * fabs(rel));
		print_vs_best(out, e);
		if (e->ag) {
			double fm = r[e->f_i].mean[e->prim];

			fprintf(
			    out,
			    "float-vs-int8: action agreement %.4f on %" PRIu64
			    " decisions (int8 runs); %s float %.4f int8 %.4f (difference %.2f%%, "
			    "paired 95%% CI +- %.2f%%)\n",
			    e->decisions ? (double)e->agree / (double)e->decisions : 0.0,
			    e->decisions, cfg->primary_metric, fm, qm, e->diff_pct, e->diff_ci_pct);
			print_margins(out, &e->margins);
			/* A tail metric over a replayed trace is chaotic: one flipped decision
			 * reroutes every later request of that backend, so single seeds differ
			 * by several percent either way. Say when K seeds cannot tell the
			 * difference from the 1% target instead of letting a point estimate
			 * pass for a measurement. */
			if (K > 1 && e->diff_ci_pct > QS_TRAIN_DIFF_HALF_WIDTH_PCT) {
				double sd = e->diff_ci_pct / qs_cmp_t975(K - 1) * sqrt((double)K);
				double need = ceil(
				    sd * sd * 1.96 * 1.96 /
				    (QS_TRAIN_DIFF_HALF_WIDTH_PCT * QS_TRAIN_DIFF_HALF_WIDTH_PCT));

				fprintf(
				    out,
				    "float-vs-int8: the difference is not resolved at %u seeds "
				    "(per-seed spread %.2f%%); about %.0f seeds give a +- %.1f%% "
				    "interval (--seeds)\n",
				    K, sd, need, QS_TRAIN_DIFF_HALF_WIDTH_PCT);
			}
		}
	}
	if (json) {
		printf("{\"scenario\": \"%s\", \"primary_metric\": \"%s\", \"seeds\": %u, "
		       "\"seed0\": %" PRIu64 ", \"routers\": [",
		       cfg->name, cfg->primary_metric, K, e->seed);
		for (uint32_t i = 0; i < e->n; i++) {
			printf("%s{\"router\": \"%s\"", i ? ", " : "",
			       e->names[i] ? e->names[i] : "float");
			for (int c = 0; c < QS_TRAIN_EVAL_COLS; c++)
				printf(", \"%s\": %.6f", qs_cmp_col_names[qs_train_eval_cols[c]],
				       r[i].mean[qs_train_eval_cols[c]]);
			printf("}");
		}
		printf("]");
		if (e->ag) {
			const struct qs_train_margins *m = &e->margins;

			printf(", \"agreement\": %.6f, \"metric_diff_pct\": %.4f, "
			       "\"metric_diff_ci_pct\": %.4f",
			       e->decisions ? (double)e->agree / (double)e->decisions : 0.0,
			       e->diff_pct, e->diff_ci_pct);
			printf(", \"margins\": [");
			for (int b = 0; b < QS_TRAIN_GAP_BUCKETS; b++) {
				if (b < QS_TRAIN_GAP_BUCKETS - 1)
					printf("%s{\"below\": %g", b ? ", " : "",
					       qs_train_gap_edges[b]);
				else
					printf(", {\"below\": null");
				printf(", \"decisions\": %" PRIu64 ", \"flips\": %" PRIu64 "}",
				       m->n[b], m->flips[b]);
			}
			printf("], \"saturated\": {\"decisions\": %" PRIu64 ", \"flips\": %" PRIu64
			       "}",
			       m->sat_n, m->sat_flips);
		}
		printf("}\n");
	}
	if (plot) {
		char qdir[4096], qname[2 * QS_SIM_NAME_LEN];
		FILE *g = NULL;

		if (qs_train_mkdir_parents(plot) != 0)
			fprintf(stderr, "qsteer-train: %s: %s\n", plot, strerror(errno));
		else
			g = popen("gnuplot", "w");
		if (g) {
			fprintf(
			    g,
			    "set terminal pngcairo size 900,500 noenhanced\nset output "
			    "'%s/compare-%s.png'\n"
			    "set style data histograms\nset style fill solid 0.7\nset boxwidth "
			    "0.8\n"
			    /* bars start at zero: a cut axis would exaggerate the differences */
			    "set yrange [0:*]\n"
			    "set xtics rotate by -30\nset grid ytics\nset key off\n"
			    "set title '%s: %s on held-out seeds (mean)'\nset ylabel '%s'\n"
			    "plot '-' using 2:xtic(1) lc rgb '#4477aa'\n",
			    qs_sim_gp_quote(plot, qdir, sizeof(qdir)),
			    qs_sim_gp_quote(cfg->name, qname, sizeof(qname)), qname,
			    cfg->primary_metric, cfg->primary_metric);
			for (uint32_t i = 0; i < e->n; i++)
				fprintf(g, "\"%s\" %.6f\n",
					e->names[i] ? (i == (uint32_t)e->q_i ? "int8" : e->names[i])
						    : "float",
					r[i].mean[e->prim]);
			fprintf(g, "e\n");
			pclose(g);
		}
	}
}
