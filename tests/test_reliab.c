/* Hostile-input faults of issue 14, one case each (every case failed before
 * its fix): extreme aspect ratios and memory pre-flight, store names SQLite
 * would not treat as files, select's ownership of OUT/ipcN, read-only
 * stores, the resize-size overflow, stale temporaries of killed selects,
 * non-UTF-8 names in manifests, the NaN-weight summary, a failed distill's
 * empty --out, concurrent scores, score/select agreeing on corrupt stores,
 * and spreadsheet formulas in manifest.csv. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/image.h"
#include "pipeline/outdir.h"
#include "pipeline/select.h"
#include "pipeline/store.h"
#include "cli_fixture.h"
#include "testlib.h"
#include "util/escape.h"
#include "util/fs.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

static char g_model[4096];

static void raw_sql(const char *db, const char *sql) {
    sqlite3 *h;
    int rc = sqlite3_open(db, &h);
    if (rc == SQLITE_OK) rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
    CHECKF(rc == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(h));
    sqlite3_close(h);
}

static int count_lines_with(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

#define SCORE_FLAGS "--size 32 --patch 16 --stride 8 --timesteps 2 --dift-ensemble 1 --clusters 2 --threads 1"

/* A dataset dir/data/cat with n ordinary 40x36 images. */
/* ---- 1. extreme aspect ratios, memory pre-flight ---- */

static void aspect_ratio_bound(void) {
    int w, h;
    ddps_err err;
    CHECK(ddps_resize_check(1, 4096, 256, &w, &h, &err) == -1 && strstr(err.msg, "aspect ratio 4096:1"));
    CHECK(ddps_resize_check(1, 20, 256, &w, &h, &err) == -1);
    CHECK(ddps_resize_check(20, 1, 256, &w, &h, &err) == -1 && strstr(err.msg, "5120x256"));
    CHECK(ddps_resize_check(100, 400, 256, &w, &h, &err) == 0 && w == 256 && h == 1024);
    CHECK(ddps_resize_check(500, 375, 256, &w, &h, &err) == 0 && w == 341 && h == 256);

    const char *d0 = t_tmpdir("reliab_aspect");
    char dir[4096], p[4096], store[4096];
    snprintf(dir, sizeof dir, "%s", d0);
    cf_small_dataset(dir, 2);
    snprintf(p, sizeof p, "%s/data/cat/tall.png", dir);
    cf_write_png(p, 1, 4096, 1);
    snprintf(p, sizeof p, "%s/data/cat/thin.png", dir);
    cf_write_png(p, 20, 1, 2);
    snprintf(store, sizeof store, "%s/s.sqlite", dir);
    char *out = NULL;
    int rc = t_runf(&out, "%s score --data %s/data --model %s --store %s " SCORE_FLAGS, DDPS_BIN, dir, g_model, store);
    CHECKF(rc == 0, "rc %d: %s", rc, out);
    free(out);
    CHECK(cf_sql_int(store, "SELECT COUNT(*) FROM images WHERE state = 2 AND reason LIKE '%aspect ratio%'") == 2);
    CHECK(cf_sql_int(store, "SELECT COUNT(*) FROM images WHERE state = 1") == 2);
    /* resuming does not stumble over them again */
    out = NULL;
    rc = t_runf(&out, "%s score --data %s/data --model %s --store %s " SCORE_FLAGS, DDPS_BIN, dir, g_model, store);
    CHECKF(rc == 0 && strstr(out, "4 of 4 images already scored, 0 to go"), "rc %d: %s", rc, out);
    free(out);
}

static void memory_preflight(void) {
    const char *d0 = t_tmpdir("reliab_memory");
    char dir[4096], store[4096];
    snprintf(dir, sizeof dir, "%s", d0);
    cf_small_dataset(dir, 2);
    snprintf(store, sizeof store, "%s/s.sqlite", dir);
    char *out = NULL;
    /* a machine with no memory to spare: every image is a per-image failure, recorded; the run completes */
    int rc = t_runf(&out, "DDPS_MEMORY_LIMIT_MB=0 %s score --data %s/data --model %s --store %s " SCORE_FLAGS,
                     DDPS_BIN, dir, g_model, store);
    CHECKF(rc == 0, "rc %d: %s", rc, out);
    free(out);
    CHECK(cf_sql_int(store, "SELECT COUNT(*) FROM images WHERE state = 2 AND reason LIKE '%MiB of memory%'") == 2);
}

/* ---- 2. store names ---- */

static void store_names(void) {
    const char *d0 = t_tmpdir("reliab_names");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", d0);
    cf_small_dataset(dir, 1);
    const char *bad[] = {"", ":memory:", "file:x.sqlite", "file:x.sqlite?mode=memory"};
    for (int i = 0; i < 4; i++) {
        ddps_store *s = NULL;
        ddps_err err;
        CHECKF(ddps_store_open(bad[i], 0, &s, &err) == -1 && s == NULL, "%s", bad[i]);
        char *out = NULL;
        int rc = t_runf(&out, "cd %s && %s score --data data --model %s --store '%s' " SCORE_FLAGS, dir, DDPS_BIN,
                         g_model, bad[i]);
        CHECKF(rc == 2 && !strstr(out, "scored"), "'%s': rc %d: %s", bad[i], rc, out);
        free(out);
    }
    /* nothing was created under either name */
    char p[4096];
    snprintf(p, sizeof p, "%s/file:x.sqlite", dir);
    CHECK(!ddps_is_file(p));
    /* ./file:x.sqlite is a plain file name and works */
    ddps_store *s = NULL;
    ddps_err err;
    snprintf(p, sizeof p, "%s/./file:x.sqlite", dir);
    CHECKF(ddps_store_open(p, 0, &s, &err) == 0, "%s", err.msg);
    ddps_store_close(s);
    snprintf(p, sizeof p, "%s/file:x.sqlite", dir);
    CHECK(ddps_is_file(p));
}

/* ---- a store for the select cases (score through the CLI) ---- */

static void scored_store(const char *dir, int n) {
    cf_small_dataset(dir, n);
    char *out = NULL;
    int rc = t_runf(&out, "%s score --data %s/data --model %s --store %s/s.sqlite " SCORE_FLAGS, DDPS_BIN, dir, g_model,
                     dir);
    CHECKF(rc == 0, "rc %d: %s", rc, out);
    free(out);
}

static int select_cli(char **out, const char *store, const char *outdir, const char *ipc) {
    return t_runf(out, "%s select --store %s --out %s --ipc %s --output-size 16 --threads 1", DDPS_BIN, store, outdir,
                   ipc);
}

/* ---- 3. select replaces only folders it wrote ---- */

static void select_ownership(void) {
    const char *d0 = t_tmpdir("reliab_owner");
    char dir[4096], store[4096], outd[4096], p[4096];
    snprintf(dir, sizeof dir, "%s", d0);
    scored_store(dir, 4);
    snprintf(store, sizeof store, "%s/s.sqlite", dir);
    snprintf(outd, sizeof outd, "%s/out", dir);
    /* someone's own folder named ipc1: refused, untouched */
    snprintf(p, sizeof p, "%s/ipc1", outd);
    ddps_err err;
    CHECK(ddps_mkdirs(p, &err) == 0);
    snprintf(p, sizeof p, "%s/ipc1/thesis.txt", outd);
    t_write(p, "precious", 8);
    char *out = NULL;
    int rc = select_cli(&out, store, outd, "1");
    CHECKF(rc == 1 && strstr(out, "not written by ddps"), "rc %d: %s", rc, out);
    free(out);
    CHECK(ddps_is_file(p));
    /* a manifest.json of another program is not enough either */
    snprintf(p, sizeof p, "%s/ipc1/manifest.json", outd);
    t_write(p, "{\"ipc\": 1}", 10);
    CHECK(select_cli(NULL, store, outd, "1") == 1);
    snprintf(p, sizeof p, "%s/ipc1/thesis.txt", outd);
    CHECK(ddps_is_file(p));
    /* a set ddps wrote is replaced; an empty folder too */
    CHECK(select_cli(NULL, store, outd, "2") == 0);
    snprintf(p, sizeof p, "%s/ipc2/manifest.json", outd);
    CHECK(ddps_is_file(p));
    CHECK(select_cli(NULL, store, outd, "2") == 0);
    snprintf(p, sizeof p, "%s/ipc3", outd);
    CHECK(ddps_mkdirs(p, &err) == 0);
    CHECK(select_cli(NULL, store, outd, "3") == 0);
    /* the ipc2 manifest claims ipc 2: it does not make ipc3 replaceable for another N */
    CHECK(ddps_outdir_may_replace(p, 4, &err) == -1);
    CHECK(ddps_outdir_may_replace(p, 3, &err) == 0);
}

/* ---- 4. read-only store: tests/test_store_readonly.c ---- */

/* ---- 5. resize size overflow ---- */

static void resize_overflow(void) {
    int w = 0, h = 0;
    ddps_err err;
    /* 256 * 10^7 does not fit an int: saturates (no UB; the sanitizer build traps float-cast-overflow) */
    ddps_resize_shorter_size(1, 10000000, 256, &w, &h);
    CHECK(w == 256 && h == INT_MAX);
    ddps_resize_shorter_size(10000000, 1, 256, &w, &h);
    CHECK(w == INT_MAX && h == 256);
    CHECK(ddps_resize_check(1, 10000000, 256, &w, &h, &err) == -1);
    ddps_resize_shorter_size(0, 5, 256, &w, &h);
    CHECK(h == 0);
}

/* ---- 6. stale temporaries ---- */

static void stale_temporaries(void) {
    const char *d0 = t_tmpdir("reliab_stale");
    char dir[4096], store[4096], outd[4096], dead[4096], live[4096], p[4096];
    snprintf(dir, sizeof dir, "%s", d0);
    scored_store(dir, 4);
    snprintf(store, sizeof store, "%s/s.sqlite", dir);
    snprintf(outd, sizeof outd, "%s/out", dir);
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0); /* now a pid of no process */
    snprintf(dead, sizeof dead, "%s/.ipc1.tmp-%ld", outd, (long)child);
    snprintf(live, sizeof live, "%s/.ipc1.tmp-%ld", outd, (long)getpid());
    ddps_err err;
    CHECK(ddps_mkdirs(dead, &err) == 0 && ddps_mkdirs(live, &err) == 0);
    snprintf(p, sizeof p, "%s/half.png", dead);
    t_write(p, "x", 1);
    snprintf(p, sizeof p, "%s/.ipc7.old-%ld", outd, (long)child);
    CHECK(ddps_mkdirs(p, &err) == 0);
    CHECK(select_cli(NULL, store, outd, "1") == 0);
    CHECK(!ddps_is_dir(dead) && !ddps_is_dir(p));
    CHECK(ddps_is_dir(live)); /* this process is alive: its folder stays */
}

/* ---- 7. non-UTF-8 names ---- */

static void escaped_names(void) {
    const char *samples[] = {"plain", "caf\xc3\xa9", "bad\xff\xfe", "back\\slash", "ctl\x01\n", "\xc0\xaf", "\\x41"};
    for (int i = 0; i < 7; i++) {
        char *e = ddps_escape_bytes(samples[i]);
        char *u = ddps_unescape_bytes(e);
        CHECKF(u && strcmp(u, samples[i]) == 0, "%s -> %s", samples[i], e);
        for (const unsigned char *q = (const unsigned char *)e; *q; q += ddps_utf8_len(q) ? ddps_utf8_len(q) : 1)
            CHECK(ddps_utf8_len(q) > 0 && *q >= 0x20);
        free(e);
        free(u);
    }
    char *e = ddps_escape_bytes("bad\xff");
    CHECK(strcmp(e, "bad\\xff") == 0);
    free(e);
    CHECK(ddps_unescape_bytes("a\\") == NULL && ddps_unescape_bytes("\\x0g") == NULL);

    const char *d0 = t_tmpdir("reliab_utf8");
    char dir[4096], store[4096], outd[4096], p[4096];
    snprintf(dir, sizeof dir, "%s", d0);
    cf_small_dataset(dir, 3);
    snprintf(p, sizeof p, "%s/data/cat/ok0.png", dir);
    char q[4096];
    snprintf(q, sizeof q, "%s/data/cat/caf\xe9.png", dir); /* Latin-1 e-acute: not UTF-8 */
    CHECK(rename(p, q) == 0);
    snprintf(store, sizeof store, "%s/s.sqlite", dir);
    char *out = NULL;
    int rc = t_runf(&out, "%s score --data %s/data --model %s --store %s " SCORE_FLAGS, DDPS_BIN, dir, g_model, store);
    CHECKF(rc == 0, "%s", out);
    free(out);
    snprintf(outd, sizeof outd, "%s/out", dir);
    CHECK(t_runf(NULL, "%s select --store %s --out %s --ipc 3 --mosaic-max-ipc 0 --output-size 16", DDPS_BIN, store,
                  outd) == 0);
    snprintf(p, sizeof p, "%s/ipc3/manifest.json", outd);
    json_error_t je;
    json_t *m = json_load_file(p, 0, &je);
    CHECKF(m != NULL, "%s", je.text);
    int found = 0;
    json_t *imgs = json_object_get(m, "images");
    for (size_t i = 0; i < json_array_size(imgs); i++) {
        json_t *pt = json_array_get(json_object_get(json_array_get(imgs, i), "patches"), 0);
        const char *src = json_string_value(json_object_get(pt, "source"));
        if (src && strcmp(src, "cat/caf\\xe9.png") == 0) {
            found = 1;
            char *u = ddps_unescape_bytes(src);
            CHECK(u && strcmp(u, "cat/caf\xe9.png") == 0);
            free(u);
        }
    }
    CHECK(found);
    json_decref(m);
    char *csv = NULL;
    size_t len;
    ddps_err err;
    snprintf(p, sizeof p, "%s/ipc3/manifest.csv", outd);
    CHECK(ddps_read_file(p, 1 << 20, &csv, &len, &err) == 0);
    CHECK(csv && strstr(csv, "\"cat/caf\\xe9.png\""));
    free(csv);
}

/* ---- 8. smaller faults ---- */

/* A copy of the model whose VAE encoder has a NaN in 20 tensors. */
static void nan_weights_one_line(void) {
    const char *d0 = t_tmpdir("reliab_nan");
    char dir[4096], model[4096], p[4096];
    snprintf(dir, sizeof dir, "%s", d0);
    snprintf(model, sizeof model, "%s/model", dir);
    CHECK(t_runf(NULL, "mkdir -p %s/vae && for f in %s/*; do b=$(basename $f); [ $b = vae ] || ln -s $f %s/$b; done && "
                        "cp %s/vae/config.json %s/vae/ && cp %s/vae/diffusion_pytorch_model.safetensors %s/vae/ && "
                        "chmod u+w %s/vae/*",
                  model, g_model, model, g_model, model, g_model, model, model) == 0);
    snprintf(p, sizeof p, "%s/vae/diffusion_pytorch_model.safetensors", model);
    char *buf = NULL;
    size_t len = 0;
    ddps_err err;
    CHECK(ddps_read_file(p, 1 << 26, &buf, &len, &err) == 0 && len > 8);
    uint64_t hl = 0;
    memcpy(&hl, buf, 8);
    json_error_t je;
    json_t *hdr = json_loadb(buf + 8, (size_t)hl, 0, &je);
    CHECK(hdr != NULL);
    const char *key;
    json_t *v;
    int patched = 0;
    json_object_foreach(hdr, key, v) {
        if (patched >= 20 || strncmp(key, "encoder.", 8) != 0) continue;
        const char *dt = json_string_value(json_object_get(v, "dtype"));
        size_t off = (size_t)json_integer_value(json_array_get(json_object_get(v, "data_offsets"), 0));
        unsigned char *d = (unsigned char *)buf + 8 + hl + off;
        if (!dt) continue;
        if (strcmp(dt, "BF16") == 0) d[0] = 0xc0, d[1] = 0x7f;
        else if (strcmp(dt, "F16") == 0) d[0] = 0x00, d[1] = 0x7e;
        else if (strcmp(dt, "F32") == 0) d[0] = 0, d[1] = 0, d[2] = 0xc0, d[3] = 0x7f;
        else continue;
        patched++;
    }
    json_decref(hdr);
    CHECK(patched == 20);
    t_write(p, buf, len);
    free(buf);
    cf_small_dataset(dir, 1);
    char *out = NULL;
    t_runf(&out, "%s score --data %s/data --model %s --store %s/s.sqlite " SCORE_FLAGS, DDPS_BIN, dir, model, dir);
    CHECKF(count_lines_with(out, "NaN or Inf") == 1 && strstr(out, "in 20 tensors"), "%s", out);
    free(out);
}

static void failed_distill_leaves_no_out(void) {
    const char *d0 = t_tmpdir("reliab_distill");
    char dir[4096], p[4096];
    snprintf(dir, sizeof dir, "%s", d0);
    cf_small_dataset(dir, 1);
    snprintf(p, sizeof p, "%s/out", dir);
    char *out = NULL;
    int rc = t_runf(&out, "%s distill --data %s/data --model %s/nomodel --out %s --ipc 1", DDPS_BIN, dir, dir, p);
    CHECKF(rc == 1, "rc %d: %s", rc, out);
    free(out);
    CHECK(!ddps_is_dir(p));
    /* an --out that existed before stays */
    ddps_err err;
    CHECK(ddps_mkdirs(p, &err) == 0);
    CHECK(t_runf(NULL, "%s distill --data %s/data --model %s/nomodel --out %s --ipc 1", DDPS_BIN, dir, dir, p) == 1);
    CHECK(ddps_is_dir(p));
}

static void concurrent_score_refused(void) {
    const char *d0 = t_tmpdir("reliab_lock");
    char dir[4096], store[4096];
    snprintf(dir, sizeof dir, "%s", d0);
    scored_store(dir, 1);
    snprintf(store, sizeof store, "%s/s.sqlite", dir);
    /* another score holds the store: this process plays it, with the same lock */
    int fd = open(store, O_RDONLY);
    CHECK(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0);
    char *out = NULL;
    int rc = t_runf(&out, "%s score --data %s/data --model %s --store %s " SCORE_FLAGS, DDPS_BIN, dir, g_model, store);
    CHECKF(rc == 1 && strstr(out, "another ddps score"), "rc %d: %s", rc, out);
    free(out);
    close(fd);
    CHECK(t_runf(NULL, "%s score --data %s/data --model %s --store %s " SCORE_FLAGS, DDPS_BIN, dir, g_model, store) ==
          0);
}

static void corrupt_store_same_verdict(void) {
    const char *d0 = t_tmpdir("reliab_corrupt");
    char dir[4096], store[4096], outd[4096];
    snprintf(dir, sizeof dir, "%s", d0);
    scored_store(dir, 2);
    snprintf(store, sizeof store, "%s/s.sqlite", dir);
    snprintf(outd, sizeof outd, "%s/out", dir);
    raw_sql(store, "UPDATE candidates SET score = 'garbage' WHERE id = (SELECT MIN(id) FROM candidates)");
    char *o1 = NULL, *o2 = NULL;
    int r1 = select_cli(&o1, store, outd, "1");
    int r2 = t_runf(&o2, "%s score --data %s/data --model %s --store %s " SCORE_FLAGS, DDPS_BIN, dir, g_model, store);
    CHECKF(r1 == 1 && strstr(o1, "corrupt"), "select rc %d: %s", r1, o1);
    CHECKF(r2 == 1 && strstr(o2, "corrupt") && !strstr(o2, "0 to go"), "score rc %d: %s", r2, o2);
    free(o1);
    free(o2);
}

static void csv_formulas(void) {
    const char *d0 = t_tmpdir("reliab_csv");
    char dir[4096], store[4096], outd[4096], p[4096];
    snprintf(dir, sizeof dir, "%s", d0);
    scored_store(dir, 2);
    snprintf(store, sizeof store, "%s/s.sqlite", dir);
    snprintf(outd, sizeof outd, "%s/out", dir);
    raw_sql(store, "UPDATE classes SET name = '=HYPERLINK(\"http://x\")'");
    CHECK(select_cli(NULL, store, outd, "1") == 0);
    char *csv = NULL;
    size_t len;
    ddps_err err;
    snprintf(p, sizeof p, "%s/ipc1/manifest.csv", outd);
    CHECK(ddps_read_file(p, 1 << 20, &csv, &len, &err) == 0);
    CHECKF(csv && strstr(csv, "\n\"'=HYPERLINK(\"\"http://x\"\")\","), "%s", csv);
    free(csv);
}

int main(void) {
    snprintf(g_model, sizeof g_model, "%s", t_shared("golden/tiny-sd"));
    TEST(resize_overflow);
    if (!ddps_is_dir(g_model)) {
        fprintf(stderr, "skipped the model cases: %s is missing\n", g_model);
        return t_done() == 0 ? 77 : 1;
    }
    TEST(escaped_names);
    TEST(aspect_ratio_bound);
    TEST(memory_preflight);
    TEST(store_names);
    TEST(select_ownership);
    TEST(stale_temporaries);
    TEST(nan_weights_one_line);
    TEST(failed_distill_leaves_no_out);
    TEST(concurrent_score_refused);
    TEST(corrupt_store_same_verdict);
    TEST(csv_formulas);
    return t_done();
}
