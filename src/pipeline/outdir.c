#include "pipeline/outdir.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"

#define MANIFEST_MAX_BYTES ((size_t)1 << 30)

static int folder_is_empty(const char *path) {
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = 0;
    closedir(d);
    return empty;
}

int ddps_outdir_claim_report(const char *dir, int *made, ddps_err *err) {
    struct stat st;
    *made = 0;
    char *mark = ddps_path_join(dir, DDPS_REPORT_MARK);
    int rc = 0;
    if (lstat(dir, &st) != 0) {
        *made = 1;
        rc = ddps_mkdirs(dir, err);
    } else if (!S_ISDIR(st.st_mode)) {
        rc = ddps_fail_data(err, "--out %s: exists and is not a folder", dir);
    } else if (!folder_is_empty(dir) && lstat(mark, &st) != 0) {
        rc = ddps_fail_data(err, "--out %s: folder holds files ddps did not write (no %s); give a new or empty folder", dir,
                       DDPS_REPORT_MARK);
    }
    if (rc == 0) rc = ddps_write_file_atomic(mark, "ddps report\n", 12, err);
    free(mark);
    return rc;
}

void ddps_outdir_release(const char *dir, int made) {
    if (!made) return;
    char *mark = ddps_path_join(dir, DDPS_REPORT_MARK);
    struct stat st;
    if (lstat(mark, &st) == 0) {
        /* the mark alone: the folder holds nothing else */
        unlink(mark);
        if (rmdir(dir) != 0) ddps_write_file_atomic(mark, "ddps report\n", 12, NULL);
    } else {
        rmdir(dir); /* only succeeds when empty */
    }
    free(mark);
}

int ddps_outdir_may_replace(const char *final, int ipc, ddps_err *err) {
    struct stat st;
    if (lstat(final, &st) != 0) return 0;
    if (!S_ISDIR(st.st_mode))
        return ddps_fail_data(err, "%s: exists and is not a folder ddps wrote; refusing to replace it (move it away)", final);
    if (folder_is_empty(final)) return 0;
    char *mpath = ddps_path_join(final, "manifest.json");
    char *text = NULL;
    size_t len = 0;
    ddps_err e2;
    struct stat ms;
    int ours = 0;
    if (lstat(mpath, &ms) == 0 && S_ISREG(ms.st_mode) && ddps_read_file(mpath, MANIFEST_MAX_BYTES, &text, &len, &e2) == 0) {
        json_error_t je;
        json_t *m = json_loadb(text, len, 0, &je);
        json_t *ver = json_object_get(m, "ddps_version"), *n = json_object_get(m, "ipc");
        ours = json_is_object(m) && json_is_string(ver) && json_is_integer(n) && json_integer_value(n) == ipc;
        json_decref(m);
        free(text);
    }
    free(mpath);
    if (!ours)
        return ddps_fail_data(err, "%s: exists but was not written by ddps (no ddps manifest.json for ipc %d); refusing to "
                              "replace it (move it away or choose another --out)",
                         final, ipc);
    return 0;
}

/* ".ipc<digits>.tmp-<digits>" or ".ipc<digits>.old-<digits>": the pid, else 0. */
static long stale_pid(const char *name) {
    if (strncmp(name, ".ipc", 4) != 0) return 0;
    const char *p = name + 4;
    if (*p < '0' || *p > '9') return 0;
    while (*p >= '0' && *p <= '9') p++;
    if (strncmp(p, ".tmp-", 5) != 0 && strncmp(p, ".old-", 5) != 0) return 0;
    p += 5;
    if (*p < '1' || *p > '9') return 0;
    long pid = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || pid > 100000000L) return 0;
        pid = pid * 10 + (*p - '0');
    }
    return pid;
}

int ddps_outdir_clean_stale(const char *out_dir) {
    DIR *d = opendir(out_dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid = stale_pid(e->d_name);
        if (pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive (or not ours to judge) */
        char *path = ddps_path_join(out_dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && ddps_remove_tree(path, NULL) == 0) {
            removed++;
            ddps_info("removed %s, left behind by an interrupted ddps (process %ld)", path, pid);
        }
        free(path);
    }
    closedir(d);
    return removed;
}
