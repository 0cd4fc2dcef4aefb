/* The library code behind the CLI's developer commands (`ddps bench`,
 * `ddps probe`, `ddps demo`): internal entry points that src/api/tools.c
 * exposes through ddps.h's tools section, and the report-line helper they
 * share. Every entry point returns 0 or -1 with one line in err that starts
 * with the tool's name ("bench load: ..."); usage errors have kind usage. */
#ifndef DDPS_TOOLS_TOOLS_H
#define DDPS_TOOLS_TOOLS_H

#include <stdio.h>

#include "ddps.h"
#include "util/err.h"

/* Sends one formatted report line (no newline) to h->log at level
 * DDPS_LOG_OUTPUT; dropped when h or h->log is NULL. */
void ddps_tools_out(const ddps_hooks *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sends text line by line (split at '\n'; a trailing newline ends the last
 * line) the same way. */
void ddps_tools_out_text(const ddps_hooks *h, const char *text);
/* Peak resident set (VmHWM of /proc/self/status) in MB; 0 when unknown. */
double ddps_tools_peak_rss_mb(void);
/* Resident set now (VmRSS) in MB; 0 when unknown. */
double ddps_tools_rss_mb(void);

/* bench.c: `ddps bench text|vae|unet|load` and the dispatch of all of them. */
int ddps_tools_bench(const ddps_bench_params *p, const ddps_hooks *h, ddps_err *err);
/* bench_score.c: `ddps bench score` (batch images per scoring call). */
int ddps_tools_bench_score(const ddps_bench_params *p, const char *precision, int batch, const ddps_hooks *h,
                           ddps_err *err);
/* bench_precision.c: `ddps bench precision`. */
int ddps_tools_bench_precision(const ddps_bench_params *p, const char *precision, const ddps_hooks *h, ddps_err *err);
/* Spearman rank correlation of a[n] and b[n] (ties averaged); 1 when n < 2. */
double ddps_spearman(const float *a, const float *b, int n);

/* probe.c: `ddps probe`. */
int ddps_tools_probe(const ddps_probe_params *p, const ddps_hooks *h, ddps_err *err);

/* demo_run.c: `ddps demo` (fixtures, then distill). */
int ddps_tools_demo_write(const char *dir, const ddps_demo_params *p, ddps_err *err);
int ddps_tools_demo_run(const char *dir, const ddps_demo_params *p, const ddps_hooks *h, ddps_err *err);

/* world_eval.c: `ddps world-eval`. */
int ddps_tools_world_eval(const ddps_world_eval_params *p, ddps_world_eval_result *out, const ddps_hooks *h,
                          ddps_err *err);

#endif
