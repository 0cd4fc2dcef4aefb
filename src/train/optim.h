/* Optimisers and learning-rate schedules for training on the engine.
 *
 * AdamW is PyTorch's (decoupled weight decay: p -= lr wd p before the Adam
 * update; bias-corrected moments; denominator sqrt(v)/sqrt(1-b2^t) + eps).
 * SGD is PyTorch's (coupled weight decay g += wd p; momentum buffer equal to
 * the first gradient, then buf = momentum buf + g; Nesterov g + momentum buf).
 * Weight decay applies only to parameters with more than one dimension
 * (RDED's parameter groups: no decay on biases and norm weights). Buffers
 * are never touched.
 */
#ifndef DDPS_TRAIN_OPTIM_H
#define DDPS_TRAIN_OPTIM_H

#include "train/tops.h"

typedef enum { TR_ADAMW = 1, TR_SGD } tr_opt_kind;

typedef struct {
    tr_opt_kind kind;
    float weight_decay;
    float beta1, beta2, eps; /* AdamW (0.9, 0.999, 1e-8 by ddps_tr_optim_defaults) */
    float momentum;          /* SGD */
    int nesterov;
    long t; /* steps taken */
} tr_optim;

/* PyTorch's defaults for kind (weight decay 0.01 for AdamW, 0 for SGD). */
tr_optim ddps_tr_optim_defaults(tr_opt_kind kind);
/* One step with learning rate lr over params [0, np) (state allocated on first use). */
void ddps_tr_optim_step(tr_optim *o, tr_param *p, int np, float lr);

typedef enum { TR_SCHED_CONSTANT = 0, TR_SCHED_LINEAR, TR_SCHED_COSINE } tr_sched_kind;

/* lr at step (or epoch) i of total: linear warm-up from lr/warmup to lr over
 * the first warmup steps, then constant, linear decay or cosine decay to min_lr
 * at total. */
typedef struct {
    tr_sched_kind kind;
    float lr, min_lr;
    long warmup, total;
} tr_sched;

float ddps_tr_sched_lr(const tr_sched *s, long i);
/* "constant", "linear", "cosine" -> kind; -1 when unknown. */
int ddps_tr_sched_parse(const char *name);

#endif
