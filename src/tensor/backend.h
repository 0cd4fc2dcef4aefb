/* The tensor/op layer: what model code may do with numbers.
 *
 * Model code (CLIP text encoder, VAE encoder, UNet, Stage I) is written once
 * against this interface; a backend (CPU with oneDNN, CUDA) implements it.
 * Model code never touches tensor memory directly: activations live in
 * backend memory (host RAM or GPU), weights are opaque handles laid out once
 * at load in the backend's preferred format.
 *
 * Layout: activations are NHWC. Token sequences are [n, 1, L, c].
 * Activation element type is the backend's (f32 on the CPU).
 *
 * Errors are sticky: an op that fails (out of memory, a oneDNN, CUDA, cuDNN
 * or cuBLAS error, an op misused by our own code) records the first failure
 * on the backend (ddps_backend_fail) and returns; from then on every op is a
 * cheap no-op (read and map_read fill the host buffer with zeros) and
 * allocations may return tensors with data == NULL. Model code runs a whole
 * forward without checking each op and asks ddps_backend_error at the end;
 * nothing aborts the process. The backend stays failed until it is freed.
 */
#ifndef DDPS_TENSOR_BACKEND_H
#define DDPS_TENSOR_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef struct {
    void *data; /* backend memory */
    int n, h, w, c;
} ddps_tensor;

static inline size_t ddps_numel(const ddps_tensor *t) {
    return (size_t)t->n * (size_t)t->h * (size_t)t->w * (size_t)t->c;
}

/* Numeric precision of the heavy ops (convolutions and matrix products).
 * F32 is the reference. BF16 rounds the inputs of matrix products to
 * bfloat16 with f32 accumulation (about twice the throughput on CPUs with
 * AVX512-BF16, tensor cores on GPUs). F16 is GPU only. */
typedef enum { DDPS_PREC_F32 = 0, DDPS_PREC_BF16 = 1, DDPS_PREC_F16 = 2 } ddps_precision;

/* Opaque weight in the backend's layout. */
typedef struct ddps_weight ddps_weight;

typedef enum { DDPS_ACT_NONE = 0, DDPS_ACT_SILU, DDPS_ACT_GELU, DDPS_ACT_QUICK_GELU } ddps_act;

typedef struct ddps_backend ddps_backend;

typedef struct {
    const char *name;
    void (*destroy)(ddps_backend *be);

    /* Memory. alloc returns NULL when out of memory. */
    void *(*alloc)(ddps_backend *be, size_t bytes);
    /* Optional: reserves address space for the arena that is only backed by
     * memory when touched (*bytes gets the reserved size), so the arena can
     * grow in place. NULL: the arena grows by extra blocks instead. */
    void *(*reserve)(ddps_backend *be, size_t *bytes);
    void (*unreserve)(ddps_backend *be, void *p, size_t bytes);
    void (*free)(ddps_backend *be, void *p);
    /* Host f32 <-> tensor (NHWC order on both sides). */
    void (*write)(ddps_backend *be, ddps_tensor *t, const float *host);
    void (*read)(ddps_backend *be, float *host, const ddps_tensor *t);
    void (*sync)(ddps_backend *be);

    /* Weights from host f32 in PyTorch layout. Return NULL and fill err on failure. */
    /* w [out, in] (+ b [out]) : y = x w^T + b */
    ddps_weight *(*make_linear)(ddps_backend *be, const float *w, const float *b, int out, int in, ddps_err *err);
    /* w [out, in, kh, kw] (+ b [out]) */
    ddps_weight *(*make_conv)(ddps_backend *be, const float *w, const float *b, int out, int in, int kh, int kw,
                              ddps_err *err);
    /* A plain f32 vector or table (norm scale/shift, embeddings): rows x cols. */
    ddps_weight *(*make_table)(ddps_backend *be, const float *v, int rows, int cols, ddps_err *err);
    void (*free_weight)(ddps_backend *be, ddps_weight *w);

    /* ---- ops; shapes in the comments, all tensors NHWC ---- */

    /* x [n,h,w,in], W [out,in], b [out] -> y [n,h,w,out] (+)= act(x W^T + b).
     * accumulate: y += result (act must be NONE). */
    void (*linear)(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_weight *w, ddps_act act,
                   int accumulate);
    /* x [n,h,w,in], W [out,in,kh,kw], b [out] -> y [n,ho,wo,out] (+)= conv(x) + b, with
     * ho = (h + top + bottom - kh)/stride + 1 (wo likewise). pad = {top, left, bottom, right}. */
    void (*conv2d)(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_weight *w, int stride,
                   const int pad[4], int accumulate);
    /* x, y [n,h,w,c]; shift [n,1,1,c] or NULL; gamma, beta [c].
     * y = GroupNorm(x + shift) * gamma + beta over groups of c/groups channels,
     * then SiLU if silu. shift carries a ResNet's time embedding. */
    void (*group_norm)(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_tensor *shift,
                       const ddps_weight *gamma, const ddps_weight *beta, int groups, float eps, int silu);
    /* x, y [n,h,w,c] (tokens [n,1,L,c]); gamma, beta [c]. y = LayerNorm over c. */
    void (*layer_norm)(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_weight *gamma,
                       const ddps_weight *beta, float eps);
    /* Multi-head attention. q [n,1,Lq,H*d], k and v [n,1,Lk,H*d] -> y [n,1,Lq,H*d].
     * Softmax(q k^T / sqrt(d)) v per head; causal masks keys after the query. */
    void (*attention)(ddps_backend *be, ddps_tensor *y, const ddps_tensor *q, const ddps_tensor *k,
                      const ddps_tensor *v, int heads, int causal);
    /* x [n,h,w,2F] -> y [n,h,w,F] = x[..., :F] * gelu(x[..., F:]) (exact erf GELU). */
    void (*geglu)(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x);
    /* x, y: any shape, same size (may alias). Elementwise: y = act(x). */
    void (*activate)(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, ddps_act act);
    /* y, x, z: any shape, one size (any may alias). y = a*x + b*z. */
    void (*axpby)(ddps_backend *be, ddps_tensor *y, float a, const ddps_tensor *x, float b, const ddps_tensor *z);
    /* x [n,hx,wx,c] -> y [n,hy,wy,c]: nearest-neighbour resize to y's h, w
     * (PyTorch 'nearest': src = floor(dst * in / out)). */
    void (*upsample_nearest)(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x);
    /* a [n,h,w,ca], b [n,h,w,cb] -> y [n,h,w,ca+cb]: y[..., :ca] = a, y[..., ca:] = b. */
    void (*concat_c)(ddps_backend *be, ddps_tensor *y, const ddps_tensor *a, const ddps_tensor *b);
    /* ids [n,L] (host memory, already range-checked), tok [vocab,C], pos [>=L,C] -> y [n,1,L,C]:
     * y[b,i] = tok[ids[b*L + i]] + pos[i]. */
    void (*embed)(ddps_backend *be, ddps_tensor *y, const int32_t *ids, const ddps_weight *tok,
                  const ddps_weight *pos);
    /* Stage I maps. The accumulated difference, the score map and the patch
     * scores are sums of small differences of nearly equal squares: they are
     * kept in f32 whatever the precision ("maps", made by ddps_new_map).
     * Only the ops below that say so take maps; all sizes must match. */
    /* t (map): any shape. t = v; map_write/map_read: host f32 <-> map (NHWC order). */
    void (*map_fill)(ddps_backend *be, ddps_tensor *t, float v);
    void (*map_write)(ddps_backend *be, ddps_tensor *t, const float *host);
    void (*map_read)(ddps_backend *be, float *host, const ddps_tensor *t);
    /* Stage I: map d[n,h,w,c] += w * ((e - a)^2 - (e - b)^2), with e the true noise, a the
     * null-prompt and b the label-prompt predictions (activations). */
    void (*sqdiff_acc)(ddps_backend *be, ddps_tensor *d, const ddps_tensor *e, const ddps_tensor *a,
                       const ddps_tensor *b, float w);
    /* Maps: x [n,hx,wx,c] -> y [n,hy,wy,1]: bilinear resize (align_corners = false, no
     * antialias) of x to y's h, w, then mean over channels. */
    void (*resize_bilinear_cmean)(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x);
    /* Maps: x [n,h,w,c] -> y [n,(h-k)/s+1,(w-k)/s+1,c] = average pooling of x with a k x k
     * window and stride s (no padding). */
    void (*avg_pool)(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, int k, int s);
    /* x [n,h,w,c] -> y [n,1,1,c] = mean over h, w. */
    void (*global_avg)(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x);

    /* Optional: records on the backend (ddps_backend_fail) a failure the
     * backend noticed where it had no backend at hand (a CUDA kernel launch).
     * Called after every op. */
    void (*poll)(ddps_backend *be);
} ddps_backend_ops;

/* Bump allocator over backend memory with marks: layers allocate their
 * output first, then temporaries, and release back to the mark, so
 * steady-state calls allocate nothing. On the CPU the arena is one reserved
 * address range that grows in place. Elsewhere, requests beyond the current
 * block get blocks of their own (freed when released past them) until the
 * arena is next emptied, when one block of the observed peak replaces it. */
typedef struct {
    char *base;
    size_t size, used, peak;
    int reserved; /* base is a reservation from ops->reserve */
    void **extra;
    size_t *extra_at; /* arena offset of each extra block */
    int n_extra, cap_extra;
} ddps_arena;

struct ddps_backend {
    /* The table model code calls: the guard (ddps_backend_guard), which
     * skips ops after a failure and forwards the others to inner. */
    const ddps_backend_ops *ops;
    ddps_precision precision;
    size_t act_size;  /* bytes per activation element */
    size_t align;     /* arena alignment */
    double flops;     /* running count of multiply-adds x 2 (convolutions, products, attention) */
    ddps_arena arena;
    void *impl; /* backend state */

    /* Sticky error (see the top of this file). */
    int failed;
    ddps_err error;
    const char *op;                /* op running under the guard (prefixes messages), or NULL */
    const ddps_backend_ops *inner; /* the backend's own table */
    ddps_backend_ops guard;
    /* Fault injection, a test hook (ddps_backend_fail_after). */
    char fault_op[32];
    long fault_at, fault_seen;
};

/* Backends. */
ddps_backend *ddps_cpu_backend_new(ddps_precision precision, int threads, ddps_err *err);
#ifdef DDPS_HAVE_CUDA
ddps_backend *ddps_cuda_backend_new(ddps_precision precision, int device, ddps_err *err);
#endif
/* "cpu" or "cuda" (when built with CUDA). */
ddps_backend *ddps_backend_new(const char *device, ddps_precision precision, int threads, ddps_err *err);
void ddps_backend_free(ddps_backend *be);
int ddps_precision_parse(const char *s, ddps_precision *p);
const char *ddps_precision_name(ddps_precision p);

/* Installs the guard on a new backend (each backend's constructor calls it
 * last; calling it again does nothing): be->ops becomes a table that does
 * nothing after a failure and otherwise runs the backend's op. It also reads
 * the test hook DDPS_FAULT_INJECT=op:n (see ddps_backend_fail_after). */
void ddps_backend_guard(ddps_backend *be);
/* Records a failure on the backend: the first one wins, later ones are
 * dropped. kind is a DDPS_KIND_* (resource for out of memory and device
 * errors, failure for library and internal errors); the message is one line,
 * prefixed with the running op's name ("conv2d: ..."). Returns -1. */
int ddps_backend_fail(ddps_backend *be, int kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* 0 when no op has failed on the backend (or be is NULL); else -1 with the
 * first failure's message and kind copied into err (if not NULL). */
int ddps_backend_error(const ddps_backend *be, ddps_err *err);
/* Test hook: from now on, the n-th call (1-based) of op `op` fails as if the
 * backend had (an op of the table, "alloc" for the n-th tensor taken from
 * the arena, which fails as out of memory, or "*" for any op). n = 0 turns it
 * off. DDPS_FAULT_INJECT=op:n in the environment sets it on every new
 * backend; it exists for tests of the error paths. */
void ddps_backend_fail_after(ddps_backend *be, const char *op, long n);
/* Internal to the arena: counts an arena allocation for fault injection;
 * 1 when this one must fail. */
int ddps_backend_alloc_fault(ddps_backend *be);

/* Items [i, i+count) of a tensor's batch (a view, no copy). */
static inline ddps_tensor ddps_slice(const ddps_backend *be, const ddps_tensor *t, int i, int count) {
    size_t per = (size_t)t->h * (size_t)t->w * (size_t)t->c * be->act_size;
    ddps_tensor s = {(char *)t->data + (size_t)i * per, count, t->h, t->w, t->c};
    return s;
}

/* Arena use: */
ddps_tensor ddps_new(ddps_backend *be, int n, int h, int w, int c);
/* An f32 map (see map_fill) from the arena, whatever the activation type. */
ddps_tensor ddps_new_map(ddps_backend *be, int n, int h, int w, int c);
/* Long-lived tensors outside the arena (returns data == NULL when out of memory). */
ddps_tensor ddps_tensor_alloc(ddps_backend *be, int n, int h, int w, int c);
void ddps_tensor_free(ddps_backend *be, ddps_tensor *t);
size_t ddps_mark(ddps_backend *be);
/* Returns the arena's memory to the backend (the arena must be empty). */
void ddps_backend_free_arena(ddps_backend *be);
void ddps_release(ddps_backend *be, size_t mark);

#endif
