/* `ddps probe train`: one training step on the engine, on files, so that
 * anyone can compare it with PyTorch (as `ddps probe unet` is for the UNet).
 *
 * weights: torchvision-named safetensors for arch ("resnet18",
 * "resnet18-modified", "convnet3".."convnet6"; the class count comes from
 * fc.weight / classifier.weight). in: `images` [N,3,H,W] f32, and either
 * `labels` [N] int (cross-entropy; optional scalar `label_smoothing`) or
 * `teacher_logits` [N,K] f32 with scalar `temperature` (KLDivLoss(batchmean)
 * of log_softmax(s/T) against softmax(t/T)); scalars `lr` (1e-3) and
 * `weight_decay` (0.01) for one AdamW step (decay on weights with more than
 * one dimension). The model runs in training mode. out: `logits` [N,K],
 * `loss` (scalar), `grad.<name>` for every parameter, the batch-norm buffers
 * by name after the step, `param.<name>` after the AdamW step.
 */
#ifndef DDPS_TRAIN_PROBE_H
#define DDPS_TRAIN_PROBE_H

#include "util/err.h"

int ddps_tr_probe(const char *arch, const char *weights, const char *in, const char *out, int threads, ddps_err *err);

#endif
