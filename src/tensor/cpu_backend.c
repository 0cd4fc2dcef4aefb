/* CPU backend: oneDNN for convolutions and matrix products, our own kernels
 * (cpu_kernels.c) for the rest.
 *
 * Why oneDNN: measured on the 2-core AVX-512 development machine, its JIT
 * kernels reach ~225 GFLOP/s in f32 matrix products and ~440 in bf16 (2x),
 * and its Winograd F(4x4,3x3) convolution 450-650 effective GFLOP/s on the
 * UNet's large-spatial layers, without any environment tuning; it also picks
 * AVX2 kernels on laptops. See BENCHMARKS.md.
 *
 * Weights are laid out once at load in the format oneDNN prefers. Some
 * kernels want a different weight layout for a different input shape (bf16
 * convolutions do); a layer then keeps one extra copy per layout, made once by
 * a reorder. Primitives are cached per layer and input shape, with their
 * memory objects, so a steady-state call allocates nothing.
 *
 * Convolution policy (f32): 3x3 stride-1 layers with >= 64 channels in and
 * out keep their weights in the blocked layout that Winograd (oneDNN's
 * "training" variant, which transforms weights per call instead of storing
 * them 4x larger) and the direct kernel both accept; each call picks
 * Winograd when the batch has >= 512 output positions (n*h*w), else direct.
 * bf16 precision uses direct bf16 kernels throughout (f32 accumulation).
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "tensor/cpu_internal.h"
#include "util/fs.h"

#define WINO_MIN_POSITIONS 512
#define MAX_FMT 4

enum { W_LINEAR = 1, W_CONV = 2, W_TABLE = 3 };

typedef struct {
    dnnl_memory_desc_t md;
    void *data;
} wfmt;

/* One cached primitive of a layer for one input shape. */
typedef struct prim_entry {
    int key[8];
    dnnl_primitive_t prim;
    int fmt; /* index into the weight's formats */
    int nargs;
    dnnl_exec_arg_t args[6];
    /* Winograd path: activations reordered NHWC <-> blocked around the conv. */
    dnnl_primitive_t r_in, r_out;
    dnnl_exec_arg_t r_in_args[2], r_out_args[2];
    size_t src_bytes, dst_bytes; /* sizes of the blocked/bf16 temporaries (0 = none) */
    int src_bf16;                /* source must be converted to bf16 first */
    struct prim_entry *next;
} prim_entry;

struct ddps_weight {
    int kind;
    int out, in, kh, kw;
    dnnl_data_type_t dt;
    int wino; /* weights in a layout Winograd accepts */
    wfmt fmt[MAX_FMT];
    int nfmt;
    float *bias;
    float *table;
    int rows, cols;
    prim_entry *cache;
};

/* Failures. Helpers return the oneDNN status of their first failed call
 * (DNNL_RET); the op that called them records it on the backend as a sticky
 * error (dnnl_fail) and returns. */
#define DNNL_RET(call)                                                                                  \
    do {                                                                                                \
        dnnl_status_t st_ = (call);                                                                     \
        if (st_ != dnnl_success) return st_;                                                            \
    } while (0)

/* Records a failed oneDNN step `what` on the backend (resource when oneDNN
 * ran out of memory); returns -1. */
static int dnnl_fail(ddps_backend *be, dnnl_status_t st, const char *what) {
    return ddps_backend_fail(be, st == dnnl_out_of_memory ? DDPS_KIND_RESOURCE : DDPS_KIND_FAILURE,
                             "oneDNN %s failed (status %d)", what, (int)st);
}

/* ---------- buffers and memory ---------- */

void *ddps_cpu_buf_get(cpu_state *cs, cpu_buf *b, size_t bytes) {
    if (bytes > b->size) {
        free(b->p);
        b->p = NULL;
        b->size = 0;
        size_t n = (bytes + 4095) & ~(size_t)4095;
        if (n < bytes || posix_memalign(&b->p, 64, n) != 0) {
            b->p = NULL;
            ddps_backend_fail(cs->be, DDPS_KIND_RESOURCE, "out of memory (%zu bytes of scratch)", bytes);
            return NULL;
        }
        b->size = n;
    }
    return b->p;
}

void ddps_cpu_buf_free(cpu_buf *b) {
    free(b->p);
    b->p = NULL;
    b->size = 0;
}

static void *cpu_alloc(ddps_backend *be, size_t bytes) {
    (void)be;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
    return p;
}

static void cpu_free(ddps_backend *be, void *p) {
    (void)be;
    free(p);
}

/* The arena: address space reserved up front, backed only when touched, so
 * it grows in place and its peak stays resident for reuse. */
static void *cpu_reserve(ddps_backend *be, size_t *bytes) {
    (void)be;
    size_t want = (size_t)256 << 30;
    void *p = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return NULL;
    *bytes = want;
    return p;
}

static void cpu_unreserve(ddps_backend *be, void *p, size_t bytes) {
    (void)be;
    munmap(p, bytes);
}

static void cpu_write(ddps_backend *be, ddps_tensor *t, const float *host) {
    (void)be;
    memcpy(t->data, host, ddps_numel(t) * sizeof(float));
}

static void cpu_read(ddps_backend *be, float *host, const ddps_tensor *t) {
    (void)be;
    memcpy(host, t->data, ddps_numel(t) * sizeof(float));
}

static void cpu_sync(ddps_backend *be) {
    dnnl_status_t st = dnnl_stream_wait(cpu_of(be)->stream);
    if (st != dnnl_success) dnnl_fail(be, st, "stream wait");
}

const float *ddps_cpu_table(const ddps_weight *w) { return w->table; }

/* ---------- weights ---------- */

static ddps_weight *weight_new(int kind) {
    ddps_weight *w = ddps_calloc(1, sizeof *w);
    w->kind = kind;
    return w;
}

static void cache_free(prim_entry *e) {
    while (e) {
        prim_entry *n = e->next;
        if (e->prim) dnnl_primitive_destroy(e->prim);
        for (int i = 0; i < e->nargs; i++) dnnl_memory_destroy(e->args[i].memory);
        if (e->r_in) {
            dnnl_primitive_destroy(e->r_in);
            for (int i = 0; i < 2; i++) dnnl_memory_destroy(e->r_in_args[i].memory);
        }
        if (e->r_out) {
            dnnl_primitive_destroy(e->r_out);
            for (int i = 0; i < 2; i++) dnnl_memory_destroy(e->r_out_args[i].memory);
        }
        free(e);
        e = n;
    }
}

static void cpu_free_weight(ddps_backend *be, ddps_weight *w) {
    (void)be;
    if (!w) return;
    cache_free(w->cache);
    for (int i = 0; i < w->nfmt; i++) free(w->fmt[i].data);
    free(w->bias);
    free(w->table);
    free(w);
}

static const char *impl_name(const_dnnl_primitive_desc_t pd) {
    const char *s = "?";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s);
    return s;
}

static int is_reference_impl(const_dnnl_primitive_desc_t pd) { return strncmp(impl_name(pd), "ref", 3) == 0; }

/* Reorders src (described by src_md) into a new buffer *out with layout
 * dst_md. On failure *out is NULL and nothing is left allocated. */
static dnnl_status_t reorder_new(cpu_state *cs, const dnnl_memory_desc_t *src_md, const void *src,
                                 const dnnl_memory_desc_t *dst_md, void **out) {
    size_t bytes = dnnl_memory_desc_get_size(dst_md);
    void *dst = NULL;
    *out = NULL;
    if (posix_memalign(&dst, 64, bytes ? bytes : 64) != 0) return dnnl_out_of_memory;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    dnnl_memory_t ms = NULL, md = NULL;
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(&rpd, src_md, cs->eng, dst_md, cs->eng, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&r, rpd);
    if (st == dnnl_success) st = dnnl_memory_create(&ms, src_md, cs->eng, (void *)src);
    if (st == dnnl_success) st = dnnl_memory_create(&md, dst_md, cs->eng, dst);
    if (st == dnnl_success) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, md}};
        st = dnnl_primitive_execute(r, cs->stream, 2, args);
    }
    if (st == dnnl_success) st = dnnl_stream_wait(cs->stream);
    if (ms) dnnl_memory_destroy(ms);
    if (md) dnnl_memory_destroy(md);
    if (r) dnnl_primitive_destroy(r);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (st != dnnl_success) {
        free(dst);
        return st;
    }
    *out = dst;
    return dnnl_success;
}

static dnnl_data_type_t compute_dt(ddps_backend *be) {
    return be->precision == DDPS_PREC_BF16 ? dnnl_bf16 : dnnl_f32;
}

/* Primitive descriptors. Weight md NULL = let oneDNN choose ("any"). */
static dnnl_status_t matmul_pd(cpu_state *cs, dnnl_primitive_desc_t *pd, long M, int K, int N, dnnl_data_type_t dt,
                               const dnnl_memory_desc_t *wmd, int has_bias, ddps_act act, int accumulate) {
    dnnl_memory_desc_t src, wei, dst, bia;
    dnnl_dims_t sd = {M, K}, wd = {K, N}, dd = {M, N}, bd = {1, N};
    DNNL_RET(dnnl_memory_desc_init_by_tag(&src, 2, sd, dt, dnnl_ab));
    if (wmd)
        wei = *wmd;
    else
        DNNL_RET(dnnl_memory_desc_init_by_tag(&wei, 2, wd, dt, dnnl_format_tag_any));
    DNNL_RET(dnnl_memory_desc_init_by_tag(&dst, 2, dd, dnnl_f32, dnnl_ab));
    DNNL_RET(dnnl_memory_desc_init_by_tag(&bia, 2, bd, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t md;
    DNNL_RET(dnnl_matmul_desc_init(&md, &src, &wei, has_bias ? &bia : NULL, &dst));
    dnnl_primitive_attr_t attr;
    DNNL_RET(dnnl_primitive_attr_create(&attr));
    dnnl_post_ops_t po = NULL;
    dnnl_status_t st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (st == dnnl_success) st = dnnl_post_ops_create(&po);
    if (st == dnnl_success && accumulate) st = dnnl_post_ops_append_sum(po, 1.0f);
    if (st == dnnl_success && act == DDPS_ACT_GELU)
        st = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf, 0, 0);
    if (st == dnnl_success && act == DDPS_ACT_SILU)
        st = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_swish, 1.0f, 0);
    if (st == dnnl_success && act == DDPS_ACT_QUICK_GELU)
        st = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_swish, 1.702f, 0);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, po);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(pd, &md, attr, cs->eng, NULL);
    if (po) dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return st;
}

typedef struct {
    int n, h, w, ho, wo, stride, pad[4];
} conv_shape;

/* Adds a sum post-op (dst += result) to attr. */
static dnnl_status_t attr_sum(dnnl_primitive_attr_t attr) {
    dnnl_post_ops_t po;
    DNNL_RET(dnnl_post_ops_create(&po));
    dnnl_status_t st = dnnl_post_ops_append_sum(po, 1.0f);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, po);
    dnnl_post_ops_destroy(po);
    return st;
}

/* wino: Winograd with blocked activations; else direct with NHWC activations. */
static dnnl_status_t conv_pd(cpu_state *cs, dnnl_primitive_desc_t *pd, const ddps_weight *w, const conv_shape *s,
                             dnnl_data_type_t dt, const dnnl_memory_desc_t *wmd, int wino, int accumulate) {
    dnnl_memory_desc_t src, wei, bia, dst;
    dnnl_dims_t sd = {s->n, w->in, s->h, s->w}, wd = {w->out, w->in, w->kh, w->kw}, bd = {w->out},
                dd = {s->n, w->out, s->ho, s->wo};
    DNNL_RET(dnnl_memory_desc_init_by_tag(&src, 4, sd, wino ? dnnl_f32 : dt, wino ? dnnl_format_tag_any : dnnl_nhwc));
    if (wmd)
        wei = *wmd;
    else
        DNNL_RET(dnnl_memory_desc_init_by_tag(&wei, 4, wd, wino ? dnnl_f32 : dt, dnnl_format_tag_any));
    DNNL_RET(dnnl_memory_desc_init_by_tag(&bia, 1, bd, dnnl_f32, dnnl_x));
    DNNL_RET(dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_f32, wino ? dnnl_format_tag_any : dnnl_nhwc));
    dnnl_dims_t strides = {s->stride, s->stride}, pl = {s->pad[0], s->pad[1]}, pr = {s->pad[2], s->pad[3]};
    dnnl_convolution_desc_t cd;
    /* forward_training makes oneDNN's Winograd transform weights per call
     * rather than require a 4x larger pre-transformed copy. */
    dnnl_status_t st = dnnl_convolution_forward_desc_init(
        &cd, wino ? dnnl_forward_training : dnnl_forward_inference,
        wino ? dnnl_convolution_winograd : dnnl_convolution_direct, &src, &wei, w->bias ? &bia : NULL, &dst,
        strides, pl, pr);
    if (st != dnnl_success) return st;
    dnnl_primitive_attr_t attr;
    DNNL_RET(dnnl_primitive_attr_create(&attr));
    st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (st == dnnl_success && accumulate && !wino) st = attr_sum(attr);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(pd, &cd, attr, cs->eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    return st;
}

/* End of a weight constructor: w with its first layout, or (st failed:
 * the reorder into that layout) NULL with the reason in err. */
static ddps_weight *layout_done(ddps_backend *be, ddps_weight *w, dnnl_status_t st, ddps_err *err) {
    if (st == dnnl_success) {
        w->nfmt = 1;
        return w;
    }
    int out = w->out, in = w->in;
    cpu_free_weight(be, w);
    return ddps_fail_kind(err, st == dnnl_out_of_memory ? DDPS_KIND_RESOURCE : DDPS_KIND_FAILURE,
                          "oneDNN cannot lay out %d x %d weights (status %d)", out, in, (int)st),
           NULL;
}

static ddps_weight *cpu_make_linear(ddps_backend *be, const float *wt, const float *b, int out, int in,
                                    ddps_err *err) {
    cpu_state *cs = cpu_of(be);
    ddps_weight *w = weight_new(W_LINEAR);
    w->out = out;
    w->in = in;
    w->dt = compute_dt(be);
    if (b) {
        w->bias = ddps_malloc((size_t)out * sizeof(float));
        memcpy(w->bias, b, (size_t)out * sizeof(float));
    }
    dnnl_primitive_desc_t pd;
    if (matmul_pd(cs, &pd, 1024, in, out, w->dt, NULL, b != NULL, DDPS_ACT_NONE, 0) != dnnl_success) {
        cpu_free_weight(be, w);
        return ddps_fail(err, "oneDNN has no matrix product for %d x %d weights", out, in), NULL;
    }
    /* PyTorch's [out, in] row-major is oneDNN's [K = in, N = out] with tag "ba". */
    dnnl_memory_desc_t plain;
    dnnl_dims_t dims = {in, out};
    w->fmt[0].md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&plain, 2, dims, dnnl_f32, dnnl_ba);
    if (st == dnnl_success) st = reorder_new(cs, &plain, wt, &w->fmt[0].md, &w->fmt[0].data);
    dnnl_primitive_desc_destroy(pd);
    return layout_done(be, w, st, err);
}

static ddps_weight *cpu_make_conv(ddps_backend *be, const float *wt, const float *b, int out, int in, int kh,
                                  int kw, ddps_err *err) {
    cpu_state *cs = cpu_of(be);
    ddps_weight *w = weight_new(W_CONV);
    w->out = out;
    w->in = in;
    w->kh = kh;
    w->kw = kw;
    w->dt = compute_dt(be);
    if (b) {
        w->bias = ddps_malloc((size_t)out * sizeof(float));
        memcpy(w->bias, b, (size_t)out * sizeof(float));
    }
    /* Reference shape for choosing the layout: 32x32, the UNet's first level
     * at 256 pixels. Other shapes reuse it when their kernels accept it. */
    conv_shape s = {1, 32, 32, 32, 32, 1, {kh / 2, kw / 2, kh / 2, kw / 2}};
    dnnl_primitive_desc_t pd = NULL;
    if (be->precision == DDPS_PREC_F32 && cs->winograd && kh == 3 && kw == 3 && in >= 64 && out >= 64 &&
        conv_pd(cs, &pd, w, &s, dnnl_f32, NULL, 1, 0) == dnnl_success) {
        w->wino = 1;
    } else if (conv_pd(cs, &pd, w, &s, w->dt, NULL, 0, 0) != dnnl_success) {
        cpu_free_weight(be, w);
        return ddps_fail(err, "oneDNN has no convolution for %dx%dx%dx%d weights", out, in, kh, kw), NULL;
    }
    dnnl_memory_desc_t plain;
    dnnl_dims_t dims = {out, in, kh, kw};
    w->fmt[0].md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&plain, 4, dims, dnnl_f32, dnnl_oihw);
    if (st == dnnl_success) st = reorder_new(cs, &plain, wt, &w->fmt[0].md, &w->fmt[0].data);
    dnnl_primitive_desc_destroy(pd);
    return layout_done(be, w, st, err);
}

static ddps_weight *cpu_make_table(ddps_backend *be, const float *v, int rows, int cols, ddps_err *err) {
    (void)be;
    ddps_weight *w = weight_new(W_TABLE);
    w->rows = rows;
    w->cols = cols;
    size_t n = (size_t)rows * (size_t)cols;
    w->table = malloc(n ? n * sizeof(float) : 1);
    if (!w->table) {
        free(w);
        return ddps_fail_kind(err, DDPS_KIND_RESOURCE, "out of memory (%zu bytes for a %d x %d table)",
                              n * sizeof(float), rows, cols),
               NULL;
    }
    memcpy(w->table, v, n * sizeof(float));
    return w;
}

/* Finds a stored weight layout the new primitive accepts with a real kernel,
 * or adds one (a reorder of layout 0). make(pd, wmd) builds the descriptor.
 * Returns the layout's index, or -1 after recording the failure on be (*pd
 * is then NULL). */
typedef dnnl_status_t (*make_pd_fn)(cpu_state *, dnnl_primitive_desc_t *, const void *ctx,
                                    const dnnl_memory_desc_t *wmd);

static int pick_format(ddps_backend *be, ddps_weight *w, make_pd_fn make, const void *ctx, dnnl_primitive_desc_t *pd) {
    cpu_state *cs = cpu_of(be);
    for (int i = 0; i < w->nfmt; i++) {
        if (make(cs, pd, ctx, &w->fmt[i].md) == dnnl_success) {
            if (!is_reference_impl(*pd)) return i;
            dnnl_primitive_desc_destroy(*pd);
        }
    }
    *pd = NULL;
    dnnl_status_t st = make(cs, pd, ctx, NULL);
    if (st != dnnl_success) {
        *pd = NULL;
        return dnnl_fail(be, st, "primitive creation"), -1;
    }
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(*pd, dnnl_query_weights_md, 0);
    for (int i = 0; i < w->nfmt; i++)
        if (dnnl_memory_desc_equal(want, &w->fmt[i].md)) return i;
    int k = w->nfmt;
    if (k == MAX_FMT)
        ddps_backend_fail(be, DDPS_KIND_FAILURE, "internal error: too many weight layouts for one layer");
    else if ((st = reorder_new(cs, &w->fmt[0].md, w->fmt[0].data, want, &w->fmt[k].data)) != dnnl_success)
        dnnl_fail(be, st, "weight reorder");
    if (be->failed) {
        dnnl_primitive_desc_destroy(*pd);
        *pd = NULL;
        return -1;
    }
    w->fmt[k].md = *want;
    w->nfmt++;
    ddps_debug("weight %dx%d: extra layout for %s", w->out, w->in, impl_name(*pd));
    return k;
}

static prim_entry *cache_find(ddps_weight *w, const int key[8]) {
    for (prim_entry *e = w->cache; e; e = e->next)
        if (memcmp(e->key, key, sizeof e->key) == 0) return e;
    return NULL;
}

/* Builds the argument list of a conv/matmul primitive (data handles set per
 * call) and sizes the scratchpad for it. */
static dnnl_status_t entry_args(cpu_state *cs, prim_entry *e, const_dnnl_primitive_desc_t pd, const ddps_weight *w) {
    struct {
        int arg;
        dnnl_query_t q;
        int idx;
    } want[5] = {{DNNL_ARG_SRC, dnnl_query_src_md, 0},
                 {DNNL_ARG_WEIGHTS, dnnl_query_weights_md, 0},
                 {DNNL_ARG_BIAS, dnnl_query_weights_md, 1},
                 {DNNL_ARG_DST, dnnl_query_dst_md, 0},
                 {DNNL_ARG_SCRATCHPAD, dnnl_query_scratchpad_md, 0}};
    e->nargs = 0;
    for (int i = 0; i < 5; i++) {
        if (want[i].arg == DNNL_ARG_BIAS && !w->bias) continue;
        dnnl_memory_t m;
        DNNL_RET(dnnl_memory_create(&m, dnnl_primitive_desc_query_md(pd, want[i].q, want[i].idx), cs->eng,
                                    DNNL_MEMORY_NONE));
        e->args[e->nargs++] = (dnnl_exec_arg_t){want[i].arg, m};
    }
    size_t sp = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));
    return ddps_cpu_buf_get(cs, &cs->scratch, sp) || !sp ? dnnl_success : dnnl_out_of_memory;
}

static dnnl_status_t set_handle(prim_entry *e, int arg, void *p) {
    for (int i = 0; i < e->nargs; i++)
        if (e->args[i].arg == arg) DNNL_RET(dnnl_memory_set_data_handle(e->args[i].memory, p));
    return dnnl_success;
}

/* Runs a cached conv/matmul primitive on src -> dst; a failure is sticky on be. */
static void run_entry(ddps_backend *be, prim_entry *e, ddps_weight *w, void *src, void *dst) {
    cpu_state *cs = cpu_of(be);
    dnnl_status_t st = set_handle(e, DNNL_ARG_SRC, src);
    if (st == dnnl_success) st = set_handle(e, DNNL_ARG_WEIGHTS, w->fmt[e->fmt].data);
    if (st == dnnl_success) st = set_handle(e, DNNL_ARG_BIAS, w->bias);
    if (st == dnnl_success) st = set_handle(e, DNNL_ARG_DST, dst);
    if (st == dnnl_success) st = set_handle(e, DNNL_ARG_SCRATCHPAD, cs->scratch.p);
    if (st == dnnl_success) st = dnnl_primitive_execute(e->prim, cs->stream, e->nargs, e->args);
    if (st != dnnl_success) dnnl_fail(be, st, "primitive execution");
}

/* Finishes a new cache entry built from pd (primitive, arguments) and links
 * it into w's cache; NULL (entry freed, failure sticky on be) on failure. */
static prim_entry *entry_finish(ddps_backend *be, ddps_weight *w, prim_entry *e, dnnl_primitive_desc_t pd,
                                dnnl_status_t st) {
    if (!pd) st = dnnl_runtime_error; /* pick_format recorded why */
    if (st == dnnl_success) st = dnnl_primitive_create(&e->prim, pd);
    if (st == dnnl_success) st = entry_args(cpu_of(be), e, pd, w);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success || be->failed) {
        if (st != dnnl_success) dnnl_fail(be, st, "primitive creation");
        e->next = NULL;
        cache_free(e);
        return NULL;
    }
    e->next = w->cache;
    w->cache = e;
    return e;
}

/* ---------- linear ---------- */

typedef struct {
    long M;
    int K, N;
    dnnl_data_type_t dt;
    int has_bias;
    ddps_act act;
    int accumulate;
} mm_ctx;

static dnnl_status_t make_mm(cpu_state *cs, dnnl_primitive_desc_t *pd, const void *ctx, const dnnl_memory_desc_t *wmd) {
    const mm_ctx *c = ctx;
    return matmul_pd(cs, pd, c->M, c->K, c->N, c->dt, wmd, c->has_bias, c->act, c->accumulate);
}

/* x: [n, h, w, in] -> y: [n, h, w, out] = act(x W^T + b) (+ y when accumulate); W: [out, in], b: [out]
 * (oneDNN matmul with M = n*h*w rows, the weight in the layout picked for this M). */
static void cpu_linear(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_weight *wc, ddps_act act,
                       int accumulate) {
    cpu_state *cs = cpu_of(be);
    ddps_weight *w = (ddps_weight *)wc;
    long M = (long)x->n * x->h * x->w;
    if (x->c != w->in || y->c != w->out || (long)y->n * y->h * y->w != M) {
        ddps_backend_fail(be, DDPS_KIND_FAILURE, "internal error: %d->%d on [%d,%d,%d,%d] -> [%d,%d,%d,%d]", w->in,
                          w->out, x->n, x->h, x->w, x->c, y->n, y->h, y->w, y->c);
        return;
    }
    int key[8] = {1, (int)M, act, accumulate, 0, 0, 0, 0};
    prim_entry *e = cache_find(w, key);
    if (!e) {
        e = ddps_calloc(1, sizeof *e);
        memcpy(e->key, key, sizeof key);
        mm_ctx c = {M, w->in, w->out, w->dt, w->bias != NULL, act, accumulate};
        dnnl_primitive_desc_t pd;
        e->fmt = pick_format(be, w, make_mm, &c, &pd);
        e->src_bf16 = w->dt == dnnl_bf16;
        if (!(e = entry_finish(be, w, e, pd, dnnl_success))) return;
    }
    void *src = x->data;
    if (e->src_bf16) {
        if (!(src = ddps_cpu_buf_get(cs, &cs->tmp_a, ddps_numel(x) * 2))) return;
        ddps_cpu_to_bf16(src, x->data, ddps_numel(x));
    }
    run_entry(be, e, w, src, y->data);
    be->flops += 2.0 * (double)M * w->in * w->out;
}

/* ---------- convolution ---------- */

typedef struct {
    const ddps_weight *w;
    conv_shape s;
    dnnl_data_type_t dt;
    int wino, accumulate;
} conv_ctx;

static dnnl_status_t make_conv(cpu_state *cs, dnnl_primitive_desc_t *pd, const void *ctx,
                               const dnnl_memory_desc_t *wmd) {
    const conv_ctx *c = ctx;
    return conv_pd(cs, pd, c->w, &c->s, c->dt, wmd, c->wino, c->accumulate);
}

/* A reorder primitive from -> to (accumulate: to += from) in *r, with its two
 * memory arguments (data handles set per call). */
static dnnl_status_t make_reorder(cpu_state *cs, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                                  int accumulate, dnnl_primitive_t *r, dnnl_exec_arg_t args[2]) {
    dnnl_primitive_attr_t attr = NULL;
    if (accumulate) {
        DNNL_RET(dnnl_primitive_attr_create(&attr));
        dnnl_status_t st = attr_sum(attr);
        if (st != dnnl_success) {
            dnnl_primitive_attr_destroy(attr);
            return st;
        }
    }
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(&rpd, from, cs->eng, to, cs->eng, attr);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st == dnnl_success) st = dnnl_primitive_create(r, rpd);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    args[0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, NULL};
    args[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, NULL};
    if (st == dnnl_success) st = dnnl_memory_create(&args[0].memory, from, cs->eng, DNNL_MEMORY_NONE);
    if (st == dnnl_success) st = dnnl_memory_create(&args[1].memory, to, cs->eng, DNNL_MEMORY_NONE);
    return st;
}

/* Winograd entries: the NHWC <-> blocked reorders around the convolution. */
static dnnl_status_t wino_reorders(cpu_state *cs, prim_entry *e, const_dnnl_primitive_desc_t pd,
                                   const ddps_tensor *x, const ddps_tensor *y, int accumulate) {
    dnnl_memory_desc_t nhwc_in, nhwc_out;
    dnnl_dims_t di = {x->n, x->c, x->h, x->w}, dout = {y->n, y->c, y->h, y->w};
    DNNL_RET(dnnl_memory_desc_init_by_tag(&nhwc_in, 4, di, dnnl_f32, dnnl_nhwc));
    DNNL_RET(dnnl_memory_desc_init_by_tag(&nhwc_out, 4, dout, dnnl_f32, dnnl_nhwc));
    const dnnl_memory_desc_t *bsrc = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *bdst = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    e->src_bytes = dnnl_memory_desc_get_size(bsrc);
    e->dst_bytes = dnnl_memory_desc_get_size(bdst);
    DNNL_RET(make_reorder(cs, &nhwc_in, bsrc, 0, &e->r_in, e->r_in_args));
    return make_reorder(cs, bdst, &nhwc_out, accumulate, &e->r_out, e->r_out_args);
}

/* The cached convolution entry of w for this shape, made on first use;
 * NULL after recording a failure on be. */
static prim_entry *conv_entry(ddps_backend *be, ddps_weight *w, const conv_shape *s, const ddps_tensor *x,
                              const ddps_tensor *y, int accumulate) {
    int wino = w->wino && s->stride == 1 && (long)x->n * s->ho * s->wo >= WINO_MIN_POSITIONS;
    const int *pad = s->pad;
    int key[8] = {2, x->n, x->h, x->w, s->stride, pad[0] | pad[1] << 8 | pad[2] << 16 | pad[3] << 24, accumulate,
                  wino};
    prim_entry *e = cache_find(w, key);
    if (e) return e;
    e = ddps_calloc(1, sizeof *e);
    memcpy(e->key, key, sizeof key);
    conv_ctx c = {w, *s, w->wino ? dnnl_f32 : w->dt, wino, accumulate};
    dnnl_primitive_desc_t pd;
    e->fmt = pick_format(be, w, make_conv, &c, &pd);
    e->src_bf16 = !w->wino && w->dt == dnnl_bf16;
    dnnl_status_t st = dnnl_success;
    if (pd && wino) st = wino_reorders(cpu_of(be), e, pd, x, y, accumulate);
    return entry_finish(be, w, e, pd, st);
}

/* x: [n, H, W, in] -> y: [n, H', W', out] (+ y when accumulate); W: [out, in, kh, kw], b: [out];
 * H' = (H + pad[0] + pad[2] - kh) / stride + 1 (pad = top, left, bottom, right), likewise W'. */
static void cpu_conv2d(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_weight *wc, int stride,
                       const int pad[4], int accumulate) {
    cpu_state *cs = cpu_of(be);
    ddps_weight *w = (ddps_weight *)wc;
    conv_shape s = {x->n, x->h, x->w, 0, 0, stride, {pad[0], pad[1], pad[2], pad[3]}};
    s.ho = (x->h + pad[0] + pad[2] - w->kh) / stride + 1;
    s.wo = (x->w + pad[1] + pad[3] - w->kw) / stride + 1;
    if (x->c != w->in || y->c != w->out || y->n != x->n || y->h != s.ho || y->w != s.wo) {
        ddps_backend_fail(be, DDPS_KIND_FAILURE, "internal error: %dx%d k%d s%d on [%d,%d,%d,%d] -> [%d,%d,%d,%d]",
                          w->out, w->in, w->kh, stride, x->n, x->h, x->w, x->c, y->n, y->h, y->w, y->c);
        return;
    }
    be->flops += 2.0 * x->n * s.ho * s.wo * (double)w->out * w->in * w->kh * w->kw;
    prim_entry *e = conv_entry(be, w, &s, x, y, accumulate);
    if (!e) return;
    if (e->r_in) {
        void *bs = ddps_cpu_buf_get(cs, &cs->tmp_a, e->src_bytes);
        void *bd = bs ? ddps_cpu_buf_get(cs, &cs->tmp_b, e->dst_bytes) : NULL;
        if (!bd) return;
        dnnl_status_t st = dnnl_memory_set_data_handle(e->r_in_args[0].memory, x->data);
        if (st == dnnl_success) st = dnnl_memory_set_data_handle(e->r_in_args[1].memory, bs);
        if (st == dnnl_success) st = dnnl_primitive_execute(e->r_in, cs->stream, 2, e->r_in_args);
        if (st != dnnl_success) {
            dnnl_fail(be, st, "reorder execution");
            return;
        }
        run_entry(be, e, w, bs, bd);
        if (be->failed) return;
        st = dnnl_memory_set_data_handle(e->r_out_args[0].memory, bd);
        if (st == dnnl_success) st = dnnl_memory_set_data_handle(e->r_out_args[1].memory, y->data);
        if (st == dnnl_success) st = dnnl_primitive_execute(e->r_out, cs->stream, 2, e->r_out_args);
        if (st != dnnl_success) dnnl_fail(be, st, "reorder execution");
        return;
    }
    void *src = x->data;
    if (e->src_bf16) {
        if (!(src = ddps_cpu_buf_get(cs, &cs->tmp_a, ddps_numel(x) * 2))) return;
        ddps_cpu_to_bf16(src, x->data, ddps_numel(x));
    }
    run_entry(be, e, w, src, y->data);
}

/* ---------- attention (kernel in cpu_attention.c) ---------- */

/* q: [B, hq, wq, C], k, v: [B, hk, wk, C] -> y: [B, hq, wq, C]; heads of C/heads channels,
 * softmax(q k^T / sqrt(C/heads)) v over Lk = hk*wk keys (causal: key j <= query i). */
static void cpu_attention(ddps_backend *be, ddps_tensor *y, const ddps_tensor *q, const ddps_tensor *k,
                          const ddps_tensor *v, int heads, int causal) {
    long B = q->n, Lq = (long)q->h * q->w, Lk = (long)k->h * k->w, C = q->c;
    if (C % heads || k->c != C || v->c != C || k->n != B || v->n != B || (long)v->h * v->w != Lk || y->c != C ||
        y->n != B || (long)y->h * y->w != Lq) {
        ddps_backend_fail(be, DDPS_KIND_FAILURE, "internal error: shapes q [%d,%d,%d,%d] k [%d,%d,%d,%d] heads %d",
                          q->n, q->h, q->w, q->c, k->n, k->h, k->w, k->c, heads);
        return;
    }
    be->flops += 4.0 * B * (double)Lq * Lk * C;
    ddps_cpu_attention_kernel(cpu_of(be), y->data, q->data, k->data, v->data, (int)B, (int)Lq, (int)Lk, heads, (int)C,
                              causal);
}

/* ---------- backend object ---------- */

static void cpu_destroy(ddps_backend *be) {
    cpu_state *cs = cpu_of(be);
    ddps_cpu_buf_free(&cs->scratch);
    ddps_cpu_buf_free(&cs->tmp_a);
    ddps_cpu_buf_free(&cs->tmp_b);
    ddps_cpu_buf_free(&cs->tmp_c);
    ddps_cpu_buf_free(&cs->stats);
    dnnl_stream_destroy(cs->stream);
    dnnl_engine_destroy(cs->eng);
    free(cs);
    free(be);
}

static const ddps_backend_ops cpu_ops = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .reserve = cpu_reserve,
    .unreserve = cpu_unreserve,
    .free = cpu_free,
    .write = cpu_write,
    .read = cpu_read,
    .sync = cpu_sync,
    .make_linear = cpu_make_linear,
    .make_conv = cpu_make_conv,
    .make_table = cpu_make_table,
    .free_weight = cpu_free_weight,
    .linear = cpu_linear,
    .conv2d = cpu_conv2d,
    .group_norm = ddps_cpu_group_norm,
    .layer_norm = ddps_cpu_layer_norm,
    .attention = cpu_attention,
    .geglu = ddps_cpu_geglu,
    .activate = ddps_cpu_activate,
    .axpby = ddps_cpu_axpby,
    .upsample_nearest = ddps_cpu_upsample_nearest,
    .concat_c = ddps_cpu_concat_c,
    .embed = ddps_cpu_embed,
    .map_fill = ddps_cpu_map_fill,
    .map_write = cpu_write, /* maps and activations are both f32 here */
    .map_read = cpu_read,
    .sqdiff_acc = ddps_cpu_sqdiff_acc,
    .resize_bilinear_cmean = ddps_cpu_resize_bilinear_cmean,
    .avg_pool = ddps_cpu_avg_pool,
    .global_avg = ddps_cpu_global_avg,
};

ddps_backend *ddps_cpu_backend_new(ddps_precision precision, int threads, ddps_err *err) {
    if (precision != DDPS_PREC_F32 && precision != DDPS_PREC_BF16)
        return ddps_fail(err, "the CPU supports f32 and bf16 precision"), NULL;
    cpu_state *cs = ddps_calloc(1, sizeof *cs);
    if (threads > 0) omp_set_num_threads(threads);
    cs->threads = omp_get_max_threads();
    const char *nw = getenv("DDPS_NO_WINOGRAD");
    cs->winograd = !(nw && *nw && strcmp(nw, "0") != 0);
    if (dnnl_engine_create(&cs->eng, dnnl_cpu, 0) != dnnl_success) {
        free(cs);
        return ddps_fail(err, "oneDNN: cannot create a CPU engine"), NULL;
    }
    if (dnnl_stream_create(&cs->stream, cs->eng, dnnl_stream_default_flags) != dnnl_success) {
        dnnl_engine_destroy(cs->eng);
        free(cs);
        return ddps_fail(err, "oneDNN: cannot create a CPU stream"), NULL;
    }
    ddps_backend *be = ddps_calloc(1, sizeof *be);
    cs->be = be;
    be->ops = &cpu_ops;
    be->precision = precision;
    be->act_size = sizeof(float);
    be->align = 64;
    be->impl = cs;
    if (precision == DDPS_PREC_BF16) {
        /* Refuse a bf16 mode that would run on oneDNN's reference kernels
         * (CPUs without AVX512-BF16 / AVX512-core): it would be slower than f32. */
        dnnl_primitive_desc_t pd = NULL;
        if (matmul_pd(cs, &pd, 64, 64, 64, dnnl_bf16, NULL, 0, DDPS_ACT_NONE, 0) != dnnl_success ||
            is_reference_impl(pd)) {
            if (pd) dnnl_primitive_desc_destroy(pd);
            ddps_backend_free(be);
            return ddps_fail(err, "--precision bf16: this CPU has no fast bf16 kernels (use f32)"), NULL;
        }
        dnnl_primitive_desc_destroy(pd);
    }
    ddps_backend_guard(be);
    return be;
}
