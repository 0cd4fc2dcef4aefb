/* ddps score: Stage I and II for every image of an ImageFolder, into a store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/scale.h"
#include "ddps.h"

static const char *USAGE =
    "usage: ddps score --data DIR --model DIR --store FILE [options]\n\n"
    "Scores every image once (Stage I: which windows the label explains; Stage II: DIFT features),\n"
    "then clusters each class. Interrupt it at any time: rerunning the same command continues where\n"
    "it stopped. Then `ddps select --store FILE --out DIR --ipc N` writes distilled sets for any IPC\n"
    "and class subset without running the model again.\n\n"
    "Many processes: `mpirun -n N ddps score ...` (or srun) scores share R of N on every rank into\n"
    "FILE.shard-R-of-N and ends with the merged FILE. Without MPI, `--shard K/N` scores one share\n"
    "(a Slurm job array sets it from SLURM_ARRAY_TASK_ID) and `ddps merge` joins the shards.";

/* How the run is split: --shard, a parallel launch (the MPI job) or a Slurm
 * array task; sets a->p's shard and mpi fields. 0 or -1 (usage). */
static int plan_launch(score_args *a, const char *shard, ddps_error *err) {
    const char *how;
    int launched = cli_launch_size(&how);
    if (shard && ddps_parse_shard(shard, &a->p.shard_k, &a->p.shard_n, err) != DDPS_OK) return -1;
    if (launched > 1 && shard)
        return cli_fail_usage(err, "--shard: not with a parallel launch (%s=%d): each rank takes its own share", how,
                              launched);
    if (launched > 1 && !ddps_have_mpi())
        return cli_fail_usage(err,
                              "started as one of %d processes (%s) but MPI is unavailable in this build (rebuild "
                              "with Open MPI, libopenmpi-dev), or run the shares with --shard K/N and join them "
                              "with ddps merge",
                              launched, how);
    if (launched > 1) {
        a->p.mpi = 1;
        /* the other ranks are quiet unless -v; rank 0 draws the job's progress when started from a terminal */
        if (cli_launch_rank() > 0 && cli_verbosity == 1) cli_verbosity = 0;
        if (cli_launch_rank() == 0) cli_progress_force = cli_launched_from_terminal();
    } else if (!shard && cli_slurm_array_share(&a->p.shard_k, &a->p.shard_n)) {
        cli_log(2, "Slurm array task: share %d/%d", a->p.shard_k, a->p.shard_n);
    }
    return 0;
}

/* Parses the command line into a (and the --store / --shard values); 0, 1 (--help) or -1. */
static int parse(int argc, char **argv, score_args *a, const char **shard, ddps_error *err) {
    cli_opt opts[SCORE_ARGS_MAX + 2];
    int n = score_args_table(a, opts);
    opts[n++] = (cli_opt){"--store", CLI_OPT_STR, &a->store_path, "FILE", "the store (SQLite) to fill (required)", 0, 0};
    opts[n++] = (cli_opt){"--shard", CLI_OPT_STR, shard, "K/N",
                          "score share K of N (0 <= K < N) into FILE.shard-K-of-N; join with ddps merge", 0, 0};
    return cli_args_options(USAGE, opts, n, argc, argv, err);
}

/* s as one shell word: unchanged when it is plain, else in single quotes. */
static char *shell_quote(const char *s) {
    if (s[0] && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./-+:,=@%") == strlen(s))
        return cli_strdup(s);
    char *q = cli_malloc(4 * strlen(s) + 3), *o = q;
    *o++ = '\'';
    for (; *s; s++) {
        if (*s == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *s;
        }
    }
    *o++ = '\'';
    *o = 0;
    return q;
}

int cmd_score(int argc, char **argv) {
    score_args a;
    score_args_init(&a);
    const char *shard = NULL;
    ddps_error err;
    cli_error_clear(&err);
    int rc = parse(argc, argv, &a, &shard, &err);
    if (rc == 1) {
        score_args_free(&a);
        return 0;
    }
    if (rc == 0) rc = score_args_finish(&a, &err);
    if (rc == 0 && !a.store_path) rc = cli_fail_usage(&err, "--store: required (see --help)");
    if (rc == 0) rc = plan_launch(&a, shard, &err);
    if (rc == 0 && ddps_check_store_name(a.store_path, &err) != DDPS_OK) rc = -1;
    ddps_hooks hooks;
    cli_hooks_init(&hooks);
    if (rc == 0 && ddps_run_score(&a.p, a.data_dir, a.model_dir, a.store_path, &hooks, NULL, &err) != DDPS_OK)
        rc = -1;
    if (rc == 0 && a.p.shard_n > 0) {
        char *sp = ddps_shard_store_path(a.store_path, a.p.shard_k, a.p.shard_n);
        char *q = shell_quote(a.store_path);
        cli_log(2, "%s: share %d/%d complete; when all are: ddps merge --store %s %s.shard-*-of-%d", sp, a.p.shard_k,
                a.p.shard_n, q, q, a.p.shard_n);
        free(q);
        ddps_free(sp);
    }
    score_args_free(&a);
    if (rc != 0) fprintf(stderr, "ddps score: %s\n", err.message);
    return cli_exit_code(&err);
}
