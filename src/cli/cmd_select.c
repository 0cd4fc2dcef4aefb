#include <stdio.h>

#include "cli/commands.h"

int cmd_select(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "ddps select: not implemented yet\n");
    return 2;
}
