/* The public library (include/ddps.h): errors, hooks, parameters, drivers
 * and clustering, over the internal pipeline. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_internal.h"
#include "pipeline/kmeans.h"
#include "pipeline/params.h"
#include "pipeline/scale_mpi.h"
#include "pipeline/select.h"
#include "pipeline/shard.h"
#include "util/progress.h"

/* ---------- hooks ---------- */

DDPS_API void ddps_hooks_init(ddps_hooks *h) { memset(h, 0, sizeof *h); }

DDPS_API void ddps_log_stderr(void *user, int level, const char *line) {
    (void)user;
    ddps_progress_break_line();
    fprintf(stderr, "ddps: %s%s\n", level == 1 ? "warning: " : level == 3 ? "debug: " : "", line);
}

DDPS_API int ddps_progress_stderr(void *user, const char *stage, long done, long total) {
    const int *force = user;
    return ddps_progress_draw(stage, "img", done, total, force && *force);
}

/* The thread's current hooks (a copy: the caller's struct may go away). */
static _Thread_local ddps_hooks t_hooks;

/* ddps_log_hook of the calling thread: to the host's log callback, or dropped. */
static void log_tramp(void *user, int level, const char *line) {
    if (t_hooks.log) t_hooks.log(t_hooks.user, level, line);
}

/* ddps_progress_hook of the calling thread: the host's callback's answer (non-zero cancels). */
static int progress_tramp(void *user, const char *label, long done, long total) {
    return t_hooks.progress ? t_hooks.progress(t_hooks.user, label, done, total) : 0;
}

void ddps_api_enter(const ddps_hooks *h) {
    if (h)
        t_hooks = *h;
    else
        memset(&t_hooks, 0, sizeof t_hooks);
    ddps_log_set_thread(log_tramp, NULL);
    ddps_progress_set_thread_hook(progress_tramp, NULL);
    ddps_cancel_set_thread_flag(t_hooks.cancel);
    ddps_cancel_reset();
}

void ddps_api_leave(void) {
    ddps_log_set_thread(NULL, NULL);
    ddps_progress_set_thread_hook(NULL, NULL);
    ddps_cancel_set_thread_flag(NULL);
    ddps_cancel_reset();
    memset(&t_hooks, 0, sizeof t_hooks);
}

/* ---------- parameters ---------- */

int ddps_api_score_opts(const ddps_score_params *p, ddps_score_opts *o, ddps_err *err) {
    ddps_score_defaults(o);
    if (ddps_score_check(p, err) != 0) return -1;
    const ddps_score_params d = o->p;
    o->p = *p;
    if (!o->p.prompt) o->p.prompt = d.prompt;
    if (!o->p.null_prompt) o->p.null_prompt = d.null_prompt;
    if (!o->p.device) o->p.device = d.device;
    if (!o->p.precision) o->p.precision = d.precision;
    if (o->p.shard_n == 0) o->p.shard_k = 0;
    return 0;
}

/* ---------- drivers ---------- */

DDPS_API ddps_status ddps_run_score(const ddps_score_params *p, const char *data_dir, const char *model_dir,
                                    const char *store_path, const ddps_hooks *hooks, ddps_run_totals *totals,
                                    ddps_error *err) {
    if (totals) memset(totals, 0, sizeof *totals);
    if (!p || !data_dir || !model_dir || !store_path)
        return ddps_api_failf(err, DDPS_ERR_USAGE, "ddps_run_score: params, data_dir, model_dir and store_path are required");
    ddps_err e = {{0}};
    ddps_score_opts o;
    if (ddps_api_score_opts(p, &o, &e) != 0) return ddps_api_fail(err, &e);
    o.data_dir = data_dir;
    o.model_dir = model_dir;
    o.store_path = store_path;
    ddps_run_stats st;
    memset(&st, 0, sizeof st);
    char *shard = o.p.shard_n > 0 ? ddps_shard_path(store_path, o.p.shard_k, o.p.shard_n) : NULL;
    if (shard) o.store_path = shard;
    ddps_api_enter(hooks);
    int rc = p->mpi ? ddps_mpi_score(&o, &st, &e) : ddps_score_run(&o, &st, &e);
    int cancelled = ddps_cancel_requested();
    ddps_api_leave();
    free(shard);
    if (totals) {
        totals->images_scored = st.images_scored;
        totals->images_bad = st.images_bad;
        totals->unet_latents = st.unet_latents;
        totals->vae_images = st.vae_images;
        totals->text_prompts = st.text_prompts;
        totals->seconds = st.seconds;
    }
    if (rc != 0) return ddps_api_fail(err, &e);
    if (cancelled)
        return ddps_api_failf(err, DDPS_ERR_CANCELLED, "%s: cancelled after %ld images (stored; run again to continue)",
                              store_path, st.images_scored);
    return ddps_api_ok(err);
}

DDPS_API ddps_status ddps_run_select(const char *store_path, const char *out_dir, const int *ipc, int n_ipc,
                                     const ddps_select_params *p, const ddps_hooks *hooks, ddps_error *err) {
    if (!store_path || !out_dir)
        return ddps_api_failf(err, DDPS_ERR_USAGE, "ddps_run_select: store_path and out_dir are required");
    ddps_err e = {{0}};
    if (ddps_select_check(p, ipc, n_ipc, &e) != 0) return ddps_api_fail(err, &e);
    ddps_select_opts o;
    ddps_select_defaults(&o);
    o.p = *p;
    o.store_path = store_path;
    o.out_dir = out_dir;
    o.ipc = ipc;
    o.n_ipc = n_ipc;
    int made_out = access(out_dir, F_OK) != 0; /* removed again if the run fails and leaves it empty */
    ddps_api_enter(hooks);
    int rc = ddps_select_run(&o, &e);
    ddps_api_leave();
    if (rc != 0 && made_out) rmdir(out_dir);
    return rc != 0 ? ddps_api_fail(err, &e) : ddps_api_ok(err);
}

/* ---------- clustering ---------- */

DDPS_API ddps_status ddps_cluster_features(const float *x, int n, int dim, int k, uint64_t seed, int *assign,
                                           float *dist, int *k_used, ddps_error *err) {
    if (n < 0 || dim < 1 || k < 1 || (n > 0 && (!x || !assign || !dist)) || !k_used)
        return ddps_api_failf(err, DDPS_ERR_USAGE, "ddps_cluster_features: n >= 0, dim >= 1, k >= 1 and the arrays are required");
    float *cent = malloc((size_t)k * (size_t)dim * sizeof *cent);
    if (!cent) return ddps_api_failf(err, DDPS_ERR_RESOURCE, "ddps_cluster_features: out of memory for %d centroids", k);
    int rc = ddps_kmeans(x, n, dim, k, seed, 300, assign, cent, dist, k_used);
    free(cent);
    if (rc != 0) return ddps_api_failf(err, DDPS_ERR_DATA, "ddps_cluster_features: invalid input (a non-finite value?)");
    return ddps_api_ok(err);
}
