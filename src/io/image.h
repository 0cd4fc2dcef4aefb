/* Images: decoding (JPEG, PNG, WebP, TIFF, BMP, PNM) to 8-bit RGB, encoding, and resizing
 * exactly like PIL's Image.resize(..., BILINEAR) (antialiased when
 * shrinking), which is what torchvision's Resize does on PIL images.
 *
 * Every decoder treats its input as hostile: sizes are checked before any
 * allocation, truncated or corrupt data is an error (never a partial image),
 * and errors are one line naming the file.
 */
#ifndef DDPS_IO_IMAGE_H
#define DDPS_IO_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* 8-bit RGB, row-major, 3 bytes per pixel, no row padding. */
typedef struct {
    int w, h;
    uint8_t *px;
} ddps_image;

/* Largest image ddps decodes (width * height); larger files are refused. */
#define DDPS_IMAGE_MAX_PIXELS (1u << 28)

/* Any supported format, converted to 8-bit RGB (grayscale, CMYK, palette,
 * 16-bit and alpha inputs included; alpha is dropped as PIL's convert("RGB")
 * does), EXIF orientation applied. */
int ddps_image_load(const char *path, ddps_image *out, ddps_err *err);
/* Same from memory; name is used in error messages. */
int ddps_image_decode(const void *data, size_t len, const char *name, ddps_image *out, ddps_err *err);
/* Format from the extension: .png, .jpg/.jpeg (quality 1..100). Written atomically. */
int ddps_image_save(const char *path, const ddps_image *img, int jpeg_quality, ddps_err *err);

int ddps_image_alloc(ddps_image *img, int w, int h); /* zero-filled; -1 when too large */
void ddps_image_free(ddps_image *img);

/* PIL Image.resize((w, h), Image.BILINEAR) on an RGB image, bit-exact. */
int ddps_image_resize(const ddps_image *src, int w, int h, ddps_image *dst, ddps_err *err);
/* Copies the box [x, x+w) x [y, y+h), which must lie inside src. */
int ddps_image_crop(const ddps_image *src, int x, int y, int w, int h, ddps_image *dst, ddps_err *err);
/* Copies src into dst at (x, y), clipped to dst. */
void ddps_image_paste(ddps_image *dst, const ddps_image *src, int x, int y);

/* torchvision Resize(size) with an int size: the shorter side becomes size,
 * the longer side int(size * long / short) (truncated). */
void ddps_resize_shorter_size(int w, int h, int size, int *ow, int *oh);

/* Bound on the resized size for scoring: the long side may be at most
 * DDPS_RESIZE_MAX_ASPECT x --size (an aspect ratio up to 4:1), so an image
 * costs at most 4x the latent tokens (and memory) of a square one, and
 * attention time (quadratic in tokens) at most 16x. A 1x4096 PNG would
 * otherwise become 256x1048576 (a 17 GB VAE tensor) and a 1x20 one take
 * minutes. */
#define DDPS_RESIZE_MAX_ASPECT 4
/* ddps_resize_shorter_size, then the bound above: -1 with a reason (no file
 * name: the caller prefixes it) when the image is more extreme. */
int ddps_resize_check(int w, int h, int size, int *ow, int *oh, ddps_err *err);

/* The one 8-bit-to-[-1, 1] pixel conversion: v / 127.5f - 1 in float32
 * arithmetic. For every byte this is exactly the reference's value:
 * torchvision's ToTensor + Normalize(0.5, 0.5), ((v / 255f) - 0.5f) / 0.5f,
 * and diffusers' 2 * (v / 255f) - 1 (the same in double, (float)(v / 127.5
 * - 1), differs by one ulp on 128 byte values). */
static inline float ddps_pixel_to_unit(uint8_t v) { return (float)v / 127.5f - 1.0f; }
/* out[i] = ddps_pixel_to_unit(px[i]) for n values (layout unchanged: HWC stays HWC). */
void ddps_pixels_to_unit(const uint8_t *px, size_t n, float *out);
/* To float planes [3][h][w] in [-1, 1] (ddps_pixel_to_unit). */
void ddps_image_to_float(const ddps_image *img, float *chw);

/* ---- Codecs (used by ddps_image_decode / ddps_image_save; callable directly).
 * Each decoder expects its own format (the dispatcher checks magic bytes) and
 * returns 8-bit RGB; name is only used in error messages. */
int ddps_image_decode_jpeg(const uint8_t *data, size_t len, const char *name, ddps_image *out, ddps_err *err);
/* The same at 1/denom of the size (denom 1, 2, 4 or 8: libjpeg's DCT scaling,
 * much faster; each side becomes ceil(side / denom)), for previews. Not
 * PIL-exact for denom > 1. */
int ddps_image_decode_jpeg_reduced(const uint8_t *data, size_t len, const char *name, int denom, ddps_image *out,
                                   ddps_err *err);
int ddps_image_decode_png(const uint8_t *data, size_t len, const char *name, ddps_image *out, ddps_err *err);
int ddps_image_decode_bmp(const uint8_t *data, size_t len, const char *name, ddps_image *out, ddps_err *err);
/* WebP (lossy, lossless, alpha; the first frame of an animation). */
int ddps_image_decode_webp(const uint8_t *data, size_t len, const char *name, ddps_image *out, ddps_err *err);
/* TIFF and BigTIFF: the first page, any layout libtiff's RGBA interface reads. */
int ddps_image_decode_tiff(const uint8_t *data, size_t len, const char *name, ddps_image *out, ddps_err *err);
/* Binary PBM/PGM/PPM (P4, P5, P6). */
int ddps_image_decode_pnm(const uint8_t *data, size_t len, const char *name, ddps_image *out, ddps_err *err);
/* Encoders to a heap buffer (*out, free() it). PNG level is zlib's 0..9. */
int ddps_image_encode_png(const ddps_image *img, int level, uint8_t **out, size_t *len, ddps_err *err);
int ddps_image_encode_jpeg(const ddps_image *img, int quality, uint8_t **out, size_t *len, ddps_err *err);

/* PIL's CMYK -> RGB channel (cmyk2rgb): (255 - k) - c * (255 - k) / 255 with
 * PIL's rounding division, given nk = 255 - k. */
static inline uint8_t ddps_cmyk_channel(int c, int nk) {
    int t = c * nk + 128;
    return (uint8_t)(nk - (((t >> 8) + t) >> 8));
}

/* EXIF orientation (1..8) from a TIFF-structured EXIF block (with or without
 * the "Exif\0\0" prefix of JPEG's APP1); 0 when absent or malformed. */
int ddps_exif_orientation(const uint8_t *exif, size_t len);
/* Rotates/flips img in place so that an image stored with EXIF orientation o
 * comes out upright (as PIL's ImageOps.exif_transpose); o outside 2..8 is a no-op. */
void ddps_image_orient(ddps_image *img, int orientation);

#endif
