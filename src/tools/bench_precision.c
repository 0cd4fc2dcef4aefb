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
#include "pipeline/dataset.h"
#include "pipeline/score.h"
#include "pipeline/stage1.h"
#include "util/fs.h"
#include "util/rng.h"

static int cmp_idx_by(const void *a, const void *b, void *ctx) {
    const float *v = ctx;
    float x = v[*(const int *)a], y = v[*(const int *)b];
    return x < y ? -1 : x > y;
}

/* Ranks with ties averaged. */
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

typedef struct {
    ddps_backend *be;
    ddps_sd *sd;
    ddps_tensor ctx; /* [2,1,77,C]: null, label */
} engine;

static int engine_open(engine *e, const char *model, ddps_precision p, int threads, ddps_err *err) {
    memset(e, 0, sizeof *e);
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
    ddps_clip_forward(e->be, e->sd->text, ids, &e->ctx);
    return 0;
}

static void engine_close(engine *e) {
    if (e->ctx.data) ddps_tensor_free(e->be, &e->ctx);
    if (e->be) ddps_release(e->be, 0);
    ddps_sd_free(e->be, e->sd);
    ddps_backend_free(e->be);
}

int ddps_bench_precision(const char *model, const char *data, const char *precision, int images, int size,
                         int threads) {
    ddps_err err = {{0}};
    ddps_precision p;
    if (ddps_precision_parse(precision, &p) != 0 || p == DDPS_PREC_F32) {
        fprintf(stderr, "ddps bench precision: --precision %s: give the reduced precision to compare (bf16)\n",
                precision);
        return 2;
    }
    if (!data) {
        fprintf(stderr, "ddps bench precision: --data DIR: an ImageFolder with real images is required\n");
        return 2;
    }
    ddps_dataset ds;
    if (ddps_dataset_scan(data, NULL, &ds, &err) != 0) {
        fprintf(stderr, "ddps bench precision: %s\n", err.msg);
        return 1;
    }
    engine ref, red;
    int rc = engine_open(&ref, model, DDPS_PREC_F32, threads, &err);
    if (rc == 0) rc = engine_open(&red, model, p, threads, &err);
    if (rc != 0) {
        fprintf(stderr, "ddps bench precision: %s\n", err.msg);
        ddps_dataset_free(&ds);
        return 1;
    }
    ddps_score_opts o;
    ddps_score_defaults(&o);
    int ts[DDPS_MAX_TIMESTEPS], K = ddps_score_timesteps(&o, 1000, ts, &err);
    int P = size * 3 / 4, S = size / 16;
    double sum_rho = 0, min_rho = 1;
    int same_best = 0, n = 0;
    printf("ddps bench precision: Stage I in f32 vs %s, %s model, %d px, patch %d, stride %d, K=%d\n",
           ddps_precision_name(p), model ? model : "random SD v1.5", size, P, S, K);
    for (int i = 0; i < ds.n_items && n < images; i += ds.n_items / images > 1 ? ds.n_items / images : 1) {
        char *path = ddps_path_join(ds.root, ds.items[i].relpath);
        ddps_image img, rs;
        int w, h;
        if (ddps_image_load(path, &img, &err) != 0) {
            free(path);
            continue;
        }
        free(path);
        ddps_resize_shorter_size(img.w, img.h, size, &w, &h);
        ddps_image_resize(&img, w, h, &rs, &err);
        ddps_image_free(&img);
        float *x = ddps_malloc((size_t)w * h * 3 * sizeof(float));
        for (size_t k = 0; k < (size_t)w * h * 3; k++) x[k] = rs.px[k] / 127.5f - 1.0f;
        ddps_image_free(&rs);
        int lh = ddps_vae_latent_size(&ref.sd->vae_cfg, h), lw = ddps_vae_latent_size(&ref.sd->vae_cfg, w);
        size_t nn = (size_t)K * lh * lw * ref.sd->vae_cfg.latent_channels;
        float *noise = ddps_malloc(nn * sizeof(float));
        ddps_rng r;
        ddps_rng_seed(&r, (uint64_t)i);
        ddps_rng_fill_normal(&r, noise, nn);
        ddps_stage1_result res[2];
        engine *e[2] = {&ref, &red};
        for (int k = 0; k < 2; k++) {
            size_t m = ddps_mark(e[k]->be);
            ddps_tensor t = ddps_new(e[k]->be, 1, h, w, 3);
            e[k]->be->ops->write(e[k]->be, &t, x);
            ddps_tensor cn = ddps_slice(e[k]->be, &e[k]->ctx, 0, 1), cl = ddps_slice(e[k]->be, &e[k]->ctx, 1, 1);
            rc = ddps_stage1_run(e[k]->be, e[k]->sd, &t, &cn, &cl, ts, K, noise, P, S, &res[k], &err);
            ddps_release(e[k]->be, m);
            if (rc != 0) break;
        }
        free(x);
        free(noise);
        if (rc != 0) break;
        int np = res[0].ph * res[0].pw, b0 = 0, b1 = 0;
        for (int k = 1; k < np; k++) {
            if (res[0].patch_scores[k] > res[0].patch_scores[b0]) b0 = k;
            if (res[1].patch_scores[k] > res[1].patch_scores[b1]) b1 = k;
        }
        double rho = ddps_spearman(res[0].patch_scores, res[1].patch_scores, np);
        sum_rho += rho;
        min_rho = rho < min_rho ? rho : min_rho;
        same_best += b0 == b1;
        n++;
        printf("  %-48s %3d windows  Spearman %.4f  best window %s\n", ds.items[i].relpath, np, rho,
               b0 == b1 ? "same" : "differs");
        ddps_stage1_result_free(&res[0]);
        ddps_stage1_result_free(&res[1]);
    }
    if (rc == 0)
        printf("  %d images: mean Spearman %.4f, min %.4f, same best window %d/%d\n", n, n ? sum_rho / n : 0, min_rho,
               same_best, n);
    else
        fprintf(stderr, "ddps bench precision: %s\n", err.msg);
    engine_close(&ref);
    engine_close(&red);
    ddps_dataset_free(&ds);
    return rc == 0 ? 0 : 1;
}
