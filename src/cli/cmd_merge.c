/* ddps merge: joins the shard stores of a sharded scoring job into one store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "ddps.h"

static const char *USAGE =
    "usage: ddps merge --store OUT [--force] SHARD...\n\n"
    "Checks the shard stores of one job (`ddps score --shard K/N` writes STORE.shard-K-of-N): same\n"
    "settings and model, every share once and complete. Then copies them, clusters every class and\n"
    "writes OUT, the store a single `ddps score` would have written. OUT appears only when complete\n"
    "(it is written aside and renamed); on any problem nothing is written there. An existing OUT is\n"
    "replaced only when it is a finished store of the same job; anything else only with --force.";

int cmd_merge(int argc, char **argv) {
    const char *out = NULL;
    int force = 0;
    cli_opt opts[] = {
        {"--store", CLI_OPT_STR, &out, "OUT", "the merged store to write (required)", 0, 0},
        {"--force", CLI_OPT_FLAG, &force, NULL, "replace an existing OUT whatever it is", 0, 0},
    };
    char **pos = cli_malloc((size_t)argc * sizeof *pos);
    int npos = 0;
    ddps_error err;
    cli_error_clear(&err);
    int rc = cli_args_parse(USAGE, opts, 2, argc, argv, pos, &npos, &err);
    if (rc == 1) {
        free(pos);
        return 0;
    }
    if (rc == 0 && !out) rc = cli_fail_usage(&err, "--store: required (see --help)");
    if (rc == 0 && npos == 0) rc = cli_fail_usage(&err, "no shard stores given (see --help)");
    ddps_hooks hooks;
    cli_hooks_init(&hooks);
    if (rc == 0 && ddps_run_merge_flags(out, (const char *const *)pos, npos, force ? DDPS_MERGE_FORCE : 0, &hooks, &err) != DDPS_OK) rc = -1;
    if (rc == 0) cli_log(2, "%s: merged %d shard%s", out, npos, npos > 1 ? "s" : "");
    free(pos);
    if (rc != 0) fprintf(stderr, "ddps merge: %s\n", err.message);
    return cli_exit_code(&err);
}
