/* `ddps bench text|vae|unet|score|precision|load`: speed of the engine on
 * full-size SD v1.5 shapes with random weights built in memory (no files
 * needed), run by the library (ddps_bench_run); this file parses the flags
 * and prints the report lines on stdout. Benchmarks are programs, not tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "ddps.h"

static const char *USAGE =
    "usage: ddps bench text|vae|unet|score|precision|load|train [options]\n\n"
    "Full-size Stable Diffusion v1.5 components with random weights (nothing to download);\n"
    "--shapes sd21: SD 2.1's (cross-attention 1024, 23 text layers of width 1024, head width 64).\n"
    "  text:  CLIP text encoder, 77 tokens (13.3 GFLOP per prompt)\n"
    "  vae:   VAE encoder at --size (272.7 GFLOP at 256x256)\n"
    "  unet:  UNet at --size/8 latents with a 77-token context (180.1 GFLOP per 32x32 latent)\n"
    "  score: one image through Stage I and II, split into decode, VAE, UNet, DIFT, clustering\n"
    "  precision: Stage I window rankings in f32 vs --precision (bf16) on --data images (Spearman)\n"
    "  load:  peak memory of loading --model (default: a full-size random f16 SD v1.5 written to /tmp)\n"
    "  train: a student's training step (forward + backward + AdamW) and eval-mode forward, images/s and\n"
    "         peak RSS: --model resnet18|resnet18-modified|convnet3..6 (resnet18), --size (224; 32 for the\n"
    "         others), --batch (64; 256), --steps timed steps after 2 warm-up steps (10); f32 only";

/* The benches and how many --batch values each takes (0: --batch ignored) within [1, batch_hi]. */
static const struct {
    const char *name;
    int max_batches, batch_hi;
} BENCHES[] = {
    {"text", 16, 4096}, {"vae", 16, 4096}, {"unet", 16, 4096}, {"score", 1, 64}, {"precision", 0, 0}, {"load", 0, 0},
    {"train", 1, 4096},
};

/* Parses --batch for the bench named what into p (unknown benches: left to
 * ddps_bench_run, which names them). Returns 0, or -1 with err. */
static int bench_batches(const char *what, const char *batches, ddps_bench_params *p, ddps_error *err) {
    for (size_t i = 0; i < sizeof BENCHES / sizeof *BENCHES; i++) {
        if (strcmp(BENCHES[i].name, what) != 0 || !batches || BENCHES[i].max_batches == 0) continue;
        p->n_batches = cli_parse_int_list("--batch", batches, p->batches, BENCHES[i].max_batches, 1,
                                           BENCHES[i].batch_hi, err);
        return p->n_batches < 0 ? -1 : 0;
    }
    return 0;
}

int cmd_bench(int argc, char **argv) {
    ddps_bench_params p;
    ddps_bench_params_init(&p);
    const char *batches = NULL;
    cli_opt opts[] = {
        {"--device", CLI_OPT_STR, &p.device, "cpu|cuda", "where to run (default cpu)", 0, 0},
        {"--precision", CLI_OPT_STR, &p.precision, "f32|bf16|f16", "compute precision (default f32; unet on the CPU: f32 and bf16 compared)", 0, 0},
        {"--threads", CLI_OPT_INT, &p.threads, "N", "CPU threads (default: all cores)", 0, 4096},
        {"--batch", CLI_OPT_STR, &batches, "N[,N..]", "batch sizes (unet default 1,8; others 1)", 0, 0},
        {"--size", CLI_OPT_INT, &p.size, "PIXELS", "image size (default 256)", 8, 4096},
        {"--iters", CLI_OPT_INT, &p.iters, "N", "timed runs after one warm-up (default 3)", 1, 1000},
        {"--json", CLI_OPT_FLAG, &p.json, NULL, "print one JSON object as the last line", 0, 0},
        {"--profile", CLI_OPT_FLAG, &p.profile, NULL, "time every op kind (adds a sync per op)", 0, 0},
        {"--model", CLI_OPT_STR, &p.model, "DIR", "precision: model folder (default: random SD v1.5); train: the student", 0, 0},
        {"--steps", CLI_OPT_INT, &p.iters, "N", "train: timed steps after 2 warm-up steps (default 10)", 1, 100000},
        {"--data", CLI_OPT_STR, &p.data, "DIR", "precision: ImageFolder of real images", 0, 0},
        {"--images", CLI_OPT_INT, &p.images, "N", "precision: images compared (20)", 1, 100000},
        {"--shapes", CLI_OPT_STR, &p.shapes, "sd15|sd21", "text, vae, unet: SD v1.5 or SD 2.1 (768-v) shapes (sd15)", 0, 0},
    };
    int nopts = (int)(sizeof opts / sizeof *opts);
    ddps_error err;
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            cli_args_help(USAGE, opts, nopts);
            return 0;
        }
        fprintf(stderr, "%s\n", USAGE);
        return 2;
    }
    p.what = argv[1];
    if (strcmp(p.what, "train") == 0) p.size = 0, p.iters = 0; /* the student's own defaults */
    char **pos = cli_malloc((size_t)argc * sizeof *pos);
    int npos;
    int pr = cli_args_parse(USAGE, opts, nopts, argc - 1, argv + 1, pos, &npos, &err);
    free(pos);
    if (pr > 0) return 0;
    if (pr < 0 || bench_batches(p.what, batches, &p, &err) != 0) {
        fprintf(stderr, "ddps bench: %s\n", err.message);
        return cli_exit_code(&err);
    }
    ddps_hooks h;
    cli_hooks_init(&h);
    if (ddps_bench_run(&p, &h, &err) != DDPS_OK) fprintf(stderr, "ddps %s\n", err.message);
    return cli_exit_code(&err);
}
