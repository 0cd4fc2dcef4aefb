/* A one-line progress display for long loops:
 *
 *     scoring 1200/9025  14.2 img/s  ETA 9:10
 *
 * redrawn in place ('\r') on stderr at most a few times a second, and only
 * when stderr is a terminal (or force = 1), so logs and pipes stay clean.
 * ddps_verbosity == 0 silences it even when forced. Not thread-safe: update
 * from one thread (the loop that consumes results).
 */
#ifndef DDPS_UTIL_PROGRESS_H
#define DDPS_UTIL_PROGRESS_H

#include <stddef.h>

#include "util/clock.h" /* ddps_seconds, the clock progress rates use */

typedef struct ddps_progress ddps_progress;

/* Shows "label done/total  rate unit/s  ETA m:ss" on stderr. total <= 0
 * means unknown (no "/total", no ETA). Always returns an object (a silent one
 * when nothing is to be shown); every function accepts NULL as a no-op. */
ddps_progress *ddps_progress_start(const char *label, long total, const char *unit, int force);
/* Records that `done` units are finished; redraws when enough time passed
 * since the last redraw. */
void ddps_progress_update(ddps_progress *p, long done);
/* Final line "label done/total unit in 4:07 (rate unit/s)" ending with a
 * newline; frees p. */
void ddps_progress_end(ddps_progress *p);

/* Host hook (the public library's progress callback): while set on a thread,
 * every progress object started on that thread reports to it instead of
 * drawing (start with done = 0, each update, end), whatever the terminal or
 * ddps_verbosity. A non-zero return asks the running loop to stop. fn NULL
 * removes it. */
typedef int (*ddps_progress_hook)(void *user, const char *label, long done, long total);
void ddps_progress_set_thread_hook(ddps_progress_hook fn, void *user);
/* Cancellation of the calling thread's long run: 1 once the hook returned
 * non-zero or *flag (ddps_cancel_set_thread_flag; read, never written) is
 * non-zero. Loops that can stop cleanly between items check it. */
void ddps_cancel_set_thread_flag(const volatile int *flag);
int ddps_cancel_requested(void);
void ddps_cancel_reset(void);

/* The stderr line of the hook protocol (public as ddps_progress_stderr): a
 * new label, or done going back, starts a line (drawn when stderr is a
 * terminal or force); done reaching total ends it with the summary line
 * (0 of 0: nothing to do); the loop's final report repeating a completed
 * line is ignored. Returns 0 (never cancels). */
int ddps_progress_draw(const char *label, const char *unit, long done, long total, int force);
/* Ends an open progress line with a newline so that a log line starts
 * clean (the line is redrawn below it at the next update). */
void ddps_progress_break_line(void);

/* Formats seconds as "1:05:03" (an hour or more), "4:07" (a minute or more),
 * "12.3 s" / "0.35 s" (less); "?" for negative or non-finite values. */
void ddps_format_duration(double seconds, char *buf, size_t n);

#endif
