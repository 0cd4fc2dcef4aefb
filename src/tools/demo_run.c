/* `ddps demo` (ddps_demo_write, ddps_demo_run): the whole product on a fresh
 * machine with nothing downloaded. Makes a small synthetic ImageFolder and a
 * tiny random-weight model with Stable Diffusion v1.x's exact structure (and
 * a tokenizer that knows the class names), then distills them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/sd.h"
#include "pipeline/score.h"
#include "pipeline/select.h"
#include "tools/demo.h"
#include "tools/tools.h"
#include "util/fs.h"

/* dir/model: the tiny model whose tokenizer knows "an image of" and the class names. */
static int write_demo_model(const char *model, int n_classes, ddps_err *err) {
    ddps_unet_config u;
    ddps_vae_config v;
    ddps_clip_config c;
    ddps_demo_tiny_configs(&u, &v, &c);
    const char *words[DDPS_SYNTH_MAX_CLASSES + 3] = {"an", "image", "of"};
    for (int i = 0; i < n_classes; i++) words[3 + i] = ddps_synth_class_name(i);
    return ddps_sd_write_random(model, &u, &v, &c, words, 3 + n_classes, 42, ST_F16, err);
}

/* Checks p and makes the fixtures that are missing (errors without the "demo: " prefix). */
static int demo_write(const char *dir, const ddps_demo_params *p, ddps_err *err) {
    if (!dir || !*dir) return ddps_fail_usage(err, "--out: an output folder is required");
    if (p->n_classes < 1 || p->n_classes > DDPS_SYNTH_MAX_CLASSES)
        return ddps_fail_usage(err, "--classes %d: expected 1..%d", p->n_classes, DDPS_SYNTH_MAX_CLASSES);
    if (p->per_class < 1 || p->per_class > 10000)
        return ddps_fail_usage(err, "--per-class %d: expected 1..10000", p->per_class);
    char *data = ddps_path_join(dir, "data"), *model = ddps_path_join(dir, "model");
    int rc = ddps_mkdirs(dir, err);
    if (rc == 0 && !ddps_is_dir(data)) {
        ddps_info("making a synthetic dataset: %d classes x %d pictures in %s", p->n_classes, p->per_class, data);
        rc = ddps_synth_dataset(data, p->n_classes, p->per_class, 160, 1, NULL, err);
    }
    if (rc == 0 && !ddps_is_dir(model)) {
        ddps_info("making a tiny random-weight model with SD v1.x's structure in %s", model);
        rc = write_demo_model(model, p->n_classes, err);
    }
    free(data);
    free(model);
    return rc;
}

/* Scores dir/data with dir/model into store with the demo's small settings. */
static int demo_score(const char *dir, const char *store, int threads, ddps_err *err) {
    char *data = ddps_path_join(dir, "data"), *model = ddps_path_join(dir, "model");
    ddps_score_opts o;
    ddps_score_defaults(&o);
    o.data_dir = data;
    o.model_dir = model;
    /* Small pictures keep the demo to about a minute on two cores. */
    o.size = 128;
    o.patch = 96;
    o.patches_per_image = 2;
    o.threads = threads;
    o.command = "distill";
    o.store_path = store;
    ddps_run_stats st = {0};
    int rc = ddps_score_run(&o, &st, err);
    free(data);
    free(model);
    return rc;
}

/* Writes dist/ipc1 and dist/ipc10 from store. */
static int demo_select(const char *store, const char *dist, int threads, ddps_err *err) {
    ddps_select_opts so;
    ddps_select_defaults(&so);
    int ipcs[2] = {1, 10};
    so.store_path = store;
    so.out_dir = dist;
    so.ipc = ipcs;
    so.n_ipc = 2;
    so.threads = threads;
    so.command = "distill";
    return ddps_select_run(&so, err);
}

int ddps_tools_demo_write(const char *dir, const ddps_demo_params *p, ddps_err *err) {
    return demo_write(dir, p, err) == 0 ? 0 : ddps_fail_prefix(err, "demo");
}

int ddps_tools_demo_run(const char *dir, const ddps_demo_params *p, ddps_err *err) {
    if (demo_write(dir, p, err) != 0) return ddps_fail_prefix(err, "demo");
    char *dist = ddps_path_join(dir, "distilled"), *store = ddps_path_join(dir, "ddps.sqlite");
    int rc = ddps_mkdirs(dist, err);
    if (rc == 0) rc = demo_score(dir, store, p->threads, err);
    if (rc == 0) rc = demo_select(store, dist, p->threads, err);
    free(dist);
    free(store);
    return rc == 0 ? 0 : ddps_fail_prefix(err, "demo");
}
