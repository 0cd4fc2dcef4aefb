/* Loading JSON files (jansson) with a size limit and one-line errors. */
#ifndef DDPS_UTIL_JSON_H
#define DDPS_UTIL_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "util/err.h"

/* Reads and parses a JSON file that must hold an object: at most 16 MB,
 * duplicate keys refused; one-line error naming the file on failure. */
int ddps_json_load(const char *path, json_t **out, ddps_err *err);
/* The same with a size limit and jansson decoding flags of the caller's choice. */
int ddps_json_load_ex(const char *path, size_t max_bytes, size_t flags, json_t **out, ddps_err *err);

#endif
