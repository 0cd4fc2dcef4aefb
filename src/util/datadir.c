#include "util/datadir.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"

#ifndef DDPS_DATA_INSTALL_DIR
#define DDPS_DATA_INSTALL_DIR "/usr/local/share/ddps"
#endif
#ifndef DDPS_DATA_SOURCE_DIR
#define DDPS_DATA_SOURCE_DIR "data"
#endif

/* The path exists (file or folder, links followed). */
static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

char *ddps_data_path(const char *rel, ddps_err *err) {
    char exe[PATH_MAX], dirs[4][PATH_MAX + 32];
    int nd = 0;
    const char *env = getenv("DDPS_DATA_DIR");
    if (env && *env) snprintf(dirs[nd++], sizeof dirs[0], "%s", env);
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(dirs[nd++], sizeof dirs[0], "%s/data", exe);
        snprintf(dirs[nd++], sizeof dirs[0], "%s/../share/ddps", exe);
    }
    const char *fixed[2] = {DDPS_DATA_INSTALL_DIR, DDPS_DATA_SOURCE_DIR};
    char looked[1024] = "";
    size_t lo = 0;
    for (int i = 0; i < nd + 2; i++) {
        const char *d = i < nd ? dirs[i] : fixed[i - nd];
        char *p = ddps_path_join(d, rel);
        if (exists(p)) return p;
        free(p);
        lo += (size_t)snprintf(looked + lo, lo < sizeof looked ? sizeof looked - lo : 0, "%s%s", i ? ", " : "", d);
        if (lo >= sizeof looked) lo = sizeof looked - 1;
    }
    ddps_fail(err, "ddps data file %s not found (looked in %s; set DDPS_DATA_DIR to the folder that has it)", rel, looked);
    return NULL;
}
