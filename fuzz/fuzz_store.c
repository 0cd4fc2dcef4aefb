/* The store reader: a (mutated) store file opened read-only and read the
 * way `ddps select` and `ddps score` read it: identity, meta, classes,
 * every class with features, bad images, totals, ddps_store_verify. */
#include <stdlib.h>
#include <unistd.h>

#include "fz_util.h"
#include "pipeline/store.h"
#include "pipeline/store_guard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    fz_quiet();
    const char *path = fz_path(0, "s.sqlite");
    unlink(fz_path(1, "s.sqlite-wal"));
    unlink(fz_path(2, "s.sqlite-shm"));
    if (fz_write(path, data, len) != 0) return 0;
    ddps_store *s = NULL;
    ddps_err err;
    if (ddps_store_open(path, 1, &s, &err) != 0) return 0;
    const char *keys[] = {"settings", "model_id", "data_root", "feature_dim", "ddps_version"};
    for (int i = 0; i < 5; i++) {
        char *v = NULL;
        if (ddps_store_get_meta(s, keys[i], &v, &err) == 0) free(v);
    }
    ddps_class_info *cls = NULL;
    int n = 0;
    if (ddps_store_list_classes(s, &cls, &n, &err) == 0) {
        for (int i = 0; i < n; i++) {
            ddps_class_data d;
            if (ddps_store_load_class(s, cls[i].id, 1, &d, &err) == 0) ddps_class_data_free(&d);
            ddps_bad_image *bad = NULL;
            int nb = 0;
            if (ddps_store_list_bad(s, cls[i].id, &bad, &nb, &err) == 0) ddps_store_free_bad(bad, nb);
        }
        ddps_store_free_classes(cls, n);
    }
    ddps_run_stats tot;
    (void)ddps_store_totals(s, &tot, &err);
    (void)ddps_store_verify(s, &err);
    ddps_store_close(s);
    return 0;
}
