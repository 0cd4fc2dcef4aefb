/* PNG through libpng, read from and written to memory.
 *
 * Every PNG becomes 8-bit RGB the way PIL's convert("RGB") does it:
 * palette entries looked up (transparency ignored), gray replicated (1, 2
 * and 4-bit gray scaled to 0..255 by bit replication, as PIL's L;1/L;2/L;4
 * unpackers do), alpha dropped, 16-bit samples reduced to their high byte.
 * (PIL itself opens 16-bit gray as a 32-bit "I" image whose conversion to RGB
 * saturates at 255; ddps takes the high byte there too, which keeps the
 * picture.) An eXIf chunk's orientation is honoured like JPEG's.
 *
 * libpng reports errors by longjmp: as in image_jpeg.c, one function calls
 * setjmp and everything it allocates hangs off a struct owned by its caller. */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "util/fs.h"

typedef struct {
    const char *name;
    const uint8_t *data;
    size_t len, pos;
    char msg[256];
    png_structp png;
    png_infop info;
    uint8_t *px;        /* output pixels; freed by the caller on failure */
    png_bytep *rows;    /* row pointers into px */
    int w, h, orientation;
} png_decoder;

static void on_png_error(png_structp png, png_const_charp msg) {
    png_decoder *d = png_get_error_ptr(png);
    snprintf(d->msg, sizeof d->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg) {
    (void)png;
    ddps_debug("png warning: %s", msg);
}

static void on_png_read(png_structp png, png_bytep out, size_t n) {
    png_decoder *d = png_get_io_ptr(png);
    if (n > d->len - d->pos) png_error(png, "file is truncated");
    memcpy(out, d->data + d->pos, n);
    d->pos += n;
}

static int exif_orientation_of(png_structp png, png_infop info) {
#ifdef PNG_eXIf_SUPPORTED
    png_uint_32 n = 0;
    png_bytep exif = NULL;
    if (info && png_get_eXIf_1(png, info, &n, &exif) && exif && n > 0) return ddps_exif_orientation(exif, n);
#else
    (void)png;
    (void)info;
#endif
    return 0;
}

static int png_decode_inner(png_decoder *d, ddps_err *err) {
    png_structp png = d->png;
    png_infop info = d->info;
    if (setjmp(png_jmpbuf(png))) return ddps_fail_data(err, "%s: bad PNG: %s", d->name, d->msg);
    png_set_read_fn(png, d, on_png_read);
#ifdef DDPS_FUZZ
    /* Fuzz builds only (fuzz/CMakeLists.txt): let mutated chunks past the
     * CRC check so the fuzzer reaches the decoding paths. */
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
#ifdef PNG_IGNORE_ADLER32
    png_set_option(png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
#endif
    /* libpng's own limits stay generous; ours below is the one that counts. */
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);

    png_uint_32 w, h;
    int depth, color, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &color, &interlace, NULL, NULL);
    if (w == 0 || h == 0) return ddps_fail_data(err, "%s: bad PNG: zero image size", d->name);
    if ((uint64_t)w * h > DDPS_IMAGE_MAX_PIXELS)
        return ddps_fail_data(err, "%s: PNG is %ux%u, more than the %u-pixel limit", d->name, (unsigned)w, (unsigned)h,
                         DDPS_IMAGE_MAX_PIXELS);
    /* Deflate expands at most 1032:1, so the bytes left in the file bound the
     * image data they can hold: a 58-byte file claiming 1 x 167772161 pixels
     * is refused here instead of costing a 500 MB allocation (found by
     * fuzz_png; fuzz/regress/fuzz_png/). Filter bytes and the rows of the
     * original format (before conversion) are what deflate has to produce. */
    uint64_t raw = (uint64_t)h * (1 + (uint64_t)png_get_rowbytes(png, info));
    if ((uint64_t)(d->len - d->pos) * 1032 + 4096 < raw)
        return ddps_fail_data(err, "%s: bad PNG: %ux%u pixels cannot fit in the %zu bytes left (file truncated)", d->name,
                         (unsigned)w, (unsigned)h, d->len - d->pos);

    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png); /* high byte */
    /* Unconditional: a palette with tRNS grows an alpha channel during
     * expansion; libpng strips only channels that exist. */
    png_set_strip_alpha(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != (size_t)w * 3)
        return ddps_fail_data(err, "%s: bad PNG: unexpected row layout after conversion", d->name);

    d->w = (int)w;
    d->h = (int)h;
    d->px = ddps_malloc((size_t)w * h * 3);
    d->rows = ddps_malloc((size_t)h * sizeof(png_bytep));
    for (png_uint_32 y = 0; y < h; y++) d->rows[y] = d->px + (size_t)y * w * 3;
    png_read_image(png, d->rows);
    d->orientation = exif_orientation_of(png, info);
    /* Reads the chunks after the image data: a file cut inside them is
     * truncated too, and an eXIf chunk may sit there. */
    png_read_end(png, info);
    if (!d->orientation) d->orientation = exif_orientation_of(png, info);
    return 0;
}

int ddps_image_decode_png(const uint8_t *data, size_t len, const char *name, ddps_image *out, ddps_err *err) {
    out->w = out->h = 0;
    out->px = NULL;
    png_decoder *d = ddps_calloc(1, sizeof *d);
    d->name = name;
    d->data = data;
    d->len = len;
    d->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, d, on_png_error, on_png_warning);
    if (d->png) d->info = png_create_info_struct(d->png);
    int rc;
    if (!d->png || !d->info)
        rc = ddps_fail_data(err, "%s: cannot initialise libpng", name);
    else
        rc = png_decode_inner(d, err);
    if (d->png) png_destroy_read_struct(&d->png, d->info ? &d->info : NULL, NULL);
    free(d->rows);
    if (rc == 0) {
        out->w = d->w;
        out->h = d->h;
        out->px = d->px;
        ddps_image_orient(out, d->orientation);
    } else {
        free(d->px);
    }
    free(d);
    return rc;
}

/* ---- Encoding ----------------------------------------------------------- */

typedef struct {
    png_structp png;
    png_infop info;
    uint8_t *buf;
    size_t len, cap;
    char msg[256];
} png_encoder;

static void on_png_write(png_structp png, png_bytep data, size_t n) {
    png_encoder *e = png_get_io_ptr(png);
    if (n > e->cap - e->len) {
        size_t cap = e->cap ? e->cap : 65536;
        while (n > cap - e->len) {
            if (cap > SIZE_MAX / 2) png_error(png, "output too large");
            cap *= 2;
        }
        e->buf = ddps_realloc(e->buf, cap);
        e->cap = cap;
    }
    memcpy(e->buf + e->len, data, n);
    e->len += n;
}

static void on_png_flush(png_structp png) { (void)png; }

static void on_png_write_error(png_structp png, png_const_charp msg) {
    png_encoder *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    png_longjmp(png, 1);
}

static int png_encode_inner(png_encoder *e, const ddps_image *img, int level, ddps_err *err) {
    png_structp png = e->png;
    if (setjmp(png_jmpbuf(png))) return ddps_fail_data(err, "PNG encoder: %s", e->msg);
    png_set_write_fn(png, e, on_png_write, on_png_flush);
    png_set_compression_level(png, level);
    png_set_IHDR(png, e->info, (png_uint_32)img->w, (png_uint_32)img->h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, e->info);
    const size_t stride = (size_t)img->w * 3;
    for (int y = 0; y < img->h; y++) png_write_row(png, img->px + (size_t)y * stride);
    png_write_end(png, NULL);
    return 0;
}

int ddps_image_encode_png(const ddps_image *img, int level, uint8_t **out, size_t *len, ddps_err *err) {
    *out = NULL;
    *len = 0;
    if (!img->px || img->w <= 0 || img->h <= 0) return ddps_fail_data(err, "PNG encoder: empty image");
    if (level < 0 || level > 9) return ddps_fail_data(err, "PNG encoder: compression level must be 0..9, got %d", level);
    png_encoder *e = ddps_calloc(1, sizeof *e);
    e->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, e, on_png_write_error, on_png_warning);
    if (e->png) e->info = png_create_info_struct(e->png);
    int rc;
    if (!e->png || !e->info)
        rc = ddps_fail_data(err, "PNG encoder: cannot initialise libpng");
    else
        rc = png_encode_inner(e, img, level, err);
    if (e->png) png_destroy_write_struct(&e->png, e->info ? &e->info : NULL);
    if (rc == 0) {
        *out = e->buf;
        *len = e->len;
    } else {
        free(e->buf);
    }
    free(e);
    return rc;
}
