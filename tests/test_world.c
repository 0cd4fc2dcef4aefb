/* The toy world: files exist and decode to what ddps_world_draw gives (PNG
 * exactly, JPEG closely), boxes.json and classes.tsv describe every file,
 * boxes have the promised sizes, a seed gives
 * byte-identical files and the splits differ, bad arguments are refused. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "testlib.h"
#include "tools/world.h"
#include "util/fs.h"

enum { TRAIN = 3, VAL = 1, TEST = 2, BASE = 64 };

static char dir_a[2048], dir_b[2048], dir_c[2048];

static void read_bytes(const char *path, char **buf, size_t *len) {
    ddps_err err;
    *buf = NULL;
    *len = 0;
    if (ddps_read_file(path, 1 << 24, buf, len, &err) != 0) CHECKF(0, "%s", err.msg);
}

/* Every boxes.json entry: the file decodes to the drawn picture, the class
   and variant and box are the drawn ones; returns the number of entries. */
static int check_entries(const char *dir, json_t *boxes) {
    static const char *const split[3] = {"train", "val", "test"};
    const int count[3] = {TRAIN, VAL, TEST};
    int n = 0;
    for (int s = 0; s < 3; s++)
        for (int c = 0; c < DDPS_WORLD_CLASSES; c++)
            for (int i = 0; i < count[s]; i++) {
                ddps_image want = {0}, got = {0};
                ddps_world_item it;
                ddps_err err;
                CHECK(ddps_world_draw(c, i, ddps_world_split_seed(7, s), BASE, &want, &it, &err) == 0);
                char rel[512], path[4096];
                snprintf(rel, sizeof rel, "%s/%s/%04d.%s", split[s], ddps_world_folder(c), i, it.jpeg ? "jpg" : "png");
                snprintf(path, sizeof path, "%s/%s", dir, rel);
                json_t *e = json_object_get(boxes, rel);
                CHECKF(json_is_object(e), "boxes.json lacks %s", rel);
                CHECK(strcmp(json_string_value(json_object_get(e, "class")), ddps_world_folder(c)) == 0);
                CHECK(strcmp(json_string_value(json_object_get(e, "variant")), ddps_world_variant(c, it.variant)) == 0);
                json_t *b = json_object_get(e, "box");
                for (int k = 0; k < 4; k++) CHECK(json_integer_value(json_array_get(b, (size_t)k)) == it.box[k]);
                CHECKF(ddps_image_load(path, &got, &err) == 0, "%s", err.msg);
                CHECK(got.w == want.w && got.h == want.h);
                double diff = 0;
                for (size_t p = 0; p < (size_t)got.w * got.h * 3 && got.w == want.w && got.h == want.h; p++)
                    diff += fabs((double)got.px[p] - want.px[p]);
                diff /= (double)want.w * want.h * 3;
                if (it.jpeg) CHECKF(diff < 8, "%s: JPEG mean error %.2f (noise costs JPEG about 4)", rel, diff);
                else CHECKF(diff == 0, "%s: PNG differs from the drawing", rel);
                n++;
                ddps_image_free(&want);
                ddps_image_free(&got);
            }
    return n;
}

static void writes_world(void) {
    ddps_err err;
    snprintf(dir_a, sizeof dir_a, "%s", t_tmpdir("world_a"));
    snprintf(dir_b, sizeof dir_b, "%s", t_tmpdir("world_b"));
    snprintf(dir_c, sizeof dir_c, "%s", t_tmpdir("world_c"));
    CHECKF(ddps_world_generate(dir_a, 7, DDPS_WORLD_CLASSES, TRAIN, VAL, TEST, BASE, &err) == 0, "%s", err.msg);
    CHECKF(ddps_world_generate(dir_b, 7, DDPS_WORLD_CLASSES, TRAIN, VAL, TEST, BASE, &err) == 0, "%s", err.msg);
    CHECKF(ddps_world_generate(dir_c, 8, DDPS_WORLD_CLASSES, TRAIN, VAL, TEST, BASE, &err) == 0, "%s", err.msg);
    char path[4096];
    snprintf(path, sizeof path, "%s/boxes.json", dir_a);
    json_error_t je;
    json_t *boxes = json_load_file(path, 0, &je);
    CHECKF(json_is_object(boxes), "%s: %s", path, je.text);
    const int n = check_entries(dir_a, boxes);
    CHECKF((int)json_object_size(boxes) == n && n == DDPS_WORLD_CLASSES * (TRAIN + VAL + TEST),
           "%zu entries, %d files", json_object_size(boxes), n);
    json_decref(boxes);
    /* classes.tsv: folder<TAB>prompt name, every class */
    char *tsv;
    size_t len;
    snprintf(path, sizeof path, "%s/classes.tsv", dir_a);
    read_bytes(path, &tsv, &len);
    CHECK(tsv && strstr(tsv, "red-disc\tred disc\n") && strstr(tsv, "pink-heart\tpink heart\n"));
    free(tsv);
    /* same seed: byte-identical; another seed: different pictures */
    int same = 0, differ = 0, files = 0;
    for (int c = 0; c < DDPS_WORLD_CLASSES; c++)
        for (int i = 0; i < TRAIN; i++) {
            char pa[4096], pb[4096], pc[4096];
            ddps_image img;
            ddps_world_item it;
            CHECK(ddps_world_draw(c, i, ddps_world_split_seed(7, 0), BASE, &img, &it, &err) == 0);
            ddps_image_free(&img);
            const char *ext = it.jpeg ? "jpg" : "png";
            snprintf(pa, sizeof pa, "%s/train/%s/%04d.%s", dir_a, ddps_world_folder(c), i, ext);
            snprintf(pb, sizeof pb, "%s/train/%s/%04d.%s", dir_b, ddps_world_folder(c), i, ext);
            snprintf(pc, sizeof pc, "%s/train/%s/%04d.png", dir_c, ddps_world_folder(c), i);
            char *a, *b, *cc = NULL;
            size_t la, lb, lc = 0;
            read_bytes(pa, &a, &la);
            read_bytes(pb, &b, &lb);
            ddps_err e2;
            if (ddps_read_file(pc, 1 << 24, &cc, &lc, &e2) != 0) cc = NULL;
            same += a && b && la == lb && memcmp(a, b, la) == 0;
            differ += !cc || lc != la || memcmp(a, cc, la) != 0;
            files++;
            free(a);
            free(b);
            free(cc);
        }
    CHECKF(same == files && differ == files, "same seed identical %d/%d, other seed different %d/%d", same, files,
           differ, files);
}

/* Over 600 pictures: boxes lie inside the picture with the promised sizes,
   one picture in five is not square, one in four is JPEG, every variant occurs. */
static void boxes_fit(void) {
    ddps_err err;
    int n = 0, sizes_ok = 0, aspect = 0, jpeg = 0, variants[DDPS_WORLD_CLASSES][DDPS_WORLD_MAX_VARIANTS] = {{0}};
    for (int c = 0; c < DDPS_WORLD_CLASSES; c++)
        for (int i = 0; i < 60; i++) {
            ddps_image img;
            ddps_world_item it;
            CHECK(ddps_world_draw(c, i, 99, 128, &img, &it, &err) == 0);
            const int s = img.w < img.h ? img.w : img.h, bw = it.box[2] - it.box[0], bh = it.box[3] - it.box[1];
            CHECKF(it.box[0] >= 0 && it.box[1] >= 0 && it.box[2] <= img.w && it.box[3] <= img.h && bw > 0 && bh > 0,
                   "class %d picture %d: box %d %d %d %d in %dx%d", c, i, it.box[0], it.box[1], it.box[2], it.box[3],
                   img.w, img.h);
            /* nominal side 1/5..1/2 of the shorter side; shapes fill 0.8..1.15 of it, rotations add up to 1.4 */
            const int side = bw > bh ? bw : bh;
            sizes_ok += side >= 0.2 * 0.75 * s && side <= 0.5 * 1.45 * s;
            aspect += img.w != img.h;
            jpeg += it.jpeg;
            variants[c][it.variant]++;
            CHECK(it.cls == c && it.variant >= 0 && it.variant < ddps_world_variants(c));
            ddps_image_free(&img);
            n++;
        }
    CHECKF(sizes_ok == n, "%d of %d boxes within 1/5..1/2 of the side (with shape and rotation slack)", sizes_ok, n);
    CHECKF(aspect > n / 10 && aspect < n * 3 / 10, "%d of %d pictures not square (one in five expected)", aspect, n);
    CHECKF(jpeg > n / 6 && jpeg < n / 3, "%d of %d JPEG (one in four expected)", jpeg, n);
    for (int c = 0; c < DDPS_WORLD_CLASSES; c++)
        for (int v = 0; v < ddps_world_variants(c); v++) CHECKF(variants[c][v] > 5, "class %d variant %d rare", c, v);
}

static void refuses_bad_arguments(void) {
    ddps_err err;
    const char *dir = t_tmpdir("world_bad");
    CHECK(ddps_world_generate(dir, 1, 0, 1, 1, 1, 64, &err) == -1 && err.kind == DDPS_KIND_USAGE &&
          strstr(err.msg, "classes"));
    CHECK(ddps_world_generate(dir, 1, 11, 1, 1, 1, 64, &err) == -1 && strstr(err.msg, "1..10"));
    CHECK(ddps_world_generate(dir, 1, 2, 0, 0, 0, 64, &err) == -1 && strstr(err.msg, "no images"));
    CHECK(ddps_world_generate(dir, 1, 2, -1, 0, 1, 64, &err) == -1 && strstr(err.msg, "0..100000"));
    CHECK(ddps_world_generate(dir, 1, 2, 1, 0, 1, 8, &err) == -1 && strstr(err.msg, "16..2048"));
    CHECK(ddps_world_generate("", 1, 2, 1, 0, 1, 64, &err) == -1 && strstr(err.msg, "output folder"));
    ddps_image img;
    ddps_world_item it;
    CHECK(ddps_world_draw(10, 0, 1, 64, &img, &it, &err) == -1 && strstr(err.msg, "class 10"));
    CHECK(ddps_world_draw(0, -1, 1, 64, &img, &it, &err) == -1 && strstr(err.msg, "index"));
    CHECK(ddps_world_folder(10) == NULL && ddps_world_variant(0, 3) == NULL && ddps_world_variants(-1) == 0);
}

int main(void) {
    writes_world();
    boxes_fit();
    refuses_bad_arguments();
    return t_done();
}
