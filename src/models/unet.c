#include "models/unet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fs.h"

/* Weights for config c (ch = block_out_channels, nb blocks, T = time_embed_dim, X = cross_attention_dim;
 * convolutions with a bias): conv_in [ch[0], in_channels, 3, 3]; time_embedding.linear_1 [T, ch[0]],
 * linear_2 [T, T]; down block i: layers_per_block resnets -> ch[i] (transformers of ch[i] channels and
 * heads[i] heads when down_cross[i]), then, except the last block, downsamplers.0.conv [ch[i], ch[i], 3,
 * 3] (stride 2); mid: resnet, transformer, resnet at ch[nb-1]; up block i: layers_per_block + 1 resnets
 * -> ch[nb-1-i] on [previous, skip] channels, then, except the last, upsamplers.0.conv [ch[nb-1-i],
 * ch[nb-1-i], 3, 3] after a nearest 2x upsample; conv_norm_out [ch[0]]; conv_out [out_channels, ch[0], 3,
 * 3]. On failure returns -1 with err (the first failure, ws->err). */
int ddps_unet_build(ddps_wsrc *ws, const ddps_unet_config *c, ddps_unet **out, ddps_err *err) {
    ddps_unet *m = ddps_calloc(1, sizeof *m);
    m->cfg = *c;
    int nb = c->n_blocks, G = c->norm_num_groups, T = c->time_embed_dim, X = c->cross_attention_dim;
    float eps = c->norm_eps;
    const int *ch = c->block_out_channels;
    char n[384];

    m->conv_in = ddps_ws_conv(ws, ch[0], c->in_channels, 3, 1, "conv_in");
    m->t1 = ddps_ws_linear(ws, T, ch[0], 1, "time_embedding.linear_1");
    m->t2 = ddps_ws_linear(ws, T, T, 1, "time_embedding.linear_2");

    int prev = ch[0];
    for (int i = 0; i < nb; i++) {
        ddps_unet_block *b = &m->down[i];
        b->has_attn = c->down_cross[i];
        for (int j = 0; j < c->layers_per_block; j++) {
            snprintf(n, sizeof n, "down_blocks.%d.resnets.%d", i, j);
            ddps_resnet_build(ws, &b->res[j], j == 0 ? prev : ch[i], ch[i], T, G, eps, n);
            if (b->has_attn) {
                snprintf(n, sizeof n, "down_blocks.%d.attentions.%d", i, j);
                ddps_transformer_build(ws, &b->attn[j], ch[i], c->heads[i], X, G, c->use_linear_projection, n);
            }
        }
        if (i < nb - 1) b->sampler = ddps_ws_conv(ws, ch[i], ch[i], 3, 1, "down_blocks.%d.downsamplers.0.conv", i);
        prev = ch[i];
    }

    int top = ch[nb - 1];
    ddps_resnet_build(ws, &m->mid_res1, top, top, T, G, eps, "mid_block.resnets.0");
    ddps_transformer_build(ws, &m->mid_attn, top, c->heads[nb - 1], X, G, c->use_linear_projection,
                           "mid_block.attentions.0");
    ddps_resnet_build(ws, &m->mid_res2, top, top, T, G, eps, "mid_block.resnets.1");

    /* Up block i works at channel count ch[nb-1-i]; its resnets take the
     * previous block's output (or their own) concatenated with a skip. */
    prev = top;
    for (int i = 0; i < nb; i++) {
        ddps_unet_block *b = &m->up[i];
        int outc = ch[nb - 1 - i], inc = ch[nb - 2 - i < 0 ? 0 : nb - 2 - i];
        b->has_attn = c->up_cross[i];
        for (int j = 0; j <= c->layers_per_block; j++) {
            int skip = j == c->layers_per_block ? inc : outc;
            int rin = (j == 0 ? prev : outc) + skip;
            snprintf(n, sizeof n, "up_blocks.%d.resnets.%d", i, j);
            ddps_resnet_build(ws, &b->res[j], rin, outc, T, G, eps, n);
            if (b->has_attn) {
                snprintf(n, sizeof n, "up_blocks.%d.attentions.%d", i, j);
                ddps_transformer_build(ws, &b->attn[j], outc, c->heads[nb - 1 - i], X, G, c->use_linear_projection, n);
            }
        }
        if (i < nb - 1) b->sampler = ddps_ws_conv(ws, outc, outc, 3, 1, "up_blocks.%d.upsamplers.0.conv", i);
        prev = outc;
    }
    ddps_gn_build(ws, &m->norm_out, ch[0], G, eps, "conv_norm_out");
    m->conv_out = ddps_ws_conv(ws, c->out_channels, ch[0], 3, 1, "conv_out");
    if (ws->failed) {
        ddps_unet_free(ws->be, m);
        *err = ws->err;
        return -1;
    }
    m->all = ddps_ws_take(ws, &m->n_all);
    *out = m;
    return 0;
}

/* Frees m's weights and m (NULL: no-op). */
void ddps_unet_free(ddps_backend *be, ddps_unet *m) {
    if (!m) return;
    for (int i = 0; i < m->n_all; i++) be->ops->free_weight(be, m->all[i]);
    free(m->all);
    free(m);
}

/* t: [n] -> out: [n, dim] (host f32). diffusers get_timestep_embedding, in f32 as diffusers computes it:
 * half = dim/2, freq_i = exp(-ln(10000) * i / (half - shift)), [sin(t f), cos(t f)], swapped to [cos,
 * sin] when flip_sin_to_cos; an odd dim's last entry is 0. */
static void timestep_embedding(float *out, const float *t, int n, int dim, int flip, float shift) {
    int half = dim / 2;
    for (int b = 0; b < n; b++) {
        float *o = out + (size_t)b * dim;
        for (int i = 0; i < half; i++) {
            float e = -9.21034037198f * (float)i; /* -ln(10000) * i */
            e = e / ((float)half - shift);
            float arg = t[b] * expf(e);
            float s = sinf(arg), co = cosf(arg);
            o[flip ? half + i : i] = s;
            o[flip ? i : half + i] = co;
        }
        if (dim % 2) o[dim - 1] = 0;
    }
}

/* t: [n, h, w, c] -> the caller's tap (if any) as "name" or "name<idx>"; none
 * once the backend has failed (t may then have no data). */
static void tap(ddps_backend *be, const ddps_unet_opts *o, const char *name, int idx, const ddps_tensor *t) {
    if (!o || !o->tap || be->failed) return;
    char buf[16];
    if (idx >= 0)
        snprintf(buf, sizeof buf, "%s%d", name, idx);
    else
        snprintf(buf, sizeof buf, "%s", name);
    o->tap(o->user, buf, t);
}

/* x: [n, h, w, in_channels] (noisy latent), timesteps: [n] (host), ctx: [n, 1, L, cross_attention_dim] ->
 * eps: [n, h, w, out_channels] (predicted noise). Time embedding: sinusoidal [n, 1, 1, ch[0]] ->
 * SiLU(linear_1) [n, 1, 1, T] -> SiLU(linear_2) [n, 1, 1, T]. Down block i runs at [n, h_i, w_i, ch[i]]
 * with h_0 = h and h_{i+1} = (h_i + 2p - 3)/2 + 1 (p = downsample_padding; p = 0: padding (0, 1) ->
 * floor(h_i/2)), pushing every output as a skip; up block i pops them, concatenates [.., c + c_skip] and
 * runs at ch[nb-1-i], upsampling to the next skip's size. opts->stop_after_up = i returns after up block
 * i with eps unwritten (DIFT taps). */
int ddps_unet_forward(ddps_backend *be, const ddps_unet *m, const ddps_tensor *x, const float *timesteps,
                       const ddps_tensor *ctx, ddps_tensor *eps, const ddps_unet_opts *opts) {
    const ddps_backend_ops *op = be->ops;
    const ddps_unet_config *c = &m->cfg;
    int nb = c->n_blocks, N = x->n, L = c->layers_per_block;
    static const int pad1[4] = {1, 1, 1, 1};
    /* downsample_padding 0 means diffusers' asymmetric (0,1,0,1) padding */
    int pd = c->downsample_padding, padd[4] = {pd, pd, pd, pd};
    if (pd == 0) padd[2] = padd[3] = 1;
    size_t mark = ddps_mark(be);

    /* time embedding: SiLU(linear_2(SiLU(linear_1(sinusoidal(t))))) is what
     * every resnet projects; linear_2's output itself is never used raw. */
    int C0 = c->block_out_channels[0], T = c->time_embed_dim;
    float *host = ddps_malloc((size_t)N * C0 * sizeof(float));
    timestep_embedding(host, timesteps, N, C0, c->flip_sin_to_cos, c->freq_shift);
    ddps_tensor temb0 = ddps_new(be, N, 1, 1, C0), t1 = ddps_new(be, N, 1, 1, T), temb = ddps_new(be, N, 1, 1, T);
    op->write(be, &temb0, host);
    free(host);
    op->linear(be, &t1, &temb0, m->t1, DDPS_ACT_SILU, 0);
    op->linear(be, &temb, &t1, m->t2, DDPS_ACT_SILU, 0);

    /* Skip connections, pushed on the way down and popped on the way up. */
    ddps_tensor skips[1 + DDPS_MAX_BLOCKS * (DDPS_MAX_BLOCKS + 1)];
    int ns = 0;
    ddps_tensor h = ddps_new(be, N, x->h, x->w, C0);
    op->conv2d(be, &h, x, m->conv_in, 1, pad1, 0);
    skips[ns++] = h;

    for (int i = 0; i < nb; i++) {
        const ddps_unet_block *b = &m->down[i];
        for (int j = 0; j < L; j++) {
            h = ddps_resnet_fwd(be, &b->res[j], &h, &temb);
            if (b->has_attn) h = ddps_transformer_fwd(be, &b->attn[j], &h, ctx);
            skips[ns++] = h;
        }
        if (b->sampler) {
            ddps_tensor d = ddps_new(be, N, (h.h + padd[0] + padd[2] - 3) / 2 + 1, (h.w + padd[1] + padd[3] - 3) / 2 + 1, h.c);
            op->conv2d(be, &d, &h, b->sampler, 2, padd, 0);
            h = d;
            skips[ns++] = h;
        }
        tap(be, opts, "down", i, &h);
    }

    h = ddps_resnet_fwd(be, &m->mid_res1, &h, &temb);
    h = ddps_transformer_fwd(be, &m->mid_attn, &h, ctx);
    h = ddps_resnet_fwd(be, &m->mid_res2, &h, &temb);
    tap(be, opts, "mid", -1, &h);

    /* diffusers upsamples to the skip's exact size when the latent is not a
     * multiple of 2^(number of upsamplers); otherwise by 2. Both equal the
     * next skip's size whenever they differ from 2x only by that rounding. */
    int factor = 1 << (nb - 1);
    int exact = (x->h % factor) != 0 || (x->w % factor) != 0;
    for (int i = 0; i < nb; i++) {
        const ddps_unet_block *b = &m->up[i];
        for (int j = 0; j <= L; j++) {
            ddps_tensor s = skips[--ns];
            ddps_tensor cat = ddps_new(be, N, h.h, h.w, h.c + s.c);
            op->concat_c(be, &cat, &h, &s);
            h = ddps_resnet_fwd(be, &b->res[j], &cat, &temb);
            if (b->has_attn) h = ddps_transformer_fwd(be, &b->attn[j], &h, ctx);
        }
        if (b->sampler) {
            int uh = exact ? skips[ns - 1].h : 2 * h.h, uw = exact ? skips[ns - 1].w : 2 * h.w;
            ddps_tensor u = ddps_new(be, N, uh, uw, h.c);
            op->upsample_nearest(be, &u, &h);
            ddps_tensor o = ddps_new(be, N, uh, uw, h.c);
            op->conv2d(be, &o, &u, b->sampler, 1, pad1, 0);
            h = o;
        }
        tap(be, opts, "up", i, &h);
        if (opts && opts->stop_after_up == i) {
            ddps_release(be, mark);
            return ddps_backend_error(be, NULL);
        }
    }
    ddps_tensor g = ddps_new(be, N, h.h, h.w, h.c);
    op->group_norm(be, &g, &h, NULL, m->norm_out.g, m->norm_out.b, m->norm_out.groups, m->norm_out.eps, 1);
    op->conv2d(be, eps, &g, m->conv_out, 1, pad1, 0);
    ddps_release(be, mark);
    return ddps_backend_error(be, NULL);
}
