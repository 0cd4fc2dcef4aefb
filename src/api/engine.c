/* The public engine (include/ddps.h): a backend, a model and a prompt cache;
 * scores decoded images exactly as `ddps score` does with one image per
 * batch (the CPU default): same resizing, noise streams from (seed, key),
 * Stage I, window choice, DIFT. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "io/image.h"
#include "models/sd.h"
#include "pipeline/params.h"
#include "pipeline/loader.h"
#include "pipeline/score_batch.h"
#include "pipeline/stage1.h"
#include "util/fs.h"
#include "util/progress.h"
#include "util/rng.h"

typedef struct {
    char *text;
    int chunk, index; /* row `index` of chunks[chunk] */
} prompt_entry;

struct ddps_engine {
    ddps_backend *be;
    ddps_sd *sd;
    int dim;
    ddps_hooks hooks;
    int n_prompts, cap_prompts;
    prompt_entry *prompts;
    int n_chunks;
    ddps_tensor *chunks; /* one [n,1,77,C] tensor per encode call */
    int spent;           /* an op failed on the backend: every later call is refused */
};

/* A call on an engine whose backend failed earlier: the failure is sticky
 * (tensor/backend.h), so the engine cannot score again. */
static ddps_status engine_spent(const ddps_engine *e, ddps_error *err) {
    ddps_err be = {{0}};
    ddps_backend_error(e->be, &be);
    return ddps_api_failf(err, DDPS_ERR_FAILURE, "this engine failed earlier (%s) and cannot be used again: close it and "
                          "open a new one", be.msg[0] ? be.msg : "backend error");
}

/* After a failed call: a failure on the backend spends the engine, and
 * the message says so. Returns st. */
static ddps_status engine_failed(ddps_engine *e, ddps_status st, ddps_error *err) {
    if (ddps_backend_error(e->be, NULL) == 0) return st;
    e->spent = 1;
    if (err) {
        size_t n = strlen(err->message);
        snprintf(err->message + n, sizeof err->message - n,
                 " (this engine cannot be used again: close it and open a new one)");
    }
    return st;
}

DDPS_API void ddps_engine_params_init(ddps_engine_params *p) {
    ddps_score_params d;
    ddps_score_params_init(&d);
    p->device = d.device;
    p->precision = d.precision;
    p->threads = d.threads;
}

DDPS_API ddps_status ddps_engine_open(const char *model_dir, const ddps_engine_params *p, const ddps_hooks *hooks,
                                      ddps_engine **out, ddps_error *err) {
    if (out) *out = NULL;
    if (!model_dir || !out) return ddps_api_failf(err, DDPS_ERR_USAGE, "ddps_engine_open: model_dir and out are required");
    ddps_engine_params d;
    ddps_engine_params_init(&d);
    if (!p) p = &d;
    if (p->threads < 0 || p->threads > 4096)
        return ddps_api_failf(err, DDPS_ERR_USAGE, "threads %d: expected 0..4096", p->threads);
    ddps_err e = {{0}};
    ddps_precision prec;
    const char *pstr = p->precision ? p->precision : "f32";
    if (ddps_precision_parse(pstr, &prec) != 0)
        return ddps_api_failf(err, DDPS_ERR_USAGE, "precision %s: expected f32, bf16 or f16", pstr);
    ddps_api_enter(hooks);
    ddps_engine *en = ddps_calloc(1, sizeof *en);
    if (hooks) en->hooks = *hooks;
    int rc = 0;
    en->be = ddps_backend_new(p->device ? p->device : "cpu", prec, p->threads, &e);
    if (!en->be) rc = -1;
    if (rc == 0) rc = ddps_sd_load(model_dir, en->be, DDPS_PART_ALL, &en->sd, &e);
    if (rc == 0) en->dim = ddps_dift_dim(&en->sd->unet_cfg);
    ddps_api_leave();
    if (rc != 0) {
        ddps_engine_close(en);
        return ddps_api_fail(err, &e);
    }
    *out = en;
    return ddps_api_ok(err);
}

DDPS_API void ddps_engine_close(ddps_engine *e) {
    if (!e) return;
    for (int i = 0; i < e->n_chunks; i++) ddps_tensor_free(e->be, &e->chunks[i]);
    free(e->chunks);
    for (int i = 0; i < e->n_prompts; i++) free(e->prompts[i].text);
    free(e->prompts);
    if (e->be) ddps_release(e->be, 0);
    if (e->sd) ddps_sd_free(e->be, e->sd);
    if (e->be) ddps_backend_free(e->be);
    free(e);
}

DDPS_API const char *ddps_engine_model_id(const ddps_engine *e) { return e && e->sd ? e->sd->identity_hex : ""; }
DDPS_API int ddps_engine_feature_dim(const ddps_engine *e) { return e ? e->dim : 0; }
DDPS_API int ddps_engine_num_timesteps(const ddps_engine *e) {
    return e && e->sd ? e->sd->sched_cfg.num_train_timesteps : 0;
}

/* Cache index of a prompt text, or -1. */
static int find_prompt(const ddps_engine *e, const char *text) {
    for (int i = 0; i < e->n_prompts; i++)
        if (strcmp(e->prompts[i].text, text) == 0) return i;
    return -1;
}

DDPS_API ddps_status ddps_engine_encode_prompts(ddps_engine *e, const char *const *prompts, int n, int *ids,
                                                ddps_error *err) {
    if (!e || n < 0 || (n > 0 && (!prompts || !ids)))
        return ddps_api_failf(err, DDPS_ERR_USAGE, "ddps_engine_encode_prompts: engine, prompts and ids are required");
    for (int i = 0; i < n; i++)
        if (!prompts[i]) return ddps_api_failf(err, DDPS_ERR_USAGE, "ddps_engine_encode_prompts: prompt %d is NULL", i);
    if (e->spent) return engine_spent(e, err);
    ddps_api_enter(&e->hooks);
    /* New texts (first occurrence only) go into one batch. */
    int *todo = ddps_malloc((size_t)(n ? n : 1) * sizeof *todo), nt = 0;
    for (int i = 0; i < n; i++) {
        int dup = find_prompt(e, prompts[i]) >= 0;
        for (int j = 0; j < nt && !dup; j++) dup = strcmp(prompts[todo[j]], prompts[i]) == 0;
        if (!dup) todo[nt++] = i;
    }
    ddps_status st = DDPS_OK;
    if (nt > 0) {
        ddps_sd *sd = e->sd;
        int32_t *tok = ddps_malloc((size_t)nt * DDPS_CLIP_LEN * sizeof *tok);
        for (int j = 0; j < nt; j++)
            if (ddps_tokenize_truncated(sd->tok, prompts[todo[j]], tok + (size_t)j * DDPS_CLIP_LEN))
                ddps_warn("prompt \"%s\" is longer than 75 tokens and was truncated", prompts[todo[j]]);
        ddps_tensor ctx = ddps_tensor_alloc(e->be, nt, 1, DDPS_CLIP_LEN, sd->clip_cfg.hidden_size);
        if (!ctx.data) {
            st = ddps_api_failf(err, DDPS_ERR_RESOURCE, "out of memory for %d prompt embeddings", nt);
        } else if (ddps_clip_forward(e->be, sd->text, tok, &ctx) != 0) {
            ddps_err be_err = {{0}};
            ddps_backend_error(e->be, &be_err);
            ddps_tensor_free(e->be, &ctx);
            st = ddps_api_fail(err, &be_err);
        } else {
            e->chunks = ddps_realloc(e->chunks, (size_t)(e->n_chunks + 1) * sizeof *e->chunks);
            e->chunks[e->n_chunks] = ctx;
            if (e->n_prompts + nt > e->cap_prompts) {
                e->cap_prompts = 2 * (e->n_prompts + nt);
                e->prompts = ddps_realloc(e->prompts, (size_t)e->cap_prompts * sizeof *e->prompts);
            }
            for (int j = 0; j < nt; j++) {
                prompt_entry *pe = &e->prompts[e->n_prompts++];
                pe->text = ddps_strdup(prompts[todo[j]]);
                pe->chunk = e->n_chunks;
                pe->index = j;
            }
            e->n_chunks++;
        }
        free(tok);
    }
    free(todo);
    ddps_api_leave();
    if (st != DDPS_OK) return engine_failed(e, st, err);
    for (int i = 0; i < n; i++) ids[i] = find_prompt(e, prompts[i]);
    return ddps_api_ok(err);
}

DDPS_API void ddps_image_scores_free(ddps_image_scores *s) {
    if (!s) return;
    free(s->score_map);
    free(s->patch_scores);
    free(s->map);
    free(s->cand);
    free(s->features);
    memset(s, 0, sizeof *s);
}

/* One image, as ddps_score_run scores it in a batch of one: resized as the
 * loader resizes, then the pipeline's per-batch step (pipeline/score_batch.h);
 * the windows and maps are handed over to out. */
static int score_one(ddps_scorer *sc, const ddps_tensor *cn, const ddps_tensor *cl, const ddps_image_in *in,
                     ddps_image_scores *out, ddps_err *err) {
    const ddps_score_params *p = sc->p;
    const char *key = in->key ? in->key : "";
    ddps_image src = {in->width, in->height, (uint8_t *)in->pixels}, img = {0, 0, NULL};
    int rw, rh;
    if (ddps_loader_resized_size(in->width, in->height, p->size, p->low_res, &rw, &rh, err) != 0)
        return ddps_fail_prefix(err, "%s", key);
    if (ddps_image_resize(&src, rw, rh, &img, err) != 0) return ddps_fail_prefix(err, "%s", key);
    int H = img.h, W = img.w, P = p->low_res ? (H < W ? H : W) : p->patch;
    if (P > H || P > W) {
        ddps_image_free(&img);
        return ddps_fail_usage(err, "%s: patch %d does not fit the %dx%d resized image", key, P, W, H);
    }
    ddps_scored it;
    memset(&it, 0, sizeof it);
    it.img = &img, it.orig_w = in->width, it.orig_h = in->height, it.key = key, it.cond = cl;
    int rc = ddps_score_batch(sc, &it, 1, cn, 1, err);
    ddps_image_free(&img);
    if (rc != 0) return -1;
    out->width = in->width, out->height = in->height, out->rw = W, out->rh = H;
    out->image_score = it.image_score;
    out->score_map = it.score_map, it.score_map = NULL;
    out->patch_scores = it.patch_scores, it.patch_scores = NULL;
    out->grid_h = it.grid_h, out->grid_w = it.grid_w;
    out->map = it.map, it.map = NULL;
    out->map_h = it.map_h, out->map_w = it.map_w;
    out->n_cand = it.n_cand;
    out->cand = ddps_calloc((size_t)(it.n_cand ? it.n_cand : 1), sizeof *out->cand);
    for (int q = 0; q < it.n_cand; q++) out->cand[q] = it.cand[q].w;
    out->dim = sc->dim;
    out->features = it.feats, it.feats = NULL;
    ddps_scored_free(&it);
    return 0;
}

/* The checks ddps_score_run makes on each image before any work, through
 * the same functions: the resized size (the aspect bound) and the memory
 * pre-flight. The dataset run records such an image as bad and goes on;
 * here the call is refused naming the image. */
static int images_fit(const ddps_scorer *sc, const ddps_image_in *images, int n, ddps_err *err) {
    for (int i = 0; i < n; i++) {
        int rw, rh;
        if (ddps_loader_resized_size(images[i].width, images[i].height, sc->p->size, sc->p->low_res, &rw, &rh, err) != 0 ||
            ddps_scorer_memory_check(sc, rw, rh, err) != 0) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            return ddps_fail_kind(err, DDPS_KIND_DATA, "image %d (%dx%d): %s", i, images[i].width, images[i].height, why);
        }
    }
    return 0;
}

DDPS_API ddps_status ddps_engine_score(ddps_engine *e, const ddps_score_params *p, int null_prompt,
                                       const ddps_image_in *images, int n, ddps_image_scores *out, ddps_error *err) {
    if (out && n > 0) memset(out, 0, (size_t)n * sizeof *out);
    if (!e || !p || n < 0 || (n > 0 && (!images || !out)))
        return ddps_api_failf(err, DDPS_ERR_USAGE, "ddps_engine_score: engine, params, images and out are required");
    if (null_prompt < 0 || null_prompt >= e->n_prompts)
        return ddps_api_failf(err, DDPS_ERR_USAGE, "null prompt id %d: not an encoded prompt (0..%d)", null_prompt,
                              e->n_prompts - 1);
    for (int i = 0; i < n; i++) {
        const ddps_image_in *in = &images[i];
        if (in->prompt < 0 || in->prompt >= e->n_prompts)
            return ddps_api_failf(err, DDPS_ERR_USAGE, "image %d: prompt id %d is not an encoded prompt", i, in->prompt);
        if (!in->pixels || in->width < 1 || in->height < 1 ||
            (double)in->width * in->height > (double)DDPS_IMAGE_MAX_PIXELS)
            return ddps_api_failf(err, DDPS_ERR_USAGE, "image %d: expected pixels of a width x height x 3 image (got %dx%d)",
                                  i, in->width, in->height);
    }
    ddps_err ie = {{0}};
    ddps_score_opts o;
    if (ddps_api_score_opts(p, &o, &ie) != 0) return ddps_api_fail(err, &ie);
    /* ddps_api_score_opts made ddps_score_run's checks (ddps_score_check); these need the model. */
    int T = e->sd->sched_cfg.num_train_timesteps, ts[DDPS_MAX_TIMESTEPS];
    if (o.p.dift_t >= T) return ddps_api_failf(err, DDPS_ERR_USAGE, "--dift-t %d: outside 0..%d", o.p.dift_t, T - 1);
    int K = ddps_score_timesteps(&o.p, T, ts, &ie);
    if (K < 0) return ddps_api_fail(err, &ie);
    if (e->spent) return engine_spent(e, err);
    ddps_scorer sc;
    memset(&sc, 0, sizeof sc);
    sc.be = e->be, sc.sd = e->sd, sc.p = &o.p, sc.K = K, sc.ts = ts, sc.dim = e->dim;
    if (images_fit(&sc, images, n, &ie) != 0) return ddps_api_fail(err, &ie);
    ddps_api_enter(&e->hooks);
    const prompt_entry *pn = &e->prompts[null_prompt];
    ddps_tensor cn = ddps_slice(e->be, &e->chunks[pn->chunk], pn->index, 1);
    ddps_status st = DDPS_OK;
    ddps_progress *prog = ddps_progress_start("scoring", n, "img", 0);
    for (int i = 0; i < n; i++) {
        if (ddps_cancel_requested()) {
            st = ddps_api_failf(err, DDPS_ERR_CANCELLED, "cancelled after %d of %d images", i, n);
            break;
        }
        const prompt_entry *pl = &e->prompts[images[i].prompt];
        ddps_tensor cl = ddps_slice(e->be, &e->chunks[pl->chunk], pl->index, 1);
        if (score_one(&sc, &cn, &cl, &images[i], &out[i], &ie) != 0) {
            st = ddps_api_fail(err, &ie);
            break;
        }
        ddps_progress_update(prog, i + 1);
    }
    ddps_progress_end(prog);
    ddps_api_leave();
    if (st != DDPS_OK) {
        for (int i = 0; i < n; i++)
            if (st != DDPS_ERR_CANCELLED || !out[i].features) ddps_image_scores_free(&out[i]);
        return engine_failed(e, st, err);
    }
    return ddps_api_ok(err);
}
