/* ddps.h's training section over src/train: probe train, train, eval. */
#include <string.h>

#include "api/api_internal.h"
#include "train/probe.h"
#include "train/run.h"

DDPS_API void ddps_probe_train_params_init(ddps_probe_train_params *p) { memset(p, 0, sizeof *p); }

DDPS_API ddps_status ddps_probe_train(const ddps_probe_train_params *p, const ddps_hooks *hooks, ddps_error *err) {
    if (!p) return ddps_api_failf(err, DDPS_ERR_USAGE, "probe train: no parameters");
    ddps_err e = {{0}};
    ddps_api_enter(hooks);
    int rc = ddps_tr_probe(p->model, p->weights, p->in, p->out, p->threads, &e);
    ddps_api_leave();
    return rc == 0 ? ddps_api_ok(err) : ddps_api_fail(err, &e);
}

DDPS_API void ddps_train_params_init(ddps_train_params *p) {
    memset(p, 0, sizeof *p);
    p->model = "resnet18-modified";
    p->size = 32;
    p->epochs = 30;
    p->batch = 64;
    p->opt = "sgd";
    p->weight_decay = -1;
    p->momentum = 0.9;
    p->nesterov = 1;
    p->sched = "cosine";
}

DDPS_API ddps_status ddps_train_params_check(const ddps_train_params *p, ddps_error *err) {
    ddps_err e = {{0}};
    return ddps_tr_train_check(p, &e) ? ddps_api_fail(err, &e) : ddps_api_ok(err);
}

DDPS_API ddps_status ddps_run_train(const ddps_train_params *p, const ddps_hooks *hooks, ddps_train_result *out,
                                    ddps_error *err) {
    ddps_err e = {{0}};
    if (out) memset(out, 0, sizeof *out);
    ddps_api_enter(hooks);
    int rc = ddps_tr_train(p, out, &e);
    ddps_api_leave();
    if (rc && out) memset(out, 0, sizeof *out);
    return rc == 0 ? ddps_api_ok(err) : ddps_api_fail(err, &e);
}

DDPS_API void ddps_eval_params_init(ddps_eval_params *p) {
    memset(p, 0, sizeof *p);
    p->teacher_model = "resnet18";
    p->student = "resnet18";
    p->students = 5;
    p->epochs = 300;
    p->lr = 1e-3;
    p->weight_decay = 0.01;
    p->temperature = 20;
    p->factor = 2;
    p->cutmix = 1;
    p->eval_every = 10;
}

DDPS_API ddps_status ddps_eval_params_check(const ddps_eval_params *p, ddps_error *err) {
    ddps_err e = {{0}};
    return ddps_tr_eval_check(p, &e) ? ddps_api_fail(err, &e) : ddps_api_ok(err);
}

DDPS_API ddps_status ddps_run_eval(const ddps_eval_params *p, const ddps_hooks *hooks, ddps_eval_result *out,
                                   ddps_error *err) {
    ddps_err e = {{0}};
    if (out) memset(out, 0, sizeof *out);
    ddps_api_enter(hooks);
    int rc = ddps_tr_eval(p, hooks, out, &e);
    ddps_api_leave();
    if (rc && out) memset(out, 0, sizeof *out);
    return rc == 0 ? ddps_api_ok(err) : ddps_api_fail(err, &e);
}
