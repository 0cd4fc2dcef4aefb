/* `ddps probe ...`: runs one model component on inputs from a safetensors
 * file and writes its outputs to another, in PyTorch's NCHW layout and
 * tensor names, so results can be compared with diffusers/transformers (the
 * library's ddps_probe_run; this file parses the flags and prints the
 * report lines). These interfaces are stable: tests and users script
 * against them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "ddps.h"

static const char *USAGE =
    "usage: ddps probe tokenize --model DIR TEXT...\n"
    "       ddps probe text     --model DIR --in IN.safetensors --out OUT.safetensors\n"
    "       ddps probe vae      --model DIR --in IN --out OUT\n"
    "       ddps probe unet     --model DIR --in IN --out OUT\n"
    "       ddps probe schedule --model DIR --out OUT\n"
    "       ddps probe stage1   --model DIR --in IN --out OUT --prompt TEXT --null-prompt TEXT --patch P --stride S\n"
    "       ddps probe train    --model ARCH --weights W --in BATCH --out OUT (ddps probe train --help)\n"
    "\n"
    "Inputs and outputs use diffusers' tensor names in NCHW layout: text: input_ids [B,77] (I32/I64) ->\n"
    "last_hidden_state; vae: image [B,3,H,W] in [-1,1] -> mean, logvar, latent; unet: sample, timesteps,\n"
    "context -> eps, down0.., mid, up0..; schedule -> alphas_cumprod; stage1: image, timesteps, noises ->\n"
    "latent, diff, score_map, patch_scores.";

int cmd_probe(int argc, char **argv) {
    ddps_probe_params p;
    ddps_probe_params_init(&p);
    cli_opt opts[] = {
        {"--model", CLI_OPT_STR, &p.model, "MODEL", "diffusers folder, single .safetensors file, or org/name (HF cache)", 0, 0},
        {"--config", CLI_OPT_STR, &p.config, "DIR", "configs (diffusers layout) for a single-file --model", 0, 0},
        {"--in", CLI_OPT_STR, &p.in, "FILE", "input safetensors", 0, 0},
        {"--out", CLI_OPT_STR, &p.out, "FILE", "output safetensors", 0, 0},
        {"--device", CLI_OPT_STR, &p.device, "cpu|cuda", "where to run (default cpu)", 0, 0},
        {"--precision", CLI_OPT_STR, &p.precision, "f32|bf16|f16", "compute precision (default f32)", 0, 0},
        {"--threads", CLI_OPT_INT, &p.threads, "N", "CPU threads (default: all cores)", 0, 4096},
        {"--prompt", CLI_OPT_STR, &p.prompt, "TEXT", "stage1: label prompt", 0, 0},
        {"--null-prompt", CLI_OPT_STR, &p.null_prompt, "TEXT", "stage1: null prompt", 0, 0},
        {"--patch", CLI_OPT_INT, &p.patch, "P", "stage1: patch size in pixels", 1, 1 << 16},
        {"--stride", CLI_OPT_INT, &p.stride, "S", "stage1: patch stride in pixels", 1, 1 << 16},
    };
    int nopts = (int)(sizeof opts / sizeof *opts);
    ddps_error err;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cli_args_help(USAGE, opts, nopts);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "train") == 0) return cmd_probe_train(argc - 1, argv + 1);
    p.what = argv[1];
    char **pos = cli_malloc((size_t)argc * sizeof *pos);
    int npos = 0;
    int pr = cli_args_parse(USAGE, opts, nopts, argc - 1, argv + 1, pos, &npos, &err);
    if (pr != 0) {
        free(pos);
        if (pr > 0) return 0;
        fprintf(stderr, "ddps probe: %s\n", err.message);
        return cli_exit_code(&err);
    }
    p.texts = (const char *const *)pos;
    p.n_texts = npos;
    ddps_hooks h;
    cli_hooks_init(&h);
    if (ddps_probe_run(&p, &h, &err) != DDPS_OK) fprintf(stderr, "ddps %s\n", err.message);
    free(pos);
    return cli_exit_code(&err);
}
