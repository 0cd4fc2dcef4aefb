/* Pre-flight memory estimate for scoring one batch of images, so that an
 * image too large for this machine is recorded as bad (with the reason)
 * instead of the backend aborting the whole run on an allocation failure
 * (which would repeat on every resume).
 *
 * Activations grow linearly with the resized pixels (attention is tiled, its
 * memory is linear in the tokens too), so the estimate is linear:
 *   VAE encoder:  n x H x W x block_out_channels[0] x 4 bytes x 16
 *   UNet:         (2 K n latents of (H/8+1) x (W/8+1) tokens, plus k E n
 *                 DIFT latents of (P/8+1)^2) x block_out_channels[0] x 4 bytes x 128
 * The factors are generous: BENCHMARKS.md measures about 130 MB of resident
 * memory per extra 32x32 SD v1.5 UNet latent (1024 tokens x 320 channels x
 * 4 bytes x ~100, oneDNN scratch included).
 *
 * Why an estimate and not an allocation error path: on the CPU the arena is
 * 256 GiB of MAP_NORESERVE address space (cpu_backend.c), so running out of
 * memory shows up as the kernel's OOM killer when pages are touched, never
 * as a failed allocation a process could recover from. The bound on the
 * aspect ratio (image.h) keeps every image within 4x the cost of a square
 * one; this check covers machines too small even for that.
 * Available memory is MemAvailable + SwapFree of /proc/meminfo; where that
 * cannot be read, the check passes. DDPS_MEMORY_LIMIT_MB (environment)
 * overrides the available figure (tests, and users who share a machine). */
#ifndef DDPS_PIPELINE_MEMCHECK_H
#define DDPS_PIPELINE_MEMCHECK_H

#include <stdint.h>

#include "models/config.h"
#include "util/err.h"

/* Estimated activation bytes for n images of H x W with K timesteps, k
 * candidate windows of P x P each and an ensemble of E DIFT draws. */
uint64_t ddps_score_memory_estimate(const ddps_vae_config *vae, const ddps_unet_config *unet, int H, int W, int n,
                                    int K, int P, int k, int E);
/* Bytes this process may still use (see above); UINT64_MAX when unknown. */
uint64_t ddps_memory_available(void);
/* 0 when the estimate fits, else -1 with "needs about X MiB of memory to
 * score at WxH, Y MiB available" (no file name: the caller adds it). */
int ddps_score_memory_check(const ddps_vae_config *vae, const ddps_unet_config *unet, int H, int W, int n, int K,
                            int P, int k, int E, ddps_err *err);

#endif
