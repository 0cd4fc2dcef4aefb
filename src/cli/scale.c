/* Launch detection for `ddps score` (cli/scale.h). */
#include "cli/scale.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The integer value of environment variable name; -1 when unset or not an integer. */
static long env_long(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) return -1;
    char *end;
    long x = strtol(v, &end, 10);
    return *end ? -1 : x;
}

int cli_launch_size(const char **how) {
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        long n = env_long(vars[i]);
        if (n > 1) {
            if (how) *how = vars[i];
            return n > 1000000 ? 1000000 : (int)n;
        }
    }
    if (how) *how = NULL;
    return 1;
}

int cli_launch_rank(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        long r = env_long(vars[i]);
        if (r >= 0) return r > 1000000 ? 1000000 : (int)r;
    }
    return 0;
}

int cli_slurm_array_share(int *k, int *n) {
    long id = env_long("SLURM_ARRAY_TASK_ID"), count = env_long("SLURM_ARRAY_TASK_COUNT"),
         min = env_long("SLURM_ARRAY_TASK_MIN");
    if (id < 0 || count < 2) return 0;
    if (min < 0) min = 0;
    if (id - min < 0 || id - min >= count) return 0;
    *k = (int)(id - min);
    *n = (int)count;
    return 1;
}

int cli_launched_from_terminal(void) {
    if (isatty(STDERR_FILENO)) return 1;
    if (!isatty(STDOUT_FILENO)) return 0;
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return 0;
    close(fd);
    return 1;
}
