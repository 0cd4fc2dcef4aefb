#include "pipeline/shard.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline/store_guard.h"
#include "util/fs.h"
#include "util/rng.h"

#define MAX_SHARDS 100000

char *ddps_shard_path(const char *store, int k, int n) {
    size_t len = strlen(store) + 48;
    char *p = ddps_malloc(len);
    snprintf(p, len, "%s.shard-%d-of-%d", store, k, n);
    return p;
}

int ddps_shard_parse(const char *text, int *k, int *n, ddps_err *err) {
    char *end;
    errno = 0;
    long a = strtol(text, &end, 10);
    if (end == text || *end != '/' || errno || text[0] == '-' || text[0] == '+')
        return ddps_fail_usage(err, "--shard %s: expected K/N (share K of N, 0 <= K < N)", text);
    const char *b = end + 1;
    long c = strtol(b, &end, 10);
    if (end == b || *end || errno || b[0] == '-' || b[0] == '+' || c < 1 || c > MAX_SHARDS || a >= c)
        return ddps_fail_usage(err, "--shard %s: expected K/N with 0 <= K < N <= %d", text, MAX_SHARDS);
    *k = (int)a;
    *n = (int)c;
    return 0;
}

long ddps_shard_select(const ddps_dataset *ds, int G, int k, int n, char *in_share, uint64_t *plan) {
    char head[64];
    snprintf(head, sizeof head, "ddps-shard-plan %d %d", n, G);
    uint64_t h = ddps_fnv1a(DDPS_FNV_INIT, head, strlen(head) + 1);
    for (int i = 0; i < ds->n_items; i++) h = ddps_fnv1a(h, ds->items[i].relpath, strlen(ds->items[i].relpath) + 1);
    *plan = h;
    long long total = ds->n_items, before = 0;
    long count = 0;
    for (int c = 0; c < ds->n_classes; c++) {
        const ddps_class *cls = &ds->classes[c];
        for (int g = 0; g < cls->count; g += G) {
            int z = g + G < cls->count ? G : cls->count - g;
            long long share = total > 0 ? (2 * before + z) * (long long)n / (2 * total) : 0;
            if (share > n - 1) share = n - 1;
            for (int i = 0; i < z; i++) in_share[cls->first + g + i] = share == k;
            if (share == k) count += z;
            before += z;
        }
    }
    return count;
}

static long stored_images(ddps_store *st, long *n_cand, ddps_err *err) {
    ddps_class_info *ci;
    int nc;
    if (ddps_store_list_classes(st, &ci, &nc, err) != 0) return -1;
    long n = 0, cand = 0;
    for (int i = 0; i < nc; i++) n += ci[i].n_images + ci[i].n_bad, cand += ci[i].n_cand;
    ddps_store_free_classes(ci, nc);
    if (n_cand) *n_cand = cand;
    return n;
}

int ddps_shard_bind(ddps_store *st, const ddps_dataset *ds, int G, int k, int n, char *in_share, ddps_err *err) {
    uint64_t plan;
    long count = ddps_shard_select(ds, G, k, n, in_share, &plan);
    char want[64], plan_hex[32], images[32];
    snprintf(want, sizeof want, "%d/%d", k, n);
    snprintf(plan_hex, sizeof plan_hex, "%016llx", (unsigned long long)plan);
    snprintf(images, sizeof images, "%ld", count);
    const char *path = ddps_store_path(st);
    char *have = NULL, *have_plan = NULL;
    int rc = ddps_store_get_meta(st, "shard", &have, err);
    if (rc == 0) rc = ddps_store_get_meta(st, "shard_plan", &have_plan, err);
    if (rc == 0 && have) {
        if (strcmp(have, want) != 0)
            rc = ddps_fail_data(err, "%s: this store is shard %s, not %s; use its own --shard or a new --store", path, have,
                           want);
        else if (!have_plan || strcmp(have_plan, plan_hex) != 0)
            rc = ddps_fail_data(err,
                           "%s: shard %s was started with another split of the work (other --batch-images or other "
                           "dataset files); rerun with the same settings or use a new --store",
                           path, want);
    } else if (rc == 0) {
        /* A first run: meta "shard" goes last, so a run killed in between starts over cleanly. */
        long already = stored_images(st, NULL, err);
        if (already < 0)
            rc = -1;
        else if (already > 0)
            rc = ddps_fail_data(err, "%s: holds %ld scored images but is not a shard store; use a new --store", path,
                           already);
        if (rc == 0) rc = ddps_store_set_meta(st, "shard_plan", plan_hex, err);
        if (rc == 0) rc = ddps_store_set_meta(st, "shard_images", images, err);
        if (rc == 0) rc = ddps_store_set_meta(st, "shard_complete", "0", err);
        if (rc == 0) rc = ddps_store_set_meta(st, "shard", want, err);
    }
    free(have);
    free(have_plan);
    return rc;
}

/* ---------- merge ---------- */

typedef struct {
    const char *path;
    ddps_store *s;
    int k, n;
    char *settings, *model, *plan, *complete, *images, *data_root, *model_dir;
} shard_in;

static void shard_in_free(shard_in *x) {
    ddps_store_close(x->s);
    free(x->settings), free(x->model), free(x->plan), free(x->complete), free(x->images);
    free(x->data_root), free(x->model_dir);
}

/* The first setting (in key order) whose value differs, as "key is A there, B here". */
static void settings_difference(const char *a, const char *b, char *buf, size_t n) {
    json_t *ja = json_loads(a, 0, NULL), *jb = json_loads(b, 0, NULL);
    snprintf(buf, n, "settings differ");
    if (ja && jb && json_is_object(ja) && json_is_object(jb)) {
        const char *best = NULL;
        const char *key;
        json_t *v;
        json_object_foreach(ja, key, v) {
            if (!json_equal(v, json_object_get(jb, key)) && (!best || strcmp(key, best) < 0)) best = key;
        }
        json_object_foreach(jb, key, v) {
            if (!json_object_get(ja, key) && (!best || strcmp(key, best) < 0)) best = key;
        }
        if (best) {
            json_t *va = json_object_get(ja, best), *vb = json_object_get(jb, best);
            char *ta = va ? json_dumps(va, JSON_ENCODE_ANY | JSON_COMPACT) : NULL,
                 *tb = vb ? json_dumps(vb, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
            snprintf(buf, n, "setting %s is %s there, %s here", best, ta ? ta : "(absent)", tb ? tb : "(absent)");
            free(ta);
            free(tb);
        }
    }
    json_decref(ja);
    json_decref(jb);
}

static int meta(shard_in *x, const char *key, char **v, ddps_err *err) { return ddps_store_get_meta(x->s, key, v, err); }

/* Opens and checks one shard against the first. */
static int check_shard(shard_in *x, const shard_in *first, ddps_err *err) {
    if (ddps_store_open(x->path, 1, &x->s, err) != 0) return -1;
    char *shard = NULL;
    int rc = meta(x, "shard", &shard, err);
    if (rc == 0) rc = meta(x, "settings", &x->settings, err);
    if (rc == 0) rc = meta(x, "model_id", &x->model, err);
    if (rc == 0) rc = meta(x, "shard_plan", &x->plan, err);
    if (rc == 0) rc = meta(x, "shard_complete", &x->complete, err);
    if (rc == 0) rc = meta(x, "shard_images", &x->images, err);
    if (rc == 0) rc = meta(x, "data_root", &x->data_root, err);
    if (rc == 0) rc = meta(x, "model_dir", &x->model_dir, err);
    if (rc == 0 && !shard)
        rc = ddps_fail_data(err,
                       "%s: not a shard store (no shard record); merge takes the STORE.shard-K-of-N stores of ddps score "
                       "--shard K/N or of an MPI job",
                       x->path);
    if (rc == 0 && (!x->settings || !x->model || !x->plan || !x->images))
        rc = ddps_fail_data(err, "%s: shard store is incomplete or corrupt (settings, model or shard record missing)",
                       x->path);
    ddps_err e2;
    if (rc == 0 && ddps_shard_parse(shard, &x->k, &x->n, &e2) != 0)
        rc = ddps_fail_data(err, "%s: store is corrupt (shard record \"%s\")", x->path, shard);
    free(shard);
    if (rc != 0 || !first) return rc;
    if (x->n != first->n)
        return ddps_fail_data(err, "%s: a shard of a job split %d ways, %s is of one split %d ways", x->path, x->n,
                         first->path, first->n);
    if (strcmp(x->settings, first->settings) != 0) {
        char diff[1024];
        settings_difference(first->settings, x->settings, diff, sizeof diff);
        return ddps_fail_data(err, "%s: other settings than %s (%s)", x->path, first->path, diff);
    }
    if (strcmp(x->model, first->model) != 0)
        return ddps_fail_data(err, "%s: scored with another model than %s", x->path, first->path);
    if (strcmp(x->plan, first->plan) != 0)
        return ddps_fail_data(err, "%s: another split of the work than %s (other --batch-images or dataset files)", x->path,
                         first->path);
    return 0;
}

static int cmp_bad(const void *a, const void *b) {
    return strcmp(((const ddps_bad_image *)a)->relpath, ((const ddps_bad_image *)b)->relpath);
}

/* Copies one class of one shard (images in relpath order, bad ones in place). */
static int copy_class(ddps_store *out, int out_id, shard_in *x, int in_id, ddps_err *err) {
    ddps_class_data d;
    if (ddps_store_load_class(x->s, in_id, 1, &d, err) != 0) return -1;
    ddps_bad_image *bad = NULL;
    int nbad = 0, rc = ddps_store_list_bad(x->s, in_id, &bad, &nbad, err);
    if (rc == 0 && nbad > 1) qsort(bad, (size_t)nbad, sizeof *bad, cmp_bad);
    /* Stage-I maps travel with their images (shards of a ddps without maps have none). */
    ddps_stored_map *maps = NULL;
    if (rc == 0) rc = ddps_store_load_maps(x->s, &d, &maps, err);
    ddps_candidate *cand = ddps_malloc((size_t)(d.n_cand ? d.n_cand : 1) * sizeof *cand);
    int c = 0, b = 0;
    for (int i = 0; rc == 0 && i <= d.n_images; i++) {
        /* bad images sorted before this one */
        while (rc == 0 && b < nbad && (i == d.n_images || strcmp(bad[b].relpath, d.images[i].relpath) < 0)) {
            rc = ddps_store_put_bad(out, out_id, bad[b].relpath, bad[b].reason ? bad[b].reason : "", err);
            b++;
        }
        if (rc != 0 || i == d.n_images) break;
        const ddps_stored_image *im = &d.images[i];
        int first = c;
        for (; c < d.n_cand && d.cand[c].image == i; c++) {
            const ddps_stored_cand *sc = &d.cand[c];
            ddps_candidate *q = &cand[c - first];
            q->w.x0 = sc->x0, q->w.y0 = sc->y0, q->w.x1 = sc->x1, q->w.y1 = sc->y1;
            q->w.rx = sc->rx, q->w.ry = sc->ry, q->w.rw = sc->rw, q->w.rh = sc->rh;
            q->w.score = sc->score;
            q->feature = d.features + (size_t)c * d.dim;
        }
        ddps_image_result r = {.class_id = out_id, .relpath = im->relpath, .width = im->width, .height = im->height,
                               .rw = im->rw, .rh = im->rh, .image_score = im->image_score, .n_cand = c - first,
                               .cand = cand, .dim = d.dim, .seconds = 0.0};
        int state = 0;
        rc = ddps_store_image_state(out, im->relpath, &state, err);
        if (rc == 0 && state != 0) rc = ddps_fail_data(err, "%s: image %s is also in another shard", x->path, im->relpath);
        if (rc == 0) rc = ddps_store_put_image_map(out, &r, maps[i].data, maps[i].h, maps[i].w, err);
    }
    if (rc == 0 && c != d.n_cand) rc = ddps_fail_data(err, "%s: store is corrupt (candidates out of order)", x->path);
    free(cand);
    if (maps) ddps_store_free_maps(maps, d.n_images);
    ddps_store_free_bad(bad, nbad);
    ddps_class_data_free(&d);
    if (rc != 0 && !strstr(err->msg, x->path)) ddps_fail_prefix(err, "%s", x->path);
    return rc;
}

static void remove_db(const char *path) {
    size_t n = strlen(path) + 8;
    char *p = ddps_malloc(n);
    unlink(path);
    snprintf(p, n, "%s-wal", path);
    unlink(p);
    snprintf(p, n, "%s-shm", path);
    unlink(p);
    free(p);
}

static int cmp_class_name(const void *a, const void *b) {
    return strcmp(((const ddps_merge_class *)a)->name, ((const ddps_merge_class *)b)->name);
}

static int copy_all(ddps_merge *m, shard_in *in, int n, ddps_err *err) {
    ddps_store *out = NULL;
    if (ddps_store_open(m->tmp, 0, &out, err) != 0) return -1;
    int rc = ddps_store_bind(out, in[0].settings, in[0].model, err);
    if (rc == 0 && in[0].data_root) rc = ddps_store_set_meta(out, "data_root", in[0].data_root, err);
    if (rc == 0 && in[0].model_dir) rc = ddps_store_set_meta(out, "model_dir", in[0].model_dir, err);
    char nbuf[32];
    snprintf(nbuf, sizeof nbuf, "%d", n);
    if (rc == 0) rc = ddps_store_set_meta(out, "merged_shards", nbuf, err);
    if (rc == 0) rc = ddps_store_set_meta(out, "score_complete", "1", err); /* visible only once complete */
    /* Classes: the same in every shard (each records all classes of the dataset). */
    ddps_class_info **ci = ddps_calloc((size_t)n, sizeof *ci);
    int *nc = ddps_calloc((size_t)n, sizeof *nc);
    for (int i = 0; rc == 0 && i < n; i++) {
        rc = ddps_store_list_classes(in[i].s, &ci[i], &nc[i], err);
        if (rc == 0 && nc[i] != nc[0])
            rc = ddps_fail_data(err, "%s: has %d classes, %s has %d", in[i].path, nc[i], in[0].path, nc[0]);
        for (int c = 0; rc == 0 && c < nc[i]; c++)
            if (strcmp(ci[i][c].name, ci[0][c].name) != 0)
                rc = ddps_fail_data(err, "%s: other classes than %s", in[i].path, in[0].path);
    }
    for (int c = 0; rc == 0 && c < nc[0]; c++) {
        int id;
        rc = ddps_store_class_id(out, ci[0][c].name, ci[0][c].prompt_name, ci[0][c].prompt, &id, err);
        for (int i = 0; rc == 0 && i < n; i++) rc = copy_class(out, id, &in[i], ci[i][c].id, err);
    }
    for (int i = 0; rc == 0 && i < n; i++) {
        ddps_run_stats t;
        rc = ddps_store_totals(in[i].s, &t, err);
        t.command = "score";
        if (rc == 0) rc = ddps_store_add_run(out, &t, err);
    }
    /* The classes to cluster, with their seeds (as ddps_score_run draws them). */
    if (rc == 0) {
        json_t *js = json_loads(in[0].settings, 0, NULL);
        json_t *jk = json_object_get(js, "clusters"), *jseed = json_object_get(js, "seed");
        if (!json_is_integer(jk) || !json_is_integer(jseed)) {
            rc = ddps_fail_data(err, "%s: store is corrupt (settings lack clusters or seed)", in[0].path);
        } else {
            m->k = (int)json_integer_value(jk);
            uint64_t seed = (uint64_t)json_integer_value(jseed);
            ddps_class_info *oc;
            int on;
            rc = ddps_store_list_classes(out, &oc, &on, err);
            if (rc == 0) {
                m->classes = ddps_calloc((size_t)on + 1, sizeof *m->classes);
                m->n_classes = on;
                for (int c = 0; c < on; c++) {
                    m->classes[c].class_id = oc[c].id;
                    m->classes[c].name = ddps_strdup(oc[c].name);
                    m->classes[c].n_cand = oc[c].n_cand;
                    m->classes[c].seed = ddps_class_cluster_seed(seed, oc[c].name);
                }
                qsort(m->classes, (size_t)on, sizeof *m->classes, cmp_class_name);
                ddps_store_free_classes(oc, on);
            }
        }
        json_decref(js);
    }
    for (int i = 0; i < n; i++) ddps_store_free_classes(ci[i], nc[i]);
    free(ci);
    free(nc);
    ddps_store_close(out);
    return rc;
}

/* The name of share k of n beside `path`, the name of share pk: path with
 * its ".shard-PK-of-N" suffix replaced (the job's STORE is the shards' base
 * name, whatever --store the merge writes). */
static char *shard_sibling(const char *path, int pk, int k, int n) {
    char *own = ddps_shard_path("", pk, n);
    size_t lp = strlen(path), lo = strlen(own);
    char *base = ddps_strdup(path);
    if (lp > lo && strcmp(path + lp - lo, own) == 0) base[lp - lo] = 0;
    char *p = ddps_shard_path(base, k, n);
    free(own);
    free(base);
    return p;
}

/* An existing OUT is replaced only when it is a finished ddps store of the
 * same job (same settings and model, not a shard), or with force. */
static int check_out(const char *out, const shard_in *first, int force, ddps_err *err) {
    struct stat so;
    if (force || stat(out, &so) != 0) return 0;
    const char *hint = "; use another --store, or --force to replace it";
    ddps_store *s = NULL;
    ddps_err e;
    if (ddps_store_open(out, 1, &s, &e) != 0)
        return ddps_fail_data(err, "%s: exists and is not a ddps store (%s)%s", out, e.msg, hint);
    char *settings = NULL, *model = NULL, *shard = NULL;
    int rc = ddps_store_get_meta(s, "settings", &settings, &e) || ddps_store_get_meta(s, "model_id", &model, &e) ||
             ddps_store_get_meta(s, "shard", &shard, &e);
    if (rc == 0 && shard)
        rc = ddps_fail_data(err, "%s: exists and is a shard store itself%s", out, hint);
    else if (rc != 0 || !settings || !model || strcmp(settings, first->settings) != 0 || strcmp(model, first->model) != 0)
        rc = ddps_fail_data(err, "%s: exists and is a store of another job (other settings or model than %s)%s", out,
                       first->path, hint);
    free(settings);
    free(model);
    free(shard);
    ddps_store_close(s);
    if (rc == 0 && ddps_store_writer_active(out))
        rc = ddps_fail_data(err, "%s: a ddps score is writing to it%s", out, hint);
    return rc;
}

int ddps_merge_begin(const char *out, char *const *shards, int n, int force, ddps_merge *m, ddps_err *err) {
    memset(m, 0, sizeof *m);
    if (n < 1) return ddps_fail(err, "no shard stores given");
    shard_in *in = ddps_calloc((size_t)n, sizeof *in);
    int rc = 0;
    struct stat so, ss;
    int have_out = stat(out, &so) == 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        in[i].path = shards[i];
        if (have_out && stat(shards[i], &ss) == 0 && ss.st_dev == so.st_dev && ss.st_ino == so.st_ino)
            rc = ddps_fail_data(err, "%s: is both a shard and the output --store", shards[i]);
        if (rc == 0) rc = check_shard(&in[i], i ? &in[0] : NULL, err);
    }
    /* each share once, none missing, each complete and holding exactly its share */
    int N = rc == 0 ? in[0].n : 0;
    int *seen = ddps_calloc((size_t)N + 1, sizeof *seen);
    for (int i = 0; rc == 0 && i < n; i++) {
        if (seen[in[i].k])
            rc = ddps_fail_data(err, "%s and %s are the same shard %d/%d", shards[seen[in[i].k] - 1], shards[i], in[i].k, N);
        seen[in[i].k] = i + 1;
    }
    if (rc == 0 && n < N) {
        char buf[512];
        size_t len = 0;
        int miss = 0;
        for (int k = 0; k < N; k++)
            if (!seen[k]) {
                if (miss < 8) len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%d/%d", miss ? ", " : "", k, N);
                miss++;
            }
        char *ex = NULL;
        for (int k = 0; k < N && !ex; k++)
            if (!seen[k]) ex = shard_sibling(in[0].path, in[0].k, k, N);
        rc = ddps_fail_data(err, "incomplete set of shards: %d of %d missing (%s%s; e.g. %s)", miss, N, buf,
                       miss > 8 ? ", ..." : "", ex);
        free(ex);
    }
    for (int i = 0; rc == 0 && i < n; i++) {
        long want = atol(in[i].images), have = stored_images(in[i].s, NULL, err);
        if (have < 0)
            rc = -1;
        else if (!in[i].complete || strcmp(in[i].complete, "1") != 0)
            rc = ddps_fail_data(err,
                           "%s: shard %d/%d is not finished (%ld of %ld images scored); rerun its ddps score (same "
                           "command, or with --shard %d/%d) to finish it",
                           in[i].path, in[i].k, N, have, want, in[i].k, N);
        else if (have != want)
            rc = ddps_fail_data(err, "%s: shard %d/%d holds %ld images, its share has %ld", in[i].path, in[i].k, N, have,
                           want);
    }
    if (rc == 0) rc = check_out(out, &in[0], force, err);
    if (rc == 0) {
        /* in share order, so the merged store lists images in dataset order */
        shard_in *sorted = ddps_calloc((size_t)n, sizeof *sorted);
        for (int i = 0; i < n; i++) sorted[in[i].k] = in[i];
        memcpy(in, sorted, (size_t)n * sizeof *in);
        free(sorted);
        m->out = ddps_strdup(out);
        size_t len = strlen(out) + 16;
        m->tmp = ddps_malloc(len);
        snprintf(m->tmp, len, "%s.merging", out);
        remove_db(m->tmp);
        rc = copy_all(m, in, n, err);
    }
    free(seen);
    for (int i = 0; i < n; i++) {
        shard_in_free(&in[i]);
        ddps_store_tidy_wal(shards[i]); /* what the read-only connection left */
    }
    free(in);
    if (rc != 0) {
        ddps_merge_free(m);
        memset(m, 0, sizeof *m);
    }
    return rc;
}

void ddps_merge_assign(const ddps_merge *m, int size, int *owner) {
    int nc = m->n_classes;
    int *order = ddps_malloc((size_t)(nc ? nc : 1) * sizeof *order);
    long *load = ddps_calloc((size_t)size, sizeof *load);
    for (int i = 0; i < nc; i++) order[i] = i;
    /* largest first (ties: name order), insertion sort: class counts are small */
    for (int i = 1; i < nc; i++) {
        int x = order[i], j = i - 1;
        while (j >= 0 && m->classes[order[j]].n_cand < m->classes[x].n_cand) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = x;
    }
    for (int a = 0; a < nc; a++) {
        int best = 0;
        for (int r = 1; r < size; r++)
            if (load[r] < load[best]) best = r;
        owner[order[a]] = best;
        load[best] += m->classes[order[a]].n_cand + 1;
    }
    free(order);
    free(load);
}

int ddps_merge_commit(ddps_merge *m, ddps_err *err) {
    size_t n = strlen(m->out) + 8;
    char *p = ddps_malloc(n);
    /* a stale journal of an older OUT must not be applied to the new file */
    snprintf(p, n, "%s-wal", m->out);
    unlink(p);
    snprintf(p, n, "%s-shm", m->out);
    unlink(p);
    free(p);
    if (rename(m->tmp, m->out) != 0) return ddps_fail_resource(err, "%s: cannot rename to %s: %s", m->tmp, m->out, strerror(errno));
    return 0;
}

void ddps_merge_free(ddps_merge *m) {
    if (m->tmp) remove_db(m->tmp);
    free(m->tmp);
    free(m->out);
    for (int i = 0; i < m->n_classes; i++) free(m->classes[i].name);
    free(m->classes);
    memset(m, 0, sizeof *m);
}

int ddps_merge_run(const char *out, char *const *shards, int n, int force, ddps_err *err) {
    ddps_merge m;
    if (ddps_merge_begin(out, shards, n, force, &m, err) != 0) return -1;
    ddps_store *st = NULL;
    int rc = ddps_store_open(m.tmp, 0, &st, err);
    for (int c = 0; rc == 0 && c < m.n_classes; c++)
        rc = ddps_store_cluster(st, m.classes[c].class_id, m.k, m.classes[c].seed, err);
    ddps_store_close(st);
    if (rc == 0) rc = ddps_merge_commit(&m, err);
    ddps_merge_free(&m);
    return rc;
}
