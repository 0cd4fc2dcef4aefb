/* Scoring a batch of decoded images: Stage I, window choice, DIFT
 * (METHOD.md). The one per-batch step shared by the dataset driver
 * (ddps_score_run, pipeline/score.h) and the public engine (api/engine.c),
 * so that both give the same numbers for the same pixels and key. */
#ifndef DDPS_PIPELINE_SCORE_BATCH_H
#define DDPS_PIPELINE_SCORE_BATCH_H

#include "ddps.h"
#include "io/image.h"
#include "models/sd.h"
#include "pipeline/window.h"

/* What a batch is scored with, and what scoring has cost so far (summed
 * over every batch scored with it). */
typedef struct {
    ddps_backend *be;
    const ddps_sd *sd;
    const ddps_score_params *p; /* Stage-I, window, DIFT, low_res and seed fields */
    int K;                    /* timesteps ts[0..K) */
    const int *ts;
    int dim;                  /* ddps_dift_dim of the UNet */
    double t_vae, t_unet, t_dift; /* seconds in each model */
    long vae_images, unet_latents;
} ddps_scorer;

/* One image of a batch: inputs set by the caller, outputs by
 * ddps_score_batch (heap, freed by ddps_scored_free). */
typedef struct {
    const ddps_image *img;   /* resized pixels (all images of a batch share a size) */
    int orig_w, orig_h;      /* size before resizing: boxes are mapped to it */
    const char *key;         /* noise stream key: path relative to the data root */
    const ddps_tensor *cond; /* label prompt embedding [1,1,77,C] */
    float image_score;       /* mean of the score map */
    int n_cand;
    ddps_candidate *cand;    /* best first; cand[q].feature points into feats */
    float *feats;            /* [n_cand][dim] */
    float *map;              /* [map_h][map_w] channel mean of d, for the store */
    int map_h, map_w;
    float *score_map;        /* [H][W], only when keep_maps */
    float *patch_scores;     /* [grid_h][grid_w], only when keep_maps */
    int grid_h, grid_w;
} ddps_scored;

/* Scores n images of the same resized size as one batch: Stage I (2nK
 * latents in one UNet call, with ctx_null [1,1,77,C] and each image's cond),
 * windows, then DIFT on all candidate patches (one more UNet call). Each
 * image's noise stream is seeded from (p->seed, key); its numbers depend
 * only on its own pixels and stream (the batch changes rounding at most).
 * keep_maps = 1 also hands over the score map and patch grid. Returns 0, or
 * -1 with err prefixed by the first image's key (outputs freed). */
int ddps_score_batch(ddps_scorer *sc, ddps_scored *items, int n, const ddps_tensor *ctx_null, int keep_maps,
                     ddps_err *err);
/* The memory pre-flight (pipeline/memcheck.h) for one image resized to
 * rw x rh, with the scorer's settings: 0 when it fits, else -1 with the
 * reason (no file name). ddps_score_run records such an image as bad; the
 * engine refuses it. */
int ddps_scorer_memory_check(const ddps_scorer *sc, int rw, int rh, ddps_err *err);
/* Frees an item's outputs (inputs are the caller's); safe twice. */
void ddps_scored_free(ddps_scored *s);

#endif
