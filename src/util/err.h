/* Errors and diagnostics.
 *
 * Convention used everywhere in ddps: a function that can fail returns 0 on
 * success and -1 on failure, after writing ONE line into a ddps_err that names
 * the file (or flag) and what is wrong, e.g.
 *     "model/unet/config.json: block_out_channels must be a list of 1..8 ints".
 * Callers add context by prefixing (ddps_fail_prefix) and never print
 * twice; only the CLI prints the final message. Warnings go to stderr at once.
 */
#ifndef DDPS_UTIL_ERR_H
#define DDPS_UTIL_ERR_H

#include <stdarg.h>
#include <stddef.h>

/* What kind of failure a message is (the public library's error category;
 * the CLI's exit code: usage -> 2, everything else -> 1). A zeroed ddps_err
 * (`ddps_err e = {{0}}`) has kind failure; ddps_fail sets failure,
 * ddps_fail_kind / ddps_fail_usage another kind; ddps_fail_prefix keeps it. */
enum {
    DDPS_KIND_FAILURE = 0,  /* anything else */
    DDPS_KIND_USAGE = 1,    /* bad invocation: unknown option, value out of range */
    DDPS_KIND_DATA = 2,     /* bad input file: model, store, image, mapping */
    DDPS_KIND_RESOURCE = 3, /* out of memory, device unavailable, I/O */
    DDPS_KIND_CANCELLED = 4 /* the host asked to stop */
};

typedef struct {
    char msg[2048];
    int kind; /* DDPS_KIND_* */
} ddps_err;

/* Formats the message into err (if err is not NULL) and returns -1. */
int ddps_fail(ddps_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same with a kind (DDPS_KIND_*); ddps_fail_usage is kind usage. */
int ddps_fail_kind(ddps_err *err, int kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int ddps_fail_usage(ddps_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Kind data: a bad input file (image, model, store, mapping); kind resource:
 * memory, disk, I/O. */
int ddps_fail_data(ddps_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ddps_fail_resource(ddps_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepends "prefix: " to an existing message; returns -1. */
int ddps_fail_prefix(ddps_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Verbosity: 0 = errors only, 1 = warnings and summaries (default), 2 = debug. */
extern int ddps_verbosity;
void ddps_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ddps_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ddps_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Where warnings, infos and debug lines go. level: 1 warning, 2 info,
 * 3 debug; line has no "ddps: " prefix and no newline. With no hook (the
 * default, what the CLI uses) they go to stderr as "ddps: [warning: ]line".
 * The hook of the calling thread (ddps_log_set_thread) wins over the
 * process-wide one (ddps_log_set); fn NULL removes a hook. Lines from other
 * threads than the calling one use the process-wide hook. */
typedef void (*ddps_log_hook)(void *user, int level, const char *line);
void ddps_log_set(ddps_log_hook fn, void *user);
void ddps_log_set_thread(ddps_log_hook fn, void *user);

#endif
