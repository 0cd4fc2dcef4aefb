/* Training ops (src/train): every backward against central finite
 * differences of its forward on tiny shapes, and the forwards whose result
 * is easy to state against direct references (convolution, linear in
 * PyTorch's flatten order, pooling, batch-norm running statistics and eval
 * mode, the losses). The loss of an op is L = sum(y * r) with r fixed and
 * random, so dy = r. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "train/model.h"
#include "train/optim.h"
#include "train/tops.h"
#include "util/rng.h"

static ddps_backend *be;
static tr_ctx *ctx;
static ddps_rng rng;

static void fill(float *p, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) p[i] = (float)ddps_rng_normal(&rng) * scale;
}

static ddps_tensor tensor(int n, int h, int w, int c, float scale) {
    ddps_tensor t = ddps_tensor_alloc(be, n, h, w, c);
    fill(t.data, ddps_numel(&t), scale);
    return t;
}

static tr_param *param(const char *name, size_t n, float scale, float offset) {
    tr_param *p = calloc(1, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->numel = n;
    p->data = malloc(n * sizeof(float));
    p->grad = calloc(n, sizeof(float));
    fill(p->data, n, scale);
    for (size_t i = 0; i < n; i++) p->data[i] += offset;
    return p;
}

static void param_free(tr_param *p) {
    if (!p) return;
    free(p->data);
    free(p->grad);
    free(p);
}

static double dot(const ddps_tensor *y, const ddps_tensor *r) {
    double s = 0;
    for (size_t i = 0; i < ddps_numel(y); i++) s += (double)((float *)y->data)[i] * ((float *)r->data)[i];
    return s;
}

/* The op under test: runs its forward and returns L = sum(y * r). */
typedef double (*loss_fn)(void);

/* Central differences of f in each v[i] (up to 48 evenly spread entries)
 * against the analytic gradient g: relative L2 error <= tol. */
static void fd_check(const char *what, loss_fn f, float *v, const float *g, size_t n, double tol) {
    size_t step = n > 48 ? n / 48 : 1, cnt = 0;
    float num[64], ana[64];
    for (size_t i = 0; i < n && cnt < 64; i += step) {
        float save = v[i], h = 1e-2f * fmaxf(1.0f, fabsf(save));
        v[i] = save + h;
        double lp = f();
        v[i] = save - h;
        double lm = f();
        v[i] = save;
        num[cnt] = (float)((lp - lm) / (2.0 * h));
        ana[cnt++] = g[i];
    }
    double e = t_rel_l2(ana, num, cnt);
    fprintf(stderr, "   %-28s rel L2 %.2e over %zu entries\n", what, e, cnt);
    CHECKF(e <= tol && !be->failed, "%s: %.3e", what, e);
}

/* ---- convolution ---- */

static tr_conv conv;
static ddps_tensor cx, cy, cr;

static double conv_loss(void) {
    ddps_tr_conv_forward(ctx, &conv, &cy, &cx);
    return dot(&cy, &cr);
}

static void conv_case(int n, int h, int in, int out, int k, int s, int p, int bias) {
    conv = (tr_conv){in, out, k, s, p, param("w", (size_t)out * in * k * k, 0.3f, 0), NULL};
    if (bias) conv.b = param("b", out, 0.3f, 0);
    int ho = (h + 2 * p - k) / s + 1;
    cx = tensor(n, h, h, in, 1.0f);
    cy = ddps_tensor_alloc(be, n, ho, ho, out);
    cr = tensor(n, ho, ho, out, 1.0f);
    conv_loss();
    /* forward against a direct NHWC reference */
    double err = 0, ref = 0;
    const float *x = cx.data, *w = conv.w->data;
    for (int b = 0; b < n; b++)
        for (int i = 0; i < ho; i++)
            for (int j = 0; j < ho; j++)
                for (int o = 0; o < out; o++) {
                    double a = bias ? conv.b->data[o] : 0;
                    for (int u = 0; u < k; u++)
                        for (int v = 0; v < k; v++) {
                            int yy = i * s - p + u, xx = j * s - p + v;
                            if (yy < 0 || xx < 0 || yy >= h || xx >= h) continue;
                            for (int ci = 0; ci < in; ci++)
                                a += (double)x[(((size_t)b * h + yy) * h + xx) * in + ci] *
                                     w[(((size_t)o * in + ci) * k + u) * k + v];
                        }
                    double d = ((float *)cy.data)[(((size_t)b * ho + i) * ho + j) * out + o] - a;
                    err += d * d;
                    ref += a * a;
                }
    CHECKF(sqrt(err / ref) < 1e-5, "conv forward %.3e", sqrt(err / ref));
    ddps_tensor dx = ddps_tensor_alloc(be, n, h, h, in);
    ddps_tr_conv_backward(ctx, &conv, &dx, &cr, &cx);
    fd_check("conv dx", conv_loss, cx.data, dx.data, ddps_numel(&cx), 1e-3);
    fd_check("conv dw", conv_loss, conv.w->data, conv.w->grad, conv.w->numel, 1e-3);
    if (bias) fd_check("conv db", conv_loss, conv.b->data, conv.b->grad, conv.b->numel, 1e-3);
    ddps_tensor_free(be, &dx);
    ddps_tensor_free(be, &cx);
    ddps_tensor_free(be, &cy);
    ddps_tensor_free(be, &cr);
    param_free(conv.w);
    param_free(conv.b);
}

/* The Winograd path (ctx->winograd: 3x3 stride 1, >= 64 channels, >= 512 output positions, activations
 * reordered to oneDNN's blocked layout and back) against the direct one: forward, dx, dw, db within
 * 1e-4 relative L2, and not bit-equal (else the Winograd kernel was not used). */
static void test_conv_winograd(void) {
    int n = 2, h = 16, ch = 64;
    tr_conv l = {ch, ch, 3, 1, 1, param("w", (size_t)ch * ch * 9, 0.3f, 0), param("b", ch, 0.3f, 0)};
    ddps_tensor x = tensor(n, h, h, ch, 1.0f), dy = tensor(n, h, h, ch, 1.0f);
    size_t ny = ddps_numel(&x), nw = l.w->numel;
    float *ref = malloc((2 * ny + nw + ch) * sizeof(float)), *got = malloc((2 * ny + nw + ch) * sizeof(float));
    int saved = ctx->winograd;
    for (int wino = 0; wino < 2; wino++) {
        ctx->winograd = wino;
        ddps_tensor y = ddps_tensor_alloc(be, n, h, h, ch), dx = ddps_tensor_alloc(be, n, h, h, ch);
        ddps_tr_conv_forward(ctx, &l, &y, &x);
        ddps_tr_conv_backward(ctx, &l, &dx, &dy, &x);
        float *o = wino ? got : ref;
        memcpy(o, y.data, ny * sizeof(float));
        memcpy(o + ny, dx.data, ny * sizeof(float));
        memcpy(o + 2 * ny, l.w->grad, nw * sizeof(float));
        memcpy(o + 2 * ny + nw, l.b->grad, ch * sizeof(float));
        ddps_tensor_free(be, &y);
        ddps_tensor_free(be, &dx);
    }
    ctx->winograd = saved;
    const char *what[4] = {"y", "dx", "dw", "db"};
    size_t off[5] = {0, ny, 2 * ny, 2 * ny + nw, 2 * ny + nw + ch};
    double total = 0;
    for (int i = 0; i < 4; i++) {
        double e = t_rel_l2(got + off[i], ref + off[i], off[i + 1] - off[i]);
        total += e;
        fprintf(stderr, "   winograd %-19s rel L2 %.2e\n", what[i], e);
        CHECKF(e < 1e-4 && !be->failed, "winograd %s: %.3e", what[i], e);
    }
    CHECKF(total > 0, "winograd results are bit-equal to the direct ones: was Winograd used?");
    free(ref);
    free(got);
    ddps_tensor_free(be, &x);
    ddps_tensor_free(be, &dy);
    param_free(l.w);
    param_free(l.b);
}

static void test_conv(void) {
    conv_case(2, 5, 3, 4, 3, 2, 1, 1);
    conv_case(2, 4, 5, 3, 3, 1, 1, 0);
    conv_case(1, 6, 4, 6, 1, 2, 0, 0);
    conv_case(1, 9, 2, 3, 7, 2, 3, 0);
}

/* ---- batch normalisation ---- */

static tr_bn bn;
static ddps_tensor bx, by, br, bmean, bvar;

static double bn_loss(void) {
    float rm[8], rv[8];
    memcpy(rm, bn.running_mean->data, sizeof rm);
    memcpy(rv, bn.running_var->data, sizeof rv);
    ddps_tr_bn_forward(ctx, &bn, &by, &bx, &bmean, &bvar, 1);
    memcpy(bn.running_mean->data, rm, sizeof rm);
    memcpy(bn.running_var->data, rv, sizeof rv);
    return dot(&by, &br);
}

static void test_batch_norm(void) {
    int n = 3, h = 2, c = 8;
    bn = (tr_bn){c, 1e-5f, 0.1f, param("g", c, 0.3f, 1), param("b", c, 0.3f, 0), param("rm", c, 0.1f, 0),
                 param("rv", c, 0.1f, 1), param("nb", 1, 0, 0)};
    bx = tensor(n, h, h, c, 2.0f);
    by = ddps_tensor_alloc(be, n, h, h, c);
    br = tensor(n, h, h, c, 1.0f);
    bmean = ddps_tensor_alloc(be, 1, 1, 1, c);
    bvar = ddps_tensor_alloc(be, 1, 1, 1, c);
    float rm0[8], rv0[8];
    memcpy(rm0, bn.running_mean->data, sizeof rm0);
    memcpy(rv0, bn.running_var->data, sizeof rv0);
    ddps_tr_bn_forward(ctx, &bn, &by, &bx, &bmean, &bvar, 1);
    /* batch statistics and the running update (unbiased variance, momentum 0.1) */
    int m = n * h * h;
    for (int k = 0; k < c; k++) {
        double s = 0, q = 0;
        for (int i = 0; i < m; i++) s += ((float *)bx.data)[(size_t)i * c + k];
        s /= m;
        for (int i = 0; i < m; i++) q += pow(((float *)bx.data)[(size_t)i * c + k] - s, 2);
        CHECK(fabs(((float *)bmean.data)[k] - s) < 1e-5);
        CHECK(fabs(((float *)bvar.data)[k] - q / m) < 1e-4);
        CHECK(fabs(bn.running_mean->data[k] - (0.9 * rm0[k] + 0.1 * s)) < 1e-5);
        CHECK(fabs(bn.running_var->data[k] - (0.9 * rv0[k] + 0.1 * q / (m - 1))) < 1e-4);
        double y0 = (((float *)bx.data)[k] - s) / sqrt(q / m + 1e-5) * bn.weight->data[k] + bn.bias->data[k];
        CHECK(fabs(((float *)by.data)[k] - y0) < 1e-4);
    }
    CHECK(bn.num_batches->data[0] == 1);
    /* eval mode uses the running statistics */
    ddps_tr_bn_forward(ctx, &bn, &by, &bx, NULL, NULL, 0);
    for (int k = 0; k < c; k++) {
        double y0 = (((float *)bx.data)[c + k] - bn.running_mean->data[k]) / sqrt(bn.running_var->data[k] + 1e-5) *
                        bn.weight->data[k] +
                    bn.bias->data[k];
        CHECK(fabs(((float *)by.data)[c + k] - y0) < 1e-4);
    }
    bn_loss();
    ddps_tensor dx = ddps_tensor_alloc(be, n, h, h, c);
    ddps_tr_bn_backward(ctx, &bn, &dx, &br, &bx, &bmean, &bvar);
    fd_check("batch norm dx", bn_loss, bx.data, dx.data, ddps_numel(&bx), 2e-3);
    fd_check("batch norm dgamma", bn_loss, bn.weight->data, bn.weight->grad, c, 1e-3);
    fd_check("batch norm dbeta", bn_loss, bn.bias->data, bn.bias->grad, c, 1e-3);
    ddps_tensor *ts[] = {&dx, &bx, &by, &br, &bmean, &bvar};
    for (int i = 0; i < 6; i++) ddps_tensor_free(be, ts[i]);
    param_free(bn.weight);
    param_free(bn.bias);
    param_free(bn.running_mean);
    param_free(bn.running_var);
    param_free(bn.num_batches);
}

/* ---- ReLU, pooling, adaptive pooling ---- */

static ddps_tensor px, py, pr, pws;
static int p_kind, p_k, p_s, p_p; /* kind 0 relu, 1 max pool, 2 avg pool, 3 adaptive */

static double pool_loss(void) {
    size_t mark = ddps_mark(be);
    if (p_kind == 0) ddps_tr_relu_forward(ctx, &py, &px);
    if (p_kind == 1 || p_kind == 2) ddps_tr_pool_forward(ctx, p_kind == 1, p_k, p_s, p_p, &py, &px, &pws);
    if (p_kind == 3) ddps_tr_adaptive_avg_forward(ctx, &py, &px);
    ddps_release(be, mark);
    return dot(&py, &pr);
}

static void pool_case(const char *what, int kind, int k, int s, int p, int h, int oh, int ow) {
    p_kind = kind, p_k = k, p_s = s, p_p = p;
    int n = 2, c = 3;
    px = tensor(n, h, h, c, 1.0f);
    /* keep values away from ReLU's kink and apart from each other for max pooling */
    for (size_t i = 0; i < ddps_numel(&px); i++) {
        float *v = (float *)px.data + i;
        *v = (*v < 0 ? -0.2f : 0.2f) + *v + 0.05f * (float)(i % 7);
        if (kind == 1) *v = 0.1f * (float)((i * 37) % ddps_numel(&px)) - 3.0f; /* distinct, 0.1 apart */
    }
    py = ddps_tensor_alloc(be, n, oh, ow, c);
    pr = tensor(n, oh, ow, c, 1.0f);
    ddps_tensor dx = ddps_tensor_alloc(be, n, h, h, c);
    size_t mark = ddps_mark(be);
    if (kind == 0) {
        ddps_tr_relu_forward(ctx, &py, &px);
        ddps_tr_relu_backward(ctx, &dx, &pr, &px);
        for (size_t i = 0; i < ddps_numel(&px); i++)
            CHECK(((float *)py.data)[i] == fmaxf(((float *)px.data)[i], 0));
    } else if (kind == 3) {
        ddps_tr_adaptive_avg_forward(ctx, &py, &px);
        ddps_tr_adaptive_avg_backward(ctx, &dx, &pr);
    } else {
        ddps_tr_pool_forward(ctx, kind == 1, k, s, p, &py, &px, &pws);
        ddps_tr_pool_backward(ctx, kind == 1, k, s, p, &dx, &pr, &pws);
        /* first output cell against a direct reference */
        float ref = kind == 1 ? -INFINITY : 0;
        int cnt = 0;
        for (int a = -p; a < k - p; a++)
            for (int b = -p; b < k - p; b++) {
                if (a < 0 || b < 0 || a >= h || b >= h) continue;
                float v = ((float *)px.data)[((size_t)a * h + b) * c];
                ref = kind == 1 ? fmaxf(ref, v) : ref + v;
                cnt++;
            }
        if (kind == 2) ref /= (float)cnt;
        CHECKF(fabsf(((float *)py.data)[0] - ref) < 1e-5, "%s forward", what);
    }
    ddps_release(be, mark);
    fd_check(what, pool_loss, px.data, dx.data, ddps_numel(&px), 1e-3);
    ddps_tensor *ts[] = {&dx, &px, &py, &pr};
    for (int i = 0; i < 4; i++) ddps_tensor_free(be, ts[i]);
}

static void test_pool_relu(void) {
    pool_case("relu dx", 0, 0, 0, 0, 4, 4, 4);
    pool_case("max pool 3/2/1 dx", 1, 3, 2, 1, 6, 3, 3);
    pool_case("avg pool 2/2 dx", 2, 2, 2, 0, 4, 2, 2);
    pool_case("adaptive avg 5->2x3 dx", 3, 0, 0, 0, 5, 2, 3);
    pool_case("adaptive avg 4->1 dx", 3, 0, 0, 0, 4, 1, 1);
}

/* ---- linear ---- */

static tr_linear lin;
static ddps_tensor lx, ly, lr;

static double lin_loss(void) {
    ddps_tr_linear_forward(ctx, &lin, &ly, &lx);
    return dot(&ly, &lr);
}

static void linear_case(int n, int h, int c, int out) {
    lin = (tr_linear){h * h * c, out, param("w", (size_t)out * h * h * c, 0.3f, 0), param("b", out, 0.3f, 0)};
    lx = tensor(n, h, h, c, 1.0f);
    ly = ddps_tensor_alloc(be, n, 1, 1, out);
    lr = tensor(n, 1, 1, out, 1.0f);
    lin_loss();
    /* PyTorch's x.view(n, -1) of NCHW: feature index (ch * h + y) * w + x */
    for (int b = 0; b < n; b++)
        for (int o = 0; o < out; o++) {
            double a = lin.b->data[o];
            for (int ch = 0; ch < c; ch++)
                for (int p = 0; p < h * h; p++)
                    a += (double)((float *)lx.data)[((size_t)b * h * h + p) * c + ch] *
                         lin.w->data[(size_t)o * lin.in + (size_t)ch * h * h + p];
            CHECKF(fabs(((float *)ly.data)[b * out + o] - a) < 1e-4, "linear forward %d %d", b, o);
        }
    ddps_tensor dx = ddps_tensor_alloc(be, n, h, h, c);
    ddps_tr_linear_backward(ctx, &lin, &dx, &lr, &lx);
    fd_check("linear dx", lin_loss, lx.data, dx.data, ddps_numel(&lx), 1e-3);
    fd_check("linear dw", lin_loss, lin.w->data, lin.w->grad, lin.w->numel, 1e-3);
    fd_check("linear db", lin_loss, lin.b->data, lin.b->grad, lin.b->numel, 1e-3);
    ddps_tensor *ts[] = {&dx, &lx, &ly, &lr};
    for (int i = 0; i < 4; i++) ddps_tensor_free(be, ts[i]);
    param_free(lin.w);
    param_free(lin.b);
}

static void test_linear(void) {
    linear_case(3, 1, 6, 4);
    linear_case(2, 3, 4, 5);
}

/* ---- group / instance normalisation ---- */

static tr_param *gg, *gb;
static int g_groups, g_relu;
static ddps_tensor gx, gy, gr;

static double gn_loss(void) {
    size_t mark = ddps_mark(be);
    ddps_tensor m = ddps_new(be, 1, 1, gx.n, g_groups), r = ddps_new(be, 1, 1, gx.n, g_groups);
    if (g_relu)
        ddps_tr_group_norm_relu_forward(ctx, g_groups, 1e-5f, gg, gb, &gy, &gx, &m, &r);
    else
        ddps_tr_group_norm_forward(ctx, g_groups, 1e-5f, gg, gb, &gy, &gx, &m, &r);
    ddps_release(be, mark);
    return dot(&gy, &gr);
}

/* relu: the fused norm + ReLU (its backward given the forward's output as the mask). */
static void gn_case(int groups, int c, int relu) {
    int n = 2, h = 3;
    g_groups = groups;
    g_relu = relu;
    gg = param("g", c, 0.3f, 1);
    gb = param("b", c, 0.3f, 0);
    gx = tensor(n, h, h, c, 1.5f);
    gy = ddps_tensor_alloc(be, n, h, h, c);
    gr = tensor(n, h, h, c, 1.0f);
    ddps_tensor dx = ddps_tensor_alloc(be, n, h, h, c);
    size_t mark = ddps_mark(be);
    ddps_tensor m = ddps_new(be, 1, 1, n, groups), r = ddps_new(be, 1, 1, n, groups);
    if (relu) {
        ddps_tr_group_norm_relu_forward(ctx, groups, 1e-5f, gg, gb, &gy, &gx, &m, &r);
        int neg = 0;
        for (size_t i = 0; i < ddps_numel(&gy); i++) neg += ((float *)gy.data)[i] == 0.0f;
        CHECKF(neg > 0 && neg < (int)ddps_numel(&gy), "fused ReLU zeroes %d of %zu", neg, ddps_numel(&gy));
        ddps_tr_group_norm_relu_backward(ctx, groups, gg, gb, &dx, &gr, &gx, &gy, &m, &r);
    } else {
        ddps_tr_group_norm_forward(ctx, groups, 1e-5f, gg, gb, &gy, &gx, &m, &r);
        ddps_tr_group_norm_backward(ctx, groups, gg, gb, &dx, &gr, &gx, &m, &r);
    }
    ddps_release(be, mark);
    fd_check(relu ? "group norm + relu dx" : groups == c ? "instance norm dx" : "group norm dx", gn_loss, gx.data,
             dx.data, ddps_numel(&gx), 2e-3);
    fd_check("group norm dgamma", gn_loss, gg->data, gg->grad, c, 1e-3);
    fd_check("group norm dbeta", gn_loss, gb->data, gb->grad, c, 1e-3);
    ddps_tensor *ts[] = {&dx, &gx, &gy, &gr};
    for (int i = 0; i < 4; i++) ddps_tensor_free(be, ts[i]);
    param_free(gg);
    param_free(gb);
}

static void test_group_norm(void) {
    gn_case(2, 4, 0);
    gn_case(5, 5, 0);
    gn_case(2, 4, 1);
    gn_case(5, 5, 1);
}

/* ---- losses and the residual add ---- */

static ddps_tensor sx, tx, q, pp;
static int64_t labels[4] = {2, 0, 4, 1};
static float l_eps, l_T;
static int l_kl;

static double loss_loss(void) {
    return l_kl ? ddps_tr_kl_forward(ctx, &sx, &tx, l_T, &q, &pp) : ddps_tr_xent_forward(ctx, &sx, labels, l_eps, &q);
}

static void test_losses(void) {
    int n = 4, k = 5;
    sx = tensor(n, 1, 1, k, 2.0f);
    tx = tensor(n, 1, 1, k, 3.0f);
    q = ddps_tensor_alloc(be, n, 1, 1, k);
    pp = ddps_tensor_alloc(be, n, 1, 1, k);
    ddps_tensor ds = ddps_tensor_alloc(be, n, 1, 1, k);
    for (int kl = 0; kl < 2; kl++) {
        l_kl = kl, l_eps = 0.1f, l_T = 4.0f;
        float loss = (float)loss_loss();
        /* direct reference of the loss in double */
        double ref = 0;
        for (int i = 0; i < n; i++) {
            const float *s = (const float *)sx.data + i * k, *t = (const float *)tx.data + i * k;
            double zs = 0, zt = 0;
            for (int j = 0; j < k; j++) zs += exp(s[j] / (kl ? l_T : 1)), zt += exp(t[j] / l_T);
            for (int j = 0; j < k; j++) {
                double lq = s[j] / (kl ? l_T : 1) - log(zs), lp = t[j] / l_T - log(zt);
                ref += kl ? exp(lp) * (lp - lq) : -(j == labels[i] ? 1 - l_eps : 0) * lq - l_eps / k * lq;
            }
        }
        ref /= n;
        CHECKF(fabs(loss - ref) < 1e-5 * fmax(1, fabs(ref)), "%s loss %g vs %g", kl ? "kl" : "xent", loss, ref);
        if (kl)
            ddps_tr_kl_backward(ctx, &ds, &q, &pp, l_T);
        else
            ddps_tr_xent_backward(ctx, &ds, &q, labels, l_eps);
        fd_check(kl ? "kl divergence ds" : "cross-entropy dlogits", loss_loss, sx.data, ds.data, ddps_numel(&sx),
                 1e-3);
    }
    ddps_tensor y = ddps_tensor_alloc(be, n, 1, 1, k);
    ddps_tr_add(ctx, &y, &sx, &tx);
    for (int i = 0; i < n * k; i++)
        CHECK(((float *)y.data)[i] == ((float *)sx.data)[i] + ((float *)tx.data)[i]);
    ddps_tensor *ts[] = {&sx, &tx, &q, &pp, &ds, &y};
    for (int i = 0; i < 6; i++) ddps_tensor_free(be, ts[i]);
}

/* Forward, loss, backward and AdamW compose into learning: ConvNet-3 on 16 noisy 16-px images of two
 * classes (bright left half or bright right half) gets its training loss from ln 2 to under 0.05 in
 * 40 steps, the arena no larger after the first step. */
static void test_learns(void) {
    ddps_err err = {{0}};
    tr_model *m = ddps_tr_model_new("convnet3", 2, 16, 3, &err);
    int n = 16, s = 16;
    ddps_tensor x = ddps_tensor_alloc(be, n, s, s, 3);
    int64_t ylab[16];
    for (int i = 0; i < n; i++) {
        ylab[i] = i % 2;
        for (int p = 0; p < s * s; p++)
            for (int ch = 0; ch < 3; ch++)
                ((float *)x.data)[((size_t)i * s * s + p) * 3 + ch] =
                    ((p % s < s / 2) == (ylab[i] == 0) ? 1.0f : 0.0f) + 0.5f * (float)ddps_rng_normal(&rng);
    }
    tr_optim o = ddps_tr_optim_defaults(TR_ADAMW);
    float first = 0, last = 0;
    size_t peak = 0;
    for (int step = 0; step < 40; step++) {
        size_t mark = ddps_mark(be);
        ddps_tensor logits = ddps_tr_model_forward(ctx, m, &x, 1);
        ddps_tensor pr_ = ddps_new(be, n, 1, 1, 2);
        last = ddps_tr_xent_forward(ctx, &logits, ylab, 0.0f, &pr_);
        ddps_tr_xent_backward(ctx, &pr_, &pr_, ylab, 0.0f);
        ddps_tr_model_backward(ctx, m, &pr_);
        if (step == 0) first = last, peak = be->arena.peak;
        ddps_release(be, mark);
        ddps_tr_optim_step(&o, m->p, m->np, 1e-3f);
    }
    fprintf(stderr, "   loss %.4f -> %.4f\n", first, last);
    CHECK(fabsf(first - logf(2.0f)) < 0.3f);
    CHECKF(last < 0.05f, "final loss %g", last);
    CHECK(be->arena.peak == peak);
    CHECK(!be->failed);
    ddps_tensor_free(be, &x);
    ddps_tr_model_free(m);
}

/* A wrong shape is a sticky error, not a crash, and later ops do nothing. */
static void test_sticky(void) {
    tr_param *w = param("w", 4 * 3 * 9, 0.1f, 0);
    tr_conv l = {3, 4, 3, 1, 1, w, NULL};
    ddps_tensor x = ddps_tensor_alloc(be, 1, 4, 4, 3), y = ddps_tensor_alloc(be, 1, 3, 3, 4);
    ddps_tr_conv_forward(ctx, &l, &y, &x);
    ddps_err err = {{0}};
    CHECK(ddps_backend_error(be, &err) != 0);
    CHECK(strstr(err.msg, "conv forward") != NULL);
    ddps_tensor_free(be, &x);
    ddps_tensor_free(be, &y);
    param_free(w);
}

/* Schedules: warm-up, then constant, linear or cosine decay to min_lr at total. */
static void test_schedules(void) {
    tr_sched s = {TR_SCHED_COSINE, 0.1f, 0.0f, 5, 105};
    CHECK(fabsf(ddps_tr_sched_lr(&s, 0) - 0.02f) < 1e-7f);
    CHECK(fabsf(ddps_tr_sched_lr(&s, 4) - 0.1f) < 1e-7f);
    CHECK(fabsf(ddps_tr_sched_lr(&s, 5) - 0.1f) < 1e-7f);
    CHECK(fabsf(ddps_tr_sched_lr(&s, 55) - 0.05f) < 1e-6f);
    CHECK(fabsf(ddps_tr_sched_lr(&s, 105)) < 1e-7f);
    s.kind = TR_SCHED_LINEAR;
    CHECK(fabsf(ddps_tr_sched_lr(&s, 30) - 0.075f) < 1e-6f);
    s.kind = TR_SCHED_CONSTANT;
    CHECK(ddps_tr_sched_lr(&s, 80) == 0.1f);
    CHECK(ddps_tr_sched_parse("cosine") == TR_SCHED_COSINE && ddps_tr_sched_parse("step") == -1);
}

/* Models: torchvision's parameter counts and names; safetensors out and back in. */
static void test_model_io(void) {
    ddps_err err = {{0}};
    tr_model *m = ddps_tr_model_new("resnet18", 1000, 224, 7, &err), *c3 = ddps_tr_model_new("convnet3", 10, 32, 7, &err);
    size_t n = 0;
    for (int i = 0; i < m->np; i++) n += m->p[i].buffer ? 0 : m->p[i].numel;
    CHECKF(n == 11689512, "resnet18 has %zu parameters", n); /* torchvision's count */
    CHECK(ddps_tr_model_find(m, "layer3.0.downsample.1.running_var") != NULL);
    CHECK(ddps_tr_model_find(c3, "features.9.weight") != NULL && ddps_tr_model_find(c3, "classifier.weight")->shape[1] == 2048);
    CHECK(ddps_tr_model_new("resnet50", 10, 32, 1, &err) == NULL && err.kind == DDPS_KIND_USAGE);
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", t_tmpdir("train_io"));
    ddps_tr_model_find(c3, "features.1.weight")->data[3] = 42;
    CHECK(ddps_tr_model_save(c3, path, &err) == 0);
    tr_model *d = ddps_tr_model_new("convnet3", 10, 32, 8, &err);
    CHECK(ddps_tr_model_load(d, path, &err) == 0);
    for (int i = 0; i < d->np; i++)
        CHECK(memcmp(d->p[i].data, c3->p[i].data, d->p[i].numel * sizeof(float)) == 0);
    CHECK(ddps_tr_model_load(m, path, &err) != 0 && strstr(err.msg, "conv1.weight") != NULL);
    ddps_tr_model_free(m);
    ddps_tr_model_free(c3);
    ddps_tr_model_free(d);
}

int main(void) {
    ddps_err err = {{0}};
    ddps_rng_seed(&rng, 18);
    be = ddps_cpu_backend_new(DDPS_PREC_F32, 0, &err);
    if (!be) {
        fprintf(stderr, "backend: %s\n", err.msg);
        return 1;
    }
    ctx = ddps_tr_ctx_new(be, &err);
    TEST(test_conv);
    TEST(test_batch_norm);
    TEST(test_pool_relu);
    TEST(test_linear);
    TEST(test_conv_winograd);
    TEST(test_group_norm);
    TEST(test_losses);
    CHECK(!be->failed);
    if (be->failed) fprintf(stderr, "backend failed: %s\n", be->error.msg);
    TEST(test_learns);
    TEST(test_schedules);
    TEST(test_model_io);
    TEST(test_sticky);
    ddps_tr_ctx_free(ctx);
    ddps_backend_free(be);
    return t_done();
}
