#include "util/utf8.h"

int ddps_utf8_next(const unsigned char *s, size_t len, uint32_t *cp) {
    unsigned c = s[0], lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    int need;
    uint32_t v;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
        v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        v = c & 0x0f;
        if (c == 0xe0) lo = 0xa0;      /* overlong */
        else if (c == 0xed) hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        v = c & 0x07;
        if (c == 0xf0) lo = 0x90;      /* overlong */
        else if (c == 0xf4) hi = 0x8f; /* above U+10FFFF */
    } else {
        *cp = 0xfffd; /* stray continuation, C0, C1, F5..FF */
        return -1;
    }
    int k;
    for (k = 0; k < need && (size_t)k + 1 < len; k++) {
        unsigned b = s[k + 1];
        if (b < (k == 0 ? lo : 0x80) || b > (k == 0 ? hi : 0xbf)) break;
        v = (v << 6) | (b & 0x3f);
    }
    if (k < need) {
        *cp = 0xfffd;
        return -(k + 1);
    }
    *cp = v;
    return need + 1;
}

int ddps_utf8_len(const unsigned char *p) {
    uint32_t cp;
    size_t len = 1;
    while (len < 4 && p[len - 1] && p[len]) len++; /* up to 4 bytes, not past the NUL */
    int n = ddps_utf8_next(p, len, &cp);
    return n > 0 ? n : 0;
}

size_t ddps_utf8_put(uint32_t c, char *p) {
    if (c < 0x80) {
        p[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        p[0] = (char)(0xc0 | (c >> 6));
        p[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        p[0] = (char)(0xe0 | (c >> 12));
        p[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        p[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    p[0] = (char)(0xf0 | (c >> 18));
    p[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    p[2] = (char)(0x80 | ((c >> 6) & 0x3f));
    p[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}
