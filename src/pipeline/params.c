/* The parameter checks of every command (pipeline/params.h): the range
 * table (each bound written once), the defaults, and one check per command. */
#include "pipeline/params.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#include "pipeline/cluster.h"
#include "tensor/backend.h"

/* The largest IPC any command takes. */
#define MAX_IPC 1000000

typedef struct {
    const char *command, *option;
    long lo, hi;
} range;

/* Every bounded integer option: the CLI's tables take lo and hi from here
 * (ddps_param_range), the checks below test against them. */
static const range RANGES[] = {
    {"score", "--timesteps", 1, DDPS_MAX_TIMESTEPS_API}, /* the count form; a list holds values 0..T-1 */
    {"score", "--size", 16, 4096},
    {"score", "--patch", 8, 4096},
    {"score", "--stride", 1, 4096},
    {"score", "--patches-per-image", 1, 64},
    {"score", "--dift-t", 0, 100000},
    {"score", "--dift-ensemble", 1, 64},
    {"score", "--clusters", 1, DDPS_MAX_CLUSTERS}, /* what k-means takes (pipeline/cluster.h) */
    {"score", "--max-per-class", 0, 1L << 30},
    {"score", "--threads", 0, 4096},
    {"score", "--batch-images", 0, 256}, /* 0: auto */
    {"select", "--ipc", 1, MAX_IPC},
    {"select", "--top-clusters", 0, DDPS_MAX_CLUSTERS},
    {"select", "--mosaic-max-ipc", 0, MAX_IPC},
    {"select", "--output-size", 2, 8192},
    {"select", "--jpeg-quality", 1, 100},
    {"select", "--threads", 0, 4096},
    {"report", "--ipc", 1, MAX_IPC},
    {"report", "--thumb", 16, 1024},
    {"report", "--threads", 0, 4096},
};

int ddps_range_get(const char *command, const char *option, long *lo, long *hi) {
    if (!command || !option) return -1;
    for (size_t i = 0; i < sizeof RANGES / sizeof *RANGES; i++)
        if (strcmp(RANGES[i].command, command) == 0 && strcmp(RANGES[i].option, option) == 0) {
            *lo = RANGES[i].lo;
            *hi = RANGES[i].hi;
            return 0;
        }
    return -1;
}

/* v inside the table's range of (command, option), else a usage error. */
static int in_range(const char *command, const char *option, long v, ddps_err *err) {
    long lo = 0, hi = 0;
    int known = ddps_range_get(command, option, &lo, &hi) == 0;
    assert(known); /* every option checked here is in RANGES */
    if (!known) return ddps_fail(err, "internal error: no range for %s %s", command, option);
    if (v < lo || v > hi) return ddps_fail_usage(err, "%s %ld: must be between %ld and %ld", option, v, lo, hi);
    return 0;
}

/* ---- defaults ---- */

void ddps_score_params_defaults(ddps_score_params *p) {
    memset(p, 0, sizeof *p);
    p->prompt = "An image of {}.";
    p->null_prompt = "";
    p->n_timesteps = 5;
    p->t_lo = 0.1;
    p->t_hi = 0.7;
    p->size = 256;
    p->patch = 192;
    p->stride = 16;
    p->patches_per_image = 1;
    p->dift_t = 160;
    p->dift_ensemble = 4;
    p->clusters = 32;
    p->device = "cpu";
    p->precision = "f32";
}

void ddps_select_params_defaults(ddps_select_params *p) {
    memset(p, 0, sizeof *p);
    p->top_clusters = 10;
    p->mosaic_max_ipc = 10;
    p->output_size = 224;
    p->format = "png";
    p->jpeg_quality = 95;
}

void ddps_report_params_defaults(ddps_report_params *p) {
    memset(p, 0, sizeof *p);
    p->ipc = 10;
    p->thumb = 160;
}

/* ---- the timestep schedule ---- */

int ddps_score_timesteps(const ddps_score_params *p, int T, int *out, ddps_err *err) {
    if (p->n_explicit > 0) {
        for (int i = 0; i < p->n_explicit; i++) {
            if (p->timesteps[i] < 0 || p->timesteps[i] >= T)
                return ddps_fail_usage(err, "--timesteps: %d is outside 0..%d", p->timesteps[i], T - 1);
            out[i] = p->timesteps[i];
        }
        return p->n_explicit;
    }
    int K = p->n_timesteps;
    if (K < 1 || K > DDPS_MAX_TIMESTEPS_API) return ddps_fail_usage(err, "--timesteps %d: expected 1..%d", K, DDPS_MAX_TIMESTEPS_API);
    if (!(p->t_lo >= 0 && p->t_hi <= 1 && p->t_lo <= p->t_hi))
        return ddps_fail_usage(err, "--t-range %g,%g: expected 0 <= lo <= hi <= 1", p->t_lo, p->t_hi);
    for (int i = 0; i < K; i++) {
        double f = K == 1 ? (p->t_lo + p->t_hi) / 2 : p->t_lo + (p->t_hi - p->t_lo) * i / (K - 1);
        int t = (int)lround(f * T);
        out[i] = t < 0 ? 0 : t > T - 1 ? T - 1 : t;
    }
    return K;
}

/* ---- checks ---- */

static int classes_check(const char *const *classes, int n, ddps_err *err) {
    if (n < 0 || (n > 0 && !classes)) return ddps_fail_usage(err, "--classes: %d names but no list", n);
    for (int i = 0; i < n; i++)
        if (!classes[i] || !classes[i][0]) return ddps_fail_usage(err, "--classes: name %d is empty", i + 1);
    return 0;
}

int ddps_score_check(const ddps_score_params *p, ddps_err *err) {
    if (!p) return ddps_fail_usage(err, "score parameters: missing");
    if (p->n_explicit < 0 || p->n_explicit > DDPS_MAX_TIMESTEPS_API)
        return ddps_fail_usage(err, "--timesteps: %d values, expected 1..%d", p->n_explicit, DDPS_MAX_TIMESTEPS_API);
    for (int i = 0; i < p->n_explicit; i++)
        if (p->timesteps[i] < 0) return ddps_fail_usage(err, "--timesteps: %d is negative", p->timesteps[i]);
    if (p->n_explicit == 0 && in_range("score", "--timesteps", p->n_timesteps, err)) return -1;
    if (!(p->t_lo >= 0 && p->t_hi <= 1 && p->t_lo <= p->t_hi))
        return ddps_fail_usage(err, "--t-range %g,%g: expected 0 <= lo <= hi <= 1", p->t_lo, p->t_hi);
    if (in_range("score", "--size", p->size, err) || in_range("score", "--patch", p->patch, err) ||
        in_range("score", "--stride", p->stride, err) ||
        in_range("score", "--patches-per-image", p->patches_per_image, err) ||
        in_range("score", "--dift-t", p->dift_t, err) || in_range("score", "--dift-ensemble", p->dift_ensemble, err) ||
        in_range("score", "--clusters", p->clusters, err) ||
        in_range("score", "--max-per-class", p->max_per_class, err) ||
        in_range("score", "--threads", p->threads, err) || in_range("score", "--batch-images", p->batch_images, err))
        return -1;
    if (!p->low_res && p->patch > p->size)
        return ddps_fail_usage(err, "--patch %d: expected 8..--size (%d)", p->patch, p->size);
    if (classes_check(p->classes, p->n_classes, err)) return -1;
    ddps_precision prec;
    if (p->precision && ddps_precision_parse(p->precision, &prec) != 0)
        return ddps_fail_usage(err, "--precision %s: expected f32, bf16 or f16", p->precision);
    if (p->device && strcmp(p->device, "cpu") != 0 && strcmp(p->device, "cuda") != 0 &&
        strncmp(p->device, "cuda:", 5) != 0)
        return ddps_fail_usage(err, "--device %s: unknown device (expected cpu or cuda)", p->device);
    if (p->shard_n < 0 || (p->shard_n > 0 && (p->shard_k < 0 || p->shard_k >= p->shard_n)))
        return ddps_fail_usage(err, "--shard %d/%d: expected K/N with 0 <= K < N", p->shard_k, p->shard_n);
    if (p->shard_n > 0 && p->mpi) return ddps_fail_usage(err, "--shard: not with mpi (each rank takes its own share)");
    if (p->command && strcmp(p->command, "score") != 0 && strcmp(p->command, "distill") != 0)
        return ddps_fail_usage(err, "command %s: expected score or distill", p->command);
    return 0;
}

const char *ddps_format_ext(const char *format) {
    if (!format || strcmp(format, "png") == 0) return "png";
    if (strcmp(format, "jpg") == 0 || strcmp(format, "jpeg") == 0) return "jpg";
    return NULL;
}

int ddps_select_check(const ddps_select_params *p, const int *ipc, int n_ipc, ddps_err *err) {
    if (!p) return ddps_fail_usage(err, "select parameters: missing");
    if (!ipc || n_ipc < 1) return ddps_fail_usage(err, "--ipc: missing");
    for (int i = 0; i < n_ipc; i++)
        if (in_range("select", "--ipc", ipc[i], err)) return -1;
    if (in_range("select", "--top-clusters", p->top_clusters, err) ||
        in_range("select", "--mosaic-max-ipc", p->mosaic_max_ipc, err) ||
        in_range("select", "--output-size", p->output_size, err) ||
        in_range("select", "--jpeg-quality", p->jpeg_quality, err) || in_range("select", "--threads", p->threads, err))
        return -1;
    if (!ddps_format_ext(p->format)) return ddps_fail_usage(err, "--format %s: must be png or jpg", p->format);
    if (classes_check(p->classes, p->n_classes, err)) return -1;
    if (p->folder_names && strcmp(p->folder_names, "class") != 0 && strcmp(p->folder_names, "index") != 0)
        return ddps_fail_usage(err, "--folder-names %s: expected class or index", p->folder_names);
    if (ddps_select_baseline_kind(p->baseline) < 0)
        return ddps_fail_usage(err, "--baseline %s: expected ddps, random-windows or random-images", p->baseline);
    return 0;
}

int ddps_select_baseline_kind(const char *name) {
    if (!name || strcmp(name, "ddps") == 0) return DDPS_BASELINE_NONE;
    if (strcmp(name, "random-windows") == 0) return DDPS_BASELINE_RANDOM_WINDOWS;
    if (strcmp(name, "random-images") == 0) return DDPS_BASELINE_RANDOM_IMAGES;
    return -1;
}

int ddps_report_check(const ddps_report_params *p, ddps_err *err) {
    if (!p) return ddps_fail_usage(err, "report parameters: missing");
    if (in_range("report", "--ipc", p->ipc, err) || in_range("report", "--thumb", p->thumb, err) ||
        in_range("report", "--threads", p->threads, err))
        return -1;
    return 0;
}
