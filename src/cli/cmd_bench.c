/* `ddps bench text|vae|unet|score`: speed of the engine on full-size SD v1.5
 * shapes with random weights built in memory (no files needed). Prints
 * figures a person can compare run to run; --json adds one JSON object as
 * the last line. Benchmarks are programs, not tests. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "models/sd.h"
#include "pipeline/score.h"
#include "tensor/profile.h"
#include "util/cpu.h"
#include "util/fs.h"
#include "util/progress.h"
#include "util/rng.h"

/* Peak resident set (VmHWM) in MB. */
static double peak_rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    double kb = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) kb = atof(line + 6);
    fclose(f);
    return kb / 1024.0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    int batch;
    double ms_per_item, gflop_per_item, gflop_per_s;
} bench_row;

/* Runs fn iters times after one warm-up (which creates primitives and sizes
 * the arena); returns the median time and the FLOPs of one run. */
typedef void (*run_fn)(ddps_backend *be, void *ctx);

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

typedef struct {
    const ddps_sd *sd;
    ddps_tensor x, ctx, out;
    float *ts;
    int32_t *ids;
} bench_ctx;

static void run_unet(ddps_backend *be, void *p) {
    bench_ctx *c = p;
    size_t m = ddps_mark(be);
    ddps_unet_forward(be, c->sd->unet, &c->x, c->ts, &c->ctx, &c->out, NULL);
    ddps_release(be, m);
}

static void run_vae(ddps_backend *be, void *p) {
    bench_ctx *c = p;
    ddps_vae_encode(be, c->sd->vae, &c->x, &c->out, NULL);
}

static void run_text(ddps_backend *be, void *p) {
    bench_ctx *c = p;
    ddps_clip_forward(be, c->sd->text, c->ids, &c->out);
}

static void fill_random(ddps_backend *be, ddps_tensor *t, uint64_t seed) {
    float *h = ddps_malloc(ddps_numel(t) * sizeof(float));
    ddps_rng r;
    ddps_rng_seed(&r, seed);
    ddps_rng_fill_normal(&r, h, ddps_numel(t));
    be->ops->write(be, t, h);
    free(h);
}

/* `bench load`: peak memory of loading a model folder against the size of its
 * f32 weights. Without --model, a full-size SD v1.5 with random f16 weights
 * is written to a temporary folder first (by a child process, so the
 * writer's memory does not count). */
static int bench_load(const char *model, const char *device, ddps_precision prec, int threads, int json) {
    ddps_err err = {{0}};
    char tmp[] = "/tmp/ddps-load-XXXXXX";
    int made = 0;
    if (!model) {
        if (!mkdtemp(tmp)) {
            fprintf(stderr, "ddps bench load: cannot create a temporary folder\n");
            return 1;
        }
        printf("writing a full-size SD v1.5 with random f16 weights to %s ...\n", tmp);
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
            _exit(ddps_sd_write_random(tmp, &u, &v, &c, words, 1, 1, ST_F16, &err) == 0 ? 0 : 1);
        }
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "ddps bench load: could not write the model\n");
            return 1;
        }
        model = tmp;
        made = 1;
    }
    ddps_backend *be = ddps_backend_new(device, prec, threads, &err);
    ddps_sd *sd = NULL;
    double rss0 = peak_rss_mb(), t0 = ddps_seconds();
    int rc = be ? ddps_sd_load(model, be, DDPS_PART_ALL, &sd, &err) : -1;
    double t = ddps_seconds() - t0, rss = peak_rss_mb();
    if (rc == 0) {
        double params = 0;
        ddps_wsrc ws;
        const void *cfgs[3] = {&sd->unet_cfg, &sd->vae_cfg, &sd->clip_cfg};
        const char *names[3] = {"unet", "vae", "text_encoder"};
        for (int i = 0; i < 3; i++) {
            if (ddps_sd_declare(names[i], cfgs[i], &ws, &err) != 0) continue;
            for (int k = 0; k < ws.n; k++) {
                double n = 1;
                for (int d = 0; d < ws.list[k].ndim; d++) n *= (double)ws.list[k].shape[d];
                /* the VAE decoder is declared but never loaded */
                if (!(i == 1 && (strncmp(ws.list[k].name, "decoder.", 8) == 0 ||
                                 strncmp(ws.list[k].name, "post_quant", 10) == 0)))
                    params += n;
            }
            ddps_ws_free(&ws);
        }
        double f32_mb = params * 4 / (1024.0 * 1024.0);
        printf("ddps bench load: %s in %.1f s, precision %s\n", model, t, ddps_precision_name(prec));
        printf("  loaded weights: %.0f M parameters = %.0f MB in f32; peak RSS %.0f MB (%.0f MB before loading): "
               "%+.0f MB over the f32 weights\n",
               params / 1e6, f32_mb, rss, rss0, rss - rss0 - f32_mb);
        if (json)
            printf("{\"bench\":\"load\",\"seconds\":%.2f,\"f32_weights_mb\":%.1f,\"peak_rss_mb\":%.1f,"
                   "\"rss_before_mb\":%.1f,\"over_f32_mb\":%.1f}\n",
                   t, f32_mb, rss, rss0, rss - rss0 - f32_mb);
    } else {
        fprintf(stderr, "ddps bench load: %s\n", err.msg);
    }
    ddps_sd_free(be, sd);
    ddps_backend_free(be);
    if (made) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0) fprintf(stderr, "ddps bench load: could not remove %s\n", tmp);
    }
    return rc == 0 ? 0 : 1;
}

typedef struct {
    const char *what;
    unsigned part;
    const char *device;
    int threads, size, iters, json, profile;
    const int *batches;
    int nb;
    int version; /* shapes: 15 (SD v1.5) or 21 (SD 2.1 768-v) */
} bench_opts;

/* Times one component (text, VAE or UNet with SD v1.5 or 2.1 shapes and random
 * weights) at every batch size in o, in precision prec; prints a line per
 * batch (and the JSON object with --json) and fills rows[0..o->nb).
 * Returns 0, or 1 when the backend or the model cannot be made. */
static int bench_component(const bench_opts *bo, ddps_precision prec, bench_row *rows) {
    const char *what = bo->what, *device = bo->device;
    unsigned part = bo->part;
    int threads = bo->threads, size = bo->size, iters = bo->iters, json = bo->json, profile = bo->profile, nb = bo->nb;
    const int *bl = bo->batches;
    ddps_err err = {{0}};
    ddps_backend *be = ddps_backend_new(device, prec, threads, &err);
    if (!be) {
        fprintf(stderr, "ddps bench: %s\n", err.msg);
        return 1;
    }
    double t0 = ddps_seconds();
    ddps_sd *sd;
    if (ddps_sd_random(be, bo->version, part, 1234, &sd, &err) != 0) {
        fprintf(stderr, "ddps bench: %s\n", err.msg);
        ddps_backend_free(be);
        return 1;
    }
    double build_s = ddps_seconds() - t0;
    printf("ddps bench %s: %s shapes, random weights (built in %.1f s), device %s, precision %s\n", what,
           bo->version == 21 ? "SD 2.1" : "SD v1.5", build_s, device, ddps_precision_name(prec));
    for (int b = 0; b < nb; b++) {
        int n = bl[b];
        bench_ctx c = {sd, {0}, {0}, {0}, NULL, NULL};
        run_fn fn;
        size_t mark = ddps_mark(be);
        if (part == DDPS_PART_UNET) {
            int h = size / 8;
            c.x = ddps_new(be, n, h, h, 4);
            c.ctx = ddps_new(be, n, 1, 77, sd->unet_cfg.cross_attention_dim);
            c.out = ddps_new(be, n, h, h, 4);
            fill_random(be, &c.x, 1);
            fill_random(be, &c.ctx, 2);
            c.ts = ddps_malloc((size_t)n * sizeof(float));
            for (int i = 0; i < n; i++) c.ts[i] = (float)(100 + (i * 150) % 700);
            fn = run_unet;
        } else if (part == DDPS_PART_VAE) {
            c.x = ddps_new(be, n, size, size, 3);
            c.out = ddps_new(be, n, size / 8, size / 8, 4);
            fill_random(be, &c.x, 3);
            fn = run_vae;
        } else {
            c.ids = ddps_malloc((size_t)n * 77 * sizeof(int32_t));
            for (int i = 0; i < n * 77; i++) c.ids[i] = i % 77 < 8 ? 320 + (i * 37) % 40000 : 49407;
            c.out = ddps_new(be, n, 1, 77, sd->clip_cfg.hidden_size);
            fn = run_text;
        }
        if (profile) ddps_profile_enable(be);
        double flops, t = time_median(be, fn, &c, iters, &flops);
        if (profile) {
            ddps_profile_reset(be);
            fn(be, &c);
            printf("  profile of one batch-%d run:\n", n);
            ddps_profile_report(be, stdout);
            ddps_profile_disable(be);
        }
        rows[b] = (bench_row){n, 1e3 * t / n, flops / n / 1e9, flops / t / 1e9};
        printf("  batch %3d: %9.1f ms per %s  %7.1f GFLOP per %s  %7.1f GFLOP/s\n", n, rows[b].ms_per_item,
               part == DDPS_PART_UNET ? "latent" : part == DDPS_PART_VAE ? "image" : "prompt", rows[b].gflop_per_item,
               part == DDPS_PART_UNET ? "latent" : part == DDPS_PART_VAE ? "image" : "prompt", rows[b].gflop_per_s);
        free(c.ts);
        free(c.ids);
        ddps_release(be, mark);
    }
    double rss = peak_rss_mb();
    printf("  peak RSS %.0f MB\n", rss);
    if (json) {
        json_t *o = json_object(), *arr = json_array();
        json_object_set_new(o, "bench", json_string(what));
        json_object_set_new(o, "device", json_string(device));
        json_object_set_new(o, "precision", json_string(ddps_precision_name(prec)));
        json_object_set_new(o, "shapes", json_string(bo->version == 21 ? "sd21" : "sd15"));
        json_object_set_new(o, "size", json_integer(size));
        json_object_set_new(o, "threads", json_integer(threads));
        json_object_set_new(o, "batch", json_integer(rows[0].batch));
        json_object_set_new(o, part == DDPS_PART_UNET ? "ms_per_latent" : "ms_per_item", json_real(rows[0].ms_per_item));
        json_object_set_new(o, "gflop_per_s", json_real(rows[0].gflop_per_s));
        json_object_set_new(o, "gflop_per_item", json_real(rows[0].gflop_per_item));
        json_object_set_new(o, "peak_rss_mb", json_real(rss));
        for (int b = 0; b < nb; b++)
            json_array_append_new(arr, json_pack("{s:i,s:f,s:f}", "batch", rows[b].batch, "ms_per_item",
                                                 rows[b].ms_per_item, "gflop_per_s", rows[b].gflop_per_s));
        json_object_set_new(o, "batches", arr);
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("%s\n", s);
        free(s);
        json_decref(o);
    }
    ddps_release(be, 0);
    ddps_sd_free(be, sd);
    ddps_backend_free(be);
    return 0;
}

static const char *USAGE =
    "usage: ddps bench text|vae|unet|score [options]\n\n"
    "Full-size Stable Diffusion v1.5 components with random weights (nothing to download);\n"
    "--shapes sd21: SD 2.1's (cross-attention 1024, 23 text layers of width 1024, head width 64).\n"
    "  text:  CLIP text encoder, 77 tokens (13.3 GFLOP per prompt)\n"
    "  vae:   VAE encoder at --size (272.7 GFLOP at 256x256)\n"
    "  unet:  UNet at --size/8 latents with a 77-token context (180.1 GFLOP per 32x32 latent)\n"
    "  score: one image through Stage I and II, split into decode, VAE, UNet, DIFT, clustering\n"
    "  precision: Stage I window rankings in f32 vs --precision (bf16) on --data images (Spearman)\n"
    "  load:  peak memory of loading --model (default: a full-size random f16 SD v1.5 written to /tmp)";

int cmd_bench(int argc, char **argv) {
    const char *device = "cpu", *precision = NULL, *batches = NULL, *model = NULL, *data = NULL, *shapes = "sd15";
    int threads = 0, size = 256, iters = 3, json = 0, profile = 0, images = 20;
    cli_opt opts[] = {
        {"--device", CLI_OPT_STR, &device, "cpu|cuda", "where to run (default cpu)", 0, 0},
        {"--precision", CLI_OPT_STR, &precision, "f32|bf16|f16", "compute precision (default f32; unet on the CPU: f32 and bf16 compared)", 0, 0},
        {"--threads", CLI_OPT_INT, &threads, "N", "CPU threads (default: all cores)", 0, 4096},
        {"--batch", CLI_OPT_STR, &batches, "N[,N..]", "batch sizes (unet default 1,8; others 1)", 0, 0},
        {"--size", CLI_OPT_INT, &size, "PIXELS", "image size (default 256)", 8, 4096},
        {"--iters", CLI_OPT_INT, &iters, "N", "timed runs after one warm-up (default 3)", 1, 1000},
        {"--json", CLI_OPT_FLAG, &json, NULL, "print one JSON object as the last line", 0, 0},
        {"--profile", CLI_OPT_FLAG, &profile, NULL, "time every op kind (adds a sync per op)", 0, 0},
        {"--model", CLI_OPT_STR, &model, "DIR", "precision: model folder (default: random SD v1.5)", 0, 0},
        {"--data", CLI_OPT_STR, &data, "DIR", "precision: ImageFolder of real images", 0, 0},
        {"--images", CLI_OPT_INT, &images, "N", "precision: images compared (20)", 1, 100000},
        {"--shapes", CLI_OPT_STR, &shapes, "sd15|sd21", "text, vae, unet: SD v1.5 or SD 2.1 (768-v) shapes (sd15)", 0, 0},
    };
    int nopts = (int)(sizeof opts / sizeof *opts);
    ddps_error aerr;
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            cli_args_help(USAGE, opts, nopts);
            return 0;
        }
        fprintf(stderr, "%s\n", USAGE);
        return 2;
    }
    const char *what = argv[1];
    char **pos = ddps_malloc((size_t)argc * sizeof *pos);
    int npos;
    int pr = cli_args_parse(USAGE, opts, nopts, argc - 1, argv + 1, pos, &npos, &aerr);
    free(pos);
    if (pr > 0) return 0;
    if (pr < 0) {
        fprintf(stderr, "ddps bench: %s\n", aerr.message);
        return 2;
    }
    int precision_given = precision != NULL;
    if (!precision) precision = "f32";
    if (strcmp(what, "score") == 0) {
        int b1 = 1;
        if (batches && cli_parse_int_list("--batch", batches, &b1, 1, 1, 64, &aerr) < 0) {
            fprintf(stderr, "ddps bench: %s\n", aerr.message);
            return 2;
        }
        return ddps_bench_score(device, precision, threads, size, iters, b1, json);
    }
    if (strcmp(what, "precision") == 0) return ddps_bench_precision(model, data, precision, images, size, threads);
    if (strcmp(what, "load") == 0) {
        ddps_precision lp;
        if (ddps_precision_parse(precision, &lp) != 0) {
            fprintf(stderr, "ddps bench: --precision %s: expected f32, bf16 or f16\n", precision);
            return 2;
        }
        return bench_load(model, device, lp, threads, json);
    }
    unsigned part = strcmp(what, "unet") == 0 ? DDPS_PART_UNET
                    : strcmp(what, "vae") == 0 ? DDPS_PART_VAE
                    : strcmp(what, "text") == 0 ? DDPS_PART_TEXT
                                                : 0;
    if (!part) {
        fprintf(stderr, "ddps bench: %s: unknown benchmark (text, vae, unet, score, precision, load)\n", what);
        return 2;
    }
    int bl[16], nb;
    if (batches) {
        nb = cli_parse_int_list("--batch", batches, bl, 16, 1, 4096, &aerr);
        if (nb < 0) {
            fprintf(stderr, "ddps bench: %s\n", aerr.message);
            return 2;
        }
    } else {
        bl[0] = 1, bl[1] = 8;
        nb = part == DDPS_PART_UNET ? 2 : 1;
    }
    int version = strcmp(shapes, "sd15") == 0 ? 15 : strcmp(shapes, "sd21") == 0 ? 21 : 0;
    if (!version) {
        fprintf(stderr, "ddps bench: --shapes %s: expected sd15 or sd21\n", shapes);
        return 2;
    }
    if (size % 8) {
        fprintf(stderr, "ddps bench: --size %d: must be a multiple of 8\n", size);
        return 2;
    }
    ddps_precision prec;
    if (ddps_precision_parse(precision, &prec) != 0) {
        fprintf(stderr, "ddps bench: --precision %s: expected f32, bf16 or f16\n", precision);
        return 2;
    }
    bench_opts o = {what, part, device, threads, size, iters, json, profile, bl, nb, version};
    bench_row r32[16], r16[16];
    int rc = bench_component(&o, prec, r32);
    /* On the CPU without an explicit --precision, the UNet is timed in f32 and
     * bf16 and the faster one named: which wins depends on the CPU (see
     * BENCHMARKS.md), so the figure must come from the machine itself. */
    if (rc == 0 && part == DDPS_PART_UNET && !precision_given && strcmp(device, "cpu") == 0) {
        printf("\n");
        int rb = bench_component(&o, DDPS_PREC_BF16, r16);
        char cpu[256];
        ddps_cpu_describe(cpu, sizeof cpu);
        if (rb == 0) {
            double ratio = r32[0].ms_per_item / r16[0].ms_per_item;
            printf("\non this CPU (%s), batch %d: bf16 %.0f ms vs f32 %.0f ms per latent: %s is faster (%.2fx); "
                   "use --precision %s\n",
                   cpu, r32[0].batch, r16[0].ms_per_item, r32[0].ms_per_item, ratio > 1 ? "bf16" : "f32",
                   ratio > 1 ? ratio : 1 / ratio, ratio > 1 ? "bf16" : "f32");
        } else {
            printf("on this CPU (%s) only f32 is available\n", cpu);
        }
    }
    return rc;
}
