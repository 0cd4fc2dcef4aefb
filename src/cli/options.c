/* The scoring and output option tables (cli/options.h). */
#include "cli/options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void score_args_init(score_args *a) {
    memset(a, 0, sizeof *a);
    ddps_score_params_init(&a->p);
}

/* Help texts of the scoring options, the defaults printed from p (kept in h). */
static void score_help(const ddps_score_params *p, char (*h)[192]) {
    snprintf(h[0], 192, "label prompt template, {} = class name (\"%s\")", p->prompt);
    snprintf(h[1], 192, "null prompt (\"%s\")", p->null_prompt);
    snprintf(h[2], 192, "count evenly spaced in --t-range, or a list (%d)", p->n_timesteps);
    snprintf(h[3], 192, "timestep range as fractions of T (%g,%g)", p->t_lo, p->t_hi);
    snprintf(h[4], 192, "shorter side images are resized to (%d)", p->size);
    snprintf(h[5], 192, "patch (window) size on the resized image (%d)", p->patch);
    snprintf(h[6], 192, "window stride (%d)", p->stride);
    snprintf(h[7], 192, "candidates kept per image (%d)", p->patches_per_image);
    snprintf(h[8], 192, "DIFT timestep (%d)", p->dift_t);
    snprintf(h[9], 192, "DIFT noise draws averaged (%d)", p->dift_ensemble);
    snprintf(h[10], 192, "k-means clusters per class (%d)", p->clusters);
    snprintf(h[11], 192, "random N images per class (%d = all)", p->max_per_class);
    snprintf(h[12], 192, "seed for noise, subsets and k-means (%llu)", (unsigned long long)p->seed);
    snprintf(h[13], 192, "where the model runs (%s)", p->device);
    snprintf(h[14], 192, "compute precision (%s)", p->precision);
}

int score_args_table(score_args *a, cli_opt *opts) {
    ddps_score_params *p = &a->p;
    char (*h)[192] = a->help;
    score_help(p, h);
    cli_opt t[] = {
        {"--data", CLI_OPT_STR, &a->data_dir, "DIR", "ImageFolder root: DIR/<class>/<image> (required)", 0, 0},
        {"--model", CLI_OPT_STR, &a->model_dir, "MODEL", "SD v1.x/2.x: diffusers folder, single .safetensors file, or org/name in the HF cache (required)", 0, 0},
        {"--config", CLI_OPT_STR, &p->config_dir, "DIR", "configs (diffusers layout) for a single-file --model that is not SD v1.x", 0, 0},
        {"--prompt", CLI_OPT_STR, &p->prompt, "TEXT", h[0], 0, 0},
        {"--null-prompt", CLI_OPT_STR, &p->null_prompt, "TEXT", h[1], 0, 0},
        {"--timesteps", CLI_OPT_STR, &a->timesteps, "K|t1,t2,..", h[2], 0, 0},
        {"--t-range", CLI_OPT_STR, &a->t_range, "LO,HI", h[3], 0, 0},
        {"--size", CLI_OPT_INT, &p->size, "PX", h[4], 0, 0},
        {"--patch", CLI_OPT_INT, &p->patch, "PX", h[5], 0, 0},
        {"--stride", CLI_OPT_INT, &p->stride, "PX", h[6], 0, 0},
        {"--patches-per-image", CLI_OPT_INT, &p->patches_per_image, "K", h[7], 0, 0},
        {"--dift-t", CLI_OPT_INT, &p->dift_t, "T", h[8], 0, 0},
        {"--dift-ensemble", CLI_OPT_INT, &p->dift_ensemble, "E", h[9], 0, 0},
        {"--clusters", CLI_OPT_INT, &p->clusters, "K", h[10], 0, 0},
        {"--low-res", CLI_OPT_FLAG, &p->low_res, NULL, "whole images are the candidates (CIFAR, Tiny-ImageNet)", 0, 0},
        {"--class-names", CLI_OPT_STR, &p->class_names, "FILE", "folder -> class name map (LOC_synset_mapping.txt, TSV)", 0, 0},
        {"--classes", CLI_OPT_STR, &a->classes, "a,b,..", "only these class folders (default: all)", 0, 0},
        {"--max-per-class", CLI_OPT_INT, &p->max_per_class, "N", h[11], 0, 0},
        {"--seed", CLI_OPT_STR, &a->seed, "N", h[12], 0, 0},
        {"--threads", CLI_OPT_INT, &p->threads, "N", "CPU threads (default: all cores)", 0, 0},
        {"--batch-images", CLI_OPT_INT, &p->batch_images, "N", "images scored together when their sizes match (0 = auto: cpu 1, cuda 8)", 0, 0},
        {"--device", CLI_OPT_STR, &p->device, "cpu|cuda", h[13], 0, 0},
        {"--precision", CLI_OPT_STR, &p->precision, "f32|bf16|f16", h[14], 0, 0},
    };
    int n = (int)(sizeof t / sizeof *t);
    memcpy(opts, t, sizeof t);
    cli_library_ranges("score", opts, n);
    return n;
}

/* --timesteps: a count ("5") or an explicit list ("100,500,900"). */
static int parse_timesteps(score_args *a, ddps_error *err) {
    ddps_score_params *p = &a->p;
    if (strchr(a->timesteps, ',')) {
        int n = cli_parse_int_list("--timesteps", a->timesteps, p->timesteps, DDPS_MAX_TIMESTEPS_API, 0, 100000, err); /* < T: at the model */
        if (n < 0) return -1;
        p->n_explicit = n;
        return 0;
    }
    char *end;
    errno = 0;
    long k = strtol(a->timesteps, &end, 10);
    if (!*a->timesteps || *end || errno || k < 1 || k > DDPS_MAX_TIMESTEPS_API)
        return cli_fail_usage(err, "--timesteps %s: expected a count 1..%d or a list t1,t2,...", a->timesteps,
                              DDPS_MAX_TIMESTEPS_API);
    p->n_timesteps = (int)k;
    return 0;
}

/* --t-range LO,HI with 0 <= LO <= HI <= 1. */
static int parse_t_range(score_args *a, ddps_error *err) {
    ddps_score_params *p = &a->p;
    char *end;
    p->t_lo = strtod(a->t_range, &end);
    if (end == a->t_range || *end != ',') return cli_fail_usage(err, "--t-range %s: expected LO,HI", a->t_range);
    const char *h = end + 1;
    p->t_hi = strtod(h, &end);
    if (end == h || *end || !(p->t_lo >= 0 && p->t_hi <= 1 && p->t_lo <= p->t_hi))
        return cli_fail_usage(err, "--t-range %s: expected LO,HI with 0 <= LO <= HI <= 1", a->t_range);
    return 0;
}

/* --seed: a non-negative 64-bit integer. */
static int parse_seed(score_args *a, ddps_error *err) {
    char *end;
    errno = 0;
    unsigned long long s = strtoull(a->seed, &end, 10);
    if (!*a->seed || *end || errno || a->seed[0] == '-')
        return cli_fail_usage(err, "--seed %s: expected a non-negative integer", a->seed);
    a->p.seed = s;
    return 0;
}

int score_args_finish(score_args *a, ddps_error *err) {
    ddps_score_params *p = &a->p;
    if (a->timesteps && parse_timesteps(a, err) != 0) return -1;
    if (a->t_range && parse_t_range(a, err) != 0) return -1;
    if (a->classes) {
        if (cli_split_names("--classes", a->classes, &a->classes_buf, &a->class_list, &p->n_classes, err) != 0)
            return -1;
        p->classes = a->class_list;
    }
    if (a->seed && parse_seed(a, err) != 0) return -1;
    if (!a->data_dir) return cli_fail_usage(err, "--data: required (see --help)");
    if (!a->model_dir) return cli_fail_usage(err, "--model: required (see --help)");
    if (!a->data_dir[0]) return cli_fail_usage(err, "--data: empty (give the dataset folder)");
    if (!a->model_dir[0]) return cli_fail_usage(err, "--model: empty (give a model folder, file or Hugging Face id)");
    return ddps_score_params_check(p, err) == DDPS_OK ? 0 : -1;
}

void score_args_free(score_args *a) {
    free(a->classes_buf);
    free(a->class_list);
    a->classes_buf = NULL;
    a->class_list = NULL;
}

int select_args_table(ddps_select_params *p, cli_opt *opts, char (*h)[192]) {
    snprintf(h[0], 192, "clusters patches are taken from (%d; 0: the best scores alone)", p->top_clusters);
    snprintf(h[1], 192, "2x2 mosaics when ipc <= N (%d; 0 = never)", p->mosaic_max_ipc);
    snprintf(h[2], 192, "side of every output image (%d)", p->output_size);
    snprintf(h[3], 192, "output format (%s)", p->format);
    snprintf(h[4], 192, "JPEG quality (%d)", p->jpeg_quality);
    cli_opt t[] = {
        {"--top-clusters", CLI_OPT_INT, &p->top_clusters, "N", h[0], 0, 0},
        {"--mosaic-max-ipc", CLI_OPT_INT, &p->mosaic_max_ipc, "N", h[1], 0, 0},
        {"--output-size", CLI_OPT_INT, &p->output_size, "PX", h[2], 0, 0},
        {"--format", CLI_OPT_STR, &p->format, "png|jpg", h[3], 0, 0},
        {"--jpeg-quality", CLI_OPT_INT, &p->jpeg_quality, "Q", h[4], 0, 0},
        {"--folder-names", CLI_OPT_STR, &p->folder_names, "class|index", "class folders: class names, or ImageNet-1K index 00000.. (RDED style)", 0, 0},
    };
    memcpy(opts, t, sizeof t);
    cli_library_ranges("select", opts, (int)(sizeof t / sizeof *t));
    return (int)(sizeof t / sizeof *t);
}

int report_args_table(ddps_report_params *p, const char **store, const char **out, cli_opt *opts, char (*h)[192]) {
    snprintf(h[0], 192, "distilled set shown (default %d)", p->ipc);
    snprintf(h[1], 192, "longest side of image thumbnails (default %d)", p->thumb);
    cli_opt t[] = {
        {"--store", CLI_OPT_STR, store, "FILE", "store written by ddps score (required)", 0, 0},
        {"--out", CLI_OPT_STR, out, "DIR", "report folder (required)", 0, 0},
        {"--data", CLI_OPT_STR, &p->data_root, "ROOT", "where the source images are (default: as scored)", 0, 0},
        {"--data-root", CLI_OPT_STR, &p->data_root, "ROOT", NULL, 0, 0}, /* alias of --data, as select had it */
        {"--ipc", CLI_OPT_INT, &p->ipc, "N", h[0], 0, 0},
        {"--thumb", CLI_OPT_INT, &p->thumb, "PX", h[1], 0, 0},
        {"--threads", CLI_OPT_INT, &p->threads, "N", "image writing threads (0 = all cores)", 0, 0},
    };
    memcpy(opts, t, sizeof t);
    cli_library_ranges("report", opts, (int)(sizeof t / sizeof *t));
    return (int)(sizeof t / sizeof *t);
}

void cli_library_ranges(const char *command, cli_opt *opts, int n) {
    for (int i = 0; i < n; i++) {
        long lo, hi;
        if (opts[i].type == CLI_OPT_INT && ddps_param_range(command, opts[i].name, &lo, &hi) == 0) {
            opts[i].lo = (double)lo;
            opts[i].hi = (double)hi;
        }
    }
}

int cli_parse_ipc_list(const char *command, const char *s, int *out, int max, ddps_error *err) {
    long lo = 1, hi = 1;
    ddps_param_range(command, "--ipc", &lo, &hi);
    return cli_parse_int_list("--ipc", s, out, max, (int)lo, (int)hi, err);
}
