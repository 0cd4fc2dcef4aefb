/* Label mappings for distilled sets of WordNet-id classes (ImageNet and its
 * subsets), so that a pretrained ImageNet-1K teacher's outputs can be mapped
 * to the student's labels.
 *
 * torchvision's ImageFolder numbers classes by their folder names sorted
 * (byte order, only folders that exist): that is the student's label. The
 * ImageNet-1K index of a WordNet id comes from the table shipped with ddps
 * (data/imagenet-classes.tsv: index, wnid, prompt_name, wordnet_names; the
 * standard order, i.e. sorted wnids, as torchvision's ImageNet models use).
 *
 * Per ipc<N> folder, when every class is a WordNet id:
 *   class_to_idx.json  {"class_to_idx": {folder: ImageFolder index},
 *                       "idx_to_imagenet": [ImageNet-1K index per ImageFolder index, null if not in 1K],
 *                       "classes": [{"folder", "class", "wnid", "prompt_name", "imagefolder_index",
 *                                    "imagenet_index"}, ...]}   (ImageFolder order)
 *   classes.txt        the same as a TSV with a header line:
 *                      imagefolder_index, folder, wnid, imagenet_index (-1 if none), prompt_name
 */
#ifndef DDPS_PIPELINE_CLASS_MAP_H
#define DDPS_PIPELINE_CLASS_MAP_H

#include "util/err.h"

#define DDPS_IMAGENET_CLASSES 1000

typedef struct {
    char wnid[DDPS_IMAGENET_CLASSES][16];
    char *prompt_name[DDPS_IMAGENET_CLASSES];
} ddps_imagenet;

/* 1 for a WordNet noun id: 'n' and 8 digits. */
int ddps_is_wnid(const char *s);

/* Loads the shipped table (or path when not NULL), checking every row: 1000
 * rows, indices 0..999 in order, valid and unique wnids. Free with
 * ddps_imagenet_free. */
int ddps_imagenet_load(const char *path, ddps_imagenet **out, ddps_err *err);
void ddps_imagenet_free(ddps_imagenet *t);
/* ImageNet-1K index of a wnid, or -1. */
int ddps_imagenet_index(const ddps_imagenet *t, const char *wnid);

/* The RDED-style folder name of a class for --folder-names index: its
 * ImageNet-1K index as 5 digits ("00000"). Fails, naming the class, when it
 * is not an ImageNet-1K WordNet id. */
int ddps_index_folder(const ddps_imagenet *t, const char *class_name, char out[16], ddps_err *err);

/* Writes dir/class_to_idx.json and dir/classes.txt for the n classes written
 * (folders as written, class names = wnids, prompt names may be NULL: the
 * table's are used), unless some class is not a WordNet id (then nothing is
 * written and 0 returned). */
int ddps_class_map_write(const char *dir, int n, const char *const *folders, const char *const *classes,
                         const char *const *prompt_names, const ddps_imagenet *t, ddps_err *err);

#endif
