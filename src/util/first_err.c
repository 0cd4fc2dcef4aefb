#include "util/first_err.h"

#include <limits.h>
#include <string.h>

void ddps_first_err_init(ddps_first_err *f) {
    memset(f, 0, sizeof *f);
    f->index = LONG_MAX;
}

int ddps_first_err_stopped(ddps_first_err *f) {
    int stop;
#pragma omp atomic read
    stop = f->failed;
    return stop;
}

void ddps_first_err_set(ddps_first_err *f, long i, const ddps_err *e) {
#pragma omp critical(ddps_first_err)
    {
        if (i < f->index) {
            f->index = i;
            f->err = *e;
        }
#pragma omp atomic write
        f->failed = 1;
    }
}

int ddps_first_err_take(const ddps_first_err *f, ddps_err *err) {
    if (!f->failed) return 0;
    if (err) *err = f->err;
    return -1;
}
