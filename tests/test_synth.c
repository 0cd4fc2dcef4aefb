/* Synthetic dataset: the files exist and decode at the right size, a seed
 * gives byte-identical files, classes differ measurably, bad arguments are
 * refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "tools/demo.h"
#include "testlib.h"
#include "util/fs.h"

#pragma GCC diagnostic ignored "-Wformat-truncation" /* paths are far below the buffer sizes */

enum { NC = 8, PER = 6, SIZE = 64 };

static char dir_a[2048], dir_b[2048], dir_c[2048];
static const char *names[NC];

static void read_bytes(const char *path, char **buf, size_t *len) {
    ddps_err err;
    *buf = NULL;
    *len = 0;
    if (ddps_read_file(path, 1 << 24, buf, len, &err) != 0) CHECKF(0, "%s", err.msg);
}

static void generates_files(void) {
    ddps_err err;
    snprintf(dir_a, sizeof dir_a, "%s", t_tmpdir("synth_a"));
    snprintf(dir_b, sizeof dir_b, "%s", t_tmpdir("synth_b"));
    snprintf(dir_c, sizeof dir_c, "%s", t_tmpdir("synth_c"));
    CHECKF(ddps_synth_dataset(dir_a, NC, PER, SIZE, 7, names, &err) == 0, "%s", err.msg);
    CHECKF(ddps_synth_dataset(dir_b, NC, PER, SIZE, 7, NULL, &err) == 0, "%s", err.msg);
    CHECKF(ddps_synth_dataset(dir_c, NC, PER, SIZE, 8, NULL, &err) == 0, "%s", err.msg);
    static const char *expect[NC] = {"circle", "square", "triangle", "stripes", "checkerboard", "ring", "cross",
                                     "gradient"};
    for (int c = 0; c < NC; c++) CHECKF(names[c] && strcmp(names[c], expect[c]) == 0, "class %d", c);

    int found = 0, same = 0, differ_seed = 0;
    for (int c = 0; c < NC; c++)
        for (int i = 0; i < PER; i++) {
            char pa[4096], pb[4096], pc[4096];
            snprintf(pa, sizeof pa, "%s/%s/%s_%03d.png", dir_a, names[c], names[c], i);
            snprintf(pb, sizeof pb, "%s/%s/%s_%03d.png", dir_b, names[c], names[c], i);
            snprintf(pc, sizeof pc, "%s/%s/%s_%03d.png", dir_c, names[c], names[c], i);
            ddps_image im;
            if (ddps_image_load(pa, &im, &err) != 0) {
                CHECKF(0, "%s", err.msg);
                continue;
            }
            found++;
            CHECK(im.w == SIZE && im.h == SIZE);
            /* What ddps_synth_draw gives is what was written. */
            uint8_t *px = malloc(SIZE * SIZE * 3);
            ddps_synth_draw(c, i, SIZE, 7, px);
            CHECK(memcmp(px, im.px, SIZE * SIZE * 3) == 0);
            free(px);
            ddps_image_free(&im);
            char *a, *b, *cc;
            size_t la, lb, lc;
            read_bytes(pa, &a, &la);
            read_bytes(pb, &b, &lb);
            read_bytes(pc, &cc, &lc);
            same += a && b && la == lb && memcmp(a, b, la) == 0;
            differ_seed += a && cc && (la != lc || memcmp(a, cc, la) != 0);
            free(a);
            free(b);
            free(cc);
        }
    CHECKF(found == NC * PER, "%d of %d files decode", found, NC * PER);
    CHECKF(same == NC * PER, "%d of %d files identical for the same seed", same, NC * PER);
    CHECKF(differ_seed == NC * PER, "%d of %d files differ for another seed", differ_seed, NC * PER);
    /* Nothing else in a class folder (no temporary files). */
    char cmd[4200], *out = NULL;
    snprintf(cmd, sizeof cmd, "find '%s' -type f | wc -l", dir_a);
    t_run(cmd, &out);
    CHECKF(out && atoi(out) == NC * PER, "files: %s", out ? out : "?");
    free(out);
}

/* Per class: mean R, G, B and the mean absolute horizontal and vertical
 * neighbour difference (texture), over all its pictures. Every pair of
 * classes must be far apart in this space, and pictures of one class must
 * not repeat. */
static void classes_differ(void) {
    double feat[NC][5] = {{0}};
    for (int c = 0; c < NC; c++) {
        uint8_t *first = NULL;
        for (int i = 0; i < PER; i++) {
            char p[4096];
            ddps_image im;
            ddps_err err;
            snprintf(p, sizeof p, "%s/%s/%s_%03d.png", dir_a, names[c], names[c], i);
            if (ddps_image_load(p, &im, &err) != 0) {
                CHECKF(0, "%s", err.msg);
                continue;
            }
            double s[5] = {0};
            for (int y = 0; y < SIZE; y++)
                for (int x = 0; x < SIZE; x++) {
                    const uint8_t *q = im.px + ((size_t)y * SIZE + x) * 3;
                    for (int k = 0; k < 3; k++) s[k] += q[k];
                    if (x + 1 < SIZE)
                        for (int k = 0; k < 3; k++) s[3] += abs((int)q[k] - (int)q[3 + k]);
                    if (y + 1 < SIZE)
                        for (int k = 0; k < 3; k++) s[4] += abs((int)q[k] - (int)q[SIZE * 3 + k]);
                }
            for (int k = 0; k < 5; k++) feat[c][k] += s[k] / (SIZE * SIZE) / PER;
            if (i == 0) {
                first = im.px;
                im.px = NULL;
            } else {
                CHECKF(memcmp(first, im.px, SIZE * SIZE * 3) != 0, "%s: pictures 0 and %d are equal", names[c], i);
            }
            ddps_image_free(&im);
        }
        free(first);
        fprintf(stderr, "  %-13s mean rgb %6.1f %6.1f %6.1f  texture %5.1f %5.1f\n", names[c], feat[c][0], feat[c][1],
                feat[c][2], feat[c][3], feat[c][4]);
    }
    double closest = 1e9;
    for (int a = 0; a < NC; a++)
        for (int b = a + 1; b < NC; b++) {
            double d = 0;
            for (int k = 0; k < 5; k++) d += fabs(feat[a][k] - feat[b][k]);
            if (d < closest) closest = d;
            CHECKF(d > 8.0, "classes %s and %s are too alike (L1 distance %.2f)", names[a], names[b], d);
        }
    fprintf(stderr, "  closest pair of classes: L1 distance %.2f\n", closest);
}

static void bad_arguments(void) {
    ddps_err err;
    const char *dir = t_tmpdir("synth_bad");
    CHECK(ddps_synth_dataset(dir, 0, 1, 32, 1, NULL, &err) == -1 && strstr(err.msg, "classes"));
    CHECK(ddps_synth_dataset(dir, 9, 1, 32, 1, NULL, &err) == -1 && strstr(err.msg, "1..8"));
    CHECK(ddps_synth_dataset(dir, 2, 0, 32, 1, NULL, &err) == -1 && strstr(err.msg, "per class"));
    CHECK(ddps_synth_dataset(dir, 2, 1, 4, 1, NULL, &err) == -1 && strstr(err.msg, "size"));
    /* Root is a regular file. */
    char file[4096];
    snprintf(file, sizeof file, "%s/plain", dir);
    t_write(file, "x", 1);
    CHECK(ddps_synth_dataset(file, 2, 1, 32, 1, NULL, &err) == -1 && strstr(err.msg, "plain"));
    /* Fewer classes: the first ones, and the small size works. */
    const char *nm[NC] = {0};
    snprintf(file, sizeof file, "%s/ok", dir);
    CHECKF(ddps_synth_dataset(file, 3, 2, 8, 1, nm, &err) == 0, "%s", err.msg);
    CHECK(nm[0] && strcmp(nm[2], "triangle") == 0 && nm[3] == NULL);
    snprintf(file, sizeof file, "%s/ok/stripes", dir);
    CHECK(!ddps_is_dir(file));
    snprintf(file, sizeof file, "%s/ok/triangle/triangle_001.png", dir);
    CHECK(ddps_is_file(file));
}

int main(void) {
    TEST(generates_files);
    TEST(classes_differ);
    TEST(bad_arguments);
    return t_done();
}
