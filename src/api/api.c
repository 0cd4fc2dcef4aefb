/* The public library (include/ddps.h): errors, hooks, parameters, drivers
 * and clustering, over the internal pipeline. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_internal.h"
#include "pipeline/kmeans.h"
#include "pipeline/scale_mpi.h"
#include "pipeline/select.h"
#include "pipeline/shard.h"
#include "util/progress.h"

/* ---------- errors ---------- */

DDPS_API const char *ddps_status_name(ddps_status s) {
    switch (s) {
    case DDPS_OK: return "ok";
    case DDPS_ERR_FAILURE: return "failure";
    case DDPS_ERR_USAGE: return "usage";
    case DDPS_ERR_DATA: return "data";
    case DDPS_ERR_RESOURCE: return "resource";
    case DDPS_ERR_CANCELLED: return "cancelled";
    }
    return "unknown";
}

DDPS_API const char *ddps_version(void) { return DDPS_VERSION; }

DDPS_API void ddps_free(void *p) { free(p); }

ddps_status ddps_api_ok(ddps_error *out) {
    if (out) {
        out->status = DDPS_OK;
        out->message[0] = 0;
    }
    return DDPS_OK;
}

ddps_status ddps_api_fail(ddps_error *out, const ddps_err *e) {
    ddps_status st;
    switch (e->kind) {
    case DDPS_KIND_USAGE: st = DDPS_ERR_USAGE; break;
    case DDPS_KIND_DATA: st = DDPS_ERR_DATA; break;
    case DDPS_KIND_RESOURCE: st = DDPS_ERR_RESOURCE; break;
    case DDPS_KIND_CANCELLED: st = DDPS_ERR_CANCELLED; break;
    default: st = DDPS_ERR_FAILURE; break;
    }
    if (out) {
        out->status = st;
        snprintf(out->message, sizeof out->message, "%s", e->msg[0] ? e->msg : "unknown failure");
    }
    return st;
}

ddps_status ddps_api_failf(ddps_error *out, ddps_status st, const char *fmt, ...) {
    if (out) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(out->message, sizeof out->message, fmt, ap);
        va_end(ap);
        out->status = st;
    }
    return st;
}

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
    if (p->n_explicit < 0 || p->n_explicit > DDPS_MAX_TIMESTEPS || p->n_explicit > DDPS_MAX_TIMESTEPS_API)
        return ddps_fail_usage(err, "timesteps: %d explicit values, expected 0..%d", p->n_explicit,
                               DDPS_MAX_TIMESTEPS_API);
    if (p->n_classes < 0 || (p->n_classes > 0 && !p->classes))
        return ddps_fail_usage(err, "classes: %d names but no list", p->n_classes);
    o->prompt = p->prompt ? p->prompt : o->prompt;
    o->null_prompt = p->null_prompt ? p->null_prompt : o->null_prompt;
    o->n_timesteps = p->n_timesteps;
    o->n_explicit = p->n_explicit;
    for (int i = 0; i < p->n_explicit; i++) o->timesteps[i] = p->timesteps[i];
    o->t_lo = p->t_lo;
    o->t_hi = p->t_hi;
    o->size = p->size;
    o->patch = p->patch;
    o->stride = p->stride;
    o->patches_per_image = p->patches_per_image;
    o->dift_t = p->dift_t;
    o->dift_ensemble = p->dift_ensemble;
    o->clusters = p->clusters;
    o->low_res = p->low_res;
    o->class_names = p->class_names;
    o->max_per_class = p->max_per_class;
    o->classes = p->classes;
    o->n_classes = p->n_classes;
    o->seed = p->seed;
    o->threads = p->threads;
    o->batch_images = p->batch_images;
    o->device = p->device ? p->device : o->device;
    o->precision = p->precision ? p->precision : o->precision;
    o->command = p->command ? p->command : "score";
    o->config_dir = p->config_dir;
    if (p->shard_n < 0 || (p->shard_n > 0 && (p->shard_k < 0 || p->shard_k >= p->shard_n)))
        return ddps_fail_usage(err, "shard %d/%d: expected 0 <= shard_k < shard_n", p->shard_k, p->shard_n);
    if (p->shard_n > 0 && p->mpi) return ddps_fail_usage(err, "shard: not with mpi (each rank takes its own share)");
    o->shard_k = p->shard_n > 0 ? p->shard_k : 0;
    o->shard_n = p->shard_n;
    /* The CLI's parser checks these ranges before ddps_score_run sees them. */
    if (o->threads < 0 || o->threads > 4096) return ddps_fail_usage(err, "threads %d: expected 0..4096", o->threads);
    if (o->batch_images < 0 || o->batch_images > 256)
        return ddps_fail_usage(err, "batch_images %d: expected 0..256", o->batch_images);
    if (o->max_per_class < 0) return ddps_fail_usage(err, "max_per_class %d: expected >= 0", o->max_per_class);
    if (o->dift_t < 0) return ddps_fail_usage(err, "dift_t %d: must not be negative", o->dift_t);
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
    char *shard = o.shard_n > 0 ? ddps_shard_path(store_path, o.shard_k, o.shard_n) : NULL;
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
    if (!store_path || !out_dir || !ipc || n_ipc < 1 || !p)
        return ddps_api_failf(err, DDPS_ERR_USAGE, "ddps_run_select: store_path, out_dir, params and at least one ipc are required");
    for (int i = 0; i < n_ipc; i++)
        if (ipc[i] < 1 || ipc[i] > 1000000) return ddps_api_failf(err, DDPS_ERR_USAGE, "ipc %d: expected 1..1000000", ipc[i]);
    const char *fmt = p->format ? p->format : "png";
    if (strcmp(fmt, "png") != 0 && strcmp(fmt, "jpg") != 0 && strcmp(fmt, "jpeg") != 0)
        return ddps_api_failf(err, DDPS_ERR_USAGE, "format %s: must be png or jpg", fmt);
    if (p->top_clusters < 1 || p->mosaic_max_ipc < 0 || p->output_size < 2 || p->output_size > 8192 ||
        p->jpeg_quality < 1 || p->jpeg_quality > 100 || p->threads < 0 || p->n_classes < 0 ||
        (p->n_classes > 0 && !p->classes))
        return ddps_api_failf(err, DDPS_ERR_USAGE,
                              "select params out of range (top_clusters >= 1, mosaic_max_ipc >= 0, "
                              "output_size 2..8192, jpeg_quality 1..100, threads >= 0)");
    ddps_select_opts o;
    ddps_select_defaults(&o);
    o.store_path = store_path;
    o.out_dir = out_dir;
    o.ipc = ipc;
    o.n_ipc = n_ipc;
    o.classes = p->classes;
    o.n_classes = p->n_classes;
    o.top_clusters = p->top_clusters;
    o.mosaic_max_ipc = p->mosaic_max_ipc;
    o.output_size = p->output_size;
    o.format = fmt;
    o.jpeg_quality = p->jpeg_quality;
    o.data_root = p->data_root;
    o.threads = p->threads;
    o.command = p->command ? p->command : "select";
    o.folder_names = p->folder_names;
    if (o.folder_names && strcmp(o.folder_names, "class") != 0 && strcmp(o.folder_names, "index") != 0)
        return ddps_api_failf(err, DDPS_ERR_USAGE, "folder_names %s: expected class or index", o.folder_names);
    ddps_err e = {{0}};
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
