#include "fz_util.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"

static char fz_scratch[256];

static int fz_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* The scratch folder goes when the process exits normally (libFuzzer's
 * -max_total_time, a replay); after a crash it stays, with the input. */
static void remove_dir(void) {
    if (fz_scratch[0]) nftw(fz_scratch, fz_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

const char *fz_dir(void) {
    if (!fz_scratch[0]) {
        atexit(remove_dir);
        snprintf(fz_scratch, sizeof fz_scratch, "/dev/shm/ddps-fuzz-%ld", (long)getpid());
        if (mkdir(fz_scratch, 0700) != 0) {
            snprintf(fz_scratch, sizeof fz_scratch, "/tmp/ddps-fuzz-%ld", (long)getpid());
            mkdir(fz_scratch, 0700);
        }
    }
    return fz_scratch;
}

const char *fz_path(int slot, const char *name) {
    static char buf[8][512];
    snprintf(buf[slot & 7], sizeof buf[0], "%s/%s", fz_dir(), name);
    return buf[slot & 7];
}

int fz_write(const char *path, const void *data, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    const char *p = data;
    while (len > 0) {
        ssize_t k = write(fd, p, len);
        if (k <= 0) {
            close(fd);
            return -1;
        }
        p += k;
        len -= (size_t)k;
    }
    return close(fd);
}

void fz_split(const uint8_t *data, size_t len, const char *sep, const uint8_t **b, size_t *a_len, size_t *b_len) {
    size_t m = strlen(sep);
    const uint8_t *hit = m && len >= m ? memmem(data, len, sep, m) : NULL;
    if (!hit) {
        *a_len = len;
        *b = data + len;
        *b_len = 0;
        return;
    }
    *a_len = (size_t)(hit - data);
    *b = hit + m;
    *b_len = len - *a_len - m;
}

void fz_quiet(void) { ddps_verbosity = -1; }
