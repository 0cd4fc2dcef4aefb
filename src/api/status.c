/* The public library's errors (include/ddps.h): status names and the
 * conversions from internal errors. Apart from the drivers so that the
 * parameter checks link without the engine (fuzz_options). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/api_internal.h"

/* ---------- errors ---------- */

DDPS_API const char *ddps_status_name(ddps_status s) {
    switch (s) {
    case DDPS_OK: return "ok";
    case DDPS_ERR_FAILURE: return "failure";
    case DDPS_ERR_USAGE: return "usage";
    case DDPS_ERR_DATA: return "data";
    case DDPS_ERR_RESOURCE: return "resource";
    case DDPS_ERR_CANCELLED: return "cancelled";
    }
    return "unknown";
}

DDPS_API const char *ddps_version(void) { return DDPS_VERSION; }

DDPS_API void ddps_free(void *p) { free(p); }

ddps_status ddps_api_ok(ddps_error *out) {
    if (out) {
        out->status = DDPS_OK;
        out->message[0] = 0;
    }
    return DDPS_OK;
}

ddps_status ddps_api_fail(ddps_error *out, const ddps_err *e) {
    ddps_status st;
    switch (e->kind) {
    case DDPS_KIND_USAGE: st = DDPS_ERR_USAGE; break;
    case DDPS_KIND_DATA: st = DDPS_ERR_DATA; break;
    case DDPS_KIND_RESOURCE: st = DDPS_ERR_RESOURCE; break;
    case DDPS_KIND_CANCELLED: st = DDPS_ERR_CANCELLED; break;
    default: st = DDPS_ERR_FAILURE; break;
    }
    if (out) {
        out->status = st;
        snprintf(out->message, sizeof out->message, "%s", e->msg[0] ? e->msg : "unknown failure");
    }
    return st;
}

ddps_status ddps_api_failf(ddps_error *out, ddps_status st, const char *fmt, ...) {
    if (out) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(out->message, sizeof out->message, fmt, ap);
        va_end(ap);
        out->status = st;
    }
    return st;
}
