#include "pipeline/cluster.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/kmeans.h"
#include "util/fs.h"
#include "util/rng.h"

#define KMEANS_ITERS 300

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Median descending; equal medians by cluster id, so ranks are fixed. */
static int cmp_stat(const void *a, const void *b) {
    const ddps_cluster_stat *x = a, *y = b;
    if (x->median != y->median) return x->median > y->median ? -1 : 1;
    return (x->cluster > y->cluster) - (x->cluster < y->cluster);
}

/* Per-cluster size and median Stage-I score (numpy's median: mean of the two
 * middle values for an even count), sorted into rank order; *out is heap,
 * returns its count (the non-empty clusters). Pure. */
static int cluster_stats(const float *scores, int n, const int *assign, int k, ddps_cluster_stat **out) {
    int *size = ddps_calloc((size_t)k, sizeof *size), *start = ddps_calloc((size_t)k + 1, sizeof *start);
    float *sorted = ddps_malloc((size_t)(n ? n : 1) * sizeof *sorted);
    for (int i = 0; i < n; i++) {
        assert(assign[i] >= 0 && assign[i] < k); /* k-means assigns into [0, k_used) */
        size[assign[i]]++;
    }
    for (int j = 0; j < k; j++) start[j + 1] = start[j] + size[j];
    int *fill = ddps_calloc((size_t)k, sizeof *fill);
    for (int i = 0; i < n; i++) sorted[start[assign[i]] + fill[assign[i]]++] = scores[i];
    ddps_cluster_stat *st = ddps_malloc((size_t)k * sizeof *st);
    int m = 0;
    for (int j = 0; j < k; j++) {
        if (!size[j]) continue;
        float *v = sorted + start[j];
        qsort(v, (size_t)size[j], sizeof *v, cmp_float);
        int h = size[j] / 2;
        st[m].cluster = j;
        st[m].size = size[j];
        st[m].median = size[j] % 2 ? v[h] : 0.5 * ((double)v[h - 1] + v[h]);
        m++;
    }
    qsort(st, (size_t)m, sizeof *st, cmp_stat);
    free(size);
    free(start);
    free(sorted);
    free(fill);
    *out = st;
    return m;
}

void ddps_clustering_free(ddps_clustering *c) {
    free(c->cand_ids);
    free(c->assign);
    free(c->dist);
    free(c->stats);
    memset(c, 0, sizeof *c);
}

int ddps_cluster_compute(const float *features, const float *scores, int n, int dim, int k, uint64_t seed,
                         ddps_clustering *out, ddps_err *err) {
    memset(out, 0, sizeof *out);
    if (k < 1 || k > DDPS_MAX_CLUSTERS) return ddps_fail_usage(err, "number of clusters %d outside 1..%d", k, DDPS_MAX_CLUSTERS);
    out->k = k, out->seed = seed, out->n_cand = n;
    if (n == 0) return 0;
    int k_used = 0, ret = 0;
    out->assign = ddps_malloc((size_t)n * sizeof *out->assign);
    out->dist = ddps_malloc((size_t)n * sizeof *out->dist);
    float *cent = ddps_malloc((size_t)k * (size_t)dim * sizeof *cent);
    if (ddps_kmeans(features, n, dim, k, seed, KMEANS_ITERS, out->assign, cent, out->dist, &k_used) != 0)
        ret = ddps_fail_data(err, "k-means failed (a non-finite feature?)");
    else
        out->n_stats = cluster_stats(scores, n, out->assign, k_used, &out->stats);
    free(cent);
    if (ret != 0) ddps_clustering_free(out);
    return ret;
}

uint64_t ddps_class_cluster_seed(uint64_t seed, const char *class_name) {
    return ddps_seed_mix(seed, ddps_fnv1a(DDPS_FNV_INIT, class_name, strlen(class_name)));
}
