/* `ddps train`: a classifier from scratch with hard labels (ddps.h's
 * ddps_run_train; the loop is train/fit.c). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ddps.h"
#include "pipeline/dataset.h"
#include "train/fit.h"
#include "train/run.h"
#include "util/fs.h"
#include "util/progress.h"

static int arch_ok(const char *a) {
    return a && (strcmp(a, "resnet18") == 0 || strcmp(a, "resnet18-modified") == 0 ||
                 (strncmp(a, "convnet", 7) == 0 && a[7] >= '3' && a[7] <= '6' && a[8] == 0));
}

int ddps_tr_arch_check(const char *flag, const char *arch, ddps_err *err) {
    if (!arch_ok(arch))
        return ddps_fail_usage(err, "%s %s: not resnet18, resnet18-modified or convnet3..convnet6", flag,
                               arch ? arch : "(none)");
    return 0;
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

/* --data and --val must have the same class folders (usage error naming the first difference). */
static int same_classes(const char *data, const char *val, ddps_err *err) {
    ddps_dataset a = {0}, b = {0};
    int rc = ddps_dataset_scan(data, NULL, &a, err) || ddps_dataset_scan(val, NULL, &b, err) ? -1 : 0;
    int n = a.n_classes > b.n_classes ? a.n_classes : b.n_classes;
    for (int i = 0; !rc && i < n; i++) {
        const char *x = i < a.n_classes ? a.classes[i].name : "(none)", *y = i < b.n_classes ? b.classes[i].name : "(none)";
        if (strcmp(x, y) == 0) continue;
        char *dx = ddps_display_name(x), *dy = ddps_display_name(y);
        rc = ddps_fail_usage(err, "train: class %d of --data %s is '%s' but of --val %s '%s' (%d and %d classes)", i,
                             data, dx, val, dy, a.n_classes, b.n_classes);
        free(dx);
        free(dy);
    }
    ddps_dataset_free(&a);
    ddps_dataset_free(&b);
    return rc;
}

int ddps_tr_train_check(const ddps_train_params *p, ddps_err *err) {
    if (!p) return ddps_fail_usage(err, "train: no parameters");
    if (!p->data || !p->out) return ddps_fail_usage(err, "train: --data and --out are required");
    if (!ddps_is_dir(p->data)) return ddps_fail_usage(err, "train: --data %s: not a folder", p->data);
    if (p->val && !ddps_is_dir(p->val)) return ddps_fail_usage(err, "train: --val %s: not a folder", p->val);
    if (!ends_with(p->out, ".safetensors")) return ddps_fail_usage(err, "train: --out %s: must end in .safetensors", p->out);
    if (ddps_tr_arch_check("train: --model", p->model, err)) return -1;
    if (p->size < 8 || p->size > 1024) return ddps_fail_usage(err, "train: --size %d: not in 8..1024", p->size);
    if (p->epochs < 1 || p->epochs > 100000) return ddps_fail_usage(err, "train: --epochs %d: not in 1..100000", p->epochs);
    if (p->batch < 2 || p->batch > 4096) return ddps_fail_usage(err, "train: --batch %d: not in 2..4096", p->batch);
    if (!p->opt || (strcmp(p->opt, "sgd") != 0 && strcmp(p->opt, "adamw") != 0))
        return ddps_fail_usage(err, "train: --opt %s: not sgd or adamw", p->opt ? p->opt : "(none)");
    if (!p->sched || ddps_tr_sched_parse(p->sched) < 0)
        return ddps_fail_usage(err, "train: --sched %s: not constant, linear or cosine", p->sched ? p->sched : "(none)");
    if (!(p->lr >= 0 && p->lr < 100)) return ddps_fail_usage(err, "train: --lr %g: not in [0, 100)", p->lr);
    if (!(p->weight_decay == -1 || (p->weight_decay >= 0 && p->weight_decay < 10)))
        return ddps_fail_usage(err, "train: --wd %g: not in [0, 10)", p->weight_decay);
    if (!(p->momentum >= 0 && p->momentum < 1)) return ddps_fail_usage(err, "train: --momentum %g: not in [0, 1)", p->momentum);
    if (p->warmup < 0 || p->warmup > p->epochs) return ddps_fail_usage(err, "train: --warmup %d: not in 0..epochs", p->warmup);
    if (!(p->label_smoothing >= 0 && p->label_smoothing < 1))
        return ddps_fail_usage(err, "train: --label-smoothing %g: not in [0, 1)", p->label_smoothing);
    if (!(p->crop_scale >= 0 && p->crop_scale <= 1))
        return ddps_fail_usage(err, "train: --crop-scale %g: not in [0, 1]", p->crop_scale);
    if (p->threads < 0 || p->threads > 4096) return ddps_fail_usage(err, "train: --threads %d: not in 0..4096", p->threads);
    return p->val ? same_classes(p->data, p->val, err) : 0;
}

char *ddps_tr_json_sibling(const char *safetensors) {
    size_t n = strlen(safetensors) - strlen(".safetensors");
    char *s = ddps_malloc(n + 6);
    memcpy(s, safetensors, n);
    memcpy(s + n, ".json", 6);
    return s;
}

json_t *ddps_tr_log_json(const tr_epoch_log *log, int epochs) {
    json_t *a = json_array();
    for (int e = 0; e < epochs; e++) {
        json_t *o = json_object();
        json_object_set_new(o, "epoch", json_integer(e + 1));
        json_object_set_new(o, "loss", json_real(log[e].loss));
        if (log[e].evaluated) {
            json_object_set_new(o, "top1", json_real(log[e].top1));
            json_object_set_new(o, "top5", json_real(log[e].top5));
        }
        json_object_set_new(o, "seconds", json_real(log[e].seconds));
        json_array_append_new(a, o);
    }
    return a;
}

int ddps_tr_write_json(const char *path, json_t *root, ddps_err *err) {
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    int rc = text ? ddps_write_file_atomic(path, text, strlen(text), err) : ddps_fail(err, "%s: cannot format", path);
    free(text);
    return rc;
}

static int write_meta(const ddps_train_params *p, const tr_fit_opts *o, const tr_data *d, const tr_epoch_log *log,
                      ddps_err *err) {
    json_t *root = json_object(), *cls = json_array(), *set = json_object();
    for (int c = 0; c < d->n_classes; c++) json_array_append_new(cls, json_string(d->classes[c]));
    json_object_set_new(root, "ddps_version", json_string(ddps_version()));
    json_object_set_new(root, "model", json_string(p->model));
    json_object_set_new(root, "size", json_integer(p->size));
    json_object_set_new(root, "classes", cls);
    json_object_set_new(set, "data", json_string(p->data));
    if (p->val) json_object_set_new(set, "val", json_string(p->val));
    json_object_set_new(set, "epochs", json_integer(p->epochs));
    json_object_set_new(set, "batch", json_integer(p->batch));
    json_object_set_new(set, "opt", json_string(p->opt));
    json_object_set_new(set, "lr", json_real(o->sched.lr));
    json_object_set_new(set, "weight_decay", json_real(o->optim.weight_decay));
    json_object_set_new(set, "momentum", json_real(o->optim.momentum));
    json_object_set_new(set, "nesterov", json_boolean(o->optim.nesterov));
    json_object_set_new(set, "sched", json_string(p->sched));
    json_object_set_new(set, "warmup", json_integer(p->warmup));
    json_object_set_new(set, "label_smoothing", json_real(p->label_smoothing));
    json_object_set_new(set, "crop_scale", json_real(o->tf.rrc.scale_lo));
    json_object_set_new(set, "seed", json_integer((json_int_t)p->seed));
    json_object_set_new(root, "settings", set);
    json_object_set_new(root, "epochs", ddps_tr_log_json(log, p->epochs));
    char *path = ddps_tr_json_sibling(p->out);
    int rc = ddps_tr_write_json(path, root, err);
    free(path);
    json_decref(root);
    return rc;
}

static void train_opts(const ddps_train_params *p, tr_fit_opts *o, const char *ckpt) {
    int sgd = strcmp(p->opt, "sgd") == 0;
    memset(o, 0, sizeof *o);
    o->epochs = p->epochs;
    o->batch = p->batch;
    o->optim = ddps_tr_optim_defaults(sgd ? TR_SGD : TR_ADAMW);
    o->optim.weight_decay = (float)(p->weight_decay >= 0 ? p->weight_decay : sgd ? 5e-4 : 0.01);
    o->optim.momentum = (float)p->momentum;
    o->optim.nesterov = p->nesterov;
    o->sched = (tr_sched){ddps_tr_sched_parse(p->sched), (float)(p->lr > 0 ? p->lr : sgd ? 0.1 : 1e-3), 0,
                          p->warmup, p->epochs};
    o->label_smoothing = (float)p->label_smoothing;
    double lo = p->crop_scale > 0 ? p->crop_scale : p->size >= 128 ? 0.08 : 0.35;
    o->tf = (tr_transform){p->size, 1, 1, {lo, 1.0, 3.0 / 4.0, 4.0 / 3.0}, 0.5};
    o->eval_batch = 100;
    o->eval_every = 1;
    o->seed = p->seed;
    o->threads = p->threads;
    o->checkpoint = ckpt;
    o->label = "epoch";
    o->log_every_epoch = 1;
}

/* Loads train and val, for the run's size. */
static int load_sets(const ddps_train_params *p, tr_data *tr, tr_data *va, ddps_err *err) {
    tr_data_opts to = {p->size * 2 > 64 ? p->size * 2 : 64, 0, 0, p->threads};
    tr_data_opts vo = {0, p->size, ddps_tr_val_resize(p->size), p->threads};
    if (ddps_tr_data_load(p->data, &to, tr, err)) return -1;
    if (p->val && ddps_tr_data_load(p->val, &vo, va, err)) return -1;
    ddps_info("train: %d images of %d classes%s", tr->n, tr->n_classes, p->val ? "" : " (no validation)");
    return 0;
}

int ddps_tr_train(const ddps_train_params *p, ddps_train_result *res, ddps_err *err) {
    if (ddps_tr_train_check(p, err)) return -1;
    double t0 = ddps_seconds();
    tr_data tr = {0}, va = {0};
    char *ckpt = p->checkpoint ? ddps_strdup(p->checkpoint) : NULL;
    if (!ckpt) {
        ckpt = ddps_malloc(strlen(p->out) + 6);
        sprintf(ckpt, "%s.ckpt", p->out);
    }
    tr_model *m = NULL;
    ddps_backend *be = NULL;
    tr_ctx *c = NULL;
    tr_epoch_log *log = ddps_calloc((size_t)p->epochs, sizeof *log);
    tr_fit_opts o;
    train_opts(p, &o, ckpt);
    int rc = load_sets(p, &tr, &va, err);
    if (!rc && !(m = ddps_tr_model_new(p->model, tr.n_classes, p->size, p->seed, err))) rc = -1;
    if (!rc && !(be = ddps_backend_new("cpu", DDPS_PREC_F32, p->threads, err))) rc = -1;
    if (!rc && !(c = ddps_tr_ctx_new(be, err))) rc = -1;
    tr_fit_data fd = {&tr, p->val ? &va : NULL, NULL, NULL};
    if (!rc) rc = ddps_tr_fit(c, &o, m, &fd, log, err);
    if (!rc) rc = ddps_tr_model_save(m, p->out, err);
    if (!rc) rc = write_meta(p, &o, &tr, log, err);
    if (!rc) unlink(ckpt);
    if (!rc && res) {
        const tr_epoch_log *l = &log[p->epochs - 1];
        *res = (ddps_train_result){p->epochs, tr.n_classes, tr.n, l->loss, p->val ? l->top1 : -1,
                                   p->val ? l->top5 : -1, ddps_seconds() - t0};
    }
    ddps_tr_ctx_free(c);
    if (be) ddps_backend_free(be);
    ddps_tr_model_free(m);
    ddps_tr_data_free(&tr);
    ddps_tr_data_free(&va);
    free(log);
    free(ckpt);
    return rc;
}
