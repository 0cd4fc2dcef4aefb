/* The first error of a parallel loop (OpenMP): workers that fail report
 * (index, error); the one with the lowest index is kept, so the message a
 * run returns does not depend on scheduling. Workers poll
 * ddps_first_err_stopped to skip the rest once anything failed. */
#ifndef DDPS_UTIL_FIRST_ERR_H
#define DDPS_UTIL_FIRST_ERR_H

#include "util/err.h"

typedef struct {
    int failed;  /* 1 once any worker failed (read and written atomically) */
    long index;  /* loop index of the kept error */
    ddps_err err;
} ddps_first_err;

/* Nothing failed yet. */
void ddps_first_err_init(ddps_first_err *f);
/* 1 when some worker has failed (callable from any thread). */
int ddps_first_err_stopped(ddps_first_err *f);
/* Records the error e of loop index i (any thread); keeps the lowest index. */
void ddps_first_err_set(ddps_first_err *f, long i, const ddps_err *e);
/* After the loop: copies the kept error to err and returns -1, or 0 when
 * nothing failed. */
int ddps_first_err_take(const ddps_first_err *f, ddps_err *err);

#endif
