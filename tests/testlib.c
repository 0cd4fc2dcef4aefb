#include <stdarg.h>
#include "testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

int t_failures = 0;
int t_checks = 0;

int t_skips;

void t_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("SKIPPED: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    t_skips++;
}

int t_done(void) {
    fprintf(stderr, "%d checks, %d failed%s\n", t_checks, t_failures, t_skips ? ", skipped" : "");
    return t_failures ? 1 : t_skips ? 77 : 0;
}

/* The running part's name, in t_tmpdir's folder names (parts run at once). */
static const char *part_name = "";

const char *t_part(int argc, char **argv) {
    part_name = argc > 1 ? argv[1] : "";
    return part_name;
}

const char *t_shared(const char *rel) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", DDPS_SHARED_DIR, rel);
    return buf;
}

const char *t_tmpdir(const char *name) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s%s%s", DDPS_TEST_TMP, part_name, part_name[0] ? "-" : "", name);
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", buf, buf);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot create %s\n", buf);
        exit(2);
    }
    return buf;
}

int t_run(const char *cmd, char **out) {
    char full[16384];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (cap - n < 2) buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    if (st == -1) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

double t_rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    if (den == 0) return sqrt(num);
    return sqrt(num / den);
}

void t_write(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    if (len) fwrite(data, 1, len, f);
    fclose(f);
}

int t_runf(char **out, const char *fmt, ...) {
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return t_run(cmd, out);
}

int t_runv(const char *fmt, ...) {
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char *out = NULL;
    int rc = t_run(cmd, &out);
    if (rc != 0) fprintf(stderr, "command failed (%d): %s\n%s\n", rc, cmd, out ? out : "");
    free(out);
    return rc;
}
