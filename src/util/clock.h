/* The clocks of ddps, one of each kind: wall time for every timing (stage
 * timings, benches, op profiles, progress rates) and the process's CPU time
 * (report's CPU-vs-wall figures). Nothing else in src reads a clock. */
#ifndef DDPS_UTIL_CLOCK_H
#define DDPS_UTIL_CLOCK_H

/* Monotonic wall seconds since an arbitrary origin (CLOCK_MONOTONIC): never
 * goes back, not moved by clock changes. Only differences mean something. */
double ddps_seconds(void);
/* CPU seconds the process has used, all threads together
 * (CLOCK_PROCESS_CPUTIME_ID); 0 when the system cannot tell. Only
 * differences mean something. */
double ddps_cpu_seconds(void);

#endif
