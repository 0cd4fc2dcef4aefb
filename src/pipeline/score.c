#include "pipeline/score.h"
#include "pipeline/score_bench.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/image.h"
#include "models/sd.h"
#include "pipeline/dataset.h"
#include "pipeline/kmeans.h"
#include "pipeline/loader.h"
#include "pipeline/shard.h"
#include "pipeline/memcheck.h"
#include "pipeline/stage1.h"
#include "pipeline/store_guard.h"
#include "util/fs.h"
#include "util/progress.h"
#include "util/rng.h"

void ddps_score_defaults(ddps_score_opts *o) {
    memset(o, 0, sizeof *o);
    o->prompt = "An image of {}.";
    o->null_prompt = "";
    o->n_timesteps = 5;
    o->t_lo = 0.1;
    o->t_hi = 0.7;
    o->size = 256;
    o->patch = 192;
    o->stride = 16;
    o->patches_per_image = 1;
    o->dift_t = 160;
    o->dift_ensemble = 4;
    o->clusters = 32;
    o->device = "cpu";
    o->precision = "f32";
    o->command = "score";
}

int ddps_score_timesteps(const ddps_score_opts *o, int T, int *out, ddps_err *err) {
    if (o->n_explicit > 0) {
        for (int i = 0; i < o->n_explicit; i++) {
            if (o->timesteps[i] < 0 || o->timesteps[i] >= T)
                return ddps_fail_usage(err, "--timesteps: %d is outside 0..%d", o->timesteps[i], T - 1);
            out[i] = o->timesteps[i];
        }
        return o->n_explicit;
    }
    int K = o->n_timesteps;
    if (K < 1 || K > DDPS_MAX_TIMESTEPS) return ddps_fail_usage(err, "--timesteps %d: expected 1..%d", K, DDPS_MAX_TIMESTEPS);
    if (!(o->t_lo >= 0 && o->t_hi <= 1 && o->t_lo <= o->t_hi))
        return ddps_fail_usage(err, "--t-range %g,%g: expected 0 <= lo <= hi <= 1", o->t_lo, o->t_hi);
    for (int i = 0; i < K; i++) {
        double f = K == 1 ? (o->t_lo + o->t_hi) / 2 : o->t_lo + (o->t_hi - o->t_lo) * i / (K - 1);
        int t = (int)lround(f * T);
        out[i] = t < 0 ? 0 : t > T - 1 ? T - 1 : t;
    }
    return K;
}

/* ---------- candidate windows ---------- */

static double iou(int ai, int aj, int bi, int bj, int patch, int stride) {
    double ox = patch - abs(aj - bj) * (double)stride, oy = patch - abs(ai - bi) * (double)stride;
    if (ox <= 0 || oy <= 0) return 0;
    double inter = ox * oy, a = (double)patch * patch;
    return inter / (2 * a - inter);
}

int ddps_pick_windows(const float *scores, int ph, int pw, int patch, int stride, int k, int *ij) {
    int n = ph * pw;
    if (k > n) k = n;
    int *order = ddps_malloc((size_t)n * sizeof *order);
    char *used = ddps_calloc((size_t)n, 1);
    for (int i = 0; i < n; i++) order[i] = i;
    /* stable sort by score descending (ties: raster order) */
    for (int i = 1; i < n; i++) {
        int x = order[i], j = i - 1;
        while (j >= 0 && scores[order[j]] < scores[x]) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = x;
    }
    int got = 0;
    for (int pass = 0; pass < 2 && got < k; pass++)
        for (int a = 0; a < n && got < k; a++) {
            int w = order[a];
            if (used[w]) continue;
            int ok = 1;
            for (int b = 0; pass == 0 && b < got && ok; b++)
                ok = iou(w / pw, w % pw, ij[2 * b], ij[2 * b + 1], patch, stride) <= 0.5;
            if (!ok) continue;
            used[w] = 1;
            ij[2 * got] = w / pw;
            ij[2 * got + 1] = w % pw;
            got++;
        }
    free(order);
    free(used);
    return got;
}

/* ---------- per-image work ---------- */

/* [n][h][w][3] floats in [-1, 1] from 8-bit RGB. */
static void rgb_to_float(const uint8_t *px, size_t n, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = (float)px[i] / 127.5f - 1.0f;
}

typedef struct {
    ddps_backend *be;
    ddps_sd *sd;
    const ddps_score_opts *o;
    int K, ts[DDPS_MAX_TIMESTEPS];
    int dim;
    /* timings, summed */
    double t_vae, t_unet, t_dift;
    ddps_run_stats stats;
} scorer;

/* One image of a batch: its pixels, where it comes from, and what scoring it gives. */
typedef struct {
    const ddps_image *img;
    int orig_w, orig_h;
    const char *relpath;
    int class_idx;
    ddps_rng rng;            /* its own noise stream, from (seed, relpath) */
    ddps_image_result res;   /* candidates and features are heap, freed by job_free */
    ddps_candidate *cand;
    float *feats;
    float *map; /* channel mean of d at latent resolution, for reports */
    int map_h, map_w;
} job;

static void job_free(job *j) {
    free(j->cand);
    free(j->feats);
    free(j->map);
    j->cand = NULL;
    j->feats = NULL;
    j->map = NULL;
}

/* Scores n decoded images of the same resized size as one batch: Stage I
 * (2nK latents in one UNet call), windows, then DIFT on all their candidate
 * patches (one more UNet call). Each image's numbers depend only on its own
 * pixels and noise stream; the batch changes rounding at most, and batches
 * are formed the same way on every run (see ddps_score_run). */
static int score_batch(scorer *sc, job *jobs, int n, const ddps_tensor *ctx, ddps_err *err) {
    ddps_backend *be = sc->be;
    const ddps_score_opts *o = sc->o;
    const ddps_sd *sd = sc->sd;
    int H = jobs[0].img->h, W = jobs[0].img->w, c = sd->vae_cfg.latent_channels;
    int h = ddps_vae_latent_size(&sd->vae_cfg, H), w = ddps_vae_latent_size(&sd->vae_cfg, W);
    int P = o->low_res ? (H < W ? H : W) : o->patch, S = o->low_res ? 1 : o->stride;
    if (P > H || P > W)
        return ddps_fail(err, "%s: --patch %d does not fit the %dx%d resized image (use a smaller --patch or a larger --size)",
                         jobs[0].relpath, P, W, H);
    /* Stage I noise: K draws per image from its own stream. */
    size_t per = (size_t)sc->K * h * w * c;
    float *noise = ddps_malloc((size_t)n * per * sizeof(float));
    for (int i = 0; i < n; i++) {
        ddps_rng_seed(&jobs[i].rng,
                      ddps_seed_mix(o->seed, ddps_fnv1a(DDPS_FNV_INIT, jobs[i].relpath, strlen(jobs[i].relpath))));
        ddps_rng_fill_normal(&jobs[i].rng, noise + (size_t)i * per, per);
    }
    size_t mark = ddps_mark(be);
    ddps_tensor x = ddps_new(be, n, H, W, 3);
    float *xf = ddps_malloc((size_t)n * H * W * 3 * sizeof(float));
    for (int i = 0; i < n; i++) rgb_to_float(jobs[i].img->px, (size_t)H * W * 3, xf + (size_t)i * H * W * 3);
    be->ops->write(be, &x, xf);
    free(xf);
    ddps_tensor cn = ddps_slice(be, ctx, 0, 1);
    ddps_tensor *cl = ddps_malloc((size_t)n * sizeof *cl);
    const ddps_tensor **clp = ddps_malloc((size_t)n * sizeof *clp);
    for (int i = 0; i < n; i++) {
        cl[i] = ddps_slice(be, ctx, jobs[i].class_idx + 1, 1);
        clp[i] = &cl[i];
    }
    ddps_stage1_result *r = ddps_calloc((size_t)n, sizeof *r);
    int rc = ddps_stage1_run_batch(be, sd, &x, &cn, clp, sc->ts, sc->K, noise, P, S, r, err);
    free(noise);
    ddps_release(be, mark);

    /* Windows of each image, boxes in original pixels. */
    int k = o->low_res ? 1 : o->patches_per_image, total = 0;
    int *ij = ddps_malloc((size_t)2 * k * sizeof(int));
    for (int i = 0; rc == 0 && i < n; i++) {
        job *jb = &jobs[i];
        sc->t_vae += r[i].seconds_vae;
        sc->t_unet += r[i].seconds_unet;
        double mean = 0;
        for (int p = 0; p < H * W; p++) mean += r[i].score_map[p];
        jb->res.image_score = (float)(mean / (H * W));
        /* The map reports draw: D = upsample(channel mean of d) (both linear). */
        jb->map = ddps_malloc((size_t)h * w * sizeof *jb->map);
        for (int p = 0; p < h * w; p++) {
            double a = 0;
            for (int ch = 0; ch < c; ch++) a += r[i].diff[(size_t)p * c + ch];
            jb->map[p] = (float)(a / c);
        }
        jb->map_h = h;
        jb->map_w = w;
        int m = o->low_res ? 1 : ddps_pick_windows(r[i].patch_scores, r[i].ph, r[i].pw, P, S, k, ij);
        if (o->low_res) ij[0] = ij[1] = 0;
        jb->cand = ddps_calloc((size_t)m, sizeof *jb->cand);
        double sx = (double)jb->orig_w / W, sy = (double)jb->orig_h / H;
        for (int q = 0; q < m; q++) {
            ddps_candidate *cd = &jb->cand[q];
            int ry = ij[2 * q] * S, rx = ij[2 * q + 1] * S;
            cd->rx = rx, cd->ry = ry, cd->rw = P, cd->rh = P;
            cd->score = o->low_res ? jb->res.image_score : r[i].patch_scores[ij[2 * q] * r[i].pw + ij[2 * q + 1]];
            if (o->low_res) {
                cd->x0 = 0, cd->y0 = 0, cd->x1 = jb->orig_w, cd->y1 = jb->orig_h;
            } else {
                cd->x0 = rx * sx, cd->y0 = ry * sy;
                cd->x1 = fmin((rx + P) * sx, jb->orig_w), cd->y1 = fmin((ry + P) * sy, jb->orig_h);
            }
        }
        jb->res.n_cand = m;
        total += m;
    }
    free(ij);
    for (int i = 0; i < n; i++) ddps_stage1_result_free(&r[i]);
    free(r);
    sc->stats.vae_images += n;
    sc->stats.unet_latents += 2L * sc->K * n;

    /* DIFT on every candidate patch, cut from the resized images. */
    double t0 = ddps_now(be);
    int E = o->dift_ensemble, ph = ddps_vae_latent_size(&sd->vae_cfg, P);
    size_t pper = (size_t)E * ph * ph * c;
    float *pf = ddps_malloc((size_t)(total ? total : 1) * P * P * 3 * sizeof(float)),
          *pnoise = ddps_malloc((size_t)(total ? total : 1) * pper * sizeof(float)),
          *f = ddps_malloc((size_t)(total ? total : 1) * sc->dim * sizeof(float));
    const ddps_tensor **pctx = ddps_malloc((size_t)(total ? total : 1) * sizeof *pctx);
    int t = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        /* the image's stream continues after its Stage I draws */
        ddps_rng_fill_normal(&jobs[i].rng, pnoise + (size_t)t * pper, (size_t)jobs[i].res.n_cand * pper);
        for (int q = 0; q < jobs[i].res.n_cand; q++, t++) {
            const ddps_candidate *cd = &jobs[i].cand[q];
            for (int y = 0; y < P; y++)
                rgb_to_float(jobs[i].img->px + ((size_t)(cd->ry + y) * W + cd->rx) * 3, (size_t)P * 3,
                             pf + ((size_t)t * P + y) * P * 3);
            pctx[t] = clp[i];
        }
    }
    if (rc == 0 && total > 0) {
        mark = ddps_mark(be);
        ddps_tensor patches = ddps_new(be, total, P, P, 3);
        be->ops->write(be, &patches, pf);
        int dim;
        rc = ddps_dift_run_batch(be, sd, &patches, pctx, o->dift_t, E, pnoise, f, &dim, err);
        ddps_release(be, mark);
    }
    sc->t_dift += ddps_now(be) - t0;
    sc->stats.vae_images += total;
    sc->stats.unet_latents += (long)total * E;
    free(pf);
    free(pnoise);
    free(pctx);
    free(cl);
    free(clp);
    if (rc != 0) {
        free(f);
        for (int i = 0; i < n; i++) job_free(&jobs[i]);
        return ddps_fail_prefix(err, "%s", jobs[0].relpath);
    }
    /* Features: each image gets its own copy (the store takes them per image). */
    t = 0;
    for (int i = 0; i < n; i++) {
        job *jb = &jobs[i];
        int m = jb->res.n_cand;
        jb->feats = ddps_malloc((size_t)(m ? m : 1) * sc->dim * sizeof(float));
        memcpy(jb->feats, f + (size_t)t * sc->dim, (size_t)m * sc->dim * sizeof(float));
        for (int q = 0; q < m; q++) jb->cand[q].feature = jb->feats + (size_t)q * sc->dim;
        t += m;
        jb->res.relpath = jb->relpath;
        jb->res.width = jb->orig_w, jb->res.height = jb->orig_h;
        jb->res.rw = W, jb->res.rh = H;
        jb->res.cand = jb->cand;
        jb->res.dim = sc->dim;
    }
    free(f);
    return 0;
}

/* ---------- settings ---------- */

static char *settings_json(const ddps_score_opts *o, const int *ts, int K, const char *root) {
    json_t *s = json_object(), *t = json_array();
    for (int i = 0; i < K; i++) json_array_append_new(t, json_integer(ts[i]));
    json_object_set_new(s, "data_root", json_string(root));
    json_object_set_new(s, "prompt", json_string(o->prompt));
    json_object_set_new(s, "null_prompt", json_string(o->null_prompt));
    json_object_set_new(s, "timesteps", t);
    json_object_set_new(s, "size", json_integer(o->size));
    json_object_set_new(s, "patch", json_integer(o->low_res ? 0 : o->patch));
    json_object_set_new(s, "stride", json_integer(o->low_res ? 0 : o->stride));
    json_object_set_new(s, "patches_per_image", json_integer(o->low_res ? 1 : o->patches_per_image));
    json_object_set_new(s, "dift_t", json_integer(o->dift_t));
    json_object_set_new(s, "dift_ensemble", json_integer(o->dift_ensemble));
    json_object_set_new(s, "clusters", json_integer(o->clusters));
    json_object_set_new(s, "low_res", json_boolean(o->low_res));
    json_object_set_new(s, "max_per_class", json_integer(o->max_per_class));
    json_object_set_new(s, "seed", json_integer((json_int_t)o->seed));
    json_object_set_new(s, "precision", json_string(o->precision));
    char *text = json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(s);
    return text;
}

static int looks_like_wnid(const char *s) {
    if (s[0] != 'n' || strlen(s) != 9) return 0;
    for (int i = 1; i < 9; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* ---------- the run ---------- */

int ddps_score_run(const ddps_score_opts *o, ddps_run_stats *totals, ddps_err *err) {
    double t_start = ddps_now(NULL);
    int rc = 0;
    if (o->patches_per_image < 1 || o->patches_per_image > 64)
        return ddps_fail_usage(err, "--patches-per-image %d: expected 1..64", o->patches_per_image);
    if (o->size < 16 || o->size > 4096) return ddps_fail_usage(err, "--size %d: expected 16..4096", o->size);
    if (!o->low_res && (o->patch < 8 || o->patch > o->size))
        return ddps_fail_usage(err, "--patch %d: expected 8..--size (%d)", o->patch, o->size);
    if (o->stride < 1) return ddps_fail_usage(err, "--stride %d: must be positive", o->stride);
    if (o->dift_ensemble < 1 || o->dift_ensemble > 64)
        return ddps_fail_usage(err, "--dift-ensemble %d: expected 1..64", o->dift_ensemble);
    if (o->clusters < 1 || o->clusters > 100000) return ddps_fail_usage(err, "--clusters %d: expected 1..100000", o->clusters);
    ddps_precision prec;
    if (ddps_precision_parse(o->precision, &prec) != 0)
        return ddps_fail_usage(err, "--precision %s: expected f32, bf16 or f16", o->precision);

    ddps_dataset ds;
    ddps_dataset_opts dopt = {o->max_per_class, o->seed, o->class_names, o->classes, o->n_classes};
    if (ddps_dataset_scan(o->data_dir, &dopt, &ds, err) != 0) return -1;
    if (!o->class_names && ds.n_classes > 0 && looks_like_wnid(ds.classes[0].name))
        ddps_warn("class folders look like WordNet ids (%s ...): prompts will say \"%s\"; pass --class-names with "
                  "ImageNet's LOC_synset_mapping.txt or a wnid/prompt_name TSV to use class names",
                  ds.classes[0].name, ds.classes[0].name);
    for (int i = 0; i < ds.n_skipped; i++) ddps_warn("skipped %s", ds.skipped[i]);
    /* Everything skipped in this run, repeated in the final summary. */
    char **skipped = ddps_calloc((size_t)ds.n_skipped + (size_t)ds.n_items + 1, sizeof *skipped);
    int n_skipped = 0;
    for (int i = 0; i < ds.n_skipped; i++) skipped[n_skipped++] = ddps_strdup(ds.skipped[i]);

    ddps_backend *be = ddps_backend_new(o->device, prec, o->threads, err);
    ddps_sd *sd = NULL;
    ddps_store *st = NULL;
    char *settings = NULL;
    ddps_tensor ctx = {0};
    scorer sc;
    memset(&sc, 0, sizeof sc);
    sc.o = o;
    sc.stats.command = o->command ? o->command : "score";
    if (!be) rc = -1;
    if (rc == 0) rc = ddps_sd_load_ex(o->model_dir, o->config_dir, be, DDPS_PART_ALL, &sd, err);
    if (rc == 0) {
        sc.be = be;
        sc.sd = sd;
        sc.dim = ddps_dift_dim(&sd->unet_cfg);
        sc.K = ddps_score_timesteps(o, sd->sched_cfg.num_train_timesteps, sc.ts, err);
        if (sc.K < 0) rc = -1;
        if (rc == 0 && (o->dift_t < 0 || o->dift_t >= sd->sched_cfg.num_train_timesteps))
            rc = ddps_fail_usage(err, "--dift-t %d: outside 0..%d", o->dift_t, sd->sched_cfg.num_train_timesteps - 1);
    }
    int lock_fd = -1;
    if (rc == 0) rc = ddps_store_open(o->store_path, 0, &st, err);
    if (rc == 0) rc = ddps_store_lock(o->store_path, &lock_fd, err); /* one writer (store_guard.h) */
    if (rc == 0) {
        settings = settings_json(o, sc.ts, sc.K, ds.root);
        rc = ddps_store_bind(st, settings, sd->identity_hex, err);
    }
    if (rc == 0) rc = ddps_store_verify(st, err); /* what select would refuse, refused now */
    if (rc == 0) rc = ddps_store_set_meta(st, "data_root", ds.root, err);
    if (rc == 0) rc = ddps_store_set_meta(st, "ddps_version", DDPS_VERSION, err);
    if (rc == 0) rc = ddps_store_set_meta(st, "model_dir", o->model_dir, err);

    /* Class ids and prompts; then the text encoder once for all prompts. */
    int nc = ds.n_classes;
    int *class_ids = ddps_calloc((size_t)nc + 1, sizeof *class_ids);
    char **prompts = ddps_calloc((size_t)nc + 1, sizeof *prompts);
    for (int i = 0; rc == 0 && i < nc; i++) {
        prompts[i + 1] = ddps_prompt_format(o->prompt, ds.classes[i].prompt_name);
        rc = ddps_store_class_id(st, ds.classes[i].name, ds.classes[i].prompt_name, prompts[i + 1], &class_ids[i], err);
    }
    if (rc == 0) {
        prompts[0] = ddps_strdup(o->null_prompt);
        int32_t *ids = ddps_malloc((size_t)(nc + 1) * DDPS_CLIP_LEN * sizeof(int32_t));
        for (int i = 0; i <= nc; i++) {
            if (ddps_tokenize_truncated(sd->tok, prompts[i], ids + (size_t)i * DDPS_CLIP_LEN))
                ddps_warn("prompt \"%s\" is longer than 75 tokens and was truncated", prompts[i]);
        }
        ctx = ddps_tensor_alloc(be, nc + 1, 1, DDPS_CLIP_LEN, sd->clip_cfg.hidden_size);
        if (!ctx.data) rc = ddps_fail(err, "out of memory for the prompt embeddings");
        if (rc == 0) ddps_clip_forward(be, sd->text, ids, &ctx);
        free(ids);
        sc.stats.text_prompts += nc + 1;
    }

    /* Work, in fixed groups: each class's images, in dataset order, are cut
     * into groups of G (--batch-images); the images of a group that share a
     * resized size are scored as one batch. A group with anything left to do
     * is computed whole (already stored members are not stored again), so a
     * resumed run forms exactly the batches an uninterrupted run forms and
     * stores the same numbers. */
    /* Auto: on the CPU a batch of one image's 2K latents already keeps the
     * cores busy (batching two full-size images measured no faster, and
     * costs memory); a GPU wants many latents per call. */
    int G = o->batch_images > 0 ? o->batch_images : strcmp(o->device ? o->device : "cpu", "cpu") == 0 ? 1 : 8;
    /* A shard scores only its share of the groups (pipeline/shard.h). */
    char *in_shard = NULL;
    if (rc == 0 && o->shard_n > 0) {
        in_shard = ddps_calloc((size_t)ds.n_items + 1, 1);
        rc = ddps_shard_bind(st, &ds, G, o->shard_k, o->shard_n, in_shard, err);
    }
    int *load = ddps_malloc((size_t)(ds.n_items > 0 ? ds.n_items : 1) * sizeof *load);
    char *is_todo = ddps_calloc((size_t)ds.n_items + 1, 1);
    int nload = 0, ntodo = 0;
    long already = 0;
    int *left = ddps_calloc((size_t)nc + 1, sizeof *left); /* images still to score per class */
    for (int c = 0; rc == 0 && c < nc; c++) {
        const ddps_class *cls = &ds.classes[c];
        for (int g = 0; rc == 0 && g < cls->count; g += G) {
            int end = g + G < cls->count ? g + G : cls->count, any = 0;
            if (in_shard && !in_shard[cls->first + g]) continue;
            for (int i = cls->first + g; rc == 0 && i < cls->first + end; i++) {
                int state;
                rc = ddps_store_image_state(st, ds.items[i].relpath, &state, err);
                is_todo[i] = state == 0;
                any |= state == 0;
                ntodo += state == 0;
                already += state != 0;
                left[c] += state == 0;
            }
            if (any)
                for (int i = cls->first + g; i < cls->first + end; i++) load[nload++] = i;
        }
    }
    if (rc == 0 && already && ddps_verbosity > 0)
        ddps_info("%s: %ld of %d images already scored, %d to go", o->store_path, already, ds.n_items, ntodo);

    ddps_loader *ld = NULL;
    if (rc == 0) rc = ddps_loader_start(&ds, load, nload, o->size, o->low_res, 0, 1, 2 * G + 2, &ld, err);
    ddps_progress *prog = rc == 0 && !o->on_progress ? ddps_progress_start("scoring", ntodo, "img", 0) : NULL;
    if (rc == 0 && o->on_progress) o->on_progress(o->progress_arg, 0, ntodo);
    double t_decode = 0, t_cluster = 0;
    long done = 0;
    ddps_loaded **group = ddps_calloc((size_t)G, sizeof *group);
    job *jobs = ddps_calloc((size_t)G, sizeof *jobs);
    for (int gi = 0; rc == 0 && gi < nload;) {
        /* the group: consecutive loaded items of one class, at most G, same group index */
        const ddps_item *first = &ds.items[load[gi]];
        const ddps_class *cls = &ds.classes[first->class_idx];
        int gstart = (load[gi] - cls->first) / G * G + cls->first;
        int gn = 0;
        double t0 = ddps_now(NULL);
        while (gi < nload && load[gi] < gstart + G && ds.items[load[gi]].class_idx == first->class_idx) {
            ddps_loaded *x = ddps_loader_next(ld);
            if (!x) break; /* cannot happen: the loader delivers every index it was given */
            group[gn++] = x;
            gi++;
        }
        if (gn == 0) break;
        t_decode += ddps_now(NULL) - t0;
        int ci = first->class_idx;
        double tg = ddps_now(NULL);
        /* Bad members are recorded (when new) and left out. */
        for (int a = 0; rc == 0 && a < gn; a++) {
            const ddps_item *it = &ds.items[group[a]->index];
            ddps_err me;
            int rh = group[a]->resized.h, rw = group[a]->resized.w;
            if (group[a]->ok &&
                ddps_score_memory_check(&sd->vae_cfg, &sd->unet_cfg, rh, rw, 1, sc.K,
                                        o->low_res ? (rh < rw ? rh : rw) : o->patch,
                                        o->low_res ? 1 : o->patches_per_image, o->dift_ensemble, &me) != 0) {
                /* too large for this machine: a bad image, not an abort of the run (memcheck.h) */
                group[a]->ok = 0;
                char *shown = ddps_display_name(it->relpath);
                snprintf(group[a]->error, sizeof group[a]->error, "%.250s: %.250s", shown, me.msg);
                free(shown);
            }
            if (!group[a]->ok && is_todo[group[a]->index]) {
                ddps_warn("skipped %s", group[a]->error);
                skipped[n_skipped++] = ddps_strdup(group[a]->error);
                rc = ddps_store_put_bad(st, class_ids[ci], it->relpath, group[a]->error, err);
                sc.stats.images_bad++;
            }
        }
        /* Batches: the good members sharing a size, in order of first appearance. */
        char *taken = ddps_calloc((size_t)gn, 1);
        for (int a = 0; rc == 0 && a < gn; a++) {
            if (taken[a] || !group[a]->ok) continue;
            int nb = 0;
            for (int b = a; b < gn; b++) {
                if (taken[b] || !group[b]->ok || group[b]->resized.w != group[a]->resized.w ||
                    group[b]->resized.h != group[a]->resized.h)
                    continue;
                taken[b] = 1;
                job *jb = &jobs[nb++];
                memset(jb, 0, sizeof *jb);
                jb->img = &group[b]->resized;
                jb->orig_w = group[b]->orig_w, jb->orig_h = group[b]->orig_h;
                jb->relpath = ds.items[group[b]->index].relpath;
                jb->class_idx = ci;
                jb->res.class_id = class_ids[ci];
                jb->res.relpath = jb->relpath;
            }
            rc = score_batch(&sc, jobs, nb, &ctx, err);
            for (int b = 0; b < nb; b++) {
                int state = 1;
                if (rc == 0) rc = ddps_store_image_state(st, jobs[b].relpath, &state, err);
                if (rc == 0 && state == 0) {
                    jobs[b].res.seconds = (ddps_now(be) - tg) / (nb > 0 ? nb : 1);
                    rc = ddps_store_put_image_map(st, &jobs[b].res, jobs[b].map, jobs[b].map_h, jobs[b].map_w, err);
                    sc.stats.images_scored++;
                }
                job_free(&jobs[b]);
            }
        }
        free(taken);
        for (int a = 0; a < gn; a++) {
            done += is_todo[group[a]->index];
            ddps_loaded_free(group[a]);
            group[a] = NULL;
        }
        ddps_progress_update(prog, done);
        if (o->on_progress) o->on_progress(o->progress_arg, done, ntodo);
        for (int i = gstart; i < gstart + G && i < cls->first + cls->count; i++) left[ci] -= is_todo[i];
        /* A class is clustered as soon as its last image is in. */
        if (rc == 0 && left[ci] == 0 && !in_shard) {
            double tc = ddps_now(NULL);
            rc = ddps_store_cluster(st, class_ids[ci], o->clusters,
                                    ddps_seed_mix(o->seed, ddps_fnv1a(DDPS_FNV_INIT, ds.classes[ci].name,
                                                                      strlen(ds.classes[ci].name))),
                                    err);
            t_cluster += ddps_now(NULL) - tc;
        }
    }
    for (int a = 0; a < G; a++)
        if (group[a]) ddps_loaded_free(group[a]);
    free(group);
    free(jobs);
    free(is_todo);
    ddps_progress_end(prog);
    if (ld) ddps_loader_free(ld);
    /* Classes with nothing new may still need (re)clustering (an interrupted run). */
    for (int i = 0; rc == 0 && !in_shard && i < nc; i++) {
        int needs;
        rc = ddps_store_needs_clustering(st, class_ids[i], &needs, err);
        if (rc == 0 && needs)
            rc = ddps_store_cluster(st, class_ids[i], o->clusters,
                                    ddps_seed_mix(o->seed, ddps_fnv1a(DDPS_FNV_INIT, ds.classes[i].name,
                                                                      strlen(ds.classes[i].name))),
                                    err);
    }
    if (rc == 0 && in_shard) rc = ddps_store_set_meta(st, "shard_complete", "1", err);
    free(in_shard);
    sc.stats.seconds = ddps_now(NULL) - t_start;
    if (st && (sc.stats.images_scored || sc.stats.images_bad)) {
        ddps_err e2;
        if (ddps_store_add_run(st, &sc.stats, &e2) != 0 && rc == 0) {
            *err = e2;
            rc = -1;
        }
    }
    if (rc == 0 && ddps_verbosity > 0) {
        char dur[32];
        ddps_format_duration(sc.stats.seconds, dur, sizeof dur);
        ddps_info("scored %ld images (%ld skipped as unreadable) in %s: decode wait %.1f s, VAE %.1f s, UNet %.1f s, "
                  "DIFT %.1f s, clustering %.1f s; %ld UNet latents, %ld VAE encodes",
                  sc.stats.images_scored, sc.stats.images_bad, dur, t_decode, sc.t_vae, sc.t_unet, sc.t_dift,
                  t_cluster, sc.stats.unet_latents, sc.stats.vae_images);
    }
    if (n_skipped && ddps_verbosity > 0) {
        ddps_info("%d file%s skipped:", n_skipped, n_skipped > 1 ? "s" : "");
        for (int i = 0; i < n_skipped; i++) ddps_info("  %s", skipped[i]);
    }
    for (int i = 0; i < n_skipped; i++) free(skipped[i]);
    free(skipped);
    if (totals) *totals = sc.stats;
    free(left);
    free(load);
    for (int i = 0; i <= nc; i++) free(prompts[i]);
    free(prompts);
    free(class_ids);
    free(settings);
    if (ctx.data) ddps_tensor_free(be, &ctx);
    if (st) ddps_store_close(st);
    ddps_store_unlock(lock_fd);
    if (be) ddps_release(be, 0);
    ddps_sd_free(be, sd);
    ddps_backend_free(be);
    ddps_dataset_free(&ds);
    return rc;
}

/* ---------- benchmark glue (see score_bench.h) ---------- */

int ddps_score_bench_batch(ddps_backend *be, ddps_sd *sd, const ddps_score_opts *o, const ddps_image *rs, int orig_w,
                           int orig_h, int batch, const ddps_tensor *ctx, double secs[3], ddps_err *err) {
    scorer sc;
    memset(&sc, 0, sizeof sc);
    sc.be = be, sc.sd = sd, sc.o = o, sc.dim = ddps_dift_dim(&sd->unet_cfg);
    sc.K = ddps_score_timesteps(o, sd->sched_cfg.num_train_timesteps, sc.ts, err);
    if (sc.K < 0) return -1;
    job *jobs = ddps_calloc((size_t)batch, sizeof *jobs);
    char (*names)[32] = ddps_malloc((size_t)batch * sizeof *names);
    /* the same picture `batch` times, with different noise (different names) */
    for (int b = 0; b < batch; b++) {
        snprintf(names[b], sizeof names[b], "bench/img%d.jpg", b);
        jobs[b].img = rs, jobs[b].orig_w = orig_w, jobs[b].orig_h = orig_h;
        jobs[b].relpath = names[b], jobs[b].class_idx = 0;
    }
    int rc = score_batch(&sc, jobs, batch, ctx, err);
    for (int b = 0; b < batch; b++) job_free(&jobs[b]);
    free(jobs);
    free(names);
    secs[0] += sc.t_vae, secs[1] += sc.t_unet, secs[2] += sc.t_dift;
    return rc;
}
