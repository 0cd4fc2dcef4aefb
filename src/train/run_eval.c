/* `ddps eval`: RDED's evaluation protocol of a distilled set (ddps.h's
 * ddps_run_eval): students trained on the distilled images with a teacher's
 * soft labels, top-1 on the real validation set. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "pipeline/dataset.h"
#include "tools/tools.h"
#include "train/run.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/progress.h"

/* The class names of a set in ImageFolder order, and (distilled sets)
 * idx_to_imagenet from class_to_idx.json (-1 where null; NULL when absent). */
typedef struct {
    int n;
    char **names;
    int *imagenet;
} class_list;

static void class_list_free(class_list *c) {
    for (int i = 0; i < c->n; i++) free(c->names[i]);
    free(c->names);
    free(c->imagenet);
    memset(c, 0, sizeof *c);
}

static int folder_classes(const char *root, class_list *c, ddps_err *err) {
    ddps_dataset ds = {0};
    if (ddps_dataset_scan(root, NULL, &ds, err)) return -1;
    c->n = ds.n_classes;
    c->names = ddps_calloc((size_t)c->n, sizeof *c->names);
    for (int i = 0; i < c->n; i++) c->names[i] = ddps_strdup(ds.classes[i].name);
    ddps_dataset_free(&ds);
    return 0;
}

/* class_to_idx.json's "classes" (class names by imagefolder_index) and idx_to_imagenet. */
static int map_classes(const char *path, int n_folders, class_list *c, ddps_err *err) {
    json_t *root;
    if (ddps_json_load(path, &root, err)) return -1;
    json_t *cls = json_object_get(root, "classes"), *i2n = json_object_get(root, "idx_to_imagenet");
    int rc = 0;
    if (!json_is_array(cls) || (int)json_array_size(cls) != n_folders || (i2n && !json_is_array(i2n)) ||
        (i2n && json_array_size(i2n) != json_array_size(cls)))
        rc = ddps_fail_kind(err, DDPS_KIND_DATA, "%s: 'classes' is not a list of the %d class folders", path, n_folders);
    c->n = rc ? 0 : n_folders;
    c->names = ddps_calloc((size_t)(c->n ? c->n : 1), sizeof *c->names);
    if (!rc && i2n) c->imagenet = ddps_calloc((size_t)c->n, sizeof *c->imagenet);
    for (int i = 0; !rc && i < c->n; i++) {
        json_t *e = json_array_get(cls, (size_t)i), *name = json_object_get(e, "class");
        if (!json_is_string(name)) {
            rc = ddps_fail_kind(err, DDPS_KIND_DATA, "%s: classes[%d] has no 'class' name", path, i);
            break;
        }
        c->names[i] = ddps_strdup(json_string_value(name));
        json_t *k = i2n ? json_array_get(i2n, (size_t)i) : NULL;
        if (c->imagenet) c->imagenet[i] = json_is_integer(k) ? (int)json_integer_value(k) : -1;
    }
    json_decref(root);
    if (rc) class_list_free(c);
    return rc;
}

/* The class names (class_to_idx.json's when present, else the folders) and, in folders, the folder names. */
static int distilled_classes(const char *dir, class_list *c, class_list *folders, ddps_err *err) {
    if (folder_classes(dir, folders, err)) return -1;
    char *js = ddps_path_join(dir, "class_to_idx.json");
    int rc = ddps_is_file(js) ? map_classes(js, folders->n, c, err) : folder_classes(dir, c, err);
    free(js);
    return rc;
}

static int same_list(const class_list *a, const class_list *b) {
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->names[i], b->names[i]) != 0) return 0;
    return 1;
}

/* The one-line refusal of a class mismatch (usage: checked before any work). */
static int compare_classes(const ddps_eval_params *p, const class_list *d, const class_list *v, ddps_err *err) {
    int n = d->n > v->n ? d->n : v->n;
    for (int i = 0; i < n; i++) {
        const char *a = i < d->n ? d->names[i] : NULL, *b = i < v->n ? v->names[i] : NULL;
        if (a && b && strcmp(a, b) == 0) continue;
        char *da = a ? ddps_display_name(a) : ddps_strdup("(none)"), *db = b ? ddps_display_name(b) : ddps_strdup("(none)");
        ddps_fail_usage(err, "eval: class %d of --distilled %s is '%s' but of --val %s '%s' (%d and %d classes)", i,
                        p->distilled, da, p->val, db, d->n, v->n);
        free(da);
        free(db);
        return -1;
    }
    return 0;
}

static int range_checks(const ddps_eval_params *p, ddps_err *err) {
    if (p->students < 1 || p->students > DDPS_EVAL_MAX_STUDENTS)
        return ddps_fail_usage(err, "eval: --students %d: not in 1..%d", p->students, DDPS_EVAL_MAX_STUDENTS);
    if (p->size != 0 && (p->size < 8 || p->size > 1024)) return ddps_fail_usage(err, "eval: --size %d: not in 8..1024", p->size);
    if (p->epochs < 1 || p->epochs > 100000) return ddps_fail_usage(err, "eval: --epochs %d: not in 1..100000", p->epochs);
    if (p->batch != 0 && (p->batch < 2 || p->batch > 4096)) return ddps_fail_usage(err, "eval: --batch %d: not in 2..4096", p->batch);
    if (!(p->lr > 0 && p->lr < 100)) return ddps_fail_usage(err, "eval: --lr %g: not in (0, 100)", p->lr);
    if (!(p->weight_decay >= 0 && p->weight_decay < 10)) return ddps_fail_usage(err, "eval: --wd %g: not in [0, 10)", p->weight_decay);
    if (!(p->temperature > 0 && p->temperature < 1000)) return ddps_fail_usage(err, "eval: --temperature %g: not in (0, 1000)", p->temperature);
    if (p->factor < 1 || p->factor > 8) return ddps_fail_usage(err, "eval: --factor %d: not in 1..8", p->factor);
    if (!(p->min_scale >= 0 && p->min_scale <= 1)) return ddps_fail_usage(err, "eval: --min-scale %g: not in [0, 1]", p->min_scale);
    if (p->eval_every < 1) return ddps_fail_usage(err, "eval: --eval-every %d: must be >= 1", p->eval_every);
    if (p->threads < 0 || p->threads > 4096) return ddps_fail_usage(err, "eval: --threads %d: not in 0..4096", p->threads);
    return 0;
}

int ddps_tr_eval_check(const ddps_eval_params *p, ddps_err *err) {
    if (!p) return ddps_fail_usage(err, "eval: no parameters");
    if (!p->distilled || !p->val || !p->teacher)
        return ddps_fail_usage(err, "eval: --distilled, --val and --teacher are required");
    if (ddps_tr_arch_check("eval: --teacher-model", p->teacher_model, err) ||
        ddps_tr_arch_check("eval: --student", p->student, err) || range_checks(p, err))
        return -1;
    if (!ddps_is_dir(p->distilled)) return ddps_fail_usage(err, "eval: --distilled %s: not a folder", p->distilled);
    if (!ddps_is_dir(p->val)) return ddps_fail_usage(err, "eval: --val %s: not a folder", p->val);
    char *teacher = ddps_tr_weights_path(p->teacher, err);
    if (!teacher) return ddps_fail_prefix(err, "eval: --teacher");
    free(teacher);
    class_list d = {0}, f = {0}, v = {0};
    int rc = distilled_classes(p->distilled, &d, &f, err);
    if (!rc) rc = folder_classes(p->val, &v, err);
    /* Val's folders may be the distilled set's class names (wnids) or its folder names (RDED's 00000...). */
    if (!rc && !same_list(&f, &v)) rc = compare_classes(p, &d, &v, err);
    class_list_free(&d);
    class_list_free(&f);
    class_list_free(&v);
    return rc;
}

/* tmap[k]: the teacher's row for student class k, by the teacher's .json classes (from `ddps train`),
 * idx_to_imagenet (a 1000-class teacher), or one to one. */
static int teacher_map(const char *teacher, const class_list *d, int K, int *tmap, ddps_err *err) {
    char *js = strlen(teacher) > 12 && strcmp(teacher + strlen(teacher) - 12, ".safetensors") == 0
                   ? ddps_tr_json_sibling(teacher)
                   : NULL;
    json_t *root = NULL, *cls = NULL;
    if (js && ddps_is_file(js) && ddps_json_load(js, &root, err) == 0) cls = json_object_get(root, "classes");
    int rc = 0;
    for (int k = 0; k < d->n && !rc; k++) {
        tmap[k] = -1;
        if (json_is_array(cls)) {
            for (size_t j = 0; j < json_array_size(cls); j++)
                if (json_is_string(json_array_get(cls, j)) && strcmp(json_string_value(json_array_get(cls, j)), d->names[k]) == 0)
                    tmap[k] = (int)j;
        } else if (K == 1000 && d->imagenet) {
            tmap[k] = d->imagenet[k];
        } else if (K == d->n) {
            tmap[k] = k;
        }
        if (tmap[k] < 0 || tmap[k] >= K)
            rc = ddps_fail_kind(err, DDPS_KIND_DATA, "%s: no teacher row for class '%s' (%d teacher classes%s)",
                                teacher, d->names[k], K, json_is_array(cls) ? ", names from its .json" : "");
    }
    if (!rc && !json_is_array(cls) && !(K == 1000 && d->imagenet))
        ddps_info("eval: %s has no class names (.json): its %d rows are taken in the student's class order", teacher, K);
    json_decref(root);
    free(js);
    return rc;
}

/* RDED's batch: 10 / 50 / 100 for IPC 1 / 10 / 50, doubled at >= 100 classes, at most the set. */
static int rded_batch(int n_images, int n_classes) {
    int ipc = n_images / (n_classes ? n_classes : 1);
    int b = ipc <= 1 ? 10 : ipc <= 10 ? 50 : 100;
    if (n_classes >= 100) b *= 2;
    return b < n_images ? b : n_images;
}

static void eval_opts(const ddps_eval_params *p, int size, int batch, tr_fit_opts *o) {
    memset(o, 0, sizeof *o);
    o->epochs = p->epochs;
    o->batch = batch;
    o->optim = ddps_tr_optim_defaults(TR_ADAMW);
    o->optim.weight_decay = (float)p->weight_decay;
    o->sched.lr = (float)p->lr;
    o->rded_lr = 1;
    o->temperature = (float)p->temperature;
    o->cutmix = p->cutmix;
    double lo = p->min_scale > 0 ? p->min_scale : 1.0 / p->factor;
    o->tf = (tr_transform){size, 1, p->factor, {lo, 1.0, 3.0 / 4.0, 4.0 / 3.0}, 0.5};
    o->eval_batch = 100;
    o->eval_every = p->eval_every;
    o->eval_after = 0.8;
    o->threads = p->threads;
    o->log_every_epoch = 0;
    /* RDED's small sets make epochs of one step: a ResNet-18 checkpoint (135 MB with the moments) after each
     * would cost more than the step. A resume still starts at an epoch boundary, bit for bit. */
    o->ckpt_seconds = 20;
}

typedef struct {
    uint64_t seed;
    double top1, top5, best1, best5, seconds;
    tr_epoch_log *log;
} student_res;

static int run_student(tr_ctx *c, const ddps_eval_params *p, tr_fit_opts *o, const tr_fit_data *fd, int K, int i,
                       const char *ckdir, student_res *r, ddps_err *err) {
    char ck[4096], label[64], plabel[64];
    snprintf(ck, sizeof ck, "%s/student-%d.ckpt", ckdir, i);
    snprintf(label, sizeof label, "student %d/%d epoch", i + 1, p->students);
    snprintf(plabel, sizeof plabel, "student %d/%d", i + 1, p->students);
    r->seed = p->seed + (uint64_t)i;
    r->log = ddps_calloc((size_t)p->epochs, sizeof *r->log);
    o->seed = r->seed;
    o->checkpoint = ck;
    o->label = label;
    o->progress_label = plabel;
    tr_model *m = ddps_tr_model_new(p->student, K, o->tf.size, r->seed, err);
    int rc = m ? ddps_tr_fit(c, o, m, fd, r->log, err) : -1;
    ddps_tr_model_free(m);
    if (rc) return -1;
    r->best1 = r->best5 = 0;
    for (int e = 0; e < p->epochs; e++) {
        r->seconds += r->log[e].seconds;
        if (r->log[e].evaluated && r->log[e].top1 > r->best1) r->best1 = r->log[e].top1;
        if (r->log[e].evaluated && r->log[e].top5 > r->best5) r->best5 = r->log[e].top5;
    }
    r->top1 = r->log[p->epochs - 1].top1;
    r->top5 = r->log[p->epochs - 1].top5;
    return 0;
}

static json_t *settings_json(const ddps_eval_params *p, const tr_fit_opts *o, int n_images) {
    json_t *s = json_object();
    json_object_set_new(s, "teacher", json_string(p->teacher));
    json_object_set_new(s, "teacher_model", json_string(p->teacher_model));
    json_object_set_new(s, "student", json_string(p->student));
    json_object_set_new(s, "val", json_string(p->val));
    json_object_set_new(s, "images", json_integer(n_images));
    json_object_set_new(s, "size", json_integer(o->tf.size));
    json_object_set_new(s, "epochs", json_integer(p->epochs));
    json_object_set_new(s, "batch", json_integer(o->batch));
    json_object_set_new(s, "lr", json_real(p->lr));
    json_object_set_new(s, "weight_decay", json_real(p->weight_decay));
    json_object_set_new(s, "temperature", json_real(p->temperature));
    json_object_set_new(s, "factor", json_integer(p->factor));
    json_object_set_new(s, "min_scale", json_real(o->tf.rrc.scale_lo));
    json_object_set_new(s, "cutmix", json_boolean(p->cutmix));
    json_object_set_new(s, "eval_every", json_integer(p->eval_every));
    json_object_set_new(s, "val_resize", json_integer(ddps_tr_val_resize(o->tf.size)));
    return s;
}

static int write_eval_json(const ddps_eval_params *p, const char *path, const tr_fit_opts *o, int n_images,
                           const student_res *r, const ddps_eval_result *res, ddps_err *err) {
    json_t *root = json_object(), *st = json_array();
    json_object_set_new(root, "ddps_version", json_string(ddps_version()));
    json_object_set_new(root, "distilled", json_string(p->distilled));
    json_object_set_new(root, "settings", settings_json(p, o, n_images));
    for (int i = 0; i < p->students; i++) {
        json_t *s = json_object();
        json_object_set_new(s, "seed", json_integer((json_int_t)r[i].seed));
        json_object_set_new(s, "top1", json_real(r[i].top1));
        json_object_set_new(s, "top5", json_real(r[i].top5));
        json_object_set_new(s, "best_top1", json_real(r[i].best1));
        json_object_set_new(s, "best_top5", json_real(r[i].best5));
        json_object_set_new(s, "epochs", json_integer(p->epochs));
        json_object_set_new(s, "seconds", json_real(r[i].seconds));
        json_object_set_new(s, "log", ddps_tr_log_json(r[i].log, p->epochs));
        json_array_append_new(st, s);
    }
    json_object_set_new(root, "students", st);
    json_object_set_new(root, "top1_mean", json_real(res->top1_mean));
    json_object_set_new(root, "top1_std", json_real(res->top1_std));
    json_object_set_new(root, "top5_mean", json_real(res->top5_mean));
    int rc = ddps_tr_write_json(path, root, err);
    json_decref(root);
    return rc;
}

static void summarize(const ddps_eval_params *p, const student_res *r, ddps_eval_result *res, const ddps_hooks *h) {
    double s1 = 0, s5 = 0, ss = 0;
    res->students = p->students;
    for (int i = 0; i < p->students; i++) {
        s1 += r[i].top1, s5 += r[i].top5;
        res->top1[i] = r[i].top1;
        res->best_top1[i] = r[i].best1;
    }
    res->top1_mean = s1 / p->students;
    res->top5_mean = s5 / p->students;
    for (int i = 0; i < p->students; i++) ss += (r[i].top1 - res->top1_mean) * (r[i].top1 - res->top1_mean);
    res->top1_std = sqrt(ss / p->students);
    ddps_tools_out(h, "student  seed        top-1   top-5   best top-1  best top-5   time");
    for (int i = 0; i < p->students; i++) {
        char took[32];
        ddps_format_duration(r[i].seconds, took, sizeof took);
        ddps_tools_out(h, "%7d  %-10llu %6.2f  %6.2f  %10.2f  %10.2f   %s", i + 1, (unsigned long long)r[i].seed,
                       100 * r[i].top1, 100 * r[i].top5, 100 * r[i].best1, 100 * r[i].best5, took);
    }
    ddps_tools_out(h, "top-1 %.2f +- %.2f %% (mean +- std of %d students), top-5 %.2f %%", 100 * res->top1_mean,
                   100 * res->top1_std, p->students, 100 * res->top5_mean);
}

/* The distilled set (labels by the distilled folders' order), val at size, the teacher and its row map. */
typedef struct {
    class_list cls;
    tr_data train, val;
    tr_model *teacher;
    int *tmap;
    int size;
} eval_inputs;

static int eval_load(const ddps_eval_params *p, eval_inputs *in, ddps_err *err) {
    class_list folders = {0};
    int rc = distilled_classes(p->distilled, &in->cls, &folders, err);
    class_list_free(&folders);
    if (rc) return -1;
    tr_data_opts to = {p->size ? 2 * p->size : 0, 0, 0, p->threads};
    if (ddps_tr_data_load(p->distilled, &to, &in->train, err)) return -1;
    in->size = p->size ? p->size : in->train.img[0].w;
    if (in->size < 8 || in->size > 1024)
        return ddps_fail_kind(err, DDPS_KIND_DATA, "%s: images of width %d (give --size 8..1024)", p->distilled,
                              in->size);
    tr_data_opts vo = {0, in->size, ddps_tr_val_resize(in->size), p->threads};
    if (ddps_tr_data_load(p->val, &vo, &in->val, err)) return -1;
    char *teacher = ddps_tr_weights_path(p->teacher, err);
    int K = teacher ? ddps_tr_weights_classes(teacher, err) : -1;
    if (K >= 0) {
        in->tmap = ddps_calloc((size_t)in->cls.n, sizeof *in->tmap);
        if (teacher_map(teacher, &in->cls, K, in->tmap, err)) K = -1;
    }
    if (K >= 0) in->teacher = ddps_tr_model_new(p->teacher_model, K, in->size, 0, err);
    if (K >= 0 && (!in->teacher || ddps_tr_model_load(in->teacher, teacher, err))) K = -1;
    if (K >= 0)
        ddps_info("eval: %d distilled images of %d classes, %d validation images, teacher %s (%d classes), size %d",
                  in->train.n, in->cls.n, in->val.n, teacher, K, in->size);
    free(teacher);
    return K >= 0 ? 0 : -1;
}

static void eval_inputs_free(eval_inputs *in) {
    class_list_free(&in->cls);
    ddps_tr_data_free(&in->train);
    ddps_tr_data_free(&in->val);
    ddps_tr_model_free(in->teacher);
    free(in->tmap);
}

int ddps_tr_eval(const ddps_eval_params *p, const ddps_hooks *h, ddps_eval_result *res, ddps_err *err) {
    if (ddps_tr_eval_check(p, err)) return -1;
    double t0 = ddps_seconds();
    eval_inputs in = {0};
    ddps_backend *be = NULL;
    tr_ctx *c = NULL;
    student_res *r = ddps_calloc((size_t)p->students, sizeof *r);
    char *ckdir = ddps_path_join(p->distilled, ".ddps-eval");
    char *out = p->out ? ddps_strdup(p->out) : ddps_path_join(p->distilled, "eval.json");
    tr_fit_opts o;
    int rc = eval_load(p, &in, err);
    if (!rc) eval_opts(p, in.size, p->batch ? p->batch : rded_batch(in.train.n, in.cls.n), &o);
    if (!rc && o.batch > in.train.n) o.batch = in.train.n;
    if (!rc && !(be = ddps_backend_new("cpu", DDPS_PREC_F32, p->threads, err))) rc = -1;
    if (!rc && !(c = ddps_tr_ctx_new(be, err))) rc = -1;
    if (!rc) rc = ddps_mkdirs(ckdir, err);
    tr_fit_data fd = {&in.train, &in.val, in.teacher, in.tmap};
    for (int i = 0; !rc && i < p->students; i++) {
        rc = run_student(c, p, &o, &fd, in.cls.n, i, ckdir, &r[i], err);
        if (!rc)
            ddps_info("eval: student %d/%d (seed %llu): top-1 %.2f%%, best %.2f%%", i + 1, p->students,
                      (unsigned long long)r[i].seed, 100 * r[i].top1, 100 * r[i].best1);
    }
    ddps_eval_result tmp;
    if (!res) res = &tmp;
    if (!rc) summarize(p, r, res, h);
    if (!rc) rc = write_eval_json(p, out, &o, in.train.n, r, res, err);
    if (!rc) ddps_remove_tree(ckdir, NULL);
    res->seconds = ddps_seconds() - t0;
    for (int i = 0; i < p->students; i++) free(r[i].log);
    free(r);
    free(ckdir);
    free(out);
    ddps_tr_ctx_free(c);
    if (be) ddps_backend_free(be);
    eval_inputs_free(&in);
    return rc;
}
