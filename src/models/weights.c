#include "models/weights.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fs.h"
#include "util/rng.h"

void ddps_ws_init_declare(ddps_wsrc *ws) {
    memset(ws, 0, sizeof *ws);
    ws->mode = WS_DECLARE;
}

void ddps_ws_init_random(ddps_wsrc *ws, ddps_backend *be, uint64_t seed) {
    memset(ws, 0, sizeof *ws);
    ws->mode = WS_RANDOM;
    ws->be = be;
    ws->seed = seed;
}

void ddps_ws_init_file(ddps_wsrc *ws, ddps_backend *be, st_file *files, int n_files, const char *alt_prefix) {
    memset(ws, 0, sizeof *ws);
    ws->mode = WS_FILE;
    ws->be = be;
    ws->files = files;
    ws->n_files = n_files;
    ws->alt_prefix = alt_prefix;
}

static ddps_weight *own(ddps_wsrc *ws, ddps_weight *w) {
    if (!w) return NULL;
    if (ws->n_owned == ws->cap_owned) {
        ws->cap_owned = ws->cap_owned ? 2 * ws->cap_owned : 256;
        ws->owned = ddps_realloc(ws->owned, (size_t)ws->cap_owned * sizeof *ws->owned);
    }
    ws->owned[ws->n_owned++] = w;
    return w;
}

ddps_weight **ddps_ws_take(ddps_wsrc *ws, int *n) {
    ddps_weight **w = ws->owned;
    *n = ws->n_owned;
    ws->owned = NULL;
    ws->n_owned = ws->cap_owned = 0;
    return w;
}

void ddps_ws_free(ddps_wsrc *ws) {
    /* Weights nobody took (a failed build) are freed here. */
    for (int i = 0; i < ws->n_owned; i++) ws->be->ops->free_weight(ws->be, ws->owned[i]);
    free(ws->owned);
    ws->owned = NULL;
    ws->n_owned = 0;
    for (int i = 0; i < ws->n; i++) free(ws->list[i].name);
    free(ws->list);
    free(ws->tmp);
    ws->list = NULL;
    ws->tmp = NULL;
    ws->n = ws->cap = 0;
}

static void record(ddps_wsrc *ws, const char *name, int ndim, const int64_t *shape) {
    if (ws->n == ws->cap) {
        ws->cap = ws->cap ? 2 * ws->cap : 256;
        ws->list = ddps_realloc(ws->list, (size_t)ws->cap * sizeof *ws->list);
    }
    ddps_ws_entry *e = &ws->list[ws->n++];
    e->name = ddps_strdup(name);
    e->ndim = ndim;
    memset(e->shape, 0, sizeof e->shape);
    memcpy(e->shape, shape, (size_t)ndim * sizeof *shape);
}

/* Legacy attention names of old VAE checkpoints. */
static const char *legacy_alias(const char *name, char *buf, size_t n) {
    static const char *map[][2] = {{".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."},
                                   {".to_out.0.", ".proj_attn."}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
        const char *p = strstr(name, map[i][0]);
        if (p && strstr(name, "mid_block.attentions.")) {
            snprintf(buf, n, "%.*s%s%s", (int)(p - name), name, map[i][1], p + strlen(map[i][0]));
            return buf;
        }
    }
    return NULL;
}

static const st_tensor *lookup(st_file *files, int n_files, const char *alt_prefix, const char *name,
                               const st_file **owner) {
    char buf[512], alias[512];
    const char *names[3] = {name, NULL, legacy_alias(name, alias, sizeof alias)};
    if (alt_prefix) {
        snprintf(buf, sizeof buf, "%s%s", alt_prefix, name);
        names[1] = buf;
    }
    for (int k = 0; k < 3; k++) {
        if (!names[k]) continue;
        for (int f = 0; f < n_files; f++) {
            const st_tensor *t = ddps_st_find(&files[f], names[k]);
            if (t) {
                if (owner) *owner = &files[f];
                return t;
            }
        }
    }
    return NULL;
}

/* Shapes equal, allowing trailing 1x1 kernel dims on either side (legacy
 * checkpoints store some linears as 1x1 convolutions and vice versa). */
static int shape_matches(const st_tensor *t, int ndim, const int64_t *shape) {
    int a = t->ndim, b = ndim;
    while (a > 2 && t->shape[a - 1] == 1) a--;
    while (b > 2 && shape[b - 1] == 1) b--;
    if (a != b) return 0;
    for (int i = 0; i < a; i++)
        if (t->shape[i] != shape[i]) return 0;
    return 1;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < ndim && o < n; i++) o += (size_t)snprintf(buf + o, n - o, i ? "x%lld" : "%lld", (long long)shape[i]);
    if (ndim == 0) snprintf(buf, n, "scalar");
}

void ddps_ws_random_values(uint64_t seed, const char *name, int ndim, const int64_t *shape, float *out) {
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)shape[i];
    size_t len = strlen(name);
    int is_bias = len > 5 && strcmp(name + len - 5, ".bias") == 0;
    int is_norm = ndim == 1 && !is_bias && strstr(name, "norm") != NULL;
    int is_embed = strstr(name, "embedding.weight") != NULL;
    size_t fan_in = ndim > 1 ? numel / (size_t)shape[0] : 1;
    float scale = is_embed ? 0.02f : is_bias ? 0.05f : 1.0f / sqrtf((float)fan_in);
    float base = is_norm ? 1.0f : 0.0f, sd = is_norm ? 0.1f : scale;
    uint64_t h = ddps_seed_mix(seed, ddps_fnv1a(DDPS_FNV_INIT, name, len));
    /* Fixed chunks, each with its own stream: parallel and still the same
     * numbers for any thread count. */
    const size_t chunk = 1 << 16;
    long nchunks = (long)((numel + chunk - 1) / chunk);
#pragma omp parallel for schedule(static)
    for (long c = 0; c < nchunks; c++) {
        ddps_rng r;
        ddps_rng_seed(&r, ddps_seed_mix(h, (uint64_t)c));
        size_t end = ((size_t)c + 1) * chunk < numel ? ((size_t)c + 1) * chunk : numel;
        for (size_t i = (size_t)c * chunk; i < end; i++) out[i] = base + sd * (float)ddps_rng_normal(&r);
    }
}

/* Fetches one tensor as f32 into ws->tmp (FILE or RANDOM). */
static float *fetch(ddps_wsrc *ws, const char *name, int ndim, const int64_t *shape) {
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)shape[i];
    if (numel > ws->tmp_cap) {
        free(ws->tmp);
        ws->tmp = ddps_malloc(numel * sizeof(float));
        ws->tmp_cap = numel;
    }
    if (ws->mode == WS_RANDOM) {
        ddps_ws_random_values(ws->seed, name, ndim, shape, ws->tmp);
        return ws->tmp;
    }
    const st_file *f = NULL;
    const st_tensor *t = lookup(ws->files, ws->n_files, ws->alt_prefix, name, &f);
    if (!t) {
        ddps_fail(&ws->err, "missing tensor '%s'", name);
        ws->failed = 1;
        return NULL;
    }
    if (t->numel != numel || !shape_matches(t, ndim, shape)) {
        ddps_fail(&ws->err, "%s: tensor '%s' has the wrong shape", f->path, name);
        ws->failed = 1;
        return NULL;
    }
    size_t bad = ddps_st_to_f32(t, ws->tmp);
    if (bad) { /* summed; the model loader prints one line for all of them */
        if (ws->nonfinite_tensors++ == 0) snprintf(ws->nonfinite_first, sizeof ws->nonfinite_first, "%s", t->name);
        ws->nonfinite += bad;
    }
    ddps_st_release(f, t);
    return ws->tmp;
}

static void vname(char *buf, size_t n, const char *fmt, va_list ap) { vsnprintf(buf, n, fmt, ap); }

/* Declares or fetches name.weight (+ name.bias) and builds a weight with make(). */
static ddps_weight *weight_and_bias(ddps_wsrc *ws, const char *base, int ndim, const int64_t *shape, int bias,
                                    int r0, int r1, int as_conv) {
    char wn[512], bn[512];
    snprintf(wn, sizeof wn, "%s.weight", base);
    snprintf(bn, sizeof bn, "%s.bias", base);
    if (ws->mode == WS_DECLARE) {
        record(ws, wn, ndim, shape);
        if (bias) record(ws, bn, 1, shape);
        return NULL;
    }
    if (ws->failed) return NULL;
    int in = (int)shape[1], k = ndim == 4 ? (int)shape[2] : 1;
    size_t per_row = (size_t)in * k * k;
    float *w = fetch(ws, wn, ndim, shape);
    if (!w) return NULL;
    /* Keep the rows we use: fetch reuses ws->tmp, so copy before the bias. */
    size_t rows = (size_t)(r1 - r0);
    float *wcopy = ddps_malloc(rows * per_row * sizeof(float));
    memcpy(wcopy, w + (size_t)r0 * per_row, rows * per_row * sizeof(float));
    float *b = NULL;
    if (bias) {
        float *bf = fetch(ws, bn, 1, shape);
        if (!bf) {
            free(wcopy);
            return NULL;
        }
        b = ddps_malloc(rows * sizeof(float));
        memcpy(b, bf + r0, rows * sizeof(float));
    }
    ddps_weight *res = as_conv ? ws->be->ops->make_conv(ws->be, wcopy, b, (int)rows, in, k, k, &ws->err)
                               : ws->be->ops->make_linear(ws->be, wcopy, b, (int)rows, in, &ws->err);
    if (!res) {
        ddps_fail_prefix(&ws->err, "%s", base);
        ws->failed = 1;
    }
    own(ws, res);
    free(wcopy);
    free(b);
    return res;
}

ddps_weight *ddps_ws_linear(ddps_wsrc *ws, int out, int in, int bias, const char *fmt, ...) {
    char base[448];
    va_list ap;
    va_start(ap, fmt);
    vname(base, sizeof base, fmt, ap);
    va_end(ap);
    int64_t shape[2] = {out, in};
    return weight_and_bias(ws, base, 2, shape, bias, 0, out, 0);
}

ddps_weight *ddps_ws_linear_1x1(ddps_wsrc *ws, int out, int in, int bias, const char *fmt, ...) {
    char base[448];
    va_list ap;
    va_start(ap, fmt);
    vname(base, sizeof base, fmt, ap);
    va_end(ap);
    int64_t shape[4] = {out, in, 1, 1};
    return weight_and_bias(ws, base, 4, shape, bias, 0, out, 0);
}

ddps_weight *ddps_ws_conv(ddps_wsrc *ws, int out, int in, int k, int bias, const char *fmt, ...) {
    char base[448];
    va_list ap;
    va_start(ap, fmt);
    vname(base, sizeof base, fmt, ap);
    va_end(ap);
    int64_t shape[4] = {out, in, k, k};
    return weight_and_bias(ws, base, 4, shape, bias, 0, out, 1);
}

ddps_weight *ddps_ws_conv_rows(ddps_wsrc *ws, int out, int in, int k, int r0, int r1, const char *fmt, ...) {
    char base[448];
    va_list ap;
    va_start(ap, fmt);
    vname(base, sizeof base, fmt, ap);
    va_end(ap);
    int64_t shape[4] = {out, in, k, k};
    if (ws->mode == WS_DECLARE && r0 != 0) return NULL; /* declared once, by the first half */
    return weight_and_bias(ws, base, 4, shape, 1, r0, r1, k != 1);
}

void ddps_ws_norm(ddps_wsrc *ws, ddps_weight **gamma, ddps_weight **beta, int n, const char *fmt, ...) {
    char base[448], wn[512], bn[512];
    va_list ap;
    va_start(ap, fmt);
    vname(base, sizeof base, fmt, ap);
    va_end(ap);
    snprintf(wn, sizeof wn, "%s.weight", base);
    snprintf(bn, sizeof bn, "%s.bias", base);
    int64_t shape[1] = {n};
    *gamma = *beta = NULL;
    if (ws->mode == WS_DECLARE) {
        record(ws, wn, 1, shape);
        record(ws, bn, 1, shape);
        return;
    }
    if (ws->failed) return;
    float *g = fetch(ws, wn, 1, shape);
    if (g) *gamma = own(ws, ws->be->ops->make_table(ws->be, g, 1, n, &ws->err));
    float *b = g ? fetch(ws, bn, 1, shape) : NULL;
    if (b) *beta = own(ws, ws->be->ops->make_table(ws->be, b, 1, n, &ws->err));
    if (!*gamma || !*beta) ws->failed = 1;
}

ddps_weight *ddps_ws_table(ddps_wsrc *ws, int rows, int cols, const char *fmt, ...) {
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vname(name, sizeof name, fmt, ap);
    va_end(ap);
    int64_t shape[2] = {rows, cols};
    if (ws->mode == WS_DECLARE) {
        record(ws, name, 2, shape);
        return NULL;
    }
    if (ws->failed) return NULL;
    float *t = fetch(ws, name, 2, shape);
    if (!t) return NULL;
    ddps_weight *w = own(ws, ws->be->ops->make_table(ws->be, t, rows, cols, &ws->err));
    if (!w) ws->failed = 1;
    return w;
}

void ddps_ws_declare(ddps_wsrc *ws, int ndim, const int64_t *shape, const char *fmt, ...) {
    if (ws->mode != WS_DECLARE) return;
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vname(name, sizeof name, fmt, ap);
    va_end(ap);
    record(ws, name, ndim, shape);
}

/* Buffers that transformers checkpoints carry but that are not weights. */
static int known_extra(const char *name) {
    return strstr(name, "position_ids") != NULL || strstr(name, "num_batches_tracked") != NULL;
}

static int is_float(st_dtype dt) { return dt == ST_F32 || dt == ST_F16 || dt == ST_BF16 || dt == ST_F64; }

int ddps_ws_check(const ddps_wsrc *decl, st_file *files, int n_files, const char *alt_prefix, const char *what,
                  ddps_err *err) {
    size_t cap = 1024, len = 0;
    char *msg = ddps_malloc(cap);
    msg[0] = 0;
    int faults = 0;
    /* Which file tensors are used, to find the extras. */
    int total = 0;
    for (int f = 0; f < n_files; f++) total += files[f].n;
    char *used = ddps_calloc((size_t)total + 1, 1);
    for (int i = 0; i < decl->n; i++) {
        const ddps_ws_entry *e = &decl->list[i];
        const st_file *owner = NULL;
        const st_tensor *t = lookup(files, n_files, alt_prefix, e->name, &owner);
        char want[64], got[64], item[768];
        item[0] = 0;
        shape_str(want, sizeof want, e->ndim, e->shape);
        if (!t) {
            snprintf(item, sizeof item, "%s (missing, expected %s)", e->name, want);
        } else {
            int base = 0;
            for (int f = 0; f < n_files && &files[f] != owner; f++) base += files[f].n;
            used[base + (int)(t - owner->t)] = 1;
            if (!shape_matches(t, e->ndim, e->shape)) {
                shape_str(got, sizeof got, t->ndim, t->shape);
                snprintf(item, sizeof item, "%s (shape %s, expected %s)", e->name, got, want);
            } else if (!is_float(t->dtype)) {
                snprintf(item, sizeof item, "%s (dtype %s, expected a float type)", e->name, ddps_st_dtype_name(t->dtype));
            }
        }
        if (item[0]) {
            faults++;
            size_t il = strlen(item);
            if (len + il + 3 >= cap) msg = ddps_realloc(msg, cap = 2 * (cap + il));
            len += (size_t)sprintf(msg + len, "%s%s", faults > 1 ? ", " : "", item);
        }
    }
    int extras = 0;
    const char *first_extra = NULL;
    for (int f = 0, base = 0; f < n_files; base += files[f].n, f++)
        for (int i = 0; i < files[f].n; i++)
            if (!used[base + i] && !known_extra(files[f].t[i].name)) {
                if (!extras) first_extra = files[f].t[i].name;
                extras++;
            }
    free(used);
    if (faults) {
        ddps_fail_data(err, "%s: %d tensor%s missing or mis-shaped: %s", what, faults, faults > 1 ? "s" : "", msg);
        free(msg);
        return -1;
    }
    free(msg);
    if (extras) ddps_warn("%s: %d tensor%s not used by ddps (e.g. '%s')", what, extras, extras > 1 ? "s" : "", first_extra);
    return 0;
}
