#include "util/err.h"

#include <stdio.h>
#include <string.h>

int ddps_verbosity = 1;

static void vfail(ddps_err *err, int kind, const char *fmt, va_list ap) {
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    err->kind = kind;
    /* One line: a newline inside would break "one clear error line". */
    for (char *p = err->msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

int ddps_fail(ddps_err *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vfail(err, DDPS_KIND_FAILURE, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int ddps_fail_kind(ddps_err *err, int kind, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vfail(err, kind, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int ddps_fail_usage(ddps_err *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vfail(err, DDPS_KIND_USAGE, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int ddps_fail_data(ddps_err *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vfail(err, DDPS_KIND_DATA, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int ddps_fail_resource(ddps_err *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vfail(err, DDPS_KIND_RESOURCE, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int ddps_fail_prefix(ddps_err *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t lp = strlen(prefix);
    if (lp + 2 >= sizeof err->msg) lp = sizeof err->msg - 3;
    memcpy(err->msg, prefix, lp);
    memcpy(err->msg + lp, ": ", 2);
    size_t room = sizeof err->msg - lp - 3, lo = strlen(old);
    if (lo > room) lo = room;
    memcpy(err->msg + lp + 2, old, lo);
    err->msg[lp + 2 + lo] = 0;
    return -1;
}

static ddps_log_hook g_hook;
static void *g_hook_user;
static _Thread_local ddps_log_hook t_hook;
static _Thread_local void *t_hook_user;

void ddps_log_set(ddps_log_hook fn, void *user) {
    g_hook = fn;
    g_hook_user = user;
}

void ddps_log_set_thread(ddps_log_hook fn, void *user) {
    t_hook = fn;
    t_hook_user = user;
}

static void vprint(int level, const char *tag, const char *fmt, va_list ap) {
    char line[4096];
    vsnprintf(line, sizeof line, fmt, ap);
    if (t_hook) {
        t_hook(t_hook_user, level, line);
        return;
    }
    if (g_hook) {
        g_hook(g_hook_user, level, line);
        return;
    }
    fprintf(stderr, "ddps: %s%s\n", tag, line);
}

/* With a hook on the calling thread (a public call), every level goes to
 * the host, which filters (ddps.h); without, ddps_verbosity decides. */
void ddps_warn(const char *fmt, ...) {
    if (!t_hook && ddps_verbosity < 1) return;
    va_list ap;
    va_start(ap, fmt);
    vprint(1, "warning: ", fmt, ap);
    va_end(ap);
}

void ddps_info(const char *fmt, ...) {
    if (!t_hook && ddps_verbosity < 1) return;
    va_list ap;
    va_start(ap, fmt);
    vprint(2, "", fmt, ap);
    va_end(ap);
}

void ddps_debug(const char *fmt, ...) {
    if (!t_hook && ddps_verbosity < 2) return;
    va_list ap;
    va_start(ap, fmt);
    vprint(3, "debug: ", fmt, ap);
    va_end(ap);
}
