/* Backend ops against straightforward double-precision references:
 * convolutions (direct, Winograd, strided, asymmetric padding, accumulate),
 * matrix products with activations, normalisations, attention, resampling. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/backend.h"
#include "testlib.h"
#include "util/rng.h"

static ddps_backend *be;
static ddps_rng rng;

static float *randn(size_t n, float scale) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = (float)ddps_rng_normal(&rng) * scale;
    return p;
}

static ddps_tensor upload(const float *h, int n, int hh, int w, int c) {
    ddps_tensor t = ddps_new(be, n, hh, w, c);
    be->ops->write(be, &t, h);
    return t;
}

static float *download(const ddps_tensor *t) {
    float *h = malloc(ddps_numel(t) * sizeof(float));
    be->ops->read(be, h, t);
    return h;
}

/* NHWC conv reference; w [O][I][kh][kw]. */
static void ref_conv(double *y, const float *x, const float *w, const float *b, int N, int H, int W, int I, int O,
                     int k, int s, const int pad[4], int Ho, int Wo) {
    for (int n = 0; n < N; n++)
        for (int i = 0; i < Ho; i++)
            for (int j = 0; j < Wo; j++)
                for (int o = 0; o < O; o++) {
                    double acc = b ? b[o] : 0;
                    for (int di = 0; di < k; di++)
                        for (int dj = 0; dj < k; dj++) {
                            int yi = i * s - pad[0] + di, xj = j * s - pad[1] + dj;
                            if (yi < 0 || yi >= H || xj < 0 || xj >= W) continue;
                            const float *xr = x + (((size_t)n * H + yi) * W + xj) * I;
                            for (int c = 0; c < I; c++) acc += (double)xr[c] * w[(((size_t)o * I + c) * k + di) * k + dj];
                        }
                    y[(((size_t)n * Ho + i) * Wo + j) * O + o] = acc;
                }
}

static double rel_err_d(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static void check_conv(int N, int H, int W, int I, int O, int k, int s, int pt, int pl, int pb, int pr, int acc,
                       double tol) {
    int pad[4] = {pt, pl, pb, pr};
    int Ho = (H + pt + pb - k) / s + 1, Wo = (W + pl + pr - k) / s + 1;
    float *x = randn((size_t)N * H * W * I, 1), *w = randn((size_t)O * I * k * k, 1.0f / sqrtf((float)I * k * k)),
          *b = randn(O, 1), *y0 = randn((size_t)N * Ho * Wo * O, 1);
    ddps_err err;
    ddps_weight *wt = be->ops->make_conv(be, w, b, O, I, k, k, &err);
    CHECK(wt != NULL);
    size_t m = ddps_mark(be);
    ddps_tensor tx = upload(x, N, H, W, I), ty = upload(y0, N, Ho, Wo, O);
    /* Twice: the second call runs from the primitive cache. */
    for (int rep = 0; rep < 2; rep++) {
        be->ops->write(be, &ty, y0);
        be->ops->conv2d(be, &ty, &tx, wt, s, pad, acc);
    }
    float *y = download(&ty);
    size_t ny = (size_t)N * Ho * Wo * O;
    double *r = malloc(ny * sizeof(double));
    ref_conv(r, x, w, b, N, H, W, I, O, k, s, pad, Ho, Wo);
    if (acc)
        for (size_t i = 0; i < ny; i++) r[i] += y0[i];
    double e = rel_err_d(y, r, ny);
    CHECKF(e < tol, "conv N%d %dx%d %d->%d k%d s%d pad %d,%d,%d,%d acc%d: rel err %.3g", N, H, W, I, O, k, s, pt, pl,
           pb, pr, acc, e);
    ddps_release(be, m);
    be->ops->free_weight(be, wt);
    free(x), free(w), free(b), free(y0), free(y), free(r);
}

static void convs(void) {
    double tol = be->precision == DDPS_PREC_F32 ? 2e-6 : 1e-2;
    check_conv(2, 8, 6, 16, 24, 3, 1, 1, 1, 1, 1, 0, tol);
    check_conv(1, 9, 7, 8, 8, 3, 2, 0, 0, 1, 1, 0, tol); /* VAE downsampler: pad (0,1,0,1) */
    check_conv(1, 9, 7, 8, 8, 3, 2, 1, 1, 1, 1, 1, tol); /* UNet downsampler + accumulate */
    check_conv(2, 5, 3, 12, 4, 1, 1, 0, 0, 0, 0, 1, tol);
    check_conv(1, 6, 6, 3, 16, 3, 1, 1, 1, 1, 1, 0, tol);
    /* Winograd-eligible (>= 64 channels, >= 512 positions) and the same layer direct. */
    check_conv(1, 32, 24, 64, 64, 3, 1, 1, 1, 1, 1, 0, be->precision == DDPS_PREC_F32 ? 2e-5 : 1e-2);
    check_conv(1, 32, 24, 64, 64, 3, 1, 1, 1, 1, 1, 1, be->precision == DDPS_PREC_F32 ? 2e-5 : 1e-2);
    check_conv(2, 4, 3, 64, 80, 3, 1, 1, 1, 1, 1, 0, tol);
}

static void linears(void) {
    int M = 37, K = 48, Nn = 20;
    float *x = randn((size_t)M * K, 1), *w = randn((size_t)Nn * K, 0.2f), *b = randn(Nn, 1), *y0 = randn((size_t)M * Nn, 1);
    ddps_err err;
    ddps_weight *wt = be->ops->make_linear(be, w, b, Nn, K, &err);
    double tol = be->precision == DDPS_PREC_F32 ? 2e-6 : 1e-2;
    for (int act = 0; act <= 3; act++)
        for (int acc = 0; acc <= (act == 0); acc++) {
            size_t m = ddps_mark(be);
            ddps_tensor tx = upload(x, 1, 1, M, K), ty = upload(y0, 1, 1, M, Nn);
            be->ops->linear(be, &ty, &tx, wt, (ddps_act)act, acc);
            float *y = download(&ty);
            double *r = malloc((size_t)M * Nn * sizeof(double));
            for (int i = 0; i < M; i++)
                for (int j = 0; j < Nn; j++) {
                    double s = b[j];
                    for (int k = 0; k < K; k++) s += (double)x[i * K + k] * w[j * K + k];
                    if (act == DDPS_ACT_SILU) s = s / (1 + exp(-s));
                    if (act == DDPS_ACT_GELU) s = 0.5 * s * (1 + erf(s / sqrt(2.0)));
                    if (act == DDPS_ACT_QUICK_GELU) s = s / (1 + exp(-1.702 * s));
                    if (acc) s += y0[i * Nn + j];
                    r[i * Nn + j] = s;
                }
            double e = rel_err_d(y, r, (size_t)M * Nn);
            CHECKF(e < tol, "linear act %d acc %d: rel err %.3g", act, acc, e);
            free(y), free(r);
            ddps_release(be, m);
        }
    be->ops->free_weight(be, wt);
    free(x), free(w), free(b), free(y0);
}

static void norms(void) {
    int N = 2, H = 5, W = 7, C = 12, G = 3;
    float *x = randn((size_t)N * H * W * C, 2), *g = randn(C, 1), *b = randn(C, 1), *sh = randn((size_t)N * C, 1);
    for (size_t i = 0; i < (size_t)N * H * W * C; i++) x[i] += 3; /* non-zero mean */
    ddps_err err;
    ddps_weight *wg = be->ops->make_table(be, g, 1, C, &err), *wb = be->ops->make_table(be, b, 1, C, &err);
    for (int variant = 0; variant < 4; variant++) {
        int use_shift = variant & 1, use_silu = variant >> 1;
        size_t m = ddps_mark(be);
        ddps_tensor tx = upload(x, N, H, W, C), ts = upload(sh, N, 1, 1, C), ty = ddps_new(be, N, H, W, C);
        be->ops->group_norm(be, &ty, &tx, use_shift ? &ts : NULL, wg, wb, G, 1e-5f, use_silu);
        float *y = download(&ty);
        double *r = malloc((size_t)N * H * W * C * sizeof(double));
        for (int n = 0; n < N; n++)
            for (int gi = 0; gi < G; gi++) {
                double s = 0, s2 = 0, cnt = (double)H * W * (C / G);
                for (int p = 0; p < H * W; p++)
                    for (int c = gi * (C / G); c < (gi + 1) * (C / G); c++) {
                        double v = x[((size_t)n * H * W + p) * C + c] + (use_shift ? sh[n * C + c] : 0);
                        s += v;
                        s2 += v * v;
                    }
                double mean = s / cnt, var = s2 / cnt - mean * mean;
                for (int p = 0; p < H * W; p++)
                    for (int c = gi * (C / G); c < (gi + 1) * (C / G); c++) {
                        size_t i = ((size_t)n * H * W + p) * C + c;
                        double v = x[i] + (use_shift ? sh[n * C + c] : 0);
                        double o = (v - mean) / sqrt(var + 1e-5) * g[c] + b[c];
                        if (use_silu) o = o / (1 + exp(-o));
                        r[i] = o;
                    }
            }
        double e = rel_err_d(y, r, (size_t)N * H * W * C);
        CHECKF(e < 1e-6, "group norm shift %d silu %d: rel err %.3g", use_shift, use_silu, e);
        free(y), free(r);
        ddps_release(be, m);
    }
    /* LayerNorm */
    size_t m = ddps_mark(be);
    ddps_tensor tx = upload(x, 1, 1, N * H * W, C), ty = ddps_new(be, 1, 1, N * H * W, C);
    be->ops->layer_norm(be, &ty, &tx, wg, wb, 1e-5f);
    float *y = download(&ty);
    double *r = malloc((size_t)N * H * W * C * sizeof(double));
    for (int row = 0; row < N * H * W; row++) {
        double s = 0, s2 = 0;
        for (int c = 0; c < C; c++) s += x[row * C + c];
        double mean = s / C;
        for (int c = 0; c < C; c++) s2 += (x[row * C + c] - mean) * (x[row * C + c] - mean);
        for (int c = 0; c < C; c++) r[row * C + c] = (x[row * C + c] - mean) / sqrt(s2 / C + 1e-5) * g[c] + b[c];
    }
    double e = rel_err_d(y, r, (size_t)N * H * W * C);
    CHECKF(e < 1e-6, "layer norm: rel err %.3g", e);
    free(y), free(r);
    ddps_release(be, m);
    be->ops->free_weight(be, wg);
    be->ops->free_weight(be, wb);
    free(x), free(g), free(b), free(sh);
}

static void attention_case(int B, int Lq, int Lk, int heads, int d, int causal) {
    int C = heads * d;
    float *q = randn((size_t)B * Lq * C, 1), *k = randn((size_t)B * Lk * C, 1), *v = randn((size_t)B * Lk * C, 1);
    size_t m = ddps_mark(be);
    ddps_tensor tq = upload(q, B, 1, Lq, C), tk = upload(k, B, 1, Lk, C), tv = upload(v, B, 1, Lk, C),
                ty = ddps_new(be, B, 1, Lq, C);
    be->ops->attention(be, &ty, &tq, &tk, &tv, heads, causal);
    float *y = download(&ty);
    double *r = calloc((size_t)B * Lq * C, sizeof(double)), *p = malloc((size_t)Lk * sizeof(double));
    for (int n = 0; n < B; n++)
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < Lq; i++) {
                double mx = -1e300, sum = 0;
                int lim = causal ? (i + 1 < Lk ? i + 1 : Lk) : Lk;
                for (int j = 0; j < lim; j++) {
                    double s = 0;
                    for (int e = 0; e < d; e++)
                        s += (double)q[((size_t)n * Lq + i) * C + h * d + e] * k[((size_t)n * Lk + j) * C + h * d + e];
                    p[j] = s / sqrt((double)d);
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j < lim; j++) sum += (p[j] = exp(p[j] - mx));
                for (int j = 0; j < lim; j++)
                    for (int e = 0; e < d; e++)
                        r[((size_t)n * Lq + i) * C + h * d + e] += p[j] / sum * v[((size_t)n * Lk + j) * C + h * d + e];
            }
    double e = rel_err_d(y, r, (size_t)B * Lq * C);
    CHECKF(e < 2e-6, "attention B%d Lq%d Lk%d H%d d%d causal%d: rel err %.3g", B, Lq, Lk, heads, d, causal, e);
    free(q), free(k), free(v), free(y), free(r), free(p);
    ddps_release(be, m);
}

static void attentions(void) {
    attention_case(2, 13, 13, 4, 8, 1);
    attention_case(3, 48, 7, 8, 5, 0);
    attention_case(1, 77, 77, 2, 16, 1);
    attention_case(2, 2100, 1100, 2, 4, 0); /* several query blocks */
    attention_case(1, 70, 70, 1, 512, 0);   /* the VAE's single 512-wide head */
    attention_case(2, 9, 5, 2, 88, 0);      /* head width not a multiple of 16 */
}

static void elementwise(void) {
    /* nearest upsampling to odd sizes (PyTorch's floor(dst * in / out)) and concat */
    float x[2 * 3 * 2] = {1, 10, 2, 20, 3, 30, 4, 40, 5, 50, 6, 60}; /* [1,2,3,2] */
    size_t m = ddps_mark(be);
    ddps_tensor tx = upload(x, 1, 2, 3, 2), ty = ddps_new(be, 1, 4, 5, 2);
    be->ops->upsample_nearest(be, &ty, &tx);
    float *y = download(&ty);
    int ok = 1;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 5; j++) {
            int si = (int)floorf(i * (2.0f / 4)), sj = (int)floorf(j * (3.0f / 5));
            for (int c = 0; c < 2; c++) ok &= y[(i * 5 + j) * 2 + c] == x[(si * 3 + sj) * 2 + c];
        }
    CHECK(ok);
    free(y);
    ddps_tensor tc = ddps_new(be, 1, 2, 3, 4);
    be->ops->concat_c(be, &tc, &tx, &tx);
    float *c = download(&tc);
    CHECK(c[0] == 1 && c[1] == 10 && c[2] == 1 && c[3] == 10 && c[4] == 2);
    free(c);
    /* GEGLU and activations */
    float g[4] = {1.5f, -2.0f, 0.3f, -1.0f};
    ddps_tensor tg = upload(g, 1, 1, 1, 4), to = ddps_new(be, 1, 1, 1, 2);
    be->ops->geglu(be, &to, &tg);
    float o[2];
    be->ops->read(be, o, &to);
    CHECK(fabs(o[0] - 1.5 * 0.5 * 0.3 * (1 + erf(0.3 / sqrt(2)))) < 1e-6);
    CHECK(fabs(o[1] + 2.0 * 0.5 * -1.0 * (1 + erf(-1.0 / sqrt(2)))) < 1e-6);
    ddps_tensor ta = ddps_new(be, 1, 1, 1, 4);
    be->ops->activate(be, &ta, &tg, DDPS_ACT_SILU);
    float a[4];
    be->ops->read(be, a, &ta);
    CHECK(fabs(a[1] - (-2.0 / (1 + exp(2.0)))) < 1e-6);
    /* axpby, sqdiff */
    float e[4] = {1, 2, 3, 4}, n0[4] = {0, 0, 0, 0}, n1[4] = {1, 1, 1, 1};
    ddps_tensor te = upload(e, 1, 1, 1, 4), ta0 = upload(n0, 1, 1, 1, 4), tb1 = upload(n1, 1, 1, 1, 4),
                td = upload(n0, 1, 1, 1, 4);
    be->ops->sqdiff_acc(be, &td, &te, &ta0, &tb1, 0.5f);
    float dd[4];
    be->ops->read(be, dd, &td);
    CHECK(dd[0] == 0.5f * (1 - 0) && dd[3] == 0.5f * (16 - 9));
    be->ops->axpby(be, &td, 2.0f, &te, -1.0f, &tb1);
    be->ops->read(be, dd, &td);
    CHECK(dd[0] == 1 && dd[3] == 7);
    ddps_release(be, m);
}

static void pooling(void) {
    int H = 9, W = 11, C = 3;
    float *x = randn((size_t)H * W * C, 1);
    size_t m = ddps_mark(be);
    ddps_tensor tx = upload(x, 1, H, W, C);
    int k = 4, s = 2, Ho = (H - k) / s + 1, Wo = (W - k) / s + 1;
    ddps_tensor ty = ddps_new(be, 1, Ho, Wo, C);
    be->ops->avg_pool(be, &ty, &tx, k, s);
    float *y = download(&ty);
    double worst = 0;
    for (int i = 0; i < Ho; i++)
        for (int j = 0; j < Wo; j++)
            for (int c = 0; c < C; c++) {
                double acc = 0;
                for (int a = 0; a < k; a++)
                    for (int b = 0; b < k; b++) acc += x[((i * s + a) * W + j * s + b) * C + c];
                worst = fmax(worst, fabs(acc / (k * k) - y[(i * Wo + j) * C + c]));
            }
    CHECKF(worst < 1e-6, "avg pool worst %.3g", worst);
    free(y);
    /* bilinear + channel mean against a direct evaluation of PyTorch's formula */
    int Ho2 = 20, Wo2 = 7;
    ddps_tensor tr = ddps_new(be, 1, Ho2, Wo2, 1);
    be->ops->resize_bilinear_cmean(be, &tr, &tx);
    float *r = download(&tr);
    worst = 0;
    for (int i = 0; i < Ho2; i++)
        for (int j = 0; j < Wo2; j++) {
            double sy = fmax(0, (i + 0.5) * H / Ho2 - 0.5), sx = fmax(0, (j + 0.5) * W / Wo2 - 0.5);
            int y0 = (int)sy, x0 = (int)sx, y1 = y0 < H - 1 ? y0 + 1 : y0, x1 = x0 < W - 1 ? x0 + 1 : x0;
            double ly = sy - y0, lx = sx - x0, acc = 0;
            for (int c = 0; c < C; c++)
                acc += (1 - ly) * ((1 - lx) * x[(y0 * W + x0) * C + c] + lx * x[(y0 * W + x1) * C + c]) +
                       ly * ((1 - lx) * x[(y1 * W + x0) * C + c] + lx * x[(y1 * W + x1) * C + c]);
            worst = fmax(worst, fabs(acc / C - r[i * Wo2 + j]));
        }
    CHECKF(worst < 1e-5, "bilinear worst %.3g", worst);
    free(r);
    ddps_tensor tgavg = ddps_new(be, 1, 1, 1, C);
    be->ops->global_avg(be, &tgavg, &tx);
    float gavg[3];
    be->ops->read(be, gavg, &tgavg);
    double s0 = 0;
    for (int p = 0; p < H * W; p++) s0 += x[p * C];
    CHECK(fabs(gavg[0] - s0 / (H * W)) < 1e-6);
    ddps_release(be, m);
    free(x);
}

static void arena_reuse(void) {
    /* CPU: one reserved range that grows in place. */
    ddps_release(be, 0);
    size_t m = ddps_mark(be);
    ddps_tensor a = ddps_new(be, 1, 64, 64, 64);
    ddps_tensor b = ddps_new(be, 1, 64, 64, 64);
    CHECK(a.data != b.data && (char *)b.data - (char *)a.data == 64 * 64 * 64 * sizeof(float));
    ddps_release(be, m);
    ddps_tensor c = ddps_new(be, 1, 64, 64, 64);
    CHECK(be->arena.n_extra == 0 && c.data == a.data);
    ddps_release(be, 0);
}

static void arena_blocks(void) {
    /* Backends without reservations: extra blocks while the peak is unknown,
     * freed when released past, one block of the peak once emptied. */
    ddps_backend_ops ops = *be->ops;
    const ddps_backend_ops *saved = be->ops;
    ddps_release(be, 0);
    ddps_backend_free_arena(be);
    ops.reserve = NULL;
    be->ops = &ops;
    ddps_tensor keep = ddps_new(be, 1, 8, 8, 8);
    size_t m = ddps_mark(be);
    for (int rep = 0; rep < 3; rep++) {
        ddps_tensor a = ddps_new(be, 1, 32, 32, 32);
        ddps_tensor b = ddps_new(be, 1, 32, 32, 32);
        CHECK(a.data && b.data && a.data != b.data && a.data != keep.data);
        CHECK(be->arena.n_extra == 3); /* keep, a, b: nothing accumulates across repetitions */
        ddps_release(be, m);
        CHECK(be->arena.n_extra == 1);
    }
    ddps_release(be, 0);
    CHECK(be->arena.n_extra == 0 && be->arena.size >= be->arena.peak && be->arena.base);
    ddps_tensor x = ddps_new(be, 1, 8, 8, 8), y = ddps_new(be, 1, 32, 32, 32), z = ddps_new(be, 1, 32, 32, 32);
    CHECK(be->arena.n_extra == 0 && x.data == (void *)be->arena.base && y.data && z.data);
    ddps_release(be, 0);
    ddps_backend_free_arena(be);
    be->ops = saved;
}

/* Parts: "" runs every op in f32; "bf16" the convolutions and linears in bf16
 * (skipped where the CPU has no bf16 path). */
int main(int argc, char **argv) {
    ddps_rng_seed(&rng, 42);
    ddps_err err;
    int bf16 = strcmp(t_part(argc, argv), "bf16") == 0;
    for (int prec = bf16; prec < 1 + bf16; prec++) {
        be = ddps_cpu_backend_new(prec ? DDPS_PREC_BF16 : DDPS_PREC_F32, 0, &err);
        if (!be) {
            if (prec) t_skip("bf16: %s", err.msg);
            else CHECKF(0, "f32 backend: %s", err.msg);
            continue;
        }
        fprintf(stderr, "== precision %s\n", ddps_precision_name(be->precision));
        TEST(convs);
        TEST(linears);
        if (prec == 0) {
            TEST(norms);
            TEST(attentions);
            TEST(elementwise);
            TEST(pooling);
            TEST(arena_reuse);
            TEST(arena_blocks);
        }
        ddps_backend_free(be);
    }
    return t_done();
}
