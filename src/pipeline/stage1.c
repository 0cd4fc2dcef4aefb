#include "pipeline/stage1.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/scheduler.h"
#include "util/fs.h"
#include "util/progress.h"

double ddps_now(ddps_backend *be) {
    if (be) be->ops->sync(be);
    return ddps_seconds();
}

int ddps_encode_latent(ddps_backend *be, const ddps_sd *sd, const ddps_tensor *x, ddps_tensor *z) {
    size_t m = ddps_mark(be);
    ddps_tensor mean = ddps_new(be, z->n, z->h, z->w, z->c);
    if (ddps_vae_encode(be, sd->vae, x, &mean, NULL) != 0) {
        ddps_release(be, m);
        return -1;
    }
    float s = sd->vae_cfg.scaling_factor, shift = sd->vae_cfg.shift_factor;
    if (shift != 0) {
        /* (mean - shift) * s: the shift enters as a constant tensor */
        ddps_tensor one = ddps_new(be, z->n, z->h, z->w, z->c);
        float *h = ddps_malloc(ddps_numel(&one) * sizeof(float));
        for (size_t i = 0; i < ddps_numel(&one); i++) h[i] = 1.0f;
        be->ops->write(be, &one, h);
        free(h);
        be->ops->axpby(be, z, s, &mean, -shift * s, &one);
    } else {
        be->ops->axpby(be, z, s, &mean, 0.0f, &mean);
    }
    ddps_release(be, m);
    return ddps_backend_error(be, NULL);
}

/* A model forward failed: the batch's tensors released, err from the backend. */
static int forward_failed(ddps_backend *be, size_t mark, float *tsf, ddps_err *err) {
    free(tsf);
    ddps_release(be, mark);
    int failed = ddps_backend_error(be, err) != 0;
    assert(failed); /* a forward fails only through the backend's sticky error */
    return failed ? -1 : ddps_fail(err, "internal error: a model forward failed without a backend error");
}

static int check_timestep(const ddps_sd *sd, int t, ddps_err *err) {
    if (t < 0 || t >= sd->sched_cfg.num_train_timesteps)
        return ddps_fail(err, "timestep %d is outside 0..%d", t, sd->sched_cfg.num_train_timesteps - 1);
    return 0;
}

int ddps_stage1_run_batch(ddps_backend *be, const ddps_sd *sd, const ddps_tensor *images, const ddps_tensor *ctx_null,
                          const ddps_tensor *const *ctx_label, const int *ts, int K, const float *noise, int P, int S,
                          ddps_stage1_result *res, ddps_err *err) {
    const ddps_backend_ops *op = be->ops;
    int n = images->n, H = images->h, W = images->w;
    memset(res, 0, (size_t)n * sizeof *res);
    if (ddps_backend_error(be, err)) return -1; /* failed earlier: nothing would run */
    if (K < 1) return ddps_fail(err, "at least one timestep is needed");
    for (int k = 0; k < K; k++)
        if (check_timestep(sd, ts[k], err)) return -1;
    if (P < 1 || S < 1 || P > H || P > W)
        return ddps_fail(err, "patch %d does not fit the %dx%d image (stride %d)", P, W, H, S);
    int h = ddps_vae_latent_size(&sd->vae_cfg, H), w = ddps_vae_latent_size(&sd->vae_cfg, W),
        c = sd->vae_cfg.latent_channels;
    if (!h || !w) return ddps_fail(err, "a %dx%d image is too small for the VAE", W, H);
    size_t m = ddps_mark(be);
    double t0 = ddps_now(be);
    ddps_tensor z = ddps_new(be, n, h, w, c);
    if (ddps_encode_latent(be, sd, images, &z) != 0) return forward_failed(be, m, NULL, err);
    double t1 = ddps_now(be);

    /* The batch: for image i and timestep k, item 2(iK+k) is (z_t, null
     * prompt) and item 2(iK+k)+1 is (z_t, label): the same noise draw for
     * both prompts, so the difference is paired. */
    int B = 2 * n * K;
    ddps_tensor eps = ddps_new(be, n * K, h, w, c), x = ddps_new(be, B, h, w, c);
    int L = ctx_null->w, C = ctx_null->c;
    ddps_tensor ctx = ddps_new(be, B, 1, L, C);
    op->write(be, &eps, noise);
    float *tsf = ddps_malloc((size_t)B * sizeof(float));
    for (int i = 0; i < n; i++) {
        ddps_tensor zi = ddps_slice(be, &z, i, 1);
        for (int k = 0; k < K; k++) {
            float a, b;
            ddps_noise_coefs(sd->alphas_cumprod, ts[k], &a, &b);
            ddps_tensor ek = ddps_slice(be, &eps, i * K + k, 1);
            for (int j = 0; j < 2; j++) {
                int item = 2 * (i * K + k) + j;
                ddps_tensor xk = ddps_slice(be, &x, item, 1), ck = ddps_slice(be, &ctx, item, 1);
                op->axpby(be, &xk, a, &zi, b, &ek);
                op->axpby(be, &ck, 1.0f, j ? ctx_label[i] : ctx_null, 0.0f, ctx_null);
                tsf[item] = (float)ts[k];
            }
        }
    }
    ddps_tensor e = ddps_new(be, B, h, w, c);
    if (ddps_unet_forward(be, sd->unet, &x, tsf, &ctx, &e, NULL) != 0) return forward_failed(be, m, tsf, err);
    ddps_sd_to_noise_pred(be, sd, &e, &x, tsf); /* v-prediction models (SD 2.x) */
    free(tsf);
    double t2 = ddps_now(be);

    /* the accumulator and the maps are f32 whatever the precision */
    ddps_tensor d = ddps_new_map(be, 1, h, w, c), D = ddps_new_map(be, 1, H, W, 1);
    int ph = (H - P) / S + 1, pw = (W - P) / S + 1;
    ddps_tensor Sm = ddps_new_map(be, 1, ph, pw, 1);
    for (int i = 0; i < n; i++) {
        ddps_stage1_result *r = &res[i];
        r->h = h, r->w = w, r->c = c, r->H = H, r->W = W, r->ph = ph, r->pw = pw;
        r->seconds_vae = (t1 - t0) / n;
        r->seconds_unet = (t2 - t1) / n;
        op->map_fill(be, &d, 0.0f);
        for (int k = 0; k < K; k++) {
            int item = 2 * (i * K + k);
            ddps_tensor ek = ddps_slice(be, &eps, i * K + k, 1), en = ddps_slice(be, &e, item, 1),
                        el = ddps_slice(be, &e, item + 1, 1);
            op->sqdiff_acc(be, &d, &ek, &en, &el, 1.0f / (float)K);
        }
        op->resize_bilinear_cmean(be, &D, &d);
        op->avg_pool(be, &Sm, &D, P, S);
        r->latent = ddps_malloc((size_t)h * w * c * sizeof(float));
        r->diff = ddps_malloc((size_t)h * w * c * sizeof(float));
        r->score_map = ddps_malloc((size_t)H * W * sizeof(float));
        r->patch_scores = ddps_malloc((size_t)ph * pw * sizeof(float));
        ddps_tensor zi = ddps_slice(be, &z, i, 1);
        op->read(be, r->latent, &zi);
        op->map_read(be, r->diff, &d);
        op->map_read(be, r->score_map, &D);
        op->map_read(be, r->patch_scores, &Sm);
    }
    ddps_release(be, m);
    if (ddps_backend_error(be, err)) {
        for (int i = 0; i < n; i++) ddps_stage1_result_free(&res[i]);
        return -1;
    }
    return 0;
}

int ddps_stage1_run(ddps_backend *be, const ddps_sd *sd, const ddps_tensor *image, const ddps_tensor *ctx_null,
                    const ddps_tensor *ctx_label, const int *ts, int K, const float *noise, int P, int S,
                    ddps_stage1_result *r, ddps_err *err) {
    const ddps_tensor *labels[1] = {ctx_label};
    return ddps_stage1_run_batch(be, sd, image, ctx_null, labels, ts, K, noise, P, S, r, err);
}

void ddps_stage1_result_free(ddps_stage1_result *r) {
    free(r->latent);
    free(r->diff);
    free(r->score_map);
    free(r->patch_scores);
    memset(r, 0, sizeof *r);
}

int ddps_dift_dim(const ddps_unet_config *c) {
    int i = c->n_blocks >= 2 ? 1 : 0;
    return c->block_out_channels[c->n_blocks - 1 - i];
}

typedef struct {
    ddps_backend *be;
    const char *want;   /* "up1" */
    ddps_tensor pooled; /* [n*E,1,1,dim] */
} dift_tap;

static void dift_tap_fn(void *u, const char *name, const ddps_tensor *t) {
    dift_tap *d = u;
    if (strcmp(name, d->want) == 0) d->be->ops->global_avg(d->be, &d->pooled, t);
}

int ddps_dift_run_batch(ddps_backend *be, const ddps_sd *sd, const ddps_tensor *patches,
                        const ddps_tensor *const *ctx_label, int t, int E, const float *noise, float *features, int *dim,
                        ddps_err *err) {
    const ddps_backend_ops *op = be->ops;
    if (ddps_backend_error(be, err)) return -1; /* failed earlier: nothing would run */
    if (check_timestep(sd, t, err)) return -1;
    if (E < 1) return ddps_fail(err, "the DIFT ensemble needs at least one noise draw");
    int n = patches->n, h = ddps_vae_latent_size(&sd->vae_cfg, patches->h),
        w = ddps_vae_latent_size(&sd->vae_cfg, patches->w), c = sd->vae_cfg.latent_channels;
    int D = ddps_dift_dim(&sd->unet_cfg);
    *dim = D;
    if (!h || !w) return ddps_fail(err, "a %dx%d patch is too small for the VAE", patches->w, patches->h);
    size_t m = ddps_mark(be);
    ddps_tensor z = ddps_new(be, n, h, w, c);
    if (ddps_encode_latent(be, sd, patches, &z) != 0) return forward_failed(be, m, NULL, err);
    ddps_tensor eps = ddps_new(be, n * E, h, w, c), x = ddps_new(be, n * E, h, w, c);
    int L = ctx_label[0]->w, C = ctx_label[0]->c;
    ddps_tensor ctx = ddps_new(be, n * E, 1, L, C);
    op->write(be, &eps, noise);
    float a, b;
    ddps_noise_coefs(sd->alphas_cumprod, t, &a, &b);
    float *tsf = ddps_malloc((size_t)n * E * sizeof(float));
    for (int i = 0; i < n; i++) {
        ddps_tensor zi = ddps_slice(be, &z, i, 1);
        for (int e = 0; e < E; e++) {
            int k = i * E + e;
            ddps_tensor xk = ddps_slice(be, &x, k, 1), ek = ddps_slice(be, &eps, k, 1), ck = ddps_slice(be, &ctx, k, 1);
            op->axpby(be, &xk, a, &zi, b, &ek);
            op->axpby(be, &ck, 1.0f, ctx_label[i], 0.0f, ctx_label[i]);
            tsf[k] = (float)t;
        }
    }
    int stop = sd->unet_cfg.n_blocks >= 2 ? 1 : 0;
    dift_tap tap = {be, stop ? "up1" : "up0", ddps_new(be, n * E, 1, 1, D)};
    ddps_unet_opts o = {dift_tap_fn, &tap, stop};
    if (ddps_unet_forward(be, sd->unet, &x, tsf, &ctx, NULL, &o) != 0) return forward_failed(be, m, tsf, err);
    free(tsf);
    float *pooled = ddps_malloc((size_t)n * E * D * sizeof(float));
    op->read(be, pooled, &tap.pooled);
    ddps_release(be, m);
    if (ddps_backend_error(be, err)) {
        free(pooled);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        double norm = 0;
        for (int j = 0; j < D; j++) {
            double s = 0;
            for (int e = 0; e < E; e++) s += pooled[((size_t)i * E + e) * D + j];
            features[(size_t)i * D + j] = (float)(s / E);
            norm += (s / E) * (s / E);
        }
        float inv = norm > 0 ? (float)(1.0 / sqrt(norm)) : 0.0f;
        for (int j = 0; j < D; j++) features[(size_t)i * D + j] *= inv;
    }
    free(pooled);
    return 0;
}

int ddps_dift_run(ddps_backend *be, const ddps_sd *sd, const ddps_tensor *patches, const ddps_tensor *ctx_label,
                  int t, int E, const float *noise, float *features, int *dim, ddps_err *err) {
    const ddps_tensor **labels = ddps_malloc((size_t)(patches->n > 0 ? patches->n : 1) * sizeof *labels);
    for (int i = 0; i < patches->n; i++) labels[i] = ctx_label;
    int rc = ddps_dift_run_batch(be, sd, patches, labels, t, E, noise, features, dim, err);
    free(labels);
    return rc;
}
