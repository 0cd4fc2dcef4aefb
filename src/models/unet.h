/* UNet2DConditionModel of the SD v1.x / v2.x family, driven by its config.
 *
 * Forward(sample, timesteps, context) -> noise prediction, with taps on the
 * output of every down block (after its downsampler), the mid block and
 * every up block (after its upsampler), and an early stop after up block k
 * (DIFT features need up_blocks[1] only). B latents run as one batch, each
 * with its own timestep and context. */
#ifndef DDPS_MODELS_UNET_H
#define DDPS_MODELS_UNET_H

#include "models/blocks.h"
#include "models/config.h"

typedef struct {
    ddps_resnet res[DDPS_MAX_BLOCKS];
    ddps_transformer attn[DDPS_MAX_BLOCKS];
    int has_attn;
    ddps_weight *sampler; /* downsampler / upsampler conv, or NULL */
} ddps_unet_block;

typedef struct {
    ddps_unet_config cfg;
    ddps_weight *conv_in, *conv_out, *t1, *t2;
    ddps_gn norm_out;
    ddps_unet_block down[DDPS_MAX_BLOCKS], up[DDPS_MAX_BLOCKS];
    ddps_resnet mid_res1, mid_res2;
    ddps_transformer mid_attn;
    ddps_weight **all;
    int n_all;
} ddps_unet;

/* Tap callback: name is "down0".."downN", "mid", "up0".."upN"; the tensor
 * is valid only during the call (it lives in the arena). */
typedef void (*ddps_unet_tap_fn)(void *user, const char *name, const ddps_tensor *t);

typedef struct {
    ddps_unet_tap_fn tap; /* NULL: no taps */
    void *user;
    int stop_after_up;    /* -1: run to the end; k: stop after up_blocks[k] (eps is not written) */
} ddps_unet_opts;

int ddps_unet_build(ddps_wsrc *ws, const ddps_unet_config *cfg, ddps_unet **out, ddps_err *err);
void ddps_unet_free(ddps_backend *be, ddps_unet *m);
/* x [n,h,w,in], timesteps: host [n], context [n,1,L,cross_dim] -> eps [n,h,w,out].
 * Returns 0, or -1 when an op failed on the backend (the message:
 * ddps_backend_error; eps and the taps are then not valid). */
int ddps_unet_forward(ddps_backend *be, const ddps_unet *m, const ddps_tensor *x, const float *timesteps,
                       const ddps_tensor *context, ddps_tensor *eps, const ddps_unet_opts *opts);

#endif
