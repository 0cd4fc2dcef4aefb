/* `ddps eval`: RDED's evaluation of a distilled set (the library's
 * ddps_run_eval; this file parses the flags). */
#include <stdio.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "ddps.h"

static const char *USAGE =
    "usage: ddps eval --distilled DIR --val VAL --teacher T.safetensors [--teacher-model ARCH] [--student ARCH]\n"
    "                 [--students N] [--size N] [--epochs N] [--batch N] [--lr X] [--wd X] [--temperature X]\n"
    "                 [--factor N] [--min-scale X] [--no-cutmix] [--eval-every N] [--seed S] [--threads N]\n"
    "                 [--out FILE]\n"
    "\n"
    "RDED's protocol, every default RDED's: N students (seeds S..S+N-1) trained on the distilled images\n"
    "(ShufflePatches(factor), RandomResizedCrop(size, scale=(1/factor, 1)), flip; CutMix on every batch) with\n"
    "the teacher's soft labels of the mixed batch (KL, temperature 20), AdamW lr 1e-3 wd 0.01, lr factor\n"
    "0.5(1+cos(pi e/E/2)) per epoch, 300 epochs; top-1 on VAL (Resize(size/7*8) + CenterCrop(size)) every\n"
    "10 epochs in the last 20% and at the end. The distilled classes (class_to_idx.json, else its folders)\n"
    "must be VAL's. Writes DIR/eval.json; an interrupted run continues where it stopped when run again.";

int cmd_eval(int argc, char **argv) {
    ddps_eval_params p;
    ddps_eval_params_init(&p);
    int seed = 0, no_cutmix = 0;
    cli_opt opts[] = {
        {"--distilled", CLI_OPT_STR, &p.distilled, "DIR", "the distilled ImageFolder (required)", 0, 0},
        {"--val", CLI_OPT_STR, &p.val, "DIR", "validation ImageFolder (required)", 0, 0},
        {"--teacher", CLI_OPT_STR, &p.teacher, "W", "teacher weights, torchvision names: .safetensors, folder or HF cache id (required)", 0, 0},
        {"--teacher-model", CLI_OPT_STR, &p.teacher_model, "ARCH", "teacher architecture (default resnet18)", 0, 0},
        {"--student", CLI_OPT_STR, &p.student, "ARCH", "student architecture (default resnet18)", 0, 0},
        {"--students", CLI_OPT_INT, &p.students, "N", "students (default 5)", 1, DDPS_EVAL_MAX_STUDENTS},
        {"--size", CLI_OPT_INT, &p.size, "N", "input side (default: the distilled images' width)", 8, 1024},
        {"--epochs", CLI_OPT_INT, &p.epochs, "N", "epochs (default 300)", 1, 100000},
        {"--batch", CLI_OPT_INT, &p.batch, "N", "batch (default RDED's: 10/50/100 for IPC 1/10/50, x2 at >= 100 classes)", 2, 4096},
        {"--lr", CLI_OPT_DOUBLE, &p.lr, "X", "AdamW learning rate (default 1e-3)", 1e-12, 100},
        {"--wd", CLI_OPT_DOUBLE, &p.weight_decay, "X", "AdamW weight decay (default 0.01)", 0, 10},
        {"--temperature", CLI_OPT_DOUBLE, &p.temperature, "X", "KD temperature (default 20)", 1e-6, 1000},
        {"--factor", CLI_OPT_INT, &p.factor, "N", "ShufflePatches factor (default 2; 1: off)", 1, 8},
        {"--min-scale", CLI_OPT_DOUBLE, &p.min_scale, "X", "RandomResizedCrop's smallest area (default 1/factor)", 0, 1},
        {"--no-cutmix", CLI_OPT_FLAG, &no_cutmix, NULL, "no CutMix", 0, 0},
        {"--eval-every", CLI_OPT_INT, &p.eval_every, "N", "evaluate every N epochs in the last 20% (default 10)", 1, 100000},
        {"--seed", CLI_OPT_INT, &seed, "S", "first student's seed (default 0)", 0, 2147483647},
        {"--threads", CLI_OPT_INT, &p.threads, "N", "CPU threads (default: all cores)", 0, 4096},
        {"--out", CLI_OPT_STR, &p.out, "FILE", "results (default DIR/eval.json)", 0, 0},
    };
    int nopts = (int)(sizeof opts / sizeof *opts);
    ddps_error err;
    int pr = cli_args_options(USAGE, opts, nopts, argc, argv, &err);
    if (pr != 0) {
        if (pr > 0) return 0;
        fprintf(stderr, "ddps eval: %s\n", err.message);
        return cli_exit_code(&err);
    }
    p.seed = (uint64_t)seed;
    p.cutmix = !no_cutmix;
    if (ddps_eval_params_check(&p, &err) != DDPS_OK) {
        fprintf(stderr, "ddps %s\n", err.message);
        return cli_exit_code(&err);
    }
    ddps_hooks h;
    cli_hooks_init(&h);
    if (ddps_run_eval(&p, &h, NULL, &err) != DDPS_OK) {
        fprintf(stderr, "ddps %s\n", err.message);
        return cli_exit_code(&err);
    }
    return 0;
}
