/* The fixtures of `ddps demo` (and of tests): a synthetic dataset, a tiny
 * random-weight model and its tokenizer files, made on the spot with
 * nothing downloaded.
 *
 * The synthetic dataset (demo_synth.c): real files in the ImageFolder
 * layout the pipeline reads.
 *
 * Each class is one kind of picture, drawn procedurally:
 *   circle, square, triangle, ring, cross   one shape on a background,
 *   stripes, checkerboard, gradient         a pattern over the whole image.
 * Colours, positions, scales, rotations, backgrounds and noise are random,
 * but the foreground hue of a class stays near its own hue, so classes
 * differ both in shape and in colour statistics. The output depends only on
 * the arguments: the same seed gives byte-identical files. */
#ifndef DDPS_TOOLS_DEMO_H
#define DDPS_TOOLS_DEMO_H

#include <stdint.h>

#include "models/sd.h"
#include "util/err.h"

/* Most classes ddps_synth_dataset draws. */
#define DDPS_SYNTH_MAX_CLASSES 8

/* Writes an ImageFolder root/<class>/<class>_NNN.png: n_classes classes (at most 8) of
   per_class procedurally drawn pictures (size x size) such as circle, square, triangle,
   stripes, checkerboard, ring, cross, gradient: random colours, positions, scales,
   backgrounds and noise, deterministic for a seed. names (optional) receives the class
   names (static strings).
   Limits: n_classes 1..8, per_class 1..100000, size 8..4096. Existing files
   of the same names are replaced. */
/* Name of synthetic class cls (0..7), or NULL. */
const char *ddps_synth_class_name(int cls);

int ddps_synth_dataset(const char *root, int n_classes, int per_class, int size, uint64_t seed,
                       const char **names, ddps_err *err);

/* Draws picture `index` of class `cls` (0..7) into a size x size RGB buffer
   (size * size * 3 bytes): exactly what ddps_synth_dataset writes. */
void ddps_synth_draw(int cls, int index, int size, uint64_t seed, uint8_t *rgb);

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
