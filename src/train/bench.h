/* `ddps bench train`: images/s of a training step (forward, backward,
 * AdamW) and of the eval-mode forward of a student, and the peak RSS; see
 * bench.c. */
#ifndef DDPS_TRAIN_BENCH_H
#define DDPS_TRAIN_BENCH_H

#include "ddps.h"
#include "util/err.h"

typedef struct {
    const char *model;     /* NULL: resnet18; resnet18-modified, convnet3..convnet6 */
    const char *device;    /* NULL or "cpu" */
    const char *precision; /* NULL: f32; bf16 */
    int size, batch;       /* 0: 224 and 64 for resnet18, 32 and 256 for the others */
    int classes;           /* 0: 1000 for resnet18, 10 for the others */
    int steps, warmup;     /* 0: 10 timed steps after 2 warm-up steps */
    int threads;           /* 0: all cores */
    int json;
} tr_bench_opts;

/* Prints the report lines through h (and one JSON object last with json). */
int ddps_tr_bench(const tr_bench_opts *o, const ddps_hooks *h, ddps_err *err);

#endif
