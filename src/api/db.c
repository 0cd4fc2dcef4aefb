/* The public store reader (include/ddps.h): a read-only ddps_store, with
 * its rows copied into ddps.h's own structs. */
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "pipeline/params.h"
#include "pipeline/select.h"
#include "pipeline/store.h"
#include "util/fs.h"

struct ddps_db {
    ddps_store *st;
};

DDPS_API ddps_status ddps_db_open(const char *path, ddps_db **out, ddps_error *err) {
    if (out) *out = NULL;
    if (!path || !out) return ddps_api_failf(err, DDPS_ERR_USAGE, "ddps_db_open: path and out are required");
    ddps_err e = {{0}};
    ddps_store *st;
    ddps_api_enter(NULL);
    int rc = ddps_store_open(path, 1, &st, &e);
    ddps_api_leave();
    if (rc != 0) return ddps_api_fail(err, &e);
    *out = ddps_calloc(1, sizeof **out);
    (*out)->st = st;
    return ddps_api_ok(err);
}

DDPS_API void ddps_db_close(ddps_db *db) {
    if (!db) return;
    ddps_store_close(db->st);
    free(db);
}

DDPS_API ddps_status ddps_db_meta(ddps_db *db, const char *key, char **value, ddps_error *err) {
    if (value) *value = NULL;
    if (!db || !key || !value) return ddps_api_failf(err, DDPS_ERR_USAGE, "ddps_db_meta: db, key and value are required");
    ddps_err e = {{0}};
    return ddps_store_get_meta(db->st, key, value, &e) != 0 ? ddps_api_fail(err, &e) : ddps_api_ok(err);
}

DDPS_API ddps_status ddps_db_classes(ddps_db *db, ddps_db_class **out, int *n, ddps_error *err) {
    if (out) *out = NULL;
    if (n) *n = 0;
    if (!db || !out || !n) return ddps_api_failf(err, DDPS_ERR_USAGE, "ddps_db_classes: db, out and n are required");
    ddps_err e = {{0}};
    /* the store's list is the public type (ddps_class_info is ddps_db_class): handed over */
    if (ddps_store_list_classes(db->st, out, n, &e) != 0) return ddps_api_fail(err, &e);
    return ddps_api_ok(err);
}

DDPS_API void ddps_db_classes_free(ddps_db_class *c, int n) { ddps_store_free_classes(c, n); }

DDPS_API void ddps_db_class_data_free(ddps_db_class_data *d) {
    if (!d) return;
    for (int i = 0; i < d->n_images && d->images; i++) {
        free(d->images[i].relpath);
        free(d->images[i].map);
    }
    free(d->images);
    free(d->cand);
    free(d->features);
    free(d->clusters);
    if (d->internal_) {
        ddps_class_data_free(d->internal_);
        free(d->internal_);
    }
    memset(d, 0, sizeof *d);
}

DDPS_API ddps_status ddps_db_load(ddps_db *db, int class_id, int with_features, int with_maps,
                                  ddps_db_class_data *out, ddps_error *err) {
    if (out) memset(out, 0, sizeof *out);
    if (!db || !out) return ddps_api_failf(err, DDPS_ERR_USAGE, "ddps_db_load: db and out are required");
    ddps_err e = {{0}};
    ddps_class_data *d = ddps_calloc(1, sizeof *d);
    if (ddps_store_load_class(db->st, class_id, with_features != 0, d, &e) != 0) {
        ddps_class_data_free(d);
        free(d);
        return ddps_api_fail(err, &e);
    }
    ddps_stored_map *maps = NULL;
    if (with_maps && ddps_store_load_maps(db->st, d, &maps, &e) != 0) {
        ddps_class_data_free(d);
        free(d);
        return ddps_api_fail(err, &e);
    }
    out->internal_ = d;
    out->class_id = d->class_id;
    out->n_images = d->n_images;
    out->images = ddps_calloc((size_t)(d->n_images ? d->n_images : 1), sizeof *out->images);
    for (int i = 0; i < d->n_images; i++) {
        ddps_db_image *im = &out->images[i];
        const ddps_stored_image *s = &d->images[i];
        im->relpath = ddps_strdup(s->relpath);
        im->width = s->width, im->height = s->height, im->rw = s->rw, im->rh = s->rh;
        im->image_score = s->image_score;
        if (maps && maps[i].data) {
            im->map_h = maps[i].h, im->map_w = maps[i].w;
            im->map = maps[i].data; /* handed over */
            maps[i].data = NULL;
        }
    }
    if (maps) ddps_store_free_maps(maps, d->n_images);
    out->n_cand = d->n_cand;
    out->cand = ddps_calloc((size_t)(d->n_cand ? d->n_cand : 1), sizeof *out->cand);
    if (d->n_cand > 0) memcpy(out->cand, d->cand, (size_t)d->n_cand * sizeof *out->cand); /* the same type */
    out->dim = d->dim;
    if (d->features) {
        size_t nf = (size_t)d->n_cand * d->dim;
        out->features = ddps_malloc((nf ? nf : 1) * sizeof(float));
        memcpy(out->features, d->features, nf * sizeof(float));
    }
    out->n_clusters = d->n_clusters;
    out->clusters = ddps_calloc((size_t)(d->n_clusters ? d->n_clusters : 1), sizeof *out->clusters);
    if (d->n_clusters > 0) memcpy(out->clusters, d->clusters, (size_t)d->n_clusters * sizeof *out->clusters);
    return ddps_api_ok(err);
}

DDPS_API ddps_status ddps_db_select(const ddps_db_class_data *d, int ipc, int top_clusters, int mosaic_max_ipc,
                                    int low_res, int *picks, unsigned char *fill, int *n_picks, int *n_outputs,
                                    int *per_image, ddps_error *err) {
    if (!d || !d->internal_ || !picks || !n_picks || !n_outputs || !per_image)
        return ddps_api_failf(err, DDPS_ERR_USAGE, "ddps_db_select: a loaded class and the output arrays are required");
    /* the selection rule's settings, as `ddps select` checks them */
    ddps_select_params sp;
    ddps_select_params_defaults(&sp);
    sp.top_clusters = top_clusters;
    sp.mosaic_max_ipc = mosaic_max_ipc;
    ddps_err e = {{0}};
    if (ddps_select_check(&sp, &ipc, 1, &e) != 0) return ddps_api_fail(err, &e);
    const ddps_class_data *in = d->internal_;
    int mosaic = !low_res && ipc <= mosaic_max_ipc, needed = mosaic ? 4 * ipc : ipc;
    unsigned char *f = fill ? fill : ddps_malloc((size_t)needed);
    int m = ddps_select_patches(in, needed, top_clusters, picks, f);
    if (!fill) free(f);
    ddps_layout lay = ddps_select_layout(ipc, m, mosaic);
    *n_picks = m;
    *n_outputs = lay.n_images;
    *per_image = lay.per_image;
    return ddps_api_ok(err);
}
