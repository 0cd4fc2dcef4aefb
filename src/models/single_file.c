#include "models/single_file.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/sd.h"
#include "models/weights.h"
#include "util/fs.h"

#define UNET_P "model.diffusion_model."
#define EMA_P "model_ema.diffusion_model"
#define VAE_P "first_stage_model."
#define CLIP_P "cond_stage_model.transformer.text_model."
#define CLIP_OLD_P "cond_stage_model.transformer."
#define OCLIP_P "cond_stage_model.model."

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* Replaces a leading part of rest by its counterpart from a table of
 * {diffusers, original} pairs; unmatched rests are kept as they are. */
static void subst(char *out, size_t n, const char *head, const char *rest, const char *const (*map)[2], size_t nmap) {
    for (size_t i = 0; i < nmap; i++)
        if (starts(rest, map[i][0])) {
            snprintf(out, n, "%s%s%s", head, map[i][1], rest + strlen(map[i][0]));
            return;
        }
    snprintf(out, n, "%s%s", head, rest);
}

static const char *const UNET_RES[][2] = {{"norm1.", "in_layers.0."},   {"conv1.", "in_layers.2."},
                                          {"time_emb_proj.", "emb_layers.1."}, {"norm2.", "out_layers.0."},
                                          {"conv2.", "out_layers.3."},  {"conv_shortcut.", "skip_connection."}};
static const char *const VAE_RES[][2] = {{"conv_shortcut.", "nin_shortcut."}};
static const char *const VAE_ATTN[][2] = {
    {"group_norm.", "norm."}, {"to_q.", "q."}, {"to_k.", "k."}, {"to_v.", "v."}, {"to_out.0.", "proj_out."}};
#define NMAP(m) (sizeof m / sizeof *m)

/* sscanf with a trailing %n: 1 when the whole pattern matched, *k = its length. */
#define MATCH2(s, fmt, a, b, k) (*(k) = -1, sscanf(s, fmt "%n", a, b, k) == 2 && *(k) > 0)
#define MATCH1(s, fmt, a, k) (*(k) = -1, sscanf(s, fmt "%n", a, k) == 1 && *(k) > 0)

/* Original UNet name of a diffusers UNet name: input_blocks count 1 + i(L+1) + j
 * (L = layers_per_block; the downsampler is the block's last), output_blocks
 * i(L+1) + j, the upsampler after the resnet (index 1) or after the attention
 * (index 2) of the up block's last layer. -1 for names ddps never declares. */
static int unet_name(const ddps_unet_config *c, const char *name, char *out, size_t n) {
    int L = c->layers_per_block, i, j, k;
    char head[96];
    static const char *const simple[][2] = {{"conv_in.", "input_blocks.0.0."},
                                            {"time_embedding.linear_1.", "time_embed.0."},
                                            {"time_embedding.linear_2.", "time_embed.2."},
                                            {"conv_norm_out.", "out.0."},
                                            {"conv_out.", "out.2."}};
    for (size_t s = 0; s < NMAP(simple); s++)
        if (starts(name, simple[s][0])) {
            snprintf(out, n, UNET_P "%s%s", simple[s][1], name + strlen(simple[s][0]));
            return 0;
        }
    if (MATCH2(name, "down_blocks.%d.resnets.%d.", &i, &j, &k)) {
        snprintf(head, sizeof head, UNET_P "input_blocks.%d.0.", 1 + i * (L + 1) + j);
        subst(out, n, head, name + k, UNET_RES, NMAP(UNET_RES));
    } else if (MATCH2(name, "down_blocks.%d.attentions.%d.", &i, &j, &k)) {
        snprintf(out, n, UNET_P "input_blocks.%d.1.%s", 1 + i * (L + 1) + j, name + k);
    } else if (MATCH1(name, "down_blocks.%d.downsamplers.0.conv.", &i, &k)) {
        snprintf(out, n, UNET_P "input_blocks.%d.0.op.%s", 1 + i * (L + 1) + L, name + k);
    } else if (MATCH1(name, "mid_block.resnets.%d.", &j, &k)) {
        snprintf(head, sizeof head, UNET_P "middle_block.%d.", 2 * j);
        subst(out, n, head, name + k, UNET_RES, NMAP(UNET_RES));
    } else if (starts(name, "mid_block.attentions.0.")) {
        snprintf(out, n, UNET_P "middle_block.1.%s", name + strlen("mid_block.attentions.0."));
    } else if (MATCH2(name, "up_blocks.%d.resnets.%d.", &i, &j, &k)) {
        snprintf(head, sizeof head, UNET_P "output_blocks.%d.0.", i * (L + 1) + j);
        subst(out, n, head, name + k, UNET_RES, NMAP(UNET_RES));
    } else if (MATCH2(name, "up_blocks.%d.attentions.%d.", &i, &j, &k)) {
        snprintf(out, n, UNET_P "output_blocks.%d.1.%s", i * (L + 1) + j, name + k);
    } else if (MATCH1(name, "up_blocks.%d.upsamplers.0.conv.", &i, &k)) {
        if (i < 0 || i >= c->n_blocks) return -1;
        snprintf(out, n, UNET_P "output_blocks.%d.%d.conv.%s", i * (L + 1) + L, c->up_cross[i] ? 2 : 1, name + k);
    } else {
        return -1;
    }
    return 0;
}

/* Original VAE name of a diffusers AutoencoderKL name (the decoder's up blocks
 * are numbered in reverse there). -1 for names ddps never declares. */
static int vae_name(const ddps_vae_config *c, const char *name, char *out, size_t n) {
    int nb = c->n_blocks, i, j, k;
    char head[96];
    static const char *const same[] = {"encoder.conv_in.", "encoder.conv_out.", "decoder.conv_in.",
                                       "decoder.conv_out.", "quant_conv.",       "post_quant_conv."};
    for (size_t s = 0; s < NMAP(same); s++)
        if (starts(name, same[s])) {
            snprintf(out, n, VAE_P "%s", name);
            return 0;
        }
    static const char *const part[] = {"encoder", "decoder"};
    for (int p = 0; p < 2; p++) {
        char pre[64];
        size_t pl = (size_t)snprintf(pre, sizeof pre, "%s.", part[p]);
        if (!starts(name, pre)) continue;
        const char *r = name + pl;
        if (starts(r, "conv_norm_out.")) {
            snprintf(out, n, VAE_P "%snorm_out.%s", pre, r + strlen("conv_norm_out."));
        } else if (MATCH1(r, "mid_block.resnets.%d.", &j, &k)) {
            snprintf(head, sizeof head, VAE_P "%smid.block_%d.", pre, j + 1);
            subst(out, n, head, r + k, VAE_RES, NMAP(VAE_RES));
        } else if (starts(r, "mid_block.attentions.0.")) {
            snprintf(head, sizeof head, VAE_P "%smid.attn_1.", pre);
            subst(out, n, head, r + strlen("mid_block.attentions.0."), VAE_ATTN, NMAP(VAE_ATTN));
        } else if (p == 0 && MATCH2(r, "down_blocks.%d.resnets.%d.", &i, &j, &k)) {
            snprintf(head, sizeof head, VAE_P "encoder.down.%d.block.%d.", i, j);
            subst(out, n, head, r + k, VAE_RES, NMAP(VAE_RES));
        } else if (p == 0 && MATCH1(r, "down_blocks.%d.downsamplers.0.conv.", &i, &k)) {
            snprintf(out, n, VAE_P "encoder.down.%d.downsample.conv.%s", i, r + k);
        } else if (p == 1 && MATCH2(r, "up_blocks.%d.resnets.%d.", &i, &j, &k)) {
            snprintf(head, sizeof head, VAE_P "decoder.up.%d.block.%d.", nb - 1 - i, j);
            subst(out, n, head, r + k, VAE_RES, NMAP(VAE_RES));
        } else if (p == 1 && MATCH1(r, "up_blocks.%d.upsamplers.0.conv.", &i, &k)) {
            snprintf(out, n, VAE_P "decoder.up.%d.upsample.conv.%s", nb - 1 - i, r + k);
        } else {
            return -1;
        }
        return 0;
    }
    return -1;
}

int ddps_ldm_name(const char *component, const void *cfg, const char *name, char *out, size_t n) {
    if (strcmp(component, "unet") == 0) return unet_name(cfg, name, out, n);
    if (strcmp(component, "vae") == 0) return vae_name(cfg, name, out, n);
    if (strcmp(component, "text_encoder") == 0) {
        snprintf(out, n, CLIP_P "%s", name);
        return 0;
    }
    return -1;
}

void ddps_ldm_ema_name(const char *ldm, char *out, size_t n) {
    const char *p = starts(ldm, "model.") ? ldm + strlen("model.") : ldm;
    size_t o = (size_t)snprintf(out, n, "model_ema.");
    for (; *p && o + 1 < n; p++)
        if (*p != '.') out[o++] = *p;
    out[o < n ? o : n - 1] = 0;
}

/* OpenCLIP (SD 2.x) name of a diffusers text encoder tensor; *part is the
 * third of a fused in_proj tensor to take (0, 1, 2 for q, k, v) or -1. */
static int openclip_name(const char *name, char *out, size_t n, int *part) {
    int i, k;
    *part = -1;
    if (strcmp(name, "embeddings.token_embedding.weight") == 0) {
        snprintf(out, n, OCLIP_P "token_embedding.weight");
    } else if (strcmp(name, "embeddings.position_embedding.weight") == 0) {
        snprintf(out, n, OCLIP_P "positional_embedding");
    } else if (starts(name, "final_layer_norm.")) {
        snprintf(out, n, OCLIP_P "ln_final.%s", name + strlen("final_layer_norm."));
    } else if (MATCH1(name, "encoder.layers.%d.", &i, &k)) {
        static const char *const map[][2] = {{"layer_norm1.", "ln_1."},
                                             {"layer_norm2.", "ln_2."},
                                             {"mlp.fc1.", "mlp.c_fc."},
                                             {"mlp.fc2.", "mlp.c_proj."},
                                             {"self_attn.out_proj.", "attn.out_proj."}};
        static const char *const qkv[] = {"self_attn.q_proj.", "self_attn.k_proj.", "self_attn.v_proj."};
        char head[96];
        const char *r = name + k;
        snprintf(head, sizeof head, OCLIP_P "transformer.resblocks.%d.", i);
        for (int q = 0; q < 3; q++)
            if (starts(r, qkv[q])) {
                *part = q;
                snprintf(out, n, "%sattn.in_proj_%s", head, r + strlen(qkv[q]));
                return 0;
            }
        for (size_t m = 0; m < NMAP(map); m++)
            if (starts(r, map[m][0])) {
                snprintf(out, n, "%s%s%s", head, map[m][1], r + strlen(map[m][0]));
                return 0;
            }
        return -1;
    } else {
        return -1;
    }
    return 0;
}

int ddps_single_open(const char *path, ddps_single *s, ddps_err *err) {
    memset(s, 0, sizeof *s);
    if (ddps_st_open(&s->file, path, err) != 0) return -1;
    int clip = 0;
    for (int i = 0; i < s->file.n; i++) {
        const char *nm = s->file.t[i].name;
        if (starts(nm, UNET_P)) s->has_plain = 1;
        if (starts(nm, EMA_P)) s->has_ema = 1;
        if (starts(nm, OCLIP_P)) s->openclip = 1;
        if (starts(nm, CLIP_OLD_P)) clip = 1;
    }
    if (!s->has_plain && !s->has_ema) {
        ddps_single_close(s);
        return ddps_fail_data(err,
                         "%s: not a Stable Diffusion single-file checkpoint (no model.diffusion_model.* UNet "
                         "weights) and not a diffusers model folder",
                         path);
    }
    if (clip) s->openclip = 0;
    s->use_ema = s->has_ema;
    if (s->has_ema && s->has_plain)
        ddps_info("note: %s has EMA and non-EMA UNet weights: using the EMA weights (model_ema.*), as the original "
                  "inference scripts do",
                  path);
    s->used = ddps_calloc((size_t)s->file.n + 1, 1);
    return 0;
}

void ddps_single_close(ddps_single *s) {
    ddps_st_close(&s->file);
    free(s->used);
    s->used = NULL;
}

/* A UNet tensor by original name, from the copy in use. */
static const st_tensor *unet_tensor(const ddps_single *s, const char *ldm) {
    if (s->use_ema) {
        char ema[512];
        ddps_ldm_ema_name(ldm, ema, sizeof ema);
        const st_tensor *t = ddps_st_find(&s->file, ema);
        if (t || !s->has_plain) return t;
    }
    return ddps_st_find(&s->file, ldm);
}

/* Size of dimension d, or -1 (no tensor, fewer dims). */
static int64_t dim(const st_tensor *t, int d) { return t && t->ndim > d ? t->shape[d] : -1; }

int ddps_single_check_configs(const ddps_single *s, const char *config_dir, const ddps_unet_config *u,
                              const ddps_clip_config *c, ddps_err *err) {
    char what[512] = "";
    size_t n = 0;
    const st_tensor *tok = ddps_st_find(&s->file, CLIP_P "embeddings.token_embedding.weight");
    if (!tok) tok = ddps_st_find(&s->file, CLIP_OLD_P "embeddings.token_embedding.weight");
    if (c && (s->openclip || tok) && s->openclip == c->quick_gelu)
        n += (size_t)snprintf(what + n, sizeof what - n, "the file's text encoder is %s, the configs' %s",
                              s->openclip ? "OpenCLIP (SD 2.x)" : "CLIP ViT-L (SD v1.x)",
                              c->quick_gelu ? "CLIP (quick_gelu)" : "OpenCLIP-style (gelu)");
    const st_tensor *pin = unet_tensor(s, UNET_P "input_blocks.1.1.proj_in.weight");
    int pdims = pin ? pin->ndim : 0;
    if (u && pdims > 0 && (pdims == 2) != (u->use_linear_projection != 0))
        n += (size_t)snprintf(what + n, sizeof what - n, "%sthe file's UNet projections are %s, the configs' %s",
                              n ? "; " : "", pdims == 2 ? "linear (SD 2.x)" : "1x1 convolutions (SD v1.x)",
                              u->use_linear_projection ? "linear" : "1x1 convolutions");
    if (n == 0) return 0;
    return ddps_fail_kind(err, DDPS_KIND_DATA, "%s: --config %s describes another model (%s): pass the configs of the "
                          "model this file holds", s->file.path, config_dir, what);
}

int ddps_single_infer_sd1(const ddps_single *s, ddps_unet_config *u, ddps_vae_config *v, ddps_clip_config *c,
                          ddps_err *err) {
    const char *path = s->file.path;
    const st_tensor *k = unet_tensor(s, UNET_P "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight");
    const st_tensor *c1 = unet_tensor(s, UNET_P "input_blocks.1.0.in_layers.2.weight");
    const st_tensor *c2 = unet_tensor(s, UNET_P "input_blocks.4.0.in_layers.2.weight");
    const st_tensor *c3 = unet_tensor(s, UNET_P "input_blocks.7.0.in_layers.2.weight");
    const st_tensor *tok = ddps_st_find(&s->file, CLIP_P "embeddings.token_embedding.weight");
    if (!tok) tok = ddps_st_find(&s->file, CLIP_OLD_P "embeddings.token_embedding.weight");
    long long xdim = (long long)dim(k, 1), ch[3] = {dim(c1, 0), dim(c2, 0), dim(c3, 0)};
    if (s->openclip || xdim != 768 || ch[0] != 320 || ch[1] != 640 || ch[2] != 1280 || dim(tok, 1) != 768)
        return ddps_fail_data(err,
                         "%s: not an SD v1.x checkpoint (cross-attention width %lld, UNet channels %lld/%lld/%lld, %s "
                         "text encoder; SD v1.x has 768, 320/640/1280, CLIP): pass --config DIR, a diffusers-layout "
                         "folder with the model's configs",
                         path, xdim, ch[0], ch[1], ch[2], s->openclip ? "an OpenCLIP" : tok ? "a CLIP" : "no");
    ddps_sd15_unet_config(u);
    ddps_sd15_vae_config(v);
    ddps_sd15_clip_config(c);
    return 0;
}

/* Name order, as ddps_st_find expects. */
static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

int ddps_single_view(ddps_single *s, const char *component, const void *cfg, st_file *view, ddps_err *err) {
    memset(view, 0, sizeof *view);
    view->fd = -1;
    ddps_wsrc decl;
    if (ddps_sd_declare(component, cfg, &decl, err) != 0) {
        ddps_ws_free(&decl);
        return -1;
    }
    int is_unet = strcmp(component, "unet") == 0, is_text = strcmp(component, "text_encoder") == 0;
    view->t = ddps_calloc((size_t)decl.n + 1, sizeof *view->t);
    for (int i = 0; i < decl.n; i++) {
        const char *name = decl.list[i].name;
        char ldm[512];
        int part = -1;
        const st_tensor *t = NULL;
        if (is_text && s->openclip) {
            if (openclip_name(name, ldm, sizeof ldm, &part) == 0) t = ddps_st_find(&s->file, ldm);
        } else if (ddps_ldm_name(component, cfg, name, ldm, sizeof ldm) == 0) {
            t = is_unet ? unet_tensor(s, ldm) : ddps_st_find(&s->file, ldm);
            if (!t && is_text) {
                snprintf(ldm, sizeof ldm, CLIP_OLD_P "%s", name);
                t = ddps_st_find(&s->file, ldm);
            }
        }
        if (!t) continue;
        s->used[t - s->file.t] = 1;
        st_tensor *o = &view->t[view->n++];
        *o = *t;
        o->name = ddps_strdup(name);
        /* One third of OpenCLIP's fused q/k/v projection: rows [part*H, (part+1)*H). */
        if (part >= 0 && t->ndim >= 1 && t->shape[0] % 3 == 0 && t->shape[0] > 0) {
            size_t rows = (size_t)t->shape[0] / 3, per_row = t->numel / (size_t)t->shape[0];
            size_t bytes = rows * per_row * ddps_st_dtype_size(t->dtype);
            o->shape[0] = (int64_t)rows;
            o->numel = rows * per_row;
            o->nbytes = bytes;
            o->offset = t->offset + (size_t)part * bytes;
            o->data = (const char *)t->data + (size_t)part * bytes;
        }
    }
    qsort(view->t, (size_t)view->n, sizeof *view->t, cmp_tensor);
    view->path = ddps_strdup(s->file.path);
    view->map = s->file.map;
    view->map_size = s->file.map_size;
    view->data_start = s->file.data_start;
    ddps_ws_free(&decl);
    return 0;
}

void ddps_single_view_free(st_file *view) {
    for (int i = 0; i < view->n; i++) free(view->t[i].name);
    free(view->t);
    free(view->path);
    memset(view, 0, sizeof *view);
    view->fd = -1;
}

/* Tensors a checkpoint carries that are not weights ddps needs (no warning). */
int ddps_single_check_missing(const ddps_single *s, const char *component, const void *cfg, const st_file *view,
                              const char *what, ddps_err *err) {
    ddps_wsrc decl;
    if (ddps_sd_declare(component, cfg, &decl, err) != 0) {
        ddps_ws_free(&decl);
        return -1;
    }
    char list[1536] = "";
    size_t o = 0;
    int missing = 0;
    for (int i = 0; i < decl.n; i++) {
        if (ddps_st_find(view, decl.list[i].name)) continue;
        char ldm[512];
        int part;
        int ok = strcmp(component, "text_encoder") == 0 && s->openclip
                     ? openclip_name(decl.list[i].name, ldm, sizeof ldm, &part) == 0
                     : ddps_ldm_name(component, cfg, decl.list[i].name, ldm, sizeof ldm) == 0;
        if (missing++ < 8 && o < sizeof list)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", missing > 1 ? ", " : "", ok ? ldm : decl.list[i].name);
    }
    ddps_ws_free(&decl);
    if (!missing) return 0;
    return ddps_fail_data(err, "%s: %d tensor%s missing: %s%s", what, missing, missing > 1 ? "s" : "", list,
                     missing > 8 ? ", ..." : "");
}

static int known_buffer(const ddps_single *s, const char *nm) {
    if (!strchr(nm, '.')) return 1; /* betas, alphas_cumprod, posterior_*, logvar, ... */
    if (starts(nm, "model_ema.")) return !s->use_ema || strcmp(nm, "model_ema.decay") == 0 ||
                                         strcmp(nm, "model_ema.num_updates") == 0;
    if (starts(nm, UNET_P)) return s->use_ema;
    if (strstr(nm, "position_ids")) return 1;
    if (starts(nm, OCLIP_P)) return s->openclip; /* the unused last layer, projections, logit scale */
    if (starts(nm, VAE_P "loss.")) return 1;     /* training-only discriminator/LPIPS weights */
    return 0;
}

void ddps_single_warn_unused(const ddps_single *s) {
    int extras = 0;
    const char *first = NULL;
    for (int i = 0; i < s->file.n; i++)
        if (!s->used[i] && !known_buffer(s, s->file.t[i].name)) {
            if (!extras) first = s->file.t[i].name;
            extras++;
        }
    if (extras)
        ddps_warn("%s: %d tensor%s not used by ddps (e.g. '%s')", s->file.path, extras, extras > 1 ? "s" : "", first);
}

int ddps_single_alphas_cumprod(const ddps_single *s, int n, float *out) {
    const st_tensor *t = ddps_st_find(&s->file, "alphas_cumprod");
    if (!t || t->ndim != 1 || t->shape[0] != n) return -1;
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16 && t->dtype != ST_F64) return -1;
    if (ddps_st_to_f32(t, out) != 0) return -1;
    for (int i = 0; i < n; i++)
        if (!(out[i] > 0.0f && out[i] <= 1.0f)) return -1;
    return 0;
}
