/* `ddps bench precision`: does a reduced precision keep Stage I's choices?
 *
 * Runs Stage I on real images twice, in f32 and in the reduced precision,
 * with the same noise and prompts, and compares the patch score maps by
 * Spearman rank correlation (what matters for selection is the ranking of
 * windows) and whether the best window is the same. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "pipeline/params.h"
#include "pipeline/dataset.h"
#include "pipeline/score.h"
#include "pipeline/stage1.h"
#include "tools/tools.h"
#include "util/fs.h"
#include "util/rng.h"

/* qsort_r order of indices by the values they index (ctx: the values). */
static int cmp_idx_by(const void *a, const void *b, void *ctx) {
    const float *v = ctx;
    float x = v[*(const int *)a], y = v[*(const int *)b];
    return x < y ? -1 : x > y;
}

/* r[i]: rank of v[i] among v[0..n), ties averaged. */
static void ranks(const float *v, int n, double *r) {
    int *idx = ddps_malloc((size_t)n * sizeof *idx);
    for (int i = 0; i < n; i++) idx[i] = i;
    qsort_r(idx, (size_t)n, sizeof *idx, cmp_idx_by, (void *)v);
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && v[idx[j + 1]] == v[idx[i]]) j++;
        for (int k = i; k <= j; k++) r[idx[k]] = (i + j) / 2.0;
        i = j + 1;
    }
    free(idx);
}

/* See tools.h. */
double ddps_spearman(const float *a, const float *b, int n) {
    if (n < 2) return 1;
    double *ra = ddps_malloc((size_t)n * sizeof *ra), *rb = ddps_malloc((size_t)n * sizeof *rb);
    ranks(a, n, ra);
    ranks(b, n, rb);
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; i++) ma += ra[i], mb += rb[i];
    ma /= n, mb /= n;
    for (int i = 0; i < n; i++) {
        sab += (ra[i] - ma) * (rb[i] - mb);
        saa += (ra[i] - ma) * (ra[i] - ma);
        sbb += (rb[i] - mb) * (rb[i] - mb);
    }
    free(ra);
    free(rb);
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : (saa == sbb ? 1 : 0);
}

/* One side of the comparison: a CPU backend in one precision, the model,
 * and the two prompt contexts. */
typedef struct {
    ddps_backend *be;
    ddps_sd *sd;
    ddps_precision prec;
    ddps_tensor ctx; /* [2,1,77,C]: null, label */
} engine;

/* Opens e: model folder (NULL: random full-size SD v1.5) in precision p, and
 * encodes the null prompt and "An image of a dog." (fixed tokens for a
 * random model). Returns 0 or -1 with err; e is safe to close either way. */
static int engine_open(engine *e, const char *model, ddps_precision p, int threads, ddps_err *err) {
    memset(e, 0, sizeof *e);
    e->prec = p;
    e->be = ddps_backend_new("cpu", p, threads, err);
    if (!e->be) return -1;
    int rc = model ? ddps_sd_load(model, e->be, DDPS_PART_ALL, &e->sd, err)
                   : ddps_sd15_random(e->be, DDPS_PART_TEXT | DDPS_PART_VAE | DDPS_PART_UNET, 1234, &e->sd, err);
    if (rc != 0) return -1;
    int32_t ids[2 * DDPS_CLIP_LEN];
    if (model && e->sd->tok) {
        ddps_tokenize(e->sd->tok, "", ids);
        ddps_tokenize(e->sd->tok, "An image of a dog.", ids + DDPS_CLIP_LEN);
    } else {
        /* random model: BOS, a few fixed tokens, EOS padding */
        for (int i = 0; i < 2 * DDPS_CLIP_LEN; i++) ids[i] = 49407;
        ids[0] = ids[DDPS_CLIP_LEN] = 49406;
        for (int i = 1; i < 6; i++) ids[DDPS_CLIP_LEN + i] = 320 + 97 * i;
    }
    e->ctx = ddps_tensor_alloc(e->be, 2, 1, DDPS_CLIP_LEN, e->sd->clip_cfg.hidden_size);
    return ddps_clip_forward(e->be, e->sd->text, ids, &e->ctx) != 0 ? ddps_backend_error(e->be, err) : 0;
}

/* Frees what engine_open made (a zeroed e is a no-op). */
static void engine_close(engine *e) {
    if (e->ctx.data) ddps_tensor_free(e->be, &e->ctx);
    if (e->be) ddps_release(e->be, 0);
    ddps_sd_free(e->be, e->sd);
    ddps_backend_free(e->be);
}

/* Stage I of one image in both precisions with the same noise (seeded by
 * the image's index); compares their patch score maps. Returns 0 (and
 * *rho, *same), 1 when the image cannot be read (skipped), -1 on failure. */
static int compare_image(engine *ref, engine *red, const char *path, int index, int size, const int *ts, int K,
                         double *rho, int *same, int *windows, ddps_err *err) {
    int P = size * 3 / 4, S = size / 16;
    ddps_image img, rs;
    int w, h;
    if (ddps_image_load(path, &img, err) != 0) return 1;
    ddps_resize_shorter_size(img.w, img.h, size, &w, &h);
    int rc = ddps_image_resize(&img, w, h, &rs, err);
    ddps_image_free(&img);
    if (rc != 0) return -1;
    float *x = ddps_malloc((size_t)w * h * 3 * sizeof(float));
    ddps_pixels_to_unit(rs.px, (size_t)w * h * 3, x);
    ddps_image_free(&rs);
    int lh = ddps_vae_latent_size(&ref->sd->vae_cfg, h), lw = ddps_vae_latent_size(&ref->sd->vae_cfg, w);
    size_t nn = (size_t)K * lh * lw * ref->sd->vae_cfg.latent_channels;
    float *noise = ddps_malloc(nn * sizeof(float));
    ddps_rng r;
    ddps_rng_seed(&r, (uint64_t)index);
    ddps_rng_fill_normal(&r, noise, nn);
    ddps_stage1_result res[2];
    engine *e[2] = {ref, red};
    int done = 0;
    for (int k = 0; k < 2; k++) {
        size_t m = ddps_mark(e[k]->be);
        ddps_tensor t = ddps_new(e[k]->be, 1, h, w, 3);
        e[k]->be->ops->write(e[k]->be, &t, x);
        ddps_tensor cn = ddps_slice(e[k]->be, &e[k]->ctx, 0, 1), cl = ddps_slice(e[k]->be, &e[k]->ctx, 1, 1);
        rc = ddps_stage1_run(e[k]->be, e[k]->sd, &t, &cn, &cl, ts, K, noise, P, S, &res[k], err);
        ddps_release(e[k]->be, m);
        if (rc != 0) break;
        done++;
    }
    free(x);
    free(noise);
    if (rc == 0) {
        int np = res[0].ph * res[0].pw, b0 = 0, b1 = 0;
        for (int k = 1; k < np; k++) {
            if (res[0].patch_scores[k] > res[0].patch_scores[b0]) b0 = k;
            if (res[1].patch_scores[k] > res[1].patch_scores[b1]) b1 = k;
        }
        *rho = ddps_spearman(res[0].patch_scores, res[1].patch_scores, np);
        *same = b0 == b1;
        *windows = np;
    }
    for (int k = 0; k < done; k++) ddps_stage1_result_free(&res[k]);
    return rc;
}

/* Compares up to p->images images spread evenly over the dataset; reports a
 * line per image and the summary. */
static int compare_dataset(engine *ref, engine *red, const ddps_dataset *ds, const ddps_bench_params *p,
                           const ddps_hooks *h, ddps_err *err) {
    ddps_score_opts o;
    ddps_score_defaults(&o);
    int ts[DDPS_MAX_TIMESTEPS], K = ddps_score_timesteps(&o.p, 1000, ts, err);
    double sum_rho = 0, min_rho = 1;
    int same_best = 0, n = 0, rc = 0, step = ds->n_items / p->images > 1 ? ds->n_items / p->images : 1;
    ddps_tools_out(h, "ddps bench precision: Stage I in f32 vs %s, %s model, %d px, patch %d, stride %d, K=%d",
                   ddps_precision_name(red->prec), p->model ? p->model : "random SD v1.5", p->size, p->size * 3 / 4,
                   p->size / 16, K);
    for (int i = 0; i < ds->n_items && n < p->images; i += step) {
        char *path = ddps_path_join(ds->root, ds->items[i].relpath);
        double rho = 0;
        int same = 0, np = 0;
        rc = compare_image(ref, red, path, i, p->size, ts, K, &rho, &same, &np, err);
        free(path);
        if (rc == 1) continue;
        if (rc != 0) break;
        sum_rho += rho;
        min_rho = rho < min_rho ? rho : min_rho;
        same_best += same;
        n++;
        ddps_tools_out(h, "  %-48s %3d windows  Spearman %.4f  best window %s", ds->items[i].relpath, np, rho,
                       same ? "same" : "differs");
    }
    if (rc != 0) return -1;
    ddps_tools_out(h, "  %d images: mean Spearman %.4f, min %.4f, same best window %d/%d", n, n ? sum_rho / n : 0, min_rho,
                   same_best, n);
    return 0;
}

int ddps_tools_bench_precision(const ddps_bench_params *p, const char *precision, const ddps_hooks *h, ddps_err *err) {
    ddps_precision prec;
    if (ddps_precision_parse(precision, &prec) != 0 || prec == DDPS_PREC_F32)
        return ddps_fail_usage(err, "bench precision: --precision %s: give the reduced precision to compare (bf16)",
                               precision);
    if (!p->data)
        return ddps_fail_usage(err, "bench precision: --data DIR: an ImageFolder with real images is required");
    if (p->images < 1) return ddps_fail_usage(err, "bench precision: --images %d: expected 1..100000", p->images);
    ddps_dataset ds;
    if (ddps_dataset_scan(p->data, NULL, &ds, err) != 0) return ddps_fail_prefix(err, "bench precision");
    engine ref, red;
    int rc = engine_open(&ref, p->model, DDPS_PREC_F32, p->threads, err);
    if (rc == 0) rc = engine_open(&red, p->model, prec, p->threads, err);
    else memset(&red, 0, sizeof red);
    if (rc == 0) rc = compare_dataset(&ref, &red, &ds, p, h, err);
    if (rc != 0) ddps_fail_prefix(err, "bench precision");
    engine_close(&ref);
    engine_close(&red);
    ddps_dataset_free(&ds);
    return rc;
}
