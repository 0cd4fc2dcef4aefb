/* Image container, format dispatch, saving, and the small pixel operations
 * (crop, paste, orientation, float conversion). The codecs live in
 * image_jpeg.c, image_png.c, image_webp.c, image_tiff.c and image_bmp.c, the PIL-exact resampler in
 * image_resize.c. */
#include "io/image.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/fs.h"

/* Files larger than this are not images we want to decode (a 2^28-pixel PNG
 * compresses far below this). */
#define IMAGE_MAX_FILE_BYTES ((size_t)1 << 30)

int ddps_image_alloc(ddps_image *img, int w, int h) {
    img->w = img->h = 0;
    img->px = NULL;
    if (w <= 0 || h <= 0) return -1;
    if ((uint64_t)w * (uint64_t)h > DDPS_IMAGE_MAX_PIXELS) return -1;
    img->px = ddps_calloc((size_t)w * (size_t)h, 3);
    img->w = w;
    img->h = h;
    return 0;
}

void ddps_image_free(ddps_image *img) {
    if (!img) return;
    free(img->px);
    img->px = NULL;
    img->w = img->h = 0;
}

/* ---- Format dispatch ---------------------------------------------------- */

static int has_prefix(const uint8_t *d, size_t len, const char *magic, size_t n) {
    return len >= n && memcmp(d, magic, n) == 0;
}

/* Names formats we recognise but do not decode, for a useful error. */
static const char *known_unsupported(const uint8_t *d, size_t len) {
    if (has_prefix(d, len, "GIF87a", 6) || has_prefix(d, len, "GIF89a", 6)) return "GIF";
    if (len >= 12 && memcmp(d + 4, "ftyp", 4) == 0) return "HEIF/AVIF";
    if (has_prefix(d, len, "\0\0\0\x0cjP  ", 8)) return "JPEG 2000";
    return NULL;
}

int ddps_image_decode(const void *data, size_t len, const char *name, ddps_image *out, ddps_err *err) {
    const uint8_t *d = data;
    out->w = out->h = 0;
    out->px = NULL;
    if (!name) name = "<memory>";
    if (len == 0) return ddps_fail_data(err, "%s: empty file", name);
    if (has_prefix(d, len, "\xff\xd8\xff", 3)) return ddps_image_decode_jpeg(d, len, name, out, err);
    if (has_prefix(d, len, "\x89PNG\r\n\x1a\n", 8)) return ddps_image_decode_png(d, len, name, out, err);
    if (has_prefix(d, len, "BM", 2)) return ddps_image_decode_bmp(d, len, name, out, err);
    if (len >= 3 && d[0] == 'P' && (d[1] == '4' || d[1] == '5' || d[1] == '6') &&
        (d[2] == ' ' || d[2] == '\t' || d[2] == '\n' || d[2] == '\r'))
        return ddps_image_decode_pnm(d, len, name, out, err);
    if (len >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0)
        return ddps_image_decode_webp(d, len, name, out, err);
    if (has_prefix(d, len, "II*\0", 4) || has_prefix(d, len, "MM\0*", 4) || has_prefix(d, len, "II+\0", 4) ||
        has_prefix(d, len, "MM\0+", 4))
        return ddps_image_decode_tiff(d, len, name, out, err);
    const char *what = known_unsupported(d, len);
    if (what) return ddps_fail_data(err, "%s: unsupported image format %s", name, what);
    return ddps_fail_data(err, "%s: not an image (no JPEG, PNG, WebP, TIFF, BMP or PNM signature)", name);
}

int ddps_image_load(const char *path, ddps_image *out, ddps_err *err) {
    char *buf;
    size_t len;
    out->w = out->h = 0;
    out->px = NULL;
    if (ddps_read_file(path, IMAGE_MAX_FILE_BYTES, &buf, &len, err) != 0) return -1;
    int rc = ddps_image_decode(buf, len, path, out, err);
    free(buf);
    return rc;
}

/* ---- Saving ------------------------------------------------------------- */

static int ends_with_ci(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

int ddps_image_save(const char *path, const ddps_image *img, int jpeg_quality, ddps_err *err) {
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;
    if (!img->px || img->w <= 0 || img->h <= 0) return ddps_fail(err, "%s: cannot save an empty image", path);
    if (ends_with_ci(path, ".png")) {
        rc = ddps_image_encode_png(img, 3, &buf, &len, err);
    } else if (ends_with_ci(path, ".jpg") || ends_with_ci(path, ".jpeg")) {
        if (jpeg_quality < 1 || jpeg_quality > 100)
            return ddps_fail_usage(err, "%s: JPEG quality must be 1..100, got %d", path, jpeg_quality);
        rc = ddps_image_encode_jpeg(img, jpeg_quality, &buf, &len, err);
    } else {
        return ddps_fail_usage(err, "%s: unknown image extension (use .png, .jpg or .jpeg)", path);
    }
    if (rc != 0) return ddps_fail_prefix(err, "%s", path);
    rc = ddps_write_file_atomic(path, buf, len, err);
    free(buf);
    return rc;
}

/* ---- Pixel operations --------------------------------------------------- */

int ddps_image_crop(const ddps_image *src, int x, int y, int w, int h, ddps_image *dst, ddps_err *err) {
    dst->w = dst->h = 0;
    dst->px = NULL;
    if (w <= 0 || h <= 0 || x < 0 || y < 0 || x > src->w - w || y > src->h - h)
        return ddps_fail_data(err, "crop box (%d, %d, %dx%d) does not lie inside the %dx%d image", x, y, w, h, src->w,
                         src->h);
    if (ddps_image_alloc(dst, w, h) != 0) return ddps_fail_resource(err, "crop of %dx%d is too large", w, h);
    for (int r = 0; r < h; r++)
        memcpy(dst->px + (size_t)r * w * 3, src->px + ((size_t)(y + r) * src->w + x) * 3, (size_t)w * 3);
    return 0;
}

void ddps_image_paste(ddps_image *dst, const ddps_image *src, int x, int y) {
    /* Clip the source rectangle to the destination, in 64-bit to dodge overflow. */
    int64_t x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    int64_t x1 = (int64_t)x + src->w, y1 = (int64_t)y + src->h;
    if (x1 > dst->w) x1 = dst->w;
    if (y1 > dst->h) y1 = dst->h;
    if (x0 >= x1 || y0 >= y1) return;
    size_t n = (size_t)(x1 - x0) * 3;
    for (int64_t r = y0; r < y1; r++)
        memcpy(dst->px + ((size_t)r * dst->w + (size_t)x0) * 3,
               src->px + ((size_t)(r - y) * src->w + (size_t)(x0 - x)) * 3, n);
}

/* Where output pixel (dx, dy) comes from, for each EXIF orientation. These
 * are PIL's transposes as ImageOps.exif_transpose picks them: 2 mirror,
 * 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise, 7 transverse,
 * 8 rotate 90 counter-clockwise. */
void ddps_image_orient(ddps_image *img, int o) {
    if (o < 2 || o > 8 || !img->px) return;
    const int W = img->w, H = img->h;
    const int swap = o >= 5; /* orientations 5..8 exchange width and height */
    const int ow = swap ? H : W, oh = swap ? W : H;
    uint8_t *out = ddps_malloc((size_t)W * H * 3);
    const uint8_t *in = img->px;
    for (int dy = 0; dy < oh; dy++) {
        /* The source of a destination row is a line through the source image:
         * start point and step per destination pixel. */
        int sx, sy, stepx, stepy;
        switch (o) {
        case 2: sx = W - 1, sy = dy, stepx = -1, stepy = 0; break;
        case 3: sx = W - 1, sy = H - 1 - dy, stepx = -1, stepy = 0; break;
        case 4: sx = 0, sy = H - 1 - dy, stepx = 1, stepy = 0; break;
        case 5: sx = dy, sy = 0, stepx = 0, stepy = 1; break;
        case 6: sx = dy, sy = H - 1, stepx = 0, stepy = -1; break;
        case 7: sx = W - 1 - dy, sy = H - 1, stepx = 0, stepy = -1; break;
        default: sx = W - 1 - dy, sy = 0, stepx = 0, stepy = 1; break; /* 8 */
        }
        /* Indices, not pointers: the index after the last pixel may point
         * outside the image, which a pointer may not. */
        const ptrdiff_t step = ((ptrdiff_t)stepy * W + stepx) * 3;
        ptrdiff_t si = ((ptrdiff_t)sy * W + sx) * 3;
        uint8_t *d = out + (size_t)dy * ow * 3;
        for (int dx = 0; dx < ow; dx++, si += step, d += 3) {
            d[0] = in[si];
            d[1] = in[si + 1];
            d[2] = in[si + 2];
        }
    }
    free(img->px);
    img->px = out;
    img->w = ow;
    img->h = oh;
}

void ddps_resize_shorter_size(int w, int h, int size, int *ow, int *oh) {
    /* torchvision: new_long = int(size * long / short), a float division
     * truncated toward zero; a double division of these integers rounds
     * exactly as Python's does. The quotient can exceed INT_MAX (a 1 x 10^7
     * image at size 256): it saturates there instead of overflowing the
     * conversion, and ddps_resize_check refuses such sizes. */
    int shorter = w <= h ? w : h, longer = w <= h ? h : w;
    int nl = 0;
    if (shorter > 0 && size > 0 && longer > 0) {
        double q = (double)((int64_t)size * longer) / (double)shorter;
        nl = q >= (double)INT_MAX ? INT_MAX : (int)q;
    }
    if (w <= h) {
        *ow = size;
        *oh = nl;
    } else {
        *ow = nl;
        *oh = size;
    }
}

int ddps_resize_check(int w, int h, int size, int *ow, int *oh, ddps_err *err) {
    ddps_resize_shorter_size(w, h, size, ow, oh);
    int shorter = w <= h ? w : h, longer = w <= h ? h : w;
    int nl = *ow > *oh ? *ow : *oh;
    if (shorter <= 0 || nl <= 0) return ddps_fail_data(err, "image size %dx%d cannot be resized", w, h);
    if ((int64_t)nl > (int64_t)DDPS_RESIZE_MAX_ASPECT * size) {
        long long full = shorter > 0 ? (long long)((double)((int64_t)size * longer) / shorter) : 0;
        char dims[64];
        if (w <= h)
            snprintf(dims, sizeof dims, "%dx%lld", size, full);
        else
            snprintf(dims, sizeof dims, "%lldx%d", full, size);
        return ddps_fail_data(err, "aspect ratio %d:%d is beyond %d:1 (resized it would be %s; the long side may be at most %d)",
                         longer, shorter, DDPS_RESIZE_MAX_ASPECT, dims, DDPS_RESIZE_MAX_ASPECT * size);
    }
    return 0;
}

void ddps_pixels_to_unit(const uint8_t *px, size_t n, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = ddps_pixel_to_unit(px[i]);
}

void ddps_image_to_float(const ddps_image *img, float *chw) {
    float lut[256];
    for (int v = 0; v < 256; v++) lut[v] = ddps_pixel_to_unit((uint8_t)v);
    const size_t n = (size_t)img->w * img->h;
    float *r = chw, *g = chw + n, *b = chw + 2 * n;
    const uint8_t *p = img->px;
    for (size_t i = 0; i < n; i++, p += 3) {
        r[i] = lut[p[0]];
        g[i] = lut[p[1]];
        b[i] = lut[p[2]];
    }
}
