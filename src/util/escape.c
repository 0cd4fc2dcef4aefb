#include "util/escape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fs.h"
#include "util/utf8.h"

char *ddps_escape_bytes(const char *s) {
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t len = strlen((const char *)p);
    char *out = ddps_malloc(4 * len + 1), *q = out;
    while (*p) {
        int n = ddps_utf8_len(p);
        if (n == 1 && *p == '\\') {
            *q++ = '\\';
            *q++ = '\\';
            p++;
        } else if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f))) {
            snprintf(q, 5, "\\x%02x", *p);
            q += 4;
            p++;
        } else {
            memcpy(q, p, (size_t)n);
            q += n;
            p += n;
        }
    }
    *q = 0;
    return out;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

char *ddps_unescape_bytes(const char *s) {
    size_t len = strlen(s);
    char *out = ddps_malloc(len + 1), *q = out;
    for (const char *p = s; *p;) {
        if (*p != '\\') {
            *q++ = *p++;
            continue;
        }
        if (p[1] == '\\') {
            *q++ = '\\';
            p += 2;
        } else if (p[1] == 'x' && hexval(p[2]) >= 0 && hexval(p[3]) >= 0 && (hexval(p[2]) | hexval(p[3])) != 0) {
            *q++ = (char)(hexval(p[2]) * 16 + hexval(p[3]));
            p += 4;
        } else {
            free(out);
            return NULL;
        }
    }
    *q = 0;
    return out;
}
