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
/* Parses the compound options (--timesteps, --t-range, --classes, --seed),
 * checks --data and --model, then the whole of a->p (ddps_score_params_check);
 * 0 or -1 (usage). */
int score_args_finish(score_args *a, ddps_error *err);
void score_args_free(score_args *a);

/* The output options shared by `ddps select` and `ddps distill`, bound to
 * p (help texts with p's current values as defaults, kept in help, room
 * for SELECT_ARGS_MAX); returns how many. */
#define SELECT_ARGS_MAX 6
int select_args_table(ddps_select_params *p, cli_opt *opts, char (*help)[192]);
/* `ddps report`'s options bound to p, *store and *out (help texts kept in
 * help, room for REPORT_ARGS_MAX); returns how many. */
#define REPORT_ARGS_MAX 7
int report_args_table(ddps_report_params *p, const char **store, const char **out, cli_opt *opts, char (*help)[192]);

/* Sets the range of every integer option of command ("score", "select",
 * "report") that the library bounds (ddps_param_range): the CLI accepts
 * exactly what ddps_*_params_check accepts. */
void cli_library_ranges(const char *command, cli_opt *opts, int n);
/* --ipc N[,N...] within command's --ipc range; the count or -1 (usage). */
int cli_parse_ipc_list(const char *command, const char *s, int *out, int max, ddps_error *err);

#endif
