/* The CLI's host hooks (cli/args.h): log lines on stderr filtered by
 * cli_verbosity, and a one-line progress display redrawn in place on a
 * terminal:
 *
 *     scoring 1200/9025  14.2 img/s  ETA 9:10
 *
 * at most a few times a second; when done reaches total, one summary line
 * "scoring 9025/9025 img in 10:37 (14.2 img/s)" ends it. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"

int cli_verbosity = 1;
int cli_progress_force = 0;

/* Redraws at most this often: a loop with many tiny steps must not spend its time printing. */
#define REDRAW_SECONDS 0.25

/* The one progress line of the process (the library reports from the calling thread only). */
static struct {
    char stage[128];
    long total, done;
    int active, shown, last_len;
    int closed; /* the summary was printed: a repeat of the final report (the loop's end) is ignored */
    double t0, last;
} g_bar;

/* Monotonic seconds since an arbitrary origin. */
static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "m:ss" or "h:mm:ss" from whole seconds. */
static void format_clock(long s, char *buf, size_t n) {
    if (s >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, n, "%ld:%02ld", s / 60, s % 60);
}

/* "12.3 s" / "0.35 s" under a minute, else a clock; "?" when not finite. */
static void format_duration(double seconds, char *buf, size_t n) {
    if (!isfinite(seconds) || seconds < 0)
        snprintf(buf, n, "?");
    else if (seconds < 9.995)
        snprintf(buf, n, "%.2f s", seconds);
    else if (seconds < 59.95)
        snprintf(buf, n, "%.1f s", seconds);
    else if (seconds < 1e15)
        format_clock(lround(seconds), buf, n);
    else
        snprintf(buf, n, "%.3g s", seconds);
}

/* Three significant-ish digits of a rate. */
static void format_rate(double rate, char *buf, size_t n) {
    if (rate >= 100)
        snprintf(buf, n, "%.0f", rate);
    else if (rate >= 10)
        snprintf(buf, n, "%.1f", rate);
    else
        snprintf(buf, n, "%.2f", rate);
}

/* Prints text over the previous line ('\r', text, blanks over a longer previous line, end). */
static void draw(const char *text, const char *end) {
    int len = (int)strlen(text);
    int pad = g_bar.last_len > len ? g_bar.last_len - len : 0;
    fprintf(stderr, "\r%s%*s%s", text, pad, "", end);
    fflush(stderr);
    g_bar.last_len = len;
}

/* The running line: "stage done/total  rate img/s  ETA m:ss". */
static void redraw(double t) {
    char line[512], rate[32], eta[32];
    double el = t - g_bar.t0, r = el > 0 ? (double)g_bar.done / el : 0;
    int k = g_bar.total > 0 ? snprintf(line, sizeof line, "%s %ld/%ld", g_bar.stage, g_bar.done, g_bar.total)
                            : snprintf(line, sizeof line, "%s %ld", g_bar.stage, g_bar.done);
    if (k < 0 || (size_t)k >= sizeof line) k = (int)sizeof line - 1;
    if (r > 0) {
        format_rate(r, rate, sizeof rate);
        k += snprintf(line + k, sizeof line - (size_t)k, "  %s img/s", rate);
        if (g_bar.total > 0 && g_bar.done < g_bar.total && (size_t)k < sizeof line) {
            double left = (double)(g_bar.total - g_bar.done) / r;
            if (left < 1e9) {
                format_clock(lround(left), eta, sizeof eta);
                snprintf(line + k, sizeof line - (size_t)k, "  ETA %s", eta);
            }
        }
    }
    draw(line, "");
    g_bar.last = t;
}

/* The summary line "stage done/total img in T (rate img/s)" with a newline; closes the bar. */
static void finish(double t) {
    if (g_bar.shown) {
        char line[512], took[32], rate[32];
        double el = t - g_bar.t0;
        format_duration(el, took, sizeof took);
        int k = g_bar.total > 0
                    ? snprintf(line, sizeof line, "%s %ld/%ld img in %s", g_bar.stage, g_bar.done, g_bar.total, took)
                    : snprintf(line, sizeof line, "%s %ld img in %s", g_bar.stage, g_bar.done, took);
        if (el > 0 && g_bar.done > 0 && k > 0 && (size_t)k < sizeof line) {
            format_rate((double)g_bar.done / el, rate, sizeof rate);
            snprintf(line + k, sizeof line - (size_t)k, " (%s img/s)", rate);
        }
        draw(line, "\n");
    }
    g_bar.active = 0;
    g_bar.closed = 1;
    g_bar.last_len = 0;
}

/* ddps_progress_fn: a new stage (or done going back) starts a line; done == total ends it (0 of 0:
 * nothing to do), and the loop's final report repeating it is ignored. */
static int cli_progress(void *user, const char *stage, long done, long total) {
    double t = now_seconds();
    if (!stage) stage = "";
    if (!g_bar.active && g_bar.closed && done == g_bar.done && total == g_bar.total &&
        strcmp(stage, g_bar.stage) == 0)
        return 0;
    g_bar.closed = 0;
    if (!g_bar.active || done < g_bar.done || strcmp(stage, g_bar.stage) != 0) {
        if (g_bar.active) finish(t);
        g_bar.active = 1;
        snprintf(g_bar.stage, sizeof g_bar.stage, "%s", stage);
        g_bar.shown = cli_verbosity > 0 && (cli_progress_force || isatty(STDERR_FILENO));
        g_bar.t0 = g_bar.last = t;
        g_bar.done = done;
        g_bar.total = total;
        if (g_bar.shown) redraw(t);
    }
    g_bar.done = done;
    g_bar.total = total;
    if ((total > 0 && done >= total) || (total == 0 && done == 0)) { /* complete, or nothing to do */
        finish(t);
        return 0;
    }
    if (g_bar.shown && t - g_bar.last >= REDRAW_SECONDS) redraw(t);
    return 0;
}

/* Ends a drawn progress line before a log line, so that the log line starts clean (the bar continues below it). */
static void end_open_line(void) {
    if (g_bar.active && g_bar.shown && g_bar.last_len > 0) fputc('\n', stderr);
    g_bar.last_len = 0;
}

/* ddps_log_fn: "ddps: [warning: |debug: ]line" on stderr when cli_verbosity allows the level. */
static void cli_log_fn(void *user, int level, const char *line) {
    if (level >= 3 ? cli_verbosity < 2 : cli_verbosity < 1) return;
    end_open_line();
    fprintf(stderr, "ddps: %s%s\n", level == 1 ? "warning: " : level >= 3 ? "debug: " : "", line);
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
