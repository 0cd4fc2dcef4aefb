/* The Python package (python/ddps, ctypes over libddps.so) with Debian's
 * /usr/bin/python3 and numpy: tests/api_python.py compares ddps.score /
 * ddps.select with the CLI on the golden tiny model (identical stored
 * numbers, identical distilled files), and checks exceptions, progress and
 * cancellation, and the engine on numpy images.
 * Skipped (77) without /usr/bin/python3 + numpy, and in the sanitizer build:
 * its libddps.so needs the ASan runtime loaded first, which a plain python3
 * process does not do (the release build runs it). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

static void python_vs_cli(void) {
    char cmd[16384], *out;
    const char *tmp = t_tmpdir("api_python");
    char model[4096], woof[4096];
    snprintf(model, sizeof model, "%s", t_shared("golden/tiny-sd")); /* t_shared: one static buffer */
    snprintf(woof, sizeof woof, "%s", t_shared("data/imagewoof-mini/train"));
    snprintf(cmd, sizeof cmd,
             "PYTHONPATH=%s/python DDPS_LIBRARY=%s/libddps.so /usr/bin/python3 %s/tests/api_python.py %s %s %s %s",
             DDPS_SOURCE_DIR, DDPS_BUILD_DIR, DDPS_SOURCE_DIR, DDPS_BIN, model, woof, tmp);
    int rc = t_run(cmd, &out);
    CHECKF(rc == 0 && strstr(out, "api_python: 0 failures"), "exit %d:\n%s", rc, out);
    free(out);
}

/* The package finds the build tree's library by itself (no DDPS_LIBRARY). */
static void finds_library(void) {
    char cmd[16384], *out;
    snprintf(cmd, sizeof cmd, "cd / && env -u DDPS_LIBRARY PYTHONPATH=%s/python /usr/bin/python3 -c "
             "'import ddps; print(ddps.version())'", DDPS_SOURCE_DIR);
    int rc = t_run(cmd, &out);
    /* only when the build tree is the default one next to python/ */
    char def[8192];
    snprintf(def, sizeof def, "%s/build", DDPS_SOURCE_DIR);
    if (strcmp(def, DDPS_BUILD_DIR) == 0) CHECKF(rc == 0 && strstr(out, "0.1.0"), "exit %d: %s", rc, out);
    free(out);
}

/* `pip install` of the package (from a copy: pip writes into the folder it
 * builds), offline, then import from where it went. Skipped without pip. */
static void pip_installs(void) {
    char cmd[16384], *out;
    if (t_run("/usr/bin/python3 -m pip --version && /usr/bin/python3 -c 'import setuptools'", &out) != 0) {
        free(out);
        fprintf(stderr, "   (pip or setuptools missing for /usr/bin/python3: install check not run)\n");
        return;
    }
    free(out);
    const char *tmp = t_tmpdir("api_pip");
    snprintf(cmd, sizeof cmd,
             "cp -r %s/python %s/src && /usr/bin/python3 -m pip install -q --no-build-isolation --no-deps --no-index "
             "--target %s/site %s/src && cd / && PYTHONPATH=%s/site DDPS_LIBRARY=%s/libddps.so /usr/bin/python3 -c "
             "'import ddps, os; print(ddps.version(), os.path.dirname(ddps.__file__))'",
             DDPS_SOURCE_DIR, tmp, tmp, tmp, tmp, DDPS_BUILD_DIR);
    int rc = t_run(cmd, &out);
    char want[8192];
    snprintf(want, sizeof want, "0.1.0 %s/site/ddps", tmp);
    CHECKF(rc == 0 && strstr(out, want), "exit %d: %s", rc, out);
    free(out);
}

int main(void) {
    if (DDPS_TEST_SANITIZE) {
        t_skip("sanitizer build: libddps.so needs libasan loaded before python3 (LD_PRELOAD); the release build runs "
               "this test");
        return t_done();
    }
    char *out = NULL;
    if (t_run("/usr/bin/python3 -c 'import numpy'", &out) != 0) {
        free(out);
        t_skip("/usr/bin/python3 with numpy (python3-numpy) is not installed");
        return t_done();
    }
    free(out);
    if (access(t_shared("golden/tiny-sd"), R_OK) != 0) {
        t_skip("%s missing", t_shared("golden/tiny-sd"));
        return t_done();
    }
    TEST(python_vs_cli);
    TEST(finds_library);
    TEST(pip_installs);
    return t_done();
}
