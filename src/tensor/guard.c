/* The backend guard: the op table model code calls (be->ops). Each guarded
 * op does nothing once the backend has failed; otherwise it names itself
 * (be->op, the prefix of failure messages), takes part in fault injection,
 * runs the backend's own op (be->inner) and lets the backend report a
 * failure it noticed on the side (poll). Memory and weight management are
 * not guarded: freeing must work after a failure, and the constructors
 * report through their ddps_err. See tensor/backend.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/backend.h"

int ddps_backend_fail(ddps_backend *be, int kind, const char *fmt, ...) {
    if (be->failed) return -1;
    char msg[sizeof be->error.msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (be->op)
        ddps_fail_kind(&be->error, kind, "%s: %s", be->op, msg);
    else
        ddps_fail_kind(&be->error, kind, "%s", msg);
    be->failed = 1;
    return -1;
}

int ddps_backend_error(const ddps_backend *be, ddps_err *err) {
    if (!be || !be->failed) return 0;
    if (err) *err = be->error;
    return -1;
}

void ddps_backend_fail_after(ddps_backend *be, const char *op, long n) {
    snprintf(be->fault_op, sizeof be->fault_op, "%s", op ? op : "*");
    be->fault_at = n > 0 ? n : 0;
    be->fault_seen = 0;
}

/* Counts a call of op for fault injection; 1 when this call must fail. */
static int fault_due(ddps_backend *be, const char *op) {
    if (!be->fault_at) return 0;
    if (strcmp(be->fault_op, "*") != 0 && strcmp(be->fault_op, op) != 0) return 0;
    return ++be->fault_seen == be->fault_at;
}

/* Before an op: 0 when it must not run (failed backend, injected fault). */
static int enter(ddps_backend *be, const char *op) {
    if (be->failed) return 0;
    if (strcmp(op, "alloc") != 0 && fault_due(be, op)) {
        be->op = op;
        ddps_backend_fail(be, DDPS_KIND_FAILURE, "injected failure (fault injection %s:%ld)", be->fault_op,
                          be->fault_at);
        be->op = NULL;
        return 0;
    }
    be->op = op;
    return 1;
}

/* After an op: lets the backend report what it noticed on the side. */
static void leave(ddps_backend *be) {
    if (be->inner->poll) be->inner->poll(be);
    be->op = NULL;
}

int ddps_backend_alloc_fault(ddps_backend *be) { return !be->failed && fault_due(be, "alloc"); }

static void g_write(ddps_backend *be, ddps_tensor *t, const float *host) {
    if (!enter(be, "write")) return;
    be->inner->write(be, t, host);
    leave(be);
}

static void g_read(ddps_backend *be, float *host, const ddps_tensor *t) {
    if (enter(be, "read")) {
        be->inner->read(be, host, t);
        leave(be);
    }
    /* a failed backend's results are zeros, never uninitialised memory */
    if (be->failed) memset(host, 0, ddps_numel(t) * sizeof(float));
}

static void g_sync(ddps_backend *be) {
    if (!enter(be, "sync")) return;
    be->inner->sync(be);
    leave(be);
}

static void g_linear(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_weight *w, ddps_act act,
                     int accumulate) {
    if (!enter(be, "linear")) return;
    be->inner->linear(be, y, x, w, act, accumulate);
    leave(be);
}

static void g_conv2d(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_weight *w, int stride,
                     const int pad[4], int accumulate) {
    if (!enter(be, "conv2d")) return;
    be->inner->conv2d(be, y, x, w, stride, pad, accumulate);
    leave(be);
}

static void g_group_norm(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_tensor *shift,
                         const ddps_weight *gamma, const ddps_weight *beta, int groups, float eps, int silu) {
    if (!enter(be, "group_norm")) return;
    be->inner->group_norm(be, y, x, shift, gamma, beta, groups, eps, silu);
    leave(be);
}

static void g_layer_norm(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_weight *gamma,
                         const ddps_weight *beta, float eps) {
    if (!enter(be, "layer_norm")) return;
    be->inner->layer_norm(be, y, x, gamma, beta, eps);
    leave(be);
}

static void g_attention(ddps_backend *be, ddps_tensor *y, const ddps_tensor *q, const ddps_tensor *k,
                        const ddps_tensor *v, int heads, int causal) {
    if (!enter(be, "attention")) return;
    be->inner->attention(be, y, q, k, v, heads, causal);
    leave(be);
}

static void g_geglu(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x) {
    if (!enter(be, "geglu")) return;
    be->inner->geglu(be, y, x);
    leave(be);
}

static void g_activate(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, ddps_act act) {
    if (!enter(be, "activate")) return;
    be->inner->activate(be, y, x, act);
    leave(be);
}

static void g_axpby(ddps_backend *be, ddps_tensor *y, float a, const ddps_tensor *x, float b, const ddps_tensor *z) {
    if (!enter(be, "axpby")) return;
    be->inner->axpby(be, y, a, x, b, z);
    leave(be);
}

static void g_upsample_nearest(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x) {
    if (!enter(be, "upsample_nearest")) return;
    be->inner->upsample_nearest(be, y, x);
    leave(be);
}

static void g_concat_c(ddps_backend *be, ddps_tensor *y, const ddps_tensor *a, const ddps_tensor *b) {
    if (!enter(be, "concat_c")) return;
    be->inner->concat_c(be, y, a, b);
    leave(be);
}

static void g_embed(ddps_backend *be, ddps_tensor *y, const int32_t *ids, const ddps_weight *tok,
                    const ddps_weight *pos) {
    if (!enter(be, "embed")) return;
    be->inner->embed(be, y, ids, tok, pos);
    leave(be);
}

static void g_map_fill(ddps_backend *be, ddps_tensor *t, float v) {
    if (!enter(be, "map_fill")) return;
    be->inner->map_fill(be, t, v);
    leave(be);
}

static void g_map_write(ddps_backend *be, ddps_tensor *t, const float *host) {
    if (!enter(be, "map_write")) return;
    be->inner->map_write(be, t, host);
    leave(be);
}

static void g_map_read(ddps_backend *be, float *host, const ddps_tensor *t) {
    if (enter(be, "map_read")) {
        be->inner->map_read(be, host, t);
        leave(be);
    }
    if (be->failed) memset(host, 0, ddps_numel(t) * sizeof(float));
}

static void g_sqdiff_acc(ddps_backend *be, ddps_tensor *d, const ddps_tensor *e, const ddps_tensor *a,
                         const ddps_tensor *b, float w) {
    if (!enter(be, "sqdiff_acc")) return;
    be->inner->sqdiff_acc(be, d, e, a, b, w);
    leave(be);
}

static void g_resize_bilinear_cmean(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x) {
    if (!enter(be, "resize_bilinear_cmean")) return;
    be->inner->resize_bilinear_cmean(be, y, x);
    leave(be);
}

static void g_avg_pool(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, int k, int s) {
    if (!enter(be, "avg_pool")) return;
    be->inner->avg_pool(be, y, x, k, s);
    leave(be);
}

static void g_global_avg(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x) {
    if (!enter(be, "global_avg")) return;
    be->inner->global_avg(be, y, x);
    leave(be);
}

/* The three weight constructors are not guarded but may notice a side
 * failure (poll) that their own ddps_err must carry. */
static ddps_weight *after_make(ddps_backend *be, ddps_weight *w, ddps_err *err) {
    if (be->inner->poll) be->inner->poll(be);
    if (w && be->failed) {
        be->inner->free_weight(be, w);
        ddps_backend_error(be, err);
        return NULL;
    }
    return w;
}

static ddps_weight *g_make_linear(ddps_backend *be, const float *w, const float *b, int out, int in, ddps_err *err) {
    return after_make(be, be->inner->make_linear(be, w, b, out, in, err), err);
}

static ddps_weight *g_make_conv(ddps_backend *be, const float *w, const float *b, int out, int in, int kh, int kw,
                                ddps_err *err) {
    return after_make(be, be->inner->make_conv(be, w, b, out, in, kh, kw, err), err);
}

static ddps_weight *g_make_table(ddps_backend *be, const float *v, int rows, int cols, ddps_err *err) {
    return after_make(be, be->inner->make_table(be, v, rows, cols, err), err);
}

static const ddps_backend_ops guard_ops = {
    .write = g_write,
    .read = g_read,
    .sync = g_sync,
    .make_linear = g_make_linear,
    .make_conv = g_make_conv,
    .make_table = g_make_table,
    .linear = g_linear,
    .conv2d = g_conv2d,
    .group_norm = g_group_norm,
    .layer_norm = g_layer_norm,
    .attention = g_attention,
    .geglu = g_geglu,
    .activate = g_activate,
    .axpby = g_axpby,
    .upsample_nearest = g_upsample_nearest,
    .concat_c = g_concat_c,
    .embed = g_embed,
    .map_fill = g_map_fill,
    .map_write = g_map_write,
    .map_read = g_map_read,
    .sqdiff_acc = g_sqdiff_acc,
    .resize_bilinear_cmean = g_resize_bilinear_cmean,
    .avg_pool = g_avg_pool,
    .global_avg = g_global_avg,
};

/* Reads DDPS_FAULT_INJECT=op:n (a test hook) into the backend. */
static void fault_from_env(ddps_backend *be) {
    const char *s = getenv("DDPS_FAULT_INJECT");
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || colon == s || (size_t)(colon - s) >= sizeof be->fault_op) return;
    char op[sizeof be->fault_op];
    memcpy(op, s, (size_t)(colon - s));
    op[colon - s] = 0;
    char *end;
    long n = strtol(colon + 1, &end, 10);
    if (*end || n <= 0) return;
    ddps_backend_fail_after(be, op, n);
}

void ddps_backend_guard(ddps_backend *be) {
    if (be->ops == &be->guard) return;
    be->inner = be->ops;
    be->guard = guard_ops;
    /* unguarded entries go straight to the backend */
    be->guard.name = be->inner->name;
    be->guard.destroy = be->inner->destroy;
    be->guard.alloc = be->inner->alloc;
    be->guard.reserve = be->inner->reserve;
    be->guard.unreserve = be->inner->unreserve;
    be->guard.free = be->inner->free;
    be->guard.free_weight = be->inner->free_weight;
    be->guard.poll = NULL; /* the guard polls after each op itself */
    be->ops = &be->guard;
    fault_from_env(be);
}
