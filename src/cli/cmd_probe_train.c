/* `ddps probe train`: one training step of a student on files (the
 * library's ddps_probe_train; this file parses the flags). */
#include <stdio.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "ddps.h"

static const char *USAGE =
    "usage: ddps probe train --model resnet18|resnet18-modified|convnet3 --weights W.safetensors\n"
    "                        --in BATCH.safetensors --out OUT.safetensors\n"
    "\n"
    "BATCH: images [N,3,H,W] f32; labels [N] (cross-entropy, optional scalar label_smoothing) or\n"
    "teacher_logits [N,K] with scalar temperature (KL to soft targets); scalars lr, weight_decay (AdamW).\n"
    "OUT: logits, loss, grad.<name>, running statistics by name, param.<name> after one AdamW step.";

int cmd_probe_train(int argc, char **argv) {
    ddps_probe_train_params p;
    ddps_probe_train_params_init(&p);
    cli_opt opts[] = {
        {"--model", CLI_OPT_STR, &p.model, "ARCH", "resnet18, resnet18-modified, convnet3..convnet6", 0, 0},
        {"--weights", CLI_OPT_STR, &p.weights, "W", "torchvision-named weights: .safetensors, folder or HF cache id", 0, 0},
        {"--in", CLI_OPT_STR, &p.in, "FILE", "the batch (safetensors)", 0, 0},
        {"--out", CLI_OPT_STR, &p.out, "FILE", "output safetensors", 0, 0},
        {"--threads", CLI_OPT_INT, &p.threads, "N", "CPU threads (default: all cores)", 0, 4096},
    };
    int nopts = (int)(sizeof opts / sizeof *opts);
    ddps_error err;
    int pr = cli_args_options(USAGE, opts, nopts, argc, argv, &err);
    if (pr != 0) {
        if (pr > 0) return 0;
        fprintf(stderr, "ddps probe train: %s\n", err.message);
        return cli_exit_code(&err);
    }
    ddps_hooks h;
    cli_hooks_init(&h);
    if (ddps_probe_train(&p, &h, &err) != DDPS_OK) fprintf(stderr, "ddps %s\n", err.message);
    return cli_exit_code(&err);
}
