/* `ddps bench score`: seconds per image through Stage I and II as
 * ddps_score_run does them (decode, VAE, UNet, DIFT), plus clustering a
 * class, on full-size SD v1.5 shapes with random weights. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/image.h"
#include "models/sd.h"
#include "pipeline/params.h"
#include "pipeline/kmeans.h"
#include "pipeline/score.h"
#include "pipeline/score_batch.h"
#include "pipeline/stage1.h"
#include "tools/demo.h"
#include "tools/tools.h"
#include "tools/world.h"
#include "util/fs.h"
#include "util/rng.h"

/* What the timed runs sum up (seconds over all timed images). */
typedef struct {
    double decode, total, part[3]; /* part: VAE, UNet, DIFT */
} score_times;

/* Writes dir/img.jpg: a toy-world picture stretched to 500x375-like
 * proportions at 2.5x size, decoded each time like a dataset image. */
static int write_bench_image(const char *path, int size, ddps_err *err) {
    ddps_image sq, src;
    ddps_world_item it;
    if (ddps_world_draw(2, 1, 7, size, &sq, &it, err) != 0) return ddps_fail_prefix(err, "bench score");
    int rc = ddps_image_resize(&sq, size * 5 / 2, size * 15 / 8, &src, err);
    ddps_image_free(&sq);
    if (rc != 0) return -1;
    rc = ddps_image_save(path, &src, 90, err);
    ddps_image_free(&src);
    return rc;
}

/* The two prompt contexts [2,1,77,C] (null, label): BOS then EOS padding alike. */
static ddps_tensor bench_contexts(ddps_backend *be, const ddps_sd *sd) {
    ddps_tensor ctx = ddps_new(be, 2, 1, DDPS_CLIP_LEN, sd->clip_cfg.hidden_size);
    int32_t ids[2 * DDPS_CLIP_LEN];
    for (int i = 0; i < 2 * DDPS_CLIP_LEN; i++) ids[i] = i % DDPS_CLIP_LEN == 0 ? 49406 : 49407;
    ddps_clip_forward(be, sd->text, ids, &ctx);
    return ctx;
}

/* Scores rs (resized; orig_w x orig_h before) batch times as one batch of
 * ddps_score_run, each copy with its own noise stream ("bench/img<b>.jpg")
 * and the label context cl; adds the model times to st. */
static int score_copies(ddps_scorer *sc, const ddps_image *rs, int orig_w, int orig_h, int batch,
                        const ddps_tensor *cn, const ddps_tensor *cl, ddps_err *err) {
    ddps_scored *items = ddps_calloc((size_t)batch, sizeof *items);
    char (*names)[32] = ddps_malloc((size_t)batch * sizeof *names);
    for (int b = 0; b < batch; b++) {
        snprintf(names[b], sizeof names[b], "bench/img%d.jpg", b);
        items[b].img = rs, items[b].orig_w = orig_w, items[b].orig_h = orig_h;
        items[b].key = names[b], items[b].cond = cl;
    }
    int rc = ddps_score_batch(sc, items, batch, cn, 0, err);
    for (int b = 0; b < batch; b++) ddps_scored_free(&items[b]);
    free(items);
    free(names);
    return rc;
}

/* One warm-up and iters timed runs of decode + resize + scoring on path;
 * the first run's times are dropped. */
static int time_scoring(ddps_scorer *sc, const char *path, int iters, int batch, score_times *st, ddps_err *err) {
    ddps_backend *be = sc->be;
    ddps_tensor ctx = bench_contexts(be, sc->sd);
    ddps_tensor cn = ddps_slice(be, &ctx, 0, 1), cl = ddps_slice(be, &ctx, 1, 1);
    int rc = 0;
    for (int it = 0; rc == 0 && it <= iters; it++) {
        if (it == 1) { /* first run warms up */
            memset(st, 0, sizeof *st);
            sc->t_vae = sc->t_unet = sc->t_dift = 0;
        }
        double t0 = ddps_now(be);
        ddps_image img, rs = {0};
        rc = ddps_image_load(path, &img, err);
        if (rc != 0) break;
        int rw, rh;
        ddps_resize_shorter_size(img.w, img.h, sc->p->size, &rw, &rh);
        rc = ddps_image_resize(&img, rw, rh, &rs, err);
        double t1 = ddps_now(be);
        st->decode += (t1 - t0) * batch;
        if (rc == 0) rc = score_copies(sc, &rs, img.w, img.h, batch, &cn, &cl, err);
        st->total += ddps_now(be) - t0 + (t1 - t0) * (batch - 1);
        ddps_image_free(&img);
        ddps_image_free(&rs);
    }
    st->part[0] = sc->t_vae, st->part[1] = sc->t_unet, st->part[2] = sc->t_dift;
    return rc;
}

/* Seconds per candidate of clustering a class of 300 candidates (the paper's
 * 300 images per class) into 32 clusters. */
static double time_clustering(int dim) {
    int n = 300, k = 32, used;
    float *x = ddps_malloc((size_t)n * dim * sizeof(float)), *cent = ddps_malloc((size_t)k * dim * sizeof(float)),
          *dist = ddps_malloc((size_t)n * sizeof(float));
    int *assign = ddps_malloc((size_t)n * sizeof(int));
    ddps_rng r;
    ddps_rng_seed(&r, 3);
    ddps_rng_fill_normal(&r, x, (size_t)n * dim);
    double tc0 = ddps_now(NULL);
    ddps_kmeans(x, n, dim, k, 1, 300, assign, cent, dist, &used);
    double t = (ddps_now(NULL) - tc0) / n;
    free(x), free(cent), free(dist), free(assign);
    return t;
}

/* The report: a header line, the per-image split, and the --json line. */
static void score_report(const ddps_bench_params *p, const ddps_score_opts *o, ddps_precision prec, int K, int batch,
                         const score_times *st, double t_cluster, const ddps_hooks *h) {
    int n = p->iters * batch; /* figures are per image */
    double per = st->total / n;
    ddps_tools_out(h,
                   "ddps bench score: SD v1.5 shapes, random weights, %d px, patch %d, K=%d, DIFT E=%d, %d image%s "
                   "per batch, device %s, %s",
                   o->p.size, o->p.patch, K, o->p.dift_ensemble, batch, batch > 1 ? "s" : "", p->device,
                   ddps_precision_name(prec));
    ddps_tools_out(h,
                   "  per image: %.2f s = decode+resize %.3f s, VAE %.2f s, UNet %.2f s (%d latents), DIFT %.2f s, "
                   "clustering %.4f s",
                   per + t_cluster, st->decode / n, st->part[0] / n, st->part[1] / n, 2 * K, st->part[2] / n,
                   t_cluster);
    if (p->json)
        ddps_tools_out(h, "{\"bench\":\"score\",\"device\":\"%s\",\"precision\":\"%s\",\"size\":%d,"
                       "\"seconds_per_image\":%.4f,\"decode\":%.4f,\"vae\":%.4f,\"unet\":%.4f,\"dift\":%.4f,"
                       "\"clustering\":%.5f}",
                       p->device, ddps_precision_name(prec), o->p.size, per + t_cluster, st->decode / n, st->part[0] / n,
                       st->part[1] / n, st->part[2] / n, t_cluster);
}

int ddps_tools_bench_score(const ddps_bench_params *p, const char *precision, int batch, const ddps_hooks *h,
                           ddps_err *err) {
    ddps_score_opts o;
    ddps_score_defaults(&o);
    o.p.size = p->size;
    o.p.patch = p->size * 3 / 4;
    o.p.precision = precision;
    o.p.device = p->device;
    ddps_precision prec;
    if (ddps_precision_parse(precision, &prec) != 0)
        return ddps_fail_usage(err, "bench: --precision %s: expected f32, bf16 or f16", precision);
    ddps_backend *be = ddps_backend_new(p->device, prec, p->threads, err);
    ddps_sd *sd = NULL;
    if (!be || ddps_sd15_random(be, DDPS_PART_TEXT | DDPS_PART_VAE | DDPS_PART_UNET, 1234, &sd, err) != 0) {
        ddps_backend_free(be);
        return ddps_fail_prefix(err, "bench score");
    }
    char dir[] = "/tmp/ddps-bench-XXXXXX", path[128];
    int rc = 0;
    if (!mkdtemp(dir)) rc = ddps_fail_kind(err, DDPS_KIND_RESOURCE, "bench score: cannot create a temporary folder");
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/img.jpg", dir);
        score_times st = {0};
        int ts[DDPS_MAX_TIMESTEPS];
        ddps_scorer sc = {0};
        sc.be = be, sc.sd = sd, sc.p = &o.p, sc.ts = ts, sc.dim = ddps_dift_dim(&sd->unet_cfg);
        sc.K = ddps_score_timesteps(&o.p, 1000, ts, err);
        rc = sc.K < 0 ? -1 : write_bench_image(path, o.p.size, err);
        if (rc == 0) rc = time_scoring(&sc, path, p->iters, batch, &st, err);
        if (rc == 0) rc = ddps_backend_error(be, err); /* a failed op: no figures */
        unlink(path);
        rmdir(dir);
        double t_cluster = time_clustering(sc.dim);
        if (rc == 0) score_report(p, &o, prec, sc.K, batch, &st, t_cluster, h);
        else ddps_fail_prefix(err, "bench score");
    }
    ddps_release(be, 0);
    ddps_sd_free(be, sd);
    ddps_backend_free(be);
    return rc;
}
