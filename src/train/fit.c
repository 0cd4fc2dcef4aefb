/* The training loop with per-epoch checkpoints (train/fit.h). */
#include "train/fit.h"

#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "util/fs.h"
#include "util/progress.h"

/* Host buffers of one call, allocated once. */
typedef struct {
    float *x, *tmp;   /* [batch, size, size, 3] */
    int64_t *labels;  /* [batch] */
    int *order, *perm; /* [n], [batch] */
    ddps_err *errs;   /* [batch] */
} fit_bufs;

/* Every setting that changes the numbers: a resumed run must have the same. */
static uint64_t settings_hash(const tr_fit_opts *o, const tr_model *m, const tr_fit_data *d) {
    double v[] = {o->epochs, o->batch, o->optim.kind, o->optim.weight_decay, o->optim.beta1, o->optim.beta2,
                  o->optim.eps, o->optim.momentum, o->optim.nesterov, o->sched.kind, o->sched.lr,
                  o->sched.min_lr, (double)o->sched.warmup, (double)o->sched.total, o->sched_per_step, o->rded_lr,
                  o->label_smoothing, o->temperature, o->cutmix, o->tf.size, o->tf.train, o->tf.factor,
                  o->tf.rrc.scale_lo, o->tf.rrc.scale_hi, o->tf.rrc.ratio_lo, o->tf.rrc.ratio_hi, o->tf.flip,
                  (double)o->seed, m->np, m->classes, d->train->n, d->teacher != NULL};
    uint64_t h = ddps_fnv1a(0xcbf29ce484222325ULL, v, sizeof v);
    for (int i = 0; i < m->np; i++) h = ddps_fnv1a(h, m->p[i].name, strlen(m->p[i].name));
    return h;
}

static int ckpt_save(const char *path, const tr_model *m, const tr_optim *opt, int done, int epochs,
                     const tr_epoch_log *log, uint64_t hash, ddps_err *err) {
    int cap = 3 * m->np + 2, n = 0;
    st_out *o = ddps_calloc((size_t)cap, sizeof *o);
    char (*names)[96] = ddps_calloc((size_t)cap, sizeof *names);
    int64_t state[4] = {done, opt->t, (int64_t)hash, epochs};
    double *lg = ddps_calloc((size_t)epochs * 5, sizeof *lg);
    for (int e = 0; e < epochs; e++) {
        double *r = lg + e * 5;
        r[0] = log[e].loss, r[1] = log[e].top1, r[2] = log[e].top5, r[3] = log[e].seconds, r[4] = log[e].evaluated;
    }
    o[n++] = (st_out){"state", ST_I64, 1, {4}, state};
    o[n++] = (st_out){"log", ST_F64, 2, {epochs, 5}, lg};
    for (int i = 0; i < m->np; i++) {
        const tr_param *p = &m->p[i];
        const float *src[3] = {p->data, p->m, p->v};
        const char *pre[3] = {"param.", "m.", "v."};
        for (int k = 0; k < 3; k++) {
            if (!src[k]) continue;
            snprintf(names[n], sizeof names[n], "%s%s", pre[k], p->name);
            o[n] = (st_out){names[n], ST_F32, p->ndim, {0}, src[k]};
            for (int j = 0; j < p->ndim; j++) o[n].shape[j] = p->shape[j];
            n++;
        }
    }
    int rc = ddps_st_write(path, o, n, err);
    free(o);
    free(names);
    free(lg);
    return rc;
}

/* One tensor of the checkpoint into dst (numel floats); allocates *dst when NULL. */
static int ckpt_tensor(const st_file *f, const char *pre, const tr_param *p, float **dst, int need, ddps_err *err) {
    char name[96];
    snprintf(name, sizeof name, "%s%s", pre, p->name);
    const st_tensor *t = ddps_st_find(f, name);
    if (!t) return need ? ddps_fail_kind(err, DDPS_KIND_DATA, "%s: no %s", f->path, name) : 0;
    if (t->dtype != ST_F32 || t->numel != p->numel)
        return ddps_fail_kind(err, DDPS_KIND_DATA, "%s: %s has the wrong size", f->path, name);
    if (!*dst) *dst = ddps_calloc(p->numel, sizeof(float));
    memcpy(*dst, t->data, p->numel * sizeof(float));
    return 0;
}

/* Returns the epochs done in the checkpoint (0 when absent), -1 on error. */
static int ckpt_load(const char *path, tr_model *m, tr_optim *opt, int epochs, tr_epoch_log *log, uint64_t hash,
                     ddps_err *err) {
    if (!path || !ddps_is_file(path)) return 0;
    st_file f;
    if (ddps_st_open(&f, path, err)) return -1;
    const st_tensor *st = ddps_st_find(&f, "state"), *lg = ddps_st_find(&f, "log");
    int rc = 0;
    if (!st || st->dtype != ST_I64 || st->numel != 4 || !lg || lg->dtype != ST_F64 || lg->numel != (size_t)epochs * 5)
        rc = ddps_fail_kind(err, DDPS_KIND_DATA, "%s: not a training checkpoint of this run (remove it to start over)",
                            path);
    const int64_t *s = st ? st->data : NULL;
    if (!rc && ((uint64_t)s[2] != hash || s[3] != epochs || s[0] < 0 || s[0] > epochs))
        rc = ddps_fail_kind(err, DDPS_KIND_DATA, "%s: a checkpoint of other settings (remove it to start over)", path);
    for (int i = 0; !rc && i < m->np; i++) {
        tr_param *p = &m->p[i];
        rc = ckpt_tensor(&f, "param.", p, &p->data, 1, err);
        if (!rc && !p->buffer) rc = ckpt_tensor(&f, "m.", p, &p->m, 0, err);
        if (!rc && !p->buffer) rc = ckpt_tensor(&f, "v.", p, &p->v, 0, err);
    }
    int done = rc ? -1 : (int)s[0];
    if (!rc) {
        opt->t = (long)s[1];
        const double *r = lg->data;
        for (int e = 0; e < epochs; e++)
            log[e] = (tr_epoch_log){r[e * 5], r[e * 5 + 1], r[e * 5 + 2], r[e * 5 + 3], (int)r[e * 5 + 4]};
    }
    ddps_st_close(&f);
    return done;
}

/* Transforms the samples order[0..n) of epoch into b->x (parallel; deterministic per sample). */
static int make_batch(const tr_fit_opts *o, const tr_data *d, const int *idx, int n, long epoch, fit_bufs *b,
                      ddps_err *err) {
    size_t per = (size_t)o->tf.size * o->tf.size * 3;
    int bad = -1;
#pragma omp parallel for schedule(dynamic, 1) num_threads(o->threads > 0 ? o->threads : omp_get_max_threads())
    for (int i = 0; i < n; i++) {
        ddps_rng r;
        ddps_tr_sample_rng(&r, o->seed, epoch, idx[i]);
        if (ddps_tr_transform(&o->tf, &d->img[idx[i]], &r, b->x + i * per, &b->errs[i])) {
#pragma omp critical
            {
                if (bad < 0 || i < bad) bad = i;
            }
        }
    }
    for (int i = 0; i < n; i++) b->labels[i] = d->labels[idx[i]];
    return bad >= 0 ? ddps_fail(err, "%s", b->errs[bad].msg) : 0;
}

/* Student and teacher logits [n,1,1,K] -> the loss and dlogits; teacher logits gathered by tmap. */
static float loss_grad(tr_ctx *c, const tr_fit_opts *o, const tr_fit_data *d, const ddps_tensor *x,
                       const ddps_tensor *s, const int64_t *labels, ddps_tensor *ds) {
    ddps_backend *be = c->be;
    int n = s->n, K = s->c;
    ddps_tensor q = ddps_new(be, n, 1, 1, K);
    if (!d->teacher) {
        float loss = ddps_tr_xent_forward(c, s, labels, o->label_smoothing, &q);
        ddps_tr_xent_backward(c, ds, &q, labels, o->label_smoothing);
        return loss;
    }
    ddps_tensor tl = ddps_tr_model_forward(c, d->teacher, x, 0), t = ddps_new(be, n, 1, 1, K),
                p = ddps_new(be, n, 1, 1, K);
    if (be->failed) return NAN;
    const float *tv = tl.data;
    float *tt = t.data;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < K; k++) tt[i * K + k] = tv[(size_t)i * tl.c + (d->tmap ? d->tmap[k] : k)];
    float loss = ddps_tr_kl_forward(c, s, &t, o->temperature, &q, &p);
    ddps_tr_kl_backward(c, ds, &q, &p, o->temperature);
    return loss;
}

/* One optimiser step on the batch in b (n samples); returns the loss. */
static float train_step(tr_ctx *c, const tr_fit_opts *o, tr_model *m, tr_optim *opt, const tr_fit_data *d,
                        fit_bufs *b, int n, float lr) {
    ddps_backend *be = c->be;
    size_t mark = ddps_mark(be);
    int S = o->tf.size;
    ddps_tensor x = ddps_new(be, n, S, S, 3);
    if (x.data) memcpy(x.data, b->x, (size_t)n * S * S * 3 * sizeof(float));
    ddps_tensor logits = ddps_tr_model_forward(c, m, &x, 1);
    ddps_tensor ds = ddps_new(be, n, 1, 1, m->classes);
    float loss = NAN;
    if (!be->failed) {
        /* The teacher labels the same (mixed) batch: its activations go above the student's. */
        loss = loss_grad(c, o, d, &x, &logits, b->labels, &ds);
        ddps_tr_model_backward(c, m, &ds);
    }
    ddps_release(be, mark);
    if (!be->failed) ddps_tr_optim_step(opt, m->p, m->np, lr);
    return loss;
}

int ddps_tr_evaluate(tr_ctx *c, tr_model *m, const tr_data *val, const int *tmap, int batch, double *top1,
                     double *top5, ddps_err *err) {
    ddps_backend *be = c->be;
    int S = val->img[0].w, K = tmap ? val->n_classes : m->classes;
    long hit1 = 0, hit5 = 0;
    for (int at = 0; at < val->n && !be->failed; at += batch) {
        int n = val->n - at < batch ? val->n - at : batch;
        size_t mark = ddps_mark(be);
        ddps_tensor x = ddps_new(be, n, S, S, 3);
        for (int i = 0; x.data && i < n; i++) {
            if (val->img[at + i].w != S || val->img[at + i].h != S) {
                ddps_release(be, mark);
                return ddps_fail(err, "evaluate: validation images of different sizes");
            }
            ddps_tr_normalize(&val->img[at + i], (float *)x.data + (size_t)i * S * S * 3);
        }
        ddps_tensor y = ddps_tr_model_forward(c, m, &x, 0);
        for (int i = 0; !be->failed && i < n; i++) {
            const float *l = (const float *)y.data + (size_t)i * y.c;
            int lab = val->labels[at + i];
            float mine = l[tmap ? tmap[lab] : lab];
            int above = 0; /* classes scoring higher than the true one (ties count for the true one) */
            for (int k = 0; k < (tmap ? K : y.c); k++) above += l[tmap ? tmap[k] : k] > mine;
            hit1 += above == 0;
            hit5 += above < 5;
        }
        ddps_release(be, mark);
    }
    if (ddps_backend_error(be, err)) return -1;
    *top1 = (double)hit1 / val->n;
    *top5 = (double)hit5 / val->n;
    return 0;
}

static float lr_at(const tr_fit_opts *o, long epoch, long step) {
    if (o->rded_lr) return (float)(o->sched.lr * 0.5 * (1.0 + cos(M_PI * (double)epoch / o->epochs / 2.0)));
    return ddps_tr_sched_lr(&o->sched, o->sched_per_step ? step : epoch);
}

/* The batches of one epoch; the mean loss into *loss. */
/* whole: the run's progress line (done counted from base), or NULL for a line per epoch. */
static int run_epoch(tr_ctx *c, const tr_fit_opts *o, tr_model *m, tr_optim *opt, const tr_fit_data *d, int e,
                     fit_bufs *b, ddps_progress *whole, long base, double *loss, ddps_err *err) {
    const tr_data *tr = d->train;
    ddps_rng r;
    ddps_tr_sample_rng(&r, ddps_seed_mix(o->seed, 0x5eed0de7), e, -1);
    ddps_tr_permutation(&r, tr->n, b->order);
    int n_batches = (tr->n + o->batch - 1) / o->batch;
    if (n_batches > 1 && tr->n % o->batch == 1) n_batches--; /* a last batch of one sample: batch norm cannot train */
    char label[128];
    snprintf(label, sizeof label, "%s %d/%d", o->label ? o->label : "epoch", e + 1, o->epochs);
    ddps_progress *pr = whole ? whole : ddps_progress_start(label, (long)tr->n, "img", 0);
    double sum = 0;
    int rc = 0, done = 0;
    static long kill_at = -2;
    if (kill_at == -2) kill_at = getenv("DDPS_TRAIN_KILL_AT") ? atol(getenv("DDPS_TRAIN_KILL_AT")) : -1;
    for (int bi = 0; bi < n_batches && !rc; bi++) {
        if (ddps_cancel_requested()) {
            rc = ddps_fail_kind(err, DDPS_KIND_CANCELLED, "cancelled at epoch %d (resume from the last checkpoint)",
                                e + 1);
            break;
        }
        int n = bi * o->batch + o->batch <= tr->n ? o->batch : tr->n - bi * o->batch;
        rc = make_batch(o, tr, b->order + bi * o->batch, n, e, b, err);
        if (rc) break;
        if (o->cutmix) {
            ddps_rng cr;
            int box[4];
            ddps_tr_sample_rng(&cr, ddps_seed_mix(o->seed, 0xc07a1c), e, bi);
            ddps_tr_cutmix(&cr, b->x, n, o->tf.size, o->tf.size, b->tmp, b->perm, box);
        }
        float l = train_step(c, o, m, opt, d, b, n, lr_at(o, e, opt->t));
        if (ddps_backend_error(c->be, err)) rc = -1;
        sum += l;
        done += n;
        ddps_progress_update(pr, base + done);
        if (kill_at > 0 && opt->t == kill_at) raise(SIGKILL);
    }
    if (!whole) ddps_progress_end(pr);
    *loss = sum / n_batches;
    return rc;
}

static void log_epoch(const tr_fit_opts *o, int e, const tr_epoch_log *l) {
    char took[32];
    ddps_format_duration(l->seconds, took, sizeof took);
    if (l->evaluated)
        ddps_info("%s %d/%d: loss %.4f, val top-1 %.2f%%, top-5 %.2f%% (%s)", o->label ? o->label : "epoch", e + 1,
                  o->epochs, l->loss, 100 * l->top1, 100 * l->top5, took);
    else if (o->log_every_epoch)
        ddps_info("%s %d/%d: loss %.4f (%s)", o->label ? o->label : "epoch", e + 1, o->epochs, l->loss, took);
}

static int want_eval(const tr_fit_opts *o, int e) {
    int k = e + 1;
    return k == o->epochs || (o->eval_every > 0 && k % o->eval_every == 0 && k > o->eval_after * o->epochs);
}

int ddps_tr_fit(tr_ctx *c, const tr_fit_opts *o, tr_model *m, const tr_fit_data *d, tr_epoch_log *log,
                ddps_err *err) {
    uint64_t hash = settings_hash(o, m, d);
    tr_optim opt = o->optim;
    memset(log, 0, (size_t)o->epochs * sizeof *log);
    int start = ckpt_load(o->checkpoint, m, &opt, o->epochs, log, hash, err);
    if (start < 0) return -1;
    if (start > 0) ddps_info("%s: resuming after epoch %d of %d", o->checkpoint, start, o->epochs);
    size_t per = (size_t)o->tf.size * o->tf.size * 3;
    fit_bufs b = {ddps_malloc((size_t)o->batch * per * sizeof(float)),
                  ddps_malloc((size_t)o->batch * per * sizeof(float)), ddps_calloc((size_t)o->batch, sizeof(int64_t)),
                  ddps_calloc((size_t)d->train->n, sizeof(int)), ddps_calloc((size_t)o->batch, sizeof(int)),
                  ddps_calloc((size_t)o->batch, sizeof(ddps_err))};
    int rc = 0;
    long per_epoch = d->train->n;
    const char *ce = getenv("DDPS_TRAIN_CKPT_SECONDS");
    double ckpt_every = ce ? atof(ce) : o->ckpt_seconds, last_save = ddps_seconds();
    ddps_progress *whole = o->progress_label && start < o->epochs
                               ? ddps_progress_start(o->progress_label, (o->epochs - start) * per_epoch, "img", 0)
                               : NULL;
    for (int e = start; e < o->epochs && !rc; e++) {
        double t0 = ddps_seconds();
        tr_epoch_log *l = &log[e];
        rc = run_epoch(c, o, m, &opt, d, e, &b, whole, (e - start) * per_epoch, &l->loss, err);
        if (!rc && d->val && want_eval(o, e)) {
            rc = ddps_tr_evaluate(c, m, d->val, NULL, o->eval_batch, &l->top1, &l->top5, err);
            l->evaluated = !rc;
        }
        l->seconds = ddps_seconds() - t0;
        int due = e + 1 == o->epochs || ddps_seconds() - last_save >= ckpt_every;
        if (!rc && o->checkpoint && due) {
            rc = ckpt_save(o->checkpoint, m, &opt, e + 1, o->epochs, log, hash, err);
            last_save = ddps_seconds();
        }
        if (!rc) log_epoch(o, e, l);
    }
    ddps_progress_end(whole);
    free(b.x);
    free(b.tmp);
    free(b.labels);
    free(b.order);
    free(b.perm);
    free(b.errs);
    return rc;
}
