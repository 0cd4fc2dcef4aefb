/* The scoring options shared by `ddps score` and `ddps distill`. */
#ifndef DDPS_CLI_SCORE_ARGS_H
#define DDPS_CLI_SCORE_ARGS_H

#include "cli/args.h"
#include "pipeline/score.h"

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

/* Splits "a,b,c" into names pointing into *buf (heap); empty names are an error. */
int ddps_split_names(const char *flag, const char *s, char **buf, const char ***names, int *n, ddps_err *err);

#endif
