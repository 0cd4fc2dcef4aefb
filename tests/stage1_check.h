/* Checks of Stage I shared by test_stage1_batch.c (CPU, f32), test_stage1_bf16.c
 * (CPU, bf16) and test_cuda.c (GPU against CPU):
 *   - s1c_map_precision: the Stage I maps are f32 whatever the precision
 *     (sqdiff_acc's accumulator, resize_bilinear_cmean and avg_pool on maps),
 *     against references in double;
 *   - s1c_run: Stage I on n seeded images, `per_call` images per
 *     ddps_stage1_run_batch call, and s1c_compare of two such runs.
 * Header-only (static functions) because every tests/test_*.c is its own program. */
#ifndef DDPS_TESTS_STAGE1_CHECK_H
#define DDPS_TESTS_STAGE1_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/sd.h"
#include "pipeline/stage1.h"
#include "tensor/backend.h"
#include "testlib.h"
#include "util/fs.h"
#include "util/rng.h"

#define S1C_FN static __attribute__((unused))

/* ---------- maps are f32 ---------- */

/* Relative L2 error of a against the double reference r; centre (if not 0)
 * is subtracted from both first, so values near `centre` are judged by their
 * deviations (which 16 bits would round away). */
S1C_FN double s1c_err(const float *a, const double *r, size_t n, double centre) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - r[i], v = r[i] - centre;
        num += d * d;
        den += v * v;
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* The larger error; NaN (a non-finite result) sticks. */
S1C_FN double s1c_worse(double worst, double err) {
    if (isnan(worst)) return worst;
    return isnan(err) || err > worst ? err : worst;
}

/* PyTorch bilinear (align_corners = false) source coordinate, in double. */
S1C_FN void s1c_src(int dst, int in, int out, int *i0, int *i1, double *l1) {
    double s = ((double)dst + 0.5) * in / out - 0.5;
    if (s < 0) s = 0;
    int i = (int)s;
    *i0 = i;
    *i1 = i + (i < in - 1 ? 1 : 0);
    *l1 = s - i;
}

/* Runs the three map ops on backend be (any precision) and returns the worst
 * relative error against double references; each error is printed. f32 maps
 * give 1e-5 or less (resize and pooling judged on deviations of 1e-2 from 1,
 * where f32's spacing is 1.2e-7); maps held in bf16 (spacing 7.8e-3 at 1)
 * would give 1e-1 and more. */
S1C_FN double s1c_map_precision(ddps_backend *be) {
    const ddps_backend_ops *op = be->ops;
    ddps_rng r;
    ddps_rng_seed(&r, 4242);
    double worst = 0;
    size_t m = ddps_mark(be);
    /* sqdiff_acc: K = 64 small terms into one accumulator */
    enum { H = 16, W = 16, C = 4, K = 64 };
    size_t n = (size_t)H * W * C;
    float *e = ddps_malloc(n * sizeof(float)), *a = ddps_malloc(n * sizeof(float)), *b = ddps_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        e[i] = (float)ddps_rng_normal(&r);
        a[i] = e[i] + 0.05f * (float)ddps_rng_normal(&r);
        b[i] = e[i] + 0.05f * (float)ddps_rng_normal(&r);
    }
    ddps_tensor te = ddps_new(be, 1, H, W, C), ta = ddps_new(be, 1, H, W, C), tb = ddps_new(be, 1, H, W, C);
    op->write(be, &te, e);
    op->write(be, &ta, a);
    op->write(be, &tb, b);
    /* the reference uses the inputs as the backend holds them (16-bit rounded) */
    op->read(be, e, &te);
    op->read(be, a, &ta);
    op->read(be, b, &tb);
    ddps_tensor d = ddps_new_map(be, 1, H, W, C);
    /* a map starts from anything: fill must overwrite NaN */
    float *nan_h = ddps_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) nan_h[i] = NAN;
    op->map_write(be, &d, nan_h);
    op->map_fill(be, &d, 0.0f);
    for (int k = 0; k < K; k++) op->sqdiff_acc(be, &d, &te, &ta, &tb, 1.0f / K);
    float *got = ddps_malloc(n * sizeof(float));
    double *ref = ddps_malloc(n * sizeof(double));
    op->map_read(be, got, &d);
    for (size_t i = 0; i < n; i++) {
        double u = (double)e[i] - a[i], v = (double)e[i] - b[i];
        ref[i] = u * u - v * v; /* 64 x (1/64) */
    }
    double err = s1c_err(got, ref, n, 0);
    fprintf(stderr, "   %s %s: map sqdiff_acc (64 terms) rel err %.3g\n", op->name, ddps_precision_name(be->precision),
            err);
    worst = s1c_worse(worst, err);
    /* resize + channel mean and average pooling on maps near 1 (deviations 1e-2) */
    enum { h = 8, w = 8, OH = 32, OW = 32, PK = 8, PS = 4 };
    float *src = ddps_malloc((size_t)h * w * C * sizeof(float)), *up = ddps_malloc((size_t)OH * OW * sizeof(float));
    for (size_t i = 0; i < (size_t)h * w * C; i++) src[i] = 1.0f + 0.01f * (float)ddps_rng_normal(&r);
    ddps_tensor ms = ddps_new_map(be, 1, h, w, C), mu = ddps_new_map(be, 1, OH, OW, 1);
    op->map_write(be, &ms, src);
    op->resize_bilinear_cmean(be, &mu, &ms);
    op->map_read(be, up, &mu);
    double *uref = ddps_malloc((size_t)OH * OW * sizeof(double));
    for (int i = 0; i < OH; i++)
        for (int j = 0; j < OW; j++) {
            int y0, y1, x0, x1;
            double ly, lx, s = 0;
            s1c_src(i, h, OH, &y0, &y1, &ly);
            s1c_src(j, w, OW, &x0, &x1, &lx);
            for (int c = 0; c < C; c++)
                s += (1 - ly) * ((1 - lx) * src[(y0 * w + x0) * C + c] + lx * src[(y0 * w + x1) * C + c]) +
                     ly * ((1 - lx) * src[(y1 * w + x0) * C + c] + lx * src[(y1 * w + x1) * C + c]);
            uref[i * OW + j] = s / C;
        }
    err = s1c_err(up, uref, (size_t)OH * OW, 1.0);
    fprintf(stderr, "   %s %s: map resize_bilinear_cmean rel err (of the deviations from 1) %.3g\n", op->name,
            ddps_precision_name(be->precision), err);
    worst = s1c_worse(worst, err);
    int ph = (OH - PK) / PS + 1, pw = (OW - PK) / PS + 1;
    ddps_tensor mp = ddps_new_map(be, 1, ph, pw, 1);
    op->avg_pool(be, &mp, &mu, PK, PS);
    float *pool = ddps_malloc((size_t)ph * pw * sizeof(float));
    double *pref = ddps_malloc((size_t)ph * pw * sizeof(double));
    op->map_read(be, pool, &mp);
    for (int i = 0; i < ph; i++)
        for (int j = 0; j < pw; j++) {
            double s = 0;
            for (int y = 0; y < PK; y++)
                for (int x = 0; x < PK; x++) s += up[(i * PS + y) * OW + j * PS + x];
            pref[i * pw + j] = s / (PK * PK);
        }
    err = s1c_err(pool, pref, (size_t)ph * pw, 1.0);
    fprintf(stderr, "   %s %s: map avg_pool rel err (of the deviations from 1) %.3g\n", op->name,
            ddps_precision_name(be->precision), err);
    worst = s1c_worse(worst, err);
    ddps_release(be, m);
    free(e), free(a), free(b), free(nan_h), free(got), free(ref), free(src), free(up), free(uref), free(pool),
        free(pref);
    return worst;
}

/* ---------- Stage I runs ---------- */

typedef struct {
    int n;       /* images */
    int H, W, K; /* image size, timesteps */
    int ts[4];
    int P, S;
    uint64_t seed;
} s1c_case;

/* A smooth seeded image in [-1, 1] with some texture. */
S1C_FN float *s1c_image(int H, int W, uint64_t seed) {
    float *p = ddps_malloc((size_t)H * W * 3 * sizeof(float));
    ddps_rng r;
    ddps_rng_seed(&r, seed);
    double f1 = 0.05 + 0.2 * ddps_rng_uniform(&r), f2 = 0.05 + 0.2 * ddps_rng_uniform(&r);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++)
                p[((size_t)y * W + x) * 3 + c] =
                    (float)(0.6 * sin(f1 * x + c) * cos(f2 * y - c) + 0.3 * (2 * ddps_rng_uniform(&r) - 1));
    return p;
}

/* Stage I on c->n seeded images, per_call images per call (the last call
 * takes the rest). ctx_host: [2][77][ctx_c], the null then the label
 * context; image i gets the label context scaled by 1 + i/8, so every image
 * of a batch has its own. res: c->n entries (free each). 0 or -1 (err). */
S1C_FN int s1c_run(ddps_backend *be, const ddps_sd *sd, const float *ctx_host, int ctx_c, const s1c_case *c,
                   int per_call, ddps_stage1_result *res, ddps_err *err) {
    int h = ddps_vae_latent_size(&sd->vae_cfg, c->H), w = ddps_vae_latent_size(&sd->vae_cfg, c->W);
    int lc = sd->vae_cfg.latent_channels;
    size_t nl = (size_t)h * w * lc, ni = (size_t)c->H * c->W * 3, nc = (size_t)77 * ctx_c;
    memset(res, 0, (size_t)c->n * sizeof *res);
    int rc = 0;
    for (int i0 = 0; i0 < c->n && rc == 0; i0 += per_call) {
        int cnt = c->n - i0 < per_call ? c->n - i0 : per_call;
        float *img = ddps_malloc((size_t)cnt * ni * sizeof(float)), *noise = ddps_malloc((size_t)cnt * c->K * nl * sizeof(float));
        float *lab = ddps_malloc((size_t)cnt * nc * sizeof(float));
        for (int j = 0; j < cnt; j++) {
            int i = i0 + j;
            float *im = s1c_image(c->H, c->W, c->seed + 17 * (uint64_t)i);
            memcpy(img + (size_t)j * ni, im, ni * sizeof(float));
            free(im);
            ddps_rng r;
            ddps_rng_seed(&r, c->seed * 1000 + (uint64_t)i);
            ddps_rng_fill_normal(&r, noise + (size_t)j * c->K * nl, (size_t)c->K * nl);
            for (size_t k = 0; k < nc; k++) lab[(size_t)j * nc + k] = ctx_host[nc + k] * (1.0f + (float)i / 8.0f);
        }
        size_t m = ddps_mark(be);
        ddps_tensor x = ddps_new(be, cnt, c->H, c->W, 3), cn = ddps_new(be, 1, 1, 77, ctx_c);
        be->ops->write(be, &x, img);
        be->ops->write(be, &cn, ctx_host);
        ddps_tensor *cl = ddps_malloc((size_t)cnt * sizeof *cl);
        const ddps_tensor **clp = ddps_malloc((size_t)cnt * sizeof *clp);
        for (int j = 0; j < cnt; j++) {
            cl[j] = ddps_new(be, 1, 1, 77, ctx_c);
            be->ops->write(be, &cl[j], lab + (size_t)j * nc);
            clp[j] = &cl[j];
        }
        rc = ddps_stage1_run_batch(be, sd, &x, &cn, clp, c->ts, c->K, noise, c->P, c->S, res + i0, err);
        ddps_release(be, m);
        free(cl), free(clp), free(img), free(noise), free(lab);
    }
    return rc;
}

/* A CPU f32 backend with the golden tiny model loaded into *be, *sd; 0, or
 * -1 after a failed check (then nothing stays allocated). */
S1C_FN int s1c_open_golden(ddps_backend **be, ddps_sd **sd) {
    ddps_err err = {{0}};
    *be = ddps_cpu_backend_new(DDPS_PREC_F32, 0, &err);
    CHECKF(*be != NULL, "%s", err.msg);
    if (!*be) return -1;
    if (ddps_sd_load(t_shared("golden/tiny-sd"), *be, DDPS_PART_ALL, sd, &err) != 0) {
        CHECKF(0, "%s", err.msg);
        ddps_backend_free(*be);
        *be = NULL;
        return -1;
    }
    return 0;
}

/* The null ("") and label ("An image of tench.") contexts, host [2][77][*ctx_c] (free it). */
S1C_FN float *s1c_contexts(ddps_backend *be, const ddps_sd *sd, int *ctx_c) {
    *ctx_c = sd->clip_cfg.hidden_size;
    int32_t ids[2 * 77];
    ddps_tokenize(sd->tok, "", ids);
    ddps_tokenize(sd->tok, "An image of tench.", ids + 77);
    size_t m = ddps_mark(be);
    ddps_tensor ctx = ddps_new(be, 2, 1, 77, *ctx_c);
    ddps_clip_forward(be, sd->text, ids, &ctx);
    float *h = ddps_malloc(ddps_numel(&ctx) * sizeof(float));
    be->ops->read(be, h, &ctx);
    ddps_release(be, m);
    return h;
}

S1C_FN void s1c_free(ddps_stage1_result *res, int n) {
    for (int i = 0; i < n; i++) ddps_stage1_result_free(&res[i]);
}

S1C_FN int s1c_argmax(const float *p, size_t n, float *second) {
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (p[i] > p[b]) b = i;
    float s = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (i != b && p[i] > s) s = p[i];
    if (second) *second = s;
    return (int)b;
}

S1C_FN int s1c_finite(const float *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) return 0;
    return 1;
}

/* got against ref, image by image: every map finite, diff and score map
 * within tol (relative L2) of the reference, patch scores within 2 tol, and
 * the same best window. Returns the worst error. */
S1C_FN double s1c_compare(const ddps_stage1_result *got, const ddps_stage1_result *ref, int n, double tol,
                          const char *what) {
    double worst = 0;
    for (int i = 0; i < n; i++) {
        const ddps_stage1_result *g = &got[i], *r = &ref[i];
        CHECKF(g->h == r->h && g->w == r->w && g->c == r->c && g->ph == r->ph && g->pw == r->pw && g->diff &&
                   r->diff,
               "%s: image %d: result shapes differ", what, i);
        if (!(g->h == r->h && g->w == r->w && g->c == r->c && g->ph == r->ph && g->pw == r->pw && g->diff && r->diff))
            continue;
        size_t nl = (size_t)g->h * g->w * g->c, ns = (size_t)g->H * g->W, np = (size_t)g->ph * g->pw;
        double ed = t_rel_l2(g->diff, r->diff, nl), es = t_rel_l2(g->score_map, r->score_map, ns),
               ep = t_rel_l2(g->patch_scores, r->patch_scores, np), el = t_rel_l2(g->latent, r->latent, nl);
        int fin = s1c_finite(g->diff, nl) && s1c_finite(g->score_map, ns) && s1c_finite(g->patch_scores, np);
        float s2;
        int bg = s1c_argmax(g->patch_scores, np, NULL), br = s1c_argmax(r->patch_scores, np, &s2);
        fprintf(stderr, "   %s image %d: rel err latent %.3g diff %.3g score map %.3g patch scores %.3g; best window %d (ref %d)\n",
                what, i, el, ed, es, ep, bg, br);
        /* Patch scores are window means of a signed map whose terms partly
         * cancel: their relative error runs higher than the map's (CPU bf16:
         * map 1.5e-2, patch scores 2.6e-2), hence twice the tolerance. */
        CHECKF(fin && ed <= tol && es <= tol && ep <= 2 * tol,
               "%s image %d: rel err diff %.3g, map %.3g (tolerance %.3g), patches %.3g (tolerance %.3g)", what, i, ed,
               es, tol, ep, 2 * tol);
        CHECKF(bg == br, "%s image %d: best window %d, the reference's %d (its margin over the second %.3g)", what, i,
               bg, br, (double)(r->patch_scores[br] - s2));
        double e = ed > es ? ed : es;
        if (ep > e) e = ep;
        if (e > worst) worst = e;
    }
    return worst;
}

#endif
