/* Scoring a dataset (`ddps score`, first half of `ddps distill`): Stage I
 * and Stage II for every image of an ImageFolder, one image per store
 * transaction, then k-means per class (METHOD.md).
 *
 * Resumable and deterministic: images already in the store are skipped, and
 * every random draw comes from (seed, path relative to the data root), so an
 * interrupted and resumed run stores exactly what an uninterrupted one does
 * (same machine and thread count). Rerunning into a store made with other
 * settings or another model is refused. */
#ifndef DDPS_PIPELINE_SCORE_H
#define DDPS_PIPELINE_SCORE_H

#include <stdint.h>

#include "ddps.h"
#include "pipeline/store.h"
#include "util/err.h"

#define DDPS_MAX_TIMESTEPS DDPS_MAX_TIMESTEPS_API

/* One scoring run: the public settings (include/ddps.h; checked by
 * ddps_score_check, pipeline/params.h) and what a run needs beyond them. */
typedef struct {
    ddps_score_params p;
    const char *data_dir, *model_dir, *store_path;
    /* When set, called with (done, to do) at the start and after every
     * group instead of showing the progress line (an MPI job's rank 0 shows
     * the whole job's). */
    void (*on_progress)(void *arg, long done, long todo);
    void *progress_arg;
} ddps_score_opts;

/* Zeroes o and sets o->p to ddps_score_params_init's defaults. */
void ddps_score_defaults(ddps_score_opts *o);
/* Scores everything not yet in the store, then clusters the classes.
 * totals (may be NULL) gets this run's counts. */
int ddps_score_run(const ddps_score_opts *o, ddps_run_stats *totals, ddps_err *err);

#endif
