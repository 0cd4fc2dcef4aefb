/* The fixtures of `ddps demo` and of tests: the toy world's settings for
 * the demo, and a tiny random-weight model with its tokenizer files, made on
 * the spot with nothing downloaded (tests that need a model fast; the demo
 * itself runs the trained toy model, data/toy-sd). The pictures come from
 * the toy world (world.h). */
#ifndef DDPS_TOOLS_DEMO_H
#define DDPS_TOOLS_DEMO_H

#include <stdint.h>

#include "models/sd.h"
#include "util/err.h"

/* The toy world's scoring settings: the toy model was trained on 128-px
 * pictures (16 x 16 latents), whose objects span 1/5 to 1/2 of the side. */
#define DDPS_DEMO_SIZE 128
#define DDPS_DEMO_PATCH 80
#define DDPS_DEMO_STRIDE 8
/* Every other setting (timesteps included) is METHOD.md's default. */

/* ---- the model (demo_model.c) and its tokenizer (demo_tokenizer.c) ---- */

/* The demo's tiny model: SD v1.x's structure at small widths (like the
 * golden test model). */
void ddps_demo_tiny_configs(ddps_unet_config *u, ddps_vae_config *v, ddps_clip_config *c);

/* Writes a complete model folder with random weights (stored as dtype:
 * ST_F32, ST_F16 or ST_BF16) for the given configs and a small tokenizer
 * that knows the given words (the demo's model). */
int ddps_sd_write_random(const char *dir, const ddps_unet_config *u, const ddps_vae_config *v,
                         const ddps_clip_config *c, const char *const *words, int nwords, uint64_t seed,
                         st_dtype dtype, ddps_err *err);

/* Writes a small but complete CLIP-style tokenizer folder (vocab.json,
 * merges.txt, special_tokens_map.json, tokenizer_config.json; dir is created
 * if needed): the tokenizer of ddps_tokenizer_build_small (models/tokenizer.h)
 * for these words, whose text still tokenizes into those words' pieces where
 * they occur and byte-level symbols elsewhere. *vocab_size (if not NULL)
 * gets the vocabulary size. */
int ddps_tokenizer_write_small(const char *dir, const char *const *words, int nwords, int *vocab_size,
                               ddps_err *err);

#endif
