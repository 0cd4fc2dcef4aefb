#include "pipeline/store_guard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"

int ddps_store_lock(const char *path, int *fd, ddps_err *err) {
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) return ddps_fail_data(err, "%s: cannot open store: %s", path, strerror(errno));
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(*fd);
        *fd = -1;
        if (e == EWOULDBLOCK)
            return ddps_fail_data(err, "%s: another ddps score is writing to this store; wait for it to finish (a later "
                                  "run continues where it stopped) or use another --store",
                             path);
        return ddps_fail_resource(err, "%s: cannot lock store: %s", path, strerror(e));
    }
    return 0;
}

void ddps_store_unlock(int fd) {
    if (fd >= 0) close(fd); /* closing releases the flock */
}

int ddps_store_writer_active(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int busy = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return busy;
}

void ddps_store_tidy_wal(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) { /* no score writes now, none can start until we close */
        size_t n = strlen(path) + 8;
        char *p = ddps_malloc(n);
        struct stat st;
        snprintf(p, n, "%s-wal", path);
        if (stat(p, &st) == 0 && st.st_size == 0) {
            unlink(p);
            snprintf(p, n, "%s-shm", path);
            unlink(p);
        }
        free(p);
    }
    close(fd);
}

int ddps_store_verify(ddps_store *s, ddps_err *err) {
    ddps_class_info *cls = NULL;
    int n = 0;
    if (ddps_store_list_classes(s, &cls, &n, err) != 0) return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        ddps_class_data d;
        rc = ddps_store_load_class(s, cls[i].id, 0, &d, err);
        if (rc == 0) ddps_class_data_free(&d);
    }
    ddps_store_free_classes(cls, n);
    return rc;
}
