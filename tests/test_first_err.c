/* util/first_err.h: the first error of a parallel loop is the one with the
 * lowest index, whatever the schedule; a loop without failures reports
 * nothing; workers see the stop once anything failed. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "testlib.h"
#include "util/first_err.h"

/* Indexes 500, 700 and 900 fail; every index is visited. */
static void lowest_index_wins(void) {
    for (int rep = 0; rep < 20; rep++) {
        ddps_first_err fe;
        ddps_first_err_init(&fe);
#pragma omp parallel for schedule(dynamic, 1) num_threads(4)
        for (long j = 0; j < 1000; j++) {
            long i = rep % 2 ? j : 999 - j; /* either end first: neither the first nor the last report wins */
            if (i == 500 || i == 700 || i == 900) {
                ddps_err e;
                ddps_fail(&e, "item %ld failed", i);
                ddps_first_err_set(&fe, i, &e);
            }
        }
        ddps_err err = {{0}};
        CHECK(ddps_first_err_stopped(&fe) == 1);
        CHECK(ddps_first_err_take(&fe, &err) == -1);
        CHECKF(strcmp(err.msg, "item 500 failed") == 0 && fe.index == 500, "%s", err.msg);
    }
}

/* No failure: take returns 0 and leaves err as it was. */
static void nothing_failed(void) {
    ddps_first_err fe;
    ddps_first_err_init(&fe);
    long sum = 0;
#pragma omp parallel for reduction(+ : sum) num_threads(4)
    for (long i = 0; i < 100; i++)
        if (!ddps_first_err_stopped(&fe)) sum += i;
    ddps_err err;
    snprintf(err.msg, sizeof err.msg, "untouched");
    CHECK(sum == 4950);
    CHECK(ddps_first_err_stopped(&fe) == 0 && ddps_first_err_take(&fe, &err) == 0 && strcmp(err.msg, "untouched") == 0);
}

/* Once index 3 failed, the loop's later items are skipped (one thread: the
 * order is fixed, so exactly 4 items run). */
static void workers_stop(void) {
    ddps_first_err fe;
    ddps_first_err_init(&fe);
    long ran = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(1) reduction(+ : ran)
    for (long i = 0; i < 100000; i++) {
        if (ddps_first_err_stopped(&fe)) continue;
        ran++;
        if (i == 3) {
            ddps_err e;
            ddps_fail(&e, "first");
            ddps_first_err_set(&fe, i, &e);
        }
    }
    ddps_err err;
    CHECK(ddps_first_err_take(&fe, &err) == -1 && strcmp(err.msg, "first") == 0);
    CHECKF(ran == 4, "%ld items ran", ran);
}

int main(void) {
    TEST(lowest_index_wins);
    TEST(nothing_failed);
    TEST(workers_stop);
    return t_done();
}
