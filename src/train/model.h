/* Student models for training on the engine, with torchvision's structure
 * and parameter names so that PyTorch checkpoints load by name:
 *
 *   resnet18           torchvision ResNet-18 (ImageNet stem: 7x7/2 conv, 3x3/2 max pool)
 *   resnet18-modified  RDED's stem for 32-64 px inputs: conv1 3x3/1, no max pool
 *   convnet3..convnet6 the dataset-distillation ConvNet-D (DC/DSA, DD-Ranking's ConvNet-3, RDED's
 *                      conv3): D x [conv 3x3 width 128 (bias) - instance norm (GroupNorm(128, 128),
 *                      affine) - ReLU - avg pool 2/2], then classifier over the NCHW flatten.
 *                      Names: features.<4d>.weight/bias (conv), features.<4d+1>.weight/bias (norm),
 *                      classifier.weight/bias.
 *
 * A model owns its parameters and buffers (tr_param, PyTorch names and
 * shapes) and keeps the activations of its last training forward (arena
 * tensors) for the backward.
 */
#ifndef DDPS_TRAIN_MODEL_H
#define DDPS_TRAIN_MODEL_H

#include "train/tops.h"

#define TR_MAX_PARAMS 160

typedef struct {
    tr_conv conv1, conv2, ds;
    tr_bn bn1, bn2, dsbn;
    int has_ds;
    /* kept for backward: input, conv/bn outputs with batch statistics, the sum */
    ddps_tensor x, c1, b1, m1, v1, r1, c2, b2, m2, v2, dc, dm, dv, db, sum, out;
} tr_block;

typedef struct {
    tr_conv conv;
    tr_param *nw, *nb;
    ddps_tensor x, c, mean, rstd, nrm, r, out;
} tr_cn_layer;

typedef enum { TR_RESNET18 = 1, TR_RESNET18_MOD, TR_CONVNET } tr_arch;

typedef struct {
    tr_arch arch;
    int classes, depth, width, size;
    tr_param p[TR_MAX_PARAMS];
    int np;
    /* ResNet */
    tr_conv conv1;
    tr_bn bn1;
    tr_block blk[8];
    ddps_tensor x, c1, b1, m1, v1, r1, mp, ws, pooled;
    /* ConvNet */
    tr_cn_layer cn[6];
    /* both */
    tr_linear fc;
    ddps_tensor feat, logits;
    int trained_forward; /* the last forward was in training mode (backward allowed) */
} tr_model;

/* arch: "resnet18", "resnet18-modified", "convnet3".."convnet6"; size: the
 * input image side (ConvNet's classifier depends on it). Parameters are
 * PyTorch's default initialisation from seed. NULL with err on bad names. */
tr_model *ddps_tr_model_new(const char *arch, int classes, int size, uint64_t seed, ddps_err *err);
void ddps_tr_model_free(tr_model *m);
tr_param *ddps_tr_model_find(tr_model *m, const char *name);
/* Loads every parameter and buffer by name from a safetensors file (F32,
 * F16, BF16; num_batches_tracked I64), checking shapes; names in the file
 * that the model lacks are ignored, missing ones are an error. */
int ddps_tr_model_load(tr_model *m, const char *path, ddps_err *err);
/* Where weights named as --model names a model are: a safetensors file as
 * it is; a folder's model.safetensors, else its only *.safetensors; a Hugging
 * Face cache id ("timm/resnet18.tv_in1k", models/hf_cache.h) as its snapshot
 * folder. Heap path, or NULL with err (USAGE for a name that is none of
 * these, DATA for a folder without one weights file). */
char *ddps_tr_weights_path(const char *spec, ddps_err *err);
/* Writes every parameter and buffer (F32; num_batches_tracked I64). */
int ddps_tr_model_save(const tr_model *m, const char *path, ddps_err *err);
/* The classifier's output count K from a weights file (rows of fc.weight or
 * classifier.weight [K, features]); -1 with err (DATA) when neither is there. */
int ddps_tr_weights_classes(const char *path, ddps_err *err);

/* x [n,size,size,3] -> logits [n,1,1,classes] (arena). training: batch-norm
 * batch statistics and running-statistics update, activations kept for
 * ddps_tr_model_backward; the caller releases the arena after the backward. */
ddps_tensor ddps_tr_model_forward(tr_ctx *c, tr_model *m, const ddps_tensor *x, int training);
/* dlogits [n,1,1,classes] -> every parameter's grad (after a training forward). */
void ddps_tr_model_backward(tr_ctx *c, tr_model *m, const ddps_tensor *dlogits);

#endif
