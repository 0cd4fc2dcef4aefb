/* Single-file checkpoints in the original (CompVis/LDM) layout, as users have
 * them: one safetensors file with
 *   model.diffusion_model.*                        the UNet
 *   model_ema.diffusion_model<name without dots>   its EMA copy (full files)
 *   first_stage_model.*                            the VAE (attention as 1x1 convolutions)
 *   cond_stage_model.transformer.text_model.*      CLIP text encoder (SD v1.x)
 *   cond_stage_model.model.*                       OpenCLIP text encoder (SD 2.x)
 *   betas, alphas_cumprod, ...                     schedule buffers
 * Tensors may be f32, f16 or bf16, mixed in one file.
 *
 * The loader keeps the diffusers names everywhere else: for one component it
 * builds a view (an st_file sharing the checkpoint's mapping) whose tensors
 * carry the diffusers names the model builders ask for, so the checks and
 * the conversion of sd.c work unchanged. The name mapping is the one of
 * diffusers' convert_diffusers_to_original_stable_diffusion.py, written here
 * in the diffusers-to-original direction (ddps_ldm_name). */
#ifndef DDPS_MODELS_SINGLE_FILE_H
#define DDPS_MODELS_SINGLE_FILE_H

#include <stddef.h>

#include "io/safetensors.h"
#include "models/config.h"
#include "util/err.h"

typedef struct {
    st_file file;
    int has_plain, has_ema, use_ema; /* UNet weights: plain, EMA copy, which one is used */
    int openclip;                    /* text encoder in OpenCLIP layout (cond_stage_model.model.*) */
    char *used;                      /* per file tensor: taken by a view */
} ddps_single;

/* The original-layout name of a diffusers tensor name of a component
 * ("unet", "vae", "text_encoder") with configuration cfg (the matching
 * ddps_*_config). For the text encoder this is the CLIP (SD v1.x) name.
 * Returns 0, or -1 when the name is not one ddps declares. */
int ddps_ldm_name(const char *component, const void *cfg, const char *name, char *out, size_t n);

/* The EMA key of an original UNet key: "model.diffusion_model.a.b.0.weight"
 * -> "model_ema.diffusion_modelab0weight" (LitEma drops the dots). */
void ddps_ldm_ema_name(const char *ldm, char *out, size_t n);

/* Opens and validates the checkpoint; finds which UNet copy to use (EMA when
 * the file has both, with a one-line note) and the text encoder layout.
 * One-line error naming the file when it is not such a checkpoint. */
int ddps_single_open(const char *path, ddps_single *s, ddps_err *err);
void ddps_single_close(ddps_single *s);

/* Checks that --config's configurations describe the model the file holds
 * where the file shows it: the text encoder's kind (OpenCLIP: gelu; SD
 * v1.x's CLIP: quick_gelu) and the UNet's projections (linear or 1x1
 * convolutions). A mismatch (SD 2.x configs for an SD v1.x file, or the
 * reverse) fails naming both. text/unet: 0 when that part is not loaded. */
int ddps_single_check_configs(const ddps_single *s, const char *config_dir, const ddps_unet_config *u,
                              const ddps_clip_config *c, ddps_err *err);
/* Infers SD v1.x's configurations from the tensors (cross-attention width
 * 768, UNet channels 320/640/1280, CLIP ViT-L text encoder). Anything else
 * fails with a message asking for --config DIR. */
int ddps_single_infer_sd1(const ddps_single *s, ddps_unet_config *u, ddps_vae_config *v, ddps_clip_config *c,
                          ddps_err *err);

/* The view of one component: every declared tensor found in the file, under
 * its diffusers name (missing ones are simply absent, so ddps_ws_check lists
 * them). Free with ddps_single_view_free (never ddps_st_close). */
int ddps_single_view(ddps_single *s, const char *component, const void *cfg, st_file *view, ddps_err *err);
void ddps_single_view_free(st_file *view);

/* Fails, naming the file and up to 8 tensors by their ORIGINAL names, when
 * the view lacks any tensor the component declares (what); shapes and
 * dtypes are ddps_ws_check's part. */
int ddps_single_check_missing(const ddps_single *s, const char *component, const void *cfg, const st_file *view,
                              const char *what, ddps_err *err);

/* Warns once about tensors of the file no view took, other than the known
 * non-weight buffers (schedule buffers, the unused UNet copy, position ids,
 * OpenCLIP's unused last layer and projections). */
void ddps_single_warn_unused(const ddps_single *s);

/* The file's alphas_cumprod buffer, if it has one of n finite values in
 * (0, 1]: copied to out (n floats) and 0 returned; -1 otherwise. */
int ddps_single_alphas_cumprod(const ddps_single *s, int n, float *out);

#endif
