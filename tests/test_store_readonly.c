/* A store that cannot be written: WAL mode needs a writable -shm even for
 * reading, so `select` on a read-only mount (or a 0444 store of another
 * user in a 0555 folder) used to fail with "unable to open database file".
 * Issue 14, item 4; see RELIABILITY.md. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_fixture.h"
#include "testlib.h"
#include "util/fs.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

static char g_model[4096];
static int g_skipped;

static void scored_store(const char *dir) {
    cf_small_dataset(dir, 4);
    char *out = NULL;
    int rc = t_runf(&out,
                     "%s score --data %s/data --model %s --store %s/s.sqlite --size 32 --patch 16 --stride 8 "
                     "--timesteps 2 --dift-ensemble 1 --clusters 2 --threads 1",
                     DDPS_BIN, dir, g_model, dir);
    CHECKF(rc == 0, "rc %d: %s", rc, out);
    free(out);
}

/* Proof: tests run as root, so file modes do not stop SQLite from creating
 * the -shm index. A read-only bind mount (unshare -m) does, for root too:
 * before the fix, select failed there with "unable to open database file"
 * (sqlite3 -readonly fails the same way on such a mount). */
static void read_only_store(void) {
    if (t_run("unshare -m true", NULL) != 0) {
        fprintf(stderr, "skipped: unshare -m is not available (needs a mount namespace), so no read-only mount\n");
        g_skipped = 1;
        return;
    }
    const char *d0 = t_tmpdir("reliab_ro");
    char dir[4096], rodir[4096], store[4096], outd[4096];
    snprintf(dir, sizeof dir, "%s", d0);
    scored_store(dir);
    snprintf(rodir, sizeof rodir, "%s/ro", dir);
    ddps_err err;
    CHECK(ddps_mkdirs(rodir, &err) == 0);
    CHECK(t_runf(NULL, "cp %s/s.sqlite %s/s.sqlite && chmod 0444 %s/s.sqlite && chmod 0555 %s", dir, rodir, rodir,
                  rodir) == 0);
    snprintf(store, sizeof store, "%s/s.sqlite", rodir);
    snprintf(outd, sizeof outd, "%s/out", dir);
    char *out = NULL;
    int rc = t_runf(&out,
                     "unshare -m sh -c 'mount --bind -o ro %s %s && %s select --store %s --out %s --ipc 1 "
                     "--output-size 16 --threads 1'",
                     rodir, rodir, DDPS_BIN, store, outd);
    if (rc != 0 && out && strstr(out, "mount:")) {
        fprintf(stderr, "skipped: cannot bind-mount read-only here: %s\n", out);
        free(out);
        g_skipped = 1;
        return;
    }
    CHECKF(rc == 0, "rc %d: %s", rc, out);
    free(out);
    char p[4096];
    snprintf(p, sizeof p, "%s/ipc1/manifest.json", outd);
    CHECK(ddps_is_file(p));
    CHECK(t_runf(NULL, "chmod 0755 %s", rodir) == 0);
}


int main(void) {
    snprintf(g_model, sizeof g_model, "%s", t_shared("golden/tiny-sd"));
    if (!ddps_is_dir(g_model)) {
        fprintf(stderr, "skipped: %s is missing (needed to score a store)\n", g_model);
        return 77;
    }
    TEST(read_only_store);
    if (g_skipped && t_failures == 0) return 77;
    return t_done();
}
