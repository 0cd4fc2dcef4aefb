/* Helpers shared by the engine tests (test_golden.c, test_model_load.c,
 * test_unet_full.c, test_stage1.c): reading tensors back from safetensors
 * files, comparing them with golden references, running `ddps probe` and
 * judging its output. Header-only (static functions) because every
 * tests/test_*.c is its own program. */
#ifndef DDPS_TESTS_ENGINE_UTIL_H
#define DDPS_TESTS_ENGINE_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "tensor/backend.h"
#include "testlib.h"
#include "util/fs.h"
#include "util/rng.h"

/* Not every test program uses every helper. */
#define EU_FN static __attribute__((unused))

/* Host copy of a backend tensor (free it). */
EU_FN float *eu_readback(ddps_backend *be, const ddps_tensor *t) {
    float *p = ddps_malloc(ddps_numel(t) * sizeof(float));
    be->ops->read(be, p, t);
    return p;
}

/* A new arena tensor holding host data. */
EU_FN ddps_tensor eu_upload(ddps_backend *be, int n, int h, int w, int c, const float *host) {
    ddps_tensor t = ddps_new(be, n, h, w, c);
    be->ops->write(be, &t, host);
    return t;
}

/* n standard normal values from a seed (free them). */
EU_FN float *eu_normal(size_t n, uint64_t seed) {
    float *p = ddps_malloc(n * sizeof(float));
    ddps_rng r;
    ddps_rng_seed(&r, seed);
    ddps_rng_fill_normal(&r, p, n);
    return p;
}

/* A tensor read back as f32 (float dtypes and integer dtypes alike). */
typedef struct {
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t n;
    float *v;
} eu_arr;

EU_FN void eu_free(eu_arr *a) {
    free(a->v);
    memset(a, 0, sizeof *a);
}

/* Reads tensor `name` of file `path`; on failure reports why (one CHECK) and returns -1. */
EU_FN int eu_load(const char *path, const char *name, eu_arr *a) {
    memset(a, 0, sizeof *a);
    st_file f;
    ddps_err err = {{0}};
    if (ddps_st_open(&f, path, &err) != 0) {
        CHECKF(0, "%s", err.msg);
        return -1;
    }
    const st_tensor *t = ddps_st_find(&f, name);
    CHECKF(t != NULL, "%s: no tensor '%s'", path, name);
    if (t) {
        a->ndim = t->ndim;
        memcpy(a->shape, t->shape, sizeof a->shape);
        a->n = t->numel;
        a->v = ddps_malloc((t->numel ? t->numel : 1) * sizeof(float));
        ddps_st_to_f32(t, a->v);
    }
    ddps_st_close(&f);
    return t ? 0 : -1;
}

EU_FN int eu_shape_is(const eu_arr *a, int ndim, const int64_t *shape) {
    if (a->ndim != ndim) return 0;
    for (int i = 0; i < ndim; i++)
        if (a->shape[i] != shape[i]) return 0;
    return 1;
}

EU_FN const char *eu_shape_str(int ndim, const int64_t *shape) {
    static char buf[4][96];
    static int k;
    char *b = buf[k++ & 3];
    size_t o = 0;
    b[0] = 0;
    for (int i = 0; i < ndim && o < 90; i++) o += (size_t)snprintf(b + o, 96 - o, i ? "x%lld" : "%lld", (long long)shape[i]);
    return b;
}

EU_FN size_t eu_nonfinite(const float *v, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += !isfinite(v[i]);
    return bad;
}

EU_FN double eu_max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
    }
    return m;
}

/* Compares tensor `name` of `out` with the same tensor of `ref`: same shape,
 * all finite, relative L2 error <= tol. Prints the measured error. Returns
 * the error (INFINITY when it could not be measured). */
EU_FN double eu_compare(const char *label, const char *out, const char *ref, const char *name, double tol) {
    eu_arr a, b;
    double e = INFINITY;
    int ok_a = eu_load(out, name, &a) == 0, ok_b = eu_load(ref, name, &b) == 0;
    if (ok_a && ok_b) {
        CHECKF(eu_shape_is(&a, b.ndim, b.shape), "%s %s: shape %s, reference %s", label, name,
               eu_shape_str(a.ndim, a.shape), eu_shape_str(b.ndim, b.shape));
        if (eu_shape_is(&a, b.ndim, b.shape)) {
            CHECKF(eu_nonfinite(a.v, a.n) == 0, "%s %s: non-finite values", label, name);
            e = t_rel_l2(a.v, b.v, a.n);
            fprintf(stderr, "   %-10s %-18s %-14s rel L2 %.3e (limit %.0e)\n", label, name, eu_shape_str(a.ndim, a.shape),
                    e, tol);
            CHECKF(e <= tol, "%s %s: relative L2 error %.3e > %.0e", label, name, e, tol);
        }
    }
    eu_free(&a);
    eu_free(&b);
    return e;
}

/* Number of tensors in a file (-1 when it does not open). */
EU_FN int eu_count(const char *path) {
    st_file f;
    ddps_err err;
    if (ddps_st_open(&f, path, &err) != 0) return -1;
    int n = f.n;
    ddps_st_close(&f);
    return n;
}

/* Writes s into dst as one single-quoted shell word. */
EU_FN void eu_quote(char *dst, size_t cap, const char *s) {
    size_t o = 0;
    if (cap < 3) return;
    dst[o++] = '\'';
    for (; *s && o + 6 < cap; s++) {
        if (*s == '\'') {
            memcpy(dst + o, "'\\''", 4);
            o += 4;
        } else {
            dst[o++] = *s;
        }
    }
    dst[o++] = '\'';
    dst[o] = 0;
}

/* Runs `ddps probe <args>` (stdout and stderr together into *out, heap). */
EU_FN int eu_probe(const char *args, char **out) {
    size_t n = strlen(DDPS_BIN) + strlen(args) + 16;
    char *cmd = ddps_malloc(n);
    snprintf(cmd, n, "%s probe %s", DDPS_BIN, args);
    int rc = t_run(cmd, out);
    free(cmd);
    return rc;
}

EU_FN int eu_count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Output of a process that did not crash and was clean under the sanitizers. */
EU_FN int eu_no_crash(int rc, const char *out) {
    return rc >= 0 && rc < 128 && !strstr(out, "AddressSanitizer") && !strstr(out, "LeakSanitizer") &&
           !strstr(out, "runtime error") && !strstr(out, "Segmentation");
}

/* A failed command's output is one line that contains every given string. */
EU_FN void eu_expect_fail(const char *label, int rc, const char *out, const char *const *needles, int nneedles) {
    CHECKF(rc != 0, "%s: succeeded but should fail: %s", label, out);
    CHECKF(eu_no_crash(rc, out), "%s: crashed (rc %d): %s", label, rc, out);
    CHECKF(eu_count_lines(out) == 1, "%s: expected one line, got: %s", label, out);
    for (int i = 0; i < nneedles; i++)
        CHECKF(strstr(out, needles[i]) != NULL, "%s: message lacks '%s': %s", label, needles[i], out);
}

/* Captures this process's stderr (fd 2) into a file between start and end,
 * for warnings the library prints (ddps_warn) while a test calls it. */
typedef struct {
    int saved;
    char path[4096];
} eu_capture;

EU_FN void eu_capture_start(eu_capture *c, const char *path) {
    snprintf(c->path, sizeof c->path, "%s", path);
    fflush(stderr);
    c->saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECKF(fd >= 0 && c->saved >= 0, "cannot capture stderr into %s", path);
    if (fd >= 0) {
        dup2(fd, 2);
        close(fd);
    }
}

/* Restores stderr; returns what was written (heap, NUL-terminated). */
EU_FN char *eu_capture_end(eu_capture *c) {
    fflush(stderr);
    if (c->saved >= 0) {
        dup2(c->saved, 2);
        close(c->saved);
    }
    char *text = NULL;
    size_t len;
    ddps_err err;
    if (ddps_read_file(c->path, 1 << 20, &text, &len, &err) != 0) text = ddps_strdup("");
    return text;
}

#endif
