/*
 * train_report.h - qsteer-train's output (program-side, like sim/sim_report.h): the
 * eval table, its JSON and bar chart, the learning curve, and mkdir -p for --plot
 * and --out-dir.
 */
#ifndef QSTEER_TRAINER_TRAIN_REPORT_H
#define QSTEER_TRAINER_TRAIN_REPORT_H

#include <stdio.h>

#include "train_eval.h"

/* mkdir -p: create dir and any missing parents; 0 if it exists afterwards. */
int qs_train_mkdir_parents(const char *dir);
/* DIR/learning-curve.png from the --log CSV (gnuplot); says why not on stderr. */
void qs_train_plot_curve(const char *dir, const char *csv);
/* e's table to out (its JSON to stdout with json), DIR/compare-NAME.png with plot. */
void qs_train_eval_print(FILE *out, const struct qs_train_eval *e, int json, const char *plot);

#endif /* QSTEER_TRAINER_TRAIN_REPORT_H */
