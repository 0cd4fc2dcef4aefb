/* ddps's own BMP and binary PNM (P4/P5/P6) decoders: the first byte picks
 * which one gets the rest. */
#include "image_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    if (len < 1) return 0;
    ddps_image img = {0};
    ddps_err err;
    int rc = (data[0] & 1) ? ddps_image_decode_pnm(data + 1, len - 1, "fuzz.pnm", &img, &err)
                           : ddps_image_decode_bmp(data + 1, len - 1, "fuzz.bmp", &img, &err);
    if (rc == 0) fz_image_after(&img);
    return 0;
}
