/* `ddps bench text|vae|unet|load` and the dispatch of every bench: speed of
 * the engine on full-size SD v1.5 (or 2.1) shapes with random weights built
 * in memory (no files needed). Reports figures a person can compare run to
 * run; --json adds one JSON object as the last line. Benchmarks are
 * programs, not tests. */
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "models/sd.h"
#include "tensor/profile.h"
#include "tools/demo.h"
#include "tools/tools.h"
#include "train/bench.h"
#include "util/cpu.h"
#include "util/fs.h"
#include "util/progress.h"
#include "util/rng.h"

/* qsort order of doubles, ascending. */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    int batch;
    double ms_per_item, gflop_per_item, gflop_per_s;
} bench_row;

/* One timed run of a component on the context. */
typedef void (*run_fn)(ddps_backend *be, void *ctx);

/* Runs fn iters times after one warm-up (which creates primitives and sizes
 * the arena); returns the median time and the FLOPs of one run. */
static double time_median(ddps_backend *be, run_fn fn, void *ctx, int iters, double *flops) {
    fn(be, ctx);
    be->ops->sync(be);
    double *t = ddps_malloc((size_t)iters * sizeof(double));
    for (int i = 0; i < iters; i++) {
        be->flops = 0;
        double t0 = ddps_seconds();
        fn(be, ctx);
        be->ops->sync(be);
        t[i] = ddps_seconds() - t0;
    }
    *flops = be->flops;
    qsort(t, (size_t)iters, sizeof *t, cmp_double);
    double med = t[iters / 2];
    free(t);
    return med;
}

/* Inputs and output of one component run (what fn reads). */
typedef struct {
    const ddps_sd *sd;
    ddps_tensor x, ctx, out;
    float *ts;
    int32_t *ids;
} bench_ctx;

/* UNet: x [n,h,w,4], ts[n], ctx [n,1,77,C] -> out [n,h,w,4]. */
static void run_unet(ddps_backend *be, void *p) {
    bench_ctx *c = p;
    size_t m = ddps_mark(be);
    ddps_unet_forward(be, c->sd->unet, &c->x, c->ts, &c->ctx, &c->out, NULL);
    ddps_release(be, m);
}

/* VAE encoder: x [n,H,W,3] -> out [n,H/8,W/8,4] (the mean). */
static void run_vae(ddps_backend *be, void *p) {
    bench_ctx *c = p;
    ddps_vae_encode(be, c->sd->vae, &c->x, &c->out, NULL);
}

/* Text encoder: ids [n*77] -> out [n,1,77,hidden]. */
static void run_text(ddps_backend *be, void *p) {
    bench_ctx *c = p;
    ddps_clip_forward(be, c->sd->text, c->ids, &c->out);
}

/* Writes standard normal values (stream seed) into t. */
static void fill_random(ddps_backend *be, ddps_tensor *t, uint64_t seed) {
    float *h = ddps_malloc(ddps_numel(t) * sizeof(float));
    ddps_rng r;
    ddps_rng_seed(&r, seed);
    ddps_rng_fill_normal(&r, h, ddps_numel(t));
    be->ops->write(be, t, h);
    free(h);
}

/* Everything one component bench needs, from the parameters. */
typedef struct {
    const char *what;
    unsigned part;
    const char *device;
    int threads, size, iters, json, profile;
    const int *batches;
    int nb;
    int version; /* shapes: 15 (SD v1.5) or 21 (SD 2.1 768-v) */
} bench_opts;

/* Makes the inputs of a batch-n run of part on be (inside the caller's
 * arena mark) and returns the function to time. */
static run_fn bench_inputs(ddps_backend *be, const ddps_sd *sd, unsigned part, int n, int size, bench_ctx *c) {
    if (part == DDPS_PART_UNET) {
        int h = size / 8;
        c->x = ddps_new(be, n, h, h, 4);
        c->ctx = ddps_new(be, n, 1, 77, sd->unet_cfg.cross_attention_dim);
        c->out = ddps_new(be, n, h, h, 4);
        fill_random(be, &c->x, 1);
        fill_random(be, &c->ctx, 2);
        c->ts = ddps_malloc((size_t)n * sizeof(float));
        for (int i = 0; i < n; i++) c->ts[i] = (float)(100 + (i * 150) % 700);
        return run_unet;
    }
    if (part == DDPS_PART_VAE) {
        c->x = ddps_new(be, n, size, size, 3);
        c->out = ddps_new(be, n, size / 8, size / 8, 4);
        fill_random(be, &c->x, 3);
        return run_vae;
    }
    c->ids = ddps_malloc((size_t)n * 77 * sizeof(int32_t));
    for (int i = 0; i < n * 77; i++) c->ids[i] = i % 77 < 8 ? 320 + (i * 37) % 40000 : 49407;
    c->out = ddps_new(be, n, 1, 77, sd->clip_cfg.hidden_size);
    return run_text;
}

/* --profile: one more run with every op kind timed, its table as report lines. */
static void bench_profile_once(ddps_backend *be, run_fn fn, bench_ctx *c, int n, const ddps_hooks *h) {
    ddps_profile_reset(be);
    fn(be, c);
    ddps_tools_out(h, "  profile of one batch-%d run:", n);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f) {
        ddps_profile_report(be, f);
        fclose(f);
        ddps_tools_out_text(h, text);
    }
    free(text);
    ddps_profile_disable(be);
}

/* The --json object of a component bench: first batch's figures and all batches. */
static json_t *bench_json(const bench_opts *bo, ddps_precision prec, const bench_row *rows, double rss) {
    json_t *o = json_object(), *arr = json_array();
    json_object_set_new(o, "bench", json_string(bo->what));
    json_object_set_new(o, "device", json_string(bo->device));
    json_object_set_new(o, "precision", json_string(ddps_precision_name(prec)));
    json_object_set_new(o, "shapes", json_string(bo->version == 21 ? "sd21" : "sd15"));
    json_object_set_new(o, "size", json_integer(bo->size));
    /* the count used: --threads, or all cores (the CPU backend sets OpenMP's count when it is made) */
    json_object_set_new(o, "threads", json_integer(bo->threads > 0 ? bo->threads : omp_get_max_threads()));
    json_object_set_new(o, "batch", json_integer(rows[0].batch));
    json_object_set_new(o, bo->part == DDPS_PART_UNET ? "ms_per_latent" : "ms_per_item", json_real(rows[0].ms_per_item));
    json_object_set_new(o, "gflop_per_s", json_real(rows[0].gflop_per_s));
    json_object_set_new(o, "gflop_per_item", json_real(rows[0].gflop_per_item));
    json_object_set_new(o, "peak_rss_mb", json_real(rss));
    for (int b = 0; b < bo->nb; b++)
        json_array_append_new(arr, json_pack("{s:i,s:f,s:f}", "batch", rows[b].batch, "ms_per_item",
                                             rows[b].ms_per_item, "gflop_per_s", rows[b].gflop_per_s));
    json_object_set_new(o, "batches", arr);
    return o;
}

/* Times one component (text, VAE or UNet with SD v1.5 or 2.1 shapes and random
 * weights) at every batch size in bo, in precision prec; reports a line per
 * batch, fills rows[0..bo->nb) and, when js is not NULL, *js with the --json
 * object (the caller prints it, last).
 * Returns 0, or -1 when the backend or the model cannot be made or an op
 * failed (then no figures are reported). */
static int bench_component(const bench_opts *bo, ddps_precision prec, bench_row *rows, json_t **js,
                           const ddps_hooks *h, ddps_err *err) {
    unsigned part = bo->part;
    ddps_backend *be = ddps_backend_new(bo->device, prec, bo->threads, err);
    if (!be) return ddps_fail_prefix(err, "bench");
    double t0 = ddps_seconds();
    ddps_sd *sd;
    if (ddps_sd_random(be, bo->version, part, 1234, &sd, err) != 0) {
        ddps_backend_free(be);
        return ddps_fail_prefix(err, "bench");
    }
    double build_s = ddps_seconds() - t0;
    ddps_tools_out(h, "ddps bench %s: %s shapes, random weights (built in %.1f s), device %s, precision %s", bo->what,
                   bo->version == 21 ? "SD 2.1" : "SD v1.5", build_s, bo->device, ddps_precision_name(prec));
    const char *unit = part == DDPS_PART_UNET ? "latent" : part == DDPS_PART_VAE ? "image" : "prompt";
    int rc = 0;
    for (int b = 0; rc == 0 && b < bo->nb; b++) {
        int n = bo->batches[b];
        bench_ctx c = {sd, {0}, {0}, {0}, NULL, NULL};
        size_t mark = ddps_mark(be);
        run_fn fn = bench_inputs(be, sd, part, n, bo->size, &c);
        if (bo->profile) ddps_profile_enable(be);
        double flops, t = time_median(be, fn, &c, bo->iters, &flops);
        if (bo->profile) bench_profile_once(be, fn, &c, n, h);
        rc = ddps_backend_error(be, err); /* a failed op: no figures */
        if (rc == 0) {
            rows[b] = (bench_row){n, 1e3 * t / n, flops / n / 1e9, flops / t / 1e9};
            ddps_tools_out(h, "  batch %3d: %9.1f ms per %s  %7.1f GFLOP per %s  %7.1f GFLOP/s", n,
                           rows[b].ms_per_item, unit, rows[b].gflop_per_item, unit, rows[b].gflop_per_s);
        }
        free(c.ts);
        free(c.ids);
        ddps_release(be, mark);
    }
    if (rc == 0) {
        double rss = ddps_tools_peak_rss_mb();
        ddps_tools_out(h, "  peak RSS %.0f MB", rss);
        if (js) *js = bench_json(bo, prec, rows, rss);
    }
    ddps_release(be, 0);
    ddps_sd_free(be, sd);
    ddps_backend_free(be);
    return rc == 0 ? 0 : ddps_fail_prefix(err, "bench");
}

/* Writes a full-size SD v1.5 with random f16 weights into dir from a child
 * process (so that the writer's memory does not count in the parent's peak). */
static int write_model_in_child(const char *dir, ddps_err *err) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        ddps_unet_config u;
        ddps_vae_config v;
        ddps_clip_config c;
        ddps_sd15_unet_config(&u);
        ddps_sd15_vae_config(&v);
        ddps_sd15_clip_config(&c);
        const char *words[1] = {"dog"};
        ddps_err e = {{0}};
        _exit(ddps_sd_write_random(dir, &u, &v, &c, words, 1, 1, ST_F16, &e) == 0 ? 0 : 1);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return ddps_fail(err, "bench load: could not write the model");
    return 0;
}

/* Parameters of the loaded components (VAE decoder excluded: declared, never loaded). */
static double loaded_params(const ddps_sd *sd) {
    double params = 0;
    ddps_wsrc ws;
    ddps_err err = {{0}};
    const void *cfgs[3] = {&sd->unet_cfg, &sd->vae_cfg, &sd->clip_cfg};
    const char *names[3] = {"unet", "vae", "text_encoder"};
    for (int i = 0; i < 3; i++) {
        if (ddps_sd_declare(names[i], cfgs[i], &ws, &err) != 0) continue;
        for (int k = 0; k < ws.n; k++) {
            double n = 1;
            for (int d = 0; d < ws.list[k].ndim; d++) n *= (double)ws.list[k].shape[d];
            if (!(i == 1 && (strncmp(ws.list[k].name, "decoder.", 8) == 0 ||
                             strncmp(ws.list[k].name, "post_quant", 10) == 0)))
                params += n;
        }
        ddps_ws_free(&ws);
    }
    return params;
}

/* `bench load`: peak memory of loading a model folder against the size of its
 * f32 weights. Without a model, a full-size SD v1.5 with random f16 weights
 * is written to a temporary folder first and removed at the end. */
static int bench_load(const ddps_bench_params *p, ddps_precision prec, const ddps_hooks *h, ddps_err *err) {
    char tmp[] = "/tmp/ddps-load-XXXXXX";
    const char *model = p->model;
    if (!model) {
        if (!mkdtemp(tmp)) return ddps_fail_kind(err, DDPS_KIND_RESOURCE, "bench load: cannot create a temporary folder");
        ddps_tools_out(h, "writing a full-size SD v1.5 with random f16 weights to %s ...", tmp);
        if (write_model_in_child(tmp, err) != 0) return -1;
        model = tmp;
    }
    ddps_backend *be = ddps_backend_new(p->device, prec, p->threads, err);
    ddps_sd *sd = NULL;
    double rss0 = ddps_tools_peak_rss_mb(), t0 = ddps_seconds();
    int rc = be ? ddps_sd_load(model, be, DDPS_PART_ALL, &sd, err) : -1;
    double t = ddps_seconds() - t0, rss = ddps_tools_peak_rss_mb();
    if (rc == 0) {
        double params = loaded_params(sd), f32_mb = params * 4 / (1024.0 * 1024.0);
        ddps_tools_out(h, "ddps bench load: %s in %.1f s, precision %s", model, t, ddps_precision_name(prec));
        ddps_tools_out(h, "  loaded weights: %.0f M parameters = %.0f MB in f32; peak RSS %.0f MB (%.0f MB before loading): "
                       "%+.0f MB over the f32 weights",
                       params / 1e6, f32_mb, rss, rss0, rss - rss0 - f32_mb);
        if (p->json)
            ddps_tools_out(h, "{\"bench\":\"load\",\"seconds\":%.2f,\"f32_weights_mb\":%.1f,\"peak_rss_mb\":%.1f,"
                           "\"rss_before_mb\":%.1f,\"over_f32_mb\":%.1f}",
                           t, f32_mb, rss, rss0, rss - rss0 - f32_mb);
    } else {
        ddps_fail_prefix(err, "bench load");
    }
    ddps_sd_free(be, sd);
    ddps_backend_free(be);
    if (model == tmp) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0) ddps_warn("bench load: could not remove %s", tmp);
    }
    return rc;
}

/* The compare step of `bench unet` on the CPU without --precision: the UNet
 * timed again in bf16, and the faster precision named (which wins depends on
 * the CPU, see BENCHMARKS.md, so the figure must come from the machine). */
static void bench_unet_compare(const bench_opts *o, const bench_row *r32, json_t *js, const ddps_hooks *h) {
    bench_row r16[16];
    ddps_err err = {{0}};
    ddps_tools_out(h, "%s", "");
    json_t *j16 = NULL;
    int rb = bench_component(o, DDPS_PREC_BF16, r16, js ? &j16 : NULL, h, &err);
    char cpu[256];
    ddps_cpu_describe(cpu, sizeof cpu);
    if (rb == 0) {
        double ratio = r32[0].ms_per_item / r16[0].ms_per_item;
        ddps_tools_out(h, "%s", "");
        ddps_tools_out(h, "on this CPU (%s), batch %d: bf16 %.0f ms vs f32 %.0f ms per latent: %s is faster (%.2fx); "
                       "use --precision %s",
                       cpu, r32[0].batch, r16[0].ms_per_item, r32[0].ms_per_item, ratio > 1 ? "bf16" : "f32",
                       ratio > 1 ? ratio : 1 / ratio, ratio > 1 ? "bf16" : "f32");
        if (js) { /* the one JSON object: f32's figures, bf16's as "compare" */
            json_object_set_new(j16, "faster", json_string(ratio > 1 ? "bf16" : "f32"));
            json_object_set_new(js, "compare", j16);
        }
    } else {
        ddps_warn("%s", err.msg);
        ddps_tools_out(h, "on this CPU (%s) only f32 is available", cpu);
    }
}

/* text, vae, unet: checks the shapes, size and precision, then times. */
static int bench_components(const ddps_bench_params *p, unsigned part, const ddps_hooks *h, ddps_err *err) {
    static const int default_batches[2] = {1, 8};
    const char *shapes = p->shapes ? p->shapes : "sd15";
    int version = strcmp(shapes, "sd15") == 0 ? 15 : strcmp(shapes, "sd21") == 0 ? 21 : 0;
    if (!version) return ddps_fail_usage(err, "bench: --shapes %s: expected sd15 or sd21", shapes);
    if (p->size % 8) return ddps_fail_usage(err, "bench: --size %d: must be a multiple of 8", p->size);
    const char *precision = p->precision ? p->precision : "f32";
    ddps_precision prec;
    if (ddps_precision_parse(precision, &prec) != 0)
        return ddps_fail_usage(err, "bench: --precision %s: expected f32, bf16 or f16", precision);
    if (p->n_batches < 0 || p->n_batches > 16) return ddps_fail_usage(err, "bench: %d batch sizes, expected 0..16", p->n_batches);
    for (int b = 0; b < p->n_batches; b++)
        if (p->batches[b] < 1 || p->batches[b] > 4096)
            return ddps_fail_usage(err, "bench: --batch %d: expected 1..4096", p->batches[b]);
    int nb = p->n_batches ? p->n_batches : part == DDPS_PART_UNET ? 2 : 1;
    bench_opts o = {p->what, part, p->device, p->threads, p->size, p->iters, p->json, p->profile,
                    p->n_batches ? p->batches : default_batches, nb, version};
    bench_row r32[16];
    json_t *js = NULL;
    if (bench_component(&o, prec, r32, p->json ? &js : NULL, h, err) != 0) return -1;
    if (part == DDPS_PART_UNET && !p->precision && strcmp(p->device, "cpu") == 0) bench_unet_compare(&o, r32, js, h);
    if (js) { /* exactly one JSON object, the last report line */
        char *s = json_dumps(js, JSON_COMPACT | JSON_PRESERVE_ORDER);
        ddps_tools_out(h, "%s", s);
        free(s);
        json_decref(js);
    }
    return 0;
}

int ddps_tools_bench(const ddps_bench_params *p, const ddps_hooks *h, ddps_err *err) {
    const char *what = p->what ? p->what : "";
    if (strcmp(what, "train") == 0) {
        tr_bench_opts o = {p->model, p->device, p->precision, p->size, p->n_batches > 0 ? p->batches[0] : 0, 0,
                           p->iters, 0, p->threads, p->json};
        return ddps_tr_bench(&o, h, err);
    }
    if (p->iters < 1) return ddps_fail_usage(err, "bench: --iters %d: expected 1..1000", p->iters);
    if (!p->device) return ddps_fail_usage(err, "bench: --device: required");
    const char *precision = p->precision ? p->precision : "f32";
    if (strcmp(what, "score") == 0) {
        int batch = p->n_batches > 0 ? p->batches[0] : 1;
        if (batch < 1 || batch > 64) return ddps_fail_usage(err, "bench: --batch %d: expected 1..64", batch);
        return ddps_tools_bench_score(p, precision, batch, h, err);
    }
    if (strcmp(what, "precision") == 0) return ddps_tools_bench_precision(p, precision, h, err);
    if (strcmp(what, "load") == 0) {
        ddps_precision lp;
        if (ddps_precision_parse(precision, &lp) != 0)
            return ddps_fail_usage(err, "bench: --precision %s: expected f32, bf16 or f16", precision);
        return bench_load(p, lp, h, err);
    }
    unsigned part = strcmp(what, "unet") == 0 ? DDPS_PART_UNET
                    : strcmp(what, "vae") == 0 ? DDPS_PART_VAE
                    : strcmp(what, "text") == 0 ? DDPS_PART_TEXT
                                                : 0;
    if (!part) return ddps_fail_usage(err, "bench: %s: unknown benchmark (text, vae, unet, score, precision, load, train)", what);
    return bench_components(p, part, h, err);
}
