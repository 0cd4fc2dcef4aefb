/* The CLI's host hooks (cli/args.h): the library's own stderr printers
 * (ddps_log_stderr, ddps_progress_stderr) behind the -q / -v filter. */
#include <stdarg.h>
#include <stdio.h>

#include "cli/args.h"

int cli_verbosity = 1;
int cli_progress_force = 0;

/* ddps_progress_fn: the library's stderr line, at verbosity >= 1. */
static int cli_progress(void *user, const char *stage, long done, long total) {
    (void)user;
    return cli_verbosity > 0 ? ddps_progress_stderr(&cli_progress_force, stage, done, total) : 0;
}

/* ddps_log_fn: a tool's report line (DDPS_LOG_OUTPUT) on stdout as it comes, whatever the
 * verbosity; the others as "ddps: [warning: |debug: ]line" on stderr when cli_verbosity allows. */
static void cli_log_fn(void *user, int level, const char *line) {
    if (level == DDPS_LOG_OUTPUT) {
        printf("%s\n", line);
        fflush(stdout);
        return;
    }
    if (level >= 3 ? cli_verbosity < 2 : cli_verbosity < 1) return;
    ddps_log_stderr(user, level, line);
}

void cli_log(int level, const char *fmt, ...) {
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    cli_log_fn(NULL, level, line);
}

void cli_hooks_init(ddps_hooks *h) {
    ddps_hooks_init(h);
    h->log = cli_log_fn;
    h->progress = cli_progress;
}
