/* The Python package (python/ddps, ctypes over libddps.so) with Debian's
 * /usr/bin/python3 and numpy: tests/api_python.py compares ddps.score /
 * ddps.select with the CLI on the golden tiny model (identical stored
 * numbers, identical distilled files), and checks exceptions, progress and
 * cancellation, and the engine on numpy images; tests/api_python_probe.py
 * the issue-20 probe (argument checks, threads, the engine's image checks,
 * Ctrl-C); readme_install runs the README's Python install block.
 * Skipped (77) without /usr/bin/python3 + numpy. In the sanitizer build the
 * library needs the ASan and UBSan runtimes loaded first: python3 runs with
 * LD_PRELOAD of the compiler's libasan.so and libubsan.so and
 * detect_leaks=0 (the interpreter keeps its memory until exit by design);
 * skipped (77) when the compiler cannot name those runtimes. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

/* Environment prefix for python3 commands: the sanitizer runtimes in the
 * sanitizer build, empty otherwise. */
static char pre[8192];

static void python_vs_cli(void) {
    char cmd[16384], *out;
    const char *tmp = t_tmpdir("api_python");
    char model[4096], woof[4096];
    snprintf(model, sizeof model, "%s", t_shared("golden/tiny-sd")); /* t_shared: one static buffer */
    snprintf(woof, sizeof woof, "%s", t_shared("data/imagewoof-mini/train"));
    snprintf(cmd, sizeof cmd,
             "%s PYTHONPATH=%s/python DDPS_LIBRARY=%s/libddps.so /usr/bin/python3 %s/tests/api_python.py %s %s %s %s",
             pre, DDPS_SOURCE_DIR, DDPS_BUILD_DIR, DDPS_SOURCE_DIR, DDPS_BIN, model, woof, tmp);
    int rc = t_run(cmd, &out);
    CHECKF(rc == 0 && strstr(out, "api_python: 0 failures"), "exit %d:\n%s", rc, out);
    free(out);
}

/* The issue-20 probe (tests/api_python_probe.py) on the store and data
 * python_vs_cli made: argument checks, threads, engine image checks,
 * a spent engine, Ctrl-C. */
static void python_probe(void) {
    char cmd[16384], *out, tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/api_python", DDPS_TEST_TMP); /* kept from python_vs_cli */
    char model[4096];
    snprintf(model, sizeof model, "%s", t_shared("golden/tiny-sd"));
    snprintf(cmd, sizeof cmd,
             "%s PYTHONPATH=%s/python DDPS_LIBRARY=%s/libddps.so /usr/bin/python3 %s/tests/api_python_probe.py %s "
             "%s/py.sqlite %s/data %s",
             pre, DDPS_SOURCE_DIR, DDPS_BUILD_DIR, DDPS_SOURCE_DIR, model, tmp, tmp, tmp);
    int rc = t_run(cmd, &out);
    CHECKF(rc == 0 && strstr(out, "api_python_probe: 0 failures"), "exit %d:\n%s", rc, out);
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

/* The README's Python install lines, as written (python-install block), in
 * a copy of the source tree's python/ beside a link to this build tree, with
 * /opt/ddps in a temporary folder, after the README's `cmake --install
 * build --prefix /opt/ddps`; offline (pip --no-index). Then the installed
 * package, run from /, must load the installed library without
 * DDPS_LIBRARY. Debian's /usr/bin/python3 (PATH=/usr/bin:/bin). */
static void readme_install(void) {
    char cmd[32768], *out;
    const char *tmp = t_tmpdir("api_pip");
    snprintf(cmd, sizeof cmd,
             "set -e; mkdir %s/src && cp -r %s/python %s/src/python && ln -s %s %s/src/build && cd %s/src && "
             "PATH=/usr/bin:/bin cmake --install build --prefix %s/prefix >/dev/null && "
             "awk '/<!-- python-install/{f=1;next} f&&/^```sh/{g=1;next} g&&/^```/{exit} g' %s/README.md | "
             "sed 's#/opt/ddps#%s/prefix#g' >%s/lines.sh && grep -c . %s/lines.sh && "
             "env -u DDPS_LIBRARY PATH=/usr/bin:/bin sh -ex %s/lines.sh 2>&1 && cd / && env -u DDPS_LIBRARY %s "
             "%s/prefix/venv/bin/python -c 'import ddps; print(\"got\", ddps.version(), ddps.__file__, ddps._lib.path)'",
             tmp, DDPS_SOURCE_DIR, tmp, DDPS_BUILD_DIR, tmp, tmp, tmp, DDPS_SOURCE_DIR, tmp, tmp, tmp, tmp, pre, tmp);
    int rc = t_run(cmd, &out);
    char want[8192];
    snprintf(want, sizeof want, "got 0.1.0 %s/prefix/venv/lib/", tmp);
    CHECKF(rc == 0 && strstr(out, want), "exit %d: %s", rc, out);
    snprintf(want, sizeof want, "/ddps/__init__.py %s/prefix/lib", tmp);
    CHECKF(strstr(out, want), "the installed package did not load %s/prefix/lib/libddps.so: %s", tmp, out);
    free(out);
}

int main(void) {
    char *out = NULL;
    if (DDPS_TEST_SANITIZE) {
        char *asan = NULL, *ubsan = NULL;
        int ok = t_run("cc -print-file-name=libasan.so", &asan) == 0 && asan[0] == '/' &&
                 t_run("cc -print-file-name=libubsan.so", &ubsan) == 0 && ubsan && ubsan[0] == '/';
        if (ok) {
            asan[strcspn(asan, "\n")] = 0;
            ubsan[strcspn(ubsan, "\n")] = 0;
            ok = access(asan, R_OK) == 0 && access(ubsan, R_OK) == 0;
            snprintf(pre, sizeof pre, "LD_PRELOAD='%s %s' ASAN_OPTIONS=detect_leaks=0", asan, ubsan);
        }
        free(asan);
        free(ubsan);
        if (!ok) {
            t_skip("sanitizer build: cc -print-file-name names no libasan.so/libubsan.so to preload into python3");
            return t_done();
        }
    }
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
    TEST(python_probe);
    TEST(finds_library);
    TEST(readme_install);
    return t_done();
}
