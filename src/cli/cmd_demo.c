/* ddps demo: the whole product on a fresh machine with nothing downloaded,
 * on the toy world (ddps_demo_run), or the toy world alone (--world-only,
 * ddps_world_write). This file parses the flags and says where the results
 * are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "ddps.h"

static const char *USAGE =
    "usage: ddps demo [--out DIR] [--classes N] [--per-class N] [--seed S] [--threads N]\n"
    "       ddps demo --world-only --out DIR [--seed S] [--classes N] [--train N] [--val N] [--test N] [--size N]\n\n"
    "Writes DIR/world (pictures of the toy world: objects of known boxes on cluttered backgrounds) and\n"
    "DIR/model (the toy model: Stable Diffusion v1.x's structure, trained on the toy world), distills\n"
    "them into DIR/distilled, writes the report DIR/report, and measures the selection against the\n"
    "objects' boxes. DIR/world, DIR/distilled and DIR/ddps.sqlite are replaced on every run.\n"
    "--world-only writes the toy world alone: DIR/train, DIR/val, DIR/test (ImageFolders, ten classes),\n"
    "DIR/classes.tsv (for --class-names) and DIR/boxes.json (every object's box). A new --seed gives\n"
    "pictures no model has seen.";

/* What the demo made in out, and how to get real results. */
static void demo_done(const char *out) {
    char o[4096];
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/') n--;
    snprintf(o, sizeof o, "%.*s", (int)n, out);
    printf("\nddps demo: done.\n"
           "  report (open in a browser):   %s/report/index.html\n"
           "  distilled sets (ImageFolder): %s/distilled/ipc1, %s/distilled/ipc10 (with manifests)\n"
           "  store with all scores:        %s/ddps.sqlite (try: ddps select --store %s/ddps.sqlite --out %s/more "
           "--ipc 5)\n\n"
           "The model is a toy (SD v1.x's structure at tiny widths, trained on the toy world), so that the\n"
           "truth is known. For real data use Stable Diffusion v1.5 in diffusers layout:\n"
           "  ddps distill --data /path/to/imagenette/train --model /path/to/stable-diffusion-v1-5 \\\n"
           "               --out distilled --ipc 10,50,100 --class-names LOC_synset_mapping.txt\n",
           o, o, o, o, o, o);
}

/* `ddps demo --world-only`: the toy world alone. */
static int world_only(const char *out, const ddps_world_params *w) {
    ddps_hooks h;
    cli_hooks_init(&h);
    ddps_error err;
    if (ddps_world_write(out, w, &h, &err) != DDPS_OK) {
        fprintf(stderr, "ddps demo: %s\n", err.message);
        return cli_exit_code(&err);
    }
    printf("ddps demo: toy world (seed %llu, %d classes; %d/%d/%d pictures per class in train/val/test) in %s\n",
           (unsigned long long)w->seed, w->n_classes, w->train, w->val, w->test, out);
    return 0;
}

int cmd_demo(int argc, char **argv) {
    const char *out = "ddps-demo";
    ddps_demo_params p;
    ddps_demo_params_init(&p);
    ddps_world_params w;
    ddps_world_params_init(&w);
    int world = 0, seed = -1, n_classes = 0;
    char h_classes[64], h_per[64], h_seed[96]; /* defaults printed from the values */
    snprintf(h_classes, sizeof h_classes, "toy-world classes (%d)", p.n_classes);
    snprintf(h_per, sizeof h_per, "demo: pictures per class (%d)", p.per_class);
    snprintf(h_seed, sizeof h_seed, "the world's seed (demo %llu, --world-only %llu)", (unsigned long long)p.seed,
             (unsigned long long)w.seed);
    cli_opt opts[] = {
        {"--out", CLI_OPT_STR, &out, "DIR", "where everything goes (ddps-demo)", 0, 0},
        {"--classes", CLI_OPT_INT, &n_classes, "N", h_classes, 1, DDPS_DEMO_MAX_CLASSES},
        {"--per-class", CLI_OPT_INT, &p.per_class, "N", h_per, 1, 10000},
        {"--seed", CLI_OPT_INT, &seed, "S", h_seed, 0, 2147483647},
        {"--threads", CLI_OPT_INT, &p.threads, "N", "CPU threads (default: all cores)", 0, 4096},
        {"--world-only", CLI_OPT_FLAG, &world, NULL, "write the toy world alone (no model, no distilling)", 0, 0},
        {"--train", CLI_OPT_INT, &w.train, "N", "world: training pictures per class (100)", 0, 100000},
        {"--val", CLI_OPT_INT, &w.val, "N", "world: validation pictures per class (20)", 0, 100000},
        {"--test", CLI_OPT_INT, &w.test, "N", "world: test pictures per class (30)", 0, 100000},
        {"--size", CLI_OPT_INT, &w.size, "N", "world: base picture size (128)", 16, 2048},
    };
    ddps_error err;
    int pr = cli_args_options(USAGE, opts, (int)(sizeof opts / sizeof *opts), argc, argv, &err);
    if (pr == 1) return 0;
    if (pr != 0) { /* bad invocation: a usage error (exit 2) */
        fprintf(stderr, "ddps demo: %s\n", err.message);
        return cli_exit_code(&err);
    }
    if (n_classes) p.n_classes = w.n_classes = n_classes;
    if (world) {
        if (seed >= 0) w.seed = (uint64_t)seed;
        return world_only(out, &w);
    }
    if (seed >= 0) p.seed = (uint64_t)seed;
    ddps_hooks h;
    cli_hooks_init(&h);
    if (ddps_demo_run(out, &p, &h, &err) != DDPS_OK) {
        fprintf(stderr, "ddps %s\n", err.message);
        return cli_exit_code(&err);
    }
    demo_done(out);
    return 0;
}
