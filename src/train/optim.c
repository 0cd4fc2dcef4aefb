/* Optimisers and schedules (train/optim.h). The update formulas follow
 * PyTorch's documented algorithms operation by operation in f32, so one step
 * matches torch.optim to rounding. */
#include <math.h>
#include <string.h>

#include "train/optim.h"
#include "util/fs.h"

tr_optim ddps_tr_optim_defaults(tr_opt_kind kind) {
    tr_optim o = {kind, kind == TR_ADAMW ? 0.01f : 0.0f, 0.9f, 0.999f, 1e-8f, 0.9f, 0, 0};
    return o;
}

static void adamw_param(const tr_optim *o, tr_param *p, float lr, float wd) {
    float b1 = o->beta1, b2 = o->beta2;
    float bc1 = 1.0f - powf(b1, (float)o->t), bc2s = sqrtf(1.0f - powf(b2, (float)o->t));
    float step = lr / bc1;
    float *x = p->data, *m = p->m, *v = p->v;
    const float *g = p->grad;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < p->numel; i++) {
        x[i] *= 1.0f - lr * wd;
        m[i] = m[i] * b1 + (1.0f - b1) * g[i];
        v[i] = v[i] * b2 + (1.0f - b2) * g[i] * g[i];
        float denom = sqrtf(v[i]) / bc2s + o->eps;
        x[i] -= step * (m[i] / denom);
    }
}

static void sgd_param(const tr_optim *o, tr_param *p, float lr, float wd) {
    float *x = p->data, *buf = p->m, mo = o->momentum;
    const float *g = p->grad;
    int first = o->t == 1;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < p->numel; i++) {
        float d = g[i] + wd * x[i];
        if (mo != 0) {
            buf[i] = first ? d : mo * buf[i] + d;
            d = o->nesterov ? d + mo * buf[i] : buf[i];
        }
        x[i] -= lr * d;
    }
}

void ddps_tr_optim_step(tr_optim *o, tr_param *p, int np, float lr) {
    o->t++;
    for (int i = 0; i < np; i++) {
        tr_param *q = &p[i];
        if (q->buffer || !q->grad) continue;
        if (!q->m) q->m = ddps_calloc(q->numel, sizeof(float));
        if (!q->v && o->kind == TR_ADAMW) q->v = ddps_calloc(q->numel, sizeof(float));
        float wd = q->ndim > 1 ? o->weight_decay : 0.0f;
        if (o->kind == TR_ADAMW)
            adamw_param(o, q, lr, wd);
        else
            sgd_param(o, q, lr, wd);
    }
}

float ddps_tr_sched_lr(const tr_sched *s, long i) {
    if (s->warmup > 0 && i < s->warmup) return s->lr * (float)(i + 1) / (float)s->warmup;
    if (s->kind == TR_SCHED_CONSTANT || s->total <= s->warmup) return s->lr;
    double t = (double)(i - s->warmup) / (double)(s->total - s->warmup);
    if (t > 1) t = 1;
    if (s->kind == TR_SCHED_LINEAR) return (float)(s->lr + (s->min_lr - s->lr) * t);
    return (float)(s->min_lr + 0.5 * (s->lr - s->min_lr) * (1.0 + cos(M_PI * t)));
}

int ddps_tr_sched_parse(const char *name) {
    if (strcmp(name, "constant") == 0) return TR_SCHED_CONSTANT;
    if (strcmp(name, "linear") == 0) return TR_SCHED_LINEAR;
    if (strcmp(name, "cosine") == 0) return TR_SCHED_COSINE;
    return -1;
}
