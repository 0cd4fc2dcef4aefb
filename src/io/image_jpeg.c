/* JPEG through libjpeg-turbo, and the EXIF orientation parser.
 *
 * Decoding matches PIL 9.4's Image.open(p).convert("RGB") pixel for pixel
 * (PIL uses the same library with the same default settings: islow IDCT,
 * fancy upsampling):
 *  - YCbCr/RGB: libjpeg's RGB output, straight into the image rows;
 *  - grayscale: libjpeg-turbo's gray -> RGB output (replication);
 *  - CMYK and YCCK: libjpeg's CMYK output, taken as Adobe's inverted CMYK
 *    (PIL always assumes this: Photoshop writes it, almost nothing else
 *    writes CMYK JPEGs), then PIL's cmyk2rgb:
 *    v = (255 - k) - (c * (255 - k)) / 255 with PIL's rounding division.
 *
 * Errors: libjpeg reports fatal errors through error_exit, which we turn into
 * a longjmp back to the one function that called setjmp; every resource is
 * owned by a struct in its caller, which releases it after the jump. Some of
 * libjpeg's warnings mean the pixels are garbage (truncated file, corrupt
 * entropy-coded data): those are errors here, not grey or smeared images. */
#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which needs FILE and size_t */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h> /* after jpeglib.h: its message list depends on jconfig.h */

#include "io/image.h"
#include "util/fs.h"

/* A progressive JPEG with thousands of tiny scans decodes very slowly
 * (a known denial of service); real encoders use about ten. */
#define JPEG_MAX_SCANS 500

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX + 64];
} jpeg_errors;

static void on_error_exit(j_common_ptr c) {
    jpeg_errors *e = (jpeg_errors *)c->err;
    char buf[JMSG_LENGTH_MAX];
    c->err->format_message(c, buf);
    snprintf(e->msg, sizeof e->msg, "%s", buf);
    longjmp(e->jump, 1);
}

/* Warnings after which the decoded pixels cannot be trusted. Others (an
 * unknown JFIF version, extraneous bytes after the last scan, odd progression
 * parameters) leave a correct image and are ignored, as PIL ignores them. */
static int warning_is_fatal(int code) {
#if JPEG_LIB_VERSION >= 70 || defined(D_ARITH_CODING_SUPPORTED)
    if (code == JWRN_ARITH_BAD_CODE) return 1;
#endif
    return code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_HUFF_BAD_CODE || code == JWRN_MUST_RESYNC;
}

static void on_emit_message(j_common_ptr c, int level) {
    if (level >= 0) return; /* trace messages */
    if (warning_is_fatal(c->err->msg_code)) on_error_exit(c);
    c->err->num_warnings++;
}

static void on_output_message(j_common_ptr c) { (void)c; /* ddps never prints from a library */ }

static void install_errors(jpeg_errors *e) {
    jpeg_std_error(&e->pub);
    e->pub.error_exit = on_error_exit;
    e->pub.emit_message = on_emit_message;
    e->pub.output_message = on_output_message;
    e->msg[0] = 0;
}

/* ---- EXIF --------------------------------------------------------------- */

static uint32_t rd16(const uint8_t *p, int be) { return be ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0]; }

static uint32_t rd32(const uint8_t *p, int be) {
    return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
              : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

int ddps_exif_orientation(const uint8_t *d, size_t n) {
    if (n >= 6 && memcmp(d, "Exif\0\0", 6) == 0) d += 6, n -= 6;
    /* TIFF header: byte order, 42, offset of IFD0 (from the header start). */
    if (n < 8) return 0;
    int be;
    if (d[0] == 'I' && d[1] == 'I')
        be = 0;
    else if (d[0] == 'M' && d[1] == 'M')
        be = 1;
    else
        return 0;
    if (rd16(d + 2, be) != 42) return 0;
    uint32_t ifd = rd32(d + 4, be);
    if (ifd > n || n - ifd < 2) return 0;
    uint32_t count = rd16(d + ifd, be);
    for (uint32_t i = 0; i < count; i++) {
        size_t e = (size_t)ifd + 2 + (size_t)i * 12;
        if (e + 12 > n) return 0;
        if (rd16(d + e, be) != 0x0112) continue;
        uint32_t type = rd16(d + e + 2, be), cnt = rd32(d + e + 4, be);
        uint32_t v;
        if (cnt < 1) return 0;
        if (type == 3) /* SHORT, stored left-justified in the value field */
            v = rd16(d + e + 8, be);
        else if (type == 4) /* LONG */
            v = rd32(d + e + 8, be);
        else
            return 0;
        return v >= 1 && v <= 8 ? (int)v : 0;
    }
    return 0;
}

/* ---- Decoding ----------------------------------------------------------- */

typedef struct {
    struct jpeg_decompress_struct cinfo;
    jpeg_errors jerr;
    struct jpeg_progress_mgr progress;
    uint8_t *px; /* the output pixels; the caller frees them on failure */
    int orientation;
    int denom; /* DCT scaling 1/denom (1, 2, 4, 8); 0 = 1 */
} jpeg_decoder;

static void on_progress(j_common_ptr c) {
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (d->input_scan_number > JPEG_MAX_SCANS) {
        jpeg_errors *e = (jpeg_errors *)c->err;
        snprintf(e->msg, sizeof e->msg, "more than %d scans", JPEG_MAX_SCANS);
        longjmp(e->jump, 1);
    }
}

/* The only function here that calls setjmp. After a jump, nothing it
 * allocated is lost: libjpeg's memory goes with jpeg_destroy_decompress,
 * our pixels are in d->px. */
static int jpeg_decode_inner(jpeg_decoder *d, const uint8_t *data, size_t len, const char *name, ddps_err *err) {
    struct jpeg_decompress_struct *ci = &d->cinfo;
    if (setjmp(d->jerr.jump)) return ddps_fail_data(err, "%s: bad JPEG: %s", name, d->jerr.msg);
    jpeg_create_decompress(ci);
    d->progress.progress_monitor = on_progress;
    ci->progress = &d->progress;
    jpeg_mem_src(ci, data, (unsigned long)len);
    jpeg_save_markers(ci, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(ci, TRUE);

    const uint64_t w = ci->image_width, h = ci->image_height;
    if (w == 0 || h == 0) return ddps_fail_data(err, "%s: bad JPEG: zero image size", name);
    if (w * h > DDPS_IMAGE_MAX_PIXELS)
        return ddps_fail_data(err, "%s: JPEG is %llux%llu, more than the %u-pixel limit", name, (unsigned long long)w,
                         (unsigned long long)h, DDPS_IMAGE_MAX_PIXELS);
    const int cmyk = ci->num_components == 4;
    if (ci->num_components != 1 && ci->num_components != 3 && !cmyk)
        return ddps_fail_data(err, "%s: JPEG with %d colour components is not supported", name, ci->num_components);
    ci->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    const uint64_t dn = d->denom > 1 ? (uint64_t)d->denom : 1, ow = (w + dn - 1) / dn, oh = (h + dn - 1) / dn;
    if (dn > 1) {
        ci->scale_num = 1;
        ci->scale_denom = (unsigned)dn;
    }

    for (jpeg_saved_marker_ptr m = ci->marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0) {
            /* PIL reads the first Exif block only. */
            d->orientation = ddps_exif_orientation(m->data, m->data_length);
            break;
        }

    jpeg_start_decompress(ci);
    if (ci->output_width != ow || ci->output_height != oh || ci->output_components != (cmyk ? 4 : 3))
        return ddps_fail_data(err, "%s: bad JPEG: unexpected decoder output layout", name);

    const size_t stride = (size_t)ow * 3;
    d->px = ddps_malloc(stride * (size_t)oh);
    if (!cmyk) {
        while (ci->output_scanline < ci->output_height) {
            JSAMPROW rows[16];
            JDIMENSION n = ci->output_height - ci->output_scanline;
            if (n > 16) n = 16;
            for (JDIMENSION i = 0; i < n; i++) rows[i] = d->px + (size_t)(ci->output_scanline + i) * stride;
            if (jpeg_read_scanlines(ci, rows, n) == 0)
                return ddps_fail_data(err, "%s: bad JPEG: decoder stalled", name);
        }
        return 0;
    }
    /* CMYK: one row at a time through a buffer from libjpeg's pool (freed
     * with the decompressor, also after a jump). */
    JSAMPARRAY buf = ci->mem->alloc_sarray((j_common_ptr)ci, JPOOL_IMAGE, (JDIMENSION)(ow * 4), 1);
    while (ci->output_scanline < ci->output_height) {
        uint8_t *out = d->px + (size_t)ci->output_scanline * stride;
        if (jpeg_read_scanlines(ci, buf, 1) != 1) return ddps_fail_data(err, "%s: bad JPEG: decoder stalled", name);
        const uint8_t *p = buf[0];
        for (uint64_t x = 0; x < ow; x++, p += 4, out += 3) {
            /* Inverted (Adobe) CMYK: stored c' = 255 - c, so 255 - k = k'. */
            const int nk = p[3];
            out[0] = ddps_cmyk_channel(255 - p[0], nk);
            out[1] = ddps_cmyk_channel(255 - p[1], nk);
            out[2] = ddps_cmyk_channel(255 - p[2], nk);
        }
    }
    return 0;
}

int ddps_image_decode_jpeg(const uint8_t *data, size_t len, const char *name, ddps_image *out, ddps_err *err) {
    return ddps_image_decode_jpeg_reduced(data, len, name, 1, out, err);
}

int ddps_image_decode_jpeg_reduced(const uint8_t *data, size_t len, const char *name, int denom, ddps_image *out,
                                   ddps_err *err) {
    if (denom != 1 && denom != 2 && denom != 4 && denom != 8)
        return ddps_fail_data(err, "%s: JPEG reduction 1/%d is not 1/1, 1/2, 1/4 or 1/8", name, denom);
    jpeg_decoder *d = ddps_calloc(1, sizeof *d);
    d->denom = denom;
    out->w = out->h = 0;
    out->px = NULL;
    d->cinfo.err = &d->jerr.pub;
    install_errors(&d->jerr);
    int rc = jpeg_decode_inner(d, data, len, name, err);
    if (rc == 0) {
        out->w = (int)d->cinfo.output_width;
        out->h = (int)d->cinfo.output_height;
        out->px = d->px;
        ddps_image_orient(out, d->orientation);
    } else {
        free(d->px);
    }
    /* Not jpeg_finish_decompress: all pixels are read, and a missing EOI
     * after complete data is harmless (PIL accepts it too). */
    jpeg_destroy_decompress(&d->cinfo);
    free(d);
    return rc;
}

/* ---- Encoding ----------------------------------------------------------- */

typedef struct {
    struct jpeg_compress_struct cinfo;
    jpeg_errors jerr;
    unsigned char *buf; /* malloc'ed by libjpeg's memory destination */
    unsigned long len;
} jpeg_encoder;

static int jpeg_encode_inner(jpeg_encoder *e, const ddps_image *img, int quality, ddps_err *err) {
    struct jpeg_compress_struct *ci = &e->cinfo;
    if (setjmp(e->jerr.jump)) return ddps_fail_data(err, "JPEG encoder: %s", e->jerr.msg);
    jpeg_create_compress(ci);
    jpeg_mem_dest(ci, &e->buf, &e->len);
    ci->image_width = (JDIMENSION)img->w;
    ci->image_height = (JDIMENSION)img->h;
    ci->input_components = 3;
    ci->in_color_space = JCS_RGB;
    jpeg_set_defaults(ci); /* 4:2:0, islow DCT: what PIL writes by default */
    jpeg_set_quality(ci, quality, TRUE);
    jpeg_start_compress(ci, TRUE);
    const size_t stride = (size_t)img->w * 3;
    while (ci->next_scanline < ci->image_height) {
        /* libjpeg takes non-const rows but only reads them. */
        JSAMPROW row = (JSAMPROW)(img->px + (size_t)ci->next_scanline * stride);
        jpeg_write_scanlines(ci, &row, 1);
    }
    jpeg_finish_compress(ci);
    return 0;
}

int ddps_image_encode_jpeg(const ddps_image *img, int quality, uint8_t **out, size_t *len, ddps_err *err) {
    *out = NULL;
    *len = 0;
    if (!img->px || img->w <= 0 || img->h <= 0 || img->w > 65500 || img->h > 65500)
        return ddps_fail_data(err, "JPEG encoder: image size %dx%d not encodable", img->w, img->h);
    if (quality < 1 || quality > 100) return ddps_fail_data(err, "JPEG encoder: quality must be 1..100, got %d", quality);
    jpeg_encoder *e = ddps_calloc(1, sizeof *e);
    e->cinfo.err = &e->jerr.pub;
    install_errors(&e->jerr);
    int rc = jpeg_encode_inner(e, img, quality, err);
    jpeg_destroy_compress(&e->cinfo);
    if (rc == 0) {
        *out = e->buf;
        *len = e->len;
    } else {
        free(e->buf);
    }
    free(e);
    return rc;
}
