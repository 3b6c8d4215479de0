/*
 * sim_report.c - qsteer-sim's tables, JSON, CSV and plots. Everything printed is
 * a function of the results only (no wall-clock times), so the same seed gives
 * the same bytes.
 */
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sim_report.h"

static const char *const metric_names[QS_SIM_M__COUNT] = {"TTFT", "TPOT", "E2E"};

/* The checked-report counters (struct qs_sim_metrics), as both outputs name them. */
static const char *const rep_names[8] = {"offered",   "taken",	     "old",	    "drop_source",
					 "drop_auth", "drop_replay", "forged_sent", "forged_taken"};

static void
report_counts(const struct qs_sim_metrics *m, unsigned long long v[8])
{
	v[0] = m->reports_offered;
	v[1] = m->reports_taken;
	v[2] = m->reports_old;
	v[3] = m->report_drop_source;
	v[4] = m->report_drop_auth;
	v[5] = m->report_drop_replay;
	v[6] = m->forged_sent;
	v[7] = m->forged_taken;
}

/* A cascade scenario: some backend has a quality table or some class a floor. */
static bool
cascade(const struct qs_sim_config *c)
{
	for (uint32_t i = 0; i < c->n_backends; i++)
		if (c->backend[i].has_quality)
			return true;
	for (uint32_t i = 0; i < QS_SIM_SLO_CLASSES; i++)
		if (c->slo[i].quality_floor > 0)
			return true;
	return false;
}

/* Each variant's share of the completed requests, in order of first appearance. */
static void
variant_split(FILE *f, const struct qs_sim_config *c, const struct qs_sim_metrics *m, bool json)
{
	uint64_t total = 0;

	for (uint32_t i = 0; i < m->n_backends; i++)
		total += m->be_completed[i];
	for (uint32_t i = 0, n = 0; i < c->n_backends && i < m->n_backends; i++) {
		const char *v = c->backend[i].variant[0] ? c->backend[i].variant : "(unnamed)";
		uint64_t sum = 0;
		uint32_t j;

		for (j = 0; j < i; j++)
			if (!strcmp(c->backend[j].variant[0] ? c->backend[j].variant : "(unnamed)",
				    v))
				break;
		if (j < i)
			continue; /* counted with its first backend */
		for (j = i; j < c->n_backends && j < m->n_backends; j++)
			if (!strcmp(c->backend[j].variant[0] ? c->backend[j].variant : "(unnamed)",
				    v))
				sum += m->be_completed[j];
		if (json) {
			fprintf(f, "%s", n++ ? ", " : "");
			qs_report_json_str(f, v);
			fprintf(f, ": %.6f", total ? (double)sum / (double)total : 0);
		} else {
			fprintf(f, "%s%s %.1f%%", n++ ? ", " : "", v,
				total ? 100.0 * (double)sum / (double)total : 0);
		}
	}
}

void
qs_report_run_table(FILE *f, const struct qs_sim_config *c, const char *router, uint64_t seed,
		    const struct qs_sim_metrics *m, uint64_t fallbacks)
{
	unsigned long long rv[8];
	uint32_t i;

	fprintf(f, "scenario   %s (primary metric: %s)\n", c->name, c->primary_metric);
	fprintf(f, "router     %s, seed %llu\n", router, (unsigned long long)seed);
	fprintf(f, "requests   %llu arrived, %llu completed, makespan %.3f s, %llu events\n",
		(unsigned long long)m->arrived, (unsigned long long)m->completed, m->makespan_s,
		(unsigned long long)m->events);
	fprintf(f, "%-10s %10s %10s %10s %10s\n", "(ms)", "p50", "p90", "p99", "mean");
	for (i = 0; i < QS_SIM_M__COUNT; i++)
		fprintf(f, "%-10s %10.2f %10.2f %10.2f %10.2f\n", metric_names[i], m->p50_ms[i],
			m->p90_ms[i], m->p99_ms[i], m->mean_ms[i]);
	fprintf(f, "SLO        %.4f attained", m->slo_attainment);
	for (i = 0; i < QS_SIM_SLO_CLASSES; i++)
		if (m->class_n[i])
			fprintf(f, "; class %u: %.4f of %llu", i, m->class_attainment[i],
				(unsigned long long)m->class_n[i]);
	fprintf(f, "\n");
	fprintf(f, "goodput    %.3f req/s; throughput %.3f req/s, %.1f tok/s\n", m->goodput_rps,
		m->throughput_rps, m->throughput_tps);
	if (cascade(c)) {
		fprintf(f,
			"cascade    quality %.4f, accuracy loss %.2f%% against the best backend, "
			"quality-weighted goodput %.3f req/s, SLA violations %.2f%% (%llu below "
			"their floor); traffic: ",
			m->quality_mean, 100 * m->accuracy_loss, m->quality_goodput_rps,
			100 * m->sla_violation_rate, (unsigned long long)m->quality_violations);
		variant_split(f, c, m, false);
		fprintf(f, "\n");
	}
	fprintf(f, "events     preemptions %llu, prefix-cache hits %llu, truncated %llu%s",
		(unsigned long long)m->preemptions, (unsigned long long)m->prefix_hits,
		(unsigned long long)m->truncated, fallbacks ? "" : "\n");
	if (fallbacks)
		fprintf(f, ", policy fallbacks %llu\n", (unsigned long long)fallbacks);
	fprintf(f, "little     L = %.4f, lambda*W = %.4f\n", m->little_l, m->little_lambda_w);
	for (i = 0; m->n_tenants > 1 && i < m->n_tenants; i++)
		if (m->tenant[i].other)
			fprintf(f,
				"tenant     others: %llu requests, SLO %.4f attained, TTFT p99 "
				"%.2f ms\n",
				(unsigned long long)m->tenant[i].n, m->tenant[i].attainment,
				m->tenant[i].ttft_p99_ms);
		else
			fprintf(
			    f,
			    "tenant     %u: %llu requests, SLO %.4f attained, TTFT p99 %.2f ms\n",
			    m->tenant[i].tenant, (unsigned long long)m->tenant[i].n,
			    m->tenant[i].attainment, m->tenant[i].ttft_p99_ms);
	if (m->cancelled)
		fprintf(f,
			"cancelled  %llu by their clients before a first token; %llu tokens "
			"of work freed\n",
			(unsigned long long)m->cancelled,
			(unsigned long long)m->cancel_saved_tokens);
	if (m->reports_checked) {
		report_counts(m, rv);
		fprintf(f, "reports   ");
		for (i = 0; i < 8; i++)
			fprintf(f, "%s %s %llu", i ? "," : "", rep_names[i], rv[i]);
		fprintf(f, "\n");
	}
	fprintf(f, "%-8s %-28s %8s %10s %12s\n", "backend", "profile", "util", "completed",
		"preemptions");
	for (i = 0; i < m->n_backends; i++)
		fprintf(f, "%-8u %-28s %8.3f %10llu %12llu\n", i, c->backend[i].prof.name,
			m->util[i], (unsigned long long)m->be_completed[i],
			(unsigned long long)m->be_preemptions[i]);
}

void
qs_report_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

void
qs_report_run_json(FILE *f, const struct qs_sim_config *c, const char *router, uint64_t seed,
		   const struct qs_sim_metrics *m, uint64_t fallbacks)
{
	static const char *const keys[QS_SIM_M__COUNT] = {"ttft", "tpot", "e2e"};
	unsigned long long rv[8];
	uint32_t i;

	fprintf(f, "{\"scenario\": ");
	qs_report_json_str(f, c->name);
	fprintf(f, ", \"primary_metric\": ");
	qs_report_json_str(f, c->primary_metric);
	fprintf(f, ", \"router\": ");
	qs_report_json_str(f, router);
	fprintf(f, ", \"seed\": %llu, \"arrived\": %llu, \"completed\": %llu, \"events\": %llu",
		(unsigned long long)seed, (unsigned long long)m->arrived,
		(unsigned long long)m->completed, (unsigned long long)m->events);
	fprintf(f, ", \"makespan_s\": %.6f", m->makespan_s);
	for (i = 0; i < QS_SIM_M__COUNT; i++)
		fprintf(f,
			", \"%s_p50_ms\": %.4f, \"%s_p90_ms\": %.4f, \"%s_p99_ms\": %.4f, "
			"\"%s_mean_ms\": %.4f",
			keys[i], m->p50_ms[i], keys[i], m->p90_ms[i], keys[i], m->p99_ms[i],
			keys[i], m->mean_ms[i]);
	fprintf(f, ", \"slo_attainment\": %.6f, \"slo_class\": [", m->slo_attainment);
	for (i = 0; i < QS_SIM_SLO_CLASSES; i++)
		fprintf(f, "%s{\"n\": %llu, \"attainment\": %.6f}", i ? ", " : "",
			(unsigned long long)m->class_n[i], m->class_attainment[i]);
	fprintf(f, "], \"goodput_rps\": %.6f, \"throughput_rps\": %.6f, \"throughput_tps\": %.3f",
		m->goodput_rps, m->throughput_rps, m->throughput_tps);
	if (cascade(c)) {
		fprintf(f,
			", \"quality_mean\": %.6f, \"accuracy_loss\": %.6f, "
			"\"quality_goodput_rps\": %.6f, \"sla_violation_rate\": %.6f, "
			"\"quality_violations\": %llu, \"variant_traffic\": {",
			m->quality_mean, m->accuracy_loss, m->quality_goodput_rps,
			m->sla_violation_rate, (unsigned long long)m->quality_violations);
		variant_split(f, c, m, true);
		fprintf(f, "}");
	}
	fprintf(f,
		", \"preemptions\": %llu, \"prefix_hits\": %llu, \"truncated\": %llu, "
		"\"policy_fallbacks\": %llu",
		(unsigned long long)m->preemptions, (unsigned long long)m->prefix_hits,
		(unsigned long long)m->truncated, (unsigned long long)fallbacks);
	for (i = 0; m->n_tenants > 1 && i < m->n_tenants; i++)
		fprintf(f,
			"%s{\"tenant\": %u, \"other\": %s, \"n\": %llu, \"attainment\": %.6f, "
			"\"ttft_p99_ms\": %.4f}%s",
			i ? ", " : ", \"tenants\": [", m->tenant[i].tenant,
			m->tenant[i].other ? "true" : "false", (unsigned long long)m->tenant[i].n,
			m->tenant[i].attainment, m->tenant[i].ttft_p99_ms,
			i + 1 == m->n_tenants ? "]" : "");
	if (m->cancelled)
		fprintf(f, ", \"cancelled\": %llu, \"cancel_saved_tokens\": %llu",
			(unsigned long long)m->cancelled,
			(unsigned long long)m->cancel_saved_tokens);
	if (m->reports_checked) {
		report_counts(m, rv);
		for (i = 0; i < 8; i++)
			fprintf(f, "%s\"%s\": %llu", i ? ", " : ", \"reports\": {", rep_names[i],
				rv[i]);
		fprintf(f, "}");
	}
	fprintf(f, ", \"little_l\": %.6f, \"little_lambda_w\": %.6f, \"backends\": [", m->little_l,
		m->little_lambda_w);
	for (i = 0; i < m->n_backends; i++) {
		fprintf(f, "%s{\"profile\": ", i ? ", " : "");
		qs_report_json_str(f, c->backend[i].prof.name);
		fprintf(f, ", \"util\": %.6f, \"completed\": %llu, \"preemptions\": %llu}",
			m->util[i], (unsigned long long)m->be_completed[i],
			(unsigned long long)m->be_preemptions[i]);
	}
	fprintf(f, "]}\n");
}

void
qs_report_cmp_values(const struct qs_sim_metrics *m, double out[QS_CMP_COLS])
{
	qs_cmp_values(m, out);
}

void
qs_report_cmp_finish(struct qs_cmp_row *r, uint32_t k)
{
	qs_cmp_finish(r, k);
}

static int
primary_col(const struct qs_sim_config *c, bool *higher_better)
{
	*higher_better = false;
	if (!strcmp(c->primary_metric, "ttft_p50"))
		return 0;
	if (!strcmp(c->primary_metric, "tpot_p99"))
		return 2;
	if (!strcmp(c->primary_metric, "e2e_mean"))
		return 3;
	if (!strcmp(c->primary_metric, "slo_attainment")) {
		*higher_better = true;
		return 4;
	}
	if (!strcmp(c->primary_metric, "goodput")) {
		*higher_better = true;
		return 5;
	}
	return 1;
}

void
qs_report_cmp_table(FILE *f, const struct qs_sim_config *c, const struct qs_cmp_row *rows,
		    uint32_t n, uint32_t k, uint64_t seed0)
{
	uint32_t i, j;
	bool hb;
	int pc = primary_col(c, &hb), best = -1;

	for (i = 0; i < n; i++)
		if (best < 0 || (hb ? rows[i].mean[pc] > rows[best].mean[pc]
				    : rows[i].mean[pc] < rows[best].mean[pc]))
			best = (int)i;
	fprintf(f, "scenario %s: primary metric %s; %u seed%s from %llu; mean +- 95%% CI\n",
		c->name, c->primary_metric, k, k == 1 ? "" : "s", (unsigned long long)seed0);
	fprintf(f, "%-16s", "router");
	for (j = 0; j < QS_CMP_COLS; j++)
		fprintf(f, " %21s", qs_cmp_col_names[j]);
	fprintf(f, "\n");
	for (i = 0; i < n; i++) {
		fprintf(f, "%-15.15s%c", rows[i].router, (int)i == best ? '*' : ' ');
		for (j = 0; j < QS_CMP_COLS; j++) {
			char cell[64];

			if (j >= 4)
				snprintf(cell, sizeof(cell), "%.4f +- %.4f", rows[i].mean[j],
					 rows[i].ci[j]);
			else
				snprintf(cell, sizeof(cell), "%.1f +- %.1f", rows[i].mean[j],
					 rows[i].ci[j]);
			fprintf(f, " %21s", cell);
		}
		fprintf(f, "\n");
	}
}

void
qs_report_cmp_json(FILE *f, const struct qs_sim_config *c, const struct qs_cmp_row *rows,
		   uint32_t n, uint32_t k, uint64_t seed0)
{
	uint32_t i, j;

	fprintf(f, "{\"scenario\": ");
	qs_report_json_str(f, c->name);
	fprintf(f, ", \"primary_metric\": ");
	qs_report_json_str(f, c->primary_metric);
	fprintf(f, ", \"seeds\": %u, \"seed0\": %llu, \"routers\": [", k,
		(unsigned long long)seed0);
	for (i = 0; i < n; i++) {
		fprintf(f, "%s{\"router\": ", i ? ", " : "");
		qs_report_json_str(f, rows[i].router);
		for (j = 0; j < QS_CMP_COLS; j++)
			fprintf(f, ", \"%s\": %.6f", qs_cmp_col_names[j], rows[i].mean[j]);
		fprintf(f, ", \"ci95\": {");
		for (j = 0; j < QS_CMP_COLS; j++)
			fprintf(f, "%s\"%s\": %.6f", j ? ", " : "", qs_cmp_col_names[j],
				rows[i].ci[j]);
		fprintf(f, "}}");
	}
	fprintf(f, "]}\n");
}

void
qs_report_csv_header(FILE *f)
{
	fprintf(f, "request_id,decision_id,backend,arrival_ms,prompt_tokens,gen_tokens,tenant,"
		   "slo_class,class,ttft_ms,tpot_ms,e2e_ms,slo_met,preemptions,prefix_cache_hit\n");
}

void
qs_report_csv_row(FILE *f, const struct qs_sim_outcome *o)
{
	fprintf(f, "%llu,%llu,%u,%.6f,%u,%u,%u,%u,%u,%.6f,%.6f,%.6f,%d,%u,%d\n",
		(unsigned long long)o->request_id, (unsigned long long)o->decision_id, o->backend,
		(double)o->arrival_ns * 1e-6, o->prompt_tokens, o->gen_tokens, o->tenant,
		o->slo_class, o->class_index, (double)o->ttft_ns * 1e-6, (double)o->tpot_ns * 1e-6,
		(double)o->e2e_ns * 1e-6, o->slo_met, o->preemptions, o->prefix_cache_hit);
}

int
qs_report_plot(const char *dir, const struct qs_sim_config *c, const struct qs_cmp_row *rows,
	       uint32_t n, char *why, size_t whylen)
{
	static const char *const lower[QS_SIM_M__COUNT] = {"ttft", "tpot", "e2e"};
	char path[4096], script[2048], qdir[4096], qname[2 * QS_SIM_NAME_LEN],
	    qr[2 * QS_SIM_NAME_LEN];
	uint32_t m, i, j;
	FILE *f;
	int st;

	if (mkdir(dir, 0777) && errno != EEXIST) {
		snprintf(why, whylen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	qs_sim_gp_quote(dir, qdir, sizeof(qdir));
	qs_sim_gp_quote(c->name, qname, sizeof(qname));
	for (m = 0; m < QS_SIM_M__COUNT; m++) {
		for (i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "%s/%s-%s-%u.dat", dir, c->name, lower[m], i);
			f = fopen(path, "w");
			if (!f) {
				snprintf(why, whylen, "%s: %s", path, strerror(errno));
				return -1;
			}
			for (j = 0; j < rows[i].cdf_n[m]; j++)
				fprintf(f, "%.6f %.6f\n", rows[i].cdf_x[m][j], rows[i].cdf_p[m][j]);
			fclose(f);
		}
		snprintf(script, sizeof(script), "%s/%s-%s.gp", dir, c->name, lower[m]);
		f = fopen(script, "w");
		if (!f) {
			snprintf(why, whylen, "%s: %s", script, strerror(errno));
			return -1;
		}
		fprintf(f, "set terminal pngcairo size 900,600 noenhanced\n");
		fprintf(f, "set output '%s/%s-%s.png'\n", qdir, qname, lower[m]);
		fprintf(f, "set title '%s: %s CDF'\nset xlabel '%s (ms)'\nset ylabel 'fraction'\n",
			qname, metric_names[m], metric_names[m]);
		fprintf(f, "set logscale x\nset key bottom right\nset grid\n");
		fprintf(f, "plot ");
		for (i = 0; i < n; i++)
			fprintf(f, "%s'%s/%s-%s-%u.dat' using 1:2 with lines lw 2 title '%s'",
				i ? ", \\\n     " : "", qdir, qname, lower[m], i,
				qs_sim_gp_quote(rows[i].router, qr, sizeof(qr)));
		fprintf(f, "\n");
		fclose(f);
		/* gnuplot gets the script as an argument, through no shell, so no path
		 * can be taken for a command */
		{
			char *argv[] = {(char *)"gnuplot", script, NULL};
			pid_t pid;

			st = posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ) != 0 ? -1 : 0;
			if (st == 0 && waitpid(pid, &st, 0) != pid)
				st = -1;
		}
		if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			snprintf(why, whylen, "gnuplot failed on %s (is gnuplot installed?)",
				 script);
			return -1;
		}
	}
	return 0;
}
