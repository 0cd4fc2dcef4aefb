/* Option tables shared between commands: scoring (`score`, `distill`) and
 * output (`select`, `distill`). The defaults shown by --help are printed
 * from ddps_score_params_init / ddps_select_params_init, never written here. */
#ifndef DDPS_CLI_OPTIONS_H
#define DDPS_CLI_OPTIONS_H

#include "cli/args.h"
#include "ddps.h"

#define SCORE_ARGS_MAX 32

typedef struct {
    ddps_score_params p;     /* ddps_score_params_init, then the options */
    const char *data_dir, *model_dir, *store_path;
    const char *timesteps, *t_range, *classes, *seed;
    char *classes_buf;
    const char **class_list;
    char help[SCORE_ARGS_MAX][192]; /* help texts with the defaults filled in */
} score_args;

/* Sets a to the library's defaults (no options given). */
void score_args_init(score_args *a);
/* Fills opts (room for SCORE_ARGS_MAX) with the scoring options bound to a;
 * returns how many. */
int score_args_table(score_args *a, cli_opt *opts);
/* Parses the compound options (--timesteps, --t-range, --classes, --seed)
 * and checks --data and --model; 0 or -1 (usage). */
int score_args_finish(score_args *a, ddps_error *err);
void score_args_free(score_args *a);

/* The output options shared by `ddps select` and `ddps distill`, bound to
 * p (help texts with p's current values as defaults, kept in help, room
 * for SELECT_ARGS_MAX); returns how many. */
#define SELECT_ARGS_MAX 6
int select_args_table(ddps_select_params *p, cli_opt *opts, char (*help)[192]);
/* Checks the values of those options that have a fixed set (--format, --folder-names); 0 or -1 (usage). */
int select_args_check(const ddps_select_params *p, ddps_error *err);

#endif
