/* JPEG decoder (libjpeg-turbo, CMYK/Adobe, EXIF orientation). */
#include "image_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    ddps_image img = {0};
    ddps_err err;
    if (ddps_image_decode_jpeg(data, len, "fuzz.jpg", &img, &err) == 0) fz_image_after(&img);
    (void)ddps_exif_orientation(data, len);
    return 0;
}
