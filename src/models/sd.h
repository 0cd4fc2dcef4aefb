/* A Stable Diffusion v1.x model folder in diffusers layout:
 *   model_index.json, tokenizer/, text_encoder/, vae/, unet/, scheduler/
 * each component with its config and safetensors weights (f32, f16 or bf16;
 * single file, ".fp16" variant, or sharded with an index). Loading checks
 * every tensor the configs imply (all faults listed in one error), converts
 * weights to the backend's layout one tensor at a time, and computes a model
 * identity (a hash of the configs, tokenizer and tensor headers). */
#ifndef DDPS_MODELS_SD_H
#define DDPS_MODELS_SD_H

#include <stdint.h>

#include "models/clip_text.h"
#include "io/safetensors.h"
#include "models/config.h"
#include "models/tokenizer.h"
#include "models/unet.h"
#include "models/vae.h"

enum {
    DDPS_PART_TOKENIZER = 1,
    DDPS_PART_TEXT = 2,
    DDPS_PART_VAE = 4,
    DDPS_PART_UNET = 8,
    DDPS_PART_SCHEDULER = 16,
    DDPS_PART_ALL = 31,
};

typedef struct {
    char *dir;
    unsigned parts;
    ddps_unet_config unet_cfg;
    ddps_vae_config vae_cfg;
    ddps_clip_config clip_cfg;
    ddps_sched_config sched_cfg;
    ddps_tokenizer *tok;
    ddps_clip *text;
    ddps_vae *vae;
    ddps_unet *unet;
    float *alphas_cumprod; /* [sched_cfg.num_train_timesteps] */
    uint64_t identity;
    char identity_hex[17];
    /* non-finite weight values seen while loading (a warning, one line) */
    size_t nonfinite;
    int nonfinite_tensors;
    char nonfinite_first[512];
} ddps_sd;

/* Loads the requested parts (their configs, and their weights checked
 * against the configs). be may be NULL to check without loading weights.
 * model is, in this order: an existing folder (diffusers layout), an
 * existing file (a .safetensors single-file checkpoint; pickles .ckpt .pt
 * .pth .bin are refused with the reason and how to convert), or a Hugging
 * Face id org/name[@revision] resolved in the local cache (hf_cache.h).
 * config_dir (may be NULL) is --config: a diffusers-layout folder with the
 * component configs (and optionally tokenizer/) for a single-file
 * checkpoint; without it a single file must be SD v1.x (inferred) and the
 * tokenizer is the CLIP vocabulary shipped with ddps. */
int ddps_sd_load_ex(const char *model, const char *config_dir, ddps_backend *be, unsigned parts, ddps_sd **out,
                    ddps_err *err);
/* ddps_sd_load_ex without --config. */
int ddps_sd_load(const char *model, ddps_backend *be, unsigned parts, ddps_sd **out, ddps_err *err);
void ddps_sd_free(ddps_backend *be, ddps_sd *m);

/* For a v-prediction model (scheduler prediction_type v_prediction), turns
 * the UNet outputs e (v, one item per timestep ts[i]) for inputs x_t into
 * noise predictions in place: eps = sqrt(abar_t) v + sqrt(1 - abar_t) x_t.
 * Nothing to do for an epsilon model. */
void ddps_sd_to_noise_pred(ddps_backend *be, const ddps_sd *sd, ddps_tensor *e, const ddps_tensor *x_t,
                           const float *ts);

/* Builds the full SD v1.5 components with random weights in memory (bench). */
int ddps_sd15_random(ddps_backend *be, unsigned parts, uint64_t seed, ddps_sd **out, ddps_err *err);
/* The same for version 15 (SD v1.5) or 21 (SD 2.1 768-v: ddps_sd21_*_config). */
int ddps_sd_random(ddps_backend *be, int version, unsigned parts, uint64_t seed, ddps_sd **out, ddps_err *err);

/* The tensor list a component's config implies: a WS_DECLARE walk. */
int ddps_sd_declare(const char *component, const void *cfg, ddps_wsrc *ws, ddps_err *err);

#endif
