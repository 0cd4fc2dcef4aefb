/* ddps demo: the whole product on a fresh machine with nothing downloaded.
 * The library (ddps_demo_run) makes a small synthetic ImageFolder and a tiny
 * random-weight model with Stable Diffusion v1.x's exact structure (and a
 * tokenizer that knows the class names), then distills them; this file
 * parses the flags and says where the results are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "ddps.h"

static const char *USAGE =
    "usage: ddps demo [--out DIR] [--classes N] [--per-class N] [--threads N]\n\n"
    "Makes DIR/data (synthetic pictures of a few classes) and DIR/model (a tiny Stable Diffusion\n"
    "v1.x-structured model with random weights), then distills them into DIR/distilled.";

/* What the demo made in out, and how to get real results. */
static void demo_done(const char *out) {
    char dist[4096];
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/') n--; /* out/distilled as the library joins it */
    snprintf(dist, sizeof dist, "%.*s/distilled", (int)n, out);
    printf("\nddps demo: done. Distilled sets (torchvision ImageFolder layout, with manifests):\n"
           "  %s/ipc1    1 image per class (a 2x2 mosaic of patches)\n"
           "  %s/ipc10   10 images per class\n"
           "Store with all scores: %s/ddps.sqlite (try: ddps select --store %s/ddps.sqlite --out %s/more "
           "--ipc 5)\n\n"
           "Note: the model here has RANDOM weights, so which patches it picks is arbitrary; the demo shows\n"
           "the pipeline, not the method's quality. For real results use Stable Diffusion v1.5 weights in\n"
           "diffusers layout (e.g. the stable-diffusion-v1-5 repository on Hugging Face, safetensors files):\n"
           "  ddps distill --data /path/to/imagenette/train --model /path/to/stable-diffusion-v1-5 \\\n"
           "               --out distilled --ipc 10,50,100 --class-names LOC_synset_mapping.txt\n",
           dist, dist, out, out, out);
}

int cmd_demo(int argc, char **argv) {
    const char *out = "ddps-demo";
    ddps_demo_params p;
    ddps_demo_params_init(&p);
    char h_out[96], h_classes[64], h_per[64]; /* defaults printed from the values */
    snprintf(h_out, sizeof h_out, "where data, model and results go (%s)", out);
    snprintf(h_classes, sizeof h_classes, "synthetic classes (%d)", p.n_classes);
    snprintf(h_per, sizeof h_per, "images per class (%d)", p.per_class);
    cli_opt opts[] = {
        {"--out", CLI_OPT_STR, &out, "DIR", h_out, 0, 0},
        {"--classes", CLI_OPT_INT, &p.n_classes, "N", h_classes, 1, DDPS_DEMO_MAX_CLASSES},
        {"--per-class", CLI_OPT_INT, &p.per_class, "N", h_per, 1, 10000},
        {"--threads", CLI_OPT_INT, &p.threads, "N", "CPU threads (default: all cores)", 0, 4096},
    };
    int nopts = (int)(sizeof opts / sizeof *opts);
    ddps_error err;
    int pr = cli_args_options(USAGE, opts, nopts, argc, argv, &err);
    if (pr == 1) return 0;
    if (pr != 0) { /* bad invocation: a usage error (exit 2) */
        fprintf(stderr, "ddps demo: %s\n", err.message);
        return cli_exit_code(&err);
    }
    ddps_hooks h;
    cli_hooks_init(&h);
    if (ddps_demo_run(out, &p, &h, &err) != DDPS_OK) {
        fprintf(stderr, "ddps %s\n", err.message);
        return cli_exit_code(&err);
    }
    demo_done(out);
    return 0;
}
