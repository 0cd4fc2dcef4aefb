/* Training data: an ImageFolder decoded once into memory, and the
 * augmentations of torchvision and RDED with deterministic randomness.
 *
 * Classes are the folders sorted in byte order (pipeline/dataset.h, the same
 * rule as the rest of ddps and torchvision's ImageFolder); a label is the
 * class's index in that order. Images that do not decode are skipped with a
 * warning naming the file (never fatal) and counted in n_bad.
 *
 * Every random choice of a transform comes from a ddps_rng seeded from
 * (seed, epoch, sample index) by ddps_tr_sample_rng, never from a running
 * generator, so that an epoch's batches are the same however the run was
 * interrupted and resumed.
 */
#ifndef DDPS_TRAIN_DATA_H
#define DDPS_TRAIN_DATA_H

#include <stdint.h>

#include "io/image.h"
#include "util/err.h"
#include "util/rng.h"

typedef struct {
    int n, n_classes, n_bad;
    char **classes;   /* [n_classes] folder names, sorted */
    int *labels;      /* [n] */
    ddps_image *img;  /* [n] 8-bit RGB, as stored (see tr_data_opts) */
} tr_data;

typedef struct {
    int store_side; /* > 0: images whose shorter side is longer are resized (PIL bilinear) to this shorter side */
    int val_size;   /* > 0: validation preprocessing at load time: Resize(val_resize) + CenterCrop(val_size) */
    int val_resize; /* shorter side before the centre crop (RDED: val_size / 7 * 8) */
    int threads;    /* decoding threads (0: OpenMP's default) */
} tr_data_opts;

/* Loads root (an ImageFolder). Fails (one line naming root) when it has no
 * class folder with images or no image decodes. */
int ddps_tr_data_load(const char *root, const tr_data_opts *o, tr_data *d, ddps_err *err);
void ddps_tr_data_free(tr_data *d);

/* RDED's validation resize for an input size: size / 7 * 8 (integer division). */
int ddps_tr_val_resize(int size);

/* Resize(shorter side = side) + CenterCrop(crop) as torchvision on PIL images
 * (crop offsets int(round((h - crop) / 2.0)); a crop larger than the image is
 * padded with zeros as torchvision does). dst is allocated. */
int ddps_tr_resize_center_crop(const ddps_image *src, int side, int crop, ddps_image *dst, ddps_err *err);

/* torchvision RandomResizedCrop.get_params. */
typedef struct {
    double scale_lo, scale_hi, ratio_lo, ratio_hi; /* (0.08, 1), (3/4, 4/3) */
} tr_rrc;

/* One try of the 10: the crop (cw, ch) for an area fraction s drawn from
 * [scale_lo, scale_hi] and a log aspect ratio lr drawn from [log ratio_lo,
 * log ratio_hi]: w = int(round(sqrt(area s e^lr))), h = int(round(sqrt(area s / e^lr)))
 * (round half to even, as Python). Returns 1 when 0 < cw <= w and 0 < ch <= h. */
int ddps_tr_rrc_try(int w, int h, double s, double lr, int *cw, int *ch);
/* The centre-crop fallback after 10 failed tries: box = x, y, cw, ch. */
void ddps_tr_rrc_fallback(int w, int h, const tr_rrc *p, int box[4]);
/* The whole algorithm with draws from r: box = x, y, cw, ch. */
void ddps_tr_rrc_box(ddps_rng *r, int w, int h, const tr_rrc *p, int box[4]);

/* RDED's ShufflePatches(factor) on an image: the image cut into factor
 * vertical strips of width w / factor (the last strip takes the rest only
 * when it starts at column factor - 1, as RDED's code does), the strips
 * shuffled (Python's random.shuffle order: Fisher-Yates from the end), then
 * the same on horizontal strips. dst is allocated (its size may lose the
 * remainder columns / rows, as RDED's torch.cat does). */
int ddps_tr_shuffle_patches(const ddps_image *src, int factor, ddps_rng *r, ddps_image *dst, ddps_err *err);

/* The rng of one sample's transforms: seeded from (seed, epoch, index). */
void ddps_tr_sample_rng(ddps_rng *r, uint64_t seed, long epoch, long index);

/* A transform pipeline: training (shuffle patches when factor > 1, then
 * RandomResizedCrop to size x size, horizontal flip p = flip) or evaluation
 * (the stored image as is: it must be size x size, see val_size). Both end
 * with ImageNet mean/std normalisation. */
typedef struct {
    int size, train, factor;
    tr_rrc rrc;
    double flip;
} tr_transform;

/* One sample: img -> out [size,size,3] (NHWC, normalised f32) with r's draws. */
int ddps_tr_transform(const tr_transform *t, const ddps_image *img, ddps_rng *r, float *out, ddps_err *err);

/* ImageNet normalisation of an 8-bit RGB size x size image into out [size,size,3]: (v/255 - mean) / std. */
void ddps_tr_normalize(const ddps_image *img, float *out);

/* RDED's CutMix on a batch x [n,h,w,3] (NHWC host f32): lam ~ Beta(1, 1)
 * (uniform), rand_bbox: cut = sqrt(1 - lam), rows [r0, r1) from h (RDED's W
 * = size[2]) and columns [c0, c1) from w, centre uniform; x[:, r0:r1, c0:c1]
 * = x[perm, r0:r1, c0:c1] with perm a random permutation. tmp: room for
 * one batch. box out = r0, c0, r1, c1. */
void ddps_tr_cutmix(ddps_rng *r, float *x, int n, int h, int w, float *tmp, int *perm, int box[4]);

/* A random permutation of [0, n) (Fisher-Yates) into perm. */
void ddps_tr_permutation(ddps_rng *r, int n, int *perm);

#endif
