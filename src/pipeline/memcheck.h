/* Pre-flight memory estimate for scoring one batch of images, so that an
 * image too large for this machine is recorded as bad (with the reason)
 * instead of the backend aborting the whole run on an allocation failure
 * (which would repeat on every resume).
 *
 * The estimate is deliberately generous: activations grow linearly with the
 * resized pixels (attention is tiled, its memory is linear in the tokens
 * too), so it sums
 *   VAE encoder:  n images x H x W x block_out_channels[0] x 4 bytes x 8
 *   UNet:         2 K n latents x h x w x block_out_channels[0] x 4 bytes x 24
 * (8 and 24: the live buffers at the widest level, with resnet and attention
 * temporaries, measured peaks are below these on SD v1.5 and tiny-sd).
 * Available memory is MemAvailable + SwapFree of /proc/meminfo; where that
 * cannot be read, the check passes. DDPS_MEMORY_LIMIT_MB (environment)
 * overrides the available figure (tests, and users who share a machine). */
#ifndef DDPS_PIPELINE_MEMCHECK_H
#define DDPS_PIPELINE_MEMCHECK_H

#include <stdint.h>

#include "models/config.h"
#include "util/err.h"

/* Estimated activation bytes for n images of H x W with K timesteps. */
uint64_t ddps_score_memory_estimate(const ddps_vae_config *vae, const ddps_unet_config *unet, int H, int W, int n,
                                    int K);
/* Bytes this process may still use (see above); UINT64_MAX when unknown. */
uint64_t ddps_memory_available(void);
/* 0 when the estimate fits, else -1 with "needs about X MiB of memory to
 * score at WxH, Y MiB available" (no file name: the caller adds it). */
int ddps_score_memory_check(const ddps_vae_config *vae, const ddps_unet_config *unet, int H, int W, int n, int K,
                            ddps_err *err);

#endif
