/* `ddps probe ...` (ddps_probe_run): runs one model component on inputs from
 * a safetensors file and writes its outputs to another, in PyTorch's NCHW
 * layout and tensor names, so results can be compared with
 * diffusers/transformers. These interfaces are stable: tests and users
 * script against them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "models/sd.h"
#include "pipeline/stage1.h"
#include "tools/tools.h"
#include "util/fs.h"

typedef ddps_probe_params probe_opts;

/* dst [n][h][w][c] from src [n][c][h][w]. */
static void nchw_to_nhwc(const float *src, float *dst, int n, int c, int h, int w) {
    for (int b = 0; b < n; b++)
        for (int k = 0; k < c; k++)
            for (int i = 0; i < h * w; i++) dst[((size_t)b * h * w + i) * c + k] = src[((size_t)b * c + k) * h * w + i];
}

/* dst [n][c][h][w] from src [n][h][w][c]. */
static void nhwc_to_nchw(const float *src, float *dst, int n, int c, int h, int w) {
    for (int b = 0; b < n; b++)
        for (int k = 0; k < c; k++)
            for (int i = 0; i < h * w; i++) dst[((size_t)b * c + k) * h * w + i] = src[((size_t)b * h * w + i) * c + k];
}

/* Reads a float tensor of ndim dimensions; dims with want[i] > 0 must match. */
static float *input_f32(const st_file *f, const char *name, int ndim, const int64_t *want, int64_t *shape,
                        ddps_err *err) {
    const st_tensor *t = ddps_st_find(f, name);
    if (!t) return ddps_fail(err, "%s: no tensor '%s'", f->path, name), NULL;
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16)
        return ddps_fail(err, "%s: tensor '%s' has dtype %s, expected F32", f->path, name, ddps_st_dtype_name(t->dtype)), NULL;
    if (t->ndim != ndim) return ddps_fail(err, "%s: tensor '%s' has %d dimensions, expected %d", f->path, name, t->ndim, ndim), NULL;
    for (int i = 0; i < ndim; i++) {
        if (t->shape[i] < 1 || t->shape[i] > (1 << 20) || (want && want[i] > 0 && t->shape[i] != want[i]))
            return ddps_fail(err, "%s: tensor '%s' has an unexpected size %lld in dimension %d", f->path, name,
                             (long long)t->shape[i], i),
                   NULL;
        shape[i] = t->shape[i];
    }
    float *p = ddps_malloc(t->numel * sizeof(float));
    if (ddps_st_to_f32(t, p)) {
        free(p);
        return ddps_fail(err, "%s: tensor '%s' has non-finite values", f->path, name), NULL;
    }
    return p;
}

/* Reads an integer tensor of ndim dimensions with every value in [lo, hi]
 * (heap int64, shape filled); NULL with err when absent or out of range. */
static int64_t *input_int(const st_file *f, const char *name, int ndim, int64_t lo, int64_t hi, int64_t *shape,
                          ddps_err *err) {
    const st_tensor *t = ddps_st_find(f, name);
    if (!t) return ddps_fail(err, "%s: no tensor '%s'", f->path, name), NULL;
    if (t->ndim != ndim || t->numel == 0)
        return ddps_fail(err, "%s: tensor '%s' has %d dimensions, expected %d", f->path, name, t->ndim, ndim), NULL;
    for (int i = 0; i < ndim; i++) shape[i] = t->shape[i];
    int64_t *p = ddps_malloc(t->numel * sizeof(int64_t));
    if (ddps_st_to_i64(f, t, lo, hi, p, err) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

/* Output tensors: collected, written at the end. The most a probe writes is
 * the UNet's: a tap per down and up block, mid, and eps. */
#define OUT_MAX (2 * DDPS_MAX_BLOCKS + 2)
typedef struct {
    st_out t[OUT_MAX];
    float *data[OUT_MAX];
    int n;
} outset;

/* Adds a tensor given as NHWC, stored as NCHW [n,c,h,w] (copied). */
static void out_add_nchw(outset *o, const char *name, const float *nhwc, int n, int c, int h, int w) {
    float *p = ddps_malloc((size_t)n * c * h * w * sizeof(float));
    nhwc_to_nchw(nhwc, p, n, c, h, w);
    o->data[o->n] = p;
    o->t[o->n] = (st_out){name, ST_F32, 4, {n, c, h, w}, p};
    o->n++;
}

/* Adds p (heap, now owned by the set) as it is, with the given shape. */
static void out_add_raw(outset *o, const char *name, float *p, int ndim, const int64_t *shape) {
    o->data[o->n] = p;
    o->t[o->n] = (st_out){name, ST_F32, ndim, {0}, p};
    memcpy(o->t[o->n].shape, shape, (size_t)ndim * sizeof *shape);
    o->n++;
}

/* Writes the set to path and empties it. */
static int out_write(outset *o, const char *path, ddps_err *err) {
    int rc = ddps_st_write(path, o->t, o->n, err);
    for (int i = 0; i < o->n; i++) free(o->data[i]);
    o->n = 0;
    return rc;
}

/* Encodes prompts to contexts [n,1,77,C] on the backend. */
static int encode_prompts(ddps_backend *be, const ddps_sd *sd, const char *const *texts, int n, ddps_tensor *ctx) {
    int32_t *ids = ddps_malloc((size_t)n * DDPS_CLIP_LEN * sizeof(int32_t));
    for (int i = 0; i < n; i++) ddps_tokenize(sd->tok, texts[i], ids + (size_t)i * DDPS_CLIP_LEN);
    *ctx = ddps_new(be, n, 1, DDPS_CLIP_LEN, sd->clip_cfg.hidden_size);
    ddps_clip_forward(be, sd->text, ids, ctx);
    free(ids);
    return 0;
}

/* text: input_ids [B,77] -> last_hidden_state [B,77,H]. */
static int probe_text(ddps_backend *be, const ddps_sd *sd, const probe_opts *po, const st_file *in, outset *o,
                      ddps_err *err) {
    int64_t shape[2];
    int64_t *ids = input_int(in, "input_ids", 2, 0, sd->clip_cfg.vocab_size - 1, shape, err);
    if (!ids) return -1;
    if (shape[1] != DDPS_CLIP_LEN) {
        free(ids);
        return ddps_fail(err, "%s: input_ids must be [B, 77]", in->path);
    }
    int n = (int)shape[0], H = sd->clip_cfg.hidden_size;
    int32_t *ids32 = ddps_malloc((size_t)n * DDPS_CLIP_LEN * sizeof(int32_t));
    for (int i = 0; i < n * DDPS_CLIP_LEN; i++) ids32[i] = (int32_t)ids[i];
    free(ids);
    ddps_tensor y = ddps_new(be, n, 1, DDPS_CLIP_LEN, H);
    ddps_clip_forward(be, sd->text, ids32, &y);
    free(ids32);
    float *p = ddps_malloc(ddps_numel(&y) * sizeof(float));
    be->ops->read(be, p, &y);
    int64_t os[3] = {n, DDPS_CLIP_LEN, H};
    out_add_raw(o, "last_hidden_state", p, 3, os);
    return 0;
}

/* vae: image [B,3,H,W] in [-1,1] -> mean, logvar (clamped as diffusers does), latent. */
static int probe_vae(ddps_backend *be, const ddps_sd *sd, const probe_opts *po, const st_file *in, outset *o,
                     ddps_err *err) {
    int64_t shape[4], want[4] = {0, sd->vae_cfg.in_channels, 0, 0};
    float *img = input_f32(in, "image", 4, want, shape, err);
    if (!img) return -1;
    int n = (int)shape[0], c = (int)shape[1], H = (int)shape[2], W = (int)shape[3];
    ddps_tensor x = ddps_new(be, n, H, W, c);
    float *nhwc = ddps_malloc(ddps_numel(&x) * sizeof(float));
    nchw_to_nhwc(img, nhwc, n, c, H, W);
    be->ops->write(be, &x, nhwc);
    free(img);
    free(nhwc);
    int h = ddps_vae_latent_size(&sd->vae_cfg, H), w = ddps_vae_latent_size(&sd->vae_cfg, W),
        L = sd->vae_cfg.latent_channels;
    if (!h || !w) return ddps_fail(err, "%s: a %dx%d image is too small for the VAE", in->path, W, H);
    ddps_tensor mean = ddps_new(be, n, h, w, L), logvar = ddps_new(be, n, h, w, L), z = ddps_new(be, n, h, w, L);
    ddps_vae_encode(be, sd->vae, &x, &mean, &logvar);
    ddps_encode_latent(be, sd, &x, &z);
    float *p = ddps_malloc(ddps_numel(&mean) * sizeof(float));
    be->ops->read(be, p, &mean);
    out_add_nchw(o, "mean", p, n, L, h, w);
    be->ops->read(be, p, &logvar);
    for (size_t i = 0; i < ddps_numel(&logvar); i++) p[i] = p[i] < -30 ? -30 : p[i] > 20 ? 20 : p[i];
    out_add_nchw(o, "logvar", p, n, L, h, w);
    be->ops->read(be, p, &z);
    out_add_nchw(o, "latent", p, n, L, h, w);
    free(p);
    return 0;
}

/* What probe_tap writes into. */
typedef struct {
    ddps_backend *be;
    outset *o;
} tap_ctx;

/* UNet tap: a copy of every block output, named as the UNet names it. */
static void probe_tap(void *u, const char *name, const ddps_tensor *t) {
    tap_ctx *c = u;
    float *p = ddps_malloc(ddps_numel(t) * sizeof(float));
    c->be->ops->read(c->be, p, t);
    static char names[OUT_MAX][16];
    snprintf(names[c->o->n], sizeof names[0], "%s", name);
    out_add_nchw(c->o, names[c->o->n], p, t->n, t->c, t->h, t->w);
    free(p);
}

/* unet: sample [B,4,h,w], timesteps [B], context [B,77,C] -> eps, down0.., mid, up0... */
static int probe_unet(ddps_backend *be, const ddps_sd *sd, const probe_opts *po, const st_file *in, outset *o,
                      ddps_err *err) {
    const ddps_unet_config *uc = &sd->unet_cfg;
    int64_t xs[4], ts[1], cs[3], wx[4] = {0, uc->in_channels, 0, 0};
    float *x = input_f32(in, "sample", 4, wx, xs, err);
    if (!x) return -1;
    int64_t wc[3] = {xs[0], 0, uc->cross_attention_dim};
    int64_t *t = input_int(in, "timesteps", 1, 0, sd->sched_cfg.num_train_timesteps - 1, ts, err);
    float *ctx = t ? input_f32(in, "context", 3, wc, cs, err) : NULL;
    if (!t || !ctx || ts[0] != xs[0]) {
        if (t && ctx) ddps_fail(err, "%s: timesteps must have one entry per sample", in->path);
        free(x), free(t), free(ctx);
        return -1;
    }
    int n = (int)xs[0], c = (int)xs[1], h = (int)xs[2], w = (int)xs[3];
    float *tf = ddps_malloc((size_t)n * sizeof(float));
    for (int i = 0; i < n; i++) tf[i] = (float)t[i];
    ddps_tensor tx = ddps_new(be, n, h, w, c), tc = ddps_new(be, n, 1, (int)cs[1], (int)cs[2]),
                te = ddps_new(be, n, h, w, uc->out_channels);
    float *nhwc = ddps_malloc(ddps_numel(&tx) * sizeof(float));
    nchw_to_nhwc(x, nhwc, n, c, h, w);
    be->ops->write(be, &tx, nhwc);
    be->ops->write(be, &tc, ctx);
    tap_ctx tcx = {be, o};
    ddps_unet_opts opts = {probe_tap, &tcx, -1};
    ddps_unet_forward(be, sd->unet, &tx, tf, &tc, &te, &opts);
    float *p = ddps_malloc(ddps_numel(&te) * sizeof(float));
    be->ops->read(be, p, &te);
    out_add_nchw(o, "eps", p, n, uc->out_channels, h, w);
    free(p), free(nhwc), free(x), free(t), free(ctx), free(tf);
    return 0;
}

/* stage1: image [1,3,H,W], timesteps [K], noises [K,1,c,h,w] -> latent, diff,
 * score_map, patch_scores (the prompts, patch and stride from po). */
static int probe_stage1(ddps_backend *be, const ddps_sd *sd, const probe_opts *po, const st_file *in, outset *o,
                        ddps_err *err) {
    int64_t is[4], ts[1], ns[5], wi[4] = {1, 3, 0, 0};
    float *img = input_f32(in, "image", 4, wi, is, err);
    if (!img) return -1;
    int H = (int)is[2], W = (int)is[3];
    int h = ddps_vae_latent_size(&sd->vae_cfg, H), w = ddps_vae_latent_size(&sd->vae_cfg, W),
        c = sd->vae_cfg.latent_channels;
    int64_t *t = input_int(in, "timesteps", 1, 0, sd->sched_cfg.num_train_timesteps - 1, ts, err);
    int64_t wn[5] = {t ? ts[0] : 0, 1, c, h, w};
    float *noise = t ? input_f32(in, "noises", 5, wn, ns, err) : NULL;
    if (!t || !noise) {
        free(img), free(t);
        return -1;
    }
    int K = (int)ts[0];
    float *img_nhwc = ddps_malloc((size_t)H * W * 3 * sizeof(float)), *noise_nhwc = ddps_malloc((size_t)K * h * w * c * sizeof(float));
    nchw_to_nhwc(img, img_nhwc, 1, 3, H, W);
    nchw_to_nhwc(noise, noise_nhwc, K, c, h, w);
    int *tsi = ddps_malloc((size_t)K * sizeof(int));
    for (int k = 0; k < K; k++) tsi[k] = (int)t[k];
    ddps_tensor x = ddps_new(be, 1, H, W, 3), ctx;
    be->ops->write(be, &x, img_nhwc);
    const char *prompts[2] = {po->null_prompt, po->prompt};
    encode_prompts(be, sd, prompts, 2, &ctx);
    ddps_tensor cn = ddps_slice(be, &ctx, 0, 1), cl = ddps_slice(be, &ctx, 1, 1);
    ddps_stage1_result r;
    int rc = ddps_stage1_run(be, sd, &x, &cn, &cl, tsi, K, noise_nhwc, po->patch, po->stride, &r, err);
    if (rc == 0) {
        out_add_nchw(o, "latent", r.latent, 1, c, h, w);
        out_add_nchw(o, "diff", r.diff, 1, c, h, w);
        int64_t sm[4] = {1, 1, H, W}, ps[4] = {1, 1, r.ph, r.pw};
        out_add_raw(o, "score_map", r.score_map, 4, sm);
        out_add_raw(o, "patch_scores", r.patch_scores, 4, ps);
        r.score_map = r.patch_scores = NULL; /* now owned by the output set */
        ddps_stage1_result_free(&r);
    }
    free(img), free(t), free(noise), free(img_nhwc), free(noise_nhwc), free(tsi);
    return rc;
}

/* schedule: alphas_cumprod [T]. */
static int probe_schedule(ddps_backend *be, const ddps_sd *sd, const probe_opts *po, const st_file *in, outset *o,
                          ddps_err *err) {
    int T = sd->sched_cfg.num_train_timesteps;
    float *p = ddps_malloc((size_t)T * sizeof(float));
    memcpy(p, sd->alphas_cumprod, (size_t)T * sizeof(float));
    int64_t s[1] = {T};
    out_add_raw(o, "alphas_cumprod", p, 1, s);
    return 0;
}

/* One probe: its name, the model parts it loads, the files it needs, and
 * what it runs (NULL: tokenize, which writes report lines instead). */
typedef int (*probe_fn)(ddps_backend *be, const ddps_sd *sd, const probe_opts *po, const st_file *in, outset *o,
                        ddps_err *err);
typedef struct {
    const char *name;
    unsigned parts;
    int needs_in, needs_out, needs_backend;
    probe_fn fn;
} probe_kind;

static const probe_kind PROBES[] = {
    {"tokenize", DDPS_PART_TOKENIZER, 0, 0, 0, NULL},
    {"text", DDPS_PART_TEXT, 1, 1, 1, probe_text},
    {"vae", DDPS_PART_VAE, 1, 1, 1, probe_vae},
    {"unet", DDPS_PART_UNET | DDPS_PART_SCHEDULER, 1, 1, 1, probe_unet},
    {"schedule", DDPS_PART_SCHEDULER, 0, 1, 0, probe_schedule},
    {"stage1", DDPS_PART_ALL, 1, 1, 1, probe_stage1},
};

/* The probe named what, or NULL. */
static const probe_kind *probe_find(const char *what) {
    for (size_t i = 0; what && i < sizeof PROBES / sizeof *PROBES; i++)
        if (strcmp(PROBES[i].name, what) == 0) return &PROBES[i];
    return NULL;
}

/* Usage checks, in the CLI's order: the probe's name, then the files it
 * needs, stray texts, the precision. */
static int probe_check(const probe_opts *po, const probe_kind *k, ddps_precision *prec, ddps_err *err) {
    if (!k)
        return ddps_fail_usage(err, "probe: %s: unknown probe (tokenize, text, vae, unet, schedule, stage1)",
                               po->what ? po->what : "");
    if (!po->model) return ddps_fail_usage(err, "probe: --model: required");
    if (!po->device) return ddps_fail_usage(err, "probe: --device: required");
    if (!po->prompt || !po->null_prompt) return ddps_fail_usage(err, "probe: --prompt, --null-prompt: required");
    if (k->needs_out && !po->out) return ddps_fail_usage(err, "probe: --out: required");
    if (k->needs_in && !po->in) return ddps_fail_usage(err, "probe: --in: required");
    if (k->fn && po->n_texts) return ddps_fail_usage(err, "probe: %s: unexpected argument", po->texts[0]);
    if (po->n_texts < 0 || (po->n_texts > 0 && !po->texts))
        return ddps_fail_usage(err, "probe: %d texts but no list", po->n_texts);
    if (!po->precision || ddps_precision_parse(po->precision, prec) != 0)
        return ddps_fail_usage(err, "probe: --precision %s: expected f32, bf16 or f16",
                               po->precision ? po->precision : "(none)");
    return 0;
}

/* tokenize: one report line of 77 ids per text. */
static void probe_tokenize(const ddps_sd *sd, const probe_opts *po, const ddps_hooks *h) {
    for (int i = 0; i < po->n_texts; i++) {
        int32_t ids[DDPS_CTX_LEN];
        char line[DDPS_CTX_LEN * 12 + 1];
        size_t len = 0;
        ddps_tokenize(sd->tok, po->texts[i], ids);
        for (int k = 0; k < DDPS_CTX_LEN; k++)
            len += (size_t)snprintf(line + len, sizeof line - len, k ? " %d" : "%d", ids[k]);
        ddps_tools_out(h, "%s", line);
    }
}

int ddps_tools_probe(const ddps_probe_params *po, const ddps_hooks *h, ddps_err *err) {
    const probe_kind *k = probe_find(po->what);
    ddps_precision prec = DDPS_PREC_F32;
    if (probe_check(po, k, &prec, err) != 0) return -1;
    ddps_backend *be = NULL;
    ddps_sd *sd = NULL;
    st_file in;
    int have_in = 0, rc = 0;
    outset o = {0};
    if (k->needs_backend) {
        be = ddps_backend_new(po->device, prec, po->threads, err);
        if (!be) rc = -1;
    }
    if (rc == 0) rc = ddps_sd_load_ex(po->model, po->config, be, k->parts, &sd, err);
    if (rc == 0 && po->in && k->fn) {
        rc = ddps_st_open(&in, po->in, err);
        have_in = rc == 0;
    }
    if (rc == 0 && !k->fn) probe_tokenize(sd, po, h);
    if (rc == 0 && k->fn) {
        rc = k->fn(be, sd, po, have_in ? &in : NULL, &o, err);
        if (rc == 0) rc = ddps_backend_error(be, err); /* a failed op: write nothing */
        if (rc == 0) rc = out_write(&o, po->out, err);
    }
    for (int i = 0; i < o.n; i++) free(o.data[i]);
    if (have_in) ddps_st_close(&in);
    if (be) ddps_release(be, 0);
    ddps_sd_free(be, sd);
    ddps_backend_free(be);
    if (rc != 0) ddps_fail_prefix(err, "probe %s", k->name);
    return rc;
}
