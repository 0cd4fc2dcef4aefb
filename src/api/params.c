/* ddps.h's parameters: the defaults (ddps_*_params_init), the checks
 * (ddps_*_params_check) and the ranges the CLI's options take
 * (ddps_param_range), all from pipeline/params.h. Apart from the drivers so
 * that the CLI's option tables link without the engine (fuzz_options). */
#include "api/api_internal.h"
#include "pipeline/params.h"

DDPS_API void ddps_score_params_init(ddps_score_params *p) { ddps_score_params_defaults(p); }
DDPS_API void ddps_select_params_init(ddps_select_params *p) { ddps_select_params_defaults(p); }
DDPS_API void ddps_report_params_init(ddps_report_params *p) { ddps_report_params_defaults(p); }

/* The public status of an internal check. */
static ddps_status checked(int rc, const ddps_err *e, ddps_error *err) {
    return rc != 0 ? ddps_api_fail(err, e) : ddps_api_ok(err);
}

DDPS_API ddps_status ddps_score_params_check(const ddps_score_params *p, ddps_error *err) {
    ddps_err e = {{0}};
    return checked(ddps_score_check(p, &e), &e, err);
}

DDPS_API ddps_status ddps_select_params_check(const ddps_select_params *p, const int *ipc, int n_ipc,
                                              ddps_error *err) {
    ddps_err e = {{0}};
    return checked(ddps_select_check(p, ipc, n_ipc, &e), &e, err);
}

DDPS_API ddps_status ddps_report_params_check(const ddps_report_params *p, ddps_error *err) {
    ddps_err e = {{0}};
    return checked(ddps_report_check(p, &e), &e, err);
}

DDPS_API int ddps_param_range(const char *command, const char *option, long *lo, long *hi) {
    long l = 0, h = 0;
    if (ddps_range_get(command, option, &l, &h) != 0) return -1;
    if (lo) *lo = l;
    if (hi) *hi = h;
    return 0;
}
