#include "cli/scale.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long env_long(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) return -1;
    char *end;
    long x = strtol(v, &end, 10);
    return *end ? -1 : x;
}

int ddps_launch_size(const char **how) {
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

int ddps_slurm_array_share(int *k, int *n) {
    long id = env_long("SLURM_ARRAY_TASK_ID"), count = env_long("SLURM_ARRAY_TASK_COUNT"),
         min = env_long("SLURM_ARRAY_TASK_MIN");
    if (id < 0 || count < 2) return 0;
    if (min < 0) min = 0;
    if (id - min < 0 || id - min >= count) return 0;
    *k = (int)(id - min);
    *n = (int)count;
    return 1;
}

int ddps_threads_for_local(int local_size) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online < 1) online = 1;
    int bound = (int)online;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) bound = CPU_COUNT(&set);
    if (bound >= 1 && bound < online) return bound;
    long t = online / (local_size > 0 ? local_size : 1);
    return t < 1 ? 1 : (int)t;
}

const char *ddps_device_for_local(const char *device, int local_rank, char *buf, size_t n) {
    if (!device || strcmp(device, "cuda") != 0) return device;
    const char *vis = getenv("CUDA_VISIBLE_DEVICES");
    int count = 0;
    if (vis && *vis) {
        count = 1;
        for (const char *p = vis; *p; p++) count += *p == ',';
    }
    snprintf(buf, n, "cuda:%d", count > 0 ? local_rank % count : local_rank);
    return buf;
}
