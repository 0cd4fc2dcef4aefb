/* Datasets in torchvision's ImageFolder layout: ROOT/<class>/<image>.
 *
 * Scanning lists the class folders (sorted by name in byte order, as
 * torchvision's sorted() does on UTF-8 names) and, inside each, the image
 * files (sorted by file name). An image file is a regular file, or a link to
 * one, whose extension torchvision accepts, compared case-insensitively:
 *     .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp
 * Nothing is decoded here; the loader (pipeline/loader.h) does that.
 *
 * Everything that is not used is reported in `skipped` as one display line
 * "relpath: reason" (control bytes shown as \xNN): files directly under ROOT,
 * hidden entries (name starting with '.'), sub-folders inside a class folder
 * (not descended into, unlike torchvision), other extensions, unreadable
 * files, broken links, and class folders left without images. Images left
 * out by max_per_class are a choice, not a problem: they are not listed.
 *
 * Class names for prompts come from an optional mapping file whose format is
 * detected from its first non-empty line:
 *   1. ImageNet LOC_synset_mapping.txt: "n01440764 tench, Tinca tinca"
 *      -> folder "n01440764", name "tench" (text up to the first comma);
 *   2. a TSV whose header row has the columns "wnid" and "prompt_name"
 *      (a leading "# " on the header is part of it, as in imagenet-classes.tsv);
 *   3. "folder<TAB>name", two columns, no header.
 * Folders missing from the mapping keep their folder name (one warning says
 * how many). A malformed mapping is an error naming the file and the line.
 */
#ifndef DDPS_PIPELINE_DATASET_H
#define DDPS_PIPELINE_DATASET_H

#include <stdint.h>

#include "util/err.h"

typedef struct {
    char *name;        /* folder name */
    char *prompt_name; /* name used in the prompt (mapping file, else the folder name) */
    int first, count;  /* its items are items[first .. first+count) */
} ddps_class;

typedef struct {
    char *relpath; /* "<class>/<file>", relative to root, '/'-separated */
    int class_idx;
} ddps_item;

typedef struct {
    char *root; /* absolute, canonical path */
    int n_classes;
    ddps_class *classes; /* sorted by folder name (byte order, like torchvision) */
    int n_items;
    ddps_item *items; /* grouped by class, sorted by file name */
    int n_skipped;
    char **skipped; /* "relpath: reason" for every entry not used */
} ddps_dataset;

typedef struct {
    int max_per_class;            /* 0 = all; else a random subset of that many per class */
    uint64_t seed;                /* for the subset */
    const char *class_names_file; /* NULL = folder names */
    const char *const *only_classes; /* optional subset by folder name (n_only of them) */
    int n_only;
} ddps_dataset_opts;

/* Scans root. opt may be NULL (all images, folder names). With
 * max_per_class = m > 0 a class with more than m images keeps a random
 * subset of m, drawn by ddps_rng seeded from ddps_seed_mix(seed, FNV-1a of
 * the folder name): the same for the same seed and folder contents, in any
 * order of classes and with any only_classes; the subset stays sorted by
 * file name. only_classes names that match no class folder are an error.
 * Fails (one line in err) when root does not exist, is not a folder, or has
 * no class folder with images, and when the mapping file is unreadable or
 * malformed. On failure *out is left empty (safe to free). */
int ddps_dataset_scan(const char *root, const ddps_dataset_opts *opt, ddps_dataset *out, ddps_err *err);
void ddps_dataset_free(ddps_dataset *d);

/* Index of the class with this folder name, or -1. */
int ddps_dataset_find_class(const ddps_dataset *d, const char *name);

/* Display form of a file or folder name for one-line messages: the
 * reversible escaped form of util/escape.h (control bytes and invalid UTF-8
 * become \xNN, a backslash \\, valid UTF-8 is kept). Heap string. */
char *ddps_display_name(const char *s);

/* "An image of {}." + "tench" -> "An image of tench." Every "{}" (and, as
 * written in METHOD.md, every "{name}") is replaced by name; a template
 * without either is used as is (the label-free prompt). Heap string. */
char *ddps_prompt_format(const char *tmpl, const char *name);

#endif
