/* ddps distill: score (if not done yet) then select, in one command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/scale.h"
#include "ddps.h"

#define MAX_IPCS 64

static const char *USAGE =
    "usage: ddps distill --data DIR --model DIR --out DIR --ipc N[,N...] [options]\n\n"
    "Scores the dataset into a store (default OUT/ddps.sqlite; an interrupted run continues where it\n"
    "stopped) and writes OUT/ipc<N>/<class>/*.png with manifests for every N. Other IPCs or class\n"
    "subsets later: `ddps select --store OUT/ddps.sqlite --out DIR --ipc N` (no model evaluation).";

typedef struct {
    score_args a;
    ddps_select_params s;
    const char *out, *ipc_s;
    int report, ipcs[MAX_IPCS], n_ipc;
    char help[SELECT_ARGS_MAX][192];
} distill_args;

/* Parses the command line into d; 0, 1 (--help) or -1 (usage). */
static int parse(int argc, char **argv, distill_args *d, ddps_error *err) {
    cli_opt opts[SCORE_ARGS_MAX + 4 + SELECT_ARGS_MAX];
    int n = score_args_table(&d->a, opts);
    opts[n++] = (cli_opt){"--out", CLI_OPT_STR, &d->out, "DIR", "output folder (required)", 0, 0};
    opts[n++] = (cli_opt){"--ipc", CLI_OPT_STR, &d->ipc_s, "N[,N...]", "images per class, one set per value (required)", 0, 0};
    opts[n++] = (cli_opt){"--store", CLI_OPT_STR, &d->a.store_path, "FILE", "the store (default OUT/ddps.sqlite)", 0, 0};
    opts[n++] = (cli_opt){"--report", CLI_OPT_FLAG, &d->report, NULL,
                          "also write OUT/report/index.html (ddps report, at the first IPC)", 0, 0};
    n += select_args_table(&d->s, opts + n, d->help);
    return cli_args_options(USAGE, opts, n, argc, argv, err);
}

/* Checks the parsed options; 0 or -1 (usage). */
static int finish(distill_args *d, ddps_error *err) {
    if (score_args_finish(&d->a, err) != 0) return -1;
    if (!d->out) return cli_fail_usage(err, "--out: required (see --help)");
    if (!d->ipc_s) return cli_fail_usage(err, "--ipc: required (see --help)");
    if (d->a.store_path && ddps_check_store_name(d->a.store_path, err) != DDPS_OK) return -1;
    d->n_ipc = cli_parse_ipc_list("select", d->ipc_s, d->ipcs, MAX_IPCS, err);
    if (d->n_ipc < 0) return -1;
    const char *how;
    int launched = cli_launch_size(&how);
    if (launched > 1)
        return cli_fail_usage(err, "started as one of %d processes (%s): distill runs in one process; run `ddps "
                              "score` under mpirun/srun (it merges the ranks' shards), then `ddps select`",
                              launched, how);
    return ddps_select_params_check(&d->s, d->ipcs, d->n_ipc, err) == DDPS_OK ? 0 : -1;
}

int cmd_distill(int argc, char **argv) {
    distill_args d;
    memset(&d, 0, sizeof d);
    score_args_init(&d.a);
    ddps_select_params_init(&d.s);
    ddps_error err;
    cli_error_clear(&err);
    int rc = parse(argc, argv, &d, &err);
    if (rc == 0) rc = finish(&d, &err);
    ddps_hooks hooks;
    cli_hooks_init(&hooks);
    if (rc == 0 && ddps_run_distill(&d.a.p, &d.s, d.a.data_dir, d.a.model_dir, d.out, d.a.store_path, d.ipcs,
                                    d.n_ipc, d.report, &hooks, NULL, &err) != DDPS_OK)
        rc = -1;
    score_args_free(&d.a);
    if (rc == 1) return 0;
    if (rc != 0) fprintf(stderr, "ddps distill: %s\n", err.message);
    return cli_exit_code(&err);
}
