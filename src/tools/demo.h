/* A small synthetic image dataset for `ddps demo` and for tests: no
 * downloads, yet real files in the ImageFolder layout the pipeline reads.
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

#endif
