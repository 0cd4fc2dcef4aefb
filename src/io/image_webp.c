/* WebP through libwebp (lossy, lossless, with alpha, animated).
 *
 * The result is what PIL gives for convert("RGB"): the colour channels as
 * libwebp decodes them with alpha dropped (not blended). An animated file
 * gives its first frame placed on the canvas, whose uncovered area is black
 * (PIL's canvas is transparent black). Sizes are read from the headers and
 * checked against DDPS_IMAGE_MAX_PIXELS before anything is decoded. */
#include <stdlib.h>
#include <string.h>
#include <webp/decode.h>
#include <webp/demux.h>

#include "io/image.h"
#include "util/fs.h"

/* Decodes one still WebP bitstream (a whole file or one animation frame) of
 * the given size into a fresh RGB image. */
static int decode_still(const uint8_t *data, size_t len, int w, int h, const char *name, ddps_image *out,
                        ddps_err *err) {
    if (ddps_image_alloc(out, w, h) != 0)
        return ddps_fail_data(err, "%s: WebP is %dx%d, more than the %u-pixel limit", name, w, h, DDPS_IMAGE_MAX_PIXELS);
    size_t stride = (size_t)w * 3;
    if (!WebPDecodeRGBInto(data, len, out->px, stride * (size_t)h, (int)stride)) {
        ddps_image_free(out);
        return ddps_fail_data(err, "%s: corrupt or truncated WebP data", name);
    }
    return 0;
}

int ddps_image_decode_webp(const uint8_t *data, size_t len, const char *name, ddps_image *out, ddps_err *err) {
    out->w = out->h = 0;
    out->px = NULL;
    WebPBitstreamFeatures f;
    if (WebPGetFeatures(data, len, &f) != VP8_STATUS_OK || f.width <= 0 || f.height <= 0)
        return ddps_fail_data(err, "%s: corrupt or truncated WebP header", name);
    if ((uint64_t)f.width * (uint64_t)f.height > DDPS_IMAGE_MAX_PIXELS)
        return ddps_fail_data(err, "%s: WebP is %dx%d, more than the %u-pixel limit", name, f.width, f.height,
                         DDPS_IMAGE_MAX_PIXELS);
    if (!f.has_animation) return decode_still(data, len, f.width, f.height, name, out, err);

    WebPData wd = {data, len};
    WebPDemuxer *dmx = WebPDemux(&wd);
    if (!dmx) return ddps_fail_data(err, "%s: corrupt animated WebP", name);
    int cw = (int)WebPDemuxGetI(dmx, WEBP_FF_CANVAS_WIDTH), ch = (int)WebPDemuxGetI(dmx, WEBP_FF_CANVAS_HEIGHT);
    WebPIterator it;
    int rc = -1;
    if (!WebPDemuxGetFrame(dmx, 1, &it)) {
        ddps_fail_data(err, "%s: animated WebP without frames", name);
    } else {
        ddps_image frame;
        if (it.x_offset < 0 || it.y_offset < 0 || it.width <= 0 || it.height <= 0 || it.x_offset > cw - it.width ||
            it.y_offset > ch - it.height) {
            ddps_fail_data(err, "%s: animated WebP frame outside its canvas", name);
        } else if (ddps_image_alloc(out, cw, ch) != 0) {
            ddps_fail_data(err, "%s: WebP canvas is %dx%d, more than the %u-pixel limit", name, cw, ch,
                      DDPS_IMAGE_MAX_PIXELS);
        } else if (decode_still(it.fragment.bytes, it.fragment.size, it.width, it.height, name, &frame, err) != 0) {
            ddps_image_free(out);
        } else {
            ddps_image_paste(out, &frame, it.x_offset, it.y_offset);
            ddps_image_free(&frame);
            rc = 0;
        }
        WebPDemuxReleaseIterator(&it);
    }
    WebPDemuxDelete(dmx);
    return rc;
}
