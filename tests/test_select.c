/* Selection: the rule (top-cluster quota, fill, ordering, mosaic layout),
 * the written sets (counts per IPC and class, pixels, manifests consistent
 * with the files), class subsets, shortfalls, hostile class names, atomic
 * replacement, low-resolution stores, the CLI, and the speed on an
 * ImageWoof-sized store. */
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/image.h"
#include "pipeline/select.h"
#include "pipeline/store.h"
#include "testlib.h"
#include "util/fs.h"
#include "util/rng.h"

#define DIM 8

/* Test paths are short and live in 4 KiB buffers; GCC cannot know that. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* ---------------------------------------------------------------- rule */

/* A class in memory: cluster/rank/dist/score per candidate. */
static ddps_class_data fake_class(int n, const int *rank, const float *dist, const float *score) {
    ddps_class_data d;
    memset(&d, 0, sizeof d);
    d.n_cand = n;
    d.cand = calloc((size_t)n, sizeof *d.cand);
    for (int i = 0; i < n; i++) {
        d.cand[i].cluster = rank[i] > 0 ? 100 + rank[i] : -1;
        d.cand[i].cluster_rank = rank[i];
        d.cand[i].dist = dist[i];
        d.cand[i].score = score[i];
    }
    return d;
}

static void rule_quota_and_fill(void) {
    /* cluster ranks 1..3; candidate scores chosen so the fill order is known */
    int rank[10] = {2, 1, 1, 3, 1, 2, 2, 1, 3, 0};
    float dist[10] = {0.5f, 0.9f, 0.1f, 0.2f, 0.3f, 0.1f, 0.7f, 0.3f, 0.1f, 0};
    float score[10] = {5, 1, 2, 9, 3, 4, 8, 7, 6, 10};
    ddps_class_data d = fake_class(10, rank, dist, score);
    int picks[10];
    unsigned char fill[10];
    /* needed 7, top 2: quota 3 from rank 1 (dist 0.1 #2, 0.3 #4, 0.3 #7: tie -> index),
     * 3 from rank 2 (#5 0.1, #0 0.5, #6 0.7), then the best unused score: #9 (10). */
    int n = ddps_select_patches(&d, 7, 2, picks, fill);
    int want[7] = {2, 4, 7, 5, 0, 6, 9};
    unsigned char wfill[7] = {0, 0, 0, 0, 0, 0, 1};
    CHECK(n == 7 && memcmp(picks, want, sizeof want) == 0 && memcmp(fill, wfill, 7) == 0);
    /* top 3, needed 7: quota 2 each; rank 1: #2 #4; rank 2: #5 #0; rank 3: #8 #3; fill #9 */
    n = ddps_select_patches(&d, 7, 3, picks, fill);
    int want2[7] = {2, 4, 5, 0, 8, 3, 9};
    CHECK(n == 7 && memcmp(picks, want2, sizeof want2) == 0 && fill[6] == 1 && fill[5] == 0);
    /* a cluster with too few gives all it has: top 3, needed 9, quota 3; rank 3 has 2 */
    n = ddps_select_patches(&d, 9, 3, picks, fill);
    int want3[9] = {2, 4, 7, 5, 0, 6, 8, 3, 9};
    CHECK(n == 9 && memcmp(picks, want3, sizeof want3) == 0);
    CHECK(fill[7] == 0 && fill[8] == 1);
    /* needed < top clusters: quota 0, everything by score */
    n = ddps_select_patches(&d, 4, 10, picks, fill);
    int want4[4] = {9, 3, 6, 7};
    CHECK(n == 4 && memcmp(picks, want4, sizeof want4) == 0 && fill[0] && fill[1] && fill[2] && fill[3]);
    /* more needed than exist: each candidate once */
    n = ddps_select_patches(&d, 40, 2, picks, fill);
    int seen[10] = {0}, dup = 0;
    for (int i = 0; i < n; i++) dup += seen[picks[i]]++;
    CHECK(n == 10 && dup == 0);
    CHECK(ddps_select_patches(&d, 0, 2, picks, fill) == 0);
    free(d.cand);
    /* equal scores: candidate order decides */
    int r0[4] = {0, 0, 0, 0};
    float d0[4] = {0, 0, 0, 0}, s0[4] = {1, 2, 2, 1};
    d = fake_class(4, r0, d0, s0);
    n = ddps_select_patches(&d, 4, 10, picks, fill);
    int want5[4] = {1, 2, 0, 3};
    CHECK(n == 4 && memcmp(picks, want5, sizeof want5) == 0);
    free(d.cand);
}

static void rule_layout(void) {
    ddps_layout l = ddps_select_layout(10, 40, 1);
    CHECK(l.mosaic == 1 && l.n_images == 10 && l.per_image == 4);
    l = ddps_select_layout(10, 38, 1);
    CHECK(l.mosaic == 1 && l.n_images == 9 && l.per_image == 4);
    l = ddps_select_layout(10, 3, 1);
    CHECK(l.mosaic == 0 && l.n_images == 3 && l.per_image == 1);
    l = ddps_select_layout(1, 3, 1);
    CHECK(l.mosaic == 0 && l.n_images == 1);
    l = ddps_select_layout(50, 50, 0);
    CHECK(l.mosaic == 0 && l.n_images == 50 && l.per_image == 1);
    l = ddps_select_layout(50, 20, 0);
    CHECK(l.n_images == 20);
    l = ddps_select_layout(5, 0, 1);
    CHECK(l.n_images == 0);
}

static void folder_names(void) {
    struct {
        const char *in, *out;
    } cases[] = {
        {"n01440764", "n01440764"},
        {"../evil", "___evil"},
        {"/abs", "_abs"},
        {".hidden", "_hidden"},
        {"..", "__"},
        {".", "_"},
        {"", "_"},
        {"a/../../b", "a_.._.._b"},
        {"a\\b", "a_b"},
        {"\n\x01x\x7f", "__x_"},
        {"caf\xc3\xa9", "caf\xc3\xa9"},
        {"x\xff\xfe", "x__"},
        {"\xed\xa0\x80", "___"}, /* UTF-16 surrogate encoded in UTF-8: invalid */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *f = ddps_class_folder(cases[i].in);
        CHECKF(strcmp(f, cases[i].out) == 0, "'%s' -> '%s'", cases[i].in, f);
        free(f);
    }
    char longname[400];
    memset(longname, 'a', 399);
    longname[399] = 0;
    char *f = ddps_class_folder(longname);
    CHECK(strlen(f) == 200);
    free(f);
    /* a multi-byte character is never cut in half */
    for (int i = 0; i < 398; i += 2) memcpy(longname + i, "\xc3\xa9", 2);
    longname[398] = 0;
    f = ddps_class_folder(longname);
    CHECK(strlen(f) == 200 && (unsigned char)f[199] == 0xa9);
    free(f);
}

/* ---------------------------------------------------------- fixtures */

typedef struct {
    const char *name;
    int images, per_image;
} class_spec;

static char g_path[4096];
static const char *pjoin(const char *a, const char *b) {
    snprintf(g_path, sizeof g_path, "%s/%s", a, b);
    return g_path;
}

/* A source image whose pixels encode their position and the image id. */
static void write_source(const char *path, int w, int h, int id) {
    ddps_image img;
    ddps_err err;
    CHECK(ddps_image_alloc(&img, w, h) == 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = img.px + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(x * 5 + id);
            p[1] = (uint8_t)(y * 5);
            p[2] = (uint8_t)(id * 37 + x * y);
        }
    CHECKF(ddps_image_save(path, &img, 95, &err) == 0, "%s", err.msg);
    ddps_image_free(&img);
}

static void raw_sql(const char *path, const char *sql) {
    sqlite3 *db;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) fprintf(stderr, "raw_sql %s: %s\n", sql, sqlite3_errmsg(db));
    CHECK(rc == SQLITE_OK);
    sqlite3_close(db);
}

/* Builds dir/s.db and dir/data: classes with images of 64x48 or 48x64,
 * candidates with boxes at fractional positions, features in 4 blobs,
 * scores from a fixed RNG. Clustered with k = 4 unless cluster == 0. */
static void build_store(const char *dir, const class_spec *cs, int nc, int low_res, int cluster) {
    char data[4096], spath[4096];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(spath, sizeof spath, "%s/s.db", dir);
    ddps_store *s;
    ddps_err err = {{0}};
    CHECKF(ddps_store_open(spath, 0, &s, &err) == 0, "%s", err.msg);
    CHECK(ddps_store_bind(s,
                          low_res ? "{\"low_res\": true, \"clusters\": 4, \"seed\": 3}"
                                  : "{\"low_res\": false, \"clusters\": 4, \"seed\": 3, \"patch\": 32}",
                          "fake-model-1", &err) == 0);
    CHECK(ddps_store_set_meta(s, "data_root", data, &err) == 0);
    ddps_rng rng;
    ddps_rng_seed(&rng, 99);
    int id = 0;
    for (int c = 0; c < nc; c++) {
        int cid;
        CHECK(ddps_store_class_id(s, cs[c].name, NULL, NULL, &cid, &err) == 0);
        char folder[4096];
        snprintf(folder, sizeof folder, "%s/%s", data, cs[c].name);
        CHECK(ddps_mkdirs(folder, &err) == 0);
        for (int i = 0; i < cs[c].images; i++, id++) {
            int w = low_res ? 32 : (i % 2 ? 48 : 64), h = low_res ? 32 : (i % 2 ? 64 : 48);
            char rel[256], full[4096];
            snprintf(rel, sizeof rel, "%s/img%03d.png", cs[c].name, i);
            snprintf(full, sizeof full, "%s/%s", data, rel);
            write_source(full, w, h, id);
            ddps_candidate cand[4];
            float feat[4][DIM];
            int n = low_res ? 1 : cs[c].per_image;
            for (int k = 0; k < n; k++) {
                int blob = (i + k) % 4;
                for (int d = 0; d < DIM; d++) feat[k][d] = (float)(0.01 * ddps_rng_normal(&rng)) + (d == blob);
                /* whole image (low-res), else a 30-pixel box at fractional coordinates */
                double x0 = low_res ? 0 : 3.6 + 5 * k, y0 = low_res ? 0 : 2.4 + 3 * k;
                double x1 = low_res ? w : x0 + 30, y1 = low_res ? h : y0 + 30;
                cand[k] = (ddps_candidate){.w = {.x0 = x0, .y0 = y0, .x1 = x1, .y1 = y1}, .feature = feat[k]};
                cand[k].w.score = (float)ddps_rng_uniform(&rng);
            }
            ddps_image_result r = {cid, rel, w, h, w, h, 0.5f, n, cand, DIM, 0.1};
            CHECKF(ddps_store_put_image(s, &r, &err) == 0, "%s", err.msg);
        }
        if (cluster) CHECK(ddps_store_cluster(s, cid, 4, 3, &err) == 0);
    }
    ddps_run_stats run = {"score", 42.0, id, 0, 1000, 200, 2};
    CHECK(ddps_store_add_run(s, &run, &err) == 0);
    ddps_store_close(s);
}

/* All regular files under root, relative, sorted; hidden entries counted too. */
static char **g_files;
static int g_nfiles, g_hidden;
static size_t g_root_len;
static int collect(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    if (path[g_root_len] && strchr(path + ftw->base, '.') == path + ftw->base) g_hidden++;
    if (flag == FTW_F) {
        g_files = realloc(g_files, sizeof(char *) * (size_t)(g_nfiles + 1));
        g_files[g_nfiles++] = strdup(path + g_root_len + 1);
    }
    return 0;
}
static int cmp_strp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static void list_files(const char *root) {
    g_files = NULL;
    g_nfiles = g_hidden = 0;
    g_root_len = strlen(root);
    nftw(root, collect, 16, FTW_PHYS);
    if (g_nfiles) qsort(g_files, (size_t)g_nfiles, sizeof *g_files, cmp_strp);
}
static void free_files(void) {
    for (int i = 0; i < g_nfiles; i++) free(g_files[i]);
    free(g_files);
    g_files = NULL;
    g_nfiles = 0;
}

static json_t *load_json(const char *path) {
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    CHECKF(j != NULL, "%s: %s", path, je.text);
    return j;
}

static int count_in(const char *dir, const char *folder) {
    int n = 0;
    for (int i = 0; i < g_nfiles; i++)
        if (strncmp(g_files[i], folder, strlen(folder)) == 0 && g_files[i][strlen(folder)] == '/') n++;
    (void)dir;
    return n;
}

static int run_select(const char *dir, const char *out, const int *ipc, int n_ipc, const char *const *classes,
                      int n_classes, int size, ddps_err *err) {
    ddps_select_opts o;
    ddps_select_defaults(&o);
    char spath[4096];
    snprintf(spath, sizeof spath, "%s/s.db", dir);
    o.store_path = spath;
    o.out_dir = out;
    o.ipc = ipc;
    o.n_ipc = n_ipc;
    o.p.classes = classes;
    o.p.n_classes = n_classes;
    o.p.output_size = size;
    o.p.threads = 2;
    return ddps_select_run(&o, err);
}

/* RFC 4180 CSV into rows of fields (quoted fields may hold commas, quotes
 * and newlines). Returns the row count; free with free_csv. */
typedef struct {
    int n;
    char *f[16];
} csv_row_t;
static int parse_csv(const char *t, csv_row_t **rows) {
    int n = 0, cap = 0;
    *rows = NULL;
    while (*t) {
        if (n == cap) *rows = realloc(*rows, sizeof **rows * (size_t)(cap = cap ? 2 * cap : 64));
        csv_row_t *r = &(*rows)[n++];
        r->n = 0;
        while (1) {
            char *buf = malloc(strlen(t) + 1);
            size_t o = 0;
            if (*t == '"') {
                t++;
                while (*t && !(t[0] == '"' && t[1] != '"')) {
                    if (t[0] == '"') t++;
                    buf[o++] = *t++;
                }
                if (*t == '"') t++;
            } else {
                while (*t && *t != ',' && *t != '\n') buf[o++] = *t++;
            }
            buf[o] = 0;
            if (r->n < 16)
                r->f[r->n++] = buf;
            else
                free(buf);
            if (*t == ',') {
                t++;
                continue;
            }
            if (*t == '\n') t++;
            break;
        }
    }
    return n;
}
static void free_csv(csv_row_t *rows, int n) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < rows[i].n; j++) free(rows[i].f[j]);
    free(rows);
}

/* Every manifest entry: file exists, box inside its source, CSV and JSON
 * agree row by row, and the files on disk are exactly the manifest's.
 * Returns the number of images. */
static int check_manifests(const char *ipcdir, const char *data_root, int out_size) {
    char p[4096];
    snprintf(p, sizeof p, "%s/manifest.json", ipcdir);
    json_t *m = load_json(p);
    if (!m) return -1;
    json_t *images = json_object_get(m, "images");
    size_t ni = json_array_size(images);
    list_files(ipcdir);
    CHECK(g_hidden == 0);
    CHECKF((size_t)g_nfiles == ni + 2, "%d files, %zu images", g_nfiles, ni);
    char *csv;
    size_t csv_len;
    ddps_err err;
    snprintf(p, sizeof p, "%s/manifest.csv", ipcdir);
    CHECK(ddps_read_file(p, 1 << 28, &csv, &csv_len, &err) == 0);
    csv_row_t *rows;
    int nrows = parse_csv(csv, &rows), row = 1, bad = 0;
    CHECK(nrows >= 1 && rows[0].n == 15 && strcmp(rows[0].f[0], "class") == 0 && strcmp(rows[0].f[14], "fill") == 0);
    for (size_t i = 0; i < ni; i++) {
        json_t *im = json_array_get(images, i);
        const char *file = json_string_value(json_object_get(im, "file"));
        const char *cls = json_string_value(json_object_get(im, "class"));
        int found = 0;
        for (int k = 0; k < g_nfiles && !found; k++) found = strcmp(g_files[k], file) == 0;
        if (!found) bad++;
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", ipcdir, file);
        ddps_image out;
        if (ddps_image_load(full, &out, &err) != 0) {
            bad++;
            continue;
        }
        if (out_size && (out.w != out_size || out.h != out_size)) bad++;
        json_t *patches = json_object_get(im, "patches");
        for (size_t j = 0; j < json_array_size(patches); j++, row++) {
            json_t *pt = json_array_get(patches, j);
            const char *src = json_string_value(json_object_get(pt, "source"));
            json_t *box = json_object_get(pt, "box");
            int b[4];
            for (int q = 0; q < 4; q++) b[q] = (int)json_integer_value(json_array_get(box, (size_t)q));
            char sp[4096];
            snprintf(sp, sizeof sp, "%s/%s", data_root, src);
            ddps_image si;
            if (ddps_image_load(sp, &si, &err) != 0) {
                bad++;
                continue;
            }
            if (!(b[0] >= 0 && b[1] >= 0 && b[0] < b[2] && b[1] < b[3] && b[2] <= si.w && b[3] <= si.h)) bad++;
            if (!out_size && (out.w != si.w || out.h != si.h)) bad++; /* low-res: original size */
            ddps_image_free(&si);
            /* the CSV row for the same patch */
            if (row >= nrows || rows[row].n != 15) {
                bad++;
                continue;
            }
            char **f = rows[row].f;
            int fill = json_is_true(json_object_get(pt, "fill"));
            if (strcmp(f[0], cls) || strcmp(f[2], file) || atoi(f[4]) != (int)j || strcmp(f[5], src) ||
                atoi(f[6]) != b[0] || atoi(f[7]) != b[1] || atoi(f[8]) != b[2] || atoi(f[9]) != b[3] ||
                atoi(f[11]) != json_integer_value(json_object_get(pt, "cluster")) ||
                atoi(f[12]) != json_integer_value(json_object_get(pt, "cluster_rank")) || atoi(f[14]) != fill ||
                fabs(atof(f[10]) - json_real_value(json_object_get(pt, "score"))) > 1e-6)
                bad++;
        }
        ddps_image_free(&out);
    }
    CHECKF(row == nrows, "%d CSV rows, %d patches", nrows - 1, row - 1);
    CHECKF(bad == 0, "%d inconsistencies in %s", bad, ipcdir);
    free_csv(rows, nrows);
    free(csv);
    free_files();
    json_decref(m);
    return (int)ni;
}

static json_t *class_entry(json_t *m, const char *folder) {
    json_t *cl = json_object_get(m, "classes");
    for (size_t i = 0; i < json_array_size(cl); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(cl, i), "folder")), folder) == 0)
            return json_array_get(cl, i);
    return NULL;
}

static long jint(json_t *o, const char *k) { return (long)json_integer_value(json_object_get(o, k)); }

/* ----------------------------------------------------------- end to end */

static const class_spec SPEC[] = {{"alpha", 60, 2}, {"beta", 30, 1}, {"gamma", 5, 1}, {"delta", 2, 1}};

static void counts_and_manifests(void) {
    const char *dir0 = t_tmpdir("select_e2e");
    char dir[4096], out[4096], data[4096];
    snprintf(dir, sizeof dir, "%s", dir0);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    build_store(dir, SPEC, 4, 0, 1);
    int ipc[3] = {1, 10, 50};
    ddps_err err = {{0}};
    CHECKF(run_select(dir, out, ipc, 3, NULL, 0, 32, &err) == 0, "%s", err.msg);
    /* expected images per class and IPC (alpha 120 cands, beta 30, gamma 5, delta 2) */
    int want[3][4] = {{1, 1, 1, 1}, {10, 7, 1, 2}, {50, 30, 5, 2}};
    for (int q = 0; q < 3; q++) {
        char ipcdir[4200];
        snprintf(ipcdir, sizeof ipcdir, "%s/ipc%d", out, ipc[q]);
        int ni = check_manifests(ipcdir, data, 32);
        list_files(ipcdir);
        for (int c = 0; c < 4; c++)
            CHECKF(count_in(ipcdir, SPEC[c].name) == want[q][c], "ipc %d %s: %d", ipc[q], SPEC[c].name,
                   count_in(ipcdir, SPEC[c].name));
        free_files();
        json_t *m = load_json(pjoin(ipcdir, "manifest.json"));
        CHECK(ni == want[q][0] + want[q][1] + want[q][2] + want[q][3]);
        CHECK(jint(json_object_get(m, "counts"), "images") == ni);
        CHECK(strcmp(json_string_value(json_object_get(m, "mode")), ipc[q] <= 10 ? "mosaic" : "single") == 0);
        CHECK(strcmp(json_string_value(json_object_get(m, "model_id")), "fake-model-1") == 0);
        CHECK(json_integer_value(json_object_get(json_object_get(m, "settings"), "patch")) == 32);
        CHECK(strcmp(json_string_value(json_object_get(m, "ddps_version")), DDPS_VERSION) == 0);
        CHECK(strcmp(json_string_value(json_object_get(m, "command")), "select") == 0);
        json_t *ev = json_object_get(m, "model_evaluations");
        json_t *sel = json_object_get(ev, "select"), *tot = json_object_get(ev, "store_totals");
        CHECK(jint(sel, "unet_latents") == 0 && jint(sel, "vae_images") == 0 && jint(sel, "text_prompts") == 0);
        CHECK(jint(tot, "unet_latents") == 1000 && jint(tot, "vae_images") == 200 && jint(tot, "text_prompts") == 2);
        json_t *t = json_object_get(m, "timings");
        CHECK(json_is_real(json_object_get(t, "selection_seconds")) &&
              json_is_real(json_object_get(t, "writing_seconds")));
        /* shortfall recorded */
        json_t *delta = class_entry(m, "delta"), *alpha = class_entry(m, "alpha");
        CHECK(delta && jint(delta, "written_images") == want[q][3] && jint(delta, "needed_images") == ipc[q]);
        CHECK(delta && jint(delta, "shortfall_images") == ipc[q] - want[q][3]);
        CHECK(alpha && jint(alpha, "shortfall_images") == 0 && jint(alpha, "candidates") == 120);
        json_decref(m);
    }
    /* delta at ipc 10 (2 candidates): single-patch images, at full output size */
    ddps_image im;
    CHECK(ddps_image_load(pjoin(out, "ipc10/delta/delta_0001.png"), &im, &err) == 0 && im.w == 32 && im.h == 32);
    ddps_image_free(&im);
    CHECK(!ddps_is_file(pjoin(out, "ipc10/delta/delta_0002.png")));
    /* select is recorded in the store with zero model evaluations */
    ddps_store *s;
    CHECK(ddps_store_open(pjoin(dir, "s.db"), 1, &s, &err) == 0);
    ddps_run_stats tot;
    CHECK(ddps_store_totals(s, &tot, &err) == 0 && tot.unet_latents == 1000 && tot.vae_images == 200);
    ddps_store_close(s);
    sqlite3 *db;
    sqlite3_stmt *st;
    CHECK(sqlite3_open(pjoin(dir, "s.db"), &db) == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(db,
                             "SELECT COUNT(*), total(unet_latents + vae_images + text_prompts) FROM runs "
                             "WHERE command = 'select'",
                             -1, &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1 && sqlite3_column_double(st, 1) == 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    /* no temporary folders left in OUT */
    list_files(out);
    CHECK(g_hidden == 0);
    free_files();
}

/* The manifest's patches follow the rule: recomputed from the store with
 * ddps_select_patches, mosaic i slot j = selected[i + j*n], and the pixels
 * of a mosaic cell are the resized crop of its source. */
static void ordering_and_pixels(void) {
    const char *dir0 = t_tmpdir("select_order");
    char dir[4096], out[4096], data[4096];
    snprintf(dir, sizeof dir, "%s", dir0);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    build_store(dir, SPEC, 1, 0, 1);
    int ipc[2] = {10, 30};
    ddps_err err = {{0}};
    CHECKF(run_select(dir, out, ipc, 2, NULL, 0, 40, &err) == 0, "%s", err.msg);
    ddps_store *s;
    CHECK(ddps_store_open(pjoin(dir, "s.db"), 1, &s, &err) == 0);
    ddps_class_data d;
    CHECK(ddps_store_load_class(s, 1, 0, &d, &err) == 0);
    ddps_store_close(s);
    CHECK(d.n_clusters == 4 && d.n_cand == 120);
    for (int q = 0; q < 2; q++) {
        int needed = ipc[q] <= 10 ? 4 * ipc[q] : ipc[q];
        int *picks = malloc(sizeof(int) * (size_t)needed);
        unsigned char *fill = malloc((size_t)needed);
        int n = ddps_select_patches(&d, needed, 10, picks, fill);
        CHECK(n == needed);
        char ipcdir[4200];
        snprintf(ipcdir, sizeof ipcdir, "%s/ipc%d", out, ipc[q]);
        json_t *m = load_json(pjoin(ipcdir, "manifest.json"));
        json_t *images = json_object_get(m, "images");
        int nimg = (int)json_array_size(images), per = ipc[q] <= 10 ? 4 : 1, bad = 0, fills = 0;
        CHECK(nimg == ipc[q]);
        for (int i = 0; i < nimg; i++) {
            json_t *pts = json_object_get(json_array_get(images, (size_t)i), "patches");
            CHECK((int)json_array_size(pts) == per);
            for (int j = 0; j < per && j < (int)json_array_size(pts); j++) {
                json_t *pt = json_array_get(pts, (size_t)j);
                const ddps_stored_cand *c = &d.cand[picks[i + j * nimg]];
                const char *src = json_string_value(json_object_get(pt, "source"));
                if (strcmp(src, d.images[c->image].relpath) != 0) bad++;
                json_t *box = json_object_get(pt, "box");
                double want[4] = {c->x0, c->y0, c->x1, c->y1}; /* rounded to the nearest pixel */
                for (int e = 0; e < 4; e++)
                    if (json_integer_value(json_array_get(box, (size_t)e)) != lround(want[e])) bad++;
                if (json_integer_value(json_object_get(pt, "cluster_rank")) != c->cluster_rank) bad++;
                if (json_is_true(json_object_get(pt, "fill")) != fill[i + j * nimg]) bad++;
                fills += fill[i + j * nimg];
            }
        }
        CHECKF(bad == 0, "ipc %d: %d patches differ from the rule", ipc[q], bad);
        /* quota: needed / 10 from each of the 4 clusters, the rest filled */
        CHECK(fills == needed - 4 * (needed / 10));
        /* the fill took the best scores among the unused */
        float min_fill = INFINITY, max_unused = -INFINITY;
        unsigned char *used = calloc((size_t)d.n_cand, 1);
        for (int i = 0; i < n; i++) used[picks[i]] = 1;
        for (int i = 0; i < n; i++)
            if (fill[i] && d.cand[picks[i]].score < min_fill) min_fill = d.cand[picks[i]].score;
        for (int i = 0; i < d.n_cand; i++)
            if (!used[i] && d.cand[i].score > max_unused) max_unused = d.cand[i].score;
        CHECK(min_fill >= max_unused);
        free(used);
        /* each mosaic's patches come from the spread of the list: slot 0 of
         * mosaic 0 is the first pick, slot 1 the (n+1)-th */
        if (per == 4) {
            ddps_image mos, src, crop, cell;
            CHECK(ddps_image_load(pjoin(ipcdir, "alpha/alpha_0000.png"), &mos, &err) == 0);
            for (int j = 0; j < 4; j++) {
                const ddps_stored_cand *c = &d.cand[picks[j * nimg]];
                char sp[4096];
                snprintf(sp, sizeof sp, "%s/%s", data, d.images[c->image].relpath);
                CHECK(ddps_image_load(sp, &src, &err) == 0);
                int x0 = (int)lround(c->x0), y0 = (int)lround(c->y0), x1 = (int)lround(c->x1), y1 = (int)lround(c->y1);
                CHECK(ddps_image_crop(&src, x0, y0, x1 - x0, y1 - y0, &crop, &err) == 0);
                CHECK(ddps_image_resize(&crop, 20, 20, &cell, &err) == 0);
                int diff = 0, ox = (j & 1) * 20, oy = (j >> 1) * 20;
                for (int y = 0; y < 20; y++)
                    diff += memcmp(cell.px + (size_t)y * 20 * 3, mos.px + ((size_t)(oy + y) * 40 + ox) * 3, 60) != 0;
                CHECKF(diff == 0, "mosaic cell %d differs in %d rows", j, diff);
                ddps_image_free(&src);
                ddps_image_free(&crop);
                ddps_image_free(&cell);
            }
            ddps_image_free(&mos);
        }
        json_decref(m);
        free(picks);
        free(fill);
    }
    ddps_class_data_free(&d);
}

static void class_subset(void) {
    const char *dir0 = t_tmpdir("select_subset");
    char dir[4096], out[4096];
    snprintf(dir, sizeof dir, "%s", dir0);
    snprintf(out, sizeof out, "%s/out", dir);
    build_store(dir, SPEC, 4, 0, 1);
    int ipc[1] = {10};
    const char *sub[2] = {"gamma", "beta"};
    ddps_err err = {{0}};
    CHECKF(run_select(dir, out, ipc, 1, sub, 2, 32, &err) == 0, "%s", err.msg);
    list_files(pjoin(out, "ipc10"));
    CHECK(count_in("", "beta") == 7 && count_in("", "gamma") == 1 && count_in("", "alpha") == 0 &&
          count_in("", "delta") == 0);
    free_files();
    json_t *m = load_json(pjoin(out, "ipc10/manifest.json"));
    CHECK(json_array_size(json_object_get(m, "classes")) == 2);
    json_decref(m);
    const char *none[1] = {"omega"};
    CHECK(run_select(dir, out, ipc, 1, none, 1, 32, &err) == -1);
    CHECKF(strstr(err.msg, "--classes") && strstr(err.msg, "omega"), "%s", err.msg);
    /* the failed run left the previous set alone */
    CHECK(ddps_is_file(pjoin(out, "ipc10/beta/beta_0006.png")));
}

/* Class names from a hand-edited store cannot steer writes outside OUT. */
static void hostile_names(void) {
    const char *dir0 = t_tmpdir("select_hostile");
    char dir[4096], out[4096];
    snprintf(dir, sizeof dir, "%s", dir0);
    snprintf(out, sizeof out, "%s/sub/out", dir);
    const class_spec spec[] = {{"h1", 4, 2}, {"h2", 4, 2}, {"h3", 4, 2}, {"h4", 4, 2},
                               {"h5", 4, 2}, {"h6", 4, 2}, {"h7", 4, 2}, {"h8", 4, 2}};
    build_store(dir, spec, 8, 0, 1);
    raw_sql(pjoin(dir, "s.db"), "UPDATE classes SET name = '../../evil' WHERE name = 'h1';"
                                "UPDATE classes SET name = '/tmp/abs' WHERE name = 'h2';"
                                "UPDATE classes SET name = '..' WHERE name = 'h3';"
                                "UPDATE classes SET name = '.hidden' WHERE name = 'h4';"
                                "UPDATE classes SET name = '' WHERE name = 'h5';"
                                "UPDATE classes SET name = char(10, 1, 47, 46, 46) WHERE name = 'h6';"
                                "UPDATE classes SET name = CAST(x'2e2e2fff' AS TEXT) WHERE name = 'h7';"
                                "UPDATE classes SET name = '__' WHERE name = 'h8';");
    int ipc[1] = {2};
    ddps_err err = {{0}};
    CHECKF(run_select(dir, out, ipc, 1, NULL, 0, 16, &err) == 0, "%s", err.msg);
    /* nothing but dir/data, dir/s.db* and dir/sub/out/ipc2 */
    list_files(dir);
    int outside = 0;
    for (int i = 0; i < g_nfiles; i++)
        if (strncmp(g_files[i], "data/", 5) != 0 && strncmp(g_files[i], "s.db", 4) != 0 &&
            strncmp(g_files[i], "sub/out/ipc2/", 13) != 0) {
            outside++;
            fprintf(stderr, "unexpected file %s\n", g_files[i]);
        }
    CHECK(outside == 0 && g_nfiles > 0);
    free_files();
    CHECK(!ddps_is_file("/tmp/abs/abs_0000.png") && !ddps_is_file("/tmp/abs_0000.png"));
    /* sanitised, unique, none hidden; classes in name order, so ".." gets
     * "__" and the class really named "__" gets "___2" */
    list_files(pjoin(out, "ipc2"));
    CHECK(g_hidden == 0);
    const char *want[8] = {"_", "___..", "__", "___.._evil", "____", "_hidden", "_tmp_abs", "___2"};
    for (int i = 0; i < 8; i++) CHECKF(count_in("", want[i]) == 2, "folder %s: %d", want[i], count_in("", want[i]));
    CHECK(g_nfiles == 8 * 2 + 2);
    free_files();
    json_t *m = load_json(pjoin(out, "ipc2/manifest.json"));
    json_t *cl = json_object_get(m, "classes");
    CHECK(json_array_size(cl) == 8);
    /* names in the manifest are valid UTF-8 in the reversible escaped form (util/escape.h) */
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(cl, 4), "name")), "../\\xff") == 0);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(cl, 1), "name")), "\\x0a\\x01/..") == 0);
    json_decref(m);
    char ipcdir[4200], data[4200];
    snprintf(ipcdir, sizeof ipcdir, "%s/ipc2", out);
    snprintf(data, sizeof data, "%s/data", dir);
    CHECK(check_manifests(ipcdir, data, 16) == 16);
}

/* A second run replaces the set completely; a failing run leaves the old one. */
static void atomic_replace(void) {
    const char *dir0 = t_tmpdir("select_replace");
    char dir[4096], out[4096], data[4096];
    snprintf(dir, sizeof dir, "%s", dir0);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    build_store(dir, SPEC, 2, 0, 1);
    int ipc[1] = {10};
    ddps_err err = {{0}};
    CHECK(run_select(dir, out, ipc, 1, NULL, 0, 32, &err) == 0);
    t_write(pjoin(out, "ipc10/junk.txt"), "x", 1);
    ddps_select_opts o;
    ddps_select_defaults(&o);
    char spath[4096];
    snprintf(spath, sizeof spath, "%s/s.db", dir);
    o.store_path = spath;
    o.out_dir = out;
    o.ipc = ipc;
    o.n_ipc = 1;
    o.p.output_size = 32;
    o.p.format = "jpg";
    CHECKF(ddps_select_run(&o, &err) == 0, "%s", err.msg);
    CHECK(!ddps_is_file(pjoin(out, "ipc10/junk.txt")));
    CHECK(!ddps_is_file(pjoin(out, "ipc10/alpha/alpha_0000.png")) &&
          ddps_is_file(pjoin(out, "ipc10/alpha/alpha_0000.jpg")));
    CHECK(check_manifests(pjoin(out, "ipc10"), data, 32) == 17);
    /* a source image goes missing: the run fails naming it, the old set stays, no temp left */
    json_t *m = load_json(pjoin(out, "ipc10/manifest.json"));
    const char *used = json_string_value(json_object_get(
        json_array_get(json_object_get(json_array_get(json_object_get(m, "images"), 0), "patches"), 0), "source"));
    char victim[4096];
    snprintf(victim, sizeof victim, "%s/%s", data, used ? used : "?");
    json_decref(m);
    CHECK(remove(victim) == 0);
    o.p.format = "png";
    CHECK(ddps_select_run(&o, &err) == -1);
    CHECKF(strstr(err.msg, victim), "%s", err.msg);
    CHECK(ddps_is_file(pjoin(out, "ipc10/alpha/alpha_0000.jpg")));
    list_files(out);
    CHECK(g_hidden == 0);
    free_files();
    /* a source replaced by another size: refused, the data changed since scoring */
    write_source(victim, 10, 10, 1);
    CHECK(ddps_select_run(&o, &err) == -1);
    CHECKF(strstr(err.msg, victim) && strstr(err.msg, "10x10"), "%s", err.msg);
    /* --data elsewhere */
    o.p.data_root = pjoin(dir, "nowhere");
    CHECK(ddps_select_run(&o, &err) == -1 && strstr(err.msg, "--data "));
}

/* Low-res stores: whole source images, original size, no mosaic. */
static void low_res(void) {
    const char *dir0 = t_tmpdir("select_lowres");
    char dir[4096], out[4096], data[4096];
    snprintf(dir, sizeof dir, "%s", dir0);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    const class_spec spec[] = {{"airplane", 12, 1}, {"cat", 3, 1}};
    build_store(dir, spec, 2, 1, 1);
    int ipc[2] = {1, 10};
    ddps_err err = {{0}};
    CHECKF(run_select(dir, out, ipc, 2, NULL, 0, 224, &err) == 0, "%s", err.msg);
    list_files(pjoin(out, "ipc10"));
    CHECK(count_in("", "airplane") == 10 && count_in("", "cat") == 3);
    free_files();
    list_files(pjoin(out, "ipc1"));
    CHECK(count_in("", "airplane") == 1 && count_in("", "cat") == 1);
    free_files();
    CHECK(check_manifests(pjoin(out, "ipc10"), data, 0) == 13);
    json_t *m = load_json(pjoin(out, "ipc1/manifest.json"));
    CHECK(strcmp(json_string_value(json_object_get(m, "mode")), "low_res") == 0);
    json_t *pt = json_array_get(json_object_get(json_array_get(json_object_get(m, "images"), 0), "patches"), 0);
    const char *src = json_string_value(json_object_get(pt, "source"));
    ddps_image a, b;
    CHECK(ddps_image_load(pjoin(out, "ipc1/airplane/airplane_0000.png"), &a, &err) == 0);
    char sp[4096];
    snprintf(sp, sizeof sp, "%s/%s", data, src);
    CHECK(ddps_image_load(sp, &b, &err) == 0);
    CHECK(a.w == 32 && a.h == 32 && b.w == 32 && memcmp(a.px, b.px, 32 * 32 * 3) == 0);
    ddps_image_free(&a);
    ddps_image_free(&b);
    json_decref(m);
}

/* Unclustered (or stale) classes are clustered by select in memory, as score
 * would cluster them: the same files as after score's clustering, and the
 * store (even a read-only one) is left unclustered. */
static void clusters_on_demand(void) {
    const char *dir0 = t_tmpdir("select_cluster");
    char dir[4096], out[4096];
    snprintf(dir, sizeof dir, "%s", dir0);
    snprintf(out, sizeof out, "%s/out", dir);
    build_store(dir, SPEC, 2, 0, 0);
    int ipc[1] = {20};
    ddps_err err = {{0}};
    char spath[4096], out2[4096];
    snprintf(spath, sizeof spath, "%s/s.db", dir);
    snprintf(out2, sizeof out2, "%s/out2", dir);
    CHECK(chmod(spath, 0444) == 0); /* read-only: select must not need to write */
    CHECKF(run_select(dir, out, ipc, 1, NULL, 0, 16, &err) == 0, "%s", err.msg);
    CHECK(chmod(spath, 0644) == 0);
    ddps_store *s;
    CHECK(ddps_store_open(spath, 1, &s, &err) == 0);
    int needs = 0;
    CHECK(ddps_store_needs_clustering(s, 1, &needs, &err) == 0 && needs == 1);
    ddps_store_close(s);
    json_t *m = load_json(pjoin(out, "ipc20/manifest.json"));
    /* quota 20 / 10 = 2 from each of the 4 clusters (settings "clusters": 4), 12 filled */
    CHECK(jint(class_entry(m, "alpha"), "clusters") == 4);
    CHECK(jint(class_entry(m, "alpha"), "fill_patches") == 12 && jint(class_entry(m, "beta"), "fill_patches") == 12);
    json_decref(m);
    /* the same bytes as from the store clustered the way score clusters it (seed 3 as the settings say) */
    CHECK(ddps_store_open(spath, 0, &s, &err) == 0);
    ddps_class_info *ci;
    int nc;
    CHECK(ddps_store_list_classes(s, &ci, &nc, &err) == 0);
    for (int k = 0; k < nc; k++)
        CHECK(ddps_store_cluster(s, ci[k].id, 4, ddps_class_cluster_seed(3, ci[k].name), &err) == 0);
    ddps_store_free_classes(ci, nc);
    ddps_store_close(s);
    CHECKF(run_select(dir, out2, ipc, 1, NULL, 0, 16, &err) == 0, "%s", err.msg);
    CHECK(t_runv("cd %s && for f in $(find ipc20 -name '*.png' -o -name manifest.csv | sort); do cmp -s $f %s/$f || exit 1; done",
                 out, out2) == 0);
}

/* The comparison rows: --top-clusters 0 (scores alone), random windows and
 * random whole pictures; none of them clusters. */
static void baselines(void) {
    const char *dir0 = t_tmpdir("select_baselines");
    char dir[4096], out[4096], spath[4096];
    snprintf(dir, sizeof dir, "%s", dir0);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(spath, sizeof spath, "%s/s.db", dir);
    build_store(dir, SPEC, 2, 0, 0); /* alpha: 60 pictures of 2 windows, beta: 30 of 1; not clustered */
    int ipc[2] = {2, 20};
    ddps_err err = {{0}};
    ddps_select_opts o;
    ddps_select_defaults(&o);
    o.store_path = spath, o.out_dir = out, o.ipc = ipc, o.n_ipc = 2, o.p.output_size = 16;

    /* top_clusters 0: the best scores in order, all fill, and no clustering */
    o.p.top_clusters = 0;
    CHECKF(ddps_select_run(&o, &err) == 0, "%s", err.msg);
    ddps_store *s;
    CHECK(ddps_store_open(spath, 1, &s, &err) == 0);
    int needs = 0;
    CHECK(ddps_store_needs_clustering(s, 1, &needs, &err) == 0 && needs == 1);
    ddps_class_data d;
    CHECK(ddps_store_load_class(s, 1, 0, &d, &err) == 0 && d.n_cand == 120);
    ddps_store_close(s);
    json_t *m = load_json(pjoin(out, "ipc20/manifest.json"));
    CHECK(jint(class_entry(m, "alpha"), "fill_patches") == 20);
    float best[20], prev = INFINITY;
    int nb = 0;
    json_t *ims = json_object_get(m, "images"), *im;
    size_t i;
    json_array_foreach(ims, i, im) {
        if (strcmp(json_string_value(json_object_get(im, "class")), "alpha") != 0) continue;
        json_t *pt = json_array_get(json_object_get(im, "patches"), 0);
        best[nb] = (float)json_real_value(json_object_get(pt, "score"));
        CHECK(best[nb] <= prev); /* single patches in score order */
        prev = best[nb++];
    }
    CHECK(nb == 20);
    /* ... and they are the class's 20 best */
    int better = 0;
    for (int c = 0; c < d.n_cand; c++) better += d.cand[c].score > best[19];
    CHECK(better == 19);
    json_decref(m);

    /* random windows: the scored window size anywhere, mosaics at IPC 2 */
    o.p.top_clusters = 10;
    o.p.baseline = "random-windows";
    o.p.seed = 5;
    CHECKF(ddps_select_run(&o, &err) == 0, "%s", err.msg);
    m = load_json(pjoin(out, "ipc2/manifest.json"));
    CHECK(strcmp(json_string_value(json_object_get(m, "baseline")), "random-windows") == 0);
    CHECK(strcmp(json_string_value(json_object_get(m, "mode")), "mosaic") == 0);
    json_decref(m);
    m = load_json(pjoin(out, "ipc20/manifest.json"));
    CHECK(jint(m, "seed") == 5);
    int moved = 0, n_win = 0, sources = 0;
    char seen[64][64];
    json_array_foreach(json_object_get(m, "images"), i, im) {
        json_t *pt = json_array_get(json_object_get(im, "patches"), 0), *b = json_object_get(pt, "box");
        long x0 = (long)json_integer_value(json_array_get(b, 0)), y0 = (long)json_integer_value(json_array_get(b, 1));
        long x1 = (long)json_integer_value(json_array_get(b, 2)), y1 = (long)json_integer_value(json_array_get(b, 3));
        const char *src = json_string_value(json_object_get(pt, "source"));
        int w = 0, h = 0; /* the fixture: even pictures 64x48, odd 48x64 */
        int num = atoi(strstr(src, "img") + 3);
        w = num % 2 ? 48 : 64, h = num % 2 ? 64 : 48;
        CHECKF(x1 - x0 == 30 && y1 - y0 == 30 && x0 >= 0 && y0 >= 0 && x1 <= w && y1 <= h, "%s %ld %ld %ld %ld", src,
               x0, y0, x1, y1);
        moved += x0 != 4 || y0 != 2; /* not the stored box (3.6, 2.4) */
        CHECK(jint(pt, "cluster") == -1);
        n_win++;
        /* each picture once before any twice: beta has 30, so its 20 are distinct */
        if (strcmp(json_string_value(json_object_get(im, "class")), "beta") == 0) {
            for (int q = 0; q < sources; q++) CHECKF(strcmp(seen[q], src) != 0, "%s twice", src);
            snprintf(seen[sources++], 64, "%s", src);
        }
    }
    CHECK(n_win == 40 && sources == 20 && moved > 30);
    json_decref(m);
    /* the same seed gives the same set; another seed another */
    ddps_image a, b;
    CHECK(ddps_image_load(pjoin(out, "ipc20/beta/beta_0007.png"), &a, &err) == 0);
    CHECKF(ddps_select_run(&o, &err) == 0, "%s", err.msg);
    CHECK(ddps_image_load(pjoin(out, "ipc20/beta/beta_0007.png"), &b, &err) == 0);
    CHECK(a.w == b.w && memcmp(a.px, b.px, (size_t)a.w * a.h * 3) == 0);
    ddps_image_free(&b);
    o.p.seed = 6;
    CHECKF(ddps_select_run(&o, &err) == 0, "%s", err.msg);
    CHECK(ddps_image_load(pjoin(out, "ipc20/beta/beta_0007.png"), &b, &err) == 0);
    CHECK(memcmp(a.px, b.px, (size_t)a.w * a.h * 3) != 0);
    ddps_image_free(&a);
    ddps_image_free(&b);

    /* random images: whole pictures (centre square), never mosaics, each once; beta has 30 for IPC 40 */
    int ipc40[2] = {2, 40};
    o.ipc = ipc40;
    o.p.baseline = "random-images";
    CHECKF(ddps_select_run(&o, &err) == 0, "%s", err.msg);
    m = load_json(pjoin(out, "ipc2/manifest.json"));
    CHECK(strcmp(json_string_value(json_object_get(m, "mode")), "single") == 0);
    json_decref(m);
    m = load_json(pjoin(out, "ipc40/manifest.json"));
    CHECK(jint(class_entry(m, "alpha"), "written_images") == 40 && jint(class_entry(m, "beta"), "written_images") == 30);
    CHECK(jint(class_entry(m, "beta"), "shortfall_images") == 10);
    json_array_foreach(json_object_get(m, "images"), i, im) {
        json_t *b2 = json_object_get(json_array_get(json_object_get(im, "patches"), 0), "box");
        long x0 = (long)json_integer_value(json_array_get(b2, 0)), y0 = (long)json_integer_value(json_array_get(b2, 1));
        long x1 = (long)json_integer_value(json_array_get(b2, 2)), y1 = (long)json_integer_value(json_array_get(b2, 3));
        CHECK(x1 - x0 == 48 && y1 - y0 == 48 && ((x0 == 8 && y0 == 0) || (x0 == 0 && y0 == 8)));
    }
    json_decref(m);
    ddps_class_data_free(&d);

    /* refused: an unknown name (usage, before anything), random windows of a low-res store (data) */
    o.p.baseline = "random";
    CHECK(ddps_select_run(&o, &err) == -1 && err.kind == DDPS_KIND_USAGE && strstr(err.msg, "--baseline random:"));
    const char *dir1 = t_tmpdir("select_baselines_lowres");
    char ldir[4096], lout[4096], lpath[4096];
    snprintf(ldir, sizeof ldir, "%s", dir1);
    snprintf(lout, sizeof lout, "%s/out", ldir);
    snprintf(lpath, sizeof lpath, "%s/s.db", ldir);
    const class_spec spec[] = {{"airplane", 4, 1}};
    build_store(ldir, spec, 1, 1, 1);
    o.store_path = lpath, o.out_dir = lout, o.p.baseline = "random-windows";
    CHECK(ddps_select_run(&o, &err) == -1 && err.kind == DDPS_KIND_DATA && strstr(err.msg, "low-res"));
    CHECK(!ddps_is_dir(lout));
}

static void cli(void) {
    const char *dir0 = t_tmpdir("select_cli");
    char dir[4096], cmd[16384];
    snprintf(dir, sizeof dir, "%s", dir0);
    build_store(dir, SPEC, 3, 0, 1);
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "%s select --store '%s/s.db' --out '%s/out' --ipc 1,10 --output-size 32 --threads 2",
             DDPS_BIN, dir, dir);
    int rc = t_run(cmd, &out);
    CHECKF(rc == 0, "%s", out);
    CHECKF(strstr(out, "selection") && strstr(out, "writing") && strstr(out, "ipc 10"), "%s", out);
    /* the shortfall is one warning line per class */
    CHECKF(strstr(out, "warning: ipc 10: class gamma has 5 candidates for 40 patches: writing 1 of 10 images"), "%s",
           out);
    CHECK(!strstr(out, "class alpha has"));
    free(out);
    CHECK(ddps_is_file(pjoin(dir, "out/ipc10/manifest.csv")) && ddps_is_file(pjoin(dir, "out/ipc1/manifest.json")));
    struct {
        const char *args, *expect;
    } bad[] = {
        {"--out x --ipc 1", "ddps select: --store"},
        {"--store S --ipc 1", "ddps select: --out"},
        {"--store S --out O", "ddps select: --ipc"},
        {"--store S --out O --ipc 0", "--ipc 0"},
        {"--store S --out O --ipc 1,x", "--ipc 1,x"},
        {"--store S --out O --ipc 1 --format gif", "--format gif"},
        {"--store S --out O --ipc 1 --output-size 1", "--output-size 1"},
        {"--store S --out O --ipc 1 --top-clusters -1", "--top-clusters -1"},
        {"--store S --out O --ipc 1 --classes a,,b", "--classes a,,b"},
        {"--store S --out O --ipc 1 --bogus 3", "--bogus"},
        {"--store /nonexistent/s.db --out O --ipc 1", "/nonexistent/s.db"},
        {"--store S --out O --ipc 1 --classes nope", "nope"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char args[4096];
        const char *a = bad[i].args;
        size_t o = 0;
        for (; *a && o < sizeof args - 300; a++) {
            if (a[0] == 'S' && (a[1] == ' ' || !a[1]) && a[-1] == ' ')
                o += (size_t)snprintf(args + o, sizeof args - o, "'%s/s.db'", dir);
            else if (a[0] == 'O' && (a[1] == ' ' || !a[1]) && a[-1] == ' ')
                o += (size_t)snprintf(args + o, sizeof args - o, "'%s/out2'", dir);
            else
                args[o++] = *a;
        }
        args[o] = 0;
        snprintf(cmd, sizeof cmd, "%s select %s", DDPS_BIN, args);
        rc = t_run(cmd, &out);
        /* usage errors exit 2; a store or class that cannot be used exits 1 */
        int want = strstr(bad[i].args, "nonexistent") ? 1 : 2; /* --classes nope: usage (issue 20) */
        CHECKF(rc == want && strstr(out, bad[i].expect) && strncmp(out, "ddps select: ", 13) == 0 &&
                   strchr(out, '\n') == out + strlen(out) - 1,
               "%s -> rc %d: %s", bad[i].args, rc, out);
        free(out);
    }
    snprintf(cmd, sizeof cmd, "%s select --help", DDPS_BIN);
    rc = t_run(cmd, &out);
    CHECK(rc == 0 && strstr(out, "--store") && strstr(out, "--mosaic-max-ipc"));
    free(out);
}

/* ImageWoof-sized store (10 classes x 900 images x 3 candidates): loading
 * and selection take well under a second. Sources are links to one image
 * per class. */
static void imagewoof_speed(void) {
    const char *dir0 = t_tmpdir("select_speed");
    char dir[4096], data[4096], spath[4096], out[4096];
    snprintf(dir, sizeof dir, "%s", dir0);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(spath, sizeof spath, "%s/s.db", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    ddps_store *s;
    ddps_err err = {{0}};
    CHECK(ddps_store_open(spath, 0, &s, &err) == 0);
    CHECK(ddps_store_bind(s, "{\"low_res\": false}", "m", &err) == 0);
    CHECK(ddps_store_set_meta(s, "data_root", data, &err) == 0);
    ddps_rng rng;
    ddps_rng_seed(&rng, 5);
    enum { CLASSES = 10, PER = 900, CAND = 3, D = 16 };
    float feat[CAND][D];
    for (int c = 0; c < CLASSES; c++) {
        char name[32], folder[4096], first[4096];
        snprintf(name, sizeof name, "n0208%04d", c);
        int cid;
        CHECK(ddps_store_class_id(s, name, NULL, NULL, &cid, &err) == 0);
        snprintf(folder, sizeof folder, "%s/%s", data, name);
        CHECK(ddps_mkdirs(folder, &err) == 0);
        snprintf(first, sizeof first, "%s/src.png", folder);
        write_source(first, 64, 48, c);
        for (int i = 0; i < PER; i++) {
            char rel[64], full[4096];
            snprintf(rel, sizeof rel, "%s/%05d.JPEG", name, i);
            snprintf(full, sizeof full, "%s/%s", data, rel);
            CHECK(symlink("src.png", full) == 0);
            ddps_candidate cand[CAND];
            for (int k = 0; k < CAND; k++) {
                for (int d = 0; d < D; d++) feat[k][d] = (float)ddps_rng_normal(&rng);
                cand[k] = (ddps_candidate){{k, k, 40 + k, 40 + k, 0, 0, 0, 0, (float)ddps_rng_uniform(&rng)}, feat[k]};
            }
            ddps_image_result r = {cid, rel, 64, 48, 341, 256, 0.5f, CAND, cand, D, 0.1};
            if (ddps_store_put_image(s, &r, &err) != 0) {
                CHECKF(0, "%s", err.msg);
                break;
            }
        }
        CHECK(ddps_store_cluster(s, cid, 32, 0, &err) == 0);
    }
    ddps_store_close(s);
    int ipc[1] = {10};
    CHECKF(run_select(dir, out, ipc, 1, NULL, 0, 32, &err) == 0, "%s", err.msg);
    json_t *m = load_json(pjoin(out, "ipc10/manifest.json"));
    json_t *t = json_object_get(m, "timings");
    double load = json_real_value(json_object_get(t, "load_seconds")),
           sel = json_real_value(json_object_get(t, "selection_seconds"));
    fprintf(stderr, "   ImageWoof-sized store (27000 candidates): load %.3f s, selection %.4f s, writing %.3f s\n",
            load, sel, json_real_value(json_object_get(t, "writing_seconds")));
    CHECKF(load + sel < 1.0, "load %.3f + selection %.3f s", load, sel);
    CHECK(jint(json_object_get(m, "counts"), "images") == 100);
    json_decref(m);
}

int main(void) {
    TEST(rule_quota_and_fill);
    TEST(rule_layout);
    TEST(folder_names);
    TEST(counts_and_manifests);
    TEST(ordering_and_pixels);
    TEST(class_subset);
    TEST(hostile_names);
    TEST(atomic_replace);
    TEST(low_res);
    TEST(clusters_on_demand);
    TEST(baselines);
    TEST(cli);
    TEST(imagewoof_speed);
    return t_done();
}
