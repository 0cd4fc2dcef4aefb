/* Building blocks shared by the VAE encoder and the UNet, one function per
 * layer with shapes in the comments (NHWC; tokens are [n, 1, L, c]).
 * Each *_build declares/loads its weights through a ddps_wsrc; each *_fwd
 * allocates its output from the backend arena first, then temporaries, and
 * releases the temporaries before returning. */
#ifndef DDPS_MODELS_BLOCKS_H
#define DDPS_MODELS_BLOCKS_H

#include "models/weights.h"
#include "tensor/backend.h"

typedef struct {
    ddps_weight *g, *b;
    int groups;
    float eps;
} ddps_gn;

/* diffusers ResnetBlock2D: GN-SiLU-conv3x3 (+ time embedding) GN-SiLU-conv3x3,
 * plus x (through a 1x1 projection when the channel count changes). */
typedef struct {
    int in, out;
    ddps_gn n1, n2;
    ddps_weight *conv1, *conv2, *temb, *shortcut;
} ddps_resnet;

/* Transformer2DModel with one BasicTransformerBlock (SD v1/v2). */
typedef struct {
    int c, heads, ctx_dim;
    ddps_gn norm;
    ddps_weight *proj_in, *proj_out;
    ddps_weight *ln1_g, *ln1_b, *ln2_g, *ln2_b, *ln3_g, *ln3_b;
    ddps_weight *q1, *k1, *v1, *o1; /* self-attention */
    ddps_weight *q2, *k2, *v2, *o2; /* cross-attention on the text context */
    ddps_weight *ff1, *ff2;         /* GEGLU feed-forward */
} ddps_transformer;

/* The VAE's single-head spatial self-attention (mid block). */
typedef struct {
    int c;
    ddps_gn norm;
    ddps_weight *q, *k, *v, *o;
} ddps_vae_attn;

void ddps_gn_build(ddps_wsrc *ws, ddps_gn *gn, int c, int groups, float eps, const char *name);
/* temb_dim 0: no time embedding (VAE). */
void ddps_resnet_build(ddps_wsrc *ws, ddps_resnet *r, int in, int out, int temb_dim, int groups, float eps,
                       const char *prefix);
void ddps_transformer_build(ddps_wsrc *ws, ddps_transformer *t, int c, int heads, int ctx_dim, int groups,
                            int linear_proj, const char *prefix);
void ddps_vae_attn_build(ddps_wsrc *ws, ddps_vae_attn *a, int c, int groups, float eps, const char *prefix);

/* x [n,h,w,in], temb_act [n,1,1,temb_dim] = SiLU(time embedding) or NULL -> [n,h,w,out] */
ddps_tensor ddps_resnet_fwd(ddps_backend *be, const ddps_resnet *r, const ddps_tensor *x, const ddps_tensor *temb_act);
/* x [n,h,w,c], ctx [n,1,L,ctx_dim] -> [n,h,w,c] */
ddps_tensor ddps_transformer_fwd(ddps_backend *be, const ddps_transformer *t, const ddps_tensor *x,
                                 const ddps_tensor *ctx);
/* x [n,h,w,c] -> [n,h,w,c] */
ddps_tensor ddps_vae_attn_fwd(ddps_backend *be, const ddps_vae_attn *a, const ddps_tensor *x);
/* Pre-LayerNorm attention with a residual: x [n,1,L,c] += o(attention(q(h),
 * k(src), v(src))) with h = LayerNorm(x) and src = kv (cross-attention) or h. */
void ddps_attn_residual(ddps_backend *be, ddps_tensor *x, const ddps_weight *lg, const ddps_weight *lb, float eps,
                        const ddps_weight *wq, const ddps_weight *wk, const ddps_weight *wv, const ddps_weight *wo,
                        const ddps_tensor *kv, int heads, int causal);
/* y = x (a new tensor). */
ddps_tensor ddps_copy(ddps_backend *be, const ddps_tensor *x);

#endif
