/* Deterministic random numbers, identical on every machine: xoshiro256**
 * seeded through splitmix64, normals by Box-Muller. Used for noise draws,
 * k-means++ seeding, random subsets and random test weights. */
#ifndef DDPS_UTIL_RNG_H
#define DDPS_UTIL_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
    int has_spare;
    double spare;
} ddps_rng;

void ddps_rng_seed(ddps_rng *r, uint64_t seed);
uint64_t ddps_rng_u64(ddps_rng *r);
/* Uniform in [0, 1). */
double ddps_rng_uniform(ddps_rng *r);
/* Uniform integer in [0, n). */
uint64_t ddps_rng_below(ddps_rng *r, uint64_t n);
/* Standard normal. */
double ddps_rng_normal(ddps_rng *r);
void ddps_rng_fill_normal(ddps_rng *r, float *x, size_t n);
/* Mixes values into a seed (e.g. global seed + hash of a path). */
uint64_t ddps_seed_mix(uint64_t a, uint64_t b);

#endif
