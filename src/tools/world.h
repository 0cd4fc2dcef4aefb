/* The toy world: a deterministic generator of labelled pictures whose truth
 * is known (each image holds one object of its class, and the object's box is
 * written beside it). One generator serves `ddps demo`, the tests, the
 * benchmark pictures and the training of the toy model (data/toy-sd).
 *
 * Limitations first: the objects are flat procedural shapes, not photographs;
 * the world measures whether ddps finds what its model learnt, not how a real
 * Stable Diffusion model behaves on ImageNet.
 *
 * Ten classes, each one object kind with two or three variants (the modes a
 * clustering should find):
 *   red disc (solid, bullseye, split)      blue square (solid, framed, diamond)
 *   green triangle (solid, hollow, striped) yellow star (five, eight, centred)
 *   striped disc (wide, fine)              purple cross (plus, saltire, outlined)
 *   orange ring (thin, thick, double)      cyan hexagon (solid, holed, dotted)
 *   checkered square (coarse, fine)        pink heart (solid, outlined)
 * An object's box side is 1/5 to 1/2 of the image's shorter side, at a random
 * place and rotation (within +-20 degrees), on a muted background cluttered
 * with 4-9 distractor shapes from one pool for every class (muted ellipses,
 * outlines, lines, dot clusters), so that only the object says the class.
 * Images are mostly base x base (128 by default), one in five another aspect
 * ratio (up to 3:2); three in four PNG, one in four JPEG (quality 92).
 *
 * ddps_world_generate(DIR) makes DIR/train, DIR/val, DIR/test (ImageFolders,
 * class folders such as red-disc holding 0000.png ...), DIR/classes.tsv
 * (folder<TAB>prompt name, for --class-names) and DIR/boxes.json: an object
 * mapping each image's path relative to DIR to
 * {"class": folder, "variant": name, "box": [x0, y0, x1, y1]} in pixels of the
 * file (x1, y1 exclusive). The three splits draw from different seeds
 * (seed mixed with 1, 2, 3); the same seed gives byte-identical files. */
#ifndef DDPS_TOOLS_WORLD_H
#define DDPS_TOOLS_WORLD_H

#include <stdint.h>

#include "io/image.h"
#include "util/err.h"

#define DDPS_WORLD_CLASSES 10
#define DDPS_WORLD_MAX_VARIANTS 3

/* What one drawn picture holds. */
typedef struct {
    int cls, variant;
    int box[4]; /* x0, y0, x1, y1 in pixels (x1, y1 exclusive) */
    int jpeg;   /* 1: the file is written as JPEG */
} ddps_world_item;

const char *ddps_world_folder(int cls);               /* "red-disc", NULL out of range */
const char *ddps_world_name(int cls);                 /* "red disc" (the prompt name) */
int ddps_world_variants(int cls);                     /* 2 or 3 */
const char *ddps_world_variant(int cls, int variant); /* "bullseye" */

/* Draws picture `index` of class cls (0..9) from stream seed, at base size
 * base (16..2048): allocates img (free with ddps_image_free) and fills it.
 * Deterministic. -1 with err when out of range. */
int ddps_world_draw(int cls, int index, uint64_t seed, int base, ddps_image *img, ddps_world_item *item,
                    ddps_err *err);

/* The stream seed of split 0 (train), 1 (val) or 2 (test) of world seed. */
uint64_t ddps_world_split_seed(uint64_t seed, int split);

/* Writes the world described above into dir (created when missing; files
 * of the same names are replaced): n_classes classes (the first ones of the
 * list, 1..10), train/val/test images per class (0..100000 each, not all 0).
 * -1 with err (usage kind for a bad argument). */
int ddps_world_generate(const char *dir, uint64_t seed, int n_classes, int train, int val, int test, int base,
                     ddps_err *err);

#endif
