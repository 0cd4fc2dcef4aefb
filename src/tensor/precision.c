/* Precision names (tensor/backend.h): apart from the backends so that the
 * parameter checks (pipeline/params.c) link without them (fuzz_options). */
#include <string.h>

#include "tensor/backend.h"

int ddps_precision_parse(const char *s, ddps_precision *p) {
    if (strcmp(s, "f32") == 0 || strcmp(s, "fp32") == 0) {
        *p = DDPS_PREC_F32;
        return 0;
    }
    if (strcmp(s, "bf16") == 0) {
        *p = DDPS_PREC_BF16;
        return 0;
    }
    if (strcmp(s, "f16") == 0 || strcmp(s, "fp16") == 0) {
        *p = DDPS_PREC_F16;
        return 0;
    }
    return -1;
}

const char *ddps_precision_name(ddps_precision p) {
    switch (p) {
    case DDPS_PREC_F32: return "f32";
    case DDPS_PREC_BF16: return "bf16";
    case DDPS_PREC_F16: return "f16";
    }
    return "?";
}
