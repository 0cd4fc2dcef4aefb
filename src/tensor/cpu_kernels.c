/* CPU kernels that are ours: normalisations, attention softmax, elementwise
 * ops and the Stage I map operations. All NHWC, f32.
 *
 * Parallel loops use OpenMP with work split into fixed chunks and partial
 * results combined in a fixed order, so results do not depend on the number
 * of threads. Inner loops are plain C that the compiler vectorises; the hot
 * ones are compiled for AVX-512, AVX2 and baseline x86-64 and picked at run
 * time (target_clones), so the binary stays portable. exp and erf are our
 * own branch-free versions because libm calls do not vectorise without
 * -ffast-math.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/cpu_internal.h"
#include "util/cpu.h"

#define HOT DDPS_HOT

/* exp(x) for x in about [-87, 88]: 2^k * p(r), |relative error| < 2e-7. */
static inline float fast_expf(float x) {
    if (x != x) return x; /* NaN stays NaN (and never reaches the integer conversion) */
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float k = floorf(x * 1.44269504f + 0.5f);
    float r = x - k * 0.693145752f - k * 1.42860677e-6f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416664891f + r * (0.00833336078f +
                                                                                      r * 0.00139887314f)))));
    uint32_t bits = (uint32_t)((int32_t)k + 127) << 23;
    float s;
    memcpy(&s, &bits, 4);
    return p * s;
}

/* erf(x), Abramowitz & Stegun 7.1.26 refined: |error| < 1.5e-7. */
static inline float fast_erff(float x) {
    float a = fabsf(x);
    float t = 1.0f / (1.0f + 0.3275911f * a);
    float y = 1.0f - (((((1.061405429f * t - 1.453152027f) * t) + 1.421413741f) * t - 0.284496736f) * t +
                      0.254829592f) *
                         t * fast_expf(-a * a);
    return x < 0 ? -y : y;
}

/* 16-float vectors (GCC vector extensions): reductions and exp written with
 * them vectorise without -ffast-math. */
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float v16 __attribute__((vector_size(64), aligned(4)));
typedef int32_t vi16 __attribute__((vector_size(64), aligned(4)));
#define VINL static inline __attribute__((always_inline))

VINL v16 vld(const float *p) {
    v16 v;
    memcpy(&v, p, sizeof v);
    return v;
}
VINL void vst(float *p, v16 v) { memcpy(p, &v, sizeof v); }
/* C has no vector ?:, so select through the comparison mask. */
VINL v16 vsel(vi16 m, v16 a, v16 b) {
    vi16 ai, bi;
    memcpy(&ai, &a, sizeof ai);
    memcpy(&bi, &b, sizeof bi);
    vi16 r = (ai & m) | (bi & ~m);
    v16 o;
    memcpy(&o, &r, sizeof o);
    return o;
}
VINL v16 vmax(v16 a, v16 b) { return vsel(a > b, a, b); }
VINL v16 vmin(v16 a, v16 b) { return vsel(a < b, a, b); }
VINL float hsum(v16 v) {
    float s = 0;
    for (int i = 0; i < 16; i++) s += v[i];
    return s;
}
VINL float hmax(v16 v) {
    float m = v[0];
    for (int i = 1; i < 16; i++) m = v[i] > m ? v[i] : m;
    return m;
}

/* fast_expf on 16 lanes (same polynomial; rounding by the 1.5*2^23 trick). */
VINL v16 vexp(v16 x) {
    vi16 nan = x != x;
    x = vsel(nan, (v16){0}, vmin(vmax(x, (v16){0} - 87.0f), (v16){0} + 88.0f));
    v16 k = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
    v16 r = x - k * 0.693145752f - k * 1.42860677e-6f;
    v16 p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416664891f + r * (0.00833336078f +
                                                                                  r * 0.00139887314f)))));
    typedef uint32_t vu16 __attribute__((vector_size(64), aligned(4)));
    vu16 bits = __builtin_convertvector(__builtin_convertvector(k, vi16) + 127, vu16) << 23;
    v16 sc;
    memcpy(&sc, &bits, sizeof sc);
    return vsel(nan, (v16){0} + NAN, p * sc);
}

/* erf on 16 lanes (same approximation as fast_erff). */
VINL v16 verf(v16 x) {
    vi16 xi, sign;
    memcpy(&xi, &x, sizeof xi);
    sign = xi & (int32_t)0x80000000;
    vi16 ai = xi & 0x7fffffff;
    v16 a;
    memcpy(&a, &ai, sizeof a);
    v16 t = 1.0f / (1.0f + 0.3275911f * a);
    v16 y = 1.0f - (((((1.061405429f * t - 1.453152027f) * t) + 1.421413741f) * t - 0.284496736f) * t +
                    0.254829592f) *
                       t * vexp(-(a * a));
    vi16 yi;
    memcpy(&yi, &y, sizeof yi);
    yi |= sign;
    memcpy(&y, &yi, sizeof y);
    return y;
}

VINL v16 vgelu(v16 v) { return 0.5f * v * (1.0f + verf(v * 0.70710678f)); }
VINL v16 vsilu(v16 v) { return v / (1.0f + vexp(-v)); }

static inline float silu(float v) { return v / (1.0f + fast_expf(-v)); }
static inline float gelu(float v) { return 0.5f * v * (1.0f + fast_erff(v * 0.70710678f)); }

#define ROW_CHUNK 64

/* ---------- GroupNorm ---------- */

/* x: [rows, c] -> sum, sq: [c]. Per-channel sum and sum of squares over rows [r0, r1) of x. */
HOT static void gn_partial(const float *x, int c, long r0, long r1, float *sum, float *sq) {
    for (int j = 0; j < c; j++) sum[j] = sq[j] = 0;
    for (long r = r0; r < r1; r++) {
        const float *row = x + r * c;
        for (int j = 0; j < c; j++) {
            sum[j] += row[j];
            sq[j] += row[j] * row[j];
        }
    }
}

/* x, y: [rows, c] (rows [r0, r1) of one image); scale, bias: [c]. y = x * scale + bias, then SiLU when
 * use_silu. */
HOT static void gn_apply(float *y, const float *x, int c, long r0, long r1, const float *scale, const float *bias,
                         int use_silu) {
    for (long r = r0; r < r1; r++) {
        const float *xr = x + r * c;
        float *yr = y + r * c;
        if (use_silu) {
            int c16 = c & ~15;
            for (int j = 0; j < c16; j += 16) vst(yr + j, vsilu(vld(xr + j) * vld(scale + j) + vld(bias + j)));
            for (int j = c16; j < c; j++) yr[j] = silu(xr[j] * scale[j] + bias[j]);
        } else
            for (int j = 0; j < c; j++) yr[j] = xr[j] * scale[j] + bias[j];
    }
}

/* x, y: [n, h, w, c]; shift: [n, 1, 1, c] or NULL; gamma, beta: [c]. GroupNorm over groups groups of
 * c/groups channels: mean and variance of (x + shift) over h*w*(c/groups) values per (image, group), y =
 * (x + shift - mean) / sqrt(var + eps) * gamma + beta, then SiLU when use_silu. Partial sums in fixed
 * chunks of ROW_CHUNK rows, combined in order (thread-count independent). */
void ddps_cpu_group_norm(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_tensor *shift,
                         const ddps_weight *gamma, const ddps_weight *beta, int groups, float eps, int use_silu) {
    cpu_state *cs = cpu_of(be);
    int N = x->n, C = x->c;
    long HW = (long)x->h * x->w;
    long nchunk = (HW + ROW_CHUNK - 1) / ROW_CHUNK;
    if (groups <= 0 || C % groups) {
        ddps_backend_fail(be, DDPS_KIND_FAILURE, "internal error: %d channels in %d groups", C, groups);
        return;
    }
    /* partials [N][nchunk][2][C] floats, then per (n, c): scale, bias */
    size_t part = (size_t)N * nchunk * 2 * C;
    float *buf = ddps_cpu_buf_get(cs, &cs->stats, (part + 2 * (size_t)N * C) * sizeof(float));
    if (!buf) return;
    float *scale = buf + part, *bias = scale + (size_t)N * C;
    const float *xd = x->data;
#pragma omp parallel for schedule(static)
    for (long t = 0; t < N * nchunk; t++) {
        long n = t / nchunk, ch = t % nchunk;
        long r0 = ch * ROW_CHUNK, r1 = r0 + ROW_CHUNK < HW ? r0 + ROW_CHUNK : HW;
        float *p = buf + (size_t)t * 2 * C;
        gn_partial(xd + n * HW * C, C, r0, r1, p, p + C);
    }
    const float *g = ddps_cpu_table(gamma), *b = ddps_cpu_table(beta);
    const float *sh = shift ? shift->data : NULL;
    int cg = C / groups;
    for (int n = 0; n < N; n++) {
        for (int gi = 0; gi < groups; gi++) {
            double s1 = 0, s2 = 0;
            for (int j = gi * cg; j < (gi + 1) * cg; j++) {
                double cs1 = 0, cs2 = 0;
                for (long ch = 0; ch < nchunk; ch++) {
                    const float *p = buf + ((size_t)n * nchunk + ch) * 2 * C;
                    cs1 += p[j];
                    cs2 += p[C + j];
                }
                double sv = sh ? sh[(size_t)n * C + j] : 0.0;
                s1 += cs1 + HW * sv;
                s2 += cs2 + 2 * sv * cs1 + HW * sv * sv;
            }
            double cnt = (double)HW * cg, mean = s1 / cnt, var = s2 / cnt - mean * mean;
            if (var < 0) var = 0;
            double rstd = 1.0 / sqrt(var + eps);
            for (int j = gi * cg; j < (gi + 1) * cg; j++) {
                double sc = rstd * g[j];
                double sv = sh ? sh[(size_t)n * C + j] : 0.0;
                scale[(size_t)n * C + j] = (float)sc;
                bias[(size_t)n * C + j] = (float)(b[j] + (sv - mean) * sc);
            }
        }
    }
    float *yd = y->data;
#pragma omp parallel for schedule(static)
    for (long t = 0; t < N * nchunk; t++) {
        long n = t / nchunk, ch = t % nchunk;
        long r0 = ch * ROW_CHUNK, r1 = r0 + ROW_CHUNK < HW ? r0 + ROW_CHUNK : HW;
        gn_apply(yd + n * HW * C, xd + n * HW * C, C, r0, r1, scale + (size_t)n * C, bias + (size_t)n * C,
                 use_silu);
    }
}

/* ---------- LayerNorm ---------- */

/* x, y: [c]; g, b: [c]. One LayerNorm row: y = (x - mean) / sqrt(var + eps) * g + b. */
HOT static void ln_row(float *y, const float *x, int c, const float *g, const float *b, float eps) {
    int c16 = c & ~15;
    v16 vs = {0};
    for (int j = 0; j < c16; j += 16) vs += vld(x + j);
    double s = hsum(vs);
    for (int j = c16; j < c; j++) s += x[j];
    float mean = (float)(s / c);
    v16 vv = {0};
    for (int j = 0; j < c16; j += 16) {
        v16 d = vld(x + j) - mean;
        vv += d * d;
    }
    double v = hsum(vv);
    for (int j = c16; j < c; j++) v += (double)(x[j] - mean) * (x[j] - mean);
    float rstd = (float)(1.0 / sqrt(v / c + eps));
    for (int j = 0; j < c; j++) y[j] = (x[j] - mean) * rstd * g[j] + b[j];
}

/* x, y: [n, h, w, c] (tokens [n, 1, L, c]); gamma, beta: [c]. LayerNorm over c at every position. */
void ddps_cpu_layer_norm(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_weight *gamma,
                         const ddps_weight *beta, float eps) {
    (void)be;
    long rows = (long)x->n * x->h * x->w;
    int c = x->c;
    const float *g = ddps_cpu_table(gamma), *b = ddps_cpu_table(beta);
    float *yd = y->data;
    const float *xd = x->data;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) ln_row(yd + r * c, xd + r * c, c, g, b, eps);
}

/* ---------- softmax ---------- */

/* s: [n], in place -> s = exp(s - max(s)); returns 1 / sum(s) (the caller scales). One row of attention
 * scores. */
HOT float ddps_cpu_softmax_row(float *s, int n) {
    int n16 = n & ~15;
    /* four accumulators: the max is a dependency chain otherwise */
    v16 m0 = (v16){0} - INFINITY, m1 = m0, m2 = m0, m3 = m0;
    int j = 0;
    for (; j + 64 <= n16; j += 64) {
        m0 = vmax(m0, vld(s + j));
        m1 = vmax(m1, vld(s + j + 16));
        m2 = vmax(m2, vld(s + j + 32));
        m3 = vmax(m3, vld(s + j + 48));
    }
    for (; j < n16; j += 16) m0 = vmax(m0, vld(s + j));
    float m = hmax(vmax(vmax(m0, m1), vmax(m2, m3)));
    for (j = n16; j < n; j++) m = s[j] > m ? s[j] : m;
    v16 vs = {0};
    for (j = 0; j < n16; j += 16) {
        v16 e = vexp(vld(s + j) - m);
        vst(s + j, e);
        vs += e;
    }
    float sum = hsum(vs);
    for (j = n16; j < n; j++) {
        s[j] = fast_expf(s[j] - m);
        sum += s[j];
    }
    return 1.0f / sum;
}

/* ---------- elementwise ---------- */

/* x: [2f] -> y: [f]. y = x[:f] * gelu(x[f:]). */
HOT static void geglu_row(float *y, const float *x, int f) {
    int f16 = f & ~15;
    for (int j = 0; j < f16; j += 16) vst(y + j, vld(x + j) * vgelu(vld(x + f + j)));
    for (int j = f16; j < f; j++) y[j] = x[j] * gelu(x[f + j]);
}

/* x: [n, h, w, 2F] -> y: [n, h, w, F]. y = x[..., :F] * gelu(x[..., F:]) (erf GELU). */
void ddps_cpu_geglu(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x) {
    (void)be;
    long rows = (long)x->n * x->h * x->w;
    int f = x->c / 2;
    float *yd = y->data;
    const float *xd = x->data;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) geglu_row(yd + r * f, xd + r * 2 * f, f);
}

/* x, y: [n] (may be the same). y = act(x); DDPS_ACT_NONE copies. */
HOT static void act_span(float *y, const float *x, long n, ddps_act act) {
    switch (act) {
    case DDPS_ACT_SILU:
        for (long i = 0; i < n; i++) y[i] = silu(x[i]);
        break;
    case DDPS_ACT_GELU:
        for (long i = 0; i < n; i++) y[i] = gelu(x[i]);
        break;
    case DDPS_ACT_QUICK_GELU:
        for (long i = 0; i < n; i++) y[i] = x[i] / (1.0f + fast_expf(-1.702f * x[i]));
        break;
    default:
        if (y != x) memmove(y, x, (size_t)n * sizeof(float));
    }
}

#define SPAN 16384

/* x, y: any shape, same size (may alias). y = act(x), in spans of SPAN elements. */
void ddps_cpu_activate(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, ddps_act act) {
    (void)be;
    long n = (long)ddps_numel(x);
    float *yd = y->data;
    const float *xd = x->data;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i += SPAN) act_span(yd + i, xd + i, n - i < SPAN ? n - i : SPAN, act);
}

/* Misuse of an op by model code is a bug: a sticky internal error on the
 * backend, as the CUDA backend records, so CPU tests catch what would fail
 * on a GPU. Returns 1 (the op must return) when a and b differ in size. */
static int sizes_differ(ddps_backend *be, const ddps_tensor *a, const ddps_tensor *b) {
    if (ddps_numel(a) == ddps_numel(b)) return 0;
    ddps_backend_fail(be, DDPS_KIND_FAILURE, "internal error: sizes differ ([%d,%d,%d,%d] and [%d,%d,%d,%d])", a->n,
                      a->h, a->w, a->c, b->n, b->h, b->w, b->c);
    return 1;
}

/* y, x, z: any shape, same size (any may alias). y = a*x + b*z. */
void ddps_cpu_axpby(ddps_backend *be, ddps_tensor *y, float a, const ddps_tensor *x, float b, const ddps_tensor *z) {
    (void)be;
    if (sizes_differ(be, y, x) || sizes_differ(be, y, z)) return;
    long n = (long)ddps_numel(y);
    float *yd = y->data;
    const float *xd = x->data, *zd = z->data;
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; i++) yd[i] = a * xd[i] + b * zd[i];
}

/* Source index of dst for a resize from in to out (PyTorch 'nearest'): identity, exact 2x, or floor(dst *
 * (float)in / out), at most in - 1. */
static int nearest_src(int dst, int in, int out) {
    if (in == out) return dst;
    if (out == 2 * in) return dst >> 1;
    float scale = (float)in / (float)out;
    int s = (int)floorf((float)dst * scale);
    return s < in - 1 ? s : in - 1;
}

/* x: [n, hx, wx, c] -> y: [n, hy, wy, c] (y's sizes chosen by the caller). Nearest-neighbour resize,
 * PyTorch 'nearest'. */
void ddps_cpu_upsample_nearest(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x) {
    (void)be;
    int c = x->c;
    float *yd = y->data;
    const float *xd = x->data;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < y->n; n++)
        for (int i = 0; i < y->h; i++) {
            int si = nearest_src(i, x->h, y->h);
            for (int j = 0; j < y->w; j++) {
                int sj = nearest_src(j, x->w, y->w);
                memcpy(yd + (((size_t)n * y->h + i) * y->w + j) * c, xd + (((size_t)n * x->h + si) * x->w + sj) * c,
                       (size_t)c * sizeof(float));
            }
        }
}

/* a: [n, h, w, ca], b: [n, h, w, cb] -> y: [n, h, w, ca + cb]. y[..., :ca] = a, y[..., ca:] = b. */
void ddps_cpu_concat_c(ddps_backend *be, ddps_tensor *y, const ddps_tensor *a, const ddps_tensor *b) {
    (void)be;
    long rows = (long)y->n * y->h * y->w;
    int ca = a->c, cb = b->c, c = y->c;
    float *yd = y->data;
    const float *ad = a->data, *bd = b->data;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        memcpy(yd + r * c, ad + r * ca, (size_t)ca * sizeof(float));
        memcpy(yd + r * c + ca, bd + r * cb, (size_t)cb * sizeof(float));
    }
}

/* ids: [n, L] (host, checked), tok: [vocab, c], pos: [>= L, c] -> y: [n, h, w, c] with L = h*w (tokens
 * [n, 1, L, c]). y[b, i] = tok[ids[b, i]] + pos[i]. */
void ddps_cpu_embed(ddps_backend *be, ddps_tensor *y, const int32_t *ids, const ddps_weight *tok, const ddps_weight *pos) {
    (void)be;
    int L = y->h * y->w, c = y->c;
    const float *t = ddps_cpu_table(tok), *p = ddps_cpu_table(pos);
    float *yd = y->data;
    for (int n = 0; n < y->n; n++)
        for (int i = 0; i < L; i++) {
            const float *tr = t + (size_t)ids[n * L + i] * c, *pr = p + (size_t)i * c;
            float *yr = yd + ((size_t)n * L + i) * c;
            for (int j = 0; j < c; j++) yr[j] = tr[j] + pr[j];
        }
}

/* d (map), e, a, b: any shape, same size. d += w * ((e - a)^2 - (e - b)^2): e the true noise, a, b the
 * null- and label-prompt predictions. */
void ddps_cpu_sqdiff_acc(ddps_backend *be, ddps_tensor *d, const ddps_tensor *e, const ddps_tensor *a,
                         const ddps_tensor *b, float w) {
    (void)be;
    if (sizes_differ(be, d, e) || sizes_differ(be, d, a) || sizes_differ(be, d, b)) return;
    long n = (long)ddps_numel(d);
    float *dd = d->data;
    const float *ed = e->data, *ad = a->data, *bd = b->data;
    for (long i = 0; i < n; i++) {
        float u = ed[i] - ad[i], v = ed[i] - bd[i];
        dd[i] += w * (u * u - v * v);
    }
}

/* t (map): any shape. t = v everywhere. */
void ddps_cpu_map_fill(ddps_backend *be, ddps_tensor *t, float v) {
    (void)be;
    float *p = t->data;
    size_t n = ddps_numel(t);
    for (size_t i = 0; i < n; i++) p[i] = v;
}

/* Source indices i0, i1 and weight l1 of i1 for output index dst of a resize from in to out (PyTorch
 * bilinear, align_corners = false, negative coordinates clamped to 0). */
static void bilinear_src(int dst, int in, int out, int *i0, int *i1, float *l1) {
    float scale = (float)in / (float)out;
    float s = scale * ((float)dst + 0.5f) - 0.5f;
    if (s < 0) s = 0;
    int i = (int)s;
    *i0 = i;
    *i1 = i + (i < in - 1 ? 1 : 0);
    *l1 = s - (float)i;
}

/* x (map): [n, hx, wx, c] -> y (map): [n, hy, wy, 1] (y's sizes chosen by the caller). Bilinear resize
 * (align_corners = false, no antialias), then the mean over c. */
void ddps_cpu_resize_bilinear_cmean(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x) {
    (void)be;
    int c = x->c, H = y->h, W = y->w;
    float *yd = y->data;
    const float *xd = x->data;
    for (int n = 0; n < y->n; n++) {
        const float *xn = xd + (size_t)n * x->h * x->w * c;
#pragma omp parallel for schedule(static)
        for (int i = 0; i < H; i++) {
            int y0, y1;
            float ly;
            bilinear_src(i, x->h, H, &y0, &y1, &ly);
            for (int j = 0; j < W; j++) {
                int x0, x1;
                float lx;
                bilinear_src(j, x->w, W, &x0, &x1, &lx);
                const float *p00 = xn + ((size_t)y0 * x->w + x0) * c, *p01 = xn + ((size_t)y0 * x->w + x1) * c;
                const float *p10 = xn + ((size_t)y1 * x->w + x0) * c, *p11 = xn + ((size_t)y1 * x->w + x1) * c;
                float s = 0;
                for (int k = 0; k < c; k++)
                    s += (1 - ly) * ((1 - lx) * p00[k] + lx * p01[k]) + ly * ((1 - lx) * p10[k] + lx * p11[k]);
                yd[((size_t)n * H + i) * W + j] = s / (float)c;
            }
        }
    }
}

/* x (map): [n, h, w, c] -> y (map): [n, (h - k)/s + 1, (w - k)/s + 1, c]. Mean of every k x k window at
 * stride s, no padding, from a summed-area table in double. */
void ddps_cpu_avg_pool(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, int k, int s) {
    cpu_state *cs = cpu_of(be);
    int H = x->h, W = x->w, c = x->c;
    /* Summed-area table in double: any window size costs the same. */
    double *sat = ddps_cpu_buf_get(cs, &cs->stats, (size_t)(H + 1) * (W + 1) * sizeof(double));
    if (!sat) return;
    float *yd = y->data;
    const float *xd = x->data;
    double inv = 1.0 / ((double)k * k);
    for (int n = 0; n < x->n; n++)
        for (int ch = 0; ch < c; ch++) {
            for (int j = 0; j <= W; j++) sat[j] = 0;
            for (int i = 1; i <= H; i++) {
                double row = 0;
                sat[(size_t)i * (W + 1)] = 0;
                for (int j = 1; j <= W; j++) {
                    row += xd[(((size_t)n * H + i - 1) * W + j - 1) * c + ch];
                    sat[(size_t)i * (W + 1) + j] = sat[(size_t)(i - 1) * (W + 1) + j] + row;
                }
            }
            for (int i = 0; i < y->h; i++)
                for (int j = 0; j < y->w; j++) {
                    int r0 = i * s, c0 = j * s, r1 = r0 + k, c1 = c0 + k;
                    double v = sat[(size_t)r1 * (W + 1) + c1] - sat[(size_t)r0 * (W + 1) + c1] -
                               sat[(size_t)r1 * (W + 1) + c0] + sat[(size_t)r0 * (W + 1) + c0];
                    yd[(((size_t)n * y->h + i) * y->w + j) * c + ch] = (float)(v * inv);
                }
        }
}

/* x: [n, h, w, c] -> y: [n, 1, 1, c]. Mean over h and w (summed in double). */
void ddps_cpu_global_avg(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x) {
    (void)be;
    long HW = (long)x->h * x->w;
    int c = x->c;
    float *yd = y->data;
    const float *xd = x->data;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < x->n; n++)
        for (int j = 0; j < c; j++) {
            double s = 0;
            for (long r = 0; r < HW; r++) s += xd[((size_t)n * HW + r) * c + j];
            yd[(size_t)n * c + j] = (float)(s / (double)HW);
        }
}

/* src: [n] f32 -> dst: [n] bf16 bits, rounded to nearest even. */
HOT static void to_bf16_span(uint16_t *dst, const float *src, long n) {
    for (long i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], 4);
        u += 0x7fffu + ((u >> 16) & 1u);
        dst[i] = (uint16_t)(u >> 16);
    }
}

/* src: [n] f32 -> dst: [n] bf16 bits (round to nearest even), in parallel spans. */
void ddps_cpu_to_bf16(uint16_t *dst, const float *src, size_t n) {
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i += SPAN) to_bf16_span(dst + i, src + i, (long)n - i < SPAN ? (long)n - i : SPAN);
}
