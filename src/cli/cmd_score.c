#include <stdio.h>

#include "cli/commands.h"

int cmd_score(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "ddps score: not implemented yet\n");
    return 2;
}
