#include "models/blocks.h"

#include <stdio.h>

/* gamma, beta: [c] (name.weight, name.bias). A GroupNorm of c channels in groups groups of c/groups (c %
 * groups == 0) with eps. */
void ddps_gn_build(ddps_wsrc *ws, ddps_gn *gn, int c, int groups, float eps, const char *name) {
    gn->groups = groups;
    gn->eps = eps;
    ddps_ws_norm(ws, &gn->g, &gn->b, c, "%s", name);
}

/* Weights (PyTorch layout), all convolutions with a bias [out]: norm1 [in]; conv1 [out, in, 3, 3];
 * time_emb_proj [out, temb_dim] + [out] when temb_dim > 0; norm2 [out]; conv2 [out, out, 3, 3];
 * conv_shortcut [out, in, 1, 1] (applied as a linear [out, in]) when in != out. */
void ddps_resnet_build(ddps_wsrc *ws, ddps_resnet *r, int in, int out, int temb_dim, int groups, float eps,
                       const char *p) {
    char n[384];
    r->in = in;
    r->out = out;
    snprintf(n, sizeof n, "%s.norm1", p);
    ddps_gn_build(ws, &r->n1, in, groups, eps, n);
    r->conv1 = ddps_ws_conv(ws, out, in, 3, 1, "%s.conv1", p);
    r->temb = temb_dim ? ddps_ws_linear(ws, out, temb_dim, 1, "%s.time_emb_proj", p) : NULL;
    snprintf(n, sizeof n, "%s.norm2", p);
    ddps_gn_build(ws, &r->n2, out, groups, eps, n);
    r->conv2 = ddps_ws_conv(ws, out, out, 3, 1, "%s.conv2", p);
    r->shortcut = in != out ? ddps_ws_linear_1x1(ws, out, in, 1, "%s.conv_shortcut", p) : NULL;
}

/* x: [n, h, w, c] -> y: [n, h, w, c], a copy from the arena. */
ddps_tensor ddps_copy(ddps_backend *be, const ddps_tensor *x) {
    ddps_tensor y = ddps_new(be, x->n, x->h, x->w, x->c);
    be->ops->axpby(be, &y, 1.0f, x, 0.0f, x);
    return y;
}

static const int PAD1[4] = {1, 1, 1, 1};

/* x: [n, h, w, in], temb_act: [n, 1, 1, temb_dim] (SiLU of the time embedding) or NULL -> y: [n, h, w,
 * out]; the time projection t: [n, 1, 1, out]. y = shortcut(x) + conv2(SiLU(GN2(h1 + t))), h1 =
 * conv1(SiLU(GN1(x))): [n, h, w, out]; 3x3 convolutions with padding 1, shortcut = x when in == out. */
ddps_tensor ddps_resnet_fwd(ddps_backend *be, const ddps_resnet *r, const ddps_tensor *x, const ddps_tensor *temb_act) {
    const ddps_backend_ops *op = be->ops;
    ddps_tensor out = ddps_new(be, x->n, x->h, x->w, r->out);
    size_t m = ddps_mark(be);
    /* out = shortcut(x); out += conv2(...) below */
    if (r->shortcut)
        op->linear(be, &out, x, r->shortcut, DDPS_ACT_NONE, 0);
    else
        op->axpby(be, &out, 1.0f, x, 0.0f, x);
    ddps_tensor h = ddps_new(be, x->n, x->h, x->w, r->in);
    op->group_norm(be, &h, x, NULL, r->n1.g, r->n1.b, r->n1.groups, r->n1.eps, 1);
    ddps_tensor h1 = ddps_new(be, x->n, x->h, x->w, r->out);
    op->conv2d(be, &h1, &h, r->conv1, 1, PAD1, 0);
    ddps_tensor t = {0};
    if (r->temb && temb_act) {
        t = ddps_new(be, x->n, 1, 1, r->out);
        op->linear(be, &t, temb_act, r->temb, DDPS_ACT_NONE, 0);
    }
    ddps_tensor h2 = ddps_new(be, x->n, x->h, x->w, r->out);
    op->group_norm(be, &h2, &h1, t.data ? &t : NULL, r->n2.g, r->n2.b, r->n2.groups, r->n2.eps, 1);
    op->conv2d(be, &out, &h2, r->conv2, 1, PAD1, 1);
    ddps_release(be, m);
    return out;
}

/* Weights (all with a bias [out] unless noted): norm [c]; proj_in, proj_out [c, c] (linear_proj) or [c,
 * c, 1, 1]; norm1, norm2, norm3 [c]; attn1.to_q, to_k, to_v [c, c] without bias; attn1.to_out.0 [c, c];
 * attn2.to_q [c, c], attn2.to_k, to_v [c, ctx_dim], all three without bias; attn2.to_out.0 [c, c];
 * ff.net.0.proj [8c, c] (GEGLU: value and gate halves of 4c); ff.net.2 [c, 4c]. */
void ddps_transformer_build(ddps_wsrc *ws, ddps_transformer *t, int c, int heads, int ctx_dim, int groups,
                            int linear_proj, const char *p) {
    char n[384];
    t->c = c;
    t->heads = heads;
    t->ctx_dim = ctx_dim;
    snprintf(n, sizeof n, "%s.norm", p);
    ddps_gn_build(ws, &t->norm, c, groups, 1e-6f, n);
    if (linear_proj) {
        t->proj_in = ddps_ws_linear(ws, c, c, 1, "%s.proj_in", p);
    } else {
        t->proj_in = ddps_ws_linear_1x1(ws, c, c, 1, "%s.proj_in", p);
    }
    const char *b = "transformer_blocks.0";
    ddps_ws_norm(ws, &t->ln1_g, &t->ln1_b, c, "%s.%s.norm1", p, b);
    t->q1 = ddps_ws_linear(ws, c, c, 0, "%s.%s.attn1.to_q", p, b);
    t->k1 = ddps_ws_linear(ws, c, c, 0, "%s.%s.attn1.to_k", p, b);
    t->v1 = ddps_ws_linear(ws, c, c, 0, "%s.%s.attn1.to_v", p, b);
    t->o1 = ddps_ws_linear(ws, c, c, 1, "%s.%s.attn1.to_out.0", p, b);
    ddps_ws_norm(ws, &t->ln2_g, &t->ln2_b, c, "%s.%s.norm2", p, b);
    t->q2 = ddps_ws_linear(ws, c, c, 0, "%s.%s.attn2.to_q", p, b);
    t->k2 = ddps_ws_linear(ws, c, ctx_dim, 0, "%s.%s.attn2.to_k", p, b);
    t->v2 = ddps_ws_linear(ws, c, ctx_dim, 0, "%s.%s.attn2.to_v", p, b);
    t->o2 = ddps_ws_linear(ws, c, c, 1, "%s.%s.attn2.to_out.0", p, b);
    ddps_ws_norm(ws, &t->ln3_g, &t->ln3_b, c, "%s.%s.norm3", p, b);
    t->ff1 = ddps_ws_linear(ws, 8 * c, c, 1, "%s.%s.ff.net.0.proj", p, b);
    t->ff2 = ddps_ws_linear(ws, c, 4 * c, 1, "%s.%s.ff.net.2", p, b);
    if (linear_proj)
        t->proj_out = ddps_ws_linear(ws, c, c, 1, "%s.proj_out", p);
    else
        t->proj_out = ddps_ws_linear_1x1(ws, c, c, 1, "%s.proj_out", p);
}

/* x: [n, 1, L, c] (updated in place), kv: [n, 1, Lk, ckv] or NULL (self-attention: Lk = L, ckv = c); wq:
 * [c, c], wk, wv: [c, ckv], wo: [c, c]; q: [n, 1, L, c], k, v: [n, 1, Lk, c], heads of d = c/heads.
 * Pre-LayerNorm attention with a residual: x += wo(attention(wq h, wk src, wv src)), h = LayerNorm(x),
 * src = kv (cross-attention) or h; causal masks the keys after each query. */
void ddps_attn_residual(ddps_backend *be, ddps_tensor *x, const ddps_weight *lg, const ddps_weight *lb, float eps,
                        const ddps_weight *wq, const ddps_weight *wk, const ddps_weight *wv, const ddps_weight *wo,
                        const ddps_tensor *kv, int heads, int causal) {
    const ddps_backend_ops *op = be->ops;
    size_t m = ddps_mark(be);
    int n = x->n, L = x->w, c = x->c;
    ddps_tensor h = ddps_new(be, n, 1, L, c);
    op->layer_norm(be, &h, x, lg, lb, eps);
    const ddps_tensor *src = kv ? kv : &h;
    int Lk = src->w;
    ddps_tensor q = ddps_new(be, n, 1, L, c), k = ddps_new(be, n, 1, Lk, c), v = ddps_new(be, n, 1, Lk, c);
    op->linear(be, &q, &h, wq, DDPS_ACT_NONE, 0);
    op->linear(be, &k, src, wk, DDPS_ACT_NONE, 0);
    op->linear(be, &v, src, wv, DDPS_ACT_NONE, 0);
    ddps_tensor a = ddps_new(be, n, 1, L, c);
    op->attention(be, &a, &q, &k, &v, heads, causal);
    op->linear(be, x, &a, wo, DDPS_ACT_NONE, 1);
    ddps_release(be, m);
}

/* x: [n, h, w, c], ctx: [n, 1, Lc, ctx_dim] -> y: [n, h, w, c]; inside, tokens [n, 1, L = h*w, c] and the
 * feed-forward [n, 1, L, 8c] -> GEGLU [n, 1, L, 4c] -> [n, 1, L, c]. y = x +
 * proj_out(block(proj_in(GN(x)))), block = self-attention, cross-attention on ctx, GEGLU MLP, each
 * pre-LayerNorm (eps 1e-5) with a residual. */
ddps_tensor ddps_transformer_fwd(ddps_backend *be, const ddps_transformer *t, const ddps_tensor *x,
                                 const ddps_tensor *ctx) {
    const ddps_backend_ops *op = be->ops;
    int n = x->n, L = x->h * x->w, c = t->c;
    /* out = x + proj_out(block(proj_in(GN(x)))) */
    ddps_tensor out = ddps_copy(be, x);
    size_t m = ddps_mark(be);
    ddps_tensor g = ddps_new(be, x->n, x->h, x->w, c);
    op->group_norm(be, &g, x, NULL, t->norm.g, t->norm.b, t->norm.groups, t->norm.eps, 0);
    ddps_tensor g_tok = {g.data, n, 1, L, c};
    ddps_tensor s = ddps_new(be, n, 1, L, c); /* the block's residual stream */
    op->linear(be, &s, &g_tok, t->proj_in, DDPS_ACT_NONE, 0);
    ddps_attn_residual(be, &s, t->ln1_g, t->ln1_b, 1e-5f, t->q1, t->k1, t->v1, t->o1, NULL, t->heads, 0);
    ddps_attn_residual(be, &s, t->ln2_g, t->ln2_b, 1e-5f, t->q2, t->k2, t->v2, t->o2, ctx, t->heads, 0);
    {
        size_t m2 = ddps_mark(be);
        ddps_tensor h = ddps_new(be, n, 1, L, c);
        op->layer_norm(be, &h, &s, t->ln3_g, t->ln3_b, 1e-5f);
        ddps_tensor f = ddps_new(be, n, 1, L, 8 * c);
        op->linear(be, &f, &h, t->ff1, DDPS_ACT_NONE, 0);
        ddps_tensor gg = ddps_new(be, n, 1, L, 4 * c);
        op->geglu(be, &gg, &f);
        op->linear(be, &s, &gg, t->ff2, DDPS_ACT_NONE, 1);
        ddps_release(be, m2);
    }
    ddps_tensor out_tok = {out.data, n, 1, L, c};
    op->linear(be, &out_tok, &s, t->proj_out, DDPS_ACT_NONE, 1);
    ddps_release(be, m);
    return out;
}

/* Weights: group_norm [c]; to_q, to_k, to_v, to_out.0 [c, c] + [c]. */
void ddps_vae_attn_build(ddps_wsrc *ws, ddps_vae_attn *a, int c, int groups, float eps, const char *p) {
    char n[384];
    a->c = c;
    snprintf(n, sizeof n, "%s.group_norm", p);
    ddps_gn_build(ws, &a->norm, c, groups, eps, n);
    a->q = ddps_ws_linear(ws, c, c, 1, "%s.to_q", p);
    a->k = ddps_ws_linear(ws, c, c, 1, "%s.to_k", p);
    a->v = ddps_ws_linear(ws, c, c, 1, "%s.to_v", p);
    a->o = ddps_ws_linear(ws, c, c, 1, "%s.to_out.0", p);
}

/* x: [n, h, w, c] -> y: [n, h, w, c]; inside, tokens [n, 1, L = h*w, c]. y = x + o(attention(q g, k g, v
 * g)), g = GN(x): one head of all c channels, no mask. */
ddps_tensor ddps_vae_attn_fwd(ddps_backend *be, const ddps_vae_attn *a, const ddps_tensor *x) {
    const ddps_backend_ops *op = be->ops;
    int n = x->n, L = x->h * x->w, c = a->c;
    ddps_tensor out = ddps_copy(be, x);
    size_t m = ddps_mark(be);
    ddps_tensor g = ddps_new(be, n, 1, L, c);
    ddps_tensor x_tok = {x->data, n, 1, L, c};
    op->group_norm(be, &g, &x_tok, NULL, a->norm.g, a->norm.b, a->norm.groups, a->norm.eps, 0);
    ddps_tensor q = ddps_new(be, n, 1, L, c), k = ddps_new(be, n, 1, L, c), v = ddps_new(be, n, 1, L, c);
    op->linear(be, &q, &g, a->q, DDPS_ACT_NONE, 0);
    op->linear(be, &k, &g, a->k, DDPS_ACT_NONE, 0);
    op->linear(be, &v, &g, a->v, DDPS_ACT_NONE, 0);
    ddps_tensor att = ddps_new(be, n, 1, L, c);
    op->attention(be, &att, &q, &k, &v, 1, 0);
    ddps_tensor out_tok = {out.data, n, 1, L, c};
    op->linear(be, &out_tok, &att, a->o, DDPS_ACT_NONE, 1);
    ddps_release(be, m);
    return out;
}
