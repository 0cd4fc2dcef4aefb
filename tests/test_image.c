/* Images: decoders, encoders and the resampler against PIL 9.4.
 *
 * References come from tests/pil_ref.py (run with /usr/bin/python3): it
 * decodes with Image.open + ImageOps.exif_transpose + convert("RGB"), resizes
 * with Image.resize(..., BILINEAR), and writes raw RGB files we compare with.
 * Tolerances asserted: 0 (bit-exact) for every decode and every resize; the
 * only inexact check is our own JPEG encode -> decode round trip. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jpeglib.h>

#include "io/image.h"
#include "testlib.h"
#include "util/fs.h"
#include "util/rng.h"

/* Paths here are built with snprintf into fixed buffers far longer than any
 * test path; GCC cannot see that and warns about possible truncation. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* ---- helpers ------------------------------------------------------------ */

static char pyref[4096]; /* tests/pil_ref.py, found next to this file */

static void find_pyref(void) {
    snprintf(pyref, sizeof pyref, "%s", __FILE__);
    char *slash = strrchr(pyref, '/');
    if (slash)
        snprintf(slash + 1, sizeof pyref - (size_t)(slash + 1 - pyref), "pil_ref.py");
    else
        snprintf(pyref, sizeof pyref, "tests/pil_ref.py");
}

/* Runs pil_ref.py with the given arguments; 0 on success. */
static int run_py(const char *args) {
    char cmd[8192], *out = NULL;
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' %s", pyref, args);
    int rc = t_run(cmd, &out);
    if (rc != 0) fprintf(stderr, "pil_ref.py failed (%d): %s\n", rc, out ? out : "");
    free(out);
    return rc;
}

static int read_raw(const char *path, ddps_image *img) {
    char *buf;
    size_t len;
    ddps_err err;
    img->px = NULL;
    img->w = img->h = 0;
    if (ddps_read_file(path, (size_t)1 << 30, &buf, &len, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    uint32_t w, h;
    if (len < 8) goto bad;
    memcpy(&w, buf, 4);
    memcpy(&h, buf + 4, 4);
    if (w == 0 || h == 0 || len != 8 + (size_t)w * h * 3 || ddps_image_alloc(img, (int)w, (int)h) != 0) goto bad;
    memcpy(img->px, buf + 8, len - 8);
    free(buf);
    return 0;
bad:
    fprintf(stderr, "%s: bad raw file\n", path);
    free(buf);
    return -1;
}

static void write_raw(const char *path, const ddps_image *img) {
    size_t n = (size_t)img->w * img->h * 3;
    uint8_t *buf = malloc(8 + n);
    uint32_t w = (uint32_t)img->w, h = (uint32_t)img->h;
    memcpy(buf, &w, 4);
    memcpy(buf + 4, &h, 4);
    memcpy(buf + 8, img->px, n);
    t_write(path, buf, 8 + n);
    free(buf);
}

/* Largest per-byte difference; -1 when the sizes differ. */
static int max_diff(const ddps_image *a, const ddps_image *b) {
    if (a->w != b->w || a->h != b->h) return -1;
    int m = 0;
    for (size_t i = 0; i < (size_t)a->w * a->h * 3; i++) {
        int d = abs((int)a->px[i] - (int)b->px[i]);
        if (d > m) m = d;
    }
    return m;
}

/* Compares ddps's image with the raw reference file; returns max diff. */
static int diff_with_ref(const ddps_image *mine, const char *ref_path) {
    ddps_image ref;
    if (read_raw(ref_path, &ref) != 0) return 999;
    int d = max_diff(mine, &ref);
    if (d != 0) fprintf(stderr, "  %s: ddps %dx%d, PIL %dx%d, max diff %d\n", ref_path, mine->w, mine->h, ref.w, ref.h, d);
    ddps_image_free(&ref);
    return d;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Image files under root (two levels: class/file), sorted; every step-th. */
static int list_images(const char *root, int step, char ***out) {
    int n = 0, cap = 64;
    char **v = malloc(cap * sizeof *v);
    DIR *d = opendir(root);
    if (!d) {
        *out = v;
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *cls = ddps_path_join(root, e->d_name);
        DIR *d2 = opendir(cls);
        struct dirent *f;
        while (d2 && (f = readdir(d2))) {
            if (f->d_name[0] == '.') continue;
            if (n == cap) v = realloc(v, (cap *= 2) * sizeof *v);
            v[n++] = ddps_path_join(cls, f->d_name);
        }
        if (d2) closedir(d2);
        free(cls);
    }
    closedir(d);
    qsort(v, n, sizeof *v, cmp_str);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (i % step == 0)
            v[m++] = v[i];
        else
            free(v[i]);
    *out = v;
    return m;
}

static void free_list(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

static void random_image(ddps_image *img, int w, int h, uint64_t seed) {
    ddps_rng r;
    ddps_rng_seed(&r, seed);
    ddps_image_alloc(img, w, h);
    for (size_t i = 0; i < (size_t)w * h * 3; i++) img->px[i] = (uint8_t)ddps_rng_below(&r, 256);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- real datasets against PIL ----------------------------------------- */

/* Every imagewoof-mini train image: decode (exact), Resize(256) (exact), a
 * 192-pixel crop of the resized image resized to 112 (the mosaic patch
 * path, exact), and cifar10-mini: decode, upscale to 256x256, odd sizes. */
static void datasets_match_pil(void) {
    const char *dir = t_tmpdir("image_datasets");
    char **woof, **cifar;
    int nw = list_images(t_shared("data/imagewoof-mini/train"), 1, &woof);
    int nc = list_images(t_shared("data/cifar10-mini/train"), 8, &cifar);
    CHECKF(nw >= 200, "imagewoof-mini train has %d images", nw);
    CHECKF(nc >= 40, "cifar10-mini sample has %d images", nc);

    char jobs[4096], path[4096];
    snprintf(jobs, sizeof jobs, "%s/jobs.tsv", dir);
    FILE *f = fopen(jobs, "w");
    for (int i = 0; i < nw; i++) {
        fprintf(f, "%s\t%s/w%d.raw\n", woof[i], dir, i);
        fprintf(f, "%s\t%s/w%d_256.raw\tshort:256\n", woof[i], dir, i);
        fprintf(f, "%s\t%s/w%d_112.raw\tshort:256\tcrop:%d:%d:192:192\tresize:112:112\n", woof[i], dir, i, i % 60, i % 50);
    }
    static const int odd[][2] = {{256, 256}, {224, 224}, {7, 300}, {45, 19}, {1, 1}, {33, 31}};
    for (int i = 0; i < nc; i++) {
        fprintf(f, "%s\t%s/c%d.raw\n", cifar[i], dir, i);
        const int *s = odd[i % 6];
        fprintf(f, "%s\t%s/c%d_r.raw\tresize:%d:%d\n", cifar[i], dir, i, s[0], s[1]);
    }
    fclose(f);
    char args[8192];
    snprintf(args, sizeof args, "jobs '%s'", jobs);
    double t0 = now_ms();
    CHECK(run_py(args) == 0);
    fprintf(stderr, "  PIL references: %.0f ms\n", now_ms() - t0);

    int bad_decode = 0, bad_resize = 0, worst = 0, gray = 0;
    double t_dec = 0, t_res = 0;
    for (int i = 0; i < nw; i++) {
        ddps_image im, r, c, p;
        ddps_err err;
        double a = now_ms();
        if (ddps_image_load(woof[i], &im, &err) != 0) {
            CHECKF(0, "%s", err.msg);
            continue;
        }
        double b = now_ms();
        snprintf(path, sizeof path, "%s/w%d.raw", dir, i);
        int d = diff_with_ref(&im, path);
        bad_decode += d != 0;
        worst = d > worst ? d : worst;
        int allgray = 1;
        for (size_t k = 0; k < (size_t)im.w * im.h && allgray; k++)
            allgray = im.px[3 * k] == im.px[3 * k + 1] && im.px[3 * k] == im.px[3 * k + 2];
        gray += allgray;

        int ow, oh;
        ddps_resize_shorter_size(im.w, im.h, 256, &ow, &oh);
        double e = now_ms();
        CHECK(ddps_image_resize(&im, ow, oh, &r, &err) == 0);
        t_res += now_ms() - e;
        t_dec += b - a;
        snprintf(path, sizeof path, "%s/w%d_256.raw", dir, i);
        d = diff_with_ref(&r, path); /* also checks the size rule: PIL's file has torchvision's size */
        bad_resize += d != 0;
        worst = d > worst ? d : worst;

        CHECK(ddps_image_crop(&r, i % 60, i % 50, 192, 192, &c, &err) == 0);
        CHECK(ddps_image_resize(&c, 112, 112, &p, &err) == 0);
        snprintf(path, sizeof path, "%s/w%d_112.raw", dir, i);
        d = diff_with_ref(&p, path);
        bad_resize += d != 0;
        worst = d > worst ? d : worst;
        ddps_image_free(&im);
        ddps_image_free(&r);
        ddps_image_free(&c);
        ddps_image_free(&p);
    }
    fprintf(stderr, "  imagewoof: %d images (%d grayscale), decode %.2f ms/img, resize %.2f ms/img\n", nw, gray,
            t_dec / (nw ? nw : 1), t_res / (nw ? nw : 1));
    for (int i = 0; i < nc; i++) {
        ddps_image im, r;
        ddps_err err;
        if (ddps_image_load(cifar[i], &im, &err) != 0) {
            CHECKF(0, "%s", err.msg);
            continue;
        }
        snprintf(path, sizeof path, "%s/c%d.raw", dir, i);
        int d = diff_with_ref(&im, path);
        bad_decode += d != 0;
        worst = d > worst ? d : worst;
        const int *s = odd[i % 6];
        CHECK(ddps_image_resize(&im, s[0], s[1], &r, &err) == 0);
        snprintf(path, sizeof path, "%s/c%d_r.raw", dir, i);
        d = diff_with_ref(&r, path);
        bad_resize += d != 0;
        worst = d > worst ? d : worst;
        ddps_image_free(&im);
        ddps_image_free(&r);
    }
    CHECKF(bad_decode == 0, "%d decodes differ from PIL", bad_decode);
    CHECKF(bad_resize == 0, "%d resizes differ from PIL", bad_resize);
    CHECKF(worst == 0, "max abs difference %d (expected 0)", worst);
    CHECKF(gray >= 1, "expected some grayscale images in imagewoof-mini, found %d", gray);
    free_list(woof, nw);
    free_list(cifar, nc);
}

/* Random-noise images (the hardest case for rounding) through shrinking,
 * enlarging, mixed, and degenerate sizes. */
static void resize_noise_matches_pil(void) {
    const char *dir = t_tmpdir("image_resize_noise");
    static const int cases[][4] = {
        {64, 48, 17, 13},   {64, 48, 200, 150}, {64, 48, 300, 20},  {64, 48, 5, 99},    {1, 1, 7, 5},
        {1, 1, 1, 1},       {3, 2, 1, 1},       {500, 375, 341, 256}, {333, 97, 256, 74}, {97, 333, 1, 333},
        {32, 32, 256, 256}, {32, 32, 112, 112}, {41, 29, 41, 7},    {41, 29, 9, 29},    {255, 3, 2, 700},
        {1000, 1, 3, 1},    {7, 7, 6, 6},       {7, 7, 8, 8},       {2, 200, 199, 3},   {123, 457, 122, 458},
    };
    const int n = (int)(sizeof cases / sizeof *cases);
    char jobs[4096], path[4096];
    snprintf(jobs, sizeof jobs, "%s/jobs.tsv", dir);
    FILE *f = fopen(jobs, "w");
    for (int i = 0; i < n; i++) {
        ddps_image src;
        random_image(&src, cases[i][0], cases[i][1], 100 + i);
        snprintf(path, sizeof path, "%s/src%d.raw", dir, i);
        write_raw(path, &src);
        ddps_image_free(&src);
        fprintf(f, "%s\t%s/ref%d.raw\tresize:%d:%d\n", path, dir, i, cases[i][2], cases[i][3]);
    }
    fclose(f);
    char args[8192];
    snprintf(args, sizeof args, "jobs '%s'", jobs);
    CHECK(run_py(args) == 0);
    for (int i = 0; i < n; i++) {
        ddps_image src, dst;
        ddps_err err;
        random_image(&src, cases[i][0], cases[i][1], 100 + i);
        CHECK(ddps_image_resize(&src, cases[i][2], cases[i][3], &dst, &err) == 0);
        snprintf(path, sizeof path, "%s/ref%d.raw", dir, i);
        CHECKF(diff_with_ref(&dst, path) == 0, "%dx%d -> %dx%d", cases[i][0], cases[i][1], cases[i][2], cases[i][3]);
        ddps_image_free(&src);
        ddps_image_free(&dst);
    }
    /* Errors. */
    ddps_image src, dst;
    ddps_err err;
    random_image(&src, 4, 4, 1);
    CHECK(ddps_image_resize(&src, 0, 4, &dst, &err) == -1 && strstr(err.msg, "0x4"));
    CHECK(dst.px == NULL);
    CHECK(ddps_image_resize(&src, 1 << 20, 1 << 20, &dst, &err) == -1);
    ddps_image_free(&src);
}

/* ---- generated formats against PIL ------------------------------------- */

static char gen_dir[4096];

static void make_generated(void) {
    snprintf(gen_dir, sizeof gen_dir, "%s", t_tmpdir("image_generated"));
    char args[8192];
    snprintf(args, sizeof args, "make '%s'", gen_dir);
    CHECK(run_py(args) == 0);
}

/* JPEG variants PIL cannot write, made with libjpeg directly:
 *   "ycck": CMYK pixels stored as YCCK (Adobe marker, transform 2);
 *   "rgb":  RGB stored without colour transform (Adobe transform 0);
 *   "arith": arithmetic-coded YCbCr. */
static void write_libjpeg(const char *path, const char *kind) {
    const int w = 45, h = 31, cmyk = strcmp(kind, "ycck") == 0, comps = cmyk ? 4 : 3;
    uint8_t *px = malloc((size_t)w * h * comps);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = px + ((size_t)y * w + x) * comps;
            p[0] = (uint8_t)(x * 5), p[1] = (uint8_t)(y * 8), p[2] = (uint8_t)(x * y);
            if (cmyk) p[3] = (uint8_t)(255 - x * 3);
        }
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *buf = NULL;
    unsigned long len = 0;
    jpeg_mem_dest(&c, &buf, &len);
    c.image_width = w, c.image_height = h, c.input_components = comps;
    c.in_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_set_defaults(&c);
    if (cmyk) jpeg_set_colorspace(&c, JCS_YCCK);
    if (strcmp(kind, "rgb") == 0) jpeg_set_colorspace(&c, JCS_RGB);
    if (strcmp(kind, "arith") == 0) c.arith_code = TRUE;
    jpeg_set_quality(&c, 92, TRUE);
    jpeg_start_compress(&c, TRUE);
    for (int y = 0; y < h; y++) {
        JSAMPROW row = px + (size_t)y * w * comps;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    t_write(path, buf, len);
    free(buf);
    free(px);
}

static void formats_match_pil(void) {
    static const char *vs_pil[] = {
        "baseline.jpg", "progressive.jpg", "s444.jpg", "gray.jpg", "cmyk.jpg", "ycck.jpg",  "rgb.jpg", "arith.jpg",
        "interlaced.png", "interlaced_g2.png", "orient6.png", "rgb.png",
        "gray.png",     "gray1.png",       "la.png",   "rgba.png", "pal.png",  "pal_trns.png", "pal4.png",
        "rgb_trns.png", "rgb24.bmp",       "pal8.bmp", "bw1.bmp",  "rgba32.bmp", "rgb.ppm", "gray.pgm",
        "bw.pbm",       "max100.ppm",      "orient1.jpg", "orient2.jpg", "orient3.jpg", "orient4.jpg",
        "orient5.jpg",  "orient6.jpg",     "orient7.jpg", "orient8.jpg", "orient_mm6.jpg",
        "lossy.webp",   "lossless.webp",   "alpha.webp", "alpha_lossy.webp", "anim.webp",
        "rgb.tif",      "lzw.tif",         "deflate.tiff", "packbits.tif", "tiled.tif", "gray.tif", "bw.tif",
        "pal.tif",      "rgba.tif",        "la.tif",     "cmyk.tif",   "pages.tif", "orient3.tif", "orient6.tif",
        "orient8.tif",
    };
    const int n = (int)(sizeof vs_pil / sizeof *vs_pil);
    char path[4096], ref[4096], jobs[4096];
    static const char *kinds[] = {"ycck", "rgb", "arith"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s.jpg", gen_dir, kinds[i]);
        write_libjpeg(path, kinds[i]);
    }
    snprintf(jobs, sizeof jobs, "%s/jobs.tsv", gen_dir);
    FILE *f = fopen(jobs, "w");
    for (int i = 0; i < n; i++) {
        /* An oriented TIFF is compared with PIL's upright PNG of the same picture (see pil_ref.py). */
        int oriented_tiff = !strncmp(vs_pil[i], "orient", 6) && strstr(vs_pil[i], ".tif");
        fprintf(f, "%s/%s%s\t%s/%s.ref.raw\n", gen_dir, vs_pil[i], oriented_tiff ? ".ref.png" : "", gen_dir, vs_pil[i]);
    }
    fclose(f);
    char args[8192];
    snprintf(args, sizeof args, "jobs '%s'", jobs);
    CHECK(run_py(args) == 0);
    for (int i = 0; i < n; i++) {
        ddps_image im;
        ddps_err err;
        snprintf(path, sizeof path, "%s/%s", gen_dir, vs_pil[i]);
        snprintf(ref, sizeof ref, "%s/%s.ref.raw", gen_dir, vs_pil[i]);
        if (ddps_image_load(path, &im, &err) != 0) {
            CHECKF(0, "%s", err.msg);
            continue;
        }
        CHECKF(diff_with_ref(&im, ref) == 0, "%s differs from PIL", vs_pil[i]);
        ddps_image_free(&im);
    }
    /* 16-bit PNGs and PGM: expected pixels written by the script (high byte;
     * round(v / maxval * 255) for the PGM). */
    static const char *vs_expect[] = {"rgb16.png", "rgba16.png", "gray16.png", "la16.png", "gray16.pgm"};
    for (int i = 0; i < 5; i++) {
        ddps_image im;
        ddps_err err;
        snprintf(path, sizeof path, "%s/%s", gen_dir, vs_expect[i]);
        if (ddps_image_load(path, &im, &err) != 0) {
            CHECKF(0, "%s", err.msg);
            continue;
        }
        const char *dot = strrchr(vs_expect[i], '.');
        if (strcmp(dot, ".png") == 0)
            snprintf(ref, sizeof ref, "%s/%.*s.expect.raw", gen_dir, (int)(dot - vs_expect[i]), vs_expect[i]);
        else
            snprintf(ref, sizeof ref, "%s/%s.expect.raw", gen_dir, vs_expect[i]);
        CHECKF(diff_with_ref(&im, ref) == 0, "%s differs from the expected high bytes", vs_expect[i]);
        ddps_image_free(&im);
    }
}

/* EXIF orientation: upright pixels, swapped sizes for 5..8, and the parser
 * on hand-made blocks including malformed ones. */
static void exif_orientation(void) {
    char path[4096];
    ddps_image up, im;
    ddps_err err;
    snprintf(path, sizeof path, "%s/orient1.jpg", gen_dir);
    CHECK(ddps_image_load(path, &up, &err) == 0);
    CHECK(up.w == 40 && up.h == 24);
    for (int o = 2; o <= 8; o++) {
        snprintf(path, sizeof path, "%s/orient%d.jpg", gen_dir, o);
        if (ddps_image_load(path, &im, &err) != 0) {
            CHECKF(0, "%s", err.msg);
            continue;
        }
        CHECKF(o >= 5 ? (im.w == 24 && im.h == 40) : (im.w == 40 && im.h == 24), "orientation %d: %dx%d", o, im.w, im.h);
        ddps_image_free(&im);
    }
    /* Orientation 6 = 90 degrees clockwise: the stored top-left corner (the
     * blue block) ends up top-right. */
    snprintf(path, sizeof path, "%s/orient6.jpg", gen_dir);
    CHECK(ddps_image_load(path, &im, &err) == 0);
    CHECK(im.px[((size_t)0 * im.w + (im.w - 1)) * 3 + 2] > 200 && im.px[2] < 100);
    ddps_image_free(&im);
    snprintf(path, sizeof path, "%s/orient3.jpg", gen_dir);
    CHECK(ddps_image_load(path, &im, &err) == 0);
    CHECK(im.px[((size_t)(im.h - 1) * im.w + (im.w - 1)) * 3 + 2] > 200 && im.px[2] < 100);
    ddps_image_free(&im);
    ddps_image_free(&up);

    /* Orient then the inverse orientation is the identity. */
    ddps_image a, b;
    random_image(&a, 5, 3, 9);
    random_image(&b, 5, 3, 9);
    static const int inverse[9] = {0, 1, 2, 3, 4, 5, 8, 7, 6};
    for (int o = 1; o <= 8; o++) {
        ddps_image_orient(&b, o);
        ddps_image_orient(&b, inverse[o]);
        CHECKF(max_diff(&a, &b) == 0, "orientation %d then %d", o, inverse[o]);
    }
    ddps_image_free(&a);
    ddps_image_free(&b);

    static const uint8_t ii[] = {'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 42, 0, 8, 0, 0, 0, 2, 0,
                                 0x0f, 0x01, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0,           /* Make, ignored */
                                 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0};
    CHECK(ddps_exif_orientation(ii, sizeof ii) == 6);
    CHECK(ddps_exif_orientation(ii + 6, sizeof ii - 6) == 6); /* without the Exif prefix (PNG eXIf) */
    for (size_t cut = 0; cut < sizeof ii - 4; cut++) CHECK(ddps_exif_orientation(ii, cut) == 0);
    uint8_t bad[sizeof ii];
    memcpy(bad, ii, sizeof ii);
    bad[10] = 0xf0; /* IFD offset far outside */
    CHECK(ddps_exif_orientation(bad, sizeof bad) == 0);
    memcpy(bad, ii, sizeof ii);
    bad[14] = 0xff, bad[15] = 0xff; /* 65535 entries claimed: the ones present still count (as in PIL) */
    CHECK(ddps_exif_orientation(bad, sizeof bad) == 6);
    CHECK(ddps_exif_orientation(bad, sizeof bad - 5) == 0); /* orientation entry cut */
    memcpy(bad, ii, sizeof ii);
    bad[30] = 7; /* orientation stored as UNDEFINED bytes: not a valid tag */
    CHECK(ddps_exif_orientation(bad, sizeof bad) == 0);
    memcpy(bad, ii, sizeof ii);
    bad[30] = 4, bad[36] = 3, bad[37] = 0; /* LONG 3 */
    CHECK(ddps_exif_orientation(bad, sizeof bad) == 3);
    memcpy(bad, ii, sizeof ii);
    bad[36] = 9; /* orientation 9 is not a thing */
    CHECK(ddps_exif_orientation(bad, sizeof bad) == 0);
    memcpy(bad, ii, sizeof ii);
    bad[6] = 'X';
    CHECK(ddps_exif_orientation(bad, sizeof bad) == 0);
}

/* ---- hostile input ------------------------------------------------------ */

static void expect_error(const char *path, const char *what) {
    ddps_image im = {1, 1, (uint8_t *)1};
    ddps_err err = {{0}};
    int rc = ddps_image_load(path, &im, &err);
    CHECKF(rc == -1, "%s (%s) decoded as %dx%d", path, what, im.w, im.h);
    CHECKF(rc == -1 && strstr(err.msg, path) != NULL, "%s: error does not name the file: %s", what, err.msg);
    CHECKF(strchr(err.msg, '\n') == NULL, "%s: error is not one line", what);
    CHECK(im.px == NULL && im.w == 0 && im.h == 0);
    if (rc == 0) ddps_image_free(&im);
    else fprintf(stderr, "  ok: %s\n", err.msg);
}

static void cut_file(const char *src, const char *dst, double frac) {
    char *buf;
    size_t len;
    ddps_err err;
    if (ddps_read_file(src, 1 << 26, &buf, &len, &err) != 0) {
        CHECKF(0, "%s", err.msg);
        return;
    }
    t_write(dst, buf, (size_t)(len * frac));
    free(buf);
}

static void hostile_inputs(void) {
    char path[4096], src[4096];
    snprintf(path, sizeof path, "%s/empty.jpg", gen_dir);
    t_write(path, "", 0);
    expect_error(path, "empty file");
    snprintf(path, sizeof path, "%s/text.jpg", gen_dir);
    t_write(path, "hello, I am not a JPEG\n", 23);
    expect_error(path, "text named .jpg");
    snprintf(path, sizeof path, "%s/ff.jpg", gen_dir);
    t_write(path, "\xff\xd8\xff", 3);
    expect_error(path, "JPEG signature only");
    snprintf(path, sizeof path, "%s/gif.png", gen_dir);
    t_write(path, "GIF89a\x01\x00\x01\x00", 10);
    expect_error(path, "GIF named .png");
    snprintf(path, sizeof path, "%s/missing.jpg", gen_dir);
    expect_error(path, "missing file");

    static const char *cut_these[] = {"baseline.jpg", "progressive.jpg", "s444.jpg",  "cmyk.jpg",  "rgb.png",
                                      "pal.png",      "rgb16.png",       "rgb24.bmp", "rgb.ppm",   "pal8.bmp",
                                      "lossy.webp",   "lossless.webp",   "anim.webp", "rgb.tif",   "lzw.tif",
                                      "tiled.tif"};
    for (int i = 0; i < (int)(sizeof cut_these / sizeof *cut_these); i++) {
        snprintf(src, sizeof src, "%s/%s", gen_dir, cut_these[i]);
        for (int k = 1; k <= 3; k++) {
            snprintf(path, sizeof path, "%s/cut%d_%s", gen_dir, k, cut_these[i]);
            cut_file(src, path, k / 4.0);
            expect_error(path, "truncated");
        }
    }
    /* Headers claiming 100000 x 100000 pixels: a TIFF IFD (width, height,
     * bits, photometric, an empty strip) and an extended WebP (VP8X) whose
     * canvas is 100000 x 100000 (a plain VP8L header cannot exceed 16384). */
    static const uint8_t huge_tif[] = {'I', 'I', 42, 0, 8, 0, 0, 0, 6, 0,
                                       0x00, 1, 4, 0, 1, 0, 0, 0, 0xa0, 0x86, 0x01, 0,   /* width 100000 */
                                       0x01, 1, 4, 0, 1, 0, 0, 0, 0xa0, 0x86, 0x01, 0,   /* height 100000 */
                                       0x02, 1, 3, 0, 1, 0, 0, 0, 8, 0, 0, 0,            /* 8 bits */
                                       0x06, 1, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0,            /* gray */
                                       0x11, 1, 4, 0, 1, 0, 0, 0, 8, 0, 0, 0,            /* strip at 8 */
                                       0x17, 1, 4, 0, 1, 0, 0, 0, 0, 0, 0, 0,            /* of 0 bytes */
                                       0, 0, 0, 0};
    snprintf(path, sizeof path, "%s/huge.tif", gen_dir);
    t_write(path, huge_tif, sizeof huge_tif);
    static const uint8_t huge_webp[] = {'R', 'I', 'F', 'F', 36, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'X',
                                        10, 0, 0, 0, 0, 0, 0, 0, 0x9f, 0x86, 0x01, 0x9f, 0x86, 0x01,
                                        'V', 'P', '8', 'L', 5, 0, 0, 0, 0x2f, 0, 0, 0, 0, 0};
    snprintf(path, sizeof path, "%s/huge.webp", gen_dir);
    t_write(path, huge_webp, sizeof huge_webp);
    static const char *made[] = {"huge.png",  "zero.png", "short_idat.png", "huge.jpg", "zero.jpg",
                                 "badhuff.jpg", "huge.bmp", "huge.ppm",     "huge.tif", "huge.webp"};
    for (int i = 0; i < (int)(sizeof made / sizeof *made); i++) {
        snprintf(path, sizeof path, "%s/%s", gen_dir, made[i]);
        expect_error(path, made[i]);
    }
    ddps_err err;
    ddps_image im;
    snprintf(path, sizeof path, "%s/huge.png", gen_dir);
    ddps_image_load(path, &im, &err);
    CHECKF(strstr(err.msg, "limit") != NULL, "huge.png: %s", err.msg);
    snprintf(path, sizeof path, "%s/huge.jpg", gen_dir);
    ddps_image_load(path, &im, &err);
    CHECKF(strstr(err.msg, "limit") != NULL, "huge.jpg: %s", err.msg);
    snprintf(path, sizeof path, "%s/huge.tif", gen_dir);
    ddps_image_load(path, &im, &err);
    CHECKF(strstr(err.msg, "limit") != NULL, "huge.tif: %s", err.msg);
    snprintf(path, sizeof path, "%s/badhuff.jpg", gen_dir);
    ddps_image_load(path, &im, &err);
    CHECKF(strstr(err.msg, "Huffman") != NULL || strstr(err.msg, "Corrupt") != NULL, "badhuff.jpg: %s", err.msg);
    /* A decode from memory names what the caller says. */
    CHECK(ddps_image_decode("xx", 2, "buffer-name", &im, &err) == -1 && strstr(err.msg, "buffer-name"));
}

/* Random byte mutations of valid files: errors or images, never a crash,
 * leak or sanitizer report. */
static void fuzz_no_crash(void) {
    static const char *seeds[] = {"baseline.jpg",   "progressive.jpg", "cmyk.jpg",  "arith.jpg",  "orient6.jpg",
                                  "rgb.png",        "pal_trns.png",    "rgb16.png", "orient6.png", "interlaced_g2.png",
                                  "rgb24.bmp",      "pal8.bmp",        "bw1.bmp",   "rgb.ppm",    "bw.pbm",
                                  "gray16.pgm",     "lossy.webp",      "alpha.webp", "anim.webp",  "rgb.tif",
                                  "lzw.tif",        "tiled.tif",       "pal.tif",    "cmyk.tif",   "orient6.tif"};
    const int nseeds = (int)(sizeof seeds / sizeof *seeds);
    ddps_rng r;
    ddps_rng_seed(&r, 2024);
    int ok = 0, failed = 0;
    for (int s = 0; s < nseeds; s++) {
        char path[4096], *buf;
        size_t len;
        ddps_err err;
        snprintf(path, sizeof path, "%s/%s", gen_dir, seeds[s]);
        if (ddps_read_file(path, 1 << 26, &buf, &len, &err) != 0) {
            CHECKF(0, "%s", err.msg);
            continue;
        }
        uint8_t *m = malloc(len);
        for (int it = 0; it < 120; it++) {
            memcpy(m, buf, len);
            int flips = 1 + (int)ddps_rng_below(&r, 8);
            for (int k = 0; k < flips; k++) {
                size_t at = ddps_rng_below(&r, len);
                /* Headers are where parsers break: bias toward the start. */
                if (ddps_rng_below(&r, 2)) at = ddps_rng_below(&r, len < 200 ? len : 200);
                m[at] = (uint8_t)ddps_rng_u64(&r);
            }
            size_t mlen = ddps_rng_below(&r, 4) ? len : ddps_rng_below(&r, len + 1);
            ddps_image im;
            if (ddps_image_decode(m, mlen, "fuzz", &im, &err) == 0) {
                ok++;
                CHECK(im.w > 0 && im.h > 0 && im.px != NULL);
                ddps_image_free(&im);
            } else {
                failed++;
                CHECK(strstr(err.msg, "fuzz") != NULL);
            }
        }
        free(m);
        free(buf);
    }
    fprintf(stderr, "  fuzz: %d decoded, %d refused\n", ok, failed);
    CHECK(failed > 0);
}

/* ---- encoding ----------------------------------------------------------- */

static void save_round_trips(void) {
    const char *dir = t_tmpdir("image_save");
    char path[4096];
    ddps_image a, b, smooth;
    ddps_err err;
    random_image(&a, 67, 41, 5);
    snprintf(path, sizeof path, "%s/a.png", dir);
    CHECKF(ddps_image_save(path, &a, 0, &err) == 0, "%s", err.msg);
    CHECKF(ddps_image_load(path, &b, &err) == 0, "%s", err.msg);
    CHECK(max_diff(&a, &b) == 0); /* PNG is lossless */
    ddps_image_free(&b);
    snprintf(path, sizeof path, "%s/UPPER.PNG", dir);
    CHECK(ddps_image_save(path, &a, 0, &err) == 0);

    /* JPEG: a smooth picture (the upscaled generated photo) at quality 95. */
    char src[4096];
    snprintf(src, sizeof src, "%s/baseline.jpg", gen_dir);
    CHECK(ddps_image_load(src, &b, &err) == 0);
    CHECK(ddps_image_resize(&b, 300, 200, &smooth, &err) == 0);
    ddps_image_free(&b);
    snprintf(path, sizeof path, "%s/s.jpg", dir);
    CHECKF(ddps_image_save(path, &smooth, 95, &err) == 0, "%s", err.msg);
    CHECK(ddps_image_load(path, &b, &err) == 0);
    double sum = 0;
    int worst = max_diff(&smooth, &b);
    for (size_t i = 0; i < (size_t)b.w * b.h * 3; i++) sum += abs((int)smooth.px[i] - (int)b.px[i]);
    double mean = sum / ((double)b.w * b.h * 3);
    fprintf(stderr, "  JPEG q95 round trip: mean abs diff %.3f, max %d\n", mean, worst);
    CHECK(b.w == 300 && b.h == 200);
    CHECKF(mean < 1.5 && worst >= 0 && worst < 40, "mean %.3f max %d", mean, worst);
    ddps_image_free(&b);
    /* Lower quality: smaller file. */
    snprintf(path, sizeof path, "%s/s30.jpeg", dir);
    CHECK(ddps_image_save(path, &smooth, 30, &err) == 0);
    struct stat st95, st30;
    snprintf(src, sizeof src, "%s/s.jpg", dir);
    CHECK(stat(src, &st95) == 0 && stat(path, &st30) == 0 && st30.st_size < st95.st_size);

    /* Errors, and no temporary files left behind. */
    snprintf(path, sizeof path, "%s/x.gif", dir);
    CHECK(ddps_image_save(path, &a, 90, &err) == -1 && strstr(err.msg, path));
    snprintf(path, sizeof path, "%s/q.jpg", dir);
    CHECK(ddps_image_save(path, &a, 0, &err) == -1 && strstr(err.msg, "quality"));
    CHECK(ddps_image_save(path, &a, 101, &err) == -1);
    snprintf(path, sizeof path, "%s/no/such/dir/a.png", dir);
    CHECK(ddps_image_save(path, &a, 0, &err) == -1);
    ddps_image empty = {0, 0, NULL};
    snprintf(path, sizeof path, "%s/e.png", dir);
    CHECK(ddps_image_save(path, &empty, 0, &err) == -1);
    char *out = NULL;
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c tmp", dir);
    t_run(cmd, &out);
    CHECKF(out && atoi(out) == 0, "temporary files left: %s", out ? out : "?");
    free(out);
    ddps_image_free(&a);
    ddps_image_free(&smooth);
}

/* ---- small operations --------------------------------------------------- */

static void small_ops(void) {
    int w, h;
    ddps_resize_shorter_size(500, 375, 256, &w, &h);
    CHECK(w == 341 && h == 256);
    ddps_resize_shorter_size(375, 500, 256, &w, &h);
    CHECK(w == 256 && h == 341);
    ddps_resize_shorter_size(32, 32, 256, &w, &h);
    CHECK(w == 256 && h == 256);
    ddps_resize_shorter_size(320, 480, 256, &w, &h);
    CHECK(w == 256 && h == 384);
    ddps_resize_shorter_size(3, 1000, 256, &w, &h); /* 85333.33 truncated */
    CHECK(w == 256 && h == 85333);
    ddps_resize_shorter_size(49, 7, 7, &w, &h); /* 49.0 exactly */
    CHECK(w == 49 && h == 7);

    ddps_image a, c;
    ddps_err err;
    random_image(&a, 10, 6, 3);
    CHECK(ddps_image_crop(&a, 2, 1, 5, 4, &c, &err) == 0);
    CHECK(c.w == 5 && c.h == 4 && memcmp(c.px, a.px + (1 * 10 + 2) * 3, 15) == 0);
    CHECK(memcmp(c.px + 3 * 15, a.px + (4 * 10 + 2) * 3, 15) == 0);
    ddps_image_free(&c);
    CHECK(ddps_image_crop(&a, 6, 0, 5, 4, &c, &err) == -1 && c.px == NULL);
    CHECK(ddps_image_crop(&a, -1, 0, 5, 4, &c, &err) == -1);
    CHECK(ddps_image_crop(&a, 0, 0, 0, 4, &c, &err) == -1);
    CHECK(ddps_image_crop(&a, 0, 3, 10, 4, &c, &err) == -1 && strstr(err.msg, "10x6"));

    /* Paste clipped on every side. */
    ddps_image canvas;
    CHECK(ddps_image_alloc(&canvas, 8, 8) == 0);
    ddps_image_paste(&canvas, &a, -3, -2); /* a's (3..9, 2..5) lands at (0..6, 0..3) */
    CHECK(memcmp(canvas.px, a.px + (2 * 10 + 3) * 3, 7 * 3) == 0);
    CHECK(canvas.px[7 * 3] == 0 && canvas.px[(4 * 8) * 3] == 0);
    ddps_image_paste(&canvas, &a, 6, 7); /* only a's (0..1, 0) */
    CHECK(memcmp(canvas.px + (7 * 8 + 6) * 3, a.px, 6) == 0);
    ddps_image_paste(&canvas, &a, 100, 100);
    ddps_image_paste(&canvas, &a, -100, 0);
    ddps_image_free(&canvas);

    CHECK(ddps_image_alloc(&canvas, 0, 5) == -1 && canvas.px == NULL);
    CHECK(ddps_image_alloc(&canvas, 1 << 15, 1 << 14) == -1);
    CHECK(ddps_image_alloc(&canvas, 1 << 14, 1 << 14) == 0); /* exactly the limit */
    ddps_image_free(&canvas);
    CHECK(canvas.px == NULL && canvas.w == 0);

    float *f = malloc(sizeof(float) * 10 * 6 * 3);
    a.px[0] = 0, a.px[1] = 255, a.px[2] = 51;
    ddps_image_to_float(&a, f);
    CHECK(f[0] == -1.0f && f[60] == 1.0f && f[120] == ddps_pixel_to_unit(51));
    CHECK(f[1] == ddps_pixel_to_unit(a.px[3]) && f[60 + 59] == ddps_pixel_to_unit(a.px[59 * 3 + 1]));
    free(f);
    /* Every byte as the reference computes it (torchvision ToTensor +
     * Normalize(0.5, 0.5) in float32), not as the double formula rounds it. */
    int off_ref = 0, off_double = 0;
    for (int v = 0; v < 256; v++) {
        volatile float t = (float)v / 255.0f;
        float ref = (t - 0.5f) / 0.5f, got;
        uint8_t b = (uint8_t)v;
        ddps_pixels_to_unit(&b, 1, &got);
        off_ref += got != ref || ddps_pixel_to_unit(b) != ref;
        off_double += got != (float)(v / 127.5 - 1.0);
    }
    CHECK(off_ref == 0);
    CHECK(off_double == 128); /* the two conversions the reference tells apart */
    ddps_image_free(&a);
}

/* A 500x375 JPEG decoded and resized to 256 on the short side: the
 * pipeline's inner loop. */
static void speed(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/speed.jpg", gen_dir);
    char *buf;
    size_t len;
    ddps_err err;
    if (ddps_read_file(path, 1 << 26, &buf, &len, &err) != 0) {
        CHECKF(0, "%s", err.msg);
        return;
    }
    const int iters = 30;
    double best = 1e9, t_all = now_ms();
    for (int i = 0; i < iters; i++) {
        double t0 = now_ms();
        ddps_image im, r;
        CHECK(ddps_image_decode(buf, len, path, &im, &err) == 0);
        CHECK(im.w == 500 && im.h == 375);
        CHECK(ddps_image_resize(&im, 341, 256, &r, &err) == 0);
        ddps_image_free(&im);
        ddps_image_free(&r);
        double t = now_ms() - t0;
        if (t < best) best = t;
    }
    double mean = (now_ms() - t_all) / iters;
    fprintf(stderr, "  500x375 JPEG decode + resize to 341x256: best %.2f ms, mean %.2f ms\n", best, mean);
    free(buf);
}

int main(void) {
    find_pyref();
    TEST(small_ops);
    TEST(resize_noise_matches_pil);
    TEST(make_generated);
    TEST(formats_match_pil);
    TEST(exif_orientation);
    TEST(hostile_inputs);
    TEST(fuzz_no_crash);
    TEST(save_round_trips);
    TEST(speed);
    TEST(datasets_match_pil);
    return t_done();
}
