/* UTF-8, the one validator and decoder of ddps (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF). File names (util/escape.h,
 * pipeline/dataset.c, pipeline/select.c) and the tokenizer's text
 * (models/tokenizer.c) all go through it, so they cannot disagree about
 * what valid UTF-8 is. */
#ifndef DDPS_UTIL_UTF8_H
#define DDPS_UTIL_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes the sequence at s[0..len), len >= 1. A valid sequence: returns its
 * length 1..4 and its code point in *cp. Otherwise returns -n, where n >= 1
 * is the length of the maximal ill-formed subpart (Unicode ch. 3, what
 * Python's decode(errors="replace") replaces by one U+FFFD): the lead byte
 * plus the continuation bytes that were still allowed; *cp = U+FFFD.
 * A sequence cut short by len is ill-formed. */
int ddps_utf8_next(const unsigned char *s, size_t len, uint32_t *cp);

/* Length of the valid UTF-8 sequence at the NUL-terminated p (1..4), 0 when
 * invalid (a NUL inside the sequence makes it invalid; p[0] = NUL gives 1). */
int ddps_utf8_len(const unsigned char *p);

/* Writes code point c (at most U+10FFFF, not a surrogate) as UTF-8 at p;
 * returns the byte count 1..4 (p needs room for 4). */
size_t ddps_utf8_put(uint32_t c, char *p);

#endif
