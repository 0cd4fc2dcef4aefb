#include "pipeline/select.h"
#include "pipeline/outdir.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/image.h"
#include "pipeline/class_map.h"
#include "pipeline/cluster.h"
#include "pipeline/params.h"
#include "pipeline/store_guard.h"
#include "util/escape.h"
#include "util/first_err.h"
#include "util/fs.h"
#include "util/utf8.h"
#include "util/progress.h"
#include "util/rng.h"

#define FOLDER_MAX 200

void ddps_select_defaults(ddps_select_opts *o) {
    memset(o, 0, sizeof *o);
    ddps_select_params_defaults(&o->p);
}

/* ---- the selection rule ---- */

/* Sort keys for the two orders of the rule; index breaks every tie. */
typedef struct {
    int rank;
    float key; /* distance (cluster order) or -score (fill order) */
    int index;
} sort_item;

static int cmp_item(const void *a, const void *b) {
    const sort_item *x = a, *y = b;
    if (x->rank != y->rank) return x->rank < y->rank ? -1 : 1;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

int ddps_select_patches(const ddps_class_data *d, int needed, int top_clusters, int *picks, unsigned char *fill) {
    int n = d->n_cand, count = 0;
    if (needed <= 0 || n <= 0) return 0;
    unsigned char *used = ddps_calloc((size_t)n, 1);
    sort_item *it = ddps_malloc((size_t)n * sizeof *it);
    int quota = top_clusters > 0 ? needed / top_clusters : 0; /* 0 clusters: the fill alone */
    if (quota > 0) {
        /* Members of the top clusters, by (rank, distance, index). */
        int m = 0;
        for (int i = 0; i < n; i++) {
            const ddps_stored_cand *c = &d->cand[i];
            if (c->cluster < 0 || c->cluster_rank < 1 || c->cluster_rank > top_clusters) continue;
            it[m++] = (sort_item){c->cluster_rank, c->dist, i};
        }
        qsort(it, (size_t)m, sizeof *it, cmp_item);
        int taken = 0;
        for (int j = 0; j < m && count < needed; j++) {
            if (j > 0 && it[j].rank != it[j - 1].rank) taken = 0;
            if (taken == quota) continue;
            picks[count] = it[j].index;
            fill[count] = 0;
            used[it[j].index] = 1;
            count++;
            taken++;
        }
    }
    if (count < needed) {
        /* Fill: highest Stage-I score first among the unused. */
        int m = 0;
        for (int i = 0; i < n; i++)
            if (!used[i]) it[m++] = (sort_item){0, -d->cand[i].score, i};
        qsort(it, (size_t)m, sizeof *it, cmp_item);
        for (int j = 0; j < m && count < needed; j++) {
            picks[count] = it[j].index;
            fill[count] = 1;
            count++;
        }
    }
    free(used);
    free(it);
    return count;
}

ddps_layout ddps_select_layout(int ipc, int n_picks, int mosaic_mode) {
    ddps_layout l = {0, 0, 1};
    if (ipc <= 0 || n_picks <= 0) return l;
    if (mosaic_mode && n_picks >= 4) {
        l.mosaic = 1;
        l.per_image = 4;
        l.n_images = n_picks / 4 < ipc ? n_picks / 4 : ipc;
    } else {
        /* single-patch images: the normal mode, or too few patches for a mosaic */
        l.n_images = n_picks < ipc ? n_picks : ipc;
    }
    assert(l.n_images * l.per_image <= n_picks && l.n_images <= ipc); /* every patch j of output i exists */
    return l;
}

/* ---- names ---- */

char *ddps_class_folder(const char *name) {
    const unsigned char *p = (const unsigned char *)(name ? name : "");
    char *out = ddps_malloc(FOLDER_MAX + 1);
    size_t o = 0;
    while (*p) {
        int n = ddps_utf8_len(p);
        if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f || *p == '/' || *p == '\\'))) n = -1;
        size_t add = n < 0 ? 1 : (size_t)n;
        if (o + add > FOLDER_MAX) break;
        if (n < 0)
            out[o++] = '_';
        else
            for (int i = 0; i < n; i++) out[o++] = (char)p[i];
        p += add;
    }
    out[o] = 0;
    /* Leading dots: ".", ".." and hidden folders are not class folders. */
    for (size_t i = 0; i < o && out[i] == '.'; i++) out[i] = '_';
    if (o == 0) {
        out[0] = '_';
        out[1] = 0;
    }
    return out;
}

/* Arbitrary bytes in the reversible escaped form of util/escape.h (valid
 * UTF-8; the exact bytes can be recovered). */
static char *utf8_clean(const char *s) { return ddps_escape_bytes(s); }

/* A JSON string from arbitrary bytes (jansson refuses invalid UTF-8). */
static json_t *jstr(const char *s) {
    char *b = utf8_clean(s);
    json_t *j = json_string(b);
    free(b);
    return j ? j : json_string("?");
}

/* ---- run state ---- */

typedef struct {
    const ddps_class_info *info;
    char *folder;
    ddps_class_data data;
} sel_class;

typedef ddps_class_plan class_plan;

typedef struct {
    const ddps_select_opts *o;
    ddps_store *store;
    int writable;
    json_t *settings;
    char *model_id;
    char *data_root;
    int low_res;
    ddps_class_info *all;
    int n_all;
    sel_class *cls;
    int n_cls;
    ddps_run_stats totals;
    double load_s;
    const char *ext;
    ddps_imagenet *inet; /* when every class is a WordNet id */
    int baseline;        /* DDPS_BASELINE_* (pipeline/params.h) */
} run_ctx;

void ddps_crop_box(const ddps_stored_cand *c, int w, int h, int box[4]) {
    long x0 = lround(c->x0), y0 = lround(c->y0), x1 = lround(c->x1), y1 = lround(c->y1);
    if (x0 < 0) x0 = 0;
    if (x0 > w - 1) x0 = w - 1;
    if (y0 < 0) y0 = 0;
    if (y0 > h - 1) y0 = h - 1;
    if (x1 > w) x1 = w;
    if (x1 < x0 + 1) x1 = x0 + 1;
    if (y1 > h) y1 = h;
    if (y1 < y0 + 1) y1 = y0 + 1;
    box[0] = (int)x0;
    box[1] = (int)y0;
    box[2] = (int)x1;
    box[3] = (int)y1;
}

/* Decodes a source image and checks it is the image that was scored. */
static int load_source(const run_ctx *r, const ddps_stored_image *im, ddps_image *img, ddps_err *err) {
    char *path = ddps_path_join(r->data_root, im->relpath);
    int rc = ddps_image_load(path, img, err);
    if (rc == 0 && (img->w != im->width || img->h != im->height)) {
        rc = ddps_fail_data(err, "%s: image is %dx%d but was %dx%d when scored (the data changed; score again)", path,
                       img->w, img->h, im->width, im->height);
        ddps_image_free(img);
    }
    free(path);
    return rc;
}

/* Crops candidate c from its source and resizes it to w x h. */
static int cut_patch(const run_ctx *r, const ddps_class_data *d, int c, int w, int h, ddps_image *out, ddps_err *err) {
    const ddps_stored_cand *k = &d->cand[c];
    const ddps_stored_image *im = &d->images[k->image];
    ddps_image src, crop;
    int box[4];
    if (load_source(r, im, &src, err) != 0) return -1;
    ddps_crop_box(k, src.w, src.h, box);
    int rc = ddps_image_crop(&src, box[0], box[1], box[2] - box[0], box[3] - box[1], &crop, err);
    ddps_image_free(&src);
    if (rc == 0) {
        rc = ddps_image_resize(&crop, w, h, out, err);
        ddps_image_free(&crop);
    }
    if (rc != 0) ddps_fail_prefix(err, "%s", im->relpath);
    return rc;
}

char *ddps_select_output_name(const char *folder, int i, const char *ext) {
    size_t n = strlen(folder) * 2 + 32;
    char *s = ddps_malloc(n);
    snprintf(s, n, "%s/%s_%04d.%s", folder, folder, i, ext);
    return s;
}

static char *output_name(const sel_class *sc, int i, const char *ext) {
    return ddps_select_output_name(sc->folder, i, ext);
}

/* Builds and saves output image i of a class. */
static int write_image(const run_ctx *r, const sel_class *sc, const class_plan *p, int i, const char *dir,
                       ddps_err *err) {
    const ddps_select_opts *o = r->o;
    const ddps_class_data *d = &sc->data;
    char *rel = output_name(sc, i, r->ext);
    char *path = ddps_path_join(dir, rel);
    free(rel);
    ddps_image img = {0, 0, NULL};
    int rc = -1;
    if (r->low_res) {
        if (load_source(r, &d->images[d->cand[p->picks[i]].image], &img, err) != 0) goto done;
    } else if (p->lay.mosaic) {
        int S = o->p.output_size, w0 = S / 2, h0 = S / 2;
        if (ddps_image_alloc(&img, S, S) != 0) {
            ddps_fail_resource(err, "%s: cannot allocate a %dx%d image", path, S, S);
            goto done;
        }
        for (int j = 0; j < 4; j++) {
            /* cells row-major; the right column and bottom row take the odd pixel */
            int cx = j & 1, cy = j >> 1, cw = cx ? S - w0 : w0, ch = cy ? S - h0 : h0;
            ddps_image patch;
            if (cut_patch(r, d, p->picks[i + j * p->lay.n_images], cw, ch, &patch, err) != 0) goto done;
            ddps_image_paste(&img, &patch, cx * w0, cy * h0);
            ddps_image_free(&patch);
        }
    } else {
        if (cut_patch(r, d, p->picks[i], o->p.output_size, o->p.output_size, &img, err) != 0) goto done;
    }
    rc = ddps_image_save(path, &img, o->p.jpeg_quality, err);
done:
    ddps_image_free(&img);
    free(path);
    return rc;
}

/* ---- folders ---- */

/* Puts the finished tmp folder in place of final; the old set, if any, is
 * swapped out atomically (renameat2 RENAME_EXCHANGE) and then deleted. */
static int swap_into_place(const char *tmp, const char *final, const char *old, ddps_err *err) {
    struct stat st;
    if (lstat(final, &st) != 0) {
        if (rename(tmp, final) != 0) return ddps_fail_resource(err, "%s: cannot rename into place: %s", final, strerror(errno));
        return 0;
    }
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_EXCHANGE) == 0) return ddps_remove_tree(tmp, err);
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return ddps_fail_resource(err, "%s: cannot replace: %s", final, strerror(errno));
    /* File systems without exchange: two renames (final is briefly absent, never half-written). */
    if (ddps_remove_tree(old, err) != 0) return -1;
    if (rename(final, old) != 0) return ddps_fail_resource(err, "%s: cannot move aside: %s", final, strerror(errno));
    if (rename(tmp, final) != 0) return ddps_fail_resource(err, "%s: cannot rename into place: %s", final, strerror(errno));
    return ddps_remove_tree(old, err);
}

/* ---- manifests ---- */

/* A quoted CSV field (RFC 4180: quotes doubled; newlines allowed inside). */
static void csv_field(FILE *f, const char *s, int last) {
    char *c = utf8_clean(s);
    fputc('"', f);
    /* Spreadsheets run a cell starting with = + - @ (or tab, CR) as a formula:
     * such a field gets a leading apostrophe (manifest.json keeps the value). */
    if (strchr("=+-@\t\r", c[0]) && c[0]) fputc('\'', f);
    for (const char *q = c; *q; q++) {
        if (*q == '"') fputc('"', f);
        fputc(*q, f);
    }
    fputc('"', f);
    fputc(last ? '\n' : ',', f);
    free(c);
}

static json_t *evals_json(long unet, long vae, long text) {
    return json_pack("{s:I, s:I, s:I}", "unet_latents", (json_int_t)unet, "vae_images", (json_int_t)vae, "text_prompts",
                     (json_int_t)text);
}

typedef struct {
    int ipc;
    class_plan *plans;
    double select_s, write_s;
    long images, patches, fills, short_classes, short_images;
} ipc_result;

/* The box the output really used: the crop box, or the whole image (low-res). */
static void used_box(const run_ctx *r, const ddps_stored_cand *c, const ddps_stored_image *im, int box[4]) {
    ddps_crop_box(c, im->width, im->height, box);
    if (r->low_res) box[0] = box[1] = 0, box[2] = im->width, box[3] = im->height;
}

static json_t *patch_json(const run_ctx *r, const sel_class *sc, const class_plan *p, int pick, int slot) {
    const ddps_stored_cand *c = &sc->data.cand[p->picks[pick]];
    const ddps_stored_image *im = &sc->data.images[c->image];
    int box[4];
    used_box(r, c, im, box);
    json_t *j = json_object();
    json_object_set_new(j, "slot", json_integer(slot));
    json_object_set_new(j, "source", jstr(im->relpath));
    json_object_set_new(j, "box", json_pack("[i, i, i, i]", box[0], box[1], box[2], box[3]));
    json_object_set_new(j, "score", json_real(c->score));
    json_object_set_new(j, "cluster", json_integer(c->cluster));
    json_object_set_new(j, "cluster_rank", json_integer(c->cluster_rank));
    json_object_set_new(j, "dist", json_real(c->dist));
    json_object_set_new(j, "fill", json_boolean(p->fill[pick]));
    return j;
}

static void csv_row(FILE *f, const run_ctx *r, const sel_class *sc, const class_plan *p, int img, int pick, int slot) {
    const ddps_stored_cand *c = &sc->data.cand[p->picks[pick]];
    const ddps_stored_image *im = &sc->data.images[c->image];
    int box[4];
    used_box(r, c, im, box);
    char *file = output_name(sc, img, r->ext);
    csv_field(f, sc->info->name, 0);
    csv_field(f, sc->folder, 0);
    csv_field(f, file, 0);
    fprintf(f, "%d,%d,", img, slot);
    csv_field(f, im->relpath, 0);
    fprintf(f, "%d,%d,%d,%d,%.9g,%d,%d,%.9g,%d\n", box[0], box[1], box[2], box[3], c->score, c->cluster,
            c->cluster_rank, c->dist, p->fill[pick]);
    free(file);
}

/* Mosaics of 2x2 patches for this IPC: not for low-res stores, not for
 * whole random pictures. */
static int mosaic_mode(const run_ctx *r, int ipc) {
    return !r->low_res && r->baseline != DDPS_BASELINE_RANDOM_IMAGES && ipc <= r->o->p.mosaic_max_ipc;
}

const char *ddps_select_mode_name(int low_res, int mosaic) { return low_res ? "low_res" : mosaic ? "mosaic" : "single"; }

static const char *mode_name(const run_ctx *r, int ipc) { return ddps_select_mode_name(r->low_res, mosaic_mode(r, ipc)); }

/* manifest.csv's text: the header, then one row per written patch (class,
 * image, slot order). *csv is heap (free it). */
static int manifest_csv(const run_ctx *r, const ipc_result *res, char **csv, size_t *csv_len, ddps_err *err) {
    *csv = NULL;
    *csv_len = 0;
    FILE *f = open_memstream(csv, csv_len);
    if (!f) return ddps_fail_resource(err, "out of memory");
    fputs("class,folder,file,image_index,slot,source,x0,y0,x1,y1,score,cluster,cluster_rank,dist,fill\n", f);
    for (int k = 0; k < r->n_cls; k++) {
        const class_plan *p = &res->plans[k];
        for (int i = 0; i < p->lay.n_images; i++)
            for (int j = 0; j < p->lay.per_image; j++) csv_row(f, r, &r->cls[k], p, i, i + j * p->lay.n_images, j);
    }
    if (fclose(f) != 0) {
        free(*csv);
        *csv = NULL;
        return ddps_fail_resource(err, "out of memory");
    }
    return 0;
}

/* manifest.json's "images": one object per written image with its patches. */
static json_t *images_json(const run_ctx *r, const ipc_result *res) {
    json_t *images = json_array();
    for (int k = 0; k < r->n_cls; k++) {
        const sel_class *sc = &r->cls[k];
        const class_plan *p = &res->plans[k];
        for (int i = 0; i < p->lay.n_images; i++) {
            json_t *pj = json_array();
            for (int j = 0; j < p->lay.per_image; j++)
                json_array_append_new(pj, patch_json(r, sc, p, i + j * p->lay.n_images, j));
            char *file = output_name(sc, i, r->ext);
            json_t *ij = json_object();
            json_object_set_new(ij, "class", jstr(sc->info->name));
            json_object_set_new(ij, "folder", jstr(sc->folder));
            json_object_set_new(ij, "file", jstr(file));
            json_object_set_new(ij, "patches", pj);
            json_array_append_new(images, ij);
            free(file);
        }
    }
    return images;
}

/* manifest.json's "classes": counts and shortfalls per class. */
static json_t *classes_json(const run_ctx *r, const ipc_result *res) {
    json_t *classes = json_array();
    for (int k = 0; k < r->n_cls; k++) {
        const sel_class *sc = &r->cls[k];
        const class_plan *p = &res->plans[k];
        int written_patches = p->lay.n_images * p->lay.per_image, fills = 0;
        for (int pick = 0; pick < written_patches; pick++) fills += p->fill[pick];
        json_t *cj = json_object();
        json_object_set_new(cj, "name", jstr(sc->info->name));
        json_object_set_new(cj, "folder", jstr(sc->folder));
        json_object_set_new(cj, "images_scored", json_integer(sc->info->n_images));
        json_object_set_new(cj, "images_bad", json_integer(sc->info->n_bad));
        json_object_set_new(cj, "candidates", json_integer(sc->data.n_cand));
        json_object_set_new(cj, "clusters", json_integer(sc->data.n_clusters));
        json_object_set_new(cj, "needed_patches", json_integer(p->needed));
        json_object_set_new(cj, "selected_patches", json_integer(written_patches));
        json_object_set_new(cj, "fill_patches", json_integer(fills));
        json_object_set_new(cj, "needed_images", json_integer(res->ipc));
        json_object_set_new(cj, "written_images", json_integer(p->lay.n_images));
        json_object_set_new(cj, "shortfall_images", json_integer(res->ipc - p->lay.n_images));
        json_object_set_new(cj, "shortfall_patches", json_integer(p->needed - p->n_picks));
        json_array_append_new(classes, cj);
    }
    return classes;
}

/* manifest.json's text (indented, with a trailing newline); heap or NULL
 * when out of memory. */
static char *manifest_json(const run_ctx *r, const ipc_result *res) {
    const ddps_select_opts *o = r->o;
    json_t *root = json_object();
    json_object_set_new(root, "ddps_version", json_string(DDPS_VERSION));
    json_object_set_new(root, "command", jstr(o->p.command ? o->p.command : "select"));
    json_object_set_new(root, "ipc", json_integer(res->ipc));
    json_object_set_new(root, "mode", json_string(mode_name(r, res->ipc)));
    json_object_set_new(root, "output_size", json_integer(o->p.output_size));
    json_object_set_new(root, "format", json_string(r->ext));
    if (strcmp(r->ext, "jpg") == 0) json_object_set_new(root, "jpeg_quality", json_integer(o->p.jpeg_quality));
    json_object_set_new(root, "top_clusters", json_integer(o->p.top_clusters));
    json_object_set_new(root, "baseline", json_string(o->p.baseline ? o->p.baseline : "ddps"));
    if (r->baseline != DDPS_BASELINE_NONE) json_object_set_new(root, "seed", json_integer((json_int_t)o->p.seed));
    json_object_set_new(root, "mosaic_max_ipc", json_integer(o->p.mosaic_max_ipc));
    json_object_set_new(root, "store", jstr(o->store_path));
    json_object_set_new(root, "data_root", jstr(r->data_root));
    json_object_set_new(root, "model_id", r->model_id ? jstr(r->model_id) : json_null());
    json_object_set(root, "settings", r->settings);
    json_object_set_new(root, "counts",
                        json_pack("{s:i, s:I, s:I, s:I, s:I, s:I}", "classes", r->n_cls, "images",
                                  (json_int_t)res->images, "patches", (json_int_t)res->patches, "fill_patches",
                                  (json_int_t)res->fills, "classes_short", (json_int_t)res->short_classes,
                                  "shortfall_images", (json_int_t)res->short_images));
    json_object_set_new(root, "timings",
                        json_pack("{s:f, s:f, s:f}", "load_seconds", r->load_s, "selection_seconds", res->select_s,
                                  "writing_seconds", res->write_s));
    json_t *ev = json_object();
    json_object_set_new(ev, "select", evals_json(0, 0, 0));
    json_t *tot = evals_json(r->totals.unet_latents, r->totals.vae_images, r->totals.text_prompts);
    json_object_set_new(tot, "images_scored", json_integer(r->totals.images_scored));
    json_object_set_new(tot, "images_bad", json_integer(r->totals.images_bad));
    json_object_set_new(tot, "seconds", json_real(r->totals.seconds));
    json_object_set_new(ev, "store_totals", tot);
    json_object_set_new(root, "model_evaluations", ev);
    json_object_set_new(root, "classes", classes_json(r, res));
    json_object_set_new(root, "images", images_json(r, res));
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_REAL_PRECISION(9));
    json_decref(root);
    if (!text) return NULL;
    /* trailing newline for tools that expect one */
    size_t tl = strlen(text);
    char *t2 = ddps_malloc(tl + 2);
    memcpy(t2, text, tl);
    t2[tl] = '\n';
    t2[tl + 1] = 0;
    free(text);
    return t2;
}

/* Writes dir/manifest.csv, then dir/manifest.json. */
static int write_manifests(const run_ctx *r, const ipc_result *res, const char *dir, ddps_err *err) {
    char *csv;
    size_t csv_len;
    if (manifest_csv(r, res, &csv, &csv_len, err) != 0) return -1;
    char *text = manifest_json(r, res);
    int rc = -1;
    if (!text) {
        ddps_fail_resource(err, "out of memory");
    } else {
        char *pj = ddps_path_join(dir, "manifest.json"), *pc = ddps_path_join(dir, "manifest.csv");
        rc = ddps_write_file_atomic(pc, csv, csv_len, err);
        if (rc == 0) rc = ddps_write_file_atomic(pj, text, strlen(text), err);
        free(pj);
        free(pc);
    }
    free(text);
    free(csv);
    return rc;
}

/* ---- one IPC ---- */

typedef struct {
    int cls, index;
} job;

static void free_plans(class_plan *p, int n) {
    for (int i = 0; p && i < n; i++) {
        free(p[i].picks);
        free(p[i].fill);
    }
    free(p);
}

/* The IPC's selection, per class (select's rule and layout): plans and
 * counts into res; warns about classes short of candidates. */
static void plan_ipc(const run_ctx *r, int ipc, int mosaic, ipc_result *res) {
    const ddps_select_opts *o = r->o;
    long needed = mosaic ? 4L * ipc : ipc;
    res->plans = ddps_calloc((size_t)r->n_cls, sizeof *res->plans);
    for (int k = 0; k < r->n_cls; k++) {
        class_plan *p = &res->plans[k];
        const ddps_class_data *d = &r->cls[k].data;
        p->needed = (int)needed;
        int room = d->n_cand < p->needed ? d->n_cand : p->needed;
        p->picks = ddps_malloc((size_t)(room ? room : 1) * sizeof *p->picks);
        p->fill = ddps_malloc((size_t)(room ? room : 1));
        if (r->baseline == DDPS_BASELINE_NONE) {
            p->n_picks = ddps_select_patches(d, p->needed, o->p.top_clusters, p->picks, p->fill);
        } else { /* the baseline's candidates are already in random order (make_baseline) */
            p->n_picks = room;
            for (int i = 0; i < room; i++) p->picks[i] = i, p->fill[i] = 0;
        }
        p->lay = ddps_select_layout(ipc, p->n_picks, mosaic);
        res->images += p->lay.n_images;
        res->patches += (long)p->lay.n_images * p->lay.per_image;
        for (int i = 0; i < p->lay.n_images * p->lay.per_image; i++) res->fills += p->fill[i];
        if (p->n_picks < p->needed) {
            res->short_classes++;
            res->short_images += ipc - p->lay.n_images;
            ddps_warn("ipc %d: class %s has %d candidates for %d patches: writing %d of %d images%s", ipc,
                      r->cls[k].folder, d->n_cand, p->needed, p->lay.n_images, ipc,
                      mosaic && p->n_picks > 0 && p->n_picks < 4 ? " (single patches, too few for a mosaic)" : "");
        }
    }
}

/* The class folders under tmp (only classes with images: ImageFolder
 * refuses empty ones) and every output image, written in parallel; the
 * first failure (in image order) is returned. */
static int write_images(const run_ctx *r, const ipc_result *res, const char *tmp, ddps_err *err) {
    job *jobs = ddps_malloc((size_t)(res->images ? res->images : 1) * sizeof *jobs);
    long nj = 0;
    for (int k = 0; k < r->n_cls; k++) {
        if (res->plans[k].lay.n_images == 0) continue;
        char *cd = ddps_path_join(tmp, r->cls[k].folder);
        int mk = mkdir(cd, 0755);
        if (mk != 0) ddps_fail_resource(err, "%s: cannot create folder: %s", cd, strerror(errno));
        free(cd);
        if (mk != 0) {
            free(jobs);
            return -1;
        }
        for (int i = 0; i < res->plans[k].lay.n_images; i++) jobs[nj++] = (job){k, i};
    }
    int threads = r->o->p.threads > 0 ? r->o->p.threads : omp_get_max_threads();
    ddps_first_err fe;
    ddps_first_err_init(&fe);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (long j = 0; j < nj; j++) {
        if (ddps_first_err_stopped(&fe)) continue;
        ddps_err e;
        if (write_image(r, &r->cls[jobs[j].cls], &res->plans[jobs[j].cls], jobs[j].index, tmp, &e) != 0)
            ddps_first_err_set(&fe, j, &e);
    }
    free(jobs);
    return ddps_first_err_take(&fe, err);
}

/* Label mappings for WordNet-id classes (class_map.h), for the classes
 * that got images. */
static int write_class_maps(const run_ctx *r, const ipc_result *res, const char *tmp, ddps_err *err) {
    const char **fo = ddps_malloc((size_t)r->n_cls * 3 * sizeof *fo);
    int nw = 0;
    for (int k = 0; k < r->n_cls; k++)
        if (res->plans[k].lay.n_images > 0) {
            fo[nw] = r->cls[k].folder, fo[r->n_cls + nw] = r->cls[k].info->name;
            fo[2 * r->n_cls + nw++] = r->cls[k].info->prompt_name;
        }
    int mrc = ddps_class_map_write(tmp, nw, fo, fo + r->n_cls, fo + 2 * r->n_cls, r->inet, err);
    free(fo);
    return mrc;
}

/* OUT/ipc<ipc>/: selection, then writing into a hidden temporary folder
 * that is swapped in when complete (a failed run leaves the old one). */
static int write_ipc(run_ctx *r, int ipc, ddps_select_plan *keep, ddps_err *err) {
    const ddps_select_opts *o = r->o;
    ipc_result res = {.ipc = ipc};
    double t0 = ddps_seconds();
    plan_ipc(r, ipc, mosaic_mode(r, ipc), &res);
    res.select_s = ddps_seconds() - t0;

    double t1 = ddps_seconds();
    char name[64];
    snprintf(name, sizeof name, "ipc%d", ipc);
    char *final = ddps_path_join(o->out_dir, name);
    snprintf(name, sizeof name, ".ipc%d.tmp-%ld", ipc, (long)getpid());
    char *tmp = ddps_path_join(o->out_dir, name);
    snprintf(name, sizeof name, ".ipc%d.old-%ld", ipc, (long)getpid());
    char *old = ddps_path_join(o->out_dir, name);
    int rc = -1;
    if (ddps_remove_tree(tmp, err) != 0) goto done;
    if (mkdir(tmp, 0755) != 0) {
        ddps_fail_resource(err, "%s: cannot create folder: %s", tmp, strerror(errno));
        goto done;
    }
    if (write_images(r, &res, tmp, err) != 0) goto cleanup;
    res.write_s = ddps_seconds() - t1;
    if (write_manifests(r, &res, tmp, err) != 0) goto cleanup;
    if (r->inet && write_class_maps(r, &res, tmp, err) != 0) goto cleanup;
    ddps_fsync_dir(tmp);
    if (swap_into_place(tmp, final, old, err) != 0) goto cleanup;
    ddps_fsync_dir(o->out_dir);
    res.write_s = ddps_seconds() - t1;
    ddps_info("ipc %d: %ld images, %ld patches (%ld fill) for %d classes in %s; load %.3f s, selection %.3f s, "
              "writing %.3f s",
              ipc, res.images, res.patches, res.fills, r->n_cls, final, r->load_s, res.select_s, res.write_s);
    rc = 0;
    goto done;
cleanup:
    ddps_remove_tree(tmp, NULL); /* best effort: the error already reported matters more */
done:
    free(final);
    free(tmp);
    free(old);
    if (rc == 0 && keep) { /* the plan and the data it points into go to the caller */
        keep->ipc = ipc, keep->low_res = r->low_res, keep->mosaic = mosaic_mode(r, ipc), keep->n_cls = r->n_cls;
        keep->names = ddps_calloc((size_t)r->n_cls + 1, sizeof *keep->names);
        keep->folders = ddps_calloc((size_t)r->n_cls + 1, sizeof *keep->folders);
        keep->data = ddps_calloc((size_t)r->n_cls + 1, sizeof *keep->data);
        for (int k = 0; k < r->n_cls; k++) {
            keep->names[k] = ddps_strdup(r->cls[k].info->name);
            keep->folders[k] = r->cls[k].folder, r->cls[k].folder = NULL;
            keep->data[k] = r->cls[k].data;
            memset(&r->cls[k].data, 0, sizeof r->cls[k].data);
        }
        keep->plans = res.plans, res.plans = NULL;
    }
    free_plans(res.plans, r->n_cls);
    return rc;
}

void ddps_select_plan_free(ddps_select_plan *p) {
    if (!p) return;
    for (int k = 0; k < p->n_cls; k++) {
        free(p->names[k]);
        free(p->folders[k]);
        ddps_class_data_free(&p->data[k]);
    }
    free(p->names);
    free(p->folders);
    free(p->data);
    free_plans(p->plans, p->n_cls);
    memset(p, 0, sizeof *p);
}

/* ---- the run ---- */

static int check_opts(const ddps_select_opts *o, const char **ext, ddps_err *err) {
    if (!o->store_path || !*o->store_path) return ddps_fail_usage(err, "--store: missing");
    if (!o->out_dir || !*o->out_dir) return ddps_fail_usage(err, "--out: missing");
    if (ddps_select_check(&o->p, o->ipc, o->n_ipc, err) != 0) return -1;
    *ext = ddps_format_ext(o->p.format);
    return 0;
}

/* Meta values: settings (required), model identity, data root. */
static int read_meta(run_ctx *r, ddps_err *err) {
    const ddps_select_opts *o = r->o;
    char *settings = NULL, *root = NULL;
    if (ddps_store_get_meta(r->store, "settings", &settings, err) != 0) return -1;
    if (!settings)
        return ddps_fail_data(err, "%s: no scoring settings recorded (nothing was scored into it)", o->store_path);
    json_error_t je;
    r->settings = json_loads(settings, 0, &je);
    free(settings);
    if (!r->settings || !json_is_object(r->settings))
        return ddps_fail_data(err, "%s: store is corrupt (its settings are not a JSON object)", o->store_path);
    r->low_res = json_is_true(json_object_get(r->settings, "low_res"));
    if (ddps_store_get_meta(r->store, "model_id", &r->model_id, err) != 0) return -1;
    if (o->p.data_root) {
        r->data_root = ddps_strdup(o->p.data_root);
        if (!ddps_is_dir(r->data_root)) return ddps_fail_data(err, "--data %s: not a folder", r->data_root);
    } else {
        if (ddps_store_get_meta(r->store, "data_root", &root, err) != 0) return -1;
        if (!root) return ddps_fail_data(err, "--data: not given, and %s records no data root", o->store_path);
        r->data_root = root;
        if (!ddps_is_dir(r->data_root))
            return ddps_fail_data(err, "%s: data root %s (recorded in the store) is not a folder; give --data",
                             o->store_path, r->data_root);
    }
    return 0;
}

/* The classes to write (all, or the subset in o->p.classes), in name order,
 * with unique safe folder names. */
static int pick_classes(run_ctx *r, ddps_err *err) {
    const ddps_select_opts *o = r->o;
    if (ddps_store_list_classes(r->store, &r->all, &r->n_all, err) != 0) return -1;
    unsigned char *want = ddps_calloc((size_t)(r->n_all ? r->n_all : 1), 1);
    if (o->p.n_classes > 0 && o->p.classes) {
        for (int i = 0; i < o->p.n_classes; i++) {
            int found = 0;
            for (int k = 0; k < r->n_all && !found; k++)
                if (strcmp(r->all[k].name, o->p.classes[i]) == 0) want[k] = 1, found = 1;
            if (!found) {
                free(want);
                return ddps_fail_usage(err, "--classes: no class '%s' in %s", o->p.classes[i], o->store_path);
            }
        }
    } else {
        memset(want, 1, (size_t)r->n_all);
    }
    const char *fn = o->p.folder_names ? o->p.folder_names : "class";
    int index_names = strcmp(fn, "index") == 0, all_wnid = 1;
    if (!index_names && strcmp(fn, "class") != 0) {
        free(want);
        return ddps_fail_usage(err, "--folder-names %s: must be class or index", fn);
    }
    for (int k = 0; k < r->n_all; k++) all_wnid &= !want[k] || ddps_is_wnid(r->all[k].name);
    if ((all_wnid || index_names) && ddps_imagenet_load(NULL, &r->inet, err) != 0) {
        free(want);
        return -1;
    }
    r->cls = ddps_calloc((size_t)(r->n_all ? r->n_all : 1), sizeof *r->cls);
    for (int k = 0; k < r->n_all; k++) {
        if (!want[k]) continue;
        sel_class *sc = &r->cls[r->n_cls++];
        sc->info = &r->all[k];
        char idx[16];
        if (index_names && ddps_index_folder(r->inet, sc->info->name, idx, err) != 0) {
            free(want);
            return -1;
        }
        char *base = index_names ? ddps_strdup(idx) : ddps_class_folder(sc->info->name);
        sc->folder = ddps_strdup(base);
        for (int suffix = 2;; suffix++) {
            int clash = 0;
            for (int j = 0; j < r->n_cls - 1 && !clash; j++) clash = strcmp(r->cls[j].folder, sc->folder) == 0;
            if (!clash) break;
            free(sc->folder);
            size_t n = strlen(base) + 16;
            sc->folder = ddps_malloc(n);
            snprintf(sc->folder, n, "%s_%d", base, suffix);
        }
        free(base);
    }
    free(want);
    if (r->n_cls == 0) return ddps_fail_data(err, "%s: no classes in the store", o->store_path);
    return 0;
}

/* One warning line when the store's scoring is not finished: a score
 * holds its writer lock now, or the last one stopped before the end
 * (score_complete is "0"; stores older than that record say nothing). */
static void warn_unfinished(ddps_store *st, const char *path) {
    char *done = NULL, *todo = NULL;
    ddps_err e;
    int writing = ddps_store_writer_active(path);
    if (ddps_store_get_meta(st, "score_complete", &done, &e) == 0 && (writing || (done && strcmp(done, "1") != 0))) {
        if (ddps_store_get_meta(st, "score_todo", &todo, &e) != 0) todo = NULL;
        ddps_warn("%s: unfinished store: %s (when it started, %s were to go); using what is stored so far: rerun the "
                  "same ddps score to finish",
                  path, writing ? "a ddps score is writing to it now" : "its last ddps score stopped before the end",
                  todo ? todo : "some images");
    }
    free(done);
    free(todo);
}

/* A loaded class without a current clustering, clustered in memory as
 * score would cluster it (the store's "clusters" and "seed" settings, the
 * class's seed derived as score derives it); nothing is written. */
static int cluster_in_memory(const run_ctx *r, sel_class *sc, ddps_err *err) {
    const ddps_select_opts *o = r->o;
    json_t *jk = json_object_get(r->settings, "clusters"), *js = json_object_get(r->settings, "seed");
    if (!json_is_integer(jk) || json_integer_value(jk) < 1 || json_integer_value(jk) > DDPS_MAX_CLUSTERS ||
        !json_is_integer(js))
        return ddps_fail_data(err, "%s: class %s needs clustering but the store records no valid clusters/seed setting",
                              o->store_path, sc->folder);
    int k = (int)json_integer_value(jk);
    uint64_t seed = ddps_class_cluster_seed((uint64_t)json_integer_value(js), sc->info->name);
    ddps_info("class %s: clustering %ld candidates in memory (k = %d; the store is left as it is)", sc->folder,
              sc->info->n_cand, k);
    ddps_clustering c;
    int rc = ddps_store_cluster_compute(r->store, sc->info->id, k, seed, &c, err);
    if (rc == 0) rc = ddps_class_apply_clustering(&sc->data, &c, err);
    ddps_clustering_free(&c);
    return rc;
}

/* Loads every chosen class (no features), clustering in memory those the
 * selection needs clustered and the store has not. */
static int load_classes(run_ctx *r, ddps_err *err) {
    double t0 = ddps_seconds();
    for (int k = 0; k < r->n_cls; k++) {
        sel_class *sc = &r->cls[k];
        if (ddps_store_load_class(r->store, sc->info->id, 0, &sc->data, err) != 0) return -1;
        int needs = !sc->info->clustered && r->baseline == DDPS_BASELINE_NONE && r->o->p.top_clusters > 0;
        if (needs && cluster_in_memory(r, sc, err) != 0) return -1;
    }
    r->load_s = ddps_seconds() - t0;
    return 0;
}

/* ---- baselines: the comparison rows of the paper's tables ---- */

/* The largest number of patches any IPC of the run needs. */
static int most_needed(const run_ctx *r) {
    int m = 0;
    for (int i = 0; i < r->o->n_ipc; i++) {
        int n = mosaic_mode(r, r->o->ipc[i]) ? 4 * r->o->ipc[i] : r->o->ipc[i];
        if (n > m) m = n;
    }
    return m;
}

/* A random order of n indices. */
static void shuffle(ddps_rng *g, int *a, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)ddps_rng_below(g, (uint64_t)i + 1), t = a[i];
        a[i] = a[j], a[j] = t;
    }
}

/* Replaces a class's candidates (and clusters) by the baseline's, in the
 * order they are to be taken: random windows (the size of the picture's
 * best scored window, at a uniform whole-pixel position, pictures in a
 * random order that is drawn again after each pass) or
 * whole pictures (their centre square, each picture at most once). Pictures
 * without candidates (too small to score) give no random window. */
static void make_baseline(const run_ctx *r, sel_class *sc, int needed) {
    ddps_class_data *d = &sc->data;
    ddps_rng g;
    ddps_rng_seed(&g, ddps_class_cluster_seed(r->o->p.seed, sc->info->name));
    int *first = ddps_malloc((size_t)(d->n_images ? d->n_images : 1) * sizeof *first);
    int *order = ddps_malloc((size_t)(d->n_images ? d->n_images : 1) * sizeof *order), n_img = 0;
    for (int i = 0; i < d->n_images; i++) first[i] = -1;
    for (int c = d->n_cand - 1; c >= 0; c--) first[d->cand[c].image] = c; /* the picture's best window */
    for (int i = 0; i < d->n_images; i++)
        if (r->baseline == DDPS_BASELINE_RANDOM_IMAGES || first[i] >= 0) order[n_img++] = i;
    int n = r->baseline == DDPS_BASELINE_RANDOM_IMAGES ? (needed < n_img ? needed : n_img) : n_img ? needed : 0;
    ddps_stored_cand *out = ddps_calloc((size_t)(n ? n : 1), sizeof *out);
    for (int j = 0; j < n; j++) {
        if (j % n_img == 0) shuffle(&g, order, n_img);
        const ddps_stored_image *im = &d->images[order[j % n_img]];
        ddps_stored_cand *k = &out[j];
        k->image = order[j % n_img], k->idx = j, k->cluster = -1;
        if (r->baseline == DDPS_BASELINE_RANDOM_IMAGES) {
            int side = im->width < im->height ? im->width : im->height;
            k->x0 = (im->width - side) / 2, k->y0 = (im->height - side) / 2;
            k->x1 = k->x0 + side, k->y1 = k->y0 + side;
        } else { /* in original pixels: the window's size as scored, any whole-pixel position */
            int box[4];
            ddps_crop_box(&d->cand[first[k->image]], im->width, im->height, box);
            const int ww = box[2] - box[0], wh = box[3] - box[1];
            k->x0 = (double)ddps_rng_below(&g, (uint64_t)(im->width - ww) + 1);
            k->y0 = (double)ddps_rng_below(&g, (uint64_t)(im->height - wh) + 1);
            k->x1 = k->x0 + ww, k->y1 = k->y0 + wh;
        }
        const double sx = (double)im->rw / im->width, sy = (double)im->rh / im->height; /* the box when resized */
        k->rx = (int)lround(k->x0 * sx), k->ry = (int)lround(k->y0 * sy);
        k->rw = (int)lround((k->x1 - k->x0) * sx), k->rh = (int)lround((k->y1 - k->y0) * sy);
    }
    free(first);
    free(order);
    free(d->cand);
    free(d->cand_ids);
    free(d->clusters);
    d->cand = out, d->cand_ids = NULL, d->n_cand = n, d->clusters = NULL, d->n_clusters = 0;
}

int ddps_select_run(const ddps_select_opts *o, ddps_err *err) { return ddps_select_run_plan(o, NULL, err); }

int ddps_select_run_plan(const ddps_select_opts *o, ddps_select_plan *plan, ddps_err *err) {
    if (plan) memset(plan, 0, sizeof *plan);
    assert(!plan || o->n_ipc == 1);
    double t_start = ddps_seconds();
    run_ctx r;
    memset(&r, 0, sizeof r);
    r.o = o;
    if (check_opts(o, &r.ext, err) != 0) return -1;
    if (!ddps_is_file(o->store_path)) return ddps_fail_data(err, "--store %s: no such file", o->store_path);
    r.writable = access(o->store_path, W_OK) == 0;
    int rc = -1;
    if (ddps_store_open(o->store_path, !r.writable, &r.store, err) != 0) {
        /* a writable file in a folder that is not (no -shm, no -wal): read it read-only */
        ddps_err e2;
        if (!r.writable || ddps_store_open(o->store_path, 1, &r.store, &e2) != 0) goto done;
        r.writable = 0;
    }
    if (read_meta(&r, err) != 0) goto done;
    warn_unfinished(r.store, o->store_path);
    r.baseline = ddps_select_baseline_kind(o->p.baseline);
    assert(r.baseline >= 0); /* check_opts refused other names */
    if (r.baseline == DDPS_BASELINE_RANDOM_WINDOWS && r.low_res) {
        ddps_fail_data(err, "%s: --baseline random-windows needs a store scored with crops (this one is low-res: "
                            "every output is a whole picture)", o->store_path);
        goto done;
    }
    if (pick_classes(&r, err) != 0 || load_classes(&r, err) != 0) goto done;
    for (int k = 0; k < r.n_cls && r.baseline != DDPS_BASELINE_NONE; k++) make_baseline(&r, &r.cls[k], most_needed(&r));
    if (ddps_store_totals(r.store, &r.totals, err) != 0) goto done;
    if (ddps_mkdirs(o->out_dir, err) != 0) goto done;
    /* Before writing anything: leftovers of killed runs go, folders ddps did not write are refused (outdir.h). */
    ddps_outdir_clean_stale(o->out_dir);
    for (int i = 0; i < o->n_ipc; i++) {
        char name[32], *final;
        snprintf(name, sizeof name, "ipc%d", o->ipc[i]);
        final = ddps_path_join(o->out_dir, name);
        int bad = ddps_outdir_may_replace(final, o->ipc[i], err);
        free(final);
        if (bad) goto done;
    }
    /* Each distinct IPC once, in the order given. */
    for (int i = 0; i < o->n_ipc; i++) {
        int dup = 0;
        for (int j = 0; j < i; j++) dup |= o->ipc[j] == o->ipc[i];
        if (!dup && write_ipc(&r, o->ipc[i], plan, err) != 0) goto done;
    }
    if (r.writable && (!o->p.command || strcmp(o->p.command, "select") == 0)) {
        ddps_run_stats st = {"select", ddps_seconds() - t_start, 0, 0, 0, 0, 0};
        if (ddps_store_add_run(r.store, &st, err) != 0) goto done;
    }
    rc = 0;
done:
    if (rc != 0) ddps_select_plan_free(plan);
    for (int k = 0; k < r.n_cls; k++) {
        free(r.cls[k].folder);
        ddps_class_data_free(&r.cls[k].data);
    }
    free(r.cls);
    ddps_store_free_classes(r.all, r.n_all);
    ddps_imagenet_free(r.inet);
    json_decref(r.settings);
    free(r.model_id);
    free(r.data_root);
    ddps_store_close(r.store);
    return rc;
}
