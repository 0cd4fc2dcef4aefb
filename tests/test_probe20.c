/* What the new-user / hostile probe of issue 20 found in the command line,
 * one case each (every case failed before its fix): merge and report
 * overwriting files that are not ddps's, partial stores read as finished,
 * usage errors that exited 1, and messages that named the wrong thing. */
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_fixture.h"
#include "testlib.h"
#include "util/fs.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

#define SCORE_FLAGS "--size 32 --patch 16 --stride 8 --timesteps 2 --dift-ensemble 1 --clusters 2 --threads 1"

static char g_model[4096];

static int exists(const char *fmt, const char *a) {
    char p[8192];
    snprintf(p, sizeof p, fmt, a);
    return access(p, F_OK) == 0;
}

/* dir/s.sqlite.shard-K-of-2 for K = 0, 1 over dir/data (n images). */
static void shards(const char *dir, int n) {
    cf_small_dataset(dir, n);
    for (int k = 0; k < 2; k++) {
        char *out = NULL;
        int rc = t_runf(&out, "%s score --data %s/data --model %s --store %s/s.sqlite --shard %d/2 " SCORE_FLAGS,
                        DDPS_BIN, dir, g_model, dir, k);
        CHECKF(rc == 0, "rc %d: %s", rc, out);
        free(out);
    }
}

/* ---- merge: an existing OUT that is not this job's finished store ---- */

static void merge_refuses_foreign_out(void) {
    char dir[4096], notes[4096], *out = NULL;
    snprintf(dir, sizeof dir, "%s", t_tmpdir("probe20_merge_out"));
    shards(dir, 2);
    snprintf(notes, sizeof notes, "%s/notes.txt", dir);
    t_write(notes, "my notes\n", 9);
    int rc = t_runf(&out, "%s merge --store %s %s/s.sqlite.shard-*-of-2", DDPS_BIN, notes, dir);
    CHECKF(rc == 1 && strstr(out, "notes.txt") && strstr(out, "not a ddps store") && strstr(out, "--force"),
           "rc %d: %s", rc, out);
    free(out);
    char *text = NULL;
    size_t len = 0;
    ddps_err err;
    CHECK(ddps_read_file(notes, 1 << 20, &text, &len, &err) == 0 && len == 9 && memcmp(text, "my notes\n", 9) == 0);
    free(text);
    /* another job's store (other settings) */
    char other[4096];
    snprintf(other, sizeof other, "%s/other.sqlite", dir);
    rc = t_runf(&out, "%s score --data %s/data --model %s --store %s " SCORE_FLAGS " --seed 7", DDPS_BIN, dir, g_model,
                other);
    CHECKF(rc == 0, "rc %d: %s", rc, out);
    free(out);
    rc = t_runf(&out, "%s merge --store %s %s/s.sqlite.shard-*-of-2", DDPS_BIN, other, dir);
    CHECKF(rc == 1 && strstr(out, "another job"), "rc %d: %s", rc, out);
    free(out);
    /* the same job's store is replaced (a rerun), and --force replaces anything */
    CHECK(t_runf(NULL, "%s merge --store %s/m.sqlite %s/s.sqlite.shard-*-of-2", DDPS_BIN, dir, dir) == 0);
    CHECK(t_runf(NULL, "%s merge --store %s/m.sqlite %s/s.sqlite.shard-*-of-2", DDPS_BIN, dir, dir) == 0);
    CHECK(t_runf(NULL, "%s merge --force --store %s %s/s.sqlite.shard-*-of-2", DDPS_BIN, notes, dir) == 0);
    CHECK(cf_sql_int(notes, "SELECT COUNT(*) FROM images") == 2);
    /* the shards' read-only opens leave no -wal / -shm behind */
    CHECK(!exists("%s/s.sqlite.shard-0-of-2-wal", dir) && !exists("%s/s.sqlite.shard-0-of-2-shm", dir));
    CHECK(!exists("%s/s.sqlite.shard-1-of-2-wal", dir) && !exists("%s/s.sqlite.shard-1-of-2-shm", dir));
}

/* ---- merge and score --shard name the files to use ---- */

static void shard_names_in_messages(void) {
    char dir[4096], *out = NULL;
    snprintf(dir, sizeof dir, "%s", t_tmpdir("probe20_shard_names"));
    cf_small_dataset(dir, 2);
    int rc = t_runf(&out, "%s score --data %s/data --model %s --store %s/job.sqlite --shard 1/2 " SCORE_FLAGS,
                    DDPS_BIN, dir, g_model, dir);
    char want[8192];
    snprintf(want, sizeof want, "ddps merge --store %s/job.sqlite %s/job.sqlite.shard-*-of-2", dir, dir);
    CHECKF(rc == 0 && strstr(out, want), "rc %d, want \"%s\": %s", rc, want, out);
    free(out);
    /* share 0 is missing: the hint names it beside the shards, not beside --store */
    rc = t_runf(&out, "%s merge --store %s/elsewhere.sqlite %s/job.sqlite.shard-1-of-2", DDPS_BIN, dir, dir);
    snprintf(want, sizeof want, "e.g. %s/job.sqlite.shard-0-of-2", dir);
    CHECKF(rc == 1 && strstr(out, want), "rc %d, want \"%s\": %s", rc, want, out);
    free(out);
}

/* ---- report writes only into folders it owns; failures leave no empty --out ---- */

static void report_out_ownership(void) {
    char dir[4096], store[4096], user[4096], p[8192], *out = NULL;
    snprintf(dir, sizeof dir, "%s", t_tmpdir("probe20_report_out"));
    cf_small_dataset(dir, 2);
    snprintf(store, sizeof store, "%s/s.sqlite", dir);
    CHECK(t_runf(NULL, "%s score --data %s/data --model %s --store %s " SCORE_FLAGS, DDPS_BIN, dir, g_model, store) == 0);
    snprintf(user, sizeof user, "%s/site", dir);
    ddps_err err;
    CHECK(ddps_mkdirs(user, &err) == 0);
    snprintf(p, sizeof p, "%s/index.html", user);
    t_write(p, "mine\n", 5);
    int rc = t_runf(&out, "%s report --store %s --out %s --threads 1", DDPS_BIN, store, user);
    CHECKF(rc == 1 && strstr(out, user) && strstr(out, "did not write"), "rc %d: %s", rc, out);
    free(out);
    char *text = NULL;
    size_t len = 0;
    CHECK(ddps_read_file(p, 1 << 20, &text, &len, &err) == 0 && len == 5 && memcmp(text, "mine\n", 5) == 0);
    free(text);
    /* a folder report wrote is written again */
    CHECK(t_runf(NULL, "%s report --store %s --out %s/rep --threads 1", DDPS_BIN, store, dir) == 0);
    CHECK(t_runf(NULL, "%s report --store %s --out %s/rep --threads 1", DDPS_BIN, store, dir) == 0);
    /* failures remove the --out they created */
    rc = t_runf(&out, "%s report --store %s --out %s/rep2 --data %s/nowhere --threads 1", DDPS_BIN, store, dir, dir);
    CHECKF(rc == 1, "rc %d: %s", rc, out);
    free(out);
    CHECK(!exists("%s/rep2", dir));
    rc = t_runf(&out, "%s select --store %s --out %s/sel2 --ipc 1 --data %s/nowhere", DDPS_BIN, store, dir, dir);
    CHECKF(rc == 1, "rc %d: %s", rc, out);
    free(out);
    CHECK(!exists("%s/sel2", dir));
    /* --data and --data-root are the same option in both */
    CHECK(t_runf(NULL, "%s select --store %s --out %s/sel3 --ipc 1 --data-root %s/data", DDPS_BIN, store, dir, dir) == 0);
    CHECK(t_runf(NULL, "%s select --store %s --out %s/sel4 --ipc 1 --data %s/data", DDPS_BIN, store, dir, dir) == 0);
    CHECK(t_runf(NULL, "%s report --store %s --out %s/rep3 --data-root %s/data --threads 1", DDPS_BIN, store, dir,
                 dir) == 0);
}

/* ---- usage errors exit 2, named by flag, before any work ---- */

static void usage_exits(void) {
    char dir[4096], *out = NULL;
    snprintf(dir, sizeof dir, "%s", t_tmpdir("probe20_usage"));
    cf_small_dataset(dir, 1);
    int rc = t_runf(&out, "%s score --data %s/data --model '' --store %s/s.sqlite", DDPS_BIN, dir, dir);
    CHECKF(rc == 2 && strstr(out, "--model"), "rc %d: %s", rc, out);
    free(out);
    rc = t_runf(&out, "%s score --data %s/data --model %s --store %s/s.sqlite --classes nope " SCORE_FLAGS, DDPS_BIN, dir,
                g_model, dir);
    CHECKF(rc == 2 && strstr(out, "--classes") && strstr(out, "nope"), "rc %d: %s", rc, out);
    free(out);
    CHECK(t_runf(NULL, "%s score --data %s/data --model %s --store %s/s.sqlite " SCORE_FLAGS, DDPS_BIN, dir, g_model,
                 dir) == 0);
    rc = t_runf(&out, "%s select --store %s/s.sqlite --out %s/o --ipc 1 --classes nope", DDPS_BIN, dir, dir);
    CHECKF(rc == 2 && strstr(out, "--classes") && strstr(out, "nope"), "rc %d: %s", rc, out);
    free(out);
}

/* ---- a store whose score died or is running reads as unfinished ---- */

static void sql_exec(const char *db, const char *sql) {
    sqlite3 *h = NULL;
    CHECK(sqlite3_open(db, &h) == SQLITE_OK && sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(h);
}

static void partial_store_warns(void) {
    char dir[4096], store[4096], *out = NULL;
    snprintf(dir, sizeof dir, "%s", t_tmpdir("probe20_partial"));
    cf_small_dataset(dir, 6);
    snprintf(store, sizeof store, "%s/s.sqlite", dir);
    CHECK(t_runf(NULL, "%s score --data %s/data --model %s --store %s " SCORE_FLAGS " --seed 5", DDPS_BIN, dir, g_model,
                 store) == 0);
    long long seed = cf_sql_int(store, "SELECT clustered_seed FROM classes");
    /* a finished store: no warning */
    int rc = t_runf(&out, "%s select --store %s --out %s/o1 --ipc 1", DDPS_BIN, store, dir);
    CHECKF(rc == 0 && !strstr(out, "unfinished"), "rc %d: %s", rc, out);
    free(out);
    /* the state a score killed before clustering its class leaves */
    sql_exec(store, "UPDATE meta SET value = '0' WHERE key = 'score_complete';"
                    "UPDATE classes SET clustered_n = NULL, clustered_k = NULL, clustered_seed = NULL;"
                    "UPDATE candidates SET cluster = NULL, dist = NULL; DELETE FROM clusters;");
    rc = t_runf(&out, "%s select --store %s --out %s/o2 --ipc 1", DDPS_BIN, store, dir);
    CHECKF(rc == 0 && strstr(out, "unfinished store") && strstr(out, "6 images in 1 class") &&
               strstr(out, "stopped before the end"),
           "rc %d: %s", rc, out);
    free(out);
    /* clustered in memory with the store's --clusters 2 and the seed score derives for the class: the
     * same set as from score's clustering (o1), and nothing written into the store */
    CHECK(seed != 0 && cf_sql_int(store, "SELECT COUNT(*) FROM classes WHERE clustered_seed IS NULL") == 1);
    CHECK(cf_sql_int(store, "SELECT COUNT(*) FROM clusters") == 0);
    CHECK(t_runv("cd %s/o1/ipc1 && for f in manifest.csv $(find . -name '*.png'); do cmp -s $f %s/o2/ipc1/$f || exit 1; done",
                 dir, dir) == 0);
    /* a score holding the store's writer lock: this process plays it */
    sql_exec(store, "UPDATE meta SET value = '1' WHERE key = 'score_complete'");
    int fd = open(store, O_RDONLY);
    CHECK(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0);
    rc = t_runf(&out, "%s report --store %s --out %s/rep --threads 1", DDPS_BIN, store, dir);
    CHECKF(rc == 0 && strstr(out, "unfinished store") && strstr(out, "writing to it now"), "rc %d: %s", rc, out);
    free(out);
    close(fd);
}

/* ---- skipped images are counted by reason ---- */

static void skip_reasons_counted(void) {
    char dir[4096], p[8192], *out = NULL;
    snprintf(dir, sizeof dir, "%s", t_tmpdir("probe20_skips"));
    cf_small_dataset(dir, 1);
    snprintf(p, sizeof p, "%s/data/cat/strip.png", dir);
    cf_write_png(p, 200, 4, 1); /* 50:1 */
    snprintf(p, sizeof p, "%s/data/cat/broken.png", dir);
    t_write(p, "not a png", 9);
    int rc = t_runf(&out, "%s score --data %s/data --model %s --store %s/s.sqlite " SCORE_FLAGS, DDPS_BIN, dir, g_model,
                    dir);
    CHECKF(rc == 0 && strstr(out, "2 skipped: 1 unreadable, 1 beyond the 4:1 aspect bound, 0 too large for memory"),
           "rc %d: %s", rc, out);
    free(out);
}

/* ---- bench: usage names every bench; --json: one object, last, with the threads used ---- */

static void bench_reports(void) {
    char *out = NULL;
    int rc = t_runf(&out, "%s bench", DDPS_BIN);
    CHECKF(rc == 2 && strstr(out, "precision") && strstr(out, "load"), "rc %d: %s", rc, out);
    free(out);
    rc = t_runf(&out, "env -u OMP_NUM_THREADS %s bench text --iters 1 --json 2>/dev/null", DDPS_BIN);
    CHECKF(rc == 0 && strstr(out, "\"threads\":") && !strstr(out, "\"threads\":0"), "rc %d: %s", rc, out);
    /* --json: exactly one JSON object, the last line (`bench unet` on the CPU
     * puts its bf16 comparison inside it as "compare") */
    int objects = 0;
    const char *last = NULL;
    for (char *line = out; line && *line;) {
        char *nl = strchr(line, '\n');
        if (*line == '{') objects++;
        if (*line && *line != '\n') last = line;
        line = nl ? nl + 1 : NULL;
    }
    CHECKF(objects == 1 && last && *last == '{', "%d JSON objects: %s", objects, out);
    free(out);
}

/* ---- a full disk says what is stored and that a rerun continues ---- */

static void full_disk_message(void) {
    char dir[4096], *out = NULL;
    snprintf(dir, sizeof dir, "%s", t_tmpdir("probe20_full"));
    cf_small_dataset(dir, 40);
    ddps_err err;
    char mnt[8192];
    snprintf(mnt, sizeof mnt, "%s/mnt", dir);
    CHECK(ddps_mkdirs(mnt, &err) == 0);
    /* a 256 KB tmpfs in a private mount namespace (as root: tests and CI run as root) */
    if (t_runf(NULL, "unshare -m sh -c 'mount -t tmpfs -o size=256k tmpfs %s' 2>/dev/null", mnt) != 0) {
        fprintf(stderr, "   (unshare -m / mount tmpfs not available: full-disk case not run)\n");
        return;
    }
    int rc = t_runf(&out, "unshare -m sh -c 'mount -t tmpfs -o size=256k tmpfs %s && %s score --data %s/data --model %s "
                          "--store %s/s.sqlite " SCORE_FLAGS "'",
                    mnt, DDPS_BIN, dir, g_model, mnt);
    CHECKF(rc == 1 && strstr(out, "disk full") && strstr(out, " stored (") &&
               strstr(out, "rerun the same command to continue"),
           "rc %d: %s", rc, out);
    free(out);
}

/* ---- a single file with another model's --config is refused ---- */

static void single_file_config_mismatch(void) {
    char dir[4096], single[4096], sd2[4096], *out = NULL;
    snprintf(dir, sizeof dir, "%s", t_tmpdir("probe20_config"));
    snprintf(single, sizeof single, "%s", t_shared("golden/tiny-sd-single.safetensors"));
    snprintf(sd2, sizeof sd2, "%s", t_shared("golden/tiny-sd2"));
    cf_small_dataset(dir, 1);
    /* an SD v1.x-structured file (CLIP text encoder, 1x1 projections) with SD 2.x-structured configs */
    int rc = t_runf(&out, "%s score --data %s/data --model %s --config %s --store %s/s.sqlite " SCORE_FLAGS, DDPS_BIN, dir,
                    single, sd2, dir);
    CHECKF(rc == 1 && strstr(out, "describes another model") && strstr(out, "text encoder") &&
               strstr(out, "projections") && !strchr(out, '\n')[1],
           "rc %d: %s", rc, out);
    free(out);
    CHECK(!exists("%s/s.sqlite", dir));
}

int main(void) {
    snprintf(g_model, sizeof g_model, "%s", t_shared("golden/tiny-sd"));
    if (!ddps_is_dir(g_model)) {
        t_skip("%s is missing", g_model);
        return t_done();
    }
    TEST(merge_refuses_foreign_out);
    TEST(shard_names_in_messages);
    TEST(report_out_ownership);
    TEST(usage_exits);
    TEST(partial_store_warns);
    TEST(skip_reasons_counted);
    TEST(bench_reports);
    TEST(full_disk_message);
    TEST(single_file_config_mismatch);
    return t_done();
}
