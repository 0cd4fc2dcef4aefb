/* AutoencoderKL encoder (the part ddps runs): conv_in, down blocks of
 * ResNets with stride-2 downsamplers (asymmetric (0,1,0,1) padding), a mid
 * block with attention, GroupNorm-SiLU-conv_out, quant_conv. The decoder's
 * tensors are declared (a checkpoint must be complete) but never loaded. */
#ifndef DDPS_MODELS_VAE_H
#define DDPS_MODELS_VAE_H

#include "models/blocks.h"
#include "models/config.h"

typedef struct {
    ddps_vae_config cfg;
    ddps_weight *conv_in, *conv_out, *quant_mean, *quant_logvar;
    ddps_resnet *res; /* n_blocks * layers_per_block */
    ddps_weight **down; /* n_blocks - 1 downsamplers */
    ddps_resnet mid1, mid2;
    ddps_vae_attn mid_attn;
    ddps_gn norm_out;
    ddps_weight **all;
    int n_all;
} ddps_vae;

int ddps_vae_build(ddps_wsrc *ws, const ddps_vae_config *cfg, ddps_vae **out, ddps_err *err);
void ddps_vae_free(ddps_backend *be, ddps_vae *m);
/* x [n,H,W,3] in [-1,1] -> mean, logvar [n,h,w,4] with h, w from
 * ddps_vae_latent_size (logvar unclamped;
 * diffusers clamps it to [-30, 20] when it builds the distribution). */
/* Returns 0, or -1 when an op failed on the backend (see ddps_backend_error). */
int ddps_vae_encode(ddps_backend *be, const ddps_vae *m, const ddps_tensor *x, ddps_tensor *mean, ddps_tensor *logvar);
/* Latent size for an image size (each downsampler pads to s + 1, then a 3x3
 * stride-2 convolution: floor((s - 2) / 2) + 1); 0 when the image is too
 * small for the network (under 2 pixels at some downsampler). */
int ddps_vae_latent_size(const ddps_vae_config *cfg, int s);

#endif
