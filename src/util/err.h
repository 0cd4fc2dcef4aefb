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

typedef struct {
    char msg[2048];
} ddps_err;

/* Formats the message into err (if err is not NULL) and returns -1. */
int ddps_fail(ddps_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepends "prefix: " to an existing message; returns -1. */
int ddps_fail_prefix(ddps_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Verbosity: 0 = errors only, 1 = warnings and summaries (default), 2 = debug. */
extern int ddps_verbosity;
void ddps_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ddps_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ddps_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
