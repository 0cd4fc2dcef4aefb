/* Clustering a class's candidates (METHOD.md, Stage II): k-means on the
 * DIFT features, then per cluster its size, median Stage-I score and rank.
 * The computation lives here; the store (pipeline/store.h) only reads the
 * class and writes the result rows (ddps_store_cluster_write). */
#ifndef DDPS_PIPELINE_CLUSTER_H
#define DDPS_PIPELINE_CLUSTER_H

#include <stdint.h>

#include "util/err.h"

typedef struct ddps_store ddps_store;

#define DDPS_MAX_CLUSTERS 65536

typedef struct {
    int cluster, size;
    double median; /* median Stage-I score of its members */
} ddps_cluster_stat;

/* A class's clustering as the store records it. */
typedef struct {
    int class_id, k;
    uint64_t seed;
    int n_cand;
    long long *cand_ids;      /* the candidates' row ids, sorted by (relpath, idx) */
    int *assign;              /* cluster per candidate */
    float *dist;              /* distance to its centroid */
    int n_stats;
    ddps_cluster_stat *stats; /* non-empty clusters in rank order (rank = index + 1) */
} ddps_clustering;

/* k-means on all candidates of the class (k-means++ seeding, fixed seed,
 * at most 300 Lloyd iterations), then writes per candidate its cluster and
 * distance to the centroid, per cluster its size, median Stage-I score and
 * rank (median descending, ties by cluster id): ddps_store_cluster_compute
 * then ddps_store_cluster_write. Re-clustering replaces the old result.
 * Marks the class clustered with the candidate count, k and seed it used. A
 * class without candidates is marked clustered with no clusters. */
int ddps_store_cluster(ddps_store *s, int class_id, int k, uint64_t seed, ddps_err *err);
/* The k-means seed of a class: the run's --seed mixed with the class
 * folder name (score, merge and select all cluster a class with it). */
uint64_t ddps_class_cluster_seed(uint64_t seed, const char *class_name);
/* The same clustering in two steps, so that k-means can run in another
 * process than the one that writes the store (ddps merge, MPI jobs):
 * compute reads the class (its own read transaction) and gives exactly what
 * ddps_store_cluster writes; ddps_store_cluster_write (store.h) stores it in
 * one transaction after checking it still fits (same candidate count, ids
 * in range). Free with ddps_clustering_free (also safe on a zeroed value). */
int ddps_store_cluster_compute(ddps_store *s, int class_id, int k, uint64_t seed, ddps_clustering *out, ddps_err *err);
void ddps_clustering_free(ddps_clustering *c);

#endif
