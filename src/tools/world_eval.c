/* `ddps world-eval`: the method measured against the toy world's truth.
 * Reads a store scored on a world split (ddps score --data DIR/test ...) and
 * the world's boxes.json, and measures, per class and overall:
 *   - pointing game: the maximum of the Stage-I map D (upsampled from the
 *     stored latent map exactly as the pipeline does) lies inside the
 *     object's box; chance: the box's share of the image (where a random
 *     point lands inside);
 *   - best window: its IoU with the box, against the mean IoU of a window of
 *     the same size at every position in the image;
 *   - clusters: k-means on the stored DIFT features with k = the class's
 *     number of variants (ddps_cluster_features): adjusted Rand index and
 *     purity against the variants, and the same for the store's own clusters,
 *     each against a random assignment with the same cluster sizes;
 *   - selection: for each IPC, the share of the patches `ddps select` picks
 *     (ddps_db_select) that contain the whole object, against the top-scoring
 *     candidates alone (the paper's "w/o Cluster" row) and random windows
 *     of the same size.
 * Only the public store API is used: what this measures is what a user gets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pipeline/report.h"
#include "pipeline/params.h"
#include "tools/tools.h"
#include "tools/world.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/rng.h"

/* One image's truth. */
typedef struct {
    int variant;
    double box[4];
} truth;

/* Sums over images or candidates: hits and totals. */
typedef struct {
    double n_img, point_hit, point_chance, iou, iou_random;
    double ari, ari_random, purity, purity_random, ari_store, ari_store_random, n_cluster_classes;
    double sel[DDPS_WORLD_EVAL_MAX_IPC], sel_top[DDPS_WORLD_EVAL_MAX_IPC], sel_random[DDPS_WORLD_EVAL_MAX_IPC];
    double n_sel[DDPS_WORLD_EVAL_MAX_IPC];
} sums;

/* ---- the truth: boxes.json entries of one store class ---- */

/* Looks up split/relpath in boxes; fills t. -1 with err when absent or malformed. */
static int find_truth(json_t *boxes, const char *split, const char *relpath, int cls, truth *t, ddps_err *err) {
    char key[1024];
    snprintf(key, sizeof key, "%s%s%s", split, *split ? "/" : "", relpath);
    json_t *e = json_object_get(boxes, key);
    if (!json_is_object(e)) return ddps_fail_kind(err, DDPS_KIND_DATA, "boxes.json: no entry \"%s\"", key);
    json_t *b = json_object_get(e, "box"), *v = json_object_get(e, "variant");
    if (!json_is_array(b) || json_array_size(b) != 4 || !json_is_string(v))
        return ddps_fail_kind(err, DDPS_KIND_DATA, "boxes.json: \"%s\": expected \"box\" [x0, y0, x1, y1] and "
                              "\"variant\"", key);
    for (int k = 0; k < 4; k++) {
        json_t *x = json_array_get(b, (size_t)k);
        if (!json_is_number(x)) return ddps_fail_kind(err, DDPS_KIND_DATA, "boxes.json: \"%s\": box not numeric", key);
        t->box[k] = json_number_value(x);
    }
    if (!(t->box[0] < t->box[2] && t->box[1] < t->box[3]))
        return ddps_fail_kind(err, DDPS_KIND_DATA, "boxes.json: \"%s\": empty box", key);
    t->variant = 0;
    for (int k = 0; k < ddps_world_variants(cls); k++)
        if (strcmp(json_string_value(v), ddps_world_variant(cls, k)) == 0) t->variant = k;
    return 0;
}

/* ---- geometry ---- */

static double iou(const double a[4], const double b[4]) {
    const double ix = fmax(0, fmin(a[2], b[2]) - fmax(a[0], b[0])), iy = fmax(0, fmin(a[3], b[3]) - fmax(a[1], b[1]));
    const double in = ix * iy, un = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - in;
    return un > 0 ? in / un : 0;
}

static int contains(const double w[4], const double b[4]) {
    return w[0] <= b[0] + 1e-9 && w[1] <= b[1] + 1e-9 && w[2] >= b[2] - 1e-9 && w[3] >= b[3] - 1e-9;
}

/* Over every integer position of a cw x ch window in the rw x rh resized
   image (scaled by sx, sy to file pixels): mean IoU with box, and the share
   of positions that contain it. */
static void random_windows(int rw, int rh, int cw, int ch, double sx, double sy, const double box[4], double *m_iou,
                           double *m_contain) {
    double s_iou = 0, s_in = 0, n = 0;
    for (int y = 0; y + ch <= rh; y++)
        for (int x = 0; x + cw <= rw; x++) {
            const double w[4] = {x * sx, y * sy, (x + cw) * sx, (y + ch) * sy};
            s_iou += iou(w, box);
            s_in += contains(w, box);
            n++;
        }
    *m_iou = n > 0 ? s_iou / n : 0;
    *m_contain = n > 0 ? s_in / n : 0;
}

/* The file-pixel point where D (the bilinear upsampling of the map to
   rw x rh) is largest. */
static void map_argmax(const ddps_db_image *im, double *px, double *py) {
    double best = -INFINITY;
    int bx = 0, by = 0;
    for (int y = 0; y < im->rh; y++)
        for (int x = 0; x < im->rw; x++) {
            const double mx = (x + 0.5) * im->map_w / im->rw - 0.5, my = (y + 0.5) * im->map_h / im->rh - 0.5;
            const double v = ddps_map_sample(im->map, im->map_h, im->map_w, mx, my);
            if (v > best) best = v, bx = x, by = y;
        }
    *px = (bx + 0.5) * im->width / im->rw;
    *py = (by + 0.5) * im->height / im->rh;
}

/* ---- clusters ---- */

/* Adjusted Rand index of two labelings of n items, from pair counts:
   agreements of "same cluster" and "same label" over all pairs. */
static double ari(const int *a, const int *b, int n) {
    double both = 0, sa = 0, sb = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            const int x = a[i] == a[j], y = b[i] == b[j];
            both += x && y, sa += x, sb += y;
        }
    const double pairs = n * (n - 1) / 2.0, expect = pairs > 0 ? sa * sb / pairs : 0, max = (sa + sb) / 2;
    return max - expect != 0 ? (both - expect) / (max - expect) : 0;
}

/* Share of items whose cluster's most common label (0..DDPS_WORLD_MAX_VARIANTS-1) is their own. */
static double purity(const int *cluster, const int *label, int n) {
    int hits = 0;
    unsigned char *done = ddps_calloc((size_t)(n ? n : 1), 1);
    for (int i = 0; i < n; i++) {
        if (done[i]) continue;
        int cnt[DDPS_WORLD_MAX_VARIANTS] = {0}, best = 0;
        for (int j = i; j < n; j++)
            if (cluster[j] == cluster[i]) {
                done[j] = 1;
                if (label[j] >= 0 && label[j] < DDPS_WORLD_MAX_VARIANTS) cnt[label[j]]++;
            }
        for (int k = 0; k < DDPS_WORLD_MAX_VARIANTS; k++)
            if (cnt[k] > best) best = cnt[k];
        hits += best;
    }
    free(done);
    return n > 0 ? (double)hits / n : 0;
}

/* ARI and purity of assign against label, and their means over 20 random
   permutations of assign (same cluster sizes). */
static void cluster_scores(const int *assign, const int *label, int n, uint64_t seed, double *a, double *ar, double *p,
                           double *pr) {
    *a = ari(assign, label, n);
    *p = purity(assign, label, n);
    int *perm = ddps_malloc((size_t)(n ? n : 1) * sizeof *perm);
    ddps_rng g;
    ddps_rng_seed(&g, seed);
    double sa = 0, sp = 0;
    for (int r = 0; r < 20; r++) {
        memcpy(perm, assign, (size_t)n * sizeof *perm);
        for (int i = n - 1; i > 0; i--) {
            const int j = (int)ddps_rng_below(&g, (uint64_t)i + 1), t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
        sa += ari(perm, label, n), sp += purity(perm, label, n);
    }
    *ar = sa / 20, *pr = sp / 20;
    free(perm);
}

/* ---- one class ---- */

typedef struct {
    const ddps_world_eval_params *p;
    json_t *boxes;
    const char *split;
    int cls; /* world class index */
} eval_ctx;

static int eval_images(const ddps_db_class_data *d, const truth *tr, sums *s) {
    for (int i = 0; i < d->n_images; i++) {
        const ddps_db_image *im = &d->images[i];
        const double area = (double)im->width * im->height;
        s->point_chance += (tr[i].box[2] - tr[i].box[0]) * (tr[i].box[3] - tr[i].box[1]) / area;
        if (im->map) {
            double px, py;
            map_argmax(im, &px, &py);
            s->point_hit += px >= tr[i].box[0] && px < tr[i].box[2] && py >= tr[i].box[1] && py < tr[i].box[3];
        }
        s->n_img++;
    }
    for (int k = 0; k < d->n_cand; k++) {
        const ddps_db_cand *cd = &d->cand[k];
        if (cd->idx != 0) continue;
        const ddps_db_image *im = &d->images[cd->image];
        const double w[4] = {cd->x0, cd->y0, cd->x1, cd->y1};
        double ri, rc;
        random_windows(im->rw, im->rh, cd->rw, cd->rh, (double)im->width / im->rw, (double)im->height / im->rh,
                       tr[cd->image].box, &ri, &rc);
        s->iou += iou(w, tr[cd->image].box);
        s->iou_random += ri;
    }
    return 0;
}

static int eval_clusters(const eval_ctx *c, const ddps_db_class_data *d, const truth *tr, sums *s, ddps_err *err) {
    const int n = d->n_cand, k = ddps_world_variants(c->cls);
    if (n < 2 || !d->features) return 0;
    int *label = ddps_malloc((size_t)n * sizeof *label), *assign = ddps_malloc((size_t)n * sizeof *assign);
    float *dist = ddps_malloc((size_t)n * sizeof *dist);
    for (int i = 0; i < n; i++) label[i] = tr[d->cand[i].image].variant;
    int k_used = 0;
    ddps_error e;
    int rc = 0;
    if (ddps_cluster_features(d->features, n, d->dim, k, c->p->seed, assign, dist, &k_used, &e) != DDPS_OK) {
        rc = ddps_fail(err, "clustering: %s", e.message);
    } else {
        double a, ar, pu, pr;
        cluster_scores(assign, label, n, c->p->seed + 1, &a, &ar, &pu, &pr);
        s->ari += a, s->ari_random += ar, s->purity += pu, s->purity_random += pr;
        for (int i = 0; i < n; i++) assign[i] = d->cand[i].cluster; /* -1 (not clustered): one group */
        cluster_scores(assign, label, n, c->p->seed + 2, &a, &ar, &pu, &pr);
        s->ari_store += a, s->ari_store_random += ar;
        s->n_cluster_classes++;
    }
    free(label);
    free(assign);
    free(dist);
    return rc;
}

static int by_score_desc(const void *a, const void *b, void *ctx) {
    const ddps_db_cand *c = ctx;
    const float x = c[*(const int *)a].score, y = c[*(const int *)b].score;
    return x > y ? -1 : x < y ? 1 : *(const int *)a - *(const int *)b;
}

static int eval_selection(const eval_ctx *c, const ddps_db_class_data *d, const truth *tr, sums *s, ddps_err *err) {
    const int n = d->n_cand;
    if (n == 0) return 0;
    int *order = ddps_malloc((size_t)n * sizeof *order);
    for (int i = 0; i < n; i++) order[i] = i;
    qsort_r(order, (size_t)n, sizeof *order, by_score_desc, d->cand);
    int rc = 0;
    for (int q = 0; q < c->p->n_ipc && rc == 0; q++) {
        const int room = 4 * c->p->ipc[q];
        int *picks = ddps_malloc((size_t)room * sizeof *picks), np = 0, no = 0, per = 0;
        ddps_error e;
        if (ddps_db_select(d, c->p->ipc[q], c->p->top_clusters, c->p->mosaic_max_ipc, 0, picks, NULL, &np, &no, &per,
                           &e) != DDPS_OK) {
            rc = ddps_fail(err, "selection: %s", e.message);
        }
        for (int j = 0; j < np && rc == 0; j++) {
            const ddps_db_cand *sel = &d->cand[picks[j]], *top = &d->cand[order[j % n]];
            const double ws[4] = {sel->x0, sel->y0, sel->x1, sel->y1}, wt[4] = {top->x0, top->y0, top->x1, top->y1};
            s->sel[q] += contains(ws, tr[sel->image].box);
            s->sel_top[q] += contains(wt, tr[top->image].box);
            const ddps_db_image *im = &d->images[sel->image];
            double ri, rcn;
            random_windows(im->rw, im->rh, sel->rw, sel->rh, (double)im->width / im->rw, (double)im->height / im->rh,
                           tr[sel->image].box, &ri, &rcn);
            s->sel_random[q] += rcn;
            s->n_sel[q]++;
        }
        free(picks);
    }
    free(order);
    return rc;
}

/* The boxes.json prefix of the store's images: the last component of its
   data root ("test" for DIR/test), unless the caller names it. */
static char *store_split(ddps_db *db, const char *given, ddps_err *err) {
    if (given) return ddps_strdup(given);
    char *root = NULL;
    ddps_error e;
    if (ddps_db_meta(db, "data_root", &root, &e) != DDPS_OK || !root) {
        ddps_free(root);
        ddps_fail_kind(err, DDPS_KIND_DATA, "store has no data root; name the split with --split");
        return NULL;
    }
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/') root[--n] = 0;
    const char *slash = strrchr(root, '/');
    char *s = ddps_strdup(slash ? slash + 1 : root);
    ddps_free(root);
    return s;
}

/* Adds one store class's figures to s (and prints its row). */
static int eval_class(const eval_ctx *c, ddps_db *db, const ddps_db_class *cl, sums *s, const ddps_hooks *h,
                      ddps_err *err) {
    ddps_db_class_data d;
    ddps_error e;
    if (ddps_db_load(db, cl->id, 1, 1, &d, &e) != DDPS_OK)
        return ddps_fail_kind(err, DDPS_KIND_DATA, "class %s: %s", cl->name, e.message);
    truth *tr = ddps_calloc((size_t)(d.n_images ? d.n_images : 1), sizeof *tr);
    int rc = 0;
    for (int i = 0; i < d.n_images && rc == 0; i++)
        rc = find_truth(c->boxes, c->split, d.images[i].relpath, c->cls, &tr[i], err);
    sums one = {0};
    if (rc == 0) rc = eval_images(&d, tr, &one);
    if (rc == 0) rc = eval_clusters(c, &d, tr, &one, err);
    if (rc == 0) rc = eval_selection(c, &d, tr, &one, err);
    if (rc == 0 && one.n_img > 0) {
        const int last = c->p->n_ipc - 1;
        ddps_tools_out(h, "%-18s %6.0f %7.1f%% %7.1f%%   %5.2f %5.2f   %6.2f %6.2f   %6.1f%% %6.1f%% %6.1f%%", cl->name,
                       one.n_img, 100 * one.point_hit / one.n_img, 100 * one.point_chance / one.n_img,
                       one.iou / one.n_img, one.iou_random / one.n_img, one.ari, one.ari_random,
                       last >= 0 && one.n_sel[last] ? 100 * one.sel[last] / one.n_sel[last] : 0,
                       last >= 0 && one.n_sel[last] ? 100 * one.sel_top[last] / one.n_sel[last] : 0,
                       last >= 0 && one.n_sel[last] ? 100 * one.sel_random[last] / one.n_sel[last] : 0);
        double *a = (double *)s;
        const double *b = (const double *)&one;
        for (size_t k = 0; k < sizeof *s / sizeof(double); k++) a[k] += b[k];
    }
    free(tr);
    ddps_db_class_data_free(&d);
    return rc;
}

static void fill_result(const ddps_world_eval_params *p, const sums *s, ddps_world_eval_result *r) {
    memset(r, 0, sizeof *r);
    const double n = s->n_img > 0 ? s->n_img : 1, k = s->n_cluster_classes > 0 ? s->n_cluster_classes : 1;
    r->n_images = (int)s->n_img;
    r->pointing = s->point_hit / n, r->pointing_chance = s->point_chance / n;
    r->iou = s->iou / n, r->iou_random = s->iou_random / n;
    r->ari = s->ari / k, r->ari_random = s->ari_random / k, r->purity = s->purity / k;
    r->purity_random = s->purity_random / k, r->ari_store = s->ari_store / k;
    r->ari_store_random = s->ari_store_random / k;
    r->n_ipc = p->n_ipc;
    for (int q = 0; q < p->n_ipc; q++) {
        const double m = s->n_sel[q] > 0 ? s->n_sel[q] : 1;
        r->ipc[q] = p->ipc[q];
        r->contain[q] = s->sel[q] / m, r->contain_top[q] = s->sel_top[q] / m, r->contain_random[q] = s->sel_random[q] / m;
    }
}

static void print_result(const ddps_world_eval_result *r, const ddps_hooks *h, int json) {
    ddps_tools_out(h, "%-18s %6d %7.1f%% %7.1f%%   %5.2f %5.2f   %6.2f %6.2f", "all classes", r->n_images,
                   100 * r->pointing, 100 * r->pointing_chance, r->iou, r->iou_random, r->ari, r->ari_random);
    ddps_tools_out(h, "%s", "");
    ddps_tools_out(h, "clusters (class mean): k = variants: ARI %.2f (random %.2f), purity %.2f (random %.2f); "
                   "the store's clusters: ARI %.2f (random %.2f)", r->ari, r->ari_random, r->purity,
                   r->purity_random, r->ari_store, r->ari_store_random);
    ddps_tools_out(h, "selected patches that contain the whole object:");
    ddps_tools_out(h, "  %-6s %10s %14s %14s", "IPC", "ddps", "w/o clusters", "random window");
    for (int q = 0; q < r->n_ipc; q++)
        ddps_tools_out(h, "  %-6d %9.1f%% %13.1f%% %13.1f%%", r->ipc[q], 100 * r->contain[q],
                       100 * r->contain_top[q], 100 * r->contain_random[q]);
    if (!json) return;
    char line[2048];
    int n = snprintf(line, sizeof line,
                     "{\"images\": %d, \"pointing\": %.4f, \"pointing_chance\": %.4f, \"iou\": %.4f, "
                     "\"iou_random\": %.4f, \"ari\": %.4f, \"ari_random\": %.4f, \"purity\": %.4f, "
                     "\"purity_random\": %.4f, \"ari_store\": %.4f, \"ari_store_random\": %.4f, \"selection\": [",
                     r->n_images, r->pointing, r->pointing_chance, r->iou, r->iou_random, r->ari, r->ari_random,
                     r->purity, r->purity_random, r->ari_store, r->ari_store_random);
    for (int q = 0; q < r->n_ipc && n < (int)sizeof line; q++)
        n += snprintf(line + n, sizeof line - (size_t)n,
                      "%s{\"ipc\": %d, \"contain\": %.4f, \"contain_top\": %.4f, \"contain_random\": %.4f}",
                      q ? ", " : "", r->ipc[q], r->contain[q], r->contain_top[q], r->contain_random[q]);
    if (n < (int)sizeof line) snprintf(line + n, sizeof line - (size_t)n, "]}");
    ddps_tools_out(h, "%s", line);
}

static int check_params(const ddps_world_eval_params *p, ddps_err *err) {
    if (!p->store || !*p->store) return ddps_fail_usage(err, "--store: a store is required");
    if (!p->world || !*p->world) return ddps_fail_usage(err, "--world: the world's folder is required");
    if (p->n_ipc < 1 || p->n_ipc > DDPS_WORLD_EVAL_MAX_IPC)
        return ddps_fail_usage(err, "--ipc: 1..%d values expected", DDPS_WORLD_EVAL_MAX_IPC);
    /* the selection settings, as `ddps select` checks them */
    ddps_select_params sp;
    ddps_select_params_defaults(&sp);
    sp.top_clusters = p->top_clusters;
    sp.mosaic_max_ipc = p->mosaic_max_ipc;
    return ddps_select_check(&sp, p->ipc, p->n_ipc, err);
}

int ddps_tools_world_eval(const ddps_world_eval_params *p, ddps_world_eval_result *out, const ddps_hooks *h,
                          ddps_err *err) {
    if (check_params(p, err) != 0) return ddps_fail_prefix(err, "world-eval");
    char *bpath = ddps_path_join(p->world, "boxes.json");
    json_t *boxes = NULL;
    int rc = ddps_json_load_ex(bpath, (size_t)1 << 30, 0, &boxes, err);
    free(bpath);
    ddps_db *db = NULL;
    ddps_error e;
    if (rc == 0 && ddps_db_open(p->store, &db, &e) != DDPS_OK) rc = ddps_fail_kind(err, DDPS_KIND_DATA, "%s", e.message);
    char *split = rc == 0 ? store_split(db, p->split, err) : NULL;
    if (rc == 0 && !split) rc = -1;
    ddps_db_class *cl = NULL;
    int ncl = 0;
    if (rc == 0 && ddps_db_classes(db, &cl, &ncl, &e) != DDPS_OK) rc = ddps_fail_kind(err, DDPS_KIND_DATA, "%s", e.message);
    sums s = {0};
    if (rc == 0) {
        char sel[32];
        snprintf(sel, sizeof sel, "IPC %d:", p->ipc[p->n_ipc - 1]);
        ddps_tools_out(h, "%26s%-20s%-14s%-16s%s", "", "pointing game", "best window", "clusters",
                       "whole object selected");
        ddps_tools_out(h, "%-18s %6s %8s %8s   %5s %5s   %6s %6s   %-7s %7s %7s", "class", "images", "hit",
                       "chance", "IoU", "rand", "ARI", "rand", sel, "w/o cl", "random");
    }
    for (int i = 0; i < ncl && rc == 0; i++) {
        int cls = -1;
        for (int k = 0; k < DDPS_WORLD_CLASSES; k++)
            if (strcmp(cl[i].name, ddps_world_folder(k)) == 0) cls = k;
        if (cls < 0) {
            rc = ddps_fail_kind(err, DDPS_KIND_DATA, "store class \"%s\" is not a toy-world class", cl[i].name);
            break;
        }
        eval_ctx c = {p, boxes, split, cls};
        rc = eval_class(&c, db, &cl[i], &s, h, err);
    }
    ddps_world_eval_result r;
    if (rc == 0) {
        fill_result(p, &s, &r);
        print_result(&r, h, p->json);
        if (out) *out = r;
    }
    ddps_db_classes_free(cl, ncl);
    ddps_db_close(db);
    free(split);
    json_decref(boxes);
    return rc == 0 ? 0 : ddps_fail_prefix(err, "world-eval");
}
