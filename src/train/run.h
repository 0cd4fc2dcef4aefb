/* The drivers of `ddps train` and `ddps eval` (ddps.h's ddps_run_train,
 * ddps_run_eval and their checks) and what they share. */
#ifndef DDPS_TRAIN_RUN_H
#define DDPS_TRAIN_RUN_H

#include <jansson.h>

#include "ddps.h"
#include "train/fit.h"
#include "util/err.h"

int ddps_tr_train_check(const ddps_train_params *p, ddps_err *err);
int ddps_tr_train(const ddps_train_params *p, ddps_train_result *res, ddps_err *err);
int ddps_tr_eval_check(const ddps_eval_params *p, ddps_err *err);
int ddps_tr_eval(const ddps_eval_params *p, const ddps_hooks *h, ddps_eval_result *res, ddps_err *err);

/* Usage error naming flag unless arch is a known model name. */
int ddps_tr_arch_check(const char *flag, const char *arch, ddps_err *err);
/* "X.safetensors" -> "X.json" (heap). */
char *ddps_tr_json_sibling(const char *safetensors);
/* [{"epoch", "loss", "top1", "top5" (evaluated epochs), "seconds"}, ...] */
json_t *ddps_tr_log_json(const tr_epoch_log *log, int epochs);
/* Writes root as indented JSON, atomically. */
int ddps_tr_write_json(const char *path, json_t *root, ddps_err *err);

#endif
