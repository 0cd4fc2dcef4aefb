/* TIFF through libtiff, read from memory; the first page of a multi-page file.
 *
 * Pixels come from libtiff's RGBA interface, which covers every photometric
 * interpretation, bit depth, compression, strip and tile layout libtiff reads
 * (RGB, gray, palette, CMYK, YCbCr, 1..16 bits). 8-bit CMYK in pixel-
 * interleaved layout uses PIL's cmyk2rgb instead of libtiff's (which
 * truncates where PIL rounds). As PIL's convert("RGB"):
 * alpha is dropped, never multiplied in (libtiff would premultiply an
 * unassociated alpha; ddps declares every extra sample associated so the
 * colour samples come through unchanged). 16-bit samples are scaled to 8 bits
 * by libtiff (round(v * 255 / 65535)). The Orientation tag is applied like
 * EXIF orientation in JPEG (it is the same tag; PIL's exif_transpose does
 * the same). Warnings go to the debug log, errors fail the image with one line.
 * Sizes are checked against DDPS_IMAGE_MAX_PIXELS before any allocation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

#include "io/image.h"
#include "util/fs.h"

#define TIFF_PACK_RGB(r, g, b) ((uint32_t)(r) | (uint32_t)(g) << 8 | (uint32_t)(b) << 16 | 0xff000000u)

typedef struct {
    const uint8_t *data;
    size_t len, pos;
} tiff_mem;

static tmsize_t mem_read(thandle_t h, void *buf, tmsize_t n) {
    tiff_mem *m = (tiff_mem *)h;
    if (n < 0) return -1;
    size_t k = m->pos < m->len ? m->len - m->pos : 0;
    if ((size_t)n < k) k = (size_t)n;
    memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    return (tmsize_t)k;
}

static tmsize_t mem_write(thandle_t h, void *buf, tmsize_t n) {
    (void)h, (void)buf, (void)n;
    return -1;
}

static toff_t mem_seek(thandle_t h, toff_t off, int whence) {
    tiff_mem *m = (tiff_mem *)h;
    uint64_t base = whence == SEEK_CUR ? m->pos : whence == SEEK_END ? m->len : 0;
    if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END) return (toff_t)-1;
    /* off is unsigned; SEEK_CUR/END with a negative offset wraps, which the
     * addition undoes modulo 2^64. Positions past the end read as empty. */
    uint64_t p = base + (uint64_t)off;
    if (p > ((uint64_t)1 << 62)) return (toff_t)-1;
    m->pos = (size_t)p;
    return (toff_t)p;
}

static int mem_close(thandle_t h) {
    (void)h;
    return 0;
}

static toff_t mem_size(thandle_t h) { return (toff_t)((tiff_mem *)h)->len; }

static int mem_map(thandle_t h, void **base, toff_t *size) {
    (void)h, (void)base, (void)size;
    return 0;
}

static void mem_unmap(thandle_t h, void *base, toff_t size) { (void)h, (void)base, (void)size; }

/* libtiff reports through process-wide handlers; the last error message of
 * this thread is kept for the one-line failure. */
static _Thread_local char tiff_msg[256];

static void on_tiff_error(const char *module, const char *fmt, va_list ap) {
    (void)module;
    vsnprintf(tiff_msg, sizeof tiff_msg, fmt, ap);
}

static void on_tiff_warning(const char *module, const char *fmt, va_list ap) {
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    ddps_debug("tiff warning: %s: %s", module ? module : "", msg);
}

/* A put routine for libtiff's RGBA interface (8-bit contiguous CMYK): PIL's
 * conversion. Arguments as libtiff's tileContigRoutine: w x h pixels from pp
 * (fromskew pixels skipped after each row) to cp (toskew after each row). */
static void put_cmyk8(TIFFRGBAImage *img, uint32_t *cp, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
                      int32_t fromskew, int32_t toskew, unsigned char *pp) {
    (void)x, (void)y;
    int spp = img->samplesperpixel;
    for (; h > 0; h--) {
        for (uint32_t i = 0; i < w; i++, pp += spp) {
            int nk = 255 - pp[3];
            *cp++ = TIFF_PACK_RGB(ddps_cmyk_channel(pp[0], nk), ddps_cmyk_channel(pp[1], nk),
                                  ddps_cmyk_channel(pp[2], nk));
        }
        cp += toskew;
        pp += (ptrdiff_t)fromskew * spp;
    }
}

int ddps_image_decode_tiff(const uint8_t *data, size_t len, const char *name, ddps_image *out, ddps_err *err) {
    out->w = out->h = 0;
    out->px = NULL;
    TIFFSetErrorHandler(on_tiff_error);
    TIFFSetWarningHandler(on_tiff_warning);
    tiff_msg[0] = 0;
    tiff_mem m = {data, len, 0};
    /* "rm": read only, never memory-map. */
    TIFF *tif = TIFFClientOpen(name, "rm", (thandle_t)&m, mem_read, mem_write, mem_seek, mem_close, mem_size, mem_map,
                               mem_unmap);
    if (!tif) return ddps_fail_data(err, "%s: corrupt TIFF%s%s", name, tiff_msg[0] ? ": " : "", tiff_msg);
    int rc = -1;
    uint32_t w = 0, h = 0, *raster = NULL;
    uint16_t orient = ORIENTATION_TOPLEFT, nextra = 0, *extra = NULL;
    TIFFRGBAImage img;
    int begun = 0;
    char emsg[1024] = "";
    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h) || !w || !h) {
        ddps_fail_data(err, "%s: TIFF without an image size", name);
        goto done;
    }
    if ((uint64_t)w * h > DDPS_IMAGE_MAX_PIXELS) {
        ddps_fail_data(err, "%s: TIFF is %ux%u, more than the %u-pixel limit", name, w, h, DDPS_IMAGE_MAX_PIXELS);
        goto done;
    }
    TIFFGetFieldDefaulted(tif, TIFFTAG_ORIENTATION, &orient);
    if (orient < 1 || orient > 8) orient = ORIENTATION_TOPLEFT;
    if (TIFFGetField(tif, TIFFTAG_EXTRASAMPLES, &nextra, &extra) && nextra > 0) {
        uint16_t assoc[16];
        if (nextra > 16) nextra = 16;
        for (int i = 0; i < nextra; i++) assoc[i] = EXTRASAMPLE_ASSOCALPHA;
        TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, nextra, assoc);
    }
    if (!TIFFRGBAImageOK(tif, emsg) || !TIFFRGBAImageBegin(&img, tif, 1, emsg)) {
        ddps_fail_data(err, "%s: unsupported TIFF: %s", name, emsg[0] ? emsg : tiff_msg);
        goto done;
    }
    begun = 1;
    if (img.isContig && img.photometric == PHOTOMETRIC_SEPARATED && img.bitspersample == 8 &&
        img.samplesperpixel >= 4)
        img.put.contig = put_cmyk8;
    /* The raster in stored order: requesting the file's own orientation
     * makes libtiff flip nothing; ddps_image_orient then turns it upright. */
    img.req_orientation = orient;
    raster = malloc((size_t)w * h * sizeof *raster);
    if (!raster) {
        ddps_fail_resource(err, "%s: out of memory for a %ux%u TIFF", name, w, h);
        goto done;
    }
    if (!TIFFRGBAImageGet(&img, raster, w, h)) {
        ddps_fail_data(err, "%s: corrupt or truncated TIFF data%s%s", name, tiff_msg[0] ? ": " : "", tiff_msg);
        goto done;
    }
    if (ddps_image_alloc(out, (int)w, (int)h) != 0) {
        ddps_fail_data(err, "%s: TIFF is %ux%u, more than the %u-pixel limit", name, w, h, DDPS_IMAGE_MAX_PIXELS);
        goto done;
    }
    for (size_t i = 0; i < (size_t)w * h; i++) {
        out->px[3 * i] = (uint8_t)TIFFGetR(raster[i]);
        out->px[3 * i + 1] = (uint8_t)TIFFGetG(raster[i]);
        out->px[3 * i + 2] = (uint8_t)TIFFGetB(raster[i]);
    }
    ddps_image_orient(out, orient);
    rc = 0;
done:
    if (begun) TIFFRGBAImageEnd(&img);
    free(raster);
    TIFFClose(tif);
    return rc;
}
