/* The windows of Stage I (compute core, METHOD.md): a candidate window of
 * an image and how the candidates are picked from the patch score grid.
 * Scoring (pipeline/score_batch.h) makes them, the store
 * (pipeline/store.h) keeps them. */
#ifndef DDPS_PIPELINE_WINDOW_H
#define DDPS_PIPELINE_WINDOW_H

#include "ddps.h"

/* A candidate window: the public ddps_window (box in original-image pixels,
 * the same box in the resized Stage-I image, Stage-I patch score) and its
 * DIFT feature. */
typedef struct {
    ddps_window w;
    const float *feature; /* dim floats: L2-normalised DIFT vector */
} ddps_candidate;

/* Candidate windows from a patch score grid [ph][pw] (window (i, j) at
 * (j*stride, i*stride)): the k best, skipping windows that overlap an
 * already chosen one by IoU > 0.5 while others remain; fills from the
 * overlapping ones when fewer than k are left. Equal scores go in raster
 * order; IoU exactly 0.5 is not an overlap. Writes (i, j) pairs in the order
 * chosen; returns the count (min(k, ph*pw), 0 for k <= 0). Tested in
 * tests/test_units.c. */
int ddps_pick_windows(const float *scores, int ph, int pw, int patch, int stride, int k, int *ij);

#endif
