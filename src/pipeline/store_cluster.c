/* Clustering a stored class (pipeline/store.h): the class read from the
 * store, k-means on it (pipeline/cluster.h), the result written back. */
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
