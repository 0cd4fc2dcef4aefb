/* Reversible text form of arbitrary file-name bytes, for manifests and
 * terminal messages (file names on Linux are bytes, not necessarily UTF-8).
 *
 *   - valid UTF-8 (RFC 3629, util/utf8.h) other than control characters is kept as is;
 *   - a backslash becomes "\\";
 *   - every other byte (C0 controls, DEL, and each byte that is not part of
 *     a valid UTF-8 sequence) becomes "\xNN" (two lower-case hex digits).
 *
 * The result is always valid UTF-8 without control characters, and
 * ddps_unescape_bytes gives back the exact original bytes. A name without
 * backslashes, controls or invalid UTF-8 is unchanged. */
#ifndef DDPS_UTIL_ESCAPE_H
#define DDPS_UTIL_ESCAPE_H

#include <stddef.h>

#include "util/utf8.h" /* the UTF-8 rule above; ddps_utf8_len for callers */

/* Heap string (free it); s = NULL gives "". */
char *ddps_escape_bytes(const char *s);
/* Inverse of ddps_escape_bytes: heap string, or NULL when s is not a valid
 * escaped form (a lone backslash, a bad \x sequence, \x00). */
char *ddps_unescape_bytes(const char *s);

#endif
