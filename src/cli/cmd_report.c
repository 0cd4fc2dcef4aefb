/* ddps report: a static HTML report of a store (overview, one page per class). */
#include <stdio.h>
#include <stdlib.h>

#include "cli/args_old.h"
#include "cli/commands.h"
#include "pipeline/report.h"

static const char *USAGE =
    "usage: ddps report --store FILE --out DIR [--data ROOT] [--ipc N] [--thumb PX] [--threads N]\n"
    "\n"
    "Writes DIR/index.html (overview: model, settings, counts, runs, one row per class) and one page per\n"
    "class (distilled images at IPC N as `ddps select` writes them, clusters, score histogram, every image\n"
    "with its Stage-I heatmap and candidate boxes, skipped files). Opens from file:// without network.";

int cmd_report(int argc, char **argv) {
    ddps_report_opts o;
    ddps_report_defaults(&o);
    ddps_opt opts[] = {
        {"--store", OPT_STR, &o.store_path, "FILE", "store written by ddps score (required)", 0, 0},
        {"--out", OPT_STR, &o.out_dir, "DIR", "report folder (required)", 0, 0},
        {"--data", OPT_STR, &o.data_root, "ROOT", "where the source images are (default: as scored)", 0, 0},
        {"--ipc", OPT_INT, &o.ipc, "N", "distilled set shown (default 10)", 1, 1000000},
        {"--thumb", OPT_INT, &o.thumb, "PX", "longest side of image thumbnails (default 160)", 16, 1024},
        {"--threads", OPT_INT, &o.threads, "N", "image writing threads (0 = all cores)", 0, 4096},
    };
    int nopts = (int)(sizeof opts / sizeof *opts);
    char **pos = malloc(sizeof(char *) * (size_t)(argc > 0 ? argc : 1));
    int npos = 0, ret = 2;
    ddps_err err = {{0}};
    int pr = ddps_args_parse(USAGE, opts, nopts, argc, argv, pos, &npos, &err);
    if (pr == 1) {
        free(pos);
        return 0;
    }
    if (pr == 0 && npos > 0) pr = ddps_fail(&err, "%s: unexpected argument (see --help)", pos[0]);
    if (pr == 0 && !o.store_path) pr = ddps_fail(&err, "--store: required (see --help)");
    if (pr == 0 && !o.out_dir) pr = ddps_fail(&err, "--out: required (see --help)");
    if (pr == 0) {
        ret = ddps_report_run(&o, &err) == 0 ? 0 : 1;
    }
    if (ret != 0) fprintf(stderr, "ddps report: %s\n", err.msg);
    free(pos);
    return ret;
}
