/* ddps report: a static HTML report of a store (overview, one page per class). */
#include <stdio.h>
#include <stdlib.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "ddps.h"

static const char *USAGE =
    "usage: ddps report --store FILE --out DIR [--data ROOT] [--ipc N] [--thumb PX] [--threads N]\n"
    "\n"
    "Writes DIR/index.html (overview: model, settings, counts, runs, one row per class) and one page per\n"
    "class (distilled images at IPC N as `ddps select` writes them, clusters, score histogram, every image\n"
    "with its Stage-I heatmap and candidate boxes, skipped files). Opens from file:// without network.";

int cmd_report(int argc, char **argv) {
    ddps_report_params p;
    ddps_report_params_init(&p);
    const char *store = NULL, *out = NULL;
    char help[REPORT_ARGS_MAX][192];
    cli_opt opts[REPORT_ARGS_MAX];
    int nopts = report_args_table(&p, &store, &out, opts, help);
    ddps_error err;
    cli_error_clear(&err);
    int rc = cli_args_options(USAGE, opts, nopts, argc, argv, &err);
    if (rc == 1) return 0;
    if (rc == 0 && !store) rc = cli_fail_usage(&err, "--store: required (see --help)");
    if (rc == 0 && !out) rc = cli_fail_usage(&err, "--out: required (see --help)");
    if (rc == 0 && ddps_report_params_check(&p, &err) != DDPS_OK) rc = -1;
    ddps_hooks hooks;
    cli_hooks_init(&hooks);
    if (rc == 0 && ddps_run_report(store, out, &p, &hooks, &err) != DDPS_OK) rc = -1;
    if (rc != 0) fprintf(stderr, "ddps report: %s\n", err.message);
    return cli_exit_code(&err);
}
