/* k-means clustering for Stage II (METHOD.md, "Stage II": K = 32 clusters of
 * DIFT features per class).
 *
 * Seeding is greedy k-means++ with ddps_rng: the first centre is a uniform
 * draw; each next one is the best (lowest resulting potential) of 2 + ln(k)
 * candidates drawn by D^2 sampling, as scikit-learn does. Then Lloyd
 * iterations on squared Euclidean distance until no point changes cluster
 * or max_iter iterations have run.
 *
 * Determinism: for a given (x, n, dim, k, seed, max_iter) the result is the
 * same on every machine and for every OpenMP thread count. Distances and
 * centroid sums are accumulated in double in a fixed order; only loops over
 * points run in parallel, and each point's result depends on that point
 * alone. Ties (equal distances) go to the lower centroid index.
 *
 * Degenerate inputs never crash:
 *   - fewer distinct points than k: seeding stops when every point coincides
 *     with a chosen centre, so *k_used = number of distinct points (<= n);
 *   - n == 0: *k_used = 0, nothing written;
 *   - a cluster that empties during Lloyd is re-seeded with the point
 *     farthest from its own centroid.
 * Clusters k_used .. k-1 are not used: no point is assigned to them and their
 * centroid rows are left untouched. When the iterations converge every
 * cluster below k_used has members; when max_iter stops them first, a
 * cluster can (rarely) end up empty.
 */
#ifndef DDPS_PIPELINE_KMEANS_H
#define DDPS_PIPELINE_KMEANS_H

#include <stdint.h>

/* x: n rows of dim floats (finite). Outputs (caller-allocated):
 *   assign[n]          cluster of each point, in [0, *k_used)
 *   centroids[k * dim] first *k_used rows are the centroids
 *   dist[n]            Euclidean distance of each point to its centroid
 * Returns 0, or -1 when an argument is invalid (n < 0, dim < 1, k < 1,
 * max_iter < 0, a NULL pointer with n > 0, or a non-finite value in x). */
int ddps_kmeans(const float *x, int n, int dim, int k, uint64_t seed, int max_iter, int *assign, float *centroids,
                float *dist, int *k_used);

/* Lloyd iterations only, from k given centres init[k * dim] (same outputs,
 * all k clusters used; for tests and for callers with their own seeding). */
int ddps_kmeans_from(const float *x, int n, int dim, int k, const float *init, int max_iter, int *assign,
                     float *centroids, float *dist);

#endif
