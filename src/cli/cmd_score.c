/* ddps score: Stage I and II for every image of an ImageFolder, into a store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/scale.h"
#include "pipeline/shard.h"
#include "pipeline/store.h"
#include "util/fs.h"

static const char *USAGE =
    "usage: ddps score --data DIR --model DIR --store FILE [options]\n\n"
    "Scores every image once (Stage I: which windows the label explains; Stage II: DIFT features),\n"
    "then clusters each class. Interrupt it at any time: rerunning the same command continues where\n"
    "it stopped. Then `ddps select --store FILE --out DIR --ipc N` writes distilled sets for any IPC\n"
    "and class subset without running the model again.\n\n"
    "Many processes: `mpirun -n N ddps score ...` (or srun) scores share R of N on every rank into\n"
    "FILE.shard-R-of-N and ends with the merged FILE. Without MPI, `--shard K/N` scores one share\n"
    "(a Slurm job array sets it from SLURM_ARRAY_TASK_ID) and `ddps merge` joins the shards.";

int cmd_score(int argc, char **argv) {
    score_args a;
    memset(&a, 0, sizeof a);
    ddps_score_defaults(&a.o);
    const char *shard = NULL;
    ddps_opt opts[SCORE_ARGS_MAX + 2];
    int n = score_args_table(&a, opts);
    opts[n++] = (ddps_opt){"--store", OPT_STR, &a.o.store_path, "FILE", "the store (SQLite) to fill (required)", 0, 0};
    opts[n++] = (ddps_opt){"--shard", OPT_STR, &shard, "K/N",
                           "score share K of N (0 <= K < N) into FILE.shard-K-of-N; join with ddps merge", 0, 0};
    char **pos = ddps_malloc((size_t)argc * sizeof *pos);
    int npos;
    ddps_err err = {{0}};
    int pr = ddps_args_parse(USAGE, opts, n, argc, argv, pos, &npos, &err);
    int rc = pr;
    if (pr == 0 && npos) rc = ddps_fail(&err, "%s: unexpected argument (see --help)", pos[0]);
    if (rc == 0) rc = score_args_finish(&a, &err);
    if (rc == 0 && !a.o.store_path) rc = ddps_fail(&err, "--store: required (see --help)");
    if (rc == 0 && shard) rc = ddps_shard_parse(shard, &a.o.shard_k, &a.o.shard_n, &err);
    const char *how;
    int launched = ddps_launch_size(&how);
    if (rc == 0 && launched > 1 && shard)
        rc = ddps_fail(&err, "--shard: not with a parallel launch (%s=%d): each rank takes its own share", how,
                       launched);
    if (rc == 0 && launched > 1 && !ddps_have_mpi())
        rc = ddps_fail(&err,
                       "started as one of %d processes (%s) but MPI is unavailable in this build (rebuild with Open "
                       "MPI, libopenmpi-dev), or run the shares with --shard K/N and join them with ddps merge",
                       launched, how);
    if (rc == 0 && !shard && launched == 1 && ddps_slurm_array_share(&a.o.shard_k, &a.o.shard_n))
        ddps_info("Slurm array task: share %d/%d", a.o.shard_k, a.o.shard_n);
    if (rc == 0) rc = ddps_store_name_check(a.o.store_path, &err);
    int usage = rc != 0; /* bad invocation: exit 2, like other usage errors */
    char *shard_path = NULL;
    if (pr == 0 && rc == 0 && launched > 1) {
        int status = ddps_mpi_score(&a.o);
        free(pos);
        score_args_free(&a);
        return status;
    }
    if (rc == 0 && a.o.shard_n > 0) {
        a.o.store_path = shard_path = ddps_shard_path(a.o.store_path, a.o.shard_k, a.o.shard_n);
    }
    if (rc == 0) rc = ddps_score_run(&a.o, NULL, &err);
    if (rc == 0 && a.o.shard_n > 0 && ddps_verbosity > 0)
        ddps_info("%s: share %d/%d complete; when all are: ddps merge --store FILE FILE.shard-*-of-%d", shard_path,
                  a.o.shard_k, a.o.shard_n, a.o.shard_n);
    free(pos);
    free(shard_path);
    score_args_free(&a);
    if (pr == 1) return 0;
    if (rc != 0) {
        fprintf(stderr, "ddps score: %s\n", err.msg);
        return usage || err.kind == DDPS_KIND_USAGE ? 2 : 1; /* values out of range found late are usage too */
    }
    return 0;
}
