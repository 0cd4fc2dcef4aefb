/* safetensors reader: header JSON, offsets, shapes, dtypes, conversions. */
#include <stdlib.h>

#include "fz_util.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    const char *path = fz_path(0, "x.safetensors");
    if (fz_write(path, data, len) != 0) return 0;
    st_file f;
    ddps_err err;
    if (ddps_st_open(&f, path, &err) != 0) return 0;
    for (int i = 0; i < f.n; i++) {
        const st_tensor *t = &f.t[i];
        (void)ddps_st_find(&f, t->name);
        if (t->numel > ((size_t)1 << 22)) continue; /* conversion size is the caller's choice */
        float *v = malloc((t->numel ? t->numel : 1) * sizeof(float));
        int64_t *w = malloc((t->numel ? t->numel : 1) * sizeof(int64_t));
        (void)ddps_st_to_f32(t, v);
        (void)ddps_st_to_i64(&f, t, -1000000, 1000000, w, &err);
        ddps_st_release(&f, t);
        free(v);
        free(w);
    }
    ddps_st_close(&f);
    return 0;
}
