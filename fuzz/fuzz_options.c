/* The option parser: NUL-separated arguments through the real tables of
 * `score` and `select` (cli_args_parse, then the compound options:
 * --timesteps, --t-range, --classes, --seed, --ipc lists, --classes names). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/options.h"
#include "fz_util.h"
#include "pipeline/store.h"

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    if (len > 4096) return 0;
    char *buf = malloc(len + 1);
    memcpy(buf, data, len);
    buf[len] = 0;
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    argv[argc++] = "ddps";
    for (size_t i = 0; i <= len && argc < MAX_ARGS;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    argv[argc] = NULL;
    char *pos[MAX_ARGS + 1];
    int npos;
    ddps_error err;
    /* score's table plus --store, as cmd_score builds it */
    score_args a;
    score_args_init(&a);
    cli_opt opts[SCORE_ARGS_MAX + 1 + SELECT_ARGS_MAX + 4];
    int n = score_args_table(&a, opts);
    opts[n++] = (cli_opt){"--store", CLI_OPT_STR, &a.store_path, "FILE", "store", 0, 0};
    /* --help prints to stdout: fine, but keep the fuzzer's output readable */
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    int pr = cli_args_parse("usage", opts, n, argc, argv, pos, &npos, &err);
    ddps_err ierr;
    if (pr == 0 && score_args_finish(&a, &err) == 0 && a.store_path) (void)ddps_store_name_check(a.store_path, &ierr);
    score_args_free(&a);
    /* select's table plus --ipc and --classes lists */
    ddps_select_params sp;
    ddps_select_params_init(&sp);
    char help[SELECT_ARGS_MAX][192];
    const char *ipc_s = NULL, *classes_s = NULL, *out_dir = NULL;
    n = select_args_table(&sp, opts, help);
    opts[n++] = (cli_opt){"--ipc", CLI_OPT_STR, &ipc_s, "N", "ipc", 0, 0};
    opts[n++] = (cli_opt){"--classes", CLI_OPT_STR, &classes_s, "A", "classes", 0, 0};
    opts[n++] = (cli_opt){"--out", CLI_OPT_STR, &out_dir, "DIR", "out", 0, 0};
    if (cli_args_parse("usage", opts, n, argc, argv, pos, &npos, &err) == 0) {
        int ipcs[64], n_ipc = 0;
        if (ipc_s) n_ipc = cli_parse_ipc_list("select", ipc_s, ipcs, 64, &err);
        if (classes_s) {
            char *nb = NULL;
            const char **names = NULL;
            int nn = 0;
            if (cli_split_names("--classes", classes_s, &nb, &names, &nn, &err) == 0) {
                free(nb);
                free(names);
            }
        }
        if (n_ipc > 0) (void)ddps_select_params_check(&sp, ipcs, n_ipc, &err);
    }
    fclose(stdout);
    stdout = saved;
    free(buf);
    return 0;
}
