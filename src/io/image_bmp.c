/* BMP and binary PNM (PBM/PGM/PPM) decoders: small formats parsed by hand,
 * every header field checked against the buffer before use.
 *
 * BMP: Windows BITMAPINFOHEADER and its V4/V5 extensions, plus OS/2's
 * BITMAPCOREHEADER; 1/4/8-bit palette, 24-bit BGR, 32-bit BGRX and 32-bit
 * bit fields whose channels are whole bytes; bottom-up or top-down. RLE and
 * 16-bit BMPs are refused with a clear error.
 * PNM: P4 (bitmap, 1 = black), P5 (gray), P6 (RGB), maxval 1..65535; values
 * are scaled to 0..255 as round(v / maxval * 255) (round half to even, as
 * PIL does), 16-bit samples big-endian. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "util/fs.h"

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Byte index (0..3) of a channel in a little-endian 32-bit pixel, or -1 when
 * its mask is not exactly one whole byte. */
static int mask_byte(uint32_t mask) {
    for (int i = 0; i < 4; i++)
        if (mask == 0xffu << (8 * i)) return i;
    return -1;
}

int ddps_image_decode_bmp(const uint8_t *d, size_t len, const char *name, ddps_image *out, ddps_err *err) {
    out->w = out->h = 0;
    out->px = NULL;
    if (len < 14 + 12) return ddps_fail_data(err, "%s: bad BMP: file is truncated", name);
    const uint32_t data_off = le32(d + 10), hsize = le32(d + 14);
    int64_t w, h;
    uint32_t bpp, compression = 0, colors = 0;
    int pal_entry = 4;
    if (hsize == 12) { /* OS/2 BITMAPCOREHEADER */
        w = le16(d + 18);
        h = le16(d + 20);
        bpp = le16(d + 24);
        pal_entry = 3;
    } else if (hsize >= 40 && hsize <= 256) {
        if (len < 14 + (size_t)hsize) return ddps_fail_data(err, "%s: bad BMP: file is truncated", name);
        w = (int32_t)le32(d + 18);
        h = (int32_t)le32(d + 22);
        bpp = le16(d + 28);
        compression = le32(d + 30);
        colors = le32(d + 46);
    } else {
        return ddps_fail_data(err, "%s: bad BMP: unsupported header size %u", name, (unsigned)hsize);
    }
    const int top_down = h < 0;
    if (h < 0) h = -h;
    if (w <= 0 || h <= 0) return ddps_fail_data(err, "%s: bad BMP: invalid size %lldx%lld", name, (long long)w, (long long)h);
    if ((uint64_t)w * (uint64_t)h > DDPS_IMAGE_MAX_PIXELS)
        return ddps_fail_data(err, "%s: BMP is %lldx%lld, more than the %u-pixel limit", name, (long long)w, (long long)h,
                         DDPS_IMAGE_MAX_PIXELS);

    /* Channel byte positions within a 32-bit pixel (BGRX unless bit fields say otherwise). */
    int rb = 2, gb = 1, bb = 0;
    if (compression == 3 || compression == 6) {
        if (bpp != 32) return ddps_fail_data(err, "%s: BMP with %u-bit bit fields is not supported", name, (unsigned)bpp);
        /* Masks follow a 40-byte header, or sit inside a larger one. */
        if (len < 14 + 40 + 12) return ddps_fail_data(err, "%s: bad BMP: file is truncated", name);
        rb = mask_byte(le32(d + 54));
        gb = mask_byte(le32(d + 58));
        bb = mask_byte(le32(d + 62));
        if (rb < 0 || gb < 0 || bb < 0)
            return ddps_fail_data(err, "%s: BMP bit fields other than whole bytes are not supported", name);
    } else if (compression != 0) {
        return ddps_fail_data(err, "%s: compressed BMP (method %u) is not supported", name, (unsigned)compression);
    }
    if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 24 && bpp != 32)
        return ddps_fail_data(err, "%s: %u-bit BMP is not supported", name, (unsigned)bpp);

    /* Palette (bpp <= 8): right after the header. */
    uint8_t pal[256][3];
    memset(pal, 0, sizeof pal); /* indices past the palette read as black */
    if (bpp <= 8) {
        uint32_t n = colors ? colors : 1u << bpp;
        if (n > 256) return ddps_fail_data(err, "%s: bad BMP: palette of %u colours", name, (unsigned)n);
        size_t pal_off = 14 + (size_t)hsize;
        if (pal_off > len || (len - pal_off) / (size_t)pal_entry < n)
            return ddps_fail_data(err, "%s: bad BMP: palette is truncated", name);
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *p = d + pal_off + (size_t)i * pal_entry;
            pal[i][0] = p[2];
            pal[i][1] = p[1];
            pal[i][2] = p[0];
        }
    }

    const uint64_t stride = ((uint64_t)w * bpp + 31) / 32 * 4;
    if (data_off > len || (uint64_t)(len - data_off) / stride < (uint64_t)h)
        return ddps_fail_data(err, "%s: bad BMP: pixel data is truncated", name);
    if (ddps_image_alloc(out, (int)w, (int)h) != 0) return ddps_fail_data(err, "%s: BMP too large", name);
    for (int64_t y = 0; y < h; y++) {
        const uint8_t *row = d + data_off + (size_t)((top_down ? y : h - 1 - y) * stride);
        uint8_t *o = out->px + (size_t)y * (size_t)w * 3;
        if (bpp == 24) {
            for (int64_t x = 0; x < w; x++, o += 3, row += 3) {
                o[0] = row[2];
                o[1] = row[1];
                o[2] = row[0];
            }
        } else if (bpp == 32) {
            for (int64_t x = 0; x < w; x++, o += 3, row += 4) {
                o[0] = row[rb];
                o[1] = row[gb];
                o[2] = row[bb];
            }
        } else {
            const int per_byte = 8 / (int)bpp, mask = (1 << bpp) - 1;
            for (int64_t x = 0; x < w; x++, o += 3) {
                const int shift = 8 - (int)bpp * (int)(x % per_byte + 1);
                const int idx = (row[x / per_byte] >> shift) & mask;
                memcpy(o, pal[idx], 3);
            }
        }
    }
    return 0;
}

/* ---- PNM ---------------------------------------------------------------- */

static int pnm_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* Reads one unsigned decimal header field at *pos, skipping whitespace and
 * comments; -1 when missing, malformed or above 2^31 - 1. */
static int64_t pnm_field(const uint8_t *d, size_t len, size_t *pos) {
    size_t p = *pos;
    for (;;) {
        while (p < len && pnm_space(d[p])) p++;
        if (p < len && d[p] == '#') {
            while (p < len && d[p] != '\n' && d[p] != '\r') p++;
            continue;
        }
        break;
    }
    if (p >= len || d[p] < '0' || d[p] > '9') return -1;
    int64_t v = 0;
    while (p < len && d[p] >= '0' && d[p] <= '9') {
        v = v * 10 + (d[p++] - '0');
        if (v > 0x7fffffff) return -1;
    }
    *pos = p;
    return v;
}

int ddps_image_decode_pnm(const uint8_t *d, size_t len, const char *name, ddps_image *out, ddps_err *err) {
    out->w = out->h = 0;
    out->px = NULL;
    if (len < 3 || d[0] != 'P' || d[1] < '4' || d[1] > '6') return ddps_fail_data(err, "%s: bad PNM header", name);
    const int kind = d[1] - '0';
    size_t pos = 2;
    int64_t w = pnm_field(d, len, &pos), h = pnm_field(d, len, &pos);
    int64_t maxval = kind == 4 ? 1 : pnm_field(d, len, &pos);
    if (w < 0 || h < 0 || maxval < 0) return ddps_fail_data(err, "%s: bad PNM header", name);
    if (w == 0 || h == 0) return ddps_fail_data(err, "%s: bad PNM: zero image size", name);
    if (maxval < 1 || maxval > 65535) return ddps_fail_data(err, "%s: bad PNM: maxval %lld", name, (long long)maxval);
    if ((uint64_t)w * (uint64_t)h > DDPS_IMAGE_MAX_PIXELS)
        return ddps_fail_data(err, "%s: PNM is %lldx%lld, more than the %u-pixel limit", name, (long long)w, (long long)h,
                         DDPS_IMAGE_MAX_PIXELS);
    /* Exactly one whitespace byte separates the header from the samples. */
    if (pos >= len || !pnm_space(d[pos])) return ddps_fail_data(err, "%s: bad PNM header", name);
    pos++;

    const int channels = kind == 6 ? 3 : 1, bps = maxval > 255 ? 2 : 1;
    const uint64_t row_bytes = kind == 4 ? ((uint64_t)w + 7) / 8 : (uint64_t)w * channels * bps;
    if ((uint64_t)(len - pos) / row_bytes < (uint64_t)h) return ddps_fail_data(err, "%s: bad PNM: pixel data is truncated", name);

    /* Sample value -> 8 bits. A table for 8-bit samples; 16-bit ones are
     * computed (values above maxval saturate, as in PIL). */
    uint8_t lut[256];
    for (int v = 0; v < 256; v++) {
        double s = rint((double)v / (double)maxval * 255.0);
        lut[v] = (uint8_t)(s > 255 ? 255 : s);
    }
    if (ddps_image_alloc(out, (int)w, (int)h) != 0) return ddps_fail_data(err, "%s: PNM too large", name);
    const uint8_t *src = d + pos;
    uint8_t *o = out->px;
    for (int64_t y = 0; y < h; y++, src += row_bytes) {
        if (kind == 4) {
            for (int64_t x = 0; x < w; x++, o += 3)
                o[0] = o[1] = o[2] = (src[x >> 3] >> (7 - (x & 7))) & 1 ? 0 : 255;
            continue;
        }
        const uint8_t *s = src;
        for (int64_t x = 0; x < w; x++, o += 3) {
            for (int c = 0; c < channels; c++, s += bps) {
                uint8_t v;
                if (bps == 1) {
                    v = lut[*s];
                } else {
                    double f = rint((double)((uint32_t)s[0] << 8 | s[1]) / (double)maxval * 255.0);
                    v = (uint8_t)(f > 255 ? 255 : f);
                }
                o[c] = v;
            }
            if (channels == 1) o[1] = o[2] = o[0];
        }
    }
    return 0;
}
