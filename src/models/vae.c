#include "models/vae.h"

#include <stdio.h>
#include <stdlib.h>

#include "util/fs.h"

#define VAE_EPS 1e-6f

/* Declares name.weight [out, in, k, k] and name.bias [out] (checked, not loaded). */
static void declare_conv(ddps_wsrc *ws, int out, int in, int k, const char *name) {
    int64_t w[4] = {out, in, k, k}, b[1] = {out};
    ddps_ws_declare(ws, 4, w, "%s.weight", name);
    ddps_ws_declare(ws, 1, b, "%s.bias", name);
}

/* Declares name.weight and name.bias, both [n] (a norm's scale and shift). */
static void declare_vec(ddps_wsrc *ws, int n, const char *name) {
    int64_t s[1] = {n};
    ddps_ws_declare(ws, 1, s, "%s.weight", name);
    ddps_ws_declare(ws, 1, s, "%s.bias", name);
}

/* Declares a decoder ResnetBlock2D: norm1 [in]; conv1 [out, in, 3, 3]; norm2 [out]; conv2 [out, out, 3,
 * 3]; conv_shortcut [out, in, 1, 1] when in != out. */
static void declare_resnet(ddps_wsrc *ws, int in, int out, const char *p) {
    char n[384];
    snprintf(n, sizeof n, "%s.norm1", p);
    declare_vec(ws, in, n);
    snprintf(n, sizeof n, "%s.conv1", p);
    declare_conv(ws, out, in, 3, n);
    snprintf(n, sizeof n, "%s.norm2", p);
    declare_vec(ws, out, n);
    snprintf(n, sizeof n, "%s.conv2", p);
    declare_conv(ws, out, out, 3, n);
    if (in != out) {
        snprintf(n, sizeof n, "%s.conv_shortcut", p);
        declare_conv(ws, out, in, 1, n);
    }
}

/* The decoder: never run by ddps, but part of every AutoencoderKL checkpoint, so its tensors are declared
 * (names and shapes checked) without being loaded: post_quant_conv [L, L, 1, 1]; conv_in [top, L, 3, 3];
 * mid resnets and attention at top = ch[nb-1]; up blocks of layers_per_block + 1 resnets to ch[nb-1-i]
 * with upsampler convs; conv_norm_out [ch[0]]; conv_out [out_channels, ch[0], 3, 3]. L = latent_channels. */
static void declare_decoder(ddps_wsrc *ws, const ddps_vae_config *c) {
    int nb = c->n_blocks, top = c->block_out_channels[nb - 1], L = c->latent_channels;
    char n[384];
    if (c->use_post_quant_conv) declare_conv(ws, L, L, 1, "post_quant_conv");
    declare_conv(ws, top, L, 3, "decoder.conv_in");
    for (int r = 0; r < 2; r++) {
        snprintf(n, sizeof n, "decoder.mid_block.resnets.%d", r);
        declare_resnet(ws, top, top, n);
    }
    if (c->mid_block_add_attention) {
        declare_vec(ws, top, "decoder.mid_block.attentions.0.group_norm");
        static const char *qkv[] = {"to_q", "to_k", "to_v", "to_out.0"};
        for (int i = 0; i < 4; i++) {
            snprintf(n, sizeof n, "decoder.mid_block.attentions.0.%s", qkv[i]);
            int64_t w[2] = {top, top}, b[1] = {top};
            ddps_ws_declare(ws, 2, w, "%s.weight", n);
            ddps_ws_declare(ws, 1, b, "%s.bias", n);
        }
    }
    int prev = top;
    for (int i = 0; i < nb; i++) {
        int out = c->block_out_channels[nb - 1 - i];
        for (int j = 0; j <= c->layers_per_block; j++) {
            snprintf(n, sizeof n, "decoder.up_blocks.%d.resnets.%d", i, j);
            declare_resnet(ws, j == 0 ? prev : out, out, n);
        }
        if (i < nb - 1) {
            snprintf(n, sizeof n, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            declare_conv(ws, out, out, 3, n);
        }
        prev = out;
    }
    declare_vec(ws, c->block_out_channels[0], "decoder.conv_norm_out");
    declare_conv(ws, c->out_channels, c->block_out_channels[0], 3, "decoder.conv_out");
}

/* Encoder weights for config c (ch = block_out_channels, top = ch[nb-1], L = latent_channels;
 * convolutions with a bias): encoder.conv_in [ch[0], in_channels, 3, 3]; down block i: layers_per_block
 * resnets -> ch[i] and, except the last, downsamplers.0.conv [ch[i], ch[i], 3, 3]; mid: resnet, attention
 * (when mid_block_add_attention), resnet at top; conv_norm_out [top]; conv_out [2L, top, 3, 3];
 * quant_conv [2L, 2L, 1, 1], loaded as its mean rows [0, L) and logvar rows [L, 2L). On failure returns
 * -1 with err. */
int ddps_vae_build(ddps_wsrc *ws, const ddps_vae_config *c, ddps_vae **out, ddps_err *err) {
    ddps_vae *m = ddps_calloc(1, sizeof *m);
    m->cfg = *c;
    int nb = c->n_blocks, G = c->norm_num_groups, L = c->latent_channels;
    char n[384];
    m->conv_in = ddps_ws_conv(ws, c->block_out_channels[0], c->in_channels, 3, 1, "encoder.conv_in");
    m->res = ddps_calloc((size_t)nb * c->layers_per_block, sizeof *m->res);
    m->down = ddps_calloc((size_t)nb, sizeof *m->down);
    int prev = c->block_out_channels[0];
    for (int i = 0; i < nb; i++) {
        int ch = c->block_out_channels[i];
        for (int j = 0; j < c->layers_per_block; j++) {
            snprintf(n, sizeof n, "encoder.down_blocks.%d.resnets.%d", i, j);
            ddps_resnet_build(ws, &m->res[i * c->layers_per_block + j], j == 0 ? prev : ch, ch, 0, G, VAE_EPS, n);
        }
        if (i < nb - 1) m->down[i] = ddps_ws_conv(ws, ch, ch, 3, 1, "encoder.down_blocks.%d.downsamplers.0.conv", i);
        prev = ch;
    }
    int top = c->block_out_channels[nb - 1];
    ddps_resnet_build(ws, &m->mid1, top, top, 0, G, VAE_EPS, "encoder.mid_block.resnets.0");
    if (c->mid_block_add_attention) ddps_vae_attn_build(ws, &m->mid_attn, top, G, VAE_EPS, "encoder.mid_block.attentions.0");
    ddps_resnet_build(ws, &m->mid2, top, top, 0, G, VAE_EPS, "encoder.mid_block.resnets.1");
    ddps_gn_build(ws, &m->norm_out, top, G, VAE_EPS, "encoder.conv_norm_out");
    m->conv_out = ddps_ws_conv(ws, 2 * L, top, 3, 1, "encoder.conv_out");
    if (c->use_quant_conv) {
        /* Split into the mean and logvar halves: two small products instead of a slice. */
        m->quant_mean = ddps_ws_conv_rows(ws, 2 * L, 2 * L, 1, 0, L, "quant_conv");
        m->quant_logvar = ddps_ws_conv_rows(ws, 2 * L, 2 * L, 1, L, 2 * L, "quant_conv");
    }
    declare_decoder(ws, c);
    if (ws->failed) {
        ddps_vae_free(ws->be, m);
        *err = ws->err;
        return -1;
    }
    m->all = ddps_ws_take(ws, &m->n_all);
    *out = m;
    return 0;
}

/* Frees m's weights and m (NULL: no-op). */
void ddps_vae_free(ddps_backend *be, ddps_vae *m) {
    if (!m) return;
    for (int i = 0; i < m->n_all; i++) be->ops->free_weight(be, m->all[i]);
    free(m->all);
    free(m->res);
    free(m->down);
    free(m);
}

/* Latent side for an image side s: s -> (s + 1 - 3)/2 + 1 = floor(s/2) once per downsampler (n_blocks - 1
 * times); 0 when a side below 2 would be halved. */
int ddps_vae_latent_size(const ddps_vae_config *c, int s) {
    for (int i = 0; i < c->n_blocks - 1; i++) {
        if (s < 2) return 0;
        s = (s + 1 - 3) / 2 + 1;
    }
    return s;
}

/* x: [n, H, W, in_channels] (RGB in [-1, 1]) -> mean, logvar: [n, h, w, L] (logvar may be NULL), h =
 * ddps_vae_latent_size(c, H), w = ddps_vae_latent_size(c, W), L = latent_channels; unscaled (the caller
 * applies scaling_factor). Down block i runs at [n, H_i, W_i, ch[i]], H_{i+1} = floor(H_i/2) (padding (0,
 * 1), stride 2); mid and conv_norm_out at ch[nb-1]; conv_out -> moments [n, h, w, 2L]; quant_conv's
 * halves -> mean, logvar. */
int ddps_vae_encode(ddps_backend *be, const ddps_vae *m, const ddps_tensor *x, ddps_tensor *mean, ddps_tensor *logvar) {
    const ddps_backend_ops *op = be->ops;
    const ddps_vae_config *c = &m->cfg;
    static const int pad1[4] = {1, 1, 1, 1}, pad_down[4] = {0, 0, 1, 1};
    size_t mark = ddps_mark(be);
    ddps_tensor h = ddps_new(be, x->n, x->h, x->w, c->block_out_channels[0]);
    op->conv2d(be, &h, x, m->conv_in, 1, pad1, 0);
    for (int i = 0; i < c->n_blocks; i++) {
        for (int j = 0; j < c->layers_per_block; j++) h = ddps_resnet_fwd(be, &m->res[i * c->layers_per_block + j], &h, NULL);
        if (i < c->n_blocks - 1) {
            /* diffusers pads (0,1,0,1) then convolves with stride 2, padding 0 */
            ddps_tensor d = ddps_new(be, h.n, (h.h + 1 - 3) / 2 + 1, (h.w + 1 - 3) / 2 + 1, h.c);
            op->conv2d(be, &d, &h, m->down[i], 2, pad_down, 0);
            h = d;
        }
    }
    h = ddps_resnet_fwd(be, &m->mid1, &h, NULL);
    if (c->mid_block_add_attention) h = ddps_vae_attn_fwd(be, &m->mid_attn, &h);
    h = ddps_resnet_fwd(be, &m->mid2, &h, NULL);
    ddps_tensor g = ddps_new(be, h.n, h.h, h.w, h.c);
    op->group_norm(be, &g, &h, NULL, m->norm_out.g, m->norm_out.b, m->norm_out.groups, m->norm_out.eps, 1);
    int L = c->latent_channels;
    ddps_tensor moments = ddps_new(be, h.n, h.h, h.w, 2 * L);
    op->conv2d(be, &moments, &g, m->conv_out, 1, pad1, 0);
    if (c->use_quant_conv) {
        op->linear(be, mean, &moments, m->quant_mean, DDPS_ACT_NONE, 0);
        if (logvar) op->linear(be, logvar, &moments, m->quant_logvar, DDPS_ACT_NONE, 0);
    } else {
        ddps_backend_fail(be, DDPS_KIND_DATA, "VAE without quant_conv is not supported yet");
    }
    ddps_release(be, mark);
    return ddps_backend_error(be, NULL);
}
