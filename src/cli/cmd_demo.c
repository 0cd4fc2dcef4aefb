/* ddps demo: the whole product on a fresh machine with nothing downloaded.
 * Makes a small synthetic ImageFolder and a tiny random-weight model with
 * Stable Diffusion v1.x's exact structure (and a tokenizer that knows the
 * class names), then runs distill on them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "models/sd.h"
#include "pipeline/score.h"
#include "pipeline/select.h"
#include "pipeline/synth.h"
#include "util/fs.h"

static const char *USAGE =
    "usage: ddps demo [--out DIR] [--classes N] [--per-class N] [--threads N]\n\n"
    "Makes DIR/data (synthetic pictures of a few classes) and DIR/model (a tiny Stable Diffusion\n"
    "v1.x-structured model with random weights), then distills them into DIR/distilled.";

/* The tiny model: SD v1.x's structure at small widths (like the golden test model). */
static void tiny_configs(ddps_unet_config *u, ddps_vae_config *v, ddps_clip_config *c) {
    ddps_sd15_unet_config(u);
    int uc[4] = {32, 64, 64, 64};
    for (int i = 0; i < 4; i++) u->block_out_channels[i] = uc[i];
    u->cross_attention_dim = 32;
    u->norm_num_groups = 8;
    u->time_embed_dim = 128;
    ddps_sd15_vae_config(v);
    int vc[4] = {16, 32, 32, 32};
    for (int i = 0; i < 4; i++) v->block_out_channels[i] = vc[i];
    v->norm_num_groups = 8;
    ddps_sd15_clip_config(c);
    c->hidden_size = 32;
    c->intermediate_size = 64;
    c->num_hidden_layers = 2;
    c->num_attention_heads = 4;
}

int cmd_demo(int argc, char **argv) {
    const char *out = "ddps-demo";
    int n_classes = 4, per_class = 24, threads = 0;
    cli_opt opts[] = {
        {"--out", CLI_OPT_STR, &out, "DIR", "where data, model and results go (ddps-demo)", 0, 0},
        {"--classes", CLI_OPT_INT, &n_classes, "N", "synthetic classes (4)", 1, DDPS_SYNTH_MAX_CLASSES},
        {"--per-class", CLI_OPT_INT, &per_class, "N", "images per class (24)", 1, 10000},
        {"--threads", CLI_OPT_INT, &threads, "N", "CPU threads (default: all cores)", 0, 4096},
    };
    int nopts = (int)(sizeof opts / sizeof *opts);
    char **pos = ddps_malloc((size_t)argc * sizeof *pos);
    int npos;
    ddps_err err = {{0}};
    ddps_error aerr;
    int pr = cli_args_parse(USAGE, opts, nopts, argc, argv, pos, &npos, &aerr);
    if (pr < 0) snprintf(err.msg, sizeof err.msg, "%s", aerr.message);
    int rc = pr;
    if (pr == 0 && npos) rc = ddps_fail(&err, "%s: unexpected argument (see --help)", pos[0]);
    int usage = rc != 0; /* bad invocation: exit 2, like other usage errors */
    free(pos);
    if (pr == 1) return 0;
    char *data = ddps_path_join(out, "data"), *model = ddps_path_join(out, "model"),
         *dist = ddps_path_join(out, "distilled");
    if (rc == 0) rc = ddps_mkdirs(out, &err);
    if (rc == 0 && !ddps_is_dir(data)) {
        ddps_info("making a synthetic dataset: %d classes x %d pictures in %s", n_classes, per_class, data);
        rc = ddps_synth_dataset(data, n_classes, per_class, 160, 1, NULL, &err);
    }
    if (rc == 0 && !ddps_is_dir(model)) {
        ddps_info("making a tiny random-weight model with SD v1.x's structure in %s", model);
        ddps_unet_config u;
        ddps_vae_config v;
        ddps_clip_config c;
        tiny_configs(&u, &v, &c);
        const char *words[DDPS_SYNTH_MAX_CLASSES + 3] = {"an", "image", "of"};
        for (int i = 0; i < n_classes; i++) words[3 + i] = ddps_synth_class_name(i);
        rc = ddps_sd_write_random(model, &u, &v, &c, words, 3 + n_classes, 42, ST_F16, &err);
    }
    ddps_run_stats st = {0};
    if (rc == 0) {
        ddps_score_opts o;
        ddps_score_defaults(&o);
        o.data_dir = data;
        o.model_dir = model;
        /* Small pictures keep the demo to about a minute on two cores. */
        o.size = 128;
        o.patch = 96;
        o.patches_per_image = 2;
        o.threads = threads;
        o.command = "distill";
        char *store = ddps_path_join(out, "ddps.sqlite");
        o.store_path = store;
        rc = ddps_mkdirs(dist, &err);
        if (rc == 0) rc = ddps_score_run(&o, &st, &err);
        if (rc == 0) {
            ddps_select_opts so;
            ddps_select_defaults(&so);
            int ipcs[2] = {1, 10};
            so.store_path = store;
            so.out_dir = dist;
            so.ipc = ipcs;
            so.n_ipc = 2;
            so.threads = threads;
            so.command = "distill";
            rc = ddps_select_run(&so, &err);
        }
        free(store);
    }
    if (rc == 0) {
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
    free(data);
    free(model);
    free(dist);
    if (rc != 0) {
        fprintf(stderr, "ddps demo: %s\n", err.msg);
        return usage ? 2 : 1;
    }
    return 0;
}
