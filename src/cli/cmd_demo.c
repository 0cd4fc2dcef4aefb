#include <stdio.h>

#include "cli/commands.h"

int cmd_demo(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "ddps demo: not implemented yet\n");
    return 2;
}
