/* ddps select: distilled sets for any IPC from a store, no model evaluation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args_old.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "pipeline/store.h"
#include "pipeline/select.h"
#include "util/fs.h"

#define MAX_IPCS 64

static const char *USAGE =
    "usage: ddps select --store FILE --out DIR --ipc N[,N...] [--classes a,b,...] [--top-clusters 10]\n"
    "                   [--mosaic-max-ipc 10] [--output-size 224] [--format png|jpg] [--data-root DIR]\n"
    "                   [--threads N]\n"
    "\n"
    "Writes DIR/ipc<N>/<class>/*.png (torchvision ImageFolder) and DIR/ipc<N>/manifest.{csv,json}\n"
    "for every N, from a store filled by `ddps score`. No model is loaded.";

int cmd_select(int argc, char **argv) {
    ddps_select_opts o;
    ddps_select_defaults(&o);
    const char *ipc_s = NULL, *classes_s = NULL;
    ddps_opt opts[6 + SELECT_ARGS_MAX] = {
        {"--store", OPT_STR, &o.store_path, "FILE", "store written by ddps score (required)", 0, 0},
        {"--out", OPT_STR, &o.out_dir, "DIR", "output folder; DIR/ipc<N> is replaced (required)", 0, 0},
        {"--ipc", OPT_STR, &ipc_s, "N[,N...]", "images per class, one set per value (required)", 0, 0},
        {"--classes", OPT_STR, &classes_s, "a,b,...", "only these class folders (default: all)", 0, 0},
        {"--data-root", OPT_STR, &o.data_root, "DIR", "where the source images are (default: as scored)", 0, 0},
        {"--threads", OPT_INT, &o.threads, "N", "image writing threads (0 = all cores)", 0, 4096},
    };
    int nopts = 6 + select_args_table(&o, opts + 6);
    char **pos = malloc(sizeof(char *) * (size_t)(argc > 0 ? argc : 1));
    int npos = 0, ret = 1, usage = 1;
    ddps_err err = {{0}};
    int ipcs[MAX_IPCS];
    char *names_buf = NULL;
    const char **names = NULL;
    int pr = ddps_args_parse(USAGE, opts, nopts, argc, argv, pos, &npos, &err);
    if (pr == 1) {
        ret = 0;
        goto done;
    }
    if (pr != 0) goto fail;
    if (npos > 0) {
        ddps_fail(&err, "%s: unexpected argument (see --help)", pos[0]);
        goto fail;
    }
    if (!o.store_path) {
        ddps_fail(&err, "--store: required (see --help)");
        goto fail;
    }
    if (ddps_store_name_check(o.store_path, &err) != 0) goto fail;
    if (!o.out_dir) {
        ddps_fail(&err, "--out: required (see --help)");
        goto fail;
    }
    if (!ipc_s) {
        ddps_fail(&err, "--ipc: required (see --help)");
        goto fail;
    }
    int n = ddps_parse_int_list("--ipc", ipc_s, ipcs, MAX_IPCS, 1, 1000000, &err);
    if (n < 0) goto fail;
    o.ipc = ipcs;
    o.n_ipc = n;
    if (classes_s) {
        if (ddps_split_names("--classes", classes_s, &names_buf, &names, &o.n_classes, &err) != 0) goto fail;
        o.classes = names;
    }
    if (strcmp(o.format, "png") != 0 && strcmp(o.format, "jpg") != 0 && strcmp(o.format, "jpeg") != 0) {
        ddps_fail(&err, "--format %s: must be png or jpg", o.format);
        goto fail;
    }
    if (select_args_check(&o, &err) != 0) goto fail;
    usage = 0; /* from here on, failures are about the store or the images */
    if (ddps_select_run(&o, &err) != 0) goto fail;
    ret = 0;
    goto done;
fail:
    fprintf(stderr, "ddps select: %s\n", err.msg);
    ret = usage || err.kind == DDPS_KIND_USAGE ? 2 : 1;
done:
    free(pos);
    free(names_buf);
    free(names);
    return ret;
}
