#include "cli/options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fs.h"

int score_args_table(score_args *a, ddps_opt *opts) {
    ddps_score_opts *o = &a->o;
    ddps_opt t[] = {
        {"--data", OPT_STR, &o->data_dir, "DIR", "ImageFolder root: DIR/<class>/<image> (required)", 0, 0},
        {"--model", OPT_STR, &o->model_dir, "MODEL", "SD v1.x/2.x: diffusers folder, single .safetensors file, or org/name in the HF cache (required)", 0, 0},
        {"--config", OPT_STR, &o->config_dir, "DIR", "configs (diffusers layout) for a single-file --model that is not SD v1.x", 0, 0},
        {"--prompt", OPT_STR, &o->prompt, "TEXT", "label prompt template, {} = class name (\"An image of {}.\")", 0, 0},
        {"--null-prompt", OPT_STR, &o->null_prompt, "TEXT", "null prompt (\"\")", 0, 0},
        {"--timesteps", OPT_STR, &a->timesteps, "K|t1,t2,..", "count evenly spaced in --t-range, or a list (5)", 0, 0},
        {"--t-range", OPT_STR, &a->t_range, "LO,HI", "timestep range as fractions of T (0.1,0.7)", 0, 0},
        {"--size", OPT_INT, &o->size, "PX", "shorter side images are resized to (256)", 16, 4096},
        {"--patch", OPT_INT, &o->patch, "PX", "patch (window) size on the resized image (192)", 8, 4096},
        {"--stride", OPT_INT, &o->stride, "PX", "window stride (16)", 1, 4096},
        {"--patches-per-image", OPT_INT, &o->patches_per_image, "K", "candidates kept per image (1)", 1, 64},
        {"--dift-t", OPT_INT, &o->dift_t, "T", "DIFT timestep (160)", 0, 100000},
        {"--dift-ensemble", OPT_INT, &o->dift_ensemble, "E", "DIFT noise draws averaged (4)", 1, 64},
        {"--clusters", OPT_INT, &o->clusters, "K", "k-means clusters per class (32)", 1, 100000},
        {"--low-res", OPT_FLAG, &o->low_res, NULL, "whole images are the candidates (CIFAR, Tiny-ImageNet)", 0, 0},
        {"--class-names", OPT_STR, &o->class_names, "FILE", "folder -> class name map (LOC_synset_mapping.txt, TSV)", 0, 0},
        {"--classes", OPT_STR, &a->classes, "a,b,..", "only these class folders (default: all)", 0, 0},
        {"--max-per-class", OPT_INT, &o->max_per_class, "N", "random N images per class (0 = all)", 0, 1 << 30},
        {"--seed", OPT_STR, &a->seed, "N", "seed for noise, subsets and k-means (0)", 0, 0},
        {"--threads", OPT_INT, &o->threads, "N", "CPU threads (default: all cores)", 0, 4096},
        {"--batch-images", OPT_INT, &o->batch_images, "N", "images scored together when their sizes match (cpu 1, cuda 8)", 1, 256},
        {"--device", OPT_STR, &o->device, "cpu|cuda", "where the model runs (cpu)", 0, 0},
        {"--precision", OPT_STR, &o->precision, "f32|bf16|f16", "compute precision (f32)", 0, 0},
    };
    int n = (int)(sizeof t / sizeof *t);
    memcpy(opts, t, sizeof t);
    return n;
}

int score_args_finish(score_args *a, ddps_err *err) {
    ddps_score_opts *o = &a->o;
    if (a->timesteps) {
        if (strchr(a->timesteps, ',')) {
            int n = ddps_parse_int_list("--timesteps", a->timesteps, o->timesteps, DDPS_MAX_TIMESTEPS, 0, 100000, err);
            if (n < 0) return -1;
            o->n_explicit = n;
        } else {
            char *end;
            errno = 0;
            long k = strtol(a->timesteps, &end, 10);
            if (!*a->timesteps || *end || errno || k < 1 || k > DDPS_MAX_TIMESTEPS)
                return ddps_fail(err, "--timesteps %s: expected a count 1..%d or a list t1,t2,...", a->timesteps,
                                 DDPS_MAX_TIMESTEPS);
            o->n_timesteps = (int)k;
        }
    }
    if (a->t_range) {
        char *end;
        o->t_lo = strtod(a->t_range, &end);
        if (end == a->t_range || *end != ',') return ddps_fail(err, "--t-range %s: expected LO,HI", a->t_range);
        const char *h = end + 1;
        o->t_hi = strtod(h, &end);
        if (end == h || *end || !(o->t_lo >= 0 && o->t_hi <= 1 && o->t_lo <= o->t_hi))
            return ddps_fail(err, "--t-range %s: expected LO,HI with 0 <= LO <= HI <= 1", a->t_range);
    }
    if (a->classes) {
        if (ddps_split_names("--classes", a->classes, &a->classes_buf, &a->class_list, &o->n_classes, err) != 0)
            return -1;
        o->classes = a->class_list;
    }
    if (a->seed) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(a->seed, &end, 10);
        if (!*a->seed || *end || errno || a->seed[0] == '-')
            return ddps_fail(err, "--seed %s: expected a non-negative integer", a->seed);
        o->seed = s;
    }
    if (!o->data_dir) return ddps_fail(err, "--data: required (see --help)");
    if (!o->model_dir) return ddps_fail(err, "--model: required (see --help)");
    return 0;
}

int select_args_table(ddps_select_opts *o, ddps_opt *opts) {
    ddps_opt t[] = {
        {"--top-clusters", OPT_INT, &o->top_clusters, "N", "clusters patches are taken from (10)", 1, 65536},
        {"--mosaic-max-ipc", OPT_INT, &o->mosaic_max_ipc, "N", "2x2 mosaics when ipc <= N (10; 0 = never)", 0, 1000000},
        {"--output-size", OPT_INT, &o->output_size, "PX", "side of every output image (224)", 2, 8192},
        {"--format", OPT_STR, &o->format, "png|jpg", "output format (png)", 0, 0},
        {"--jpeg-quality", OPT_INT, &o->jpeg_quality, "Q", "JPEG quality (95)", 1, 100},
        {"--folder-names", OPT_STR, &o->folder_names, "class|index", "class folders: class names, or ImageNet-1K index 00000.. (RDED style)", 0, 0},
    };
    memcpy(opts, t, sizeof t);
    return (int)(sizeof t / sizeof *t);
}

int select_args_check(const ddps_select_opts *o, ddps_err *err) {
    if (o->folder_names && strcmp(o->folder_names, "class") != 0 && strcmp(o->folder_names, "index") != 0)
        return ddps_fail(err, "--folder-names %s: expected class or index", o->folder_names);
    return 0;
}

void score_args_free(score_args *a) {
    free(a->classes_buf);
    free(a->class_list);
    a->classes_buf = NULL;
    a->class_list = NULL;
}
