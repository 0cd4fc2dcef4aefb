/* ddps score: Stage I and II for every image of an ImageFolder, into a store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "pipeline/store.h"
#include "util/fs.h"

static const char *USAGE =
    "usage: ddps score --data DIR --model DIR --store FILE [options]\n\n"
    "Scores every image once (Stage I: which windows the label explains; Stage II: DIFT features),\n"
    "then clusters each class. Interrupt it at any time: rerunning the same command continues where\n"
    "it stopped. Then `ddps select --store FILE --out DIR --ipc N` writes distilled sets for any IPC\n"
    "and class subset without running the model again.";

int cmd_score(int argc, char **argv) {
    score_args a;
    memset(&a, 0, sizeof a);
    ddps_score_defaults(&a.o);
    ddps_opt opts[SCORE_ARGS_MAX + 1];
    int n = score_args_table(&a, opts);
    opts[n++] = (ddps_opt){"--store", OPT_STR, &a.o.store_path, "FILE", "the store (SQLite) to fill (required)", 0, 0};
    char **pos = ddps_malloc((size_t)argc * sizeof *pos);
    int npos;
    ddps_err err = {{0}};
    int pr = ddps_args_parse(USAGE, opts, n, argc, argv, pos, &npos, &err);
    int rc = pr;
    if (pr == 0 && npos) rc = ddps_fail(&err, "%s: unexpected argument (see --help)", pos[0]);
    if (rc == 0) rc = score_args_finish(&a, &err);
    if (rc == 0 && !a.o.store_path) rc = ddps_fail(&err, "--store: required (see --help)");
    if (rc == 0) rc = ddps_store_name_check(a.o.store_path, &err);
    int usage = rc != 0; /* bad invocation: exit 2, like other usage errors */
    if (rc == 0) rc = ddps_score_run(&a.o, NULL, &err);
    free(pos);
    score_args_free(&a);
    if (pr == 1) return 0;
    if (rc != 0) {
        fprintf(stderr, "ddps score: %s\n", err.msg);
        return usage ? 2 : 1;
    }
    return 0;
}
