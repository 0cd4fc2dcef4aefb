/* ddps select: distilled sets for any IPC from a store, no model evaluation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "ddps.h"

#define MAX_IPCS 64

static const char *USAGE =
    "usage: ddps select --store FILE --out DIR --ipc N[,N...] [--classes a,b,...] [--top-clusters N]\n"
    "                   [--mosaic-max-ipc N] [--output-size PX] [--format png|jpg] [--data DIR]\n"
    "                   [--threads N] [--baseline ddps|random-windows|random-images [--seed S]]\n"
    "\n"
    "Writes DIR/ipc<N>/<class>/*.png (torchvision ImageFolder) and DIR/ipc<N>/manifest.{csv,json}\n"
    "for every N, from a store filled by `ddps score`. No model is loaded.\n"
    "The paper's comparison rows, for `ddps eval`: --top-clusters 0 (w/o clusters: the best scores\n"
    "alone), --baseline random-windows (windows of the scored size anywhere in random pictures, laid\n"
    "out as ddps's patches) and --baseline random-images (whole random pictures, never mosaics).";

typedef struct {
    ddps_select_params p;
    const char *store, *out, *ipc_s, *classes_s;
    int ipcs[MAX_IPCS], n_ipc;
    char *names_buf;
    const char **names;
} select_args;

/* Checks the parsed options and fills the ipc list and class subset; 0 or -1 (usage). */
static int finish(select_args *a, ddps_error *err) {
    if (!a->store) return cli_fail_usage(err, "--store: required (see --help)");
    if (ddps_check_store_name(a->store, err) != DDPS_OK) return -1;
    if (!a->out) return cli_fail_usage(err, "--out: required (see --help)");
    if (!a->ipc_s) return cli_fail_usage(err, "--ipc: required (see --help)");
    a->n_ipc = cli_parse_ipc_list("select", a->ipc_s, a->ipcs, MAX_IPCS, err);
    if (a->n_ipc < 0) return -1;
    if (a->classes_s) {
        if (cli_split_names("--classes", a->classes_s, &a->names_buf, &a->names, &a->p.n_classes, err) != 0)
            return -1;
        a->p.classes = a->names;
    }
    return ddps_select_params_check(&a->p, a->ipcs, a->n_ipc, err) == DDPS_OK ? 0 : -1;
}

int cmd_select(int argc, char **argv) {
    select_args a;
    memset(&a, 0, sizeof a);
    ddps_select_params_init(&a.p);
    char help[SELECT_ARGS_MAX][192];
    int seed = 0;
    cli_opt opts[9 + SELECT_ARGS_MAX] = {
        {"--store", CLI_OPT_STR, &a.store, "FILE", "store written by ddps score (required)", 0, 0},
        {"--out", CLI_OPT_STR, &a.out, "DIR", "output folder; DIR/ipc<N> is replaced (required)", 0, 0},
        {"--ipc", CLI_OPT_STR, &a.ipc_s, "N[,N...]", "images per class, one set per value (required)", 0, 0},
        {"--classes", CLI_OPT_STR, &a.classes_s, "a,b,...", "only these class folders (default: all)", 0, 0},
        {"--data", CLI_OPT_STR, &a.p.data_root, "DIR", "where the source images are (default: as scored)", 0, 0},
        {"--data-root", CLI_OPT_STR, &a.p.data_root, "DIR", NULL, 0, 0}, /* alias of --data, select's first name for it */
        {"--threads", CLI_OPT_INT, &a.p.threads, "N", "image writing threads (0 = all cores)", 0, 0},
        {"--baseline", CLI_OPT_STR, &a.p.baseline, "NAME", "ddps (default), random-windows or random-images", 0, 0},
        {"--seed", CLI_OPT_INT, &seed, "S", "the baselines' random choices (0)", 0, 2147483647},
    };
    cli_library_ranges("select", opts, 9);
    int nopts = 9 + select_args_table(&a.p, opts + 9, help);
    ddps_error err;
    cli_error_clear(&err);
    int rc = cli_args_options(USAGE, opts, nopts, argc, argv, &err);
    a.p.seed = (unsigned long long)seed;
    if (rc == 0) rc = finish(&a, &err);
    ddps_hooks hooks;
    cli_hooks_init(&hooks);
    if (rc == 0 && ddps_run_select(a.store, a.out, a.ipcs, a.n_ipc, &a.p, &hooks, &err) != DDPS_OK) rc = -1;
    free(a.names_buf);
    free(a.names);
    if (rc == 1) return 0;
    if (rc != 0) fprintf(stderr, "ddps select: %s\n", err.message);
    return cli_exit_code(&err);
}
