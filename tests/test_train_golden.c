/* Training on the engine against PyTorch (goldens made by tests/train_ref.py
 * with Debian's torch 1.13 / torchvision 0.14, in tests/train_golden/): one
 * training step of ConvNet-3 (32 px, KL to soft targets at T = 4),
 * ResNet-18 with RDED's modified stem (32 px, cross-entropy with label
 * smoothing 0.1) and ResNet-18 (224 px, cross-entropy): logits, loss, every
 * parameter's gradient, batch-norm running statistics after the step, and
 * every parameter after one AdamW and one SGD (Nesterov) step, each within
 * relative L2 1e-4 in f32. Weights and inputs come from the integer hash
 * that train_ref.py uses (gen). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ddps.h"
#include "io/safetensors.h"
#include "testlib.h"
#include "train/model.h"
#include "train/optim.h"

#define TOL 1e-4
#define SAMPLE 1024

/* ---- the twin of train_ref.py's gen ---- */

static uint32_t fnv1a(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static void gen(const char *name, float *out, size_t n, double scale, double offset) {
    uint32_t seed = fnv1a(name);
    for (size_t i = 0; i < n; i++) {
        uint32_t x = (uint32_t)i * 0x9E3779B1u + seed;
        x ^= x >> 16;
        x *= 0x7FEB352Du;
        x ^= x >> 15;
        x *= 0x846CA68Bu;
        x ^= x >> 16;
        double u = (double)(x >> 8) / (double)(1 << 24);
        out[i] = (float)(offset + scale * (2.0 * u - 1.0));
    }
}

static int ends(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static void init_param(tr_param *p) {
    if (p->buffer == 2)
        p->data[0] = 0;
    else if (ends(p->name, "running_var"))
        gen(p->name, p->data, p->numel, 0.1, 1.0);
    else if (p->ndim > 1)
        gen(p->name, p->data, p->numel, sqrt(6.0 / (double)(p->numel / (size_t)p->shape[0])), 0);
    else if (ends(p->name, ".weight"))
        gen(p->name, p->data, p->numel, 0.1, 1.0);
    else
        gen(p->name, p->data, p->numel, 0.1, 0);
}

/* ---- golden access ---- */

static st_file gf;

static float *golden(const char *name, size_t *n) {
    const st_tensor *t = ddps_st_find(&gf, name);
    CHECKF(t != NULL, "golden has no %s", name);
    if (!t) return NULL;
    float *v = malloc(t->numel * sizeof(float));
    ddps_st_to_f32(t, v);
    if (n) *n = t->numel;
    return v;
}

static float cfg(const char *key) {
    char nm[64];
    snprintf(nm, sizeof nm, "cfg.%s", key);
    float *v = golden(nm, NULL);
    float r = v ? v[0] : NAN;
    free(v);
    return r;
}

/* v (numel values) at train_ref.py's sample indices -> out; returns the count. */
static size_t sampled(const float *v, size_t numel, float *out) {
    if (numel <= SAMPLE) {
        memcpy(out, v, numel * sizeof(float));
        return numel;
    }
    for (size_t j = 0; j < SAMPLE; j++) out[j] = v[j * numel / SAMPLE];
    return SAMPLE;
}

/* Tolerances of the running case (see golden_case) and the norm G of the whole model's gradient. */
static double tol_grad, tol_step, G;

/* The golden norm of p's gradient. */
static double golden_gradnorm(const tr_param *p) {
    char nm[128];
    snprintf(nm, sizeof nm, "gradnorm.%s", p->name);
    float *ref = golden(nm, NULL);
    double v = ref ? ref[0] : NAN;
    free(ref);
    return v;
}

/* A gradient that is zero in exact arithmetic (ConvNet's convolution biases, which instance norm
 * cancels): both sides hold rounding noise, compared against the model's gradient norm, and AdamW
 * steps such a parameter by lr times the sign of that noise, so its step is not compared. */
static int null_grad(const tr_param *p) { return golden_gradnorm(p) < 1e-4 * G; }

/* AdamW's first step moves every element by about lr times the sign of its gradient, however
 * small: where the golden gradient is below 1e-3 of the parameter's RMS gradient, the sign is
 * decided by float rounding (summation order: threads, kernels), and one flipped element alone
 * costs ~1e-3 of relative error. Such elements of the step are not compared (buf gets ref's value). */
static void adam_mask_tiny(const tr_param *p, float *buf, const float *ref, size_t n) {
    char nm[128];
    snprintf(nm, sizeof nm, "grad.%s", p->name);
    size_t gn = 0;
    float *g = golden(nm, &gn);
    if (!g || gn != n) {
        free(g);
        return;
    }
    double ss = 0;
    for (size_t j = 0; j < n; j++) ss += (double)g[j] * g[j];
    const double floor = 1e-3 * sqrt(ss / (double)n);
    for (size_t j = 0; j < n; j++)
        if (fabs(g[j]) < floor) buf[j] = ref[j];
    free(g);
}

/* Compares every parameter's values (grad or data) under prefix with the golden at tolerance tol;
 * returns the largest relative L2 error and the parameter it belongs to in worst. */
static double compare_params(tr_model *m, const char *prefix, int grads, double tol, char *worst) {
    double mx = 0;
    float buf[SAMPLE];
    for (int i = 0; i < m->np; i++) {
        tr_param *p = &m->p[i];
        if (p->buffer || (!grads && strcmp(prefix, "adamw") == 0 && null_grad(p))) continue;
        char nm[128];
        snprintf(nm, sizeof nm, "%s.%s", prefix, p->name);
        size_t n = 0;
        float *ref = golden(nm, &n);
        if (!ref) continue;
        size_t k = sampled(grads ? p->grad : p->data, p->numel, buf);
        CHECKF(k == n, "%s: %zu values vs %zu", nm, k, n);
        if (!grads && strcmp(prefix, "adamw") == 0 && k == n) adam_mask_tiny(p, buf, ref, n);
        double e = k == n ? t_rel_l2(buf, ref, n) : INFINITY;
        if (grads && null_grad(p) && k == n) e = t_rel_l2(buf, ref, n) * golden_gradnorm(p) / G;
        if (e > mx) mx = e, snprintf(worst, 128, "%s", p->name);
        CHECKF(e <= tol, "%s: rel L2 %.3e", nm, e);
        free(ref);
    }
    return mx;
}

/* The running statistics and the full gradient norms. */
static void check_stats_norms(tr_model *m, double *stats_err, double *norm_err) {
    *stats_err = *norm_err = 0;
    for (int i = 0; i < m->np; i++) {
        tr_param *p = &m->p[i];
        if (p->buffer == 1) {
            float *ref = golden(p->name, NULL);
            double e = ref ? t_rel_l2(p->data, ref, p->numel) : INFINITY;
            *stats_err = fmax(*stats_err, e);
            CHECKF(e <= TOL, "%s: rel L2 %.3e", p->name, e);
            free(ref);
        } else if (!p->buffer) {
            double ref = golden_gradnorm(p), s = 0;
            for (size_t k = 0; k < p->numel; k++) s += (double)p->grad[k] * p->grad[k];
            double e = fabs(sqrt(s) - ref) / (null_grad(p) ? G : ref);
            *norm_err = fmax(*norm_err, e);
            CHECKF(e <= tol_grad, "gradnorm.%s: %.3e", p->name, e);
        }
    }
}

/* ---- one case ---- */

static ddps_backend *be;

/* The forward and backward of one training step; returns the loss. */
static float train_step(tr_ctx *c, tr_model *m, int batch, int size, float T, float smoothing) {
    int K = m->classes;
    float *nchw = malloc((size_t)batch * 3 * size * size * sizeof(float));
    gen("images", nchw, (size_t)batch * 3 * size * size, 1.0, 0);
    ddps_tensor x = ddps_new(be, batch, size, size, 3);
    for (int b = 0; b < batch; b++)
        for (int ch = 0; ch < 3; ch++)
            for (int p = 0; p < size * size; p++)
                ((float *)x.data)[((size_t)b * size * size + p) * 3 + ch] = nchw[((size_t)b * 3 + ch) * size * size + p];
    free(nchw);
    ddps_tensor logits = ddps_tr_model_forward(c, m, &x, 1);
    ddps_tensor q = ddps_new(be, batch, 1, 1, K), p = ddps_new(be, batch, 1, 1, K), d = ddps_new(be, batch, 1, 1, K);
    float loss;
    if (T > 0) {
        ddps_tensor t = ddps_new(be, batch, 1, 1, K);
        gen("teacher", t.data, (size_t)batch * K, 3.0, 0);
        loss = ddps_tr_kl_forward(c, &logits, &t, T, &q, &p);
        ddps_tr_kl_backward(c, &d, &q, &p, T);
    } else {
        int64_t labels[64];
        for (int i = 0; i < batch; i++) labels[i] = (3 * i + 1) % K;
        loss = ddps_tr_xent_forward(c, &logits, labels, smoothing, &q);
        ddps_tr_xent_backward(c, &d, &q, labels, smoothing);
    }
    ddps_tr_model_backward(c, m, &d);
    size_t n = 0;
    float *ref = golden("logits", &n);
    double e = ref && n == ddps_numel(&logits) ? t_rel_l2(logits.data, ref, n) : INFINITY;
    fprintf(stderr, "   logits rel L2 %.2e\n", e);
    CHECKF(e <= TOL, "logits rel L2 %.3e", e);
    free(ref);
    return loss;
}

/* Runs an optimiser step from the initial parameters w0 with the step's gradients, compares, restores. */
static void optim_check(tr_model *m, tr_optim *o, float lr, const char *prefix, float **w0) {
    for (int i = 0; i < m->np; i++)
        if (!m->p[i].buffer) memcpy(m->p[i].data, w0[i], m->p[i].numel * sizeof(float));
    ddps_tr_optim_step(o, m->p, m->np, lr);
    char worst[128] = "";
    double e = compare_params(m, prefix, 0, tol_step, worst);
    fprintf(stderr, "   params after one %s step: max rel L2 %.2e (%s)\n", prefix, e, worst);
}

/* The same weights named as --model names a model: their folder, and a
 * Hugging Face cache id (a cache laid out as huggingface_hub lays it out:
 * refs/main, a snapshot whose file links into blobs/) give the same
 * output bytes; an id not in the cache and a folder without weights are
 * one-line errors. */
static void weights_by_name(const char *dir, const char *arch, const char *wpath, const char *bpath, const char *opath) {
    const char *commit = "0123456789abcdef0123456789abcdef01234567";
    char hub[512], out2[512];
    snprintf(hub, sizeof hub, "%s/hub", dir);
    snprintf(out2, sizeof out2, "%s/out2.safetensors", dir);
    CHECK(t_runv("rm -rf %s && mkdir -p %s/models--timm--toy/refs %s/models--timm--toy/blobs "
                 "%s/models--timm--toy/snapshots/%s && printf %s > %s/models--timm--toy/refs/main && "
                 "cp %s %s/models--timm--toy/blobs/b1 && ln -s ../../blobs/b1 %s/models--timm--toy/snapshots/%s/model.safetensors",
                 hub, hub, hub, hub, commit, commit, hub, wpath, hub, hub, commit) == 0);
    CHECK(t_runv("HF_HUB_CACHE=%s %s probe train --model %s --weights timm/toy --in %s --out %s", hub, DDPS_BIN, arch,
                 bpath, out2) == 0);
    CHECK(t_runv("cmp -s %s %s", opath, out2) == 0);
    CHECK(t_runv("rm -f %s && %s probe train --model %s --weights %s/models--timm--toy/snapshots/%s --in %s --out %s",
                 out2, DDPS_BIN, arch, hub, commit, bpath, out2) == 0);
    CHECK(t_runv("cmp -s %s %s", opath, out2) == 0);
    char cmd[4096], *msg = NULL;
    snprintf(cmd, sizeof cmd, "HF_HUB_CACHE=%s %s probe train --model %s --weights timm/absent --in %s --out %s", hub,
             DDPS_BIN, arch, bpath, out2);
    CHECK(t_run(cmd, &msg) == 1);
    CHECKF(msg && strstr(msg, "timm/absent: not in the local Hugging Face cache") && strchr(msg, '\n') == msg + strlen(msg) - 1,
           "%s", msg);
    free(msg);
    snprintf(cmd, sizeof cmd, "%s probe train --model %s --weights %s --in %s --out %s", DDPS_BIN, arch, hub, bpath, out2);
    CHECK(t_run(cmd, &msg) == 1);
    CHECKF(msg && strstr(msg, "no .safetensors file in it"), "%s", msg);
    free(msg);
}

/* `ddps probe train` on files made from the same weights and batch, against the same golden. */
static void probe_check(const char *arch, tr_model *m0, float **w0) {
    ddps_err err = {{0}};
    const char *dir = t_tmpdir("train_probe");
    char wpath[512], bpath[512], opath[512];
    snprintf(wpath, sizeof wpath, "%s/weights.safetensors", dir);
    snprintf(bpath, sizeof bpath, "%s/batch.safetensors", dir);
    snprintf(opath, sizeof opath, "%s/out.safetensors", dir);
    for (int i = 0; i < m0->np; i++) {
        if (!m0->p[i].buffer) memcpy(m0->p[i].data, w0[i], m0->p[i].numel * sizeof(float));
        else init_param(&m0->p[i]);
    }
    CHECK(ddps_tr_model_save(m0, wpath, &err) == 0);
    int n = (int)cfg("batch"), s = (int)cfg("size"), K = m0->classes;
    float *im = malloc((size_t)n * 3 * s * s * sizeof(float)), teacher[64 * 16];
    gen("images", im, (size_t)n * 3 * s * s, 1.0, 0);
    gen("teacher", teacher, (size_t)n * K, 3.0, 0);
    int64_t labels[64];
    for (int i = 0; i < n; i++) labels[i] = (3 * i + 1) % K;
    float T = cfg("temperature"), ls = cfg("smoothing"), lr = cfg("lr_adamw"), wd = cfg("wd_adamw");
    st_out b[6] = {{"images", ST_F32, 4, {n, 3, s, s}, im}, {"lr", ST_F32, 0, {0}, &lr},
                   {"weight_decay", ST_F32, 0, {0}, &wd}};
    int nb = 3;
    if (T > 0) {
        b[nb++] = (st_out){"teacher_logits", ST_F32, 2, {n, K}, teacher};
        b[nb++] = (st_out){"temperature", ST_F32, 0, {0}, &T};
    } else {
        b[nb++] = (st_out){"labels", ST_I64, 1, {n}, labels};
        b[nb++] = (st_out){"label_smoothing", ST_F32, 0, {0}, &ls};
    }
    CHECK(ddps_st_write(bpath, b, nb, &err) == 0);
    free(im);
    CHECK(t_runv("%s probe train --model %s --weights %s --in %s --out %s", DDPS_BIN, arch, wpath, bpath, opath) == 0);
    if (strcmp(arch, "convnet3") == 0) weights_by_name(dir, arch, wpath, bpath, opath);
    st_file o;
    if (ddps_st_open(&o, opath, &err)) {
        CHECKF(0, "%s", err.msg);
        return;
    }
    for (int i = 0; i < m0->np; i++) { /* the probe's gradients and stepped parameters into the model */
        tr_param *p = &m0->p[i];
        char nm[128];
        for (int pass = 0; pass < 2 && !p->buffer; pass++) {
            snprintf(nm, sizeof nm, "%s.%s", pass ? "param" : "grad", p->name);
            const st_tensor *t = ddps_st_find(&o, nm);
            CHECKF(t && t->numel == p->numel, "probe output %s", nm);
            if (t && t->numel == p->numel) ddps_st_to_f32(t, pass ? p->data : p->grad);
        }
    }
    const st_tensor *lt = ddps_st_find(&o, "logits");
    float *ref = golden("logits", NULL), *got = lt ? malloc(lt->numel * sizeof(float)) : NULL;
    if (got) ddps_st_to_f32(lt, got);
    double le = got && ref && lt->numel == (size_t)n * K ? t_rel_l2(got, ref, lt->numel) : INFINITY;
    char worst[128] = "";
    double ge = compare_params(m0, "grad", 1, tol_grad, worst), pe = compare_params(m0, "adamw", 0, tol_step, worst);
    fprintf(stderr, "   ddps probe train: logits %.2e, gradients %.2e, params after AdamW %.2e\n", le, ge, pe);
    CHECK(le <= TOL);
    free(ref);
    free(got);
    ddps_st_close(&o);
}

static void golden_case(const char *file, const char *arch, double grad_tol, double step_tol) {
    tol_grad = grad_tol;
    tol_step = step_tol;
    ddps_err err = {{0}};
    char path[512];
    snprintf(path, sizeof path, "%s/tests/train_golden/%s", DDPS_SOURCE_DIR, file);
    if (ddps_st_open(&gf, path, &err)) {
        CHECKF(0, "%s", err.msg);
        return;
    }
    int batch = (int)cfg("batch"), size = (int)cfg("size"), K = (int)cfg("classes");
    tr_model *m = ddps_tr_model_new(arch, K, size, 1, &err);
    tr_ctx *c = ddps_tr_ctx_new(be, &err);
    for (int i = 0; i < m->np; i++) init_param(&m->p[i]);
    float *w0[TR_MAX_PARAMS];
    for (int i = 0; i < m->np; i++) {
        w0[i] = malloc(m->p[i].numel * sizeof(float));
        memcpy(w0[i], m->p[i].data, m->p[i].numel * sizeof(float));
    }
    size_t mark = ddps_mark(be);
    float loss = train_step(c, m, batch, size, cfg("temperature"), cfg("smoothing"));
    ddps_release(be, mark);
    CHECKF(!be->failed, "%s", be->error.msg);
    float *ref = golden("loss", NULL);
    double le = ref ? fabs(loss - ref[0]) / fabs(ref[0]) : INFINITY;
    fprintf(stderr, "   loss %.6f vs %.6f (rel %.2e)\n", loss, ref ? ref[0] : NAN, le);
    CHECK(le <= TOL);
    free(ref);
    char worst[128] = "";
    G = 0;
    for (int i = 0; i < m->np; i++)
        if (!m->p[i].buffer) G += pow(golden_gradnorm(&m->p[i]), 2);
    G = sqrt(G);
    double ge = compare_params(m, "grad", 1, tol_grad, worst), se, ne;
    fprintf(stderr, "   gradients: max rel L2 %.2e (%s)\n", ge, worst);
    check_stats_norms(m, &se, &ne);
    fprintf(stderr, "   running stats max rel L2 %.2e, gradient norms max rel %.2e\n", se, ne);
    tr_optim adamw = ddps_tr_optim_defaults(TR_ADAMW), sgd = ddps_tr_optim_defaults(TR_SGD);
    adamw.weight_decay = cfg("wd_adamw");
    sgd.weight_decay = cfg("wd_sgd");
    sgd.momentum = cfg("momentum");
    sgd.nesterov = 1;
    optim_check(m, &adamw, cfg("lr_adamw"), "adamw", w0);
    for (int i = 0; i < m->np; i++) { /* fresh optimiser state for SGD */
        free(m->p[i].m);
        m->p[i].m = NULL;
    }
    optim_check(m, &sgd, cfg("lr_sgd"), "sgd", w0);
    if (size <= 64) probe_check(arch, m, w0);
    for (int i = 0; i < m->np; i++) free(w0[i]);
    ddps_tr_ctx_free(c);
    ddps_tr_model_free(m);
    ddps_st_close(&gf);
}

static void test_convnet3(void) { golden_case("convnet3-32.safetensors", "convnet3", TOL, TOL); }
static void test_resnet18_modified(void) {
    golden_case("resnet18-modified-32.safetensors", "resnet18-modified", TOL, TOL);
}
/* ResNet-18 at 224 px, batch 2: logits, loss, running statistics at 1e-4, but its gradients below
 * layer4 are not reproducible to 1e-4 in f32 by anyone: PyTorch's own f32 gradients differ from
 * its f64 ones by 5e-3 (relative L2) in layer1 and the stem, training-mode batch norm over 2 images
 * being badly conditioned; and with ~10^6 ReLU inputs per image some lie within f32 rounding
 * of 0 (one at 5.7e-6 in layer4.1's first ReLU here), where either side's rounding decides
 * the mask. Measured against PyTorch f32: gradients <= 1.5e-2, parameters after a step <= 5e-3. */
static void test_resnet18(void) { golden_case("resnet18-224.safetensors", "resnet18", 3e-2, 1e-2); }

/* ddps_probe_train's refusals: missing arguments, a batch without labels or teacher logits. */
static void test_probe_errors(void) {
    ddps_probe_train_params p;
    ddps_probe_train_params_init(&p);
    ddps_error e;
    CHECK(ddps_probe_train(&p, NULL, &e) == DDPS_ERR_USAGE && strstr(e.message, "--weights"));
    ddps_err err = {{0}};
    tr_model *m = ddps_tr_model_new("convnet3", 10, 32, 1, &err);
    const char *dir = t_tmpdir("train_probe_errors");
    char w[512], b[512], o[512];
    snprintf(w, sizeof w, "%s/w.safetensors", dir);
    snprintf(b, sizeof b, "%s/b.safetensors", dir);
    snprintf(o, sizeof o, "%s/o.safetensors", dir);
    CHECK(ddps_tr_model_save(m, w, &err) == 0);
    float im[2 * 3 * 32 * 32] = {0};
    st_out t[1] = {{"images", ST_F32, 4, {2, 3, 32, 32}, im}};
    CHECK(ddps_st_write(b, t, 1, &err) == 0);
    p.model = "convnet3", p.weights = w, p.in = b, p.out = o;
    CHECK(ddps_probe_train(&p, NULL, &e) == DDPS_ERR_DATA && strstr(e.message, "either 'labels'"));
    p.model = "resnet18";
    CHECK(ddps_probe_train(&p, NULL, &e) != DDPS_OK);
    ddps_tr_model_free(m);
}

int main(void) {
    ddps_err err = {{0}};
    be = ddps_cpu_backend_new(DDPS_PREC_F32, 0, &err);
    if (!be) {
        fprintf(stderr, "backend: %s\n", err.msg);
        return 1;
    }
    TEST(test_convnet3);
    TEST(test_resnet18_modified);
    TEST(test_resnet18);
    TEST(test_probe_errors);
    ddps_backend_free(be);
    return t_done();
}
