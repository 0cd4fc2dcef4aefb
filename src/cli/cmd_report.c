/* ddps report: a static HTML report of a store (overview, one page per class). */
#include <stdio.h>
#include <stdlib.h>

#include "cli/args.h"
#include "cli/commands.h"
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
    char h_ipc[96], h_thumb[96];
    snprintf(h_ipc, sizeof h_ipc, "distilled set shown (default %d)", p.ipc);
    snprintf(h_thumb, sizeof h_thumb, "longest side of image thumbnails (default %d)", p.thumb);
    cli_opt opts[] = {
        {"--store", CLI_OPT_STR, &store, "FILE", "store written by ddps score (required)", 0, 0},
        {"--out", CLI_OPT_STR, &out, "DIR", "report folder (required)", 0, 0},
        {"--data", CLI_OPT_STR, &p.data_root, "ROOT", "where the source images are (default: as scored)", 0, 0},
        {"--data-root", CLI_OPT_STR, &p.data_root, "ROOT", NULL, 0, 0}, /* alias of --data, as select had it */
        {"--ipc", CLI_OPT_INT, &p.ipc, "N", h_ipc, 1, 1000000},
        {"--thumb", CLI_OPT_INT, &p.thumb, "PX", h_thumb, 16, 1024},
        {"--threads", CLI_OPT_INT, &p.threads, "N", "image writing threads (0 = all cores)", 0, 4096},
    };
    int nopts = (int)(sizeof opts / sizeof *opts);
    ddps_error err;
    cli_error_clear(&err);
    int rc = cli_args_options(USAGE, opts, nopts, argc, argv, &err);
    if (rc == 1) return 0;
    if (rc == 0 && !store) rc = cli_fail_usage(&err, "--store: required (see --help)");
    if (rc == 0 && !out) rc = cli_fail_usage(&err, "--out: required (see --help)");
    ddps_hooks hooks;
    cli_hooks_init(&hooks);
    if (rc == 0 && ddps_run_report(store, out, &p, &hooks, &err) != DDPS_OK) rc = -1;
    if (rc != 0) fprintf(stderr, "ddps report: %s\n", err.message);
    return cli_exit_code(&err);
}
