/* Common body of the image harnesses: decode, check the result's
 * invariants, and push small images through the resize bound, the
 * resampler and orientation like the loader does. */
#ifndef DDPS_FUZZ_IMAGE_H
#define DDPS_FUZZ_IMAGE_H

#include <stdlib.h>

#include "io/image.h"

static inline void fz_image_after(ddps_image *img) {
    if (!img->px || img->w <= 0 || img->h <= 0) abort(); /* success means a real image */
    volatile uint8_t sink = img->px[(size_t)img->w * img->h * 3 - 1];
    (void)sink;
    if ((size_t)img->w * img->h <= 4096) {
        int w, h;
        ddps_err err;
        ddps_image r;
        if (ddps_resize_check(img->w, img->h, 32, &w, &h, &err) == 0 && ddps_image_resize(img, w, h, &r, &err) == 0)
            ddps_image_free(&r);
        ddps_image_orient(img, 6);
    }
    ddps_image_free(img);
}

#endif
