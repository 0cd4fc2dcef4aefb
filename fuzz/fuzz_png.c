/* PNG decoder (libpng: palette, 16-bit, alpha, gray, eXIf). */
#include "image_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    ddps_image img = {0};
    ddps_err err;
    if (ddps_image_decode_png(data, len, "fuzz.png", &img, &err) == 0) fz_image_after(&img);
    return 0;
}
