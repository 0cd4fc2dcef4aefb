/* Model configurations from a diffusers folder: unet/config.json,
 * vae/config.json, text_encoder/config.json, scheduler/scheduler_config.json.
 *
 * Only the Stable Diffusion v1.x / v2.x family is supported; settings that
 * change the architecture beyond it are refused with a message naming the
 * file and key, rather than silently ignored.
 */
#ifndef DDPS_MODELS_CONFIG_H
#define DDPS_MODELS_CONFIG_H

#include <jansson.h>

#include "util/err.h"
#include "util/json.h"

#define DDPS_MAX_BLOCKS 8

typedef struct {
    int in_channels, out_channels;
    int n_blocks;
    int block_out_channels[DDPS_MAX_BLOCKS];
    int down_cross[DDPS_MAX_BLOCKS]; /* CrossAttnDownBlock2D (1) or DownBlock2D (0) */
    int up_cross[DDPS_MAX_BLOCKS];   /* CrossAttnUpBlock2D (1) or UpBlock2D (0) */
    int heads[DDPS_MAX_BLOCKS];      /* attention heads per down block (v1.x: attention_head_dim) */
    int layers_per_block;
    int cross_attention_dim;
    int norm_num_groups;
    float norm_eps;
    int flip_sin_to_cos;
    float freq_shift;
    int use_linear_projection;
    int downsample_padding;
    int upcast_attention; /* SD 2.x: attention scores and softmax in f32 in 16-bit modes. Both
                             backends always do so (CPU attention is f32; the CUDA kernels
                             accumulate Q K^T in f32 and take the softmax in f32), so the
                             flag is recorded, not branched on */
    int time_embed_dim; /* 4 * block_out_channels[0] */
} ddps_unet_config;

typedef struct {
    int in_channels, latent_channels;
    int n_blocks;
    int block_out_channels[DDPS_MAX_BLOCKS];
    int layers_per_block;
    int norm_num_groups;
    int use_quant_conv, use_post_quant_conv;
    int mid_block_add_attention;
    int out_channels;
    float scaling_factor;
    float shift_factor; /* 0 when null */
} ddps_vae_config;

typedef struct {
    int vocab_size, hidden_size, intermediate_size;
    int num_hidden_layers, num_attention_heads, max_position_embeddings;
    int quick_gelu; /* hidden_act quick_gelu (1) or gelu (0) */
    float layer_norm_eps;
} ddps_clip_config;

typedef struct {
    int num_train_timesteps;
    float beta_start, beta_end;
    int scaled_linear; /* beta_schedule: scaled_linear (1) or linear (0) */
    int v_prediction;  /* prediction_type: v_prediction (1) or epsilon (0) */
} ddps_sched_config;

int ddps_unet_config_parse(const char *path, json_t *root, ddps_unet_config *c, ddps_err *err);
int ddps_vae_config_parse(const char *path, json_t *root, ddps_vae_config *c, ddps_err *err);
int ddps_clip_config_parse(const char *path, json_t *root, ddps_clip_config *c, ddps_err *err);
int ddps_sched_config_parse(const char *path, json_t *root, ddps_sched_config *c, ddps_err *err);

/* ddps_json_load and ddps_json_load_ex: util/json.h (included above). */

/* The SD v1.5 configurations (tests, benchmarks with random weights). */
void ddps_sd15_unet_config(ddps_unet_config *c);
void ddps_sd15_vae_config(ddps_vae_config *c);
void ddps_sd15_clip_config(ddps_clip_config *c);
/* The SD 2.1 (768-v) configurations: UNet with cross-attention width 1024,
 * linear projections, heads 5/10/20/20 (width 64), upcast attention; the
 * OpenCLIP ViT-H text encoder as diffusers ships it (23 layers of 1024,
 * exact GELU). The VAE is SD v1.5's. */
void ddps_sd21_unet_config(ddps_unet_config *c);
void ddps_sd21_clip_config(ddps_clip_config *c);

/* JSON text of a configuration in diffusers/transformers form (for the demo's
 * self-made model). Caller frees. */
char *ddps_unet_config_json(const ddps_unet_config *c);
char *ddps_vae_config_json(const ddps_vae_config *c);
char *ddps_clip_config_json(const ddps_clip_config *c);
char *ddps_sched_config_json(const ddps_sched_config *c);

#endif
