/* CUDA backend: cuBLASLt for matrix products, cuDNN for convolutions, our
 * kernels (cuda_kernels.cu, cuda_attention.cu) for the rest.
 *
 * Precision. DDPS_PREC_F32 keeps activations and weights in f32 and computes
 * in plain f32 (no TF32: cuBLASLt CUBLAS_COMPUTE_32F, cuDNN FMA math), so
 * results track the CPU backend to rounding; DDPS_CUDA_TF32=1 allows TF32
 * tensor cores for f32 products and convolutions (about 1e-3 relative).
 * DDPS_PREC_F16 / DDPS_PREC_BF16 store activations and weights in that
 * 16-bit type (act_size 2) and run products and convolutions on tensor cores
 * with f32 accumulation; norm tables, embeddings and biases stay f32, and
 * every kernel computes in f32.
 *
 * Everything runs in order on one stream; `sync` waits for it. Host data is
 * converted on the device: `write` copies f32 into a staging buffer and a
 * kernel converts it, `read` the reverse. Small writes (up to 256 KB: the
 * UNet's timestep embedding) go through page-locked slots and do not wait
 * for the stream; larger ones wait until the host data has been read.
 * Activation memory comes from a stream-ordered pool (see cu_alloc), so the
 * arena's blocks are recycled without device synchronisations.
 *
 * Plans. A matrix product's cuBLASLt descriptors and algorithm (from the
 * heuristic) and a convolution's cuDNN descriptors and algorithm (timed once
 * by cudnnFindConvolutionForwardAlgorithm) depend only on the shape, so they
 * are cached per shape in the backend and shared by every layer of that
 * shape; each weight remembers the plan it used last, so a steady-state
 * call does no lookup at all. When a library has nothing for a shape, a
 * plain kernel of ours takes over (ddps_cuk_gemm_direct, ddps_cuk_conv_direct), and
 * DDPS_CUDA_DIRECT=1 forces those for checking.
 *
 * Convolution details: weights are stored KRSC ([out][kh][kw][in], cuDNN's
 * NHWC filter layout). cuDNN pads symmetrically only, so asymmetric padding
 * (the VAE's (0,1,0,1) downsamplers) copies the input into a zero-padded
 * buffer first. Bias is added by a small kernel after the convolution
 * (cuDNN's fused bias path only accepts one algorithm).
 *
 * Failures. Any CUDA, cuBLAS or cuDNN error inside an op (and an op misused
 * by our own code) is recorded as the backend's pending failure (ddps_cu_fail,
 * one line naming the call; the backend whose op runs on this thread, so
 * two backends never get each other's); after the op the guard asks cu_poll,
 * which makes it the backend's sticky error (tensor/backend.h): the ops after it
 * are skipped and the call that started the work returns it. An op returns
 * at once where going on would use what failed to be made (scratch memory,
 * a table). ddps_cuda_backend_new and the weight constructors report
 * through their ddps_err. Kernels are asynchronous, so a fault inside one
 * is only seen by a later checked call; DDPS_CUDA_DEBUG=1 synchronises and
 * checks after every op and names the op (slow; for finding faults). Falling back to one of our
 * plain kernels because a library has no algorithm for a shape prints one
 * warning per shape (not when DDPS_CUDA_DIRECT=1 asked for them).
 *
 * Sizes. cuDNN's legacy API counts elements in 32 bits: a convolution whose
 * input or output has 2^31 elements or more (the VAE at 512 px from 64
 * images) runs as several calls on parts of the batch; a single image that
 * large is refused with an error.
 *
 * Memory. The pool is tried once when the backend is made (a block taken and
 * given back); if that fails, or DDPS_CUDA_NO_POOL=1, activations come from
 * cudaMalloc / cudaFree, and likewise from the first time the pool fails for
 * another reason than memory.
 *
 * Stage I maps (map_fill, map_write, map_read, the accumulator of
 * sqdiff_acc, resize_bilinear_cmean, avg_pool) are f32 in every precision.
 */
#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_internal.h"
#include "tensor/backend.h"
#include "util/fs.h"

#define LT_WORKSPACE ((size_t)32 << 20)     /* cuBLASLt: NVIDIA's recommendation for Hopper */
#define DNN_WORKSPACE_MAX ((size_t)1 << 30) /* cuDNN algorithms needing more are skipped */
#define PIN_SLOTS 8                         /* page-locked slots for small host writes */
#define PIN_SLOT_BYTES ((size_t)256 << 10)
#define CONV_PERF_MAX 64                    /* cuDNN Find results kept (cuDNN 9 has 8 algorithms x 2-3 math types) */
#define DNN_MAX_ELEMS ((size_t)INT32_MAX)   /* cuDNN's legacy API: tensors below 2^31 elements */

enum { W_LINEAR = 1, W_CONV = 2, W_TABLE = 3 };

/* ---------- failures ---------- */

int ddps_cu_debug = 0;

/* A failure not yet handed to its backend (cu_poll). Each backend has its
 * own (cu_state.pending): a failure is recorded on the backend whose op (or
 * unguarded call: free, free_weight) is running on this thread, cu_cur,
 * which every entry point sets (cu_of). So a failure of one backend never
 * becomes another's, whichever thread drives them. Outside any backend
 * (none made yet on this thread) it waits in cu_orphan and goes to the next
 * backend this thread polls. */
typedef struct {
    int set, kind;
    char msg[1024];
} cu_failure;

typedef struct cu_state cu_state;
static _Thread_local cu_state *cu_cur;
static _Thread_local cu_failure cu_orphan;
static cu_failure *pending_of(cu_state *cs);
static int debug_of(cu_state *cs);

static cu_failure *cu_pending(void) { return cu_cur ? pending_of(cu_cur) : &cu_orphan; }

void ddps_cu_fail(int kind, const char *what, const char *msg, const char *file, int line) {
    cu_failure *f = cu_pending();
    if (f->set) return;
    snprintf(f->msg, sizeof f->msg, "CUDA failure: %s: %s (%s:%d)%s", what, msg, file, line,
             (cu_cur ? debug_of(cu_cur) : ddps_cu_debug)
                 ? ""
                 : "; an earlier kernel may have caused it: DDPS_CUDA_DEBUG=1 names the op");
    f->kind = kind;
    f->set = 1;
}

void ddps_cu_internal(const char *fmt, ...) {
    cu_failure *f = cu_pending();
    if (f->set) return;
    char m[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    snprintf(f->msg, sizeof f->msg, "internal error: %s", m);
    f->kind = DDPS_KIND_FAILURE;
    f->set = 1;
}

/* ops->poll: be's pending failure (or one recorded outside any backend on
 * this thread) becomes be's sticky error. */
static void cu_poll(ddps_backend *be) {
    cu_failure *f = pending_of((cu_state *)be->impl);
    if (!f->set && cu_orphan.set) f = &cu_orphan;
    if (!f->set) return;
    ddps_backend_fail(be, f->kind, "%s", f->msg);
    f->set = 0;
}

/* cuBLAS and cuDNN failures: library errors, or resources when they ran out of memory. */
#define LT_OK(call)                                                                                                    \
    do {                                                                                                               \
        cublasStatus_t st_ = (call);                                                                                   \
        if (st_ != CUBLAS_STATUS_SUCCESS)                                                                              \
            ddps_cu_fail(st_ == CUBLAS_STATUS_ALLOC_FAILED ? DDPS_KIND_RESOURCE : DDPS_KIND_FAILURE, #call,                 \
                    cublasGetStatusString(st_), __FILE__, __LINE__);                                                   \
    } while (0)

#define DNN_OK(call)                                                                                                   \
    do {                                                                                                               \
        cudnnStatus_t st_ = (call);                                                                                    \
        if (st_ != CUDNN_STATUS_SUCCESS)                                                                               \
            ddps_cu_fail(st_ == CUDNN_STATUS_ALLOC_FAILED ? DDPS_KIND_RESOURCE : DDPS_KIND_FAILURE, #call,                  \
                    cudnnGetErrorString(st_), __FILE__, __LINE__);                                                     \
    } while (0)

/* ---------- state ---------- */

/* Device buffer that only grows (scratch shared by ops in stream order). */
typedef struct {
    void *p;
    size_t size;
} dbuf;

/* A matrix product y[M,N] (+)= x[M,K] w[N,K]^T of one shape. */
typedef struct mm_plan {
    size_t M;
    int N, K, act, accumulate, has_bias;
    unsigned align; /* alignment class of x and y (part of the key) */
    int direct;     /* 1: our kernel, no cuBLASLt */
    int epi_bias;   /* 0: no epilogue; 1: bias epilogue with f32 bias; 2: with a bias of the activation type */
    int post;       /* bias and/or activation left to ddps_cuk_bias_act */
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
    struct mm_plan *next;
} mm_plan;

/* A convolution of one shape. */
typedef struct conv_plan {
    int key[12];
    int direct;       /* 1: our kernel */
    int explicit_pad; /* 1: zero-padded copy of the input, cuDNN pads 0 */
    int ph, pw;       /* input size cuDNN sees */
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t fd;
    cudnnConvolutionDescriptor_t cd;
    cudnnConvolutionFwdAlgo_t algo;
    size_t ws;
    struct conv_plan *next;
} conv_plan;

struct cu_state {
    int device, sm_count, dt;
    int smem_optin; /* cudaDevAttrMaxSharedMemoryPerBlockOptin, for the attention kernels */
    int debug;      /* DDPS_CUDA_DEBUG: synchronise and check after every op */
    cudaStream_t stream;
    cudaMemPool_t pool; /* stream-ordered pool for activations (NULL: plain cudaMalloc) */
    int pool_off;       /* the pool failed after its trial: new blocks from cudaMalloc */
    void **plain;       /* with a pool: the blocks that came from cudaMalloc instead */
    int n_plain, cap_plain;
    cublasLtHandle_t lt;
    cudnnHandle_t dnn;
    void *lt_ws;
    dbuf dnn_ws;  /* cuDNN workspace */
    dbuf stage;   /* f32 staging for write / read / weights */
    dbuf scratch; /* group norm statistics */
    dbuf pad_in;  /* padded or realigned convolution input */
    dbuf tmp_out; /* realigned convolution output */
    dbuf ids;     /* token ids */
    /* Small writes (the UNet's timestep embedding, ...) are copied into one
     * of these page-locked slots and uploaded asynchronously: no host
     * synchronisation inside a forward. A slot is reused once the event
     * recorded after its upload has passed. NULL: every write synchronises. */
    char *pinned;
    cudaEvent_t pin_ev[PIN_SLOTS];
    int pin_next;
    int direct;   /* DDPS_CUDA_DIRECT: our kernels instead of cuBLASLt / cuDNN */
    int tf32;     /* DDPS_CUDA_TF32: let f32 products and convolutions use TF32 tensor cores */
    mm_plan *mm;
    conv_plan *conv;
    cu_failure pending; /* see cu_cur */
    size_t dnn_max_elems; /* cuDNN tensors stay below this (DNN_MAX_ELEMS; DDPS_CUDA_CONV_SPLIT for tests) */
    int n_slow;           /* unexpected slow plans (ddps_cuda_slow_plans) */
};

struct ddps_weight {
    int kind;
    int out, in, kh, kw;
    void *w;        /* activation type: linear [out][in], conv [out][kh][kw][in] */
    float *bias;    /* f32 [out] or NULL */
    void *bias_act; /* the bias in the activation type, made when a cuBLASLt epilogue wants it */
    float *table;   /* f32 [rows][cols] */
    int rows, cols;
    mm_plan *last_mm; /* plans this layer used last */
    conv_plan *last_conv;
};

static cu_failure *pending_of(cu_state *cs) { return &cs->pending; }
static int debug_of(cu_state *cs) { return cs->debug; }

/* Every entry point starts here: the failures it records are be's. */
static cu_state *cu_of(ddps_backend *be) {
    cu_cur = (cu_state *)be->impl;
    return cu_cur;
}

/* Debug mode: waits for the op's work and records a failure as this op's. */
static void op_done(cu_state *cs, const char *op, const ddps_tensor *out) {
    if (!cs->debug) return;
    cudaError_t e = cudaStreamSynchronize(cs->stream);
    if (e == cudaSuccess) e = cudaGetLastError();
    if (e == cudaSuccess || cs->pending.set) return;
    snprintf(cs->pending.msg, sizeof cs->pending.msg, "CUDA failure in op %s (output [%d,%d,%d,%d]): %s", op,
             out ? out->n : 0, out ? out->h : 0, out ? out->w : 0, out ? out->c : 0, cudaGetErrorString(e));
    cs->pending.kind = DDPS_KIND_RESOURCE;
    cs->pending.set = 1;
}

static size_t dt_size(int dt) { return dt == CU_F32 ? 4 : 2; }

/* cudaMalloc that, when memory is short, first returns the blocks the
 * activation pool keeps cached. */
static cudaError_t dev_malloc(cu_state *cs, void **p, size_t bytes) {
    cudaError_t e = cudaMalloc(p, bytes);
    if (e == cudaSuccess || !cs->pool) return e;
    cudaGetLastError();
    CUDA_OK(cudaStreamSynchronize(cs->stream));
    CUDA_OK(cudaMemPoolTrimTo(cs->pool, 0));
    return cudaMalloc(p, bytes);
}

static void *dbuf_get(cu_state *cs, dbuf *b, size_t bytes) {
    if (bytes > b->size) {
        if (b->p) {
            /* in-flight kernels may still read the old buffer */
            CUDA_OK(cudaStreamSynchronize(cs->stream));
            CUDA_OK(cudaFree(b->p));
            b->p = NULL;
            b->size = 0;
        }
        size_t n = (bytes + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
        if (n < bytes || dev_malloc(cs, &b->p, n) != cudaSuccess) {
            cudaGetLastError();
            b->p = NULL;
            char m[64];
            snprintf(m, sizeof m, "out of GPU memory (%zu bytes)", bytes);
            ddps_cu_fail(DDPS_KIND_RESOURCE, "scratch buffer", m, __FILE__, __LINE__);
            return NULL;
        }
        b->size = n;
    }
    return b->p;
}

static void dbuf_free(dbuf *b) {
    if (b->p) CUDA_OK(cudaFree(b->p));
    b->p = NULL;
    b->size = 0;
}

/* Largest power of two (up to 256) dividing the address. */
static unsigned align_of(const void *p) {
    uintptr_t a = (uintptr_t)p;
    unsigned r = 256;
    while (r > 1 && (a & (r - 1))) r >>= 1;
    return r;
}

/* ---------- memory ----------
 * Activations (the arena's blocks, long-lived tensors) come from a stream-
 * ordered pool that keeps freed memory cached: the arena frees and
 * re-requests blocks of the same sizes run after run, and with the pool
 * that costs neither a cudaMalloc nor a device synchronisation. A block
 * freed while kernels still use it is reused only by work queued after
 * them on the same stream, so stream order keeps that safe. */

/* Whether p came from plain cudaMalloc although there is a pool (the pool
 * stopped working, cu_alloc); such blocks are freed with cudaFree. */
static int plain_block(cu_state *cs, void *p, int take) {
    for (int i = 0; i < cs->n_plain; i++)
        if (cs->plain[i] == p) {
            if (take) cs->plain[i] = cs->plain[--cs->n_plain];
            return 1;
        }
    return 0;
}

/* cudaMalloc with the pointer remembered as a plain block (see plain_block). */
static void *plain_alloc(cu_state *cs, size_t n) {
    void *p = NULL;
    if (cudaMalloc(&p, n) != cudaSuccess) {
        cudaGetLastError(); /* out of memory is reported by returning NULL */
        return NULL;
    }
    if (cs->pool) {
        if (cs->n_plain == cs->cap_plain) {
            cs->cap_plain = cs->cap_plain ? 2 * cs->cap_plain : 16;
            cs->plain = ddps_realloc(cs->plain, (size_t)cs->cap_plain * sizeof *cs->plain);
        }
        cs->plain[cs->n_plain++] = p;
    }
    return p;
}

static void *cu_alloc(ddps_backend *be, size_t bytes) {
    cu_state *cs = cu_of(be);
    void *p = NULL;
    size_t n = bytes ? bytes : 256;
    if (cs->pool && !cs->pool_off) {
        cudaError_t e = cudaMallocFromPoolAsync(&p, n, cs->pool, cs->stream);
        if (e == cudaSuccess) return p;
        cudaGetLastError();
        if (e == cudaErrorMemoryAllocation) {
            /* the cached blocks may be what is missing */
            CUDA_OK(cudaStreamSynchronize(cs->stream));
            CUDA_OK(cudaMemPoolTrimTo(cs->pool, 0));
            if ((e = cudaMallocFromPoolAsync(&p, n, cs->pool, cs->stream)) == cudaSuccess) return p;
            cudaGetLastError();
        }
        if (e == cudaErrorMemoryAllocation) return NULL; /* out of memory is reported by returning NULL */
        /* stream-ordered allocation does not work here (although it passed
         * its trial): plain cudaMalloc / cudaFree from now on */
        ddps_warn("CUDA: stream-ordered allocation failed (%s): using cudaMalloc / cudaFree", cudaGetErrorString(e));
        cs->pool_off = 1;
    }
    return plain_alloc(cs, n);
}

static void cu_free(ddps_backend *be, void *p) {
    cu_state *cs = cu_of(be);
    if (!p) return;
    if (cs->pool && !plain_block(cs, p, 1)) {
        CUDA_OK(cudaFreeAsync(p, cs->stream));
        return;
    }
    CUDA_OK(cudaStreamSynchronize(cs->stream));
    CUDA_OK(cudaFree(p));
}

static void cu_write(ddps_backend *be, ddps_tensor *t, const float *host) {
    cu_state *cs = cu_of(be);
    size_t n = ddps_numel(t);
    if (n == 0) return;
    if (cs->pinned && n * sizeof(float) <= PIN_SLOT_BYTES) {
        int k = cs->pin_next;
        cs->pin_next = (k + 1) % PIN_SLOTS;
        CUDA_OK(cudaEventSynchronize(cs->pin_ev[k])); /* the slot's last upload is done (at once, normally) */
        char *slot = cs->pinned + (size_t)k * PIN_SLOT_BYTES;
        memcpy(slot, host, n * sizeof(float)); /* `host` may be reused as soon as we return */
        void *dst = cs->dt == CU_F32 ? t->data : dbuf_get(cs, &cs->stage, n * sizeof(float));
        if (!dst) return;
        CUDA_OK(cudaMemcpyAsync(dst, slot, n * sizeof(float), cudaMemcpyHostToDevice, cs->stream));
        CUDA_OK(cudaEventRecord(cs->pin_ev[k], cs->stream));
        if (cs->dt != CU_F32) ddps_cuk_convert(cs->stream, t->data, cs->dt, dst, CU_F32, n);
        op_done(cs, "write", t);
        return;
    }
    if (cs->dt == CU_F32) {
        CUDA_OK(cudaMemcpyAsync(t->data, host, n * sizeof(float), cudaMemcpyHostToDevice, cs->stream));
    } else {
        void *st = dbuf_get(cs, &cs->stage, n * sizeof(float));
        if (!st) return;
        CUDA_OK(cudaMemcpyAsync(st, host, n * sizeof(float), cudaMemcpyHostToDevice, cs->stream));
        ddps_cuk_convert(cs->stream, t->data, cs->dt, st, CU_F32, n);
    }
    /* The caller may reuse `host` at once: wait until it has been read. */
    CUDA_OK(cudaStreamSynchronize(cs->stream));
}

static void cu_read(ddps_backend *be, float *host, const ddps_tensor *t) {
    cu_state *cs = cu_of(be);
    size_t n = ddps_numel(t);
    if (n == 0) return;
    const void *src = t->data;
    if (cs->dt != CU_F32) {
        void *st = dbuf_get(cs, &cs->stage, n * sizeof(float));
        if (!st) return;
        ddps_cuk_convert(cs->stream, st, CU_F32, t->data, cs->dt, n);
        src = st;
    }
    CUDA_OK(cudaMemcpyAsync(host, src, n * sizeof(float), cudaMemcpyDeviceToHost, cs->stream));
    CUDA_OK(cudaStreamSynchronize(cs->stream));
}

static void cu_sync(ddps_backend *be) { CUDA_OK(cudaStreamSynchronize(cu_of(be)->stream)); }

/* Stage I maps: f32 whatever the precision. */
static void cu_map_fill(ddps_backend *be, ddps_tensor *t, float v) {
    cu_state *cs = cu_of(be);
    ddps_cuk_fill_f32(cs->stream, (float *)t->data, v, ddps_numel(t));
    op_done(cs, "map_fill", t);
}

static void cu_map_write(ddps_backend *be, ddps_tensor *t, const float *host) {
    cu_state *cs = cu_of(be);
    size_t n = ddps_numel(t);
    if (n == 0) return;
    CUDA_OK(cudaMemcpyAsync(t->data, host, n * sizeof(float), cudaMemcpyHostToDevice, cs->stream));
    CUDA_OK(cudaStreamSynchronize(cs->stream)); /* `host` may be reused at once */
}

static void cu_map_read(ddps_backend *be, float *host, const ddps_tensor *t) {
    cu_state *cs = cu_of(be);
    size_t n = ddps_numel(t);
    if (n == 0) return;
    CUDA_OK(cudaMemcpyAsync(host, t->data, n * sizeof(float), cudaMemcpyDeviceToHost, cs->stream));
    CUDA_OK(cudaStreamSynchronize(cs->stream));
}

/* ---------- weights ---------- */

/* Uploads n host f32 values as type dt into new device memory. */
static void *upload(cu_state *cs, const float *host, size_t n, int dt, ddps_err *err) {
    void *p = NULL;
    if (dev_malloc(cs, &p, n ? n * dt_size(dt) : 256) != cudaSuccess) {
        cudaGetLastError();
        ddps_fail_kind(err, DDPS_KIND_RESOURCE, "out of GPU memory (%zu bytes of weights)", n * dt_size(dt));
        return NULL;
    }
    if (n == 0) return p;
    if (dt == CU_F32) {
        CUDA_OK(cudaMemcpyAsync(p, host, n * sizeof(float), cudaMemcpyHostToDevice, cs->stream));
    } else {
        void *st = dbuf_get(cs, &cs->stage, n * sizeof(float));
        if (!st) {
            CUDA_OK(cudaFree(p));
            ddps_fail_kind(err, DDPS_KIND_RESOURCE, "out of GPU memory (%zu bytes of staging)", n * sizeof(float));
            return NULL;
        }
        CUDA_OK(cudaMemcpyAsync(st, host, n * sizeof(float), cudaMemcpyHostToDevice, cs->stream));
        ddps_cuk_convert(cs->stream, p, dt, st, CU_F32, n);
    }
    CUDA_OK(cudaStreamSynchronize(cs->stream));
    return p;
}

static void cu_free_weight(ddps_backend *be, ddps_weight *w) {
    if (!w) return;
    CUDA_OK(cudaStreamSynchronize(cu_of(be)->stream));
    if (w->w) CUDA_OK(cudaFree(w->w));
    if (w->bias) CUDA_OK(cudaFree(w->bias));
    if (w->bias_act) CUDA_OK(cudaFree(w->bias_act));
    if (w->table) CUDA_OK(cudaFree(w->table));
    free(w);
}

static ddps_weight *cu_make_linear(ddps_backend *be, const float *wt, const float *b, int out, int in, ddps_err *err) {
    cu_state *cs = cu_of(be);
    if (out < 1 || in < 1) return ddps_fail(err, "linear weight of %d x %d", out, in), NULL;
    ddps_weight *w = ddps_calloc(1, sizeof *w);
    w->kind = W_LINEAR;
    w->out = out;
    w->in = in;
    w->kh = w->kw = 1;
    w->w = upload(cs, wt, (size_t)out * in, cs->dt, err);
    if (w->w && b) w->bias = upload(cs, b, (size_t)out, CU_F32, err);
    if (!w->w || (b && !w->bias)) {
        cu_free_weight(be, w);
        return NULL;
    }
    return w;
}

static ddps_weight *cu_make_conv(ddps_backend *be, const float *wt, const float *b, int out, int in, int kh, int kw,
                                 ddps_err *err) {
    cu_state *cs = cu_of(be);
    if (out < 1 || in < 1 || kh < 1 || kw < 1)
        return ddps_fail(err, "convolution weight of %d x %d x %d x %d", out, in, kh, kw), NULL;
    ddps_weight *w = ddps_calloc(1, sizeof *w);
    w->kind = W_CONV;
    w->out = out;
    w->in = in;
    w->kh = kh;
    w->kw = kw;
    /* PyTorch [out][in][kh][kw] -> KRSC [out][kh][kw][in] */
    size_t n = (size_t)out * in * kh * kw;
    float *krsc = ddps_malloc(n * sizeof(float));
    for (int o = 0; o < out; o++)
        for (int c = 0; c < in; c++)
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++)
                    krsc[(((size_t)o * kh + i) * kw + j) * in + c] = wt[(((size_t)o * in + c) * kh + i) * kw + j];
    w->w = upload(cs, krsc, n, cs->dt, err);
    free(krsc);
    if (w->w && b) w->bias = upload(cs, b, (size_t)out, CU_F32, err);
    if (!w->w || (b && !w->bias)) {
        cu_free_weight(be, w);
        return NULL;
    }
    return w;
}

static ddps_weight *cu_make_table(ddps_backend *be, const float *v, int rows, int cols, ddps_err *err) {
    cu_state *cs = cu_of(be);
    if (rows < 1 || cols < 1) return ddps_fail(err, "table of %d x %d", rows, cols), NULL;
    ddps_weight *w = ddps_calloc(1, sizeof *w);
    w->kind = W_TABLE;
    w->rows = rows;
    w->cols = cols;
    w->table = upload(cs, v, (size_t)rows * cols, CU_F32, err);
    if (!w->table) {
        free(w);
        return NULL;
    }
    return w;
}

/* w's table of at least need values; NULL (an internal error recorded) if w is none. */
static const float *table_of(const ddps_weight *w, int need, const char *what) {
    if (!w || w->kind != W_TABLE || (size_t)w->rows * w->cols < (size_t)need) {
        ddps_cu_internal("%s: table of %d values expected", what, need);
        return NULL;
    }
    return w->table;
}

/* ---------- linear (cuBLASLt) ----------
 * Row-major y[M,N] = x[M,K] w[N,K]^T is, in cuBLASLt's column-major terms,
 * D (N x M, ld N) = op(A) B with A = w stored K x N (ld K) and op = T, and
 * B = x stored K x M (ld K): the "TN" layout tensor cores like best. */

static cudaDataType_t cuda_type(int dt) { return dt == CU_F32 ? CUDA_R_32F : dt == CU_BF16 ? CUDA_R_16BF : CUDA_R_16F; }

static void mm_plan_free_lt(mm_plan *p) {
    if (p->desc) LT_OK(cublasLtMatmulDescDestroy(p->desc));
    if (p->la) LT_OK(cublasLtMatrixLayoutDestroy(p->la));
    if (p->lb) LT_OK(cublasLtMatrixLayoutDestroy(p->lb));
    if (p->lc) LT_OK(cublasLtMatrixLayoutDestroy(p->lc));
    p->desc = NULL;
    p->la = p->lb = p->lc = NULL;
}

/* Tries one epilogue configuration; 0 when the heuristic found an algorithm. */
static int mm_try(cu_state *cs, mm_plan *p, int epi_bias, unsigned ax, unsigned ay) {
    cudaDataType_t t = cuda_type(cs->dt);
    cublasComputeType_t ct = cs->dt == CU_F32 && cs->tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    LT_OK(cublasLtMatmulDescCreate(&p->desc, ct, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    LT_OK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    LT_OK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (epi_bias) {
        cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        int32_t bt = epi_bias == 1 ? (int32_t)CUDA_R_32F : (int32_t)t;
        LT_OK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
        LT_OK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
    }
    LT_OK(cublasLtMatrixLayoutCreate(&p->la, t, (uint64_t)p->K, (uint64_t)p->N, (int64_t)p->K));
    LT_OK(cublasLtMatrixLayoutCreate(&p->lb, t, (uint64_t)p->K, (uint64_t)p->M, (int64_t)p->K));
    LT_OK(cublasLtMatrixLayoutCreate(&p->lc, t, (uint64_t)p->N, (uint64_t)p->M, (int64_t)p->N));
    cublasLtMatmulPreference_t pref;
    LT_OK(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t ws = LT_WORKSPACE;
    uint32_t a_w = 256, a_x = ax, a_y = ay; /* weights come straight from cudaMalloc */
    LT_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    LT_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &a_w, sizeof a_w));
    LT_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &a_x, sizeof a_x));
    LT_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &a_y, sizeof a_y));
    LT_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &a_y, sizeof a_y));
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(cs->lt, p->desc, p->la, p->lb, p->lc, p->lc, pref, 1, &res, &found);
    LT_OK(cublasLtMatmulPreferenceDestroy(pref));
    if (st != CUBLAS_STATUS_SUCCESS || found < 1 || res.state != CUBLAS_STATUS_SUCCESS) {
        mm_plan_free_lt(p);
        return -1;
    }
    p->algo = res.algo;
    p->epi_bias = epi_bias;
    return 0;
}

static mm_plan *mm_plan_get(cu_state *cs, ddps_weight *w, size_t M, int act, int accumulate, unsigned ax, unsigned ay) {
    unsigned align = ax | ay << 16;
    mm_plan *p = w->last_mm;
    if (p && p->M == M && p->N == w->out && p->K == w->in && p->act == act && p->accumulate == accumulate &&
        p->has_bias == (w->bias != NULL) && p->align == align)
        return p;
    for (p = cs->mm; p; p = p->next)
        if (p->M == M && p->N == w->out && p->K == w->in && p->act == act && p->accumulate == accumulate &&
            p->has_bias == (w->bias != NULL) && p->align == align)
            break;
    if (!p) {
        p = ddps_calloc(1, sizeof *p);
        p->M = M;
        p->N = w->out;
        p->K = w->in;
        p->act = act;
        p->accumulate = accumulate;
        p->has_bias = w->bias != NULL;
        p->align = align;
        /* Bias through the epilogue when possible (f32 bias, else one of the
         * activation type); activations always by our kernel: cuBLASLt's GELU
         * is the tanh approximation, ours the exact erf form of the interface. */
        int ok = 0;
        if (!cs->direct) {
            if (p->has_bias) ok = mm_try(cs, p, 1, ax, ay) == 0 || (cs->dt != CU_F32 && mm_try(cs, p, 2, ax, ay) == 0);
            if (!ok) ok = mm_try(cs, p, 0, ax, ay) == 0;
        }
        p->direct = !ok;
        p->post = !p->direct && ((p->has_bias && !p->epi_bias) || act != CU_ACT_NONE);
        if (p->direct && !cs->direct) {
            /* one warning per shape (plans differ also by alignment and epilogue) */
            int seen = 0;
            for (mm_plan *q = cs->mm; q && !seen; q = q->next) seen = q->direct && q->M == M && q->N == p->N && q->K == p->K;
            if (!seen && p->K % 8 == 0 && p->N % 8 == 0) cs->n_slow++;
            if (!seen)
                ddps_warn("CUDA: linear [%zu x %d] -> %d (%s): no cuBLASLt algorithm, using the slow direct kernel", M,
                          p->K, p->N, ddps_precision_name((ddps_precision)cs->dt));
        }
        p->next = cs->mm;
        cs->mm = p;
    }
    w->last_mm = p;
    return p;
}

static void cu_linear(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_weight *wc, ddps_act act,
                      int accumulate) {
    cu_state *cs = cu_of(be);
    ddps_weight *w = (ddps_weight *)wc;
    size_t M = (size_t)x->n * x->h * x->w;
    if (!w || w->kind != W_LINEAR || x->c != w->in || y->c != w->out || (size_t)y->n * y->h * y->w != M) {
        ddps_cu_internal("linear %d->%d on [%d,%d,%d,%d] -> [%d,%d,%d,%d]", w ? w->in : 0, w ? w->out : 0, x->n, x->h,
                         x->w, x->c, y->n, y->h, y->w, y->c);
        return;
    }
    if (M == 0) return;
    be->flops += 2.0 * (double)M * w->in * w->out;
    mm_plan *p = mm_plan_get(cs, w, M, (int)act, accumulate, align_of(x->data), align_of(y->data));
    if (p->direct) {
        ddps_cuk_gemm_direct(cs->stream, y->data, x->data, w->w, w->bias, cs->dt, M, w->out, w->in, (int)act, accumulate);
        op_done(cs, "linear (direct kernel)", y);
        return;
    }
    if (p->epi_bias) {
        const void *bp = p->epi_bias == 1 ? (const void *)w->bias : w->bias_act;
        if (!bp) {
            /* first use of this layer with a 16-bit bias epilogue */
            void *b = NULL;
            CUDA_OK(dev_malloc(cs, &b, (size_t)w->out * 2));
            if (!b) return;
            ddps_cuk_convert(cs->stream, b, cs->dt, w->bias, CU_F32, (size_t)w->out);
            w->bias_act = b;
            bp = b;
        }
        LT_OK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp));
    }
    float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    LT_OK(cublasLtMatmul(cs->lt, p->desc, &alpha, w->w, p->la, x->data, p->lb, &beta, y->data, p->lc, y->data, p->lc,
                         &p->algo, cs->lt_ws, LT_WORKSPACE, cs->stream));
    if (p->post) ddps_cuk_bias_act(cs->stream, y->data, cs->dt, p->epi_bias ? NULL : w->bias, M, w->out, (int)act);
    op_done(cs, "linear", y);
}

/* ---------- convolution (cuDNN) ---------- */

static cudnnDataType_t dnn_type(int dt) {
    return dt == CU_F32 ? CUDNN_DATA_FLOAT : dt == CU_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
}

static void conv_plan_free_dnn(conv_plan *p) {
    if (p->xd) DNN_OK(cudnnDestroyTensorDescriptor(p->xd));
    if (p->yd) DNN_OK(cudnnDestroyTensorDescriptor(p->yd));
    if (p->fd) DNN_OK(cudnnDestroyFilterDescriptor(p->fd));
    if (p->cd) DNN_OK(cudnnDestroyConvolutionDescriptor(p->cd));
    p->xd = p->yd = NULL;
    p->fd = NULL;
    p->cd = NULL;
}

static void conv_plan_free(conv_plan *p) {
    conv_plan_free_dnn(p);
    free(p);
}

/* FFT convolutions lose digits (errors near 1e-4 in f32), and Winograd's
 * transforms amplify the rounding of 16-bit inputs: both are left out where
 * they would cost accuracy. Implicit-GEMM kernels are the fast ones on
 * tensor cores anyway. */
static int algo_accurate(const cu_state *cs, cudnnConvolutionFwdAlgo_t a) {
    if (a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING) return 0;
    if (cs->dt != CU_F32 &&
        (a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED))
        return 0;
    return 1;
}

/* Whether a cuDNN result was timed under the math the convolution will run
 * with. f32 without TF32 runs plain FMA math: an algorithm cuDNN timed (or
 * ranked) under another math type is not the one the descriptor runs, so it
 * is skipped. Otherwise the descriptor takes the result's math type. */
static int math_ok(const cu_state *cs, cudnnMathType_t m) {
    if (cs->dt == CU_F32 && !cs->tf32) return m == CUDNN_FMA_MATH;
    return 1;
}

/* The fastest usable algorithm for p's descriptors (math: the math type
 * set on them): cuDNN's timed Find, else its heuristic ranking. Returns its
 * index in perf (memory: its workspace), or -1; *skipped_math counts the
 * results left out for their math type. */
static int conv_pick(cu_state *cs, conv_plan *p, cudnnMathType_t math, cudnnConvolutionFwdAlgoPerf_t perf[CONV_PERF_MAX],
                     int *skipped_math) {
    cudnnStatus_t st;
    /* Every result cuDNN has: one algorithm may come once per math type, and
     * with CUDNN_CONVOLUTION_FWD_ALGO_COUNT entries the TF32 / tensor-op
     * ones can crowd out the FMA ones f32 needs (then f32 fell to the
     * direct kernel). */
    int want = CUDNN_CONVOLUTION_FWD_ALGO_COUNT, max_count = 0;
    if (cudnnGetConvolutionForwardAlgorithmMaxCount(cs->dnn, &max_count) == CUDNN_STATUS_SUCCESS && max_count > want)
        want = max_count;
    if (want > CONV_PERF_MAX) want = CONV_PERF_MAX;
    int got = 0, pick = -1;
    if ((st = cudnnFindConvolutionForwardAlgorithm(cs->dnn, p->xd, p->fd, p->cd, p->yd, want, &got, perf)) !=
        CUDNN_STATUS_SUCCESS) {
        ddps_debug("cuda: cudnnFindConvolutionForwardAlgorithm: %s; using the heuristic", cudnnGetErrorString(st));
        got = 0;
        /* Find may leave the runtime's error (e.g. out of memory for its
         * trials) set: clear it, and make sure the device is still sane */
        (void)cudaGetLastError();
        CUDA_OK(cudaStreamSynchronize(cs->stream));
    }
    ddps_debug("cuda: cuDNN Find: %d results (%d asked for)", got, want);
    for (int i = 0; i < got && pick < 0; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= DNN_WORKSPACE_MAX &&
            algo_accurate(cs, perf[i].algo)) {
            if (math_ok(cs, perf[i].mathType))
                pick = i;
            else
                (*skipped_math)++;
        }
    if (pick < 0) {
        /* Find failed (or found nothing usable): the heuristic's ranking instead */
        got = 0;
        if ((st = cudnnGetConvolutionForwardAlgorithm_v7(cs->dnn, p->xd, p->fd, p->cd, p->yd, want, &got, perf)) !=
            CUDNN_STATUS_SUCCESS) {
            ddps_debug("cuda: cudnnGetConvolutionForwardAlgorithm_v7: %s", cudnnGetErrorString(st));
            got = 0;
        }
        for (int i = 0; i < got && pick < 0; i++) {
            size_t need = 0;
            if (perf[i].status != CUDNN_STATUS_SUCCESS || !algo_accurate(cs, perf[i].algo)) continue;
            if (!math_ok(cs, perf[i].mathType)) {
                (*skipped_math)++;
                continue;
            }
            if (math != CUDNN_FMA_MATH &&
                cudnnSetConvolutionMathType(p->cd, perf[i].mathType) != CUDNN_STATUS_SUCCESS)
                continue;
            if (cudnnGetConvolutionForwardWorkspaceSize(cs->dnn, p->xd, p->fd, p->cd, p->yd, perf[i].algo, &need) ==
                    CUDNN_STATUS_SUCCESS &&
                need <= DNN_WORKSPACE_MAX) {
                perf[i].memory = need;
                pick = i;
            }
        }
    }
    return pick;
}

/* Descriptors and the fastest algorithm for one shape; 0 on success, else -1
 * with the reason in why. */
static int conv_setup(cu_state *cs, conv_plan *p, int N, int C, int K, int kh, int kw, int stride, int pad_h, int pad_w,
                      int ho, int wo, char *why, size_t why_len) {
    cudnnDataType_t t = dnn_type(cs->dt);
    cudnnStatus_t st;
    DNN_OK(cudnnCreateTensorDescriptor(&p->xd));
    DNN_OK(cudnnCreateTensorDescriptor(&p->yd));
    DNN_OK(cudnnCreateFilterDescriptor(&p->fd));
    DNN_OK(cudnnCreateConvolutionDescriptor(&p->cd));
    if ((st = cudnnSetTensor4dDescriptor(p->xd, CUDNN_TENSOR_NHWC, t, N, C, p->ph, p->pw)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnSetTensor4dDescriptor(p->yd, CUDNN_TENSOR_NHWC, t, N, K, ho, wo)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnSetFilter4dDescriptor(p->fd, t, CUDNN_TENSOR_NHWC, K, C, kh, kw)) != CUDNN_STATUS_SUCCESS ||
        (st = cudnnSetConvolution2dDescriptor(p->cd, pad_h, pad_w, stride, stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                              CUDNN_DATA_FLOAT)) != CUDNN_STATUS_SUCCESS) {
        snprintf(why, why_len, "descriptors refused: %s", cudnnGetErrorString(st));
        return -1;
    }
    /* f32: FMA only unless TF32 was asked for (cuDNN's default math allows
     * TF32 on Ampere and later) */
    cudnnMathType_t math = cs->dt != CU_F32 ? CUDNN_TENSOR_OP_MATH : cs->tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
    if ((st = cudnnSetConvolutionMathType(p->cd, math)) != CUDNN_STATUS_SUCCESS) {
        snprintf(why, why_len, "cudnnSetConvolutionMathType: %s", cudnnGetErrorString(st));
        return -1;
    }
    int on, oc, oh, ow;
    if ((st = cudnnGetConvolution2dForwardOutputDim(p->cd, p->xd, p->fd, &on, &oc, &oh, &ow)) != CUDNN_STATUS_SUCCESS ||
        on != N || oc != K || oh != ho || ow != wo) {
        snprintf(why, why_len, "output size [%d,%d,%d,%d] instead of [%d,%d,%d,%d]", on, oh, ow, oc, N, ho, wo, K);
        return -1;
    }
    cudnnConvolutionFwdAlgoPerf_t perf[CONV_PERF_MAX];
    int skipped_math = 0, pick = conv_pick(cs, p, math, perf, &skipped_math);
    if (pick < 0) {
        snprintf(why, why_len, "no cuDNN algorithm%s", skipped_math ? " timed with FMA math (f32 without TF32)" : "");
        return -1;
    }
    p->algo = perf[pick].algo;
    if (math != CUDNN_FMA_MATH && (st = cudnnSetConvolutionMathType(p->cd, perf[pick].mathType)) != CUDNN_STATUS_SUCCESS) {
        snprintf(why, why_len, "cudnnSetConvolutionMathType: %s", cudnnGetErrorString(st));
        return -1;
    }
    size_t need = 0;
    if ((st = cudnnGetConvolutionForwardWorkspaceSize(cs->dnn, p->xd, p->fd, p->cd, p->yd, p->algo, &need)) !=
        CUDNN_STATUS_SUCCESS) {
        snprintf(why, why_len, "cudnnGetConvolutionForwardWorkspaceSize: %s", cudnnGetErrorString(st));
        return -1;
    }
    p->ws = need > perf[pick].memory ? need : perf[pick].memory;
    ddps_debug("cuda: conv n%d %dx%d %d->%d k%dx%d s%d: cuDNN algorithm %d, math %d, %zu bytes of workspace", N, p->ph,
               p->pw, C, K, kh, kw, stride, (int)p->algo, (int)perf[pick].mathType, p->ws);
    return 0;
}

static conv_plan *conv_plan_get(cu_state *cs, ddps_weight *w, const ddps_tensor *x, int stride, const int pad[4],
                                int ho, int wo) {
    int key[12] = {x->n, x->h, x->w, w->in, w->out, w->kh, w->kw, stride, pad[0], pad[1], pad[2], pad[3]};
    conv_plan *p = w->last_conv;
    if (p && memcmp(p->key, key, sizeof key) == 0) return p;
    for (p = cs->conv; p; p = p->next)
        if (memcmp(p->key, key, sizeof key) == 0) break;
    if (!p) {
        p = ddps_calloc(1, sizeof *p);
        memcpy(p->key, key, sizeof key);
        int sym = pad[0] == pad[2] && pad[1] == pad[3];
        p->explicit_pad = !sym;
        p->ph = sym ? x->h : x->h + pad[0] + pad[2];
        p->pw = sym ? x->w : x->w + pad[1] + pad[3];
        char why[256] = "";
        p->direct = cs->direct || conv_setup(cs, p, x->n, w->in, w->out, w->kh, w->kw, stride, sym ? pad[0] : 0,
                                             sym ? pad[1] : 0, ho, wo, why, sizeof why) != 0;
        if (p->direct) {
            /* a plan is made once per shape: one warning per shape */
            if (!cs->direct && w->in % 8 == 0 && w->out % 8 == 0) cs->n_slow++;
            if (!cs->direct)
                ddps_warn("CUDA: convolution [%d,%d,%d,%d] -> %d, %dx%d stride %d pad %d,%d,%d,%d (%s): %s; using the "
                          "slow direct kernel",
                          x->n, x->h, x->w, w->in, w->out, w->kh, w->kw, stride, pad[0], pad[1], pad[2], pad[3],
                          ddps_precision_name((ddps_precision)cs->dt), why);
            conv_plan_free_dnn(p);
        }
        p->next = cs->conv;
        cs->conv = p;
    }
    w->last_conv = p;
    return p;
}

/* Images per cuDNN call: cuDNN's legacy API counts a tensor's elements in
 * 32 bits, so input (as cuDNN sees it, padded), output and the padded copy
 * stay below 2^31 elements. 0 when a single image is beyond that. */
static int conv_items_per_call(const cu_state *cs, const ddps_tensor *x, const ddps_weight *w, const int pad[4], int ho,
                               int wo) {
    size_t in = (size_t)(x->h + pad[0] + pad[2]) * (size_t)(x->w + pad[1] + pad[3]) * (size_t)x->c;
    size_t out = (size_t)ho * (size_t)wo * (size_t)w->out, item = in > out ? in : out;
    size_t per = item ? cs->dnn_max_elems / item : (size_t)x->n;
    return per > (size_t)x->n ? x->n : (int)per;
}

static void cu_conv2d(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_weight *wc, int stride,
                      const int pad[4], int accumulate) {
    cu_state *cs = cu_of(be);
    ddps_weight *w = (ddps_weight *)wc;
    if (!w || w->kind != W_CONV || stride < 1 || pad[0] < 0 || pad[1] < 0 || pad[2] < 0 || pad[3] < 0) {
        ddps_cu_internal("not a convolution weight, or stride %d / padding out of range", stride);
        return;
    }
    int ho = (x->h + pad[0] + pad[2] - w->kh) / stride + 1, wo = (x->w + pad[1] + pad[3] - w->kw) / stride + 1;
    if (x->c != w->in || y->c != w->out || y->n != x->n || y->h != ho || y->w != wo || ho < 1 || wo < 1) {
        ddps_cu_internal("conv %dx%d k%d s%d on [%d,%d,%d,%d] -> [%d,%d,%d,%d]", w->out, w->in, w->kh, stride, x->n, x->h,
                         x->w, x->c, y->n, y->h, y->w, y->c);
        return;
    }
    if (x->n == 0) return;
    int per = conv_items_per_call(cs, x, w, pad, ho, wo);
    if (per < 1) {
        ddps_cu_internal("conv %dx%d k%d on [%d,%d,%d,%d]: one image has 2^31 elements or more (cuDNN's limit)",
                         w->out, w->in, w->kh, x->n, x->h, x->w, x->c);
        return;
    }
    if (per < x->n) {
        /* cuDNN's tensors stay below 2^31 elements: the batch in parts */
        size_t es = dt_size(cs->dt), xi = (size_t)x->h * x->w * x->c * es, yi = (size_t)ho * wo * y->c * es;
        for (int i = 0; i < x->n; i += per) {
            int k = x->n - i < per ? x->n - i : per;
            ddps_tensor xs = {(char *)x->data + (size_t)i * xi, k, x->h, x->w, x->c};
            ddps_tensor ys = {(char *)y->data + (size_t)i * yi, k, ho, wo, y->c};
            cu_conv2d(be, &ys, &xs, wc, stride, pad, accumulate);
        }
        return;
    }
    be->flops += 2.0 * x->n * ho * wo * (double)w->out * w->in * w->kh * w->kw;
    conv_plan *p = conv_plan_get(cs, w, x, stride, pad, ho, wo);
    if (p->direct) {
        ddps_cuk_conv_direct(cs->stream, y->data, x->data, w->w, w->bias, cs->dt, x->n, x->h, x->w, x->c, w->out, w->kh,
                             w->kw, stride, pad[0], pad[1], ho, wo, accumulate);
        op_done(cs, "conv2d (direct kernel)", y);
        return;
    }
    size_t es = dt_size(cs->dt);
    const void *xin = x->data;
    if (p->explicit_pad) {
        void *b = dbuf_get(cs, &cs->pad_in, (size_t)x->n * p->ph * p->pw * x->c * es);
        if (!b) return;
        ddps_cuk_pad(cs->stream, b, x->data, cs->dt, x->n, x->h, x->w, x->c, pad[0], pad[1], p->ph, p->pw);
        xin = b;
    } else if (align_of(xin) < 16) {
        /* views into a batch need not be aligned the way cuDNN's kernels want */
        void *b = dbuf_get(cs, &cs->pad_in, ddps_numel(x) * es);
        if (!b) return;
        CUDA_OK(cudaMemcpyAsync(b, xin, ddps_numel(x) * es, cudaMemcpyDeviceToDevice, cs->stream));
        xin = b;
    }
    void *yout = y->data;
    size_t ybytes = ddps_numel(y) * es;
    if (align_of(yout) < 16) {
        yout = dbuf_get(cs, &cs->tmp_out, ybytes);
        if (!yout) return;
        if (accumulate) CUDA_OK(cudaMemcpyAsync(yout, y->data, ybytes, cudaMemcpyDeviceToDevice, cs->stream));
    }
    void *ws = p->ws ? dbuf_get(cs, &cs->dnn_ws, p->ws) : NULL;
    if (p->ws && !ws) return;
    float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    DNN_OK(cudnnConvolutionForward(cs->dnn, &alpha, p->xd, xin, p->fd, w->w, p->cd, p->algo, ws, p->ws, &beta, p->yd,
                                   yout));
    if (w->bias) ddps_cuk_bias_act(cs->stream, yout, cs->dt, w->bias, (size_t)y->n * ho * wo, w->out, CU_ACT_NONE);
    if (yout != y->data) CUDA_OK(cudaMemcpyAsync(y->data, yout, ybytes, cudaMemcpyDeviceToDevice, cs->stream));
    op_done(cs, "conv2d", y);
}

/* ---------- normalisation and the other ops ---------- */

/* 0 when a and b have one shape; else -1 with an internal error recorded. */
static int same_shape(const ddps_tensor *a, const ddps_tensor *b, const char *what) {
    if (a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c) return 0;
    ddps_cu_internal("%s: shapes [%d,%d,%d,%d] and [%d,%d,%d,%d] differ", what, a->n, a->h, a->w, a->c, b->n, b->h, b->w,
                     b->c);
    return -1;
}

static void cu_group_norm(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_tensor *shift,
                          const ddps_weight *gamma, const ddps_weight *beta, int groups, float eps, int silu) {
    cu_state *cs = cu_of(be);
    if (same_shape(y, x, "group norm")) return;
    if (groups < 1 || x->c % groups) {
        ddps_cu_internal("group norm with %d channels in %d groups", x->c, groups);
        return;
    }
    if (shift && (shift->n != x->n || shift->c != x->c || shift->h * shift->w != 1)) {
        ddps_cu_internal("group norm: shift [%d,%d,%d,%d] for [%d,%d,%d,%d]", shift->n, shift->h, shift->w, shift->c, x->n,
                         x->h, x->w, x->c);
        return;
    }
    const float *g = table_of(gamma, x->c, "group norm"), *b = table_of(beta, x->c, "group norm");
    size_t HW = (size_t)x->h * x->w;
    if (!g || !b || x->n == 0 || HW == 0 || x->c == 0) return;
    void *scratch = dbuf_get(cs, &cs->scratch, ddps_cuk_group_norm_scratch(cs->sm_count, x->n, HW, x->c));
    if (!scratch) return;
    ddps_cuk_group_norm(cs->stream, cs->sm_count, y->data, x->data, shift ? shift->data : NULL, g, b, cs->dt, x->n, HW,
                        x->c, groups, eps, silu, scratch);
    op_done(cs, "group_norm", y);
}

static void cu_layer_norm(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_weight *gamma,
                          const ddps_weight *beta, float eps) {
    cu_state *cs = cu_of(be);
    if (same_shape(y, x, "layer norm")) return;
    const float *g = table_of(gamma, x->c, "layer norm"), *b = table_of(beta, x->c, "layer norm");
    if (!g || !b) return;
    ddps_cuk_layer_norm(cs->stream, y->data, x->data, g, b, cs->dt, (size_t)x->n * x->h * x->w, x->c, eps);
    op_done(cs, "layer_norm", y);
}

static void cu_attention(ddps_backend *be, ddps_tensor *y, const ddps_tensor *q, const ddps_tensor *k,
                         const ddps_tensor *v, int heads, int causal) {
    cu_state *cs = cu_of(be);
    long B = q->n, Lq = (long)q->h * q->w, Lk = (long)k->h * k->w, C = q->c;
    if (heads < 1 || C % heads || k->c != C || v->c != C || k->n != B || v->n != B || (long)v->h * v->w != Lk ||
        y->c != C || y->n != B || (long)y->h * y->w != Lq) {
        ddps_cu_internal("attention shapes");
        return;
    }
    be->flops += 4.0 * B * (double)Lq * Lk * C;
    if (ddps_cuk_attention(cs->stream, cs->smem_optin, y->data, q->data, k->data, v->data, cs->dt, (int)B, (int)Lq,
                           (int)Lk, heads, (int)(C / heads), causal) != 0) {
        ddps_cu_internal("attention with %ld heads of width %ld, %ld queries: beyond the CUDA kernels (width <= 512)",
                         (long)heads, C / heads, Lq);
        return;
    }
    op_done(cs, "attention", y);
}

static void cu_geglu(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x) {
    cu_state *cs = cu_of(be);
    if (x->c % 2 || y->c * 2 != x->c || (size_t)y->n * y->h * y->w != (size_t)x->n * x->h * x->w) {
        ddps_cu_internal("geglu [%d,%d,%d,%d] -> [%d,%d,%d,%d]", x->n, x->h, x->w, x->c, y->n, y->h, y->w, y->c);
        return;
    }
    ddps_cuk_geglu(cs->stream, y->data, x->data, cs->dt, (size_t)x->n * x->h * x->w, y->c);
    op_done(cs, "geglu", y);
}

static void cu_activate(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, ddps_act act) {
    cu_state *cs = cu_of(be);
    if (ddps_numel(y) != ddps_numel(x)) {
        ddps_cu_internal("activate: sizes differ");
        return;
    }
    ddps_cuk_activate(cs->stream, y->data, x->data, cs->dt, ddps_numel(x), (int)act);
    op_done(cs, "activate", y);
}

static void cu_axpby(ddps_backend *be, ddps_tensor *y, float a, const ddps_tensor *x, float b, const ddps_tensor *z) {
    cu_state *cs = cu_of(be);
    if (ddps_numel(x) != ddps_numel(y) || ddps_numel(z) != ddps_numel(y)) {
        ddps_cu_internal("axpby: sizes differ ([%d,%d,%d,%d], [%d,%d,%d,%d], [%d,%d,%d,%d])", y->n, y->h, y->w, y->c, x->n,
                         x->h, x->w, x->c, z->n, z->h, z->w, z->c);
        return;
    }
    ddps_cuk_axpby(cs->stream, y->data, a, x->data, b, z->data, cs->dt, ddps_numel(y));
    op_done(cs, "axpby", y);
}

static void cu_upsample_nearest(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x) {
    cu_state *cs = cu_of(be);
    if (y->n != x->n || y->c != x->c || (x->h < 1 && y->h > 0) || (x->w < 1 && y->w > 0)) {
        ddps_cu_internal("upsample shapes");
        return;
    }
    ddps_cuk_upsample_nearest(cs->stream, y->data, x->data, cs->dt, x->n, x->h, x->w, y->h, y->w, x->c);
    op_done(cs, "upsample_nearest", y);
}

static void cu_concat_c(ddps_backend *be, ddps_tensor *y, const ddps_tensor *a, const ddps_tensor *b) {
    cu_state *cs = cu_of(be);
    size_t rows = (size_t)y->n * y->h * y->w;
    if (a->c + b->c != y->c || (size_t)a->n * a->h * a->w != rows || (size_t)b->n * b->h * b->w != rows) {
        ddps_cu_internal("concat shapes");
        return;
    }
    ddps_cuk_concat_c(cs->stream, y->data, a->data, b->data, cs->dt, rows, a->c, b->c);
    op_done(cs, "concat_c", y);
}

static void cu_embed(ddps_backend *be, ddps_tensor *y, const int32_t *ids, const ddps_weight *tok,
                     const ddps_weight *pos) {
    cu_state *cs = cu_of(be);
    int L = y->h * y->w, C = y->c;
    size_t n = (size_t)y->n * L;
    if (!tok || tok->kind != W_TABLE || tok->cols != C) {
        ddps_cu_internal("embed: token table of width %d expected", C);
        return;
    }
    if (!table_of(pos, L * C, "embed (positions)") || n == 0) return;
    int32_t *d = dbuf_get(cs, &cs->ids, n * sizeof(int32_t));
    if (!d) return;
    /* pageable source: the call returns once the ids are staged */
    CUDA_OK(cudaMemcpyAsync(d, ids, n * sizeof(int32_t), cudaMemcpyHostToDevice, cs->stream));
    ddps_cuk_embed(cs->stream, y->data, d, tok->table, pos->table, cs->dt, y->n, L, C);
    op_done(cs, "embed", y);
}

static void cu_sqdiff_acc(ddps_backend *be, ddps_tensor *d, const ddps_tensor *e, const ddps_tensor *a,
                          const ddps_tensor *b, float w) {
    cu_state *cs = cu_of(be);
    size_t n = ddps_numel(d);
    if (ddps_numel(e) != n || ddps_numel(a) != n || ddps_numel(b) != n) {
        ddps_cu_internal("sqdiff_acc: sizes differ");
        return;
    }
    ddps_cuk_sqdiff_acc(cs->stream, (float *)d->data, e->data, a->data, b->data, w, cs->dt, n); /* d: an f32 map */
    op_done(cs, "sqdiff_acc", d);
}

static void cu_resize_bilinear_cmean(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x) {
    cu_state *cs = cu_of(be);
    if (y->c != 1 || y->n != x->n || x->h < 1 || x->w < 1 || x->c < 1) {
        ddps_cu_internal("resize_bilinear_cmean shapes");
        return;
    }
    /* maps: f32 in and out */
    ddps_cuk_resize_bilinear_cmean(cs->stream, y->data, x->data, CU_F32, x->n, x->h, x->w, x->c, y->h, y->w);
    op_done(cs, "resize_bilinear_cmean", y);
}

static void cu_avg_pool(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, int k, int s) {
    cu_state *cs = cu_of(be);
    if (k < 1 || s < 1 || k > x->h || k > x->w || y->n != x->n || y->c != x->c || y->h != (x->h - k) / s + 1 ||
        y->w != (x->w - k) / s + 1) {
        ddps_cu_internal("avg_pool k%d s%d on [%d,%d,%d,%d] -> [%d,%d,%d,%d]", k, s, x->n, x->h, x->w, x->c, y->n, y->h,
                         y->w, y->c);
        return;
    }
    ddps_cuk_avg_pool(cs->stream, y->data, x->data, CU_F32, x->n, x->h, x->w, x->c, k, s, y->h, y->w); /* maps */
    op_done(cs, "avg_pool", y);
}

static void cu_global_avg(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x) {
    cu_state *cs = cu_of(be);
    if (y->n != x->n || y->c != x->c || y->h * y->w != 1) {
        ddps_cu_internal("global_avg shapes");
        return;
    }
    ddps_cuk_global_avg(cs->stream, y->data, x->data, cs->dt, x->n, (size_t)x->h * x->w, x->c);
    op_done(cs, "global_avg", y);
}

/* ---------- backend object ---------- */

static void cu_destroy(ddps_backend *be) {
    cu_state *cs = cu_of(be);
    /* a kernel fault nobody has waited for yet surfaces here: report it */
    if (cs->stream) CUDA_OK(cudaStreamSynchronize(cs->stream));
    while (cs->mm) {
        mm_plan *n = cs->mm->next;
        mm_plan_free_lt(cs->mm);
        free(cs->mm);
        cs->mm = n;
    }
    while (cs->conv) {
        conv_plan *n = cs->conv->next;
        conv_plan_free(cs->conv);
        cs->conv = n;
    }
    dbuf_free(&cs->dnn_ws);
    dbuf_free(&cs->stage);
    dbuf_free(&cs->scratch);
    dbuf_free(&cs->pad_in);
    dbuf_free(&cs->tmp_out);
    dbuf_free(&cs->ids);
    if (cs->pinned) {
        for (int i = 0; i < PIN_SLOTS; i++) CUDA_OK(cudaEventDestroy(cs->pin_ev[i]));
        CUDA_OK(cudaFreeHost(cs->pinned));
        cs->pinned = NULL;
    }
    if (cs->lt_ws) CUDA_OK(cudaFree(cs->lt_ws));
    if (cs->dnn) DNN_OK(cudnnDestroy(cs->dnn));
    if (cs->lt) LT_OK(cublasLtDestroy(cs->lt));
    if (cs->pool) CUDA_OK(cudaMemPoolDestroy(cs->pool)); /* the arena has given back its blocks */
    free(cs->plain);
    if (cs->stream) CUDA_OK(cudaStreamDestroy(cs->stream));
    /* what failed while tearing down has nobody left to be reported to */
    if (cu_cur == cs) cu_cur = NULL;
    free(cs);
    free(be);
}

static const ddps_backend_ops cuda_ops = {
    .name = "cuda",
    .destroy = cu_destroy,
    .alloc = cu_alloc,
    .reserve = NULL, /* GPU memory cannot be backed on first touch: the arena grows by blocks */
    .unreserve = NULL,
    .free = cu_free,
    .write = cu_write,
    .read = cu_read,
    .sync = cu_sync,
    .make_linear = cu_make_linear,
    .make_conv = cu_make_conv,
    .make_table = cu_make_table,
    .free_weight = cu_free_weight,
    .linear = cu_linear,
    .conv2d = cu_conv2d,
    .group_norm = cu_group_norm,
    .layer_norm = cu_layer_norm,
    .attention = cu_attention,
    .geglu = cu_geglu,
    .activate = cu_activate,
    .axpby = cu_axpby,
    .upsample_nearest = cu_upsample_nearest,
    .concat_c = cu_concat_c,
    .embed = cu_embed,
    .map_fill = cu_map_fill,
    .map_write = cu_map_write,
    .map_read = cu_map_read,
    .sqdiff_acc = cu_sqdiff_acc,
    .resize_bilinear_cmean = cu_resize_bilinear_cmean,
    .avg_pool = cu_avg_pool,
    .global_avg = cu_global_avg,
    .poll = cu_poll,
};

/* The activation pool; without one (a device without memory pools) the
 * backend falls back to cudaMalloc / cudaFree. */
static void pool_create(cu_state *cs, int device) {
    int ok = 0;
    const char *np = getenv("DDPS_CUDA_NO_POOL");
    if ((np && *np && strcmp(np, "0") != 0) ||
        cudaDeviceGetAttribute(&ok, cudaDevAttrMemoryPoolsSupported, device) != cudaSuccess || !ok) {
        cudaGetLastError();
        return;
    }
    struct cudaMemPoolProps props;
    memset(&props, 0, sizeof props);
    props.allocType = cudaMemAllocationTypePinned;
    props.handleTypes = cudaMemHandleTypeNone;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = device;
    uint64_t keep = UINT64_MAX; /* never give cached blocks back on synchronisation */
    if (cudaMemPoolCreate(&cs->pool, &props) != cudaSuccess) {
        cudaGetLastError();
        cs->pool = NULL;
        return;
    }
    cudaError_t e = cudaMemPoolSetAttribute(cs->pool, cudaMemPoolAttrReleaseThreshold, &keep);
    /* a trial: one block taken and given back in stream order */
    void *p = NULL;
    if (e == cudaSuccess) e = cudaMallocFromPoolAsync(&p, (size_t)1 << 20, cs->pool, cs->stream);
    if (e == cudaSuccess) e = cudaFreeAsync(p, cs->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(cs->stream);
    if (e != cudaSuccess) {
        cudaGetLastError();
        ddps_debug("cuda: the memory pool failed its trial (%s): cudaMalloc / cudaFree instead", cudaGetErrorString(e));
        if (cudaMemPoolDestroy(cs->pool) != cudaSuccess) cudaGetLastError();
        cs->pool = NULL;
    }
}

/* The page-locked write slots; without them (no page-locked memory to
 * spare) every write synchronises. */
static void pinned_create(cu_state *cs) {
    void *p = NULL;
    if (cudaMallocHost(&p, PIN_SLOTS * PIN_SLOT_BYTES) != cudaSuccess) {
        cudaGetLastError();
        return;
    }
    int made = 0;
    while (made < PIN_SLOTS && cudaEventCreateWithFlags(&cs->pin_ev[made], cudaEventDisableTiming) == cudaSuccess) made++;
    if (made < PIN_SLOTS) {
        cudaGetLastError();
        while (made > 0) CUDA_OK(cudaEventDestroy(cs->pin_ev[--made]));
        CUDA_OK(cudaFreeHost(p));
        return;
    }
    cs->pinned = p;
}

/* Why there is no usable CUDA device, from cudaGetDeviceCount's error e
 * (driver missing or too old, or e's text); returns -1. */
static int no_device(cudaError_t e, ddps_err *err) {
    int drv = 0, rt = 0;
    const char *why = cudaGetErrorString(e);
    cudaGetLastError();
    if (e == cudaErrorInsufficientDriver) {
        if (cudaDriverGetVersion(&drv) != cudaSuccess) drv = 0;
        if (cudaRuntimeGetVersion(&rt) != cudaSuccess) rt = 0;
        cudaGetLastError();
        if (drv == 0) return ddps_fail(err, "no CUDA device (no NVIDIA driver found)");
        return ddps_fail(err, "no CUDA device (driver too old: it supports CUDA %d.%d, this build needs %d.%d)",
                         drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
    }
    return ddps_fail(err, "no CUDA device (%s)", why);
}

/* Selects CUDA device `device` and checks it can run this build at this
 * precision: *prop and *optin (shared memory per block, opt-in) get its
 * properties. Returns 0 or -1 with err. */
static int device_open(ddps_precision precision, int device, struct cudaDeviceProp *prop, int *optin, ddps_err *err) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) return no_device(e, err);
    if (count < 1) return ddps_fail(err, "no CUDA device (none found)");
    if (device < 0 || device >= count)
        return ddps_fail(err, "--device cuda:%d: no such CUDA device (%d found)", device, count);
    if ((e = cudaSetDevice(device)) != cudaSuccess) {
        cudaGetLastError();
        return ddps_fail(err, "CUDA device %d: %s", device, cudaGetErrorString(e));
    }
    if ((e = cudaGetDeviceProperties(prop, device)) != cudaSuccess) {
        cudaGetLastError();
        return ddps_fail(err, "CUDA device %d: %s", device, cudaGetErrorString(e));
    }
    char why[256];
    if (ddps_cuk_probe(why, sizeof why) != 0)
        return ddps_fail(err,
                         "CUDA device %d (%s, compute capability %d.%d): %s (rebuild with CMAKE_CUDA_ARCHITECTURES "
                         "including %d%d)",
                         device, prop->name, prop->major, prop->minor, why, prop->major, prop->minor);
    *optin = 0;
    if ((e = cudaDeviceGetAttribute(optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device)) != cudaSuccess) {
        cudaGetLastError();
        return ddps_fail(err, "CUDA device %d: cudaDeviceGetAttribute (shared memory per block): %s", device,
                         cudaGetErrorString(e));
    }
    if (precision != DDPS_PREC_F32 && prop->major < 8)
        return ddps_fail(err, "--precision %s: CUDA device %d (%s) has no bf16/f16 tensor cores (use f32)",
                         ddps_precision_name(precision), device, prop->name);
    return 0;
}

/* The stream, pools, workspace and library handles of cs; on the first
 * failure returns what failed (msg gets why), else NULL. */
static const char *handles_create(cu_state *cs, int device, char *msg, size_t cap) {
    cudaError_t e;
    cublasStatus_t bs;
    cudnnStatus_t ds;
    if ((e = cudaStreamCreateWithFlags(&cs->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        snprintf(msg, cap, "%s", cudaGetErrorString(e));
        cs->stream = NULL;
        return "cudaStreamCreate";
    }
    pool_create(cs, device);
    pinned_create(cs);
    if (cudaMalloc(&cs->lt_ws, LT_WORKSPACE) != cudaSuccess) {
        snprintf(msg, cap, "out of memory");
        cs->lt_ws = NULL;
        return "cudaMalloc (32 MB of cuBLASLt workspace)";
    }
    if ((bs = cublasLtCreate(&cs->lt)) != CUBLAS_STATUS_SUCCESS) {
        snprintf(msg, cap, "%s", cublasGetStatusString(bs));
        cs->lt = NULL;
        return "cublasLtCreate";
    }
    if ((ds = cudnnCreate(&cs->dnn)) != CUDNN_STATUS_SUCCESS) {
        snprintf(msg, cap, "%s", cudnnGetErrorString(ds));
        cs->dnn = NULL;
        return "cudnnCreate";
    }
    if ((ds = cudnnSetStream(cs->dnn, cs->stream)) != CUDNN_STATUS_SUCCESS) {
        snprintf(msg, cap, "%s", cudnnGetErrorString(ds));
        return "cudnnSetStream";
    }
    return NULL;
}

ddps_backend *ddps_cuda_backend_new(ddps_precision precision, int device, ddps_err *err) {
    if (precision != DDPS_PREC_F32 && precision != DDPS_PREC_BF16 && precision != DDPS_PREC_F16)
        return ddps_fail(err, "CUDA: unknown precision %d", (int)precision), NULL;
    cu_orphan.set = 0; /* a new backend starts clean */
    struct cudaDeviceProp prop;
    int optin;
    if (device_open(precision, device, &prop, &optin, err) != 0) return NULL;

    cu_state *cs = ddps_calloc(1, sizeof *cs);
    ddps_backend *be = ddps_calloc(1, sizeof *be);
    be->ops = &cuda_ops;
    be->precision = precision;
    be->act_size = precision == DDPS_PREC_F32 ? 4 : 2;
    be->align = 256;
    be->impl = cs;
    cu_cur = cs; /* what fails while it is being made is its own */
    cs->device = device;
    cs->sm_count = prop.multiProcessorCount;
    cs->smem_optin = optin;
    cs->dt = precision == DDPS_PREC_F32 ? CU_F32 : precision == DDPS_PREC_BF16 ? CU_BF16 : CU_F16;
    const char *dir = getenv("DDPS_CUDA_DIRECT"), *tf = getenv("DDPS_CUDA_TF32"), *dbg = getenv("DDPS_CUDA_DEBUG");
    cs->direct = dir && *dir && strcmp(dir, "0") != 0;
    cs->tf32 = tf && *tf && strcmp(tf, "0") != 0;
    cs->debug = dbg && *dbg && strcmp(dbg, "0") != 0;
    const char *split = getenv("DDPS_CUDA_CONV_SPLIT");
    cs->dnn_max_elems = split && atol(split) > 0 && (size_t)atol(split) < DNN_MAX_ELEMS ? (size_t)atol(split) : DNN_MAX_ELEMS;
    if (cs->debug) ddps_cu_debug = 1;
    /* Handles and buffers; the first failure is reported (with what failed). */
    char msg[256] = "";
    const char *fail = handles_create(cs, device, msg, sizeof msg);
    if (fail) {
        cudaGetLastError();
        ddps_backend_free(be);
        return ddps_fail(err, "CUDA device %d (%s): %s failed: %s", device, prop.name, fail, msg), NULL;
    }
    ddps_debug("cuda: device %d: %s, compute capability %d.%d, %d SMs, %.1f GB; precision %s%s%s%s", device, prop.name,
               prop.major, prop.minor, prop.multiProcessorCount, (double)prop.totalGlobalMem / 1e9,
               ddps_precision_name(precision), cs->direct ? ", direct kernels" : "",
               cs->pool ? "" : ", no memory pool", cs->debug ? ", debug: checked after every op" : "");
    if (!cs->pinned) ddps_debug("cuda: no page-locked write slots: every write synchronises");
    if (cs->debug) ddps_warn("DDPS_CUDA_DEBUG: every CUDA op synchronises and is checked (slow)");
    ddps_backend_guard(be);
    return be;
}

int ddps_cuda_slow_plans(const ddps_backend *be) { return be ? ((const cu_state *)be->impl)->n_slow : 0; }
