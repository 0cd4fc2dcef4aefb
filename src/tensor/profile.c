/* Generated wrappers (one per op) live here to keep profiling out of the
 * backends themselves. */
#include "tensor/profile.h"

#include <stdlib.h>
#include <string.h>

#include "util/fs.h"
#include "util/progress.h"

enum { P_LINEAR, P_CONV2D, P_GROUP_NORM, P_LAYER_NORM, P_ATTENTION, P_GEGLU, P_ACTIVATE, P_AXPBY, P_UPSAMPLE_NEAREST, P_CONCAT_C, P_EMBED, P_SQDIFF_ACC, P_RESIZE_BILINEAR_CMEAN, P_AVG_POOL, P_GLOBAL_AVG, P_COUNT };
static const char *op_names[P_COUNT] = {"linear", "conv2d", "group_norm", "layer_norm", "attention", "geglu", "activate", "axpby", "upsample_nearest", "concat_c", "embed", "sqdiff_acc", "resize_bilinear_cmean", "avg_pool", "global_avg"};

typedef struct {
    const ddps_backend_ops *inner;
    ddps_backend_ops wrapped;
    double seconds[P_COUNT + 2];
    double flops[P_COUNT + 2];
    long calls[P_COUNT + 2];
} profile_state;

/* The profiled backend (one at a time: a benchmark tool). */
static profile_state *prof;

static void p_linear(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_weight *w, ddps_act act, int accumulate) {
    int slot = P_LINEAR;
    double f0 = be->flops;
    be->ops->sync(be);
    double t0 = ddps_seconds();
    prof->inner->linear(be, y, x, w, act, accumulate);
    be->ops->sync(be);
    prof->seconds[slot] += ddps_seconds() - t0;
    prof->flops[slot] += be->flops - f0;
    prof->calls[slot]++;
}
static void p_conv2d(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_weight *w, int stride, const int pad[4], int accumulate) {
    int slot = P_CONV2D;
    if (x->n * (long)y->h * y->w >= 512 && be->precision == DDPS_PREC_F32) slot = P_COUNT; /* Winograd-sized */
    if (stride != 1) slot = P_COUNT + 1;
    double f0 = be->flops;
    be->ops->sync(be);
    double t0 = ddps_seconds();
    prof->inner->conv2d(be, y, x, w, stride, pad, accumulate);
    be->ops->sync(be);
    prof->seconds[slot] += ddps_seconds() - t0;
    prof->flops[slot] += be->flops - f0;
    prof->calls[slot]++;
}
static void p_group_norm(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_tensor *shift, const ddps_weight *gamma, const ddps_weight *beta, int groups, float eps, int silu) {
    int slot = P_GROUP_NORM;
    double f0 = be->flops;
    be->ops->sync(be);
    double t0 = ddps_seconds();
    prof->inner->group_norm(be, y, x, shift, gamma, beta, groups, eps, silu);
    be->ops->sync(be);
    prof->seconds[slot] += ddps_seconds() - t0;
    prof->flops[slot] += be->flops - f0;
    prof->calls[slot]++;
}
static void p_layer_norm(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_weight *gamma, const ddps_weight *beta, float eps) {
    int slot = P_LAYER_NORM;
    double f0 = be->flops;
    be->ops->sync(be);
    double t0 = ddps_seconds();
    prof->inner->layer_norm(be, y, x, gamma, beta, eps);
    be->ops->sync(be);
    prof->seconds[slot] += ddps_seconds() - t0;
    prof->flops[slot] += be->flops - f0;
    prof->calls[slot]++;
}
static void p_attention(ddps_backend *be, ddps_tensor *y, const ddps_tensor *q, const ddps_tensor *k, const ddps_tensor *v, int heads, int causal) {
    int slot = P_ATTENTION;
    double f0 = be->flops;
    be->ops->sync(be);
    double t0 = ddps_seconds();
    prof->inner->attention(be, y, q, k, v, heads, causal);
    be->ops->sync(be);
    prof->seconds[slot] += ddps_seconds() - t0;
    prof->flops[slot] += be->flops - f0;
    prof->calls[slot]++;
}
static void p_geglu(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x) {
    int slot = P_GEGLU;
    double f0 = be->flops;
    be->ops->sync(be);
    double t0 = ddps_seconds();
    prof->inner->geglu(be, y, x);
    be->ops->sync(be);
    prof->seconds[slot] += ddps_seconds() - t0;
    prof->flops[slot] += be->flops - f0;
    prof->calls[slot]++;
}
static void p_activate(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, ddps_act act) {
    int slot = P_ACTIVATE;
    double f0 = be->flops;
    be->ops->sync(be);
    double t0 = ddps_seconds();
    prof->inner->activate(be, y, x, act);
    be->ops->sync(be);
    prof->seconds[slot] += ddps_seconds() - t0;
    prof->flops[slot] += be->flops - f0;
    prof->calls[slot]++;
}
static void p_axpby(ddps_backend *be, ddps_tensor *y, float a, const ddps_tensor *x, float b, const ddps_tensor *z) {
    int slot = P_AXPBY;
    double f0 = be->flops;
    be->ops->sync(be);
    double t0 = ddps_seconds();
    prof->inner->axpby(be, y, a, x, b, z);
    be->ops->sync(be);
    prof->seconds[slot] += ddps_seconds() - t0;
    prof->flops[slot] += be->flops - f0;
    prof->calls[slot]++;
}
static void p_upsample_nearest(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x) {
    int slot = P_UPSAMPLE_NEAREST;
    double f0 = be->flops;
    be->ops->sync(be);
    double t0 = ddps_seconds();
    prof->inner->upsample_nearest(be, y, x);
    be->ops->sync(be);
    prof->seconds[slot] += ddps_seconds() - t0;
    prof->flops[slot] += be->flops - f0;
    prof->calls[slot]++;
}
static void p_concat_c(ddps_backend *be, ddps_tensor *y, const ddps_tensor *a, const ddps_tensor *b) {
    int slot = P_CONCAT_C;
    double f0 = be->flops;
    be->ops->sync(be);
    double t0 = ddps_seconds();
    prof->inner->concat_c(be, y, a, b);
    be->ops->sync(be);
    prof->seconds[slot] += ddps_seconds() - t0;
    prof->flops[slot] += be->flops - f0;
    prof->calls[slot]++;
}
static void p_embed(ddps_backend *be, ddps_tensor *y, const int32_t *ids, const ddps_weight *tok, const ddps_weight *pos) {
    int slot = P_EMBED;
    double f0 = be->flops;
    be->ops->sync(be);
    double t0 = ddps_seconds();
    prof->inner->embed(be, y, ids, tok, pos);
    be->ops->sync(be);
    prof->seconds[slot] += ddps_seconds() - t0;
    prof->flops[slot] += be->flops - f0;
    prof->calls[slot]++;
}
static void p_sqdiff_acc(ddps_backend *be, ddps_tensor *d, const ddps_tensor *e, const ddps_tensor *a, const ddps_tensor *b, float w) {
    int slot = P_SQDIFF_ACC;
    double f0 = be->flops;
    be->ops->sync(be);
    double t0 = ddps_seconds();
    prof->inner->sqdiff_acc(be, d, e, a, b, w);
    be->ops->sync(be);
    prof->seconds[slot] += ddps_seconds() - t0;
    prof->flops[slot] += be->flops - f0;
    prof->calls[slot]++;
}
static void p_resize_bilinear_cmean(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x) {
    int slot = P_RESIZE_BILINEAR_CMEAN;
    double f0 = be->flops;
    be->ops->sync(be);
    double t0 = ddps_seconds();
    prof->inner->resize_bilinear_cmean(be, y, x);
    be->ops->sync(be);
    prof->seconds[slot] += ddps_seconds() - t0;
    prof->flops[slot] += be->flops - f0;
    prof->calls[slot]++;
}
static void p_avg_pool(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, int k, int s) {
    int slot = P_AVG_POOL;
    double f0 = be->flops;
    be->ops->sync(be);
    double t0 = ddps_seconds();
    prof->inner->avg_pool(be, y, x, k, s);
    be->ops->sync(be);
    prof->seconds[slot] += ddps_seconds() - t0;
    prof->flops[slot] += be->flops - f0;
    prof->calls[slot]++;
}
static void p_global_avg(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x) {
    int slot = P_GLOBAL_AVG;
    double f0 = be->flops;
    be->ops->sync(be);
    double t0 = ddps_seconds();
    prof->inner->global_avg(be, y, x);
    be->ops->sync(be);
    prof->seconds[slot] += ddps_seconds() - t0;
    prof->flops[slot] += be->flops - f0;
    prof->calls[slot]++;
}
void ddps_profile_enable(ddps_backend *be) {
    if (prof) return;
    prof = ddps_calloc(1, sizeof *prof);
    prof->inner = be->ops;
    prof->wrapped = *be->ops;
    prof->wrapped.linear = p_linear;
    prof->wrapped.conv2d = p_conv2d;
    prof->wrapped.group_norm = p_group_norm;
    prof->wrapped.layer_norm = p_layer_norm;
    prof->wrapped.attention = p_attention;
    prof->wrapped.geglu = p_geglu;
    prof->wrapped.activate = p_activate;
    prof->wrapped.axpby = p_axpby;
    prof->wrapped.upsample_nearest = p_upsample_nearest;
    prof->wrapped.concat_c = p_concat_c;
    prof->wrapped.embed = p_embed;
    prof->wrapped.sqdiff_acc = p_sqdiff_acc;
    prof->wrapped.resize_bilinear_cmean = p_resize_bilinear_cmean;
    prof->wrapped.avg_pool = p_avg_pool;
    prof->wrapped.global_avg = p_global_avg;
    be->ops = &prof->wrapped;
}

void ddps_profile_reset(ddps_backend *be) {
    (void)be;
    if (!prof) return;
    memset(prof->seconds, 0, sizeof prof->seconds);
    memset(prof->flops, 0, sizeof prof->flops);
    memset(prof->calls, 0, sizeof prof->calls);
}

void ddps_profile_report(ddps_backend *be, FILE *f) {
    (void)be;
    if (!prof) return;
    double total = 0;
    for (int i = 0; i < P_COUNT + 2; i++) total += prof->seconds[i];
    fprintf(f, "  %-24s %8s %10s %6s %10s\n", "op", "calls", "ms", "share", "GFLOP/s");
    for (int i = 0; i < P_COUNT + 2; i++) {
        if (!prof->calls[i]) continue;
        const char *n = i < P_COUNT ? op_names[i] : i == P_COUNT ? "conv2d (>=512 positions)" : "conv2d (strided)";
        fprintf(f, "  %-24s %8ld %10.1f %5.1f%% ", n, prof->calls[i], 1e3 * prof->seconds[i],
                100 * prof->seconds[i] / (total > 0 ? total : 1));
        if (prof->flops[i] > 0)
            fprintf(f, "%10.1f\n", prof->flops[i] / prof->seconds[i] / 1e9);
        else
            fprintf(f, "%10s\n", "-");
    }
}

void ddps_profile_disable(ddps_backend *be) {
    if (!prof) return;
    be->ops = prof->inner;
    free(prof);
    prof = NULL;
}
