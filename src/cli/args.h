/* The CLI's utilities, over the public library (ddps.h) only:
 *   - a small declarative parser for long options, "--name value" or
 *     "--name=value"; errors name the flag and the value and have status
 *     DDPS_ERR_USAGE (the command exits 2);
 *   - error helpers that fill a ddps_error, and the exit code derived from it;
 *   - allocation that never returns NULL;
 *   - the CLI's host hooks: log lines on stderr filtered by -q/-v, progress
 *     drawn on a terminal only.
 * Contract shared with the other CLI files: keep these names stable. */
#ifndef DDPS_CLI_ARGS_H
#define DDPS_CLI_ARGS_H

#include <stddef.h>

#include "ddps.h"

typedef enum {
    CLI_OPT_STR,    /* const char **            */
    CLI_OPT_INT,    /* int *, checked against [lo, hi] */
    CLI_OPT_DOUBLE, /* double *, checked against [lo, hi] */
    CLI_OPT_FLAG,   /* int *, set to 1, takes no value */
} cli_opt_type;

typedef struct {
    const char *name; /* "--ipc" */
    cli_opt_type type;
    void *dest;
    const char *meta; /* value name for --help, e.g. "N" */
    const char *help; /* NULL: an alias, accepted but not listed by --help */
    double lo, hi;    /* range for CLI_OPT_INT / CLI_OPT_DOUBLE (ignored when lo == hi == 0) */
} cli_opt;

/* Parses argv[1..argc-1] (argv[0] is the command name). Positional
 * arguments are collected into pos (caller provides room for argc). Returns
 * 0 when parsed, 1 when --help was printed (exit 0), -1 on error (err gets
 * status DDPS_ERR_USAGE and a line naming the flag and the value). */
int cli_args_parse(const char *usage, const cli_opt *opts, int nopts, int argc, char **argv, char **pos, int *npos,
                   ddps_error *err);
/* cli_args_parse for a command that takes options only: a positional
 * argument is a usage error naming it. Same returns. */
int cli_args_options(const char *usage, const cli_opt *opts, int nopts, int argc, char **argv, ddps_error *err);
/* Prints usage and one line per option (and --help) on stdout. */
void cli_args_help(const char *usage, const cli_opt *opts, int nopts);

/* Parses "1,10,50" into up to max ints within [lo, hi]; returns the count,
 * or -1 (status usage, message naming flag and s). */
int cli_parse_int_list(const char *flag, const char *s, int *out, int max, int lo, int hi, ddps_error *err);

/* Splits "a,b,c" into names pointing into *buf (heap, free both *buf and
 * *names); returns 0. Empty names are an error naming flag (-1, status
 * usage), and then nothing stays allocated (*buf and *names are NULL). */
int cli_split_names(const char *flag, const char *s, char **buf, const char ***names, int *n, ddps_error *err);

/* Formats one line into err (may be NULL) with status DDPS_ERR_FAILURE
 * (cli_fail) or DDPS_ERR_USAGE (cli_fail_usage); returns -1. */
int cli_fail(ddps_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_fail_usage(ddps_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets err to DDPS_OK with an empty message. */
void cli_error_clear(ddps_error *err);

/* Never NULL: on out of memory prints one line on stderr and exits 1. */
void *cli_malloc(size_t n);
char *cli_strdup(const char *s);

/* The process exit code for err: 0 for DDPS_OK, 2 for DDPS_ERR_USAGE, 1 otherwise. */
int cli_exit_code(const ddps_error *err);

/* -q: 0 (errors only), default 1 (warnings, summaries, progress), -v: 2 (debug). Set by main.c. */
extern int cli_verbosity;
/* 1 when progress is drawn even though stderr is not a terminal (rank 0 of
 * an MPI job started from a terminal: mpirun pipes stderr). Default 0. */
extern int cli_progress_force;

/* The CLI's hooks: a tool's report lines (DDPS_LOG_OUTPUT) on stdout; log
 * lines on stderr as "ddps: [warning: |debug: ]line" (ddps_log_stderr),
 * warnings and infos at verbosity >= 1, debug at 2; progress
 * (ddps_progress_stderr: "scoring 1200/9025  14.2 img/s  ETA 9:10" redrawn
 * in place) only on a terminal (or cli_progress_force) and at verbosity >= 1,
 * ending with a summary line when done reaches total. Never cancels. */
void cli_hooks_init(ddps_hooks *h);
/* The log function of cli_hooks_init, for lines of the CLI itself (level 1 warning, 2 info, 3 debug). */
void cli_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
