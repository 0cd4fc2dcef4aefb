/* Training ops on oneDNN primitives: convolution (forward, backward data,
 * backward weights with bias), batch normalisation (training with batch
 * statistics, eval with running statistics, backward), max and average
 * pooling, ReLU, inner product. See train/tops.h.
 *
 * Formats: activations NHWC; parameters and their gradients stay in
 * PyTorch's plain layouts (oihw, oi). The primitives choose their own weight
 * layout (oneDNN has fast kernels only for blocked weights: plain oihw with
 * NHWC activations falls back to its reference code, ~100x slower); a
 * convolution or inner product reorders the weights into it before running,
 * or its weight gradient out of it after. Convolutions use oneDNN's direct
 * algorithm, except 3x3 stride-1 ones with >= 64 channels in and out and
 * >= 512 output positions: those use Winograd F(4x4,3x3) forward and
 * backward (20-25% faster steps on ConvNet-3; ~1e-6 relative from direct,
 * well inside the golden checks; DDPS_NO_WINOGRAD=1 turns it off), with the
 * activations reordered from NHWC into the blocked layout it wants and back
 * through arena buffers that live for the call. Every primitive uses a user
 * scratchpad from the arena for the call.
 *
 * Each primitive is made once per shape and kept in the context's cache (a
 * list keyed by the op and its shape) with one memory object per argument;
 * a call sets the data handles and executes.
 */
#include <stdlib.h>
#include <string.h>

#include "tensor/cpu_internal.h"
#include "train/tops.h"
#include "util/fs.h"

#define KEYN 12
#define MAXARGS 10
#define MAXACT 3

struct tr_entry {
    int key[KEYN];
    dnnl_primitive_t prim;
    int nargs;
    int arg[MAXARGS];
    dnnl_memory_t mem[MAXARGS];
    size_t ws_bytes; /* workspace (max pooling) */
    size_t sp_bytes; /* scratchpad (user mode: the context's grow-only buffer) */
    dnnl_memory_t sp_mem;
    /* Activations in a blocked layout (Winograd): argument i is reordered from the caller's NHWC
     * into an arena buffer before execution (out 0) or from it after (out 1). */
    struct {
        int i, out;
        size_t bytes;
        dnnl_primitive_t r;
        dnnl_memory_t plain, blk;
    } act[MAXACT];
    int nact;
    /* Weights in the primitive's own layout: argument warg is reordered from
     * the caller's plain layout before execution (w_after 0) or into it after
     * (w_after 1, a weight gradient), through the context's weight buffer. */
    int warg, w_after;
    dnnl_primitive_t wreorder;
    dnnl_memory_t w_plain, w_prim;
    size_t w_bytes;
    tr_entry *next;
};

enum { K_CONV_F = 1, K_CONV_BD, K_CONV_BW, K_BN_F, K_BN_E, K_BN_B, K_POOL_F, K_POOL_B, K_RELU_F, K_RELU_B,
       K_IP_F, K_IP_BD, K_IP_BW };

#define DNNL_RET(call)                                                                                  \
    do {                                                                                                \
        dnnl_status_t st_ = (call);                                                                     \
        if (st_ != dnnl_success) return st_;                                                            \
    } while (0)

static void entry_free(tr_entry *e) {
    for (int i = 0; i < e->nargs; i++)
        if (e->mem[i]) dnnl_memory_destroy(e->mem[i]);
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->wreorder) dnnl_primitive_destroy(e->wreorder);
    if (e->w_plain) dnnl_memory_destroy(e->w_plain);
    if (e->w_prim) dnnl_memory_destroy(e->w_prim);
    if (e->sp_mem) dnnl_memory_destroy(e->sp_mem);
    for (int i = 0; i < e->nact; i++) {
        if (e->act[i].r) dnnl_primitive_destroy(e->act[i].r);
        if (e->act[i].plain) dnnl_memory_destroy(e->act[i].plain);
        if (e->act[i].blk) dnnl_memory_destroy(e->act[i].blk);
    }
    free(e);
}

tr_ctx *ddps_tr_ctx_new(ddps_backend *be, ddps_err *err) {
    if (!be || !be->inner || strcmp(be->inner->name, "cpu") != 0)
        return ddps_fail(err, "training runs on the CPU backend only (for now)"), NULL;
    tr_ctx *c = ddps_calloc(1, sizeof *c);
    c->be = be;
    c->winograd = cpu_of(be)->winograd; /* on unless DDPS_NO_WINOGRAD=1 */
    return c;
}

/* The attributes of every primitive: a user scratchpad (from the arena for the
 * call, so that a steady-state step allocates nothing: oneDNN's own
 * scratchpads are allocated per execution, and each fresh allocation costs
 * page faults). Made on first use. */
static const_dnnl_primitive_attr_t ctx_attr(tr_ctx *c) {
    if (!c->attr) {
        dnnl_primitive_attr_t a = NULL;
        if (dnnl_primitive_attr_create(&a) != dnnl_success) return NULL;
        dnnl_primitive_attr_set_scratchpad_mode(a, dnnl_scratchpad_mode_user);
        c->attr = a;
    }
    return c->attr;
}

void ddps_tr_ctx_free(tr_ctx *c) {
    if (!c) return;
    tr_entry *e = c->cache;
    while (e) {
        tr_entry *n = e->next;
        entry_free(e);
        e = n;
    }
    free(c->wbuf);
    if (c->attr) dnnl_primitive_attr_destroy(c->attr);
    free(c);
}

/* 1 when the op may run (backend not failed); names the op for messages. */
static int enter(tr_ctx *c, const char *op) {
    if (c->be->failed) return 0;
    c->be->op = op;
    return 1;
}

static void leave(tr_ctx *c) { c->be->op = NULL; }

static int fail_st(tr_ctx *c, dnnl_status_t st, const char *what) {
    return ddps_backend_fail(c->be, st == dnnl_out_of_memory ? DDPS_KIND_RESOURCE : DDPS_KIND_FAILURE,
                             "oneDNN %s failed (status %d)", what, (int)st);
}

static tr_entry *find(tr_ctx *c, const int key[KEYN]) {
    for (tr_entry *e = c->cache; e; e = e->next)
        if (memcmp(e->key, key, sizeof e->key) == 0) return e;
    return NULL;
}

/* The cache entry for key made from pd (destroyed here; st: how building it
 * went): the primitive and one memory per argument args[0..na). NULL after
 * recording a failure. */
/* The reorder of e's weight argument warg between the plain layout and the primitive's (none when equal). */
static dnnl_status_t weight_reorder(cpu_state *cs, tr_entry *e, const_dnnl_primitive_desc_t pd,
                                   const dnnl_memory_desc_t *plain, int warg, int after) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, warg);
    e->warg = warg;
    e->w_after = after;
    if (dnnl_memory_desc_equal(md, plain)) return dnnl_success;
    e->w_bytes = dnnl_memory_desc_get_size(md);
    dnnl_primitive_desc_t rpd = NULL;
    DNNL_RET(dnnl_reorder_primitive_desc_create(&rpd, after ? md : plain, cs->eng, after ? plain : md, cs->eng, NULL));
    dnnl_status_t st = dnnl_primitive_create(&e->wreorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    if (st == dnnl_success) st = dnnl_memory_create(&e->w_plain, plain, cs->eng, DNNL_MEMORY_NONE);
    if (st == dnnl_success) st = dnnl_memory_create(&e->w_prim, md, cs->eng, DNNL_MEMORY_NONE);
    return st;
}

/* plain: the caller's layout of weight argument warg (NULL: no weights). */
static tr_entry *entry_make(tr_ctx *c, const int key[KEYN], dnnl_primitive_desc_t pd, dnnl_status_t st,
                            const int *args, int na, const dnnl_memory_desc_t *plain, int warg, int after) {
    tr_entry *e = ddps_calloc(1, sizeof *e);
    memcpy(e->key, key, sizeof e->key);
    cpu_state *cs = cpu_of(c->be);
    if (st == dnnl_success) st = dnnl_primitive_create(&e->prim, pd);
    if (st == dnnl_success && plain) st = weight_reorder(cs, e, pd, plain, warg, after);
    for (int i = 0; i < na && st == dnnl_success; i++) {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, args[i]);
        e->arg[i] = args[i];
        st = dnnl_memory_create(&e->mem[i], md, cs->eng, DNNL_MEMORY_NONE);
        e->nargs = i + 1;
    }
    if (st == dnnl_success)
        e->ws_bytes = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_workspace_md, 0));
    if (st == dnnl_success) {
        const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        e->sp_bytes = dnnl_memory_desc_get_size(sp);
        if (e->sp_bytes) st = dnnl_memory_create(&e->sp_mem, sp, cs->eng, DNNL_MEMORY_NONE);
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) {
        fail_st(c, st, "primitive creation");
        entry_free(e);
        return NULL;
    }
    e->next = c->cache;
    c->cache = e;
    return e;
}

/* Runs e with ptrs[i] as the data of argument i. */
/* Reorders the weights between plain (the caller's array) and the context's weight buffer. */
static dnnl_status_t run_weight_reorder(tr_ctx *c, tr_entry *e, void *plain) {
    cpu_state *cs = cpu_of(c->be);
    DNNL_RET(dnnl_memory_set_data_handle(e->w_plain, plain));
    DNNL_RET(dnnl_memory_set_data_handle(e->w_prim, c->wbuf));
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, e->w_after ? e->w_prim : e->w_plain},
                            {DNNL_ARG_TO, e->w_after ? e->w_plain : e->w_prim}};
    return dnnl_primitive_execute(e->wreorder, cs->stream, 2, a);
}

/* Reorders activation k of e between the caller's NHWC plain and the blocked buffer blk. */
static dnnl_status_t run_act_reorder(tr_ctx *c, tr_entry *e, int k, void *plain, void *blk) {
    DNNL_RET(dnnl_memory_set_data_handle(e->act[k].plain, plain));
    DNNL_RET(dnnl_memory_set_data_handle(e->act[k].blk, blk));
    int out = e->act[k].out;
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, out ? e->act[k].blk : e->act[k].plain},
                            {DNNL_ARG_TO, out ? e->act[k].plain : e->act[k].blk}};
    return dnnl_primitive_execute(e->act[k].r, cpu_of(c->be)->stream, 2, a);
}

/* For an entry whose primitive chose its own activation layouts (Winograd): a reorder from or to
 * NHWC for every activation argument whose layout is not NHWC. */
static dnnl_status_t act_reorders(tr_ctx *c, tr_entry *e) {
    cpu_state *cs = cpu_of(c->be);
    const_dnnl_primitive_desc_t pd = NULL;
    DNNL_RET(dnnl_primitive_get_primitive_desc(e->prim, &pd));
    for (int i = 0; i < e->nargs; i++) {
        int a = e->arg[i];
        if (a != DNNL_ARG_SRC && a != DNNL_ARG_DST && a != DNNL_ARG_DIFF_DST && a != DNNL_ARG_DIFF_SRC) continue;
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, a);
        dnnl_memory_desc_t plain;
        DNNL_RET(dnnl_memory_desc_init_by_tag(&plain, 4, md->dims, dnnl_f32, dnnl_nhwc));
        if (dnnl_memory_desc_equal(md, &plain)) continue;
        if (e->nact == MAXACT) return dnnl_unimplemented;
        int k = e->nact++, out = a == DNNL_ARG_DST || a == DNNL_ARG_DIFF_SRC;
        e->act[k].i = i;
        e->act[k].out = out;
        e->act[k].bytes = dnnl_memory_desc_get_size(md);
        dnnl_primitive_desc_t rpd = NULL;
        DNNL_RET(dnnl_reorder_primitive_desc_create(&rpd, out ? md : &plain, cs->eng, out ? &plain : md, cs->eng, NULL));
        dnnl_status_t st = dnnl_primitive_create(&e->act[k].r, rpd);
        dnnl_primitive_desc_destroy(rpd);
        DNNL_RET(st);
        DNNL_RET(dnnl_memory_create(&e->act[k].plain, &plain, cs->eng, DNNL_MEMORY_NONE));
        DNNL_RET(dnnl_memory_create(&e->act[k].blk, md, cs->eng, DNNL_MEMORY_NONE));
    }
    return dnnl_success;
}

static void entry_run(tr_ctx *c, tr_entry *e, void *const *ptrs) {
    cpu_state *cs = cpu_of(c->be);
    dnnl_exec_arg_t a[MAXARGS + 1];
    dnnl_status_t st = dnnl_success;
    void *plain = NULL;
    if (e->wreorder && e->w_bytes > c->wbuf_size) {
        free(c->wbuf);
        c->wbuf_size = 0;
        if (posix_memalign(&c->wbuf, 64, e->w_bytes) != 0) {
            c->wbuf = NULL;
            ddps_backend_fail(c->be, DDPS_KIND_RESOURCE, "out of memory (%zu bytes of weights)", e->w_bytes);
            return;
        }
        c->wbuf_size = e->w_bytes;
    }
    /* the scratchpad and blocked activations come from the arena for the call: memory that the
     * step's other temporaries reuse (Winograd's scratchpad is hundreds of MB at 56x56) */
    size_t mark = ddps_mark(c->be);
    void *blk[MAXARGS] = {0}, *sp = NULL;
    if (e->sp_bytes) {
        ddps_tensor t = ddps_new(c->be, 1, 1, 1, (int)((e->sp_bytes + 3) / 4));
        if (!t.data) {
            ddps_release(c->be, mark);
            return;
        }
        sp = t.data;
    }
    for (int k = 0; k < e->nact; k++) {
        ddps_tensor t = ddps_new(c->be, 1, 1, 1, (int)((e->act[k].bytes + 3) / 4));
        if (!t.data) {
            ddps_release(c->be, mark);
            return;
        }
        blk[e->act[k].i] = t.data;
    }
    for (int i = 0; i < e->nargs && st == dnnl_success; i++) {
        void *p = blk[i] ? blk[i] : ptrs[i];
        if (e->wreorder && e->arg[i] == e->warg) plain = p, p = c->wbuf;
        st = dnnl_memory_set_data_handle(e->mem[i], p);
        a[i] = (dnnl_exec_arg_t){e->arg[i], e->mem[i]};
    }
    for (int k = 0; k < e->nact && st == dnnl_success; k++)
        if (!e->act[k].out) st = run_act_reorder(c, e, k, ptrs[e->act[k].i], blk[e->act[k].i]);
    int na = e->nargs;
    if (st == dnnl_success && e->sp_mem) {
        st = dnnl_memory_set_data_handle(e->sp_mem, sp);
        a[na++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->sp_mem};
    }
    if (st == dnnl_success && plain && !e->w_after) st = run_weight_reorder(c, e, plain);
    if (st == dnnl_success) st = dnnl_primitive_execute(e->prim, cs->stream, na, a);
    if (st == dnnl_success && plain && e->w_after) st = run_weight_reorder(c, e, plain);
    for (int k = 0; k < e->nact && st == dnnl_success; k++)
        if (e->act[k].out) st = run_act_reorder(c, e, k, ptrs[e->act[k].i], blk[e->act[k].i]);
    if (st == dnnl_success) st = dnnl_stream_wait(cs->stream);
    if (st != dnnl_success) fail_st(c, st, "primitive execution");
    ddps_release(c->be, mark);
}

static dnnl_status_t md4(dnnl_memory_desc_t *md, int n, int ch, int h, int w, dnnl_format_tag_t tag) {
    dnnl_dims_t d = {n, ch, h, w};
    return dnnl_memory_desc_init_by_tag(md, 4, d, dnnl_f32, tag);
}

static dnnl_status_t md1(dnnl_memory_desc_t *md, long n) {
    dnnl_dims_t d = {n};
    return dnnl_memory_desc_init_by_tag(md, 1, d, dnnl_f32, dnnl_x);
}

static int shape_bad(tr_ctx *c, const ddps_tensor *t, int n, int h, int w, int ch, const char *what) {
    if (t->n == n && t->h == h && t->w == w && t->c == ch) return 0;
    ddps_backend_fail(c->be, DDPS_KIND_FAILURE, "internal error: %s is [%d,%d,%d,%d], expected [%d,%d,%d,%d]", what,
                      t->n, t->h, t->w, t->c, n, h, w, ch);
    return 1;
}

/* ---------- convolution ---------- */

typedef struct {
    dnnl_memory_desc_t src, wei, bia, dst, plain; /* wei: any layout; plain: PyTorch's oihw */
    dnnl_dims_t strides, pad;
    int wino;
} conv_mds;

/* wino: activations in the layout the primitive picks (Winograd wants blocked ones). */
static dnnl_status_t conv_mds_init(conv_mds *m, const tr_conv *l, const ddps_tensor *x, int ho, int wo, int wino) {
    m->wino = wino;
    DNNL_RET(md4(&m->src, x->n, l->in, x->h, x->w, wino ? dnnl_format_tag_any : dnnl_nhwc));
    DNNL_RET(md4(&m->wei, l->out, l->in, l->k, l->k, dnnl_format_tag_any));
    DNNL_RET(md4(&m->plain, l->out, l->in, l->k, l->k, dnnl_oihw));
    DNNL_RET(md1(&m->bia, l->out));
    DNNL_RET(md4(&m->dst, x->n, l->out, ho, wo, wino ? dnnl_format_tag_any : dnnl_nhwc));
    m->strides[0] = m->strides[1] = l->stride;
    m->pad[0] = m->pad[1] = l->pad;
    return dnnl_success;
}

static dnnl_status_t conv_fwd_pd(tr_ctx *c, dnnl_primitive_desc_t *pd, const conv_mds *m, int bias) {
    dnnl_convolution_desc_t d;
    DNNL_RET(dnnl_convolution_forward_desc_init(&d, dnnl_forward_training, m->wino ? dnnl_convolution_winograd : dnnl_convolution_direct, &m->src, &m->wei,
                                                bias ? &m->bia : NULL, &m->dst, m->strides, m->pad, m->pad));
    return dnnl_primitive_desc_create(pd, &d, ctx_attr(c), cpu_of(c->be)->eng, NULL);
}

/* kind: K_CONV_F, K_CONV_BD or K_CONV_BW. */
static dnnl_status_t conv_pd(tr_ctx *c, dnnl_primitive_desc_t *pd, int kind, const conv_mds *m, int bias) {
    if (kind == K_CONV_F) return conv_fwd_pd(c, pd, m, bias);
    dnnl_primitive_desc_t hint = NULL;
    DNNL_RET(conv_fwd_pd(c, &hint, m, bias));
    dnnl_convolution_desc_t d;
    dnnl_status_t st;
    if (kind == K_CONV_BD)
        st = dnnl_convolution_backward_data_desc_init(&d, m->wino ? dnnl_convolution_winograd : dnnl_convolution_direct, &m->src, &m->wei, &m->dst,
                                                      m->strides, m->pad, m->pad);
    else
        st = dnnl_convolution_backward_weights_desc_init(&d, m->wino ? dnnl_convolution_winograd : dnnl_convolution_direct, &m->src, &m->wei,
                                                         bias ? &m->bia : NULL, &m->dst, m->strides, m->pad, m->pad);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(pd, &d, ctx_attr(c), cpu_of(c->be)->eng, hint);
    dnnl_primitive_desc_destroy(hint);
    return st;
}

static tr_entry *conv_entry(tr_ctx *c, int kind, const tr_conv *l, const ddps_tensor *x, int ho, int wo) {
    int bias = l->b != NULL;
    /* Winograd F(4x4,3x3) where it pays (as the inference backend's policy): 3x3 stride 1, >= 64
     * channels in and out, >= 512 output positions; direct when oneDNN has none for the shape. */
    int wino = c->winograd && l->k == 3 && l->stride == 1 && l->in >= 64 && l->out >= 64 &&
               (long)x->n * ho * wo >= 512;
    int key[KEYN] = {kind, x->n, x->h, x->w, l->in, l->out, l->k, l->stride, l->pad, bias, wino};
    tr_entry *e = find(c, key);
    if (e) return e;
    conv_mds m;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = conv_mds_init(&m, l, x, ho, wo, wino);
    if (st == dnnl_success) st = conv_pd(c, &pd, kind, &m, bias);
    if (wino && st != dnnl_success) {
        if (pd) dnnl_primitive_desc_destroy(pd);
        pd = NULL;
        st = conv_mds_init(&m, l, x, ho, wo, 0);
        if (st == dnnl_success) st = conv_pd(c, &pd, kind, &m, bias);
    }
    static const int f[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
    static const int bd[] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC};
    static const int bw[] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_BIAS};
    if (kind == K_CONV_F) e = entry_make(c, key, pd, st, f, 3 + bias, &m.plain, DNNL_ARG_WEIGHTS, 0);
    else if (kind == K_CONV_BD) e = entry_make(c, key, pd, st, bd, 3, &m.plain, DNNL_ARG_WEIGHTS, 0);
    else e = entry_make(c, key, pd, st, bw, 3 + bias, &m.plain, DNNL_ARG_DIFF_WEIGHTS, 1);
    if (e && m.wino && (st = act_reorders(c, e)) != dnnl_success) {
        fail_st(c, st, "activation reorder creation");
        return NULL; /* e stays in the cache, but the backend has failed */
    }
    return e;
}

static int conv_out(const tr_conv *l, int h) { return (h + 2 * l->pad - l->k) / l->stride + 1; }

void ddps_tr_conv_forward(tr_ctx *c, const tr_conv *l, ddps_tensor *y, const ddps_tensor *x) {
    if (!enter(c, "conv forward")) return;
    int ho = conv_out(l, x->h), wo = conv_out(l, x->w);
    tr_entry *e = NULL;
    if (!shape_bad(c, x, x->n, x->h, x->w, l->in, "x") && !shape_bad(c, y, x->n, ho, wo, l->out, "y"))
        e = conv_entry(c, K_CONV_F, l, x, ho, wo);
    if (e) {
        void *p[4] = {x->data, l->w->data, y->data, l->b ? l->b->data : NULL};
        entry_run(c, e, p);
        c->be->flops += 2.0 * x->n * ho * wo * (double)l->out * l->in * l->k * l->k;
    }
    leave(c);
}

void ddps_tr_conv_backward(tr_ctx *c, const tr_conv *l, ddps_tensor *dx, const ddps_tensor *dy, const ddps_tensor *x) {
    if (!enter(c, "conv backward")) return;
    int ho = conv_out(l, x->h), wo = conv_out(l, x->w);
    if (shape_bad(c, dy, x->n, ho, wo, l->out, "dy") || (dx && shape_bad(c, dx, x->n, x->h, x->w, l->in, "dx")))
        { leave(c); return; }
    tr_entry *e = conv_entry(c, K_CONV_BW, l, x, ho, wo);
    if (e) {
        void *p[4] = {x->data, dy->data, l->w->grad, l->b ? l->b->grad : NULL};
        entry_run(c, e, p);
    }
    if (dx && (e = conv_entry(c, K_CONV_BD, l, x, ho, wo))) {
        void *p[3] = {dy->data, l->w->data, dx->data};
        entry_run(c, e, p);
    }
    c->be->flops += (dx ? 4.0 : 2.0) * x->n * ho * wo * (double)l->out * l->in * l->k * l->k;
    leave(c);
}

/* ---------- batch normalisation ---------- */

static dnnl_status_t bn_pd(tr_ctx *c, dnnl_primitive_desc_t *pd, int kind, const ddps_tensor *x, float eps) {
    dnnl_memory_desc_t md;
    DNNL_RET(md4(&md, x->n, x->c, x->h, x->w, dnnl_nhwc));
    unsigned flags = dnnl_use_scale | dnnl_use_shift;
    dnnl_engine_t eng = cpu_of(c->be)->eng;
    dnnl_batch_normalization_desc_t d;
    if (kind == K_BN_E) {
        DNNL_RET(dnnl_batch_normalization_forward_desc_init(&d, dnnl_forward_inference, &md, eps,
                                                            flags | dnnl_use_global_stats));
        return dnnl_primitive_desc_create(pd, &d, ctx_attr(c), eng, NULL);
    }
    DNNL_RET(dnnl_batch_normalization_forward_desc_init(&d, dnnl_forward_training, &md, eps, flags));
    if (kind == K_BN_F) return dnnl_primitive_desc_create(pd, &d, ctx_attr(c), eng, NULL);
    dnnl_primitive_desc_t hint = NULL;
    DNNL_RET(dnnl_primitive_desc_create(&hint, &d, ctx_attr(c), eng, NULL));
    dnnl_status_t st = dnnl_batch_normalization_backward_desc_init(&d, dnnl_backward, &md, &md, eps, flags);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(pd, &d, ctx_attr(c), eng, hint);
    dnnl_primitive_desc_destroy(hint);
    return st;
}

static tr_entry *bn_entry(tr_ctx *c, int kind, const ddps_tensor *x, float eps) {
    int eps_bits;
    memcpy(&eps_bits, &eps, sizeof eps_bits);
    int key[KEYN] = {kind, x->n, x->h, x->w, x->c, eps_bits};
    tr_entry *e = find(c, key);
    if (e) return e;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = bn_pd(c, &pd, kind, x, eps);
    static const int f[] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_MEAN,
                            DNNL_ARG_VARIANCE};
    /* oneDNN 2.6's backward also wants the shift (DNNL_ARG_SHIFT) with use_shift, or
     * execution fails with invalid arguments. */
    static const int b[] = {DNNL_ARG_SRC,   DNNL_ARG_MEAN,     DNNL_ARG_VARIANCE,   DNNL_ARG_DIFF_DST,
                            DNNL_ARG_SCALE, DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_SCALE, DNNL_ARG_DIFF_SHIFT,
                            DNNL_ARG_SHIFT};
    return kind == K_BN_B ? entry_make(c, key, pd, st, b, 9, NULL, 0, 0) : entry_make(c, key, pd, st, f, 6, NULL, 0, 0);
}

void ddps_tr_bn_forward(tr_ctx *c, const tr_bn *l, ddps_tensor *y, const ddps_tensor *x, ddps_tensor *mean,
                   ddps_tensor *var, int training) {
    if (!enter(c, "batch norm forward")) return;
    if (shape_bad(c, y, x->n, x->h, x->w, l->c, "y") || shape_bad(c, x, x->n, x->h, x->w, l->c, "x") ||
        (training && (shape_bad(c, mean, 1, 1, 1, l->c, "mean") || shape_bad(c, var, 1, 1, 1, l->c, "var"))))
        { leave(c); return; }
    tr_entry *e = bn_entry(c, training ? K_BN_F : K_BN_E, x, l->eps);
    if (!e) { leave(c); return; }
    float *m = training ? mean->data : l->running_mean->data, *v = training ? var->data : l->running_var->data;
    void *p[6] = {x->data, y->data, l->weight->data, l->bias->data, m, v};
    entry_run(c, e, p);
    if (training && !c->be->failed) {
        double cnt = (double)x->n * x->h * x->w;
        float mo = l->momentum, unb = cnt > 1 ? (float)(cnt / (cnt - 1)) : 1.0f;
        for (int i = 0; i < l->c; i++) {
            l->running_mean->data[i] = (1 - mo) * l->running_mean->data[i] + mo * m[i];
            l->running_var->data[i] = (1 - mo) * l->running_var->data[i] + mo * v[i] * unb;
        }
        if (l->num_batches) l->num_batches->data[0] += 1;
    }
    leave(c);
}

void ddps_tr_bn_backward(tr_ctx *c, const tr_bn *l, ddps_tensor *dx, const ddps_tensor *dy, const ddps_tensor *x,
                    const ddps_tensor *mean, const ddps_tensor *var) {
    if (!enter(c, "batch norm backward")) return;
    if (shape_bad(c, dy, x->n, x->h, x->w, l->c, "dy") || shape_bad(c, dx, x->n, x->h, x->w, l->c, "dx"))
        { leave(c); return; }
    tr_entry *e = bn_entry(c, K_BN_B, x, l->eps);
    if (e) {
        void *p[9] = {x->data, mean->data, var->data, dy->data, l->weight->data, dx->data, l->weight->grad,
                      l->bias->grad, l->bias->data};
        entry_run(c, e, p);
    }
    leave(c);
}

/* ---------- pooling ---------- */

static dnnl_status_t pool_pd(tr_ctx *c, dnnl_primitive_desc_t *pd, int kind, int max, int k, int s, int p,
                             const ddps_tensor *x, int ho, int wo) {
    dnnl_memory_desc_t src, dst;
    DNNL_RET(md4(&src, x->n, x->c, x->h, x->w, dnnl_nhwc));
    DNNL_RET(md4(&dst, x->n, x->c, ho, wo, dnnl_nhwc));
    dnnl_dims_t st = {s, s}, ker = {k, k}, dil = {0, 0}, pad = {p, p};
    dnnl_alg_kind_t alg = max ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding;
    dnnl_engine_t eng = cpu_of(c->be)->eng;
    dnnl_pooling_v2_desc_t d;
    DNNL_RET(dnnl_pooling_v2_forward_desc_init(&d, dnnl_forward_training, alg, &src, &dst, st, ker, dil, pad, pad));
    if (kind == K_POOL_F) return dnnl_primitive_desc_create(pd, &d, ctx_attr(c), eng, NULL);
    dnnl_primitive_desc_t hint = NULL;
    DNNL_RET(dnnl_primitive_desc_create(&hint, &d, ctx_attr(c), eng, NULL));
    dnnl_status_t r = dnnl_pooling_v2_backward_desc_init(&d, alg, &src, &dst, st, ker, dil, pad, pad);
    if (r == dnnl_success) r = dnnl_primitive_desc_create(pd, &d, ctx_attr(c), eng, hint);
    dnnl_primitive_desc_destroy(hint);
    return r;
}

/* x: the pooling's input shape (for the backward, dx). */
static tr_entry *pool_entry(tr_ctx *c, int kind, int max, int k, int s, int p, const ddps_tensor *x, int ho,
                            int wo) {
    int key[KEYN] = {kind, max, k, s, p, x->n, x->h, x->w, x->c};
    tr_entry *e = find(c, key);
    if (e) return e;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = pool_pd(c, &pd, kind, max, k, s, p, x, ho, wo);
    static const int f[] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_WORKSPACE};
    static const int b[] = {DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC, DNNL_ARG_WORKSPACE};
    return entry_make(c, key, pd, st, kind == K_POOL_F ? f : b, max ? 3 : 2, NULL, 0, 0);
}

void ddps_tr_pool_forward(tr_ctx *c, int max, int k, int s, int p, ddps_tensor *y, const ddps_tensor *x,
                     ddps_tensor *ws) {
    if (!enter(c, "pool forward")) return;
    int ho = (x->h + 2 * p - k) / s + 1, wo = (x->w + 2 * p - k) / s + 1;
    tr_entry *e = NULL;
    if (!shape_bad(c, y, x->n, ho, wo, x->c, "y")) e = pool_entry(c, K_POOL_F, max, k, s, p, x, ho, wo);
    if (e && max) {
        leave(c);
        *ws = ddps_new(c->be, 1, 1, 1, (int)((e->ws_bytes + 3) / 4));
        if (!enter(c, "pool forward")) return;
    }
    if (e) {
        void *ptr[3] = {x->data, y->data, max ? ws->data : NULL};
        entry_run(c, e, ptr);
    }
    leave(c);
}

void ddps_tr_pool_backward(tr_ctx *c, int max, int k, int s, int p, ddps_tensor *dx, const ddps_tensor *dy,
                      const ddps_tensor *ws) {
    if (!enter(c, "pool backward")) return;
    int ho = (dx->h + 2 * p - k) / s + 1, wo = (dx->w + 2 * p - k) / s + 1;
    tr_entry *e = NULL;
    if (!shape_bad(c, dy, dx->n, ho, wo, dx->c, "dy")) e = pool_entry(c, K_POOL_B, max, k, s, p, dx, ho, wo);
    if (e) {
        void *ptr[3] = {dy->data, dx->data, max ? ws->data : NULL};
        entry_run(c, e, ptr);
    }
    leave(c);
}

/* ---------- ReLU ---------- */

static dnnl_status_t relu_pd(tr_ctx *c, dnnl_primitive_desc_t *pd, int kind, long n) {
    dnnl_memory_desc_t md;
    DNNL_RET(md1(&md, n));
    dnnl_engine_t eng = cpu_of(c->be)->eng;
    dnnl_eltwise_desc_t d;
    DNNL_RET(dnnl_eltwise_forward_desc_init(&d, dnnl_forward_training, dnnl_eltwise_relu, &md, 0, 0));
    if (kind == K_RELU_F) return dnnl_primitive_desc_create(pd, &d, ctx_attr(c), eng, NULL);
    dnnl_primitive_desc_t hint = NULL;
    DNNL_RET(dnnl_primitive_desc_create(&hint, &d, ctx_attr(c), eng, NULL));
    dnnl_status_t st = dnnl_eltwise_backward_desc_init(&d, dnnl_eltwise_relu, &md, &md, 0, 0);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(pd, &d, ctx_attr(c), eng, hint);
    dnnl_primitive_desc_destroy(hint);
    return st;
}

static tr_entry *relu_entry(tr_ctx *c, int kind, size_t n) {
    int key[KEYN] = {kind, (int)(n & 0x7fffffff), (int)(n >> 31)};
    tr_entry *e = find(c, key);
    if (e) return e;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = relu_pd(c, &pd, kind, (long)n);
    static const int f[] = {DNNL_ARG_SRC, DNNL_ARG_DST};
    /* oneDNN 2.6's backward also wants the shift (DNNL_ARG_SHIFT) with use_shift, or
     * execution fails with invalid arguments. */
    static const int b[] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC};
    return kind == K_RELU_F ? entry_make(c, key, pd, st, f, 2, NULL, 0, 0) : entry_make(c, key, pd, st, b, 3, NULL, 0, 0);
}

void ddps_tr_relu_forward(tr_ctx *c, ddps_tensor *y, const ddps_tensor *x) {
    if (!enter(c, "relu forward")) return;
    tr_entry *e = NULL;
    if (!shape_bad(c, y, x->n, x->h, x->w, x->c, "y")) e = relu_entry(c, K_RELU_F, ddps_numel(x));
    if (e) entry_run(c, e, (void *[2]){x->data, y->data});
    leave(c);
}

void ddps_tr_relu_backward(tr_ctx *c, ddps_tensor *dx, const ddps_tensor *dy, const ddps_tensor *x) {
    if (!enter(c, "relu backward")) return;
    tr_entry *e = NULL;
    if (!shape_bad(c, dy, x->n, x->h, x->w, x->c, "dy") && !shape_bad(c, dx, x->n, x->h, x->w, x->c, "dx"))
        e = relu_entry(c, K_RELU_B, ddps_numel(x));
    if (e) entry_run(c, e, (void *[3]){x->data, dy->data, dx->data});
    leave(c);
}

/* ---------- inner product ---------- */

/* x [n,h,w,c] as PyTorch's flatten of NCHW: a 4D NHWC source against [out,c,h,w] weights;
 * a 1x1 input as plain [n,c] x [out,c]. */
static dnnl_status_t ip_pd(tr_ctx *c, dnnl_primitive_desc_t *pd, int kind, const tr_linear *l,
                           const ddps_tensor *x, dnnl_memory_desc_t *plain) {
    dnnl_memory_desc_t src, wei, bia, dst;
    dnnl_dims_t s2 = {x->n, x->c}, w2 = {l->out, x->c}, d2 = {x->n, l->out};
    if (x->h * x->w == 1) {
        DNNL_RET(dnnl_memory_desc_init_by_tag(&src, 2, s2, dnnl_f32, dnnl_nc));
        DNNL_RET(dnnl_memory_desc_init_by_tag(&wei, 2, w2, dnnl_f32, dnnl_format_tag_any));
        DNNL_RET(dnnl_memory_desc_init_by_tag(plain, 2, w2, dnnl_f32, dnnl_oi));
    } else {
        DNNL_RET(md4(&src, x->n, x->c, x->h, x->w, dnnl_nhwc));
        DNNL_RET(md4(&wei, l->out, x->c, x->h, x->w, dnnl_format_tag_any));
        DNNL_RET(md4(plain, l->out, x->c, x->h, x->w, dnnl_oihw));
    }
    DNNL_RET(md1(&bia, l->out));
    DNNL_RET(dnnl_memory_desc_init_by_tag(&dst, 2, d2, dnnl_f32, dnnl_nc));
    dnnl_engine_t eng = cpu_of(c->be)->eng;
    dnnl_inner_product_desc_t d;
    DNNL_RET(dnnl_inner_product_forward_desc_init(&d, dnnl_forward_training, &src, &wei, l->b ? &bia : NULL, &dst));
    if (kind == K_IP_F) return dnnl_primitive_desc_create(pd, &d, ctx_attr(c), eng, NULL);
    dnnl_primitive_desc_t hint = NULL;
    DNNL_RET(dnnl_primitive_desc_create(&hint, &d, ctx_attr(c), eng, NULL));
    dnnl_status_t st = kind == K_IP_BD ? dnnl_inner_product_backward_data_desc_init(&d, &src, &wei, &dst)
                                       : dnnl_inner_product_backward_weights_desc_init(&d, &src, &wei,
                                                                                       l->b ? &bia : NULL, &dst);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(pd, &d, ctx_attr(c), eng, hint);
    dnnl_primitive_desc_destroy(hint);
    return st;
}

static tr_entry *ip_entry(tr_ctx *c, int kind, const tr_linear *l, const ddps_tensor *x) {
    int bias = l->b != NULL;
    int key[KEYN] = {kind, x->n, x->h, x->w, x->c, l->out, bias};
    tr_entry *e = find(c, key);
    if (e) return e;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_desc_t plain;
    dnnl_status_t st = ip_pd(c, &pd, kind, l, x, &plain);
    static const int f[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
    static const int bd[] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC};
    static const int bw[] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_BIAS};
    if (kind == K_IP_F) return entry_make(c, key, pd, st, f, 3 + bias, &plain, DNNL_ARG_WEIGHTS, 0);
    if (kind == K_IP_BD) return entry_make(c, key, pd, st, bd, 3, &plain, DNNL_ARG_WEIGHTS, 0);
    return entry_make(c, key, pd, st, bw, 3 + bias, &plain, DNNL_ARG_DIFF_WEIGHTS, 1);
}

void ddps_tr_linear_forward(tr_ctx *c, const tr_linear *l, ddps_tensor *y, const ddps_tensor *x) {
    if (!enter(c, "linear forward")) return;
    tr_entry *e = NULL;
    if (x->h * x->w * x->c != l->in)
        ddps_backend_fail(c->be, DDPS_KIND_FAILURE, "internal error: linear of %d inputs on [%d,%d,%d,%d]", l->in,
                          x->n, x->h, x->w, x->c);
    else if (!shape_bad(c, y, x->n, 1, 1, l->out, "y"))
        e = ip_entry(c, K_IP_F, l, x);
    if (e) {
        entry_run(c, e, (void *[4]){x->data, l->w->data, y->data, l->b ? l->b->data : NULL});
        c->be->flops += 2.0 * x->n * (double)l->in * l->out;
    }
    leave(c);
}

void ddps_tr_linear_backward(tr_ctx *c, const tr_linear *l, ddps_tensor *dx, const ddps_tensor *dy,
                        const ddps_tensor *x) {
    if (!enter(c, "linear backward")) return;
    if (x->h * x->w * x->c != l->in || shape_bad(c, dy, x->n, 1, 1, l->out, "dy") ||
        (dx && shape_bad(c, dx, x->n, x->h, x->w, x->c, "dx"))) {
        ddps_backend_fail(c->be, DDPS_KIND_FAILURE, "internal error: linear backward shapes");
        { leave(c); return; }
    }
    tr_entry *e = ip_entry(c, K_IP_BW, l, x);
    if (e) entry_run(c, e, (void *[4]){x->data, dy->data, l->w->grad, l->b ? l->b->grad : NULL});
    if (dx && (e = ip_entry(c, K_IP_BD, l, x))) entry_run(c, e, (void *[3]){dy->data, l->w->data, dx->data});
    leave(c);
}
