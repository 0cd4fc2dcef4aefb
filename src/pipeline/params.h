/* The one check of each command's parameters (the public structs of
 * include/ddps.h, used inside too): `ddps score`'s, `ddps select`'s and
 * `ddps report`'s. The CLI (through ddps_*_params_check and
 * ddps_param_range), the library drivers and the engine all call these, so
 * that what one accepts the others accept. Every numeric bound is written
 * once, in the range table of params.c.
 *
 * Only what can be checked without opening anything: the bounds that
 * depend on the model (a timestep below T) or on the images are checked
 * where those are known. Failures are usage errors naming the option as the
 * CLI spells it ("--clusters 70000: must be between 1 and 65536"). */
#ifndef DDPS_PIPELINE_PARAMS_H
#define DDPS_PIPELINE_PARAMS_H

#include "ddps.h"
#include "util/err.h"

/* The range of a command's integer option ("score", "--clusters"): 0 and
 * *lo, *hi set, or -1 when the command has no such bounded option. */
int ddps_range_get(const char *command, const char *option, long *lo, long *hi);

/* The defaults (ddps_score_params_init, ddps_select_params_init, ddps_report_params_init). */
void ddps_score_params_defaults(ddps_score_params *p);
void ddps_select_params_defaults(ddps_select_params *p);
void ddps_report_params_defaults(ddps_report_params *p);

/* 0, or -1 with a usage error naming the first value out of range. */
int ddps_score_check(const ddps_score_params *p, ddps_err *err);
/* ipc[n_ipc]: the IPCs asked for (n_ipc >= 1). */
int ddps_select_check(const ddps_select_params *p, const int *ipc, int n_ipc, ddps_err *err);
/* ddps_select_params.baseline by name: NULL and "ddps" are DDPS_BASELINE_NONE;
 * -1 for a name that is none of them. */
enum { DDPS_BASELINE_NONE, DDPS_BASELINE_RANDOM_WINDOWS, DDPS_BASELINE_RANDOM_IMAGES };
int ddps_select_baseline_kind(const char *name);
int ddps_report_check(const ddps_report_params *p, ddps_err *err);

/* The timesteps p means (the list, or n_timesteps evenly spaced integers in
 * [t_lo*T, t_hi*T]); returns the count or -1 with err (usage). */
int ddps_score_timesteps(const ddps_score_params *p, int T, int *out, ddps_err *err);

/* The output file extension for a checked format: "png" or "jpg" ("jpeg" is "jpg"). */
const char *ddps_format_ext(const char *format);

#endif
