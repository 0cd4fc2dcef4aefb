/* `ddps report` on a store scored from imagewoof-mini with the golden tiny
 * model (two classes, a few images each, one broken file): the files, the
 * distilled images byte-identical to `ddps select`, the stored Stage-I map
 * reproducing the stored best window and score exactly, the written heatmap
 * brightest at the best window, a store without maps, bad invocations,
 * `distill --report`, and a real browser (headless chromium through
 * tests/report_browser.py) loading every page, image and link; it saves a
 * screenshot of a class page in the build tree (tmp/report_shot/class.png). */
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/image.h"
#include "pipeline/store.h"
#include "testlib.h"

#if defined(__SANITIZE_ADDRESS__)
#define SLOW_BUILD 1
#else
#define SLOW_BUILD 0
#endif

#define SIZE 128
#define PATCH 96
#define STRIDE 16

static char model[4096], data[4096], store[4096], report[4096], browser[4096];
static const char *classes[2] = {"n02086240", "n02087394"};
static int per_class = SLOW_BUILD ? 3 : 5;

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    b[got] = 0;
    fclose(f);
    return b;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* A small data root: a few images of two classes and a file that is not an image. */
static int setup(void) {
    const char *d = t_tmpdir("report_data");
    snprintf(data, sizeof data, "%s", d);
    for (int c = 0; c < 2; c++) {
        if (t_runv("mkdir -p '%s/%s' && ls '%s/%s' | sort | head -n %d | while read f; do cp '%s/%s/'\"$f\" '%s/%s/'; done",
                data, classes[c], t_shared("data/imagewoof-mini/train"), classes[c], per_class,
                t_shared("data/imagewoof-mini/train"), classes[c], data, classes[c]) != 0)
            return -1;
    }
    char bad[4600];
    snprintf(bad, sizeof bad, "%s/%s/broken.jpg", data, classes[0]);
    t_write(bad, "\xff\xd8\xff\xe0 not really a JPEG", 22);
    snprintf(store, sizeof store, "%s/s.sqlite", t_tmpdir("report_store"));
    return t_runv("%s score --data %s --model %s --store %s --size %d --patch %d --stride %d --patches-per-image 2",
               DDPS_BIN, data, model, store, SIZE, PATCH, STRIDE);
}

static void writes_report(void) {
    snprintf(report, sizeof report, "%s", t_tmpdir("report_out"));
    char cmd[16384], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s report --store %s --out %s --ipc 1", DDPS_BIN, store, report);
    int rc = t_run(cmd, &out);
    CHECKF(rc == 0, "%s", out ? out : "");
    /* the writing time, as measured by the report itself */
    const char *m = out ? strstr(out, "s per class") : NULL;
    if (m) {
        const char *p = m;
        while (p > out && p[-1] != '(') p--;
        double per = atof(p);
        fprintf(stderr, "   report writing: %.3f s per class (%d images per class)\n", per, per_class);
        if (!SLOW_BUILD) CHECKF(per < 1.0, "%.3f s per class", per);
    }
    CHECK(m != NULL);
    free(out);
    const char *files[] = {"index.html", "style.css", "c1/index.html", "c2/index.html",
                           "distilled/ipc1/manifest.json", "c1/src/0.jpg", "c1/map/0.png", "c1/patch/0.jpg"};
    char p[8192];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", report, files[i]);
        CHECKF(exists(p), "%s", p);
    }
    /* no network: nothing is fetched from http(s), no external script */
    const char *pages[] = {"index.html", "c1/index.html", "c2/index.html"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", report, pages[i]);
        char *h = slurp(p);
        CHECKF(h != NULL, "%s", p);
        if (!h) continue;
        CHECKF(!strstr(h, "src=\"http") && !strstr(h, "href=\"http") && !strstr(h, "<script src") &&
                   !strstr(h, "url(http") && !strstr(h, "@import"),
               "%s refers to the network", p);
        if (i == 0) {
            CHECK(strstr(h, "n02086240") && strstr(h, "n02087394") && strstr(h, "id=\"q\""));
            CHECK(strstr(h, "tiny-sd") != NULL);             /* model folder and identity */
            CHECK(strstr(h, "broken.jpg") != NULL);          /* skipped, with the reason */
            CHECK(strstr(h, "score</td>") != NULL);          /* the scoring run */
        } else {
            CHECK(strstr(h, "loading=\"lazy\"") && strstr(h, "<svg") && strstr(h, "class=\"legend\""));
            CHECK(strstr(h, "rank 1") != NULL);
            if (i == 1) CHECK(strstr(h, "broken.jpg") != NULL);
        }
        free(h);
    }
    /* the distilled images are exactly what `ddps select --ipc 1` writes */
    const char *sel = t_tmpdir("report_select");
    CHECK(t_runv("%s select --store %s --out %s --ipc 1", DDPS_BIN, store, sel) == 0);
    for (int c = 0; c < 2; c++)
        CHECKF(t_runv("diff -r '%s/ipc1/%s' '%s/distilled/ipc1/%s'", sel, classes[c], report, classes[c]) == 0, "%s",
               classes[c]);
}

/* Bilinear (align_corners = false) upsampling of an h x w map to H x W, as Stage I does. */
static void upsample(const float *m, int h, int w, int H, int W, double *D) {
    for (int y = 0; y < H; y++) {
        double sy = (y + 0.5) * h / H - 0.5;
        if (sy < 0) sy = 0;
        int y0 = (int)sy, y1 = y0 + 1 < h ? y0 + 1 : y0;
        double fy = sy - y0;
        for (int x = 0; x < W; x++) {
            double sx = (x + 0.5) * w / W - 0.5;
            if (sx < 0) sx = 0;
            int x0 = (int)sx, x1 = x0 + 1 < w ? x0 + 1 : x0;
            double fx = sx - x0;
            D[(size_t)y * W + x] = (m[y0 * w + x0] * (1 - fx) + m[y0 * w + x1] * fx) * (1 - fy) +
                                   (m[y1 * w + x0] * (1 - fx) + m[y1 * w + x1] * fx) * fy;
        }
    }
}

/* Best window of a map by its mean over k x k windows at stride s; returns the mean. */
static double best_window(const double *v, int W, int H, int kw, int kh, int s, int *bx, int *by) {
    double best = -INFINITY;
    for (int y = 0; y + kh <= H; y += s)
        for (int x = 0; x + kw <= W; x += s) {
            double a = 0;
            for (int j = 0; j < kh; j++)
                for (int i = 0; i < kw; i++) a += v[(size_t)(y + j) * W + x + i];
            a /= (double)kw * kh;
            if (a > best) best = a, *bx = x, *by = y;
        }
    return best;
}

/* The stored map gives back the stored best window and its score (D = upsample(map), S = avg_pool(D)),
 * and the written heatmap is brightest (R+G+B) there. */
static void heatmaps(void) {
    ddps_store *s;
    ddps_err err;
    CHECKF(ddps_store_open(store, 1, &s, &err) == 0, "%s", err.msg);
    ddps_class_info *ci;
    int nc, checked = 0, exact = 0;
    CHECK(ddps_store_list_classes(s, &ci, &nc, &err) == 0 && nc == 2);
    for (int k = 0; k < nc; k++) {
        ddps_class_data d;
        ddps_stored_map *maps;
        CHECK(ddps_store_load_class(s, ci[k].id, 0, &d, &err) == 0);
        CHECKF(ddps_store_load_maps(s, &d, &maps, &err) == 0, "%s", err.msg);
        for (int c = 0; c < d.n_cand; c++) {
            const ddps_stored_cand *cd = &d.cand[c];
            const ddps_stored_image *im = &d.images[cd->image];
            const ddps_stored_map *m = &maps[cd->image];
            if (cd->idx != 0) continue;
            CHECKF(m->data != NULL, "%s has no map", im->relpath);
            if (!m->data) continue;
            double *D = malloc((size_t)im->rw * im->rh * sizeof *D);
            upsample(m->data, m->h, m->w, im->rh, im->rw, D);
            int bx = -1, by = -1;
            double best = best_window(D, im->rw, im->rh, PATCH, PATCH, STRIDE, &bx, &by);
            CHECKF(bx == cd->rx && by == cd->ry, "%s: best window from the map (%d,%d), stored (%d,%d)", im->relpath, bx,
                   by, cd->rx, cd->ry);
            CHECKF(fabs(best - cd->score) <= 1e-4 * fabs(cd->score) + 1e-7, "%s: score from the map %.9g, stored %.9g",
                   im->relpath, best, cd->score);
            free(D);
            /* the heatmap image */
            char p[8192];
            snprintf(p, sizeof p, "%s/c%d/map/%d.png", report, k + 1, cd->image);
            ddps_image h;
            CHECKF(ddps_image_load(p, &h, &err) == 0, "%s", err.msg);
            if (!h.px) continue;
            double *v = malloc((size_t)h.w * h.h * sizeof *v);
            for (int i = 0; i < h.w * h.h; i++) v[i] = h.px[3 * i] + h.px[3 * i + 1] + h.px[3 * i + 2];
            /* Mean R+G+B of the heatmap over each window of the stride grid (mapped to the
             * thumbnail): the stored best window is the brightest, up to 8-bit rounding. */
            double tx = (double)h.w / im->rw, ty = (double)h.h / im->rh, top = -1, at_best = -1;
            int tgx = -1, tgy = -1;
            for (int gy = 0; gy + PATCH <= im->rh; gy += STRIDE)
                for (int gx = 0; gx + PATCH <= im->rw; gx += STRIDE) {
                    int x0 = (int)lround(gx * tx), x1 = (int)lround((gx + PATCH) * tx);
                    int y0 = (int)lround(gy * ty), y1 = (int)lround((gy + PATCH) * ty);
                    double a = 0;
                    for (int y = y0; y < y1 && y < h.h; y++)
                        for (int x = x0; x < x1 && x < h.w; x++) a += v[(size_t)y * h.w + x];
                    a /= (double)(x1 - x0) * (y1 - y0);
                    if (a > top) top = a, tgx = gx, tgy = gy;
                    if (gx == cd->rx && gy == cd->ry) at_best = a;
                }
            CHECKF(at_best >= top - 0.01 * 765, "%s: brightest window of %s at (%d,%d) (%.1f), best window (%d,%d) (%.1f)",
                   p, im->relpath, tgx, tgy, top, cd->rx, cd->ry, at_best);
            if (tgx == cd->rx && tgy == cd->ry) exact++;
            /* the brightest pixel is white, the darkest black (the image's own range) */
            double lo = 1e9, hi = -1;
            for (int i = 0; i < h.w * h.h; i++) lo = fmin(lo, v[i]), hi = fmax(hi, v[i]);
            CHECK(lo == 0 && hi == 765);
            free(v);
            ddps_image_free(&h);
            checked++;
        }
        ddps_store_free_maps(maps, d.n_images);
        ddps_class_data_free(&d);
    }
    CHECKF(checked == 2 * per_class, "%d images checked", checked);
    fprintf(stderr, "   %d of %d heatmaps brightest exactly at the best window, the others within 1%%\n", exact, checked);
    CHECK(exact * 2 >= checked);
    ddps_store_free_classes(ci, nc);
    ddps_store_close(s);
}

/* A store without the maps table (as written before maps existed): the report works and says so. */
static void store_without_maps(void) {
    char old[4600];
    snprintf(old, sizeof old, "%s/old.sqlite", t_tmpdir("report_old"));
    CHECK(t_runv("cp '%s' '%s'", store, old) == 0);
    sqlite3 *db;
    CHECK(sqlite3_open(old, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "DROP TABLE maps", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    ddps_store *s;
    ddps_err err;
    int has = 1;
    CHECK(ddps_store_open(old, 1, &s, &err) == 0 && ddps_store_has_maps(s, &has, &err) == 0 && has == 0);
    ddps_store_close(s);
    const char *out = t_tmpdir("report_old_out");
    CHECK(t_runv("%s report --store %s --out %s --ipc 1", DDPS_BIN, old, out) == 0);
    char p[8192];
    snprintf(p, sizeof p, "%s/c1/index.html", out);
    char *h = slurp(p);
    CHECK(h && strstr(h, "Heatmaps unavailable") && !strstr(h, "class=\"heat\""));
    free(h);
    snprintf(p, sizeof p, "%s/index.html", out);
    h = slurp(p);
    CHECK(h && strstr(h, "unavailable"));
    free(h);
    snprintf(p, sizeof p, "%s/c1/map/0.png", out);
    CHECK(!exists(p));
}

/* The store's map API: checked on the way in and on the way out; the run log. */
static void map_api(void) {
    char path[4600];
    snprintf(path, sizeof path, "%s/m.sqlite", t_tmpdir("report_maps"));
    ddps_store *s;
    ddps_err err;
    CHECK(ddps_store_open(path, 0, &s, &err) == 0);
    int cid;
    CHECK(ddps_store_class_id(s, "a", NULL, NULL, &cid, &err) == 0);
    float feat[4] = {1, 0, 0, 0}, map[6] = {0.5f, -1, 2, 3, 4.25f, 5};
    ddps_candidate c = {{0, 0, 10, 10, 0, 0, 8, 8, 0.5f}, feat};
    ddps_image_result r = {cid, "a/x.png", 20, 10, 16, 8, 0.1f, 1, &c, 4, 0.1};
    map[2] = NAN;
    CHECK(ddps_store_put_image_map(s, &r, map, 2, 3, &err) != 0 && strstr(err.msg, "a/x.png"));
    map[2] = 2;
    CHECK(ddps_store_put_image_map(s, &r, map, 0, 3, &err) != 0 && strstr(err.msg, "map size"));
    CHECKF(ddps_store_put_image_map(s, &r, map, 2, 3, &err) == 0, "%s", err.msg);
    ddps_image_result r2 = {cid, "a/y.png", 20, 10, 16, 8, 0.1f, 1, &c, 4, 0.1};
    CHECK(ddps_store_put_image(s, &r2, &err) == 0); /* without a map */
    ddps_class_data d;
    ddps_stored_map *m = NULL;
    CHECK(ddps_store_load_class(s, cid, 0, &d, &err) == 0 && d.n_images == 2);
    CHECK(ddps_store_load_maps(s, &d, &m, &err) == 0);
    CHECK(m && m[0].h == 2 && m[0].w == 3 && memcmp(m[0].data, map, sizeof map) == 0 && !m[1].data);
    ddps_store_free_maps(m, d.n_images);
    ddps_store_close(s);
    /* a hand-edited map BLOB */
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "UPDATE maps SET data = x'0000'", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    CHECK(ddps_store_open(path, 1, &s, &err) == 0);
    m = NULL;
    CHECK(ddps_store_load_maps(s, &d, &m, &err) != 0 && strstr(err.msg, "m.sqlite") && strstr(err.msg, "a/x.png") &&
          m == NULL);
    ddps_class_data_free(&d);
    ddps_store_close(s);
    /* the run log of the scored store */
    CHECK(ddps_store_open(store, 1, &s, &err) == 0);
    ddps_stored_run *runs;
    int n;
    CHECK(ddps_store_list_runs(s, &runs, &n, &err) == 0 && n >= 1);
    if (n >= 1)
        CHECKF(strcmp(runs[0].command, "score") == 0 && runs[0].st.images_scored == 2 * per_class &&
                   runs[0].st.images_bad == 1 && runs[0].st.unet_latents > 0 && runs[0].finished[0] == '2',
               "%s %ld %ld", runs[0].command, runs[0].st.images_scored, runs[0].st.images_bad);
    ddps_store_free_runs(runs, n);
    ddps_store_close(s);
}

static void bad_invocations(void) {
    char cmd[8192], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s report --out %s/x", DDPS_BIN, t_tmpdir("report_bad"));
    CHECK(t_run(cmd, &out) == 2 && strstr(out, "--store"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s report --store %s/nope.sqlite --out %s/x", DDPS_BIN, t_tmpdir("report_bad"),
             t_tmpdir("report_bad"));
    CHECK(t_run(cmd, &out) == 1 && strstr(out, "nope.sqlite"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s report --store %s/c1/index.html --out %s/x", DDPS_BIN, report, t_tmpdir("report_bad"));
    CHECK(t_run(cmd, &out) == 1 && strstr(out, "index.html"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s report --store %s --out %s/x --ipc 0", DDPS_BIN, store, t_tmpdir("report_bad"));
    CHECK(t_run(cmd, &out) == 2 && strstr(out, "--ipc"));
    free(out);
}

/* `distill --report` on the already scored store (nothing left to score). */
static void distill_report(void) {
    const char *out = t_tmpdir("report_distill");
    CHECK(t_runv("%s distill --data %s --model %s --store %s --out %s --ipc 1 --size %d --patch %d --stride %d "
              "--patches-per-image 2 --report",
              DDPS_BIN, data, model, store, out, SIZE, PATCH, STRIDE) == 0);
    char p[8192];
    snprintf(p, sizeof p, "%s/report/index.html", out);
    CHECKF(exists(p), "%s", p);
    snprintf(p, sizeof p, "%s/report/c2/index.html", out);
    CHECKF(exists(p), "%s", p);
    snprintf(p, sizeof p, "%s/ipc1/manifest.json", out);
    CHECKF(exists(p), "%s", p);
}

/* Previews decode JPEGs at 1/2, 1/4, 1/8 (DCT scaling): sizes round up, the picture stays the same. */
static void reduced_jpeg(void) {
    char p[8192];
    snprintf(p, sizeof p, "%s", t_shared("data/imagewoof-mini/train/n02086240/n02086240_11373.JPEG"));
    char *buf = NULL;
    size_t len = 0;
    ddps_err err;
    ddps_image full, r;
    CHECKF(ddps_image_load(p, &full, &err) == 0, "%s", err.msg);
    FILE *f = fopen(p, "rb");
    if (!f || !full.px) {
        if (f) fclose(f);
        return;
    }
    fseek(f, 0, SEEK_END);
    len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(len);
    CHECK(fread(buf, 1, len, f) == len);
    fclose(f);
    double mean_full = 0;
    for (long i = 0; i < (long)full.w * full.h * 3; i++) mean_full += full.px[i];
    mean_full /= (double)full.w * full.h * 3;
    for (int d = 1; d <= 8; d *= 2) {
        CHECKF(ddps_image_decode_jpeg_reduced((const uint8_t *)buf, len, p, d, &r, &err) == 0, "%s", err.msg);
        CHECK(r.w == (full.w + d - 1) / d && r.h == (full.h + d - 1) / d);
        double mean = 0;
        for (long i = 0; i < (long)r.w * r.h * 3; i++) mean += r.px[i];
        mean /= (double)r.w * r.h * 3;
        CHECKF(fabs(mean - mean_full) < 2, "1/%d: mean %.2f, full %.2f", d, mean, mean_full);
        if (d == 1) CHECK(memcmp(r.px, full.px, (size_t)full.w * full.h * 3) == 0);
        ddps_image_free(&r);
    }
    CHECK(ddps_image_decode_jpeg_reduced((const uint8_t *)buf, len, p, 3, &r, &err) != 0 && strstr(err.msg, "1/3"));
    buf[len / 2] ^= 0x55; /* corrupt data stays an error at any scale, never a partial image */
    for (int i = 0; i < 64; i++) buf[len / 2 + i] = (char)0xff;
    CHECK(ddps_image_decode_jpeg_reduced((const uint8_t *)buf, len / 2 + 64, p, 4, &r, &err) != 0 && r.px == NULL);
    free(buf);
    ddps_image_free(&full);
}

static void in_browser(void) {
    char shot[4600], cmd[16384], *out = NULL;
    snprintf(shot, sizeof shot, "%s/class.png", t_tmpdir("report_shot"));
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' '%s' c1/index.html", browser, report, shot);
    int rc = t_run(cmd, &out);
    fprintf(stderr, "%s", out ? out : "");
    free(out);
    if (rc == 77) {
        t_skip("chromium is not installed");
        return;
    }
    CHECKF(rc == 0, "report_browser.py exited %d", rc);
    ddps_image img;
    ddps_err err;
    CHECKF(ddps_image_load(shot, &img, &err) == 0, "%s", err.msg);
    CHECK(img.w == 1100 && img.h > 200);
    ddps_image_free(&img);
    fprintf(stderr, "   screenshot: %s\n", shot);
}

/* Parts: the default one (everything but the browser) and "browser" (the
 * report opened in headless chromium; skipped without chromium). */
int main(int argc, char **argv) {
    int browser_part = strcmp(t_part(argc, argv), "browser") == 0;
    snprintf(model, sizeof model, "%s", t_shared("golden/tiny-sd"));
    if (!exists(model) || !exists(t_shared("data/imagewoof-mini/train"))) {
        t_skip("%s or the imagewoof-mini data is missing", model);
        return t_done();
    }
    snprintf(browser, sizeof browser, "%s", __FILE__);
    char *slash = strrchr(browser, '/');
    snprintf(slash ? slash + 1 : browser, sizeof browser - (size_t)(slash ? slash + 1 - browser : 0),
             "report_browser.py");
    if (setup() != 0) {
        fprintf(stderr, "could not score the test store\n");
        return 1;
    }
    TEST(writes_report);
    if (browser_part) {
        TEST(in_browser);
        return t_done();
    }
    TEST(heatmaps);
    TEST(store_without_maps);
    TEST(map_api);
    TEST(bad_invocations);
    TEST(distill_report);
    TEST(reduced_jpeg);
    return t_done();
}
