/* Small file-system helpers with ddps error reporting. */
#ifndef DDPS_UTIL_FS_H
#define DDPS_UTIL_FS_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Reads a whole regular file (at most max_bytes) into a NUL-terminated heap
 * buffer. *len gets the byte count (without the NUL). */
int ddps_read_file(const char *path, size_t max_bytes, char **out, size_t *len, ddps_err *err);
/* Writes bytes to path atomically (temporary file in the same folder, fsync, rename). */
int ddps_write_file_atomic(const char *path, const void *data, size_t len, ddps_err *err);
/* mkdir -p. */
int ddps_mkdirs(const char *path, ddps_err *err);
/* Joins a and b with one '/'. Returns a heap string. */
char *ddps_path_join(const char *a, const char *b);
int ddps_is_dir(const char *path);
/* Removes a tree (links are removed, never followed); a missing path is
 * fine. err may be NULL (best effort). */
int ddps_remove_tree(const char *path, ddps_err *err);
/* fsync of a folder (its entries: renames, new files), best effort. */
void ddps_fsync_dir(const char *path);
int ddps_is_file(const char *path);
char *ddps_strdup(const char *s);

/* Checked allocation: aborts with a message on out-of-memory (the only
 * failure we do not report as a ddps_err: nothing sensible can follow). */
void *ddps_malloc(size_t n);
void *ddps_calloc(size_t n, size_t size);
void *ddps_realloc(void *p, size_t n);
/* n*size with overflow check; returns 0 and sets *out, or -1 on overflow. */
int ddps_mul_size(size_t n, size_t size, size_t *out);

/* 64-bit FNV-1a, used for model identity and seeds (not for security). */
uint64_t ddps_fnv1a(uint64_t h, const void *data, size_t len);
#define DDPS_FNV_INIT 0xcbf29ce484222325ULL

#endif
