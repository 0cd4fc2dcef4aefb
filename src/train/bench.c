/* `ddps bench train`: speed and memory of training a student on the engine
 * (issue 18's "Speed"), with random weights and random images built in
 * memory. Compare with scripts/bench-train-torch.py (the same figures for
 * torchvision's model in PyTorch); scripts/bench-train.sh runs both back to
 * back and prints the ratios.
 *
 * Figures, each after warm-up steps (the first step makes the oneDNN
 * primitives and grows the arena; steady state allocates nothing):
 *   train    images/s of forward (training mode) + cross-entropy + backward
 *            + AdamW step over batch random images with random labels
 *   teacher  images/s of the forward alone in eval mode (what the
 *            evaluation protocol's teacher does on every batch)
 *   memory   peak RSS: VmHWM of /proc/self/status read after the timed
 *            training steps (the process's high-water mark: library, model,
 *            optimiser state, arena, primitives); the RSS before the model
 *            is made is reported beside it.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/tools.h"
#include "train/bench.h"
#include "train/model.h"
#include "train/optim.h"
#include "util/clock.h"
#include "util/cpu.h"
#include "util/fs.h"
#include "util/rng.h"

/* CPU seconds of the process (all threads): on a shared machine, where wall time depends on the
 * neighbours, CPU time at one thread measures the work itself. */
static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One training step on x with labels; returns the loss. */
static float train_step(tr_ctx *c, tr_model *m, tr_optim *o, const ddps_tensor *x, const int64_t *labels) {
    ddps_backend *be = c->be;
    size_t mark = ddps_mark(be);
    ddps_tensor logits = ddps_tr_model_forward(c, m, x, 1);
    ddps_tensor q = ddps_new(be, x->n, 1, 1, m->classes);
    float loss = ddps_tr_xent_forward(c, &logits, labels, 0.0f, &q);
    ddps_tr_xent_backward(c, &q, &q, labels, 0.0f);
    ddps_tr_model_backward(c, m, &q);
    ddps_release(be, mark);
    if (!be->failed) ddps_tr_optim_step(o, m->p, m->np, 1e-3f);
    return loss;
}

static void eval_forward(tr_ctx *c, tr_model *m, const ddps_tensor *x) {
    size_t mark = ddps_mark(c->be);
    ddps_tr_model_forward(c, m, x, 0);
    ddps_release(c->be, mark);
}

int ddps_tr_bench(const tr_bench_opts *bo, const ddps_hooks *h, ddps_err *err) {
    const char *arch = bo->model ? bo->model : "resnet18";
    int is_resnet = strcmp(arch, "resnet18") == 0;
    int size = bo->size > 0 ? bo->size : is_resnet ? 224 : 32;
    int batch = bo->batch > 0 ? bo->batch : is_resnet ? 64 : 256;
    int classes = bo->classes > 0 ? bo->classes : is_resnet ? 1000 : 10;
    int steps = bo->steps > 0 ? bo->steps : 10, warmup = bo->warmup > 0 ? bo->warmup : 2;
    const char *precision = bo->precision ? bo->precision : "f32";
    ddps_precision prec;
    if (ddps_precision_parse(precision, &prec) != 0 || (prec != DDPS_PREC_F32 && prec != DDPS_PREC_BF16))
        return ddps_fail_usage(err, "bench train: --precision %s: expected f32 (or bf16)", precision);
    /* The training ops are f32: oneDNN 2.6 ignores the bf16 fpmath mode for f32 convolutions (it still
     * picks the f32 kernels), so bf16 would need bf16 activations and weights in every op. */
    if (prec == DDPS_PREC_BF16)
        return ddps_fail_usage(err, "bench train: --precision bf16: the training ops compute in f32 only (for now)");
    if (size < 8 || size > 1024) return ddps_fail_usage(err, "bench train: --size %d: expected 8..1024", size);
    if (batch < 1 || batch > 4096) return ddps_fail_usage(err, "bench train: --batch %d: expected 1..4096", batch);
    if (bo->device && strcmp(bo->device, "cpu") != 0)
        return ddps_fail_usage(err, "bench train: --device %s: training runs on the CPU only", bo->device);
    double rss0 = ddps_tools_rss_mb();
    tr_model *m = ddps_tr_model_new(arch, classes, size, 1234, err);
    if (!m) return ddps_fail_prefix(err, "bench train");
    ddps_backend *be = ddps_backend_new("cpu", prec, bo->threads, err);
    tr_ctx *c = be ? ddps_tr_ctx_new(be, err) : NULL;
    if (!c) {
        if (be) ddps_backend_free(be);
        ddps_tr_model_free(m);
        return ddps_fail_prefix(err, "bench train");
    }
    int threads = bo->threads > 0 ? bo->threads : omp_get_max_threads();
    char cpu[256];
    ddps_cpu_describe(cpu, sizeof cpu);
    ddps_tools_out(h, "ddps bench train: %s, %d px, batch %d, %d classes, %s, %d threads, Winograd %s, %s", arch, size,
                   batch, classes, ddps_precision_name(prec), threads, c->winograd ? "on" : "off (DDPS_NO_WINOGRAD)",
                   cpu);
    /* inputs outside the step's mark: random images in [-2, 2] (about normalised pixels), random labels */
    ddps_tensor x = ddps_new(be, batch, size, size, 3);
    int64_t *labels = ddps_malloc((size_t)batch * sizeof *labels);
    ddps_rng r;
    ddps_rng_seed(&r, 7);
    if (x.data)
        for (size_t i = 0; i < ddps_numel(&x); i++) ((float *)x.data)[i] = 4.0f * (float)ddps_rng_uniform(&r) - 2.0f;
    for (int i = 0; i < batch; i++) labels[i] = (int64_t)ddps_rng_below(&r, (uint64_t)classes);
    tr_optim o = ddps_tr_optim_defaults(TR_ADAMW);
    float loss0 = NAN, loss = NAN;
    for (int i = 0; i < warmup; i++) {
        float l = train_step(c, m, &o, &x, labels);
        if (i == 0) loss0 = l;
    }
    double t0 = ddps_seconds(), u0 = cpu_seconds();
    for (int i = 0; i < steps && !be->failed; i++) loss = train_step(c, m, &o, &x, labels);
    double t_train = ddps_seconds() - t0, u_train = cpu_seconds() - u0;
    double rss_train = ddps_tools_peak_rss_mb();
    for (int i = 0; i < warmup; i++) eval_forward(c, m, &x);
    t0 = ddps_seconds(), u0 = cpu_seconds();
    for (int i = 0; i < steps && !be->failed; i++) eval_forward(c, m, &x);
    double t_eval = ddps_seconds() - t0, u_eval = cpu_seconds() - u0;
    double rss_all = ddps_tools_peak_rss_mb();
    int rc = ddps_backend_error(be, err);
    if (rc == 0 && !(isfinite(loss) && loss < loss0 + 1.0f))
        rc = ddps_fail(err, "training diverged (loss %g after %g)", (double)loss, (double)loss0);
    if (rc == 0) {
        double tr_ips = steps * (double)batch / t_train, ev_ips = steps * (double)batch / t_eval;
        double tr_cpu = steps * (double)batch / u_train, ev_cpu = steps * (double)batch / u_eval;
        ddps_tools_out(h, "  train   (forward + backward + AdamW): %8.1f images/s  %8.1f ms/step  %8.1f images/CPU-s  (%d steps after %d warm-up; loss %.3f -> %.3f)",
                       tr_ips, 1e3 * t_train / steps, tr_cpu, steps, warmup, (double)loss0, (double)loss);
        ddps_tools_out(h, "  teacher (eval-mode forward):          %8.1f images/s  %8.1f ms/batch %8.1f images/CPU-s", ev_ips,
                       1e3 * t_eval / steps, ev_cpu);
        ddps_tools_out(h, "  peak RSS (VmHWM) after training %.0f MB, after the teacher forward %.0f MB; %.0f MB before the model",
                       rss_train, rss_all, rss0);
        if (bo->json)
            ddps_tools_out(h,
                           "{\"bench\":\"train\",\"impl\":\"ddps\",\"model\":\"%s\",\"size\":%d,\"batch\":%d,\"classes\":%d,"
                           "\"precision\":\"%s\",\"threads\":%d,\"winograd\":%s,\"steps\":%d,\"warmup\":%d,"
                           "\"train_images_per_s\":%.3f,\"teacher_images_per_s\":%.3f,\"train_ms_per_step\":%.3f,"
                           "\"train_images_per_cpu_s\":%.3f,\"teacher_images_per_cpu_s\":%.3f,"
                           "\"peak_rss_mb\":%.1f,\"peak_rss_all_mb\":%.1f,\"rss_before_mb\":%.1f,\"loss_first\":%.5f,"
                           "\"loss_last\":%.5f}",
                           arch, size, batch, classes, ddps_precision_name(prec), threads, c->winograd ? "true" : "false", steps,
                           warmup, tr_ips, ev_ips, 1e3 * t_train / steps, tr_cpu, ev_cpu, rss_train, rss_all, rss0, (double)loss0, (double)loss);
    }
    free(labels);
    ddps_release(be, 0);
    ddps_tr_ctx_free(c);
    ddps_backend_free(be);
    ddps_tr_model_free(m);
    return rc ? ddps_fail_prefix(err, "bench train") : 0;
}
