#include <stdio.h>

#include "cli/commands.h"

int cmd_distill(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "ddps distill: not implemented yet\n");
    return 2;
}
