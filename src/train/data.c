/* Training data in memory and its transforms (train/data.h). */
#include "train/data.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/dataset.h"
#include "util/fs.h"

static const float MEAN[3] = {0.485f, 0.456f, 0.406f}, STD[3] = {0.229f, 0.224f, 0.225f};

int ddps_tr_val_resize(int size) { return size / 7 * 8; }

/* Python's round(): half to even (the default rounding mode of nearbyint). */
static int py_round(double v) { return (int)nearbyint(v); }

int ddps_tr_resize_center_crop(const ddps_image *src, int side, int crop, ddps_image *dst, ddps_err *err) {
    int rw, rh;
    ddps_resize_shorter_size(src->w, src->h, side, &rw, &rh);
    ddps_image r = {0};
    if (ddps_image_resize(src, rw, rh, &r, err)) return -1;
    if (ddps_image_alloc(dst, crop, crop)) {
        ddps_image_free(&r);
        return ddps_fail(err, "centre crop: %dx%d too large", crop, crop);
    }
    /* torchvision: top = int(round((h - crop) / 2)); a negative offset pads (zeros). */
    int top = py_round((rh - crop) / 2.0), left = py_round((rw - crop) / 2.0);
    for (int y = 0; y < crop; y++) {
        int sy = y + top;
        if (sy < 0 || sy >= rh) continue;
        for (int x = 0; x < crop; x++) {
            int sx = x + left;
            if (sx >= 0 && sx < rw) memcpy(dst->px + ((size_t)y * crop + x) * 3, r.px + ((size_t)sy * rw + sx) * 3, 3);
        }
    }
    ddps_image_free(&r);
    return 0;
}

/* Decodes one file and brings it to the stored form (bounded side or validation crop). */
static int load_one(const char *path, const tr_data_opts *o, ddps_image *out, ddps_err *err) {
    ddps_image im = {0};
    if (ddps_image_load(path, &im, err)) return -1;
    int rc = 0;
    int shorter = im.w < im.h ? im.w : im.h;
    if (o->val_size > 0) {
        rc = ddps_tr_resize_center_crop(&im, o->val_resize, o->val_size, out, err);
        ddps_image_free(&im);
    } else if (o->store_side > 0 && shorter > o->store_side) {
        int rw, rh;
        ddps_resize_shorter_size(im.w, im.h, o->store_side, &rw, &rh);
        rc = ddps_image_resize(&im, rw, rh, out, err);
        ddps_image_free(&im);
    } else {
        *out = im;
    }
    return rc;
}

static int fill_classes(const ddps_dataset *ds, tr_data *d) {
    d->n_classes = ds->n_classes;
    d->classes = ddps_calloc((size_t)ds->n_classes, sizeof *d->classes);
    for (int c = 0; c < ds->n_classes; c++) d->classes[c] = ddps_strdup(ds->classes[c].name);
    return 0;
}

int ddps_tr_data_load(const char *root, const tr_data_opts *o, tr_data *d, ddps_err *err) {
    memset(d, 0, sizeof *d);
    ddps_dataset ds = {0};
    if (ddps_dataset_scan(root, NULL, &ds, err)) return -1;
    fill_classes(&ds, d);
    int n = ds.n_items;
    ddps_image *img = ddps_calloc((size_t)n, sizeof *img);
    ddps_err *errs = ddps_calloc((size_t)n, sizeof *errs);
    int *ok = ddps_calloc((size_t)n, sizeof *ok);
    int nt = o->threads > 0 ? o->threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 4) num_threads(nt)
    for (int i = 0; i < n; i++) {
        char *p = ddps_path_join(ds.root, ds.items[i].relpath);
        ok[i] = load_one(p, o, &img[i], &errs[i]) == 0;
        free(p);
    }
    d->img = ddps_calloc((size_t)(n ? n : 1), sizeof *d->img);
    d->labels = ddps_calloc((size_t)(n ? n : 1), sizeof *d->labels);
    for (int i = 0; i < n; i++) {
        if (!ok[i]) {
            ddps_warn("%s: skipped (%s)", ds.items[i].relpath, errs[i].msg);
            d->n_bad++;
            continue;
        }
        d->img[d->n] = img[i];
        d->labels[d->n++] = ds.items[i].class_idx;
    }
    free(img);
    free(errs);
    free(ok);
    ddps_dataset_free(&ds);
    if (d->n == 0) {
        ddps_tr_data_free(d);
        return ddps_fail_kind(err, DDPS_KIND_DATA, "%s: no image could be decoded", root);
    }
    return 0;
}

void ddps_tr_data_free(tr_data *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++) ddps_image_free(&d->img[i]);
    for (int c = 0; c < d->n_classes; c++) free(d->classes[c]);
    free(d->img);
    free(d->labels);
    free(d->classes);
    memset(d, 0, sizeof *d);
}

int ddps_tr_rrc_try(int w, int h, double s, double lr, int *cw, int *ch) {
    double target = (double)w * (double)h * s, ar = exp(lr);
    *cw = py_round(sqrt(target * ar));
    *ch = py_round(sqrt(target / ar));
    return *cw > 0 && *cw <= w && *ch > 0 && *ch <= h;
}

void ddps_tr_rrc_fallback(int w, int h, const tr_rrc *p, int box[4]) {
    double in_ratio = (double)w / (double)h;
    int cw = w, ch = h;
    if (in_ratio < p->ratio_lo) {
        ch = py_round(cw / p->ratio_lo);
    } else if (in_ratio > p->ratio_hi) {
        cw = py_round(ch * p->ratio_hi);
    }
    box[0] = (w - cw) / 2, box[1] = (h - ch) / 2, box[2] = cw, box[3] = ch;
}

void ddps_tr_rrc_box(ddps_rng *r, int w, int h, const tr_rrc *p, int box[4]) {
    double l0 = log(p->ratio_lo), l1 = log(p->ratio_hi);
    for (int t = 0; t < 10; t++) {
        double s = p->scale_lo + (p->scale_hi - p->scale_lo) * ddps_rng_uniform(r);
        double lr = l0 + (l1 - l0) * ddps_rng_uniform(r);
        int cw, ch;
        if (ddps_tr_rrc_try(w, h, s, lr, &cw, &ch)) {
            int y = (int)ddps_rng_below(r, (uint64_t)(h - ch + 1)), x = (int)ddps_rng_below(r, (uint64_t)(w - cw + 1));
            box[0] = x, box[1] = y, box[2] = cw, box[3] = ch;
            return;
        }
    }
    ddps_tr_rrc_fallback(w, h, p, box);
}

void ddps_tr_permutation(ddps_rng *r, int n, int *perm) {
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)ddps_rng_below(r, (uint64_t)i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* Strip k of factor along a side of length len: [start, end) as RDED's shuffle_weight. */
static void strip(int k, int factor, int len, int *start, int *end) {
    int t = len / factor;
    *start = k * t;
    *end = *start == factor - 1 ? len : *start + t;
}

/* src (sw x sh) -> dst with its vertical strips (cols = 1) or horizontal strips (cols = 0) in order perm. */
static void cat_strips(const ddps_image *src, int factor, const int *perm, int cols, ddps_image *dst) {
    int len = cols ? src->w : src->h, at = 0;
    for (int k = 0; k < factor; k++) {
        int s, e;
        strip(perm[k], factor, len, &s, &e);
        for (int i = s; i < e; i++, at++) {
            if (cols)
                for (int y = 0; y < src->h; y++)
                    memcpy(dst->px + ((size_t)y * dst->w + at) * 3, src->px + ((size_t)y * src->w + i) * 3, 3);
            else
                memcpy(dst->px + (size_t)at * dst->w * 3, src->px + (size_t)i * src->w * 3, (size_t)src->w * 3);
        }
    }
}

static int strips_len(int factor, int len) {
    int total = 0;
    for (int k = 0; k < factor; k++) {
        int s, e;
        strip(k, factor, len, &s, &e);
        total += e - s;
    }
    return total;
}

int ddps_tr_shuffle_patches(const ddps_image *src, int factor, ddps_rng *r, ddps_image *dst, ddps_err *err) {
    int perm[16];
    if (factor < 1 || factor > 16 || src->w < factor || src->h < factor)
        return ddps_fail(err, "shuffle patches: factor %d for a %dx%d image", factor, src->w, src->h);
    ddps_image mid = {0};
    int w = strips_len(factor, src->w), h = strips_len(factor, src->h);
    if (ddps_image_alloc(&mid, w, src->h) || ddps_image_alloc(dst, w, h)) {
        ddps_image_free(&mid);
        return ddps_fail(err, "shuffle patches: %dx%d too large", w, h);
    }
    ddps_tr_permutation(r, factor, perm);
    cat_strips(src, factor, perm, 1, &mid);
    ddps_tr_permutation(r, factor, perm);
    cat_strips(&mid, factor, perm, 0, dst);
    ddps_image_free(&mid);
    return 0;
}

void ddps_tr_sample_rng(ddps_rng *r, uint64_t seed, long epoch, long index) {
    ddps_rng_seed(r, ddps_seed_mix(ddps_seed_mix(seed, (uint64_t)epoch), (uint64_t)index));
}

void ddps_tr_normalize(const ddps_image *img, float *out) {
    size_t n = (size_t)img->w * img->h;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) out[i * 3 + c] = ((float)img->px[i * 3 + c] / 255.0f - MEAN[c]) / STD[c];
}

/* Horizontal flip in place. */
static void hflip(ddps_image *im) {
    for (int y = 0; y < im->h; y++)
        for (int x = 0; x < im->w / 2; x++) {
            uint8_t *a = im->px + ((size_t)y * im->w + x) * 3, *b = im->px + ((size_t)y * im->w + im->w - 1 - x) * 3;
            for (int c = 0; c < 3; c++) {
                uint8_t t = a[c];
                a[c] = b[c];
                b[c] = t;
            }
        }
}

int ddps_tr_transform(const tr_transform *t, const ddps_image *img, ddps_rng *r, float *out, ddps_err *err) {
    if (!t->train) {
        if (img->w != t->size || img->h != t->size)
            return ddps_fail(err, "transform: a %dx%d evaluation image, expected %dx%d", img->w, img->h, t->size,
                             t->size);
        ddps_tr_normalize(img, out);
        return 0;
    }
    ddps_image sh = {0}, cr = {0}, rs = {0};
    const ddps_image *cur = img;
    int rc = 0;
    if (t->factor > 1) {
        rc = ddps_tr_shuffle_patches(img, t->factor, r, &sh, err);
        cur = &sh;
    }
    int box[4];
    if (!rc) {
        ddps_tr_rrc_box(r, cur->w, cur->h, &t->rrc, box);
        rc = ddps_image_crop(cur, box[0], box[1], box[2], box[3], &cr, err);
    }
    if (!rc) rc = ddps_image_resize(&cr, t->size, t->size, &rs, err);
    if (!rc) {
        if (ddps_rng_uniform(r) < t->flip) hflip(&rs);
        ddps_tr_normalize(&rs, out);
    }
    ddps_image_free(&sh);
    ddps_image_free(&cr);
    ddps_image_free(&rs);
    return rc;
}

void ddps_tr_cutmix(ddps_rng *r, float *x, int n, int h, int w, float *tmp, int *perm, int box[4]) {
    double lam = ddps_rng_uniform(r); /* Beta(1, 1) */
    double cut = sqrt(1.0 - lam);
    int ch = (int)(h * cut), cw = (int)(w * cut);
    int cy = (int)ddps_rng_below(r, (uint64_t)h), cx = (int)ddps_rng_below(r, (uint64_t)w);
    int r0 = cy - ch / 2, r1 = cy + ch / 2, c0 = cx - cw / 2, c1 = cx + cw / 2;
    r0 = r0 < 0 ? 0 : r0 > h ? h : r0;
    r1 = r1 < 0 ? 0 : r1 > h ? h : r1;
    c0 = c0 < 0 ? 0 : c0 > w ? w : c0;
    c1 = c1 < 0 ? 0 : c1 > w ? w : c1;
    ddps_tr_permutation(r, n, perm);
    size_t per = (size_t)h * w * 3;
    memcpy(tmp, x, (size_t)n * per * sizeof(float));
    for (int i = 0; i < n; i++)
        for (int y = r0; y < r1; y++)
            memcpy(x + i * per + ((size_t)y * w + c0) * 3, tmp + perm[i] * per + ((size_t)y * w + c0) * 3,
                   (size_t)(c1 - c0) * 3 * sizeof(float));
    box[0] = r0, box[1] = c0, box[2] = r1, box[3] = c1;
}
