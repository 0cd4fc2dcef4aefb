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
    char label[128], unit[32];
    long total, done;
    int shown;      /* 0: silent */
    double t0, last; /* monotonic seconds: start, last redraw */
    int last_len;   /* length of the last drawn line, to blank its leftovers */
    int hooked;     /* reports to the thread's hook */
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

/* Prints text over the previous line: '\r', the text, blanks over what the
 * previous (longer) line left, and the terminator. */
static void draw(ddps_progress *p, const char *text, const char *end) {
    int len = (int)strlen(text);
    int pad = p->last_len > len ? p->last_len - len : 0;
    fprintf(stderr, "\r%s%*s%s", text, pad, "", end);
    fflush(stderr);
    p->last_len = len;
}

static void redraw(ddps_progress *p, double t) {
    char line[512], rate[32], eta[32];
    double el = t - p->t0, r = el > 0 ? (double)p->done / el : 0;
    int k = p->total > 0 ? snprintf(line, sizeof line, "%s %ld/%ld", p->label, p->done, p->total)
                         : snprintf(line, sizeof line, "%s %ld", p->label, p->done);
    if (k < 0 || (size_t)k >= sizeof line) k = (int)sizeof line - 1;
    if (r > 0) {
        format_rate(r, rate, sizeof rate);
        k += snprintf(line + k, sizeof line - (size_t)k, "  %s %s/s", rate, p->unit);
        if (p->total > 0 && p->done < p->total && (size_t)k < sizeof line) {
            double left = (double)(p->total - p->done) / r;
            if (left < 1e9) {
                format_clock(lround(left), eta, sizeof eta);
                snprintf(line + k, sizeof line - (size_t)k, "  ETA %s", eta);
            }
        }
    }
    draw(p, line, "");
    p->last = t;
}

ddps_progress *ddps_progress_start(const char *label, long total, const char *unit, int force) {
    ddps_progress *p = ddps_calloc(1, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "it");
    p->total = total;
    p->shown = ddps_verbosity > 0 && (force || isatty(STDERR_FILENO));
    p->t0 = p->last = ddps_seconds();
    if (t_hook) {
        p->hooked = 1;
        p->shown = 0;
        report(p);
    }
    if (p->shown) redraw(p, p->t0);
    return p;
}

void ddps_progress_update(ddps_progress *p, long done) {
    if (!p) return;
    p->done = done;
    if (p->hooked) report(p);
    if (!p->shown) return;
    double t = ddps_seconds();
    if (t - p->last >= REDRAW_SECONDS) redraw(p, t);
}

void ddps_progress_end(ddps_progress *p) {
    if (!p) return;
    if (p->hooked) report(p);
    if (p->shown) {
        char line[512], took[32], rate[32];
        double el = ddps_seconds() - p->t0;
        ddps_format_duration(el, took, sizeof took);
        int k = p->total > 0 ? snprintf(line, sizeof line, "%s %ld/%ld %s in %s", p->label, p->done, p->total,
                                         p->unit, took)
                             : snprintf(line, sizeof line, "%s %ld %s in %s", p->label, p->done, p->unit, took);
        if (el > 0 && p->done > 0 && k > 0 && (size_t)k < sizeof line) {
            format_rate((double)p->done / el, rate, sizeof rate);
            snprintf(line + k, sizeof line - (size_t)k, " (%s %s/s)", rate, p->unit);
        }
        draw(p, line, "\n");
    }
    free(p);
}
