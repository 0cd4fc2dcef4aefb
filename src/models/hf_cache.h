/* Models from the local Hugging Face hub cache (ddps never downloads).
 *
 * "org/name", "org/name@revision" or "org/name@<40-hex commit>" resolves to
 *   <cache>/models--org--name/snapshots/<commit>/
 * where <cache> is $HF_HUB_CACHE, else $HF_HOME/hub, else
 * ~/.cache/huggingface/hub, and <commit> is the content of
 * models--org--name/refs/<revision> (revision "main" by default) or the
 * commit given. Snapshot files are symlinks into blobs/, followed as usual.
 * Nothing read from the cache is trusted: the ref must hold a 40-hex commit. */
#ifndef DDPS_MODELS_HF_CACHE_H
#define DDPS_MODELS_HF_CACHE_H

#include "util/err.h"

/* 1 when spec has the form org/name[@revision] (letters, digits, '-', '_',
 * '.'; no "..", no leading '.'), 0 otherwise. */
int ddps_hf_is_repo_id(const char *spec);

/* The cache folder searched (caller frees). */
char *ddps_hf_cache_dir(void);

/* Resolves spec to its snapshot folder (caller frees *dir). Not cached: a
 * one-line error saying where it looked and the command that fetches it. */
int ddps_hf_resolve(const char *spec, char **dir, ddps_err *err);

#endif
