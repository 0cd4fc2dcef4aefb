/* ddps.h's tools section (bench, probe, demo) over src/tools: parameter
 * defaults, and each call inside the host's hooks with its error mapped to a
 * ddps_status. */
#include <string.h>

#include "api/api_internal.h"
#include "tools/tools.h"
#include "tools/world.h"

DDPS_API void ddps_bench_params_init(ddps_bench_params *p) {
    memset(p, 0, sizeof *p);
    p->device = "cpu";
    p->size = 256;
    p->iters = 3;
    p->images = 20;
    p->shapes = "sd15";
}

DDPS_API void ddps_probe_params_init(ddps_probe_params *p) {
    memset(p, 0, sizeof *p);
    p->device = "cpu";
    p->precision = "f32";
    p->prompt = "An image of tench.";
    p->null_prompt = "";
    p->patch = 32;
    p->stride = 8;
}

DDPS_API void ddps_demo_params_init(ddps_demo_params *p) {
    memset(p, 0, sizeof *p);
    p->n_classes = 10;
    p->per_class = 30;
    p->seed = 2026;
}

/* The status of an internal call's result rc (0 or -1 with e), and the
 * hooks scope ended. */
static ddps_status tools_leave(int rc, const ddps_err *e, ddps_error *err) {
    ddps_api_leave();
    return rc == 0 ? ddps_api_ok(err) : ddps_api_fail(err, e);
}

DDPS_API ddps_status ddps_bench_run(const ddps_bench_params *p, const ddps_hooks *hooks, ddps_error *err) {
    if (!p) return ddps_api_failf(err, DDPS_ERR_USAGE, "bench: no parameters");
    ddps_err e = {{0}};
    ddps_api_enter(hooks);
    int rc = ddps_tools_bench(p, hooks, &e);
    return tools_leave(rc, &e, err);
}

DDPS_API ddps_status ddps_probe_run(const ddps_probe_params *p, const ddps_hooks *hooks, ddps_error *err) {
    if (!p) return ddps_api_failf(err, DDPS_ERR_USAGE, "probe: no parameters");
    ddps_err e = {{0}};
    ddps_api_enter(hooks);
    int rc = ddps_tools_probe(p, hooks, &e);
    return tools_leave(rc, &e, err);
}

DDPS_API ddps_status ddps_demo_write(const char *dir, const ddps_demo_params *p, const ddps_hooks *hooks,
                                     ddps_error *err) {
    if (!p) return ddps_api_failf(err, DDPS_ERR_USAGE, "demo: no parameters");
    ddps_err e = {{0}};
    ddps_api_enter(hooks);
    int rc = ddps_tools_demo_write(dir, p, &e);
    return tools_leave(rc, &e, err);
}

DDPS_API ddps_status ddps_demo_run(const char *dir, const ddps_demo_params *p, const ddps_hooks *hooks,
                                   ddps_error *err) {
    if (!p) return ddps_api_failf(err, DDPS_ERR_USAGE, "demo: no parameters");
    ddps_err e = {{0}};
    ddps_api_enter(hooks);
    int rc = ddps_tools_demo_run(dir, p, hooks, &e);
    return tools_leave(rc, &e, err);
}

DDPS_API void ddps_world_params_init(ddps_world_params *p) {
    memset(p, 0, sizeof *p);
    p->n_classes = DDPS_WORLD_CLASSES;
    p->train = 100;
    p->val = 20;
    p->test = 30;
    p->size = 128;
}

DDPS_API ddps_status ddps_world_write(const char *dir, const ddps_world_params *p, const ddps_hooks *hooks,
                                      ddps_error *err) {
    if (!p) return ddps_api_failf(err, DDPS_ERR_USAGE, "world: no parameters");
    ddps_err e = {{0}};
    ddps_api_enter(hooks);
    int rc = ddps_world_generate(dir, p->seed, p->n_classes, p->train, p->val, p->test, p->size, &e);
    return tools_leave(rc, &e, err);
}

DDPS_API void ddps_world_eval_params_init(ddps_world_eval_params *p) {
    memset(p, 0, sizeof *p);
    p->ipc[0] = 1, p->ipc[1] = 10, p->ipc[2] = 50;
    p->n_ipc = 3;
    ddps_select_params sp;
    ddps_select_params_init(&sp);
    p->top_clusters = sp.top_clusters;
    p->mosaic_max_ipc = sp.mosaic_max_ipc;
}

DDPS_API ddps_status ddps_world_eval(const ddps_world_eval_params *p, ddps_world_eval_result *out,
                                     const ddps_hooks *hooks, ddps_error *err) {
    if (!p) return ddps_api_failf(err, DDPS_ERR_USAGE, "world-eval: no parameters");
    ddps_err e = {{0}};
    ddps_api_enter(hooks);
    int rc = ddps_tools_world_eval(p, out, hooks, &e);
    return tools_leave(rc, &e, err);
}
