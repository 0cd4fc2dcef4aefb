/* The demo's model: a model folder in diffusers layout with random weights
 * (ddps_sd_write_random) and the tiny SD v1.x-structured configs of `ddps
 * demo` (see demo.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "models/config.h"
#include "models/sd.h"
#include "models/weights.h"
#include "tools/demo.h"
#include "util/fs.h"

void ddps_demo_tiny_configs(ddps_unet_config *u, ddps_vae_config *v, ddps_clip_config *c) {
    ddps_sd15_unet_config(u);
    int uc[4] = {32, 64, 64, 64};
    for (int i = 0; i < 4; i++) u->block_out_channels[i] = uc[i];
    u->cross_attention_dim = 32;
    u->norm_num_groups = 8;
    u->time_embed_dim = 128;
    ddps_sd15_vae_config(v);
    int vc[4] = {16, 32, 32, 32};
    for (int i = 0; i < 4; i++) v->block_out_channels[i] = vc[i];
    v->norm_num_groups = 8;
    ddps_sd15_clip_config(c);
    c->hidden_size = 32;
    c->intermediate_size = 64;
    c->num_hidden_layers = 2;
    c->num_attention_heads = 4;
}

/* Writes text to dir/name (atomically). */
static int write_text(const char *dir, const char *name, const char *text, ddps_err *err) {
    char *p = ddps_path_join(dir, name);
    int rc = ddps_write_file_atomic(p, text, strlen(text), err);
    free(p);
    return rc;
}

/* Writes root/sub/config_name (config_json, freed here) and root/sub/file:
 * the tensors the component's config declares, random (seed) in dtype. */
static int write_component(const char *root, const char *sub, const char *file, const char *config_name,
                           char *config_json, const void *cfg, uint64_t seed, st_dtype dtype, ddps_err *err) {
    char *dir = ddps_path_join(root, sub);
    int rc = ddps_mkdirs(dir, err);
    if (rc == 0) rc = write_text(dir, config_name, config_json, err);
    free(config_json);
    ddps_wsrc ws;
    memset(&ws, 0, sizeof ws);
    if (rc == 0) rc = ddps_sd_declare(sub, cfg, &ws, err);
    if (rc == 0) {
        st_out *t = ddps_calloc((size_t)ws.n, sizeof *t);
        void **data = ddps_calloc((size_t)ws.n, sizeof *data);
        for (int i = 0; i < ws.n; i++) {
            size_t numel = 1;
            for (int d = 0; d < ws.list[i].ndim; d++) numel *= (size_t)ws.list[i].shape[d];
            float *f = ddps_malloc(numel * sizeof(float));
            ddps_ws_random_values(seed, ws.list[i].name, ws.list[i].ndim, ws.list[i].shape, f);
            if (dtype == ST_F16 || dtype == ST_BF16) {
                uint16_t *h = ddps_malloc(numel * sizeof(uint16_t));
                for (size_t k = 0; k < numel; k++) h[k] = dtype == ST_F16 ? ddps_st_f32_to_f16(f[k]) : ddps_st_f32_to_bf16(f[k]);
                free(f);
                data[i] = h;
            } else {
                data[i] = f;
            }
            t[i].name = ws.list[i].name;
            t[i].dtype = dtype == ST_F16 || dtype == ST_BF16 ? dtype : ST_F32;
            t[i].ndim = ws.list[i].ndim;
            memcpy(t[i].shape, ws.list[i].shape, sizeof ws.list[i].shape);
            t[i].data = data[i];
        }
        char *path = ddps_path_join(dir, file);
        rc = ddps_st_write(path, t, ws.n, err);
        free(path);
        for (int i = 0; i < ws.n; i++) free(data[i]);
        free(data);
        free(t);
    }
    ddps_ws_free(&ws);
    free(dir);
    return rc;
}

int ddps_sd_write_random(const char *dir, const ddps_unet_config *u, const ddps_vae_config *v,
                         const ddps_clip_config *c, const char *const *words, int nwords, uint64_t seed,
                         st_dtype dtype, ddps_err *err) {
    if (ddps_mkdirs(dir, err) != 0) return -1;
    char *td = ddps_path_join(dir, "tokenizer");
    int vocab = 0;
    int rc = ddps_mkdirs(td, err);
    if (rc == 0) rc = ddps_tokenizer_write_small(td, words, nwords, &vocab, err);
    free(td);
    if (rc != 0) return -1;
    ddps_clip_config cc = *c;
    cc.vocab_size = vocab;
    static const char *index =
        "{\n  \"_class_name\": \"StableDiffusionPipeline\",\n  \"_ddps_note\": \"random weights made by ddps demo\",\n"
        "  \"unet\": [\"diffusers\", \"UNet2DConditionModel\"],\n  \"vae\": [\"diffusers\", \"AutoencoderKL\"],\n"
        "  \"text_encoder\": [\"transformers\", \"CLIPTextModel\"],\n  \"tokenizer\": [\"transformers\", \"CLIPTokenizer\"],\n"
        "  \"scheduler\": [\"diffusers\", \"DDPMScheduler\"]\n}\n";
    if (write_text(dir, "model_index.json", index, err) != 0) return -1;
    ddps_sched_config sc = {1000, 0.00085f, 0.012f, 1, 0};
    char *sdir = ddps_path_join(dir, "scheduler");
    rc = ddps_mkdirs(sdir, err);
    char *sj = ddps_sched_config_json(&sc);
    if (rc == 0) rc = write_text(sdir, "scheduler_config.json", sj, err);
    free(sj);
    free(sdir);
    if (rc == 0)
        rc = write_component(dir, "text_encoder", "model.safetensors", "config.json", ddps_clip_config_json(&cc), &cc,
                             seed, dtype, err);
    if (rc == 0)
        rc = write_component(dir, "vae", "diffusion_pytorch_model.safetensors", "config.json", ddps_vae_config_json(v),
                             v, seed, dtype, err);
    if (rc == 0)
        rc = write_component(dir, "unet", "diffusion_pytorch_model.safetensors", "config.json",
                             ddps_unet_config_json(u), u, seed, dtype, err);
    return rc;
}
