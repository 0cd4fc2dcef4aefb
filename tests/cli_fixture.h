/* Fixtures shared by the tests that run `ddps score` on a small synthetic
 * dataset (test_reliab.c, test_sticky.c, test_store_readonly.c): patterned
 * PNGs written on the spot, and one-number SQL queries on the store they
 * fill. Header-only (static functions) because every tests/test_*.c is its
 * own program. */
#ifndef DDPS_TESTS_CLI_FIXTURE_H
#define DDPS_TESTS_CLI_FIXTURE_H

#include <sqlite3.h>
#include <stdio.h>

#include "io/image.h"
#include "testlib.h"
#include "util/fs.h"

/* Not every test program uses every helper. */
#define CF_FN static __attribute__((unused))

/* A w x h PNG at path with a deterministic pattern (seed varies it). */
CF_FN void cf_write_png(const char *path, int w, int h, int seed) {
    ddps_image img;
    ddps_err err;
    CHECK(ddps_image_alloc(&img, w, h) == 0);
    for (size_t i = 0; i < (size_t)w * h * 3; i++) img.px[i] = (uint8_t)(i * 7 + (size_t)seed * 31);
    CHECKF(ddps_image_save(path, &img, 95, &err) == 0, "%s", err.msg);
    ddps_image_free(&img);
}

/* dir/data/cat/ok0.png .. ok<n-1>.png: n patterned 40x36 PNGs in one class. */
CF_FN void cf_small_dataset(const char *dir, int n) {
    char p[4096];
    ddps_err err;
    snprintf(p, sizeof p, "%s/data/cat", dir);
    CHECK(ddps_mkdirs(p, &err) == 0);
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/data/cat/ok%d.png", dir, i);
        cf_write_png(p, 40, 36, i);
    }
}

/* The first column of the first row of sql on the database db, opened
 * read-only; -1 when it cannot be opened, prepared or has no row. */
CF_FN long long cf_sql_int(const char *db, const char *sql) {
    sqlite3 *h;
    long long v = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
    }
    sqlite3_close(h);
    return v;
}

#endif
