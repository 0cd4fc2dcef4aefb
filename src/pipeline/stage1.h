/* The paper's two model computations on one image (METHOD.md):
 *
 * Stage I: z = VAE mean * scaling_factor; for each of K timesteps one noise
 * draw eps_k, z_t = sqrt(abar) z + sqrt(1-abar) eps_k, the UNet predicts the
 * noise with the null and the label prompt (2K latents in one batch),
 * d = mean_k[(eps_k - e_null)^2 - (eps_k - e_label)^2] per latent element,
 * D = channel mean of d upsampled bilinearly to the image, and the patch
 * score map S = avg_pool(D, P, s).
 *
 * DIFT: for candidate patches, the UNet's up_blocks[1] output at one
 * timestep with the label prompt, averaged over E noise draws,
 * global-average pooled and L2-normalised.
 *
 * Everything per image stays on the backend; only the maps come back. */
#ifndef DDPS_PIPELINE_STAGE1_H
#define DDPS_PIPELINE_STAGE1_H

#include "models/sd.h"

typedef struct {
    int h, w, c;          /* latent */
    int H, W;             /* image */
    int ph, pw;           /* patch score grid */
    float *latent;        /* [h][w][c] (NHWC) */
    float *diff;          /* [h][w][c] */
    float *score_map;     /* [H][W] */
    float *patch_scores;  /* [ph][pw] */
    double seconds_vae, seconds_unet; /* time in each model (for reports) */
} ddps_stage1_result;

/* z [n,h,w,c] = (VAE mean(x) - shift) * scaling_factor for x [n,H,W,3].
 * Returns 0, or -1 when an op failed (ddps_backend_error has the message). */
int ddps_encode_latent(ddps_backend *be, const ddps_sd *sd, const ddps_tensor *x, ddps_tensor *z);

/* image [1,H,W,3] in [-1,1]; contexts [1,1,77,C]; noise: host [K][h][w][c].
 * P > min(H, W) is an error (no window fits). */
int ddps_stage1_run(ddps_backend *be, const ddps_sd *sd, const ddps_tensor *image, const ddps_tensor *ctx_null,
                    const ddps_tensor *ctx_label, const int *timesteps, int K, const float *noise, int P, int S,
                    ddps_stage1_result *r, ddps_err *err);
void ddps_stage1_result_free(ddps_stage1_result *r);

/* Stage I for n images of the same size in one batch (2nK UNet latents):
 * images [n,H,W,3], ctx_label[i] the label context of image i, noise host
 * [n][K][h][w][c]; res has n entries. The result of an image depends only on
 * its own inputs, up to rounding that may vary with the batch's size. */
int ddps_stage1_run_batch(ddps_backend *be, const ddps_sd *sd, const ddps_tensor *images, const ddps_tensor *ctx_null,
                          const ddps_tensor *const *ctx_label, const int *ts, int K, const float *noise, int P, int S,
                          ddps_stage1_result *res, ddps_err *err);

/* DIFT for n patches at once: patches [n,p,p,3] in [-1,1], context [1,1,77,C],
 * noise host [n][E][h][w][c] (h = latent size of p). features: host [n][dim],
 * dim = channels of up_blocks[1]. */
int ddps_dift_run(ddps_backend *be, const ddps_sd *sd, const ddps_tensor *patches, const ddps_tensor *ctx_label,
                  int t, int E, const float *noise, float *features, int *dim, ddps_err *err);
/* Seconds since an arbitrary origin (monotonic), after waiting for the backend. */
double ddps_now(ddps_backend *be);
/* The same with a context per patch (patches of several images). */
int ddps_dift_run_batch(ddps_backend *be, const ddps_sd *sd, const ddps_tensor *patches,
                        const ddps_tensor *const *ctx_label, int t, int E, const float *noise, float *features, int *dim,
                        ddps_err *err);
/* Channels of the DIFT feature (up_blocks[1] output) for this UNet. */
int ddps_dift_dim(const ddps_unet_config *c);

#endif
