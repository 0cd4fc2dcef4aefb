/* `ddps probe train`: one training step of a student on a batch from a
 * safetensors file, everything written to another for comparison with
 * PyTorch (see train/probe.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "train/model.h"
#include "train/optim.h"
#include "train/probe.h"
#include "util/fs.h"

typedef struct {
    int n, h, w, K;
    float *images;          /* NCHW */
    int64_t *labels;        /* or NULL */
    float *teacher;         /* [n,K] or NULL */
    float temperature, smoothing, lr, weight_decay;
} probe_batch;

static float scalar(const st_file *f, const char *name, float dflt) {
    const st_tensor *t = ddps_st_find(f, name);
    if (!t || t->numel != 1) return dflt;
    float v;
    ddps_st_to_f32(t, &v);
    return v;
}

static int read_batch(const char *path, int K, probe_batch *b, ddps_err *err) {
    st_file f;
    if (ddps_st_open(&f, path, err)) return -1;
    const st_tensor *im = ddps_st_find(&f, "images"), *lb = ddps_st_find(&f, "labels"),
                    *tl = ddps_st_find(&f, "teacher_logits");
    int rc = -1;
    if (!im || im->ndim != 4 || im->shape[1] != 3 || im->shape[0] < 1 || im->shape[0] > 4096 || im->shape[2] > 4096 ||
        im->shape[3] > 4096)
        ddps_fail_kind(err, DDPS_KIND_DATA, "%s: no 'images' [N,3,H,W] (N <= 4096, H, W <= 4096)", path);
    else if (!lb == !tl)
        ddps_fail_kind(err, DDPS_KIND_DATA, "%s: give either 'labels' [N] or 'teacher_logits' [N,K]", path);
    else if ((lb && (lb->numel != (size_t)im->shape[0])) ||
             (tl && (tl->ndim != 2 || tl->shape[0] != im->shape[0] || tl->shape[1] != K)))
        ddps_fail_kind(err, DDPS_KIND_DATA, "%s: labels or teacher_logits do not match %lld images of %d classes",
                       path, (long long)im->shape[0], K);
    else {
        b->n = (int)im->shape[0], b->h = (int)im->shape[2], b->w = (int)im->shape[3], b->K = K;
        b->images = ddps_malloc(im->numel * sizeof(float));
        rc = ddps_st_to_f32(im, b->images) ? ddps_fail_kind(err, DDPS_KIND_DATA, "%s: non-finite images", path) : 0;
        if (!rc && lb) {
            b->labels = ddps_malloc((size_t)b->n * sizeof(int64_t));
            rc = ddps_st_to_i64(&f, lb, 0, K - 1, b->labels, err);
        }
        if (!rc && tl) {
            b->teacher = ddps_malloc(tl->numel * sizeof(float));
            ddps_st_to_f32(tl, b->teacher);
        }
        b->temperature = scalar(&f, "temperature", 1.0f);
        b->smoothing = scalar(&f, "label_smoothing", 0.0f);
        b->lr = scalar(&f, "lr", 1e-3f);
        b->weight_decay = scalar(&f, "weight_decay", 0.01f);
        if (!rc && (!(b->temperature > 0) || !(b->smoothing >= 0 && b->smoothing < 1)))
            rc = ddps_fail_kind(err, DDPS_KIND_DATA, "%s: temperature must be > 0, label_smoothing in [0, 1)", path);
    }
    ddps_st_close(&f);
    return rc;
}

/* Forward, loss and backward of one step on the batch; logits (host [n,K]) and the loss out. */
static float probe_step(tr_ctx *c, tr_model *m, const probe_batch *b, float *logits_out) {
    ddps_backend *be = c->be;
    ddps_tensor x = ddps_new(be, b->n, b->h, b->w, 3);
    if (x.data)
        for (int i = 0; i < b->n; i++)
            for (int ch = 0; ch < 3; ch++)
                for (int p = 0; p < b->h * b->w; p++)
                    ((float *)x.data)[((size_t)i * b->h * b->w + p) * 3 + ch] =
                        b->images[((size_t)i * 3 + ch) * b->h * b->w + p];
    ddps_tensor logits = ddps_tr_model_forward(c, m, &x, 1);
    int K = b->K;
    ddps_tensor q = ddps_new(be, b->n, 1, 1, K), d = ddps_new(be, b->n, 1, 1, K);
    float loss = NAN;
    if (b->teacher) {
        ddps_tensor t = ddps_new(be, b->n, 1, 1, K), p = ddps_new(be, b->n, 1, 1, K);
        if (t.data) memcpy(t.data, b->teacher, (size_t)b->n * K * sizeof(float));
        loss = ddps_tr_kl_forward(c, &logits, &t, b->temperature, &q, &p);
        ddps_tr_kl_backward(c, &d, &q, &p, b->temperature);
    } else {
        loss = ddps_tr_xent_forward(c, &logits, b->labels, b->smoothing, &q);
        ddps_tr_xent_backward(c, &d, &q, b->labels, b->smoothing);
    }
    ddps_tr_model_backward(c, m, &d);
    if (!be->failed) memcpy(logits_out, logits.data, (size_t)b->n * K * sizeof(float));
    return loss;
}

/* Writes logits, loss, grad.<name>, the buffers by name and param.<name> (after the step). */
static int probe_write(const char *path, const tr_model *m, const probe_batch *b, const float *logits, float loss,
                       ddps_err *err) {
    int cap = 2 + 2 * m->np, n = 0;
    st_out *o = ddps_calloc((size_t)cap, sizeof *o);
    char (*names)[96] = ddps_calloc((size_t)cap, sizeof *names);
    int64_t *cnt = ddps_calloc((size_t)m->np, sizeof *cnt);
    o[n++] = (st_out){"logits", ST_F32, 2, {b->n, b->K}, logits};
    o[n++] = (st_out){"loss", ST_F32, 0, {0}, &loss};
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < m->np; i++) {
            const tr_param *p = &m->p[i];
            if (pass == 0 && p->buffer) continue;
            if (pass == 1 && p->buffer == 2) cnt[i] = (int64_t)p->data[0];
            snprintf(names[n], sizeof names[n], "%s%s", p->buffer ? "" : (pass ? "param." : "grad."), p->name);
            o[n] = (st_out){names[n], p->buffer == 2 ? ST_I64 : ST_F32, p->ndim, {0},
                            p->buffer == 2 ? (const void *)&cnt[i] : (pass ? p->data : p->grad)};
            for (int k = 0; k < p->ndim; k++) o[n].shape[k] = p->shape[k];
            n++;
        }
    int rc = ddps_st_write(path, o, n, err);
    free(o);
    free(names);
    free(cnt);
    return rc;
}

int ddps_tr_probe(const char *arch, const char *weights, const char *in, const char *out, int threads, ddps_err *err) {
    if (!arch || !weights || !in || !out)
        return ddps_fail_usage(err, "probe train: --model, --weights, --in and --out are required");
    char *wpath = ddps_tr_weights_path(weights, err);
    int K = wpath ? ddps_tr_weights_classes(wpath, err) : -1;
    probe_batch b = {0};
    tr_model *m = NULL;
    if (K >= 0 && !read_batch(in, K, &b, err)) m = ddps_tr_model_new(arch, K, b.h, 0, err);
    ddps_backend *be = m && !ddps_tr_model_load(m, wpath, err) ? ddps_backend_new("cpu", DDPS_PREC_F32, threads, err)
                                                          : NULL;
    free(wpath);
    tr_ctx *c = be ? ddps_tr_ctx_new(be, err) : NULL;
    int rc = -1;
    if (c) {
        float *logits = ddps_calloc((size_t)b.n * K, sizeof(float));
        size_t mark = ddps_mark(be);
        float loss = probe_step(c, m, &b, logits);
        ddps_release(be, mark);
        if (!ddps_backend_error(be, err)) {
            tr_optim o = ddps_tr_optim_defaults(TR_ADAMW);
            o.weight_decay = b.weight_decay;
            ddps_tr_optim_step(&o, m->p, m->np, b.lr);
            rc = probe_write(out, m, &b, logits, loss, err);
        }
        free(logits);
    }
    if (rc) ddps_fail_prefix(err, "probe train");
    ddps_tr_ctx_free(c);
    if (be) ddps_backend_free(be);
    ddps_tr_model_free(m);
    free(b.images);
    free(b.labels);
    free(b.teacher);
    return rc;
}
