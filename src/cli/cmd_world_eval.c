/* ddps world-eval: the method measured on the toy world (ddps_world_eval). */
#include <stdio.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "ddps.h"

static const char *USAGE =
    "usage: ddps world-eval --store STORE --world DIR [--split NAME] [--ipc 1,10,50] [--json]\n\n"
    "Measures a store scored on a split of the toy world (ddps demo --world-only) against the world's\n"
    "truth (DIR/boxes.json): the pointing game of the Stage-I map, the best window's IoU, DIFT clusters\n"
    "against the object variants, and the patches select picks; each against its random baseline.";

int cmd_world_eval(int argc, char **argv) {
    ddps_world_eval_params p;
    ddps_world_eval_params_init(&p);
    const char *ipc = NULL;
    int seed = 0;
    cli_opt opts[] = {
        {"--store", CLI_OPT_STR, &p.store, "STORE", "store scored on one split of the world", 0, 0},
        {"--world", CLI_OPT_STR, &p.world, "DIR", "the world's folder (boxes.json)", 0, 0},
        {"--split", CLI_OPT_STR, &p.split, "NAME", "boxes.json prefix (default: the store's data folder name)", 0, 0},
        {"--ipc", CLI_OPT_STR, &ipc, "LIST", "IPCs whose selections are measured (1,10,50)", 0, 0},
        {"--top-clusters", CLI_OPT_INT, &p.top_clusters, "N", "as select (10)", 0, 0},
        {"--mosaic-max-ipc", CLI_OPT_INT, &p.mosaic_max_ipc, "N", "as select (10)", 0, 0},
        {"--seed", CLI_OPT_INT, &seed, "S", "clustering and random baselines (0)", 0, 2147483647},
        {"--json", CLI_OPT_FLAG, &p.json, NULL, "end with one JSON line of the overall figures", 0, 0},
    };
    cli_library_ranges("select", opts, (int)(sizeof opts / sizeof *opts));
    ddps_error err;
    int pr = cli_args_options(USAGE, opts, (int)(sizeof opts / sizeof *opts), argc, argv, &err);
    if (pr == 1) return 0;
    if (pr == 0 && ipc) {
        p.n_ipc = cli_parse_ipc_list("select", ipc, p.ipc, DDPS_WORLD_EVAL_MAX_IPC, &err);
        if (p.n_ipc < 0) pr = -1;
    }
    p.seed = (uint64_t)seed;
    ddps_hooks h;
    cli_hooks_init(&h);
    if (pr != 0 || ddps_world_eval(&p, NULL, &h, &err) != DDPS_OK) {
        fprintf(stderr, "ddps %s\n", err.message);
        return cli_exit_code(&err);
    }
    return 0;
}
