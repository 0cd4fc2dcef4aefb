/* End to end: `ddps distill / score / select` on real images with the golden
 * tiny model. Counts, sizes, manifests against the files, determinism, a
 * run killed at a random moment and resumed equals an uninterrupted one,
 * select evaluates no model, broken files are skipped and reported, and the
 * low-resolution mode on CIFAR images.
 *
 * Images are scored at 128 px (patch 96) to keep the suite fast; the code
 * paths are those of the 256 px default. Under AddressSanitizer the heavier
 * cases use fewer classes. */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/image.h"
#include "pipeline/store.h"
#include "testlib.h"
#include "util/fs.h"

#if defined(__SANITIZE_ADDRESS__)
#define SLOW_BUILD 1
#else
#define SLOW_BUILD 0
#endif

static char model[4096], woof[4096], cifar[4096], tsv[4096];
/* Classes used by the heavier cases (all ten in release builds). */
static const char *woof_classes = SLOW_BUILD ? "--classes n02086240,n02087394,n02088364 --max-per-class 8 " : "";
static int woof_nclasses = SLOW_BUILD ? 3 : 10;
/* Candidates per image: enough for IPC 10's 40 mosaic patches per class. */
static int ppi = SLOW_BUILD ? 5 : 2;

static json_t *load_json(const char *path) {
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j) fprintf(stderr, "%s: %s\n", path, e.text);
    return j;
}

/* Everything a store holds about its candidates, for exact comparison. */
static char *store_digest(const char *path) {
    ddps_store *s;
    ddps_err err;
    if (ddps_store_open(path, 1, &s, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    ddps_class_info *ci;
    int nc;
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    buf[0] = 0;
    if (ddps_store_list_classes(s, &ci, &nc, &err) == 0) {
        for (int i = 0; i < nc; i++) {
            ddps_class_data d;
            if (ddps_store_load_class(s, ci[i].id, 1, &d, &err) != 0) {
                fprintf(stderr, "%s\n", err.msg);
                continue;
            }
            for (int k = 0; k < d.n_cand; k++) {
                const ddps_stored_cand *c = &d.cand[k];
                if (len + 4096 > cap) buf = realloc(buf, cap *= 2);
                len += (size_t)snprintf(buf + len, cap - len, "%s|%d|%.9g,%.9g,%.9g,%.9g|%a|%d|%a|", d.images[c->image].relpath,
                                        c->idx, c->x0, c->y0, c->x1, c->y1, c->score, c->cluster, c->dist);
                uint64_t h = 1469598103934665603ULL;
                const unsigned char *p = (const unsigned char *)(d.features + (size_t)k * d.dim);
                for (size_t b = 0; b < (size_t)d.dim * sizeof(float); b++) h = (h ^ p[b]) * 1099511628211ULL;
                len += (size_t)snprintf(buf + len, cap - len, "%016llx\n", (unsigned long long)h);
            }
            ddps_class_data_free(&d);
        }
        ddps_store_free_classes(ci, nc);
    }
    ddps_store_close(s);
    return buf;
}

static long files_in(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "find '%s' -type f | wc -l", dir);
    char *out = NULL;
    t_run(cmd, &out);
    long n = out ? atol(out) : -1;
    free(out);
    return n;
}

/* Checks one ipc<N> folder: counts, image sizes, manifest against files and sources. */
static void check_output(const char *dir, int ipc, int nclasses, int mosaic, const char *data_root) {
    char p[4600];
    snprintf(p, sizeof p, "%s/ipc%d/manifest.json", dir, ipc);
    json_t *m = load_json(p);
    CHECKF(m != NULL, "%s", p);
    if (!m) return;
    json_t *counts = json_object_get(m, "counts");
    CHECK(json_integer_value(json_object_get(counts, "classes")) == nclasses);
    CHECKF(json_integer_value(json_object_get(counts, "images")) == (json_int_t)nclasses * ipc, "images %lld",
           (long long)json_integer_value(json_object_get(counts, "images")));
    json_t *ev = json_object_get(json_object_get(m, "model_evaluations"), "select");
    CHECK(ev && json_integer_value(json_object_get(ev, "unet_latents")) == 0 &&
          json_integer_value(json_object_get(ev, "vae_images")) == 0);
    snprintf(p, sizeof p, "%s/ipc%d", dir, ipc);
    /* images, the two manifests, and for WordNet-id classes class_to_idx.json and classes.txt */
    snprintf(p + strlen(p), sizeof p - strlen(p), "/class_to_idx.json");
    int maps = ddps_is_file(p) ? 2 : 0;
    snprintf(p, sizeof p, "%s/ipc%d", dir, ipc);
    CHECK(files_in(p) == (long)nclasses * ipc + 2 + maps);
    json_t *images = json_object_get(m, "images");
    size_t i;
    json_t *img;
    int checked = 0;
    json_array_foreach(images, i, img) {
        const char *file = json_string_value(json_object_get(img, "file"));
        json_t *patches = json_object_get(img, "patches");
        CHECK(file && json_array_size(patches) == (mosaic ? 4u : 1u));
        if (!file) continue;
        char f[8800];
        snprintf(f, sizeof f, "%s/ipc%d/%s", dir, ipc, file);
        ddps_image im;
        ddps_err err;
        if (checked++ < 40) { /* decoding all is slow under ASan; sizes are uniform */
            CHECKF(ddps_image_load(f, &im, &err) == 0, "%s", err.msg);
            CHECKF(im.w == 224 && im.h == 224, "%s is %dx%d", f, im.w, im.h);
            ddps_image_free(&im);
        }
        size_t k;
        json_t *pt;
        json_array_foreach(patches, k, pt) {
            const char *src = json_string_value(json_object_get(pt, "source"));
            json_t *box = json_object_get(pt, "box");
            CHECK(json_array_size(box) == 4);
            double x0 = json_number_value(json_array_get(box, 0)), y0 = json_number_value(json_array_get(box, 1)),
                   x1 = json_number_value(json_array_get(box, 2)), y1 = json_number_value(json_array_get(box, 3));
            char s[8800];
            snprintf(s, sizeof s, "%s/%s", data_root, src ? src : "?");
            ddps_image si;
            if (checked < 40 && ddps_image_load(s, &si, &err) == 0) {
                CHECKF(x0 >= 0 && y0 >= 0 && x1 <= si.w && y1 <= si.h && x0 < x1 && y0 < y1,
                       "box %g,%g,%g,%g outside %s (%dx%d)", x0, y0, x1, y1, s, si.w, si.h);
                ddps_image_free(&si);
            }
        }
    }
    /* METHOD.md order: the selected list runs cluster by cluster (rank order),
     * then the fill by score; mosaic i holds patches i, n+i, 2n+i, 3n+i. So
     * reading slot by slot, image by image within a class, cluster ranks never
     * decrease before the fill starts and fill scores never increase. */
    json_t *classes = json_object_get(m, "classes");
    json_t *cl;
    size_t ci;
    json_array_foreach(classes, ci, cl) {
        const char *name = json_string_value(json_object_get(cl, "name"));
        int slots = mosaic ? 4 : 1, last_rank = 0, in_fill = 0, order_ok = 1;
        double last_fill = INFINITY;
        for (int s = 0; s < slots; s++)
            json_array_foreach(images, i, img) {
                if (!name || strcmp(json_string_value(json_object_get(img, "class")), name) != 0) continue;
                json_t *pt = json_array_get(json_object_get(img, "patches"), (size_t)s);
                int fill = json_is_true(json_object_get(pt, "fill"));
                int rank = (int)json_integer_value(json_object_get(pt, "cluster_rank"));
                double score = json_number_value(json_object_get(pt, "score"));
                if (fill) {
                    in_fill = 1;
                    order_ok &= score <= last_fill;
                    last_fill = score;
                } else {
                    order_ok &= !in_fill && rank >= last_rank;
                    last_rank = rank;
                }
            }
        CHECKF(order_ok, "%s ipc%d class %s: patches out of METHOD.md order", dir, ipc, name);
    }
    json_decref(m);
}

static void woof_distill(void) {
    const char *out = t_tmpdir("woof1");
    CHECK(t_runv("%s distill --data %s --model %s --out %s --ipc 1,10 --patches-per-image %d --size 128 --patch 96 --batch-images 3 "
              "--class-names %s %s",
              DDPS_BIN, woof, model, out, ppi, tsv, woof_classes) == 0);
    check_output(out, 1, woof_nclasses, 1, woof);
    check_output(out, 10, woof_nclasses, 1, woof);
    /* prompts came from the TSV: n02086240 is "Shih Tzu" */
    char db[4200];
    snprintf(db, sizeof db, "%s/ddps.sqlite", out);
    ddps_store *s;
    ddps_err err;
    CHECK(ddps_store_open(db, 1, &s, &err) == 0);
    ddps_class_info *ci;
    int nc = 0;
    CHECK(ddps_store_list_classes(s, &ci, &nc, &err) == 0 && nc == woof_nclasses);
    if (nc) CHECKF(ci[0].prompt && strcmp(ci[0].prompt, "An image of Shih Tzu.") == 0, "prompt %s", ci[0].prompt);
    ddps_store_free_classes(ci, nc);
    ddps_run_stats tot;
    CHECK(ddps_store_totals(s, &tot, &err) == 0);
    /* 2K = 10 Stage I latents + ppi patches x 4 DIFT draws per image */
    CHECKF(tot.unet_latents == tot.images_scored * (10 + 4 * ppi) &&
               tot.images_scored == woof_nclasses * (SLOW_BUILD ? 8 : 24),
           "latents %ld images %ld", tot.unet_latents, tot.images_scored);
    ddps_store_close(s);

    /* select for another IPC: no model, zero evaluations, fast */
    const char *out2 = t_tmpdir("woof1_select");
    char *txt = NULL;
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "%s select --store %s --out %s --ipc 5,20", DDPS_BIN, db, out2);
    CHECK(t_run(cmd, &txt) == 0);
    free(txt);
    check_output(out2, 5, woof_nclasses, 1, woof);
    check_output(out2, 20, woof_nclasses, 0, woof);

    /* a second run from scratch gives the same store and the same images */
    const char *again = t_tmpdir("woof2");
    CHECK(t_runv("%s distill --data %s --model %s --out %s --ipc 1,10 --patches-per-image %d --size 128 --patch 96 --batch-images 3 "
              "--class-names %s %s",
              DDPS_BIN, woof, model, again, ppi, tsv, woof_classes) == 0);
    char db2[4200];
    snprintf(db2, sizeof db2, "%s/ddps.sqlite", again);
    char *d1 = store_digest(db), *d2 = store_digest(db2);
    CHECK(d1 && d2 && strlen(d1) > 100 && strcmp(d1, d2) == 0);
    snprintf(cmd, sizeof cmd, "diff -r '%s/ipc10' '%s/ipc10' -x manifest.json >/dev/null", out, again);
    CHECK(t_run(cmd, NULL) == 0);

    /* killed with SIGKILL at a random moment, then resumed: same store */
    const char *killed = t_tmpdir("woof_killed");
    char kdb[4200];
    snprintf(kdb, sizeof kdb, "%s/s.sqlite", killed);
    for (int attempt = 0; attempt < 2; attempt++) {
        snprintf(cmd, sizeof cmd,
                 "%s score --data %s --model %s --store %s --patches-per-image %d --size 128 --patch 96 --batch-images 3 "
                 "--class-names %s %s >/dev/null 2>&1 & p=$!; sleep %s; kill -9 $p; wait $p; true",
                 DDPS_BIN, woof, model, kdb, ppi, tsv, woof_classes, attempt == 0 ? "3" : "1.7");
        t_run(cmd, NULL);
    }
    CHECK(t_runv("%s score --data %s --model %s --store %s --patches-per-image %d --size 128 --patch 96 --batch-images 3 "
              "--class-names %s %s",
              DDPS_BIN, woof, model, kdb, ppi, tsv, woof_classes) == 0);
    char *d3 = store_digest(kdb);
    CHECK(d1 && d3 && strcmp(d1, d3) == 0);
    /* rerunning a finished store does nothing and says so */
    CHECK(t_runv("%s score --data %s --model %s --store %s --patches-per-image %d --size 128 --patch 96 --batch-images 3 "
              "--class-names %s %s",
              DDPS_BIN, woof, model, kdb, ppi, tsv, woof_classes) == 0);
    /* other settings into the same store are refused, naming the setting */
    snprintf(cmd, sizeof cmd,
             "%s score --data %s --model %s --store %s --patches-per-image 3 --size 128 --patch 96 --class-names %s %s",
             DDPS_BIN, woof, model, kdb, tsv, woof_classes);
    CHECK(t_run(cmd, &txt) != 0 && strstr(txt, "patches_per_image"));
    free(txt);
    free(d1), free(d2), free(d3);
}

static void broken_dataset(void) {
    const char *root = t_tmpdir("broken");
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mkdir -p data/good data/empty data/mixed && "
             "cp %s/n02086240/n02086240_11373.JPEG %s/n02086240/n02086240_11588.JPEG data/good/ && "
             "cp %s/n02087394/$(ls %s/n02087394 | head -1) data/mixed/ok.jpg && "
             "head -c 3000 %s/n02086240/n02086240_11959.JPEG > data/mixed/truncated.jpg && "
             ": > data/mixed/empty.jpg && echo 'not an image' > data/mixed/text.jpg && "
             "echo notes > data/mixed/readme.txt && "
             "cp data/mixed/ok.jpg data/mixed/unreadable.jpg && chmod 000 data/mixed/unreadable.jpg",
             root, woof, woof, woof, woof, woof);
    CHECK(t_run(cmd, NULL) == 0);
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "%s distill --data %s/data --model %s --out %s/out --ipc 1 --size 128 --patch 96", DDPS_BIN,
             root, model, root);
    int rc = t_run(cmd, &out);
    CHECKF(rc == 0, "rc %d: %s", rc, out);
    if (out) {
        CHECKF(strstr(out, "truncated.jpg") && strstr(out, "text.jpg") && strstr(out, "empty.jpg") &&
                   strstr(out, "readme.txt") && strstr(out, "empty"),
               "report: %s", out);
        if (geteuid() != 0) CHECK(strstr(out, "unreadable.jpg") != NULL);
    }
    free(out);
    char p[4200];
    snprintf(p, sizeof p, "%s/out/ipc1/good", root);
    CHECK(files_in(p) == 1);
    snprintf(p, sizeof p, "%s/out/ipc1/mixed", root);
    CHECK(files_in(p) == 1);
}

static void cifar_low_res(void) {
    const char *out = t_tmpdir("cifar");
    CHECK(t_runv("%s distill --data %s --model %s --out %s --ipc 1,10 --low-res --size 64 %s", DDPS_BIN, cifar, model, out,
              SLOW_BUILD ? "--classes airplane,cat --max-per-class 12" : "") == 0);
    char p[4600];
    snprintf(p, sizeof p, "%s/ipc10/manifest.json", out);
    json_t *m = load_json(p);
    CHECK(m != NULL);
    if (!m) return;
    int nclasses = SLOW_BUILD ? 2 : 10;
    CHECK(json_integer_value(json_object_get(json_object_get(m, "counts"), "images")) == nclasses * 10);
    /* whole original images, written at their original 32x32 size */
    json_t *img = json_array_get(json_object_get(m, "images"), 0);
    const char *file = json_string_value(json_object_get(img, "file"));
    char f[9000];
    snprintf(f, sizeof f, "%s/ipc10/%s", out, file ? file : "?");
    ddps_image im;
    ddps_err err;
    CHECKF(ddps_image_load(f, &im, &err) == 0, "%s", err.msg);
    CHECK(im.w == 32 && im.h == 32);
    ddps_image_free(&im);
    json_decref(m);
}

static void bad_invocations(void) {
    char cmd[9000], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s distill --data %s --model %s --out /tmp/x --ipc 0", DDPS_BIN, woof, model);
    CHECK(t_run(cmd, &out) != 0 && strstr(out, "--ipc"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s score --data /nonexistent --model %s --store /tmp/x.db", DDPS_BIN, model);
    CHECK(t_run(cmd, &out) != 0 && strstr(out, "/nonexistent"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s score --data %s --model /nonexistent --store %s/x.db", DDPS_BIN, woof, t_tmpdir("bad"));
    CHECK(t_run(cmd, &out) != 0 && strstr(out, "/nonexistent"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s score --data %s --model %s --store /tmp/x.db --patch 0", DDPS_BIN, woof, model);
    CHECK(t_run(cmd, &out) != 0 && strstr(out, "--patch 0"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s score --data %s --model %s --store /tmp/x.db --timesteps 2x", DDPS_BIN, woof, model);
    CHECK(t_run(cmd, &out) != 0 && strstr(out, "--timesteps 2x"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s score --help", DDPS_BIN);
    CHECK(t_run(cmd, &out) == 0 && strstr(out, "--patches-per-image"));
    free(out);
}

int main(void) {
    snprintf(model, sizeof model, "%s", t_shared("golden/tiny-sd"));
    snprintf(woof, sizeof woof, "%s", t_shared("data/imagewoof-mini/train"));
    snprintf(cifar, sizeof cifar, "%s", t_shared("data/cifar10-mini/train"));
    snprintf(tsv, sizeof tsv, "%s", t_shared("imagenet-classes.tsv"));
    TEST(bad_invocations);
    TEST(broken_dataset);
    TEST(cifar_low_res);
    TEST(woof_distill);
    return t_done();
}
