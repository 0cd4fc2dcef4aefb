/* Prefetching loader: order, sizes and pixels against a direct
 * ddps_image_load + ddps_image_resize, broken files, early stops, bad
 * arguments. Leaks are caught by the ASan build. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/image.h"
#include "pipeline/dataset.h"
#include "pipeline/loader.h"
#include "testlib.h"
#include "util/fs.h"

/* What the loader must produce for one item, computed the slow way. */
static int reference(const ddps_dataset *d, int index, int size, int square, ddps_image *orig, ddps_image *res) {
    char *path = ddps_path_join(d->root, d->items[index].relpath);
    ddps_err err = {{0}};
    int rc = ddps_image_load(path, orig, &err);
    free(path);
    if (rc) return -1;
    int w = size, h = size;
    if (!square) ddps_resize_shorter_size(orig->w, orig->h, size, &w, &h);
    if (ddps_image_resize(orig, w, h, res, &err)) {
        ddps_image_free(orig);
        return -1;
    }
    return 0;
}

static int same_image(const ddps_image *a, const ddps_image *b) {
    return a->w == b->w && a->h == b->h && a->px && b->px &&
           memcmp(a->px, b->px, (size_t)a->w * (size_t)a->h * 3) == 0;
}

/* Runs the loader over indices and compares every result with the reference. */
static void check_run(const ddps_dataset *d, const int *idx, int n, int size, int square, int keep, int threads,
                      int ahead) {
    ddps_loader *l = NULL;
    ddps_err err = {{0}};
    CHECKF(ddps_loader_start(d, idx, n, size, square, keep, threads, ahead, &l, &err) == 0, "%s", err.msg);
    if (!l) return;
    int got = 0, bad = 0;
    for (ddps_loaded *x; (x = ddps_loader_next(l)); ddps_loaded_free(x), got++) {
        if (got >= n) {
            CHECKF(0, "more results than indices");
            ddps_loaded_free(x);
            break;
        }
        CHECKF(x->index == idx[got], "result %d is item %d, want %d", got, x->index, idx[got]);
        CHECKF(x->ok, "%s", x->error);
        ddps_image o, r;
        if (!x->ok || reference(d, x->index, size, square, &o, &r)) {
            bad++;
            continue;
        }
        CHECK(x->orig_w == o.w && x->orig_h == o.h);
        CHECKF(same_image(&x->resized, &r), "%s: resized %dx%d differs (want %dx%d)", d->items[x->index].relpath,
               x->resized.w, x->resized.h, r.w, r.h);
        if (square) CHECK(x->resized.w == size && x->resized.h == size);
        else CHECK((x->resized.w < x->resized.h ? x->resized.w : x->resized.h) == size);
        if (keep) CHECK(same_image(&x->original, &o));
        else CHECK(x->original.px == NULL && x->original.w == 0);
        ddps_image_free(&o);
        ddps_image_free(&r);
    }
    CHECKF(got == n, "%d results for %d indices", got, n);
    CHECK(bad == 0);
    CHECK(ddps_loader_next(l) == NULL); /* stays at the end */
    ddps_loader_free(l);
}

static void test_imagewoof_in_order(void) {
    ddps_dataset d;
    ddps_err err = {{0}};
    ddps_dataset_opts o = {0};
    o.max_per_class = 3;
    o.seed = 7;
    CHECKF(ddps_dataset_scan(t_shared("data/imagewoof-mini/train"), &o, &d, &err) == 0, "%s", err.msg);
    CHECK(d.n_items == 30);
    int idx[40], n = 0;
    /* Reversed, then a few repeats: the order of the list is the order out. */
    for (int i = d.n_items - 1; i >= 0; i--) idx[n++] = i;
    idx[n++] = 4;
    idx[n++] = 4;
    idx[n++] = 0;
    check_run(&d, idx, n, 256, 0, 1, 3, 4);
    check_run(&d, idx, 8, 100, 0, 0, 1, 1); /* one worker, one image ahead */
    check_run(&d, idx, 6, 64, 1, 0, 2, 3);  /* square: the aspect ratio is not kept */
    ddps_dataset_free(&d);
}

static void test_cifar_square(void) {
    ddps_dataset d;
    ddps_err err = {{0}};
    CHECKF(ddps_dataset_scan(t_shared("data/cifar10-mini/test"), NULL, &d, &err) == 0, "%s", err.msg);
    int *idx = ddps_malloc((size_t)d.n_items * sizeof *idx);
    for (int i = 0; i < d.n_items; i++) idx[i] = i;
    /* Low-res mode: exactly size x size, the original kept for writing out. */
    check_run(&d, idx, d.n_items, 64, 1, 1, 4, 8);
    /* More workers than the window is wide, many times over: order must hold. */
    for (int rep = 0; rep < 3; rep++) check_run(&d, idx, d.n_items, 40, 1, 0, 8, 2);
    free(idx);
    ddps_dataset_free(&d);
}

static void copy_file(const char *from, const char *to, size_t max_len) {
    char *buf;
    size_t len;
    ddps_err err;
    if (ddps_read_file(from, 1 << 24, &buf, &len, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(2);
    }
    t_write(to, buf, len < max_len ? len : max_len);
    free(buf);
}

static void test_broken_files(void) {
    const char *tmp = t_tmpdir("loader_broken");
    char *cls = ddps_path_join(tmp, "cls");
    CHECK(mkdir(cls, 0755) == 0);
    /* A real JPEG, the same one cut in half, text named .jpg, a lossless PNG
     * copy written by ddps, and a file with an image extension whose format
     * is not decoded. */
    ddps_dataset src;
    ddps_err err = {{0}};
    CHECKF(ddps_dataset_scan(t_shared("data/cifar10-mini/test"), NULL, &src, &err) == 0, "%s", err.msg);
    char *real = ddps_path_join(src.root, src.items[0].relpath);
    char *p = ddps_path_join(cls, "a_good.jpg");
    copy_file(real, p, (size_t)-1);
    free(p);
    p = ddps_path_join(cls, "b_truncated.jpg");
    copy_file(real, p, 300);
    free(p);
    p = ddps_path_join(cls, "c_text.jpg");
    t_write(p, "this is not an image\n", 21);
    free(p);
    ddps_image img;
    CHECKF(ddps_image_load(real, &img, &err) == 0, "%s", err.msg);
    p = ddps_path_join(cls, "d_copy.png");
    CHECKF(ddps_image_save(p, &img, 0, &err) == 0, "%s", err.msg);
    free(p);
    p = ddps_path_join(cls, "e_fake.webp");
    t_write(p, "RIFF\x10\0\0\0WEBPVP8 ", 16);
    free(p);
    free(real);
    ddps_dataset_free(&src);

    ddps_dataset d;
    CHECKF(ddps_dataset_scan(tmp, NULL, &d, &err) == 0, "%s", err.msg);
    CHECK(d.n_items == 5);
    int idx[5] = {0, 1, 2, 3, 4};
    ddps_loader *l;
    CHECKF(ddps_loader_start(&d, idx, 5, 32, 1, 1, 2, 3, &l, &err) == 0, "%s", err.msg);
    ddps_loaded *x[5] = {0};
    for (int i = 0; i < 5; i++) {
        x[i] = ddps_loader_next(l);
        CHECK(x[i] && x[i]->index == i);
    }
    CHECK(ddps_loader_next(l) == NULL);
    ddps_loader_free(l);
    if (x[0] && x[1] && x[2] && x[3] && x[4]) {
        CHECKF(x[0]->ok && same_image(&x[0]->original, &img), "%s", x[0]->error);
        CHECKF(x[3]->ok && same_image(&x[3]->original, &img), "%s", x[3]->error); /* PNG round trip */
        CHECK(x[3]->ok && same_image(&x[3]->resized, &x[0]->resized));
        /* The decoder's reason follows the relative path; its wording is image.c's. */
        const int broken[3] = {1, 2, 4};
        const char *names[3] = {"cls/b_truncated.jpg: ", "cls/c_text.jpg: ", "cls/e_fake.webp: "};
        for (int k = 0; k < 3; k++) {
            const ddps_loaded *b = x[broken[k]];
            CHECK(!b->ok);
            CHECKF(strncmp(b->error, names[k], strlen(names[k])) == 0, "error '%s'", b->error);
            CHECKF(strlen(b->error) > strlen(names[k]) + 3, "no reason: '%s'", b->error);
            CHECKF(strstr(b->error, tmp) == NULL, "absolute path in '%s'", b->error);
            CHECK(strchr(b->error, '\n') == NULL);
            CHECK(b->resized.px == NULL && b->original.px == NULL && b->orig_w == 0);
        }
    }
    for (int i = 0; i < 5; i++) ddps_loaded_free(x[i]);
    ddps_image_free(&img);

    /* A file that disappears between the scan and the load. */
    p = ddps_path_join(cls, "a_good.jpg");
    CHECK(unlink(p) == 0);
    free(p);
    CHECKF(ddps_loader_start(&d, idx, 1, 32, 1, 0, 1, 1, &l, &err) == 0, "%s", err.msg);
    ddps_loaded *gone = ddps_loader_next(l);
    CHECK(gone && !gone->ok && strncmp(gone->error, "cls/a_good.jpg: ", 16) == 0);
    CHECKF(gone && strstr(gone->error, "No such file"), "%s", gone ? gone->error : "");
    ddps_loaded_free(gone);
    ddps_loader_free(l);
    ddps_dataset_free(&d);
    free(cls);
}

static void test_early_stop(void) {
    ddps_dataset d;
    ddps_err err = {{0}};
    CHECKF(ddps_dataset_scan(t_shared("data/cifar10-mini/train"), NULL, &d, &err) == 0, "%s", err.msg);
    int *idx = ddps_malloc((size_t)d.n_items * sizeof *idx);
    for (int i = 0; i < d.n_items; i++) idx[i] = i;
    ddps_loader *l;
    /* Stop after three results, with workers busy and the window full. */
    CHECK(ddps_loader_start(&d, idx, d.n_items, 64, 1, 1, 4, 8, &l, &err) == 0);
    for (int i = 0; i < 3; i++) {
        ddps_loaded *x = ddps_loader_next(l);
        CHECK(x && x->index == i && x->ok);
        ddps_loaded_free(x);
    }
    ddps_loader_free(l);
    /* Stop before taking anything; and keep one result past the loader's end. */
    CHECK(ddps_loader_start(&d, idx, d.n_items, 64, 0, 0, 2, 4, &l, &err) == 0);
    ddps_loader_free(l);
    CHECK(ddps_loader_start(&d, idx + 10, 5, 16, 1, 0, 3, 16, &l, &err) == 0);
    ddps_loaded *kept = ddps_loader_next(l);
    ddps_loader_free(l);
    CHECK(kept && kept->index == 10 && kept->ok && kept->resized.w == 16);
    ddps_loaded_free(kept);
    /* Stop while workers are in the middle of decoding larger images: what
     * they finish after the stop must be freed too (ASan checks). */
    ddps_dataset woof;
    CHECKF(ddps_dataset_scan(t_shared("data/imagewoof-mini/train"), NULL, &woof, &err) == 0, "%s", err.msg);
    for (int rep = 0; rep < 3; rep++) {
        CHECK(ddps_loader_start(&woof, idx, woof.n_items, 256, 0, 1, 4, 64, &l, &err) == 0);
        ddps_loaded *first = ddps_loader_next(l);
        CHECK(first && first->index == 0 && first->ok);
        ddps_loaded_free(first);
        ddps_loader_free(l);
    }
    ddps_dataset_free(&woof);
    /* An empty list: no workers, next is NULL at once. */
    CHECK(ddps_loader_start(&d, NULL, 0, 64, 0, 0, 4, 4, &l, &err) == 0);
    CHECK(l && ddps_loader_next(l) == NULL && ddps_loader_next(l) == NULL);
    ddps_loader_free(l);
    ddps_loader_free(NULL);
    ddps_loaded_free(NULL);
    CHECK(ddps_loader_next(NULL) == NULL);
    free(idx);
    ddps_dataset_free(&d);
}

static void expect_start_error(const ddps_dataset *d, const int *idx, int n, int size, int threads, int ahead,
                               const char *want) {
    static char dummy;
    ddps_loader *l = (ddps_loader *)&dummy; /* must be reset to NULL */
    ddps_err err = {{0}};
    CHECK(ddps_loader_start(d, idx, n, size, 0, 0, threads, ahead, &l, &err) == -1);
    CHECK(l == NULL);
    CHECKF(strstr(err.msg, want) != NULL, "want '%s' in: %s", want, err.msg);
}

static void test_bad_arguments(void) {
    ddps_dataset d;
    ddps_err err = {{0}};
    CHECKF(ddps_dataset_scan(t_shared("data/cifar10-mini/test"), NULL, &d, &err) == 0, "%s", err.msg);
    int idx[3] = {0, 99, 5};
    expect_start_error(&d, idx, 3, 0, 1, 1, "image size must be");
    expect_start_error(&d, idx, 3, 32, 0, 1, "thread count must be");
    expect_start_error(&d, idx, 3, 32, 100000, 1, "thread count must be");
    expect_start_error(&d, idx, 3, 32, 1, 0, "images ahead must be");
    expect_start_error(&d, idx, -1, 32, 1, 1, "no dataset or index list");
    expect_start_error(&d, NULL, 3, 32, 1, 1, "no dataset or index list");
    expect_start_error(NULL, idx, 3, 32, 1, 1, "no dataset or index list");
    int out_of_range[3] = {0, 100, 5};
    expect_start_error(&d, out_of_range, 3, 32, 1, 1, "entry 1 of the index list is 100");
    int negative[2] = {-1, 0};
    expect_start_error(&d, negative, 2, 32, 1, 1, "entry 0 of the index list is -1");
    ddps_dataset_free(&d);
}

int main(void) {
    TEST(test_imagewoof_in_order);
    TEST(test_cifar_square);
    TEST(test_broken_files);
    TEST(test_early_stop);
    TEST(test_bad_arguments);
    return t_done();
}
