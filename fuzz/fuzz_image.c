/* The generic in-memory decode entry point (format dispatch by magic bytes):
 * covers every decoder ddps is built with, WebP and TIFF included once
 * they are merged. */
#include "fz_util.h"
#include "image_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    ddps_image img;
    ddps_err err;
    if (ddps_image_decode(data, len, "fuzz", &img, &err) == 0) fz_image_after(&img);
    return 0;
}
