/*
 * sim_report.h - qsteer-sim's output: run tables and JSON, compare tables with
 * confidence intervals, per-request CSV, gnuplot CDFs. Program-side only (it
 * prints); the library never does.
 */
#ifndef QSTEER_SIM_REPORT_H
#define QSTEER_SIM_REPORT_H

#include <stdio.h>

#include "qsteer/compare.h"
#include "qsteer/sim.h"

/* The compare's rows, columns and intervals are libqsteer-sim's (compare.h);
 * qs_report_cmp_values and qs_report_cmp_finish are its qs_cmp_values and
 * qs_cmp_finish under the names qsteer-load calls. */

void qs_report_run_table(FILE *f, const struct qs_sim_config *c, const char *router, uint64_t seed,
			 const struct qs_sim_metrics *m, uint64_t fallbacks);
void qs_report_run_json(FILE *f, const struct qs_sim_config *c, const char *router, uint64_t seed,
			const struct qs_sim_metrics *m, uint64_t fallbacks);
void qs_report_cmp_values(const struct qs_sim_metrics *m, double out[QS_CMP_COLS]);
void qs_report_cmp_finish(struct qs_cmp_row *r, uint32_t k);
void qs_report_cmp_table(FILE *f, const struct qs_sim_config *c, const struct qs_cmp_row *rows,
			 uint32_t n, uint32_t k, uint64_t seed0);
void qs_report_cmp_json(FILE *f, const struct qs_sim_config *c, const struct qs_cmp_row *rows,
			uint32_t n, uint32_t k, uint64_t seed0);
/* PNG CDFs of TTFT, TPOT and E2E per router under dir (gnuplot); 0 or -1 with why. */
int qs_report_plot(const char *dir, const struct qs_sim_config *c, const struct qs_cmp_row *rows,
		   uint32_t n, char *why, size_t whylen);
/* s as a JSON string literal, quotes and escapes included. */
void qs_report_json_str(FILE *f, const char *s);
void qs_report_csv_header(FILE *f);
void qs_report_csv_row(FILE *f, const struct qs_sim_outcome *o);

#endif /* QSTEER_SIM_REPORT_H */
