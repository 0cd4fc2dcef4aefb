/* `ddps train`: a classifier from scratch on an ImageFolder (the library's
 * ddps_run_train; this file parses the flags). */
#include <stdio.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "ddps.h"

static const char *USAGE =
    "usage: ddps train --data TRAIN --out MODEL.safetensors [--val VAL] [--model ARCH] [--size N] [--epochs N]\n"
    "                  [--batch N] [--opt sgd|adamw] [--lr X] [--wd X] [--momentum X] [--[no-]nesterov]\n"
    "                  [--sched constant|linear|cosine] [--warmup N] [--label-smoothing X] [--crop-scale X]\n"
    "                  [--seed S] [--threads N]\n"
    "\n"
    "Trains ARCH from scratch with hard labels (RandomResizedCrop + flip, cross-entropy), evaluates top-1/top-5\n"
    "on VAL (Resize(size/7*8) + CenterCrop) after every epoch, and writes MODEL.safetensors (torchvision names)\n"
    "and MODEL.json (classes, settings, per-epoch loss and accuracy). A checkpoint after every epoch\n"
    "(MODEL.safetensors.ckpt) lets an interrupted run continue where it stopped: run the same command again.";

int cmd_train(int argc, char **argv) {
    ddps_train_params p;
    ddps_train_params_init(&p);
    int seed = 0, no_nesterov = 0, nesterov = 0;
    cli_opt opts[] = {
        {"--data", CLI_OPT_STR, &p.data, "DIR", "training ImageFolder (required)", 0, 0},
        {"--val", CLI_OPT_STR, &p.val, "DIR", "validation ImageFolder (same classes)", 0, 0},
        {"--model", CLI_OPT_STR, &p.model, "ARCH", "resnet18, resnet18-modified (default), convnet3..convnet6", 0, 0},
        {"--out", CLI_OPT_STR, &p.out, "FILE", "output .safetensors (required)", 0, 0},
        {"--size", CLI_OPT_INT, &p.size, "N", "input side in pixels (default 32)", 8, 1024},
        {"--epochs", CLI_OPT_INT, &p.epochs, "N", "epochs (default 30)", 1, 100000},
        {"--batch", CLI_OPT_INT, &p.batch, "N", "batch size (default 64)", 2, 4096},
        {"--opt", CLI_OPT_STR, &p.opt, "NAME", "sgd (default, momentum + Nesterov) or adamw", 0, 0},
        {"--lr", CLI_OPT_DOUBLE, &p.lr, "X", "learning rate (default 0.1 sgd, 1e-3 adamw)", 0, 100},
        {"--wd", CLI_OPT_DOUBLE, &p.weight_decay, "X", "weight decay (default 5e-4 sgd, 0.01 adamw)", 0, 10},
        {"--momentum", CLI_OPT_DOUBLE, &p.momentum, "X", "SGD momentum (default 0.9)", 0, 0.999999},
        {"--nesterov", CLI_OPT_FLAG, &nesterov, NULL, "Nesterov momentum (the default)", 0, 0},
        {"--no-nesterov", CLI_OPT_FLAG, &no_nesterov, NULL, "plain SGD momentum", 0, 0},
        {"--sched", CLI_OPT_STR, &p.sched, "NAME", "constant, linear or cosine (default), per epoch", 0, 0},
        {"--warmup", CLI_OPT_INT, &p.warmup, "N", "linear warm-up epochs (default 0)", 0, 100000},
        {"--label-smoothing", CLI_OPT_DOUBLE, &p.label_smoothing, "X", "label smoothing (default 0)", 0, 0.999999},
        {"--crop-scale", CLI_OPT_DOUBLE, &p.crop_scale, "X",
         "smallest crop area of RandomResizedCrop (default 0.08 at size >= 128, else 0.35)", 0, 1},
        {"--seed", CLI_OPT_INT, &seed, "S", "seed of initialisation, order and augmentation (default 0)", 0,
         2147483647},
        {"--threads", CLI_OPT_INT, &p.threads, "N", "CPU threads (default: all cores)", 0, 4096},
    };
    int nopts = (int)(sizeof opts / sizeof *opts);
    ddps_error err;
    int pr = cli_args_options(USAGE, opts, nopts, argc, argv, &err);
    if (pr != 0) {
        if (pr > 0) return 0;
        fprintf(stderr, "ddps train: %s\n", err.message);
        return cli_exit_code(&err);
    }
    if (nesterov && no_nesterov) {
        fprintf(stderr, "ddps train: --nesterov and --no-nesterov: give one\n");
        return 2;
    }
    p.seed = (uint64_t)seed;
    p.nesterov = !no_nesterov;
    if (ddps_train_params_check(&p, &err) != DDPS_OK) {
        fprintf(stderr, "ddps %s\n", err.message);
        return cli_exit_code(&err);
    }
    ddps_hooks h;
    cli_hooks_init(&h);
    ddps_train_result r;
    if (ddps_run_train(&p, &h, &r, &err) != DDPS_OK) {
        fprintf(stderr, "ddps %s\n", err.message);
        return cli_exit_code(&err);
    }
    if (r.top1 >= 0)
        printf("%s: %d epochs, loss %.4f, val top-1 %.2f%%, top-5 %.2f%% (%d images, %d classes, %.0f s)\n", p.out,
               r.epochs, r.loss, 100 * r.top1, 100 * r.top5, r.images, r.classes, r.seconds);
    else
        printf("%s: %d epochs, loss %.4f (%d images, %d classes, %.0f s)\n", p.out, r.epochs, r.loss, r.images,
               r.classes, r.seconds);
    return 0;
}
