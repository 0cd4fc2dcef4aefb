/* Shared helpers of the public library's facade (src/api): conversions
 * between ddps.h's types and the internal ones, and the per-call scope that
 * routes logging, progress and cancellation to the host's hooks. */
#ifndef DDPS_API_INTERNAL_H
#define DDPS_API_INTERNAL_H

#include "ddps.h"
#include "pipeline/score.h"
#include "util/err.h"

/* Sets the calling thread's log/progress/cancel hooks to h (NULL: silent,
 * no progress, never cancelled) for the duration of one public call. */
void ddps_api_enter(const ddps_hooks *h);
/* Restores the defaults (no thread hooks: stderr as for the CLI). */
void ddps_api_leave(void);

/* Status for a failed internal call: copies e's message and maps its kind
 * (DDPS_KIND_*) to a ddps_status; out may be NULL. */
ddps_status ddps_api_fail(ddps_error *out, const ddps_err *e);
/* A failure raised by the facade itself. */
ddps_status ddps_api_failf(ddps_error *out, ddps_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Clears out (status ok, empty message); returns DDPS_OK. */
ddps_status ddps_api_ok(ddps_error *out);

/* The internal scoring options for p (paths left NULL, command "score").
 * Fails (usage) when p has more explicit timesteps than fit. */
int ddps_api_score_opts(const ddps_score_params *p, ddps_score_opts *o, ddps_err *err);

#endif
