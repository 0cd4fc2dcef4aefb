/* Training data and transforms (src/train/data.c): RandomResizedCrop against
 * torchvision's get_params (draws replayed from tests/train_transform_ref.py),
 * Resize + CenterCrop against torchvision on PIL (python part), RDED's patch
 * shuffle and CutMix by their definitions, determinism from (seed, epoch,
 * index), and loading real images (cifar10-mini) with a bad file skipped. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"
#include "train/data.h"
#include "util/fs.h"

typedef struct {
    int w, h;
    tr_rrc p;
    int n_tries;
    double tries[10][2];
    int box[4]; /* x, y, cw, ch as torchvision returned (j, i, w, h) */
} rrc_case;

/* Printed by `train_transform_ref.py rrc` (torchvision 0.14). */
static const rrc_case RRC[] = {
#include "train_rrc_cases.inc"
};

static void test_rrc_torchvision(void) {
    for (size_t k = 0; k < sizeof RRC / sizeof *RRC; k++) {
        const rrc_case *c = &RRC[k];
        int cw = 0, ch = 0, ok = 0, box[4];
        for (int t = 0; t < c->n_tries && !ok; t++) ok = ddps_tr_rrc_try(c->w, c->h, c->tries[t][0], c->tries[t][1], &cw, &ch);
        if (!ok) {
            CHECKF(c->n_tries == 10, "case %zu: torchvision stopped after %d tries, we found no fit", k, c->n_tries);
            ddps_tr_rrc_fallback(c->w, c->h, &c->p, box);
        } else {
            box[0] = c->box[0], box[1] = c->box[1], box[2] = cw, box[3] = ch; /* offsets are torchvision's randint */
        }
        CHECKF(memcmp(box, c->box, sizeof box) == 0, "case %zu (%dx%d): box %d,%d %dx%d, torchvision %d,%d %dx%d", k,
               c->w, c->h, box[0], box[1], box[2], box[3], c->box[0], c->box[1], c->box[2], c->box[3]);
    }
}

/* Our own draws: boxes inside the image, areas and ratios within range (or the fallback). */
static void test_rrc_ranges(void) {
    tr_rrc p = {0.08, 1.0, 3.0 / 4, 4.0 / 3};
    ddps_rng r;
    ddps_rng_seed(&r, 5);
    for (int i = 0; i < 2000; i++) {
        int w = 8 + (int)ddps_rng_below(&r, 200), h = 8 + (int)ddps_rng_below(&r, 200), b[4];
        ddps_tr_rrc_box(&r, w, h, &p, b);
        CHECKF(b[0] >= 0 && b[1] >= 0 && b[2] > 0 && b[3] > 0 && b[0] + b[2] <= w && b[1] + b[3] <= h,
               "%dx%d: box %d,%d %dx%d", w, h, b[0], b[1], b[2], b[3]);
    }
}

static ddps_image numbered(int w, int h) {
    ddps_image im = {0};
    ddps_image_alloc(&im, w, h);
    for (int i = 0; i < w * h; i++) im.px[i * 3] = (uint8_t)i, im.px[i * 3 + 1] = (uint8_t)(i >> 8);
    return im;
}

static int px_id(const ddps_image *im, int x, int y) {
    const uint8_t *p = im->px + ((size_t)y * im->w + x) * 3;
    return p[0] | p[1] << 8;
}

/* RDED's ShufflePatches(2): columns halves swapped or not, then row halves; all four outcomes occur. */
static void test_shuffle_patches(void) {
    ddps_image src = numbered(6, 4), dst = {0};
    int seen[4] = {0};
    for (uint64_t s = 0; s < 64; s++) {
        ddps_rng r;
        ddps_rng_seed(&r, s);
        ddps_err e;
        CHECK(ddps_tr_shuffle_patches(&src, 2, &r, &dst, &e) == 0);
        CHECK(dst.w == 6 && dst.h == 4);
        int cs = px_id(&dst, 0, 0) % 6 == 3, rs = px_id(&dst, 0, 0) / 6 == 2;
        seen[cs * 2 + rs]++;
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 6; x++) {
                int sx = cs ? (x + 3) % 6 : x, sy = rs ? (y + 2) % 4 : y;
                CHECKF(px_id(&dst, x, y) == sy * 6 + sx, "seed %d: pixel %d,%d", (int)s, x, y);
            }
        ddps_image_free(&dst);
    }
    for (int k = 0; k < 4; k++) CHECKF(seen[k] > 4, "outcome %d seen %d times of 64", k, seen[k]);
    ddps_image_free(&src);
    /* Odd sides lose the remainder (RDED's strips of w // 2). */
    src = numbered(7, 5);
    ddps_rng r;
    ddps_rng_seed(&r, 1);
    ddps_err e;
    CHECK(ddps_tr_shuffle_patches(&src, 2, &r, &dst, &e) == 0);
    CHECKF(dst.w == 6 && dst.h == 4, "7x5 -> %dx%d", dst.w, dst.h);
    ddps_image_free(&dst);
    ddps_image_free(&src);
}

static void test_cutmix(void) {
    enum { N = 6, H = 16, W = 12 };
    float x[N * H * W * 3], orig[N * H * W * 3], tmp[N * H * W * 3];
    int perm[N], box[4];
    for (size_t i = 0; i < sizeof x / sizeof *x; i++) orig[i] = (float)(i / (H * W * 3)) + 0.001f * (float)(i % 97);
    double area = 0;
    for (uint64_t s = 0; s < 200; s++) {
        memcpy(x, orig, sizeof x);
        ddps_rng r;
        ddps_rng_seed(&r, s);
        ddps_tr_cutmix(&r, x, N, H, W, tmp, perm, box);
        CHECK(box[0] >= 0 && box[0] <= box[2] && box[2] <= H && box[1] >= 0 && box[1] <= box[3] && box[3] <= W);
        int seen[N] = {0};
        for (int i = 0; i < N; i++) seen[perm[i]]++;
        for (int i = 0; i < N; i++) CHECK(seen[i] == 1);
        for (int i = 0; i < N; i++)
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) {
                    int in = y >= box[0] && y < box[2] && xx >= box[1] && xx < box[3];
                    size_t o = ((size_t)y * W + xx) * 3;
                    float want = orig[(size_t)(in ? perm[i] : i) * H * W * 3 + o];
                    if (x[(size_t)i * H * W * 3 + o] != want) {
                        CHECKF(0, "seed %d item %d pixel %d,%d", (int)s, i, xx, y);
                        return;
                    }
                }
        area += (double)(box[2] - box[0]) * (box[3] - box[1]) / (H * W);
    }
    /* lam ~ U(0,1): the cut's side is sqrt(1 - lam) of the image's, its mean area about 1/2 before clipping. */
    area /= 200;
    CHECKF(area > 0.2 && area < 0.5, "mean cut area %.3f", area);
}

static void test_transform_determinism(void) {
    ddps_image src = numbered(40, 30);
    tr_transform t = {24, 1, 2, {0.25, 1, 3.0 / 4, 4.0 / 3}, 0.5};
    float a[24 * 24 * 3], b[24 * 24 * 3];
    ddps_err e;
    ddps_rng r;
    int differ = 0;
    for (long i = 0; i < 20; i++) {
        ddps_tr_sample_rng(&r, 7, 3, i);
        CHECK(ddps_tr_transform(&t, &src, &r, a, &e) == 0);
        ddps_tr_sample_rng(&r, 7, 3, i);
        CHECK(ddps_tr_transform(&t, &src, &r, b, &e) == 0);
        CHECK(memcmp(a, b, sizeof a) == 0);
        ddps_tr_sample_rng(&r, 7, 4, i);
        CHECK(ddps_tr_transform(&t, &src, &r, b, &e) == 0);
        differ += memcmp(a, b, sizeof a) != 0;
    }
    CHECKF(differ >= 18, "another epoch changed %d of 20 samples", differ);
    /* normalisation: ImageNet mean/std */
    ddps_image one = {0};
    ddps_image_alloc(&one, 1, 1);
    one.px[0] = 255, one.px[1] = 0, one.px[2] = 128;
    float v[3];
    ddps_tr_normalize(&one, v);
    CHECK(fabsf(v[0] - (1 - 0.485f) / 0.229f) < 1e-6f && fabsf(v[1] + 0.456f / 0.224f) < 1e-6f);
    CHECK(fabsf(v[2] - (128 / 255.0f - 0.406f) / 0.225f) < 1e-6f);
    ddps_image_free(&one);
    ddps_image_free(&src);
}

/* cifar10-mini loaded at its stored size and as validation crops; a broken file is skipped. */
static void test_load_real(void) {
    const char *src = t_shared("data/cifar10-mini/test");
    if (!ddps_is_dir(src)) {
        t_skip("%s is missing", src);
        return;
    }
    const char *dir = t_tmpdir("train_data_load");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cp -r '%s/.' '%s/' && printf 'not a jpeg' > '%s/cat/zz-broken.jpg'", src, dir, dir);
    CHECK(system(cmd) == 0);
    tr_data d;
    ddps_err e = {{0}};
    tr_data_opts o = {0, 0, 0, 0};
    CHECKF(ddps_tr_data_load(dir, &o, &d, &e) == 0, "%s", e.msg);
    CHECKF(d.n == 100 && d.n_bad == 1 && d.n_classes == 10, "n %d bad %d classes %d", d.n, d.n_bad, d.n_classes);
    CHECK(strcmp(d.classes[0], "airplane") == 0 && strcmp(d.classes[9], "truck") == 0);
    for (int i = 1; i < d.n; i++) CHECK(d.labels[i] >= d.labels[i - 1]);
    CHECK(d.img[0].w == 32 && d.img[0].h == 32);
    ddps_tr_data_free(&d);
    o = (tr_data_opts){0, 24, ddps_tr_val_resize(24), 1};
    CHECKF(ddps_tr_data_load(dir, &o, &d, &e) == 0, "%s", e.msg);
    CHECK(d.n == 100 && d.img[5].w == 24 && d.img[5].h == 24);
    ddps_tr_data_free(&d);
    CHECK(ddps_tr_val_resize(224) == 256 && ddps_tr_val_resize(32) == 32 && ddps_tr_val_resize(64) == 72);
}

static int read_raw(const char *path, ddps_image *im) {
    char *buf;
    size_t len;
    ddps_err e;
    if (ddps_read_file(path, 1u << 26, &buf, &len, &e)) return -1;
    uint32_t w, h;
    memcpy(&w, buf, 4);
    memcpy(&h, buf + 4, 4);
    int rc = len == 8 + (size_t)w * h * 3 && ddps_image_alloc(im, (int)w, (int)h) == 0 ? 0 : -1;
    if (!rc) memcpy(im->px, buf + 8, len - 8);
    free(buf);
    return rc;
}

/* Resize(side) + CenterCrop(crop) against torchvision on PIL images, bit for bit. */
static void test_center_crop_torchvision(void) {
    char *out = NULL;
    if (t_run("/usr/bin/python3 -c 'import torchvision' 2>&1", &out) != 0) {
        free(out);
        t_skip("/usr/bin/python3 has no torchvision");
        return;
    }
    free(out);
    const char *img = t_shared("data/cifar10-mini/train/dog/0039.jpg");
    char path[4096];
    snprintf(path, sizeof path, "%s", img);
    if (!ddps_is_file(path)) {
        const char *d = t_shared("data/cifar10-mini/train/dog");
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "ls '%s' | head -1", d);
        char *name = NULL;
        if (t_run(cmd, &name) != 0 || !name) {
            t_skip("cifar10-mini is missing");
            return;
        }
        name[strcspn(name, "\n")] = 0;
        snprintf(path, sizeof path, "%s/%s", d, name);
        free(name);
    }
    int cases[][2] = {{36, 32}, {32, 32}, {27, 24}, {20, 24}, {73, 64}, {24, 16}, {17, 15}};
    const char *raw = t_tmpdir("train_center");
    char pairs[256] = "";
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
        snprintf(pairs + strlen(pairs), sizeof pairs - strlen(pairs), " %d:%d", cases[k][0], cases[k][1]);
    int rc = t_runf(&out, "/usr/bin/python3 '%s/tests/train_transform_ref.py' center '%s' '%s/ref'%s 2>&1",
                    DDPS_SOURCE_DIR, path, raw, pairs);
    CHECKF(rc == 0, "train_transform_ref.py: %s", out ? out : "");
    free(out);
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char dst[4096];
        snprintf(dst, sizeof dst, "%s/ref-%zu.raw", raw, k);
        ddps_image ref = {0}, src = {0}, mine = {0};
        ddps_err e;
        CHECK(read_raw(dst, &ref) == 0);
        CHECK(ddps_image_load(path, &src, &e) == 0);
        CHECK(ddps_tr_resize_center_crop(&src, cases[k][0], cases[k][1], &mine, &e) == 0);
        CHECKF(ref.w == mine.w && ref.h == mine.h && memcmp(ref.px, mine.px, (size_t)ref.w * ref.h * 3) == 0,
               "Resize(%d)+CenterCrop(%d) differs from torchvision", cases[k][0], cases[k][1]);
        ddps_image_free(&ref);
        ddps_image_free(&src);
        ddps_image_free(&mine);
    }
}

int main(int argc, char **argv) {
    if (strcmp(t_part(argc, argv), "python") == 0) {
        TEST(test_center_crop_torchvision);
        return t_done();
    }
    TEST(test_rrc_torchvision);
    TEST(test_rrc_ranges);
    TEST(test_shuffle_patches);
    TEST(test_cutmix);
    TEST(test_transform_determinism);
    TEST(test_load_real);
    return t_done();
}
