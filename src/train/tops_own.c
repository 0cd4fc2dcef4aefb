/* Training ops that are ours: group (and instance) normalisation, adaptive
 * average pooling, the residual add, and the losses (cross-entropy with
 * label smoothing, KL divergence to soft targets). See train/tops.h.
 *
 * Parallel loops run over the batch; sums over a batch item are in double
 * (of float partial sums over a few pixels) and reductions over the batch
 * are done after the loop in a fixed order, so results do not depend on the
 * number of threads.
 */
#include <math.h>
#include <string.h>

#include "train/tops.h"
#include "util/cpu.h"

static int enter(tr_ctx *c, const char *op) {
    if (c->be->failed) return 0;
    c->be->op = op;
    return 1;
}

static void leave(tr_ctx *c) { c->be->op = NULL; }

static int bad(tr_ctx *c, int cond, const char *what) {
    if (!cond) return 0;
    ddps_backend_fail(c->be, DDPS_KIND_FAILURE, "internal error: %s", what);
    return 1;
}

static int same_shape(const ddps_tensor *a, const ddps_tensor *b) {
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

/* Scratch doubles from the arena (released by the caller's mark), or NULL. */
static double *scratch_d(tr_ctx *c, size_t n) {
    ddps_tensor t = ddps_new(c->be, 1, 1, 1, (int)(2 * n));
    return t.data;
}

/* ---------- group normalisation ---------- */

/* Pixels per float partial sum: per-channel sums run in float over BLOCK pixels (vectorised, no
 * conversions) and are added into double sums, so precision stays that of double for any size. */
#define BLOCK 64

/* x [n,h,w,c]; mean, rstd [1,1,n,groups]; s: scratch of 2 c doubles.
 * Two passes per batch item: per-channel sums, then squared deviations from the group mean.
 * Inner loops run over channels with per-channel arrays (no k / cg in them), so that they vectorise. */
DDPS_HOT static void gn_stats(const float *x, int hw, int ch, int groups, float eps, float *mean, float *rstd,
                              double *s) {
    int cg = ch / groups;
    double m = (double)hw * cg, *cm = s + ch;
    float f[ch]; /* float partial sums over BLOCK pixels, added into the double ones */
    memset(s, 0, (size_t)ch * sizeof *s);
    for (int p0 = 0; p0 < hw; p0 += BLOCK) {
        memset(f, 0, sizeof f);
        for (int p = p0; p < hw && p < p0 + BLOCK; p++) {
            const float *xp = x + (size_t)p * ch;
            for (int k = 0; k < ch; k++) f[k] += xp[k];
        }
        for (int k = 0; k < ch; k++) s[k] += f[k];
    }
    double gm[groups];
    for (int g = 0; g < groups; g++) {
        double a = 0;
        for (int k = 0; k < cg; k++) a += s[g * cg + k];
        gm[g] = a / m;
    }
    float fm[ch];
    for (int k = 0; k < ch; k++) cm[k] = gm[k / cg], fm[k] = (float)cm[k];
    memset(s, 0, (size_t)ch * sizeof *s);
    for (int p0 = 0; p0 < hw; p0 += BLOCK) {
        memset(f, 0, sizeof f);
        for (int p = p0; p < hw && p < p0 + BLOCK; p++) {
            const float *xp = x + (size_t)p * ch;
            for (int k = 0; k < ch; k++) {
                float d = xp[k] - fm[k];
                f[k] += d * d;
            }
        }
        for (int k = 0; k < ch; k++) s[k] += f[k];
    }
    for (int g = 0; g < groups; g++) {
        double v = 0;
        for (int k = 0; k < cg; k++) v += s[g * cg + k];
        mean[g] = (float)gm[g];
        rstd[g] = (float)(1.0 / sqrt(v / m + eps));
    }
}

/* One batch item: y = GN(x) from its statistics, or max(GN(x), 0) with relu (the ConvNet's norm
 * and ReLU in one pass over memory). */
DDPS_HOT static void gn_apply(const float *xi, float *yi, int hw, int ch, int cg, const float *mean, const float *rstd,
                              const float *g, const float *b, int relu) {
    float A[ch], B[ch]; /* y = x A + B */
    for (int k = 0; k < ch; k++) A[k] = rstd[k / cg] * g[k], B[k] = b[k] - mean[k / cg] * rstd[k / cg] * g[k];
    for (int p = 0; p < hw; p++) {
        const float *xp = xi + (size_t)p * ch;
        float *yp = yi + (size_t)p * ch;
        if (relu)
            for (int k = 0; k < ch; k++) {
                float v = xp[k] * A[k] + B[k];
                yp[k] = v > 0.0f ? v : 0.0f;
            }
        else
            for (int k = 0; k < ch; k++) yp[k] = xp[k] * A[k] + B[k];
    }
}

/* relu: y = max(GN(x), 0) (the ConvNet's norm and ReLU in one pass over memory). */
static void gn_forward(tr_ctx *c, int groups, float eps, const tr_param *gamma, const tr_param *beta, ddps_tensor *y,
                       const ddps_tensor *x, ddps_tensor *mean, ddps_tensor *rstd, int relu) {
    if (!enter(c, "group norm forward")) return;
    int ch = x->c, hw = x->h * x->w, n = x->n;
    if (bad(c, groups <= 0 || ch % groups || !same_shape(x, y) || (int)gamma->numel != ch ||
                   (int)beta->numel != ch || (int)ddps_numel(mean) != n * groups || (int)ddps_numel(rstd) != n * groups,
            "group norm shapes")) {
        leave(c);
        return;
    }
    size_t mark = ddps_mark(c->be);
    double *s = scratch_d(c, (size_t)2 * n * ch);
    if (s) {
        int cg = ch / groups;
        const float *g = gamma->data, *b = beta->data;
#pragma omp parallel for schedule(static)
        for (int i = 0; i < n; i++) {
            const float *xi = (const float *)x->data + (size_t)i * hw * ch;
            float *yi = (float *)y->data + (size_t)i * hw * ch;
            float *mi = (float *)mean->data + (size_t)i * groups, *ri = (float *)rstd->data + (size_t)i * groups;
            gn_stats(xi, hw, ch, groups, eps, mi, ri, s + (size_t)2 * i * ch);
            gn_apply(xi, yi, hw, ch, cg, mi, ri, g, b, relu);
        }
    }
    ddps_release(c->be, mark);
    leave(c);
}

void ddps_tr_group_norm_forward(tr_ctx *c, int groups, float eps, const tr_param *gamma, const tr_param *beta,
                           ddps_tensor *y, const ddps_tensor *x, ddps_tensor *mean, ddps_tensor *rstd) {
    gn_forward(c, groups, eps, gamma, beta, y, x, mean, rstd, 0);
}

void ddps_tr_group_norm_relu_forward(tr_ctx *c, int groups, float eps, const tr_param *gamma, const tr_param *beta,
                                     ddps_tensor *y, const ddps_tensor *x, ddps_tensor *mean, ddps_tensor *rstd) {
    gn_forward(c, groups, eps, gamma, beta, y, x, mean, rstd, 1);
}

/* One batch item: a[k] = sum dy, b[k] = sum dy * xhat over pixels; then dx. With y (the fused
 * ReLU's output), dy counts only where y > 0. */
DDPS_HOT static void gn_backward_item(const float *x, const float *dy, float *dx, int hw, int ch, int groups,
                             const float *mean, const float *rstd, const float *gamma, double *a, double *b,
                             const float *y) {
    int cg = ch / groups;
    double m = (double)hw * cg;
    float M[ch], R[ch];
    for (int k = 0; k < ch; k++) M[k] = mean[k / cg], R[k] = rstd[k / cg];
    memset(a, 0, (size_t)ch * sizeof *a);
    memset(b, 0, (size_t)ch * sizeof *b);
    float fa[ch], fb[ch]; /* float partial sums over BLOCK pixels, added into the double ones */
    for (int p0 = 0; p0 < hw; p0 += BLOCK) {
        memset(fa, 0, sizeof fa);
        memset(fb, 0, sizeof fb);
        for (int p = p0; p < hw && p < p0 + BLOCK; p++) {
            const float *xp = x + (size_t)p * ch, *dp = dy + (size_t)p * ch;
            if (y) {
                const float *yp = y + (size_t)p * ch;
                for (int k = 0; k < ch; k++) {
                    float d = yp[k] > 0 ? dp[k] : 0.0f;
                    fa[k] += d;
                    fb[k] += d * (xp[k] - M[k]) * R[k];
                }
            } else {
                for (int k = 0; k < ch; k++) {
                    fa[k] += dp[k];
                    fb[k] += dp[k] * (xp[k] - M[k]) * R[k];
                }
            }
        }
        for (int k = 0; k < ch; k++) a[k] += fa[k], b[k] += fb[k];
    }
    double s1[groups], s2[groups];
    for (int g = 0; g < groups; g++) {
        s1[g] = s2[g] = 0;
        for (int k = g * cg; k < (g + 1) * cg; k++) {
            s1[g] += gamma[k] * a[k];
            s2[g] += gamma[k] * b[k];
        }
        s1[g] /= m;
        s2[g] /= m;
    }
    float S1[ch], S2[ch];
    for (int k = 0; k < ch; k++) S1[k] = (float)s1[k / cg], S2[k] = (float)s2[k / cg];
    for (int p = 0; p < hw; p++) {
        const float *xp = x + (size_t)p * ch, *dp = dy + (size_t)p * ch;
        float *op = dx + (size_t)p * ch;
        if (y) {
            const float *yp = y + (size_t)p * ch;
            for (int k = 0; k < ch; k++) {
                float xh = (xp[k] - M[k]) * R[k], d = yp[k] > 0 ? dp[k] : 0.0f;
                op[k] = R[k] * (d * gamma[k] - S1[k] - xh * S2[k]);
            }
        } else {
            for (int k = 0; k < ch; k++) {
                float xh = (xp[k] - M[k]) * R[k];
                op[k] = R[k] * (dp[k] * gamma[k] - S1[k] - xh * S2[k]);
            }
        }
    }
}

static void gn_backward(tr_ctx *c, int groups, const tr_param *gamma, const tr_param *beta, ddps_tensor *dx,
                        const ddps_tensor *dy, const ddps_tensor *x, const ddps_tensor *mean, const ddps_tensor *rstd,
                        const ddps_tensor *y) {
    if (!enter(c, "group norm backward")) return;
    int ch = x->c, hw = x->h * x->w, n = x->n;
    if (bad(c, groups <= 0 || ch % groups || !same_shape(x, dy) || !same_shape(x, dx) || (int)gamma->numel != ch ||
                   (y && !same_shape(x, y)),
            "group norm backward shapes")) {
        leave(c);
        return;
    }
    size_t mark = ddps_mark(c->be);
    double *s = scratch_d(c, (size_t)2 * n * ch);
    if (s) {
#pragma omp parallel for schedule(static)
        for (int i = 0; i < n; i++) {
            size_t off = (size_t)i * hw * ch;
            gn_backward_item((const float *)x->data + off, (const float *)dy->data + off, (float *)dx->data + off, hw,
                             ch, groups, (const float *)mean->data + (size_t)i * groups,
                             (const float *)rstd->data + (size_t)i * groups, gamma->data, s + (size_t)2 * i * ch,
                             s + (size_t)(2 * i + 1) * ch, y ? (const float *)y->data + off : NULL);
        }
        for (int k = 0; k < ch; k++) {
            double ga = 0, gb = 0;
            for (int i = 0; i < n; i++) {
                ga += s[(size_t)(2 * i + 1) * ch + k];
                gb += s[(size_t)2 * i * ch + k];
            }
            gamma->grad[k] = (float)ga;
            beta->grad[k] = (float)gb;
        }
    }
    ddps_release(c->be, mark);
    leave(c);
}

void ddps_tr_group_norm_backward(tr_ctx *c, int groups, const tr_param *gamma, const tr_param *beta, ddps_tensor *dx,
                            const ddps_tensor *dy, const ddps_tensor *x, const ddps_tensor *mean,
                            const ddps_tensor *rstd) {
    gn_backward(c, groups, gamma, beta, dx, dy, x, mean, rstd, NULL);
}

void ddps_tr_group_norm_relu_backward(tr_ctx *c, int groups, const tr_param *gamma, const tr_param *beta,
                                      ddps_tensor *dx, const ddps_tensor *dy, const ddps_tensor *x,
                                      const ddps_tensor *y, const ddps_tensor *mean, const ddps_tensor *rstd) {
    gn_backward(c, groups, gamma, beta, dx, dy, x, mean, rstd, y);
}

/* ---------- adaptive average pooling ---------- */

static int cell_lo(int i, int in, int out) { return (int)((long)i * in / out); }
static int cell_hi(int i, int in, int out) { return (int)(((long)(i + 1) * in + out - 1) / out); }

void ddps_tr_adaptive_avg_forward(tr_ctx *c, ddps_tensor *y, const ddps_tensor *x) {
    if (!enter(c, "adaptive avg pool forward")) return;
    if (bad(c, y->n != x->n || y->c != x->c || y->h > x->h || y->w > x->w, "adaptive avg pool shapes")) {
        leave(c);
        return;
    }
    int ch = x->c;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < x->n; i++) {
        const float *xi = (const float *)x->data + (size_t)i * x->h * x->w * ch;
        for (int oy = 0; oy < y->h; oy++)
            for (int ox = 0; ox < y->w; ox++) {
                int y0 = cell_lo(oy, x->h, y->h), y1 = cell_hi(oy, x->h, y->h);
                int x0 = cell_lo(ox, x->w, y->w), x1 = cell_hi(ox, x->w, y->w);
                float *yo = (float *)y->data + (((size_t)i * y->h + oy) * y->w + ox) * ch;
                float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));
                for (int k = 0; k < ch; k++) {
                    double s = 0;
                    for (int a = y0; a < y1; a++)
                        for (int b = x0; b < x1; b++) s += xi[((size_t)a * x->w + b) * ch + k];
                    yo[k] = (float)s * inv;
                }
            }
    }
    leave(c);
}

void ddps_tr_adaptive_avg_backward(tr_ctx *c, ddps_tensor *dx, const ddps_tensor *dy) {
    if (!enter(c, "adaptive avg pool backward")) return;
    if (bad(c, dy->n != dx->n || dy->c != dx->c || dy->h > dx->h || dy->w > dx->w, "adaptive avg pool shapes")) {
        leave(c);
        return;
    }
    int ch = dx->c;
    memset(dx->data, 0, ddps_numel(dx) * sizeof(float));
#pragma omp parallel for schedule(static)
    for (int i = 0; i < dx->n; i++) {
        float *di = (float *)dx->data + (size_t)i * dx->h * dx->w * ch;
        for (int oy = 0; oy < dy->h; oy++)
            for (int ox = 0; ox < dy->w; ox++) {
                int y0 = cell_lo(oy, dx->h, dy->h), y1 = cell_hi(oy, dx->h, dy->h);
                int x0 = cell_lo(ox, dx->w, dy->w), x1 = cell_hi(ox, dx->w, dy->w);
                const float *go = (const float *)dy->data + (((size_t)i * dy->h + oy) * dy->w + ox) * ch;
                float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));
                for (int a = y0; a < y1; a++)
                    for (int b = x0; b < x1; b++)
                        for (int k = 0; k < ch; k++) di[((size_t)a * dx->w + b) * ch + k] += go[k] * inv;
            }
    }
    leave(c);
}

/* ---------- residual add ---------- */

void ddps_tr_add(tr_ctx *c, ddps_tensor *y, const ddps_tensor *a, const ddps_tensor *b) {
    if (!enter(c, "add")) return;
    if (!bad(c, ddps_numel(a) != ddps_numel(y) || ddps_numel(b) != ddps_numel(y), "add sizes")) {
        size_t n = ddps_numel(y);
        float *yd = y->data;
        const float *ad = a->data, *bd = b->data;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) yd[i] = ad[i] + bd[i];
    }
    leave(c);
}

/* ---------- losses ---------- */

/* logp[k] = s[k]/T - logsumexp(s/T) in double; returns nothing, fills logp. */
static void log_softmax_row(const float *s, int k, float T, double *logp) {
    double mx = -INFINITY, sum = 0;
    for (int j = 0; j < k; j++) mx = fmax(mx, s[j] / T);
    for (int j = 0; j < k; j++) sum += exp(s[j] / T - mx);
    double lse = mx + log(sum);
    for (int j = 0; j < k; j++) logp[j] = s[j] / T - lse;
}

float ddps_tr_xent_forward(tr_ctx *c, const ddps_tensor *logits, const int64_t *labels, float eps, ddps_tensor *probs) {
    if (!enter(c, "cross-entropy forward")) return NAN;
    int n = logits->n, k = logits->h * logits->w * logits->c;
    if (bad(c, ddps_numel(probs) != ddps_numel(logits), "cross-entropy shapes")) {
        leave(c);
        return NAN;
    }
    double total = 0, lp[k];
    for (int i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= k) {
            ddps_backend_fail(c->be, DDPS_KIND_DATA, "label %lld out of range [0, %d)", (long long)labels[i], k);
            leave(c);
            return NAN;
        }
        log_softmax_row((const float *)logits->data + (size_t)i * k, k, 1.0f, lp);
        double all = 0;
        for (int j = 0; j < k; j++) {
            all += lp[j];
            ((float *)probs->data)[(size_t)i * k + j] = (float)exp(lp[j]);
        }
        total += -(1.0 - eps) * lp[labels[i]] - eps / k * all;
    }
    leave(c);
    return (float)(total / n);
}

void ddps_tr_xent_backward(tr_ctx *c, ddps_tensor *dlogits, const ddps_tensor *probs, const int64_t *labels, float eps) {
    if (!enter(c, "cross-entropy backward")) return;
    int n = probs->n, k = probs->h * probs->w * probs->c;
    if (!bad(c, ddps_numel(probs) != ddps_numel(dlogits), "cross-entropy backward shapes"))
        for (int i = 0; i < n; i++)
            for (int j = 0; j < k; j++) {
                size_t o = (size_t)i * k + j;
                float t = eps / k + (j == labels[i] ? 1.0f - eps : 0.0f);
                ((float *)dlogits->data)[o] = (((const float *)probs->data)[o] - t) / n;
            }
    leave(c);
}

float ddps_tr_kl_forward(tr_ctx *c, const ddps_tensor *s, const ddps_tensor *t, float T, ddps_tensor *q, ddps_tensor *p) {
    if (!enter(c, "KL divergence forward")) return NAN;
    int n = s->n, k = s->h * s->w * s->c;
    if (bad(c, ddps_numel(t) != ddps_numel(s) || ddps_numel(q) != ddps_numel(s) || ddps_numel(p) != ddps_numel(s),
            "KL divergence shapes")) {
        leave(c);
        return NAN;
    }
    double total = 0, lq[k], lp[k];
    for (int i = 0; i < n; i++) {
        log_softmax_row((const float *)s->data + (size_t)i * k, k, T, lq);
        log_softmax_row((const float *)t->data + (size_t)i * k, k, T, lp);
        for (int j = 0; j < k; j++) {
            double pj = exp(lp[j]);
            if (pj > 0) total += pj * (lp[j] - lq[j]);
            ((float *)q->data)[(size_t)i * k + j] = (float)exp(lq[j]);
            ((float *)p->data)[(size_t)i * k + j] = (float)pj;
        }
    }
    leave(c);
    return (float)(total / n);
}

void ddps_tr_kl_backward(tr_ctx *c, ddps_tensor *ds, const ddps_tensor *q, const ddps_tensor *p, float T) {
    if (!enter(c, "KL divergence backward")) return;
    size_t m = ddps_numel(q);
    if (!bad(c, ddps_numel(ds) != m || ddps_numel(p) != m, "KL divergence backward shapes")) {
        float inv = 1.0f / ((float)q->n * T);
        for (size_t i = 0; i < m; i++)
            ((float *)ds->data)[i] = (((const float *)q->data)[i] - ((const float *)p->data)[i]) * inv;
    }
    leave(c);
}
