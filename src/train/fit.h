/* The training loop: epochs of shuffled batches on a model, with hard labels
 * (cross-entropy, optional label smoothing) or a teacher's soft labels (KD:
 * KL(batchmean) of log_softmax(s/T) against softmax(teacher/T) on the batch
 * after CutMix), an optimiser step per batch, a learning-rate schedule per
 * epoch or per step, and top-1 / top-5 evaluation in eval mode.
 *
 * Determinism and resume: the epoch's order, every sample's transforms and
 * every batch's CutMix come from rngs seeded from (seed, epoch, index) (see
 * train/data.h), the model's initialisation from the seed. After every epoch
 * the whole state (parameters, buffers, optimiser moments and step count,
 * epochs done, the per-epoch log) is written atomically to the checkpoint;
 * a later call with the same settings continues from it, and gives the same
 * bytes as a run never interrupted (same machine, same thread count).
 *
 * Steps allocate nothing on the backend once the arena has grown (tensors
 * from the arena, released to a mark after each step); the host batch
 * buffers are allocated once per call.
 */
#ifndef DDPS_TRAIN_FIT_H
#define DDPS_TRAIN_FIT_H

#include "train/data.h"
#include "train/model.h"
#include "train/optim.h"

typedef struct {
    double loss;       /* mean training loss over the epoch's batches */
    double top1, top5; /* validation accuracy in [0, 1] (when evaluated) */
    double seconds;    /* wall time of the epoch (train + eval) */
    int evaluated;
} tr_epoch_log;

typedef struct {
    int epochs, batch;      /* batch: the largest batch; a last batch of 1 is dropped (batch norm) */
    tr_optim optim;
    tr_sched sched;         /* lr at epoch (or step when per_step) */
    int sched_per_step;
    int rded_lr;            /* 1: lr * 0.5 (1 + cos(pi epoch / epochs / 2)) per epoch (RDED), sched ignored */
    float label_smoothing;  /* hard labels */
    float temperature;      /* KD (teacher given) */
    int cutmix;             /* 1: RDED's CutMix on every batch */
    tr_transform tf;        /* training transforms */
    int eval_batch;         /* validation batch */
    int eval_every;         /* evaluate after epoch e (1-based) when e % eval_every == 0 ... */
    double eval_after;      /* ... and e > eval_after * epochs; always after the last epoch */
    uint64_t seed;
    int threads;
    const char *checkpoint; /* NULL: no checkpoint, no resume */
    double ckpt_seconds;    /* 0: a checkpoint after every epoch; else after an epoch when this long has passed
                               since the last one (and after the last epoch); DDPS_TRAIN_CKPT_SECONDS overrides */
    const char *label;      /* log and progress label prefix ("epoch", "student 2/5 epoch") */
    const char *progress_label; /* NULL: a progress line per epoch; else one for the whole run ("student 2/5") */
    int log_every_epoch;    /* 1: an info line per epoch; 0: only for evaluated epochs */
} tr_fit_opts;

/* Training data, validation data, and the teacher for KD (NULL: hard
 * labels) with tmap[k]: the teacher's logit row for the student's class k. */
typedef struct {
    const tr_data *train, *val;
    tr_model *teacher;
    const int *tmap;
} tr_fit_data;

/* Trains m (initialised by the caller from o->seed) for o->epochs, resuming
 * from o->checkpoint when it holds a run of the same settings; log[epochs]
 * gets every epoch (resumed ones from the checkpoint). Cancel (hooks) stops
 * between batches with DDPS_KIND_CANCELLED, the checkpoint at the last
 * finished epoch. The test hook DDPS_TRAIN_KILL_AT=N ends the process with
 * SIGKILL after optimiser step N (counted over the whole run). */
int ddps_tr_fit(tr_ctx *c, const tr_fit_opts *o, tr_model *m, const tr_fit_data *d, tr_epoch_log *log,
                ddps_err *err);

/* Top-1 and top-5 accuracy of m in eval mode on val (tmap NULL: identity;
 * else logit row tmap[k] stands for class k). */
int ddps_tr_evaluate(tr_ctx *c, tr_model *m, const tr_data *val, const int *tmap, int batch, double *top1,
                     double *top5, ddps_err *err);

#endif
