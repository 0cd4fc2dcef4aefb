/* Option tables shared between commands: scoring (`score`, `distill`) and
 * output (`select`, `distill`). */
#ifndef DDPS_CLI_OPTIONS_H
#define DDPS_CLI_OPTIONS_H

#include "cli/args_old.h"
#include "pipeline/score.h"
#include "pipeline/select.h"

typedef struct {
    ddps_score_opts o;
    const char *timesteps, *t_range, *classes, *seed;
    char *classes_buf;
    const char **class_list;
} score_args;

#define SCORE_ARGS_MAX 32

/* Fills opts (room for SCORE_ARGS_MAX) with the scoring options bound to a;
 * returns how many. */
int score_args_table(score_args *a, ddps_opt *opts);
/* Parses the compound options (--timesteps, --t-range, --classes, --seed). */
int score_args_finish(score_args *a, ddps_err *err);
void score_args_free(score_args *a);

/* The output options shared by `ddps select` and `ddps distill`; returns how many. */
#define SELECT_ARGS_MAX 6
int select_args_table(ddps_select_opts *o, ddps_opt *opts);
/* Checks the values of those options that have a fixed set (--folder-names). */
int select_args_check(const ddps_select_opts *o, ddps_err *err);

#endif
