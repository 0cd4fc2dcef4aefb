/* ddps distill: score (if not done yet) then select, in one command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "pipeline/report.h"
#include "cli/scale.h"
#include "pipeline/store.h"
#include "pipeline/select.h"
#include "util/fs.h"

#define MAX_IPCS 64

static const char *USAGE =
    "usage: ddps distill --data DIR --model DIR --out DIR --ipc N[,N...] [options]\n\n"
    "Scores the dataset into a store (default OUT/ddps.sqlite; an interrupted run continues where it\n"
    "stopped) and writes OUT/ipc<N>/<class>/*.png with manifests for every N. Other IPCs or class\n"
    "subsets later: `ddps select --store OUT/ddps.sqlite --out DIR --ipc N` (no model evaluation).";

int cmd_distill(int argc, char **argv) {
    score_args a;
    memset(&a, 0, sizeof a);
    ddps_score_defaults(&a.o);
    a.o.command = "distill";
    ddps_select_opts so;
    ddps_select_defaults(&so);
    so.command = "distill";
    const char *ipc_s = NULL;
    int report = 0;
    ddps_opt opts[SCORE_ARGS_MAX + 4 + SELECT_ARGS_MAX];
    int n = score_args_table(&a, opts);
    opts[n++] = (ddps_opt){"--out", OPT_STR, &so.out_dir, "DIR", "output folder (required)", 0, 0};
    opts[n++] = (ddps_opt){"--ipc", OPT_STR, &ipc_s, "N[,N...]", "images per class, one set per value (required)", 0, 0};
    opts[n++] = (ddps_opt){"--store", OPT_STR, &a.o.store_path, "FILE", "the store (default OUT/ddps.sqlite)", 0, 0};
    opts[n++] = (ddps_opt){"--report", OPT_FLAG, &report, NULL,
                           "also write OUT/report/index.html (ddps report, at the first IPC)", 0, 0};
    n += select_args_table(&so, opts + n);
    char **pos = ddps_malloc((size_t)argc * sizeof *pos);
    int npos, ipcs[MAX_IPCS], nipc = 0;
    char *store_buf = NULL;
    ddps_err err = {{0}};
    int pr = ddps_args_parse(USAGE, opts, n, argc, argv, pos, &npos, &err);
    int rc = pr;
    if (pr == 0 && npos) rc = ddps_fail(&err, "%s: unexpected argument (see --help)", pos[0]);
    if (rc == 0) rc = score_args_finish(&a, &err);
    if (rc == 0 && !so.out_dir) rc = ddps_fail(&err, "--out: required (see --help)");
    if (rc == 0 && !ipc_s) rc = ddps_fail(&err, "--ipc: required (see --help)");
    if (rc == 0 && a.o.store_path) rc = ddps_store_name_check(a.o.store_path, &err);
    if (rc == 0 && (nipc = ddps_parse_int_list("--ipc", ipc_s, ipcs, MAX_IPCS, 1, 1000000, &err)) < 0) rc = -1;
    if (rc == 0 && strcmp(so.format, "png") && strcmp(so.format, "jpg"))
        rc = ddps_fail(&err, "--format %s: expected png or jpg", so.format);
    const char *how;
    int launched = ddps_launch_size(&how);
    if (rc == 0 && launched > 1)
        rc = ddps_fail(&err, "started as one of %d processes (%s): distill runs in one process; run `ddps score` "
                       "under mpirun/srun (it merges the ranks' shards), then `ddps select`", launched, how);
    if (rc == 0) rc = select_args_check(&so, &err);
    int usage = rc != 0; /* bad invocation: exit 2, like other usage errors */
    int made_out = rc == 0 && !ddps_is_dir(so.out_dir); /* removed again if the run fails and leaves it empty */
    if (rc == 0) rc = ddps_mkdirs(so.out_dir, &err);
    if (rc == 0 && !a.o.store_path) a.o.store_path = store_buf = ddps_path_join(so.out_dir, "ddps.sqlite");
    if (rc == 0) rc = ddps_score_run(&a.o, NULL, &err);
    if (rc == 0) {
        so.store_path = a.o.store_path;
        so.ipc = ipcs;
        so.n_ipc = nipc;
        so.classes = a.o.classes;
        so.n_classes = a.o.n_classes;
        so.threads = a.o.threads;
        rc = ddps_select_run(&so, &err);
    }
    if (rc == 0 && report) {
        ddps_report_opts ro;
        ddps_report_defaults(&ro);
        ro.store_path = a.o.store_path;
        char *rdir = ddps_path_join(so.out_dir, "report");
        ro.out_dir = rdir;
        ro.ipc = ipcs[0];
        ro.threads = a.o.threads;
        rc = ddps_report_run(&ro, &err);
        free(rdir);
    }
    free(pos);
    free(store_buf);
    score_args_free(&a);
    if (pr == 1) return 0;
    if (rc != 0 && made_out) rmdir(so.out_dir); /* only succeeds when empty: nothing computed is lost */
    if (rc != 0) {
        fprintf(stderr, "ddps distill: %s\n", err.msg);
        return usage || err.kind == DDPS_KIND_USAGE ? 2 : 1; /* values out of range found late are usage too */
    }
    return 0;
}
