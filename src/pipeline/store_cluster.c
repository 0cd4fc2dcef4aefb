/* Clustering a stored class (pipeline/store.h): the class read from the
 * store, k-means on it (pipeline/cluster.h), the result written back. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/store.h"
#include "util/fs.h"

int ddps_store_cluster_compute(ddps_store *s, int class_id, int k, uint64_t seed, ddps_clustering *out,
                               ddps_err *err) {
    memset(out, 0, sizeof *out);
    ddps_class_data d;
    if (ddps_store_load_class(s, class_id, 1, &d, err) != 0) return -1;
    float *scores = ddps_malloc((size_t)(d.n_cand ? d.n_cand : 1) * sizeof *scores);
    for (int i = 0; i < d.n_cand; i++) scores[i] = d.cand[i].score;
    int ret = ddps_cluster_compute(d.features, scores, d.n_cand, d.dim, k, seed, out, err);
    free(scores);
    if (ret != 0) {
        ddps_fail_prefix(err, "%s: class %d", ddps_store_path(s), class_id);
    } else {
        out->class_id = class_id;
        out->cand_ids = d.cand_ids;
        d.cand_ids = NULL;
        if (d.n_cand == 0) {
            free(out->cand_ids);
            out->cand_ids = NULL;
        }
    }
    ddps_class_data_free(&d);
    return ret;
}

int ddps_store_cluster(ddps_store *s, int class_id, int k, uint64_t seed, ddps_err *err) {
    ddps_clustering c;
    if (ddps_store_cluster_compute(s, class_id, k, seed, &c, err) != 0) return -1;
    int rc = ddps_store_cluster_write(s, &c, err);
    ddps_clustering_free(&c);
    return rc;
}

int ddps_class_apply_clustering(ddps_class_data *d, const ddps_clustering *c, ddps_err *err) {
    if (c->n_cand != d->n_cand)
        return ddps_fail_data(err, "class %d: clustered %d candidates, loaded %d (the store changed; run again)",
                              d->class_id, c->n_cand, d->n_cand);
    int *rank = ddps_calloc((size_t)c->k + 1, sizeof *rank);
    ddps_stored_cluster *cl = ddps_calloc((size_t)(c->n_stats ? c->n_stats : 1), sizeof *cl);
    for (int i = 0; i < c->n_stats; i++) {
        assert(c->stats[i].cluster >= 0 && c->stats[i].cluster < c->k);
        rank[c->stats[i].cluster] = i + 1;
        cl[i] = (ddps_stored_cluster){c->stats[i].cluster, c->stats[i].size, i + 1, (float)c->stats[i].median};
    }
    for (int i = 0; i < d->n_cand; i++) {
        assert(c->assign[i] >= 0 && c->assign[i] < c->k);
        d->cand[i].cluster = c->assign[i];
        d->cand[i].cluster_rank = rank[c->assign[i]];
        d->cand[i].dist = c->dist[i];
    }
    free(rank);
    free(d->clusters);
    d->clusters = cl, d->n_clusters = c->n_stats;
    return 0;
}
