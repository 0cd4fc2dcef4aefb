/* Minimal test harness: each test_*.c has a main() that calls TEST(fn) for
 * every case; a failed CHECK reports file:line and marks the run failed, the
 * process exits non-zero if anything failed. */
#ifndef DDPS_TESTLIB_H
#define DDPS_TESTLIB_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

extern int t_failures;
extern int t_checks;

#define CHECK(cond)                                                             \
    do {                                                                        \
        t_checks++;                                                             \
        if (!(cond)) {                                                          \
            t_failures++;                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                       \
    } while (0)

#define CHECKF(cond, ...)                                                       \
    do {                                                                        \
        t_checks++;                                                             \
        if (!(cond)) {                                                          \
            t_failures++;                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

#define TEST(fn)                                                                \
    do {                                                                        \
        int before_ = t_failures;                                               \
        fprintf(stderr, "-- %s\n", #fn);                                        \
        fn();                                                                   \
        fprintf(stderr, "   %s %s\n", #fn, t_failures == before_ ? "ok" : "FAILED"); \
    } while (0)

extern int t_skips;

/* Marks the running part as skipped (it prints "SKIPPED: reason"): when
 * nothing failed, t_done() then returns 77, CTest's SKIP_RETURN_CODE, so the
 * summary counts it as skipped, not passed. A program whose parts can skip
 * independently runs each as its own CTest test (see t_part). */
void t_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Summary line; returns the process exit code: 1 if a check failed, else 77
 * if something was skipped, else 0. */
int t_done(void);

/* The optional part named on the command line ("bf16", "python", ...), or ""
 * for the default part. tests/CMakeLists.txt registers each part as its own
 * CTest test, so that a part that skips is listed as skipped on its own.
 * Parts run at the same time: t_tmpdir's folders get the part's name. */
const char *t_part(int argc, char **argv);

/* Path under ../shared (golden/, data/): a static buffer, valid until the next call. */
const char *t_shared(const char *rel);
/* Fresh empty temporary folder for this test (created under the build tree). */
const char *t_tmpdir(const char *name);
/* Runs a shell command; returns its exit status (or -1), output to *out if not NULL
 * (heap, NUL-terminated, stdout and stderr together). */
int t_run(const char *cmd, char **out);
/* t_run on a printf-formatted command (up to 16 KB). */
int t_runf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Runs a printf-formatted command; on a non-zero status prints the command
 * and its output to stderr. Returns the status. */
int t_runv(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Relative L2 error ||a-b|| / ||b||. */
double t_rel_l2(const float *a, const float *b, size_t n);
/* Writes text to a file (for hostile inputs). */
void t_write(const char *path, const void *data, size_t len);

#endif
