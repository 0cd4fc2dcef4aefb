/* Clustering a class's candidates (METHOD.md, Stage II): k-means on the
 * DIFT features, then per cluster its size, median Stage-I score and rank.
 * The computation (compute core) lives here and knows no store; the store
 * (pipeline/store.h: ddps_store_cluster) reads the class, calls it and
 * writes the result rows. */
#ifndef DDPS_PIPELINE_CLUSTER_H
#define DDPS_PIPELINE_CLUSTER_H

#include <stdint.h>

#include "util/err.h"

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

/* k-means on n candidates' features [n][dim] (k-means++ seeding, fixed
 * seed, at most 300 Lloyd iterations), then per candidate its cluster and
 * distance to the centroid, per cluster its size, median Stage-I score
 * (scores[n]) and rank (median descending, ties by cluster id). Fills out's
 * k, seed, n_cand, assign, dist and stats (class_id and cand_ids are the
 * caller's). n = 0 gives no clusters. */
int ddps_cluster_compute(const float *features, const float *scores, int n, int dim, int k, uint64_t seed,
                         ddps_clustering *out, ddps_err *err);
/* The k-means seed of a class: the run's --seed mixed with the class
 * folder name (score, merge and select all cluster a class with it). */
uint64_t ddps_class_cluster_seed(uint64_t seed, const char *class_name);
/* Frees a clustering (also safe on a zeroed value). */
void ddps_clustering_free(ddps_clustering *c);

#endif
