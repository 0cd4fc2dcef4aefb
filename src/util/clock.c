#include "util/clock.h"

#include <time.h>

/* Seconds of clock id as a double; 0 when the clock cannot be read. */
static double read_clock(clockid_t id) {
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0) return 0;
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double ddps_seconds(void) { return read_clock(CLOCK_MONOTONIC); }

double ddps_cpu_seconds(void) { return read_clock(CLOCK_PROCESS_CPUTIME_ID); }
