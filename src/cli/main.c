/* ddps: diffusion-driven patch selection for dataset distillation. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "ddps.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
    {"demo", cmd_demo, "make a tiny model and dataset, distill them (no downloads)"},
    {"distill", cmd_distill, "score a dataset and write distilled sets (score + select)"},
    {"score", cmd_score, "Stage I and II for every image of an ImageFolder, into a store"},
    {"merge", cmd_merge, "join the shard stores of a sharded score job into one store"},
    {"select", cmd_select, "write distilled sets for any IPC from a store (no model evaluation)"},
    {"report", cmd_report, "static HTML report of a store: classes, clusters, heatmaps, distilled images"},
    {"train", cmd_train, "train a classifier (a teacher) from scratch on an ImageFolder"},
    {"eval", cmd_eval, "RDED's evaluation of a distilled set: students trained with a teacher's soft labels"},
    {"probe", cmd_probe, "run one model component on a safetensors input (for checking)"},
    {"bench", cmd_bench, "speed of the engine on full-size SD v1.5 shapes"},
    {"world-eval", cmd_world_eval, "measure a store scored on the toy world against its known object boxes"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: ddps [-q|-v] <command> [options]   (ddps <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-q") == 0)
            cli_verbosity = 0;
        else if (strcmp(argv[i], "-v") == 0)
            cli_verbosity = 2;
        else if (strcmp(argv[i], "--version") == 0) {
            printf("ddps %s\n", ddps_version());
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "ddps: %s: unknown option\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    for (size_t c = 0; c < sizeof commands / sizeof *commands; c++)
        if (strcmp(argv[i], commands[c].name) == 0) return commands[c].fn(argc - i, argv + i);
    fprintf(stderr, "ddps: %s: unknown command\n", argv[i]);
    usage(stderr);
    return 2;
}
