/* The store: create/reopen, bind checks, one transaction per image, data
 * that survives close and kill -9, clustering and its ranks, and files that
 * are not (or no longer) valid stores refused with one clear line. */
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pipeline/store.h"
#include "testlib.h"
#include "util/rng.h"

#define DIM 8

static char path_buf[4096];
static const char *store_path(const char *dir, const char *name) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", dir, name);
    return path_buf;
}

/* Runs SQL on a store file behind ddps's back (hand edits, corruption). */
static void raw_sql(const char *path, const char *sql) {
    sqlite3 *db;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) fprintf(stderr, "raw_sql %s: %s\n", sql, sqlite3_errmsg(db));
    CHECK(rc == SQLITE_OK);
    sqlite3_close(db);
}

/* One image with n candidates: features near blob centre `blob` (one-hot
 * axis, so blobs are far apart), score given per candidate. */
typedef struct {
    ddps_candidate cand[8];
    float feat[8][DIM];
    ddps_image_result r;
} fake_image;

static void make_image(fake_image *f, int class_id, const char *relpath, int n, int blob, float score, uint64_t seed) {
    ddps_rng rng;
    ddps_rng_seed(&rng, seed);
    memset(f, 0, sizeof *f);
    for (int i = 0; i < n; i++) {
        for (int d = 0; d < DIM; d++) f->feat[i][d] = (float)(0.01 * ddps_rng_normal(&rng)) + (d == blob ? 1.0f : 0.0f);
        ddps_candidate *c = &f->cand[i];
        c->w.x0 = 10 + i;
        c->w.y0 = 5;
        c->w.x1 = 110 + i;
        c->w.y1 = 105.5;
        c->w.rx = 3;
        c->w.ry = 4;
        c->w.rw = 50;
        c->w.rh = 50;
        c->w.score = score - 0.1f * i;
        c->feature = f->feat[i];
    }
    f->r = (ddps_image_result){class_id, relpath, 200, 150, 341, 256, 0.25f, n, f->cand, DIM, 0.5};
}

static void create_reopen(void) {
    const char *dir = t_tmpdir("store_create");
    char path[4096];
    snprintf(path, sizeof path, "%s", store_path(dir, "s.db"));
    ddps_store *s;
    ddps_err err = {{0}};
    CHECKF(ddps_store_open(path, 0, &s, &err) == 0, "%s", err.msg);
    char *v = NULL;
    CHECK(ddps_store_get_meta(s, "ddps_version", &v, &err) == 0 && v && strcmp(v, DDPS_VERSION) == 0);
    free(v);
    CHECK(ddps_store_get_meta(s, "nothing", &v, &err) == 0 && v == NULL);
    CHECK(ddps_store_set_meta(s, "data_root", "/data/woof", &err) == 0);
    CHECKF(ddps_store_bind(s, "{\"patch\": 192, \"low_res\": false}", "sd15:abc", &err) == 0, "%s", err.msg);
    int cid = 0, cid2 = 0;
    CHECK(ddps_store_class_id(s, "n02086240", "Shih-Tzu", "An image of Shih-Tzu.", &cid, &err) == 0 && cid > 0);
    CHECK(ddps_store_class_id(s, "n02086240", NULL, NULL, &cid2, &err) == 0 && cid2 == cid);
    CHECK(ddps_store_class_id(s, "", NULL, NULL, &cid2, &err) == -1);
    int state = -1;
    CHECK(ddps_store_image_state(s, "n02086240/a.jpg", &state, &err) == 0 && state == 0);
    fake_image f;
    make_image(&f, cid, "n02086240/a.jpg", 3, 0, 2.0f, 1);
    CHECKF(ddps_store_put_image(s, &f.r, &err) == 0, "%s", err.msg);
    CHECK(ddps_store_image_state(s, "n02086240/a.jpg", &state, &err) == 0 && state == 1);
    CHECK(ddps_store_put_bad(s, cid, "n02086240/broken.jpg", "truncated JPEG", &err) == 0);
    CHECK(ddps_store_image_state(s, "n02086240/broken.jpg", &state, &err) == 0 && state == 2);
    ddps_run_stats run = {"score", 12.5, 1, 1, 10, 4, 2};
    CHECK(ddps_store_add_run(s, &run, &err) == 0);
    ddps_store_close(s);

    CHECKF(ddps_store_open(path, 1, &s, &err) == 0, "%s", err.msg);
    CHECK(ddps_store_get_meta(s, "settings", &v, &err) == 0 && v &&
          strcmp(v, "{\"low_res\":false,\"patch\":192}") == 0);
    free(v);
    CHECK(ddps_store_get_meta(s, "data_root", &v, &err) == 0 && v && strcmp(v, "/data/woof") == 0);
    free(v);
    ddps_class_info *ci;
    int nc;
    CHECK(ddps_store_list_classes(s, &ci, &nc, &err) == 0 && nc == 1);
    if (nc == 1) {
        CHECK(strcmp(ci[0].name, "n02086240") == 0 && strcmp(ci[0].prompt_name, "Shih-Tzu") == 0);
        CHECK(strcmp(ci[0].prompt, "An image of Shih-Tzu.") == 0);
        CHECK(ci[0].n_images == 1 && ci[0].n_bad == 1 && ci[0].n_cand == 3 && ci[0].clustered == 0);
    }
    ddps_store_free_classes(ci, nc);
    ddps_class_data d;
    CHECKF(ddps_store_load_class(s, cid, 1, &d, &err) == 0, "%s", err.msg);
    CHECK(d.n_images == 1 && d.n_cand == 3 && d.dim == DIM && d.n_clusters == 0);
    if (d.n_images == 1 && d.n_cand == 3) {
        CHECK(strcmp(d.images[0].relpath, "n02086240/a.jpg") == 0);
        CHECK(d.images[0].width == 200 && d.images[0].height == 150 && d.images[0].rw == 341);
        CHECK(d.images[0].image_score == 0.25f);
        CHECK(memcmp(d.features, f.feat, sizeof(float) * 3 * DIM) == 0);
        for (int i = 0; i < 3; i++) {
            CHECK(d.cand[i].idx == i && d.cand[i].image == 0 && d.cand[i].score == f.cand[i].w.score);
            CHECK(d.cand[i].x0 == f.cand[i].w.x0 && d.cand[i].y1 == 105.5 && d.cand[i].rw == 50);
            CHECK(d.cand[i].cluster == -1 && d.cand[i].cluster_rank == 0);
        }
    }
    ddps_class_data_free(&d);
    ddps_bad_image *b;
    int nb;
    CHECK(ddps_store_list_bad(s, 0, &b, &nb, &err) == 0 && nb == 1);
    if (nb == 1) CHECK(strcmp(b[0].relpath, "n02086240/broken.jpg") == 0 && strcmp(b[0].reason, "truncated JPEG") == 0);
    ddps_store_free_bad(b, nb);
    ddps_run_stats tot;
    CHECK(ddps_store_totals(s, &tot, &err) == 0);
    CHECK(tot.seconds == 12.5 && tot.images_scored == 1 && tot.unet_latents == 10 && tot.vae_images == 4 &&
          tot.text_prompts == 2);
    /* read-only: writes fail cleanly */
    CHECK(ddps_store_set_meta(s, "x", "y", &err) == -1 && strstr(err.msg, path));
    ddps_store_close(s);
    /* read-only open never creates */
    CHECK(ddps_store_open(store_path(dir, "missing.db"), 1, &s, &err) == -1 && strstr(err.msg, "missing.db"));
}

static void bind_mismatch(void) {
    const char *dir = t_tmpdir("store_bind");
    ddps_store *s;
    ddps_err err = {{0}};
    CHECK(ddps_store_open(store_path(dir, "s.db"), 0, &s, &err) == 0);
    CHECK(ddps_store_bind(s, "{\"a\": 1, \"b\": [2, 3], \"c\": \"x\"}", "model-1", &err) == 0);
    /* key order and spacing do not matter */
    CHECKF(ddps_store_bind(s, "{\"c\":\"x\",\"b\":[2,3],\"a\":1}", "model-1", &err) == 0, "%s", err.msg);
    CHECK(ddps_store_bind(s, "{\"a\": 1, \"b\": [2, 4], \"c\": \"y\"}", "model-1", &err) == -1);
    CHECKF(strstr(err.msg, "s.db") && strstr(err.msg, "b=[2,3]") && strstr(err.msg, "b=[2,4]") &&
               strstr(err.msg, "new --store"),
           "%s", err.msg);
    CHECK(ddps_store_bind(s, "{\"a\": 1, \"b\": [2, 3]}", "model-1", &err) == -1);
    CHECKF(strstr(err.msg, "c=\"x\"") && strstr(err.msg, "(absent)"), "%s", err.msg);
    CHECK(ddps_store_bind(s, "{\"a\": 1, \"b\": [2, 3], \"c\": \"x\", \"d\": 0}", "model-1", &err) == -1);
    CHECKF(strstr(err.msg, "d=0"), "%s", err.msg);
    CHECK(ddps_store_bind(s, "{\"a\": 1, \"b\": [2, 3], \"c\": \"x\"}", "model-2", &err) == -1);
    CHECKF(strstr(err.msg, "model differs") && strstr(err.msg, "model-1") && strstr(err.msg, "model-2"), "%s", err.msg);
    CHECK(ddps_store_bind(s, "[1, 2]", "model-1", &err) == -1 && strstr(err.msg, "JSON object"));
    CHECK(ddps_store_bind(s, "{broken", "model-1", &err) == -1);
    /* nothing of the refused binds was recorded */
    char *v;
    CHECK(ddps_store_get_meta(s, "model_id", &v, &err) == 0 && v && strcmp(v, "model-1") == 0);
    free(v);
    ddps_store_close(s);
}

static long count_rows(const char *path, const char *table) {
    sqlite3 *db;
    long n = -1;
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", table);
    if (sqlite3_open(path, &db) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
            n = (long)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

static void put_checks(void) {
    const char *dir = t_tmpdir("store_put");
    char path[4096];
    snprintf(path, sizeof path, "%s", store_path(dir, "s.db"));
    ddps_store *s;
    ddps_err err = {{0}};
    CHECK(ddps_store_open(path, 0, &s, &err) == 0);
    int cid;
    CHECK(ddps_store_class_id(s, "cat", NULL, NULL, &cid, &err) == 0);
    fake_image f;
    make_image(&f, cid, "cat/1.png", 2, 0, 1.0f, 2);
    CHECK(ddps_store_put_image(s, &f.r, &err) == 0);
    CHECK(ddps_store_put_image(s, &f.r, &err) == -1);
    CHECKF(strstr(err.msg, "cat/1.png") && strstr(err.msg, "already in the store"), "%s", err.msg);
    CHECK(ddps_store_put_bad(s, cid, "cat/1.png", "x", &err) == -1 && strstr(err.msg, "already"));
    CHECK(ddps_store_put_bad(s, cid, "cat/2.png", "x", &err) == 0);
    make_image(&f, cid, "cat/2.png", 2, 0, 1.0f, 2);
    CHECK(ddps_store_put_image(s, &f.r, &err) == -1 && strstr(err.msg, "recorded as bad"));

    /* refused inputs write nothing */
    const char *bad_paths[] = {"../cat/3.png", "/etc/passwd", "cat//3.png", "cat/./3.png", "cat/3.png/..", ""};
    for (size_t i = 0; i < sizeof bad_paths / sizeof *bad_paths; i++) {
        make_image(&f, cid, bad_paths[i], 2, 0, 1.0f, 2);
        CHECKF(ddps_store_put_image(s, &f.r, &err) == -1 && strstr(err.msg, "plain relative path"), "%s", bad_paths[i]);
        CHECK(ddps_store_put_bad(s, cid, bad_paths[i], "x", &err) == -1);
    }
    make_image(&f, cid, "cat/3.png", 2, 0, 1.0f, 2);
    f.cand[1].w.x1 = 201; /* past the 200-pixel width */
    CHECK(ddps_store_put_image(s, &f.r, &err) == -1 && strstr(err.msg, "candidate 1 box"));
    make_image(&f, cid, "cat/3.png", 2, 0, 1.0f, 2);
    f.cand[0].w.y0 = f.cand[0].w.y1; /* empty box */
    CHECK(ddps_store_put_image(s, &f.r, &err) == -1 && strstr(err.msg, "box"));
    make_image(&f, cid, "cat/3.png", 2, 0, 1.0f, 2);
    f.feat[1][3] = NAN;
    CHECK(ddps_store_put_image(s, &f.r, &err) == -1 && strstr(err.msg, "non-finite"));
    make_image(&f, cid, "cat/3.png", 2, 0, 1.0f, 2);
    f.cand[0].w.score = INFINITY;
    CHECK(ddps_store_put_image(s, &f.r, &err) == -1 && strstr(err.msg, "score"));
    make_image(&f, cid, "cat/3.png", 2, 0, 1.0f, 2);
    f.r.dim = DIM - 1;
    CHECK(ddps_store_put_image(s, &f.r, &err) == -1 && strstr(err.msg, "feature length 7"));
    make_image(&f, cid, "cat/3.png", 2, 0, 1.0f, 2);
    f.r.width = 0;
    CHECK(ddps_store_put_image(s, &f.r, &err) == -1 && strstr(err.msg, "size"));
    make_image(&f, cid + 100, "cat/3.png", 2, 0, 1.0f, 2);
    CHECK(ddps_store_put_image(s, &f.r, &err) == -1 && strstr(err.msg, "no class"));
    int state;
    CHECK(ddps_store_image_state(s, "cat/3.png", &state, &err) == 0 && state == 0);
    CHECK(count_rows(path, "candidates") == 2 && count_rows(path, "features") == 2 && count_rows(path, "images") == 2);
    /* an image without candidates is fine */
    make_image(&f, cid, "cat/4.png", 0, 0, 1.0f, 2);
    CHECK(ddps_store_put_image(s, &f.r, &err) == 0);
    ddps_store_close(s);
}

/* A child process commits an image and dies by SIGKILL without closing: the
 * image is there afterwards, the store opens fine. */
static void survives_kill(void) {
    const char *dir = t_tmpdir("store_kill");
    char path[4096];
    snprintf(path, sizeof path, "%s", store_path(dir, "s.db"));
    ddps_store *s;
    ddps_err err = {{0}};
    CHECK(ddps_store_open(path, 0, &s, &err) == 0);
    int cid;
    CHECK(ddps_store_class_id(s, "dog", NULL, NULL, &cid, &err) == 0);
    ddps_store_close(s);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        ddps_store *c;
        ddps_err e;
        fake_image f;
        if (ddps_store_open(path, 0, &c, &e) != 0) _exit(3);
        make_image(&f, cid, "dog/a.jpg", 4, 1, 3.0f, 7);
        if (ddps_store_put_image(c, &f.r, &e) != 0) _exit(4);
        kill(getpid(), SIGKILL);
        _exit(5);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    CHECKF(ddps_store_open(path, 0, &s, &err) == 0, "%s", err.msg);
    int state = 0;
    CHECK(ddps_store_image_state(s, "dog/a.jpg", &state, &err) == 0 && state == 1);
    ddps_class_data d;
    CHECK(ddps_store_load_class(s, cid, 1, &d, &err) == 0 && d.n_cand == 4);
    ddps_class_data_free(&d);
    ddps_store_close(s);
}

static void refused_files(void) {
    const char *dir = t_tmpdir("store_refused");
    char path[4096];
    ddps_store *s = NULL;
    ddps_err err = {{0}};
    /* text file */
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    const char *text = "these are my notes, not a database\n";
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(path, i ? "ab" : "wb");
        for (int j = 0; j < 200; j++) fputs(text, f);
        fclose(f);
    }
    CHECK(ddps_store_open(path, 0, &s, &err) == -1 && s == NULL);
    CHECKF(strstr(err.msg, "notes.txt") && strstr(err.msg, "not a ddps store") && strstr(err.msg, "not an SQLite"),
           "%s", err.msg);
    CHECK(ddps_store_open(path, 1, &s, &err) == -1 && strstr(err.msg, "not an SQLite"));
    /* SQLite file of another program */
    snprintf(path, sizeof path, "%s/other.db", dir);
    raw_sql(path, "CREATE TABLE t(x); INSERT INTO t VALUES(1);");
    CHECK(ddps_store_open(path, 0, &s, &err) == -1);
    CHECKF(strstr(err.msg, "other.db") && strstr(err.msg, "another program"), "%s", err.msg);
    CHECK(count_rows(path, "t") == 1); /* untouched */
    /* a folder */
    CHECK(ddps_store_open(dir, 0, &s, &err) == -1 && strstr(err.msg, "not a regular file"));
    /* a newer schema */
    snprintf(path, sizeof path, "%s/new.db", dir);
    CHECK(ddps_store_open(path, 0, &s, &err) == 0);
    ddps_store_close(s);
    raw_sql(path, "PRAGMA user_version = 7");
    CHECK(ddps_store_open(path, 0, &s, &err) == -1);
    CHECKF(strstr(err.msg, "new.db") && strstr(err.msg, "schema 7") && strstr(err.msg, "newer"), "%s", err.msg);
    /* an empty file is a new store when writable, refused read-only */
    snprintf(path, sizeof path, "%s/empty.db", dir);
    t_write(path, "", 0);
    CHECK(ddps_store_open(path, 1, &s, &err) == -1 && strstr(err.msg, "not a ddps store"));
    CHECK(ddps_store_open(path, 0, &s, &err) == 0);
    ddps_store_close(s);
}

/* Bytes of a real store overwritten: refused on open or on read, never a crash. */
static void corrupt_file(void) {
    const char *dir = t_tmpdir("store_corrupt");
    char path[4096];
    snprintf(path, sizeof path, "%s/s.db", dir);
    ddps_store *s;
    ddps_err err = {{0}};
    CHECK(ddps_store_open(path, 0, &s, &err) == 0);
    int cid;
    CHECK(ddps_store_class_id(s, "cat", NULL, NULL, &cid, &err) == 0);
    char rel[64];
    fake_image f;
    for (int i = 0; i < 40; i++) {
        snprintf(rel, sizeof rel, "cat/%03d.jpg", i);
        make_image(&f, cid, rel, 3, i % 3, 1.0f + i, (uint64_t)i);
        CHECK(ddps_store_put_image(s, &f.r, &err) == 0);
    }
    ddps_store_close(s); /* checkpoints the WAL into the main file */
    FILE *fp = fopen(path, "r+b");
    CHECK(fp != NULL);
    if (!fp) return;
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    /* garbage over every page but the first (the header stays valid) */
    unsigned char junk[512];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)(i * 37 + 11);
    for (long off = 4096 + 100; off + (long)sizeof junk < size; off += 4096) {
        fseek(fp, off, SEEK_SET);
        fwrite(junk, 1, sizeof junk, fp);
    }
    fclose(fp);
    int failed = 0;
    if (ddps_store_open(path, 0, &s, &err) != 0) {
        failed = 1;
    } else {
        ddps_class_data d;
        if (ddps_store_load_class(s, cid, 1, &d, &err) != 0) failed = 1;
        ddps_class_data_free(&d);
        ddps_store_close(s);
    }
    CHECK(failed);
    CHECKF(strstr(err.msg, "s.db") && (strstr(err.msg, "corrupt") || strstr(err.msg, "malformed")), "%s", err.msg);
}

/* Hand edits that leave a valid SQLite file but an inconsistent store. */
static void hand_edited(void) {
    const char *dir = t_tmpdir("store_edited");
    char path[4096];
    snprintf(path, sizeof path, "%s/s.db", dir);
    struct {
        const char *sql, *expect;
        int features;
    } cases[] = {
        {"UPDATE features SET vec = zeroblob(12) WHERE cand_id = 2", "is 12 bytes, expected 32", 1},
        {"UPDATE features SET vec = 'text' WHERE cand_id = 2", "feature of candidate 2", 1},
        {"DELETE FROM features WHERE cand_id = 3", "feature of candidate 3", 1},
        {"UPDATE features SET vec = x'0000c07f00000000000000000000000000000000000000000000000000000000'"
         " WHERE cand_id = 1",
         "not finite", 1},
        {"UPDATE candidates SET score = 'abc' WHERE id = 1", "candidate 1", 0},
        {"UPDATE candidates SET x1 = 5000 WHERE id = 4", "candidate 4", 0},
        {"UPDATE images SET width = 0 WHERE id = 1", "sizes", 0},
        {"UPDATE images SET relpath = '../../etc/passwd' WHERE id = 2", "plain relative path", 0},
        {"UPDATE meta SET value = 'lots' WHERE key = 'feature_dim'", "feature_dim", 0},
        {"UPDATE candidates SET cluster = 9 WHERE id = 1", "cluster", 0},
        {"UPDATE clusters SET rank = 5 WHERE rank = 1", "cluster table", 0},
        {"UPDATE clusters SET size = size + 1 WHERE rank = 1", "members", 0},
        {"DELETE FROM clusters WHERE rank = 3", "not recorded", 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        remove(path);
        ddps_store *s;
        ddps_err err = {{0}};
        CHECK(ddps_store_open(path, 0, &s, &err) == 0);
        int cid;
        CHECK(ddps_store_class_id(s, "cat", NULL, NULL, &cid, &err) == 0);
        fake_image f;
        char rel[64];
        for (int i = 0; i < 6; i++) {
            snprintf(rel, sizeof rel, "cat/%d.jpg", i);
            make_image(&f, cid, rel, 2, i % 3, (float)i, (uint64_t)i);
            CHECK(ddps_store_put_image(s, &f.r, &err) == 0);
        }
        CHECK(ddps_store_cluster(s, cid, 3, 1, &err) == 0);
        ddps_store_close(s);
        raw_sql(path, cases[c].sql);
        CHECK(ddps_store_open(path, 0, &s, &err) == 0);
        ddps_class_data d;
        int rc = ddps_store_load_class(s, cid, cases[c].features, &d, &err);
        CHECKF(rc == -1 && strstr(err.msg, "s.db") && strstr(err.msg, cases[c].expect), "case %zu: %s", c, err.msg);
        CHECK(d.n_cand == 0 && d.cand == NULL); /* freed on failure */
        if (cases[c].features) {
            CHECK(ddps_store_cluster(s, cid, 3, 1, &err) == -1 && strstr(err.msg, cases[c].expect));
        }
        ddps_store_close(s);
    }
}

/* Planted clusters: 3 blobs whose scores differ, so ranks are known. */
static void clustering(void) {
    const char *dir = t_tmpdir("store_cluster");
    ddps_store *s;
    ddps_err err = {{0}};
    CHECK(ddps_store_open(store_path(dir, "s.db"), 0, &s, &err) == 0);
    int cid, other;
    CHECK(ddps_store_class_id(s, "cat", NULL, NULL, &cid, &err) == 0);
    CHECK(ddps_store_class_id(s, "dog", NULL, NULL, &other, &err) == 0);
    int needs = 0;
    CHECK(ddps_store_needs_clustering(s, cid, &needs, &err) == 0 && needs == 1);
    /* blob b gets base score 10*b; blob sizes 5, 4, 6 images of 1 candidate */
    int blob_n[3] = {5, 4, 6};
    fake_image f;
    char rel[64];
    int img = 0;
    for (int b = 0; b < 3; b++)
        for (int i = 0; i < blob_n[b]; i++, img++) {
            snprintf(rel, sizeof rel, "cat/%02d.jpg", (img * 7) % 15); /* blobs interleaved in path order */
            make_image(&f, cid, rel, 1, b, 10.0f * b + (float)i, (uint64_t)img + 100);
            CHECK(ddps_store_put_image(s, &f.r, &err) == 0);
        }
    CHECKF(ddps_store_cluster(s, cid, 3, 5, &err) == 0, "%s", err.msg);
    CHECK(ddps_store_needs_clustering(s, cid, &needs, &err) == 0 && needs == 0);
    /* an empty class clusters to nothing, and is then current */
    CHECK(ddps_store_cluster(s, other, 32, 5, &err) == 0);
    CHECK(ddps_store_needs_clustering(s, other, &needs, &err) == 0 && needs == 0);
    ddps_class_data d;
    CHECK(ddps_store_load_class(s, cid, 0, &d, &err) == 0);
    CHECK(d.n_cand == 15 && d.n_clusters == 3 && d.features == NULL);
    if (d.n_clusters == 3) {
        /* blob 2 (scores 20..25, median 22.5) first, then blob 1 (10..13, 11.5), blob 0 (0..4, 2) */
        CHECK(d.clusters[0].median_score == 22.5f && d.clusters[0].size == 6 && d.clusters[0].rank == 1);
        CHECK(d.clusters[1].median_score == 11.5f && d.clusters[1].size == 4 && d.clusters[1].rank == 2);
        CHECK(d.clusters[2].median_score == 2.0f && d.clusters[2].size == 5 && d.clusters[2].rank == 3);
        int bad = 0;
        for (int i = 0; i < d.n_cand; i++) {
            int blob = (int)(d.cand[i].score / 10);
            bad += d.cand[i].cluster_rank != 3 - blob;
            bad += !(d.cand[i].dist >= 0 && d.cand[i].dist < 0.1f);
        }
        CHECK(bad == 0);
    }
    ddps_class_data_free(&d);
    /* new candidates make the clustering stale; re-clustering with another k replaces it */
    make_image(&f, cid, "cat/99.jpg", 2, 0, 1.0f, 1);
    CHECK(ddps_store_put_image(s, &f.r, &err) == 0);
    CHECK(ddps_store_needs_clustering(s, cid, &needs, &err) == 0 && needs == 1);
    ddps_class_info *ci;
    int nc;
    CHECK(ddps_store_list_classes(s, &ci, &nc, &err) == 0 && nc == 2 && ci[0].clustered == 0 && ci[1].clustered == 1);
    ddps_store_free_classes(ci, nc);
    CHECK(ddps_store_load_class(s, cid, 0, &d, &err) == 0 && d.n_cand == 17);
    ddps_class_data_free(&d);
    CHECK(ddps_store_cluster(s, cid, 2, 5, &err) == 0);
    CHECK(ddps_store_needs_clustering(s, cid, &needs, &err) == 0 && needs == 0);
    CHECK(ddps_store_load_class(s, cid, 0, &d, &err) == 0 && d.n_clusters == 2);
    int in_cluster = 0;
    for (int i = 0; i < d.n_cand; i++) in_cluster += d.cand[i].cluster >= 0 && d.cand[i].cluster_rank >= 1;
    CHECK(in_cluster == 17);
    ddps_class_data_free(&d);
    CHECK(ddps_store_cluster(s, cid, 0, 5, &err) == -1);
    CHECK(ddps_store_cluster(s, 999, 3, 5, &err) == -1 && strstr(err.msg, "no class"));
    ddps_store_close(s);
}

/* The same images stored in another order cluster identically (resumed or
 * sharded scoring must not change the result). */
static void order_independent(void) {
    const char *dir = t_tmpdir("store_order");
    int assign[2][40], rank[2][40];
    for (int pass = 0; pass < 2; pass++) {
        ddps_store *s;
        ddps_err err = {{0}};
        CHECK(ddps_store_open(store_path(dir, pass ? "b.db" : "a.db"), 0, &s, &err) == 0);
        int cid;
        CHECK(ddps_store_class_id(s, "c", NULL, NULL, &cid, &err) == 0);
        for (int j = 0; j < 20; j++) {
            int i = pass ? 19 - j : j;
            char rel[32];
            snprintf(rel, sizeof rel, "c/%02d.png", i);
            fake_image f;
            make_image(&f, cid, rel, 2, i % 4, (float)(i % 5), (uint64_t)i);
            CHECK(ddps_store_put_image(s, &f.r, &err) == 0);
        }
        CHECK(ddps_store_cluster(s, cid, 6, 77, &err) == 0);
        ddps_class_data d;
        CHECK(ddps_store_load_class(s, cid, 0, &d, &err) == 0 && d.n_cand == 40);
        for (int i = 0; i < 40 && i < d.n_cand; i++) {
            assign[pass][i] = d.cand[i].cluster;
            rank[pass][i] = d.cand[i].cluster_rank;
        }
        ddps_class_data_free(&d);
        ddps_store_close(s);
    }
    CHECK(memcmp(assign[0], assign[1], sizeof assign[0]) == 0);
    CHECK(memcmp(rank[0], rank[1], sizeof rank[0]) == 0);
}

int main(void) {
    TEST(create_reopen);
    TEST(bind_mismatch);
    TEST(put_checks);
    TEST(survives_kill);
    TEST(refused_files);
    TEST(corrupt_file);
    TEST(hand_edited);
    TEST(clustering);
    TEST(order_independent);
    return t_done();
}
