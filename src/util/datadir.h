/* Data files shipped with ddps (data/ in the source tree): CLIP's BPE
 * vocabulary and merges (clip-tokenizer/), ImageNet-1K's classes
 * (imagenet-classes.tsv). */
#ifndef DDPS_UTIL_DATADIR_H
#define DDPS_UTIL_DATADIR_H

#include "util/err.h"

/* The path of data file rel (caller frees), from the first folder that has
 * it: $DDPS_DATA_DIR, next to the executable (<exe dir>/data,
 * <exe dir>/../share/ddps), the installed data folder, the source tree's
 * data/. NULL with a one-line error listing where it looked. */
char *ddps_data_path(const char *rel, ddps_err *err);

#endif
