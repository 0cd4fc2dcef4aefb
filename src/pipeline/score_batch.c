#include "pipeline/score_batch.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/memcheck.h"
#include "pipeline/stage1.h"
#include "util/fs.h"
#include "util/rng.h"

void ddps_scored_free(ddps_scored *s) {
    free(s->cand);
    free(s->feats);
    free(s->map);
    free(s->score_map);
    free(s->patch_scores);
    s->cand = NULL;
    s->feats = NULL;
    s->map = NULL;
    s->score_map = NULL;
    s->patch_scores = NULL;
    s->n_cand = 0;
}

int ddps_scorer_memory_check(const ddps_scorer *sc, int rw, int rh, ddps_err *err) {
    const ddps_score_params *p = sc->p;
    return ddps_score_memory_check(&sc->sd->vae_cfg, &sc->sd->unet_cfg, rh, rw, 1, sc->K,
                                   p->low_res ? (rh < rw ? rh : rw) : p->patch, p->low_res ? 1 : p->patches_per_image,
                                   p->dift_ensemble, err);
}

/* Stage I of the batch: seeds each image's stream rng[i] from (seed, key),
 * draws its K noise latents, uploads the pixels [n,H,W,3] and runs the UNet
 * once; r[n] gets the maps. Returns 0 or -1 with err. */
static int batch_stage1(ddps_scorer *sc, const ddps_scored *items, int n, const ddps_tensor *ctx_null, int P, int S,
                        ddps_rng *rng, ddps_stage1_result *r, ddps_err *err) {
    ddps_backend *be = sc->be;
    const ddps_sd *sd = sc->sd;
    int H = items[0].img->h, W = items[0].img->w, c = sd->vae_cfg.latent_channels;
    int h = ddps_vae_latent_size(&sd->vae_cfg, H), w = ddps_vae_latent_size(&sd->vae_cfg, W);
    size_t per = (size_t)sc->K * h * w * c, npx = (size_t)H * W * 3;
    float *noise = ddps_malloc((size_t)n * per * sizeof(float));
    for (int i = 0; i < n; i++) {
        ddps_rng_seed(&rng[i], ddps_seed_mix(sc->p->seed, ddps_fnv1a(DDPS_FNV_INIT, items[i].key, strlen(items[i].key))));
        ddps_rng_fill_normal(&rng[i], noise + (size_t)i * per, per);
    }
    size_t mark = ddps_mark(be);
    ddps_tensor x = ddps_new(be, n, H, W, 3);
    float *xf = ddps_malloc((size_t)n * npx * sizeof(float));
    for (int i = 0; i < n; i++) ddps_pixels_to_unit(items[i].img->px, npx, xf + (size_t)i * npx);
    be->ops->write(be, &x, xf);
    free(xf);
    const ddps_tensor **clp = ddps_malloc((size_t)n * sizeof *clp);
    for (int i = 0; i < n; i++) clp[i] = items[i].cond;
    int rc = ddps_stage1_run_batch(be, sd, &x, ctx_null, clp, sc->ts, sc->K, noise, P, S, r, err);
    free(clp);
    free(noise);
    ddps_release(be, mark);
    return rc;
}

/* Boxes of m chosen windows ij[2m] (grid (i, j) at (j*S, i*S), P wide) of
 * an image resized from orig_w x orig_h to W x H: in resized and original
 * pixels, clipped to the original; scores from the grid [.][pw]. low_res:
 * the one window is the whole image, scored image_score. Pure. */
static void window_boxes(const int *ij, int m, int P, int S, const float *grid, int pw, int W, int H, int orig_w,
                         int orig_h, int low_res, float image_score, ddps_candidate *cand) {
    double sx = (double)orig_w / W, sy = (double)orig_h / H;
    for (int q = 0; q < m; q++) {
        ddps_candidate *cd = &cand[q];
        int ry = ij[2 * q] * S, rx = ij[2 * q + 1] * S;
        cd->w.rx = rx, cd->w.ry = ry, cd->w.rw = P, cd->w.rh = P;
        cd->w.score = low_res ? image_score : grid[ij[2 * q] * pw + ij[2 * q + 1]];
        if (low_res) {
            cd->w.x0 = 0, cd->w.y0 = 0, cd->w.x1 = orig_w, cd->w.y1 = orig_h;
        } else {
            cd->w.x0 = rx * sx, cd->w.y0 = ry * sy;
            cd->w.x1 = fmin((rx + P) * sx, orig_w), cd->w.y1 = fmin((ry + P) * sy, orig_h);
        }
    }
}

/* One image's Stage-I outputs from r: image score (mean of D), the store's
 * map (channel mean of d at latent resolution), its candidate windows
 * (ij: scratch for 2k ints); keep_maps moves r's maps into it. */
static void item_windows(const ddps_scorer *sc, ddps_scored *it, ddps_stage1_result *r, int P, int S, int keep_maps,
                         int *ij) {
    const ddps_score_params *p = sc->p;
    int H = it->img->h, W = it->img->w, c = sc->sd->vae_cfg.latent_channels;
    int h = ddps_vae_latent_size(&sc->sd->vae_cfg, H), w = ddps_vae_latent_size(&sc->sd->vae_cfg, W);
    double mean = 0;
    for (int q = 0; q < H * W; q++) mean += r->score_map[q];
    it->image_score = (float)(mean / (H * W));
    /* The map reports draw: D = upsample(channel mean of d) (both linear). */
    it->map = ddps_malloc((size_t)h * w * sizeof *it->map);
    for (int q = 0; q < h * w; q++) {
        double a = 0;
        for (int ch = 0; ch < c; ch++) a += r->diff[(size_t)q * c + ch];
        it->map[q] = (float)(a / c);
    }
    it->map_h = h, it->map_w = w;
    int k = p->low_res ? 1 : p->patches_per_image;
    int m = p->low_res ? 1 : ddps_pick_windows(r->patch_scores, r->ph, r->pw, P, S, k, ij);
    if (p->low_res) ij[0] = ij[1] = 0;
    it->cand = ddps_calloc((size_t)m, sizeof *it->cand);
    window_boxes(ij, m, P, S, r->patch_scores, r->pw, W, H, it->orig_w, it->orig_h, p->low_res, it->image_score,
                 it->cand);
    assert(m >= 1 && m <= k); /* at least one window fits (checked before Stage I) */
    it->n_cand = m;
    it->grid_h = r->ph, it->grid_w = r->pw;
    if (keep_maps) {
        it->score_map = r->score_map, r->score_map = NULL;
        it->patch_scores = r->patch_scores, r->patch_scores = NULL;
    }
}

/* DIFT on the batch's `total` candidate patches, cut from the resized
 * images; each image's stream continues after its Stage-I draws. f gets
 * [total][dim]. Returns 0 or -1 with err. */
static int batch_dift(ddps_scorer *sc, const ddps_scored *items, int n, int P, int total, ddps_rng *rng, float *f,
                      ddps_err *err) {
    ddps_backend *be = sc->be;
    const ddps_sd *sd = sc->sd;
    int W = items[0].img->w, E = sc->p->dift_ensemble, c = sd->vae_cfg.latent_channels;
    int ph = ddps_vae_latent_size(&sd->vae_cfg, P);
    size_t pper = (size_t)E * ph * ph * c, nt = (size_t)(total ? total : 1);
    float *pf = ddps_malloc(nt * P * P * 3 * sizeof(float)), *pnoise = ddps_malloc(nt * pper * sizeof(float));
    const ddps_tensor **pctx = ddps_malloc(nt * sizeof *pctx);
    int t = 0;
    for (int i = 0; i < n; i++) {
        ddps_rng_fill_normal(&rng[i], pnoise + (size_t)t * pper, (size_t)items[i].n_cand * pper);
        for (int q = 0; q < items[i].n_cand; q++, t++) {
            const ddps_candidate *cd = &items[i].cand[q];
            for (int y = 0; y < P; y++)
                ddps_pixels_to_unit(items[i].img->px + ((size_t)(cd->w.ry + y) * W + cd->w.rx) * 3, (size_t)P * 3,
                             pf + ((size_t)t * P + y) * P * 3);
            pctx[t] = items[i].cond;
        }
    }
    int rc = 0;
    if (total > 0) {
        size_t mark = ddps_mark(be);
        ddps_tensor patches = ddps_new(be, total, P, P, 3);
        be->ops->write(be, &patches, pf);
        int dim;
        rc = ddps_dift_run_batch(be, sd, &patches, pctx, sc->p->dift_t, E, pnoise, f, &dim, err);
        ddps_release(be, mark);
    }
    free(pf);
    free(pnoise);
    free(pctx);
    return rc;
}

int ddps_score_batch(ddps_scorer *sc, ddps_scored *items, int n, const ddps_tensor *ctx_null, int keep_maps,
                     ddps_err *err) {
    const ddps_score_params *p = sc->p;
    int H = items[0].img->h, W = items[0].img->w;
    int P = p->low_res ? (H < W ? H : W) : p->patch, S = p->low_res ? 1 : p->stride;
    if (P > H || P > W)
        return ddps_fail(err, "%s: --patch %d does not fit the %dx%d resized image (use a smaller --patch or a larger --size)",
                         items[0].key, P, W, H);
    ddps_rng *rng = ddps_malloc((size_t)n * sizeof *rng);
    ddps_stage1_result *r = ddps_calloc((size_t)n, sizeof *r);
    int rc = batch_stage1(sc, items, n, ctx_null, P, S, rng, r, err);
    int k = p->low_res ? 1 : p->patches_per_image, total = 0;
    int *ij = ddps_malloc((size_t)2 * k * sizeof(int));
    for (int i = 0; rc == 0 && i < n; i++) {
        sc->t_vae += r[i].seconds_vae;
        sc->t_unet += r[i].seconds_unet;
        item_windows(sc, &items[i], &r[i], P, S, keep_maps, ij);
        total += items[i].n_cand;
    }
    free(ij);
    for (int i = 0; i < n; i++) ddps_stage1_result_free(&r[i]);
    free(r);
    sc->vae_images += n;
    sc->unet_latents += 2L * sc->K * n;
    double t0 = ddps_now(sc->be);
    float *f = ddps_malloc((size_t)(total ? total : 1) * sc->dim * sizeof(float));
    if (rc == 0) rc = batch_dift(sc, items, n, P, total, rng, f, err);
    sc->t_dift += ddps_now(sc->be) - t0;
    sc->vae_images += total;
    sc->unet_latents += (long)total * p->dift_ensemble;
    free(rng);
    if (rc != 0) {
        free(f);
        for (int i = 0; i < n; i++) ddps_scored_free(&items[i]);
        return ddps_fail_prefix(err, "%s", items[0].key);
    }
    /* Features: each image gets its own copy (the store takes them per image). */
    for (int i = 0, t = 0; i < n; t += items[i].n_cand, i++) {
        ddps_scored *it = &items[i];
        int m = it->n_cand;
        it->feats = ddps_malloc((size_t)(m ? m : 1) * sc->dim * sizeof(float));
        memcpy(it->feats, f + (size_t)t * sc->dim, (size_t)m * sc->dim * sizeof(float));
        for (int q = 0; q < m; q++) it->cand[q].feature = it->feats + (size_t)q * sc->dim;
    }
    free(f);
    return 0;
}
