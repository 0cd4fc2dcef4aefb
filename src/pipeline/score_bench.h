/* The one piece of score.c that `ddps bench score` (src/tools/bench_score.c)
 * times: the batched Stage I + II of ddps_score_run on one decoded image. */
#ifndef DDPS_PIPELINE_SCORE_BENCH_H
#define DDPS_PIPELINE_SCORE_BENCH_H

#include "io/image.h"
#include "models/sd.h"
#include "pipeline/score.h"

/* Scores rs (already resized for Stage I; orig_w x orig_h before) batch
 * times as one batch of ddps_score_run (each copy with its own noise stream,
 * "bench/img<b>.jpg"), with o's settings and the prompt contexts ctx
 * [2,1,77,C] (null, label). Adds the seconds spent in the VAE, the UNet and
 * DIFT to secs[0..2]. Returns 0 or -1 with err. */
int ddps_score_bench_batch(ddps_backend *be, ddps_sd *sd, const ddps_score_opts *o, const ddps_image *rs, int orig_w,
                           int orig_h, int batch, const ddps_tensor *ctx, double secs[3], ddps_err *err);

#endif
