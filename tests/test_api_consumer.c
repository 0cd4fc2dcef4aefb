/* The installed library as an outside program sees it: `cmake --install`
 * into a temporary prefix, then tests/api_consumer/consumer.c compiled with
 * `cc $(pkg-config --cflags --libs ddps)` against the installed ddps.h and
 * libddps.so only (no source tree on its include path), run on the golden
 * tiny model and 2 classes x 2 real imagewoof images. Also: the shared
 * library exports only ddps_* symbols. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_fixture.h"
#include "testlib.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

static char prefix[4096], tmp[4096];

static void install_and_build(void) {
    char cmd[16384], *out;
    snprintf(cmd, sizeof cmd, "cmake --install %s --prefix %s", DDPS_BUILD_DIR, prefix);
    int rc = t_run(cmd, &out);
    CHECKF(rc == 0, "%s", out);
    free(out);
    const char *files[] = {"include/ddps.h", "lib/libddps.so", "lib/libddps.a", "lib/pkgconfig/ddps.pc", "bin/ddps"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char f[8192];
        snprintf(f, sizeof f, "%s/%s", prefix, files[i]);
        CHECKF(access(f, R_OK) == 0, "%s not installed", f);
    }
    /* exported: only the API (ddps_*), nothing of the libraries inside */
    snprintf(cmd, sizeof cmd, "nm -D --defined-only %s/lib/libddps.so | awk '{print $3}' | grep -v '^ddps_' | grep -v '^_' ",
             prefix);
    rc = t_run(cmd, &out);
    CHECKF(rc != 0 && out[0] == 0, "unexpected exports: %s", out);
    free(out);
    /* the static library's global symbols carry the ddps_ prefix too (no st_open, cpu_group_norm, ...);
       compiler-made names (.gomp_critical_*, DW.ref.*) and reserved _names aside */
    snprintf(cmd, sizeof cmd,
             "nm -g --defined-only %s/lib/libddps.a | awk 'NF==3{print $3}' | grep -v '^ddps_' | grep -v '^[._]' "
             "| grep -v '^DW[.]ref[.]'",
             prefix);
    rc = t_run(cmd, &out);
    CHECKF(rc != 0 && out[0] == 0, "generic global symbols in libddps.a: %s", out);
    free(out);
    snprintf(cmd, sizeof cmd,
             "export PKG_CONFIG_PATH=%s/lib/pkgconfig; cc -std=c11 -Wall -Wextra -Werror %s %s/tests/api_consumer/consumer.c "
             "$(pkg-config --cflags --libs ddps) -Wl,-rpath,$(pkg-config --variable=libdir ddps) -o %s/consumer",
             prefix, DDPS_TEST_SANITIZE ? "-fsanitize=address,undefined" : "", DDPS_SOURCE_DIR, tmp);
    rc = t_run(cmd, &out);
    CHECKF(rc == 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "ldd %s/consumer | grep libddps", tmp);
    rc = t_run(cmd, &out);
    CHECKF(rc == 0 && strstr(out, prefix), "not linked to the installed libddps.so: %s", out);
    free(out);
}

static void consumer_scores(void) {
    char data[4096], cmd[16384], *out;
    snprintf(data, sizeof data, "%s/data", tmp);
    mkdir(data, 0755);
    api_fixture_data(data, t_shared("data/imagewoof-mini/train"), 2);
    snprintf(cmd, sizeof cmd, "%s/consumer %s %s %s/s.db", tmp, t_shared("golden/tiny-sd"), data, tmp);
    int rc = t_run(cmd, &out);
    CHECKF(rc == 0 && strstr(out, "classes 2 candidates 4 dim ") && strstr(out, "engine ok"), "exit %d: %s", rc, out);
    /* the library printed nothing itself (no hooks asked for output) */
    CHECKF(!strstr(out, "ddps:"), "library output: %s", out);
    free(out);
}

int main(void) {
    char *out = NULL;
    if (t_run("command -v cc && command -v pkg-config && command -v nm && command -v ldd", &out) != 0) {
        free(out);
        t_skip("cc, pkg-config, nm or ldd missing");
        return t_done();
    }
    free(out);
    if (access(t_shared("golden/tiny-sd"), R_OK) != 0) {
        t_skip("%s missing", t_shared("golden/tiny-sd"));
        return t_done();
    }
    snprintf(tmp, sizeof tmp, "%s", t_tmpdir("api_consumer"));
    snprintf(prefix, sizeof prefix, "%s/prefix", tmp);
    TEST(install_and_build);
    if (t_failures == 0) TEST(consumer_scores);
    return t_done();
}
