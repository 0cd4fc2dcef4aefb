#include "pipeline/score.h"

#include <stdio.h>

int ddps_bench_score(const char *device, const char *precision, int threads, int size, int iters, int json) {
    (void)device, (void)precision, (void)threads, (void)size, (void)iters, (void)json;
    fprintf(stderr, "ddps bench score: not implemented yet\n");
    return 2;
}
