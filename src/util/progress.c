#include "util/progress.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"
#include "util/fs.h"

/* Redraws at most this often: a terminal does not need more, and a loop
 * with millions of tiny steps must not spend its time printing. */
#define REDRAW_SECONDS 0.25

struct ddps_progress {
    char label[128];
    long total, done;
    int hooked; /* reports to the thread's hook */
    int drawn;  /* owns the stderr line (no hook, verbosity > 0) */
};

static _Thread_local ddps_progress_hook t_hook;
static _Thread_local void *t_hook_user;
static _Thread_local const volatile int *t_cancel_flag;
static _Thread_local int t_cancelled;

void ddps_progress_set_thread_hook(ddps_progress_hook fn, void *user) {
    t_hook = fn;
    t_hook_user = user;
}

void ddps_cancel_set_thread_flag(const volatile int *flag) { t_cancel_flag = flag; }

int ddps_cancel_requested(void) { return t_cancelled || (t_cancel_flag && *t_cancel_flag); }

void ddps_cancel_reset(void) { t_cancelled = 0; }

static void report(ddps_progress *p) {
    if (t_hook && t_hook(t_hook_user, p->label, p->done, p->total)) t_cancelled = 1;
}

/* "m:ss" or "h:mm:ss" from whole seconds. */
static void format_clock(long s, char *buf, size_t n) {
    if (s >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, n, "%ld:%02ld", s / 60, s % 60);
}

void ddps_format_duration(double seconds, char *buf, size_t n) {
    if (!n) return;
    if (!isfinite(seconds) || seconds < 0) {
        snprintf(buf, n, "?");
    } else if (seconds < 9.995) {
        snprintf(buf, n, "%.2f s", seconds);
    } else if (seconds < 59.95) {
        snprintf(buf, n, "%.1f s", seconds);
    } else if (seconds < 1e15) {
        format_clock(lround(seconds), buf, n);
    } else {
        snprintf(buf, n, "%.3g s", seconds); /* absurd, but no overflow in lround */
    }
}

static void format_rate(double rate, char *buf, size_t n) {
    if (rate >= 100) snprintf(buf, n, "%.0f", rate);
    else if (rate >= 10) snprintf(buf, n, "%.1f", rate);
    else snprintf(buf, n, "%.2f", rate);
}

/* The process's one progress line on stderr. Long work reports from one
 * thread (the loop that consumes results), so one line serves every
 * progress object and the public ddps_progress_stderr alike. */
static struct {
    char label[128], unit[32];
    long total, done;
    int active, shown; /* a line is open; it is drawn (terminal or forced) */
    int closed;        /* its summary was printed (see ddps_progress_stderr) */
    int last_len;      /* length of the last drawn text, to blank its leftovers */
    double t0, last;   /* monotonic seconds: start, last redraw */
} g_bar;

/* Prints text over the previous line: '\r', the text, blanks over what the
 * previous (longer) line left, and the terminator. */
static void bar_draw(const char *text, const char *end) {
    int len = (int)strlen(text);
    int pad = g_bar.last_len > len ? g_bar.last_len - len : 0;
    fprintf(stderr, "\r%s%*s%s", text, pad, "", end);
    fflush(stderr);
    g_bar.last_len = len;
}

/* The running line: "label done/total  rate unit/s  ETA m:ss". */
static void bar_redraw(double t) {
    char line[512], rate[32], eta[32];
    double el = t - g_bar.t0, r = el > 0 ? (double)g_bar.done / el : 0;
    int k = g_bar.total > 0 ? snprintf(line, sizeof line, "%s %ld/%ld", g_bar.label, g_bar.done, g_bar.total)
                            : snprintf(line, sizeof line, "%s %ld", g_bar.label, g_bar.done);
    if (k < 0 || (size_t)k >= sizeof line) k = (int)sizeof line - 1;
    if (r > 0) {
        format_rate(r, rate, sizeof rate);
        k += snprintf(line + k, sizeof line - (size_t)k, "  %s %s/s", rate, g_bar.unit);
        if (g_bar.total > 0 && g_bar.done < g_bar.total && (size_t)k < sizeof line) {
            double left = (double)(g_bar.total - g_bar.done) / r;
            if (left < 1e9) {
                format_clock(lround(left), eta, sizeof eta);
                snprintf(line + k, sizeof line - (size_t)k, "  ETA %s", eta);
            }
        }
    }
    bar_draw(line, "");
    g_bar.last = t;
}

/* Opens the line for label (drawn when stderr is a terminal or force). */
static void bar_begin(const char *label, const char *unit, long total, int force) {
    snprintf(g_bar.label, sizeof g_bar.label, "%s", label ? label : "");
    snprintf(g_bar.unit, sizeof g_bar.unit, "%s", unit ? unit : "it");
    g_bar.total = total;
    g_bar.done = 0;
    g_bar.active = 1;
    g_bar.closed = 0;
    g_bar.shown = force || isatty(STDERR_FILENO);
    g_bar.t0 = g_bar.last = ddps_seconds();
    if (g_bar.shown) bar_redraw(g_bar.t0);
}

/* Records done (and total); redraws when REDRAW_SECONDS passed since the last redraw. */
static void bar_update(long done, long total) {
    g_bar.done = done;
    g_bar.total = total;
    if (!g_bar.shown) return;
    double t = ddps_seconds();
    if (t - g_bar.last >= REDRAW_SECONDS) bar_redraw(t);
}

/* Closes the line with "label done/total unit in 4:07 (rate unit/s)" and a newline. */
static void bar_close(void) {
    if (g_bar.active && g_bar.shown) {
        char line[512], took[32], rate[32];
        double el = ddps_seconds() - g_bar.t0;
        ddps_format_duration(el, took, sizeof took);
        int k = g_bar.total > 0 ? snprintf(line, sizeof line, "%s %ld/%ld %s in %s", g_bar.label, g_bar.done,
                                           g_bar.total, g_bar.unit, took)
                                : snprintf(line, sizeof line, "%s %ld %s in %s", g_bar.label, g_bar.done, g_bar.unit,
                                           took);
        if (el > 0 && g_bar.done > 0 && k > 0 && (size_t)k < sizeof line) {
            format_rate((double)g_bar.done / el, rate, sizeof rate);
            snprintf(line + k, sizeof line - (size_t)k, " (%s %s/s)", rate, g_bar.unit);
        }
        bar_draw(line, "\n");
    }
    g_bar.active = 0;
    g_bar.closed = 1;
    g_bar.last_len = 0;
}

void ddps_progress_break_line(void) {
    if (g_bar.active && g_bar.shown && g_bar.last_len > 0) fputc('\n', stderr);
    g_bar.last_len = 0;
}

int ddps_progress_draw(const char *label, const char *unit, long done, long total, int force) {
    if (!label) label = "";
    if (!g_bar.active && g_bar.closed && done == g_bar.done && total == g_bar.total &&
        strcmp(label, g_bar.label) == 0)
        return 0; /* the loop's final report repeating the completed line */
    if (!g_bar.active || done < g_bar.done || strcmp(label, g_bar.label) != 0) {
        if (g_bar.active) bar_close();
        bar_begin(label, unit, total, force);
    }
    bar_update(done, total);
    if ((total > 0 && done >= total) || (total == 0 && done == 0)) bar_close(); /* complete, or nothing to do */
    return 0;
}

ddps_progress *ddps_progress_start(const char *label, long total, const char *unit, int force) {
    ddps_progress *p = ddps_calloc(1, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->total = total;
    if (t_hook) {
        p->hooked = 1;
        report(p);
    } else if (ddps_verbosity > 0) {
        p->drawn = 1;
        if (g_bar.active) bar_close();
        bar_begin(p->label, unit, total, force);
    }
    return p;
}

void ddps_progress_update(ddps_progress *p, long done) {
    if (!p) return;
    p->done = done;
    if (p->hooked) report(p);
    if (p->drawn) bar_update(done, p->total);
}

void ddps_progress_end(ddps_progress *p) {
    if (!p) return;
    if (p->hooked) report(p);
    if (p->drawn) bar_close();
    free(p);
}
