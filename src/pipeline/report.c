#include "pipeline/report.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/image.h"
#include "pipeline/outdir.h"
#include "pipeline/params.h"
#include "pipeline/select.h"
#include "pipeline/store.h"
#include "util/clock.h"
#include "util/first_err.h"
#include "util/fs.h"
#include "util/progress.h"

#define PATCH_THUMB 64
#define HIST_BINS 24
#define MAX_LISTED_BAD 500 /* skipped files listed on the overview (all are on the class pages) */

void ddps_report_defaults(ddps_report_opts *o) {
    memset(o, 0, sizeof *o);
    ddps_report_params_defaults(&o->p);
}

/* ---- HTML text ---- */

/* Writes s with &, <, >, " and ' escaped (safe in text and in quoted attributes). */
static void esc(FILE *f, const char *s) {
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default:
            if (*p < 0x20 && *p != '\t') fputc('?', f);
            else fputc(*p, f);
        }
    }
}

/* Writes a path as a URL path: bytes other than unreserved characters and '/' percent-encoded. */
static void url(FILE *f, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '.' || *p == '_' || *p == '~' || *p == '/')
            fputc(*p, f);
        else
            fprintf(f, "%%%02X", *p);
    }
}

/* Writes an absolute file:// URL for ROOT/rel. */
static void file_url(FILE *f, const char *root, const char *rel) {
    fputs("file://", f);
    url(f, root);
    fputc('/', f);
    url(f, rel);
}

/* The start of a page up to <body>: charset, an empty icon (no favicon request), title, stylesheet. */
static void page_head(FILE *f, const char *title, const char *css) {
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<link rel=\"icon\" href=\"data:,\">\n<title>",
          f);
    esc(f, title);
    fprintf(f, "</title>\n<link rel=\"stylesheet\" href=\"%s\">\n</head><body>\n", css);
}

static const char *CSS =
    "body{font:14px/1.4 sans-serif;margin:1em 2em;color:#222;background:#fff}\n"
    "h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.5em;border-bottom:1px solid #ccc}\n"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;"
    "vertical-align:top}\n"
    "th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
    "code{font-size:12px;word-break:break-all}\n"
    ".grid{display:flex;flex-wrap:wrap;gap:8px}\n"
    ".out{position:relative;display:inline-block;line-height:0}\n"
    ".out img{display:block}\n"
    ".out a{position:absolute;display:block}.out a:hover{outline:2px solid #09f}\n"
    ".cls{display:flex;flex-wrap:wrap;gap:8px}.cl{border:1px solid #ddd;padding:4px;width:320px;font-size:12px}\n"
    ".cl .mem{display:flex;flex-wrap:wrap;gap:3px;margin-top:3px}\n"
    ".mem a{position:relative;line-height:0}.mem img{width:48px;height:48px}\n"
    ".mem a.chosen img{outline:3px solid #1a1;outline-offset:-3px}\n"
    ".mem a.chosen::after{content:'\\2713';position:absolute;right:1px;top:1px;font:bold 12px/1 sans-serif;"
    "color:#fff;background:#1a1;padding:1px 2px}\n"
    "figure{margin:0}figcaption{font-size:11px;word-break:break-all}\n"
    ".pic{position:relative;line-height:0}\n"
    ".pic img{display:block}.pic img.heat{position:absolute;left:0;top:0;width:100%;height:100%;opacity:.55}\n"
    ".box{position:absolute;border:2px dashed #0cf;box-sizing:border-box}\n"
    ".box.best{border:2px solid #0f0}\n"
    ".legend{display:inline-block;width:160px;height:12px;vertical-align:middle;border:1px solid #999;"
    "background:linear-gradient(to right,#000 0%,#f00 33.3%,#ff0 66.7%,#fff 100%)}\n"
    ".muted{color:#777}\n"
    "tr[hidden]{display:none}\n";

/* ---- images ---- */

/* "hot": t in [0,1] -> black, red, yellow, white; R+G+B = 765 t (up to rounding). */
static void hot(double t, unsigned char rgb[3]) {
    for (int k = 0; k < 3; k++) {
        double v = 3 * t - k;
        v = v < 0 ? 0 : v > 1 ? 1 : v;
        rgb[k] = (unsigned char)lround(255 * v);
    }
}

/* An 8-bit palette PNG of indices (w x h) with the hot palette. */
static int save_heat_png(const char *path, const unsigned char *idx, int w, int h, ddps_err *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return ddps_fail_resource(err, "%s: cannot write: %s", path, strerror(errno));
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *rows = ddps_malloc((size_t)h * sizeof *rows);
    int ok = 0;
    if (png && info && !setjmp(png_jmpbuf(png))) {
        png_init_io(png, f);
        png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_color pal[256];
        for (int i = 0; i < 256; i++) {
            unsigned char c[3];
            hot(i / 255.0, c);
            pal[i].red = c[0], pal[i].green = c[1], pal[i].blue = c[2];
        }
        png_set_PLTE(png, info, pal, 256);
        png_set_compression_level(png, 6);
        for (int y = 0; y < h; y++) rows[y] = (png_bytep)(idx + (size_t)y * w);
        png_set_rows(png, info, rows);
        png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
        ok = 1;
    }
    png_destroy_write_struct(&png, &info);
    free(rows);
    if (fclose(f) != 0) ok = 0;
    if (!ok) return ddps_fail_resource(err, "%s: cannot write the PNG", path);
    return 0;
}

/* A preview JPEG: written plainly (no fsync: a report is rewritten, not recovered). */
static int save_jpeg(const char *path, const ddps_image *img, int quality, ddps_err *err) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (ddps_image_encode_jpeg(img, quality, &buf, &len, err) != 0) return ddps_fail_prefix(err, "%s", path);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(buf, 1, len, f) == len;
    if (f && fclose(f) != 0) ok = 0;
    free(buf);
    if (!ok) return ddps_fail_resource(err, "%s: cannot write: %s", path, strerror(errno));
    return 0;
}

double ddps_map_sample(const float *m, int h, int w, double x, double y) {
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    int x0 = (int)x, y0 = (int)y;
    if (x0 > w - 1) x0 = w - 1;
    if (y0 > h - 1) y0 = h - 1;
    int x1 = x0 + 1 < w ? x0 + 1 : x0, y1 = y0 + 1 < h ? y0 + 1 : y0;
    double fx = x - x0, fy = y - y0;
    if (fx > 1) fx = 1;
    if (fy > 1) fy = 1;
    double a = m[(size_t)y0 * w + x0] * (1 - fx) + m[(size_t)y0 * w + x1] * fx;
    double b = m[(size_t)y1 * w + x0] * (1 - fx) + m[(size_t)y1 * w + x1] * fx;
    return a * (1 - fy) + b * fy;
}

/* Thumbnail size of a w x h image: longest side t (never enlarged). */
static void thumb_size(int w, int h, int t, int *tw, int *th) {
    if (w <= t && h <= t) {
        *tw = w, *th = h;
    } else if (w >= h) {
        *tw = t;
        *th = (int)lround((double)h * t / w);
    } else {
        *th = t;
        *tw = (int)lround((double)w * t / h);
    }
    if (*tw < 1) *tw = 1;
    if (*th < 1) *th = 1;
}

typedef struct {
    const char *data_root, *dir; /* dir: OUT/c<k> */
    const ddps_class_data *d;
    const ddps_stored_map *maps;
    const int *first_cand; /* first candidate index of each image; n_images + 1 entries */
    int thumb;
    float *dmin, *dmax; /* per image: range of the drawn heatmap */
} class_job;

/* Decodes a source for previews: a JPEG at 1/denom of its size (DCT scaling),
 * other formats whole; *got is the reduction used. */
static int load_preview(const char *path, int denom, ddps_image *img, int *got, ddps_err *err) {
    char *buf;
    size_t len;
    img->w = img->h = 0;
    img->px = NULL;
    if (ddps_read_file(path, (size_t)1 << 30, &buf, &len, err) != 0) return -1;
    int rc;
    if (len >= 3 && (unsigned char)buf[0] == 0xff && (unsigned char)buf[1] == 0xd8 && denom > 1) {
        rc = ddps_image_decode_jpeg_reduced((const uint8_t *)buf, len, path, denom, img, err);
        *got = denom;
    } else {
        rc = ddps_image_decode(buf, len, path, img, err);
        *got = 1;
    }
    free(buf);
    return rc;
}

/* Decodes image i once (reduced as far as the thumbnail and the patch
 * previews allow) and writes its thumbnail, heatmap and candidate patches. */
static int write_image_files(const class_job *j, int i, ddps_err *err) {
    const ddps_stored_image *im = &j->d->images[i];
    char *path = ddps_path_join(j->data_root, im->relpath), name[64];
    ddps_image src = {0, 0, NULL}, t = {0, 0, NULL};
    double longest = im->width > im->height ? im->width : im->height, small_box = longest;
    for (int c = j->first_cand[i]; c < j->first_cand[i + 1]; c++) {
        const ddps_stored_cand *k = &j->d->cand[c];
        small_box = fmin(small_box, fmin(k->x1 - k->x0, k->y1 - k->y0));
    }
    int denom = 8, got = 1;
    while (denom > 1 && (longest / denom < j->thumb || small_box / denom < PATCH_THUMB)) denom /= 2;
    int rc = load_preview(path, denom, &src, &got, err);
    if (rc == 0 && (src.w != (im->width + got - 1) / got || src.h != (im->height + got - 1) / got))
        rc = ddps_fail_data(err, "%s: image is not %dx%d as when scored (the data changed; score again)", path, im->width,
                       im->height);
    int tw = 0, th = 0;
    if (rc == 0) {
        thumb_size(src.w, src.h, j->thumb, &tw, &th);
        rc = ddps_image_resize(&src, tw, th, &t, err);
    }
    if (rc == 0) {
        snprintf(name, sizeof name, "src/%d.jpg", i);
        char *p = ddps_path_join(j->dir, name);
        rc = save_jpeg(p, &t, 82, err);
        free(p);
    }
    const ddps_stored_map *m = &j->maps[i];
    if (rc == 0 && m->data) {
        /* D at pixel centres of a grid half the thumbnail's size (the browser scales it up
         * smoothly; D is smooth at that scale): grid -> resized image -> latent, all proportional. */
        int hw = (tw + 1) / 2, hh = (th + 1) / 2;
        size_t n = (size_t)hw * hh;
        float *v = ddps_malloc(n * sizeof *v);
        unsigned char *idx = ddps_malloc(n);
        double lo = INFINITY, hi = -INFINITY;
        for (int y = 0; y < hh; y++)
            for (int x = 0; x < hw; x++) {
                double mx = (x + 0.5) * m->w / hw - 0.5, my = (y + 0.5) * m->h / hh - 0.5;
                double s = ddps_map_sample(m->data, m->h, m->w, mx, my);
                v[(size_t)y * hw + x] = (float)s;
                if (s < lo) lo = s;
                if (s > hi) hi = s;
            }
        double span = hi > lo ? hi - lo : 1;
        for (size_t k = 0; k < n; k++) idx[k] = (unsigned char)(255 * (v[k] - lo) / span + 0.5);
        j->dmin[i] = (float)lo;
        j->dmax[i] = (float)hi;
        snprintf(name, sizeof name, "map/%d.png", i);
        char *p = ddps_path_join(j->dir, name);
        rc = save_heat_png(p, idx, hw, hh, err);
        free(p);
        free(v);
        free(idx);
    }
    for (int c = j->first_cand[i]; rc == 0 && c < j->first_cand[i + 1]; c++) {
        int box[4];
        ddps_image crop, patch;
        ddps_stored_cand k = j->d->cand[c];
        double fx = (double)src.w / im->width, fy = (double)src.h / im->height;
        k.x0 *= fx, k.x1 *= fx, k.y0 *= fy, k.y1 *= fy;
        ddps_crop_box(&k, src.w, src.h, box);
        rc = ddps_image_crop(&src, box[0], box[1], box[2] - box[0], box[3] - box[1], &crop, err);
        if (rc == 0) {
            rc = ddps_image_resize(&crop, PATCH_THUMB, PATCH_THUMB, &patch, err);
            ddps_image_free(&crop);
        }
        if (rc == 0) {
            snprintf(name, sizeof name, "patch/%d.jpg", c);
            char *p = ddps_path_join(j->dir, name);
            rc = save_jpeg(p, &patch, 85, err);
            free(p);
            ddps_image_free(&patch);
        }
    }
    ddps_image_free(&src);
    ddps_image_free(&t);
    free(path);
    return rc;
}

/* ---- the run ---- */

typedef struct {
    const ddps_report_opts *o;
    ddps_store *store;
    char *data_root;     /* absolute */
    json_t *settings;    /* from the store */
    ddps_select_plan plan; /* the distilled set select wrote (one IPC; classes as in cls) */
    const ddps_select_opts *sel; /* its settings */
    char *model_id, *model_dir, *version, *created;
    ddps_class_info *cls;
    int n_cls;
    int has_maps;
    int threads;
    double class_seconds; /* total time writing class pages */
    double class_cpu;     /* CPU seconds (all threads) for them */
    long n_maps;          /* images drawn with a heatmap */
} report_ctx;

/* An integer member, 0 when absent. */
static long jint(json_t *o, const char *k) { return (long)json_integer_value(json_object_get(o, k)); }

/* A string member, or dflt when absent or not a string. */
static const char *jtext(json_t *o, const char *k, const char *dflt) {
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : dflt;
}

/* Ascending floats (qsort). */
static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Histogram of the class's candidate scores as inline SVG. */
static void score_svg(FILE *f, const ddps_class_data *d) {
    if (d->n_cand == 0) {
        fputs("<p class=\"muted\">No candidates.</p>\n", f);
        return;
    }
    float lo = d->cand[0].score, hi = lo;
    for (int i = 1; i < d->n_cand; i++) {
        if (d->cand[i].score < lo) lo = d->cand[i].score;
        if (d->cand[i].score > hi) hi = d->cand[i].score;
    }
    int bins[HIST_BINS] = {0}, top = 1;
    double span = hi > lo ? (double)hi - lo : 1;
    for (int i = 0; i < d->n_cand; i++) {
        int b = (int)((d->cand[i].score - lo) / span * HIST_BINS);
        if (b >= HIST_BINS) b = HIST_BINS - 1;
        if (b < 0) b = 0;
        if (++bins[b] > top) top = bins[b];
    }
    float *s = ddps_malloc((size_t)d->n_cand * sizeof *s);
    for (int i = 0; i < d->n_cand; i++) s[i] = d->cand[i].score;
    qsort(s, (size_t)d->n_cand, sizeof *s, cmp_float);
    double med = d->n_cand % 2 ? s[d->n_cand / 2] : 0.5 * ((double)s[d->n_cand / 2 - 1] + s[d->n_cand / 2]);
    free(s);
    const int W = 360, H = 120, L = 30, B = 20, pw = W - L - 10, ph = H - B - 10;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\" "
            "aria-label=\"Stage-I score histogram\" font-size=\"10\" font-family=\"sans-serif\">\n",
            W, H);
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>\n", L, 10 + ph, L + pw, 10 + ph);
    for (int b = 0; b < HIST_BINS; b++) {
        double bh = (double)bins[b] / top * ph, bw = (double)pw / HIST_BINS;
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#4a7fd0\"><title>%d</title></rect>\n",
                L + b * bw + 0.5, 10 + ph - bh, bw - 1, bh, bins[b]);
    }
    double mx = L + (med - lo) / span * pw;
    fprintf(f, "<line x1=\"%.1f\" y1=\"10\" x2=\"%.1f\" y2=\"%d\" stroke=\"#d33\" stroke-dasharray=\"3 2\"/>\n", mx, mx,
            10 + ph);
    fprintf(f, "<text x=\"%d\" y=\"%d\">%.4g</text>", L, H - 4, lo);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.4g</text>", L + pw, H - 4, hi);
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#d33\">median %.4g</text>", mx, H - 4, med);
    fprintf(f, "<text x=\"%d\" y=\"18\" text-anchor=\"end\">%d</text>\n</svg>\n", L - 3, top);
}

/* The distilled images of class k with an overlay link per patch to its source's card. */
static void distilled_html(FILE *f, const report_ctx *r, int k) {
    const ddps_class_data *d = &r->plan.data[k];
    const ddps_class_plan *p = &r->plan.plans[k];
    fputs("<div class=\"grid\">\n", f);
    for (int i = 0; i < p->lay.n_images; i++) {
        int n = p->lay.per_image;
        int os = r->sel->p.output_size;
        if (r->plan.low_res)
            fputs("<div class=\"out\"><img style=\"min-width:96px;max-width:224px;height:auto\" loading=\"lazy\" "
                  "alt=\"distilled image\" src=\"",
                  f);
        else
            fprintf(f, "<div class=\"out\"><img width=\"%d\" height=\"%d\" loading=\"lazy\" alt=\"distilled image\" src=\"",
                    os, os);
        fprintf(f, "../distilled/ipc%d/", r->o->p.ipc);
        char *file = ddps_select_output_name(r->plan.folders[k], i, ddps_format_ext(r->sel->p.format));
        url(f, file);
        free(file);
        fputs("\">", f);
        for (int slot = 0; slot < n; slot++) {
            const int ii = d->cand[p->picks[i + slot * p->lay.n_images]].image;
            int cell = n == 4 ? 50 : 100, cx = n == 4 ? (slot & 1) * 50 : 0, cy = n == 4 ? (slot >> 1) * 50 : 0;
            fprintf(f, "<a style=\"left:%d%%;top:%d%%;width:%d%%;height:%d%%\" href=\"#img%d\" title=\"", cx, cy, cell,
                    cell, ii);
            esc(f, d->images[ii].relpath);
            fputs("\"></a>", f);
        }
        fputs("</div>\n", f);
    }
    fputs("</div>\n", f);
    if (!p->lay.n_images) fputs("<p class=\"muted\">No distilled images (no candidates).</p>\n", f);
}

typedef struct {
    int index;
    float dist;
} member;

/* Cluster members by distance to the centroid, then candidate order. */
static int cmp_member(const void *a, const void *b) {
    const member *x = a, *y = b;
    if (x->dist != y->dist) return x->dist < y->dist ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* The clusters in rank order: size, median score, members by distance (chosen ones marked), each
 * linked to its image's card. */
static void clusters_html(FILE *f, const ddps_class_data *d, const unsigned char *chosen) {
    if (d->n_clusters == 0) {
        fputs("<p class=\"muted\">No clusters.</p>\n", f);
        return;
    }
    member *m = ddps_malloc((size_t)(d->n_cand ? d->n_cand : 1) * sizeof *m);
    fputs("<div class=\"cls\">\n", f);
    for (int k = 0; k < d->n_clusters; k++) {
        const ddps_stored_cluster *c = &d->clusters[k];
        int n = 0, nch = 0;
        for (int i = 0; i < d->n_cand; i++)
            if (d->cand[i].cluster == c->cluster) {
                m[n++] = (member){i, d->cand[i].dist};
                nch += chosen[i];
            }
        qsort(m, (size_t)n, sizeof *m, cmp_member);
        fprintf(f,
                "<div class=\"cl\" id=\"cluster%d\"><b>rank %d</b> &middot; cluster %d &middot; %d members &middot; "
                "median score %.5g &middot; %d chosen<div class=\"mem\">",
                c->cluster, c->rank, c->cluster, c->size, c->median_score, nch);
        for (int j = 0; j < n; j++) {
            const ddps_stored_cand *cd = &d->cand[m[j].index];
            fprintf(f, "<a href=\"#img%d\"%s title=\"", cd->image, chosen[m[j].index] ? " class=\"chosen\"" : "");
            esc(f, d->images[cd->image].relpath);
            fprintf(f, " (score %.5g, distance %.4g)\"><img loading=\"lazy\" src=\"patch/%d.jpg\" alt=\"\"></a>",
                    cd->score, cd->dist, m[j].index);
        }
        fputs("</div></div>\n", f);
    }
    fputs("</div>\n", f);
    free(m);
}

/* One card per scored image: thumbnail, heatmap over it, candidate boxes (CSS, in percent of the
 * image), scores; the card links to the original file. */
static void images_html(FILE *f, const report_ctx *r, const class_job *j, const unsigned char *chosen) {
    const ddps_class_data *d = j->d;
    fputs("<div class=\"grid\">\n", f);
    for (int i = 0; i < d->n_images; i++) {
        const ddps_stored_image *im = &d->images[i];
        int tw, th;
        thumb_size(im->width, im->height, j->thumb, &tw, &th);
        /* small originals (CIFAR) are shown enlarged, by a whole factor */
        int longest = tw > th ? tw : th, zoom = longest < 96 ? (96 + longest - 1) / longest : 1;
        tw *= zoom, th *= zoom;
        fprintf(f, "<figure id=\"img%d\" style=\"width:%dpx\"><a class=\"pic\" href=\"", i, tw < 120 ? 120 : tw);
        file_url(f, r->data_root, im->relpath);
        fprintf(f, "\" style=\"display:block;width:%dpx;height:%dpx\">", tw, th);
        fprintf(f, "<img width=\"%d\" height=\"%d\" loading=\"lazy\" alt=\"source\" src=\"src/%d.jpg\">", tw, th, i);
        if (j->maps[i].data)
            fprintf(f, "<img class=\"heat\" loading=\"lazy\" alt=\"Stage-I heatmap\" src=\"map/%d.png\">", i);
        for (int c = j->first_cand[i]; c < j->first_cand[i + 1]; c++) {
            const ddps_stored_cand *cd = &d->cand[c];
            fprintf(f, "<span class=\"box%s\" title=\"window %d, score %.5g%s\" style=\"left:%.2f%%;top:%.2f%%;"
                       "width:%.2f%%;height:%.2f%%\"></span>",
                    cd->idx == 0 ? " best" : "", cd->idx, cd->score, chosen[c] ? ", chosen" : "",
                    100 * cd->x0 / im->width, 100 * cd->y0 / im->height, 100 * (cd->x1 - cd->x0) / im->width,
                    100 * (cd->y1 - cd->y0) / im->height);
        }
        fputs("</a><figcaption>", f);
        esc(f, im->relpath);
        fprintf(f, "<br>image score %.5g", im->image_score);
        for (int c = j->first_cand[i]; c < j->first_cand[i + 1]; c++)
            fprintf(f, "<br>window %d: %.5g%s%s", d->cand[c].idx, d->cand[c].score,
                    d->cand[c].cluster >= 0 ? "" : " (unclustered)", chosen[c] ? " &#10003;" : "");
        if (j->maps[i].data)
            fprintf(f, "<br>D %.3g &hellip; %.3g", j->dmin[i], j->dmax[i]);
        else
            fputs("<br><span class=\"muted\">no heatmap</span>", f);
        fputs("</figcaption></figure>\n", f);
    }
    fputs("</div>\n", f);
}

/* A table of skipped files (relpath, reason), at most limit rows, then a
 * line counting the rest; "None." when there are none. */
static void bad_table(FILE *f, const ddps_bad_image *bad, int nbad, int limit) {
    if (nbad == 0) {
        fputs("<p class=\"muted\">None.</p>\n", f);
        return;
    }
    fputs("<table><tr><th>file</th><th>reason</th></tr>\n", f);
    for (int b = 0; b < nbad && b < limit; b++) {
        fputs("<tr><td><code>", f);
        esc(f, bad[b].relpath);
        fputs("</code></td><td>", f);
        esc(f, bad[b].reason);
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
    if (nbad > limit) fprintf(f, "<p>&hellip; and %d more (on the class pages).</p>\n", nbad - limit);
}

/* Every image's thumbnail, heatmap and patches, in parallel; the first
 * failure (in image order) is returned. */
static int write_class_files(const report_ctx *r, const class_job *job, ddps_err *err) {
    ddps_first_err fe;
    ddps_first_err_init(&fe);
#pragma omp parallel for schedule(dynamic, 1) num_threads(r->threads)
    for (int i = 0; i < job->d->n_images; i++) {
        if (ddps_first_err_stopped(&fe)) continue;
        ddps_err e;
        if (write_image_files(job, i, &e) != 0) ddps_first_err_set(&fe, i, &e);
    }
    return ddps_first_err_take(&fe, err);
}

/* The class page's title, counts and distilled images section. */
static void class_page_head(FILE *f, const report_ctx *r, int k, int nbad) {
    const ddps_class_info *ci = &r->cls[k];
    const ddps_class_data *d = &r->plan.data[k];
    const ddps_class_plan *p = &r->plan.plans[k];
    const ddps_report_opts *o = r->o;
    page_head(f, ci->name, "../style.css");
    fputs("<p><a href=\"../index.html\">&larr; all classes</a></p>\n<h1>", f);
    esc(f, ci->name);
    if (ci->prompt_name && strcmp(ci->prompt_name, ci->name) != 0) {
        fputs(" <span class=\"muted\">(", f);
        esc(f, ci->prompt_name);
        fputs(")</span>", f);
    }
    fputs("</h1>\n", f);
    fprintf(f, "<p>%d images scored, %d skipped, %d candidates, %d clusters", d->n_images, nbad, d->n_cand,
            d->n_clusters);
    if (ci->prompt) {
        fputs(", prompt <code>", f);
        esc(f, ci->prompt);
        fputs("</code>", f);
    }
    fputs(".</p>\n", f);
    fprintf(f, "<h2>Distilled images, IPC %d (%s)</h2>\n", o->p.ipc,
            r->plan.low_res ? "whole images" : r->plan.mosaic ? "2&times;2 mosaics" : "single patches");
    if (p->lay.n_images < o->p.ipc)
        fprintf(f, "<p><b>Shortfall:</b> %d of %d images (%d patches missing).</p>\n", o->p.ipc - p->lay.n_images,
                o->p.ipc, p->needed - p->n_picks);
    fputs("<p class=\"muted\">Each patch links to its source image below.</p>\n", f);
    distilled_html(f, r, k);
}

/* The class page's clusters, score distribution and images sections;
 * counts the images with a heatmap into r->n_maps. */
static void class_page_body(FILE *f, report_ctx *r, const class_job *job, const unsigned char *chosen) {
    const ddps_class_data *d = job->d;
    fputs("<h2>Clusters</h2>\n<p class=\"muted\">In rank order (median Stage-I score, descending); members by "
          "distance to the centroid; <span style=\"color:#1a1\">&#10003;</span> = chosen for the distilled set.</p>\n",
          f);
    clusters_html(f, d, chosen);
    fputs("<h2>Score distribution</h2>\n", f);
    score_svg(f, d);
    fputs("<h2>Images</h2>\n", f);
    int nmaps = 0;
    for (int i = 0; i < d->n_images; i++) nmaps += job->maps[i].data != NULL;
    r->n_maps += nmaps;
    if (d->n_images > 0 && nmaps == 0)
        fputs("<p><b>Heatmaps unavailable:</b> this store holds no Stage-I maps (it was scored by a ddps that did not "
              "record them); score into a new store to get them.</p>\n",
              f);
    else
        fputs("<p>Heatmap of D (Stage-I score map) over each image, scaled to the image's own range: "
              "<span class=\"muted\">low</span> <span class=\"legend\"></span> <span class=\"muted\">high</span>. "
              "Boxes: <span style=\"color:#0a0\">solid</span> = best window, "
              "<span style=\"color:#08c\">dashed</span> = further candidates. Click an image for the original.</p>\n",
              f);
    images_html(f, r, job, chosen);
}

/* Creates dir/{src,map,patch}. */
static int class_dirs(const char *dir, ddps_err *err) {
    const char *subdirs[3] = {"src", "map", "patch"};
    for (int s = 0; s < 3; s++) {
        char *p = ddps_path_join(dir, subdirs[s]);
        int m = ddps_mkdirs(p, err);
        free(p);
        if (m != 0) return -1;
    }
    return 0;
}

/* Writes OUT/c<k>/ for class k (0-based): the per-image files, then the page. */
static int write_class(report_ctx *r, int k, ddps_err *err) {
    const ddps_class_info *ci = &r->cls[k];
    char sub[32];
    snprintf(sub, sizeof sub, "c%d", k + 1);
    char *dir = ddps_path_join(r->o->out_dir, sub);
    const ddps_class_data *d = &r->plan.data[k];
    const ddps_class_plan *p = &r->plan.plans[k];
    ddps_stored_map *maps = NULL;
    ddps_bad_image *bad = NULL;
    int nbad = 0, rc = -1;
    int *first = NULL;
    unsigned char *chosen = NULL;
    float *dmin = NULL, *dmax = NULL;
    char *html = NULL;
    size_t html_len = 0;
    if (ddps_store_load_maps(r->store, d, &maps, err) ||
        ddps_store_list_bad(r->store, ci->id, &bad, &nbad, err) != 0 || class_dirs(dir, err) != 0)
        goto done;
    first = ddps_calloc((size_t)d->n_images + 1, sizeof *first);
    for (int c = 0; c < d->n_cand; c++) first[d->cand[c].image + 1]++;
    for (int i = 0; i < d->n_images; i++) first[i + 1] += first[i];
    chosen = ddps_calloc((size_t)(d->n_cand ? d->n_cand : 1), 1); /* the written candidates */
    for (int i = 0; i < p->lay.n_images * p->lay.per_image; i++) chosen[p->picks[i]] = 1;
    dmin = ddps_calloc((size_t)(d->n_images ? d->n_images : 1), sizeof *dmin);
    dmax = ddps_calloc((size_t)(d->n_images ? d->n_images : 1), sizeof *dmax);
    class_job job = {r->data_root, dir, d, maps, first, r->o->p.thumb, dmin, dmax};
    if (write_class_files(r, &job, err) != 0) goto done;
    FILE *f = open_memstream(&html, &html_len);
    if (!f) {
        ddps_fail_resource(err, "out of memory");
        goto done;
    }
    class_page_head(f, r, k, nbad);
    class_page_body(f, r, &job, chosen);
    fputs("<h2>Skipped files</h2>\n", f);
    bad_table(f, bad, nbad, INT_MAX);
    fputs("</body></html>\n", f);
    if (fclose(f) != 0) {
        ddps_fail_resource(err, "out of memory");
        goto done;
    }
    char *page = ddps_path_join(dir, "index.html");
    rc = ddps_write_file_atomic(page, html, html_len, err);
    free(page);
done:
    free(html);
    free(dir);
    free(first);
    free(chosen);
    free(dmin);
    free(dmax);
    if (maps) ddps_store_free_maps(maps, d->n_images);
    ddps_store_free_bad(bad, nbad);
    return rc;
}

/* Every scoring setting of the store, one row each. */
static void settings_html(FILE *f, json_t *settings) {
    fputs("<table><tr><th>setting</th><th>value</th></tr>\n", f);
    const char *key;
    json_t *v;
    json_object_foreach(settings, key, v) {
        char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        fputs("<tr><td>", f);
        esc(f, key);
        fputs("</td><td><code>", f);
        esc(f, t ? t : "?");
        fputs("</code></td></tr>\n", f);
        free(t);
    }
    fputs("</table>\n", f);
}

/* The overview's head: store, model, data root, counts, then the settings. */
static void index_summary(FILE *f, const report_ctx *r) {
    long images = 0, skipped = 0, cands = 0;
    for (int k = 0; k < r->n_cls; k++) images += r->cls[k].n_images, skipped += r->cls[k].n_bad, cands += r->cls[k].n_cand;
    page_head(f, "ddps report", "style.css");
    fputs("<h1>ddps report</h1>\n<table>\n<tr><th>store</th><td><code>", f);
    esc(f, r->o->store_path);
    fputs("</code></td></tr>\n<tr><th>model</th><td><code>", f);
    esc(f, r->model_dir ? r->model_dir : "(folder not recorded)");
    fputs("</code>, identity <code>", f);
    esc(f, r->model_id ? r->model_id : "(not recorded)");
    fputs("</code></td></tr>\n<tr><th>data root</th><td><code>", f);
    esc(f, r->data_root);
    fputs("</code></td></tr>\n<tr><th>store created</th><td>", f);
    esc(f, r->created ? r->created : "?");
    fputs(" by ddps ", f);
    esc(f, r->version ? r->version : "?");
    fprintf(f, "</td></tr>\n<tr><th>classes</th><td>%d</td></tr>\n<tr><th>images scored</th><td>%ld</td></tr>\n"
               "<tr><th>images skipped</th><td>%ld</td></tr>\n<tr><th>candidates</th><td>%ld</td></tr>\n"
               "<tr><th>heatmaps</th><td>%s</td></tr>\n</table>\n",
            r->n_cls, images, skipped, cands,
            r->n_maps > 0 ? "from the store's Stage-I maps"
                          : "unavailable (store scored by a ddps that did not record Stage-I maps)");
    if (r->n_maps > 0 && r->n_maps < images)
        fprintf(f, "<p>%ld of %ld images have a heatmap (the others were scored by an older ddps).</p>\n", r->n_maps,
                images);
    fputs("<h2>Settings</h2>\n", f);
    settings_html(f, r->settings);
}

/* The overview's runs table: one row per recorded run, then the totals. */
static void runs_table(FILE *f, const ddps_stored_run *runs, int nruns) {
    fputs("<h2>Runs</h2>\n<table><tr><th>#</th><th>command</th><th>finished (UTC)</th><th>seconds</th>"
          "<th>images scored</th><th>skipped</th><th>UNet latents</th><th>VAE images</th><th>text prompts</th></tr>\n",
          f);
    ddps_run_stats tot;
    memset(&tot, 0, sizeof tot);
    for (int i = 0; i < nruns; i++) {
        const ddps_run_stats *s = &runs[i].st;
        fprintf(f, "<tr><td class=\"n\">%d</td><td>", i + 1);
        esc(f, runs[i].command);
        fputs("</td><td>", f);
        esc(f, runs[i].finished);
        fprintf(f, "</td><td class=\"n\">%.1f</td><td class=\"n\">%ld</td><td class=\"n\">%ld</td><td class=\"n\">%ld"
                   "</td><td class=\"n\">%ld</td><td class=\"n\">%ld</td></tr>\n",
                s->seconds, s->images_scored, s->images_bad, s->unet_latents, s->vae_images, s->text_prompts);
        tot.seconds += s->seconds, tot.images_scored += s->images_scored, tot.images_bad += s->images_bad;
        tot.unet_latents += s->unet_latents, tot.vae_images += s->vae_images, tot.text_prompts += s->text_prompts;
    }
    fprintf(f, "<tr><th></th><th>total</th><th></th><th class=\"n\">%.1f</th><th class=\"n\">%ld</th><th class=\"n\">"
               "%ld</th><th class=\"n\">%ld</th><th class=\"n\">%ld</th><th class=\"n\">%ld</th></tr>\n</table>\n",
            tot.seconds, tot.images_scored, tot.images_bad, tot.unet_latents, tot.vae_images, tot.text_prompts);
}

/* s in ASCII lower case, HTML-escaped (the class filter's data-name). */
static void esc_lower(FILE *f, const char *s) {
    for (const char *p = s; *p; p++) {
        char lc[2] = {(char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p), 0};
        esc(f, lc);
    }
}

/* The overview's classes table (filterable by name), with the distilled
 * set's mode and each class's shortfall. */
static void classes_table(FILE *f, const report_ctx *r) {
    const ddps_report_opts *o = r->o;
    fprintf(f, "<h2>Classes</h2>\n<p>Distilled set: IPC %d, %s, top clusters %ld, output %ld px "
               "(<a href=\"distilled/ipc%d/manifest.json\">manifest</a>). "
               "<input id=\"q\" type=\"search\" placeholder=\"filter by class name\" aria-label=\"filter\"> "
               "<span id=\"shown\"></span></p>\n",
            o->p.ipc, ddps_select_mode_name(r->plan.low_res, r->plan.mosaic), (long)r->sel->p.top_clusters, (long)r->sel->p.output_size, o->p.ipc);
    fputs("<table id=\"classes\"><thead><tr><th>class</th><th>name</th><th>images</th><th>skipped</th>"
          "<th>candidates</th><th>clusters</th>",
          f);
    fprintf(f, "<th>shortfall at IPC %d</th></tr></thead><tbody>\n", o->p.ipc);
    for (int k = 0; k < r->n_cls; k++) {
        const ddps_class_info *ci = &r->cls[k];
        fputs("<tr data-name=\"", f);
        esc_lower(f, ci->name);
        fputc(' ', f);
        esc_lower(f, ci->prompt_name ? ci->prompt_name : "");
        fprintf(f, "\"><td><a href=\"c%d/index.html\">", k + 1);
        esc(f, ci->name);
        fputs("</a></td><td>", f);
        esc(f, ci->prompt_name ? ci->prompt_name : "");
        fprintf(f, "</td><td class=\"n\">%ld</td><td class=\"n\">%ld</td><td class=\"n\">%ld</td><td class=\"n\">%ld"
                   "</td><td class=\"n\">%ld</td></tr>\n",
                ci->n_images, ci->n_bad, ci->n_cand, (long)r->plan.data[k].n_clusters,
                (long)(o->p.ipc - r->plan.plans[k].lay.n_images));
    }
    fputs("</tbody></table>\n", f);
}

/* `ddps eval`'s results for the distilled set beside the report, when present: OUT/../ipc<N>/eval.json
 * (`ddps distill --report`) or OUT/../distilled/ipc<N>/eval.json (`ddps demo`). */
static void eval_summary(FILE *f, const report_ctx *r) {
    char rel[64];
    snprintf(rel, sizeof rel, "../ipc%d/eval.json", r->o->p.ipc);
    char *p = ddps_path_join(r->o->out_dir, rel);
    if (!ddps_is_file(p)) {
        free(p);
        snprintf(rel, sizeof rel, "../distilled/ipc%d/eval.json", r->o->p.ipc);
        p = ddps_path_join(r->o->out_dir, rel);
    }
    json_error_t je;
    json_t *e = json_load_file(p, 0, &je), *s = e ? json_object_get(e, "settings") : NULL;
    if (json_is_object(e) && json_is_object(s)) {
        fprintf(f, "<h2>Evaluation</h2>\n<p>RDED's protocol (<code>ddps eval</code>, <a href=\"%s\">eval.json</a>): "
                   "top-1 %.2f &plusmn; %.2f %%, top-5 %.2f %% over %zu students ",
                rel, 100 * json_number_value(json_object_get(e, "top1_mean")),
                100 * json_number_value(json_object_get(e, "top1_std")),
                100 * json_number_value(json_object_get(e, "top5_mean")), json_array_size(json_object_get(e, "students")));
        fputs("(student ", f);
        esc(f, jtext(s, "student", "?"));
        fputs(", teacher ", f);
        esc(f, jtext(s, "teacher_model", "?"));
        fprintf(f, ", %ld epochs, %ld px).</p>\n", jint(s, "epochs"), jint(s, "size"));
    }
    json_decref(e);
    free(p);
}

/* OUT/index.html: the overview (after the class pages, whose timing it shows). */
static int write_index(report_ctx *r, double select_s, ddps_err *err) {
    ddps_stored_run *runs = NULL;
    ddps_bad_image *bad = NULL;
    int nruns = 0, nbad = 0, rc = -1;
    char *html = NULL;
    size_t len = 0;
    if (ddps_store_list_runs(r->store, &runs, &nruns, err) != 0 || ddps_store_list_bad(r->store, 0, &bad, &nbad, err))
        goto done;
    FILE *f = open_memstream(&html, &len);
    if (!f) {
        ddps_fail_resource(err, "out of memory");
        goto done;
    }
    index_summary(f, r);
    runs_table(f, runs, nruns);
    classes_table(f, r);
    eval_summary(f, r);
    fputs("<h2>Skipped files</h2>\n", f);
    bad_table(f, bad, nbad, MAX_LISTED_BAD);
    fprintf(f,
            "<p class=\"muted\">Written by ddps %s: distilled set %.2f s, class pages %.2f s (%.3f s per class, "
            "%.3f s CPU per class).</p>\n",
            DDPS_VERSION, select_s, r->class_seconds, r->n_cls ? r->class_seconds / r->n_cls : 0.0,
            r->n_cls ? r->class_cpu / r->n_cls : 0.0);
    fputs("<script>\n(function(){var q=document.getElementById('q'),rows=document.querySelectorAll('#classes tbody tr'),"
          "out=document.getElementById('shown');\nfunction f(){var s=q.value.toLowerCase(),n=0;"
          "rows.forEach(function(r){var h=r.getAttribute('data-name').indexOf(s)<0;r.hidden=h;if(!h)n++;});"
          "out.textContent=n+' of '+rows.length+' classes';}\nq.addEventListener('input',f);f();})();\n</script>\n",
          f);
    fputs("</body></html>\n", f);
    if (fclose(f) != 0) {
        ddps_fail_resource(err, "out of memory");
        goto done;
    }
    char *p = ddps_path_join(r->o->out_dir, "index.html");
    rc = ddps_write_file_atomic(p, html, len, err);
    free(p);
done:
    free(html);
    ddps_store_free_runs(runs, nruns);
    ddps_store_free_bad(bad, nbad);
    return rc;
}

int ddps_report_run(const ddps_report_opts *o, ddps_err *err) {
    if (!o->store_path || !*o->store_path) return ddps_fail_usage(err, "--store: missing");
    if (!o->out_dir || !*o->out_dir) return ddps_fail_usage(err, "--out: missing");
    if (ddps_report_check(&o->p, err) != 0) return -1;
    if (!ddps_is_file(o->store_path)) return ddps_fail_data(err, "--store %s: no such file", o->store_path);
    report_ctx r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.threads = o->p.threads > 0 ? o->p.threads : omp_get_max_threads();
    int rc = -1, made = 0;
    if (ddps_outdir_claim_report(o->out_dir, &made, err) != 0) return -1;

    /* The distilled set, by select itself. */
    double t0 = ddps_seconds();
    char *dist = ddps_path_join(o->out_dir, "distilled");
    ddps_select_opts so;
    ddps_select_defaults(&so);
    so.store_path = o->store_path;
    so.out_dir = dist;
    so.ipc = &o->p.ipc;
    so.n_ipc = 1;
    so.p.data_root = o->p.data_root;
    so.p.threads = o->p.threads;
    so.p.command = "report";
    r.sel = &so;
    rc = ddps_select_run_plan(&so, &r.plan, err);
    if (rc != 0) rmdir(dist); /* only when empty */
    free(dist);
    if (rc != 0) {
        ddps_outdir_release(o->out_dir, made);
        return -1;
    }
    rc = -1;
    double select_s = ddps_seconds() - t0;

    char *settings = NULL;
    if (ddps_store_open(o->store_path, 1, &r.store, err) != 0) goto done;
    if (ddps_store_get_meta(r.store, "settings", &settings, err) != 0 ||
        ddps_store_get_meta(r.store, "model_id", &r.model_id, err) != 0 ||
        ddps_store_get_meta(r.store, "model_dir", &r.model_dir, err) != 0 ||
        ddps_store_get_meta(r.store, "ddps_version", &r.version, err) != 0 ||
        ddps_store_get_meta(r.store, "created", &r.created, err) != 0 || ddps_store_has_maps(r.store, &r.has_maps, err))
        goto done;
    json_error_t je;
    r.settings = settings ? json_loads(settings, 0, &je) : NULL;
    if (!json_is_object(r.settings)) {
        ddps_fail_data(err, "%s: store is corrupt (its settings are not a JSON object)", o->store_path);
        goto done;
    }
    char *root = NULL;
    if (o->p.data_root) {
        root = ddps_strdup(o->p.data_root);
    } else if (ddps_store_get_meta(r.store, "data_root", &root, err) != 0) {
        goto done;
    }
    if (!root) {
        ddps_fail_data(err, "--data: not given, and %s records no data root", o->store_path);
        goto done;
    }
    r.data_root = realpath(root, NULL);
    if (!r.data_root) {
        ddps_fail_data(err, "%s: data root: %s", root, strerror(errno));
        free(root);
        goto done;
    }
    free(root);
    if (ddps_store_list_classes(r.store, &r.cls, &r.n_cls, err) != 0) goto done;
    /* the plan's classes are the store's, unless a score added one since select listed them */
    int same = r.n_cls == r.plan.n_cls;
    for (int k = 0; k < r.n_cls && same; k++) same = strcmp(r.cls[k].name, r.plan.names[k]) == 0;
    if (!same) {
        ddps_fail_data(err, "%s: classes were added while the report was written; run it again", o->store_path);
        goto done;
    }
    char *css = ddps_path_join(o->out_dir, "style.css");
    int w = ddps_write_file_atomic(css, CSS, strlen(CSS), err);
    free(css);
    if (w != 0) goto done;
    double t1 = ddps_seconds(), c1 = ddps_cpu_seconds();
    for (int k = 0; k < r.n_cls; k++)
        if (write_class(&r, k, err) != 0) goto done;
    r.class_seconds = ddps_seconds() - t1;
    r.class_cpu = ddps_cpu_seconds() - c1;
    if (write_index(&r, select_s, err) != 0) goto done;
    ddps_info("report: %d classes in %s/index.html; distilled set %.2f s, class pages %.2f s (%.3f s per class; "
              "%.3f s CPU per class, %d threads)",
              r.n_cls, o->out_dir, select_s, r.class_seconds, r.n_cls ? r.class_seconds / r.n_cls : 0.0,
              r.n_cls ? r.class_cpu / r.n_cls : 0.0, r.threads);
    rc = 0;
done:
    free(settings);
    json_decref(r.settings);
    ddps_select_plan_free(&r.plan);
    free(r.model_id);
    free(r.model_dir);
    free(r.version);
    free(r.created);
    free(r.data_root);
    ddps_store_free_classes(r.cls, r.n_cls);
    ddps_store_close(r.store);
    if (rc != 0) ddps_outdir_release(o->out_dir, made);
    return rc;
}
