/* Per-op timing for benchmarks: wraps a backend's ops so each call is timed
 * (with a sync, so asynchronous backends are measured too) and summed per
 * op kind. `ddps bench ... --profile` prints the table. */
#ifndef DDPS_TENSOR_PROFILE_H
#define DDPS_TENSOR_PROFILE_H

#include <stdio.h>

#include "tensor/backend.h"

void ddps_profile_enable(ddps_backend *be);
void ddps_profile_reset(ddps_backend *be);
void ddps_profile_report(ddps_backend *be, FILE *f);
void ddps_profile_disable(ddps_backend *be);

#endif
