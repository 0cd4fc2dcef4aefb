/* ddps merge: joins the shard stores of a sharded scoring job into one store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/args_old.h"
#include "pipeline/shard.h"
#include "util/fs.h"

static const char *USAGE =
    "usage: ddps merge --store OUT SHARD...\n\n"
    "Checks the shard stores of one job (`ddps score --shard K/N` writes STORE.shard-K-of-N): same\n"
    "settings and model, every share once and complete. Then copies them, clusters every class and\n"
    "writes OUT, the store a single `ddps score` would have written. OUT appears only when complete\n"
    "(it is written aside and renamed); on any problem nothing is written there.";

int cmd_merge(int argc, char **argv) {
    const char *out = NULL;
    ddps_opt opts[] = {
        {"--store", OPT_STR, &out, "OUT", "the merged store to write (required)", 0, 0},
    };
    char **pos = ddps_malloc((size_t)argc * sizeof *pos);
    int npos = 0;
    ddps_err err = {{0}};
    int pr = ddps_args_parse(USAGE, opts, 1, argc, argv, pos, &npos, &err);
    int rc = pr;
    if (rc == 0 && !out) rc = ddps_fail(&err, "--store: required (see --help)");
    if (rc == 0 && npos == 0) rc = ddps_fail(&err, "no shard stores given (see --help)");
    int usage = rc != 0;
    if (rc == 0) rc = ddps_merge_run(out, pos, npos, &err);
    if (rc == 0 && ddps_verbosity > 0) ddps_info("%s: merged %d shard%s", out, npos, npos > 1 ? "s" : "");
    free(pos);
    if (pr == 1) return 0;
    if (rc != 0) {
        fprintf(stderr, "ddps merge: %s\n", err.msg);
        return usage ? 2 : 1;
    }
    return 0;
}
