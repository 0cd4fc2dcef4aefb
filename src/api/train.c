/* ddps.h's training section over src/train. */
#include <string.h>

#include "api/api_internal.h"
#include "train/probe.h"

DDPS_API void ddps_probe_train_params_init(ddps_probe_train_params *p) { memset(p, 0, sizeof *p); }

DDPS_API ddps_status ddps_probe_train(const ddps_probe_train_params *p, const ddps_hooks *hooks, ddps_error *err) {
    if (!p) return ddps_api_failf(err, DDPS_ERR_USAGE, "probe train: no parameters");
    ddps_err e = {{0}};
    ddps_api_enter(hooks);
    int rc = ddps_tr_probe(p->model, p->weights, p->in, p->out, p->threads, &e);
    ddps_api_leave();
    return rc == 0 ? ddps_api_ok(err) : ddps_api_fail(err, &e);
}
