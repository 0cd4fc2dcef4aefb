#include <stdio.h>

#include "cli/commands.h"

int cmd_probe(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "ddps probe: not implemented yet\n");
    return 2;
}
